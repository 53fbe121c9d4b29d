"""Linear solvers for the finite-volume systems.

Three families, one entry point (:func:`solve`):

``"mg"``
    Matrix-free aggregation multigrid preconditioning CG on the voxel grid
    (:mod:`microbat.fv.multigrid`). Real symmetric systems; the fastest and
    leanest choice for large volumes.
``"amg"``
    Algebraic multigrid from PyAMG (smoothed aggregation ``"sa"`` or
    Ruge–Stüben ``"rs"``) on the assembled sparse matrix, accelerated by CG.
    :class:`AMGSolver` keeps the hierarchy for further right-hand sides.
``"direct"``
    Sparse LU (SuperLU via SciPy) of the assembled matrix; real or complex.
    :class:`DirectSolver` keeps the factorisation.

``"auto"`` picks ``"direct"`` up to :data:`DIRECT_LIMIT` unknowns (3D) or
:data:`DIRECT_LIMIT_2D` (2D), or for complex systems, and ``"mg"`` otherwise.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from microbat.core.errors import ConvergenceError, InvalidInputError
from microbat.fv.system import StructuredSystem

__all__ = [
    "DIRECT_LIMIT",
    "DIRECT_LIMIT_2D",
    "AMGSolver",
    "DirectSolver",
    "FVSolution",
    "galerkin_copy",
    "solve",
]

#: Systems with at most this many unknowns are solved directly by ``method="auto"``
#: (3D grids; sparse LU fill-in grows fast in 3D, multigrid wins above a few thousand).
DIRECT_LIMIT = 4096
#: The same limit for 2D grids (one axis of length 1), where fill-in stays small.
DIRECT_LIMIT_2D = 200_000

Method = Literal["auto", "mg", "amg", "direct"]


@dataclass
class FVSolution:
    """The solution of a finite-volume system and how it was reached.

    Attributes
    ----------
    x : ndarray
        Solution on the full grid (zero on voxels that are not unknowns).
    method : str
        Solver used (``"mg"``, ``"amg"`` or ``"direct"``).
    iterations : int
        Krylov iterations (0 for direct).
    residual : float
        Final relative residual ``‖b - A x‖ / ‖b‖``.
    converged : bool
        Whether the stopping criterion was met.
    setup_s, solve_s : float
        Wall time of the setup (hierarchy, factorisation) and of the iterations.
    details : dict
        Solver-specific information (levels, history, ...).
    """

    x: np.ndarray
    method: str
    iterations: int = 0
    residual: float = 0.0
    converged: bool = True
    setup_s: float = 0.0
    solve_s: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


class DirectSolver:
    """Sparse LU factorisation kept for repeated right-hand sides.

    Parameters
    ----------
    A : scipy.sparse matrix
        Square matrix (real or complex).

    Raises
    ------
    ConvergenceError
        The matrix is singular.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> DirectSolver(sp.identity(3, format="csr")).solve(np.ones(3))
    array([1., 1., 1.])
    """

    def __init__(self, A: Any) -> None:
        import scipy.sparse as sp
        import scipy.sparse.linalg as spla

        t0 = time.perf_counter()
        try:
            self.lu = spla.splu(sp.csc_matrix(A))
        except RuntimeError as exc:  # SuperLU: "Factor is exactly singular"
            raise ConvergenceError(
                f"sparse LU failed ({exc}): the matrix is singular, e.g. a floating "
                "component without a held value; restrict the unknowns (active=) or ground it"
            ) from exc
        self.setup_s = time.perf_counter() - t0

    def solve(self, b: np.ndarray) -> np.ndarray:
        """Solve ``A x = b``."""
        return self.lu.solve(np.asarray(b))


def galerkin_copy(ml: Any, A: Any) -> Any:
    """A PyAMG hierarchy with a new finest operator and its Galerkin coarse operators.

    The C/F splitting (or aggregation), interpolation ``P`` and restriction ``R`` of
    ``ml`` are kept; level ``k+1`` gets ``R_k A_k P_k`` from the new ``A`` (which may
    be complex, or a changed real matrix on the same graph). This is the cheap part of
    a setup: reused by the EIS solver (one real hierarchy per frequency band, complex
    operators per frequency) and the resolved discharge (operators refreshed each
    step). The coarse solver of the copy is the caller's to set: ``ml``'s may hold a
    factorisation of the old coarsest operator.

    Parameters
    ----------
    ml : pyamg.MultilevelSolver
    A : scipy.sparse matrix
        New finest-level operator, same shape and graph as ``ml.levels[0].A``.

    Returns
    -------
    pyamg.MultilevelSolver
        A shallow copy; ``ml`` is unchanged.
    """
    import copy

    mc = copy.copy(ml)
    mc.levels = [copy.copy(lv) for lv in ml.levels]
    mc.levels[0].A = A
    for i in range(len(mc.levels) - 1):
        lv = mc.levels[i]
        mc.levels[i + 1].A = (lv.R @ (lv.A @ lv.P)).tocsr()
    return mc


class AMGSolver:
    """PyAMG hierarchy kept for repeated right-hand sides.

    Parameters
    ----------
    A : scipy.sparse matrix
        Symmetric positive-definite matrix.
    kind : {"sa", "rs"}, default "sa"
        Smoothed aggregation or classical Ruge–Stüben coarsening.
    **options
        Passed to ``pyamg.smoothed_aggregation_solver`` / ``ruge_stuben_solver``.

    References
    ----------
    .. [1] N. Bell, L. Olson, J. Schroder, "PyAMG: Algebraic multigrid solvers in
       Python", J. Open Source Softw. 7 (2022) 4142.
    """

    def __init__(self, A: Any, *, kind: Literal["sa", "rs"] = "sa", **options: Any) -> None:
        from microbat.core.errors import require

        pyamg = require("pyamg")
        t0 = time.perf_counter()
        if kind == "sa":
            self.ml = pyamg.smoothed_aggregation_solver(A, **options)
        elif kind == "rs":
            self.ml = pyamg.ruge_stuben_solver(A, **options)
        else:
            raise InvalidInputError(f"unknown AMG kind {kind!r}; use 'sa' or 'rs'")
        self.setup_s = time.perf_counter() - t0

    def solve(
        self,
        b: np.ndarray,
        *,
        x0: np.ndarray | None = None,
        rtol: float = 1e-8,
        maxiter: int = 200,
        callback: Callable[[np.ndarray], None] | None = None,
    ) -> tuple[np.ndarray, list[float]]:
        """CG accelerated by the AMG V-cycle; returns ``(x, residual history)``."""
        res: list[float] = []
        x = self.ml.solve(
            b,
            x0=x0,
            tol=rtol,
            maxiter=maxiter,
            accel="cg",
            residuals=res,
            callback=callback,
        )
        return x, res


def solve(
    system: StructuredSystem,
    *,
    method: Method = "auto",
    rtol: float = 1e-8,
    maxiter: int = 500,
    x0: np.ndarray | None = None,
    stop: Callable[[int, np.ndarray, np.ndarray, float], bool] | None = None,
    layer_axis: int = -1,
    raise_on_failure: bool = True,
    **options: Any,
) -> FVSolution:
    """Solve a :class:`~microbat.fv.system.StructuredSystem`.

    Parameters
    ----------
    system : StructuredSystem
        Assembled system.
    method : {"auto", "mg", "amg", "direct"}
        Solver family (see module notes).
    rtol : float, default 1e-8
        Relative residual tolerance of the iterative methods (``"mg"`` uses
        ``stop`` instead when given).
    maxiter : int, default 500
        Iteration limit.
    x0 : ndarray, optional
        Initial guess on the full grid (``"mg"`` and ``"amg"``). ``"mg"`` works in
        place on a contiguous array of the system's dtype (saving a grid copy).
    stop : callable, optional
        ``"mg"`` only: ``stop(it, x, layer_residuals, rnorm) -> bool``, a caller's
        criterion such as a flux balance (see :func:`microbat.fv.multigrid.pcg`).
    layer_axis : int, default -1
        ``"mg"`` only: axis along which residuals are summed per layer for ``stop``.
    raise_on_failure : bool, default True
        Raise :class:`~microbat.core.errors.ConvergenceError` when not converged.
    **options
        ``"mg"``: :class:`~microbat.fv.multigrid.Multigrid` options (``alpha``,
        ``sweeps``, ``coarse_size``); ``"amg"``: ``kind`` and PyAMG options.

    Returns
    -------
    FVSolution

    Raises
    ------
    ConvergenceError
        The iterative solver did not converge within ``maxiter`` iterations.
    """
    n = system.n_unknowns
    is_complex = np.iscomplexobj(system.ground)
    if method == "auto":
        limit = DIRECT_LIMIT_2D if min(system.shape) == 1 else DIRECT_LIMIT
        method = "direct" if (n <= limit or is_complex) else "mg"
    if method not in ("mg", "amg", "direct"):
        raise InvalidInputError(f"unknown solver {method!r}; use auto, mg, amg or direct")
    if n == 0:
        return FVSolution(np.zeros(system.shape, system.dtype), method)
    from microbat.core.threads import single_threaded_blas

    with single_threaded_blas("blas"):  # SuperLU and short vectors only (core.threads)
        return _solve(
            system, method, n, is_complex, rtol, maxiter, x0, stop, layer_axis,
            raise_on_failure, options,
        )  # fmt: skip


def _solve(
    system: StructuredSystem,
    method: str,
    n: int,
    is_complex: bool,
    rtol: float,
    maxiter: int,
    x0: np.ndarray | None,
    stop: Callable[[int, np.ndarray, np.ndarray, float], bool] | None,
    layer_axis: int,
    raise_on_failure: bool,
    options: dict[str, Any],
) -> FVSolution:
    if method == "mg":
        return _solve_mg(system, rtol, maxiter, x0, stop, layer_axis, raise_on_failure, options)
    A, b, index = system.to_sparse()
    bnorm = float(np.linalg.norm(b))
    if method == "direct":
        ds = DirectSolver(A)
        t0 = time.perf_counter()
        xv = ds.solve(b)
        solve_s = time.perf_counter() - t0
        res = float(np.linalg.norm(b - A @ xv)) / bnorm if bnorm else 0.0
        return FVSolution(system.scatter(xv, index), "direct", 0, res, True, ds.setup_s, solve_s)
    if is_complex:
        raise InvalidInputError("method='amg' needs a real system; use method='direct'")
    amg = AMGSolver(A.astype(np.float64), **options)
    t0 = time.perf_counter()
    xv0 = None if x0 is None else np.asarray(x0, np.float64).reshape(-1)[index]
    xv, hist = amg.solve(b.astype(np.float64), x0=xv0, rtol=rtol, maxiter=maxiter)
    solve_s = time.perf_counter() - t0
    res = float(np.linalg.norm(b - A @ xv)) / bnorm if bnorm else 0.0
    ok = res <= rtol * 1.0001
    if not ok and raise_on_failure:
        raise ConvergenceError(
            f"AMG-CG stopped at relative residual {res:.2e} > {rtol:.1e} after "
            f"{len(hist)} iterations; raise maxiter or try method='direct' for small systems"
        )
    return FVSolution(
        system.scatter(xv.astype(system.dtype, copy=False), index),
        "amg",
        max(len(hist) - 1, 0),
        res,
        ok,
        amg.setup_s,
        solve_s,
        {"levels": len(amg.ml.levels), "history": [float(h) / bnorm for h in hist]},
    )


def _solve_mg(system, rtol, maxiter, x0, stop, layer_axis, raise_on_failure, options):
    from microbat.core.threads import serial_below
    from microbat.fv import _kernels
    from microbat.fv.multigrid import pcg

    mg = system.multigrid(**options)
    if x0 is None:
        x = np.zeros(system.shape, system.dtype)
    else:  # used in place when it already has the right type (saves a grid copy)
        x = np.asarray(x0, system.dtype)
        if not (x.flags.writeable and x.flags.c_contiguous and x.shape == system.shape):
            x = np.array(np.broadcast_to(x, system.shape), system.dtype)
        x[~system.active] = 0
    op = system.op
    with serial_below(system.ground.size):  # a small grid does not pay for parallel launches
        info = pcg(
            lambda v, out: _kernels.apply(*op, v, out),
            mg.apply,
            system.rhs,
            x,
            rtol=rtol,
            maxiter=maxiter,
            stop=stop,
            layer_axis=layer_axis,
            flexible=mg.cycle == "K",
            residual=lambda v, r: _kernels.residual(*op, v, system.rhs, r),
        )
    x[~system.active] = 0  # the coarse corrections leave values on non-unknowns
    rel = info.residual_norm / info.rhs_norm if info.rhs_norm else 0.0
    if not info.converged and raise_on_failure:
        if info.breakdown:
            raise ConvergenceError(
                f"multigrid-CG broke down after {info.iterations} iterations (relative "
                f"residual {rel:.2e}): {info.breakdown}; try method='amg' or 'direct'"
            )
        raise ConvergenceError(
            f"multigrid-CG did not converge in {info.iterations} iterations (relative "
            f"residual {rel:.2e}); raise maxiter, or try method='amg'"
        )
    return FVSolution(
        x,
        "mg",
        info.iterations,
        rel if math.isfinite(rel) else math.inf,
        info.converged,
        mg.setup_time,
        info.time_s,
        {"levels": mg.describe(), "history": info.history, "breakdown": info.breakdown},
    )
