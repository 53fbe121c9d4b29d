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
step the operators of all levels are recomputed as Galerkin products from the
current Jacobian (:meth:`BlockAMGSolver._refresh`), and a full setup is repeated
only when the GMRES iterations per decade of residual reduction grow past
``rebuild_factor`` × those right after the last setup. The Jacobian itself is
assembled fresh at every Newton iteration, so Newton converges as the exact
method; only the preconditioner lags within a step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from microbat.core.errors import ConvergenceError
from microbat.core.threads import single_threaded_blas


def _coarse_lu(ml: Any) -> None:
    """Sparse LU of the coarsest operator (exact: the potential block is nearly singular)."""
    import scipy.sparse.linalg as spla

    A = ml.levels[-1].A
    ml._mb_lu = spla.splu(A.tocsc()).solve


def _vcycle(ml: Any, b: np.ndarray) -> np.ndarray:
    """One V-cycle of a PyAMG hierarchy from a zero guess.

    The same cycle as ``ml.solve(b, maxiter=1)`` without its two residual norms on
    the finest level (a third of the cost of a cheap cycle), with the exact LU
    of the coarsest operator (:func:`_coarse_lu`).
    """
    levels = ml.levels
    nl = len(levels)
    xs: list[np.ndarray] = []
    bs: list[np.ndarray] = [b]
    for lvl in range(nl - 1):
        lv = levels[lvl]
        x = np.zeros_like(bs[lvl])
        lv.presmoother(lv.A, x, bs[lvl])
        xs.append(x)
        bs.append(lv.R @ (bs[lvl] - lv.A @ x))
    xc = ml._mb_lu(bs[-1])
    for lvl in range(nl - 2, -1, -1):
        lv = levels[lvl]
        x = xs[lvl]
        x += lv.P @ xc
        lv.postsmoother(lv.A, x, bs[lvl])
        xc = x
    return xc


class _Rows:
    """Rows ``offset, offset + 1, ...`` of a list of vectors.

    With the two Gram–Schmidt products; the basis is not one 2D array, so its
    vectors can be kept across solves.
    """

    def __init__(self, vecs: list[np.ndarray], offset: int) -> None:
        self.vecs = vecs
        self.offset = offset

    def __getitem__(self, i: int) -> np.ndarray:
        return self.vecs[self.offset + i]

    def __setitem__(self, i: int, v: np.ndarray) -> None:
        self.vecs[self.offset + i][:] = v

    def dot(self, k: int, w: np.ndarray) -> np.ndarray:
        return np.array([float(self[i] @ w) for i in range(k)])

    def sub(self, k: int, h: np.ndarray, w: np.ndarray) -> None:
        for i in range(k):
            w -= h[i] * self[i]


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
    matrix–vector products with the basis instead of a Python loop), repeated when
    the vector lost more than 30 % of its norm (Daniel–Gragg–Kaufman–Stewart).

    ``work`` is a list of length-``n`` vectors kept by the caller and extended here
    as needed: fresh basis vectors on every solve cost page faults (the kernel
    zeroes each new page), a few ms per vector at 64³.

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
        while len(work) < 2 * m + 1:
            work.append(np.empty(n))
        V = _Rows(work, 0)
        Z = _Rows(work, m + 1)
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
            h = V.dot(j + 1, w)
            V.sub(j + 1, h, w)
            hn = float(np.linalg.norm(w))
            if hn < 0.7 * w0:  # lost orthogonality: a second pass (DGKS criterion)
                h2 = V.dot(j + 1, w)
                V.sub(j + 1, h2, w)
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
        for i in range(k):
            x += yk[i] * Z[i]
        r = b - A @ x


@dataclass
class KrylovStats:
    """Counters of the Krylov solver (for timings and the benchmark)."""

    setups: int = 0
    refreshes: int = 0
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
        Set the hierarchies up again when an update needs more than this factor
        times the GMRES iterations per decade of residual reduction of the first
        solve after the last setup (and more than ``min_rebuild_iterations`` / 8).
    refresh : bool
        Recompute the operators of all levels (Galerkin products, kept
        interpolation) at the first solve of every time step (:meth:`new_step`).
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
    ) -> None:
        self.nE, self.nS, self.nA = nE, nS, nA
        self.n = 2 * nE + nS + nA + 1
        self.rtol = rtol
        self.maxiter = maxiter
        self.amg = amg
        self.rebuild_factor = rebuild_factor
        self.min_rebuild = min_rebuild_iterations
        self.refresh = refresh
        self.stats = KrylovStats()
        self._ml: tuple[Any, Any, Any] | None = None
        self._ref_its: float | None = None
        self._new_step = False
        self._work: list[np.ndarray] = []

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

        M = M.tocsr()
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
        _coarse_lu(ml)
        return ml

    def _blocks(
        self, Js: Any, rs: np.ndarray, cs: np.ndarray, J: Any = None
    ) -> tuple[Any, Any, Any]:
        """The three (symmetrised, unscaled) block operators of the preconditioner."""
        import scipy.sparse as sp

        E, P, C = self._sl
        nP = P.stop - P.start + 1
        ip = np.r_[np.arange(P.start, P.stop), self.n - 1]
        # unscaled: J = R^-1 J_s C^-1
        Ju = J if J is not None else sp.diags(1.0 / rs) @ Js @ sp.diags(1.0 / cs)
        Ju = Ju.tocsr()
        M_E = Ju[E, E]
        M_E = 0.5 * (M_E + M_E.T)
        M_C = Ju[C, C]
        M_C = 0.5 * (M_C + M_C.T)
        Ju_P = Ju[ip]
        J_PP = Ju_P[:, ip]
        J_PC = Ju_P[:, C]
        J_CP = Ju[C][:, ip]
        d_C = M_C.diagonal()
        S = J_PP - J_PC @ sp.diags(1.0 / d_C) @ J_CP
        flip = np.ones(nP)
        flip[-1] = -1.0
        S = sp.diags(flip) @ S
        S = 0.5 * (S + S.T)
        self._flip = flip
        out = []
        for M in (M_E, S, M_C):
            M = M.tocsr()
            M.sort_indices()
            out.append(M)
        return out[0], out[1], out[2]

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

    def _refresh(self, Js: Any, rs: np.ndarray, cs: np.ndarray, J: Any = None) -> None:
        """New operators in the kept hierarchies (Galerkin products, same interpolation).

        The C/F splittings and interpolation of the last setup stay; each level's
        operator is recomputed as ``R A P`` from the current Jacobian. This costs about
        a quarter of a setup and gives the iteration counts of a fresh one (13–15 vs
        32–36 with stale operators, 32³), because what changes between Newton
        iterations and steps are the coefficients (Δt, reaction conductances, OCP
        slopes), not the geometry the interpolation encodes.
        """
        from microbat.fv.solvers import galerkin_copy

        t0 = time.perf_counter()
        blocks = self._blocks(Js, rs, cs, J)
        new = []
        assert self._ml is not None
        for ml, M in zip(self._ml, blocks, strict=True):
            mc = galerkin_copy(ml, M)
            _coarse_lu(mc)
            new.append(mc)
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

        if self._ml is None:
            self._setup(Js, rs, cs, J)
        elif self.refresh and self._new_step:
            self._refresh(Js, rs, cs, J)
        self._new_step = False
        Js = Js.tocsr()
        E, P, C = self._sl
        ip = np.r_[np.arange(P.start, P.stop), self.n - 1]
        Js_P, Js_C = Js[ip], Js[C]
        Js_PE = Js_P[:, E]
        Js_PC = Js_P[:, C]
        Js_CP = Js_C[:, ip]
        d_C = Js_C[:, C].diagonal()
        ml_E, ml_P, ml_C = self._ml
        flip = self._flip
        rsE, csE = rs[E], cs[E]
        rsP = rs[ip]
        rsC, csC = rs[C], cs[C]

        def apply(r: np.ndarray) -> np.ndarray:
            z = np.empty_like(r)
            rE = r[E]
            zE = _deflated_vcycle(ml_E, self._defl_E, rE / rsE) / csE
            rC = r[C]
            rP = r[ip] - Js_PE @ zE - Js_PC @ (rC / d_C)
            zP = _deflated_vcycle(ml_P, self._defl_P, flip * (rP / rsP))
            zC = _vcycle(ml_C, (rC - Js_CP @ zP) / rsC) / csC
            z[E] = zE
            z[ip] = zP
            z[C] = zC
            return z

        with single_threaded_blas():
            y, its, ok = fgmres(
                Js,
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
            self._ml = None  # rebuild on the next solve
        return y
