r"""Where the voltage goes: an exact breakdown of ``OCV − V`` during a discharge.

For the porous-electrode model the terminal voltage splits *exactly* (every
quantity x-averaged over its electrode with uniform weight):

.. math::

    V = U_{bulk} + \eta_{particle} + \bar\eta_{r} + \Delta\bar\phi_{e,ohm}
        + \Delta\bar\phi_{e,conc} + \Delta\bar\phi_{s}

with ``U_bulk`` the bulk open-circuit voltage (OCPs at the electrode-averaged
stoichiometries), ``η_particle`` the difference between the x-averaged surface OCPs
and ``U_bulk`` (solid diffusion, within and across particles), ``η_r`` the reaction
overpotentials, the electrolyte potential drop split into its ohmic part and its
concentration (diffusion) part ``∫ 2(1 − t+)χ RT/F ∂ ln c_e``, and the solid-phase
ohmic drop. The identity follows from ``φ_s − φ_e = U(c_surf) + η`` at every point,
so it holds to solver round-off; this module reports the residual at every step
and the tests hold it below 1 mV. The terms are PyBaMM's own output variables
(``"Bulk open-circuit voltage [V]"``, ``"Particle concentration overpotential
[V]"``, ``"X-averaged reaction overpotential [V]"``, ``"X-averaged electrolyte
ohmic losses [V]"``, ``"X-averaged concentration overpotential [V]"``,
``"X-averaged solid phase ohmic losses [V]"``); losses are reported as positive
numbers on discharge (``loss = −η``) so that ``OCV − V = Σ losses``.

Bottleneck
----------
At the end of each discharge the limitation is named by these rules, in order:

1. the curve is incomplete → ``"incomplete"``;
2. the electrolyte is depleted somewhere (``min c_e < 5 %`` of its initial value) →
   ``"electrolyte"`` (depletion; the reaction term then diverges as well because the
   exchange current density goes as ``√c_e``);
3. the total loss at cut-off is below 0.1 V → ``"equilibrium"`` (the cut-off is met
   on the open-circuit curve: capacity limited by thermodynamics and balancing);
4. otherwise the largest of electrolyte transport (ohmic + concentration), solid
   diffusion, reaction and solid ohmic loss at cut-off.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from microbat.cell._components import COMPONENT_LABELS as COMPONENT_LABELS  # re-export
from microbat.cell._components import COMPONENTS
from microbat.cell.bridge import (
    BREAKDOWN_VARIABLES,
    ELECTROLYTE_CONCENTRATION,
    _Run,
    check_c_rates,
    get_simulator,
)
from microbat.cell.micro import MicroProperties, resolve_parameters
from microbat.cell.parameters import CellParameters
from microbat.core.results import Provenance, Result, to_jsonable

__all__ = [
    "COMPONENTS",
    "DEPLETION_FRACTION",
    "EQUILIBRIUM_LOSS_V",
    "RateBreakdown",
    "VoltageBreakdownResult",
    "voltage_breakdown",
]

#: Electrolyte counted as depleted below this fraction of its initial concentration.
DEPLETION_FRACTION = 0.05
#: Total loss at cut-off below which the discharge is called equilibrium-limited (V).
EQUILIBRIUM_LOSS_V = 0.1


@dataclass(frozen=True)
class RateBreakdown(Result):
    """Time-resolved voltage-loss breakdown of one discharge.

    Attributes
    ----------
    c_rate : float
    time_s, capacity_Ah, voltage_V, ocv_V : ndarray
        Time, discharged capacity, terminal voltage, bulk open-circuit voltage.
    losses_V : dict of str to ndarray
        The five components of :data:`COMPONENTS` (V, positive on discharge).
    detail_V : dict of str to ndarray
        Per-electrode parts of ``reaction``, ``solid_diffusion`` and ``ohmic_solid``
        (keys ``"reaction_negative"`` ...).
    residual_V : ndarray
        ``(OCV − V) − Σ losses`` at every step (closure check).
    electrolyte_min_fraction : ndarray
        Lowest electrolyte concentration in the cell over its initial value.
    depleted_region : str
        Region of the lowest electrolyte concentration at the end.
    bottleneck_key : str
        ``"electrolyte"``, ``"solid_diffusion"``, ``"reaction"``, ``"ohmic_solid"``,
        ``"equilibrium"`` or ``"incomplete"``.
    bottleneck : str
        The limitation in words, with numbers.
    final_loss_V, mean_loss_V : dict of str to float
        Losses at cut-off and averaged over time.
    complete : bool
        Whether the discharge reached a physical end.
    """

    c_rate: float
    time_s: np.ndarray
    capacity_Ah: np.ndarray
    voltage_V: np.ndarray
    ocv_V: np.ndarray
    losses_V: dict[str, np.ndarray]
    detail_V: dict[str, np.ndarray]
    residual_V: np.ndarray
    electrolyte_min_fraction: np.ndarray
    depleted_region: str
    bottleneck_key: str
    bottleneck: str
    final_loss_V: dict[str, float]
    mean_loss_V: dict[str, float]
    complete: bool

    @property
    def max_residual_V(self) -> float:
        """Largest absolute closure error over the discharge (V)."""
        return float(np.max(np.abs(self.residual_V)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (time series summarised; use :meth:`to_table` for them)."""
        return to_jsonable(
            {
                "c_rate": self.c_rate,
                "bottleneck_key": self.bottleneck_key,
                "bottleneck": self.bottleneck,
                "final_loss_V": self.final_loss_V,
                "mean_loss_V": self.mean_loss_V,
                "max_residual_V": self.max_residual_V,
                "electrolyte_min_fraction_end": float(self.electrolyte_min_fraction[-1]),
                "depleted_region": self.depleted_region,
                "n_steps": int(self.time_s.size),
                "complete": self.complete,
            }
        )

    def to_table(self) -> dict[str, np.ndarray]:
        """Column name → array: time, capacity, V, OCV, the losses, residual."""
        cols = {
            "time_s": self.time_s,
            "capacity_Ah": self.capacity_Ah,
            "voltage_V": self.voltage_V,
            "ocv_V": self.ocv_V,
        }
        cols.update({f"{k}_V": v for k, v in self.losses_V.items()})
        cols.update({f"{k}_V": v for k, v in self.detail_V.items()})
        cols["residual_V"] = self.residual_V
        cols["electrolyte_min_fraction"] = self.electrolyte_min_fraction
        return cols


def breakdown_from_run(
    run: _Run, params: CellParameters, regions: Mapping[str, int]
) -> RateBreakdown:
    """Compute the breakdown of one solved discharge (see the module notes).

    ``regions`` gives the number of mesh cells of the negative electrode, separator
    and positive electrode (``CellSimulator.regions``).
    """
    sol = run.solution
    curve = run.curve
    g = {k: np.asarray(sol[name].entries, dtype=float) for k, name in BREAKDOWN_VARIABLES.items()}
    losses = {
        "ohmic_electrolyte": -g["e_ohm"],
        "concentration_electrolyte": -g["e_conc"],
        "ohmic_solid": -g["solid"],
        "reaction": -g["reaction"],
        "solid_diffusion": -g["particle"],
    }
    detail = {
        "reaction_negative": g["reaction_n"],
        "reaction_positive": -g["reaction_p"],
        "solid_diffusion_negative": g["particle_n"],
        "solid_diffusion_positive": -g["particle_p"],
        "ohmic_solid_negative": g["solid_n"],
        "ohmic_solid_positive": -g["solid_p"],
    }
    total = g["ocv"] - g["V"]
    residual = total - np.sum([losses[k] for k in COMPONENTS], axis=0)
    c0 = params.electrolyte.initial_concentration_mol_per_m3
    ce = np.asarray(sol[ELECTROLYTE_CONCENTRATION].entries, dtype=float)
    ce_min = np.min(ce, axis=0) / c0
    edges = np.cumsum(list(regions.values()))
    region = list(regions)[int(np.searchsorted(edges, int(np.argmin(ce[:, -1])), side="right"))]
    final = {k: float(v[-1]) for k, v in losses.items()}
    mean = {k: float(np.mean(v)) for k, v in losses.items()}
    key, words = _bottleneck(
        curve.complete, final, detail, float(ce_min[-1]), region, params.counter is not None
    )
    return RateBreakdown(
        c_rate=curve.c_rate,
        time_s=curve.time_s,
        capacity_Ah=curve.capacity_Ah,
        voltage_V=g["V"],
        ocv_V=g["ocv"],
        losses_V=losses,
        detail_V=detail,
        residual_V=residual,
        electrolyte_min_fraction=ce_min,
        depleted_region=region,
        bottleneck_key=key,
        bottleneck=words,
        final_loss_V=final,
        mean_loss_V=mean,
        complete=curve.complete,
    )


def _bottleneck(
    complete: bool,
    final: Mapping[str, float],
    detail: Mapping[str, np.ndarray],
    ce_min: float,
    region: str,
    half_cell: bool = False,
) -> tuple[str, str]:
    mv = {k: 1e3 * v for k, v in final.items()}
    if not complete:
        return "incomplete", "unknown: the discharge did not reach its end (see status)"
    if ce_min < DEPLETION_FRACTION:
        return "electrolyte", (
            f"electrolyte transport: the electrolyte is depleted in the {region} "
            f"(lowest concentration {100 * max(ce_min, 0.0):.1f}% of the initial value), so "
            f"ionic resistance ({mv['ohmic_electrolyte']:.0f} mV), concentration polarisation "
            f"({mv['concentration_electrolyte']:.0f} mV) and the starved reaction "
            f"({mv['reaction']:.0f} mV) end the discharge"
        )
    total = sum(final.values())
    if total < EQUILIBRIUM_LOSS_V:
        return "equilibrium", (
            f"none: the cut-off is reached close to equilibrium (total loss {1e3 * total:.0f} "
            "mV); capacity is set by the open-circuit curves and electrode balance"
        )
    groups = {
        "electrolyte": final["ohmic_electrolyte"] + final["concentration_electrolyte"],
        "solid_diffusion": final["solid_diffusion"],
        "reaction": final["reaction"],
        "ohmic_solid": final["ohmic_solid"],
    }
    key = max(groups, key=lambda k: groups[k])
    share = 100 * groups[key] / total
    if key == "electrolyte":
        return key, (
            f"electrolyte transport ({1e3 * groups[key]:.0f} mV at cut-off, {share:.0f}% of "
            f"the loss: ohmic {mv['ohmic_electrolyte']:.0f} mV, concentration "
            f"{mv['concentration_electrolyte']:.0f} mV)"
        )
    neg = float(detail[f"{key}_negative"][-1])
    pos = float(detail[f"{key}_positive"][-1])
    where = "positive" if pos >= neg else "negative"
    if half_cell and where == "negative":
        # a half cell: PyBaMM's negative-side kinetics are the lithium-metal counter
        # electrode's; it has no particles or solid network of its own
        if key == "reaction":
            words = "reaction kinetics at the lithium-metal counter electrode"
            return key, f"{words} ({1e3 * groups[key]:.0f} mV at cut-off, {share:.0f}% of the loss)"
        where = "positive"
    words = {
        "solid_diffusion": f"solid-state diffusion in the {where} particles",
        "reaction": f"reaction kinetics in the {where} electrode",
        "ohmic_solid": f"electronic conduction in the {where} electrode",
    }[key]
    return key, f"{words} ({1e3 * groups[key]:.0f} mV at cut-off, {share:.0f}% of the loss)"


@dataclass(frozen=True)
class VoltageBreakdownResult(Result):
    """Voltage-loss breakdown at several rates.

    Attributes
    ----------
    c_rate : tuple of float
    bottleneck, bottleneck_key : tuple of str
        The limitation at each rate (see the module notes).
    rates : tuple of RateBreakdown
        Time-resolved breakdown per rate.
    max_residual_V : float
        Largest closure error over all rates and steps.
    model, transport : str
    provenance : Provenance
    """

    c_rate: tuple[float, ...]
    bottleneck: tuple[str, ...]
    bottleneck_key: tuple[str, ...]
    rates: tuple[RateBreakdown, ...]
    max_residual_V: float
    model: str
    transport: str
    provenance: Provenance = field(default_factory=lambda: Provenance("voltage_breakdown"))

    def at(self, c_rate: float) -> RateBreakdown:
        """The breakdown at one rate."""
        for r in self.rates:
            if math.isclose(r.c_rate, c_rate, rel_tol=1e-9):
                return r
        raise KeyError(f"no breakdown at {c_rate}C; rates are {list(self.c_rate)}")

    def plot(self, c_rate: float | None = None, ax: Any = None) -> Any:
        """Stacked-area plot of the losses at one rate (default the highest)."""
        from microbat.cell.plots import plot_breakdown

        return plot_breakdown(self.at(c_rate if c_rate is not None else self.c_rate[-1]), ax=ax)

    def save(self, out_dir: str | Path) -> list[Path]:
        """Write ``breakdown.json``, one CSV per rate and stacked plots (PNG)."""
        from microbat.cell.plots import write_breakdown

        return write_breakdown(self, out_dir)


def collect_breakdown(
    runs: Sequence[_Run], params: CellParameters, regions: Mapping[str, int]
) -> tuple[RateBreakdown, ...]:
    """Breakdowns of solved discharges."""
    return tuple(breakdown_from_run(r, params, regions) for r in runs)


def voltage_breakdown(
    params: CellParameters,
    *,
    c_rates: Sequence[float] = (0.5, 1.0, 2.0, 3.0),
    model: str = "DFN",
    transport: Literal["bruggeman", "micro"] = "bruggeman",
    micro: MicroProperties | None = None,
    initial_soc: float = 1.0,
    mesh_points: Mapping[str, int] | None = None,
    solver_options: Mapping[str, Any] | None = None,
    on_failure: Literal["raise", "record"] = "raise",
) -> VoltageBreakdownResult:
    """Break the voltage loss of constant-current discharges into its parts.

    Parameters
    ----------
    params : CellParameters
        Cell parameters (published set or BPX).
    c_rates : sequence of float
        Discharge rates (positive), run from full charge to the lower cut-off.
    model : {"DFN", "P2D", "SPMe"}
    transport : {"bruggeman", "micro"}
        Effective-transport model; ``"micro"`` needs ``micro``.
    micro : MicroProperties, optional
        Microstructure-derived properties of one electrode.
    initial_soc : float, default 1.0
    mesh_points, solver_options : mapping, optional
        See :class:`~microbat.cell.bridge.CellSimulator`.
    on_failure : {"raise", "record"}

    Returns
    -------
    VoltageBreakdownResult

    Notes
    -----
    One DFN solve per rate (≈ 30-300 ms warm, the build ≈ 0.3 s once per session).
    The components close to ``OCV − V`` to solver round-off (≈ 1e-7 V for the DFN).
    """
    t0 = time.perf_counter()
    rates = check_c_rates(c_rates)
    p = resolve_parameters(params, transport=transport, micro=micro)
    sim = get_simulator(
        p,
        model=model,
        initial_soc=initial_soc,
        mesh_points=mesh_points,
        solver_options=solver_options,
    )
    runs = sim.run(rates, params=p, on_failure=on_failure)
    parts = collect_breakdown(runs, p, sim.regions)
    return VoltageBreakdownResult(
        c_rate=rates,
        bottleneck=tuple(b.bottleneck for b in parts),
        bottleneck_key=tuple(b.bottleneck_key for b in parts),
        rates=parts,
        max_residual_V=max(b.max_residual_V for b in parts),
        model=sim.model_name,
        transport=transport,
        provenance=Provenance(
            "microbat.cell.voltage_breakdown",
            parameters={
                "c_rates": list(rates),
                "model": sim.model_name,
                "transport": transport,
                "initial_state": sim.initial_state,
                "cell_parameters": p.to_dict(),
            },
            wall_time_s=time.perf_counter() - t0,
            inputs={"micro": micro.to_dict() if micro is not None else None},
        ),
    )
