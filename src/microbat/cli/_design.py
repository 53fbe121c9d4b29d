"""CLI verb ``design``: search a design space for the best electrode microstructures.

``microbat design --example`` prints a documented design space that runs as is;
``microbat design SPACE.toml --trials 200 --out DIR`` runs (or resumes) the study
kept in ``DIR/study.db`` and writes ``design.json``, ``report.html`` and the best
designs (``best/trial_<n>.h5``) there.

JSON output (``--json``): ``trials``, ``complete``, ``feasible``, ``failed``,
``running``, ``feasible_fraction``, ``directions`` (objective → ``minimize`` /
``maximize``), ``pareto`` (designs with ``number``, ``params``, ``objectives``,
``seed``, ``metrics``), ``importances``, ``binding`` (without a feasible design: the
binding constraint), ``confirmed``, ``sampler``, ``workers``, ``scheduler``,
``accuracy`` (the accuracy-gained table, or null), ``outputs``, ``trial_table``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from microbat.cli.common import (
    JsonOpt,
    Progress,
    QuietOpt,
    check_writable,
    emit,
    guarded,
    with_option_groups,
)


def register(app: typer.Typer) -> None:
    """Register this module's verbs on ``app``."""

    @app.command("design")
    @guarded
    @with_option_groups
    def design(
        space_file: Annotated[
            Path | None,
            typer.Argument(
                help="Design-space TOML file (microbat design --example > space.toml).",
                show_default=False,
            ),
        ] = None,
        example: Annotated[
            bool,
            typer.Option("--example", help="Print a documented example design space and exit."),
        ] = False,
        trials: Annotated[
            int,
            typer.Option(
                "--trials",
                min=1,
                help="Trials the study should hold in all (a resumed study runs the rest).",
            ),
        ] = 50,
        out: Annotated[
            Path | None,
            typer.Option(
                "--out",
                help="Study folder: study.db (resumable), design.json, report.html, best/. "
                "Without it the study is kept in memory and only printed.",
            ),
        ] = None,
        seed: Annotated[
            int | None,
            typer.Option("--seed", help="Seed of the study (default: the file's seed)."),
        ] = None,
        workers: Annotated[
            int | None,
            typer.Option(
                "--workers",
                min=1,
                help="Worker processes of the local Dask cluster (default: all cores); 1 "
                "evaluates in this process, reproducibly.",
            ),
        ] = None,
        scheduler: Annotated[
            str | None,
            typer.Option(
                "--scheduler",
                help="Address of an existing Dask scheduler (tcp://host:8786) instead of a "
                "local cluster.",
            ),
        ] = None,
        fidelity: Annotated[
            str | None,
            typer.Option(
                "--fidelity",
                help="Override evaluation.fidelity: bruggeman, micro or resolved.",
            ),
        ] = None,
        accuracy: Annotated[
            int,
            typer.Option(
                "--accuracy",
                min=0,
                help="Run the accuracy-gained table (P2D Bruggeman and tensor against the "
                "resolved model) on this many Pareto designs after the study (0: off; "
                "each design costs two resolved discharges).",
            ),
        ] = 0,
        quiet: QuietOpt = False,
        json: JsonOpt = False,
    ) -> None:
        """Search a design space (descriptors → microstructure → model) with optuna.

        Multi-objective NSGA-II (or TPE for one objective) under manufacturing
        constraints, trials in parallel on a Dask cluster, a resumable SQLite study,
        the Pareto front and an HTML report.
        """
        from microbat.core.errors import InvalidInputError

        if example:
            from microbat.design.space import example_space

            typer.echo(example_space(), nl=False)
            return
        if space_file is None:
            raise InvalidInputError(
                "give a design-space file (microbat design --example > space.toml writes one)"
            )
        check_writable(out)
        from microbat.design.space import load_space

        space = load_space(space_file)
        if fidelity is not None:
            space = space.with_changes(
                evaluation={**space.evaluation.model_dump(), "fidelity": fidelity}
            )
        if seed is not None:
            space = space.with_changes(seed=seed)
        if scheduler is not None and workers is not None:
            raise InvalidInputError("give --workers (local cluster) or --scheduler, not both")
        storage = None
        made = out is not None and not out.exists()
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            storage = out / "study.db"
        try:
            result, outputs, data = _run(
                space, trials, out, storage, workers, scheduler, accuracy, quiet or json
            )
        except BaseException:
            if made and out is not None and out.is_dir() and not any(out.iterdir()):
                out.rmdir()  # a refused run leaves no empty folder behind
            raise

        def human() -> None:
            names = list(result.directions)
            typer.echo(
                f"{space.name}: {result.trials} trials, {result.feasible} feasible "
                f"({result.failed} failed, {result.running} running), sampler {result.sampler}, "
                f"{result.workers if result.scheduler is None else result.scheduler} worker(s), "
                f"{result.wall_time_s:.1f} s"
            )
            if result.binding:
                typer.echo(result.binding)
            if result.pareto:
                typer.echo(f"Pareto front ({len(result.pareto)} designs):")
                for r in result.pareto[:10]:
                    objs = ", ".join(f"{n} {r['objectives'][n]:.4g}" for n in names)
                    pars = ", ".join(
                        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in r["params"].items()
                    )
                    typer.echo(f"  trial {r['number']}: {objs}  [{pars}]")
            for k in ("report", "json", "best"):
                if k in outputs:
                    typer.echo(f"{k}: {outputs[k]}")

        emit(data, as_json=json, human=human, quiet=quiet)


def _run(
    space: Any,
    trials: int,
    out: Path | None,
    storage: Path | None,
    workers: int | None,
    scheduler: str | None,
    accuracy: int,
    quiet: bool,
) -> tuple[Any, dict[str, str], dict[str, Any]]:
    """The study, the accuracy table and the outputs, with progress on stderr."""
    from microbat.design.study import run_study

    with Progress("design", quiet=quiet) as progress:
        progress.stage(
            f"{space.name}: {trials} trials, {space.evaluation.fidelity} fidelity", total=trials
        )

        def report(done: int, total: int, best: str, feasible: float) -> None:
            progress.step(
                f"{done}/{total} trials, {best}, feasible {100 * feasible:.0f} %", done=done
            )

        result = run_study(
            space,
            n_trials=trials,
            storage=storage,
            workers=workers,
            scheduler=scheduler,
            progress=report,
        )
        outputs: dict[str, str] = {}
        acc = None
        if out is not None:
            from microbat.design.report import best_designs, run_accuracy, write_study_outputs

            progress.stage("regenerating the best designs")
            best = best_designs(result, space, max(space.study.best, accuracy))
            if accuracy and best:
                progress.stage(f"accuracy-gained table on {min(accuracy, len(best))} designs")
                acc = run_accuracy(
                    result, space, best[:accuracy], progress=lambda t: progress.step(t)
                )
            progress.stage(f"writing {out}")
            outputs = write_study_outputs(
                result, space, out, best=best[: space.study.best], accuracy=acc
            )
    data: dict[str, Any] = result.to_dict()
    data["accuracy"] = acc
    data["outputs"] = outputs
    return result, outputs, data
