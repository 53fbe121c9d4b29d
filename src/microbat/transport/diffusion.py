r"""Tortuosity factor by steady diffusion through the voxel microstructure.

Equations and conventions
-------------------------
Fick's law ``J = -D ∇c`` with ``∇·J = 0`` is solved on the voxels of the chosen
phase(s) with the finite-volume core (:mod:`microbat.fv`): each phase ``p`` has its
own relative diffusivity ``D_p/D0`` (1 for the pore phase, e.g. 0.1 for a
nanoporous carbon-binder domain), faces between voxels conduct with the harmonic
mean, solid phases (``D = 0``) block. Along the chosen axis the concentration is
held at ``c = 1`` on the first side and ``c = 0`` on the last; the four other sides
are insulating. The total flux ``F`` through every plane gives

.. math::

    \frac{D_\mathrm{eff}}{D_0} = \frac{F L}{A \, \Delta c \, D_0}, \qquad
    \tau = \varepsilon \frac{D_0}{D_\mathrm{eff}}, \qquad
    N_M = \frac{D_0}{D_\mathrm{eff}} = \frac{\tau}{\varepsilon},

with the cross-section ``A`` of the whole image, ``N_M`` the MacMullin number and
``ε`` the (diffusivity-weighted) volume fraction of the transporting phases,
``ε = Σ_p φ_p D_p/D0``, which reduces to the porosity for a single pore phase and
to TauFactor's ``D_mean`` weighting for several phases. With this ``ε`` the
arithmetic (Wiener) bound ``D_eff ≤ ε D0`` makes ``τ ≥ 1`` for every geometry.

Boundary conventions (reported with every result):

``"face"`` (default)
    Concentrations held on the two outer faces; ``L = n h`` (TauFactor).
``"layer"``
    The first and last voxel layers are held; ``L = (n - 1) h`` (PoreSpy's
    ``tortuosity_fd``, PuMA). This alone moves τ by a fraction of a percent at
    64–128 voxels.

Which porosity divides: ``porosity_definition="total"`` (default, TauFactor) uses
the whole image; ``"percolating"`` uses only the voxels connected to both held
sides (PoreSpy, which trims the rest). Both values are reported.

Only voxels face-connected to both held sides are unknowns (dead ends attached to
such a path are kept and carry no flux; isolated clusters and clusters touching
one side only are removed, so the matrix is non-singular). A direction without a
connected path reports ``τ = inf``, ``D_eff = 0``, ``percolating = False`` and
emits a :class:`PercolationWarning`.

References
----------
.. [1] S. J. Cooper, A. Bertei, P. R. Shearing, J. A. Kilner, N. P. Brandon,
   "TauFactor: An open-source application for calculating tortuosity factors from
   tomographic data", SoftwareX 5 (2016) 203-210.
.. [2] B. Tjaden, S. J. Cooper, D. J. L. Brett, D. Kramer, P. R. Shearing, "On the
   origin and application of the Bruggeman correlation for analysing transport
   phenomena in electrochemical systems", Curr. Opin. Chem. Eng. 12 (2016) 44-51.
.. [3] J. T. Gostick et al., "PoreSpy: A Python toolkit for quantitative analysis of
   porous media images", J. Open Source Softw. 4 (2019) 1296.
.. [4] R. B. MacMullin, G. A. Muccini, "Characteristics of porous beds and
   structures", AIChE J. 2 (1956) 393-403.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from microbat.core.errors import InvalidInputError
from microbat.core.microstructure import Microstructure
from microbat.core.results import Provenance, Result
from microbat.fv.grid import as_3d
from microbat.transport._steady import (
    Boundary,
    PercolationWarning,
    Precision,
    Solver,
    check_boundary,
    directional_solve,
    prepare,
    resolve_axes,
    resolve_coefficients,
    resolve_precision,
    warn_not_percolating,
    weighted_fraction,
)

__all__ = ["PercolationWarning", "TortuosityResult", "tortuosity"]

PerAxis = tuple[Any, ...]


@dataclass(frozen=True)
class TortuosityResult(Result):
    """Tortuosity factors of one microstructure (per-axis values in array axis order).

    Entries of axes that were not solved are ``None``.

    Attributes
    ----------
    tau : tuple of float or None
        Tortuosity factor ``τ = ε D0 / D_eff`` per axis; ``inf`` where the phase
        does not percolate.
    deff_over_d0 : tuple of float or None
        Relative effective diffusivity ``D_eff / D0`` (0 where not percolating).
    macmullin : tuple of float or None
        MacMullin number ``N_M = D0 / D_eff`` (``inf`` where not percolating).
    percolating : tuple of bool or None
        Whether the phase connects the two held sides along each axis.
    porosity : float
        Volume fraction of the transporting phases in the whole image.
    porosity_percolating : tuple of float or None
        Volume fraction of the voxels connected to both held sides, per axis.
    epsilon : tuple of float or None
        The ``ε`` that divides: diffusivity-weighted volume fraction of the whole
        image (``porosity_definition="total"``) or of the percolating voxels.
    porosity_definition : str
        ``"total"`` or ``"percolating"``.
    boundary : str
        ``"face"`` (``L = n h``) or ``"layer"`` (``L = (n - 1) h``).
    length_m : tuple of float or None
        Transport length ``L`` used per axis (m); ``None`` when the voxel size is
        unknown.
    flux_spread : tuple of float or None
        ``(max - min) / mean`` of the flux through all planes between the held
        sides (convergence measure; 0 at the exact discrete solution).
    flux_mismatch : tuple of float or None
        ``|F_in - F_out| / F_mean`` between inlet and outlet.
    iterations : tuple of int or None
        Krylov iterations per axis (0 for a direct solve).
    solver : str
        Linear solver used (``"mg"``, ``"amg"`` or ``"direct"``).
    precision : str
        ``"single"`` or ``"double"``.
    relative_diffusivity : dict
        ``D_p / D0`` of every transporting phase, by name.
    concentration : tuple of ndarray or None
        Concentration field of each solved axis (1 at the inlet side, 0 at the
        outlet; NaN on voxels outside the percolating cluster); ``None`` when not
        kept. Summarised (shape, dtype) by :meth:`to_dict`.
    provenance : Provenance
        How the result was made.
    """

    tau: PerAxis
    deff_over_d0: PerAxis
    macmullin: PerAxis
    percolating: PerAxis
    porosity: float
    porosity_percolating: PerAxis
    epsilon: PerAxis
    porosity_definition: str
    boundary: str
    length_m: PerAxis
    flux_spread: PerAxis
    flux_mismatch: PerAxis
    iterations: PerAxis
    solver: str
    precision: str
    relative_diffusivity: dict[str, float]
    concentration: tuple[np.ndarray | None, ...] = field(repr=False)
    provenance: Provenance = field(repr=False, default_factory=lambda: Provenance("tortuosity"))

    @property
    def axes(self) -> tuple[int, ...]:
        """Axes that were solved."""
        return tuple(i for i, t in enumerate(self.tau) if t is not None)


def tortuosity(
    ms: Microstructure,
    *,
    phase: str | Sequence[str] = "electrolyte",
    axis: int | str | Sequence[int] | None = None,
    boundary: Boundary = "face",
    relative_diffusivity: Mapping[str, float] | None = None,
    porosity_definition: str = "total",
    tol: float = 1e-3,
    solver: Solver = "auto",
    precision: Precision = "auto",
    keep_field: bool = True,
) -> TortuosityResult:
    """Tortuosity factor of a phase by a steady diffusion solve (see module notes).

    Parameters
    ----------
    ms : Microstructure
        Labelled voxel image with its voxel size and phase table. The voxel size
        may be ``"unknown"`` (cubic voxels): τ, ``D_eff/D0`` and ``N_M`` do not
        depend on it; ``length_m`` is then ``None``.
    phase : str or sequence of str, default "electrolyte"
        Phase names or roles that diffuse with ``D = D0`` (``"pore"``,
        ``"electrolyte"``, ``"pore,separator"``).
    axis : int, "all" or sequence of int, optional
        Direction(s) of transport; default the thickness axis of ``ms``.
    boundary : {"face", "layer"}, default "face"
        Where the concentrations are held (see module notes).
    relative_diffusivity : mapping of str to float, optional
        Further phases (names or roles) with their own ``D/D0``, e.g.
        ``{"cbd": 0.1}`` for a nanoporous carbon-binder domain; a value here also
        overrides a phase listed in ``phase``.
    porosity_definition : {"total", "percolating"}, default "total"
        Which ``ε`` divides: the whole image (TauFactor) or the percolating voxels
        only (PoreSpy).
    tol : float, default 1e-3
        Convergence: relative spread of the flux through all planes between the
        held sides (τ itself is then converged to about ``tol / 10``).
    solver : {"auto", "mg", "amg", "direct"}, default "auto"
        Linear solver (:func:`microbat.fv.solve`): direct up to 4096 unknowns (3D),
        matrix-free multigrid CG above.
    precision : {"auto", "single", "double"}, default "auto"
        Floating-point type of the solve; ``"auto"`` uses single precision above
        2²¹ voxels (halves memory; sums stay in double).
    keep_field : bool, default True
        Keep the concentration field(s) in the result.

    Returns
    -------
    TortuosityResult

    Raises
    ------
    PhaseError
        Unknown phase names, or no phase with a positive diffusivity.
    InvalidInputError
        Bad axis, boundary or option values.
    ConvergenceError
        The iterative solver did not reach ``tol``.

    Warns
    -----
    PercolationWarning
        For every direction in which the phase does not connect the held sides.

    Notes
    -----
    Cost: one sparse solve per axis. The default multigrid path is matrix-free,
    O(N) in time and memory (about 50 bytes per voxel in single precision).

    Examples
    --------
    >>> import numpy as np
    >>> from microbat import Microstructure
    >>> lab = np.ones((16, 8, 8), np.uint8); lab[:, 2:6, 2:6] = 0   # a straight pore
    >>> ms = Microstructure(lab, voxel_size=1e-6, phases="pore=0,active=1")
    >>> r = tortuosity(ms, phase="pore", axis=0)
    >>> round(r.tau[0], 9), r.percolating[0]
    (1.0, True)
    """
    t0 = time.perf_counter()
    boundary = _checked(ms, boundary, tol, "flux")
    if porosity_definition not in ("total", "percolating"):
        raise InvalidInputError(
            f"porosity_definition={porosity_definition!r}; use 'total' or 'percolating'"
        )
    values = resolve_coefficients(ms, phase, 1.0, relative_diffusivity, "relative diffusivity")
    axes = resolve_axes(ms, axis)
    dtype = resolve_precision(precision, ms.n_voxels)
    porosity, eps_total = weighted_fraction(ms, values)
    nd = ms.ndim
    out: dict[str, list[Any]] = {
        k: [None] * nd
        for k in (
            "tau", "deff", "nm", "perc", "pperc", "eps", "length", "spread", "mismatch",
            "iters", "field",
        )
    }  # fmt: skip
    methods = []
    precision_used = "single" if dtype == np.float32 else "double"
    phase_names = ", ".join(p.name for p in ms.phases.resolve(phase)) if phase else "phase"
    solves = _solves(
        ms, values, axes, out, boundary=boundary, tol=tol, solver=solver, dtype=dtype,
        keep_field=keep_field, what="diffusion",
    )  # fmt: skip
    for a, d in solves:
        eps = eps_total if porosity_definition == "total" else d.spanning_weighted
        if d.percolating:
            deff = d.relative_flux
            out["deff"][a] = deff
            out["nm"][a] = 1.0 / deff
            out["tau"][a] = eps / deff
            out["eps"][a] = eps
            out["spread"][a] = d.flux_spread
            out["mismatch"][a] = d.flux_mismatch
            out["iters"][a] = d.iterations
            out["field"][a] = d.field
            methods.append(d.method)
        else:
            warn_not_percolating(f"phase {phase_names}", a)
            out["deff"][a] = 0.0
            out["nm"][a] = math.inf
            out["tau"][a] = math.inf
            out["eps"][a] = eps
            out["spread"][a] = 0.0
            out["mismatch"][a] = 0.0
            out["iters"][a] = 0
    rel = {p.name: float(values[p.label]) for p in ms.phases.values() if values.get(p.label, 0) > 0}
    params = {
        "phase": phase if isinstance(phase, str) else list(phase),
        "axis": list(axes),
        "boundary": boundary,
        "relative_diffusivity": rel,
        "porosity_definition": porosity_definition,
        "tol": tol,
        "solver": solver,
        "precision": precision_used,
    }
    return TortuosityResult(
        tau=tuple(out["tau"]),
        deff_over_d0=tuple(out["deff"]),
        macmullin=tuple(out["nm"]),
        percolating=tuple(out["perc"]),
        porosity=porosity,
        porosity_percolating=tuple(out["pperc"]),
        epsilon=tuple(out["eps"]),
        porosity_definition=porosity_definition,
        boundary=boundary,
        length_m=tuple(out["length"]),
        flux_spread=tuple(out["spread"]),
        flux_mismatch=tuple(out["mismatch"]),
        iterations=tuple(out["iters"]),
        solver="+".join(sorted(set(methods))) or "none",
        precision=precision_used,
        relative_diffusivity=rel,
        concentration=tuple(out["field"]),
        provenance=Provenance(
            "microbat.transport.tortuosity",
            parameters=params,
            wall_time_s=time.perf_counter() - t0,
            inputs=_inputs(ms),
        ),
    )


def _checked(ms: Any, boundary: str, tol: Any, quantity: str) -> Boundary:
    """The checks that a steady solve starts with; returns the checked boundary."""
    _check_ms(ms)
    boundary = check_boundary(boundary)
    if not (isinstance(tol, int | float) and 0 < tol < 1):
        raise InvalidInputError(f"tol={tol!r}; give a relative {quantity} tolerance in (0, 1)")
    return boundary


def _solves(
    ms: Microstructure,
    values: Mapping[int, float],
    axes: Sequence[int],
    out: dict[str, list[Any]],
    *,
    what: str,
    **options: Any,
) -> Iterator[tuple[int, Any]]:
    """The directional solve of each axis, sharing one labelling of the classes.

    Fills ``out["perc"]``, ``out["pperc"]`` and ``out["length"]`` (None without a
    voxel size) for each axis; ``options`` go to ``directional_solve``.
    """
    labels3, _ = as_3d(np.asarray(ms.labels), ms.grid_spacing)
    cache = prepare(labels3, values, axes, options["dtype"])  # classes and spanning clusters
    del labels3
    for a in axes:
        d = directional_solve(ms, values, a, cache=cache, what=what, **options)
        out["perc"][a] = d.percolating
        out["pperc"][a] = d.spanning_fraction
        out["length"][a] = d.length if ms.voxel_size_known else None
        yield a, d


def _check_ms(ms: Any) -> None:
    if not isinstance(ms, Microstructure):
        raise InvalidInputError(
            f"expected a Microstructure, got {type(ms).__name__}; wrap a labelled array "
            "with microbat.Microstructure(labels, voxel_size=..., phases='pore=0,active=1')"
        )


def _inputs(ms: Microstructure) -> dict[str, Any]:
    return {
        "shape": list(ms.shape),
        "voxel_size_m": (list(ms.voxel_size) if ms.voxel_size_known else None),
        "phases": ms.phases.to_list(),
        "source": ms.metadata.get("source"),
    }
