"""The scalable Newton solver (GMRES + block AMG) against the sparse direct solver."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from microbat import Microstructure
from microbat.cell.resolved import ResolvedOptions, simulate_discharge
from microbat.cell.resolved._krylov import BlockAMGSolver
from microbat.core.errors import InvalidInputError


def _packed(n: int = 12, seed: int = 3) -> Microstructure:
    """Random active spheres with a carbon-binder shell fraction in pore (0.5 µm voxels)."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    lab = np.zeros((n, n, n), np.uint8)
    zz, yy, xx = np.ogrid[:n, :n, :n]
    while np.count_nonzero(lab == 2) < 0.5 * n**3:
        c = rng.uniform(0, n, 3)
        lab[((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2) <= 2.5**2] = 2
    shell = ndimage.binary_dilation(lab == 2) & (lab == 0)
    lab[shell & (rng.random(lab.shape) < 0.3)] = 1
    return Microstructure(lab, voxel_size=0.5e-6, phases="pore=0,cbd=1,active=2")


@pytest.fixture(scope="module")
def pair():
    ms = _packed()
    base = {"max_steps": 14, "dt_initial_s": 20.0, "dt_max_s": 60.0}
    a = simulate_discharge(ms, c_rate=2.0, options=ResolvedOptions(linear_solver="direct", **base))
    b = simulate_discharge(ms, c_rate=2.0, options=ResolvedOptions(linear_solver="amg", **base))
    return a, b


def test_amg_matches_direct(pair):
    a, b = pair
    # the same converged states: same step sequence and voltages to Newton tolerance
    assert a.steps == b.steps == 14
    assert np.allclose(a.time_s, b.time_s, rtol=1e-9)
    assert np.max(np.abs(a.voltage_V - b.voltage_V)) < 1e-6
    for k in ("ohmic_electrolyte", "ohmic_solid", "reaction", "solid_diffusion"):
        assert np.allclose(a.breakdown_V[k], b.breakdown_V[k], rtol=1e-5, atol=1e-8)


def test_amg_conserves(pair):
    _, b = pair
    assert b.max_conservation_error < 1e-8
    assert b.timing["factorizations"] == 0  # no LU at all


def _system(n_e: int = 40, n_s: int = 30, n_a: int = 25, seed: int = 0):
    """A random system with the block structure (and signs) of the Newton Jacobian."""
    rng = np.random.default_rng(seed)
    n = 2 * n_e + n_s + n_a + 1

    def lap(m: int) -> sp.csr_matrix:
        A = sp.random(m, m, density=0.15, random_state=rng)
        A = A + A.T
        A.data[:] = rng.uniform(0.5, 2.0, A.data.size)
        A = -(A - sp.diags(A.diagonal()))
        return (A - sp.diags(np.asarray(A.sum(axis=1)).ravel())).tocsr()

    blocks = [
        [lap(n_e) + sp.eye(n_e) * 0.3, None, None, None, None],
        [0.2 * lap(n_e), lap(n_e) + sp.eye(n_e), -0.1 * sp.eye(n_e, n_s), None, None],
        [None, -0.1 * sp.eye(n_s, n_e), lap(n_s) + 0.2 * sp.eye(n_s), None, None],
        [None, -0.05 * sp.eye(n_a, n_e), 0.05 * sp.eye(n_a, n_s), lap(n_a) + sp.eye(n_a), None],
        [None, None, None, None, sp.csr_matrix([[1.0]])],
    ]
    J = sp.bmat(blocks, format="csr")
    rows, cols = [n - 1, 2 * n_e, n - 1], [2 * n_e, n - 1, n - 1]
    J = J + sp.csr_matrix(([0.01, 0.01, -0.01], (rows, cols)), shape=(n, n))
    return J.tocsr(), rng.normal(size=n), (n_e, n_s, n_a)


def test_block_preconditioner_solves_to_tolerance():
    J, b, (ne, ns, na) = _system()
    rs = np.full(J.shape[0], 2.0)
    cs = np.linspace(0.5, 1.5, J.shape[0])
    Js = sp.diags(rs) @ J @ sp.diags(cs)
    solver = BlockAMGSolver(ne, ns, na, rtol=1e-10)
    y = solver.solve(Js.tocsr(), b, rs, cs)
    ref = spla.spsolve(Js.tocsc(), b)
    assert np.linalg.norm(y - ref) / np.linalg.norm(ref) < 1e-8
    assert solver.stats.setups == 1 and solver.stats.iterations > 0
    # the hierarchy is kept for the next (slightly different) matrix
    y2 = solver.solve((1.01 * Js).tocsr(), b, rs, cs)
    assert np.allclose(y2, ref / 1.01, rtol=1e-7)
    assert solver.stats.setups == 1


def test_option_is_validated():
    with pytest.raises(InvalidInputError, match="krylov_rtol"):
        ResolvedOptions(linear_solver="amg", krylov_rtol=0.5)
    with pytest.raises(InvalidInputError, match="amg"):
        ResolvedOptions(linear_solver="cg")  # type: ignore[arg-type]
