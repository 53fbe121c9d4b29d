"""Which voxels take part in a finite-volume solve.

Only faces carry flux in a two-point finite-volume scheme, so voxels connect
through shared faces (6-connectivity in 3D), also across the seam of periodic
axes. A component that touches no Dirichlet boundary has a singular (floating)
block; one that touches a single Dirichlet side carries no flux between two
sides. These functions find the components so that the assembled operator can be
restricted to the voxels that matter, which keeps it non-singular.

The labelling and the face test are those of :mod:`microbat.core.clusters`, shared
with :mod:`microbat.imaging.connectivity`: without periodic axes,
:func:`spanning_mask` is :func:`microbat.imaging.transport_mask` of the same voxels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from microbat.core.clusters import label_clusters, side_touch
from microbat.core.errors import InvalidInputError

__all__ = ["components", "spanning_mask", "touching_mask"]


def components(
    mask: np.ndarray, *, periodic: Sequence[bool] = (False, False, False)
) -> tuple[np.ndarray, int]:
    """Label the face-connected components of ``mask``.

    Parameters
    ----------
    mask : ndarray of bool, 3D
        Conducting voxels.
    periodic : sequence of 3 bool
        Axes along which the last layer touches the first.

    Returns
    -------
    labels : ndarray of int32
        0 outside ``mask``, components numbered from 1 (consecutive).
    n : int
        Number of components.

    Examples
    --------
    >>> m = np.zeros((1, 1, 5), bool); m[..., [0, 4]] = True
    >>> components(m)[1], components(m, periodic=(False, False, True))[1]
    (2, 1)
    """
    if mask.ndim != 3:
        raise InvalidInputError("components needs a 3D mask")
    return label_clusters(mask, 6, periodic=periodic)


def touching_mask(
    labels: np.ndarray, sides: Sequence[tuple[int, int]], *, require_all: bool = True
) -> np.ndarray:
    """Voxels of components that touch the given outer sides.

    Parameters
    ----------
    labels : ndarray of int
        Component labels (from :func:`components`).
    sides : sequence of (axis, side)
        ``side`` is ``0`` for the first layer along ``axis`` and ``-1`` for the last.
    require_all : bool, default True
        Keep components touching *all* sides (spanning) or *any* of them.

    Returns
    -------
    ndarray of bool
    """
    n = int(labels.max(initial=0))
    keep = np.ones(n + 1, bool) if require_all else np.zeros(n + 1, bool)
    for axis, side in sides:
        present = side_touch(labels, n, axis, side)
        keep = keep & present if require_all else keep | present
    keep[0] = False
    return keep[labels]


def spanning_mask(
    mask: np.ndarray, axis: int, *, periodic: Sequence[bool] = (False, False, False)
) -> np.ndarray:
    """Voxels of ``mask`` in components touching both the first and last layer of ``axis``.

    Parameters
    ----------
    mask : ndarray of bool, 3D
        Conducting voxels.
    axis : int
        Direction of transport.
    periodic : sequence of 3 bool
        Periodic transverse axes (``periodic[axis]`` is ignored).

    Returns
    -------
    ndarray of bool
        Empty (all False) when nothing spans: the direction does not percolate.
    """
    per = [bool(p) for p in periodic]
    per[axis] = False
    lab, n = components(mask, periodic=per)
    if n == 0:
        return np.zeros(mask.shape, bool)
    return touching_mask(lab, [(axis, 0), (axis, -1)])
