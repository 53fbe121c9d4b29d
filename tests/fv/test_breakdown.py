"""Krylov and multigrid breakdowns: a zero residual is success, a true breakdown a
ConvergenceError with its reason, never a ZeroDivisionError or NaN."""

from __future__ import annotations

import math

import numpy as np
import pytest

from microbat.core.errors import ConvergenceError
from microbat.fv.connectivity import components, winding_mask
from microbat.fv.grid import coefficient_classes
from microbat.fv.multigrid import RESIDUAL_FLOOR, Multigrid, pcg
from microbat.fv.solvers import DirectSolver, solve
from microbat.fv.system import Dirichlet, build_system


def _layers_periodic(n, axis, dtype):
    """Pore planes normal to axis 2, every 4th layer; periodic with a jump along ``axis``."""
    lab = np.ones((n, n, n), np.uint8)
    lab[:, :, ::4] = 0
    coef = coefficient_classes(lab, {0: 1.0})
    jump = [0.0, 0.0, 0.0]
    jump[axis] = -float(n)
    s = build_system(coef, (1.0, 1.0, 1.0), periodic=(True, True, True), jump=jump, dtype=dtype)
    ramp = -(np.arange(n) + 0.5)
    shape = [1, 1, 1]
    shape[axis] = n
    x0 = np.where(s.active, ramp.reshape(shape), 0.0).astype(dtype)
    return s, x0


@pytest.mark.parametrize("cycle", ["K", "V"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unreachable_stop_on_decoupled_layers_converges(cycle, dtype):
    # Across the layers nothing connects: the flux is zero and a flux-spread stop can
    # never be met. The iteration used to run on until the K-cycle divided by an
    # underflowed rho1 * rho2 (ZeroDivisionError).
    n = 32  # 8192 unknowns: multigrid with a K-cycle level
    for axis, flux in ((2, 0.0), (0, n * n / 4)):
        s, x0 = _layers_periodic(n, axis, dtype)
        sol = solve(s, method="mg", x0=x0, stop=lambda *a: False, layer_axis=axis,
                    maxiter=400, raise_on_failure=False, cycle=cycle)  # fmt: skip
        assert sol.converged and sol.details["breakdown"] == ""
        assert sol.iterations < 100
        assert np.all(np.isfinite(sol.x))
        assert float(np.mean(s.layer_fluxes(sol.x, axis))) == pytest.approx(flux, abs=1e-6)


def test_kcycle_is_scale_invariant_down_to_tiny_residuals():
    n = 32
    s, _ = _layers_periodic(n, 0, np.float64)
    mg = s.multigrid()
    assert mg.n_levels >= 3  # at least one K-cycle (Krylov) level
    rng = np.random.default_rng(0)
    r = np.where(s.active, rng.standard_normal(s.shape), 0.0)
    z1 = np.empty_like(r)
    z2 = np.empty_like(r)
    mg.apply(r, z1)
    scale = 1e-150  # inner products ~1e-300: rho1 * rho2 underflows to 0
    mg.apply(r * scale, z2)
    assert np.all(np.isfinite(z2))
    assert np.allclose(z2 / scale, z1, rtol=1e-8, atol=1e-8 * np.abs(z1).max())


def _identity_apply(v, out):
    out[...] = v


def test_pcg_zero_rhs_is_converged_at_once():
    b = np.zeros((4, 4, 4))
    x = np.zeros_like(b)
    info = pcg(_identity_apply, None, b, x)
    assert info.converged and info.iterations == 0 and info.breakdown == ""


def test_pcg_residual_floor():
    b = np.ones((4, 4, 4))
    x = np.zeros_like(b)
    info = pcg(_identity_apply, None, b, x, stop=lambda *a: False)
    assert info.converged and info.iterations == 1
    assert info.residual_norm <= RESIDUAL_FLOOR * math.sqrt(b.size)


def test_pcg_indefinite_preconditioner_breaks_down_with_reason():
    b = np.ones((4, 4, 4))
    x = np.zeros_like(b)

    def negate(r, z):
        z[...] = -r

    info = pcg(_identity_apply, negate, b, x)
    assert not info.converged
    assert "preconditioner is not positive definite" in info.breakdown
    assert np.all(np.isfinite(x))


def test_pcg_singular_operator_breaks_down_with_reason():
    b = np.ones((4, 4, 4))
    x = np.zeros_like(b)

    def zero(v, out):
        out[...] = 0

    info = pcg(zero, None, b, x)
    assert not info.converged and "operator is not positive definite" in info.breakdown


def test_pcg_non_finite_input_breaks_down_with_reason():
    b = np.ones((4, 4, 4))
    b[1, 1, 1] = np.nan
    x = np.zeros_like(b)
    info = pcg(_identity_apply, None, b, x)
    assert not info.converged and "not finite" in info.breakdown


def test_solve_mg_breakdown_raises_convergence_error(monkeypatch):
    lab = np.zeros((20, 20, 20), np.uint8)
    s = build_system(coefficient_classes(lab, {0: 1.0}), (1.0, 1.0, 1.0),
                     dirichlet=[Dirichlet(0, 0, 1.0), Dirichlet(0, -1, 0.0)])  # fmt: skip

    def negate(self, r, z):
        z[...] = -r

    monkeypatch.setattr(Multigrid, "apply", negate)
    with pytest.raises(ConvergenceError, match="broke down"):
        solve(s, method="mg")


def test_direct_solver_singular_matrix_is_a_convergence_error():
    import scipy.sparse as sp

    A = sp.csr_matrix(np.array([[1.0, -1.0], [-1.0, 1.0]]))
    with pytest.raises(ConvergenceError, match="singular"):
        DirectSolver(A)


def _winds_brute(mask, axis, periodic):
    """Tile the image along ``axis`` more times than it has components (open ends):
    a component of the periodic image winds iff some tiled copy spans the tiling."""
    per = [bool(p) for p in periodic]
    per[axis] = False
    n = components(mask, periodic=per)[1]
    reps = [1, 1, 1]
    reps[axis] = n + 2
    tiled = np.tile(mask, reps)
    lab, m = components(tiled, periodic=per)
    if m == 0:
        return False
    first = np.unique(np.take(lab, 0, axis=axis))
    last = np.unique(np.take(lab, -1, axis=axis))
    return bool(np.intersect1d(first[first > 0], last[last > 0]).size)


@pytest.mark.parametrize("seed", range(12))
def test_winding_mask_matches_tiling(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(3, 8, 3))
    mask = rng.random(shape) < rng.uniform(0.3, 0.7)
    periodic = tuple(bool(v) for v in rng.integers(0, 2, 3))
    for axis in range(3):
        wm = winding_mask(mask, axis, periodic=periodic)
        assert wm.any() == _winds_brute(mask, axis, periodic)
        assert not np.any(wm & ~mask)


def test_winding_mask_cases():
    m = np.zeros((6, 5, 5), bool)
    m[:, 2, 2] = True  # a straight line winds along 0 only
    assert winding_mask(m, 0).any() and not winding_mask(m, 1).any()
    step = np.zeros((6, 4, 1), bool)
    step[:3, 1] = step[2:, 2] = True  # ends do not meet across the seam
    assert not winding_mask(step, 0).any()
    diag = np.zeros((4, 4, 1), bool)  # a helix: winds along 0 and 1 through both seams
    for i in range(4):
        diag[i, i] = diag[i, (i + 1) % 4] = True
    assert winding_mask(diag, 0).any() and winding_mask(diag, 1).any()
    assert not winding_mask(diag, 0, periodic=(True, False, False)).any()
    assert not winding_mask(np.zeros((3, 3, 3), bool), 0).any()
    # the winding component is kept, an isolated voxel beside it is not
    m[0, 0, 0] = True
    wm = winding_mask(m, 0)
    assert wm[:, 2, 2].all() and not wm[0, 0, 0]
