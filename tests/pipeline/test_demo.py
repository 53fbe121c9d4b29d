import json
import re

import numpy as np
from typer.testing import CliRunner

from microbat.cli import app
from microbat.pipeline.demo import run_demo


def test_demo_cli_runs_the_twin_on_a_phantom(tmp_path):
    out = tmp_path / "demo"
    res = CliRunner().invoke(
        app, ["demo", "--out", str(out), "--size", "40", "--voxel-size", "0.5um", "--json"]
    )
    assert res.exit_code == 0, res.output
    assert (out / "report.html").stat().st_size > 10_000
    results = json.loads((out / "results.json").read_text())
    assert results
    # stdout is pure JSON; progress goes to stderr as plain lines (no terminal here)
    assert json.loads(res.stdout)["results"].endswith("results.json")
    lines = res.stderr.splitlines()
    assert any(re.match(r"microbat demo \[\d+ s\] \[1/\d+\] Input$", ln) for ln in lines)
    assert any(re.search(r"\] Report: complete \(", ln) for ln in lines), res.stderr
    # rerunning resumes from the completed stages; --quiet: errors only
    again = CliRunner().invoke(
        app, ["demo", "--out", str(out), "--size", "40", "--voxel-size", "0.5um", "--quiet"]
    )
    assert again.exit_code == 0, again.output
    assert again.stdout == "" and again.stderr == ""


def test_characterisation_pipeline_writes_consistent_results(tmp_path):
    from microbat.io import load_microstructure

    out = tmp_path / "char"
    res = run_demo(out, shape=(40, 40, 40), voxel_size=0.5e-6, seed=0)
    report = json.loads(res.files["results"].read_text())
    ms = load_microstructure(out / "electrode.h5")
    assert ms.shape == (40, 40, 40)
    assert report["microstructure"]["volume_fractions"] == ms.volume_fractions()
    tau = report["summary"]["tau_pore"]
    assert len(tau) == 3
    assert all(t is None or t > 1.0 for t in tau)
    eps = ms.volume_fractions()["pore"]
    assert np.isclose(report["summary"]["bruggeman_tau_pore"], eps**-0.5)
    assert (out / "summary.png").stat().st_size > 1000
