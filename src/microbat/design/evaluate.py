"""One design trial: descriptors → microstructure → model → objectives and constraints.

:func:`generate_design` turns descriptor values into a calendered three-phase
electrode sample (seeded); :func:`evaluate_design` generates it, checks the
manufacturing constraints and evaluates the objectives with the chosen fidelity:

``"bruggeman"``
    P2D (PyBaMM DFN through :func:`microbat.cell.bridge.get_simulator`) with the
    sample's measured porosity and active fraction, the *designed* particle radius
    (reaction area ``3 φ_a / R``) and the parameter set's Bruggeman exponents — what
    a design made without a microstructure would assume.
``"micro"`` (default)
    P2D with the properties measured on the sample
    (:meth:`microbat.cell.MicroProperties.from_microstructure`): the through-plane
    tortuosity factors of pores and solid, the active/electrolyte surface area and
    the particle radius (d50 of the local thickness).
``"resolved"``
    The 3D resolved half-cell against lithium metal on the sample's voxels
    (:func:`microbat.cell.resolved.simulate_discharge`); its thickness is the
    sample's, not the ``thickness`` descriptor (for final candidates on small grids).

The generation chain (fractions are of the *final* electrode; ``c`` the
calendering strain, volumes conserved):

1. :func:`microbat.synth.packing` of ``round(n_t / (1 − c))`` voxels along the
   thickness at the active fraction ``φ_a (1 − c)``;
2. :func:`microbat.transport.calendering.calender` by ``c`` (skipped for ``c = 0``),
   which moves and flattens the particles and brings the thickness to ``n_t``;
3. :func:`microbat.synth.add_carbon_binder` at ``φ_cbd`` in the calendered pore space
   (``cbd_model``: necks or film).

The P2D fidelities share one built DFN across trials: the geometry (thicknesses,
porosity, active fraction, particle radius, surface area through the exchange-current
scale) and the effective transport are PyBaMM inputs on its symbolic mesh
(``get_simulator(..., geometry_inputs=True)``), so a trial costs the full-charge
state and two solves, not a model build; the results equal a model rebuilt for the
design to round-off at the solver's default tolerances (docs/validation/design.md).
"""

from __future__ import annotations

import math
import time
import traceback
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from microbat.core.errors import InvalidInputError, MicrobatError
from microbat.core.microstructure import Microstructure
from microbat.core.results import Provenance, Result, to_jsonable
from microbat.design.constraints import evaluate_constraints
from microbat.design.objectives import OBJECTIVES, check_objective
from microbat.design.space import (
    DESCRIPTORS,
    ConstraintSettings,
    DesignSpace,
    EvaluationSettings,
    Resolution,
)

__all__ = [
    "FIDELITIES",
    "TrialOutcome",
    "complete_params",
    "evaluate_design",
    "generate_design",
    "infer_generator",
]

#: The models a trial can be evaluated with, cheapest first.
FIDELITIES = ("bruggeman", "micro", "resolved")

_ORIENTATION = {"random": "random", "through-plane": 0, "in-plane": 1}
#: One DFN for every design (geometry as PyBaMM inputs); ``False`` rebuilds the model
#: per design (``benchmarks/bench_design.py --mode rebuild`` measures the difference).
_GEOMETRY_INPUTS = True


@dataclass(frozen=True)
class TrialOutcome(Result):
    """What one design trial gave.

    Attributes
    ----------
    params : dict
        Every descriptor's value (the searched ones and the fixed ones).
    seed : int
        Seed of the microstructure.
    fidelity : str
        The model used (:data:`FIDELITIES`).
    objectives : dict of str to float
        The requested objectives (NaN where they could not be computed).
    constraints : dict of str to float
        Violation of each constraint, ``≤ 0`` met (see
        :mod:`microbat.design.constraints`).
    feasible : bool
        Every constraint met and every objective computed.
    violated : tuple of str
        Names of the violated constraints.
    metrics : dict of str to float
        Everything measured on the way: measured fractions, τ, surface area,
        radius, capacities and energies, masses, the objectives' values.
    status : str
        ``"ok"``, ``"infeasible"`` (a constraint broken; objectives may still be
        there) or ``"failed"`` (a model could not be evaluated; ``error`` says why).
    error : str or None
        One-line reason of a failure.
    wall_time_s : float
    microstructure : Microstructure or None
        The sample, when asked for (``keep_microstructure``); not in :meth:`to_dict`.
    provenance : Provenance
    """

    params: dict[str, Any]
    seed: int
    fidelity: str
    objectives: dict[str, float]
    constraints: dict[str, float]
    feasible: bool
    violated: tuple[str, ...]
    metrics: dict[str, float]
    status: str
    error: str | None
    wall_time_s: float
    microstructure: Microstructure | None = field(default=None, repr=False, compare=False)
    provenance: Provenance = field(default_factory=lambda: Provenance("evaluate_design"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (without the microstructure)."""
        return {
            "params": to_jsonable(self.params),
            "seed": self.seed,
            "fidelity": self.fidelity,
            "objectives": to_jsonable(self.objectives),
            "constraints": to_jsonable(self.constraints),
            "feasible": self.feasible,
            "violated": list(self.violated),
            "metrics": to_jsonable(self.metrics),
            "status": self.status,
            "error": self.error,
            "wall_time_s": self.wall_time_s,
            "provenance": self.provenance.to_dict(),
        }


def infer_generator(params: Mapping[str, Any], space: DesignSpace | None = None) -> str:
    """The generator of a design.

    The space's generator; without a space ``composite`` when ``params`` name a
    composite-only descriptor (``se_fraction``, ``se_radius``), else ``electrode``.
    """
    if space is not None:
        return space.generator
    comp = any(k in DESCRIPTORS and DESCRIPTORS[k].generators == ("composite",) for k in params)
    return "composite" if comp else "electrode"


def complete_params(
    params: Mapping[str, Any], space: DesignSpace | None = None, generator: str | None = None
) -> dict[str, float | str]:
    """``params`` with every descriptor not given at its fixed value or default.

    Parameters
    ----------
    params : mapping
        Descriptor values.
    space : DesignSpace, optional
        Supplies the fixed values and the generator.
    generator : {"electrode", "composite"}, optional
        Default: :func:`infer_generator`.

    Returns
    -------
    dict
        Every descriptor of the generator; ``porosity`` (the void fraction of a
        composite) and ``active_fraction`` both filled in.

    Raises
    ------
    InvalidInputError
        An unknown descriptor name, porosity and active fraction both given and
        inconsistent, or fractions that leave no active material or no pore space.
    """
    from microbat.design.space import COMPOSITE_DEFAULTS

    gen = generator or infer_generator(params, space)
    unknown = [k for k in params if k not in DESCRIPTORS]
    if unknown:
        raise InvalidInputError(
            f"unknown descriptor(s) {', '.join(map(repr, unknown))}; known: "
            f"{', '.join(DESCRIPTORS)}"
        )
    wrong = [k for k in params if k != "porosity" and gen not in DESCRIPTORS[k].generators]
    if wrong:
        raise InvalidInputError(
            f"descriptor(s) {', '.join(wrong)} do not apply to the {gen} generator"
        )
    if space is not None:
        out = space.complete(params)
    elif gen == "composite":
        out = {
            k: COMPOSITE_DEFAULTS.get(k, d.default)
            for k, d in DESCRIPTORS.items()
            if "composite" in d.generators
        }
        out.update(params)
    else:
        out = {
            k: d.default
            for k, d in DESCRIPTORS.items()
            if k != "active_fraction" and "electrode" in d.generators
        }
        if "active_fraction" in params:
            out.pop("porosity")
        out.update(params)
    cbd = float(out["cbd_fraction"])
    if gen == "composite":
        voids = 1.0 - float(out["active_fraction"]) - float(out["se_fraction"]) - cbd
        if voids < -1e-9:
            raise InvalidInputError(
                f"active_fraction + se_fraction + cbd_fraction = {1 - voids:.4g} exceeds 1"
            )
        out["porosity"] = max(voids, 0.0)
        return out
    if "porosity" in params and "active_fraction" in params:
        total = float(params["porosity"]) + float(params["active_fraction"]) + cbd
        if abs(total - 1.0) > 1e-9:
            raise InvalidInputError(
                "give porosity or active_fraction, not both (porosity + active_fraction + "
                f"cbd_fraction = {total:.4g}, not 1)"
            )
    elif "active_fraction" in params:
        out["porosity"] = 1.0 - float(out["active_fraction"]) - cbd
    else:
        out["active_fraction"] = 1.0 - float(out["porosity"]) - cbd
    if float(out["active_fraction"]) < 0.05:
        raise InvalidInputError(
            f"porosity {float(out['porosity']):.3g} + cbd_fraction {cbd:.3g} leaves "
            f"{float(out['active_fraction']):.3g} active material (at least 0.05 needed)"
        )
    if float(out["porosity"]) < 0.02:
        raise InvalidInputError(
            f"active {float(out['active_fraction']):.3g} + carbon-binder {cbd:.3g} leave no "
            "pore space"
        )
    return out


def _resolution(resolution: Resolution | Sequence[Any] | None) -> Resolution:
    if resolution is None:
        return Resolution()
    if isinstance(resolution, Resolution):
        return resolution
    if isinstance(resolution, Mapping):
        return Resolution(**resolution)
    shape, voxel = resolution  # (shape, voxel_size)
    return Resolution(shape=tuple(int(n) for n in shape), voxel_size=float(voxel))


def generate_design(
    params: Mapping[str, Any],
    seed: int,
    resolution: Resolution | Sequence[Any] | None = None,
    *,
    generator: str | None = None,
) -> Microstructure:
    """The calendered electrode sample of one design.

    Parameters
    ----------
    params : mapping
        Descriptor values (:data:`microbat.design.space.DESCRIPTORS`); missing ones
        take their defaults.
    seed : int
        Seed of the packing and the carbon-binder placement: the same ``params``,
        ``seed`` and ``resolution`` give the same voxels.
    resolution : Resolution or (shape, voxel_size), optional
        The final grid (thickness axis first) and voxel edge in metres; default
        64³ voxels of 0.5 µm.
    generator : {"electrode", "composite"}, optional
        The liquid-electrolyte electrode (packing, calendering, carbon-binder) or the
        solid-state composite cathode (:func:`microbat.synth.composite_cathode`:
        active and solid-electrolyte particles, binder, voids); default
        :func:`infer_generator`.

    Returns
    -------
    Microstructure
        Phases ``pore=0, cbd=1, active=2`` (composite: ``void, cbd, active, se``),
        thickness axis 0 (collector at index 0); ``metadata["design"]`` holds the
        complete descriptor values, the generator and the seed.

    Raises
    ------
    InvalidInputError
        Unknown descriptors, fractions that leave no active material or no pores,
        or a packing the generator cannot make.

    Examples
    --------
    >>> ms = generate_design({"porosity": 0.35, "calendering": 0.2}, seed=1,
    ...                      resolution=((32, 32, 32), 0.5e-6))  # doctest: +SKIP
    >>> ms.shape  # doctest: +SKIP
    (32, 32, 32)
    """
    from microbat.synth import add_carbon_binder, packing

    gen = generator or infer_generator(params)
    p = complete_params(params, generator=gen)
    res = _resolution(resolution)
    if gen == "composite":
        from microbat.synth import composite_cathode

        ms = composite_cathode(
            res.shape,
            voxel_size=res.voxel_size,
            active_fraction=float(p["active_fraction"]),
            electrolyte_fraction=float(p["se_fraction"]),
            binder_fraction=float(p["cbd_fraction"]),
            active_radius=float(p["mean_radius"]),
            electrolyte_radius=float(p["se_radius"]),
            radius_cv=float(p["radius_cv"]),
            thickness_axis=0,
            seed=int(seed),
        )
        meta = dict(ms.metadata)
        meta["design"] = {"params": to_jsonable(p), "seed": int(seed), "generator": gen}
        return ms.with_labels(np.asarray(ms.labels), metadata=meta)
    c = float(p["calendering"])
    if not 0.0 <= c <= 0.6:
        raise InvalidInputError(f"calendering must lie in [0, 0.6], got {c!r}")
    phi_a = float(p["active_fraction"])
    phi_c = float(p["cbd_fraction"])
    n_t = int(res.shape[0])
    n_t0 = max(n_t, round(n_t / (1.0 - c)))
    shape0 = (n_t0, int(res.shape[1]), int(res.shape[2]))
    # the compressed grid has round((1 − c_eff) n_t0) = n_t voxels; the active volume is
    # conserved, so the uncompressed fraction is φ_a (1 − c_eff)
    c_eff = 1.0 - n_t / n_t0
    rng = np.random.default_rng(int(seed))
    orient = _ORIENTATION[str(p["orientation"])]
    with warnings.catch_warnings():
        # the packing warns when it lands off its target fraction; measured anyway
        warnings.simplefilter("ignore", category=UserWarning)
        pk = packing(
            shape0,
            voxel_size=res.voxel_size,
            active_fraction=phi_a * (1.0 - c_eff),
            mean_radius=float(p["mean_radius"]),
            radius_cv=float(p["radius_cv"]),
            aspect_ratio=float(p["aspect_ratio"]),
            orientation=orient if float(p["aspect_ratio"]) != 1.0 else None,
            thickness_axis=0,
            seed=rng,
        )
    if c_eff > 0:
        from microbat.transport.calendering import calender

        ms = calender(pk, c_eff, cbd_fraction=0.0, seed=int(rng.integers(2**31)))
    else:
        ms = Microstructure(
            np.where(pk.labels, 2, 0).astype(np.uint8),
            res.voxel_size,
            "pore=0,cbd=1,active=2",
            thickness_axis=0,
            allow_empty_phases=True,
        )
    pore_left = ms.fraction("pore")
    if phi_c > pore_left:
        raise InvalidInputError(
            f"carbon-binder fraction {phi_c:.3g} exceeds the pore space left ({pore_left:.3g}) "
            "after packing and calendering"
        )
    ms = add_carbon_binder(ms, fraction=phi_c, model=str(p["cbd_model"]), seed=rng)
    meta = dict(ms.metadata)
    meta["design"] = {
        "params": to_jsonable(p),
        "seed": int(seed),
        "generator": gen,
        "calendering_applied": c_eff,
    }
    return ms.with_labels(np.asarray(ms.labels), metadata=meta)


# ---------------------------------------------------------------------------- models
def _load_cell(name: str) -> Any:
    from microbat.cell.parameters import load_parameters

    return load_parameters(name)


def _p2d(
    ms: Microstructure,
    p: Mapping[str, Any],
    ev: EvaluationSettings,
    fidelity: str,
    metrics: dict[str, float],
) -> None:
    """Energy and power metrics from the PyBaMM DFN (fills ``metrics``)."""
    from microbat.cell.bridge import check_c_rates, get_simulator
    from microbat.cell.micro import MicroProperties, apply_micro

    thickness = float(p["thickness"])
    if fidelity == "micro":
        micro = MicroProperties.from_microstructure(ms, thickness=thickness)
        metrics["tau_electrolyte"] = micro.tau_electrolyte
        metrics["tau_solid"] = math.nan if micro.tau_solid is None else micro.tau_solid
        metrics["specific_surface_area_per_m"] = float(micro.specific_surface_area_per_m or 0)
        metrics["particle_radius_m"] = float(micro.particle_radius_m or math.nan)
    else:
        eps = metrics["porosity"]
        micro = MicroProperties(
            porosity=eps,
            tau_electrolyte=eps**-0.5,  # Bruggeman's value; not read by transport="bruggeman"
            particle_radius_m=float(p["mean_radius"]),
            active_fraction=metrics["active_fraction"],
            thickness_m=thickness,
            source={"design": "nominal geometry, Bruggeman transport"},
        )
        metrics["particle_radius_m"] = float(p["mean_radius"])
    p0 = _load_cell(ev.cell)
    p1 = apply_micro(p0, micro, transport="micro" if fidelity == "micro" else "bruggeman")
    if ev.balance_negative:
        ratio = p1.theoretical_capacity_Ah("positive") / p0.theoretical_capacity_Ah("positive")
        p1 = p1.with_values(
            {
                "negative.thickness_m": p0.negative.thickness_m * ratio,
                "cell.nominal_capacity_Ah": p0.cell.nominal_capacity_Ah * ratio,
            },
            source="design",
            note="negative electrode and nominal capacity scaled with the positive capacity",
        )
    rates = check_c_rates((ev.low_c_rate, ev.high_c_rate))
    sim = get_simulator(p1, geometry_inputs=_GEOMETRY_INPUTS)
    curves = [run.curve for run in sim.run(rates, params=p1, on_failure="record")]
    lo, hi = curves[0], curves[-1]
    volume = p1.cell.electrode_area_m2 * thickness
    metrics["electrode_volume_m3"] = volume
    metrics["capacity_low_Ah"] = lo.final_capacity_Ah
    metrics["capacity_high_Ah"] = hi.final_capacity_Ah
    metrics["energy_low_Wh"] = lo.energy_Wh
    metrics["energy_high_Wh"] = hi.energy_Wh
    if not (lo.complete and hi.complete):
        bad = [f"{c.c_rate:g}C: {c.status}" for c in curves]
        raise _EvalError(f"the P2D discharge did not complete ({'; '.join(bad)})")


def _resolved(
    ms: Microstructure, ev: EvaluationSettings, metrics: dict[str, float], heterogeneity: bool
) -> None:
    """Energy and power metrics from the resolved half-cell (fills ``metrics``).

    With ``heterogeneity`` the high-rate run is watched by a ``PlatingMonitor`` with
    the labelled particles, and ``metrics["heterogeneity_index"]`` is the aging
    heterogeneity index at its end.
    """
    from microbat.cell.resolved import ResolvedOptions, simulate_discharge

    opts = ResolvedOptions(max_steps=ev.resolved_max_steps)
    runs = {}
    monitor = None
    if heterogeneity:
        from microbat.degradation.particles import label_particles
        from microbat.degradation.plating import PlatingMonitor

        monitor = PlatingMonitor(ms, particles=label_particles(ms))
    for key, rate in (("low", ev.low_c_rate), ("high", ev.high_c_rate)):
        res = simulate_discharge(
            ms,
            ev.cell,
            c_rate=rate,
            options=opts,
            snapshot_times=(),
            on_fields=monitor if key == "high" else None,
        )
        if not res.complete:
            raise _EvalError(f"the resolved discharge at {rate:g}C stopped: {res.status}")
        runs[key] = res
    volume = float(np.prod(ms.extent))
    metrics["electrode_volume_m3"] = volume
    for key, res in runs.items():
        metrics[f"capacity_{key}_Ah"] = res.capacity_Ah
        metrics[f"energy_{key}_Wh"] = res.energy_Wh
    if monitor is not None:
        from microbat.degradation.heterogeneity import aging_heterogeneity

        c_max = _load_cell(ev.cell).positive.max_concentration_mol_per_m3
        het = aging_heterogeneity(monitor, c_max=c_max)
        metrics["heterogeneity_index"] = float(np.asarray(het.index)[-1])


def _mechanics(ms: Microstructure, ev: EvaluationSettings, metrics: dict[str, float]) -> None:
    from microbat.degradation.fracture import screen_particles
    from microbat.degradation.particles import label_particles

    parts = label_particles(ms)
    scr = screen_particles(parts, [ev.charge_c_rate], direction="delithiation")
    tens = np.asarray(scr.tensile_stress_Pa)[0]
    metrics["peak_stress"] = float(np.percentile(tens, 95)) / 1e6
    metrics["cracked_fraction"] = float(np.asarray(scr.cracked_volume_fraction)[0])
    metrics["particles"] = float(tens.size)


class _EvalError(MicrobatError):
    """A model could not give the trial's objectives (recorded, not raised)."""


def evaluate_design(
    params: Mapping[str, Any],
    *,
    fidelity: str | None = None,
    seed: int = 0,
    space: DesignSpace | None = None,
    objectives: Sequence[str] | None = None,
    resolution: Resolution | Sequence[Any] | None = None,
    evaluation: EvaluationSettings | None = None,
    constraints: ConstraintSettings | None = None,
    microstructure: Microstructure | None = None,
    keep_microstructure: bool = False,
) -> TrialOutcome:
    """Generate one design and evaluate its objectives and constraints.

    Parameters
    ----------
    params : mapping
        Descriptor values; the others take the space's fixed values (or defaults).
    fidelity : {"bruggeman", "micro", "resolved"}, optional
        The model (default: the space's ``evaluation.fidelity``, else ``"micro"``).
    seed : int, default 0
        Seed of the microstructure.
    space : DesignSpace, optional
        Supplies the fixed descriptors, objectives, resolution, evaluation and
        constraint settings (each overridable by the arguments below).
    objectives : sequence of str, optional
        Objectives to report (default: the space's, else every available one).
    resolution, evaluation, constraints : settings, optional
        Override the space's sections.
    microstructure : Microstructure, optional
        Evaluate this sample instead of generating one (e.g. the same sample at
        three fidelities).
    keep_microstructure : bool, default False
        Keep the sample in the outcome.

    Returns
    -------
    TrialOutcome
        A failed model or a broken constraint is recorded in the outcome
        (``status``, ``error``, ``violated``), never raised: a study reports it.

    Raises
    ------
    InvalidInputError
        Unknown descriptors, objectives or fidelity (errors of the request itself).
    """
    t0 = time.perf_counter()
    ev = evaluation or (space.evaluation if space is not None else EvaluationSettings())
    cons = constraints or (space.constraints if space is not None else ConstraintSettings())
    res = _resolution(
        resolution if resolution is not None else (space.resolution if space else None)
    )
    fid = fidelity or ev.fidelity
    if fid not in FIDELITIES:
        raise InvalidInputError(f"unknown fidelity {fid!r}; use one of {', '.join(FIDELITIES)}")
    names = list(objectives or (space.objectives if space is not None else OBJECTIVES))
    for n in names:
        check_objective(n)
    if fid != "resolved" and any(OBJECTIVES[n].needs == "resolved" for n in names):
        raise InvalidInputError(
            "heterogeneity_index needs the resolved fidelity (the particles' state of "
            "charge on the voxels): set evaluation.fidelity = 'resolved'"
        )
    gen = infer_generator(params, space)
    if gen == "composite":
        bad = [n for n in names if OBJECTIVES[n].needs in ("cell", "resolved")]
        if bad:
            raise InvalidInputError(
                f"objective {bad[0]} needs a cell model, and microbat has none for a "
                "solid-state composite cathode yet"
            )
    p = complete_params(params, space, gen)
    perc = space.percolation if space is not None else None
    if perc is None and cons.percolation is None:
        from microbat.design.space import DEFAULT_PERCOLATION

        perc = DEFAULT_PERCOLATION[gen]
    metrics: dict[str, float] = {}
    error: str | None = None
    g: dict[str, float] = {}
    ms = microstructure
    try:
        if ms is None:
            ms = generate_design(p, seed, res, generator=gen)
        fr = ms.volume_fractions()
        voids = "electrolyte" if ms.phases_with_role("electrolyte") else "gas"
        metrics["porosity"] = float(ms.fraction(voids)) if ms.phases_with_role(voids) else 0.0
        metrics["cbd_fraction"] = float(fr.get("cbd", 0.0))
        metrics["active_fraction"] = float(fr.get("active", ms.fraction("active")))
        g = evaluate_constraints(cons, p, ms, metrics, perc)
        needs = {OBJECTIVES[n].needs for n in names}
        blocked = [
            k.split(":", 1)[1] for k, v in g.items() if k.startswith("percolation:") and v > 0
        ]
        model = bool(needs & {"cell", "resolved"})
        if blocked and model:
            raise _EvalError(
                f"not evaluated: the {', '.join(blocked)} phase does not connect the current "
                "collector to the separator"
            )
        if model:
            if fid == "resolved":
                _resolved(ms, ev, metrics, heterogeneity="resolved" in needs)
            else:
                _p2d(ms, p, ev, fid, metrics)
            _cell_objectives(p, ev, fid, metrics)
        if "mechanics" in needs:
            _mechanics(ms, ev, metrics)
        if "transport" in needs:
            _ionic(ms, gen, metrics)
        metrics["active_volume_fraction"] = metrics["active_fraction"]
    except MicrobatError as exc:
        error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    except (ValueError, ArithmeticError, RuntimeError) as exc:  # a model's own failure
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        metrics["traceback_tail"] = traceback.format_exc(limit=2)[-400:]  # type: ignore[assignment]
    if not g:
        g = {k: math.nan for k in _constraint_keys(cons, perc)}
    objs = {n: float(metrics.get(n, math.nan)) for n in names}
    violated = tuple(k for k, v in g.items() if not v <= 0.0)
    computed = all(math.isfinite(v) for v in objs.values())
    status = "infeasible" if violated else "failed" if error or not computed else "ok"
    if status == "failed" and error is None:
        error = "an objective could not be computed"
    wall = time.perf_counter() - t0
    return TrialOutcome(
        params=to_jsonable(p),
        seed=int(seed),
        fidelity=fid,
        objectives=objs,
        constraints=g,
        feasible=status == "ok",
        violated=violated,
        metrics=metrics,
        status=status,
        error=error,
        wall_time_s=wall,
        microstructure=ms if keep_microstructure else None,
        provenance=Provenance(
            "microbat.design.evaluate_design",
            parameters={
                "params": to_jsonable(p),
                "fidelity": fid,
                "objectives": names,
                "resolution": res.model_dump(),
                "evaluation": ev.model_dump(),
            },
            seed=int(seed),
            wall_time_s=wall,
        ),
    )


def _constraint_keys(cons: ConstraintSettings, perc: tuple[str, ...] | None) -> list[str]:
    from microbat.design.constraints import constraint_names

    return constraint_names(cons, perc)


def _ionic(ms: Microstructure, generator: str, metrics: dict[str, float]) -> None:
    """Through-plane ε/τ of the ion-conducting phase (0 when it does not percolate)."""
    from microbat.transport.diffusion import tortuosity

    phase = "solid_electrolyte" if generator == "composite" else "electrolyte"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(percolat|connect)")
        res = tortuosity(ms, phase=phase, axis=0, keep_field=False)
    tau = res.tau[0] if isinstance(res.tau, tuple | list) else res.tau
    eps = float(ms.fraction(phase))
    ok = tau is not None and math.isfinite(float(tau)) and float(tau) > 0
    metrics["tau_ion"] = float(tau) if ok else math.inf
    metrics["ionic_transport"] = eps / float(tau) if ok else 0.0


def _cell_objectives(
    p: Mapping[str, Any], ev: EvaluationSettings, fidelity: str, m: dict[str, float]
) -> None:
    """Objective values from the discharge metrics (Wh/L, Wh/kg, ratios, kg/kWh)."""
    v = m["electrode_volume_m3"]
    e_lo, e_hi = m["energy_low_Wh"], m["energy_high_Wh"]
    rho = (
        m["active_fraction"] * ev.active_density
        + m["cbd_fraction"] * ev.cbd_density
        + m["porosity"] * ev.electrolyte_density
    )
    m["coating_density_kg_per_m3"] = rho
    m["energy_density"] = e_lo / v * 1e-3  # Wh/m³ → Wh/L
    m["high_rate_energy_density"] = e_hi / v * 1e-3
    m["specific_energy"] = e_lo / (v * rho)
    m["power_retention"] = m["capacity_high_Ah"] / m["capacity_low_Ah"]
    m["active_mass_kg"] = m["active_fraction"] * ev.active_density * v
    m["active_cost"] = m["active_mass_kg"] / (e_lo * 1e-3)
