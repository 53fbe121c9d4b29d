"""CLI verb ``generate``: a synthetic electrode (and optionally its grayscale phantom)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer

from microbat.cli.common import JsonOpt, OutPath, SeedOpt, check_writable, emit, guarded

_ZERO = re.compile(r"^\s*[-+]?0*\.?0*\s*([a-zA-Zµμ]*)\s*$")


def _length_or_zero(text: str) -> float:
    from microbat.core.units import parse_length

    if _ZERO.match(text) and not any(c in "123456789" for c in text):
        return 0.0
    return parse_length(text)


def _shape(text: str) -> tuple[int, int, int]:
    from microbat.core.errors import InvalidInputError

    parts = [p for p in text.replace("x", ",").split(",") if p.strip()]
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        raise InvalidInputError(
            f"--shape must be three integers such as 128,128,128, got {text!r}"
        ) from None
    if len(dims) == 1:
        dims = dims * 3
    if len(dims) != 3:
        raise InvalidInputError(f"--shape needs one or three integers (a 3D volume), got {text!r}")
    return dims  # type: ignore[return-value]


def _orientation(text: str | None) -> Any:
    from microbat.core.errors import InvalidInputError

    if text is None or text.strip().lower() in ("", "random", "none"):
        return None
    parts = [p for p in text.split(",") if p.strip()]
    try:
        if len(parts) == 1:
            return int(parts[0])
        if len(parts) == 3:
            return [float(p) for p in parts]
    except ValueError:
        pass
    raise InvalidInputError(
        f"--orientation must be 'random', an axis index (0, 1, 2) or a vector a,b,c; got {text!r}"
    )


def _phantom_path(out: Path) -> Path:
    suffix = "".join(out.suffixes)
    stem = out.name[: len(out.name) - len(suffix)] if suffix else out.name
    return out.with_name(f"{stem}_gray{suffix}")


def generate(
    out: OutPath,
    shape: Annotated[
        str, typer.Option("--shape", help="Volume shape in voxels, n0,n1,n2 (array order).")
    ] = "128,128,128",
    voxel_size: Annotated[
        str, typer.Option("--voxel-size", help="Voxel edge, metres or with a unit (0.5um).")
    ] = "0.5um",
    active_fraction: Annotated[
        float, typer.Option("--active-fraction", help="Active-material volume fraction.")
    ] = 0.55,
    cbd_fraction: Annotated[
        float, typer.Option("--cbd-fraction", help="Carbon-binder volume fraction (0: none).")
    ] = 0.1,
    mean_radius: Annotated[
        str, typer.Option("--mean-radius", help="Mean particle radius (log-normal), e.g. 4um.")
    ] = "4um",
    radius_cv: Annotated[
        float, typer.Option("--radius-cv", help="Coefficient of variation of the radius.")
    ] = 0.3,
    aspect_ratio: Annotated[
        float,
        typer.Option("--aspect-ratio", help="Spheroid aspect ratio c/a (>1 rods, <1 flakes)."),
    ] = 1.0,
    orientation: Annotated[
        str | None,
        typer.Option(
            "--orientation", help="Spheroid axes: random, an axis index 0-2, or a vector a,b,c."
        ),
    ] = None,
    max_overlap: Annotated[
        float,
        typer.Option("--max-overlap", help="Largest particle penetration / smaller radius."),
    ] = 0.2,
    cbd_model: Annotated[
        str, typer.Option("--cbd-model", help="Carbon-binder placement: neck or film.")
    ] = "neck",
    separator_thickness: Annotated[
        str,
        typer.Option(
            "--separator-thickness", help="Separator layer at the end of the thickness axis."
        ),
    ] = "0",
    separator_porosity: Annotated[
        float, typer.Option("--separator-porosity", help="Porosity of the separator.")
    ] = 0.4,
    thickness_axis: Annotated[
        int, typer.Option("--thickness-axis", help="Axis through the electrode thickness.")
    ] = 0,
    seed: SeedOpt = 0,
    phantom: Annotated[
        bool, typer.Option("--phantom", help="Also write a blurred, noisy grayscale image.")
    ] = False,
    phantom_out: Annotated[
        Path | None,
        typer.Option("--phantom-out", help="Grayscale output file (default OUT_gray.<suffix>)."),
    ] = None,
    psf_sigma: Annotated[
        float, typer.Option("--psf-sigma", help="Gaussian blur of the phantom in voxels.")
    ] = 1.0,
    snr: Annotated[
        float | None,
        typer.Option("--snr", help="Phantom SNR: (active − pore intensity) / noise std."),
    ] = None,
    noise_sigma: Annotated[
        float | None, typer.Option("--noise-sigma", help="Phantom Gaussian noise std instead.")
    ] = None,
    poisson_photons: Annotated[
        float | None,
        typer.Option("--poisson-photons", help="Phantom photon count at intensity 1 (Poisson)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Generate a synthetic electrode (pore=0, cbd=1, active=2, separator=3) into OUT.

    The suffix of OUT picks the format (.h5, .zarr, .tif, .npz, .npy, .vti). With
    --phantom, a grayscale CT-like rendering that keeps these labels as its ground
    truth is written beside it.
    """
    from microbat.core.units import parse_voxel_size
    from microbat.io import save_microstructure, save_volume
    from microbat.synth import electrode
    from microbat.synth import phantom as render

    check_writable(out, what="OUT", folder=False)
    check_writable(phantom_out, what="--phantom-out", folder=False)
    vs = parse_voxel_size(voxel_size)
    ms = electrode(
        _shape(shape),
        voxel_size=vs,
        active_fraction=active_fraction,
        cbd_fraction=cbd_fraction,
        mean_radius=_length_or_zero(mean_radius),
        radius_cv=radius_cv,
        aspect_ratio=aspect_ratio,
        orientation=_orientation(orientation),
        max_overlap=max_overlap,
        cbd_model=cbd_model,
        separator_thickness=_length_or_zero(separator_thickness),
        separator_porosity=separator_porosity,
        thickness_axis=thickness_axis,
        seed=seed,
    )
    written = save_microstructure(ms, out)
    result: dict[str, Any] = {
        "microstructure": str(written),
        "summary": ms.summary(),
        "particles": ms.metadata.get("particles", {}),
        "seed": seed,
    }
    if phantom or phantom_out is not None:
        ph = render(
            ms,
            psf_sigma=psf_sigma,
            snr=snr,
            noise_sigma=noise_sigma,
            poisson_photons=poisson_photons,
            seed=seed,
        )
        target = phantom_out if phantom_out is not None else _phantom_path(Path(out))
        gray = save_volume(ph.image, target, voxel_size=ms.voxel_size)
        result["phantom"] = {
            "path": str(gray),
            "intensities": ph.intensities,
            "psf_sigma": list(ph.psf_sigma),
            "snr": ph.snr,
            "noise_sigma": ph.noise_sigma,
            "poisson_photons": ph.poisson_photons,
            "measured_snr": ph.measured_snr,
        }

    def human() -> None:
        typer.echo(f"wrote {written} ({' x '.join(map(str, ms.shape))} voxels)")
        for name, frac in ms.volume_fractions().items():
            typer.echo(f"  {name:<10} {frac:.4f}")
        p = result["particles"]
        if p:
            typer.echo(
                f"  particles  {p['n_particles']}, mean radius {p['mean_radius_m'] * 1e6:.3g} µm, "
                f"CV {p['radius_cv']:.3g}, clusters {p['n_clusters']}"
            )
        if "phantom" in result:
            snr_m = result["phantom"]["measured_snr"]
            typer.echo(
                f"wrote {result['phantom']['path']} (grayscale"
                + (f", measured SNR {snr_m:.2f})" if snr_m is not None else ")")
            )

    emit(result, as_json=as_json, human=human)


def register(app: typer.Typer) -> None:
    """Register this module's verbs on app."""
    app.command("generate")(guarded(generate))
