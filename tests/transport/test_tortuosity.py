import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microbat import Microstructure, transport
from microbat.core.errors import InvalidInputError, PhaseError
from microbat.transport.bruggeman import maxwell_conductivity
from microbat.transport.diffusion import PercolationWarning, tortuosity


def _spheres(shape, porosity, radius, seed):
    """Pore mask of overlapping solid spheres (Boolean model), seeded."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    lam = -np.log(porosity) / (4 / 3 * np.pi * radius**3)
    seeds = np.zeros(shape, bool)
    n = rng.poisson(lam * np.prod(shape))
    seeds[tuple(rng.integers(0, s, n) for s in shape)] = True
    return ndimage.distance_transform_edt(~seeds) > radius


def _ms(pore, h=1e-6):
    return Microstructure((~pore).astype(np.uint8), voxel_size=h, phases="pore=0,active=1")


def _sphere_cell(n, phi):
    c = (np.arange(n) + 0.5) / n - 0.5
    x, y, z = np.meshgrid(c, c, c, indexing="ij")
    r = (3 * phi / (4 * np.pi)) ** (1 / 3)
    return Microstructure(
        ((x**2 + y**2 + z**2) < r**2).astype(np.uint8), voxel_size=1e-6, phases="pore=0,active=1"
    )


# ----------------------------------------------------------------- straight channels
@pytest.mark.parametrize("boundary", ["face", "layer"])
def test_straight_channels(channels, boundary):
    with pytest.warns(PercolationWarning) as rec:
        r = tortuosity(channels, phase="pore", axis="all", boundary=boundary)
    assert ["axis 1" in str(w.message) for w in rec] == [True, False]  # axes 1 and 2
    eps = channels.fraction("pore")
    assert r.tau[0] == pytest.approx(1.0, abs=1e-12)
    assert r.deff_over_d0[0] == pytest.approx(eps, abs=1e-12)
    assert r.macmullin[0] == pytest.approx(1 / eps, rel=1e-12)
    assert r.percolating == (True, False, False)
    assert r.tau[1] == math.inf and r.tau[2] == math.inf
    assert r.deff_over_d0[1:] == (0.0, 0.0)
    assert r.boundary == boundary
    n = channels.shape[0]
    assert r.length_m[0] == pytest.approx((n if boundary == "face" else n - 1) * 1e-6)
    data = json.loads(r.to_json())  # allow_nan=False: no NaN or inf leaks out
    assert data["tau"][1] is None and data["percolating"][1] is False
    c = r.concentration[0]
    pore = channels.mask("pore")
    assert np.all(np.isnan(c[~pore])) and np.all(np.isfinite(c[pore]))
    assert r.concentration[1] is None


def test_package_function_and_default_axis(channels):
    r = transport.tortuosity(channels, phase="pore")  # the lazily exported function
    assert r.axes == (channels.thickness_axis,)
    assert r.tau[1] is None and r.percolating[1] is None


# -------------------------------------------------------------- series and parallel
def _stack(n_pore, n_cbd, axis):
    lab = np.zeros((12, 10, 8), np.uint8)
    sl = [slice(None)] * 3
    sl[axis] = slice(n_pore, n_pore + n_cbd)
    lab[tuple(sl)] = 1
    return Microstructure(lab, voxel_size=(1e-6, 0.5e-6, 2e-6), phases="pore=0,cbd=1")


def test_series_layers_harmonic_mean_exactly():
    ms = _stack(7, 5, axis=0)  # layers across axis 0: 7 of pore, 5 of cbd
    r = tortuosity(ms, phase="pore", axis=0, relative_diffusivity={"cbd": 0.1})
    harmonic = 12 / (7 / 1.0 + 5 / 0.1)
    assert r.deff_over_d0[0] == pytest.approx(harmonic, rel=1e-12)
    eps_w = (7 * 1.0 + 5 * 0.1) / 12
    assert r.epsilon[0] == pytest.approx(eps_w, rel=1e-12)
    assert r.tau[0] == pytest.approx(eps_w / harmonic, rel=1e-12)
    assert r.porosity == pytest.approx(1.0)  # both phases diffuse
    assert r.relative_diffusivity == {"pore": 1.0, "cbd": 0.1}


@pytest.mark.parametrize("boundary", ["face", "layer"])
def test_parallel_layers_arithmetic_mean_exactly(boundary):
    ms = _stack(4, 4, axis=1)  # slabs along axis 0: 4 of 10 rows are cbd
    r = tortuosity(ms, phase="pore", axis=0, relative_diffusivity={"cbd": 0.25}, boundary=boundary)
    assert r.deff_over_d0[0] == pytest.approx(0.6 * 1.0 + 0.4 * 0.25, rel=1e-12)
    assert r.tau[0] == pytest.approx(1.0, rel=1e-12)


def test_blocking_phase_and_relative_diffusivity_override():
    ms = _stack(6, 6, axis=0)
    with pytest.warns(PercolationWarning):
        r = tortuosity(ms, phase="pore", axis=0)  # cbd blocks by default
    assert r.tau[0] == math.inf and not r.percolating[0]
    r = tortuosity(ms, phase="pore,cbd", axis=0, relative_diffusivity={"cbd": 0.5})
    assert r.deff_over_d0[0] == pytest.approx(12 / (6 + 6 / 0.5), rel=1e-12)


# ------------------------------------------------------------- dead ends, isolated
def test_dead_ends_and_isolated_pores_never_lower_tau():
    lab = np.ones((16, 9, 9), np.uint8)
    lab[:, 4, 4] = 0  # straight channel
    lab[8, 1:4, 4] = 0  # dead-end branch attached to it
    lab[3:6, 1, 1] = 0  # isolated pore
    lab[0:5, 7, 7] = 0  # touches the inlet only
    ms = Microstructure(lab, voxel_size=1e-6, phases="pore=0,active=1")
    n = ms.n_voxels
    total = tortuosity(ms, phase="pore", axis=0)
    perc = tortuosity(ms, phase="pore", axis=0, porosity_definition="percolating")
    deff = 16 / n  # the channel alone carries the flux
    assert total.deff_over_d0[0] == pytest.approx(deff, rel=1e-12)
    assert perc.deff_over_d0[0] == pytest.approx(deff, rel=1e-12)
    assert total.porosity == pytest.approx((16 + 3 + 3 + 5) / n)
    assert total.porosity_percolating[0] == pytest.approx((16 + 3) / n)
    assert total.tau[0] == pytest.approx(27 / 16, rel=1e-12)
    assert perc.tau[0] == pytest.approx(19 / 16, rel=1e-12)
    assert perc.epsilon[0] < total.epsilon[0]
    assert min(total.tau[0], perc.tau[0]) >= 1.0


@pytest.mark.parametrize("boundary", ["face", "layer"])
def test_random_structures_obey_the_wiener_bound(boundary):
    for seed in range(3):
        ms = _ms(_spheres((20, 20, 20), 0.35, 2.5, seed))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PercolationWarning)
            r = tortuosity(ms, phase="pore", axis="all", boundary=boundary)
        for a in range(3):
            t = r.tau[a]
            assert not math.isnan(t)
            assert t == math.inf or 1.0 <= t < 50
            if t < math.inf:
                assert r.flux_spread[a] <= 1e-3


# --------------------------------------------------------------- Maxwell and refinement
def test_dilute_spheres_against_maxwell_with_first_order_refinement():
    errors = []
    for n in (24, 48):
        ms = _sphere_cell(n, 0.1)
        r = tortuosity(ms, phase="pore", axis=0, tol=1e-6, solver="mg")
        maxwell = maxwell_conductivity(ms.fraction("active"))
        errors.append(abs(r.deff_over_d0[0] / maxwell - 1))
    # the insulated sides are mirror planes: this is a simple cubic array of spheres,
    # for which Maxwell holds to O(φ^(10/3)) ~ 2e-4; the rest is the staircase surface
    assert errors[1] < 0.01
    order = math.log2(errors[0] / errors[1])
    assert order > 0.7


@pytest.mark.slow
def test_mesh_convergence_order_on_refined_spheres():
    errors = []
    for n in (24, 48, 96):
        ms = _sphere_cell(n, 0.05)
        r = tortuosity(ms, phase="pore", axis=0, tol=1e-7, solver="mg")
        errors.append(abs(r.deff_over_d0[0] / maxwell_conductivity(ms.fraction("active")) - 1))
    rates = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(rates > 0.7)
    assert errors[-1] < 0.003


def test_face_and_layer_conventions_on_one_volume():
    pore = _spheres((32, 32, 32), 0.4, 3.0, seed=11)
    ms = _ms(pore)
    face = tortuosity(ms, phase="pore", axis=0)
    layer = tortuosity(ms, phase="pore", axis=0, boundary="layer")
    diff = abs(layer.tau[0] / face.tau[0] - 1)
    assert 1e-4 < diff < 0.05
    # refinement of the same geometry shrinks the gap between the conventions
    fine = ms.upsample(2)
    face2 = tortuosity(fine, phase="pore", axis=0, solver="mg")
    layer2 = tortuosity(fine, phase="pore", axis=0, boundary="layer", solver="mg")
    assert abs(layer2.tau[0] / face2.tau[0] - 1) < 0.75 * diff


# ------------------------------------------------------------ solvers and precision
def test_solvers_and_precisions_agree():
    ms = _ms(_spheres((30, 28, 26), 0.4, 2.5, seed=4))
    ref = tortuosity(ms, phase="pore", axis="all", solver="direct")
    for solver, precision in (("mg", "double"), ("mg", "single"), ("amg", "double")):
        r = tortuosity(ms, phase="pore", axis="all", solver=solver, precision=precision, tol=1e-4)
        assert r.precision == precision
        for a in range(3):
            assert r.tau[a] == pytest.approx(ref.tau[a], rel=2e-5)
            assert r.flux_spread[a] <= 1e-4


def test_two_dimensional_image():
    lab = np.ones((20, 12), np.uint8)
    lab[:, 3:9] = 0
    ms = Microstructure(lab, voxel_size=(1e-6, 2e-6), phases="pore=0,active=1")
    with pytest.warns(PercolationWarning):
        r = tortuosity(ms, phase="pore", axis="all")
    assert r.tau == (pytest.approx(1.0), math.inf)
    assert r.concentration[0].shape == (20, 12)


def test_anisotropic_voxels_on_an_extruded_structure():
    # a 2D pattern extruded along axis 2: tau along 0 ignores h2 and n2; along 2 it is 1
    base = _spheres((24, 24, 1), 0.5, 3.0, seed=2)
    taus = []
    for n2, h2 in ((3, 1e-6), (5, 3e-6)):
        ms = _ms(np.repeat(base, n2, axis=2), h=(1e-6, 1e-6, h2))
        r = tortuosity(ms, phase="pore", axis=(0, 2))
        taus.append(r.tau[0])
        assert r.tau[2] == pytest.approx(1.0, rel=1e-12)
    assert taus[0] == pytest.approx(taus[1], rel=1e-10)


# -------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"phase": "gas"}, PhaseError, "unknown phase"),
        ({"relative_diffusivity": {"pore": 0.0}}, PhaseError, "positive"),
        ({"axis": 3}, InvalidInputError, "not an axis"),
        ({"axis": "x"}, InvalidInputError, "use 0, 1, 2 or 'all'"),
        ({"boundary": "faces"}, InvalidInputError, "TauFactor"),
        ({"porosity_definition": "open"}, InvalidInputError, "percolating"),
        ({"tol": 0.0}, InvalidInputError, "tolerance"),
        ({"precision": "half"}, InvalidInputError, "single"),
        ({"relative_diffusivity": {"active": -1}}, InvalidInputError, "non-negative"),
    ],
)
def test_bad_arguments(channels, kwargs, exc, match):
    kwargs.setdefault("phase", "pore")
    with pytest.raises(exc, match=match):
        tortuosity(channels, **kwargs)


def test_plain_array_is_refused_with_a_hint():
    with pytest.raises(InvalidInputError, match="Microstructure"):
        tortuosity(np.zeros((4, 4, 4), np.uint8))  # type: ignore[arg-type]


# ------------------------------------------------------------------------- peers
def test_agrees_with_taufactor_in_the_face_convention():
    taufactor = pytest.importorskip("taufactor")
    pore = _spheres((40, 40, 40), 0.45, 3.0, seed=8)
    ours = tortuosity(_ms(pore), phase="pore", axis=0, tol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        solver = taufactor.Solver(pore.astype(np.uint8), device="cpu")
        theirs = float(np.ravel(solver.solve(verbose=False, conv_crit=1e-5, iter_limit=200000))[0])
    assert ours.tau[0] == pytest.approx(theirs, rel=1e-3)


@pytest.mark.slow
def test_agrees_with_porespy_in_the_layer_convention():
    pytest.importorskip("openpnm")
    porespy = pytest.importorskip("porespy")
    pore = _spheres((40, 40, 40), 0.45, 3.0, seed=8)
    pore[5:8, 5:8, 5:8] = True  # an isolated pocket: trimmed by PoreSpy, kept in "total"
    pore[4:9, 4:9, [4, 8]] = False
    pore[4:9, [4, 8], 4:9] = False
    pore[[4, 8], 4:9, 4:9] = False
    ours = tortuosity(
        _ms(pore), phase="pore", axis=0, boundary="layer", porosity_definition="percolating",
        tol=1e-6,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = porespy.simulations.tortuosity_fd(pore, axis=0, ftol=1e-6)
    assert ours.epsilon[0] == pytest.approx(theirs.effective_porosity, rel=1e-12)
    assert ours.tau[0] == pytest.approx(theirs.tortuosity, rel=1e-3)


# ---------------------------------------------------------------------------- CLI
def test_cli_tortuosity_json(tmp_path, channels):
    from typer.testing import CliRunner

    from microbat.cli import app

    path = tmp_path / "chan.npy"
    np.save(path, np.asarray(channels.labels))
    base = [str(path), "--phases", "pore=0,active=1", "--voxel-size", "1um"]
    runner = CliRunner()
    res = runner.invoke(app, ["tortuosity", *base, "--phase", "pore", "--axis", "all", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    for key in ("tau", "tensor", "deff_over_d0", "porosity", "percolating", "boundary"):
        assert key in data
    assert data["tau"][0] == pytest.approx(1.0)
    assert data["tau"][1:] == [None, None]
    assert data["percolating"] == [True, False, False]
    assert data["boundary"] == "face"
    eps = channels.fraction("pore")
    assert data["bruggeman_tau"] == pytest.approx(eps**-0.5)
    assert len(data["tensor"]) == 3 and data["tensor"][0][0] == pytest.approx(1.0)
    assert data["tensor"][1][1] is None and data["tensor"][0][1] == 0.0
    assert len(data["warnings"]) == 2
    res = runner.invoke(
        app,
        ["tortuosity", *base, "--phase", "pore", "--boundary", "layer", "--axis", "0", "--json"],
    )
    data = json.loads(res.stdout)
    assert data["boundary"] == "layer" and data["tau"][1] is None
    assert data["percolating"] == [True, None, None]
    assert data["tensor"][0][1] is None  # off-diagonal terms not computed
    human = runner.invoke(app, ["tortuosity", *base, "--phase", "pore"])
    assert human.exit_code == 0 and "tau" in human.output
    bad = runner.invoke(app, ["tortuosity", *base, "--phase", "pore", "--boundary", "edge"])
    assert bad.exit_code == 1 and "TauFactor" in bad.output
    bad = runner.invoke(app, ["tortuosity", *base, "--relative-diffusivity", "cbd"])
    assert bad.exit_code == 1 and "name=value" in bad.output


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**16),
    fill=st.floats(0.3, 0.8),
    boundary=st.sampled_from(["face", "layer"]),
)
def test_tau_is_never_below_one_or_nan(seed, fill, boundary):
    pore = np.random.default_rng(seed).random((7, 6, 5)) < fill
    ms = _ms(pore)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PercolationWarning)
        r = tortuosity(ms, phase="pore", axis="all", boundary=boundary)
    for a in range(3):
        t = r.tau[a]
        assert not math.isnan(t)
        assert t >= 1.0 - 1e-12
        assert (t == math.inf) == (not r.percolating[a])
        assert r.deff_over_d0[a] <= r.epsilon[a] + 1e-15
