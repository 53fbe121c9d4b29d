"""CLI verbs of the imaging front end: ``denoise``, ``segment``, ``reconstruct``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from microbat.cli.common import (
    CropOpt,
    DatasetOpt,
    InPath,
    JsonOpt,
    OutPath,
    Progress,
    QuietOpt,
    ThicknessAxisOpt,
    VoxelSizeOpt,
    check_writable,
    emit,
    guarded,
)

PatchOpt = Annotated[int, typer.Option("--patch-size", help="NLM patch edge in voxels (odd).")]
SearchOpt = Annotated[int, typer.Option("--search-radius", help="NLM search half-width in voxels.")]
SigmaOpt = Annotated[
    float | None,
    typer.Option("--sigma", help="Noise standard deviation (image units); default estimated."),
]
HOpt = Annotated[
    float | None,
    typer.Option("--h", help="NLM filter strength (image units); default 0.6 x sigma."),
]
ChunksOpt = Annotated[
    str | None,
    typer.Option(
        "--chunks",
        help="Denoise chunk by chunk with Dask, chunk shape e.g. 128,128,128 (bounds memory).",
    ),
]
SegPhasesOpt = Annotated[
    str,
    typer.Option(
        "--phases",
        help="Output phases, name=label pairs or names in label order (pore,cbd,active).",
    ),
]
OrderOpt = Annotated[
    str | None,
    typer.Option(
        "--order", help="Phase names from darkest to brightest (default: the --phases order)."
    ),
]
BetaOpt = Annotated[
    float | None,
    typer.Option("--beta", help="Potts coupling of the spatial prior (0 switches it off)."),
]
PsfOpt = Annotated[
    str | None,
    typer.Option(
        "--psf-sigma",
        help=(
            "PSF standard deviation in voxels for the forward-model refinement of interface "
            "voxels: a number, 'auto' (estimated) or 'none'."
        ),
    ),
]
VarianceOpt = Annotated[
    str, typer.Option("--variance", help="Mixture variances: tied (one shared) or free.")
]
PvOpt = Annotated[
    bool,
    typer.Option(
        "--partial-volume/--no-partial-volume",
        help="Model interface voxels as mixtures of two phases.",
    ),
]
MethodOpt = Annotated[
    str, typer.Option("--method", help="gmm (mixture + Bayes) or otsu (multi-Otsu thresholds).")
]
UncOpt = Annotated[
    Path | None,
    typer.Option("--uncertainty", help="Also write the posterior uncertainty map to this file."),
]


def _chunks(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    from microbat.core.errors import InvalidInputError

    try:
        return tuple(int(v) for v in text.replace(";", ",").split(",") if v.strip())
    except ValueError:
        raise InvalidInputError(
            f"--chunks must be integers like 128,128,128, got {text!r}"
        ) from None


def _psf(text: str | None) -> float | str | None:
    if text is None or text.strip().lower() == "none":
        return None
    if text.strip().lower() == "auto":
        return "auto"
    from microbat.core.errors import InvalidInputError

    try:
        return float(text)
    except ValueError:
        raise InvalidInputError(
            f"--psf-sigma must be a number of voxels, 'auto' or 'none', got {text!r}"
        ) from None


def _read(path: Path, dataset: str | None, voxel_size: str | None, crop: str | None = None):
    """Grayscale voxels and voxel size (the option wins over the file), maybe cropped."""
    import numpy as np

    from microbat.cli.common import parse_crop
    from microbat.core.units import parse_voxel_size
    from microbat.io import read_volume

    vol = read_volume(path, dataset=dataset, lazy=crop is not None)
    if crop:
        whole = vol
        try:
            vol = vol.crop(parse_crop(crop))
        finally:
            whole.close()
    vs = parse_voxel_size(voxel_size) if voxel_size else vol.voxel_size
    return np.asarray(vol.data), vs


def denoise(
    src: InPath,
    dst: OutPath,
    patch_size: PatchOpt = 5,
    search_radius: SearchOpt = 3,
    sigma: SigmaOpt = None,
    h: HOpt = None,
    chunks: ChunksOpt = None,
    voxel_size: VoxelSizeOpt = None,
    dataset: DatasetOpt = None,
    crop: CropOpt = None,
    quiet: QuietOpt = False,
    json: JsonOpt = False,
) -> None:
    """Non-local means denoising of a grayscale volume (noise level estimated)."""
    import time

    from microbat.imaging.denoise import DEFAULT_STRENGTH, denoise_nlm, estimate_sigma
    from microbat.io import save_volume

    check_writable(dst, what="DST", folder=False)
    progress = Progress("denoise", quiet=quiet).start()
    progress.stage(f"reading {src}")
    img, vs = _read(src, dataset, voxel_size, crop)
    t0 = time.perf_counter()
    progress.stage("estimating the noise level")
    noise = sigma if sigma is not None else estimate_sigma(img)
    progress.stage(f"non-local means on {' x '.join(map(str, img.shape))} voxels")
    out = denoise_nlm(
        img,
        patch_size=patch_size,
        search_radius=search_radius,
        sigma=noise,
        h=h,
        chunks=_chunks(chunks),
    )
    elapsed = time.perf_counter() - t0
    progress.stage(f"writing {dst}")
    written = save_volume(out, dst, voxel_size=vs)
    data: dict[str, Any] = {
        "output": str(written),
        "shape": list(out.shape),
        "noise_sigma": noise,
        "patch_size": patch_size,
        "search_radius": search_radius,
        "h": h if h is not None else DEFAULT_STRENGTH * noise,
        "wall_time_s": elapsed,
    }

    def human() -> None:
        typer.echo(
            f"denoised {' x '.join(map(str, out.shape))} in {elapsed:.2f} s "
            f"(noise sigma {noise:.4g}); wrote {written}"
        )

    emit(data, as_json=json, human=human, quiet=quiet)


def segment(
    src: InPath,
    dst: OutPath,
    phases: SegPhasesOpt = "pore,cbd,active",
    order: OrderOpt = None,
    method: MethodOpt = "gmm",
    beta: BetaOpt = None,
    psf_sigma: PsfOpt = None,
    variance: VarianceOpt = "tied",
    partial_volume: PvOpt = True,
    uncertainty: UncOpt = None,
    voxel_size: VoxelSizeOpt = None,
    thickness_axis: ThicknessAxisOpt = None,
    dataset: DatasetOpt = None,
    crop: CropOpt = None,
    quiet: QuietOpt = False,
    json: JsonOpt = False,
) -> None:
    """Segment a grayscale volume into phases (Gaussian mixture + Bayes, or multi-Otsu)."""
    from microbat.core.errors import InvalidInputError
    from microbat.imaging.segmentation import multi_otsu_segment
    from microbat.imaging.segmentation import segment as _segment
    from microbat.io import save_microstructure, save_volume

    check_writable(dst, what="DST", folder=False)
    check_writable(uncertainty, what="--uncertainty", folder=False)
    progress = Progress("segment", quiet=quiet).start()
    progress.stage(f"reading {src}")
    img, vs = _read(src, dataset, voxel_size, crop)
    progress.stage(f"segmenting {' x '.join(map(str, img.shape))} voxels ({method})")
    ta = 0 if thickness_axis is None else thickness_axis
    if method == "gmm":
        kw: dict[str, Any] = {}
        if beta is not None:
            kw["beta"] = beta
            kw["spatial_prior"] = "potts" if beta > 0 else "none"
        res = _segment(
            img,
            voxel_size=vs,
            phases=phases,
            order=order,
            variance=variance,
            partial_volume=partial_volume,
            psf_sigma=_psf(psf_sigma),
            thickness_axis=ta,
            **kw,
        )
    elif method == "otsu":
        res = multi_otsu_segment(img, voxel_size=vs, phases=phases, order=order, thickness_axis=ta)
    else:
        raise InvalidInputError(f"--method must be gmm or otsu, got {method!r}")
    progress.stage(f"writing {dst}")
    written = save_microstructure(res.microstructure, dst)
    unc_written = None
    if uncertainty is not None:
        if res.uncertainty is None:
            raise InvalidInputError("--uncertainty needs --method gmm")
        unc_written = save_volume(res.uncertainty, uncertainty, voxel_size=vs)
    data = res.to_dict()
    data["output"] = str(written)
    data["uncertainty_file"] = str(unc_written) if unc_written else None

    def human() -> None:
        typer.echo(f"{'phase':<12}{'mean':>10}{'std':>10}{'weight':>10}{'fraction':>10}")
        for name in res.means:
            typer.echo(
                f"{name:<12}{res.means[name]:>10.4g}{res.variances[name] ** 0.5:>10.4g}"
                f"{res.weights[name]:>10.4f}{res.volume_fractions[name]:>10.4f}"
            )
        if res.expected_error is not None:
            typer.echo(f"expected misclassification rate (model): {res.expected_error:.4f}")
        typer.echo(f"wrote {written}" + (f" and {unc_written}" if unc_written else ""))

    emit(data, as_json=json, human=human, quiet=quiet)


def reconstruct(
    src: InPath,
    dst: OutPath,
    voxel_size: VoxelSizeOpt = None,
    phases: SegPhasesOpt = "pore,cbd,active",
    order: OrderOpt = None,
    no_denoise: Annotated[bool, typer.Option("--no-denoise", help="Skip the NLM step.")] = False,
    patch_size: PatchOpt = 5,
    search_radius: SearchOpt = 3,
    sigma: SigmaOpt = None,
    chunks: ChunksOpt = None,
    beta: Annotated[float, typer.Option("--beta", help="Potts coupling.")] = 2.0,
    psf_sigma: Annotated[
        str,
        typer.Option("--psf-sigma", help="PSF standard deviation in voxels, 'auto' or 'none'."),
    ] = "1.0",
    remove_isolated: Annotated[
        bool,
        typer.Option("--remove-isolated", help="Reassign isolated solid clusters (see --rule)."),
    ] = False,
    rule: Annotated[
        str, typer.Option("--rule", help="Where isolated clusters go: neighbour or a phase name.")
    ] = "neighbour",
    qc: Annotated[
        Path | None, typer.Option("--qc", help="QC figure path (default OUT stem + _qc.png).")
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="JSON report path (default OUT stem + _report.json)."),
    ] = None,
    thickness_axis: ThicknessAxisOpt = None,
    dataset: DatasetOpt = None,
    crop: CropOpt = None,
    quiet: QuietOpt = False,
    json: JsonOpt = False,
) -> None:
    """Grayscale volume to microstructure: denoise, segment, connectivity; QC figure + report."""
    from microbat.core.errors import VoxelSizeError
    from microbat.imaging.reconstruction import reconstruct as _reconstruct
    from microbat.io import save_microstructure

    stem = dst.name.split(".")[0]
    qc_path = qc if qc is not None else dst.with_name(stem + "_qc.png")
    report_path = report if report is not None else dst.with_name(stem + "_report.json")
    for path, what in ((dst, "DST"), (qc_path, "--qc"), (report_path, "--report")):
        check_writable(path, what=what, folder=False)
    progress = Progress("reconstruct", quiet=quiet).start()
    progress.stage(f"reading {src}")
    img, vs = _read(src, dataset, voxel_size, crop)
    if vs is None:
        raise VoxelSizeError(
            f"{src} does not say its voxel size; give it with --voxel-size (e.g. 0.4um)"
        )
    progress.stage(
        ("" if no_denoise else "denoising, ")
        + f"segmenting and labelling clusters of {' x '.join(map(str, img.shape))} voxels"
    )
    res = _reconstruct(
        img,
        voxel_size=vs,
        phases=phases,
        order=order,
        denoise=not no_denoise,
        patch_size=patch_size,
        search_radius=search_radius,
        sigma=sigma,
        chunks=_chunks(chunks),
        beta=beta,
        spatial_prior="potts" if beta > 0 else "none",
        psf_sigma=_psf(psf_sigma),
        remove_isolated=remove_isolated,
        rule=rule,
        thickness_axis=0 if thickness_axis is None else thickness_axis,
        qc_figure=qc_path,
        report=report_path,
    )
    written = save_microstructure(res.microstructure, dst)
    data = res.to_dict()
    data["output"] = str(written)

    def human() -> None:
        seg = res.segmentation
        t = res.timings
        typer.echo(
            f"denoise {t['denoise']:.1f} s, segment {t['segment']:.1f} s, "
            f"connectivity {t['connectivity']:.1f} s (noise sigma {res.noise_sigma:.4g})"
        )
        typer.echo(f"{'phase':<12}{'mean':>10}{'fraction':>10}{'percolating':>13}")
        conn = res.connectivity
        for name in seg.means:
            pf = conn.phase_fractions.get(name, {}).get("percolating", float("nan"))
            typer.echo(
                f"{name:<12}{seg.means[name]:>10.4g}"
                f"{res.microstructure.volume_fractions()[name]:>10.4f}{pf:>13.4f}"
            )
        typer.echo(f"wrote {written}, {qc_path}, {report_path}")

    emit(data, as_json=json, human=human, quiet=quiet)


def register(app: typer.Typer) -> None:
    """Register this module's verbs on app."""
    app.command("denoise")(guarded(denoise))
    app.command("segment")(guarded(segment))
    app.command("reconstruct")(guarded(reconstruct))
