"""The twin's liquid-electrolyte stages (cell, eis, gas) skip a solid-state image."""

from __future__ import annotations

import json

import pytest

import microbat.pipeline.stages as stages_pkg
from microbat.pipeline.twin import run_twin

LIQUID = ("cell", "eis", "gas")
KEEP = {"input", "denoise", "segment", "report", *LIQUID}


def _overrides() -> dict[str, object]:
    out: dict[str, object] = {"metrics.sizes": False}
    for stage in stages_pkg.STAGES:
        if stage.name in KEEP:
            continue
        for section, cls in stage.settings:
            if "enabled" in cls.model_fields:
                out[f"{section}.enabled"] = False
    return out


@pytest.fixture(scope="module")
def composite_h5(tmp_path_factory):
    from microbat.io import save_microstructure
    from microbat.synth import composite_cathode

    ms = composite_cathode(
        (16, 16, 16), voxel_size=0.5e-6, active_fraction=0.45, electrolyte_fraction=0.4,
        active_radius=1.5e-6, electrolyte_radius=0.8e-6, seed=4,
    )  # fmt: skip
    path = tmp_path_factory.mktemp("ssbskip") / "composite.h5"
    save_microstructure(ms, path)
    return path


def test_liquid_stages_skip_a_solid_state_image(composite_h5, tmp_path):
    res = run_twin(composite_h5, out_dir=tmp_path / "twin", overrides=_overrides())
    for name in LIQUID:
        st = res.stage(name)
        assert st.status == "skipped", (name, st.status, st.reason)
        assert "solid-state image" in st.reason and "liquid" in st.reason
        assert "\n" not in st.reason


def test_full_twin_on_a_composite_writes_its_report(tmp_path):
    """Every stage at its defaults: none takes the run down (the heat stage's finding
    formatted a missing temperature rise, NaN on this image, and crashed the report)."""
    from microbat.io import save_microstructure
    from microbat.synth import composite_cathode

    ms = composite_cathode(
        (24, 24, 24), voxel_size=0.5e-6, active_fraction=0.45, electrolyte_fraction=0.4,
        active_radius=1.5e-6, electrolyte_radius=0.8e-6, separator_thickness=1e-6, seed=4,
    )  # fmt: skip
    save_microstructure(ms, tmp_path / "c.h5")
    res = run_twin(
        tmp_path / "c.h5", out_dir=tmp_path / "twin", overrides={"ssb.slab_shape": [8, 24, 24]}
    )
    assert res.stage("report").status == "complete"
    assert res.stage("ssb").status == "complete" and res.stage("heat").status == "complete"
    # transport and representative measure the solid electrolyte (no liquid phase)
    for name in ("transport", "representative"):
        assert res.stage(name).status == "complete", res.stage(name).reason
    st = res.stage("aging")  # SEI grows from a liquid electrolyte: skipped with its reason
    assert st.status == "skipped" and "solid-state image" in st.reason, (st.status, st.reason)
    tra = json.loads((tmp_path / "twin" / "stages" / "transport" / "result.json").read_text())
    assert tra["phase"] == "solid_electrolyte"
    assert set(tra["solid"]["phases"].split(",")) == {"active", "cbd"}  # voids conduct nothing
    assert res.report.is_file()
