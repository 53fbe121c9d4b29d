"""Reading files written by other tools (tifffile, h5py, zarr, numpy) directly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from microbat.core.errors import FileFormatError, InvalidInputError
from microbat.io import load_microstructure, read_volume

tifffile = pytest.importorskip("tifffile")
h5py = pytest.importorskip("h5py")
zarr = pytest.importorskip("zarr")


@pytest.fixture
def labels(rng) -> np.ndarray:
    return rng.integers(0, 3, size=(6, 10, 14), dtype=np.uint8)


# ------------------------------------------------------------------ TIFF


def test_imagej_tiff_spacing_and_unit(tmp_path, labels):
    f = tmp_path / "ij.tif"
    tifffile.imwrite(
        f,
        labels,
        imagej=True,
        photometric="minisblack",
        resolution=(1 / 0.25, 1 / 0.5),  # pixels per micron in x and y
        metadata={"spacing": 0.75, "unit": "micron", "axes": "ZYX"},
    )
    vol = read_volume(f)
    np.testing.assert_array_equal(vol.data, labels)
    assert vol.voxel_size == pytest.approx((0.75e-6, 0.5e-6, 0.25e-6), rel=1e-12)
    assert not vol.is_microbat
    ms = load_microstructure(f)
    assert ms.phases.names == ("pore", "cbd", "active")
    assert ms.metadata == {"source": str(f)}


@pytest.mark.parametrize(("unit", "scale"), [("nm", 1e-9), ("mm", 1e-3), ("\\u00B5m", 1e-6)])
def test_imagej_units(tmp_path, labels, unit, scale):
    f = tmp_path / "u.tif"
    tifffile.imwrite(
        f,
        labels,
        imagej=True,
        photometric="minisblack",
        resolution=(1 / 2.0, 1 / 2.0),
        metadata={"unit": unit, "axes": "ZYX"},  # no spacing: ImageJ means 1 unit
    )
    assert read_volume(f).voxel_size == pytest.approx((1 * scale, 2 * scale, 2 * scale))


def test_imagej_uncalibrated_has_no_voxel_size(tmp_path, labels):
    f = tmp_path / "px.tif"
    tifffile.imwrite(f, labels, imagej=True, photometric="minisblack", metadata={"axes": "ZYX"})
    assert read_volume(f).voxel_size is None


def test_resolution_tags_give_in_plane_size_only(tmp_path, labels):
    f = tmp_path / "cm.tif"
    # 0.4 µm pixels = 25000 pixels per centimetre
    tifffile.imwrite(
        f, labels, photometric="minisblack", resolution=(25000, 25000), resolutionunit="CENTIMETER"
    )
    vol = read_volume(f)
    assert vol.voxel_size is None
    assert vol.metadata["pixel_size_m"] == pytest.approx([0.4e-6, 0.4e-6])
    with pytest.raises(Exception, match=r"in-plane pixel size of 400 nm.*voxel_size"):
        load_microstructure(f)
    ms = load_microstructure(f, voxel_size=0.4e-6)
    assert ms.voxel_size == (0.4e-6,) * 3


def test_2d_tiff_resolution_is_complete(tmp_path):
    img = np.zeros((8, 9), np.uint8)
    img[:, 4:] = 1
    f = tmp_path / "one.tif"
    tifffile.imwrite(f, img, photometric="minisblack", resolution=(1e4, 2e4), resolutionunit=3)
    vol = read_volume(f)
    assert vol.voxel_size == pytest.approx((0.5e-6, 1e-6))


def test_plain_tiff_written_by_tifffile_lazy_memmap(tmp_path, labels):
    f = tmp_path / "plain.tif"
    tifffile.imwrite(f, labels, photometric="minisblack")
    vol = read_volume(f, lazy=True)
    assert isinstance(vol.data, np.memmap)
    np.testing.assert_array_equal(vol.data, labels)


def test_tiff_folder_natural_sort(tmp_path):
    folder = tmp_path / "slices"
    folder.mkdir()
    order = [1, 2, 3, 10, 11, 20, 100]
    for i in reversed(order):  # creation order must not matter
        tifffile.imwrite(
            folder / f"slice{i}.tif", np.full((4, 5), i, np.uint8), photometric="minisblack"
        )
    (folder / "notes.txt").write_text("ignored")
    (folder / ".hidden.tif").write_bytes(b"junk")
    for lazy in (False, True):
        vol = read_volume(folder, lazy=lazy)
        assert vol.shape == (7, 4, 5)
        assert [int(v) for v in np.asarray(vol.data[:, 0, 0])] == order
        assert vol.format == "tiff-folder"


def test_tiff_folder_mismatched_slice(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    tifffile.imwrite(folder / "s1.tif", np.zeros((4, 5), np.uint8), photometric="minisblack")
    tifffile.imwrite(folder / "s2.tif", np.zeros((4, 6), np.uint8), photometric="minisblack")
    with pytest.raises(FileFormatError, match=r"s2\.tif.*all slices must match"):
        read_volume(folder)


def test_tiff_folder_with_imagej_spacing(tmp_path):
    folder = tmp_path / "ij"
    folder.mkdir()
    for i in range(3):
        tifffile.imwrite(
            folder / f"z{i}.tif",
            np.full((4, 5), i, np.uint8),
            imagej=True,
            resolution=(2.0, 2.0),
            metadata={"unit": "micron", "spacing": 0.8},
        )
    vol = read_volume(folder)
    assert vol.voxel_size == pytest.approx((0.8e-6, 0.5e-6, 0.5e-6))


def test_empty_folder(tmp_path):
    with pytest.raises(FileFormatError, match=r"no \.tif/\.tiff slices"):
        read_volume(tmp_path)


# ------------------------------------------------------------------ HDF5


def test_hdf5_single_3d_dataset_is_taken(tmp_path, labels):
    f = tmp_path / "scan.h5"
    with h5py.File(f, "w") as h:
        h["meta/angles"] = np.linspace(0, 1, 5)
        h["exchange/data"] = labels
        h["exchange/data"].attrs["element_size_um"] = [0.5, 0.4, 0.4]
    vol = read_volume(f)
    np.testing.assert_array_equal(vol.data, labels)
    assert vol.metadata["dataset"] == "/exchange/data"
    assert vol.voxel_size == pytest.approx((0.5e-6, 0.4e-6, 0.4e-6))


def test_hdf5_ambiguous_and_wrong_dataset(tmp_path, labels):
    f = tmp_path / "two.nxs"
    with h5py.File(f, "w") as h:
        h["a"] = labels
        h["b/c"] = labels.astype(np.float32)
    with pytest.raises(FileFormatError, match=r"cannot tell.*/a \(3D uint8.*/b/c \(3D float32"):
        read_volume(f)
    with pytest.raises(FileFormatError, match=r"no dataset 'nope'.*/a .*/b/c"):
        read_volume(f, dataset="nope")
    with pytest.raises(FileFormatError, match="is a group"):
        read_volume(f, dataset="b")
    vol = read_volume(f, dataset="/b/c")
    assert vol.dtype == np.float32
    assert vol.source.endswith("::/b/c")


def test_hdf5_big_endian_dataset(tmp_path, labels):
    f = tmp_path / "be.h5"
    with h5py.File(f, "w") as h:
        h["x"] = labels.astype(">u2")
    vol = read_volume(f)
    assert vol.dtype == np.dtype("=u2")
    np.testing.assert_array_equal(vol.data, labels)


# ------------------------------------------------------------------ Zarr


def test_zarr_group_and_array(tmp_path, labels):
    store = tmp_path / "g.zarr"
    g = zarr.open_group(str(store), mode="w")
    g.create_array("raw/recon", data=labels.astype(np.float32), chunks=(2, 5, 7))
    g.create_array("seg", data=labels, chunks=(2, 5, 7))
    with pytest.raises(
        FileFormatError, match=r"cannot tell.*seg \(3D uint8.*raw/recon \(3D float32"
    ):
        read_volume(store)
    vol = read_volume(store, dataset="seg")
    np.testing.assert_array_equal(vol.data, labels)
    with pytest.raises(FileFormatError, match="no array 'segx'"):
        read_volume(store, dataset="segx")
    single = tmp_path / "a.zarr"
    zarr.create_array(str(single), data=labels, chunks=(3, 10, 14))
    lazy = read_volume(single, lazy=True)
    assert isinstance(lazy.data, zarr.Array)
    np.testing.assert_array_equal(lazy.data[1:3], labels[1:3])


def test_folder_without_suffix_recognised_as_zarr(tmp_path, labels):
    store = tmp_path / "store"
    zarr.create_array(str(store), data=labels, chunks=(3, 10, 14))
    assert read_volume(store).format == "zarr"


# ------------------------------------------------------------------ NumPy and raw


def test_npy_written_by_numpy_fortran_order(tmp_path, labels):
    f = tmp_path / "f.npy"
    np.save(f, np.asfortranarray(labels))
    for lazy in (False, True):
        np.testing.assert_array_equal(read_volume(f, lazy=lazy).data, labels)


def test_npz_written_by_numpy(tmp_path, labels):
    f = tmp_path / "a.npz"
    np.savez_compressed(f, spectrum=np.arange(5.0), seg=labels)
    vol = read_volume(f)  # the only 3D array
    np.testing.assert_array_equal(vol.data, labels)
    np.savez(f, a=labels, b=labels)
    with pytest.raises(FileFormatError, match=r"cannot tell.*a \(3D uint8"):
        read_volume(f)
    assert isinstance(read_volume(f, dataset="b", lazy=True).data, np.memmap)
    with pytest.raises(FileFormatError, match="no array 'c'"):
        read_volume(f, dataset="c")


def test_raw_offset_and_big_endian(tmp_path, rng):
    arr = rng.integers(0, 4000, size=(4, 5, 6)).astype(np.uint16)
    f = tmp_path / "scan.raw"
    with open(f, "wb") as fh:
        fh.write(b"HEADER" * 10)  # 60-byte header
        fh.write(arr.astype(">u2").tobytes())
    for lazy in (False, True):
        vol = read_volume(
            f, shape=(4, 5, 6), dtype="uint16", byte_order="big", offset=60, lazy=lazy
        )
        np.testing.assert_array_equal(vol.data, arr)
    assert isinstance(vol.data, np.memmap)
    eager = read_volume(f, shape="4,5,6", dtype="u2", byte_order="big", offset=60)
    assert eager.dtype.isnative
    # the wrong byte order gives other numbers: the option does something
    wrong = read_volume(f, shape=(4, 5, 6), dtype="uint16", byte_order="little", offset=60)
    assert not np.array_equal(wrong.data, arr)


def test_raw_size_mismatch_says_expected_and_actual(tmp_path):
    f = tmp_path / "v.vol"
    np.zeros(100, np.uint8).tofile(f)
    with pytest.raises(FileFormatError, match=r"expected 120 bytes.*file has 100 bytes"):
        read_volume(f, shape=(2, 6, 10), dtype="uint8")
    with pytest.raises(FileFormatError, match=r"expected 110 bytes"):
        read_volume(f, shape=(1, 10, 10), dtype="uint8", offset=10)


def test_raw_needs_shape_and_dtype(tmp_path):
    f = tmp_path / "v.bin"
    np.zeros(8, np.uint8).tofile(f)
    with pytest.raises(InvalidInputError, match="shape"):
        read_volume(f)
    with pytest.raises(InvalidInputError, match="not a NumPy data type"):
        read_volume(f, shape=(2, 2, 2), dtype="nonsense")
    with pytest.raises(InvalidInputError, match="byte_order"):
        read_volume(f, shape=(2, 2, 2), dtype="u1", byte_order="middle")


def test_raw_options_rejected_for_other_formats(tmp_path, labels):
    f = tmp_path / "a.npy"
    np.save(f, labels)
    with pytest.raises(InvalidInputError, match="raw binary"):
        read_volume(f, shape=(1, 2, 3))


def test_metadata_json_is_plain(tmp_path, ms_rich):
    """The HDF5 attributes are readable without microbat (documented layout)."""
    from microbat.io import save_microstructure

    f = save_microstructure(ms_rich, tmp_path / "ms.h5")
    with h5py.File(f, "r") as h:
        assert h.attrs["microbat_format"] == "microstructure"
        d = h["labels"]
        assert d.attrs["axis_order"] == "zyx"
        assert list(d.attrs["voxel_size_m"]) == list(ms_rich.voxel_size)
        assert json.loads(d.attrs["phases"])[2] == {"name": "nmc", "label": 2, "role": "active"}
        assert json.loads(d.attrs["metadata"])["unit"] == "µm"
        assert int(d.attrs["thickness_axis"]) == 2
        assert int(d.attrs["format_version"]) == 1
