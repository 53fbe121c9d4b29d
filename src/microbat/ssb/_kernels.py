"""Numba kernels of the solid-state analyses (private; compiled on first use, cached).

``line_factor`` is the orientation correction of voxel-edge counting: for each
counted edge it takes the TPB edges in a cubic window around it (their midpoints
in metres), finds their principal direction ``t`` (largest eigenvector of the
covariance, by power iteration started from the per-axis edge lengths) and returns
``1/‖t‖₁``, the true length of a straight line per unit length of its voxel-edge
staircase (see :mod:`microbat.ssb.tpb`).
"""

from __future__ import annotations

import numba as nb
import numpy as np

_OPTS = {"cache": True, "nogil": True, "error_model": "numpy"}


@nb.njit(parallel=True, **_OPTS)
def line_factor(
    bits: np.ndarray,
    ci: np.ndarray,
    cj: np.ndarray,
    ck: np.ndarray,
    half: int,
    h0: float,
    h1: float,
    h2: float,
) -> np.ndarray:  # pragma: no cover - compiled
    """``1/‖t‖₁`` of the principal direction of the edges (bit ``a`` = along ``a``) in a window."""
    n = ci.size
    s0, s1, s2 = bits.shape
    out = np.empty(n, np.float64)
    for e in nb.prange(n):
        i0 = max(ci[e] - half, 0)
        i1 = min(ci[e] + half + 1, s0)
        j0 = max(cj[e] - half, 0)
        j1 = min(cj[e] + half + 1, s1)
        k0 = max(ck[e] - half, 0)
        k1 = min(ck[e] + half + 1, s2)
        m = 0.0
        m0 = m1 = m2 = 0.0  # first moments
        c00 = c01 = c02 = c11 = c12 = c22 = 0.0  # second moments
        l0 = l1 = l2 = 0.0  # edge length per axis (start of the power iteration)
        for i in range(i0, i1):
            for j in range(j0, j1):
                for k in range(k0, k1):
                    b = bits[i, j, k]
                    if b == 0:
                        continue
                    for a in range(3):
                        if not (b >> a) & 1:
                            continue
                        x0 = (i - ci[e] + (0.5 if a == 0 else 0.0)) * h0
                        x1 = (j - cj[e] + (0.5 if a == 1 else 0.0)) * h1
                        x2 = (k - ck[e] + (0.5 if a == 2 else 0.0)) * h2
                        m += 1.0
                        m0 += x0
                        m1 += x1
                        m2 += x2
                        c00 += x0 * x0
                        c01 += x0 * x1
                        c02 += x0 * x2
                        c11 += x1 * x1
                        c12 += x1 * x2
                        c22 += x2 * x2
                        if a == 0:
                            l0 += h0
                        elif a == 1:
                            l1 += h1
                        else:
                            l2 += h2
        if m == 0.0:
            out[e] = 1.0
            continue
        m0 /= m
        m1 /= m
        m2 /= m
        c00 = c00 / m - m0 * m0
        c01 = c01 / m - m0 * m1
        c02 = c02 / m - m0 * m2
        c11 = c11 / m - m1 * m1
        c12 = c12 / m - m1 * m2
        c22 = c22 / m - m2 * m2
        nv = np.sqrt(l0 * l0 + l1 * l1 + l2 * l2)
        v0 = l0 / nv
        v1 = l1 / nv
        v2 = l2 / nv
        for _ in range(40):
            w0 = c00 * v0 + c01 * v1 + c02 * v2
            w1 = c01 * v0 + c11 * v1 + c12 * v2
            w2 = c02 * v0 + c12 * v1 + c22 * v2
            nw = np.sqrt(w0 * w0 + w1 * w1 + w2 * w2)
            if nw == 0.0:
                break
            d = abs(w0 / nw - v0) + abs(w1 / nw - v1) + abs(w2 / nw - v2)
            v0 = w0 / nw
            v1 = w1 / nw
            v2 = w2 / nw
            if d < 1e-10:
                break
        out[e] = 1.0 / (abs(v0) + abs(v1) + abs(v2))
    return out


@nb.njit(parallel=True, **_OPTS)
def status_codes(
    labels: np.ndarray,
    clusters: np.ndarray,
    present: np.ndarray,
    bit: int,
    cl_conn: np.ndarray,
    cl_touch: np.ndarray,
    code: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """OR the status bits of one phase into ``code`` (see ``tpb._status_bits``).

    ``present[label]`` marks the labels of the phase; its voxels get bit ``bit``,
    bit ``bit + 3`` when their cluster (``clusters``) is connected to the phase's
    reservoir (``cl_conn``) and bit ``bit + 6`` when it touches a face of the image
    (``cl_touch``).
    """
    n0, n1, n2 = labels.shape
    b0 = np.uint16(1 << bit)
    b1 = np.uint16(1 << (bit + 3))
    b2 = np.uint16(1 << (bit + 6))
    for i in nb.prange(n0):
        for j in range(n1):
            for k in range(n2):
                if not present[labels[i, j, k]]:
                    continue
                c = clusters[i, j, k]
                v = code[i, j, k] | b0
                if cl_conn[c]:
                    v |= b1
                if cl_touch[c]:
                    v |= b2
                code[i, j, k] = v


@nb.njit(**_OPTS)
def _or4(code, a, i, j, k):  # pragma: no cover - compiled
    if a == 0:
        return code[i, j, k] | code[i, j + 1, k] | code[i, j, k + 1] | code[i, j + 1, k + 1]
    if a == 1:
        return code[i, j, k] | code[i + 1, j, k] | code[i, j, k + 1] | code[i + 1, j, k + 1]
    return code[i, j, k] | code[i + 1, j, k] | code[i, j + 1, k] | code[i + 1, j + 1, k]


@nb.njit(parallel=True, **_OPTS)
def tpb_edges(code: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
    """Edges along ``axis`` whose four voxels hold phases 0, 1 and 2.

    Returns the corner-lattice positions (3, n) of the edges (transverse corner
    ``j + 1`` between voxels ``j`` and ``j + 1``; along ``axis`` the voxel index) and
    the OR of the four voxels' status codes.
    """
    n0, n1, n2 = code.shape
    e0 = n0 if axis == 0 else n0 - 1
    e1 = n1 if axis == 1 else n1 - 1
    e2 = n2 if axis == 2 else n2 - 1
    counts = np.zeros(max(e0, 0), np.int64)
    for i in nb.prange(e0):
        c = 0
        for j in range(e1):
            for k in range(e2):
                if (_or4(code, axis, i, j, k) & 7) == 7:
                    c += 1
        counts[i] = c
    start = np.zeros(max(e0, 0) + 1, np.int64)
    for i in range(e0):
        start[i + 1] = start[i] + counts[i]
    total = start[e0] if e0 > 0 else 0
    pos = np.empty((3, total), np.int32)
    orr = np.empty(total, np.uint16)
    d0 = 0 if axis == 0 else 1
    d1 = 0 if axis == 1 else 1
    d2 = 0 if axis == 2 else 1
    for i in nb.prange(e0):
        m = start[i]
        for j in range(e1):
            for k in range(e2):
                o = _or4(code, axis, i, j, k)
                if (o & 7) == 7:
                    pos[0, m] = i + d0
                    pos[1, m] = j + d1
                    pos[2, m] = k + d2
                    orr[m] = o
                    m += 1
    return pos, orr


@nb.njit(parallel=True, **_OPTS)
def contact_faces(code: np.ndarray, ka: int, kb: int) -> np.ndarray:  # pragma: no cover
    """Faces between phases ``ka`` and ``kb``: counts ``[axis, (all, active, isolated)]``."""
    n0, n1, n2 = code.shape
    ba = 1 << ka
    bb = 1 << kb
    both = ba | bb
    out = np.zeros((n0, 3, 3), np.int64)
    for i in nb.prange(n0):
        for j in range(n1):
            for k in range(n2):
                c = code[i, j, k]
                if not (c & both):
                    continue
                for a in range(3):
                    if a == 0:
                        if i + 1 >= n0:
                            continue
                        d = code[i + 1, j, k]
                    elif a == 1:
                        if j + 1 >= n1:
                            continue
                        d = code[i, j + 1, k]
                    else:
                        if k + 1 >= n2:
                            continue
                        d = code[i, j, k + 1]
                    if ((c & ba) and (d & bb)) or ((c & bb) and (d & ba)):
                        o = c | d
                        out[i, a, 0] += 1
                        if ((o >> 3) & both) == both:
                            out[i, a, 1] += 1
                        elif ((o >> 6) & both) != both:
                            out[i, a, 2] += 1
    return out.sum(axis=0)


@nb.njit(**_OPTS)
def map_add(
    out: np.ndarray, pos: np.ndarray, weight: np.ndarray, keep: np.ndarray, axis: int
) -> None:  # pragma: no cover - compiled
    """Add a quarter of ``weight`` of each kept edge to the four voxels around it.

    ``pos`` are corner-lattice positions of edges along ``axis`` (see ``tpb_edges``).
    """
    for m in range(weight.size):
        if not keep[m]:
            continue
        w = weight[m] * 0.25
        i = pos[0, m]
        j = pos[1, m]
        k = pos[2, m]
        if axis == 0:
            out[i, j - 1, k - 1] += w
            out[i, j, k - 1] += w
            out[i, j - 1, k] += w
            out[i, j, k] += w
        elif axis == 1:
            out[i - 1, j, k - 1] += w
            out[i, j, k - 1] += w
            out[i - 1, j, k] += w
            out[i, j, k] += w
        else:
            out[i - 1, j - 1, k] += w
            out[i, j - 1, k] += w
            out[i - 1, j, k] += w
            out[i, j, k] += w
