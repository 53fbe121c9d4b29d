"""Twin stage ``plating``: fast charge of the resolved electrode and lithium-plating risk.

Charges the labelled electrode (the negative electrode of the cell stage's parameter
set by default) with the microstructure-resolved model at each configured C-rate,
with :class:`microbat.degradation.plating.PlatingMonitor` on every step
(:func:`microbat.degradation.plating_map`): the plating onset (time and state of
charge at which φ_s − φ_e first falls below 0 V vs Li/Li⁺ on an interface face),
the interface area at risk, the hotspots and the aging heterogeneity index
(:mod:`microbat.degradation.heterogeneity`); optionally the same charge in PyBaMM's
DFN on the homogenised electrode. The resolved charge is the expensive part, so the
stage is off by default and works on a lateral crop (full thickness).

Report section "Fast charge and lithium plating": the onset table over C-rates, the
onset map through the worst hotspot of the highest rate, the heterogeneity index.
Diagnosis: a verdict (priority 8, ``lithium_plating``) when plating starts before
the end of the charge at the lowest C-rate; otherwise a finding with the lowest
rate that plates (or none).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from microbat.degradation.plating import (
    dfn_end_time,
    dfn_plating,
    hotspot_centre,
    plating_map,
)
from microbat.pipeline.base import (
    Finding,
    Stage,
    StageContext,
    StageOutput,
    StageSettings,
    Verdict,
    central,
    finite_or_none,
    optional,
)
from microbat.pipeline.reportkit import ReportSection, ReportView, img, notes_list, num, pct, table
from microbat.pipeline.stages.ssb import liquid_only, solid_state

__all__ = ["STAGE", "PlatingSettings"]


class PlatingSettings(StageSettings):
    """Fast charge and lithium plating (``microbat.degradation.plating_map``)."""

    enabled: bool = Field(
        False, description="Run the plating stage (a resolved charge per C-rate: minutes)."
    )
    c_rates: list[float] = Field(
        [1.0, 2.0, 3.0],
        description="Charge C-rates (1C moves the electrode through the set's window in one hour).",
        json_schema_extra={"unit": "1/h"},
    )
    electrode: Literal["negative", "positive"] = Field(
        "negative",
        description="Electrode of the cell stage's parameter set the image is (plating "
        "concerns the graphite negative).",
    )
    cv_voltage: float | None = Field(
        None,
        description="Constant-voltage hold after the CC phase (none: CC to the set's "
        "4.2 V-equivalent end).",
        json_schema_extra={"unit": "V"},
    )
    lateral_size: int = Field(
        32,
        ge=4,
        description="Largest edge across the thickness of the charged box (centred crop; "
        "the whole thickness is kept).",
        json_schema_extra={"unit": "voxels"},
    )
    dfn: bool = Field(
        True, description="Also charge the homogenised electrode in PyBaMM's DFN (seconds)."
    )

    @field_validator("c_rates")
    @classmethod
    def _rates(cls, v: list[float]) -> list[float]:
        if not v or any(not (r > 0 and math.isfinite(r)) for r in v):
            raise ValueError(f"c_rates must be positive, got {v}")
        return sorted(set(float(r) for r in v))


def _active(ctx: StageContext) -> str | None:
    if not ctx.config.plating.enabled:
        return "the plating stage is switched off (plating.enabled = true runs it)"
    if solid_state(ctx):
        return liquid_only("the plating analysis (a graphite charge in a liquid electrolyte)")
    return None


def _slice_through(field: np.ndarray, centre: tuple[int, ...], thickness_axis: int) -> np.ndarray:
    """The plane through ``centre`` containing the thickness axis (thickness first)."""
    other = [a for a in range(3) if a != thickness_axis]
    sl: list[Any] = [slice(None)] * 3
    sl[other[1]] = centre[other[1]]
    plane = field[tuple(sl)]
    if thickness_axis > other[0]:
        plane = plane.T
    return np.asarray(plane, np.float32)


def _run(ctx: StageContext) -> StageOutput:
    cfg = ctx.config.plating
    params = ctx.config.cell.parameter_set
    ms_full = ctx.microstructure()
    box = central(ms_full.shape, cfg.lateral_size, whole_axis=ms_full.thickness_axis)
    cropped = any(b.stop - b.start < n for b, n in zip(box, ms_full.shape, strict=True))
    ms = ms_full.crop(*box) if cropped else ms_full
    notes: list[str] = []
    if cropped:
        notes.append(
            "charged box " + " x ".join(str(s.stop - s.start) for s in box) + " voxels (lateral "
            f"crop to plating.lateral_size = {cfg.lateral_size}, whole thickness)"
        )
    rows = []
    arrays: dict[str, np.ndarray] = {}
    for c in cfg.c_rates:
        ctx.step(f"resolved {c:g}C charge with the plating monitor ({params}, {cfg.electrode})")
        res = optional(
            notes,
            f"{c:g}C charge",
            lambda c=c: plating_map(
                ms, params, c_rate=c, cv_voltage=cfg.cv_voltage, electrode=cfg.electrode
            ),
        )
        if res is None:
            continue
        ch = res.charge
        het = (res.heterogeneity or {}).get("end") or {}
        row: dict[str, Any] = {
            "c_rate": c,
            "current_A": finite_or_none(abs(ch.get("current_A", math.nan))),
            "end_time_s": float(res.time_s[-1]),
            "end_soc": float(res.soc[-1]),
            "complete": bool(ch.get("complete", True)),
            "status": ch.get("status"),
            "onset_time_s": finite_or_none(res.onset_time_s),
            "onset_soc": finite_or_none(res.onset_soc),
            "area_fraction_at_risk_end": float(res.area_fraction_at_risk[-1]),
            "min_plating_overpotential_V": float(res.min_plating_overpotential_V),
            "hotspots": len(res.hotspots),
            "worst_hotspot_um2": res.hotspots[0].area_um2 if res.hotspots else None,
            "worst_hotspot_depth_m": res.hotspots[0].depth_m if res.hotspots else None,
            "heterogeneity_index": finite_or_none(het.get("index")),
            "cov_current_density": finite_or_none(het.get("current_density")),
            "cov_plating_exposure": finite_or_none(het.get("plating_exposure")),
            "monitor_s": ch.get("monitor_s"),
            "charge_s": ch.get("wall_s"),
        }
        if cfg.dfn:
            ctx.step(f"DFN {c:g}C charge of the homogenised electrode")
            d = optional(
                notes,
                f"DFN at {c:g}C",
                lambda ch=ch, res=res: dfn_plating(
                    ms, params, current_A=abs(ch["current_A"]),
                    initial_stoichiometry=ch["initial_stoichiometry"],
                    end_time_s=dfn_end_time(res), cutoff_V=-1.0, electrode=cfg.electrode,
                ),
            )  # fmt: skip
            if d is not None:
                row["dfn_onset_time_s"] = finite_or_none(d.onset_time_s)
                row["dfn_min_plating_overpotential_V"] = float(np.min(d.min_overpotential_V))
        rows.append(row)
        # the report's map: the highest rate that plates, else the highest rate
        if res.plated or "onset_map" not in arrays:
            centre = hotspot_centre(res)
            t = ms.thickness_axis
            arrays["onset_map"] = _slice_through(res.onset_time_map_s, centre, t)
            arrays["onset_map_c_rate"] = np.array([c])
            arrays["depth_m"] = res.depth_m.astype(float)
            arrays["depth_at_risk_end"] = res.depth_at_risk_fraction[-1].astype(float)
            # the earliest onset in each layer along the thickness
            om = np.moveaxis(res.onset_time_map_s, t, 0).reshape(ms.shape[t], -1)
            with np.errstate(all="ignore"):
                first = np.where(
                    np.isfinite(om).any(axis=1),
                    np.nanmin(np.where(np.isfinite(om), om, np.inf), axis=1),
                    np.nan,
                )
            arrays["depth_first_onset_s"] = first.astype(float)
    summary = {
        "parameter_set": params,
        "electrode": cfg.electrode,
        "cv_voltage_V": cfg.cv_voltage,
        "shape": list(ms.shape),
        "rates": rows,
        "notes": notes,
    }
    return StageOutput(summary=summary, arrays=arrays)


# ========================================================================= report
def _report(view: ReportView) -> list[ReportSection]:
    title = "Fast charge and lithium plating"
    s = view.summary("plating")
    if not s:
        return [ReportSection("plating", title, view.status_line("plating"))]
    rows = s.get("rates") or []
    dfn = any("dfn_onset_time_s" in r for r in rows)
    body = (
        f"<p>Resolved charge of the {s.get('electrode')} electrode of "
        f"<b>{s.get('parameter_set')}</b> on a {' × '.join(str(n) for n in s.get('shape', []))} "
        "box against lithium metal; a face is at risk of lithium plating while "
        "φ<sub>s</sub> − φ<sub>e</sub> &lt; 0 V vs Li/Li⁺. The aging heterogeneity index "
        "is the volume-weighted coefficient of variation of the particles' state of "
        "charge at the end of the charge.</p>"
    )
    head = [
        "C-rate", "end [min]", "end SOC", "onset [min]", "onset SOC", "area at risk (end)",
        "min η_pl [mV]", "hotspots", "heterogeneity index", "CoV current density",
    ]  # fmt: skip
    if dfn:
        head.append("DFN onset [min]")
    out_rows = []
    for r in rows:
        on = r.get("onset_time_s")
        line = [
            num(r["c_rate"], "g"),
            num(r["end_time_s"] / 60.0, ".3g"),
            num(r["end_soc"], ".3f"),
            "never" if on is None else num(on / 60.0, ".3g"),
            "–" if r.get("onset_soc") is None else num(r["onset_soc"], ".3f"),
            pct(r["area_fraction_at_risk_end"]),
            num(1e3 * r["min_plating_overpotential_V"], ".3g"),
            str(r.get("hotspots", 0)),
            num(r.get("heterogeneity_index"), ".3g"),
            num(r.get("cov_current_density"), ".3g"),
        ]
        if dfn:
            d = r.get("dfn_onset_time_s")
            line.append("never" if d is None else num(d / 60.0, ".3g"))
        out_rows.append(line)
    body += table(head, out_rows)
    arr = view.arrays("plating")
    if "onset_map" in arr:
        figs = view.figures
        fig = figs.new(9.6, 3.9, left=0.07, right=0.97, top=0.88, bottom=0.14, wspace=0.3)
        ax = fig.add_subplot(1, 2, 1)
        import matplotlib as mpl

        cmap = mpl.colormaps["viridis_r"].with_extremes(bad="0.85")
        m = np.ma.masked_invalid(arr["onset_map"] / 60.0)
        im = ax.imshow(m, cmap=cmap, aspect="auto")
        fig.colorbar(im, ax=ax, label="onset [min]")
        ax.set_ylabel("thickness (collector at the top)")
        ax.set_xticks([])
        ax.set_title(f"plating onset at {float(arr['onset_map_c_rate'][0]):g}C", fontsize=9)
        ax2 = fig.add_subplot(1, 2, 2)
        if "depth_first_onset_s" in arr:
            ax2.plot(1e6 * arr["depth_m"], arr["depth_first_onset_s"] / 60.0, "o-", ms=3)
            ax2.set_ylabel("first onset in the layer [min]")
        else:
            ax2.plot(1e6 * arr["depth_m"], 100 * arr["depth_at_risk_end"], "o-", ms=3)
            ax2.set_ylabel("interface area at risk at the end [%]")
        ax2.set_xlabel("distance from the separator [µm]")
        body += img(
            figs.png(fig),
            "plating onset map and depth profile",
            "Left: time at which each interface voxel first went below 0 V vs Li/Li⁺, on "
            "the plane through the worst hotspot (grey: never, or not on the interface). "
            "Right: the first onset in each layer against its distance from the separator "
            "(onsets are step times of the resolved model).",
        )
    body += notes_list(s.get("notes") or [])
    return [ReportSection("plating", title, body)]


def _diagnose(results: Mapping[str, Any]) -> Iterator[Verdict | Finding]:
    s = results.get("plating") or {}
    rows = s.get("rates") or []
    if not rows:
        return
    low = rows[0]
    if low.get("onset_time_s") is not None:
        yield Verdict(
            8,
            "lithium_plating",
            f"Lithium plating risk already at {low['c_rate']:g}C: the interface goes below "
            f"0 V vs Li/Li⁺ after {low['onset_time_s'] / 60:.3g} min (SOC "
            f"{low['onset_soc']:.2f}), before the end of the charge",
            (
                f"{100 * low['area_fraction_at_risk_end']:.1f} % of the interface at risk at "
                f"the end, min plating overpotential {1e3 * low['min_plating_overpotential_V']:.0f}"
                " mV",
            ),
        )
        return
    plating = [r for r in rows if r.get("onset_time_s") is not None]
    if plating:
        r = plating[0]
        yield Finding(
            35,
            f"Lithium plating starts at {r['c_rate']:g}C (after {r['onset_time_s'] / 60:.3g} "
            f"min, SOC {r['onset_soc']:.2f}); {low['c_rate']:g}C charges without risk "
            f"(margin {1e3 * low['min_plating_overpotential_V']:.0f} mV).",
        )
    else:
        yield Finding(
            85,
            f"No lithium plating risk up to {rows[-1]['c_rate']:g}C (smallest margin "
            f"{1e3 * rows[-1]['min_plating_overpotential_V']:.0f} mV).",
        )


def _headline(results: Mapping[str, Any]) -> dict[str, Any]:
    rows = (results.get("plating") or {}).get("rates") or []
    return {
        "plating_onset_s": [r.get("onset_time_s") for r in rows],
        "plating_c_rates": [r.get("c_rate") for r in rows],
        "heterogeneity_index": [r.get("heterogeneity_index") for r in rows],
    }


STAGE = Stage(
    "plating",
    "Fast charge and lithium plating",
    ("input", "segment"),
    ("plating", "cell"),
    _run,
    active=_active,
    n_steps=6,
    settings=(("plating", PlatingSettings),),
    report=_report,
    diagnose=_diagnose,
    headline=_headline,
)
