"""Microstructure-resolved 3D electrochemistry (half cell against lithium metal).

Import as ``microbat.cell.resolved``. The main entry point is
:func:`simulate_discharge`; the equations are in ``docs/resolved.md``.
"""

from microbat.cell.resolved._model import ResolvedOptions
from microbat.cell.resolved._params import ResolvedParameters
from microbat.cell.resolved._stepping import StepProgress
from microbat.cell.resolved.compare import (
    P2DComparisonResult,
    compare_with_p2d,
    homogenise,
    lattice_equivalent_radius,
    sphere_lattice,
)
from microbat.cell.resolved.discharge import (
    BREAKDOWN_COMPONENTS,
    DischargeInterrupted,
    ResolvedDischargeResult,
    Snapshot,
    simulate_discharge,
    theoretical_capacity_Ah,
)

__all__ = [
    "BREAKDOWN_COMPONENTS",
    "DischargeInterrupted",
    "P2DComparisonResult",
    "ResolvedDischargeResult",
    "ResolvedOptions",
    "ResolvedParameters",
    "Snapshot",
    "StepProgress",
    "compare_with_p2d",
    "homogenise",
    "lattice_equivalent_radius",
    "simulate_discharge",
    "sphere_lattice",
    "theoretical_capacity_Ah",
]
