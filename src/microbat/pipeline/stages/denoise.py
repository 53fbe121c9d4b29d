"""Twin stage ``denoise``: non-local means on the grayscale input.

Estimates the noise level and filters with :func:`microbat.imaging.denoise_nlm`;
out of core, block by block with a halo (same result as in memory), or on a
``dask.distributed`` cluster through the filter's own ``map_overlap`` path. Its
before/after slices and noise figures appear in the segment stage's "Imaging QC"
section.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from microbat.imaging.denoise import denoise_nlm, estimate_sigma
from microbat.pipeline.base import (
    Stage,
    StageContext,
    StageOutput,
    StageSettings,
    central,
    histogram,
    imaging_skipped,
    mid_slices,
)
from microbat.pipeline.chunked import chunk_shape, dask_sample, from_zarr, to_zarr

__all__ = ["STAGE", "DenoiseSettings"]


class DenoiseSettings(StageSettings):
    """Non-local means (``microbat.imaging.denoise_nlm``)."""

    enabled: bool = Field(True, description="Denoise before segmenting.")
    patch_size: int = Field(
        3,
        ge=1,
        description="Edge of the compared patch (odd).",
        json_schema_extra={"unit": "voxels"},
    )
    search_radius: int = Field(
        3,
        ge=0,
        description="Half-width of the search window.",
        json_schema_extra={"unit": "voxels"},
    )
    strength: float = Field(0.8, gt=0, description="Filter strength h / sigma.")
    sigma: float | None = Field(
        None,
        ge=0,
        description="Noise standard deviation in image units. Default: estimated.",
        json_schema_extra={"unit": "image units"},
    )
    chunks: int | None = Field(
        None,
        ge=16,
        description="Filter in cubic blocks of this edge with a halo (Dask map_overlap) to "
        "bound the filter's memory; same result. Default: the whole volume at once.",
        json_schema_extra={"unit": "voxels"},
    )


def _active(ctx: StageContext) -> str | None:
    why = imaging_skipped(ctx)
    if why:
        return why
    if not ctx.config.denoise.enabled:
        return "denoising is switched off (denoise.enabled = false)"
    return None


def _run(ctx: StageContext) -> StageOutput:
    if ctx.out_of_core:
        return _run_chunked(ctx)
    cfg = ctx.config.denoise
    image = np.asarray(ctx.obj("input", "image"))
    ctx.step("estimating the noise level")
    sigma_in = float(estimate_sigma(image)) if cfg.sigma is None else float(cfg.sigma)
    ctx.step(
        f"non-local means (patch {cfg.patch_size}, search radius {cfg.search_radius}, "
        f"sigma {sigma_in:.4g})"
    )
    out = denoise_nlm(
        image,
        patch_size=cfg.patch_size,
        search_radius=cfg.search_radius,
        strength=cfg.strength,
        sigma=sigma_in,
        chunks=cfg.chunks,
    )
    ctx.write_npy("denoised", out)
    summary = _summary(ctx, sigma_in, float(estimate_sigma(out)))
    arrays = mid_slices(out, prefix="denoised_")
    arrays.update(histogram(out))
    return StageOutput(summary=summary, arrays=arrays, objects={"image": out})


def _summary(ctx: StageContext, sigma_in: float, sigma_out: float) -> dict[str, Any]:
    return {
        "sigma_in": sigma_in,
        "sigma_out_estimate": sigma_out,
        "noise_reduction": sigma_in / sigma_out if sigma_out > 0 else None,
        "h": ctx.config.denoise.strength * sigma_in,
        "settings": ctx.config.section("denoise"),
    }


def _load(ctx: StageContext, d: Path) -> dict[str, Any]:
    if ctx.out_of_core:
        return {"dask": from_zarr(d / "denoised.zarr")}
    return {"image": np.load(d / "denoised.npy", mmap_mode="r")}


# ================================================================== out of core
def _run_chunked(ctx: StageContext) -> StageOutput:
    cfg = ctx.config.denoise
    darr = ctx.obj("input", "dask")
    if cfg.sigma is None:
        ctx.step("estimating the noise level on the central block")
        centre = np.asarray(darr[central(darr.shape, (128, 128, 128))].compute())
        sigma_in = float(estimate_sigma(centre))
    else:
        sigma_in = float(cfg.sigma)
    ctx.step(
        f"non-local means block by block ({'x'.join(map(str, chunk_shape(ctx)))} chunks, "
        f"halo {cfg.search_radius + cfg.patch_size // 2}), sigma {sigma_in:.4g}"
    )
    if ctx.config.scale.scheduler:
        # on a cluster: the imaging module's map_overlap path, one block per task
        out = denoise_nlm(
            darr,
            patch_size=cfg.patch_size,
            search_radius=cfg.search_radius,
            strength=cfg.strength,
            sigma=sigma_in,
        )
        stored = to_zarr(out, ctx.stage_dir / "denoised.zarr")
    else:
        stored = _denoise_blocks(ctx, darr, sigma_in)
    centre = np.asarray(stored[central(stored.shape, (128, 128, 128))].compute())
    summary = _summary(ctx, sigma_in, float(estimate_sigma(centre)))
    summary["out_of_core"] = True
    arrays = mid_slices(stored, prefix="denoised_")
    arrays.update(histogram(dask_sample(stored, 2_000_000)))
    return StageOutput(summary=summary, arrays=arrays, objects={"dask": stored})


def _denoise_blocks(ctx: StageContext, darr: Any, sigma: float) -> Any:
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
        y = denoise_nlm(
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
        return to_zarr(out, ctx.stage_dir / "denoised.zarr")


STAGE = Stage(
    "denoise",
    "Denoise (non-local means)",
    ("input",),
    ("denoise",),
    _run,
    _load,
    _active,
    n_steps=2,
    settings=(("denoise", DenoiseSettings),),
)
