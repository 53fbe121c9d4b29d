"""The aging loop's plating from one resolved charge: hand-over, crop, modes, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from microbat.cell.resolved import ResolvedOptions, simulate_charge, sphere_lattice
from microbat.core.errors import InvalidInputError
from microbat.degradation._aging_network import aging_geometry
from microbat.degradation.aging import AgingParameters, age, resolved_plating
from microbat.degradation.parameters import NMC811
from microbat.degradation.particles import label_particles

H = 0.5e-6
C_RATE = 4.0  # plates on the 12-voxel lattice (the charge ends below 0 V vs Li)


@pytest.fixture(scope="module")
def lattice():
    ms = sphere_lattice((12, 8, 8), voxel_size=H)
    return ms, label_particles(ms)


@pytest.fixture(scope="module")
def reference(lattice):
    """The resolved run on its own: its plated lithium per particle, from its last fields."""
    ms, particles = lattice
    last: dict = {}

    def hook(t, fields):
        last["plated"] = np.array(fields["plated_Li"], float)

    run = simulate_charge(
        ms, c_rate=C_RATE, options=ResolvedOptions(plating="irreversible"), snapshot_times=[],
        on_fields=hook,
    )  # fmt: skip
    vol = H**3
    per_particle = np.bincount(
        particles.labels.ravel(), np.nan_to_num(last["plated"]).ravel() * vol, particles.n + 1
    )
    return run, per_particle


def test_plated_lithium_conserved_across_the_hand_over(lattice, reference):
    ms, particles = lattice
    run, per_particle = reference
    assert run.plated_Li_mol[-1] > 0
    # every plated mole of the run sits on a particle or on unlabelled active voxels
    assert per_particle.sum() == pytest.approx(run.plated_Li_mol[-1], rel=1e-12)
    cycles = 45
    res = age(ms, cycles=cycles, c_rate=C_RATE, mechanisms="sei,cracks,plating")
    rp = res.plating
    assert rp is not None and rp["mode"] == "irreversible" and rp["crop"] is None
    assert rp["run_plated_mol"] == pytest.approx(run.plated_Li_mol[-1], rel=1e-12)
    # the loop's plating: the run's per-particle plated lithium summed, every cycle
    lost = res.lithium_lost_mol["plating"]
    assert lost == pytest.approx(cycles * per_particle[1:].sum(), rel=1e-12)
    assert rp["unlabelled_mol"] == pytest.approx(per_particle[0], abs=1e-30)
    curve = res.lithium_lost_curve_mol["plating"]
    np.testing.assert_allclose(curve, res.cycle * per_particle[1:].sum(), rtol=1e-12)
    assert res.lithium_lost_mol["total"] == pytest.approx(
        lost + res.lithium_lost_mol["sei_original"] + res.lithium_lost_mol["sei_cracks"]
    )
    # per particle: plating alone, the map of lithium lost is the run's per particle
    rp_obj = resolved_plating(ms, particles, c_rate=C_RATE)
    only = age(ms, cycles=cycles, c_rate=C_RATE, mechanisms="plating", particles=particles,
               plating=rp_obj)  # fmt: skip
    # a given hand-over wins over a constant rate
    both = age(ms, cycles=cycles, c_rate=C_RATE, mechanisms="plating", particles=particles,
               plating=rp_obj, params=AgingParameters(plating_rate_mol_per_m2_s=1.0))  # fmt: skip
    assert both.lithium_lost_mol["plating"] == only.lithium_lost_mol["plating"]
    np.testing.assert_allclose(
        only.maps["lithium_lost_mol"][-1], cycles * per_particle[1:], rtol=1e-12, atol=0
    )
    # the heterogeneity index counts it: plating alone gives the CoV of its per-area rate
    geom = aging_geometry(ms, particles)
    r = per_particle[1:] / geom.area_m2
    w = geom.area_m2
    mean = np.sum(w * r) / np.sum(w)
    cov = np.sqrt(np.sum(w * (r - mean) ** 2) / np.sum(w)) / mean
    assert only.heterogeneity_cov[0] == pytest.approx(cov, rel=1e-9)
    # capacity: F × lithium lost (4C plates ~2.7 % of the capacity per charge here),
    # clipped at 0 once the inventory is gone
    fade = 96485.33212 * only.cycle * per_particle[1:].sum() / (only.capacity_Ah * 3600.0)
    np.testing.assert_allclose(1.0 - only.capacity_retention, np.minimum(fade, 1.0), rtol=1e-6)
    assert fade[-1] > 1.0 > fade[1]


def test_plating_off_gives_no_plating_loss(lattice):
    ms, particles = lattice
    res = age(ms, cycles=20, c_rate=C_RATE, mechanisms="sei,cracks", particles=particles)
    assert res.lithium_lost_mol["plating"] is None and res.plating is None
    assert np.all(res.lithium_lost_curve_mol["plating"] == 0.0)
    assert res.lithium_lost_mol["total"] == pytest.approx(
        res.lithium_lost_mol["sei_original"] + res.lithium_lost_mol["sei_cracks"], rel=1e-15
    )


def test_lateral_crop_by_layer_on_a_periodic_lattice():
    # the lattice repeats every 8 voxels across: an 8 × 8 crop of a 16 × 16 image plates
    # a quarter of the whole, and the layer extrapolation restores the rest
    ms = sphere_lattice((12, 16, 16), voxel_size=H)
    particles = label_particles(ms)
    crop = (slice(None), slice(4, 12), slice(4, 12))
    part = resolved_plating(ms, particles, c_rate=C_RATE, crop=crop)
    whole = resolved_plating(ms, particles, c_rate=C_RATE)
    assert part.crop == [[0, 12], [4, 12], [4, 12]] and whole.crop is None
    assert part.measured_mol.sum() == pytest.approx(whole.run_plated_mol / 4, rel=1e-6)
    assert part.lost_mol.sum() == pytest.approx(whole.lost_mol.sum(), rel=1e-6)
    np.testing.assert_allclose(part.lost_mol, whole.lost_mol, rtol=1e-5)
    with pytest.raises(InvalidInputError, match="whole thickness"):
        resolved_plating(ms, particles, c_rate=C_RATE, crop=(slice(0, 6), slice(None), None))


def test_partially_reversible_loses_the_dead_lithium():
    from microbat import Microstructure

    lab = np.zeros((8, 6, 6), np.uint8)
    lab[:, :3, :3] = 2
    lab[:, 3:, 3:] = 2
    lab[:5, :3, 3:5] = 1
    ms = Microstructure(lab, voxel_size=1e-6, phases="pore=0,cbd=1,active=2")
    particles = label_particles(ms, min_voxels=8)
    opt = ResolvedOptions(dead_lithium_decay_per_s=1e-3)
    rp = resolved_plating(ms, particles, c_rate=3.0, mode="partially_reversible", options=opt)
    # the dead lithium rebuilt per voxel adds up to the run's dead lithium
    assert rp.run_dead_mol > 0
    assert rp.run_lost_mol == pytest.approx(rp.run_dead_mol, rel=1e-9)
    assert rp.lost_mol.sum() + rp.unlabelled_mol == pytest.approx(rp.run_dead_mol, rel=1e-9)
    assert rp.run_lost_mol < rp.run_plated_mol


def test_plating_on_a_positive_electrode_is_refused(lattice, tmp_path):
    ms, particles = lattice
    with pytest.raises(InvalidInputError, match="negative-electrode material"):
        age(ms, cycles=5, params=AgingParameters(material=NMC811), mechanisms="sei,plating")
    with pytest.raises(InvalidInputError, match="negative electrode"):
        resolved_plating(ms, particles, c_rate=1.0, electrode="positive")
    with pytest.raises(InvalidInputError, match="plating mode 'reversible'"):
        resolved_plating(ms, particles, c_rate=1.0, mode="reversible")
    from typer.testing import CliRunner

    from microbat.cli import app
    from microbat.io import save_microstructure

    path = tmp_path / "lattice.h5"
    save_microstructure(ms, path)
    r = CliRunner().invoke(
        app, ["age", str(path), "--mechanisms", "sei,plating", "--material", "nmc811"]
    )
    assert r.exit_code == 1 and "negative-electrode material" in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_cli_age_with_resolved_plating(lattice, reference, tmp_path):
    from typer.testing import CliRunner

    from microbat.cli import app
    from microbat.io import save_microstructure

    ms, _ = lattice
    _, per_particle = reference
    path = tmp_path / "lattice.h5"
    save_microstructure(ms, path)
    args = ["age", str(path), "--cycles", "10", "--c-rate", str(C_RATE), "--json", "--quiet",
            "--mechanisms", "sei,cracks,plating"]  # fmt: skip
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    for key in ("cycles", "capacity_retention", "resistance_growth", "lithium_lost_mol",
                "heterogeneity_cov"):  # fmt: skip
        assert key in d
    assert d["lithium_lost_mol"]["plating"] == pytest.approx(10 * per_particle[1:].sum(), rel=1e-9)
    assert d["plating"]["mode"] == "irreversible"


def test_twin_aging_stage_with_resolved_plating(tmp_path):
    from microbat.pipeline.twin import run_twin

    ms = sphere_lattice((12, 16, 16), voxel_size=H)
    overrides = {
        "transport.enabled": False, "cell.enabled": False, "eis.enabled": False,
        "gas.enabled": False, "heat.enabled": False, "representative.enabled": False,
        "mechanics.enabled": False, "metrics.sizes": False, "plating.enabled": False,
        "aging.cycles": 20, "aging.c_rate": C_RATE,
        "aging.mechanisms": ["sei", "cracks", "plating"], "plating.lateral_size": 8,
    }  # fmt: skip
    res = run_twin(ms, out_dir=tmp_path, overrides=overrides)
    assert res.stage("aging").status == "complete"
    s = json.loads((tmp_path / "results.json").read_text())["stages"]["aging"]["result"]
    pl = s["plating"]
    assert pl["crop"] == [[0, 12], [4, 12], [4, 12]] and pl["mode"] == "irreversible"
    assert s["lithium_lost_mol"]["plating"] == pytest.approx(20 * pl["lost_per_charge_mol"])
    assert any("lateral_size = 8" in n for n in s["notes"])
    assert "plated lithium" in (tmp_path / "report.html").read_text()


def test_cli_resume_reuses_the_plating_charge(tmp_path):
    from typer.testing import CliRunner

    from microbat.cli import app
    from microbat.degradation.aging import ResolvedPlating
    from microbat.io import save_microstructure

    ms = sphere_lattice((12, 8, 8), voxel_size=H)
    path = tmp_path / "lattice.h5"
    save_microstructure(ms, path)
    out = tmp_path / "out"
    base = ["age", str(path), "--c-rate", str(C_RATE), "--json", "--quiet", "--out", str(out),
            "--mechanisms", "sei,plating"]  # fmt: skip
    runner = CliRunner()
    r1 = runner.invoke(app, [*base, "--cycles", "4"])
    assert r1.exit_code == 0, r1.output
    d1 = json.loads(r1.stdout)
    saved = ResolvedPlating.load(out / "aging_plating.npz")
    assert saved.lost_mol.sum() == pytest.approx(d1["plating"]["lost_per_charge_mol"], rel=1e-15)
    r2 = runner.invoke(app, [*base, "--cycles", "8", "--resume"])
    assert r2.exit_code == 0, r2.output
    d2 = json.loads(r2.stdout)
    assert d2["resumed"] and d2["cycle"][-1] == 8
    # the same charge (its recorded wall time too): read back, not run again
    assert d2["plating"]["charge"] == d1["plating"]["charge"]
    assert d2["lithium_lost_mol"]["plating"] == pytest.approx(
        2 * d1["lithium_lost_mol"]["plating"], rel=1e-12
    )
