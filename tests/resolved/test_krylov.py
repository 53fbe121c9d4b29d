"""The scalable Newton solver (GMRES + block AMG) against the sparse direct solver."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from microbat.cell.resolved import ResolvedOptions, simulate_discharge
from microbat.cell.resolved._krylov import BlockAMGSolver
from microbat.core.errors import InvalidInputError


@pytest.fixture(scope="module")
def pair(packed_electrode):
    ms = packed_electrode()
    base = {"max_steps": 14, "dt_initial_s": 20.0, "dt_max_s": 60.0}
    a = simulate_discharge(ms, c_rate=2.0, options=ResolvedOptions(linear_solver="direct", **base))
    b = simulate_discharge(ms, c_rate=2.0, options=ResolvedOptions(linear_solver="amg", **base))
    return a, b


def test_amg_matches_direct(pair):
    a, b = pair
    # the same converged states: same step sequence and voltages to Newton tolerance.
    # Newton stops at an estimated state error below 1e-6 (not one update later), so
    # the two solvers' states differ by ~1e-9 V, and each step size (0.9 dv_target /
    # |ΔV| of the last) by that over |ΔV|: measured 3.9e-8, 2.7e-9 V
    assert a.steps == b.steps == 14
    assert np.allclose(a.time_s, b.time_s, rtol=1e-6)
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


def test_fgmres_solves_to_the_true_residual():
    from microbat.cell.resolved._krylov import fgmres

    rng = np.random.default_rng(0)
    n = 400
    A = sp.random(n, n, density=0.01, random_state=1, format="csr")
    A = (A + sp.diags(np.abs(A).sum(axis=1).A1 + 1.0 + rng.random(n))).tocsr()
    b = rng.standard_normal(n)
    d = A.diagonal()
    work: list[np.ndarray] = []
    x, its, ok = fgmres(A, b, lambda r: r / d, rtol=1e-10, restart=5, work=work)
    assert ok and its > 5  # restarted at least once
    assert np.linalg.norm(b - A @ x) <= 1e-10 * np.linalg.norm(b)
    np.testing.assert_allclose(x, spla.spsolve(A.tocsc(), b), rtol=1e-8, atol=1e-12)
    # the basis is reused by the next solve
    bases = [id(v) for v in work]
    x2 = fgmres(A, 2 * b, lambda r: r / d, rtol=1e-10, restart=5, work=work)[0]
    assert [id(v) for v in work] == bases
    np.testing.assert_allclose(x2, 2 * x, rtol=1e-8, atol=1e-12)
    # zero right-hand side, and an iteration limit that is reported, not hidden
    assert fgmres(A, np.zeros(n), lambda r: r, rtol=1e-8)[1:] == (0, True)
    assert fgmres(A, b, lambda r: r, rtol=1e-14, maxiter=2)[2] is False


def test_jacobian_pattern_is_the_sum_of_its_terms():
    from microbat.cell.resolved._model import _Pattern

    rng = np.random.default_rng(2)
    n = 30
    L = sp.random(10, 10, density=0.3, random_state=3, format="csr")
    L.sort_indices()
    rows = rng.integers(0, n, 25)
    cols = rng.integers(0, n, 25)
    parts = [(rows, cols, rng.random(25)), (L, (5, 12), L.data), (L, (0, 0), 2 * L.data)]
    ref = sp.coo_matrix((parts[0][2], (rows, cols)), shape=(n, n)).tocsr()
    for mat, (r0, c0), v in parts[1:]:
        m = sp.csr_matrix((v, mat.indices, mat.indptr), shape=mat.shape).tocoo()
        ref = ref + sp.coo_matrix((m.data, (m.row + r0, m.col + c0)), shape=(n, n))
    pat = _Pattern(parts, n)
    J = pat.matrix(parts)
    np.testing.assert_allclose(J.toarray(), ref.toarray(), rtol=1e-14, atol=1e-15)
    rs, cs = rng.random(n), rng.random(n)
    np.testing.assert_allclose(
        pat.scaled(J, rs, cs).toarray(), (sp.diags(rs) @ ref @ sp.diags(cs)).toarray(), rtol=1e-13
    )
    assert pat.matches(parts)
    L2 = L.copy()
    L2.indices = L2.indices.copy()
    L2.indices[0] = (L2.indices[0] + 1) % 10
    assert not pat.matches([parts[0], (L2, (5, 12), L2.data), parts[2]])


def test_capacity_does_not_depend_on_the_step_size(packed_electrode):
    # the end of discharge (here the surface-stoichiometry event) is interpolated
    # within the last step; 22 steps of up to 50 mV against 94 of up to 10 mV
    ms = packed_electrode(8)
    q = [
        simulate_discharge(
            ms,
            c_rate=2.0,
            options=ResolvedOptions(dv_target_V=dv, max_step_fraction=frac),
            snapshot_times=(),
        )
        for dv, frac in ((0.01, 1 / 30), (0.05, 0.1))
    ]
    assert all(r.complete for r in q)
    assert q[1].steps < q[0].steps / 3
    assert abs(q[1].capacity_Ah / q[0].capacity_Ah - 1) < 0.015  # measured 0.69 %


def test_submatrix_maps_match_scipy_indexing():
    from microbat.cell.resolved._krylov import _Sub

    J, _, (ne, ns, _) = _system()
    n = J.shape[0]
    E = slice(0, ne)
    C = slice(2 * ne + ns, n - 1)
    ip = np.r_[np.arange(ne, 2 * ne + ns), n - 1]
    for rows, cols in ((E, E), (ip, C), (C, ip), (ip, E), (ip, ip)):
        sub = _Sub(J, rows, cols)
        ref = J[rows][:, cols]
        assert (abs(sub(J) - ref)).max() == 0.0
        # any matrix on the same pattern: the gather follows its data
        J2 = J.copy()
        J2.data = np.random.default_rng(1).normal(size=J.nnz)
        assert (abs(sub(J2) - J2[rows][:, cols])).max() == 0.0
    # the symmetric part on a symmetric pattern is one gather (its permutation kept)
    sym = _Sub(J, C, C, symmetric=True)
    assert sym.perm is not None
    M = J[C][:, C]
    assert abs(sym.symmetric_part(J) - 0.5 * (M + M.T)).max() < 1e-15
    # a non-symmetric pattern falls back to SciPy's transpose
    Jn = J.tolil()
    Jn[n - 3, n - 2] = 0.7  # one entry without its mirror
    Jn = Jn.tocsr()
    sym = _Sub(Jn, C, C, symmetric=True)
    assert sym.perm is None
    M = Jn[C][:, C]
    assert abs(sym.symmetric_part(Jn) - 0.5 * (M + M.T)).max() < 1e-15


def test_relative_row_change():
    from microbat.cell.resolved._krylov import _change

    A = sp.csr_matrix(np.array([[4.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 2.0]]))
    M = A.copy()
    M.data = M.data.copy()
    assert _change(A, M) == 0.0
    M[2, 2] = 2.5  # row 2: |Δ| = 0.5 against a diagonal of 2.5
    assert _change(A, M) == pytest.approx(0.2)
    # a different pattern (an entry dropped) takes the general path
    M2 = sp.csr_matrix(np.array([[4.0, -1.0, 0.0], [-1.0, 4.0, 0.0], [0.0, 0.0, 2.0]]))
    assert _change(A, M2) == pytest.approx(0.5)


def test_single_precision_cycle_is_the_same_preconditioner():
    import pyamg

    from microbat.cell.resolved._krylov import _prepare_cycle, _vcycle

    A = pyamg.gallery.poisson((14, 14, 14), format="csr")
    A = (A + sp.diags(np.linspace(0.01, 0.1, A.shape[0]))).tocsr()
    b = np.random.default_rng(2).normal(size=A.shape[0])
    z = {}
    for prec in (np.float64, np.float32):
        ml = pyamg.ruge_stuben_solver(A, max_coarse=100)
        _prepare_cycle(ml, prec)
        z[prec] = _vcycle(ml, b)
        assert z[prec].dtype == np.float64
    # the cycle in single precision differs from the double one at its round-off
    rel = np.linalg.norm(z[np.float32] - z[np.float64]) / np.linalg.norm(z[np.float64])
    assert rel < 1e-5
    # and it is a real preconditioner: one cycle reduces the residual
    assert np.linalg.norm(b - A @ z[np.float32]) < 0.5 * np.linalg.norm(b)


def test_blocks_refresh_only_when_their_operator_changed():
    J, b, (ne, ns, na) = _system()
    n = J.shape[0]
    rs = np.ones(n)
    cs = np.ones(n)
    solver = BlockAMGSolver(ne, ns, na, rtol=1e-10)
    solver.solve(J, b, rs, cs)
    first = solver._ml
    # a new step with the same Jacobian: nothing to refresh
    solver.new_step()
    solver.solve(J, b, rs, cs)
    assert solver.stats.refreshes == 1 and solver.stats.block_refreshes == 0
    assert all(a is c for a, c in zip(solver._ml, first, strict=True))
    # the lithium block's diagonal grows by half (a shorter step): only it is refreshed
    C = np.arange(2 * ne + ns, n - 1)
    J2 = (J + sp.csr_matrix((0.5 * J.diagonal()[C], (C, C)), shape=J.shape)).tocsr()
    solver.new_step()
    y = solver.solve(J2, b, rs, cs)
    assert solver.stats.block_refreshes == 1
    assert solver._ml[0] is first[0] and solver._ml[1] is first[1]
    assert solver._ml[2] is not first[2]
    ref = spla.spsolve(J2.tocsc(), b)
    assert np.linalg.norm(y - ref) / np.linalg.norm(ref) < 1e-8


def test_cycle_residual_shortcut_matches_the_full_residual():
    # −U x after the forward sweep is the residual b − A x; a level with a zero
    # diagonal (the sweep skips that row) falls back to the full product
    import pyamg

    from microbat.cell.resolved._krylov import _prepare_cycle, _vcycle

    A = pyamg.gallery.poisson((10, 10, 10), format="csr")
    A = (A + sp.diags(np.linspace(0.01, 0.1, A.shape[0]))).tocsr()
    b = np.random.default_rng(4).normal(size=A.shape[0])
    ml = pyamg.ruge_stuben_solver(A, max_coarse=50)
    _prepare_cycle(ml, np.float64)
    z_short = _vcycle(ml, b)
    for op in ml._mb_ops:
        op.full_diagonal = False
    z_full = _vcycle(ml, b)
    np.testing.assert_allclose(z_short, z_full, rtol=1e-10, atol=1e-12)
    # a zero diagonal disables the shortcut on that level
    B = A.tolil()
    B[3, 3] = 0.0
    B = B.tocsr()
    mlb = pyamg.ruge_stuben_solver(A, max_coarse=50)
    mlb.levels[0].A = B
    _prepare_cycle(mlb, np.float64)
    assert not mlb._mb_ops[0].full_diagonal and mlb._mb_ops[1].full_diagonal
