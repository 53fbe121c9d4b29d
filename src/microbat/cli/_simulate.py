"""The ``simulate`` verb: microstructure-resolved half-cell discharge."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from microbat.cli.common import (
    JsonOpt,
    PhasesOpt,
    ThicknessAxisOpt,
    VoxelSizeOpt,
    emit,
    guarded,
    load_input,
)


def register(app: typer.Typer) -> None:
    """Register this module's verbs on ``app``."""

    @app.command("simulate")
    @guarded
    def simulate(
        file: Annotated[
            Path, typer.Argument(help="Labelled electrode image (any readable format).")
        ],
        c_rate: Annotated[float, typer.Option("--c-rate", help="Discharge C-rate.")] = 1.0,
        params: Annotated[
            str,
            typer.Option("--params", help="Parameter set name (chen2020 = NMC811) or BPX file."),
        ] = "chen2020",
        out: Annotated[
            Path | None,
            typer.Option("--out", help="Folder for curve.csv, fields.h5 and result.json."),
        ] = None,
        cutoff: Annotated[
            float | None, typer.Option("--cutoff", help="Lower cut-off voltage (V).")
        ] = None,
        max_steps: Annotated[
            int, typer.Option("--max-steps", help="Time steps before stopping (partial).")
        ] = 5000,
        phases: PhasesOpt = None,
        voxel_size: VoxelSizeOpt = None,
        thickness_axis: ThicknessAxisOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        """Discharge a resolved positive electrode against lithium metal.

        Every voxel of the image keeps its own electrolyte concentration and
        potential, solid potential and lithium concentration (no homogenisation).
        Writes the voltage curve (CSV) and field snapshots (HDF5) to --out (default:
        a folder beside FILE named FILE.resolved).
        """
        from microbat.cell.resolved import ResolvedOptions, simulate_discharge
        from microbat.core.results import to_jsonable

        t0 = time.perf_counter()
        ms = load_input(file, phases, voxel_size, thickness_axis)
        opt = ResolvedOptions(cutoff_V=cutoff, max_steps=max_steps)
        res = simulate_discharge(ms, params, c_rate=c_rate, options=opt)
        folder = out if out is not None else file.with_name(file.name + ".resolved")
        curve = res.save_curve(folder / "curve.csv")
        fields = res.save_fields(folder / "fields.h5")
        data = {
            "capacity_Ah": res.capacity_Ah,
            "theoretical_capacity_Ah": res.theoretical_capacity_Ah,
            "energy_Wh": res.energy_Wh,
            "max_conservation_error": res.max_conservation_error,
            "curve": str(curve),
            "fields": str(fields),
            "breakdown": res.final_breakdown_V,
            "wall_time_s": time.perf_counter() - t0,
            "c_rate": res.c_rate,
            "current_A": res.current_A,
            "complete": res.complete,
            "partial": res.partial,
            "status": res.status,
            "steps": res.steps,
            "timing": res.timing,
            "grid": res.grid,
            "parameters": params,
        }
        import json

        from microbat.core.atomic import atomic_write_text

        atomic_write_text(
            folder / "result.json", json.dumps(to_jsonable(data), indent=2, allow_nan=False)
        )

        def human() -> None:
            mark = "" if res.complete else "  [PARTIAL]"
            typer.echo(
                f"{res.capacity_Ah:.4g} A·h of {res.theoretical_capacity_Ah:.4g} A·h "
                f"theoretical at {res.c_rate:g}C, {res.energy_Wh:.4g} W·h; {res.status}{mark}"
            )
            typer.echo(
                "losses at end (V): "
                + ", ".join(f"{k} {v:.4f}" for k, v in res.final_breakdown_V.items())
            )
            typer.echo(f"wrote {curve} and {fields} ({data['wall_time_s']:.1f} s)")

        emit(data, as_json=json_out, human=human)
