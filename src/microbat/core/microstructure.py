"""The :class:`Microstructure`: the object that flows through every microbat stage.

Axis convention (stated once, used everywhere)
-----------------------------------------------
A 3D volume is a NumPy array indexed ``labels[i0, i1, i2]``; for an image stack
read from TIFF this is ``[slice, row, column]`` (z, y, x). Every reader converts to
this order. ``voxel_size[k]`` is the edge length of a voxel along array axis ``k``
in metres. ``thickness_axis`` names the axis that runs through the electrode
thickness: index 0 along it touches the current collector, the last index the
separator. Per-axis results (tortuosity, percolation, ...) are always listed in
array axis order, axis 0 first. 2D images use ``[row, column]``.

Unknown voxel size
------------------
Volume fractions, percolation and the dimensionless transport results (τ,
``D_eff/D0``, the MacMullin number, the tortuosity tensor, ``σ_eff`` relative to
the phase conductivities) do not depend on the voxel size, only on the voxels'
shape. ``voxel_size="unknown"`` (:data:`UNKNOWN_VOXEL_SIZE`) declares cubic voxels
of unknown size: those results work, and everything that needs a length, an area,
a volume or a time (:attr:`Microstructure.voxel_size`, ``extent``, ``thickness``,
``voxel_volume``, surface areas, particle sizes, the random walk's times, the cell
models, writing the image to a file) raises :class:`VoxelSizeError` with the usual
advice, so that no length is ever reported in made-up units. Computations that
only need the voxels' shape read :attr:`Microstructure.grid_spacing`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from microbat.core.errors import InvalidInputError, PhaseError, VoxelSizeError
from microbat.core.phases import Phase, PhaseRole, PhaseTable, default_phase_table

__all__ = ["UNKNOWN_VOXEL_SIZE", "Microstructure", "normalize_voxel_size"]

#: ``voxel_size`` value declaring cubic voxels of unknown size (see the module notes).
UNKNOWN_VOXEL_SIZE = "unknown"

_MISSING = (
    "the voxel size is missing; give it in metres (e.g. voxel_size=4e-7, or "
    "--voxel-size 0.4um on the command line)"
)

_LABEL_DTYPES = (np.uint8, np.uint16)


def normalize_voxel_size(
    voxel_size: float | Sequence[float] | None, ndim: int
) -> tuple[float, ...]:
    """Return a per-axis voxel size tuple in metres, validated.

    Parameters
    ----------
    voxel_size : float or sequence of float
        One edge length for cubic voxels, or one per axis (metres).
    ndim : int
        Number of array dimensions.

    Raises
    ------
    VoxelSizeError
        If missing, not finite, not positive, of the wrong length, or implausible
        (larger than 1 mm, which usually means micrometres were given as metres).
    """
    if voxel_size is None:
        raise VoxelSizeError(_MISSING)
    arr = np.atleast_1d(np.asarray(voxel_size, dtype=float)).ravel()
    if arr.size == 1:
        arr = np.repeat(arr, ndim)
    if arr.size != ndim:
        raise VoxelSizeError(f"voxel size has {arr.size} values but the image has {ndim} axes")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise VoxelSizeError(f"voxel size must be positive and finite, got {tuple(arr.tolist())}")
    if np.any(arr > 1e-3):
        raise VoxelSizeError(
            f"voxel size {tuple(arr.tolist())} m is larger than 1 mm; voxel sizes are in "
            "metres (0.4 µm is 4e-7), did you give micrometres?"
        )
    return tuple(float(v) for v in arr)


class Microstructure:
    """A labelled voxel image of an electrode with its physical meaning.

    Parameters
    ----------
    labels : ndarray of int, shape (n0, n1, n2) or (n0, n1)
        Phase label of every voxel. Stored as ``uint8`` (or ``uint16`` when a label
        exceeds 255); bool arrays are read as 0/1.
    voxel_size : float, sequence of float or "unknown"
        Voxel edge length in metres, one number or one per axis; ``"unknown"``
        (:data:`UNKNOWN_VOXEL_SIZE`) for cubic voxels of unknown size, enough for
        fractions, percolation and dimensionless transport (see the module notes).
    phases : PhaseTable, str or mapping, optional
        Phase table (see :meth:`PhaseTable.parse`). Default: ``pore=1, active=0``
        for two labels (the convention of PoreSpy and TauFactor: a boolean image is
        ``True`` in the pore), ``pore=0, cbd=1, active=2`` for three.
    thickness_axis : int, default 0
        Axis running through the electrode thickness (current collector at index 0).
    metadata : mapping, optional
        Free, JSON-serialisable information (source file, provenance, ...).
    allow_empty_phases : bool, default False
        Accept phases of the table that have no voxel (crops of a larger volume).
    copy : bool, default False
        Copy ``labels`` instead of keeping a reference (memory maps stay lazy).

    Raises
    ------
    InvalidInputError
        Wrong dtype (floating point, complex) or dimensionality.
    PhaseError
        A label in the array is not in the table, or a table phase is empty.
    VoxelSizeError
        Voxel size missing, non-finite, non-positive or implausible.

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.zeros((4, 4, 4), np.uint8); lab[:, :2] = 1
    >>> ms = Microstructure(lab, voxel_size=1e-6, phases="pore=0,active=1")
    >>> ms.volume_fractions()
    {'pore': 0.5, 'active': 0.5}
    """

    __slots__ = ("_labels", "_size_known", "_spacing", "metadata", "phases", "thickness_axis")

    def __init__(
        self,
        labels: np.ndarray,
        voxel_size: float | Sequence[float] | str | None,
        phases: PhaseTable | str | Mapping[str, int] | None = None,
        *,
        thickness_axis: int = 0,
        metadata: Mapping[str, Any] | None = None,
        allow_empty_phases: bool = False,
        copy: bool = False,
    ) -> None:
        labels = _as_label_array(labels, copy=copy)
        if isinstance(voxel_size, str) and voxel_size == UNKNOWN_VOXEL_SIZE:
            self._spacing: tuple[float, ...] = (1.0,) * labels.ndim
            self._size_known = False
        else:
            self._spacing = normalize_voxel_size(voxel_size, labels.ndim)  # type: ignore[arg-type]
            self._size_known = True
        present = _present_labels(labels)
        if phases is None:
            n = int(present.max()) + 1 if present.size else 1
            if not np.array_equal(present, np.arange(present.size)) or n not in (2, 3):
                raise PhaseError(
                    f"the image holds labels {present.tolist()}; give a phase table, e.g. "
                    "phases='pore=0,cbd=1,active=2'"
                )
            phases = default_phase_table(n)
        self.phases: PhaseTable = PhaseTable.parse(phases)
        unknown = sorted(set(present.tolist()) - set(self.phases.labels))
        if unknown:
            raise PhaseError(
                f"the image holds labels {unknown} that are not in the phase table "
                f"{self.phases.to_spec()}; add them to the table (e.g. --phases "
                f"{self.phases.to_spec()},other={unknown[0]})"
            )
        if not allow_empty_phases:
            empty = [p.name for p in self.phases.values() if p.label not in set(present.tolist())]
            if empty:
                raise PhaseError(
                    f"phase(s) {', '.join(empty)} have no voxel in the image; remove them from "
                    "the phase table or pass allow_empty_phases=True"
                )
        if not isinstance(thickness_axis, int | np.integer) or not (
            -labels.ndim <= thickness_axis < labels.ndim
        ):
            raise InvalidInputError(
                f"thickness_axis={thickness_axis!r} is not an axis of a {labels.ndim}D image"
            )
        self.thickness_axis: int = int(thickness_axis) % labels.ndim
        self.metadata: dict[str, Any] = dict(metadata or {})
        self._labels = labels

    # ------------------------------------------------------------------ basics
    @property
    def labels(self) -> np.ndarray:
        """The labelled array (read-only view)."""
        view = self._labels.view()
        view.flags.writeable = False
        return view

    @property
    def shape(self) -> tuple[int, ...]:
        """Array shape in voxels."""
        return tuple(self._labels.shape)

    @property
    def ndim(self) -> int:
        """Number of spatial dimensions (2 or 3)."""
        return self._labels.ndim

    @property
    def n_voxels(self) -> int:
        """Total number of voxels."""
        return int(self._labels.size)

    @property
    def voxel_size(self) -> tuple[float, ...]:
        """Voxel edge length in metres per axis.

        Raises
        ------
        VoxelSizeError
            The voxel size is unknown (``voxel_size="unknown"``).
        """
        if not self._size_known:
            raise VoxelSizeError(_MISSING)
        return self._spacing

    @property
    def voxel_size_known(self) -> bool:
        """False for a microstructure made with ``voxel_size="unknown"``."""
        return self._size_known

    @property
    def grid_spacing(self) -> tuple[float, ...]:
        """Voxel edges for scale-free computations.

        The voxel size in metres when known, else the edges relative to a unit cube
        (``(1, 1, 1)``, or the block factors after :meth:`downsample`).
        """
        return self._spacing

    @property
    def voxel_volume(self) -> float:
        """Volume of one voxel in m³ (area in m² for 2D)."""
        return float(math.prod(self.voxel_size))

    @property
    def extent(self) -> tuple[float, ...]:
        """Physical edge lengths of the volume in metres, per axis."""
        return tuple(n * h for n, h in zip(self.shape, self.voxel_size, strict=True))

    @property
    def thickness(self) -> float:
        """Electrode thickness in metres (extent along :attr:`thickness_axis`)."""
        return self.extent[self.thickness_axis]

    def __repr__(self) -> str:
        vs = ", ".join(f"{v:.3g}" for v in self._spacing)
        vs = f"({vs}) m" if self._size_known else f"unknown, cubic ({vs})"
        return (
            f"Microstructure(shape={self.shape}, voxel_size={vs}, phases={self.phases!r}, "
            f"thickness_axis={self.thickness_axis})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Microstructure):
            return NotImplemented
        return (
            self.shape == other.shape
            and self.phases == other.phases
            and self.thickness_axis == other.thickness_axis
            and self._size_known == other._size_known
            and np.allclose(self._spacing, other._spacing, rtol=1e-12, atol=0)
            and bool(np.array_equal(self._labels, other._labels))
        )

    __hash__ = None  # type: ignore[assignment]  # mutable metadata, array content

    # ------------------------------------------------------------- statistics
    def counts(self) -> dict[str, int]:
        """Number of voxels of each phase, in table order."""
        bc = _bincount(self._labels)
        return {p.name: int(bc[p.label]) if p.label < bc.size else 0 for p in self.phases.values()}

    def volume_fractions(self) -> dict[str, float]:
        """Volume fraction of each phase, in table order (sums to 1)."""
        n = self.n_voxels
        return {k: v / n for k, v in self.counts().items()}

    def fraction(self, phases: str | Iterable[str]) -> float:
        """Combined volume fraction of the named phases (names or roles)."""
        return float(self.mask(phases).mean())

    def mask(self, phases: str | Iterable[str]) -> np.ndarray:
        """Boolean mask of the named phases (names or roles, comma separated).

        Examples
        --------
        ``ms.mask("pore")``, ``ms.mask("active,cbd")``, ``ms.mask("electrolyte")``.
        """
        labels = [p.label for p in self.phases.resolve(phases)]
        if len(labels) == 1:
            return self._labels == labels[0]
        lut = np.zeros(max(self.phases.labels) + 1, dtype=bool)
        lut[labels] = True
        return lut[self._labels]

    def phases_with_role(self, role: PhaseRole | str) -> tuple[Phase, ...]:
        """Phases of the table with the given role."""
        return self.phases.with_role(role)

    # ----------------------------------------------------------- derivations
    def with_labels(self, labels: np.ndarray, **changes: Any) -> Microstructure:
        """A new microstructure with other labels and the same (or changed) attributes."""
        kw: dict[str, Any] = {
            "voxel_size": self._spacing if self._size_known else UNKNOWN_VOXEL_SIZE,
            "phases": self.phases,
            "thickness_axis": self.thickness_axis,
            "metadata": dict(self.metadata),
            "allow_empty_phases": True,
        }
        kw.update(changes)
        return Microstructure(labels, **kw)

    def crop(self, *bounds: slice | tuple[int | None, int | None] | None) -> Microstructure:
        """A sub-volume sharing memory with this one (a view, no copy).

        Parameters
        ----------
        *bounds : slice, (start, stop) or None
            One per axis, in array axis order; ``None`` keeps the whole axis.

        Examples
        --------
        ``ms.crop((0, 64), (0, 64), (0, 64))`` or ``ms.crop(slice(10, 20), None, None)``.
        """
        if (
            len(bounds) == 1
            and isinstance(bounds[0], tuple)
            and bounds[0]
            and not isinstance(bounds[0][0], int | type(None))
        ):
            bounds = tuple(bounds[0])  # crop(((0,4),(0,4),(0,4)))
        if len(bounds) > self.ndim:
            raise InvalidInputError(f"crop got {len(bounds)} bounds for a {self.ndim}D image")
        slices = []
        for ax, b in enumerate(list(bounds) + [None] * (self.ndim - len(bounds))):
            if b is None:
                s = slice(None)
            elif isinstance(b, slice):
                s = b
            else:
                s = slice(*b)
            start, stop, step = s.indices(self.shape[ax])
            if step != 1 or stop <= start:
                raise InvalidInputError(
                    f"crop along axis {ax} selects no voxel or uses a step: {b!r} of "
                    f"{self.shape[ax]} voxels"
                )
            slices.append(slice(start, stop))
        meta = dict(self.metadata)
        meta["crop"] = [[s.start, s.stop] for s in slices]
        return self.with_labels(self._labels[tuple(slices)], metadata=meta)

    def downsample(
        self, factor: int | Sequence[int], *, method: str = "majority"
    ) -> Microstructure:
        """Coarsen by an integer factor per axis (majority vote of each block).

        Trailing voxels that do not fill a whole block are dropped. Ties in the vote
        go to the phase listed first in the table.

        Parameters
        ----------
        factor : int or sequence of int
            Block edge in voxels, one number or one per axis.
        method : {"majority", "nearest"}
            ``"majority"`` votes; ``"nearest"`` keeps the first voxel of each block.
        """
        f = _factors(factor, self.ndim)
        shape = tuple(n // k for n, k in zip(self.shape, f, strict=True))
        if min(shape) < 1:
            raise InvalidInputError(f"factor {f} is larger than the image {self.shape}")
        core = self._labels[tuple(slice(0, n * k) for n, k in zip(shape, f, strict=True))]
        if method == "nearest":
            out = np.ascontiguousarray(core[tuple(slice(None, None, k) for k in f)])
        elif method == "majority":
            blocks = core.reshape(sum(((n, k) for n, k in zip(shape, f, strict=True)), ()))
            blocks = blocks.transpose(
                tuple(range(0, 2 * self.ndim, 2)) + tuple(range(1, 2 * self.ndim, 2))
            ).reshape((*shape, -1))
            best = np.zeros(shape, dtype=np.int32)
            out = np.zeros(shape, dtype=self._labels.dtype)
            for p in self.phases.values():
                c = np.count_nonzero(blocks == p.label, axis=-1)
                better = c > best
                out[better] = p.label
                best[better] = c[better]
        else:
            raise InvalidInputError(f"unknown downsample method {method!r}; use majority|nearest")
        vs = tuple(h * k for h, k in zip(self._spacing, f, strict=True))
        meta = dict(self.metadata)
        meta["downsample"] = {"factor": list(f), "method": method}
        return self._rescaled(out, vs, meta)

    def upsample(self, factor: int | Sequence[int]) -> Microstructure:
        """Refine by an integer factor per axis (each voxel becomes a block)."""
        f = _factors(factor, self.ndim)
        out = self._labels
        for ax, k in enumerate(f):
            if k > 1:
                out = np.repeat(out, k, axis=ax)
        vs = tuple(h / k for h, k in zip(self._spacing, f, strict=True))
        meta = dict(self.metadata)
        meta["upsample"] = {"factor": list(f)}
        return self._rescaled(np.ascontiguousarray(out), vs, meta)

    def _rescaled(
        self, labels: np.ndarray, spacing: tuple[float, ...], meta: dict[str, Any]
    ) -> Microstructure:
        if self._size_known:
            return self.with_labels(labels, voxel_size=spacing, metadata=meta)
        out = self.with_labels(labels, metadata=meta)
        out._spacing = spacing  # unknown size, known shape of the voxels
        return out

    def copy(self) -> Microstructure:
        """A deep copy (labels copied into memory)."""
        return self.with_labels(np.array(self._labels), metadata=dict(self.metadata))

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary: shape, voxel size, phases, fractions, thickness axis."""
        known = self._size_known
        return {
            "shape": list(self.shape),
            "voxel_size_m": list(self._spacing) if known else None,
            "extent_m": list(self.extent) if known else None,
            "thickness_axis": self.thickness_axis,
            "phases": self.phases.to_list(),
            "volume_fractions": self.volume_fractions(),
            "dtype": str(self._labels.dtype),
        }


# ---------------------------------------------------------------- helpers
def _as_label_array(labels: Any, *, copy: bool) -> np.ndarray:
    if not hasattr(labels, "dtype") or not hasattr(labels, "shape"):
        labels = np.asarray(labels)
    if labels.ndim not in (2, 3):
        raise InvalidInputError(
            f"a microstructure must be a 2D or 3D labelled array, got {labels.ndim}D with "
            f"shape {tuple(labels.shape)}"
        )
    if min(labels.shape) < 1:
        raise InvalidInputError(f"the labelled array is empty (shape {tuple(labels.shape)})")
    dt = np.dtype(labels.dtype)
    if dt == np.bool_:
        return np.asarray(labels, dtype=np.uint8)
    if dt.kind not in "iu":
        raise InvalidInputError(
            f"a labelled array must hold integers, got {dt}; a grayscale image must be "
            "segmented first (microbat.imaging.segment or `microbat segment`)"
        )
    if dt in _LABEL_DTYPES:
        return np.array(labels, copy=True) if copy else np.asarray(labels)
    arr = np.asarray(labels)
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi > 65535:
        raise InvalidInputError(f"labels must lie in 0..65535, got {lo}..{hi}")
    return arr.astype(np.uint8 if hi <= 255 else np.uint16)


_COUNT_SLAB = 1 << 24  # voxels per slab: bincount casts to intp (8 bytes per voxel)


def _bincount(labels: np.ndarray) -> np.ndarray:
    """Voxel count per label value.

    Counted in slabs so that a huge (memory-mapped) image needs no temporary of
    eight bytes per voxel (``np.bincount`` casts its input to ``intp``).
    """
    arr = np.asarray(labels)
    n_labels = 256 if arr.dtype == np.uint8 else 65536
    counts = np.zeros(n_labels, dtype=np.int64)
    if arr.ndim == 0:
        return counts
    per_plane = max(1, arr[0].size)
    step = max(1, _COUNT_SLAB // per_plane)
    for i in range(0, arr.shape[0], step):
        counts += np.bincount(arr[i : i + step].reshape(-1), minlength=n_labels)
    if arr.dtype != np.uint8:
        last = np.flatnonzero(counts)
        counts = counts[: (last[-1] + 1 if last.size else 1)]
    return counts


def _present_labels(labels: np.ndarray) -> np.ndarray:
    return np.flatnonzero(_bincount(labels))


def _factors(factor: int | Sequence[int], ndim: int) -> tuple[int, ...]:
    f = tuple(int(k) for k in np.atleast_1d(factor))
    if len(f) == 1:
        f = f * ndim
    if len(f) != ndim or any(k < 1 for k in f):
        raise InvalidInputError(f"factor must be a positive integer or one per axis, got {factor}")
    return f
