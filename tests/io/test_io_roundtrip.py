"""Round trips through every writable format, and lazy reading."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from microbat import Microstructure
from microbat.io import (
    Volume,
    load_microstructure,
    read_volume,
    save_microstructure,
    save_volume,
)

OWN_FORMATS = [".h5", ".hdf5", ".zarr", ".tif", ".tiff", ".npz", ".vti"]


def assert_same(a: Microstructure, b: Microstructure) -> None:
    assert b == a
    assert b.voxel_size == a.voxel_size  # exact, not approximately
    assert b.metadata == a.metadata
    assert b.labels.dtype == a.labels.dtype
    assert b.phases.to_list() == a.phases.to_list()


@pytest.mark.parametrize("suffix", OWN_FORMATS)
@pytest.mark.parametrize("compression", [True, False])
def test_microstructure_round_trip(tmp_path, ms_rich, suffix, compression):
    out = save_microstructure(ms_rich, tmp_path / f"ms{suffix}", compression=compression)
    assert out.exists()
    back = load_microstructure(out)
    assert_same(ms_rich, back)
    assert back.thickness_axis == 2
    assert back.phases["nmc"].role.value == "active"
    # nothing but the final file is left in the folder
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_npy_keeps_labels_only(tmp_path, ms_rich):
    out = save_microstructure(ms_rich, tmp_path / "ms.npy")
    vol = read_volume(out)
    np.testing.assert_array_equal(vol.data, ms_rich.labels)
    assert vol.voxel_size is None
    back = load_microstructure(
        out, voxel_size=ms_rich.voxel_size, phases=ms_rich.phases, thickness_axis=2
    )
    assert back == ms_rich
    assert back.metadata == {"source": str(out)}


@pytest.mark.parametrize("suffix", [".h5", ".zarr", ".tif", ".npz"])
def test_2d_and_uint16_round_trip(tmp_path, suffix):
    lab = np.zeros((6, 8), np.uint16)
    lab[:, 4:] = 300
    ms = Microstructure(lab, voxel_size=2e-6, phases="pore=0,active=300")
    back = load_microstructure(save_microstructure(ms, tmp_path / f"a{suffix}"))
    assert_same(ms, back)


def test_file_overrides(tmp_path, ms_rich):
    out = save_microstructure(ms_rich, tmp_path / "ms.h5")
    back = load_microstructure(out, voxel_size="1um", thickness_axis=0, phases="a=0,b=1,c=2")
    assert back.voxel_size == (1e-6, 1e-6, 1e-6)
    assert back.thickness_axis == 0
    assert back.phases.names == ("a", "b", "c")
    np.testing.assert_array_equal(back.labels, ms_rich.labels)


def test_empty_phase_of_a_crop_survives(tmp_path):
    lab = np.zeros((4, 4, 4), np.uint8)
    lab[:, :, 2:] = 2
    ms = Microstructure(
        lab, voxel_size=1e-6, phases="pore=0,cbd=1,active=2", allow_empty_phases=True
    )
    back = load_microstructure(save_microstructure(ms, tmp_path / "crop.zarr"))
    assert back.phases.names == ("pore", "cbd", "active")
    assert back.volume_fractions()["cbd"] == 0.0


@pytest.mark.parametrize("suffix", [".tif", ".h5", ".zarr", ".npz"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16, np.int16])
def test_save_volume_round_trip(tmp_path, rng, suffix, dtype):
    img = (rng.normal(100, 20, size=(5, 6, 7))).astype(dtype)
    out = save_volume(img, tmp_path / f"img{suffix}", voxel_size=(1e-6, 2e-6, 3e-6))
    vol = read_volume(out)
    assert vol.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(vol.data, img)
    assert vol.voxel_size == (1e-6, 2e-6, 3e-6)
    assert vol.metadata["microbat_format"] == "volume"


def test_save_volume_without_voxel_size_and_npy(tmp_path, rng):
    img = rng.random((3, 4, 5)).astype(np.float32)
    for suffix in (".tif", ".h5", ".zarr", ".npy"):
        vol = read_volume(save_volume(img, tmp_path / f"g{suffix}"))
        np.testing.assert_array_equal(vol.data, img)
        assert vol.voxel_size is None


def test_save_volume_takes_a_volume(tmp_path, rng):
    img = rng.random((3, 4, 5))
    v = Volume(img, voxel_size=(1e-6,) * 3, source="mem")
    back = read_volume(save_volume(v, tmp_path / "v.h5"))
    assert back.voxel_size == (1e-6,) * 3
    np.testing.assert_array_equal(back.data, img)


def test_big_endian_input_written_native(tmp_path):
    img = np.arange(60, dtype=">f4").reshape(3, 4, 5)
    for suffix in (".tif", ".h5", ".zarr", ".npy", ".npz"):
        vol = read_volume(save_volume(img, tmp_path / f"be{suffix}"))
        assert vol.dtype.isnative
        np.testing.assert_array_equal(vol.data, img)


# ------------------------------------------------------------------ lazy


@pytest.mark.parametrize(
    ("suffix", "kind"),
    [(".npy", np.memmap), (".npz", np.memmap), (".vti", np.memmap), (".tif", np.memmap)],
)
def test_lazy_gives_memmap(tmp_path, ms_rich, suffix, kind):
    out = save_microstructure(ms_rich, tmp_path / f"m{suffix}", compression=False)
    vol = read_volume(out, lazy=True)
    assert isinstance(vol.data, kind)
    assert vol.is_lazy
    np.testing.assert_array_equal(vol.data[3], ms_rich.labels[3])


def test_lazy_chunk_backed(tmp_path, ms_rich):
    h5py = pytest.importorskip("h5py")
    zarr = pytest.importorskip("zarr")
    with read_volume(save_microstructure(ms_rich, tmp_path / "m.h5"), lazy=True) as vol:
        assert isinstance(vol.data, h5py.Dataset)
        np.testing.assert_array_equal(vol.data[2:4], ms_rich.labels[2:4])
    vol = read_volume(save_microstructure(ms_rich, tmp_path / "m.zarr"), lazy=True)
    assert isinstance(vol.data, zarr.Array)
    with read_volume(save_microstructure(ms_rich, tmp_path / "c.tif"), lazy=True) as vol:
        assert isinstance(vol.data, zarr.Array)  # compressed TIFF: not memory-mappable
        np.testing.assert_array_equal(vol.data[:, 1], ms_rich.labels[:, 1])
        np.testing.assert_array_equal(vol.to_numpy(), ms_rich.labels)
        assert vol.to_dask().shape == ms_rich.shape


@pytest.mark.parametrize("suffix", [".raw", ".npy", ".h5", ".zarr", ".tif"])
def test_lazy_does_not_load_the_data(tmp_path, suffix):
    """Opening lazily allocates a small fraction of the file; eager allocates all of it."""
    nbytes = 8 * 2**20
    arr = np.zeros((32, 512, 512), np.uint8)
    arr[::2] = 1
    path = tmp_path / f"big{suffix}"
    if suffix == ".raw":
        arr.tofile(path)
        opts = {"shape": arr.shape, "dtype": "uint8"}
    else:
        save_volume(arr, path, compression=suffix != ".tif")
        opts = {}
    tracemalloc.start()
    try:
        vol = read_volume(path, lazy=True, **opts)
        _, lazy_peak = tracemalloc.get_traced_memory()
        vol.close()
        tracemalloc.reset_peak()
        vol = read_volume(path, **opts)
        _, eager_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert eager_peak >= nbytes  # the measurement sees the array when it is loaded
    assert lazy_peak < nbytes / 20
    assert int(vol.data.sum()) == 16 * 512 * 512


@pytest.mark.parametrize("suffix", [".tif", ".h5", ".zarr", ".npz", ".vti"])
def test_mask_saved_as_volume_loads_as_labels(tmp_path, suffix):
    mask = np.zeros((3, 4, 5), bool)
    mask[1] = True
    out = save_volume(mask, tmp_path / f"mask{suffix}", voxel_size=2e-6)
    ms = load_microstructure(out)
    assert ms.phases.names == ("pore", "active")
    assert ms.voxel_size == (2e-6,) * 3
    np.testing.assert_array_equal(ms.labels, mask)


def test_load_lazy_keeps_the_memory_map(tmp_path):
    lab = np.zeros((8, 9, 10), np.uint8)
    lab[:, :, 5:] = 1
    np.save(tmp_path / "l.npy", lab)
    ms = load_microstructure(tmp_path / "l.npy", voxel_size=1e-6, lazy=True)
    base = ms.labels
    while base.base is not None and not isinstance(base, np.memmap):
        base = base.base
    assert isinstance(base, np.memmap)  # not copied into memory
    assert ms.volume_fractions() == {"pore": 0.5, "active": 0.5}


@pytest.mark.parametrize("suffix", [".h5", ".zarr", ".tif", ".npz", ".vti"])
def test_large_metadata(tmp_path, rng, suffix):
    """Metadata larger than HDF5's 64 KiB compact attribute limit; arrays become lists."""
    lab = np.zeros((4, 4, 4), np.uint8)
    lab[:, :, 2:] = 1
    centres = rng.random((5000, 3))
    ms = Microstructure(lab, voxel_size=1e-6, metadata={"particles": {"centres": centres}})
    back = load_microstructure(save_microstructure(ms, tmp_path / f"m{suffix}"))
    np.testing.assert_array_equal(np.asarray(back.metadata["particles"]["centres"]), centres)
