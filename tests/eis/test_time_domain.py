"""Spectrum vs time domain: the step response of the impedance model against the
resolved time-domain model (``microbat.cell.resolved``) after a small current step."""

from __future__ import annotations

import dataclasses

import numpy as np

from microbat import Microstructure
from microbat.cell.eis.parameters import FARADAY, GAS_CONSTANT
from microbat.cell.eis.resolved import ResolvedModel
from microbat.cell.eis.transient import parameters_from_resolved, step_response, talbot_inverse

L_SLAB = 1.6e-6  # active layer on the current collector
D_S = 1e-13  # m²/s: diffusion time L²/D = 25.6 s keeps the time-domain run short
L_PORE = 0.8e-6  # electrolyte layer between the active layer and the separator
LI_I0 = 10.0  # ResolvedOptions default exchange current of the lithium counter electrode


def test_talbot_inverts_an_rc_step_exactly():
    r0, r1, c = 2.0, 3.0, 0.5
    t = np.array([0.01, 0.3, 1.5, 6.0])
    v = step_response(lambda s: r0 + 1 / (1 / r1 + s * c), t, 1e-3)
    np.testing.assert_allclose(v, 1e-3 * (r0 + r1 * (1 - np.exp(-t / (r1 * c)))), rtol=1e-8)
    # a pole at the origin (capacitor): a ramp
    np.testing.assert_allclose(talbot_inverse(lambda s: 1 / s**2, t), t, rtol=1e-8)


def _flat_case(n_active: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from microbat.cell.parameters import CellParameters
    from microbat.cell.resolved import ResolvedOptions, ResolvedParameters, simulate_discharge

    h = L_SLAB / n_active
    lab = np.zeros((n_active + round(L_PORE / h), 1, 1), np.uint8)
    lab[:n_active] = 1
    ms = Microstructure(lab, h, "pore=0,active=1")
    rp = ResolvedParameters.from_cell_parameters(CellParameters.from_name("chen2020"))
    rp = dataclasses.replace(rp, solid_diffusivity=lambda th, T: np.full(np.shape(th), D_S))
    t_d = L_SLAB**2 / D_S
    opt = ResolvedOptions(
        reaction_area="faces",
        end_time_s=0.6 * t_d,
        dt_initial_s=1e-4 * t_d,
        dt_max_s=0.02 * t_d,
        li_exchange_current_A_per_m2=LI_I0,
    )
    td = simulate_discharge(ms, rp, c_rate=0.05, options=opt, snapshot_times=[])
    assert td.complete
    # the impedance model of the same electrode, linearised at the same rest state
    p = parameters_from_resolved(rp, particle_radius_m=L_SLAB, diffusion_geometry="slab")
    area = h * h
    # in series, outside the imaged electrode: separator slab and lithium kinetics
    r_sep = rp.separator_thickness / (
        p.electrolyte_conductivity_S_per_m * rp.separator_porosity**rp.separator_bruggeman * area
    )
    r_li = GAS_CONSTANT * p.temperature_K / (FARADAY * LI_I0 * area)
    t = np.array([0.01, 0.03, 0.1, 0.3, 0.55]) * t_d
    i = td.current_A
    v_eis = step_response(ResolvedModel(ms, p), t, i) + i * (r_sep + r_li)
    v_td = td.voltage_V[0] - np.interp(t, td.time_s, td.voltage_V)
    return t / t_d, v_td, v_eis


def test_step_response_matches_resolved_time_domain():
    _, v8, eis = _flat_case(8)
    _, v16, eis16 = _flat_case(16)
    # the same electrode on both grids: the impedance model gives the same response
    np.testing.assert_allclose(eis16, eis, rtol=1e-5)
    e8, e16 = eis / v8 - 1, eis / v16 - 1
    # the time-domain model's solid diffusion is first order in h (the surface
    # concentration is the surface voxel's mean): errors halve with h ...
    assert np.all(np.abs(e8) < 0.05) and np.all(np.abs(e16) < 0.025)
    assert np.all(np.abs(e16) < 0.65 * np.abs(e8))
    # ... and their Richardson extrapolation meets the inverse transform of the spectrum
    v_ext = 2 * v16 - v8
    assert np.max(np.abs(eis / v_ext - 1)) < 0.01
