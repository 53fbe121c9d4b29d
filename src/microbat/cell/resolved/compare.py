r"""The resolved half cell against the homogenised P2D (DFN) half cell, same electrode.

:func:`compare_with_p2d` discharges one electrode image twice per C-rate: once with
the microstructure-resolved model (:func:`~microbat.cell.resolved.simulate_discharge`,
the "truth") and once with PyBaMM's Doyle–Fuller–Newman model of the *same* half
cell (``options={"working electrode": "positive"}``: porous positive electrode,
separator, lithium-metal counter electrode with Butler–Volmer kinetics), fed with
the homogenised properties measured on the image (:func:`homogenise`):

=========================  ===========================================================
P2D input                  measured on the image as
=========================  ===========================================================
thickness, area            image extent along / across the thickness axis
porosity ε                 pore fraction + ε_cbd × carbon-binder fraction (electrolyte
                           volume, as stored by the resolved model)
active fraction            active voxels connected to the collector (the lithium
                           inventory the resolved model simulates)
transport ε^b = ε/τ        ``"micro"``: thickness-axis component of the tortuosity
                           tensor of the pore phase, carbon-binder at ε_cbd^b_cbd
                           (:func:`microbat.transport.tortuosity_tensor`);
                           ``"bruggeman"``: the set's exponent on ε
solid conductivity         ``"micro"``: steady conduction solve over active (σ_am) and
                           carbon-binder (σ_cbd) voxels (:func:`microbat.transport.
                           conductivity`); ``"bruggeman"``: σ_am (1 − ε)^1.5
reaction area a            the resolved model's own ``reaction_area="metrics"`` area
                           (estimator of :func:`microbat.imaging.metrics.
                           specific_surface_area`, carbon-binder faces × ε_cbd),
                           imposed through the exchange-current scale of
                           :func:`microbat.cell.apply_micro`
particle radius R          given (e.g. :func:`lattice_equivalent_radius`), else half
                           the d50 of :func:`microbat.imaging.metrics.size_distribution`
=========================  ===========================================================

Everything else comes from the same :class:`~microbat.cell.CellParameters` (OCP,
exchange current, D_s, κ(c_e), D_e(c_e), t₊, separator, temperature, initial
concentrations), and the lithium-metal exchange current is the resolved model's
``li_exchange_current_A_per_m2``. Both models get the same current in amperes (the
resolved model's C-rate definition) and the same cut-off voltage.

The default cut-off, 3.5 V, lies on the sloping lithiated end of the Chen2020 NMC
OCP (U(θ = 1) = 3.487 V): with the full-cell cut-off of 2.5 V a half cell ends only
when the surface saturates and j₀ ∝ (c_max − c_s)^½ vanishes, a singular event that
the two discretisations resolve differently; 3.5 V ends both on the voltage.

Voltage differences are taken on the common part of the two curves, from the first
resolved step (the resolved curve starts with the rest voltage at t = 0; neither
model has a double layer, so the loaded voltage starts at t = 0⁺) to the earlier
end, on 400 equally spaced times; at constant current time and capacity are
proportional.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from microbat.cell.resolved._model import ResolvedOptions
from microbat.cell.resolved._params import FARADAY
from microbat.core.errors import ConvergenceError, InvalidInputError, PhaseError
from microbat.core.microstructure import Microstructure
from microbat.core.results import Provenance, Result, to_jsonable

__all__ = [
    "DEFAULT_CUTOFF_V",
    "HomogenisedElectrode",
    "P2DComparisonResult",
    "compare_with_p2d",
    "curve_difference",
    "homogenise",
    "lattice_equivalent_radius",
    "p2d_half_cell",
    "p2d_parameters",
    "sphere_lattice",
]

#: Half-cell cut-off voltage of the comparison (V vs Li/Li⁺), see the module notes.
DEFAULT_CUTOFF_V = 3.5
_N_COMMON = 400
_TRANSPORTS = ("micro", "bruggeman")
_CLASSIC_SOLID_BRUGGEMAN = 1.5
_DEFAULT_MESH = {"x_s": 10, "x_p": 30, "r_p": 30}


# --------------------------------------------------------------------------- geometry
def sphere_lattice(
    shape: Sequence[int] = (24, 12, 12),
    *,
    period: int = 4,
    radius: float = 1.75,
    voxel_size: float = 0.5e-6,
) -> Microstructure:
    """A simple-cubic array of identical voxelised spheres (active) in pore.

    Every ``period``³ cell holds one sphere centred in the cell: the voxels whose
    centres lie within ``radius`` voxels of the cell centre. With
    ``√((p/2 − ½)² + ½) ≤ radius < √(2 (p/2 − ½)² + ¼)`` (p the period) neighbouring
    spheres share a face of voxels, so the solid connects the current collector
    (index 0 of axis 0, the thickness axis), and the pore keeps open channels along
    the lattice edges. The defaults
    (period 4, radius 1.75) give 32-voxel particles, ε = ε_act = 0.5 and a pore
    tortuosity factor of 1.8 along every axis.

    Parameters
    ----------
    shape : sequence of 3 int, default (24, 12, 12)
        Image shape; axis 0 is the thickness. Multiples of ``period`` keep every cell
        whole (the insulating sides are then mirror planes of the lattice).
    period : int, default 4
        Lattice period in voxels.
    radius : float, default 1.75
        Sphere radius in voxels.
    voxel_size : float, default 0.5e-6
        Voxel edge (m).

    Returns
    -------
    Microstructure
        Phases ``pore=0, active=1``; thickness axis 0.

    Raises
    ------
    InvalidInputError
        Non-3D shape, a period below 2 or a non-positive radius.
    """
    shp = tuple(int(n) for n in shape)
    if len(shp) != 3 or min(shp) < 1:
        raise InvalidInputError(f"shape must be three positive integers, got {shape!r}")
    if int(period) < 2:
        raise InvalidInputError(f"period must be at least 2 voxels, got {period!r}")
    if not (radius > 0 and math.isfinite(radius)):
        raise InvalidInputError(f"radius must be a positive number of voxels, got {radius!r}")
    off = [(np.arange(n) % period) - (period - 1) / 2.0 for n in shp]
    d2 = off[0][:, None, None] ** 2 + off[1][None, :, None] ** 2 + off[2][None, None, :] ** 2
    labels = (d2 <= radius * radius).astype(np.uint8)
    return Microstructure(labels, voxel_size=voxel_size, phases="pore=0,active=1")


def lattice_equivalent_radius(
    period: int = 4, radius: float = 1.75, voxel_size: float = 0.5e-6
) -> float:
    """Radius of the sphere with the volume of one :func:`sphere_lattice` particle (m).

    Parameters
    ----------
    period, radius, voxel_size
        As for :func:`sphere_lattice`.

    Returns
    -------
    float
        ``(3 n_voxels / 4π)^(1/3) × voxel_size``.
    """
    cell = sphere_lattice((period, period, period), period=period, radius=radius)
    n = int(np.count_nonzero(cell.labels))
    return float((3.0 * n / (4.0 * math.pi)) ** (1.0 / 3.0) * voxel_size)


# --------------------------------------------------------------------------- homogenise
@dataclass(frozen=True)
class HomogenisedElectrode:
    """Homogenised properties of an electrode image, as the P2D model takes them.

    Attributes
    ----------
    thickness_m, area_m2 : float
        Image extent along the thickness axis and cross-section.
    porosity : float
        Electrolyte volume fraction: pore + ``cbd_porosity`` × carbon-binder.
    pore_fraction, cbd_fraction : float
        Volume fractions of the pore and carbon-binder phases.
    active_fraction : float
        Active voxels connected to the collector per image voxel.
    active_fraction_image : float
        All active voxels per image voxel.
    specific_surface_area_per_m : float
        Reaction area per electrode volume, exactly as the resolved model uses it.
    particle_radius_m : float
        Radius of the P2D's spherical particles.
    particle_radius_source : str
        ``"given"`` or ``"size_distribution d50/2"``.
    transport_efficiency_micro : float
        ``D_eff / D0`` along the thickness axis from the tortuosity tensor.
    transport_efficiency_bruggeman : float
        ``ε^b`` with the parameter set's Bruggeman exponent.
    tau_electrolyte_micro, tau_electrolyte_bruggeman : float
        ``ε / (D_eff / D0)`` for each.
    solid_conductivity_micro_S_per_m, solid_conductivity_bruggeman_S_per_m : float
        Effective electronic conductivity along the thickness axis.
    """

    thickness_m: float
    area_m2: float
    porosity: float
    pore_fraction: float
    cbd_fraction: float
    active_fraction: float
    active_fraction_image: float
    specific_surface_area_per_m: float
    particle_radius_m: float
    particle_radius_source: str
    transport_efficiency_micro: float
    transport_efficiency_bruggeman: float
    solid_conductivity_micro_S_per_m: float
    solid_conductivity_bruggeman_S_per_m: float

    @property
    def tau_electrolyte_micro(self) -> float:
        """Measured tortuosity factor ``ε / (D_eff / D0)``."""
        return self.porosity / self.transport_efficiency_micro

    @property
    def tau_electrolyte_bruggeman(self) -> float:
        """Tortuosity factor implied by the Bruggeman relation."""
        return self.porosity / self.transport_efficiency_bruggeman

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (with the two tortuosity factors)."""
        out = asdict(self)
        out["tau_electrolyte_micro"] = self.tau_electrolyte_micro
        out["tau_electrolyte_bruggeman"] = self.tau_electrolyte_bruggeman
        return to_jsonable(out)


def _cell_parameters(params: Any) -> Any:
    from microbat.cell.parameters import CellParameters, load_parameters

    if params is None:
        params = "chen2020"
    if isinstance(params, str):
        params = load_parameters(params)
    if not isinstance(params, CellParameters):
        raise InvalidInputError(
            "the P2D comparison needs the shared CellParameters (or a set name such as "
            f"'chen2020'), got {type(params).__name__}"
        )
    return params


def homogenise(
    ms: Microstructure,
    params: Any = None,
    *,
    options: ResolvedOptions | None = None,
    particle_radius_m: float | None = None,
) -> HomogenisedElectrode:
    """Measure the P2D inputs of an electrode image (see the module table).

    Parameters
    ----------
    ms : Microstructure
        3D electrode image (roles ``electrolyte``, ``active``, optional
        ``carbon_binder``); index 0 of the thickness axis touches the collector.
    params : CellParameters or str, optional
        Shared parameter set (default ``"chen2020"``): the active-material
        conductivity and the Bruggeman exponent of the ``"bruggeman"`` variant.
    options : ResolvedOptions, optional
        The resolved model's options (carbon-binder porosity, Bruggeman exponent and
        conductivity; reaction-area mode).
    particle_radius_m : float, optional
        Radius of the P2D particles (default: half the d50 of the active phase's
        local-thickness distribution, the estimator of
        :meth:`microbat.cell.MicroProperties.from_microstructure`).

    Returns
    -------
    HomogenisedElectrode

    Raises
    ------
    PhaseError
        No active phase, or a pore network that does not cross the electrode.
    """
    from microbat.cell.resolved._geometry import build_domain
    from microbat.imaging.metrics import size_distribution, specific_surface_area
    from microbat.transport.conduction import conductivity
    from microbat.transport.tensor import tortuosity_tensor

    p = _cell_parameters(params)
    opt = options or ResolvedOptions()
    if not isinstance(ms, Microstructure) or ms.ndim != 3:
        raise InvalidInputError("homogenise needs a 3D Microstructure")
    active = [ph.name for ph in ms.phases_with_role("active")]
    pores = [ph.name for ph in ms.phases_with_role("electrolyte")]
    cbds = [ph.name for ph in ms.phases_with_role("carbon_binder")]
    if not active or not pores:
        raise PhaseError("the comparison needs an active and an electrolyte (pore) phase")
    t = ms.thickness_axis
    n_total = ms.n_voxels
    pore_f = ms.fraction(pores)
    cbd_f = ms.fraction(cbds) if cbds else 0.0
    eps = pore_f + opt.cbd_porosity * cbd_f
    # the resolved model's unknowns and reaction area (the same code path)
    dom = build_domain(
        ms,
        separator_thickness=p.separator.thickness_m,
        separator_layers=opt.separator_layers,
        cbd_porosity=opt.cbd_porosity,
    )
    area = float(dom.face_area.sum())
    if opt.reaction_area == "metrics":
        measured = specific_surface_area(ms, active, pores + cbds) * ms.voxel_volume * n_total
        if measured > 0 and dom.face_area_geometric > 0:
            area *= measured / dom.face_area_geometric
    volume = ms.voxel_volume * n_total
    rel = {c: opt.cbd_porosity**opt.cbd_bruggeman for c in cbds}
    tens = tortuosity_tensor(ms, phase=pores, relative_diffusivity=rel or None)
    eff = float(tens.deff_over_d0[t, t])
    if not (eff > 0):
        raise PhaseError(
            "the pore phase does not cross the electrode along the thickness axis, so the "
            "homogenised model has no ionic path"
        )
    el = p.positive
    sigma_am = opt.solid_conductivity_S_per_m or el.conductivity_S_per_m
    cond = {a: sigma_am for a in active}
    cond.update({c: opt.cbd_conductivity_S_per_m for c in cbds})
    sig = conductivity(ms, conductivities=cond, axis=t, keep_field=False).sigma_eff[t]
    if particle_radius_m is None:
        radius = float(size_distribution(ms, active).d50) / 2.0
        source = "size_distribution d50/2"
    else:
        radius, source = float(particle_radius_m), "given"
    return HomogenisedElectrode(
        thickness_m=float(ms.thickness),
        area_m2=volume / float(ms.thickness),
        porosity=float(eps),
        pore_fraction=float(pore_f),
        cbd_fraction=float(cbd_f),
        active_fraction=dom.idx_a.size / n_total,
        active_fraction_image=float(ms.fraction(active)),
        specific_surface_area_per_m=area / volume,
        particle_radius_m=radius,
        particle_radius_source=source,
        transport_efficiency_micro=eff,
        transport_efficiency_bruggeman=float(eps**el.bruggeman_electrolyte),
        solid_conductivity_micro_S_per_m=float(sig),
        solid_conductivity_bruggeman_S_per_m=float(
            sigma_am * (1.0 - eps) ** _CLASSIC_SOLID_BRUGGEMAN
        ),
    )


def p2d_parameters(
    params: Any, h: HomogenisedElectrode, transport: Literal["micro", "bruggeman"] = "micro"
) -> Any:
    """The P2D parameter set of the homogenised electrode (positive electrode replaced).

    Geometry and electrolyte transport go through the bridge's
    :func:`~microbat.cell.apply_micro` (the measured area is imposed through the
    exchange-current scale with the given radius); the solid conductivity is then set
    to the effective value of the chosen variant (Bruggeman exponent 0).

    Parameters
    ----------
    params : CellParameters or str
    h : HomogenisedElectrode
    transport : {"micro", "bruggeman"}

    Returns
    -------
    CellParameters
    """
    from microbat.cell.micro import MicroProperties, apply_micro
    from microbat.cell.parameters import bruggeman_from_tau

    if transport not in _TRANSPORTS:
        raise InvalidInputError(f"transport must be 'micro' or 'bruggeman', got {transport!r}")
    p = _cell_parameters(params)
    tau = h.tau_electrolyte_micro if transport == "micro" else h.tau_electrolyte_bruggeman
    micro = MicroProperties(
        electrode="positive",
        porosity=h.porosity,
        tau_electrolyte=max(tau, 1.0),
        specific_surface_area_per_m=h.specific_surface_area_per_m,
        particle_radius_m=h.particle_radius_m,
        active_fraction=h.active_fraction,
        thickness_m=h.thickness_m,
        source={"function": "microbat.cell.resolved.compare.homogenise"},
    )
    out = apply_micro(p, micro, transport="micro")
    if transport == "bruggeman":  # the set's exponent, exactly (τ may be < 1 above)
        out = out.with_values(
            {"positive.bruggeman_electrolyte": p.positive.bruggeman_electrolyte},
            source="bruggeman",
        )
    elif tau < 1.0:
        out = out.with_values(
            {"positive.bruggeman_electrolyte": bruggeman_from_tau(h.porosity, 1.0)},
            source="microstructure",
        )
    sigma = (
        h.solid_conductivity_micro_S_per_m
        if transport == "micro"
        else h.solid_conductivity_bruggeman_S_per_m
    )
    return out.with_values(
        {"positive.conductivity_S_per_m": sigma, "positive.bruggeman_electrode": 0.0},
        source="microstructure" if transport == "micro" else "bruggeman",
        note="effective solid conductivity",
    )


# --------------------------------------------------------------------------- P2D run
class _HalfCellP2D:
    """A PyBaMM half-cell model built once; the applied current is an input."""

    def __init__(
        self,
        params: Any,
        *,
        area_m2: float,
        cutoff_V: float,
        li_exchange_current: float,
        model: str,
        mesh_points: Mapping[str, int] | None,
    ) -> None:
        from microbat.cell._pybamm import import_pybamm

        pybamm = import_pybamm()
        t0 = time.perf_counter()
        name = {"dfn": "DFN", "p2d": "DFN", "spme": "SPMe"}.get(str(model).lower())
        if name is None:
            raise InvalidInputError(f"unknown model {model!r}; use 'DFN' (P2D) or 'SPMe'")
        self.model_name = name
        self.params = params
        el = params.positive
        pv = params.to_pybamm()
        u0 = _ocp_at(params, float(pv["Initial concentration in positive electrode [mol.m-3]"]))
        side = math.sqrt(area_m2)
        pv.update(
            {
                "Electrode height [m]": side,
                "Electrode width [m]": side,
                "Number of electrodes connected in parallel to make a cell": 1.0,
                "Current function [A]": "[input]",
                "Lower voltage cut-off [V]": cutoff_V,
                "Upper voltage cut-off [V]": max(params.cell.upper_cutoff_V, u0 + 0.2),
                "Exchange-current density for lithium metal electrode [A.m-2]": (
                    li_exchange_current
                ),
                "Lithium metal partial molar volume [m3.mol-1]": 1.3e-5,
                # the resolved model has no ohmic drop in the lithium foil
                "Negative electrode conductivity [S.m-1]": 1e8,
            },
            check_already_exists=False,
        )
        self.capacity_Ah = (
            (el.active_fraction * el.thickness_m * area_m2 * el.max_concentration_mol_per_m3)
            * FARADAY
            / 3600.0
        )
        pv["Nominal cell capacity [A.h]"] = self.capacity_Ah
        pb_model = getattr(pybamm.lithium_ion, name)({"working electrode": "positive"})
        var_pts = dict(pb_model.default_var_pts)
        var_pts.update({k: int(v) for k, v in {**_DEFAULT_MESH, **(mesh_points or {})}.items()})
        self.solver = pybamm.IDAKLUSolver(
            rtol=1e-7, atol=1e-9, on_failure="ignore", options={"silence_sundials_errors": True}
        )
        self.sim = pybamm.Simulation(
            pb_model, parameter_values=pv, solver=self.solver, var_pts=var_pts
        )
        self.sim.build(inputs={"Current function [A]": 1e-3 * self.capacity_Ah})
        self.built = self.sim.built_model
        self.build_time_s = time.perf_counter() - t0

    def run(self, current_A: float, c_rate: float) -> Any:
        from microbat.cell._pybamm import import_pybamm
        from microbat.cell.bridge import DischargeCurve

        pybamm = import_pybamm()
        t0 = time.perf_counter()
        t_end = 1.1 * self.capacity_Ah * 3600.0 / current_A
        try:
            sol = self.solver.solve(
                self.built, [0.0, t_end], inputs={"Current function [A]": current_A}
            )
        except pybamm.SolverError as exc:
            raise ConvergenceError(
                f"the P2D half-cell discharge at {c_rate:g}C failed: {str(exc).splitlines()[0]}"
            ) from None
        tt = np.asarray(sol.t, float)
        v = np.asarray(sol["Voltage [V]"].entries, float)
        from microbat.cell.bridge import termination_status

        term = str(sol.termination)
        status, complete = termination_status(term, v)
        return DischargeCurve(
            c_rate=float(c_rate),
            current_A=float(current_A),
            time_s=tt,
            voltage_V=v,
            capacity_Ah=current_A * tt / 3600.0,
            status=status,
            complete=complete,
            termination=term,
            solve_time_s=time.perf_counter() - t0,
            provenance=Provenance(
                "microbat.cell.resolved.compare.p2d_half_cell",
                parameters={"model": self.model_name, "current_A": float(current_A)},
                wall_time_s=time.perf_counter() - t0,
            ),
        )


def _ocp_at(params: Any, c_s: float) -> float:
    from microbat.cell.resolved._params import ResolvedParameters

    rp = ResolvedParameters.from_cell_parameters(params, "positive")
    return float(rp.ocp(np.array([c_s / rp.c_max]))[0])


def p2d_half_cell(
    params: Any,
    *,
    area_m2: float,
    currents_A: Sequence[float],
    cutoff_V: float = DEFAULT_CUTOFF_V,
    li_exchange_current_A_per_m2: float = 10.0,
    model: str = "DFN",
    mesh_points: Mapping[str, int] | None = None,
) -> list[Any]:
    """Discharge PyBaMM's half cell (positive electrode vs lithium metal).

    Parameters
    ----------
    params : CellParameters
        The cell parameters (positive electrode, separator, electrolyte, cell).
    area_m2 : float
        Electrode area (m²); currents are in amperes through this area.
    currents_A : sequence of float
        Constant discharge currents.
    cutoff_V : float, default 3.5
        Lower cut-off voltage.
    li_exchange_current_A_per_m2 : float, default 10
        Constant exchange-current density of the lithium-metal electrode.
    model : {"DFN", "P2D", "SPMe"}
    mesh_points : mapping, optional
        PyBaMM ``var_pts`` overrides (default ``x_s`` 10, ``x_p`` 30, ``r_p`` 30).

    Returns
    -------
    list of DischargeCurve
        One per current (``c_rate`` relative to the positive electrode's theoretical
        capacity).
    """
    p = _cell_parameters(params)
    sim = _HalfCellP2D(
        p,
        area_m2=area_m2,
        cutoff_V=cutoff_V,
        li_exchange_current=li_exchange_current_A_per_m2,
        model=model,
        mesh_points=mesh_points,
    )
    return [sim.run(float(i), float(i) / sim.capacity_Ah) for i in currents_A]


# --------------------------------------------------------------------------- compare
@dataclass(frozen=True)
class P2DComparisonResult(Result):
    """Resolved vs homogenised P2D half cell on one electrode, one row per rate/transport.

    Attributes
    ----------
    rows : tuple of dict
        One per (C-rate, transport): ``c_rate``, ``transport``, ``current_A``,
        ``capacity_resolved_Ah``, ``capacity_p2d_Ah`` (and per electrode area,
        ``areal_capacity_*_mAh_per_cm2``), ``capacity_error_percent``
        (``100 (P2D − resolved) / resolved``), ``energy_resolved_Wh``,
        ``energy_p2d_Wh``, ``energy_error_percent``, ``mean_voltage_resolved_V``,
        ``mean_voltage_p2d_V``, ``voltage_rms_V``, ``voltage_max_V``,
        ``voltage_mean_V`` (signed mean of P2D − resolved), ``resolved_status``,
        ``p2d_status``, ``resolved_wall_s``, ``p2d_wall_s``.
    homogenised : HomogenisedElectrode
        The P2D inputs measured on the image.
    cutoff_V : float
    model : str
    resolved : tuple of ResolvedDischargeResult
        The resolved runs, one per C-rate.
    p2d : dict of str to tuple of DischargeCurve
        The P2D curves per transport variant, one per C-rate.
    provenance : Provenance
    """

    rows: tuple[dict[str, Any], ...]
    homogenised: HomogenisedElectrode
    cutoff_V: float
    model: str
    resolved: tuple[Any, ...] = field(repr=False)
    p2d: dict[str, tuple[Any, ...]] = field(repr=False)
    provenance: Provenance = field(default_factory=lambda: Provenance("compare_with_p2d"))

    _COLUMNS: ClassVar[tuple[tuple[str, str, float, str], ...]] = (
        ("C", "c_rate", 1.0, "{:g}"),
        ("transport", "transport", 1.0, "{}"),
        ("Q res (mAh/cm²)", "areal_capacity_resolved_mAh_per_cm2", 1.0, "{:.4f}"),
        ("Q P2D (mAh/cm²)", "areal_capacity_p2d_mAh_per_cm2", 1.0, "{:.4f}"),
        ("ΔQ (%)", "capacity_error_percent", 1.0, "{:+.2f}"),
        ("V̄ res (V)", "mean_voltage_resolved_V", 1.0, "{:.4f}"),
        ("V̄ P2D (V)", "mean_voltage_p2d_V", 1.0, "{:.4f}"),
        ("ΔE (%)", "energy_error_percent", 1.0, "{:+.2f}"),
        ("RMS ΔV (mV)", "voltage_rms_V", 1e3, "{:.2f}"),
        ("max |ΔV| (mV)", "voltage_max_V", 1e3, "{:.1f}"),
        ("mean ΔV (mV)", "voltage_mean_V", 1e3, "{:+.2f}"),
    )

    def table(self) -> list[dict[str, Any]]:
        """The comparison table, one dict per (C-rate, transport)."""
        return [dict(r) for r in self.rows]

    def row(self, c_rate: float, transport: str = "micro") -> dict[str, Any]:
        """The row of one C-rate and transport variant."""
        for r in self.rows:
            if math.isclose(r["c_rate"], c_rate) and r["transport"] == transport:
                return dict(r)
        raise InvalidInputError(f"no row for {c_rate:g}C with transport {transport!r}")

    def markdown(self) -> str:
        """The table as Markdown."""
        head = "| " + " | ".join(c[0] for c in self._COLUMNS) + " |"
        sep = "|" + "---|" * len(self._COLUMNS)
        lines = [head, sep]
        for r in self.rows:
            cells = []
            for _, key, scale, fmt in self._COLUMNS:
                v = r[key]
                if isinstance(v, float):
                    v = v * scale
                    cells.append(fmt.format(v) if math.isfinite(v) else "–")
                else:
                    cells.append(fmt.format(v))
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (curves left out)."""
        return to_jsonable(
            {
                "rows": [dict(r) for r in self.rows],
                "homogenised": self.homogenised.to_dict(),
                "cutoff_V": self.cutoff_V,
                "model": self.model,
                "provenance": self.provenance.to_dict(),
            }
        )


def curve_difference(
    t_a: np.ndarray, v_a: np.ndarray, t_b: np.ndarray, v_b: np.ndarray, t_start: float = 0.0
) -> tuple[float, float, float]:
    """RMS, largest and mean of ``v_b − v_a`` on the common times from ``t_start``.

    Parameters
    ----------
    t_a, v_a, t_b, v_b : ndarray
        Two discharge curves (time in s, voltage in V).
    t_start : float, default 0
        First time of the comparison.

    Returns
    -------
    tuple of float
        ``(rms, max_abs, mean)`` in V (NaN when the curves do not overlap).
    """
    t_end = min(float(t_a[-1]), float(t_b[-1]))
    if not t_end > t_start:
        return math.nan, math.nan, math.nan
    tt = np.linspace(t_start, t_end, _N_COMMON)
    d = np.interp(tt, t_b, v_b) - np.interp(tt, t_a, v_a)
    return float(np.sqrt(np.mean(d * d))), float(np.max(np.abs(d))), float(np.mean(d))


def compare_with_p2d(
    ms: Microstructure,
    params: Any = None,
    *,
    c_rates: float | Sequence[float] = (0.1, 1.0),
    transports: Sequence[str] = ("micro", "bruggeman"),
    options: ResolvedOptions | None = None,
    cutoff_V: float | None = DEFAULT_CUTOFF_V,
    particle_radius_m: float | None = None,
    model: str = "DFN",
    mesh_points: Mapping[str, int] | None = None,
) -> P2DComparisonResult:
    """Discharge an electrode with the resolved model and with the homogenised P2D.

    Parameters
    ----------
    ms : Microstructure
        3D electrode image (see :func:`~microbat.cell.resolved.simulate_discharge`).
    params : CellParameters or str, optional
        The shared parameter set (default ``"chen2020"``; its positive electrode).
    c_rates : float or sequence of float, default (0.1, 1)
        C-rates of the resolved model's definition (1C delivers its OCP-limited
        capacity in one hour); the P2D gets the same currents in amperes.
    transports : sequence of {"micro", "bruggeman"}
        Effective-transport variants of the P2D (see :func:`homogenise`).
    options : ResolvedOptions, optional
        Options of the resolved runs; its ``cutoff_V`` is replaced by ``cutoff_V``.
        Default: the defaults with the finer steps of a validation run
        (``dv_target_V`` 10 mV, at most 1/30 of the nominal time: the curves are
        compared point by point, so the resolved curve's sampling counts).
    cutoff_V : float or None, default 3.5
        Lower cut-off of both models (None: the resolved options' or the set's).
    particle_radius_m : float, optional
        Radius of the P2D particles (default: the size-distribution estimate).
    model : {"DFN", "P2D", "SPMe"}
        PyBaMM half-cell model.
    mesh_points : mapping, optional
        PyBaMM ``var_pts`` overrides.

    Returns
    -------
    P2DComparisonResult
        The table (:meth:`~P2DComparisonResult.markdown`), the measured inputs and the
        curves of both models.

    Raises
    ------
    InvalidInputError
        Unknown transport names or bad C-rates.
    ConvergenceError
        The P2D solver failed without a partial solution.

    Examples
    --------
    >>> ms = sphere_lattice()
    >>> r = compare_with_p2d(ms, c_rates=(0.1,), transports=("micro",),
    ...                      particle_radius_m=lattice_equivalent_radius())  # doctest: +SKIP
    >>> abs(r.row(0.1)["capacity_error_percent"]) < 1  # doctest: +SKIP
    True
    """
    import dataclasses

    from microbat.cell.bridge import check_c_rates
    from microbat.cell.resolved.discharge import simulate_discharge

    t0 = time.perf_counter()
    p = _cell_parameters(params)
    rates = check_c_rates(c_rates)
    bad = [x for x in transports if x not in _TRANSPORTS]
    if bad or not transports:
        raise InvalidInputError(
            f"transports must be a non-empty selection of {_TRANSPORTS}, got {tuple(transports)}"
        )
    opt = options or ResolvedOptions(dv_target_V=0.01, max_step_fraction=1.0 / 30.0)
    if cutoff_V is not None:
        opt = dataclasses.replace(opt, cutoff_V=float(cutoff_V))
    cut = opt.cutoff_V if opt.cutoff_V is not None else p.cell.lower_cutoff_V
    h = homogenise(ms, p, options=opt, particle_radius_m=particle_radius_m)

    resolved = []
    for c in rates:
        t1 = time.perf_counter()
        r = simulate_discharge(ms, p, c_rate=c, options=opt, snapshot_times=())
        resolved.append((r, time.perf_counter() - t1))
    currents = [r.current_A for r, _ in resolved]

    curves: dict[str, tuple[Any, ...]] = {}
    rows: list[dict[str, Any]] = []
    for tr in transports:
        pp = p2d_parameters(p, h, tr)  # type: ignore[arg-type]
        curves[tr] = tuple(
            p2d_half_cell(
                pp,
                area_m2=h.area_m2,
                currents_A=currents,
                cutoff_V=cut,
                li_exchange_current_A_per_m2=opt.li_exchange_current_A_per_m2,
                model=model,
                mesh_points=mesh_points,
            )
        )
    for i, c in enumerate(rates):
        r, wall = resolved[i]
        t_first = float(r.time_s[1]) if r.time_s.size > 1 else 0.0
        for tr in transports:
            cv = curves[tr][i]
            q_p = float(cv.capacity_Ah[-1])
            e_p = float(cv.energy_Wh) if cv.complete else math.nan
            rms, vmax, vmean = curve_difference(
                r.time_s, r.voltage_V, cv.time_s, cv.voltage_V, t_first
            )
            rows.append(
                {
                    "c_rate": float(c),
                    "transport": tr,
                    "current_A": float(r.current_A),
                    "capacity_resolved_Ah": float(r.capacity_Ah),
                    "capacity_p2d_Ah": q_p,
                    "areal_capacity_resolved_mAh_per_cm2": 0.1 * r.capacity_Ah / h.area_m2,
                    "areal_capacity_p2d_mAh_per_cm2": 0.1 * q_p / h.area_m2,
                    "capacity_error_percent": 100.0 * (q_p - r.capacity_Ah) / r.capacity_Ah,
                    "energy_resolved_Wh": float(r.energy_Wh),
                    "energy_p2d_Wh": e_p,
                    "energy_error_percent": 100.0 * (e_p - r.energy_Wh) / r.energy_Wh,
                    "mean_voltage_resolved_V": float(r.energy_Wh / r.capacity_Ah),
                    "mean_voltage_p2d_V": e_p / q_p if q_p > 0 else math.nan,
                    "voltage_rms_V": rms,
                    "voltage_max_V": vmax,
                    "voltage_mean_V": vmean,
                    "resolved_status": r.status,
                    "resolved_complete": bool(r.complete),
                    "p2d_status": cv.status,
                    "resolved_wall_s": float(wall),
                    "p2d_wall_s": float(cv.solve_time_s),
                }
            )
    return P2DComparisonResult(
        rows=tuple(rows),
        homogenised=h,
        cutoff_V=float(cut),
        model=model,
        resolved=tuple(r for r, _ in resolved),
        p2d=curves,
        provenance=Provenance(
            "microbat.cell.resolved.compare_with_p2d",
            parameters={
                "c_rates": list(rates),
                "transports": list(transports),
                "cutoff_V": float(cut),
                "model": model,
                "mesh_points": dict(mesh_points or {}),
                "options": to_jsonable(asdict(opt)),
                "params": p.name,
            },
            wall_time_s=time.perf_counter() - t0,
            inputs={"shape": list(ms.shape), "voxel_size": list(ms.voxel_size)},
        ),
    )
