"""CLI verb ``stress``: diffusion-induced stress on the voxels and Griffith fracture.

JSON keys (``--json``): ``max_principal_stress_Pa``, ``von_mises_p99_Pa``,
``particles``, ``cracked_fraction``, ``cracked_volume_fraction``, ``critical_c_rate``
(closed-form critical rates: median, quantiles, never-cracking share, histogram),
``phases`` (per-phase statistics), ``solver``, ``load``, ``boundary``, ``parameters``,
``outputs`` (written files with ``--out``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from microbat.cli.common import (
    InPath,
    InputOptions,
    JsonOpt,
    Progress,
    QuietOpt,
    check_writable,
    emit,
    guarded,
    with_option_groups,
)


def _rates(text: str | None) -> list[float] | None:
    from microbat.core.errors import InvalidInputError

    if text is None or not text.strip():
        return None
    try:
        return [float(t) for t in text.replace(";", ",").split(",") if t.strip()]
    except ValueError:
        raise InvalidInputError(
            f"cannot read --screen-rates {text!r}; write e.g. 0.5,1,2,5"
        ) from None


def _parameters(
    params_file: Path | None,
    material: str | None,
    young_modulus: str | None,
    poisson_ratio: float | None,
    partial_molar_volume: str | None,
    fracture_toughness: str | None,
    flaw_fraction: float | None,
    flaw_weibull_modulus: float | None = None,
    flaw_seed: int | None = None,
) -> Any:
    import dataclasses

    from microbat.core.errors import InvalidInputError
    from microbat.core.units import parse_pressure
    from microbat.degradation.parameters import MATERIALS, MechanicsParameters

    p = MechanicsParameters.from_file(params_file) if params_file else MechanicsParameters()
    if material:
        key = material.strip().lower()
        if key not in MATERIALS:
            raise InvalidInputError(
                f"unknown --material {material!r}; use one of {', '.join(MATERIALS)}"
            )
        p = dataclasses.replace(p, active=MATERIALS[key])
    omega = None
    if partial_molar_volume is not None:
        txt = partial_molar_volume.strip().lower().removesuffix("m3/mol").strip()
        try:
            omega = float(txt)
        except ValueError:
            raise InvalidInputError(
                f"cannot read --partial-molar-volume {partial_molar_volume!r}; write m3/mol, "
                "e.g. 3.1e-6"
            ) from None
    p = p.with_active(
        young_modulus_Pa=(
            parse_pressure(young_modulus, what="--young-modulus") if young_modulus else None
        ),
        poisson_ratio=poisson_ratio,
        partial_molar_volume_m3_per_mol=omega,
        fracture_toughness_Pa_sqrt_m=(
            parse_pressure(fracture_toughness, what="--fracture-toughness")
            if fracture_toughness
            else None
        ),
    )
    if flaw_fraction is not None:
        p = dataclasses.replace(p, flaw_fraction=flaw_fraction)
    if flaw_weibull_modulus is not None:
        p = dataclasses.replace(p, flaw_weibull_modulus=flaw_weibull_modulus)
    if flaw_seed is not None:
        p = dataclasses.replace(p, flaw_seed=flaw_seed)
    return p


def register(app: typer.Typer) -> None:
    """Register this module's verbs on ``app``."""

    @app.command("stress")
    @guarded
    @with_option_groups
    def stress(
        file: InPath,
        c_rate: Annotated[
            float,
            typer.Option(
                "--c-rate",
                help="Rate (1/h) of the closed-form load: each particle's equivalent sphere "
                "under constant-current (de)lithiation, mapped on its voxels (used unless "
                "--concentration or --from-resolved is given).",
            ),
        ] = 1.0,
        concentration: Annotated[
            Path | None,
            typer.Option(
                "--concentration",
                help="Per-voxel lithium concentration, .npy (or .npz), same shape as FILE.",
            ),
        ] = None,
        units: Annotated[
            str,
            typer.Option(
                "--units", help="Units of --concentration: mol/m3 or stoichiometry (c/c_max)."
            ),
        ] = "mol/m3",
        from_resolved: Annotated[
            Path | None,
            typer.Option(
                "--from-resolved",
                help="A saved resolved discharge (the --out folder of 'microbat simulate', or "
                "its fields.h5): its solid concentration at --snapshot.",
            ),
        ] = None,
        snapshot: Annotated[
            int | None,
            typer.Option("--snapshot", help="Snapshot index of --from-resolved (default: last)."),
        ] = None,
        snapshot_time: Annotated[
            float | None,
            typer.Option("--snapshot-time", help="Or the snapshot nearest this time (s)."),
        ] = None,
        params_file: Annotated[
            Path | None,
            typer.Option(
                "--params",
                help="TOML/JSON parameter file: active, carbon_binder, solid_electrolyte (a "
                "material name or a table of fields), flaw_fraction, geometry_factor, ...",
            ),
        ] = None,
        material: Annotated[
            str | None,
            typer.Option("--material", help="Active material: nmc811 (default) or graphite."),
        ] = None,
        young_modulus: Annotated[
            str | None,
            typer.Option(
                "--young-modulus", help="Young's modulus of the active material (Pa, or 15GPa)."
            ),
        ] = None,
        poisson_ratio: Annotated[
            float | None,
            typer.Option("--poisson-ratio", help="Poisson's ratio of the active material."),
        ] = None,
        partial_molar_volume: Annotated[
            str | None,
            typer.Option(
                "--partial-molar-volume",
                help="Partial molar volume of lithium in the active material (m3/mol).",
            ),
        ] = None,
        fracture_toughness: Annotated[
            str | None,
            typer.Option(
                "--fracture-toughness", help="K_IC of the active material (Pa m^0.5, or 1MPa)."
            ),
        ] = None,
        flaw_fraction: Annotated[
            float | None,
            typer.Option(
                "--flaw-fraction", help="Flaw depth / particle equivalent radius (default 0.05)."
            ),
        ] = None,
        flaw_weibull_modulus: Annotated[
            float | None,
            typer.Option(
                "--flaw-weibull-modulus",
                help="Draw one flaw per particle so that the strengths follow a Weibull law "
                "of this modulus (characteristic flaw: --flaw-fraction); default: no spread.",
            ),
        ] = None,
        flaw_seed: Annotated[
            int | None,
            typer.Option("--flaw-seed", help="Seed of the flaw draws (default 0)."),
        ] = None,
        boundary: Annotated[
            str,
            typer.Option(
                "--boundary",
                help="Current-collector face (index 0 of the thickness axis): clamped or free.",
            ),
        ] = "clamped",
        separator: Annotated[
            str, typer.Option("--separator", help="Separator face: free, roller or clamped.")
        ] = "free",
        lateral: Annotated[
            str, typer.Option("--lateral", help="Lateral faces: free, roller or clamped.")
        ] = "free",
        reference: Annotated[
            str,
            typer.Option(
                "--reference",
                help="Stress-free concentration: mean (of the field, default), initial (start "
                "of the discharge) or a value in mol/m3.",
            ),
        ] = "mean",
        direction: Annotated[
            str,
            typer.Option(
                "--direction",
                help="Closed-form load: lithiation (discharge of a positive electrode) or "
                "delithiation.",
            ),
        ] = "lithiation",
        profile: Annotated[
            str,
            typer.Option(
                "--profile",
                help="Closed-form load at the end of the full (dis)charge (end) or in the "
                "quasi-steady state (steady).",
            ),
        ] = "end",
        screen_rates: Annotated[
            str | None,
            typer.Option(
                "--screen-rates",
                help="C-rates of the closed-form screening table (default 0.5,1,2,3,5,10 and "
                "--c-rate).",
            ),
        ] = None,
        out: Annotated[
            Path | None,
            typer.Option(
                "--out",
                help="Folder for stress.vti, fields.npz, particles.csv, stress_slice.png, "
                "peak_stress_histogram.png, result.json.",
            ),
        ] = None,
        *,
        inputs: InputOptions,
        quiet: QuietOpt = False,
        json: JsonOpt = False,
    ) -> None:
        """Diffusion-induced stress on the solid voxels and which particles crack (Griffith)."""
        from microbat.core.errors import InvalidInputError
        from microbat.degradation.fracture import screen_particles
        from microbat.degradation.loads import (
            galvanostatic_load,
            load_from_file,
            load_from_resolved,
        )
        from microbat.degradation.particles import label_particles
        from microbat.degradation.stress import diffusion_stress

        check_writable(out)
        if concentration is not None and from_resolved is not None:
            raise InvalidInputError("give --concentration or --from-resolved, not both")
        for name, v, allowed in (
            ("--units", units, ("mol/m3", "stoichiometry")),
            ("--direction", direction, ("lithiation", "delithiation")),
            ("--profile", profile, ("end", "steady")),
            ("--boundary", boundary, ("clamped", "free")),
            ("--separator", separator, ("free", "roller", "clamped")),
            ("--lateral", lateral, ("free", "roller", "clamped")),
        ):
            if v not in allowed:
                raise InvalidInputError(f"{name} {v!r}: use {' or '.join(allowed)}")
        ref: Any = reference
        if reference not in ("mean", "initial"):
            try:
                ref = float(reference)
            except ValueError:
                raise InvalidInputError(
                    f"--reference {reference!r}: use mean, initial or a number in mol/m3"
                ) from None
        params = _parameters(
            params_file, material, young_modulus, poisson_ratio, partial_molar_volume,
            fracture_toughness, flaw_fraction, flaw_weibull_modulus, flaw_seed,
        )  # fmt: skip
        rates = _rates(screen_rates)
        with Progress("stress", quiet=quiet) as progress:
            progress.stage(f"reading {file}")
            ms = inputs.load(file)
            if ms.ndim != 3:
                raise InvalidInputError("stress needs a 3D image")
            progress.stage("labelling particles (distance-transform watershed)")
            particles = label_particles(ms)
            if concentration is not None:
                progress.stage(f"reading the concentration {concentration}")
                load = load_from_file(
                    concentration, ms, units=units,  # type: ignore[arg-type]
                    max_concentration=params.active.max_concentration_mol_per_m3,
                )  # fmt: skip
            elif from_resolved is not None:
                progress.stage(f"reading the resolved run {from_resolved}")
                load = load_from_resolved(
                    from_resolved, ms, snapshot=snapshot, time_s=snapshot_time
                )
            else:
                load = galvanostatic_load(
                    particles, params.active, c_rate,
                    direction=direction, time=profile,  # type: ignore[arg-type]
                )  # fmt: skip
            screen = None
            mat = params.active
            if (
                mat.diffusivity_m2_per_s is not None
                and mat.max_concentration_mol_per_m3 is not None
                and mat.stoichiometry_window is not None
                and mat.fracture_toughness_Pa_sqrt_m is not None
            ):
                progress.stage("closed-form screening of every particle")
                grid = rates or [0.5, 1, 2, 3, 5, 10]
                grid = sorted(set([*grid, float(c_rate)]))
                screen = screen_particles(
                    particles, grid, params=params,
                    direction=direction, time=profile,  # type: ignore[arg-type]
                )  # fmt: skip
            progress.stage("voxel elasticity (AMG-preconditioned CG)")
            res = diffusion_stress(
                ms, load, params=params, particles=particles,
                boundary=boundary, separator=separator, lateral=lateral,  # type: ignore[arg-type]
                reference=ref, screening=screen,
            )  # fmt: skip
            outputs: dict[str, str] = {}
            if out is not None:
                progress.stage(f"writing {out}")
                outputs = {k: str(v) for k, v in res.save(out).items()}
        data = res.to_dict()
        data["outputs"] = outputs

        def human() -> None:
            s = res.summary
            typer.echo(
                f"{s['particles']} particles; max principal stress "
                f"{s['max_principal_stress_Pa'] / 1e6:.4g} MPa, von Mises p99 "
                f"{s['von_mises_p99_Pa'] / 1e6:.4g} MPa"
            )
            cf = s.get("cracked_fraction")
            typer.echo(
                f"cracked (Griffith, {s['tensile_statistic']} tensile stress): "
                f"{s['cracked_particles']} ({100 * (cf or 0):.1f} %)"
            )
            cr = s.get("critical_c_rate") or {}
            if cr:
                med = cr.get("median")
                typer.echo(
                    "critical C-rate (closed form): median "
                    + (f"{med:.3g}C" if med is not None else "none (most never crack)")
                    + f", never cracks: {100 * (cr.get('never_cracks_fraction') or 0):.0f} %"
                )
            typer.echo(
                f"solver: {res.solver['iterations']} CG iterations, "
                f"{res.solver['unknowns']} unknowns, residual {res.solver['residual']:.1e}"
            )
            for k, v in outputs.items():
                typer.echo(f"{k}: {v}")

        if json or not quiet:  # --quiet: errors only (and the JSON with --json)
            emit(data, as_json=json, human=human)
