"""The digital twin in one call: image → microstructure → transport → cell → report.

:func:`run_twin` runs the stages of :data:`microbat.pipeline.stages.STAGES` in order
and keeps the output folder consistent under every way a run can end:

* **Resume.** Each stage's outputs go to ``OUT/stages/<stage>/`` and are followed,
  last, by a ``manifest.json`` that holds the stage's *fingerprint*: a SHA-256 of
  the input's content hash, the settings of the stage, and the fingerprints of the
  stages it depends on. A rerun reuses a stage whose manifest matches and whose
  files are all there, and recomputes the rest: changing ``segment.beta`` redoes
  segmentation and everything after it, but not the input or the denoising.
* **Interrupts and full disks.** Every file is written under a temporary name and
  renamed (:func:`microbat.core.atomic.atomic_path`), and a stage's manifest is
  removed before the stage starts and written after its last file. A stage cut
  short by Ctrl-C, a crash or a full disk therefore has no manifest and is never
  presented as complete; completed stages are untouched.
* **Another input.** ``OUT/twin.json`` records the input's identity (content
  hash). A folder holding the twin of different input data is refused unless
  ``force=True``; a non-empty folder that is not a twin folder is refused unless
  ``force=True`` (then only microbat's own files are replaced).

Layout of ``OUT``::

    report.html        the self-contained report (figures embedded)
    results.json       every stage's numbers, machine-readable
    twin.json          input identity, settings, stage status and times
    twin.toml          the effective settings (rerun with --config OUT/twin.toml)
    twin.log           the log of every run into this folder
    stages/<name>/     result.json, arrays.npz, stage files, manifest.json
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from microbat.core.atomic import atomic_path, atomic_write_text
from microbat.core.errors import FileFormatError, InvalidInputError, MicrobatError
from microbat.core.results import Provenance, Result, to_jsonable

__all__ = ["StageReport", "TwinEvent", "TwinResult", "run_twin"]

log = logging.getLogger("microbat.pipeline")

_MANIFEST = "manifest.json"
_TWIN_FORMAT = "microbat-twin"
_TWIN_VERSION = 1
_OWN_TOP = ("report.html", "results.json", "twin.json", "twin.toml", "twin.log", "stages")


# ============================================================================ results
@dataclass(frozen=True)
class StageReport(Result):
    """How one stage ended in a run.

    Attributes
    ----------
    name, title : str
    status : str
        ``"complete"``, ``"skipped"``, ``"not_available"`` or ``"failed"``.
    reused : bool
        True when the stage's results of an earlier run were current and kept.
    wall_time_s : float
        Time spent on the stage in this run (0 when reused).
    reason : str
        Why the stage was skipped, not available or failed.
    warnings : tuple of str
        Warnings raised while it ran.
    fingerprint : str
        Hash of its input, settings and upstream fingerprints.
    """

    name: str
    title: str
    status: str
    reused: bool
    wall_time_s: float
    reason: str = ""
    warnings: tuple[str, ...] = ()
    fingerprint: str = ""


@dataclass(frozen=True)
class TwinResult(Result):
    """What :func:`run_twin` produced.

    Attributes
    ----------
    out_dir : Path
        The output folder.
    report : Path or None
        ``report.html`` (None when the report is switched off).
    results : Path
        ``results.json``.
    log : Path
        ``twin.log``.
    stages : tuple of StageReport
        Each stage's status, in run order.
    summary : dict
        Headline numbers (also in ``results.json``).
    wall_time_s : float
        Wall time of this run.
    provenance : Provenance
    """

    out_dir: Path
    report: Path | None
    results: Path
    log: Path
    stages: tuple[StageReport, ...]
    summary: dict[str, Any] = field(default_factory=dict)
    wall_time_s: float = 0.0
    provenance: Provenance | None = None

    def stage(self, name: str) -> StageReport:
        """The report of one stage by name."""
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(f"no stage {name!r}; stages: {', '.join(s.name for s in self.stages)}")

    @property
    def failed(self) -> tuple[str, ...]:
        """Names of the stages that failed."""
        return tuple(s.name for s in self.stages if s.status == "failed")


@dataclass(frozen=True)
class TwinEvent:
    """A progress event (what a ``progress`` callback receives).

    Attributes
    ----------
    kind : {"start", "stage_start", "step", "stage_end", "end"}
    stage, title : str
        The stage concerned (empty for ``start``/``end``).
    message : str
        A short human-readable line.
    index, n_stages : int
        Position of the stage (0-based) and number of stages.
    n_steps : int
        Expected number of steps of the stage (``stage_start``).
    status : str
        Stage status (``stage_end``), with ``reused`` telling whether it was kept.
    reused : bool
    wall_time_s : float
    """

    kind: str
    stage: str = ""
    title: str = ""
    message: str = ""
    index: int = 0
    n_stages: int = 0
    n_steps: int = 1
    status: str = ""
    reused: bool = False
    wall_time_s: float = 0.0

    def __str__(self) -> str:
        return self.message


# ============================================================================ helpers
def _sha(data: Any) -> str:
    return hashlib.sha256(
        json.dumps(to_jsonable(data), sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def _write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(to_jsonable(data), indent=2, allow_nan=False) + "\n")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None


def _resolve_config(config: Any) -> Any:
    from microbat.pipeline.config import TwinConfig, load_config

    if config is None:
        return TwinConfig()
    if isinstance(config, TwinConfig):
        return config
    if isinstance(config, Mapping):
        from microbat.pipeline.config import _validate

        return _validate(dict(config), "config")
    if isinstance(config, str | os.PathLike):
        return load_config(config)
    raise InvalidInputError(
        f"config must be a TwinConfig, a mapping or a TOML file path, got {type(config).__name__}"
    )


def _resolve_input(source: Any, synthetic: bool) -> Any:
    from microbat.core.microstructure import Microstructure
    from microbat.pipeline.base import TwinInput, hash_array, hash_path

    if synthetic:
        if source is not None:
            raise InvalidInputError(
                "give either an input or synthetic=True (the built-in phantom), not both"
            )
        return TwinInput("synthetic", identity={"kind": "synthetic", "sha256": "synthetic"})
    if source is None:
        raise InvalidInputError(
            "no input: give a file or folder (TIFF, HDF5, Zarr, raw, NumPy, VTI), an array, "
            "a Microstructure, or synthetic=True for the built-in phantom"
        )
    if isinstance(source, Microstructure):
        digest = hash_array(np.asarray(source.labels))
        return TwinInput(
            "microstructure",
            array=source,
            identity={"kind": "microstructure", "sha256": digest, "source": "memory"},
        )
    if isinstance(source, np.ndarray):
        return TwinInput(
            "array",
            array=source,
            identity={"kind": "array", "sha256": hash_array(source), "source": "memory"},
        )
    if isinstance(source, str | os.PathLike):
        from microbat.io.readers import detect_format

        path = Path(source).expanduser()
        detect_format(path)  # missing file, unknown type: fail before touching OUT
        digest, nbytes = hash_path(path)
        return TwinInput(
            "file",
            path=path.resolve(),
            identity={
                "kind": "file",
                "sha256": digest,
                "bytes": nbytes,
                "source": str(path.resolve()),
            },
        )
    raise InvalidInputError(
        f"cannot use a {type(source).__name__} as input; give a path, a NumPy array or a "
        "Microstructure"
    )


def _check_image(data: Any, where: str) -> None:
    """A 3D image that is not constant (checked without reading all of a real image)."""
    from microbat.io.readers import constant_image_error, constant_value

    if data.ndim != 3:
        raise InvalidInputError(
            f"{where}: holds a {data.ndim}D array of shape {tuple(data.shape)}; the twin "
            "needs a 3D volume"
        )
    value = constant_value(data)
    if value is not None:
        raise constant_image_error(where, value)


def _precheck(src: Any, cfg: Any) -> None:
    """Fail before touching the output folder.

    Unreadable input, an input that is not a 3D image or is constant, a missing
    voxel size: none of them leaves an output folder behind.
    """
    from microbat.core.errors import VoxelSizeError

    if src.kind in ("synthetic", "microstructure"):
        return
    file_vs = None
    where = "the input array"
    if src.kind == "file":
        from microbat.io import read_volume

        where = str(src.path)
        vol = read_volume(src.path, dataset=cfg.input.dataset, lazy=True)
        try:
            _check_image(vol.data, where)
            file_vs = vol.voxel_size
        finally:
            vol.close()
    else:
        _check_image(np.asarray(src.array), where)
    if cfg.input.voxel_size is not None:
        return
    if file_vs is None:
        raise VoxelSizeError(
            f"{where}: the input does not say its voxel size and none was given; pass it "
            "with --voxel-size (metres or with a unit, e.g. --voxel-size 0.4um), "
            "voxel_size=4e-7 in Python, or input.voxel_size in the config file. microbat "
            "never guesses it: every length, area and the cell model depend on it"
        )


def _same_input(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return a.get("kind") == b.get("kind") and a.get("sha256") == b.get("sha256")


def _prepare_out(out: Path, identity: Mapping[str, Any], force: bool) -> str:
    """Check the output folder; returns ``"new"``, ``"resume"`` or ``"replace"``."""
    if out.exists() and not out.is_dir():
        raise FileFormatError(f"{out}: exists and is a file; --out must name a folder")
    if not out.exists() or not any(out.iterdir()):
        out.mkdir(parents=True, exist_ok=True)
        return "new"
    prev = _read_json(out / "twin.json")
    if prev is not None and prev.get("format") == _TWIN_FORMAT:
        if _same_input(prev.get("input", {}), identity):
            return "resume"
        if not force:
            raise FileFormatError(
                f"{out}: holds the twin of another input ({prev.get('input', {}).get('source')}, "
                f"sha256 {str(prev.get('input', {}).get('sha256'))[:12]}…) and this input "
                f"differs (sha256 {str(identity.get('sha256'))[:12]}…); choose another --out "
                "folder, or pass --force to replace those results"
            )
        _remove_own(out)
        return "replace"
    if not force:
        entries = sorted(p.name for p in out.iterdir())[:5]
        raise FileFormatError(
            f"{out}: exists, is not empty ({', '.join(entries)}…) and is not a microbat twin "
            "folder; choose a new or empty --out folder, or pass --force to write into it "
            "(only microbat's own files are replaced)"
        )
    _remove_own(out)
    return "replace"


def _remove_own(out: Path) -> None:
    for name in _OWN_TOP:
        p = out / name
        if name == "twin.log":
            continue
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


@contextlib.contextmanager
def _lock(out: Path) -> Iterator[None]:
    path = out / ".twin.lock"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(path.read_text().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and _alive(pid):
                raise FileFormatError(
                    f"{out}: another microbat twin run (process {pid}) is writing into this "
                    "folder; wait for it to finish or choose another --out"
                ) from None
            path.unlink(missing_ok=True)  # stale lock of a killed run
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        break
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - another user's process
        return True
    return True


def _probe_scheduler(address: str, timeout: float = 5.0) -> None:
    """Open and close a TCP connection to a ``tcp://``/``tls://`` scheduler address.

    ``distributed.Client`` retries a refused connection until its timeout (20 s);
    a port nobody listens on is refused at once, so the probe turns that case into
    an immediate error. Other transports are left to the client.
    """
    import socket

    from distributed.comm.addressing import parse_address, parse_host_port

    scheme, loc = parse_address(address)
    if scheme not in ("tcp", "tls"):
        return
    host, port = parse_host_port(loc, 8786)
    with socket.create_connection((host, port), timeout=timeout):
        pass


@contextlib.contextmanager
def _dask_context(scale: Any) -> Iterator[None]:
    """The Dask scheduler of the chunked stages: a distributed cluster, or local threads."""
    if scale.scheduler:
        from microbat.core.errors import require

        distributed = require("distributed", extra="dask", package="distributed")
        log.info("connecting to the Dask scheduler at %s", scale.scheduler)
        advice = (
            "start one with `dask scheduler` (and workers with `dask worker ADDRESS`) or "
            "leave scale.scheduler out to run on local threads"
        )
        import dask

        try:
            _probe_scheduler(scale.scheduler)
            # not the process's default client, which sets dask.config process-wide (even
            # when its constructor fails) and restores it when garbage-collected, possibly
            # after later code has set it: the run gets the client through dask.config.set
            client = distributed.Client(scale.scheduler, timeout="20s", set_as_default=False)
        except (OSError, ValueError) as exc:
            why = " ".join(str(exc).split()) or type(exc).__name__
            raise FileFormatError(
                f"cannot reach the Dask scheduler at {scale.scheduler} ({why}); {advice}"
            ) from None
        with client, dask.config.set(scheduler=client):
            yield
        return
    if scale.chunks is not None or scale.workers is not None:
        from concurrent.futures import ThreadPoolExecutor

        import dask

        from microbat.core.threads import split, worker_threads

        # Dask threads × the Numba threads of each ≤ the thread budget (core.threads)
        nw, per = split(scale.workers)
        with (
            ThreadPoolExecutor(nw, initializer=worker_threads, initargs=(per,)) as pool,
            dask.config.set(scheduler="threads", pool=pool, num_workers=nw),
        ):
            yield
        return
    yield


@contextlib.contextmanager
def _log_to(path: Path) -> Iterator[None]:
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG)
    lib = logging.getLogger("microbat")
    old = lib.level
    lib.addHandler(handler)
    if old == logging.NOTSET or old > logging.DEBUG:
        lib.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        lib.removeHandler(handler)
        lib.setLevel(old)
        handler.close()


def _disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1))


def _files_of(out: Path, directory: Path, extra: Sequence[Path] = ()) -> dict[str, int]:
    files = {}
    for p in sorted(directory.rglob("*")):
        if p.is_file() and p.name != _MANIFEST and not p.name.startswith("."):
            files[str(p.relative_to(out))] = p.stat().st_size
    for p in extra:
        files[str(Path(p).resolve().relative_to(out.resolve()))] = Path(p).stat().st_size
    return files


def _manifest_ok(out: Path, man: Mapping[str, Any] | None, fingerprint: str) -> bool:
    if not man or man.get("fingerprint") != fingerprint:
        return False
    if man.get("status") not in ("complete", "skipped"):
        return False
    for rel, size in (man.get("files") or {}).items():
        p = out / rel
        if not p.is_file() or p.stat().st_size != size:
            return False
    return True


# ============================================================================ the run
def run_twin(
    source: str | os.PathLike[str] | np.ndarray | Any | None = None,
    *,
    out_dir: str | os.PathLike[str],
    voxel_size: float | Sequence[float] | str | None = None,
    config: Any = None,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    synthetic: bool = False,
    force: bool = False,
    progress: Callable[[TwinEvent], None] | None = None,
) -> TwinResult:
    """Build the digital twin of an electrode image and write its report.

    Parameters
    ----------
    source : path, ndarray, Microstructure or None
        A grayscale or labelled volume: a file or folder that
        :func:`microbat.io.read_volume` reads, a 3D NumPy array, or a
        :class:`~microbat.core.Microstructure`. ``None`` with ``synthetic=True``.
    out_dir : path-like
        Output folder (created). An existing twin folder of the same input is
        resumed; see the module notes for the other cases.
    voxel_size : float, sequence of float or str, optional
        Voxel edge in metres (or ``"0.4um"``); overrides the config and the file.
        Required when neither the file nor the config gives it.
    config : TwinConfig, mapping, or path of a TOML file, optional
        Settings (see :mod:`microbat.pipeline.config`); default all defaults.
    overrides : mapping or sequence of str, optional
        ``{"segment.beta": 1.0}`` or ``["segment.beta=1.0"]``, applied on top of
        ``config`` (the CLI's ``--set``).
    synthetic : bool, default False
        Run on the built-in synthetic phantom (``config.synthetic``) instead of
        ``source``: what ``microbat demo`` does.
    force : bool, default False
        Replace the results of another input in ``out_dir``, or write into a
        non-empty folder that is not a twin folder.
    progress : callable, optional
        Called with a :class:`TwinEvent` when the run or a stage starts, advances
        or ends (``str(event)`` is a one-line message).

    Returns
    -------
    TwinResult
        Paths of the report, ``results.json`` and the log; each stage's status;
        the headline numbers.

    Raises
    ------
    FileFormatError
        Missing or unreadable input (not an image), an output folder holding
        another input's twin (without ``force``), a full disk.
    VoxelSizeError
        The voxel size is neither given nor in the file.
    InvalidInputError
        Invalid settings (unknown key, value out of range).

    Notes
    -----
    Stages that fail with a microbat error (for example a pore phase that does
    not percolate, so no cell model can run) are recorded as ``failed`` with
    the message, the stages that need them are skipped, and the report still
    shows everything else; :attr:`TwinResult.failed` lists them. Errors of the
    input stage, programming errors and interrupts stop the run; completed
    stages stay on disk and a rerun resumes after them.

    Examples
    --------
    >>> res = run_twin(synthetic=True, out_dir="twin-demo")  # doctest: +SKIP
    >>> res.report  # doctest: +SKIP
    PosixPath('twin-demo/report.html')
    """
    from microbat._version import __version__
    from microbat.pipeline.base import Record, StageContext
    from microbat.pipeline.config import apply_overrides
    from microbat.pipeline.report import write_report
    from microbat.pipeline.stages import STAGES

    t_run = time.perf_counter()
    cfg = _resolve_config(config)
    if overrides:
        cfg = apply_overrides(
            cfg, dict(overrides) if isinstance(overrides, Mapping) else list(overrides)
        )
    if voxel_size is not None:
        from microbat.core.units import parse_voxel_size

        vs = parse_voxel_size(voxel_size) if isinstance(voxel_size, str) else voxel_size
        cfg = apply_overrides(cfg, {"input.voxel_size": list(np.atleast_1d(np.asarray(vs, float)))})
    src = _resolve_input(source, synthetic)
    _precheck(src, cfg)
    out = Path(out_dir)
    emit = progress or (lambda _e: None)
    n = len(STAGES)

    mode = _prepare_out(out, src.identity, force)
    with _lock(out), _log_to(out / "twin.log"), _dask_context(cfg.scale):
        log.info("microbat %s twin run in %s (%s)", __version__, out, mode)
        log.info("input: %s", json.dumps(to_jsonable(src.identity)))
        atomic_write_text(out / "twin.toml", cfg.to_toml())
        twin_doc: dict[str, Any] = {
            "format": _TWIN_FORMAT,
            "format_version": _TWIN_VERSION,
            "microbat": __version__,
            "input": src.identity,
            "config": cfg.model_dump(mode="json"),
            "state": "running",
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "stages": {},
        }
        _write_json(out / "twin.json", twin_doc)
        ctx = StageContext(cfg, src, out, writer=write_report)
        for stage in STAGES:
            ctx.records[stage.name] = Record(stage, out / "stages" / stage.name)
        emit(TwinEvent("start", message=f"twin in {out} ({mode})", n_stages=n))
        current = ""
        try:
            for i, stage in enumerate(STAGES):
                current = stage.name
                rec = ctx.records[stage.name]
                ctx.current = rec
                ctx._step = lambda m, _s=stage, _i=i: emit(
                    TwinEvent("step", _s.name, _s.title, m, _i, n)
                )
                _run_stage(ctx, rec, i, n, emit, __version__)
                _release_unneeded(ctx, STAGES, i)
                twin_doc["stages"][stage.name] = {
                    "status": rec.status,
                    "reused": rec.reused,
                    "wall_time_s": rec.wall_time_s,
                    "reason": rec.reason,
                }
                if rec.status in ("complete", "skipped") and not rec.reused:
                    _write_json(out / "twin.json", twin_doc)
            twin_doc["state"] = "complete"
        except KeyboardInterrupt:
            twin_doc["state"] = "interrupted"
            done = [k for k, v in twin_doc["stages"].items() if v["status"] == "complete"]
            log.warning(
                "interrupted during stage %r; completed stages kept: %s; rerun the same "
                "command to resume",
                current,
                ", ".join(done) or "none",
            )
            with contextlib.suppress(OSError):
                _write_json(out / "twin.json", twin_doc)
            raise
        except BaseException as exc:
            twin_doc["state"] = "failed"
            log.error("stopped in stage %r: %s", current, exc, exc_info=True)
            with contextlib.suppress(OSError):
                _write_json(out / "twin.json", twin_doc)
            if _disk_full(exc):
                raise FileFormatError(
                    f"{out}: the disk is full (stage {current!r} could not write its "
                    "results); nothing of that stage is marked complete and the stages "
                    "before it are kept: free some space and rerun the same command to "
                    "resume"
                ) from exc
            raise
        wall = time.perf_counter() - t_run
        twin_doc["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        twin_doc["wall_time_s"] = wall
        _write_json(out / "twin.json", twin_doc)
        reports = tuple(
            StageReport(
                name=r.stage.name,
                title=r.stage.title,
                status=r.status,
                reused=r.reused,
                wall_time_s=r.wall_time_s,
                reason=r.reason,
                warnings=tuple(r.warnings),
                fingerprint=r.fingerprint,
            )
            for r in ctx.records.values()
        )
        results = _read_json(out / "results.json") or {}
        log.info("twin finished in %.1f s", wall)
        emit(TwinEvent("end", message=f"done in {wall:.1f} s", n_stages=n, wall_time_s=wall))
    report = out / "report.html"
    return TwinResult(
        out_dir=out,
        report=report if report.exists() and cfg.report.enabled else None,
        results=out / "results.json",
        log=out / "twin.log",
        stages=reports,
        summary=results.get("summary", {}),
        wall_time_s=wall,
        provenance=Provenance(
            "microbat.pipeline.run_twin",
            parameters=cfg.model_dump(mode="json"),
            wall_time_s=wall,
            inputs=dict(src.identity),
        ),
    )


def _fingerprint(ctx: Any, rec: Any, version: str, skipped: str | None) -> str:
    stage = rec.stage
    deps = {d: ctx.records[d].key for d in stage.deps}
    if skipped is not None:
        return _sha({"stage": stage.name, "skipped": skipped, "deps": deps})
    sections = [s for s in stage.sections if s != "synthetic" or ctx.source.kind == "synthetic"]
    doc = {
        "stage": stage.name,
        "format": _stage_format(),
        "microbat": version,
        "settings": {s: ctx.config.section(s) for s in sections},
        "deps": deps,
    }
    if stage.name == "input":
        doc["input"] = {k: ctx.source.identity.get(k) for k in ("kind", "sha256")}
    return _sha(doc)


def _stage_format() -> int:
    from microbat.pipeline.base import STAGE_FORMAT

    return STAGE_FORMAT


def _run_stage(ctx: Any, rec: Any, index: int, n: int, emit: Any, version: str) -> None:
    from microbat.pipeline.base import StageOutput

    stage = rec.stage
    out = ctx.out_dir
    skip_reason = _skip_reason(ctx, stage)
    fp = _fingerprint(ctx, rec, version, skip_reason)
    rec.fingerprint = fp
    man_path = rec.dir / _MANIFEST
    man = _read_json(man_path)
    emit(
        TwinEvent(
            "stage_start",
            stage.name,
            stage.title,
            f"{stage.title}",
            index,
            n,
            n_steps=1 if skip_reason else stage.n_steps,
        )
    )
    if _manifest_ok(out, man, fp):
        rec.status = man["status"]
        rec.reason = man.get("reason", "")
        rec.warnings = list(man.get("warnings", []))
        rec.reused = True
        rec.computed_time_s = float(man.get("wall_time_s", 0.0))
        rec.key = _sha({"fp": fp, "status": rec.status})
        log.info("stage %-12s reused (results are current)", stage.name)
        emit(
            TwinEvent(
                "stage_end",
                stage.name,
                stage.title,
                f"{stage.title}: reused",
                index,
                n,
                status=rec.status,
                reused=True,
            )
        )
        return
    # Not current: remove the old manifest first, then the old files.
    man_path.unlink(missing_ok=True)
    if rec.dir.exists():
        shutil.rmtree(rec.dir)
    rec.dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    caught: list[warnings.WarningMessage] = []
    if skip_reason is not None:
        output = StageOutput(status="skipped", reason=skip_reason)
        log.info("stage %-12s skipped: %s", stage.name, skip_reason)
    else:
        log.info("stage %-12s started", stage.name)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                output = stage.run(ctx)
        except MicrobatError as exc:
            if stage.name == "input":
                raise
            output = StageOutput(status="failed", reason=str(exc))
            log.error("stage %s failed: %s", stage.name, exc, exc_info=True)
    rec.wall_time_s = rec.computed_time_s = time.perf_counter() - t0
    rec.warnings = _warning_lines(caught)
    for w in rec.warnings:
        log.warning("stage %s: %s", stage.name, w)
    rec.status = output.status
    rec.reason = output.reason
    rec._summary = output.summary
    rec._arrays = output.arrays
    rec._objects = output.objects or None
    if output.summary or output.status == "complete":
        _write_json(rec.dir / "result.json", output.summary)
    if output.arrays:
        with atomic_path(rec.dir / "arrays.npz") as tmp:
            np.savez(tmp, **output.arrays)
    extra = (
        [Path(p) for p in (output.summary.get("files") or {}).values()]
        if stage.name == "report"
        else []
    )
    manifest = {
        "stage": stage.name,
        "fingerprint": fp,
        "status": rec.status,
        "reason": rec.reason,
        "warnings": rec.warnings,
        "wall_time_s": rec.wall_time_s,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": _files_of(out, rec.dir, extra),
    }
    _write_json(man_path, manifest)  # last: the stage is complete only from here on
    rec.key = _sha({"fp": fp, "status": rec.status})
    if rec.status not in ("complete", "skipped"):
        log.info("stage %-12s %s: %s", stage.name, rec.status, rec.reason)
    else:
        log.info("stage %-12s %s in %.2f s", stage.name, rec.status, rec.wall_time_s)
    emit(
        TwinEvent(
            "stage_end",
            stage.name,
            stage.title,
            f"{stage.title}: {rec.status}" + (f" ({rec.reason})" if rec.reason else ""),
            index,
            n,
            status=rec.status,
            wall_time_s=rec.wall_time_s,
        )
    )


def _release_unneeded(ctx: Any, stages: Sequence[Any], done: int) -> None:
    """Drop in-memory hand-overs no later stage needs (they reload from disk if asked)."""
    later: set[str] = set()
    for s in stages[done + 1 :]:
        if not s.needs_objects:
            continue
        deps = set(s.deps)
        if "segment" in deps and ctx.status("segment") == "complete":
            deps -= {"input", "denoise"}  # such stages read the segmented microstructure
        later |= deps
    for s in stages[: done + 1]:
        if s.name not in later:
            ctx.release(s.name)


def _skip_reason(ctx: Any, stage: Any) -> str | None:
    if stage.active is not None:
        why = stage.active(ctx)
        if why:
            return why
    if "segment" in stage.deps and stage.name != "report" and not ctx.labelled_input:
        st = ctx.status("segment")
        if st != "complete":
            return f"it needs the segmented microstructure, and segmentation is {st}"
    return None


def _warning_lines(caught: Sequence[warnings.WarningMessage]) -> list[str]:
    """Warnings worth showing; library deprecation chatter goes to the log only."""
    out: list[str] = []
    for w in caught:
        line = f"{w.category.__name__}: {w.message}"
        noise = issubclass(w.category, DeprecationWarning | PendingDeprecationWarning)
        if noise and "microbat" not in str(w.filename):
            log.debug("%s (%s:%s)", line, w.filename, w.lineno)
            continue
        if line not in out:
            out.append(line)
    return out
