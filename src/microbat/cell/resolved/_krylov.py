r"""Scalable linear solver for the Newton updates of the resolved half cell.

Every Newton update solves ``J_s y = b`` with ``J_s = R J C`` the Jacobian of the
coupled system scaled by rows (``R``: charge rows by ``1/I``, lithium rows by
``F/I``) and columns (``C``: the chain rule of the ``ln c_e`` and
``logit(c_s/c_max)`` variables). The unknowns come in four fields and the
terminal voltage: ``E = c_e``, ``P = (φ_e, φ_s, V)``, ``C = c_s``.

The solver is restarted GMRES on ``J_s`` with a block lower-triangular,
physics-based preconditioner (in the spirit of the two-stage "constrained
pressure residual" preconditioners of reservoir simulation):

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
Ruge–Stüben by default: the blocks are M-matrices with strongly jumping
coefficients — pore, carbon-binder, active material, separator). GMRES corrects
the neglected couplings (the salt's dependence on the reaction distribution, the
diffusion in ``D_C``).

The AMG hierarchies are the expensive part (their setup costs a few V-cycles'
worth of tens of cycles); they are kept across Newton iterations *and* time
steps while GMRES converges in few iterations (the operators change slowly with
the state and the step size), and rebuilt when the iteration count grows past
``rebuild_factor`` × the count right after the last setup. The Jacobian itself is
assembled fresh at every Newton iteration (cheap), so Newton converges as the
exact method; only the preconditioner is stale.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from microbat.core.errors import ConvergenceError


@dataclass
class KrylovStats:
    """Counters of the Krylov solver (for timings and the benchmark)."""

    setups: int = 0
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
        Rebuild the hierarchies when an update needs more than this factor times
        the iterations of the first solve after the last setup (and at least
        ``min_rebuild_iterations``).
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
    ) -> None:
        self.nE, self.nS, self.nA = nE, nS, nA
        self.n = 2 * nE + nS + nA + 1
        self.rtol = rtol
        self.maxiter = maxiter
        self.amg = amg
        self.rebuild_factor = rebuild_factor
        self.min_rebuild = min_rebuild_iterations
        self.stats = KrylovStats()
        self._ml: tuple[Any, Any, Any] | None = None
        self._ref_its: int | None = None
        self._dirty = False

    # slices of the fields in the unknown vector
    @property
    def _sl(self) -> tuple[slice, slice, slice]:
        nE, nS, nA = self.nE, self.nS, self.nA
        E = slice(0, nE)
        P = slice(nE, 2 * nE + nS)  # φ_e, φ_s (V handled with P, see below)
        C = slice(2 * nE + nS, 2 * nE + nS + nA)
        return E, P, C

    def invalidate(self) -> None:
        """Force a rebuild of the hierarchies at the next solve."""
        self._ml = None

    def _hierarchy(self, M: Any) -> Any:
        import pyamg

        M = M.tocsr()
        M.sort_indices()
        if self.amg == "sa":
            return pyamg.smoothed_aggregation_solver(M, symmetry="symmetric", max_coarse=500)
        return pyamg.ruge_stuben_solver(M, max_coarse=500)

    def _setup(self, Js: Any, rs: np.ndarray, cs: np.ndarray) -> None:
        """Build the three block operators from the scaled Jacobian and their AMG."""
        import scipy.sparse as sp

        t0 = time.perf_counter()
        E, P, C = self._sl
        nP = P.stop - P.start + 1
        ip = np.r_[np.arange(P.start, P.stop), self.n - 1]
        # unscale: J = R^-1 J_s C^-1
        Ju = sp.diags(1.0 / rs) @ Js @ sp.diags(1.0 / cs)
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
        self._ml = (self._hierarchy(M_E), self._hierarchy(S), self._hierarchy(M_C))
        self._flip = flip
        self.stats.setups += 1
        self.stats.setup_s += time.perf_counter() - t0
        self._ref_its = None

    def solve(self, Js: Any, b: np.ndarray, rs: np.ndarray, cs: np.ndarray) -> np.ndarray:
        """Solve ``Js y = b`` (scaled Newton system; ``rs``/``cs`` its scalings)."""
        import scipy.sparse.linalg as spla

        if self._ml is None:
            self._setup(Js, rs, cs)
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
            zE = ml_E.solve(rE / rsE, maxiter=1, cycle="V", tol=1e-30) / csE
            rC = r[C]
            rP = r[ip] - Js_PE @ zE - Js_PC @ (rC / d_C)
            zP = ml_P.solve(flip * (rP / rsP), maxiter=1, cycle="V", tol=1e-30)
            zC = ml_C.solve((rC - Js_CP @ zP) / rsC, maxiter=1, cycle="V", tol=1e-30) / csC
            z[E] = zE
            z[ip] = zP
            z[C] = zC
            return z

        Mop = spla.LinearOperator(Js.shape, apply)
        count = [0]

        def cb(_: Any) -> None:
            count[0] += 1

        y, info = spla.gmres(
            Js,
            b,
            M=Mop,
            rtol=self.rtol,
            atol=0.0,
            restart=min(self.maxiter, 60),
            maxiter=max(1, self.maxiter // 60 + 1),
            callback=cb,
            callback_type="pr_norm",
        )
        its = count[0]
        st = self.stats
        st.solves += 1
        st.iterations += its
        st.last_iterations = its
        st.max_iterations = max(st.max_iterations, its)
        if info != 0:
            self._ml = None
            raise ConvergenceError(
                f"GMRES did not reach rtol {self.rtol:g} in {its} iterations (info={info})"
            )
        if self._ref_its is None:
            self._ref_its = max(its, 1)
        elif its > max(self.min_rebuild, self.rebuild_factor * self._ref_its):
            self._ml = None  # rebuild on the next solve
        return y
