"""Twin stage ``metrics``: volume fractions, interface areas and size distributions.

Runs :func:`microbat.imaging.characterize` on the labelled microstructure and
adds the active/electrolyte specific area the cell model needs. Report section:
"Morphology".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

import microbat.imaging.metrics as morphology
from microbat.pipeline.base import Stage, StageContext, StageOutput, StageSettings, phase_rows
from microbat.pipeline.reportkit import ReportSection, ReportView, esc, num, table, um

__all__ = ["STAGE", "MetricsSettings"]


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
    return StageOutput(summary=summary)


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
    headline=_headline,
)
