"""CLI verb ``randomwalk``: random-walk (Einstein) tortuosity of a phase."""

from __future__ import annotations

import math
from typing import Annotated

import typer

from microbat.cli.common import (
    DatasetOpt,
    InPath,
    InputOptions,
    JsonOpt,
    Progress,
    QuietOpt,
    emit,
    guarded,
    with_option_groups,
)

PhaseOpt = Annotated[
    str,
    typer.Option("--phase", help="Phase(s) the walkers move in: names or roles (pore, pore,cbd)."),
]
WalkersOpt = Annotated[int, typer.Option("--walkers", help="Number of walkers.")]
StepsOpt = Annotated[int, typer.Option("--steps", help="Steps per walker.")]
MaxStepsOpt = Annotated[
    int | None,
    typer.Option(
        "--max-steps",
        help="Continue the walk, doubling it, until the plateau is reached or this many steps.",
    ),
]
StepLengthOpt = Annotated[
    float, typer.Option("--step-length", help="Step length in units of the smallest voxel edge.")
]
BoundaryOpt = Annotated[
    str,
    typer.Option(
        "--boundary",
        help="Images beyond the faces: mirror (matches a fixed-face diffusion solve) or periodic.",
    ),
]
ReleaseOpt = Annotated[
    str,
    typer.Option(
        "--release", help="Release walkers in the whole phase or only its percolating clusters."
    ),
]
BatchesOpt = Annotated[
    int, typer.Option("--batches", help="Independent batches for the confidence intervals.")
]
RwAxisOpt = Annotated[
    str,
    typer.Option(
        "--axis",
        help="Axis to report: 0, 1, 2, or all (the walk itself is 3D and measures every "
        "axis at once; with one axis, plateau_reached is that axis's).",
    ),
]
RwSeedOpt = Annotated[
    int | None,
    typer.Option("--seed", help="Seed of the walk (default: fresh, reported in the output)."),
]


@with_option_groups
def randomwalk(
    file: InPath,
    phase: PhaseOpt = "pore",
    walkers: WalkersOpt = 10_000,
    steps: StepsOpt = 10_000,
    max_steps: MaxStepsOpt = None,
    step_length: StepLengthOpt = 0.5,
    boundary: BoundaryOpt = "mirror",
    release: ReleaseOpt = "phase",
    batches: BatchesOpt = 10,
    seed: RwSeedOpt = None,
    axis: RwAxisOpt = "all",
    *,
    inputs: InputOptions,
    dataset: DatasetOpt = None,
    quiet: QuietOpt = False,
    json: JsonOpt = False,
) -> None:
    """Tortuosity per axis from random walkers (tau = D0 / D_walk, no porosity factor).

    JSON keys: tau (per axis, array axis order; null = does not percolate), ci95,
    d_over_d0, deff_over_d0, plateau_reached (over the reported axes), axes,
    walker_steps_per_s_per_core, seed, ...
    """
    import warnings

    from microbat.core.errors import InvalidInputError
    from microbat.transport._steady import PercolationWarning
    from microbat.transport.randomwalk import random_walk

    progress = Progress("randomwalk", quiet=quiet).start()
    progress.stage(f"reading {file}")
    ms = inputs.load(file, dataset)
    if axis.strip().lower() == "all":
        axes = list(range(ms.ndim))
    else:
        try:
            axes = [int(axis)]
            if not 0 <= axes[0] < ms.ndim:
                raise ValueError
        except ValueError:
            raise InvalidInputError(
                f"--axis {axis!r}: use an axis of this {ms.ndim}D image "
                f"({', '.join(map(str, range(ms.ndim)))}) or all"
            ) from None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PercolationWarning)
        progress.stage(
            f"walking {walkers} walkers x {steps} steps in {phase}"
            + (f" (doubling up to {max_steps} steps until the plateau)" if max_steps else "")
        )
        result = random_walk(
            ms,
            phase=phase,
            n_walkers=walkers,
            n_steps=steps,
            max_steps=max_steps,
            step_length=step_length,
            boundary=boundary,  # type: ignore[arg-type]
            release=release,  # type: ignore[arg-type]
            n_batches=batches,
            seed=seed,
        )
    for w in caught:
        typer.echo(f"warning: {w.message}", err=True)
    plateau = all(result.plateau_reached_axes[a] for a in axes)
    data = result.to_dict()
    data["axes"] = axes
    data["plateau_reached"] = plateau

    def human() -> None:
        def num(x: float) -> str:
            return "inf" if math.isinf(x) else f"{x:.4g}"

        typer.echo(
            f"random walk in {', '.join(result.phase)} (porosity {result.porosity:.4f}), "
            f"{result.boundary} images, {result.n_walkers} walkers x {result.n_steps} steps"
        )
        typer.echo(f"{'axis':<6}{'tau':>10}{'95% CI':>22}{'D/D0':>10}{'Deff/D0':>10}{'plateau':>9}")
        for a in axes:
            tau = result.tau[a]
            lo, hi = result.ci95[a]
            typer.echo(
                f"{a:<6}{num(tau):>10}{'[' + num(lo) + ', ' + num(hi) + ']':>22}"
                f"{result.d_over_d0[a]:>10.4f}{result.deff_over_d0[a]:>10.4f}"
                f"{'yes' if result.plateau_reached_axes[a] else 'NO':>9}"
            )
        typer.echo(
            f"{result.walker_steps_per_s_per_core:.3g} walker-steps/s per core "
            f"({result.threads} threads); seed {result.seed}"
        )
        if not plateau:
            what = "every axis" if len(axes) > 1 else f"axis {axes[0]}"
            typer.echo(f"the plateau was not reached along {what}: walk longer (--steps)")

    emit(data, as_json=json, human=human, quiet=quiet)


def register(app: typer.Typer) -> None:
    """Register this module's verbs on app."""
    app.command("randomwalk")(guarded(randomwalk))
