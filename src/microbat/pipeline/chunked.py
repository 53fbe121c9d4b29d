"""Helpers of the out-of-core (chunked) variants of the twin's stages.

Volumes larger than memory: the input is read lazily (memory map, Zarr, HDF5), and
the imaging stages run block by block on Dask, each writing a Zarr store in its
stage folder. Memory is bounded by the chunk size times the number of workers.
Metrics, transport and the cell model then run on the central ``analysis_crop``
(:meth:`microbat.pipeline.base.StageContext.microstructure`).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from microbat.core.atomic import atomic_path

__all__ = ["block_bincount", "chunk_shape", "dask_sample", "from_zarr", "to_zarr"]


def chunk_shape(ctx: Any) -> tuple[int, int, int]:
    """The Dask chunk shape of the run (``scale.chunks`` along every axis)."""
    c = int(ctx.config.scale.chunks)
    return (c, c, c)


def from_zarr(path: Path) -> Any:
    """A Zarr store as a lazy Dask array."""
    import dask.array as da

    return da.from_zarr(str(path))


def to_zarr(darr: Any, path: Path) -> Any:
    """Compute ``darr`` block by block into a Zarr store (atomically) and reopen it lazily."""
    with atomic_path(path, directory=True) as tmp:
        shutil.rmtree(tmp)  # dask creates the store itself
        darr.to_zarr(str(tmp))
    return from_zarr(path)


def dask_sample(darr: Any, n: int = 8_000_000) -> np.ndarray:
    """A strided sample of at most ~``n`` voxels (the whole array when it is small)."""
    step = max(1, math.ceil((darr.size / n) ** (1 / darr.ndim)))
    return np.asarray(darr[tuple(slice(None, None, step) for _ in range(darr.ndim))].compute())


def block_bincount(darr: Any, minlength: int) -> np.ndarray:
    """Counts of each integer value of a Dask array, block by block."""
    import dask

    def one(b: np.ndarray) -> np.ndarray:
        return np.bincount(np.asarray(b).ravel(), minlength=minlength)

    parts = dask.compute(*[dask.delayed(one)(blk) for blk in darr.to_delayed().ravel()])
    width = max(p.size for p in parts)
    return np.sum([np.pad(p, (0, width - p.size)) for p in parts], axis=0)
