"""Twin stage ``cell``: rate capability through the micro-informed P2D/DFN bridge.

Builds :class:`microbat.cell.MicroProperties` from the measured porosity,
tortuosity factors, active/electrolyte area and particle size, runs
:func:`microbat.cell.rate_capability` with micro-informed transport and, for
comparison, with Bruggeman's, and keeps the discharge curves and the voltage-loss
breakdown. Report section: "Cell performance". Diagnosis: the loss named by the
breakdown at the first rate that delivers less than 80 % of the C/10 capacity is
the dominant bottleneck (priority 10).

On a solid-state image (a ``solid_electrolyte`` phase) the same rate table, curves
and breakdown come from the single-ion P2D of the composite cathode
(:func:`microbat.cell.solid_state_parameters`): a half cell against lithium metal
whose ion conductor is the solid electrolyte (t₊ = 1, constant σ_SE, no salt
gradient), with ε = the SE fraction, ε/τ of the SE network measured by the
transport stage (or Bruggeman's), the active | SE contact area of
:func:`microbat.ssb.contact_area` as the reaction area and a dense SE separator.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from microbat.cell.micro import MicroProperties
from microbat.cell.parameters import CellParameters, load_parameters
from microbat.cell.rate import rate_capability
from microbat.core.results import to_jsonable
from microbat.pipeline.base import (
    Stage,
    StageContext,
    StageOutput,
    StageSettings,
    Verdict,
    bruggeman,
)
from microbat.pipeline.reportkit import (
    Figures,
    ReportSection,
    ReportView,
    esc,
    img,
    notes_list,
    num,
    pct,
    table,
    um,
)
from microbat.pipeline.stages.ssb import solid_state

__all__ = ["LIMITED_FRACTION", "STAGE", "CellSettings"]

#: Capacity fraction (of the C/10 capacity) below which a rate counts as limited.
LIMITED_FRACTION = 0.8


class CellSettings(StageSettings):
    """Cell performance through the P2D/DFN bridge (``microbat.cell``)."""

    enabled: bool = Field(True, description="Run the cell stage.")
    parameter_set: str = Field(
        "chen2020", description="Published parameter set (PyBaMM name) or a BPX file path."
    )
    electrode: Literal["positive", "negative"] = Field(
        "positive", description="Which electrode of the cell the image shows."
    )
    c_rates: list[float] = Field(
        [0.1, 0.5, 1.0, 2.0, 3.0, 5.0],
        description="Discharge rates.",
        json_schema_extra={"unit": "1/h"},
    )
    model: Literal["DFN", "P2D", "SPMe"] = Field("DFN", description="PyBaMM model.")
    compare_bruggeman: bool = Field(
        True, description="Also run with Bruggeman transport from the measured porosity."
    )
    thickness: Literal["published", "image"] | float = Field(
        "published",
        description="Electrode thickness: keep the parameter set's, the image extent, or a "
        "length in m (a CT volume is usually a crop of the coating).",
        json_schema_extra={"unit": "m"},
    )
    solid_conductivity: float | None = Field(
        None,
        gt=0,
        description="Bulk conductivity of the solid, needed to apply the solid tortuosity "
        "when the set gives an effective one.",
        json_schema_extra={"unit": "S/m"},
    )
    se_conductivity: float | None = Field(
        None,
        gt=0,
        description="Solid-state image: ionic conductivity of the solid electrolyte (default "
        "ssb.conductivity: one material for every solid-state analysis of the run).",
        json_schema_extra={"unit": "S/m"},
    )
    se_separator_thickness: float | None = Field(
        None,
        gt=0,
        le=1e-3,
        description="Solid-state image: thickness of the dense solid-electrolyte separator "
        "(default: the parameter set's separator thickness).",
        json_schema_extra={"unit": "m"},
    )

    @field_validator("c_rates")
    @classmethod
    def _rates(cls, v: list[float]) -> list[float]:
        if not v or any(not (math.isfinite(c) and c > 0) for c in v):
            raise ValueError(f"c_rates must be positive numbers, got {v}")
        return v

    @field_validator("thickness")
    @classmethod
    def _thickness(cls, v: Any) -> Any:
        if isinstance(v, float) and not (1e-6 <= v <= 2e-3):
            raise ValueError(
                f"thickness {v!r} m is outside 1 µm..2 mm (lengths are in metres: 70 µm is 7e-5)"
            )
        return v


# ============================================================================ run
def _active(ctx: StageContext) -> str | None:
    if not ctx.config.cell.enabled:
        return "the cell stage is switched off (cell.enabled = false)"
    if ctx.status("metrics") != "complete":
        return "it needs the morphology metrics, which did not complete"
    return None


def _run(ctx: StageContext) -> StageOutput:
    cfg = ctx.config.cell
    met = ctx.summary("metrics")
    tra = ctx.summary("transport") if ctx.status("transport") == "complete" else {}
    notes: list[str] = []

    ctx.step(f"loading the {cfg.parameter_set} parameter set")
    if cfg.parameter_set.lower().endswith(".json"):
        params = load_parameters(cfg.parameter_set)
    else:
        params = CellParameters.from_name(cfg.parameter_set)

    ssb = solid_state(ctx)
    if ssb:
        ctx.step("active | solid-electrolyte contact area")
    micro_kw, have_tau = _micro_properties(ctx, met, tra, ssb)
    micro = MicroProperties(**micro_kw)
    summary: dict[str, Any] = {
        "parameter_set": cfg.parameter_set,
        "electrode": cfg.electrode,
        "micro": micro.to_dict(),
        "notes": notes,
    }
    if ssb:
        summary["solid_state"] = _solid_state_summary(params, micro)
        notes.append(
            "solid-state image: single-ion P2D of the composite cathode (t+ = 1, no salt "
            "gradient) in a half cell against lithium metal; C-rates relative to the "
            "positive electrode's OCP-limited capacity"
        )
    arrays: dict[str, np.ndarray] = {}
    runs: dict[str, Any] = {}
    transports = ["micro", "bruggeman"] if have_tau else ["bruggeman"]
    if have_tau and not cfg.compare_bruggeman:
        transports = ["micro"]
    for tr in transports:
        ctx.step(f"{cfg.model} discharges at {', '.join(f'{c:g}C' for c in cfg.c_rates)} ({tr})")
        res = rate_capability(
            params,
            c_rates=cfg.c_rates,
            model=cfg.model,
            transport=tr,
            micro=micro,
            on_failure="record",
        )
        runs[tr] = res
        summary[f"rate_{tr}"] = to_jsonable(res.to_dict())
        for i, c in enumerate(res.curves):
            arrays[f"{tr}_curve{i}_capacity_Ah"] = np.asarray(c.capacity_Ah, float)
            arrays[f"{tr}_curve{i}_voltage_V"] = np.asarray(c.voltage_V, float)
        if res.breakdown is not None:
            for i, part in enumerate(res.breakdown.rates):
                arrays[f"{tr}_bd{i}_capacity_Ah"] = np.asarray(part.capacity_Ah, float)
                for comp, v in part.losses_V.items():
                    arrays[f"{tr}_bd{i}_{comp}"] = np.asarray(v, float)
    summary["transports"] = transports
    if "micro" in runs and "bruggeman" in runs:
        a, b = runs["micro"], runs["bruggeman"]
        summary["comparison"] = [
            {
                "c_rate": c,
                "capacity_micro_Ah": qm,
                "capacity_bruggeman_Ah": qb,
                "difference_percent": (
                    100.0 * (qm - qb) / qm
                    if math.isfinite(qm) and math.isfinite(qb) and qm > 0
                    else None
                ),
            }
            for c, qm, qb in zip(a.c_rate, a.capacity_Ah, b.capacity_Ah, strict=True)
        ]
    if not have_tau:
        notes.append(
            "the transport stage gave no tortuosity, so only the Bruggeman model (from the "
            "measured "
            + ("solid-electrolyte fraction" if ssb else "porosity")
            + ") was run; no micro-informed prediction is shown"
        )
    summary["notes"] = notes
    return StageOutput(summary=to_jsonable(summary), arrays=arrays)


def _solid_state_summary(params: CellParameters, micro: MicroProperties) -> dict[str, Any]:
    """The half cell's solid-electrolyte parameters, as the P2D runs them."""
    from microbat.cell.micro import solid_state_parameters

    p = solid_state_parameters(params, micro)
    return {
        "model": "single-ion P2D (t+ = 1), half cell vs lithium metal",
        "se_fraction": micro.porosity,
        "se_conductivity_S_per_m": p.electrolyte.conductivity_S_per_m,
        "se_transport_efficiency": micro.transport_efficiency,
        "separator_thickness_m": p.separator.thickness_m,
        "li_exchange_current_A_per_m2": p.counter.exchange_current_A_per_m2
        if p.counter is not None
        else None,
        "cutoff_V": p.cell.lower_cutoff_V,
        "one_c_A": p.cell.nominal_capacity_Ah,
        "area_m2": p.cell.electrode_area_m2,
    }


def _contact_area(ctx: StageContext) -> float | None:
    """Active | solid-electrolyte contact per volume, its active part (ssb.contact_area)."""
    from microbat.ssb.tpb import contact_area

    ms = ctx.microstructure()
    act = [p.name for p in ms.phases_with_role("active")]
    se = [p.name for p in ms.phases_with_role("solid_electrolyte")]
    if not act or not se:
        return None
    res = contact_area(ms, (",".join(act), ",".join(se)))
    a = float(res.active_specific_area_per_m)
    return a if a > 0 else None


def _micro_properties(
    ctx: StageContext, met: Mapping[str, Any], tra: Mapping[str, Any], ssb: bool = False
) -> tuple[dict[str, Any], bool]:
    """Keyword arguments of MicroProperties from the stage summaries, and whether τ is measured."""
    cfg = ctx.config.cell
    phases = met.get("phases_table") or []
    roles = {p["name"]: p["role"] for p in phases}
    vf = met.get("volume_fractions") or {}
    ion = "solid_electrolyte" if ssb else "electrolyte"
    eps = sum(v for k, v in vf.items() if roles.get(k) == ion)
    act = sum(v for k, v in vf.items() if roles.get(k) == "active")
    kw: dict[str, Any] = {"electrode": cfg.electrode, "porosity": float(eps)}
    if act > 0:
        kw["active_fraction"] = float(act)
    if ssb:
        # τ of the transport stage is the SE network's only when it measured the SE
        measured_se = roles.get(str(tra.get("phase")), tra.get("phase")) == ion
        tra = tra if measured_se else {}
        kw.update(
            ion_conductor="solid_electrolyte",
            se_conductivity_S_per_m=cfg.se_conductivity
            if cfg.se_conductivity is not None
            else ctx.config.ssb.conductivity,
            separator_thickness_m=cfg.se_separator_thickness,
        )
    have_tau = "tau_thickness" in tra
    tau = tra.get("tau_thickness")
    if have_tau:
        # None = not percolating: MicroProperties raises NotPercolatingError on inf.
        kw["tau_electrolyte"] = math.inf if tau is None else float(tau)
    else:
        # Only the Bruggeman run is made then, and apply_micro ignores τ for it; the
        # value is what Bruggeman itself implies (ε^(1 - 1.5)).
        kw["tau_electrolyte"] = max(1.0, bruggeman(eps, 1.5))
    solid = (tra.get("solid") or {}).get("tau_thickness")
    if solid is not None and math.isfinite(float(solid)):
        kw["tau_solid"] = float(solid)
    if cfg.solid_conductivity is not None:
        kw["solid_conductivity_bulk_S_per_m"] = cfg.solid_conductivity
    ssa = _contact_area(ctx) if ssb else met.get("active_electrolyte_specific_area_per_m")
    if ssa:
        # a_s of a homogenised model is per electrode volume: the measured
        # active/electrolyte interface; carbon-binder-covered surface is not reactive.
        kw["specific_surface_area_per_m"] = float(ssa)
    sizes = (met.get("sizes_m") or {}).get(
        next((k for k, r in roles.items() if r == "active"), ""), {}
    )
    d50 = sizes.get("d50") if sizes else None
    if d50:
        kw["particle_radius_m"] = float(d50) / 2.0
    if cfg.thickness == "image":
        ax = ctx.summary("input")["thickness_axis"]
        kw["thickness_m"] = float(ctx.summary("input")["extent_m"][ax])
    elif isinstance(cfg.thickness, float):
        kw["thickness_m"] = cfg.thickness
    kw["axis"] = ctx.summary("input")["thickness_axis"]
    kw["source"] = {
        "stages": ["metrics", "transport"] if have_tau else ["metrics"],
        "tau_electrolyte": "measured" if have_tau else "Bruggeman (no transport result)",
    }
    if ssb:
        kw["source"]["specific_surface_area"] = "microbat.ssb.contact_area (active contact)"
    return kw, have_tau


# ========================================================================= report
_COMPONENTS = (
    ("ohmic_electrolyte", "electrolyte ohmic"),
    ("concentration_electrolyte", "electrolyte concentration"),
    ("ohmic_solid", "solid ohmic"),
    ("reaction", "reaction (kinetic)"),
    ("solid_diffusion", "solid diffusion"),
)


def _curves_figure(figs: Figures, cell: Mapping[str, Any], arr: Mapping[str, np.ndarray]) -> str:
    fig = figs.new(11, 3.9, left=0.07, wspace=0.22, top=0.9)
    ax1, ax2 = fig.subplots(1, 2)
    transports = cell.get("transports") or []
    import matplotlib as mpl

    colors = mpl.colormaps["viridis"]
    for tr in transports:
        rc = cell.get(f"rate_{tr}") or {}
        rates = rc.get("c_rate") or []
        ls = "-" if tr == "micro" else "--"
        for i, c in enumerate(rates):
            q = arr.get(f"{tr}_curve{i}_capacity_Ah")
            v = arr.get(f"{tr}_curve{i}_voltage_V")
            if q is None or v is None:
                continue
            col = colors(i / max(len(rates) - 1, 1))
            ax1.plot(q, v, ls, color=col, lw=1.3, label=f"{c:g}C" if tr == transports[0] else None)
        frac = [np.nan if f is None else f for f in rc.get("fraction") or []]
        ax2.plot(rates, frac, "o" + ls, label=f"{tr} transport")
    ax1.set_xlabel("discharged capacity [A·h]")
    ax1.set_ylabel("terminal voltage [V]")
    title = "discharge curves"
    if len(transports) > 1:
        title += " (solid: micro-informed, dashed: Bruggeman)"
    ax1.set_title(title, fontsize=9.5)
    ax1.legend(fontsize=7.5, ncols=2, loc="upper right")
    ax2.set_xscale("log")
    ax2.set_xlabel("C-rate [1/h]")
    ax2.set_ylabel("capacity / capacity at C/10")
    ax2.set_ylim(0, 1.05)
    ax2.axhline(LIMITED_FRACTION, color="#999", lw=0.8, ls=":")
    ax2.set_title("rate capability", fontsize=9.5)
    ax2.legend(fontsize=8, loc="lower left")
    return figs.png(fig)


def _breakdown_figure(
    figs: Figures,
    cell: Mapping[str, Any],
    arr: Mapping[str, np.ndarray],
    tr: str,
    picks: list[int],
) -> str:
    rc = cell.get(f"rate_{tr}") or {}
    rates = rc.get("c_rate") or []
    width = 5.2 * len(picks)
    fig = figs.new(width, 3.8, left=0.8 / width, wspace=0.3)
    axes = np.atleast_1d(fig.subplots(1, len(picks)))
    for ax, i in zip(axes, picks, strict=True):
        q = arr.get(f"{tr}_bd{i}_capacity_Ah")
        if q is None:
            ax.set_axis_off()
            continue
        ys = [1e3 * arr.get(f"{tr}_bd{i}_{k}", np.zeros_like(q)) for k, _ in _COMPONENTS]
        ax.stackplot(q, *ys, labels=[lab for _, lab in _COMPONENTS])
        key = (rc.get("bottleneck_key") or [""] * len(rates))[i]
        ax.set_title(f"{rates[i]:g}C ({tr} transport): limited by {key}", fontsize=9)
        ax.set_xlabel("discharged capacity [A·h]")
        ax.set_ylabel("voltage loss [mV]")
    axes[0].legend(fontsize=7, loc="upper left")
    return figs.png(fig)


def _report(view: ReportView) -> list[ReportSection]:
    cell = view.summary("cell")
    if not cell:
        return [ReportSection("cell", "Cell performance", view.status_line("cell"))]
    micro = cell.get("micro") or {}
    measured = "micro" in (cell.get("transports") or [])
    tau_e = num(micro.get("tau_electrolyte"), ".4f") if measured else "not measured"
    area = num(micro.get("specific_surface_area_per_m"), ".4g", "1/m")
    ss = cell.get("solid_state")
    title = "Cell performance"
    if ss:
        title += " — solid-state single-ion P2D"
        body = (
            f"<p><b>Solid-state composite cathode</b>: {esc(ss.get('model'))}. Parameter set "
            f"<b>{esc(cell.get('parameter_set'))}</b> (its positive electrode's OCP, kinetics "
            "and solid diffusion). The solid electrolyte is a single-ion conductor: "
            "t₊ = 1, so there is no salt gradient and no concentration polarisation; its "
            "current obeys Ohm's law with "
            f"σ_SE = {num(ss.get('se_conductivity_S_per_m'), '.4g', 'S/m')} in the network "
            f"(SE fraction {num(ss.get('se_fraction'), '.4f')}, τ SE {tau_e}, ε/τ = "
            f"{num(ss.get('se_transport_efficiency'), '.4f') if measured else 'not measured'}) "
            f"and in a dense SE separator of {um(ss.get('separator_thickness_m'))}. Reaction "
            f"only on the wired active | SE contact (both sides reach their faces), {area}; "
            "particle radius "
            f"{um(micro.get('particle_radius_m'))}, active fraction "
            f"{num(micro.get('active_fraction'), '.4f')}. Counter electrode: lithium metal "
            f"(exchange current {num(ss.get('li_exchange_current_A_per_m2'), '.4g', 'A/m²')}); "
            f"cut-off {num(ss.get('cutoff_V'), '.4f', 'V')}; 1C = "
            f"{num(ss.get('one_c_A'), '.4g', 'A')} over {num(ss.get('area_m2'), '.4g', 'm²')} "
            "(the positive electrode's OCP-limited capacity in one hour).</p>"
        )
        return _rate_sections(view, cell, title, body)
    body = (
        f"<p>Parameter set <b>{esc(cell.get('parameter_set'))}</b>, the image is the "
        f"<b>{esc(cell.get('electrode'))}</b> electrode. Micro-informed properties: "
        f"porosity {num(micro.get('porosity'), '.4f')}, τ electrolyte "
        f"{tau_e}, τ solid {num(micro.get('tau_solid'), '.4f')}, "
        f"active/electrolyte area {area}, "
        f"particle radius {um(micro.get('particle_radius_m'))}, active fraction "
        f"{num(micro.get('active_fraction'), '.4f')}.</p>"
    )
    return _rate_sections(view, cell, title, body)


def _rate_sections(
    view: ReportView, cell: Mapping[str, Any], title: str, body: str
) -> list[ReportSection]:
    figs = view.figures
    a_cell = view.arrays("cell")
    for tr in cell.get("transports") or []:
        rc = cell.get(f"rate_{tr}") or {}
        rows_r = []
        for i, c in enumerate(rc.get("c_rate") or []):
            rows_r.append(
                (
                    f"{c:g}C",
                    num(rc["capacity_Ah"][i], ".4f"),
                    num(rc["energy_Wh"][i], ".4f"),
                    num(rc["average_voltage_V"][i], ".4f"),
                    pct(rc["fraction"][i]),
                    esc((rc.get("bottleneck_key") or [""] * (i + 1))[i]),
                )
            )
        body += f"<h3>Rate capability — {esc(tr)} transport ({esc(rc.get('model'))})</h3>"
        body += table(
            [
                "rate",
                "capacity [A·h]",
                "energy [W·h]",
                "mean voltage [V]",
                "of C/10",
                "limited by",
            ],
            rows_r,
        )
    body += img(_curves_figure(figs, cell, a_cell), "discharge curves and rate capability")
    tr0 = (cell.get("transports") or ["micro"])[0]
    bits = _cell_bits(cell)
    n_r = len((cell.get(f"rate_{tr0}") or {}).get("c_rate") or [])
    if n_r and bits is not None:
        picks = sorted({bits["index"], n_r - 1})
        body += "<h3>Where the voltage goes</h3>" + img(
            _breakdown_figure(figs, cell, a_cell, tr0, picks),
            "voltage-loss breakdown",
            "Stacked voltage losses (OCV − V) during the discharge; they sum to the "
            "total within the solver's round-off.",
        )
    comp = cell.get("comparison") or []
    if comp:
        body += "<h3>Micro-informed vs Bruggeman</h3>" + table(
            ["rate", "capacity micro [A·h]", "capacity Bruggeman [A·h]", "difference"],
            [
                (
                    f"{r['c_rate']:g}C",
                    num(r["capacity_micro_Ah"], ".4f"),
                    num(r["capacity_bruggeman_Ah"], ".4f"),
                    "–"
                    if r.get("difference_percent") is None
                    else f"{r['difference_percent']:+.2f} %",
                )
                for r in comp
            ],
        )
    body += notes_list(cell.get("notes") or [])
    return [ReportSection("cell", title, body)]


# ====================================================================== diagnosis
_LOSS_WORDS = {
    "electrolyte": "ionic transport in the electrolyte (depletion through the thickness)",
    "solid_diffusion": "solid-state diffusion inside the particles",
    "reaction": "reaction kinetics at the particle surface",
    "ohmic_solid": "electronic conduction through the solid network",
    "equilibrium": "none (the cut-off is met close to equilibrium)",
    "incomplete": "an incomplete simulation (the solver stopped early)",
}


def _cell_bits(cell: Mapping[str, Any]) -> dict[str, Any] | None:
    tr = "micro" if "micro" in (cell.get("transports") or []) else "bruggeman"
    rc = cell.get(f"rate_{tr}") or {}
    rates = rc.get("c_rate") or []
    if not rates:
        return None
    fr = [math.nan if f is None else float(f) for f in rc.get("fraction") or []]
    keys = rc.get("bottleneck_key") or [""] * len(rates)
    words = rc.get("bottleneck") or [""] * len(rates)
    idx = next((i for i, f in enumerate(fr) if math.isfinite(f) and f < LIMITED_FRACTION), None)
    limited = idx is not None
    if idx is None:
        idx = len(rates) - 1
    return {
        "transport": tr,
        "index": idx,
        "limited": limited,
        "c_rate": rates[idx],
        "fraction": fr[idx] if idx < len(fr) else math.nan,
        "key": keys[idx] if idx < len(keys) else "",
        "words": words[idx] if idx < len(words) else "",
        "rates": rates,
        "fractions": fr,
    }


def _explain(key: str, bits: Mapping[str, Any], results: Mapping[str, Any]) -> list[str]:
    tra = results.get("transport") or {}
    met = results.get("metrics") or {}
    roles = {p["name"]: p["role"] for p in met.get("phases_table") or []}
    if not roles:
        conn = results.get("connectivity") or {}
        roles = {p["name"]: p["role"] for p in conn.get("phases_table") or []}
    active = next((n for n, r in roles.items() if r == "active"), None)
    eps = tra.get("porosity")
    tau = tra.get("tau_thickness")
    eff = eps / tau if eps and tau else None
    out = []
    if bits.get("words"):
        out.append(f"The voltage-loss breakdown at {bits['c_rate']:g}C: {bits['words']}.")
    sizes = (met.get("sizes_m") or {}).get(active or "", {}) if active else {}
    ssa = met.get("active_electrolyte_specific_area_per_m")
    ss = (results.get("cell") or {}).get("solid_state")
    if ss and key == "electrolyte" and eff is not None:
        out.append(
            f"The solid-electrolyte network passes a fraction ε/τ = {eff:.3f} of the bulk "
            f"conductivity σ_SE = {ss.get('se_conductivity_S_per_m'):.3g} S/m (SE fraction "
            f"{eps:.3f}, tortuosity factor {tau:.2f} through the thickness). More or "
            "better-connected electrolyte, a more conductive electrolyte or a thinner "
            "electrode moves this limit to higher rates."
        )
    elif key == "electrolyte" and eff is not None:
        out.append(
            f"The measured pore network passes a fraction ε/τ = {eff:.3f} of the free "
            f"electrolyte's transport (porosity {eps:.3f}, tortuosity factor {tau:.2f} "
            "through the thickness). Raising the porosity or lowering τ (aligned pores, "
            "less carbon-binder in the pores, a thinner electrode) moves this limit to "
            "higher rates."
        )
    elif key == "solid_diffusion" and sizes.get("d50"):
        out.append(
            f"The active particles have a median local-thickness diameter of "
            f"{um(sizes['d50'])}; the diffusion time goes as R², so smaller particles "
            "relieve this limit."
        )
    elif key == "reaction" and ss:
        out.append(
            "The kinetic loss includes the lithium-metal counter electrode's (exchange "
            f"current {ss.get('li_exchange_current_A_per_m2'):.3g} A/m²) and the reaction on "
            "the active | solid-electrolyte contact; more active contact area (more "
            "electrolyte coverage of the particles) lowers the cathode's share."
        )
    elif key == "reaction" and ssa:
        out.append(
            f"The active/electrolyte interface is {ssa / 1e6:.3g} µm²/µm³ of electrode; "
            "more reactive surface (smaller particles, less carbon-binder coverage) lowers "
            "the kinetic overpotential."
        )
    elif key == "ohmic_solid":
        ts = (tra.get("solid") or {}).get("tau_thickness")
        if ts:
            out.append(
                f"The solid network's tortuosity factor through the thickness is {ts:.2f}; "
                "better carbon-binder connectivity lowers the electronic resistance."
            )
    return out


def _diagnose(results: Mapping[str, Any]) -> Iterator[Verdict]:
    status = results.get("_status", {})
    cell = results.get("cell") or {}
    bits = _cell_bits(cell) if status.get("cell") == "complete" else None
    if bits is None:
        return
    key = bits["key"] if bits["key"] else "undetermined"
    c, f = bits["c_rate"], bits["fraction"]
    words = dict(_LOSS_WORDS)
    if cell.get("solid_state"):
        words["electrolyte"] = "ionic conduction through the solid-electrolyte network"
        words["reaction"] = (
            "reaction kinetics of the half cell (the lithium-metal counter electrode and "
            "the active | solid-electrolyte contact)"
        )
    if key == "equilibrium" or not bits["limited"]:
        key = "equilibrium"
        headline = (
            f"No rate limitation up to {bits['rates'][-1]:g}C: the electrode keeps "
            f"{pct(bits['fractions'][-1])} of its C/10 capacity"
        )
        if bits["key"] and bits["key"] != "equilibrium":
            headline += f"; the largest loss at {c:g}C is {words.get(bits['key'], bits['key'])}"
    else:
        headline = (
            f"Dominant bottleneck: {words.get(key, key)}. At {c:g}C the "
            f"electrode delivers only {pct(f)} of its C/10 capacity"
        )
    details = _explain(key, bits, results)
    comp = cell.get("comparison") or []
    row = next((r for r in comp if r.get("c_rate") == c), None)
    if row and row.get("difference_percent") is not None:
        d = row["difference_percent"]
        details.append(
            f"A Bruggeman model from the same "
            f"{'solid-electrolyte fraction' if cell.get('solid_state') else 'porosity'} "
            f"predicts {abs(d):.1f} % "
            f"{'more' if d < 0 else 'less'} capacity at {c:g}C than the "
            "micro-informed one: "
            + (
                "the usual assumption is optimistic for this electrode."
                if d < 0
                else "the usual assumption is pessimistic for this electrode."
            )
        )
    yield Verdict(10, key, headline, tuple(details))


def _headline(results: Mapping[str, Any]) -> dict[str, Any]:
    cell = results.get("cell") or {}
    h: dict[str, Any] = {}
    for tr in cell.get("transports") or []:
        rc = cell.get(f"rate_{tr}") or {}
        h[f"rate_capability_{tr}"] = {
            "c_rate": rc.get("c_rate"),
            "capacity_Ah": rc.get("capacity_Ah"),
            "fraction": rc.get("fraction"),
            "bottleneck": rc.get("bottleneck_key"),
        }
    return h


STAGE = Stage(
    "cell",
    "Cell performance (P2D)",
    ("input", "metrics", "transport"),
    ("cell",),
    _run,
    active=_active,
    n_steps=3,
    needs_objects=False,
    settings=(("cell", CellSettings),),
    report=_report,
    diagnose=_diagnose,
    headline=_headline,
)
