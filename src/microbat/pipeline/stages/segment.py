"""Twin stage ``segment``: Gaussian mixture + Bayes segmentation of the grayscale image.

Labels the (denoised) image with :func:`microbat.imaging.segment` (mixture fit,
Potts prior, forward-model refinement of interface voxels), optionally reassigns
isolated solid clusters, and compares with the true labels of the synthetic
phantom. Out of core: one mixture fitted on a strided sample of the whole volume,
then per-voxel Bayes block by block. Report section: "Imaging QC" (slices after
each imaging step, the fitted histogram). Diagnosis: the expected
misclassification as a finding.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from microbat.core.phases import PhaseTable
from microbat.core.results import to_jsonable
from microbat.imaging.connectivity import remove_isolated
from microbat.imaging.segmentation import fit_mixture, segment
from microbat.io import load_microstructure
from microbat.pipeline.base import (
    Finding,
    Stage,
    StageContext,
    StageOutput,
    StageSettings,
    imaging_skipped,
    mid_slices,
    phase_rows,
)
from microbat.pipeline.chunked import block_bincount, dask_sample, from_zarr, to_zarr
from microbat.pipeline.reportkit import (
    Figures,
    ReportSection,
    ReportView,
    absent,
    esc,
    img,
    num,
    pct,
    qc_figure,
    split,
    table,
)

__all__ = ["STAGE", "SegmentSettings"]


class SegmentSettings(StageSettings):
    """Gaussian mixture + Bayes segmentation (``microbat.imaging.segment``)."""

    phases: str = Field(
        "pore,cbd,active",
        description="Output phases (name or name=label), from darkest to brightest by default.",
    )
    order: list[str] | None = Field(
        None, description="Phase names from the darkest to the brightest. Default: table order."
    )
    variance: Literal["tied", "free"] = Field(
        "tied", description="One noise variance for all phases, or one each."
    )
    partial_volume: bool = Field(
        True, description="Model interface voxels as mixtures of two phases."
    )
    spatial_prior: Literal["potts", "none"] = Field(
        "potts", description="Potts Markov random field (ICM) or per-voxel decision."
    )
    beta: float = Field(
        2.0,
        ge=0,
        description="Potts coupling per unlike 6-neighbour (microbat.imaging.reconstruct's "
        "default).",
        json_schema_extra={"unit": "nats"},
    )
    max_icm_iter: int = Field(20, ge=0, description="Largest number of ICM sweeps.")
    psf_sigma: float | Literal["auto"] | None = Field(
        1.0,
        description="Point-spread function of the scanner for the forward-model refinement of "
        "interface voxels; 'auto' estimates it; 0 skips the refinement.",
        json_schema_extra={"unit": "voxels"},
    )
    remove_isolated: bool = Field(
        False,
        description="Reassign isolated solid clusters (touching neither face) to the phase "
        "they share most faces with.",
    )


# ============================================================================ run
def _run(ctx: StageContext) -> StageOutput:
    if ctx.out_of_core:
        return _run_chunked(ctx)
    cfg = ctx.config.segment
    stage_in = "denoise" if ctx.status("denoise") == "complete" else "input"
    image = np.asarray(ctx.obj(stage_in, "image"))
    ctx.step(f"Gaussian mixture + Bayes ({cfg.phases}, prior {cfg.spatial_prior})")
    res = segment(
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
        ctx.step("reassigning isolated solid clusters")
        ms, removal = remove_isolated(ms)
    ctx.step("writing the labelled microstructure")
    ctx.save_microstructure(ms)
    summary = res.to_dict()
    summary["segmented_from"] = stage_in
    if removal is not None:
        summary["remove_isolated"] = to_jsonable(removal.to_dict())
    summary["phases"] = phase_rows(ms)
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


def _load(ctx: StageContext, d: Path) -> dict[str, Any]:
    if ctx.out_of_core:
        return {"labels": from_zarr(d / "labels.zarr")}
    return {"ms": load_microstructure(d / "microstructure.h5")}


# ================================================================== out of core
def _run_chunked(ctx: StageContext) -> StageOutput:
    """Global mixture fit on a sample, then per-voxel Bayes block by block."""
    cfg = ctx.config.segment
    stage_in = "denoise" if ctx.status("denoise") == "complete" else "input"
    darr = ctx.obj(stage_in, "dask")
    table_ = PhaseTable.parse(cfg.phases)
    names_order = cfg.order or list(table_.names)
    dark_to_bright = [table_.label_of(nm) for nm in names_order]
    ctx.step("Gaussian mixture fitted on a strided sample of the whole volume")
    smp = dask_sample(darr, 4_000_000).astype(np.float32)
    fit = fit_mixture(
        smp, n_components=len(table_), variance=cfg.variance, partial_volume=cfg.partial_volume
    )
    # Classify on the 4096-bin grid of the sample's range, as segment() does on the
    # whole image (the fit itself runs on a merged histogram).
    lo = float(smp.min())
    hi = float(smp.max())
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
    stored = to_zarr(labels, ctx.stage_dir / "labels.zarr")
    unc = darr.map_blocks(lambda b: unc_lut[bins_of(b)], dtype=np.float32)
    counts = block_bincount(stored, 256)
    n = float(counts.sum())
    fractions = {p.name: float(counts[p.label] / n) for p in table_.values()}
    names = [table_.by_label(lab).name for lab in dark_to_bright]
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
        "phases": table_.to_list(),
        "segmented_from": stage_in,
        "sample_voxels": int(smp.size),
    }
    if ctx.source.kind == "synthetic":  # the phantom is small enough to compare whole
        truth = ctx.obj("input", "truth")
        seg_ms = truth.with_labels(np.asarray(stored.compute()), phases=table_)
        summary["accuracy_vs_truth"] = _agreement(truth, seg_ms)
    arrays = mid_slices(stored, prefix="labels_")
    arrays.update(mid_slices(unc, prefix="uncertainty_"))
    x = np.asarray(fit.bin_centers, float)
    c = np.asarray(fit.counts, float)
    arrays["fit_centers"] = x
    arrays["fit_counts"] = c
    arrays["fit_components"] = fit.component_pdfs(x) * c.sum() * (x[1] - x[0])
    return StageOutput(summary=summary, arrays=arrays, objects={"labels": stored})


# ========================================================================= report
def _histogram_figure(figs: Figures, seg: Mapping[str, Any], arr: Mapping[str, np.ndarray]) -> str:
    x = arr["fit_centers"]
    counts = arr["fit_counts"]
    comps = arr.get("fit_components")
    fig = figs.new(8.5, 3.6)
    ax = fig.subplots()
    keep = counts > 0
    lo = x[keep].min() if keep.any() else x.min()
    hi = x[keep].max() if keep.any() else x.max()
    # Re-bin the 4096-bin histogram for display.
    nb = 4096 // 128 if x.size >= 4096 else 1
    xb = x[: x.size // nb * nb].reshape(-1, nb).mean(1)
    cb = counts[: x.size // nb * nb].reshape(-1, nb).sum(1) / nb
    edges = np.concatenate([[xb[0] - 0.5 * (xb[1] - xb[0])], 0.5 * (xb[1:] + xb[:-1])])
    edges = np.append(edges, xb[-1] + 0.5 * (xb[-1] - xb[-2]))
    ax.stairs(cb, edges, fill=True, color="#c9d3e3", label="image")
    thin = max(1, x.size // 512)
    x = x[::thin]
    comps = comps[:, ::thin] if comps is not None else None
    names = sorted(seg.get("means", {}), key=lambda k: seg["means"][k])
    mix = seg.get("mixture") or {}
    pv = mix.get("pv_pairs") or []
    if comps is not None:
        total = comps.sum(0)
        for i in range(comps.shape[0]):
            if i < len(names):
                label = f"{names[i]} (mean {seg['means'][names[i]]:.3g})"
                ax.plot(x, comps[i], lw=1.6, label=label)
            else:
                a, b = pv[i - len(names)] if i - len(names) < len(pv) else (0, 0)
                na = names[a] if a < len(names) else a
                nb_ = names[b] if b < len(names) else b
                ax.plot(x, comps[i], lw=0.9, ls=":", label=f"partial volume {na}/{nb_}")
        ax.plot(x, total, "k-", lw=1.0, label="mixture")
    for t in seg.get("thresholds") or []:
        ax.axvline(t, color="#a8321f", lw=0.8, ls="--")
    ax.set_xlim(lo, hi)
    ax.set_xlabel("intensity (image units)")
    ax.set_ylabel("voxels per bin")
    ax.set_title("intensity histogram and fitted Gaussian mixture (dashed: thresholds)")
    ax.legend(fontsize=7.5, loc="upper center")
    return figs.png(fig)


def _report(view: ReportView) -> list[ReportSection]:
    inp = view.summary("input")
    status = view.status
    figs = view.figures
    if inp.get("labelled"):
        body = absent("The input holds phase labels, so denoising and segmentation were skipped.")
        return [ReportSection("imaging", "Imaging QC", body)]
    rows_q: list[tuple[str, dict[str, np.ndarray], str]] = [
        ("raw", split(view.arrays("input"), "raw_"), "gray")
    ]
    if status.get("denoise") == "complete":
        rows_q.append(("denoised", split(view.arrays("denoise"), "denoised_"), "gray"))
    if status.get("segment") == "complete":
        a_seg = view.arrays("segment")
        rows_q.append(("segmented", split(a_seg, "labels_"), "labels"))
        if any(k.startswith("uncertainty_") for k in a_seg):
            rows_q.append(("uncertainty", split(a_seg, "uncertainty_"), "uncertainty"))
    body = img(
        qc_figure(figs, rows_q, view.phases()),
        "QC slices before and after each imaging step",
        "Middle slice across each axis after each imaging step (gray: intensities "
        "clipped to the 0.5–99.5 percentiles).",
    )
    den = view.summary("denoise")
    if den:
        body += table(
            ["denoising", ""],
            [
                ("noise σ estimated on the input", num(den.get("sigma_in"))),
                ("noise σ estimated after", num(den.get("sigma_out_estimate"))),
                ("filter strength h", num(den.get("h"))),
            ],
        )
    elif status.get("denoise"):
        body += view.status_line("denoise")
    seg = view.summary("segment")
    if seg and "fit_centers" in view.arrays("segment"):
        body += "<h3>Fitted histogram</h3>" + img(
            _histogram_figure(figs, seg, view.arrays("segment")),
            "intensity histogram with the fitted mixture",
        )
        names = sorted(seg.get("means", {}), key=lambda k: seg["means"][k])
        body += table(
            ["phase", "mean", "std", "weight", "volume fraction"],
            [
                (
                    esc(n),
                    num(seg["means"][n]),
                    num(math.sqrt(seg["variances"][n])),
                    num(seg["weights"][n], ".3f"),
                    num(seg["volume_fractions"].get(n), ".3f"),
                )
                for n in names
            ],
        )
        extra = f"Expected misclassification (model): {pct(seg.get('expected_error'))}."
        if seg.get("note"):
            extra += f" Note: {seg['note']}."
        acc = seg.get("accuracy_vs_truth")
        if acc:
            extra += (
                f" Agreement with the phantom's true labels: {pct(acc.get('overall'))} of the "
                f"voxels ({_recalls(acc)})."
            )
        body += f"<p>{extra}</p>"
    elif status.get("segment") and status["segment"] != "complete":
        body += view.status_line("segment")
    return [ReportSection("imaging", "Imaging QC", body)]


# ====================================================================== diagnosis
def _diagnose(results: Mapping[str, Any]) -> Iterator[Finding]:
    seg = results.get("segment") or {}
    ee = seg.get("expected_error")
    if ee is not None:
        truth = seg.get("accuracy_vs_truth") or {}
        acc = truth.get("overall")
        s = f"Segmentation: expected misclassification {pct(ee)} of the voxels (model estimate)"
        if acc is not None:
            s += (
                f"; against the phantom's true labels {pct(acc)} of the voxels agree "
                f"({_recalls(truth)})"
            )
            worst = _worst_recall(truth)
            if worst is not None and worst[1] < 0.8:
                s += (
                    f". The {worst[0]} phase is the least reliable: only {pct(worst[1])} of "
                    "its voxels are found, so its fraction and every number that depends "
                    "on it (interface areas, the solid network) carry that error"
                )
        yield Finding(50, s + ".")


def _recalls(truth: Mapping[str, Any]) -> str:
    per = truth.get("recall_per_phase") or {}
    return "recall per phase: " + ", ".join(f"{n} {pct(v)}" for n, v in per.items())


def _worst_recall(truth: Mapping[str, Any]) -> tuple[str, float] | None:
    per = {
        n: float(v)
        for n, v in (truth.get("recall_per_phase") or {}).items()
        if v is not None and math.isfinite(float(v))
    }
    if not per:
        return None
    name = min(per, key=lambda n: per[n])
    return name, per[name]


STAGE = Stage(
    "segment",
    "Segment (GMM + Bayes)",
    ("input", "denoise"),
    ("segment",),
    _run,
    _load,
    imaging_skipped,
    n_steps=2,
    settings=(("segment", SegmentSettings),),
    report=_report,
    diagnose=_diagnose,
)
