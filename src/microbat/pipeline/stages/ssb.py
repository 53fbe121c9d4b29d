"""Twin stage ``ssb``: solid-state electrodes (solid-electrolyte network, TPB, GBs, Li interface).

Active only when the phase table holds a ``solid_electrolyte`` phase. Runs, with
:mod:`microbat.ssb` and :mod:`microbat.transport`:

1. the ionic conductivity and tortuosity of the solid-electrolyte network through
   the thickness (:func:`microbat.transport.conductivity`);
2. the triple-phase boundary and the active-material / electrolyte contact area,
   active and inactive (:func:`microbat.ssb.triple_phase_boundary`);
3. a Voronoi polycrystal inside the electrolyte and its grain-boundary resistance
   against the brick layer (:mod:`microbat.ssb.grains`);
4. the lithium-metal interface with contact loss on a generated electrolyte slab
   (focusing, critical current, constriction; :mod:`microbat.ssb.interface`).

Report section: "Solid-state electrolyte". Diagnosis: a blocked electrolyte
network or a mostly inactive contact is a verdict (priority 2); otherwise the
solid-state transport summary (priority 18); inactive TPB, grain boundaries and
current focusing are findings.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

import numpy as np
from pydantic import Field

from microbat.core.phases import PhaseRole
from microbat.core.results import to_jsonable
from microbat.pipeline.base import (
    Finding,
    Stage,
    StageContext,
    StageOutput,
    StageSettings,
    Verdict,
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

__all__ = ["STAGE", "SsbSettings"]


class SsbSettings(StageSettings):
    """Solid-state electrodes (``microbat.ssb``): network, TPB, grain boundaries, Li interface."""

    enabled: bool = Field(
        True, description="Run the solid-state stage (when a solid_electrolyte phase exists)."
    )
    conductivity: float = Field(
        0.05,
        gt=0,
        description="Ionic conductivity of the solid electrolyte (grains; 0.5 mS/cm, LLZO); "
        "also the cell and eis stages' unless they set their own.",
        json_schema_extra={"unit": "S/m"},
    )
    tpb_phases: list[str] = Field(
        ["active", "solid_electrolyte", "carbon_binder"],
        description="The three phases of the triple-phase boundary (names or roles); the "
        "TPB is skipped when one is absent (the contact area is still measured).",
    )
    network: Literal["conductor", "phase"] = Field(
        "conductor",
        description="Connectivity of a TPB phase to its reservoir through every phase of its "
        "conduction class, or through the phase alone.",
    )
    grains: bool = Field(True, description="Voronoi grains in the electrolyte and their GBs.")
    grain_size: float = Field(
        1e-6,
        gt=0,
        description="Mean grain size of the polycrystal (skipped below two voxels).",
        json_schema_extra={"unit": "m"},
    )
    gb_resistance: float = Field(
        1e-5,
        ge=0,
        description="Specific grain-boundary resistance.",
        json_schema_extra={"unit": "Ohm m^2"},
    )
    interface: bool = Field(
        True, description="Lithium-metal interface with contact loss on a generated slab."
    )
    contact_fraction: float = Field(
        0.8, gt=0, le=1, description="Contact left at the lithium interface of the slab."
    )
    current_density: float = Field(
        5.0, gt=0, description="Applied current density.", json_schema_extra={"unit": "A/m^2"}
    )
    critical_current_density: float = Field(
        10.0,
        gt=0,
        description="Local current density above which filaments nucleate (1 mA/cm2).",
        json_schema_extra={"unit": "A/m^2"},
    )
    exchange_current: float = Field(
        100.0,
        gt=0,
        description="Exchange current density of the lithium contact.",
        json_schema_extra={"unit": "A/m^2"},
    )
    shear_modulus: float = Field(
        59.6e9,
        gt=0,
        description="Shear modulus of the electrolyte (Monroe-Newman; cubic LLZO).",
        json_schema_extra={"unit": "Pa"},
    )
    slab_shape: list[int] = Field(
        [20, 64, 64],
        description="Voxels of the generated slab (thickness first); voxel 0.25 um.",
        json_schema_extra={"unit": "voxels"},
    )
    seed: int = Field(0, description="Seed of the grains and of the slab's voids.")


def _se_names(ms: Any) -> list[str]:
    return [p.name for p in ms.phases.with_role(PhaseRole.SOLID_ELECTROLYTE)]


def solid_state(ctx: StageContext) -> bool:
    """Whether the run's phase table holds a solid electrolyte (a solid-state electrode)."""
    rows = ctx.summary("segment").get("phases") or ctx.summary("input").get("phases")
    if rows is None:
        roles = {p.role.value for p in ctx.microstructure().phases.values()}
    else:
        roles = {p.get("role") for p in rows}
    return PhaseRole.SOLID_ELECTROLYTE.value in roles


def ion_phase(ctx: StageContext, phase: str) -> str:
    """The ion conductor a transport analysis measures.

    ``phase`` itself, except that the default ``"electrolyte"`` reads
    ``"solid_electrolyte"`` on a solid-state image without a liquid electrolyte phase.
    """
    if phase == PhaseRole.ELECTROLYTE.value and solid_state(ctx):
        if not ctx.microstructure().phases_with_role(PhaseRole.ELECTROLYTE.value):
            return PhaseRole.SOLID_ELECTROLYTE.value
    return phase


def liquid_only(what: str) -> str:
    """One-line reason a liquid-electrolyte stage gives for a solid-state image."""
    return (
        f"a solid-state image (solid_electrolyte phase): {what} assumes a liquid "
        "electrolyte; `microbat simulate` resolves the solid-state electrode"
    )


def _active(ctx: StageContext) -> str | None:
    if not ctx.config.ssb.enabled:
        return "the solid-state stage is switched off (ssb.enabled = false)"
    if not solid_state(ctx):
        return "no solid_electrolyte phase in the phase table (not a solid-state electrode)"
    return None


def _run(ctx: StageContext) -> StageOutput:
    from microbat.ssb.grains import polycrystal_conductivity, voronoi_grains
    from microbat.ssb.interface import contact_loss_slab, interface_current
    from microbat.ssb.tpb import contact_area, triple_phase_boundary
    from microbat.transport.conduction import conductivity

    cfg = ctx.config.ssb
    ms = ctx.microstructure()
    ax = ms.thickness_axis
    se = _se_names(ms)
    summary: dict[str, Any] = {"electrolyte_phases": se, "thickness_axis": ax}
    arrays: dict[str, np.ndarray] = {}
    notes: list[str] = []

    ctx.step("ionic conduction in the solid-electrolyte network through the thickness")
    net = optional(
        notes,
        "solid-electrolyte conductivity",
        lambda: conductivity(
            ms, conductivities=dict.fromkeys(se, cfg.conductivity), axis=ax, keep_field=False
        ),
    )
    if net is not None:
        sig = float(net.sigma_eff[ax] or 0.0)
        summary["network"] = {
            "sigma_S_per_m": cfg.conductivity,
            "sigma_eff_S_per_m": sig,
            "relative": sig / cfg.conductivity,
            "volume_fraction": float(net.volume_fraction),
            "tau": finite_or_none(net.tau[ax]),
            "percolating": bool(net.percolating[ax]),
        }

    ctx.step("triple-phase boundary and active-material / electrolyte contact")
    present = {k for k, v in ms.counts().items() if v}

    def have(item: str) -> bool:
        try:
            return any(p.name in present for p in ms.phases.resolve(item))
        except Exception:
            return False

    if all(have(i) for i in cfg.tpb_phases):
        tpb = optional(
            notes,
            "triple-phase boundary",
            lambda: triple_phase_boundary(ms, list(cfg.tpb_phases), network=cfg.network),
        )
        if tpb is not None:
            d = tpb.to_dict()
            d.pop("active_map", None)
            summary["tpb"] = to_jsonable(d)
            if tpb.active_map is not None and ms.ndim == 3:
                arrays["active_tpb_map"] = thickness_plane(tpb.active_map, ax)
                arrays["labels_mid"] = thickness_plane(ms.labels.astype(np.float32), ax)
            if tpb.contact is not None:
                summary["contact"] = to_jsonable(tpb.contact.to_dict())
    else:
        missing = [i for i in cfg.tpb_phases if not have(i)]
        notes.append(f"no triple-phase boundary: {', '.join(missing)} absent from the image")
    if "contact" not in summary and have("active"):
        c = optional(
            notes,
            "contact area",
            lambda: contact_area(ms, ("active", "solid_electrolyte"), network=cfg.network),
        )
        if c is not None:
            summary["contact"] = to_jsonable(c.to_dict())

    if cfg.grains:
        if cfg.grain_size < 2 * max(ms.voxel_size):
            notes.append(
                f"grain boundaries skipped: grain size {cfg.grain_size:.3g} m is below two "
                f"voxels ({2 * max(ms.voxel_size):.3g} m)"
            )
        else:
            ctx.step(f"Voronoi grains of {cfg.grain_size:.3g} m in the electrolyte")

            def gb() -> Any:
                gs = voronoi_grains(
                    ms, mean_grain_size=cfg.grain_size, phase="solid_electrolyte", seed=cfg.seed
                )
                return gs, polycrystal_conductivity(
                    gs, sigma_bulk=cfg.conductivity, gb_resistance=cfg.gb_resistance, axis=ax
                )

            out = optional(notes, "grain boundaries", gb)
            if out is not None:
                gs, pc = out
                summary["grains"] = {
                    "n_grains": gs.n_grains,
                    "mean_grain_size_m": gs.mean_grain_size_m,
                    "gb_area_per_volume": gs.gb_area_per_volume,
                    **{k: v for k, v in to_jsonable(pc.to_dict()).items() if k != "provenance"},
                }

    if cfg.interface:
        ctx.step(f"lithium interface at {100 * cfg.contact_fraction:.0f} % contact")

        def li() -> Any:
            slab = contact_loss_slab(
                tuple(cfg.slab_shape), voxel_size=0.25e-6,
                contact_fraction=cfg.contact_fraction, seed=cfg.seed,
            )  # fmt: skip
            return interface_current(
                slab, current_density=cfg.current_density, conductivity=cfg.conductivity,
                exchange_current=cfg.exchange_current,
                critical_current_density=cfg.critical_current_density,
                shear_modulus_electrolyte=cfg.shear_modulus,
            )  # fmt: skip

        r = optional(notes, "lithium interface", li)
        if r is not None:
            d = r.to_dict()
            for k in ("current_density_A_per_m2", "focusing", "hot_spots", "provenance"):
                d.pop(k, None)
            summary["interface"] = to_jsonable(d)
            arrays["focusing"] = np.asarray(r.focusing, np.float32)
    summary["notes"] = notes
    return StageOutput(summary=summary, arrays=arrays)


# ========================================================================= report
def _maps_figure(figs: Figures, arrays: Mapping[str, np.ndarray]) -> str | None:
    panels = [k for k in ("active_tpb_map", "focusing") if k in arrays]
    if not panels:
        return None
    fig = figs.new(4.6 * len(panels), 4.2, left=0.1, right=0.92, top=0.9, bottom=0.12, wspace=0.4)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for axis, key in zip(axes, panels, strict=True):
        a = arrays[key]
        if key == "active_tpb_map":
            if "labels_mid" in arrays:
                axis.imshow(arrays["labels_mid"], cmap="Greys", alpha=0.35, interpolation="nearest")
            m = np.ma.masked_where(a <= 0, a * 1e6)
            im = axis.imshow(m, cmap="inferno", interpolation="nearest")
            axis.set_title("active TPB (mid-plane)", fontsize=9.5)
            axis.set_ylabel("thickness [voxels] (collector at 0)")
            fig.colorbar(im, ax=axis, shrink=0.8, label="TPB length per voxel [µm]")
        else:
            im = axis.imshow(a, cmap="magma", interpolation="nearest")
            axis.set_title("Li interface: j / J (hot spots bright)", fontsize=9.5)
            fig.colorbar(im, ax=axis, shrink=0.8, label="focusing factor")
        axis.set_xlabel("in-plane [voxels]")
    return figs.png(fig)


# The report's table: (where in the summary, row label, the row's value in words);
# a row shows when its part of the summary is there.
_ROWS: tuple[tuple[tuple[str, ...], str, Callable[[dict[str, Any]], str]], ...] = (
    (
        ("network",),
        "electrolyte network σ_eff (thickness)",
        lambda d: (
            f"{num(d.get('sigma_eff_S_per_m'), '.4g', 'S/m')} "
            f"({pct(d.get('relative'))} of σ; τ = {num(d.get('tau'), '.3f')})"
        ),
    ),
    (
        ("tpb",),
        "TPB density (corrected)",
        lambda d: (
            f"{num(d.get('density_m_per_m3'), '.4g', 'm/m³')}, active "
            f"{pct(d.get('active_fraction'))} (factor {num(d.get('correction_factor'), '.3f')})"
        ),
    ),
    (
        ("contact",),
        "active / electrolyte contact",
        lambda d: (
            f"{num(d.get('specific_area_per_m'), '.4g', '1/m')}, active "
            f"{pct(d.get('active_fraction'))}"
        ),
    ),
    (
        ("grains",),
        "polycrystal σ_eff",
        lambda d: (
            f"{num(d.get('effective_conductivity_S_per_m'), '.4g', 'S/m')} (brick layer "
            f"{num(d.get('brick_layer_network_S_per_m'), '.4g', 'S/m')}; boundaries "
            f"{pct(d.get('gb_resistance_fraction'))} of the resistance, {d.get('n_grains')} grains)"
        ),
    ),
    (
        ("interface",),
        "Li interface",
        lambda d: (
            f"{pct(d.get('contact_fraction'))} contact: focusing max "
            f"{num(d.get('focusing_factor_max'), '.3f')}, critical current "
            f"{num(d.get('critical_current_A_per_m2'), '.3g', 'A/m²')}, constriction "
            f"{num(d.get('constriction_resistance_ohm_m2'), '.3g', 'Ω·m²')}"
        ),
    ),
    (
        ("interface", "monroe_newman"),
        "Monroe–Newman G_SE/G_Li",
        lambda d: (
            f"{num(d.get('ratio'), '.3g')} ({'meets' if d.get('satisfied') else 'below'} "
            f"2; {esc(d.get('note'))})"
        ),
    ),
)


def _report(view: ReportView) -> list[ReportSection]:
    s = view.summary("ssb")
    if not s:
        return [ReportSection("ssb", "Solid-state electrolyte", view.status_line("ssb"))]
    rows = []
    for path, label, value in _ROWS:
        part: Any = s
        for key in path:
            part = (part or {}).get(key)
        if part:
            rows.append((label, value(part)))
    body = (
        "<p>Phases of role solid_electrolyte: <b>"
        + esc(", ".join(s.get("electrolyte_phases") or []))
        + "</b>. TPB and contacts count only where each phase reaches its reservoir "
        "(electron conductors the collector, the electrolyte the separator side).</p>"
    )
    body += table(["quantity", "value"], rows)
    fig = _maps_figure(view.figures, view.arrays("ssb"))
    if fig:
        body += img(
            fig,
            "active TPB map and lithium-interface focusing",
            "Left: active triple-phase boundary per voxel on a mid-plane through the "
            "thickness. Right: local over applied current density at the lithium "
            "interface of the generated slab.",
        )
    body += notes_list(s.get("notes") or [])
    return [ReportSection("ssb", "Solid-state electrolyte", body)]


# ====================================================================== diagnosis
def _diagnose(results: Mapping[str, Any]) -> Iterator[Verdict | Finding]:
    s = results.get("ssb") or {}
    if not s:
        return
    net = s.get("network") or {}
    c = s.get("contact") or {}
    if net and not net.get("percolating"):
        yield Verdict(
            2,
            "ssb_blocked",
            "The solid electrolyte does not connect the separator side to the current "
            "collector: no ionic path through the electrode",
        )
    elif c and c.get("active_fraction") is not None and c["active_fraction"] < 0.5:
        yield Verdict(
            2,
            "ssb_contact",
            f"Only {100 * c['active_fraction']:.0f} % of the active-material / electrolyte "
            "contact is wired on both sides: most of the active material cannot react",
        )
    elif net:
        yield Verdict(
            18,
            "ssb_transport",
            f"Solid-electrolyte network: σ_eff/σ = {net['relative']:.3f} through the "
            f"thickness (τ = {net['tau'] or math.inf:.2f})"
            + (f", {100 * c['active_fraction']:.0f} % of the contact active" if c else ""),
        )
    tpb = s.get("tpb") or {}
    if tpb and tpb.get("active_fraction") is not None and tpb["active_fraction"] < 0.8:
        yield Finding(
            15,
            f"{100 * (1 - tpb['active_fraction']):.0f} % of the triple-phase boundary is "
            "dead-end or isolated (a phase not connected to its reservoir).",
        )
    g = s.get("grains") or {}
    if g and g.get("gb_resistance_fraction") is not None and g["gb_resistance_fraction"] > 0.3:
        yield Finding(
            12,
            f"Grain boundaries carry {100 * g['gb_resistance_fraction']:.0f} % of the "
            "electrolyte's resistance (grains of "
            f"{1e6 * g['mean_grain_size_m']:.2g} µm at {g['gb_resistance_ohm_m2']:.2g} Ω·m²).",
        )
    li = s.get("interface") or {}
    if li and li.get("critical_current_A_per_m2") is not None:
        jc = li["critical_current_A_per_m2"]
        yield Finding(
            10 if jc < li.get("applied_current_A_per_m2", 0) else 25,
            f"At {100 * li['contact_fraction']:.0f} % lithium contact the current focuses "
            f"{li['focusing_factor_max']:.2f}-fold: filaments start above "
            f"{jc / 10:.3g} mA/cm² applied (local threshold "
            f"{li['critical_current_density_A_per_m2'] / 10:.3g} mA/cm²).",
        )


def _headline(results: Mapping[str, Any]) -> dict[str, Any]:
    s = results.get("ssb") or {}
    return {
        "se_sigma_eff_S_per_m": (s.get("network") or {}).get("sigma_eff_S_per_m"),
        "active_tpb_density_m_per_m3": (s.get("tpb") or {}).get("active_density_m_per_m3"),
        "active_contact_fraction": (s.get("contact") or {}).get("active_fraction"),
        "gb_resistance_fraction": (s.get("grains") or {}).get("gb_resistance_fraction"),
        "critical_current_A_per_m2": (s.get("interface") or {}).get("critical_current_A_per_m2"),
    }


STAGE = Stage(
    "ssb",
    "Solid-state electrolyte (network, TPB, grain boundaries, Li interface)",
    ("input", "segment"),
    ("ssb",),
    _run,
    active=_active,
    n_steps=5,
    settings=(("ssb", SsbSettings),),
    report=_report,
    diagnose=_diagnose,
    headline=_headline,
)
