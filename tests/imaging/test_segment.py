"""GMM + Bayes segmentation: fit recovery, accuracy, spatial prior, partial volume,
forward-model refinement, multi-Otsu, result contents, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from microbat.core.errors import InvalidInputError, PhaseError, VoxelSizeError
from microbat.imaging.segmentation import (
    SegmentationResult,
    fit_mixture,
    multi_otsu_segment,
    segment,
)

MEANS = np.array([0.1, 0.45, 0.9])  # pore, cbd, active


def _electrode_labels(n: int = 48, seed: int = 0) -> np.ndarray:
    """Active spheres, carbon-binder in the necks between them and as thin films."""
    rng = np.random.default_rng(seed)
    grid = np.indices((n, n, n)).astype(np.float32)
    act = np.zeros((n, n, n), bool)
    while act.mean() < 0.45:
        c = rng.uniform(0, n, 3)
        r = rng.uniform(4, 7)
        act |= ((grid - c[:, None, None, None]) ** 2).sum(0) <= r * r
    ball = ndi.generate_binary_structure(3, 1)
    necks = ndi.binary_closing(act, ball, iterations=3) & ~act
    patches = ndi.gaussian_filter(rng.normal(size=act.shape), 3) > 0
    film = ndi.binary_dilation(act, ball, iterations=2) & ~act & patches
    lab = np.zeros(act.shape, np.uint8)
    lab[necks | film] = 1
    lab[act] = 2
    return lab


def _render(lab, *, psf=1.0, noise=0.1, seed=1):
    rng = np.random.default_rng(seed)
    img = MEANS[lab]
    if psf:
        img = ndi.gaussian_filter(img, psf, mode="nearest")
    return (img + rng.normal(0, noise, lab.shape)).astype(np.float32)


def _acc(res, lab):
    return float((res.labels == lab).mean())


@pytest.fixture(scope="module")
def blocks() -> np.ndarray:
    lab = np.zeros((24, 24, 24), np.uint8)
    lab[:, 6:12] = 1
    lab[:, 12:] = 2
    return lab


@pytest.fixture(scope="module")
def electrode() -> np.ndarray:
    return _electrode_labels()


def test_fit_mixture_recovers_parameters(rng):
    w_true = np.array([0.3, 0.2, 0.5])
    n = 60_000
    comp = rng.choice(3, size=n, p=w_true)
    sd = np.array([0.04, 0.05, 0.06])
    x = rng.normal(MEANS[comp], sd[comp]).reshape(60, 40, 25)
    fit = fit_mixture(x, variance="free", partial_volume=False)
    np.testing.assert_allclose(fit.means, MEANS, atol=0.005)
    np.testing.assert_allclose(np.sqrt(fit.variances), sd, atol=0.004)
    np.testing.assert_allclose(fit.weights, w_true, atol=0.01)
    assert fit.converged
    tied = fit_mixture(x, variance="tied", partial_volume=False)
    assert len(set(tied.variances)) == 1
    dens = fit.component_pdfs(fit.bin_centers)
    assert dens.shape == (3, fit.bin_centers.size)


def test_segment_clean_blocks_is_exact(blocks, rng):
    img = MEANS[blocks] + rng.normal(0, 0.03, blocks.shape)
    res = segment(img, voxel_size=1e-6, spatial_prior="none")
    assert _acc(res, blocks) == 1.0
    assert list(res.means) == ["pore", "cbd", "active"]
    np.testing.assert_allclose(list(res.means.values()), MEANS, atol=0.01)
    assert res.microstructure.voxel_size == (1e-6,) * 3
    assert res.expected_error < 1e-3
    assert len(res.thresholds) == 2


def test_expected_error_matches_actual_when_model_holds(blocks, rng):
    # pure Gaussian classes, no blur: the posterior is calibrated
    img = MEANS[blocks] + rng.normal(0, 0.13, blocks.shape)
    res = segment(img, voxel_size=1e-6, spatial_prior="none", partial_volume=False)
    actual = 1.0 - _acc(res, blocks)
    assert actual > 0.02  # noisy enough to make mistakes
    assert res.expected_error == pytest.approx(actual, abs=0.015)
    assert res.uncertainty.shape == blocks.shape
    assert 0.0 <= res.uncertainty.min() and res.uncertainty.max() <= 1.0


def test_potts_prior_improves_low_snr(blocks, rng):
    img = MEANS[blocks] + rng.normal(0, 0.15, blocks.shape)  # cbd/pore gap 2.3 sigma
    plain = segment(img, voxel_size=1e-6, spatial_prior="none")
    potts = segment(img, voxel_size=1e-6, spatial_prior="potts", beta=0.75)
    assert _acc(potts, blocks) > _acc(plain, blocks) + 0.05
    assert _acc(potts, blocks) > 0.99
    assert potts.icm_iterations >= 1
    assert potts.expected_error < plain.expected_error


def test_partial_volume_trap(electrode):
    """A free-variance mixture lets carbon-binder swallow blurred active/pore edges."""
    img = _render(electrode, psf=1.0, noise=0.03)
    true_cbd = float((electrode == 1).mean())
    free = segment(
        img, voxel_size=1e-6, variance="free", partial_volume=False, spatial_prior="none"
    )
    pv = segment(img, voxel_size=1e-6, variance="tied", partial_volume=True, spatial_prior="none")
    err_free = abs(free.volume_fractions["cbd"] - true_cbd)
    err_pv = abs(pv.volume_fractions["cbd"] - true_cbd)
    assert err_free > 0.15  # the trap is real on this phantom
    assert err_pv < 0.5 * err_free
    assert _acc(pv, electrode) > _acc(free, electrode)
    assert pv.mixture.pv_pairs == ((0, 1), (0, 2), (1, 2))


def test_psf_refinement_improves_blurred(electrode):
    img = _render(electrode, psf=1.0, noise=0.05)
    base = segment(img, voxel_size=1e-6)
    ref = segment(img, voxel_size=1e-6, psf_sigma=1.0, beta=2.0)
    assert _acc(ref, electrode) > _acc(base, electrode) + 0.01
    assert ref.provenance.parameters["psf_sigma"] == [1.0, 1.0, 1.0]
    auto = segment(img, voxel_size=1e-6, psf_sigma="auto", beta=2.0)
    assert 0.5 < auto.provenance.parameters["psf_sigma"][0] < 1.5


def test_order_maps_dark_to_bright(blocks, rng):
    # carbon-binder darker than pore
    inten = np.array([0.4, 0.1, 0.9])  # by label pore=0, cbd=1, active=2
    img = inten[blocks] + rng.normal(0, 0.03, blocks.shape)
    res = segment(img, voxel_size=1e-6, order="cbd,pore,active", spatial_prior="none")
    assert _acc(res, blocks) == 1.0
    assert res.means["cbd"] < res.means["pore"] < res.means["active"]
    with pytest.raises(PhaseError, match="order"):
        segment(img, voxel_size=1e-6, order="cbd,pore")


def test_two_phases_and_2d(rng):
    lab = np.zeros((40, 40), np.uint8)
    lab[:, 20:] = 1
    img = np.array([0.2, 0.8])[lab] + rng.normal(0, 0.08, lab.shape)
    res = segment(img, voxel_size=1e-6, phases="pore,active")
    assert res.microstructure.ndim == 2
    assert _acc(res, lab) > 0.99
    ref = segment(img, voxel_size=1e-6, phases="pore,active", psf_sigma=0.5)
    assert _acc(ref, lab) > 0.99


def test_multi_otsu(blocks, rng):
    img = MEANS[blocks] + rng.normal(0, 0.03, blocks.shape)
    res = multi_otsu_segment(img, voxel_size=1e-6)
    assert res.method == "multi_otsu"
    assert _acc(res, blocks) == 1.0
    assert res.uncertainty is None and res.expected_error is None
    assert 0.1 < res.thresholds[0] < 0.45 < res.thresholds[1] < 0.9


def test_result_serialises(blocks, rng):
    img = MEANS[blocks] + rng.normal(0, 0.05, blocks.shape)
    res = segment(img, voxel_size=1e-6)
    assert isinstance(res, SegmentationResult)
    d = json.loads(res.to_json())
    assert d["method"] == "gmm"
    assert d["uncertainty"] == {"shape": [24, 24, 24], "dtype": "float32"}
    assert set(d["means"]) == {"pore", "cbd", "active"}
    assert d["microstructure"]["shape"] == [24, 24, 24]
    assert d["provenance"]["function"] == "microbat.imaging.segment"
    assert "bin_centers" not in d["mixture"]


def test_package_level_call(blocks, rng):
    import microbat.imaging as imaging

    img = MEANS[blocks] + rng.normal(0, 0.05, blocks.shape)
    res = imaging.segment(img, voxel_size=1e-6)
    assert _acc(res, blocks) == 1.0


def test_bad_input(blocks):
    with pytest.raises(InvalidInputError, match="constant"):
        segment(np.ones((8, 8, 8)), voxel_size=1e-6)
    img = MEANS[blocks].copy()
    img[0, 0, 0] = np.inf
    with pytest.raises(InvalidInputError, match="NaN or infinite"):
        segment(img, voxel_size=1e-6)
    two = np.zeros((10, 10, 10))
    two[5:] = 1.0
    with pytest.raises(InvalidInputError, match="distinct intensity"):
        segment(two, voxel_size=1e-6)
    with pytest.raises(InvalidInputError, match="distinct intensity"):
        multi_otsu_segment(two, voxel_size=1e-6)
    with pytest.raises(VoxelSizeError, match="missing"):
        segment(MEANS[blocks], voxel_size=None)
    with pytest.raises(PhaseError, match="n_phases"):
        segment(MEANS[blocks], voxel_size=1e-6, n_phases=2)
    with pytest.raises(InvalidInputError, match="spatial_prior"):
        segment(MEANS[blocks], voxel_size=1e-6, spatial_prior="crf")
    with pytest.raises(InvalidInputError, match="psf_sigma"):
        segment(MEANS[blocks], voxel_size=1e-6, psf_sigma="wide")


def test_thin_volume_warns(rng):
    lab = np.zeros((1, 30, 30), np.uint8)
    lab[:, :, 10:20] = 1
    lab[:, :, 20:] = 2
    img = MEANS[lab] + rng.normal(0, 0.03, lab.shape)
    with pytest.warns(UserWarning, match="one voxel thin"):
        res = segment(img, voxel_size=1e-6)
    assert _acc(res, lab) > 0.99


def test_missing_phase_warns(rng):
    # two real phases asked to be split into three: two components are not separated
    lab = np.zeros((20, 20, 20), np.uint8)
    lab[:, 10:] = 2
    img = MEANS[lab] + rng.normal(0, 0.02, lab.shape)
    with pytest.warns(UserWarning, match="not separated"):
        segment(img, voxel_size=1e-6, spatial_prior="none")
    # asked for two phases, it is clean
    res = segment(img, voxel_size=1e-6, phases="pore,active", spatial_prior="none")
    assert float((res.labels == lab // 2).mean()) == 1.0
