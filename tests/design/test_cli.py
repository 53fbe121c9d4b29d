"""The design verb: --example, a run with --out and --json, resume, bad input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from microbat.cli import app
from microbat.design.space import example_space

runner = CliRunner()


def _small_example(tmp_path):
    text = example_space().replace("shape = [48, 48, 48]", "shape = [24, 24, 24]")
    text = text.replace("population_size = 12", "population_size = 2")
    p = tmp_path / "space.toml"
    p.write_text(text)
    return p


def test_example_runs_as_is_and_resumes(tmp_path):
    ex = runner.invoke(app, ["design", "--example"])
    assert ex.exit_code == 0 and "objectives" in ex.stdout
    space = _small_example(tmp_path)
    out = tmp_path / "study"
    r = runner.invoke(
        app,
        ["design", str(space), "--trials", "1", "--workers", "1", "--out", str(out), "--json"],
    )
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["trials"] == 1
    assert d["directions"] == {"energy_density": "maximize", "power_retention": "maximize"}
    assert {"feasible", "pareto", "outputs"} <= set(d)
    for p in d["pareto"]:
        assert set(p["objectives"]) == {"energy_density", "power_retention"}
        assert "porosity" in p["params"]
    assert (out / "study.db").is_file() and (out / "report.html").is_file()
    html = (out / "report.html").read_text()
    assert "Pareto front" in html and "Accuracy gained" in html
    # resume: one more trial, the first one kept
    r2 = runner.invoke(
        app,
        ["design", str(space), "--trials", "2", "--workers", "1", "--out", str(out), "--json"],
    )
    assert r2.exit_code == 0, r2.output
    d2 = json.loads(r2.stdout)
    assert d2["trials"] == 2
    assert d2["trial_table"][:1] == d["trial_table"][:1]


def test_bad_input_one_line_and_nothing_written(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'objectives = ["energy_density"]\n[descriptors]\nporosity = {low = 0.4, high = 0.3}\n'
    )
    out = tmp_path / "o"
    r = runner.invoke(app, ["design", str(bad), "--out", str(out)])
    assert r.exit_code == 1
    assert "inverted" in r.output and len(r.output.strip().splitlines()) == 1
    assert not out.exists()
    good = _small_example(tmp_path)
    r = runner.invoke(
        app, ["design", str(good), "--out", str(out), "--scheduler", "tcp://127.0.0.1:9"]
    )
    assert r.exit_code == 1 and "cannot reach the Dask scheduler" in r.output
    assert not out.exists()
    r = runner.invoke(app, ["design"])
    assert r.exit_code == 1 and "--example" in r.output


@pytest.mark.slow
def test_accuracy_table_in_the_report(tmp_path):
    # the accuracy-gained table on one Pareto design: two resolved discharges (~40 s)
    space = _small_example(tmp_path)
    space.write_text(space.read_text().replace("shape = [24, 24, 24]", "shape = [16, 16, 16]"))
    out = tmp_path / "study"
    args = ["design", str(space), "--trials", "2", "--workers", "1", "--out", str(out)]
    r = runner.invoke(app, [*args, "--accuracy", "1", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    acc = d["accuracy"]
    assert acc["objective"] == "power_retention"
    assert len(acc["rows"]) == 1 and acc["rows"][0]["design"].startswith("trial ")
    html = (out / "report.html").read_text()
    assert "resolved 3D" in html and "P2D Bruggeman" in html
