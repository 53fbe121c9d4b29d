"""Twin stage ``aging``: cycle aging with the loop cracks → new surface → SEI → current → stress.

Every active particle of the image (:func:`microbat.degradation.label_particles`)
carries its SEI on the original and on the crack surfaces, its crack length and the
lithium it has lost; the electrode is cycled ``aging.cycles`` times at
``aging.c_rate`` with cycle-jumping (:func:`microbat.degradation.aging.age`): the
current share of each particle from a depth-resolved network with the films'
resistances, its free-sphere stress, Paris-law cracks, SEI on old and new surface.
Report section "Cycle aging": retention and resistance curves, the loss split, the
heterogeneity index, per-particle maps and the depth profile, and the cell capacity:
the electrode balance (eSOH) of ``cell.parameter_set``'s full cell scaled to the image,
with the degradation modes LLI/LAM (:mod:`microbat.degradation._aging_balance`).
Diagnosis: a finding on the fade and on where the electrode ages first.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from microbat.core.errors import InvalidInputError
from microbat.degradation._aging_network import aging_geometry
from microbat.degradation._aging_output import (
    draw_curves,
    draw_maps,
    draw_nyquist,
    lithium_per_area,
)
from microbat.degradation._aging_plating import check_plating_material, resolved_plating
from microbat.degradation.aging import MECHANISMS, AgingParameters, age
from microbat.degradation.parameters import MATERIALS
from microbat.degradation.particles import label_particles
from microbat.pipeline.base import (
    Finding,
    Stage,
    StageContext,
    StageOutput,
    StageSettings,
    central,
    finite_or_none,
)
from microbat.pipeline.reportkit import ReportSection, ReportView, esc, img, notes_list, num, pct
from microbat.pipeline.stages.ssb import liquid_only, solid_state

__all__ = ["STAGE", "AgingSettings"]


class AgingSettings(StageSettings):
    """Cycle aging (``microbat.degradation.aging``)."""

    enabled: bool = Field(True, description="Run the aging stage.")
    cycles: int = Field(
        200, gt=0, description="Full cycles to simulate.", json_schema_extra={"unit": "cycles"}
    )
    c_rate: float = Field(
        1.0, gt=0, description="C-rate of charge and discharge.", json_schema_extra={"unit": "1/h"}
    )
    mechanisms: list[str] = Field(
        ["sei", "cracks"],
        description="Parts of the loop: sei, cracks, plating (plating: one resolved charge "
        "at aging.c_rate with the plating reaction, on the plating stage's lateral crop of the "
        "cell stage's parameter set; minutes).",
    )
    plating_mode: Literal["irreversible", "partially_reversible"] = Field(
        "irreversible",
        description="Plating reaction of that charge: irreversible (all plated lithium is "
        "lost) or partially_reversible (the dead lithium is lost).",
    )
    material: Literal["graphite", "nmc811"] = Field(
        "graphite",
        description="Active material (graphite: the negative electrode of O'Kane et al. "
        "2022, whose SEI and crack constants are the defaults).",
    )
    sei_law: Literal["solvent-diffusion", "reaction", "mixed"] = Field(
        "solvent-diffusion", description="SEI growth law (docs/aging.md)."
    )
    tolerance: float = Field(
        0.01,
        gt=0,
        description="Cycle-jumping: largest relative change of a particle's stress or SEI "
        "rate within a block.",
    )

    @field_validator("mechanisms")
    @classmethod
    def _mech(cls, v: list[str]) -> list[str]:
        names = [str(s).strip().lower() for s in v]
        bad = [s for s in names if s not in MECHANISMS]
        if bad or not names:
            raise ValueError(f"mechanisms must be among {', '.join(MECHANISMS)}, got {v}")
        return names


def _active(ctx: StageContext) -> str | None:
    if not ctx.config.aging.enabled:
        return "the aging stage is switched off (aging.enabled = false)"
    if solid_state(ctx):
        return liquid_only("the aging loop (SEI from a liquid electrolyte)")
    return None


def _run(ctx: StageContext) -> StageOutput:
    cfg = ctx.config.aging
    ms = ctx.microstructure()
    params = AgingParameters(material=MATERIALS[cfg.material], sei={"law": cfg.sei_law})
    params.require(tuple(cfg.mechanisms))
    notes: list[str] = []
    ctx.step("labelling the active particles, interface areas, electrolyte tortuosity")
    particles = label_particles(ms)
    geom = aging_geometry(ms, particles)
    plating = None
    if "plating" in cfg.mechanisms:
        pcfg = ctx.config.plating
        check_plating_material(cfg.material, pcfg.electrode)
        box = central(ms.shape, pcfg.lateral_size, whole_axis=ms.thickness_axis)
        pset = ctx.config.cell.parameter_set
        ctx.step(f"resolved {cfg.c_rate:g}C charge with {cfg.plating_mode} plating ({pset})")
        plating = resolved_plating(
            ms, particles, c_rate=cfg.c_rate, params=pset, electrode=pcfg.electrode,
            mode=cfg.plating_mode, crop=box,
        )  # fmt: skip
        if plating.crop is not None:
            notes.append(
                "plating from a resolved charge of a "
                + " x ".join(str(b - a) for a, b in plating.crop)
                + f" voxel box (plating.lateral_size = {pcfg.lateral_size}, whole thickness); "
                "particles outside it plate the box's lithium per face area of their layer"
            )
        if not plating.charge.get("complete", True):
            notes.append(f"the plating charge is partial: {plating.charge.get('status')}")
    cell_set: Any = None
    try:
        from microbat.cell.parameters import load_parameters

        cell_set = load_parameters(ctx.config.cell.parameter_set)
        if cell_set.half_cell:
            raise InvalidInputError(f"{cell_set.name!r} is a half cell")
    except InvalidInputError as exc:
        notes.append(f"no cell capacity (electrode balance): {exc}")
        cell_set = None
    ctx.step(f"aging {geom.n} particles over {cfg.cycles} cycles at {cfg.c_rate:g}C")
    res = age(
        ms, cycles=cfg.cycles, c_rate=cfg.c_rate, mechanisms=cfg.mechanisms, params=params,
        geometry=geom, tolerance=cfg.tolerance, plating=plating, cell=cell_set,
    )  # fmt: skip
    modes = res.degradation_modes or {}
    bal = res.cell_balance or {}
    notes.extend(bal.get("notes") or [])
    last = -1
    li = res.lithium_lost_curve_mol
    prof = res.depth_profile[last] if res.depth_profile.size else np.full(geom.n_layers, np.nan)
    fin = np.isfinite(prof)
    third = max(1, geom.n_layers // 3)
    summary: dict[str, Any] = {
        "material": cfg.material,
        "sei_law": cfg.sei_law,
        "cycles": res.cycles,
        "c_rate": res.c_rate,
        "mechanisms": list(res.mechanisms),
        "particles": geom.n,
        "capacity_Ah": res.capacity_Ah,
        "capacity_retention": float(res.capacity_retention[-1]),
        "lithium_inventory_fade": res.lithium_inventory_fade,
        "cell_capacity_fade": finite_or_none(res.cell_capacity_fade),
        "cell_capacity_retention": (
            finite_or_none(float(res.cell_capacity_retention[-1]))
            if res.cell_capacity_retention is not None
            else None
        ),
        "degradation_modes": {k: float(v[-1]) for k, v in modes.items()} or None,
        "cell_balance": (
            {k: v for k, v in bal.items() if k not in ("capacity_Ah_curve", "notes")}
            if bal
            else None
        ),
        "resistance_growth": float(res.resistance_growth[-1]),
        "lithium_lost_mol": res.lithium_lost_mol,
        "heterogeneity_cov": finite_or_none(float(res.heterogeneity_cov[-1])),
        "fractured_fraction": float(res.fractured_fraction[-1]),
        "mean_crack_length_m": float(res.mean_crack_length_m[-1]),
        "mean_sei_thickness_m": float(res.mean_sei_thickness_m[-1]),
        "collector_third_rate": finite_or_none(
            float(np.nanmean(prof[:third])) if fin[:third].any() else None
        ),
        "separator_third_rate": finite_or_none(
            float(np.nanmean(prof[-third:])) if fin[-third:].any() else None
        ),
        "tortuosity": geom.tortuosity,
        "solver": res.solver,
        "plating": res.plating,
        "notes": notes,
    }
    arrays: dict[str, np.ndarray] = {
        "cycle": res.cycle.astype(float),
        "capacity_retention": res.capacity_retention,
        "resistance_growth": res.resistance_growth,
        "li_sei_original": li["sei_original"],
        "li_sei_cracks": li["sei_cracks"],
        "li_plating": li["plating"],
        **(
            {"cell_capacity_retention": res.cell_capacity_retention}
            if res.cell_capacity_retention is not None
            else {}
        ),
        **{f"mode_{k}": v for k, v in modes.items()},
        "heterogeneity_cov": res.heterogeneity_cov,
        "mean_crack_length_m": res.mean_crack_length_m,
        "labels_mid": res.labels_mid,
        "depth_profile": prof,
        "depth_m": res.depth_m,
    }
    if res.impedance_ohm.size:
        arrays["impedance_frequency_Hz"] = res.impedance_frequency_Hz
        arrays["impedance_real_ohm"] = res.impedance_ohm.real
        arrays["impedance_imag_ohm"] = res.impedance_ohm.imag
        arrays["map_cycles"] = res.map_cycles.astype(float)
        summary["high_frequency_resistance_ohm"] = [float(v) for v in res.impedance_ohm[:, 0].real]
    if len(res.map_cycles):
        m = res.maps
        arrays["map_sei_nm"] = 1e9 * m["sei_thickness_m"][last]
        arrays["map_crack_nm"] = 1e9 * m["crack_length_m"][last]
        arrays["map_li_per_area"] = 1e6 * lithium_per_area(m, last)
    return StageOutput(summary=summary, arrays=arrays)


# ========================================================================= report
def _report(view: ReportView) -> list[ReportSection]:
    s = view.summary("aging")
    if not s:
        return [ReportSection("aging", "Cycle aging", view.status_line("aging"))]
    arr = view.arrays("aging")
    lost = s.get("lithium_lost_mol") or {}
    total = lost.get("total") or 0.0
    crack_share = (lost.get("sei_cracks") or 0.0) / total if total else None
    mech = ", ".join(s.get("mechanisms") or [])
    body = (
        f"<p>{s.get('particles')} particles of {esc(s.get('material'))}, {s.get('cycles')} "
        f"full cycles at {num(s.get('c_rate'), '.3g')}C with {esc(mech)} "
        f"({esc(s.get('sei_law'))} SEI, O'Kane et al. 2022 constants). Capacity retention "
        f"{pct(s.get('capacity_retention'))} (lithium inventory: the electrode's "
        f"{num(1e3 * (s.get('capacity_Ah') or 0), '.4g')} mAh less F × lithium lost), "
        f"resistance × {num(s.get('resistance_growth'), '.4f')}; "
        f"{pct(crack_share)} of the lost lithium went into SEI on crack faces"
        + (
            f", {pct((lost.get('plating') or 0.0) / total if total else None)} into plated "
            f"lithium ({esc((s.get('plating') or {}).get('mode'))}, from one resolved "
            f"{num((s.get('plating') or {}).get('c_rate'), 'g')}C charge)"
            if lost.get("plating") is not None
            else ""
        )
        + ". Mean crack "
        f"{num(1e9 * (s.get('mean_crack_length_m') or 0), '.4g')} nm, fractured "
        f"{pct(s.get('fractured_fraction'))}. Heterogeneity index (area-weighted CoV of the "
        f"lithium consumed per unit interface area per cycle across the particles): "
        f"{num(s.get('heterogeneity_cov'), '.3g')}.</p>"
    )
    body += _cell_paragraph(s)
    if "cycle" in arr:
        fig = view.figures.new(10.0, 7.0, hspace=0.4, wspace=0.45, left=0.08, right=0.92,
                               top=0.94, bottom=0.08)  # fmt: skip
        draw_curves(fig, arr)
        body += img(
            view.figures.png(fig),
            "capacity retention, resistance, loss split, heterogeneity and cracks vs cycle",
            "Fade (lithium inventory) and network resistance; lithium lost to SEI on the "
            "original surface and on crack faces; CoV of the local degradation rate; "
            "mean crack length.",
        )
    if "map_sei_nm" in arr:
        fig = view.figures.new(12.0, 4.2, wspace=0.45, left=0.06, right=0.97, top=0.85, bottom=0.12)
        draw_maps(
            fig,
            arr["labels_mid"],
            {
                "SEI, original [nm]": arr["map_sei_nm"],
                "crack length [nm]": arr["map_crack_nm"],
                "Li lost per area [µmol/m²]": arr["map_li_per_area"],
            },
            title=f"particles at cycle {s.get('cycles')} (mid-plane; collector at the top)",
        )
        body += img(view.figures.png(fig), "per-particle aging maps")
    if "impedance_real_ohm" in arr:
        fig = view.figures.new(6.5, 5.0, left=0.13, bottom=0.11)
        z = arr["impedance_real_ohm"] + 1j * arr["impedance_imag_ohm"]
        draw_nyquist(fig, z, arr["map_cycles"])
        body += img(
            view.figures.png(fig),
            "impedance spectra at the map cycles",
            "Small-signal impedance of the imaged electrode (its cross-section): SEI films "
            "(R ∥ C) in series with double layer ∥ charge transfer on every particle's "
            "original and crack surface, on the depth network; no solid diffusion.",
        )
    prof = arr.get("depth_profile")
    if prof is not None and np.isfinite(prof).any():
        fig = view.figures.new(6.0, 3.4, left=0.13, bottom=0.16)
        ax = fig.subplots()
        ax.plot(1e6 * arr["depth_m"], prof, "o-", ms=3)
        ax.axhline(1.0, color="#888888", lw=0.8)
        ax.set_xlabel("depth from the collector [µm]")
        ax.set_ylabel("degradation rate / mean")
        ax.set_title("where the electrode ages (last block)", fontsize=9.5)
        body += img(view.figures.png(fig), "depth profile of the degradation rate")
    body += notes_list(s.get("notes") or [])
    return [ReportSection("aging", "Cycle aging", body)]


def _pc(x: Any) -> str:
    """A small fraction in percent to three significant digits."""
    return "–" if x is None or not np.isfinite(float(x)) else f"{100 * float(x):.3g} %"


def _cell_paragraph(s: Mapping[str, Any]) -> str:
    """The cell capacity (electrode balance) beside the lithium-inventory fade."""
    bal = s.get("cell_balance")
    modes = s.get("degradation_modes") or {}
    if not bal:
        return (
            f"<p>Lithium-inventory fade {_pc(s.get('lithium_inventory_fade'))}; no cell "
            "capacity (no full-cell electrode balance, see the notes).</p>"
        )
    ini, fin = bal.get("initial") or {}, bal.get("final") or {}
    # the electrode nearer the end of its range at the end of discharge ends it
    x0, y0 = ini.get("x_0"), ini.get("y_0")
    side = "negative" if x0 is not None and y0 is not None and x0 < 1.0 - y0 else "positive"
    return (
        f"<p><b>Cell capacity.</b> The {esc(bal.get('parameter_set'))} cell scaled to the "
        f"image (the image is its {esc(bal.get('electrode'))} electrode; N/P and initial "
        f"lithium of the set), equilibrium capacity between {num(bal.get('V_min'), 'g')} and "
        f"{num(bal.get('V_max'), 'g')} V by the electrode balance (eSOH, Mohtat et al. 2019): "
        f"<b>cell capacity fade {_pc(s.get('cell_capacity_fade'))}</b> against the "
        f"lithium-inventory fade {_pc(s.get('lithium_inventory_fade'))} (F × lithium lost "
        f"over the electrode's capacity). Degradation modes (Birkl et al. 2017, fractions "
        f"of the initial inventories): LLI {_pc(modes.get('LLI'))}, LAM<sub>ne</sub> "
        f"{_pc(modes.get('LAM_ne'))}, LAM<sub>pe</sub> {_pc(modes.get('LAM_pe'))}. The "
        f"discharge ends at x<sub>0</sub> = {num(ini.get('x_0'), '.4f')} → "
        f"{num(fin.get('x_0'), '.4f')}, y<sub>0</sub> = {num(ini.get('y_0'), '.4f')} → "
        f"{num(fin.get('y_0'), '.4f')}: the {side} electrode ends it"
        + (
            ", so lithium lost is capacity lost almost one for one."
            if side == "negative"
            else "; the negative electrode's remaining lithium absorbs the first loss."
        )
        + " Not included: capacity lost to the rate (overpotentials, diffusion, the "
        "resistance growth) at the cycling C-rate.</p>"
    )


# ====================================================================== diagnosis
def _diagnose(results: Mapping[str, Any]) -> Iterator[Finding]:
    s = results.get("aging") or {}
    if not s or s.get("capacity_retention") is None:
        return
    inv = float(s.get("lithium_inventory_fade", 1.0 - float(s["capacity_retention"])))
    cell = s.get("cell_capacity_fade")
    fade = float(cell) if cell is not None else inv
    lost = s.get("lithium_lost_mol") or {}
    total = lost.get("total") or 0.0
    crack = (lost.get("sei_cracks") or 0.0) / total if total else 0.0
    c_rate, cycles = s.get("c_rate"), s.get("cycles")
    text = (
        f"Cycle aging ({cycles} cycles at {c_rate:g}C): "
        + (
            f"{_pc(fade)} cell capacity fade (electrode balance) for {_pc(inv)} "
            "lithium-inventory fade, "
            if cell is not None
            else f"{_pc(inv)} capacity fade (lithium inventory), "
        )
        + f"resistance × {num(s.get('resistance_growth'), '.3f')}; "
        f"{pct(crack)} of the lithium lost went to SEI on crack faces"
    )
    near, far = s.get("collector_third_rate"), s.get("separator_third_rate")
    if near is not None and far is not None:
        where = "separator side" if far > near else "collector side"
        text += (
            f"; the {where} ages faster (rate per area {num(max(near, far), '.3g')}× vs "
            f"{num(min(near, far), '.3g')}× the mean)"
        )
    text += "."
    if crack > 0.5:
        text += " Crack faces dominate: smaller or tougher particles slow the fade."
    yield Finding(35 if fade > 0.05 else 85, text)


def _headline(results: Mapping[str, Any]) -> dict[str, Any]:
    s = results.get("aging") or {}
    return {
        "aging_capacity_retention": s.get("capacity_retention"),
        "aging_cell_capacity_fade": s.get("cell_capacity_fade"),
        "aging_resistance_growth": s.get("resistance_growth"),
        "aging_cycles": s.get("cycles"),
    }


STAGE = Stage(
    "aging",
    "Cycle aging (SEI, cracks, feedback)",
    ("input", "segment"),
    ("aging", "plating", "cell"),
    _run,
    active=_active,
    n_steps=3,
    settings=(("aging", AgingSettings),),
    report=_report,
    diagnose=_diagnose,
    headline=_headline,
)
