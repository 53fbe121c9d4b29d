r"""Small-strain linear elasticity on the voxels: trilinear hexahedra, AMG-preconditioned CG.

The vector companion of the scalar finite-volume core: every solid voxel is one
8-node trilinear hexahedral element (Q1), the displacement lives on the voxel
corners, and pores are empty (their nodes exist only where a solid voxel touches
them, so pore surfaces are traction-free). Each voxel has its own material (Lamé
constants λ, μ per material index) and an isotropic eigenstrain ``ε* = e I``
(chemical swelling ``e = Ω (c − c_ref) / 3``, thermal expansion, ...).

Equations
---------
Find ``u`` with ``∫ ε(v) : C : (ε(u) − ε*) dV = 0`` for every admissible ``v``,
``C = λ I⊗I + 2 μ I``, ``σ = C : (ε(u) − ε*)``. In Voigt form (axis order 0, 1, 2,
then the shears 12, 02, 01 with engineering strains ``γ``):
``K u = f`` with ``K = Σ_e (λ_e K_λ + μ_e K_μ)`` and the eigenstrain load
``f = Σ_e (3λ_e + 2μ_e) e_e g``, ``g = ∫ Bᵀ m dV`` (``m = (1, 1, 1, 0, 0, 0)``).

Discretisation
--------------
* All elements are the same box ``h0 × h1 × h2``: the two unit element matrices
  ``K_λ = ∫ Bᵀ m mᵀ B dV`` and ``K_μ = ∫ Bᵀ diag(2, 2, 2, 1, 1, 1) B dV`` (24 × 24) and
  ``g`` are computed once by 2 × 2 × 2 Gauss quadrature (exact for Q1 on a box).
* The sparsity pattern is fixed by the geometry: node ``a`` couples with node
  ``a + d`` (``d ∈ {−1, 0, 1}³``) when one of the voxels they share is solid. It is
  found with shifted boolean arrays (27 offsets) and stored as a block-CSR matrix
  with 3 × 3 blocks (SciPy ``bsr_matrix``), whose blocks a parallel Numba kernel
  fills by rows (no Python loop over elements, no race).
* Stress per voxel at the element centre (for Q1 on a box the centre value of
  ``B`` is its volume average, so this is the voxel-mean stress).

Boundary conditions
-------------------
Per outer face of the grid (``faces[(axis, side)]``, side 0 = index 0, 1 = last):
``"clamped"`` (all components zero), ``"roller"`` (normal component zero) or
``"free"`` (traction-free, the default). Fixed components are eliminated
symmetrically (row and column zeroed, diagonal kept).

Floating clusters and mechanisms
--------------------------------
A face-connected (6-connected) solid cluster that does not touch a clamped face can
move rigidly (a free particle, or one hinged to the rest by an edge or a corner
node, where Q1 elements rotate freely). Its DOFs get a weak spring to ground,
``k = spring × mean(diag K)`` (default ``spring = 1e-8``), which makes ``K`` positive
definite. The eigenstrain load is orthogonal to every rigid motion of any union of
whole elements, so the springs only pick the solution without rigid motion; they
bias the stress of a floating body of ``L`` voxels by about ``spring · L²``
relative (``≤ 4e-5`` for ``L = 64``, measured in ``docs/validation/mechanics.md``).
With no clamped face at all, the global rigid-body motion of the solution is also
projected out.

Solver
------
Conjugate gradients preconditioned by PyAMG smoothed aggregation on the BSR matrix
with the six rigid-body modes as near-null space ``B`` (three translations, three
rotations in voxel units); the finest level is smoothed by the ℓ1 hybrid block
Gauss–Seidel sweep of [4]_ (forward before, backward after the coarse correction), the
coarser ones by PyAMG's block Gauss–Seidel. Stopping:
``‖f − K u‖ ≤ rtol ‖f‖``.

References
----------
.. [1] T. J. R. Hughes, *The Finite Element Method*, Dover (2000), ch. 3–4.
.. [2] P. Vaněk, J. Mandel, M. Brezina, "Algebraic multigrid by smoothed
   aggregation for second and fourth order elliptic problems", Computing 56 (1996)
   179–196.
.. [3] N. Bell, L. Olson, J. Schroder, "PyAMG: Algebraic multigrid solvers in
   Python", J. Open Source Softw. 7 (2022) 4142.
.. [4] A. H. Baker, R. D. Falgout, T. V. Kolev, U. M. Yang, "Multigrid smoothers for
   ultraparallel computing", SIAM J. Sci. Comput. 33 (2011) 2864–2887 (the ℓ1 hybrid
   Gauss–Seidel smoother of the finest level).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from microbat.core.errors import ConvergenceError, InvalidInputError
from microbat.core.threads import serial_below

__all__ = [
    "ElasticProblem",
    "ElasticSolution",
    "FaceCondition",
    "hex_element",
    "lame",
    "principal_stresses",
    "solve_elasticity",
    "stress_invariants",
]

FaceCondition = Literal["free", "clamped", "roller"]

#: Row blocks of the finest level's hybrid Gauss–Seidel smoother (at most; one per 4096
#: nodes below that): the sweep runs on up to this many threads.
SMOOTHER_BLOCKS = 16


def lame(young_modulus: float, poisson_ratio: float) -> tuple[float, float]:
    """Lamé constants ``(λ, μ)`` from Young's modulus (Pa) and Poisson's ratio.

    Raises
    ------
    InvalidInputError
        ``E ≤ 0`` or ``ν`` outside ``(−1, 0.5)``.
    """
    e, nu = float(young_modulus), float(poisson_ratio)
    if not (math.isfinite(e) and e > 0):
        raise InvalidInputError(f"Young's modulus must be positive and finite, got {e!r} Pa")
    if not (math.isfinite(nu) and -1.0 < nu < 0.5):
        raise InvalidInputError(
            f"Poisson's ratio must lie in (-1, 0.5) (0.5 is incompressible), got {nu!r}"
        )
    return e * nu / ((1 + nu) * (1 - 2 * nu)), e / (2 * (1 + nu))


# ============================================================== the element
@dataclass(frozen=True)
class HexElement:
    """Unit matrices of the trilinear box element.

    Attributes
    ----------
    kl, km : ndarray (24, 24)
        ``K_e = λ kl + μ km``; DOF ``3 l + c`` is component ``c`` of local node ``l``.
    g : ndarray (24,)
        ``∫ Bᵀ m dV``: the nodal forces of a unit isotropic stress ``σ = I`` (times −1).
    bc : ndarray (6, 24)
        Strain-displacement matrix at the element centre (Voigt: 00, 11, 22, 2·12,
        2·02, 2·01).
    volume : float
        ``h0 h1 h2``.
    """

    kl: np.ndarray
    km: np.ndarray
    g: np.ndarray
    bc: np.ndarray
    volume: float


def _bmatrix(xi: Sequence[float], h: Sequence[float]) -> np.ndarray:
    """Strain-displacement matrix (6 × 24) at local coordinates ``xi ∈ [0, 1]³``."""
    b = np.zeros((6, 24))
    for lnode in range(8):
        bits = ((lnode >> 2) & 1, (lnode >> 1) & 1, lnode & 1)
        f = [xi[d] if bits[d] else 1.0 - xi[d] for d in range(3)]
        df = [(1.0 if bits[d] else -1.0) / h[d] for d in range(3)]
        grad = (df[0] * f[1] * f[2], f[0] * df[1] * f[2], f[0] * f[1] * df[2])
        c = 3 * lnode
        b[0, c] = grad[0]
        b[1, c + 1] = grad[1]
        b[2, c + 2] = grad[2]
        b[3, c + 1], b[3, c + 2] = grad[2], grad[1]
        b[4, c], b[4, c + 2] = grad[2], grad[0]
        b[5, c], b[5, c + 1] = grad[1], grad[0]
    return b


@functools.lru_cache(maxsize=16)
def hex_element(voxel_size: tuple[float, float, float]) -> HexElement:
    """The element matrices of a voxel of edges ``voxel_size`` (cached per size).

    Parameters
    ----------
    voxel_size : tuple of 3 float
        Edges ``(h0, h1, h2)`` in metres.

    Returns
    -------
    HexElement
    """
    h = tuple(float(v) for v in voxel_size)
    vol = h[0] * h[1] * h[2]
    gp = (0.5 - 0.5 / math.sqrt(3.0), 0.5 + 0.5 / math.sqrt(3.0))
    m = np.array([1.0, 1, 1, 0, 0, 0])
    dmu = np.diag([2.0, 2, 2, 1, 1, 1])
    kl = np.zeros((24, 24))
    km = np.zeros((24, 24))
    g = np.zeros(24)
    w = vol / 8.0
    for x0 in gp:
        for x1 in gp:
            for x2 in gp:
                b = _bmatrix((x0, x1, x2), h)
                bm = b.T @ m
                kl += w * np.outer(bm, bm)
                km += w * (b.T @ dmu @ b)
                g += w * bm
    for arr in (kl, km, g):
        arr.setflags(write=False)
    bc = _bmatrix((0.5, 0.5, 0.5), h)
    bc.setflags(write=False)
    return HexElement(kl, km, g, bc, vol)


# ================================================================= the mesh
@dataclass(frozen=True)
class _Mesh:
    """Node numbering and block pattern of the solid voxels of one grid."""

    shape: tuple[int, int, int]
    voxel_size: tuple[float, float, float]
    phase: np.ndarray  # int32, flat over voxels; -1 void
    voxels: np.ndarray  # int64 flat indices of solid voxels
    node_map: np.ndarray  # int32, flat over nodes; -1 inactive
    nodes: np.ndarray  # int64 flat grid index of each node
    indptr: np.ndarray  # int64 (n_nodes + 1)
    indices: np.ndarray  # int32 (n_blocks)
    slot_of: np.ndarray  # int32 (n_nodes, 27), rank within the row, -1 not coupled

    @property
    def n_nodes(self) -> int:
        return int(self.nodes.size)

    def node_coords(self) -> np.ndarray:
        """Grid coordinates (in voxel units) of the nodes, ``(n_nodes, 3)``."""
        m = tuple(n + 1 for n in self.shape)
        return np.stack(np.unravel_index(self.nodes, m), axis=1).astype(np.float64)


def _build_mesh(phase: np.ndarray, voxel_size: tuple[float, float, float]) -> _Mesh:
    solid = phase >= 0
    shape = tuple(int(n) for n in phase.shape)
    n0, n1, n2 = shape
    sp = np.zeros((n0 + 2, n1 + 2, n2 + 2), bool)
    sp[1:-1, 1:-1, 1:-1] = solid
    m = (n0 + 1, n1 + 1, n2 + 1)

    def win(d0: int, d1: int, d2: int) -> np.ndarray:
        # voxel (i + d0, j + d1, k + d2) for every node (i, j, k), d in {-1, 0}
        return sp[1 + d0 : 1 + d0 + m[0], 1 + d1 : 1 + d1 + m[1], 1 + d2 : 1 + d2 + m[2]]

    active = np.zeros(m, bool)
    for d0 in (-1, 0):
        for d1 in (-1, 0):
            for d2 in (-1, 0):
                active |= win(d0, d1, d2)
    node_map = np.full(m, -1, np.int32)
    nodes = np.flatnonzero(active).astype(np.int64)
    node_map.reshape(-1)[nodes] = np.arange(nodes.size, dtype=np.int32)
    # coupling of node p with p + d: one of the shared voxels is solid (a Numba kernel
    # per node: the 27 × up-to-8 shifted whole-grid arrays took 4 s at 100³)
    from microbat.fv import _elastic_kernels as kern

    flat_phase = np.ascontiguousarray(phase.reshape(-1), dtype=np.int32)
    grid = np.asarray(shape, np.int64)
    slot_of = np.empty((nodes.size, 27), np.int32)
    indptr = np.zeros(nodes.size + 1, np.int64)
    with serial_below(int(nodes.size) * 27):
        kern.node_couplings(grid, flat_phase, nodes, slot_of, indptr[1:])
        np.cumsum(indptr, out=indptr)
        indices = np.empty(int(indptr[-1]), np.int32)
        kern.coupling_columns(grid, node_map.reshape(-1), nodes, slot_of, indptr, indices)
    return _Mesh(
        shape=(n0, n1, n2),
        voxel_size=voxel_size,
        phase=flat_phase,
        voxels=np.flatnonzero(solid).astype(np.int64),
        node_map=node_map.reshape(-1),
        nodes=nodes,
        indptr=indptr,
        indices=indices,
        slot_of=slot_of,
    )


# ============================================================== the solution
@dataclass
class ElasticSolution:
    """Displacements, stresses and energies of one elastic solve.

    Attributes
    ----------
    stress : ndarray of float32, shape (6, n0, n1, n2)
        Voxel-mean Cauchy stress in Pa, components ``00, 11, 22, 12, 02, 01`` in array
        axis order; NaN outside the solid.
    strain_energy : ndarray of float64, shape (n0, n1, n2)
        Stored strain energy ``½ ∫ (ε − ε*) : C : (ε − ε*) dV`` of each voxel in J
        (exact element integral); 0 outside the solid.
    displacement : ndarray, shape (n_nodes, 3)
        Nodal displacements in m (nodes of solid voxels only; see :attr:`node_index`).
    node_index : ndarray of int64
        Flat index on the node grid ``(n0 + 1, n1 + 1, n2 + 1)`` of each node.
    eigenstrain_work : float
        ``−∫ σ : ε* dV`` in J, which equals twice the total strain energy at
        equilibrium (a check independent of the mesh).
    iterations : int
        CG iterations.
    residual : float
        ``‖f − K u‖ / ‖f‖`` (0 for a zero load).
    converged : bool
    n_dofs : int
        Unknowns (three per node, fixed components included).
    floating : dict
        ``clusters`` (6-connected solid clusters), ``floating_clusters``,
        ``floating_voxels`` (those not touching a clamped face, held by springs),
        ``spring`` (relative stiffness) and ``spring_N_per_m``.
    timing : dict
        ``mesh_s``, ``assembly_s``, ``setup_s`` (AMG), ``solve_s``, ``stress_s``.
    details : dict
        AMG levels and operator complexity, the residual history.
    """

    stress: np.ndarray
    strain_energy: np.ndarray
    displacement: np.ndarray
    node_index: np.ndarray
    eigenstrain_work: float
    iterations: int
    residual: float
    converged: bool
    n_dofs: int
    floating: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def total_strain_energy(self) -> float:
        """Stored strain energy of the whole body in J."""
        return float(self.strain_energy.sum())


# ============================================================== the problem
def _check_faces(faces: Mapping[tuple[int, int], str] | None) -> dict[tuple[int, int], str]:
    out: dict[tuple[int, int], str] = {}
    for key, kind in (faces or {}).items():
        try:
            axis, side = (int(k) for k in key)
        except (TypeError, ValueError):
            raise InvalidInputError(f"a face is (axis, side), got {key!r}") from None
        if axis not in (0, 1, 2) or side not in (0, 1):
            raise InvalidInputError(f"a face is (axis 0-2, side 0 or 1), got {key!r}")
        if kind not in ("free", "clamped", "roller"):
            raise InvalidInputError(
                f"face condition {kind!r} on face {key}: use free, clamped or roller"
            )
        out[(axis, side)] = str(kind)
    return out


class ElasticProblem:
    """The stiffness matrix of one voxel geometry, its constraints and AMG hierarchy.

    Kept for several loads (the hierarchy is set up once, on the first solve).

    Parameters
    ----------
    phase : ndarray of int, shape (n0, n1, n2)
        Material index of each voxel (``0 … n_materials − 1``); negative = void.
    lam, mu : sequence of float
        Lamé constants per material index, Pa.
    voxel_size : float or sequence of 3 float
        Voxel edges in m.
    faces : mapping, optional
        ``{(axis, side): "clamped" | "roller" | "free"}``; unlisted faces are free.
    spring : float, default 1e-8
        Spring to ground on the DOFs of floating clusters, relative to the mean
        diagonal of ``K`` (see the module notes). 0 leaves them singular (CG then
        relies on the load being orthogonal to their rigid motions).

    Raises
    ------
    InvalidInputError
        No solid voxel, a material index without constants, non-positive μ, a bad
        face specification, or a voxel size that is not positive.
    """

    def __init__(
        self,
        phase: np.ndarray,
        lam: Sequence[float],
        mu: Sequence[float],
        voxel_size: float | Sequence[float],
        *,
        faces: Mapping[tuple[int, int], str] | None = None,
        spring: float = 1e-8,
        theta: float = 0.0,
    ) -> None:

        t0 = time.perf_counter()
        phase = np.asarray(phase)
        if phase.ndim != 3:
            raise InvalidInputError(f"the elasticity solver needs a 3D grid, got {phase.ndim}D")
        if not np.issubdtype(phase.dtype, np.integer):
            raise InvalidInputError(f"phase must hold integer material indices, not {phase.dtype}")
        h = np.broadcast_to(np.asarray(voxel_size, float), (3,))
        if not np.all(np.isfinite(h) & (h > 0)):
            raise InvalidInputError(f"voxel size must be positive, got {voxel_size!r}")
        self.voxel_size: tuple[float, float, float] = (float(h[0]), float(h[1]), float(h[2]))
        self.lam = np.asarray(lam, float).reshape(-1)
        self.mu = np.asarray(mu, float).reshape(-1)
        if self.lam.shape != self.mu.shape:
            raise InvalidInputError("lam and mu need one value per material")
        if not (np.all(np.isfinite(self.lam)) and np.all(np.isfinite(self.mu))):
            raise InvalidInputError("Lamé constants must be finite")
        if np.any(self.mu <= 0) or np.any(3 * self.lam + 2 * self.mu <= 0):
            raise InvalidInputError(
                "every material needs μ > 0 and a positive bulk modulus (E > 0, -1 < ν < 0.5)"
            )
        used = np.unique(phase[phase >= 0])
        if used.size == 0:
            raise InvalidInputError("the grid has no solid voxel; nothing to deform")
        if used[-1] >= self.lam.size:
            raise InvalidInputError(
                f"material index {int(used[-1])} has no elastic constants "
                f"({self.lam.size} material(s) given)"
            )
        self.faces = _check_faces(faces)
        self.spring = float(spring)
        self.theta = float(theta)
        ph = np.where(phase >= 0, phase, -1).astype(np.int32)
        self.mesh = _build_mesh(ph, self.voxel_size)
        self._indptr32 = self.mesh.indptr.astype(np.int32)
        t1 = time.perf_counter()
        self.fixed = self._fixed_dofs()
        self.floating = self._floating()
        self.K = self._assemble()
        self.timing = {"mesh_s": t1 - t0, "assembly_s": time.perf_counter() - t1}
        self._ml: Any = None
        self._cycle: _VCycle | None = None
        self.amg_info: dict[str, Any] = {}
        self.precision = np.float32

    def _assemble(self, dtype: Any = np.float64, spring: float | None = None) -> Any:
        """The constrained stiffness matrix (BSR, 3 × 3 blocks) on the fixed pattern.

        ``spring`` (relative to the mean diagonal) overrides :attr:`spring` for the
        floating DOFs (the single-precision preconditioner needs one it can represent).
        """
        import scipy.sparse as sp

        from microbat.fv import _elastic_kernels as kern

        mesh = self.mesh
        el = hex_element(self.voxel_size)
        data = np.zeros((mesh.indices.size, 3, 3), dtype=dtype)
        # fixed components are eliminated by the kernel (rows and columns zeroed, the
        # diagonal kept), which spares two passes over the whole matrix
        with serial_below(int(mesh.indices.size)):
            ke = self.lam[:, None, None] * el.kl + self.mu[:, None, None] * el.km
            kern.fill_bsr(
                np.asarray(mesh.shape, np.int64), mesh.node_map, mesh.nodes, mesh.phase,
                ke, mesh.indptr, mesh.slot_of, self.fixed, data,
            )  # fmt: skip
        n = mesh.n_nodes
        diag_blocks = self._diag_blocks()
        diag = np.einsum("bii->bi", data[diag_blocks])  # (n, 3)
        self.mean_diagonal = float(diag.mean())
        k = (self.spring if spring is None else spring) * self.mean_diagonal
        if spring is None:
            self.spring_N_per_m = k
        if k > 0 and self._float_nodes.any():
            fn = np.flatnonzero(self._float_nodes)
            for c in range(3):
                free = ~self.fixed[fn, c]
                data[diag_blocks[fn[free]], c, c] += k
        return sp.bsr_matrix((data, mesh.indices, self._indptr32), shape=(3 * n, 3 * n))

    # ----------------------------------------------------------- constraints
    def _diag_blocks(self) -> np.ndarray:
        """Block index of the diagonal block of every row."""
        mesh = self.mesh
        return mesh.indptr[:-1] + mesh.slot_of[:, 13]

    def _fixed_dofs(self) -> np.ndarray:
        mesh = self.mesh
        m = tuple(n + 1 for n in mesh.shape)
        coords = np.unravel_index(mesh.nodes, m)
        fixed = np.zeros((mesh.n_nodes, 3), bool)
        for (axis, side), kind in self.faces.items():
            on = coords[axis] == (0 if side == 0 else m[axis] - 1)
            if kind == "clamped":
                fixed[on] = True
            elif kind == "roller":
                fixed[on, axis] = True
        return fixed

    def _floating(self) -> dict[str, Any]:
        """6-connected solid clusters that touch no clamped face get springs."""
        from microbat.core.clusters import label_clusters

        mesh = self.mesh
        solid = (mesh.phase >= 0).reshape(mesh.shape)
        lab, nclu = label_clusters(solid, 6)
        anchored = np.zeros(nclu + 1, bool)
        for (axis, side), kind in self.faces.items():
            if kind != "clamped":
                continue
            layer = np.take(lab, 0 if side == 0 else -1, axis=axis)
            anchored[np.unique(layer)] = True
        anchored[0] = False
        floating_vox = solid & ~anchored[lab]
        sizes = np.bincount(lab.reshape(-1), minlength=nclu + 1)
        n_float = int(np.count_nonzero(~anchored[1:] & (sizes[1:] > 0)))
        # nodes of floating voxels
        m = tuple(n + 1 for n in mesh.shape)
        fn = np.zeros(m, bool)
        for d0 in (0, 1):
            for d1 in (0, 1):
                for d2 in (0, 1):
                    fn[
                        d0 : d0 + mesh.shape[0], d1 : d1 + mesh.shape[1], d2 : d2 + mesh.shape[2]
                    ] |= floating_vox
        self._float_nodes = fn.reshape(-1)[mesh.nodes]
        self._any_clamped = any(k == "clamped" for k in self.faces.values())
        return {
            "clusters": int(nclu),
            "floating_clusters": n_float,
            "floating_voxels": int(floating_vox.sum()),
            "spring": self.spring,
        }

    # ------------------------------------------------------------------ loads
    def eigenstrain_load(self, eigenstrain: np.ndarray) -> np.ndarray:
        """Nodal forces ``(n_nodes, 3)`` of an isotropic eigenstrain ``e`` per voxel."""
        from microbat.fv import _elastic_kernels as kern

        mesh = self.mesh
        el = hex_element(self.voxel_size)
        e = np.asarray(eigenstrain, float).reshape(-1)[mesh.voxels]
        p = mesh.phase[mesh.voxels]
        k3 = 3 * self.lam[p] + 2 * self.mu[p]
        fe = (k3 * e)[:, None] * el.g[None, :]
        f = np.zeros((mesh.n_nodes, 3))
        kern.scatter_element_vectors(
            np.asarray(mesh.shape, np.int64), mesh.node_map, mesh.voxels, fe, f
        )
        f[self.fixed] = 0.0
        return f

    def rigid_body_modes(self) -> np.ndarray:
        """The six rigid-body modes ``(3 n_nodes, 6)`` in voxel units (centred)."""
        x = self.mesh.node_coords()
        x -= x.mean(axis=0)
        n = x.shape[0]
        b = np.zeros((n, 3, 6))
        for c in range(3):
            b[:, c, c] = 1.0
        # rotations about axis 0, 1, 2: u = ω × x
        b[:, 1, 3], b[:, 2, 3] = -x[:, 2], x[:, 1]
        b[:, 0, 4], b[:, 2, 4] = x[:, 2], -x[:, 0]
        b[:, 0, 5], b[:, 1, 5] = -x[:, 1], x[:, 0]
        return b.reshape(3 * n, 6)

    def hierarchy(self) -> Any:
        """The smoothed-aggregation hierarchy (built on first use)."""
        if self._ml is None:
            from microbat.core.errors import require

            pyamg = require("pyamg")
            t0 = time.perf_counter()
            # The hierarchy is built in single precision (it only preconditions; its
            # products read half the bytes) while the double-precision operator is
            # released and rebuilt afterwards: the setup's peak memory is then the
            # single-precision operator plus PyAMG's temporaries.
            # Its springs are at least 1e-5 of the diagonal, which single precision
            # can hold (1e-8 is below its rounding): a preconditioner may differ from
            # the operator, the near-rigid modes it treats stiffer carry no load.
            self.K = None
            k32 = self._assemble(
                np.float32, spring=max(self.spring, 1e-5) if self.spring > 0 else 0.0
            )
            # The finest level's prolongator is the tentative one (plain aggregation),
            # the coarser levels' are smoothed: the Galerkin product A P of the finest
            # level with a smoothed P dominated the setup (PyAMG's single-threaded
            # block sparse products). Measured on the 100³ benchmark electrode
            # (docs/validation/mechanics.md): 68 instead of 54 CG iterations, but
            # 59 instead of 73 s of CPU time and 2.81 instead of 3.39 GB.
            jacobi = ("jacobi", {"omega": 4.0 / 3.0, "weighting": "local"})
            self._ml = pyamg.smoothed_aggregation_solver(
                k32,
                B=self.rigid_body_modes().astype(np.float32),
                symmetry="symmetric",
                strength=("symmetric", {"theta": self.theta}),
                smooth=[None] + [jacobi] * 9,
                # no PyAMG smoothers: the cycle is _VCycle's own (PyAMG's setup inverted
                # every level's diagonal blocks for nothing: 1 s at 100³)
                presmoother=None,
                postsmoother=None,
                improve_candidates=None,
                max_coarse=500,
                coarse_solver="splu",
            )
            del k32
            self.K = self._assemble()
            self.timing["setup_s"] = time.perf_counter() - t0
            self.amg_info = {
                "levels": len(self._ml.levels),
                "operator_complexity": float(self._ml.operator_complexity()),
                "unknowns_per_level": [int(lv.A.shape[0]) for lv in self._ml.levels],
            }
        return self._ml

    def preconditioner(self) -> _VCycle:
        """The V-cycle of :meth:`hierarchy` (built on first use)."""
        if self._cycle is None:
            ml = self.hierarchy()
            t0 = time.perf_counter()
            self._cycle = _VCycle(ml, self.mesh, self.precision)
            self.timing["setup_s"] += time.perf_counter() - t0
        return self._cycle

    # ------------------------------------------------------------------ solve
    def solve(
        self,
        eigenstrain: np.ndarray,
        *,
        rtol: float = 1e-8,
        maxiter: int = 1000,
        raise_on_failure: bool = True,
    ) -> ElasticSolution:
        """Displacements and stresses under an isotropic eigenstrain field.

        Parameters
        ----------
        eigenstrain : ndarray, shape (n0, n1, n2)
            ``e`` of ``ε* = e I`` per voxel (dimensionless; ignored outside the solid).
        rtol : float, default 1e-8
            Relative residual ``‖f − K u‖ / ‖f‖`` at convergence.
        maxiter : int, default 1000
            Largest number of CG iterations.
        raise_on_failure : bool, default True
            Raise :class:`~microbat.core.errors.ConvergenceError` when CG stops short.

        Returns
        -------
        ElasticSolution
        """
        from microbat.core.threads import single_threaded_blas

        mesh = self.mesh
        e = np.asarray(eigenstrain, float)
        if e.shape != mesh.shape:
            raise InvalidInputError(
                f"eigenstrain has shape {e.shape}, the grid {mesh.shape}; give one value per voxel"
            )
        if not np.all(np.isfinite(e.reshape(-1)[mesh.voxels])):
            raise InvalidInputError("the eigenstrain has NaN or infinite values in the solid")
        f = self.eigenstrain_load(e).reshape(-1)
        fnorm = float(np.linalg.norm(f))
        hist: list[float] = []
        t0 = time.perf_counter()
        with single_threaded_blas():
            if fnorm == 0.0:
                u = np.zeros_like(f)
                it, conv = 0, True
            else:
                cycle = self.preconditioner()
                t0 = time.perf_counter()
                # small grids run on one thread (core.threads.serial_below: threads
                # cost more than they bring below about 2²⁰ matrix blocks)
                with serial_below(int(self.mesh.indices.size)):
                    u, it, conv = _pcg(self.K, f, cycle, rtol, maxiter, hist)
        t1 = time.perf_counter()
        self.timing["solve_s"] = t1 - t0
        res = float(np.linalg.norm(f - self.K @ u) / fnorm) if fnorm > 0 else 0.0
        if not conv and raise_on_failure:
            raise ConvergenceError(
                f"elasticity CG did not reach rtol={rtol:g} in {maxiter} iterations "
                f"(relative residual {res:.2e}); raise maxiter or check for mechanisms"
            )
        u = u.reshape(-1, 3)
        if not self._any_clamped and not any(k == "roller" for k in self.faces.values()):
            u = self._remove_rigid(u)
        stress, energy, work = self._recover(u, e)
        self.timing["stress_s"] = time.perf_counter() - t1
        details: dict[str, Any] = {"residual_history": hist, **self.amg_info}
        return ElasticSolution(
            stress=stress,
            strain_energy=energy,
            displacement=u,
            node_index=mesh.nodes,
            eigenstrain_work=work,
            iterations=int(it),
            residual=res,
            converged=bool(conv),
            n_dofs=3 * mesh.n_nodes,
            floating={**self.floating, "spring_N_per_m": self.spring_N_per_m},
            timing=dict(self.timing),
            details=details,
        )

    def _remove_rigid(self, u: np.ndarray) -> np.ndarray:
        """Subtract the least-squares rigid-body motion (no clamped face at all)."""
        b = self.rigid_body_modes()
        q, _ = np.linalg.qr(b)
        flat = u.reshape(-1)
        return (flat - q @ (q.T @ flat)).reshape(-1, 3)

    def _recover(self, u: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Centre stresses (float32, NaN outside), exact element energies, −∫σ:ε*."""
        from microbat.fv import _elastic_kernels as kern

        mesh = self.mesh
        el = hex_element(self.voxel_size)
        nvox = int(np.prod(mesh.shape))
        stress = np.full((6, nvox), np.nan, np.float32)
        energy = np.zeros(nvox)
        work = 0.0
        shape = np.asarray(mesh.shape, np.int64)
        chunk = 1 << 18
        for s in range(0, mesh.voxels.size, chunk):
            vox = mesh.voxels[s : s + chunk]
            ue = np.empty((vox.size, 24))
            kern.gather_element_dofs(shape, mesh.node_map, vox, u, ue)
            p = mesh.phase[vox]
            lam, mu = self.lam[p], self.mu[p]
            k3 = 3 * lam + 2 * mu
            ev = e.reshape(-1)[vox]
            eps = ue @ el.bc.T  # (n, 6), engineering shears
            tr = eps[:, 0] + eps[:, 1] + eps[:, 2] - 3 * ev
            sig = 2 * mu[:, None] * eps
            sig[:, 3:] *= 0.5
            sig[:, :3] += (lam * tr - 2 * mu * ev)[:, None]
            stress[:, vox] = sig.T
            # exact element integrals: ½ uᵀKu − uᵀf + ½ ∫ ε*:C:ε*
            ukl = np.einsum("ij,ij->i", ue @ el.kl, ue)
            ukm = np.einsum("ij,ij->i", ue @ el.km, ue)
            ug = ue @ el.g  # ∫ tr ε dV
            w_el = 0.5 * (lam * ukl + mu * ukm) - k3 * ev * ug + 1.5 * k3 * ev**2 * el.volume
            energy[vox] = w_el
            # −∫ σ : ε* = −e ∫ tr σ = −e k3 (∫ tr ε − 3 e V)
            work += float(np.sum(-ev * k3 * (ug - 3 * ev * el.volume)))
        return stress.reshape((6, *mesh.shape)), energy.reshape(mesh.shape), work


class _VCycle:
    """One V-cycle of a smoothed-aggregation hierarchy, as the CG preconditioner.

    The finest level (3 × 3 blocks on the voxel nodes) is smoothed by the ℓ1 hybrid
    block Gauss–Seidel of Baker, Falgout, Kolev & Yang (2011) in single precision with
    a parallel Numba kernel: the rows are cut into :data:`SMOOTHER_BLOCKS` contiguous
    blocks (fixed by the problem size, not by the number of threads, so the result
    does not depend on it), each swept in natural order — a row's neighbours are
    still in cache, which made it 2–4 times faster than the former eight-colour
    sweep — while the couplings between blocks use the values from before the sweep
    and their absolute row sums are added to the diagonal (the ℓ1 term, which keeps
    the smoother convergent for any partition). Coarser levels use PyAMG's block
    Gauss–Seidel on single-precision copies, the coarsest an LU in double precision.
    One forward sweep before the coarse correction, one backward sweep after it (rows
    in reverse), so the cycle is symmetric. Single precision halves the bytes the
    bandwidth-bound sweeps read; the CG products stay in double precision.
    """

    def __init__(self, ml: Any, mesh: _Mesh, dtype: Any = np.float32) -> None:
        import scipy.sparse as sp
        from pyamg.util.utils import get_block_diag

        self.dtype = np.dtype(dtype)
        a0 = ml.levels[0].A  # the single-precision operator the hierarchy was built on
        self.A0 = (a0.indptr, a0.indices, np.ascontiguousarray(a0.data, dtype=self.dtype))
        from microbat.fv import _elastic_kernels as kern

        diag = (mesh.indptr[:-1] + mesh.slot_of[:, 13]).astype(np.int64)
        n = mesh.n_nodes
        nblk = int(min(SMOOTHER_BLOCKS, max(1, n // 4096)))
        self.bounds0 = np.linspace(0, n, nblk + 1).astype(np.int64)
        d = np.empty((n, 3, 3))
        kern.l1_block_diagonal(a0.indptr, a0.indices, self.A0[2], diag, self.bounds0, d)
        self.dinv0 = np.linalg.inv(d).astype(self.dtype)
        del d
        self._zeros0 = np.zeros((n, 3), self.dtype)
        self.levels: list[tuple[Any, Any, Any, np.ndarray, int]] = []
        # the transfers are PyAMG's own (block) matrices: a copy would cost as much memory
        # as they do and read as many bytes; the coarse operators become single-precision
        # copies and PyAMG's double-precision ones are dropped (the cycle does not use
        # them; ``ml.solve`` is not called on this hierarchy)
        for k, lv in enumerate(ml.levels[:-1]):
            P, R = lv.P, lv.R
            if k == 0:
                self.levels.append((None, P, R, np.empty(0), 3))
                continue
            Ak = lv.A.tobsr()
            bs = Ak.blocksize[0]
            if Ak.data.dtype != self.dtype:
                Ak = sp.bsr_matrix((Ak.data.astype(self.dtype), Ak.indices, Ak.indptr),
                                   shape=Ak.shape)  # fmt: skip
            Ak.sort_indices()
            dinv = np.ascontiguousarray(get_block_diag(Ak, blocksize=bs, inv_flag=True), self.dtype)
            self.levels.append((Ak, P, R, dinv, bs))
            lv.A = None
        Ac = ml.levels[-1].A
        if Ac.shape[0] <= 3000:
            import scipy.linalg as sla

            lu = sla.lu_factor(Ac.toarray().astype(np.float64), check_finite=False)
            self.coarse = lambda b: sla.lu_solve(lu, b, check_finite=False)
        else:  # pragma: no cover - max_coarse keeps the coarsest level small
            import scipy.sparse.linalg as spla

            self.coarse = spla.splu(Ac.tocsc().astype(np.float64)).solve

    def __call__(self, r: np.ndarray) -> np.ndarray:
        from pyamg.amg_core import block_gauss_seidel

        from microbat.fv import _elastic_kernels as kern

        if not self.levels:  # one level: the problem is small enough to solve directly
            return np.asarray(self.coarse(np.asarray(r, np.float64)), np.float64)
        dt = self.dtype
        ip, ix, dat = self.A0
        b0 = np.asarray(r, dtype=dt).reshape(-1, 3)
        x0 = np.zeros_like(b0)
        kern.block_gs(ip, ix, dat, self.dinv0, x0, self._zeros0, b0, self.bounds0, True)
        r0 = np.empty_like(b0)
        kern.bsr3_residual(ip, ix, dat, x0, b0, r0)
        xs: list[np.ndarray] = [x0]
        bs: list[np.ndarray] = [b0.reshape(-1)]
        bk = (self.levels[0][2] @ r0.reshape(-1)).astype(dt)
        for Ak, _P, R, dinv, blk in self.levels[1:]:
            bs.append(bk)
            x = np.zeros_like(bk)
            block_gauss_seidel(Ak.indptr, Ak.indices, Ak.data.reshape(-1), x, bk,
                               dinv.reshape(-1), 0, x.size // blk, 1, blk)  # fmt: skip
            xs.append(x)
            bk = (R @ (bk - Ak @ x)).astype(dt)
        xc = self.coarse(bk.astype(np.float64)).astype(dt)
        for lvl in range(len(self.levels) - 1, 0, -1):
            Ak, P, _R, dinv, blk = self.levels[lvl]
            x = xs[lvl]
            x += (P @ xc).astype(dt)
            block_gauss_seidel(Ak.indptr, Ak.indices, Ak.data.reshape(-1), x, bs[lvl],
                               dinv.reshape(-1), x.size // blk - 1, -1, -1, blk)  # fmt: skip
            xc = x
        x0 += (self.levels[0][1] @ xc).astype(dt).reshape(-1, 3)
        kern.block_gs(ip, ix, dat, self.dinv0, x0, x0.copy(), b0, self.bounds0, False)
        return x0.reshape(-1).astype(np.float64)


def _pcg(
    A: Any, b: np.ndarray, M: Any, rtol: float, maxiter: int, hist: list[float]
) -> tuple[np.ndarray, int, bool]:
    """CG preconditioned by ``M``; stops on the true residual ``‖b − A x‖ ≤ rtol ‖b‖``.

    ``A`` is a 3 × 3 BSR matrix applied by a parallel Numba kernel.
    """
    from microbat.fv import _elastic_kernels as kern

    ip, ix, data = A.indptr, A.indices, A.data
    x = np.zeros_like(b)
    r = b.copy()
    bnorm = float(np.linalg.norm(b))
    z = M(r)
    p = z.copy()
    rz = float(r @ z)
    q = np.empty_like(b)
    hist.append(1.0)
    for it in range(1, maxiter + 1):
        kern.bsr3_matvec(ip, ix, data, p.reshape(-1, 3), q.reshape(-1, 3))
        alpha = rz / float(p @ q)
        rr = kern.axpy_dot(x, r, p, q, alpha)
        rn = math.sqrt(rr) / bnorm
        hist.append(rn)
        if rn <= rtol:
            return x, it, True
        z = M(r)
        rz_new = float(r @ z)
        p *= rz_new / rz
        p += z
        rz = rz_new
    return x, maxiter, False


def solve_elasticity(
    phase: np.ndarray,
    lam: Sequence[float],
    mu: Sequence[float],
    eigenstrain: np.ndarray,
    voxel_size: float | Sequence[float],
    *,
    faces: Mapping[tuple[int, int], str] | None = None,
    spring: float = 1e-8,
    rtol: float = 1e-8,
    maxiter: int = 1000,
) -> ElasticSolution:
    """Solve one eigenstrain problem on the voxels (see :class:`ElasticProblem`).

    Parameters
    ----------
    phase : ndarray of int, shape (n0, n1, n2)
        Material index per voxel, negative for void.
    lam, mu : sequence of float
        Lamé constants per material (Pa); :func:`lame` converts from ``E, ν``.
    eigenstrain : ndarray, shape (n0, n1, n2)
        Isotropic eigenstrain ``e`` (``ε* = e I``) per voxel.
    voxel_size : float or sequence of 3 float
        Voxel edges in m.
    faces, spring, rtol, maxiter
        See :class:`ElasticProblem` and :meth:`ElasticProblem.solve`.

    Returns
    -------
    ElasticSolution

    Examples
    --------
    >>> import numpy as np
    >>> lam, mu = lame(100e9, 0.3)
    >>> phase = np.zeros((4, 4, 4), int)
    >>> sol = solve_elasticity(phase, [lam], [mu], np.full((4, 4, 4), 1e-3), 1e-6,
    ...                        faces={(a, s): "clamped" for a in range(3) for s in (0, 1)})
    >>> round(float(sol.stress[0].mean()) / (-100e9 * 1e-3 / (1 - 2 * 0.3)), 6)
    1.0
    """
    prob = ElasticProblem(phase, lam, mu, voxel_size, faces=faces, spring=spring)
    return prob.solve(eigenstrain, rtol=rtol, maxiter=maxiter)


# ========================================================== stress measures
def principal_stresses(stress: np.ndarray, *, chunk: int = 1 << 20) -> np.ndarray:
    """Principal stresses, largest first, of a Voigt stress field.

    Parameters
    ----------
    stress : ndarray, shape (6, ...)
        Components ``00, 11, 22, 12, 02, 01``.

    Returns
    -------
    ndarray of float32, shape (3, ...)
        ``σ1 ≥ σ2 ≥ σ3`` (NaN where the input is NaN).
    """
    s = np.asarray(stress)
    shape = s.shape[1:]
    flat = s.reshape(6, -1)
    out = np.full((3, flat.shape[1]), np.nan, np.float32)
    ok = np.flatnonzero(np.all(np.isfinite(flat), axis=0))
    for a in range(0, ok.size, chunk):
        idx = ok[a : a + chunk]
        v = flat[:, idx].astype(np.float64)
        t = np.empty((idx.size, 3, 3))
        t[:, 0, 0], t[:, 1, 1], t[:, 2, 2] = v[0], v[1], v[2]
        t[:, 1, 2] = t[:, 2, 1] = v[3]
        t[:, 0, 2] = t[:, 2, 0] = v[4]
        t[:, 0, 1] = t[:, 1, 0] = v[5]
        w = np.linalg.eigvalsh(t)  # ascending
        out[:, idx] = w[:, ::-1].T
    return out.reshape((3, *shape))


def stress_invariants(stress: np.ndarray) -> dict[str, np.ndarray]:
    """Von Mises, maximum principal and hydrostatic stress of a Voigt field (float32).

    Parameters
    ----------
    stress : ndarray, shape (6, ...)
        Components ``00, 11, 22, 12, 02, 01`` in Pa.

    Returns
    -------
    dict
        ``von_mises`` ``√(½[(σ00−σ11)² + (σ11−σ22)² + (σ22−σ00)²] + 3(σ12² + σ02² + σ01²))``,
        ``max_principal`` and ``min_principal`` (largest and smallest eigenvalue),
        ``hydrostatic`` (``tr σ / 3``).
    """
    s = np.asarray(stress, np.float64)
    vm = np.sqrt(
        0.5 * ((s[0] - s[1]) ** 2 + (s[1] - s[2]) ** 2 + (s[2] - s[0]) ** 2)
        + 3.0 * (s[3] ** 2 + s[4] ** 2 + s[5] ** 2)
    )
    p = principal_stresses(s)
    return {
        "von_mises": vm.astype(np.float32),
        "max_principal": p[0],
        "min_principal": p[2],
        "hydrostatic": ((s[0] + s[1] + s[2]) / 3.0).astype(np.float32),
    }
