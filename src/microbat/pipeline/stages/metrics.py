"""Twin stage ``metrics``: volume fractions, interface areas and size distributions.

Runs :func:`microbat.imaging.characterize` on the labelled microstructure and
adds the active/electrolyte specific area the cell model needs. Report section:
"Morphology".
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import Field

import microbat.imaging.metrics as morphology
from microbat.core.errors import MicrobatWarning
from microbat.pipeline.base import (
    Finding,
    Stage,
    StageContext,
    StageOutput,
    StageSettings,
    phase_rows,
)
from microbat.pipeline.reportkit import ReportSection, ReportView, esc, num, table, um

__all__ = ["PLAUSIBLE", "STAGE", "ElectrodePlausibilityWarning", "MetricsSettings"]

#: Deliberately wide ranges that every Li-ion electrode image falls in (calendered
#: coatings have porosities of 0.2-0.5 and 2-10 % carbon-binder, NMC/LFP/graphite
#: particles of 0.1-30 µm, e.g. Zheng et al., J. Power Sources 208 (2012) 52-57;
#: Lu et al., Nat. Commun. 11 (2020) 2079). Outside them the image is probably not
#: an electrode (a snow, rock or foam scan), or its segmentation went wrong.
PLAUSIBLE = {
    "porosity": (0.10, 0.75),
    "active_fraction": (0.20, 0.85),
    "carbon_binder_fraction": (0.0, 0.30),
    "active_d50_m": (1e-7, 5e-5),
    "active_d50_voxels": (3.0, float("inf")),
}


class ElectrodePlausibilityWarning(MicrobatWarning):
    """The image does not look like a battery electrode (see ``PLAUSIBLE``)."""


class MetricsSettings(StageSettings):
    """Morphology (``microbat.imaging.characterize``)."""

    sizes: bool = Field(
        True, description="Local-thickness size distributions (d10/d50/d90; the slowest part)."
    )


def _run(ctx: StageContext) -> StageOutput:
    ms = ctx.microstructure()
    ctx.step(
        "volume fractions, interface areas"
        + (", local-thickness sizes" if ctx.config.metrics.sizes else "")
    )
    res = morphology.characterize(ms, sizes=ctx.config.metrics.sizes)
    summary = res.to_dict()
    if "analysis_crop" in ms.metadata:
        summary["analysis_crop"] = ms.metadata["analysis_crop"]
    summary["phases_table"] = phase_rows(ms)
    summary["active_electrolyte_specific_area_per_m"] = _active_electrolyte_area(ms, res)
    problems = _implausible(summary, min(ms.voxel_size))
    summary["plausibility"] = {"ranges": PLAUSIBLE, "problems": problems}
    if problems:
        warnings.warn(
            "the image does not look like a battery electrode: "
            + "; ".join(problems)
            + ". Check the input and its segmentation; the electrode models that follow "
            "assume an electrode",
            ElectrodePlausibilityWarning,
            stacklevel=2,
        )
    return StageOutput(summary=summary)


def _implausible(summary: Mapping[str, Any], voxel_m: float) -> list[str]:
    """Which of the ``PLAUSIBLE`` ranges the measured numbers leave."""
    roles = {p["name"]: p["role"] for p in summary.get("phases_table") or []}
    vf = summary.get("volume_fractions") or {}
    out: list[str] = []
    solid_state = "solid_electrolyte" in roles.values() and "electrolyte" not in roles.values()
    if "active" not in roles.values() or not ("electrolyte" in roles.values() or solid_state):
        out.append("the phase table has no active or no pore (electrolyte) phase")
        return out

    def frac(role: str) -> float:
        return float(sum(v for k, v in vf.items() if roles.get(k) == role))

    # a solid-state electrode: the solid electrolyte takes the place of the pores
    ion = "solid_electrolyte" if solid_state else "electrolyte"
    for key, value, what in (
        ("porosity", frac(ion), "solid-electrolyte fraction" if solid_state else "porosity"),
        ("active_fraction", frac("active"), "active-material fraction"),
        ("carbon_binder_fraction", frac("carbon_binder"), "carbon-binder fraction"),
    ):
        lo, hi = PLAUSIBLE[key]
        if not (lo <= value <= hi):
            out.append(f"{what} {value:.2f} outside {lo:.2f}–{hi:.2f}")
    active = next(k for k, r in roles.items() if r == "active")
    d50 = ((summary.get("sizes_m") or {}).get(active) or {}).get("d50")
    if d50:
        lo, hi = PLAUSIBLE["active_d50_m"]
        if not (lo <= d50 <= hi):
            out.append(
                f"active particles of {1e6 * d50:.3g} µm (median local-thickness diameter) "
                f"outside {1e6 * lo:.2g}–{1e6 * hi:.2g} µm"
            )
        if d50 / voxel_m < PLAUSIBLE["active_d50_voxels"][0]:
            out.append(f"active particles only {d50 / voxel_m:.1f} voxels across: not resolved")
    return out


def _active_electrolyte_area(ms: Any, res: Any) -> float | None:
    act = {p.name for p in ms.phases.with_role("active")}
    ele = {p.name for p in ms.phases.with_role("electrolyte")}
    total = 0.0
    found = False
    for (a, b), v in res.interface_specific_areas.items():
        if (a in act and b in ele) or (a in ele and b in act):
            total += float(v)
            found = True
    return total if found else None


def _report(view: ReportView) -> list[ReportSection]:
    met = view.summary("metrics")
    if met:
        rows_m = []
        for n, d in (met.get("sizes_m") or {}).items():
            rows_m.append(
                (
                    esc(n),
                    um(d.get("d10")),
                    um(d.get("d50")),
                    um(d.get("d90")),
                    num((met.get("specific_surface_area_per_m") or {}).get(n, None), ".4g", "1/m"),
                )
            )
        body = ""
        if rows_m:
            body += table(["phase", "d10", "d50", "d90", "specific surface"], rows_m)
        rows_i = [
            (
                esc(" / ".join(i["phases"])),
                num(i.get("specific_area_per_m"), ".4g", "1/m"),
            )
            for i in met.get("interfaces") or []
        ]
        if rows_i:
            body += table(["interface", "area per electrode volume"], rows_i)
    else:
        body = view.status_line("metrics")
    return [ReportSection("morphology", "Morphology", body)]


def _diagnose(results: Mapping[str, Any]) -> Iterator[Finding]:
    problems = ((results.get("metrics") or {}).get("plausibility") or {}).get("problems")
    if problems:
        yield Finding(
            0,
            "This image does not look like a battery electrode ("
            + "; ".join(problems)
            + "): the electrode models below assume one, so their numbers may not mean "
            "anything for this sample.",
        )


def _headline(results: Mapping[str, Any]) -> dict[str, Any]:
    return {"volume_fractions": (results.get("metrics") or {}).get("volume_fractions")}


STAGE = Stage(
    "metrics",
    "Morphology metrics",
    ("input", "segment"),
    ("metrics",),
    _run,
    settings=(("metrics", MetricsSettings),),
    report=_report,
    diagnose=_diagnose,
    headline=_headline,
)
