"""Decomposition (DRT, circuit fit, sensitivity), homogenised model, CLI verb."""

from __future__ import annotations

import json

import numpy as np
import pytest

from microbat.cell.eis.analytic import de_levie
from microbat.cell.eis.decomposition import _circuit, drt, fit_circuit, sensitivity
from microbat.cell.eis.homogenized import homogenized_eis
from microbat.cell.eis.parameters import EISParameters
from microbat.synth.phantoms import channels

F = np.logspace(4, -2, 37)
W = 2 * np.pi * F


def test_drt_recovers_two_rc_elements():
    z = 0.5 + 2 / (1 + 1j * W * 1e-3) + 1 / (1 + 1j * W * 1.0)
    r = drt(F, z, capacitive_tail=False)
    assert len(r.peaks_Hz) == 2
    assert r.peaks_Hz[0] == pytest.approx(1 / (2 * np.pi * 1e-3), rel=0.3)
    assert r.peaks_Hz[1] == pytest.approx(1 / (2 * np.pi), rel=0.3)
    assert r.peak_resistance_ohm == pytest.approx([2.0, 1.0], rel=0.05)
    assert r.r_inf_ohm == pytest.approx(0.5, rel=0.02)
    assert r.method == "GCV" and r.lambda_ > 0
    assert np.abs(r.impedance(F) - z).max() / np.abs(z).min() < 0.02


def test_circuit_fit_recovers_parameters_and_errors():
    names = ["R_s", "R_ion", "Q", "n", "R_ct", "sigma_W"]
    true = [1.0, 5.0, 1e-3, 0.9, 3.0, 0.5]
    z = _circuit(np.log(true), names, F)
    c = fit_circuit(F, z)
    assert [c.values[n] for n in names] == pytest.approx(true, rel=1e-6)
    zb = _circuit(np.log(true[:4]), names[:4], F)
    rng = np.random.default_rng(1)
    zb = zb * (1 + 0.002 * rng.standard_normal(F.size))
    cb = fit_circuit(F, zb, blocking=True)
    for n, v in zip(names[:4], true[:4], strict=True):
        assert abs(cb.values[n] - v) < 5 * cb.std[n] + 1e-9
        assert 0 < cb.std[n] < 0.2 * v


def test_homogenized_straight_pores_and_sensitivity():
    ms = channels((24, 8, 8), width=2, spacing=4, voxel_size=1e-6, offset=1)
    p = EISParameters(active_conductivity_S_per_m=1e6)
    h = homogenized_eis(ms, p, frequencies=F, blocking=True)
    assert h.details["ionic_efficiency"] == pytest.approx(0.25, rel=1e-3)  # ε = 1/4, τ = 1
    # the homogenised line of straight pores is de Levie's pore with the measured area
    a = h.details["specific_area_per_m"] * h.area_m2 * 24e-6
    ref = de_levie(
        1 / (p.electrolyte_conductivity_S_per_m * 0.25 * h.area_m2),
        1 / (1j * W * p.double_layer_F_per_m2 * a / 24e-6),
        24e-6,
    )
    np.testing.assert_allclose(h.impedance, ref, rtol=1e-3)
    s = sensitivity(
        lambda q: homogenized_eis(ms, q, frequencies=F, blocking=True).impedance,
        p,
        F,
        processes=["ionic transport", "double layer", "charge transfer"],
    )
    assert sum(s.share.values()) == pytest.approx(1.0)
    assert s.share["charge transfer"] == 0.0  # blocking: no Faradaic branch
    assert s.share["double layer"] > s.share["ionic transport"] > 0


def test_cli_eis_json(tmp_path):
    from typer.testing import CliRunner

    from microbat.cli._eis import register
    from microbat.cli.common import app
    from microbat.io.writers import save_microstructure

    if "eis" not in [c.name for c in app.registered_commands]:
        register(app)  # until cli/__init__.py lists "_eis"
    ms = channels((12, 6, 6), width=2, spacing=3, voxel_size=1e-6, offset=1)
    path = tmp_path / "ms.npz"
    save_microstructure(ms, path)
    out = tmp_path / "out"
    args = ["eis", str(path), "--params", "defaults", "--per-decade", "1", "--json"]
    res = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert len(d["frequency_Hz"]) == len(d["z_real_ohm"]) == len(d["z_imag_ohm"]) == 8
    assert d["z_imag_ohm"][-1] < 0
    assert {"drt", "circuit", "sensitivity"} <= set(d["decomposition"])
    assert (out / "spectrum.csv").read_text().startswith("f_Hz,z_real_ohm")
    assert (out / "nyquist_bode.png").stat().st_size > 1000
