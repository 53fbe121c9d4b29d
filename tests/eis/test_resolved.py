"""Resolved EIS against closed forms: Randles, de Levie, the two-rail line."""

from __future__ import annotations

import numpy as np
import pytest

from microbat import Microstructure
from microbat.cell.eis.analytic import de_levie, randles, transmission_line
from microbat.cell.eis.parameters import EISParameters
from microbat.cell.eis.resolved import ResolvedModel, resolved_eis
from microbat.cell.eis.result import default_frequencies
from microbat.core.errors import NotPercolatingError, PhaseError
from microbat.synth.phantoms import channels

H = 1e-6
FREQ = default_frequencies(1e-2, 1e5, 2)  # the full band, 2 per decade (15 points)
OMEGA = 2 * np.pi * FREQ


def single_pore(n: int = 64) -> Microstructure:
    lab = np.ones((n, 3, 3), np.uint8)
    lab[:, 1, 1] = 0
    return Microstructure(lab, H, "pore=0,active=1")


def test_flat_electrode_is_randles_exactly():
    lab = np.zeros((20, 4, 4), np.uint8)
    lab[:8] = 1
    ms = Microstructure(lab, H, "pore=0,active=1")
    p = EISParameters()
    area = 16 * H * H
    rs = 8 * H / (p.active_conductivity_S_per_m * area) + 12 * H / (
        p.electrolyte_conductivity_S_per_m * area
    )
    for blocking in (False, True):
        z, info = ResolvedModel(ms, p, blocking=blocking).impedance(FREQ)
        ref = randles(p.admittance(OMEGA, blocking=blocking), area, rs)
        assert info["max_residual"] < 1e-12
        np.testing.assert_allclose(z, ref, rtol=1e-6)


def test_single_pore_is_de_levie_within_2_percent():
    n = 64
    p = EISParameters(electrolyte_conductivity_S_per_m=10.0, active_conductivity_S_per_m=1e6)
    model = ResolvedModel(single_pore(n), p, blocking=True)
    assert model.interface_area_m2 == pytest.approx(4 * n * H * H)
    z, _ = model.impedance(FREQ)
    r_ion = 1 / (p.electrolyte_conductivity_S_per_m * H * H)
    zeta = 1 / (1j * OMEGA * p.double_layer_F_per_m2 * 4 * H)
    ref = de_levie(r_ion, zeta, n * H)
    err = np.abs(z - ref) / np.abs(ref)
    assert err.max() < 0.02
    # 45° at high frequency, R_ion/3 and a capacitor at low frequency
    assert np.degrees(np.angle(z[0])) == pytest.approx(-45.0, abs=1.5)
    assert z[-1].real == pytest.approx(r_ion * n * H / 3, rel=0.01)
    c_total = p.double_layer_F_per_m2 * 4 * n * H * H
    assert z[-1].imag == pytest.approx(-1 / (OMEGA[-1] * c_total), rel=1e-3)


def test_square_channels_are_de_levie():
    ms = channels((48, 8, 8), width=2, spacing=4, voxel_size=H, offset=1)
    p = EISParameters(electrolyte_conductivity_S_per_m=10.0, active_conductivity_S_per_m=1e6)
    model = ResolvedModel(ms, p, blocking=True)
    pore_area = 4 * 4 * H * H  # four 2x2 channels
    perimeter = model.interface_area_m2 / (48 * H)
    assert perimeter == pytest.approx(4 * 8 * H)
    z, _ = model.impedance(FREQ)
    ref = de_levie(
        1 / (p.electrolyte_conductivity_S_per_m * pore_area),
        1 / (1j * OMEGA * p.double_layer_F_per_m2 * perimeter),
        48 * H,
    )
    assert (np.abs(z - ref) / np.abs(ref)).max() < 0.02


def test_finite_solid_conductivity_matches_two_rail_line():
    n = 64
    p = EISParameters(electrolyte_conductivity_S_per_m=10.0, active_conductivity_S_per_m=5.0)
    z, _ = ResolvedModel(single_pore(n), p, blocking=False).impedance(FREQ)
    r1 = 1 / (p.electrolyte_conductivity_S_per_m * H * H)
    r2 = 1 / (p.active_conductivity_S_per_m * 8 * H * H)
    zeta = 1 / (p.admittance(OMEGA) * 4 * H)
    ref = transmission_line(r1, r2, zeta, n * H)
    assert (np.abs(z - ref) / np.abs(ref)).max() < 0.02


def test_result_and_sign_convention():
    ms = channels((16, 6, 6), width=2, spacing=6, voxel_size=H)
    r = resolved_eis(ms, frequencies=[1e4, 1.0, 0.01], blocking=True)
    assert r.z_imag_ohm.shape == r.z_real_ohm.shape == (3,)
    assert np.all(r.z_imag_ohm < 0)
    assert r.area_m2 == pytest.approx(36 * H * H)
    d = r.to_dict()
    assert len(d["frequency_Hz"]) == 3 and d["model"] == "resolved"


def test_errors_teach():
    lab = np.zeros((8, 3, 3), np.uint8)
    with pytest.raises(PhaseError, match="active"):
        ResolvedModel(Microstructure(lab, H, "pore=0"))
    lab = np.ones((8, 3, 3), np.uint8)
    lab[:, 1, 1] = 0
    lab[-1] = 1  # the pore is sealed at the separator side
    with pytest.raises(NotPercolatingError, match="separator"):
        ResolvedModel(Microstructure(lab, H, "pore=0,active=1"))


def test_iterative_matches_direct_serial_and_in_processes():
    from microbat.synth import electrode

    ms = electrode((20, 20, 20), voxel_size=0.5e-6, mean_radius=2e-6, seed=1)
    model = ResolvedModel(ms)
    f = np.array([1e5, 1e3, 10.0, 0.1, 0.01])
    zd, _ = model.impedance(f, solver="direct")
    z1, info = model.impedance(f, solver="iterative", workers=1)
    assert max(info["iterations"]) < 30
    assert np.max(np.abs(z1 - zd) / np.abs(zd)) < 1e-4
    z2, _ = model.impedance(f, solver="iterative", workers=2)
    np.testing.assert_allclose(z2, z1, rtol=1e-5)
