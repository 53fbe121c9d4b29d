"""The twin's ``ssb`` stage: runs on a solid-state composite, skips a liquid electrode."""

from __future__ import annotations

import json

import numpy as np
import pytest

import microbat.pipeline.stages as stages_pkg
from microbat.pipeline.twin import run_twin

KEEP = {"input", "denoise", "segment", "connectivity", "ssb", "report"}


def _only_ssb() -> dict[str, object]:
    """Switch off every other stage that can be switched off (whatever the stage list)."""
    out: dict[str, object] = {"metrics.sizes": False}
    for stage in stages_pkg.STAGES:
        if stage.name in KEEP:
            continue
        for section, cls in stage.settings:
            if "enabled" in cls.model_fields:
                out[f"{section}.enabled"] = False
    out.update({"ssb.slab_shape": [8, 24, 24], "ssb.grain_size": 0.6e-6})
    return out


@pytest.fixture(scope="module")
def composite_h5(tmp_path_factory):
    from microbat.io import save_microstructure
    from microbat.synth import composite_cathode

    ms = composite_cathode(
        (32, 28, 28), voxel_size=0.2e-6, active_fraction=0.45, electrolyte_fraction=0.38,
        binder_fraction=0.04, active_radius=1.1e-6, electrolyte_radius=0.5e-6,
        separator_thickness=0.6e-6, seed=5,
    )  # fmt: skip
    path = tmp_path_factory.mktemp("ssbtwin") / "composite.h5"
    save_microstructure(ms, path)
    return path


def test_stage_runs_on_a_composite(composite_h5, tmp_path):
    res = run_twin(composite_h5, out_dir=tmp_path / "twin", overrides=_only_ssb())
    st = res.stage("ssb")
    assert st.status == "complete", st.reason
    s = json.loads((tmp_path / "twin" / "stages" / "ssb" / "result.json").read_text())
    assert s["network"]["percolating"] is True and 0 < s["network"]["relative"] < 1
    assert s["tpb"]["active_density_m_per_m3"] > 0
    assert 0 < s["contact"]["active_fraction"] <= 1
    assert s["grains"]["effective_conductivity_S_per_m"] < s["grains"]["no_gb_conductivity_S_per_m"]
    assert s["interface"]["focusing_factor_max"] > 1
    results = json.loads(res.results.read_text())
    assert results["summary"]["critical_current_A_per_m2"] > 0
    assert results["summary"]["active_contact_fraction"] == s["contact"]["active_fraction"]
    assert results["summary"]["bottleneck"] == "ssb_transport"
    html = res.report.read_text()
    assert "Solid-state electrolyte" in html and "active TPB" in html
    # the solid electrolyte takes the place of the pores in the plausibility check
    met = json.loads((tmp_path / "twin" / "stages" / "metrics" / "result.json").read_text())
    assert met["plausibility"]["problems"] == []


def test_stage_skips_a_liquid_electrode(tmp_path):
    from microbat import Microstructure
    from microbat.io import save_microstructure

    lab = np.zeros((16, 16, 16), np.uint8)
    lab[:, :, 8:] = 2
    lab[:, 6:10, 4:6] = 1
    path = tmp_path / "liquid.h5"
    save_microstructure(Microstructure(lab, 1e-6, "pore=0,cbd=1,active=2"), path)
    res = run_twin(path, out_dir=tmp_path / "twin", overrides=_only_ssb())
    st = res.stage("ssb")
    assert st.status == "skipped" and "solid_electrolyte" in st.reason
