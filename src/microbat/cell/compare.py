"""How wrong is Bruggeman? The same cell with two effective-transport models.

:func:`compare_transport` discharges one cell at several rates twice: (a) with the
published Bruggeman exponents applied to the microstructure's porosity, and (b) with
the micro-informed transport ``ε/τ`` measured on the microstructure. Everything else
(porosity, active fraction, thickness, particle radius, surface area) is the same
in both, so the differences isolate the transport assumption. Both runs share one
built PyBaMM model (the transport parameters are inputs).

Voltage differences are taken on the common part of the two discharges: both
curves are interpolated on 400 equally spaced times from 0 to the shorter duration
(at constant current, time and discharged capacity are proportional).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from microbat.cell.bridge import DischargeCurve, check_c_rates, get_simulator
from microbat.cell.micro import MicroProperties, apply_micro
from microbat.cell.parameters import CellParameters
from microbat.cell.rate import DEFAULT_C_RATES
from microbat.core.errors import InvalidInputError
from microbat.core.results import Provenance, Result, to_jsonable

__all__ = ["TransportComparisonResult", "compare_transport"]

_N_COMMON = 400


@dataclass(frozen=True)
class TransportComparisonResult(Result):
    """Bruggeman vs micro-informed transport, one row per rate.

    Attributes
    ----------
    c_rate : tuple of float
    capacity_bruggeman_Ah, capacity_micro_Ah : tuple of float
        Delivered capacity with each transport model (NaN when incomplete).
    capacity_difference_Ah : tuple of float
        ``micro − bruggeman``.
    capacity_difference_percent : tuple of float
        ``100 (micro − bruggeman) / bruggeman``: how far the micro-informed
        prediction departs from the Bruggeman one.
    voltage_rms_V, voltage_max_V : tuple of float
        RMS and largest absolute voltage difference over the common duration.
    electrode : str
        Electrode the microstructure describes.
    tau_electrolyte_bruggeman, tau_electrolyte_micro : float
        Electrolyte tortuosity factor implied by Bruggeman (``ε^(1−b)``) and measured.
    bruggeman_exponent_micro : float
        The exponent that reproduces ``ε/τ`` (``1 − ln τ / ln ε``).
    curves_bruggeman, curves_micro : tuple of DischargeCurve
    model : str
    provenance : Provenance
    """

    c_rate: tuple[float, ...]
    capacity_bruggeman_Ah: tuple[float, ...]
    capacity_micro_Ah: tuple[float, ...]
    capacity_difference_Ah: tuple[float, ...]
    capacity_difference_percent: tuple[float, ...]
    voltage_rms_V: tuple[float, ...]
    voltage_max_V: tuple[float, ...]
    electrode: str
    porosity: float
    tau_electrolyte_bruggeman: float
    tau_electrolyte_micro: float
    bruggeman_exponent_published: float
    bruggeman_exponent_micro: float
    curves_bruggeman: tuple[DischargeCurve, ...]
    curves_micro: tuple[DischargeCurve, ...]
    model: str
    provenance: Provenance = field(default_factory=lambda: Provenance("compare_transport"))

    _TABLE = (
        "c_rate",
        "capacity_bruggeman_Ah",
        "capacity_micro_Ah",
        "capacity_difference_Ah",
        "capacity_difference_percent",
        "voltage_rms_V",
        "voltage_max_V",
    )

    def table(self) -> list[dict[str, float]]:
        """The comparison table, one dict per rate."""
        return [{k: getattr(self, k)[i] for k in self._TABLE} for i in range(len(self.c_rate))]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (curves left out)."""
        out = {k: to_jsonable(getattr(self, k)) for k in self._TABLE}
        for k in (
            "electrode",
            "porosity",
            "tau_electrolyte_bruggeman",
            "tau_electrolyte_micro",
            "bruggeman_exponent_published",
            "bruggeman_exponent_micro",
            "model",
        ):
            out[k] = to_jsonable(getattr(self, k))
        out["provenance"] = self.provenance.to_dict()
        return out

    def plot(self, ax: Any = None) -> Any:
        """Discharge curves of both transport models at every rate."""
        from microbat.cell.plots import plot_comparison

        return plot_comparison(self, ax=ax)

    def save(self, out_dir: str | Path) -> list[Path]:
        """Write ``comparison.json``, ``comparison.csv`` and ``comparison.png``."""
        from microbat.cell.plots import write_comparison

        return write_comparison(self, out_dir)


def _voltage_difference(a: DischargeCurve, b: DischargeCurve) -> tuple[float, float]:
    t_end = min(float(a.time_s[-1]), float(b.time_s[-1]))
    if t_end <= 0:
        return math.nan, math.nan
    t = np.linspace(0.0, t_end, _N_COMMON)
    d = np.interp(t, b.time_s, b.voltage_V) - np.interp(t, a.time_s, a.voltage_V)
    return float(np.sqrt(np.mean(d * d))), float(np.max(np.abs(d)))


def compare_transport(
    params: CellParameters,
    micro: MicroProperties,
    *,
    c_rates: Sequence[float] = DEFAULT_C_RATES,
    model: str = "DFN",
    initial_soc: float = 1.0,
    mesh_points: Mapping[str, int] | None = None,
    solver_options: Mapping[str, Any] | None = None,
) -> TransportComparisonResult:
    """Capacity and voltage differences between Bruggeman and micro-informed transport.

    Parameters
    ----------
    params : CellParameters
        Published parameter set to start from.
    micro : MicroProperties
        Properties measured on the microstructure of ``micro.electrode``.
    c_rates : sequence of float, default (0.1, 0.5, 1, 2, 3, 5)
    model : {"DFN", "P2D", "SPMe"}
    initial_soc : float, default 1.0
    mesh_points, solver_options : mapping, optional

    Returns
    -------
    TransportComparisonResult
        One table: capacity with each model, their difference (A·h and %), and the
        RMS and largest voltage difference at each rate.

    Examples
    --------
    >>> p = CellParameters.from_name("chen2020")  # doctest: +SKIP
    >>> m = MicroProperties(porosity=0.335, tau_electrolyte=3.0)  # doctest: +SKIP
    >>> compare_transport(p, m, c_rates=(1, 2)).table()  # doctest: +SKIP
    """
    if not isinstance(micro, MicroProperties):
        raise InvalidInputError(
            "compare_transport needs micro=MicroProperties(...) (the measured properties)"
        )
    t0 = time.perf_counter()
    rates = check_c_rates(c_rates)
    p_b = apply_micro(params, micro, transport="bruggeman")
    p_m = apply_micro(params, micro, transport="micro")
    sim = get_simulator(
        p_b,
        model=model,
        initial_soc=initial_soc,
        mesh_points=mesh_points,
        solver_options=solver_options,
    )
    curves_b = tuple(r.curve for r in sim.run(rates, params=p_b))
    curves_m = tuple(r.curve for r in sim.run(rates, params=p_m))
    cap_b = tuple(c.final_capacity_Ah for c in curves_b)
    cap_m = tuple(c.final_capacity_Ah for c in curves_m)
    diffs = [_voltage_difference(a, b) for a, b in zip(curves_b, curves_m, strict=True)]
    el_b = p_b.electrode(micro.electrode)
    el_m = p_m.electrode(micro.electrode)
    return TransportComparisonResult(
        c_rate=rates,
        capacity_bruggeman_Ah=cap_b,
        capacity_micro_Ah=cap_m,
        capacity_difference_Ah=tuple(m - b for b, m in zip(cap_b, cap_m, strict=True)),
        capacity_difference_percent=tuple(
            100.0 * (m - b) / b if b > 0 else math.nan for b, m in zip(cap_b, cap_m, strict=True)
        ),
        voltage_rms_V=tuple(d[0] for d in diffs),
        voltage_max_V=tuple(d[1] for d in diffs),
        electrode=micro.electrode,
        porosity=micro.porosity,
        tau_electrolyte_bruggeman=el_b.tau_electrolyte,
        tau_electrolyte_micro=micro.tau_electrolyte,
        bruggeman_exponent_published=el_b.bruggeman_electrolyte,
        bruggeman_exponent_micro=el_m.bruggeman_electrolyte,
        curves_bruggeman=curves_b,
        curves_micro=curves_m,
        model=sim.model_name,
        provenance=Provenance(
            "microbat.cell.compare_transport",
            parameters={
                "c_rates": list(rates),
                "model": sim.model_name,
                "initial_soc": initial_soc,
                "parameters_bruggeman": p_b.to_dict(),
                "parameters_micro": p_m.to_dict(),
            },
            wall_time_s=time.perf_counter() - t0,
            inputs={"micro": micro.to_dict()},
        ),
    )
