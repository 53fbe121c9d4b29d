"""Galvanostatic time stepping of the resolved half cell, resumable (internal).

:func:`run_discharge` advances a :class:`RunRecord` — the accepted state, the step
size, Newton's first guess for the next step, the curve, the loss breakdown, the
conservation history and the snapshots — by backward-Euler steps until the cut-off.
The record is everything needed to continue, so a run that is checkpointed
(:mod:`._checkpoint`) and resumed in a new process follows the same steps as one
that never stopped.

Interrupt safety: an accepted step is first appended to the history lists and then
made current by one assignment of the record's cursor (state, guess, step size, step
count). A ``KeyboardInterrupt`` anywhere in between is repaired by
:meth:`RunRecord.truncate`, so the record handed to the caller (and to the
checkpoint) is always a consistent accepted step.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from microbat.cell.resolved._lossmap import loss_density
from microbat.cell.resolved._model import HalfCell, State
from microbat.cell.resolved._record import _TIMING_KEYS, Cursor, RunRecord, SnapshotData
from microbat.core.errors import ConvergenceError

if TYPE_CHECKING:
    from microbat.cell.resolved._checkpoint import Checkpointer


class StepProgress(NamedTuple):
    """What the progress callback of a discharge receives after every accepted step.

    Attributes
    ----------
    time_s : float
        Simulated time.
    voltage_V : float
        Terminal voltage.
    capacity_Ah : float
        Charge delivered so far.
    capacity_fraction : float
        ``capacity_Ah`` over the OCP-limited capacity of the electrode (the 1C current
        × 1 h): the depth of discharge reached, 0 at rest.
    mean_stoichiometry : float
        Mean lithium stoichiometry of the active voxels (state of lithiation).
    step : int
        Accepted steps so far (over the whole run, including before a resume).
    dt_s : float
        Size of the last step.
    """

    time_s: float
    voltage_V: float
    capacity_Ah: float
    capacity_fraction: float
    mean_stoichiometry: float
    step: int
    dt_s: float


#: Relative change of the current per step the step-size control aims at during a
#: constant-voltage hold (the voltage, the CC phase's measure, no longer moves).
CV_CURRENT_CHANGE = 0.2


@dataclass(frozen=True)
class Protocol:
    """What a run does and when it ends (internal; built by the public drivers).

    Attributes
    ----------
    sign : {1, -1}
        1: the working electrode lithiates (``I_app`` > 0; a positive electrode's
        discharge, a negative electrode's charge); -1: it delithiates.
    voltage_limit : float or None
        End of the constant-current phase when no CV hold follows: the voltage crossed
        in the direction of travel (below it for ``sign`` 1, above for -1).
    cv_voltage : float or None
        Hold this voltage once the constant-current phase reaches it.
    cv_end_current_A : float
        The hold ends when the magnitude of the current falls to this.
    stoichiometry_end : float or None
        End when the mean stoichiometry of the connected active voxels reaches this
        (from below for ``sign`` 1, from above for -1).
    """

    sign: int = 1
    voltage_limit: float | None = None
    cv_voltage: float | None = None
    cv_end_current_A: float = 0.0
    stoichiometry_end: float | None = None


def passed_Ah(rec: RunRecord) -> float:
    """Charge passed so far (A·h, magnitude): the sum of the steps' currents × Δt."""
    h = rec.history
    t = np.asarray(h["time_s"], dtype=float)
    current = np.asarray(h["current_A"], dtype=float)
    return float(abs(np.sum(current[1:] * np.diff(t)))) / 3600.0


def run_discharge(
    cell: HalfCell,
    I_app: float,
    t_nominal: float,
    cutoff: float,
    snapshot_times: Sequence[float],
    rec: RunRecord,
    *,
    on_step: Callable[[StepProgress], None] | None = None,
    checkpoint: Checkpointer | None = None,
    capacity_Ah: float = 1.0,
    loss_maps: bool = True,
    on_fields: Callable[[float, Mapping[str, np.ndarray]], None] | None = None,
    protocol: Protocol | None = None,
) -> RunRecord:
    """Advance ``rec`` by backward-Euler steps to the end of discharge (internal).

    Parameters
    ----------
    cell : HalfCell
    I_app : float
        Applied current (A, discharge positive).
    t_nominal : float
        Nominal discharge time ``3600 s / C`` (scales the default step sizes).
    cutoff : float
        Lower cut-off voltage.
    snapshot_times : sequence of float
        Times at which fields are kept (the first accepted step at or after each).
    rec : RunRecord
        Start record (:meth:`RunRecord.start`, or read from a checkpoint); advanced in
        place, so after an exception it holds the last accepted step.
    on_step : callable, optional
        Called with a :class:`StepProgress` after every accepted step.
    checkpoint : Checkpointer, optional
        Writes the record when due, at the end and on ``KeyboardInterrupt``.
    capacity_Ah : float
        OCP-limited capacity (for ``StepProgress.capacity_fraction``).
    loss_maps : bool, default True
        Add the per-voxel loss maps (:mod:`._lossmap`) to every snapshot.
    on_fields : callable, optional
        Called after every accepted step (after ``on_step``) with the step's end time
        (s) and :meth:`HalfCell.step_fields` of the new state.
    protocol : Protocol, optional
        Direction, voltage limit, constant-voltage hold and stoichiometry end (default:
        lithiation at ``I_app`` down to ``cutoff``, the discharge).

    Returns
    -------
    RunRecord
        ``rec``, with ``status``, ``complete`` and ``finished`` set.
    """
    opt = cell.opt
    dt_max = opt.dt_max_s or t_nominal * opt.max_step_fraction
    dt_min = t_nominal * 1e-6
    pending = sorted(float(t) for t in snapshot_times)
    t_wall = time.perf_counter()
    wall0 = rec.wall_s
    timing0 = dict(rec.timing)
    c_max = cell.par.c_max

    def sync() -> None:
        tm = cell.timing
        rec.timing = {k: timing0.get(k, 0.0) + float(getattr(tm, k)) for k in _TIMING_KEYS}
        rec.wall_s = wall0 + time.perf_counter() - t_wall

    def snapshot(old: State, new: State, reaction: np.ndarray, t: float) -> SnapshotData:
        fields = cell.fields(new, reaction)
        outside: dict[str, float] = {}
        if loss_maps:
            maps, outside = loss_density(cell, old, new)
            fields.update(maps)
        return SnapshotData(t, fields, outside)

    proto = protocol or Protocol(voltage_limit=cutoff)
    sign = proto.sign
    hist = rec.history
    if len(hist.get("current_A", ())) != len(hist["time_s"]):
        # a checkpoint of an earlier version (constant current only)
        hist["current_A"] = [0.0] + [I_app] * (len(hist["time_s"]) - 1)
    if len(hist.get("hold_V", ())) != len(hist["time_s"]):
        hist["hold_V"] = [float("nan")] * len(hist["time_s"])
    for key in ("plated_mol", "dead_mol"):
        if len(hist.get(key, ())) != len(hist["time_s"]):
            hist[key] = [0.0] * len(hist["time_s"])

    def crossed(v: float, limit: float | None) -> bool:
        """The voltage went past ``limit`` in the direction of travel."""
        return limit is not None and sign * (v - limit) <= 0

    cc_limit = proto.cv_voltage if proto.cv_voltage is not None else proto.voltage_limit
    lim_surf = opt.surface_stoichiometry_limit
    dt = rec.cursor.dt
    guess = rec.cursor.guess
    landing = False  # the step was shortened to land on the CC→CV switch
    try:
        while not rec.finished:
            if rec.steps >= opt.max_steps:
                rec.status = "max_steps"
                break
            state = rec.state
            phase = rec.cursor.phase
            hold = proto.cv_voltage if phase == "cv" else None
            try:
                new, k = cell.newton(state, dt, I_app, guess, hold_V=hold)
            except ConvergenceError as exc:
                dt *= 0.25
                guess = state
                landing = False
                if dt < dt_min:
                    rec.status = (
                        f"solver failed at t = {state.t:.6g} s, V = {state.V:.4f} V, surface "
                        f"stoichiometry {cell.surface_stoichiometry(state):.4f}: {exc}"
                    )
                    rec.finished = True
                    break
                continue
            phase_new = phase
            if phase == "cc" and proto.cv_voltage is not None and crossed(new.V, cc_limit):
                # the CC phase reached the CV voltage within this step: shorten the step
                # to land on it (linear in V), then hold; a step that lands again past
                # it (V is not linear in t) is accepted and the hold starts from there
                frac = (state.V - cc_limit) / (state.V - new.V) if state.V != new.V else 1.0
                if not landing and 0.02 < frac < 0.98 and frac * dt > 10 * dt_min:
                    dt *= frac
                    guess = state
                    landing = True
                    continue
                phase_new = "cv"
                if frac <= 0.02 and not landing:  # the step is as good as a CV step
                    rec.cursor = dataclasses.replace(rec.cursor, phase="cv")
                    guess = state
                    continue
            landing = False
            I_step = I_app if hold is None else cell.collector_current(new)
            info = cell.diagnose(
                state, new, dt, I_step, k, I_scale=None if hold is None else abs(I_app)
            )
            th_surf = cell.surface_stoichiometry(new)
            th_mean = float(np.mean(new.cs)) / c_max
            t_rec, v_rec, end = new.t, new.V, None
            surf_hit = th_surf >= lim_surf if sign > 0 else th_surf <= 1.0 - lim_surf
            v_limit = None if phase == "cv" or proto.cv_voltage is not None else cc_limit
            if (
                proto.stoichiometry_end is not None
                and sign * (th_mean - proto.stoichiometry_end) >= 0
            ):
                # the mean stoichiometry is linear in the charge passed: the crossing
                # within the step is exact in CC
                th_old = float(np.mean(state.cs)) / c_max
                frac = (proto.stoichiometry_end - th_old) / (th_mean - th_old)
                frac = min(1.0, max(0.0, frac)) if th_mean != th_old else 1.0
                t_rec, v_rec = state.t + frac * dt, state.V + frac * (new.V - state.V)
                end = (
                    f"mean stoichiometry reached the charge end {proto.stoichiometry_end:.4f} "
                    f"at V = {v_rec:.4f} V"
                )
            elif surf_hit and not crossed(new.V, v_limit):
                # the crossing, interpolated linearly in the surface stoichiometry (as the
                # cut-off is in the voltage): the end no longer depends on the step size
                th_old = cell.surface_stoichiometry(state)
                lim = lim_surf if sign > 0 else 1.0 - lim_surf
                frac = (lim - th_old) / (th_surf - th_old) if th_surf != th_old else 1.0
                frac = min(1.0, max(0.0, frac))
                t_rec, v_rec = state.t + frac * dt, state.V + frac * (new.V - state.V)
                end = (
                    f"surface stoichiometry reached the limit {lim:g} at V = {v_rec:.4f} V "
                    f"(interpolated within the last step, which ended at {th_surf:.4f})"
                )
            elif hold is not None and abs(I_step) <= proto.cv_end_current_A:
                # the end current, interpolated linearly in the current within the step
                I_old = abs(rec.history["current_A"][-1])
                gap = I_old - abs(I_step)
                frac = (I_old - proto.cv_end_current_A) / gap if gap > 0 else 1.0
                frac = min(1.0, max(0.0, frac))
                t_rec = state.t + frac * dt
                end = (
                    f"CV current fell to {proto.cv_end_current_A:.4g} A "
                    f"(held at {proto.cv_voltage:.4f} V)"
                )
            elif (
                opt.end_time_s is not None
                and new.t >= opt.end_time_s
                and not crossed(new.V, v_limit)
            ):
                end = f"end time {opt.end_time_s:g} s reached"
            elif crossed(new.V, v_limit):
                assert v_limit is not None
                frac = (state.V - v_limit) / (state.V - new.V) if state.V != new.V else 1.0
                t_rec, v_rec = state.t + frac * dt, v_limit
                end = "cut-off voltage reached"
            new_snaps: list[SnapshotData] = []
            nxt = rec.cursor.next_snapshot
            dt_new, guess_new = dt, new
            if end is None:
                while nxt < len(pending) and new.t >= pending[nxt]:
                    nxt += 1
                    new_snaps.append(snapshot(state, new, info.reaction, new.t))
                if hold is None:
                    dv = abs(new.V - state.V)
                    grow = min(2.0, max(0.3, 0.9 * opt.dv_target_V / max(dv, 1e-12)))
                else:  # constant voltage: steps aim at a relative current change
                    I_old = abs(rec.history["current_A"][-1]) or abs(I_app)
                    rel = abs(abs(I_step) - I_old) / max(I_old, 1e-300)
                    grow = min(2.0, max(0.3, 0.9 * CV_CURRENT_CHANGE / max(rel, 1e-12)))
                if not opt.jacobian_reuse:  # many full-Newton iterations: too bold a step
                    if k > 6:
                        grow = min(grow, 0.7)
                    elif k > 4:
                        grow = min(grow, 1.0)
                dt_new = min(dt * grow, dt_max)
                if phase_new != phase:
                    dt_new = min(dt_new, dt)
                    guess_new = new
                else:
                    guess_new = _extrapolate(state, new, dt_new / dt, c_max)
            # commit: append, then make current with one assignment (see module doc)
            h = rec.history
            h["time_s"].append(t_rec)
            h["voltage_V"].append(v_rec)
            h["li_error"].append(info.li_error)
            h["charge_error"].append(info.charge_error)
            h["newton"].append(k)
            h["current_A"].append(I_step)
            h["hold_V"].append(float("nan") if hold is None else float(hold))
            h["plated_mol"].append(_plated(new))
            h["dead_mol"].append(0.0 if new.dead is None else float(np.sum(new.dead)))
            rec.losses.append(info.losses)
            rec.snapshots.extend(new_snaps)
            rec.cursor = Cursor(
                new,
                state,
                guess_new,
                dt_new,
                rec.steps + 1,
                nxt,
                len(rec.snapshots),
                end,
                phase_new,
            )
            if end is not None:
                rec.status, rec.complete, rec.finished = end, True, True
            dt, guess = dt_new, guess_new
            if on_step is not None:
                cap = passed_Ah(rec)
                on_step(
                    StepProgress(
                        new.t,
                        new.V,
                        cap,
                        cap / capacity_Ah if capacity_Ah > 0 else float("nan"),
                        th_mean,
                        rec.steps,
                        new.t - state.t,
                    )
                )
            if on_fields is not None:
                on_fields(new.t, cell.step_fields(new, info.reaction))
            if end is not None:
                break
            if checkpoint is not None and checkpoint.due(rec.steps):
                sync()
                checkpoint.write(rec)
    except KeyboardInterrupt as exc:
        rec.truncate()
        if rec.cursor.end is not None:  # the last committed step ended the run
            rec.status, rec.complete, rec.finished = rec.cursor.end, True, True
        else:
            who = f"by {exc.args[0]}" if exc.args and isinstance(exc.args[0], str) else None
            rec.status = (
                f"interrupted {who or 'by the user'} after {rec.steps} steps at t = "
                f"{rec.state.t:.6g} s, V = {rec.state.V:.4f} V"
            )
        sync()
        if checkpoint is not None:
            checkpoint.write(rec)
        raise
    sync()
    if checkpoint is not None:
        checkpoint.write(rec)
    return rec


def final_snapshot(
    cell: HalfCell, rec: RunRecord, *, loss_maps: bool = True
) -> SnapshotData | None:
    """Fields at the last accepted state (None before the first step)."""
    if rec.cursor.prev is None:
        return None
    s = rec.state
    reaction = cell.reaction(s.ce, s.pe, s.ps, s.cs, derivatives=False)[0]
    fields = cell.fields(s, reaction)
    outside: dict[str, float] = {}
    if loss_maps:
        maps, outside = loss_density(cell, rec.cursor.prev, s)
        fields.update(maps)
    return SnapshotData(float(rec.history["time_s"][-1]), fields, outside)


def _extrapolate(a: State, b: State, r: float, c_max: float) -> State:
    """Linear extrapolation of the state (Newton's first guess for the next step)."""
    r = min(r, 1.0)
    return State(
        b.t,
        np.maximum(b.ce + r * (b.ce - a.ce), 0.5 * b.ce),
        b.pe + r * (b.pe - a.pe),
        b.ps + r * (b.ps - a.ps),
        np.clip(b.cs + r * (b.cs - a.cs), 0.5 * b.cs, 0.5 * (b.cs + c_max)),
        b.V + r * (b.V - a.V),
        b.pl,
        b.dead,
    )


def _plated(s: State) -> float:
    """Plated plus dead lithium of a state (mol; 0 without plating)."""
    if s.pl is None:
        return 0.0
    return float(np.sum(s.pl)) + (0.0 if s.dead is None else float(np.sum(s.dead)))


def record_arrays(rec: RunRecord) -> dict[str, Any]:
    """The record's history as arrays (for the result)."""
    h = rec.history
    return {
        "time_s": np.array(h["time_s"], dtype=float),
        "voltage_V": np.array(h["voltage_V"], dtype=float),
        "li_error": np.array(h["li_error"], dtype=float),
        "charge_error": np.array(h["charge_error"], dtype=float),
        "newton": np.array(h["newton"], dtype=int),
        "current_A": np.array(h["current_A"], dtype=float),
        "hold_V": np.array(h["hold_V"], dtype=float),
        "plated_mol": np.array(h.get("plated_mol", [0.0] * len(h["time_s"])), dtype=float),
        "dead_mol": np.array(h.get("dead_mol", [0.0] * len(h["time_s"])), dtype=float),
    }
