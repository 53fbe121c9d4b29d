import json
import math

import numpy as np
import pytest

from microbat.core.errors import InvalidInputError, PhaseError
from microbat.synth import phantom
from microbat.synth.phantoms import layers

H = 0.5e-6


@pytest.fixture(scope="module")
def slabs():
    # three 24-voxel slabs: pore | cbd | active, with wide constant interiors
    return layers((72, 40, 40), voxel_size=H, sequence=(0, 1, 2))


def interior(ms, label, margin):
    idx = np.flatnonzero(np.any(ms.labels == label, axis=(1, 2)))
    return slice(idx[0] + margin, idx[-1] + 1 - margin)


@pytest.mark.parametrize("snr", [3.0, 5.0])
def test_gaussian_noise_matches_snr(slabs, snr):
    ph = phantom(slabs, psf_sigma=1.0, snr=snr, seed=1)
    sigma = (0.9 - 0.1) / snr
    assert ph.noise_sigma == pytest.approx(sigma)
    assert ph.image.dtype == np.float32 and ph.image.shape == slabs.shape
    for label in (0, 2):
        vals = ph.image[interior(slabs, label, 5)].astype(np.float64)
        se = sigma / math.sqrt(2 * vals.size)
        assert abs(vals.std() - sigma) < 5 * se
    assert ph.measured_snr == pytest.approx(snr, rel=0.03)
    assert ph.measured_stds["pore"] == pytest.approx(sigma, rel=0.03)


def test_blur_preserves_means_far_from_interfaces(slabs):
    ph = phantom(slabs, psf_sigma=2.0, seed=0)
    assert ph.noise_sigma == 0 and ph.expected_noise_std == 0
    assert ph.measured_snr > 1e4  # only float32 rounding left
    for label, value in ((0, 0.1), (1, 0.45), (2, 0.9)):
        vals = ph.image[interior(slabs, label, 9)]
        assert np.allclose(vals, value, atol=1e-5)
    # and it does blur: the interface is no longer a step
    profile = ph.image[:, 20, 20]
    assert 0.1 < profile[23] < 0.45 and 0.1 < profile[24] < 0.45
    assert np.all(np.diff(profile) >= -1e-6)
    # the total signal is conserved away from the volume ends (kernel integrates to 1)
    clean = phantom(slabs, psf_sigma=0.0, seed=0).image
    assert ph.image[8:-8].sum() == pytest.approx(clean[8:-8].sum(), rel=1e-5)


def test_poisson_noise(slabs):
    n = 2000.0
    ph = phantom(slabs, psf_sigma=0.0, poisson_photons=n, seed=2)
    for label, value in ((0, 0.1), (2, 0.9)):
        vals = ph.image[interior(slabs, label, 1)].astype(np.float64)
        assert vals.mean() == pytest.approx(value, abs=3 * math.sqrt(value / n / vals.size))
        assert vals.std() == pytest.approx(math.sqrt(value / n), rel=0.03)
    # with snr, the Gaussian part tops the Poisson part up to the requested level
    ph = phantom(slabs, psf_sigma=0.0, poisson_photons=n, snr=4.0, seed=3)
    assert ph.noise_sigma == pytest.approx(math.sqrt(0.2**2 - 0.5 / n))
    assert ph.expected_noise_std == pytest.approx(0.2)
    assert ph.measured_snr == pytest.approx(4.0, rel=0.03)


def test_custom_intensities_and_seed(slabs):
    ph = phantom(
        slabs,
        intensities={"active": 0.7, "carbon_binder": 0.3},
        psf_sigma=0,
        noise_sigma=0.05,
        seed=4,
    )
    assert ph.intensities == {"pore": 0.1, "cbd": 0.3, "active": 0.7}
    assert ph.measured_means["active"] == pytest.approx(0.7, abs=0.002)
    again = phantom(
        slabs,
        intensities={"active": 0.7, "carbon_binder": 0.3},
        psf_sigma=0,
        noise_sigma=0.05,
        seed=4,
    )
    other = phantom(
        slabs,
        intensities={"active": 0.7, "carbon_binder": 0.3},
        psf_sigma=0,
        noise_sigma=0.05,
        seed=5,
    )
    assert np.array_equal(ph.image, again.image)
    assert not np.array_equal(ph.image, other.image)
    assert ph.truth is slabs


def test_electrode_phantom_thin_cbd():
    from microbat.synth import electrode

    ms = electrode((48, 48, 48), voxel_size=H, mean_radius=3e-6, cbd_fraction=0.08, seed=1)
    ph = phantom(ms, psf_sigma=1.0, snr=4.0, seed=1)
    assert ph.measured_snr == pytest.approx(4.0, rel=0.15)
    # the thin carbon-binder has no interior 4 voxels deep: reported as NaN, not a guess
    assert math.isnan(ph.measured_means["cbd"])
    d = json.loads(ph.to_json())
    assert d["truth"]["shape"] == [48, 48, 48]
    assert d["image"] == {"shape": [48, 48, 48], "dtype": "float32"}


def test_bad_input(slabs):
    with pytest.raises(InvalidInputError, match="not both"):
        phantom(slabs, snr=3, noise_sigma=0.1)
    with pytest.raises(InvalidInputError, match="snr"):
        phantom(slabs, snr=-1)
    with pytest.raises(InvalidInputError, match="noise_sigma"):
        phantom(slabs, noise_sigma=-0.1)
    with pytest.raises(InvalidInputError, match="psf_sigma"):
        phantom(slabs, psf_sigma=-1)
    with pytest.raises(InvalidInputError, match="Microstructure"):
        phantom(slabs.labels)
    with pytest.raises(InvalidInputError, match="Poisson noise with"):
        phantom(slabs, poisson_photons=10, snr=10)
    with pytest.raises(InvalidInputError, match="non-negative"):
        phantom(slabs, intensities={"pore": -0.5}, poisson_photons=100)
    with pytest.raises(PhaseError, match="unknown phase"):
        phantom(slabs, intensities={"graphene": 0.5})
    two = layers((8, 8, 8), voxel_size=H, sequence=(1, 2), phases="cbd=1,active=2")
    with pytest.raises(InvalidInputError, match="pore"):
        phantom(two, snr=3)
