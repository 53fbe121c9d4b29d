"""Microstructure-resolved 3D electrochemistry (half cell against lithium metal).

Import as ``microbat.cell.resolved``. The entry points are :func:`simulate_discharge`
and :func:`simulate_charge` (CC or CC–CV); the equations are in ``docs/resolved.md``.
"""

from microbat.cell.resolved._model import ResolvedOptions
from microbat.cell.resolved._params import ResolvedParameters
from microbat.cell.resolved._stepping import StepProgress
from microbat.cell.resolved.charge import (
    ChargeInterrupted,
    ResolvedChargeResult,
    simulate_charge,
    stoichiometry_window,
)
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
    "ChargeInterrupted",
    "DischargeInterrupted",
    "P2DComparisonResult",
    "ResolvedChargeResult",
    "ResolvedDischargeResult",
    "ResolvedOptions",
    "ResolvedParameters",
    "Snapshot",
    "StepProgress",
    "compare_with_p2d",
    "homogenise",
    "lattice_equivalent_radius",
    "simulate_charge",
    "simulate_discharge",
    "sphere_lattice",
    "stoichiometry_window",
    "theoretical_capacity_Ah",
]
