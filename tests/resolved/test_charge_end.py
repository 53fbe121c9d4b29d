"""A run that ends inside a step ends at the event: state, fields and amounts agree.

Issue 18: the end of a charge (x_100, a potential limit, the CV end current) or of a
discharge (the cut-off) usually falls inside a backward-Euler step. The run's last
record, the fields handed to ``on_fields``, the capacity and the plated lithium must
all refer to that instant, not to the end of the step that crossed it (at 4C with
the default steps, the plated amount of the step's end was 44 % above the DFN's).
"""

from __future__ import annotations

import numpy as np
import pytest

from microbat import Microstructure
from microbat.cell.parameters import CellParameters
from microbat.cell.resolved import (
    ResolvedOptions,
    ResolvedParameters,
    simulate_charge,
    simulate_discharge,
)

FARADAY = 96485.33212


def _electrode() -> Microstructure:
    """8x6x6 voxels (1 µm): two active columns and a carbon-binder bridge."""
    lab = np.zeros((8, 6, 6), np.uint8)
    lab[:, :3, :3] = 2
    lab[:, 3:, 3:] = 2
    lab[:5, :3, 3:5] = 1
    return Microstructure(lab, voxel_size=1e-6, phases="pore=0,cbd=1,active=2")


class _Last:
    """``on_fields`` hook keeping the time and the float64 fields of the last call."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.fields: dict[str, np.ndarray] = {}

    def __call__(self, t: float, fields: dict) -> None:
        self.times.append(float(t))
        self.fields = {k: np.array(v, dtype=float) for k, v in fields.items()}


def test_plated_charge_ends_at_x100_with_the_lithium_it_passed():
    ms = _electrode()
    vox = float(np.prod(ms.voxel_size))
    hook = _Last()
    opt = ResolvedOptions(plating="irreversible")
    r = simulate_charge(ms, c_rate=4.0, options=opt, on_fields=hook, snapshot_times=[])
    assert r.complete and "charge end" in r.status
    t_end = float(r.time_s[-1])
    # the state of the last record is at x_100, not past it
    assert r.final_mean_stoichiometry == pytest.approx(r.end_stoichiometry, abs=1e-8)
    th = hook.fields["stoichiometry"]
    assert float(np.nanmean(th)) == pytest.approx(r.end_stoichiometry, abs=1e-8)
    # the hook's last call, the last snapshot and the curve share that instant
    assert hook.times[-1] == t_end and r.snapshots[-1].time_s == t_end
    # plated lithium = lithium passed up to t_end − lithium inserted into the graphite
    # (the electrolyte's salt is conserved): the time integral of the plating current
    passed = abs(r.current_A) * t_end / FARADAY
    n_active = int(np.count_nonzero(~np.isnan(th)))
    c_max = float(np.nanmax(hook.fields["c_s"] / th))
    inserted = (float(np.nansum(hook.fields["c_s"])) * vox) - (
        r.initial_stoichiometry * c_max * n_active * vox
    )
    assert r.plated_Li_mol[-1] > 1e-3 * passed  # 4C on graphite plates
    assert r.plated_Li_mol[-1] == pytest.approx(passed - inserted, rel=1e-6)
    assert np.nansum(hook.fields["plated_Li"]) * vox == pytest.approx(r.plated_Li_mol[-1])
    # and the capacity is the charge passed up to that instant
    assert r.capacity_Ah == pytest.approx(abs(r.current_A) * t_end / 3600.0, rel=1e-12)


def test_discharge_and_cv_end_at_their_event():
    ms = _electrode()
    hook = _Last()
    opt = ResolvedOptions(cutoff_V=3.6)  # reached before the surface saturates
    d = simulate_discharge(ms, c_rate=2.0, options=opt, snapshot_times=[], on_fields=hook)
    assert d.complete and d.status == "cut-off voltage reached"
    assert d.voltage_V[-1] == pytest.approx(3.6, abs=1e-7)
    assert d.time_s[-1] - d.time_s[-2] > 1.0
    assert hook.times[-1] == d.time_s[-1]
    # the state of the last record has taken up exactly the charge passed up to t_end
    par = ResolvedParameters.from_cell_parameters(CellParameters.from_name("chen2020"), "positive")
    th = hook.fields["stoichiometry"]
    n_active = int(np.count_nonzero(~np.isnan(th)))
    inserted = d.capacity_Ah * 3600.0 / FARADAY / (par.c_max * n_active * 1e-18)
    assert float(np.nanmean(th)) - par.c_s0 / par.c_max == pytest.approx(inserted, rel=1e-7)
    # CC-CV: the last record's current is the end current of the hold
    cv = simulate_charge(ms, c_rate=3.0, cv_voltage=0.12, snapshot_times=[])
    assert cv.complete and cv.status.startswith("CV current fell")
    assert abs(cv.cell_current_A[-1]) == pytest.approx(cv.cv_end_current_A, rel=1e-6)
    assert cv.voltage_V[-1] == pytest.approx(0.12, abs=1e-9)


def _deep_column() -> Microstructure:
    """30x4x4 voxels (1 µm): a pore channel between active columns, 30 µm deep."""
    lab = np.zeros((30, 4, 4), np.uint8)
    lab[:, :2, :] = 2
    lab[:, 2:, :2] = 2
    return Microstructure(lab, voxel_size=1e-6, phases="pore=0,active=2")


def test_depleted_electrolyte_ends_the_run_at_its_floor():
    # slow electrolyte transport: the collector end of the pore runs out of salt at
    # 3C long before the graphite is full. Without the event the run went on to
    # -5 V and failed there (194 steps); with it, it ends where the lowest
    # concentration reaches the floor, like PyBaMM's zero-concentration event
    ms = _deep_column()
    hook = _Last()
    opt = ResolvedOptions(electrolyte_transport_scale=0.02, electrolyte_depletion_limit=1e-2)
    r = simulate_charge(ms, c_rate=3.0, options=opt, on_fields=hook, snapshot_times=[])
    assert r.complete and r.status.startswith("electrolyte depleted")
    assert float(np.nanmin(hook.fields["c_e"])) == pytest.approx(10.0, rel=1.1e-2)
    assert float(np.nanmax(hook.fields["c_e"])) > 5.0 * 10.0  # only the far end is empty
    assert hook.times[-1] == float(r.time_s[-1])
    assert r.final_mean_stoichiometry < r.end_stoichiometry  # it ended early
    # the floor is the event: with it disabled the same charge does not end there
    off = ResolvedOptions(
        electrolyte_transport_scale=0.02, electrolyte_depletion_limit=0.0, max_steps=40
    )
    r_off = simulate_charge(ms, c_rate=3.0, options=off, snapshot_times=[])
    assert not r_off.status.startswith("electrolyte depleted")
