"""The ``microbat info`` and ``microbat convert`` verbs through typer's CliRunner."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from microbat.cli import app
from microbat.io import load_microstructure, read_volume, save_microstructure

tifffile = pytest.importorskip("tifffile")
h5py = pytest.importorskip("h5py")

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def lab() -> np.ndarray:
    lab = np.zeros((4, 6, 8), np.uint8)
    lab[:, :, 2:5] = 1
    lab[:, :, 5:] = 2
    return lab


def test_info_tiff_written_by_tifffile(tmp_path, lab):
    f = tmp_path / "seg.tif"
    tifffile.imwrite(
        f,
        lab,
        imagej=True,
        resolution=(2.0, 2.0),
        metadata={"unit": "micron", "spacing": 0.5, "axes": "ZYX"},
    )
    res = _run("info", f, "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["shape"] == [4, 6, 8]
    assert data["dtype"] == "uint8"
    assert data["voxel_size"] == pytest.approx([0.5e-6] * 3)
    assert data["kind"] == "labels"
    assert [p["name"] for p in data["phases"]] == ["pore", "cbd", "active"]
    assert data["volume_fractions"] == pytest.approx({"pore": 2 / 8, "cbd": 3 / 8, "active": 3 / 8})
    assert data["provenance"]["function"] == "microbat.io.describe"
    human = _run("info", f)
    assert human.exit_code == 0
    assert "cbd" in human.stdout and "37.500 %" in human.stdout


def test_info_hdf5_grayscale_written_by_h5py(tmp_path, rng):
    f = tmp_path / "recon.h5"
    img = rng.normal(5.0, 2.0, size=(6, 16, 16)).astype(np.float32)
    img[0, 0, 0] = np.nan
    with h5py.File(f, "w") as h:
        h["exchange/data"] = img
    res = _run("info", f, "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["kind"] == "grayscale"
    assert data["voxel_size"] is None
    finite = img[np.isfinite(img)].astype(np.float64)
    st = data["intensity"]
    assert st["min"] == pytest.approx(finite.min())
    assert st["max"] == pytest.approx(finite.max())
    assert st["mean"] == pytest.approx(finite.mean(), rel=1e-10)
    assert st["std"] == pytest.approx(finite.std(), rel=1e-10)
    assert st["n_nonfinite"] == 1
    assert any("segment" in n for n in data["notes"])
    assert any("voxel-size" in n for n in data["notes"])
    human = _run("info", f, "--voxel-size", "0.4um")
    assert human.exit_code == 0
    assert "400 nm" in human.stdout and "segment" in human.stdout


def test_info_labels_without_table_and_with_phases(tmp_path):
    f = tmp_path / "mask.npy"
    m = np.zeros((2, 4, 4), np.uint8)
    m[:, :, 1:] = 255
    np.save(f, m)
    data = json.loads(_run("info", f, "--json").stdout)
    assert data["label_fractions"] == {"0": 0.25, "255": 0.75}
    assert data["phases"] is None
    data = json.loads(_run("info", f, "--json", "--phases", "pore=0,active=255").stdout)
    assert data["volume_fractions"] == {"pore": 0.25, "active": 0.75}


def test_info_raw_options(tmp_path, lab):
    f = tmp_path / "x.raw"
    lab.astype(">u2").tofile(f)
    args = ["info", f, "--json", "--shape", "4,6,8", "--dtype", "uint16", "--byte-order", "big"]
    res = _run(*args)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["volume_fractions"]["pore"] == 0.25


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["info", "missing.tif"], "no such file"),
        (["info", "bad.tif"], "not a readable TIFF"),
        (["info", "x.raw", "--shape", "3,3,3", "--dtype", "uint8"], "expected 27 bytes"),
        (["info", "mask.npy", "--phases", "pore=0"], "not in the phase table"),
        (["convert", "mask.npy", "out.h5"], "does not say its voxel size"),
        (["convert", "gray.npy", "out.h5", "--phases", "pore=0,active=1"], "segment"),
        (["convert", "mask.npy", "out.png", "--voxel-size", "1um"], "cannot write"),
        (["info", "mask.npy", "--dataset", "a"], "leave dataset= out"),
    ],
)
def test_errors_exit_nonzero_with_one_line(tmp_path, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.tif").write_bytes(b"not a tiff at all" * 20)
    (tmp_path / "x.raw").write_bytes(b"\0" * 10)
    np.save(tmp_path / "mask.npy", np.eye(3, dtype=np.uint8)[None].repeat(2, 0))
    np.save(tmp_path / "gray.npy", np.ones((2, 3, 3), np.float32))
    res = _run(*args)
    assert res.exit_code != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: ")
    assert needle in lines[0]
    assert "Traceback" not in res.output
    assert not (tmp_path / "out.h5").exists()


def test_convert_labels_tiff_to_h5_keeps_everything(tmp_path, lab):
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, lab, photometric="minisblack")
    dst = tmp_path / "out.h5"
    res = _run(
        "convert", src, dst, "--voxel-size", "0.5um", "--phases", "pore=0,cbd=1,nmc=2",
        "--thickness-axis", "2", "--json",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["kind"] == "labels"
    assert data["format_out"] == "hdf5"
    ms = load_microstructure(dst)
    np.testing.assert_array_equal(ms.labels, lab)
    assert ms.voxel_size == (5e-7,) * 3
    assert ms.phases.names == ("pore", "cbd", "nmc")
    assert ms.thickness_axis == 2


def test_convert_every_format_pair(tmp_path, ms_rich):
    src = save_microstructure(ms_rich, tmp_path / "src.h5")
    previous = src
    for suffix in (".zarr", ".tif", ".npz", ".vti", ".h5"):
        dst = tmp_path / f"step{suffix}"
        res = _run("convert", previous, dst)
        assert res.exit_code == 0, res.output
        assert "wrote" in res.stdout
        previous = dst
    back = load_microstructure(previous)
    assert back == ms_rich
    assert back.metadata == ms_rich.metadata


def test_convert_grayscale_and_raw(tmp_path, rng):
    img = rng.normal(size=(3, 5, 7)).astype(np.float32)
    raw = tmp_path / "img.raw"
    img.tofile(raw)
    dst = tmp_path / "img.tif"
    res = _run("convert", raw, dst, "--shape", "3,5,7", "--dtype", "float32", "--voxel-size", "1um")
    assert res.exit_code == 0, res.output
    vol = read_volume(dst)
    np.testing.assert_array_equal(vol.data, img)
    assert vol.voxel_size == (1e-6,) * 3
    res = _run("convert", dst, tmp_path / "img.npy", "--json", "--no-compression")
    assert json.loads(res.stdout)["kind"] == "grayscale"
    np.testing.assert_array_equal(np.load(tmp_path / "img.npy"), img)


def test_convert_slice_folder(tmp_path):
    folder = tmp_path / "slices"
    folder.mkdir()
    for i in (1, 2, 10):
        s = np.zeros((4, 4), np.uint8)
        s[: i % 4 + 1] = 1
        tifffile.imwrite(folder / f"img_{i}.tif", s, photometric="minisblack")
    res = _run("convert", folder, tmp_path / "v.zarr", "--voxel-size", "1um", "--json")
    assert res.exit_code == 0, res.output
    ms = load_microstructure(tmp_path / "v.zarr")
    assert [int(ms.labels[k].sum()) for k in range(3)] == [8, 12, 12]  # 1, 2, 10 in order


def test_describe_streams_in_slabs(tmp_path, monkeypatch, rng):
    """Statistics merged over many slabs equal NumPy's, with bounded memory."""
    import tracemalloc

    import microbat.io._common as common
    from microbat.io import describe

    monkeypatch.setattr(common, "SLAB_BYTES", 2**20)
    img = rng.normal(1000.0, 3.0, size=(64, 256, 256)).astype(np.float32)  # 16 MiB, 64 slabs
    img[3, 4, 5] = np.inf
    labels = rng.integers(0, 3, size=(256, 256, 256), dtype=np.uint8)  # 16 MiB, 256 slabs
    img.tofile(tmp_path / "g.raw")
    labels.tofile(tmp_path / "l.raw")
    tracemalloc.start()
    try:
        g = describe(tmp_path / "g.raw", shape=img.shape, dtype="float32")
        lab = describe(tmp_path / "l.raw", shape=labels.shape, dtype="uint8")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    ref = img[np.isfinite(img)].astype(np.float64)
    assert g.intensity["n_nonfinite"] == 1
    assert g.intensity["mean"] == pytest.approx(ref.mean(), rel=1e-12)
    assert g.intensity["std"] == pytest.approx(ref.std(), rel=1e-9)
    assert g.intensity["min"] == ref.min() and g.intensity["max"] == ref.max()
    counts = np.bincount(labels.ravel(), minlength=3) / labels.size
    names = ("pore", "cbd", "active")
    assert lab.volume_fractions == pytest.approx(dict(zip(names, counts, strict=True)))
    assert peak < 6 * 2**20  # a float64 slab is 2 MiB; each file 16 MiB (32 MiB as float64)
