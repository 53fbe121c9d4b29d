"""The P2D/DFN bridge: build a PyBaMM model once, discharge it at many rates.

A :class:`CellSimulator` wraps one built (parameterised and discretised) PyBaMM
model. The applied current and the effective-transport parameters (Bruggeman
exponents of electrolyte and solid, solid conductivity, per electrode) are PyBaMM
*input parameters*, so one built model serves every C-rate and both the
Bruggeman and the micro-informed transport: switching costs a solve (≈ 30 ms for
the DFN), not a rebuild (≈ 0.3 s). Simulators are cached by everything else in
the parameters (:func:`get_simulator`).

With ``geometry_inputs=True`` (the DFN of a full cell with single particle sizes)
the geometry is an input too — electrode and separator thicknesses and porosities,
active fractions, particle radii and the exchange-current scale that imposes a
measured surface area — on PyBaMM's symbolic uniform mesh
(``SymbolicUniform1DSubMesh``, PyBaMM PR #4665), and the full-charge state is solved
per geometry with PyBaMM's electrode state-of-health solver (built once). One built
model then serves every design of an inverse-design study: a design costs ≈ 0.2 s
instead of ≈ 0.7 s for C/10 and 2C. Its solves are ≈ 1.7× slower (the mesh is
evaluated with the inputs), so rate tables of one cell keep the default. The
results equal the rebuilt model's to round-off at the default solver tolerances
(to 2e-5 where the step sequences part) and to 1e-8 at ``rtol = 1e-8``
(``tests/cell/test_bridge_geometry.py``, docs/validation/design.md).

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
from microbat.cell.parameters import GEOMETRY_FIELDS, CellParameters, _section_keys
from microbat.core.errors import ConvergenceError, InvalidInputError
from microbat.core.results import Provenance, Result

__all__ = [
    "MODELS",
    "CellSimulator",
    "DischargeCurve",
    "check_c_rates",
    "geometry_input_values",
    "geometry_inputs_supported",
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


#: Microbat's input scaling PyBaMM's exchange-current density of an electrode.
_J0_SCALE = "{} electrode exchange-current scale"
_J0 = "{} electrode exchange-current density [A.m-2]"
_C0 = "Initial concentration in {} electrode [mol.m-3]"


def geometry_input_values(params: CellParameters) -> dict[str, float]:
    """PyBaMM input values of the geometry of ``params``.

    The fields of :data:`microbat.cell.parameters.GEOMETRY_FIELDS`: thickness,
    porosity, active fraction, particle radius and exchange-current scale of each
    electrode, separator thickness and porosity, nominal capacity.
    """
    out: dict[str, float] = {}
    for section, fields in GEOMETRY_FIELDS.items():
        obj = getattr(params, section)
        keys = _section_keys(section)
        for fname in fields:
            if fname == "exchange_current_scale":
                out[_J0_SCALE.format(section.capitalize())] = float(obj.exchange_current_scale)
            else:
                out[keys[fname]] = float(getattr(obj, fname))
    return out


def _input_scaled(func: Any, name: str) -> Any:
    """Exchange-current density ``func`` times the PyBaMM input ``name``."""

    def scaled(*args: Any) -> Any:
        pybamm = import_pybamm()
        value = func(*args) if callable(func) else func
        return pybamm.InputParameter(name) * value

    scaled.__name__ = f"{getattr(func, '__name__', 'j0')}_input_scaled"
    return scaled


_FV_CLASS: list[type] = []


def _symbolic_finite_volume() -> Any:
    """PyBaMM's finite volumes with interface weights fixed on a symbolic mesh.

    PyBaMM 26.10 averages a node quantity onto the edges of the whole cell
    ("node to edge", arithmetic) with weights from the *combined* mesh's unscaled
    edges; with symbolic subdomains those run 0..1 in each domain, so at the
    electrode/separator interfaces the weight comes out negative (−0.056 for 20 + 20
    cells) instead of ``Δx_1 / (Δx_1 + Δx_2)``, and the DFN's voltage moves by
    1.5 mV at 2C (Chen2020). Here the weights are the distance-weighted ones of
    PyBaMM's non-symbolic mesh, built from the symbolic cell widths; the exterior
    edges are PyBaMM's linear extrapolation of a uniform domain. With it the built
    once model equals the rebuilt one to 1e-9 V (docs/validation/design.md).
    """
    if _FV_CLASS:
        return _FV_CLASS[0]()
    pybamm = import_pybamm()
    from scipy.sparse import csr_matrix, diags, eye, hstack, vstack

    class SymbolicFiniteVolume(pybamm.FiniteVolume):
        def shift(self, discretised_symbol: Any, shift_key: str, method: str) -> Any:
            domains = discretised_symbol.domains["primary"]
            if not (
                method == "arithmetic"
                and shift_key == "node to edge"
                and discretised_symbol.size > 1
                and len(domains) > 1
                and all(hasattr(self.mesh[d], "length") for d in domains)
            ):
                return super().shift(discretised_symbol, shift_key, method)
            n = sum(self.mesh[d].npts for d in domains)
            reps = self._get_auxiliary_domain_repeats(discretised_symbol.domains)

            def mat(m: Any) -> Any:
                return pybamm.Matrix(self._block_diagonal(m, reps))

            d_edges = self._get_d_edges_symbolic_mesh(domains)
            left = pybamm.Matrix(diags([1.0], [0], shape=(n - 1, n))) @ d_edges
            right = pybamm.Matrix(diags([1.0], [1], shape=(n - 1, n))) @ d_edges
            w = self._repeat_vector(left / (left + right), reps)
            a1 = mat(hstack([eye(n - 1), csr_matrix((n - 1, 1))])) @ discretised_symbol
            a2 = mat(hstack([csr_matrix((n - 1, 1)), eye(n - 1)])) @ discretised_symbol
            ends = vstack(
                [
                    csr_matrix(([1.5, -0.5], ([0, 0], [0, 1])), shape=(1, n)),
                    csr_matrix((n - 1, n)),
                    csr_matrix(([-0.5, 1.5], ([0, 0], [n - 2, n - 1])), shape=(1, n)),
                ]
            )
            pad = vstack([csr_matrix((1, n - 1)), eye(n - 1), csr_matrix((1, n - 1))])
            return mat(ends) @ discretised_symbol + mat(pad) @ ((1 - w) * a1 + w * a2)

    _FV_CLASS.append(SymbolicFiniteVolume)
    return SymbolicFiniteVolume()


def geometry_inputs_supported(params: CellParameters, model: str = "DFN") -> str | None:
    """Why ``params`` cannot run with geometry inputs (``None`` when they can).

    Geometry inputs need PyBaMM's symbolic uniform mesh: the DFN (PyBaMM 26.10's
    SPMe on that mesh gives capacities up to 5e-5 relative off the rebuilt model's,
    at any solver tolerance, so it is not offered), a full cell (no lithium counter
    electrode), single particle sizes (no radius distribution) and numeric initial
    electrode concentrations.
    """
    if MODELS.get(str(model).strip().lower()) != "DFN":
        return f"the {model} model (DFN only)"
    if getattr(params, "half_cell", False):
        return "a half cell (lithium counter electrode)"
    if params.negative.particle_radius_std_m or params.positive.particle_radius_std_m:
        return "a particle-size distribution"
    for which in ("negative", "positive"):
        if not isinstance(params._store.get(_C0.format(which)), int | float):
            return f"a non-numeric initial concentration in the {which} electrode"
    return None


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
    geometry_inputs : bool, default False
        Make the geometry (:func:`geometry_input_values`) PyBaMM inputs too, on PyBaMM's
        symbolic uniform mesh of the electrodes, separator and particles, so that one
        built model serves every thickness, porosity, active fraction, particle radius
        and surface area; the full-charge state is then solved for each geometry
        (PyBaMM's electrode state-of-health solver, built once). Needs a full cell
        with single particle sizes and the DFN (:func:`geometry_inputs_supported`).
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
        geometry_inputs: bool = False,
    ) -> None:
        key = str(model).strip().lower()
        if key not in MODELS:
            raise InvalidInputError(f"unknown model {model!r}; use DFN (P2D) or SPMe")
        if not (0.0 <= float(initial_soc) <= 1.0):
            raise InvalidInputError(f"initial_soc must lie in 0..1, got {initial_soc!r}")
        if int(threads) < 1:
            raise InvalidInputError(f"threads must be at least 1, got {threads!r}")
        if geometry_inputs and (why := geometry_inputs_supported(params, model)) is not None:
            raise InvalidInputError(
                f"geometry_inputs=True does not support {why}; build one model per "
                "geometry (geometry_inputs=False)"
            )
        pybamm = import_pybamm()
        t0 = time.perf_counter()
        self.params = params
        self.model_name = MODELS[key]
        self.initial_soc = float(initial_soc)
        self.threads = int(threads)
        #: Geometry taken per solve (symbolic mesh), see the class notes.
        self.geometry_inputs = bool(geometry_inputs)
        self._esoh: Any = None
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
        submesh_types = spatial_methods = None
        if self.geometry_inputs:
            self._esoh_values = params.to_pybamm()
            for name in geometry_input_values(params):
                pv[name] = "[input]"
            for which in ("Negative", "Positive"):
                store = params._store[_J0.format(which)]
                pv[_J0.format(which)] = _input_scaled(store, _J0_SCALE.format(which))
                pv[_C0.format(which.lower())] = "[input]"
            for name in geometry_input_values(params):
                if not name.endswith("scale"):
                    self._esoh_values[name] = "[input]"
            submesh_types = dict(pb_model.default_submesh_types)
            for domain in ("electrode", "particle"):
                for which in ("negative", "positive"):
                    submesh_types[f"{which} {domain}"] = pybamm.SymbolicUniform1DSubMesh
            submesh_types["separator"] = pybamm.SymbolicUniform1DSubMesh
            spatial_methods = dict(pb_model.default_spatial_methods)
            spatial_methods["macroscale"] = _symbolic_finite_volume()
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
            pb_model,
            parameter_values=pv,
            solver=self.solver,
            var_pts=var_pts,
            submesh_types=submesh_types,
            spatial_methods=spatial_methods,
        )
        inputs[_CURRENT] = params.cell.nominal_capacity_Ah
        if self.geometry_inputs:
            self._pb_model = pb_model
            inputs.update(self._state_inputs(params))
            self.sim.build(inputs=inputs)
        else:
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
        if self.geometry_inputs:
            #: Full-charge state of the last geometry solved (of the build before).
            self.initial_state = self._last_state
        else:
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

    def _state_inputs(self, params: CellParameters) -> dict[str, float]:
        """Geometry and initial-concentration inputs of ``params`` (geometry inputs)."""
        pybamm = import_pybamm()
        geo = geometry_input_values(params)
        if self._esoh is None:
            self._esoh = pybamm.lithium_ion.ElectrodeSOHSolver(
                self._esoh_values, param=self._pb_model.param, options=self._pb_model.options
            )
        try:
            x, y = self._esoh.get_initial_stoichiometries(self.initial_soc, inputs=geo)
        except (pybamm.SolverError, pybamm.ModelError, ValueError) as exc:
            raise ConvergenceError(
                f"could not set the initial state (SOC {self.initial_soc:g}) of the "
                f"{self.model_name} model: {exc}; check the voltage window and OCP curves"
            ) from None
        x, y = float(np.squeeze(x)), float(np.squeeze(y))
        self._last_state = {
            "definition": f"PyBaMM set_initial_state({self.initial_soc:g})",
            "negative_stoichiometry": x,
            "positive_stoichiometry": y,
        }
        geo[_C0.format("negative")] = x * params.negative.max_concentration_mol_per_m3
        geo[_C0.format("positive")] = y * params.positive.max_concentration_mol_per_m3
        return geo

    # ------------------------------------------------------------------
    def t_end_s(self, current_A: float, params: CellParameters | None = None) -> float:
        """Time limit of a discharge: 1.05 × the larger theoretical electrode capacity."""
        p = params or self.params
        q = max(
            0.0 if self.half_cell else p.theoretical_capacity_Ah("negative"),
            p.theoretical_capacity_Ah("positive"),
            p.cell.nominal_capacity_Ah,
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
            Source of the effective-transport inputs, and of the geometry with
            ``geometry_inputs`` (default: the build parameters); must share
            everything else with the build parameters.
        on_failure : {"raise", "record"}
            On a solver failure raise :class:`ConvergenceError` (with the time and
            state reached) or return the truncated curve marked incomplete.
        """
        pybamm = import_pybamm()
        p = params or self.params
        geo = not self.geometry_inputs
        if p is not self.params and p._engine_key(geometry=geo) != self.params._engine_key(
            geometry=geo
        ):
            raise InvalidInputError(
                "these parameters differ from the built model in more than the effective "
                + ("transport" if geo else "transport and the geometry")
                + "; use get_simulator(params) to build a matching model"
            )
        base = transport_inputs(p)
        if self.geometry_inputs:
            base.update(self._state_inputs(p))
            self.initial_state = self._last_state
        q_nom = p.cell.nominal_capacity_Ah
        inputs = [{**base, _CURRENT: c * q_nom} for c in c_rates]
        runs: list[_Run] = []
        if self.threads > 1 and len(inputs) > 1:
            t0 = time.perf_counter()
            t_end = max(self.t_end_s(i[_CURRENT], p) for i in inputs)
            sols = self._solve(pybamm, [0.0, t_end], inputs, c_rates)
            each = (time.perf_counter() - t0) / len(inputs)
            for c, inp, sol in zip(c_rates, inputs, sols, strict=True):
                runs.append(self._finish(c, inp[_CURRENT], sol, each, on_failure, q_nom))
            return runs
        for c, inp in zip(c_rates, inputs, strict=True):
            t0 = time.perf_counter()
            sol = self._solve(pybamm, [0.0, self.t_end_s(inp[_CURRENT], p)], inp, [c])
            runs.append(
                self._finish(c, inp[_CURRENT], sol, time.perf_counter() - t0, on_failure, q_nom)
            )
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

    def _finish(
        self, c_rate: float, current: float, sol: Any, dt: float, on_failure: str, q_nom: float
    ) -> _Run:
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
                f"({100 * t[-1] * current / 3600 / q_nom:.1f}% "
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
    geometry_inputs: bool = False,
) -> CellSimulator:
    """A cached :class:`CellSimulator` for ``params`` (built on first use).

    Parameter sets that differ only in effective transport share one simulator; with
    ``geometry_inputs`` also those that differ only in geometry (see
    :class:`CellSimulator`). Where :func:`geometry_inputs_supported` refuses the
    parameters, ``geometry_inputs`` is ignored and a model is built per geometry.
    """
    geometry_inputs = bool(geometry_inputs) and geometry_inputs_supported(params, model) is None
    key = (
        params._engine_key(geometry=not geometry_inputs),
        geometry_inputs,
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
            geometry_inputs=geometry_inputs,
        )
        _CACHE[key] = sim
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
    sim.uses += 1
    return sim
