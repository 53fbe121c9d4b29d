import math
import warnings

import numpy as np
import pytest

from microbat import Microstructure
from microbat.core.errors import InvalidInputError
from microbat.transport.diffusion import PercolationWarning, tortuosity
from microbat.transport.tensor import periodic_deff, tortuosity_tensor


def _spheres(shape, porosity, radius, seed):
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    lam = -np.log(porosity) / (4 / 3 * np.pi * radius**3)
    seeds = np.zeros(shape, bool)
    n = rng.poisson(lam * np.prod(shape))
    seeds[tuple(rng.integers(0, s, n) for s in shape)] = True
    return ndimage.distance_transform_edt(~seeds) > radius


def _stripes(n=24, width=3):
    """Stripes of pore and cbd tilted at 45 degrees in the (0, 1) plane."""
    i, j, _ = np.meshgrid(np.arange(n), np.arange(n), np.arange(n), indexing="ij")
    lab = (((i + j) // width) % 2).astype(np.uint8)
    return Microstructure(lab, voxel_size=1e-6, phases="pore=0,cbd=1")


def test_uniform_medium_is_the_identity():
    ms = Microstructure(np.zeros((9, 8, 7), np.uint8), voxel_size=(1e-6, 2e-6, 0.5e-6),
                        phases="pore=0", allow_empty_phases=True)  # fmt: skip
    t = tortuosity_tensor(ms, phase="pore")
    assert np.allclose(t.deff_over_d0, np.eye(3), atol=1e-12)
    assert np.allclose(t.tau, np.eye(3), atol=1e-12)
    assert np.allclose(t.principal_tau, 1.0)


def test_layered_medium_arithmetic_along_harmonic_across():
    lab = np.zeros((12, 12, 12), np.uint8)
    lab[:, :, 6:] = 1
    ms = Microstructure(lab, voxel_size=1e-6, phases="pore=0,cbd=1")
    for method in ("dirichlet", "periodic"):
        t = tortuosity_tensor(ms, phase="pore", relative_diffusivity={"cbd": 0.25}, method=method)
        assert np.allclose(np.diag(t.deff_over_d0), [0.625, 0.625, 0.4], rtol=1e-10)
        assert np.allclose(t.deff_over_d0 - np.diag(np.diag(t.deff_over_d0)), 0, atol=1e-12)
        assert t.epsilon == pytest.approx(0.625)
        assert np.allclose(np.diag(t.tau), [1.0, 1.0, 0.625 / 0.4], rtol=1e-10)


def test_tilted_stripes_have_exact_principal_axes():
    ms = _stripes()
    t = tortuosity_tensor(
        ms, phase="pore", relative_diffusivity={"cbd": 0.1}, method="periodic", tol=1e-8
    )
    d = t.deff_over_d0
    # the pattern is symmetric under swapping axes 0 and 1: equal diagonal, and
    # principal axes at 45 degrees in the (0, 1) plane
    assert d[0, 0] == pytest.approx(d[1, 1], rel=1e-8)
    assert d[0, 1] < 0  # stripes run along (1, -1)
    across = np.array([1.0, 1.0, 0.0]) / math.sqrt(2)
    # across the stripes the faces are in series: the harmonic mean, exactly
    assert across @ d @ across == pytest.approx(2 / (1 + 1 / 0.1), rel=1e-7)
    # along axis 2 the stripes are parallel: the arithmetic mean
    assert d[2, 2] == pytest.approx(0.55, rel=1e-8)
    v = t.principal_directions
    smallest = v[:, np.argmin(t.principal_deff)]
    assert abs(abs(smallest @ across) - 1) < 1e-7
    assert t.asymmetry <= t.numerical_error


def test_dirichlet_method_keeps_the_directional_diagonal():
    pore = _spheres((20, 20, 20), 0.45, 2.5, seed=3)
    ms = Microstructure((~pore).astype(np.uint8), voxel_size=(1e-6, 1e-6, 1.5e-6),
                        phases="pore=0,active=1")  # fmt: skip
    t = tortuosity_tensor(ms, phase="pore", tol=1e-5)
    r = tortuosity(ms, phase="pore", axis="all", tol=1e-5)
    assert np.allclose(t.tau_diagonal, r.tau, rtol=1e-9)
    assert np.allclose(np.diag(t.deff_over_d0), r.deff_over_d0, rtol=1e-9)
    # congruence with the periodic tensor: same correlation coefficients
    p = t.deff_periodic
    rho_p = p[0, 1] / math.sqrt(p[0, 0] * p[1, 1])
    d = t.deff_over_d0
    assert d[0, 1] / math.sqrt(d[0, 0] * d[1, 1]) == pytest.approx(rho_p, rel=1e-6)
    assert np.all(np.linalg.eigvalsh(d) > 0)
    # symmetric within the reported numerical error
    assert t.asymmetry <= t.numerical_error
    assert np.allclose(t.tau @ d, t.epsilon * np.eye(3), atol=1e-10)
    json_ok = t.to_json()
    assert "NaN" not in json_ok


def test_transposing_the_image_permutes_the_tensor():
    pore = _spheres((14, 18, 16), 0.5, 2.0, seed=6)
    ms = Microstructure((~pore).astype(np.uint8), voxel_size=1e-6, phases="pore=0,active=1")
    perm = (2, 0, 1)
    mt = Microstructure(np.ascontiguousarray((~pore).astype(np.uint8).transpose(perm)),
                        voxel_size=1e-6, phases="pore=0,active=1")  # fmt: skip
    values = {0: 1.0}
    d, _ = periodic_deff(ms, values, tol=1e-8, solver="direct")
    dt, _ = periodic_deff(mt, values, tol=1e-8, solver="direct")
    assert np.allclose(dt, d[np.ix_(perm, perm)], rtol=1e-8, atol=1e-12)


def test_iterative_periodic_solve_matches_direct():
    pore = _spheres((24, 22, 20), 0.45, 2.5, seed=9)
    ms = Microstructure((~pore).astype(np.uint8), voxel_size=1e-6, phases="pore=0,active=1")
    d_direct, _ = periodic_deff(ms, {0: 1.0}, solver="direct")
    d_mg, spread = periodic_deff(ms, {0: 1.0}, tol=1e-6, solver="mg")
    assert spread <= 1e-6
    assert np.allclose(d_mg, d_direct, rtol=1e-5, atol=1e-6 * np.abs(d_direct).max())


def test_non_percolating_direction():
    lab = np.ones((10, 10, 10), np.uint8)
    lab[:, :, 3:7] = 0  # pore slab: percolates along 0 and 1, not 2
    ms = Microstructure(lab, voxel_size=1e-6, phases="pore=0,active=1")
    with pytest.warns(PercolationWarning):
        t = tortuosity_tensor(ms, phase="pore")
    assert t.percolating == (True, True, False)
    assert t.tau[2, 2] == math.inf
    assert np.all(t.tau[2, :2] == 0) and np.all(t.deff_over_d0[2] == 0)
    assert t.principal_tau[-1] == math.inf
    assert np.allclose(t.tau[:2, :2], np.eye(2), atol=1e-10)
    assert not np.any(np.isnan(t.tau))


def test_two_dimensional_tensor_and_errors():
    lab = np.zeros((16, 16), np.uint8)
    ms = Microstructure(lab, voxel_size=1e-6, phases="pore=0", allow_empty_phases=True)
    t = tortuosity_tensor(ms, phase="pore")
    assert t.deff_over_d0.shape == (2, 2)
    assert np.allclose(t.deff_over_d0, np.eye(2))
    with pytest.raises(InvalidInputError, match="dirichlet"):
        tortuosity_tensor(ms, phase="pore", method="mirror")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tortuosity_tensor(ms, phase="pore", method="periodic")


def test_tensor_reuses_given_directional_solves(monkeypatch):
    import microbat.transport.diffusion as diffusion

    ms = Microstructure(_spheres((20, 20, 20), 0.5, 2.5, seed=3).astype(np.uint8),
                        voxel_size=1e-6, phases="active=0,pore=1")  # fmt: skip
    fresh = tortuosity_tensor(ms, phase="pore", tol=1e-4)
    diag = tortuosity(ms, phase="pore", axis="all", tol=1e-4, porosity_definition="percolating")
    calls = []
    real = diffusion.directional_solve
    monkeypatch.setattr(
        diffusion, "directional_solve", lambda *a, **k: calls.append(a) or real(*a, **k)
    )
    again = tortuosity_tensor(ms, phase="pore", tol=1e-4, diagonal=diag)
    assert calls == []  # no directional solve made again
    assert np.array_equal(again.deff_over_d0, fresh.deff_over_d0)
    assert np.array_equal(again.tau, fresh.tau)
    assert again.epsilon == fresh.epsilon  # the whole image's ε whatever the diagonal's


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"axis": 0}, "every axis"),
        ({"axis": "all", "boundary": "layer"}, "boundary"),
        ({"axis": "all", "relative_diffusivity": {"cbd": 0.5}}, "phases"),
    ],
)
def test_tensor_refuses_a_diagonal_that_does_not_fit(kwargs, match):
    ms = _stripes(n=8)
    diag = tortuosity(ms, phase="pore", **kwargs)
    with pytest.raises(InvalidInputError, match=match):
        tortuosity_tensor(ms, phase="pore", diagonal=diag)
    with pytest.raises(InvalidInputError, match="TortuosityResult"):
        tortuosity_tensor(ms, phase="pore", diagonal=object())  # type: ignore[arg-type]


@pytest.mark.parametrize("axis", ["all", "1"])
def test_cli_solves_each_direction_once(tmp_path, monkeypatch, axis):
    import json

    from typer.testing import CliRunner

    import microbat.transport.diffusion as diffusion
    from microbat.cli import app

    lab = _spheres((16, 16, 16), 0.5, 2.0, seed=1).astype(np.uint8)
    np.save(tmp_path / "s.npy", lab)
    calls = []
    real = diffusion.directional_solve
    monkeypatch.setattr(
        diffusion, "directional_solve", lambda *a, **k: calls.append(a[2]) or real(*a, **k)
    )
    args = ["tortuosity", str(tmp_path / "s.npy"), "--phases", "active=0,pore=1",
            "--phase", "pore", "--axis", axis, "--tensor", "--json"]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert sorted(calls) == [0, 1, 2]
    data = json.loads(res.stdout)
    ref_ms = Microstructure(lab, voxel_size="unknown", phases="active=0,pore=1")
    ref = tortuosity(ref_ms, phase="pore", axis="all")
    ten = tortuosity_tensor(ref_ms, phase="pore")
    for a in range(3):
        if axis == "all" or a == int(axis):
            assert data["tau"][a] == pytest.approx(ref.tau[a], rel=1e-12)
            assert data["tensor"][a][a] == pytest.approx(ref.tau[a], rel=1e-12)
        else:
            assert data["tau"][a] is None  # the asked axis only, as without --tensor
            assert data["tensor"][a][a] == pytest.approx(ten.tau[a, a], rel=1e-12)
