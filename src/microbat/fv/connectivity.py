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

__all__ = ["components", "spanning_mask", "touching_mask", "winding_mask"]


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


def winding_mask(
    mask: np.ndarray, axis: int, *, periodic: Sequence[bool] = (True, True, True)
) -> np.ndarray:
    """Voxels of components that wind around the periodic ``axis``.

    In the periodic repetition of the image, a component winds around ``axis`` when
    it connects without end along it (a non-zero winding number). Only such
    components carry a mean flux along ``axis`` under a mean gradient (periodic
    homogenisation); every other component takes a potential that cancels the
    applied jump, with zero flux.

    Parameters
    ----------
    mask : ndarray of bool, 3D
        Conducting voxels.
    axis : int
        The periodic axis of the mean gradient (periodic whatever ``periodic`` says).
    periodic : sequence of 3 bool
        Which other axes wrap around.

    Returns
    -------
    ndarray of bool
        Empty (all False) when nothing winds: no mean flux along ``axis``.

    Notes
    -----
    The components are labelled with ``axis`` open; every face across its seam
    joins a component on the last layer to one on the first layer of the next
    period (position +1). A union–find that keeps each component's position
    relative to its root finds a cycle whose positions do not add up: that group
    winds. Cost: one labelling and a pass over the distinct seam pairs.

    Examples
    --------
    >>> m = np.zeros((6, 4, 1), bool); m[:3, 1] = m[2:, 2] = True   # a step
    >>> bool(winding_mask(m, 0).any()), bool(winding_mask(m | np.roll(m, 1, 1), 0).any())
    (False, True)
    """
    per = [bool(p) for p in periodic]
    per[axis] = False
    lab, n = components(mask, periodic=per)
    out = np.zeros(mask.shape, bool)
    last = np.take(lab, -1, axis=axis).ravel()
    first = np.take(lab, 0, axis=axis).ravel()
    both = (last > 0) & (first > 0)
    if n == 0 or not both.any():
        return out
    pairs = np.unique(np.stack([last[both], first[both]], axis=1), axis=0)
    parent: dict[int, int] = {}
    offset: dict[int, int] = {}  # position (in periods) relative to the parent

    def find(a: int) -> tuple[int, int]:
        path = []
        while parent.get(a, a) != a:
            path.append(a)
            a = parent[a]
        root, total = a, 0
        for node in reversed(path):  # compress, nearest to the root first
            total += offset[node]
            parent[node], offset[node] = root, total
        return root, (offset[path[0]] if path else 0)

    winding: list[int] = []
    for a, b in pairs.tolist():  # position(b) = position(a) + 1
        ra, oa = find(a)
        rb, ob = find(b)
        if ra == rb:
            if ob - oa != 1:
                winding.append(ra)
        else:
            parent[rb], offset[rb] = ra, oa + 1 - ob
    if not winding:
        return out
    roots = {find(w)[0] for w in winding}
    keep = np.zeros(n + 1, bool)
    for node in np.unique(pairs).tolist():
        keep[node] = find(node)[0] in roots
    return keep[lab]
