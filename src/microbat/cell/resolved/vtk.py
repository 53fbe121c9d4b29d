"""VTK export of the fields of a resolved discharge (``.vti`` per snapshot + ``.pvd``).

Each snapshot becomes one VTK XML ImageData file holding every field (``c_e``,
``phi_e``, ``phi_s``, ``c_s``, ``stoichiometry``, ``reaction_current`` and the
per-voxel loss map ``loss_*``) as cell data on the image grid, written with the
machinery of :func:`microbat.io.write_vti` (same axis mapping: VTK x ↔ array axis 2,
lengths in metres, zlib-compressed appended raw data, microbat header in an XML
comment). A ``.pvd`` collection lists the files with their times so ParaView shows
one data set with a time slider. :func:`microbat.io.read_vti` reads any field back
(``dataset="c_s"``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr

import numpy as np

from microbat.core.atomic import atomic_path, atomic_write_text
from microbat.core.errors import InvalidInputError
from microbat.core.microstructure import normalize_voxel_size

if TYPE_CHECKING:
    from microbat.cell.resolved.discharge import ResolvedDischargeResult

__all__ = ["save_snapshots_vtk", "write_vti_fields"]


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
    from microbat.io import _header
    from microbat.io.vtk import _VTK_TYPES, _byte_chunks, _comment, _write_compressed

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
    compressor = ' compressor="vtkZLibDataCompressor"' if compress else ""
    first = names[next(iter(arrays))]
    head = (
        '<?xml version="1.0"?>\n'
        f'<VTKFile type="ImageData" version="1.0" byte_order="LittleEndian" '
        f'header_type="UInt64"{compressor}>\n'
    ).encode() + _comment(hdr)
    head += (
        f'  <ImageData WholeExtent="{extent}" Origin="0 0 0" Spacing="{spacing}" '
        f'Direction="1 0 0 0 1 0 0 0 1">\n'
        f'    <Piece Extent="{extent}">\n'
        f'      <CellData Scalars="{first}">\n'
    ).encode()
    # the appended offsets depend on the compressed sizes: write the blocks to memory
    # first (one field at a time), then the XML with the final offsets
    import io

    blobs: list[bytes] = []
    for a in arrays.values():
        buf = io.BytesIO()
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


def save_snapshots_vtk(
    result: ResolvedDischargeResult, path: str | os.PathLike[str], *, collection: bool = True
) -> list[Path]:
    """Write the snapshots of a resolved discharge as ``.vti`` files and a ``.pvd``.

    See :meth:`~microbat.cell.resolved.ResolvedDischargeResult.save_vtk`.
    """
    p = Path(path)
    if p.suffix == ".vti":
        folder, stem = p.parent, p.stem
    else:
        folder, stem = p, "fields"
    folder.mkdir(parents=True, exist_ok=True)
    if not result.snapshots:
        raise InvalidInputError(
            "the result holds no snapshots (the run stopped before its first step); "
            "nothing to export"
        )
    vs = result.provenance.inputs.get("voxel_size")
    out: list[Path] = []
    entries = []
    for i, snap in enumerate(result.snapshots):
        f = folder / f"{stem}_t{i:03d}.vti"
        meta = {
            "time_s": snap.time_s,
            "partial": result.partial,
            "status": result.status,
            "c_rate": result.c_rate,
            "current_A": result.current_A,
            "outside_W": dict(snap.outside_W),
            "units": "c_e, c_s: mol/m3; phi_e, phi_s: V; reaction_current: A/m3; loss_*: W/m3",
        }
        write_vti_fields(snap.fields, f, voxel_size=vs, metadata=meta)
        out.append(f)
        entries.append(
            f'    <DataSet timestep="{snap.time_s!r}" group="" part="0" file={quoteattr(f.name)}/>'
        )
    if collection:
        note = f"partial result: {result.status}" if result.partial else result.status
        note = note.replace("--", "- -")
        pvd = folder / f"{stem}.pvd"
        text = (
            '<?xml version="1.0"?>\n'
            f"<!-- microbat resolved discharge at {result.c_rate:g}C; {note} -->\n"
            '<VTKFile type="Collection" version="0.1" byte_order="LittleEndian">\n'
            "  <Collection>\n" + "\n".join(entries) + "\n  </Collection>\n</VTKFile>\n"
        )
        atomic_write_text(pvd, text)
        out.append(pvd)
    return out
