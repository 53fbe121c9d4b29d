"""BPX export and import."""

from __future__ import annotations

import json

import numpy as np
import pytest

from microbat.cell import CellParameters, rate_capability
from microbat.core.errors import FileFormatError


@pytest.fixture(scope="module")
def chen_bpx(chen, tmp_path_factory):
    path = tmp_path_factory.mktemp("bpx") / "chen.json"
    doc = chen.to_bpx(path)
    return doc, path


def test_export_is_valid_bpx(chen_bpx):
    import bpx

    doc, path = chen_bpx
    assert doc["Header"]["Model"] == "DFN"
    bpx.parse_bpx_file(str(path))  # validates against the schema
    pos = doc["Parameterisation"]["Positive electrode"]
    assert pos["Transport efficiency"] == pytest.approx(0.335**1.5)
    assert pos["Surface area per unit volume [m-1]"] == pytest.approx(3 * 0.665 / 5.22e-6)


def test_round_trip(chen, chen_bpx, chen_rates):
    _, path = chen_bpx
    back = CellParameters.from_bpx(path)
    for which in ("negative", "positive"):
        a, b = chen.electrode(which), back.electrode(which)
        for f in ("thickness_m", "porosity", "active_fraction", "particle_radius_m"):
            assert getattr(b, f) == pytest.approx(getattr(a, f), rel=1e-9), f
        assert b.transport_efficiency == pytest.approx(a.transport_efficiency, rel=1e-9)
        assert b.effective_conductivity_S_per_m == pytest.approx(a.effective_conductivity_S_per_m)
    assert back.cell.electrode_area_m2 == pytest.approx(chen.cell.electrode_area_m2)
    # OCPs and electrolyte functions are tables at 25 °C: the 1C discharge agrees
    r = rate_capability(back, c_rates=(0.1, 1.0), breakdown=False)
    ref = chen_rates.curves[2]
    cur = r.curves[1]
    assert cur.final_capacity_Ah == pytest.approx(ref.final_capacity_Ah, rel=1e-3)
    t = np.linspace(0, min(ref.time_s[-1], cur.time_s[-1]), 300)
    dv = np.interp(t, ref.time_s, ref.voltage_V) - np.interp(t, cur.time_s, cur.voltage_V)
    assert np.max(np.abs(dv)) < 5e-3


def test_marquis_separator_porosity_one(marquis, tmp_path):
    doc = marquis.to_bpx(tmp_path / "m.json")
    assert doc["Parameterisation"]["Separator"]["Porosity"] == 1.0
    back = CellParameters.from_bpx(tmp_path / "m.json")
    assert back.separator.porosity == pytest.approx(1.0)
    assert any("porosity 1" in n for n in back.notes)


def test_bad_files(tmp_path):
    with pytest.raises(FileFormatError, match="does not exist"):
        CellParameters.from_bpx(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(FileFormatError, match="not valid JSON"):
        CellParameters.from_bpx(bad)
    with pytest.raises(FileFormatError, match="not a valid BPX"):
        CellParameters.from_bpx({"Header": {"BPX": "1.0.0", "Model": "DFN"}})
    other = tmp_path / "other.json"
    other.write_text(json.dumps([1, 2]))
    with pytest.raises(FileFormatError):
        CellParameters.from_bpx(other)
