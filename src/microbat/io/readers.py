"""Reading volumes and microstructures from any supported file.

Formats are chosen by suffix (case-insensitive) or by being a folder:

============================  ==========================================  ==========
suffix                        format                                      lazy data
============================  ==========================================  ==========
``.tif`` ``.tiff``            multi-page TIFF (ImageJ spacing/unit,       memmap or
                              resolution tags)                            Zarr store
folder of ``.tif`` files      2D slices in natural order (s2 < s10)       Zarr store
``.h5`` ``.hdf5`` ``.nxs``    HDF5 dataset (``dataset=`` path)            h5py
``.zarr`` folder              Zarr array or group member (``dataset=``)   Zarr
``.raw`` ``.bin`` ``.vol``    headerless binary (``shape``, ``dtype``,    memmap
                              ``byte_order``, ``offset``)
``.npy``                      NumPy array                                 memmap
``.npz``                      NumPy archive member (``dataset=``)         memmap if
                                                                          stored
``.vti``                      VTK XML ImageData                           memmap if
                                                                          raw
============================  ==========================================  ==========

Every reader returns arrays in microbat's axis order ``[z, y, x]`` (slice, row,
column), the order tifffile returns a stack in; HDF5 and Zarr arrays are taken in
their stored order, which is also the order microbat writes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import microbat.io._header as _header
from microbat.core.errors import FileFormatError, InvalidInputError, VoxelSizeError
from microbat.core.microstructure import UNKNOWN_VOXEL_SIZE, Microstructure
from microbat.core.phases import PhaseTable, default_phase_table
from microbat.core.units import format_length, parse_voxel_size
from microbat.io._common import READ_SUFFIXES, require_exists, slabs, suffix_of
from microbat.io.volume import Volume

__all__ = ["load_microstructure", "read_volume"]

# An integer image with more distinct values than this (and no phase table) is
# taken for a grayscale image rather than a labelled one.
MAX_AUTO_LABELS = 16

_RAW_KEYS = ("shape", "dtype", "byte_order", "offset")


def detect_format(path: str | os.PathLike[str]) -> str:
    """The reader format of ``path`` (``"tiff"``, ``"hdf5"``, ...).

    Raises
    ------
    FileFormatError
        The path does not exist or its suffix is not a supported format.
    """
    p = Path(path)
    require_exists(p)
    suffix = suffix_of(p)
    if p.is_dir():
        if suffix == ".zarr" or any((p / m).exists() for m in (".zarray", ".zgroup", "zarr.json")):
            return "zarr"
        return "tiff-folder"
    if suffix in READ_SUFFIXES and READ_SUFFIXES[suffix] != "zarr":
        return READ_SUFFIXES[suffix]
    raise FileFormatError(
        f"{p}: unknown file type {suffix or '(no suffix)'!r}; microbat reads "
        f"{', '.join(sorted(set(READ_SUFFIXES) - {'.zarr'}))}, .zarr folders and folders of "
        "TIFF slices (for a headerless binary file use a .raw suffix with shape and dtype)"
    )


def read_volume(
    path: str | os.PathLike[str],
    *,
    dataset: str | None = None,
    shape: Sequence[int] | str | None = None,
    dtype: Any = None,
    byte_order: str = "little",
    offset: int = 0,
    lazy: bool = False,
) -> Volume:
    """Read an image volume from a file or folder, in axis order ``[z, y, x]``.

    Parameters
    ----------
    path : path-like
        A file (``.tif``, ``.h5``, ``.nxs``, ``.raw``, ``.npy``, ``.npz``, ``.vti``,
        ...), a ``.zarr`` folder or a folder of 2D TIFF slices.
    dataset : str, optional
        HDF5 dataset path, Zarr group member, ``.npz`` key or VTK array name.
        Default: microbat's own array, else the only 3D (then 2D) array.
    shape : sequence of int or str, optional
        Raw files only: array shape in axis order ``(n_slices, n_rows, n_columns)``
        with the last axis fastest on disk (``"100,200,300"`` also accepted).
    dtype : str or dtype, optional
        Raw files only: voxel type (``"uint8"``, ``"uint16"``, ``"float32"``).
    byte_order : {"little", "big", "native"}, default "little"
        Raw files only.
    offset : int, default 0
        Raw files only: bytes of header to skip.
    lazy : bool, default False
        Do not load the voxels: :attr:`Volume.data` is a memory map or a
        chunk-backed array, so a file larger than memory can be opened and sliced.

    Returns
    -------
    Volume
        The data, the voxel size in metres (``None`` when the file does not say)
        and what else the file said.

    Raises
    ------
    FileFormatError
        Missing file, unknown suffix, truncated or corrupt file, raw size mismatch,
        unknown or ambiguous dataset.
    InvalidInputError
        Raw options missing, malformed, or given for a format that is not raw.

    Notes
    -----
    A lazily read HDF5 file, or compressed TIFF, stays open until
    :meth:`Volume.close`. Reading is O(file size) eagerly and O(metadata) lazily.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> f = os.path.join(tempfile.mkdtemp(), "a.npy")
    >>> np.save(f, np.zeros((2, 3, 4), np.uint8))
    >>> read_volume(f, lazy=True).data.shape
    (2, 3, 4)
    """
    p = Path(path)
    fmt = detect_format(p)
    if fmt != "raw" and (shape is not None or dtype is not None or offset):
        raise InvalidInputError(
            f"{p}: shape, dtype and offset describe raw binary files; a {fmt} file carries "
            "its own, leave them out"
        )
    if fmt == "tiff":
        from microbat.io._tiff import read_tiff

        return read_tiff(p, lazy=lazy)
    if fmt == "tiff-folder":
        from microbat.io._tiff import read_tiff_folder

        return read_tiff_folder(p, lazy=lazy)
    if fmt == "hdf5":
        from microbat.io._hdf5 import read_hdf5

        return read_hdf5(p, dataset=dataset, lazy=lazy)
    if fmt == "zarr":
        from microbat.io._zarr import read_zarr

        return read_zarr(p, dataset=dataset, lazy=lazy)
    if fmt == "raw":
        from microbat.io._raw import read_raw

        return read_raw(
            p, shape=shape, dtype=dtype, byte_order=byte_order, offset=offset, lazy=lazy
        )
    if fmt == "npy":
        from microbat.io._raw import read_npy

        if dataset is not None:
            raise InvalidInputError(f"{p}: a .npy file holds one array; leave dataset= out")
        return read_npy(p, lazy=lazy)
    if fmt == "npz":
        from microbat.io._raw import read_npz

        return read_npz(p, dataset=dataset, lazy=lazy)
    from microbat.io.vtk import read_vti

    return read_vti(p, dataset=dataset, lazy=lazy)


# ------------------------------------------------------------------ labels


def label_counts(data: Any) -> np.ndarray | None:
    """Voxel count per integer value (index = value), streamed slab by slab.

    Returns ``None`` for non-integer data or values outside 0..65535.
    """
    dt = np.dtype(data.dtype)
    if dt == np.bool_:
        dt = np.dtype(np.uint8)
    if dt.kind not in "iu":
        return None
    shape = tuple(data.shape)
    if not shape:
        return None
    counts = np.zeros(0, np.int64)
    # np.bincount casts its input to intp: size the slabs by 8 bytes per voxel.
    for sl in slabs(shape, 8):
        block = np.asarray(data[sl]).reshape(-1)
        if block.size == 0:
            continue
        if dt.itemsize > 2 or dt.kind == "i":
            lo, hi = int(block.min()), int(block.max())
            if lo < 0 or hi > 65535:
                return None
            block = block.astype(np.uint16)
        elif block.dtype == np.bool_:
            block = block.view(np.uint8)
        bc = np.bincount(block, minlength=counts.size)
        if bc.size > counts.size:
            bc[: counts.size] += counts
            counts = bc.astype(np.int64)
        else:
            counts += bc
    return counts


def constant_value(data: Any) -> float | None:
    """The value of every voxel when ``data`` is constant, else ``None``.

    Streamed slab by slab; stops at the first slab holding two values, so a real
    image costs one slab. NaN voxels count as a value of their own.

    Examples
    --------
    >>> constant_value(np.full((2, 3, 4), 7, np.uint16)), constant_value(np.eye(3))
    (7.0, None)
    """
    shape = tuple(data.shape)
    if not shape or 0 in shape:
        return None
    first: float | None = None
    for sl in slabs(shape, max(1, np.dtype(data.dtype).itemsize)):
        block = np.asarray(data[sl])
        if block.dtype == np.bool_:
            block = block.view(np.uint8)
        lo, hi = block.min(), block.max()
        if lo != hi and not (np.isnan(lo) and np.isnan(hi)):
            return None
        value = float(lo)
        if first is None:
            first = value
        elif not (value == first or (np.isnan(value) and np.isnan(first))):
            return None
    return first


def constant_image_error(where: str, value: float) -> InvalidInputError:
    """The error of an image whose voxels all hold ``value``: nothing to segment or measure."""
    return InvalidInputError(
        f"{where}: the image is constant (every voxel is {value:g}): nothing to segment or "
        "measure; check that the right file, dataset or channel was read"
    )


def is_labelled(vol: Volume, *, phases: Any = None, counts: np.ndarray | None = None) -> bool:
    """Whether a volume holds phase labels (``True``) or grayscale intensities."""
    if vol.metadata.get("microbat_format") == _header.KIND_MICROSTRUCTURE:
        return True
    if vol.dtype.kind not in "biu":
        return False
    if phases is not None:
        return True
    if counts is None:
        counts = label_counts(vol.data)
    return counts is not None and int(np.count_nonzero(counts)) <= MAX_AUTO_LABELS


def _grayscale_error(vol: Volume, counts: np.ndarray | None) -> FileFormatError:
    if vol.dtype.kind in "fc":
        what = f"grayscale {vol.dtype} intensities"
    else:
        n = 0 if counts is None else int(np.count_nonzero(counts))
        what = f"{n} distinct {vol.dtype} values, which looks like a grayscale image"
    return FileFormatError(
        f"{vol.source}: holds {what}, not phase labels; segment it first "
        "(microbat.imaging.segment, or the `microbat segment` command), or if these are "
        "labels give the phase table (phases='pore=0,cbd=1,active=2' / --phases)"
    )


def _voxel_size_arg(voxel_size: Any) -> tuple[float, ...] | None:
    if voxel_size is None:
        return None
    if isinstance(voxel_size, str):
        return parse_voxel_size(voxel_size)
    return tuple(float(v) for v in np.atleast_1d(np.asarray(voxel_size, dtype=float)))


def _missing_voxel_size(vol: Volume) -> VoxelSizeError:
    hint = ""
    px = vol.metadata.get("pixel_size_m")
    if px:
        hint = (
            f" (it gives an in-plane pixel size of {format_length(float(px[-1]))} but no "
            "slice spacing)"
        )
    return VoxelSizeError(
        f"{vol.source}: the file does not say its voxel size{hint}; pass it in metres, "
        "e.g. voxel_size=4e-7 (or --voxel-size 0.4um on the command line)"
    )


def load_microstructure(
    path: str | os.PathLike[str],
    *,
    phases: PhaseTable | str | Mapping[str, int] | None = None,
    voxel_size: float | Sequence[float] | str | None = None,
    thickness_axis: int | None = None,
    dataset: str | None = None,
    require_voxel_size: bool = True,
    **raw_options: Any,
) -> Microstructure:
    """Read a labelled file as a :class:`~microbat.core.microstructure.Microstructure`.

    Parameters
    ----------
    path : path-like
        Any file :func:`read_volume` reads.
    phases : PhaseTable, str or mapping, optional
        Phase table (``"pore=0,cbd=1,active=2"``). Overrides the file's. Default:
        the file's own table (microbat files), else the core default for 2 or 3
        consecutive labels: a binary (boolean or 0/1) image is ``pore=1, active=0``,
        the convention of PoreSpy and TauFactor (``True`` = pore); 0/1/2 is
        ``pore=0, cbd=1, active=2``.
    voxel_size : float, sequence or str, optional
        Voxel edge in metres (or ``"0.4um"``). Overrides what the file says.
    thickness_axis : int, optional
        Axis through the electrode thickness. Default: the file's, else 0.
    dataset : str, optional
        Dataset / array name in containers (see :func:`read_volume`).
    require_voxel_size : bool, default True
        With ``False``, a file that does not say its voxel size (and no
        ``voxel_size``) gives a microstructure of cubic voxels of unknown size
        (``voxel_size="unknown"``), enough for fractions, percolation and the
        dimensionless transport results.
    **raw_options
        ``shape``, ``dtype``, ``byte_order``, ``offset`` for raw files, and ``lazy``
        (keep a memory map instead of loading the labels).

    Returns
    -------
    Microstructure
        Labels, voxel size, phases, thickness axis and metadata. A microbat file
        comes back exactly as saved; a plain file gets ``metadata["source"]``.

    Raises
    ------
    VoxelSizeError
        Neither the file nor ``voxel_size`` gives the voxel size (and
        ``require_voxel_size`` is true).
    FileFormatError
        The file is unreadable, or holds a grayscale image (float, or many distinct
        integer values without a phase table): segment it first.
    PhaseError
        Labels that the phase table does not list.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> f = os.path.join(tempfile.mkdtemp(), "a.npy")
    >>> lab = np.zeros((4, 4, 4), np.uint8); lab[:, :, 1:] = 1  # 1 = pore
    >>> np.save(f, lab)
    >>> load_microstructure(f, voxel_size=5e-7).volume_fractions()
    {'pore': 0.75, 'active': 0.25}
    """
    unknown = sorted(set(raw_options) - {*_RAW_KEYS, "lazy"})
    if unknown:
        raise InvalidInputError(
            f"unknown option(s) {', '.join(unknown)}; load_microstructure takes phases, "
            f"voxel_size, thickness_axis, dataset, lazy and for raw files {', '.join(_RAW_KEYS)}"
        )
    vol = read_volume(path, dataset=dataset, **raw_options)
    try:
        return microstructure_from_volume(
            vol, phases=phases, voxel_size=voxel_size, thickness_axis=thickness_axis,
            require_voxel_size=require_voxel_size,
        )  # fmt: skip
    finally:
        if not isinstance(vol.data, np.memmap):
            vol.close()


def microstructure_from_volume(
    vol: Volume,
    *,
    phases: PhaseTable | str | Mapping[str, int] | None = None,
    voxel_size: float | Sequence[float] | str | None = None,
    thickness_axis: int | None = None,
    require_voxel_size: bool = True,
) -> Microstructure:
    """Turn a :class:`Volume` of labels into a Microstructure (see :func:`load_microstructure`).

    Parameters
    ----------
    vol : Volume
        What :func:`read_volume` returned.
    phases, voxel_size, thickness_axis, require_voxel_size
        Overrides, as in :func:`load_microstructure`.

    Returns
    -------
    Microstructure
        The labelled microstructure.
    """
    meta = vol.metadata
    own = meta.get("microbat_format") == _header.KIND_MICROSTRUCTURE
    counts = None
    if not own and vol.dtype.kind in "biu" and phases is None:
        counts = label_counts(vol.data)
        if counts is not None and int(np.count_nonzero(counts)) == 1:
            raise constant_image_error(vol.source, float(np.flatnonzero(counts)[0]))
    if not own and vol.dtype.kind in "fc" and phases is None:
        value = constant_value(vol.data)
        if value is not None:
            raise constant_image_error(vol.source, value)
    if not is_labelled(vol, phases=phases, counts=counts):
        raise _grayscale_error(vol, counts)
    vs: Any = _voxel_size_arg(voxel_size) or vol.voxel_size
    if vs is None and not require_voxel_size:
        vs = UNKNOWN_VOXEL_SIZE
    if vs is None:
        raise _missing_voxel_size(vol)
    table: Any = phases
    if table is None and own and meta.get("phases"):
        table = PhaseTable.from_list(meta["phases"])
    if table is None and counts is not None:
        present = np.flatnonzero(counts)
        if present.size in (2, 3) and np.array_equal(present, np.arange(present.size)):
            table = default_phase_table(int(present.size))
    axis = thickness_axis
    if axis is None:
        axis = int(meta.get("thickness_axis", 0)) if own else 0
    if own:
        user_meta = dict(meta.get("metadata") or {})
    else:
        user_meta = {"source": vol.source}
    data = vol.data
    if not isinstance(data, np.ndarray):
        data = vol.to_numpy()
    return Microstructure(
        data,
        voxel_size=vs,
        phases=table,
        thickness_axis=axis,
        metadata=user_meta,
        allow_empty_phases=own and phases is None,
    )
