"""The twin runner: stages, resume and invalidation, bad input, interrupts, full disks."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from microbat.core.errors import FileFormatError, InvalidInputError, VoxelSizeError
from microbat.pipeline.stages import STAGES
from microbat.pipeline.twin import run_twin

VOXEL = 0.5e-6
FAST = {
    "cell.enabled": False,
    "eis.enabled": False,
    "transport.random_walk": False,
    "transport.tensor": False,
    "report.enabled": False,
}
NAMES = [s.name for s in STAGES]


def _manifest(out: Path, stage: str) -> dict | None:
    p = out / "stages" / stage / "manifest.json"
    return json.loads(p.read_text()) if p.exists() else None


def _reused(res) -> dict[str, bool]:
    return {s.name: s.reused for s in res.stages}


# ------------------------------------------------------------------ a full run
def test_full_run_writes_every_stage_and_the_report(full_run):
    res, events = full_run
    out = res.out_dir
    status = {s.name: s.status for s in res.stages}
    assert list(status) == NAMES
    for name in ("input", "denoise", "segment", "connectivity", "metrics", "cell", "eis", "report"):
        assert status[name] == "complete", (name, res.stage(name).reason)
    assert status["transport"] in ("complete", "not_available")
    assert res.failed == ()
    for name in NAMES:
        man = _manifest(out, name)
        assert man is not None and man["status"] == status[name]
        for rel, size in man["files"].items():
            assert (out / rel).stat().st_size == size
    assert res.report == out / "report.html" and res.report.stat().st_size > 50_000
    data = json.loads((out / "results.json").read_text())
    assert set(data["stages"]) == set(NAMES) - {"report"}
    assert data["summary"]["shape"] == [40, 40, 40]
    assert data["diagnosis"]["headline"]
    cell = data["stages"]["cell"]["result"]
    assert cell["rate_bruggeman"]["c_rate"] == [0.1, 1.0, 3.0]
    # capacity falls with rate (physics of the bridge, not of the pipeline, but it
    # proves the numbers that reach the report are the simulated ones)
    frac = cell["rate_bruggeman"]["fraction"]
    assert frac[0] == pytest.approx(1.0) and frac[2] < frac[1]
    if status["transport"] == "complete":
        tra = data["stages"]["transport"]["result"]
        assert [r["axis"] for r in tra["table"]] == [0, 1, 2]
        assert tra["tau_thickness"] >= 1.0
        assert tra["random_walk"]["table"][0]["ci95"][0] <= tra["random_walk"]["table"][0]["tau"]
        assert cell["micro"]["tau_electrolyte"] == pytest.approx(tra["tau_thickness"])
        assert cell["transports"] == ["micro", "bruggeman"]
    twin = json.loads((out / "twin.json").read_text())
    assert twin["state"] == "complete" and twin["input"]["kind"] == "synthetic"
    assert (out / "twin.toml").read_text().startswith("[input]")
    kinds = [e.kind for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end"
    assert kinds.count("stage_start") == kinds.count("stage_end") == len(NAMES)
    log = (out / "twin.log").read_text()
    assert "stage input" in log and "twin finished" in log


def test_rerun_resumes_without_recomputing(full_run):
    res, _ = full_run
    again = run_twin(
        synthetic=True,
        out_dir=res.out_dir,
        overrides={
            "synthetic.shape": [40, 40, 40],
            "synthetic.mean_radius": 2.5e-6,
            "cell.c_rates": [0.1, 1.0, 3.0],
            "transport.random_walk_walkers": 400,
            "transport.random_walk_steps": 20_000,
        },
    )
    # transport may be not_available (never cached): all else is reused
    reused = {k for k, v in _reused(again).items() if v}
    assert reused >= set(NAMES) - {"transport", "cell", "report"}
    if again.stage("transport").status == "complete":
        assert reused == set(NAMES)  # nothing recomputed (no wall-time test: load varies)
    assert again.summary["shape"] == [40, 40, 40]


def test_changed_setting_recomputes_only_what_depends_on_it(gray_npy, tmp_path):
    out = tmp_path / "t"
    first = run_twin(gray_npy, voxel_size=VOXEL, out_dir=out, overrides=FAST)
    assert first.stage("segment").status == "complete"
    assert not any(_reused(first).values())
    seg_before = (out / "stages/segment/microstructure.h5").read_bytes()

    # a segmentation setting: input and denoising are kept, the rest is redone
    second = run_twin(
        gray_npy, voxel_size=VOXEL, out_dir=out, overrides={**FAST, "segment.beta": 0.0}
    )
    r = _reused(second)
    assert r["input"] and r["denoise"]
    assert not r["segment"] and not r["connectivity"] and not r["metrics"]
    assert (out / "stages/segment/microstructure.h5").read_bytes() != seg_before

    # a metrics setting: segmentation and connectivity are kept
    third = run_twin(
        gray_npy,
        voxel_size=VOXEL,
        out_dir=out,
        overrides={**FAST, "segment.beta": 0.0, "metrics.sizes": False},
    )
    r = _reused(third)
    assert r["input"] and r["denoise"] and r["segment"] and r["connectivity"]
    assert not r["metrics"]
    assert third.stage("metrics").status == "complete"

    # the voxel size is an input setting: everything is redone
    fourth = run_twin(
        gray_npy,
        voxel_size=2 * VOXEL,
        out_dir=out,
        overrides={**FAST, "segment.beta": 0.0, "metrics.sizes": False},
    )
    assert not any(_reused(fourth).values())
    assert (
        json.loads((out / "stages/input/result.json").read_text())["voxel_size_m"]
        == [2 * VOXEL] * 3
    )


def test_labelled_input_skips_imaging(labelled_h5, tmp_path):
    res = run_twin(labelled_h5, out_dir=tmp_path / "t", overrides=FAST)
    assert res.stage("denoise").status == "skipped"
    assert res.stage("segment").status == "skipped"
    assert "phase labels" in res.stage("segment").reason
    assert res.stage("connectivity").status == "complete"
    assert res.stage("metrics").status == "complete"
    inp = json.loads((tmp_path / "t/stages/input/result.json").read_text())
    assert inp["labelled"] is True and inp["voxel_size_m"] == [VOXEL] * 3


def test_array_and_microstructure_inputs(tiny_electrode, tmp_path):
    res = run_twin(tiny_electrode, out_dir=tmp_path / "ms", overrides=FAST)
    assert res.stage("segment").status == "skipped"
    with pytest.raises(VoxelSizeError, match="--voxel-size"):
        run_twin(np.asarray(tiny_electrode.labels), out_dir=tmp_path / "arr", overrides=FAST)
    assert not (tmp_path / "arr").exists()
    res = run_twin(
        np.asarray(tiny_electrode.labels),
        voxel_size="0.5um",
        out_dir=tmp_path / "arr",
        overrides={**FAST, "input.phases": "pore=0,cbd=1,active=2"},
    )
    assert res.stage("metrics").status == "complete"
    # resumed from the saved labels, not from memory
    again = run_twin(
        np.asarray(tiny_electrode.labels),
        voxel_size="0.5um",
        out_dir=tmp_path / "arr",
        overrides={**FAST, "input.phases": "pore=0,cbd=1,active=2", "metrics.sizes": False},
    )
    assert _reused(again)["input"] and not _reused(again)["metrics"]


# ------------------------------------------------------------------ bad input
def test_missing_voxel_size_is_asked_for_not_guessed(gray_npy, tmp_path):
    out = tmp_path / "t"
    with pytest.raises(VoxelSizeError, match="--voxel-size") as info:
        run_twin(gray_npy, out_dir=out)
    assert "never guesses" in str(info.value)
    assert not out.exists()  # nothing written before the input is usable


def test_file_that_is_not_an_image(tmp_path):
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    with pytest.raises(FileFormatError, match="unknown file type"):
        run_twin(txt, voxel_size=1e-6, out_dir=tmp_path / "a")
    fake = tmp_path / "scan.tif"
    fake.write_bytes(b"this is not a TIFF file at all" * 10)
    with pytest.raises(FileFormatError, match=r"scan\.tif"):
        run_twin(fake, voxel_size=1e-6, out_dir=tmp_path / "b")
    with pytest.raises(FileFormatError, match="no such file"):
        run_twin(tmp_path / "missing.h5", voxel_size=1e-6, out_dir=tmp_path / "c")
    assert not any((tmp_path / d).exists() for d in "abc")


def test_other_input_is_refused_unless_forced(gray_npy, labelled_h5, tmp_path):
    out = tmp_path / "t"
    run_twin(labelled_h5, out_dir=out, overrides=FAST)
    before = (out / "results.json").read_bytes()
    with pytest.raises(FileFormatError, match=r"another input.*--force"):
        run_twin(gray_npy, voxel_size=VOXEL, out_dir=out, overrides=FAST)
    assert (out / "results.json").read_bytes() == before  # untouched
    res = run_twin(gray_npy, voxel_size=VOXEL, out_dir=out, overrides=FAST, force=True)
    assert res.stage("segment").status == "complete"
    assert json.loads((out / "twin.json").read_text())["input"]["source"] == str(gray_npy)


def test_same_path_new_content_is_another_input(tmp_path, tiny_electrode):
    f = tmp_path / "lab.npy"
    np.save(f, np.asarray(tiny_electrode.labels))
    kw = {"voxel_size": VOXEL, "overrides": {**FAST, "metrics.sizes": False}}
    run_twin(f, out_dir=tmp_path / "t", **kw)
    lab = np.array(tiny_electrode.labels)
    lab[0, 0, 0] = 2 if lab[0, 0, 0] != 2 else 0
    np.save(f, lab)
    with pytest.raises(FileFormatError, match="another input"):
        run_twin(f, out_dir=tmp_path / "t", **kw)


def test_non_twin_folder_is_refused(labelled_h5, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(FileFormatError, match="not a microbat twin folder"):
        run_twin(labelled_h5, out_dir=out, overrides=FAST)
    run_twin(labelled_h5, out_dir=out, overrides=FAST, force=True)
    assert (out / "thesis.tex").read_text() == "precious"  # --force replaces only our files


def test_out_is_a_file(labelled_h5, tmp_path):
    f = tmp_path / "out"
    f.write_text("x")
    with pytest.raises(FileFormatError, match="is a file"):
        run_twin(labelled_h5, out_dir=f, overrides=FAST)


def test_invalid_settings(labelled_h5, tmp_path):
    with pytest.raises(InvalidInputError, match=r"segment\.beta"):
        run_twin(labelled_h5, out_dir=tmp_path / "t", overrides={"segment.beta": -1})
    with pytest.raises(InvalidInputError, match="synthetic=True"):
        run_twin(labelled_h5, synthetic=True, out_dir=tmp_path / "t")


# ------------------------------------------------------- interrupts and full disks
def test_ctrl_c_keeps_completed_stages_and_resume_continues(gray_npy, tmp_path):
    out = tmp_path / "t"

    def interrupt(event):
        if event.kind == "stage_start" and event.stage == "metrics":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_twin(gray_npy, voxel_size=VOXEL, out_dir=out, overrides=FAST, progress=interrupt)
    for done in ("input", "denoise", "segment", "connectivity"):
        assert _manifest(out, done)["status"] == "complete"
    assert _manifest(out, "metrics") is None
    assert not (out / "results.json").exists()
    twin = json.loads((out / "twin.json").read_text())
    assert twin["state"] == "interrupted"
    assert "interrupted during stage 'metrics'" in (out / "twin.log").read_text()
    assert not (out / ".twin.lock").exists()

    res = run_twin(gray_npy, voxel_size=VOXEL, out_dir=out, overrides=FAST)
    r = _reused(res)
    assert r["input"] and r["denoise"] and r["segment"] and r["connectivity"]
    assert not r["metrics"] and res.stage("metrics").status == "complete"


def test_interrupt_inside_a_stage_leaves_no_partial_result(labelled_h5, tmp_path, monkeypatch):
    out = tmp_path / "t"
    run_twin(labelled_h5, out_dir=out, overrides=FAST)
    import microbat.imaging.metrics as metrics_mod

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(metrics_mod, "characterize", boom)
    with pytest.raises(KeyboardInterrupt):
        run_twin(labelled_h5, out_dir=out, overrides={**FAST, "metrics.sizes": False})
    assert _manifest(out, "metrics") is None  # old manifest removed before the stage started
    assert not (out / "stages/metrics/result.json").exists()
    assert _manifest(out, "connectivity")["status"] == "complete"


def test_disk_full_never_presents_a_partial_stage_as_complete(gray_npy, tmp_path, monkeypatch):
    out = tmp_path / "t"
    real = np.savez

    def full(file, *args, **kwds):
        if "connectivity" in str(file):
            Path(file).write_bytes(b"partial")  # the writer got this far
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(file, *args, **kwds)

    monkeypatch.setattr(np, "savez", full)
    with pytest.raises(FileFormatError, match=r"disk is full.*rerun the same command"):
        run_twin(gray_npy, voxel_size=VOXEL, out_dir=out, overrides=FAST)
    assert _manifest(out, "segment")["status"] == "complete"
    assert _manifest(out, "connectivity") is None
    leftovers = [p.name for p in (out / "stages/connectivity").iterdir()]
    assert "arrays.npz" not in leftovers
    assert not [n for n in leftovers if ".tmp" in n]
    assert json.loads((out / "twin.json").read_text())["state"] == "failed"
    monkeypatch.setattr(np, "savez", real)
    res = run_twin(gray_npy, voxel_size=VOXEL, out_dir=out, overrides=FAST)
    assert _reused(res)["segment"] and not _reused(res)["connectivity"]
    assert res.stage("connectivity").status == "complete"


def test_deleted_output_file_is_recomputed(labelled_h5, tmp_path):
    out = tmp_path / "t"
    run_twin(labelled_h5, out_dir=out, overrides=FAST)
    (out / "stages/connectivity/arrays.npz").unlink()
    res = run_twin(labelled_h5, out_dir=out, overrides=FAST)
    assert not _reused(res)["connectivity"] and _reused(res)["metrics"]


def test_failed_stage_is_recorded_and_the_rest_reported(labelled_h5, tmp_path):
    res = run_twin(
        labelled_h5,
        out_dir=tmp_path / "t",
        overrides={
            "cell.parameter_set": "nosuchset2099",
            "transport.enabled": False,
            "eis.enabled": False,
            "metrics.sizes": False,
        },
    )
    assert res.failed == ("cell",)
    assert "nosuchset2099" in res.stage("cell").reason
    assert res.report is not None and res.report.exists()
    data = json.loads(res.results.read_text())
    assert data["stages"]["cell"]["status"] == "failed"
    assert data["stages"]["metrics"]["status"] == "complete"
    # a failed stage is not cached: the next run tries again
    again = run_twin(
        labelled_h5,
        out_dir=tmp_path / "t",
        overrides={
            "cell.enabled": False,
            "transport.enabled": False,
            "metrics.sizes": False,
            "eis.enabled": False,
        },
    )
    assert again.stage("cell").status == "skipped" and again.failed == ()


def test_concurrent_run_is_refused_and_stale_lock_taken_over(labelled_h5, tmp_path):
    out = tmp_path / "t"
    run_twin(labelled_h5, out_dir=out, overrides=FAST)
    (out / ".twin.lock").write_text(str(os.getppid()))  # a live process
    with pytest.raises(FileFormatError, match="another microbat twin run"):
        run_twin(labelled_h5, out_dir=out, overrides=FAST)
    (out / ".twin.lock").write_text("999999999")  # no such process
    run_twin(labelled_h5, out_dir=out, overrides=FAST)
    assert not (out / ".twin.lock").exists()


def test_logging_stays_in_the_library(labelled_h5, tmp_path):
    root = logging.getLogger()
    before = list(root.handlers)
    lib = logging.getLogger("microbat")
    level = lib.level
    run_twin(labelled_h5, out_dir=tmp_path / "t", overrides=FAST)
    assert root.handlers == before
    assert lib.level == level
    assert not any(isinstance(h, logging.FileHandler) for h in lib.handlers)
    text = (tmp_path / "t/twin.log").read_text()
    assert "stage metrics" in text and "INFO" in text


def test_twin_folder_can_be_moved(labelled_h5, tmp_path):
    out = tmp_path / "t"
    run_twin(labelled_h5, out_dir=out, overrides=FAST)
    moved = tmp_path / "moved"
    shutil.move(out, moved)
    res = run_twin(labelled_h5, out_dir=moved, overrides=FAST)
    assert all(_reused(res)[n] for n in ("input", "connectivity", "metrics"))


def test_uint16_tiff_with_its_own_voxel_size(gray_npy, tmp_path):
    from microbat.io import save_volume

    img = np.load(gray_npy)
    u16 = np.clip((img - img.min()) / (img.max() - img.min()) * 60000, 0, 65535).astype(np.uint16)
    tif = save_volume(u16, tmp_path / "scan.tif", voxel_size=VOXEL)
    res = run_twin(tif, out_dir=tmp_path / "t", overrides=FAST)  # no voxel size given
    inp = json.loads((tmp_path / "t/stages/input/result.json").read_text())
    assert inp["labelled"] is False and inp["dtype"] == "uint16"
    assert inp["voxel_size_m"] == pytest.approx([VOXEL] * 3)
    assert res.stage("segment").status == "complete"
    frac = json.loads((tmp_path / "t/stages/metrics/result.json").read_text())["volume_fractions"]
    assert 0.2 < frac["pore"] < 0.5 and 0.4 < frac["active"] < 0.7


# ------------------------------------------------------------------ out of core
OOC = {**FAST, "scale.chunks": 16, "segment.spatial_prior": "none", "segment.psf_sigma": 0}


def test_out_of_core_imaging_matches_the_in_memory_functions(gray_npy, tmp_path):
    import dask.array as da

    from microbat import Microstructure
    from microbat.imaging import analyze_connectivity, denoise_nlm, estimate_sigma, segment

    out = tmp_path / "t"
    res = run_twin(gray_npy, voxel_size=VOXEL, out_dir=out, overrides=OOC)
    assert [s.status for s in res.stages[:5]] == ["complete"] * 5
    img = np.load(gray_npy)
    den = da.from_zarr(str(out / "stages/denoise/denoised.zarr")).compute()
    sigma = json.loads((out / "stages/denoise/result.json").read_text())["sigma_in"]
    ref_den = denoise_nlm(img, sigma=sigma, patch_size=3, search_radius=3, strength=0.8)
    assert np.allclose(den, ref_den, atol=1e-5)  # chunks 16, halo 4
    lab = da.from_zarr(str(out / "stages/segment/labels.zarr")).compute()
    ref = segment(den, voxel_size=VOXEL, spatial_prior="none", psf_sigma=None).labels
    assert np.array_equal(lab, ref)  # same fit, same 4096-bin Bayes decision, block by block
    ms = Microstructure(lab, VOXEL, "pore=0,cbd=1,active=2", allow_empty_phases=True)
    conn = analyze_connectivity(ms)
    got = json.loads((out / "stages/connectivity/result.json").read_text())
    assert got["out_of_core"] is True
    assert got["cluster_counts"] == conn.cluster_counts  # clusters stitched across chunks
    for p in conn.phases:
        for k, v in conn.volume_fractions[p].items():
            assert got["volume_fractions"][p][k] == pytest.approx(v, abs=1e-12)
    assert sigma == pytest.approx(estimate_sigma(img[4:28, 4:28, 4:28]), rel=0.5)


def test_out_of_core_labelled_input_and_analysis_crop(labelled_h5, tmp_path):
    from microbat.imaging import analyze_connectivity
    from microbat.io import load_microstructure

    out = tmp_path / "t"
    res = run_twin(
        labelled_h5,
        out_dir=out,
        overrides={**FAST, "scale.chunks": 16, "scale.analysis_crop": [24]},
    )
    assert res.stage("segment").status == "skipped"
    conn = analyze_connectivity(load_microstructure(labelled_h5))
    got = json.loads((out / "stages/connectivity/result.json").read_text())
    assert got["cluster_counts"] == conn.cluster_counts
    met = json.loads((out / "stages/metrics/result.json").read_text())
    assert met["shape"] == [24, 24, 24] and met["analysis_crop"] == [[4, 28]] * 3


def test_scheduler_needs_chunks_and_the_dask_extra(labelled_h5, tmp_path):
    with pytest.raises(InvalidInputError, match=r"set scale\.chunks"):
        run_twin(labelled_h5, out_dir=tmp_path / "a", overrides={"scale.scheduler": "tcp://x:1"})
    try:
        import distributed  # noqa: F401
    except ImportError:
        from microbat.core.errors import MissingDependencyError

        with pytest.raises(MissingDependencyError, match=r"microbat\[dask\]"):
            run_twin(
                labelled_h5,
                out_dir=tmp_path / "b",
                overrides={**FAST, "scale.chunks": 16, "scale.scheduler": "tcp://127.0.0.1:1"},
            )
    else:  # pragma: no cover - depends on the environment
        with pytest.raises(FileFormatError, match="cannot reach the Dask scheduler"):
            run_twin(
                labelled_h5,
                out_dir=tmp_path / "b",
                overrides={**FAST, "scale.chunks": 16, "scale.scheduler": "tcp://127.0.0.1:1"},
            )


def test_out_of_core_phantom_reports_the_crop(tmp_path):
    res = run_twin(
        synthetic=True,
        out_dir=tmp_path / "t",
        overrides={
            "synthetic.shape": [32, 32, 32],
            "synthetic.mean_radius": 2e-6,
            "scale.chunks": 16,
            "scale.analysis_crop": [24],
            "transport.random_walk": False,
            "transport.tensor": False,
            "cell.enabled": False,
            "eis.enabled": False,
        },
    )
    assert [s.status for s in res.stages[:6]] == ["complete"] * 6
    seg = json.loads((tmp_path / "t/stages/segment/result.json").read_text())
    assert seg["out_of_core"] and seg["accuracy_vs_truth"]["overall"] > 0.8
    page = res.report.read_text()
    assert "out of core, chunks 16 × 16 × 16 voxels" in page and "[4:28]" in page
