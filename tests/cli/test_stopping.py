"""Stopping stops: SIGINT/SIGTERM end a verb's worker processes; unwritable outputs
and unusable images are refused before any work (and leave nothing behind)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from microbat.cli import app

LINUX_PROC = Path("/proc/self/stat").exists()


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the processes whose parent is ``pid`` (from /proc)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                out.append((int(d.name), cmd))
        except (OSError, ValueError, IndexError):
            continue
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie has ended (waiting to be reaped)


def _wait(cond, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


@pytest.fixture(scope="module")
def eis_with_workers(tmp_path_factory):
    """An EIS command that solves its band in two worker processes for minutes."""
    from microbat.io.writers import save_microstructure
    from microbat.synth.phantoms import channels

    ms = channels((32, 16, 16), width=2, spacing=4, voxel_size=1e-6, offset=1)
    path = save_microstructure(ms, tmp_path_factory.mktemp("eis") / "ch.npz")
    return [
        sys.executable, "-c", "from microbat.cli import main; main()", "eis", str(path),
        "--params", "defaults", "--solver", "iterative", "--workers", "2",
        "--per-decade", "30", "--model", "resolved", "--sensitivity-model", "none",
    ]  # fmt: skip


def _start_with_workers(cmd):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def workers():
        return [p for p, c in _children(proc.pid) if "spawn_main" in c]

    if not _wait(lambda: len(workers()) >= 2 or proc.poll() is not None, 120):
        proc.kill()
        pytest.fail("the EIS workers did not start within 120 s")
    assert proc.poll() is None, proc.communicate()
    return proc, [p for p, _ in _children(proc.pid)]


@pytest.mark.skipif(not LINUX_PROC, reason="reads the process tree from /proc")
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_to_eis_ends_its_workers(eis_with_workers, sig, code):
    proc, family = _start_with_workers(eis_with_workers)
    os.kill(proc.pid, sig)  # to the main process only, as `kill PID` does
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"microbat eis did not stop within 60 s of {sig!r}")
    assert proc.returncode == code, err
    assert "interrupted by" in err and "nothing was written" in err
    assert "Traceback" not in err
    assert _wait(lambda: not any(_alive(p) for p in family), 30), [p for p in family if _alive(p)]


@pytest.mark.skipif(not LINUX_PROC, reason="reads the process tree from /proc")
def test_workers_exit_when_their_parent_is_killed(eis_with_workers):
    proc, family = _start_with_workers(eis_with_workers)
    os.kill(proc.pid, signal.SIGKILL)  # no handler can run: the workers' watchdog acts
    proc.communicate(timeout=60)
    assert _wait(lambda: not any(_alive(p) for p in family), 30), [p for p in family if _alive(p)]


def _unwritable(tmp_path) -> Path:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    return blocker / "out"


@pytest.mark.parametrize(
    ("verb", "args"),
    [
        ("simulate", ["{missing}", "--out", "{bad}"]),
        ("eis", ["{missing}", "--out", "{bad}"]),
        ("discharge", ["{missing}", "--out", "{bad}"]),
        ("calender", ["{missing}", "--out", "{bad}"]),
        ("twin", ["{missing}", "--out", "{bad}"]),
        ("demo", ["--out", "{bad}"]),
        ("segment", ["{missing}", "{bad}/seg.h5"]),
        ("connectivity", ["{missing}", "{bad}/c.h5"]),
        ("convert", ["{missing}", "{bad}/c.h5"]),
        ("generate", ["{bad}/g.h5"]),
    ],
)
def test_unwritable_output_fails_before_any_work(tmp_path, verb, args):
    bad, missing = _unwritable(tmp_path), tmp_path / "missing.npy"
    r = _run(verb, *(a.format(bad=bad, missing=missing) for a in args))
    assert r.exit_code == 1, r.output
    # refused on the output, before the (missing) input was even looked at
    assert "is a file, so no folder can be made in it" in r.stderr, r.stderr
    assert "missing.npy" not in r.stderr and "Errno" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes anywhere")
def test_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        r = _run("simulate", tmp_path / "missing.npy", "--out", ro / "run")
        assert r.exit_code == 1 and "cannot write in" in r.stderr, r.output
    finally:
        ro.chmod(0o700)


@pytest.mark.parametrize(
    ("name", "image", "message"),
    [
        ("flat.npy", np.random.default_rng(0).random((16, 16)), "2D array of shape (16, 16)"),
        ("blank.npy", np.zeros((8, 8, 8), np.float32), "constant (every voxel is 0)"),
        ("blank8.npy", np.full((8, 8, 8), 7, np.uint8), "constant (every voxel is 7)"),
    ],
)
def test_twin_refuses_2d_and_constant_images_without_a_folder(tmp_path, name, image, message):
    f = tmp_path / name
    np.save(f, image)
    out = tmp_path / "twin"
    r = _run("twin", f, "--voxel-size", "1um", "--out", out)
    assert r.exit_code == 1
    assert message in r.stderr, r.output
    assert not out.exists()


def test_constant_image_is_named_so(tmp_path):
    f = tmp_path / "blank.npy"
    np.save(f, np.zeros((6, 6, 6), np.uint8))
    r = _run("metrics", f, "--voxel-size", "1um")
    assert r.exit_code == 1
    assert "the image is constant (every voxel is 0): nothing to segment" in r.stderr
    assert "holds labels" not in r.stderr
