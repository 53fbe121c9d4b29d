"""CLI verb ``age``: cycle aging of an electrode image (SEI, cracks, the feedback loop).

JSON keys (``--json``): ``cycles``, ``c_rate``, ``mechanisms``, ``cycle`` (cycle number of
each curve point), ``capacity_retention`` (list), ``resistance_growth`` (list),
``lithium_lost_mol`` (``sei_original``, ``sei_cracks``, ``plating``, ``total``),
``lithium_lost_curve_mol``, ``heterogeneity_cov`` (list),
``capacity_fade`` (kept for compatibility: the imaged electrode's lithium-inventory
fade, with isolated particles' capacity), ``lithium_inventory_fade`` (``F n_lost/Q_0``),
``cell_capacity_fade`` and ``cell_capacity_retention`` (list: the full cell of ``--cell``
by its electrode balance; null with ``--cell none``), ``degradation_modes`` (``LLI``,
``LAM_ne``, ``LAM_pe`` lists, fractions of the cell's initial inventories),
``cell_balance`` (set, inventories, cut-offs, initial and final stoichiometry limits),
``capacity_Ah``, ``fractured_fraction``, ``mean_crack_length_m``,
``mean_sei_thickness_m``, ``map_cycles``, ``depth_profile``, ``impedance_frequency_Hz``,
``impedance_ohm`` (``cycles``, ``real``, ``imag``: spectra at the map cycles), ``solver``,
``parameters``, ``plating`` (with the plating mechanism and no constant rate: the
resolved charge it came from, its mode, crop and lithium lost per charge; null
otherwise), ``provenance``, ``outputs`` (written files with ``--out``), ``resumed``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from microbat.cli.common import (
    EXIT_SIGTERM,
    InPath,
    InputOptions,
    JsonOpt,
    Progress,
    QuietOpt,
    check_writable,
    close_progress,
    emit,
    guarded,
    interrupt_exit_code,
    with_option_groups,
)

CHECKPOINT_NAME = "aging_checkpoint.npz"
PLATING_NAME = "aging_plating.npz"


def _map_cycles(text: str | None, cycles: int) -> list[int] | None:
    from microbat.core.errors import InvalidInputError

    if text is None or not text.strip():
        return None
    try:
        out = [int(t) for t in text.replace(";", ",").split(",") if t.strip()]
    except ValueError:
        raise InvalidInputError(
            f"cannot read --map-cycles {text!r}; write e.g. 0,500,1000"
        ) from None
    bad = [c for c in out if not 0 <= c <= cycles]
    if bad:
        raise InvalidInputError(f"--map-cycles {bad[0]} lies outside 0..{cycles}")
    return out


def register(app: typer.Typer) -> None:
    """Register this module's verbs on ``app``."""

    @app.command("age")
    @guarded
    @with_option_groups
    def age_cmd(
        file: InPath,
        cycles: Annotated[
            int, typer.Option("--cycles", help="Number of full cycles (> 0).")
        ] = 1000,
        c_rate: Annotated[
            float, typer.Option("--c-rate", help="C-rate of charge and discharge (1/h).")
        ] = 1.0,
        mechanisms: Annotated[
            str,
            typer.Option(
                "--mechanisms",
                help="Parts of the loop, comma separated: sei, cracks, plating (plating: one "
                "resolved charge with the plating reaction at --c-rate gives the lithium "
                "plated per particle and cycle, unless --params sets "
                "plating_rate_mol_per_m2_s).",
            ),
        ] = "sei,cracks",
        sei_law: Annotated[
            str | None,
            typer.Option(
                "--sei-law", help="SEI growth: solvent-diffusion (default), reaction or mixed."
            ),
        ] = None,
        material: Annotated[
            str | None,
            typer.Option("--material", help="Active material: graphite (default) or nmc811."),
        ] = None,
        params_file: Annotated[
            Path | None,
            typer.Option(
                "--params",
                help="TOML/JSON parameter file: [sei], [cracks] tables, material, "
                "exchange_current_density_A_per_m2, electrolyte_conductivity_S_per_m, ... "
                "(docs/aging.md).",
            ),
        ] = None,
        tortuosity: Annotated[
            float | None,
            typer.Option(
                "--tortuosity",
                help="Electrolyte tortuosity factor along the thickness (default: computed "
                "from the image).",
            ),
        ] = None,
        no_jump: Annotated[
            bool, typer.Option("--no-jump", help="Cycle by cycle (no cycle-jumping).")
        ] = False,
        tolerance: Annotated[
            float,
            typer.Option(
                "--tolerance",
                help="Cycle-jumping: largest relative change of a particle's stress or SEI "
                "rate within a block.",
            ),
        ] = 0.01,
        map_cycles: Annotated[
            str | None,
            typer.Option(
                "--map-cycles",
                help="Cycles of the per-particle maps (default: 0, half-way, last).",
            ),
        ] = None,
        plating_set: Annotated[
            str,
            typer.Option(
                "--plating-set",
                help="Parameter set of the resolved plating charge (its negative electrode).",
            ),
        ] = "chen2020",
        plating_mode: Annotated[
            str,
            typer.Option(
                "--plating-mode",
                help="Plating reaction of the resolved charge: irreversible (all plated "
                "lithium lost) or partially_reversible (the dead lithium lost).",
            ),
        ] = "irreversible",
        plating_lateral_size: Annotated[
            int | None,
            typer.Option(
                "--plating-lateral-size",
                help="Charge a centred lateral crop of this edge (voxels, whole thickness) "
                "for the plating; the rest by layer (default: the whole image).",
            ),
        ] = None,
        cell: Annotated[
            str,
            typer.Option(
                "--cell",
                help="Full-cell parameter set of the cell capacity: its electrode balance "
                "(eSOH) scaled to the image gives the cell's fade and the degradation modes "
                "LLI/LAM (a set name, a BPX .json, or none).",
            ),
        ] = "okane2022",
        out: Annotated[
            Path | None,
            typer.Option(
                "--out",
                help="Folder for result.json, curves.csv, particles.csv, aging.png, "
                f"maps_cycle*.png, impedance.png/.csv, {CHECKPOINT_NAME} and (plating) "
                f"{PLATING_NAME}.",
            ),
        ] = None,
        resume: Annotated[
            bool,
            typer.Option(
                "--resume",
                help=f"Continue from OUT/{CHECKPOINT_NAME} (same inputs; the plating charge "
                f"of OUT/{PLATING_NAME} is reused).",
            ),
        ] = False,
        *,
        inputs: InputOptions,
        quiet: QuietOpt = False,
        json: JsonOpt = False,
    ) -> None:
        """Cycle aging: capacity fade, resistance growth and lithium lost per particle."""
        import dataclasses

        from microbat.core.errors import InvalidInputError
        from microbat.degradation._aging_network import aging_geometry
        from microbat.degradation._aging_plating import (
            PLATING_MODES,
            ResolvedPlating,
            labels_hash,
            resolved_plating,
        )
        from microbat.degradation.aging import AgingParameters, age, parse_mechanisms
        from microbat.degradation.parameters import MATERIALS
        from microbat.degradation.particles import label_particles

        check_writable(out)
        if cycles <= 0:
            raise InvalidInputError(f"--cycles must be > 0, got {cycles}")
        if not c_rate > 0:
            raise InvalidInputError(f"--c-rate must be > 0, got {c_rate}")
        if resume and out is None:
            raise InvalidInputError("--resume needs --out (the folder of the checkpoint)")
        mech = parse_mechanisms(mechanisms)
        params = AgingParameters.from_file(params_file) if params_file else AgingParameters()
        if material:
            key = material.strip().lower()
            if key not in MATERIALS:
                raise InvalidInputError(
                    f"unknown --material {material!r}; use one of {', '.join(MATERIALS)}"
                )
            params = dataclasses.replace(params, material=MATERIALS[key])
        if sei_law:
            params = dataclasses.replace(params, sei=params.sei.replace(law=sei_law.strip()))
        params.require(mech)
        resolved = "plating" in mech and params.plating_rate_mol_per_m2_s is None
        if resolved and plating_mode not in PLATING_MODES:
            raise InvalidInputError(
                f"unknown --plating-mode {plating_mode!r}; use {' or '.join(PLATING_MODES)}"
            )
        if plating_lateral_size is not None and plating_lateral_size < 4:
            raise InvalidInputError(
                f"--plating-lateral-size must be at least 4 voxels, got {plating_lateral_size}"
            )
        maps = _map_cycles(map_cycles, cycles)
        cell_set: Any = None
        if cell.strip().lower() not in ("", "none"):
            from microbat.cell.parameters import load_parameters

            cell_set = load_parameters(cell.strip())  # an unknown set fails here, in one line
        ck = out / CHECKPOINT_NAME if out is not None else None
        resumed = bool(resume and ck is not None and ck.is_file())
        with Progress("age", quiet=quiet) as progress:
            progress.stage(f"reading {file}")
            ms = inputs.load(file)
            if ms.ndim != 3:
                raise InvalidInputError("age needs a 3D image")
            progress.stage("labelling particles, interface areas, electrolyte tortuosity")
            particles = label_particles(ms)
            geom = aging_geometry(ms, particles, tortuosity=tortuosity)
            plating = None
            if resolved:
                crop = None
                if plating_lateral_size is not None:
                    from microbat.pipeline.base import central

                    crop = central(ms.shape, plating_lateral_size, whole_axis=ms.thickness_axis)
                pl_file = out / PLATING_NAME if out is not None else None
                if resume and pl_file is not None and pl_file.is_file():
                    saved = ResolvedPlating.load(pl_file)
                    box = [[b.start, b.stop] for b in crop] if crop is not None else None
                    if box is not None and all(
                        hi - lo == n for (lo, hi), n in zip(box, ms.shape, strict=True)
                    ):
                        box = None  # the crop is the whole image
                    want = {
                        "mode": plating_mode, "c_rate": float(c_rate), "crop": box,
                        "parameter_set": plating_set, "labels_sha256": labels_hash(particles),
                    }  # fmt: skip
                    if saved.key() == want:
                        plating = saved
                if plating is None:
                    progress.stage(
                        f"resolved {c_rate:g}C charge with {plating_mode} plating ({plating_set})"
                    )
                    plating = resolved_plating(
                        ms, particles, c_rate=c_rate, params=plating_set, mode=plating_mode,
                        crop=crop,
                    )  # fmt: skip
                    if pl_file is not None:
                        plating.save(pl_file)
            progress.stage(f"aging {geom.n} particles over {cycles} cycles", total=cycles)

            reached = [0]

            def tick(done: int, total: int) -> None:
                reached[0] = done
                progress.step(f"cycle {done}/{total}", done=done)

            try:
                res = age(
                    ms, cycles=cycles, c_rate=c_rate, mechanisms=mech, params=params,
                    geometry=geom, jump=not no_jump, tolerance=tolerance, map_cycles=maps,
                    checkpoint=ck, resume=resume, plating=plating, cell=cell_set,
                    progress=tick,
                )  # fmt: skip
            except KeyboardInterrupt as exc:
                if ck is None or not ck.is_file():
                    raise
                close_progress()
                code = interrupt_exit_code(exc)
                sig = "SIGTERM" if code == EXIT_SIGTERM else "Ctrl-C (SIGINT)"
                typer.echo(
                    f"interrupted by {sig}: the aging state at cycle {reached[0]} is kept in {ck}; "
                    "continue with --resume",
                    err=True,
                )
                raise typer.Exit(code) from None
            outputs: dict[str, str] = {}
            if out is not None:
                progress.stage(f"writing {out}")
                outputs = {k: str(v) for k, v in res.save(out).items()}
                if ck is not None:
                    outputs["checkpoint"] = str(ck)
                if plating is not None:
                    outputs["plating"] = str(out / PLATING_NAME)
        data: dict[str, Any] = res.to_dict()
        data["outputs"] = outputs
        data["resumed"] = resumed

        def human() -> None:
            lost = res.lithium_lost_mol
            typer.echo(
                f"{geom.n} particles, {res.cycles} cycles at {res.c_rate:g}C "
                f"({', '.join(res.mechanisms)}): capacity retention "
                f"{100 * res.capacity_retention[-1]:.3f} % of {res.capacity_Ah * 1e3:.4g} mAh, "
                f"resistance x{res.resistance_growth[-1]:.4f}"
            )
            fade = res.cell_capacity_fade
            typer.echo(
                f"lithium-inventory fade {100 * res.lithium_inventory_fade:.4g} % of the "
                "electrode; cell capacity fade "
                + (
                    "not computed (--cell none)"
                    if fade is None or res.degradation_modes is None
                    else f"{100 * fade:.4g} % ({res.cell_balance['parameter_set']} balance; "
                    f"LLI {100 * res.degradation_modes['LLI'][-1]:.4g} %, LAM_ne "
                    f"{100 * res.degradation_modes['LAM_ne'][-1]:.4g} %, LAM_pe "
                    f"{100 * res.degradation_modes['LAM_pe'][-1]:.4g} %)"
                )
            )
            pl = lost["plating"]
            if res.plating is not None:
                rp = res.plating
                typer.echo(
                    f"plating from one resolved {rp['c_rate']:g}C charge ({rp['mode']}, "
                    f"{rp['charge']['wall_s']:.3g} s): {rp['lost_per_charge_mol']:.4g} mol lost "
                    "per cycle"
                )
            typer.echo(
                f"lithium lost: SEI on original surface {lost['sei_original']:.4g} mol, on "
                f"cracks {lost['sei_cracks']:.4g} mol, plating "
                + ("off" if pl is None else f"{pl:.4g} mol")
            )
            typer.echo(
                f"heterogeneity (area-weighted CoV of the degradation rate): "
                f"{res.heterogeneity_cov[-1]:.4g}; fractured particles "
                f"{100 * res.fractured_fraction[-1]:.1f} %"
            )
            s = res.solver
            typer.echo(
                f"solver: {s['blocks']} blocks ({s['rejected_blocks']} rejected), "
                f"{s['network_solves']} network solves, {s['wall_time_s']:.3g} s"
                + (" (resumed)" if resumed else "")
            )
            for k, v in outputs.items():
                typer.echo(f"{k}: {v}")

        if json or not quiet:
            emit(data, as_json=json, human=human)
