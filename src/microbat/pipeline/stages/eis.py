"""Twin stage ``eis``: impedance of the electrode, homogenised and resolved.

The homogenised transmission line fed the measured ε/τ, σ_eff and a_s
(:func:`microbat.cell.eis.homogenized_eis`) on the whole image and, optionally, the
resolved small-signal model (:func:`microbat.cell.eis.resolved_eis`) on the
central subvolume with the homogenised model of the same subvolume beside it.

On a solid-state image (a ``solid_electrolyte`` phase) the ionic conductor is the
solid electrolyte, a single-ion conductor (see :mod:`microbat.cell.eis.resolved`):
the homogenised line and the resolved spectrum (always, on the central subvolume)
use σ_SE, and the polycrystal impedance of the electrolyte
(:func:`microbat.ssb.polycrystal_impedance`: Voronoi grains of ``grain_size``,
boundaries of specific resistance ``R_gb`` and capacitance ``C_gb``, grains of
permittivity ``ε_r``) gives the bulk and grain-boundary arcs, whose peaks are
reported against ``σ_SE/(2π ε₀ ε_r)`` and ``1/(2π R_gb C_gb)``.
Report section: "Impedance (EIS)" with the Nyquist plot(s).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from microbat.cell.eis.homogenized import homogenized_eis
from microbat.cell.eis.parameters import EISParameters
from microbat.cell.eis.resolved import resolved_eis
from microbat.cell.parameters import load_parameters
from microbat.core.results import to_jsonable
from microbat.pipeline.base import (
    Stage,
    StageContext,
    StageOutput,
    StageSettings,
    central,
    optional,
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

__all__ = ["STAGE", "EISSettings"]


class EISSettings(StageSettings):
    """Impedance (``microbat.cell.eis``): homogenised, and resolved on a subvolume."""

    enabled: bool = Field(True, description="Run the impedance stage (homogenised model).")
    resolved: bool = Field(
        False,
        description="Also the resolved small-signal model on the central subvolume "
        "(slower), with the homogenised model on the same subvolume for comparison.",
    )
    resolved_subvolume: list[int] = Field(
        [32, 32, 32],
        description="Edge per axis of the central subvolume of the resolved model (full "
        "thickness if smaller).",
        json_schema_extra={"unit": "voxels"},
    )
    blocking: bool = Field(False, description="Blocking electrode: double layer only.")
    parameters: Literal["cell", "default"] = Field(
        "cell",
        description="Material and interface parameters: the cell stage's parameter set and "
        "electrode at eis.soc, with the measured particle radius (as the cell section), or "
        "microbat's typical NMC defaults.",
    )
    soc: float = Field(
        0.5, ge=0, le=1, description="Cell state of charge of the spectrum (parameters = cell)."
    )
    se_conductivity: float | None = Field(
        None,
        gt=0,
        description="Solid-state image: ionic conductivity of the solid electrolyte (grain "
        "interior); default cell.se_conductivity, else ssb.conductivity (one material "
        "for every solid-state analysis of the run).",
        json_schema_extra={"unit": "S/m"},
    )
    polycrystal: bool = Field(
        True, description="Solid-state image: the bulk and grain-boundary arcs of the electrolyte."
    )
    grain_size: float | None = Field(
        None,
        gt=0,
        description="Solid-state image: mean Voronoi grain size of the electrolyte (default "
        "ssb.grain_size; at least two voxels).",
        json_schema_extra={"unit": "m"},
    )
    gb_resistance: float | None = Field(
        None,
        gt=0,
        description="Solid-state image: specific grain-boundary resistance (default "
        "ssb.gb_resistance).",
        json_schema_extra={"unit": "Ohm m^2"},
    )
    gb_capacitance: float = Field(
        0.1,
        gt=0,
        description="Solid-state image: specific grain-boundary capacitance eps0 eps_r/delta "
        "(0.1 F/m2: eps_r 10, delta 1 nm; brick-layer range of Irvine, Sinclair & West 1990).",
        json_schema_extra={"unit": "F/m^2"},
    )
    se_permittivity: float = Field(
        10.0,
        gt=0,
        description="Solid-state image: relative permittivity of the grains (bulk capacitance "
        "1e-12 F per unit cell constant, Irvine, Sinclair & West 1990).",
    )
    polycrystal_subvolume: list[int] = Field(
        [24, 24, 24],
        description="Solid-state image: edge per axis of the central subvolume of the "
        "polycrystal impedance (full thickness if smaller).",
        json_schema_extra={"unit": "voxels"},
    )

    @field_validator("resolved_subvolume", "polycrystal_subvolume")
    @classmethod
    def _sub(cls, v: list[int]) -> list[int]:
        if len(v) not in (1, 3) or any(n < 4 for n in v):
            raise ValueError(f"a subvolume must be one or three sizes >= 4, got {v}")
        return v * 3 if len(v) == 1 else v


def _active(ctx: StageContext) -> str | None:
    if not ctx.config.eis.enabled:
        return "the impedance stage is switched off (eis.enabled = false)"
    return None


def _parameters(ctx: StageContext) -> tuple[EISParameters, dict[str, Any]]:
    """The impedance parameters, consistent with the cell stage where it can be."""
    cfg = ctx.config.eis
    cell = ctx.config.cell
    if cfg.parameters == "default":
        return EISParameters(), {"source": "microbat defaults (typical NMC positive electrode)"}
    ctx.step(f"impedance parameters of {cell.parameter_set} ({cell.electrode}) at SOC {cfg.soc:g}")
    over: dict[str, Any] = {}
    how = {"source": f"{cell.parameter_set} ({cell.electrode} electrode), as the cell stage"}
    met = ctx.summary("metrics") if ctx.status("metrics") == "complete" else {}
    roles = {p["name"]: p["role"] for p in met.get("phases_table") or []}
    active = next((n for n, r in roles.items() if r == "active"), None)
    d50 = ((met.get("sizes_m") or {}).get(active or "") or {}).get("d50")
    if d50:
        over["particle_radius_m"] = float(d50) / 2.0
        how["particle_radius"] = "measured (half the active phase's d50, as the cell stage)"
    else:
        how["particle_radius"] = "the parameter set's"
    params = EISParameters.from_cell(
        load_parameters(cell.parameter_set), electrode=cell.electrode, soc=cfg.soc, **over
    )
    return params, how


def _single_ion(ctx: StageContext, params: EISParameters, how: dict[str, Any]) -> EISParameters:
    """σ_SE of a solid-state image: eis.se_conductivity, cell.se_conductivity, ssb.conductivity."""
    cfg, cell = ctx.config.eis, ctx.config.cell
    if cfg.se_conductivity is not None:
        sigma, src = cfg.se_conductivity, "eis.se_conductivity"
    elif getattr(cell, "se_conductivity", None) is not None:
        sigma, src = cell.se_conductivity, "cell.se_conductivity (as the cell stage)"
    else:
        sigma, src = ctx.config.ssb.conductivity, "ssb.conductivity (as the ssb stage)"
    how["solid_electrolyte_conductivity"] = src
    return params.with_values(solid_electrolyte_conductivity_S_per_m=float(sigma))


def _run(ctx: StageContext) -> StageOutput:
    cfg = ctx.config.eis
    ms = ctx.microstructure()
    notes: list[str] = []
    params, how = _parameters(ctx)
    ssb = solid_state(ctx)
    if ssb:
        params = _single_ion(ctx, params, how)
    ctx.step("homogenised impedance (transmission line fed ε/τ, σ_eff and a_s)")
    if ssb:  # a dense separator slab or a cut network leaves the line without a path
        r = optional(
            notes,
            "homogenised impedance",
            lambda: homogenized_eis(ms, params, blocking=cfg.blocking),
        )
    else:
        r = homogenized_eis(ms, params, blocking=cfg.blocking)
    ax = ms.thickness_axis
    summary: dict[str, Any] = {
        "spectra": {"homogenized": _spectrum(r)} if r is not None else {},
        "ionic_conductor": "solid_electrolyte" if ssb else "liquid",
        "notes": notes,
        "parameters": params.to_dict(),
        "parameter_choice": how,
        "soc": cfg.soc if cfg.parameters == "cell" else None,
        "thickness_axis": ax,
        "thickness_m": float(ms.extent[ax]),
        "cell_thickness": ctx.config.cell.thickness,
    }
    arrays = _spectrum_arrays("homogenized", r) if r is not None else {}
    if cfg.resolved or ssb:
        crop = central(ms.shape, cfg.resolved_subvolume)
        sub = ms.crop(*crop)
        ctx.step(f"resolved impedance on the central {'x'.join(map(str, sub.shape))} voxels")
        r2 = optional(
            notes,
            "resolved impedance",
            lambda: resolved_eis(
                sub,
                params,
                blocking=cfg.blocking,
                progress=lambda _d, _t, m: ctx.step(f"resolved impedance: {m}"),
            ),
        )
        r3 = optional(
            notes,
            "homogenised impedance of the subvolume",
            lambda: homogenized_eis(sub, params, blocking=cfg.blocking),
        )
        for name, rr in (("resolved_subvolume", r2), ("homogenized_subvolume", r3)):
            if rr is not None:
                summary["spectra"][name] = _spectrum(rr)
                arrays.update(_spectrum_arrays(name, rr))
        summary["subvolume"] = [[sl.start, sl.stop] for sl in crop]
    if ssb and cfg.polycrystal:
        pc = _polycrystal(ctx, ms, params, notes)
        if pc is not None:
            summary["polycrystal"], pc_arrays = pc
            arrays.update(pc_arrays)
    return StageOutput(summary=summary, arrays=arrays)


def _polycrystal(
    ctx: StageContext, ms: Any, params: EISParameters, notes: list[str]
) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    """Bulk and GB arcs of the solid electrolyte's Voronoi polycrystal (central subvolume)."""
    from microbat.core.phases import PhaseRole
    from microbat.ssb.grains import EPSILON_0, polycrystal_impedance, voronoi_grains

    cfg, sc = ctx.config.eis, ctx.config.ssb
    d = float(cfg.grain_size if cfg.grain_size is not None else sc.grain_size)
    rgb = float(cfg.gb_resistance if cfg.gb_resistance is not None else sc.gb_resistance)
    if rgb <= 0:
        notes.append("polycrystal impedance skipped: the grain-boundary resistance is 0")
        return None
    if d < 2 * max(ms.voxel_size):
        notes.append(
            f"polycrystal impedance skipped: grain size {d:.3g} m is below two voxels "
            f"({2 * max(ms.voxel_size):.3g} m)"
        )
        return None
    ax = ms.thickness_axis
    crop = central(ms.shape, cfg.polycrystal_subvolume)
    sub = ms.crop(*crop)
    sigma = params.solid_electrolyte_conductivity_S_per_m
    eps_r, cgb = float(cfg.se_permittivity), float(cfg.gb_capacitance)
    f_b = sigma / (2 * np.pi * EPSILON_0 * eps_r)
    f_g = 1.0 / (2 * np.pi * rgb * cgb)
    lo, hi = np.log10(min(f_b, f_g) / 100), np.log10(max(f_b, f_g) * 100)
    freqs = np.logspace(lo, hi, max(9, round(5 * (hi - lo))) + 1)
    ctx.step(
        f"polycrystal impedance: Voronoi grains of {d:.3g} m in the electrolyte of the central "
        f"{'x'.join(map(str, sub.shape))} voxels, {freqs.size} frequencies"
    )

    def run() -> Any:
        gs = voronoi_grains(
            sub, mean_grain_size=d, phase=PhaseRole.SOLID_ELECTROLYTE.value, seed=sc.seed
        )
        return gs, polycrystal_impedance(
            gs, sigma_bulk=sigma, permittivity=eps_r, gb_resistance=rgb, gb_capacitance=cgb,
            frequencies=freqs, axis=ax,
        )  # fmt: skip

    out = optional(notes, "polycrystal impedance", run)
    if out is None:
        return None
    gs, pi = out
    area = float(np.prod([sub.extent[a] for a in range(3) if a != ax]))
    r_b, r_g = pi.resistance_bulk_ohm * area, pi.resistance_gb_ohm * area
    summary = {
        "subvolume": [[sl.start, sl.stop] for sl in crop],
        "grain_size_m": d,
        "n_grains": int(gs.n_grains),
        "se_conductivity_S_per_m": sigma,
        "se_permittivity": eps_r,
        "gb_resistance_ohm_m2": rgb,
        "gb_capacitance_F_per_m2": cgb,
        "area_m2": area,
        "r_bulk_ohm_m2": r_b,
        "r_gb_ohm_m2": r_g,
        # the brick layer applied to the measured bulk (network) resistance
        "r_gb_brick_layer_ohm_m2": r_b * sigma * rgb / d,
        "f_bulk_expected_Hz": pi.f_bulk_expected_Hz,
        "f_gb_expected_Hz": pi.f_gb_expected_Hz,
        "f_bulk_found_Hz": pi.f_bulk_peak_Hz,
        "f_gb_found_Hz": pi.f_gb_peak_Hz,
        "gb_arc_capacitance_F_per_m2": (
            pi.gb_capacitance_effective_F / area if pi.gb_capacitance_effective_F else None
        ),
        "n_frequencies": int(freqs.size),
    }
    z = np.asarray(pi.impedance_ohm) * area
    arrays = {
        "polycrystal_frequency_Hz": np.asarray(pi.frequencies_Hz, float),
        "polycrystal_z_real_ohm_m2": z.real.copy(),
        "polycrystal_z_imag_ohm_m2": z.imag.copy(),
    }
    return to_jsonable(summary), arrays


def _spectrum(r: Any) -> dict[str, Any]:
    zr = np.asarray(r.z_real_ohm) * r.area_m2
    return {
        "model": r.model,
        "area_m2": float(r.area_m2),
        "interface_area_m2": float(r.interface_area_m2),
        "n_frequencies": int(np.size(r.frequency_Hz)),
        "high_frequency_real_ohm_m2": float(zr[np.argmax(r.frequency_Hz)]),
        "low_frequency_real_ohm_m2": float(zr[np.argmin(r.frequency_Hz)]),
        "details": to_jsonable(r.details),
    }


def _spectrum_arrays(name: str, r: Any) -> dict[str, np.ndarray]:
    return {
        f"{name}_frequency_Hz": np.asarray(r.frequency_Hz, float),
        f"{name}_z_real_ohm_m2": np.asarray(r.z_real_ohm, float) * r.area_m2,
        f"{name}_z_imag_ohm_m2": np.asarray(r.z_imag_ohm, float) * r.area_m2,
    }


# ========================================================================= report
def _nyquist_figure(figs: Figures, arr: dict[str, np.ndarray], names: list[str]) -> str:
    fig = figs.new(6.4, 4.6, left=0.13, right=0.97, top=0.9, bottom=0.13)
    ax = fig.subplots()
    styles = {"homogenized": "-", "resolved_subvolume": "o-", "homogenized_subvolume": "--"}
    for name in names:
        f = arr.get(f"{name}_frequency_Hz")
        if f is None:
            continue
        zr = 1e4 * arr[f"{name}_z_real_ohm_m2"]
        zi = 1e4 * arr[f"{name}_z_imag_ohm_m2"]
        (line,) = ax.plot(
            zr, -zi, styles.get(name, "-"), ms=3, lw=1.4, label=name.replace("_", " ")
        )
        lg = np.log10(f)
        dec = np.isclose(lg, np.round(lg), atol=1e-6) & (np.round(lg) % 2 == 0) & (lg < 3.5)
        for fx, x, y in zip(f[dec], zr[dec], -zi[dec], strict=True):
            ax.plot(x, y, "s", color=line.get_color(), ms=4)
            ax.annotate(
                f"{fx:g} Hz", (x, y), fontsize=6.5, xytext=(3, 3), textcoords="offset points"
            )
    ax.set_xlabel("Re Z [Ω·cm²]")
    ax.set_ylabel("−Im Z [Ω·cm²]")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title("Nyquist", fontsize=9.5)
    ax.legend(fontsize=8, loc="upper left")
    return figs.png(fig)


def _consistency(eis: dict[str, Any]) -> str:
    """What the spectrum assumes, against the cell section."""
    choice = eis.get("parameter_choice") or {}
    par = eis.get("parameters") or {}
    if not choice:
        return ""
    text = f"<p>Parameters: {esc(choice.get('source'))}"
    if eis.get("soc") is not None:
        text += f" at a state of charge of {pct(eis['soc'])}"
    if choice.get("particle_radius"):
        text += (
            f"; particle radius {um(par.get('particle_radius_m'))}, "
            f"{esc(choice['particle_radius'])}"
        )
    text += (
        f". The ions cross the imaged thickness ({um(eis.get('thickness_m'))}, axis "
        f"{esc(eis.get('thickness_axis'))}) from the separator face to the current collector"
    )
    ct = eis.get("cell_thickness")
    if ct == "published":
        text += (
            "; the cell section keeps the parameter set's published thickness (cell.thickness "
            '= "published"), so the two sections describe electrodes of different thickness: '
            'set cell.thickness = "image" to align them'
        )
    elif ct == "image":
        text += ", the same thickness as the cell section"
    elif ct is not None:
        text += f"; the cell section uses a thickness of {um(ct)}"
    return text + ".</p>"


def _polycrystal_figure(figs: Figures, arr: dict[str, np.ndarray], pc: dict[str, Any]) -> str:
    fig = figs.new(6.4, 4.6, left=0.13, right=0.97, top=0.9, bottom=0.13)
    ax = fig.subplots()
    f = np.asarray(arr["polycrystal_frequency_Hz"])
    zr = 1e4 * np.asarray(arr["polycrystal_z_real_ohm_m2"])
    zi = -1e4 * np.asarray(arr["polycrystal_z_imag_ohm_m2"])
    ax.plot(zr, zi, "o-", ms=3, lw=1.4, label="Voronoi polycrystal")
    order = np.argsort(f)
    lf = np.log10(f[order])
    for key, mark, name in (("f_bulk", "v", "bulk"), ("f_gb", "^", "GB")):
        for kind in ("expected", "found"):
            fx = pc.get(f"{key}_{kind}_Hz")
            if not fx or not (f.min() <= fx <= f.max()):
                continue
            x = np.interp(np.log10(fx), lf, zr[order])
            y = np.interp(np.log10(fx), lf, zi[order])
            ax.plot(
                x, y, mark, ms=7, mec="C3", mfc="none" if kind == "expected" else "C3",
                label=f"{name} arc, {kind} ({fx:.3g} Hz)",
            )  # fmt: skip
    ax.set_xlabel("Re Z [Ω·cm²]")
    ax.set_ylabel("−Im Z [Ω·cm²]")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title("Solid electrolyte: bulk and grain-boundary arcs", fontsize=9.5)
    ax.legend(fontsize=7.5, loc="upper right")
    return figs.png(fig)


def _polycrystal_section(view: ReportView, pc: dict[str, Any]) -> str:
    body = img(
        _polycrystal_figure(view.figures, view.arrays("eis"), pc),
        "Nyquist plot of the polycrystal",
        "Area-specific impedance of the solid electrolyte of the central subvolume between "
        "two ideal contacts (bulk arc at high, grain-boundary arc at low frequency); open "
        "markers at the expected, filled at the found peak frequencies.",
    )

    def ratio(found: Any, expected: Any) -> str:
        return num(found / expected if found and expected else None, ".3f")

    body += table(
        ["arc", "R found", "R expected", "f expected", "f found", "f found/expected"],
        [
            (
                "bulk",
                num(1e4 * pc["r_bulk_ohm_m2"], ".4g", "Ω·cm²"),
                "–",
                num(pc["f_bulk_expected_Hz"], ".4g", "Hz"),
                num(pc.get("f_bulk_found_Hz"), ".4g", "Hz"),
                ratio(pc.get("f_bulk_found_Hz"), pc["f_bulk_expected_Hz"]),
            ),
            (
                "grain boundaries",
                num(1e4 * pc["r_gb_ohm_m2"], ".4g", "Ω·cm²"),
                num(1e4 * pc["r_gb_brick_layer_ohm_m2"], ".4g", "Ω·cm²"),
                num(pc["f_gb_expected_Hz"], ".4g", "Hz"),
                num(pc.get("f_gb_found_Hz"), ".4g", "Hz"),
                ratio(pc.get("f_gb_found_Hz"), pc["f_gb_expected_Hz"]),
            ),
        ],
    )
    body += (
        f"<p>{esc(pc['n_grains'])} Voronoi grains of {um(pc['grain_size_m'])} in the solid "
        "electrolyte of the central subvolume "
        + " × ".join(f"[{a}:{b}]" for a, b in pc["subvolume"])
        + f"; σ_SE = {num(pc['se_conductivity_S_per_m'], '.3g', 'S/m')}, ε_r = "
        f"{num(pc['se_permittivity'], '.3g')}, R_gb = "
        f"{num(pc['gb_resistance_ohm_m2'], '.3g', 'Ω·m²')}, C_gb = "
        f"{num(pc['gb_capacitance_F_per_m2'], '.3g', 'F/m²')}. Expected: f_bulk = "
        "σ_SE/(2π ε₀ ε_r), f_gb = 1/(2π R_gb C_gb); R_bulk is the DC solve of the grains "
        "without boundaries, the expected R_gb the brick layer applied to it "
        "(R_bulk σ_SE R_gb/d). A GB arc above 1/(2π R_gb C_gb) is the bulk shunting "
        "boundaries that are not in series (Fleig &amp; Maier 1999; +16 % measured on a "
        "Voronoi polycrystal, docs/validation/ssb.md).</p>"
    )
    return body


def _solid_state_note(eis: dict[str, Any]) -> str:
    par = eis.get("parameters") or {}
    src = (eis.get("parameter_choice") or {}).get("solid_electrolyte_conductivity")
    return (
        "<p>Solid-state electrode: the ionic conductor is the solid electrolyte, a single-ion "
        "conductor (t₊ = 1, no concentration impedance) of conductivity "
        f"{num(par.get('solid_electrolyte_conductivity_S_per_m'), '.3g', 'S/m')} ({esc(src)}); "
        "charge transfer, double layer and solid diffusion act on the active | "
        "solid-electrolyte contact faces only.</p>"
    )


def _report(view: ReportView) -> list[ReportSection]:
    eis = view.summary("eis")
    if eis.get("spectra") or eis.get("polycrystal"):
        body = ""
        if eis.get("ionic_conductor") == "solid_electrolyte":
            body += _solid_state_note(eis)
        if eis.get("spectra"):
            body += img(
                _nyquist_figure(view.figures, view.arrays("eis"), list(eis["spectra"])),
                "Nyquist plot",
                "Area-specific impedance of the electrode (current collector to separator "
                "face), −Im Z against Re Z; markers at each decade of frequency.",
            )
            body += table(
                ["spectrum", "model", "Re Z at the highest f", "Re Z at the lowest f"],
                [
                    (
                        esc(name.replace("_", " ")),
                        esc(sp.get("model")),
                        num(1e4 * sp["high_frequency_real_ohm_m2"], ".4g", "Ω·cm²"),
                        num(1e4 * sp["low_frequency_real_ohm_m2"], ".4g", "Ω·cm²"),
                    )
                    for name, sp in eis["spectra"].items()
                ],
            )
            body += _consistency(eis)
            if eis.get("subvolume"):
                body += (
                    "<p>Resolved model on the central subvolume "
                    + " × ".join(f"[{a}:{b}]" for a, b in eis["subvolume"])
                    + ", with the homogenised model of the same subvolume beside it.</p>"
                )
        if eis.get("polycrystal"):
            body += _polycrystal_section(view, eis["polycrystal"])
        body += notes_list(eis.get("notes") or [])
    else:
        r = view.records["eis"]
        why = f"{esc(r.status.replace('_', ' '))}" + (f" — {esc(r.reason)}" if r.reason else "")
        body = (
            f'<div class="absent" id="eis-absent"><b>Absent:</b> no impedance spectrum '
            f"({why}), so no Nyquist plot is shown.</div>"
        )
    return [ReportSection("eis", "Impedance (EIS)", body)]


STAGE = Stage(
    "eis",
    "Impedance (EIS)",
    ("input", "segment", "metrics"),
    ("eis", "cell"),
    _run,
    active=_active,
    n_steps=3,
    settings=(("eis", EISSettings),),
    report=_report,
)
