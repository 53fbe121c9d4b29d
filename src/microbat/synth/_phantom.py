"""Grayscale CT-like phantoms rendered from a labelled microstructure."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from microbat.core.errors import InvalidInputError
from microbat.core.microstructure import Microstructure
from microbat.core.phases import PhaseRole
from microbat.core.results import Provenance, Result, to_jsonable
from microbat.synth._common import SeedLike, check_positive, make_rng, per_axis

__all__ = ["DEFAULT_INTENSITIES", "Phantom", "phantom"]

#: Mean intensity of each phase role (attenuation-like, arbitrary units).
DEFAULT_INTENSITIES: dict[PhaseRole, float] = {
    PhaseRole.GAS: 0.0,
    PhaseRole.ELECTROLYTE: 0.1,
    PhaseRole.SEPARATOR: 0.3,
    PhaseRole.CARBON_BINDER: 0.45,
    PhaseRole.SOLID_ELECTROLYTE: 0.6,
    PhaseRole.OTHER: 0.5,
    PhaseRole.ACTIVE: 0.9,
    PhaseRole.CURRENT_COLLECTOR: 1.0,
}


@dataclass(frozen=True)
class Phantom(Result):
    """A grayscale rendering of a microstructure and its ground truth.

    Attributes
    ----------
    image : ndarray of float32
        The grayscale image (same shape as ``truth``), not clipped.
    truth : Microstructure
        The labelled microstructure it was rendered from.
    intensities : dict of str to float
        Noise-free mean intensity of each phase (by phase name).
    psf_sigma : tuple of float
        Standard deviation of the Gaussian point-spread function per axis, in voxels.
    snr : float or None
        Requested signal-to-noise ratio (see :func:`phantom`), if any.
    noise_sigma : float
        Standard deviation of the additive Gaussian noise actually used.
    poisson_photons : float or None
        Photon count at intensity 1 (Poisson noise), if any.
    expected_noise_std : float
        Pooled noise standard deviation implied by the settings,
        ``sqrt((σ_active² + σ_pore²) / 2)`` (0 without noise).
    measured_snr : float or None
        SNR measured on the image inside the active and pore phases, at least
        ``ceil(3 · psf_sigma + 1)`` voxels from any interface (None if a phase is missing
        or has no such voxel).
    measured_means, measured_stds : dict of str to float
        Mean and standard deviation of the image per phase in those interiors
        (NaN where a phase has no interior voxel).
    provenance : Provenance
        Parameters, seed and wall time.
    """

    image: np.ndarray
    truth: Microstructure
    intensities: dict[str, float]
    psf_sigma: tuple[float, float, float]
    snr: float | None
    noise_sigma: float
    poisson_photons: float | None
    expected_noise_std: float
    measured_snr: float | None
    measured_means: dict[str, float]
    measured_stds: dict[str, float]
    provenance: Provenance

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the image summarised, the truth as its summary)."""
        out = super().to_dict()
        out["truth"] = to_jsonable(self.truth.summary())
        return out


def phantom(
    ms: Microstructure,
    *,
    intensities: Mapping[str, float] | None = None,
    psf_sigma: float | Sequence[float] = 1.0,
    snr: float | None = None,
    noise_sigma: float | None = None,
    poisson_photons: float | None = None,
    seed: SeedLike = None,
) -> Phantom:
    """Render a noisy, blurred grayscale image that keeps its true labels.

    Parameters
    ----------
    ms : Microstructure
        The ground truth.
    intensities : mapping, optional
        Mean intensity per phase name or role name; phases not given get the
        defaults of their role (:data:`DEFAULT_INTENSITIES`: pore 0.1,
        carbon-binder 0.45, active 0.9, separator 0.3, ...).
    psf_sigma : float or sequence of float, default 1
        Standard deviation of the Gaussian point-spread function in voxels (one
        or one per axis); 0 for no blur.
    snr : float, optional
        Signal-to-noise ratio ``(I_active − I_pore) / σ``, where ``I`` are the
        noise-free phase intensities and ``σ`` is the pooled noise standard
        deviation ``sqrt((σ_active² + σ_pore²) / 2)``. Sets the Gaussian noise
        level (after Poisson noise, if any). Exclusive with ``noise_sigma``.
    noise_sigma : float, optional
        Standard deviation of additive Gaussian noise (image units).
    poisson_photons : float, optional
        Expected photon count at intensity 1: the blurred image ``b`` becomes
        ``Poisson(b · N) / N`` (variance ``b / N``). Needs non-negative intensities.
    seed : int, numpy.random.Generator or None
        Seed of the noise.

    Returns
    -------
    Phantom
        ``image`` (float32), ``truth`` (``ms``), the settings and the measured SNR.

    Raises
    ------
    InvalidInputError
        Both ``snr`` and ``noise_sigma``; non-positive ``snr`` or photon count;
        negative sigma; ``snr`` without an active and an electrolyte phase or with
        equal intensities; Poisson noise alone already noisier than ``snr`` asks.

    Notes
    -----
    The forward model is ``image = Poisson(N · (G_σ * I[labels])) / N + ε`` with
    ``G_σ`` a Gaussian PSF (``scipy.ndimage.gaussian_filter``, edges replicated),
    ``I[labels]`` the piecewise-constant phase intensities and
    ``ε ~ N(0, noise_sigma²)`` white detector noise. With ``snr`` the Gaussian
    part is ``noise_sigma² = σ² − (I_active + I_pore) / (2N)``. The blur
    preserves every phase mean away from interfaces (the kernel integrates to 1);
    noise is white (reconstruction-correlated noise is not modelled). Cost
    O(N_vox · σ) for the separable blur, O(N_vox) for the noise, plus one minimum
    filter per phase for the measured statistics.

    Examples
    --------
    >>> from microbat.synth.phantoms import layers
    >>> ms = layers((32, 32, 32), voxel_size=1e-6, sequence=(0, 1, 2))
    >>> ph = phantom(ms, psf_sigma=1.0, snr=4.0, seed=0)
    >>> ph.image.dtype, round(ph.measured_snr)
    (dtype('float32'), 4)
    """
    t0 = time.perf_counter()
    if not isinstance(ms, Microstructure):
        raise InvalidInputError(
            f"phantom needs a Microstructure, got {type(ms).__name__}; build one with "
            "microbat.Microstructure(labels, voxel_size, phases) or microbat.synth.electrode"
        )
    sig = per_axis(psf_sigma, "psf_sigma")[: ms.ndim]
    if snr is not None and noise_sigma is not None:
        raise InvalidInputError("give either snr or noise_sigma, not both")
    rng, seed_int = make_rng(seed)
    inten = _resolve_intensities(ms, intensities)
    photons = None
    if poisson_photons is not None:
        photons = check_positive(poisson_photons, "poisson_photons", unit="photons")
        if min(inten.values()) < 0:
            raise InvalidInputError(
                "Poisson noise needs non-negative intensities; shift the intensities"
            )
    act = ms.phases.with_role(PhaseRole.ACTIVE)
    pore = ms.phases.with_role(PhaseRole.ELECTROLYTE)
    i_a = inten[act[0].name] if act else None
    i_p = inten[pore[0].name] if pore else None
    poisson_var = (
        (i_a + i_p) / (2.0 * photons)
        if photons is not None and i_a is not None and i_p is not None
        else 0.0
    )
    if snr is not None:
        target = check_positive(snr, "snr", unit="a ratio")
        if i_a is None or i_p is None:
            raise InvalidInputError(
                "snr is defined from the active and pore (electrolyte) intensities, but the "
                f"microstructure has phases {ms.phases.to_spec()}; give noise_sigma instead"
            )
        contrast = abs(i_a - i_p)
        if contrast == 0:
            raise InvalidInputError("active and pore intensities are equal; snr is undefined")
        total = contrast / target
        g2 = total * total - poisson_var
        if g2 < 0:
            raise InvalidInputError(
                f"Poisson noise with poisson_photons={photons:g} alone gives SNR "
                f"{contrast / math.sqrt(poisson_var):.3g}, below the requested {target:g}; "
                "raise poisson_photons or lower snr"
            )
        g = math.sqrt(g2)
    elif noise_sigma is not None:
        g = check_positive(noise_sigma, "noise_sigma", unit="image units", allow_zero=True)
    else:
        g = 0.0

    image = _render(ms, inten, sig)
    if photons is not None:
        lam = np.maximum(image, 0.0).astype(np.float64) * photons
        image = (rng.poisson(lam) / photons).astype(np.float32)
        del lam
    if g > 0:
        image += np.float32(g) * rng.standard_normal(image.shape, dtype=np.float32)

    means, stds = _interior_stats(ms, image, sig)
    measured = None
    if act and pore:
        ma, mp = means[act[0].name], means[pore[0].name]
        sa, sp = stds[act[0].name], stds[pore[0].name]
        pooled = math.sqrt(0.5 * (sa * sa + sp * sp))
        if all(math.isfinite(v) for v in (ma, mp, pooled)) and pooled > 0:
            measured = abs(ma - mp) / pooled
    expected = math.sqrt(g * g + poisson_var)
    prov = Provenance(
        function="microbat.synth.phantom",
        parameters={
            "intensities": inten,
            "psf_sigma": list(sig),
            "snr": snr,
            "noise_sigma": g,
            "poisson_photons": photons,
        },
        seed=seed_int,
        wall_time_s=time.perf_counter() - t0,
        inputs={"truth": ms.summary()},
    )
    return Phantom(
        image=image,
        truth=ms,
        intensities=inten,
        psf_sigma=tuple(sig),  # type: ignore[arg-type]
        snr=None if snr is None else float(snr),
        noise_sigma=float(g),
        poisson_photons=photons,
        expected_noise_std=float(expected),
        measured_snr=measured,
        measured_means=means,
        measured_stds=stds,
        provenance=prov,
    )


def _resolve_intensities(ms: Microstructure, given: Mapping[str, float] | None) -> dict[str, float]:
    out = {p.name: DEFAULT_INTENSITIES[p.role] for p in ms.phases.values()}
    if not given:
        return out
    for key, value in given.items():
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise InvalidInputError(
                f"intensity of {key!r} must be a number, got {value!r}"
            ) from None
        if not math.isfinite(v):
            raise InvalidInputError(f"intensity of {key!r} must be finite, got {value!r}")
        for p in ms.phases.resolve(key):
            out[p.name] = v
    return out


def _render(ms: Microstructure, inten: dict[str, float], sigma: tuple[float, ...]) -> np.ndarray:
    from scipy import ndimage as ndi

    lut = np.zeros(max(ms.phases.labels) + 1, dtype=np.float32)
    for p in ms.phases.values():
        lut[p.label] = inten[p.name]
    clean = lut[ms.labels]
    if any(s > 0 for s in sigma):
        clean = ndi.gaussian_filter(clean, sigma=sigma, mode="nearest", truncate=4.0)
    return clean


def _interior_stats(
    ms: Microstructure, image: np.ndarray, sigma: tuple[float, ...]
) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and std of the image per phase, away from interfaces.

    A voxel is interior when the cube of half-width ``ceil(3 σ + 1)`` around it
    holds one label only (the maximum and minimum filters of the labels agree;
    separable, O(N_vox)); the cube contains the ball of that radius, so interior
    voxels are at least that far from any interface.
    """
    from scipy import ndimage as ndi

    m = math.ceil(3.0 * max(sigma) + 1.0)
    labels = ms.labels
    size = 2 * m + 1
    uniform = ndi.maximum_filter(labels, size=size, mode="nearest") == ndi.minimum_filter(
        labels, size=size, mode="nearest"
    )
    means: dict[str, float] = {}
    stds: dict[str, float] = {}
    for p in ms.phases.values():
        vals = image[uniform & (labels == p.label)]
        if vals.size < 2:
            means[p.name] = stds[p.name] = math.nan
            continue
        means[p.name] = float(vals.mean(dtype=np.float64))
        stds[p.name] = float(vals.std(dtype=np.float64, ddof=1))
    return means, stds
