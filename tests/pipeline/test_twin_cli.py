"""The ``microbat twin`` verb through typer's CliRunner."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from microbat.cli import _twin

OFF = [
    "--set",
    "eis.enabled=false",
    "--set",
    "cell.enabled=false",
    "--set",
    "report.enabled=false",
    "--set",
    "transport.enabled=false",
]


def _app() -> typer.Typer:
    # A fresh app holding the verb (works whether or not microbat.cli already lists it).
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Test root."""

    _twin.register(app)
    return app


def _run(*args):
    return CliRunner().invoke(_app(), ["twin", *[str(a) for a in args]])


def test_quiet_prints_nothing_and_json_is_machine_readable(labelled_h5, tmp_path):
    r = _run(labelled_h5, "--out", tmp_path / "q", "--quiet", *OFF)
    assert r.exit_code == 0, r.output
    assert r.stdout == ""
    r = _run(labelled_h5, "--out", tmp_path / "q", "--json", *OFF)
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    stages = {s["name"]: s for s in data["stages"]}
    assert stages["metrics"]["status"] == "complete" and stages["metrics"]["reused"] is True
    assert data["summary"]["labelled_input"] is True


def test_human_summary_and_verbose_log(labelled_h5, tmp_path):
    r = _run(
        labelled_h5,
        "--out",
        tmp_path / "h",
        "--verbose",
        "--set",
        "cell.enabled=false",
        "--set",
        "metrics.sizes=false",
        "--set",
        "transport.random_walk=false",
        "--set",
        "eis.enabled=false",
    )
    assert r.exit_code == 0, r.output
    assert "Report:" in r.stdout and "report.html" in r.stdout
    assert "Diagnosis:" in r.stdout
    assert "stage metrics" in r.stderr  # --verbose shows the log lines


def test_missing_voxel_size_exits_with_a_question(gray_npy, tmp_path):
    r = _run(gray_npy, "--out", tmp_path / "m", *OFF)
    assert r.exit_code == 1
    assert r.stderr.startswith("error: ") and "--voxel-size" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "m").exists()


def test_refuses_another_input_and_failed_stage_exit_code(gray_npy, labelled_h5, tmp_path):
    out = tmp_path / "r"
    assert _run(labelled_h5, "--out", out, "--quiet", *OFF).exit_code == 0
    r = _run(gray_npy, "--voxel-size", "0.5um", "--out", out, *OFF)
    assert r.exit_code == 1 and "--force" in r.stderr
    r = _run(
        labelled_h5,
        "--out",
        out,
        "--quiet",
        "--set",
        "cell.parameter_set=nosuchset2099",
        "--set",
        "transport.enabled=false",
        "--set",
        "eis.enabled=false",
    )
    assert r.exit_code == 1
    assert "stage(s) cell failed" in r.stderr and "nosuchset2099" in r.stderr


def test_ctrl_c_message(labelled_h5, tmp_path, monkeypatch):
    import microbat.pipeline.twin as twin_mod

    def interrupted(*a, progress=None, **k):
        progress(twin_mod.TwinEvent("stage_start", "segment", "Segment", "Segment"))
        raise KeyboardInterrupt

    monkeypatch.setattr(twin_mod, "run_twin", interrupted)
    r = _run(labelled_h5, "--out", tmp_path / "c", "--quiet")
    assert r.exit_code == 130
    assert "interrupted during stage 'segment'" in r.stderr
    assert "rerun the same command to resume" in r.stderr


@pytest.mark.parametrize("flag", ["--phases", "--thickness-axis"])
def test_flags_reach_the_settings(labelled_h5, tmp_path, flag):
    value = "pore=0,cbd=1,active=2" if flag == "--phases" else "1"
    out = tmp_path / "f"
    r = _run(labelled_h5, "--out", out, "--quiet", flag, value, *OFF)
    assert r.exit_code == 0, r.output
    toml = (out / "twin.toml").read_text()
    assert (
        ('phases = "pore=0,cbd=1,active=2"' in toml)
        if flag == "--phases"
        else ("thickness_axis = 1" in toml)
    )


def test_progress_lines_on_stderr_while_json_stdout_stays_pure(labelled_h5, tmp_path):
    r = _run(labelled_h5, "--out", tmp_path / "p", "--json", *OFF)
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)  # nothing but the JSON on stdout
    assert data["phase_table_source"] == "the file's phase table"
    assert [p["name"] for p in data["phase_table"]] == ["pore", "cbd", "active"]
    lines = r.stderr.splitlines()
    assert lines and all(ln.startswith("microbat twin [") for ln in lines), r.stderr
    assert any(ln.endswith("] [1/" + ln.split("/")[1].split("]")[0] + "] Input") for ln in lines)
    assert any("Morphology metrics: complete" in ln for ln in lines)
    r = _run(labelled_h5, "--out", tmp_path / "p", *OFF)  # text: the phase line first
    assert r.stdout.splitlines()[0].startswith("phases: pore=0 (electrolyte), cbd=1")
