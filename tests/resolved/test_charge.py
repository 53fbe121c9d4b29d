"""Resolved charge (CC, CC-CV) on either electrode: bookkeeping, ends, symmetry, errors."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from microbat import Microstructure
from microbat.cell.parameters import CellParameters
from microbat.cell.resolved import (
    ResolvedOptions,
    ResolvedParameters,
    simulate_charge,
    stoichiometry_window,
)
from microbat.cell.resolved._model import initial_state
from microbat.cell.resolved.discharge import _build_cell
from microbat.core.errors import InvalidInputError


def _electrode() -> Microstructure:
    """8x6x6 voxels (1 µm): two active columns and a carbon-binder bridge."""
    lab = np.zeros((8, 6, 6), np.uint8)
    lab[:, :3, :3] = 2
    lab[:, 3:, 3:] = 2
    lab[:5, :3, 3:5] = 1
    return Microstructure(lab, voxel_size=1e-6, phases="pore=0,cbd=1,active=2")


@pytest.fixture(scope="module")
def cc_negative():
    return simulate_charge(_electrode(), c_rate=3.0)


@pytest.fixture(scope="module")
def cccv_negative():
    return simulate_charge(_electrode(), c_rate=3.0, cv_voltage=0.12, snapshot_times=[])


def test_window_of_chen2020():
    # PyBaMM's stoichiometry window of Chen2020 between 2.5 and 4.2 V
    w = stoichiometry_window("chen2020")
    assert w["negative"][0] == pytest.approx(0.0263, abs=5e-4)
    assert w["negative"][1] == pytest.approx(0.9106, abs=5e-4)
    assert w["positive"][0] == pytest.approx(0.2638, abs=5e-4)
    assert w["positive"][1] == pytest.approx(0.8540, abs=5e-4)


def test_cc_negative_to_the_window_end(cc_negative):
    r = cc_negative
    x0, x100 = stoichiometry_window("chen2020")["negative"]
    assert r.complete and "charge end" in r.status
    assert r.protocol == "CC" and r.electrode == "negative"
    assert r.initial_stoichiometry == pytest.approx(x0)
    # the charge passed is the window (interpolated end): 1C x 1 h
    assert r.capacity_Ah == pytest.approx(r.one_c_current_A, rel=1e-9)
    assert r.one_c_current_A == pytest.approx(r.theoretical_capacity_Ah * (x100 - x0), rel=1e-12)
    # cell convention: a charge is a negative current; the graphite potential falls
    assert r.current_A < 0 and np.all(r.cell_current_A[1:] < 0)
    assert np.all(r.discharged_Ah <= 0) and r.charged_Ah[-1] == pytest.approx(r.capacity_Ah)
    assert np.all(np.diff(r.voltage_V) < 0)
    # 3C on graphite: the electrode potential goes below lithium's
    assert r.voltage_V[-1] < 0
    assert r.max_conservation_error < 1e-8
    b = r.breakdown_V
    assert np.max(np.abs(b["residual"])) < 1e-6
    for c in ("ohmic_electrolyte", "ohmic_solid", "reaction"):
        assert np.all(b[c] >= -1e-12)
    assert json.loads(r.to_json())["partial"] is False


def test_cccv_negative_holds_the_voltage(cccv_negative):
    r = cccv_negative
    assert r.complete and r.protocol == "CCCV"
    assert r.cv_start_s is not None and 0 < r.cv_start_s < r.time_s[-1]
    cv = r.time_s[:-1] >= r.cv_start_s  # steps that start in the hold
    V_cv = r.voltage_V[1:][cv]
    assert np.allclose(V_cv[:-1], 0.12, atol=1e-9)
    # the held current decays and stays a charge
    cur = -r.cell_current_A[1:][cv]
    assert np.all(cur > 0) and np.all(np.diff(cur) < 1e-15)
    # CC part: the current is the CC current
    assert np.allclose(r.cell_current_A[1:][~cv], r.current_A, rtol=1e-12)
    assert r.max_conservation_error < 1e-8
    assert np.max(np.abs(r.breakdown_V["residual"])) < 1e-6
    assert r.capacity_Ah <= r.one_c_current_A * (1 + 1e-9)


def test_positive_cc_and_cccv():
    ms = _electrode()
    cc = simulate_charge(ms, c_rate=2.0, electrode="positive", snapshot_times=[])
    assert cc.complete and cc.status == "cut-off voltage reached"
    assert cc.voltage_V[-1] == pytest.approx(4.2)
    assert np.all(np.diff(cc.voltage_V) > 0)
    assert cc.max_conservation_error < 1e-8
    assert np.max(np.abs(cc.breakdown_V["residual"])) < 1e-6
    cv = simulate_charge(ms, c_rate=2.0, electrode="positive", cv_voltage=4.2, snapshot_times=[])
    assert cv.complete and cv.status.startswith("CV current fell")
    # the CV hold adds charge the CC phase could not put in; the end current is C/20
    assert cv.capacity_Ah > cc.capacity_Ah
    assert cv.cv_end_current_A == pytest.approx(0.05 * cv.one_c_current_A)
    assert cv.final_mean_stoichiometry < cc.final_mean_stoichiometry
    assert cv.max_conservation_error < 1e-8


def test_charge_discharge_symmetry():
    """A small charge, the same charge back and a rest return to the rest state."""
    ms = _electrode()
    p = ResolvedParameters.from_cell_parameters(CellParameters.from_name("chen2020"), "negative")
    p = dataclasses.replace(p, c_s0=0.5 * p.c_max)
    cell, _, q, _ = _build_cell(ms, p, ResolvedOptions())
    rest = initial_state(cell)
    cur = 0.05 * q  # C/20 (A, numerically: q is in A h)
    s = rest
    n0 = float(np.sum(cell.store_a * rest.cs) + np.sum(cell.store_e * rest.ce))
    for sign in (1.0, -1.0):  # lithiate (charge of graphite), then delithiate
        for _ in range(10):
            s, _k = cell.newton(s, 6.0, sign * cur, s)
    # lithium returned (the counter electrode took back what it gave)
    n1 = float(np.sum(cell.store_a * s.cs) + np.sum(cell.store_e * s.ce))
    assert abs(n1 - n0) / (cur * 60.0 / 96485.33212) < 1e-8
    assert float(np.mean(s.cs)) == pytest.approx(0.5 * p.c_max, rel=1e-11)
    # relax at zero current: back to the rest state
    for dt in (10.0, 100.0, 1000.0, 1e4, 1e5):
        s, _k = cell.newton(s, dt, 0.0, s, I_scale=cur)
    assert np.max(np.abs(s.cs / p.c_max - 0.5)) < 1e-7
    assert np.max(np.abs(s.ce / p.c_e0 - 1.0)) < 1e-7
    assert s.V == pytest.approx(rest.V, abs=1e-7)
    assert np.max(np.abs(s.pe)) < 1e-7


def test_bad_input_one_line_errors(tmp_path):
    ms = _electrode()
    cases = [
        (dict(c_rate=0.0), "positive C-rate"),
        (dict(c_rate=-3.0), "positive C-rate"),
        (dict(initial_stoichiometry=0.95), "fully lithiated"),
        (dict(electrode="positive", initial_stoichiometry=0.2), "fully delithiated"),
        (dict(cv_voltage=1.5), "already passed at rest"),
        (dict(electrode="positive", voltage_limit_V=3.0), "already passed at rest"),
        (dict(electrode="middle"), "electrode must be"),
        (dict(options=ResolvedOptions(cutoff_V=0.0)), "voltage_limit_V"),
    ]
    for kw, text in cases:
        with pytest.raises(InvalidInputError, match=text) as info:
            simulate_charge(ms, checkpoint=tmp_path / "ck", **kw)
        assert "\n" not in str(info.value)
    assert not (tmp_path / "ck").exists()  # nothing written


def test_set_without_a_negative_electrode():
    pybamm = pytest.importorskip("pybamm")
    pv = pybamm.ParameterValues("Chen2020")
    keys = ("Negative electrode OCP [V]", "Negative electrode exchange-current density [A.m-2]")
    values = {k: v for k, v in pv.items() if k not in keys}
    p = CellParameters.from_pybamm(values, name="no-graphite")
    with pytest.raises(InvalidInputError, match="no-graphite") as info:
        simulate_charge(_electrode(), p, c_rate=3.0, initial_stoichiometry=0.1)
    assert "\n" not in str(info.value)
