"""The report claims what its sample supports: representative volume, plausibility, consistency."""

from __future__ import annotations

import json

import numpy as np

from microbat.core.microstructure import Microstructure
from microbat.pipeline.twin import run_twin

QUICK = {
    "cell.enabled": False,
    "eis.enabled": False,
    "transport.random_walk": False,
    "transport.tensor": False,
    "representative.enabled": False,
}


def _results(res) -> dict:
    return json.loads(res.results.read_text())


def test_a_small_sample_is_flagged_with_intervals(full_run):
    res, _ = full_run
    assert res.stage("representative").status == "complete"
    data = _results(res)
    rep = data["stages"]["representative"]
    assert any(w.startswith("RepresentativeVolumeWarning") for w in rep["warnings"])
    assert data["diagnosis"]["findings"][0].startswith("The image is too small")
    head = data["summary"]
    assert head["representative"] is False
    lo, hi = head["tau_thickness_interval"]
    tau = data["stages"]["transport"]["result"]["tau_thickness"]
    assert lo < tau and (hi is None or tau < hi)
    cell = rep["result"]["cell"]
    assert cell["c_rate"] in data["stages"]["cell"]["result"]["rate_micro"]["c_rate"]
    a, b = head["key_capacity_fraction_interval"]
    assert 0 <= a <= cell["fraction"] <= b <= 1.0 + 1e-9
    assert len(cell["orientations"]) == 3
    page = res.report.read_text("utf-8")
    assert 'id="representative"' in page and "too small" in page


def test_claims_follow_their_evidence(full_run):
    res, _ = full_run
    data = _results(res)
    finds = data["diagnosis"]["findings"]
    for f in finds:  # anisotropy only beyond the sub-volume spread
        if "anisotropic" in f:
            assert "beyond the sub-volume spread" in f or "cannot tell" in f
    seg = next(f for f in finds if f.startswith("Segmentation"))
    assert "recall per phase" in seg and "cbd" in seg
    page = res.report.read_text("utf-8")
    rw = data["stages"]["transport"]["result"].get("random_walk")
    if rw and not rw["plateau_reached"]:
        assert "not tested (no plateau)" in page
    eis = data["stages"]["eis"]["result"]
    assert eis["parameter_choice"]["source"].startswith("chen2020 (positive")
    assert (
        eis["parameters"]["particle_radius_m"]
        == data["stages"]["cell"]["result"]["micro"]["particle_radius_m"]
    )
    assert "published thickness" in page  # the two sections' thicknesses differ, and it says so


def _big_grains(n: int = 40, seed: int = 0) -> np.ndarray:
    """Grains 16 voxels across at 10 µm voxels: a snow or sand scan, not an electrode."""
    rng = np.random.default_rng(seed)
    z, y, x = np.ogrid[:n, :n, :n]
    labels = np.zeros((n, n, n), np.uint8)
    while labels.mean() < 0.45:
        c = rng.uniform(0, n, 3)
        labels[(z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2 <= 8**2] = 1
    return labels


def test_an_image_that_is_not_an_electrode_gets_a_warning(tmp_path):
    ms = Microstructure(_big_grains(), 1e-5, "pore=0,active=1")
    res = run_twin(ms, out_dir=tmp_path / "snow", overrides=QUICK)
    data = _results(res)
    warns = data["stages"]["metrics"]["warnings"]
    assert any("does not look like a battery electrode" in w for w in warns), warns
    assert "µm" in " ".join(warns)  # the particle size that gave it away
    assert data["diagnosis"]["findings"][0].startswith("This image does not look like")
    page = res.report.read_text("utf-8")
    assert "does not look like a battery electrode" in page  # in the warnings table


def test_an_electrode_is_not_called_implausible(labelled_h5, tmp_path):
    res = run_twin(labelled_h5, out_dir=tmp_path / "el", overrides=QUICK)
    data = _results(res)
    assert data["stages"]["metrics"]["result"]["plausibility"]["problems"] == []
    assert not any("battery electrode" in w for w in data["stages"]["metrics"]["warnings"])
