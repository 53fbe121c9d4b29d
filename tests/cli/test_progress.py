"""Feedback on long work: the shared Progress helper and the verbs that use it."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from microbat.cli import app
from microbat.cli.common import Progress


def _wait_for(cond, timeout: float = 20.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_plain_lines_stages_throttled_steps_and_still_running(capsys):
    with Progress("demo", terminal=False, interval_s=3600) as p:
        p.stage("reading x.npy")
        p.step("step 1")  # within the interval: not printed
        p.note("reading: done")
    err = capsys.readouterr().err.splitlines()
    assert err == ["microbat demo [0 s] reading x.npy", "microbat demo [0 s] reading: done"]

    with Progress("eis", terminal=False, interval_s=0.05) as p:
        p.stage("solving 41 frequencies")
        # a long call without callbacks: the watchdog says it is still running
        assert _wait_for(lambda: "still solving" in capsys.readouterr().err)


def test_quiet_prints_nothing(capsys):
    with Progress("eis", quiet=True, terminal=False, interval_s=0.01) as p:
        p.stage("solving")
        p.step("more", done=1)
        p.note("done")
        time.sleep(0.05)
    assert capsys.readouterr() == ("", "")


@pytest.fixture(scope="module")
def binary(tmp_path_factory):
    f = tmp_path_factory.mktemp("bin") / "im.npy"
    im = np.zeros((10, 8, 8), bool)
    im[:, 2:5, 2:5] = True
    np.save(f, im)
    return f


@pytest.mark.parametrize(
    ("verb", "extra"),
    [
        ("tortuosity", ["--axis", "0"]),
        ("conductivity", ["--axis", "0", "--kind", "ionic"]),
        ("metrics", ["--no-sizes"]),
        ("randomwalk", ["--walkers", "200", "--steps", "200", "--seed", "1"]),
    ],
)
def test_verbs_report_progress_on_stderr_and_keep_json_pure(binary, verb, extra):
    args = [verb, str(binary), "--voxel-size", "1um", *extra]
    r = CliRunner().invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    json.loads(r.stdout)
    assert f"microbat {verb} [0 s] reading {binary}" in r.stderr.splitlines()
    r = CliRunner().invoke(app, [*args, "--quiet"])
    assert r.exit_code == 0, r.output
    assert r.stdout == "" and "microbat" not in r.stderr


def test_simulate_prints_progress_lines(tmp_path):
    lab = np.zeros((8, 6, 6), np.uint8)
    lab[:, :3, :3] = 2
    lab[:, 3:, 3:] = 2
    lab[:5, :3, 3:5] = 1
    np.save(tmp_path / "el.npy", lab)
    args = ["simulate", str(tmp_path / "el.npy"), "--phases", "pore=0,cbd=1,active=2"]
    args += ["--voxel-size", "1um", "--max-steps", "3", "--out", str(tmp_path / "run"), "--json"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    json.loads(r.stdout)
    assert "microbat simulate [0 s] discharge 1C: starting" in r.stderr.splitlines()
