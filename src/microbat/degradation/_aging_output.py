"""Figures and files of the aging model (``AgingResult.plot``/``save``, the CLI, the twin).

The drawing functions take plain arrays and a Matplotlib ``Figure`` made by the
caller, so the twin's report and the ``--out`` writer share them; every file is
written atomically.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from microbat.degradation._output import _csv, _figure, _json, _png

if TYPE_CHECKING:
    from microbat.degradation.aging import AgingResult

__all__ = [
    "draw_curves",
    "draw_maps",
    "draw_nyquist",
    "lithium_per_area",
    "plot_maps",
    "plot_summary",
    "save_result",
]


def draw_curves(fig: Any, c: Mapping[str, np.ndarray]) -> None:
    """Four panels: retention and resistance, lithium lost by mechanism, CoV, cracks.

    ``c`` holds ``cycle``, ``capacity_retention``, ``resistance_growth``,
    ``li_sei_original``, ``li_sei_cracks``, ``li_plating`` (mol), ``heterogeneity_cov``,
    ``mean_crack_length_m``, and optionally ``cell_capacity_retention`` (the full
    cell's, by the electrode balance).
    """
    axs = fig.subplots(2, 2)
    n = c["cycle"]
    a = axs[0, 0]
    a.plot(n, 100 * c["capacity_retention"], color="#4c72b0", label="lithium inventory")
    cell = c.get("cell_capacity_retention")
    if cell is not None:
        a.plot(n, 100 * np.asarray(cell), color="#55a868", label="cell (electrode balance)")
        a.legend(fontsize=7.5, loc="lower left")
    a.set_xlabel("cycle")
    a.set_ylabel("capacity retention [%]", color="#4c72b0")
    b = a.twinx()
    b.plot(n, c["resistance_growth"], color="#c44e52", ls="--", label="resistance")
    b.set_ylabel("resistance / initial", color="#c44e52")
    a.set_title("fade and resistance growth", fontsize=9.5)
    a = axs[0, 1]
    parts = [
        (c["li_sei_original"], "SEI, original surface", "#4c72b0"),
        (c["li_sei_cracks"], "SEI, crack faces", "#dd8452"),
        (c["li_plating"], "plating", "#55a868"),
    ]
    a.stackplot(n, *[1e3 * p for p, _, _ in parts], labels=[lab for _, lab, _ in parts],
                colors=[col for _, _, col in parts])  # fmt: skip
    a.set_xlabel("cycle")
    a.set_ylabel("lithium lost [mmol]")
    a.legend(fontsize=7.5, loc="upper left")
    a.set_title("loss split", fontsize=9.5)
    a = axs[1, 0]
    a.plot(n, c["heterogeneity_cov"], color="#8172b2")
    a.set_xlabel("cycle")
    a.set_ylabel("CoV of the local degradation rate")
    a.set_title("aging heterogeneity (area-weighted)", fontsize=9.5)
    a = axs[1, 1]
    a.plot(n, 1e9 * c["mean_crack_length_m"], color="#937860")
    a.set_xlabel("cycle")
    a.set_ylabel("mean crack length [nm]")
    a.set_title("cracks", fontsize=9.5)


def draw_nyquist(fig: Any, z: np.ndarray, cycles: np.ndarray) -> None:
    """Nyquist plot of the spectra ``z`` (one row per cycle in ``cycles``)."""
    ax = fig.subplots()
    z = np.atleast_2d(z)
    scale, unit = (1e-3, "kΩ") if np.nanmax(np.abs(z.real)) > 1e4 else (1.0, "Ω")
    for row, c in zip(z, cycles, strict=True):
        ax.plot(scale * row.real, -scale * row.imag, "o-", ms=2.5, label=f"cycle {int(c)}")
    ax.set_xlabel(f"Re Z [{unit}]")
    ax.set_ylabel(f"−Im Z [{unit}]")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title("impedance of the imaged electrode (SEI arc at high frequency)", fontsize=9.5)


def draw_maps(
    fig: Any,
    labels_mid: np.ndarray,
    values: Mapping[str, np.ndarray],
    *,
    title: str = "",
) -> None:
    """One panel per entry: the per-particle value painted on the mid-plane labels.

    ``values`` maps a panel title to an array of one value per particle (index
    ``k − 1`` for particle ``k``); the thickness runs down, the collector at the top.
    """
    import matplotlib as mpl

    axs = np.atleast_1d(fig.subplots(1, len(values)))
    lab = np.asarray(labels_mid)
    for ax, (name, v) in zip(axs, values.items(), strict=True):
        lut = np.concatenate(([np.nan], np.asarray(v, float)))
        img = lut[np.clip(lab, 0, len(lut) - 1)]
        img[lab == 0] = np.nan
        fin = img[np.isfinite(img)]
        lo, hi = (float(np.min(fin)), float(np.max(fin))) if fin.size else (0.0, 1.0)
        cmap = mpl.colormaps["viridis"].with_extremes(bad="#e8e8e8")
        vmax = hi if hi > lo else lo + 1
        im = ax.imshow(np.ma.masked_invalid(img), cmap=cmap, vmin=lo, vmax=vmax,
                       interpolation="nearest")  # fmt: skip
        ax.set_title(name, fontsize=8.5)
        ax.set_xlabel("in-plane [voxels]")
        ax.set_ylabel("thickness [voxels] (collector at 0)")
        fig.colorbar(im, ax=ax, shrink=0.8)
    if title:
        fig.suptitle(title, fontsize=10)


_PARTICLE_FIELDS = (
    "sei_thickness_m",
    "crack_sei_thickness_m",
    "crack_length_m",
    "lithium_lost_mol",
    "degradation_rate",
    "current_share",
)


def _curves(res: AgingResult) -> dict[str, np.ndarray]:
    extra: dict[str, np.ndarray] = {}
    if res.cell_capacity_retention is not None and res.degradation_modes is not None:
        extra["cell_capacity_retention"] = res.cell_capacity_retention
        extra.update({k: v for k, v in res.degradation_modes.items()})
    return {
        "cycle": res.cycle,
        "capacity_retention": res.capacity_retention,
        "resistance_growth": res.resistance_growth,
        "li_sei_original": res.lithium_lost_curve_mol["sei_original"],
        "li_sei_cracks": res.lithium_lost_curve_mol["sei_cracks"],
        "li_plating": res.lithium_lost_curve_mol["plating"],
        "heterogeneity_cov": res.heterogeneity_cov,
        "mean_crack_length_m": res.mean_crack_length_m,
        **extra,
    }


def plot_summary(res: AgingResult) -> Any:
    """Figure with the fade, loss split, heterogeneity and crack curves."""
    fig = _figure(10.0, 7.0, hspace=0.4, wspace=0.45, left=0.08, right=0.92, top=0.94, bottom=0.08)
    draw_curves(fig, _curves(res))
    return fig


def lithium_per_area(maps: Mapping[str, np.ndarray], i: int) -> np.ndarray:
    """Lithium lost per unit interface area (mol/m²) of each particle at map ``i``."""
    area = maps["interface_area_m2"][i]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(area > 0, maps["lithium_lost_mol"][i] / area, np.nan)


def _map_values(res: AgingResult, i: int) -> dict[str, np.ndarray]:
    m = res.maps
    return {
        "SEI, original [nm]": 1e9 * m["sei_thickness_m"][i],
        "crack length [nm]": 1e9 * m["crack_length_m"][i],
        "Li lost per area [µmol/m²]": 1e6 * lithium_per_area(m, i),
    }


def plot_maps(res: AgingResult, index: int = -1) -> Any:
    """Per-particle maps (SEI thickness, crack length, lithium lost per area) at a map cycle."""
    fig = _figure(12.0, 4.2, wspace=0.45, left=0.06, right=0.97, top=0.85, bottom=0.12)
    if len(res.map_cycles) == 0:
        return fig
    cyc = int(res.map_cycles[index])
    draw_maps(fig, res.labels_mid, _map_values(res, index), title=f"particles at cycle {cyc}")
    return fig


def save_result(res: AgingResult, out: Path) -> dict[str, Path]:
    """Write the result's files to ``out`` (atomic each).

    ``result.json``, ``curves.csv``, ``particles.csv``, ``aging.png``, ``maps_*.png``,
    ``impedance.png`` and ``impedance.csv``.
    """
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    c = _curves(res)
    keys = list(c)
    rows = [
        [(c[k][i].item() if np.isfinite(c[k][i]) else None) for k in keys]
        for i in range(len(res.cycle))
    ]
    files["curves"] = _csv(out / "curves.csv", keys, rows)
    header = ["particle", "radius_m", "volume_m3", "area_m2", "depth_m"]
    cols = [res.particles[k] for k in header[1:]]
    for i, cyc in enumerate(res.map_cycles):
        for name in _PARTICLE_FIELDS:
            header.append(f"{name}@{int(cyc)}")
            cols.append(res.maps[name][i])
    n = len(res.particles["radius_m"])
    prow = [
        [k + 1, *[(float(col[k]) if np.isfinite(col[k]) else None) for col in cols]]
        for k in range(n)
    ]
    files["particles"] = _csv(out / "particles.csv", header, prow)
    files["plot"] = _png(plot_summary(res), out / "aging.png")
    for i, cyc in enumerate(res.map_cycles):
        files[f"maps_{int(cyc)}"] = _png(plot_maps(res, i), out / f"maps_cycle{int(cyc)}.png")
    if res.impedance_ohm.size:
        fig = _figure(6.5, 5.0, left=0.13, bottom=0.11)
        draw_nyquist(fig, res.impedance_ohm, res.map_cycles)
        files["impedance"] = _png(fig, out / "impedance.png")
        rows = []
        for i, cyc in enumerate(res.map_cycles):
            for f, zz in zip(res.impedance_frequency_Hz, res.impedance_ohm[i], strict=True):
                rows.append([int(cyc), float(f), float(zz.real), float(zz.imag)])
        files["impedance_csv"] = _csv(
            out / "impedance.csv", ["cycle", "frequency_Hz", "z_real_ohm", "z_imag_ohm"], rows
        )
    files["result"] = _json(out / "result.json", res.to_dict())
    return files
