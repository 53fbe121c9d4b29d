"""CLI verb ``demo``: the built-in example."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from microbat.cli.common import JsonOpt, emit, guarded


def register(app: typer.Typer) -> None:
    """Register this module's verbs on ``app``."""

    @app.command("demo")
    @guarded
    def demo(
        out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("microbat-demo"),
        size: Annotated[
            int, typer.Option("--size", help="Edge of the cubic synthetic volume in voxels.")
        ] = 96,
        voxel_size: Annotated[
            str, typer.Option("--voxel-size", help="Voxel edge (metres or with a unit).")
        ] = "0.4um",
        seed: Annotated[int, typer.Option("--seed", help="Seed of the generator.")] = 0,
        as_json: JsonOpt = False,
    ) -> None:
        """Run the main job on a built-in example.

        Generates a synthetic three-phase cathode, characterises it (fractions,
        interface areas, sizes, connectivity, tortuosity, conductivity) and writes
        the results to OUT.
        """
        from rich.console import Console

        from microbat.core.units import parse_length
        from microbat.pipeline.demo import run_demo

        console = Console(stderr=True, quiet=as_json)
        with console.status("starting") as status:
            res = run_demo(
                out,
                shape=(size, size, size),
                voxel_size=parse_length(voxel_size),
                seed=seed,
                progress=lambda msg: status.update(msg),
            )

        def human() -> None:
            s = res.summary
            c = Console()
            c.print(f"[bold]microbat demo[/] — results in [cyan]{res.out_dir}[/]")
            for k, v in s["volume_fractions"].items():
                c.print(f"  volume fraction {k:<8} {v:.3f}")
            taus = ", ".join("inf" if t is None else f"{t:.3f}" for t in s["tau_pore"])
            c.print(f"  pore tortuosity factor (axes 0,1,2): {taus}")
            c.print(f"  Bruggeman estimate: {s['bruggeman_tau_pore']}")
            for role, path in res.files.items():
                c.print(f"  {role:<15} {path}")

        emit(res, as_json=as_json, human=human)
