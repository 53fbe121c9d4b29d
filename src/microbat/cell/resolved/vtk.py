"""VTK export of the fields of a resolved discharge (``.vti`` per snapshot + ``.pvd``).

Each snapshot becomes one VTK XML ImageData file holding every field (``c_e``,
``phi_e``, ``phi_s``, ``c_s``, ``stoichiometry``, ``reaction_current`` and the
per-voxel loss map ``loss_*``) as cell data on the image grid, written by
:func:`microbat.io.vtk.write_vti_fields`, the multi-array sibling of
:func:`microbat.io.write_vti` (same axis mapping: VTK x ↔ array axis 2, lengths in
metres, zlib-compressed appended raw data, microbat header in an XML comment). A
``.pvd`` collection lists the files with their times so ParaView shows one data set
with a time slider. :func:`microbat.io.read_vti` reads any field back
(``dataset="c_s"``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from xml.sax.saxutils import quoteattr

from microbat.core.atomic import atomic_write_text
from microbat.core.errors import InvalidInputError
from microbat.io.vtk import write_vti_fields

if TYPE_CHECKING:
    from microbat.cell.resolved.discharge import ResolvedDischargeResult

__all__ = ["save_snapshots_vtk", "write_vti_fields"]


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
