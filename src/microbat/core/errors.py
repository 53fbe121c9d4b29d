"""The microbat exception family.

Every error raised on purpose by microbat derives from :class:`MicrobatError`,
so a caller can catch the whole family with one ``except`` clause. Each subclass
also derives from the matching built-in exception (``ValueError``, ``OSError``,
``ImportError`` ...) so that generic code keeps working.

Messages say what was wrong and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "ConvergenceError",
    "FileFormatError",
    "InvalidInputError",
    "MicrobatError",
    "MicrobatWarning",
    "MissingDependencyError",
    "NotPercolatingError",
    "PhaseError",
    "VoxelSizeError",
]


class MicrobatError(Exception):
    """Base class of every error microbat raises on purpose."""


class InvalidInputError(MicrobatError, ValueError):
    """An argument has the wrong type, shape, dtype or value (NaN, inf, ...)."""


class PhaseError(InvalidInputError):
    """A phase name or label is unknown, duplicated, empty or has the wrong role."""


class VoxelSizeError(InvalidInputError):
    """The voxel size is missing, non-finite, non-positive or has the wrong length."""


class NotPercolatingError(MicrobatError, ValueError):
    """A phase does not connect the two faces a computation needs connected."""


class FileFormatError(MicrobatError, OSError):
    """A file is missing, truncated, corrupt, or does not hold what was asked for."""


class MissingDependencyError(MicrobatError, ImportError):
    """An optional dependency is not installed; the message says how to install it."""


class ConvergenceError(MicrobatError, RuntimeError):
    """A numerical solver did not reach its tolerance."""


class MicrobatWarning(UserWarning):
    """Base class of warnings microbat issues on purpose.

    A result was produced, but something about it deserves attention: a
    non-percolating direction, a plateau not reached, a packing that missed a goal.
    """


def require(module: str, extra: str | None = None, package: str | None = None):
    """Import an optional dependency or raise a teaching error.

    Parameters
    ----------
    module : str
        Dotted module name to import.
    extra : str, optional
        Name of the microbat extra that installs it (``pip install microbat[extra]``).
    package : str, optional
        PyPI name when it differs from ``module``.

    Returns
    -------
    module
        The imported module.

    Raises
    ------
    MissingDependencyError
        If the module cannot be imported.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on environment
        pkg = package or module.split(".")[0]
        hint = f"pip install 'microbat[{extra}]'" if extra else f"pip install {pkg}"
        raise MissingDependencyError(
            f"{module!r} is needed for this feature but is not installed; install it with: {hint}"
        ) from exc
