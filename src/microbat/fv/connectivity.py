"""Which voxels take part in a finite-volume solve.

Only faces carry flux in a two-point finite-volume scheme, so voxels connect
through shared faces (6-connectivity in 3D), also across the seam of periodic
axes. A component that touches no Dirichlet boundary has a singular (floating)
block; one that touches a single Dirichlet side carries no flux between two
sides. These functions find the components so that the assembled operator can be
restricted to the voxels that matter, which keeps it non-singular.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

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
    from scipy import ndimage

    if mask.ndim != 3:
        raise InvalidInputError("components needs a 3D mask")
    structure = ndimage.generate_binary_structure(3, 1)
    lab, n = ndimage.label(mask, structure=structure, output=np.int32)
    if n == 0 or not any(periodic):
        return lab, int(n)
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    rows, cols = [], []
    for a in range(3):
        if not periodic[a] or mask.shape[a] < 2:
            continue
        first = np.take(lab, 0, axis=a).ravel()
        last = np.take(lab, -1, axis=a).ravel()
        both = (first > 0) & (last > 0)
        rows.append(first[both])
        cols.append(last[both])
    if not rows:
        return lab, int(n)
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    graph = sp.coo_matrix((np.ones(r.size, np.int8), (r, c)), shape=(n + 1, n + 1)).tocsr()
    _, which = connected_components(graph, directed=False)
    # relabel: component 0 (background) keeps 0; others consecutive from 1
    roots = which[1:]
    _, new = np.unique(roots, return_inverse=True)
    lut = np.zeros(n + 1, np.int32)
    lut[1:] = new.astype(np.int32) + 1
    return lut[lab], int(new.max()) + 1


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
        present = np.zeros(n + 1, bool)
        present[np.unique(np.take(labels, side, axis=axis))] = True
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
