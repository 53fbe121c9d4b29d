"""Zarr (.zarr folders): any array; microbat's own layout when written here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import microbat.io._header as _header
from microbat.core.errors import FileFormatError, require
from microbat.core.results import to_jsonable
from microbat.io._common import chunk_shape, describe_array, native, slabs
from microbat.io.volume import Volume


def _zarr_major() -> int:
    zarr = require("zarr")
    return int(str(zarr.__version__).split(".")[0])


def _arrays(group: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """All arrays below ``group`` as ``(path, array)``, depth first."""
    out: list[tuple[str, Any]] = []
    for name, arr in sorted(group.arrays(), key=lambda t: t[0]):
        out.append((prefix + name, arr))
    for name, sub in sorted(group.groups(), key=lambda t: t[0]):
        out.extend(_arrays(sub, prefix + name + "/"))
    return out


def _listing(arrays: list[tuple[str, Any]]) -> str:
    numeric = [(n, a) for n, a in arrays if len(a.shape) >= 2]
    if not numeric:
        return "it holds no 2D or 3D array"
    return "arrays: " + ", ".join(describe_array(n, a.shape, a.dtype) for n, a in numeric)


def read_zarr(path: Path, *, dataset: str | None, lazy: bool) -> Volume:
    """Read a Zarr array, or one array of a Zarr group."""
    zarr = require("zarr")
    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:  # zarr raises many types for a broken store
        raise FileFormatError(
            f"{path}: not a readable Zarr store ({type(exc).__name__}: {exc}); its metadata "
            "is missing or corrupt"
        ) from None
    name = ""
    try:
        if isinstance(node, zarr.Array):
            if dataset not in (None, "", "/"):
                raise FileFormatError(
                    f"{path}: is a single Zarr array, it has no member {dataset!r}; leave "
                    "dataset= (--dataset) out"
                )
            arr = node
        else:
            arrays = _arrays(node)
            own = node.attrs.get("microbat_format") and node.attrs.get("microbat_dataset")
            if dataset is not None:
                key = dataset.strip("/")
                found = [a for n, a in arrays if n == key]
                if not found:
                    raise FileFormatError(
                        f"{path}: no array {dataset!r}; {_listing(arrays)}; pass one of them "
                        "as dataset= (--dataset)"
                    )
                name, arr = key, found[0]
            elif own and any(n == own for n, _ in arrays):
                name = str(own)
                arr = next(a for n, a in arrays if n == own)
            else:
                cands = []
                for ndim in (3, 2):
                    cands = [(n, a) for n, a in arrays if len(a.shape) == ndim]
                    if cands:
                        break
                if len(cands) != 1:
                    raise FileFormatError(
                        f"{path}: cannot tell which array to read, {_listing(arrays)}; pass "
                        "one as dataset= (--dataset)"
                    )
                name, arr = cands[0]
        header = _header.from_attrs(dict(arr.attrs), path)
        meta: dict[str, Any] = {"dataset": name} if name else {}
        voxel = None
        if header is not None:
            voxel = header.pop("voxel_size_m", None)
            meta.update(header)
        elif "voxel_size_m" in arr.attrs:
            voxel = tuple(float(v) for v in np.atleast_1d(arr.attrs["voxel_size_m"]))
        data = arr if lazy else native(np.asarray(arr[...]))
    except FileFormatError:
        raise
    except Exception as exc:  # codec and store errors while reading chunks
        raise FileFormatError(
            f"{path}: cannot read the Zarr data ({type(exc).__name__}: {exc}); the store is "
            "corrupt or incomplete"
        ) from None
    source = f"{path}::{name}" if name else str(path)
    return Volume(data, voxel, source, meta, "zarr")


def write_zarr(
    tmp: Path, array: Any, *, header: dict[str, Any], name: str, compression: bool
) -> None:
    """Write a Zarr (format 2) group holding array ``name`` with the header as attributes."""
    zarr = require("zarr")
    numcodecs = require("numcodecs")
    dtype = np.dtype(array.dtype).newbyteorder("=")
    shape = tuple(array.shape)
    chunks = chunk_shape(shape, dtype.itemsize)
    compressor = (
        numcodecs.Blosc(cname="zstd", clevel=3, shuffle=numcodecs.Blosc.BITSHUFFLE)
        if compression
        else None
    )
    if _zarr_major() >= 3:
        group = zarr.open_group(str(tmp), mode="w", zarr_format=2)
        z = group.create_array(
            name, shape=shape, dtype=dtype, chunks=chunks, compressors=compressor, fill_value=0
        )
    else:  # pragma: no cover - zarr 2
        group = zarr.open_group(str(tmp), mode="w")
        z = group.create_dataset(
            name, shape=shape, dtype=dtype, chunks=chunks, compressor=compressor, fill_value=0
        )
    for sl in slabs(shape, dtype.itemsize):
        z[sl] = native(np.asarray(array[sl]))
    z.attrs.update(to_jsonable({k: v for k, v in header.items() if v is not None}))
    group.attrs.update(
        {
            "microbat_format": header["microbat_format"],
            "format_version": header["format_version"],
            "microbat_dataset": name,
        }
    )
