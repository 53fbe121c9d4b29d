"""Result objects and provenance.

Every stage returns a small, frozen, typed result: the numbers, optional fields
(arrays), and a :class:`Provenance` saying how it was made. ``to_dict()`` gives a
JSON-ready dictionary (arrays summarised, not dumped) and ``to_json()`` a string.
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from microbat._version import __version__

__all__ = ["Provenance", "Result", "Timer", "to_jsonable"]


def _version() -> str:
    return __version__


@dataclass(frozen=True)
class Provenance:
    """How a result was made.

    Attributes
    ----------
    function : str
        Qualified name of the producing function.
    parameters : dict
        Parameters that change the result (JSON-ready).
    seed : int or None
        Seed of the random generator, when the process is random.
    wall_time_s : float
        Wall-clock time of the computation in seconds.
    version : str
        microbat version.
    created : str
        UTC timestamp (ISO 8601).
    inputs : dict
        Description of the inputs (source file, shape, hash, ...).
    """

    function: str
    parameters: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    wall_time_s: float = 0.0
    version: str = field(default_factory=_version)
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    inputs: dict[str, Any] = field(default_factory=dict)
    python: str = field(default_factory=platform.python_version)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return to_jsonable(dataclasses.asdict(self))


@dataclass(frozen=True)
class Result:
    """Base class of result objects (frozen dataclasses with provenance).

    Subclasses add their own fields; array fields are summarised by ``to_dict``
    unless listed in ``_json_arrays``.
    """

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary of the result (large arrays summarised)."""
        out: dict[str, Any] = {}
        full = set(getattr(self, "_json_arrays", ()))
        for f in dataclasses.fields(self):
            if f.name.startswith("_"):
                continue
            v = getattr(self, f.name)
            if f.name in full:
                out[f.name] = to_jsonable(v)
            elif _is_field(v):
                out[f.name] = _summary(v)
            elif isinstance(v, tuple | list) and any(_is_field(x) for x in v):
                # one field per axis (concentration, potential, ...): summarise each
                out[f.name] = [_summary(x) if _is_field(x) else to_jsonable(x) for x in v]
            else:
                out[f.name] = to_jsonable(v)
        return out

    def to_json(self, **kwargs: Any) -> str:
        """The result as a JSON string (``inf``/``nan`` written as ``null``)."""
        kwargs.setdefault("indent", 2)
        return json.dumps(self.to_dict(), allow_nan=False, **kwargs)


def _is_field(value: Any) -> bool:
    """True for arrays too large to write into JSON (more than 64 values)."""
    return isinstance(value, np.ndarray) and value.size > 64


def _summary(array: np.ndarray) -> dict[str, Any]:
    return {"shape": list(array.shape), "dtype": str(array.dtype)}


def to_jsonable(value: Any) -> Any:
    """Convert a value to plain JSON types; non-finite floats become ``None``."""
    if isinstance(value, Result | Provenance):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, bool | int | str):
        return value
    if hasattr(value, "to_dict"):
        return to_jsonable(value.to_dict())
    return repr(value)


class Timer:
    """Context manager measuring wall time: ``with Timer() as t: ...; t.elapsed``."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        self.elapsed = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed = time.perf_counter() - self.start
