r"""Galvanostatic discharge of a microstructure-resolved half cell.

A positive electrode imaged voxel by voxel (pore, carbon-binder, active material)
is discharged against a lithium-metal counter electrode through a homogeneous
separator slab. Every voxel keeps its own unknowns; nothing is homogenised inside
the electrode. The equations, boundary conditions and the dissipation breakdown are
written out in ``docs/resolved.md``; the validation record is
``docs/validation/resolved.md``.

Equations (per unit volume; discretised by finite volumes on the voxel grid)
----------------------------------------------------------------------------
Electrolyte in pore (ε = 1, τ = 1), carbon-binder (ε_cbd, ε_cbd^b) and separator
(ε_sep, ε_sep^b), dilute-in-transport, concentrated-solution potential:

.. math::

    ε \partial_t c_e = \nabla\cdot(ε^b D_e(c_e) \nabla c_e), \qquad
    \nabla\cdot i_e = 0, \quad
    i_e = -ε^b κ(c_e) \left(\nabla φ_e - \frac{2RT}{F}(1-t_+) \chi \nabla \ln c_e\right)

Solid: :math:`\nabla\cdot(σ\nabla φ_s) = 0` in active and carbon-binder voxels,
:math:`\partial_t c_s = \nabla\cdot(D_s \nabla c_s)` in active voxels. On every
voxel face between active material and electrolyte (pore, or carbon-binder with
area × ε_cbd) a Butler–Volmer current density (anodic positive)

.. math::

    i = j_0(c_e, c_s) \left[e^{α F η / RT} - e^{-(1-α) F η / RT}\right],
    \qquad η = φ_s - φ_e - U(c_s / c_{s,max})

leaves the solid (lithium flux ``i/F`` out of the active voxel, salt source
``(1 − t₊) i / F`` and ionic current ``i`` into the electrolyte voxel). The
current collector (index 0 of the thickness axis) is an equipotential at the
terminal voltage ``V`` joined to the first solid layer through half a voxel; the
galvanostatic condition fixes its total current. The lithium-metal counter
electrode (potential 0, the reference) closes the separator slab with its own
Butler–Volmer kinetics (constant exchange current).

Numerics
--------
Backward Euler in time with κ, D_e (and a concentration-dependent D_s) frozen at
the start of each step; Newton's method on the coupled nonlinear system (Butler–
Volmer, OCP, ``ln c_e``) with the exact sparse Jacobian; sparse LU (SuperLU) or
ILU-GMRES for each update; step size adapted to a voltage change per step. Every
flux term is assembled from the finite-volume core's face conductances, so
lithium and charge are conserved to round-off at a converged step.

References
----------
.. [1] J. Newman and K. E. Thomas-Alyea, *Electrochemical Systems*, 3rd ed.,
   Wiley (2004), ch. 12 and 22.
.. [2] A. Latz and J. Zausch, "Thermodynamic consistent transport theory of Li-ion
   batteries", J. Power Sources 196, 3296 (2011).
.. [3] C.-H. Chen et al., J. Electrochem. Soc. 167, 080534 (2020) (default parameters).
"""

from __future__ import annotations

import csv
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from microbat.cell.resolved._geometry import build_domain
from microbat.cell.resolved._model import HalfCell, ResolvedOptions, run_discharge
from microbat.cell.resolved._params import FARADAY, ResolvedParameters
from microbat.core.errors import InvalidInputError
from microbat.core.microstructure import Microstructure
from microbat.core.results import Provenance, Result, to_jsonable

__all__ = [
    "BREAKDOWN_COMPONENTS",
    "ResolvedDischargeResult",
    "ResolvedOptions",
    "ResolvedParameters",
    "Snapshot",
    "simulate_discharge",
    "theoretical_capacity_Ah",
]

#: Loss components (V, positive on discharge), the same keys as the P2D breakdown.
BREAKDOWN_COMPONENTS = (
    "ohmic_electrolyte",
    "concentration_electrolyte",
    "ohmic_solid",
    "reaction",
    "solid_diffusion",
)


@dataclass(frozen=True)
class Snapshot:
    """Fields at one time, on the image grid (NaN outside each field's phase).

    Attributes
    ----------
    time_s : float
    fields : dict of str to ndarray (float32)
        ``c_e`` (mol/m³), ``phi_e`` (V), ``phi_s`` (V), ``c_s`` (mol/m³),
        ``stoichiometry`` (-), ``reaction_current`` (A/m³ of voxel, cathodic < 0).
    """

    time_s: float
    fields: dict[str, np.ndarray]


@dataclass(frozen=True)
class ResolvedDischargeResult(Result):
    """Outcome of a resolved galvanostatic discharge.

    Attributes
    ----------
    c_rate : float
        C-rate of the run (1C = :attr:`one_c_current_A`).
    current_A : float
        Applied current (discharge positive).
    one_c_current_A : float
        Current that delivers the OCP-limited capacity of all active voxels (initial
        stoichiometry to the stoichiometry where the OCP reaches the cut-off, or
        full lithiation) in one hour.
    theoretical_capacity_Ah : float
        Active-material volume × c_s,max × F.
    capacity_Ah : float
        Discharged capacity at the cut-off (or where the run stopped).
    energy_Wh : float
        ∫ V I dt.
    time_s, voltage_V, discharged_Ah : ndarray
        The discharge curve (first entry: rest state).
    li_error, charge_error : ndarray
        Relative lithium and charge balance error of every step.
    max_conservation_error : float
        Largest of both over the run.
    breakdown_V : dict of str to ndarray
        Voltage losses per step from volume-integrated dissipation
        (:data:`BREAKDOWN_COMPONENTS`, plus ``reaction_positive``,
        ``reaction_counter``, ``ocv`` and the closure ``residual``).
    final_breakdown_V : dict of str to float
        The breakdown at the last step.
    snapshots : tuple of Snapshot
        Fields at the requested times and at the end.
    complete : bool
        True when the run ended normally (cut-off voltage, surface-stoichiometry
        event or requested end time); False marks a partial result (solver failure,
        step limit).
    status : str
        Why the run ended (solver failure: where and why).
    steps, newton_iterations : int
    timing : dict
        ``assembly_s``, ``solve_s``, ``total_s``, ``linear_solves``.
    grid : dict
        Image shape, separator layers and stretch, numbers of unknowns, reaction area.
    provenance : Provenance
    """

    c_rate: float
    current_A: float
    one_c_current_A: float
    theoretical_capacity_Ah: float
    capacity_Ah: float
    energy_Wh: float
    time_s: np.ndarray
    voltage_V: np.ndarray
    discharged_Ah: np.ndarray
    li_error: np.ndarray
    charge_error: np.ndarray
    max_conservation_error: float
    breakdown_V: dict[str, np.ndarray]
    final_breakdown_V: dict[str, float]
    snapshots: tuple[Snapshot, ...]
    complete: bool
    status: str
    steps: int
    newton_iterations: int
    timing: dict[str, float]
    grid: dict[str, Any]
    provenance: Provenance = field(default_factory=lambda: Provenance("simulate_discharge"))

    _json_arrays: ClassVar[tuple[str, ...]] = ()

    @property
    def partial(self) -> bool:
        """True when the run stopped before the cut-off voltage."""
        return not self.complete

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (curve and fields summarised, breakdown at the end)."""
        out = super().to_dict()
        out["breakdown_V"] = {
            k: {
                "final": float(v[-1]) if len(v) else None,
                "mean": float(np.mean(v)) if len(v) else None,
            }
            for k, v in self.breakdown_V.items()
        }
        out["snapshots"] = [
            {"time_s": s.time_s, "fields": sorted(s.fields)} for s in self.snapshots
        ]
        out["partial"] = self.partial
        return to_jsonable(out)

    def save_curve(self, path: str | Path) -> Path:
        """Write the discharge curve and per-step breakdown as CSV (atomically)."""
        from microbat.core.atomic import atomic_path

        keys = [k for k in self.breakdown_V]
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(
                ["time_s", "capacity_Ah", "voltage_V", "li_error", "charge_error"]
                + [f"{k}_V" for k in keys]
            )
            for i in range(self.time_s.size):
                row = [
                    f"{self.time_s[i]:.9g}",
                    f"{self.discharged_Ah[i]:.9g}",
                    f"{self.voltage_V[i]:.9g}",
                    f"{self.li_error[i]:.3e}",
                    f"{self.charge_error[i]:.3e}",
                ]
                row += [f"{self.breakdown_V[k][i - 1]:.6g}" if i > 0 else "" for k in keys]
                w.writerow(row)
        return Path(path)

    def save_fields(self, path: str | Path) -> Path:
        """Write the snapshots to HDF5 (``/t{i}/{field}`` with ``time_s`` attributes)."""
        from microbat.core.atomic import atomic_path
        from microbat.core.errors import require

        h5py = require("h5py")
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
            f.attrs["partial"] = self.partial
            f.attrs["status"] = self.status
            f.attrs["c_rate"] = self.c_rate
            f.attrs["units"] = (
                "c_e, c_s: mol/m3; phi_e, phi_s: V; reaction_current: A/m3 (cathodic < 0)"
            )
            f.create_dataset("curve/time_s", data=self.time_s)
            f.create_dataset("curve/voltage_V", data=self.voltage_V)
            f.create_dataset("curve/capacity_Ah", data=self.discharged_Ah)
            for i, s in enumerate(self.snapshots):
                g = f.create_group(f"t{i:03d}")
                g.attrs["time_s"] = s.time_s
                for name, arr in s.fields.items():
                    g.create_dataset(name, data=arr, compression="gzip", compression_opts=1)
        return Path(path)


def theoretical_capacity_Ah(ms: Microstructure, c_max: float) -> float:
    """Capacity of the active voxels if fully lithiated: ``V_active c_s,max F / 3600``.

    Parameters
    ----------
    ms : Microstructure
        Must have a phase with role ``active``.
    c_max : float
        Maximum lithium concentration (mol/m³).

    Returns
    -------
    float
        A·h.
    """
    n = int(sum(np.count_nonzero(ms.labels == p.label) for p in ms.phases_with_role("active")))
    return n * ms.voxel_volume * c_max * FARADAY / 3600.0


def simulate_discharge(
    ms: Microstructure,
    params: Any = None,
    *,
    c_rate: float = 1.0,
    options: ResolvedOptions | None = None,
    snapshot_times: Sequence[float] | None = None,
    electrode: str = "positive",
    progress: Callable[[float, float, float], None] | None = None,
) -> ResolvedDischargeResult:
    """Discharge a resolved electrode against lithium metal at constant current.

    Parameters
    ----------
    ms : Microstructure
        3D labelled electrode (roles ``electrolyte``, ``active``, optional
        ``carbon_binder``/``separator``); index 0 of the thickness axis touches the
        current collector.
    params : CellParameters, ResolvedParameters or str, optional
        The shared cell parameter object (default ``"chen2020"``, whose positive
        electrode is NMC811), or its name.
    c_rate : float, default 1
        Discharge rate; 1C is the current that delivers the OCP-limited capacity of
        this electrode in one hour (see :class:`ResolvedDischargeResult`).
    options : ResolvedOptions, optional
        Model and solver options.
    snapshot_times : sequence of float, optional
        Times (s) at which fields are kept (the first accepted step at or after each);
        default 25 %, 50 % and 75 % of the nominal discharge time. The end state is
        always kept.
    electrode : {"positive", "negative"}
        Which electrode of the set the image is.
    progress : callable, optional
        Called after every step with ``(time_s, voltage_V, capacity_Ah)``.

    Returns
    -------
    ResolvedDischargeResult
        ``complete`` is False (a partial result) when the solver failed or the step
        limit was hit; ``status`` says where and why.

    Raises
    ------
    InvalidInputError, PhaseError
        Unusable microstructure or options.

    Notes
    -----
    Unknowns: 2 per electrolyte voxel, 1 per solid voxel, 1 more per active voxel,
    plus the terminal voltage. Each Newton update is one sparse solve; memory and
    time grow with the fill of the LU factors for ``linear_solver="direct"``.

    Examples
    --------
    >>> from microbat.synth.phantoms import sphere
    >>> ms = sphere((8, 8, 8), 3.0, voxel_size=1e-6, center=(3.5, 4, 4))
    >>> res = simulate_discharge(ms, c_rate=2.0)  # doctest: +SKIP
    >>> res.complete, res.max_conservation_error < 1e-8  # doctest: +SKIP
    (True, True)
    """
    t_start = time.perf_counter()
    opt = options or ResolvedOptions()
    if not isinstance(ms, Microstructure):
        raise InvalidInputError(
            f"simulate_discharge needs a Microstructure, got {type(ms).__name__}; wrap a "
            "labelled array with microbat.Microstructure(labels, voxel_size, phases)"
        )
    if not (isinstance(c_rate, int | float) and 1e-4 <= c_rate <= 100):
        raise InvalidInputError(f"c_rate = {c_rate!r}; give a positive C-rate up to 100")
    par = _resolve_params(params, electrode)
    cutoff = opt.cutoff_V if opt.cutoff_V is not None else par.lower_cutoff
    dom = build_domain(
        ms,
        separator_thickness=par.separator_thickness,
        separator_layers=opt.separator_layers,
        cbd_porosity=opt.cbd_porosity,
    )
    area_scale = 1.0
    if opt.reaction_area == "metrics":
        from microbat.imaging.metrics import specific_surface_area

        electrolyte = [
            p.name for p in ms.phases.values() if p.role in ("electrolyte", "carbon_binder")
        ]
        active = [p.name for p in ms.phases_with_role("active")]
        measured = specific_surface_area(ms, active, electrolyte) * ms.voxel_volume * ms.n_voxels
        if measured > 0 and dom.face_area_geometric > 0:
            area_scale = measured / dom.face_area_geometric
    cell = HalfCell(dom, par, opt, area_scale)
    q_theory = theoretical_capacity_Ah(ms, par.c_max)
    n_active_all = round(q_theory * 3600.0 / (dom.voxel_volume * par.c_max * FARADAY))
    th_max = par.max_stoichiometry(cutoff)
    th0 = par.c_s0 / par.c_max
    one_c = q_theory * max(th_max - th0, 1e-3)  # A (capacity in A·h over one hour)
    I_app = float(c_rate) * one_c
    t_nom = 3600.0 / float(c_rate)
    if snapshot_times is None:
        snapshot_times = [0.25 * t_nom, 0.5 * t_nom, 0.75 * t_nom]
    out = run_discharge(cell, I_app, t_nom, cutoff, snapshot_times, progress)
    t = out["time_s"]
    V = out["voltage_V"]
    cap = I_app * t / 3600.0
    energy = float(np.sum(0.5 * (V[1:] + V[:-1]) * np.diff(t)) * I_app / 3600.0)
    keys = list(out["losses"][0]) if out["losses"] else []
    breakdown = {k: np.array([s[k] for s in out["losses"]]) for k in keys}
    final = {k: float(v[-1]) for k, v in breakdown.items()}
    max_err = float(max(np.max(out["li_error"]), np.max(out["charge_error"])))
    tm = cell.timing
    wall = time.perf_counter() - t_start
    grid = {
        "image_shape": list(ms.shape),
        "separator_layers": dom.n_sep,
        "separator_stretch": dom.stretch,
        "unknowns": cell.n,
        "electrolyte_voxels": cell.nE,
        "solid_voxels": cell.nS,
        "active_voxels": cell.nA,
        "disconnected_active_voxels": int(n_active_all - cell.nA),
        "reaction_faces": int(dom.face_area.size),
        "reaction_area_m2": float(cell.face_area.sum()),
        "reaction_area_mode": opt.reaction_area,
        "area_scale": area_scale,
    }
    return ResolvedDischargeResult(
        c_rate=float(c_rate),
        current_A=I_app,
        one_c_current_A=one_c,
        theoretical_capacity_Ah=q_theory,
        capacity_Ah=float(cap[-1]),
        energy_Wh=energy,
        time_s=t,
        voltage_V=V,
        discharged_Ah=cap,
        li_error=out["li_error"],
        charge_error=out["charge_error"],
        max_conservation_error=max_err,
        breakdown_V=breakdown,
        final_breakdown_V=final,
        snapshots=tuple(Snapshot(ts, f) for ts, f in out["snapshots"]),
        complete=bool(out["complete"]),
        status=str(out["status"]),
        steps=int(out["steps"]),
        newton_iterations=int(np.sum(out["newton"])),
        timing={
            "assembly_s": tm.assembly_s,
            "solve_s": tm.solve_s,
            "total_s": wall,
            "linear_solves": tm.linear_solves,
            "factorizations": tm.factorizations,
        },
        grid=grid,
        provenance=Provenance(
            "microbat.cell.resolved.simulate_discharge",
            parameters={
                "c_rate": float(c_rate),
                "params": par.name,
                "electrode": electrode,
                "cutoff_V": cutoff,
                "options": to_jsonable(dataclasses.asdict(opt)),
            },
            wall_time_s=wall,
            inputs={"shape": list(ms.shape), "voxel_size": list(ms.voxel_size)},
        ),
    )


def _resolve_params(params: Any, electrode: str) -> ResolvedParameters:
    if electrode not in ("positive", "negative"):
        raise InvalidInputError(f"electrode must be 'positive' or 'negative', got {electrode!r}")
    if isinstance(params, ResolvedParameters):
        return params
    from microbat.cell.parameters import CellParameters, load_parameters

    if params is None:
        params = "chen2020"
    if isinstance(params, str | Path):
        params = load_parameters(params)
    if not isinstance(params, CellParameters):
        raise InvalidInputError(
            f"params must be a CellParameters, a ResolvedParameters or a set name, got "
            f"{type(params).__name__}"
        )
    return ResolvedParameters.from_cell_parameters(params, electrode)
