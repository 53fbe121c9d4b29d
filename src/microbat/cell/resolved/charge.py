r"""Charging a microstructure-resolved electrode against lithium metal (CC, CC–CV).

The same half cell as :func:`~microbat.cell.resolved.simulate_discharge` (equations in
``docs/resolved.md``), driven the other way round in the *full cell's* sense of a
charge: the positive electrode delithiates, the negative electrode lithiates. The
current of a charge is negative in the cell convention (discharge positive); the
half cell's working electrode carries a cathodic (lithiating) current when the image
is a negative electrode and an anodic (delithiating) one when it is a positive.

Protocols
---------
* constant current (CC) from the set's discharged state to the charge end;
* constant current, then constant voltage (CC–CV): the CC phase runs until the
  electrode potential (vs Li/Li⁺) reaches ``cv_voltage``; the potential is then held
  there (potentiostatic backward-Euler steps: the galvanostatic row of the Newton
  system is replaced by ``V = V_cv``) until the current falls to
  ``cv_end_c_rate`` × the 1C current (C/20 by default), the charge end or
  ``options.end_time_s``.

Charge end ("4.2 V-equivalent")
-------------------------------
* negative electrode: the mean stoichiometry of the (connected) active voxels
  reaches the stoichiometry the set's graphite has at the full cell's upper cut-off
  voltage, ``x_100`` of the set's stoichiometry window (PyBaMM's
  ``get_min_max_stoichiometries``: the window of the full cell between its cut-off
  voltages at the set's cyclable lithium; Chen2020: ``x_0`` = 0.0263,
  ``x_100`` = 0.9106); optionally also a lower potential limit ``voltage_limit_V``.
  By default there is no potential limit: a fast charge drives the graphite below
  0 V vs Li/Li⁺ (lithium plating becomes possible), which is what it is run for;
* positive electrode: the upper cut-off voltage of the set (``voltage_limit_V``).

Either end also by the area-weighted surface stoichiometry of the interface voxels
reaching ``options.surface_stoichiometry_limit`` (0.99; on delithiation 1 − 0.99),
as in a discharge. The start is the set's discharged state (``x_0``; ``y_0`` for a
positive electrode) unless ``initial_stoichiometry`` is given.

1C of a charge: the current that moves the electrode through its window in one hour,
``Q_th |θ_end − θ_start|`` with the window of the set (negative: ``x_100 − x_0``;
positive: ``y_0`` to the stoichiometry at which the OCP reaches the upper cut-off),
``Q_th`` the theoretical capacity of the image's active voxels.

References
----------
.. [1] C.-H. Chen et al., "Development of experimental techniques for
   parameterization of multi-scale lithium-ion battery models", J. Electrochem. Soc.
   167, 080534 (2020), doi:10.1149/1945-7111/ab9050 (window, default parameters).
.. [2] S. G. Marquis et al., "A suite of reduced-order models of a single-layer
   lithium-ion pouch cell", J. Electrochem. Soc. 167, 140513 (2020),
   doi:10.1149/1945-7111/abbce4 (the stoichiometry window from the cut-off voltages,
   as PyBaMM computes it).
"""

from __future__ import annotations

import csv
import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from microbat.cell.resolved._checkpoint import Checkpointer, checkpoint_file, problem_fingerprint
from microbat.cell.resolved._model import ResolvedOptions
from microbat.cell.resolved._params import FARADAY, ResolvedParameters
from microbat.cell.resolved._stepping import Protocol, RunRecord, StepProgress, run_discharge
from microbat.cell.resolved.discharge import (
    DischargeInterrupted,
    ResolvedDischargeResult,
    _build_cell,
    _result_fields,
    cell_and_resolved,
)
from microbat.core.errors import InvalidInputError
from microbat.core.microstructure import Microstructure

__all__ = [
    "ChargeInterrupted",
    "ResolvedChargeResult",
    "simulate_charge",
    "stoichiometry_window",
]


@dataclass(frozen=True)
class ResolvedChargeResult(ResolvedDischargeResult):
    """Outcome of a resolved charge (constant current, or CC then constant voltage).

    All fields of :class:`ResolvedDischargeResult`, with the cell's sign convention
    (discharge positive): ``current_A`` (the CC current) and ``discharged_Ah`` are
    negative, ``capacity_Ah`` is the charge accepted (positive) and ``energy_Wh`` the
    energy put in (∫ V |I| dt, positive); ``voltage_V`` is the electrode's potential
    vs Li/Li⁺. Conservation errors are relative to the CC current (also in the CV
    phase). Besides:

    Attributes
    ----------
    electrode : str
        ``"negative"`` (lithiated on charge) or ``"positive"`` (delithiated).
    protocol : str
        ``"CC"`` or ``"CCCV"``.
    cell_current_A : ndarray
        Current of every step (cell convention, negative on charge; 0 at rest).
    charged_Ah : ndarray
        Charge accepted up to every curve point (A·h, positive).
    cv_voltage_V : float or None
        Voltage of the CV hold.
    cv_start_s : float or None
        Time at which the CV hold began (None: never reached).
    cv_end_current_A : float or None
        Current magnitude that ends the CV hold.
    initial_stoichiometry : float
        Stoichiometry of the active material at rest.
    end_stoichiometry : float or None
        Mean stoichiometry that ends the charge (negative: ``x_100`` of the set).
    voltage_limit_V : float or None
        Potential limit of the CC phase without a CV hold (positive: the upper
        cut-off; negative: none unless given).
    final_mean_stoichiometry : float
        Mean stoichiometry of the connected active voxels at the end.
    plating : str
        The plating option of the run (``"none"`` without the side reaction).
    plated_Li_mol, dead_Li_mol : ndarray
        Plated lithium (including dead) and dead lithium at every curve point, mol.
    plated_Ah : float
        Lithium inventory held as plated (and dead) lithium at the end, in A·h.
    """

    electrode: str = "negative"
    protocol: str = "CC"
    cell_current_A: np.ndarray = field(default_factory=lambda: np.zeros(0))
    charged_Ah: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cv_voltage_V: float | None = None
    cv_start_s: float | None = None
    cv_end_current_A: float | None = None
    initial_stoichiometry: float = float("nan")
    end_stoichiometry: float | None = None
    voltage_limit_V: float | None = None
    final_mean_stoichiometry: float = float("nan")
    plating: str = "none"
    plated_Li_mol: np.ndarray = field(default_factory=lambda: np.zeros(0))
    dead_Li_mol: np.ndarray = field(default_factory=lambda: np.zeros(0))
    plated_Ah: float = 0.0

    def save_curve(self, path: str | Path) -> Path:
        """Write the charge curve and per-step breakdown as CSV (atomically).

        Columns ``time_s``, ``charged_Ah``, ``current_A`` (cell convention, negative),
        ``voltage_V``, ``phase`` (CC/CV), conservation errors, the breakdown and
        ``partial``.
        """
        from microbat.core.atomic import atomic_path

        keys = list(self.breakdown_V)
        flag = "true" if self.partial else "false"
        cv_from = self.cv_start_s if self.cv_start_s is not None else math.inf
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(
                ["time_s", "charged_Ah", "current_A", "voltage_V", "phase", "li_error"]
                + ["charge_error"]
                + [f"{k}_V" for k in keys]
                + ["partial"]
            )
            for i in range(self.time_s.size):
                row = [
                    f"{self.time_s[i]:.9g}",
                    f"{self.charged_Ah[i]:.9g}",
                    f"{self.cell_current_A[i]:.9g}",
                    f"{self.voltage_V[i]:.9g}",
                    "CV" if i > 0 and self.time_s[i - 1] >= cv_from else "CC",
                    f"{self.li_error[i]:.3e}",
                    f"{self.charge_error[i]:.3e}",
                ]
                row += [f"{self.breakdown_V[k][i - 1]:.6g}" if i > 0 else "" for k in keys]
                w.writerow([*row, flag])
        return Path(path)


class ChargeInterrupted(DischargeInterrupted):
    """Ctrl-C during :func:`simulate_charge`; ``result`` is the partial charge result."""


def stoichiometry_window(params: Any = None) -> dict[str, tuple[float, float]]:
    """The stoichiometry window of a parameter set between its cut-off voltages.

    Parameters
    ----------
    params : CellParameters or str, optional
        The set (default ``"chen2020"``).

    Returns
    -------
    dict
        ``{"negative": (x_0, x_100), "positive": (y_100, y_0)}``: the stoichiometries
        at the full cell's lower (index 0) and upper (100) cut-off voltage with the
        set's cyclable lithium, from PyBaMM's ``get_min_max_stoichiometries``.

    Raises
    ------
    InvalidInputError
        If the set does not define the window (e.g. it lacks one electrode).
    """
    from microbat.cell._pybamm import import_pybamm
    from microbat.cell.parameters import CellParameters, load_parameters

    if params is None:
        params = "chen2020"
    if isinstance(params, str | Path):
        params = load_parameters(params)
    if not isinstance(params, CellParameters):
        raise InvalidInputError(
            f"the stoichiometry window needs a CellParameters or a set name, got "
            f"{type(params).__name__}; give initial_stoichiometry (and end_stoichiometry)"
        )
    pybamm = import_pybamm()
    try:
        x0, x100, y100, y0 = (
            float(v) for v in pybamm.lithium_ion.get_min_max_stoichiometries(params.to_pybamm())
        )
    except Exception as exc:  # PyBaMM raises KeyError/ValueError/SolverError alike
        raise InvalidInputError(
            f"parameter set {params.name!r} has no stoichiometry window between its cut-off "
            f"voltages ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            "give initial_stoichiometry and end_stoichiometry"
        ) from None
    return {"negative": (x0, x100), "positive": (y100, y0)}


def simulate_charge(
    ms: Microstructure,
    params: Any = None,
    *,
    c_rate: float = 1.0,
    electrode: str = "negative",
    cv_voltage: float | None = None,
    cv_end_c_rate: float = 0.05,
    initial_stoichiometry: float | None = None,
    end_stoichiometry: float | None = None,
    voltage_limit_V: float | None = None,
    options: ResolvedOptions | None = None,
    snapshot_times: Sequence[float] | None = None,
    progress: Callable[[float, float, float], None] | None = None,
    on_step: Callable[[StepProgress], None] | None = None,
    on_fields: Callable[[float, Mapping[str, np.ndarray]], None] | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    checkpoint_every: int | None = None,
    checkpoint_interval_s: float | None = 60.0,
) -> ResolvedChargeResult:
    """Charge a resolved electrode against lithium metal (CC, or CC then CV).

    Parameters
    ----------
    ms : Microstructure
        3D labelled electrode; index 0 of the thickness axis touches the collector.
    params : CellParameters, ResolvedParameters or str, optional
        Parameter set (default ``"chen2020"``: graphite negative, NMC811 positive).
        A ``ResolvedParameters`` has no stoichiometry window: then give
        ``initial_stoichiometry`` (and ``end_stoichiometry`` for a negative electrode).
    c_rate : float, default 1
        Charge rate (positive); 1C moves the electrode through the set's window in one
        hour (module docstring).
    electrode : {"negative", "positive"}, default "negative"
        Which electrode of the set the image is. A negative electrode lithiates on
        charge, a positive one delithiates.
    cv_voltage : float, optional
        CC–CV: hold the electrode potential (V vs Li/Li⁺) here once the CC phase
        reaches it (below the rest potential for a negative electrode, above for a
        positive one). Without it the charge is CC only.
    cv_end_c_rate : float, default 0.05
        The CV hold ends when the current falls to this C-rate (C/20).
    initial_stoichiometry : float, optional
        Rest stoichiometry of the active material (default: the set's discharged
        state, ``x_0`` or ``y_0``).
    end_stoichiometry : float, optional
        Mean stoichiometry ending the charge (default for a negative electrode
        ``x_100``, the "4.2 V-equivalent" end; none for a positive one).
    voltage_limit_V : float, optional
        Potential ending the CC phase when there is no CV hold (default: the set's
        upper cut-off for a positive electrode, none for a negative one).
    options : ResolvedOptions, optional
        Model and solver options (``cutoff_V`` is the discharge's and must be unset).
    snapshot_times, progress, on_step, on_fields, checkpoint, resume, checkpoint_every,
    checkpoint_interval_s
        As for :func:`~microbat.cell.resolved.simulate_discharge` (``on_fields``: the
        per-step field hook, called after every accepted step with the time and the
        image-grid fields ``phi_s``, ``phi_e``, ``c_e``, ``stoichiometry``, ``c_s``,
        ``reaction_current``).

    Returns
    -------
    ResolvedChargeResult

    Raises
    ------
    InvalidInputError
        A C-rate ≤ 0; a charge from a state at or past the charge end (a negative
        electrode already lithiated to ``end_stoichiometry``, a positive one already
        delithiated to its cut-off); a CV or limit voltage already passed at rest; a
        set without the requested electrode; bad options. Raised before any file is
        written.
    ChargeInterrupted
        ``KeyboardInterrupt`` during the run; ``result`` is the partial result.

    Examples
    --------
    >>> from microbat.synth.phantoms import sphere
    >>> ms = sphere((8, 8, 8), 3.0, voxel_size=1e-6, center=(3.5, 4, 4))
    >>> res = simulate_charge(ms, c_rate=3.0, cv_voltage=0.01)  # doctest: +SKIP
    >>> res.protocol, res.capacity_Ah > 0  # doctest: +SKIP
    ('CCCV', True)
    """
    t_start = time.perf_counter()
    opt = options or ResolvedOptions()
    if not isinstance(ms, Microstructure):
        raise InvalidInputError(
            f"simulate_charge needs a Microstructure, got {type(ms).__name__}; wrap a "
            "labelled array with microbat.Microstructure(labels, voxel_size, phases)"
        )
    if not (isinstance(c_rate, int | float) and math.isfinite(c_rate) and 1e-4 <= c_rate <= 100):
        raise InvalidInputError(
            f"c_rate = {c_rate!r}; give the charge rate as a positive C-rate up to 100"
        )
    if electrode not in ("positive", "negative"):
        raise InvalidInputError(f"electrode must be 'positive' or 'negative', got {electrode!r}")
    if opt.cutoff_V is not None:
        raise InvalidInputError(
            "options.cutoff_V is the discharge's lower cut-off; give a charge's potential "
            "limit as voltage_limit_V (or a CV hold as cv_voltage)"
        )
    if not (isinstance(cv_end_c_rate, int | float) and 0 < cv_end_c_rate < c_rate):
        raise InvalidInputError(
            f"cv_end_c_rate = {cv_end_c_rate!r}; give a C-rate between 0 and c_rate"
        )
    if resume and checkpoint is None:
        raise InvalidInputError("resume=True needs checkpoint= (the file or folder to resume)")
    for name, v in (("cv_voltage", cv_voltage), ("voltage_limit_V", voltage_limit_V)):
        if v is not None and not (isinstance(v, int | float) and math.isfinite(v) and -1 < v < 6):
            raise InvalidInputError(f"{name} = {v!r}; give a potential vs Li/Li+ in volts")

    cell_params, par = cell_and_resolved(params, electrode)
    sign = 1 if electrode == "negative" else -1
    window = None
    if initial_stoichiometry is None or (sign > 0 and end_stoichiometry is None):
        if cell_params is None:
            raise InvalidInputError(
                "a ResolvedParameters has no stoichiometry window; give initial_stoichiometry "
                "(and end_stoichiometry for a negative electrode), or pass the CellParameters"
            )
        window = stoichiometry_window(cell_params)
    th0 = float(
        initial_stoichiometry
        if initial_stoichiometry is not None
        else (window["negative"][0] if sign > 0 else window["positive"][1])  # type: ignore[index]
    )
    if not (0.0 < th0 < 1.0):
        raise InvalidInputError(f"initial_stoichiometry = {th0!r} must lie strictly in (0, 1)")
    th_end = end_stoichiometry
    if th_end is None and sign > 0:
        th_end = window["negative"][1]  # type: ignore[index]
    limit = voltage_limit_V
    if limit is None and sign < 0 and cv_voltage is None:
        limit = par.upper_cutoff
    U0 = float(par.ocp(np.array([th0]))[0])
    what = "lithiated" if sign > 0 else "delithiated"
    if th_end is not None:
        if not (0.0 < th_end <= 1.0):
            raise InvalidInputError(f"end_stoichiometry = {th_end!r} must lie in (0, 1]")
        if sign * (th0 - th_end) >= 0:
            raise InvalidInputError(
                f"nothing to charge: the {electrode} electrode starts fully {what} "
                f"(stoichiometry {th0:.4f}, charge end {th_end:.4f}); start from a "
                f"{'lower' if sign > 0 else 'higher'} initial_stoichiometry"
            )
    for name, v in (("cv_voltage", cv_voltage), ("voltage limit", limit)):
        if v is not None and sign * (U0 - v) <= 0:
            raise InvalidInputError(
                f"the {name} {v:.4g} V is already {'reached' if U0 == v else 'passed'} at "
                f"rest (open-circuit potential {U0:.4g} V at stoichiometry {th0:.4f}: fully "
                f"{what} for this limit); a charge {'lowers' if sign > 0 else 'raises'} the "
                f"{electrode} electrode's potential"
            )
    # the stoichiometry where the OCP reaches the positive's limit (its charge end)
    if sign > 0:
        th_full = float(th_end)  # type: ignore[arg-type]
    else:
        v_end = cv_voltage if cv_voltage is not None else limit
        th_full = _ocp_crossing(par, th0, float(v_end)) if v_end is not None else 0.0  # type: ignore[arg-type]
        if th_end is not None:
            th_full = max(th_full, float(th_end))
        if th_full >= th0:
            raise InvalidInputError(
                f"nothing to charge: the positive electrode starts fully delithiated "
                f"(stoichiometry {th0:.4f}); start from a higher initial_stoichiometry"
            )
    par = dataclasses.replace(par, c_s0=th0 * par.c_max)
    cell, area_scale, q_theory, n_active_all = _build_cell(ms, par, opt)
    if window is not None:
        lo, hi = window[electrode]
        one_c = q_theory * (hi - lo) if sign > 0 else q_theory * (hi - th_full)
    else:
        one_c = q_theory * abs(th_full - th0)
    one_c = max(one_c, 1e-3 * q_theory)
    I_cc = float(c_rate) * one_c
    I_app = sign * I_cc  # the working electrode's lithiation current
    t_nom = 3600.0 / float(c_rate)
    if snapshot_times is None:
        snapshot_times = [0.25 * t_nom, 0.5 * t_nom, 0.75 * t_nom]
    snapshot_times = sorted(float(t) for t in snapshot_times)
    proto = Protocol(
        sign=sign,
        voltage_limit=None if cv_voltage is not None else limit,
        cv_voltage=None if cv_voltage is None else float(cv_voltage),
        cv_end_current_A=float(cv_end_c_rate) * one_c if cv_voltage is not None else 0.0,
        stoichiometry_end=None if th_end is None else float(th_end),
    )
    cutoff_key = limit if limit is not None else (cv_voltage if cv_voltage is not None else -1.0)

    ckpt: Checkpointer | None = None
    if checkpoint is not None:
        fp = problem_fingerprint(
            ms, par, opt,
            c_rate=float(c_rate), cutoff=float(cutoff_key), electrode=electrode,
            snapshot_times=snapshot_times,
            protocol={"charge": True, **dataclasses.asdict(proto)},
        )  # fmt: skip
        ckpt = Checkpointer(
            checkpoint_file(checkpoint), fp, checkpoint_every, checkpoint_interval_s
        )
    if resume and ckpt is not None:
        rec = ckpt.read()
    else:
        rec = RunRecord.start(cell, opt.dt_initial_s or t_nom / 400, I_guess=I_app)

    def step_hook(info: StepProgress) -> None:
        if progress is not None:
            progress(info.time_s, info.voltage_V, info.capacity_Ah)
        if on_step is not None:
            on_step(info)

    setup_s = time.perf_counter() - t_start

    def build() -> ResolvedChargeResult:
        base = _result_fields(
            ms, par, opt, cell, rec, ckpt,
            c_rate=float(c_rate), I_app=I_app, one_c=one_c, q_theory=q_theory,
            n_active_all=n_active_all, area_scale=area_scale, cutoff=float(cutoff_key),
            electrode=electrode, setup_s=setup_s, function="simulate_charge",
        )  # fmt: skip
        t = base["time_s"]
        h = rec.history
        current = np.abs(np.asarray(h["current_A"], dtype=float))
        hold = np.asarray(h["hold_V"], dtype=float)
        dt = np.diff(t)
        charged = np.concatenate([[0.0], np.cumsum(current[1:] * dt)]) / 3600.0
        V = base["voltage_V"]
        energy = float(np.sum(0.5 * (V[1:] + V[:-1]) * current[1:] * dt)) / 3600.0
        cv_steps = np.flatnonzero(~np.isnan(hold[1:]))
        if base["status"].startswith("solver failed") and sign > 0 and opt.plating == "none":
            th_s = cell.surface_stoichiometry(rec.state)
            if th_s > 0.97:  # say why: nothing but plating can carry the current there
                base["status"] += (
                    f" (mean surface stoichiometry {th_s:.3f}: the saturated surface leaves "
                    "intercalation alone unable to carry the current; model the plating "
                    "side reaction with options.plating, or end the charge at a potential "
                    "limit with voltage_limit_V)"
                )
        base.update(
            current_A=-I_cc,
            capacity_Ah=float(charged[-1]),
            energy_Wh=energy,
            discharged_Ah=-charged,
        )
        base["provenance"].parameters.update(
            {
                "protocol": "CCCV" if cv_voltage is not None else "CC",
                "cv_voltage_V": cv_voltage,
                "cv_end_c_rate": cv_end_c_rate,
                "initial_stoichiometry": th0,
                "end_stoichiometry": th_end,
                "voltage_limit_V": limit,
            }
        )
        return ResolvedChargeResult(
            **base,
            electrode=electrode,
            protocol="CCCV" if cv_voltage is not None else "CC",
            cell_current_A=-current,
            charged_Ah=charged,
            cv_voltage_V=None if cv_voltage is None else float(cv_voltage),
            cv_start_s=float(t[cv_steps[0]]) if cv_steps.size else None,
            cv_end_current_A=proto.cv_end_current_A if cv_voltage is not None else None,
            initial_stoichiometry=th0,
            end_stoichiometry=None if th_end is None else float(th_end),
            voltage_limit_V=None if limit is None else float(limit),
            final_mean_stoichiometry=float(np.mean(rec.state.cs)) / par.c_max,
            plating=opt.plating,
            plated_Li_mol=np.asarray(h["plated_mol"], dtype=float),
            dead_Li_mol=np.asarray(h["dead_mol"], dtype=float),
            plated_Ah=float(h["plated_mol"][-1]) * FARADAY / 3600.0,
        )

    from microbat.core.threads import single_threaded_blas

    try:
        with single_threaded_blas("blas"):  # as in simulate_discharge (core.threads)
            run_discharge(
                cell,
                I_app,
                t_nom,
                float(cutoff_key),
                snapshot_times,
                rec,
                on_step=step_hook if (progress or on_step) else None,
                checkpoint=ckpt,
                capacity_Ah=one_c,
                on_fields=on_fields,
                protocol=proto,
            )
    except KeyboardInterrupt as exc:
        raise ChargeInterrupted(build()) from exc
    return build()


def _ocp_crossing(par: ResolvedParameters, th0: float, v: float) -> float:
    """The stoichiometry below ``th0`` where the OCP first reaches ``v`` (0 if never)."""
    th = np.linspace(th0, 0.0, 4001)[:-1]
    u = par.ocp(th)
    above = np.flatnonzero(u >= v)
    if not above.size:
        return 0.0
    i = int(above[0])
    if i == 0:
        return th0
    # linear interpolation between the bracketing samples
    f = (v - u[i - 1]) / (u[i] - u[i - 1]) if u[i] != u[i - 1] else 1.0
    return float(th[i - 1] + f * (th[i] - th[i - 1]))
