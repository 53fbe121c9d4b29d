"""microbat: from a 3D X-ray CT image of a battery electrode to a digital twin.

Submodules load lazily so that ``import microbat`` stays fast::

    import microbat as mb
    ms = mb.synth.electrode((64, 64, 64), voxel_size=0.5e-6, seed=1)
    mb.imaging.characterize(ms)
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from microbat._version import __version__
from microbat.core import (
    FileFormatError,
    InvalidInputError,
    MicrobatError,
    Microstructure,
    NotPercolatingError,
    Phase,
    PhaseError,
    PhaseRole,
    PhaseTable,
    VoxelSizeError,
)

logging.getLogger(__name__).addHandler(logging.NullHandler())

_SUBMODULES = (
    "cell",
    "core",
    "degradation",
    "design",
    "fv",
    "imaging",
    "io",
    "pipeline",
    "ssb",
    "synth",
    "transport",
    "viz",
)

__all__ = [
    "FileFormatError",
    "InvalidInputError",
    "MicrobatError",
    "Microstructure",
    "NotPercolatingError",
    "Phase",
    "PhaseError",
    "PhaseRole",
    "PhaseTable",
    "VoxelSizeError",
    "__version__",
    *_SUBMODULES,
]

if TYPE_CHECKING:  # pragma: no cover
    from microbat import imaging, io, synth  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"microbat.{name}")
    raise AttributeError(f"module 'microbat' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
