"""Resolved half-cell discharge: conservation, closure of the breakdown, outputs, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from microbat import Microstructure
from microbat.cell.resolved import (
    BREAKDOWN_COMPONENTS,
    ResolvedOptions,
    simulate_discharge,
    theoretical_capacity_Ah,
)
from microbat.core.errors import InvalidInputError, PhaseError


def _electrode() -> Microstructure:
    """8x6x6 voxels (1 µm): active and carbon-binder columns along the thickness axis."""
    lab = np.zeros((8, 6, 6), np.uint8)  # pore
    lab[:, :3, :3] = 2  # active column
    lab[:, 3:, 3:] = 2  # active column
    lab[:5, :3, 3:5] = 1  # carbon-binder bridge, part of the thickness
    lab[2:4, 4:, :2] = 2  # a floating active lump (no electronic path: dropped)
    return Microstructure(lab, voxel_size=1e-6, phases="pore=0,cbd=1,active=2")


@pytest.fixture(scope="module")
def run():
    opt = ResolvedOptions(max_steps=12, dv_target_V=0.02)
    return simulate_discharge(_electrode(), c_rate=2.0, options=opt, snapshot_times=[30.0])


def test_conservation_per_step(run):
    # lithium and charge balances of every step, relative to the charge passed
    assert run.steps == 12
    assert np.all(run.li_error[1:] < 1e-8)
    assert np.all(run.charge_error[1:] < 1e-8)
    assert run.max_conservation_error < 1e-8


def test_breakdown_closes(run):
    # OCV(mean θ) − V = Σ losses exactly at a converged state (dissipation identity)
    b = run.breakdown_V
    for c in BREAKDOWN_COMPONENTS:
        assert c in b
    assert np.max(np.abs(b["residual"])) < 1e-6
    # every dissipative loss is non-negative on discharge
    for c in ("ohmic_electrolyte", "ohmic_solid", "reaction"):
        assert np.all(b[c] >= -1e-12)
    assert np.allclose(b["reaction"], b["reaction_positive"] + b["reaction_counter"])


def test_partial_when_step_limit(run):
    assert not run.complete and run.partial
    assert run.status == "max_steps"
    d = json.loads(run.to_json())
    assert d["partial"] is True


def test_capacity_bookkeeping(run):
    ms = _electrode()
    q = theoretical_capacity_Ah(ms, 63104.0)
    n_active = int(np.count_nonzero(ms.labels == 2))
    assert q == pytest.approx(n_active * 1e-18 * 63104.0 * 96485.33212 / 3600.0, rel=1e-12)
    assert run.theoretical_capacity_Ah == pytest.approx(q, rel=1e-12)
    # galvanostatic: capacity = I t
    assert run.capacity_Ah == pytest.approx(run.current_A * run.time_s[-1] / 3600.0, rel=1e-12)
    assert run.current_A == pytest.approx(2.0 * run.one_c_current_A)
    # voltage falls during discharge and stays below the rest value
    assert run.voltage_V[-1] < run.voltage_V[0]
    assert run.energy_Wh > 0


def test_fields_and_curve_written(run, tmp_path):
    h5py = pytest.importorskip("h5py")
    snap = run.snapshots[0]
    assert snap.time_s >= 30.0
    shape = _electrode().shape
    for name in ("c_e", "phi_e", "phi_s", "c_s", "reaction_current"):
        assert snap.fields[name].shape == shape
    lab = _electrode().labels
    # c_s only on active voxels, c_e on pore and carbon-binder
    assert np.all(np.isnan(snap.fields["c_s"][lab != 2]))
    assert np.all(np.isfinite(snap.fields["c_e"][lab != 2]))
    # cathodic reaction (lithiation) on discharge, total equals the applied current
    total = np.nansum(snap.fields["reaction_current"]) * 1e-18
    assert total == pytest.approx(-run.current_A, rel=1e-6)
    p = run.save_fields(tmp_path / "f.h5")
    with h5py.File(p) as f:
        assert bool(f.attrs["partial"]) is True
        assert f["t000/c_s"].shape == shape
    c = run.save_curve(tmp_path / "c.csv")
    rows = c.read_text().splitlines()
    assert rows[0].startswith("time_s,capacity_Ah,voltage_V")
    assert len(rows) == run.time_s.size + 1


def test_thickness_axis_is_respected():
    ms = _electrode()
    lab = np.moveaxis(ms.labels, 0, 2)
    ms2 = Microstructure(lab, voxel_size=1e-6, phases="pore=0,cbd=1,active=2", thickness_axis=2)
    opt = ResolvedOptions(max_steps=2)
    a = simulate_discharge(ms, options=opt)
    b = simulate_discharge(ms2, options=opt)
    np.testing.assert_allclose(a.voltage_V, b.voltage_V, rtol=0, atol=1e-9)
    assert b.snapshots[-1].fields["c_s"].shape == ms2.shape


def test_errors_teach():
    lab = np.zeros((6, 4, 4), np.uint8)
    with pytest.raises(PhaseError, match="active"):
        simulate_discharge(
            Microstructure(lab, voxel_size=1e-6, phases="pore=0,active=1", allow_empty_phases=True)
        )
    lab[2:4] = 1  # active slab not touching the collector
    with pytest.raises(PhaseError, match="current collector"):
        simulate_discharge(Microstructure(lab, voxel_size=1e-6, phases="pore=0,active=1"))
    with pytest.raises(InvalidInputError, match="cbd_porosity"):
        ResolvedOptions(cbd_porosity=2.0)
    with pytest.raises(InvalidInputError, match="c_rate"):
        simulate_discharge(_electrode(), c_rate=-1.0)


def test_disconnected_active_counted_in_theory_only(run):
    assert run.grid["disconnected_active_voxels"] == 2 * 2 * 2


@pytest.mark.parametrize("solver", ["direct", "pardiso"])
def test_modified_newton_matches_full_newton(solver):
    if solver == "pardiso":
        pytest.importorskip("pypardiso")
    base = {"max_steps": 4, "dt_initial_s": 10.0, "dt_max_s": 10.0, "dv_target_V": 1.0}
    base["linear_solver"] = solver
    a = simulate_discharge(_electrode(), options=ResolvedOptions(**base, jacobian_reuse=False))
    b = simulate_discharge(_electrode(), options=ResolvedOptions(**base, jacobian_reuse=True))
    # the first step has the same dt in both runs (later steps adapt to the iteration
    # count of full Newton); its converged voltage must agree
    assert a.time_s[1] == b.time_s[1] == 10.0
    assert abs(a.voltage_V[1] - b.voltage_V[1]) < 1e-6
    assert b.timing["factorizations"] < a.timing["factorizations"]
    assert b.max_conservation_error < 1e-8
