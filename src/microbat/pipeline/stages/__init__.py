"""The stages of the digital twin, one module each, in run order.

Each module defines ``STAGE`` (a :class:`microbat.pipeline.base.Stage`): its run
and load functions, its out-of-core variant where one exists, the settings
sections it owns, its report sections, its diagnosis rules and its headline
numbers. :data:`STAGES` is the one ordered list the runner, the configuration
and the report writer iterate; adding an analysis is a new module here and one
line in that list.

Graph (→ = "needs")::

    input ─► denoise ─► segment ─► connectivity ─┐
      │                    │     ─► metrics ─────┤
      │ (labelled input    │     ─► transport ───┼─► cell ─► report
      └─ skips imaging) ───┘     ─► eis ─────────┘
"""

from __future__ import annotations

from microbat.pipeline.base import (
    STAGE_FORMAT,
    Stage,
    StageContext,
    StageOutput,
    TwinInput,
    hash_array,
    hash_path,
    mid_slices,
)
from microbat.pipeline.stages import (
    aging,
    cell,
    connectivity,
    denoise,
    eis,
    gas,
    heat,
    input,
    mechanics,
    metrics,
    plating,
    representative,
    segment,
    ssb,
    transport,
)
from microbat.pipeline.stages import report as _report

__all__ = [
    "STAGES",
    "STAGE_FORMAT",
    "Stage",
    "StageContext",
    "StageOutput",
    "TwinInput",
    "hash_array",
    "hash_path",
    "mid_slices",
    "stage_names",
]

_ANALYSES: tuple[Stage, ...] = (
    input.STAGE,
    denoise.STAGE,
    segment.STAGE,
    connectivity.STAGE,
    metrics.STAGE,
    transport.STAGE,
    cell.STAGE,
    eis.STAGE,
    gas.STAGE,
    heat.STAGE,
    ssb.STAGE,
    representative.STAGE,
    mechanics.STAGE,
    plating.STAGE,
    aging.STAGE,
)

#: Every stage in run order; the report comes last and depends on all the others.
STAGES: tuple[Stage, ...] = (*_ANALYSES, _report.make_stage(tuple(s.name for s in _ANALYSES)))


def stage_names() -> list[str]:
    """Names of the stages in run order."""
    return [s.name for s in STAGES]
