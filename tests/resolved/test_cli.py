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
    d = json.loads(r.stdout)
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


def _image(tmp_path):
    lab = np.zeros((8, 6, 6), np.uint8)
    lab[:, :3, :3] = 2
    lab[:, 3:, 3:] = 2
    lab[:5, :3, 3:5] = 1
    np.save(tmp_path / "el.npy", lab)
    return [
        "simulate",
        str(tmp_path / "el.npy"),
        "--phases",
        "pore=0,cbd=1,active=2",
        "--voxel-size",
        "1um",
        "--c-rate",
        "2",
    ]


def test_simulate_vtk_resume_and_refusal(tmp_path):
    out = tmp_path / "run"
    base = [*_image(tmp_path), "--out", str(out), "--json"]
    r = runner.invoke(app, [*base, "--max-steps", "3", "--vtk"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["partial"] is True and d["status"] == "max_steps" and d["exit_code"] == 0
    assert d["checkpoint"] == str(out / "checkpoint.npz") and (out / "checkpoint.npz").is_file()
    assert d["vtk"] == str(out / "vtk" / "fields.pvd")
    assert (out / "vtk" / "fields_t000.vti").is_file()
    assert (out / "curve.csv").read_text().splitlines()[1].endswith(",true")
    r = runner.invoke(app, [*base, "--max-steps", "6", "--resume"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["resumed_at_step"] == 3 and d["steps"] == 6
    # the same folder with another C-rate: refused, with the reason
    r = runner.invoke(app, [*base, "--c-rate", "1", "--resume"])
    assert r.exit_code == 1
    assert "different problem" in r.output and "C-rate" in r.output


def test_simulate_ctrl_c_leaves_checkpoint_and_partial_result(tmp_path, monkeypatch):
    import microbat.cell.resolved as resolved

    real = resolved.simulate_discharge

    def interrupted(*args, on_step=None, **kw):
        def hook(p):
            on_step(p)
            if p.step == 2:
                raise KeyboardInterrupt

        return real(*args, on_step=hook, **kw)

    out = tmp_path / "run"
    base = [*_image(tmp_path), "--out", str(out), "--max-steps", "4", "--json"]
    monkeypatch.setattr(resolved, "simulate_discharge", interrupted)
    r = runner.invoke(app, base)
    assert r.exit_code == 130, r.output
    d = json.loads(r.stdout)
    assert d["partial"] is True and d["status"].startswith("interrupted by the user")
    assert d["steps"] == 2 and d["exit_code"] == 130
    saved = json.loads((out / "result.json").read_text())
    assert saved["partial"] is True and saved["steps"] == 2
    monkeypatch.setattr(resolved, "simulate_discharge", real)
    r = runner.invoke(app, [*base, "--resume"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["resumed_at_step"] == 2 and d["steps"] == 4


def test_simulate_solver_failure_exit_code(tmp_path, monkeypatch):
    import dataclasses

    import microbat.cell.resolved as resolved

    real = resolved.simulate_discharge

    def failing(*args, **kw):
        res = real(*args, **kw)
        return dataclasses.replace(res, complete=False, status="solver failed at t = 1 s")

    monkeypatch.setattr(resolved, "simulate_discharge", failing)
    out = tmp_path / "run"
    r = runner.invoke(app, [*_image(tmp_path), "--out", str(out), "--max-steps", "2", "--json"])
    assert r.exit_code == 3, r.output
    d = json.loads(r.stdout)
    assert d["partial"] is True and d["status"] == "solver failed at t = 1 s"
    assert json.loads((out / "result.json").read_text())["exit_code"] == 3


def test_simulate_sigterm_checkpoints_like_ctrl_c(tmp_path, monkeypatch):
    import os
    import signal

    import microbat.cell.resolved as resolved

    real = resolved.simulate_discharge

    def terminated(*args, on_step=None, **kw):
        def hook(p):
            on_step(p)
            if p.step == 2:  # a batch scheduler's time limit
                os.kill(os.getpid(), signal.SIGTERM)

        return real(*args, on_step=hook, **kw)

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(resolved, "simulate_discharge", terminated)
    out = tmp_path / "run"
    r = runner.invoke(app, [*_image(tmp_path), "--out", str(out), "--max-steps", "4", "--json"])
    assert r.exit_code == 143, r.output
    d = json.loads(r.stdout)
    assert d["status"].startswith("interrupted by SIGTERM after 2 steps")
    assert d["partial"] is True and (out / "checkpoint.npz").is_file()
    assert signal.getsignal(signal.SIGTERM) == before  # handler restored
