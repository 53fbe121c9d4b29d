"""HDF5 (.h5, .hdf5, .nxs): any dataset; microbat's own layout when written here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import microbat.io._header as _header
from microbat.core.errors import FileFormatError, require
from microbat.io._common import chunk_shape, describe_array, native, slabs
from microbat.io.volume import Volume


def _datasets(f: Any) -> list[tuple[str, tuple[int, ...], np.dtype]]:
    h5py = require("h5py")
    found: list[tuple[str, tuple[int, ...], np.dtype]] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset) and obj.ndim >= 2 and obj.dtype.kind in "biuf":
            found.append(("/" + name, tuple(obj.shape), obj.dtype))

    f.visititems(visit)
    return found


def _listing(found: list[tuple[str, tuple[int, ...], np.dtype]]) -> str:
    if not found:
        return "it holds no 2D or 3D numeric dataset"
    return "datasets: " + ", ".join(describe_array(*d) for d in found)


def _choose(f: Any, path: Path, dataset: str | None) -> str:
    h5py = require("h5py")
    if dataset is not None:
        obj = f.get(dataset)
        if obj is None:
            raise FileFormatError(
                f"{path}: no dataset {dataset!r}; {_listing(_datasets(f))}; pass one of them "
                "as dataset= (--dataset)"
            )
        if not isinstance(obj, h5py.Dataset):
            raise FileFormatError(
                f"{path}: {dataset!r} is a group, not a dataset; {_listing(_datasets(f))}"
            )
        return obj.name
    own = f.attrs.get("microbat_dataset")
    if own is not None:
        own = own.decode() if isinstance(own, bytes) else str(own)
        if own in f:
            return own
    found = _datasets(f)
    for ndim in (3, 2):
        cands = [d for d in found if len(d[1]) == ndim]
        if len(cands) == 1:
            return cands[0][0]
        if len(cands) > 1:
            break
    raise FileFormatError(
        f"{path}: cannot tell which dataset to read, {_listing(found)}; pass one as "
        "dataset= (--dataset)"
    )


def _voxel_from_attrs(attrs: Any, ndim: int) -> tuple[float, ...] | None:
    """Voxel size from common plain attributes (``element_size_um`` of Fiji/ilastik)."""
    for key, scale in (("voxel_size_m", 1.0), ("element_size_um", 1e-6)):
        if key in attrs:
            v = np.atleast_1d(np.asarray(attrs[key], dtype=float)).ravel() * scale
            if v.size == 1:
                v = np.repeat(v, ndim)
            if v.size == ndim and np.all(np.isfinite(v)) and np.all(v > 0):
                return tuple(float(x) for x in v)
    return None


def read_hdf5(path: Path, *, dataset: str | None, lazy: bool) -> Volume:
    """Read one dataset of an HDF5 file (chosen by name, or the only 3D one)."""
    h5py = require("h5py")
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise FileFormatError(
            f"{path}: not a readable HDF5 file ({exc}); it is truncated, corrupt or not HDF5"
        ) from None
    keep_open = False
    try:
        name = _choose(f, path, dataset)
        dset = f[name]
        header = _header.from_attrs(dset.attrs, path)
        meta: dict[str, Any] = {"dataset": name}
        voxel: tuple[float, ...] | None
        if header is not None:
            voxel = header.pop("voxel_size_m", None)
            meta.update(header)
        else:
            voxel = _voxel_from_attrs(dset.attrs, dset.ndim)
        closer = None
        if lazy:
            data: Any = dset
            keep_open = True
            closer = f.close
        else:
            data = native(dset[()])
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        if isinstance(exc, FileFormatError):
            raise
        raise FileFormatError(
            f"{path}: cannot read the HDF5 data ({exc}); the file is truncated or corrupt"
        ) from None
    finally:
        if not keep_open:
            f.close()
    return Volume(data, voxel, f"{path}::{name}", meta, "hdf5", closer)


def write_hdf5(
    tmp: Path, array: Any, *, header: dict[str, Any], name: str, compression: bool
) -> None:
    """Write ``array`` as dataset ``name`` with the header as its attributes."""
    h5py = require("h5py")
    dtype = np.dtype(array.dtype).newbyteorder("=")
    shape = tuple(array.shape)
    with h5py.File(tmp, "w") as f:
        f.attrs["microbat_format"] = header["microbat_format"]
        f.attrs["format_version"] = header["format_version"]
        f.attrs["microbat_dataset"] = name
        kw: dict[str, Any] = {}
        if compression:
            kw = {
                "chunks": chunk_shape(shape, dtype.itemsize),
                "compression": "gzip",
                "compression_opts": 4,
                "shuffle": dtype.itemsize > 1,
            }
        d = f.create_dataset(name, shape=shape, dtype=dtype, **kw)
        for sl in slabs(shape, dtype.itemsize):
            d[sl] = native(np.asarray(array[sl]))
        for key, value in _header.to_attrs(header).items():
            d.attrs[key] = value
