"""VTK XML ImageData export: structure, axis order, encodings (checked independently)."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
import zlib

import numpy as np
import pytest

from microbat import Microstructure
from microbat.core.errors import InvalidInputError, VoxelSizeError
from microbat.io import read_volume, read_vti, save_microstructure, write_vti


def _coded(shape) -> np.ndarray:
    """arr[z, y, x] = 10000 z + 100 y + x: every voxel tells where it is."""
    z, y, x = np.indices(shape)
    return (10000 * z + 100 * y + x).astype(np.int32)


def _split(path):
    raw = path.read_bytes()
    i = raw.index(b"<AppendedData")
    root = ET.fromstring(raw[:i] + b"</VTKFile>")
    start = raw.index(b"_", i) + 1
    return root, raw, start


def _decode_appended(raw: bytes, start: int, compressed: bool) -> bytes:
    """Independent decoder of one appended array with UInt64 headers."""
    if not compressed:
        (n,) = np.frombuffer(raw[start : start + 8], "<u8")
        return raw[start + 8 : start + 8 + int(n)]
    nblocks = int(np.frombuffer(raw[start : start + 8], "<u8")[0])
    words = np.frombuffer(raw[start : start + 8 * (3 + nblocks)], "<u8")
    usize, last = int(words[1]), int(words[2])
    pos = start + 8 * (3 + nblocks)
    out = b""
    for k, c in enumerate(words[3:]):
        block = zlib.decompress(raw[pos : pos + int(c)])
        expect = last if (k == nblocks - 1 and last) else usize
        assert len(block) == expect
        out += block
        pos += int(c)
    return out


@pytest.mark.parametrize("compress", [False, True])
def test_structure_and_x_fastest_order(tmp_path, compress):
    arr = _coded((3, 4, 5))
    out = write_vti(arr, tmp_path / "a.vti", voxel_size=(3e-6, 2e-6, 1e-6), compress=compress)
    root, raw, start = _split(out)
    assert root.get("type") == "ImageData"
    assert root.get("header_type") == "UInt64"
    assert root.get("byte_order") == "LittleEndian"
    assert (root.get("compressor") == "vtkZLibDataCompressor") is compress
    img = root.find("ImageData")
    assert img.get("WholeExtent") == "0 5 0 4 0 3"  # x: axis 2, y: axis 1, z: axis 0
    assert [float(v) for v in img.get("Spacing").split()] == [1e-6, 2e-6, 3e-6]
    da = img.find("Piece/CellData/DataArray")
    assert da.get("type") == "Int32"
    assert da.get("Name") == "labels"
    assert img.find("Piece/CellData").get("Scalars") == "labels"
    flat = np.frombuffer(_decode_appended(raw, start, compress), "<i4")
    nx, ny = 5, 4
    for i, j, k in [(0, 0, 0), (4, 0, 0), (0, 3, 0), (0, 0, 2), (3, 2, 1)]:
        # VTK cell (i, j, k) sits at flat index i + nx (j + ny k)
        assert flat[i + nx * (j + ny * k)] == arr[k, j, i]
    assert raw.rstrip().endswith(b"</VTKFile>")


def test_multi_block_compression_round_trip(tmp_path, rng):
    arr = rng.integers(0, 3, size=(20, 256, 256), dtype=np.uint8)  # 1.3 MB: two blocks
    out = write_vti(arr, tmp_path / "big.vti", voxel_size=1e-6)
    _, raw, start = _split(out)
    assert int(np.frombuffer(raw[start : start + 8], "<u8")[0]) == 2
    flat = np.frombuffer(_decode_appended(raw, start, True), np.uint8)
    np.testing.assert_array_equal(flat.reshape(arr.shape), arr)
    np.testing.assert_array_equal(read_vti(out).data, arr)
    assert out.stat().st_size < arr.nbytes / 2


@pytest.mark.parametrize("compress", [False, True])
def test_base64_is_valid_xml(tmp_path, compress):
    arr = _coded((2, 3, 4)).astype(np.float64)
    out = write_vti(arr, tmp_path / "b.vti", voxel_size=1e-6, encoding="base64", compress=compress)
    root = ET.parse(out).getroot()  # the whole file parses as XML
    da = root.find("ImageData/Piece/CellData/DataArray")
    assert da.get("format") == "binary"
    text = da.text.strip()
    head = base64.b64decode(text[:12])  # UInt64 header encoded on its own
    if not compress:
        assert int(np.frombuffer(head, "<u8")[0]) == arr.nbytes
        body = base64.b64decode(text[12:])
        np.testing.assert_array_equal(np.frombuffer(body, "<f8").reshape(arr.shape), arr)
    np.testing.assert_array_equal(read_vti(out).data, arr)


def test_2d_image(tmp_path):
    arr = _coded((1, 6, 7))[0].astype(np.uint16)
    out = write_vti(arr, tmp_path / "s.vti", voxel_size=(2e-6, 1e-6), compress=False)
    root, _, _ = _split(out)
    assert root.find("ImageData").get("WholeExtent") == "0 7 0 6 0 0"
    vol = read_vti(out)
    assert vol.shape == (6, 7)
    assert vol.voxel_size == (2e-6, 1e-6)
    np.testing.assert_array_equal(vol.data, arr)


def test_microstructure_kept_in_comment(tmp_path, ms_rich):
    out = save_microstructure(ms_rich, tmp_path / "m.vti")
    text = out.read_bytes()
    assert b"<!-- microbat {" in text
    head = text[: text.index(b"<AppendedData")]
    comment = head[head.index(b"<!--") + 4 : head.index(b"-->")]
    assert b"--" not in comment  # XML forbids it; the metadata string contains one
    vol = read_volume(out)
    assert vol.metadata["phases"][2]["name"] == "nmc"
    assert vol.voxel_size == ms_rich.voxel_size


def test_big_endian_and_bool_input(tmp_path):
    arr = _coded((2, 3, 4)).astype(">i4")
    out = write_vti(arr, tmp_path / "be.vti", voxel_size=1e-6, compress=False)
    _, raw, start = _split(out)
    flat = np.frombuffer(_decode_appended(raw, start, False), "<i4")
    np.testing.assert_array_equal(flat.reshape(arr.shape), arr)
    mask = np.zeros((2, 3, 4), bool)
    mask[1] = True
    back = read_vti(write_vti(mask, tmp_path / "m.vti", voxel_size=1e-6))
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back.data, mask)


def test_errors(tmp_path):
    with pytest.raises(VoxelSizeError, match="voxel size is missing"):
        write_vti(np.zeros((2, 2, 2), np.uint8), tmp_path / "x.vti")
    with pytest.raises(InvalidInputError, match="2D or 3D"):
        write_vti(np.zeros(4, np.uint8), tmp_path / "x.vti", voxel_size=1e-6)
    with pytest.raises(InvalidInputError, match="no VTK equivalent"):
        write_vti(np.zeros((2, 2, 2), np.complex64), tmp_path / "x.vti", voxel_size=1e-6)
    assert not (tmp_path / "x.vti").exists()


def test_microstructure_voxel_size_override(tmp_path):
    lab = np.zeros((2, 3, 4), np.uint8)
    lab[1] = 1
    ms = Microstructure(lab, voxel_size=1e-6)
    vol = read_vti(write_vti(ms, tmp_path / "o.vti", voxel_size=2e-6))
    assert vol.voxel_size == (2e-6,) * 3


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("encoding", ["raw", "base64"])
def test_readable_by_vtk(tmp_path, compress, encoding):
    vtk = pytest.importorskip("vtk")
    from vtk.util.numpy_support import vtk_to_numpy

    arr = _coded((3, 4, 5))
    out = write_vti(
        arr, tmp_path / "v.vti", voxel_size=(3e-6, 2e-6, 1e-6), compress=compress, encoding=encoding
    )
    reader = vtk.vtkXMLImageDataReader()
    reader.SetFileName(str(out))
    reader.Update()
    img = reader.GetOutput()
    assert img.GetDimensions() == (6, 5, 4)
    assert img.GetSpacing() == pytest.approx((1e-6, 2e-6, 3e-6))
    vals = vtk_to_numpy(img.GetCellData().GetArray("labels"))
    np.testing.assert_array_equal(vals.reshape(arr.shape), arr)


def test_readable_by_pyvista(tmp_path):
    pv = pytest.importorskip("pyvista")
    arr = _coded((3, 4, 5))
    out = write_vti(arr, tmp_path / "p.vti", voxel_size=1e-6)
    grid = pv.read(out)
    assert grid.n_cells == arr.size
    np.testing.assert_array_equal(np.asarray(grid.cell_data["labels"]).reshape(arr.shape), arr)


@pytest.mark.parametrize("mode", ["appended-raw", "appended-base64", "binary", "ascii"])
def test_reads_files_written_by_vtk(tmp_path, mode):
    vtk = pytest.importorskip("vtk")
    from vtk.util.numpy_support import numpy_to_vtk

    arr = _coded((3, 4, 5)).astype(np.float32)
    img = vtk.vtkImageData()
    img.SetDimensions(5, 4, 3)  # point data: one value per point
    img.SetSpacing(1e-6, 2e-6, 3e-6)
    vals = numpy_to_vtk(arr.ravel(), deep=True)
    vals.SetName("intensity")
    img.GetPointData().SetScalars(vals)
    w = vtk.vtkXMLImageDataWriter()
    w.SetFileName(str(tmp_path / "w.vti"))
    w.SetInputData(img)
    if mode.startswith("appended"):
        w.SetDataModeToAppended()
        w.SetEncodeAppendedData(mode.endswith("base64"))
    elif mode == "binary":
        w.SetDataModeToBinary()
    else:
        w.SetDataModeToAscii()
    assert w.Write() == 1
    vol = read_vti(tmp_path / "w.vti")
    assert vol.metadata["association"] == "PointData"
    assert vol.voxel_size == pytest.approx((3e-6, 2e-6, 1e-6))
    np.testing.assert_array_equal(vol.data, arr)
