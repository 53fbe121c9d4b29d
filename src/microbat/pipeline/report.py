"""The twin report: one self-contained HTML file and ``results.json``.

The HTML embeds every figure as a base64 PNG (no external file, script, font or
style sheet), so it can be mailed to a colleague as is. The page is assembled
from the stages' own sections (:attr:`microbat.pipeline.base.Stage.report`) in
run order: the first stage's section (input and stage status), the diagnosis,
every other stage's sections, the warnings and the settings.

The diagnosis (:func:`diagnose`) is derived from the numbers by the stages' own
rules (:attr:`microbat.pipeline.base.Stage.diagnose`): each may propose a
:class:`~microbat.pipeline.base.Verdict`, and the one with the lowest priority
names the dominant bottleneck; the others add findings. With the stages of this
version:

1. a pore network that does not connect the current collector to the separator
   blocks ionic transport: that is the bottleneck whatever else holds
   (connectivity, priority 0);
2. with a cell simulation, the limitation named by the voltage-loss breakdown at
   the lowest rate where the micro-informed capacity falls below 80 % of the C/10
   capacity (or at the highest rate simulated, if none does) is the dominant
   bottleneck; its sentence quotes the microstructure numbers behind it (cell,
   priority 10);
3. without one, the transport efficiency ε/τ and the Bruggeman error are reported
   (transport, priority 20);
4. secondary findings: Bruggeman's error on τ, anisotropy, dead-end and isolated
   porosity, disconnected active material, segmentation uncertainty.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from microbat._version import __version__
from microbat.core.atomic import atomic_write_text
from microbat.core.results import to_jsonable
from microbat.pipeline._report_template import CSS, PAGE
from microbat.pipeline.base import Finding, Stage, Verdict
from microbat.pipeline.reportkit import Figures, ReportSection, ReportView, esc, table, um
from microbat.pipeline.stages import STAGES

__all__ = ["diagnose", "write_report"]


def diagnose(results: Mapping[str, Any], stages: Sequence[Stage] | None = None) -> dict[str, Any]:
    """Name the dominant bottleneck and list the secondary findings, from the numbers.

    Parameters
    ----------
    results : mapping
        Stage name → stage summary (what ``results.json`` holds under ``stages.*.result``),
        with statuses under ``"_status"``.
    stages : sequence of Stage, optional
        Whose rules to apply (default: :data:`microbat.pipeline.stages.STAGES`).

    Returns
    -------
    dict
        ``{"key", "headline", "details": [str], "findings": [str]}``; ``key`` is one
        of ``"pore_network_blocked"``, ``"electrolyte"``, ``"solid_diffusion"``,
        ``"reaction"``, ``"ohmic_solid"``, ``"equilibrium"``, ``"ionic_transport"``,
        ``"undetermined"``.
    """
    verdicts: list[Verdict] = []
    findings: list[Finding] = []
    for stage in STAGES if stages is None else stages:
        if stage.diagnose is None:
            continue
        for item in stage.diagnose(results):
            (verdicts if isinstance(item, Verdict) else findings).append(item)
    if verdicts:
        best = min(verdicts, key=lambda v: v.priority)  # min keeps the first of equals
        key, headline, details = best.key, best.headline, list(best.details)
    else:
        key = "undetermined"
        headline = (
            "No bottleneck can be named: neither the transport nor the cell stage "
            "completed (see the stage table)"
        )
        details = []
    ordered = sorted(findings, key=lambda f: f.rank)  # stable: stage order among equals
    return {
        "key": key,
        "headline": headline,
        "details": details,
        "findings": [f.text for f in ordered],
    }


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
    out = Path(ctx.out_dir)
    cfg = ctx.config
    recs = ctx.records
    names = [n for n in recs if n != "report"]
    stages = [recs[n].stage for n in names]
    status = {n: recs[n].status for n in names}
    summaries = {n: (ctx.summary(n) if recs[n].status == "complete" else {}) for n in names}
    results_in = {**summaries, "_status": status}
    diag = diagnose(results_in, stages)
    headline: dict[str, Any] = {}
    for stage in stages:
        if stage.headline is not None:
            headline.update(stage.headline(results_in))
    headline.update(
        bottleneck=diag.get("key"), diagnosis=diag.get("headline"), stage_status=dict(status)
    )
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
        view = ReportView(
            summaries=summaries,
            status=status,
            records={n: recs[n] for n in names},
            figures=Figures(cfg.report.dpi),
            arrays=ctx.arrays,
            source=ctx.source,
            config=cfg,
        )
        files["report"] = out / "report.html"
        atomic_write_text(files["report"], _render(view, stages, diag))
    return files


def _diagnosis_section(diag: Mapping[str, Any]) -> ReportSection:
    body = f'<div class="diag"><p class="head">{esc(diag["headline"])}.</p>'
    body += "".join(f"<p>{esc(d)}</p>" for d in diag.get("details", []))
    if diag.get("findings"):
        body += (
            "<p>Other findings:</p><ul>"
            + "".join(f"<li>{esc(f)}</li>" for f in diag["findings"])
            + "</ul>"
        )
    body += "</div>"
    return ReportSection("diagnosis", "Diagnosis", body)


def _render(view: ReportView, stages: Sequence[Stage], diag: Mapping[str, Any]) -> str:
    sections: list[ReportSection] = []
    for i, stage in enumerate(stages):
        if stage.report is not None:
            sections.extend(stage.report(view))
        if i == 0:  # the diagnosis right after the input and the stage table
            sections.append(_diagnosis_section(diag))
    warn_rows = [(esc(r.stage.title), esc(w)) for r in view.records.values() for w in r.warnings]
    body = table(["stage", "warning"], warn_rows, left=2) if warn_rows else "<p>None.</p>"
    sections.append(ReportSection("warnings", "Warnings", body))
    cfg = view.config
    sections.append(
        ReportSection(
            "settings",
            "Settings",
            "<p>Rerun with <code>--config twin.toml</code> from the output folder to reproduce.</p>"
            f"<details><summary>twin.toml</summary><pre>{esc(cfg.to_toml())}</pre></details>",
        )
    )
    inp = view.summary("input")
    vs = inp.get("voxel_size_m") or []
    subtitle = (
        f"{esc(inp.get('source', ''))} — "
        f"{esc(' × '.join(map(str, inp.get('shape') or [])))} voxels of "
        f"{', '.join(um(v) for v in vs[:1])}"
    )
    return PAGE.substitute(
        title=esc(cfg.report.title),
        subtitle=subtitle,
        nav=" ".join(f'<a href="#{s.anchor}">{esc(s.title)}</a>' for s in sections),
        body="\n".join(
            f'<section id="{s.anchor}"><h2>{esc(s.title)}</h2>{s.body}</section>' for s in sections
        ),
        css=CSS,
        version=esc(__version__),
        created=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    )
