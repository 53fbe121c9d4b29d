"""Manufacturing constraints of a design study, checked on every trial.

Each constraint gives a *violation* ``g``: ``g ≤ 0`` is met, ``g > 0`` is violated
by that much (optuna's convention for ``constraints_func``, so infeasible trials
stay in the study with the constraint they broke). Values are in the unit of the
constrained quantity; percolation gives the share of the phase that would have to
join the spanning network (1 when nothing spans).

* ``porosity_min`` / ``porosity_max`` — on the *measured* porosity of the generated
  sample (not the requested one: calendering and voxelisation move it).
* ``cbd_min`` — carbon-binder fraction (measured) at least this, for electronic
  percolation and adhesion.
* ``thickness_max``, ``calendering_max`` — on the descriptors.
* ``percolation`` — every listed phase (name, role or ``solid``) has a cluster
  connecting the current collector to the separator
  (:func:`microbat.imaging.connectivity.analyze_connectivity`, 26-connectivity for
  the electrolyte, 6 for solids).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from microbat.core.microstructure import Microstructure
from microbat.design.space import DEFAULT_PERCOLATION, ConstraintSettings

__all__ = ["constraint_names", "evaluate_constraints"]


def constraint_names(
    settings: ConstraintSettings, percolation: tuple[str, ...] | None = None
) -> list[str]:
    """Names of the active constraints, in a fixed order.

    ``percolation`` overrides ``settings.percolation`` (the space's generator default
    when that is None; see :attr:`DesignSpace.percolation`).
    """
    out = [
        k
        for k in ("porosity_min", "porosity_max", "cbd_min", "thickness_max", "calendering_max")
        if getattr(settings, k) is not None
    ]
    out += [f"percolation:{p}" for p in _phases(settings, percolation)]
    return out


def _phases(settings: ConstraintSettings, percolation: tuple[str, ...] | None) -> tuple[str, ...]:
    if percolation is not None:
        return tuple(percolation)
    if settings.percolation is not None:
        return tuple(settings.percolation)
    return DEFAULT_PERCOLATION["electrode"]


def evaluate_constraints(
    settings: ConstraintSettings,
    params: Mapping[str, Any],
    ms: Microstructure | None,
    measured: Mapping[str, float],
    percolation: tuple[str, ...] | None = None,
) -> dict[str, float]:
    """Violation of each active constraint (``≤ 0`` met).

    Parameters
    ----------
    settings : ConstraintSettings
    params : mapping
        The complete descriptor values of the trial.
    ms : Microstructure or None
        The generated sample (``None``: percolation counted as violated, 1).
    measured : mapping
        ``porosity`` and ``cbd_fraction`` measured on the sample.
    percolation : tuple of str, optional
        Overrides ``settings.percolation`` (see :func:`constraint_names`).

    Returns
    -------
    dict of str to float
    """
    g: dict[str, float] = {}
    eps = float(measured["porosity"])
    if settings.porosity_min is not None:
        g["porosity_min"] = settings.porosity_min - eps
    if settings.porosity_max is not None:
        g["porosity_max"] = eps - settings.porosity_max
    if settings.cbd_min is not None:
        g["cbd_min"] = settings.cbd_min - float(measured["cbd_fraction"])
    if settings.thickness_max is not None:
        g["thickness_max"] = float(params["thickness"]) - settings.thickness_max
    if settings.calendering_max is not None:
        g["calendering_max"] = float(params.get("calendering", 0.0)) - settings.calendering_max
    phases = _phases(settings, percolation)
    if phases:
        if ms is None:
            for p in phases:
                g[f"percolation:{p}"] = 1.0
        else:
            from microbat.imaging.connectivity import analyze_connectivity

            res = analyze_connectivity(ms, phases=list(phases))
            for p in phases:
                share = res.phase_fractions[p].get("percolating", 0.0)
                share = 0.0 if share != share else float(share)  # NaN: empty phase
                # met (−share ≤ 0) when a spanning cluster exists; else 1
                g[f"percolation:{p}"] = -share if res.percolates(p) else 1.0
    return g
