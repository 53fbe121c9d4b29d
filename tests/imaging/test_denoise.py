"""Non-local means: exactness against a brute-force reference, serial == chunked,
quality on a phantom, noise estimate, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from microbat.core.errors import InvalidInputError
from microbat.imaging.denoise import denoise_nlm, estimate_sigma


def _brute_nlm(img: np.ndarray, s: int, p: int, h: float, sigma: float) -> np.ndarray:
    """Direct definition: every voxel, every offset, every patch voxel (float64)."""
    nd = img.ndim
    pad = s + p
    g = np.pad(img.astype(np.float64), pad, mode="symmetric")
    core = tuple(slice(pad, pad + n) for n in img.shape)
    num = np.zeros(img.shape)
    den = np.zeros(img.shape)
    npatch = (2 * p + 1) ** nd
    offsets = np.stack(np.meshgrid(*[np.arange(-s, s + 1)] * nd, indexing="ij"), -1).reshape(-1, nd)
    for d in offsets:
        shifted = np.roll(g, tuple(-d), axis=tuple(range(nd)))
        diff2 = (g - shifted) ** 2
        ssd = ndi.uniform_filter(diff2, size=2 * p + 1, mode="constant") * npatch
        w = np.exp(-np.maximum(ssd[core] / npatch - 2 * sigma**2, 0) / h**2)
        num += w * shifted[core]
        den += w
    return num / den


def _spheres(shape=(40, 40, 40), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    grid = np.indices(shape)
    out = np.zeros(shape, np.float32)
    for _ in range(12):
        c = rng.uniform(0, shape[0], 3)
        r = rng.uniform(3, 7)
        out[((grid - c[:, None, None, None]) ** 2).sum(0) <= r * r] = 1.0
    return out


@pytest.mark.parametrize(("s", "p"), [(1, 1), (2, 1), (2, 0), (1, 2)])
def test_matches_bruteforce_3d(rng, s, p):
    img = rng.normal(size=(6, 7, 5)).astype(np.float32)
    h, sigma = 0.9, 0.4
    out = denoise_nlm(img, patch_size=2 * p + 1, search_radius=s, h=h, sigma=sigma)
    ref = _brute_nlm(img, s, p, h, sigma)
    # float32 sums and the polynomial exp: relative weight error < 5e-5
    np.testing.assert_allclose(out, ref, atol=2e-4)


def test_matches_bruteforce_2d(rng):
    img = rng.normal(size=(11, 9)).astype(np.float32)
    out = denoise_nlm(img, patch_size=3, search_radius=2, h=0.7, sigma=0.3)
    np.testing.assert_allclose(out, _brute_nlm(img, 2, 1, 0.7, 0.3), atol=2e-4)


def test_parallel_equals_serial_kernel(rng):
    from microbat.imaging import _nlm_kernels as K

    g = rng.normal(size=(30, 22, 26)).astype(np.float32)
    offs = K.half_window(2, 2, 2)
    a = K.nlm_valid(g, 2, 2, 2, 1, 1, 1, offs, 0.5, 0.3, 3)
    b = K.nlm_valid_serial(g, 2, 2, 2, 1, 1, 1, offs, 0.5, 0.3, 3)
    np.testing.assert_array_equal(a, b)


def test_chunked_equals_in_memory_3d(rng):
    clean = _spheres((36, 30, 33))
    img = clean + rng.normal(0, 0.25, clean.shape).astype(np.float32)
    full = denoise_nlm(img, sigma=0.25, search_radius=2)
    chunked = denoise_nlm(img, sigma=0.25, search_radius=2, chunks=(12, 15, 11))
    assert isinstance(chunked, np.ndarray)
    # identical everywhere (symmetric padding == dask 'reflect'), up to float32 rounding
    np.testing.assert_allclose(chunked, full, rtol=0, atol=1e-5)


def test_chunked_equals_in_memory_2d(rng):
    img = rng.normal(size=(50, 41)).astype(np.float32)
    full = denoise_nlm(img, sigma=1.0)
    chunked = denoise_nlm(img, sigma=1.0, chunks=(20, 17))
    np.testing.assert_allclose(chunked, full, rtol=0, atol=1e-5)


def test_dask_in_dask_out(rng):
    da = pytest.importorskip("dask.array")
    img = rng.normal(size=(24, 20, 22)).astype(np.float32)
    lazy = denoise_nlm(da.from_array(img, chunks=12), sigma=1.0, search_radius=2)
    assert isinstance(lazy, da.Array)
    np.testing.assert_allclose(
        lazy.compute(), denoise_nlm(img, sigma=1.0, search_radius=2), atol=1e-5
    )


def test_streaming_out_of_core(rng, tmp_path):
    zarr = pytest.importorskip("zarr")
    img = rng.normal(size=(30, 26, 28)).astype(np.float32)
    src = zarr.open_array(tmp_path / "in.zarr", mode="w", shape=img.shape, chunks=(10, 13, 14),
                          dtype="float32")  # fmt: skip
    src[:] = img
    dst = zarr.open_array(tmp_path / "out.zarr", mode="w", shape=img.shape, chunks=(10, 13, 14),
                          dtype="float32")  # fmt: skip
    ret = denoise_nlm(src, sigma=1.0, search_radius=2, chunks=(10, 13, 14), out=dst)
    assert ret is dst
    np.testing.assert_allclose(dst[:], denoise_nlm(img, sigma=1.0, search_radius=2), atol=1e-5)
    # a memory map as destination, a 2D source
    mm = np.lib.format.open_memmap(tmp_path / "o.npy", mode="w+", dtype=np.float32,
                                   shape=(30, 26))  # fmt: skip
    denoise_nlm(img[:, :, 0], sigma=1.0, chunks=(11, 9), out=mm)
    np.testing.assert_allclose(mm, denoise_nlm(img[:, :, 0], sigma=1.0), atol=1e-5)
    with pytest.raises(InvalidInputError, match="shape"):
        denoise_nlm(img, sigma=1.0, chunks=10, out=np.empty((3, 3, 3), np.float32))


def test_streaming_checks_nan(rng, tmp_path):
    zarr = pytest.importorskip("zarr")
    img = rng.normal(size=(20, 20, 20)).astype(np.float32)
    img[15, 3, 4] = np.nan
    src = zarr.open_array(tmp_path / "nan.zarr", mode="w", shape=img.shape, chunks=10,
                          dtype="float32")  # fmt: skip
    src[:] = img
    with pytest.raises(InvalidInputError, match="NaN"):
        denoise_nlm(src, sigma=1.0, chunks=10)


def test_denoises_phantom_better_than_gaussian(rng):
    clean = ndi.gaussian_filter(_spheres(), 1.0)
    noisy = clean + rng.normal(0, 0.2, clean.shape).astype(np.float32)
    out = denoise_nlm(noisy)  # sigma estimated
    err_nlm = np.sqrt(np.mean((out - clean) ** 2))
    err_noisy = np.sqrt(np.mean((noisy - clean) ** 2))
    err_gauss = np.sqrt(np.mean((ndi.gaussian_filter(noisy, 1.0) - clean) ** 2))
    assert err_nlm < 0.35 * err_noisy
    assert err_nlm < err_gauss
    assert out.dtype == np.float32 and out.shape == noisy.shape


def test_estimate_sigma(rng):
    clean = _spheres((48, 48, 48)) * 0.8 + 0.1
    for sigma in (0.05, 0.2):
        noisy = clean + rng.normal(0, sigma, clean.shape)
        assert estimate_sigma(noisy) == pytest.approx(sigma, rel=0.05)
    assert estimate_sigma(clean) == pytest.approx(0.0, abs=1e-12)
    # 2D works too
    assert estimate_sigma(rng.normal(0, 0.3, (200, 200))) == pytest.approx(0.3, rel=0.05)


def test_bad_input():
    img = np.zeros((10, 10, 10), np.float32)
    img[0, 0, 0] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        denoise_nlm(img)
    with pytest.raises(InvalidInputError, match="2D or 3D"):
        denoise_nlm(np.zeros((3, 3, 3, 3)))
    with pytest.raises(InvalidInputError, match="odd"):
        denoise_nlm(np.ones((8, 8, 8)), patch_size=4, sigma=1.0)
    with pytest.raises(InvalidInputError, match="real numbers"):
        denoise_nlm(np.ones((8, 8), complex))
    with pytest.raises(InvalidInputError, match="sigma"):
        denoise_nlm(np.ones((8, 8)), sigma=float("inf"))


def test_constant_image_warns_and_returns_unchanged():
    img = np.full((12, 12, 12), 3.0)
    with pytest.warns(UserWarning, match="unchanged"):
        out = denoise_nlm(img)
    np.testing.assert_array_equal(out, img.astype(np.float32))


def test_thin_volume_warns_and_filters_in_2d(rng):
    img = rng.normal(size=(1, 30, 30)).astype(np.float32)
    with pytest.warns(UserWarning, match="one voxel thin"):
        out = denoise_nlm(img, sigma=1.0)
    np.testing.assert_allclose(out[0], denoise_nlm(img[0], sigma=1.0), atol=1e-5)
