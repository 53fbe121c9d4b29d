"""Raw binary volumes (.raw, .bin, .vol) and NumPy files (.npy, .npz)."""

from __future__ import annotations

import math
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

import microbat.io._header as _header
from microbat.core.errors import FileFormatError, InvalidInputError
from microbat.io._common import (
    describe_array,
    file_size,
    native,
    parse_byte_order,
    parse_dtype,
    parse_shape,
)
from microbat.io.volume import Volume

# ------------------------------------------------------------------ raw


def read_raw(
    path: Path,
    *,
    shape: Any,
    dtype: Any,
    byte_order: str,
    offset: int,
    lazy: bool,
) -> Volume:
    """Read a headerless binary volume stored C-order (x fastest) as ``[z, y, x]``."""
    if shape is None or dtype is None:
        raise InvalidInputError(
            f"{path}: a raw file carries no shape or data type; give both, e.g. "
            "shape=(nz, ny, nx), dtype='uint8' (--shape 100,200,300 --dtype uint8)"
        )
    shp = parse_shape(shape)
    order = parse_byte_order(byte_order)
    dt = parse_dtype(dtype).newbyteorder(order)
    try:
        off = int(offset)
    except (TypeError, ValueError):
        raise InvalidInputError(f"offset={offset!r} must be a whole number of bytes") from None
    if off < 0:
        raise InvalidInputError(f"offset={offset} must not be negative")
    expected = off + math.prod(shp) * dt.itemsize
    actual = file_size(path)
    if actual != expected:
        raise FileFormatError(
            f"{path}: expected {expected} bytes ({off} header + "
            f"{'x'.join(map(str, shp))} voxels x {dt.itemsize} bytes of {dt.name}) but the "
            f"file has {actual} bytes; check shape, dtype and offset"
        )
    data: Any = np.memmap(path, dtype=dt, mode="r", offset=off, shape=shp)
    if not lazy:
        data = native(np.array(data))
    meta = {"byte_order": {"<": "little", ">": "big", "=": "native"}[order], "offset": off}
    return Volume(data, None, str(path), meta, "raw")


# ------------------------------------------------------------------ npy


def _npy_header(fh: Any, path: Path) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Read the magic and header of a .npy stream; the stream is left at the data."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(fh)
        else:
            shape, fortran, dtype = fmt.read_array_header_2_0(fh)
    except (ValueError, EOFError, OSError, SyntaxError, struct.error) as exc:
        raise FileFormatError(
            f"{path}: not a valid .npy file ({exc}); it is truncated, corrupt or not NumPy"
        ) from None
    if dtype.hasobject:
        raise FileFormatError(
            f"{path}: holds Python objects, not voxels; microbat never unpickles data"
        )
    return tuple(int(n) for n in shape), bool(fortran), np.dtype(dtype)


def read_npy(path: Path, *, lazy: bool) -> Volume:
    """Read a .npy array (memory-mapped when lazy)."""
    with open(path, "rb") as fh:
        shape, fortran, dtype = _npy_header(fh, path)
        start = fh.tell()
    expected = start + math.prod(shape) * dtype.itemsize
    actual = file_size(path)
    if actual < expected:
        raise FileFormatError(
            f"{path}: the .npy file is truncated: expected {expected} bytes for a "
            f"{'x'.join(map(str, shape))} {dtype} array but the file has {actual} bytes"
        )
    if math.prod(shape) == 0:
        data: Any = np.zeros(shape, dtype)
    else:
        data = np.memmap(
            path, dtype=dtype, mode="r", offset=start, shape=shape, order="F" if fortran else "C"
        )
        if not lazy:
            data = native(np.array(data))
    return Volume(data, None, str(path), {}, "npy")


def write_npy(tmp: Path, array: Any) -> None:
    """Write a .npy file (labels or intensities only: no voxel size)."""
    with open(tmp, "wb") as fh:
        np.save(fh, native(np.asarray(array)), allow_pickle=False)


# ------------------------------------------------------------------ npz

_NPZ_HEADER_KEY = "microbat"


def _member_offset(fh: Any, info: zipfile.ZipInfo) -> int:
    """Byte offset of a stored member's data (after its local header)."""
    fh.seek(info.header_offset)
    local = fh.read(30)
    if len(local) != 30 or local[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile("bad local file header")
    name_len, extra_len = struct.unpack("<HH", local[26:30])
    return info.header_offset + 30 + name_len + extra_len


def read_npz(path: Path, *, dataset: str | None, lazy: bool) -> Volume:
    """Read one array of a .npz archive (memory-mapped when lazy and stored uncompressed)."""
    with open(path, "rb") as fh:
        try:
            zf = zipfile.ZipFile(fh)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise FileFormatError(
                f"{path}: not a readable .npz archive ({exc}); it is truncated or corrupt"
            ) from None
        with zf:
            try:
                members: dict[str, tuple[zipfile.ZipInfo, tuple[int, ...], bool, np.dtype, int]]
                members = {}
                for info in zf.infolist():
                    key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                    with zf.open(info) as m:
                        shape, fortran, dt = _npy_header(m, path)
                        members[key] = (info, shape, fortran, dt, m.tell())
                header = None
                if _NPZ_HEADER_KEY in members:
                    with zf.open(members[_NPZ_HEADER_KEY][0]) as m:
                        text = np.lib.format.read_array(m, allow_pickle=False)
                    header = _header.loads(str(text), path)
                arrays = {k: v for k, v in members.items() if k != _NPZ_HEADER_KEY or not header}
                key = _choose_npz(path, arrays, dataset, header)
                info, shape, fortran, dt, start = arrays[key]
                if lazy and info.compress_type == zipfile.ZIP_STORED and math.prod(shape) > 0:
                    off = _member_offset(fh, info) + start
                    data: Any = np.memmap(
                        path,
                        dtype=dt,
                        mode="r",
                        offset=off,
                        shape=shape,
                        order="F" if fortran else "C",
                    )
                else:
                    with zf.open(info) as m:
                        data = native(np.lib.format.read_array(m, allow_pickle=False))
            except FileFormatError:
                raise
            except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
                raise FileFormatError(
                    f"{path}: cannot read the .npz archive ({exc}); it is truncated or corrupt"
                ) from None
    meta: dict[str, Any] = {"dataset": key}
    voxel = None
    if header is not None:
        voxel = header.pop("voxel_size_m", None)
        meta.update(header)
    return Volume(data, voxel, f"{path}::{key}", meta, "npz")


def _choose_npz(
    path: Path,
    arrays: dict[str, tuple[zipfile.ZipInfo, tuple[int, ...], bool, np.dtype, int]],
    dataset: str | None,
    header: dict[str, Any] | None,
) -> str:
    listing = ", ".join(describe_array(k, v[1], v[3]) for k, v in arrays.items()) or "none"
    if dataset is not None:
        if dataset not in arrays:
            raise FileFormatError(
                f"{path}: no array {dataset!r}; arrays: {listing}; pass one of them as "
                "dataset= (--dataset)"
            )
        return dataset
    if header is not None:
        own = (
            _header.LABELS_NAME
            if header.get("microbat_format") == _header.KIND_MICROSTRUCTURE
            else _header.VOLUME_NAME
        )
        if own in arrays:
            return own
    if len(arrays) == 1:
        return next(iter(arrays))
    for ndim in (3, 2):
        cands = [k for k, v in arrays.items() if len(v[1]) == ndim]
        if len(cands) == 1:
            return cands[0]
        if cands:
            break
    raise FileFormatError(
        f"{path}: cannot tell which array to read, arrays: {listing}; pass one as "
        "dataset= (--dataset)"
    )


def write_npz(
    tmp: Path, array: Any, *, header: dict[str, Any], name: str, compression: bool
) -> None:
    """Write a .npz archive with the array and the microbat header (JSON text)."""
    save = np.savez_compressed if compression else np.savez
    with open(tmp, "wb") as fh:
        save(
            fh,
            **{name: native(np.asarray(array)), _NPZ_HEADER_KEY: np.array(_header.dumps(header))},
        )
