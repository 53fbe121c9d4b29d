"""The imaging front end: reconstruct() and the denoise / segment / reconstruct verbs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi
from typer.testing import CliRunner

from microbat.core.errors import InvalidInputError, VoxelSizeError
from microbat.imaging.reconstruction import ReconstructionResult, reconstruct

MEANS = np.array([0.1, 0.45, 0.9])


def _labels(n: int = 32, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    grid = np.indices((n, n, n)).astype(np.float32)
    act = np.zeros((n, n, n), bool)
    while act.mean() < 0.45:
        c = rng.uniform(0, n, 3)
        act |= ((grid - c[:, None, None, None]) ** 2).sum(0) <= rng.uniform(4, 6) ** 2
    ball = ndi.generate_binary_structure(3, 1)
    cbd = ndi.binary_closing(act, ball, iterations=3) & ~act
    lab = np.zeros(act.shape, np.uint8)
    lab[cbd] = 1
    lab[act] = 2
    return lab


@pytest.fixture(scope="module")
def phantom() -> tuple[np.ndarray, np.ndarray]:
    lab = _labels()
    rng = np.random.default_rng(7)
    img = ndi.gaussian_filter(MEANS[lab], 1.0, mode="nearest")
    img = (img + rng.normal(0, 0.8 / 4.5, lab.shape)).astype(np.float32)  # SNR 4.5
    return lab, img


def test_reconstruct_pipeline(phantom, tmp_path):
    lab, img = phantom
    res = reconstruct(
        img, voxel_size=0.5e-6, qc_figure=tmp_path / "qc.png", report=tmp_path / "r.json"
    )
    assert isinstance(res, ReconstructionResult)
    acc = float((res.microstructure.labels == lab).mean())
    assert acc > 0.88
    # each step does its share: the full chain beats segmenting the raw image
    from microbat.imaging.segmentation import segment

    raw = segment(img, voxel_size=0.5e-6, spatial_prior="none")
    assert acc > float((raw.labels == lab).mean()) + 0.05
    assert res.denoised.shape == img.shape and res.denoised.dtype == np.float32
    assert res.noise_sigma == pytest.approx(0.8 / 4.5, rel=0.15)
    assert set(res.timings) == {"denoise", "segment", "connectivity"}
    assert res.connectivity.percolates("pore")
    assert (tmp_path / "qc.png").stat().st_size > 10_000
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["segmentation"]["method"] == "gmm"
    assert rep["connectivity"]["axis"] == 0
    assert rep["microstructure"]["shape"] == [32, 32, 32]
    assert rep["provenance"]["function"] == "microbat.imaging.reconstruct"


def test_reconstruct_remove_isolated_and_no_denoise(phantom):
    _, img = phantom
    res = reconstruct(img, voxel_size=0.5e-6, denoise=False, psf_sigma=None, remove_isolated=True)
    assert res.denoised is None
    assert res.removal is not None
    from microbat.imaging.connectivity import analyze_connectivity

    solid = analyze_connectivity(res.microstructure, phases="solid")
    assert all(v["isolated"] == 0.0 for v in solid.volume_fractions.values())
    fig = res.plot(img)
    assert len(fig.axes) >= 6


def test_reconstruct_bad_input(phantom):
    _, img = phantom
    with pytest.raises(VoxelSizeError):
        reconstruct(img, voxel_size=None)
    bad = img.copy()
    bad[1, 2, 3] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        reconstruct(bad, voxel_size=1e-6)
    with pytest.raises(InvalidInputError, match="constant"):
        reconstruct(np.zeros((8, 8, 8)), voxel_size=1e-6)


# ------------------------------------------------------------------ CLI
def _app():
    import typer

    from microbat.cli import _imaging

    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Test root."""

    _imaging.register(app)
    return app


def _run(*args):
    return CliRunner().invoke(_app(), [str(a) for a in args])


@pytest.fixture(scope="module")
def foreign_tiff(phantom, tmp_path_factory) -> tuple:
    """A plain 16-bit TIFF stack written by tifffile (no microbat metadata)."""
    lab, img = phantom
    path = tmp_path_factory.mktemp("tif") / "scan.tif"
    u16 = np.clip((img + 0.5) * 20000, 0, 65535).astype(np.uint16)
    tifffile.imwrite(path, u16)
    return lab, path


def test_cli_denoise_segment(foreign_tiff, tmp_path):
    from microbat.io import read_volume

    lab, path = foreign_tiff
    den = tmp_path / "den.tif"
    r = _run("denoise", path, den, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["noise_sigma"] > 0 and out["shape"] == [32, 32, 32]
    d = read_volume(den).data
    assert d.shape == (32, 32, 32)

    seg = tmp_path / "seg.h5"
    r = _run(
        "segment", den, seg, "--phases", "pore,cbd,active", "--voxel-size", "0.5um",
        "--psf-sigma", "1", "--uncertainty", tmp_path / "unc.tif", "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert list(out["means"]) == ["pore", "cbd", "active"]
    from microbat.io import load_microstructure

    ms = load_microstructure(seg)
    assert ms.voxel_size == pytest.approx((0.5e-6,) * 3)
    assert float((ms.labels == lab).mean()) > 0.85
    assert (tmp_path / "unc.tif").exists()

    r = _run("segment", den, tmp_path / "otsu.h5", "--method", "otsu", "--voxel-size", "0.5um")
    assert r.exit_code == 0, r.output
    assert "wrote" in r.output


def test_cli_reconstruct(foreign_tiff, tmp_path):
    lab, path = foreign_tiff
    out = tmp_path / "twin.h5"
    r = _run("reconstruct", path, out, "--voxel-size", "0.5um", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["output"].endswith("twin.h5")
    assert (tmp_path / "twin_qc.png").exists()
    assert (tmp_path / "twin_report.json").exists()
    from microbat.io import load_microstructure

    assert float((load_microstructure(out).labels == lab).mean()) > 0.85


def test_cli_errors(foreign_tiff, tmp_path):
    _, path = foreign_tiff
    r = _run("reconstruct", path, tmp_path / "x.h5")
    assert r.exit_code == 1
    assert "voxel size" in r.output
    r = _run("segment", path, tmp_path / "x.h5", "--voxel-size", "1um", "--psf-sigma", "wide")
    assert r.exit_code == 1
    assert "--psf-sigma" in r.output
    const = tmp_path / "const.npy"
    np.save(const, np.ones((8, 8, 8), np.float32))
    r = _run("segment", const, tmp_path / "y.h5", "--voxel-size", "1um")
    assert r.exit_code == 1
    assert "constant" in r.output
