import numpy as np
import pytest

from microbat.core.errors import ConvergenceError, InvalidInputError
from microbat.fv.connectivity import spanning_mask
from microbat.fv.grid import coefficient_classes
from microbat.fv.multigrid import Multigrid
from microbat.fv.solvers import AMGSolver, DirectSolver, solve
from microbat.fv.system import Dirichlet, build_system

BCS = [Dirichlet(0, 0, 1.0), Dirichlet(0, -1, 0.0)]


def _system(spheres, shape=(20, 18, 16), h=(1e-6, 1e-6, 1e-6), dtype=np.float64, seed=5):
    pore = spheres(shape, 0.45, 2.0, seed=seed)
    active = spanning_mask(pore, 0)
    coef = coefficient_classes(pore.view(np.uint8), {1: 1.0})
    return build_system(coef, h, dirichlet=BCS, active=active, dtype=dtype)


def _spread(s, x):
    planes = np.concatenate(
        ([s.boundary_flux(x, 0)], s.layer_fluxes(x, 0), [-s.boundary_flux(x, 1)])
    )
    return (planes.max() - planes.min()) / planes.mean(), planes.mean()


def test_solvers_agree(spheres):
    s = _system(spheres)
    ref = solve(s, method="direct").x
    _, f_ref = _spread(s, ref)
    for method, kw in (
        ("mg", {}),
        ("mg", {"cycle": "V", "sweeps": 2}),
        ("amg", {}),
        ("amg", {"kind": "rs"}),
    ):
        sol = solve(s, method=method, rtol=1e-10, **kw)
        assert sol.converged and sol.iterations > 0
        spread, f = _spread(s, sol.x)
        assert spread < 1e-7
        assert f == pytest.approx(f_ref, rel=1e-8)
        assert np.all(sol.x[~s.active] == 0)


@pytest.mark.parametrize("h", [1.0, 1e-3, 1e-6])
def test_single_precision_does_not_leak(spheres, h):
    # regression: a diagonal stored as the rounded sum of the conductances acts as a
    # spurious leak in float32 whose size depended on the voxel size
    s64 = _system(spheres, h=(h, h, h))
    s32 = _system(spheres, h=(h, h, h), dtype=np.float32)
    x64 = solve(s64, method="direct").x
    x32 = solve(s32, method="mg", rtol=1e-7).x
    spread, f32 = _spread(s32, x32)
    _, f64 = _spread(s64, x64)
    assert spread < 2e-5
    assert f32 == pytest.approx(f64, rel=1e-5)
    assert np.max(np.abs(x32 - x64)) < 1e-5


def test_anisotropic_voxels_semi_coarsen(spheres):
    s = _system(spheres, shape=(24, 24, 12), h=(0.5e-6, 0.5e-6, 2e-6))
    mg = s.multigrid()
    # the weakly coupled axis 2 (4x longer voxels, 16x weaker faces) is not coarsened first
    assert mg.describe()[0]["factors"] == [2, 2, 1]
    sol = solve(s, method="mg", rtol=1e-9)
    assert sol.converged and sol.iterations < 40
    ref = solve(s, method="direct").x
    assert np.allclose(sol.x, ref, atol=1e-7)


def test_multigrid_is_a_symmetric_preconditioner(spheres):
    s = _system(spheres, shape=(16, 16, 16))
    mg = s.multigrid(cycle="V", sweeps=2)  # the K-cycle is non-linear by design
    rng = np.random.default_rng(1)
    u = rng.standard_normal(s.shape) * s.active
    v = rng.standard_normal(s.shape) * s.active
    mu, mv = np.empty_like(u), np.empty_like(v)
    mg.apply(u, mu)
    mg.apply(v, mv)
    mu[~s.active] = 0
    mv[~s.active] = 0
    assert np.vdot(v, mu) == pytest.approx(np.vdot(u, mv), rel=1e-10)
    assert np.vdot(u, mu) > 0


def test_fused_sweep_equals_two_colour_sweeps(spheres):
    from microbat.fv import _kernels as k

    s = _system(spheres, shape=(17, 9, 8))
    rng = np.random.default_rng(2)
    f = rng.standard_normal(s.shape) * s.active
    u1 = np.zeros(s.shape)
    u2 = np.zeros(s.shape)
    k.rb_sweep(*s.op, f, u1, 0, False)
    k.rb_sweep(*s.op, f, u1, 1, False)
    k.rb_fused(*s.op, f, u2, 0, 2)
    assert np.array_equal(u1, u2)


def test_convergence_error_and_options(spheres):
    s = _system(spheres)
    with pytest.raises(ConvergenceError, match="did not converge"):
        solve(s, method="mg", rtol=1e-14, maxiter=2)
    sol = solve(s, method="mg", rtol=1e-14, maxiter=2, raise_on_failure=False)
    assert not sol.converged and sol.iterations == 2
    with pytest.raises(InvalidInputError, match="unknown solver"):
        solve(s, method="cholesky")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="one 3D shape"):
        Multigrid(np.zeros((2, 2, 2)), (np.zeros((2, 2)),) * 3)


def test_reusable_factorisations(spheres):
    s = _system(spheres, shape=(12, 12, 12))
    A, b, _ = s.to_sparse()
    amg = AMGSolver(A, kind="sa")
    direct = DirectSolver(A)
    for rhs in (b, 2 * b):
        x, hist = amg.solve(rhs, rtol=1e-10)
        assert hist[-1] <= 1e-10 * hist[0]
        assert np.allclose(x, direct.solve(rhs), rtol=1e-7, atol=1e-12)
    with pytest.raises(InvalidInputError, match="'sa' or 'rs'"):
        AMGSolver(A, kind="gmg")  # type: ignore[arg-type]
