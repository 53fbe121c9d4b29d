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
    shape, node_map, nodes, phase, ke, indptr, slot_of, fixed, data
):  # pragma: no cover - compiled
    """Add the element matrix ``λ_e K_λ + μ_e K_μ`` of every solid voxel into its BSR blocks.

    Gathers by row: each active node (parallel loop) visits its eight voxels and adds
    the 3×3 blocks of its row, so no two threads write the same block. Fixed
    components are eliminated symmetrically on the way: an entry whose row or column
    component is fixed receives nothing, except the diagonal entry of a fixed
    component, which keeps its full value (no second pass over the matrix).

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
    ke : float64 (n_materials, 24, 24)
        Element matrix of each material (``λ kl + μ km``).
    indptr : int64 (n_nodes + 1,)
        Block-row pointers.
    slot_of : int32 (n_nodes, 27)
        Block index within the row of each neighbour offset (-1: not coupled).
    fixed : bool (n_nodes, 3)
        Fixed (eliminated) components.
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
        fixed_a = fixed[a, 0] or fixed[a, 1] or fixed[a, 2]
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
                    # local index of node a in this voxel: offset (-d0, -d1, -d2)
                    a0, a1, a2 = -d0, -d1, -d2
                    la = 4 * a0 + 2 * a1 + a2
                    for b0 in range(2):
                        for b1 in range(2):
                            for b2 in range(2):
                                lb = 4 * b0 + 2 * b1 + b2
                                off = 9 * (b0 - a0 + 1) + 3 * (b1 - a1 + 1) + (b2 - a2 + 1)
                                s = base + slot_of[a, off]
                                nb_ = node_map[((i + d0 + b0) * m1 + (j + d1 + b1)) * m2
                                               + (k + d2 + b2)]  # fmt: skip
                                if fixed_a or fixed[nb_, 0] or fixed[nb_, 1] or fixed[nb_, 2]:
                                    for c in range(3):
                                        for e in range(3):
                                            if (fixed[a, c] or fixed[nb_, e]) and not (
                                                nb_ == a and c == e
                                            ):
                                                continue
                                            data[s, c, e] += ke[p, 3 * la + c, 3 * lb + e]
                                else:
                                    for c in range(3):
                                        for e in range(3):
                                            data[s, c, e] += ke[p, 3 * la + c, 3 * lb + e]
    return data


@nb.njit(parallel=True, **_OPTS)
def node_couplings(shape, phase, nodes, slot_of, counts):  # pragma: no cover - compiled
    """Block pattern of each node: which of its 27 neighbours it couples with.

    Node ``p`` couples with ``p + d`` (``d ∈ {−1, 0, 1}³``, kernel order) when one of
    the voxels they share is solid. Writes ``slot_of[a, o]`` (rank of offset ``o``
    within row ``a``, −1 when not coupled) and ``counts[a]`` (blocks in row ``a``).
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
        cnt = 0
        for o in range(27):
            d0 = o // 9 - 1
            d1 = (o // 3) % 3 - 1
            d2 = o % 3 - 1
            hit = False
            # a shared voxel sits at offset e (per axis in {-1, 0}) from p and at
            # e - d from p + d: e = -1 for d = -1, e = 0 for d = 1, either for d = 0
            for e0 in range(-1, 1):
                if (d0 == -1 and e0 == 0) or (d0 == 1 and e0 == -1):
                    continue
                vi = i + e0
                if vi < 0 or vi >= n0:
                    continue
                for e1 in range(-1, 1):
                    if (d1 == -1 and e1 == 0) or (d1 == 1 and e1 == -1):
                        continue
                    vj = j + e1
                    if vj < 0 or vj >= n1:
                        continue
                    for e2 in range(-1, 1):
                        if (d2 == -1 and e2 == 0) or (d2 == 1 and e2 == -1):
                            continue
                        vk = k + e2
                        if vk < 0 or vk >= n2:
                            continue
                        if phase[(vi * n1 + vj) * n2 + vk] >= 0:
                            hit = True
            if hit:
                slot_of[a, o] = cnt
                cnt += 1
            else:
                slot_of[a, o] = -1
        counts[a] = cnt
    return counts


@nb.njit(parallel=True, **_OPTS)
def coupling_columns(shape, node_map, nodes, slot_of, indptr, indices):  # pragma: no cover
    """Column (node index) of every block of the pattern of :func:`node_couplings`."""
    m1 = shape[1] + 1
    m2 = shape[2] + 1
    for a in nb.prange(nodes.size):
        g = nodes[a]
        for o in range(27):
            sl = slot_of[a, o]
            if sl >= 0:
                d = (o // 9 - 1) * m1 * m2 + ((o // 3) % 3 - 1) * m2 + (o % 3 - 1)
                indices[indptr[a] + sl] = node_map[g + d]
    return indices


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
    fill_bsr(shape, node_map, nodes, phase, np.zeros((1, 24, 24)), np.zeros(9, np.int64), slot,
             np.zeros((8, 3), bool), data)  # fmt: skip
    counts = np.zeros(8, np.int64)
    node_couplings(shape, phase, nodes, slot, counts)
    ptr = np.zeros(9, np.int64)
    np.cumsum(counts, out=ptr[1:])
    coupling_columns(shape, node_map, nodes, slot, ptr, np.zeros(int(ptr[-1]), np.int32))
    vox = np.zeros(1, np.int64)
    out = np.zeros((1, 24))
    gather_element_dofs(shape, node_map, vox, np.zeros((8, 3)), out)
    scatter_element_vectors(shape, node_map, vox, out, np.zeros((8, 3)))


@nb.njit(inline="always", **_OPTS)
def _row_product(indptr, indices, data, x, a):  # pragma: no cover - compiled
    """``(A x)`` of block row ``a`` (3 × 3 blocks), accumulated in float64.

    The one inner loop of :func:`bsr3_matvec` and :func:`bsr3_residual` (LLVM inlines it).
    """
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
    return s0, s1, s2


@nb.njit(parallel=True, **_OPTS)
def bsr3_matvec(indptr, indices, data, x, y):  # pragma: no cover - compiled
    """``y = A x`` for a BSR matrix of 3 × 3 blocks; ``x``, ``y`` of shape (n, 3).

    Accumulates in float64 whatever the dtype of ``data``.
    """
    for a in nb.prange(indptr.size - 1):
        s0, s1, s2 = _row_product(indptr, indices, data, x, a)
        y[a, 0] = s0
        y[a, 1] = s1
        y[a, 2] = s2
    return y


@nb.njit(parallel=True, **_OPTS)
def bsr3_residual(indptr, indices, data, x, b, r):  # pragma: no cover - compiled
    """``r = b − A x`` (BSR, 3 × 3 blocks), accumulated in float64."""
    for a in nb.prange(indptr.size - 1):
        s0, s1, s2 = _row_product(indptr, indices, data, x, a)
        r[a, 0] = b[a, 0] - s0
        r[a, 1] = b[a, 1] - s1
        r[a, 2] = b[a, 2] - s2
    return r


@nb.njit(parallel=True, **_OPTS)
def l1_block_diagonal(indptr, indices, data, diag, bounds, out):  # pragma: no cover - compiled
    """Diagonal blocks plus the ℓ1 norms of each row's couplings outside its row block.

    ``out[a] = A_aa + diag(Σ_{c ∉ B(a)} Σ_j |A_ac[i, j]|)`` with ``B(a)`` the block
    ``bounds[k] ≤ a < bounds[k + 1]`` holding row ``a`` (the ℓ1 Gauss–Seidel of Baker,
    Falgout, Kolev & Yang 2011: the sweep :func:`block_gs` then converges for any
    symmetric positive definite matrix and any partition). ``diag[a]`` is the block
    index of ``A_aa``; ``out`` is (n, 3, 3) float64.
    """
    for k in nb.prange(bounds.size - 1):
        lo = bounds[k]
        hi = bounds[k + 1]
        for a in range(lo, hi):
            dg = diag[a]
            for i in range(3):
                for j in range(3):
                    out[a, i, j] = data[dg, i, j]
            for s in range(indptr[a], indptr[a + 1]):
                c = indices[s]
                if c < lo or c >= hi:
                    for i in range(3):
                        out[a, i, i] += abs(data[s, i, 0]) + abs(data[s, i, 1]) + abs(data[s, i, 2])
    return out


@nb.njit(parallel=True, **_OPTS)
def block_gs(indptr, indices, data, dinv, x, xs, b, bounds, forward):  # pragma: no cover
    """One hybrid block Gauss–Seidel sweep (3 × 3 blocks), in place on ``x``.

    The rows are cut into contiguous blocks ``bounds[k] … bounds[k + 1] − 1`` (fixed by
    the caller, not by the number of threads, so the result does not depend on it).
    Within a block the rows are swept in their natural order (``forward``) or in
    reverse, each update ``x_a += dinv_a (b_a − (A x)_a)`` reading the values already
    updated in its block; couplings to other blocks read the snapshot ``xs`` (``x``
    before the sweep), so the blocks are independent and run in parallel. With
    ``dinv`` from :func:`l1_block_diagonal` this is the ℓ1 hybrid Gauss–Seidel
    smoother; the backward sweep is the adjoint of the forward one (a symmetric
    V-cycle). Natural order keeps the neighbours of a row in cache, which a
    multicolour order does not.
    """
    for k in nb.prange(bounds.size - 1):
        lo = bounds[k]
        hi = bounds[k + 1]
        if forward:
            for a in range(lo, hi):
                _gs_row(indptr, indices, data, dinv, x, xs, b, lo, hi, a, 1)
        else:  # rows and their blocks in descending memory order: one backward stream
            for a in range(hi - 1, lo - 1, -1):
                _gs_row(indptr, indices, data, dinv, x, xs, b, lo, hi, a, -1)
    return x


@nb.njit(inline="always", **_OPTS)
def _gs_row(indptr, indices, data, dinv, x, xs, b, lo, hi, a, step):  # pragma: no cover
    """Update row ``a`` of :func:`block_gs` (block ``lo … hi − 1``, blocks in order ``step``)."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    first, last = (indptr[a], indptr[a + 1]) if step > 0 else (indptr[a + 1] - 1, indptr[a] - 1)
    for s in range(first, last, step):
        c = indices[s]
        if c >= lo and c < hi:
            x0 = x[c, 0]
            x1 = x[c, 1]
            x2 = x[c, 2]
        else:
            x0 = xs[c, 0]
            x1 = xs[c, 1]
            x2 = xs[c, 2]
        s0 += data[s, 0, 0] * x0 + data[s, 0, 1] * x1 + data[s, 0, 2] * x2
        s1 += data[s, 1, 0] * x0 + data[s, 1, 1] * x1 + data[s, 1, 2] * x2
        s2 += data[s, 2, 0] * x0 + data[s, 2, 1] * x1 + data[s, 2, 2] * x2
    r0 = b[a, 0] - s0
    r1 = b[a, 1] - s1
    r2 = b[a, 2] - s2
    x[a, 0] += dinv[a, 0, 0] * r0 + dinv[a, 0, 1] * r1 + dinv[a, 0, 2] * r2
    x[a, 1] += dinv[a, 1, 0] * r0 + dinv[a, 1, 1] * r1 + dinv[a, 1, 2] * r2
    x[a, 2] += dinv[a, 2, 0] * r0 + dinv[a, 2, 1] * r1 + dinv[a, 2, 2] * r2


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
