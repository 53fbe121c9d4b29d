r"""Numba kernels of the resolved model's Krylov solver (:mod:`._krylov`).

Private module, imported lazily by :mod:`._krylov` (the kernels compile on first use
and cache their machine code next to this file).

* :func:`csr_matvec` — ``y = A x`` or ``y += A x`` for CSR matrices of float32 or
  float64 data, rows in parallel, accumulated in float64;
* :func:`hybrid_gs` — one forward or backward sweep of the ℓ1 hybrid Gauss–Seidel
  smoother of Baker, Falgout, Kolev & Yang [1]_ on scalar CSR rows: the rows are cut
  into contiguous blocks (:func:`row_blocks`; a few per thread, handed out as threads
  come free), each block is swept by
  Gauss–Seidel in its own rows, its couplings to rows of other blocks read the
  values before the sweep, and its diagonal is augmented by the ℓ1 norm of those
  couplings (:func:`l1_offblock`). The blocks are then independent. With one block
  the sweep *is* Gauss–Seidel (PyAMG's ``gauss_seidel``, operation for operation);
  with the ℓ1 term it converges for every symmetric positive-definite matrix and
  every partition ([1]_, Theorem 6.2), where plain hybrid Gauss–Seidel need not;
* :func:`forward_residual` — ``b − A x`` after a forward sweep from zero, from the
  strict upper triangle and the couplings left of each block (what the sweep did
  not already balance): half the bytes of the full residual;
* :func:`gs_forward_residual` and :func:`hybrid_gs_forward_residual` — for a
  symmetric matrix, the forward sweep from zero and its residual in one pass: once
  row ``i`` has ``x_i``, its entries left of the diagonal scatter ``a_ij x_i`` into
  ``r_j`` (``a_ji = a_ij``), so the matrix is read once instead of one and a half
  times (the serial kernel's ``x`` and ``r`` equal PyAMG's sweep and ``−U x`` bit for
  bit; the threaded one adds the couplings between blocks after all blocks).

These are the scalar counterparts of the 3 × 3-block kernels of the elasticity
solver (:mod:`microbat.fv._elastic_kernels`: ``l1_block_diagonal``, ``block_gs``),
with one difference: here the partition follows the number of threads (the caller
takes one block on one thread), so a one-thread run is exactly the Gauss–Seidel of
the serial solver.

References
----------
.. [1] A. H. Baker, R. D. Falgout, T. V. Kolev, U. M. Yang, "Multigrid smoothers for
   ultraparallel computing", SIAM J. Sci. Comput. 33 (2011) 2864–2887,
   doi:10.1137/100798806.
"""

from __future__ import annotations

from microbat.core.threads import prepare_numba

prepare_numba()  # pool threads sleep, not spin, while they wait (core.threads)

import numba as nb  # noqa: E402
import numpy as np  # noqa: E402

_OPTS = {"cache": True, "nogil": True, "error_model": "numpy"}


@nb.njit(parallel=True, **_OPTS)
def csr_matvec(indptr, indices, data, x, y, accumulate, nchunks):  # pragma: no cover
    """``y = A x`` (``accumulate=False``) or ``y += A x``, in ``nchunks`` row chunks.

    Under :class:`dynamic` the chunks go to the threads one at a time as they come
    free, so a thread that the system holds back leaves its share to the others.
    Sums in the precision of ``data`` (as SciPy's ``csr_matvec``). ``indptr`` and
    ``indices`` unsigned (:func:`unsigned`).
    """
    zero = np.zeros(1, data.dtype)[0]
    n = indptr.size - 1
    for k in nb.prange(nchunks):
        for i in range(k * n // nchunks, (k + 1) * n // nchunks):
            s = zero
            for jj in range(indptr[i], indptr[i + 1]):
                s += data[jj] * x[indices[jj]]
            if accumulate:
                y[i] += s
            else:
                y[i] = s
    return y


class dynamic:
    """Context: the ``prange`` loops called inside hand out one iteration at a time.

    (:func:`numba.set_parallel_chunksize`, thread-local; the kernels' loops run over
    row blocks or chunks, a few per thread.) Setting it inside a kernel would keep
    Numba from caching the kernel.
    """

    def __enter__(self) -> None:
        self._old = nb.set_parallel_chunksize(1)

    def __exit__(self, *exc: object) -> None:
        nb.set_parallel_chunksize(self._old)


def unsigned(a: np.ndarray) -> np.ndarray:
    """An index array viewed as unsigned (same bytes).

    Numba checks every signed index for wraparound (a negative index counts from
    the end); with unsigned indices it does not: a 64³ product took 2.3 ms with the
    int32 indices of SciPy and 1.1 ms with their uint32 view (SciPy: 1.0 ms).
    """
    a = np.ascontiguousarray(a)
    return a.view(np.uint32 if a.dtype.itemsize == 4 else np.uint64)


def row_blocks(indptr: np.ndarray, nblocks: int) -> np.ndarray:
    """Bounds of ``nblocks`` contiguous row blocks of about equal numbers of entries.

    Returns ``bounds`` (uint64, ``nblocks + 1``): block ``k`` is the rows
    ``bounds[k] … bounds[k + 1] − 1``.
    """
    n = indptr.size - 1
    nnz = int(indptr[-1])
    targets = (np.arange(1, nblocks) * nnz) // max(1, nblocks)
    inner = np.searchsorted(indptr, targets, side="left")
    bounds = np.empty(nblocks + 1, np.int64)
    bounds[0] = 0
    bounds[1:-1] = np.clip(inner, 0, n)
    bounds[-1] = n
    return np.maximum.accumulate(bounds).astype(np.uint64)


@nb.njit(parallel=True, **_OPTS)
def l1_offblock(indptr, indices, data, bounds, out):  # pragma: no cover - compiled
    """``out[i] = Σ_{j ∉ B(i)} |a_ij|``, ``B(i)`` the row block of ``i`` (``bounds``).

    The ℓ1 augmentation of the diagonal in the hybrid sweep (:func:`hybrid_gs`); zero
    for every row when there is one block.
    """
    one = np.uint64(1)
    for k in nb.prange(bounds.size - 1):
        lo = bounds[k]
        hi = bounds[k + 1]
        for i in range(lo, hi):
            s = 0.0
            for jj in range(indptr[i], indptr[i + one]):
                j = indices[jj]
                if j < lo or j >= hi:
                    s += abs(data[jj])
            out[i] = s
    return out


@nb.njit(parallel=True, **_OPTS)
def hybrid_gs(indptr, indices, data, l1, x, xs, b, bounds, forward, from_zero):  # pragma: no cover
    """One ℓ1 hybrid Gauss–Seidel sweep, in place on ``x``.

    Row ``i`` of block ``B = lo … hi − 1`` is corrected by its residual over the
    augmented diagonal, ``x_i ← x_i + (b_i − Σ_{j ∈ B} a_ij x_j − Σ_{j ∉ B} a_ij xs_j)
    / (a_ii + l1_i)``, i.e. ``x_i ← (b_i − Σ_{j ∈ B, j ≠ i} a_ij x_j − Σ_{j ∉ B} a_ij xs_j
    + l1_i x_i) / (a_ii + l1_i)``,
    the in-block ``x_j`` as already updated by this sweep (rows in increasing order when
    ``forward``, decreasing otherwise), the off-block ones from the snapshot ``xs``
    (``x`` before the sweep; not read when ``from_zero``: the sweep then starts from
    ``x = 0``, whose off-block terms vanish). A row with a zero diagonal entry is
    left as it is (as PyAMG's ``gauss_seidel`` does). Sums in the precision of ``data``.
    The rows' indices must be sorted (a row whose first and last columns lie in its
    block takes the loop without block tests).
    """
    one = np.uint64(1)
    zero = np.zeros(1, data.dtype)[0]
    for k in nb.prange(bounds.size - 1):
        lo = bounds[k]
        hi = bounds[k + 1]
        if forward:
            for i in range(lo, hi):
                _gs_row(indptr, indices, data, l1, x, xs, b, lo, hi, i, from_zero, zero)
        else:
            for t in range(hi - lo):
                i = hi - t - one
                _gs_row(indptr, indices, data, l1, x, xs, b, lo, hi, i, from_zero, zero)
    return x


@nb.njit(inline="always", **_OPTS)
def _gs_row(indptr, indices, data, l1, x, xs, b, lo, hi, i, from_zero, zero):  # pragma: no cover
    """Update row ``i`` (unsigned) of block ``lo … hi − 1`` in :func:`hybrid_gs`."""
    s = zero
    d = zero
    p0 = indptr[i]
    p1 = indptr[i + np.uint64(1)]
    if p1 > p0 and indices[p0] >= lo and indices[p1 - np.uint64(1)] < hi:
        # all couplings in the block (sorted row): Gauss–Seidel as PyAMG's, l1_i = 0
        for jj in range(p0, p1):
            j = indices[jj]
            if j == i:
                d = data[jj]
            else:
                s += data[jj] * x[j]
        if d != 0.0:
            x[i] = (b[i] - s) / d
        return
    for jj in range(p0, p1):
        j = indices[jj]
        if j == i:
            d = data[jj]
        elif j >= lo and j < hi:
            s += data[jj] * x[j]
        elif not from_zero:
            s += data[jj] * xs[j]
    if d != 0.0:
        # x_i + (b − A x)_i / (a_ii + l1_i), the off-block part of A x from xs
        x[i] = (b[i] - s + l1[i] * x[i]) / (d + l1[i])


@nb.njit(parallel=True, **_OPTS)
def forward_residual(up, ui, ud, lp, li, ld, l1, x, bounds, r):  # pragma: no cover
    """``r = b − A x`` after :func:`hybrid_gs` forward from ``x = 0``.

    The sweep made ``(a_ii + l1_i) x_i + Σ_{lo ≤ j < i} a_ij x_j = b_i`` in row ``i``
    of block ``lo … hi − 1``, so ``r_i = l1_i x_i − Σ_{j > i} a_ij x_j − Σ_{j < lo}
    a_ij x_j``: ``U`` (``up, ui, ud``) is the strict upper triangle of ``A``, ``L_off``
    (``lp, li, ld``) its entries left of their row's block (:func:`lower_offblock`;
    empty with one block, where ``r = −U x``). Reads half of ``A`` where the full
    residual reads all of it; the rows go in the blocks of ``bounds``.
    """
    zero = np.zeros(1, ud.dtype)[0]
    one = np.uint64(1)
    for k in nb.prange(bounds.size - 1):
        for i in range(bounds[k], bounds[k + 1]):
            s = zero
            for jj in range(up[i], up[i + one]):
                s += ud[jj] * x[ui[jj]]
            for jj in range(lp[i], lp[i + one]):
                s += ld[jj] * x[li[jj]]
            r[i] = l1[i] * x[i] - s
    return r


@nb.njit(inline="always", **_OPTS)
def _sweep_rows_residual(indptr, indices, data, l1, x, b, r, lo, hi):  # pragma: no cover
    """Rows ``lo … hi − 1`` of a forward sweep from zero, scattering the residual.

    Row ``i`` sets ``x_i = (b_i − Σ_{lo ≤ j < i} a_ij x_j) / (a_ii + l1_i)`` (no ℓ1
    term when ``l1`` is empty: plain Gauss–Seidel) and subtracts ``a_ij x_i`` from
    ``r_j`` for its entries ``lo ≤ j < i``; entries left of ``lo`` are skipped (the
    couplings to other blocks). A row with a zero diagonal keeps ``x_i = 0`` and
    ``r_i = b_i − Σ_{lo ≤ j < i} a_ij x_j``.
    """
    zero = np.zeros(1, data.dtype)[0]
    one = np.uint64(1)
    has_l1 = l1.size > 0
    for i in range(lo, hi):
        p0 = indptr[i]
        p1 = indptr[i + one]
        s = zero
        d = zero
        q0 = p0  # the row's first entry in the block (sorted row)
        q1 = p0  # its first entry right of the diagonal
        for jj in range(p0, p1):
            j = indices[jj]
            if j < lo:
                q0 = jj + one
            elif j < i:
                s += data[jj] * x[j]
            else:
                if j == i:
                    d = data[jj]
                break
            q1 = jj + one
        if d != 0.0:
            xi = (b[i] - s) / (d + l1[i]) if has_l1 else (b[i] - s) / d
            x[i] = xi
            r[i] = zero
            for jj in range(q0, q1):
                r[indices[jj]] -= data[jj] * xi
        else:
            x[i] = zero
            r[i] = b[i] - s


@nb.njit(**_OPTS)
def gs_forward_residual(indptr, indices, data, x, b, r):  # pragma: no cover - compiled
    """Forward Gauss–Seidel from ``x = 0`` and its residual ``r = b − A x``, in one pass.

    For a *symmetric* ``A`` with sorted rows. Row ``i`` sets ``x_i = (b_i − Σ_{j<i}
    a_ij x_j) / a_ii`` (PyAMG's ``gauss_seidel`` from zero, operation for operation:
    its terms ``j > i`` multiply zeros), which balances the row, so ``r_i = −Σ_{j>i}
    a_ij x_j = −Σ_{j>i} a_ji x_j``: row ``i``, once it has ``x_i``, subtracts ``a_ij
    x_i`` from ``r_j`` for its entries ``j < i``, in the same order as ``−U x`` would
    (``U`` the strict upper triangle). The matrix is read once instead of once for the
    sweep and half again for ``−U x``. A row with a zero diagonal keeps ``x_i = 0``
    (as PyAMG's) and its residual ``b_i − Σ_{j<i} a_ij x_j`` before the later rows'
    terms. ``r`` needs no initial value; sums in the precision of ``data``.
    """
    n = np.uint64(indptr.size - 1)
    _sweep_rows_residual(indptr, indices, data, data[:0], x, b, r, np.uint64(0), n)
    return r


@nb.njit(parallel=True, **_OPTS)
def hybrid_gs_forward_residual(
    indptr, indices, data, l1, x, b, bounds, op, oi, od, orows, r
):  # pragma: no cover - compiled
    """:func:`hybrid_gs` forward from ``x = 0`` and its residual, for a symmetric ``A``.

    Each block sweeps its rows as :func:`gs_forward_residual` does, scattering the
    in-block terms ``a_ij x_i`` (``lo ≤ j < i``) into ``r_j``; after all blocks, the
    rows ``orows`` that couple to other blocks add ``l1_i x_i − Σ_{j ∉ B(i)} a_ij
    x_j`` from ``op, oi, od`` (:func:`offblock`: every entry outside its row's block,
    one row per entry of ``orows``). The result is ``b − A x`` (rows with a zero
    diagonal are left at ``x_i = 0``, their residual completed likewise).
    """
    zero = np.zeros(1, data.dtype)[0]
    one = np.uint64(1)
    for k in nb.prange(bounds.size - 1):
        _sweep_rows_residual(indptr, indices, data, l1, x, b, r, bounds[k], bounds[k + 1])
    m = orows.size
    nch = bounds.size - 1
    for c in nb.prange(nch):  # as many chunks as blocks (one prange step each)
        for k in range(c * m // nch, (c + 1) * m // nch):
            i = orows[k]
            s = zero
            for jj in range(op[k], op[k + one]):
                s += od[jj] * x[oi[jj]]
            r[i] += l1[i] * x[i] - s
    return r


def offblock(A, bounds: np.ndarray):
    """The entries of CSR ``A`` outside their row's block, by the rows that have any.

    Returns ``(orows, indptr, indices, data)``: row ``orows[k]`` of ``A`` has the
    off-block entries ``indptr[k] … indptr[k + 1] − 1`` (for
    :func:`hybrid_gs_forward_residual`; unsigned indices).
    """
    ip, ix = unsigned(A.indptr), unsigned(A.indices)
    bounds = bounds.astype(np.uint64)
    counts = np.zeros(A.shape[0], np.int64)
    _offblock_count(ip, ix, bounds, counts)
    orows = np.flatnonzero(counts)
    indptr = np.zeros(orows.size + 1, np.int64)
    np.cumsum(counts[orows], out=indptr[1:])
    cols = np.empty(int(indptr[-1]), np.int64)
    vals = np.empty(int(indptr[-1]), A.data.dtype)
    _offblock_fill(ip, ix, A.data, bounds, unsigned(orows), cols, vals)
    return unsigned(orows), unsigned(indptr), unsigned(cols), vals


@nb.njit(**_OPTS)
def _offblock_count(indptr, indices, bounds, counts):  # pragma: no cover - compiled
    """Off-block entries per row (:func:`offblock`)."""
    for k in range(bounds.size - 1):
        lo = bounds[k]
        hi = bounds[k + 1]
        for i in range(lo, hi):
            c = 0
            for jj in range(indptr[i], indptr[i + np.uint64(1)]):
                j = indices[jj]
                if j < lo or j >= hi:
                    c += 1
            counts[i] = c


@nb.njit(**_OPTS)
def _offblock_fill(indptr, indices, data, bounds, orows, cols, vals):  # pragma: no cover
    """The off-block entries of the rows ``orows``, in their order (:func:`offblock`)."""
    q = 0
    k = 0
    for r in range(orows.size):
        i = orows[r]
        while bounds[k + 1] <= i:
            k += 1
        lo = bounds[k]
        hi = bounds[k + 1]
        for jj in range(indptr[i], indptr[i + np.uint64(1)]):
            j = indices[jj]
            if j < lo or j >= hi:
                cols[q] = j
                vals[q] = data[jj]
                q += 1


@nb.njit(**_OPTS)
def symmetrize(data, perm, out):  # pragma: no cover - compiled
    """``out = (a + a[perm]) / 2`` (``a = data``, cast to ``out``'s type), in one pass.

    ``perm`` maps each entry to its transposed one (:func:`._krylov._cycle_operator`).
    Returns ``(max |a − a[perm]|, max |a|)``; ``out`` is exactly symmetric
    (``a_ij + a_ji`` and ``a_ji + a_ij`` round alike).
    """
    asym = 0.0
    amax = 0.0
    for k in range(data.size):
        a = data[k]
        at = data[perm[k]]
        asym = max(asym, abs(a - at))
        amax = max(amax, abs(a))
        out[k] = 0.5 * (a + at)
    return asym, amax


def lower_offblock(A, bounds: np.ndarray):
    """The entries of CSR ``A`` left of their row's block (``j < bounds[k]`` in block k)."""
    import scipy.sparse as sp

    C = A.tocoo()
    lo = np.repeat(bounds[:-1].astype(np.int64), np.diff(bounds.astype(np.int64)))
    keep = C.col < lo[C.row]
    L = sp.csr_matrix((C.data[keep], (C.row[keep], C.col[keep])), shape=A.shape)
    L.sort_indices()
    return L


@nb.njit(parallel=True, **_OPTS)
def spgemm_numeric(ap, ai, ad, bp, bi, bd, cp, ci, cd, ncols, nchunks):  # pragma: no cover
    """``C = A B`` on the known pattern ``cp, ci`` of ``C`` (values into ``cd``).

    Gustavson's row-by-row product without its symbolic pass: each row chunk keeps a
    map from a column to its entry of ``C``'s row, and adds ``a_ik b_kj`` into it.
    The pattern must hold every structurally nonzero ``(i, j)`` (:func:`galerkin`).
    All index arrays unsigned.
    """
    n = ap.size - 1
    for k in nb.prange(nchunks):
        mark = np.zeros(ncols, np.uint64)
        for i in range(k * n // nchunks, (k + 1) * n // nchunks):
            for q in range(cp[i], cp[i + 1]):
                mark[ci[q]] = q
                cd[q] = 0.0
            for jj in range(ap[i], ap[i + 1]):
                a = ad[jj]
                r = ai[jj]
                for t in range(bp[r], bp[r + np.uint64(1)]):
                    cd[mark[bi[t]]] += a * bd[t]
    return cd


def warm() -> None:
    """Compile (or load from the cache) every kernel for float32 and float64 data."""
    import scipy.sparse as sp

    indptr = unsigned(np.array([0, 2, 4], np.int32))
    indices = unsigned(np.array([0, 1, 0, 1], np.int32))
    bounds = np.array([0, 1, 2], np.uint64)
    for dt in (np.float32, np.float64):
        data = np.array([2.0, -1.0, -1.0, 2.0], dt)
        x = np.ones(2, dt)
        y = np.zeros(2, dt)
        csr_matvec(indptr, indices, data, x, y, False, 2)
        csr_matvec(indptr, indices, data, x, y, True, 2)
        l1 = np.zeros(2, dt)
        l1_offblock(indptr, indices, data, bounds, l1)
        hybrid_gs(indptr, indices, data, l1, x, x.copy(), y, bounds, True, True)
        hybrid_gs(indptr, indices, data, l1, x, x.copy(), y, bounds, False, False)
        forward_residual(indptr, indices, data, indptr, indices, data, l1, x, bounds, y)
        gs_forward_residual(indptr, indices, data, x, y, y.copy())
        o = offblock(sp.csr_matrix((data, indices.view(np.int32), indptr.view(np.int32))), bounds)
        hybrid_gs_forward_residual(
            indptr, indices, data, l1, x, y, bounds, o[1], o[2], o[3], o[0], y.copy()
        )
    data = np.array([2.0, -1.0, -1.0, 2.0])
    perm = np.array([0, 2, 1, 3], np.int32)
    for dt in (np.float32, np.float64):
        symmetrize(data, perm, np.empty(4, dt))
    spgemm_numeric(indptr, indices, data, indptr, indices, data, indptr, indices,
                   np.zeros(4), 2, 2)  # fmt: skip
