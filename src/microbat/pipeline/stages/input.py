"""Twin stage ``input``: read the volume (or generate the phantom) and describe it.

Reads a grayscale or labelled volume from a file, an array or a Microstructure,
or generates the built-in synthetic phantom (``microbat.synth.electrode`` +
``microbat.synth.phantom``); decides whether the input holds labels (then the
imaging stages are skipped), records its voxel size, shape and intensity
statistics. ``input.crop`` keeps a sub-volume (only that part of a file is read;
the phantom is cropped after it is generated), recorded as ``crop`` with the
uncropped shape. Out of core (``scale.chunks``) the volume is opened lazily as a
Dask array and cropped lazily. Report section: "Input and stages" (with the table
of every stage's status).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from microbat import synth
from microbat.core.errors import InvalidInputError, VoxelSizeError
from microbat.core.microstructure import Microstructure, normalize_voxel_size
from microbat.core.phases import PhaseTable, default_phase_table
from microbat.core.results import to_jsonable
from microbat.io import load_microstructure, read_volume
from microbat.io.readers import (
    is_labelled,
    label_counts,
    microstructure_from_volume,
)
from microbat.io.volume import Volume, parse_crop
from microbat.pipeline.base import (
    Stage,
    StageContext,
    StageOutput,
    StageSettings,
    histogram,
    mid_slices,
    phase_rows,
    sample,
)
from microbat.pipeline.chunked import chunk_shape, dask_sample
from microbat.pipeline.reportkit import ReportSection, ReportView, esc, num, table, um

__all__ = ["STAGE", "InputSettings", "SyntheticSettings", "crop_slices"]


class InputSettings(StageSettings):
    """How to read the input volume."""

    voxel_size: list[float] | None = Field(
        None,
        description=(
            "Voxel edge in m, one value or one per axis (axis order z, y, x). Default: what "
            "the file says; a file that does not say it is refused (never guessed)."
        ),
        json_schema_extra={"unit": "m"},
    )
    kind: Literal["auto", "grayscale", "labels"] = Field(
        "auto",
        description=(
            "Whether the input holds grayscale intensities (runs denoise, segment) or phase "
            "labels (skips imaging). auto: floats and integer images with more than 16 "
            "distinct values are grayscale."
        ),
    )
    phases: str | None = Field(
        None,
        description=(
            "Phase table of a labelled input without one, e.g. 'pore=0,cbd=1,active=2' "
            "(roles inferred from the names)."
        ),
    )
    thickness_axis: int = Field(
        0,
        ge=0,
        le=2,
        description="Array axis through the electrode thickness (current collector at index 0).",
    )
    dataset: str | None = Field(
        None, description="Dataset or array name inside an HDF5, Zarr or NPZ container."
    )
    crop: str | None = Field(
        None,
        description=(
            "Work on a sub-volume: voxel ranges per axis in array order, 'z0:z1,y0:y1,x0:x1' "
            "(an empty bound runs to the edge). Only that part of a file is read; the "
            "report and provenance record it with the uncropped shape."
        ),
        json_schema_extra={"unit": "voxels"},
    )

    @field_validator("crop")
    @classmethod
    def _crop(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        parse_crop(v, what="input.crop")
        return v.strip()

    @field_validator("voxel_size")
    @classmethod
    def _vs(cls, v: list[float] | None) -> list[float] | None:
        if v is None:
            return None
        if len(v) not in (1, 2, 3):
            raise ValueError(f"give one voxel size or one per axis, got {len(v)} values")
        for x in v:
            if not (math.isfinite(x) and 0 < x <= 1e-3):
                raise ValueError(
                    f"voxel size {x!r} m is not a positive length below 1 mm (voxel sizes "
                    "are in metres: 0.4 µm is 4e-7)"
                )
        return v


class SyntheticSettings(StageSettings):
    """The built-in phantom (used when the twin runs without an input file)."""

    shape: list[int] = Field(
        [96, 96, 96],
        description="Volume in voxels (axis 0 through the thickness).",
        json_schema_extra={"unit": "voxels"},
    )
    voxel_size: float = Field(
        4e-7, gt=0, le=1e-3, description="Voxel edge.", json_schema_extra={"unit": "m"}
    )
    seed: int = Field(0, description="Seed of the generator and the noise.")
    active_fraction: float = Field(0.55, gt=0, lt=1, description="Active-material volume fraction.")
    cbd_fraction: float = Field(0.10, ge=0, lt=1, description="Carbon-binder volume fraction.")
    mean_radius: float = Field(
        4e-6,
        gt=0,
        le=1e-4,
        description="Number-mean particle radius.",
        json_schema_extra={"unit": "m"},
    )
    psf_sigma: float = Field(
        1.0,
        ge=0,
        description="Gaussian blur of the rendering (point-spread function).",
        json_schema_extra={"unit": "voxels"},
    )
    snr: float = Field(
        4.0, gt=0, description="Signal-to-noise ratio (I_active - I_pore) / sigma_noise."
    )

    @field_validator("shape")
    @classmethod
    def _shape(cls, v: list[int]) -> list[int]:
        if len(v) != 3 or any(n < 16 for n in v):
            raise ValueError(f"shape must be three sizes of at least 16 voxels, got {v}")
        return v


# ============================================================================ run
def _voxel_size(ctx: StageContext, file_vs: Sequence[float] | None, ndim: int) -> Any:
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


def crop_slices(text: str | None, shape: Sequence[int]) -> tuple[slice, ...] | None:
    """The slices of a crop ``'z0:z1,y0:y1,x0:x1'`` checked against ``shape``.

    Parameters
    ----------
    text : str or None
        The crop (``input.crop``); ``None`` or empty for none.
    shape : sequence of int
        Shape of the uncropped volume.

    Returns
    -------
    tuple of slice or None
        One ``slice(start, stop)`` per axis, or ``None`` without a crop.

    Raises
    ------
    InvalidInputError
        A malformed range, more ranges than axes, or an empty range.
    """
    if not text:
        return None
    # A zero-stride stand-in of the shape: Volume.crop checks the bounds, reads nothing.
    probe = Volume(np.broadcast_to(np.uint8(0), tuple(shape)))
    box = probe.crop(parse_crop(text, what="input.crop")).metadata["crop"]
    return tuple(slice(a, b) for a, b in box)


def _record_crop(summary: dict[str, Any], box: tuple[slice, ...] | None, shape: Any) -> None:
    if box is not None:
        summary["crop"] = [[s.start, s.stop] for s in box]
        summary["uncropped_shape"] = [int(n) for n in shape]


def _crop_ms(ms: Microstructure, box: tuple[slice, ...] | None) -> Microstructure:
    if box is None:
        return ms
    part = ms.crop(*box)  # a view: copied so that the whole volume can be released
    return part.with_labels(np.ascontiguousarray(part.labels))


def _decide_labelled(kind: str, auto: Callable[[], bool]) -> bool:
    if kind == "labels":
        return True
    if kind == "grayscale":
        return False
    return bool(auto())


def _run(ctx: StageContext) -> StageOutput:
    if ctx.out_of_core:
        return _run_chunked(ctx)
    cfg = ctx.config.input
    src = ctx.source
    summary: dict[str, Any] = {"kind": src.kind, "identity": src.identity}
    arrays: dict[str, np.ndarray] = {}
    objects: dict[str, Any] = {}
    if src.kind == "synthetic":
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
        box = crop_slices(cfg.crop, truth.shape)
        _record_crop(summary, box, truth.shape)
        image = ph.image if box is None else np.ascontiguousarray(ph.image[box])
        truth = _crop_ms(truth, box)
        ctx.write_npy("image", image)
        ctx.save_microstructure(truth, "truth")
        vs = truth.voxel_size
        summary.update(
            source="built-in synthetic phantom (microbat.synth.electrode + phantom)",
            format="synthetic",
            labelled=False,
            generator=to_jsonable(truth.metadata.get("generator", {})),
            truth_volume_fractions=truth.volume_fractions(),
            truth_phases=phase_rows(truth),
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
            ctx.step(f"reading {src.path}")
            vol = read_volume(src.path, dataset=cfg.dataset, lazy=cfg.crop is not None)
            if vol.ndim != 3:
                raise InvalidInputError(
                    f"{src.path}: holds a {vol.ndim}D array of shape {vol.shape}; the twin "
                    "needs a 3D volume"
                )
            box = crop_slices(cfg.crop, vol.shape)
            if box is not None:
                _record_crop(summary, box, vol.shape)
                whole, vol = vol, vol.crop(box)
                whole.close()
            labelled = _decide_labelled(cfg.kind, lambda: is_labelled(vol, phases=cfg.phases))
            vs = _voxel_size(ctx, vol.voxel_size, vol.ndim)
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
            box = crop_slices(cfg.crop, src.array.shape)
            _record_crop(summary, box, src.array.shape)
            ms = _crop_ms(src.array, box)
            labelled = True
            vs = _voxel_size(ctx, ms.voxel_size, ms.ndim)
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
            box = crop_slices(cfg.crop, arr.shape)
            _record_crop(summary, box, arr.shape)
            if box is not None:
                arr = np.ascontiguousarray(arr[box])
            labelled = _decide_labelled(
                cfg.kind, lambda: is_labelled(Volume(arr), phases=cfg.phases)
            )
            vs = _voxel_size(ctx, None, arr.ndim)
            summary.update(source="array given in Python", format="memory")
            if labelled:
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
        s = sample(image).astype(np.float64)
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
        arrays.update(histogram(image))
    else:
        ms = objects["ms"]
        summary.update(
            shape=list(ms.shape),
            dtype=str(ms.labels.dtype),
            phases=phase_rows(ms),
            volume_fractions=ms.volume_fractions(),
        )
        arrays.update(mid_slices(ms.labels, prefix="labels_"))
        if src.kind != "file":
            ctx.save_microstructure(ms, "labels")
    _geometry(summary, vs, cfg.thickness_axis)
    return StageOutput(summary=summary, arrays=arrays, objects=objects)


def _geometry(summary: dict[str, Any], vs: Sequence[float], thickness_axis: int) -> None:
    summary["voxel_size_m"] = list(vs)
    summary["extent_m"] = [n * h for n, h in zip(summary["shape"], vs, strict=True)]
    summary["thickness_axis"] = thickness_axis
    summary["n_voxels"] = int(np.prod(summary["shape"]))


def _load(ctx: StageContext, d: Path) -> dict[str, Any]:
    if ctx.out_of_core:
        return _load_chunked(ctx, d)
    src = ctx.source
    cfg = ctx.config.input
    if src.kind == "synthetic":
        return {
            "image": np.load(d / "image.npy", mmap_mode="r"),
            "truth": load_microstructure(d / "truth.h5"),
        }
    labelled = ctx.labelled_input
    vs = ctx.voxel_size
    crop = ctx.summary("input").get("crop")
    box = None if crop is None else tuple(slice(a, b) for a, b in crop)
    if src.kind == "file":
        vol = read_volume(src.path, dataset=cfg.dataset, lazy=box is not None)
        if box is not None:
            whole, vol = vol, vol.crop(box)
            whole.close()
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
        return {"ms": load_microstructure(d / "labels.h5")}
    arr = np.asarray(src.array)
    return {"image": arr if box is None else np.ascontiguousarray(arr[box])}


# ================================================================== out of core
class _InMemory:
    """A view of the context that reports ``out_of_core = False`` (synthetic input)."""

    def __init__(self, ctx: StageContext) -> None:
        self._ctx = ctx

    out_of_core = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)


def _phase_table_of(vol: Any, phases: str | None, counts: np.ndarray | None) -> Any:
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


def _run_chunked(ctx: StageContext) -> StageOutput:
    import dask.array as da

    cfg = ctx.config.input
    src = ctx.source
    blocks = chunk_shape(ctx)
    summary: dict[str, Any] = {"kind": src.kind, "identity": src.identity, "out_of_core": True}
    objects: dict[str, Any] = {}
    if src.kind == "synthetic":
        out = _run(_InMemory(ctx))  # type: ignore[arg-type]
        out.summary["out_of_core"] = True
        out.summary["chunks"] = list(blocks)
        out.objects = {
            "dask": da.from_array(np.asarray(out.objects["image"]), chunks=blocks),
            "truth": out.objects["truth"],
        }
        return out
    if src.kind == "file":
        ctx.step(f"opening {src.path} lazily")
        vol = read_volume(src.path, dataset=cfg.dataset, lazy=True)
        darr = vol.to_dask(chunks=blocks)

        def auto() -> bool:
            # A strided sample with many distinct values is grayscale: no need to
            # stream the whole volume through label_counts to find out.
            if vol.dtype.kind in "iu" and np.unique(dask_sample(darr, 1_000_000)).size > 16:
                return False
            return is_labelled(vol, phases=cfg.phases)

        labelled = _decide_labelled(cfg.kind, auto)
        vs = _voxel_size(ctx, vol.voxel_size, vol.ndim)
        summary.update(source=str(src.path), format=vol.format)
        table = (
            _phase_table_of(vol, cfg.phases, None if cfg.phases else label_counts(vol.data))
            if labelled
            else None
        )
    else:
        arr = src.array.labels if src.kind == "microstructure" else np.asarray(src.array)
        labelled = src.kind == "microstructure" or cfg.kind == "labels"
        vs = _voxel_size(
            ctx, src.array.voxel_size if src.kind == "microstructure" else None, arr.ndim
        )
        darr = da.from_array(arr, chunks=blocks)
        summary.update(source="array given in Python", format="memory")
        table = None
        if labelled:
            table = (
                src.array.phases
                if src.kind == "microstructure"
                else PhaseTable.parse(cfg.phases or "pore=0,cbd=1,active=2")
            )
    if darr.ndim != 3:
        raise InvalidInputError(f"the input has shape {darr.shape}; the twin needs a 3D volume")
    box = crop_slices(cfg.crop, darr.shape)
    _record_crop(summary, box, darr.shape)
    if box is not None:
        darr = darr[box].rechunk(blocks)
    summary["labelled"] = labelled
    summary.update(shape=list(darr.shape), dtype=str(darr.dtype), chunks=list(blocks))
    ctx.step("input statistics from a strided sample")
    arrays: dict[str, np.ndarray] = {}
    if labelled:
        summary["phases"] = table.to_list()
        counts = np.bincount(dask_sample(darr, 2_000_000).ravel().astype(np.intp))
        summary["volume_fractions_sampled"] = {
            p.name: float(counts[p.label] / counts.sum()) if p.label < counts.size else 0.0
            for p in table.values()
        }
        arrays.update(mid_slices(darr, prefix="labels_"))
        objects.update(labels=darr, phases=table)
    else:
        smp = dask_sample(darr, 2_000_000).astype(np.float64)
        summary["intensity"] = {
            "min": float(smp.min()),
            "max": float(smp.max()),
            "mean": float(smp.mean()),
            "std": float(smp.std()),
            "non_finite_fraction_sampled": float(1.0 - np.isfinite(smp).mean()),
        }
        arrays.update(mid_slices(darr, prefix="raw_"))
        arrays.update(histogram(smp))
        objects["dask"] = darr
    _geometry(summary, vs, cfg.thickness_axis)
    summary["bytes"] = int(darr.nbytes)
    return StageOutput(summary=summary, arrays=arrays, objects=objects)


def _load_chunked(ctx: StageContext, d: Path) -> dict[str, Any]:
    import dask.array as da

    src = ctx.source
    cfg = ctx.config.input
    blocks = chunk_shape(ctx)
    if src.kind == "synthetic":
        objs = _load(_InMemory(ctx), d)  # type: ignore[arg-type]
        return {"dask": da.from_array(objs["image"], chunks=blocks), "truth": objs["truth"]}
    s = ctx.summary("input")
    if src.kind == "file":
        darr = read_volume(src.path, dataset=cfg.dataset, lazy=True).to_dask(chunks=blocks)
    else:
        arr = src.array.labels if src.kind == "microstructure" else np.asarray(src.array)
        darr = da.from_array(arr, chunks=blocks)
    if s.get("crop"):
        darr = darr[tuple(slice(a, b) for a, b in s["crop"])].rechunk(blocks)
    if s.get("labelled"):
        return {"labels": darr, "phases": PhaseTable.from_list(s["phases"])}
    return {"dask": darr}


# ========================================================================= report
def _report(view: ReportView) -> list[ReportSection]:
    inp = view.summary("input")
    vs = inp.get("voxel_size_m") or []
    rows = [
        ("source", esc(inp.get("source", view.source.identity.get("source", "")))),
        ("format", esc(inp.get("format", ""))),
        (
            "content",
            "phase labels (imaging skipped)" if inp.get("labelled") else "grayscale intensities",
        ),
        ("shape (voxels, axis 0 first)", esc(" × ".join(map(str, inp.get("shape") or [])))),
        *(
            [
                (
                    "crop",
                    esc(
                        ",".join(f"{a}:{b}" for a, b in inp["crop"])
                        + " of "
                        + " × ".join(map(str, inp.get("uncropped_shape") or []))
                    ),
                )
            ]
            if inp.get("crop")
            else []
        ),
        ("voxel size", ", ".join(um(v) for v in vs)),
        ("extent", ", ".join(um(v) for v in inp.get("extent_m") or [])),
        ("thickness axis", esc(inp.get("thickness_axis", ""))),
        ("data type", esc(inp.get("dtype", ""))),
        ("sha256", f"<code>{esc(str(view.source.identity.get('sha256', ''))[:16])}…</code>"),
    ]
    if inp.get("intensity"):
        it = inp["intensity"]
        rows.append(
            (
                "intensity min / mean / max (std)",
                f"{num(it.get('min'))} / {num(it.get('mean'))} / {num(it.get('max'))} "
                f"({num(it.get('std'))})",
            )
        )
    if inp.get("out_of_core"):
        crop = view.summary("metrics").get("analysis_crop") or view.summary("transport").get(
            "analysis_crop"
        )
        line = f"out of core, chunks {' × '.join(map(str, inp.get('chunks') or []))} voxels"
        if crop:
            line += "; metrics, transport and cell on the central subvolume " + " × ".join(
                f"[{a}:{b}]" for a, b in crop
            )
        rows.append(("processing", esc(line)))
    if inp.get("phantom"):
        ph = inp["phantom"]
        rows.append(
            (
                "phantom",
                f"blur σ {num(ph.get('psf_sigma_voxels'))} voxels, SNR {num(ph.get('snr'))} "
                f"(measured {num(ph.get('measured_snr'), '.3g')})",
            )
        )
    body = table(["", ""], rows, left=2)
    st_rows = []
    for n, r in view.records.items():
        if n == "report":
            continue
        st_rows.append(
            (
                esc(r.stage.title),
                f'<span class="status-{r.status}">{esc(r.status.replace("_", " "))}</span>'
                + (" (reused)" if r.reused else ""),
                num(r.wall_time_s, ".2f", "s")
                if not r.reused
                else f"{num(r.computed_time_s, '.2f', 's')} (earlier run)",
                esc(r.reason),
            )
        )
    body += "<h3>Stages</h3>" + table(["stage", "status", "time", "note"], st_rows, left=4)
    return [ReportSection("input", "Input and stages", body)]


def _headline(results: Mapping[str, Any]) -> dict[str, Any]:
    inp = results.get("input") or {}
    return {
        "shape": inp.get("shape"),
        "voxel_size_m": inp.get("voxel_size_m"),
        "labelled_input": inp.get("labelled"),
        "crop": inp.get("crop"),
    }


STAGE = Stage(
    "input",
    "Input",
    (),
    ("input", "synthetic", "scale"),
    _run,
    _load,
    n_steps=2,
    settings=(("input", InputSettings), ("synthetic", SyntheticSettings)),
    report=_report,
    headline=_headline,
)
