"""The structured operator of :mod:`microbat.fv.system`: its diagonal and CSR assembly.

Private module below both :mod:`~microbat.fv.system` (which assembles systems) and
:mod:`~microbat.fv.multigrid` (whose coarsest level is factorised as a sparse
matrix), so that neither imports the other for it. :func:`structured_to_csr` is
public through :mod:`microbat.fv.system`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["structured_to_csr"]


def _slice(axis: int, index: int | slice) -> tuple[slice | int, ...]:
    sl: list[slice | int] = [slice(None)] * 3
    sl[axis] = index
    return tuple(sl)


def _shift_up(g: np.ndarray, axis: int) -> np.ndarray:
    """``g`` moved one layer towards +axis with a zero first layer (no wrap)."""
    out = np.zeros_like(g)
    out[_slice(axis, slice(1, None))] = g[_slice(axis, slice(0, -1))]
    return out


def _diagonal(ground: np.ndarray, conductances: Sequence[np.ndarray], periodic) -> np.ndarray:
    """``ground + Σ incident g`` on the full grid (float64 or complex)."""
    dt = np.result_type(ground.dtype, np.float64)
    d = ground.astype(dt)
    for a, g in enumerate(conductances):
        g = g.astype(dt, copy=False)
        d += g
        d += np.roll(g, 1, axis=a) if periodic[a] else _shift_up(g, a)
    return d


def structured_to_csr(
    ground: np.ndarray, conductances: Sequence[np.ndarray]
) -> tuple[object, np.ndarray]:
    """Assemble the sparse matrix of a structured operator on its active voxels.

    Parameters
    ----------
    ground : ndarray, 3D
        Diagonal terms other than faces (see :class:`~microbat.fv.system.StructuredSystem`).
    conductances : sequence of 3 ndarray
        Face conductances (``g[a]`` couples a voxel to its ``+1`` neighbour along
        ``a``, modulo the axis length; the seam of a non-periodic axis is 0).

    Returns
    -------
    A : scipy.sparse.csr_matrix
        Symmetric matrix ``diag - offdiag`` over the voxels whose diagonal
        ``ground + Σ g`` is non-zero.
    index : ndarray of intp
        Flat grid index of each row.
    """
    import scipy.sparse as sp

    shape = ground.shape
    diag = _diagonal(ground, conductances, (True, True, True))
    flat = diag.reshape(-1)
    index = np.flatnonzero(flat != 0)
    n = index.size
    pos = np.full(flat.size, -1, np.int64)
    pos[index] = np.arange(n)
    rows = [np.arange(n)]
    cols = [np.arange(n)]
    vals = [flat[index]]
    strides = (shape[1] * shape[2], shape[2], 1)
    for a, g in enumerate(conductances):
        gf = g.reshape(-1)
        faces = np.flatnonzero(gf != 0)
        if faces.size == 0:
            continue
        coord = (faces // strides[a]) % shape[a]
        nb = faces + strides[a]
        seam = coord == shape[a] - 1
        nb[seam] -= shape[a] * strides[a]
        p, q = pos[faces], pos[nb]
        ok = (p >= 0) & (q >= 0) & (p != q)
        p, q, v = p[ok], q[ok], gf[faces][ok]
        rows += [p, q]
        cols += [q, p]
        vals += [-v, -v]
    A = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )
    return A, index
