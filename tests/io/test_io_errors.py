"""Broken, missing and unsuitable files give FileFormatError (or a teaching error)."""

from __future__ import annotations

import numpy as np
import pytest

from microbat import Microstructure
from microbat.core.errors import FileFormatError, PhaseError, VoxelSizeError
from microbat.io import load_microstructure, read_volume, save_microstructure, save_volume

tifffile = pytest.importorskip("tifffile")
h5py = pytest.importorskip("h5py")


def _truncate(path, keep):
    data = path.read_bytes()
    n = keep if keep >= 1 else int(len(data) * keep)
    if keep < 0:
        n = len(data) + keep
    path.write_bytes(data[:n])


@pytest.fixture
def stack(rng) -> np.ndarray:
    return rng.integers(0, 255, size=(10, 64, 64), dtype=np.uint8)


def test_missing_file(tmp_path):
    (tmp_path / "scan.h5").write_bytes(b"")
    with pytest.raises(FileFormatError, match=r"scan\.tif: no such file.*scan\.h5"):
        read_volume(tmp_path / "scan.tif")
    with pytest.raises(FileFormatError, match="no such file"):
        load_microstructure(tmp_path / "nothing.npy", voxel_size=1e-6)


def test_unknown_suffix(tmp_path):
    f = tmp_path / "a.png"
    f.write_bytes(b"\x89PNG")
    with pytest.raises(FileFormatError, match=r"unknown file type '\.png'.*\.tif"):
        read_volume(f)
    lab = np.zeros((2, 2, 2), np.uint8)
    lab[0] = 1
    ms = Microstructure(lab, voxel_size=1e-6)
    with pytest.raises(FileFormatError, match=r"cannot write '\.png'.*\.h5"):
        save_microstructure(ms, tmp_path / "out.png")
    with pytest.raises(FileFormatError, match="cannot write"):
        save_volume(lab, tmp_path / "out.raw")


@pytest.mark.parametrize("keep", [0.05, 0.5, -30])
@pytest.mark.parametrize("compression", [None, "zlib"])
@pytest.mark.parametrize("lazy", [False, True])
def test_truncated_tiff(tmp_path, stack, keep, compression, lazy):
    f = tmp_path / "t.tif"
    tifffile.imwrite(f, stack, photometric="minisblack", compression=compression)
    _truncate(f, keep)
    with pytest.raises(FileFormatError, match=r"t\.tif"):
        vol = read_volume(f, lazy=lazy)
        np.asarray(vol.data[...])  # a lazy reader may only notice when reading
        vol.close()


@pytest.mark.parametrize("lazy", [False, True])
def test_truncated_imagej_hyperstack(tmp_path, stack, lazy):
    """ImageJ stacks describe all pages through the first one: the end is checked."""
    f = tmp_path / "ij.tif"
    tifffile.imwrite(f, stack, imagej=True, metadata={"axes": "ZYX"})
    _truncate(f, -500)
    with pytest.raises(FileFormatError, match=r"ij\.tif.*truncated"):
        read_volume(f, lazy=lazy)


def test_not_a_tiff(tmp_path):
    f = tmp_path / "x.tiff"
    f.write_bytes(b"this is text, not an image" * 10)
    with pytest.raises(FileFormatError, match=r"not a readable TIFF"):
        read_volume(f)


@pytest.mark.parametrize("keep", [0.5, -100])
def test_truncated_hdf5(tmp_path, stack, keep):
    f = tmp_path / "t.h5"
    with h5py.File(f, "w") as h:
        h.create_dataset("x", data=stack, chunks=(2, 64, 64), compression="gzip")
    _truncate(f, keep)
    with pytest.raises(FileFormatError, match=r"t\.h5: not a readable HDF5 file.*truncated"):
        read_volume(f)


def test_not_hdf5(tmp_path):
    f = tmp_path / "x.hdf5"
    f.write_bytes(b"\0" * 100)
    with pytest.raises(FileFormatError, match="not a readable HDF5"):
        read_volume(f)


@pytest.mark.parametrize("lazy", [False, True])
def test_truncated_npy(tmp_path, stack, lazy):
    f = tmp_path / "t.npy"
    np.save(f, stack)
    _truncate(f, -100)
    with pytest.raises(FileFormatError, match=r"truncated: expected 41088 bytes.*has 40988"):
        read_volume(f, lazy=lazy)
    _truncate(f, 20)  # inside the header
    with pytest.raises(FileFormatError, match=r"not a valid \.npy"):
        read_volume(f, lazy=lazy)


def test_npy_with_objects_refused(tmp_path):
    f = tmp_path / "o.npy"
    np.save(f, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(FileFormatError, match="Python objects"):
        read_volume(f)


@pytest.mark.parametrize("keep", [0.5, -10])
def test_truncated_npz(tmp_path, stack, keep):
    f = tmp_path / "t.npz"
    np.savez_compressed(f, a=stack)
    _truncate(f, keep)
    with pytest.raises(FileFormatError, match=r"t\.npz"):
        read_volume(f)


def test_corrupt_zarr(tmp_path, stack):
    zarr = pytest.importorskip("zarr")
    store = tmp_path / "c.zarr"
    zarr.create_array(str(store), data=stack, chunks=(5, 64, 64), zarr_format=2)
    (store / ".zarray").write_text("{not json")
    with pytest.raises(FileFormatError, match=r"c\.zarr: not a readable Zarr store"):
        read_volume(store)
    zarr.create_array(str(store), data=stack, chunks=(5, 64, 64), zarr_format=2, overwrite=True)
    chunk = next(p for p in store.iterdir() if not p.name.startswith("."))
    chunk.write_bytes(b"garbage")
    with pytest.raises(FileFormatError, match=r"cannot read the Zarr data"):
        read_volume(store)


def test_truncated_vti(tmp_path, stack):
    from microbat.io import write_vti

    for compress in (True, False):
        f = write_vti(stack, tmp_path / f"t{compress}.vti", voxel_size=1e-6, compress=compress)
        _truncate(f, 0.6)
        with pytest.raises(FileFormatError, match="truncated"):
            read_volume(f)


def test_missing_voxel_size(tmp_path):
    f = tmp_path / "lab.npy"
    lab = np.zeros((3, 3, 3), np.uint8)
    lab[1:] = 1
    np.save(f, lab)
    with pytest.raises(VoxelSizeError, match=r"lab\.npy: the file does not say.*--voxel-size"):
        load_microstructure(f)
    assert load_microstructure(f, voxel_size=1e-6).voxel_size == (1e-6,) * 3


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grayscale_float_points_to_segmentation(tmp_path, rng, dtype):
    f = tmp_path / "gray.tif"
    tifffile.imwrite(f, rng.random((3, 8, 8)).astype(dtype), photometric="minisblack")
    with pytest.raises(FileFormatError, match=rf"grayscale {np.dtype(dtype)}.*segment"):
        load_microstructure(f, voxel_size=1e-6)
    with pytest.raises(FileFormatError, match="segment"):  # a phase table does not help
        load_microstructure(f, voxel_size=1e-6, phases="pore=0,active=1")


def test_grayscale_integer_image_points_to_segmentation(tmp_path, rng):
    f = tmp_path / "ct.npy"
    np.save(f, rng.integers(0, 60000, size=(4, 16, 16)).astype(np.uint16))
    with pytest.raises(FileFormatError, match=r"distinct uint16 values.*segment.*--phases"):
        load_microstructure(f, voxel_size=1e-6)


def test_labels_without_table_need_phases(tmp_path):
    f = tmp_path / "mask.npy"
    lab = np.zeros((3, 4, 4), np.uint8)
    lab[:, 2:] = 255
    np.save(f, lab)
    with pytest.raises(PhaseError, match="give a phase table"):
        load_microstructure(f, voxel_size=1e-6)
    ms = load_microstructure(f, voxel_size=1e-6, phases="pore=0,active=255")
    assert ms.volume_fractions() == {"pore": 0.5, "active": 0.5}


def test_unknown_option(tmp_path):
    from microbat.core.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="unknown option"):
        load_microstructure(tmp_path / "x.npy", voxel_size=1e-6, shapes=(1, 2, 3))


# ------------------------------------------------------------------ atomic writes


def _broken(*args, **kwargs):
    raise OSError("disk full (simulated)")


@pytest.mark.parametrize(
    ("suffix", "module", "attr"),
    [
        (".h5", "microbat.io._hdf5", "write_hdf5"),
        (".zarr", "microbat.io._zarr", "write_zarr"),
        (".tif", "microbat.io._tiff", "write_tiff"),
        (".npy", "microbat.io._raw", "write_npy"),
        (".npz", "microbat.io._raw", "write_npz"),
        (".vti", "microbat.io.vtk", "_write_compressed"),
    ],
)
def test_failed_write_leaves_nothing(tmp_path, monkeypatch, ms_rich, suffix, module, attr):
    import importlib

    monkeypatch.setattr(importlib.import_module(module), attr, _broken)
    with pytest.raises(OSError, match="simulated"):
        save_microstructure(ms_rich, tmp_path / f"out{suffix}")
    assert list(tmp_path.iterdir()) == []


def test_failure_midway_keeps_the_old_file(tmp_path, monkeypatch, ms_rich):
    """A library that fails after writing some bytes: the previous file stays intact."""
    out = save_microstructure(ms_rich, tmp_path / "ms.tif")
    before = out.read_bytes()

    def half(path, *args, **kwargs):
        with open(path, "wb") as fh:
            fh.write(b"II*\0partial")
        raise RuntimeError("crash while writing")

    monkeypatch.setattr(tifffile, "imwrite", half)
    with pytest.raises(RuntimeError, match="crash"):
        save_microstructure(ms_rich, out)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ms.tif"]
