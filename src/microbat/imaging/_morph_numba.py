"""Numba kernels of the local thickness (imported only by the functions that use them)."""

from __future__ import annotations

import math

import numba
import numpy as np

from microbat.core.threads import prepare_numba

prepare_numba()  # pool threads sleep, not spin, while they wait (core.threads)


@numba.njit(cache=True, nogil=True)
def _inner_radius(r: float, h: float, iso: bool) -> float:  # pragma: no cover - jit
    """Radius of a closed ball holding every voxel of the open ball of radius ``r``.

    On an isotropic lattice the squared distances are integers (in voxel units),
    so the voxels strictly inside radius ``r`` lie within ``sqrt(round(r²) - 1)``.
    """
    if not iso:
        return r
    d2 = round((r / h) ** 2) - 1.0
    return h * math.sqrt(d2) if d2 > 0.0 else 0.0


@numba.njit(cache=True, nogil=True)
def _inside(rc: float, dist: float, ro: float, h: float, iso: bool) -> bool:  # pragma: no cover
    """Tell whether the open ball (c, rc) holds only voxels of the open ball (o, ro)."""
    if iso:
        return _inner_radius(rc, h, iso) + dist < ro * (1.0 - 1e-12)
    return rc + dist <= ro * (1.0 - 1e-9)


@numba.njit(cache=True, nogil=True)
def ridge_points(dt: np.ndarray, spacing: np.ndarray, iso: bool) -> np.ndarray:  # pragma: no cover
    """Flat indices of the voxels whose ball is not inside the ball of a 26-neighbour."""
    n0, n1, n2 = dt.shape
    h0, h1, h2 = spacing[0], spacing[1], spacing[2]
    keep = np.zeros(dt.size, dtype=np.bool_)
    count = 0
    for i in range(n0):
        for j in range(n1):
            for k in range(n2):
                r = dt[i, j, k]
                if r <= 0.0:
                    continue
                covered = False
                for di in range(-1, 2):
                    ii = i + di
                    if ii < 0 or ii >= n0:
                        continue
                    for dj in range(-1, 2):
                        jj = j + dj
                        if jj < 0 or jj >= n1:
                            continue
                        for dk in range(-1, 2):
                            kk = k + dk
                            if kk < 0 or kk >= n2 or (di == 0 and dj == 0 and dk == 0):
                                continue
                            d = math.sqrt((di * h0) ** 2 + (dj * h1) ** 2 + (dk * h2) ** 2)
                            if _inside(r, d, dt[ii, jj, kk], h0, iso):
                                covered = True
                                break
                        if covered:
                            break
                    if covered:
                        break
                if not covered:
                    keep[(i * n1 + j) * n2 + k] = True
                    count += 1
    out = np.empty(count, dtype=np.int64)
    m = 0
    for f in range(keep.size):
        if keep[f]:
            out[m] = f
            m += 1
    return out


@numba.njit(cache=True, nogil=True)
def stamp_balls(
    centres: np.ndarray, radii: np.ndarray, spacing: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - jit
    """Raise every voxel inside the open ball (c, r) to at least ``2 r``.

    The ball of radius ``dt(c)`` holds only voxels of the phase (its radius is the
    distance to the nearest voxel of another phase), so no mask is needed. Each
    row of a ball is a contiguous run of the last axis (vectorised max).
    """
    n0, n1, n2 = out.shape
    h0, h1, h2 = spacing[0], spacing[1], spacing[2]
    for b in range(centres.size):
        f = centres[b]
        ci = f // (n1 * n2)
        cj = (f // n2) % n1
        ck = f % n2
        r = radii[b]
        r2 = r * r * (1.0 - 1e-9)  # open ball, robust to rounding on the sphere
        val = 2.0 * r
        m0 = int(math.ceil(r / h0))  # noqa: RUF046
        for di in range(max(-m0, -ci), min(m0, n0 - 1 - ci) + 1):
            a = r2 - (di * h0) ** 2
            if a <= 0.0:
                continue
            m1 = int(math.ceil(math.sqrt(a) / h1))  # noqa: RUF046
            for dj in range(max(-m1, -cj), min(m1, n1 - 1 - cj) + 1):
                bb = a - (dj * h1) ** 2
                if bb <= 0.0:
                    continue
                w = math.sqrt(bb) / h2
                m2 = int(math.ceil(w)) - 1  # noqa: RUF046  (largest |dk| with (dk h2)^2 < bb)
                if m2 < 0:
                    continue
                if (m2 * h2) ** 2 >= bb:
                    m2 -= 1
                while ((m2 + 1) * h2) ** 2 < bb:
                    m2 += 1
                if m2 < 0:
                    continue
                row = out[ci + di, cj + dj]
                for k in range(max(0, ck - m2), min(n2, ck + m2 + 1)):
                    row[k] = max(row[k], val)


@numba.njit(cache=True, nogil=True)
def ball_rows(radii: np.ndarray, spacing: np.ndarray):  # pragma: no cover - jit
    """Row templates of open balls: ``(offsets, di, dj, half)`` in CSR form.

    For ball ``t`` the rows ``offsets[t]:offsets[t+1]`` hold the offsets
    ``(di, dj)`` of a row along the last axis and its half length ``half``
    (the row spans ``dk = -half .. half``).
    """
    h0, h1, h2 = spacing[0], spacing[1], spacing[2]
    counts = np.zeros(radii.size + 1, dtype=np.int64)
    for t in range(radii.size):
        r = radii[t]
        r2 = r * r * (1.0 - 1e-9)
        m0 = int(math.ceil(r / h0))  # noqa: RUF046
        c = 0
        for di in range(-m0, m0 + 1):
            a = r2 - (di * h0) ** 2
            if a <= 0.0:
                continue
            m1 = int(math.ceil(math.sqrt(a) / h1))  # noqa: RUF046
            for dj in range(-m1, m1 + 1):
                if a - (dj * h1) ** 2 > 0.0:
                    c += 1
        counts[t + 1] = c
    offsets = np.cumsum(counts)
    total = offsets[-1]
    rdi = np.empty(total, dtype=np.int64)
    rdj = np.empty(total, dtype=np.int64)
    half = np.empty(total, dtype=np.int64)
    for t in range(radii.size):
        r = radii[t]
        r2 = r * r * (1.0 - 1e-9)
        m0 = int(math.ceil(r / h0))  # noqa: RUF046
        q = offsets[t]
        for di in range(-m0, m0 + 1):
            a = r2 - (di * h0) ** 2
            if a <= 0.0:
                continue
            m1 = int(math.ceil(math.sqrt(a) / h1))  # noqa: RUF046
            for dj in range(-m1, m1 + 1):
                bb = a - (dj * h1) ** 2
                if bb <= 0.0:
                    continue
                m2 = int(math.ceil(math.sqrt(bb) / h2))  # noqa: RUF046
                while m2 > 0 and (m2 * h2) ** 2 >= bb:
                    m2 -= 1
                while ((m2 + 1) * h2) ** 2 < bb:
                    m2 += 1
                rdi[q] = di
                rdj[q] = dj
                half[q] = m2
                q += 1
    return offsets, rdi, rdj, half


@numba.njit(cache=True, nogil=True)
def stamp_templates(
    centres: np.ndarray,
    which: np.ndarray,
    values: np.ndarray,
    offsets: np.ndarray,
    rdi: np.ndarray,
    rdj: np.ndarray,
    half: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover - jit
    """Raise every voxel of ball ``which[b]`` centred on ``centres[b]`` to ``values[which[b]]``."""
    n0, n1, n2 = out.shape
    flat = out.reshape(-1)
    for b in range(centres.size):
        f = centres[b]
        ci = f // (n1 * n2)
        cj = (f // n2) % n1
        ck = f % n2
        t = which[b]
        val = values[t]
        for q in range(offsets[t], offsets[t + 1]):
            i = ci + rdi[q]
            j = cj + rdj[q]
            if i < 0 or i >= n0 or j < 0 or j >= n1:
                continue
            m2 = half[q]
            lo = max(0, ck - m2)
            hi = min(n2, ck + m2 + 1)
            base = (i * n1 + j) * n2
            for k in range(base + lo, base + hi):
                if flat[k] < val:
                    flat[k] = val


@numba.njit(cache=True, nogil=True)
def _envelope(f, n, h2, out, v, z):  # pragma: no cover - jit
    """1D min-convolution ``out[p] = min_q h2 (p - q)² + f[q]`` (lower envelope of parabolas)."""
    k = -1
    for q in range(n):
        fq = f[q]
        if fq == np.inf:
            continue
        if k < 0:
            k = 0
            v[0] = q
            z[0] = -np.inf
            z[1] = np.inf
            continue
        while True:
            p = v[k]
            s = ((fq + h2 * q * q) - (f[p] + h2 * p * p)) / (2.0 * h2 * (q - p))
            if s <= z[k]:
                k -= 1
                if k < 0:
                    break
            else:
                break
        k += 1
        v[k] = q
        z[k] = s if k > 0 else -np.inf
        z[k + 1] = np.inf
    if k < 0:
        for p in range(n):
            out[p] = np.inf
        return
    j = 0
    for p in range(n):
        while z[j + 1] < p:
            j += 1
        d = p - v[j]
        out[p] = h2 * d * d + f[v[j]]


@numba.njit(cache=True, nogil=True)
def squared_edt(mask: np.ndarray, h: np.ndarray) -> np.ndarray:  # pragma: no cover - jit
    """Squared Euclidean distance of every voxel to the nearest ``False`` voxel.

    Separable exact transform of Felzenszwalb & Huttenlocher (2012): a two-sweep
    1D distance along the last axis, then lower envelopes of parabolas along the
    other two; physical voxel size ``h``; ``inf`` where no ``False`` voxel exists.
    ``O(N)`` time, one float64 per voxel.
    """
    n0, n1, n2 = mask.shape
    d = np.empty(mask.shape)
    h2 = h[2] * h[2]
    # pass along axis 2: 1D distance to nearest background
    for i in range(n0):
        for j in range(n1):
            last = -1
            for k in range(n2):
                if not mask[i, j, k]:
                    last = k
                    d[i, j, k] = 0.0
                elif last >= 0:
                    d[i, j, k] = h2 * (k - last) ** 2
                else:
                    d[i, j, k] = np.inf
            last = -1
            for k in range(n2 - 1, -1, -1):
                if not mask[i, j, k]:
                    last = k
                elif last >= 0:
                    x = h2 * (last - k) ** 2
                    if x < d[i, j, k]:
                        d[i, j, k] = x
    m = max(n0, n1)
    f = np.empty(m)
    out = np.empty(m)
    v = np.empty(m, np.int64)
    z = np.empty(m + 1)
    h2 = h[1] * h[1]
    for i in range(n0):
        for k in range(n2):
            for j in range(n1):
                f[j] = d[i, j, k]
            _envelope(f, n1, h2, out, v, z)
            for j in range(n1):
                d[i, j, k] = out[j]
    h2 = h[0] * h[0]
    for j in range(n1):
        for k in range(n2):
            for i in range(n0):
                f[i] = d[i, j, k]
            _envelope(f, n0, h2, out, v, z)
            for i in range(n0):
                d[i, j, k] = out[i]
    return d


@numba.njit(cache=True, nogil=True)
def _template_inside(
    tc: int,
    v0: int,
    v1: int,
    v2: int,
    offsets: np.ndarray,
    rdi: np.ndarray,
    rdj: np.ndarray,
    half: np.ndarray,
    grid_n: np.ndarray,
    m: int,
) -> bool:  # pragma: no cover - jit
    """Tell whether the voxels of ball ``tc``, shifted by ``-v``, lie in the ball ``grid_n``."""
    for q in range(offsets[tc], offsets[tc + 1]):
        a = rdi[q] + v0
        b = rdj[q] + v1
        if abs(a) > m or abs(b) > m:
            return False
        hn = grid_n[a + m, b + m]
        if hn < 0 or half[q] + abs(v2) > hn:
            return False
    return True


@numba.njit(cache=True, nogil=True)
def containment_thresholds(
    offsets: np.ndarray,
    rdi: np.ndarray,
    rdj: np.ndarray,
    half: np.ndarray,
    steps: np.ndarray,
    m: int,
) -> np.ndarray:  # pragma: no cover - jit
    """Smallest ball index holding the voxels of ball ``t`` seen from a neighbour.

    ``T[t, s]`` is the smallest index ``u > t`` (balls sorted by radius) such that
    every voxel of ball ``t`` centred at ``c`` lies in ball ``u`` centred at
    ``c + steps[s]`` (balls of one centre are nested, so a binary search over
    ``u`` suffices); ``T = n_balls`` when none does.
    """
    nt = offsets.size - 1
    grids = np.full((nt, 2 * m + 1, 2 * m + 1), -1, dtype=np.int32)
    for t in range(nt):
        for q in range(offsets[t], offsets[t + 1]):
            grids[t, rdi[q] + m, rdj[q] + m] = half[q]
    out = np.full((nt, steps.shape[0]), nt, dtype=np.int64)
    for tc in range(nt):
        for s in range(steps.shape[0]):
            v0, v1, v2 = steps[s, 0], steps[s, 1], steps[s, 2]
            lo = tc + 1
            hi = nt
            while lo < hi:
                mid = (lo + hi) // 2
                if _template_inside(tc, v0, v1, v2, offsets, rdi, rdj, half, grids[mid], m):
                    hi = mid
                else:
                    lo = mid + 1
            out[tc, s] = lo
    return out


@numba.njit(cache=True, nogil=True)
def discrete_ridge(
    index: np.ndarray, thresholds: np.ndarray, steps: np.ndarray
) -> np.ndarray:  # pragma: no cover - jit
    """Flat indices of the voxels whose ball's voxels are not all in a neighbour's ball.

    ``index`` holds the ball index (radius rank) of every voxel, -1 off the phase.
    """
    n0, n1, n2 = index.shape
    keep = np.zeros(index.size, dtype=np.bool_)
    for i in range(n0):
        for j in range(n1):
            for k in range(n2):
                tc = index[i, j, k]
                if tc < 0:
                    continue
                redundant = False
                for s in range(steps.shape[0]):
                    ii = i + steps[s, 0]
                    jj = j + steps[s, 1]
                    kk = k + steps[s, 2]
                    if ii < 0 or ii >= n0 or jj < 0 or jj >= n1 or kk < 0 or kk >= n2:
                        continue
                    if index[ii, jj, kk] >= thresholds[tc, s]:
                        redundant = True
                        break
                if not redundant:
                    keep[(i * n1 + j) * n2 + k] = True
    return np.flatnonzero(keep)
