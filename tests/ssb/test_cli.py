"""``microbat tpb``, ``grains`` and ``interface`` from the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from microbat.cli import app

runner = CliRunner()


def _json(args):
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def _fails(args, words):
    res = runner.invoke(app, args)
    assert res.exit_code != 0
    msg = res.output.strip().splitlines()
    assert msg and msg[-1].startswith("error:") and words in msg[-1], res.output
    assert "Traceback" not in res.output


@pytest.fixture(scope="module")
def composite(tmp_path_factory):
    from microbat.io import save_microstructure
    from microbat.synth import composite_cathode

    ms = composite_cathode(
        (36, 32, 32), voxel_size=0.2e-6, active_fraction=0.45, electrolyte_fraction=0.38,
        binder_fraction=0.04, active_radius=1.2e-6, electrolyte_radius=0.5e-6,
        separator_thickness=0.6e-6, seed=3,
    )  # fmt: skip
    path = tmp_path_factory.mktemp("ssb") / "composite.h5"
    save_microstructure(ms, path)
    return path


def test_tpb_json_and_map(composite, tmp_path):
    d = _json(
        ["tpb", str(composite), "--phases", "active,se,cbd", "--json", "--out", str(tmp_path)]
    )
    for key in ("tpb_edge_length_m", "active_tpb_edge_length_m", "tpb_density_m_per_m3",
                "active_tpb_density_m_per_m3", "active_fraction"):  # fmt: skip
        assert isinstance(d[key], float) and d[key] >= 0, key
    assert d["active_tpb_edge_length_m"] <= d["tpb_edge_length_m"]
    assert 0.55 < d["correction_factor"] < 0.8 and "local" in d["correction"]
    assert d["reservoirs"] == {"active": [0, 0], "se": [0, -1], "cbd": [0, 0]}
    assert d["contact"]["phases"] == ["active", "se"]
    amap = np.load(d["outputs"]["active_tpb_map_m"])
    assert amap.shape == (36, 32, 32)
    assert float(amap.sum()) == pytest.approx(d["active_tpb_length_m"], rel=1e-4)
    d2 = _json(["tpb", str(composite), "--phases", "active,se,cbd", "--reservoir", "cbd=none",
                "--network", "phase", "--json"])  # fmt: skip
    assert d2["reservoirs"]["cbd"] is None


def test_tpb_bad_input_writes_nothing(composite, tmp_path):
    out = tmp_path / "maps"
    _fails(["tpb", str(composite), "--phases", "active,se", "--out", str(out)], "3 phases")
    _fails(["tpb", str(composite), "--phases", "active,se,se", "--out", str(out)], "twice")
    _fails(["tpb", str(composite), "--phases", "active,se,separator", "--out", str(out)], "unknown")
    assert not out.exists()


def test_tpb_absent_phase(tmp_path):
    from microbat import Microstructure
    from microbat.io import save_microstructure

    lab = np.zeros((8, 8, 8), np.uint8)
    lab[:, 4:] = 1
    path = tmp_path / "two.h5"
    save_microstructure(
        Microstructure(lab, 1e-6, "active=0,se=1,cbd=2", allow_empty_phases=True), path
    )
    _fails(["tpb", str(path), "--phases", "active,se,cbd"], "absent")


def test_grains_json(composite):
    d = _json(["grains", str(composite), "--grain-size", "0.6um", "--json"])
    assert 0 < d["effective_conductivity_S_per_m"] < d["no_gb_conductivity_S_per_m"]
    assert d["brick_layer_S_per_m"] > 0
    assert d["grains"]["n_grains"] > 10
    _fails(["grains", str(composite), "--grain-size", "0.3um"], "two voxels")
    _fails(["grains", str(composite)], "--grain-size")


def test_grains_from_labels(tmp_path):
    g = (np.arange(24) // 6 + 1).astype(np.int32)[:, None, None] * np.ones((1, 4, 4), np.int32)
    path = tmp_path / "grains.npy"
    np.save(path, g)
    d = _json(["grains", str(path), "--labels", "--voxel-size", "1um", "--gb-resistance",
               "1e-6", "--sigma-bulk", "1", "--json"])  # fmt: skip
    assert 1 / d["effective_conductivity_S_per_m"] == pytest.approx(1 + 3 * 1e-6 / 24e-6)


def test_interface_generated(tmp_path):
    d = _json(["interface", "--contact-fraction", "0.8", "--shape", "10,32,32", "--json",
               "--out", str(tmp_path)])  # fmt: skip
    assert d["contact_fraction"] == pytest.approx(0.8, abs=1e-3)
    assert d["focusing_factor_max"] > 1.25
    assert 0 < d["critical_current_A_per_m2"] < 10.0
    assert d["constriction_resistance_ohm_m2"] > 0
    assert d["monroe_newman"]["satisfied"] is True
    assert np.load(d["outputs"]["focusing"]).shape == (32, 32)
    for bad in ("0", "1.5", "-0.1"):
        _fails(["interface", "--contact-fraction", bad, "--shape", "8,16,16"], "(0, 1]")


def test_interface_file(tmp_path):
    from microbat.io import save_microstructure
    from microbat.ssb.interface import contact_loss_slab

    path = tmp_path / "slab.h5"
    save_microstructure(
        contact_loss_slab((8, 24, 24), voxel_size=0.5e-6, contact_fraction=0.5, seed=2), path
    )
    d = _json(["interface", str(path), "--kinetics", "linear", "--json"])
    assert d["contact_fraction"] == pytest.approx(0.5, abs=0.01)
    assert d["critical_current_A_per_m2"] == pytest.approx(10.0 / d["focusing_factor_max"])
    _fails(["interface", str(path), "--contact-fraction", "0.5"], "image sets")


def test_input_options_reach_every_verb(composite, tmp_path):
    # --crop, --phase-table, --voxel-size and --thickness-axis (one option group) per verb
    d = _json(["tpb", str(composite), "--phases", "active,se,cbd", "--crop", "0:20", "--json",
               "--out", str(tmp_path / "t")])  # fmt: skip
    assert d["crop"] == [[0, 20], [0, 32], [0, 32]]
    assert np.load(d["outputs"]["active_tpb_map_m"]).shape == (20, 32, 32)
    d = _json(["grains", str(composite), "--grain-size", "0.6um", "--crop", ":,:16,:16",
               "--thickness-axis", "1", "--json"])  # fmt: skip
    assert d["crop"] == [[0, 36], [0, 16], [0, 16]]
    lab = np.zeros((8, 16, 16), np.uint8)
    lab[:, :8] = 1
    path = tmp_path / "two.npy"
    np.save(path, lab)
    _fails(["interface", str(path), "--phase-table", "void:gas=0,se=1"], "voxel size")
    d = _json(["interface", str(path), "--phase-table", "void:gas=0,se=1", "--voxel-size",
               "0.5um", "--crop", "0:6", "--json"])  # fmt: skip
    assert d["crop"] == [[0, 6], [0, 16], [0, 16]]
    assert d["phase_table"] == [
        {"name": "void", "label": 0, "role": "gas"},
        {"name": "se", "label": 1, "role": "solid_electrolyte"},
    ]
