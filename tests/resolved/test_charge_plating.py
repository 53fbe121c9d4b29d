"""Lithium plating side reaction in the resolved charge: conservation, closed form."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy.optimize import brentq

from microbat import Microstructure
from microbat.cell.parameters import CellParameters
from microbat.cell.resolved import ResolvedOptions, ResolvedParameters, simulate_charge
from microbat.cell.resolved._params import FARADAY, GAS_CONSTANT
from microbat.core.errors import InvalidInputError


def _electrode() -> Microstructure:
    lab = np.zeros((8, 6, 6), np.uint8)
    lab[:, :3, :3] = 2
    lab[:, 3:, 3:] = 2
    lab[:5, :3, 3:5] = 1
    return Microstructure(lab, voxel_size=1e-6, phases="pore=0,cbd=1,active=2")


@pytest.fixture(scope="module")
def plated():
    opt = ResolvedOptions(plating="irreversible")
    return simulate_charge(_electrode(), c_rate=3.0, options=opt, snapshot_times=[])


def test_lithium_conserved_with_plated_lithium(plated):
    r = plated
    assert r.complete and r.plating == "irreversible"
    # the balance of every step includes the plated lithium
    assert np.all(r.li_error[1:] < 1e-8) and np.all(r.charge_error[1:] < 1e-8)
    assert np.max(np.abs(r.breakdown_V["residual"])) < 1e-6
    # irreversible deposition only grows, and fastest where the graphite is lowest
    # (O'Kane's irreversible form deposits at any η_pl, exponentially less above 0 V)
    assert r.plated_Li_mol[-1] > 0 and np.all(np.diff(r.plated_Li_mol) >= 0)
    rate = np.diff(r.plated_Li_mol) / np.diff(r.time_s)
    assert rate[np.argmin(r.voltage_V[1:])] > 10 * rate[0]
    assert r.plated_Ah == pytest.approx(r.plated_Li_mol[-1] * FARADAY / 3600.0)
    assert 0 < r.plated_Ah < r.capacity_Ah
    # the per-voxel field holds the same lithium
    f = r.snapshots[-1].fields["plated_Li"]
    assert np.nansum(f.astype(float)) * 1e-18 == pytest.approx(r.plated_Li_mol[-1], rel=1e-6)


def test_partially_reversible_and_resume(tmp_path):
    ms = _electrode()
    opt = ResolvedOptions(plating="partially_reversible", dead_lithium_decay_per_s=1e-3)
    kw = dict(c_rate=3.0, options=opt, snapshot_times=[])
    full = simulate_charge(ms, **kw)
    assert full.dead_Li_mol[-1] > 0 and full.max_conservation_error < 1e-8
    # resumed from a checkpoint mid-run: the plated state travels with it
    short = dataclasses.replace(opt, max_steps=25)
    simulate_charge(ms, c_rate=3.0, options=short, snapshot_times=[], checkpoint=tmp_path)
    res = simulate_charge(ms, **kw, checkpoint=tmp_path, resume=True)
    assert res.resumed_at_step == 25 and res.steps == full.steps
    assert res.plated_Li_mol[-1] == pytest.approx(full.plated_Li_mol[-1], rel=1e-6)
    assert res.dead_Li_mol[-1] == pytest.approx(full.dead_Li_mol[-1], rel=1e-6)


def test_bad_plating_option():
    with pytest.raises(InvalidInputError, match="plating="):
        ResolvedOptions(plating="sometimes")


def test_plated_amount_against_closed_form():
    """Flat electrode, one short step: deposition rate A F k c_e exp(-α_pl f η_pl)."""
    H, N0, NY, TH0, DT = 1e-6, 10, 4, 0.5, 1e-3
    lab = np.zeros((N0, NY, NY), np.uint8)
    lab[:2] = 2
    ms = Microstructure(lab, voxel_size=H, phases="pore=0,active=2")
    p = ResolvedParameters.from_cell_parameters(CellParameters.from_name("chen2020"), "negative")
    p = dataclasses.replace(p, transference_number=1.0)  # uniform c_e
    opt = ResolvedOptions(
        reaction_area="faces", dt_initial_s=DT, end_time_s=DT, plating="irreversible"
    )
    res = simulate_charge(
        ms, p, c_rate=10.0, initial_stoichiometry=TH0, end_stoichiometry=0.9,
        snapshot_times=[], options=opt,
    )  # fmt: skip
    assert res.steps == 1
    current = -res.current_A
    area = NY * NY * H * H
    F_RT = FARADAY / (GAS_CONSTANT * p.temperature)
    a, a_pl, k = p.alpha, opt.plating_transfer_coefficient, opt.plating_rate_constant_m_per_s
    U = float(p.ocp(np.array([TH0]))[0])
    j0 = float(
        p.exchange_current(np.array([p.c_e0]), np.array([TH0 * p.c_max]), p.c_max, p.temperature)[0]
    )

    def deposition(x: float) -> float:  # A/m², cathodic positive
        return FARADAY * k * p.c_e0 * math.exp(-a_pl * F_RT * x)

    def balance(x: float) -> float:  # x = φ_s − φ_e on the planar face
        eta = x - U
        inter = j0 * (math.exp(a * F_RT * eta) - math.exp(-(1 - a) * F_RT * eta))
        return area * (inter - deposition(x)) + current

    x = brentq(balance, -1.0, 1.0, xtol=1e-15)
    assert x < 0  # 10C: the face is below lithium's potential
    expected = area * deposition(x) * DT / FARADAY
    assert res.plated_Li_mol[-1] == pytest.approx(expected, rel=0.02)
    assert res.plated_Li_mol[-1] == pytest.approx(expected, rel=1e-4)  # measured ~1e-6
