"""The twin's plating stage: onset table over C-rates, report section, diagnosis, resume."""

from __future__ import annotations

import json

import pytest

from microbat.cell.resolved import sphere_lattice
from microbat.core.errors import InvalidInputError
from microbat.pipeline.config import TwinConfig, apply_overrides
from microbat.pipeline.stages.plating import _diagnose
from microbat.pipeline.twin import run_twin

FAST = {
    "transport.enabled": False,
    "cell.enabled": False,
    "eis.enabled": False,
    "representative.enabled": False,
    "metrics.sizes": False,
    "mechanics.enabled": False,
    "gas.enabled": False,
    "heat.enabled": False,
    "plating.enabled": True,
    "plating.c_rates": [1.0, 6.0],
    "plating.lateral_size": 8,
}


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    ms = sphere_lattice((24, 12, 12), voxel_size=0.5e-6)
    out = tmp_path_factory.mktemp("twin")
    return out, run_twin(ms, out_dir=out, overrides=FAST), ms


def test_stage_runs_reports_and_diagnoses(twin):
    out, res, _ = twin
    assert res.stage("plating").status == "complete"
    results = json.loads((out / "results.json").read_text())
    s = results["stages"]["plating"]["result"]
    assert s["shape"] == [24, 8, 8]  # lateral crop, whole thickness
    rates = {r["c_rate"]: r for r in s["rates"]}
    assert set(rates) == {1.0, 6.0}
    assert rates[1.0]["onset_time_s"] is None and rates[6.0]["onset_time_s"] > 0
    assert rates[6.0]["dfn_onset_time_s"] > 0
    assert rates[6.0]["heterogeneity_index"] is not None
    html = (out / "report.html").read_text()
    assert "Fast charge and lithium plating" in html and "plating onset" in html
    assert any("Lithium plating starts at 6C" in f for f in results["diagnosis"]["findings"])


def test_verdict_when_the_lowest_rate_plates():
    row = {
        "c_rate": 2.0,
        "onset_time_s": 900.0,
        "onset_soc": 0.7,
        "area_fraction_at_risk_end": 0.2,
        "min_plating_overpotential_V": -0.03,
    }
    (v,) = list(_diagnose({"plating": {"rates": [row]}}))
    assert v.key == "lithium_plating" and "2C" in v.headline


def test_resume_and_settings(twin):
    out, _, ms = twin
    assert run_twin(ms, out_dir=out, overrides=FAST).stage("plating").reused
    with pytest.raises(InvalidInputError):
        apply_overrides(TwinConfig(), ["plating.c_rates=[0, 1]"])
    assert TwinConfig().plating.enabled is False
