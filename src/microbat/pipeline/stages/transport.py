"""Twin stage ``transport``: tortuosity factors, tensor, random walk and Bruggeman.

Steady diffusion in the pore phase along each axis (:func:`microbat.transport.tortuosity`),
optionally the full tensor by periodic homogenisation
(:func:`microbat.transport.tortuosity_tensor`), the solid network's tortuosity along
the thickness, and a random-walk cross-check (:func:`microbat.transport.random_walk`),
each compared with Bruggeman's ``τ = ε^(1−α)``. Report section: "Transport".
Diagnosis: ε/τ when no cell model names the bottleneck (priority 20); Bruggeman's
error and anisotropy as findings.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import Field

from microbat.core.results import to_jsonable
from microbat.pipeline.base import (
    Finding,
    Stage,
    StageContext,
    StageOutput,
    StageSettings,
    Verdict,
    bruggeman,
    finite_or_none,
    optional,
    thickness_plane,
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
)
from microbat.pipeline.stages.ssb import ion_phase
from microbat.transport.diffusion import tortuosity
from microbat.transport.randomwalk import random_walk
from microbat.transport.tensor import tortuosity_tensor

__all__ = ["STAGE", "TransportSettings"]


class TransportSettings(StageSettings):
    """Tortuosity, random walk and the Bruggeman comparison (``microbat.transport``)."""

    enabled: bool = Field(True, description="Run the transport stage.")
    phase: str = Field(
        "electrolyte", description="Phase (name or role) whose tortuosity is computed."
    )
    tensor: bool = Field(True, description="Also the off-diagonal terms of the tensor.")
    solid: bool = Field(
        True, description="Also the solid-phase tortuosity along the thickness (cell model)."
    )
    boundary: Literal["face", "layer"] = Field(
        "face",
        description="Where the concentrations are held: outer faces (L = n h, TauFactor) or "
        "first/last voxel layers (L = (n - 1) h, PoreSpy).",
    )
    random_walk: bool = Field(True, description="Random-walk cross-check of the diffusion solve.")
    random_walk_walkers: int = Field(2_000, ge=100, description="Number of random walkers.")
    random_walk_steps: int | None = Field(
        None,
        ge=100,
        description="Steps per walker (half a voxel each). Default: 48 L^2 for the largest "
        "extent L in voxels, so that the free-space displacement is twice the volume and "
        "the long-time plateau is reached.",
    )
    random_walk_seed: int = Field(0, description="Seed of the random walk.")
    bruggeman_exponent: float = Field(
        1.5, gt=0, description="Bruggeman alpha in tau = eps^(1 - alpha) for the comparison."
    )


def _active(ctx: StageContext) -> str | None:
    if not ctx.config.transport.enabled:
        return "the transport stage is switched off (transport.enabled = false)"
    return None


def _run(ctx: StageContext) -> StageOutput:
    cfg = ctx.config.transport
    ms = ctx.microstructure()
    ax_t = ms.thickness_axis
    phase = ion_phase(ctx, cfg.phase)
    if phase != cfg.phase:
        cfg = cfg.model_copy(update={"phase": phase})
    summary: dict[str, Any] = {"phase": cfg.phase, "thickness_axis": ax_t}
    if "analysis_crop" in ms.metadata:
        summary["analysis_crop"] = ms.metadata["analysis_crop"]
    arrays: dict[str, np.ndarray] = {}
    notes: list[str] = []

    ctx.step(f"steady diffusion in the {cfg.phase} phase along each axis")
    res = tortuosity(ms, phase=cfg.phase, axis="all", boundary=cfg.boundary)
    summary["tortuosity"] = to_jsonable(res.to_dict())
    eps = float(res.porosity)
    tau_b = bruggeman(eps, cfg.bruggeman_exponent)
    rows = []
    for k in range(ms.ndim):
        t = res.tau[k]
        if t is None:
            continue
        t = float(t)
        rows.append(
            {
                "axis": k,
                "tau": finite_or_none(t),
                "deff_over_d0": finite_or_none(res.deff_over_d0[k]),
                "macmullin": finite_or_none(res.macmullin[k]),
                "percolating": bool(res.percolating[k]),
                "porosity_percolating": finite_or_none(res.porosity_percolating[k]),
                "tau_bruggeman": tau_b,
                "bruggeman_relative_error": (tau_b - t) / t if math.isfinite(t) else None,
            }
        )
    summary["table"] = rows
    summary["porosity"] = eps
    summary["boundary"] = res.boundary
    summary["bruggeman_exponent"] = cfg.bruggeman_exponent
    summary["tau_bruggeman"] = tau_b
    t_thick = res.tau[ax_t]
    summary["tau_thickness"] = finite_or_none(t_thick)
    summary["percolating_thickness"] = bool(res.percolating[ax_t])
    conc = res.concentration[ax_t] if res.concentration else None
    if conc is not None and ms.ndim == 3:
        arrays["concentration_thickness"] = thickness_plane(conc, ax_t)

    if cfg.tensor:
        ctx.step("tortuosity tensor (periodic homogenisation, off-diagonal terms)")
        tr = optional(
            notes,
            "tortuosity tensor",
            lambda: tortuosity_tensor(  # reuses the directional solves above
                ms, phase=cfg.phase, method="periodic", boundary=cfg.boundary, diagonal=res
            ),
        )
        if tr is not None:
            summary["tensor"] = {
                "method": tr.method,
                "tau": to_jsonable(np.asarray(tr.tau)),
                "deff_over_d0": to_jsonable(np.asarray(tr.deff_over_d0)),
                "principal_tau": to_jsonable(np.asarray(tr.principal_tau)),
                "principal_directions": to_jsonable(np.asarray(tr.principal_directions)),
                "asymmetry": float(tr.asymmetry),
                "numerical_error": float(tr.numerical_error),
            }

    if cfg.solid:
        solid = ",".join(
            p.name
            for p in ms.phases.values()
            if p not in ms.phases.resolve(cfg.phase)
            # a solid-state image's voids conduct nothing
            and not (phase == "solid_electrolyte" and p.role == "gas")
        )
        if solid:
            ctx.step(f"steady conduction in the solid ({solid}) along the thickness")
            rs = optional(
                notes,
                "solid tortuosity",
                lambda: tortuosity(
                    ms, phase=solid, axis=ax_t, boundary=cfg.boundary, keep_field=False
                ),
            )
            if rs is not None:
                summary["solid"] = {
                    "phases": solid,
                    "tau_thickness": finite_or_none(rs.tau[ax_t]),
                    "percolating": bool(rs.percolating[ax_t]),
                    "volume_fraction": float(rs.porosity),
                }

    if cfg.random_walk:
        n_steps = cfg.random_walk_steps or _auto_steps(ms.shape)
        ctx.step(f"random-walk cross-check ({cfg.random_walk_walkers} walkers x {n_steps} steps)")
        r = optional(
            notes,
            "random walk",
            lambda: random_walk(
                ms,
                phase=cfg.phase,
                n_walkers=cfg.random_walk_walkers,
                n_steps=n_steps,
                seed=cfg.random_walk_seed,
            ),
        )
        if r is not None:
            summary["random_walk"] = _rw_summary(r, res)
            arrays["rw_time_s"] = np.asarray(r.time, float)
            arrays["rw_msd_m2"] = np.asarray(r.msd, float)
    summary["notes"] = notes
    return StageOutput(summary=summary, arrays=arrays)


def _auto_steps(shape: Sequence[int]) -> int:
    """Steps of half a voxel whose free-space RMS displacement per axis is 2 L.

    ``MSD_axis = n ℓ² / 3`` with ``ℓ = 0.5`` voxel, so ``sqrt(n / 12) = 2 L`` gives
    ``n = 48 L²``. Shorter walks are still in the transient regime on electrode-like
    volumes (τ read 10-40 % low on a 64³ phantom at 10⁴ steps); at this length the
    random walk and the diffusion solve agree within the 95 % interval there.
    """
    return int(48 * max(shape) ** 2)


def _rw_summary(r: Any, diffusion: Any) -> dict[str, Any]:
    """Random-walk τ per axis against the diffusion solve, with the 95 % interval."""
    rows = []
    for k, t in enumerate(r.tau):
        lo, hi = r.ci95[k]
        ref = diffusion.tau[k] if k < len(diffusion.tau) else None
        ref = None if ref is None else float(ref)
        inside = None
        if ref is not None and math.isfinite(ref) and math.isfinite(float(t)):
            inside = bool(lo <= ref <= hi)
        rows.append(
            {
                "axis": k,
                "tau": finite_or_none(t),
                "ci95": [finite_or_none(lo), finite_or_none(hi)],
                "tau_diffusion": finite_or_none(ref),
                "relative_difference": (
                    (float(t) - ref) / ref
                    if ref is not None and math.isfinite(ref) and math.isfinite(float(t))
                    else None
                ),
                "diffusion_inside_ci95": inside,
                "plateau_reached": bool(r.plateau_reached_axes[k]),
            }
        )
    return {
        "table": rows,
        "n_walkers": int(r.n_walkers),
        "n_steps": int(r.n_steps),
        "plateau_reached": bool(r.plateau_reached),
        "walker_steps_per_s_per_core": float(r.walker_steps_per_s_per_core),
        "seed": int(r.seed),
        "boundary": r.boundary,
    }


# ========================================================================= report
def _field_figure(figs: Figures, field: np.ndarray) -> str:
    fig = figs.new(5.0, 4.6, left=0.12, right=0.86, top=0.9, bottom=0.1)
    ax = fig.subplots()
    cmap = __import__("matplotlib").colormaps["viridis"].with_extremes(bad="#ffffff")
    im = ax.imshow(np.ma.masked_invalid(field), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax.set_xlabel("in-plane position [voxels]")
    ax.set_ylabel("thickness axis [voxels] (current collector at 0)")
    ax.set_title("concentration, through-thickness solve", fontsize=9.5)
    fig.colorbar(im, ax=ax, shrink=0.85, label="c / c_in")
    return figs.png(fig)


def _tensor_html(ten: Mapping[str, Any]) -> str:
    body = (
        "<h3>Tortuosity tensor</h3><p>Periodic homogenisation (flux in every "
        "direction for each applied gradient); entries below the numerical error "
        f"({num(100 * (ten.get('numerical_error') or 0), '.2g')} % of the largest) are "
        "zero within error.</p>"
    )
    body += table(
        ["τ", "axis 0", "axis 1", "axis 2"],
        [(f"axis {i}", *(num(v, ".4f") for v in row)) for i, row in enumerate(ten["tau"])],
    )
    pt = ten.get("principal_tau") or []
    pdirs = ten.get("principal_directions") or []
    if pt:
        body += table(
            ["principal τ", "direction (axis 0, 1, 2)"],
            [
                (
                    num(t, ".4f"),
                    ", ".join(num(pdirs[k][j], ".3f") for k in range(len(pdirs))) if pdirs else "–",
                )
                for j, t in enumerate(pt)
            ],
        )
    return body


def _random_walk_html(rw: Mapping[str, Any]) -> str:
    body = (
        f"<h3>Random-walk cross-check</h3><p>{rw['n_walkers']} walkers × "
        f"{rw['n_steps']} steps (seed {rw['seed']}, {rw['boundary']} images), "
        f"{rw['walker_steps_per_s_per_core'] / 1e6:.0f} M walker-steps/s per core; "
        f"plateau reached on every axis: {num(rw['plateau_reached'])}"
        + (
            ""
            if rw["plateau_reached"]
            else " — without the long-time plateau the walk's τ is not yet the tortuosity "
            "factor, so agreement is not tested on those axes"
        )
        + ".</p>"
    )
    body += table(
        [
            "direction",
            "τ random walk",
            "95 % interval",
            "τ diffusion",
            "difference",
            "agrees",
        ],
        [
            (
                f"axis {r['axis']}",
                num(r.get("tau"), ".4f"),
                f"{num(r['ci95'][0], '.4f')} – {num(r['ci95'][1], '.4f')}",
                num(r.get("tau_diffusion"), ".4f"),
                pct(r.get("relative_difference")),
                num(r.get("diffusion_inside_ci95"))
                if r.get("plateau_reached")
                else "not tested (no plateau)",
            )
            for r in rw.get("table", [])
        ],
    )
    return body


def _report(view: ReportView) -> list[ReportSection]:
    tra = view.summary("transport")
    if not tra:
        return [ReportSection("transport", "Transport", view.status_line("transport"))]
    rows_t = []
    for r in tra.get("table") or []:
        rows_t.append(
            (
                f"axis {r['axis']}"
                + (" (thickness)" if r["axis"] == tra.get("thickness_axis") else ""),
                num(r.get("tau"), ".4f") if r.get("percolating") else "∞ (not percolating)",
                num(r.get("deff_over_d0"), ".4f"),
                num(r.get("tau_bruggeman"), ".4f"),
                pct(r.get("bruggeman_relative_error")),
            )
        )
    body = (
        f"<p>Phase: <b>{esc(tra.get('phase'))}</b>, "
        f"porosity ε = {num(tra.get('porosity'), '.4f')}. "
        f"Tortuosity factor τ = ε D₀ / D_eff (TauFactor convention); Bruggeman "
        f"τ = ε^(1−α) with α = {num(tra.get('bruggeman_exponent'))}.</p>"
    )
    body += table(
        ["direction", "τ (image)", "D_eff / D₀", "τ Bruggeman", "Bruggeman error"], rows_t
    )
    ten = tra.get("tensor")
    if ten and isinstance(ten.get("tau"), list):
        body += _tensor_html(ten)
    sol = tra.get("solid")
    if sol:
        body += (
            f"<p>Solid network ({esc(sol.get('phases'))}): τ through the thickness = "
            f"{num(sol.get('tau_thickness'), '.4f')}.</p>"
        )
    rw = tra.get("random_walk")
    if rw:
        body += _random_walk_html(rw)
    a_tr = view.arrays("transport")
    if "concentration_thickness" in a_tr:
        body += img(
            _field_figure(view.figures, a_tr["concentration_thickness"]),
            "concentration field of the through-thickness diffusion solve",
            "Steady concentration (1 at the current-collector side, 0 at the separator "
            "side) on a mid-plane containing the thickness axis; blank: no flux "
            "(solid, or pores not connected to both sides).",
        )
    body += notes_list(tra.get("notes") or [])
    return [ReportSection("transport", "Transport", body)]


# ====================================================================== diagnosis
def _diagnose(results: Mapping[str, Any]) -> Iterator[Verdict | Finding]:
    tra = results.get("transport") or {}
    eps = tra.get("porosity")
    tau = tra.get("tau_thickness")
    tau_b = tra.get("tau_bruggeman")
    ax = tra.get("thickness_axis", 0)
    eff = eps / tau if eps and tau else None
    if eff is not None:
        yield Verdict(
            20,
            "ionic_transport",
            f"Ionic transport efficiency ε/τ = {eff:.3f} through the thickness "
            f"(porosity {eps:.3f}, tortuosity factor {tau:.2f}); no cell simulation "
            "was run to say whether it limits the rate",
        )
    if tau is not None and tau_b is not None and tau > 0:
        err = (tau_b - tau) / tau
        yield Finding(
            10,
            f"Bruggeman (ε^{1 - float(tra.get('bruggeman_exponent', 1.5)):.1f}) gives τ = "
            f"{tau_b:.2f} through the thickness where the image gives {tau:.2f}: "
            f"{'an under' if err < 0 else 'an over'}estimate by {abs(100 * err):.0f} %.",
        )
    rows = tra.get("table") or []
    finite = [r["tau"] for r in rows if r.get("tau") is not None]
    if len(finite) >= 2 and min(finite) > 0 and max(finite) / min(finite) > 1.15:
        finding = _anisotropy(rows, ax, results.get("representative") or {})
        if finding:
            yield Finding(20, finding)


def _anisotropy(rows: list[dict[str, Any]], ax: int, rep: Mapping[str, Any]) -> str | None:
    """The anisotropy finding, claimed only beyond the sample-to-sample spread.

    With the representative-volume check, the pores are called anisotropic only when
    the 95 % intervals of τ along the highest and the lowest axis do not overlap;
    otherwise the difference is reported as within the spread. Without it, the
    finding says that it was not checked.
    """
    have = [r for r in rows if r.get("tau") is not None]
    hi = max(have, key=lambda r: r["tau"])
    lo = min(have, key=lambda r: r["tau"])
    span = f"τ ranges from {lo['tau']:.2f} to {hi['tau']:.2f} across the axes"
    where = f"highest along axis {hi['axis']}"
    if hi["axis"] == ax:
        where += ", the thickness axis"
    intervals = rep.get("tau_interval") or {}
    iv_hi = intervals.get(str(hi["axis"]))
    iv_lo = intervals.get(str(lo["axis"]))
    if not rep or iv_hi is None or iv_lo is None:
        return (
            f"The pores look anisotropic: {span} ({where}); not checked against the "
            "sample-to-sample spread (no representative-volume check)."
        )
    upper_lo = math.inf if iv_lo[1] is None else float(iv_lo[1])
    if float(iv_hi[0]) > upper_lo:
        return f"The pores are anisotropic: {span} ({where}), beyond the sub-volume spread."
    return (
        f"The tortuosity factor ranges from {lo['tau']:.2f} to {hi['tau']:.2f} across the "
        "axes, but the 95 % intervals of the highest and the lowest overlap (sub-volume "
        "spread): this sample cannot tell whether the pores are anisotropic."
    )


def _headline(results: Mapping[str, Any]) -> dict[str, Any]:
    tra = results.get("transport") or {}
    return {
        "porosity": tra.get("porosity"),
        "tau": [r.get("tau") for r in tra.get("table") or []] or None,
        "tau_bruggeman": tra.get("tau_bruggeman"),
        "tau_solid_thickness": (tra.get("solid") or {}).get("tau_thickness"),
    }


STAGE = Stage(
    "transport",
    "Transport (tortuosity, random walk, Bruggeman)",
    ("input", "segment"),
    ("transport",),
    _run,
    active=_active,
    n_steps=4,
    settings=(("transport", TransportSettings),),
    report=_report,
    diagnose=_diagnose,
    headline=_headline,
)
