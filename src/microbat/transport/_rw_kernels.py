"""Numba kernels of the continuum random walk (private; imported inside functions).

Geometry in *index space*: voxel ``(i, j, k)`` is the unit cube
``[i, i+1) x [j, j+1) x [k, k+1)``. A walker is stored as an integer, unwrapped cell
``c`` plus a fractional position ``f`` in ``[0, 1]`` per axis inside that cell, so
its unwrapped position is ``c + f`` (exact integer part: no loss of precision however
far it goes). The stored voxel it sits in is tracked separately as the wrapped index
``w`` and, for mirror images, the orientation ``s = ±1`` of the current image along
each axis (an unwrapped move by ``d`` is a move by ``s * d`` in the stored array).

The phase is given as a padded ``uint8`` array (one layer of mirror or periodic
images on every side), flattened; bit 0 marks voxels a walker may occupy, bit 1 the
voxels where walkers may be released.

Random numbers: one xoroshiro128++ stream per walker (Blackman & Vigna 2021; state
seeded from :class:`numpy.random.SeedSequence`), so results do not depend on the
number of threads or on how walkers are scheduled. Sums are accumulated per fixed
chunk of walkers and combined in chunk order: bit-identical results for any thread
count.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from microbat.core.threads import prepare_numba

prepare_numba()  # pool threads sleep, not spin, while they wait (core.threads)

__all__ = ["MIRROR", "PERIODIC", "advance", "direction", "next_u64", "place"]

MIRROR = 0
PERIODIC = 1

_U15 = np.uint64(15)
_U17 = np.uint64(17)
_U21 = np.uint64(21)
_U28 = np.uint64(28)
_U30 = np.uint64(30)
_U32 = np.uint64(32)
_U36 = np.uint64(36)
_U47 = np.uint64(47)
_U49 = np.uint64(49)
_U3 = np.uint64(3)
_U11 = np.uint64(11)
_M30 = np.uint64((1 << 30) - 1)
_INV53 = 1.0 / 9007199254740992.0  # 2**-53
_Z_SCALE = 2.0 / 4294967296.0  # 2 / 2**32
_TH_SCALE = 1.5707963267948966 / 1073741824.0  # (pi/2) / 2**30
_QUARTER_PI = 0.7853981633974483
_BUFFER = 64  # directions drawn ahead per walker (lets the compiler vectorise them)


@njit(cache=True)
def next_u64(s0: np.uint64, s1: np.uint64) -> tuple[np.uint64, np.uint64, np.uint64]:
    """xoroshiro128++ (a=49, b=21, c=28): next 64-bit output and new state."""
    t = s0 + s1
    r = ((t << _U17) | (t >> _U47)) + s0
    s1 ^= s0
    s0 = ((s0 << _U49) | (s0 >> _U15)) ^ s1 ^ (s1 << _U21)
    s1 = (s1 << _U28) | (s1 >> _U36)
    return r, s0, s1


@njit(cache=True)
def _uniform(s0: np.uint64, s1: np.uint64) -> tuple[float, np.uint64, np.uint64]:
    """Uniform double in [0, 1) from the top 53 bits."""
    r, s0, s1 = next_u64(s0, s1)
    return float(r >> _U11) * _INV53, s0, s1


@njit(cache=True, fastmath={"contract"})
def direction(r: np.uint64) -> tuple[float, float, float]:
    """Unit vector uniform on the sphere from one 64-bit random number.

    Archimedes: the axial component ``z`` is uniform in (-1, 1) (top 32 bits, bin
    centres) and the azimuth uniform on the circle: 2 bits pick the quadrant, 30 bits
    the angle inside it; sine and cosine by their Taylor series on [-pi/4, pi/4]
    (error < 1e-14), so there is no rejection loop and no branch on random data.
    """
    z = (float(r >> _U32) + 0.5) * _Z_SCALE - 1.0
    q = int((r >> _U30) & _U3)
    th = (float(r & _M30) + 0.5) * _TH_SCALE - _QUARTER_PI
    x2 = th * th
    s = th * (
        1.0
        + x2
        * (
            -1.0 / 6.0
            + x2
            * (
                1.0 / 120.0
                + x2
                * (
                    -1.0 / 5040.0
                    + x2 * (1.0 / 362880.0 + x2 * (-1.0 / 39916800.0 + x2 / 6227020800.0))
                )
            )
        )
    )
    c = 1.0 + x2 * (
        -0.5
        + x2
        * (
            1.0 / 24.0
            + x2
            * (
                -1.0 / 720.0
                + x2
                * (
                    1.0 / 40320.0
                    + x2 * (-1.0 / 3628800.0 + x2 * (1.0 / 479001600.0 - x2 / 87178291200.0))
                )
            )
        )
    )
    a = 1.0 * (q == 0) - 1.0 * (q == 2)
    b = 1.0 * (q == 3) - 1.0 * (q == 1)
    rho = np.sqrt((1.0 - z) * (1.0 + z))
    return rho * (a * c + b * s), rho * (a * s - b * c), z


@njit(cache=True)
def _rewrap(w: int, sg: int, d: int, n: int, mode: int) -> tuple[int, int]:
    """Wrapped index and image orientation after an unwrapped move by ``d`` = ±1."""
    w += sg * d
    if w >= n:
        if mode == MIRROR:
            w = n - 1
            sg = -sg
        else:
            w = 0
    elif w < 0:
        if mode == MIRROR:
            w = 0
            sg = -sg
        else:
            w = n - 1
    return w, sg


@njit(cache=True)
def _shift(w: int, sg: int, d: int, n: int, mode: int) -> tuple[int, int]:
    """Stored index and image orientation after an unwrapped move by ``d`` cells.

    Like :func:`_rewrap` for any ``d``: the loop folds the index back into the image
    (at most once unless ``|d|`` exceeds the image size) without an integer division.
    """
    w += sg * d
    while w >= n or w < 0:
        if mode == MIRROR:
            w = 2 * n - 1 - w if w >= n else -1 - w
            sg = -sg
        else:
            w = w - n if w >= n else w + n
    return w, sg


@njit(cache=True, error_model="numpy")
def _tface(f: float, r: float) -> float:
    """Fraction of the remaining move ``r`` at which the cell face is reached."""
    if r > 0.0:
        return (1.0 - f) / r
    if r < 0.0:
        return -f / r
    return np.inf


@njit(cache=True)
def _clamp(x: float) -> float:
    return min(max(x, 0.0), 1.0)


@njit(cache=True)
def _face(
    grid: np.ndarray,
    base: int,
    st: int,
    n: int,
    mode: int,
    c: int,
    f: float,
    r: float,
    w: int,
    sg: int,
) -> tuple[int, int, float, float, int, int]:
    """Handle a walker standing on a face of its cell along one axis.

    Crosses into the neighbour when it is walkable, else reflects specularly
    (reverses the normal component of the remaining move). Returns the new
    ``(base, c, f, r, w, sg)``.
    """
    d = 1 if r > 0.0 else -1
    if grid[base + sg * d * st] & 1:
        w2, sg = _rewrap(w, sg, d, n, mode)
        base += (w2 - w) * st
        return base, c + d, 0.0 if d > 0 else 1.0, r, w2, sg
    return base, c, 1.0 if d > 0 else 0.0, -r, w, sg


@njit(cache=True)
def place(
    grid: np.ndarray,
    shape: np.ndarray,
    strides: np.ndarray,
    rng: np.ndarray,
    cell: np.ndarray,
    frac: np.ndarray,
    wrap: np.ndarray,
    sign: np.ndarray,
    start: np.ndarray,
    max_tries: int,
) -> int:
    """Release every walker uniformly in the voxels flagged with bit 1.

    Rejection sampling in the box: a uniform point is drawn until its voxel carries
    the release flag. Returns the number of walkers that could not be placed within
    ``max_tries`` draws (0 on success).
    """
    failed = 0
    for wk in range(rng.shape[0]):
        s0 = rng[wk, 0]
        s1 = rng[wk, 1]
        placed = False
        for _ in range(max_tries):
            flat = 0
            for a in range(3):
                u, s0, s1 = _uniform(s0, s1)
                x = u * shape[a]
                i = min(int(x), shape[a] - 1)
                cell[wk, a] = i
                wrap[wk, a] = i
                frac[wk, a] = x - i
                flat += (i + 1) * strides[a]
            if grid[flat] & 2:
                placed = True
                break
        if not placed:
            failed += 1
        for a in range(3):
            sign[wk, a] = 1
            start[wk, a] = cell[wk, a] + frac[wk, a]
        rng[wk, 0] = s0
        rng[wk, 1] = s1
    return failed


@njit(cache=True, parallel=True, fastmath={"contract"}, error_model="numpy")
def advance(
    grid: np.ndarray,
    shape: np.ndarray,
    strides: np.ndarray,
    mode: int,
    step: np.ndarray,
    n_steps: int,
    stride: int,
    chunk_lo: np.ndarray,
    rng: np.ndarray,
    cell: np.ndarray,
    frac: np.ndarray,
    wrap: np.ndarray,
    sign: np.ndarray,
    start: np.ndarray,
    sums: np.ndarray,
    tracks: np.ndarray,
) -> None:
    """Advance every walker by ``n_steps`` steps, recording every ``stride`` steps.

    Parameters
    ----------
    grid : uint8 array
        Flattened padded image (bit 0 walkable, bit 1 release).
    shape : int64 array (3,)
        Image shape (unpadded).
    strides : int64 array (3,)
        Element strides of the padded array.
    mode : int
        ``MIRROR`` or ``PERIODIC``.
    step : float64 array (3,)
        Step length along each axis in voxels of that axis (the move is
        ``step * u`` for a unit vector ``u``).
    n_steps, stride : int
        With ``n_steps % stride == 0``.
    chunk_lo : int64 array (n_chunks + 1,)
        Walker ranges of the chunks (one chunk is one task of the parallel loop).
    rng, cell, frac, wrap, sign, start : arrays
        Per-walker state, updated in place.
    sums : float64 array (n_chunks, n_steps // stride, 3)
        Receives, per chunk, the sum over its walkers of the squared unwrapped
        displacement per axis (voxels²) at each record.
    tracks : float64 array (n_tracked, n_steps // stride, 3)
        Receives the unwrapped positions of the first ``n_tracked`` walkers.
    """
    n_chunks = chunk_lo.shape[0] - 1
    n_tracked = tracks.shape[0]
    fast = step[0] <= 1.0 and step[1] <= 1.0 and step[2] <= 1.0
    st0 = strides[0]
    st1 = strides[1]
    st2 = strides[2]
    n0 = shape[0]
    n1 = shape[1]
    n2 = shape[2]
    l0 = step[0]
    l1 = step[1]
    l2 = step[2]
    for ch in prange(n_chunks):
        ubuf = np.empty(_BUFFER, np.uint64)
        rbuf = np.empty((3, _BUFFER), np.float64)
        for wk in range(chunk_lo[ch], chunk_lo[ch + 1]):
            s0 = rng[wk, 0]
            s1 = rng[wk, 1]
            c0 = cell[wk, 0]
            c1 = cell[wk, 1]
            c2 = cell[wk, 2]
            f0 = frac[wk, 0]
            f1 = frac[wk, 1]
            f2 = frac[wk, 2]
            w0 = wrap[wk, 0]
            w1 = wrap[wk, 1]
            w2 = wrap[wk, 2]
            g0 = sign[wk, 0]
            g1 = sign[wk, 1]
            g2 = sign[wk, 2]
            base = (w0 + 1) * st0 + (w1 + 1) * st1 + (w2 + 1) * st2
            m = grid[base] >> 2
            left = stride
            j = 0
            bi = _BUFFER
            for _ in range(n_steps):
                if bi == _BUFFER:
                    # draw the next directions in bulk: one 64-bit number per step
                    for i in range(_BUFFER):
                        u, s0, s1 = next_u64(s0, s1)
                        ubuf[i] = u
                    for i in range(_BUFFER):
                        d0, d1, d2 = direction(ubuf[i])
                        rbuf[0, i] = l0 * d0
                        rbuf[1, i] = l1 * d1
                        rbuf[2, i] = l2 * d2
                    bi = 0
                r0 = rbuf[0, bi]
                r1 = rbuf[1, bi]
                r2 = rbuf[2, bi]
                bi += 1
                done = False
                if m > 0:
                    # free flight: the walker's anchor cell has ``m`` layers of walkable
                    # voxels around it, so any move that stays in that cube is unobstructed
                    lo = -float(m)
                    hi = m + 1.0
                    e0 = f0 + r0
                    e1 = f1 + r1
                    e2 = f2 + r2
                    if (e0 >= lo) & (e0 < hi) & (e1 >= lo) & (e1 < hi) & (e2 >= lo) & (e2 < hi):
                        f0 = e0
                        f1 = e1
                        f2 = e2
                        done = True
                    else:
                        # leaving the cube: re-anchor at the cell the walker is in
                        k0 = int(np.floor(f0))
                        k1 = int(np.floor(f1))
                        k2 = int(np.floor(f2))
                        if (k0 | k1 | k2) != 0:
                            c0 += k0
                            c1 += k1
                            c2 += k2
                            f0 -= k0
                            f1 -= k1
                            f2 -= k2
                            w0, g0 = _shift(w0, g0, k0, n0, mode)
                            w1, g1 = _shift(w1, g1, k1, n1, mode)
                            w2, g2 = _shift(w2, g2, k2, n2, mode)
                            base = (w0 + 1) * st0 + (w1 + 1) * st1 + (w2 + 1) * st2
                            m = grid[base] >> 2
                            if m > 0:
                                lo = -float(m)
                                hi = m + 1.0
                                e0 = f0 + r0
                                e1 = f1 + r1
                                e2 = f2 + r2
                                if (
                                    (e0 >= lo)
                                    & (e0 < hi)
                                    & (e1 >= lo)
                                    & (e1 < hi)
                                    & (e2 >= lo)
                                    & (e2 < hi)
                                ):
                                    f0 = e0
                                    f1 = e1
                                    f2 = e2
                                    done = True
                flown = done
                if not done and fast:
                    # fast path, branch-free: accept the move when every cell of the box
                    # it spans is walkable (offsets of 0 look at the walker's own cell)
                    e0 = f0 + r0
                    e1 = f1 + r1
                    e2 = f2 + r2
                    k0 = int(e0 >= 1.0) - int(e0 < 0.0)
                    k1 = int(e1 >= 1.0) - int(e1 < 0.0)
                    k2 = int(e2 >= 1.0) - int(e2 < 0.0)
                    o0 = g0 * k0 * st0
                    o1 = g1 * k1 * st1
                    o2 = g2 * k2 * st2
                    ok = (
                        grid[base + o0]
                        & grid[base + o1]
                        & grid[base + o2]
                        & grid[base + o0 + o1]
                        & grid[base + o0 + o2]
                        & grid[base + o1 + o2]
                        & grid[base + o0 + o1 + o2]
                        & 1
                    )
                    if ok:
                        f0 = e0 - k0
                        f1 = e1 - k1
                        f2 = e2 - k2
                        c0 += k0
                        c1 += k1
                        c2 += k2
                        v0, g0 = _rewrap(w0, g0, k0, n0, mode)
                        v1, g1 = _rewrap(w1, g1, k1, n1, mode)
                        v2, g2 = _rewrap(w2, g2, k2, n2, mode)
                        base += (v0 - w0) * st0 + (v1 - w1) * st1 + (v2 - w2) * st2
                        w0 = v0
                        w1 = v1
                        w2 = v2
                        done = True
                if not done:
                    # exact path: take the face crossings in order; specular reflection
                    while True:
                        t0 = _tface(f0, r0)
                        t1 = _tface(f1, r1)
                        t2 = _tface(f2, r2)
                        if t0 <= t1 and t0 <= t2:
                            k = 0
                            tm = t0
                        elif t1 <= t2:
                            k = 1
                            tm = t1
                        else:
                            k = 2
                            tm = t2
                        if tm >= 1.0:
                            f0 = _clamp(f0 + r0)
                            f1 = _clamp(f1 + r1)
                            f2 = _clamp(f2 + r2)
                            break
                        tm = max(tm, 0.0)
                        f0 = _clamp(f0 + tm * r0)
                        f1 = _clamp(f1 + tm * r1)
                        f2 = _clamp(f2 + tm * r2)
                        rem = 1.0 - tm
                        r0 *= rem
                        r1 *= rem
                        r2 *= rem
                        if k == 0:
                            base, c0, f0, r0, w0, g0 = _face(
                                grid, base, st0, n0, mode, c0, f0, r0, w0, g0
                            )
                        elif k == 1:
                            base, c1, f1, r1, w1, g1 = _face(
                                grid, base, st1, n1, mode, c1, f1, r1, w1, g1
                            )
                        else:
                            base, c2, f2, r2, w2, g2 = _face(
                                grid, base, st2, n2, mode, c2, f2, r2, w2, g2
                            )
                if not flown:
                    m = grid[base] >> 2
                left -= 1
                if left == 0:
                    left = stride
                    x0 = c0 + f0
                    x1 = c1 + f1
                    x2 = c2 + f2
                    dx = x0 - start[wk, 0]
                    dy = x1 - start[wk, 1]
                    dz = x2 - start[wk, 2]
                    sums[ch, j, 0] += dx * dx
                    sums[ch, j, 1] += dy * dy
                    sums[ch, j, 2] += dz * dz
                    if wk < n_tracked:
                        tracks[wk, j, 0] = x0
                        tracks[wk, j, 1] = x1
                        tracks[wk, j, 2] = x2
                    j += 1
            rng[wk, 0] = s0
            rng[wk, 1] = s1
            cell[wk, 0] = c0
            cell[wk, 1] = c1
            cell[wk, 2] = c2
            frac[wk, 0] = f0
            frac[wk, 1] = f1
            frac[wk, 2] = f2
            wrap[wk, 0] = w0
            wrap[wk, 1] = w1
            wrap[wk, 2] = w2
            sign[wk, 0] = g0
            sign[wk, 1] = g1
            sign[wk, 2] = g2
