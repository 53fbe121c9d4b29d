"""The stages of the digital twin and the context they run in.

Each stage is a :class:`Stage`: a name, the stages it depends on, the sections of
the configuration it reads, a ``run`` function that calls microbat's public API and
returns a :class:`StageOutput` (a JSON summary, small arrays for the report, and
in-memory objects for the stages after it), and a ``load`` function that rebuilds
those objects from the stage folder when a later run reuses the stage.

No stage reaches into another stage's internals: it asks the :class:`StageContext`
for a summary (``ctx.summary("metrics")``), small arrays (``ctx.arrays(...)``) or a
hand-over object (``ctx.obj("segment", "ms")``). A stage whose library module is not
installed or not written yet reports ``not_available`` with the reason instead of
faking a result.

Graph (→ = "needs")::

    input ─► denoise ─► segment ─► connectivity ─┐
      │                    │     ─► metrics ─────┤
      │ (labelled input    │     ─► transport ───┼─► cell ─► report
      └─ skips imaging) ───┘                     │
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import math
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from microbat.core.atomic import atomic_path
from microbat.core.errors import InvalidInputError, MicrobatError, VoxelSizeError
from microbat.core.results import to_jsonable

__all__ = [
    "STAGES",
    "Stage",
    "StageContext",
    "StageOutput",
    "TwinInput",
    "mid_slices",
]

log = logging.getLogger("microbat.pipeline")

#: Bumped when a stage's outputs change meaning, so old results are recomputed.
STAGE_FORMAT = 1


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
class Stage:
    """One step of the twin (see the module notes).

    ``active`` returns a reason to skip the stage (or None); ``needs_objects`` is
    False for stages that read only the summaries and arrays of earlier stages (their
    in-memory objects can then be released before they run).
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


class _Record:
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
    """

    def __init__(
        self,
        config: Any,
        source: TwinInput,
        out_dir: Path,
        step: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.source = source
        self.out_dir = out_dir
        self._step = step or (lambda _m: None)
        self.records: dict[str, _Record] = {}
        self.current: _Record | None = None

    # -------------------------------------------------------------- progress
    def step(self, message: str) -> None:
        """Report progress inside the running stage."""
        log.info("  %s", message)
        self._step(message)

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
    def _rec(self, name: str) -> _Record:
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
            return _analysis_microstructure(self)
        if self.status("segment") == "complete":
            return self.obj("segment", "ms")
        return self.obj("input", "ms")


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


def _sample(volume: np.ndarray, n: int = 2_000_000) -> np.ndarray:
    step = max(1, math.ceil((volume.size / n) ** (1 / max(volume.ndim, 1))))
    return np.asarray(volume[tuple(slice(None, None, step) for _ in range(volume.ndim))])


def _histogram(volume: np.ndarray, bins: int = 256) -> dict[str, np.ndarray]:
    s = _sample(volume).astype(np.float64).ravel()
    s = s[np.isfinite(s)]
    if s.size == 0:
        return {}
    lo, hi = np.percentile(s, [0.05, 99.95])
    if hi <= lo:
        hi = lo + 1.0
    counts, edges = np.histogram(s, bins=bins, range=(lo, hi))
    return {"hist_counts": counts, "hist_edges": edges}


def _api(module: str, name: str) -> Any | None:
    """``module.name`` if it exists, else ``None`` (the stage is then not available)."""
    try:
        mod = importlib.import_module(module)
        return getattr(mod, name, None)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("microbat"):
            return None
        raise


def _api_first(*candidates: tuple[str, str]) -> Any | None:
    """The first of several ``(module, name)`` candidates that exists."""
    for module, name in candidates:
        fn = _api(module, name)
        if fn is not None and callable(fn):
            return fn
    return None


def _not_available(what: str) -> StageOutput:
    return StageOutput(
        status="not_available",
        reason=f"{what} is not available in this installation of microbat",
    )


def _phase_table_summary(ms: Any) -> list[dict[str, Any]]:
    return ms.phases.to_list()


# ============================================================================ input
def _input_voxel_size(ctx: StageContext, file_vs: Sequence[float] | None, ndim: int) -> Any:
    from microbat.core.microstructure import normalize_voxel_size

    given = ctx.config.input.voxel_size
    vs = given if given is not None else file_vs
    if vs is None:
        src = ctx.source.path or "the input array"
        raise VoxelSizeError(
            f"{src}: the input does not say its voxel size and none was given; pass it with "
            "--voxel-size (metres or with a unit, e.g. --voxel-size 0.4um), or "
            "voxel_size=4e-7 in Python, or input.voxel_size in the config file. microbat "
            "never guesses it: every length, area and the cell model depend on it"
        )
    return normalize_voxel_size(vs, ndim)


def _run_input(ctx: StageContext) -> StageOutput:
    if ctx.out_of_core:
        return _run_input_ooc(ctx)
    cfg = ctx.config.input
    src = ctx.source
    summary: dict[str, Any] = {"kind": src.kind, "identity": src.identity}
    arrays: dict[str, np.ndarray] = {}
    objects: dict[str, Any] = {}
    if src.kind == "synthetic":
        from microbat import synth

        s = ctx.config.synthetic
        ctx.step(f"generating a {'x'.join(map(str, s.shape))} synthetic electrode")
        truth = synth.electrode(
            tuple(s.shape),
            voxel_size=s.voxel_size,
            active_fraction=s.active_fraction,
            cbd_fraction=s.cbd_fraction,
            mean_radius=s.mean_radius,
            thickness_axis=cfg.thickness_axis,
            seed=s.seed,
        )
        ctx.step("rendering the grayscale phantom (blur and noise)")
        ph = synth.phantom(truth, psf_sigma=s.psf_sigma, snr=s.snr, seed=s.seed + 1)
        image = ph.image
        ctx.write_npy("image", image)
        ctx.save_microstructure(truth, "truth")
        vs = truth.voxel_size
        summary.update(
            source="built-in synthetic phantom (microbat.synth.electrode + phantom)",
            format="synthetic",
            labelled=False,
            generator=to_jsonable(truth.metadata.get("generator", {})),
            truth_volume_fractions=truth.volume_fractions(),
            truth_phases=_phase_table_summary(truth),
            phantom={
                "psf_sigma_voxels": s.psf_sigma,
                "snr": s.snr,
                "measured_snr": ph.measured_snr,
                "intensities": ph.intensities,
            },
        )
        objects.update(image=image, truth=truth)
    else:
        if src.kind == "file":
            from microbat.io import read_volume
            from microbat.io.readers import is_labelled, microstructure_from_volume

            ctx.step(f"reading {src.path}")
            vol = read_volume(src.path, dataset=cfg.dataset)
            if vol.ndim != 3:
                raise InvalidInputError(
                    f"{src.path}: holds a {vol.ndim}D array of shape {vol.shape}; the twin "
                    "needs a 3D volume"
                )
            labelled = _decide_labelled(cfg.kind, lambda: is_labelled(vol, phases=cfg.phases))
            vs = _input_voxel_size(ctx, vol.voxel_size, vol.ndim)
            summary.update(source=str(src.path), format=vol.format)
            if labelled:
                ms = microstructure_from_volume(
                    vol, phases=cfg.phases, voxel_size=vs, thickness_axis=cfg.thickness_axis
                )
                objects["ms"] = ms
            else:
                image = vol.to_numpy()
                objects["image"] = image
            vol.close()
        elif src.kind == "microstructure":
            ms = src.array
            labelled = True
            vs = _input_voxel_size(ctx, ms.voxel_size, ms.ndim)
            if tuple(vs) != tuple(ms.voxel_size) or ms.thickness_axis != cfg.thickness_axis:
                ms = ms.with_labels(ms.labels, voxel_size=vs, thickness_axis=cfg.thickness_axis)
            objects["ms"] = ms
            summary.update(source="Microstructure given in Python", format="memory")
        else:  # array
            arr = np.asarray(src.array)
            if arr.ndim != 3:
                raise InvalidInputError(
                    f"the input array has shape {arr.shape}; the twin needs a 3D volume"
                )
            from microbat.io.readers import is_labelled
            from microbat.io.volume import Volume

            labelled = _decide_labelled(
                cfg.kind, lambda: is_labelled(Volume(arr), phases=cfg.phases)
            )
            vs = _input_voxel_size(ctx, None, arr.ndim)
            summary.update(source="array given in Python", format="memory")
            if labelled:
                from microbat.core.microstructure import Microstructure

                objects["ms"] = Microstructure(
                    arr, vs, cfg.phases, thickness_axis=cfg.thickness_axis
                )
            else:
                objects["image"] = arr
        summary["labelled"] = labelled
    image = objects.get("image")
    if image is not None:
        if not np.issubdtype(image.dtype, np.number) or np.iscomplexobj(image):
            raise InvalidInputError(
                f"the input holds {image.dtype} values; a grayscale image must be real numbers"
            )
        ctx.step("input statistics")
        s = _sample(image).astype(np.float64)
        finite = np.isfinite(s)
        summary.update(
            shape=list(image.shape),
            dtype=str(image.dtype),
            intensity={
                "min": float(np.min(s[finite])) if finite.any() else math.nan,
                "max": float(np.max(s[finite])) if finite.any() else math.nan,
                "mean": float(np.mean(s[finite])) if finite.any() else math.nan,
                "std": float(np.std(s[finite])) if finite.any() else math.nan,
                "non_finite_fraction_sampled": float(1.0 - finite.mean()),
            },
        )
        arrays.update(mid_slices(image, prefix="raw_"))
        arrays.update(_histogram(image))
    else:
        ms = objects["ms"]
        summary.update(
            shape=list(ms.shape),
            dtype=str(ms.labels.dtype),
            phases=_phase_table_summary(ms),
            volume_fractions=ms.volume_fractions(),
        )
        arrays.update(mid_slices(ms.labels, prefix="labels_"))
        if src.kind != "file":
            ctx.save_microstructure(ms, "labels")
    summary["voxel_size_m"] = list(vs)
    summary["extent_m"] = [n * h for n, h in zip(summary["shape"], vs, strict=True)]
    summary["thickness_axis"] = cfg.thickness_axis
    summary["n_voxels"] = int(np.prod(summary["shape"]))
    return StageOutput(summary=summary, arrays=arrays, objects=objects)


def _decide_labelled(kind: str, auto: Callable[[], bool]) -> bool:
    if kind == "labels":
        return True
    if kind == "grayscale":
        return False
    return bool(auto())


def _load_input(ctx: StageContext, d: Path) -> dict[str, Any]:
    if ctx.out_of_core:
        return _load_input_ooc(ctx, d)
    src = ctx.source
    cfg = ctx.config.input
    if src.kind == "synthetic":
        from microbat.io import load_microstructure

        return {
            "image": np.load(d / "image.npy", mmap_mode="r"),
            "truth": load_microstructure(d / "truth.h5"),
        }
    labelled = ctx.labelled_input
    vs = ctx.voxel_size
    if src.kind == "file":
        from microbat.io import read_volume
        from microbat.io.readers import microstructure_from_volume

        vol = read_volume(src.path, dataset=cfg.dataset)
        try:
            if labelled:
                return {
                    "ms": microstructure_from_volume(
                        vol, phases=cfg.phases, voxel_size=vs, thickness_axis=cfg.thickness_axis
                    )
                }
            return {"image": vol.to_numpy()}
        finally:
            vol.close()
    if labelled:
        from microbat.io import load_microstructure

        return {"ms": load_microstructure(d / "labels.h5")}
    return {"image": np.asarray(src.array)}


# ========================================================================== imaging
def _imaging_active(ctx: StageContext) -> str | None:
    if ctx.labelled_input:
        return "the input holds phase labels; imaging is skipped"
    return None


def _denoise_active(ctx: StageContext) -> str | None:
    why = _imaging_active(ctx)
    if why:
        return why
    if not ctx.config.denoise.enabled:
        return "denoising is switched off (denoise.enabled = false)"
    return None


def _run_denoise(ctx: StageContext) -> StageOutput:
    fn = _api("microbat.imaging.denoise", "denoise_nlm")
    est = _api("microbat.imaging.denoise", "estimate_sigma")
    if fn is None or est is None:
        return _not_available("microbat.imaging.denoise_nlm")
    if ctx.out_of_core:
        return _run_denoise_ooc(ctx, fn, est)
    cfg = ctx.config.denoise
    image = np.asarray(ctx.obj("input", "image"))
    ctx.step("estimating the noise level")
    sigma_in = float(est(image)) if cfg.sigma is None else float(cfg.sigma)
    ctx.step(
        f"non-local means (patch {cfg.patch_size}, search radius {cfg.search_radius}, "
        f"sigma {sigma_in:.4g})"
    )
    out = fn(
        image,
        patch_size=cfg.patch_size,
        search_radius=cfg.search_radius,
        strength=cfg.strength,
        sigma=sigma_in,
        chunks=cfg.chunks,
    )
    ctx.write_npy("denoised", out)
    sigma_out = float(est(out))
    summary = {
        "sigma_in": sigma_in,
        "sigma_out_estimate": sigma_out,
        "noise_reduction": sigma_in / sigma_out if sigma_out > 0 else None,
        "h": cfg.strength * sigma_in,
        "settings": ctx.config.section("denoise"),
    }
    arrays = mid_slices(out, prefix="denoised_")
    arrays.update(_histogram(out))
    return StageOutput(summary=summary, arrays=arrays, objects={"image": out})


def _load_denoise(ctx: StageContext, d: Path) -> dict[str, Any]:
    if ctx.out_of_core:
        return {"dask": _from_zarr(d / "denoised.zarr")}
    return {"image": np.load(d / "denoised.npy", mmap_mode="r")}


def _run_segment(ctx: StageContext) -> StageOutput:
    fn = _api("microbat.imaging.segment", "segment")
    if fn is None:
        return _not_available("microbat.imaging.segment")
    if ctx.out_of_core:
        return _run_segment_ooc(ctx)
    cfg = ctx.config.segment
    stage_in = "denoise" if ctx.status("denoise") == "complete" else "input"
    image = np.asarray(ctx.obj(stage_in, "image"))
    ctx.step(f"Gaussian mixture + Bayes ({cfg.phases}, prior {cfg.spatial_prior})")
    res = fn(
        image,
        voxel_size=ctx.voxel_size,
        phases=cfg.phases,
        order=cfg.order,
        variance=cfg.variance,
        partial_volume=cfg.partial_volume,
        spatial_prior=cfg.spatial_prior,
        beta=cfg.beta,
        max_icm_iter=cfg.max_icm_iter,
        psf_sigma=cfg.psf_sigma or None,
        thickness_axis=ctx.config.input.thickness_axis,
    )
    ms = res.microstructure
    removal = None
    if cfg.remove_isolated:
        clean = _api("microbat.imaging.connectivity", "remove_isolated")
        if clean is None:
            return _not_available("microbat.imaging.remove_isolated")
        ctx.step("reassigning isolated solid clusters")
        ms, removal = clean(ms)
    ctx.step("writing the labelled microstructure")
    ctx.save_microstructure(ms)
    summary = res.to_dict()
    summary["segmented_from"] = stage_in
    if removal is not None:
        summary["remove_isolated"] = to_jsonable(removal.to_dict())
    summary["phases"] = _phase_table_summary(ms)
    arrays = mid_slices(ms.labels, prefix="labels_")
    if res.uncertainty is not None:
        arrays.update(mid_slices(res.uncertainty, prefix="uncertainty_"))
    fit = res.mixture
    if fit is not None and fit.bin_centers.size:
        x = np.asarray(fit.bin_centers, float)
        counts = np.asarray(fit.counts, float)
        width = float(x[1] - x[0]) if x.size > 1 else 1.0
        arrays["fit_centers"] = x
        arrays["fit_counts"] = counts
        arrays["fit_components"] = fit.component_pdfs(x) * counts.sum() * width
    if ctx.source.kind == "synthetic":
        truth = ctx.obj("input", "truth")
        summary["accuracy_vs_truth"] = _agreement(truth, ms)
    return StageOutput(summary=summary, arrays=arrays, objects={"ms": ms})


def _agreement(truth: Any, ms: Any) -> dict[str, Any]:
    """Voxel agreement between a segmentation and the true labels (phases matched by name)."""
    t = np.asarray(truth.labels)
    s = np.asarray(ms.labels)
    lut = np.full(256, 255, np.uint8)
    for p in ms.phases.values():
        if p.name in truth.phases:
            lut[p.label] = truth.phases[p.name].label
    mapped = lut[s]
    per: dict[str, float] = {}
    for p in truth.phases.values():
        m = t == p.label
        per[p.name] = float((mapped[m] == p.label).mean()) if m.any() else math.nan
    return {"overall": float((mapped == t).mean()), "recall_per_phase": per}


def _load_segment(ctx: StageContext, d: Path) -> dict[str, Any]:
    if ctx.out_of_core:
        return {"labels": _from_zarr(d / "labels.zarr")}
    from microbat.io import load_microstructure

    return {"ms": load_microstructure(d / "microstructure.h5")}


# ============================================================ connectivity, metrics
def _run_connectivity(ctx: StageContext) -> StageOutput:
    fn = _api("microbat.imaging.connectivity", "analyze_connectivity")
    if fn is None:
        return _not_available("microbat.imaging.analyze_connectivity")
    if ctx.out_of_core:
        return _run_connectivity_ooc(ctx)
    ms = ctx.microstructure()
    ctx.step("labelling clusters (26-connected pores, 6-connected solids)")
    res = fn(ms, axis=ctx.config.connectivity.axis)
    summary = res.to_dict()
    summary["phases_table"] = _phase_table_summary(ms)
    arrays = mid_slices(ms.labels, prefix="labels_")
    for name, cmap in res.class_maps.items():
        arrays.update(mid_slices(cmap, prefix=f"class_{name}_"))
    return StageOutput(summary=summary, arrays=arrays)


def _run_metrics(ctx: StageContext) -> StageOutput:
    fn = _api("microbat.imaging.metrics", "characterize")
    if fn is None:
        return _not_available("microbat.imaging.characterize")
    ms = ctx.microstructure()
    ctx.step(
        "volume fractions, interface areas"
        + (", local-thickness sizes" if ctx.config.metrics.sizes else "")
    )
    res = fn(ms, sizes=ctx.config.metrics.sizes)
    summary = res.to_dict()
    if "analysis_crop" in ms.metadata:
        summary["analysis_crop"] = ms.metadata["analysis_crop"]
    summary["phases_table"] = _phase_table_summary(ms)
    summary["active_electrolyte_specific_area_per_m"] = _active_electrolyte_area(ms, res)
    return StageOutput(summary=summary)


def _active_electrolyte_area(ms: Any, res: Any) -> float | None:
    act = {p.name for p in ms.phases.with_role("active")}
    ele = {p.name for p in ms.phases.with_role("electrolyte")}
    total = 0.0
    found = False
    for (a, b), v in res.interface_specific_areas.items():
        if (a in act and b in ele) or (a in ele and b in act):
            total += float(v)
            found = True
    return total if found else None


# ======================================================================== transport
def _transport_active(ctx: StageContext) -> str | None:
    if not ctx.config.transport.enabled:
        return "the transport stage is switched off (transport.enabled = false)"
    return None


def _finite_or_none(v: Any) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _bruggeman(eps: float, alpha: float) -> float:
    return eps ** (1.0 - alpha) if eps > 0 else math.inf


def _field_slice(field: np.ndarray, thickness_axis: int) -> np.ndarray:
    """A mid-plane of a 3D field that contains the thickness axis (thickness vertical)."""
    across = next(a for a in range(field.ndim) if a != thickness_axis)
    sl = np.take(field, field.shape[across] // 2, axis=across)
    t = thickness_axis if thickness_axis < across else thickness_axis - 1
    sl = np.moveaxis(sl, t, 0)
    step = max(1, math.ceil(max(sl.shape) / 320))
    return np.ascontiguousarray(sl[::step, ::step], dtype=np.float32)


def _run_transport(ctx: StageContext) -> StageOutput:
    tort = _api("microbat.transport.tortuosity", "tortuosity")
    if tort is None:
        return _not_available("microbat.transport.tortuosity")
    cfg = ctx.config.transport
    ms = ctx.microstructure()
    ax_t = ms.thickness_axis
    summary: dict[str, Any] = {"phase": cfg.phase, "thickness_axis": ax_t}
    if "analysis_crop" in ms.metadata:
        summary["analysis_crop"] = ms.metadata["analysis_crop"]
    arrays: dict[str, np.ndarray] = {}
    notes: list[str] = []

    ctx.step(f"steady diffusion in the {cfg.phase} phase along each axis")
    res = tort(ms, phase=cfg.phase, axis="all", boundary=cfg.boundary)
    summary["tortuosity"] = to_jsonable(res.to_dict())
    eps = float(res.porosity)
    tau_b = _bruggeman(eps, cfg.bruggeman_exponent)
    rows = []
    for k in range(ms.ndim):
        t = res.tau[k]
        if t is None:
            continue
        t = float(t)
        rows.append(
            {
                "axis": k,
                "tau": _finite_or_none(t),
                "deff_over_d0": _finite_or_none(res.deff_over_d0[k]),
                "macmullin": _finite_or_none(res.macmullin[k]),
                "percolating": bool(res.percolating[k]),
                "porosity_percolating": _finite_or_none(res.porosity_percolating[k]),
                "tau_bruggeman": tau_b,
                "bruggeman_relative_error": (tau_b - t) / t if math.isfinite(t) else None,
            }
        )
    summary["table"] = rows
    summary["porosity"] = eps
    summary["boundary"] = res.boundary
    summary["bruggeman_exponent"] = cfg.bruggeman_exponent
    summary["tau_bruggeman"] = tau_b
    t_thick = res.tau[ax_t]
    summary["tau_thickness"] = _finite_or_none(t_thick)
    summary["percolating_thickness"] = bool(res.percolating[ax_t])
    conc = res.concentration[ax_t] if res.concentration else None
    if conc is not None and ms.ndim == 3:
        arrays["concentration_thickness"] = _field_slice(conc, ax_t)

    if cfg.tensor:
        ten = _api("microbat.transport.tensor", "tortuosity_tensor")
        if ten is None:
            notes.append(
                "off-diagonal tensor terms: not computed (microbat.transport has no tensor "
                "function in this installation); the table gives the diagonal"
            )
        else:
            ctx.step("tortuosity tensor (periodic homogenisation, off-diagonal terms)")
            tr = _optional(
                notes,
                "tortuosity tensor",
                lambda: ten(ms, phase=cfg.phase, method="periodic", boundary=cfg.boundary),
            )
            if tr is not None:
                summary["tensor"] = {
                    "method": tr.method,
                    "tau": to_jsonable(np.asarray(tr.tau)),
                    "deff_over_d0": to_jsonable(np.asarray(tr.deff_over_d0)),
                    "principal_tau": to_jsonable(np.asarray(tr.principal_tau)),
                    "principal_directions": to_jsonable(np.asarray(tr.principal_directions)),
                    "asymmetry": float(tr.asymmetry),
                    "numerical_error": float(tr.numerical_error),
                }

    if cfg.solid:
        solid = ",".join(
            p.name for p in ms.phases.values() if p not in ms.phases.resolve(cfg.phase)
        )
        if solid:
            ctx.step(f"steady conduction in the solid ({solid}) along the thickness")
            rs = _optional(
                notes,
                "solid tortuosity",
                lambda: tort(ms, phase=solid, axis=ax_t, boundary=cfg.boundary, keep_field=False),
            )
            if rs is not None:
                summary["solid"] = {
                    "phases": solid,
                    "tau_thickness": _finite_or_none(rs.tau[ax_t]),
                    "percolating": bool(rs.percolating[ax_t]),
                    "volume_fraction": float(rs.porosity),
                }

    if cfg.random_walk:
        rw = _api("microbat.transport.randomwalk", "random_walk")
        if rw is None:
            notes.append("random-walk cross-check: microbat.transport.random_walk is not available")
        else:
            n_steps = cfg.random_walk_steps or _auto_steps(ms.shape)
            ctx.step(
                f"random-walk cross-check ({cfg.random_walk_walkers} walkers x {n_steps} steps)"
            )
            r = _optional(
                notes,
                "random walk",
                lambda: rw(
                    ms,
                    phase=cfg.phase,
                    n_walkers=cfg.random_walk_walkers,
                    n_steps=n_steps,
                    seed=cfg.random_walk_seed,
                ),
            )
            if r is not None:
                summary["random_walk"] = _rw_summary(r, res)
                arrays["rw_time_s"] = np.asarray(r.time, float)
                arrays["rw_msd_m2"] = np.asarray(r.msd, float)
    summary["notes"] = notes
    return StageOutput(summary=summary, arrays=arrays)


def _optional(notes: list[str], what: str, fn: Callable[[], Any]) -> Any:
    """Run an optional part of a stage; a failure becomes a note, not a failed stage.

    Microbat errors are expected outcomes (a phase that does not conduct); anything
    else is a bug in the called module and is logged with its traceback, but the
    diffusion-solve result the stage is about is still kept.
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


def _auto_steps(shape: Sequence[int]) -> int:
    """Steps of half a voxel whose free-space RMS displacement per axis is 2 L.

    ``MSD_axis = n ℓ² / 3`` with ``ℓ = 0.5`` voxel, so ``sqrt(n / 12) = 2 L`` gives
    ``n = 48 L²``. Shorter walks are still in the transient regime on electrode-like
    volumes (τ read 10-40 % low on a 64³ phantom at 10⁴ steps); at this length the
    random walk and the diffusion solve agree within the 95 % interval there.
    """
    return int(48 * max(shape) ** 2)


def _rw_summary(r: Any, diffusion: Any) -> dict[str, Any]:
    """Random-walk τ per axis against the diffusion solve, with the 95 % interval."""
    rows = []
    for k, t in enumerate(r.tau):
        lo, hi = r.ci95[k]
        ref = diffusion.tau[k] if k < len(diffusion.tau) else None
        ref = None if ref is None else float(ref)
        inside = None
        if ref is not None and math.isfinite(ref) and math.isfinite(float(t)):
            inside = bool(lo <= ref <= hi)
        rows.append(
            {
                "axis": k,
                "tau": _finite_or_none(t),
                "ci95": [_finite_or_none(lo), _finite_or_none(hi)],
                "tau_diffusion": _finite_or_none(ref),
                "relative_difference": (
                    (float(t) - ref) / ref
                    if ref is not None and math.isfinite(ref) and math.isfinite(float(t))
                    else None
                ),
                "diffusion_inside_ci95": inside,
                "plateau_reached": bool(r.plateau_reached_axes[k]),
            }
        )
    return {
        "table": rows,
        "n_walkers": int(r.n_walkers),
        "n_steps": int(r.n_steps),
        "plateau_reached": bool(r.plateau_reached),
        "walker_steps_per_s_per_core": float(r.walker_steps_per_s_per_core),
        "seed": int(r.seed),
        "boundary": r.boundary,
    }


# ============================================================================= cell
def _cell_active(ctx: StageContext) -> str | None:
    if not ctx.config.cell.enabled:
        return "the cell stage is switched off (cell.enabled = false)"
    if ctx.status("metrics") != "complete":
        return "it needs the morphology metrics, which did not complete"
    return None


def _run_cell(ctx: StageContext) -> StageOutput:
    rate = _api("microbat.cell", "rate_capability")
    micro_cls = _api("microbat.cell", "MicroProperties")
    params_cls = _api("microbat.cell", "CellParameters")
    if rate is None or micro_cls is None or params_cls is None:
        return _not_available("microbat.cell.rate_capability")
    cfg = ctx.config.cell
    met = ctx.summary("metrics")
    tra = ctx.summary("transport") if ctx.status("transport") == "complete" else {}
    notes: list[str] = []

    ctx.step(f"loading the {cfg.parameter_set} parameter set")
    if cfg.parameter_set.lower().endswith(".json"):
        load = _api("microbat.cell", "load_parameters")
        if load is None:
            return _not_available("microbat.cell.load_parameters (BPX files)")
        params = load(cfg.parameter_set)
    else:
        params = params_cls.from_name(cfg.parameter_set)

    micro_kw, have_tau = _micro_properties(ctx, met, tra)
    micro = micro_cls(**micro_kw)
    summary: dict[str, Any] = {
        "parameter_set": cfg.parameter_set,
        "electrode": cfg.electrode,
        "micro": micro.to_dict(),
        "notes": notes,
    }
    arrays: dict[str, np.ndarray] = {}
    runs: dict[str, Any] = {}
    transports = ["micro", "bruggeman"] if have_tau else ["bruggeman"]
    if have_tau and not cfg.compare_bruggeman:
        transports = ["micro"]
    for tr in transports:
        ctx.step(f"{cfg.model} discharges at {', '.join(f'{c:g}C' for c in cfg.c_rates)} ({tr})")
        res = rate(
            params,
            c_rates=cfg.c_rates,
            model=cfg.model,
            transport=tr,
            micro=micro,
            on_failure="record",
        )
        runs[tr] = res
        summary[f"rate_{tr}"] = to_jsonable(res.to_dict())
        for i, c in enumerate(res.curves):
            arrays[f"{tr}_curve{i}_capacity_Ah"] = np.asarray(c.capacity_Ah, float)
            arrays[f"{tr}_curve{i}_voltage_V"] = np.asarray(c.voltage_V, float)
        if res.breakdown is not None:
            for i, part in enumerate(res.breakdown.rates):
                arrays[f"{tr}_bd{i}_capacity_Ah"] = np.asarray(part.capacity_Ah, float)
                for comp, v in part.losses_V.items():
                    arrays[f"{tr}_bd{i}_{comp}"] = np.asarray(v, float)
    summary["transports"] = transports
    if "micro" in runs and "bruggeman" in runs:
        a, b = runs["micro"], runs["bruggeman"]
        summary["comparison"] = [
            {
                "c_rate": c,
                "capacity_micro_Ah": qm,
                "capacity_bruggeman_Ah": qb,
                "difference_percent": (
                    100.0 * (qm - qb) / qm
                    if math.isfinite(qm) and math.isfinite(qb) and qm > 0
                    else None
                ),
            }
            for c, qm, qb in zip(a.c_rate, a.capacity_Ah, b.capacity_Ah, strict=True)
        ]
    if not have_tau:
        notes.append(
            "the transport stage gave no tortuosity, so only the Bruggeman model (from the "
            "measured porosity) was run; no micro-informed prediction is shown"
        )
    summary["notes"] = notes
    return StageOutput(summary=to_jsonable(summary), arrays=arrays)


def _micro_properties(
    ctx: StageContext, met: Mapping[str, Any], tra: Mapping[str, Any]
) -> tuple[dict[str, Any], bool]:
    """Keyword arguments of MicroProperties from the stage summaries, and whether τ is measured."""
    cfg = ctx.config.cell
    phases = met.get("phases_table") or []
    roles = {p["name"]: p["role"] for p in phases}
    vf = met.get("volume_fractions") or {}
    eps = sum(v for k, v in vf.items() if roles.get(k) == "electrolyte")
    act = sum(v for k, v in vf.items() if roles.get(k) == "active")
    kw: dict[str, Any] = {"electrode": cfg.electrode, "porosity": float(eps)}
    if act > 0:
        kw["active_fraction"] = float(act)
    have_tau = "tau_thickness" in tra
    tau = tra.get("tau_thickness")
    if have_tau:
        # None = not percolating: MicroProperties raises NotPercolatingError on inf.
        kw["tau_electrolyte"] = math.inf if tau is None else float(tau)
    else:
        # Only the Bruggeman run is made then, and apply_micro ignores τ for it; the
        # value is what Bruggeman itself implies (ε^(1 - 1.5)).
        kw["tau_electrolyte"] = max(1.0, _bruggeman(eps, 1.5))
    solid = (tra.get("solid") or {}).get("tau_thickness")
    if solid is not None and math.isfinite(float(solid)):
        kw["tau_solid"] = float(solid)
    if cfg.solid_conductivity is not None:
        kw["solid_conductivity_bulk_S_per_m"] = cfg.solid_conductivity
    ssa = met.get("active_electrolyte_specific_area_per_m")
    if ssa:
        # a_s of a homogenised model is per electrode volume: the measured
        # active/electrolyte interface; carbon-binder-covered surface is not reactive.
        kw["specific_surface_area_per_m"] = float(ssa)
    sizes = (met.get("sizes_m") or {}).get(
        next((k for k, r in roles.items() if r == "active"), ""), {}
    )
    d50 = sizes.get("d50") if sizes else None
    if d50:
        kw["particle_radius_m"] = float(d50) / 2.0
    if cfg.thickness == "image":
        ax = ctx.summary("input")["thickness_axis"]
        kw["thickness_m"] = float(ctx.summary("input")["extent_m"][ax])
    elif isinstance(cfg.thickness, float):
        kw["thickness_m"] = cfg.thickness
    kw["axis"] = ctx.summary("input")["thickness_axis"]
    kw["source"] = {
        "stages": ["metrics", "transport"] if have_tau else ["metrics"],
        "tau_electrolyte": "measured" if have_tau else "Bruggeman (no transport result)",
    }
    return kw, have_tau


# ============================================================================== EIS
def _eis_active(ctx: StageContext) -> str | None:
    if not ctx.config.eis.enabled:
        return "the impedance stage is switched off (eis.enabled = false)"
    return None


def _run_eis(ctx: StageContext) -> StageOutput:
    hom = _api("microbat.cell.eis.homogenized", "homogenized_eis")
    if hom is None:
        return _not_available("microbat.cell.eis.homogenized_eis")
    cfg = ctx.config.eis
    ms = ctx.microstructure()
    notes: list[str] = []
    ctx.step("homogenised impedance (transmission line fed ε/τ, σ_eff and a_s)")
    r = hom(ms, blocking=cfg.blocking)
    summary: dict[str, Any] = {"spectra": {"homogenized": _eis_summary(r)}, "notes": notes}
    arrays = _eis_arrays("homogenized", r)
    if cfg.resolved:
        res = _api("microbat.cell.eis.resolved", "resolved_eis")
        if res is None:
            notes.append("resolved impedance: microbat.cell.eis.resolved_eis is not available")
        else:
            crop = _central(ms.shape, cfg.resolved_subvolume)
            sub = ms.crop(*crop)
            ctx.step(f"resolved impedance on the central {'x'.join(map(str, sub.shape))} voxels")
            r2 = _optional(notes, "resolved impedance", lambda: res(sub, blocking=cfg.blocking))
            r3 = _optional(notes, "homogenised impedance of the subvolume", lambda: hom(sub))
            for name, rr in (("resolved_subvolume", r2), ("homogenized_subvolume", r3)):
                if rr is not None:
                    summary["spectra"][name] = _eis_summary(rr)
                    arrays.update(_eis_arrays(name, rr))
            summary["subvolume"] = [[sl.start, sl.stop] for sl in crop]
    return StageOutput(summary=summary, arrays=arrays)


def _eis_summary(r: Any) -> dict[str, Any]:
    zr = np.asarray(r.z_real_ohm) * r.area_m2
    return {
        "model": r.model,
        "area_m2": float(r.area_m2),
        "interface_area_m2": float(r.interface_area_m2),
        "n_frequencies": int(np.size(r.frequency_Hz)),
        "high_frequency_real_ohm_m2": float(zr[np.argmax(r.frequency_Hz)]),
        "low_frequency_real_ohm_m2": float(zr[np.argmin(r.frequency_Hz)]),
        "details": to_jsonable(r.details),
    }


def _eis_arrays(name: str, r: Any) -> dict[str, np.ndarray]:
    return {
        f"{name}_frequency_Hz": np.asarray(r.frequency_Hz, float),
        f"{name}_z_real_ohm_m2": np.asarray(r.z_real_ohm, float) * r.area_m2,
        f"{name}_z_imag_ohm_m2": np.asarray(r.z_imag_ohm, float) * r.area_m2,
    }


# ===================================================================== out of core
# Volumes larger than memory: the input is read lazily (memory map, Zarr, HDF5), and
# the imaging stages run block by block on Dask, each writing a Zarr store in its
# stage folder. Memory is bounded by the chunk size times the number of workers.
# Metrics, transport and the cell model then run on the central ``analysis_crop``.


def _chunks(ctx: StageContext) -> tuple[int, int, int]:
    c = int(ctx.config.scale.chunks)
    return (c, c, c)


def _from_zarr(path: Path) -> Any:
    import dask.array as da

    return da.from_zarr(str(path))


def _to_zarr(darr: Any, path: Path) -> Any:
    """Compute ``darr`` block by block into a Zarr store (atomically) and reopen it lazily."""
    with atomic_path(path, directory=True) as tmp:
        shutil.rmtree(tmp)  # dask creates the store itself
        darr.to_zarr(str(tmp))
    return _from_zarr(path)


def _dask_sample(darr: Any, n: int = 8_000_000) -> np.ndarray:
    """A strided sample of at most ~``n`` voxels (the whole array when it is small)."""
    step = max(1, math.ceil((darr.size / n) ** (1 / darr.ndim)))
    return np.asarray(darr[tuple(slice(None, None, step) for _ in range(darr.ndim))].compute())


def _central(shape: Sequence[int], edge: Sequence[int]) -> tuple[slice, ...]:
    out = []
    for n, e in zip(shape, edge, strict=True):
        e = min(int(e), n)
        a = (n - e) // 2
        out.append(slice(a, a + e))
    return tuple(out)


def _phase_table_of(vol: Any, phases: str | None, counts: np.ndarray | None) -> Any:
    from microbat.core.phases import PhaseTable, default_phase_table

    if phases:
        return PhaseTable.parse(phases)
    if vol.metadata.get("microbat_format") == "microstructure" and vol.metadata.get("phases"):
        return PhaseTable.from_list(vol.metadata["phases"])
    present = np.flatnonzero(counts) if counts is not None else np.zeros(0)
    if present.size in (2, 3) and np.array_equal(present, np.arange(present.size)):
        return default_phase_table(int(present.size))
    raise InvalidInputError(
        f"the labelled input holds labels {present.tolist()}; give its phase table, e.g. "
        "--phases pore=0,cbd=1,active=2"
    )


def _run_input_ooc(ctx: StageContext) -> StageOutput:
    import dask.array as da

    cfg = ctx.config.input
    src = ctx.source
    summary: dict[str, Any] = {"kind": src.kind, "identity": src.identity, "out_of_core": True}
    objects: dict[str, Any] = {}
    if src.kind == "synthetic":
        out = _run_input(_InMemory(ctx))  # type: ignore[arg-type]
        out.summary["out_of_core"] = True
        out.summary["chunks"] = list(_chunks(ctx))
        out.objects = {
            "dask": da.from_array(np.asarray(out.objects["image"]), chunks=_chunks(ctx)),
            "truth": out.objects["truth"],
        }
        return out
    if src.kind == "file":
        from microbat.io import read_volume
        from microbat.io.readers import is_labelled, label_counts

        ctx.step(f"opening {src.path} lazily")
        vol = read_volume(src.path, dataset=cfg.dataset, lazy=True)
        darr = vol.to_dask(chunks=_chunks(ctx))

        def auto() -> bool:
            # A strided sample with many distinct values is grayscale: no need to
            # stream the whole volume through label_counts to find out.
            if vol.dtype.kind in "iu" and np.unique(_dask_sample(darr, 1_000_000)).size > 16:
                return False
            return is_labelled(vol, phases=cfg.phases)

        labelled = _decide_labelled(cfg.kind, auto)
        vs = _input_voxel_size(ctx, vol.voxel_size, vol.ndim)
        summary.update(source=str(src.path), format=vol.format)
        table = (
            _phase_table_of(vol, cfg.phases, None if cfg.phases else label_counts(vol.data))
            if labelled
            else None
        )
    else:
        arr = src.array.labels if src.kind == "microstructure" else np.asarray(src.array)
        labelled = src.kind == "microstructure" or cfg.kind == "labels"
        vs = _input_voxel_size(
            ctx, src.array.voxel_size if src.kind == "microstructure" else None, arr.ndim
        )
        darr = da.from_array(arr, chunks=_chunks(ctx))
        summary.update(source="array given in Python", format="memory")
        table = None
        if labelled:
            from microbat.core.phases import PhaseTable

            table = (
                src.array.phases
                if src.kind == "microstructure"
                else PhaseTable.parse(cfg.phases or "pore=0,cbd=1,active=2")
            )
    if darr.ndim != 3:
        raise InvalidInputError(f"the input has shape {darr.shape}; the twin needs a 3D volume")
    summary["labelled"] = labelled
    summary.update(shape=list(darr.shape), dtype=str(darr.dtype), chunks=list(_chunks(ctx)))
    ctx.step("input statistics from a strided sample")
    arrays: dict[str, np.ndarray] = {}
    if labelled:
        summary["phases"] = table.to_list()
        counts = np.bincount(_dask_sample(darr, 2_000_000).ravel().astype(np.intp))
        summary["volume_fractions_sampled"] = {
            p.name: float(counts[p.label] / counts.sum()) if p.label < counts.size else 0.0
            for p in table.values()
        }
        arrays.update(mid_slices(darr, prefix="labels_"))
        objects.update(labels=darr, phases=table)
    else:
        smp = _dask_sample(darr, 2_000_000).astype(np.float64)
        summary["intensity"] = {
            "min": float(smp.min()),
            "max": float(smp.max()),
            "mean": float(smp.mean()),
            "std": float(smp.std()),
            "non_finite_fraction_sampled": float(1.0 - np.isfinite(smp).mean()),
        }
        arrays.update(mid_slices(darr, prefix="raw_"))
        arrays.update(_histogram(smp))
        objects["dask"] = darr
    summary["voxel_size_m"] = list(vs)
    summary["extent_m"] = [n * h for n, h in zip(summary["shape"], vs, strict=True)]
    summary["thickness_axis"] = cfg.thickness_axis
    summary["n_voxels"] = int(np.prod(summary["shape"]))
    summary["bytes"] = int(darr.nbytes)
    return StageOutput(summary=summary, arrays=arrays, objects=objects)


class _InMemory:
    """A view of the context that reports ``out_of_core = False`` (synthetic input)."""

    def __init__(self, ctx: StageContext) -> None:
        self._ctx = ctx

    out_of_core = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)


def _load_input_ooc(ctx: StageContext, d: Path) -> dict[str, Any]:
    import dask.array as da

    src = ctx.source
    cfg = ctx.config.input
    if src.kind == "synthetic":
        objs = _load_input(_InMemory(ctx), d)  # type: ignore[arg-type]
        return {"dask": da.from_array(objs["image"], chunks=_chunks(ctx)), "truth": objs["truth"]}
    s = ctx.summary("input")
    if src.kind == "file":
        from microbat.io import read_volume

        darr = read_volume(src.path, dataset=cfg.dataset, lazy=True).to_dask(chunks=_chunks(ctx))
    else:
        arr = src.array.labels if src.kind == "microstructure" else np.asarray(src.array)
        darr = da.from_array(arr, chunks=_chunks(ctx))
    if s.get("labelled"):
        from microbat.core.phases import PhaseTable

        return {"labels": darr, "phases": PhaseTable.from_list(s["phases"])}
    return {"dask": darr}


def _run_denoise_ooc(ctx: StageContext, fn: Any, est: Any) -> StageOutput:
    cfg = ctx.config.denoise
    darr = ctx.obj("input", "dask")
    if cfg.sigma is None:
        ctx.step("estimating the noise level on the central block")
        centre = np.asarray(darr[_central(darr.shape, (128, 128, 128))].compute())
        sigma_in = float(est(centre))
    else:
        sigma_in = float(cfg.sigma)
    ctx.step(
        f"non-local means block by block ({'x'.join(map(str, _chunks(ctx)))} chunks, "
        f"halo {cfg.search_radius + cfg.patch_size // 2}), sigma {sigma_in:.4g}"
    )
    if ctx.config.scale.scheduler:
        # on a cluster: the imaging module's map_overlap path, one block per task
        out = fn(
            darr,
            patch_size=cfg.patch_size,
            search_radius=cfg.search_radius,
            strength=cfg.strength,
            sigma=sigma_in,
        )
        stored = _to_zarr(out, ctx.stage_dir / "denoised.zarr")
    else:
        stored = _denoise_blocks(ctx, fn, darr, sigma_in)
    centre = np.asarray(stored[_central(stored.shape, (128, 128, 128))].compute())
    sigma_out = float(est(centre))
    summary = {
        "sigma_in": sigma_in,
        "sigma_out_estimate": sigma_out,
        "noise_reduction": sigma_in / sigma_out if sigma_out > 0 else None,
        "h": cfg.strength * sigma_in,
        "settings": ctx.config.section("denoise"),
        "out_of_core": True,
    }
    arrays = mid_slices(stored, prefix="denoised_")
    arrays.update(_histogram(_dask_sample(stored, 2_000_000)))
    return StageOutput(summary=summary, arrays=arrays, objects={"dask": stored})


def _denoise_blocks(ctx: StageContext, fn: Any, darr: Any, sigma: float) -> Any:
    """NLM one output block at a time, each read with its halo, on local threads.

    Every block is an independent task that reads ``block + halo`` (halo
    ``search_radius + patch_size // 2``, clipped at the volume's faces, where the
    filter's own symmetric padding equals ``map_overlap``'s reflection) and keeps the
    core, so the result equals the in-memory filter. Tasks run one after the other
    (the Numba kernel is itself multi-threaded), which bounds memory to one block with
    its halo; an overlap graph on the threaded scheduler held about the whole
    float32 volume at once in measurements on 320³-512³ volumes.
    """
    import dask
    import dask.array as da

    cfg = ctx.config.denoise
    h = cfg.search_radius + cfg.patch_size // 2
    shape = darr.shape

    def one(block_info: Any = None) -> np.ndarray:
        loc = block_info[None]["array-location"]
        region = tuple(
            slice(max(0, a - h), min(n, b + h)) for (a, b), n in zip(loc, shape, strict=True)
        )
        x = np.asarray(darr[region].compute(scheduler="synchronous"), np.float32)
        y = fn(
            x,
            patch_size=cfg.patch_size,
            search_radius=cfg.search_radius,
            strength=cfg.strength,
            sigma=sigma,
        )
        core = tuple(slice(a - r.start, b - r.start) for (a, b), r in zip(loc, region, strict=True))
        return np.ascontiguousarray(y[core])

    out = da.map_blocks(
        one, dtype=np.float32, chunks=darr.chunks, meta=np.empty((0, 0, 0), np.float32)
    )
    with dask.config.set(scheduler="synchronous"):
        return _to_zarr(out, ctx.stage_dir / "denoised.zarr")


def _run_segment_ooc(ctx: StageContext) -> StageOutput:
    """Global mixture fit on a sample, then per-voxel Bayes block by block."""
    from microbat.core.phases import PhaseTable
    from microbat.imaging.segment import fit_mixture

    cfg = ctx.config.segment
    stage_in = "denoise" if ctx.status("denoise") == "complete" else "input"
    darr = ctx.obj(stage_in, "dask")
    table = PhaseTable.parse(cfg.phases)
    names_order = cfg.order or list(table.names)
    dark_to_bright = [table.label_of(nm) for nm in names_order]
    ctx.step("Gaussian mixture fitted on a strided sample of the whole volume")
    sample = _dask_sample(darr, 4_000_000).astype(np.float32)
    fit = fit_mixture(
        sample, n_components=len(table), variance=cfg.variance, partial_volume=cfg.partial_volume
    )
    # Classify on the 4096-bin grid of the sample's range, as segment() does on the
    # whole image (the fit itself runs on a merged histogram).
    lo = float(sample.min())
    hi = float(sample.max())
    nb = 4096
    width = (hi - lo) / nb
    scale = 1.0 / width
    centers = lo + (np.arange(nb) + 0.5) * width
    scores = fit.class_scores(centers)
    post = scores / np.maximum(scores.sum(0), 1e-300)
    rank = np.argmax(post, axis=0)
    label_lut = np.asarray(dark_to_bright, np.uint8)[rank]
    unc_lut = (1.0 - post.max(0)).astype(np.float32)
    lo32, sc32 = np.float32(lo), np.float32(scale)

    def bins_of(block: np.ndarray) -> np.ndarray:
        v = (np.asarray(block, np.float32) - lo32) * sc32
        return np.clip(np.where(v > 0, v, 0).astype(np.int64), 0, nb - 1)

    ctx.step("classifying block by block (Bayes, no spatial prior)")
    labels = darr.map_blocks(lambda b: label_lut[bins_of(b)], dtype=np.uint8)
    stored = _to_zarr(labels, ctx.stage_dir / "labels.zarr")
    unc = darr.map_blocks(lambda b: unc_lut[bins_of(b)], dtype=np.float32)
    counts = _block_bincount(stored, 256)
    n = float(counts.sum())
    fractions = {p.name: float(counts[p.label] / n) for p in table.values()}
    names = [table.by_label(lab).name for lab in dark_to_bright]
    thresholds = [float(centers[i]) for i in np.flatnonzero(np.diff(rank) != 0)]
    summary = {
        "method": "gmm",
        "out_of_core": True,
        "spatial_prior": "none",
        "note": "out of core: per-voxel Bayes with one mixture fitted on a strided sample "
        "of the whole volume; the Potts prior and the PSF refinement run in memory only",
        "means": dict(zip(names, fit.means, strict=True)),
        "variances": dict(zip(names, fit.variances, strict=True)),
        "weights": dict(zip(names, fit.weights, strict=True)),
        "thresholds": thresholds,
        "mixture": fit.to_dict(),
        "expected_error": float(unc.mean(dtype=np.float64).compute()),
        "volume_fractions": fractions,
        "phases": table.to_list(),
        "segmented_from": stage_in,
        "sample_voxels": int(sample.size),
    }
    if ctx.source.kind == "synthetic":  # the phantom is small enough to compare whole
        truth = ctx.obj("input", "truth")
        seg_ms = truth.with_labels(np.asarray(stored.compute()), phases=table)
        summary["accuracy_vs_truth"] = _agreement(truth, seg_ms)
    arrays = mid_slices(stored, prefix="labels_")
    arrays.update(mid_slices(unc, prefix="uncertainty_"))
    x = np.asarray(fit.bin_centers, float)
    c = np.asarray(fit.counts, float)
    arrays["fit_centers"] = x
    arrays["fit_counts"] = c
    arrays["fit_components"] = fit.component_pdfs(x) * c.sum() * (x[1] - x[0])
    return StageOutput(summary=summary, arrays=arrays, objects={"labels": stored})


def _labels_source(ctx: StageContext) -> tuple[Any, Any]:
    """The full labels (Dask) and the phase table, out of core."""
    from microbat.core.phases import PhaseTable

    if ctx.status("segment") == "complete":
        return ctx.obj("segment", "labels"), PhaseTable.from_list(ctx.summary("segment")["phases"])
    return ctx.obj("input", "labels"), PhaseTable.from_list(ctx.summary("input")["phases"])


def _analysis_microstructure(ctx: StageContext) -> Any:
    from microbat.core.microstructure import Microstructure

    cached = getattr(ctx, "_analysis_ms", None)
    if cached is not None:
        return cached
    labels, table = _labels_source(ctx)
    crop = _central(labels.shape, ctx.config.scale.analysis_crop)
    ms = Microstructure(
        np.asarray(labels[crop].compute()),
        ctx.voxel_size,
        table,
        thickness_axis=ctx.config.input.thickness_axis,
        allow_empty_phases=True,
        metadata={"analysis_crop": [[s.start, s.stop] for s in crop]},
    )
    ctx._analysis_ms = ms  # type: ignore[attr-defined]
    return ms


def _run_connectivity_ooc(ctx: StageContext) -> StageOutput:
    """Clusters labelled per block, stitched across block faces, classified per axis."""
    from scipy import ndimage
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    labels, table = _labels_source(ctx)
    axis = ctx.config.connectivity.axis
    axis = ctx.config.input.thickness_axis if axis is None else axis
    n_total = labels.size
    summary: dict[str, Any] = {
        "axis": axis,
        "phases": [],
        "connectivity": {},
        "n_clusters": {},
        "cluster_counts": {},
        "volume_fractions": {},
        "phase_fractions": {},
        "out_of_core": True,
        "phases_table": table.to_list(),
    }
    arrays = mid_slices(labels, prefix="labels_")
    work = ctx.stage_dir / "_clusters.zarr"
    for p in table.values():
        fluid = p.role.value in ("electrolyte", "gas")
        conn = 26 if fluid else 6
        struct = ndimage.generate_binary_structure(3, 3 if fluid else 1)
        ctx.step(f"{p.name}: labelling clusters block by block ({conn}-connected)")
        lab = p.label

        def count(b: np.ndarray, _lab: int = lab, _s: Any = struct) -> np.ndarray:
            return np.array([[[ndimage.label(b == _lab, structure=_s)[1]]]], np.int64)

        per_block = np.asarray(labels.map_blocks(count, dtype=np.int64, chunks=(1, 1, 1)).compute())
        offsets = np.concatenate([[0], np.cumsum(per_block.ravel())[:-1]]).reshape(per_block.shape)
        n_clusters_local = int(per_block.sum())

        itype = np.int32 if n_clusters_local < 2**31 - 1 else np.int64

        def label_block(b, block_info=None, _lab=lab, _s=struct, _off=offsets, _t=itype):
            loc = block_info[0]["chunk-location"]
            out, _ = ndimage.label(b == _lab, structure=_s, output=_t)
            out[out > 0] += _t(_off[loc])
            return out

        glob = _to_zarr(labels.map_blocks(label_block, dtype=itype), work)
        ctx.step(f"{p.name}: stitching clusters across block faces")
        pairs = [np.zeros((0, 2), np.int64)]
        for ax in range(3):
            edges = np.cumsum(labels.chunks[ax])[:-1]
            for e in edges:
                a = np.asarray(np.take(glob, e - 1, axis=ax).compute())
                b = np.asarray(np.take(glob, e, axis=ax).compute())
                pairs.append(_face_pairs(a, b, fluid))
        pr = np.concatenate(pairs)
        m = n_clusters_local + 1
        graph = coo_matrix(
            (np.ones(pr.shape[0], np.int8), (pr[:, 0], pr[:, 1])), shape=(m, m)
        ).tocsr()
        n_comp, comp = connected_components(graph, directed=False)
        first = np.asarray(np.take(glob, 0, axis=axis).compute())
        last = np.asarray(np.take(glob, glob.shape[axis] - 1, axis=axis).compute())
        touch0 = np.zeros(n_comp, bool)
        touch1 = np.zeros(n_comp, bool)
        touch0[comp[np.unique(first[first > 0])]] = True
        touch1[comp[np.unique(last[last > 0])]] = True
        cls = np.where(touch0 & touch1, 1, np.where(touch0 | touch1, 2, 3)).astype(np.uint8)
        has = np.zeros(n_comp, bool)
        has[comp[1:]] = True  # components holding at least one cluster of the phase
        has[comp[0]] = False
        lut = cls[comp]
        lut[0] = 0
        cmap = glob.map_blocks(lambda g, _l=lut: _l[g], dtype=np.uint8)
        vol = _block_bincount(cmap, 4)
        phase_vox = int(vol[1:].sum())
        names = ("percolating", "dead_end", "isolated")
        summary["phases"].append(p.name)
        summary["connectivity"][p.name] = conn
        summary["n_clusters"][p.name] = int(has.sum())
        summary["cluster_counts"][p.name] = {
            nm: int(np.count_nonzero(has & (cls == k))) for k, nm in enumerate(names, start=1)
        }
        summary["volume_fractions"][p.name] = {
            nm: float(vol[k] / n_total) for k, nm in enumerate(names, start=1)
        }
        summary["phase_fractions"][p.name] = {
            nm: (float(vol[k] / phase_vox) if phase_vox else None)
            for k, nm in enumerate(names, start=1)
        }
        arrays.update(mid_slices(cmap, prefix=f"class_{p.name}_"))
        shutil.rmtree(work, ignore_errors=True)
    return StageOutput(summary=summary, arrays=arrays)


def _block_bincount(darr: Any, minlength: int) -> np.ndarray:
    """Counts of each integer value of a Dask array, block by block."""
    import dask

    def one(b: np.ndarray) -> np.ndarray:
        return np.bincount(np.asarray(b).ravel(), minlength=minlength)

    parts = dask.compute(*[dask.delayed(one)(blk) for blk in darr.to_delayed().ravel()])
    width = max(p.size for p in parts)
    return np.sum([np.pad(p, (0, width - p.size)) for p in parts], axis=0)


def _face_pairs(a: np.ndarray, b: np.ndarray, full: bool) -> np.ndarray:
    """Cluster-label pairs joined across a block face (planes ``a`` | ``b``).

    6-connectivity joins voxels facing each other; 26-connectivity also joins each
    voxel to the 8 in-plane neighbours of its opposite voxel.
    """
    out = []
    shifts = [(0, 0)] if not full else [(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)]
    n0, n1 = a.shape
    for di, dj in shifts:
        sa = a[max(0, -di) : n0 - max(0, di), max(0, -dj) : n1 - max(0, dj)]
        sb = b[max(0, di) : n0 - max(0, -di), max(0, dj) : n1 - max(0, -dj)]
        m = (sa > 0) & (sb > 0)
        if m.any():
            out.append(np.unique(np.stack([sa[m], sb[m]], axis=1), axis=0))
    return np.concatenate(out) if out else np.zeros((0, 2), np.int64)


# ============================================================================ report
def _run_report(ctx: StageContext) -> StageOutput:
    from microbat.pipeline.report import write_report

    ctx.step("writing results.json and the HTML report")
    files = write_report(ctx)
    return StageOutput(summary={"files": {k: str(v) for k, v in files.items()}})


STAGES: tuple[Stage, ...] = (
    Stage(
        "input", "Input", (), ("input", "synthetic", "scale"), _run_input, _load_input, n_steps=2
    ),
    Stage(
        "denoise",
        "Denoise (non-local means)",
        ("input",),
        ("denoise",),
        _run_denoise,
        _load_denoise,
        _denoise_active,
        n_steps=2,
    ),
    Stage(
        "segment",
        "Segment (GMM + Bayes)",
        ("input", "denoise"),
        ("segment",),
        _run_segment,
        _load_segment,
        _imaging_active,
        n_steps=2,
    ),
    Stage(
        "connectivity",
        "Connectivity classes",
        ("input", "segment"),
        ("connectivity",),
        _run_connectivity,
    ),
    Stage("metrics", "Morphology metrics", ("input", "segment"), ("metrics",), _run_metrics),
    Stage(
        "transport",
        "Transport (tortuosity, random walk, Bruggeman)",
        ("input", "segment"),
        ("transport",),
        _run_transport,
        active=_transport_active,
        n_steps=4,
    ),
    Stage(
        "cell",
        "Cell performance (P2D)",
        ("input", "metrics", "transport"),
        ("cell",),
        _run_cell,
        active=_cell_active,
        n_steps=3,
        needs_objects=False,
    ),
    Stage(
        "eis",
        "Impedance (EIS)",
        ("input", "segment"),
        ("eis",),
        _run_eis,
        active=_eis_active,
        n_steps=2,
    ),
    Stage(
        "report",
        "Report",
        ("input", "denoise", "segment", "connectivity", "metrics", "transport", "cell", "eis"),
        ("report",),
        _run_report,
        needs_objects=False,
    ),
)


def stage_names() -> list[str]:
    """Names of the stages in run order."""
    return [s.name for s in STAGES]
