"""The P2D/DFN bridge: build a PyBaMM model once, discharge it at many rates.

A :class:`CellSimulator` wraps one built (parameterised and discretised) PyBaMM
model. The applied current and the effective-transport parameters (Bruggeman
exponents of electrolyte and solid, solid conductivity, per electrode) are PyBaMM
*input parameters*, so one built model serves every C-rate and both the
Bruggeman and the micro-informed transport: switching costs a solve (≈ 30 ms for
the DFN), not a rebuild (≈ 0.3 s). Simulators are cached by everything else in
the parameters (:func:`get_simulator`).

Model equations are PyBaMM's: the Doyle–Fuller–Newman model [1]_ (``"DFN"``,
alias ``"P2D"``) or the single-particle model with electrolyte [2]_ (``"SPMe"``),
isothermal, solved with the IDAKLU (SUNDIALS IDA + KLU) solver [3]_. "Full charge"
is the state ``Simulation.set_initial_state(1.0)`` gives: stoichiometries from the
electrode state-of-health solve at the upper cut-off voltage.

Half cells: parameters with a lithium-metal counter electrode
(:meth:`~microbat.cell.CellParameters.as_half_cell`, e.g. the single-ion P2D of a
solid-state composite cathode, :func:`microbat.cell.solid_state_parameters`) run
PyBaMM's model with ``{"working electrode": "positive"}``: the lithium foil is an
interface with Butler–Volmer kinetics. Its reaction overpotential takes the place
of the negative electrode's in the voltage breakdown (PyBaMM's "X-averaged reaction
overpotential [V]" of a half cell already includes it), and the negative particle
and solid terms are PyBaMM's zeros.

References
----------
.. [1] M. Doyle, T. F. Fuller and J. Newman, J. Electrochem. Soc. 140, 1526 (1993).
.. [2] S. G. Marquis et al., J. Electrochem. Soc. 166, A3693 (2019).
.. [3] V. Sulzer, S. G. Marquis, R. Timms, M. Robinson and S. J. Chapman, "Python
   Battery Mathematical Modelling (PyBaMM)", J. Open Res. Softw. 9, 14 (2021).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from microbat.cell._pybamm import import_pybamm
from microbat.cell.parameters import CellParameters
from microbat.core.errors import ConvergenceError, InvalidInputError
from microbat.core.results import Provenance, Result

__all__ = [
    "MODELS",
    "CellSimulator",
    "DischargeCurve",
    "check_c_rates",
    "get_simulator",
]


def termination_status(termination: str, voltage: np.ndarray) -> tuple[str, bool]:
    """Status of a PyBaMM discharge from its termination string and voltages.

    Returns ``("cut-off", True)`` for the minimum-voltage event, ``(event, True)`` for
    another event, ``("time limit", False)`` when the solver ran out of time, and
    ``("failure", False)`` for a failed solve or non-finite voltages.
    """
    if termination == "failure" or not np.all(np.isfinite(voltage)):
        return "failure", False
    if termination.startswith("event"):
        return ("cut-off" if "Minimum voltage" in termination else termination), True
    return "time limit", False


#: Model names accepted (case-insensitive) → PyBaMM class name.
MODELS = {"dfn": "DFN", "p2d": "DFN", "spme": "SPMe"}

_CURRENT = "Current function [A]"

#: PyBaMM variables of the voltage breakdown (short name → PyBaMM name).
BREAKDOWN_VARIABLES = {
    "V": "Voltage [V]",
    "ocv": "Bulk open-circuit voltage [V]",
    "particle": "Particle concentration overpotential [V]",
    "particle_n": "Negative particle concentration overpotential [V]",
    "particle_p": "Positive particle concentration overpotential [V]",
    "reaction": "X-averaged reaction overpotential [V]",
    "reaction_n": "X-averaged negative electrode reaction overpotential [V]",
    "reaction_p": "X-averaged positive electrode reaction overpotential [V]",
    "solid": "X-averaged solid phase ohmic losses [V]",
    "solid_n": "X-averaged negative electrode ohmic losses [V]",
    "solid_p": "X-averaged positive electrode ohmic losses [V]",
    "e_ohm": "X-averaged electrolyte ohmic losses [V]",
    "e_conc": "X-averaged concentration overpotential [V]",
}
#: Electrolyte concentration over the whole cell (negative, separator, positive).
ELECTROLYTE_CONCENTRATION = "Electrolyte concentration [mol.m-3]"
#: Effective-transport variables kept for checks (X-averaged, per electrode).
TRANSPORT_VARIABLES = tuple(
    f"X-averaged {d} {c} transport efficiency"
    for d in ("negative", "positive")
    for c in ("electrolyte", "electrode")
)
#: Everything the solver computes during the solve (IDAKLU ``output_variables``).
OUTPUT_VARIABLES = (
    *BREAKDOWN_VARIABLES.values(),
    ELECTROLYTE_CONCENTRATION,
    *TRANSPORT_VARIABLES,
)
#: Half cell: the lithium-metal interface stands in for the negative electrode's reaction.
HALF_CELL_ALIASES = {
    BREAKDOWN_VARIABLES["reaction_n"]: "Lithium metal interface reaction overpotential [V]",
}
#: What the solver computes for a half cell (no negative porous electrode).
HALF_CELL_OUTPUT_VARIABLES = tuple(
    HALF_CELL_ALIASES.get(v, v)
    for v in OUTPUT_VARIABLES
    if not v.startswith("X-averaged negative electrolyte")
    and not v.startswith("X-averaged negative electrode transport")
)
_MAX_C_RATE = 100.0
_MIN_C_RATE = 1e-3


def _transport_keys(which: str) -> dict[str, str]:
    D = which.capitalize()
    return {
        "bruggeman_electrolyte": f"{D} electrode Bruggeman coefficient (electrolyte)",
        "bruggeman_electrode": f"{D} electrode Bruggeman coefficient (electrode)",
        "conductivity_S_per_m": f"{D} electrode conductivity [S.m-1]",
    }


def transport_inputs(params: CellParameters) -> dict[str, float]:
    """PyBaMM input values of the effective-transport parameters of ``params``."""
    out: dict[str, float] = {}
    for which in ("negative", "positive"):
        el = params.electrode(which)
        for fname, key in _transport_keys(which).items():
            out[key] = float(getattr(el, fname))
    return out


def check_c_rates(c_rates: float | Sequence[float]) -> tuple[float, ...]:
    """Validate C-rates: finite, positive (discharge), at most 100C; sorted, unique.

    Raises
    ------
    InvalidInputError
        Empty list, NaN, zero or negative (charge) rates, or rates above 100C.
    """
    values = [c_rates] if isinstance(c_rates, int | float) else list(c_rates)
    if not values:
        raise InvalidInputError("give at least one C-rate, e.g. c_rates=(0.1, 1, 3)")
    out = []
    for c in values:
        try:
            v = float(c)
        except (TypeError, ValueError):
            raise InvalidInputError(f"C-rate {c!r} is not a number") from None
        if not math.isfinite(v) or v <= 0:
            raise InvalidInputError(
                f"C-rate {c!r} is not a positive number; rates are discharge rates in units "
                "of the nominal capacity per hour (negative rates would mean charging, "
                "which this discharge simulation does not do)"
            )
        if not (_MIN_C_RATE <= v <= _MAX_C_RATE):
            raise InvalidInputError(
                f"C-rate {v:g} is outside {_MIN_C_RATE:g}..{_MAX_C_RATE:g}; a rate of "
                f"{v:g}C means a discharge of {60 / v:.3g} minutes"
            )
        out.append(v)
    return tuple(sorted(set(out)))


@dataclass(frozen=True)
class DischargeCurve(Result):
    """One constant-current discharge.

    Attributes
    ----------
    c_rate : float
        Rate in units of the nominal capacity per hour.
    current_A : float
        Applied current (A, positive on discharge).
    time_s, voltage_V, capacity_Ah : ndarray
        Time (s), terminal voltage (V) and discharged capacity (A·h) at the solver's
        output steps.
    status : str
        ``"cut-off"`` (reached the lower cut-off voltage), ``"event: ..."`` (another
        PyBaMM termination event), ``"time limit"`` or ``"failure"``.
    complete : bool
        True when the discharge ended on a physical event; ``False`` curves are
        truncated and must not be read as the full discharge.
    termination : str
        PyBaMM's termination text.
    solve_time_s : float
        Wall time of the solve and the read-out (s).
    """

    c_rate: float
    current_A: float
    time_s: np.ndarray
    voltage_V: np.ndarray
    capacity_Ah: np.ndarray
    status: str
    complete: bool
    termination: str
    solve_time_s: float
    provenance: Provenance = field(default_factory=lambda: Provenance("DischargeCurve"))

    @property
    def final_capacity_Ah(self) -> float:
        """Delivered capacity (A·h); NaN when the curve is incomplete."""
        return float(self.capacity_Ah[-1]) if self.complete else math.nan

    @property
    def energy_Wh(self) -> float:
        """Delivered energy ``∫ V I dt`` (W·h); NaN when incomplete."""
        if not self.complete:
            return math.nan
        return float(_trapezoid(self.voltage_V * self.current_A, self.time_s) / 3600.0)


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    fn = getattr(np, "trapezoid", None) or np.trapz  # noqa: NPY201  (numpy < 2)
    return float(fn(y, x))


@dataclass
class _Run:
    curve: DischargeCurve
    solution: Any


class _HalfCellSolution:
    """A half-cell PyBaMM solution read with the full cell's breakdown names."""

    def __init__(self, solution: Any) -> None:
        self._solution = solution

    def __getitem__(self, name: str) -> Any:
        return self._solution[HALF_CELL_ALIASES.get(name, name)]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._solution, name)


class CellSimulator:
    """A PyBaMM model built once for a parameter set; discharges at any rate.

    Parameters
    ----------
    params : CellParameters
        Cell parameters; the effective transport is taken per call (see :meth:`run`).
    model : {"DFN", "P2D", "SPMe"}
        PyBaMM model.
    initial_soc : float, default 1.0
        Initial state of charge, set with PyBaMM's ``set_initial_state``.
    mesh_points : mapping, optional
        PyBaMM ``var_pts`` overrides (e.g. ``{"x_n": 10, "x_s": 5, "x_p": 10,
        "r_n": 10, "r_p": 10}``); default PyBaMM's mesh.
    solver_options : mapping, optional
        Options of ``pybamm.IDAKLUSolver`` (``rtol``, ``atol`` and ``options``
        entries such as ``max_num_steps``).
    threads : int, default 1
        OpenMP threads of IDAKLU when several rates are solved together.
    """

    def __init__(
        self,
        params: CellParameters,
        *,
        model: str = "DFN",
        initial_soc: float = 1.0,
        mesh_points: Mapping[str, int] | None = None,
        solver_options: Mapping[str, Any] | None = None,
        threads: int = 1,
    ) -> None:
        key = str(model).strip().lower()
        if key not in MODELS:
            raise InvalidInputError(f"unknown model {model!r}; use DFN (P2D) or SPMe")
        if not (0.0 <= float(initial_soc) <= 1.0):
            raise InvalidInputError(f"initial_soc must lie in 0..1, got {initial_soc!r}")
        if int(threads) < 1:
            raise InvalidInputError(f"threads must be at least 1, got {threads!r}")
        pybamm = import_pybamm()
        t0 = time.perf_counter()
        self.params = params
        self.model_name = MODELS[key]
        self.initial_soc = float(initial_soc)
        self.threads = int(threads)
        options: dict[str, Any] = {}
        dist = (
            "distribution" if params.negative.particle_radius_std_m else "single",
            "distribution" if params.positive.particle_radius_std_m else "single",
        )
        if "distribution" in dist:
            options["particle size"] = dist
        #: Lithium-metal counter electrode (half cell), see the module notes.
        self.half_cell = bool(getattr(params, "half_cell", False))
        if self.half_cell:
            options["working electrode"] = "positive"
            if "particle size" in options:
                options["particle size"] = dist[1]
        self.options = options
        try:
            pb_model = getattr(pybamm.lithium_ion, self.model_name)(options)
        except pybamm.OptionError as exc:
            raise InvalidInputError(
                f"{self.model_name} does not support these options ({options}): {exc}; "
                "use model='DFN'"
            ) from None
        pv = params.to_pybamm()
        inputs = transport_inputs(params)
        for name in inputs:
            pv[name] = "[input]"
        pv[_CURRENT] = "[input]"
        sopts = dict(solver_options or {})
        kwargs = {k: sopts.pop(k) for k in ("rtol", "atol") if k in sopts}
        sopts.setdefault("silence_sundials_errors", True)
        if self.threads > 1:
            sopts.setdefault("num_threads", self.threads)
        self.solver = pybamm.IDAKLUSolver(
            on_failure="ignore",
            options=sopts,
            output_variables=list(
                HALF_CELL_OUTPUT_VARIABLES if self.half_cell else OUTPUT_VARIABLES
            ),
            **kwargs,
        )
        var_pts = None
        if mesh_points:
            var_pts = dict(pb_model.default_var_pts)
            var_pts.update({k: int(v) for k, v in mesh_points.items()})
        self.sim = pybamm.Simulation(
            pb_model, parameter_values=pv, solver=self.solver, var_pts=var_pts
        )
        inputs[_CURRENT] = params.cell.nominal_capacity_Ah
        try:
            self.sim.build(initial_soc=self.initial_soc, inputs=inputs)
        except (pybamm.SolverError, pybamm.ModelError, ValueError) as exc:
            raise ConvergenceError(
                f"could not set the initial state (SOC {self.initial_soc:g}) of the "
                f"{self.model_name} model: {exc}; check the voltage window and OCP curves"
            ) from None
        self.built_model = self.sim.built_model
        #: Number of finite-volume cells in the negative electrode, separator, positive.
        names = ("negative electrode", "separator", "positive electrode")
        self.regions = {
            name: int(self.sim.mesh[name].npts) for name in (names[1:] if self.half_cell else names)
        }
        self.build_time_s = time.perf_counter() - t0
        #: How many times :func:`get_simulator` handed out this simulator.
        self.uses = 0
        pv_built = self.sim.parameter_values
        self.initial_state = {
            "definition": f"PyBaMM set_initial_state({self.initial_soc:g})",
            "negative_stoichiometry": None
            if self.half_cell
            else float(
                pv_built["Initial concentration in negative electrode [mol.m-3]"]
                / params.negative.max_concentration_mol_per_m3
            ),
            "positive_stoichiometry": float(
                pv_built["Initial concentration in positive electrode [mol.m-3]"]
                / params.positive.max_concentration_mol_per_m3
            ),
        }

    # ------------------------------------------------------------------
    def t_end_s(self, current_A: float) -> float:
        """Time limit of a discharge: 1.05 × the larger theoretical electrode capacity."""
        q = max(
            0.0 if self.half_cell else self.params.theoretical_capacity_Ah("negative"),
            self.params.theoretical_capacity_Ah("positive"),
            self.params.cell.nominal_capacity_Ah,
        )
        return 1.05 * q * 3600.0 / current_A

    def run(
        self,
        c_rates: Sequence[float],
        *,
        params: CellParameters | None = None,
        on_failure: Literal["raise", "record"] = "raise",
    ) -> list[_Run]:
        """Discharge at each C-rate with the effective transport of ``params``.

        Parameters
        ----------
        c_rates : sequence of float
            Validated C-rates (see :func:`check_c_rates`).
        params : CellParameters, optional
            Source of the effective-transport inputs (default: the build parameters);
            must share everything else with the build parameters.
        on_failure : {"raise", "record"}
            On a solver failure raise :class:`ConvergenceError` (with the time and
            state reached) or return the truncated curve marked incomplete.
        """
        pybamm = import_pybamm()
        p = params or self.params
        if p is not self.params and p._engine_key() != self.params._engine_key():
            raise InvalidInputError(
                "these parameters differ from the built model in more than the effective "
                "transport; use get_simulator(params) to build a matching model"
            )
        base = transport_inputs(p)
        q_nom = self.params.cell.nominal_capacity_Ah
        inputs = [{**base, _CURRENT: c * q_nom} for c in c_rates]
        runs: list[_Run] = []
        if self.threads > 1 and len(inputs) > 1:
            t0 = time.perf_counter()
            t_end = max(self.t_end_s(i[_CURRENT]) for i in inputs)
            sols = self._solve(pybamm, [0.0, t_end], inputs, c_rates)
            each = (time.perf_counter() - t0) / len(inputs)
            for c, inp, sol in zip(c_rates, inputs, sols, strict=True):
                runs.append(self._finish(c, inp[_CURRENT], sol, each, on_failure))
            return runs
        for c, inp in zip(c_rates, inputs, strict=True):
            t0 = time.perf_counter()
            sol = self._solve(pybamm, [0.0, self.t_end_s(inp[_CURRENT])], inp, [c])
            runs.append(self._finish(c, inp[_CURRENT], sol, time.perf_counter() - t0, on_failure))
        return runs

    def _solve(self, pybamm: Any, t_eval: list[float], inputs: Any, c_rates: Sequence[float]):
        try:
            return self.solver.solve(self.built_model, t_eval, inputs=inputs)
        except pybamm.SolverError as exc:
            rates = ", ".join(f"{c:g}C" for c in c_rates)
            raise ConvergenceError(
                f"the {self.model_name} discharge at {rates} failed and PyBaMM returned no "
                f"partial solution (started from full charge, t = 0 s): "
                f"{str(exc).splitlines()[0]}; lower the rate, refine the mesh or relax "
                "solver_options"
            ) from None

    def _finish(self, c_rate: float, current: float, sol: Any, dt: float, on_failure: str) -> _Run:
        t0 = time.perf_counter()
        term = str(sol.termination)
        t = np.asarray(sol.t, dtype=float)
        v = np.asarray(sol["Voltage [V]"].entries, dtype=float)
        q = current * t / 3600.0
        status, complete = termination_status(term, v)
        if status == "failure" and on_failure == "raise":
            raise ConvergenceError(
                f"the {self.model_name} solver failed during the {c_rate:g}C discharge at "
                f"t = {t[-1]:.1f} s, after {q[-1]:.4g} A·h at {v[-1]:.4f} V "
                f"({100 * t[-1] * current / 3600 / self.params.cell.nominal_capacity_Ah:.1f}% "
                "of the nominal capacity); the curve up to there is not a complete discharge. "
                "Try a lower rate, a finer mesh or solver_options={'max_num_steps': ...}, "
                "or on_failure='record' to keep the truncated curve marked incomplete"
            )
        if self.half_cell:
            sol = _HalfCellSolution(sol)
        curve = DischargeCurve(
            c_rate=float(c_rate),
            current_A=float(current),
            time_s=t,
            voltage_V=v,
            capacity_Ah=q,
            status=status,
            complete=complete,
            termination=term,
            solve_time_s=dt + (time.perf_counter() - t0),
            provenance=Provenance(
                "microbat.cell.CellSimulator.run",
                parameters={"model": self.model_name, "c_rate": float(c_rate)},
                wall_time_s=dt,
            ),
        )
        return _Run(curve=curve, solution=sol)


_CACHE: OrderedDict[tuple[Any, ...], CellSimulator] = OrderedDict()
_CACHE_SIZE = 6


def get_simulator(
    params: CellParameters,
    *,
    model: str = "DFN",
    initial_soc: float = 1.0,
    mesh_points: Mapping[str, int] | None = None,
    solver_options: Mapping[str, Any] | None = None,
    threads: int = 1,
) -> CellSimulator:
    """A cached :class:`CellSimulator` for ``params`` (built on first use).

    Parameter sets that differ only in effective transport share one simulator.
    """
    key = (
        params._engine_key(),
        str(model).lower().replace("p2d", "dfn"),
        float(initial_soc),
        tuple(sorted((mesh_points or {}).items())),
        repr(sorted((solver_options or {}).items())),
        int(threads),
    )
    sim = _CACHE.get(key)
    if sim is None:
        sim = CellSimulator(
            params,
            model=model,
            initial_soc=initial_soc,
            mesh_points=mesh_points,
            solver_options=solver_options,
            threads=threads,
        )
        _CACHE[key] = sim
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
    sim.uses += 1
    return sim
