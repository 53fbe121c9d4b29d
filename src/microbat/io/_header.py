"""The microbat header: what every microbat file stores beside its array.

One dictionary describes a saved array, whatever the container::

    {
        "microbat_format": "microstructure" | "volume",
        "format_version": 1,
        "microbat_version": "0.1.0",
        "axis_order": "zyx" | "yx",
        "voxel_size_m": [h0, h1, h2] | None,
        "phases": [{"name", "label", "role"}, ...],     # microstructure only
        "thickness_axis": 0,                             # microstructure only
        "metadata": {...},                               # microstructure only
    }

HDF5 and Zarr store the keys as attributes of the array (``phases`` and
``metadata`` as JSON text in HDF5); TIFF, NPZ and VTI store the whole
dictionary as one JSON text. See ``docs/file-format.md``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from microbat._version import __version__
from microbat.core.errors import FileFormatError
from microbat.core.results import to_jsonable

FORMAT_VERSION = 1
KIND_MICROSTRUCTURE = "microstructure"
KIND_VOLUME = "volume"
LABELS_NAME = "labels"
VOLUME_NAME = "volume"

# Keys stored as JSON text in containers whose attributes cannot nest (HDF5).
JSON_KEYS = ("phases", "metadata")


def axis_order(ndim: int) -> str:
    """Axis letters of an array of ``ndim`` dimensions (``"zyx"`` or ``"yx"``)."""
    return "zyx"[-ndim:] if 1 <= ndim <= 3 else "".join(f"a{i}" for i in range(ndim))


def microstructure_header(ms: Any) -> dict[str, Any]:
    """Header of a :class:`~microbat.core.microstructure.Microstructure`."""
    return {
        "microbat_format": KIND_MICROSTRUCTURE,
        "format_version": FORMAT_VERSION,
        "microbat_version": __version__,
        "axis_order": axis_order(ms.ndim),
        "voxel_size_m": [float(v) for v in ms.voxel_size],
        "phases": ms.phases.to_list(),
        "thickness_axis": int(ms.thickness_axis),
        "metadata": to_jsonable(ms.metadata),
    }


def volume_header(ndim: int, voxel_size: tuple[float, ...] | None) -> dict[str, Any]:
    """Header of a grayscale volume."""
    return {
        "microbat_format": KIND_VOLUME,
        "format_version": FORMAT_VERSION,
        "microbat_version": __version__,
        "axis_order": axis_order(ndim),
        "voxel_size_m": None if voxel_size is None else [float(v) for v in voxel_size],
    }


def dumps(header: Mapping[str, Any]) -> str:
    """The header as compact JSON text (non-finite floats become ``null``)."""
    return json.dumps(to_jsonable(dict(header)), separators=(",", ":"), allow_nan=False)


def to_attrs(header: Mapping[str, Any]) -> dict[str, Any]:
    """Flat attributes for HDF5: nested values become JSON text, ``None`` is left out."""
    out: dict[str, Any] = {}
    for key, value in header.items():
        if value is None:
            continue
        if key in JSON_KEYS:
            out[key] = json.dumps(to_jsonable(value), allow_nan=False)
        else:
            out[key] = value
    return out


def from_attrs(attrs: Mapping[str, Any], path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Decode a header from attributes (HDF5, Zarr) or a parsed JSON object.

    Returns ``None`` when the attributes carry no microbat header.

    Raises
    ------
    FileFormatError
        The header is present but malformed or of a newer format version.
    """
    if "microbat_format" not in attrs:
        return None
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        value = _plain(value)
        if key in JSON_KEYS and isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise FileFormatError(
                    f"{Path(path)}: the microbat attribute {key!r} is not valid JSON ({exc}); "
                    "the file is corrupt or was edited by hand"
                ) from None
        out[key] = value
    return validate(out, path)


def loads(text: str, path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Decode a header stored as one JSON text; ``None`` if it is not a microbat header."""
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return None
    if not isinstance(obj, dict):
        return None
    return from_attrs(obj, path)


def validate(header: dict[str, Any], path: str | os.PathLike[str]) -> dict[str, Any]:
    """Check the kind and version of a decoded header."""
    kind = header.get("microbat_format")
    if kind not in (KIND_MICROSTRUCTURE, KIND_VOLUME):
        raise FileFormatError(
            f"{Path(path)}: unknown microbat_format {kind!r}; expected "
            f"{KIND_MICROSTRUCTURE!r} or {KIND_VOLUME!r}"
        )
    try:
        version = int(header.get("format_version", 1))
    except (TypeError, ValueError):
        raise FileFormatError(
            f"{Path(path)}: format_version {header.get('format_version')!r} is not an integer"
        ) from None
    if version > FORMAT_VERSION:
        raise FileFormatError(
            f"{Path(path)}: written with microbat file format version {version}, this "
            f"microbat reads up to version {FORMAT_VERSION}; upgrade microbat"
        )
    header["format_version"] = version
    vs = header.get("voxel_size_m")
    if vs is not None:
        try:
            header["voxel_size_m"] = tuple(float(v) for v in _plain(vs))
        except (TypeError, ValueError):
            raise FileFormatError(
                f"{Path(path)}: voxel_size_m {vs!r} is not a list of numbers"
            ) from None
    if "thickness_axis" in header:
        header["thickness_axis"] = int(header["thickness_axis"])
    return header


def _plain(value: Any) -> Any:
    """NumPy scalars/arrays and bytes from HDF5 attributes as plain Python values."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if hasattr(value, "tolist"):
        return value.tolist()
    return value
