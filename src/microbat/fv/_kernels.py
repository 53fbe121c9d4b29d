"""Numba kernels of the structured finite-volume operator and its multigrid.

Private module, imported lazily (it compiles on first use and caches the machine
code next to this file). Every kernel works on C-ordered 3D arrays of one shape
``(n0, n1, n2)``:

* ``ground[i, j, k]`` — the part of the diagonal that is not a face to a
  neighbour (a Dirichlet face, a reaction term, a grounding pin); the full
  diagonal is ``ground + sum of the six face conductances``. A voxel whose
  diagonal is 0 is not an unknown: kernels leave it alone (callers mask it).
* ``g0[i, j, k]`` — conductance of the face between voxel ``(i, j, k)`` and
  ``((i + 1) % n0, j, k)``; likewise ``g1`` along axis 1 and ``g2`` along axis 2.
  On a non-periodic axis the last layer holds zeros, so the modular neighbour
  index never couples the two ends. A conductance array is either floating
  point (the value itself) or ``uint8`` (a code looked up in ``l0``/``l1``/``l2``,
  which stores few-phase problems in a quarter of the memory and bandwidth).

The operator is applied in flux form, ``(A u)_p = ground_p u_p + sum_q g_pq (u_p -
u_q)`` over the six face neighbours ``q``, so a uniform field has exactly zero
interior residual whatever the rounding of the conductances (storing the summed
diagonal instead leaks in single precision). Reductions accumulate in float64
whatever the array dtype. Parallel loops run over planes of axis 0.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba import types
from numba.extending import overload

from microbat.core.threads import prepare_numba

prepare_numba()  # pool threads sleep, not spin, while they wait (core.threads)

_OPTS = {"cache": True, "nogil": True, "error_model": "numpy"}
_FAST = {"cache": True, "nogil": True, "error_model": "numpy", "fastmath": True}


def _g(garr, lut, i, j, k):  # pragma: no cover - replaced by the overload
    raise NotImplementedError


@overload(_g, inline="always")
def _g_impl(garr, lut, i, j, k):  # pragma: no cover - compiled
    if isinstance(garr.dtype, types.Integer):
        return lambda garr, lut, i, j, k: lut[garr[i, j, k]]
    return lambda garr, lut, i, j, k: garr[i, j, k]


@nb.njit(**_OPTS)
def _au(e, g0, g1, g2, l0, l1, l2, x, i, im, ip, j, jm, jp, k, km, kp):  # pragma: no cover
    xp = x[i, j, k]
    return (
        e[i, j, k] * xp
        + _g(g0, l0, i, j, k) * (xp - x[ip, j, k])
        + _g(g0, l0, im, j, k) * (xp - x[im, j, k])
        + _g(g1, l1, i, j, k) * (xp - x[i, jp, k])
        + _g(g1, l1, i, jm, k) * (xp - x[i, jm, k])
        + _g(g2, l2, i, j, k) * (xp - x[i, j, kp])
        + _g(g2, l2, i, j, km) * (xp - x[i, j, km])
    )


@nb.njit(**_OPTS)
def _gs(e, g0, g1, g2, l0, l1, l2, f, x, i, im, ip, j, jm, jp, k, km, kp):  # pragma: no cover
    """Gauss–Seidel value ``(f + sum g u_q) / (ground + sum g)`` (0 where the diagonal is 0)."""
    a0 = _g(g0, l0, i, j, k)
    a1 = _g(g0, l0, im, j, k)
    a2 = _g(g1, l1, i, j, k)
    a3 = _g(g1, l1, i, jm, k)
    a4 = _g(g2, l2, i, j, k)
    a5 = _g(g2, l2, i, j, km)
    d = e[i, j, k] + a0 + a1 + a2 + a3 + a4 + a5
    s = (
        f[i, j, k]
        + a0 * x[ip, j, k]
        + a1 * x[im, j, k]
        + a2 * x[i, jp, k]
        + a3 * x[i, jm, k]
        + a4 * x[i, j, kp]
        + a5 * x[i, j, km]
    )
    # an inactive voxel has d = 0 and s = 0: divide by 1 and keep 0
    return s / (d + (d == 0))


@nb.njit(**_FAST)
def _row_au(e, g0, g1, g2, l0, l1, l2, x, i, im, ip, j, jm, jp, out):  # pragma: no cover
    """out[k] = (A x)[i, j, k] for the whole row (interior loop free of branches)."""
    n2 = x.shape[2]
    out[0] = _au(e, g0, g1, g2, l0, l1, l2, x, i, im, ip, j, jm, jp, 0, n2 - 1, min(1, n2 - 1))
    for k in range(1, n2 - 1):
        out[k] = _au(e, g0, g1, g2, l0, l1, l2, x, i, im, ip, j, jm, jp, k, k - 1, k + 1)
    if n2 > 1:
        out[n2 - 1] = _au(e, g0, g1, g2, l0, l1, l2, x, i, im, ip, j, jm, jp, n2 - 1, n2 - 2, 0)


@nb.njit(parallel=True, **_FAST)
def apply(e, g0, g1, g2, l0, l1, l2, x, y):  # pragma: no cover - compiled
    """Compute y = A x."""
    n0, n1, _ = x.shape
    for i in nb.prange(n0):
        im = i - 1 if i > 0 else n0 - 1
        ip = i + 1 if i < n0 - 1 else 0
        for j in range(n1):
            jm = j - 1 if j > 0 else n1 - 1
            jp = j + 1 if j < n1 - 1 else 0
            _row_au(e, g0, g1, g2, l0, l1, l2, x, i, im, ip, j, jm, jp, y[i, j])


@nb.njit(parallel=True, **_FAST)
def residual(e, g0, g1, g2, l0, l1, l2, x, b, r):  # pragma: no cover - compiled
    """Compute r = b - A x with the product formed in float64; returns sum r**2."""
    n0, n1, n2 = x.shape
    s2 = np.zeros(n0)
    for i in nb.prange(n0):
        im = i - 1 if i > 0 else n0 - 1
        ip = i + 1 if i < n0 - 1 else 0
        a2 = 0.0
        for j in range(n1):
            jm = j - 1 if j > 0 else n1 - 1
            jp = j + 1 if j < n1 - 1 else 0
            for k in range(n2):
                km = k - 1 if k > 0 else n2 - 1
                kp = k + 1 if k < n2 - 1 else 0
                xp = np.float64(x[i, j, k])
                v = np.float64(b[i, j, k]) - (
                    np.float64(e[i, j, k]) * xp
                    + np.float64(_g(g0, l0, i, j, k)) * (xp - np.float64(x[ip, j, k]))
                    + np.float64(_g(g0, l0, im, j, k)) * (xp - np.float64(x[im, j, k]))
                    + np.float64(_g(g1, l1, i, j, k)) * (xp - np.float64(x[i, jp, k]))
                    + np.float64(_g(g1, l1, i, jm, k)) * (xp - np.float64(x[i, jm, k]))
                    + np.float64(_g(g2, l2, i, j, k)) * (xp - np.float64(x[i, j, kp]))
                    + np.float64(_g(g2, l2, i, j, km)) * (xp - np.float64(x[i, j, km]))
                )
                r[i, j, k] = v
                a2 += v * v
        s2[i] = a2
    return s2.sum()


@nb.njit(**_FAST)
def _rb_plane(e, g0, g1, g2, l0, l1, l2, f, u, i, color):  # pragma: no cover
    n0, n1, n2 = u.shape
    im = i - 1 if i > 0 else n0 - 1
    ip = i + 1 if i < n0 - 1 else 0
    for j in range(n1):
        jm = j - 1 if j > 0 else n1 - 1
        jp = j + 1 if j < n1 - 1 else 0
        k0 = (i + j + color) & 1
        start = k0 if k0 == 1 else 2
        for k in range(start, n2 - 1, 2):
            u[i, j, k] = _gs(e, g0, g1, g2, l0, l1, l2, f, u, i, im, ip, j, jm, jp, k, k - 1, k + 1)
        for kb in range(2 if n2 > 1 else 1):
            k = 0 if kb == 0 else n2 - 1
            if (k & 1) != k0:
                continue
            km = k - 1 if k > 0 else n2 - 1
            kp = k + 1 if k < n2 - 1 else 0
            u[i, j, k] = _gs(e, g0, g1, g2, l0, l1, l2, f, u, i, im, ip, j, jm, jp, k, km, kp)


@nb.njit(parallel=True, **_OPTS)
def rb_sweep(e, g0, g1, g2, l0, l1, l2, f, u, color, seam):  # pragma: no cover
    """One colour of a red-black Gauss–Seidel sweep (in place on ``u``).

    ``seam`` is true when axis 0 is periodic with an odd length: planes 0 and
    n0-1 then share a colour across the seam, so the last plane is updated after
    the others (deterministic, no race).
    """
    n0 = u.shape[0]
    last = n0 - 1 if seam else n0
    for i in nb.prange(last):
        _rb_plane(e, g0, g1, g2, l0, l1, l2, f, u, i, color)
    if seam:
        _rb_plane(e, g0, g1, g2, l0, l1, l2, f, u, n0 - 1, color)


@nb.njit(parallel=True, **_OPTS)
def rb_fused(e, g0, g1, g2, l0, l1, l2, f, u, first, nchunks):  # pragma: no cover
    """A full red-black sweep (colour ``first``, then the other) in one pass.

    Axis 0 is cut into ``nchunks`` slabs of at least three planes. Within a slab
    the second colour of plane ``p - 1`` follows the first colour of plane ``p``
    (a wavefront, so each plane is read once while it is in cache); the second
    colour of the first and last plane of each slab waits for a second parallel
    pass. The result equals two separate colour sweeps exactly. Not for a
    periodic axis 0 of odd length (use :func:`rb_sweep`).
    """
    n0 = u.shape[0]
    second = 1 - first
    for c in nb.prange(nchunks):
        a = c * n0 // nchunks
        b = (c + 1) * n0 // nchunks
        for p in range(a, b):
            _rb_plane(e, g0, g1, g2, l0, l1, l2, f, u, p, first)
            if p - 1 > a:
                _rb_plane(e, g0, g1, g2, l0, l1, l2, f, u, p - 1, second)
    for c in nb.prange(nchunks):
        a = c * n0 // nchunks
        b = (c + 1) * n0 // nchunks
        _rb_plane(e, g0, g1, g2, l0, l1, l2, f, u, a, second)
        if b - 1 > a:
            _rb_plane(e, g0, g1, g2, l0, l1, l2, f, u, b - 1, second)


@nb.njit(parallel=True, **_FAST)
def restrict_residual(e, g0, g1, g2, l0, l1, l2, f, u, fc, f0, f1, f2):  # pragma: no cover
    """fc[I, J, K] = sum over the children of (f - A u) (piecewise-constant R).

    Inactive voxels contribute nothing: there ``f``, the ground term and every
    conductance are zero.
    """
    n0, n1, n2 = u.shape
    c0, c1, c2 = fc.shape
    for ic in nb.prange(c0):
        row = np.empty(n2, u.dtype)
        for jc in range(c1):
            for kc in range(c2):
                fc[ic, jc, kc] = 0.0
        for i in range(ic * f0, min(ic * f0 + f0, n0)):
            im = i - 1 if i > 0 else n0 - 1
            ip = i + 1 if i < n0 - 1 else 0
            for j in range(n1):
                jm = j - 1 if j > 0 else n1 - 1
                jp = j + 1 if j < n1 - 1 else 0
                jc = j // f1
                _row_au(e, g0, g1, g2, l0, l1, l2, u, i, im, ip, j, jm, jp, row)
                fr = f[i, j]
                out = fc[ic, jc]
                if f2 == 2:
                    for kc in range(n2 // 2):
                        out[kc] += (fr[2 * kc] - row[2 * kc]) + (fr[2 * kc + 1] - row[2 * kc + 1])
                    if n2 & 1:
                        out[c2 - 1] += fr[n2 - 1] - row[n2 - 1]
                else:
                    for k in range(n2):
                        out[k] += fr[k] - row[k]


@nb.njit(parallel=True, **_FAST)
def prolong_add(u, uc, alpha, f0, f1, f2):  # pragma: no cover - compiled
    """Add the coarse correction: u += alpha * P uc (piecewise-constant P).

    Values left on inactive voxels are harmless (no face or ground term couples
    them) and are cleared by the next smoothing sweep and by the caller.
    """
    n0, n1, n2 = u.shape
    for i in nb.prange(n0):
        ic = i // f0
        for j in range(n1):
            jc = j // f1
            ur = u[i, j]
            cr = uc[ic, jc]
            if f2 == 2:
                for k in range(n2):
                    ur[k] += alpha * cr[k >> 1]
            else:
                for k in range(n2):
                    ur[k] += alpha * cr[k]


@nb.njit(**_OPTS)
def coarsen(e, g0, g1, g2, l0, l1, l2, ec, h0, h1, h2, f0, f1, f2):  # pragma: no cover
    """Galerkin product R A P for piecewise-constant aggregation of f0 x f1 x f2 blocks.

    In flux form the product is exact without cancellation: ground terms add up,
    a face between two blocks adds to the coarse face, and a face inside a block
    drops out.
    """
    n0, n1, n2 = e.shape
    c0, c1, c2 = ec.shape
    for ic in range(c0):  # setup only: serial (compiles faster, runs once per level)
        for jc in range(c1):
            for kc in range(c2):
                ec[ic, jc, kc] = 0.0
                h0[ic, jc, kc] = 0.0
                h1[ic, jc, kc] = 0.0
                h2[ic, jc, kc] = 0.0
        for i in range(ic * f0, min(ic * f0 + f0, n0)):
            int0 = f0 == 2 and (i & 1) == 0 and i + 1 < n0
            for j in range(n1):
                jc = j // f1
                int1 = f1 == 2 and (j & 1) == 0 and j + 1 < n1
                for k in range(n2):
                    kc = k // f2
                    int2 = f2 == 2 and (k & 1) == 0 and k + 1 < n2
                    ec[ic, jc, kc] += e[i, j, k]
                    if not int0:
                        h0[ic, jc, kc] += _g(g0, l0, i, j, k)
                    if not int1:
                        h1[ic, jc, kc] += _g(g1, l1, i, j, k)
                    if not int2:
                        h2[ic, jc, kc] += _g(g2, l2, i, j, k)


@nb.njit(parallel=True, **_FAST)
def dot(a, b):  # pragma: no cover - compiled
    """Sum of a*b in float64."""
    n0, n1, n2 = a.shape
    s = np.zeros(n0)
    for i in nb.prange(n0):
        acc = 0.0
        for j in range(n1):
            for k in range(n2):
                acc += np.float64(a[i, j, k]) * np.float64(b[i, j, k])
        s[i] = acc
    return s.sum()


@nb.njit(parallel=True, **_FAST)
def cg_update(x, r, p, q, alpha, axis, layers):  # pragma: no cover - compiled
    """Update x += alpha p and r -= alpha q; returns sum r**2 (float64).

    When ``axis >= 0``, ``layers[i, m]`` receives the sum of the new ``r`` over the
    voxels of plane ``i`` (axis 0) whose index along ``axis`` is ``m``.
    """
    n0, n1, n2 = x.shape
    s2 = np.zeros(n0)
    for i in nb.prange(n0):
        a2 = 0.0
        for j in range(n1):
            for k in range(n2):
                x[i, j, k] += alpha * p[i, j, k]
                v = r[i, j, k] - alpha * q[i, j, k]
                r[i, j, k] = v
                a2 += np.float64(v) * np.float64(v)
        s2[i] = a2
        if axis == 0:
            acc = 0.0
            for j in range(n1):
                for k in range(n2):
                    acc += np.float64(r[i, j, k])
            layers[i, i] += acc
        elif axis == 1:
            for j in range(n1):
                acc = 0.0
                for k in range(n2):
                    acc += np.float64(r[i, j, k])
                layers[i, j] += acc
        elif axis == 2:
            for j in range(n1):
                for k in range(n2):
                    layers[i, k] += r[i, j, k]
    return s2.sum()
