"""What every twin stage is made of: the stage record, its context, its settings base.

A twin stage is one module of :mod:`microbat.pipeline.stages` that defines a
:class:`Stage` named ``STAGE``: its name and title, the stages it depends on, the
settings sections it owns (:class:`StageSettings` models, assembled into the
twin's :class:`~microbat.pipeline.config.TwinConfig`) and reads, a ``run`` function
that calls microbat's public API and returns a :class:`StageOutput` (a JSON
summary, small arrays for the report, and in-memory objects for the stages after
it), a ``load`` function that rebuilds those objects from the stage folder when a
later run reuses the stage, its report sections, its diagnosis rules and its
headline numbers. The runner (:mod:`microbat.pipeline.twin`) and the report
writer (:mod:`microbat.pipeline.report`) only iterate the ordered list
:data:`microbat.pipeline.stages.STAGES`.

No stage reaches into another stage's internals: it asks the :class:`StageContext`
for a summary (``ctx.summary("metrics")``), small arrays (``ctx.arrays(...)``) or a
hand-over object (``ctx.obj("segment", "ms")``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from microbat.core.atomic import atomic_path
from microbat.core.errors import MicrobatError

if TYPE_CHECKING:
    from microbat.pipeline.reportkit import ReportSection, ReportView

__all__ = [
    "STAGE_FORMAT",
    "Finding",
    "Stage",
    "StageContext",
    "StageOutput",
    "StageSettings",
    "TwinInput",
    "Verdict",
    "hash_array",
    "hash_path",
    "mid_slices",
]

log = logging.getLogger("microbat.pipeline")

#: Bumped when a stage's outputs change meaning, so old results are recomputed.
STAGE_FORMAT = 1


class StageSettings(BaseModel):
    """Base of a settings section of the twin's configuration file.

    A subclass's fields are the keys of one ``[section]`` of ``twin.toml``; each
    has a default, a ``description`` and, where it has one, a unit in
    ``json_schema_extra={"unit": ...}`` (they make the reference table of
    ``docs/twin.md``). Unknown keys are refused.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


# ======================================================================== plumbing
@dataclass(frozen=True)
class TwinInput:
    """What the twin starts from.

    Attributes
    ----------
    kind : {"file", "array", "microstructure", "synthetic"}
    path : Path or None
        The input file or folder (``kind == "file"``).
    array : ndarray or Microstructure or None
        The in-memory input (``kind`` ``"array"`` or ``"microstructure"``).
    identity : dict
        ``{"kind", "sha256", "source", "bytes"}``: what makes two inputs the same
        (the content hash; ``"synthetic"`` for the built-in phantom, whose
        settings are ordinary settings).
    """

    kind: str
    path: Path | None = None
    array: Any = None
    identity: dict[str, Any] = field(default_factory=dict)


@dataclass
class StageOutput:
    """What a stage produced.

    Attributes
    ----------
    status : {"complete", "skipped", "not_available", "failed"}
    summary : dict
        JSON-ready numbers (written to ``result.json`` in the stage folder).
    arrays : dict of str to ndarray
        Small arrays for the report (slices, histograms, curves), ``arrays.npz``.
    objects : dict
        In-memory hand-over to later stages (not written by the runner; the stage
        writes what :attr:`Stage.load` needs to rebuild them).
    reason : str
        Why a stage was skipped, not available or failed.
    """

    status: str = "complete"
    summary: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    objects: dict[str, Any] = field(default_factory=dict)
    reason: str = ""


@dataclass(frozen=True)
class Verdict:
    """A stage's candidate for the report's dominant diagnosis.

    Of all candidates the stages give, the one with the lowest ``priority`` is the
    diagnosis (ties go to the earlier stage); ``key`` names the bottleneck.
    """

    priority: int
    key: str
    headline: str
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finding:
    """A secondary finding of the diagnosis; findings are listed by ``rank``."""

    rank: int
    text: str


#: Stage name → stage summary (``{}`` for stages that did not complete), with the
#: statuses under ``"_status"``: what the diagnosis and headline functions read.
Results = Mapping[str, Any]


@dataclass(frozen=True)
class Stage:
    """One step of the twin (see the module notes).

    Attributes
    ----------
    name, title : str
        Folder name and human title.
    deps : tuple of str
        Stages whose results this one reads (their fingerprints enter its own).
    sections : tuple of str
        Settings sections it reads (their values enter its fingerprint).
    run : callable
        ``run(ctx) -> StageOutput``.
    load : callable, optional
        ``load(ctx, folder) -> dict`` rebuilds the hand-over objects of a reused run.
    active : callable, optional
        ``active(ctx) -> str | None``: a reason to skip the stage, or None.
    n_steps : int
        Progress steps it announces.
    needs_objects : bool
        False for stages that read only the summaries and arrays of earlier stages
        (their in-memory objects can then be released before they run).
    settings : tuple of (str, StageSettings subclass)
        The settings sections this stage owns, in the order of the configuration.
    report : callable, optional
        ``report(view) -> sequence of ReportSection``: its sections of the report.
    diagnose : callable, optional
        ``diagnose(results) -> iterable of Verdict or Finding``: its diagnosis rules.
    headline : callable, optional
        ``headline(results) -> dict``: its headline numbers in ``results.json``.
    """

    name: str
    title: str
    deps: tuple[str, ...]
    sections: tuple[str, ...]
    run: Callable[[StageContext], StageOutput]
    load: Callable[[StageContext, Path], dict[str, Any]] | None = None
    active: Callable[[StageContext], str | None] | None = None
    n_steps: int = 1
    needs_objects: bool = True
    settings: tuple[tuple[str, type[StageSettings]], ...] = ()
    report: Callable[[ReportView], Sequence[ReportSection]] | None = None
    diagnose: Callable[[Results], Iterable[Verdict | Finding]] | None = None
    headline: Callable[[Results], Mapping[str, Any]] | None = None


class Record:
    """Runtime state of one stage inside a run."""

    def __init__(self, stage: Stage, directory: Path) -> None:
        self.stage = stage
        self.dir = directory
        self.status = "pending"
        self.key = ""
        self.fingerprint = ""
        self.reason = ""
        self.reused = False
        self.wall_time_s = 0.0
        self.computed_time_s = 0.0
        self.warnings: list[str] = []
        self._summary: dict[str, Any] | None = None
        self._arrays: dict[str, np.ndarray] | None = None
        self._objects: dict[str, Any] | None = None


class StageContext:
    """What a stage sees: settings, the input, and earlier stages' outputs.

    Parameters
    ----------
    config : TwinConfig
        The validated settings.
    source : TwinInput
        The input.
    out_dir : Path
        The output folder.
    step : callable, optional
        Called with a short message when a stage advances one step.
    writer : callable, optional
        ``writer(ctx) -> dict of str to Path``: writes ``results.json`` and the
        report (the runner passes :func:`microbat.pipeline.report.write_report`).
    """

    def __init__(
        self,
        config: Any,
        source: TwinInput,
        out_dir: Path,
        step: Callable[[str], None] | None = None,
        writer: Callable[[StageContext], dict[str, Path]] | None = None,
    ) -> None:
        self.config = config
        self.source = source
        self.out_dir = out_dir
        self._step = step or (lambda _m: None)
        self._writer = writer
        self.records: dict[str, Record] = {}
        self.current: Record | None = None
        self._analysis_ms: Any = None

    # -------------------------------------------------------------- progress
    def step(self, message: str) -> None:
        """Report progress inside the running stage."""
        log.info("  %s", message)
        self._step(message)

    def write_report(self) -> dict[str, Path]:
        """Write ``results.json`` and the HTML report (the report stage calls this)."""
        if self._writer is None:  # pragma: no cover - misuse
            raise RuntimeError("this context has no report writer")
        return self._writer(self)

    # ----------------------------------------------------------- the folder
    @property
    def stage_dir(self) -> Path:
        """Folder of the running stage."""
        if self.current is None:  # pragma: no cover - misuse
            raise RuntimeError("no stage is running")
        return self.current.dir

    def write_npy(self, name: str, array: np.ndarray) -> Path:
        """Save ``array`` as ``<stage>/<name>.npy`` atomically and return the path."""
        path = self.stage_dir / f"{name}.npy"
        with atomic_path(path) as tmp:
            np.save(tmp, np.ascontiguousarray(array))
        return path

    def save_microstructure(self, ms: Any, name: str = "microstructure") -> Path:
        """Save a Microstructure as ``<stage>/<name>.h5`` (microbat's own format)."""
        from microbat.io import save_microstructure

        return save_microstructure(ms, self.stage_dir / f"{name}.h5")

    # ------------------------------------------------------ earlier results
    def _rec(self, name: str) -> Record:
        rec = self.records.get(name)
        if rec is None:  # pragma: no cover - programming error
            raise KeyError(f"unknown stage {name!r}")
        return rec

    def status(self, name: str) -> str:
        """Status of a stage (``complete``, ``skipped``, ``not_available``, ``failed``)."""
        return self._rec(name).status

    def summary(self, name: str) -> dict[str, Any]:
        """The JSON summary of a finished stage (``{}`` when it has none)."""
        rec = self._rec(name)
        if rec._summary is None:
            p = rec.dir / "result.json"
            rec._summary = json.loads(p.read_text("utf-8")) if p.exists() else {}
        return rec._summary

    def arrays(self, name: str) -> dict[str, np.ndarray]:
        """The small arrays of a finished stage (``{}`` when it has none)."""
        rec = self._rec(name)
        if rec._arrays is None:
            p = rec.dir / "arrays.npz"
            if p.exists():
                with np.load(p, allow_pickle=False) as z:
                    rec._arrays = {k: z[k] for k in z.files}
            else:
                rec._arrays = {}
        return rec._arrays

    def obj(self, name: str, key: str) -> Any:
        """A hand-over object of a finished stage, rebuilt from its folder if reused."""
        rec = self._rec(name)
        if rec._objects is None:
            load = rec.stage.load
            rec._objects = load(self, rec.dir) if load is not None else {}
        if key not in rec._objects:
            raise KeyError(f"stage {name!r} has no output {key!r}")  # pragma: no cover
        return rec._objects[key]

    def release(self, name: str) -> None:
        """Drop the in-memory objects of a stage (they are rebuilt on demand)."""
        self._rec(name)._objects = None

    # -------------------------------------------------------------- helpers
    @property
    def labelled_input(self) -> bool:
        """Whether the input holds phase labels (imaging is skipped)."""
        return bool(self.summary("input").get("labelled"))

    @property
    def voxel_size(self) -> tuple[float, ...]:
        """Voxel size of the input in metres."""
        return tuple(self.summary("input")["voxel_size_m"])

    @property
    def out_of_core(self) -> bool:
        """Whether the imaging stages run chunked (``scale.chunks`` is set)."""
        return self.config.scale.chunks is not None

    def microstructure(self) -> Any:
        """The labelled Microstructure: segmented, or the labelled input.

        Out of core, the central ``scale.analysis_crop`` subvolume of the labels.
        """
        if self.out_of_core:
            if self._analysis_ms is None:
                self._analysis_ms = _analysis_microstructure(self)
            return self._analysis_ms
        if self.status("segment") == "complete":
            return self.obj("segment", "ms")
        return self.obj("input", "ms")


def labels_source(ctx: StageContext) -> tuple[Any, Any]:
    """The full labels (Dask) and the phase table, out of core."""
    from microbat.core.phases import PhaseTable

    if ctx.status("segment") == "complete":
        return ctx.obj("segment", "labels"), PhaseTable.from_list(ctx.summary("segment")["phases"])
    return ctx.obj("input", "labels"), PhaseTable.from_list(ctx.summary("input")["phases"])


def _analysis_microstructure(ctx: StageContext) -> Any:
    """The central ``scale.analysis_crop`` of the labels as a Microstructure (out of core)."""
    from microbat.core.microstructure import Microstructure

    labels, table = labels_source(ctx)
    crop = central(labels.shape, ctx.config.scale.analysis_crop)
    return Microstructure(
        np.asarray(labels[crop].compute()),
        ctx.voxel_size,
        table,
        thickness_axis=ctx.config.input.thickness_axis,
        allow_empty_phases=True,
        metadata={"analysis_crop": [[s.start, s.stop] for s in crop]},
    )


# ========================================================================= helpers
def hash_path(path: Path, block: int = 8 * 2**20) -> tuple[str, int]:
    """SHA-256 of a file, or of a folder's files (sorted relative names and content).

    Returns
    -------
    (str, int)
        Hex digest and number of bytes read.
    """
    h = hashlib.sha256()
    total = 0
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        if f is not path:
            h.update(str(f.relative_to(path)).encode("utf-8") + b"\0")
        with open(f, "rb") as fh:
            while chunk := fh.read(block):
                h.update(chunk)
                total += len(chunk)
    return h.hexdigest(), total


def hash_array(array: np.ndarray) -> str:
    """SHA-256 of an array's shape, dtype and bytes."""
    h = hashlib.sha256(f"{array.shape}|{array.dtype.str}".encode())
    a = np.ascontiguousarray(array)
    h.update(memoryview(a.reshape(-1).view(np.uint8)))
    return h.hexdigest()


def mid_slices(volume: Any, *, max_px: int = 320, prefix: str = "") -> dict[str, np.ndarray]:
    """The middle slice across each axis (``mid0``, ``mid1``, ``mid2``), thinned for display.

    Parameters
    ----------
    volume : array-like, shape (n0, n1, n2) or (n0, n1)
        Any array (memory maps are read slice by slice).
    max_px : int, default 320
        Largest edge of a returned slice; larger slices are strided.
    prefix : str
        Prepended to the keys.
    """
    shape = tuple(volume.shape)
    out: dict[str, np.ndarray] = {}
    if len(shape) == 2:
        views = [np.asarray(volume[:, :])]
    else:  # plain slicing reads one plane of a memory map, Zarr or Dask array
        views = [
            np.asarray(volume[shape[0] // 2]),
            np.asarray(volume[:, shape[1] // 2]),
            np.asarray(volume[:, :, shape[2] // 2]),
        ]
    for k, sl in enumerate(views):
        step = max(1, math.ceil(max(sl.shape) / max_px))
        out[f"{prefix}mid{k}"] = np.ascontiguousarray(sl[::step, ::step])
    return out


def thickness_plane(field: np.ndarray, thickness_axis: int, *, max_px: int = 320) -> np.ndarray:
    """A mid-plane of a 3D field that contains the thickness axis (thickness vertical).

    The plane is cut across the first other axis, at its middle, turned so that
    the thickness runs down the rows, and strided to at most ``max_px`` pixels a
    side (float32, for the report's images).
    """
    across = next(a for a in range(field.ndim) if a != thickness_axis)
    sl = np.take(field, field.shape[across] // 2, axis=across)
    t = thickness_axis if thickness_axis < across else thickness_axis - 1
    sl = np.moveaxis(sl, t, 0)
    step = max(1, math.ceil(max(sl.shape) / max_px))
    return np.ascontiguousarray(sl[::step, ::step], dtype=np.float32)


def sample(volume: np.ndarray, n: int = 2_000_000) -> np.ndarray:
    """A strided sample of at most about ``n`` voxels of ``volume``."""
    step = max(1, math.ceil((volume.size / n) ** (1 / max(volume.ndim, 1))))
    return np.asarray(volume[tuple(slice(None, None, step) for _ in range(volume.ndim))])


def histogram(volume: np.ndarray, bins: int = 256) -> dict[str, np.ndarray]:
    """Intensity histogram of a sample between the 0.05 and 99.95 percentiles."""
    s = sample(volume).astype(np.float64).ravel()
    s = s[np.isfinite(s)]
    if s.size == 0:
        return {}
    lo, hi = np.percentile(s, [0.05, 99.95])
    if hi <= lo:
        hi = lo + 1.0
    counts, edges = np.histogram(s, bins=bins, range=(lo, hi))
    return {"hist_counts": counts, "hist_edges": edges}


def central(
    shape: Sequence[int], edge: Sequence[int] | int, *, whole_axis: int | None = None
) -> tuple[slice, ...]:
    """Slices of the central box of edge ``edge`` (clipped to ``shape``).

    ``edge`` is one edge per axis or one for all; ``whole_axis`` (e.g. the thickness
    axis) keeps that axis whole: a lateral crop through the full electrode.
    """
    edges = [edge] * len(shape) if isinstance(edge, int) else list(edge)
    out = []
    for ax, (n, e) in enumerate(zip(shape, edges, strict=True)):
        e = n if ax == whole_axis else min(int(e), n)
        a = (n - e) // 2
        out.append(slice(a, a + e))
    return tuple(out)


def finite_or_none(v: Any) -> float | None:
    """``float(v)`` when finite, else None (JSON has no infinity)."""
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def bruggeman(eps: float, alpha: float) -> float:
    """Bruggeman's tortuosity factor ``ε^(1 − α)`` (∞ for no porosity)."""
    return eps ** (1.0 - alpha) if eps > 0 else math.inf


def optional(notes: list[str], what: str, fn: Callable[[], Any]) -> Any:
    """Run an optional part of a stage; a failure becomes a note, not a failed stage.

    Microbat errors are expected outcomes (a phase that does not conduct); anything
    else is a bug in the called module and is logged with its traceback, but the
    result the stage is about is still kept.
    """
    try:
        return fn()
    except MicrobatError as exc:
        notes.append(f"{what} failed: {exc}")
    except Exception as exc:
        log.error("%s raised %s", what, type(exc).__name__, exc_info=True)
        notes.append(
            f"{what} failed with an internal error ({type(exc).__name__}: {exc}); "
            "see twin.log and report it"
        )
    return None


def imaging_skipped(ctx: StageContext) -> str | None:
    """Why the imaging stages are skipped (a labelled input), or None."""
    if ctx.labelled_input:
        return "the input holds phase labels; imaging is skipped"
    return None


def phase_rows(ms: Any) -> list[dict[str, Any]]:
    """The phase table of a Microstructure as JSON rows."""
    return ms.phases.to_list()
