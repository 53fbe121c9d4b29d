"""The twin report: one self-contained HTML file and ``results.json``.

The HTML embeds every figure as a base64 PNG (no external file, script, font or
style sheet), so it can be mailed to a colleague as is. Sections: input summary
and stage status, the diagnosis, imaging QC (slices before and after each imaging
step, the histogram with the fitted mixture), phase fractions and connectivity
classes, orthogonal slices of the labelled microstructure, morphology, the
tortuosity table with the Bruggeman comparison, rate capability and the
voltage-loss breakdown, EIS (marked absent until an EIS stage exists) and the
settings.

The diagnosis (:func:`diagnose`) is derived from the numbers with explicit rules:

1. a pore network that does not connect the current collector to the separator
   blocks ionic transport: that is the bottleneck whatever else holds;
2. with a cell simulation, the limitation named by the voltage-loss breakdown at
   the lowest rate where the micro-informed capacity falls below 80 % of the C/10
   capacity (or at the highest rate simulated, if none does) is the dominant
   bottleneck; its sentence quotes the microstructure numbers behind it (ε/τ of
   the pores, particle size, surface area, solid tortuosity);
3. without one, the transport efficiency ε/τ and the Bruggeman error are reported;
4. secondary findings: Bruggeman's error on τ, dead-end and isolated porosity,
   disconnected active material, segmentation uncertainty, anisotropy.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from microbat.core.atomic import atomic_write_text
from microbat.core.results import to_jsonable

__all__ = ["diagnose", "write_report"]

#: Capacity fraction (of the C/10 capacity) below which a rate counts as limited.
LIMITED_FRACTION = 0.8

_ROLE_COLORS = {
    "electrolyte": "#23395b",
    "gas": "#111111",
    "carbon_binder": "#3e9b5b",
    "active": "#d9a441",
    "separator": "#8e6bb8",
    "solid_electrolyte": "#c05c7e",
    "current_collector": "#9aa3ad",
    "other": "#e07b39",
}
_CLASS_COLORS = ("#ffffff", "#2a7a3b", "#e0a020", "#c0392b")  # none, perc, dead-end, isolated


def _esc(x: Any) -> str:
    return html.escape(str(x))


def _num(x: Any, fmt: str = ".4g", unit: str = "") -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    try:
        v = float(x)
    except (TypeError, ValueError):
        return _esc(x)
    if math.isinf(v):
        return "∞"
    if math.isnan(v):
        return "–"
    return f"{v:{fmt}}" + (f" {unit}" if unit else "")


def _um(x: Any) -> str:
    return "–" if x is None else f"{1e6 * float(x):.3g} µm"


# ====================================================================== figures
class _Figures:
    """Matplotlib figures rendered to base64 PNG (Agg, no pyplot state)."""

    def __init__(self, dpi: int) -> None:
        from matplotlib.figure import Figure

        self.Figure = Figure
        self.dpi = dpi

    def new(self, w: float, h: float, **adjust: float) -> Any:
        # Fixed margins instead of a layout engine: constrained layout costs a
        # second draw of every figure.
        fig = self.Figure(figsize=(w, h))
        margins = {"left": 0.08, "right": 0.98, "top": 0.9, "bottom": 0.14, "wspace": 0.25}
        margins.update(adjust)
        fig.subplots_adjust(**margins)
        return fig

    def png(self, fig: Any) -> str:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=self.dpi)
        return base64.b64encode(buf.getvalue()).decode("ascii")


def _img(b64: str, alt: str, caption: str = "") -> str:
    cap = f"<figcaption>{_esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{_esc(alt)}" src="data:image/png;base64,{b64}">{cap}</figure>'


def _phase_cmap(phases: Sequence[Mapping[str, Any]]) -> tuple[Any, float, float]:
    from matplotlib.colors import ListedColormap

    top = max((int(p["label"]) for p in phases), default=1)
    colors = ["#ffffff"] * (top + 1)
    for p in phases:
        colors[int(p["label"])] = _ROLE_COLORS.get(str(p["role"]), "#e07b39")
    return ListedColormap(colors), -0.5, top + 0.5


def _legend_handles(phases: Sequence[Mapping[str, Any]]) -> list[Any]:
    from matplotlib.patches import Patch

    return [
        Patch(
            color=_ROLE_COLORS.get(str(p["role"]), "#e07b39"), label=f"{p['name']} ({p['label']})"
        )
        for p in phases
    ]


def _qc_figure(
    figs: _Figures, rows: list[tuple[str, dict[str, np.ndarray], str]], phases: Any
) -> str:
    """Rows of mid slices (axis 0, 1, 2) for each imaging step."""
    n = len(rows)
    fig = figs.new(
        10.5, 3.2 * n, left=0.01, right=0.9, top=1 - 0.25 / n, bottom=0.01, wspace=0.05, hspace=0.12
    )
    axes = np.atleast_2d(fig.subplots(n, 3))
    for r, (title, slices, kind) in enumerate(rows):
        for k in range(3):
            ax = axes[r, k]
            sl = slices.get(f"mid{k}")
            ax.set_xticks([])
            ax.set_yticks([])
            if sl is None:
                ax.set_axis_off()
                continue
            if kind == "labels" and phases:
                cmap, lo, hi = _phase_cmap(phases)
                ax.imshow(sl, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
            elif kind == "uncertainty":
                im = ax.imshow(sl, cmap="magma", vmin=0, vmax=max(float(np.max(sl)), 1e-6))
                if k == 2:
                    fig.colorbar(im, ax=ax, shrink=0.8, label="1 − max posterior")
            else:
                lo, hi = np.percentile(sl, [0.5, 99.5]) if sl.size else (0, 1)
                ax.imshow(sl, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1)
            ax.set_title(f"{title} — axis {k} mid-slice", fontsize=8.5)
        if kind == "labels" and phases:
            axes[r, 2].legend(handles=_legend_handles(phases), fontsize=7, loc="lower right")
    return figs.png(fig)


def _split(arrays: Mapping[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}


def _histogram_figure(figs: _Figures, seg: Mapping[str, Any], arr: Mapping[str, np.ndarray]) -> str:
    x = arr["fit_centers"]
    counts = arr["fit_counts"]
    comps = arr.get("fit_components")
    fig = figs.new(8.5, 3.6)
    ax = fig.subplots()
    keep = counts > 0
    lo = x[keep].min() if keep.any() else x.min()
    hi = x[keep].max() if keep.any() else x.max()
    # Re-bin the 4096-bin histogram for display.
    nb = 4096 // 128 if x.size >= 4096 else 1
    xb = x[: x.size // nb * nb].reshape(-1, nb).mean(1)
    cb = counts[: x.size // nb * nb].reshape(-1, nb).sum(1) / nb
    edges = np.concatenate([[xb[0] - 0.5 * (xb[1] - xb[0])], 0.5 * (xb[1:] + xb[:-1])])
    edges = np.append(edges, xb[-1] + 0.5 * (xb[-1] - xb[-2]))
    ax.stairs(cb, edges, fill=True, color="#c9d3e3", label="image")
    thin = max(1, x.size // 512)
    x = x[::thin]
    comps = comps[:, ::thin] if comps is not None else None
    names = sorted(seg.get("means", {}), key=lambda k: seg["means"][k])
    mix = seg.get("mixture") or {}
    pv = mix.get("pv_pairs") or []
    if comps is not None:
        total = comps.sum(0)
        for i in range(comps.shape[0]):
            if i < len(names):
                label = f"{names[i]} (mean {seg['means'][names[i]]:.3g})"
                ax.plot(x, comps[i], lw=1.6, label=label)
            else:
                a, b = pv[i - len(names)] if i - len(names) < len(pv) else (0, 0)
                na = names[a] if a < len(names) else a
                nb_ = names[b] if b < len(names) else b
                ax.plot(x, comps[i], lw=0.9, ls=":", label=f"partial volume {na}/{nb_}")
        ax.plot(x, total, "k-", lw=1.0, label="mixture")
    for t in seg.get("thresholds") or []:
        ax.axvline(t, color="#a8321f", lw=0.8, ls="--")
    ax.set_xlim(lo, hi)
    ax.set_xlabel("intensity (image units)")
    ax.set_ylabel("voxels per bin")
    ax.set_title("intensity histogram and fitted Gaussian mixture (dashed: thresholds)")
    ax.legend(fontsize=7.5)
    return figs.png(fig)


def _fractions_figure(figs: _Figures, conn: Mapping[str, Any], phases: Any) -> str:
    vf = conn.get("volume_fractions") or {}
    names = list(vf)
    fig = figs.new(7.5, 0.55 * max(len(names), 2) + 1.2, left=0.14, bottom=0.25, top=0.85)
    ax = fig.subplots()
    left = np.zeros(len(names))
    labels = {"percolating": "percolating", "dead_end": "dead-end", "isolated": "isolated"}
    for j, cls in enumerate(("percolating", "dead_end", "isolated")):
        vals = np.array([float(vf[n].get(cls) or 0.0) for n in names])
        ax.barh(names, vals, left=left, color=_CLASS_COLORS[j + 1], label=labels[cls])
        left += vals
    ax.set_xlabel("volume fraction of the whole image")
    ax.set_title(f"phase fractions by connectivity class (along axis {conn.get('axis')})")
    ax.legend(fontsize=8, loc="lower right")
    ax.invert_yaxis()
    return figs.png(fig)


def _class_figure(figs: _Figures, arr: Mapping[str, np.ndarray], phases: Sequence[str]) -> str:
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    n = len(phases)
    fig = figs.new(
        10.5, 3.0 * n, left=0.01, right=0.9, top=1 - 0.25 / n, bottom=0.01, wspace=0.05, hspace=0.12
    )
    axes = np.atleast_2d(fig.subplots(n, 3))
    cmap = ListedColormap(list(_CLASS_COLORS))
    for r, name in enumerate(phases):
        sl = _split(arr, f"class_{name}_")
        for k in range(3):
            ax = axes[r, k]
            ax.set_xticks([])
            ax.set_yticks([])
            if f"mid{k}" in sl:
                ax.imshow(sl[f"mid{k}"], cmap=cmap, vmin=-0.5, vmax=3.5, interpolation="nearest")
            ax.set_title(f"{name} — axis {k} mid-slice", fontsize=8.5)
    axes[0, 2].legend(
        handles=[
            Patch(color=_CLASS_COLORS[1], label="percolating"),
            Patch(color=_CLASS_COLORS[2], label="dead-end"),
            Patch(color=_CLASS_COLORS[3], label="isolated"),
        ],
        fontsize=7,
        loc="lower right",
    )
    return figs.png(fig)


def _curves_figure(figs: _Figures, cell: Mapping[str, Any], arr: Mapping[str, np.ndarray]) -> str:
    fig = figs.new(11, 3.9, left=0.07, wspace=0.22, top=0.9)
    ax1, ax2 = fig.subplots(1, 2)
    transports = cell.get("transports") or []
    import matplotlib as mpl

    colors = mpl.colormaps["viridis"]
    for tr in transports:
        rc = cell.get(f"rate_{tr}") or {}
        rates = rc.get("c_rate") or []
        ls = "-" if tr == "micro" else "--"
        for i, c in enumerate(rates):
            q = arr.get(f"{tr}_curve{i}_capacity_Ah")
            v = arr.get(f"{tr}_curve{i}_voltage_V")
            if q is None or v is None:
                continue
            col = colors(i / max(len(rates) - 1, 1))
            ax1.plot(q, v, ls, color=col, lw=1.3, label=f"{c:g}C" if tr == transports[0] else None)
        frac = [np.nan if f is None else f for f in rc.get("fraction") or []]
        ax2.plot(rates, frac, "o" + ls, label=f"{tr} transport")
    ax1.set_xlabel("discharged capacity [A·h]")
    ax1.set_ylabel("terminal voltage [V]")
    title = "discharge curves"
    if len(transports) > 1:
        title += " (solid: micro-informed, dashed: Bruggeman)"
    ax1.set_title(title, fontsize=9.5)
    ax1.legend(fontsize=7.5, ncols=2)
    ax2.set_xscale("log")
    ax2.set_xlabel("C-rate [1/h]")
    ax2.set_ylabel("capacity / capacity at C/10")
    ax2.set_ylim(0, 1.05)
    ax2.axhline(LIMITED_FRACTION, color="#999", lw=0.8, ls=":")
    ax2.set_title("rate capability", fontsize=9.5)
    ax2.legend(fontsize=8)
    return figs.png(fig)


def _field_figure(figs: _Figures, field: np.ndarray) -> str:
    fig = figs.new(5.0, 4.6, left=0.12, right=0.86, top=0.9, bottom=0.1)
    ax = fig.subplots()
    cmap = __import__("matplotlib").colormaps["viridis"].with_extremes(bad="#ffffff")
    im = ax.imshow(np.ma.masked_invalid(field), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax.set_xlabel("in-plane position [voxels]")
    ax.set_ylabel("thickness axis [voxels] (current collector at 0)")
    ax.set_title("concentration, through-thickness solve", fontsize=9.5)
    fig.colorbar(im, ax=ax, shrink=0.85, label="c / c_in")
    return figs.png(fig)


def _nyquist_figure(figs: _Figures, arr: Mapping[str, np.ndarray], names: list[str]) -> str:
    fig = figs.new(6.4, 4.6, left=0.13, right=0.97, top=0.9, bottom=0.13)
    ax = fig.subplots()
    styles = {"homogenized": "-", "resolved_subvolume": "o-", "homogenized_subvolume": "--"}
    for name in names:
        f = arr.get(f"{name}_frequency_Hz")
        if f is None:
            continue
        zr = 1e4 * arr[f"{name}_z_real_ohm_m2"]
        zi = 1e4 * arr[f"{name}_z_imag_ohm_m2"]
        (line,) = ax.plot(
            zr, -zi, styles.get(name, "-"), ms=3, lw=1.4, label=name.replace("_", " ")
        )
        lg = np.log10(f)
        dec = np.isclose(lg, np.round(lg), atol=1e-6) & (np.round(lg) % 2 == 0) & (lg < 3.5)
        for fx, x, y in zip(f[dec], zr[dec], -zi[dec], strict=True):
            ax.plot(x, y, "s", color=line.get_color(), ms=4)
            ax.annotate(
                f"{fx:g} Hz", (x, y), fontsize=6.5, xytext=(3, 3), textcoords="offset points"
            )
    ax.set_xlabel("Re Z [Ω·cm²]")
    ax.set_ylabel("−Im Z [Ω·cm²]")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title("Nyquist", fontsize=9.5)
    ax.legend(fontsize=8)
    return figs.png(fig)


_COMPONENTS = (
    ("ohmic_electrolyte", "electrolyte ohmic"),
    ("concentration_electrolyte", "electrolyte concentration"),
    ("ohmic_solid", "solid ohmic"),
    ("reaction", "reaction (kinetic)"),
    ("solid_diffusion", "solid diffusion"),
)


def _breakdown_figure(
    figs: _Figures,
    cell: Mapping[str, Any],
    arr: Mapping[str, np.ndarray],
    tr: str,
    picks: list[int],
) -> str:
    rc = cell.get(f"rate_{tr}") or {}
    rates = rc.get("c_rate") or []
    width = 5.2 * len(picks)
    fig = figs.new(width, 3.8, left=0.8 / width, wspace=0.3)
    axes = np.atleast_1d(fig.subplots(1, len(picks)))
    for ax, i in zip(axes, picks, strict=True):
        q = arr.get(f"{tr}_bd{i}_capacity_Ah")
        if q is None:
            ax.set_axis_off()
            continue
        ys = [1e3 * arr.get(f"{tr}_bd{i}_{k}", np.zeros_like(q)) for k, _ in _COMPONENTS]
        ax.stackplot(q, *ys, labels=[lab for _, lab in _COMPONENTS])
        key = (rc.get("bottleneck_key") or [""] * len(rates))[i]
        ax.set_title(f"{rates[i]:g}C ({tr} transport): limited by {key}", fontsize=9)
        ax.set_xlabel("discharged capacity [A·h]")
        ax.set_ylabel("voltage loss [mV]")
    axes[0].legend(fontsize=7, loc="upper left")
    return figs.png(fig)


# ==================================================================== diagnosis
def _cell_bits(cell: Mapping[str, Any]) -> dict[str, Any] | None:
    tr = "micro" if "micro" in (cell.get("transports") or []) else "bruggeman"
    rc = cell.get(f"rate_{tr}") or {}
    rates = rc.get("c_rate") or []
    if not rates:
        return None
    fr = [math.nan if f is None else float(f) for f in rc.get("fraction") or []]
    keys = rc.get("bottleneck_key") or [""] * len(rates)
    words = rc.get("bottleneck") or [""] * len(rates)
    idx = next((i for i, f in enumerate(fr) if math.isfinite(f) and f < LIMITED_FRACTION), None)
    limited = idx is not None
    if idx is None:
        idx = len(rates) - 1
    return {
        "transport": tr,
        "index": idx,
        "limited": limited,
        "c_rate": rates[idx],
        "fraction": fr[idx] if idx < len(fr) else math.nan,
        "key": keys[idx] if idx < len(keys) else "",
        "words": words[idx] if idx < len(words) else "",
        "rates": rates,
        "fractions": fr,
    }


def diagnose(results: Mapping[str, Any]) -> dict[str, Any]:
    """Name the dominant bottleneck and list the secondary findings, from the numbers.

    Parameters
    ----------
    results : mapping
        Stage name → stage summary (what ``results.json`` holds under ``stages.*.result``),
        with statuses under ``"_status"``.

    Returns
    -------
    dict
        ``{"key", "headline", "details": [str], "findings": [str]}``; ``key`` is one
        of ``"pore_network_blocked"``, ``"electrolyte"``, ``"solid_diffusion"``,
        ``"reaction"``, ``"ohmic_solid"``, ``"equilibrium"``, ``"ionic_transport"``,
        ``"undetermined"``.
    """
    status = results.get("_status", {})
    conn = results.get("connectivity") or {}
    met = results.get("metrics") or {}
    tra = results.get("transport") or {}
    cell = results.get("cell") or {}
    seg = results.get("segment") or {}
    roles = {
        p["name"]: p["role"] for p in met.get("phases_table") or conn.get("phases_table") or []
    }
    pore = next((n for n, r in roles.items() if r == "electrolyte"), None)
    active = next((n for n, r in roles.items() if r == "active"), None)
    findings: list[str] = []
    details: list[str] = []

    eps = tra.get("porosity")
    tau = tra.get("tau_thickness")
    tau_b = tra.get("tau_bruggeman")
    ax = tra.get("thickness_axis", 0)
    eff = eps / tau if eps and tau else None

    # --- 1: blocked pore network --------------------------------------------------
    pore_perc = None
    if pore and conn.get("cluster_counts", {}).get(pore) is not None:
        pore_perc = conn["cluster_counts"][pore].get("percolating", 0) > 0
    transport_blocked = status.get("transport") == "complete" and tau is None
    if pore_perc is False or transport_blocked:
        key = "pore_network_blocked"
        headline = (
            "Ionic transport is blocked: the pore network does not connect the current "
            "collector to the separator along the thickness axis"
        )
        pf = (conn.get("phase_fractions") or {}).get(pore, {}) if pore else {}
        if pf:
            details.append(
                f"Of the pore volume, {_pct(pf.get('dead_end'))} is dead-end and "
                f"{_pct(pf.get('isolated'))} isolated; none crosses the electrode, so no "
                "electrolyte path exists and the cell model cannot be run on this image. "
                "Check the segmentation (a too dark threshold shrinks the pores) or the "
                "thickness axis."
            )
    else:
        bits = _cell_bits(cell) if status.get("cell") == "complete" else None
        if bits is not None:
            key = bits["key"] if bits["key"] else "undetermined"
            c, f = bits["c_rate"], bits["fraction"]
            if key == "equilibrium" or not bits["limited"]:
                key = "equilibrium"
                headline = (
                    f"No rate limitation up to {bits['rates'][-1]:g}C: the electrode keeps "
                    f"{_pct(bits['fractions'][-1])} of its C/10 capacity"
                )
                if bits["key"] and bits["key"] != "equilibrium":
                    words = _LOSS_WORDS.get(bits["key"], bits["key"])
                    headline += f"; the largest loss at {c:g}C is {words}"
            else:
                headline = (
                    f"Dominant bottleneck: {_LOSS_WORDS.get(key, key)}. At {c:g}C the "
                    f"electrode delivers only {_pct(f)} of its C/10 capacity"
                )
            details.extend(_explain(key, bits, tra, met, active, eff, eps, tau))
            comp = cell.get("comparison") or []
            row = next((r for r in comp if r.get("c_rate") == c), None)
            if row and row.get("difference_percent") is not None:
                d = row["difference_percent"]
                details.append(
                    f"A Bruggeman model from the same porosity predicts {abs(d):.1f} % "
                    f"{'more' if d < 0 else 'less'} capacity at {c:g}C than the "
                    "micro-informed one: "
                    + (
                        "the usual assumption is optimistic for this electrode."
                        if d < 0
                        else "the usual assumption is pessimistic for this electrode."
                    )
                )
        elif eff is not None:
            key = "ionic_transport"
            headline = (
                f"Ionic transport efficiency ε/τ = {eff:.3f} through the thickness "
                f"(porosity {eps:.3f}, tortuosity factor {tau:.2f}); no cell simulation "
                "was run to say whether it limits the rate"
            )
        else:
            key = "undetermined"
            headline = (
                "No bottleneck can be named: neither the transport nor the cell stage "
                "completed (see the stage table)"
            )

    # --- secondary findings -------------------------------------------------------------
    if tau is not None and tau_b is not None and tau > 0:
        err = (tau_b - tau) / tau
        findings.append(
            f"Bruggeman (ε^{1 - float(tra.get('bruggeman_exponent', 1.5)):.1f}) gives τ = "
            f"{tau_b:.2f} through the thickness where the image gives {tau:.2f}: "
            f"{'an under' if err < 0 else 'an over'}estimate by {abs(100 * err):.0f} %."
        )
    table = tra.get("table") or []
    finite = [r["tau"] for r in table if r.get("tau") is not None]
    if len(finite) >= 2 and min(finite) > 0 and max(finite) / min(finite) > 1.15:
        hi = max(table, key=lambda r: r["tau"] if r.get("tau") is not None else -1)
        findings.append(
            f"The pores are anisotropic: τ ranges from {min(finite):.2f} to {max(finite):.2f} "
            f"across the axes (highest along axis {hi['axis']}"
            + (", the thickness axis" if hi["axis"] == ax else "")
            + ")."
        )
    pf_all = conn.get("phase_fractions") or {}
    if pore and pore in pf_all:
        p = pf_all[pore]
        lost = (p.get("dead_end") or 0) + (p.get("isolated") or 0)
        if lost > 0.02:
            findings.append(
                f"{_pct(lost)} of the pore volume does not cross the electrode "
                f"({_pct(p.get('dead_end'))} dead-end, {_pct(p.get('isolated'))} isolated): "
                "it holds electrolyte but carries no ionic current through the thickness."
            )
    if active and active in pf_all:
        iso = pf_all[active].get("isolated") or 0
        if iso > 0.01:
            findings.append(
                f"{_pct(iso)} of the active material is in clusters touching neither face "
                "(6-connected): unless the carbon-binder links them, that capacity is "
                "electronically disconnected."
            )
    ee = seg.get("expected_error")
    if ee is not None:
        acc = (seg.get("accuracy_vs_truth") or {}).get("overall")
        s = f"Segmentation: expected misclassification {_pct(ee)} of the voxels (model estimate)"
        if acc is not None:
            s += f"; against the phantom's true labels {_pct(acc)} of the voxels agree"
        findings.append(s + ".")
    return {"key": key, "headline": headline, "details": details, "findings": findings}


_LOSS_WORDS = {
    "electrolyte": "ionic transport in the electrolyte (depletion through the thickness)",
    "solid_diffusion": "solid-state diffusion inside the particles",
    "reaction": "reaction kinetics at the particle surface",
    "ohmic_solid": "electronic conduction through the solid network",
    "equilibrium": "none (the cut-off is met close to equilibrium)",
    "incomplete": "an incomplete simulation (the solver stopped early)",
}


def _pct(x: Any) -> str:
    return "–" if x is None or not math.isfinite(float(x)) else f"{100 * float(x):.1f} %"


def _explain(
    key: str,
    bits: Mapping[str, Any],
    tra: Mapping[str, Any],
    met: Mapping[str, Any],
    active: str | None,
    eff: float | None,
    eps: float | None,
    tau: float | None,
) -> list[str]:
    out = []
    if bits.get("words"):
        out.append(f"The voltage-loss breakdown at {bits['c_rate']:g}C: {bits['words']}.")
    sizes = (met.get("sizes_m") or {}).get(active or "", {}) if active else {}
    ssa = met.get("active_electrolyte_specific_area_per_m")
    if key == "electrolyte" and eff is not None:
        out.append(
            f"The measured pore network passes a fraction ε/τ = {eff:.3f} of the free "
            f"electrolyte's transport (porosity {eps:.3f}, tortuosity factor {tau:.2f} "
            "through the thickness). Raising the porosity or lowering τ (aligned pores, "
            "less carbon-binder in the pores, a thinner electrode) moves this limit to "
            "higher rates."
        )
    elif key == "solid_diffusion" and sizes.get("d50"):
        out.append(
            f"The active particles have a median local-thickness diameter of "
            f"{_um(sizes['d50'])}; the diffusion time goes as R², so smaller particles "
            "relieve this limit."
        )
    elif key == "reaction" and ssa:
        out.append(
            f"The active/electrolyte interface is {ssa / 1e6:.3g} µm²/µm³ of electrode; "
            "more reactive surface (smaller particles, less carbon-binder coverage) lowers "
            "the kinetic overpotential."
        )
    elif key == "ohmic_solid":
        ts = (tra.get("solid") or {}).get("tau_thickness")
        if ts:
            out.append(
                f"The solid network's tortuosity factor through the thickness is {ts:.2f}; "
                "better carbon-binder connectivity lowers the electronic resistance."
            )
    return out


# ======================================================================== HTML
def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 1) -> str:
    th = "".join(
        f'<th class="{"l" if i < left else ""}">{_esc(h)}</th>' for i, h in enumerate(head)
    )
    body = []
    for r in rows:
        tds = "".join(f'<td class="{"l" if i < left else ""}">{c}</td>' for i, c in enumerate(r))
        body.append(f"<tr>{tds}</tr>")
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _absent(what: str) -> str:
    return f'<div class="absent">{what}</div>'


def _status_line(name: str, recs: Mapping[str, Any]) -> str:
    r = recs[name]
    return _absent(
        f"{_esc(r.stage.title)}: <b>{_esc(r.status.replace('_', ' '))}</b>"
        + (f" — {_esc(r.reason)}" if r.reason else "")
    )


def write_report(ctx: Any) -> dict[str, Path]:
    """Write ``results.json`` and (unless switched off) ``report.html`` into the out folder.

    Parameters
    ----------
    ctx : StageContext
        The run's context (every earlier stage has finished).

    Returns
    -------
    dict of str to Path
        ``{"results": ..., "report": ...}``.
    """
    from microbat import __version__

    out = Path(ctx.out_dir)
    cfg = ctx.config
    recs = ctx.records
    names = [n for n in recs if n != "report"]
    status = {n: recs[n].status for n in names}
    summaries = {n: (ctx.summary(n) if recs[n].status == "complete" else {}) for n in names}
    diag = diagnose({**summaries, "_status": status})
    headline = _headline(summaries, status, diag)
    results = {
        "format": "microbat-twin-results",
        "microbat": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "input": ctx.source.identity,
        "summary": headline,
        "diagnosis": diag,
        "stages": {
            n: {
                "title": recs[n].stage.title,
                "status": recs[n].status,
                "reason": recs[n].reason,
                "reused": recs[n].reused,
                "wall_time_s": recs[n].wall_time_s,
                "warnings": recs[n].warnings,
                "result": summaries[n],
            }
            for n in names
        },
        "config": cfg.model_dump(mode="json"),
    }
    files = {"results": out / "results.json"}
    atomic_write_text(
        files["results"], json.dumps(to_jsonable(results), indent=2, allow_nan=False) + "\n"
    )
    if cfg.report.enabled:
        page = _render(ctx, summaries, status, diag, headline)
        files["report"] = out / "report.html"
        atomic_write_text(files["report"], page)
    return files


def _headline(
    s: Mapping[str, Any], status: Mapping[str, str], diag: Mapping[str, Any]
) -> dict[str, Any]:
    inp = s.get("input") or {}
    met = s.get("metrics") or {}
    tra = s.get("transport") or {}
    cell = s.get("cell") or {}
    h: dict[str, Any] = {
        "shape": inp.get("shape"),
        "voxel_size_m": inp.get("voxel_size_m"),
        "labelled_input": inp.get("labelled"),
        "volume_fractions": met.get("volume_fractions"),
        "porosity": tra.get("porosity"),
        "tau": [r.get("tau") for r in tra.get("table") or []] or None,
        "tau_bruggeman": tra.get("tau_bruggeman"),
        "tau_solid_thickness": (tra.get("solid") or {}).get("tau_thickness"),
        "bottleneck": diag.get("key"),
        "diagnosis": diag.get("headline"),
        "stage_status": dict(status),
    }
    for tr in cell.get("transports") or []:
        rc = cell.get(f"rate_{tr}") or {}
        h[f"rate_capability_{tr}"] = {
            "c_rate": rc.get("c_rate"),
            "capacity_Ah": rc.get("capacity_Ah"),
            "fraction": rc.get("fraction"),
            "bottleneck": rc.get("bottleneck_key"),
        }
    return h


def _render(
    ctx: Any,
    s: Mapping[str, Any],
    status: Mapping[str, str],
    diag: Mapping[str, Any],
    headline: Mapping[str, Any],
) -> str:
    from microbat import __version__
    from microbat.pipeline._report_template import CSS, PAGE

    cfg = ctx.config
    recs = ctx.records
    figs = _Figures(cfg.report.dpi)
    inp = s.get("input") or {}
    parts: list[str] = []
    nav: list[tuple[str, str]] = []

    def section(anchor: str, title: str, body: str) -> None:
        nav.append((anchor, title))
        parts.append(f'<section id="{anchor}"><h2>{_esc(title)}</h2>{body}</section>')

    # ---------------------------------------------------------------- input + stages
    vs = inp.get("voxel_size_m") or []
    rows = [
        ("source", _esc(inp.get("source", ctx.source.identity.get("source", "")))),
        ("format", _esc(inp.get("format", ""))),
        (
            "content",
            "phase labels (imaging skipped)" if inp.get("labelled") else "grayscale intensities",
        ),
        ("shape (voxels, axis 0 first)", _esc(" × ".join(map(str, inp.get("shape") or [])))),
        ("voxel size", ", ".join(_um(v) for v in vs)),
        ("extent", ", ".join(_um(v) for v in inp.get("extent_m") or [])),
        ("thickness axis", _esc(inp.get("thickness_axis", ""))),
        ("data type", _esc(inp.get("dtype", ""))),
        ("sha256", f"<code>{_esc(str(ctx.source.identity.get('sha256', ''))[:16])}…</code>"),
    ]
    if inp.get("intensity"):
        it = inp["intensity"]
        rows.append(
            (
                "intensity min / mean / max (std)",
                f"{_num(it.get('min'))} / {_num(it.get('mean'))} / {_num(it.get('max'))} "
                f"({_num(it.get('std'))})",
            )
        )
    if inp.get("out_of_core"):
        crop = (s.get("metrics") or {}).get("analysis_crop") or (s.get("transport") or {}).get(
            "analysis_crop"
        )
        line = f"out of core, chunks {' × '.join(map(str, inp.get('chunks') or []))} voxels"
        if crop:
            line += "; metrics, transport and cell on the central subvolume " + " × ".join(
                f"[{a}:{b}]" for a, b in crop
            )
        rows.append(("processing", _esc(line)))
    if inp.get("phantom"):
        ph = inp["phantom"]
        rows.append(
            (
                "phantom",
                f"blur σ {_num(ph.get('psf_sigma_voxels'))} voxels, SNR {_num(ph.get('snr'))} "
                f"(measured {_num(ph.get('measured_snr'), '.3g')})",
            )
        )
    body = _table(["", ""], rows, left=2)
    st_rows = []
    for n, r in recs.items():
        if n == "report":
            continue
        st_rows.append(
            (
                _esc(r.stage.title),
                f'<span class="status-{r.status}">{_esc(r.status.replace("_", " "))}</span>'
                + (" (reused)" if r.reused else ""),
                _num(r.wall_time_s, ".2f", "s")
                if not r.reused
                else f"{_num(r.computed_time_s, '.2f', 's')} (earlier run)",
                _esc(r.reason),
            )
        )
    body += "<h3>Stages</h3>" + _table(["stage", "status", "time", "note"], st_rows, left=4)
    section("input", "Input and stages", body)

    # ---------------------------------------------------------------- diagnosis
    body = f'<div class="diag"><p class="head">{_esc(diag["headline"])}.</p>'
    body += "".join(f"<p>{_esc(d)}</p>" for d in diag.get("details", []))
    if diag.get("findings"):
        body += (
            "<p>Other findings:</p><ul>"
            + "".join(f"<li>{_esc(f)}</li>" for f in diag["findings"])
            + "</ul>"
        )
    body += "</div>"
    section("diagnosis", "Diagnosis", body)

    # ---------------------------------------------------------------- imaging QC
    phases = (
        (s.get("segment") or {}).get("phases")
        or (s.get("connectivity") or {}).get("phases_table")
        or inp.get("phases")
        or []
    )
    if inp.get("labelled"):
        body = _absent("The input holds phase labels, so denoising and segmentation were skipped.")
    else:
        a_in = ctx.arrays("input")
        rows_q: list[tuple[str, dict[str, np.ndarray], str]] = [
            ("raw", _split(a_in, "raw_"), "gray")
        ]
        if status.get("denoise") == "complete":
            rows_q.append(("denoised", _split(ctx.arrays("denoise"), "denoised_"), "gray"))
        if status.get("segment") == "complete":
            a_seg = ctx.arrays("segment")
            rows_q.append(("segmented", _split(a_seg, "labels_"), "labels"))
            if any(k.startswith("uncertainty_") for k in a_seg):
                rows_q.append(("uncertainty", _split(a_seg, "uncertainty_"), "uncertainty"))
        body = _img(
            _qc_figure(figs, rows_q, phases),
            "QC slices before and after each imaging step",
            "Middle slice across each axis after each imaging step (gray: intensities "
            "clipped to the 0.5–99.5 percentiles).",
        )
        den = s.get("denoise") or {}
        if den:
            body += _table(
                ["denoising", ""],
                [
                    ("noise σ estimated on the input", _num(den.get("sigma_in"))),
                    ("noise σ estimated after", _num(den.get("sigma_out_estimate"))),
                    ("filter strength h", _num(den.get("h"))),
                ],
            )
        elif status.get("denoise"):
            body += _status_line("denoise", recs)
        seg = s.get("segment") or {}
        if seg and "fit_centers" in ctx.arrays("segment"):
            body += "<h3>Fitted histogram</h3>" + _img(
                _histogram_figure(figs, seg, ctx.arrays("segment")),
                "intensity histogram with the fitted mixture",
            )
            names = sorted(seg.get("means", {}), key=lambda k: seg["means"][k])
            body += _table(
                ["phase", "mean", "std", "weight", "volume fraction"],
                [
                    (
                        _esc(n),
                        _num(seg["means"][n]),
                        _num(math.sqrt(seg["variances"][n])),
                        _num(seg["weights"][n], ".3f"),
                        _num(seg["volume_fractions"].get(n), ".3f"),
                    )
                    for n in names
                ],
            )
            extra = f"Expected misclassification (model): {_pct(seg.get('expected_error'))}."
            if seg.get("note"):
                extra += f" Note: {seg['note']}."
            acc = seg.get("accuracy_vs_truth")
            if acc:
                extra += f" Agreement with the phantom's true labels: {_pct(acc.get('overall'))}."
            body += f"<p>{extra}</p>"
        elif status.get("segment") and status["segment"] != "complete":
            body += _status_line("segment", recs)
    section("imaging", "Imaging QC", body)

    # ------------------------------------------------------- fractions + connectivity
    conn = s.get("connectivity") or {}
    met = s.get("metrics") or {}
    if conn:
        vf = met.get("volume_fractions") or {}
        rows_c = []
        for n in conn.get("phases", []):
            pf = conn["phase_fractions"].get(n, {})
            cc = conn["cluster_counts"].get(n, {})
            rows_c.append(
                (
                    _esc(n),
                    _num(
                        vf.get(n, sum(v or 0 for v in conn["volume_fractions"][n].values())), ".4f"
                    ),
                    f"{_pct(pf.get('percolating'))} ({cc.get('percolating', 0)})",
                    f"{_pct(pf.get('dead_end'))} ({cc.get('dead_end', 0)})",
                    f"{_pct(pf.get('isolated'))} ({cc.get('isolated', 0)})",
                    _esc(conn["connectivity"].get(n, "")),
                )
            )
        body = _table(
            [
                "phase",
                "volume fraction",
                "percolating (clusters)",
                "dead-end",
                "isolated",
                "connectivity",
            ],
            rows_c,
        )
        body += _img(_fractions_figure(figs, conn, phases), "phase fractions by connectivity class")
        body += _img(
            _class_figure(figs, ctx.arrays("connectivity"), list(conn.get("phases", []))),
            "connectivity class maps",
            "Percolating clusters touch both faces along the axis, dead-end clusters one, "
            "isolated clusters none.",
        )
    else:
        body = _status_line("connectivity", recs)
    section("phases", "Phase fractions and connectivity", body)

    # ---------------------------------------------------------------- slices
    lab = _split(ctx.arrays("connectivity"), "labels_") if conn else {}
    if not lab and inp.get("labelled"):
        lab = _split(ctx.arrays("input"), "labels_")
    if lab:
        body = _img(
            _qc_figure(figs, [("labels", lab, "labels")], phases),
            "orthogonal slices of the labelled microstructure",
            "Middle slices across axes 0 (thickness), 1 and 2.",
        )
    else:
        body = _absent("No labelled microstructure was produced.")
    section("slices", "Orthogonal slices", body)

    # ---------------------------------------------------------------- morphology
    if met:
        rows_m = []
        for n, d in (met.get("sizes_m") or {}).items():
            rows_m.append(
                (
                    _esc(n),
                    _um(d.get("d10")),
                    _um(d.get("d50")),
                    _um(d.get("d90")),
                    _num((met.get("specific_surface_area_per_m") or {}).get(n, None), ".4g", "1/m"),
                )
            )
        body = ""
        if rows_m:
            body += _table(["phase", "d10", "d50", "d90", "specific surface"], rows_m)
        rows_i = [
            (
                _esc(" / ".join(i["phases"])),
                _num(i.get("specific_area_per_m"), ".4g", "1/m"),
            )
            for i in met.get("interfaces") or []
        ]
        if rows_i:
            body += _table(["interface", "area per electrode volume"], rows_i)
    else:
        body = _status_line("metrics", recs)
    section("morphology", "Morphology", body)

    # ---------------------------------------------------------------- transport
    tra = s.get("transport") or {}
    if tra:
        rows_t = []
        for r in tra.get("table") or []:
            rows_t.append(
                (
                    f"axis {r['axis']}"
                    + (" (thickness)" if r["axis"] == tra.get("thickness_axis") else ""),
                    _num(r.get("tau"), ".4f") if r.get("percolating") else "∞ (not percolating)",
                    _num(r.get("deff_over_d0"), ".4f"),
                    _num(r.get("tau_bruggeman"), ".4f"),
                    _pct(r.get("bruggeman_relative_error")),
                )
            )
        body = (
            f"<p>Phase: <b>{_esc(tra.get('phase'))}</b>, "
            f"porosity ε = {_num(tra.get('porosity'), '.4f')}. "
            f"Tortuosity factor τ = ε D₀ / D_eff (TauFactor convention); Bruggeman "
            f"τ = ε^(1−α) with α = {_num(tra.get('bruggeman_exponent'))}.</p>"
        )
        body += _table(
            ["direction", "τ (image)", "D_eff / D₀", "τ Bruggeman", "Bruggeman error"], rows_t
        )
        ten = tra.get("tensor")
        if ten and isinstance(ten.get("tau"), list):
            body += (
                "<h3>Tortuosity tensor</h3><p>Periodic homogenisation (flux in every "
                "direction for each applied gradient); entries below the numerical error "
                f"({_num(100 * (ten.get('numerical_error') or 0), '.2g')} % of the largest) are "
                "zero within error.</p>"
            )
            body += _table(
                ["τ", "axis 0", "axis 1", "axis 2"],
                [(f"axis {i}", *(_num(v, ".4f") for v in row)) for i, row in enumerate(ten["tau"])],
            )
            pt = ten.get("principal_tau") or []
            pdirs = ten.get("principal_directions") or []
            if pt:
                body += _table(
                    ["principal τ", "direction (axis 0, 1, 2)"],
                    [
                        (
                            _num(t, ".4f"),
                            ", ".join(_num(pdirs[k][j], ".3f") for k in range(len(pdirs)))
                            if pdirs
                            else "–",
                        )
                        for j, t in enumerate(pt)
                    ],
                )
        sol = tra.get("solid")
        if sol:
            body += (
                f"<p>Solid network ({_esc(sol.get('phases'))}): τ through the thickness = "
                f"{_num(sol.get('tau_thickness'), '.4f')}.</p>"
            )
        rw = tra.get("random_walk")
        if rw:
            body += (
                f"<h3>Random-walk cross-check</h3><p>{rw['n_walkers']} walkers × "
                f"{rw['n_steps']} steps (seed {rw['seed']}, {rw['boundary']} images), "
                f"{rw['walker_steps_per_s_per_core'] / 1e6:.0f} M walker-steps/s per core; "
                f"plateau reached on every axis: {_num(rw['plateau_reached'])}.</p>"
            )
            body += _table(
                [
                    "direction",
                    "τ random walk",
                    "95 % interval",
                    "τ diffusion",
                    "difference",
                    "agrees",
                ],
                [
                    (
                        f"axis {r['axis']}",
                        _num(r.get("tau"), ".4f"),
                        f"{_num(r['ci95'][0], '.4f')} – {_num(r['ci95'][1], '.4f')}",
                        _num(r.get("tau_diffusion"), ".4f"),
                        _pct(r.get("relative_difference")),
                        _num(r.get("diffusion_inside_ci95")),
                    )
                    for r in rw.get("table", [])
                ],
            )
        a_tr = ctx.arrays("transport")
        if "concentration_thickness" in a_tr:
            body += _img(
                _field_figure(figs, a_tr["concentration_thickness"]),
                "concentration field of the through-thickness diffusion solve",
                "Steady concentration (1 at the current-collector side, 0 at the separator "
                "side) on a mid-plane containing the thickness axis; blank: no flux "
                "(solid, or pores not connected to both sides).",
            )
        if tra.get("notes"):
            body += (
                '<ul class="notes">'
                + "".join(f"<li>{_esc(n)}</li>" for n in tra["notes"])
                + "</ul>"
            )
    else:
        body = _status_line("transport", recs)
    section("transport", "Transport", body)

    # ---------------------------------------------------------------- cell
    cell = s.get("cell") or {}
    if cell:
        a_cell = ctx.arrays("cell")
        micro = cell.get("micro") or {}
        measured = "micro" in (cell.get("transports") or [])
        tau_e = _num(micro.get("tau_electrolyte"), ".4f") if measured else "not measured"
        area = _num(micro.get("specific_surface_area_per_m"), ".4g", "1/m")
        body = (
            f"<p>Parameter set <b>{_esc(cell.get('parameter_set'))}</b>, the image is the "
            f"<b>{_esc(cell.get('electrode'))}</b> electrode. Micro-informed properties: "
            f"porosity {_num(micro.get('porosity'), '.4f')}, τ electrolyte "
            f"{tau_e}, τ solid {_num(micro.get('tau_solid'), '.4f')}, "
            f"active/electrolyte area {area}, "
            f"particle radius {_um(micro.get('particle_radius_m'))}, active fraction "
            f"{_num(micro.get('active_fraction'), '.4f')}.</p>"
        )
        for tr in cell.get("transports") or []:
            rc = cell.get(f"rate_{tr}") or {}
            rows_r = []
            for i, c in enumerate(rc.get("c_rate") or []):
                rows_r.append(
                    (
                        f"{c:g}C",
                        _num(rc["capacity_Ah"][i], ".4f"),
                        _num(rc["energy_Wh"][i], ".4f"),
                        _num(rc["average_voltage_V"][i], ".4f"),
                        _pct(rc["fraction"][i]),
                        _esc((rc.get("bottleneck_key") or [""] * (i + 1))[i]),
                    )
                )
            body += f"<h3>Rate capability — {_esc(tr)} transport ({_esc(rc.get('model'))})</h3>"
            body += _table(
                [
                    "rate",
                    "capacity [A·h]",
                    "energy [W·h]",
                    "mean voltage [V]",
                    "of C/10",
                    "limited by",
                ],
                rows_r,
            )
        body += _img(_curves_figure(figs, cell, a_cell), "discharge curves and rate capability")
        tr0 = (cell.get("transports") or ["micro"])[0]
        bits = _cell_bits(cell)
        n_r = len((cell.get(f"rate_{tr0}") or {}).get("c_rate") or [])
        if n_r and bits is not None:
            picks = sorted({bits["index"], n_r - 1})
            body += "<h3>Where the voltage goes</h3>" + _img(
                _breakdown_figure(figs, cell, a_cell, tr0, picks),
                "voltage-loss breakdown",
                "Stacked voltage losses (OCV − V) during the discharge; they sum to the "
                "total within the solver's round-off.",
            )
        comp = cell.get("comparison") or []
        if comp:
            body += "<h3>Micro-informed vs Bruggeman</h3>" + _table(
                ["rate", "capacity micro [A·h]", "capacity Bruggeman [A·h]", "difference"],
                [
                    (
                        f"{r['c_rate']:g}C",
                        _num(r["capacity_micro_Ah"], ".4f"),
                        _num(r["capacity_bruggeman_Ah"], ".4f"),
                        "–"
                        if r.get("difference_percent") is None
                        else f"{r['difference_percent']:+.2f} %",
                    )
                    for r in comp
                ],
            )
        if cell.get("notes"):
            body += (
                '<ul class="notes">'
                + "".join(f"<li>{_esc(n)}</li>" for n in cell["notes"])
                + "</ul>"
            )
    else:
        body = _status_line("cell", recs)
    section("cell", "Cell performance", body)

    # ---------------------------------------------------------------- EIS
    eis = s.get("eis") or {}
    if eis.get("spectra"):
        a_eis = ctx.arrays("eis")
        body = _img(
            _nyquist_figure(figs, a_eis, list(eis["spectra"])),
            "Nyquist plot",
            "Area-specific impedance of the electrode (current collector to separator "
            "face), −Im Z against Re Z; markers at each decade of frequency.",
        )
        body += _table(
            ["spectrum", "model", "Re Z at the highest f", "Re Z at the lowest f"],
            [
                (
                    _esc(name.replace("_", " ")),
                    _esc(sp.get("model")),
                    _num(1e4 * sp["high_frequency_real_ohm_m2"], ".4g", "Ω·cm²"),
                    _num(1e4 * sp["low_frequency_real_ohm_m2"], ".4g", "Ω·cm²"),
                )
                for name, sp in eis["spectra"].items()
            ],
        )
        if eis.get("subvolume"):
            body += (
                "<p>Resolved model on the central subvolume "
                + " × ".join(f"[{a}:{b}]" for a, b in eis["subvolume"])
                + ", with the homogenised model of the same subvolume beside it.</p>"
            )
        if eis.get("notes"):
            body += (
                '<ul class="notes">'
                + "".join(f"<li>{_esc(n)}</li>" for n in eis["notes"])
                + "</ul>"
            )
    else:
        r = recs.get("eis")
        why = (
            f"{_esc(r.status.replace('_', ' '))}" + (f" — {_esc(r.reason)}" if r.reason else "")
            if r is not None
            else "no impedance stage in this version of microbat"
        )
        body = (
            f'<div class="absent" id="eis-absent"><b>Absent:</b> no impedance spectrum '
            f"({why}), so no Nyquist plot is shown.</div>"
        )
    section("eis", "Impedance (EIS)", body)

    # ---------------------------------------------------------------- warnings, settings
    warn_rows = [(_esc(r.stage.title), _esc(w)) for r in recs.values() for w in r.warnings]
    body = _table(["stage", "warning"], warn_rows, left=2) if warn_rows else "<p>None.</p>"
    section("warnings", "Warnings", body)
    section(
        "settings",
        "Settings",
        "<p>Rerun with <code>--config twin.toml</code> from the output folder to reproduce.</p>"
        f"<details><summary>twin.toml</summary><pre>{_esc(cfg.to_toml())}</pre></details>",
    )

    nav_html = " ".join(f'<a href="#{a}">{_esc(t)}</a>' for a, t in nav)
    subtitle = (
        f"{_esc(inp.get('source', ''))} — "
        f"{_esc(' × '.join(map(str, inp.get('shape') or [])))} voxels of "
        f"{', '.join(_um(v) for v in vs[:1])}"
    )
    return PAGE.substitute(
        title=_esc(cfg.report.title),
        subtitle=subtitle,
        nav=nav_html,
        body="\n".join(parts),
        css=CSS,
        version=_esc(__version__),
        created=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    )
