"""The single-ion P2D of a solid-state composite cathode (``cell.solid_state_parameters``).

Validation record: ``docs/validation/ssb.md#single-ion-p2d-of-the-composite-cathode``.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from microbat.cell import (
    CellParameters,
    MicroProperties,
    rate_capability,
    single_ion_half_cell,
    solid_state_parameters,
)
from microbat.core.constants import FARADAY
from microbat.core.errors import InvalidInputError, NotPercolatingError
from microbat.core.microstructure import Microstructure

R_GAS = 8.314462618


@pytest.fixture(scope="module")
def chen():
    return CellParameters.from_name("chen2020")


@pytest.fixture(scope="module")
def composite():
    from microbat.synth import composite_cathode

    return composite_cathode(
        (16, 16, 16), voxel_size=0.5e-6, active_fraction=0.45, electrolyte_fraction=0.4,
        active_radius=1.5e-6, electrolyte_radius=0.8e-6, seed=4,
    )  # fmt: skip


def _micro(**kw):
    base = {
        "porosity": 0.4,
        "tau_electrolyte": 2.0,
        "active_fraction": 0.5,
        "particle_radius_m": 3e-6,
        "thickness_m": 2e-5,
        "ion_conductor": "solid_electrolyte",
    }
    return MicroProperties(**{**base, **kw})


# ------------------------------------------------------------------ parameters
def test_parameters_from_a_composite(chen, composite):
    from microbat.ssb import contact_area
    from microbat.transport.diffusion import tortuosity

    m = MicroProperties.from_microstructure(composite, thickness="image")
    assert m.ion_conductor == "solid_electrolyte"
    assert m.porosity == pytest.approx(composite.fraction("se"))
    assert m.active_fraction == pytest.approx(composite.fraction("active"))
    tau = tortuosity(composite, phase="se", axis=0, keep_field=False).tau
    tau = float(tau[0] if np.ndim(tau) else tau)
    assert m.tau_electrolyte == pytest.approx(tau)
    ca = contact_area(composite, ("active", "se"))
    assert m.specific_surface_area_per_m == pytest.approx(ca.active_specific_area_per_m)
    assert "microbat.ssb.contact_area (active)" in m.source["functions"]

    s = solid_state_parameters(chen, m)
    el = s.positive
    assert el.porosity == pytest.approx(m.porosity)
    assert el.transport_efficiency == pytest.approx(m.porosity / m.tau_electrolyte, rel=1e-12)
    assert el.surface_area_per_m == pytest.approx(m.specific_surface_area_per_m, rel=1e-12)
    assert el.thickness_m == pytest.approx(composite.thickness)
    assert s.electrolyte.transference_number == 1.0
    assert s.electrolyte.conductivity_S_per_m == 0.2  # simulate --se-conductivity's default
    assert (s.separator.porosity, s.separator.bruggeman_electrolyte) == (1.0, 0.0)
    assert s.half_cell and s.counter.exchange_current_A_per_m2 == 10.0
    pv = s.to_pybamm()
    assert pv["Cation transference number"] == 1.0
    assert pv["Electrolyte conductivity [S.m-1]"] == 0.2
    assert pv["Exchange-current density for lithium metal electrode [A.m-2]"] == 10.0
    # 1C: the OCP-limited capacity from the upper cut-off to the half cell's cut-off
    from microbat.cell.resolved._params import ResolvedParameters

    ocp = ResolvedParameters.from_cell_parameters(s, "positive").ocp
    assert s.cell.lower_cutoff_V == pytest.approx(float(ocp(np.array([0.99]))[0]))
    th = np.linspace(1e-3, 1, 4000)
    u = ocp(th)
    dth = th[np.argmax(u <= s.cell.lower_cutoff_V)] - th[np.argmax(u <= s.cell.upper_cutoff_V)]
    q = FARADAY * el.max_concentration_mol_per_m3 * el.active_fraction * el.thickness_m
    q *= s.cell.electrode_area_m2 * dth / 3600.0
    assert s.cell.nominal_capacity_Ah == pytest.approx(q, rel=1e-12)
    # the Bruggeman variant: the set's exponent on the SE fraction
    b = solid_state_parameters(chen, m, transport="bruggeman").positive
    assert b.bruggeman_electrolyte == chen.positive.bruggeman_electrolyte


def test_liquid_records_unchanged_and_bad_input(chen):
    liquid = MicroProperties(porosity=0.35, tau_electrolyte=3.0)
    assert "ion_conductor" not in liquid.to_dict()
    assert not chen.half_cell and chen.electrolyte.conductivity_S_per_m is None
    with pytest.raises(InvalidInputError, match="ion_conductor='solid_electrolyte'"):
        MicroProperties(porosity=0.35, tau_electrolyte=3.0, se_conductivity_S_per_m=0.1)
    with pytest.raises(InvalidInputError, match="positive electrode of a half"):
        _micro(electrode="negative")
    with pytest.raises(InvalidInputError, match="SE conductivity"):
        _micro(se_conductivity_S_per_m=-1.0)
    with pytest.raises(NotPercolatingError, match="solid-electrolyte network does not"):
        _micro(tau_electrolyte=math.inf)
    with pytest.raises(InvalidInputError, match="not below its upper cut-off"):
        single_ion_half_cell(chen, cutoff_V=4.3)
    with pytest.raises(InvalidInputError, match="lithium exchange-current"):
        single_ion_half_cell(chen, li_exchange_current_A_per_m2=0.0)


# ------------------------------------------------------------------ closed forms
def _uniform_case(chen, mesh: int):
    """20 µm composite, ε_SE = 0.4, τ = 2, σ_SE = 0.2 S/m; slow kinetics: uniform reaction."""
    s = solid_state_parameters(chen, _micro(se_conductivity_S_per_m=0.2))
    return s.with_values(
        {
            "positive.exchange_current_scale": 0.1,
            "positive.conductivity_S_per_m": 1e4,
            "positive.bruggeman_electrode": 0.0,
        }
    ), {"x_s": mesh, "x_p": mesh}


def _closed_form(p, i: float, theta0: float) -> tuple[float, float]:
    """x-averaged SE ohmic loss and the drop across the electrode, linear kinetics."""
    from microbat.cell.resolved._params import ResolvedParameters

    el = p.positive
    sig, L, Ls = p.electrolyte.conductivity_S_per_m, el.thickness_m, p.separator.thickness_m
    sig_eff = sig * el.transport_efficiency
    rp = ResolvedParameters.from_cell_parameters(p, "positive")
    T = p.cell.ambient_temperature_K
    ai0 = (
        3
        * el.active_fraction
        / el.particle_radius_m
        * float(
            rp.exchange_current(np.array([1000.0]), np.array([theta0 * rp.c_max]), rp.c_max, T)[0]
        )
    )  # the scale is inside the exchange current
    nu = math.sqrt(L * L * FARADAY * ai0 / (sig_eff * R_GAS * T))  # Newman & Tobias 1962
    mean = i * (Ls / sig + L / sig_eff * (1 / (nu * math.tanh(nu)) - 1 / nu**2))
    across = i * L / sig_eff * (math.cosh(nu) - 1) / (nu * math.sinh(nu))
    return mean, across


def test_ohmic_drop_matches_the_closed_form(chen):
    """C/10, uniform reaction: −ΔΦ_e,avg = i (L_s/σ + L/(3σ_eff)) (ν → 0 limit)."""
    errs = []
    for mesh in (20, 40, 80):
        p, mp = _uniform_case(chen, mesh)
        r = rate_capability(
            p, c_rates=(0.1,), mesh_points=mp, solver_options={"rtol": 1e-9, "atol": 1e-10}
        )
        bd = r.breakdown.rates[0]
        assert np.max(np.abs(bd.losses_V["concentration_electrolyte"])) == 0.0  # t+ = 1
        assert bd.electrolyte_min_fraction.min() > 1 - 1e-6  # no salt gradient
        i = r.current_A[0] / p.cell.electrode_area_m2
        mean, _ = _closed_form(p, i, r.initial_state["positive_stoichiometry"])
        assert mean == pytest.approx(i * (p.separator.thickness_m / 0.2 + 2e-5 / 0.12), rel=5e-3)
        errs.append(float(np.interp(30.0, bd.time_s, bd.losses_V["ohmic_electrolyte"])) / mean - 1)
    # PyBaMM's node-to-face interpolation smears the 1 → ε/τ jump of the transport
    # efficiency at the separator | electrode face over one cell: first order in the mesh
    assert errs[0] < errs[1] < errs[2] < 0
    assert 2 * errs[2] - errs[1] == pytest.approx(0.0, abs=5e-3)  # Richardson, within 0.5 %
    assert abs(errs[2]) < 0.015


def test_drop_across_the_electrode_is_iL_over_2sigma(chen):
    """The SE potential across the composite: i L / (2 σ_eff) for a uniform reaction."""
    from microbat.cell._pybamm import import_pybamm

    pybamm = import_pybamm()
    p, mp = _uniform_case(chen, 20)
    model = pybamm.lithium_ion.DFN({"working electrode": "positive"})
    i_app = 0.1 * p.cell.nominal_capacity_Ah
    pv = p.to_pybamm()
    pv["Current function [A]"] = i_app
    sim = pybamm.Simulation(
        model, parameter_values=pv, var_pts={**model.default_var_pts, **mp},
        solver=pybamm.IDAKLUSolver(),
    )  # fmt: skip
    sol = sim.solve([0, 30.0], initial_soc=1.0)
    x = sol["x_p [m]"].entries[:, -1]
    phi = sol["Positive electrolyte potential [V]"].entries[:, -1]
    L = p.positive.thickness_m
    h = L / x.size  # cell centres of a uniform mesh; the faces are half a cell outside
    assert x.max() - x.min() == pytest.approx(L - h)
    coef = np.polyfit(x, phi, 2)  # quadratic for a uniform reaction
    drop = np.polyval(coef, x.min() - h / 2) - np.polyval(coef, x.max() + h / 2)
    i = i_app / p.cell.electrode_area_m2
    c0 = sim.parameter_values["Initial concentration in positive electrode [mol.m-3]"]
    theta0 = float(c0) / p.positive.max_concentration_mol_per_m3
    _, across = _closed_form(p, i, theta0)
    assert across == pytest.approx(i * L / (2 * 0.2 * 0.2), rel=6e-3)
    print(f"drop {drop:.6e} V, closed form {across:.6e} V ({100 * (drop / across - 1):+.3f} %)")
    assert drop == pytest.approx(across, rel=5e-3)
    ce = sol["Electrolyte concentration [mol.m-3]"].entries
    assert np.ptp(ce) < 1e-6 * 1000.0


# ------------------------------------------------------------------ resolved model
def _lattice(period: int = 4, radius: float = 1.75, voxel: float = 0.5e-6, n: int = 24):
    from microbat.cell.resolved.compare import sphere_lattice

    lat = sphere_lattice((n, 2 * period, 2 * period), period=period, radius=radius,
                         voxel_size=voxel)  # fmt: skip
    return Microstructure(
        lat.labels, voxel_size=lat.voxel_size, phases="se:solid_electrolyte=0,active:active=1"
    )


def compare_resolved(ms, chen, *, c_rate, se_conductivity, radius_m, transport="micro"):
    """Resolved composite discharge vs the single-ion P2D on the same measured inputs."""
    from microbat.cell.resolved import ResolvedOptions, simulate_discharge
    from microbat.cell.resolved.compare import curve_difference, p2d_half_cell
    from microbat.transport.conduction import conductivity

    opt = ResolvedOptions(
        dv_target_V=0.01, max_step_fraction=1 / 30, cutoff_V=3.5,
        se_conductivity_S_per_m=se_conductivity,
    )  # fmt: skip
    r = simulate_discharge(ms, chen, c_rate=c_rate, options=opt, snapshot_times=())
    m = MicroProperties.from_microstructure(ms, thickness="image", solid_tortuosity=False)
    volume = ms.voxel_volume * ms.n_voxels
    a_res = r.grid["reaction_area_m2"] / volume
    m = MicroProperties(
        **{
            **m.model_dump(),
            "particle_radius_m": radius_m,
            "se_conductivity_S_per_m": se_conductivity,
        }
    )
    sig_s = conductivity(
        ms, conductivities={"active": chen.positive.conductivity_S_per_m}, axis=0, keep_field=False
    ).sigma_eff[0]
    p = solid_state_parameters(chen, m, transport=transport).with_values(
        {"positive.conductivity_S_per_m": float(sig_s), "positive.bruggeman_electrode": 0.0}
    )
    cv = p2d_half_cell(
        p, area_m2=volume / ms.thickness, currents_A=[r.current_A], cutoff_V=3.5,
        li_exchange_current_A_per_m2=opt.li_exchange_current_A_per_m2,
    )[0]  # fmt: skip
    rms, vmax, vmean = curve_difference(
        r.time_s, r.voltage_V, cv.time_s, cv.voltage_V, float(r.time_s[1])
    )
    return {
        "dq": (float(cv.capacity_Ah[-1]) - r.capacity_Ah) / r.capacity_Ah,
        "rms": rms,
        "max": vmax,
        "mean": vmean,
        "area_ratio": m.specific_surface_area_per_m / a_res,
        "ohmic_resolved": r.final_breakdown_V["ohmic_electrolyte"],
        "complete": (r.complete, cv.complete),
    }


def test_resolved_composite_1c_low_conductivity(chen):
    """Sphere lattice in SE, σ_SE = 0.01 S/m (SE ohmic loss 19 mV at the end), 1C."""
    from microbat.cell.resolved.compare import lattice_equivalent_radius

    out = compare_resolved(
        _lattice(), chen, c_rate=1.0, se_conductivity=0.01, radius_m=lattice_equivalent_radius()
    )
    assert out["complete"] == (True, True)
    assert out["area_ratio"] == pytest.approx(1.0, abs=1e-3)  # contact_area = resolved area
    assert out["ohmic_resolved"] > 0.015
    assert abs(out["dq"]) < 0.005 and out["rms"] < 0.004


@pytest.mark.slow
@pytest.mark.parametrize(("c_rate", "sigma"), [(1.0, 0.2), (3.0, 0.2), (3.0, 0.01)])
def test_resolved_composite_rates(chen, c_rate, sigma):
    from microbat.cell.resolved.compare import lattice_equivalent_radius

    out = compare_resolved(
        _lattice(), chen, c_rate=c_rate, se_conductivity=sigma, radius_m=lattice_equivalent_radius()
    )
    assert out["complete"] == (True, True)
    tol_q, tol_v = (0.005, 0.004) if c_rate <= 1 else (0.015, 0.010)
    assert abs(out["dq"]) < tol_q and out["rms"] < tol_v


@pytest.mark.slow
def test_resolved_composite_finer_voxels_halve_the_residual(chen):
    """The residual is the voxel particle's solid diffusion: it shrinks with the voxel."""
    from microbat.cell.resolved.compare import lattice_equivalent_radius

    coarse = compare_resolved(
        _lattice(), chen, c_rate=3.0, se_conductivity=0.01, radius_m=lattice_equivalent_radius()
    )
    fine = compare_resolved(
        _lattice(8, 3.9, 0.25e-6, 48), chen, c_rate=3.0, se_conductivity=0.01,
        radius_m=lattice_equivalent_radius(8, 3.9, 0.25e-6),
    )  # fmt: skip
    assert fine["rms"] < 0.7 * coarse["rms"] and abs(fine["dq"]) < 0.7 * abs(coarse["dq"])


# ------------------------------------------------------------------ the twin
def test_twin_cell_stage_on_a_composite(composite, tmp_path):
    import microbat.pipeline.stages as stages_pkg
    from microbat.io import save_microstructure
    from microbat.pipeline.twin import run_twin

    keep = {"input", "denoise", "segment", "metrics", "transport", "cell", "report"}
    ov: dict[str, object] = {
        "metrics.sizes": True,
        "cell.c_rates": [0.1, 1.0, 3.0],
        "ssb.conductivity": 0.2,  # Li6PS5Cl-class; the ssb stage itself is off
    }
    for stage in stages_pkg.STAGES:
        if stage.name not in keep:
            for section, cls in stage.settings:
                if "enabled" in cls.model_fields:
                    ov[f"{section}.enabled"] = False
    save_microstructure(composite, tmp_path / "c.h5")
    res = run_twin(tmp_path / "c.h5", out_dir=tmp_path / "twin", overrides=ov)
    st = res.stage("cell")
    assert st.status == "complete", st.reason
    root = tmp_path / "twin" / "stages"
    cell = json.loads((root / "cell" / "result.json").read_text())
    tra = json.loads((root / "transport" / "result.json").read_text())
    ss = cell["solid_state"]
    assert cell["micro"]["ion_conductor"] == "solid_electrolyte"
    assert cell["micro"]["tau_electrolyte"] == pytest.approx(tra["tau_thickness"])
    # one electrolyte for the run: the cell stage takes ssb.conductivity unless set
    assert ss["se_conductivity_S_per_m"] == 0.2 and ss["cutoff_V"] > 3.4
    assert cell["transports"] == ["micro", "bruggeman"]
    for tr in cell["transports"]:
        rc = cell[f"rate_{tr}"]
        assert all(rc["complete"])
        f = rc["fraction"]
        assert f[0] == 1.0 and 1.0 > f[1] > f[2] > 0.2
        # C/10 delivers nearly the OCP-limited capacity (1C of the half cell)
        assert 0.9 < rc["capacity_Ah"][0] / ss["one_c_A"] < 1.0
        assert max(b["max_residual_V"] for b in rc["breakdown"]) < 1e-3
        assert not any("negative electrode" in w for w in rc["bottleneck"])
    html = res.report.read_text()
    assert "solid-state single-ion P2D" in html
