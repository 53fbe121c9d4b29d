"""Twin stage ``heat``: Joule heating, carbon-binder bottlenecks, temperature rise.

Runs :func:`microbat.degradation.joule_heating` on the labelled electrode at the
configured current density, at the operating current (electrons, ions and
charge transfer: the heat budget a cell thermal model needs, per area, per volume
and over the depth) and through the solid alone (the electronic bottlenecks: the
necks with the highest current density and the current each carries). The
steady temperature rise with the stated boundary is reported with its size.
Report section: "Joule heating and bottlenecks". Diagnosis: a finding on how
concentrated the heat is and on the temperature rise.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

import numpy as np
from pydantic import Field

from microbat.core.results import to_jsonable
from microbat.degradation.heating import HeatProperties, joule_heating
from microbat.degradation.plots import draw_heat_profile, draw_heat_slices, mid_plane
from microbat.pipeline.base import (
    Finding,
    Stage,
    StageContext,
    StageOutput,
    StageSettings,
    optional,
)
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

__all__ = ["STAGE", "HeatSettings"]

_KEYS = (
    "mode",
    "current_density_A_per_m2",
    "current_A",
    "voltage_drop_V",
    "resistance_ohm_m2",
    "total_heat_W",
    "energy_balance_error",
    "heat_per_area_W_per_m2",
    "heat_per_volume_W_per_m3",
    "heat_by_kind_W",
    "heat_by_phase_W",
    "heat_top1pct_fraction",
    "necks",
    "n_necks",
    "max_delta_T_K",
    "mean_delta_T_K",
    "local_delta_T_K",
    "point_source_delta_T_K",
    "thermal_boundary",
    "iterations",
    "warnings",
)


class HeatSettings(StageSettings):
    """Joule heating and bottlenecks (``microbat.degradation.joule_heating``)."""

    enabled: bool = Field(True, description="Run the Joule-heating stage.")
    current_density: float = Field(
        30.0,
        gt=0,
        description="Applied current over the electrode area (30 A/m² = 3 mA/cm², about 1C "
        "for a 3 mAh/cm² electrode).",
        json_schema_extra={"unit": "A/m2"},
    )
    electrode: bool = Field(
        True,
        description="Solve at the operating current (electrons, ions, linear charge "
        "transfer): the heat budget.",
    )
    solid: bool = Field(
        True,
        description="Solve the electronic conduction alone, collector face to separator "
        "face: the carbon-binder bottlenecks.",
    )
    cooled: Literal["collector", "separator", "both"] = Field(
        "collector",
        description="Face(s) held at the reference temperature; the other sides adiabatic.",
    )
    necks: int = Field(5, ge=1, description="Hottest clusters listed per mode.")
    tol: float = Field(
        1e-5,
        gt=0,
        lt=1,
        description="Convergence of the potential solve: relative spread of the current "
        "through the planes between the collector and separator faces (the energy balance "
        "holds to about this).",
    )
    carbon_binder_conductivity: float = Field(
        10.0,
        gt=0,
        description="Electronic conductivity of the carbon-binder (Zielke et al. 2015).",
        json_schema_extra={"unit": "S/m"},
    )
    active_conductivity: float = Field(
        0.18,
        gt=0,
        description="Electronic conductivity of the active material (Chen et al. 2020).",
        json_schema_extra={"unit": "S/m"},
    )


def _active(ctx: StageContext) -> str | None:
    cfg = ctx.config.heat
    if not cfg.enabled:
        return "the heat stage is switched off (heat.enabled = false)"
    if not (cfg.electrode or cfg.solid):
        return "neither mode is asked for (heat.electrode = heat.solid = false)"
    return None


def _run(ctx: StageContext) -> StageOutput:
    cfg = ctx.config.heat
    ms = ctx.microstructure()
    props = HeatProperties(
        active_conductivity=cfg.active_conductivity,
        carbon_binder_conductivity=cfg.carbon_binder_conductivity,
    )
    summary: dict[str, Any] = {"thickness_axis": ms.thickness_axis, "properties": props.to_dict()}
    arrays: dict[str, np.ndarray] = {}
    notes: list[str] = []
    for mode, on in (("electrode", cfg.electrode), ("solid", cfg.solid)):
        if not on:
            continue
        what = "operating current" if mode == "electrode" else "electronic conduction alone"
        ctx.step(f"{what} at {cfg.current_density:g} A/m²: potential, Joule heat, temperature")
        res = optional(
            notes,
            f"Joule heating ({what})",
            lambda mode=mode: joule_heating(
                ms,
                current_density=cfg.current_density,
                through=mode,
                properties=props,
                cooled=cfg.cooled,
                n_necks=cfg.necks,
                tol=cfg.tol,
            ),
        )
        if res is None:
            continue
        d = res.to_dict()
        summary[mode] = to_jsonable({k: d[k] for k in _KEYS})
        arrays[f"{mode}_depth_m"] = np.asarray(res.depth_m, float)
        arrays[f"{mode}_heat_depth"] = np.asarray(res.heat_depth_W_per_m3, float)
        ax = ms.thickness_axis
        arrays[f"{mode}_heat_slice"] = mid_plane(res.heat_W_per_m3, ax).astype(np.float32)
        arrays[f"{mode}_current_slice"] = mid_plane(res.current_density_A_per_m2_field, ax).astype(
            np.float32
        )
        arrays[f"{mode}_dT_slice"] = mid_plane(res.delta_T_K, ax).astype(np.float32)
    summary["modes"] = [m for m in ("electrode", "solid") if m in summary]
    summary["notes"] = notes
    return StageOutput(summary=summary, arrays=arrays)


# ========================================================================= report
_TITLES = {
    "electrode": "operating current (electrons, ions, charge transfer)",
    "solid": "electronic conduction alone (collector to separator face)",
}


def _necks_table(necks: list[Mapping[str, Any]]) -> str:
    return table(
        ["#", "phase", "voxels", "peak |j| [A/m²]", "current", "share of I", "heat", "depth"],
        [
            (
                str(i),
                esc(n.get("phase")),
                str(n.get("voxels")),
                num(n.get("peak_current_density_A_per_m2"), ".4g"),
                num(n.get("current_A"), ".3g", "A"),
                pct(n.get("current_fraction")),
                pct(n.get("heat_fraction")),
                num(1e6 * float(n.get("depth_m") or 0), ".3g", "µm"),
            )
            for i, n in enumerate(necks, 1)
        ],
    )


def _report(view: ReportView) -> list[ReportSection]:
    heat = view.summary("heat")
    title = "Joule heating and bottlenecks"
    if not heat or not heat.get("modes"):
        return [ReportSection("heat", title, view.status_line("heat") + notes_list(
            (heat or {}).get("notes") or []))]  # fmt: skip
    rows = []
    for mode in heat["modes"]:
        r = heat[mode]
        k = r.get("heat_by_kind_W") or {}
        tot = r.get("total_heat_W") or 0.0
        rows.append(
            (
                esc(_TITLES[mode]),
                num(r.get("voltage_drop_V"), ".3g", "V"),
                num(1e4 * (r.get("resistance_ohm_m2") or 0), ".3g", "Ω cm²"),
                num(r.get("heat_per_area_W_per_m2"), ".3g", "W/m²"),
                num(r.get("heat_per_volume_W_per_m3"), ".3g", "W/m³"),
                " / ".join(
                    pct((k.get(x) or 0) / tot if tot else None)
                    for x in ("electronic", "ionic", "reaction")
                ),
                pct(r.get("heat_top1pct_fraction")),
                num(r.get("max_delta_T_K"), ".2g", "K"),
            )
        )
    ref = heat[heat["modes"][0]]
    body = (
        f"<p>Current density {num(ref.get('current_density_A_per_m2'), '.3g')} A/m² over the "
        f"image's cross-section. Thermal boundary: {esc(ref.get('thermal_boundary'))}.</p>"
    )
    body += table(
        [
            "mode",
            "ΔV",
            "area resistance",
            "heat per area",
            "heat per volume",
            "electronic / ionic / reaction",
            "heat in the hottest 1 %",
            "max ΔT",
        ],
        rows,
    )
    body += (
        f"<p>The temperature rise is tiny at the particle scale: at most "
        f"{num(ref.get('max_delta_T_K'), '.2g')} K over the image, "
        f"{num(ref.get('local_delta_T_K'), '.2g')} K above its own layer, and the hottest "
        f"neck as a point source gives {num(ref.get('point_source_delta_T_K'), '.2g')} K at "
        "1 µm. A cell thermal model needs instead the electrode's heat generation: "
        f"{num(ref.get('heat_per_area_W_per_m2'), '.3g')} W/m² of electrode, "
        f"{num(ref.get('heat_per_volume_W_per_m3'), '.3g')} W/m³, distributed over the "
        "depth as plotted below.</p>"
    )
    figs = view.figures
    arr = view.arrays("heat")
    for mode in heat["modes"]:
        r = heat[mode]
        body += f"<h3>{esc(_TITLES[mode]).capitalize()}</h3>"
        if r.get("necks"):
            body += (
                f"<p>{r.get('n_necks')} clusters of hot voxels (the hottest 1 %), the "
                "highest current density first; the current through a cluster is half the "
                "absolute current over its boundary.</p>"
            )
            body += _necks_table(r["necks"])
        if f"{mode}_heat_slice" in arr:
            fig = figs.new(13, 4.2, left=0.05, wspace=0.35)
            draw_heat_slices(
                fig, arr[f"{mode}_heat_slice"], arr[f"{mode}_current_slice"],
                arr[f"{mode}_dT_slice"], 0,
            )  # fmt: skip
            body += img(
                figs.png(fig),
                f"heat, current and temperature ({mode})",
                "Mid-plane containing the thickness axis (collector at the top); blank: "
                "no conductor.",
            )
        if f"{mode}_depth_m" in arr:
            fig = figs.new(6, 3.6, left=0.13, bottom=0.15)
            draw_heat_profile(fig, arr[f"{mode}_depth_m"], arr[f"{mode}_heat_depth"])
            body += img(figs.png(fig), f"heat over the depth ({mode})")
        body += notes_list(r.get("warnings") or [])
    body += notes_list(heat.get("notes") or [])
    return [ReportSection("heat", title, body)]


def _diagnose(results: Mapping[str, Any]) -> Iterator[Finding]:
    heat = results.get("heat") or {}
    modes = heat.get("modes") or []
    if not modes:
        return
    if "solid" in modes and heat["solid"].get("necks"):
        s = heat["solid"]
        n = s["necks"][0]
        yield Finding(
            45,
            f"Electronic bottlenecks: the hottest 1 % of the solid voxels make "
            f"{pct(s.get('heat_top1pct_fraction'))} of its Joule heat; the sharpest neck "
            f"({n['phase']}, {n['voxels']} voxels at {1e6 * n['depth_m']:.3g} µm depth) "
            f"carries {pct(n['current_fraction'])} of the current at "
            f"{n['peak_current_density_A_per_m2']:.3g} A/m².",
        )
    r = heat[modes[0]]
    yield Finding(
        50,
        f"Joule heat {r['heat_per_area_W_per_m2']:.3g} W/m² at "
        f"{r['current_density_A_per_m2']:g} A/m²; the local temperature rise is "
        f"negligible ({num(r.get('max_delta_T_K'), '.2g')} K): a thermal model needs the "
        "heat per area "
        "and its depth profile, not the microstructure.",
    )


def _headline(results: Mapping[str, Any]) -> dict[str, Any]:
    heat = results.get("heat") or {}
    modes = heat.get("modes") or []
    r = heat[modes[0]] if modes else {}
    return {
        "heat_per_area_W_per_m2": r.get("heat_per_area_W_per_m2"),
        "heat_top1pct_fraction": r.get("heat_top1pct_fraction"),
        "max_delta_T_K": r.get("max_delta_T_K"),
    }


STAGE = Stage(
    "heat",
    "Joule heating and bottlenecks",
    ("input", "segment"),
    ("heat",),
    _run,
    active=_active,
    n_steps=2,
    settings=(("heat", HeatSettings),),
    report=_report,
    diagnose=_diagnose,
    headline=_headline,
)
