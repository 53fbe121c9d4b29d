r"""What the micro-informed transport buys over Bruggeman: the "accuracy gained" table.

:func:`accuracy_gained` discharges each design (an electrode image, or descriptor
values turned into one by :func:`microbat.design.generate_design`) at a low and a
high C-rate with four models of the same half cell (porous positive electrode,
separator, lithium metal):

``resolved`` (the reference)
    The microstructure-resolved model on the voxels
    (:func:`microbat.cell.resolved.simulate_discharge`).
``tensor``
    PyBaMM's DFN with the properties measured on the image
    (:func:`microbat.cell.resolved.compare.homogenise`, transport ``"micro"``): the
    through-plane component of the pore phase's tortuosity tensor, the effective
    solid conductivity of a conduction solve, the measured reaction area.
``bruggeman``
    The DFN a design made without the image would use: the same porosity and active
    fraction, electrolyte transport ``ε^b`` with the set's Bruggeman exponent
    (Bruggeman 1935, b = 1.5), solid conductivity ``σ (1 − ε)^1.5`` and the area of
    spheres of the designed radius, ``a = 3 ε_act / R`` (Doyle, Fuller & Newman 1993).
``bruggeman_measured_area``
    Bruggeman transport with the *measured* area: isolates what the tensor itself
    changes (``tensor`` vs this) from what the measured area changes (this vs
    ``bruggeman``).

All four get the same current in amperes (the resolved model's C-rate definition)
and the same cut-off (3.5 V, see :mod:`microbat.cell.resolved.compare`, which runs
the resolved and the measured-property P2D here; this module adds the sphere-area
Bruggeman run and the ranking). For each design and model it reports the capacity
and energy at both rates and three objectives of :mod:`microbat.design.objectives`
per electrode volume of the image:

* ``energy_density`` — energy at the low rate per electrode volume (Wh/L);
* ``high_rate_energy_density`` — the same at the high rate (Wh/L);
* ``power_retention`` — capacity at the high rate over the low (–).

The error of a P2D model is ``100 (P2D − resolved) / resolved``. Across designs, each
model ranks the designs by the chosen objective (higher is better); the table says
which design each model would pick, whether it is the resolved model's pick, the
Spearman rank correlation with the resolved ranking (Spearman 1904), and the
*regret*: how much of the resolved optimum's objective is lost by building the design
the model picked (``100 (f_res(best) − f_res(pick)) / f_res(best)``).

References
----------
Bruggeman, D. A. G. (1935). Ann. Phys. 416, 636–664. doi:10.1002/andp.19354160705
Doyle, M., Fuller, T. F., Newman, J. (1993). J. Electrochem. Soc. 140, 1526.
doi:10.1149/1.2221597
Spearman, C. (1904). Am. J. Psychol. 15, 72–101. doi:10.2307/1412159
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from microbat.core.errors import InvalidInputError
from microbat.core.microstructure import Microstructure
from microbat.core.results import Provenance, Result, to_jsonable

__all__ = [
    "ACCURACY_MODELS",
    "ACCURACY_OBJECTIVES",
    "AccuracyResult",
    "accuracy_gained",
    "rank_agreement",
]

#: The models of the table; ``resolved`` is the reference.
ACCURACY_MODELS = ("resolved", "tensor", "bruggeman_measured_area", "bruggeman")
#: The P2D variants compared with the reference.
P2D_MODELS = ACCURACY_MODELS[1:]
#: Objectives the designs can be ranked by (all maximised).
ACCURACY_OBJECTIVES = ("high_rate_energy_density", "energy_density", "power_retention")
_LABEL = {
    "resolved": "resolved 3D",
    "tensor": "P2D tensor",
    "bruggeman_measured_area": "P2D Bruggeman, measured a",
    "bruggeman": "P2D Bruggeman",
}
_QUANTITIES = ("capacity_low_Ah", "capacity_high_Ah", "energy_low_Wh", "energy_high_Wh")


# ----------------------------------------------------------------------------- ranking
def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, highest value first (ties share their mean rank)."""
    from scipy.stats import rankdata

    return np.asarray(rankdata(-values, method="average"), float)


def rank_agreement(reference: Sequence[float], model: Sequence[float]) -> dict[str, Any]:
    """How a model's ranking of designs agrees with the reference ranking.

    Parameters
    ----------
    reference, model : sequence of float
        The objective of each design (higher is better) by the reference model and
        by the model, in the same design order.

    Returns
    -------
    dict
        ``pick`` (index of the model's best design), ``reference_pick``,
        ``same_pick`` (bool), ``spearman`` (rank correlation; NaN with fewer than
        two designs or a constant ranking), ``regret_percent`` (share of the
        reference optimum lost by building the model's pick), ``ranks`` (the model's
        rank of each design, 1 = best).

    Raises
    ------
    InvalidInputError
        Sequences of different lengths, empty, or a non-finite reference value.

    Examples
    --------
    >>> r = rank_agreement([3.0, 2.0, 1.0], [2.0, 3.0, 1.0])
    >>> r["pick"], r["same_pick"], round(r["spearman"], 3), round(r["regret_percent"], 1)
    (1, False, 0.5, 33.3)
    """
    ref = np.asarray(reference, float)
    mod = np.asarray(model, float)
    if ref.ndim != 1 or ref.shape != mod.shape or ref.size == 0:
        raise InvalidInputError(
            f"reference and model need one value per design, got {ref.shape} and {mod.shape}"
        )
    if not np.all(np.isfinite(ref)):
        raise InvalidInputError("the reference objective must be finite for every design")
    usable = np.where(np.isfinite(mod), mod, -np.inf)  # a failed model run is never picked
    pick = int(np.argmax(usable))
    best = int(np.argmax(ref))
    rho = math.nan
    if ref.size >= 2 and np.all(np.isfinite(mod)):
        rr, rm = _ranks(ref), _ranks(mod)
        if np.ptp(rr) > 0 and np.ptp(rm) > 0:
            rho = float(np.corrcoef(rr, rm)[0, 1])
    regret = 100.0 * (ref[best] - ref[pick]) / abs(ref[best]) if ref[best] != 0 else math.nan
    return {
        "pick": pick,
        "reference_pick": best,
        "same_pick": bool(ref[pick] == ref[best]),
        "spearman": rho,
        "regret_percent": float(regret),
        "ranks": [float(x) for x in _ranks(usable)],
    }


# ----------------------------------------------------------------------------- result
@dataclass(frozen=True)
class AccuracyResult(Result):
    """The accuracy-gained table: P2D with Bruggeman and with the tensor vs resolved.

    Attributes
    ----------
    designs : tuple of str
        Design names, in the order given.
    objective : str
        The objective the designs are ranked by (:data:`ACCURACY_OBJECTIVES`).
    c_rates : tuple of float
        The low and the high C-rate.
    rows : tuple of dict
        One per design: ``design``, ``params`` (descriptor values or None), the
        measured ``porosity``, ``active_fraction``, ``tau_measured``,
        ``tau_bruggeman``, ``area_measured_per_m``, ``area_spheres_per_m``,
        ``particle_radius_m`` (tensor P2D) and ``particle_radius_bruggeman_m``,
        ``electrode_volume_m3``; then for each model ``m`` of
        :data:`ACCURACY_MODELS` the keys ``<m>.<q>`` with ``q`` in
        ``capacity_low_Ah``, ``capacity_high_Ah``, ``energy_low_Wh``,
        ``energy_high_Wh``, ``energy_density``, ``high_rate_energy_density``,
        ``power_retention``, and for each P2D model ``<m>.error.<q>`` (percent,
        P2D − resolved over resolved); ``resolved_wall_s``.
    ranking : dict of str to dict
        Per P2D model, :func:`rank_agreement` of its objective with the resolved one
        (``pick``, ``same_pick``, ``spearman``, ``regret_percent``, ``ranks``), with
        design names in ``pick_design``; the resolved model's own ``ranks`` and pick
        under ``"resolved"``.
    comparisons : tuple of P2DComparisonResult
        The resolved/P2D comparisons per design (curves included).
    provenance : Provenance
    """

    designs: tuple[str, ...]
    objective: str
    c_rates: tuple[float, float]
    rows: tuple[dict[str, Any], ...]
    ranking: dict[str, dict[str, Any]]
    comparisons: tuple[Any, ...] = field(repr=False)
    provenance: Provenance = field(default_factory=lambda: Provenance("accuracy_gained"))

    _UNITS: ClassVar[dict[str, str]] = {
        "energy_density": "Wh/L",
        "high_rate_energy_density": "Wh/L",
        "power_retention": "",
    }

    @property
    def optimum_differs(self) -> bool:
        """Whether Bruggeman (sphere area) would pick another design than resolved."""
        return not self.ranking["bruggeman"]["same_pick"]

    def top(self, model: str) -> str:
        """The design a model ranks first by the objective."""
        if model not in ACCURACY_MODELS:
            raise InvalidInputError(f"unknown model {model!r}; use one of {ACCURACY_MODELS}")
        return str(self.ranking[model]["pick_design"])

    def table(self) -> list[dict[str, Any]]:
        """The report's table: one row per design.

        Returns
        -------
        list of dict
            ``design``; the objective by each model (``objective.<model>``); the
            percent error of each P2D model's objective (``error.<model>``); the
            percent errors of capacity and energy at the high rate
            (``capacity_high_error.<model>``, ``energy_high_error.<model>``) and each
            model's rank of the design (``rank.<model>``).
        """
        out = []
        for i, r in enumerate(self.rows):
            row: dict[str, Any] = {"design": r["design"]}
            for m in ACCURACY_MODELS:
                row[f"objective.{m}"] = r[f"{m}.{self.objective}"]
            for m in P2D_MODELS:
                row[f"error.{m}"] = r[f"{m}.error.{self.objective}"]
            for m in P2D_MODELS:
                row[f"capacity_high_error.{m}"] = r[f"{m}.error.capacity_high_Ah"]
                row[f"energy_high_error.{m}"] = r[f"{m}.error.energy_high_Wh"]
            for m in ACCURACY_MODELS:
                row[f"rank.{m}"] = self.ranking[m]["ranks"][i]
            out.append(row)
        return out

    def markdown(self) -> str:
        """The table and the ranking summary as Markdown."""
        unit = self._UNITS[self.objective]
        u = f" ({unit})" if unit else ""
        head = ["design"] + [f"{_LABEL[m]}{u}" for m in ACCURACY_MODELS]
        head += [f"err {_LABEL[m]}" for m in P2D_MODELS]
        lines = [
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
        ]
        for t in self.table():
            cells = [str(t["design"])]
            cells += [_fmt(t[f"objective.{m}"], "{:.4g}") for m in ACCURACY_MODELS]
            cells += [_fmt(t[f"error.{m}"], "{:+.2f} %") for m in P2D_MODELS]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        lines.append(
            f"Objective `{self.objective}` at {self.c_rates[0]:g}C / {self.c_rates[1]:g}C; "
            f"resolved optimum: **{self.top('resolved')}**."
        )
        lines.append("")
        lines.append("| model | pick | same as resolved | Spearman ρ | regret |")
        lines.append("|---|---|---|---|---|")
        for m in P2D_MODELS:
            k = self.ranking[m]
            lines.append(
                f"| {_LABEL[m]} | {k['pick_design']} | {'yes' if k['same_pick'] else 'no'} | "
                f"{_fmt(k['spearman'], '{:+.2f}')} | {_fmt(k['regret_percent'], '{:.2f} %')} |"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (curves left out)."""
        return to_jsonable(
            {
                "designs": list(self.designs),
                "objective": self.objective,
                "c_rates": list(self.c_rates),
                "models": list(ACCURACY_MODELS),
                "rows": [dict(r) for r in self.rows],
                "table": self.table(),
                "ranking": self.ranking,
                "optimum_differs": self.optimum_differs,
                "homogenised": [c.homogenised.to_dict() for c in self.comparisons],
                "provenance": self.provenance.to_dict(),
            }
        )


def _fmt(v: Any, spec: str) -> str:
    return spec.format(v) if isinstance(v, int | float) and math.isfinite(v) else "–"


# ----------------------------------------------------------------------------- inputs
def _designs(
    designs: Sequence[Any] | Mapping[str, Any],
    seed: int | Sequence[int],
    resolution: Any,
) -> list[tuple[str, Microstructure, dict[str, Any] | None]]:
    from microbat.design.evaluate import generate_design

    if isinstance(designs, Mapping):
        items = [(str(k), v) for k, v in designs.items()]
    elif isinstance(designs, Sequence) and not isinstance(designs, str):
        items = [(None, v) for v in designs]
    else:
        raise InvalidInputError(
            "designs must be a list (or a name → design mapping) of Microstructures or "
            f"descriptor mappings, got {type(designs).__name__}"
        )
    if len(items) < 1:
        raise InvalidInputError("give at least one design")
    if isinstance(seed, int | np.integer):
        seeds = [int(seed) + i for i in range(len(items))]
    else:
        seeds = [int(s) for s in seed]
        if len(seeds) != len(items):
            raise InvalidInputError(
                f"give one seed, or one per design ({len(items)}), got {len(seeds)}"
            )
    out: list[tuple[str, Microstructure, dict[str, Any] | None]] = []
    for i, (name, d) in enumerate(items):
        if isinstance(d, Microstructure):
            ms, params = d, (d.metadata.get("design") or {}).get("params")
        elif isinstance(d, Mapping):
            ms = generate_design(d, seeds[i], resolution)
            params = ms.metadata["design"]["params"]
        else:
            raise InvalidInputError(
                f"design {i} is a {type(d).__name__}; give a Microstructure or a mapping of "
                "descriptor values"
            )
        if ms.ndim != 3:
            raise InvalidInputError(f"design {name or i} is not a 3D image")
        out.append((name or f"design {i + 1}", ms, dict(params) if params else None))
    names = [n for n, _, _ in out]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"design names must be unique, got {names}")
    return out


def _radius(
    given: float | Mapping[str, float] | None, name: str, params: Mapping[str, Any] | None
) -> tuple[float | None, float | None]:
    """(radius of the tensor P2D, radius of the Bruggeman P2D); None: measured d50/2."""
    if isinstance(given, Mapping):
        r = given.get(name)
        return (float(r), float(r)) if r is not None else (None, _design_radius(params))
    if given is not None:
        return float(given), float(given)
    return None, _design_radius(params)


def _design_radius(params: Mapping[str, Any] | None) -> float | None:
    if params and params.get("mean_radius") is not None:
        return float(params["mean_radius"])
    return None


def _objectives(vol: float, q_lo: float, q_hi: float, e_lo: float, e_hi: float) -> dict:
    return {
        "capacity_low_Ah": q_lo,
        "capacity_high_Ah": q_hi,
        "energy_low_Wh": e_lo,
        "energy_high_Wh": e_hi,
        "energy_density": e_lo / vol * 1e-3,  # Wh/m³ → Wh/L
        "high_rate_energy_density": e_hi / vol * 1e-3,
        "power_retention": q_hi / q_lo if q_lo > 0 else math.nan,
    }


def _curve_values(curve: Any) -> tuple[float, float]:
    """Capacity and energy of a P2D curve (NaN for both when it did not complete)."""
    if not curve.complete:
        return math.nan, math.nan
    return float(curve.capacity_Ah[-1]), float(curve.energy_Wh)


# ----------------------------------------------------------------------------- main
def accuracy_gained(
    designs: Sequence[Any] | Mapping[str, Any],
    params: Any = None,
    *,
    c_rates: tuple[float, float] = (0.2, 2.0),
    objective: str = "high_rate_energy_density",
    seed: int | Sequence[int] = 0,
    resolution: Any = None,
    particle_radius_m: float | Mapping[str, float] | None = None,
    options: Any = None,
    cutoff_V: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> AccuracyResult:
    """Bruggeman and tensor P2D against the resolved model over a set of designs.

    Parameters
    ----------
    designs : sequence or mapping
        Electrode images (:class:`~microbat.core.microstructure.Microstructure`,
        thickness axis through the electrode, roles ``electrolyte``, ``active``,
        optional ``carbon_binder``) or descriptor mappings for
        :func:`microbat.design.generate_design`; a mapping gives the designs names.
    params : CellParameters or str, optional
        The shared cell parameters (default ``"chen2020"``; its positive electrode).
    c_rates : (float, float), default (0.2, 2)
        The low and the high C-rate (resolved model's definition: 1C empties the
        design's own OCP-limited capacity in one hour).
    objective : str, default "high_rate_energy_density"
        What ranks the designs (:data:`ACCURACY_OBJECTIVES`, all maximised).
    seed : int or sequence of int, default 0
        Seeds of the generated designs: one per design (e.g. the trials' own seeds),
        or the first one (design ``i`` gets ``seed + i``).
    resolution : Resolution or (shape, voxel_size), optional
        Grid of generated designs (default: :func:`~microbat.design.generate_design`'s).
    particle_radius_m : float or mapping of design name to float, optional
        Radius of the P2D particles of both P2D variants. Default: the tensor P2D
        takes half the d50 of the active phase's local thickness; the Bruggeman P2D
        the design's ``mean_radius`` when the image came from the generator (else the
        same d50/2).
    options : ResolvedOptions, optional
        Options of the resolved runs (default: those of
        :func:`~microbat.cell.resolved.compare.compare_with_p2d`).
    cutoff_V : float, optional
        Cut-off voltage of every model (default 3.5 V, see the module notes).
    progress : callable, optional
        Called with one line per design.

    Returns
    -------
    AccuracyResult
        :meth:`~AccuracyResult.table`, :meth:`~AccuracyResult.markdown`, the ranking
        per model and the comparisons with their curves.

    Raises
    ------
    InvalidInputError
        No designs, duplicate names, two C-rates not given as low < high, or an
        unknown objective.
    PhaseError
        A design without an active phase or with a pore network that does not cross
        the electrode.

    Notes
    -----
    Cost: two resolved discharges per design (seconds to minutes each:
    ~45 s for 32³ voxels on one core) and six P2D discharges (~0.1 s each).

    Examples
    --------
    >>> from microbat.cell.resolved.compare import sphere_lattice
    >>> r = accuracy_gained({"fine": sphere_lattice((16, 8, 8)),
    ...                      "coarse": sphere_lattice((18, 12, 12), period=6, radius=2.6)},
    ...                     c_rates=(0.5, 3.0))  # doctest: +SKIP
    >>> r.top("resolved"), r.ranking["bruggeman"]["same_pick"]  # doctest: +SKIP
    """
    from microbat.cell.bridge import check_c_rates
    from microbat.cell.resolved.compare import (
        DEFAULT_CUTOFF_V,
        _cell_parameters,
        compare_with_p2d,
        p2d_half_cell,
        p2d_parameters,
    )

    t0 = time.perf_counter()
    if objective not in ACCURACY_OBJECTIVES:
        raise InvalidInputError(
            f"unknown objective {objective!r}; use one of {', '.join(ACCURACY_OBJECTIVES)}"
        )
    rates = tuple(c_rates)
    if len(rates) != 2 or check_c_rates(rates) != rates:
        raise InvalidInputError(
            f"c_rates must be a low and a higher C-rate, e.g. (0.2, 2), got {tuple(c_rates)!r}"
        )
    p = _cell_parameters(params)
    items = _designs(designs, seed, resolution)
    cut = DEFAULT_CUTOFF_V if cutoff_V is None else float(cutoff_V)

    rows: list[dict[str, Any]] = []
    comparisons = []
    for k, (name, ms, dparams) in enumerate(items):
        if progress is not None:
            progress(f"design {k + 1}/{len(items)} ({name}): resolved and P2D discharges")
        r_tensor, r_brug = _radius(particle_radius_m, name, dparams)
        t1 = time.perf_counter()
        cmp = compare_with_p2d(
            ms,
            p,
            c_rates=rates,
            transports=("micro", "bruggeman"),
            options=options,
            cutoff_V=cut,
            particle_radius_m=r_tensor,
        )
        h = cmp.homogenised
        # the no-image P2D: spheres of the designed radius, Bruggeman transport
        rb = h.particle_radius_m if r_brug is None else r_brug
        a_spheres = 3.0 * h.active_fraction / rb
        h_sph = dataclasses.replace(h, specific_surface_area_per_m=a_spheres, particle_radius_m=rb)
        opt_li = cmp.provenance.parameters["options"]["li_exchange_current_A_per_m2"]
        sph = p2d_half_cell(
            p2d_parameters(p, h_sph, "bruggeman"),
            area_m2=h.area_m2,
            currents_A=[r.current_A for r in cmp.resolved],
            cutoff_V=cmp.cutoff_V,
            li_exchange_current_A_per_m2=opt_li,
            model=cmp.model,
        )
        vol = h.thickness_m * h.area_m2
        lo, hi = cmp.resolved
        values = {
            "resolved": _objectives(vol, lo.capacity_Ah, hi.capacity_Ah, lo.energy_Wh, hi.energy_Wh)
        }
        for model, curves in (
            ("tensor", cmp.p2d["micro"]),
            ("bruggeman_measured_area", cmp.p2d["bruggeman"]),
            ("bruggeman", tuple(sph)),
        ):
            (q_lo, e_lo), (q_hi, e_hi) = (_curve_values(c) for c in curves)
            values[model] = _objectives(vol, q_lo, q_hi, e_lo, e_hi)
        row: dict[str, Any] = {
            "design": name,
            "params": dparams,
            "shape": list(ms.shape),
            "voxel_size_m": float(ms.voxel_size[ms.thickness_axis]),
            "porosity": h.porosity,
            "active_fraction": h.active_fraction,
            "tau_measured": h.tau_electrolyte_micro,
            "tau_bruggeman": h.tau_electrolyte_bruggeman,
            "area_measured_per_m": h.specific_surface_area_per_m,
            "area_spheres_per_m": a_spheres,
            "particle_radius_m": h.particle_radius_m,
            "particle_radius_bruggeman_m": rb,
            "electrode_volume_m3": vol,
            "resolved_complete": all(bool(r.complete) for r in cmp.resolved),
            "wall_s": time.perf_counter() - t1,
        }
        ref = values["resolved"]
        for model, vals in values.items():
            for q, v in vals.items():
                row[f"{model}.{q}"] = float(v)
                if model != "resolved":
                    row[f"{model}.error.{q}"] = (
                        100.0 * (v - ref[q]) / ref[q] if ref[q] else math.nan
                    )
        rows.append(row)
        comparisons.append(cmp)

    names = [r["design"] for r in rows]
    ref_obj = [r[f"resolved.{objective}"] for r in rows]
    ranking: dict[str, dict[str, Any]] = {}
    for m in ACCURACY_MODELS:
        agree = rank_agreement(ref_obj, [r[f"{m}.{objective}"] for r in rows])
        agree["pick_design"] = names[agree["pick"]]
        agree["reference_pick_design"] = names[agree["reference_pick"]]
        ranking[m] = agree
    wall = time.perf_counter() - t0
    return AccuracyResult(
        designs=tuple(names),
        objective=objective,
        c_rates=(float(rates[0]), float(rates[1])),
        rows=tuple(rows),
        ranking=ranking,
        comparisons=tuple(comparisons),
        provenance=Provenance(
            "microbat.design.accuracy_gained",
            parameters={
                "c_rates": list(rates),
                "objective": objective,
                "cutoff_V": cut,
                "params": p.name,
                "particle_radius_m": to_jsonable(particle_radius_m),
                "seeds": to_jsonable(seed),
                "options": comparisons[0].provenance.parameters["options"],
            },
            seed=int(seed) if isinstance(seed, int | np.integer) else None,
            wall_time_s=wall,
            inputs={
                "designs": [
                    {"name": n, "shape": list(ms.shape), "params": to_jsonable(dp)}
                    for n, ms, dp in items
                ]
            },
        ),
    )
