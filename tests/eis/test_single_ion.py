"""Resolved EIS of a composite cathode (single-ion solid electrolyte) against closed forms."""

from __future__ import annotations

import json

import numpy as np
import pytest

from microbat import Microstructure
from microbat.cell.eis.analytic import de_levie
from microbat.cell.eis.homogenized import homogenized_eis
from microbat.cell.eis.parameters import EISParameters
from microbat.cell.eis.resolved import ResolvedModel, resolved_eis
from microbat.core.errors import PhaseError

H = 1e-6
F = 96485.33212
R = 8.314462618
FREQ = np.logspace(-3, 6, 28)  # 1 mHz .. 1 MHz
OMEGA = 2 * np.pi * FREQ


def _bilayer(n_active: int = 8, n_se: int = 12, width: int = 4) -> Microstructure:
    lab = np.zeros((n_active + n_se, width, width), np.uint8)
    lab[:n_active] = 1
    return Microstructure(lab, H, "se=0,active=1")


def _closed_form(p: EISParameters, n_active: int, n_se: int, area: float, *, blocking: bool):
    """R_am + R_SE + the Randles interface with the finite-length Warburg of the film."""
    length = n_active * H
    r_ct = R * p.temperature_K / (F * p.exchange_current_A_per_m2)
    d = p.solid_diffusivity_m2_per_s
    beta = length * np.sqrt(1j * OMEGA / d)
    z_d = -p.ocp_slope_V_m3_per_mol * length / (F * d) / (beta * np.tanh(beta))
    y = 1j * OMEGA * p.double_layer_F_per_m2
    if not blocking:
        y = y + 1 / (r_ct + z_d)
    r_series = length / (p.active_conductivity_S_per_m * area) + n_se * H / (
        p.solid_electrolyte_conductivity_S_per_m * area
    )
    return r_series + 1 / (y * area)


@pytest.mark.parametrize("blocking", [False, True])
def test_planar_bilayer_is_r_se_plus_randles_with_finite_warburg(blocking):
    p = EISParameters(
        diffusion_geometry="slab",
        particle_radius_m=8 * H,  # the active film feeds diffusion through one face
        solid_electrolyte_conductivity_S_per_m=0.05,
        electrolyte_conductivity_S_per_m=123.0,  # a liquid κ must play no part
    )
    model = ResolvedModel(_bilayer(), p, blocking=blocking)
    assert model.single_ion
    z, info = model.impedance(FREQ)
    ref = _closed_form(p, 8, 12, 16 * H * H, blocking=blocking)
    assert info["max_residual"] < 1e-12
    err = np.abs(z - ref) / np.abs(ref)
    assert err.max() < 1e-6  # measured 5.7e-7 (float32 conductance fields)


def test_se_channel_through_active_is_de_levie():
    """The homogeneous-limit check: one SE channel through a dense active block."""
    n = 64
    lab = np.ones((n, 3, 3), np.uint8)
    lab[:, 1, 1] = 0
    ms = Microstructure(lab, H, "se=0,active=1")
    p = EISParameters(solid_electrolyte_conductivity_S_per_m=10.0, active_conductivity_S_per_m=1e6)
    model = ResolvedModel(ms, p, blocking=True)
    assert model.interface_area_m2 == pytest.approx(4 * n * H * H)
    f = np.logspace(-3, 5, 9)  # the penetration depth stays above a voxel up to 100 kHz
    z, _ = model.impedance(f)
    r_ion = 1 / (10.0 * H * H)
    zeta = 1 / (2j * np.pi * f * p.double_layer_F_per_m2 * 4 * H)
    ref = de_levie(r_ion, zeta, n * H)
    assert (np.abs(z - ref) / np.abs(ref)).max() < 0.02


def _composite() -> Microstructure:
    from microbat.synth import composite_cathode

    return composite_cathode(
        (16, 16, 16), voxel_size=0.5e-6, active_fraction=0.45, electrolyte_fraction=0.4,
        active_radius=1.5e-6, electrolyte_radius=0.8e-6, seed=4,
    )  # fmt: skip


def test_composite_reacts_on_active_se_faces_only():
    ms = _composite()
    lab = np.asarray(ms.labels)
    a, se = ms.phases["active"].label, ms.phases["se"].label
    faces = 0
    for ax in range(3):
        x, y = np.moveaxis(lab, ax, 0)[:-1], np.moveaxis(lab, ax, 0)[1:]
        faces += int(np.sum((x == a) & (y == se)) + np.sum((x == se) & (y == a)))
    h = 0.5e-6
    r = resolved_eis(ms, frequencies=[1e4, 1.0])
    assert r.details["ionic_conductor"] == "solid_electrolyte"
    assert r.interface_area_m2 == pytest.approx(faces * h * h)
    assert np.all(r.z_imag_ohm < 0) and np.all(r.z_real_ohm > 0)
    # σ_SE sets the high-frequency resistance; a liquid κ does nothing
    p = EISParameters()
    z1 = resolved_eis(ms, p.with_values(electrolyte_conductivity_S_per_m=0.01), frequencies=[1e5])
    z2 = resolved_eis(ms, p, frequencies=[1e5])
    z3 = resolved_eis(
        ms, p.with_values(solid_electrolyte_conductivity_S_per_m=0.02), frequencies=[1e5]
    )
    assert z1.z_real_ohm[0] == pytest.approx(z2.z_real_ohm[0], rel=1e-9)
    assert z3.z_real_ohm[0] > 3 * z2.z_real_ohm[0]
    # the homogenised line reads the same single-ion sets
    hom = homogenized_eis(ms, p, frequencies=[1e5, 1.0])
    assert hom.details["ionic_conductor"] == "solid_electrolyte"


def test_carbon_binder_between_active_and_se_leaves_no_reaction():
    lab = np.zeros((12, 4, 4), np.uint8)
    lab[:5] = 1  # active
    lab[5] = 2  # carbon-binder: conducts electrons, no reaction face
    ms = Microstructure(lab, H, "se=0,active=1,cbd=2")
    with pytest.raises(PhaseError, match="solid electrolyte"):
        ResolvedModel(ms)


def test_eis_verb_on_a_composite(tmp_path):
    from typer.testing import CliRunner

    from microbat.cli.common import app
    from microbat.io import save_microstructure

    if "eis" not in [c.name for c in app.registered_commands]:
        from microbat.cli._eis import register

        register(app)
    save_microstructure(_composite(), tmp_path / "c.h5")
    args = ["eis", str(tmp_path / "c.h5"), "--params", "defaults", "--json", "--quiet"]
    args += ["--f-min", "1", "--f-max", "1e5", "--per-decade", "1"]
    args += ["--sensitivity-model", "none"]
    out = []
    for sigma in ("0.2", "0.02"):
        res = CliRunner().invoke(app, [*args, "--se-conductivity", sigma])
        assert res.exit_code == 0, res.output
        data = json.loads(res.output)
        assert data["details"]["ionic_conductor"] == "solid_electrolyte"
        assert data["parameters"]["solid_electrolyte_conductivity_S_per_m"] == float(sigma)
        out.append(data["z_real_ohm"][0])  # 100 kHz: the ionic resistance
    assert out[1] > 3 * out[0]
