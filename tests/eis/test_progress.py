"""Progress of the resolved impedance: per frequency, per worker batch, in the CLI and twin."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from microbat.cell.eis.resolved import ResolvedModel, resolved_eis
from microbat.synth.phantoms import channels

H = 1e-6
FREQS = np.array([1e4, 1e2, 1.0, 1e-2])


@pytest.fixture(scope="module")
def model() -> ResolvedModel:
    return ResolvedModel(channels((16, 6, 6), width=2, spacing=6, voxel_size=H))


@pytest.mark.parametrize(("solver", "workers"), [("direct", 1), ("direct", 2), ("iterative", 1)])
def test_each_frequency_is_reported_in_order_of_completion(model, solver, workers):
    calls: list[tuple[int, int, str]] = []
    z, _ = model.impedance(
        FREQS, solver=solver, workers=workers, progress=lambda *a: calls.append(a)
    )
    assert [c[:2] for c in calls] == [(k, 4) for k in range(1, 5)]
    assert calls[0][2] == "frequency 1/4 (1e+04 Hz)"
    assert calls[-1][2] == "frequency 4/4 (0.01 Hz)"
    z0, _ = model.impedance(FREQS, solver=solver, workers=workers)
    np.testing.assert_allclose(z, z0, rtol=1e-6)  # reporting changes nothing


def test_worker_processes_report_each_part_of_the_band(model):
    calls: list[tuple[int, int, str]] = []
    z, _ = model.impedance(
        FREQS, solver="iterative", workers=2, progress=lambda *a: calls.append(a)
    )
    assert [c[1] for c in calls] == [4, 4]
    assert sorted(c[0] for c in calls) == [2, 4] and calls[-1][0] == 4
    assert "worker batches" in calls[-1][2]
    zs, _ = model.impedance(FREQS, solver="iterative", workers=1)
    np.testing.assert_allclose(z, zs, rtol=1e-5)  # other bands, other warm starts


def test_resolved_eis_passes_progress_on():
    ms = channels((12, 6, 6), width=2, spacing=6, voxel_size=H)
    seen: list[int] = []
    resolved_eis(ms, frequencies=[1e3, 1.0], blocking=True, progress=lambda d, t, m: seen.append(d))
    assert seen == [1, 2]


def test_cli_writes_a_progress_line_per_frequency(tmp_path, monkeypatch):
    from microbat.cli import app
    from microbat.io import save_microstructure

    path = tmp_path / "ch.h5"
    save_microstructure(channels((16, 6, 6), width=2, spacing=6, voxel_size=H), path)
    from microbat.cli.common import Progress

    monkeypatch.setenv("MICROBAT_PROGRESS_INTERVAL", "1e-9")  # every step gets a line
    monkeypatch.setattr(Progress, "_watch", lambda self: None)  # no "still ..." lines
    args = ["eis", str(path), "--params", "defaults", "--model", "resolved"]
    args += ["--f-min", "0.1", "--f-max", "1e3", "--per-decade", "1"]
    args += ["--sensitivity-model", "none"]
    r = CliRunner().invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    lines = [ln for ln in r.stderr.splitlines() if "resolved model, 16 x 6 x 6 voxels: " in ln]
    assert [ln.split(": ", 1)[1] for ln in lines] == [
        f"frequency {k}/5 ({f:.3g} Hz)" for k, f in enumerate([1e3, 1e2, 10.0, 1.0, 0.1], 1)
    ]
    assert r.stdout.lstrip().startswith("{")  # progress never reaches stdout
    r = CliRunner().invoke(app, [*args, "--quiet"])
    assert r.exit_code == 0 and r.stderr == ""


def test_twin_eis_stage_steps_per_frequency(tmp_path):
    from microbat.pipeline.twin import run_twin

    ms = channels((16, 8, 8), width=2, spacing=4, voxel_size=H, offset=1)
    events = []
    off = ("cell", "transport", "report", "gas", "heat", "mechanics", "representative", "aging")
    over = {f"{s}.enabled": False for s in off}
    over.update({"eis.resolved": True, "eis.parameters": "default", "metrics.sizes": False})
    res = run_twin(ms.labels, voxel_size=H, out_dir=tmp_path / "t", overrides=over,
                   progress=events.append)  # fmt: skip
    assert "eis" not in res.failed
    steps = [e.message for e in events if e.kind == "step" and e.stage == "eis"]
    freq = [m for m in steps if m.startswith("resolved impedance: frequency ")]
    assert len(freq) >= 8 and freq[-1].startswith(f"resolved impedance: frequency {len(freq)}/")
