"""Twin stage ``gas``: gas in the pores by capillarity, and the transport it costs.

Places gas in the labelled electrode at the configured saturations
(:func:`microbat.degradation.gas_analysis`: morphological drainage from the
separator face by default, or in-situ bubbles, or bubbles nucleating at reaction
sites) and measures the remaining electrolyte: effective ionic conductivity and
tortuosity factor through the thickness, the wetted active area, the electrolyte cut
off from the separator and, with the cell stage's parameter set, the capacity
at the configured C-rates through the P2D bridge. Report section: "Gas and
wetting" (the saturation–pressure curve, the transport-loss curve, where the gas
sits). Diagnosis: a finding on the conductivity and capacity left at the middle
saturation.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from microbat.core.results import to_jsonable
from microbat.degradation.gas import gas_analysis
from microbat.degradation.plots import draw_gas_curves, draw_gas_slices, mid_plane
from microbat.pipeline.base import Finding, Stage, StageContext, StageOutput, StageSettings
from microbat.pipeline.reportkit import (
    ReportSection,
    ReportView,
    esc,
    img,
    notes_list,
    num,
    pct,
    table,
)
from microbat.pipeline.stages.ssb import liquid_only, solid_state

__all__ = ["STAGE", "GasSettings"]


class GasSettings(StageSettings):
    """Gas and wetting (``microbat.degradation.gas_analysis``)."""

    enabled: bool = Field(True, description="Run the gas and wetting stage.")
    saturations: list[float] = Field(
        [0.1, 0.2, 0.3],
        description="Gas saturations (fraction of the pore volume taken by gas), each in [0, 1).",
    )
    mode: Literal["drainage", "bubbles", "nucleation"] = Field(
        "drainage",
        description="Gas entering from the inlet face by capillary drainage, in-situ bubbles "
        "in the largest pores, or bubbles growing from random reaction sites.",
    )
    inlet: str = Field(
        "separator",
        description="Inlet face of the drainage: separator (last index of the thickness "
        "axis), collector, or a face as axis:first or axis:last (e.g. 2:first).",
    )
    trapping: bool = Field(
        False, description="Keep electrolyte cut off by the gas from the opposite face."
    )
    surface_tension: float = Field(
        0.035,
        gt=0,
        description="Electrolyte surface tension (carbonate electrolytes, 30-40 mN/m); "
        "scales the pressure axis only.",
        json_schema_extra={"unit": "N/m"},
    )
    contact_angle: float = Field(
        30.0,
        ge=0,
        lt=90,
        description="Contact angle through the electrolyte; scales the pressure axis only.",
        json_schema_extra={"unit": "deg"},
    )
    seed: int = Field(0, description="Seed of the tie order and the nucleation sites.")
    pressures: int = Field(
        20, ge=2, description="Pressures of the saturation-pressure curve (log-spaced)."
    )
    c_rates: list[float] = Field(
        [3.0],
        description="C-rates of the P2D capacity at every saturation (the cell stage's "
        "parameter set and model; empty for none).",
        json_schema_extra={"unit": "1/h"},
    )

    @field_validator("saturations")
    @classmethod
    def _sats(cls, v: list[float]) -> list[float]:
        if not v or any(not (0 <= s < 1) for s in v):
            raise ValueError(f"saturations must lie in [0, 1), got {v}")
        return v

    @field_validator("inlet")
    @classmethod
    def _inlet(cls, v: str) -> str:
        t = v.strip().lower()
        axis, _, side = t.partition(":")
        if t in ("separator", "collector") or (
            axis in ("0", "1", "2") and side in ("first", "last")
        ):
            return t
        raise ValueError(f"inlet {v!r}: use separator, collector, or axis:first / axis:last")

    @field_validator("c_rates")
    @classmethod
    def _rates(cls, v: list[float]) -> list[float]:
        if any(not (r > 0) for r in v):
            raise ValueError(f"c_rates must be positive, got {v}")
        return v


def _active(ctx: StageContext) -> str | None:
    if not ctx.config.gas.enabled:
        return "the gas stage is switched off (gas.enabled = false)"
    if solid_state(ctx):
        return liquid_only("the gas (electrolyte saturation) analysis")
    return None


def _run(ctx: StageContext) -> StageOutput:
    cfg = ctx.config.gas
    ms = ctx.microstructure()
    ctx.step(
        f"gas by {cfg.mode} at saturations {', '.join(f'{s:g}' for s in cfg.saturations)}; "
        "transport of the remaining electrolyte"
        + (f"; P2D at {', '.join(f'{c:g}C' for c in cfg.c_rates)}" if cfg.c_rates else "")
    )
    cell = ctx.config.cell
    res = gas_analysis(
        ms,
        cfg.saturations,
        mode=cfg.mode,
        inlet=cfg.inlet,
        trapping=cfg.trapping,
        seed=cfg.seed,
        surface_tension=cfg.surface_tension,
        contact_angle_deg=cfg.contact_angle,
        n_pressures=cfg.pressures,
        c_rates=cfg.c_rates or None,
        parameter_set=cell.parameter_set,
        electrode=cell.electrode,
        model=cell.model,
    )
    summary: dict[str, Any] = to_jsonable(res.to_dict())
    summary["thickness_axis"] = ms.thickness_axis
    arrays = {"gas_level_slice": mid_plane(res.gas_level, ms.thickness_axis).astype(np.int8)}
    return StageOutput(summary=summary, arrays=arrays)


# ========================================================================= report
def _report(view: ReportView) -> list[ReportSection]:
    gas = view.summary("gas")
    if not gas:
        return [ReportSection("gas", "Gas and wetting", view.status_line("gas"))]
    base = gas.get("baseline") or {}
    curve = gas.get("curve") or {}
    body = (
        f"<p>Gas placed by <b>{esc(gas.get('mode'))}</b> (inlet: {esc(gas.get('inlet'))}"
        + (", trapped electrolyte kept" if gas.get("trapping") else "")
        + f"), capillary pressure 2γcosθ/r with γ = "
        f"{num(curve.get('surface_tension_N_per_m'), '.3g')} N/m and θ = "
        f"{num(curve.get('contact_angle_deg'), '.3g')}°; gas enters at "
        f"{num((curve.get('entry_pressure_Pa') or 0) / 1e3, '.3g')} kPa"
        + (
            f" and spans the electrode at {num(curve['breakthrough_pressure_Pa'] / 1e3, '.3g')} kPa"
            if curve.get("breakthrough_pressure_Pa") is not None
            else ""
        )
        + f". Without gas: τ = {num(base.get('tau'), '.3f')} through the thickness, wetted "
        f"active area {num(base.get('wetted_area_per_volume_per_m'), '.3g')} m⁻¹.</p>"
    )
    rate = gas.get("rate") or {}
    rates = rate.get("c_rates") or []
    rows = []
    for i, s in enumerate(gas.get("achieved_saturation") or []):
        ratios = rate.get("capacity_ratio") or []
        cap = ratios[i] if i < len(ratios) else [None] * len(rates)
        rows.append(
            (
                num(s, ".3f"),
                num((gas["capillary_pressure_Pa"][i] or 0) / 1e3, ".3g"),
                pct(gas["effective_conductivity_ratio"][i]),
                num(gas["tau"][i], ".3f"),
                pct(gas["wetted_area_fraction"][i]),
                pct(gas["isolated_electrolyte_fraction"][i]),
                *[pct(c) for c in cap],
            )
        )
    body += table(
        [
            "gas saturation",
            "P_c [kPa]",
            "ionic conductivity left",
            "τ",
            "wetted active area left",
            "electrolyte cut off",
            *[f"capacity at {c:g}C (P2D)" for c in rates],
        ],
        rows,
    )
    figs = view.figures
    fig = figs.new(11, 3.9, left=0.07, wspace=0.25)
    draw_gas_curves(fig, gas)
    body += img(
        figs.png(fig),
        "drainage and transport-loss curves",
        "Left: gas saturation against capillary pressure. Right: the electrolyte's "
        "effective conductivity, the wetted active area and the P2D capacity, relative "
        "to the gas-free electrode.",
    )
    arr = view.arrays("gas")
    if "gas_level_slice" in arr:
        fig = figs.new(5.2, 5.0, left=0.12, right=0.97, bottom=0.1)
        draw_gas_slices(fig, arr["gas_level_slice"], list(gas.get("saturation") or []), 0)
        body += img(
            figs.png(fig),
            "where the gas sits",
            "Mid-plane containing the thickness axis (collector at the top).",
        )
    body += notes_list(gas.get("notes") or [])
    return [ReportSection("gas", "Gas and wetting", body)]


def _middle(gas: Mapping[str, Any]) -> int | None:
    sats = gas.get("achieved_saturation") or []
    if not sats:
        return None
    order = sorted(range(len(sats)), key=lambda i: sats[i])
    return order[len(order) // 2]


def _diagnose(results: Mapping[str, Any]) -> Iterator[Finding]:
    gas = results.get("gas") or {}
    i = _middle(gas)
    if i is None:
        return
    s = gas["achieved_saturation"][i]
    text = (
        f"Gas at {100 * s:.0f} % of the pore volume ({gas.get('mode')}) leaves "
        f"{pct(gas['effective_conductivity_ratio'][i])} of the ionic conductivity and "
        f"{pct(gas['wetted_area_fraction'][i])} of the wetted active area"
    )
    rate = gas.get("rate") or {}
    if rate.get("capacity_ratio"):
        c = rate["c_rates"][-1]
        text += f"; the capacity at {c:g}C falls to {pct(rate['capacity_ratio'][i][-1])}"
    yield Finding(40, text + ".")


def _headline(results: Mapping[str, Any]) -> dict[str, Any]:
    gas = results.get("gas") or {}
    return {
        "gas_saturation": gas.get("achieved_saturation"),
        "gas_conductivity_ratio": gas.get("effective_conductivity_ratio"),
        "gas_wetted_area_fraction": gas.get("wetted_area_fraction"),
    }


STAGE = Stage(
    "gas",
    "Gas and wetting",
    ("input", "segment"),
    ("gas", "cell"),
    _run,
    active=_active,
    n_steps=1,
    settings=(("gas", GasSettings),),
    report=_report,
    diagnose=_diagnose,
    headline=_headline,
)
