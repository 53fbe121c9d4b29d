"""Numba kernels of the non-local means filter (private; imported inside functions).

The kernel works on an image that is already padded by ``search + patch`` voxels
on each side of each axis and returns the filtered interior ("valid" mode). The
serial path pads with symmetric reflection; the chunked path lets
``dask.array.map_overlap`` supply the same halo, so both compute the same sums.

Algorithm (one offset ``d`` of the search window at a time, Darbon et al. 2008):

1. the squared difference ``D(x) = (g(x) - g(x + d))**2`` is formed plane by plane,
2. it is box-filtered separably with running sums (along axis 2, then axis 1,
   then along axis 0 with a ring buffer of filtered planes), which gives the
   patch distance of every voxel for this offset in O(1) per voxel,
3. the weight ``w = exp(-max(SSD/|P| - 2 sigma**2, 0) / h**2)`` is accumulated
   both at ``x`` (neighbour ``x + d``) and, by the symmetry
   ``SSD(x, d) = SSD(x + d, -d)``, at ``x + d`` (neighbour ``x``), so only half
   of the window is visited.

Offsets are distributed over threads; each thread owns its accumulators, which
are summed at the end (no races, deterministic for a fixed thread count).
"""

from __future__ import annotations

import numpy as np
from numba import get_num_threads, njit, prange

from microbat.core.threads import prepare_numba

prepare_numba()  # pool threads sleep, not spin, while they wait (core.threads)

T_MAX = 12.0  # weights below exp(-12) ~ 6e-6 are dropped


@njit(cache=True, fastmath=True, nogil=True, inline="always")
def _weight(t, tmax):
    # exp(-t) = exp(-t/16)**16 with exp(-u), u <= 0.75, from its Taylor polynomial:
    # branch-free and vectorisable without a vector exp (relative error < 5e-5).
    t = min(max(t, np.float32(0.0)), tmax)
    u = t * np.float32(-0.0625)
    e = np.float32(1.0 / 5040.0)
    e = np.float32(1.0 / 720.0) + u * e
    e = np.float32(1.0 / 120.0) + u * e
    e = np.float32(1.0 / 24.0) + u * e
    e = np.float32(1.0 / 6.0) + u * e
    e = np.float32(0.5) + u * e
    e = np.float32(1.0) + u * e
    e = np.float32(1.0) + u * e
    e = e * e
    e = e * e
    e = e * e
    e = e * e
    return e if t < tmax else np.float32(0.0)


@njit(cache=True, fastmath=True, nogil=True)
def _one_offset(
    g,
    n0,
    n1,
    n2,
    s0,
    s1,
    s2,
    p0,
    p1,
    p2,
    d0,
    d1,
    d2,
    za,
    zb,
    inv,
    bias,
    acc,
    wsum,
    dplane,
    bk,
    ring,
    run,
    wrow,
):
    # Inner loops run over 1D row views indexed from 0 so that LLVM drops the
    # negative-index wrap-around checks and vectorises them.
    q0 = s0 + p0
    q1 = s1 + p1
    q2 = s2 + p2
    # region B of output coordinates whose weight is needed (x in out or x + d in
    # out), restricted to the x-planes [za, zb) of this slab
    lo0 = max(min(0, -d0), za)
    hi0 = min(n0 + max(0, -d0), zb)
    if hi0 <= lo0:
        return
    lo1 = min(0, -d1)
    hi1 = n1 + max(0, -d1)
    lo2 = min(0, -d2)
    hi2 = n2 + max(0, -d2)
    m1 = hi1 - lo1
    m2 = hi2 - lo2
    r1 = m1 + 2 * p1  # rows of the difference plane
    r2 = m2 + 2 * p2  # its row length
    w0 = 2 * p0 + 1
    tmax = np.float32(T_MAX)
    fin = np.float32(inv)
    fbias = np.float32(bias)
    for jj in range(m1):
        rr = run[jj]
        for kk in range(m2):
            rr[kk] = 0.0
    for z in range(lo0 - p0, hi0 + p0):
        gz = z + q0
        slot = (z - (lo0 - p0)) % w0
        rs = ring[slot]
        for a in range(r1):
            j = lo1 - p1 + a + q1
            k0 = lo2 - p2 + q2
            ga = g[gz, j, k0 : k0 + r2]
            gb = g[gz + d0, j + d1, k0 + d2 : k0 + d2 + r2]
            dp = dplane[a]
            for b in range(r2):
                t = ga[b] - gb[b]
                dp[b] = t * t
            # box along axis 2: sum of 2 p2 + 1 shifted copies of the row
            br = bk[a]
            for kk in range(m2):
                br[kk] = dp[kk]
            for b in range(1, 2 * p2 + 1):
                sh = dp[b : b + m2]
                for kk in range(m2):
                    br[kk] += sh[kk]
        # box along axis 1: running sum over rows
        r0 = rs[0]
        for kk in range(m2):
            r0[kk] = 0.0
        for a in range(2 * p1 + 1):
            br = bk[a]
            for kk in range(m2):
                r0[kk] += br[kk]
        for jj in range(1, m1):
            prev = rs[jj - 1]
            cur = rs[jj]
            add = bk[jj + 2 * p1]
            sub = bk[jj - 1]
            for kk in range(m2):
                cur[kk] = prev[kk] + add[kk] - sub[kk]
        # running sum along axis 0
        for jj in range(m1):
            rr = run[jj]
            cur = rs[jj]
            for kk in range(m2):
                rr[kk] += cur[kk]
        i = z - p0  # output plane whose window [i - p0, i + p0] is complete
        if i < lo0:
            continue
        in_x = 0 <= i < n0
        in_y = 0 <= i + d0 < n0
        for jj in range(m1):
            j = lo1 + jj
            ok_x = in_x and 0 <= j < n1
            ok_y = in_y and 0 <= j + d1 < n1
            if ok_x or ok_y:
                rr = run[jj]
                for kk in range(m2):
                    wrow[kk] = _weight(np.float32(rr[kk]) * fin - fbias, tmax)
            if ok_x:
                # x = (i, j, k), k in [0, n2): neighbour value g(x + d)
                wv = wrow[-lo2 : -lo2 + n2]
                gv = g[i + q0 + d0, j + q1 + d1, q2 + d2 : q2 + d2 + n2]
                av = acc[i, j]
                sv = wsum[i, j]
                for k in range(n2):
                    av[k] += wv[k] * gv[k]
                    sv[k] += wv[k]
            if ok_y:
                # y = x + d, y_k in [0, n2) <=> k in [-d2, n2 - d2): value g(x)
                wv = wrow[-d2 - lo2 : -d2 - lo2 + n2]
                gv = g[i + q0, j + q1, q2 - d2 : q2 - d2 + n2]
                av = acc[i + d0, j + d1]
                sv = wsum[i + d0, j + d1]
                for k in range(n2):
                    av[k] += wv[k] * gv[k]
                    sv[k] += wv[k]
        # drop the oldest plane from the running sum
        old = ring[(z - 2 * p0 - (lo0 - p0)) % w0]
        for jj in range(m1):
            rr = run[jj]
            ro = old[jj]
            for kk in range(m2):
                rr[kk] -= ro[kk]


@njit(cache=True, fastmath=True, nogil=True)
def _slab(g, s0, s1, s2, p0, p1, p2, offsets, inv, bias, acc, wsum, za, zb):
    """All offsets for the x-planes ``[za, zb)``; writes planes ``[za, zb + s0)``."""
    n0, n1, n2 = acc.shape
    m1 = n1 + 2 * s1
    m2 = n2 + 2 * s2
    dplane = np.empty((m1 + 2 * p1, m2 + 2 * p2), np.float32)
    bk = np.empty((m1 + 2 * p1, m2), np.float32)
    ring = np.empty((2 * p0 + 1, m1, m2), np.float32)
    run = np.empty((m1, m2), np.float64)
    wrow = np.empty(m2, np.float32)
    for o in range(offsets.shape[0]):
        _one_offset(
            g,
            n0,
            n1,
            n2,
            s0,
            s1,
            s2,
            p0,
            p1,
            p2,
            offsets[o, 0],
            offsets[o, 1],
            offsets[o, 2],
            za,
            zb,
            inv,
            bias,
            acc,
            wsum,
            dplane,
            bk,
            ring,
            run,
            wrow,
        )


@njit(cache=True, fastmath=True, nogil=True)
def _finish(g, acc, wsum, q0, q1, q2):
    n0, n1, n2 = acc.shape
    out = np.empty((n0, n1, n2), np.float32)
    for i in range(n0):
        for j in range(n1):
            for k in range(n2):
                # the centre voxel has weight 1
                out[i, j, k] = (acc[i, j, k] + g[i + q0, j + q1, k + q2]) / (
                    wsum[i, j, k] + np.float32(1.0)
                )
    return out


@njit(cache=True, parallel=True, fastmath=True, nogil=True)
def nlm_valid(g, s0, s1, s2, p0, p1, p2, offsets, inv, bias, slab):
    """Filter the interior of the padded image ``g`` (float32, 3D), multi-threaded.

    ``offsets`` holds the half search window (one of each pair ``d, -d``, zero
    excluded; every ``d[0] >= 0``). ``inv = 1 / (|P| h**2)``,
    ``bias = 2 sigma**2 / h**2``. The x-planes ``[-s0, n0)`` are cut into slabs of
    ``slab >= s0`` planes; a slab writes only to itself and the next slab, so the
    even slabs run in parallel, then the odd ones (no races, no per-thread copies,
    and the accumulators of a slab stay in cache while all offsets visit it).
    """
    n0 = g.shape[0] - 2 * (s0 + p0)
    n1 = g.shape[1] - 2 * (s1 + p1)
    n2 = g.shape[2] - 2 * (s2 + p2)
    acc = np.zeros((n0, n1, n2), np.float32)
    wsum = np.zeros((n0, n1, n2), np.float32)
    nslab = (n0 + s0 + slab - 1) // slab
    for phase in range(2):
        for si in prange((nslab - phase + 1) // 2):
            za = -s0 + (2 * si + phase) * slab
            _slab(g, s0, s1, s2, p0, p1, p2, offsets, inv, bias, acc, wsum, za, za + slab)
    return _finish(g, acc, wsum, s0 + p0, s1 + p1, s2 + p2)


@njit(cache=True, fastmath=True, nogil=True)
def nlm_valid_serial(g, s0, s1, s2, p0, p1, p2, offsets, inv, bias, slab):
    """Single-threaded, GIL-free twin of :func:`nlm_valid` (for Dask workers).

    Visits the slabs and offsets in the same order per voxel as :func:`nlm_valid`,
    so both give the same sums.
    """
    n0 = g.shape[0] - 2 * (s0 + p0)
    n1 = g.shape[1] - 2 * (s1 + p1)
    n2 = g.shape[2] - 2 * (s2 + p2)
    acc = np.zeros((n0, n1, n2), np.float32)
    wsum = np.zeros((n0, n1, n2), np.float32)
    nslab = (n0 + s0 + slab - 1) // slab
    for phase in range(2):
        for si in range((nslab - phase + 1) // 2):
            za = -s0 + (2 * si + phase) * slab
            _slab(g, s0, s1, s2, p0, p1, p2, offsets, inv, bias, acc, wsum, za, za + slab)
    return _finish(g, acc, wsum, s0 + p0, s1 + p1, s2 + p2)


def half_window(s0: int, s1: int, s2: int) -> np.ndarray:
    """Offsets ``d`` of the search window with ``d > 0`` lexicographically."""
    out = []
    for a in range(-s0, s0 + 1):
        for b in range(-s1, s1 + 1):
            for c in range(-s2, s2 + 1):
                if (a, b, c) > (0, 0, 0):
                    out.append((a, b, c))
    return np.asarray(out, dtype=np.int64).reshape(-1, 3)


def threads() -> int:
    """Number of Numba threads in use."""
    return int(get_num_threads())
