"""The twin's mechanics stage: runs on a labelled electrode, reports, diagnoses, resumes."""

import json

import pytest

from microbat.core.errors import InvalidInputError
from microbat.pipeline.config import TwinConfig, apply_overrides
from microbat.pipeline.twin import run_twin

FAST = {
    "transport.enabled": False,
    "cell.enabled": False,
    "eis.enabled": False,
    "representative.enabled": False,
    "metrics.sizes": False,
    "mechanics.subvolume": [16, 16, 16],
    "mechanics.c_rates": [1, 3, 10],
}


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    from microbat.synth import electrode

    ms = electrode((32, 32, 32), voxel_size=0.4e-6, mean_radius=2e-6, seed=3)
    out = tmp_path_factory.mktemp("twin")
    res = run_twin(ms, out_dir=out, overrides=FAST)
    return out, res, ms


def test_stage_runs_and_reports(twin):
    out, res, _ = twin
    assert res.stage("mechanics").status == "complete"
    results = json.loads((out / "results.json").read_text())
    mech = results["stages"]["mechanics"]["result"]
    assert mech["particles"] > 0
    assert [r["c_rate"] for r in mech["screening"]] == [1.0, 3.0, 10.0]
    fr = [r["cracked_fraction"] for r in mech["screening"]]
    assert fr == sorted(fr)
    assert mech["fe"]["subvolume"][0] == [0, 16]  # the collector-side box
    assert mech["fe"]["unknowns"] > 0 and mech["fe"]["energy_balance_error"] < 1e-6
    html = (out / "report.html").read_text()
    assert "Mechanics (particle cracking)" in html and "critical C-rate" in html
    assert any("Particle cracking" in f for f in results["diagnosis"]["findings"])


def test_stage_resumes_and_recomputes_on_its_settings(twin):
    out, _, ms = twin
    same = run_twin(ms, out_dir=out, overrides=FAST)
    assert same.stage("mechanics").reused
    changed = run_twin(ms, out_dir=out, overrides={**FAST, "mechanics.fe_c_rate": 2.0})
    assert not changed.stage("mechanics").reused
    assert changed.stage("metrics").reused
    mech = json.loads((out / "results.json").read_text())["stages"]["mechanics"]["result"]
    assert mech["fe"]["c_rate"] == 2.0


def test_settings_validation():
    with pytest.raises(InvalidInputError):
        apply_overrides(TwinConfig(), ["mechanics.c_rates=[0, 1]"])
    with pytest.raises(InvalidInputError):
        apply_overrides(TwinConfig(), ["mechanics.subvolume=[2, 2, 2]"])
    cfg = apply_overrides(TwinConfig(), ["mechanics.subvolume=[24]", "mechanics.fe=false"])
    assert cfg.mechanics.subvolume == [24, 24, 24] and cfg.mechanics.fe is False
