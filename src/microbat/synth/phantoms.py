"""Microstructures of known geometry, for tests of other modules.

Each function returns a :class:`~microbat.core.Microstructure` whose volume
fractions, interfaces and transport properties have closed forms:

* :func:`sphere` — one ball of active material in pore (volume ≈ 4/3 π r³).
* :func:`channels` — straight square pore channels through an active matrix
  (tortuosity factor exactly 1 along the channels, porosity ``n w² / A``).
* :func:`layers` — flat slabs of given phases stacked along one axis (series or
  parallel conductances in closed form).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from microbat.core.errors import InvalidInputError
from microbat.core.microstructure import Microstructure
from microbat.core.phases import PhaseTable
from microbat.synth._common import check_axis, check_positive, check_shape, check_voxel_size

__all__ = ["channels", "layers", "sphere"]


def sphere(
    shape: Sequence[int],
    radius: float,
    *,
    voxel_size: float | Sequence[float],
    center: Sequence[float] | None = None,
    thickness_axis: int = 0,
) -> Microstructure:
    """A single ball of active material (label 1) in pore (label 0).

    Parameters
    ----------
    shape : sequence of three int
        Grid shape.
    radius : float
        Radius in voxels (of the first axis' voxel size when voxels are not cubic).
    voxel_size : float or sequence of float
        Voxel edge in metres.
    center : sequence of three float, optional
        Centre in voxel coordinates (voxel ``i`` spans ``[i, i+1)``); default the
        middle of the volume.
    thickness_axis : int, default 0
        Thickness axis of the result.

    Returns
    -------
    Microstructure
        Phases ``pore=0, active=1``; a voxel is active when its centre lies
        within ``radius`` of ``center``.

    Examples
    --------
    >>> ms = sphere((21, 21, 21), 6.0, voxel_size=1e-6)
    >>> int(ms.counts()["active"])  # 4/3 π 6³ ≈ 905
    925
    """
    dims = check_shape(shape)
    h = check_voxel_size(voxel_size)
    r = check_positive(radius, "radius", unit="voxels")
    c = np.array([n / 2 for n in dims] if center is None else center, dtype=float)
    if c.shape != (3,) or not np.all(np.isfinite(c)):
        raise InvalidInputError(f"center must be three finite voxel coordinates, got {center!r}")
    grids = np.ogrid[tuple(slice(0, n) for n in dims)]
    d2 = sum(((g + 0.5 - ci) * (hh / h[0])) ** 2 for g, ci, hh in zip(grids, c, h, strict=True))
    lab = (d2 <= r * r).astype(np.uint8)
    return Microstructure(
        lab,
        h,
        "pore=0,active=1",
        thickness_axis=check_axis(thickness_axis),
        metadata={"phantom": {"kind": "sphere", "radius_vox": r, "center_vox": c.tolist()}},
        allow_empty_phases=True,
    )


def channels(
    shape: Sequence[int],
    *,
    width: int,
    spacing: int,
    voxel_size: float | Sequence[float],
    axis: int = 0,
    offset: int = 0,
) -> Microstructure:
    """Straight square pore channels along ``axis`` through an active matrix.

    Parameters
    ----------
    shape : sequence of three int
        Grid shape.
    width : int
        Channel edge in voxels.
    spacing : int
        Centre-to-centre channel pitch in voxels (``> width``).
    voxel_size : float or sequence of float
        Voxel edge in metres.
    axis : int, default 0
        Channel direction (also the thickness axis of the result).
    offset : int, default 0
        Index of the first channel's first voxel in both cross-section axes.

    Returns
    -------
    Microstructure
        Phases ``pore=0, active=1``. Porosity is
        ``(n_a · width)(n_b · width) / (N_a N_b)`` with ``n`` channels per
        cross-section axis; the pore tortuosity factor along ``axis`` is 1 and the
        pore does not percolate across it.

    Examples
    --------
    >>> ms = channels((10, 12, 12), width=2, spacing=6, voxel_size=1e-6)
    >>> ms.volume_fractions()["pore"]  # 4 channels of 2x2 in 12x12
    0.1111111111111111
    """
    dims = check_shape(shape)
    h = check_voxel_size(voxel_size)
    ax = check_axis(axis, "axis")
    w, sp, off = int(width), int(spacing), int(offset)
    if w < 1 or sp <= w or off < 0:
        raise InvalidInputError(
            f"need width >= 1, spacing > width and offset >= 0; got width={width}, "
            f"spacing={spacing}, offset={offset}"
        )
    lab = np.ones(dims, dtype=np.uint8)
    others = [a for a in range(3) if a != ax]
    masks = []
    for a in others:
        idx = np.arange(dims[a])
        masks.append(((idx - off) % sp < w) & (idx >= off))
    cross = masks[0][:, None] & masks[1][None, :]
    if not cross.any():
        raise InvalidInputError(f"no channel fits in the cross-section {[dims[a] for a in others]}")
    lab_t = np.moveaxis(lab, ax, 0)
    lab_t[:, cross] = 0
    return Microstructure(
        lab,
        h,
        "pore=0,active=1",
        thickness_axis=ax,
        metadata={"phantom": {"kind": "channels", "width": w, "spacing": sp, "axis": ax}},
    )


def layers(
    shape: Sequence[int],
    *,
    voxel_size: float | Sequence[float],
    sequence: Sequence[int] = (0, 1, 2),
    widths: Sequence[int] | None = None,
    axis: int = 0,
    phases: str | PhaseTable = "pore=0,cbd=1,active=2",
    thickness_axis: int = 0,
) -> Microstructure:
    """Flat slabs of phases stacked along ``axis``.

    Parameters
    ----------
    shape : sequence of three int
        Grid shape.
    voxel_size : float or sequence of float
        Voxel edge in metres.
    sequence : sequence of int, default (0, 1, 2)
        Label of each slab, from index 0 upward.
    widths : sequence of int, optional
        Width of each slab in voxels (must sum to ``shape[axis]``); default equal
        widths (the remainder goes to the last slabs).
    axis : int, default 0
        Stacking axis.
    phases : str or PhaseTable, default "pore=0,cbd=1,active=2"
        Phase table of the labels.
    thickness_axis : int, default 0
        Thickness axis of the result.

    Returns
    -------
    Microstructure
        Slab ``k`` has label ``sequence[k]``.

    Examples
    --------
    >>> ms = layers((12, 4, 4), voxel_size=1e-6, sequence=(2, 0), widths=(4, 8))
    >>> ms.volume_fractions()
    {'pore': 0.6666666666666666, 'cbd': 0.0, 'active': 0.3333333333333333}
    """
    dims = check_shape(shape)
    h = check_voxel_size(voxel_size)
    ax = check_axis(axis, "axis")
    seq = [int(v) for v in sequence]
    if not seq:
        raise InvalidInputError("sequence needs at least one label")
    n = dims[ax]
    if widths is None:
        base, rest = divmod(n, len(seq))
        wl = [base + (1 if k >= len(seq) - rest else 0) for k in range(len(seq))]
    else:
        wl = [int(v) for v in widths]
        if len(wl) != len(seq) or any(v < 0 for v in wl) or sum(wl) != n:
            raise InvalidInputError(
                f"widths {list(widths)} must give one non-negative width per slab and sum to "
                f"shape[{ax}] = {n}"
            )
    lab = np.empty(dims, dtype=np.uint8 if max(seq) <= 255 else np.uint16)
    start = 0
    for v, w in zip(seq, wl, strict=True):
        idx = [slice(None)] * 3
        idx[ax] = slice(start, start + w)
        lab[tuple(idx)] = v
        start += w
    return Microstructure(
        lab,
        h,
        phases,
        thickness_axis=check_axis(thickness_axis),
        metadata={"phantom": {"kind": "layers", "sequence": seq, "widths": wl, "axis": ax}},
        allow_empty_phases=True,
    )
