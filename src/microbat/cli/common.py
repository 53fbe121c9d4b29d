"""Shared machinery of the command line: the app, options, output, errors."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_type_hints

import typer

from microbat.core.errors import MicrobatError

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="microbat",
    help=(
        "microbat: from a 3D X-ray CT image of a battery electrode to a digital twin.\n\n"
        "Lengths are in metres or carry a unit (0.4um). Add --json to any verb for a "
        "machine-readable result; --debug shows tracebacks."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

_STATE: dict[str, bool] = {"debug": False}


def _print_version(value: bool) -> None:
    if value:
        from microbat._version import __version__

        typer.echo(f"microbat {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the full traceback when a verb fails.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Microbat command line."""
    _STATE["debug"] = debug


# ----------------------------------------------------------------- options
PhasesOpt = Annotated[
    str | None,
    typer.Option(
        "--phases",
        help=(
            "Phase table for a labelled file without one, name=label pairs in label order, "
            "e.g. pore=0,cbd=1,active=2 (roles inferred from names; name:role=label to set one)."
        ),
    ),
]
VoxelSizeOpt = Annotated[
    str | None,
    typer.Option(
        "--voxel-size",
        help="Voxel edge in metres or with a unit (0.4um); one value or one per axis (a,b,c).",
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print a machine-readable JSON result on stdout.")
]
QuietOpt = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        help="No progress on stderr and no text summary: errors only (--json still prints).",
    ),
]
ThicknessAxisOpt = Annotated[
    int | None,
    typer.Option("--thickness-axis", help="Axis through the electrode thickness (0, 1 or 2)."),
]
DatasetOpt = Annotated[
    str | None,
    typer.Option(
        "--dataset",
        help="Dataset path in HDF5 (/exchange/data), array in Zarr or key in .npz.",
    ),
]
CropOpt = Annotated[
    str | None,
    typer.Option(
        "--crop",
        help="Work on a sub-volume, voxel ranges per axis in array order: z0:z1,y0:y1,x0:x1 "
        "(e.g. 0:64,0:64,0:64; an empty bound runs to the edge). Only that part is read.",
    ),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the random generator.")]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        "--threads",
        min=1,
        help="Threads in all: Numba, BLAS and worker processes together (default: "
        "MICROBAT_THREADS, else the cores available to the process).",
    ),
]
InPath = Annotated[Path, typer.Argument(help="Input file or folder.", show_default=False)]
OutPath = Annotated[Path, typer.Argument(help="Output file.", show_default=False)]


# ----------------------------------------------------------- option groups
class OptionGroup:
    """Base of a set of options that several verbs take together, as one parameter.

    A subclass is a frozen dataclass whose fields are written like verb parameters
    (``name: SomeOpt = default``). In a verb decorated with :func:`with_option_groups`,
    a parameter annotated with the subclass stands for those options, in field order,
    at its place in the signature (so ``--help`` lists them there); the verb receives
    one instance of the group.
    """


@dataclasses.dataclass(frozen=True)
class InputOptions(OptionGroup):
    """``--phases``, ``--voxel-size``, ``--thickness-axis``, ``--crop``: how to read FILE."""

    phases: PhasesOpt = None
    voxel_size: VoxelSizeOpt = None
    thickness_axis: ThicknessAxisOpt = None
    crop: CropOpt = None

    def load(self, path: Path, dataset: str | None = None, *, voxel_size_required: bool = True):
        """Read the microstructure at ``path`` with these overrides (see :func:`load_input`)."""
        return load_input(
            path, self.phases, self.voxel_size, self.thickness_axis, dataset, crop=self.crop,
            voxel_size_required=voxel_size_required,
        )  # fmt: skip


def with_option_groups(func: F) -> F:
    """Show typer each :class:`OptionGroup` parameter of a verb as the group's options.

    The options take the place of the group parameter in the signature; on a call
    their values are gathered back into one instance of the group.
    """
    sig = inspect.signature(func, eval_str=True)
    params: list[inspect.Parameter] = []
    groups: dict[str, tuple[type, list[str]]] = {}
    for p in sig.parameters.values():
        group = p.annotation
        if not (isinstance(group, type) and issubclass(group, OptionGroup)):
            params.append(p)
            continue
        hints = get_type_hints(group, include_extras=True)
        fields = dataclasses.fields(group)  # type: ignore[arg-type]
        groups[p.name] = (group, [f.name for f in fields])
        params += [
            inspect.Parameter(f.name, p.kind, default=f.default, annotation=hints[f.name])
            for f in fields
        ]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for name, (group, names) in groups.items():
            kwargs[name] = group(**{n: kwargs.pop(n) for n in names if n in kwargs})
        return func(*args, **kwargs)

    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    wrapper.__annotations__["return"] = sig.return_annotation
    return wrapper  # type: ignore[return-value]


#: Exit codes after Ctrl-C (SIGINT) and SIGTERM, the shell's 128 + signal number.
EXIT_SIGINT, EXIT_SIGTERM = 130, 143

# What an interrupted verb kept (said on stderr); verbs that keep more say so.
_KEPT_DEFAULT = "nothing was written (outputs are written, atomically, only when the work is done)"


class _SigtermAsInterrupt:
    """While active, SIGTERM raises ``KeyboardInterrupt("SIGTERM")`` (main thread only).

    So a batch scheduler's SIGTERM unwinds a verb like Ctrl-C does: worker
    processes are terminated (:func:`microbat.core.processes.worker_pool`),
    ``finally`` blocks run and the verb says what it kept.
    """

    def __init__(self) -> None:
        self.hit = False
        self.old: Any = None

    def _handler(self, signum: int, frame: Any) -> None:
        self.hit = True
        raise KeyboardInterrupt("SIGTERM")

    def __enter__(self) -> _SigtermAsInterrupt:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self.old = signal.signal(signal.SIGTERM, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        if self.old is not None:
            signal.signal(signal.SIGTERM, self.old)


_SIGNALS: list[_SigtermAsInterrupt] = []


def interrupt_exit_code(exc: BaseException | None = None) -> int:
    """143 when the running verb was stopped by SIGTERM, else 130 (Ctrl-C)."""
    if (exc is not None and str(exc) == "SIGTERM") or any(t.hit for t in _SIGNALS):
        return EXIT_SIGTERM
    return EXIT_SIGINT


def with_threads_option(func: F) -> F:
    """Give a verb the shared ``--threads`` option and apply it before the verb runs.

    The option is added to the verb's signature (last, keyword-only), so every verb
    wrapped by :func:`guarded` gets it with the same help; the value goes to
    :func:`microbat.core.threads.set_threads` (Numba, BLAS, worker processes).
    """
    sig = inspect.signature(func, eval_str=True)
    if "threads" in sig.parameters:
        return func
    extra = inspect.Parameter(
        "threads", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ThreadsOpt
    )

    @functools.wraps(func)
    def wrapper(*args: Any, threads: int | None = None, **kwargs: Any) -> Any:
        from microbat.core.threads import set_threads

        set_threads(threads)
        return func(*args, **kwargs)

    params = [*sig.parameters.values(), extra]
    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    wrapper.__annotations__["return"] = sig.return_annotation
    return wrapper  # type: ignore[return-value]


def guarded(func: F) -> F:
    """Turn microbat and OS errors into a one-line message and exit code 1.

    Ctrl-C and SIGTERM stop the verb (worker processes included) with exit code 130
    or 143 and one line on stderr saying what was kept.
    """
    func = with_threads_option(func)  # --threads on every verb

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _INPUT.clear()
        with _SigtermAsInterrupt() as term:
            _SIGNALS.append(term)
            try:
                return func(*args, **kwargs)
            except typer.Exit:
                raise
            except (MicrobatError, OSError, ValueError, KeyError, ImportError) as exc:
                close_progress()
                if _STATE["debug"]:
                    raise
                msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                typer.echo(f"error: {msg}", err=True)
                raise typer.Exit(1) from None
            except KeyboardInterrupt as exc:
                close_progress()
                code = interrupt_exit_code(exc)
                sig = "SIGTERM" if code == EXIT_SIGTERM else "Ctrl-C (SIGINT)"
                typer.echo(f"interrupted by {sig}: {_KEPT_DEFAULT}", err=True)
                raise typer.Exit(code) from None
            finally:
                close_progress()
                _SIGNALS.remove(term)

    return wrapper  # type: ignore[return-value]


def check_writable(path: Path | None, *, what: str = "--out", folder: bool = True) -> None:
    """Fail at once, with one line, when an output cannot be written there.

    Called by the verbs before any work, so that an unwritable ``--out`` is not
    found after minutes of computing. The nearest existing folder on the way to
    ``path`` must be a folder in which a file can be created (a nameless
    temporary file is made and dropped: this also catches read-only mounts and
    permissions the process's user bypasses on paper).

    Parameters
    ----------
    path : Path or None
        The output folder (``folder=True``) or file; ``None`` checks nothing.
    what : str
        How the user named it, for the message (``--out``, ``DST``).
    folder : bool, default True
        Whether ``path`` names a folder to write into (else a file to write).

    Raises
    ------
    FileFormatError
        ``path`` cannot be written; the message says why and what to do.
    """
    import tempfile

    from microbat.core.errors import FileFormatError

    if path is None:
        return
    p = Path(path).expanduser()
    if folder and p.exists() and not p.is_dir():
        raise FileFormatError(f"{what} {p}: is a file, not a folder; give a folder")
    target = p if folder else p.parent
    base = target
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir():
        raise FileFormatError(
            f"{what} {p}: {base} is a file, so no folder can be made in it; "
            "choose another output path"
        )
    try:
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise FileFormatError(
            f"{what} {p}: cannot write in {base} ({reason}); choose a folder you can write to"
        ) from None


def emit(
    result: Any,
    *,
    as_json: bool,
    human: Callable[[], None] | None = None,
    quiet: bool = False,
) -> None:
    """Print a result: JSON on stdout with ``--json``, else the human rendering.

    When the verb read a labelled input (:func:`load_input`), the text output
    starts with the line saying which label was taken as which phase, and a JSON
    object gets ``phase_table`` (``name``, ``label``, ``role`` of each phase),
    ``phase_table_source`` and, for a cropped input, ``crop``. ``quiet`` prints
    nothing in text mode.
    """
    close_progress()
    if as_json:
        data = result.to_dict() if hasattr(result, "to_dict") else result
        if isinstance(data, dict) and _INPUT:
            data = {**data, **_INPUT["json"]}
        from microbat.core.results import to_jsonable

        sys.stdout.write(json.dumps(to_jsonable(data), indent=2, allow_nan=False) + "\n")
        return
    if quiet:
        return
    for line in _INPUT.get("lines", ()):
        typer.echo(line)
    if human is not None:
        human()
    else:
        from rich.pretty import pprint

        from microbat.core.results import to_jsonable

        pprint(to_jsonable(result.to_dict() if hasattr(result, "to_dict") else result))


def parse_crop(text: str) -> tuple[slice, ...]:
    """Read ``--crop z0:z1,y0:y1,x0:x1`` as slices (see :func:`microbat.io.volume.parse_crop`).

    Examples
    --------
    >>> parse_crop("0:64,:,10:")
    (slice(0, 64, None), slice(None, None, None), slice(10, None, None))
    """
    from microbat.io.volume import parse_crop as parse

    return parse(text, what="--crop")


# The labelled input a verb read through load_input: the lines its text output
# starts with and the keys its JSON output gets (see emit). Reset by guarded.
_INPUT: dict[str, Any] = {}


def phase_source(*, given: bool, own: bool, n_phases: int) -> str:
    """Where the phase table of a labelled input came from, in words."""
    from microbat.core.phases import BINARY_CONVENTION

    if given:
        return "from --phases"
    if own:
        return "the file's phase table"
    if n_phases == 2:
        return (
            f"binary image, no phase table: {BINARY_CONVENTION}; --phases pore=0,active=1 "
            "for the opposite"
        )
    return "default for labels 0, 1, 2 without a phase table; --phases to change"


def record_phases(phases: Any, source: str) -> None:
    """Make :func:`emit` say which label is which phase (a verb that reads no file itself)."""
    from microbat.core.phases import PhaseTable

    table = phases if isinstance(phases, PhaseTable) else PhaseTable.from_list(phases)
    _INPUT.update(
        lines=[phase_line(table, source)],
        json={"phase_table": table.to_list(), "phase_table_source": source},
    )


def phase_line(phases: Any, source: str) -> str:
    """``phases: pore=1 (electrolyte), active=0 (active) [source]``: which label is which."""
    items = ", ".join(f"{p.name}={p.label} ({p.role.value})" for p in phases.values())
    return f"phases: {items} [{source}]"


def load_input(
    path: Path,
    phases: str | None = None,
    voxel_size: str | None = None,
    thickness_axis: int | None = None,
    dataset: str | None = None,
    *,
    crop: str | None = None,
    voxel_size_required: bool = True,
):
    """Read a microstructure from any supported file, applying CLI overrides.

    Records which label was taken as which phase, and where that table came from
    (``--phases``, the file, or the default of a binary or three-label image), for
    :func:`emit`. With ``crop`` only the sub-volume is read. Verbs whose results do
    not depend on the voxel size (τ, conductivity ratios) pass
    ``voxel_size_required=False``: a file without one then gives cubic voxels of
    unknown size (``voxel_size="unknown"``), said in the output, and no length.
    """
    import numpy as np

    from microbat.core.units import parse_voxel_size
    from microbat.io.readers import microstructure_from_volume, read_volume

    bounds = parse_crop(crop) if crop else None
    vol = read_volume(path, dataset=dataset, lazy=bounds is not None)
    whole = vol
    try:
        if bounds is not None:
            vol = vol.crop(bounds)
        ms = microstructure_from_volume(
            vol,
            phases=phases,
            voxel_size=parse_voxel_size(voxel_size) if voxel_size else None,
            thickness_axis=thickness_axis,
            require_voxel_size=voxel_size_required,
        )
    finally:
        if not isinstance(whole.data, np.memmap):
            whole.close()
    own = vol.metadata.get("microbat_format") == "microstructure" and vol.metadata.get("phases")
    source = phase_source(given=phases is not None, own=bool(own), n_phases=len(ms.phases))
    lines = [phase_line(ms.phases, source)]
    record: dict[str, Any] = {"phase_table": ms.phases.to_list(), "phase_table_source": source}
    if bounds is not None:
        box = vol.metadata["crop"]
        lines.insert(
            0,
            f"input: {path} cropped to "
            + ",".join(f"{a}:{b}" for a, b in box)
            + f" of {' x '.join(map(str, whole.shape))}",
        )
        record["crop"] = box
    if not ms.voxel_size_known:
        lines.append(
            "voxel size: not given (cubic voxels assumed; the results are dimensionless, "
            "lengths are not reported; --voxel-size to give it)"
        )
        record["voxel_size_known"] = False
    _INPUT.update(lines=lines, json=record)
    return ms


# ---------------------------------------------------------------- progress
#: Seconds between two plain-text progress lines while a stage runs (overridden by
#: the environment variable ``MICROBAT_PROGRESS_INTERVAL``).
PROGRESS_INTERVAL_S = 10.0


class Progress:
    """Feedback on long work, on stderr: a live line on a terminal, plain lines elsewhere.

    On a terminal (stderr is a TTY) a rich spinner shows the current stage, a bar
    when the stage knows its total, and the elapsed time. Elsewhere (a log file, CI,
    a notebook, a pipe) it writes plain lines, ``microbat VERB [12 s] stage ...``:
    one when a stage starts, at most one per :data:`PROGRESS_INTERVAL_S` for the
    steps inside it, and a ``still ...`` line when a stage has said nothing for that
    long (a watchdog thread, so a long library call without callbacks still shows
    that it runs). ``quiet`` shows nothing. stdout is never touched, so ``--json``
    output stays pure JSON.

    Parameters
    ----------
    verb : str
        The verb, at the start of every plain line.
    quiet : bool, default False
        Show nothing.
    interval_s : float, optional
        Seconds between plain lines (default :data:`PROGRESS_INTERVAL_S`).
    terminal : bool, optional
        Force the terminal or the plain rendering (default: whether stderr is a TTY).

    Examples
    --------
    >>> with Progress("tortuosity", quiet=True) as progress:
    ...     progress.stage("solving axis 0")
    ...     progress.step("iteration 10", done=0.5)
    """

    def __init__(
        self,
        verb: str,
        *,
        quiet: bool = False,
        interval_s: float | None = None,
        terminal: bool | None = None,
    ) -> None:
        import os

        self.verb = verb
        self.quiet = quiet
        env = os.environ.get("MICROBAT_PROGRESS_INTERVAL")
        self.interval_s = float(interval_s or (env and float(env)) or PROGRESS_INTERVAL_S)
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self.text = ""
        self._t0 = 0.0
        self._last = 0.0
        self._bar: Any = None
        self._task: Any = None
        self._stop: Any = None
        self._lock: Any = None
        self._printed = ""

    # ------------------------------------------------------------- lifecycle
    def __enter__(self) -> Progress:
        import threading
        import time

        self._t0 = self._last = time.monotonic()
        if self.quiet:
            return self
        self._lock = threading.Lock()
        if self.terminal:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                SpinnerColumn(),
                TextColumn(f"[bold]{self.verb}[/]"),
                TextColumn("{task.description}"),
                BarColumn(bar_width=20),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("starting", total=None)
        else:
            self._stop = threading.Event()
            threading.Thread(target=self._watch, name="microbat-progress", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._stop.set()
            self._stop = None
        if self._bar is not None:
            self._bar.__exit__(*exc)
            self._bar = None
        if self in _OPEN_PROGRESS:
            _OPEN_PROGRESS.remove(self)

    def start(self) -> Progress:
        """Start showing progress outside a ``with`` block.

        :func:`emit` (before it prints the result) and :func:`guarded` (when the
        verb ends, however it ends) stop it.
        """
        _OPEN_PROGRESS.append(self)
        return self.__enter__()

    def close(self) -> None:
        """Stop showing progress (idempotent)."""
        self.__exit__(None, None, None)

    # ------------------------------------------------------------------ calls
    def stage(self, text: str, *, total: float | None = None) -> None:
        """A new stage starts: ``text`` says what runs (``total``: its steps, if known)."""
        self.text = text
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.update(self._task, description=text, total=total, completed=0)
        else:
            self._line(text)

    def step(self, text: str | None = None, *, done: float | None = None) -> None:
        """Progress inside the stage: a new detail and/or ``done`` steps of its total."""
        import time

        if text is not None:
            self.text = text
        if self.quiet:
            return
        if self._bar is not None:
            kw: dict[str, Any] = {"description": self.text}
            if done is not None:
                kw["completed"] = done
            self._bar.update(self._task, **kw)
        elif time.monotonic() - self._last >= self.interval_s:
            self._line(self.text)

    def note(self, text: str) -> None:
        """A line kept in the log (a stage's outcome), in both renderings."""
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.console.print(f"{self.verb}: {text}", highlight=False, markup=False)
        else:
            self._line(text)

    # ---------------------------------------------------------------- helpers
    def _elapsed(self) -> str:
        import time

        t = time.monotonic() - self._t0
        return f"{t:.0f} s" if t < 120 else f"{t / 60:.1f} min"

    def _line(self, text: str, prefix: str = "") -> None:
        import time

        with self._lock:
            self._last = time.monotonic()
            self._printed = text
            typer.echo(f"microbat {self.verb} [{self._elapsed()}] {prefix}{text}", err=True)

    def _watch(self) -> None:
        import time

        while not self._stop.wait(min(1.0, self.interval_s)):
            text = self.text
            if time.monotonic() - self._last >= self.interval_s and text:
                self._line(text, prefix="still " if text == self._printed else "")


# Progress started with Progress.start(): stopped by emit and guarded.
_OPEN_PROGRESS: list[Progress] = []


def close_progress() -> None:
    """Stop every progress display a verb started (before its result is printed)."""
    for p in list(_OPEN_PROGRESS):
        p.close()


def main() -> None:
    """Entry point of the ``microbat`` script."""
    app()
