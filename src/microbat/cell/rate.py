"""Rate capability: constant-current discharges from full charge at several C-rates.

For each rate the cell is discharged at ``I = C · Q_nominal`` from the state
``set_initial_state(initial_soc)`` gives (full charge by default) to the lower
cut-off voltage. Reported per rate: delivered capacity (A·h), energy ``∫ V I dt``
(W·h), average voltage (energy / capacity), average power (energy / duration), the
fraction of the capacity delivered at the reference rate (C/10), the time the
solve took, and — from :mod:`microbat.cell.breakdown` — the limiting mechanism.

A curve that did not reach a physical end (solver failure recorded with
``on_failure="record"``, or the time limit) is marked incomplete and its capacity,
energy and fraction are NaN (``null`` in JSON): a truncated curve is never
reported as a complete discharge.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from microbat.cell.breakdown import VoltageBreakdownResult, collect_breakdown
from microbat.cell.bridge import DischargeCurve, check_c_rates, get_simulator
from microbat.cell.micro import MicroProperties, resolve_parameters
from microbat.cell.parameters import CellParameters
from microbat.core.results import Provenance, Result, to_jsonable

__all__ = ["DEFAULT_C_RATES", "RateCapabilityResult", "rate_capability"]

#: Default C-rates: C/10, C/2, 1C, 2C, 3C, 5C.
DEFAULT_C_RATES = (0.1, 0.5, 1.0, 2.0, 3.0, 5.0)


@dataclass(frozen=True)
class RateCapabilityResult(Result):
    """Rate-capability table, curves and limitations.

    All per-rate tuples are aligned with :attr:`c_rate` (ascending).

    Attributes
    ----------
    c_rate : tuple of float
        Discharge rates (1/h, relative to the nominal capacity).
    current_A : tuple of float
    capacity_Ah, energy_Wh, average_voltage_V, average_power_W, duration_s : tuple of float
        NaN where the discharge is incomplete.
    fraction : tuple of float
        Capacity over the capacity at :attr:`reference_c_rate`.
    solve_time_s : tuple of float
        Wall time of each rate's solve and read-out.
    status : tuple of str
        ``"cut-off"``, ``"event: ..."``, ``"time limit"`` or ``"failure"``.
    complete : tuple of bool
    bottleneck, bottleneck_key : tuple of str
        The limitation at each rate in words and as a key (empty without breakdown).
    reference_c_rate, reference_capacity_Ah : float
    curves : tuple of DischargeCurve
    breakdown : VoltageBreakdownResult or None
    model, transport : str
    initial_state : dict
        How full charge was defined and the initial stoichiometries.
    build_time_s, total_time_s : float
        Model build (0 when cached) and whole-call wall time.
    provenance : Provenance
    """

    c_rate: tuple[float, ...]
    current_A: tuple[float, ...]
    capacity_Ah: tuple[float, ...]
    energy_Wh: tuple[float, ...]
    average_voltage_V: tuple[float, ...]
    average_power_W: tuple[float, ...]
    duration_s: tuple[float, ...]
    fraction: tuple[float, ...]
    solve_time_s: tuple[float, ...]
    status: tuple[str, ...]
    complete: tuple[bool, ...]
    bottleneck: tuple[str, ...]
    bottleneck_key: tuple[str, ...]
    reference_c_rate: float
    reference_capacity_Ah: float
    curves: tuple[DischargeCurve, ...]
    breakdown: VoltageBreakdownResult | None
    model: str
    transport: str
    initial_state: dict[str, Any]
    build_time_s: float
    total_time_s: float
    provenance: Provenance = field(default_factory=lambda: Provenance("rate_capability"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: the aligned per-rate lists, without the time series."""
        out = {
            k: to_jsonable(getattr(self, k))
            for k in (
                "c_rate",
                "current_A",
                "capacity_Ah",
                "energy_Wh",
                "average_voltage_V",
                "average_power_W",
                "duration_s",
                "fraction",
                "solve_time_s",
                "status",
                "complete",
                "bottleneck",
                "bottleneck_key",
                "reference_c_rate",
                "reference_capacity_Ah",
                "model",
                "transport",
                "initial_state",
                "build_time_s",
                "total_time_s",
            )
        }
        if self.breakdown is not None:
            out["breakdown"] = [r.to_dict() for r in self.breakdown.rates]
        out["provenance"] = self.provenance.to_dict()
        return out

    def table(self) -> list[dict[str, Any]]:
        """One row per rate (for CSV or printing)."""
        return [
            {
                "c_rate": self.c_rate[i],
                "current_A": self.current_A[i],
                "capacity_Ah": self.capacity_Ah[i],
                "energy_Wh": self.energy_Wh[i],
                "average_voltage_V": self.average_voltage_V[i],
                "average_power_W": self.average_power_W[i],
                "fraction": self.fraction[i],
                "status": self.status[i],
                "bottleneck": self.bottleneck_key[i] if self.bottleneck_key else "",
                "solve_time_s": self.solve_time_s[i],
            }
            for i in range(len(self.c_rate))
        ]

    def plot(self, kind: Literal["curves", "capacity", "ragone"] = "curves", ax: Any = None):
        """Discharge curves, capacity vs rate, or Ragone (energy vs power)."""
        from microbat.cell import plots

        fn = {
            "curves": plots.plot_discharge_curves,
            "capacity": plots.plot_capacity_vs_rate,
            "ragone": plots.plot_ragone,
        }[kind]
        return fn(self, ax=ax)

    def save(self, out_dir: str | Path) -> list[Path]:
        """Write ``rate_capability.json``/``.csv``, ``curves.csv`` and PNG plots."""
        from microbat.cell.plots import write_rate_capability

        return write_rate_capability(self, out_dir)


def rate_capability(
    params: CellParameters,
    *,
    c_rates: Sequence[float] = DEFAULT_C_RATES,
    model: str = "DFN",
    transport: Literal["bruggeman", "micro"] = "bruggeman",
    micro: MicroProperties | None = None,
    initial_soc: float = 1.0,
    reference_c_rate: float = 0.1,
    breakdown: bool = True,
    threads: int = 1,
    mesh_points: Mapping[str, int] | None = None,
    solver_options: Mapping[str, Any] | None = None,
    on_failure: Literal["raise", "record"] = "raise",
) -> RateCapabilityResult:
    """Discharge capacity, energy and limitation at several C-rates.

    Parameters
    ----------
    params : CellParameters
        Cell parameters (``CellParameters.from_name("chen2020")``, a BPX file, ...).
    c_rates : sequence of float, default (0.1, 0.5, 1, 2, 3, 5)
        Discharge rates (positive; sorted and de-duplicated).
    model : {"DFN", "P2D", "SPMe"}
        PyBaMM model; SPMe is faster and less accurate at high rate.
    transport : {"bruggeman", "micro"}
        Effective transport: published Bruggeman exponents, or ``ε/τ`` from ``micro``.
    micro : MicroProperties, optional
        Microstructure-derived properties of one electrode (geometry is applied for
        both transport choices).
    initial_soc : float, default 1.0
        Starting state of charge (PyBaMM ``set_initial_state``).
    reference_c_rate : float, default 0.1
        Rate whose capacity defines ``fraction`` (run in addition when not listed).
    breakdown : bool, default True
        Also compute the voltage-loss breakdown and name the bottleneck at each rate.
    threads : int, default 1
        Solve the rates together with IDAKLU's OpenMP threads (measured on 2 shared
        cores: no gain for six DFN rates, see ``benchmarks/bench_p2d.py``).
    mesh_points, solver_options : mapping, optional
        See :class:`~microbat.cell.bridge.CellSimulator`.
    on_failure : {"raise", "record"}
        Raise :class:`~microbat.core.errors.ConvergenceError` on a solver failure
        (with the time and state reached), or record the curve as incomplete.

    Returns
    -------
    RateCapabilityResult

    Raises
    ------
    InvalidInputError
        Bad C-rates (negative, zero, NaN, > 100C), unknown model or transport,
        ``transport="micro"`` without ``micro``.
    ConvergenceError
        The solver failed (with ``on_failure="raise"``).

    Notes
    -----
    The model is built once (≈ 0.3 s for the DFN) and cached; the current and the
    effective-transport parameters are PyBaMM inputs, so each rate costs one solve
    (≈ 30 ms warm for the DFN away from the electrolyte-depletion cliff, a few
    hundred ms at it).

    Examples
    --------
    >>> p = CellParameters.from_name("chen2020")  # doctest: +SKIP
    >>> r = rate_capability(p, c_rates=(0.1, 1, 3))  # doctest: +SKIP
    >>> [round(f, 2) for f in r.fraction]  # doctest: +SKIP
    [1.0, 0.97, 0.45]
    """
    t0 = time.perf_counter()
    rates = check_c_rates(c_rates)
    ref = check_c_rates([reference_c_rate])[0]
    p = resolve_parameters(params, transport=transport, micro=micro)
    sim = get_simulator(
        p,
        model=model,
        initial_soc=initial_soc,
        mesh_points=mesh_points,
        solver_options=solver_options,
        threads=threads,
    )
    all_rates = rates if ref in rates else tuple(sorted((*rates, ref)))
    runs = sim.run(all_rates, params=p, on_failure=on_failure)
    by_rate = dict(zip(all_rates, runs, strict=True))
    ref_cap = by_rate[ref].curve.final_capacity_Ah
    kept = [by_rate[c] for c in rates]
    curves = tuple(r.curve for r in kept)
    parts = collect_breakdown(kept, p, sim.regions) if breakdown else ()
    caps = tuple(c.final_capacity_Ah for c in curves)
    energies = tuple(c.energy_Wh for c in curves)
    durations = tuple(float(c.time_s[-1]) if c.complete else math.nan for c in curves)
    bd = None
    if breakdown:
        bd = VoltageBreakdownResult(
            c_rate=rates,
            bottleneck=tuple(b.bottleneck for b in parts),
            bottleneck_key=tuple(b.bottleneck_key for b in parts),
            rates=parts,
            max_residual_V=max(b.max_residual_V for b in parts),
            model=sim.model_name,
            transport=transport,
        )
    total = time.perf_counter() - t0
    return RateCapabilityResult(
        c_rate=rates,
        current_A=tuple(c.current_A for c in curves),
        capacity_Ah=caps,
        energy_Wh=energies,
        average_voltage_V=tuple(_div(e, q) for e, q in zip(energies, caps, strict=True)),
        average_power_W=tuple(
            _div(3600.0 * e, d) for e, d in zip(energies, durations, strict=True)
        ),
        duration_s=durations,
        fraction=tuple(_div(q, ref_cap) for q in caps),
        solve_time_s=tuple(c.solve_time_s for c in curves),
        status=tuple(c.status for c in curves),
        complete=tuple(c.complete for c in curves),
        bottleneck=tuple(b.bottleneck for b in parts),
        bottleneck_key=tuple(b.bottleneck_key for b in parts),
        reference_c_rate=ref,
        reference_capacity_Ah=ref_cap,
        curves=curves,
        breakdown=bd,
        model=sim.model_name,
        transport=transport,
        initial_state=dict(sim.initial_state),
        build_time_s=sim.build_time_s if sim.uses == 1 else 0.0,
        total_time_s=total,
        provenance=Provenance(
            "microbat.cell.rate_capability",
            parameters={
                "c_rates": list(rates),
                "model": sim.model_name,
                "transport": transport,
                "initial_soc": initial_soc,
                "reference_c_rate": ref,
                "threads": threads,
                "mesh_points": dict(mesh_points or {}),
                "cell_parameters": p.to_dict(),
            },
            wall_time_s=total,
            inputs={"micro": micro.to_dict() if micro is not None else None},
        ),
    )


def _div(a: float, b: float) -> float:
    if not (math.isfinite(a) and math.isfinite(b)) or b == 0:
        return math.nan
    return a / b
