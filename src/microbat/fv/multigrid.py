"""Matrix-free aggregation multigrid and preconditioned CG on the voxel grid.

The operator of a :class:`~microbat.fv.system.StructuredSystem` is a 7-point
graph Laplacian (plus a non-negative diagonal from Dirichlet faces and other
terms) on the voxel grid. This module solves it without assembling a matrix:

* **Coarsening.** Voxels are aggregated in blocks of 2 along the axes chosen at
  each level (semi-coarsening along the weakly coupled axes of anisotropic voxels
  is skipped), with piecewise-constant prolongation ``P``. The Galerkin product
  ``Pᵀ A P`` of a graph Laplacian under such an aggregation is again a 7-point
  graph Laplacian on the coarse grid: the conductance between two blocks is the
  sum of the fine conductances across their shared faces, and faces inside a
  block drop out of the diagonal. Voids (inactive voxels) stay voids. Every level
  is therefore as cheap to store and apply as the fine one, and the hierarchy
  costs about 1/7 of the fine level.
* **Smoothing.** Symmetric red-black Gauss–Seidel (red then black before the
  coarse correction, black then red after it).
* **Coarse correction.** Piecewise-constant aggregation under-estimates the
  energy of smooth error. The default K-cycle (Notay & Vassilevski 2008) solves
  each coarse level with two steps of flexible CG preconditioned by the next
  level, which finds the right scaling by itself; the alternative V-cycle scales
  the correction by a fixed factor ``alpha`` (over-correction, Braess 1995),
  which keeps it a fixed symmetric positive-definite preconditioner.
* **Coarsest level.** Sparse LU factorisation (SuperLU) of the assembled
  coarsest operator.

The cycle preconditions (flexible) conjugate gradients (:func:`pcg`). Vectors live on
the full grid in the chosen floating-point type (float32 halves memory traffic
and storage; inner products accumulate in float64).

References
----------
.. [1] D. Braess, "Towards algebraic multigrid for elliptic problems of second
   order", Computing 55 (1995) 379-393.
.. [2] Y. Notay, "An aggregation-based algebraic multigrid method", Electron.
   Trans. Numer. Anal. 37 (2010) 123-146.
.. [3] Y. Notay, P. S. Vassilevski, "Recursive Krylov-based multigrid cycles",
   Numer. Linear Algebra Appl. 15 (2008) 473-487.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from microbat.core.errors import InvalidInputError
from microbat.core.threads import serial_below

__all__ = ["RESIDUAL_FLOOR", "Multigrid", "PCGInfo", "pcg"]

#: :func:`pcg` counts a residual below this fraction of ``‖b‖`` (or of the initial
#: residual, if larger) as converged, and a zero residual always: far below any
#: tolerance, before products of residual-sized numbers underflow.
RESIDUAL_FLOOR = 1e-20

# below this squared norm a K-cycle level rescales its right-hand side (see _krylov)
_TINY_NORM2 = 1e-150


def _kernels():
    from microbat.fv import _kernels

    return _kernels


@dataclass
class _Level:
    ground: np.ndarray
    g: tuple[np.ndarray, np.ndarray, np.ndarray]
    lut: tuple[np.ndarray, np.ndarray, np.ndarray]
    periodic: tuple[bool, bool, bool]
    factors: tuple[int, int, int] = (1, 1, 1)  # block size towards the next level
    f: np.ndarray | None = None  # right-hand side work array
    u: np.ndarray | None = None  # solution work array
    work: tuple = ()

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.ground.shape  # type: ignore[return-value]

    @property
    def seam(self) -> bool:
        return bool(self.periodic[0] and self.shape[0] % 2 == 1)

    @property
    def op(self) -> tuple[np.ndarray, ...]:
        return (self.ground, *self.g, *self.lut)


class Multigrid:
    """Aggregation multigrid V-cycle for a structured 7-point operator.

    Parameters
    ----------
    ground : ndarray, shape (n0, n1, n2)
        Diagonal terms other than faces to neighbours (Dirichlet faces, reactions);
        voxels with zero ground and no conducting face are inactive.
    conductances : tuple of 3 ndarray
        Face conductances ``g[k][p]`` between voxel ``p`` and its ``+1`` neighbour
        along axis ``k`` (modulo the axis length; zero on the last layer of a
        non-periodic axis); floating point, or ``uint8`` codes into ``luts``.
    periodic : tuple of 3 bool
        Which axes wrap around.
    luts : tuple of 3 ndarray, optional
        Conductance of each code when ``conductances`` are codes.
    alpha : float, optional
        Scaling of the coarse-grid correction where a level is corrected by a plain
        V-cycle: 1.8 for ``cycle="V"`` (over-correction, see module notes), 1.0 for
        ``cycle="K"``.
    sweeps : int, default 1
        Red-black Gauss–Seidel sweeps before and after each coarse correction.
    coarse_size : int, default 4096
        Stop coarsening when a level has at most this many voxels.
    cycle : {"K", "V"}, default "K"
        ``"K"``: every coarse level is solved by two steps of flexible CG
        preconditioned by its own cycle (Notay's K-cycle; the preconditioner is then
        non-linear and the outer CG must be flexible, which :func:`pcg` is with
        ``flexible=True``). ``"V"``: a fixed symmetric V-cycle with the scaled
        correction.

    Notes
    -----
    Memory: the fine level keeps references to the given arrays; each coarser
    level stores four arrays of its own size plus two work arrays, about 1/7 of
    the fine storage in total. Setup is one pass over the fine arrays per level.
    """

    def __init__(
        self,
        ground: np.ndarray,
        conductances: tuple[np.ndarray, np.ndarray, np.ndarray],
        periodic: tuple[bool, bool, bool] = (False, False, False),
        luts: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        *,
        alpha: float | None = None,
        sweeps: int = 1,
        coarse_size: int = 4096,
        cycle: str = "K",
    ) -> None:
        k = _kernels()
        if ground.ndim != 3 or any(g.shape != ground.shape for g in conductances):
            raise InvalidInputError("ground and the three conductance arrays need one 3D shape")
        if cycle not in ("V", "K"):
            raise InvalidInputError(f"cycle={cycle!r}; use 'V' or 'K'")
        self.alpha = float(alpha) if alpha is not None else (1.8 if cycle == "V" else 1.0)
        self.sweeps = int(sweeps)
        self.cycle = cycle
        import numba

        self._threads = max(1, int(numba.get_num_threads()))
        self.dtype = ground.dtype
        t0 = time.perf_counter()
        dummy = np.ones(1, self.dtype)
        luts = luts if luts is not None else (dummy, dummy, dummy)
        levels = [
            _Level(ground, tuple(conductances), tuple(luts), tuple(bool(p) for p in periodic))  # type: ignore[arg-type]
        ]
        while True:
            lev = levels[-1]
            if lev.ground.size <= coarse_size:
                break
            factors = _choose_factors(lev)
            if factors == (1, 1, 1):
                break
            lev.factors = factors
            cshape = tuple(-(-n // f) for n, f in zip(lev.shape, factors, strict=True))
            dc = np.empty(cshape, self.dtype)
            h = tuple(np.empty(cshape, self.dtype) for _ in range(3))
            k.coarsen(*lev.op, dc, *h, *factors)
            levels.append(_Level(dc, h, (dummy, dummy, dummy), lev.periodic))  # type: ignore[arg-type]
        for lev in levels[1:]:
            lev.f = np.zeros(lev.shape, self.dtype)
            lev.u = np.zeros(lev.shape, self.dtype)
            if cycle == "K":
                lev.work = tuple(np.zeros(lev.shape, self.dtype) for _ in range(5))
        self.levels = levels
        self._coarse = _CoarseSolver(levels[-1])
        self.setup_time = time.perf_counter() - t0

    @property
    def n_levels(self) -> int:
        """Number of levels including the fine one."""
        return len(self.levels)

    def describe(self) -> list[dict[str, object]]:
        """Shapes and block factors of the hierarchy (JSON-ready)."""
        return [{"shape": list(lev.shape), "factors": list(lev.factors)} for lev in self.levels]

    def apply(self, r: np.ndarray, z: np.ndarray) -> None:
        """Apply the preconditioner, z = M⁻¹ r: one symmetric cycle started from zero."""
        z[...] = 0
        self._cycle(0, r, z)

    def _smooth(self, lev: _Level, f: np.ndarray, u: np.ndarray, first: int) -> None:
        k = _kernels()
        nchunks = self._threads
        if lev.seam or lev.shape[0] < 3 * nchunks:
            k.rb_sweep(*lev.op, f, u, first, lev.seam)
            k.rb_sweep(*lev.op, f, u, 1 - first, lev.seam)
        else:
            k.rb_fused(*lev.op, f, u, first, nchunks)

    def _cycle(self, li: int, f: np.ndarray, u: np.ndarray) -> None:
        k = _kernels()
        lev = self.levels[li]
        if li == len(self.levels) - 1:
            self._coarse.solve(f, u)
            return
        for _ in range(self.sweeps):
            self._smooth(lev, f, u, 0)
        nxt = self.levels[li + 1]
        k.restrict_residual(*lev.op, f, u, nxt.f, *lev.factors)
        nxt.u[...] = 0
        with serial_below(nxt.ground.size):  # small coarse levels: no parallel launches
            if self.cycle == "K" and li + 1 < len(self.levels) - 1:
                self._krylov(li + 1)
                scale = 1.0
            else:
                self._cycle(li + 1, nxt.f, nxt.u)
                scale = self.alpha
        k.prolong_add(u, nxt.u, scale, *lev.factors)
        for _ in range(self.sweeps):
            self._smooth(lev, f, u, 1)

    def _krylov(self, li: int) -> None:
        """Two flexible-CG steps on level ``li`` preconditioned by its cycle (K-cycle).

        The steps are homogeneous in the right-hand side; a right-hand side so small
        that the inner products (fourth powers of it) would underflow is scaled to
        unit norm first and the result scaled back.
        """
        k = _kernels()
        lev = self.levels[li]
        f, u = lev.f, lev.u
        fn = k.dot(f, f)
        if fn == 0:
            u[...] = 0
            return
        if fn < _TINY_NORM2:
            scale = math.sqrt(fn)
            f /= scale
            self._krylov_steps(li, k.dot(f, f))
            f *= scale
            u *= scale
            return
        self._krylov_steps(li, fn)

    def _krylov_steps(self, li: int, fn: float) -> None:
        k = _kernels()
        lev = self.levels[li]
        f, u = lev.f, lev.u
        c1, v, r2, c2, w = lev.work
        c1[...] = 0
        self._cycle(li, f, c1)
        k.apply(*lev.op, c1, v)
        rho1 = k.dot(c1, v)
        a1 = k.dot(c1, f)
        if not (rho1 > 0 and math.isfinite(rho1) and math.isfinite(a1)):
            # a zero right-hand side (converged above) or a cycle that gave nothing
            u[...] = 0
            return
        np.subtract(f, (a1 / rho1) * v, out=r2)
        if k.dot(r2, r2) <= 0.0625 * fn:
            np.multiply(c1, a1 / rho1, out=u)
            return
        # the coarse f is overwritten by the inner cycle's levels only below li
        c2[...] = 0
        self._cycle(li, r2, c2)
        k.apply(*lev.op, c2, w)
        gam = k.dot(c2, v)
        bet = k.dot(c2, w)
        a2 = k.dot(c2, r2)
        rho2 = bet - gam * gam / rho1
        if not (rho2 > 0 and math.isfinite(rho2) and math.isfinite(a2)):
            # c2 adds no direction of its own (A-parallel to c1): one step only
            np.multiply(c1, a1 / rho1, out=u)
            return
        den = rho1 * rho2
        # tiny residuals (far below any tolerance) can underflow the product
        coef = a1 / rho1 - (gam * a2 / den if den > 0 else (gam / rho1) * (a2 / rho2))
        np.multiply(c1, coef, out=u)
        u += (a2 / rho2) * c2


def _choose_factors(lev: _Level) -> tuple[int, int, int]:
    """Coarsen along the strongly coupled axes that are long enough."""
    strength = [_total(g, lut) for g, lut in zip(lev.g, lev.lut, strict=True)]
    smax = max(strength) if max(strength) > 0 else 1.0
    out = []
    for n, s, per in zip(lev.shape, strength, lev.periodic, strict=True):
        long_enough = n >= (6 if per else 3)
        out.append(2 if long_enough and s >= 0.3 * smax else 1)
    if out == [1, 1, 1]:
        # all strong axes are short: coarsen whatever is long enough
        out = [
            2 if n >= (6 if per else 3) else 1
            for n, per in zip(lev.shape, lev.periodic, strict=True)
        ]
    return tuple(out)  # type: ignore[return-value]


def _total(g: np.ndarray, lut: np.ndarray) -> float:
    if g.dtype == np.uint8:
        counts = np.bincount(g.reshape(-1), minlength=lut.size)[: lut.size]
        return float(counts @ lut.astype(np.float64))
    return float(np.sum(g, dtype=np.float64))


class _CoarseSolver:
    """Direct solve of the coarsest level (sparse LU of the assembled operator)."""

    def __init__(self, lev: _Level) -> None:
        import scipy.sparse as sp
        import scipy.sparse.linalg as spla

        from microbat.fv._operator import structured_to_csr

        self.shape = lev.shape
        g = tuple(
            (lut[c] if c.dtype == np.uint8 else c).astype(np.float64)
            for c, lut in zip(lev.g, lev.lut, strict=True)
        )
        A, index = structured_to_csr(lev.ground.astype(np.float64), g)
        self.index = index
        self.lu = spla.splu(sp.csc_matrix(A)) if index.size else None

    def solve(self, f: np.ndarray, u: np.ndarray) -> None:
        if self.lu is None:
            u[...] = 0
            return
        flat = u.reshape(-1)
        flat[...] = 0
        flat[self.index] = self.lu.solve(f.reshape(-1)[self.index].astype(np.float64))


@dataclass
class PCGInfo:
    """What a :func:`pcg` call did."""

    iterations: int = 0
    converged: bool = False
    residual_norm: float = math.inf
    rhs_norm: float = 0.0
    history: list[float] = field(default_factory=list)
    time_s: float = 0.0
    breakdown: str = ""  # why the iteration stopped early, when it broke down


def pcg(
    apply: Callable[[np.ndarray, np.ndarray], None],
    precond: Callable[[np.ndarray, np.ndarray], None] | None,
    b: np.ndarray,
    x: np.ndarray,
    *,
    rtol: float = 1e-8,
    maxiter: int = 500,
    stop: Callable[[int, np.ndarray, np.ndarray, float], bool] | None = None,
    layer_axis: int = -1,
    flexible: bool = False,
    residual: Callable[[np.ndarray, np.ndarray], float] | None = None,
) -> PCGInfo:
    """Preconditioned conjugate gradients on full-grid arrays (in place on ``x``).

    Parameters
    ----------
    apply : callable
        ``apply(v, out)`` writes ``A v`` to ``out``.
    precond : callable or None
        ``precond(r, z)`` writes ``M⁻¹ r`` to ``z``.
    b : ndarray
        Right-hand side (zero on inactive voxels).
    x : ndarray
        Initial guess, overwritten by the solution.
    rtol : float, default 1e-8
        Stop when ``‖b - A x‖ ≤ rtol ‖b‖`` (used when ``stop`` is not given).
    maxiter : int, default 500
        Iteration limit.
    stop : callable, optional
        ``stop(it, x, layers, rnorm)`` returning True when the caller's criterion
        (e.g. a flux balance) is met; replaces the residual test. ``layers`` holds
        the residual summed per layer along ``layer_axis`` (see below).
    layer_axis : int, default -1
        When ``>= 0``, the residual is also summed per layer along this axis at
        every iteration (fused with the update; shape ``(n_axis,)`` passed to
        ``stop``).
    flexible : bool, default False
        Polak–Ribière form of ``beta`` (flexible CG), needed when the
        preconditioner changes from one call to the next (K-cycle).
    residual : callable, optional
        ``residual(x, r)`` writing ``b - A x`` to ``r`` (accurately, e.g. with
        float64 products) and returning ``‖r‖²``; used for the initial residual.

    Returns
    -------
    PCGInfo
        Iterations, convergence flag, final recurrence residual, history.

    Notes
    -----
    The residual is the recurrence residual; a caller that needs the true
    residual (float32 vectors drift) recomputes it after the call and calls
    again from the returned ``x`` if needed.

    Breakdowns: a residual that reaches zero, or falls below :data:`RESIDUAL_FLOOR`
    times the larger of ``‖b‖`` and the initial residual (no tolerance asks more;
    this also ends a ``stop`` criterion that cannot be met, e.g. a flux spread
    when the flux is zero), counts as converged. A non-positive curvature
    ``pᵀAp``, a vanishing or indefinite ``rᵀz`` (the preconditioner is not
    positive definite) or a non-finite value ends the iteration with
    ``converged=False`` and the reason in ``info.breakdown``; no division by zero
    is attempted.
    """
    k = _kernels()
    t0 = time.perf_counter()
    info = PCGInfo()
    r = np.empty_like(x)
    q = np.empty_like(x)
    n_layers = x.shape[layer_axis] if layer_axis >= 0 else 1
    part = np.zeros((x.shape[0], n_layers))
    bnorm = math.sqrt(k.dot(b, b))
    info.rhs_norm = bnorm
    if residual is not None:
        rr = residual(x, r)
    else:
        apply(x, q)
        np.subtract(b, q, out=r)
        rr = k.dot(r, r)
    if layer_axis >= 0:
        other = tuple(a for a in range(3) if a != layer_axis)
        first = r.sum(axis=other, dtype=np.float64)
        if layer_axis == 0:
            part[np.arange(x.shape[0]), np.arange(x.shape[0])] = first
        else:
            part[0] = first
    z = q  # q is free until the first product with p
    if precond is None:
        z[...] = r
    else:
        precond(r, z)
    p = z.copy()
    rz = k.dot(r, z)
    q = np.empty_like(x)
    floor = RESIDUAL_FLOOR * max(bnorm, math.sqrt(rr) if math.isfinite(rr) else 0.0)
    it = 0
    while True:
        rnorm = math.sqrt(rr)
        info.history.append(rnorm / bnorm if bnorm > 0 else 0.0)
        if stop is not None:
            layers = part.sum(axis=0) if layer_axis != 0 else np.diagonal(part).copy()
            done = stop(it, x, layers, rnorm)
        else:
            done = rnorm <= rtol * bnorm
        if done or rnorm <= floor:
            info.converged = True
            break
        if not math.isfinite(rnorm):
            info.breakdown = "the residual is not finite (NaN or inf in the system or guess)"
            break
        if it >= maxiter:
            break
        if not (rz > 0 and math.isfinite(rz)):
            info.breakdown = (
                f"r·M⁻¹r = {rz:.3g} at iteration {it}: the preconditioner is not positive "
                "definite on this residual"
            )
            break
        apply(p, q)
        pq = k.dot(p, q)
        if not (pq > 0 and math.isfinite(pq)):
            info.breakdown = (
                f"p·Ap = {pq:.3g} at iteration {it}: the operator is not positive definite "
                "on the search direction"
            )
            break
        alpha = rz / pq
        part[...] = 0
        rr = k.cg_update(x, r, p, q, alpha, layer_axis, part)
        it += 1
        r_zold = k.dot(r, z) if flexible else 0.0
        if precond is None:
            z[...] = r
        else:
            precond(r, z)
        rz_new = k.dot(r, z)
        beta = (rz_new - r_zold) / rz
        rz = rz_new
        p *= beta
        p += z
    info.iterations = it
    info.residual_norm = math.sqrt(rr)
    info.time_s = time.perf_counter() - t0
    return info
