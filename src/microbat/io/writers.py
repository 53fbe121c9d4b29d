"""Writing microstructures and grayscale volumes, atomically.

Every writer creates the file under a temporary name in the target folder
(:func:`microbat.core.atomic.atomic_path`) and renames it when complete, so a
failure or Ctrl-C never leaves a partial file under the final name.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import microbat.io._header as _header
from microbat.core.atomic import atomic_path
from microbat.core.errors import FileFormatError, InvalidInputError
from microbat.core.microstructure import Microstructure, normalize_voxel_size
from microbat.io._common import WRITE_SUFFIXES, suffix_of
from microbat.io.volume import Volume

__all__ = ["save_microstructure", "save_volume"]


def _writer_format(path: Path, allowed: Sequence[str]) -> str:
    fmt = WRITE_SUFFIXES.get(suffix_of(path))
    if fmt is None or fmt not in allowed:
        ok = sorted(s for s, f in WRITE_SUFFIXES.items() if f in allowed)
        raise FileFormatError(
            f"{path}: cannot write {suffix_of(path) or '(no suffix)'!r} files; use one of "
            f"{', '.join(ok)}"
        )
    return fmt


def _write(
    fmt: str,
    path: Path,
    array: Any,
    header: dict[str, Any],
    voxel_size: tuple[float, ...] | None,
    name: str,
    compression: bool,
) -> None:
    if fmt == "zarr":
        from microbat.io._zarr import write_zarr

        with atomic_path(path, directory=True) as tmp:
            write_zarr(tmp, array, header=header, name=name, compression=compression)
        return
    with atomic_path(path) as tmp:
        if fmt == "hdf5":
            from microbat.io._hdf5 import write_hdf5

            write_hdf5(tmp, array, header=header, name=name, compression=compression)
        elif fmt == "tiff":
            from microbat.io._tiff import write_tiff

            write_tiff(tmp, array, header=header, voxel_size=voxel_size, compression=compression)
        elif fmt == "npy":
            from microbat.io._raw import write_npy

            write_npy(tmp, array)
        elif fmt == "npz":
            from microbat.io._raw import write_npz

            write_npz(tmp, array, header=header, name=name, compression=compression)
        else:  # pragma: no cover - guarded by _writer_format
            raise FileFormatError(f"{path}: no writer for {fmt}")


def save_microstructure(
    ms: Microstructure, path: str | os.PathLike[str], *, compression: bool = True
) -> Path:
    """Save a microstructure; the suffix picks the format.

    Parameters
    ----------
    ms : Microstructure
        What to save.
    path : path-like
        ``.h5``/``.hdf5`` or ``.zarr`` (microbat's own format, everything kept),
        ``.tif``/``.tiff`` (ImageJ hyperstack with calibrated spacing; the phase
        table and the rest in the ImageJ ``Info`` property), ``.npz`` (labels and
        the microbat header), ``.npy`` (labels only: voxel size and phases are
        *not* stored), ``.vti`` (VTK ImageData for ParaView).
    compression : bool, default True
        Lossless compression (gzip in HDF5, Blosc-zstd in Zarr, deflate in TIFF,
        zip in NPZ, zlib in VTI). ``.npy`` is never compressed.

    Returns
    -------
    Path
        The written file or folder.

    Raises
    ------
    FileFormatError
        Unsupported suffix.
    InvalidInputError
        ``ms`` is not a Microstructure.

    Notes
    -----
    The layout of each format is in ``docs/file-format.md``. Arrays are stored in
    microbat axis order ``[z, y, x]``. Large memory-mapped labels are written slab
    by slab (HDF5, Zarr, VTI) without loading them whole.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from microbat.io import load_microstructure
    >>> lab = np.zeros((4, 4, 4), np.uint8); lab[:, :, 2:] = 1
    >>> ms = Microstructure(lab, voxel_size=5e-7)
    >>> f = save_microstructure(ms, os.path.join(tempfile.mkdtemp(), "ms.h5"))
    >>> load_microstructure(f) == ms
    True
    """
    if not isinstance(ms, Microstructure):
        raise InvalidInputError(
            f"save_microstructure needs a Microstructure, got {type(ms).__name__}; use "
            "save_volume for a grayscale array"
        )
    p = Path(path)
    fmt = _writer_format(p, ("hdf5", "zarr", "tiff", "npy", "npz", "vti"))
    if fmt == "vti":
        from microbat.io.vtk import write_vti

        return write_vti(ms, p, compress=compression)
    header = _header.microstructure_header(ms)
    _write(fmt, p, ms.labels, header, ms.voxel_size, _header.LABELS_NAME, compression)
    return p


def save_volume(
    array: np.ndarray | Volume,
    path: str | os.PathLike[str],
    *,
    voxel_size: float | Sequence[float] | None = None,
    compression: bool = True,
) -> Path:
    """Save a grayscale volume (e.g. a denoised image); the suffix picks the format.

    Parameters
    ----------
    array : ndarray or Volume, shape (n0, n1, n2) or (n0, n1)
        Intensities in axis order ``[z, y, x]`` (any numeric dtype). A
        :class:`Volume` brings its own voxel size.
    path : path-like
        ``.tif``/``.tiff``, ``.h5``/``.hdf5``, ``.zarr``, ``.npy``, ``.npz`` or ``.vti``.
    voxel_size : float or sequence of float, optional
        Voxel edge in metres, stored with the data (not in ``.npy``). Required
        for ``.vti``.
    compression : bool, default True
        Lossless compression where the format has it.

    Returns
    -------
    Path
        The written file or folder.

    Raises
    ------
    FileFormatError
        Unsupported suffix.
    InvalidInputError
        Not a numeric 2D/3D array.
    VoxelSizeError
        Invalid voxel size (or none for ``.vti``).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from microbat.io import read_volume
    >>> img = np.linspace(0, 1, 24, dtype=np.float32).reshape(2, 3, 4)
    >>> f = save_volume(img, os.path.join(tempfile.mkdtemp(), "img.tif"), voxel_size=1e-6)
    >>> read_volume(f).voxel_size
    (1e-06, 1e-06, 1e-06)
    """
    if isinstance(array, Volume):
        data: Any = array.data
        if voxel_size is None:
            voxel_size = array.voxel_size
    elif isinstance(array, Microstructure):
        raise InvalidInputError("use save_microstructure for a Microstructure")
    else:
        data = array if hasattr(array, "dtype") and hasattr(array, "shape") else np.asarray(array)
    dt = np.dtype(data.dtype)
    ndim = len(data.shape)
    if dt.kind not in "biuf" or ndim not in (2, 3) or min(data.shape) < 1:
        raise InvalidInputError(
            f"save_volume needs a non-empty 2D or 3D numeric array, got shape "
            f"{tuple(data.shape)} and dtype {dt}"
        )
    vs = None if voxel_size is None else normalize_voxel_size(voxel_size, ndim)
    p = Path(path)
    fmt = _writer_format(p, ("hdf5", "zarr", "tiff", "npy", "npz", "vti"))
    if fmt == "vti":
        from microbat.io.vtk import write_vti

        return write_vti(data, p, voxel_size=vs, name="intensity", compress=compression)
    header = _header.volume_header(ndim, vs)
    _write(fmt, p, data, header, vs, _header.VOLUME_NAME, compression)
    return p
