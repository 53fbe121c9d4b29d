"""Deconvolution-aware label refinement (private; imported inside functions).

Energy of a labelling ``L`` of an image ``y`` blurred by a Gaussian PSF ``G``::

    E(L) = ||y - G * mu[L]||^2 / (2 s^2) + beta * #{6-neighbour pairs with different labels}

Changing voxel ``v`` from ``a`` to ``b`` (``d = mu_b - mu_a``) changes the data term
by ``(d^2 ||G||^2 - 2 d (G * r)(v)) / (2 s^2)`` with ``r = y - G * mu[L]`` the current
residual, so iterated conditional modes needs ``(G * r)(v)`` at the visited voxel
only and, after a change, updates ``r -= d G(. - v)`` locally (Gauss-Seidel).

Parallel: slabs along axis 0 at least ``2 R + 2`` planes thick (``R`` the kernel
radius); even slabs run together, then odd ones, so no two threads read or write
the same residual voxel. A voxel is revisited only when the residual or a label
within ``R`` of it changed (an exact active set), so later sweeps are cheap.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from microbat.core.threads import prepare_numba

prepare_numba()  # pool threads sleep, not spin, while they wait (core.threads)


@njit(cache=True, fastmath=True, nogil=True)
def _slab(r, lab, mu, ker, inv2s2, beta, g0, z0, z1, dirty):
    n0, n1, n2 = lab.shape
    r0 = ker.shape[0] // 2
    r1 = ker.shape[1] // 2
    r2 = ker.shape[2] // 2
    k_cls = mu.shape[0]
    changed = 0
    cnt = np.zeros(k_cls)
    for i in range(z0, z1):
        for j in range(n1):
            for k in range(n2):
                if dirty[i, j, k] == 0:
                    continue
                dirty[i, j, k] = 0
                a = lab[i, j, k]
                ia = max(0, i - r0)
                ib = min(n0, i + r0 + 1)
                ja = max(0, j - r1)
                jb = min(n1, j + r1 + 1)
                ka = max(0, k - r2)
                kb = min(n2, k + r2 + 1)
                c = 0.0
                for ii in range(ia, ib):
                    for jj in range(ja, jb):
                        for kk in range(ka, kb):
                            c += ker[ii - i + r0, jj - j + r1, kk - k + r2] * r[ii, jj, kk]
                for b in range(k_cls):
                    cnt[b] = 0.0
                if i > 0:
                    cnt[lab[i - 1, j, k]] += 1.0
                if i < n0 - 1:
                    cnt[lab[i + 1, j, k]] += 1.0
                if j > 0:
                    cnt[lab[i, j - 1, k]] += 1.0
                if j < n1 - 1:
                    cnt[lab[i, j + 1, k]] += 1.0
                if k > 0:
                    cnt[lab[i, j, k - 1]] += 1.0
                if k < n2 - 1:
                    cnt[lab[i, j, k + 1]] += 1.0
                best = a
                best_e = 0.0
                for b in range(k_cls):
                    if b == a:
                        continue
                    d = mu[b] - mu[a]
                    e = (d * d * g0 - 2.0 * d * c) * inv2s2 + beta * (cnt[a] - cnt[b])
                    if e < best_e:
                        best_e = e
                        best = b
                if best != a:
                    d = mu[best] - mu[a]
                    lab[i, j, k] = best
                    changed += 1
                    for ii in range(ia, ib):
                        for jj in range(ja, jb):
                            for kk in range(ka, kb):
                                r[ii, jj, kk] -= d * ker[ii - i + r0, jj - j + r1, kk - k + r2]
                                dirty[ii, jj, kk] = 1
    return changed


@njit(cache=True, parallel=True)
def sweep(r, lab, mu, ker, inv2s2, beta, g0, dirty):
    """One Gauss-Seidel ICM sweep over the dirty voxels; returns the changes."""
    n0 = lab.shape[0]
    slab = 2 * (ker.shape[0] // 2) + 2
    nslab = (n0 + slab - 1) // slab
    total = 0
    for phase in range(2):
        res = np.zeros(nslab, np.int64)
        for s in prange((nslab - phase + 1) // 2):
            si = 2 * s + phase
            res[si] = _slab(
                r, lab, mu, ker, inv2s2, beta, g0, si * slab, min(n0, (si + 1) * slab), dirty
            )
        total += res.sum()
    return total


@njit(cache=True, parallel=True, fastmath=True)
def uncertainty(c, lab, mu, inv2s2, beta, g0):
    """``1 - max_b p(b | rest)`` per voxel from the local energy changes.

    ``c = G * r`` is the blurred residual at every voxel.
    """
    n0, n1, n2 = lab.shape
    k_cls = mu.shape[0]
    out = np.empty((n0, n1, n2), np.float32)
    for i in prange(n0):
        cnt = np.zeros(k_cls)
        e = np.zeros(k_cls)
        for j in range(n1):
            for k in range(n2):
                for b in range(k_cls):
                    cnt[b] = 0.0
                if i > 0:
                    cnt[lab[i - 1, j, k]] += 1.0
                if i < n0 - 1:
                    cnt[lab[i + 1, j, k]] += 1.0
                if j > 0:
                    cnt[lab[i, j - 1, k]] += 1.0
                if j < n1 - 1:
                    cnt[lab[i, j + 1, k]] += 1.0
                if k > 0:
                    cnt[lab[i, j, k - 1]] += 1.0
                if k < n2 - 1:
                    cnt[lab[i, j, k + 1]] += 1.0
                a = lab[i, j, k]
                emin = 0.0
                for b in range(k_cls):
                    d = mu[b] - mu[a]
                    e[b] = (d * d * g0 - 2.0 * d * c[i, j, k]) * inv2s2 + beta * (cnt[a] - cnt[b])
                    emin = min(emin, e[b])
                s = 0.0
                for b in range(k_cls):
                    s += np.exp(emin - e[b])
                out[i, j, k] = 1.0 - np.exp(emin - e[a]) / s
    return out


def gaussian_kernel(sigma: tuple[float, float, float]) -> np.ndarray:
    """Normalised separable 3D Gaussian kernel truncated at 3 sigma per axis.

    An axis with sigma 0 gets a kernel of length 1 (no blur along it).
    """
    parts = []
    for s in sigma:
        if s <= 0:
            parts.append(np.ones(1))
            continue
        rad = max(1, int(np.ceil(3.0 * s)))
        x = np.arange(-rad, rad + 1, dtype=float)
        g = np.exp(-0.5 * (x / s) ** 2)
        parts.append(g / g.sum())
    g0, g1, g2 = parts
    return np.ascontiguousarray(g0[:, None, None] * g1[None, :, None] * g2[None, None, :])
