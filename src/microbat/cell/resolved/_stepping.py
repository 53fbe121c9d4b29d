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

import time
from collections.abc import Callable, Mapping, Sequence
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

    dt = rec.cursor.dt
    guess = rec.cursor.guess
    try:
        while not rec.finished:
            if rec.steps >= opt.max_steps:
                rec.status = "max_steps"
                break
            state = rec.state
            try:
                new, k = cell.newton(state, dt, I_app, guess)
            except ConvergenceError as exc:
                dt *= 0.25
                guess = state
                if dt < dt_min:
                    rec.status = (
                        f"solver failed at t = {state.t:.6g} s, V = {state.V:.4f} V, surface "
                        f"stoichiometry {cell.surface_stoichiometry(state):.4f}: {exc}"
                    )
                    rec.finished = True
                    break
                continue
            info = cell.diagnose(state, new, dt, I_app, k)
            th_surf = cell.surface_stoichiometry(new)
            t_rec, v_rec, end = new.t, new.V, None
            if th_surf >= opt.surface_stoichiometry_limit and new.V > cutoff:
                # the crossing, interpolated linearly in the surface stoichiometry (as the
                # cut-off is in the voltage): the end no longer depends on the step size
                th_old = cell.surface_stoichiometry(state)
                lim = opt.surface_stoichiometry_limit
                frac = (lim - th_old) / (th_surf - th_old) if th_surf > th_old else 1.0
                frac = min(1.0, max(0.0, frac))
                t_rec, v_rec = state.t + frac * dt, state.V + frac * (new.V - state.V)
                end = (
                    f"surface stoichiometry reached the limit {lim:g} at V = {v_rec:.4f} V "
                    f"(interpolated within the last step, which ended at {th_surf:.4f})"
                )
            elif opt.end_time_s is not None and new.t >= opt.end_time_s and new.V > cutoff:
                end = f"end time {opt.end_time_s:g} s reached"
            elif new.V <= cutoff:
                frac = (state.V - cutoff) / (state.V - new.V) if state.V != new.V else 1.0
                t_rec, v_rec = state.t + frac * dt, cutoff
                end = "cut-off voltage reached"
            new_snaps: list[SnapshotData] = []
            nxt = rec.cursor.next_snapshot
            dt_new, guess_new = dt, new
            if end is None:
                while nxt < len(pending) and new.t >= pending[nxt]:
                    nxt += 1
                    new_snaps.append(snapshot(state, new, info.reaction, new.t))
                dv = abs(new.V - state.V)
                grow = min(2.0, max(0.3, 0.9 * opt.dv_target_V / max(dv, 1e-12)))
                if not opt.jacobian_reuse:  # many full-Newton iterations: too bold a step
                    if k > 6:
                        grow = min(grow, 0.7)
                    elif k > 4:
                        grow = min(grow, 1.0)
                dt_new = min(dt * grow, dt_max)
                guess_new = _extrapolate(state, new, dt_new / dt, c_max)
            # commit: append, then make current with one assignment (see module doc)
            h = rec.history
            h["time_s"].append(t_rec)
            h["voltage_V"].append(v_rec)
            h["li_error"].append(info.li_error)
            h["charge_error"].append(info.charge_error)
            h["newton"].append(k)
            rec.losses.append(info.losses)
            rec.snapshots.extend(new_snaps)
            rec.cursor = Cursor(
                new, state, guess_new, dt_new, rec.steps + 1, nxt, len(rec.snapshots), end
            )
            if end is not None:
                rec.status, rec.complete, rec.finished = end, True, True
            dt, guess = dt_new, guess_new
            if on_step is not None:
                cap = I_app * new.t / 3600.0
                on_step(
                    StepProgress(
                        new.t,
                        new.V,
                        cap,
                        cap / capacity_Ah if capacity_Ah > 0 else float("nan"),
                        float(np.mean(new.cs)) / c_max,
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
    )


def record_arrays(rec: RunRecord) -> dict[str, Any]:
    """The record's history as arrays (for the result)."""
    h = rec.history
    return {
        "time_s": np.array(h["time_s"], dtype=float),
        "voltage_V": np.array(h["voltage_V"], dtype=float),
        "li_error": np.array(h["li_error"], dtype=float),
        "charge_error": np.array(h["charge_error"], dtype=float),
        "newton": np.array(h["newton"], dtype=int),
    }
