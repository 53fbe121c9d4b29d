"""Kept sparsity patterns of the per-step operators against SciPy's construction.

The Schur complement of the block preconditioner (:class:`~microbat.cell.resolved.
_krylov._Schur`) and the electrolyte Laplacians (:class:`~microbat.cell.resolved.
_model._KeptLaplacian`) are rebuilt at every Newton update / time step on patterns
found once. Here they are compared, on the real Jacobians and states of a small
resolved charge, with the SciPy construction they replace.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from microbat.cell.resolved import ResolvedOptions, simulate_charge
from microbat.cell.resolved._krylov import BlockAMGSolver, _Schur, schur_reference
from microbat.cell.resolved._model import HalfCell

_OPTS = {"linear_solver": "amg", "max_steps": 3, "dt_initial_s": 5.0}


@pytest.fixture(scope="module")
def captured(packed_electrode):
    """Jacobians, Schur complements and Laplacians met in a 3-step 3C charge (10³)."""
    calls: dict[str, list] = {"blocks": [], "lin": [], "x": []}
    orig_blocks = BlockAMGSolver._blocks
    orig_lin = HalfCell.linear_blocks

    def blocks(self, Js, rs, cs, J=None):
        out = orig_blocks(self, Js, rs, cs, J)
        Ju = J if J is not None else sp.diags(1.0 / rs) @ Js @ sp.diags(1.0 / cs)
        calls["blocks"].append((self, Ju.tocsr().copy(), out[1]))
        return out

    def lin(self, state, dt):
        out = orig_lin(self, state, dt)
        calls["lin"].append((self, state, out))
        return out

    mp = pytest.MonkeyPatch()
    mp.setattr(BlockAMGSolver, "_blocks", blocks)
    mp.setattr(HalfCell, "linear_blocks", lin)
    try:
        res = simulate_charge(packed_electrode(10), c_rate=3.0, options=ResolvedOptions(**_OPTS))
    finally:
        mp.undo()
    calls["x"].append(res)
    return calls


def _rel(A: sp.csr_matrix, B: sp.csr_matrix) -> float:
    return float(abs(A - B).max() / abs(B).max())


def test_schur_complement_equals_scipy_on_every_update(captured):
    seen = captured["blocks"]
    assert len(seen) >= 3  # a setup and refreshes on new values
    values = set()
    for solver, Ju, S in seen:
        ref = schur_reference(solver, Ju)
        assert _rel(S, ref) <= 1e-14
        S0 = S.copy()
        S0.eliminate_zeros()  # stored zeros SciPy drops: the same pattern otherwise
        assert np.array_equal(S0.indptr, ref.indptr)
        assert np.array_equal(S0.indices, ref.indices)
        values.add(float(abs(S).sum()))
    assert len(values) >= 2  # the values did change between the calls compared
    # one kept pattern for the whole run: every operator shares its index arrays
    assert len({id(S.indices) for _, _, S in seen}) == 1


def test_schur_pattern_rebuilt_when_the_jacobian_pattern_changes(captured):
    solver, Ju, _ = captured["blocks"][-1]
    kept = solver._schur
    # a Jacobian with one more stored entry in the potential block (φ_e row 0 and
    # the last active unknown): the maps and the Schur pattern follow it
    n = Ju.shape[0]
    extra = sp.csr_matrix(([1e-3], ([solver.nE], [n - 2])), shape=(n, n))
    J2 = (Ju + extra).tocsr()
    J2.sort_indices()
    S2 = solver._blocks(None, None, None, J2)[1]
    assert solver._schur is not kept
    assert _rel(S2, schur_reference(solver, J2)) <= 1e-14
    # and back: rebuilt again for the original pattern
    S1 = solver._blocks(None, None, None, Ju)[1]
    assert _rel(S1, schur_reference(solver, Ju)) <= 1e-14


def test_schur_kept_pattern_on_a_random_block_system():
    # an independent construction: the block system of test_krylov's shape
    rng = np.random.default_rng(4)
    ne, ns, na = 15, 9, 11
    n = 2 * ne + ns + na + 1
    J = sp.random(n, n, density=0.2, random_state=rng, format="csr") + sp.eye(n) * 3.0
    J = J.tocsr()
    J.sort_indices()
    solver = BlockAMGSolver(ne, ns, na)
    S = solver._blocks(None, None, None, J)[1]
    dense = J.toarray()
    ip = np.r_[np.arange(ne, 2 * ne + ns), n - 1]
    C = np.arange(2 * ne + ns, n - 1)
    Sd = (
        dense[np.ix_(ip, ip)]
        - dense[np.ix_(ip, C)] @ np.diag(1.0 / np.diag(dense[np.ix_(C, C)])) @ dense[np.ix_(C, ip)]
    )
    Sd[-1] *= -1.0
    np.testing.assert_allclose(S.toarray(), 0.5 * (Sd + Sd.T), rtol=1e-13, atol=1e-13)
    assert isinstance(solver._schur, _Schur)


def test_laplacians_equal_the_fv_core_bit_for_bit(captured):
    seen = captured["lin"]
    assert len(seen) >= 2
    coeffs = set()
    for cell, state, (L_kappa, L_de, _) in seen:
        ce = np.maximum(state.ce, 1e-3)
        kap = cell.par.electrolyte_conductivity(ce, cell.T)
        de = cell.par.electrolyte_diffusivity(ce, cell.T)
        for L, k in ((L_kappa, kap), (L_de, de)):
            ref = cell._fv_laplacian(cell.dom.idx_e, k * cell.trans0, k * cell.trans_lat)
            assert np.array_equal(L.indptr, ref.indptr)
            assert np.array_equal(L.indices, ref.indices)
            assert np.array_equal(L.data, ref.data)  # same arithmetic: bit for bit
        coeffs.add(float(kap.sum()))
    assert len(coeffs) >= 2  # the conductivities changed between the steps
    # kept: one pattern shared by every electrolyte operator of the run
    ids = {id(L.indices) for _, _, (Lk, Ld, _) in seen for L in (Lk, Ld)}
    assert len(ids) == 1


def test_laplacian_falls_back_where_a_coefficient_vanishes(captured):
    cell = captured["lin"][0][0]
    idx = cell.dom.idx_e
    k = np.linspace(1.0, 2.0, idx.size)
    k[idx.size // 2] = 0.0  # a blocked voxel: its faces leave the pattern
    L = cell._laplacian(idx, k, k)
    ref = cell._fv_laplacian(idx, k, k)
    assert L.nnz < cell._laplacian(idx, k + 1.0, k + 1.0).nnz
    assert np.array_equal(L.indices, ref.indices) and np.array_equal(L.data, ref.data)


def test_kept_patterns_leave_the_run_unchanged(captured, packed_electrode, monkeypatch):
    # the same charge with the SciPy constructions patched back in
    from microbat.cell.resolved import _krylov

    self_solver: list = []  # the solver of the _Schur being called

    def schur(self, J, nt):
        return schur_reference(self_solver[0], J)

    orig_blocks = BlockAMGSolver._blocks

    def blocks(self, Js, rs, cs, J=None):
        self_solver[:] = [self]
        return orig_blocks(self, Js, rs, cs, J)

    monkeypatch.setattr(_krylov._Schur, "__call__", schur)
    monkeypatch.setattr(BlockAMGSolver, "_blocks", blocks)
    monkeypatch.setattr(HalfCell, "_laplacian", HalfCell._fv_laplacian)
    ref = simulate_charge(packed_electrode(10), c_rate=3.0, options=ResolvedOptions(**_OPTS))
    res = captured["x"][0]
    assert res.steps == ref.steps
    # the same arithmetic (measured): the same run bit for bit
    np.testing.assert_array_equal(res.voltage_V, ref.voltage_V)
    np.testing.assert_array_equal(res.time_s, ref.time_s)
