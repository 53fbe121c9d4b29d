"""Objectives of a design study: what each measures, its unit, direction and model.

Each objective is computed by :func:`microbat.design.evaluate_design` from the
models of :mod:`microbat.cell`, :mod:`microbat.degradation` and the measured
microstructure; :data:`OBJECTIVES` lists them:

``energy_density`` (Wh/L, maximise)
    Discharge energy at ``evaluation.low_c_rate`` per volume of the positive
    electrode coating, ``E / (A L)``.
``specific_energy`` (Wh/kg, maximise)
    The same energy per mass of the coating, ``E / (A L ρ̄)`` with
    ``ρ̄ = φ_a ρ_a + φ_cbd ρ_cbd + ε ρ_e`` (electrolyte-filled).
``power_retention`` (–, maximise)
    Capacity at ``high_c_rate`` over capacity at ``low_c_rate``.
``high_rate_energy_density`` (Wh/L, maximise)
    Discharge energy at ``high_c_rate`` per coating volume.
``peak_stress`` (MPa, minimise)
    95th percentile over the particles of the largest tensile stress at the end
    of a charge (delithiation of the positive electrode) at ``charge_c_rate``, from
    the closed-form free-sphere solution (:func:`microbat.degradation.screen_particles`;
    Christensen & Newman 2006).
``cracked_fraction`` (–, minimise)
    Volume fraction of the particles whose Griffith criterion is met at that rate.
``active_cost`` (kg/kWh, minimise)
    Cost proxy: mass of active material per delivered energy at the low rate
    (active material dominates the electrode's material cost, BatPaC).

``ionic_transport`` (–, maximise)
    Through-plane transport efficiency of the ion-conducting phase, ``ε / τ`` (the
    pores of an electrode, the solid electrolyte of a composite;
    :func:`microbat.transport.tortuosity`, 0 when it does not percolate).
``active_volume_fraction`` (–, maximise)
    Measured active-material fraction: the energy per volume without a cell model
    (``E/V = φ_a q Ū``), for the composite generator.
``heterogeneity_index`` (–, minimise; ``resolved`` fidelity only)
    The aging heterogeneity index at the end of the high-rate discharge: the
    volume-weighted coefficient of variation of the particles' state of charge
    (:func:`microbat.degradation.heterogeneity.aging_heterogeneity`, Harris & Lu
    2013), from the resolved model watched by a
    :class:`~microbat.degradation.plating.PlatingMonitor`.

``plating_margin`` is refused: lithium plates on the negative electrode, and the
design space generates positive electrodes (a negative-electrode design space is
not there yet).

References
----------
.. [1] J. Christensen, J. Newman, "Stress generation and fracture in lithium
   insertion materials", J. Solid State Electrochem. 10, 293–319 (2006),
   doi:10.1007/s10008-006-0095-1.
.. [3] S. J. Harris, P. Lu, "Effects of inhomogeneities — nanoscale to mesoscale —
   on the durability of Li-ion batteries", J. Phys. Chem. C 117, 6481 (2013),
   doi:10.1021/jp311431z.
.. [2] K. W. Knehr, J. J. Kubal, P. A. Nelson, S. Ahmed, "Battery Performance and
   Cost Modeling for Electric-Drive Vehicles (BatPaC 5.0)", Argonne National
   Laboratory ANL/CSE-22/1 (2022).
"""

from __future__ import annotations

from dataclasses import dataclass

from microbat.core.errors import InvalidInputError

__all__ = ["OBJECTIVES", "UNAVAILABLE", "ObjectiveInfo", "check_objective"]


@dataclass(frozen=True)
class ObjectiveInfo:
    """One objective.

    Attributes
    ----------
    name : str
    direction : {"maximize", "minimize"}
    unit : str
    needs : str
        What computes it: ``"cell"`` (the discharge model), ``"mechanics"``
        (particle screening), ``"transport"`` (a tortuosity solve), ``"geometry"``
        (the sample's fractions) or ``"resolved"`` (the resolved model only).
    description : str
    """

    name: str
    direction: str
    unit: str
    needs: str
    description: str


#: Every objective a study can select.
OBJECTIVES: dict[str, ObjectiveInfo] = {
    o.name: o
    for o in (
        ObjectiveInfo(
            "energy_density",
            "maximize",
            "Wh/L",
            "cell",
            "Energy at the low rate per volume of the positive coating",
        ),
        ObjectiveInfo(
            "specific_energy",
            "maximize",
            "Wh/kg",
            "cell",
            "Energy at the low rate per mass of the electrolyte-filled positive coating",
        ),
        ObjectiveInfo(
            "power_retention",
            "maximize",
            "",
            "cell",
            "Capacity at the high rate over capacity at the low rate",
        ),
        ObjectiveInfo(
            "high_rate_energy_density",
            "maximize",
            "Wh/L",
            "cell",
            "Energy at the high rate per volume of the positive coating",
        ),
        ObjectiveInfo(
            "peak_stress",
            "minimize",
            "MPa",
            "mechanics",
            "95th percentile of the particles' largest tensile stress at the end of a charge "
            "at the charge rate (closed-form free sphere)",
        ),
        ObjectiveInfo(
            "cracked_fraction",
            "minimize",
            "",
            "mechanics",
            "Particle volume fraction meeting the Griffith criterion at the charge rate",
        ),
        ObjectiveInfo(
            "ionic_transport",
            "maximize",
            "",
            "transport",
            "Through-plane ε/τ of the ion-conducting phase (pores, or the solid electrolyte "
            "of a composite)",
        ),
        ObjectiveInfo(
            "active_volume_fraction",
            "maximize",
            "",
            "geometry",
            "Measured active-material volume fraction (energy per volume without a cell model)",
        ),
        ObjectiveInfo(
            "heterogeneity_index",
            "minimize",
            "",
            "resolved",
            "Aging heterogeneity index (volume-weighted CoV of the particles' state of "
            "charge) at the end of the high-rate discharge; resolved fidelity only",
        ),
        ObjectiveInfo(
            "active_cost",
            "minimize",
            "kg/kWh",
            "cell",
            "Cost proxy: active-material mass per delivered energy at the low rate",
        ),
    )
}

#: Objectives named in the issue whose analyses are not in microbat yet.
UNAVAILABLE: dict[str, str] = {
    "plating_margin": "lithium plates on the negative electrode and the design space "
    "generates positive electrodes; a negative-electrode design space is not there yet",
}


def check_objective(name: str) -> ObjectiveInfo:
    """The objective called ``name``, or a one-line error.

    Raises
    ------
    InvalidInputError
        Unknown name, or an objective whose analysis is not available yet.
    """
    if name in OBJECTIVES:
        return OBJECTIVES[name]
    if name in UNAVAILABLE:
        raise InvalidInputError(
            f"objective {name!r} is not available: {UNAVAILABLE[name]}; "
            f"available: {', '.join(OBJECTIVES)}"
        )
    raise InvalidInputError(f"unknown objective {name!r}; known: {', '.join(OBJECTIVES)}")


def objective_reference() -> str:
    """Markdown table of the objectives (pasted in ``docs/design.md``)."""
    lines = ["| objective | direction | unit | model | description |", "|---|---|---|---|---|"]
    for o in OBJECTIVES.values():
        lines.append(f"| `{o.name}` | {o.direction} | {o.unit} | {o.needs} | {o.description} |")
    for k, v in UNAVAILABLE.items():
        lines.append(f"| `{k}` | – | – | – | not available yet: {v} |")
    return "\n".join(lines)
