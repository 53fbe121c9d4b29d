"""Core objects: Microstructure, phases, units, results, errors.

The error classes load with the package; the rest (``Microstructure`` and what
needs NumPy) on first access, so that ``import microbat`` stays light.
"""

from typing import TYPE_CHECKING

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
from microbat.core.lazy import lazy_exports

if TYPE_CHECKING:  # pragma: no cover
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

__getattr__, _dir = lazy_exports(
    __name__, ("microstructure", "phases", "results", "threads", "units", "errors")
)


def __dir__() -> list[str]:
    return sorted(set(__all__) | set(_dir()))
