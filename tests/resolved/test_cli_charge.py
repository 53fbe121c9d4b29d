"""``microbat simulate --charge``: CC and CC-CV charge from the command line."""

from __future__ import annotations

import csv
import json

import numpy as np
from typer.testing import CliRunner

from microbat.cli import app

runner = CliRunner()


def _args(tmp_path) -> list[str]:
    lab = np.zeros((8, 6, 6), np.uint8)
    lab[:, :3, :3] = 2
    lab[:, 3:, 3:] = 2
    lab[:5, :3, 3:5] = 1
    np.save(tmp_path / "el.npy", lab)
    image = str(tmp_path / "el.npy")
    return ["simulate", image, "--phases", "pore=0,cbd=1,active=2", "--voxel-size", "1um"]


def test_charge_cccv_json_and_files(tmp_path):
    out = tmp_path / "run"
    args = [*_args(tmp_path), "--charge", "--c-rate", "3", "--cv-voltage", "0.12"]
    args += ["--cv-end-c-rate", "0.5"]
    r = runner.invoke(app, [*args, "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["complete"] is True and d["current_A"] < 0
    c = d["charge"]
    assert c["protocol"] == "CCCV" and c["electrode"] == "negative"
    assert c["cv_voltage_V"] == 0.12 and c["cv_start_s"] > 0
    assert c["final_mean_stoichiometry"] > c["initial_stoichiometry"]
    assert c["charged_Ah"] == d["capacity_Ah"] > 0
    assert d["max_conservation_error"] < 1e-8
    saved = json.loads((out / "result.json").read_text())
    assert saved["charge"] == c
    with open(out / "curve.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {row["phase"] for row in rows} == {"CC", "CV"}
    assert abs(float(rows[-1]["charged_Ah"]) / d["capacity_Ah"] - 1) < 1e-8
    assert (out / "fields.h5").is_file() and (out / "checkpoint.npz").is_file()


def test_charge_with_plating(tmp_path):
    out = tmp_path / "run"
    args = [*_args(tmp_path), "--charge", "--c-rate", "3", "--plating", "irreversible"]
    r = runner.invoke(app, [*args, "--out", str(out), "--json", "--max-steps", "30"])
    assert r.exit_code == 0, r.output
    c = json.loads(r.stdout)["charge"]
    assert c["plating"] == "irreversible" and c["plated_Ah"] > 0 and c["plated_Li_mol"] > 0


def test_charge_positive_cc(tmp_path):
    out = tmp_path / "run"
    args = [*_args(tmp_path), "--charge", "--electrode", "positive", "--c-rate", "2"]
    r = runner.invoke(app, [*args, "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["status"] == "cut-off voltage reached"
    assert d["charge"]["protocol"] == "CC" and abs(d["charge"]["max_voltage_V"] - 4.2) < 1e-9


def test_charge_bad_input_writes_nothing(tmp_path):
    base = _args(tmp_path)
    cases = [
        ["--charge", "--c-rate", "0"],
        ["--charge", "--c-rate", "-3"],
        ["--charge", "--electrode", "positive", "--cutoff", "3.0"],
        ["--charge", "--cv-voltage", "1.5"],
        ["--cv-voltage", "0.1"],
        ["--charge", "--electrode", "middle"],
        ["--charge", "--plating", "sometimes"],
    ]
    for i, extra in enumerate(cases):
        out = tmp_path / f"bad{i}"
        r = runner.invoke(app, [*base, *extra, "--out", str(out)])
        assert r.exit_code == 1, (extra, r.output)
        assert "Traceback" not in r.output
        assert not out.exists() or not any(out.iterdir()), extra
