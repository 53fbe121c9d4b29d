"""Twin stage ``report``: ``results.json`` and the self-contained HTML report.

Runs last and reads every earlier stage's summary and arrays; the writing itself is
:func:`microbat.pipeline.report.write_report`, which the runner hands to the
context (so this module does not import the writer, which imports the stage list).
Its settings (``[report]``) are the writer's, a runner section of
:mod:`microbat.pipeline.config`.
"""

from __future__ import annotations

from microbat.pipeline.base import Stage, StageContext, StageOutput

__all__ = ["make_stage"]


def _run(ctx: StageContext) -> StageOutput:
    ctx.step("writing results.json and the HTML report")
    files = ctx.write_report()
    return StageOutput(summary={"files": {k: str(v) for k, v in files.items()}})


def make_stage(deps: tuple[str, ...]) -> Stage:
    """The report stage, depending on every stage before it (``deps``)."""
    return Stage(
        "report",
        "Report",
        deps,
        ("report",),
        _run,
        needs_objects=False,
    )
