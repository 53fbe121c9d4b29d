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
        ``"electrode"`` (operating current) or ``"solid"`` (electronic only).
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
    conductivity : ndarray, 3D
        Thermal conductivity per voxel, W/(m K) (positive everywhere).
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
    from microbat.fv.solvers import solve
    from microbat.fv.system import Dirichlet, build_system

    k = np.asarray(conductivity, np.float64)
    if k.ndim != 3 or np.any(~np.isfinite(k)) or np.any(k <= 0):
        raise InvalidInputError("thermal conductivities must be positive and finite on every voxel")
    q = np.asarray(heat_W, np.float64)
    if q.shape != k.shape:
        raise InvalidInputError(f"heat shape {q.shape} != conductivity shape {k.shape}")
    bcs = [Dirichlet(int(a), int(s), 0.0) for a, s in cooled]
    if not bcs:
        raise InvalidInputError("give at least one cooled face: a fully adiabatic body heats up")
    system = build_system(k, voxel_size, dirichlet=bcs, source=np.nan_to_num(q))
    sol = solve(system, method=method, rtol=tol)  # type: ignore[arg-type]
    return np.asarray(sol.x, np.float64), int(sol.iterations)


# ============================================================ charge transport
@dataclass
class _Network:
    """One potential field: its system, per-voxel conductivity and boundary terms."""

    system: Any
    sigma: np.ndarray  # per-voxel conductivity used for the half-cell split (S/m)
    u: np.ndarray | None = None
    boundary_g: np.ndarray | None = None  # plane conductances to the held value
    boundary_layer: int = 0
    boundary_value: float = 0.0
    boundary_series: np.ndarray | None = None  # conductance of reaction boundary faces (S)
    boundary_reaction: np.ndarray | None = None  # their charge-transfer resistance (Ω)


@dataclass
class _Reaction:
    """Charge-transfer faces between the solid (``s``) and ionic (``e``) networks."""

    axis: list[np.ndarray]  # per axis: conductance of faces lo->hi with solid at lo
    axis_rev: list[np.ndarray]  # per axis: solid at hi
    r_ct_lo: list[np.ndarray]  # charge-transfer resistance of those faces (Ω)
    r_ct_hi: list[np.ndarray]


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
        raise InvalidInputError(f"precision={precision!r}; use double, single or auto")
    if precision == "single" or (precision == "auto" and n > 2**21):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def _solid_mode(
    lab: np.ndarray,
    h: tuple[float, float, float],
    sets: Mapping[str, np.ndarray],
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

    sig = np.zeros(lab.shape)
    sig[sets["active"]] = props.active_conductivity
    sig[sets["cbd"]] = props.carbon_binder_conductivity
    sig[sets["cc"]] = props.current_collector_conductivity
    span = spanning_mask(sig > 0, ax)
    if not span.any():
        raise NotPercolatingError(
            "the solid (active + carbon-binder) does not connect the current-collector face "
            "to the separator face along the thickness axis: no electronic current can flow"
        )
    system = build_system(
        sig.astype(dtype),
        h,
        dirichlet=[Dirichlet(ax, 0, 1.0), Dirichlet(ax, -1, 0.0)],
        active=span,
        dtype=dtype,
    )
    sol = solve(system, method=method, rtol=tol, maxiter=1000)  # type: ignore[arg-type]
    net = _Network(system, sig, np.asarray(sol.x, np.float64))
    current = float(system.boundary_flux(net.u, 0))
    net.boundary_g = None
    return net, current, int(sol.iterations)


def _electrode_mode(
    lab: np.ndarray,
    h: tuple[float, float, float],
    sets: Mapping[str, np.ndarray],
    props: HeatProperties,
    ax: int,
    tol: float,
    dtype: np.dtype,
    method: str,
) -> tuple[_Network, _Network, _Reaction, float, int]:
    """Coupled solid/electrolyte conduction with linear charge transfer, 1 V applied."""
    from microbat.fv.grid import face_areas
    from microbat.fv.system import build_system

    A = face_areas(h)
    sig_s = np.zeros(lab.shape)
    sig_s[sets["active"]] = props.active_conductivity
    sig_s[sets["cbd"]] = props.carbon_binder_conductivity
    sig_s[sets["cc"]] = props.current_collector_conductivity
    kap = props.electrolyte_conductivity
    sig_e = np.zeros(lab.shape)
    sig_e[sets["electrolyte"]] = kap
    sig_e[sets["cbd"]] = kap * props.carbon_binder_porosity**props.carbon_binder_bruggeman
    sig_e[sets["separator"]] = kap * props.separator_porosity**props.separator_bruggeman
    if not (sig_e > 0).any():
        raise PhaseError(
            "the operating-current mode needs an ion-conducting phase (electrolyte, "
            "carbon-binder or separator); this image has none — use through='solid' "
            "(--through solid) for the electronic network alone"
        )
    gct = props.charge_transfer_conductance
    act = sets["active"]
    # area factor of a reaction face by the ionic voxel's phase
    area_f = np.zeros(lab.shape)
    area_f[sets["electrolyte"]] = 1.0
    area_f[sets["cbd"]] = props.carbon_binder_porosity
    rx_lo: list[np.ndarray] = []
    rx_hi: list[np.ndarray] = []
    rct_lo: list[np.ndarray] = []
    rct_hi: list[np.ndarray] = []
    for a in range(3):
        g1 = np.zeros(lab.shape)
        g2 = np.zeros(lab.shape)
        r1 = np.zeros(lab.shape)
        r2 = np.zeros(lab.shape)
        if lab.shape[a] > 1 and gct > 0:
            lo, hi = _sl(a, _LO), _sl(a, _HI)
            half = h[a] / (2.0 * A[a])
            # solid (active) at lo, ionic at hi
            m1 = act[lo] & (area_f[hi] > 0)
            rct = np.zeros(m1.shape)
            rct[m1] = 1.0 / (gct * A[a] * area_f[hi][m1])
            tot = np.where(
                m1,
                half / np.where(m1, sig_s[lo], 1) + rct + half / np.where(m1, sig_e[hi], 1),
                np.inf,
            )
            g1[lo] = np.where(m1, 1.0 / tot, 0.0)
            r1[lo] = rct
            m2 = (area_f[lo] > 0) & act[hi]
            rct2 = np.zeros(m2.shape)
            rct2[m2] = 1.0 / (gct * A[a] * area_f[lo][m2])
            tot2 = np.where(
                m2,
                half / np.where(m2, sig_s[hi], 1) + rct2 + half / np.where(m2, sig_e[lo], 1),
                np.inf,
            )
            g2[lo] = np.where(m2, 1.0 / tot2, 0.0)
            r2[lo] = rct2
        rx_lo.append(g1)
        rx_hi.append(g2)
        rct_lo.append(r1)
        rct_hi.append(r2)
    # boundary terms: collector face holds the solid at 1 V; separator face holds
    # the electrolyte at 0 V (and feeds the reaction of active voxels touching it)
    n_ax = lab.shape[ax]
    gb_s = np.where(_take(sig_s, ax, 0) > 0, 2.0 * A[ax] / h[ax] * _take(sig_s, ax, 0), 0.0)
    gb_e = np.where(
        _take(sig_e, ax, n_ax - 1) > 0, 2.0 * A[ax] / h[ax] * _take(sig_e, ax, n_ax - 1), 0.0
    )
    act_last = _take(act, ax, n_ax - 1)
    sep_area = props.separator_porosity
    r_b = np.zeros(act_last.shape)
    if gct > 0 and sep_area > 0:
        r_b[act_last] = 1.0 / (gct * A[ax] * sep_area)
        half_s = h[ax] / (2.0 * A[ax] * _take(sig_s, ax, n_ax - 1)[act_last])
        gb_sep_s = np.zeros(act_last.shape)
        gb_sep_s[act_last] = 1.0 / (half_s + r_b[act_last])
    else:
        gb_sep_s = np.zeros(act_last.shape)
    # unknowns: components of the coupled graph that hold a boundary value
    active_s, active_e = _coupled_components(sig_s > 0, sig_e > 0, gb_s, gb_e, gb_sep_s, ax)
    coupled = any(
        (rx_lo[a][_sl(a, _LO)] * active_s[_sl(a, _LO)] * active_e[_sl(a, _HI)]).any()
        or (rx_hi[a][_sl(a, _LO)] * active_e[_sl(a, _LO)] * active_s[_sl(a, _HI)]).any()
        for a in range(3)
        if lab.shape[a] > 1
    )
    if not active_s.any() or not active_e.any() or not (coupled or gb_sep_s.any()):
        raise NotPercolatingError(
            "no current path from the current-collector face through the solid and the "
            "electrolyte to the separator face: check the segmentation (solid touching "
            "the collector side, electrolyte reaching the separator side)"
        )
    diag_s = np.zeros(lab.shape)
    diag_e = np.zeros(lab.shape)
    src_s = np.zeros(lab.shape)
    diag_s[_sl(ax, 0)] += gb_s
    src_s[_sl(ax, 0)] += gb_s * 1.0
    diag_s[_sl(ax, n_ax - 1)] += gb_sep_s
    diag_e[_sl(ax, n_ax - 1)] += gb_e
    for a in range(3):
        if lab.shape[a] < 2:
            continue
        lo, hi = _sl(a, _LO), _sl(a, _HI)
        m1 = active_s[lo] & active_e[hi]
        rx_lo[a][lo] *= m1
        rx_hi[a][lo] *= active_e[lo] & active_s[hi]
        diag_s[lo] += rx_lo[a][lo]
        diag_e[hi] += rx_lo[a][lo]
        diag_e[lo] += rx_hi[a][lo]
        diag_s[hi] += rx_hi[a][lo]
    S = build_system(
        sig_s.astype(dtype), h, active=active_s, diagonal=diag_s, source=src_s, dtype=dtype
    )
    E = build_system(sig_e.astype(dtype), h, active=active_e, diagonal=diag_e, dtype=dtype)
    us, ue, iters = _solve_coupled(S, E, rx_lo, rx_hi, tol, method)
    net_s = _Network(S, sig_s, us, gb_s * _take(active_s, ax, 0), 0, 1.0)
    net_e = _Network(E, sig_e, ue, gb_e * _take(active_e, ax, n_ax - 1), n_ax - 1, 0.0)
    # the active voxels at the separator face: electrons leave the solid there
    net_s.boundary_series = np.where(_take(active_s, ax, n_ax - 1), gb_sep_s, 0.0)
    rx = _Reaction(rx_lo, rx_hi, rct_lo, rct_hi)
    current = float(np.sum(net_s.boundary_g * (1.0 - _take(us, ax, 0)), dtype=np.float64))
    net_s.boundary_reaction = r_b
    return net_s, net_e, rx, current, iters


def _take(a: np.ndarray, axis: int, index: int) -> np.ndarray:
    return np.take(a, index, axis=axis)


def _coupled_components(
    solid: np.ndarray,
    ionic: np.ndarray,
    gb_s: np.ndarray,
    gb_e: np.ndarray,
    gb_sep_s: np.ndarray,
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
    keep[np.unique(_take(ls, ax, 0)[gb_s > 0])] = True
    keep[np.unique(_take(ls, ax, n_ax - 1)[gb_sep_s > 0])] = True
    keep[0] = False
    le, ne = components(ionic)
    keep_e = np.zeros(ne + 1, bool)
    keep_e[np.unique(_take(le, ax, n_ax - 1)[gb_e > 0])] = True
    keep_e[0] = False
    return keep[ls], keep_e[le]


def _solve_coupled(
    S: Any,
    E: Any,
    rx_lo: Sequence[np.ndarray],
    rx_hi: Sequence[np.ndarray],
    tol: float,
    method: str,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Solve the block system [[A_s, -C], [-Cᵀ, A_e]] [u_s, u_e] = [b_s, 0].

    Small systems: sparse LU of the assembled block matrix. Large ones: flexible
    CG on the stacked fields, preconditioned by one aggregation-multigrid cycle per
    network (block Jacobi). A single hierarchy over both would merge solid and
    electrolyte voxels into one aggregate across the weak charge-transfer faces
    and force them to one correction: measured 247 iterations against 19 on a 64³
    electrode. (A coarse correction on per-layer averages of each network, the
    transmission-line mode, saved 4 of 36 iterations at 100³ and was dropped.)
    """
    import scipy.sparse as sp

    shape = S.shape
    n = S.n_unknowns + E.n_unknowns
    # coupling faces: solid voxel p, ionic voxel q, conductance g (flat indices)
    ps, qe, gs = [], [], []
    idx = np.arange(int(np.prod(shape))).reshape(shape)
    for a in range(3):
        if shape[a] < 2:
            continue
        lo, hi = _sl(a, _LO), _sl(a, _HI)
        m1 = rx_lo[a][lo] > 0
        ps.append(idx[lo][m1])
        qe.append(idx[hi][m1])
        gs.append(rx_lo[a][lo][m1])
        m2 = rx_hi[a][lo] > 0
        ps.append(idx[hi][m2])
        qe.append(idx[lo][m2])
        gs.append(rx_hi[a][lo][m2])
    p_all = np.concatenate(ps)
    q_all = np.concatenate(qe)
    g_all = np.concatenate(gs)
    del idx
    if method == "auto":
        method = "direct" if n <= 60_000 else "mg"
    if method == "direct":
        from microbat.fv.solvers import DirectSolver

        As, bs, ids = S.to_sparse()
        Ae, be, ide = E.to_sparse()
        inv_s = np.full(int(np.prod(shape)), -1, np.int64)
        inv_s[ids] = np.arange(ids.size)
        inv_e = np.full(int(np.prod(shape)), -1, np.int64)
        inv_e[ide] = np.arange(ide.size)
        C = sp.coo_matrix((g_all, (inv_s[p_all], inv_e[q_all])), shape=(ids.size, ide.size)).tocsr()
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
    rows, ri = np.unique(p_all, return_inverse=True)
    cols, cj = np.unique(q_all, return_inverse=True)
    C = sp.csr_matrix((g_all.astype(np.float64), (ri, cj)), shape=(rows.size, cols.size))
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

    b = np.concatenate([S.rhs, E.rhs], axis=0).astype(dtype)
    x = np.zeros(b.shape, dtype)
    info = pcg(apply, precond, b, x, rtol=tol, maxiter=1000, flexible=True)
    if not info.converged:
        raise ConvergenceError(
            f"the coupled potential solve did not converge in {info.iterations} iterations "
            f"(relative residual {info.residual_norm / max(info.rhs_norm, 1e-300):.2e}"
            + (f"; {info.breakdown}" if info.breakdown else "")
            + "); loosen tol or use method='direct' for small images"
        )
    us = np.where(S.active, x[:n0], 0).astype(np.float64)
    ue = np.where(E.active, x[n0:], 0).astype(np.float64)
    return us, ue, int(info.iterations)


# ================================================================= heat
def _face_heat(net: _Network, h: Sequence[float]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Per-voxel ohmic heat (W) of a network's interior faces, and face currents per axis.

    ``cur[a][p]`` is the current from ``p`` to ``p + e_a`` (full-grid arrays).
    """
    u = net.u
    assert u is not None
    heat = np.zeros(u.shape)
    currents = []
    sig = net.sigma
    for a in range(3):
        cur = np.zeros(u.shape)
        if u.shape[a] > 1:
            lo, hi = _sl(a, _LO), _sl(a, _HI)
            g = np.asarray(net.system.conductance(a)[lo], np.float64)
            du = u[lo] - u[hi]
            Ia = g * du
            w = Ia * du  # I² / g, the heat of the face
            ssum = sig[lo] + sig[hi]
            frac_lo = np.divide(sig[hi], ssum, out=np.zeros_like(ssum), where=ssum > 0)
            heat[lo] += w * frac_lo
            heat[hi] += w * (1.0 - frac_lo)
            cur[lo] = Ia
        currents.append(cur)
    return heat, currents


def _centre_current(
    faces: Sequence[np.ndarray],
    h: Sequence[float],
    inflow: np.ndarray | None,
    ax: int,
    outflow: np.ndarray | None,
) -> np.ndarray:
    """|j| at voxel centres from face currents (mean of the two faces per axis), A/m²."""
    from microbat.fv.grid import face_areas

    A = face_areas(h)
    j2 = np.zeros(faces[0].shape)
    for a in range(3):
        cur = faces[a]
        minus = np.zeros(cur.shape)  # current entering through the lower face
        if cur.shape[a] > 1:
            minus[_sl(a, _HI)] = cur[_sl(a, _LO)]
        if a == ax and inflow is not None:
            minus[_sl(a, 0)] += inflow
        plus = cur.copy()
        if a == ax and outflow is not None:
            plus[_sl(a, cur.shape[a] - 1)] += outflow
        ja = 0.5 * (minus + plus) / A[a]
        j2 += ja * ja
    return np.sqrt(j2)


@dataclass
class _Heat:
    """Per-voxel heat (W at 1 V applied) and face currents (A) of one solve."""

    heat_s: np.ndarray
    heat_e: np.ndarray
    heat_rx: np.ndarray
    face_s: list[np.ndarray]
    face_e: list[np.ndarray]
    face_rx: list[np.ndarray]
    inflow_s: np.ndarray | None = None  # current entering the solid at the collector face
    outflow_s: np.ndarray | None = None  # current leaving the solid at the separator face
    outflow_e: np.ndarray | None = None  # current leaving the electrolyte there


def _heat_solid(net: _Network, h: Sequence[float], ax: int) -> _Heat:
    """Heat of the electronic solve: interior faces and the two held half-cells."""
    heat, faces = _face_heat(net, h)
    zeros = [np.zeros(heat.shape) for _ in range(3)]
    out = _Heat(heat, np.zeros(heat.shape), np.zeros(heat.shape), faces, zeros, zeros)
    u = net.u
    assert u is not None
    for t, layer in ((net.system.boundaries[0], 0), (net.system.boundaries[1], heat.shape[ax] - 1)):
        gb = np.asarray(t.conductance, np.float64)
        ib = gb * (np.asarray(t.value) - _take(u, ax, layer))
        heat[_sl(ax, layer)] += np.divide(ib * ib, gb, out=np.zeros_like(ib), where=gb > 0)
        if layer == 0:
            out.inflow_s = ib
        else:
            out.outflow_s = -ib
    return out


def _heat_electrode(
    net_s: _Network, net_e: _Network, rx: _Reaction, h: Sequence[float], ax: int
) -> _Heat:
    """Heat of the coupled solve: both networks, charge-transfer faces, boundaries.

    A charge-transfer face is three resistors in series: the active voxel's
    half-cell (its heat goes to the active voxel), ``1/(g_ct A)`` (the reaction
    heat, counted at the active voxel) and the ionic voxel's half-cell.
    """
    from microbat.fv.grid import face_areas

    us, ue = net_s.u, net_e.u
    assert us is not None and ue is not None
    heat_s, face_s = _face_heat(net_s, h)
    heat_e, face_e = _face_heat(net_e, h)
    heat_rx = np.zeros(us.shape)
    face_rx = [np.zeros(us.shape) for _ in range(3)]
    areas = face_areas(h)
    ss, se = net_s.sigma, net_e.sigma
    for a in range(3):
        if us.shape[a] < 2:
            continue
        lo, hi = _sl(a, _LO), _sl(a, _HI)
        half = h[a] / (2.0 * areas[a])
        for g, s_side, e_side, sign in (
            (rx.axis[a][lo], lo, hi, 1.0),  # solid at lo, ionic at hi
            (rx.axis_rev[a][lo], hi, lo, -1.0),  # ionic at lo, solid at hi
        ):
            cur = g * (us[s_side] - ue[e_side])  # from the solid into the electrolyte
            on = g > 0
            w = np.divide(cur * cur, g, out=np.zeros_like(cur), where=on)
            r_s = np.divide(half, ss[s_side], out=np.zeros_like(cur), where=on)
            r_e = np.divide(half, se[e_side], out=np.zeros_like(cur), where=on)
            heat_s[s_side] += cur * cur * r_s
            heat_e[e_side] += cur * cur * r_e
            heat_rx[s_side] += np.maximum(w - cur * cur * (r_s + r_e), 0.0)
            face_rx[a][lo] += sign * cur  # along +a
    n_ax = us.shape[ax]
    last = _sl(ax, n_ax - 1)
    gb = net_s.boundary_g
    assert gb is not None and net_e.boundary_g is not None and net_s.boundary_series is not None
    inflow = gb * (1.0 - _take(us, ax, 0))
    heat_s[_sl(ax, 0)] += np.divide(inflow**2, gb, out=np.zeros_like(inflow), where=gb > 0)
    ge = net_e.boundary_g
    out_e = ge * _take(ue, ax, n_ax - 1)
    heat_e[last] += np.divide(out_e**2, ge, out=np.zeros_like(out_e), where=ge > 0)
    # active voxels touching the separator's electrolyte: half-cell + reaction
    gsep = net_s.boundary_series
    out_s = gsep * _take(us, ax, n_ax - 1)
    wsep = np.divide(out_s**2, gsep, out=np.zeros_like(out_s), where=gsep > 0)
    r_b = net_s.boundary_reaction
    assert r_b is not None
    heat_rx[last] += out_s**2 * r_b
    heat_s[last] += np.maximum(wsep - out_s**2 * r_b, 0.0)
    return _Heat(heat_s, heat_e, heat_rx, face_s, face_e, face_rx, inflow, out_s, out_e)


def joule_heating(
    ms: Microstructure,
    *,
    current_density: float = 30.0,
    through: Mode = "electrode",
    properties: HeatProperties | None = None,
    cooled: str = "collector",
    top_fraction: float = 0.01,
    n_necks: int = 10,
    tol: float = 1e-10,
    method: str = "auto",
    precision: str = "double",
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
    tol : float, default 1e-10
        Relative residual of the potential solve. The right-hand side holds the
        collector's conductance times the applied potential, far larger than the
        current it drives, so the residual must be small: the energy balance
        ``|Q − I ΔV| / (I ΔV)`` is about 200 × ``tol`` (6e-8 at 1e-10 on a 40³
        electrode; 20 multigrid iterations).
    method : {"auto", "direct", "mg"}, default "auto"
        Linear solver of the potential (``"auto"``: direct for small images).
    precision : {"double", "single", "auto"}, default "double"
        Floating type of the potential solve (``"auto"``: single above 2²¹
        voxels). Single precision halves the memory but cannot reach a residual
        below about 1e-6: ``tol`` is then raised to 1e-6.

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
    if dtype == np.float32 and tol < 1e-6:
        tol = 1e-6
        notes.append("single precision: the potential solve stops at a relative residual 1e-6")
    area = float(
        np.prod([n * hh for a, (n, hh) in enumerate(zip(shape, h, strict=True)) if a != ax])
    )
    volume = area * shape[ax] * h[ax]
    vvox = float(np.prod(h))
    net_e = None
    rx = None
    if through == "solid":
        net_s, i_unit, iters = _solid_mode(lab, h, sets, props, ax, tol, dtype, method)
    else:
        net_s, net_e, rx, i_unit, iters = _electrode_mode(
            lab, h, sets, props, ax, tol, dtype, method
        )
    if not (i_unit > 0 and math.isfinite(i_unit)):
        raise NotPercolatingError("no current flows between the collector and separator faces")
    current = j_app * area
    scale = current / i_unit  # the potential difference that drives J
    # ------------------------------------------------------------ heat
    if net_e is None:
        parts = _heat_solid(net_s, h, ax)
    else:
        assert rx is not None
        parts = _heat_electrode(net_s, net_e, rx, h, ax)
    heat_s, heat_e, heat_rx = parts.heat_s, parts.heat_e, parts.heat_rx
    I_s, I_e, I_rx = parts.face_s, parts.face_e, parts.face_rx
    inflow_s, outflow_s, outflow_e = parts.inflow_s, parts.outflow_s, parts.outflow_e
    s2 = scale * scale
    heat_s *= s2
    heat_e *= s2
    heat_rx *= s2
    heat = heat_s + heat_e + heat_rx  # W per voxel
    total = float(heat.sum(dtype=np.float64))
    balance = abs(total - current * scale) / (current * scale)
    # ------------------------------------------------------ current density
    inflow = None if inflow_s is None else scale * inflow_s
    outflow = None if outflow_s is None else scale * outflow_s
    js = _centre_current([scale * (I_s[a] + I_rx[a]) for a in range(3)], h, inflow, ax, outflow)
    if net_e is not None and sets["cbd"].any():
        # the solid side of a charge-transfer face is active material: in the
        # carbon-binder those faces carry ions, which je counts
        js_cbd = _centre_current([scale * I_s[a] for a in range(3)], h, inflow, ax, None)
        js = np.where(sets["cbd"], js_cbd, js)
    # conductors: every voxel of a conducting phase (0 heat where no current flows,
    # e.g. dead ends; NaN only where nothing conducts)
    conducting = net_s.sigma > 0
    jmag = np.where(net_s.system.active, js, 0.0)
    if net_e is not None:
        je = _centre_current(
            [scale * (I_e[a] + I_rx[a]) for a in range(3)],
            h,
            None,
            ax,
            scale * outflow_e if outflow_e is not None else None,
        )
        jmag = np.sqrt(jmag**2 + np.where(net_e.system.active, je, 0.0) ** 2)
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
    face_abs = []
    for a in range(3):
        fa = np.abs(I_s[a]) + np.abs(I_rx[a])
        if net_e is not None:
            fa = fa + np.abs(I_e[a])
        face_abs.append(scale * fa)
    necks, n_clusters = _necks(
        ms,
        lab,
        hot,
        heat,
        jmag,
        face_abs,
        h,
        ax,
        current,
        total,
        n_necks,
        inflow=None if inflow_s is None else scale * np.abs(inflow_s),
        outflow=_sum_planes(scale, outflow_s, outflow_e),
    )
    # ---------------------------------------------------------- depth profile
    other = tuple(a for a in range(3) if a != ax)
    layer_heat = heat.sum(axis=other)
    layer_vol = area * h[ax]
    depth = (np.arange(shape[ax]) + 0.5) * h[ax]
    # ----------------------------------------------------------- temperature
    kth = _thermal_field(ms, lab, props)
    faces = {"collector": [(ax, 0)], "separator": [(ax, -1)], "both": [(ax, 0), (ax, -1)]}
    dT, _ = temperature_rise(kth, heat, h, cooled=faces[cooled], tol=1e-10)
    layer_mean = dT.mean(axis=other, keepdims=True)
    local = float((dT - layer_mean).max())
    hottest = necks[0]["heat_W"] if necks else 0.0
    point = hottest / (4.0 * math.pi * props.electrolyte_thermal_conductivity * 1e-6)
    boundary = {
        "collector": "T held at T0 on the current-collector face (index 0 of the thickness "
        "axis), every other side adiabatic",
        "separator": "T held at T0 on the separator face (last index of the thickness axis), "
        "every other side adiabatic",
        "both": "T held at T0 on the current-collector and separator faces, the four other "
        "sides adiabatic",
    }[cooled]
    heat_nan = np.where(conducting, qd, np.nan)
    jfield = np.where(conducting, jmag, np.nan)
    assert net_s.u is not None
    pot_s = np.where(net_s.system.active, scale * net_s.u, np.nan)
    pot_e = None
    if net_e is not None:
        assert net_e.u is not None
        pot_e = np.where(net_e.system.active, scale * net_e.u, np.nan)
    if crop is not None:  # back to the image: NaN in the separator layers left out
        full = lab.shape[ax] + (ms.shape[ax] - crop) if ms.ndim == 3 else None
        heat_nan, jfield, pot_s, dT = (
            _pad_nan(x, ax, ms.shape[ax] - crop) for x in (heat_nan, jfield, pot_s, dT)
        )
        del full
    if ms.ndim == 2:
        heat_nan, jfield, pot_s, dT = (x[..., 0] for x in (heat_nan, jfield, pot_s, dT))
        pot_e = None if pot_e is None else pot_e[..., 0]
    by_phase = {}
    for p in ms.phases.values():
        m = lab == p.label
        by_phase[p.name] = float(heat[m].sum())
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
        heat_by_kind_W={
            "electronic": float(heat_s.sum()),
            "ionic": float(heat_e.sum()),
            "reaction": float(heat_rx.sum()),
        },
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


def _pad_nan(a: np.ndarray, axis: int, n: int) -> np.ndarray:
    """``a`` with ``n`` NaN layers appended along ``axis``."""
    width = [(0, 0)] * a.ndim
    width[axis] = (0, n)
    return np.pad(np.asarray(a, np.float64), width, constant_values=np.nan)


def _sum_planes(scale: float, a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    out = None
    for x in (a, b):
        if x is not None:
            out = scale * np.abs(x) if out is None else out + scale * np.abs(x)
    return out


def _thermal_field(ms: Microstructure, lab: np.ndarray, props: HeatProperties) -> np.ndarray:
    lut = _role_lut(
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
    return lut[lab]


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
    flat = cl.reshape(-1)
    nb = n + 1
    heat_c = np.bincount(flat, weights=heat.reshape(-1), minlength=nb)
    vox_c = np.bincount(flat, minlength=nb)
    jsum = np.bincount(flat, weights=jmag.reshape(-1), minlength=nb)
    jpeak = np.zeros(nb)
    np.maximum.at(jpeak, flat, jmag.reshape(-1))
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
    idx = np.indices(cl.shape).reshape(3, -1)
    cen = [np.bincount(flat, weights=idx[a], minlength=nb) for a in range(3)]
    names = {p.label: p.name for p in ms.phases.values()}
    order = np.argsort(-jpeak[1:], kind="stable")[: max(0, int(n_necks))] + 1
    out = []
    for c in order:
        members = lab.reshape(-1)[flat == c]
        phase_lab = int(np.bincount(members).argmax())
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
