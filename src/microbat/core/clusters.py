"""Cluster labelling: the one kernel behind both connectivity modules.

:mod:`microbat.fv.connectivity` (face components of a solver mask, with periodic
seams) and :mod:`microbat.imaging.connectivity` (clusters of a phase with the
26/6 role rule, classed percolating / dead-end / isolated) label clusters here and
test here which clusters touch the faces of the image, so the two agree wherever
they overlap (face connectivity, no periodic axis).

Labels are :func:`scipy.ndimage.label` (``int32``, 0 = background, clusters numbered
from 1 in scan order); with periodic axes the clusters that meet across a seam are
merged and renumbered consecutively in order of their smallest label.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from microbat.core.errors import InvalidInputError

__all__ = ["face_touch", "label_clusters", "side_touch", "structure"]


def structure(ndim: int, connectivity: int) -> np.ndarray:
    """Structuring element for :func:`scipy.ndimage.label` with the given connectivity.

    Parameters
    ----------
    ndim : int
        Dimension of the image.
    connectivity : int
        Number of neighbours: ``2 ndim`` (faces: 4 in 2D, 6 in 3D), 18 (faces and
        edges, 3D only) or ``3^ndim − 1`` (all: 8 in 2D, 26 in 3D).

    Raises
    ------
    InvalidInputError
        A connectivity not defined for ``ndim``.
    """
    from scipy import ndimage as ndi

    rank = {2 * ndim: 1, 3**ndim - 1: ndim}
    if ndim == 3:
        rank[18] = 2
    if connectivity not in rank:
        raise InvalidInputError(
            f"connectivity {connectivity} is not defined for a {ndim}D image; use "
            f"{' or '.join(str(k) for k in sorted(rank))}"
        )
    return ndi.generate_binary_structure(ndim, rank[connectivity])


def label_clusters(
    mask: np.ndarray, connectivity: int, *, periodic: Sequence[bool] | None = None
) -> tuple[np.ndarray, int]:
    """Label the connected clusters of a mask.

    Parameters
    ----------
    mask : ndarray
        Voxels of the clusters (non-zero), any dimension.
    connectivity : int
        Neighbourhood (see :func:`structure`).
    periodic : sequence of bool, optional
        Per axis, whether the last layer touches the first; clusters meeting across
        such a seam (face to face) are one. Face connectivity only.

    Returns
    -------
    labels : ndarray of int32
        0 outside ``mask``, clusters numbered from 1 (consecutive).
    n : int
        Number of clusters.

    Raises
    ------
    InvalidInputError
        Bad connectivity, or periodic axes with a connectivity other than faces.
    """
    from scipy import ndimage as ndi

    lab = np.empty(mask.shape, dtype=np.int32)
    n = int(ndi.label(mask, structure=structure(mask.ndim, connectivity), output=lab))
    if periodic is None or n == 0 or not any(periodic):
        return lab, n
    if connectivity != 2 * mask.ndim:
        raise InvalidInputError(
            f"periodic axes need face connectivity ({2 * mask.ndim} in {mask.ndim}D), "
            f"got {connectivity}"
        )
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    rows, cols = [], []
    for a in range(mask.ndim):
        if not periodic[a] or mask.shape[a] < 2:
            continue
        first = np.take(lab, 0, axis=a).ravel()
        last = np.take(lab, -1, axis=a).ravel()
        both = (first > 0) & (last > 0)
        rows.append(first[both])
        cols.append(last[both])
    if not rows:
        return lab, n
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


def side_touch(labels: np.ndarray, n: int, axis: int, side: int) -> np.ndarray:
    """Which clusters have a voxel in one outer layer.

    Parameters
    ----------
    labels : ndarray of int
        Cluster labels (0 = background), e.g. from :func:`label_clusters`.
    n : int
        Largest label.
    axis : int
        Axis normal to the layer.
    side : int
        ``0`` for the first layer along ``axis``, ``-1`` for the last.

    Returns
    -------
    ndarray of bool, ``n + 1`` entries
        Indexed by label; entry 0 (background) is False.
    """
    out = np.zeros(n + 1, dtype=bool)
    out[np.take(labels, side, axis=axis).ravel()] = True
    out[0] = False
    return out


def face_touch(labels: np.ndarray, n: int, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Which clusters touch the first / last face along ``axis`` (see :func:`side_touch`)."""
    return side_touch(labels, n, axis, 0), side_touch(labels, n, axis, -1)
