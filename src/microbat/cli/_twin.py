"""CLI verb ``twin``: the whole pipeline from an image to the HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from microbat.cli.common import (
    CropOpt,
    JsonOpt,
    PhasesOpt,
    Progress,
    ThicknessAxisOpt,
    VoxelSizeOpt,
    check_writable,
    emit,
    guarded,
    interrupt_exit_code,
    phase_source,
    record_phases,
)


class _Progress:
    """Rich progress bars: one overall bar and one bar per stage, with ETA."""

    def __init__(self, console: Any, enabled: bool) -> None:
        self.enabled = enabled
        self.console = console
        self.bar: Any = None
        self.total: Any = None
        self.task: Any = None
        self.stage = ""
        self.done: list[str] = []

    def __enter__(self) -> _Progress:
        return self

    def _start(self) -> None:
        # Started on the run's first event, so that an input refused before any
        # work (missing voxel size, not an image) prints only its error line.
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.bar.__enter__()

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def __call__(self, event: Any) -> None:
        kind = event.kind
        if kind == "stage_start":
            self.stage = event.stage
        elif kind == "stage_end" and event.status == "complete":
            self.done.append(event.stage)
        if kind == "start" and self.enabled and self.bar is None:
            self._start()
        if self.bar is None:
            return
        if kind == "start":
            self.total = self.bar.add_task("[bold]digital twin", total=event.n_stages)
        elif kind == "stage_start":
            self.task = self.bar.add_task(f"  {event.title}", total=max(event.n_steps, 1))
        elif kind == "step" and self.task is not None:
            task = self.bar.tasks[self.task] if isinstance(self.task, int) else None
            if task is not None and task.completed + 1 >= task.total:
                self.bar.update(self.task, total=task.total + 1)
            self.bar.update(
                self.task, advance=1, description=f"  {event.title}: {event.message}"[:60]
            )
        elif kind == "stage_end" and self.task is not None:
            label = "reused" if event.reused else event.status.replace("_", " ")
            self.bar.update(
                self.task,
                completed=self.bar.tasks[self.task].total,
                description=f"  {event.title} [dim]({label})[/]",
            )
            self.bar.advance(self.total, 1)
            self.task = None


class _TwinLines:
    """The twin's progress events as plain lines on stderr (not a terminal; see Progress).

    One line when a stage starts and when it ends (with its status and time), the
    stage's steps at most every ``Progress.interval_s``, and a ``still ...`` line
    when a stage runs that long without a step.
    """

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.n = 0
        self.stage = ""
        self.done: list[str] = []

    def __enter__(self) -> _TwinLines:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, event: Any) -> None:
        kind = event.kind
        where = f"[{event.index + 1}/{self.n}] {event.title}"
        if kind == "start":
            self.n = event.n_stages
            self.progress.stage(event.message)
        elif kind == "stage_start":
            self.stage = event.stage
            self.progress.stage(where)
        elif kind == "step":
            self.progress.step(f"{where}: {event.message}")
        elif kind == "stage_end":
            if event.status == "complete":
                self.done.append(event.stage)
            label = "reused" if event.reused else event.status.replace("_", " ")
            self.progress.note(f"{where}: {label} ({event.wall_time_s:.1f} s)")
            self.progress.text = ""  # between stages: nothing to say "still" about


def twin_progress(verb: str, *, quiet: bool) -> Any:
    """The ``progress`` callback of a twin run: rich bars on a terminal, else plain lines."""
    from rich.console import Console

    lines = Progress(verb, quiet=quiet)
    if lines.terminal:
        return _Progress(Console(stderr=True, quiet=quiet), enabled=not quiet)
    return _TwinLines(lines)


def twin_phases(res: Any, *, phases_given: bool, input_path: Path | None) -> None:
    """Record the twin's phase table (labelled input, or segmentation) for emit."""
    import json

    try:
        stages = json.loads(Path(res.results).read_text(encoding="utf-8"))["stages"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    inp = (stages.get("input") or {}).get("result") or {}
    seg = (stages.get("segment") or {}).get("result") or {}
    if inp.get("labelled") and inp.get("phases"):
        own = False
        if input_path is not None and not phases_given:
            from microbat.io import read_volume

            try:
                with read_volume(input_path, lazy=True) as vol:
                    own = bool(vol.metadata.get("phases"))
            except OSError:
                own = False
        source = phase_source(given=phases_given, own=own, n_phases=len(inp["phases"]))
        record_phases(inp["phases"], source)
    elif seg.get("phases"):
        record_phases(seg["phases"], "segmented from the grayscale image, darkest to brightest")


def _check_crop(crop: str, input_path: Path | None) -> None:
    """Refuse a malformed ``--crop``, or one outside the file's shape, before any work."""
    from microbat.cli.common import parse_crop
    from microbat.core.errors import MicrobatError
    from microbat.io import read_volume
    from microbat.pipeline.stages.input import crop_slices

    parse_crop(crop)
    if input_path is None or not input_path.exists():
        return  # the phantom's shape comes from the settings; a missing file fails later
    try:
        with read_volume(input_path, lazy=True) as vol:
            shape = vol.shape
    except (MicrobatError, OSError):
        return  # not readable alone (e.g. input.dataset in the config): the run says why
    crop_slices(crop, shape)


def register(app: typer.Typer) -> None:
    """Register this module's verbs on ``app``."""

    @app.command("twin")
    @guarded
    def twin(
        input_path: Annotated[
            Path | None,
            typer.Argument(
                help="Grayscale or labelled volume (TIFF, HDF5, Zarr, raw, NumPy, VTI, or a "
                "folder of TIFF slices). Leave out with --synthetic.",
                show_default=False,
            ),
        ] = None,
        out: Annotated[
            Path, typer.Option("--out", "-o", help="Output folder (created; resumed if it exists).")
        ] = Path("microbat-twin"),
        voxel_size: VoxelSizeOpt = None,
        config: Annotated[
            Path | None,
            typer.Option("--config", "-c", help="TOML settings file (see docs/twin.md)."),
        ] = None,
        settings: Annotated[
            list[str] | None,
            typer.Option(
                "--set",
                help="Override one setting, section.key=value (repeatable), e.g. "
                "--set segment.beta=1.0 --set cell.c_rates=[0.1,1,3].",
            ),
        ] = None,
        phases: PhasesOpt = None,
        thickness_axis: ThicknessAxisOpt = None,
        crop: CropOpt = None,
        chunks: Annotated[
            int | None,
            typer.Option(
                "--chunks",
                help="Run the imaging stages out of core in cubic chunks of this edge "
                "(voxels), for volumes larger than memory.",
            ),
        ] = None,
        scheduler: Annotated[
            str | None,
            typer.Option(
                "--scheduler",
                help="dask.distributed scheduler address for the chunked stages "
                "(default: local threads).",
            ),
        ] = None,
        synthetic: Annotated[
            bool,
            typer.Option("--synthetic", help="Run on the built-in synthetic phantom instead."),
        ] = False,
        force: Annotated[
            bool,
            typer.Option(
                "--force",
                help="Replace the results of another input in --out (or write into a "
                "non-empty folder that is not a twin folder).",
            ),
        ] = False,
        quiet: Annotated[
            bool, typer.Option("--quiet", "-q", help="No progress bars or summary; errors only.")
        ] = False,
        verbose: Annotated[
            bool, typer.Option("--verbose", "-v", help="Also print the log lines on stderr.")
        ] = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Build the digital twin of an electrode image and write an HTML report.

        Runs denoise → segment → connectivity → metrics → transport → cell → EIS → report,
        saving each stage's results in OUT/stages as it finishes. Rerunning the same
        command resumes: stages whose input and settings did not change are reused,
        the rest is recomputed. OUT/report.html is a self-contained report;
        OUT/results.json holds every number.
        """
        import logging

        from rich.console import Console

        from microbat.pipeline.twin import run_twin

        check_writable(out)
        overrides: list[str] = list(settings or [])
        if phases is not None:
            overrides.append(f'input.phases="{phases}"')
        if thickness_axis is not None:
            overrides.append(f"input.thickness_axis={thickness_axis}")
        if crop is not None:
            _check_crop(crop, None if synthetic else input_path)
            overrides.append(f'input.crop="{crop}"')
        if chunks is not None:
            overrides.append(f"scale.chunks={chunks}")
        if scheduler is not None:
            overrides.append(f'scale.scheduler="{scheduler}"')
        err = Console(stderr=True, quiet=quiet)
        handler = None
        if verbose and not quiet:
            from rich.logging import RichHandler

            handler = RichHandler(console=err, show_path=False, level=logging.INFO)
            logging.getLogger("microbat").addHandler(handler)
        progress = twin_progress("twin", quiet=quiet)
        try:
            with progress:
                res = run_twin(
                    None if synthetic else input_path,
                    out_dir=out,
                    voxel_size=voxel_size,
                    config=config,
                    overrides=overrides,
                    synthetic=synthetic,
                    force=force,
                    progress=progress,
                )
        except KeyboardInterrupt as exc:
            if not progress.stage:
                typer.echo("interrupted before any stage started; nothing was written", err=True)
            else:
                done = ", ".join(progress.done) or "none"
                typer.echo(
                    f"interrupted during stage {progress.stage!r}; completed stages are kept "
                    f"in {out} ({done}); rerun the same command to resume",
                    err=True,
                )
            raise typer.Exit(interrupt_exit_code(exc)) from None
        finally:
            if handler is not None:
                logging.getLogger("microbat").removeHandler(handler)

        def human() -> None:
            c = Console()
            c.print(f"[bold]microbat twin[/] — {res.out_dir} ({res.wall_time_s:.1f} s)")
            box = (
                (res.provenance.parameters.get("input") or {}).get("crop")
                if res.provenance
                else None
            )
            if box:
                c.print(f"input cropped to {box} (voxels, array order)", highlight=False)
            for s in res.stages:
                tag = "reused" if s.reused else f"{s.wall_time_s:6.1f} s"
                color = {"complete": "green", "failed": "red"}.get(s.status, "yellow")
                line = f"  {s.title:<48} [{color}]{s.status:<13}[/] {tag}"
                if s.reason:
                    line += f"  [dim]{s.reason}[/]"
                c.print(line, highlight=False)
            diag = res.summary.get("diagnosis")
            if diag:
                c.print(f"[bold]Diagnosis:[/] {diag}", highlight=False)
            if res.report is not None:
                c.print(f"Report: [cyan]{res.report}[/]")
            c.print(f"Results: [cyan]{res.results}[/]  Log: [cyan]{res.log}[/]")

        twin_phases(
            res, phases_given=phases is not None, input_path=None if synthetic else input_path
        )
        if not quiet or as_json:
            emit(res, as_json=as_json, human=human)
        if res.failed:
            typer.echo(
                f"error: stage(s) {', '.join(res.failed)} failed: "
                + "; ".join(f"{s.name}: {s.reason}" for s in res.stages if s.status == "failed")
                + f" (the report in {res.out_dir} shows what completed)",
                err=True,
            )
            raise typer.Exit(1)
