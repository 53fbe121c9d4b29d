"""The :class:`Volume`: an array read from a file with what the file said about it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Volume", "parse_crop"]


def parse_crop(text: str, *, what: str = "--crop") -> tuple[slice, ...]:
    """Read a crop ``z0:z1,y0:y1,x0:x1`` (array axis order, stop excluded) as slices.

    An empty bound runs to the edge (``:64,,10:``; ``:`` or nothing keeps the axis).
    The slices go to :meth:`Volume.crop`, which checks them against the shape.

    Parameters
    ----------
    text : str
        One ``start:stop`` range of voxels per axis, comma-separated, at most three.
    what : str, optional
        How the caller names the setting in the error message (``--crop``,
        ``input.crop``).

    Returns
    -------
    tuple of slice
        One slice per range given.

    Raises
    ------
    InvalidInputError
        A range that is not ``start:stop`` with integer bounds, or more than three.

    Examples
    --------
    >>> parse_crop("0:64,:,10:")
    (slice(0, 64, None), slice(None, None, None), slice(10, None, None))
    """
    from microbat.core.errors import InvalidInputError

    out: list[slice] = []
    parts = text.split(",")
    for part in parts:
        lo, sep, hi = part.strip().partition(":")
        try:
            if not sep and lo:
                raise ValueError
            out.append(slice(int(lo) if lo.strip() else None, int(hi) if hi.strip() else None))
        except ValueError:
            raise InvalidInputError(
                f"{what} {text!r}: write one start:stop range of voxels per axis in array "
                "order, z0:z1,y0:y1,x0:x1 (e.g. 0:64,0:64,0:64; an empty bound runs to the edge)"
            ) from None
    if not 1 <= len(parts) <= 3:
        raise InvalidInputError(f"{what} {text!r}: give one range per axis, at most three")
    return tuple(out)


@dataclass(frozen=True)
class Volume:
    """An image volume read from a file, with its voxel size and metadata.

    Attributes
    ----------
    data : array-like, shape (n0, n1, n2) or (n0, n1)
        The voxels in microbat's axis order ``[z, y, x]`` (slice, row, column).
        A NumPy array when read eagerly; with ``lazy=True`` an object that is
        sliced like a NumPy array and returns NumPy arrays (``np.memmap``, a Zarr
        array, an ``h5py.Dataset``) without reading the whole file.
    voxel_size : tuple of float or None
        Edge length of a voxel along each array axis in metres, or ``None`` when
        the file does not say (or says only the in-plane pixel size; then
        ``metadata["pixel_size_m"]`` holds that).
    source : str
        The file or folder read (with ``::dataset`` appended for containers).
    metadata : dict
        What else the file said. For a microbat file: ``microbat_format``
        (``"microstructure"`` or ``"volume"``), ``format_version``,
        ``axis_order``, and for microstructures ``phases`` (list of
        ``{"name", "label", "role"}``), ``thickness_axis`` and ``metadata`` (the
        microstructure's own metadata). Readers add format details such as
        ``dataset``, ``imagej`` or ``byte_order``.
    format : str
        The container format: ``"tiff"``, ``"tiff-folder"``, ``"hdf5"``,
        ``"zarr"``, ``"raw"``, ``"npy"``, ``"npz"`` or ``"vti"``.

    Notes
    -----
    A lazily read HDF5 dataset or compressed TIFF keeps its file open; call
    :meth:`close` (or use the volume as a context manager) when done. Memory
    maps and Zarr arrays need no closing.

    Examples
    --------
    >>> import numpy as np
    >>> v = Volume(np.zeros((2, 3, 4), np.uint8), voxel_size=(1e-6,) * 3, source="mem")
    >>> v.shape, v.is_lazy
    ((2, 3, 4), False)
    """

    data: Any
    voxel_size: tuple[float, ...] | None = None
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    format: str = ""
    _closer: Callable[[], None] | None = field(default=None, repr=False, compare=False)

    @property
    def shape(self) -> tuple[int, ...]:
        """Array shape in voxels, axis order ``[z, y, x]``."""
        return tuple(int(n) for n in self.data.shape)

    @property
    def dtype(self) -> np.dtype:
        """Data type of the voxels."""
        return np.dtype(self.data.dtype)

    @property
    def ndim(self) -> int:
        """Number of array dimensions."""
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        """Size of the data in bytes once in memory."""
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    @property
    def is_lazy(self) -> bool:
        """True when :attr:`data` is not an in-memory NumPy array."""
        return isinstance(self.data, np.memmap) or not isinstance(self.data, np.ndarray)

    @property
    def is_microbat(self) -> bool:
        """True when the file was written by microbat (it carries a microbat header)."""
        return "microbat_format" in self.metadata

    def to_numpy(self) -> np.ndarray:
        """The whole volume as an in-memory NumPy array in native byte order."""
        arr = np.asarray(self.data[...])
        if isinstance(arr, np.memmap):
            arr = np.array(arr)
        if not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        return arr

    def crop(self, bounds: Sequence[slice | tuple[int | None, int | None] | None]) -> Volume:
        """The sub-volume inside ``bounds``, read into memory (only that part is read).

        Parameters
        ----------
        bounds : sequence of slice, (start, stop) or None
            One per axis in array order (fewer keep the remaining axes whole);
            ``None`` keeps the whole axis. Steps are not allowed.

        Returns
        -------
        Volume
            An in-memory volume with the same voxel size, source and metadata
            (``metadata["crop"]`` records ``[[start, stop], ...]`` per axis).

        Raises
        ------
        InvalidInputError
            More bounds than axes, a step, or an empty range.

        Examples
        --------
        >>> import numpy as np
        >>> v = Volume(np.arange(24).reshape(2, 3, 4), source="mem")
        >>> v.crop([None, (1, 3), slice(0, 2)]).shape
        (2, 2, 2)
        """
        from microbat.core.errors import InvalidInputError

        if len(bounds) > self.ndim:
            raise InvalidInputError(
                f"{len(bounds)} crop bounds for a {self.ndim}D volume of shape {self.shape}"
            )
        slices: list[slice] = []
        for ax, b in enumerate([*bounds, *[None] * (self.ndim - len(bounds))]):
            s = b if isinstance(b, slice) else slice(None) if b is None else slice(*b)
            start, stop, step = s.indices(self.shape[ax])
            if step != 1 or s.step not in (None, 1):
                raise InvalidInputError(f"crop bounds take no step (axis {ax}: {s})")
            if stop <= start:
                raise InvalidInputError(
                    f"the crop {start}:{stop} of axis {ax} is empty (the axis has "
                    f"{self.shape[ax]} voxels, 0:{self.shape[ax]})"
                )
            slices.append(slice(start, stop))
        data = np.asarray(self.data[tuple(slices)])
        if isinstance(data, np.memmap):
            data = np.array(data)
        meta = dict(self.metadata)
        meta["crop"] = [[s.start, s.stop] for s in slices]
        return Volume(data, self.voxel_size, self.source, meta, self.format)

    def to_dask(self, chunks: Any = "auto") -> Any:
        """The volume as a Dask array (for chunked, out-of-core processing).

        Parameters
        ----------
        chunks : int, tuple or "auto"
            Chunk shape passed to ``dask.array.from_array``; ``"auto"`` follows the
            file's own chunks when it has them.

        Returns
        -------
        dask.array.Array
            A lazy array reading from :attr:`data`.
        """
        from microbat.core.errors import require

        da = require("dask.array", extra="dask", package="dask")
        if chunks == "auto" and getattr(self.data, "chunks", None) is not None:
            native = self.data.chunks
            if isinstance(native, tuple) and all(isinstance(c, int) for c in native):
                chunks = native
        return da.from_array(self.data, chunks=chunks)

    def close(self) -> None:
        """Release the file handle a lazy volume may hold (no-op otherwise)."""
        if self._closer is not None:
            self._closer()

    def __enter__(self) -> Volume:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
