"""Describe a file (``microbat info``) and convert between formats (``microbat convert``)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from microbat.core.errors import PhaseError
from microbat.core.microstructure import normalize_voxel_size
from microbat.core.phases import PhaseTable, default_phase_table
from microbat.core.results import Provenance, Result, Timer
from microbat.io._common import slabs
from microbat.io.readers import (
    _missing_voxel_size,
    _voxel_size_arg,
    is_labelled,
    label_counts,
    microstructure_from_volume,
    read_volume,
)
from microbat.io.volume import Volume

__all__ = ["ConversionResult", "VolumeInfo", "convert", "describe"]


@dataclass(frozen=True)
class VolumeInfo(Result):
    """What a file holds.

    Attributes
    ----------
    source : str
        The file (and dataset) read.
    format : str
        Container format (``"tiff"``, ``"hdf5"``, ...).
    shape : tuple of int
        Voxels per axis, axis order ``[z, y, x]``.
    dtype : str
        Voxel data type.
    voxel_size : tuple of float or None
        Voxel edge per axis in metres (argument, else file), ``None`` if unknown.
    extent : tuple of float or None
        Physical size per axis in metres.
    kind : {"labels", "grayscale"}
        Phase labels or intensities.
    phases : list of dict or None
        Phase table (``name``, ``label``, ``role``) of labelled data when known.
    volume_fractions : dict or None
        Volume fraction of each phase (labels with a phase table).
    label_fractions : dict or None
        Volume fraction of each label value (labels without a phase table).
    intensity : dict or None
        ``min``, ``max``, ``mean``, ``std`` of the finite values and
        ``n_nonfinite`` (grayscale data).
    thickness_axis : int or None
        Axis through the electrode thickness, when the file says.
    notes : tuple of str
        What to do next (missing voxel size, segmentation needed, ...).
    provenance : Provenance
        How this description was made.
    """

    source: str
    format: str
    shape: tuple[int, ...]
    dtype: str
    voxel_size: tuple[float, ...] | None
    extent: tuple[float, ...] | None
    kind: str
    phases: list[dict[str, Any]] | None
    volume_fractions: dict[str, float] | None
    label_fractions: dict[int, float] | None
    intensity: dict[str, float] | None
    thickness_axis: int | None
    notes: tuple[str, ...]
    provenance: Provenance


@dataclass(frozen=True)
class ConversionResult(Result):
    """Outcome of :func:`convert`.

    Attributes
    ----------
    source, destination : str
        Input and written output.
    format_in, format_out : str
        Container formats.
    kind : {"labels", "grayscale"}
        Written as a microstructure or as a grayscale volume.
    shape : tuple of int
        Voxels per axis.
    dtype : str
        Voxel data type written.
    voxel_size : tuple of float or None
        Voxel edge per axis in metres written with the data.
    phases : list of dict or None
        Phase table written (labels).
    provenance : Provenance
        How the conversion was made.
    """

    source: str
    destination: str
    format_in: str
    format_out: str
    kind: str
    shape: tuple[int, ...]
    dtype: str
    voxel_size: tuple[float, ...] | None
    phases: list[dict[str, Any]] | None
    provenance: Provenance


def intensity_stats(data: Any) -> dict[str, float]:
    """Min, max, mean, standard deviation of the finite values, streamed slab by slab.

    Parameters
    ----------
    data : array-like
        Any array :func:`read_volume` returns (lazy ones are read one slab at a time).

    Returns
    -------
    dict
        ``min``, ``max``, ``mean``, ``std`` (population) and ``n_nonfinite``.

    Notes
    -----
    Slab moments are merged with the pairwise update of Chan et al., so the
    variance stays accurate for large volumes (no sum-of-squares cancellation).
    """
    n = 0
    mean = 0.0
    m2 = 0.0
    lo, hi = math.inf, -math.inf
    bad = 0
    dt = np.dtype(data.dtype)
    for sl in slabs(tuple(data.shape), dt.itemsize):
        block = np.array(data[sl], dtype=np.float64).reshape(-1)
        if dt.kind == "f":
            ok = np.isfinite(block)
            nok = int(np.count_nonzero(ok))
            if nok < block.size:
                bad += block.size - nok
                block = block[ok]
            del ok
        if block.size == 0:
            continue
        lo, hi = min(lo, float(block.min())), max(hi, float(block.max()))
        nb = int(block.size)
        mb = float(block.mean())
        block -= mb  # in place: no second slab-sized temporary
        m2b = float(np.dot(block, block))
        delta = mb - mean
        tot = n + nb
        mean += delta * nb / tot
        m2 += m2b + delta * delta * n * nb / tot
        n = tot
    if n == 0:
        nan = float("nan")
        return {"min": nan, "max": nan, "mean": nan, "std": nan, "n_nonfinite": float(bad)}
    return {"min": lo, "max": hi, "mean": mean, "std": math.sqrt(m2 / n), "n_nonfinite": bad}


def _table(vol: Volume, phases: Any, counts: np.ndarray) -> PhaseTable | None:
    if phases is not None:
        return PhaseTable.parse(phases)
    if vol.metadata.get("phases"):
        return PhaseTable.from_list(vol.metadata["phases"])
    present = np.flatnonzero(counts)
    if present.size in (2, 3) and np.array_equal(present, np.arange(present.size)):
        return default_phase_table(int(present.size))
    return None


def describe(
    path: str | os.PathLike[str],
    *,
    phases: PhaseTable | str | Mapping[str, int] | None = None,
    voxel_size: float | Sequence[float] | str | None = None,
    dataset: str | None = None,
    **raw_options: Any,
) -> VolumeInfo:
    """Describe what a file holds without loading it whole.

    Parameters
    ----------
    path : path-like
        Any file :func:`~microbat.io.read_volume` reads.
    phases : PhaseTable, str or mapping, optional
        Phase table for labelled files without one (``"pore=0,cbd=1,active=2"``).
    voxel_size : float, sequence or str, optional
        Voxel edge in metres (or ``"0.4um"``), overriding the file.
    dataset : str, optional
        Dataset / array name in containers.
    **raw_options
        ``shape``, ``dtype``, ``byte_order``, ``offset`` for raw files.

    Returns
    -------
    VolumeInfo
        Shape, dtype, voxel size, and phases with volume fractions (labels) or
        intensity statistics (grayscale).

    Raises
    ------
    FileFormatError
        Unreadable file.
    PhaseError
        The data hold labels missing from the given phase table.

    Notes
    -----
    The file is opened lazily and read one slab (~64 MiB) at a time: memory use
    does not grow with the file. An integer image with more than 16 distinct
    values and no phase table is reported as grayscale.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> f = os.path.join(tempfile.mkdtemp(), "a.npy")
    >>> np.save(f, np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    >>> describe(f).kind
    'grayscale'
    """
    with Timer() as t:
        vol = read_volume(path, dataset=dataset, lazy=True, **raw_options)
        try:
            info = _describe(vol, phases, voxel_size)
        finally:
            vol.close()
    prov = Provenance(
        function="microbat.io.describe",
        parameters={
            "phases": None if phases is None else PhaseTable.parse(phases).to_spec(),
            "voxel_size": voxel_size if voxel_size is None else str(voxel_size),
            "dataset": dataset,
            **{k: str(v) for k, v in raw_options.items()},
        },
        wall_time_s=t.elapsed,
        inputs={"path": str(path)},
    )
    return VolumeInfo(**info, provenance=prov)


def _describe(vol: Volume, phases: Any, voxel_size: Any) -> dict[str, Any]:
    notes: list[str] = []
    vs = _voxel_size_arg(voxel_size) or vol.voxel_size
    if vs is not None:
        vs = normalize_voxel_size(vs, vol.ndim)
    else:
        notes.append(str(_missing_voxel_size(vol)).split(": ", 1)[-1])
    extent = None if vs is None else tuple(n * h for n, h in zip(vol.shape, vs, strict=True))
    counts = None
    if vol.dtype.kind in "biu":
        counts = label_counts(vol.data)
    labelled = is_labelled(vol, phases=phases, counts=counts)
    out: dict[str, Any] = {
        "source": vol.source,
        "format": vol.format,
        "shape": vol.shape,
        "dtype": str(vol.dtype),
        "voxel_size": vs,
        "extent": extent,
        "kind": "labels" if labelled else "grayscale",
        "phases": None,
        "volume_fractions": None,
        "label_fractions": None,
        "intensity": None,
        "thickness_axis": vol.metadata.get("thickness_axis"),
    }
    if labelled:
        if counts is None:
            counts = label_counts(vol.data)
        if counts is None:
            raise PhaseError(
                f"{vol.source}: labels must be integers in 0..65535; this file's values are not"
            )
        total = int(counts.sum())
        present = [int(v) for v in np.flatnonzero(counts)]
        table = _table(vol, phases, counts)
        if table is not None:
            unknown = sorted(set(present) - set(table.labels))
            if unknown:
                raise PhaseError(
                    f"{vol.source}: the image holds labels {unknown} that are not in the phase "
                    f"table {table.to_spec()}; add them (e.g. --phases "
                    f"{table.to_spec()},other={unknown[0]})"
                )
            out["phases"] = table.to_list()
            if phases is None and not vol.metadata.get("phases") and len(table) == 2:
                from microbat.core.phases import BINARY_CONVENTION

                notes.append(
                    f"binary image without a phase table: {BINARY_CONVENTION}; "
                    "--phases pore=0,active=1 for the opposite"
                )
            out["volume_fractions"] = {
                p.name: (int(counts[p.label]) if p.label < counts.size else 0) / total
                for p in table.values()
            }
        else:
            out["label_fractions"] = {v: int(counts[v]) / total for v in present}
            notes.append(
                f"labels {present} do not match a default phase table; name them with "
                "--phases, e.g. --phases " + ",".join(f"phase{v}={v}" for v in present[:3])
            )
    else:
        out["intensity"] = intensity_stats(vol.data)
        notes.append(
            "grayscale image: segment it into phases before computing properties "
            "(microbat.imaging.segment, or `microbat segment`)"
        )
    out["notes"] = tuple(notes)
    return out


def convert(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    phases: PhaseTable | str | Mapping[str, int] | None = None,
    voxel_size: float | Sequence[float] | str | None = None,
    thickness_axis: int | None = None,
    dataset: str | None = None,
    compression: bool = True,
    crop: Sequence[slice | tuple[int | None, int | None] | None] | None = None,
    **raw_options: Any,
) -> ConversionResult:
    """Convert any readable file into any writable format.

    Labelled data become a microstructure file (:func:`save_microstructure`,
    phase table and voxel size kept); grayscale data are written with
    :func:`save_volume`.

    Parameters
    ----------
    src : path-like
        Input file or folder (see :func:`~microbat.io.read_volume`).
    dst : path-like
        Output; its suffix picks the format (``.h5``, ``.zarr``, ``.tif``, ``.npy``,
        ``.npz``, ``.vti``). Written atomically.
    phases : PhaseTable, str or mapping, optional
        Phase table; also makes an integer image count as labels.
    voxel_size : float, sequence or str, optional
        Voxel edge in metres (``"0.4um"``); overrides the file's.
    thickness_axis : int, optional
        Axis through the electrode thickness (labels).
    dataset : str, optional
        Dataset / array name in containers.
    compression : bool, default True
        Lossless compression where the output format has it.
    crop : sequence of slice, (start, stop) or None, optional
        Write only this sub-volume, one bound per axis in array order (see
        :meth:`Volume.crop`); only that part of the input is read.
    **raw_options
        ``shape``, ``dtype``, ``byte_order``, ``offset`` for raw input.

    Returns
    -------
    ConversionResult
        What was written.

    Raises
    ------
    FileFormatError
        Unreadable input or unsupported output suffix.
    VoxelSizeError
        Labels without a voxel size (neither the file nor the argument gives it).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> np.save(os.path.join(d, "a.npy"), np.eye(4, dtype=np.uint8)[None].repeat(3, 0))
    >>> r = convert(os.path.join(d, "a.npy"), os.path.join(d, "a.h5"), voxel_size="1um")
    >>> r.kind, r.phases[1]["name"]
    ('labels', 'active')
    """
    from microbat.io.writers import save_microstructure, save_volume

    with Timer() as t:
        vol = read_volume(src, dataset=dataset, lazy=True, **raw_options)
        if crop is not None:
            try:
                whole = vol
                vol = vol.crop(crop)
            finally:
                whole.close()
        shape = vol.shape
        try:
            if phases is not None or is_labelled(vol):
                ms = microstructure_from_volume(
                    vol, phases=phases, voxel_size=voxel_size, thickness_axis=thickness_axis
                )
                out = save_microstructure(ms, dst, compression=compression)
                kind, vs, dtype = "labels", ms.voxel_size, str(ms.labels.dtype)
                table: list[dict[str, Any]] | None = ms.phases.to_list()
            else:
                vs = _voxel_size_arg(voxel_size) or vol.voxel_size
                out = save_volume(vol.data, dst, voxel_size=vs, compression=compression)
                kind, dtype, table = "grayscale", str(vol.dtype), None
                if vs is not None:
                    vs = normalize_voxel_size(vs, vol.ndim)
        finally:
            vol.close()
    from microbat.io._common import WRITE_SUFFIXES

    prov = Provenance(
        function="microbat.io.convert",
        parameters={
            "phases": None if phases is None else PhaseTable.parse(phases).to_spec(),
            "voxel_size": voxel_size if voxel_size is None else str(voxel_size),
            "thickness_axis": thickness_axis,
            "dataset": dataset,
            "compression": compression,
            "crop": vol.metadata.get("crop"),
            **{k: str(v) for k, v in raw_options.items()},
        },
        wall_time_s=t.elapsed,
        inputs={"path": str(src)},
    )
    return ConversionResult(
        source=vol.source,
        destination=str(out),
        format_in=vol.format,
        format_out=WRITE_SUFFIXES[Path(out).suffix.lower()],
        kind=kind,
        shape=shape,
        dtype=dtype,
        voxel_size=vs,
        phases=table,
        provenance=prov,
    )
