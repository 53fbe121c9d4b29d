"""Twin stage ``eis``: impedance of the electrode, homogenised and resolved.

The homogenised transmission line fed the measured ε/τ, σ_eff and a_s
(:func:`microbat.cell.eis.homogenized_eis`) on the whole image and, optionally, the
resolved small-signal model (:func:`microbat.cell.eis.resolved_eis`) on the
central subvolume with the homogenised model of the same subvolume beside it.
Report section: "Impedance (EIS)" with the Nyquist plot.
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
from microbat.pipeline.stages.ssb import liquid_only, solid_state

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

    @field_validator("resolved_subvolume")
    @classmethod
    def _sub(cls, v: list[int]) -> list[int]:
        if len(v) not in (1, 3) or any(n < 4 for n in v):
            raise ValueError(f"resolved_subvolume must be one or three sizes >= 4, got {v}")
        return v * 3 if len(v) == 1 else v


def _active(ctx: StageContext) -> str | None:
    if not ctx.config.eis.enabled:
        return "the impedance stage is switched off (eis.enabled = false)"
    if solid_state(ctx):
        return liquid_only("the impedance model")
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


def _run(ctx: StageContext) -> StageOutput:
    cfg = ctx.config.eis
    ms = ctx.microstructure()
    notes: list[str] = []
    params, how = _parameters(ctx)
    ctx.step("homogenised impedance (transmission line fed ε/τ, σ_eff and a_s)")
    r = homogenized_eis(ms, params, blocking=cfg.blocking)
    ax = ms.thickness_axis
    summary: dict[str, Any] = {
        "spectra": {"homogenized": _spectrum(r)},
        "notes": notes,
        "parameters": params.to_dict(),
        "parameter_choice": how,
        "soc": cfg.soc if cfg.parameters == "cell" else None,
        "thickness_axis": ax,
        "thickness_m": float(ms.extent[ax]),
        "cell_thickness": ctx.config.cell.thickness,
    }
    arrays = _spectrum_arrays("homogenized", r)
    if cfg.resolved:
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
    return StageOutput(summary=summary, arrays=arrays)


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


def _report(view: ReportView) -> list[ReportSection]:
    eis = view.summary("eis")
    if eis.get("spectra"):
        body = img(
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
    n_steps=2,
    settings=(("eis", EISSettings),),
    report=_report,
)
