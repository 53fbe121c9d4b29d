"""The threaded kernels of the resolved Krylov solver against SciPy and PyAMG."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from microbat.cell.resolved import _krylov as kry
from microbat.cell.resolved import _krylov_kernels as K


def _m_matrix(n: int, seed: int, *, symmetric: bool = True, dtype=np.float64) -> sp.csr_matrix:
    """A random sparse M-matrix: nonpositive couplings, diagonally dominant by a shift."""
    rng = np.random.default_rng(seed)
    W = sp.random(n, n, density=6.0 / n, random_state=rng, format="csr")
    W.setdiag(0.0)
    W.eliminate_zeros()
    W.data *= rng.uniform(0.1, 10.0, W.nnz)  # strongly varying couplings
    if symmetric:
        W = W + W.T
    shift = rng.uniform(1e-3, 1.0, n)
    A = sp.diags(np.asarray(W.sum(axis=1)).ravel() + shift) - W
    A = A.tocsr().astype(dtype)
    A.sort_indices()
    return A


def _grid_m_matrix(m: int, seed: int) -> sp.csr_matrix:
    """A 7-point voxel Laplacian of log-uniform face conductances (three decades) plus storage."""
    rng = np.random.default_rng(seed)
    n = m**3
    idx = np.arange(n).reshape(m, m, m)
    rows, cols = [], []
    for ax in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[ax], hi[ax] = slice(0, -1), slice(1, None)
        rows.append(idx[tuple(lo)].ravel())
        cols.append(idx[tuple(hi)].ravel())
    r, c = np.concatenate(rows), np.concatenate(cols)
    g = 10.0 ** rng.uniform(-1.5, 1.5, r.size)
    W = sp.csr_matrix((g, (r, c)), shape=(n, n))
    W = W + W.T
    A = (sp.diags(np.asarray(W.sum(axis=1)).ravel() + 1e-3) - W).tocsr()
    A.sort_indices()
    return A


def _csr(A):
    return K.unsigned(A.indptr), K.unsigned(A.indices), A.data


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matvec_matches_scipy(dtype):
    A = _m_matrix(3000, 1, symmetric=False, dtype=dtype)
    x = np.random.default_rng(2).normal(size=A.shape[0]).astype(dtype)
    ref = (A.astype(np.float64) @ x.astype(np.float64)).astype(dtype)
    y = K.csr_matvec(*_csr(A), x, np.empty_like(x), False, 7)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    scale = np.abs(A).astype(np.float64) @ np.abs(x).astype(np.float64)
    assert np.max(np.abs(y - ref) / scale) < tol
    y0 = np.random.default_rng(3).normal(size=A.shape[0]).astype(dtype)
    y2 = K.csr_matvec(*_csr(A), x, y0.copy(), True, 1)
    assert np.max(np.abs(y2 - (y0 + ref)) / (scale + np.abs(y0))) < tol


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_block_sweep_is_pyamg_gauss_seidel(dtype):
    from pyamg.amg_core import gauss_seidel

    A = _m_matrix(2000, 4, symmetric=False, dtype=dtype)
    n = A.shape[0]
    b = np.random.default_rng(5).normal(size=n).astype(dtype)
    bounds = K.row_blocks(A.indptr, 1)
    l1 = K.l1_offblock(*_csr(A), bounds, np.empty(n, dtype))
    assert np.all(l1 == 0)
    x_ref = np.zeros(n, dtype)
    gauss_seidel(A.indptr, A.indices, A.data, x_ref, b, 0, n, 1)
    x = np.zeros(n, dtype)
    K.hybrid_gs(*_csr(A), l1, x, x, b, bounds, True, True)
    assert np.array_equal(x, x_ref)  # the same operations in the same order
    gauss_seidel(A.indptr, A.indices, A.data, x_ref, b, n - 1, -1, -1)
    K.hybrid_gs(*_csr(A), l1, x, x.copy(), b, bounds, False, False)
    assert np.array_equal(x, x_ref)


def test_row_blocks_and_l1_terms():
    A = _m_matrix(1000, 6)
    bounds = K.row_blocks(A.indptr, 3)
    assert bounds[0] == 0 and bounds[-1] == A.shape[0] and np.all(np.diff(bounds) > 0)
    per_block = np.diff(A.indptr[bounds])
    assert per_block.max() < 1.1 * per_block.min()  # balanced by entries
    l1 = K.l1_offblock(*_csr(A), bounds, np.empty(A.shape[0]))
    blk = np.searchsorted(bounds, np.arange(A.shape[0]), side="right") - 1
    C = A.tocoo()
    off = blk[C.row] != blk[C.col]
    ref = np.bincount(C.row[off], np.abs(C.data[off]), minlength=A.shape[0])
    np.testing.assert_allclose(l1, ref, rtol=1e-14, atol=0)


@pytest.mark.parametrize("nblocks", [2, 3])
def test_hybrid_sweeps_reduce_the_error_monotonically(nblocks):
    # ℓ1 hybrid Gauss–Seidel converges in the energy norm for SPD matrices, whatever
    # the partition (Baker et al. 2011, Thm 6.2): every sweep must reduce ‖e‖_A
    A = _m_matrix(3000, 7)
    n = A.shape[0]
    rng = np.random.default_rng(8)
    x_true = rng.normal(size=n)
    b = A @ x_true
    bounds = K.row_blocks(A.indptr, nblocks)
    l1 = K.l1_offblock(*_csr(A), bounds, np.empty(n))
    assert np.all(l1[bounds[1:-1]] >= 0) and l1.sum() > 0

    def energy(x):
        e = x - x_true
        return float(np.sqrt(e @ (A @ e)))

    x = np.zeros(n)
    K.hybrid_gs(*_csr(A), l1, x, x, b, bounds, True, True)
    errs = [energy(np.zeros(n)), energy(x)]
    for k in range(20):
        K.hybrid_gs(*_csr(A), l1, x, x.copy(), b, bounds, k % 2 == 1, False)
        errs.append(energy(x))
    assert np.all(np.diff(errs) < 0)
    assert errs[-1] < 0.5 * errs[0]


@pytest.mark.parametrize("nblocks", [1, 2, 3])
def test_forward_residual_is_the_residual(nblocks):
    A = _m_matrix(2500, 9, symmetric=False)
    n = A.shape[0]
    b = np.random.default_rng(10).normal(size=n)
    bounds = K.row_blocks(A.indptr, nblocks)
    l1 = K.l1_offblock(*_csr(A), bounds, np.empty(n))
    x = np.zeros(n)
    K.hybrid_gs(*_csr(A), l1, x, x, b, bounds, True, True)
    U = sp.triu(A, k=1, format="csr")
    r = K.forward_residual(*_csr(U), *_csr(K.lower_offblock(A, bounds)), l1, x, bounds, np.empty(n))
    ref = b - A @ x
    scale = np.abs(b) + np.abs(A) @ np.abs(x)
    assert np.max(np.abs(r - ref) / scale) < 1e-14


def _with_empty_row(A, k):
    """``A`` with row and column ``k`` removed from the pattern (a zero diagonal)."""
    C = A.tocoo()
    keep = (C.row != k) & (C.col != k)
    M = sp.csr_matrix((C.data[keep], (C.row[keep], C.col[keep])), shape=A.shape)
    M.sort_indices()
    return M


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_sweep_is_pyamg_sweep_and_its_residual(dtype):
    # symmetric A: the sweep's x bit for bit PyAMG's, its residual −U x bit for bit
    # (the same products summed in the same order), and b − A x within round-off
    from pyamg.amg_core import gauss_seidel

    A = _with_empty_row(_m_matrix(3000, 16, dtype=dtype), 17)
    n = A.shape[0]
    assert abs(A - A.T).max() == 0 and A[17, 17] == 0
    b = np.random.default_rng(17).normal(size=n).astype(dtype)
    x_ref = np.zeros(n, dtype)
    gauss_seidel(A.indptr, A.indices, A.data, x_ref, b, 0, n, 1)
    x = np.full(n, np.nan, dtype)
    r = np.full(n, np.nan, dtype)
    K.gs_forward_residual(*_csr(A), x, b, r)
    assert np.array_equal(x, x_ref)
    full = A.diagonal() != 0
    assert np.array_equal(r[full], -(sp.triu(A, k=1, format="csr") @ x)[full])
    ref = b.astype(np.float64) - A.astype(np.float64) @ x.astype(np.float64)
    scale = np.abs(b) + np.abs(A).astype(np.float64) @ np.abs(x)
    tol = 1e-6 if dtype == np.float32 else 1e-15
    assert np.max(np.abs(r - ref) / scale) < tol
    assert r[17] == b[17] and x[17] == 0  # the zero-diagonal row: left, its residual b


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nblocks", [1, 2, 3, 16])
def test_fused_hybrid_sweep_and_residual(dtype, nblocks):
    # the threaded fused kernel: hybrid_gs's x bit for bit, b − A x within round-off
    A = _with_empty_row(_m_matrix(2500, 18, dtype=dtype), 1200)
    n = A.shape[0]
    b = np.random.default_rng(19).normal(size=n).astype(dtype)
    bounds = K.row_blocks(A.indptr, nblocks)
    l1 = K.l1_offblock(*_csr(A), bounds, np.empty(n, dtype))
    x_ref = np.zeros(n, dtype)
    K.hybrid_gs(*_csr(A), l1, x_ref, x_ref, b, bounds, True, True)
    orows, op, oi, od = K.offblock(A, bounds)
    x = np.full(n, np.nan, dtype)
    r = np.full(n, np.nan, dtype)
    K.hybrid_gs_forward_residual(*_csr(A), l1, x, b, bounds, op, oi, od, orows, r)
    assert np.array_equal(x, x_ref)
    ref = b.astype(np.float64) - A.astype(np.float64) @ x.astype(np.float64)
    scale = np.abs(b) + np.abs(A).astype(np.float64) @ np.abs(x)
    tol = 1e-6 if dtype == np.float32 else 1e-15
    assert np.max(np.abs(r - ref) / scale) < tol
    assert (orows.size == 0) == (nblocks == 1)


def _hierarchy(A, precision=np.float64):
    import pyamg

    ml = pyamg.ruge_stuben_solver(
        A,
        max_coarse=50,
        presmoother=("gauss_seidel", {"sweep": "forward"}),
        postsmoother=("gauss_seidel", {"sweep": "backward"}),
    )
    kry._prepare_cycle(ml, precision)
    return ml


@pytest.fixture
def threaded(monkeypatch):
    """Every level on the threaded path, with two row blocks (whatever the cores)."""
    monkeypatch.setattr(kry, "CYCLE_MIN_NNZ", 0)
    monkeypatch.setattr(kry, "_num_threads", lambda: 2)


def test_threaded_vcycle_residual_and_convergence(threaded):
    import pyamg

    A = pyamg.gallery.poisson((16, 16, 16), format="csr")
    A = (A + sp.diags(np.linspace(1e-3, 1e-2, A.shape[0]))).tocsr()
    n = A.shape[0]
    b = np.random.default_rng(11).normal(size=n)
    ml = _hierarchy(A)
    assert all(op.parallel for op in ml._mb_ops)
    z = kry._vcycle(ml, b)
    # the same cycle with the residual as the full product b − A x on every level
    for op in ml._mb_ops:
        op.full_diagonal = False
    z_full = kry._vcycle(ml, b)
    np.testing.assert_allclose(z, z_full, rtol=1e-10, atol=1e-12 * np.abs(z).max())
    for op in ml._mb_ops:
        op.full_diagonal = True
    # a convergent stationary iteration: x ← x + B(b − A x) contracts the residual
    x = np.zeros(n)
    res = [np.linalg.norm(b)]
    for _ in range(8):
        x += kry._vcycle(ml, b - A @ x)
        res.append(np.linalg.norm(b - A @ x))
    rates = np.array(res[1:]) / np.array(res[:-1])
    assert np.all(rates < 0.3)


def test_threaded_products_alone_give_the_serial_cycle(threaded, monkeypatch):
    # serial Gauss–Seidel with the threaded products: the serial cycle bit for bit
    # (the products sum each row in SciPy's order, in the same precision)
    A = _grid_m_matrix(16, 3)
    b = np.random.default_rng(4).normal(size=A.shape[0])
    ml = _hierarchy(A, np.float32)
    monkeypatch.setattr(kry, "THREADED_SWEEPS", False)
    z = kry._vcycle(ml, b)
    monkeypatch.setattr(kry, "_num_threads", lambda: 1)
    np.testing.assert_array_equal(z, kry._vcycle(ml, b))


def test_threaded_fgmres_matches_the_serial_cycle(monkeypatch):
    # the finest level on the threaded path, the coarser ones serial (as in a run);
    # 16 row blocks of ~1.4 planes each (a thin-block worst case for the ℓ1 terms)
    A = _grid_m_matrix(28, 12)
    b = np.random.default_rng(13).normal(size=A.shape[0])
    ml = _hierarchy(A, np.float32)
    for k, op in enumerate(ml._mb_ops):
        op.parallel = k == 0
    monkeypatch.setattr(kry, "_num_threads", lambda: 2)
    x2, its2, ok2 = kry.fgmres(kry._Threaded(A), b, lambda r: kry._vcycle(ml, r), rtol=1e-10)
    monkeypatch.setattr(kry, "_num_threads", lambda: 1)
    x1, its1, ok1 = kry.fgmres(A, b, lambda r: kry._vcycle(ml, r), rtol=1e-10)
    assert ok1 and ok2
    assert its1 <= its2 <= 1.15 * its1 + 1  # a weaker smoother, by a few iterations
    for x in (x1, x2):
        assert np.linalg.norm(b - A @ x) <= 1e-10 * np.linalg.norm(b)
    np.testing.assert_allclose(x2, x1, rtol=0, atol=1e-8 * np.abs(x1).max())


def test_threaded_product_matches_scipy(threaded):
    A = _m_matrix(2000, 14, symmetric=False)
    x = np.random.default_rng(15).normal(size=A.shape[0])
    np.testing.assert_allclose(kry._Threaded(A) @ x, A @ x, rtol=1e-13, atol=1e-13)
    # single-precision vector with a double-precision matrix: computed in double
    x32 = x.astype(np.float32)
    y = kry._Threaded(A) @ x32
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, A @ x32.astype(np.float64), rtol=1e-13, atol=1e-13)


def test_resolved_discharge_same_with_threaded_cycle(monkeypatch, packed_electrode):
    # a small resolved run converges to the same states with every level of every
    # V-cycle on the threaded path (two row blocks) as with the serial cycle
    from microbat.cell.resolved import ResolvedOptions, simulate_discharge

    # active spheres (half the volume) with carbon-binder flecks in the pore
    ms = packed_electrode(10, seed=5)
    opts = ResolvedOptions(linear_solver="amg", max_steps=8, dt_initial_s=20.0, dt_max_s=60.0)
    monkeypatch.setattr(kry, "_num_threads", lambda: 1)
    monkeypatch.setattr(kry, "FUSED_RESIDUAL", False)
    a = simulate_discharge(ms, c_rate=2.0, options=opts)
    monkeypatch.setattr(kry, "FUSED_RESIDUAL", True)  # the sweeps' fused residuals
    f = simulate_discharge(ms, c_rate=2.0, options=opts)
    monkeypatch.setattr(kry, "CYCLE_MIN_NNZ", 0)
    monkeypatch.setattr(kry, "_num_threads", lambda: 2)
    b = simulate_discharge(ms, c_rate=2.0, options=opts)
    for c in (f, b):
        assert a.steps == c.steps == 8
        assert np.allclose(a.time_s, c.time_s, rtol=1e-9)
        assert np.max(np.abs(a.voltage_V - c.voltage_V)) < 1e-6
        assert c.max_conservation_error < 1e-8


def test_cycle_levels_symmetric_and_r_is_p_transposed():
    # PyAMG's Ruge–Stüben hierarchy of a symmetric operator: R = Pᵀ on every level,
    # the coarse operators symmetric to round-off (not always bit for bit), and the
    # cycle's copies exactly symmetric, also after a refresh (galerkin)
    A = _grid_m_matrix(16, 23)
    ml = _hierarchy(A, np.float32)
    assert len(ml.levels) >= 3
    for lv, op in zip(ml.levels[:-1], ml._mb_ops, strict=True):
        assert (lv.R != lv.P.T).nnz == 0
        assert abs(lv.A - lv.A.T).max() <= kry.SYMMETRY_RTOL * abs(lv.A).max()
        assert op.symmetric and (op.A != op.A.T).nnz == 0
        np.testing.assert_allclose(op.A.toarray(), lv.A.toarray(), rtol=1e-6, atol=0)
    mc = kry.galerkin(ml, A)
    kry._prepare_cycle(mc, np.float32)
    assert all(op.symmetric and (op.A != op.A.T).nnz == 0 for op in mc._mb_ops)
    # a nonsymmetric operator: no level is taken as symmetric
    N = _m_matrix(3000, 24, symmetric=False)
    assert not any(op.symmetric for op in _hierarchy(N)._mb_ops)


@pytest.mark.parametrize("nt", [1, 2])
def test_fused_vcycle_unchanged(monkeypatch, nt):
    # the cycle with fused residuals against the same cycle with the two-pass ones
    # (serial: bit for bit; threaded, every level on two blocks: within round-off),
    # and the float64 serial cycle against PyAMG's own V-cycle
    A = _grid_m_matrix(16, 25)
    b = np.random.default_rng(26).normal(size=A.shape[0])
    if nt == 2:
        monkeypatch.setattr(kry, "CYCLE_MIN_NNZ", 0)
    monkeypatch.setattr(kry, "_num_threads", lambda: nt)
    for prec, tol in ((np.float32, 1e-6), (np.float64, 1e-14)):
        ml = _hierarchy(A, prec)
        assert all(op.symmetric and op.parallel == (nt == 2) for op in ml._mb_ops)
        z = kry._vcycle(ml, b)
        monkeypatch.setattr(kry, "FUSED_RESIDUAL", False)
        z_ref = kry._vcycle(ml, b)
        monkeypatch.setattr(kry, "FUSED_RESIDUAL", True)
        if nt == 1:
            np.testing.assert_array_equal(z, z_ref)
        else:
            assert np.max(np.abs(z - z_ref)) <= tol * np.max(np.abs(z_ref))
            assert not np.array_equal(z, z_ref)  # the fused path did run
        if nt == 1 and prec == np.float64:
            py = ml.solve(b, x0=np.zeros_like(b), maxiter=1, tol=1e-300, cycle="V")
            assert np.max(np.abs(z - py)) <= 1e-13 * np.max(np.abs(py))


def test_galerkin_on_kept_patterns_matches_scipy():
    # R A P on the patterns kept from the first refresh equals SciPy's products
    # (galerkin_copy), for a first and a second operator on the same graph
    from microbat.fv.solvers import galerkin_copy

    A = _grid_m_matrix(14, 21)
    ml = _hierarchy(A)
    rng = np.random.default_rng(22)
    for k in range(2):
        M = A.copy()
        M.data = M.data * rng.uniform(0.5, 2.0, M.nnz)  # new coefficients, same graph
        M = (0.5 * (M + M.T)).tocsr()
        M.sort_indices()
        ref = galerkin_copy(ml, M)
        mc = kry.galerkin(ml, M)
        for a, b in zip(ref.levels, mc.levels, strict=True):
            scale = abs(a.A).max()
            assert abs(a.A - b.A).max() <= 1e-13 * scale
        if k == 0:
            kept = ml.levels[1].__dict__["_mb_rap"]
        else:  # the patterns were found once and reused
            assert ml.levels[1].__dict__["_mb_rap"] is kept
