"""Numba kernels of the segmentation (private; imported inside functions).

* :func:`bin_index` -- quantise an image into histogram bins (uint16) and count them.
* :func:`classify_lut` -- label and uncertainty of every voxel from per-bin tables.
* :func:`icm_sweep` -- one red-black sweep of iterated conditional modes on a Potts
  prior (6-neighbourhood), parallel over planes.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from microbat.core.threads import prepare_numba

prepare_numba()  # pool threads sleep, not spin, while they wait (core.threads)


@njit(cache=True, parallel=True, fastmath=True)
def bin_index(flat, lo, scale, nbins):
    """Bin index ``floor((x - lo) * scale)`` clipped to ``[0, nbins)`` and counts."""
    n = flat.shape[0]
    out = np.empty(n, np.uint16)
    nchunk = 64
    step = (n + nchunk - 1) // nchunk
    counts = np.zeros((nchunk, nbins), np.int64)
    for c in prange(nchunk):
        a = c * step
        b = min(n, a + step)
        for i in range(a, b):
            v = (flat[i] - lo) * scale
            k = int(v) if v > 0 else 0
            if k >= nbins:
                k = nbins - 1
            out[i] = k
            counts[c, k] += 1
    total = np.zeros(nbins, np.int64)
    for c in range(nchunk):
        for k in range(nbins):
            total[k] += counts[c, k]
    return out, total


@njit(cache=True, parallel=True)
def classify_lut(bins, label_lut, unc_lut):
    """Per-voxel label and uncertainty read from per-bin tables."""
    n = bins.shape[0]
    lab = np.empty(n, np.uint8)
    unc = np.empty(n, np.float32)
    for i in prange(n):
        b = bins[i]
        lab[i] = label_lut[b]
        unc[i] = unc_lut[b]
    return lab, unc


@njit(cache=True, parallel=True, fastmath=True)
def icm_sweep(bins, labels, unary, beta, color, dirty):
    """Update the dirty voxels with ``(i + j + k) % 2 == color`` to their conditional mode.

    ``unary[a, b]`` is ``-log(w_a f_a(y))`` for bin ``b``; the Potts energy adds
    ``beta`` per 6-neighbour with another label. Voxels of one colour only have
    neighbours of the other, so the update is race-free and each half-sweep cannot
    increase the energy. A visited voxel is cleared from ``dirty``; a change marks
    its 6 neighbours (of the other colour) dirty. Returns the number of changes.
    """
    n0, n1, n2 = labels.shape
    k_cls = unary.shape[0]
    changed = np.zeros(n0, np.int64)
    for i in prange(n0):
        cnt = np.zeros(k_cls, np.float32)
        for j in range(n1):
            k0 = (color + i + j) % 2
            for k in range(k0, n2, 2):
                if dirty[i, j, k] == 0:
                    continue
                dirty[i, j, k] = 0
                for a in range(k_cls):
                    cnt[a] = 0.0
                nn = 0
                if i > 0:
                    cnt[labels[i - 1, j, k]] += 1.0
                    nn += 1
                if i < n0 - 1:
                    cnt[labels[i + 1, j, k]] += 1.0
                    nn += 1
                if j > 0:
                    cnt[labels[i, j - 1, k]] += 1.0
                    nn += 1
                if j < n1 - 1:
                    cnt[labels[i, j + 1, k]] += 1.0
                    nn += 1
                if k > 0:
                    cnt[labels[i, j, k - 1]] += 1.0
                    nn += 1
                if k < n2 - 1:
                    cnt[labels[i, j, k + 1]] += 1.0
                    nn += 1
                b = bins[i, j, k]
                best = 0
                best_e = np.float32(np.inf)
                for a in range(k_cls):
                    e = unary[a, b] + beta * (nn - cnt[a])
                    if e < best_e:
                        best_e = e
                        best = a
                if best != labels[i, j, k]:
                    labels[i, j, k] = best
                    changed[i] += 1
                    if i > 0:
                        dirty[i - 1, j, k] = 1
                    if i < n0 - 1:
                        dirty[i + 1, j, k] = 1
                    if j > 0:
                        dirty[i, j - 1, k] = 1
                    if j < n1 - 1:
                        dirty[i, j + 1, k] = 1
                    if k > 0:
                        dirty[i, j, k - 1] = 1
                    if k < n2 - 1:
                        dirty[i, j, k + 1] = 1
    return changed.sum()


@njit(cache=True, parallel=True, fastmath=True)
def local_uncertainty(bins, labels, unary, beta):
    """``1 - max_a p(a | y, neighbours)`` under the Potts conditional, per voxel."""
    n0, n1, n2 = labels.shape
    k_cls = unary.shape[0]
    out = np.empty((n0, n1, n2), np.float32)
    for i in prange(n0):
        cnt = np.zeros(k_cls, np.float32)
        e = np.zeros(k_cls, np.float32)
        for j in range(n1):
            for k in range(n2):
                for a in range(k_cls):
                    cnt[a] = 0.0
                nn = 0
                if i > 0:
                    cnt[labels[i - 1, j, k]] += 1.0
                    nn += 1
                if i < n0 - 1:
                    cnt[labels[i + 1, j, k]] += 1.0
                    nn += 1
                if j > 0:
                    cnt[labels[i, j - 1, k]] += 1.0
                    nn += 1
                if j < n1 - 1:
                    cnt[labels[i, j + 1, k]] += 1.0
                    nn += 1
                if k > 0:
                    cnt[labels[i, j, k - 1]] += 1.0
                    nn += 1
                if k < n2 - 1:
                    cnt[labels[i, j, k + 1]] += 1.0
                    nn += 1
                b = bins[i, j, k]
                emin = np.float32(np.inf)
                for a in range(k_cls):
                    e[a] = unary[a, b] + beta * (nn - cnt[a])
                    emin = min(emin, e[a])
                s = np.float32(0.0)
                for a in range(k_cls):
                    s += np.exp(emin - e[a])
                out[i, j, k] = np.float32(1.0) - np.float32(1.0) / s
    return out
