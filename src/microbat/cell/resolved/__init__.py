"""Microstructure-resolved 3D electrochemistry (half cell against lithium metal).

Import as ``microbat.cell.resolved``. The main entry point is
:func:`simulate_discharge`; the equations are in ``docs/resolved.md``.
"""

from microbat.cell.resolved._model import ResolvedOptions
from microbat.cell.resolved._params import ResolvedParameters
from microbat.cell.resolved.discharge import (
    BREAKDOWN_COMPONENTS,
    ResolvedDischargeResult,
    Snapshot,
    simulate_discharge,
    theoretical_capacity_Ah,
)

__all__ = [
    "BREAKDOWN_COMPONENTS",
    "ResolvedDischargeResult",
    "ResolvedOptions",
    "ResolvedParameters",
    "Snapshot",
    "simulate_discharge",
    "theoretical_capacity_Ah",
]
