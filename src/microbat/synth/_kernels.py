"""Numba kernels of the synthetic generators (private; imported inside functions).

Both kernels rasterise a list of ellipsoids onto a voxel grid. Work is split by
planes of array axis 0: every plane is written by one thread only, and the
particles touching a plane are visited in ascending particle order, so the result
is race-free and bit-for-bit reproducible for any number of threads.

The particle list touching each plane is a CSR structure built by
:func:`plane_entries` (NumPy): ``starts[p]:starts[p + 1]`` index the entries of
plane ``p``; each entry names a particle and the *unwrapped* plane coordinate
(which differs from ``p`` by a multiple of ``n0`` on a periodic axis 0).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from microbat.core.threads import prepare_numba

prepare_numba()  # pool threads sleep, not spin, while they wait (core.threads)

__all__ = ["nearest_particle", "plane_entries", "two_nearest_surfaces"]


def plane_entries(
    centres: np.ndarray,
    halfwidth: np.ndarray,
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
    periodic: tuple[bool, bool, bool],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bounding boxes of particles in voxel indices and the per-plane CSR lists.

    Parameters
    ----------
    centres : ndarray, shape (n, 3)
        Particle centres in metres.
    halfwidth : ndarray, shape (n, 3)
        Half extent of each particle's box along each axis in metres.
    shape, spacing, periodic
        Grid shape, voxel size (m) and periodicity per axis.

    Returns
    -------
    starts : ndarray of int64, shape (n0 + 1,)
    pid : ndarray of int64
        Particle of each entry.
    u0 : ndarray of int64
        Unwrapped axis-0 index of each entry.
    lo, hi : ndarray of int64, shape (n, 3)
        Inclusive unwrapped index range of each particle's box along each axis.
    """
    h = np.asarray(spacing, dtype=float)
    lo = np.floor((centres - halfwidth) / h - 0.5).astype(np.int64)
    hi = np.ceil((centres + halfwidth) / h - 0.5).astype(np.int64)
    for ax in range(3):
        if not periodic[ax]:
            np.clip(lo[:, ax], 0, shape[ax] - 1, out=lo[:, ax])
            np.clip(hi[:, ax], -1, shape[ax] - 1, out=hi[:, ax])
    n0 = shape[0]
    counts = np.maximum(hi[:, 0] - lo[:, 0] + 1, 0)
    total = int(counts.sum())
    pid = np.repeat(np.arange(len(centres), dtype=np.int64), counts)
    offsets = np.concatenate(([0], np.cumsum(counts)[:-1])) if len(counts) else np.zeros(0)
    u0 = lo[pid, 0] + (np.arange(total, dtype=np.int64) - offsets.astype(np.int64)[pid])
    plane = np.mod(u0, n0) if periodic[0] else u0
    order = np.argsort(plane, kind="stable")
    pid, u0, plane = pid[order], u0[order], plane[order]
    starts = np.zeros(n0 + 1, dtype=np.int64)
    np.cumsum(np.bincount(plane, minlength=n0), out=starts[1:])
    return starts, pid, u0, lo, hi


@nb.njit(parallel=True, cache=True, fastmath=False)
def nearest_particle(
    shape,
    spacing,
    periodic,
    centres,
    amat,
    starts,
    pid,
    u0,
    lo,
    hi,
    rho_max,
    q,
    ids,
):  # pragma: no cover - compiled
    """Smallest normalised radius ``q`` and its particle id (1-based) per voxel.

    ``q(x) = min_i sqrt((x - c_i)^T A_i (x - c_i))``; voxels with ``q > rho_max``
    keep their initial values. ``ids`` is 0 where no particle reaches.
    """
    n0, n1, n2 = shape
    h0, h1, h2 = spacing
    for p in nb.prange(n0):
        for e in range(starts[p], starts[p + 1]):
            i = pid[e]
            x0 = (u0[e] + 0.5) * h0 - centres[i, 0]
            a00 = amat[i, 0, 0]
            a01 = amat[i, 0, 1]
            a02 = amat[i, 0, 2]
            a11 = amat[i, 1, 1]
            a12 = amat[i, 1, 2]
            a22 = amat[i, 2, 2]
            r2max = rho_max * rho_max
            for j in range(lo[i, 1], hi[i, 1] + 1):
                if periodic[1]:
                    jj = j % n1
                elif j < 0 or j >= n1:
                    continue
                else:
                    jj = j
                x1 = (j + 0.5) * h1 - centres[i, 1]
                base = a00 * x0 * x0 + 2.0 * a01 * x0 * x1 + a11 * x1 * x1
                lin = 2.0 * (a02 * x0 + a12 * x1)
                # the row meets the ellipsoid where a22 x2^2 + lin x2 + base <= r2max
                disc = lin * lin - 4.0 * a22 * (base - r2max)
                if disc < 0.0:
                    continue
                root = math.sqrt(disc)
                k_lo = max(
                    lo[i, 2],
                    math.floor((centres[i, 2] + (-lin - root) / (2.0 * a22)) / h2 - 0.5),
                )
                k_hi = min(
                    hi[i, 2],
                    math.ceil((centres[i, 2] + (-lin + root) / (2.0 * a22)) / h2 - 0.5),
                )
                for k in range(k_lo, k_hi + 1):
                    if periodic[2]:
                        kk = k % n2
                    elif k < 0 or k >= n2:
                        continue
                    else:
                        kk = k
                    x2 = (k + 0.5) * h2 - centres[i, 2]
                    r2 = base + lin * x2 + a22 * x2 * x2
                    if r2 <= r2max:
                        r = math.sqrt(r2)
                        if r < q[p, jj, kk]:
                            q[p, jj, kk] = r
                            ids[p, jj, kk] = i + 1


@nb.njit(parallel=True, cache=True, fastmath=False)
def two_nearest_surfaces(
    shape,
    spacing,
    periodic,
    centres,
    amat,
    scale,
    starts,
    pid,
    u0,
    lo,
    hi,
    reach,
    d1,
    d2,
    id1,
):  # pragma: no cover - compiled
    """Distances to the surfaces of the nearest and second-nearest particles.

    The distance from ``x`` to particle ``i`` is approximated along the ray from
    its centre, ``|x - c_i| (1 - s / rho_i(x))`` (exact for spheres); values
    larger than ``reach`` are ignored. ``id1`` holds the (1-based) particle of
    ``d1`` so that periodic images of one particle never count twice.
    """
    n0, n1, n2 = shape
    h0, h1, h2 = spacing
    for p in nb.prange(n0):
        for e in range(starts[p], starts[p + 1]):
            i = pid[e]
            x0 = (u0[e] + 0.5) * h0 - centres[i, 0]
            a00 = amat[i, 0, 0]
            a01 = amat[i, 0, 1]
            a02 = amat[i, 0, 2]
            a11 = amat[i, 1, 1]
            a12 = amat[i, 1, 2]
            a22 = amat[i, 2, 2]
            for j in range(lo[i, 1], hi[i, 1] + 1):
                if periodic[1]:
                    jj = j % n1
                elif j < 0 or j >= n1:
                    continue
                else:
                    jj = j
                x1 = (j + 0.5) * h1 - centres[i, 1]
                base = a00 * x0 * x0 + 2.0 * a01 * x0 * x1 + a11 * x1 * x1
                lin = 2.0 * (a02 * x0 + a12 * x1)
                e2 = x0 * x0 + x1 * x1
                for k in range(lo[i, 2], hi[i, 2] + 1):
                    if periodic[2]:
                        kk = k % n2
                    elif k < 0 or k >= n2:
                        continue
                    else:
                        kk = k
                    x2 = (k + 0.5) * h2 - centres[i, 2]
                    r2 = base + lin * x2 + a22 * x2 * x2
                    dist = math.sqrt(e2 + x2 * x2)
                    if r2 > 0.0:
                        d = dist * (1.0 - scale / math.sqrt(r2))
                    else:
                        d = -1.0
                    if d > reach:
                        continue
                    if id1[p, jj, kk] == i + 1:
                        if d < d1[p, jj, kk]:
                            d1[p, jj, kk] = d
                    elif d < d1[p, jj, kk]:
                        d2[p, jj, kk] = d1[p, jj, kk]
                        d1[p, jj, kk] = d
                        id1[p, jj, kk] = i + 1
                    elif d < d2[p, jj, kk]:
                        d2[p, jj, kk] = d
