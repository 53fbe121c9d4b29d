r"""Homogenised impedance: the linearised porous-electrode (transmission-line) model.

Equations
---------
The small-signal, linearised P2D electrode without electrolyte concentration
impedance is a two-rail transmission line (see :mod:`microbat.cell.eis.analytic`)
of thickness ``L`` and cross-section ``A`` with

.. math::

    r_1 = \frac{1}{\kappa_\mathrm{eff} A}, \qquad
    r_2 = \frac{1}{\sigma_\mathrm{eff} A}, \qquad
    \zeta(\omega) = \frac{1}{a_s A \, Y(\omega)},

``Y`` the interfacial admittance of :class:`~microbat.cell.eis.EISParameters`
(charge transfer, double layer, spherical solid diffusion). The effective
properties come from the microstructure: ``κ_eff = κ ε/τ`` by a steady diffusion
solve through the ion-conducting phases (carbon-binder at ``cbd_ionic_fraction``,
:func:`microbat.transport.tortuosity`), ``σ_eff`` by the same solve through the
electron-conducting phases, and ``a_s`` by
:func:`microbat.imaging.metrics.specific_surface_area` (active/electrolyte plus
the wetted fraction of active/carbon-binder). PyBaMM 26.10 has no
frequency-domain solver (its EIS lives in the separate ``pybamm-eis`` package),
so this closed form is the homogenised reference.

On a composite cathode (a phase of role ``solid_electrolyte``) the ionic rail is
the solid electrolyte, a single-ion conductor: ``κ_eff = σ_SE ε_SE/τ_SE``
(separator-role voxels count as dense solid electrolyte), ``σ_eff`` through the
active material and carbon-binder (electronic only) and ``a_s`` the active |
solid-electrolyte contact area per volume (see :mod:`microbat.cell.eis.resolved`).

Assumptions: uniform properties through the thickness; the current collector
side is reached only by the solid and the separator side only by the
electrolyte; separator-role voxels are not treated separately.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from microbat.cell.eis.analytic import transmission_line
from microbat.cell.eis.parameters import EISParameters
from microbat.cell.eis.result import EISResult, default_frequencies
from microbat.core.errors import InvalidInputError
from microbat.core.microstructure import Microstructure
from microbat.core.phases import PhaseRole
from microbat.core.results import Provenance

__all__ = ["effective_properties", "homogenized_eis"]


def effective_properties(ms: Microstructure, params: EISParameters) -> dict[str, float]:
    """Effective ionic and electronic conductivity and specific area of ``ms``.

    Parameters
    ----------
    ms : Microstructure
        3D labelled electrode.
    params : EISParameters
        Bulk conductivities and carbon-binder fractions.

    Returns
    -------
    dict
        ``kappa_eff_S_per_m``, ``sigma_eff_S_per_m``, ``specific_area_per_m``,
        ``ionic_efficiency`` (ε/τ of the ionic path), ``electronic_efficiency``,
        ``thickness_m``, ``area_m2``.
    """
    from microbat.imaging.metrics import specific_surface_area
    from microbat.transport.diffusion import tortuosity

    roles = {ph.name: ph.role for ph in ms.phases.values()}
    single_ion = PhaseRole.SOLID_ELECTROLYTE in roles.values()
    ion_roles = (
        (PhaseRole.SOLID_ELECTROLYTE, PhaseRole.SEPARATOR)
        if single_ion
        else (PhaseRole.ELECTROLYTE,)
    )
    pores = [n for n, r in roles.items() if r in ion_roles]
    cbd = [n for n, r in roles.items() if r == PhaseRole.CARBON_BINDER]
    active = [n for n, r in roles.items() if r == PhaseRole.ACTIVE]
    if not pores or not active:
        raise InvalidInputError(
            "the homogenised model needs an electrolyte and an active phase; the phases are "
            f"{ms.phases.to_spec()}"
        )
    counts = ms.counts()
    cbd = [n for n in cbd if counts.get(n, 0)]
    ion = tortuosity(
        ms,
        phase=pores,
        relative_diffusivity=(
            None if single_ion else ({n: params.cbd_ionic_fraction for n in cbd} or None)
        ),
        keep_field=False,
    )
    sig_rel = params.cbd_conductivity_S_per_m / params.active_conductivity_S_per_m
    ele = tortuosity(
        ms,
        phase=active,
        relative_diffusivity={n: sig_rel for n in cbd} or None,
        keep_field=False,
    )
    a_s = specific_surface_area(ms, active, pores)
    if cbd and not single_ion:
        a_s += params.cbd_wetted_fraction * specific_surface_area(ms, active, cbd)
    ax = ms.thickness_axis
    eff_i = float(ion.deff_over_d0[0] or 0.0)
    eff_e = float(ele.deff_over_d0[0] or 0.0)
    kappa = (
        params.solid_electrolyte_conductivity_S_per_m
        if single_ion
        else params.electrolyte_conductivity_S_per_m
    )
    return {
        "kappa_eff_S_per_m": kappa * eff_i,
        "sigma_eff_S_per_m": params.active_conductivity_S_per_m * eff_e,
        "specific_area_per_m": float(a_s),
        "ionic_efficiency": eff_i,
        "electronic_efficiency": eff_e,
        "thickness_m": float(ms.extent[ax]),
        "area_m2": float(np.prod([ms.extent[a] for a in range(3) if a != ax])),
    }


def homogenized_eis(
    ms: Microstructure,
    params: EISParameters | None = None,
    *,
    frequencies: Sequence[float] | np.ndarray | None = None,
    blocking: bool = False,
) -> EISResult:
    """Impedance of the homogenised electrode fed the microstructure's properties.

    Parameters
    ----------
    ms : Microstructure
        3D labelled electrode (the same one given to
        :func:`~microbat.cell.eis.resolved_eis`).
    params : EISParameters, optional
        The same material and interface parameters.
    frequencies : sequence of float, optional
        Hz; default 100 kHz to 10 mHz, 8 per decade.
    blocking : bool, default False
        Double layer only.

    Returns
    -------
    EISResult
        ``model="homogenized"``; ``details`` holds the effective properties.

    Raises
    ------
    InvalidInputError
        Missing phases; a phase that does not percolate through the thickness.
    """
    t0 = time.perf_counter()
    params = params or EISParameters()
    freqs = default_frequencies() if frequencies is None else np.asarray(frequencies, float)
    eff = effective_properties(ms, params)
    if eff["kappa_eff_S_per_m"] <= 0 or eff["sigma_eff_S_per_m"] <= 0:
        raise InvalidInputError(
            "the ionic or the electronic phase does not percolate through the thickness; the "
            "homogenised model has no path (use resolved_eis, which handles dead ends)"
        )
    A, L = eff["area_m2"], eff["thickness_m"]
    y = params.admittance(2 * np.pi * freqs, blocking=blocking)
    zeta = 1.0 / (eff["specific_area_per_m"] * A * y)
    z = transmission_line(
        1 / (eff["kappa_eff_S_per_m"] * A), 1 / (eff["sigma_eff_S_per_m"] * A), zeta, L
    )
    prov = Provenance(
        function="microbat.cell.eis.homogenized_eis",
        parameters={"blocking": blocking, "n_frequencies": int(freqs.size)},
        wall_time_s=time.perf_counter() - t0,
        inputs={"shape": list(ms.shape), "voxel_size": list(ms.voxel_size)},
    )
    return EISResult(
        frequency_Hz=freqs,
        z_real_ohm=z.real.copy(),
        z_imag_ohm=z.imag.copy(),
        area_m2=A,
        model="homogenized",
        blocking=blocking,
        interface_area_m2=eff["specific_area_per_m"] * A * L,
        parameters=params.to_dict(),
        details={
            **eff,
            "ionic_conductor": (
                "solid_electrolyte"
                if any(ph.role == PhaseRole.SOLID_ELECTROLYTE for ph in ms.phases.values())
                else "liquid"
            ),
        },
        provenance=prov,
    )
