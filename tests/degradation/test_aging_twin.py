"""The twin's aging stage and the ``microbat age`` verb on a small electrode."""

import json

import pytest
from typer.testing import CliRunner

from microbat.core.errors import InvalidInputError
from microbat.pipeline.config import TwinConfig, apply_overrides
from microbat.pipeline.twin import run_twin

FAST = {
    "transport.enabled": False,
    "cell.enabled": False,
    "eis.enabled": False,
    "gas.enabled": False,
    "heat.enabled": False,
    "representative.enabled": False,
    "mechanics.enabled": False,
    "metrics.sizes": False,
    "aging.cycles": 40,
}


@pytest.fixture(scope="module")
def small():
    from microbat.synth import electrode

    return electrode((32, 32, 32), voxel_size=0.5e-6, mean_radius=2.5e-6, seed=3)


def test_stage_runs_reports_and_resumes(small, tmp_path):
    overrides = dict(FAST)
    try:
        apply_overrides(TwinConfig(), ["plating.enabled=false"])
        overrides["plating.enabled"] = False
    except (InvalidInputError, AttributeError, KeyError):
        pass
    res = run_twin(small, out_dir=tmp_path, overrides=overrides)
    assert res.stage("aging").status == "complete"
    results = json.loads((tmp_path / "results.json").read_text())
    s = results["stages"]["aging"]["result"]
    assert s["cycles"] == 40 and 0.9 < s["capacity_retention"] < 1.0
    assert s["lithium_lost_mol"]["sei_cracks"] > 0
    html = (tmp_path / "report.html").read_text()
    assert "Cycle aging" in html and "heterogeneity" in html.lower()
    assert any("Cycle aging" in f for f in results["diagnosis"]["findings"])
    again = run_twin(small, out_dir=tmp_path, overrides=overrides)
    assert again.stage("aging").reused
    changed = run_twin(small, out_dir=tmp_path, overrides={**overrides, "aging.cycles": 20})
    assert not changed.stage("aging").reused


def test_settings_validation():
    with pytest.raises(InvalidInputError):
        apply_overrides(TwinConfig(), ["aging.cycles=0"])
    with pytest.raises(InvalidInputError):
        apply_overrides(TwinConfig(), ["aging.mechanisms=['sei', 'cracking']"])
    cfg = apply_overrides(TwinConfig(), ["aging.sei_law=mixed"])
    assert cfg.aging.sei_law == "mixed"


def test_cli_age_json_out_and_errors(small, tmp_path):
    from microbat.cli import app
    from microbat.io import save_microstructure

    path = tmp_path / "e.h5"
    save_microstructure(small, path)
    runner = CliRunner()
    out = tmp_path / "out"
    r = runner.invoke(
        app, ["age", str(path), "--cycles", "30", "--map-cycles", "30", "--json", "--out", str(out)]
    )
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    for key in ("cycles", "capacity_retention", "resistance_growth", "lithium_lost_mol",
                "heterogeneity_cov"):  # fmt: skip
        assert key in d
    assert d["cycles"] == 30 and isinstance(d["capacity_retention"], list)
    assert (out / "curves.csv").is_file() and (out / "aging_checkpoint.npz").is_file()
    r2 = runner.invoke(app, ["age", str(path), "--cycles", "60", "--json", "--out", str(out),
                             "--resume"])  # fmt: skip
    assert r2.exit_code == 0, r2.output
    d2 = json.loads(r2.stdout)
    assert d2["resumed"] and d2["cycle"][-1] == 60
    assert d2["capacity_retention"][: len(d["capacity_retention"])] == d["capacity_retention"]
    for args, text in (
        (["--cycles", "0"], "--cycles must be > 0"),
        (["--mechanisms", "sei,foo"], "unknown degradation mechanism 'foo'"),
        (["--mechanisms", "plating", "--material", "nmc811"], "negative-electrode material"),
        (["--mechanisms", "plating", "--plating-mode", "sometimes"], "unknown --plating-mode"),
        (["--sei-law", "tunnel"], "unknown SEI law"),
    ):
        r = runner.invoke(app, ["age", str(path), *args])
        assert r.exit_code == 1
        assert text in r.output
