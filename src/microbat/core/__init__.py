"""Core objects: Microstructure, phases, units, results, errors."""

from microbat.core.errors import (
    ConvergenceError,
    FileFormatError,
    InvalidInputError,
    MicrobatError,
    MissingDependencyError,
    NotPercolatingError,
    PhaseError,
    VoxelSizeError,
)
from microbat.core.microstructure import Microstructure
from microbat.core.phases import Phase, PhaseRole, PhaseTable, default_phase_table
from microbat.core.results import Provenance, Result
from microbat.core.threads import set_threads, thread_budget
from microbat.core.units import parse_length, parse_voxel_size

__all__ = [
    "ConvergenceError",
    "FileFormatError",
    "InvalidInputError",
    "MicrobatError",
    "Microstructure",
    "MissingDependencyError",
    "NotPercolatingError",
    "Phase",
    "PhaseError",
    "PhaseRole",
    "PhaseTable",
    "Provenance",
    "Result",
    "VoxelSizeError",
    "default_phase_table",
    "parse_length",
    "parse_voxel_size",
    "set_threads",
    "thread_budget",
]
