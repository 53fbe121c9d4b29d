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

Outputs and robustness
----------------------
The result holds the curve, the per-step loss breakdown and conservation errors, and
field snapshots with a per-voxel map of the dissipation (:mod:`._lossmap`), written to
CSV, HDF5 and VTK (:mod:`.vtk`). Long runs checkpoint atomically and resume
(:mod:`._checkpoint`, :mod:`._stepping`); Ctrl-C raises :class:`DischargeInterrupted`
carrying the partial result. A partial result (solver failure, step limit,
interruption) says so in every output file. See ``docs/resolved.md``, "Outputs".

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from microbat.cell.resolved._checkpoint import (
    Checkpointer,
    checkpoint_file,
    problem_fingerprint,
)
from microbat.cell.resolved._geometry import build_domain
from microbat.cell.resolved._lossmap import LOSS_FIELDS
from microbat.cell.resolved._model import HalfCell, ResolvedOptions
from microbat.cell.resolved._params import FARADAY, ResolvedParameters
from microbat.cell.resolved._stepping import (
    RunRecord,
    StepProgress,
    final_snapshot,
    record_arrays,
    run_discharge,
)
from microbat.core.errors import InvalidInputError
from microbat.core.microstructure import Microstructure
from microbat.core.results import Provenance, Result, to_jsonable

__all__ = [
    "BREAKDOWN_COMPONENTS",
    "LOSS_FIELDS",
    "DischargeInterrupted",
    "ResolvedDischargeResult",
    "ResolvedOptions",
    "ResolvedParameters",
    "Snapshot",
    "StepProgress",
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
        ``stoichiometry`` (-), ``reaction_current`` (A/m³ of voxel, cathodic < 0), and
        the per-voxel loss map (W/m³ of voxel): ``loss_ohmic_electrolyte``,
        ``loss_concentration_electrolyte``, ``loss_ohmic_solid``, ``loss_reaction``,
        ``loss_solid_diffusion`` (:data:`LOSS_FIELDS`) and their sum ``loss_total``.
    outside_W : dict of str to float
        The part of each loss component outside the image (separator slab; the
        lithium-metal kinetics as ``reaction_counter``, included in ``reaction``), W.
        ``Σ_voxels loss_* × voxel volume + outside_W[component]`` = breakdown × current
        of the step that produced the snapshot.
    """

    time_s: float
    fields: dict[str, np.ndarray]
    outside_W: dict[str, float] = field(default_factory=dict)


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
        ``assembly_s`` (step operators, residuals and Jacobians), ``solve_s`` (linear
        solves, including ``amg_setup_s`` of AMG setups and refreshes), ``total_s``,
        ``linear_solves``, ``gmres_iterations``, ``amg_setups``.
    grid : dict
        Image shape, separator layers and stretch, numbers of unknowns, reaction area.
    provenance : Provenance
    checkpoint : str or None
        The checkpoint file of the run, if it was checkpointed.
    resumed_at_step : int or None
        The step the run was resumed at from a checkpoint (None: run from rest).
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
    checkpoint: str | None = None
    resumed_at_step: int | None = None

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
        """Write the discharge curve and per-step breakdown as CSV (atomically).

        The last column, ``partial``, is ``true`` on every row of a partial result
        (solver failure, step limit, interruption; see :attr:`status`).
        """
        from microbat.core.atomic import atomic_path

        keys = [k for k in self.breakdown_V]
        flag = "true" if self.partial else "false"
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(
                ["time_s", "capacity_Ah", "voltage_V", "li_error", "charge_error"]
                + [f"{k}_V" for k in keys]
                + ["partial"]
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
                w.writerow([*row, flag])
        return Path(path)

    def save_fields(self, path: str | Path) -> Path:
        """Write the snapshots to HDF5 (``/t{i}/{field}`` with ``time_s`` attributes).

        File attributes ``partial``, ``status``, ``c_rate``, ``current_A``, ``units``;
        each group also has the losses outside the image as ``outside_W/{component}``.
        """
        from microbat.core.atomic import atomic_path
        from microbat.core.errors import require

        h5py = require("h5py")
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
            f.attrs["partial"] = self.partial
            f.attrs["status"] = self.status
            f.attrs["c_rate"] = self.c_rate
            f.attrs["units"] = (
                "c_e, c_s: mol/m3; phi_e, phi_s: V; reaction_current: A/m3 (cathodic < 0); "
                "loss_*: W/m3"
            )
            f.attrs["current_A"] = self.current_A
            f.create_dataset("curve/time_s", data=self.time_s)
            f.create_dataset("curve/voltage_V", data=self.voltage_V)
            f.create_dataset("curve/capacity_Ah", data=self.discharged_Ah)
            for i, s in enumerate(self.snapshots):
                g = f.create_group(f"t{i:03d}")
                g.attrs["time_s"] = s.time_s
                for k, v in s.outside_W.items():
                    g.attrs[f"outside_W/{k}"] = v
                for name, arr in s.fields.items():
                    g.create_dataset(name, data=arr, compression="gzip", compression_opts=1)
        return Path(path)

    def save_vtk(self, path: str | Path, *, collection: bool = True) -> list[Path]:
        """Write every snapshot as VTK ImageData (``.vti``) for ParaView.

        Parameters
        ----------
        path : path-like
            A folder (one ``fields_t000.vti`` ... per snapshot and ``fields.pvd``), or
            a file name ``NAME.vti`` (files ``NAME_t000.vti`` ... and ``NAME.pvd``
            beside it).
        collection : bool, default True
            Also write the ``.pvd`` time-series collection (ParaView opens it as one
            data set with a time slider).

        Returns
        -------
        list of Path
            The ``.vti`` files, then the ``.pvd`` file.

        Notes
        -----
        All fields of a snapshot are cell data arrays of one file (NaN outside each
        field's phase), on the image grid with the image's voxel size; the files say
        ``partial`` and ``status`` in their microbat header and the ``.pvd`` in a
        comment. See :mod:`microbat.cell.resolved.vtk`.
        """
        from microbat.cell.resolved.vtk import save_snapshots_vtk

        return save_snapshots_vtk(self, path, collection=collection)


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
    on_step: Callable[[StepProgress], None] | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    checkpoint_every: int | None = None,
    checkpoint_interval_s: float | None = 60.0,
    on_fields: Callable[[float, Mapping[str, np.ndarray]], None] | None = None,
) -> ResolvedDischargeResult:
    """Discharge a resolved electrode against lithium metal at constant current.

    Parameters
    ----------
    ms : Microstructure
        3D labelled electrode (roles ``electrolyte``, ``active``, optional
        ``carbon_binder``/``separator``; or a composite cathode: ``active``,
        ``solid_electrolyte``, optional ``carbon_binder`` and voids, run with the
        solid electrolyte as a single-ion conductor, see ``docs/ssb.md``); index 0 of
        the thickness axis touches the current collector.
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
    on_step : callable, optional
        Called after every step with a :class:`StepProgress` (time, voltage, capacity,
        fraction of the OCP-limited capacity delivered, mean stoichiometry, step).
        Raising ``KeyboardInterrupt`` from it interrupts the run like Ctrl-C.
    checkpoint : path-like, optional
        Checkpoint the run there: a ``.npz`` file, or a folder holding
        ``checkpoint.npz``. Written atomically every ``checkpoint_every`` steps and/or
        ``checkpoint_interval_s`` seconds of wall time, at the end of the run (also
        after a solver failure or the step limit) and on ``KeyboardInterrupt``.
    resume : bool, default False
        Continue from ``checkpoint`` instead of starting from rest. The checkpoint must
        belong to the same problem (image, parameters, options, C-rate, cut-off,
        snapshot times; ``max_steps``, ``end_time_s`` and the linear solver may
        differ, e.g. a larger ``max_steps`` continues a run stopped by the limit).
    checkpoint_every : int, optional
        Accepted steps between checkpoints.
    checkpoint_interval_s : float or None, default 60
        Wall time between checkpoints (None: only by steps and at the end).
    on_fields : callable, optional
        Per-step field hook: called after every accepted step (after ``on_step``) with
        the step's end time (s) and a mapping of float64 arrays of the image's shape,
        NaN outside each field's phase (as :attr:`Snapshot.fields`): ``phi_s``,
        ``phi_e`` (V), ``c_e``, ``c_s`` (mol/m³), ``stoichiometry`` (-) and
        ``reaction_current`` (A/m³, cathodic < 0). The arrays are fresh copies the
        hook may keep. No loss maps are computed for it. Not called for the rest
        state; on the last step the time is the step's end, not the interpolated
        cut-off crossing of the curve.

    Returns
    -------
    ResolvedDischargeResult
        ``complete`` is False (a partial result) when the solver failed or the step
        limit was hit; ``status`` says where and why.

    Raises
    ------
    InvalidInputError, PhaseError
        Unusable microstructure or options; ``resume`` with a checkpoint of another
        problem.
    FileFormatError
        ``resume`` without a readable checkpoint.
    DischargeInterrupted
        ``KeyboardInterrupt`` during the run (a subclass of it): the checkpoint (if
        any) holds the last accepted step and the exception's ``result`` the partial
        result up to it.

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
    if resume and checkpoint is None:
        raise InvalidInputError("resume=True needs checkpoint= (the file or folder to resume)")
    par = _resolve_params(params, electrode)
    cutoff = opt.cutoff_V if opt.cutoff_V is not None else par.lower_cutoff
    cell, area_scale, q_theory, n_active_all = _build_cell(ms, par, opt)
    th_max = par.max_stoichiometry(cutoff)
    th0 = par.c_s0 / par.c_max
    one_c = q_theory * max(th_max - th0, 1e-3)  # A (capacity in A·h over one hour)
    I_app = float(c_rate) * one_c
    t_nom = 3600.0 / float(c_rate)
    if snapshot_times is None:
        snapshot_times = [0.25 * t_nom, 0.5 * t_nom, 0.75 * t_nom]
    snapshot_times = sorted(float(t) for t in snapshot_times)

    ckpt: Checkpointer | None = None
    if checkpoint is not None:
        fp = problem_fingerprint(
            ms,
            par,
            opt,
            c_rate=float(c_rate),
            cutoff=cutoff,
            electrode=electrode,
            snapshot_times=snapshot_times,
        )
        ckpt = Checkpointer(
            checkpoint_file(checkpoint), fp, checkpoint_every, checkpoint_interval_s
        )
    if resume and ckpt is not None:
        rec = ckpt.read()
    else:
        rec = RunRecord.start(cell, opt.dt_initial_s or t_nom / 400)

    def step_hook(info: StepProgress) -> None:
        if progress is not None:
            progress(info.time_s, info.voltage_V, info.capacity_Ah)
        if on_step is not None:
            on_step(info)

    setup_s = time.perf_counter() - t_start

    def build() -> ResolvedDischargeResult:
        return _result(
            ms, par, opt, cell, rec, ckpt,
            c_rate=float(c_rate), I_app=I_app, one_c=one_c, q_theory=q_theory,
            n_active_all=n_active_all, area_scale=area_scale, cutoff=cutoff,
            electrode=electrode, setup_s=setup_s,
        )  # fmt: skip

    from microbat.core.threads import single_threaded_blas

    try:
        # BLAS sees only vectors and small blocks here; its spinning pool cost 30 %
        # more CPU on two threads than on one (core.threads)
        with single_threaded_blas("blas"):
            run_discharge(
                cell,
                I_app,
                t_nom,
                cutoff,
                snapshot_times,
                rec,
                on_step=step_hook if (progress or on_step) else None,
                checkpoint=ckpt,
                capacity_Ah=one_c,
                on_fields=on_fields,
            )
    except KeyboardInterrupt as exc:
        raise DischargeInterrupted(build()) from exc
    return build()


def _build_cell(
    ms: Microstructure, par: ResolvedParameters, opt: ResolvedOptions
) -> tuple[HalfCell, float, float, int]:
    """The half cell, its reaction-area scale, capacity (A·h) and active voxel count."""
    dom = build_domain(
        ms,
        separator_thickness=opt.separator_thickness_m or par.separator_thickness,
        separator_layers=opt.separator_layers,
        cbd_porosity=opt.cbd_porosity,
    )
    area_scale = 1.0
    if opt.reaction_area == "metrics":
        from microbat.imaging.metrics import specific_surface_area

        ion_roles = ("solid_electrolyte",) if dom.solid_electrolyte else None
        electrolyte = [
            p.name
            for p in ms.phases.values()
            if p.role in (ion_roles or ("electrolyte", "carbon_binder"))
        ]
        active = [p.name for p in ms.phases_with_role("active")]
        measured = specific_surface_area(ms, active, electrolyte) * ms.voxel_volume * ms.n_voxels
        if measured > 0 and dom.face_area_geometric > 0:
            area_scale = measured / dom.face_area_geometric
    cell = HalfCell(dom, par, opt, area_scale)
    q_theory = theoretical_capacity_Ah(ms, par.c_max)
    n_active_all = round(q_theory * 3600.0 / (dom.voxel_volume * par.c_max * FARADAY))
    return cell, area_scale, q_theory, n_active_all


class DischargeInterrupted(KeyboardInterrupt):
    """Ctrl-C (``KeyboardInterrupt``) during :func:`simulate_discharge`.

    A subclass of ``KeyboardInterrupt``, so code that does not know it still stops.

    Attributes
    ----------
    result : ResolvedDischargeResult
        The partial result up to the last accepted step (``complete`` False, ``status``
        says where it stopped); the checkpoint, if one was asked for, holds the same
        step and ``resume=True`` continues from it.
    """

    def __init__(self, result: ResolvedDischargeResult) -> None:
        super().__init__(result.status)
        self.result = result


def _result(
    ms: Microstructure,
    par: ResolvedParameters,
    opt: ResolvedOptions,
    cell: HalfCell,
    rec: RunRecord,
    ckpt: Checkpointer | None,
    *,
    c_rate: float,
    I_app: float,
    one_c: float,
    q_theory: float,
    n_active_all: int,
    area_scale: float,
    cutoff: float,
    electrode: str,
    setup_s: float,
) -> ResolvedDischargeResult:
    """Assemble the result from the run record."""
    return ResolvedDischargeResult(
        **_result_fields(
            ms,
            par,
            opt,
            cell,
            rec,
            ckpt,
            c_rate=c_rate,
            I_app=I_app,
            one_c=one_c,
            q_theory=q_theory,
            n_active_all=n_active_all,
            area_scale=area_scale,
            cutoff=cutoff,
            electrode=electrode,
            setup_s=setup_s,
        )
    )


def _result_fields(
    ms: Microstructure,
    par: ResolvedParameters,
    opt: ResolvedOptions,
    cell: HalfCell,
    rec: RunRecord,
    ckpt: Checkpointer | None,
    *,
    c_rate: float,
    I_app: float,
    one_c: float,
    q_theory: float,
    n_active_all: int,
    area_scale: float,
    cutoff: float,
    electrode: str,
    setup_s: float,
    function: str = "simulate_discharge",
) -> dict[str, Any]:
    """The fields of a result from the run record (constant-current bookkeeping)."""
    dom = cell.dom
    arr = record_arrays(rec)
    t = arr["time_s"]
    V = arr["voltage_V"]
    cap = I_app * t / 3600.0
    energy = float(np.sum(0.5 * (V[1:] + V[:-1]) * np.diff(t)) * I_app / 3600.0)
    keys = list(rec.losses[0]) if rec.losses else []
    breakdown = {k: np.array([s[k] for s in rec.losses]) for k in keys}
    final = {k: float(v[-1]) for k, v in breakdown.items()}
    max_err = float(max(np.max(arr["li_error"]), np.max(arr["charge_error"])))
    snaps = list(rec.snapshots)
    end = final_snapshot(cell, rec)
    if end is not None:
        snaps.append(end)
    wall = rec.wall_s + setup_s
    tm = rec.timing
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
    timing = {
        "assembly_s": tm.get("assembly_s", 0.0),
        "solve_s": tm.get("solve_s", 0.0),
        "total_s": wall,
        "linear_solves": int(tm.get("linear_solves", 0)),
        "factorizations": int(tm.get("factorizations", 0)),
        "gmres_iterations": int(tm.get("gmres_iterations", 0)),
        "amg_setups": int(tm.get("amg_setups", 0)),
        "amg_setup_s": float(tm.get("amg_setup_s", 0.0)),
    }
    if ckpt is not None:
        timing["checkpoint_s"] = ckpt.seconds
        timing["checkpoints"] = rec.checkpoints_written
    return dict(
        c_rate=c_rate,
        current_A=I_app,
        one_c_current_A=one_c,
        theoretical_capacity_Ah=q_theory,
        capacity_Ah=float(cap[-1]),
        energy_Wh=energy,
        time_s=t,
        voltage_V=V,
        discharged_Ah=cap,
        li_error=arr["li_error"],
        charge_error=arr["charge_error"],
        max_conservation_error=max_err,
        breakdown_V=breakdown,
        final_breakdown_V=final,
        snapshots=tuple(Snapshot(sd.time_s, sd.fields, sd.outside_W) for sd in snaps),
        complete=bool(rec.complete),
        status=str(rec.status),
        steps=int(rec.steps),
        newton_iterations=int(np.sum(arr["newton"])),
        timing=timing,
        grid=grid,
        provenance=Provenance(
            f"microbat.cell.resolved.{function}",
            parameters={
                "c_rate": c_rate,
                "params": par.name,
                "electrode": electrode,
                "cutoff_V": cutoff,
                "options": to_jsonable(dataclasses.asdict(opt)),
            },
            wall_time_s=wall,
            inputs={"shape": list(ms.shape), "voxel_size": list(ms.voxel_size)},
        ),
        checkpoint=None if ckpt is None else str(ckpt.path),
        resumed_at_step=rec.resumed_at_step,
    )


def _resolve_params(params: Any, electrode: str) -> ResolvedParameters:
    return cell_and_resolved(params, electrode)[1]


def cell_and_resolved(params: Any, electrode: str) -> tuple[Any, ResolvedParameters]:
    """The CellParameters (None for a bare ResolvedParameters) and the resolved view.

    ``params``: a :class:`~microbat.cell.parameters.CellParameters`, a set name or
    BPX file (default ``"chen2020"``), or a :class:`ResolvedParameters` of ``electrode``.
    """
    if electrode not in ("positive", "negative"):
        raise InvalidInputError(f"electrode must be 'positive' or 'negative', got {electrode!r}")
    if isinstance(params, ResolvedParameters):
        if params.electrode != electrode:
            raise InvalidInputError(
                f"the ResolvedParameters are of the {params.electrode} electrode, not the "
                f"{electrode}"
            )
        return None, params
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
    return params, ResolvedParameters.from_cell_parameters(params, electrode)
