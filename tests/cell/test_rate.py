"""Rate capability of the Chen2020 cell (LG M50): physics and outputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from microbat.cell import DEFAULT_C_RATES, rate_capability
from microbat.core.errors import InvalidInputError


def test_six_rates_monotone(chen_rates):
    r = chen_rates
    assert r.c_rate == DEFAULT_C_RATES
    assert all(r.complete) and set(r.status) == {"cut-off"}
    assert np.all(np.diff(r.capacity_Ah) < 0)
    assert np.all(np.diff(r.energy_Wh) < 0)
    # the average voltage need not fall monotonically (at 5C the discharge stops while
    # the OCV is still high), but every rate is below the C/10 average
    assert all(v < r.average_voltage_V[0] for v in r.average_voltage_V[1:])
    assert np.all(np.diff(r.average_power_W) > 0)
    assert r.fraction[0] == 1.0
    # C/10 of the LG M50 set: about its 5 Ah nominal capacity
    assert r.capacity_Ah[0] == pytest.approx(5.13, abs=0.02)
    # energy = ∫ V I dt lies between the extreme voltages times the capacity
    for c in r.curves:
        e = c.energy_Wh
        assert c.voltage_V.min() * c.capacity_Ah[-1] < e < c.voltage_V.max() * c.capacity_Ah[-1]


def test_electrolyte_cliff_between_2c_and_3c_is_named(chen_rates):
    r = chen_rates
    f = dict(zip(r.c_rate, r.fraction, strict=True))
    key = dict(zip(r.c_rate, r.bottleneck_key, strict=True))
    words = dict(zip(r.c_rate, r.bottleneck, strict=True))
    assert f[2.0] > 0.9 and f[3.0] < 0.6  # the cliff
    assert key[3.0] == "electrolyte" and key[5.0] == "electrolyte"
    assert "depleted in the positive electrode" in words[3.0]
    assert key[2.0] != "electrolyte" and key[1.0] != "electrolyte"
    assert key[0.1] == "equilibrium"


def test_full_charge_is_stated(chen_rates):
    s = chen_rates.initial_state
    assert s["definition"] == "PyBaMM set_initial_state(1)"
    assert 0.85 < s["negative_stoichiometry"] < 1.0
    assert 0.2 < s["positive_stoichiometry"] < 0.35


def test_json_keys_aligned(chen_rates):
    d = json.loads(chen_rates.to_json())
    n = len(d["c_rate"])
    for k in ("capacity_Ah", "energy_Wh", "fraction", "bottleneck", "solve_time_s", "status"):
        assert len(d[k]) == n, k
    assert d["provenance"]["parameters"]["cell_parameters"]["name"] == "chen2020"


def test_reference_rate_added_when_not_listed(chen, chen_rates):
    r = rate_capability(chen, c_rates=(1.0, 3.0), breakdown=False)
    assert r.c_rate == (1.0, 3.0)
    assert r.reference_capacity_Ah == pytest.approx(chen_rates.capacity_Ah[0], rel=1e-9)
    assert r.fraction[0] == pytest.approx(chen_rates.fraction[2], rel=1e-9)
    assert r.bottleneck == ()


def test_micro_transport_needs_micro(chen):
    with pytest.raises(InvalidInputError, match="micro=MicroProperties"):
        rate_capability(chen, c_rates=(1,), transport="micro")


def test_files_and_plots(chen_rates, tmp_path):
    files = chen_rates.save(tmp_path / "out")
    names = {p.name for p in files}
    for expected in (
        "rate_capability.json",
        "rate_capability.csv",
        "curves.csv",
        "discharge_curves.png",
        "capacity_vs_rate.png",
        "ragone.png",
        "breakdown_3C.png",
        "breakdown_3C.csv",
    ):
        assert expected in names
    for p in files:
        assert p.stat().st_size > 0
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = (tmp_path / "out" / "rate_capability.csv").read_text().splitlines()
    assert rows[0].startswith("c_rate,current_A,capacity_Ah") and len(rows) == 7
    assert float(rows[1].split(",")[2]) == pytest.approx(chen_rates.capacity_Ah[0])
    ax = chen_rates.plot("ragone")
    assert ax.get_xlabel() == "average power [W]"
    assert not any(math.isnan(x) for x in chen_rates.energy_Wh)
