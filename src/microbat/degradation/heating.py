r"""Carbon-binder bottlenecks and Joule heating on the voxels.

Current funnels through thin carbon-binder necks and particle contacts. This
module solves the steady charge transport on the finite-volume core
(:mod:`microbat.fv`), evaluates the Joule heat of every voxel, finds the necks
that carry the highest current density, and solves the steady heat conduction
that this heat drives.

Two modes
---------
``through="electrode"`` (operating current)
    Electrons in the solid network (active material, carbon-binder, current
    collector; potential ``φ_s``), ions in the electrolyte network (pores,
    the electrolyte in the carbon-binder's nanopores with ``κ ε_cbd^b``, a porous
    separator with ``κ ε_sep^b``; potential ``φ_e``), coupled by charge transfer
    on the active/electrolyte faces, linearised Butler–Volmer
    ``i = i_0 F/(RT) (φ_s − φ_e − U)`` (the faces towards carbon-binder count with
    the area fraction ``ε_cbd``, as in :mod:`microbat.cell.resolved`). The
    current collector (index 0 of the thickness axis) holds ``φ_s``, the
    separator face (last index) holds ``φ_e``; every other side is insulating.
    A uniform open-circuit potential ``U`` only shifts ``φ_e``, so this is the
    steady current distribution of an electrode at uniform concentration and
    state of charge — the instant the current is switched on, before
    concentration gradients build up (use :mod:`microbat.cell.resolved` for
    those). The heat is the ohmic heat of both networks plus the irreversible
    reaction heat ``i η`` at the interface (reported apart); reversible
    (entropic) heat is not included.
``through="solid"``
    Pure electronic conduction in the solid network from the current-collector
    face to the separator face (the last layer that holds solid), which isolates
    the carbon-binder bottlenecks.

Both systems are linear, so they are solved once for a unit potential
difference and scaled to the requested current density ``J`` (A/m² of the
image cross-section).

Discrete Joule heat
-------------------
The current through the face between voxels ``p`` and ``q`` is
``I = g (u_p − u_q)`` with the harmonic-mean face conductance ``g`` of
:mod:`microbat.fv.grid`, which is two half-cells in series, ``1/g = h/(2σ_p A) +
h/(2σ_q A)`` (plus the charge-transfer resistance ``1/(g_ct A)`` on reaction
faces). Each half-cell's ``I² r`` goes to its own voxel, so the heat density of
a voxel is ``q = Σ_faces (I/A)² / (2σ)`` over its six faces — ``|j|²/σ`` for a
uniform current — and the total is exactly ``Σ I²/g = I ΔV`` at the discrete
solution (Tellegen's theorem; checked to solver tolerance in the tests).

Bottlenecks
-----------
The voxels in the top 1 % of heat density (with any tied to the last of them) are
grouped into face-connected clusters (the necks); each is reported with its heat,
its peak current density, and the current through it, ``½ Σ |I|`` over the faces
of its boundary (what enters equals what leaves), against the total current. For
a cluster that cuts across a neck, as hot necks do, this is the current through
the neck; a ragged cluster that the same current leaves and re-enters counts it
more than once (a ``current_fraction`` above 1 says so).

Temperature
-----------
``-∇·(k ∇T) = q`` with per-phase thermal conductivities, ``T`` held at ``T_0``
on the cooled face (the current collector by default: the metal foil is the
heat sink) and every other side adiabatic. The particle-scale temperature rise is
tiny: an electrode generating ``Q'' = J² R_area`` per area (≈ 1 W/m² at 30 A/m²)
over its thickness ``L`` rises by ``Q'' L / (2 k)`` ≈ 1e-5 K across it, and a
neck dissipating ``P`` heats its surroundings at distance ``r`` by ``P/(4π k r)``
(≈ 1e-6 K for the pW of a hot neck at 1 µm; a point source of 1 µW would give
≈ 0.4 K there, but necks carry far less). A cell thermal model therefore needs the
heat generation per area and per volume and its distribution over the depth,
which the result gives.

Default properties (:class:`HeatProperties`, SI)
------------------------------------------------
Electrical: active material 0.18 S/m and the current collector (Al) 3.69e7 S/m
(LG M50 positive electrode, Chen et al. 2020 [1]_, PyBaMM ``Chen2020``);
carbon-binder 10 S/m (Zielke et al. 2015 [2]_, the value of
:mod:`microbat.cell.resolved`), its electrolyte-filled porosity 0.5 with a
Bruggeman exponent 1.5 (:mod:`microbat.cell.resolved`); electrolyte 0.9487 S/m
(1 M LiPF6 in EC:EMC at 25 °C, Nyman et al. 2008 [3]_, PyBaMM ``Chen2020``);
separator porosity 0.47 with Bruggeman 1.5 (Chen 2020 [1]_); exchange-current
density 3.41 A/m² (Chen 2020's NMC811 kinetics at half lithiation and 1 M,
25 °C [1]_). Thermal: active 3.7 W/(m K) (LiₓCoO₂, the lower end of the
3.7–5.4 W/(m K) measured by Cho et al. 2014 [4]_, the layered oxide with a
measured particle-level value; the low end overestimates ΔT);
carbon-binder 0.19 W/(m K) (PVDF binder [5]_; the carbon raises it, so this
too overestimates ΔT); electrolyte 0.2 W/(m K) (organic carbonates,
0.15–0.21 W/(m K) [6]_; Chen 2020's electrolyte-soaked separator is 0.16); gas
0.0263 W/(m K) (air at 300 K [7]_); separator 0.16 W/(m K) and aluminium
237 W/(m K) (Chen 2020 [1]_). ΔT scales as ``1/k``: none of these choices moves it
by more than a factor of a few.

References
----------
.. [1] C.-H. Chen, F. Brosa Planella, K. O'Regan, D. Gastol, W. D. Widanage,
   E. Kendrick, "Development of experimental techniques for parameterization of
   multi-scale lithium-ion battery models", J. Electrochem. Soc. 167 (2020) 080534.
.. [2] L. Zielke, T. Hutzenlaub, D. R. Wheeler, C.-W. Chao, I. Manke, A. Hilger,
   N. Paust, R. Zengerle, S. Thiele, "Three-phase multiscale modeling of a LiCoO2
   cathode: combining the advantages of FIB-SEM imaging and X-ray tomography",
   Adv. Energy Mater. 5 (2015) 1401612.
.. [3] A. Nyman, M. Behm, G. Lindbergh, "Electrochemical characterisation and
   modelling of the mass transport phenomena in LiPF6-EC-EMC electrolyte",
   Electrochim. Acta 53 (2008) 6356-6365.
.. [4] J. Cho, M. D. Losego, H. G. Zhang, H. Kim, J. Zuo, I. Petrov, D. G. Cahill,
   P. V. Braun, "Electrochemically tunable thermal conductivity of lithium cobalt
   oxide", Nat. Commun. 5 (2014) 4035.
.. [5] J. E. Mark (ed.), Physical Properties of Polymers Handbook, 2nd ed.,
   Springer (2007): poly(vinylidene fluoride), 0.17–0.19 W/(m K).
.. [6] F. Richter, S. Kjelstrup, P. J. S. Vie, O. S. Burheim, "Thermal
   conductivity and internal temperature profiles of Li-ion secondary
   batteries", J. Power Sources 359 (2017) 592-600.
.. [7] T. L. Bergman, A. S. Lavine, F. P. Incropera, D. P. DeWitt, Fundamentals of
   Heat and Mass Transfer, 7th ed., Wiley (2011), Table A.4.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from microbat.core.constants import FARADAY
from microbat.core.errors import (
    ConvergenceError,
    InvalidInputError,
    MicrobatWarning,
    NotPercolatingError,
    PhaseError,
)
from microbat.core.microstructure import Microstructure
from microbat.core.phases import PhaseRole
from microbat.core.results import Provenance, Result

__all__ = [
    "HeatProperties",
    "HeatResult",
    "NoCarbonBinderWarning",
    "joule_heating",
    "resolved_heating",
    "temperature_rise",
]

GAS_CONSTANT = 8.314462618  # J/(mol K), CODATA 2018 (exact)

Mode = Literal["electrode", "solid"]


class NoCarbonBinderWarning(MicrobatWarning):
    """The image has no carbon-binder: the bottlenecks are those of what conducts."""


@dataclass(frozen=True)
class HeatProperties:
    """Per-phase properties of the heating analysis (SI; sources in the module notes).

    Attributes
    ----------
    active_conductivity : float, default 0.18
        Electronic conductivity of the active material, S/m (Chen 2020).
    carbon_binder_conductivity : float, default 10
        Electronic conductivity of the carbon-binder domain, S/m (Zielke 2015).
    carbon_binder_porosity : float, default 0.5
        Electrolyte volume fraction in the carbon-binder's nanopores.
    carbon_binder_bruggeman : float, default 1.5
        Its ionic transport efficiency is ``ε_cbd^b``.
    electrolyte_conductivity : float, default 0.9487
        Ionic conductivity of the electrolyte, S/m (Nyman 2008 at 1 M, 25 °C).
    separator_porosity : float, default 0.47
        Porosity of a separator phase in the image (Chen 2020).
    separator_bruggeman : float, default 1.5
        Its ionic transport efficiency is ``ε_sep^b``.
    current_collector_conductivity : float, default 3.6914e7
        Aluminium, S/m (Chen 2020).
    exchange_current_density : float, default 3.41
        ``i_0`` of the active/electrolyte interface, A/m² (Chen 2020, NMC811 at
        half lithiation and 1 M).
    temperature : float, default 298.15
        K (enters the charge-transfer conductance ``i_0 F / (R T)``).
    active_thermal_conductivity : float, default 3.7
        W/(m K) (LiₓCoO₂, Cho 2014).
    carbon_binder_thermal_conductivity : float, default 0.19
        W/(m K) (PVDF).
    electrolyte_thermal_conductivity : float, default 0.2
        W/(m K) (organic carbonates).
    gas_thermal_conductivity : float, default 0.0263
        W/(m K) (air at 300 K).
    separator_thermal_conductivity : float, default 0.16
        W/(m K) (Chen 2020).
    current_collector_thermal_conductivity : float, default 237
        W/(m K) (aluminium, Chen 2020).
    other_thermal_conductivity : float, default 0.2
        W/(m K) of phases of role ``other`` or ``solid_electrolyte``.
    """

    active_conductivity: float = 0.18
    carbon_binder_conductivity: float = 10.0
    carbon_binder_porosity: float = 0.5
    carbon_binder_bruggeman: float = 1.5
    electrolyte_conductivity: float = 0.9487
    separator_porosity: float = 0.47
    separator_bruggeman: float = 1.5
    current_collector_conductivity: float = 3.6914e7
    exchange_current_density: float = 3.41
    temperature: float = 298.15
    active_thermal_conductivity: float = 3.7
    carbon_binder_thermal_conductivity: float = 0.19
    electrolyte_thermal_conductivity: float = 0.2
    gas_thermal_conductivity: float = 0.0263
    separator_thermal_conductivity: float = 0.16
    current_collector_thermal_conductivity: float = 237.0
    other_thermal_conductivity: float = 0.2

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            try:
                x = float(v)
            except (TypeError, ValueError):
                raise InvalidInputError(f"HeatProperties.{f.name}={v!r} is not a number") from None
            if not math.isfinite(x) or x < 0:
                raise InvalidInputError(
                    f"HeatProperties.{f.name}={v!r} must be finite and non-negative (SI units)"
                )
            if f.name.endswith("porosity") and x > 1:
                raise InvalidInputError(f"HeatProperties.{f.name}={v!r} must lie in [0, 1]")
            if f.name.endswith("thermal_conductivity") and x == 0:
                raise InvalidInputError(
                    f"HeatProperties.{f.name} is 0: every phase conducts some heat"
                )
        if self.temperature <= 0:
            raise InvalidInputError(f"temperature {self.temperature} K must be positive")

    @property
    def charge_transfer_conductance(self) -> float:
        """Linearised Butler–Volmer conductance per area, ``i_0 F / (R T)``, S/m²."""
        return self.exchange_current_density * FARADAY / (GAS_CONSTANT * self.temperature)

    def to_dict(self) -> dict[str, float]:
        """The values as a dictionary."""
        return {f.name: float(getattr(self, f.name)) for f in dataclasses.fields(self)}


# ================================================================== result
@dataclass(frozen=True)
class HeatResult(Result):
    """Joule heat, bottlenecks and temperature rise of an electrode.

    Attributes
    ----------
    mode : str
        ``"electrode"`` (operating current), ``"solid"`` (electronic only) or
        ``"resolved"`` (the loss maps of a resolved run, :func:`resolved_heating`).
    current_density_A_per_m2 : float
        Applied current over the image cross-section, A/m².
    current_A : float
        Current through the image, A.
    voltage_drop_V : float
        Potential difference that drives it (collector to separator), V.
    resistance_ohm_m2 : float
        Area-specific resistance ``ΔV / J``, Ω m².
    total_heat_W : float
        Heat generated in the image, W.
    energy_balance_error : float
        ``|Q − I ΔV| / (I ΔV)`` (0 at the exact discrete solution).
    heat_per_area_W_per_m2 : float
        Heat per electrode area (what a cell thermal model needs), W/m².
    heat_per_volume_W_per_m3 : float
        Heat per electrode volume, W/m³.
    heat_by_kind_W : dict
        ``electronic``, ``ionic`` and ``reaction`` heat, W.
    heat_by_phase_W : dict
        Heat per phase name, W (reaction heat counted with the active phase).
    heat_top1pct_fraction : float
        Fraction of the heat generated in the hottest 1 % of the conducting voxels.
    necks : list of dict
        The hottest clusters (see module notes), hottest current density first:
        ``voxels``, ``phase``, ``heat_W``, ``heat_fraction``,
        ``peak_current_density_A_per_m2``, ``mean_current_density_A_per_m2``,
        ``current_A``, ``current_fraction``, ``centroid_m``, ``depth_m``.
    n_necks : int
        Number of clusters in the top 1 %.
    depth_m : ndarray
        Depth of each layer along the thickness axis from the collector face, m.
    heat_depth_W_per_m3 : ndarray
        Heat per volume of each layer, W/m³.
    max_delta_T_K, mean_delta_T_K : float
        Largest and mean temperature rise above the cooled face, K.
    local_delta_T_K : float
        Largest rise above its own layer's mean (the particle-scale hot spot), K.
    point_source_delta_T_K : float
        ``P/(4π k r)`` of the hottest neck at 1 µm in the electrolyte, K.
    thermal_boundary : str
        The stated thermal boundary.
    properties : dict
        The :class:`HeatProperties` used.
    iterations : int
        Krylov iterations of the potential solve.
    warnings : list of str
        What was missing and what was used instead.
    heat_W_per_m3 : ndarray
        Heat density per voxel, W/m³ (NaN where no phase conducts; 0 in conductors
        that carry no current, such as dead ends).
    current_density_A_per_m2_field : ndarray
        Magnitude of the current density per voxel (electronic and ionic combined),
        A/m² (NaN where no phase conducts).
    potential_V : ndarray
        Solid potential, V (NaN off the solid network).
    electrolyte_potential_V : ndarray or None
        Electrolyte potential, V (operating mode; NaN off the ionic network).
    delta_T_K : ndarray
        Temperature rise per voxel, K.
    provenance : Provenance
    """

    mode: str
    current_density_A_per_m2: float
    current_A: float
    voltage_drop_V: float
    resistance_ohm_m2: float
    total_heat_W: float
    energy_balance_error: float
    heat_per_area_W_per_m2: float
    heat_per_volume_W_per_m3: float
    heat_by_kind_W: dict[str, float]
    heat_by_phase_W: dict[str, float]
    heat_top1pct_fraction: float
    necks: list[dict[str, Any]]
    n_necks: int
    depth_m: np.ndarray
    heat_depth_W_per_m3: np.ndarray
    max_delta_T_K: float
    mean_delta_T_K: float
    local_delta_T_K: float
    point_source_delta_T_K: float
    thermal_boundary: str
    properties: dict[str, float]
    iterations: int
    warnings: list[str]
    heat_W_per_m3: np.ndarray = field(repr=False)
    current_density_A_per_m2_field: np.ndarray = field(repr=False)
    potential_V: np.ndarray = field(repr=False)
    electrolyte_potential_V: np.ndarray | None = field(repr=False)
    delta_T_K: np.ndarray = field(repr=False)
    provenance: Provenance = field(repr=False, default_factory=lambda: Provenance("joule_heating"))

    _json_arrays = ("depth_m", "heat_depth_W_per_m3")


# ============================================================== geometry helpers
def _sl(axis: int, s: slice | int) -> tuple[slice | int, ...]:
    out: list[slice | int] = [slice(None)] * 3
    out[axis] = s
    return tuple(out)


_LO = slice(0, -1)
_HI = slice(1, None)


def _labels3(ms: Microstructure) -> tuple[np.ndarray, tuple[float, float, float]]:
    from microbat.fv.grid import as_3d

    lab, h = as_3d(np.asarray(ms.labels), ms.voxel_size)
    return lab, h


def _role_lut(ms: Microstructure, values: Mapping[PhaseRole, float]) -> np.ndarray:
    lut = np.zeros(max(ms.phases.labels) + 1, np.float64)
    for p in ms.phases.values():
        lut[p.label] = values.get(p.role, 0.0)
    return lut


def _check_current(current_density: float) -> float:
    try:
        j = float(current_density)
    except (TypeError, ValueError):
        raise InvalidInputError(f"current density {current_density!r} is not a number") from None
    if not math.isfinite(j) or j == 0:
        raise InvalidInputError(
            f"current density {current_density!r} A/m²: give a non-zero current (30 A/m² "
            "= 3 mA/cm², about 1C for a 3 mAh/cm² electrode); with no current there is "
            "no Joule heat"
        )
    if j < 0:
        raise InvalidInputError(
            f"current density {j:g} A/m²: give its magnitude (the heat does not depend on "
            "the direction)"
        )
    return j


# ================================================================ temperature
def temperature_rise(
    conductivity: np.ndarray,
    heat_W: np.ndarray,
    voxel_size: Sequence[float],
    *,
    cooled: Sequence[tuple[int, int]] = ((0, 0),),
    tol: float = 1e-9,
    method: str = "auto",
) -> tuple[np.ndarray, int]:
    """Steady temperature rise ``ΔT`` of ``-∇·(k∇T) = q`` on the voxels.

    Parameters
    ----------
    conductivity : ndarray, 3D, or CoefficientClasses
        Thermal conductivity per voxel, W/(m K) (positive everywhere), or as classes
        (:func:`microbat.fv.coefficient_classes`, faster to assemble); the floating
        type of the array (of ``heat_W`` for classes) is that of the solve.
    heat_W : ndarray, 3D
        Heat generated in each voxel, W (not per volume).
    voxel_size : sequence of 3 float
        Voxel edges, m.
    cooled : sequence of (axis, side)
        Faces held at the reference temperature (``ΔT = 0`` on the outer face);
        every other side is adiabatic.
    tol : float, default 1e-9
        Relative residual of the solve.
    method : str, default "auto"
        Linear solver (:func:`microbat.fv.solve`).

    Returns
    -------
    delta_T : ndarray
        Temperature rise per voxel, K.
    iterations : int
        Krylov iterations.

    Examples
    --------
    A slab of 8 voxels with uniform heating ``q`` and one cooled face: the
    voxel-centre values are the parabola ``q x (2L − x) / (2k)`` plus ``q h²/(8k)``
    (the first centre is half a voxel from the held face; the error is O(h²)).

    >>> k = np.ones((8, 1, 1)); q = np.full((8, 1, 1), 1.0)
    >>> dT, _ = temperature_rise(k, q, (1.0, 1.0, 1.0))
    >>> x = np.arange(8) + 0.5
    >>> bool(np.allclose(dT[:, 0, 0], x * (16 - x) / 2 + 1 / 8))
    True
    """
    from microbat.fv.grid import CoefficientClasses
    from microbat.fv.solvers import solve
    from microbat.fv.system import Dirichlet, build_system

    dtype = None
    if isinstance(conductivity, CoefficientClasses):
        k: Any = conductivity
        if np.any(k.values[1:] <= 0) or (k.classes == 0).any():
            raise InvalidInputError("thermal conductivities must be positive on every voxel")
        dtype = np.float32 if np.asarray(heat_W).dtype == np.float32 else np.float64
    else:
        k = np.asarray(conductivity)
        if k.dtype not in (np.float32, np.float64):
            k = k.astype(np.float64)
        if k.ndim != 3 or np.any(~np.isfinite(k)) or np.any(k <= 0):
            raise InvalidInputError(
                "thermal conductivities must be positive and finite on every voxel"
            )
    q = np.asarray(heat_W)
    if q.shape != k.shape:
        raise InvalidInputError(f"heat shape {q.shape} != conductivity shape {k.shape}")
    bcs = [Dirichlet(int(a), int(s), 0.0) for a, s in cooled]
    if not bcs:
        raise InvalidInputError("give at least one cooled face: a fully adiabatic body heats up")
    system = build_system(
        k, voxel_size, dirichlet=bcs, source=np.nan_to_num(q), dtype=dtype, compact=False
    )
    sol = solve(system, method=method, rtol=tol)  # type: ignore[arg-type]
    return np.asarray(sol.x, np.float64), int(sol.iterations)


# ============================================================ charge transport
@dataclass
class _Network:
    """One potential field: its system and per-voxel conductivity (S/m)."""

    system: Any
    sigma: np.ndarray  # used for the half-cell split of each face's heat
    u: np.ndarray | None = None


_RX_FIELDS = ("solid", "ionic", "axis", "sign", "g", "r_s", "r_ct", "r_e")


@dataclass
class _Reaction:
    """Charge-transfer faces, each between an active voxel and an ionic voxel (lists).

    ``solid``/``ionic`` are flat voxel indices, ``axis`` the face normal, ``sign``
    +1 where the ionic voxel is at ``solid + e_axis`` (else -1), ``g = 1/(r_s +
    r_ct + r_e)`` the face conductance: the active half-cell, the charge-transfer
    resistance and the ionic half-cell in series (Ω).
    """

    solid: np.ndarray
    ionic: np.ndarray
    axis: np.ndarray
    sign: np.ndarray
    g: np.ndarray
    r_s: np.ndarray
    r_ct: np.ndarray
    r_e: np.ndarray

    def where(self, keep: np.ndarray) -> _Reaction:
        """The faces selected by ``keep``."""
        return _Reaction(*(getattr(self, f)[keep] for f in _RX_FIELDS))


@dataclass
class _Boundary:
    """Held faces of the operating mode (planes normal to the thickness axis)."""

    g_cc: np.ndarray  # solid voxels of the first layer to the collector at 1 V (S)
    g_sep: np.ndarray  # ionic voxels of the last layer to the separator at 0 V (S)
    g_sep_rx: np.ndarray  # active voxels of the last layer to the separator's electrolyte
    r_sep_ct: np.ndarray  # the charge-transfer part of 1/g_sep_rx (Ω)


def _phase_sets(ms: Microstructure, lab: np.ndarray) -> dict[str, np.ndarray]:
    def m(role: PhaseRole) -> np.ndarray:
        labels = [p.label for p in ms.phases.with_role(role)]
        return np.isin(lab, labels) if labels else np.zeros(lab.shape, bool)

    return {
        "active": m(PhaseRole.ACTIVE),
        "cbd": m(PhaseRole.CARBON_BINDER),
        "cc": m(PhaseRole.CURRENT_COLLECTOR),
        "electrolyte": m(PhaseRole.ELECTROLYTE),
        "separator": m(PhaseRole.SEPARATOR),
        "gas": m(PhaseRole.GAS),
    }


def _resolve_precision(precision: str, n: int) -> np.dtype:
    if precision not in ("auto", "single", "double"):
        raise InvalidInputError(f"precision={precision!r}; use auto, single or double")
    if precision == "single" or (precision == "auto" and n > 2**21):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def _classes(lab: np.ndarray, ms: Microstructure, values: Mapping[PhaseRole, float]) -> Any:
    """Class-coded coefficient of the phases by role (faces as one-byte codes)."""
    from microbat.fv.grid import coefficient_classes

    per_label = {p.label: values.get(p.role, 0.0) for p in ms.phases.values()}
    return coefficient_classes(lab, per_label)


def _electronic(props: HeatProperties) -> dict[PhaseRole, float]:
    return {
        PhaseRole.ACTIVE: props.active_conductivity,
        PhaseRole.CARBON_BINDER: props.carbon_binder_conductivity,
        PhaseRole.CURRENT_COLLECTOR: props.current_collector_conductivity,
    }


def _ionic(props: HeatProperties) -> dict[PhaseRole, float]:
    kap = props.electrolyte_conductivity
    return {
        PhaseRole.ELECTROLYTE: kap,
        PhaseRole.CARBON_BINDER: kap * props.carbon_binder_porosity**props.carbon_binder_bruggeman,
        PhaseRole.SEPARATOR: kap * props.separator_porosity**props.separator_bruggeman,
    }


def _solid_mode(
    ms: Microstructure,
    lab: np.ndarray,
    h: tuple[float, float, float],
    props: HeatProperties,
    ax: int,
    tol: float,
    dtype: np.dtype,
    method: str,
) -> tuple[_Network, float, int]:
    """Electronic conduction, 1 V at the collector face, 0 V at the separator face."""
    from microbat.fv.connectivity import spanning_mask
    from microbat.fv.solvers import solve
    from microbat.fv.system import Dirichlet, build_system

    k = _classes(lab, ms, _electronic(props))
    sig = k.expand(np.float64)
    span = spanning_mask(k.classes > 0, ax)
    if not span.any():
        raise NotPercolatingError(
            "the solid (active + carbon-binder) does not connect the current-collector face "
            "to the separator face along the thickness axis: no electronic current can flow"
        )
    system = build_system(
        k,
        h,
        dirichlet=[Dirichlet(ax, 0, 1.0), Dirichlet(ax, -1, 0.0)],
        active=span,
        dtype=dtype,
        compact=False,
    )
    n = lab.shape[ax]
    ramp = (1.0 - (np.arange(n) + 0.5) / n).reshape([-1 if a == ax else 1 for a in range(3)])
    x0 = np.where(span, ramp, 0.0).astype(dtype)

    def stop(it: int, x: np.ndarray, layers: np.ndarray, rnorm: float) -> bool:
        return _spread(system.boundary_flux(x, 0), layers) <= tol

    sol = solve(
        system,
        method=method,  # type: ignore[arg-type]
        x0=x0,
        stop=stop,
        layer_axis=ax,
        rtol=1e-14,
        maxiter=1000,
    )
    net = _Network(system, sig, np.asarray(sol.x, np.float64))
    return net, float(system.boundary_flux(net.u, 0)), int(sol.iterations)


def _reaction_faces(
    lab: np.ndarray,
    h: Sequence[float],
    sig_s: np.ndarray,
    sig_e: np.ndarray,
    active_phase: np.ndarray,
    area_frac: np.ndarray,
    gct: float,
) -> _Reaction:
    """The active/ionic faces with their three series resistances."""
    from microbat.fv.grid import face_areas

    areas = face_areas(h)
    strides = (lab.shape[1] * lab.shape[2], lab.shape[2], 1)  # C order
    parts: dict[str, list[np.ndarray]] = {f: [] for f in _RX_FIELDS}
    ionic = area_frac > 0
    for a in range(3):
        if lab.shape[a] < 2 or gct <= 0:
            continue
        lo, hi = _sl(a, _LO), _sl(a, _HI)
        for sign, solid_side, ionic_side in ((1.0, lo, hi), (-1.0, hi, lo)):
            m = np.zeros(lab.shape, bool)
            m[lo] = active_phase[solid_side] & ionic[ionic_side]
            first = np.flatnonzero(m)  # the face's voxel at lo
            second = first + int(strides[a])
            s_idx, e_idx = (first, second) if sign > 0 else (second, first)
            half = h[a] / (2.0 * areas[a])
            r_s = half / sig_s.reshape(-1)[s_idx]
            r_e = half / sig_e.reshape(-1)[e_idx]
            r_ct = 1.0 / (gct * areas[a] * area_frac.reshape(-1)[e_idx])
            for f, v in zip(
                _RX_FIELDS,
                (
                    s_idx,
                    e_idx,
                    np.full(s_idx.size, a, np.int8),
                    np.full(s_idx.size, sign),
                    1.0 / (r_s + r_ct + r_e),
                    r_s,
                    r_ct,
                    r_e,
                ),
                strict=True,
            ):
                parts[f].append(v)
    empty = {"solid": np.int64, "ionic": np.int64, "axis": np.int8}
    return _Reaction(
        *(
            np.concatenate(parts[f]) if parts[f] else np.zeros(0, empty.get(f, np.float64))
            for f in _RX_FIELDS
        )
    )


def _electrode_mode(
    ms: Microstructure,
    lab: np.ndarray,
    h: tuple[float, float, float],
    props: HeatProperties,
    ax: int,
    tol: float,
    dtype: np.dtype,
    method: str,
) -> tuple[_Network, _Network, _Reaction, _Boundary, float, int]:
    """Coupled solid/electrolyte conduction with linear charge transfer, 1 V applied."""
    from microbat.fv.grid import face_areas
    from microbat.fv.system import build_system

    areas = face_areas(h)
    ks = _classes(lab, ms, _electronic(props))
    ke = _classes(lab, ms, _ionic(props))
    sig_s, sig_e = ks.expand(np.float64), ke.expand(np.float64)
    if not (ke.classes > 0).any():
        raise PhaseError(
            "the operating-current mode needs an ion-conducting phase (electrolyte, "
            "carbon-binder or separator); this image has none — use through='solid' "
            "(--through solid) for the electronic network alone"
        )
    active_phase = np.isin(lab, [p.label for p in ms.phases.with_role(PhaseRole.ACTIVE)])
    area_frac = _role_lut(
        ms,
        {PhaseRole.ELECTROLYTE: 1.0, PhaseRole.CARBON_BINDER: props.carbon_binder_porosity},
    )[lab]
    gct = props.charge_transfer_conductance
    rx = _reaction_faces(lab, h, sig_s, sig_e, active_phase, area_frac, gct)
    # held faces: the collector holds the solid at 1 V; the separator face holds the
    # electrolyte at 0 V and feeds the reaction of the active voxels touching it
    n_ax = lab.shape[ax]
    first_s = _take(sig_s, ax, 0)
    last_s, last_e = _take(sig_s, ax, n_ax - 1), _take(sig_e, ax, n_ax - 1)
    g_cc = 2.0 * areas[ax] / h[ax] * first_s
    g_sep = 2.0 * areas[ax] / h[ax] * last_e
    act_last = _take(active_phase, ax, n_ax - 1)
    r_sep_ct = np.zeros(act_last.shape)
    g_sep_rx = np.zeros(act_last.shape)
    if gct > 0 and props.separator_porosity > 0:
        r_sep_ct[act_last] = 1.0 / (gct * areas[ax] * props.separator_porosity)
        g_sep_rx[act_last] = 1.0 / (
            h[ax] / (2.0 * areas[ax] * last_s[act_last]) + r_sep_ct[act_last]
        )
    active_s, active_e = _coupled_components(
        ks.classes > 0, ke.classes > 0, g_cc, g_sep, g_sep_rx, ax
    )
    keep = active_s.reshape(-1)[rx.solid] & active_e.reshape(-1)[rx.ionic]
    rx = rx.where(keep)
    bnd = _Boundary(
        g_cc * _take(active_s, ax, 0),
        g_sep * _take(active_e, ax, n_ax - 1),
        g_sep_rx * _take(active_s, ax, n_ax - 1),
        r_sep_ct,
    )
    if not active_s.any() or not active_e.any() or not (rx.g.size or bnd.g_sep_rx.any()):
        raise NotPercolatingError(
            "no current path from the current-collector face through the solid and the "
            "electrolyte to the separator face: check the segmentation (solid touching "
            "the collector side, electrolyte reaching the separator side)"
        )
    n = lab.size
    diag_s = np.bincount(rx.solid, weights=rx.g, minlength=n).reshape(lab.shape)
    diag_e = np.bincount(rx.ionic, weights=rx.g, minlength=n).reshape(lab.shape)
    src_s = np.zeros(lab.shape)
    diag_s[_sl(ax, 0)] += bnd.g_cc
    src_s[_sl(ax, 0)] += bnd.g_cc * 1.0
    diag_s[_sl(ax, n_ax - 1)] += bnd.g_sep_rx
    diag_e[_sl(ax, n_ax - 1)] += bnd.g_sep
    S = build_system(
        ks, h, active=active_s, diagonal=diag_s, source=src_s, dtype=dtype, compact=False
    )
    E = build_system(ke, h, active=active_e, diagonal=diag_e, dtype=dtype, compact=False)
    del diag_s, diag_e, src_s
    g_in = bnd.g_cc

    def current_in(us: np.ndarray) -> float:
        return float(np.sum(g_in * (1.0 - _take(us, ax, 0)), dtype=np.float64))

    us, ue, iters = _solve_coupled(S, E, rx, tol, method, ax, current_in)
    return (
        _Network(S, sig_s, us),
        _Network(E, sig_e, ue),
        rx,
        bnd,
        current_in(us),
        iters,
    )


def _spread(current_in: float, layers: np.ndarray) -> float:
    """Relative spread of the current through every plane between the held faces.

    ``layers[m]`` is the residual summed over layer ``m``, so the current through the
    plane after layer ``m`` is ``current_in - Σ_{l ≤ m} layers[l]`` (the stopping
    measure of :mod:`microbat.transport`).
    """
    planes = current_in - np.concatenate(([0.0], np.cumsum(layers)))
    mean = float(np.mean(planes))
    return float((planes.max() - planes.min()) / abs(mean)) if mean != 0 else math.inf


def _take(a: np.ndarray, axis: int, index: int) -> np.ndarray:
    return np.take(a, index, axis=axis)


def _coupled_components(
    solid: np.ndarray,
    ionic: np.ndarray,
    g_cc: np.ndarray,
    g_sep: np.ndarray,
    g_sep_rx: np.ndarray,
    ax: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Solid clusters touching the collector face, ionic clusters touching the separator face.

    A solid particle off the collector's network, or an electrolyte pocket off the
    separator's, could only pass current through two charge-transfer interfaces in
    series (a bipolar bypass, negligible); held by nothing but those weak faces, such
    clusters make the system nearly singular (195 instead of 20 multigrid iterations
    on a 100³ electrode), so they are left out, as a tortuosity solve leaves out
    pores that touch no held side.
    """
    from microbat.fv.connectivity import components

    n_ax = solid.shape[ax]
    ls, ns = components(solid)
    keep = np.zeros(ns + 1, bool)
    keep[np.unique(_take(ls, ax, 0)[g_cc > 0])] = True
    keep[np.unique(_take(ls, ax, n_ax - 1)[g_sep_rx > 0])] = True
    keep[0] = False
    le, ne = components(ionic)
    keep_e = np.zeros(ne + 1, bool)
    keep_e[np.unique(_take(le, ax, n_ax - 1)[g_sep > 0])] = True
    keep_e[0] = False
    return keep[ls], keep_e[le]


def _solve_coupled(
    S: Any,
    E: Any,
    rx: _Reaction,
    tol: float,
    method: str,
    ax: int,
    current_in: Any,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Solve the block system [[A_s, -C], [-Cᵀ, A_e]] [u_s, u_e] = [b_s, 0].

    Small systems: sparse LU of the assembled block matrix. Large ones: flexible
    CG on the stacked fields, preconditioned by one aggregation-multigrid cycle per
    network (block Jacobi), stopped when the total current through every plane
    between the collector and separator faces agrees to ``tol`` (``current_in(u_s)``
    is the current entering at the collector). A single hierarchy over both networks
    would merge solid and electrolyte voxels into one aggregate across the weak
    charge-transfer faces and force them to one correction: measured 247 iterations
    against 19 on a 64³ electrode. (A coarse correction on per-layer averages of
    each network, the transmission-line mode, saved 4 of 36 iterations at 100³ and
    was dropped.)
    """
    import scipy.sparse as sp

    shape = S.shape
    n_vox = int(np.prod(shape))
    if method == "auto":
        method = "direct" if S.n_unknowns + E.n_unknowns <= 60_000 else "mg"
    if method == "direct":
        from microbat.fv.solvers import DirectSolver

        As, bs, ids = S.to_sparse()
        Ae, be, ide = E.to_sparse()
        inv_s = np.full(n_vox, -1, np.int64)
        inv_s[ids] = np.arange(ids.size)
        inv_e = np.full(n_vox, -1, np.int64)
        inv_e[ide] = np.arange(ide.size)
        C = sp.coo_matrix(
            (rx.g, (inv_s[rx.solid], inv_e[rx.ionic])), shape=(ids.size, ide.size)
        ).tocsr()
        A = sp.bmat([[As, -C], [-C.T, Ae]], format="csr")
        x = DirectSolver(A).solve(np.concatenate([bs, be]).astype(np.float64))
        return (
            np.asarray(S.scatter(x[: ids.size], ids), np.float64),
            np.asarray(E.scatter(x[ids.size :], ide), np.float64),
            0,
        )
    if method != "mg":
        raise InvalidInputError(f"method={method!r}; use auto, direct or mg")
    from microbat.fv import _kernels
    from microbat.fv.multigrid import pcg

    n0 = shape[0]
    dtype = S.dtype
    rows, ri = np.unique(rx.solid, return_inverse=True)
    cols, cj = np.unique(rx.ionic, return_inverse=True)
    C = sp.csr_matrix((rx.g, (ri, cj)), shape=(rows.size, cols.size))
    Ct = C.T.tocsr()
    mg_s = S.multigrid()
    mg_e = E.multigrid()
    op_s, op_e = S.op, E.op

    def apply(v: np.ndarray, out: np.ndarray) -> None:
        vs, ve = v[:n0], v[n0:]
        os_, oe = out[:n0], out[n0:]
        _kernels.apply(*op_s, vs, os_)
        _kernels.apply(*op_e, ve, oe)
        fs, fe = os_.reshape(-1), oe.reshape(-1)
        fs[rows] -= (C @ ve.reshape(-1)[cols].astype(np.float64)).astype(dtype)
        fe[cols] -= (Ct @ vs.reshape(-1)[rows].astype(np.float64)).astype(dtype)

    def precond(r: np.ndarray, z: np.ndarray) -> None:
        mg_s.apply(r[:n0], z[:n0])
        mg_e.apply(r[n0:], z[n0:])

    def stop(it: int, v: np.ndarray, layers: np.ndarray, rnorm: float) -> bool:
        if ax == 0:  # the stacked axis: solid layers, then electrolyte layers
            layers = layers[:n0] + layers[n0:]
        return _spread(current_in(v[:n0]), layers) <= tol

    b = np.concatenate([S.rhs, E.rhs], axis=0).astype(dtype)
    x = np.zeros(b.shape, dtype)
    # initial guess: the solid at the collector's potential, the electrolyte at the
    # separator's (most of the drop is across the interface): 15 instead of 21
    # iterations on a 128³ electrode
    x[:n0][S.active] = 1.0
    info = pcg(
        apply, precond, b, x, rtol=1e-14, maxiter=1000, flexible=True, stop=stop, layer_axis=ax
    )
    if not info.converged:
        raise ConvergenceError(
            f"the coupled potential solve did not converge in {info.iterations} iterations "
            f"(relative residual {info.residual_norm / max(info.rhs_norm, 1e-300):.2e}"
            + (f"; {info.breakdown}" if info.breakdown else "")
            + "); raise tol (the current spread) or use method='direct' for small images"
        )
    us = np.where(S.active, x[:n0], 0).astype(np.float64)
    ue = np.where(E.active, x[n0:], 0).astype(np.float64)
    return us, ue, int(info.iterations)


# ================================================================= heat
@dataclass
class _Heat:
    """Heat (W per voxel) and currents of one solve at 1 V applied.

    ``jsq``: squared magnitude of the current density at the voxel centres (each
    network's component per axis is the mean of the voxel's two faces; electronic
    and ionic added in quadrature where a voxel carries both); ``face_abs``: per
    axis, the absolute current through the face to the ``+1`` neighbour, both
    networks and the charge-transfer faces together; ``inflow``/``outflow``:
    absolute currents through the collector / separator faces.
    """

    heat_s: np.ndarray
    heat_e: np.ndarray
    heat_rx: np.ndarray
    jsq: np.ndarray
    face_abs: list[np.ndarray]
    inflow: np.ndarray
    outflow: np.ndarray


def _network_pass(
    net: _Network, h: Sequence[float], extra: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Heat (W), |j|² and face currents of one network (one Numba pass)."""
    from microbat.degradation import _heat_kernels as K
    from microbat.fv.grid import face_areas

    u = np.ascontiguousarray(net.u, np.float64)
    g = [np.ascontiguousarray(net.system.conductance(a)) for a in range(3)]
    heat = np.zeros(u.shape)
    jsq = np.empty(u.shape)
    face_abs = [np.empty(u.shape) for _ in range(3)]
    inv_area = 1.0 / np.asarray(face_areas(h), np.float64)
    ex = extra if extra is not None else np.zeros((3, 1, 1, 1), np.float32)
    K.face_heat(u, *g, net.sigma, ex, extra is not None, inv_area, heat, jsq, *face_abs)
    return heat, jsq, face_abs


def _heat_solid(net: _Network, h: Sequence[float], ax: int) -> _Heat:
    """Heat of the electronic solve: interior faces and the two held half-cells."""
    from microbat.fv.grid import face_areas

    u = net.u
    assert u is not None
    area = face_areas(h)[ax]
    extra = np.zeros((3, *u.shape), np.float32)
    planes = []
    held_heat = []
    for t, layer in ((net.system.boundaries[0], 0), (net.system.boundaries[1], u.shape[ax] - 1)):
        gb = np.asarray(t.conductance, np.float64)
        ib = gb * (np.asarray(t.value) - _take(u, ax, layer))  # into the voxel
        held_heat.append(np.divide(ib * ib, gb, out=np.zeros_like(ib), where=gb > 0))
        extra[ax][_sl(ax, layer)] += 0.5 * np.abs(ib) / area
        planes.append(np.abs(ib))
    heat, jsq, face_abs = _network_pass(net, h, extra)
    del extra
    heat[_sl(ax, 0)] += held_heat[0]
    heat[_sl(ax, u.shape[ax] - 1)] += held_heat[1]
    zero = np.zeros(heat.shape)
    return _Heat(heat, zero, zero, jsq, face_abs, planes[0], planes[1])


def _heat_electrode(
    net_s: _Network, net_e: _Network, rx: _Reaction, bnd: _Boundary, h: Sequence[float], ax: int
) -> _Heat:
    """Heat of the coupled solve: both networks, charge-transfer faces, held faces.

    A charge-transfer face's ``I² r_s`` goes to the active voxel, ``I² r_e`` to the
    ionic voxel and ``I² r_ct`` (the irreversible reaction heat) to the active voxel.
    """
    from microbat.fv.grid import face_areas

    us, ue = net_s.u, net_e.u
    assert us is not None and ue is not None
    shape = us.shape
    n = us.size
    areas = face_areas(h)
    cur = rx.g * (us.reshape(-1)[rx.solid] - ue.reshape(-1)[rx.ionic])  # solid -> ionic
    n_ax = shape[ax]
    last = _sl(ax, n_ax - 1)
    inflow = bnd.g_cc * (1.0 - _take(us, ax, 0))
    out_e = bnd.g_sep * _take(ue, ax, n_ax - 1)
    out_s = bnd.g_sep_rx * _take(us, ax, n_ax - 1)  # active voxels at the separator face
    for net, side, plane_terms in (
        (net_s, rx.solid, ((0, inflow), (n_ax - 1, out_s))),
        (net_e, rx.ionic, ((n_ax - 1, out_e),)),
    ):
        extra = np.zeros((3, *shape), np.float32)
        for a in range(3):
            sel = rx.axis == a
            if sel.any():
                half_j = 0.5 * rx.sign[sel] * cur[sel] / areas[a]  # along +a
                extra[a].reshape(-1)[:] += np.bincount(side[sel], weights=half_j, minlength=n)
        for layer, plane in plane_terms:
            extra[ax][_sl(ax, layer)] += 0.5 * plane / areas[ax]
        heat, jsq, fab = _network_pass(net, h, extra)
        del extra
        if net is net_s:
            heat_s, jsq_s, face_abs = heat, jsq, fab
        else:
            heat_e = heat
            jsq_s += jsq
            for a in range(3):
                face_abs[a] += fab[a]
    c2 = cur * cur
    heat_s += np.bincount(rx.solid, weights=c2 * rx.r_s, minlength=n).reshape(shape)
    heat_e += np.bincount(rx.ionic, weights=c2 * rx.r_e, minlength=n).reshape(shape)
    heat_rx = np.bincount(rx.solid, weights=c2 * rx.r_ct, minlength=n).reshape(shape)
    for a in range(3):
        sel = rx.axis == a
        if sel.any():
            lo = np.where(rx.sign[sel] > 0, rx.solid[sel], rx.ionic[sel])
            face_abs[a].reshape(-1)[:] += np.bincount(lo, weights=np.abs(cur[sel]), minlength=n)
    g = bnd.g_cc
    heat_s[_sl(ax, 0)] += np.divide(inflow**2, g, out=np.zeros_like(inflow), where=g > 0)
    g = bnd.g_sep
    heat_e[last] += np.divide(out_e**2, g, out=np.zeros_like(out_e), where=g > 0)
    g = bnd.g_sep_rx
    w = np.divide(out_s**2, g, out=np.zeros_like(out_s), where=g > 0)
    heat_rx[last] += out_s**2 * bnd.r_sep_ct
    heat_s[last] += np.maximum(w - out_s**2 * bnd.r_sep_ct, 0.0)
    return _Heat(
        heat_s, heat_e, heat_rx, jsq_s, face_abs, np.abs(inflow), np.abs(out_e) + np.abs(out_s)
    )


def joule_heating(
    ms: Microstructure,
    *,
    current_density: float = 30.0,
    through: Mode = "electrode",
    properties: HeatProperties | None = None,
    cooled: str = "collector",
    top_fraction: float = 0.01,
    n_necks: int = 10,
    tol: float = 1e-7,
    method: str = "auto",
    precision: str = "auto",
) -> HeatResult:
    """Joule heat, carbon-binder bottlenecks and temperature rise (see module notes).

    Parameters
    ----------
    ms : Microstructure
        Electrode; index 0 of the thickness axis touches the current collector, the
        last index the separator.
    current_density : float, default 30
        Applied current over the image cross-section, A/m² (30 A/m² = 3 mA/cm²).
    through : {"electrode", "solid"}, default "electrode"
        Operating current (electrons, ions, charge transfer) or pure electronic
        conduction from the collector face to the separator face.
    properties : HeatProperties, optional
        Conductivities, kinetics, thermal conductivities (cited defaults).
    cooled : {"collector", "separator", "both"}, default "collector"
        Face(s) held at the reference temperature; the other sides are adiabatic.
    top_fraction : float, default 0.01
        Share of the conducting voxels counted as hot (the bottleneck clusters).
    n_necks : int, default 10
        Clusters listed in :attr:`HeatResult.necks`.
    tol : float, default 1e-7
        Convergence of the iterative potential solve: the relative spread of the
        current through every plane between the collector and separator faces
        (electronic and ionic together), as the transport solves stop. The energy
        balance ``|Q − I ΔV| / (I ΔV)`` then holds to about ``tol`` (reported).
    method : {"auto", "direct", "mg"}, default "auto"
        Linear solver of the potential (``"auto"``: direct for small images).
    precision : {"auto", "single", "double"}, default "auto"
        Floating type of the potential and temperature solves (``"auto"``: single
        above 2²¹ voxels, as the transport solves). Single precision halves the
        memory and the bandwidth but its currents balance to about 1e-5 only:
        ``tol`` is then raised to 1e-5 (said in :attr:`HeatResult.warnings`).

    Returns
    -------
    HeatResult

    Raises
    ------
    InvalidInputError
        Zero, negative or non-finite current; bad options.
    PhaseError
        No conducting solid; no ion conductor in the operating mode.
    NotPercolatingError
        No current path between the collector and separator faces.

    Warns
    -----
    NoCarbonBinderWarning
        No carbon-binder voxels: the bottlenecks are those of the active material.

    Examples
    --------
    A bar of carbon-binder with a neck of a quarter of its section: the neck's
    heat density is 16 times that of the wide part.

    >>> lab = np.ones((40, 4, 4), np.uint8)
    >>> lab[15:25] = 0; lab[15:25, 1:3, 1:3] = 1
    >>> ms = Microstructure(lab, 1e-6, phases="pore=0,cbd=1")
    >>> r = joule_heating(ms, through="solid", current_density=10.0)
    >>> q = r.heat_W_per_m3
    >>> round(float(q[20, 1, 1] / q[3, 1, 1]), 1)
    16.0
    """
    t0 = time.perf_counter()
    j_app = _check_current(current_density)
    props = properties or HeatProperties()
    if through not in ("electrode", "solid"):
        raise InvalidInputError(f"through={through!r}; use 'electrode' or 'solid'")
    if not (0 < top_fraction < 1):
        raise InvalidInputError(f"top_fraction={top_fraction!r}; give a fraction in (0, 1)")
    if cooled not in ("collector", "separator", "both"):
        raise InvalidInputError(f"cooled={cooled!r}; use collector, separator or both")
    notes: list[str] = []
    lab, h = _labels3(ms)
    ax = ms.thickness_axis
    sets = _phase_sets(ms, lab)
    solid = sets["active"] | sets["cbd"] | sets["cc"]
    if not solid.any():
        raise PhaseError(
            "no electron-conducting phase (active, carbon_binder, current_collector) in "
            f"{ms.phases.to_spec()}: there is no electronic network to heat"
        )
    if not sets["cbd"].any():
        msg = (
            "no carbon-binder in this image (no phase of role carbon_binder, or it is "
            "empty): the electronic network is the active material alone, so the "
            "bottlenecks found are particle contacts"
        )
        warnings.warn(msg, NoCarbonBinderWarning, stacklevel=2)
        notes.append(msg)
    crop = None
    if through == "solid":
        # the separator face is the last layer that holds solid
        prof = solid.any(axis=tuple(a for a in range(3) if a != ax))
        last = int(np.flatnonzero(prof).max())
        if last < lab.shape[ax] - 1:
            crop = last + 1
            notes.append(
                f"the last {lab.shape[ax] - crop} layers along the thickness hold no solid "
                "(separator): the separator face of the solid network is layer "
                f"{crop - 1}"
            )
            lab = np.ascontiguousarray(np.take(lab, np.arange(crop), axis=ax))
            sets = {k: np.take(v, np.arange(crop), axis=ax) for k, v in sets.items()}
    shape = lab.shape
    dtype = _resolve_precision(precision, lab.size)
    if dtype == np.float32 and tol < 1e-5:
        tol = 1e-5
        notes.append("single precision: the currents through the planes balance to 1e-5")
    area = float(
        np.prod([n * hh for a, (n, hh) in enumerate(zip(shape, h, strict=True)) if a != ax])
    )
    volume = area * shape[ax] * h[ax]
    vvox = float(np.prod(h))
    net_e: _Network | None = None
    if through == "solid":
        net_s, i_unit, iters = _solid_mode(ms, lab, h, props, ax, tol, dtype, method)
    else:
        net_s, net_e, rx, bnd, i_unit, iters = _electrode_mode(
            ms, lab, h, props, ax, tol, dtype, method
        )
    if not (i_unit > 0 and math.isfinite(i_unit)):
        raise NotPercolatingError("no current flows between the collector and separator faces")
    current = j_app * area
    scale = current / i_unit  # the potential difference that drives J
    # ------------------------------------------------------------ heat
    parts = (
        _heat_solid(net_s, h, ax)
        if net_e is None
        else _heat_electrode(net_s, net_e, rx, bnd, h, ax)
    )
    s2 = scale * scale
    kinds = {
        "electronic": float(parts.heat_s.sum()) * s2,
        "ionic": float(parts.heat_e.sum()) * s2,
        "reaction": float(parts.heat_rx.sum()) * s2,
    }
    heat = (parts.heat_s + parts.heat_e + parts.heat_rx) * s2  # W per voxel
    total = float(heat.sum(dtype=np.float64))
    balance = abs(total - current * scale) / (current * scale)
    # ------------------------------------------------------ current density
    # (electronic and ionic magnitudes combined; the carbon-binder carries both)
    jmag = scale * np.sqrt(parts.jsq)
    conducting = net_s.sigma > 0  # NaN only where nothing conducts; 0 in dead ends
    if net_e is not None:
        conducting = conducting | (net_e.sigma > 0)
    # ----------------------------------------------------------- bottlenecks
    qd = heat / vvox
    qvals = qd[conducting]
    n_top = max(1, math.ceil(top_fraction * qvals.size))
    top = np.partition(qvals, qvals.size - n_top)[qvals.size - n_top :] if qvals.size else qvals
    thresh = float(top.min()) if top.size else 0.0
    top_frac = float(top.sum() * vvox / total) if total > 0 else 0.0
    # the clusters take every voxel tied with the threshold (to rounding): a uniform
    # neck is then one cluster across its whole section, not a few of its voxels
    hot = conducting & (qd >= thresh * (1.0 - 1e-9)) & (qd > 0)
    necks, n_clusters = _necks(
        ms,
        lab,
        hot,
        heat,
        jmag,
        [scale * f for f in parts.face_abs],
        h,
        ax,
        current,
        total,
        n_necks,
        inflow=scale * parts.inflow,
        outflow=scale * parts.outflow,
    )
    del parts
    # ---------------------------------------------------------- depth profile
    other = tuple(a for a in range(3) if a != ax)
    layer_heat = heat.sum(axis=other)
    layer_vol = area * h[ax]
    depth = (np.arange(shape[ax]) + 0.5) * h[ax]
    # ----------------------------------------------------------- temperature
    kth = _thermal_classes(ms, lab, props)
    faces = {"collector": [(ax, 0)], "separator": [(ax, -1)], "both": [(ax, 0), (ax, -1)]}
    dT, _ = temperature_rise(
        kth,
        heat.astype(dtype),
        h,
        cooled=faces[cooled],
        tol=1e-4 if dtype == np.float32 else 1e-6,
    )
    layer_mean = dT.mean(axis=other, keepdims=True)
    local = float((dT - layer_mean).max())
    hottest = necks[0]["heat_W"] if necks else 0.0
    point = hottest / (4.0 * math.pi * props.electrolyte_thermal_conductivity * 1e-6)
    boundary = _THERMAL_BOUNDARY[cooled]
    heat_nan = np.where(conducting, qd, np.nan)
    jfield = np.where(conducting, jmag, np.nan)
    assert net_s.u is not None
    pot_s = np.where(net_s.system.active, scale * net_s.u, np.nan)
    pot_e = None
    if net_e is not None:
        assert net_e.u is not None
        pot_e = np.where(net_e.system.active, scale * net_e.u, np.nan)
    if crop is not None:  # back to the image: NaN in the separator layers left out
        heat_nan, jfield, pot_s, dT = (
            _pad_nan(x, ax, ms.shape[ax] - crop) for x in (heat_nan, jfield, pot_s, dT)
        )
    if ms.ndim == 2:
        heat_nan, jfield, pot_s, dT = (x[..., 0] for x in (heat_nan, jfield, pot_s, dT))
        pot_e = None if pot_e is None else pot_e[..., 0]
    per_label = np.bincount(lab.reshape(-1), weights=heat.reshape(-1))
    by_phase = {
        p.name: float(per_label[p.label]) if p.label < per_label.size else 0.0
        for p in ms.phases.values()
    }
    return HeatResult(
        mode=through,
        current_density_A_per_m2=j_app,
        current_A=current,
        voltage_drop_V=scale,
        resistance_ohm_m2=scale / j_app,
        total_heat_W=total,
        energy_balance_error=float(balance),
        heat_per_area_W_per_m2=total / area,
        heat_per_volume_W_per_m3=total / volume,
        heat_by_kind_W=kinds,
        heat_by_phase_W=by_phase,
        heat_top1pct_fraction=top_frac,
        necks=necks,
        n_necks=n_clusters,
        depth_m=depth,
        heat_depth_W_per_m3=layer_heat / layer_vol,
        max_delta_T_K=float(dT.max()),
        mean_delta_T_K=float(dT.mean()),
        local_delta_T_K=local,
        point_source_delta_T_K=float(point),
        thermal_boundary=boundary,
        properties=props.to_dict(),
        iterations=int(iters),
        warnings=notes,
        heat_W_per_m3=heat_nan,
        current_density_A_per_m2_field=jfield,
        potential_V=pot_s,
        electrolyte_potential_V=pot_e,
        delta_T_K=dT,
        provenance=Provenance(
            "microbat.degradation.joule_heating",
            parameters={
                "current_density_A_per_m2": j_app,
                "through": through,
                "cooled": cooled,
                "top_fraction": top_fraction,
                "tol": tol,
                "precision": "single" if dtype == np.float32 else "double",
                "cropped_to_layers": crop,
            },
            wall_time_s=time.perf_counter() - t0,
            inputs={"shape": list(ms.shape), "voxel_size_m": list(ms.voxel_size)},
        ),
    )


#: Loss maps of a resolved snapshot (W/m³) and the kind of heat each one is.
_RESOLVED_KINDS = {
    "loss_ohmic_solid": "electronic",
    "loss_ohmic_electrolyte": "ionic",
    "loss_concentration_electrolyte": "ionic",
    "loss_reaction": "reaction",
    "loss_solid_diffusion": "solid_diffusion",
}


def resolved_heating(
    ms: Microstructure,
    source: Any,
    *,
    snapshot: int | None = None,
    time_s: float | None = None,
    properties: HeatProperties | None = None,
    cooled: str = "collector",
    top_fraction: float = 0.01,
    n_necks: int = 10,
    precision: str = "auto",
) -> HeatResult:
    """Heat map, hot clusters and temperature rise from a resolved run's fields.

    The resolved discharge (:mod:`microbat.cell.resolved`) stores, with every
    snapshot, the dissipation of its voltage-loss breakdown voxel by voxel (W/m³, the
    ``loss_*`` maps; their sum over the image and the part outside it is the loss ×
    current of the breakdown to round-off). That dissipation is the irreversible heat
    of the electrode at that moment, with the concentration gradients, the
    non-linear kinetics and the state of charge the run reached — what the
    operating mode of :func:`joule_heating` approximates at uniform concentration.
    This function takes it as the heat source and gives the same analysis: heat per
    area, volume, phase, kind and depth, the hottest clusters and the temperature
    rise (steady conduction, as in :func:`joule_heating`). Reversible (entropic)
    heat is not included, as in the run's breakdown.

    Parameters
    ----------
    ms : Microstructure
        The image the run was computed on (same shape; its thickness axis and phases).
    source : ResolvedDischargeResult or path-like
        An in-memory result of :func:`microbat.cell.resolved.simulate_discharge`, or
        a saved run: the folder ``microbat simulate --out`` wrote, or its ``fields.h5``.
    snapshot : int, optional
        Snapshot index (default: the last).
    time_s : float, optional
        Take the snapshot nearest this time instead.
    properties : HeatProperties, optional
        Only the thermal conductivities are used (the heat comes from the run).
    cooled : {"collector", "separator", "both"}, default "collector"
        Face(s) held at the reference temperature; the other sides are adiabatic.
    top_fraction : float, default 0.01
        Share of the heated voxels counted as hot.
    n_necks : int, default 10
        Clusters listed, highest heat density first.
    precision : {"auto", "single", "double"}, default "auto"
        Floating type of the temperature solve.

    Returns
    -------
    HeatResult
        ``mode = "resolved"``. ``heat_by_kind_W`` has ``electronic`` (solid ohmic),
        ``ionic`` (electrolyte ohmic and concentration), ``reaction`` (kinetics) and
        ``solid_diffusion``; ``voltage_drop_V`` is the heat in the image over the
        run's current (the part of the cell's voltage loss dissipated in the image);
        ``energy_balance_error`` compares the sum of the component maps with the
        run's ``loss_total``. The snapshot stores potentials and losses, not face
        currents: the current-density field and the necks' currents are NaN
        (``null`` in JSON), and the necks are ranked by their peak heat density
        (``peak_heat_W_per_m3``). ``potential_V`` and ``electrolyte_potential_V``
        are the run's ``phi_s`` and ``phi_e``.

    Raises
    ------
    FileFormatError
        A path that is not a resolved run.
    InvalidInputError
        No snapshot, a bad index, a snapshot without loss maps or without heat (the
        rest state), or fields of another shape than the image.

    Examples
    --------
    >>> from microbat.synth import electrode                     # doctest: +SKIP
    >>> from microbat.cell.resolved import simulate_discharge    # doctest: +SKIP
    >>> ms = electrode((24, 16, 16), voxel_size=0.5e-6, seed=1)  # doctest: +SKIP
    >>> run = simulate_discharge(ms, c_rate=2.0, end_time_s=60)  # doctest: +SKIP
    >>> r = resolved_heating(ms, run)                            # doctest: +SKIP
    >>> r.heat_per_area_W_per_m2                                 # doctest: +SKIP
    """
    t0 = time.perf_counter()
    props = properties or HeatProperties()
    if not (0 < top_fraction < 1):
        raise InvalidInputError(f"top_fraction={top_fraction!r}; give a fraction in (0, 1)")
    if cooled not in ("collector", "separator", "both"):
        raise InvalidInputError(f"cooled={cooled!r}; use collector, separator or both")
    if ms.ndim != 3:
        raise InvalidInputError("a resolved run is three-dimensional; give its 3D image")
    k, t, fields, meta = _resolved_snapshot(source, snapshot, time_s)
    missing = [n for n in _RESOLVED_KINDS if n not in fields]
    if missing:
        raise InvalidInputError(
            f"snapshot {k} of the resolved run has no loss map {', '.join(missing)}: the "
            "run was made without loss maps (run it with them, the default)"
        )
    for name in (*_RESOLVED_KINDS, "phi_s", "phi_e"):
        if name in fields and tuple(fields[name].shape) != ms.shape:
            raise InvalidInputError(
                f"{name} of snapshot {k} has shape {tuple(fields[name].shape)} but the "
                f"image is {ms.shape}: give the image the run was computed on"
            )
    lab, h = _labels3(ms)
    ax = ms.thickness_axis
    shape = lab.shape
    vvox = float(np.prod(h))
    area = float(
        np.prod([n * hh for a, (n, hh) in enumerate(zip(shape, h, strict=True)) if a != ax])
    )
    volume = area * shape[ax] * h[ax]
    maps = {n: np.asarray(fields[n], np.float64) for n in _RESOLVED_KINDS}
    conducting = np.zeros(shape, bool)
    for m in maps.values():
        conducting |= np.isfinite(m)
    qd = np.zeros(shape)
    kinds = {"electronic": 0.0, "ionic": 0.0, "reaction": 0.0, "solid_diffusion": 0.0}
    for name, m in maps.items():
        m = np.nan_to_num(m, nan=0.0)
        qd += m
        kinds[_RESOLVED_KINDS[name]] += float(m.sum(dtype=np.float64)) * vvox
    del maps
    heat = qd * vvox  # W per voxel
    total = float(heat.sum(dtype=np.float64))
    if not (total > 0 and math.isfinite(total)):
        raise InvalidInputError(
            f"snapshot {k} (t = {t:g} s) carries no heat (total {total:g} W): the rest state "
            "has no current; choose a later snapshot"
        )
    balance = math.nan
    if "loss_total" in fields:
        ref = float(np.nansum(np.asarray(fields["loss_total"], np.float64))) * vvox
        balance = abs(total - ref) / abs(ref) if ref else math.nan
    current = abs(float(meta.get("current_A", math.nan)))
    j_app = current / area
    notes = [
        f"heat from snapshot {k} of the resolved run at t = {t:g} s: its loss maps "
        "(irreversible heat; reversible heat not included)",
        "the snapshot stores potentials and losses, not face currents: current densities "
        "and the necks' currents are not given; necks are ranked by heat density",
    ]
    # ----------------------------------------------------------- bottlenecks
    qvals = qd[conducting]
    n_top = max(1, math.ceil(top_fraction * qvals.size))
    top = np.partition(qvals, qvals.size - n_top)[qvals.size - n_top :]
    thresh = float(top.min())
    top_frac = float(top.sum() * vvox / total)
    hot = conducting & (qd >= thresh * (1.0 - 1e-9)) & (qd > 0)
    zeros = [np.zeros(shape) for _ in range(3)]
    necks, n_clusters = _necks(
        ms, lab, hot, heat, qd, zeros, h, ax, current, total, n_necks, inflow=None, outflow=None
    )  # fmt: skip
    for n in necks:  # ranked by heat density: rename, and no currents
        n["peak_heat_W_per_m3"] = n.pop("peak_current_density_A_per_m2")
        n["mean_heat_W_per_m3"] = n.pop("mean_current_density_A_per_m2")
        for key in ("current_A", "current_fraction"):
            n[key] = math.nan
        n["peak_current_density_A_per_m2"] = math.nan
        n["mean_current_density_A_per_m2"] = math.nan
    # ---------------------------------------------------- depth, temperature
    dtype = _resolve_precision(precision, lab.size)
    other = tuple(a for a in range(3) if a != ax)
    depth = (np.arange(shape[ax]) + 0.5) * h[ax]
    kth = _thermal_classes(ms, lab, props)
    faces = {"collector": [(ax, 0)], "separator": [(ax, -1)], "both": [(ax, 0), (ax, -1)]}
    dT, _ = temperature_rise(
        kth, heat.astype(dtype), h, cooled=faces[cooled], tol=1e-4 if dtype == np.float32 else 1e-6
    )  # fmt: skip
    local = float((dT - dT.mean(axis=other, keepdims=True)).max())
    hottest = necks[0]["heat_W"] if necks else 0.0
    point = hottest / (4.0 * math.pi * props.electrolyte_thermal_conductivity * 1e-6)
    per_label = np.bincount(lab.reshape(-1), weights=heat.reshape(-1))
    by_phase = {
        p.name: float(per_label[p.label]) if p.label < per_label.size else 0.0
        for p in ms.phases.values()
    }
    pot = {
        n: np.asarray(fields[n], np.float64) if n in fields else np.full(shape, np.nan)
        for n in ("phi_s", "phi_e")
    }
    return HeatResult(
        mode="resolved",
        current_density_A_per_m2=j_app,
        current_A=current,
        voltage_drop_V=total / current if current > 0 else math.nan,
        resistance_ohm_m2=total / current / j_app if current > 0 else math.nan,
        total_heat_W=total,
        energy_balance_error=float(balance),
        heat_per_area_W_per_m2=total / area,
        heat_per_volume_W_per_m3=total / volume,
        heat_by_kind_W=kinds,
        heat_by_phase_W=by_phase,
        heat_top1pct_fraction=top_frac,
        necks=necks,
        n_necks=n_clusters,
        depth_m=depth,
        heat_depth_W_per_m3=heat.sum(axis=other) / (area * h[ax]),
        max_delta_T_K=float(dT.max()),
        mean_delta_T_K=float(dT.mean()),
        local_delta_T_K=local,
        point_source_delta_T_K=float(point),
        thermal_boundary=_THERMAL_BOUNDARY[cooled],
        properties=props.to_dict(),
        iterations=0,
        warnings=notes,
        heat_W_per_m3=np.where(conducting, qd, np.nan),
        current_density_A_per_m2_field=np.full(shape, np.nan),
        potential_V=pot["phi_s"],
        electrolyte_potential_V=pot["phi_e"],
        delta_T_K=dT,
        provenance=Provenance(
            "microbat.degradation.resolved_heating",
            parameters={
                "snapshot": k,
                "time_s": t,
                "cooled": cooled,
                "top_fraction": top_fraction,
                "precision": "single" if dtype == np.float32 else "double",
            },
            wall_time_s=time.perf_counter() - t0,
            inputs={
                "shape": list(ms.shape),
                "voxel_size_m": list(ms.voxel_size),
                "resolved_run": {k2: v for k2, v in meta.items() if k2 != "current_A"},
            },
        ),
    )


def _resolved_snapshot(
    source: Any, snapshot: int | None, time_s: float | None
) -> tuple[int, float, dict[str, np.ndarray], dict[str, Any]]:
    """(index, time, fields, run attributes) of one snapshot of a resolved run."""
    from pathlib import Path

    from microbat.core.errors import FileFormatError, require

    def pick(times: list[float]) -> int:
        if not times:
            raise InvalidInputError("the resolved run holds no snapshot of the fields")
        if time_s is not None:
            return int(np.argmin([abs(x - time_s) for x in times]))
        i = -1 if snapshot is None else int(snapshot)
        if not -len(times) <= i < len(times):
            raise InvalidInputError(
                f"snapshot {snapshot} does not exist; the run has {len(times)} "
                f"(0 … {len(times) - 1})"
            )
        return i % len(times)

    if isinstance(source, str | Path):
        path = Path(source)
        f = path / "fields.h5" if path.is_dir() else path
        if not f.is_file():
            raise FileFormatError(
                f"no resolved run at {path}: expected the folder of 'microbat simulate "
                "--out' (with fields.h5) or the fields.h5 file"
            )
        h5py = require("h5py")
        try:
            with h5py.File(f, "r") as hf:
                groups = sorted(g for g in hf if g.startswith("t") and g[1:].isdigit())
                k = pick([float(hf[g].attrs["time_s"]) for g in groups])
                grp = hf[groups[k]]
                fields = {name: np.asarray(grp[name]) for name in grp}
                meta = {
                    "file": str(f),
                    "c_rate": float(hf.attrs.get("c_rate", math.nan)),
                    "current_A": float(hf.attrs.get("current_A", math.nan)),
                    "partial": bool(hf.attrs.get("partial", False)),
                }
                t = float(grp.attrs["time_s"])
        except (OSError, KeyError) as exc:
            raise FileFormatError(f"{f}: not a readable resolved-run field file ({exc})") from None
        return k, t, fields, meta
    if not hasattr(source, "snapshots"):
        raise InvalidInputError(
            f"cannot read a resolved run from {type(source).__name__}; pass the result of "
            "simulate_discharge or the folder of a saved run"
        )
    snaps = list(source.snapshots)
    k = pick([float(s.time_s) for s in snaps])
    meta = {
        "c_rate": float(source.c_rate),
        "current_A": float(source.current_A),
        "partial": bool(getattr(source, "partial", False)),
    }
    return k, float(snaps[k].time_s), dict(snaps[k].fields), meta


_THERMAL_BOUNDARY = {
    "collector": "T held at T0 on the current-collector face (index 0 of the thickness "
    "axis), every other side adiabatic",
    "separator": "T held at T0 on the separator face (last index of the thickness axis), "
    "every other side adiabatic",
    "both": "T held at T0 on the current-collector and separator faces, the four other "
    "sides adiabatic",
}


def _pad_nan(a: np.ndarray, axis: int, n: int) -> np.ndarray:
    """``a`` with ``n`` NaN layers appended along ``axis``."""
    width = [(0, 0)] * a.ndim
    width[axis] = (0, n)
    return np.pad(np.asarray(a, np.float64), width, constant_values=np.nan)


def _thermal_classes(ms: Microstructure, lab: np.ndarray, props: HeatProperties) -> Any:
    """Thermal conductivity of every phase by role, class-coded."""
    return _classes(
        lab,
        ms,
        {
            PhaseRole.ACTIVE: props.active_thermal_conductivity,
            PhaseRole.CARBON_BINDER: props.carbon_binder_thermal_conductivity,
            PhaseRole.ELECTROLYTE: props.electrolyte_thermal_conductivity,
            PhaseRole.GAS: props.gas_thermal_conductivity,
            PhaseRole.SEPARATOR: props.separator_thermal_conductivity,
            PhaseRole.CURRENT_COLLECTOR: props.current_collector_thermal_conductivity,
            PhaseRole.SOLID_ELECTROLYTE: props.other_thermal_conductivity,
            PhaseRole.OTHER: props.other_thermal_conductivity,
        },
    )


def _necks(
    ms: Microstructure,
    lab: np.ndarray,
    hot: np.ndarray,
    heat: np.ndarray,
    jmag: np.ndarray,
    face_abs: Sequence[np.ndarray],
    h: Sequence[float],
    ax: int,
    current: float,
    total: float,
    n_necks: int,
    *,
    inflow: np.ndarray | None,
    outflow: np.ndarray | None,
) -> tuple[list[dict[str, Any]], int]:
    """Clusters of hot voxels with their heat, current density and throughput."""
    from microbat.fv.connectivity import components

    cl, n = components(hot)
    if n == 0:
        return [], 0
    nb = n + 1
    sel = np.flatnonzero(cl)  # the hot voxels only (1 % of the grid)
    flat = cl.reshape(-1)[sel]
    heat_c = np.bincount(flat, weights=heat.reshape(-1)[sel], minlength=nb)
    vox_c = np.bincount(flat, minlength=nb)
    jv = jmag.reshape(-1)[sel]
    jsum = np.bincount(flat, weights=jv, minlength=nb)
    jpeak = np.zeros(nb)
    np.maximum.at(jpeak, flat, jv)
    # throughput: half the absolute current over the cluster's boundary faces
    through = np.zeros(nb)
    for a in range(3):
        if cl.shape[a] < 2:
            continue
        lo, hi = _sl(a, _LO), _sl(a, _HI)
        cl_lo, cl_hi = cl[lo], cl[hi]
        edge = cl_lo != cl_hi
        fa = face_abs[a][lo]
        through += np.bincount(cl_lo[edge], weights=fa[edge], minlength=nb)
        through += np.bincount(cl_hi[edge], weights=fa[edge], minlength=nb)
    if inflow is not None:
        through += np.bincount(_take(cl, ax, 0).ravel(), weights=inflow.ravel(), minlength=nb)
    if outflow is not None:
        through += np.bincount(
            _take(cl, ax, cl.shape[ax] - 1).ravel(), weights=outflow.ravel(), minlength=nb
        )
    through *= 0.5
    idx = np.unravel_index(sel, cl.shape)
    cen = [np.bincount(flat, weights=idx[a].astype(np.float64), minlength=nb) for a in range(3)]
    names = {p.label: p.name for p in ms.phases.values()}
    order = np.argsort(-jpeak[1:], kind="stable")[: max(0, int(n_necks))] + 1
    labs = lab.reshape(-1)[sel]
    out = []
    for c in order:
        phase_lab = int(np.bincount(labs[flat == c]).argmax())
        centroid = [float((cen[a][c] / vox_c[c] + 0.5) * h[a]) for a in range(3)]
        out.append(
            {
                "voxels": int(vox_c[c]),
                "phase": names.get(phase_lab, str(phase_lab)),
                "heat_W": float(heat_c[c]),
                "heat_fraction": float(heat_c[c] / total) if total > 0 else 0.0,
                "peak_current_density_A_per_m2": float(jpeak[c]),
                "mean_current_density_A_per_m2": float(jsum[c] / vox_c[c]),
                "current_A": float(through[c]),
                "current_fraction": float(through[c] / current) if current > 0 else 0.0,
                "centroid_m": centroid if ms.ndim == 3 else centroid[:2],
                "depth_m": centroid[ax],
            }
        )
    return out, int(n)
