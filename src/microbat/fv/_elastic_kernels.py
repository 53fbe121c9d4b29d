"""Numba kernels of the voxel elasticity operator (:mod:`microbat.fv.elasticity`).

Private module, imported lazily (it compiles on first use and caches the machine
code next to this file).

Grid conventions: voxels ``(n0, n1, n2)``, nodes ``(n0 + 1, n1 + 1, n2 + 1)`` in C
order. The eight nodes of a voxel are numbered ``l = 4 a + 2 b + c`` for the node at
offset ``(a, b, c) ∈ {0, 1}³``; the 27 neighbour offsets of a node are numbered
``9 (d0 + 1) + 3 (d1 + 1) + (d2 + 1)`` for ``d ∈ {-1, 0, 1}³``.
"""

from __future__ import annotations

from microbat.core.threads import prepare_numba

prepare_numba()  # pool threads sleep, not spin, while they wait (core.threads)

import numba as nb  # noqa: E402
import numpy as np  # noqa: E402

_OPTS = {"cache": True, "nogil": True, "error_model": "numpy"}


@nb.njit(parallel=True, **_OPTS)
def fill_bsr(
    shape, node_map, nodes, phase, lam, mu, kl, km, indptr, slot_of, data
):  # pragma: no cover - compiled
    """Add ``λ_e K_λ + μ_e K_μ`` of every solid voxel into the BSR blocks of its nodes.

    Gathers by row: each active node (parallel loop) visits its eight voxels and adds
    the 3×3 blocks of its row, so no two threads write the same block.

    Parameters
    ----------
    shape : (3,) int64
        Voxel grid shape.
    node_map : int32, flat over the node grid
        Node index of a grid node (-1 for nodes of no solid voxel).
    nodes : int64 (n_nodes,)
        Flat grid index of each active node.
    phase : int32, flat over the voxel grid
        Material index of each voxel (-1: void).
    lam, mu : float64 (n_materials,)
        Lamé constants per material.
    kl, km : float64 (24, 24)
        Unit element matrices (``K_e = λ kl + μ km``).
    indptr : int64 (n_nodes + 1,)
        Block-row pointers.
    slot_of : int32 (n_nodes, 27)
        Block index within the row of each neighbour offset (-1: not coupled).
    data : float64 (n_blocks, 3, 3)
        Zeroed block values, filled in place.
    """
    n0, n1, n2 = shape[0], shape[1], shape[2]
    m1 = n1 + 1
    m2 = n2 + 1
    for a in nb.prange(nodes.size):
        g = nodes[a]
        i = g // (m1 * m2)
        r = g - i * m1 * m2
        j = r // m2
        k = r - j * m2
        base = indptr[a]
        for d0 in range(-1, 1):
            vi = i + d0
            if vi < 0 or vi >= n0:
                continue
            for d1 in range(-1, 1):
                vj = j + d1
                if vj < 0 or vj >= n1:
                    continue
                for d2 in range(-1, 1):
                    vk = k + d2
                    if vk < 0 or vk >= n2:
                        continue
                    p = phase[(vi * n1 + vj) * n2 + vk]
                    if p < 0:
                        continue
                    la_ = lam[p]
                    mu_ = mu[p]
                    # local index of node a in this voxel: offset (-d0, -d1, -d2)
                    a0, a1, a2 = -d0, -d1, -d2
                    la = 4 * a0 + 2 * a1 + a2
                    for b0 in range(2):
                        for b1 in range(2):
                            for b2 in range(2):
                                lb = 4 * b0 + 2 * b1 + b2
                                off = 9 * (b0 - a0 + 1) + 3 * (b1 - a1 + 1) + (b2 - a2 + 1)
                                s = base + slot_of[a, off]
                                for c in range(3):
                                    for e in range(3):
                                        data[s, c, e] += (
                                            la_ * kl[3 * la + c, 3 * lb + e]
                                            + mu_ * km[3 * la + c, 3 * lb + e]
                                        )
    return data


@nb.njit(parallel=True, **_OPTS)
def gather_element_dofs(shape, node_map, voxels, u, out):  # pragma: no cover - compiled
    """Displacements of the 24 DOFs of each listed voxel (``out[e, 3 l + c]``).

    ``u`` is ``(n_nodes, 3)``; ``voxels`` flat voxel indices.
    """
    n1, n2 = shape[1], shape[2]
    m1 = n1 + 1
    m2 = n2 + 1
    for e in nb.prange(voxels.size):
        v = voxels[e]
        i = v // (n1 * n2)
        r = v - i * n1 * n2
        j = r // n2
        k = r - j * n2
        for b0 in range(2):
            for b1 in range(2):
                for b2 in range(2):
                    lb = 4 * b0 + 2 * b1 + b2
                    nd = node_map[((i + b0) * m1 + (j + b1)) * m2 + (k + b2)]
                    for c in range(3):
                        out[e, 3 * lb + c] = u[nd, c]
    return out


@nb.njit(**_OPTS)
def scatter_element_vectors(shape, node_map, voxels, fe, f):  # pragma: no cover - compiled
    """Add the element vectors ``fe[e, 3 l + c]`` into the nodal vector ``f (n_nodes, 3)``."""
    n1, n2 = shape[1], shape[2]
    m1 = n1 + 1
    m2 = n2 + 1
    for e in range(voxels.size):
        v = voxels[e]
        i = v // (n1 * n2)
        r = v - i * n1 * n2
        j = r // n2
        k = r - j * n2
        for b0 in range(2):
            for b1 in range(2):
                for b2 in range(2):
                    lb = 4 * b0 + 2 * b1 + b2
                    nd = node_map[((i + b0) * m1 + (j + b1)) * m2 + (k + b2)]
                    for c in range(3):
                        f[nd, c] += fe[e, 3 * lb + c]
    return f


def warm() -> None:
    """Compile (or load from the cache) every kernel on a tiny problem."""
    shape = np.array([1, 1, 1], np.int64)
    node_map = np.arange(8, dtype=np.int32)
    nodes = np.arange(8, dtype=np.int64)
    phase = np.zeros(1, np.int32)
    slot = np.zeros((8, 27), np.int32)
    data = np.zeros((8, 3, 3))
    fill_bsr(shape, node_map, nodes, phase, np.ones(1), np.ones(1), np.zeros((24, 24)),
             np.zeros((24, 24)), np.zeros(9, np.int64), slot, data)  # fmt: skip
    vox = np.zeros(1, np.int64)
    out = np.zeros((1, 24))
    gather_element_dofs(shape, node_map, vox, np.zeros((8, 3)), out)
    scatter_element_vectors(shape, node_map, vox, out, np.zeros((8, 3)))


@nb.njit(parallel=True, **_OPTS)
def bsr3_matvec(indptr, indices, data, x, y):  # pragma: no cover - compiled
    """``y = A x`` for a BSR matrix of 3 × 3 blocks; ``x``, ``y`` of shape (n, 3).

    Accumulates in float64 whatever the dtype of ``data``.
    """
    n = indptr.size - 1
    for a in nb.prange(n):
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        for s in range(indptr[a], indptr[a + 1]):
            b = indices[s]
            x0 = x[b, 0]
            x1 = x[b, 1]
            x2 = x[b, 2]
            s0 += data[s, 0, 0] * x0 + data[s, 0, 1] * x1 + data[s, 0, 2] * x2
            s1 += data[s, 1, 0] * x0 + data[s, 1, 1] * x1 + data[s, 1, 2] * x2
            s2 += data[s, 2, 0] * x0 + data[s, 2, 1] * x1 + data[s, 2, 2] * x2
        y[a, 0] = s0
        y[a, 1] = s1
        y[a, 2] = s2
    return y


@nb.njit(parallel=True, **_OPTS)
def bsr3_residual(indptr, indices, data, x, b, r):  # pragma: no cover - compiled
    """``r = b − A x`` (BSR, 3 × 3 blocks)."""
    n = indptr.size - 1
    for a in nb.prange(n):
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        for s in range(indptr[a], indptr[a + 1]):
            c = indices[s]
            x0 = x[c, 0]
            x1 = x[c, 1]
            x2 = x[c, 2]
            s0 += data[s, 0, 0] * x0 + data[s, 0, 1] * x1 + data[s, 0, 2] * x2
            s1 += data[s, 1, 0] * x0 + data[s, 1, 1] * x1 + data[s, 1, 2] * x2
            s2 += data[s, 2, 0] * x0 + data[s, 2, 1] * x1 + data[s, 2, 2] * x2
        r[a, 0] = b[a, 0] - s0
        r[a, 1] = b[a, 1] - s1
        r[a, 2] = b[a, 2] - s2
    return r


@nb.njit(parallel=True, **_OPTS)
def colored_block_gs(
    indptr, indices, data, diag, dinv, x, b, rows, starts, forward
):  # pragma: no cover - compiled
    """One multicolour block Gauss–Seidel sweep (3 × 3 blocks), in place on ``x``.

    ``rows[starts[c]:starts[c + 1]]`` are the block rows of colour ``c``; no two rows
    of one colour are coupled, so each colour is updated in parallel (deterministic).
    ``diag[a]`` is the block index of the diagonal block of row ``a``, ``dinv[a]`` its
    inverse. ``forward`` sweeps the colours 0 … 7, else 7 … 0.
    """
    nc = starts.size - 1
    for cc in range(nc):
        col = cc if forward else nc - 1 - cc
        lo = starts[col]
        hi = starts[col + 1]
        for t in nb.prange(hi - lo):
            a = rows[lo + t]
            s0 = b[a, 0]
            s1 = b[a, 1]
            s2 = b[a, 2]
            dg = diag[a]
            for s in range(indptr[a], indptr[a + 1]):
                if s == dg:
                    continue
                c = indices[s]
                x0 = x[c, 0]
                x1 = x[c, 1]
                x2 = x[c, 2]
                s0 -= data[s, 0, 0] * x0 + data[s, 0, 1] * x1 + data[s, 0, 2] * x2
                s1 -= data[s, 1, 0] * x0 + data[s, 1, 1] * x1 + data[s, 1, 2] * x2
                s2 -= data[s, 2, 0] * x0 + data[s, 2, 1] * x1 + data[s, 2, 2] * x2
            x[a, 0] = dinv[a, 0, 0] * s0 + dinv[a, 0, 1] * s1 + dinv[a, 0, 2] * s2
            x[a, 1] = dinv[a, 1, 0] * s0 + dinv[a, 1, 1] * s1 + dinv[a, 1, 2] * s2
            x[a, 2] = dinv[a, 2, 0] * s0 + dinv[a, 2, 1] * s1 + dinv[a, 2, 2] * s2
    return x


@nb.njit(parallel=True, **_OPTS)
def axpy_dot(x, r, p, q, alpha):  # pragma: no cover - compiled
    """``x += α p``, ``r −= α q``; returns ``‖r‖²`` (CG update, one pass)."""
    xf = x.reshape(-1)
    rf = r.reshape(-1)
    pf = p.reshape(-1)
    qf = q.reshape(-1)
    acc = 0.0
    for i in nb.prange(xf.size):
        xf[i] += alpha * pf[i]
        ri = rf[i] - alpha * qf[i]
        rf[i] = ri
        acc += ri * ri
    return acc
