"""Validation and random-number helpers shared by the synthetic generators."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from microbat.core.errors import InvalidInputError
from microbat.core.microstructure import normalize_voxel_size

SeedLike = int | np.random.Generator | None


def make_rng(seed: SeedLike) -> tuple[np.random.Generator, int | None]:
    """Return a Generator and the integer seed to record in provenance."""
    if isinstance(seed, np.random.Generator):
        return seed, None
    if seed is None:
        return np.random.default_rng(), None
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise InvalidInputError(
            f"seed must be an int, a numpy.random.Generator or None, got {type(seed).__name__}"
        )
    if seed < 0:
        raise InvalidInputError(f"seed must be a non-negative integer, got {seed}")
    return np.random.default_rng(int(seed)), int(seed)


def check_shape(shape: Any) -> tuple[int, int, int]:
    """Validate a 3D shape (three positive integers)."""
    try:
        dims = tuple(int(n) for n in shape)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"shape must be three positive integers such as (128, 128, 128), got {shape!r}"
        ) from None
    if len(dims) != 3:
        raise InvalidInputError(
            f"shape must be 3D (three integers, e.g. (128, 128, 128)), got {len(dims)} values "
            f"{dims}; the generators build 3D volumes only"
        )
    if any(n < 1 for n in dims):
        raise InvalidInputError(f"every dimension of shape must be at least 1, got {dims}")
    return dims  # type: ignore[return-value]


def check_voxel_size(voxel_size: Any) -> tuple[float, float, float]:
    """Validate a voxel size (metres, one value or three)."""
    return normalize_voxel_size(voxel_size, 3)  # type: ignore[return-value]


def check_fraction(
    value: Any, name: str, *, allow_zero: bool = False, allow_one: bool = False
) -> float:
    """Validate a volume fraction in (0, 1) (ends optionally allowed)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number between 0 and 1, got {value!r}") from None
    lo_ok = v >= 0 if allow_zero else v > 0
    hi_ok = v <= 1 if allow_one else v < 1
    if not (math.isfinite(v) and lo_ok and hi_ok):
        lo = "[0" if allow_zero else "(0"
        hi = "1]" if allow_one else "1)"
        raise InvalidInputError(
            f"{name} must lie in {lo}, {hi} (a volume fraction, not a percentage), got {value!r}"
        )
    return v


def check_positive(value: Any, name: str, *, unit: str = "m", allow_zero: bool = False) -> float:
    """Validate a positive finite number."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number in {unit}, got {value!r}") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        need = "non-negative" if allow_zero else "positive"
        raise InvalidInputError(f"{name} must be {need} and finite (in {unit}), got {value!r}")
    return v


def check_axis(axis: Any, name: str = "thickness_axis") -> int:
    """Validate an axis index of a 3D array."""
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer) or not -3 <= axis < 3:
        raise InvalidInputError(f"{name} must be 0, 1 or 2 (an axis of the 3D array), got {axis!r}")
    return int(axis) % 3


def per_axis(value: float | Sequence[float], name: str) -> tuple[float, float, float]:
    """One non-negative number or three, as a tuple of three floats."""
    arr = np.atleast_1d(np.asarray(value, dtype=float)).ravel()
    if arr.size == 1:
        arr = np.repeat(arr, 3)
    if arr.size != 3 or not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise InvalidInputError(
            f"{name} must be one non-negative number or three (one per axis), got {value!r}"
        )
    return (float(arr[0]), float(arr[1]), float(arr[2]))
