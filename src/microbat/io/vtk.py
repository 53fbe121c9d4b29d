"""VTK XML ImageData (``.vti``) export for ParaView, and a reader for such files.

Axis mapping
------------
microbat arrays are indexed ``[i0, i1, i2] = [z, y, x]`` in C order, so the last
index runs fastest in memory. VTK image data store x fastest. The bytes of a
C-ordered microbat array are therefore already in VTK order when

* VTK ``x`` ↔ array axis 2, VTK ``y`` ↔ axis 1, VTK ``z`` ↔ axis 0,
* ``WholeExtent = "0 n2 0 n1 0 n0"`` and ``Spacing = "h2 h1 h0"``,

and no transpose is needed. A 2D ``[row, column]`` array becomes a one-cell-thick
x-y image. Voxels are written as *cell* data (one value per voxel cube), so the
image spans exactly the physical extent of the microstructure. Lengths are in
metres.
"""

from __future__ import annotations

import base64
import os
import re
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterator, Mapping, Sequence
from io import BytesIO
from pathlib import Path
from typing import Any, Literal

import numpy as np

import microbat.io._header as _header
from microbat.core.atomic import atomic_path
from microbat.core.errors import FileFormatError, InvalidInputError
from microbat.core.microstructure import Microstructure, normalize_voxel_size
from microbat.io._common import file_size, native, require_exists, slabs
from microbat.io.volume import Volume

__all__ = ["read_vti", "write_vti"]

_VTK_TYPES = {
    "i1": "Int8",
    "u1": "UInt8",
    "i2": "Int16",
    "u2": "UInt16",
    "i4": "Int32",
    "u4": "UInt32",
    "i8": "Int64",
    "u8": "UInt64",
    "f4": "Float32",
    "f8": "Float64",
}
_NP_TYPES = {v: k for k, v in _VTK_TYPES.items()} | {"Char": "i1", "UChar": "u1"}
_BLOCK = 2**20  # uncompressed bytes per zlib block
_COMMENT = re.compile(rb"<!--\s*microbat\s+(.*?)\s*-->", re.DOTALL)


def _byte_chunks(arr: Any) -> Iterator[bytes]:
    """The array's bytes in C order (little-endian), one slab at a time."""
    for sl in slabs(arr.shape, arr.dtype.itemsize):
        block = np.asarray(arr[sl])
        yield np.ascontiguousarray(block, dtype=block.dtype.newbyteorder("<")).tobytes()


def _blocks(chunks: Iterator[bytes], size: int) -> Iterator[bytes]:
    """Regroup a byte stream into blocks of exactly ``size`` bytes (the last may be short)."""
    buf = bytearray()
    for c in chunks:
        buf += c
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)


def _comment(header: dict[str, Any]) -> bytes:
    # "--" may not appear inside an XML comment; it can only occur inside JSON strings,
    # where "\u002d" is an equivalent escape for "-".
    text = _header.dumps(header).replace("--", "-\\u002d")
    return f"  <!-- microbat {text} -->\n".encode("ascii", errors="backslashreplace")


def write_vti(
    ms_or_array: Microstructure | Volume | np.ndarray,
    path: str | os.PathLike[str],
    *,
    voxel_size: float | Sequence[float] | None = None,
    name: str = "labels",
    compress: bool = True,
    encoding: Literal["raw", "base64"] = "raw",
) -> Path:
    """Write a volume as VTK XML ImageData (``.vti``) that ParaView opens.

    Parameters
    ----------
    ms_or_array : Microstructure, Volume or ndarray, shape (n0, n1, n2) or (n0, n1)
        The voxels in microbat axis order ``[z, y, x]``.
    path : path-like
        Output file; written atomically.
    voxel_size : float or sequence of float, optional
        Voxel edge in metres (one, or one per array axis). Required for a bare
        array; overrides the voxel size of a microstructure or volume.
    name : str, default "labels"
        Name of the VTK data array (what ParaView lists under "Coloring").
    compress : bool, default True
        zlib-compress the data in blocks of 1 MiB (``vtkZLibDataCompressor``).
    encoding : {"raw", "base64"}, default "raw"
        ``"raw"`` appends the binary data after the XML (smallest, fastest, streamed
        slab by slab); ``"base64"`` stores it inline as base64 text so the file is
        valid XML (the whole array is then held in memory once).

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    VoxelSizeError
        No voxel size for a bare array, or an invalid one.
    InvalidInputError
        The array is not 2D or 3D, or its dtype has no VTK equivalent.

    Notes
    -----
    The file is version 1.0 with ``header_type="UInt64"`` and little-endian data.
    Data are written as ``CellData`` with ``WholeExtent="0 n2 0 n1 0 n0"`` and
    ``Spacing="h2 h1 h0"`` (see the module docstring for the axis mapping). A
    microstructure's phase table, thickness axis and metadata are kept in an XML
    comment (``<!-- microbat {...} -->``) that VTK ignores and :func:`read_vti`
    reads back.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> lab = np.zeros((4, 5, 6), np.uint8); lab[:, :, 3:] = 1
    >>> out = write_vti(lab, os.path.join(tempfile.mkdtemp(), "a.vti"), voxel_size=1e-6)
    >>> read_vti(out).data.shape
    (4, 5, 6)
    """
    if isinstance(ms_or_array, Microstructure):
        arr: Any = ms_or_array.labels
        hdr = _header.microstructure_header(ms_or_array)
        vs = ms_or_array.voxel_size if voxel_size is None else voxel_size
    elif isinstance(ms_or_array, Volume):
        arr = ms_or_array.data
        vs = ms_or_array.voxel_size if voxel_size is None else voxel_size
        hdr = _header.volume_header(len(arr.shape), None)
    else:
        arr = ms_or_array if hasattr(ms_or_array, "dtype") else np.asarray(ms_or_array)
        vs = voxel_size
        hdr = _header.volume_header(len(arr.shape), None)
    ndim = len(arr.shape)
    if ndim not in (2, 3):
        raise InvalidInputError(
            f"a .vti image must be 2D or 3D, got shape {tuple(arr.shape)} ({ndim}D)"
        )
    if encoding not in ("raw", "base64"):
        raise InvalidInputError(f"encoding={encoding!r}; use 'raw' or 'base64'")
    vsz = normalize_voxel_size(vs, ndim)
    hdr["voxel_size_m"] = list(vsz)
    dt = np.dtype(arr.dtype)
    if dt == np.bool_:
        arr, dt = np.asarray(arr).view(np.uint8), np.dtype(np.uint8)
    code = f"{dt.kind}{dt.itemsize}"
    if code not in _VTK_TYPES:
        raise InvalidInputError(
            f"dtype {dt} has no VTK equivalent; convert to an integer or float type first"
        )
    if ndim == 3:
        n0, n1, n2 = (int(n) for n in arr.shape)
        h0, h1, h2 = vsz
        extent = f"0 {n2} 0 {n1} 0 {n0}"
    else:
        n1, n2 = (int(n) for n in arr.shape)
        h1, h2 = vsz
        h0 = h2
        extent = f"0 {n2} 0 {n1} 0 0"
    spacing = " ".join(repr(float(h)) for h in (h2, h1, h0))
    safe = re.sub(r"[^A-Za-z0-9_. -]", "_", name) or "labels"
    nbytes = int(np.prod(arr.shape, dtype=np.int64)) * dt.itemsize
    rng = ""
    if dt.kind in "iu" and isinstance(arr, np.ndarray) and 0 < nbytes <= 2**31:
        rng = f' RangeMin="{int(arr.min())}" RangeMax="{int(arr.max())}"'
    fmt = "appended" if encoding == "raw" else "binary"
    head = _vti_head(hdr, extent, spacing, compress, safe)
    head += (
        f'        <DataArray type="{_VTK_TYPES[code]}" Name="{safe}" NumberOfComponents="1" '
        f'format="{fmt}"{rng}'
    ).encode()
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        if encoding == "raw":
            fh.write(head + b' offset="0"/>\n')
            fh.write(b"      </CellData>\n    </Piece>\n  </ImageData>\n")
            fh.write(b'  <AppendedData encoding="raw">\n   _')
            if compress:
                _write_compressed(fh, _byte_chunks(arr), nbytes)
            else:
                fh.write(np.uint64(nbytes).astype("<u8").tobytes())
                for c in _byte_chunks(arr):
                    fh.write(c)
            fh.write(b"\n  </AppendedData>\n</VTKFile>\n")
        else:
            fh.write(head + b">\n          ")
            data = b"".join(_byte_chunks(arr))
            if compress:
                blocks = [zlib.compress(b, 6) for b in _blocks(iter([data]), _BLOCK)]
                hdr_b = _zlib_header(blocks, nbytes)
                payload = b"".join(blocks)
            else:
                hdr_b = np.uint64(nbytes).astype("<u8").tobytes()
                payload = data
            fh.write(base64.b64encode(hdr_b) + base64.b64encode(payload))
            fh.write(b"\n        </DataArray>\n")
            fh.write(b"      </CellData>\n    </Piece>\n  </ImageData>\n</VTKFile>\n")
    return Path(path)


def _vti_head(
    hdr: dict[str, Any], extent: str, spacing: str, compress: bool, scalars: str
) -> bytes:
    """XML of an ImageData file up to its open ``CellData`` element."""
    compressor = ' compressor="vtkZLibDataCompressor"' if compress else ""
    head = (
        '<?xml version="1.0"?>\n'
        f'<VTKFile type="ImageData" version="1.0" byte_order="LittleEndian" '
        f'header_type="UInt64"{compressor}>\n'
    ).encode() + _comment(hdr)
    return (
        head
        + (
            f'  <ImageData WholeExtent="{extent}" Origin="0 0 0" Spacing="{spacing}" '
            f'Direction="1 0 0 0 1 0 0 0 1">\n'
            f'    <Piece Extent="{extent}">\n'
            f'      <CellData Scalars="{scalars}">\n'
        ).encode()
    )


def write_vti_fields(
    fields: Mapping[str, np.ndarray],
    path: str | os.PathLike[str],
    *,
    voxel_size: float | Sequence[float],
    metadata: Mapping[str, Any] | None = None,
    compress: bool = True,
) -> Path:
    """Write several 3D arrays of one grid as cell data of one ``.vti`` file.

    Parameters
    ----------
    fields : mapping of str to ndarray, each shape (n0, n1, n2)
        Named arrays in microbat axis order ``[z, y, x]`` (float32/float64/integer).
    path : path-like
        Output file; written atomically.
    voxel_size : float or sequence of float
        Voxel edge in metres (one, or one per array axis).
    metadata : mapping, optional
        Stored in the microbat header (``metadata`` key) that
        :func:`microbat.io.read_vti` returns in ``Volume.metadata``.
    compress : bool, default True
        zlib-compress the data (``vtkZLibDataCompressor``).

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    InvalidInputError
        No fields, arrays of different shapes or not 3D, or a dtype without a VTK
        equivalent.
    """
    if not fields:
        raise InvalidInputError("write_vti_fields needs at least one field")
    arrays = {str(k): np.asarray(v) for k, v in fields.items()}
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 3:
        raise InvalidInputError(
            f"all fields must share one 3D shape, got {sorted(map(str, shapes))}"
        )
    n0, n1, n2 = next(iter(shapes))
    vs = normalize_voxel_size(voxel_size, 3)
    hdr = _header.volume_header(3, vs)
    if metadata:
        hdr["metadata"] = dict(metadata)
    extent = f"0 {n2} 0 {n1} 0 {n0}"
    spacing = " ".join(repr(float(h)) for h in (vs[2], vs[1], vs[0]))
    names = {}
    for name in arrays:
        safe = re.sub(r"[^A-Za-z0-9_. -]", "_", name) or "field"
        if safe in names.values():
            raise InvalidInputError(f"field names collide after sanitising: {name!r}")
        names[name] = safe
    codes = {}
    for name, a in arrays.items():
        code = f"{a.dtype.kind}{a.dtype.itemsize}"
        if code not in _VTK_TYPES:
            raise InvalidInputError(f"field {name!r}: dtype {a.dtype} has no VTK equivalent")
        codes[name] = code
    first = names[next(iter(arrays))]
    head = _vti_head(hdr, extent, spacing, compress, first)
    # the appended offsets depend on the compressed sizes: write the blocks to memory
    # first (one field at a time), then the XML with the final offsets
    blobs: list[bytes] = []
    for a in arrays.values():
        buf = BytesIO()
        nbytes = a.size * a.dtype.itemsize
        if compress:
            _write_compressed(buf, _byte_chunks(a), nbytes)
        else:
            buf.write(np.uint64(nbytes).astype("<u8").tobytes())
            for c in _byte_chunks(a):
                buf.write(c)
        blobs.append(buf.getvalue())
    offset = 0
    for name, blob in zip(arrays, blobs, strict=True):
        head += (
            f'        <DataArray type="{_VTK_TYPES[codes[name]]}" Name="{names[name]}" '
            f'NumberOfComponents="1" format="appended" offset="{offset}"/>\n'
        ).encode()
        offset += len(blob)
    head += b"      </CellData>\n    </Piece>\n  </ImageData>\n"
    head += b'  <AppendedData encoding="raw">\n   _'
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(head)
        for blob in blobs:
            fh.write(blob)
        fh.write(b"\n  </AppendedData>\n</VTKFile>\n")
    return Path(path)


def _zlib_header(blocks: list[bytes], nbytes: int) -> bytes:
    last = nbytes % _BLOCK if len(blocks) else 0
    words = [len(blocks), _BLOCK, last, *(len(b) for b in blocks)]
    return np.asarray(words, dtype="<u8").tobytes()


def _write_compressed(fh: Any, chunks: Iterator[bytes], nbytes: int) -> None:
    """Write the zlib block header and blocks, filling the header in afterwards."""
    nblocks = -(-nbytes // _BLOCK) if nbytes else 0
    start = fh.tell()
    fh.write(b"\0" * 8 * (3 + nblocks))
    sizes: list[int] = []
    for block in _blocks(chunks, _BLOCK):
        comp = zlib.compress(block, 6)
        sizes.append(len(comp))
        fh.write(comp)
    end = fh.tell()
    fh.seek(start)
    last = nbytes % _BLOCK
    fh.write(np.asarray([nblocks, _BLOCK, last, *sizes], dtype="<u8").tobytes())
    fh.seek(end)


# ------------------------------------------------------------------ reading


def read_vti(
    path: str | os.PathLike[str], *, dataset: str | None = None, lazy: bool = False
) -> Volume:
    """Read a VTK XML ImageData file into microbat axis order ``[z, y, x]``.

    Handles what VTK and microbat write: ``appended`` (raw or base64), inline
    ``binary`` (base64) and ``ascii`` arrays; ``UInt32``/``UInt64`` headers;
    zlib compression; either byte order; point or cell data.

    Parameters
    ----------
    path : path-like
        The ``.vti`` file.
    dataset : str, optional
        Name of the data array to read; default the ``Scalars`` array, else the
        first one.
    lazy : bool, default False
        Memory-map the data when they are appended raw and uncompressed.

    Returns
    -------
    Volume
        Data shaped ``(nz, ny, nx)`` (2D ``(ny, nx)`` when one cell thick) and the
        voxel size ``(hz, hy, hx)`` from ``Spacing``.

    Raises
    ------
    FileFormatError
        Missing, truncated or malformed file, or no array of that name.
    """
    p = Path(path)
    require_exists(p)
    with open(p, "rb") as fh:
        raw = fh.read(1 << 16)
        while b"<AppendedData" not in raw and b"</VTKFile>" not in raw:
            more = fh.read(1 << 20)
            if not more:
                break
            raw += more
    try:
        return _parse_vti(p, raw, dataset, lazy)
    except FileFormatError:
        raise
    except (ET.ParseError, ValueError, KeyError, IndexError, zlib.error, TypeError) as exc:
        raise FileFormatError(f"{p}: not a readable VTK ImageData file ({exc})") from None


def _parse_vti(p: Path, raw: bytes, dataset: str | None, lazy: bool) -> Volume:
    idx = raw.find(b"<AppendedData")
    appended_start = None
    if idx >= 0:
        us = raw.find(b"_", raw.find(b">", idx))
        if us < 0:
            raise FileFormatError(f"{p}: the AppendedData section has no '_' marker")
        appended_start = us + 1
        xml_text = raw[:idx] + b"</VTKFile>"
        appended_encoding = re.search(rb'encoding="(\w+)"', raw[idx : us + 1])
        enc = appended_encoding.group(1).decode() if appended_encoding else "raw"
    else:
        with open(p, "rb") as fh:
            xml_text = fh.read()
        enc = "raw"
    root = ET.fromstring(xml_text)
    if root.tag != "VTKFile" or root.get("type") != "ImageData":
        raise FileFormatError(f"{p}: not VTK ImageData (type={root.get('type')!r})")
    order = "<" if root.get("byte_order", "LittleEndian") == "LittleEndian" else ">"
    htype = np.dtype(order + ("u8" if root.get("header_type") == "UInt64" else "u4"))
    compressor = root.get("compressor")
    if compressor not in (None, "", "vtkZLibDataCompressor"):
        raise FileFormatError(f"{p}: compressor {compressor} is not supported (only zlib)")
    image = root.find("ImageData")
    if image is None:
        raise FileFormatError(f"{p}: no ImageData element")
    ext = [int(v) for v in image.get("WholeExtent", "").split()]
    spacing = [float(v) for v in image.get("Spacing", "1 1 1").split()]
    if len(ext) != 6 or len(spacing) != 3:
        raise FileFormatError(f"{p}: malformed WholeExtent or Spacing")
    arrays: list[tuple[str, ET.Element]] = []
    for assoc in ("CellData", "PointData"):
        for el in image.iter(assoc):
            for da in el.iter("DataArray"):
                arrays.append((assoc, da))
    if not arrays:
        raise FileFormatError(f"{p}: the image holds no data array")
    names = [da.get("Name", "") for _, da in arrays]
    if dataset is not None:
        if dataset not in names:
            raise FileFormatError(
                f"{p}: no data array {dataset!r}; arrays: {', '.join(names)}; pass one as "
                "dataset= (--dataset)"
            )
        assoc, da = arrays[names.index(dataset)]
    else:
        pick = 0
        for i, (a, d) in enumerate(arrays):
            parent_scalars = [el.get("Scalars") for el in image.iter(a)]
            if d.get("Name") in parent_scalars:
                pick = i
                break
        assoc, da = arrays[pick]
    if int(da.get("NumberOfComponents", "1")) != 1:
        raise FileFormatError(f"{p}: array {da.get('Name')!r} is not scalar")
    ncomp = 1
    counts = [ext[1] - ext[0], ext[3] - ext[2], ext[5] - ext[4]]
    if assoc == "CellData":
        nx, ny, nz = (max(c, 1) for c in counts)
    else:
        nx, ny, nz = (c + 1 for c in counts)
    thin = counts[2] == 0
    shape = (ny, nx) if thin else (nz, ny, nx)
    vtype = da.get("type", "")
    if vtype not in _NP_TYPES:
        raise FileFormatError(f"{p}: data type {vtype!r} is not supported")
    dt = np.dtype(order + _NP_TYPES[vtype])
    count = int(np.prod(shape)) * ncomp
    fmt = da.get("format", "ascii")
    if fmt == "ascii":
        data: Any = np.array((da.text or "").split(), dtype=dt.newbyteorder("="))
        if data.size != count:
            raise FileFormatError(f"{p}: expected {count} values, found {data.size}")
    elif fmt == "binary":
        data = _decode_b64(p, (da.text or "").strip().encode(), htype, compressor, dt, count)
    elif fmt == "appended":
        if appended_start is None:
            raise FileFormatError(f"{p}: the array is 'appended' but there is no AppendedData")
        off = appended_start + int(da.get("offset", "0"))
        data = _read_appended(p, off, enc, htype, compressor, dt, count, lazy, shape)
    else:
        raise FileFormatError(f"{p}: unknown DataArray format {fmt!r}")
    if not isinstance(data, np.memmap):
        data = native(np.asarray(data).reshape(shape))
    vs_x, vs_y, vs_z = spacing
    voxel: tuple[float, ...] = (vs_y, vs_x) if thin else (vs_z, vs_y, vs_x)
    meta: dict[str, Any] = {"dataset": da.get("Name", ""), "association": assoc}
    origin = image.get("Origin")
    if origin:
        meta["origin_m"] = [float(v) for v in origin.split()]
    m = _COMMENT.search(raw if idx >= 0 else xml_text)
    if m:
        hdr = _header.loads(m.group(1).decode("ascii", errors="replace"), p)
        if hdr is not None:
            vs = hdr.pop("voxel_size_m", None)
            voxel = tuple(vs) if vs else voxel
            meta.update(hdr)
    return Volume(data, voxel, str(p), meta, "vti")


def _decode_b64(
    p: Path, text: bytes, htype: np.dtype, compressor: str | None, dt: np.dtype, count: int
) -> np.ndarray:
    text = b"".join(text.split())
    hsize = htype.itemsize
    nhead_chars = 4 * -(-hsize // 3)
    head = base64.b64decode(text[:nhead_chars])
    separate = b"=" in text[:nhead_chars]
    if compressor:
        nblocks = int(np.frombuffer(head[:hsize], htype)[0])
        full = 3 + nblocks
        nchars = 4 * -(-full * hsize // 3)
        words = np.frombuffer(base64.b64decode(text[:nchars])[: full * hsize], htype)
        body = base64.b64decode(text[nchars:])
        return _inflate(p, words, body, dt, count)
    if separate:
        body = base64.b64decode(text[nhead_chars:])
    else:
        body = base64.b64decode(text)[hsize:]
    return _frombuffer(p, body, dt, count)


def _read_appended(
    p: Path,
    off: int,
    enc: str,
    htype: np.dtype,
    compressor: str | None,
    dt: np.dtype,
    count: int,
    lazy: bool,
    shape: tuple[int, ...],
) -> Any:
    hsize = htype.itemsize
    size = file_size(p)
    with open(p, "rb") as fh:
        fh.seek(off)
        if enc == "base64":
            tail = fh.read()
            end = tail.find(b"<")
            return _decode_b64(p, tail[:end] if end >= 0 else tail, htype, compressor, dt, count)
        if compressor:
            first = fh.read(hsize)
            if len(first) < hsize:
                raise FileFormatError(f"{p}: the file is truncated (no data header)")
            nblocks = int(np.frombuffer(first, htype)[0])
            rest = fh.read(hsize * (2 + nblocks))
            words = np.frombuffer(first + rest, htype)
            if words.size != 3 + nblocks:
                raise FileFormatError(f"{p}: the file is truncated (incomplete block header)")
            body = fh.read(int(words[3:].sum()))
            return _inflate(p, words, body, dt, count)
        head = fh.read(hsize)
        if len(head) < hsize:
            raise FileFormatError(f"{p}: the file is truncated (no data header)")
        nbytes = int(np.frombuffer(head, htype)[0])
        start = off + hsize
        if nbytes != count * dt.itemsize or start + nbytes > size:
            raise FileFormatError(
                f"{p}: the file is truncated or inconsistent: expected {count * dt.itemsize} "
                f"bytes of data from byte {start}, the header says {nbytes} and the file has "
                f"{size - start}"
            )
        if lazy:
            return np.memmap(p, dtype=dt, mode="r", offset=start, shape=shape)
        return _frombuffer(p, fh.read(nbytes), dt, count)


def _inflate(p: Path, words: np.ndarray, body: bytes, dt: np.dtype, count: int) -> np.ndarray:
    nblocks = int(words[0])
    sizes = [int(s) for s in words[3 : 3 + nblocks]]
    if sum(sizes) > len(body):
        raise FileFormatError(
            f"{p}: the file is truncated: the compressed blocks need {sum(sizes)} bytes, "
            f"{len(body)} are present"
        )
    out = bytearray()
    pos = 0
    for s in sizes:
        out += zlib.decompress(body[pos : pos + s])
        pos += s
    return _frombuffer(p, bytes(out), dt, count)


def _frombuffer(p: Path, body: bytes, dt: np.dtype, count: int) -> np.ndarray:
    if len(body) < count * dt.itemsize:
        raise FileFormatError(
            f"{p}: the file is truncated: {count * dt.itemsize} bytes of data expected, "
            f"{len(body)} found"
        )
    return np.frombuffer(body, dtype=dt, count=count).copy()
