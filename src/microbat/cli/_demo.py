"""CLI verb ``demo``: the built-in example (the README's main job)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from microbat.cli.common import (
    JsonOpt,
    QuietOpt,
    check_writable,
    emit,
    guarded,
    interrupt_exit_code,
)


def register(app: typer.Typer) -> None:
    """Register this module's verbs on ``app``."""

    @app.command("demo")
    @guarded
    def demo(
        out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("microbat-demo"),
        size: Annotated[
            int, typer.Option("--size", help="Edge of the cubic synthetic phantom in voxels.")
        ] = 96,
        voxel_size: Annotated[
            str, typer.Option("--voxel-size", help="Voxel edge (metres or with a unit).")
        ] = "0.4um",
        seed: Annotated[int, typer.Option("--seed", help="Seed of the generator.")] = 0,
        quiet: QuietOpt = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Run the main job on a built-in example: the digital twin of a phantom.

        Generates a synthetic three-phase cathode and its noisy, blurred grayscale
        tomogram, then runs the whole twin on the tomogram (denoise, segment,
        connectivity, metrics, tortuosity with Bruggeman comparison and random-walk
        cross-check, micro-informed rate capability and voltage breakdown, EIS) and
        writes OUT/report.html and OUT/results.json. Rerunning resumes. Progress goes
        to stderr: bars on a terminal, a line per stage (and every 10 s within one)
        otherwise; --quiet shows errors only.
        """
        from rich.console import Console

        from microbat.cli._twin import twin_phases, twin_progress
        from microbat.core.units import parse_length
        from microbat.pipeline.twin import run_twin

        check_writable(out)
        progress = twin_progress("demo", quiet=quiet)
        try:
            with progress:
                res = run_twin(
                    None,
                    synthetic=True,
                    out_dir=out,
                    overrides={
                        "synthetic.shape": [size] * 3,
                        "synthetic.voxel_size": parse_length(voxel_size),
                        "synthetic.seed": seed,
                    },
                    progress=progress,
                )
        except KeyboardInterrupt as exc:
            done = ", ".join(progress.done) or "none"
            typer.echo(
                f"interrupted during stage {progress.stage or 'start'!r}; completed stages are "
                f"kept in {out} ({done}); rerun the same command to resume",
                err=True,
            )
            raise typer.Exit(interrupt_exit_code(exc)) from None
        twin_phases(res, phases_given=False, input_path=None)

        def human() -> None:
            c = Console()
            c.print(f"[bold]microbat demo[/] — the digital twin of a {size}³ phantom")
            c.print(f"  report  [cyan]{res.report}[/]")
            c.print(f"  results [cyan]{res.results}[/]")
            c.print(f"  wall time {res.wall_time_s:.0f} s")

        emit(res, as_json=as_json, human=human, quiet=quiet)
        if getattr(res, "failed", False):
            raise typer.Exit(1)
