r"""Effective electronic and ionic conductivity of a voxel microstructure.

Ohm's law ``i = -σ ∇φ`` with ``∇·i = 0`` is the same equation as steady
diffusion, so the same finite-volume solve (:mod:`microbat.fv`) applies: every
phase has its own conductivity ``σ_p`` (S/m), faces conduct with the harmonic
mean, the potential is held at 1 V and 0 V on the two sides of the chosen axis
(``boundary="face"`` on the outer faces, ``L = n h``; ``"layer"`` on the first and
last voxel layers, ``L = (n - 1) h``) and the other sides are insulating. The
current ``I`` through every plane gives

.. math::

    \sigma_\mathrm{eff} = \frac{I L}{A \, \Delta\varphi}, \qquad
    \tau_\sigma = \frac{\bar\sigma}{\sigma_\mathrm{eff}}, \qquad
    \bar\sigma = \sum_p \phi_p \sigma_p,

with ``σ̄`` the volume-weighted (Wiener, parallel) upper bound, so that the
conductivity tortuosity factor ``τ_σ ≥ 1`` (TauFactor's multi-phase convention).

Electronic conductivity: give the solid phases (``{"active": 0.1, "cbd": 50}``);
the electrolyte then blocks. Ionic conductivity: give the electrolyte
(``{"electrolyte": 1.0}``, optionally ``"cbd": 0.1`` for ions in the nanoporous
binder); the solid then blocks. Only the network connected to both held sides
carries current.

:func:`uniform_reaction_drop` turns ``σ_eff`` into the potential drop across an
electrode whose current enters (or leaves) the network at one face and is
exchanged uniformly through the thickness ``L``: the current in the network falls
linearly, ``i(x) = i (1 − x/L)``, so ``Δφ = ∫ i(x)/σ_eff dx = i L / (2 σ_eff)``
(the uniform-reaction limit of porous-electrode theory, Newman and Tobias 1962 [3]_).
An estimate of how far one phase alone limits a discharge before running it.

References
----------
.. [1] S. J. Cooper et al., "TauFactor: An open-source application for calculating
   tortuosity factors from tomographic data", SoftwareX 5 (2016) 203-210.
.. [2] O. Wiener, "Die Theorie des Mischkörpers für das Feld der stationären
   Strömung", Abh. Math.-Phys. Kl. Königl. Sächs. Ges. Wiss. 32 (1912) 509-604.
.. [3] J. Newman and C. W. Tobias, "Theoretical analysis of current distribution in
   porous electrodes", J. Electrochem. Soc. 109 (1962) 1183-1191,
   doi:10.1149/1.2425269.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from microbat.core.errors import InvalidInputError
from microbat.core.microstructure import Microstructure
from microbat.core.phases import PhaseRole
from microbat.core.results import Provenance, Result
from microbat.transport._steady import (
    Boundary,
    PercolationWarning,
    Precision,
    Solver,
    resolve_axes,
    resolve_coefficients,
    resolve_precision,
    warn_not_percolating,
    weighted_fraction,
)

__all__ = ["ConductivityResult", "conductivity", "uniform_reaction_drop"]

PerAxis = tuple[Any, ...]


@dataclass(frozen=True)
class ConductivityResult(Result):
    """Effective conductivity per axis (array axis order; ``None`` where not solved).

    Attributes
    ----------
    sigma_eff : tuple of float or None
        Effective conductivity (S/m); 0 where the conducting phases do not percolate.
    tau : tuple of float or None
        Conductivity tortuosity factor ``σ̄ / σ_eff`` (``inf`` where not percolating).
    sigma_mean : float
        Volume-weighted mean conductivity ``σ̄ = Σ φ_p σ_p`` (S/m), the parallel bound.
    volume_fraction : float
        Volume fraction of the conducting phases.
    volume_fraction_percolating : tuple of float or None
        Volume fraction connected to both held sides, per axis.
    percolating : tuple of bool or None
        Whether the conducting phases connect the two held sides.
    kind : str
        ``"electronic"`` (only solid phases conduct), ``"ionic"`` (an electrolyte
        conducts) or ``"mixed"``.
    conductivities : dict
        Conductivity of each conducting phase by name (S/m).
    boundary : str
        ``"face"`` or ``"layer"``.
    length_m : tuple of float or None
        Transport length per axis (m); ``None`` when the voxel size is unknown.
    flux_spread : tuple of float or None
        Relative spread of the current through the planes (convergence measure).
    iterations : tuple of int or None
        Krylov iterations per axis.
    solver : str
        Linear solver used.
    precision : str
        ``"single"`` or ``"double"``.
    potential : tuple of ndarray or None
        Potential field (V) per solved axis, 1 V at the first side, 0 V at the last,
        NaN off the percolating network; summarised by :meth:`to_dict`.
    provenance : Provenance
        How the result was made.
    """

    sigma_eff: PerAxis
    tau: PerAxis
    sigma_mean: float
    volume_fraction: float
    volume_fraction_percolating: PerAxis
    percolating: PerAxis
    kind: str
    conductivities: dict[str, float]
    boundary: str
    length_m: PerAxis
    flux_spread: PerAxis
    iterations: PerAxis
    solver: str
    precision: str
    potential: tuple[np.ndarray | None, ...] = field(repr=False)
    provenance: Provenance = field(repr=False, default_factory=lambda: Provenance("conductivity"))


def conductivity(
    ms: Microstructure,
    *,
    conductivities: Mapping[str, float] | None = None,
    axis: int | str | Sequence[int] | None = None,
    boundary: Boundary = "face",
    tol: float = 1e-3,
    solver: Solver = "auto",
    precision: Precision = "auto",
    keep_field: bool = True,
) -> ConductivityResult:
    """Effective conductivity of the conducting network (see module notes).

    Parameters
    ----------
    ms : Microstructure
        Labelled voxel image.
    conductivities : mapping of str to float, optional
        Conductivity (S/m) of each conducting phase, by name or role; phases not
        listed block. Default: every electron-conducting phase (roles active,
        carbon_binder, current_collector) at 1 S/m, so that ``sigma_eff`` is the
        relative electronic conductivity ``σ_eff / σ``.
    axis : int, "all" or sequence of int, optional
        Direction(s); default the thickness axis.
    boundary : {"face", "layer"}, default "face"
        Where the potentials are held.
    tol : float, default 1e-3
        Relative spread of the current through all planes (convergence).
    solver : {"auto", "mg", "amg", "direct"}, default "auto"
        Linear solver.
    precision : {"auto", "single", "double"}, default "auto"
        Floating-point type.
    keep_field : bool, default True
        Keep the potential field(s).

    Returns
    -------
    ConductivityResult

    Raises
    ------
    PhaseError
        Unknown phase, or no conducting phase.
    InvalidInputError
        Negative or non-finite conductivity, bad axis or boundary.

    Warns
    -----
    PercolationWarning
        For every direction in which the conducting phases do not percolate.

    Examples
    --------
    Two parallel slabs along axis 0 conduct with the volume-weighted mean:

    >>> import numpy as np
    >>> from microbat import Microstructure
    >>> lab = np.zeros((10, 10, 10), np.uint8); lab[:, :, 5:] = 1
    >>> ms = Microstructure(lab, voxel_size=1e-6, phases="active=0,cbd=1")
    >>> r = conductivity(ms, conductivities={"active": 1.0, "cbd": 100.0}, axis=0)
    >>> round(r.sigma_eff[0], 9)
    50.5
    """
    from microbat.transport.diffusion import _checked, _inputs, _solves

    t0 = time.perf_counter()
    boundary = _checked(ms, boundary, tol, "current")
    if conductivities is None:
        solid = [p.name for p in ms.phases.values() if p.role.is_solid]
        if not solid:
            raise InvalidInputError(
                "no electron-conducting phase (active, carbon_binder, current_collector) in "
                f"the phase table {ms.phases.to_spec()}; give conductivities={{name: S/m}}"
            )
        conductivities = dict.fromkeys(solid, 1.0)
    values = resolve_coefficients(ms, None, 0.0, conductivities, "conductivity")
    axes = resolve_axes(ms, axis)
    dtype = resolve_precision(precision, ms.n_voxels)
    frac, sigma_mean = weighted_fraction(ms, values)
    nd = ms.ndim
    keys = ("sig", "tau", "perc", "pperc", "length", "spread", "iters", "field")
    out: dict[str, list[Any]] = {k: [None] * nd for k in keys}
    methods = []
    names = {
        p.name: float(values[p.label]) for p in ms.phases.values() if values.get(p.label, 0) > 0
    }
    roles = {ms.phases[n].role for n in names}
    if roles <= {PhaseRole.ACTIVE, PhaseRole.CARBON_BINDER, PhaseRole.CURRENT_COLLECTOR}:
        kind = "electronic"
    elif PhaseRole.ELECTROLYTE in roles or PhaseRole.SOLID_ELECTROLYTE in roles:
        kind = "ionic" if not (roles & {PhaseRole.ACTIVE, PhaseRole.CURRENT_COLLECTOR}) else "mixed"
    else:
        kind = "mixed"
    solves = _solves(
        ms, values, axes, out, boundary=boundary, tol=tol, solver=solver, dtype=dtype,
        keep_field=keep_field, what="conduction",
    )  # fmt: skip
    for a, d in solves:
        if d.percolating:
            out["sig"][a] = d.relative_flux
            out["tau"][a] = sigma_mean / d.relative_flux
            out["spread"][a] = d.flux_spread
            out["iters"][a] = d.iterations
            out["field"][a] = d.field
            methods.append(d.method)
        else:
            warn_not_percolating(f"conducting phase(s) {', '.join(names)}", a, "resistance")
            out["sig"][a] = 0.0
            out["tau"][a] = math.inf
            out["spread"][a] = 0.0
            out["iters"][a] = 0
    return ConductivityResult(
        sigma_eff=tuple(out["sig"]),
        tau=tuple(out["tau"]),
        sigma_mean=sigma_mean,
        volume_fraction=frac,
        volume_fraction_percolating=tuple(out["pperc"]),
        percolating=tuple(out["perc"]),
        kind=kind,
        conductivities=names,
        boundary=boundary,
        length_m=tuple(out["length"]),
        flux_spread=tuple(out["spread"]),
        iterations=tuple(out["iters"]),
        solver="+".join(sorted(set(methods))) or "none",
        precision="single" if dtype == np.float32 else "double",
        potential=tuple(out["field"]),
        provenance=Provenance(
            "microbat.transport.conductivity",
            parameters={
                "conductivities": names,
                "axis": list(axes),
                "boundary": boundary,
                "tol": tol,
                "solver": solver,
            },
            wall_time_s=time.perf_counter() - t0,
            inputs=_inputs(ms),
        ),
    )


def uniform_reaction_drop(
    ms: Microstructure,
    current_density: float,
    *,
    conductivities: Mapping[str, float] | None = None,
    axis: int | None = None,
) -> float:
    """Potential drop across the electrode in a conducting network, uniform reaction.

    ``Δφ = i L / (2 σ_eff)`` (module notes): the current enters the network at one
    face of ``axis`` and is exchanged uniformly through the thickness ``L``.

    Parameters
    ----------
    ms : Microstructure
        Labelled electrode with its voxel size.
    current_density : float
        Current per cross-section of the image, A/m² (e.g. the 1C current over
        the image's face).
    conductivities : mapping of str to float, optional
        Conductivity (S/m) of each conducting phase, as in :func:`conductivity`
        (default: every electron conductor at 1 S/m, giving the drop for 1 S/m).
    axis : int, optional
        Through-thickness axis (default the thickness axis of ``ms``).

    Returns
    -------
    float
        The drop in V; ``inf`` when the network does not connect the two faces.

    Examples
    --------
    >>> import numpy as np
    >>> from microbat import Microstructure
    >>> ms = Microstructure(np.zeros((10, 4, 4), np.uint8), voxel_size=1e-5, phases="active=0")
    >>> round(uniform_reaction_drop(ms, 100.0, conductivities={"active": 0.18}), 6)
    0.027778
    """
    ax = ms.thickness_axis if axis is None else int(axis)
    if not (isinstance(current_density, int | float) and math.isfinite(current_density)):
        raise InvalidInputError(f"current_density={current_density!r}; give a finite A/m²")
    with warnings.catch_warnings():  # a network that does not percolate gives inf
        warnings.simplefilter("ignore", PercolationWarning)
        sig = conductivity(ms, conductivities=conductivities, axis=ax, keep_field=False)
    sigma_eff = sig.sigma_eff[ax]
    if not sigma_eff:
        return math.inf
    return abs(current_density) * float(ms.extent[ax]) / (2.0 * sigma_eff)
