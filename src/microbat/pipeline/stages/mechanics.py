"""Twin stage ``mechanics``: diffusion-induced stress and particle cracking.

The particles of the active phase (:func:`microbat.degradation.label_particles`) are
screened in closed form over the configured C-rates: each particle's equivalent
sphere under galvanostatic (de)lithiation, the free-sphere stress, the Griffith
check and every particle's critical C-rate
(:func:`microbat.degradation.screen_particles`) — on the whole image, in
milliseconds once the particles are labelled. Then the voxel elasticity
(:func:`microbat.degradation.diffusion_stress`) is solved on a subvolume (the
collector-side box of ``mechanics.subvolume`` voxels, centred laterally: its face
at index 0 of the thickness axis is the real current collector, clamped) under the
closed-form load at ``mechanics.fe_c_rate``: the stress the particles feel where
they touch each other, the binder and the collector. Report section: "Mechanics
(particle cracking)". Diagnosis: a finding on the cracked share at the highest
screened rate and the median critical C-rate.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from microbat.degradation.fracture import screen_particles
from microbat.degradation.parameters import MATERIALS, MechanicsParameters
from microbat.degradation.particles import label_particles
from microbat.degradation.stress import stress_at_c_rate
from microbat.pipeline.base import (
    Finding,
    Stage,
    StageContext,
    StageOutput,
    StageSettings,
    finite_or_none,
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
)

__all__ = ["STAGE", "MechanicsSettings"]


class MechanicsSettings(StageSettings):
    """Diffusion-induced stress and Griffith fracture (``microbat.degradation``)."""

    enabled: bool = Field(True, description="Run the mechanics stage.")
    material: Literal["nmc811", "graphite"] = Field(
        "nmc811",
        description="Active material (cited defaults in docs/mechanics.md); carbon-binder "
        "1 GPa, solid electrolyte LLZO.",
    )
    direction: Literal["lithiation", "delithiation"] = Field(
        "lithiation",
        description="Lithiation: discharge of a positive electrode (charge of a negative).",
    )
    profile: Literal["end", "steady"] = Field(
        "end",
        description="Particle concentration at the end of a full (dis)charge, or in the "
        "quasi-steady state (the largest stress of a long step).",
    )
    c_rates: list[float] = Field(
        [0.5, 1.0, 2.0, 3.0, 5.0, 10.0],
        description="Rates of the closed-form screening of every particle.",
        json_schema_extra={"unit": "1/h"},
    )
    fe: bool = Field(
        True, description="Also solve the voxel elasticity on the collector-side subvolume."
    )
    fe_c_rate: float = Field(
        3.0, gt=0, description="Rate of the voxel solve.", json_schema_extra={"unit": "1/h"}
    )
    subvolume: list[int] = Field(
        [32, 32, 32],
        description="Edge per axis of the box of the voxel solve: from the current collector "
        "along the thickness, centred across it (whole extent if smaller).",
        json_schema_extra={"unit": "voxels"},
    )
    boundary: Literal["clamped", "free"] = Field(
        "clamped", description="Current-collector face of the voxel solve."
    )
    lateral: Literal["free", "roller"] = Field(
        "free",
        description="Lateral faces of the voxel solve (roller: the constraint of the "
        "surrounding electrode).",
    )
    flaw_fraction: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="Griffith flaw depth as a fraction of each particle's equivalent radius.",
    )

    @field_validator("c_rates")
    @classmethod
    def _rates(cls, v: list[float]) -> list[float]:
        if not v or any(not (r > 0) for r in v):
            raise ValueError(f"c_rates must be positive, got {v}")
        return sorted(set(float(r) for r in v))

    @field_validator("subvolume")
    @classmethod
    def _sub(cls, v: list[int]) -> list[int]:
        if len(v) not in (1, 3) or any(n < 4 for n in v):
            raise ValueError(f"subvolume must be one or three sizes >= 4, got {v}")
        return v * 3 if len(v) == 1 else v


def _active(ctx: StageContext) -> str | None:
    if not ctx.config.mechanics.enabled:
        return "the mechanics stage is switched off (mechanics.enabled = false)"
    return None


def _box(shape: tuple[int, ...], edge: list[int], thickness_axis: int) -> tuple[slice, ...]:
    """Collector-side box: [0, e) along the thickness, centred on the other axes."""
    out = []
    for a, (n, e) in enumerate(zip(shape, edge, strict=True)):
        e = min(int(e), n)
        start = 0 if a == thickness_axis else (n - e) // 2
        out.append(slice(start, start + e))
    return tuple(out)


def _mid_slice(field: np.ndarray, thickness_axis: int) -> np.ndarray:
    across = next(a for a in range(field.ndim) if a != thickness_axis)
    sl = np.take(field, field.shape[across] // 2, axis=across)
    t = thickness_axis if thickness_axis < across else thickness_axis - 1
    return np.ascontiguousarray(np.moveaxis(sl, t, 0), dtype=np.float32)


def _run(ctx: StageContext) -> StageOutput:
    cfg = ctx.config.mechanics
    ms = ctx.microstructure()
    notes: list[str] = []
    params = MechanicsParameters(active=MATERIALS[cfg.material], flaw_fraction=cfg.flaw_fraction)
    ctx.step("labelling the active particles (distance-transform watershed)")
    particles = label_particles(ms)
    ctx.step(f"closed-form screening of {particles.n} particles at {len(cfg.c_rates)} rates")
    scr = screen_particles(
        particles, cfg.c_rates, params=params, direction=cfg.direction, time=cfg.profile
    )
    crit = scr.critical_c_rate
    summary: dict[str, Any] = {
        "material": cfg.material,
        "direction": cfg.direction,
        "profile": cfg.profile,
        "particles": int(particles.n),
        "clusters": int(particles.clusters),
        "median_radius_m": float(np.median(particles.equivalent_radius_m)),
        "flaw_fraction": cfg.flaw_fraction,
        "fracture_toughness_Pa_sqrt_m": scr.fracture_toughness_Pa_sqrt_m,
        "screening": [
            {
                "c_rate": float(c),
                "cracked_fraction": float(scr.cracked_fraction[i]),
                "cracked_volume_fraction": float(scr.cracked_volume_fraction[i]),
                "max_tensile_stress_Pa": float(np.max(scr.tensile_stress_Pa[i])),
            }
            for i, c in enumerate(scr.c_rates)
        ],
        "critical_c_rate": scr.critical,
        "notes": notes,
    }
    arrays: dict[str, np.ndarray] = {
        "c_rates": np.asarray(scr.c_rates, float),
        "cracked_fraction": np.asarray(scr.cracked_fraction, float),
        "cracked_volume_fraction": np.asarray(scr.cracked_volume_fraction, float),
        "critical_c_rate": np.where(np.isfinite(crit), crit, np.nan),
        "radius_m": np.asarray(particles.equivalent_radius_m, float),
    }
    if cfg.fe:
        box = _box(ms.shape, cfg.subvolume, ms.thickness_axis)
        sub = ms.crop(*box)
        sub_particles = particles.crop(box)
        shape = "x".join(str(s.stop - s.start) for s in box)
        if sub_particles.n == 0:
            notes.append(f"the {shape} subvolume of the voxel solve holds no active particle")
        else:
            ctx.step(
                f"voxel elasticity on the {shape} collector-side subvolume at {cfg.fe_c_rate:g}C"
            )
            res = optional(
                notes,
                "voxel stress solve",
                lambda: stress_at_c_rate(
                    sub, cfg.fe_c_rate, params=params, particles=sub_particles,
                    direction=cfg.direction, time=cfg.profile, screen_rates=[cfg.fe_c_rate],
                    boundary=cfg.boundary, lateral=cfg.lateral,
                ),
            )  # fmt: skip
            if res is not None:
                s = res.summary
                summary["fe"] = {
                    "c_rate": cfg.fe_c_rate,
                    "subvolume": [[sl.start, sl.stop] for sl in box],
                    "boundary": res.boundary,
                    "max_principal_stress_Pa": finite_or_none(s.get("max_principal_stress_Pa")),
                    "von_mises_p99_Pa": finite_or_none(s.get("von_mises_p99_Pa")),
                    "particles": s.get("particles"),
                    "cracked_fraction": finite_or_none(s.get("cracked_fraction")),
                    "cracked_volume_fraction": finite_or_none(s.get("cracked_volume_fraction")),
                    "phases": s.get("phases"),
                    "iterations": res.solver["iterations"],
                    "unknowns": res.solver["unknowns"],
                    "solve_s": float(sum(res.solver["timing_s"].values())),
                    "floating": res.solver["floating"],
                    "energy_balance_error": finite_or_none(s.get("energy_balance_error")),
                }
                # the free-sphere screening of the same particles at the same rate
                k = int(np.searchsorted(scr.c_rates, cfg.fe_c_rate))
                if k < len(scr.c_rates) and scr.c_rates[k] == cfg.fe_c_rate:
                    summary["fe"]["free_sphere_cracked_fraction"] = float(scr.cracked_fraction[k])
                arrays["fe_max_principal_mid"] = _mid_slice(res.max_principal, ms.thickness_axis)
                p99 = np.asarray(res.particles["p99_tensile_Pa"], float)
                arrays["fe_particle_p99_Pa"] = p99[np.isfinite(p99)]
                del res
    return StageOutput(summary=summary, arrays=arrays)


# ========================================================================= report
def _screen_figure(figs: Figures, arr: Mapping[str, np.ndarray], kic: float) -> str:
    fig = figs.new(9.6, 3.8, left=0.07, right=0.98, top=0.88, bottom=0.15, wspace=0.3)
    a1, a2 = fig.subplots(1, 2)
    c = arr["c_rates"]
    a1.plot(c, 100 * arr["cracked_fraction"], "o-", label="particles")
    a1.plot(c, 100 * arr["cracked_volume_fraction"], "s--", label="active volume")
    a1.set_xscale("log")
    a1.set_xlabel("C-rate [1/h]")
    a1.set_ylabel("cracked [%]")
    a1.set_title("Griffith check per particle (free sphere)", fontsize=9.5)
    a1.legend(fontsize=8, loc="upper left")
    crit = arr["critical_c_rate"]
    fin = crit[np.isfinite(crit)]
    if fin.size:
        bins = np.logspace(np.log10(fin.min()) - 0.05, np.log10(fin.max()) + 0.05, 25)
        a2.hist(fin, bins=bins, color="#4c72b0")
        a2.set_xscale("log")
    a2.set_xlabel("critical C-rate [1/h]")
    a2.set_ylabel("particles")
    never = int(np.count_nonzero(~np.isfinite(crit)))
    a2.set_title(f"first crack ({never} particles never crack)", fontsize=9.5)
    return figs.png(fig)


def _fe_figure(figs: Figures, mid: np.ndarray, p99: np.ndarray, crit_stress: float) -> str:
    fig = figs.new(9.6, 4.0, left=0.07, right=0.97, top=0.88, bottom=0.14, wspace=0.35)
    a1, a2 = fig.subplots(1, 2)
    sl = mid / 1e6
    vals = sl[np.isfinite(sl)]
    lim = float(np.percentile(np.abs(vals), 99)) if vals.size else 1.0
    cmap = __import__("matplotlib").colormaps["RdBu_r"].with_extremes(bad="#d0d0d0")
    im = a1.imshow(np.ma.masked_invalid(sl), cmap=cmap, vmin=-lim, vmax=lim,
                   interpolation="nearest")  # fmt: skip
    a1.set_xlabel("in-plane position [voxels]")
    a1.set_ylabel("thickness [voxels] (collector at 0)")
    a1.set_title("max principal stress, mid-plane", fontsize=9.5)
    fig.colorbar(im, ax=a1, shrink=0.85, label="σ₁ [MPa]")
    if p99.size:
        a2.hist(p99 / 1e6, bins=min(30, max(5, p99.size // 2)), color="#4c72b0")
    if crit_stress:
        a2.axvline(crit_stress / 1e6, color="#c44e52", ls="--", label="K_IC/(Y√(πa)), median a")
        a2.legend(fontsize=8, loc="upper right")
    a2.set_xlabel("per-particle 99th-percentile tensile stress [MPa]")
    a2.set_ylabel("particles")
    a2.set_title("voxel solve", fontsize=9.5)
    return figs.png(fig)


def _report(view: ReportView) -> list[ReportSection]:
    mech = view.summary("mechanics")
    if not mech:
        return [ReportSection("mechanics", "Mechanics (particle cracking)",
                              view.status_line("mechanics"))]  # fmt: skip
    arr = view.arrays("mechanics")
    cr = mech.get("critical_c_rate") or {}
    when = (
        "at the end of the full (dis)charge"
        if mech.get("profile") == "end"
        else "in the quasi-steady state"
    )
    body = (
        f"<p>{mech.get('particles')} particles of the active phase ({esc(mech.get('material'))}, "
        f"median equivalent radius {num(1e6 * (mech.get('median_radius_m') or 0), '.3g')} µm), "
        f"{esc(mech.get('direction'))} at constant current, concentration "
        f"{when}. "
        "A particle cracks when the stress intensity of a surface flaw "
        f"(depth {num(mech.get('flaw_fraction'))} × its radius) reaches "
        f"K_IC = {num((mech.get('fracture_toughness_Pa_sqrt_m') or 0) / 1e6, '.3g')} MPa·√m "
        "(Griffith; equivalently G = K_I²(1−ν²)/E reaches G_c). Critical C-rate: median "
        f"{num(cr.get('median'), '.3g')}C, 10–90 % {num(cr.get('p10'), '.3g')}–"
        f"{num(cr.get('p90'), '.3g')}C, by volume {num(cr.get('volume_weighted_median'), '.3g')}C; "
        f"{pct(cr.get('never_cracks_fraction'))} of the particles never crack.</p>"
    )
    if "c_rates" in arr:
        body += img(
            _screen_figure(view.figures, arr, mech.get("fracture_toughness_Pa_sqrt_m") or 0),
            "cracked fraction against C-rate and critical C-rate histogram",
            "Left: share of particles (and of the active volume) whose equivalent free "
            "sphere cracks, by rate. Right: the rate at which each particle first cracks "
            "(closed form, Cheng & Verbrugge 2009 stresses, Griffith criterion).",
        )
    body += table(
        ["C-rate", "cracked particles", "cracked volume", "largest tensile stress"],
        [
            (
                f"{r['c_rate']:g}C",
                pct(r.get("cracked_fraction")),
                pct(r.get("cracked_volume_fraction")),
                num((r.get("max_tensile_stress_Pa") or 0) / 1e6, ".4g", "MPa"),
            )
            for r in mech.get("screening") or []
        ],
    )
    fe = mech.get("fe")
    if fe:
        sub = " × ".join(f"[{a}:{b}]" for a, b in fe["subvolume"])
        body += (
            f"<h3>Voxel solve at {fe['c_rate']:g}C</h3><p>Linear elasticity on the solid "
            f"voxels of the subvolume {sub} (collector face {esc(fe['boundary']['collector'])}, "
            f"lateral faces {esc(fe['boundary']['lateral'])}), each particle loaded by its "
            f"closed-form concentration; {fe['unknowns']} unknowns, {fe['iterations']} CG "
            f"iterations, {num(fe['solve_s'], '.3g')} s. Contacts, binder and collector change "
            "the free-sphere picture:</p>"
        )
        mpa = lambda v: num((v or 0) / 1e6, ".4g", "MPa")  # noqa: E731
        floating = (fe.get("floating") or {}).get("floating_clusters")
        rows = [
            ("largest max principal stress", mpa(fe.get("max_principal_stress_Pa"))),
            ("von Mises, 99th percentile", mpa(fe.get("von_mises_p99_Pa"))),
            ("particles in the subvolume", num(fe.get("particles"), ".0f")),
            ("cracked (voxel solve)", pct(fe.get("cracked_fraction"))),
            ("cracked (free spheres, same rate)", pct(fe.get("free_sphere_cracked_fraction"))),
            ("floating solid clusters (held by springs)", num(floating, ".0f")),
        ]
        body += table(["", "value"], rows)
        if "fe_max_principal_mid" in arr:
            crit_s = None
            kic = mech.get("fracture_toughness_Pa_sqrt_m")
            p99 = arr.get("fe_particle_p99_Pa", np.empty(0))
            if kic:
                a = mech.get("flaw_fraction", 0.05) * (mech.get("median_radius_m") or 0)
                crit_s = kic / (1.12 * np.sqrt(np.pi * a)) if a > 0 else None
            body += img(
                _fe_figure(view.figures, arr["fe_max_principal_mid"], p99, crit_s or 0.0),
                "maximum principal stress of the voxel solve",
                "Left: maximum principal stress on a mid-plane through the thickness "
                "(tension red, compression blue, grey pore). Right: each particle's "
                "99th-percentile tensile stress against the critical stress of the "
                "median flaw.",
            )
    body += notes_list(mech.get("notes") or [])
    return [ReportSection("mechanics", "Mechanics (particle cracking)", body)]


# ====================================================================== diagnosis
def _diagnose(results: Mapping[str, Any]) -> Iterator[Finding]:
    mech = results.get("mechanics") or {}
    rows = mech.get("screening") or []
    if not rows:
        return
    cr = mech.get("critical_c_rate") or {}
    top = rows[-1]
    med = cr.get("median")
    vmed = cr.get("volume_weighted_median")
    frac = top.get("cracked_fraction") or 0.0
    text = (
        f"Particle cracking ({mech.get('material')}, Griffith, free-sphere screening): "
        f"{pct(frac)} of the particles ({pct(top.get('cracked_volume_fraction'))} of the "
        f"active volume) crack at {top['c_rate']:g}C; "
        + (
            f"half of them crack below {med:.3g}C"
            if med is not None
            else "most never crack at any rate"
        )
        + (f" (half of the active volume below {vmed:.3g}C)" if vmed is not None else "")
        + ". Larger particles crack first: smaller or coated particles, or a lower rate, "
        "avoid it."
    )
    fe = mech.get("fe") or {}
    if fe.get("cracked_fraction") is not None:
        text += (
            f" On the voxels at {fe['c_rate']:g}C the share is {pct(fe['cracked_fraction'])} "
            f"(free spheres: {pct(fe.get('free_sphere_cracked_fraction'))})."
        )
    yield Finding(30 if frac > 0.05 else 80, text)


def _headline(results: Mapping[str, Any]) -> dict[str, Any]:
    mech = results.get("mechanics") or {}
    cr = mech.get("critical_c_rate") or {}
    return {
        "critical_c_rate_median": cr.get("median"),
        "critical_c_rate_volume_median": cr.get("volume_weighted_median"),
        "cracked_fraction": {
            f"{r['c_rate']:g}C": r.get("cracked_fraction") for r in mech.get("screening") or []
        }
        or None,
        "fe_max_principal_stress_Pa": (mech.get("fe") or {}).get("max_principal_stress_Pa"),
    }


STAGE = Stage(
    "mechanics",
    "Mechanics (diffusion-induced stress, Griffith fracture)",
    ("input", "segment"),
    ("mechanics",),
    _run,
    active=_active,
    n_steps=3,
    settings=(("mechanics", MechanicsSettings),),
    report=_report,
    diagnose=_diagnose,
    headline=_headline,
)
