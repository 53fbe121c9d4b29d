"""Checkpoint and resume of a resolved discharge: equality with an uninterrupted run."""

from __future__ import annotations

import numpy as np
import pytest

from microbat import Microstructure
from microbat.cell.resolved import ResolvedOptions, simulate_discharge
from microbat.cell.resolved.discharge import DischargeInterrupted
from microbat.core.errors import FileFormatError, InvalidInputError

N_STEPS = 14
SNAPS = [30.0, 150.0]


def _electrode() -> Microstructure:
    lab = np.zeros((8, 6, 6), np.uint8)
    lab[:, :3, :3] = 2
    lab[:, 3:, 3:] = 2
    lab[:5, :3, 3:5] = 1
    return Microstructure(lab, voxel_size=1e-6, phases="pore=0,cbd=1,active=2")


def _opt(max_steps: int = N_STEPS) -> ResolvedOptions:
    return ResolvedOptions(max_steps=max_steps, dv_target_V=0.02)


def _run(max_steps: int = N_STEPS, **kw):
    return simulate_discharge(
        _electrode(), c_rate=2.0, options=_opt(max_steps), snapshot_times=SNAPS, **kw
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run (checkpointed every 4 steps, which must not change it)."""
    return _run(checkpoint=tmp_path_factory.mktemp("ref"), checkpoint_every=4)


def _assert_same(a, b):
    # a resumed run starts its first step with a fresh Jacobian where the uninterrupted
    # run reuses a factorisation (modified Newton): the converged states agree to the
    # Newton tolerance, not bit for bit (measured: voltage 1e-12 V, time 1e-12 to 4e-10
    # relative through the adaptive step size)
    assert a.steps == b.steps
    np.testing.assert_allclose(b.time_s, a.time_s, rtol=1e-8, atol=0)
    np.testing.assert_allclose(b.voltage_V, a.voltage_V, rtol=0, atol=1e-9)
    np.testing.assert_allclose(b.discharged_Ah, a.discharged_Ah, rtol=1e-8, atol=0)
    for k, v in a.breakdown_V.items():
        np.testing.assert_allclose(b.breakdown_V[k], v, rtol=1e-7, atol=1e-10)
    assert b.max_conservation_error < 1e-8
    assert [s.time_s for s in b.snapshots] == pytest.approx([s.time_s for s in a.snapshots])
    for sa, sb in zip(a.snapshots, b.snapshots, strict=True):
        np.testing.assert_allclose(sb.fields["c_s"], sa.fields["c_s"], rtol=1e-6)
        np.testing.assert_allclose(sb.fields["phi_e"], sa.fields["phi_e"], rtol=0, atol=1e-8)


def test_checkpointing_does_not_change_the_run(reference):
    plain = _run()
    _assert_same(plain, reference)
    assert reference.timing["checkpoints"] == N_STEPS // 4 + 1  # every 4 steps + the end
    assert reference.resumed_at_step is None


def test_resume_after_step_limit_equals_uninterrupted(reference, tmp_path):
    first = _run(max_steps=6, checkpoint=tmp_path)
    assert first.partial and first.status == "max_steps" and first.steps == 6
    assert (tmp_path / "checkpoint.npz").is_file()
    resumed = _run(checkpoint=tmp_path, resume=True)
    assert resumed.resumed_at_step == 6
    assert resumed.checkpoint == str(tmp_path / "checkpoint.npz")
    _assert_same(reference, resumed)


def test_interrupt_leaves_checkpoint_and_partial_result(reference, tmp_path):
    ckpt = tmp_path / "run.npz"
    seen = []

    def stop_at_5(p):
        seen.append(p)
        if p.step == 5:
            raise KeyboardInterrupt

    with pytest.raises(DischargeInterrupted) as info:
        _run(checkpoint=ckpt, on_step=stop_at_5, checkpoint_interval_s=None)
    assert isinstance(info.value, KeyboardInterrupt)
    part = info.value.result
    assert part.partial and part.status.startswith("interrupted by the user after 5 steps")
    assert part.steps == 5 and part.time_s.size == 6
    np.testing.assert_allclose(part.voltage_V, reference.voltage_V[:6], atol=1e-10)
    # the progress callback saw time, voltage and the delivered fraction grow
    assert [p.step for p in seen] == [1, 2, 3, 4, 5]
    assert np.all(np.diff([p.capacity_fraction for p in seen]) > 0)
    assert 0 < seen[-1].capacity_fraction < 1
    assert seen[-1].mean_stoichiometry > seen[0].mean_stoichiometry
    resumed = _run(checkpoint=ckpt, resume=True)
    assert resumed.resumed_at_step == 5
    _assert_same(reference, resumed)


def test_resume_of_a_finished_run_returns_it(tmp_path):
    opt = ResolvedOptions(max_steps=50, end_time_s=40.0)
    kw = {"c_rate": 2.0, "snapshot_times": [], "checkpoint": tmp_path}
    done = simulate_discharge(_electrode(), options=opt, **kw)
    assert done.complete
    again = simulate_discharge(_electrode(), options=opt, resume=True, **kw)
    assert again.complete and again.status == done.status
    assert again.resumed_at_step == done.steps
    np.testing.assert_array_equal(again.voltage_V, done.voltage_V)


def test_resume_refuses_another_problem(tmp_path):
    _run(max_steps=2, checkpoint=tmp_path)
    with pytest.raises(InvalidInputError, match=r"different problem.*C-rate"):
        simulate_discharge(
            _electrode(),
            c_rate=1.0,
            options=_opt(),
            snapshot_times=SNAPS,
            checkpoint=tmp_path,
            resume=True,
        )
    ms = _electrode()
    lab = ms.labels.copy()
    lab[7, 0, 0] = 0
    other = Microstructure(lab, voxel_size=1e-6, phases="pore=0,cbd=1,active=2")
    with pytest.raises(InvalidInputError, match="different problem: the image"):
        simulate_discharge(
            other,
            c_rate=2.0,
            options=_opt(),
            snapshot_times=SNAPS,
            checkpoint=tmp_path,
            resume=True,
        )
    with pytest.raises(InvalidInputError, match="options"):
        simulate_discharge(
            _electrode(),
            c_rate=2.0,
            options=ResolvedOptions(max_steps=3, dv_target_V=0.03),
            snapshot_times=SNAPS,
            checkpoint=tmp_path,
            resume=True,
        )


def test_resume_errors_teach(tmp_path):
    with pytest.raises(FileFormatError, match="no checkpoint"):
        _run(checkpoint=tmp_path / "none", resume=True)
    with pytest.raises(InvalidInputError, match="needs checkpoint"):
        _run(resume=True)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(FileFormatError, match="not a readable microbat checkpoint"):
        _run(checkpoint=bad, resume=True)
    with pytest.raises(InvalidInputError, match="checkpoint_every"):
        _run(checkpoint=tmp_path, checkpoint_every=0)


def test_interrupt_on_the_last_step_keeps_the_end(tmp_path):
    # Ctrl-C while the progress callback of the step that ended the run is running:
    # the run is complete, and resuming does not step past its end
    opt = ResolvedOptions(max_steps=50, end_time_s=40.0)
    kw = {"c_rate": 2.0, "snapshot_times": [], "checkpoint": tmp_path}
    done = simulate_discharge(_electrode(), options=opt, **kw)

    def stop_at_end(p):
        if p.time_s >= 40.0:
            raise KeyboardInterrupt

    with pytest.raises(DischargeInterrupted) as info:
        simulate_discharge(_electrode(), options=opt, on_step=stop_at_end, **kw)
    assert info.value.result.complete and info.value.result.steps == done.steps
    again = simulate_discharge(_electrode(), options=opt, resume=True, **kw)
    assert again.complete and again.steps == done.steps and again.status == done.status


def test_snapshots_are_written_once_beside_the_checkpoint(tmp_path):
    from microbat.cell.resolved._checkpoint import snapshot_folder

    ck = tmp_path / "run.npz"
    res = _run(checkpoint=ck, checkpoint_every=1)  # 14 checkpoints
    assert len(res.snapshots) == 3  # the two asked for and the end state
    files = sorted(snapshot_folder(ck).glob("*.npz"))
    assert [f.name for f in files] == ["snapshot0000.npz", "snapshot0001.npz"]
    # each file was written once, not at every checkpoint: later checkpoints only
    # refer to it (the main file holds no field arrays)
    with np.load(ck) as z:
        assert not any(k.startswith("snapshot") for k in z.files)
    stamps = [f.stat().st_mtime_ns for f in files]
    again = _run(max_steps=N_STEPS + 2, checkpoint=ck, checkpoint_every=1, resume=True)
    assert again.steps == N_STEPS + 2 and len(again.snapshots) == 3
    assert [f.stat().st_mtime_ns for f in files] == stamps
    for a, b in zip(res.snapshots[:2], again.snapshots[:2], strict=True):
        np.testing.assert_array_equal(a.fields["c_s"], b.fields["c_s"])
        assert a.outside_W == b.outside_W


def test_missing_or_foreign_snapshot_file_is_refused(tmp_path):
    from microbat.cell.resolved._checkpoint import snapshot_folder

    ck = tmp_path / "run.npz"
    _run(checkpoint=ck)
    folder = snapshot_folder(ck)
    first, second = folder / "snapshot0000.npz", folder / "snapshot0001.npz"
    # another snapshot of the same run in its place: index and time do not match
    saved = first.read_bytes()
    first.write_bytes(second.read_bytes())
    with pytest.raises(FileFormatError, match="is not snapshot 0"):
        _run(checkpoint=ck, resume=True)
    first.unlink()
    with pytest.raises(FileFormatError, match="snapshot 0 of the checkpoint is missing"):
        _run(checkpoint=ck, resume=True)
    first.write_bytes(saved)
    assert _run(checkpoint=ck, resume=True).complete is False  # readable again


def test_checkpoint_with_snapshots_inside_still_reads(tmp_path):
    # the layout of version 1 (fields inside the checkpoint) is read, and the next
    # checkpoint writes the snapshots out to their own files
    import json

    from microbat.cell.resolved._checkpoint import (
        read_checkpoint,
        snapshot_folder,
        write_checkpoint,
    )

    ck = tmp_path / "old.npz"
    done = _run(checkpoint=ck)
    with np.load(ck) as z:
        fp = json.loads(str(z["meta"]))["fingerprint"]
    record = read_checkpoint(ck, fp)
    for f in snapshot_folder(ck).glob("*.npz"):
        f.unlink()
    write_checkpoint(ck, record, fp)  # no snapshot files: stored inside
    with np.load(ck) as z:
        assert any(k.startswith("snapshot0_") for k in z.files)
    again = _run(max_steps=N_STEPS + 1, checkpoint=ck, resume=True)
    assert again.steps == N_STEPS + 1
    for a, b in zip(done.snapshots[:2], again.snapshots[:2], strict=True):
        np.testing.assert_array_equal(a.fields["c_s"], b.fields["c_s"])
    assert len(list(snapshot_folder(ck).glob("*.npz"))) == 2
