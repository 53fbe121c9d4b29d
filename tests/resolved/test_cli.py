"""The ``microbat simulate`` verb."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from microbat.cli import app

runner = CliRunner()


def test_simulate_json(tmp_path):
    lab = np.zeros((8, 6, 6), np.uint8)
    lab[:, :3, :3] = 2
    lab[:, 3:, 3:] = 2
    lab[:5, :3, 3:5] = 1
    np.save(tmp_path / "el.npy", lab)
    out = tmp_path / "run"
    args = ["simulate", str(tmp_path / "el.npy"), "--phases", "pore=0,cbd=1,active=2"]
    args += ["--voxel-size", "1um", "--c-rate", "2", "--max-steps", "4", "--out", str(out)]
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    for key in (
        "capacity_Ah",
        "theoretical_capacity_Ah",
        "energy_Wh",
        "max_conservation_error",
        "curve",
        "fields",
        "breakdown",
        "wall_time_s",
    ):
        assert key in d
    assert d["partial"] is True and d["status"] == "max_steps"
    assert d["max_conservation_error"] < 1e-8
    n_active = int(np.count_nonzero(lab == 2))
    expected = n_active * 1e-18 * 63104.0 * 96485.33212 / 3600.0
    assert abs(d["theoretical_capacity_Ah"] / expected - 1) < 1e-12
    assert (out / "curve.csv").is_file() and (out / "fields.h5").is_file()
    assert json.loads((out / "result.json").read_text())["capacity_Ah"] == d["capacity_Ah"]


def test_simulate_bad_file(tmp_path):
    r = runner.invoke(app, ["simulate", str(tmp_path / "missing.npy")])
    assert r.exit_code == 1
