"""Non-local means denoising of 2D and 3D grayscale images.

The filter replaces each voxel by a weighted mean of the voxels in a search
window around it, weighting each candidate by how similar the patch around it is
to the patch around the voxel being filtered (Buades, Coll & Morel 2005). Edges
and thin features survive because voxels on the other side of an edge have
dissimilar patches.

Two functions:

* :func:`estimate_sigma` -- robust standard deviation of white noise.
* :func:`denoise_nlm` -- the filter, multi-threaded in memory, or chunked with
  Dask for volumes larger than memory (identical sums, see the Notes there).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from microbat.core.errors import InvalidInputError

__all__ = ["denoise_nlm", "estimate_sigma"]

#: Default filter strength ``h / sigma`` with the default 5-voxel patch (best PSNR
#: on electrode phantoms, see docs/validation/imaging.md).
DEFAULT_STRENGTH = 0.6


def _is_dask(x: Any) -> bool:
    return type(x).__module__.startswith("dask.")


def _is_lazy(x: Any) -> bool:
    """Dask arrays and sliceable on-disk arrays (Zarr, HDF5) that should not be loaded."""
    return _is_dask(x) or (
        not isinstance(x, np.ndarray)
        and all(hasattr(x, a) for a in ("shape", "dtype", "ndim", "__getitem__"))
    )


def _check_image(image: Any, what: str = "image", *, lazy_ok: bool = False) -> np.ndarray:
    """Validate a grayscale image: 2D/3D, real numbers, finite (checked later if lazy)."""
    lazy = _is_dask(image) or (lazy_ok and _is_lazy(image))
    arr = image if lazy else np.asarray(image)
    if arr.ndim not in (2, 3):
        raise InvalidInputError(
            f"the {what} must be a 2D or 3D grayscale array, got {arr.ndim}D with shape "
            f"{tuple(arr.shape)}; for a colour or multi-channel stack pick one channel first"
        )
    if min(arr.shape) < 1:
        raise InvalidInputError(f"the {what} is empty (shape {tuple(arr.shape)})")
    kind = np.dtype(arr.dtype).kind
    if kind not in "biuf":
        raise InvalidInputError(
            f"the {what} must hold real numbers, got dtype {arr.dtype}; convert it (e.g. "
            "np.abs for a complex reconstruction) first"
        )
    if kind == "f" and not lazy:
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        if bad:
            raise InvalidInputError(
                f"the {what} holds {bad} NaN or infinite voxel(s); replace them first (e.g. "
                "np.nan_to_num(image, nan=np.nanmedian(image)) or crop them away)"
            )
    return arr


def estimate_sigma(image: np.ndarray, *, max_voxels: int = 8_000_000) -> float:
    """Estimate the standard deviation of additive white noise in an image.

    Parameters
    ----------
    image : ndarray, shape (n0, n1) or (n0, n1, n2)
        Grayscale image (any real dtype). A Dask array is estimated on its central
        block of at most ``max_voxels`` voxels.
    max_voxels : int, default 8_000_000
        Larger images are estimated on a central crop of about this many voxels.

    Returns
    -------
    float
        Noise standard deviation in image intensity units (0 for a noise-free
        piecewise-constant image).

    Notes
    -----
    The image is high-pass filtered with the separable second difference
    ``[1, -2, 1]`` along every axis (a kernel ``k`` with ``||k||^2 = 6**ndim``)
    that cancels constant and linear trends; away from edges the response is pure
    noise with standard deviation ``sigma * 6**(ndim/2)``. Edges are a minority of
    voxels, so the median absolute deviation of the response, divided by
    ``0.6745 * 6**(ndim/2)``, estimates ``sigma`` robustly (Immerkaer 1996 uses the
    same idea with the 2D Laplacian-difference mask). Cost: O(N).

    References
    ----------
    .. [1] J. Immerkaer, "Fast noise variance estimation", Computer Vision and
       Image Understanding 64(2), 300-302, 1996.
    .. [2] D. L. Donoho, I. M. Johnstone, "Ideal spatial adaptation by wavelet
       shrinkage", Biometrika 81(3), 425-455, 1994 (the MAD estimator).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> img = np.zeros((40, 40, 40)); img[:, :, 20:] = 1.0
    >>> round(estimate_sigma(img + rng.normal(0, 0.1, img.shape)), 2)
    0.1
    """
    arr = _check_image(image)
    if max_voxels < 27:
        raise InvalidInputError(f"max_voxels must be at least 27, got {max_voxels}")
    shape = np.asarray(arr.shape)
    if arr.size > max_voxels:
        edge = max(3, round(max_voxels ** (1.0 / arr.ndim)))
        lo = np.maximum((shape - edge) // 2, 0)
        arr = arr[tuple(slice(int(a), int(a) + edge) for a in lo)]
    a = np.asarray(arr, dtype=np.float64)
    axes = [ax for ax in range(a.ndim) if a.shape[ax] >= 3]
    if not axes:
        raise InvalidInputError(
            f"cannot estimate noise on an image of shape {tuple(a.shape)}: it needs at least "
            "3 voxels along one axis; give sigma explicitly"
        )
    hp = a
    for ax in axes:
        n = hp.shape[ax]
        sl = [slice(None)] * hp.ndim
        s0, s1, s2 = list(sl), list(sl), list(sl)
        s0[ax], s1[ax], s2[ax] = slice(0, n - 2), slice(1, n - 1), slice(2, n)
        hp = hp[tuple(s0)] - 2.0 * hp[tuple(s1)] + hp[tuple(s2)]
    r = hp.ravel()
    mad = float(np.median(np.abs(r - np.median(r))))
    return mad / 0.6744897501960817 / math.sqrt(6.0 ** len(axes))


def _radii(value: int | Sequence[int], ndim: int, name: str, *, odd: bool) -> tuple[int, ...]:
    vals = tuple(int(v) for v in np.atleast_1d(value))
    if len(vals) == 1:
        vals = vals * ndim
    if len(vals) != ndim or any(v < 0 for v in vals):
        raise InvalidInputError(
            f"{name} must be a non-negative integer or one per axis, got {value}"
        )
    if odd:
        if any(v < 1 or v % 2 == 0 for v in vals):
            raise InvalidInputError(f"{name} must be odd and positive (3, 5, 7 ...), got {value}")
        return tuple(v // 2 for v in vals)
    return vals


def denoise_nlm(
    image: np.ndarray,
    *,
    patch_size: int | Sequence[int] = 5,
    search_radius: int | Sequence[int] = 3,
    h: float | None = None,
    sigma: float | None = None,
    strength: float = DEFAULT_STRENGTH,
    chunks: int | Sequence[int] | None = None,
    out: Any = None,
) -> np.ndarray:
    """Non-local means filter for 2D and 3D images, multi-threaded or chunked.

    Parameters
    ----------
    image : ndarray or dask.array.Array, shape (n0, n1) or (n0, n1, n2)
        Grayscale image (any real dtype; computed in float32). A Dask array is
        filtered lazily, block by block, and a Dask array is returned.
    patch_size : int or sequence of int, default 5
        Edge of the (odd) cubic patch whose similarity is compared, in voxels;
        one value or one per axis. 5 gives the best PSNR/SSIM, and the best
        segmentation afterwards, on the electrode phantoms of
        docs/validation/imaging.md.
    search_radius : int or sequence of int, default 3
        Half-width of the search window: candidates lie within this many voxels
        along each axis (``2 r + 1`` per axis). Same as scikit-image's
        ``patch_distance``.
    h : float, optional
        Filter strength in intensity units: the patch distance (mean squared
        difference, after subtracting ``2 sigma**2``) at which the weight falls to
        ``1/e``. Default ``strength * sigma``.
    sigma : float, optional
        Noise standard deviation. Default: :func:`estimate_sigma`.
    strength : float, default 0.6
        ``h / sigma`` when ``h`` is not given.
    chunks : int or sequence of int, optional
        Run through ``dask.array.map_overlap`` with this chunk shape (for volumes
        larger than memory, or to bound memory). The input may then be anything
        sliceable (a Zarr array, an HDF5 dataset, a memory map): it is read one row
        of chunks (along axis 0) at a time.
    out : array-like, optional
        Writable array of the image's shape (``numpy.memmap``, Zarr array, HDF5
        dataset) that receives the result slab by slab; with ``chunks`` (or a Dask
        input) the memory used is then a few slabs, not the volume. Returned.

    Returns
    -------
    ndarray of float32, dask.array.Array or ``out``
        The filtered image, same shape as ``image``: ``out`` when given, a lazy
        Dask array for a Dask input without ``out``, else a NumPy array.

    Raises
    ------
    InvalidInputError
        Not 2D/3D, not real, NaN/inf voxels, bad patch or search sizes.

    Warns
    -----
    UserWarning
        When the image is constant or no noise is detected (returned unchanged), or
        when an axis is one voxel thin (the filter works in 2D on it).

    Notes
    -----
    The output at ``x`` is ``sum_y w(x, y) f(y) / sum_y w(x, y)`` over ``y`` in the
    search window, with ``w = exp(-max(||P(x) - P(y)||^2 / |P| - 2 sigma^2, 0) / h^2)``
    and ``P`` the patch (the fast variant of Buades et al. with the noise-variance
    correction of scikit-image's ``fast_mode``); the centre voxel has weight 1.

    Speed (Darbon et al. 2008): for each offset ``d`` of the search window the
    squared-difference image is box-filtered with separable running sums, which
    gives all patch distances for that offset in O(1) per voxel, independent of the
    patch size. The symmetry ``w(x, x + d) = w(x + d, x)`` lets one visit only half
    of the window. Cost O(N W / 2) for N voxels and W window positions; memory
    three float32 copies of the image. The volume is cut into slabs along axis 0
    that are processed in parallel (even slabs, then odd ones), with all offsets
    visiting one slab while its accumulators are in cache.

    Boundaries are padded by symmetric reflection (``numpy.pad(mode="symmetric")``),
    which is what ``dask.array.map_overlap(boundary="reflect")`` supplies around the
    outer chunks; with a halo of ``search_radius + patch_size // 2`` the chunked
    result therefore equals the in-memory one everywhere, up to float32 rounding of
    the running sums (about 1e-6 relative).

    References
    ----------
    .. [1] A. Buades, B. Coll, J.-M. Morel, "A non-local algorithm for image
       denoising", CVPR 2005, 60-65.
    .. [2] J. Darbon, A. Cunha, T. F. Chan, S. Osher, G. J. Jensen, "Fast nonlocal
       filtering applied to electron cryomicroscopy", ISBI 2008, 1331-1334.
    .. [3] P. Coupe et al., "An optimized blockwise nonlocal means denoising filter
       for 3-D magnetic resonance images", IEEE TMI 27(4), 425-441, 2008.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> clean = np.zeros((32, 32, 32), np.float32); clean[:, :, 16:] = 1
    >>> noisy = clean + rng.normal(0, 0.2, clean.shape).astype(np.float32)
    >>> out = denoise_nlm(noisy)
    >>> bool(np.abs(out - clean).mean() < 0.5 * np.abs(noisy - clean).mean())
    True
    """
    arr = _check_image(image, lazy_ok=chunks is not None)
    ndim = arr.ndim
    prad = _radii(patch_size, ndim, "patch_size", odd=True)
    srad = _radii(search_radius, ndim, "search_radius", odd=False)
    thin = [ax for ax in range(ndim) if arr.shape[ax] == 1]
    if thin and ndim == 3:
        warnings.warn(
            f"axis {thin} of the image is one voxel thin; filtering in 2D across it",
            UserWarning,
            stacklevel=2,
        )
    prad = tuple(0 if arr.shape[ax] == 1 else p for ax, p in enumerate(prad))
    srad = tuple(0 if arr.shape[ax] == 1 else s for ax, s in enumerate(srad))

    if sigma is None:
        sigma = estimate_sigma(arr if not _is_lazy(arr) or _is_dask(arr) else _central(arr))
    elif not (math.isfinite(sigma) and sigma >= 0):
        raise InvalidInputError(f"sigma must be a finite non-negative number, got {sigma}")
    if h is None:
        if not (math.isfinite(strength) and strength > 0):
            raise InvalidInputError(f"strength must be positive and finite, got {strength}")
        h = strength * sigma
    elif not (math.isfinite(h) and h >= 0):
        raise InvalidInputError(f"h must be a finite non-negative number, got {h}")
    if h <= 0:
        warnings.warn(
            "no noise detected (the image is constant or piecewise constant), so the filter "
            "strength h is 0; the image is returned unchanged (as float32). Give sigma or h "
            "to filter anyway",
            UserWarning,
            stacklevel=2,
        )
        return arr.astype(np.float32) if _is_dask(arr) else np.array(arr, dtype=np.float32)

    # Work in 3D; a 2D image gets a singleton axis 1 so that its rows are slabbed.
    if ndim == 2:
        prad = (prad[0], 0, prad[1])
        srad = (srad[0], 0, srad[1])
    npatch = float(np.prod([2 * p + 1 for p in prad]))
    params = {
        "srad": srad,
        "prad": prad,
        "inv": 1.0 / (npatch * h * h),
        "bias": 2.0 * sigma * sigma / (h * h),
    }

    if chunks is None and not _is_dask(arr):
        g = np.asarray(arr, dtype=np.float32)
        if ndim == 2:
            g = g[:, None, :]
        res = _filter_block(g, pad=True, parallel=True, **params)
        res = res[:, 0, :] if ndim == 2 else res
        if out is None:
            return res
        out[...] = res
        return out
    return _denoise_chunked(arr, chunks=chunks, ndim=ndim, out=out, **params)


def _filter_block(
    g: np.ndarray,
    *,
    pad: bool,
    parallel: bool,
    srad: tuple[int, int, int],
    prad: tuple[int, int, int],
    inv: float,
    bias: float,
) -> np.ndarray:
    """Filter a 3D float32 block; ``pad=False`` means it already carries its halo."""
    from microbat.imaging import _nlm_kernels as K

    q = [s + p for s, p in zip(srad, prad, strict=True)]
    if pad:
        g = np.pad(g, [(v, v) for v in q], mode="symmetric")
    g = np.ascontiguousarray(g, dtype=np.float32)
    offsets = K.half_window(*srad)
    if offsets.shape[0] == 0:  # search radius 0: nothing to average
        return np.array(
            g[q[0] : g.shape[0] - q[0], q[1] : g.shape[1] - q[1], q[2] : g.shape[2] - q[2]]
        )
    n0 = g.shape[0] - 2 * q[0]
    nthreads = K.threads() if parallel else 1
    slab = max(srad[0], 1, min(8, -(-(n0 + srad[0]) // (2 * nthreads))))
    fn = K.nlm_valid if parallel else K.nlm_valid_serial
    return fn(g, *srad, *prad, offsets, inv, bias, slab)


def _denoise_chunked(
    arr: Any,
    *,
    chunks: int | Sequence[int] | None,
    ndim: int,
    out: Any,
    srad: tuple[int, int, int],
    prad: tuple[int, int, int],
    inv: float,
    bias: float,
) -> Any:
    import dask.array as da

    was_dask = _is_dask(arr)
    # from_array keeps Zarr arrays, HDF5 datasets and memory maps lazy
    x = arr if was_dask else da.from_array(arr, chunks=chunks if chunks is not None else "auto")
    if chunks is not None and was_dask:
        x = x.rechunk(chunks)
    x = x.astype(np.float32)
    if ndim == 2:
        x = x[:, None, :]
    depth = {ax: srad[ax] + prad[ax] for ax in range(3)}
    # map_overlap needs every chunk at least as deep as the halo
    if any(min(x.chunks[ax]) < depth[ax] for ax in range(3) if x.shape[ax] > depth[ax]):
        x = x.rechunk({ax: max(depth[ax], max(x.chunks[ax])) for ax in range(3)})
    kw = {"srad": srad, "prad": prad, "inv": inv, "bias": bias}
    meta = np.empty((0, 0, 0), np.float32)
    if was_dask and out is None:
        lazy = da.map_overlap(
            _block_fn,
            x,
            depth=depth,
            boundary="reflect",
            trim=False,
            dtype=np.float32,
            chunks=x.chunks,
            meta=meta,
            **kw,
        )
        return lazy[:, 0, :] if ndim == 2 else lazy

    # Materialise block by block: each Dask task reads its block plus halo from the
    # source (symmetric reflection at the outer faces, like numpy.pad), filters it
    # and writes its core into the destination. Memory: one haloed block per worker.
    from itertools import pairwise, product

    import dask

    shape = tuple(arr.shape)
    if out is None:
        dest: Any = np.empty(shape, np.float32)
    else:
        if tuple(out.shape) != shape:
            raise InvalidInputError(
                f"out has shape {tuple(out.shape)} but the image has shape {shape}"
            )
        dest = out
    src = x if was_dask else arr  # a Dask source is already float32 and 3D
    three_d = was_dask or ndim == 3
    spans = [list(pairwise(np.cumsum((0, *c)).tolist())) for c in x.chunks]
    q = [depth[ax] for ax in range(3)]
    tasks = [
        dask.delayed(_stream_block, pure=False)(src, dest, blk, q, ndim, three_d, kw)
        for blk in product(*spans)
    ]
    from microbat.core.threads import thread_budget

    # serial kernels in thread_budget() Dask threads (a twin's pool, when set, wins)
    dask.compute(*tasks, scheduler="threads", num_workers=thread_budget())
    return dest


def _reflect_index(lo: int, hi: int, n: int) -> np.ndarray:
    """Indices ``lo..hi-1`` folded into ``0..n-1`` by symmetric reflection."""
    idx = np.arange(lo, hi)
    period = 2 * n
    idx = np.mod(idx, period)
    return np.where(idx >= n, period - 1 - idx, idx)


def _stream_block(
    src: Any,
    dest: Any,
    blk: tuple[tuple[int, int], ...],
    q: list[int],
    ndim: int,
    three_d: bool,
    kw: dict[str, Any],
) -> None:
    """Read one block with its halo from ``src``, filter it, write its core to ``dest``."""
    shape3 = tuple(src.shape) if three_d else (src.shape[0], 1, src.shape[-1])
    idx = [_reflect_index(a - qq, b + qq, n) for (a, b), qq, n in zip(blk, q, shape3, strict=True)]
    lo = [int(i.min()) for i in idx]
    hi = [int(i.max()) + 1 for i in idx]
    if three_d:
        box = src[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    else:  # a 2D on-disk array: axis 1 of the 3D view is the singleton
        box = src[lo[0] : hi[0], lo[2] : hi[2]][:, None, :]
    if _is_dask(box):
        box = box.compute(scheduler="synchronous")
    box = np.asarray(box, dtype=np.float32)
    region = box[np.ix_(idx[0] - lo[0], idx[1] - lo[1], idx[2] - lo[2])]
    res = _block_fn(np.ascontiguousarray(region), **kw)
    (a0, b0), (a1, b1), (a2, b2) = blk
    if ndim == 2:
        dest[a0:b0, a2:b2] = res[:, 0, :]
    else:
        dest[a0:b0, a1:b1, a2:b2] = res


def _block_fn(block: np.ndarray, **params: Any) -> np.ndarray:
    """One Dask block: the halo is already there (``trim=False``), return the core."""
    block = np.asarray(block)
    if not np.all(np.isfinite(block)):
        raise InvalidInputError(
            "the image holds NaN or infinite voxel(s); replace them first (e.g. "
            "np.nan_to_num(image, nan=np.nanmedian(image)) or crop them away)"
        )
    return _filter_block(block, pad=False, parallel=False, **params)


def _central(arr: Any, max_voxels: int = 8_000_000) -> np.ndarray:
    """A central crop of a lazy array, read into memory (for the noise estimate)."""
    edge = max(3, round(max_voxels ** (1.0 / arr.ndim)))
    lo = [max((n - edge) // 2, 0) for n in arr.shape]
    return np.asarray(arr[tuple(slice(a, a + edge) for a in lo)])
