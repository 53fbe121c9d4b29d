"""Kernels of the voxel elasticity solver against their definitions.

The block pattern against a brute-force reading of "two nodes couple when a voxel they
share is solid", the in-kernel elimination of fixed components against the explicit
one, and the ℓ1 hybrid block Gauss–Seidel smoother: one block is exact Gauss–Seidel,
the sweep does not depend on the number of threads, the ℓ1 sweep reduces the energy
error for any partition, and the V-cycle it smooths is symmetric (CG needs that).
"""

from __future__ import annotations

import itertools

import numba
import numpy as np
import pytest

from microbat.fv import _elastic_kernels as kern
from microbat.fv.elasticity import ElasticProblem, _build_mesh, lame


def _phase(shape, seed, void=0.35):
    rng = np.random.default_rng(seed)
    ph = rng.integers(0, 2, shape).astype(np.int32)
    ph[rng.random(shape) < void] = -1
    return ph


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 4, 5), (6, 2, 7)])
def test_block_pattern_is_the_shared_solid_voxel_rule(shape):
    ph = _phase(shape, seed=sum(shape))
    mesh = _build_mesh(ph, (1.0, 1.0, 1.0))
    m = tuple(n + 1 for n in shape)
    solid = ph >= 0

    def voxels_of(node):
        for e in itertools.product((-1, 0), repeat=3):
            v = tuple(node[i] + e[i] for i in range(3))
            if all(0 <= v[i] < shape[i] for i in range(3)):
                yield v

    coords = np.stack(np.unravel_index(mesh.nodes, m), axis=1)
    for a, node in enumerate(map(tuple, coords)):
        expect = set()
        mine = {v for v in voxels_of(node) if solid[v]}
        for d in itertools.product((-1, 0, 1), repeat=3):
            other = tuple(node[i] + d[i] for i in range(3))
            if not all(0 <= other[i] < m[i] for i in range(3)):
                continue
            if mine & set(voxels_of(other)):
                expect.add(int(np.ravel_multi_index(other, m)))
        cols = mesh.indices[mesh.indptr[a] : mesh.indptr[a + 1]]
        assert sorted(mesh.nodes[cols].tolist()) == sorted(expect)
        assert np.all(np.diff(cols) > 0)  # ascending columns: the diagonal slot is 13's


def test_fixed_components_eliminated_as_rows_and_columns_with_the_diagonal_kept():
    ph = _phase((5, 4, 6), seed=7, void=0.2)
    lam, mu = zip(lame(150e9, 0.25), lame(1e9, 0.3), strict=True)
    faces = {(0, 0): "clamped", (2, 1): "roller"}
    free = ElasticProblem(ph, lam, mu, 1e-6, spring=0.0)
    held = ElasticProblem(ph, lam, mu, 1e-6, faces=faces, spring=0.0)
    k0 = free.K.toarray()
    fixed = held.fixed.reshape(-1)
    assert fixed.any() and not fixed.all()
    expect = k0.copy()
    expect[fixed, :] = 0.0
    expect[:, fixed] = 0.0
    expect[fixed, fixed] = np.diag(k0)[fixed]
    np.testing.assert_array_equal(held.K.toarray(), expect)


def _cycle(shape=(10, 9, 11), seed=4, faces=None):
    ph = _phase(shape, seed=seed, void=0.25)
    lam, mu = zip(lame(150e9, 0.25), lame(1e9, 0.3), strict=True)
    prob = ElasticProblem(ph, lam, mu, 1e-6, faces=faces or {(0, 0): "clamped"})
    return prob, prob.preconditioner()


def test_one_block_is_gauss_seidel_and_threads_do_not_matter():
    prob, _ = _cycle(shape=(6, 5, 7))
    ip, ix, data = prob.K.indptr, prob.K.indices, prob.K.data
    n = ip.size - 1
    b = np.random.default_rng(0).standard_normal((n, 3))
    a = prob.K.toarray()
    diag = (prob.mesh.indptr[:-1] + prob.mesh.slot_of[:, 13]).astype(np.int64)
    # one block: the ℓ1 term vanishes and the sweep is lexicographic block Gauss–Seidel,
    # x = (D + L)⁻¹ b with D the 3 × 3 diagonal blocks and L the blocks left of them
    one = np.array([0, n], np.int64)
    d = np.empty((n, 3, 3))
    kern.l1_block_diagonal(ip, ix, data, diag, one, d)
    np.testing.assert_array_equal(d, data[diag])
    x = np.zeros((n, 3))
    kern.block_gs(ip, ix, data, np.linalg.inv(d), x, np.zeros_like(x), b, one, True)
    same_block = np.kron(np.eye(n), np.ones((3, 3))) > 0
    m = np.where(same_block | (np.tril(np.ones_like(a), -1) > 0), a, 0.0)
    expect = np.linalg.solve(m, b.reshape(-1))
    np.testing.assert_allclose(x.reshape(-1), expect, rtol=1e-9, atol=1e-12 * np.abs(expect).max())
    # several blocks: the same bits on one thread and on two
    bounds = np.linspace(0, n, 6).astype(np.int64)
    kern.l1_block_diagonal(ip, ix, data, diag, bounds, d)
    dinv = np.linalg.inv(d)
    old = numba.get_num_threads()
    outs = []
    try:
        for t in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(t)
            y = np.zeros((n, 3))
            kern.block_gs(ip, ix, data, dinv, y, np.zeros_like(y), b, bounds, True)
            kern.block_gs(ip, ix, data, dinv, y, y.copy(), b, bounds, False)
            outs.append(y)
    finally:
        numba.set_num_threads(old)
    np.testing.assert_array_equal(outs[0], outs[1])


def test_l1_hybrid_sweep_reduces_the_energy_error_for_many_blocks():
    prob, cyc = _cycle()
    ip, ix = cyc.A0[0], cyc.A0[1]
    data = prob.K.data
    n = ip.size - 1
    a = prob.K.toarray()
    diag = (prob.mesh.indptr[:-1] + prob.mesh.slot_of[:, 13]).astype(np.int64)
    rng = np.random.default_rng(1)
    u = rng.standard_normal((n, 3))
    b = (a @ u.reshape(-1)).reshape(-1, 3)
    for nblk in (2, 7, n):  # up to one row per block: ℓ1-Jacobi
        bounds = np.linspace(0, n, nblk + 1).astype(np.int64)
        d = np.empty((n, 3, 3))
        kern.l1_block_diagonal(ip, ix, data, diag, bounds, d)
        dinv = np.linalg.inv(d)
        x = np.zeros((n, 3))
        err = [float((u - x).reshape(-1) @ a @ (u - x).reshape(-1))]
        for k in range(6):
            kern.block_gs(ip, ix, data, dinv, x, x.copy(), b, bounds, k % 2 == 0)
            e = (u - x).reshape(-1)
            err.append(float(e @ a @ e))
        assert all(e1 < e0 for e0, e1 in itertools.pairwise(err)), (nblk, err)


def test_v_cycle_is_symmetric():
    _, cyc = _cycle(shape=(12, 10, 9), seed=9)
    rng = np.random.default_rng(2)
    n3 = 3 * (cyc.A0[0].size - 1)
    r1, r2 = rng.standard_normal(n3), rng.standard_normal(n3)
    lhs, rhs = r2 @ cyc(r1), r1 @ cyc(r2)
    # single-precision smoothing: symmetric to float32 rounding
    assert abs(lhs - rhs) <= 1e-5 * np.sqrt(abs(r1 @ cyc(r1)) * abs(r2 @ cyc(r2)))
