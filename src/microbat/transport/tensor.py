r"""The tortuosity tensor: all directions and the off-diagonal terms.

Method
------
Off-diagonal terms need a driving force along one axis and the flux measured
along the others, which sealed side walls would forbid. They come from
**periodic homogenisation**: the image is repeated periodically in every
direction, a unit mean gradient is applied along axis ``j`` by a jump of the
field across the seam (``u(x + L_j e_j) = u(x) - L_j``), and the mean flux
density along every axis ``i`` is measured,

.. math::

    \frac{D^{per}_{ij}}{D_0} = \frac{1}{V} \sum_{\text{faces} \perp i}
    g_f \, \Delta u^{(j)}_f \, h_i
    = \frac{\langle F_i \rangle}{A_i},

the average over all planes of faces normal to ``i`` (``A_i`` the cross-section).
At the exact discrete solution this tensor is symmetric (it is the energy
bilinear form of the three solutions); its asymmetry measures the solver error.

``method="dirichlet"`` (default) keeps the diagonal of :func:`tortuosity` — the
sealed-side, held-concentration solves of the named boundary convention — and
takes the shape of the tensor from the periodic solve, scaling the off-diagonal
terms with the diagonal so that the correlation coefficients are preserved:

.. math::

    D_{ij} = D^{per}_{ij} \sqrt{\frac{D^{dir}_{ii} D^{dir}_{jj}}
    {D^{per}_{ii} D^{per}_{jj}}},

a congruence ``S D^{per} S`` that keeps the tensor symmetric positive
semi-definite. ``method="periodic"`` reports ``D^{per}`` itself.

The tortuosity tensor is ``τ = ε D0 D_eff⁻¹`` (for a diagonal tensor its
diagonal is ``ε D0 / D_ii``); principal values and directions come from the
eigen-decomposition of ``D_eff``, with ``τ_k = ε D0 / λ_k``. A direction that
does not percolate has a zero row and column of ``D_eff``, an infinite diagonal
entry of ``τ`` and zero off-diagonal entries.

References
----------
.. [1] G. Allaire, "Homogenization and two-scale convergence", SIAM J. Math.
   Anal. 23 (1992) 1482-1518.
.. [2] S. J. Cooper, D. S. Eastwood, J. Gelb, G. Damblanc, D. J. L. Brett, R. S.
   Bradley, P. J. Withers, P. D. Lee, A. J. Marquis, N. P. Brandon, P. R.
   Shearing, "Image based modelling of microstructural heterogeneity in LiFePO4
   electrodes for Li-ion batteries", J. Power Sources 247 (2014) 1033-1039.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from microbat.core.errors import ConvergenceError, InvalidInputError
from microbat.core.microstructure import Microstructure
from microbat.core.results import Provenance, Result
from microbat.transport._steady import (
    Boundary,
    PercolationWarning,
    Precision,
    Solver,
    resolve_coefficients,
    resolve_precision,
    weighted_fraction,
)
from microbat.transport.diffusion import TortuosityResult, tortuosity

__all__ = ["TensorResult", "periodic_deff", "tortuosity_tensor"]


@dataclass(frozen=True)
class TensorResult(Result):
    """Effective-diffusivity and tortuosity tensors (array axis order).

    Attributes
    ----------
    deff_over_d0 : ndarray, shape (d, d)
        Relative effective diffusivity tensor ``D_eff / D0`` (symmetrised).
    tau : ndarray, shape (d, d)
        Tortuosity tensor ``ε D0 D_eff⁻¹`` (``inf`` on the diagonal of a
        non-percolating direction).
    tau_diagonal : tuple of float
        Diagonal tortuosity factors of the directional solves (as
        :func:`~microbat.transport.diffusion.tortuosity` with ``axis="all"``).
    principal_deff : ndarray, shape (d,)
        Eigenvalues of ``D_eff / D0``, descending.
    principal_tau : ndarray, shape (d,)
        Principal tortuosity factors ``ε / λ_k`` (ascending).
    principal_directions : ndarray, shape (d, d)
        Unit eigenvectors as columns, in the order of ``principal_deff``.
    deff_periodic : ndarray, shape (d, d)
        Raw tensor of the periodic homogenisation (before symmetrisation).
    asymmetry : float
        ``max |D - Dᵀ| / max |D|`` of the periodic tensor.
    numerical_error : float
        Error estimate of the periodic tensor relative to its largest entry (the
        largest relative flux spread over the planes of the three solves, with
        the asymmetry); off-diagonal terms below it are zero within error.
    percolating : tuple of bool
        Percolation per axis (held-side solves).
    porosity : float
        Volume fraction of the transporting phases.
    epsilon : float
        The ``ε`` of ``τ = ε D0 / D_eff`` (diffusivity-weighted, whole volume).
    method : str
        ``"dirichlet"`` or ``"periodic"``.
    boundary : str
        Boundary convention of the diagonal solves.
    provenance : Provenance
        How the result was made.
    """

    deff_over_d0: np.ndarray
    tau: np.ndarray
    tau_diagonal: tuple[float, ...]
    principal_deff: np.ndarray
    principal_tau: np.ndarray
    principal_directions: np.ndarray
    deff_periodic: np.ndarray
    asymmetry: float
    numerical_error: float
    percolating: tuple[bool, ...]
    porosity: float
    epsilon: float
    method: str
    boundary: str
    provenance: Provenance = field(repr=False, default_factory=lambda: Provenance("tensor"))


def periodic_deff(
    ms: Microstructure,
    values: Mapping[int, float],
    *,
    tol: float = 1e-4,
    solver: Solver = "auto",
    dtype: type | np.dtype = np.float64,
    maxiter: int = 400,
) -> tuple[np.ndarray, float]:
    """Effective coefficient tensor by periodic homogenisation (see module notes).

    Parameters
    ----------
    ms : Microstructure
        The image, repeated periodically.
    values : mapping of int to float
        Coefficient of each label (relative diffusivity, S/m, ...).
    tol : float, default 1e-4
        Convergence: relative spread of the flux through the planes normal to
        the applied gradient.
    solver : {"auto", "mg", "amg", "direct"}
        Linear solver.
    dtype : dtype
        float32 or float64.
    maxiter : int
        Iteration limit per solve.

    Returns
    -------
    deff : ndarray, shape (d, d)
        ``deff[i, j]``: mean flux density along ``i`` per unit gradient along ``j``
        (units of the coefficients). Column ``j`` is exactly zero when no
        component of the periodic repetition winds around axis ``j``
        (:func:`microbat.fv.winding_mask`; decoupled channels, layers across
        their stacking axis, isolated pores); that solve is skipped.
    spread : float
        Largest flux spread of the solves (an error estimate).
    """
    from microbat.fv.connectivity import winding_mask
    from microbat.fv.grid import as_3d, coefficient_classes, coefficient_field
    from microbat.fv.solvers import solve
    from microbat.fv.system import build_system

    labels3, h = as_3d(np.asarray(ms.labels), ms.grid_spacing)
    nd = ms.ndim
    dtype = np.dtype(dtype)
    if len({v for v in values.values() if v > 0}) <= 15:
        coef: Any = coefficient_classes(labels3, values)
        conducting = coef.classes != 0
    else:  # pragma: no cover
        coef = coefficient_field(labels3, values, dtype=dtype)
        conducting = coef != 0
    shape = labels3.shape
    periodic = (True, True, nd == 3)
    deff = np.zeros((nd, nd))
    worst = 0.0
    for j in range(nd):
        if not winding_mask(conducting, j, periodic=periodic).any():
            continue  # nothing winds around axis j: zero flux, column j stays 0
        jump = [0.0, 0.0, 0.0]
        jump[j] = -shape[j] * h[j]
        system = build_system(coef, h, periodic=periodic, jump=jump, dtype=dtype)

        def stop(it: int, x: np.ndarray, layers: np.ndarray, rnorm: float) -> bool:
            # flux through the seam plane, then through every plane by the residuals
            f0 = system.layer_flux_at(x, j, shape[j] - 1)  # noqa: B023
            planes = f0 - np.concatenate(([0.0], np.cumsum(layers)))
            mean = float(np.mean(planes))
            return mean != 0 and float(np.ptp(planes)) / abs(mean) <= 0.5 * tol

        # initial guess: the applied mean gradient itself, u = -x_j
        ramp = -(np.arange(shape[j], dtype=np.float64) + 0.5) * h[j]
        bshape = [1, 1, 1]
        bshape[j] = shape[j]
        x0 = np.where(system.active, ramp.reshape(bshape).astype(dtype), dtype.type(0))
        sol = solve(
            system, method=solver, x0=x0, stop=stop, layer_axis=j, maxiter=maxiter,
            raise_on_failure=False, rtol=1e-12,
        )  # fmt: skip
        x = sol.x
        planes_j = system.layer_fluxes(x, j)
        mean_j = float(np.mean(planes_j))
        if mean_j != 0:
            spread = float(np.ptp(planes_j)) / abs(mean_j)
            if spread > tol and sol.method != "direct":
                raise ConvergenceError(
                    f"the periodic solve for gradient axis {j} reached a flux spread of "
                    f"{spread:.2e} (tolerance {tol:.1e}); raise maxiter or use precision='double'"
                )
            worst = max(worst, spread)
        for i in range(nd):
            planes = planes_j if i == j else system.layer_fluxes(x, i)
            area_i = float(np.prod([shape[a] * h[a] for a in range(3) if a != i]))
            deff[i, j] = float(np.mean(planes)) / area_i
    return deff, worst


def tortuosity_tensor(
    ms: Microstructure,
    *,
    phase: str | Sequence[str] = "electrolyte",
    method: str = "dirichlet",
    boundary: Boundary = "face",
    relative_diffusivity: Mapping[str, float] | None = None,
    tol: float = 1e-3,
    solver: Solver = "auto",
    precision: Precision = "auto",
    diagonal: TortuosityResult | None = None,
) -> TensorResult:
    """Full tortuosity tensor of a phase (see module notes for the method).

    Parameters
    ----------
    ms : Microstructure
        Labelled voxel image (anisotropic voxel sizes are handled exactly).
    phase : str or sequence of str, default "electrolyte"
        Phase names or roles diffusing with ``D = D0``.
    method : {"dirichlet", "periodic"}, default "dirichlet"
        Diagonal from the held-side directional solves with the periodic
        correlations (default), or the periodic tensor alone.
    boundary : {"face", "layer"}, default "face"
        Boundary convention of the directional solves.
    relative_diffusivity : mapping of str to float, optional
        Further phases with their own ``D/D0`` (e.g. ``{"cbd": 0.1}``).
    tol : float, default 1e-3
        Flux-spread tolerance of the directional solves; the periodic solves use
        ``tol / 10``.
    solver : {"auto", "mg", "amg", "direct"}, default "auto"
        Linear solver.
    precision : {"auto", "single", "double"}, default "auto"
        Floating-point type of the solves.
    diagonal : TortuosityResult, optional
        The directional solves already made by
        :func:`~microbat.transport.diffusion.tortuosity` on the same image with
        ``axis="all"`` and the same phase, boundary and relative diffusivities
        (e.g. by a caller that reports them too): reused instead of solving the
        ``d`` directions again. Its ``porosity_definition`` does not matter (the
        tensor's ``ε`` is always the whole image's).

    Returns
    -------
    TensorResult

    Raises
    ------
    InvalidInputError
        A ``diagonal`` that is not every axis of this image, phase set and
        boundary.

    Warns
    -----
    PercolationWarning
        For each direction without a connected path.

    Notes
    -----
    Cost: ``d`` directional solves (none when ``diagonal`` is given) plus ``d``
    periodic solves.

    Examples
    --------
    >>> import numpy as np
    >>> from microbat import Microstructure
    >>> lab = np.zeros((12, 12, 12), np.uint8); lab[:, :, 6:] = 1   # two slabs
    >>> ms = Microstructure(lab, voxel_size=1e-6, phases="pore=0,cbd=1")
    >>> t = tortuosity_tensor(ms, phase="pore", relative_diffusivity={"cbd": 0.25})
    >>> np.round(np.diag(t.deff_over_d0), 4).tolist()   # arithmetic, arithmetic, harmonic
    [0.625, 0.625, 0.4]
    """
    t0 = time.perf_counter()
    if method not in ("dirichlet", "periodic"):
        raise InvalidInputError(f"method={method!r}; use 'dirichlet' or 'periodic'")
    values = resolve_coefficients(ms, phase, 1.0, relative_diffusivity, "relative diffusivity")
    if diagonal is None:
        diag = tortuosity(
            ms, phase=phase, axis="all", boundary=boundary,
            relative_diffusivity=relative_diffusivity, tol=tol, solver=solver,
            precision=precision, keep_field=False,
        )  # fmt: skip
    else:
        diag = _check_diagonal(diagonal, ms, values, boundary)
    eps = weighted_fraction(ms, values)[1]
    dtype = resolve_precision(precision, ms.n_voxels)
    nd = ms.ndim
    dper, spread = periodic_deff(ms, values, tol=tol / 10, solver=solver, dtype=dtype)
    scale = float(np.max(np.abs(dper))) or 1.0
    asym = float(np.max(np.abs(dper - dper.T))) / scale
    sym = 0.5 * (dper + dper.T)
    perc = tuple(bool(p) for p in diag.percolating)
    if method == "periodic":
        deff = sym.copy()
    else:
        dd = np.array([float(v) for v in diag.deff_over_d0])
        pd = np.clip(np.diag(sym), 0.0, None)
        s = np.where(pd > 0, np.sqrt(np.divide(dd, pd, out=np.zeros(nd), where=pd > 0)), 0.0)
        deff = sym * np.outer(s, s)
        deff[np.diag_indices(nd)] = dd
    for a in range(nd):  # a non-percolating direction has no flux at all
        if not perc[a]:
            deff[a, :] = 0.0
            deff[:, a] = 0.0
        elif not deff[a, a] > 0:  # method="periodic": held sides connect, the seam does not
            deff[a, :] = 0.0
            deff[:, a] = 0.0
            warnings.warn(
                f"the periodic repetition of the image has no path along axis {a} (the "
                "held-side solve has one): periodic tortuosity reported as infinite; "
                "method='dirichlet' keeps the held-side value",
                PercolationWarning,
                stacklevel=2,
            )
    conducts = tuple(bool(deff[a, a] > 0) for a in range(nd))
    evals, evecs = np.linalg.eigh(deff)
    order = np.argsort(evals)[::-1]
    evals = np.clip(evals[order], 0.0, None)
    evecs = evecs[:, order]
    tiny = 1e-12 * max(float(evals.max(initial=0.0)), 1e-300)
    principal_tau = np.array([eps / v if v > tiny else math.inf for v in evals])
    tau = _tau_tensor(deff, eps, conducts)
    return TensorResult(
        deff_over_d0=deff,
        tau=tau,
        tau_diagonal=tuple(float(t) for t in diag.tau),
        principal_deff=evals,
        principal_tau=principal_tau,
        principal_directions=evecs,
        deff_periodic=dper,
        asymmetry=asym,
        numerical_error=max(spread, asym, tol / 10),
        percolating=perc,
        porosity=diag.porosity,
        epsilon=eps,
        method=method,
        boundary=boundary,
        provenance=Provenance(
            "microbat.transport.tortuosity_tensor",
            parameters={
                "phase": phase if isinstance(phase, str) else list(phase),
                "method": method,
                "boundary": boundary,
                "relative_diffusivity": diag.relative_diffusivity,
                "tol": tol,
                "solver": solver,
                "precision": diag.precision,
            },
            wall_time_s=time.perf_counter() - t0,
            inputs={
                "shape": list(ms.shape),
                "voxel_size_m": (list(ms.voxel_size) if ms.voxel_size_known else None),
            },
        ),
    )


def _check_diagonal(
    diag: Any, ms: Microstructure, values: Mapping[int, float], boundary: str
) -> TortuosityResult:
    """The caller's directional solves, if they are those this tensor needs."""
    if not isinstance(diag, TortuosityResult):
        raise InvalidInputError(
            f"diagonal must be the TortuosityResult of tortuosity(..., axis='all'), "
            f"got {type(diag).__name__}"
        )
    rel = {p.name: float(values[p.label]) for p in ms.phases.values() if values.get(p.label, 0) > 0}
    shape = diag.provenance.inputs.get("shape")
    problems = []
    if len(diag.tau) != ms.ndim or any(t is None for t in diag.tau):
        problems.append("it does not hold every axis (use axis='all')")
    if shape is not None and list(shape) != list(ms.shape):
        problems.append(f"it was solved on a {shape} image, this one is {list(ms.shape)}")
    if diag.boundary != boundary:
        problems.append(f"its boundary is {diag.boundary!r}, not {boundary!r}")
    if diag.relative_diffusivity != rel:
        problems.append(f"its phases are {diag.relative_diffusivity}, not {rel}")
    if problems:
        raise InvalidInputError("diagonal does not fit this tensor: " + "; ".join(problems))
    return diag


def _tau_tensor(deff: np.ndarray, eps: float, perc: Sequence[bool]) -> np.ndarray:
    """``ε D_eff⁻¹`` on the percolating block; ``inf`` diagonal elsewhere."""
    nd = deff.shape[0]
    tau = np.zeros((nd, nd))
    idx = [a for a in range(nd) if perc[a]]
    if idx:
        block = deff[np.ix_(idx, idx)]
        try:
            inv = np.linalg.inv(block)
        except np.linalg.LinAlgError:  # pragma: no cover - singular percolating block
            inv = np.linalg.pinv(block)
        tau[np.ix_(idx, idx)] = eps * inv
    for a in range(nd):
        if not perc[a]:
            tau[a, a] = math.inf
    return tau
