"""Numba kernels of the local thickness (imported only by the functions that use them)."""

from __future__ import annotations

import math

import numba
import numpy as np


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
