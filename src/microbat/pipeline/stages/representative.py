"""Twin stage ``representative``: whether the image is large enough for its numbers.

Runs :func:`microbat.transport.representative_volume` on the labelled
microstructure: porosity, active fraction and ``D_eff/D0`` per axis on disjoint
sub-volumes of growing size, their spread extrapolated to the whole image, and
the 95 % intervals of the whole image's values. With a cell result, the
intervals of porosity and of τ through the thickness, and the τ of the two other
axes (in case the thickness axis is not the one assumed), are carried to the cell
stage's key prediction (the capacity fraction at the first limited rate) by a few
extra P2D runs. A sample that is not representative raises a
:class:`~microbat.transport.representative.RepresentativeVolumeWarning` (listed
in the report's warnings) and leads the diagnosis' findings. Report section:
"Representative volume".
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from microbat.cell.micro import MicroProperties
from microbat.cell.parameters import load_parameters
from microbat.cell.rate import rate_capability
from microbat.core.errors import MicrobatError
from microbat.pipeline.base import (
    Finding,
    Stage,
    StageContext,
    StageOutput,
    StageSettings,
    finite_or_none,
)
from microbat.pipeline.reportkit import (
    Figures,
    ReportSection,
    ReportView,
    esc,
    img,
    notes_list,
    num,
    pct,
    table,
)
from microbat.pipeline.stages.cell import LIMITED_FRACTION
from microbat.pipeline.stages.ssb import ion_phase
from microbat.transport.representative import (
    RepresentativeVolumeWarning,
    representative_volume,
)

__all__ = ["STAGE", "RepresentativeSettings"]


class RepresentativeSettings(StageSettings):
    """Representative-volume check (``microbat.transport.representative_volume``)."""

    enabled: bool = Field(
        True, description="Check whether the image is large enough for its numbers."
    )
    fractions: list[float] = Field(
        [0.25, 0.333, 0.5],
        description="Edge of the disjoint sub-volumes as a fraction of the image edge "
        "(each in (0, 0.5]).",
    )
    samples: int = Field(8, ge=2, description="Sub-volumes drawn per size.")
    seed: int = Field(0, description="Seed of the draw of sub-volumes.")
    tolerance: float = Field(
        0.2,
        gt=0,
        le=1,
        description="Relative half-width of the 95 % interval below which a number counts "
        "as representative of the material.",
    )
    tortuosity: bool = Field(
        True, description="Also D_eff/D0 along each axis (one diffusion solve per sub-volume)."
    )
    cell: bool = Field(
        True,
        description="Carry the intervals of porosity and tortuosity, and the other axes' "
        "tortuosity, to the cell stage's key prediction (a few extra P2D runs).",
    )

    @field_validator("fractions")
    @classmethod
    def _fractions(cls, v: list[float]) -> list[float]:
        if not v or any(not (0 < f <= 0.5) for f in v):
            raise ValueError(f"fractions must lie in (0, 0.5], got {v}")
        return v


# ============================================================================ run
def _active(ctx: StageContext) -> str | None:
    if not ctx.config.representative.enabled:
        return "the representative-volume check is switched off (representative.enabled = false)"
    return None


def _run(ctx: StageContext) -> StageOutput:
    cfg = ctx.config.representative
    ms = ctx.microstructure()
    tra = ctx.summary("transport") if ctx.status("transport") == "complete" else {}
    full: dict[str, float | None] = {}
    for row in tra.get("table") or []:
        full[f"deff_{row['axis']}"] = float(row.get("deff_over_d0") or 0.0)
    phase = ion_phase(ctx, ctx.config.transport.phase)
    ctx.step(
        f"{cfg.samples} disjoint sub-volumes of {', '.join(f'{f:g}' for f in cfg.fractions)} "
        "of the image edge" + (" (with a diffusion solve each)" if cfg.tortuosity else "")
    )
    res = representative_volume(
        ms,
        phase=phase,
        fractions=cfg.fractions,
        samples=cfg.samples,
        axes="all" if cfg.tortuosity else (),
        boundary=ctx.config.transport.boundary,
        tolerance=cfg.tolerance,
        full_values=full,
        seed=cfg.seed,
    )
    summary: dict[str, Any] = res.to_dict()
    ax = ms.thickness_axis
    summary["thickness_axis"] = ax
    summary["phase"] = phase
    summary["tau_interval"] = {
        str(a): [finite_or_none(v) for v in iv] if (iv := res.tau_interval(a)) else None
        for a in range(ms.ndim)
        if f"deff_{a}" in res.properties
    }
    notes: list[str] = []
    if cfg.cell and ctx.status("cell") == "complete":
        ctx.step("carrying the intervals to the cell stage's key prediction")
        summary["cell"] = _cell_interval(ctx, res, notes)
    summary["notes"] = notes
    arrays = _spread_arrays(res)
    if not res.representative:
        warnings.warn(_warning_text(summary), RepresentativeVolumeWarning, stacklevel=2)
    return StageOutput(summary=summary, arrays=arrays)


def _spread_arrays(res: Any) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name, p in res.properties.items():
        out[f"{name}_edge"] = np.asarray([np.prod(e) ** (1 / 3) for e in p.edges], float)
        out[f"{name}_relstd"] = np.asarray(p.std, float) / abs(p.value) if p.value else np.zeros(0)
    return out


def _key_rate(cell: Mapping[str, Any]) -> tuple[int, float, float] | None:
    rc = cell.get("rate_micro") or {}
    rates = rc.get("c_rate") or []
    if not rates:
        return None
    fr = [math.nan if f is None else float(f) for f in rc.get("fraction") or []]
    idx = next((i for i, f in enumerate(fr) if math.isfinite(f) and f < LIMITED_FRACTION), None)
    idx = len(rates) - 1 if idx is None else idx
    return idx, float(rates[idx]), fr[idx] if idx < len(fr) else math.nan


def _cell_interval(ctx: StageContext, res: Any, notes: list[str]) -> dict[str, Any] | None:
    """The cell stage's key capacity fraction at the ends of the intervals and per axis."""
    cell = ctx.summary("cell")
    if "micro" not in (cell.get("transports") or []):
        notes.append("the cell stage ran without measured transport: no interval carried to it")
        return None
    key = _key_rate(cell)
    if key is None:
        return None
    _, rate, base = key
    cfg = ctx.config.cell
    params = load_parameters(cfg.parameter_set)
    micro = {k: v for k, v in (cell.get("micro") or {}).items() if v is not None}
    eps0 = float(micro["porosity"])
    act0 = micro.get("active_fraction")

    def fraction(eps: float, tau: float, what: str) -> float | None:
        kw = dict(micro, porosity=eps, tau_electrolyte=max(1.0, tau))
        if act0 is not None:  # keep the active share of the solid
            kw["active_fraction"] = float(act0) * (1.0 - eps) / (1.0 - eps0)
        try:
            r = rate_capability(
                params,
                c_rates=[rate],
                model=cfg.model,
                transport="micro",
                micro=MicroProperties(**kw),
                breakdown=False,
                on_failure="record",
            )
        except MicrobatError as exc:
            notes.append(f"{what}: the P2D run failed ({exc})")
            return None
        return finite_or_none(r.fraction[0])

    ax_t = ctx.microstructure().thickness_axis
    out: dict[str, Any] = {"c_rate": rate, "fraction": finite_or_none(base)}
    eps_iv = res.interval("porosity")
    tau_iv = res.tau_interval(ax_t)
    tau0 = float(micro["tau_electrolyte"])
    if eps_iv is not None and tau_iv is not None:
        lo_eps = max(eps_iv[0], 0.02)
        hi_eps = min(eps_iv[1], 0.95)
        if math.isinf(tau_iv[1]):
            low = 0.0
            notes.append(
                "the 95 % interval of D_eff through the thickness reaches 0: another sample of "
                "this material may have no ionic path, so the lower end of the capacity "
                "interval is 0"
            )
        else:
            low = fraction(lo_eps, tau_iv[1], "low end")
        high = fraction(hi_eps, tau_iv[0], "high end")
        out["interval"] = [low, high]
        out["interval_inputs"] = {
            "low": {"porosity": lo_eps, "tau": finite_or_none(tau_iv[1])},
            "high": {"porosity": hi_eps, "tau": tau_iv[0]},
        }
    rows = []
    for row in ctx.summary("transport").get("table") or []:
        a = int(row["axis"])
        t = row.get("tau")
        f = (base if a == ax_t else fraction(eps0, float(t), f"axis {a}")) if t is not None else 0.0
        rows.append({"axis": a, "tau": t, "fraction": finite_or_none(f) if f is not None else None})
    out["orientations"] = rows
    fs = [r["fraction"] for r in rows if r["fraction"] is not None]
    out["orientation_range"] = [min(fs), max(fs)] if fs else None
    out["tau_used"] = tau0
    return out


def _warning_text(summary: Mapping[str, Any]) -> str:
    props = summary.get("properties") or {}
    bad = [
        f"{_label(k)} ±{pct(p.get('relative_ci95'))}"
        for k, p in props.items()
        if p.get("representative") is False
    ]
    return (
        "the image is too small to be representative of the material: the 95 % interval of "
        + ", ".join(bad)
        + f" exceeds ±{pct(summary.get('tolerance'))} (sub-volume analysis); treat the numbers "
        "as this sample's, not the material's, or image a larger volume"
    )


_LABELS = {"porosity": "porosity", "active_fraction": "active fraction"}


def _label(name: str) -> str:
    if name.startswith("deff_"):
        return f"D_eff/D0 along axis {name[5:]}"
    return _LABELS.get(name, name)


# ========================================================================= report
def _spread_figure(figs: Figures, rep: Mapping[str, Any], arr: Mapping[str, np.ndarray]) -> str:
    fig = figs.new(6.4, 4.2, left=0.13, right=0.97, top=0.9, bottom=0.13)
    ax = fig.subplots()
    n_full = float(rep.get("n_voxels") or 1) ** (1 / 3)
    for name, p in (rep.get("properties") or {}).items():
        e = arr.get(f"{name}_edge")
        s = arr.get(f"{name}_relstd")
        if e is None or s is None or s.size == 0:
            continue
        (line,) = ax.plot(e, s, "o-", lw=1.2, ms=4, label=_label(name))
        if p.get("std_full") is not None and p.get("value"):
            ax.plot(
                [e[-1], n_full],
                [s[-1], p["std_full"] / abs(p["value"])],
                ":",
                color=line.get_color(),
                lw=1.0,
            )
            ax.plot(n_full, p["std_full"] / abs(p["value"]), "*", color=line.get_color(), ms=8)
    tol = float(rep.get("tolerance") or 0.2) / 1.96
    ax.axhline(tol, color="#a8321f", lw=0.8, ls="--", label="tolerance (1 σ)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("sub-volume edge [voxels] (star: the whole image, extrapolated)")
    ax.set_ylabel("relative standard deviation")
    ax.set_title("spread over disjoint sub-volumes", fontsize=9.5)
    ax.legend(fontsize=7.5, loc="lower left")
    return figs.png(fig)


def _report(view: ReportView) -> list[ReportSection]:
    rep = view.summary("representative")
    if not rep:
        return [
            ReportSection(
                "representative", "Representative volume", view.status_line("representative")
            )
        ]
    props = rep.get("properties") or {}
    ax_t = rep.get("thickness_axis")
    verdict = (
        "<b>The image is large enough</b> for these numbers"
        if rep.get("representative")
        else "<b>The image is too small</b> to be representative of the material for "
        + ", ".join(_label(k) for k in rep.get("not_representative") or [])
    )
    body = (
        f"<p>{verdict} (95 % interval within ±{pct(rep.get('tolerance'))} of the value). "
        f"The image was tiled into disjoint sub-volumes of "
        f"{', '.join(f'{f:g}' for f in rep.get('fractions') or [])} of its edge; the spread "
        "of each number over them, extrapolated to the whole image's volume (variance ∝ "
        "V^−γ, Kanit et al. 2003), gives the interval of the whole image's value.</p>"
    )
    rows = []
    for name, p in props.items():
        iv = "–"
        if p.get("ci95") is not None and p.get("value") is not None:
            iv = f"{num(p['value'] - p['ci95'])} – {num(p['value'] + p['ci95'])}"
        sizes = "; ".join(
            f"{'×'.join(map(str, e))}: {num(m, '.3g')} ± {num(s, '.2g')}"
            + (f" ({k} blocked)" if k else "")
            for e, m, s, k in zip(
                p.get("edges") or [],
                p.get("mean") or [],
                p.get("std") or [],
                p.get("n_not_percolating") or [],
                strict=False,
            )
        )
        rows.append(
            (
                esc(_label(name)),
                num(p.get("value")),
                iv,
                pct(p.get("relative_ci95")),
                esc(sizes),
                num(p.get("representative")),
            )
        )
    body += table(
        [
            "number",
            "whole image",
            "95 % interval",
            "±",
            "sub-volumes: mean ± std",
            "representative",
        ],
        rows,
    )
    tiv = rep.get("tau_interval") or {}
    if tiv:
        body += table(
            ["τ", "95 % interval"],
            [
                (
                    f"axis {a}" + (" (thickness)" if int(a) == ax_t else ""),
                    "–"
                    if not v
                    else f"{num(v[0], '.3g')} – " + ("∞" if v[1] is None else num(v[1], ".3g")),
                )
                for a, v in tiv.items()
            ],
        )
    if any(k.endswith("_relstd") for k in view.arrays("representative")):
        body += img(
            _spread_figure(view.figures, rep, view.arrays("representative")),
            "spread over sub-volumes",
            "Relative standard deviation of each number over the disjoint sub-volumes of each "
            "size; the star is the extrapolation to the whole image, the dashed line the "
            "tolerance.",
        )
    cell = rep.get("cell")
    if cell:
        body += f"<h3>The cell prediction at {cell['c_rate']:g}C</h3>"
        line = f"<p>The cell section gives {pct(cell.get('fraction'))} of the C/10 capacity. "
        if cell.get("interval"):
            lo, hi = cell["interval"]
            line += (
                f"Over the 95 % intervals of porosity and of τ through the thickness it could "
                f"be {pct(lo)} – {pct(hi)}. "
            )
        if cell.get("orientation_range"):
            lo, hi = cell["orientation_range"]
            line += (
                f"With the τ of each axis taken as the thickness axis it ranges over "
                f"{pct(lo)} – {pct(hi)}."
            )
        body += line + "</p>"
        body += table(
            ["thickness axis", "τ", f"capacity at {cell['c_rate']:g}C / C/10"],
            [
                (
                    f"axis {r['axis']}" + (" (assumed)" if r["axis"] == ax_t else ""),
                    num(r.get("tau"), ".4f") if r.get("tau") is not None else "∞",
                    pct(r.get("fraction")),
                )
                for r in cell.get("orientations") or []
            ],
        )
    body += notes_list(rep.get("notes") or [])
    return [ReportSection("representative", "Representative volume", body)]


# ====================================================================== diagnosis
def _diagnose(results: Mapping[str, Any]) -> Iterator[Finding]:
    rep = results.get("representative") or {}
    if not rep:
        return
    cell = rep.get("cell") or {}
    extra = ""
    if cell.get("interval"):
        lo, hi = cell["interval"]
        extra = (
            f"; the capacity at {cell['c_rate']:g}C ({pct(cell.get('fraction'))} of C/10) "
            f"could be {pct(lo)} – {pct(hi)}"
        )
        if cell.get("orientation_range"):
            a, b = cell["orientation_range"]
            extra += f", and {pct(a)} – {pct(b)} depending on which axis is the thickness"
    if rep.get("representative"):
        yield Finding(
            90,
            "The image is large enough to be representative: every checked number's 95 % "
            f"interval is within ±{pct(rep.get('tolerance'))}{extra}.",
        )
        return
    props = rep.get("properties") or {}
    bad = [
        f"{_label(k)} ±{pct(p.get('relative_ci95'))}"
        for k, p in props.items()
        if p.get("representative") is False
    ]
    yield Finding(
        1,
        "The image is too small to be representative of the material (95 % intervals: "
        + ", ".join(bad)
        + f"){extra}. The numbers in this report describe this sample; image a larger volume "
        "before drawing conclusions about the material.",
    )


def _headline(results: Mapping[str, Any]) -> dict[str, Any]:
    rep = results.get("representative") or {}
    if not rep:
        return {"representative": None}
    props = rep.get("properties") or {}
    ax = rep.get("thickness_axis")
    cell = rep.get("cell") or {}
    por = props.get("porosity") or {}
    return {
        "representative": rep.get("representative"),
        "porosity_ci95": por.get("ci95"),
        "tau_thickness_interval": (rep.get("tau_interval") or {}).get(str(ax)),
        "key_capacity_fraction_interval": cell.get("interval"),
        "key_capacity_fraction_orientation_range": cell.get("orientation_range"),
    }


STAGE = Stage(
    "representative",
    "Representative volume",
    ("input", "segment", "transport", "cell"),
    ("representative", "transport", "cell"),
    _run,
    active=_active,
    n_steps=2,
    needs_objects=True,
    settings=(("representative", RepresentativeSettings),),
    report=_report,
    diagnose=_diagnose,
    headline=_headline,
)
