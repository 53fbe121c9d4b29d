r"""Scalable linear solver for the Newton updates of the resolved half cell.

Every Newton update solves ``J_s y = b`` with ``J_s = R J C`` the Jacobian of the
coupled system scaled by rows (``R``: charge rows by ``1/I``, lithium rows by
``F/I``) and columns (``C``: the chain rule of the ``ln c_e`` and
``logit(c_s/c_max)`` variables). The unknowns come in four fields and the
terminal voltage: ``E = c_e``, ``P = (φ_e, φ_s, V)``, ``C = c_s``.

The solver is right-preconditioned flexible GMRES (:func:`fgmres`) on ``J_s`` with a
block lower-triangular, physics-based preconditioner (in the spirit of the
two-stage "constrained pressure residual" preconditioners of reservoir simulation):

1. electrolyte salt: ``z_E = M_E^{-1} r_E``, with ``M_E`` the salt block
   (storage ``ε V/Δt`` + the diffusion Laplacian);
2. potentials: ``z_P = S^{-1}(r_P − J_PE z_E − J_PC D_C^{-1} r_C)``, where
   ``S = J_PP − J_PC D_C^{-1} J_CP`` is the potential block with the lithium
   concentration of each active voxel eliminated through the diagonal ``D_C`` of
   its block. This *local* Schur complement puts the open-circuit-potential
   feedback of the surface voxels (their "chemical capacitance" in series with the
   charge-transfer conductance) into the potential operator, which is what makes
   the coupling stiff. ``S`` is an M-matrix: the two potential Laplacians, the
   interface conductances reduced by that feedback, the Li-metal conductance as the
   only ground, and the terminal-voltage node joined to the collector layer (its
   row negated to make the block symmetric);
3. lithium in the solid: ``z_C = M_C^{-1}(r_C − J_CP z_P)``.

Each block inverse is one V-cycle of algebraic multigrid (PyAMG, classical
Ruge–Stüben: the blocks are M-matrices with strongly jumping coefficients — pore,
carbon-binder, active material, separator), wrapped for the potential and salt
blocks in a Galerkin correction on their near-null modes (uniform shifts;
:class:`_CoarseSpace`). GMRES corrects the neglected couplings (the salt's
dependence on the reaction distribution, the diffusion in ``D_C``).

The AMG setups (C/F splitting, interpolation) are the expensive part; they are
kept across Newton iterations and time steps. At the first Newton update of every
step, the operators of all levels of a block whose operator changed by more than
``refresh_change`` of a row are recomputed as Galerkin products from the current
Jacobian (:meth:`BlockAMGSolver._refresh`). When the GMRES iterations per decade
of residual reduction grow past ``rebuild_factor`` × those right after the last
setup, every block is refreshed so at the next solve, and a full setup follows only
if the solve after that refresh is still as slow (the late, saturating phase of a
64³ 3C graphite charge had set the hierarchies up again at nearly every step). The
V-cycles run in single precision (:func:`_prepare_cycle`). The Jacobian itself is
assembled fresh at every Newton iteration, so Newton converges as the exact
method; only the preconditioner lags within a step.

Threads (:mod:`._krylov_kernels`, Numba): with more than one thread
(:func:`microbat.core.threads.set_threads`), the V-cycle levels of at least
:data:`CYCLE_MIN_NNZ` entries smooth by the ℓ1 hybrid Gauss–Seidel of Baker,
Falgout, Kolev & Yang (SIAM J. Sci. Comput. 33 (2011) 2864, doi:10.1137/100798806:
contiguous row blocks swept in parallel, couplings between blocks from the previous
iterate, the diagonal augmented by their ℓ1 norm), and their products and GMRES's
products with the Jacobian run on all threads; on one thread the cycle is the serial
one (PyAMG's Gauss–Seidel, SciPy's products), operation for operation. Measured on
the shared 2-core machine with both cores free (docs/validation/resolved.md §6.3):
the Newton solve of a 64³ 3C charge 1.10× faster than on one thread (7 GMRES
iterations either way), a 48³ one unchanged; two threads stream only 1.3× the
memory bandwidth of one there, and a V-cycle is bound by it. While another process
holds a core, two threads are 10–30 % slower than one. The refreshes' Galerkin
products run on patterns kept from the first one (:func:`galerkin`, 2.5–6× faster
than SciPy's). With both, the 64³ 3C charge of ``benchmarks/bench_charge.py`` took
163.5 s instead of 177.9 s (load 1.0–1.5).

Fused residuals: the block operators are symmetric and their coarse operators are
``Pᵀ A P`` (``R = Pᵀ`` in PyAMG's Ruge–Stüben hierarchies), symmetric but for the
round-off of the products, so the cycle's copies are made exactly symmetric
(:func:`_cycle_operator`). On such a level the forward sweep from zero forms its
residual as it goes (:data:`FUSED_RESIDUAL`; ``r_j = −Σ_{i>j} a_ij x_i`` scattered
from row ``i`` as soon as ``x_i`` is known), reading the operator once instead of 1.5
times; the serial cycle is unchanged bit for bit. Measured (docs/validation/
resolved.md §6.3): 1.15–1.19× per GMRES iteration on the 48³ and 64³ Newton systems,
on one and on two threads (load 0.5–0.6); the 64³ 3C charge 158–162 → 141–157 s
wall (three runs each, load 0.7–1.35), the 48³ one 60.8 → 50.8 s (load 0.6–1.1), same
steps and GMRES iterations within 0.4 %.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from microbat.core.errors import ConvergenceError
from microbat.core.threads import single_threaded_blas

#: Entries of a level's operator from which its V-cycle work runs on all threads
#: (:func:`_vcycle`); smaller levels run serially, in PyAMG's and SciPy's kernels.
#: Also the threshold of the threaded products with the Jacobian in GMRES. Measured
#: on the shared 2-core machine with both cores free (docs/validation/resolved.md,
#: §6.3), a 64³ charge's Newton solve against the serial one, two rounds: 1.07× and
#: 1.13× faster with a threshold of 2²⁰, 1.10× and 1.10× with 2²¹, 1.05× and 1.04×
#: with 2²² entries; a 48³ one 1.03–1.04× at best; while another process held a
#: core, 10–30 % slower (the larger threshold threads less of it). Two threads stream
#: only 1.3–1.4× the memory bandwidth of one on that machine (a triad over 128 MB:
#: 22–31 → 29–42 GB/s), and these kernels are bound by it.
CYCLE_MIN_NNZ = 1 << 21

#: Row blocks (and product chunks) per thread of the threaded kernels: handed out to
#: the threads as they come free, so that a thread held back by another process
#: leaves its blocks to the others. One thread sweeps one block (Gauss–Seidel).
BLOCKS_PER_THREAD = 8


#: Smooth the threaded levels by the ℓ1 hybrid Gauss–Seidel of the kernels (else by
#: PyAMG's serial Gauss–Seidel, with only the products on all threads).
THREADED_SWEEPS = True

#: On the levels whose cycle operator is exactly symmetric (:func:`_prepare_cycle`),
#: form the residual of the forward sweep during the sweep
#: (:func:`~._krylov_kernels.gs_forward_residual`; :func:`~._krylov_kernels.
#: hybrid_gs_forward_residual` on the threaded levels), else in a second pass.
FUSED_RESIDUAL = True

#: A level operator whose largest asymmetry ``|a_ij − a_ji|`` is at most this fraction
#: of its largest entry is symmetric but for the round-off of its Galerkin product
#: ``Pᵀ A P`` (PyAMG's and :func:`galerkin`'s sums run in different orders for
#: ``ij`` and ``ji``: 2e-17 to 8e-17 measured); the cycle's copy is made exactly
#: symmetric, ``(a_ij + a_ji) / 2``.
SYMMETRY_RTOL = 1e-12


def _nblocks(nt: int) -> int:
    return 1 if nt <= 1 else BLOCKS_PER_THREAD * nt


def _kernels() -> Any:
    """The Numba kernels (:mod:`._krylov_kernels`), loaded on first use."""
    from microbat.cell.resolved import _krylov_kernels

    return _krylov_kernels


def _num_threads() -> int:
    """Threads the parallel kernels of this thread would use now (1 without Numba)."""
    import sys

    if "numba" not in sys.modules:
        return 1
    import numba

    return int(numba.get_num_threads())


class _LevelOps:
    """One level's operators for :func:`_vcycle`, in the precision of the cycle.

    ``A`` (sorted indices), ``P`` and ``R`` as SciPy CSR matrices; ``symmetric``:
    ``A`` equals its transpose exactly (then the forward sweep forms its residual as
    it goes, :data:`FUSED_RESIDUAL`); for the serial cycle the strict upper triangle
    ``U`` of ``A`` (made on first use); for the threaded one also, per number of
    threads, the row blocks, their ℓ1 terms and the couplings left of each block, or
    outside it (:meth:`blocks`).
    """

    def __init__(self, A: Any, P: Any, R: Any, symmetric: bool = False) -> None:
        self.A, self.P, self.R = A, P, R
        self.symmetric = symmetric
        # every row has a diagonal entry: the residual shortcuts of the cycle hold
        self.full_diagonal = bool(np.all(A.diagonal() != 0))
        self.parallel = A.nnz >= CYCLE_MIN_NNZ
        self._U: Any = None
        self._blocks: dict[tuple[int, bool], tuple[np.ndarray, np.ndarray, Any]] = {}

    @property
    def U(self) -> Any:
        if self._U is None:
            import scipy.sparse as sp

            self._U = sp.triu(self.A, k=1, format="csr")
        return self._U

    def csr(self, M: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        K = _kernels()
        return K.unsigned(M.indptr), K.unsigned(M.indices), M.data

    def blocks(self, nt: int) -> tuple[np.ndarray, np.ndarray, Any]:
        """Row blocks for ``nt`` threads, their ℓ1 terms and off-block couplings.

        The couplings left of each block (:func:`~._krylov_kernels.lower_offblock`)
        or, for a symmetric ``A`` with :data:`FUSED_RESIDUAL`, all of those outside
        it (:func:`~._krylov_kernels.offblock`); :func:`~._krylov_kernels.l1_offblock`.
        """
        fused = self.symmetric and FUSED_RESIDUAL
        got = self._blocks.get((nt, fused))
        if got is None:
            K = _kernels()
            ip, ix, data = self.csr(self.A)
            bounds = K.row_blocks(self.A.indptr, _nblocks(nt))
            l1 = K.l1_offblock(ip, ix, data, bounds, np.empty(self.A.shape[0], data.dtype))
            off = K.offblock(self.A, bounds) if fused else K.lower_offblock(self.A, bounds)
            got = self._blocks[(nt, fused)] = (bounds, l1, off)
        return got


def _prepare_cycle(ml: Any, precision: Any = np.float32) -> None:
    """Prepare a hierarchy for :func:`_vcycle`.

    LU of the coarsest operator (exact: the potential block is nearly singular; dense
    up to 2 000 rows), in double precision, and copies of every other level's
    operator (made exactly symmetric where it is so but for round-off:
    :func:`_cycle_operator`), interpolation and restriction in ``precision``
    (:class:`_LevelOps`).
    The cycle is a preconditioner
    inside flexible GMRES, whose products with the Jacobian stay in double
    precision: single precision halves the bytes a sparse product or a smoothing
    sweep reads, and these kernels are limited by memory bandwidth (a 64³ residual
    product 0.76 instead of 1.17 ms). The Galerkin products and the LU stay in double
    precision: the potential block is grounded by entries ~1e-7 of its diagonal.
    """
    A = ml.levels[-1].A
    if A.shape[0] <= 2000:
        # dense LU: a few ms for PyAMG's ≤ 500 coarse rows, where SuperLU's symbolic
        # analysis took 12 ms (three blocks refreshed every step)
        import scipy.linalg as sla

        lu = sla.lu_factor(A.toarray(), check_finite=False)
        ml._mb_lu = lambda b: sla.lu_solve(lu, b, check_finite=False)
    else:
        import scipy.sparse.linalg as spla

        ml._mb_lu = spla.splu(A.tocsc()).solve

    ops = []
    for lv in ml.levels[:-1]:
        Ak, symmetric = _cycle_operator(lv, precision)
        # P and R do not change in a refresh: their copies stay on the level (and
        # on the levels of its Galerkin copies)
        PR = lv.__dict__.get("_mb_PR")
        if PR is None or PR[0].dtype != precision:
            PR = lv._mb_PR = (lv.P.tocsr().astype(precision), lv.R.tocsr().astype(precision))
        ops.append(_LevelOps(Ak, PR[0], PR[1], symmetric))
    ml._mb_ops = ops
    ml._mb_dtype = np.dtype(precision)


def _cycle_operator(lv: Any, precision: Any) -> tuple[Any, bool]:
    """A level's operator in ``precision`` (sorted), and whether it is exactly symmetric.

    The finest operators are symmetrised by construction (:meth:`BlockAMGSolver._blocks`)
    and their coarse ones are ``Pᵀ A P`` (classical AMG with ``R = Pᵀ``), symmetric
    but for the round-off of the product's sums (:data:`SYMMETRY_RTOL`): those are
    made exactly symmetric in the copy. The permutation of the entries under
    transposition is found once per pattern and kept on the level (and on the levels
    of its Galerkin copies); a nonsymmetric pattern or operator is left as it is.
    """
    import scipy.sparse as sp

    A = lv.A.tocsr()
    if not A.has_sorted_indices:
        A = A.copy()
        A.sort_indices()
    kept = lv.__dict__.get("_mb_T")
    if kept is None or not (
        np.array_equal(kept[0], A.indptr) and np.array_equal(kept[1], A.indices)
    ):
        num = sp.csr_matrix(
            (np.arange(1, A.nnz + 1, dtype=np.float64), A.indices, A.indptr), shape=A.shape
        )
        T = num.T.tocsr()
        T.sort_indices()
        perm = None
        if np.array_equal(T.indptr, A.indptr) and np.array_equal(T.indices, A.indices):
            perm = (T.data - 1).astype(np.int32 if A.nnz < 2**31 else np.int64)
        kept = lv._mb_T = (A.indptr.copy(), A.indices.copy(), perm)
    perm = kept[2]
    if perm is not None:
        data = np.empty(A.nnz, precision)
        asym, amax = _kernels().symmetrize(A.data.astype(np.float64, copy=False), perm, data)
        if asym <= SYMMETRY_RTOL * amax:
            M = sp.csr_matrix((data, A.indices.copy(), A.indptr.copy()), shape=A.shape)
            M.has_sorted_indices = True
            return M, True
    M = A.astype(precision)
    M.sort_indices()
    return M, False


def _product_pattern(A: Any, B: Any) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """The structural pattern of ``A B``: ``(indptr, indices, shape)``, sorted indices.

    From ``|A| |B|``: no entry cancels, where SciPy's product drops exact zeros.
    ``B`` may itself be such a pattern.
    """
    import scipy.sparse as sp

    Aa = sp.csr_matrix((np.abs(A.data), A.indices, A.indptr), shape=A.shape)
    if isinstance(B, tuple):
        Ba = sp.csr_matrix((np.ones(B[1].size), B[1], B[0]), shape=B[2])
    else:
        Ba = sp.csr_matrix((np.abs(B.data), B.indices, B.indptr), shape=B.shape)
    C = (Aa @ Ba).tocsr()
    C.sort_indices()
    return C.indptr, C.indices, C.shape


def _numeric_product(K: Any, A: Any, B: Any, pattern: tuple, nt: int) -> Any:
    """``A B`` on ``pattern`` (:func:`_product_pattern`), in double precision."""
    import scipy.sparse as sp

    indptr, indices, shape = pattern
    data = np.empty(indices.size)
    ui = K.unsigned
    K.spgemm_numeric(
        ui(A.indptr), ui(A.indices), A.data.astype(np.float64, copy=False),
        ui(B.indptr), ui(B.indices), B.data.astype(np.float64, copy=False),
        ui(indptr), ui(indices), data, shape[1], _nblocks(nt),
    )  # fmt: skip
    C = sp.csr_matrix((data, indices, indptr), shape=shape)
    C.has_sorted_indices = True
    return C


def galerkin(ml: Any, A: Any) -> Any:
    """:func:`microbat.fv.solvers.galerkin_copy` on kept product patterns.

    The hierarchy ``ml`` with the new finest operator ``A`` (same pattern as its
    own) and every coarse operator ``R_k A_k P_k`` recomputed. The patterns of
    ``A_k P_k`` and ``R_k (A_k P_k)`` are found once per hierarchy and kept on its
    levels (and on those of its copies); a refresh is then the numeric products
    alone (:func:`~._krylov_kernels.spgemm_numeric`, on all threads), without SciPy's
    symbolic pass, allocation and sort.
    """
    import copy

    K = _kernels()
    nt = _num_threads()
    mc = copy.copy(ml)
    mc.levels = [copy.copy(lv) for lv in ml.levels]
    A = A.tocsr()
    A.sort_indices()
    mc.levels[0].A = A
    for i in range(len(mc.levels) - 1):
        src, lv = ml.levels[i], mc.levels[i]
        Ak = lv.A
        pats = src.__dict__.get("_mb_rap")
        if pats is None or not (
            pats[0] is Ak.indices
            or (np.array_equal(pats[1], Ak.indptr) and np.array_equal(pats[0], Ak.indices))
        ):
            AP = _product_pattern(Ak, lv.P)
            pats = (Ak.indices, Ak.indptr, AP, _product_pattern(lv.R, AP))
        src._mb_rap = lv._mb_rap = pats
        AP = _numeric_product(K, Ak, lv.P, pats[2], nt)
        C = _numeric_product(K, lv.R, AP, pats[3], nt)
        mc.levels[i + 1].A = C
    return mc


def _change(A: Any, M: Any) -> float:
    """Largest change of a row from ``A`` to ``M``, relative to its diagonal.

    ``max_i Σ_j |M_ij − A_ij| / |M_ii|``; on one pattern (the salt and lithium blocks,
    gathered by :class:`_Sub`) a difference of the data arrays.
    """
    d = np.abs(M.diagonal())
    same = A.indices is M.indices or (
        A.nnz == M.nnz
        and np.array_equal(A.indptr, M.indptr)
        and np.array_equal(A.indices, M.indices)
    )
    if same and np.all(np.diff(M.indptr) > 0):
        rows = np.add.reduceat(np.abs(M.data - A.data), M.indptr[:-1])
    else:
        rows = np.asarray(abs(M - A).sum(axis=1)).ravel()
    return float(np.max(rows / np.maximum(d, 1e-300)))


def _vcycle(ml: Any, b: np.ndarray) -> np.ndarray:
    """One V-cycle of a PyAMG hierarchy from a zero guess (prepared by :func:`_prepare_cycle`).

    The cycle of ``ml.solve(b, maxiter=1)`` with one forward Gauss–Seidel sweep
    before and one backward sweep after the coarse correction, without its two
    residual norms on the finest level (a third of the cost of a cheap cycle), with
    the exact LU of the coarsest operator, in the precision of the prepared copies.
    On a level of at least :data:`CYCLE_MIN_NNZ` entries, with more than one thread,
    the sweeps are the ℓ1 hybrid Gauss–Seidel of the Numba kernels
    (:data:`BLOCKS_PER_THREAD` row blocks per thread; :data:`THREADED_SWEEPS`) and the
    products run on all threads; with one thread the cycle is the serial one. On an
    exactly symmetric level the forward sweep forms its residual in the same pass
    (:data:`FUSED_RESIDUAL`). Returns a double-precision vector.
    """
    nt = _num_threads()
    if nt == 1:
        return _cycle(ml, b, 1, None)
    K = _kernels()
    with K.dynamic():
        return _cycle(ml, b, nt, K)


def _cycle(ml: Any, b: np.ndarray, nt: int, K: Any) -> np.ndarray:
    """The V-cycle of :func:`_vcycle` on ``nt`` threads (``K``: the kernels, or None)."""
    from pyamg.amg_core import gauss_seidel

    ops: list[_LevelOps] = ml._mb_ops
    dt = ml._mb_dtype
    nch = _nblocks(nt)
    xs: list[np.ndarray] = []
    bs: list[np.ndarray] = [np.asarray(b, dtype=dt)]
    for op in ops:
        A, R = op.A, op.R
        bk = bs[-1]
        x = np.zeros_like(bk)
        if K is not None and op.parallel and not THREADED_SWEEPS:
            gauss_seidel(A.indptr, A.indices, A.data, x, bk, 0, x.size, 1)
            r = np.empty_like(bk)
            if op.full_diagonal:
                np.negative(K.csr_matvec(*op.csr(op.U), x, r, False, nch), out=r)
            else:
                np.subtract(bk, K.csr_matvec(*op.csr(A), x, r, False, nch), out=r)
            bc = K.csr_matvec(*op.csr(R), r, np.empty(R.shape[0], dt), False, nch)
        elif K is not None and op.parallel and op.symmetric and FUSED_RESIDUAL:
            # the sweep forms its residual as it goes; then the off-block couplings
            bounds, l1, (orows, opp, oix, odata) = op.blocks(nt)
            r = np.empty_like(bk)
            K.hybrid_gs_forward_residual(
                *op.csr(A), l1, x, bk, bounds, opp, oix, odata, orows, r
            )  # fmt: skip
            rip, rix, rdata = op.csr(R)
            bc = K.csr_matvec(rip, rix, rdata, r, np.empty(R.shape[0], dt), False, nch)
        elif K is not None and op.parallel:
            ip, ix, data = op.csr(A)
            bounds, l1, Lo = op.blocks(nt)
            K.hybrid_gs(ip, ix, data, l1, x, x, bk, bounds, True, True)
            r = np.empty_like(bk)
            if op.full_diagonal:
                # what the sweep left: the couplings after the diagonal and to the
                # blocks before, and the ℓ1 terms (kernels.forward_residual)
                K.forward_residual(*op.csr(op.U), *op.csr(Lo), l1, x, bounds, r)
            else:
                np.subtract(bk, K.csr_matvec(ip, ix, data, x, r, False, nch), out=r)
            rip, rix, rdata = op.csr(R)
            bc = K.csr_matvec(rip, rix, rdata, r, np.empty(R.shape[0], dt), False, nch)
        elif op.symmetric and FUSED_RESIDUAL:
            # PyAMG's sweep and −U x in one pass over A (kernels.gs_forward_residual)
            r = np.empty_like(bk)
            _kernels().gs_forward_residual(*op.csr(A), x, bk, r)
            bc = R @ r
        else:
            gauss_seidel(A.indptr, A.indices, A.data, x, bk, 0, x.size, 1)
            # after a forward sweep from zero, row i of b − A x is −Σ_{j>i} a_ij x_j:
            # the residual is −U x with U the strict upper triangle (half the product)
            bc = -(R @ (op.U @ x)) if op.full_diagonal else R @ (bk - A @ x)
        xs.append(x)
        bs.append(bc)
    xc = ml._mb_lu(bs[-1].astype(np.float64)).astype(dt)
    for lvl in range(len(ops) - 1, -1, -1):
        op = ops[lvl]
        A, P = op.A, op.P
        x = xs[lvl]
        if K is not None and op.parallel and not THREADED_SWEEPS:
            K.csr_matvec(*op.csr(P), xc, x, True, nch)
            gauss_seidel(A.indptr, A.indices, A.data, x, bs[lvl], x.size - 1, -1, -1)
        elif K is not None and op.parallel:
            pip, pix, pdata = op.csr(P)
            K.csr_matvec(pip, pix, pdata, xc, x, True, nch)
            ip, ix, data = op.csr(A)
            bounds, l1, _ = op.blocks(nt)
            K.hybrid_gs(ip, ix, data, l1, x, x.copy(), bs[lvl], bounds, False, False)
        else:
            x += P @ xc
            gauss_seidel(A.indptr, A.indices, A.data, x, bs[lvl], x.size - 1, -1, -1)
        xc = x
    return xc.astype(np.float64)


class _Threaded:
    """A CSR matrix whose products ``M @ x`` run on all threads when it is large.

    The products of GMRES with the Jacobian and of the preconditioner with its
    off-diagonal blocks (:meth:`BlockAMGSolver._solve`); below
    :data:`CYCLE_MIN_NNZ` entries, or on one thread, SciPy's product.
    """

    def __init__(self, M: Any) -> None:
        self.M = M
        self.shape = M.shape

    def __matmul__(self, x: np.ndarray) -> np.ndarray:
        M = self.M
        if M.nnz < CYCLE_MIN_NNZ or x.ndim != 1 or _num_threads() == 1:
            return M @ x
        K = _kernels()
        dt = np.result_type(M.dtype, x.dtype)
        data = M.data if M.dtype == dt else M.data.astype(dt)
        xv = np.ascontiguousarray(x, dtype=dt)
        y = np.empty(M.shape[0], dt)
        ip, ix = K.unsigned(M.indptr), K.unsigned(M.indices)
        with K.dynamic():
            return K.csr_matvec(ip, ix, data, xv, y, False, _nblocks(_num_threads()))


class _Sub:
    """Where the entries of a submatrix sit in the data of a CSR matrix of fixed pattern.

    Built once from the pattern (a matrix of entry numbers, sliced by SciPy); a
    submatrix of any matrix on that pattern is then one gather of its data, instead
    of SciPy's row and column indexing at every Newton update (which copies and
    re-indexes the pattern each time). With ``symmetric=True`` it also keeps the
    permutation of its entries under transposition, when the submatrix's pattern is
    symmetric, so ``(M + Mᵀ)/2`` is one gather too.
    """

    def __init__(self, A: Any, rows: Any, cols: Any, *, symmetric: bool = False) -> None:
        import scipy.sparse as sp

        T = sp.csr_matrix(
            (np.arange(1, A.nnz + 1, dtype=np.float64), A.indices, A.indptr), shape=A.shape
        )
        S = T[rows][:, cols].tocsr()
        S.sort_indices()
        self.pos = S.data.astype(np.int64) - 1
        self.indices, self.indptr, self.shape = S.indices, S.indptr, S.shape
        self.perm: np.ndarray | None = None
        if symmetric and S.shape[0] == S.shape[1]:
            Sn = sp.csr_matrix(
                (np.arange(1, S.nnz + 1, dtype=np.float64), S.indices, S.indptr), shape=S.shape
            )
            St = Sn.T.tocsr()
            St.sort_indices()
            if np.array_equal(St.indptr, S.indptr) and np.array_equal(St.indices, S.indices):
                self.perm = St.data.astype(np.int64) - 1

    def _csr(self, data: np.ndarray) -> Any:
        import scipy.sparse as sp

        M = sp.csr_matrix((data, self.indices, self.indptr), shape=self.shape)
        M.has_sorted_indices = True
        return M

    def __call__(self, A: Any) -> Any:
        """The submatrix of ``A`` (same pattern as the one this was built for)."""
        return self._csr(A.data[self.pos])

    def symmetric_part(self, A: Any) -> Any:
        """``(M + Mᵀ) / 2`` of the submatrix ``M`` of ``A``."""
        d = A.data[self.pos]
        if self.perm is None:
            M = self._csr(d)
            M = (0.5 * (M + M.T)).tocsr()
            M.sort_indices()
            return M
        sym = d[self.perm]
        sym += d
        sym *= 0.5
        return self._csr(sym)


def schur_reference(solver: BlockAMGSolver, Ju: Any) -> Any:
    """``(S + Sᵀ)/2`` of the Jacobian ``Ju`` by SciPy's sparse algebra on the blocks.

    The construction :class:`_Schur` reproduces bit for bit on a kept pattern: the
    reference of its test (``tests/resolved/test_kept_patterns.py``) and benchmark
    (``benchmarks/bench_kept_patterns.py``).
    """
    import scipy.sparse as sp

    sub = solver._subs(Ju)
    d_C = sub["CC"](Ju).diagonal()
    S = sub["PP"](Ju) - sub["PC"](Ju) @ sp.diags(1.0 / d_C) @ sub["CP"](Ju)
    flip = np.ones(S.shape[0])
    flip[-1] = -1.0
    S = sp.diags(flip) @ S
    S = (0.5 * (S + S.T)).tocsr()
    S.sort_indices()
    return S


class _Schur:
    """The symmetrised Schur complement of the potential block on a kept pattern.

    ``S = F (J_PP − J_PC diag(1/d_C) J_CP)``, ``F`` flipping the last (terminal
    voltage) row, and ``(S + Sᵀ)/2`` (see :class:`BlockAMGSolver`). Its pattern is
    structural, fixed by the Jacobian's: the product pattern of ``J_PC J_CP``
    (:func:`_product_pattern`) united with ``J_PP``'s and transposed onto itself.
    It is found once, with the slots of ``J_PP``'s and the product's entries in it
    and the permutation of its entries under transposition; each call is then the
    numeric product (:func:`~._krylov_kernels.spgemm_numeric`), a few gathers and
    one scatter, instead of SciPy's products, sums, transpose and sort. The values
    are SciPy's bit for bit (the same products, summed in the same order); an entry
    SciPy would drop as an exact zero is kept as a stored zero (none met in runs).
    """

    def __init__(self, PP: _Sub, PC: _Sub, CP: _Sub, CC: _Sub) -> None:
        import scipy.sparse as sp

        n = PP.shape[0]
        self.PP, self.PC, self.CP, self.CC = PP, PC, CP, CC
        # where J_CC's diagonal sits in J's data (None: a row without one, then
        # SciPy's ``diagonal`` gives its zero)
        rc = np.repeat(np.arange(CC.shape[0]), np.diff(CC.indptr))
        on = rc == CC.indices
        self.d_pos = CC.pos[on] if np.array_equal(rc[on], np.arange(CC.shape[0])) else None

        def ones(m: Any) -> Any:
            return sp.csr_matrix((np.ones(m.indices.size), m.indices, m.indptr), shape=m.shape)

        self.X = _product_pattern(ones(PC), ones(CP))
        T = ones(PP) + sp.csr_matrix((np.ones(self.X[1].size), self.X[1], self.X[0]), shape=(n, n))
        U = (T + T.T).tocsr()
        U.sort_indices()
        self.indptr, self.indices, self.shape = U.indptr, U.indices, U.shape
        keys = np.repeat(np.arange(n, dtype=np.int64), np.diff(U.indptr)) * n + U.indices

        def slots(indptr: np.ndarray, indices: np.ndarray, transpose: bool = False) -> np.ndarray:
            r = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
            c = indices.astype(np.int64)
            return np.searchsorted(keys, c * n + r if transpose else r * n + c)

        # NumPy's fancy indexing converts other index types to intp at every call
        s_PP = slots(PP.indptr, PP.indices)
        # J_PP's entries are most of the pattern: every slot gathers from J's data
        # (a J_PP entry's own, or any, later zeroed), instead of zeros and a scatter
        self.from_J = np.zeros(U.nnz, np.intp)
        self.from_J[s_PP] = PP.pos
        free = np.ones(U.nnz, bool)
        free[s_PP] = False
        self.not_PP = np.flatnonzero(free).astype(np.intp)
        self.s_X = slots(self.X[0], self.X[1]).astype(np.intp)
        self.perm = slots(U.indptr, U.indices, transpose=True).astype(np.intp)
        self.last = slice(int(U.indptr[-2]), int(U.indptr[-1]))
        # J_PC's entries reversed within each row: the product's sums then run in the
        # order of SciPy's (whose product of J_PC with a diagonal lists each row in
        # reverse), so the values are SciPy's bit for bit, not only to round-off
        r = np.repeat(np.arange(n, dtype=np.int64), np.diff(PC.indptr))
        rev = np.arange(PC.indices.size)[::-1][np.argsort(r[::-1], kind="stable")]
        self.pc_pos, self.pc_indices = PC.pos[rev].astype(np.intp), PC.indices[rev]

    def __call__(self, J: Any, nt: int) -> Any:
        """``(S + Sᵀ)/2`` of the Jacobian ``J`` (the pattern the maps were built on)."""
        import scipy.sparse as sp

        d_C = J.data[self.d_pos] if self.d_pos is not None else self.CC(J).diagonal()
        K = _kernels()
        ui = K.unsigned
        PC, CP = self.PC, self.CP
        pc = J.data[self.pc_pos] * (1.0 / d_C)[self.pc_indices]
        x = np.empty(self.X[1].size)
        K.spgemm_numeric(
            ui(PC.indptr), ui(self.pc_indices), pc, ui(CP.indptr), ui(CP.indices), J.data[CP.pos],
            ui(self.X[0]), ui(self.X[1]), x, self.shape[1], _nblocks(nt),
        )  # fmt: skip
        s = J.data[self.from_J]
        s[self.not_PP] = 0.0
        s[self.s_X] -= x
        s[self.last] *= -1.0
        sym = s[self.perm]
        sym += s
        sym *= 0.5
        S = sp.csr_matrix((sym, self.indices, self.indptr), shape=self.shape)
        # the kept arrays themselves (SciPy's constructor keeps views of them), so
        # identity checks of the pattern (:func:`galerkin`) hold from call to call
        S.indices, S.indptr = self.indices, self.indptr
        S.has_sorted_indices = True
        return S


class _CoarseSpace:
    """Galerkin correction on indicator vectors: ``W[:, k]`` is 1 on ``bounds[k]:bounds[k+1]``.

    Keeps ``M W`` and ``(Wᵀ M W)⁻¹``; products with ``W`` and ``Wᵀ`` are segment
    fills and sums.
    """

    def __init__(self, M: Any, bounds: list[int]) -> None:
        n = M.shape[0]
        self.bounds = bounds
        W = np.zeros((n, len(bounds) - 1))
        for k in range(len(bounds) - 1):
            W[bounds[k] : bounds[k + 1], k] = 1.0
        self.MWt = np.ascontiguousarray(np.asarray(M @ W).T)
        self.Gi = np.linalg.inv(W.T @ self.MWt.T)

    def wt(self, r: np.ndarray) -> np.ndarray:
        b = self.bounds
        return np.array([r[b[k] : b[k + 1]].sum() for k in range(len(b) - 1)])

    def w(self, c: np.ndarray) -> np.ndarray:
        return np.repeat(c, np.diff(self.bounds))


def _deflated_vcycle(ml: Any, space: _CoarseSpace, r: np.ndarray) -> np.ndarray:
    """Coarse correction on ``W``, V-cycle, coarse correction (symmetric for SPD ``M``)."""
    c = space.Gi @ space.wt(r)
    z = _vcycle(ml, r - c @ space.MWt)  # M W c, without a product with M
    z += space.w(c)
    z += space.w(space.Gi @ (space.wt(r) - space.MWt @ z))
    return z


def fgmres(
    A: Any,
    b: np.ndarray,
    M: Any,
    *,
    rtol: float,
    maxiter: int = 300,
    restart: int = 40,
    work: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, int, bool]:
    """Right-preconditioned (flexible) restarted GMRES from a zero guess.

    Minimises the *true* residual ``‖b − A x‖`` over ``x ∈ M(Krylov space)`` and
    stops when it is below ``rtol ‖b‖``. SciPy's ``gmres`` preconditions on the left:
    it tests the preconditioned residual, applies the preconditioner twice more per
    solve (to ``b`` and to each restart residual), and restarts when the two
    residuals disagree; with ~10 iterations per Newton update that was a third more
    preconditioner applications. Orthogonalisation is classical Gram–Schmidt (two
    matrix–vector products with the basis, as BLAS calls), repeated when
    the vector lost more than 30 % of its norm (Daniel–Gragg–Kaufman–Stewart).

    ``work`` is a list kept by the caller, where the two bases (``V``: ``restart + 1``
    rows, ``Z``: ``restart`` rows, each a contiguous 2D array for BLAS products) are
    allocated on the first call and reused after: fresh basis vectors on every solve
    cost page faults (the kernel zeroes each new page), a few ms per vector at 64³.

    Returns
    -------
    x, iterations, converged
    """
    n = b.size
    bnorm = float(np.linalg.norm(b))
    x = np.zeros(n)
    if bnorm == 0.0:
        return x, 0, True
    target = rtol * bnorm
    r = b.copy()
    its = 0
    while True:
        beta = float(np.linalg.norm(r))
        if beta <= target:
            return x, its, True
        if its >= maxiter:
            return x, its, False
        m = min(restart, maxiter - its)
        if work is None:
            work = []
        if len(work) != 2 or work[0].shape[0] < m + 1 or work[0].shape[1] != n:
            work[:] = [np.empty((m + 1, n)), np.empty((m, n))]
        V, Z = work
        H = np.zeros((m + 1, m))
        cs = np.zeros(m)
        sn = np.zeros(m)
        g = np.zeros(m + 1)
        g[0] = beta
        np.multiply(r, 1.0 / beta, out=V[0])
        j = 0
        for j in range(m):
            Z[j] = M(V[j])
            w = A @ Z[j]
            w0 = float(np.linalg.norm(w))
            Vj = V[: j + 1]
            h = Vj @ w
            w -= h @ Vj
            hn = float(np.linalg.norm(w))
            if hn < 0.7 * w0:  # lost orthogonality: a second pass (DGKS criterion)
                h2 = Vj @ w
                w -= h2 @ Vj
                h += h2
                hn = float(np.linalg.norm(w))
            H[: j + 1, j] = h
            H[j + 1, j] = hn
            if hn > 0.0:
                np.multiply(w, 1.0 / hn, out=V[j + 1])
            for k in range(j):  # earlier rotations
                a, c = H[k, j], H[k + 1, j]
                H[k, j] = cs[k] * a + sn[k] * c
                H[k + 1, j] = -sn[k] * a + cs[k] * c
            a, c = H[j, j], H[j + 1, j]
            rho = float(np.hypot(a, c))
            cs[j], sn[j] = (1.0, 0.0) if rho == 0.0 else (a / rho, c / rho)
            H[j, j] = rho
            H[j + 1, j] = 0.0
            g[j + 1] = -sn[j] * g[j]
            g[j] = cs[j] * g[j]
            its += 1
            if abs(g[j + 1]) <= target or hn == 0.0:
                break
        k = j + 1
        yk = np.linalg.solve(np.triu(H[:k, :k]), g[:k]) if k > 1 else g[:1] / H[0, 0]
        x += yk @ Z[:k]
        r = b - A @ x


@dataclass
class KrylovStats:
    """Counters of the Krylov solver (for timings and the benchmark)."""

    setups: int = 0
    refreshes: int = 0
    block_refreshes: int = 0
    setup_s: float = 0.0
    solves: int = 0
    iterations: int = 0
    last_iterations: int = 0
    max_iterations: int = 0


class BlockAMGSolver:
    """GMRES with the block-triangular AMG preconditioner described above.

    Parameters
    ----------
    nE, nS, nA : int
        Electrolyte, solid-potential and active unknowns (the field sizes).
    rtol : float
        Relative residual at which GMRES stops (inexact Newton: the outer Newton
        iteration still converges the nonlinear residual to its own tolerance).
    maxiter : int
        GMRES iterations before the update is reported as failed.
    amg : {"rs", "sa"}
        Classical (Ruge–Stüben) or smoothed-aggregation AMG for the blocks.
    rebuild_factor : float
        Refresh every block's operators when an update needs more than this factor
        times the GMRES iterations per decade of residual reduction of the first
        solve after the last setup (and more than ``min_rebuild_iterations`` / 8),
        and set the hierarchies up again when the next solve still does.
    refresh : bool
        Recompute the operators of all levels (Galerkin products, kept
        interpolation) at the first solve of every time step (:meth:`new_step`).
    single_precision : bool
        Run the V-cycles in single precision (:func:`_prepare_cycle`); GMRES, its
        products with the Jacobian and the Galerkin products stay in double.
    refresh_change : float
        With ``refresh``: only the blocks whose operator changed by more than this
        fraction of a row's diagonal (:func:`_change`) since their hierarchy's
        operators are refreshed.
    """

    def __init__(
        self,
        nE: int,
        nS: int,
        nA: int,
        *,
        rtol: float = 1e-8,
        maxiter: int = 300,
        amg: str = "rs",
        rebuild_factor: float = 2.0,
        min_rebuild_iterations: int = 12,
        refresh: bool = True,
        single_precision: bool = True,
        refresh_change: float = 0.1,
    ) -> None:
        self.nE, self.nS, self.nA = nE, nS, nA
        self.n = 2 * nE + nS + nA + 1
        self.rtol = rtol
        self.maxiter = maxiter
        self.amg = amg
        self.rebuild_factor = rebuild_factor
        self.min_rebuild = min_rebuild_iterations
        self.refresh = refresh
        self.precision = np.float32 if single_precision else np.float64
        self.refresh_change = refresh_change
        self.stats = KrylovStats()
        self._ml: tuple[Any, Any, Any] | None = None
        self._ref_its: float | None = None
        self._new_step = False
        self._force = False  # refresh every block at the next solve (iterations grew)
        self._forced = False  # such a refresh was done since the last setup
        self._work: list[np.ndarray] = []
        self._sub_key: tuple[np.ndarray, np.ndarray] | None = None  # pattern of the maps
        self._sub_maps: dict[str, _Sub] = {}
        self._schur: _Schur | None = None  # kept pattern of the Schur complement

    # slices of the fields in the unknown vector
    @property
    def _sl(self) -> tuple[slice, slice, slice]:
        nE, nS, nA = self.nE, self.nS, self.nA
        E = slice(0, nE)
        P = slice(nE, 2 * nE + nS)  # φ_e, φ_s (V handled with P, see below)
        C = slice(2 * nE + nS, 2 * nE + nS + nA)
        return E, P, C

    def new_step(self) -> None:
        """A new time step begins: refresh the operators at its first solve."""
        self._new_step = True

    def invalidate(self) -> None:
        """Force a rebuild of the hierarchies at the next solve."""
        self._ml = None

    def _hierarchy(self, M: Any) -> Any:
        import pyamg

        M = M.tocsr().copy()  # its pattern arrays may be shared (_Sub)
        M.sort_indices()
        if self.amg == "sa":
            ml = pyamg.smoothed_aggregation_solver(M, symmetry="symmetric", max_coarse=500)
        else:
            # one forward Gauss–Seidel sweep before, one backward after (PyAMG's default
            # is a symmetric sweep each side): 14 % more GMRES iterations at half the
            # smoothing cost, 12 % less time per solve (40³)
            ml = pyamg.ruge_stuben_solver(
                M,
                max_coarse=500,
                presmoother=("gauss_seidel", {"sweep": "forward"}),
                postsmoother=("gauss_seidel", {"sweep": "backward"}),
            )
        _prepare_cycle(ml, self.precision)
        return ml

    def _subs(self, J: Any) -> dict[str, _Sub]:
        """The submatrix maps of the Jacobian's pattern (rebuilt when it changes)."""
        key = self._sub_key
        if key is not None and key[0] is J.indptr and key[1] is J.indices:
            return self._sub_maps
        if key is not None and (
            np.array_equal(key[0], J.indptr) and np.array_equal(key[1], J.indices)
        ):
            self._sub_key = (J.indptr, J.indices)
            return self._sub_maps
        E, P, C = self._sl
        ip = np.r_[np.arange(P.start, P.stop), self.n - 1]
        self._schur = None  # of the new maps' pattern, built at its first use
        self._sub_maps = {
            "EE": _Sub(J, E, E, symmetric=True),
            "CC": _Sub(J, C, C, symmetric=True),
            "PP": _Sub(J, ip, ip),
            "PC": _Sub(J, ip, C),
            "CP": _Sub(J, C, ip),
            "PE": _Sub(J, ip, E),
        }
        self._sub_key = (J.indptr, J.indices)
        return self._sub_maps

    def _blocks(
        self, Js: Any, rs: np.ndarray, cs: np.ndarray, J: Any = None
    ) -> tuple[Any, Any, Any]:
        """The three (symmetrised, unscaled) block operators of the preconditioner."""
        import scipy.sparse as sp

        P = self._sl[1]
        nP = P.stop - P.start + 1
        # unscaled: J = R^-1 J_s C^-1
        Ju = J if J is not None else sp.diags(1.0 / rs) @ Js @ sp.diags(1.0 / cs)
        Ju = Ju.tocsr()
        sub = self._subs(Ju)
        M_E = sub["EE"].symmetric_part(Ju)
        M_C = sub["CC"].symmetric_part(Ju)
        if self._schur is None:
            self._schur = _Schur(sub["PP"], sub["PC"], sub["CP"], sub["CC"])
        S = self._schur(Ju, _num_threads())
        flip = np.ones(nP)
        flip[-1] = -1.0
        self._flip = flip
        return M_E, S, M_C

    def _deflation(self, S: Any, M_E: Any) -> None:
        """Coarse spaces of the potential and salt blocks (near-null modes).

        ``S`` is grounded only through the lithium-metal kinetics at the far end of
        the separator (conductance ~1e-7 of the volume conductances), so a uniform
        shift of all potentials is a near-null mode that a V-cycle reduces by only
        ~0.93 per cycle. A Galerkin correction on two vectors, φ_e and (φ_s, V)
        shifted as wholes, before and after the V-cycle removes it exactly (15
        instead of 20 GMRES iterations at 32³). The salt block is likewise grounded
        only by its storage ``ε V/Δt``, weak against diffusion once the diffusion
        length of a step exceeds the electrode: its correction is the uniform shift
        (6 % fewer iterations over a 32³ discharge).
        """
        self._defl_P = _CoarseSpace(S, [0, self.nE, S.shape[0]])
        self._defl_E = _CoarseSpace(M_E, [0, M_E.shape[0]])

    def _setup(self, Js: Any, rs: np.ndarray, cs: np.ndarray, J: Any = None) -> None:
        """Build the three block operators from the scaled Jacobian and their AMG."""
        t0 = time.perf_counter()
        blocks = self._blocks(Js, rs, cs, J)
        self._ml = tuple(self._hierarchy(M) for M in blocks)  # type: ignore[assignment]
        self._deflation(blocks[1], blocks[0])
        self.stats.setups += 1
        self.stats.setup_s += time.perf_counter() - t0
        self._ref_its = None
        self._forced = False

    def _refresh(
        self, Js: Any, rs: np.ndarray, cs: np.ndarray, J: Any = None, *, every_block: bool = False
    ) -> None:
        """New operators in the kept hierarchies (Galerkin products, same interpolation).

        The C/F splittings and interpolation of the last setup stay; each level's
        operator is recomputed as ``R A P`` from the current Jacobian. This costs about
        a quarter of a setup and gives the iteration counts of a fresh one (13–15 vs
        32–36 with stale operators, 32³), because what changes between Newton
        iterations and steps are the coefficients (Δt, reaction conductances, OCP
        slopes), not the geometry the interpolation encodes.

        The products run on patterns kept from the first refresh (:func:`galerkin`).
        A block is refreshed only where its operator changed by more than
        ``refresh_change`` (:func:`_change`): after the first steps the salt and
        potential blocks change by < 0.1 % and < 0.01 % per step, the solid lithium
        block by 10–50 % (storage ``1/Δt``, reaction terms). 48³ discharge: 27 block
        refreshes instead of 99, 1 067 instead of 1 059 GMRES iterations.
        """
        t0 = time.perf_counter()
        blocks = self._blocks(Js, rs, cs, J)
        new = []
        assert self._ml is not None
        for ml, M in zip(self._ml, blocks, strict=True):
            if not every_block and _change(ml.levels[0].A, M) <= self.refresh_change:
                new.append(ml)
                continue
            mc = galerkin(ml, M)
            _prepare_cycle(mc, self.precision)
            new.append(mc)
            self.stats.block_refreshes += 1
        self._ml = (new[0], new[1], new[2])
        self._deflation(blocks[1], blocks[0])
        self.stats.refreshes += 1
        self.stats.setup_s += time.perf_counter() - t0

    def solve(
        self,
        Js: Any,
        b: np.ndarray,
        rs: np.ndarray,
        cs: np.ndarray,
        *,
        rtol: float | None = None,
        J: Any = None,
    ) -> np.ndarray:
        """Solve ``Js y = b`` (scaled Newton system; ``rs``/``cs`` its scalings).

        ``rtol`` overrides the relative residual of this solve (the forcing term of
        an inexact Newton iteration); ``J``, the unscaled Jacobian, saves unscaling
        ``Js`` when the block operators are rebuilt.
        """
        rtol = self.rtol if rtol is None else rtol
        # BLAS only sees small dense problems here (Gram–Schmidt, the coarsest LU);
        # its thread pool spinning beside the sparse kernels costs more than it gives
        with single_threaded_blas():
            return self._solve(Js, b, rs, cs, rtol, J)

    def _solve(
        self, Js: Any, b: np.ndarray, rs: np.ndarray, cs: np.ndarray, rtol: float, J: Any
    ) -> np.ndarray:
        if self._ml is None:
            self._setup(Js, rs, cs, J)
        elif self._force:
            self._refresh(Js, rs, cs, J, every_block=True)
            self._forced = True
        elif self.refresh and self._new_step:
            self._refresh(Js, rs, cs, J)
        self._new_step = False
        self._force = False
        Js = Js.tocsr()
        E, P, C = self._sl
        ip = np.r_[np.arange(P.start, P.stop), self.n - 1]
        sub = self._subs(Js)
        Js_PE = _Threaded(sub["PE"](Js))
        Js_PC = _Threaded(sub["PC"](Js))
        Js_CP = _Threaded(sub["CP"](Js))
        d_C = sub["CC"](Js).diagonal()
        ml_E, ml_P, ml_C = self._ml
        # the potential unknowns are the slice P and the last one (V); products with
        # reciprocals instead of divisions, fused scalings
        inE, icsE = 1.0 / rs[E], 1.0 / cs[E]
        sP = self._flip / rs[ip]
        idC = 1.0 / d_C
        inC, icsC = 1.0 / rs[C], 1.0 / cs[C]

        def apply(r: np.ndarray) -> np.ndarray:
            z = np.empty_like(r)
            zE = _deflated_vcycle(ml_E, self._defl_E, r[E] * inE) * icsE
            rC = r[C]
            rP = np.concatenate((r[P], r[-1:]))
            rP -= Js_PE @ zE
            rP -= Js_PC @ (rC * idC)
            zP = _deflated_vcycle(ml_P, self._defl_P, rP * sP)
            zC = _vcycle(ml_C, (rC - Js_CP @ zP) * inC) * icsC
            z[E] = zE
            z[P] = zP[:-1]
            z[-1] = zP[-1]
            z[C] = zC
            return z

        y, its, ok = fgmres(
            _Threaded(Js),
            b,
            apply,
            rtol=rtol,
            maxiter=self.maxiter,
            restart=min(self.maxiter, 40),
            work=self._work,
        )
        info = 0 if ok else 1
        st = self.stats
        st.solves += 1
        st.iterations += its
        st.last_iterations = its
        st.max_iterations = max(st.max_iterations, its)
        if info != 0:
            self._ml = None
            raise ConvergenceError(
                f"GMRES did not reach rtol {rtol:g} in {its} iterations (info={info})"
            )
        # iterations per decade of residual reduction (solves differ in rtol)
        decades = max(1.0, -np.log10(rtol))
        rate = its / decades
        if self._ref_its is None:
            self._ref_its = max(rate, 1.0 / decades)
        elif rate > max(self.min_rebuild / 8.0, self.rebuild_factor * self._ref_its):
            # the hierarchies lag behind the operator: first recompute every block's
            # operators in the kept interpolation (a quarter of a setup); a full setup
            # only if that did not bring the iterations back
            if self._forced:
                self._ml = None  # rebuild on the next solve
            else:
                self._force = True
        else:
            self._forced = False
        return y
