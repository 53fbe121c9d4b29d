r"""Boundary conditions and assembly of the voxel finite-volume system.

Equations
---------
For a per-voxel coefficient ``k`` (diffusivity, conductivity, ...) the steady
balance of voxel ``p`` reads

.. math::

    \sum_{q \in N(p)} g_{pq} (u_p - u_q) + \sum_{B} g_{pB} (u_p - u_B)
    + d_p u_p = s_p + \sum_{N} j_N A_N,

with the face conductances ``g_pq`` of :func:`~microbat.fv.grid.face_conductances`,
Dirichlet faces ``B`` (value ``u_B``, conductance ``g_pB``), an optional extra
diagonal ``d_p`` (reaction, ``iωC`` of a double layer, an implicit time step
``C V/Δt``), a source ``s_p`` (units of flux, i.e. already multiplied by the
voxel volume) and Neumann fluxes ``j_N`` entering through outer faces of area
``A_N``. Outer faces without a condition are insulating (zero flux).

Boundary conventions
--------------------
``Dirichlet(at="face")``
    The value is held on the outer face of the boundary voxels, half a voxel
    from their centres: ``g_pB = k_p A / (h/2)``. The domain length between the
    two faces is ``L = n h`` (TauFactor's convention).
``Dirichlet(at="layer")``
    The conducting voxels of the first (or last) layer are held at the value and
    are not unknowns; the flux enters through the faces between that layer and
    the next. The distance between the two held layers is ``(n - 1) h``
    (PoreSpy's and PuMA's convention).
Periodic axes
    The last layer couples to the first. A ``jump`` adds a fixed potential
    difference across the seam (``u`` of the next period is ``u + jump``), which
    imposes a mean gradient for homogenisation.

Unknowns
--------
Only *active* voxels are unknowns; by default these are the conducting voxels of
components that reach a Dirichlet boundary or carry an extra diagonal (others
form singular blocks and carry no flux). A floating component that must be kept
(periodic homogenisation) is grounded at its first voxel, which is exact when
its right-hand side is balanced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from microbat.core.errors import InvalidInputError
from microbat.fv._operator import _diagonal, _slice, structured_to_csr
from microbat.fv.connectivity import components
from microbat.fv.grid import CoefficientClasses, face_areas, face_conductances, harmonic_mean

__all__ = [
    "Dirichlet",
    "Neumann",
    "StructuredSystem",
    "build_system",
    "structured_to_csr",
]


@dataclass(frozen=True)
class Dirichlet:
    """A fixed value on one outer side of the grid.

    Parameters
    ----------
    axis : int
        Axis normal to the side.
    side : {0, -1}
        ``0`` for the first layer along ``axis``, ``-1`` for the last.
    value : float, complex or ndarray
        Value held there (scalar or an array broadcastable to the side's plane).
    at : {"face", "layer"}
        Hold the value on the outer face (half a voxel outside the first centres)
        or on the first layer of voxels itself (see module notes).
    """

    axis: int
    side: int
    value: float | complex | np.ndarray = 0.0
    at: Literal["face", "layer"] = "face"


@dataclass(frozen=True)
class Neumann:
    """A prescribed flux density entering through one outer side.

    Parameters
    ----------
    axis : int
        Axis normal to the side.
    side : {0, -1}
        ``0`` for the first layer, ``-1`` for the last.
    flux : float or ndarray
        Flux per unit area entering the domain (units of ``k`` × field / m);
        scalar or an array broadcastable to the side's plane. Zero-flux sides need
        no condition: every side without one is insulating.
    """

    axis: int
    side: int
    flux: float | complex | np.ndarray = 0.0


@dataclass
class _BoundaryTerm:
    bc: Dirichlet
    conductance: np.ndarray  # plane, conductance to the held value
    layer: int  # index along bc.axis of the unknowns it couples
    value: np.ndarray  # plane (broadcast)
    held: np.ndarray | None = None  # plane mask of the held voxels (layer conditions)


@dataclass
class StructuredSystem:
    """An assembled finite-volume system on the voxel grid (matrix-free form).

    Attributes
    ----------
    shape : tuple of 3 int
        Grid shape.
    voxel_size : tuple of 3 float
        Voxel edge lengths (m).
    periodic : tuple of 3 bool
        Periodic axes.
    conductances : tuple of 3 ndarray
        Face conductances between active voxels (zero elsewhere), floating point
        or ``uint8`` codes into ``luts`` (see :meth:`conductance`).
    ground : ndarray
        Diagonal terms that are not faces between unknowns: Dirichlet faces and
        held layers, the extra ``diagonal``, grounding pins. The operator is
        applied in flux form, ``(A u)_p = ground_p u_p + Σ_q g_pq (u_p - u_q)``.
    rhs : ndarray
        Right-hand side.
    active : ndarray of bool
        Unknown voxels.
    boundaries : list
        Dirichlet terms (for flux evaluation and the held values of :meth:`field`).
    """

    shape: tuple[int, int, int]
    voxel_size: tuple[float, float, float]
    periodic: tuple[bool, bool, bool]
    conductances: tuple[np.ndarray, np.ndarray, np.ndarray]
    ground: np.ndarray
    rhs: np.ndarray
    active: np.ndarray
    boundaries: list[_BoundaryTerm] = field(default_factory=list)
    jump: tuple[float, float, float] = (0.0, 0.0, 0.0)
    luts: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @property
    def op(self) -> tuple[np.ndarray, ...]:
        """Arguments of the operator kernels: ground, conductances, look-up tables."""
        if self.luts is not None:
            return (self.ground, *self.conductances, *self.luts)
        dummy = np.ones(1, self.dtype)
        return (self.ground, *self.conductances, dummy, dummy, dummy)

    @property
    def diag(self) -> np.ndarray:
        """The operator diagonal ``ground + Σ g`` (float64 or complex; 0 off the unknowns)."""
        return _diagonal(self.ground, [self.conductance(a) for a in range(3)], self.periodic)

    def conductance(self, axis: int) -> np.ndarray:
        """Face conductances along ``axis`` as a floating-point array."""
        g = self.conductances[axis]
        return self.luts[axis][g] if self.luts is not None else g

    @property
    def dtype(self) -> np.dtype:
        """Floating-point type of the arrays."""
        return self.ground.dtype

    @property
    def n_unknowns(self) -> int:
        """Number of active voxels."""
        return int(np.count_nonzero(self.active))

    # ----------------------------------------------------------- operators
    def matvec(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``A x`` on the full grid (``x`` zero off the active voxels)."""
        out = np.empty_like(x) if out is None else out
        if np.iscomplexobj(x) or np.iscomplexobj(self.ground):
            out[...] = self.ground * x
            for a in range(3):
                g = self.conductance(a)
                d = x - np.roll(x, -1, axis=a)  # u_p - u_(p+1) across each face
                out += g * d - np.roll(g * d, 1, axis=a)
            return out
        from microbat.fv import _kernels

        _kernels.apply(*self.op, np.asarray(x, self.dtype), out)
        return out

    def residual(self, x: np.ndarray) -> np.ndarray:
        """``b - A x`` on the active voxels (zero elsewhere), products in float64."""
        if np.iscomplexobj(x) or np.iscomplexobj(self.ground):
            r = self.rhs - self.matvec(x)
            r[~self.active] = 0
            return r
        from microbat.fv import _kernels

        r = np.empty(self.shape, np.float64)
        _kernels.residual(*self.op, np.asarray(x, self.dtype), self.rhs, r)
        return r

    def to_sparse(self):
        """Assemble the operator restricted to the active voxels.

        Returns
        -------
        A : scipy.sparse.csr_matrix
            ``(n_unknowns, n_unknowns)``, symmetric.
        b : ndarray
            Right-hand side of the unknowns.
        index : ndarray of intp
            Flat (C-order) grid index of each unknown; scatter a solution back
            with :meth:`scatter`.
        """
        A, index = structured_to_csr(self.ground, [self.conductance(a) for a in range(3)])
        return A, self.rhs.reshape(-1)[index].copy(), index

    def scatter(self, values: np.ndarray, index: np.ndarray) -> np.ndarray:
        """Full-grid array from the values of the unknowns (zero elsewhere)."""
        out = np.zeros(self.shape, dtype=np.result_type(values.dtype, self.dtype))
        out.reshape(-1)[index] = values
        return out

    # ------------------------------------------------------------- fluxes
    def boundary_flux(self, x: np.ndarray, which: int) -> float | complex:
        """Total flux entering through Dirichlet term ``which`` (units of ``g`` × field)."""
        t = self.boundaries[which]
        plane = np.take(x, t.layer, axis=t.bc.axis)
        return _sum(t.conductance * (t.value - plane))

    def layer_fluxes(self, x: np.ndarray, axis: int) -> np.ndarray:
        """Flux along ``+axis`` through every plane of faces between voxels.

        Entry ``m`` is the total flux from layer ``m`` to layer ``m + 1`` (field ×
        conductance units). A non-periodic axis has ``n - 1`` planes; a periodic
        one ``n``, the last being the seam back to layer 0 (with the ``jump``).
        """
        n = self.shape[axis]
        count = n if (self.periodic[axis] and n > 1) else max(n - 1, 0)
        out = np.empty(count, dtype=np.result_type(x.dtype, np.float64))
        for m in range(count):
            out[m] = self.layer_flux_at(x, axis, m)
        return out

    def layer_flux_at(self, x: np.ndarray, axis: int, m: int) -> float | complex:
        """Flux from layer ``m`` to the next one along ``axis`` (see :meth:`layer_fluxes`)."""
        n = self.shape[axis]
        gm = np.take(self.conductances[axis], m, axis=axis)
        if self.luts is not None:
            gm = self.luts[axis][gm]
        nxt = (m + 1) % n
        diff = np.take(x, m, axis=axis) - np.take(x, nxt, axis=axis)
        if nxt == 0 and self.jump[axis] != 0:
            diff = diff - self.jump[axis]
        return _sum(gm * diff)

    def field(self, x: np.ndarray, *, fill: float = np.nan) -> np.ndarray:
        """The solution on the full grid with held values filled in.

        Voxels that are neither unknowns nor held get ``fill`` (NaN by default).
        """
        dt = np.result_type(x.dtype, np.float32)
        out = np.where(self.active, x, np.asarray(fill, dt)).astype(dt, copy=False)
        for t in self.boundaries:
            if t.held is not None:
                plane = out[_slice(t.bc.axis, t.bc.side)]
                plane[t.held] = np.broadcast_to(t.value, t.held.shape)[t.held]
        return out

    def multigrid(self, **options):
        """A :class:`~microbat.fv.multigrid.Multigrid` preconditioner for this system."""
        from microbat.fv.multigrid import Multigrid

        if np.iscomplexobj(self.ground):
            raise InvalidInputError(
                "the matrix-free multigrid handles real symmetric systems; solve complex "
                "systems with method='direct' or 'gmres'"
            )
        return Multigrid(self.ground, self.conductances, self.periodic, self.luts, **options)


def _sum(a: np.ndarray) -> float | complex:
    if np.iscomplexobj(a):
        return complex(np.sum(a, dtype=np.complex128))
    return float(np.sum(a, dtype=np.float64))


def _plane(shape: tuple[int, ...], axis: int) -> tuple[int, ...]:
    return tuple(n for a, n in enumerate(shape) if a != axis)


def build_system(
    coefficient: np.ndarray | CoefficientClasses,
    voxel_size: Sequence[float],
    *,
    dirichlet: Sequence[Dirichlet] = (),
    neumann: Sequence[Neumann] = (),
    periodic: Sequence[bool] = (False, False, False),
    jump: Sequence[float] = (0.0, 0.0, 0.0),
    active: np.ndarray | None = None,
    diagonal: np.ndarray | None = None,
    source: np.ndarray | None = None,
    dtype: type | np.dtype | None = None,
    compact: bool = True,
) -> StructuredSystem:
    """Assemble the finite-volume system of a per-voxel coefficient field.

    Parameters
    ----------
    coefficient : ndarray, shape (n0, n1, n2), or CoefficientClasses
        Per-voxel coefficient ``k`` (0 = does not conduct), real or complex; or a
        class-coded field (:func:`~microbat.fv.grid.coefficient_classes`), whose
        face conductances are then stored as one-byte codes.
    voxel_size : sequence of 3 float
        Voxel edge lengths (m).
    dirichlet : sequence of Dirichlet
        Held values on outer sides; ``at="layer"`` terms must all lie on one axis.
    neumann : sequence of Neumann
        Prescribed inward flux densities on outer sides.
    periodic : sequence of 3 bool
        Periodic axes (no Dirichlet or Neumann term on them).
    jump : sequence of 3 float
        Potential jump across the seam of each periodic axis.
    active : ndarray of bool, optional
        Unknown voxels. Default: conducting voxels of components that reach a
        Dirichlet side, or carry ``diagonal``; with neither (pure Neumann or
        periodic problems) every conducting component, grounded at its first voxel.
    diagonal : ndarray, optional
        Extra per-voxel diagonal term ``d_p`` (≥ 0 for real problems).
    source : ndarray, optional
        Per-voxel source ``s_p`` (already multiplied by the voxel volume).
    dtype : dtype, optional
        Floating type of the assembled arrays (default: that of ``coefficient``,
        float64 for class-coded fields). ``float32`` halves memory; the solvers
        accumulate sums in float64.
    compact : bool, default True
        With a class-coded ``coefficient``, keep the face conductances as one-byte
        codes (a quarter of the memory). ``False`` stores them as floating point,
        which the multigrid smoother runs through about 1.5x faster.

    Returns
    -------
    StructuredSystem

    Raises
    ------
    InvalidInputError
        Inconsistent boundary conditions or array shapes.

    Notes
    -----
    Vectorised NumPy, O(N) time; besides the result, a few grid-sized temporaries.

    Examples
    --------
    A uniform bar of 4 voxels held at 1 and 0 on its end faces carries the flux
    ``k A ΔU / L``:

    >>> from microbat.fv import solve
    >>> bcs = [Dirichlet(0, 0, 1.0), Dirichlet(0, -1, 0.0)]
    >>> system = build_system(np.ones((4, 1, 1)), (1.0, 1.0, 1.0), dirichlet=bcs)
    >>> x = solve(system, method="direct").x
    >>> round(system.boundary_flux(x, 0), 12)
    0.25
    """
    coded = isinstance(coefficient, CoefficientClasses)
    if coefficient.ndim != 3:
        raise InvalidInputError(
            f"build_system needs a 3D coefficient array, got {coefficient.ndim}D "
            "(use microbat.fv.as_3d for 2D images)"
        )
    shape: tuple[int, int, int] = tuple(coefficient.shape)  # type: ignore[assignment]
    h = tuple(float(v) for v in voxel_size)
    if len(h) != 3 or not all(np.isfinite(h)) or min(h) <= 0:
        raise InvalidInputError(f"voxel_size must be three positive lengths, got {voxel_size}")
    per = tuple(bool(p) for p in periodic)
    if coded:
        dtype = np.dtype(dtype or np.float64)
        classes = coefficient.classes
        kvals = np.asarray(coefficient.values, np.float64)
        conducting = classes != 0
    else:
        coefficient = np.asarray(coefficient)
        dtype = np.dtype(dtype or coefficient.dtype)
        conducting = coefficient != 0
    if dtype.kind not in "fc":
        dtype = np.dtype(np.float64)
    _check_bcs(shape, per, dirichlet, neumann)

    def kplane(side_axis: int, index: int) -> np.ndarray:
        if coded:
            return kvals[np.take(classes, index, axis=side_axis)]
        return np.take(coefficient, index, axis=side_axis)

    # voxels held by layer conditions
    fixed = None
    if any(bc.at == "layer" for bc in dirichlet):
        fixed = np.zeros(shape, bool)
        for bc in dirichlet:
            if bc.at == "layer":
                sl = _slice(bc.axis, bc.side)
                fixed[sl] = conducting[sl]
    grounded = False
    lab = None
    if active is None:
        free = conducting if fixed is None else conducting & ~fixed
        lab, n = components(free, periodic=per)
        keep = np.zeros(n + 1, bool)
        for bc in dirichlet:
            layer = bc.side if bc.at == "face" else (1 if bc.side == 0 else -2)
            plane = np.take(lab, layer, axis=bc.axis)
            if bc.at == "layer":
                plane = plane[np.take(fixed, bc.side, axis=bc.axis)]
            keep[np.unique(plane)] = True
        if diagonal is not None:
            keep[np.unique(lab[np.asarray(diagonal) != 0])] = True
        keep[0] = False
        grounded = not dirichlet and diagonal is None
        if grounded:
            keep[1:] = True
        active = keep[lab]
    else:
        active = np.asarray(active, bool)
        if active.shape != shape:
            raise InvalidInputError(f"active mask shape {active.shape} != grid shape {shape}")
        active = active & conducting
        if fixed is not None:
            active = active & ~fixed

    areas = face_areas(h)
    if coded:
        m = kvals.size
        luts = []
        for a in range(3):
            lut = np.zeros(256, dtype)
            c = np.arange(m * m)
            lut[: m * m] = harmonic_mean(kvals[c // m], kvals[c % m]) * (areas[a] / h[a])
            luts.append(lut)
        g = tuple(_face_codes(classes, m, a, per[a]) for a in range(3))
        luts_t: tuple[np.ndarray, ...] | None = tuple(luts)
    else:
        g = face_conductances(coefficient, h, periodic=per, dtype=dtype)
        luts_t = None

    def gvalue(a: int, arr: np.ndarray) -> np.ndarray:
        return luts_t[a][arr] if luts_t is not None else arr

    ground = np.zeros(shape, dtype)
    rhs = np.zeros(shape, dtype)
    boundaries: list[_BoundaryTerm] = []
    # couplings to held layers (before the conductances are masked to active pairs)
    for bc in dirichlet:
        if bc.at != "layer":
            continue
        a = bc.axis
        face = 0 if bc.side == 0 else shape[a] - 2
        layer = 1 if bc.side == 0 else shape[a] - 2
        gc = gvalue(a, np.take(g[a], face, axis=a)) * np.take(active, layer, axis=a)
        held = np.take(fixed, bc.side, axis=a)
        gc = (gc * held).astype(dtype)
        val = np.broadcast_to(np.asarray(bc.value, dtype), gc.shape)
        ground[_slice(a, layer)] += gc
        rhs[_slice(a, layer)] += gc * val
        boundaries.append(_BoundaryTerm(bc, gc, layer, val, held))
    for a in range(3):
        ga = g[a]
        if per[a]:
            ga *= active & np.roll(active, -1, axis=a)
        else:
            lo, hi = _slice(a, slice(0, -1)), _slice(a, slice(1, None))
            ga[lo] *= active[lo] & active[hi]
            ga[_slice(a, -1)] = 0
        if per[a] and jump[a] != 0 and shape[a] > 1:
            seam = gvalue(a, np.take(ga, -1, axis=a)) * dtype.type(jump[a])
            rhs[_slice(a, -1)] += seam
            rhs[_slice(a, 0)] -= seam
    for bc in dirichlet:
        if bc.at != "face":
            continue
        a = bc.axis
        kp = kplane(a, bc.side) * np.take(active, bc.side, axis=a)
        gc = ((2.0 * areas[a] / h[a]) * kp).astype(dtype)
        val = np.broadcast_to(np.asarray(bc.value, dtype), gc.shape)
        ground[_slice(a, bc.side)] += gc
        rhs[_slice(a, bc.side)] += gc * val
        boundaries.append(_BoundaryTerm(bc, gc, bc.side if bc.side == 0 else shape[a] - 1, val))
    for bc in neumann:
        a = bc.axis
        plane = np.take(active, bc.side, axis=a)
        rhs[_slice(a, bc.side)] += np.asarray(bc.flux, dtype) * areas[a] * plane
    if diagonal is not None:
        ground += np.asarray(diagonal, dtype) * active
    if source is not None:
        rhs += np.asarray(source, dtype) * active
    if grounded and lab is not None:
        # ground each component at its first voxel (exact for balanced right-hand sides)
        flat = lab.reshape(-1)
        idx = np.flatnonzero(flat)
        _, first = np.unique(flat[idx], return_index=True)
        pins = idx[first]
        scale = max(float(np.max(np.abs(gvalue(a, g[a])))) for a in range(3)) or 1.0
        ground.reshape(-1)[pins] += scale
    rhs[~active] = 0
    ground[~active] = 0
    if luts_t is not None and not compact:
        g = tuple(luts_t[a][g[a]] for a in range(3))
        luts_t = None
    return StructuredSystem(
        shape=shape,
        voxel_size=h,  # type: ignore[arg-type]
        periodic=per,  # type: ignore[arg-type]
        conductances=g,  # type: ignore[arg-type]
        ground=ground,
        rhs=rhs,
        active=active,
        boundaries=boundaries,
        jump=tuple(float(j) for j in jump),  # type: ignore[arg-type]
        luts=luts_t,  # type: ignore[arg-type]
    )


def _check_bcs(shape, per, dirichlet, neumann) -> None:
    seen: set[tuple[int, int]] = set()
    layer_axes = set()
    for bc in (*dirichlet, *neumann):
        if bc.axis not in (0, 1, 2) or bc.side not in (0, -1):
            raise InvalidInputError(
                f"{type(bc).__name__}(axis={bc.axis}, side={bc.side}): axis must be 0, 1 or 2 "
                "and side 0 (first layer) or -1 (last layer)"
            )
        if per[bc.axis]:
            raise InvalidInputError(
                f"axis {bc.axis} is periodic; a boundary condition on it has no outer side"
            )
        if (bc.axis, bc.side) in seen:
            raise InvalidInputError(f"two boundary conditions on axis {bc.axis}, side {bc.side}")
        seen.add((bc.axis, bc.side))
        if isinstance(bc, Dirichlet):
            if bc.at not in ("face", "layer"):
                raise InvalidInputError(f"Dirichlet at={bc.at!r}; use 'face' or 'layer'")
            if bc.at == "layer":
                layer_axes.add(bc.axis)
                if shape[bc.axis] < 3:
                    raise InvalidInputError(
                        f"a layer Dirichlet condition needs at least 3 layers along axis "
                        f"{bc.axis}, the grid has {shape[bc.axis]}"
                    )
    if len(layer_axes) > 1:
        raise InvalidInputError("Dirichlet(at='layer') conditions must all lie on one axis")


def _face_codes(classes: np.ndarray, m: int, axis: int, periodic: bool) -> np.ndarray:
    """One-byte code ``c_p * m + c_q`` of every face between a voxel and its +1 neighbour."""
    out = np.zeros(classes.shape, np.uint8)
    lo, hi = _slice(axis, slice(0, -1)), _slice(axis, slice(1, None))
    np.multiply(classes[lo], m, out=out[lo], dtype=np.uint8, casting="unsafe")
    out[lo] += classes[hi]
    if periodic and classes.shape[axis] > 1:
        last, first = _slice(axis, -1), _slice(axis, 0)
        out[last] = classes[last] * np.uint8(m) + classes[first]
    return out
