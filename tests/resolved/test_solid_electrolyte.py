"""Resolved composite cathode with a single-ion solid electrolyte (issue 21).

(a) a planar active | solid-electrolyte bilayer against its closed form, (b) cut
solid-electrolyte networks and carbon-binder between active and electrolyte give a
clear error, (c) a liquid-electrolyte run is bit-for-bit that of the code before the
solid electrolyte was added (values recorded from commit 510de56).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from microbat import Microstructure
from microbat.cell.parameters import CellParameters
from microbat.cell.resolved import ResolvedOptions, ResolvedParameters, simulate_discharge
from microbat.cell.resolved._params import FARADAY, GAS_CONSTANT
from microbat.core.errors import InvalidInputError, PhaseError

H = 1e-6
N_ACTIVE, N_SE = 3, 4  # layers of the bilayer along the thickness axis


def _ms(lab: np.ndarray) -> Microstructure:
    return Microstructure(
        lab, voxel_size=H, phases="void=0,cbd=1,active=2,se=3", allow_empty_phases=True
    )


def _bilayer(lateral: int = 2) -> Microstructure:
    lab = np.full((N_ACTIVE + N_SE, lateral, lateral), 3, np.uint8)
    lab[:N_ACTIVE] = 2
    return Microstructure(
        lab, voxel_size=H, phases="void=0,cbd=1,active=2,se=3", allow_empty_phases=True
    )


def _params(ds: float) -> ResolvedParameters:
    par = ResolvedParameters.from_cell_parameters(CellParameters.from_name("chen2020"))
    # a constant solid diffusivity: the slab's pseudo-steady profile is a parabola
    return dataclasses.replace(par, solid_diffusivity=lambda th, T: np.full(np.shape(th), ds))


def _closed_form(t, current, par, opt, area, ds):
    """V(t) of the bilayer once the solid's transient has decayed (t ≫ L²/D_s).

    OCP at the surface − Butler–Volmer kinetics at the face and at the lithium metal
    − ohmic drops in the active slab and the solid electrolyte. Under a constant flux
    ``j`` into the face at ``x = L`` the profile is ``c̄ + j x²/(2 D L) + const``
    (Crank, The Mathematics of Diffusion, 2nd ed. 1975, ch. 4, the plane sheet); the
    finite volumes hold it exactly at their centres (a parabola's second difference
    is exact), and the reaction sees the centre of the voxel at the face.
    """
    f = FARADAY / (GAS_CONSTANT * par.temperature)
    L = N_ACTIVE * H
    th_mean = par.c_s0 / par.c_max + current * t / (FARADAY * par.c_max * L * area)
    j = current / (FARADAY * area)  # mol/(m² s) into the active slab
    x = (np.arange(N_ACTIVE) + 0.5) * H
    q = j / (2.0 * ds * L) * x**2
    th = th_mean + (q[-1] - q.mean()) / par.c_max
    j0 = par.exchange_current(
        np.full_like(th, par.c_e0), th * par.c_max, par.c_max, par.temperature
    )
    eta = 2.0 / f * np.arcsinh(current / (2.0 * area * j0 * opt.se_exchange_current_scale))
    eta_li = 2.0 / f * np.arcsinh(current / (2.0 * area * opt.li_exchange_current_A_per_m2))
    # the reaction acts between the centres of the voxels on either side of the face;
    # the collector is half a voxel from the first centre, the lithium metal at the
    # separator slab's far end (its stretched last layer's centre)
    sigma_s = opt.solid_conductivity_S_per_m or par.solid_conductivity
    r_solid = (N_ACTIVE - 0.5) * H / (sigma_s * area)
    l_ion = (N_SE - 0.5) * H + opt.separator_thickness_m
    r_ion = l_ion / (opt.se_conductivity_S_per_m * area)
    return par.ocp(th) - eta - eta_li - current * (r_solid + r_ion)


@pytest.mark.parametrize(("sigma", "ds"), [(0.02, 1e-11), (0.2, 1e-12)])
def test_planar_bilayer_matches_closed_form(sigma, ds):
    par = _params(ds)
    opt = ResolvedOptions(
        se_conductivity_S_per_m=sigma,
        solid_conductivity_S_per_m=1.0,
        separator_thickness_m=20e-6,
        reaction_area="faces",
        end_time_s=900.0,
    )
    r = simulate_discharge(_bilayer(), par, c_rate=2.0, options=opt, snapshot_times=[])
    assert r.complete and r.steps > 5
    late = r.time_s > 30 * (N_ACTIVE * H) ** 2 / ds  # solid transient decayed
    assert np.count_nonzero(late) >= 4
    t, V = r.time_s[late], r.voltage_V[late]
    ref = _closed_form(t, r.current_A, par, opt, (2 * H) ** 2, ds)
    assert np.max(np.abs(V - ref)) < 1e-6
    # the terms tested are not negligible: the electrolyte's ohmic drop and the
    # solid-diffusion shift of the surface voltage are far above the tolerance
    ohmic = r.current_A * ((N_SE - 0.5) * H + 20e-6) / (sigma * (2 * H) ** 2)
    uniform = _closed_form(t, r.current_A, par, opt, (2 * H) ** 2, 1e30)
    assert ohmic > 5e-4 and np.min(uniform - ref) > 1e-5
    print(
        f"sigma={sigma} ds={ds}: max|V-ref|={np.max(np.abs(V - ref)):.2e} V, ohmic "
        f"{ohmic * 1e3:.2f} mV, diffusion {np.min(uniform - ref) * 1e3:.3f} mV"
    )
    # single-ion conductor: no salt unknowns move, lithium and charge are conserved
    assert r.max_conservation_error < 1e-8
    assert abs(r.breakdown_V["concentration_electrolyte"][-1]) < 1e-12


def test_cut_solid_electrolyte_network_is_an_error():
    lab = np.full((N_ACTIVE + N_SE, 2, 2), 3, np.uint8)
    lab[:N_ACTIVE] = 2
    lab[-1] = 0  # a void layer cuts the electrolyte from the separator slab
    ms = Microstructure(
        lab, voxel_size=H, phases="void=0,cbd=1,active=2,se=3", allow_empty_phases=True
    )
    with pytest.raises(PhaseError, match="solid-electrolyte network is cut"):
        simulate_discharge(ms, _params(1e-12), options=ResolvedOptions(reaction_area="faces"))


def test_plating_refused_with_a_solid_electrolyte():
    opt = ResolvedOptions(plating="irreversible", reaction_area="faces")
    with pytest.raises(InvalidInputError, match="solid electrolyte"):
        simulate_discharge(_bilayer(), _params(1e-12), options=opt)


def test_carbon_binder_conducts_no_ions():
    """A carbon-binder layer between active and electrolyte leaves no reaction face."""
    lab = np.full((N_ACTIVE + N_SE, 2, 2), 3, np.uint8)
    lab[:N_ACTIVE] = 2
    lab[N_ACTIVE] = 1
    ms = Microstructure(
        lab, voxel_size=H, phases="void=0,cbd=1,active=2,se=3", allow_empty_phases=True
    )
    with pytest.raises(PhaseError, match="no active/solid-electrolyte contact"):
        simulate_discharge(ms, _params(1e-12), options=ResolvedOptions(reaction_area="faces"))


def test_isolated_electrolyte_carries_no_current():
    """An SE pocket cut from the separator adds no reaction: same curve as without it."""
    base = np.full((N_ACTIVE + N_SE, 2, 2), 3, np.uint8)
    base[:N_ACTIVE] = 2
    pocket = base.copy()
    pocket[0, 0, 0] = 3  # SE voxel enclosed by active material at the collector
    opt = ResolvedOptions(separator_thickness_m=20e-6, reaction_area="faces", end_time_s=300.0)
    out = []
    for lab in (base, pocket):
        ms = Microstructure(
            lab, voxel_size=H, phases="void=0,cbd=1,active=2,se=3", allow_empty_phases=True
        )
        out.append(
            simulate_discharge(ms, _params(1e-12), c_rate=2.0, options=opt, snapshot_times=[])
        )
    for r in out:
        assert r.complete and r.max_conservation_error < 1e-8
    # 1C follows the active volume (one voxel less); the pocket's faces react not at all
    assert math.isclose(out[1].current_A / out[0].current_A, (N_ACTIVE * 4 - 1) / (N_ACTIVE * 4))


def test_liquid_run_bit_for_bit_unchanged():
    lab = np.zeros((8, 6, 6), np.uint8)
    lab[:, :3, :3] = 2
    lab[:, 3:, 3:] = 2
    lab[:5, :3, 3:5] = 1
    ms = Microstructure(lab, voxel_size=1e-6, phases="pore=0,cbd=1,active=2")
    opt = ResolvedOptions(end_time_s=300.0)
    r = simulate_discharge(ms, c_rate=2.0, options=opt, snapshot_times=[])
    # recorded with the code of commit 510de56 (before the solid electrolyte), then
    # re-recorded when interface_areas became normal-weighted voxel faces (the
    # measured reaction area of this image, hence the area scale, changed), and again
    # when the estimator's smoothing was capped at a quarter of a short axis (6 voxels
    # here: pore/active 68.6 -> 69.5 µm², 71 faces, all axis-aligned), and again when
    # Newton began to stop at an estimated state error below 1e-6 instead of one
    # update later (last voltage −4.2e-9 V, capacity +2.4e-8 relative)
    assert r.time_s.size == 13
    assert float(r.voltage_V[1]).hex() == "0x1.0cf1477f8d35cp+2"
    assert float(r.voltage_V[-1]).hex() == "0x1.fd050012f7418p+1"
    assert float(r.capacity_Ah).hex() == "0x1.1b4800b01f637p-35"


def test_planar_bilayer_charge_matches_closed_form():
    """``simulate_charge`` runs the same model: delithiation is the closed form at −I."""
    from microbat.cell.resolved import simulate_charge

    ds = 1e-12
    par = _params(ds)
    opt = ResolvedOptions(
        se_conductivity_S_per_m=0.05,
        separator_thickness_m=20e-6,
        reaction_area="faces",
        end_time_s=900.0,
    )
    r = simulate_charge(
        _bilayer(), par, c_rate=2.0, electrode="positive", initial_stoichiometry=0.8,
        options=opt, snapshot_times=[],
    )  # fmt: skip
    par = dataclasses.replace(par, c_s0=0.8 * par.c_max)  # the start of the closed form
    assert r.complete and r.max_conservation_error < 1e-8
    late = r.time_s > 30 * (N_ACTIVE * H) ** 2 / ds
    assert np.count_nonzero(late) >= 4
    current = float(np.abs(r.cell_current_A[late]).max())  # constant current
    assert np.ptp(np.abs(r.cell_current_A[late])) < 1e-12 * current
    ref = _closed_form(r.time_s[late], -current, par, opt, (2 * H) ** 2, ds)
    assert np.max(np.abs(r.voltage_V[late] - ref)) < 1e-6
