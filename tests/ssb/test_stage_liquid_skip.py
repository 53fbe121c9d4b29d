"""The twin's liquid-electrolyte stages (gas) skip a solid-state image; eis runs on it."""

from __future__ import annotations

import json

import pytest

import microbat.pipeline.stages as stages_pkg
from microbat.pipeline.twin import run_twin

LIQUID = ("gas",)
KEEP = {"input", "denoise", "segment", "report", "eis", *LIQUID}


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
    over = {**_overrides(), "eis.parameters": "default", "eis.polycrystal_subvolume": [16]}
    res = run_twin(composite_h5, out_dir=tmp_path / "twin", overrides=over)
    for name in LIQUID:
        st = res.stage(name)
        assert st.status == "skipped", (name, st.status, st.reason)
        assert "solid-state image" in st.reason and "liquid" in st.reason
        assert "\n" not in st.reason
    # the impedance stage runs the single-ion spectrum and the polycrystal's two arcs
    st = res.stage("eis")
    assert st.status == "complete", (st.status, st.reason)
    eis = json.loads((tmp_path / "twin" / "stages" / "eis" / "result.json").read_text())
    assert eis["ionic_conductor"] == "solid_electrolyte"
    sp = eis["spectra"]["resolved_subvolume"]
    assert sp["details"]["ionic_conductor"] == "solid_electrolyte"
    assert sp["low_frequency_real_ohm_m2"] > sp["high_frequency_real_ohm_m2"] > 0
    pc = eis["polycrystal"]
    assert pc["r_bulk_ohm_m2"] > 0 and pc["r_gb_ohm_m2"] > 0
    assert pc["f_bulk_found_Hz"] == pytest.approx(pc["f_bulk_expected_Hz"], rel=0.05)
    assert 1.0 < pc["f_gb_found_Hz"] / pc["f_gb_expected_Hz"] < 1.6
    html = res.report.read_text()
    assert "f found/expected" in html and "single-ion conductor" in html


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
