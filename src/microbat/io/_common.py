"""Helpers shared by the format modules."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from microbat.core.errors import FileFormatError, InvalidInputError

# Suffix → reader format. Folders are Zarr stores or TIFF slice folders.
READ_SUFFIXES: dict[str, str] = {
    ".tif": "tiff",
    ".tiff": "tiff",
    ".h5": "hdf5",
    ".hdf5": "hdf5",
    ".hdf": "hdf5",
    ".nxs": "hdf5",
    ".zarr": "zarr",
    ".raw": "raw",
    ".bin": "raw",
    ".vol": "raw",
    ".npy": "npy",
    ".npz": "npz",
    ".vti": "vti",
}
WRITE_SUFFIXES: dict[str, str] = {
    ".tif": "tiff",
    ".tiff": "tiff",
    ".h5": "hdf5",
    ".hdf5": "hdf5",
    ".zarr": "zarr",
    ".npy": "npy",
    ".npz": "npz",
    ".vti": "vti",
}
TIFF_SUFFIXES = (".tif", ".tiff")

# Bytes of one slab when streaming a large array through a writer or a statistic.
SLAB_BYTES = 64 * 2**20


def suffix_of(path: Path) -> str:
    """Lower-case last suffix (``.TIF`` → ``.tif``)."""
    return path.suffix.lower()


def natural_key(name: str) -> list[Any]:
    """Sort key putting ``slice2`` before ``slice10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name.lower())]


def require_exists(path: Path) -> None:
    """Raise :class:`FileFormatError` if ``path`` does not exist."""
    if not path.exists():
        hint = ""
        parent = path.parent if str(path.parent) else Path(".")
        if parent.is_dir():
            near = sorted(p.name for p in parent.iterdir() if p.stem == path.stem)[:5]
            if near:
                hint = f" (found {', '.join(near)} in the same folder)"
        raise FileFormatError(f"{path}: no such file or folder{hint}")


def chunk_shape(shape: Sequence[int], itemsize: int) -> tuple[int, ...]:
    """Chunk shape of about 256 KiB-2 MiB: 64³ voxels in 3D, 256² tiles in 2D."""
    edge = 64 if len(shape) >= 3 else 256
    if itemsize >= 8 and len(shape) >= 3:
        edge = 48
    return tuple(max(1, min(int(n), edge)) for n in shape)


def slabs(shape: Sequence[int], itemsize: int, nbytes: int | None = None) -> Iterator[slice]:
    """Slices along axis 0 whose slabs hold about ``nbytes`` (default SLAB_BYTES) each."""
    nbytes = SLAB_BYTES if nbytes is None else nbytes
    n0 = int(shape[0]) if shape else 1
    per = max(1, math.prod(int(n) for n in shape[1:]) * itemsize)
    step = max(1, nbytes // per)
    for start in range(0, n0, step):
        yield slice(start, min(n0, start + step))


def parse_byte_order(byte_order: str) -> str:
    """``"little"``/``"big"``/``"native"`` (or ``<``, ``>``, ``=``) as a NumPy prefix."""
    table = {
        "little": "<",
        "le": "<",
        "<": "<",
        "big": ">",
        "be": ">",
        ">": ">",
        "native": "=",
        "=": "=",
    }
    key = str(byte_order).strip().lower()
    if key not in table:
        raise InvalidInputError(
            f"byte_order={byte_order!r} is not understood; use 'little', 'big' or 'native'"
        )
    return table[key]


def parse_dtype(dtype: Any) -> np.dtype:
    """A NumPy dtype from ``"uint8"``, ``"u2"``, ``np.float32``, ...; teaching error if not."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise InvalidInputError(
            f"dtype={dtype!r} is not a NumPy data type; use e.g. uint8, uint16, int16, "
            "float32 or float64"
        ) from None
    if dt.kind not in "biuf" or dt.hasobject:
        raise InvalidInputError(f"dtype {dt} is not a voxel data type (integers, bool, floats)")
    return dt


def parse_shape(shape: Any) -> tuple[int, ...]:
    """A shape from ``(10, 20, 30)`` or ``"10,20,30"`` (``x`` also separates)."""
    if isinstance(shape, str):
        parts = [p for p in re.split(r"[,x×\s]+", shape.strip()) if p]
    else:
        try:
            parts = list(shape)
        except TypeError:
            parts = [shape]
    try:
        out = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"shape={shape!r} must be whole numbers in array order, e.g. 100,200,300 "
            "(slices, rows, columns)"
        ) from None
    if not 1 <= len(out) <= 4 or any(n < 1 for n in out):
        raise InvalidInputError(
            f"shape={shape!r} must be 1 to 4 positive whole numbers (slices, rows, columns)"
        )
    return out


def file_size(path: Path) -> int:
    """Size of a file in bytes."""
    return int(os.stat(path).st_size)


def native(arr: np.ndarray) -> np.ndarray:
    """``arr`` in native byte order (a copy only when needed)."""
    if not arr.dtype.isnative:
        return arr.astype(arr.dtype.newbyteorder("="))
    return arr


def describe_array(name: str, shape: Sequence[int], dtype: Any) -> str:
    """``"/exchange/data (3D uint16, 100x200x300)"``."""
    return f"{name} ({len(shape)}D {np.dtype(dtype)}, {'x'.join(str(int(n)) for n in shape)})"
