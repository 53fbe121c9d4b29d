"""Figures of the gas and heating analyses (Matplotlib, drawn into a given Figure).

Each function draws into a ``matplotlib.figure.Figure`` that the caller made (the
twin's report makes its own, the ``--out`` writers of the command line theirs), so
no pyplot state is touched. Slices are the mid-plane that contains the thickness
axis, drawn with the thickness vertical and the current collector at the top.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "draw_gas_curves",
    "draw_gas_slices",
    "draw_heat_profile",
    "draw_heat_slices",
    "mid_plane",
]


def mid_plane(field: np.ndarray, thickness_axis: int, *, max_px: int = 320) -> np.ndarray:
    """The mid-plane of a 3D field that contains the thickness axis (thickness first).

    A 2D field is returned with the thickness axis first. Large planes are
    subsampled to at most ``max_px`` pixels per side.
    """
    a = np.asarray(field)
    if a.ndim == 3:
        across = next(k for k in range(3) if k != thickness_axis)
        a = np.take(a, a.shape[across] // 2, axis=across)
        t = thickness_axis if thickness_axis < across else thickness_axis - 1
    else:
        t = thickness_axis
    a = np.moveaxis(a, t, 0)
    step = max(1, math.ceil(max(a.shape) / max_px))
    return np.ascontiguousarray(a[::step, ::step])


def draw_gas_slices(fig: Any, gas_level: np.ndarray, saturations: list[float], ax_t: int) -> None:
    """Where the gas sits: one panel, coloured by the first saturation that holds it."""
    import matplotlib as mpl

    sl = mid_plane(gas_level, ax_t).astype(float)
    n = max(len(saturations), 1)
    ax = fig.subplots()
    cmap = mpl.colors.ListedColormap(
        ["#d9a441", "#23395b", *[mpl.colormaps["Reds_r"](0.15 + 0.6 * i / n) for i in range(n)]]
    )
    ax.imshow(sl + 1, cmap=cmap, vmin=-0.5, vmax=n + 1.5, interpolation="nearest")
    ax.set_xlabel("in-plane position [voxels]")
    ax.set_ylabel("thickness [voxels] (collector at 0)")
    ax.set_title("gas (red: from the saturation shown), electrolyte (blue)", fontsize=9)
    handles = [
        mpl.patches.Patch(color="#d9a441", label="solid"),
        mpl.patches.Patch(color="#23395b", label="electrolyte"),
    ]
    order = sorted(saturations)
    for i, s in enumerate(order):
        handles.append(mpl.patches.Patch(color=cmap(i + 2), label=f"gas at S ≥ {s:g}"))
    ax.legend(handles=handles, fontsize=7, loc="lower right", framealpha=0.85)


def draw_gas_curves(fig: Any, data: dict[str, Any]) -> None:
    """Capillary pressure–saturation curve and transport loss versus saturation.

    ``data`` is :meth:`GasResult.to_dict` (or the twin's summary with the same keys).
    """
    ax1, ax2 = fig.subplots(1, 2)
    curve = data.get("curve") or {}
    p = np.asarray(curve.get("pressure_Pa") or [], float)
    s = np.asarray(curve.get("saturation") or [], float)
    if p.size:
        ax1.semilogx(p / 1e3, s, "o-", ms=3, label="gas saturation")
        tr = np.asarray(curve.get("trapped_saturation") or [], float)
        if curve.get("trapping") and tr.size:
            ax1.semilogx(p / 1e3, tr, "s--", ms=3, label="trapped electrolyte")
        ax1.legend(fontsize=8, loc="upper left")
    ax1.set_xlabel("capillary pressure [kPa]")
    ax1.set_ylabel("fraction of the pore volume")
    ax1.set_ylim(-0.02, 1.02)
    ax1.set_title(f"drainage curve (inlet: {curve.get('inlet', '?')})", fontsize=9)
    sat = [0.0, *[float(x) for x in data.get("achieved_saturation") or []]]
    order = np.argsort(sat)

    def series(key: str) -> np.ndarray:
        vals = [1.0, *[np.nan if v is None else float(v) for v in data.get(key) or []]]
        return np.asarray(vals, float)[order]

    x = np.asarray(sat)[order]
    ax2.plot(x, series("effective_conductivity_ratio"), "o-", label="ionic conductivity ratio")
    ax2.plot(x, series("wetted_area_fraction"), "s-", label="wetted active area")
    rate = data.get("rate")
    if rate and rate.get("capacity_ratio"):
        for k, c in enumerate(rate.get("c_rates") or []):
            vals = [1.0, *[np.nan if row[k] is None else row[k] for row in rate["capacity_ratio"]]]
            ax2.plot(x, np.asarray(vals, float)[order], "^--", label=f"capacity at {c:g}C (P2D)")
    ax2.set_xlabel("gas saturation")
    ax2.set_ylabel("relative to the gas-free electrode")
    ax2.set_ylim(-0.02, 1.05)
    ax2.set_title("transport loss", fontsize=9)
    ax2.legend(fontsize=8, loc="lower left")


def draw_heat_slices(
    fig: Any, heat: np.ndarray, current: np.ndarray, delta_t: np.ndarray, ax_t: int
) -> None:
    """Heat density (log), current density and temperature rise on the mid-plane."""
    import matplotlib as mpl

    axes = fig.subplots(1, 3)
    q = mid_plane(heat, ax_t)
    j = mid_plane(current, ax_t)
    t = mid_plane(delta_t, ax_t)
    with np.errstate(divide="ignore", invalid="ignore"):
        lq = np.log10(np.where(q > 0, q, np.nan))
    cm = mpl.colormaps["inferno"].with_extremes(bad="#ffffff")
    for ax, a, title, lab in (
        (axes[0], lq, "heat density", "log10 q [W/m³]"),
        (axes[1], j, "current density", "|j| [A/m²]"),
        (axes[2], t, "temperature rise", "ΔT [K]"),
    ):
        finite = a[np.isfinite(a)]
        vmin, vmax = (
            (float(np.nanpercentile(finite, 1)), float(np.nanpercentile(finite, 99.9)))
            if finite.size
            else (0.0, 1.0)
        )
        im = ax.imshow(
            np.ma.masked_invalid(a), cmap=cm, vmin=vmin, vmax=vmax, interpolation="nearest"
        )
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("in-plane [voxels]")
        fig.colorbar(im, ax=ax, shrink=0.8, label=lab)
    axes[0].set_ylabel("thickness [voxels] (collector at 0)")


def draw_heat_profile(fig: Any, depth_m: np.ndarray, heat_W_per_m3: np.ndarray) -> None:
    """Heat generation per volume versus depth from the current collector."""
    ax = fig.subplots()
    d = np.asarray(depth_m, float) * 1e6
    q = np.asarray(heat_W_per_m3, float)
    ax.plot(d, q / 1e3, "-", lw=1.4, label="per layer")
    if q.size:
        ax.axhline(float(q.mean()) / 1e3, color="#999", ls=":", label="electrode mean")
    ax.set_xlabel("depth from the current collector [µm]")
    ax.set_ylabel("heat generation [kW/m³]")
    ax.set_title("where in the depth the heat is generated", fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
