"""Bruggeman vs micro-informed transport in one call and one table."""

from __future__ import annotations

import numpy as np
import pytest

from microbat.cell import MicroProperties, compare_transport
from microbat.core.errors import InvalidInputError


def test_same_tortuosity_gives_no_difference(chen):
    m = MicroProperties(porosity=0.335, tau_electrolyte=0.335**-0.5)  # = Bruggeman's
    r = compare_transport(chen, m, c_rates=(1.0, 3.0))
    assert r.bruggeman_exponent_micro == pytest.approx(1.5, rel=1e-12)
    np.testing.assert_allclose(r.capacity_difference_Ah, 0.0, atol=1e-6)
    assert max(r.voltage_max_V) < 1e-4


def test_tortuous_electrode_loses_capacity_at_high_rate(chen):
    m = MicroProperties(porosity=0.335, tau_electrolyte=3.0)
    r = compare_transport(chen, m, c_rates=(0.1, 1.0, 2.0, 3.0))
    row = {x["c_rate"]: x for x in r.table()}
    assert abs(row[0.1]["capacity_difference_percent"]) < 0.5
    assert row[2.0]["capacity_difference_Ah"] < -0.3  # the cliff moves below 2C
    assert row[3.0]["capacity_micro_Ah"] < row[3.0]["capacity_bruggeman_Ah"]
    assert all(v > 0 for v in r.voltage_rms_V)
    assert all(mx >= rms for mx, rms in zip(r.voltage_max_V, r.voltage_rms_V, strict=True))
    assert r.tau_electrolyte_micro == 3.0
    assert r.tau_electrolyte_bruggeman == pytest.approx(0.335**-0.5)
    d = r.to_dict()
    assert set(d) >= {"c_rate", "capacity_difference_Ah", "voltage_rms_V", "voltage_max_V"}


def test_needs_micro(chen):
    with pytest.raises(InvalidInputError, match="MicroProperties"):
        compare_transport(chen, None)  # type: ignore[arg-type]
