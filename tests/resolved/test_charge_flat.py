"""Thin flat electrode under uniform reaction: closed-form electrolyte drop and onset.

A planar active slab (two voxel layers at the collector, the whole cross-section)
faces a pore channel of ``n_p`` voxel layers, then the separator slab and the
lithium-metal counter electrode. With a transference number of one the salt has no
source, ``c_e`` stays uniform (exactly) and there is no diffusion potential, so the
electrolyte potential is linear in the current (Ohm's law through the channel and
the separator, ε_sep^b × κ) and offset by the lithium-metal kinetics:

    φ_e(x) = −η_Li − I (d(x) + L_sep / ε_sep^b) / (κ A),
    I = A j_0,Li [exp(α f η_Li) − exp(−(1 − α) f η_Li)],

``d(x)`` the distance from ``x`` to the separator face and ``A`` the cross-section.
On the planar reaction face the plating overpotential ``φ_s − φ_e`` equals
``U(θ) + η`` with ``A j_0 [exp(α f η) − exp(−(1 − α) f η)] = −I`` (a uniform
reaction), so it reaches 0 at the onset current

    I_pl = A j_0 [exp((1 − α) f U) − exp(−α f U)].

Both are read from the ``on_fields`` hook of a single short step from rest (θ and
c_e unchanged to 1e-6).
"""

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

H = 1e-6
N0, NY = 10, 4  # layers along the thickness, lateral voxels
SLAB = 2  # active layers at the collector
TH0 = 0.5
DT = 1e-3


def _flat() -> Microstructure:
    lab = np.zeros((N0, NY, NY), np.uint8)
    lab[:SLAB] = 2
    return Microstructure(lab, voxel_size=H, phases="pore=0,active=2")


def _params() -> ResolvedParameters:
    p = ResolvedParameters.from_cell_parameters(CellParameters.from_name("chen2020"), "negative")
    return dataclasses.replace(p, transference_number=1.0)


def _step(c_rate: float) -> tuple[dict[str, np.ndarray], float]:
    """Fields after one step of DT from rest, and the applied current (A)."""
    got: dict[str, np.ndarray] = {}
    opt = ResolvedOptions(reaction_area="faces", dt_initial_s=DT, end_time_s=DT)
    res = simulate_charge(
        _flat(),
        _params(),
        c_rate=c_rate,
        initial_stoichiometry=TH0,
        end_stoichiometry=0.9,
        snapshot_times=[],
        options=opt,
        on_fields=lambda t, f: got.update(f),
    )
    assert res.steps == 1 and res.complete
    return got, -res.current_A


def test_linear_electrolyte_drop():
    p = _params()
    f, current = _step(3.0)
    assert np.nanmax(np.abs(f["c_e"] - p.c_e0)) < 1e-9 * p.c_e0  # uniform salt
    area = NY * NY * H * H
    kappa = float(p.electrolyte_conductivity(np.array([p.c_e0]), p.temperature)[0])
    eff_sep = p.separator_porosity**p.separator_bruggeman
    F_RT = FARADAY / (GAS_CONSTANT * p.temperature)
    a = p.alpha
    eta_li = brentq(
        lambda e: (
            area
            * ResolvedOptions().li_exchange_current_A_per_m2
            * (math.exp(a * F_RT * e) - math.exp(-(1 - a) * F_RT * e))
            - current
        ),
        -1.0,
        1.0,
        xtol=1e-15,
    )
    pe = f["phi_e"][SLAB:, 0, 0]
    assert np.allclose(f["phi_e"][SLAB:], pe[:, None, None], rtol=0, atol=1e-12)  # planar
    d = (N0 - np.arange(SLAB, N0) - 0.5) * H
    expected = -eta_li - current * (d + p.separator_thickness / eff_sep) / (kappa * area)
    # the drop across channel + separator and the whole profile within 2 % (measured ~1e-9)
    drop, drop_exp = pe[0] + eta_li, expected[0] + eta_li
    assert drop == pytest.approx(drop_exp, rel=0.02)
    assert np.max(np.abs(pe - expected)) / abs(drop_exp) < 0.02
    # and far tighter: the FV scheme is exact for a linear profile
    assert np.max(np.abs(pe - expected)) / abs(drop_exp) < 1e-6


def test_plating_onset_current():
    p = _params()
    area = NY * NY * H * H
    F_RT = FARADAY / (GAS_CONSTANT * p.temperature)
    a = p.alpha
    U = float(p.ocp(np.array([TH0]))[0])
    j0 = float(
        p.exchange_current(np.array([p.c_e0]), np.array([TH0 * p.c_max]), p.c_max, p.temperature)[0]
    )
    I_pl = area * j0 * (math.exp((1 - a) * F_RT * U) - math.exp(-a * F_RT * U))

    def eta_pl(c_rate: float) -> float:
        f, _ = _step(c_rate)
        # the reaction faces: last active layer against the first pore layer
        return float(np.min(f["phi_s"][SLAB - 1] - f["phi_e"][SLAB]))

    _, one_c = _step(1.0)
    lo, hi = 0.2 * I_pl / one_c, 5.0 * I_pl / one_c
    assert eta_pl(lo) > 0 > eta_pl(hi)
    c_onset = brentq(eta_pl, lo, hi, xtol=1e-9 * hi, rtol=1e-10)
    assert c_onset * one_c == pytest.approx(I_pl, rel=0.02)
    assert c_onset * one_c == pytest.approx(I_pl, rel=1e-4)  # measured ~1e-6
