r"""Per-voxel coefficients, face conductances and interface faces on the voxel grid.

Discretisation (cell-centred finite volumes, one unknown per voxel)
-------------------------------------------------------------------
A voxel ``p`` with edge lengths ``(h0, h1, h2)`` exchanges flux with its face
neighbour ``q`` along axis ``a`` through the face of area ``A_a = V / h_a``
(``V = h0 h1 h2``). With coefficients ``k_p`` and ``k_q`` (diffusivity,
conductivity, ...), the two half-cells in series give the face conductance

.. math::

    g_{pq} = \frac{A_a}{h_a} \, k_{pq}, \qquad
    k_{pq} = \frac{2 k_p k_q}{k_p + k_q}
    \quad (0 \text{ when either is } 0),

the harmonic mean, which makes the flux ``g_pq (u_p - u_q)`` exact for a
piecewise-constant coefficient and continuous flux across the face (two-point
flux approximation). A Dirichlet value held *on* an outer face is half a voxel
away: ``g = k_p A_a / (h_a / 2)``.

Storage
-------
Conductances are stored on the full grid, one array per axis:
``g[a][i0, i1, i2]`` is the face between the voxel and its ``+1`` neighbour along
``a``. On a periodic axis the last layer holds the face across the seam (to index
0); on a non-periodic axis the last layer is zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from microbat.core.errors import InvalidInputError

__all__ = [
    "CoefficientClasses",
    "InterfaceFaces",
    "as_3d",
    "coefficient_classes",
    "coefficient_field",
    "face_areas",
    "face_conductances",
    "harmonic_mean",
    "interface_faces",
]


def as_3d(
    array: np.ndarray, voxel_size: Sequence[float]
) -> tuple[np.ndarray, tuple[float, float, float]]:
    """View a 2D image as 3D with one layer along a third axis of unit length.

    Parameters
    ----------
    array : ndarray, 2D or 3D
        Voxel array.
    voxel_size : sequence of float
        One edge length per axis of ``array`` (metres).

    Returns
    -------
    array3 : ndarray
        ``array`` (3D) or ``array[:, :, None]`` (2D).
    spacing : tuple of 3 float
        Voxel size with ``1.0`` m appended for a 2D image, so that fluxes of a 2D
        problem are per metre of depth and dimensionless ratios are unchanged.
    """
    h = tuple(float(v) for v in voxel_size)
    if array.ndim == 3 and len(h) == 3:
        return array, h  # type: ignore[return-value]
    if array.ndim == 2 and len(h) == 2:
        return array[:, :, None], (h[0], h[1], 1.0)
    raise InvalidInputError(
        f"expected a 2D or 3D array with one voxel size per axis, got shape "
        f"{array.shape} and voxel size {h}"
    )


def coefficient_field(
    labels: np.ndarray,
    values: Mapping[int, float],
    *,
    dtype: type | np.dtype = np.float64,
) -> np.ndarray:
    """Per-voxel coefficient from per-label values (labels not given get 0).

    Parameters
    ----------
    labels : ndarray of int
        Labelled voxel array.
    values : mapping of int to float
        Coefficient of each label (e.g. relative diffusivity, S/m). Real or
        complex; negative or non-finite values are refused.
    dtype : dtype, default float64
        Output dtype (complex for frequency-domain problems).

    Returns
    -------
    ndarray
        Same shape as ``labels``.

    Examples
    --------
    >>> lab = np.array([[0, 1], [2, 0]], np.uint8)
    >>> coefficient_field(lab, {0: 1.0, 2: 0.1})
    array([[1. , 0. ],
           [0.1, 1. ]])
    """
    lut_size = max(int(labels.max(initial=0)) + 1, max(values, default=0) + 1)
    lut = np.zeros(lut_size, dtype=dtype)
    for lab, v in values.items():
        v = complex(v) if np.iscomplexobj(v) else float(v)
        if not np.isfinite(v) or (np.isrealobj(v) and v < 0):
            raise InvalidInputError(
                f"the coefficient of label {lab} is {v}; coefficients must be finite and "
                "non-negative (0 means the phase does not conduct)"
            )
        lut[int(lab)] = v
    return lut[labels]


@dataclass(frozen=True)
class CoefficientClasses:
    """A coefficient field held as a small class index per voxel.

    Few-phase problems (tortuosity, conductivity) have only a handful of distinct
    coefficients; storing a ``uint8`` class per voxel and one value per class lets
    the assembly keep face conductances as one-byte codes (see
    :func:`~microbat.fv.system.build_system`), a quarter of the memory and
    bandwidth of floating-point conductances.

    Attributes
    ----------
    classes : ndarray of uint8
        Class of every voxel; class 0 always has coefficient 0 (does not conduct).
    values : ndarray of float
        Coefficient of each class (``values[0] == 0``).
    """

    classes: np.ndarray
    values: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        """Grid shape."""
        return tuple(self.classes.shape)

    @property
    def ndim(self) -> int:
        """Number of grid dimensions."""
        return self.classes.ndim

    def expand(self, dtype: type | np.dtype = np.float64) -> np.ndarray:
        """The per-voxel coefficient array."""
        return self.values.astype(dtype)[self.classes]


def coefficient_classes(labels: np.ndarray, values: Mapping[int, float]) -> CoefficientClasses:
    """Class-coded coefficient field from per-label values (labels not given get 0).

    Parameters
    ----------
    labels : ndarray of int
        Labelled voxel array.
    values : mapping of int to float
        Coefficient of each label; finite and non-negative; at most 15 distinct
        non-zero values.

    Returns
    -------
    CoefficientClasses

    Examples
    --------
    >>> c = coefficient_classes(np.array([[0, 1], [2, 0]], np.uint8), {0: 1.0, 2: 0.1})
    >>> c.classes.tolist(), c.values.tolist()
    ([[1, 0], [2, 1]], [0.0, 1.0, 0.1])
    """
    distinct: list[float] = []
    lut_size = max(int(labels.max(initial=0)) + 1, max(values, default=0) + 1)
    lut = np.zeros(lut_size, np.uint8)
    for lab, v in values.items():
        v = float(v)
        if not np.isfinite(v) or v < 0:
            raise InvalidInputError(
                f"the coefficient of label {lab} is {v}; coefficients must be finite and "
                "non-negative (0 means the phase does not conduct)"
            )
        if v == 0:
            continue
        if v not in distinct:
            distinct.append(v)
        lut[int(lab)] = distinct.index(v) + 1
    if len(distinct) > 15:
        raise InvalidInputError(
            f"{len(distinct)} distinct coefficients; class coding holds at most 15, use "
            "coefficient_field for a general field"
        )
    return CoefficientClasses(lut[labels], np.array([0.0, *distinct]))


def harmonic_mean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Face coefficient ``2ab/(a+b)``, 0 where either side is 0."""
    s = a + b
    out = np.zeros(np.broadcast_shapes(a.shape, b.shape), dtype=np.result_type(a, b))
    np.divide(2 * a * b, s, out=out, where=(a != 0) & (b != 0))
    return out


def face_areas(voxel_size: Sequence[float]) -> tuple[float, ...]:
    """Area of a voxel face normal to each axis, ``V / h_a`` (m²)."""
    vol = float(np.prod(voxel_size))
    return tuple(vol / h for h in voxel_size)


def face_conductances(
    coefficient: np.ndarray,
    voxel_size: Sequence[float],
    *,
    periodic: Sequence[bool] = (False, False, False),
    dtype: type | np.dtype | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Conductances of all voxel faces by the harmonic mean (see module notes).

    Parameters
    ----------
    coefficient : ndarray, shape (n0, n1, n2)
        Per-voxel coefficient ``k`` (e.g. from :func:`coefficient_field`).
    voxel_size : sequence of 3 float
        Voxel edge lengths (m); anisotropic voxels are handled exactly.
    periodic : sequence of 3 bool
        Axes whose last layer connects to the first.
    dtype : dtype, optional
        Output dtype (default: that of ``coefficient``).

    Returns
    -------
    tuple of 3 ndarray
        ``g[a]`` with the shape of ``coefficient``: conductance (units of ``k`` × m)
        of the face between each voxel and its ``+1`` neighbour along axis ``a``.

    Notes
    -----
    Vectorised; one temporary of the grid size per axis. Cost O(N).
    """
    if coefficient.ndim != 3:
        raise InvalidInputError(f"face_conductances needs a 3D array, got {coefficient.ndim}D")
    dtype = np.dtype(dtype or coefficient.dtype)
    areas = face_areas(voxel_size)
    out = []
    for a in range(3):
        g = np.zeros(coefficient.shape, dtype=dtype)
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[a] = slice(0, -1)
        hi[a] = slice(1, None)
        g[tuple(lo)] = harmonic_mean(coefficient[tuple(lo)], coefficient[tuple(hi)])
        if periodic[a] and coefficient.shape[a] > 1:
            last = [slice(None)] * 3
            first = [slice(None)] * 3
            last[a] = slice(-1, None)
            first[a] = slice(0, 1)
            g[tuple(last)] = harmonic_mean(coefficient[tuple(last)], coefficient[tuple(first)])
        g *= areas[a] / voxel_size[a]
        out.append(g)
    return out[0], out[1], out[2]


@dataclass(frozen=True)
class InterfaceFaces:
    """Voxel faces shared by two groups of phases.

    Attributes
    ----------
    side_a, side_b : ndarray of intp
        Flat (C-order) voxel indices on the ``a`` side and the ``b`` side of each face.
    axis : ndarray of int8
        Axis normal to each face.
    area : ndarray of float
        Area of each face (m²).
    """

    side_a: np.ndarray
    side_b: np.ndarray
    axis: np.ndarray
    area: np.ndarray

    @property
    def n_faces(self) -> int:
        """Number of interface faces."""
        return int(self.side_a.size)

    @property
    def total_area(self) -> float:
        """Total interface area (m²)."""
        return float(self.area.sum())


def interface_faces(
    labels: np.ndarray,
    phases_a: Sequence[int],
    phases_b: Sequence[int],
    voxel_size: Sequence[float],
    *,
    periodic: Sequence[bool] = (False, False, False),
) -> InterfaceFaces:
    """List the faces between voxels of label set ``a`` and label set ``b``.

    These are the faces where interfacial terms act (Butler–Volmer reaction
    current, double-layer capacitance, contact resistance): a resolved
    electrochemistry model couples the unknown of ``side_a[f]`` to that of
    ``side_b[f]`` through a face of area ``area[f]``.

    Parameters
    ----------
    labels : ndarray of int, 3D
        Labelled voxel array.
    phases_a, phases_b : sequence of int
        Labels of the two groups (disjoint).
    voxel_size : sequence of 3 float
        Voxel edge lengths (m).
    periodic : sequence of 3 bool
        Count faces across the seam of periodic axes.

    Returns
    -------
    InterfaceFaces

    Examples
    --------
    >>> lab = np.zeros((2, 1, 1), np.uint8); lab[1] = 1
    >>> f = interface_faces(lab, [0], [1], (1e-6, 1e-6, 1e-6))
    >>> f.n_faces, f.total_area
    (1, 1e-12)
    """
    if labels.ndim != 3:
        raise InvalidInputError("interface_faces needs a 3D labelled array")
    if set(phases_a) & set(phases_b):
        raise InvalidInputError("the two phase groups of an interface must be disjoint")
    lut_n = int(max(labels.max(initial=0), *phases_a, *phases_b)) + 1
    lut = np.zeros(lut_n, np.int8)
    lut[list(phases_a)] = 1
    lut[list(phases_b)] = 2
    grp = lut[labels]
    idx = np.arange(labels.size, dtype=np.intp).reshape(labels.shape)
    areas = face_areas(voxel_size)
    sa, sb, ax, ar = [], [], [], []
    for a in range(3):
        if labels.shape[a] < 2:
            continue
        g0 = grp
        g1 = np.roll(grp, -1, axis=a)
        i0 = idx
        i1 = np.roll(idx, -1, axis=a)
        valid = np.ones(labels.shape, bool)
        if not periodic[a]:
            sl = [slice(None)] * 3
            sl[a] = slice(-1, None)
            valid[tuple(sl)] = False
        ab = valid & (g0 == 1) & (g1 == 2)
        ba = valid & (g0 == 2) & (g1 == 1)
        sa.extend([i0[ab], i1[ba]])
        sb.extend([i1[ab], i0[ba]])
        n = int(ab.sum() + ba.sum())
        ax.append(np.full(n, a, np.int8))
        ar.append(np.full(n, areas[a]))
    if not sa:
        empty = np.zeros(0, np.intp)
        return InterfaceFaces(empty, empty, np.zeros(0, np.int8), np.zeros(0))
    return InterfaceFaces(
        np.concatenate(sa), np.concatenate(sb), np.concatenate(ax), np.concatenate(ar)
    )
