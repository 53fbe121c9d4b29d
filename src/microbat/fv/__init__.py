"""The finite-volume core: one voxel discretisation shared by every PDE in microbat.

Per-voxel coefficients become face conductances (harmonic means, anisotropic
voxels), boundary conditions (Dirichlet on faces or layers, Neumann, periodic with
a jump) and extra terms assemble into a :class:`StructuredSystem`, which is solved
matrix-free by aggregation multigrid, or assembled into a SciPy sparse matrix for
PyAMG or a direct factorisation. See ``docs/fv.md``. The vector companion,
small-strain elasticity on trilinear voxel hexahedra, is :mod:`microbat.fv.elasticity`.

Names are loaded lazily from the submodules listed below.
"""

from microbat.core.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    ("grid", "connectivity", "system", "solvers", "multigrid", "elasticity"),
)
