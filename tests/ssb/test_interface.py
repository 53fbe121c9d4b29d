"""Lithium interface with contact loss: constriction, current focusing, critical current."""

from __future__ import annotations

import math

import numpy as np
import pytest

from microbat import Microstructure
from microbat.core.errors import InvalidInputError, PhaseError
from microbat.ssb.interface import (
    contact_loss_slab,
    interface_current,
    monroe_newman,
    spot_spreading_resistance,
)

H = 1e-6


def _spot(a_vox: int, eps: float = 0.25, length: float = 1.5):
    """One circular spot of radius a on a circular flux tube of radius a/eps."""
    b = a_vox / eps
    n = 2 * (math.ceil(b) + 1)
    x = np.arange(n) + 0.5 - n / 2
    rr = np.hypot(*np.meshgrid(x, x, indexing="ij"))
    tube, spot = rr <= b, rr <= a_vox
    lab = np.zeros((round(length * b), n, n), np.uint8)
    lab[:, tube] = 1
    ms = Microstructure(lab, H, "void:gas=0,se:solid_electrolyte=1")
    r = interface_current(ms, kinetics="none", conductivity=1.0, contact=spot)
    r_total = r.resistance_ohm_m2 / (n * H) ** 2
    r_bulk = lab.shape[0] * H / (tube.sum() * H * H)
    a_eff = math.sqrt(spot.sum() / math.pi) * H
    ref = spot_spreading_resistance(a_eff, 1.0, math.sqrt(tube.sum() / math.pi) * H)
    return (r_total - r_bulk) / ref, r, rr / (a_eff / H), spot


def _richardson(a: int) -> float:
    coarse, fine = _spot(a)[0], _spot(2 * a)[0]
    return 2 * fine - coarse  # first-order convergence in the voxel size


def test_holm_constriction_richardson():
    """One spot against Holm's ρ/(4a) ψ(a/b) (twice it: ρ/(2a) two-sided)."""
    assert _richardson(6) == pytest.approx(1.0, abs=0.015)


@pytest.mark.slow
def test_holm_constriction_direct_and_extrapolated():
    ratio, *_ = _spot(24)
    assert ratio == pytest.approx(1.0, abs=0.03)
    assert _richardson(12) == pytest.approx(1.0, abs=0.005)


def test_edge_current_rise():
    """j(r)/j(0) = 1/sqrt(1 - r²/a²) (Newman's primary distribution), away from the edge."""
    _, r, s, spot = _spot(12)
    j = r.current_density_A_per_m2
    centre = j[spot & (s < 0.3)].mean()
    cf0 = (1 - math.sqrt(1 - 0.09)) / 0.09  # closed form averaged over r < 0.3a, × 2
    for lo, hi, tol in ((0.3, 0.5, 0.01), (0.5, 0.7, 0.015), (0.7, 0.8, 0.04), (0.8, 0.9, 0.12)):
        m = spot & (s >= lo) & (s < hi)
        closed = (math.sqrt(1 - lo**2) - math.sqrt(1 - hi**2)) / (hi**2 - lo**2) / cf0
        assert j[m].mean() / centre == pytest.approx(closed, rel=tol)
    assert j[spot].max() > 2 * centre  # the edge rises without bound as h → 0


def test_slab_generator():
    ms = contact_loss_slab((6, 40, 30), voxel_size=0.5e-6, contact_fraction=0.6, seed=3)
    assert float((ms.labels[0] == 1).mean()) == pytest.approx(0.6, abs=1 / 1200)
    assert ms.metadata["interface"]["void_depth_m"] == pytest.approx(0.5e-6)
    again = contact_loss_slab((6, 40, 30), voxel_size=0.5e-6, contact_fraction=0.6, seed=3)
    assert np.array_equal(ms.labels, again.labels)
    assert np.all(ms.labels[2:] == 1)


@pytest.mark.parametrize("f", [0.0, -0.2, 1.2, float("nan"), "x"])
def test_bad_contact_fraction(f):
    with pytest.raises(InvalidInputError):
        contact_loss_slab((6, 16, 16), voxel_size=1e-6, contact_fraction=f, seed=0)


def test_full_contact_is_uniform():
    ms = contact_loss_slab((10, 12, 12), voxel_size=H, contact_fraction=1.0, seed=0)
    r = interface_current(ms, kinetics="linear", conductivity=0.05, exchange_current=10.0)
    assert r.focusing_factor_max == pytest.approx(1.0, rel=1e-6)
    assert r.contact_fraction == 1.0
    r_ct = 8.314462618 * 298.15 / (96485.33212 * 10.0)
    assert r.resistance_ohm_m2 == pytest.approx(10 * H / 0.05 + r_ct, rel=1e-6)
    assert abs(r.constriction_resistance_ohm_m2) < 1e-6 * r.resistance_ohm_m2
    assert r.critical_current_A_per_m2 == pytest.approx(r.critical_current_density_A_per_m2)


@pytest.fixture(scope="module")
def slab():
    return contact_loss_slab((12, 32, 32), voxel_size=0.25e-6, contact_fraction=0.7, seed=1)


def test_focusing_and_critical_current_linear(slab):
    r = interface_current(slab, kinetics="linear", current_density=5.0)
    assert r.contact_fraction == pytest.approx(0.7, abs=1e-3)
    assert r.focusing_factor_max > r.focusing_factor_p99 > 1.0
    assert r.focusing_factor_max > r.focusing_factor_uniform
    # mean of the focusing over the nominal area is 1 (current balance)
    assert r.focusing.mean() == pytest.approx(1.0, rel=1e-6)
    assert r.critical_current_A_per_m2 == pytest.approx(10.0 / r.focusing_factor_max)
    assert r.constriction_resistance_ohm_m2 > 0
    assert r.hot_spot_fraction == 0.0
    hot = interface_current(
        slab, kinetics="linear", current_density=2 * r.critical_current_A_per_m2
    )
    assert hot.hot_spot_fraction > 0 and hot.hot_spots.any()


def test_butler_volmer(slab):
    """Small currents: BV equals its linearisation; at J* the largest j is j_crit."""
    lin = interface_current(slab, kinetics="linear", current_density=0.01, exchange_current=5.0)
    bv = interface_current(
        slab, kinetics="butler-volmer", current_density=0.01, exchange_current=5.0,
        critical_current_density=20.0,
    )  # fmt: skip
    np.testing.assert_allclose(bv.focusing, lin.focusing, rtol=1e-4, atol=1e-6)
    check = interface_current(
        slab, kinetics="butler-volmer", exchange_current=5.0, critical=False,
        current_density=bv.critical_current_A_per_m2,
    )  # fmt: skip
    assert float(check.current_density_A_per_m2.max()) == pytest.approx(20.0, rel=1e-3)
    # Tafel regime: less kinetic resistance, more focusing than the linear estimate
    assert bv.critical_current_A_per_m2 < 20.0 / lin.focusing_factor_max
    assert bv.focusing.mean() == pytest.approx(1.0, rel=1e-6)


def test_monroe_newman():
    llzo = monroe_newman(59.6e9)
    assert llzo.ratio == pytest.approx(59.6 / 4.25)
    assert llzo.satisfied and llzo.threshold == 2.0
    assert not monroe_newman(2e9).satisfied  # a soft polymer
    with pytest.raises(InvalidInputError):
        monroe_newman(-1.0)


def test_bad_input(slab):
    with pytest.raises(InvalidInputError):
        interface_current(slab, kinetics="tafel")
    with pytest.raises(InvalidInputError):
        interface_current(slab, current_density=-1.0)
    with pytest.raises(InvalidInputError):
        interface_current(slab, contact=np.ones((4, 4), bool))
    ms = Microstructure(np.zeros((4, 4, 4), np.uint8), H, "active=0,se=1", allow_empty_phases=True)
    with pytest.raises(PhaseError):
        interface_current(ms)
