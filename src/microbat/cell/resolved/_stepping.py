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
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np

from microbat.cell.resolved._lossmap import loss_density
from microbat.cell.resolved._model import HalfCell, State
from microbat.cell.resolved._params import FARADAY
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
    ends = _Ends(cell, proto, I_app)
    dt = rec.cursor.dt
    guess = rec.cursor.guess
    landing = False  # the step was shortened to land on the CC→CV switch
    dt_failed: float | None = None  # the last step size Newton failed on
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
                dt_failed = dt
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
            v_limit = None if phase == "cv" or proto.cv_voltage is not None else cc_limit
            I_old = abs(rec.history["current_A"][-1]) if hold is not None else 0.0
            g_old = ends.values(state, I_old, hold)
            g_new = ends.values(new, abs(I_step), hold)
            # the events reached within the step, with their crossing (linear in the step)
            crossed_ends = [
                (min(1.0, g_old[n] / (g_old[n] - g)) if g != g_old[n] else 1.0, n)
                for n, g in g_new.items()
                if g >= 0
            ]
            end = None
            err_surf, err_pl = _step_error(cell, rec.cursor.prev, state, new, abs(I_app))
            if g_new["surface"] < -SURFACE_NEAR:  # far from saturation: the voltage rules
                err_surf = 0.0
            if crossed_ends and max(err_surf, err_pl) > 4.0 and dt > 40 * dt_min:
                # the step that reaches the end is too long to be accurate there (the
                # surface saturates, plating accelerates): approach it with a shorter one
                dt *= max(0.3, 0.9 / math.sqrt(max(err_surf, err_pl)))
                guess = _blend(state, new, dt / (new.t - state.t))
                continue
            if crossed_ends:
                # the charge or discharge ended inside this step: solve the step again
                # to the earliest event (secant on its event function), so that the
                # last record, its fields and every amount refer to the same instant
                frac, name = min(crossed_ends)
                new, dt, k_end = ends.locate(name, state, new, dt, frac, g_old[name], hold)
                k += k_end
                I_step = I_app if hold is None else cell.collector_current(new)
                end = ends.describe(name, new)
            elif (
                opt.end_time_s is not None
                and new.t >= opt.end_time_s
                and not crossed(new.V, v_limit)
            ):
                end = f"end time {opt.end_time_s:g} s reached"
            info = cell.diagnose(
                state, new, dt, I_step, k, I_scale=None if hold is None else abs(I_app)
            )
            th_mean = float(np.mean(new.cs)) / c_max
            t_rec, v_rec = new.t, new.V
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
                # and no bolder than backward Euler's local error allows
                grow = min(grow, 0.9 / math.sqrt(max(err_surf, err_pl, 1e-12)))
                # after a failed step, grow back towards it only slowly (a step twice
                # the retried one failed again and again as a 3C charge saturated)
                if dt_failed is not None:
                    dt_failed *= 1.25
                    grow = min(grow, max(1.0, 0.5 * dt_failed / dt))
                    if dt * grow >= dt_failed:
                        dt_failed = None
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


class _Ends:
    """The events that end a run, as functions of a state, and their location in a step.

    Every event is a function ``g`` of the state that is negative before the event
    and reaches 0 at it: the mean stoichiometry of the active voxels reaching the
    protocol's end (``"stoichiometry"``), the reaction-area-weighted surface
    stoichiometry reaching ``options.surface_stoichiometry_limit`` (``"surface"``),
    the voltage limit of a constant-current run (``"voltage"``), during a
    constant-voltage hold the current falling to its end (``"cv_end"``), and the
    lowest salt concentration of a liquid electrolyte falling to
    ``options.electrolyte_depletion_limit`` × ``c_e0`` (``"electrolyte"``, as the
    logarithm of their ratio: the depletion is close to exponential in time, so the
    secant finds it in few solves).
    """

    #: |g| at which a located end is accepted (stoichiometries, volts, × the end current)
    TOL: ClassVar[Mapping[str, float]] = {
        "stoichiometry": 1e-10,
        "surface": 1e-6,
        "voltage": 2e-10,
        "cv_end": 1e-7,
        "electrolyte": 1e-2,
    }
    #: Newton solves spent on locating one end before the last bracket is taken
    MAX_SOLVES = 8

    def __init__(self, cell: HalfCell, proto: Protocol, I_app: float) -> None:
        self.cell = cell
        self.proto = proto
        self.I_app = I_app
        self.c_max = cell.par.c_max
        lim = cell.opt.surface_stoichiometry_limit
        self.surface_end = lim if proto.sign > 0 else 1.0 - lim
        # a voltage limit ends the constant-current phase only without a CV hold
        self.v_limit = proto.voltage_limit if proto.cv_voltage is None else None
        dep = cell.opt.electrolyte_depletion_limit
        liquid = not cell.dom.solid_electrolyte and cell.nE > 0
        self.ce_floor = dep * cell.par.c_e0 if liquid and dep > 0 else None

    def values(self, s: State, current: float, hold: float | None) -> dict[str, float]:
        """``g`` of every event that can end the run now (``current``: |I| of the step)."""
        sign = self.proto.sign
        out: dict[str, float] = {}
        if self.proto.stoichiometry_end is not None:
            th_mean = float(np.mean(s.cs)) / self.c_max
            out["stoichiometry"] = sign * (th_mean - self.proto.stoichiometry_end)
        out["surface"] = sign * (self.cell.surface_stoichiometry(s) - self.surface_end)
        if self.ce_floor is not None:
            out["electrolyte"] = math.log(self.ce_floor / max(float(np.min(s.ce)), 1e-300))
        if hold is not None:
            out["cv_end"] = (self.proto.cv_end_current_A - current) / max(
                self.proto.cv_end_current_A, 1e-300
            )
        elif self.v_limit is not None:
            out["voltage"] = sign * (self.v_limit - s.V)
        return out

    def value(self, name: str, s: State, hold: float | None) -> float:
        current = abs(self.cell.collector_current(s)) if hold is not None else abs(self.I_app)
        return self.values(s, current, hold)[name]

    def locate(
        self,
        name: str,
        old: State,
        new: State,
        dt: float,
        frac: float,
        g_old: float,
        hold: float | None,
    ) -> tuple[State, float, int]:
        """Solve the step ``old → old.t + s dt`` again with ``s`` at the event ``name``.

        Regula falsi with the Illinois modification on the step fraction ``s``,
        bracketed by the step's start (``g < 0``) and end (``g ≥ 0``), from the linear
        estimate ``frac``: the secant's superlinear convergence where ``g`` is smooth,
        the bracket's safety where it is not. Each try is a backward-Euler step of the
        same equations from ``old`` (Newton's guess interpolated between the
        bracketing states), so the located state is a converged state like any other.
        Returns the state at the event (``|g|`` within :attr:`TOL`, or the closest
        try past it if that is not reached within :attr:`MAX_SOLVES` solves or a try
        fails to converge), its step size and the Newton iterations spent.
        """
        tol = self.TOL[name]
        lo_s, lo_g, lo_state = 0.0, g_old, old
        hi_s, hi_g, hi_state = 1.0, self.value(name, new, hold), new
        s, side, k_total = frac, 0, 0
        for _ in range(self.MAX_SOLVES):
            if not lo_s < s < hi_s:
                s = 0.5 * (lo_s + hi_s)
            w = (s - lo_s) / (hi_s - lo_s)
            guess = _blend(lo_state, hi_state, w)
            try:
                cand, k = self.cell.newton(old, s * dt, self.I_app, guess, hold_V=hold)
            except ConvergenceError:
                break
            k_total += k
            g = self.value(name, cand, hold)
            if abs(g) <= tol:
                return cand, s * dt, k_total
            if g > 0:
                hi_s, hi_g, hi_state = s, g, cand
                if side > 0:  # the same end moved twice: halve the other's weight
                    lo_g *= 0.5
                side = 1
            else:
                lo_s, lo_g, lo_state = s, g, cand
                if side < 0:
                    hi_g *= 0.5
                side = -1
            s = lo_s + (hi_s - lo_s) * lo_g / (lo_g - hi_g)
        return hi_state, hi_state.t - old.t, k_total

    def describe(self, name: str, s: State) -> str:
        """The status line of a run that ended on ``name`` at ``s``."""
        p = self.proto
        if name == "stoichiometry":
            return (
                f"mean stoichiometry reached the charge end {p.stoichiometry_end:.4f} "
                f"at V = {s.V:.4f} V"
            )
        if name == "surface":
            return (
                f"surface stoichiometry reached the limit {self.surface_end:g} at V = {s.V:.4f} V"
            )
        if name == "electrolyte":
            return (
                f"electrolyte depleted: the lowest salt concentration fell to "
                f"{self.ce_floor:.3g} mol/m³ "
                f"({self.cell.opt.electrolyte_depletion_limit:g} of the initial) at "
                f"V = {s.V:.4f} V; the pores cannot carry the current further"
            )
        if name == "cv_end":
            return f"CV current fell to {p.cv_end_current_A:.4g} A (held at {p.cv_voltage:.4f} V)"
        return "cut-off voltage reached"


#: Local-error tolerances of the step-size control (:func:`_step_error`): the
#: reaction-area-weighted surface stoichiometry (absolute), and the plated lithium of a
#: step (relative to the step's increment)
SURFACE_TOL = 1e-3
PLATED_RTOL = 0.02
#: The surface-stoichiometry error counts within this distance of its end event
SURFACE_NEAR = 0.05


def _step_error(
    cell: HalfCell, prev: State | None, old: State, new: State, current: float
) -> tuple[float, float]:
    """Local errors of the step ``old → new`` over their tolerances (≤ 1: accurate).

    Backward Euler's local error is ``Δt² x''/2``; with the linear extrapolation
    ``x_p`` of the last two states (``prev``, ``old``) as the predictor, the corrector
    ``x`` differs from it by ``Δt (2Δt + Δt_p) x''/2``, so the error is estimated as
    ``|x − x_p| Δt / (2Δt + Δt_p)`` (the predictor–corrector estimate of variable-step
    BDF codes; Hairer & Wanner, *Solving ODEs II*, §III.7; Brenan, Campbell & Petzold,
    *Numerical Solution of IVPs in DAEs*, 1996, §5.2). Measured on what the end
    of a run and its plated amount depend on: the area-weighted surface stoichiometry
    (against :data:`SURFACE_TOL`) and, with plating, the plated lithium (against
    :data:`PLATED_RTOL` of the step's increment, at least 1 % of the lithium the step
    passes at ``current``), whose rate grows exponentially as η_pl falls. Returns
    ``(surface, plated)``; 0 at the first step (no predictor) and without plating.
    Both limit every step's growth (the surface term only within
    :data:`SURFACE_NEAR` of its end event, where the end depends on it), and either
    rejects a step that reaches the run's end with more than 4× its tolerance.
    """
    if prev is None:
        return 0.0, 0.0
    dt, dt_p = new.t - old.t, old.t - prev.t
    if dt <= 0 or dt_p <= 0:
        return 0.0, 0.0
    w = dt / (2.0 * dt + dt_p)

    def lte(x0: float, x1: float, x2: float) -> float:
        return abs(x2 - (x1 + (x1 - x0) * dt / dt_p)) * w

    th = [cell.surface_stoichiometry(s) for s in (prev, old, new)]
    err_surf, err_pl = lte(*th) / SURFACE_TOL, 0.0
    if new.pl is not None and prev.pl is not None:
        pl = [_plated(s) for s in (prev, old, new)]
        # relative to the step's increment, but no finer than 1 % of the lithium the
        # step passes (an exponentially small plating rate needs no resolving)
        scale = max(abs(pl[2] - pl[1]), 0.01 * current * dt / FARADAY)
        err_pl = lte(*pl) / (PLATED_RTOL * scale)
    return err_surf, err_pl


def _blend(a: State, b: State, w: float) -> State:
    """The state a fraction ``w`` of the way from ``a`` to ``b`` (Newton's guess)."""
    return State(
        a.t + w * (b.t - a.t),
        a.ce + w * (b.ce - a.ce),
        a.pe + w * (b.pe - a.pe),
        a.ps + w * (b.ps - a.ps),
        a.cs + w * (b.cs - a.cs),
        a.V + w * (b.V - a.V),
        a.pl,
        a.dead,
    )


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
