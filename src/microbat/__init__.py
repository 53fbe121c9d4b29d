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
from microbat.core.errors import (
    FileFormatError,
    InvalidInputError,
    MicrobatError,
    NotPercolatingError,
    PhaseError,
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

#: Names re-exported from the core that need NumPy: loaded on first access.
_LAZY = {
    "Microstructure": "microbat.core.microstructure",
    "Phase": "microbat.core.phases",
    "PhaseRole": "microbat.core.phases",
    "PhaseTable": "microbat.core.phases",
}

if TYPE_CHECKING:  # pragma: no cover
    from microbat import imaging, io, synth  # noqa: F401
    from microbat.core.microstructure import Microstructure
    from microbat.core.phases import Phase, PhaseRole, PhaseTable


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"microbat.{name}")
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'microbat' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
