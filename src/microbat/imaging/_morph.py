"""Private helpers shared by :mod:`microbat.imaging.metrics` and ``connectivity``.

* Weighted marching-cubes configuration areas (the interface-area estimator).
* Phase groups and their digital connectivity (26 for fluid roles, 6 for the rest).
* The face-touch classification of clusters along an axis (the labelling itself,
  ``structure``, ``label_clusters`` and ``face_touch``, is :mod:`microbat.core.clusters`,
  shared with :mod:`microbat.fv.connectivity`, and re-exported here).

Nothing here is public API; names and signatures may change.
"""

from __future__ import annotations

import functools
import itertools
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from microbat.core.clusters import face_touch as face_touch
from microbat.core.clusters import label_clusters as label_clusters
from microbat.core.clusters import structure as structure
from microbat.core.errors import PhaseError
from microbat.core.microstructure import Microstructure
from microbat.core.phases import PhaseRole

# --------------------------------------------------------------------------
# Connectivity rule
# --------------------------------------------------------------------------
#: Roles whose phases are labelled with full (26- in 3D, 8- in 2D) connectivity:
#: the fluid-filled or empty space. Every other role (active, carbon-binder,
#: current collector, separator, solid electrolyte, other) uses face (6-/4-)
#: connectivity, so that a fluid path and a solid path can never cross each other
#: (the (26, 6) pair of digital topology).
FLUID_ROLES: frozenset[PhaseRole] = frozenset({PhaseRole.ELECTROLYTE, PhaseRole.GAS})


def full_connectivity(ndim: int) -> int:
    """Number of neighbours of full connectivity (26 in 3D, 8 in 2D)."""
    return 3**ndim - 1


def face_connectivity(ndim: int) -> int:
    """Number of neighbours of face connectivity (6 in 3D, 4 in 2D)."""
    return 2 * ndim


def connectivity_for_roles(roles: Iterable[PhaseRole], ndim: int) -> int:
    """Connectivity of a group of phases: full when every role is a fluid role."""
    roles = list(roles)
    if roles and all(r in FLUID_ROLES for r in roles):
        return full_connectivity(ndim)
    return face_connectivity(ndim)


@dataclass(frozen=True)
class Group:
    """A set of phases analysed together (one phase, a role, or all solids)."""

    name: str
    labels: tuple[int, ...]
    roles: tuple[PhaseRole, ...]
    connectivity: int

    def mask(self, labels: np.ndarray) -> np.ndarray:
        """Boolean mask of the group in a label array."""
        if len(self.labels) == 1:
            return labels == self.labels[0]
        lut = np.zeros(int(labels.max()) + 1 if labels.size else 1, dtype=bool)
        lut[[lab for lab in self.labels if lab < lut.size]] = True
        return lut[labels]


def resolve_groups(
    ms: Microstructure,
    phases: str | Sequence[str] | None,
    *,
    connectivity: int | None = None,
) -> list[Group]:
    """Turn a ``phases`` argument into groups.

    ``None`` gives every phase of the table on its own. Otherwise each item (a
    comma-separated string or a sequence) is a phase name (one group), a role
    (``"electrolyte"``: the union of the phases with that role, one group), or
    ``"solid"``: the union of every phase whose role conducts electrons
    (:attr:`PhaseRole.is_solid`). A phase name wins over a role or the ``"solid"``
    selector: in a table with a phase named ``solid``, ``"solid"`` is that phase.
    """
    if phases is None:
        items: list[str] = list(ms.phases.names)
    elif isinstance(phases, str):
        items = [s.strip() for s in phases.split(",") if s.strip()]
    else:
        items = [str(s).strip() for s in phases]
    if not items:
        raise PhaseError("no phase selected; give phase names, roles or 'solid'")
    groups: list[Group] = []
    for item in items:
        if item.lower() == "solid" and item not in ms.phases:
            found = tuple(p for p in ms.phases.values() if p.role.is_solid)
            if not found:
                raise PhaseError(
                    "'solid' selects the phases with an electron-conducting role (active, "
                    "carbon_binder, current_collector) but this table has none: "
                    f"{ms.phases.to_spec()}; name the phases instead"
                )
            name = "solid"
        else:
            found = ms.phases.resolve(item)
            name = item
        roles = tuple(p.role for p in found)
        conn = connectivity if connectivity is not None else connectivity_for_roles(roles, ms.ndim)
        structure(ms.ndim, conn)  # validate
        g = Group(name, tuple(p.label for p in found), roles, conn)
        if any(x.name == g.name for x in groups):
            raise PhaseError(f"phase {item!r} is selected twice")
        groups.append(g)
    return groups


# --------------------------------------------------------------------------
# Cluster labelling and face classification
# --------------------------------------------------------------------------
NONE, PERCOLATING, DEAD_END, ISOLATED = 0, 1, 2, 3


def classify_clusters(lab: np.ndarray, n: int, axis: int) -> np.ndarray:
    """Class of each cluster label (``uint8`` lookup of n+1 entries, index 0 = NONE)."""
    first, last = face_touch(lab, n, axis)
    cls = np.full(n + 1, ISOLATED, dtype=np.uint8)
    cls[first ^ last] = DEAD_END
    cls[first & last] = PERCOLATING
    cls[0] = NONE
    return cls


# --------------------------------------------------------------------------
# Interface areas: weighted marching-cubes configurations
# --------------------------------------------------------------------------
#: Weight of each configuration class (keyed by the canonical code: the smallest
#: code of its orbit under the 48 cube symmetries and complement). The half-cube
#: class (code 15, a flat face) keeps weight 1 so axis-aligned planes are exact;
#: the four other classes met on planes were fitted (least squares with a small
#: ridge towards a common factor, under the constraint of zero mean error) on 1500
#: isotropically oriented digital planes; classes never met on planes take the
#: common factor 0.897 that removes the mean bias of plain marching cubes.
CLASS_WEIGHTS: dict[int, float] = {1: 0.922, 3: 0.921, 7: 0.832, 15: 1.0, 23: 1.012}
DEFAULT_CLASS_WEIGHT = 0.897


def _cube(code: int) -> np.ndarray:
    """2x2x2 array of the corners of a configuration (bit b = corner (b>>2, b>>1, b) & 1)."""
    v = np.zeros((2, 2, 2))
    for b in range(8):
        if code >> b & 1:
            v[b >> 2 & 1, b >> 1 & 1, b & 1] = 1.0
    return v


def _code(cube: np.ndarray) -> int:
    return sum(int(cube[b >> 2 & 1, b >> 1 & 1, b & 1] > 0.5) << b for b in range(8))


def _symmetries(
    spacing: tuple[float, float, float],
) -> list[tuple[tuple[int, ...], tuple[bool, ...]]]:
    """Axis permutations (that keep the spacing) and flips: the symmetries of a cell."""
    h = np.asarray(spacing, dtype=float)
    out = []
    for perm in itertools.permutations(range(3)):
        if np.allclose(h[list(perm)], h, rtol=1e-9, atol=0.0):
            for flips in itertools.product((False, True), repeat=3):
                out.append((perm, flips))
    return out


@functools.lru_cache(maxsize=16)
def canonical_codes(spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """Canonical code of each of the 256 configurations.

    The smallest code of its orbit under the symmetries of the cell (all 48 for
    cubic voxels; those keeping the spacing otherwise) and complement.
    """
    sym = _symmetries(spacing)
    out = np.zeros(256, dtype=np.int64)
    for c in range(256):
        v = _cube(c)
        best = 255
        for perm, flips in sym:
            x = v.transpose(perm)
            for ax, f in enumerate(flips):
                if f:
                    x = np.flip(x, ax)
            best = min(best, _code(x), _code(1.0 - x))
        out[c] = best
    return out


@functools.lru_cache(maxsize=16)
def mc_table(spacing: tuple[float, float, float]) -> np.ndarray:
    """Marching-cubes area of each configuration, averaged with its complement's."""
    from skimage.measure import marching_cubes, mesh_surface_area

    raw = np.zeros(256)
    with warnings.catch_warnings():
        # scikit-image <= 0.26 sets ndarray.shape while decoding its tables, which
        # NumPy >= 2.5 deprecates; that is theirs to fix and does not affect areas
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"skimage\.")
        for c in range(1, 255):
            verts, faces, _, _ = marching_cubes(
                _cube(c), 0.5, spacing=spacing, method="lewiner", allow_degenerate=False
            )
            raw[c] = mesh_surface_area(verts, faces)
    table = 0.5 * (raw + raw[255 - np.arange(256)])
    table[0] = table[255] = 0.0
    return table


_FLAT_CODES = frozenset({15, 240, 51, 204, 85, 170})  # half-cube: a face on each side


def _plane_polygon_area(normal: np.ndarray, point: np.ndarray, hi: np.ndarray) -> float:
    """Area of the plane (normal, point) inside the box [0, hi]."""
    corners = np.array(list(itertools.product(*[(0.0, float(v)) for v in hi])))
    pts = []
    for i in range(8):
        for j in range(i + 1, 8):
            p, q = corners[i], corners[j]
            if np.count_nonzero(p != q) != 1:
                continue
            fp, fq = (p - point) @ normal, (q - point) @ normal
            if fp == 0.0:
                pts.append(p)
            elif fp * fq < 0.0:
                pts.append(p + fp / (fp - fq) * (q - p))
    if len(pts) < 3:
        return 0.0
    arr = np.array(pts)
    c = arr.mean(axis=0)
    e1 = arr[0] - c
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(normal, e1)
    arr = arr[np.argsort(np.arctan2((arr - c) @ e2, (arr - c) @ e1))]
    total = np.zeros(3)
    for k in range(len(arr)):
        total += np.cross(arr[k], arr[(k + 1) % len(arr)])
    return float(abs(total @ normal) / 2.0)


def plane_sample(
    spacing: tuple[float, float, float], n_planes: int, *, size: int = 20, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Configuration histograms and true areas of isotropically oriented digital planes.

    Each plane has a uniformly random normal and passes near the centre of a box
    of about ``size`` voxels of the coarsest spacing per axis; the histogram is
    over the cells between voxel centres and the true area is that of the plane
    inside the union of those cells. Returns ``(hists (n, 256), areas (n,))``.
    """
    h = np.asarray(spacing, dtype=float)
    shape = tuple(int(min(4 * size, np.ceil(size * h.max() / v))) for v in h)
    grid = [np.arange(n) * v for n, v in zip(shape, h, strict=True)]
    hi = np.array([(n - 1) * v for n, v in zip(shape, h, strict=True)])
    rng = np.random.default_rng(seed)
    hists = np.zeros((n_planes, 256))
    areas = np.zeros(n_planes)
    for i in range(n_planes):
        normal = rng.standard_normal(3)
        normal /= np.linalg.norm(normal)
        point = hi / 2 + rng.uniform(-0.5, 0.5, 3) * h
        side = (
            (grid[0][:, None, None] - point[0]) * normal[0]
            + (grid[1][None, :, None] - point[1]) * normal[1]
            + (grid[2][None, None, :] - point[2]) * normal[2]
        ) <= 0
        hists[i] = np.bincount(raw_codes(side).reshape(-1), minlength=256)
        areas[i] = _plane_polygon_area(normal, point, hi)
    return hists, areas


def fit_class_weights(
    spacing: tuple[float, float, float],
    *,
    n_planes: int = 400,
    ridge: float = 1e-3,
    seed: int = 0,
) -> dict[int, float]:
    """Fit the weight of each configuration class on isotropic digital planes.

    Flat (half-cube) classes keep weight 1 so axis-aligned planes stay exact.
    The other classes met on planes are fitted by least squares on the relative
    error of each plane, with a ridge pulling them towards the common factor
    ``kappa`` that zeroes the mean error alone, under the constraint that the mean
    relative error over the planes is zero. Classes not met on planes get
    ``kappa``. Returns ``{canonical code: weight}``.
    """
    table = mc_table(spacing)
    canon = canonical_codes(spacing)
    keys = sorted(set(canon.tolist()) - {0})
    hists, areas = plane_sample(spacing, n_planes, seed=seed)
    ok = areas > 0
    hists, areas = hists[ok], areas[ok]
    col = {k: i for i, k in enumerate(keys)}
    x = np.zeros((areas.size, len(keys)))
    for c in range(1, 255):
        x[:, col[int(canon[c])]] += hists[:, c] * table[c] / areas
    flat = [col[int(canon[c])] for c in _FLAT_CODES]
    flat = sorted(set(flat))
    y = 1.0 - x[:, flat].sum(axis=1)
    free = [i for i in range(len(keys)) if i not in flat]
    xf = x[:, free]
    kappa = float(y.mean() / xf.sum(axis=1).mean())
    used = [j for j in range(len(free)) if xf[:, j].any()]
    w = np.full(len(free), kappa)
    if used:
        xu = xf[:, used]
        n = areas.size
        m = len(used)
        mu = xu.mean(axis=0)
        kkt = np.zeros((m + 1, m + 1))
        kkt[:m, :m] = 2.0 * (xu.T @ xu + ridge * n * np.eye(m))
        kkt[:m, m] = mu
        kkt[m, :m] = mu
        rhs = np.r_[2.0 * (xu.T @ y + ridge * n * kappa), y.mean()]
        w[used] = np.linalg.solve(kkt, rhs)[:m]
    out = {keys[i]: 1.0 for i in flat}
    out.update({keys[free[j]]: float(w[j]) for j in range(len(free))})
    return out


@functools.lru_cache(maxsize=16)
def area_table(spacing: tuple[float, float, float], weighted: bool = True) -> np.ndarray:
    """Area (in the units of ``spacing`` squared) assigned to each configuration.

    The marching-cubes (Lewiner) surface of the single cell, at level 1/2 on the
    binary corner values, averaged with that of the complement (so a phase and its
    complement get the same area), times the weight of its class: the stored
    :data:`CLASS_WEIGHTS` for cubic voxels, weights fitted on isotropic planes
    with this spacing (:func:`fit_class_weights`, cached) otherwise.
    """
    table = mc_table(spacing).copy()
    if weighted:
        cubic = all(abs(v - spacing[0]) <= 1e-9 * spacing[0] for v in spacing)
        if cubic:
            canon = canonical_codes()
            w = np.array([CLASS_WEIGHTS.get(int(k), DEFAULT_CLASS_WEIGHT) for k in canon])
        else:
            canon = canonical_codes(spacing)
            fitted = fit_class_weights(spacing)
            w = np.array([fitted.get(int(k), 1.0) for k in canon])
        table *= w
    table[0] = table[255] = 0.0
    table.flags.writeable = False
    return table


def raw_codes(mask: np.ndarray) -> np.ndarray:
    """Configuration code of every 2x2x2 cell of a boolean volume (``uint8``)."""
    m = np.asarray(mask, dtype=np.uint8)
    n0, n1, n2 = (s - 1 for s in m.shape)
    codes = np.zeros((n0, n1, n2), dtype=np.uint8)
    tmp = np.empty_like(codes)
    for b in range(8):
        d0, d1, d2 = b >> 2 & 1, b >> 1 & 1, b & 1
        np.left_shift(m[d0 : d0 + n0, d1 : d1 + n1, d2 : d2 + n2], b, out=tmp)
        np.bitwise_or(codes, tmp, out=codes)
    return codes


def config_codes(mask: np.ndarray) -> np.ndarray:
    """Configuration code of every cell of the edge-padded mask (``uint8``).

    The mask is padded by one voxel on every side by repeating its faces, so the
    cells cover the whole volume and an interface meeting a face of the volume is
    continued straight through it (it is not closed there). Cell ``(i, j, k)``
    spans voxel centres ``i-1 .. i`` (etc.) of the original array.
    """
    return raw_codes(np.pad(np.asarray(mask, dtype=np.uint8), 1, mode="edge"))


def weighted_histogram(codes: np.ndarray) -> np.ndarray:
    """Histogram of cell codes, cells in the padding layer counted 1/2 per padded axis.

    A cell between the padding and the first voxel layer holds an extruded copy
    of the face configuration; half of it lies inside the volume. The weight of a
    cell is ``prod_k (1 - b_k / 2)`` with ``b_k`` = 1 on the two end layers of
    axis ``k``; expanded, the histogram is the plain one minus half the faces plus
    a quarter of the edges minus an eighth of the corners.
    """

    def hist(a: np.ndarray) -> np.ndarray:
        return np.bincount(np.asarray(a).reshape(-1), minlength=256).astype(np.float64)

    ends = [0, -1]
    h = hist(codes)
    for ax in range(3):
        sl = [slice(None)] * 3
        for e in ends:
            sl[ax] = e  # type: ignore[call-overload]
            h -= 0.5 * hist(codes[tuple(sl)])
    for a0, a1 in ((0, 1), (0, 2), (1, 2)):
        for e0 in ends:
            for e1 in ends:
                sl = [slice(None)] * 3
                sl[a0] = e0  # type: ignore[call-overload]
                sl[a1] = e1  # type: ignore[call-overload]
                h += 0.25 * hist(codes[tuple(sl)])
    for e in itertools.product(ends, repeat=3):
        h[int(codes[e])] -= 0.125
    return h
