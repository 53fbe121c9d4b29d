"""Loads (resolved run, file, closed form), the stress result, particles and the CLI verb."""

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from microbat import Microstructure
from microbat.core.errors import FileFormatError, InvalidInputError
from microbat.degradation import (
    MechanicsParameters,
    diffusion_stress,
    galvanostatic_load,
    label_particles,
    load_from_file,
    load_from_resolved,
    screen_particles,
    stress_at_c_rate,
)
from microbat.degradation.particles import particle_percentile
from microbat.degradation.sphere import constant_flux_concentration

H = 0.4e-6


@pytest.fixture(scope="module")
def electrode():
    from microbat.synth import electrode as make

    return make((24, 24, 24), voxel_size=H, mean_radius=2e-6, seed=3)


@pytest.fixture(scope="module")
def particles(electrode):
    return label_particles(electrode)


def _sphere_ms(radius=10, pad=2):
    n = 2 * radius + 2 * pad
    idx = np.arange(n) + 0.5 - n / 2
    z, y, x = np.meshgrid(idx, idx, idx, indexing="ij")
    lab = (np.sqrt(x * x + y * y + z * z) <= radius).astype(np.uint8) * 2
    return Microstructure(lab, voxel_size=H, phases="pore=0,active=2")


# ---------------------------------------------------------------- particles
def test_touching_spheres_are_split():
    n = 40
    idx = np.arange(n) + 0.5
    z, y, x = np.meshgrid(idx, idx, idx, indexing="ij")
    a = (z - 20) ** 2 + (y - 20) ** 2 + (x - 12) ** 2 <= 81
    b = (z - 20) ** 2 + (y - 20) ** 2 + (x - 27) ** 2 <= 81
    ms = Microstructure((a | b).astype(np.uint8) * 2, voxel_size=H, phases="pore=0,active=2")
    p = label_particles(ms)
    assert p.clusters == 1 and p.n == 2
    assert np.allclose(p.equivalent_radius_m, 9 * H, rtol=0.06)
    assert label_particles(ms, split=False).n == 1


def test_particle_percentile_matches_numpy():
    rng = np.random.default_rng(0)
    lab = rng.integers(0, 4, size=500)
    val = rng.normal(size=500)
    got = particle_percentile(lab, val, 3, 99.0)
    for k in (1, 2, 3):
        assert math.isclose(got[k - 1], np.percentile(val[lab == k], 99), rel_tol=1e-12)


# -------------------------------------------------------------------- loads
def test_galvanostatic_load_reproduces_the_sphere_profile():
    ms = _sphere_ms(12)
    p = label_particles(ms)
    assert p.n == 1
    load = galvanostatic_load(p, MechanicsParameters().active, 2.0, time="steady")
    c = load.concentration[ms.mask("active")]
    mat = MechanicsParameters().active
    j = p.equivalent_radius_m[0] / 3 * mat.max_concentration_mol_per_m3 * 0.64 * 2 / 3600
    scale = j * p.equivalent_radius_m[0] / mat.diffusivity_m2_per_s
    # the voxel mean is the sphere's mean; the range is the parabola's (x²/2 from 0 to ½)
    c0 = mat.max_concentration_mol_per_m3 * 0.27
    assert math.isclose(c.mean(), c0 + 3 * j * 1800 / p.equivalent_radius_m[0], rel_tol=1e-9)
    assert abs((c.max() - c.min()) / scale - 0.5) < 0.05
    assert load.initial == pytest.approx(c0)


def test_galvanostatic_load_transient_depth_mapping():
    ms = _sphere_ms(12)
    p = label_particles(ms)
    mat = MechanicsParameters().active
    load = galvanostatic_load(p, mat, 5.0, time="end")
    tau = mat.diffusivity_m2_per_s * 720 / p.equivalent_radius_m[0] ** 2
    assert load.info["tau_median"] == pytest.approx(tau)
    # the centre voxel holds the series value at x = 0 (relative to the mean)
    act = ms.mask("active")
    c = load.concentration
    centre = c[tuple(s // 2 for s in ms.shape)]
    j = p.equivalent_radius_m[0] / 3 * mat.max_concentration_mol_per_m3 * 0.64 * 5 / 3600
    scale = j * p.equivalent_radius_m[0] / mat.diffusivity_m2_per_s
    exact0 = constant_flux_concentration(np.array([0.0]), tau)[0] - 3 * tau
    assert abs((centre - c[act].mean()) / scale - exact0) < 0.02


def test_load_from_file(tmp_path, electrode):
    act = electrode.mask("active")
    c = np.where(act, 30000.0, np.nan)
    np.save(tmp_path / "c.npy", c)
    ld = load_from_file(tmp_path / "c.npy", electrode)
    assert np.allclose(ld.concentration[act], 30000.0)
    np.save(tmp_path / "s.npy", np.where(act, 0.5, 0.0))
    ld = load_from_file(tmp_path / "s.npy", electrode, units="stoichiometry", max_concentration=6e4)
    assert np.allclose(ld.concentration[act], 3e4)
    with pytest.raises(InvalidInputError, match="c_max"):
        load_from_file(tmp_path / "s.npy", electrode, units="stoichiometry")
    np.save(tmp_path / "bad.npy", np.zeros((3, 3, 3)))
    with pytest.raises(InvalidInputError, match="shape"):
        load_from_file(tmp_path / "bad.npy", electrode)
    c[act.nonzero()[0][0], act.nonzero()[1][0], act.nonzero()[2][0]] = np.nan
    np.save(tmp_path / "nan.npy", c)
    with pytest.raises(InvalidInputError, match="NaN"):
        load_from_file(tmp_path / "nan.npy", electrode)
    with pytest.raises(FileFormatError):
        load_from_file(tmp_path / "missing.npy", electrode)


@pytest.fixture(scope="module")
def resolved_run():
    from microbat.cell.resolved import ResolvedOptions, simulate_discharge

    lab = np.zeros((8, 6, 6), np.uint8)
    lab[:, :3, :3] = 2
    lab[:, 3:, 3:] = 2
    lab[:5, :3, 3:5] = 1
    ms = Microstructure(lab, voxel_size=1e-6, phases="pore=0,cbd=1,active=2")
    res = simulate_discharge(
        ms, c_rate=2.0, options=ResolvedOptions(max_steps=10, dv_target_V=0.02),
        snapshot_times=[30.0, 150.0],
    )  # fmt: skip
    return ms, res


def test_load_from_resolved_memory_and_folder(resolved_run, tmp_path):
    ms, res = resolved_run
    ld = load_from_resolved(res, ms, snapshot=0)
    assert ld.source == "resolved" and ld.info["snapshot"] == 0
    # the initial state recovered from lithium conservation: the set's initial c_s
    c0 = 17038.0  # Chen2020 positive electrode
    assert ld.initial == pytest.approx(c0, rel=2e-3)
    res.save_fields(tmp_path / "fields.h5")
    ld2 = load_from_resolved(tmp_path, ms, snapshot=0)
    assert np.allclose(ld2.concentration, ld.concentration, equal_nan=True, rtol=1e-6)
    assert ld2.initial == pytest.approx(ld.initial, rel=1e-6)
    last = load_from_resolved(tmp_path / "fields.h5", ms, time_s=1e9)
    assert last.info["time_s"] == pytest.approx(res.snapshots[-1].time_s)
    with pytest.raises(InvalidInputError, match="snapshot 99"):
        load_from_resolved(res, ms, snapshot=99)
    with pytest.raises(FileFormatError):
        load_from_resolved(tmp_path / "nothing", ms)
    out = diffusion_stress(ms, ld, reference="initial")
    assert out.load["source"] == "resolved"
    assert out.load["c_ref_mol_m3"] == pytest.approx(ld.initial)


# ------------------------------------------------------------------- stress
@pytest.fixture(scope="module")
def result(electrode, particles):
    return stress_at_c_rate(electrode, 3.0, particles=particles)


def test_stress_result_fields_and_summary(result, electrode):
    solid = electrode.mask("active,cbd")
    for name, arr in result.field_arrays().items():
        assert arr.shape == electrode.shape, name
        if name.startswith("sigma") or name in ("von_mises", "max_principal", "hydrostatic"):
            assert arr.dtype == np.float32
            assert np.all(np.isnan(arr[~solid])) and np.all(np.isfinite(arr[solid])), name
    s = result.summary
    for key in ("max_principal_stress_Pa", "von_mises_p99_Pa", "particles", "cracked_fraction",
                "critical_c_rate"):  # fmt: skip
        assert key in s
    assert s["energy_balance_error"] < 1e-6
    assert s["particles"] == len(result.particles["id"])
    assert "critical_c_rate_fe" in result.particles
    d = result.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["critical_c_rate"]["particles"] == s["particles"]


def test_free_boundary_vs_clamped(electrode, particles):
    load = galvanostatic_load(particles, MechanicsParameters().active, 3.0)
    a = diffusion_stress(electrode, load, particles=particles, boundary="free")
    assert a.boundary["collector"] == "free"
    # uniform load relative to the mean -> a free body is stress-free
    uni = np.where(electrode.mask("active"), 20000.0, np.nan)
    b = diffusion_stress(electrode, uni, particles=particles, boundary="free")
    assert b.summary["max_principal_stress_Pa"] < 1e-3 * 1e6
    # relative to a lower reference the clamped electrode is compressed near the collector
    c = diffusion_stress(electrode, uni, particles=particles, reference=15000.0)
    assert c.summary["min_principal_stress_Pa"] < -1e8


def test_fracture_ratio_and_crack_flags_consistent(result):
    t = result.particles
    kic = MechanicsParameters().active.fracture_toughness_Pa_sqrt_m  # the default K_IC
    ratio = t["stress_intensity_Pa_sqrt_m"] / kic
    assert np.array_equal(t["cracked"], ratio >= 1.0)
    assert np.nanmax(result.fracture_ratio) >= np.nanmax(ratio) - 1e-6


def test_bad_input(electrode):
    lab = np.zeros((6, 6, 6), np.uint8)
    lab[:, :, :3] = 1
    no_active = Microstructure(lab, voxel_size=H, phases="pore=0,cbd=1")
    with pytest.raises(InvalidInputError, match="no active"):
        diffusion_stress(no_active, np.zeros((6, 6, 6)))
    with pytest.raises(InvalidInputError, match="shape"):
        diffusion_stress(electrode, np.zeros((3, 3, 3)))
    with pytest.raises(InvalidInputError, match="initial"):
        diffusion_stress(electrode, np.full(electrode.shape, 1.0), reference="initial")
    with pytest.raises(InvalidInputError, match="boundary"):
        diffusion_stress(electrode, np.full(electrode.shape, 1.0), boundary="glued")  # type: ignore[arg-type]


def test_parameters_validation(tmp_path):
    from microbat.degradation.parameters import MATERIALS, MechanicalMaterial

    with pytest.raises(InvalidInputError, match="Young"):
        MechanicalMaterial("x", young_modulus_Pa=0.0, poisson_ratio=0.3)
    with pytest.raises(InvalidInputError, match="Poisson"):
        MechanicalMaterial("x", young_modulus_Pa=1e9, poisson_ratio=0.5)
    p = MechanicsParameters(active="graphite")
    assert p.active is MATERIALS["graphite"]
    assert p.active.critical_energy_release_rate_J_per_m2 == pytest.approx(1e12 * (1 - 0.09) / 15e9)
    (tmp_path / "p.toml").write_text(
        'flaw_fraction = 0.1\n[active]\nbase = "graphite"\nyoung_modulus_Pa = 20e9\n'
    )
    q = MechanicsParameters.from_file(tmp_path / "p.toml")
    assert q.active.young_modulus_Pa == 20e9 and q.active.name == "graphite"
    (tmp_path / "bad.toml").write_text("[active]\nyoung_modulus_Pa = 20e9\n")
    with pytest.raises(InvalidInputError, match="poisson_ratio"):
        MechanicsParameters.from_file(tmp_path / "bad.toml")
    (tmp_path / "bad2.toml").write_text("stiffness = 3\n")
    with pytest.raises(InvalidInputError, match="unknown"):
        MechanicsParameters.from_file(tmp_path / "bad2.toml")


def test_screening_of_labelled_particles(particles):
    res = screen_particles(particles, [1, 2, 5, 10])
    assert res.critical_c_rate.shape == (particles.n,)
    assert np.all(np.diff(res.cracked_fraction) >= 0)


# ---------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def electrode_file(tmp_path_factory, electrode):
    from microbat.io import save_microstructure

    p = tmp_path_factory.mktemp("cli") / "e.h5"
    save_microstructure(electrode, p)
    return p


def _run(*args):
    from microbat.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_json_and_outputs(electrode_file, tmp_path):
    out = tmp_path / "out"
    r = _run("stress", electrode_file, "--c-rate", "2", "--young-modulus", "140GPa",
             "--poisson-ratio", "0.3", "--partial-molar-volume", "1.3e-6", "--boundary",
             "clamped", "--json", "--out", out, "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    for key in ("max_principal_stress_Pa", "von_mises_p99_Pa", "particles", "cracked_fraction",
                "critical_c_rate"):  # fmt: skip
        assert key in d
    assert d["parameters"]["active"]["young_modulus_Pa"] == 140e9
    assert d["parameters"]["active"]["poisson_ratio"] == 0.3
    names = {p.name for p in out.iterdir()}
    assert {"stress.vti", "fields.npz", "particles.csv", "stress_slice.png",
            "peak_stress_histogram.png", "result.json"} <= names  # fmt: skip
    assert not [n for n in names if n.startswith(".")]  # no temporary left
    with np.load(out / "fields.npz") as z:
        for k in ("sigma_xx", "sigma_yy", "sigma_zz", "von_mises", "max_principal"):
            assert z[k].dtype == np.float32 and np.isnan(z[k]).any()
    from microbat.io import read_vti

    v = read_vti(out / "stress.vti", dataset="von_mises")
    assert v.shape == (24, 24, 24)


def test_cli_concentration_file_and_free(electrode_file, electrode, tmp_path):
    c = np.where(electrode.mask("active"), 0.5, np.nan)
    np.save(tmp_path / "s.npy", c)
    r = _run("stress", electrode_file, "--concentration", tmp_path / "s.npy", "--units",
             "stoichiometry", "--boundary", "free", "--json", "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["load"]["source"] == "file" and d["boundary"]["collector"] == "free"
    assert d["max_principal_stress_Pa"] < 1e3  # uniform field, free body


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--young-modulus", "-5GPa"], "Young"),
        (["--young-modulus", "0"], "Young"),
        (["--poisson-ratio", "0.5"], "Poisson"),
        (["--young-modulus", "15 furlongs"], "--young-modulus"),
        (["--boundary", "glued"], "--boundary"),
        (["--concentration", "WRONG"], "shape"),
        (["--concentration", "NAN"], "NaN"),
        (["--material", "unobtainium"], "material"),
        (["--params", "MISSING"], "diffusivity"),
        (["--params", "BARE"], "lacks max_concentration_mol_per_m3"),
    ],
)
def test_cli_bad_input_one_line_nothing_written(electrode_file, electrode, tmp_path, args, match):
    np.save(tmp_path / "wrong.npy", np.zeros((3, 3, 3)))
    c = np.where(electrode.mask("active"), 2e4, np.nan)
    c[tuple(np.argwhere(electrode.mask("active"))[0])] = np.nan
    np.save(tmp_path / "nan.npy", c)
    (tmp_path / "p.toml").write_text('[active]\nbase = "nmc811"\ndiffusivity_m2_per_s = -1\n')
    (tmp_path / "bare.toml").write_text("[active]\nyoung_modulus_Pa = 1e9\npoisson_ratio = 0.3\n")
    sub = {"WRONG": tmp_path / "wrong.npy", "NAN": tmp_path / "nan.npy",
           "MISSING": tmp_path / "p.toml", "BARE": tmp_path / "bare.toml"}  # fmt: skip
    args = [sub.get(a, a) for a in args]
    out = tmp_path / "out"
    r = _run("stress", electrode_file, *args, "--out", out, "-q")
    assert r.exit_code == 1
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and match in err[0], r.stderr
    assert not out.exists()


def test_cli_no_active_phase(tmp_path):
    from microbat.io import save_microstructure

    lab = np.zeros((6, 6, 6), np.uint8)
    lab[:, :, :3] = 1
    save_microstructure(Microstructure(lab, voxel_size=H, phases="pore=0,cbd=1"), tmp_path / "x.h5")
    r = _run("stress", tmp_path / "x.h5", "--json", "-q")
    assert r.exit_code == 1 and "no active" in r.stderr
