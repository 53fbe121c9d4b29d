"""Cell capacity of the aging loop: the full-cell electrode balance (eSOH) and LLI/LAM."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from microbat.core.errors import InvalidInputError
from microbat.degradation._aging_network import sphere_geometry
from microbat.degradation.aging import AgingParameters, age
from microbat.degradation.parameters import GRAPHITE
from microbat.degradation.paris import CrackParameters, critical_length, paris_length

pybamm = pytest.importorskip("pybamm")

FARADAY = 96485.33212
OKANE_OPTIONS = {
    "SEI": "solvent-diffusion limited",
    "SEI on cracks": "true",
    "particle mechanics": ("swelling and cracking", "swelling only"),
    "SEI porosity change": "false",
}


def _ideal_cell():
    """O'Kane 2022's cell with ideal electrodes: a plateau and Nernstian ends.

    ``U(s) = U_0 − k ln(s/(1 − s))``, ``k`` = 20 mV: between the cut-offs each
    electrode is used to within 1e-4 of its ends, so the capacity is
    ``min(Q_n, Q_p, Q_Li, Q_n + Q_p − Q_Li)``. The positive electrode is halved and
    the negative starts 80 % full: ``Q_p < Q_Li < Q_n`` — the discharge ends on the
    positive side with 20 % of the negative electrode's lithium left in it (the slack).
    """
    from microbat.cell.parameters import CellParameters

    pv = pybamm.ParameterValues("OKane2022")
    k = 0.02

    def u_n(sto):
        return 0.1 - k * pybamm.log(sto / (1 - sto))

    def u_p(sto):
        return 3.7 - k * pybamm.log(sto / (1 - sto))

    pv.update({
        "Negative electrode OCP [V]": u_n,
        "Positive electrode OCP [V]": u_p,
        "Positive electrode active material volume fraction":
            0.5 * pv["Positive electrode active material volume fraction"],
        "Initial concentration in negative electrode [mol.m-3]":
            0.8 * pv["Maximum concentration in negative electrode [mol.m-3]"],
        "Initial concentration in positive electrode [mol.m-3]":
            0.2 * pv["Maximum concentration in positive electrode [mol.m-3]"],
        "Lower voltage cut-off [V]": 3.2,
    })  # fmt: skip
    return CellParameters.from_pybamm(pv, name="ideal")


def test_slack_absorbs_the_first_lithium_then_one_to_one() -> None:
    """Closed form: the cell fade is 0 while the negative's slack lasts, then follows LLI 1:1.

    Plating at a constant rate takes 0.4 % of the negative electrode's capacity per
    cycle; the slack (``Q_Li − Q_p``, 20 % of ``Q_n``) is gone at cycle ~50.
    """
    r = 5.86e-6
    geom = sphere_geometry(r)
    rate = 0.004 * GRAPHITE.max_concentration_mol_per_m3 * (r / 3) / 3600.0  # mol/m2/s
    params = AgingParameters(plating_rate_mol_per_m2_s=rate)
    res = age(None, cycles=100, geometry=geom, params=params, mechanisms="plating",
              map_cycles=[], impedance=False, cell=_ideal_cell(), max_block=4)  # fmt: skip
    bal = res.cell_balance
    assert bal is not None and res.cell_capacity_retention is not None
    lost_ah = FARADAY * res.lithium_lost_curve_mol["plating"] / 3600.0
    q_li = bal["Q_Li_Ah"] - lost_ah
    assert bal["Q_p_Ah"] < bal["Q_Li_Ah"] < bal["Q_n_Ah"]  # the set-up's premise
    expected = np.minimum(bal["Q_p_Ah"], q_li) / min(bal["Q_p_Ah"], bal["Q_Li_Ah"])
    np.testing.assert_allclose(res.cell_capacity_retention, expected, rtol=0, atol=5e-4)
    slack = q_li > bal["Q_p_Ah"]
    assert slack.sum() > 5 and (~slack).sum() > 5
    inventory = 1 - res.capacity_retention
    cell = 1 - res.cell_capacity_retention
    # in the slack phase the inventory fades by up to 20 %, the cell by nothing
    assert inventory[slack].max() > 0.15
    assert np.abs(cell[slack]).max() < 1e-4
    # beyond it, each A h of lithium lost is an A h of capacity lost
    c_ah = np.asarray(bal["capacity_Ah_curve"])
    dc, dl = np.diff(c_ah[~slack]), np.diff(lost_ah[~slack])
    np.testing.assert_allclose(dc / dl, -1.0, atol=2e-3)
    assert res.degradation_modes is not None
    np.testing.assert_allclose(res.degradation_modes["LLI"], lost_ah / bal["Q_Li_Ah"], rtol=1e-12)
    assert not np.any(res.degradation_modes["LAM_ne"]) and not np.any(
        res.degradation_modes["LAM_pe"]
    )


def test_isolated_particles_are_lam_and_take_their_lithium() -> None:
    """Two free spheres, the larger fractures and is isolated at cycle 38 (LAM_ne)."""
    r = np.array([5e-6, 2e-6])
    geom = sphere_geometry(r)
    cracks = CrackParameters(paris_k=1e-17, density_per_m2=1e3)
    mat = GRAPHITE
    lo, hi = mat.stoichiometry_window
    vol, area = 4 / 3 * np.pi * r**3, 4 * np.pi * r**2
    flux = vol.sum() / area.sum() * mat.max_concentration_mol_per_m3 * (hi - lo) / 3600.0
    pref = (
        mat.partial_molar_volume_m3_per_mol * mat.young_modulus_Pa / (3 * (1 - mat.poisson_ratio))
    )
    ds = pref * flux * r / mat.diffusivity_m2_per_s * 0.2
    a_c = float(paris_length(2e-8, 37.4, ds[0], cracks))
    kic = 1.12 * ds[0] * math.sqrt(math.pi * a_c)
    assert float(critical_length(ds[1], kic, cracks)) > 5 * a_c
    params = AgingParameters(
        material=mat.replace(fracture_toughness_Pa_sqrt_m=kic), cracks=cracks,
        stress_profile="steady", isolate_fractured=True,
    )  # fmt: skip
    res = age(None, cycles=40, geometry=geom, params=params, mechanisms="cracks", jump=False,
              map_cycles=[], impedance=False, cell="okane2022")  # fmt: skip
    modes, bal = res.degradation_modes, res.cell_balance
    assert modes is not None and bal is not None
    share = vol[0] / vol.sum()
    assert modes["LAM_ne"][37] == 0.0 and modes["LAM_ne"][-1] == pytest.approx(share, rel=1e-12)
    assert not np.any(modes["LAM_pe"])
    # the isolated particle holds the negative's end-of-discharge lithium x_0
    x0 = bal["initial"]["x_0"]
    held = share * bal["Q_n_Ah"] * x0
    assert bal["final"]["isolated_lithium_Ah"] == pytest.approx(held, rel=1e-9)
    assert modes["LLI"][-1] == pytest.approx(held / bal["Q_Li_Ah"], rel=1e-9)
    # the O'Kane cell is negative-limited at equilibrium: losing 87 % of Q_n costs capacity
    assert res.cell_capacity_fade is not None and res.cell_capacity_fade > 0.5
    # the electrode's own (legacy) fade counts the isolated capacity only
    assert 1 - res.capacity_retention[-1] == pytest.approx(share, rel=1e-12)
    assert res.lithium_inventory_fade == 0.0


def test_balance_is_scale_free_and_keys_are_reported(tmp_path) -> None:
    """Retention and modes do not depend on the image's size; JSON keys, files; bad set."""
    kw = {"cycles": 100, "map_cycles": [], "impedance": False, "cell": "okane2022"}
    a = age(None, geometry=sphere_geometry(3e-6), **kw)
    b = age(None, geometry=sphere_geometry(np.array([3e-6, 3e-6])), **kw)  # twice the cell
    assert b.cell_balance["scale"] == pytest.approx(2 * a.cell_balance["scale"], rel=1e-12)
    np.testing.assert_allclose(b.cell_capacity_retention, a.cell_capacity_retention, rtol=1e-9)
    np.testing.assert_allclose(b.degradation_modes["LLI"], a.degradation_modes["LLI"], rtol=1e-9)
    d = json.loads(b.to_json())
    for key in ("capacity_fade", "lithium_inventory_fade", "cell_capacity_fade",
                "cell_capacity_retention", "degradation_modes", "cell_balance"):  # fmt: skip
        assert key in d
    assert d["capacity_fade"] == pytest.approx(d["lithium_inventory_fade"], rel=1e-12)
    assert 0 < d["cell_capacity_fade"] < d["lithium_inventory_fade"]
    assert d["cell_balance"]["initial"]["x_0"] < 0.05  # O'Kane's discharge empties graphite
    header = (tmp_path / "curves.csv").read_text() if b.save(tmp_path) else ""
    assert all(k in header.splitlines()[0] for k in ("cell_capacity_retention", "LLI", "LAM_ne"))
    nobal = age(None, cycles=5, geometry=sphere_geometry(3e-6), map_cycles=[], impedance=False)
    assert nobal.cell_capacity_fade is None and nobal.to_dict()["cell_capacity_fade"] is None
    with pytest.raises(InvalidInputError, match="unknown parameter set"):
        age(None, cycles=5, geometry=sphere_geometry(3e-6), cell="no-such-set")


def test_cli_age_reports_both_fades(tmp_path) -> None:
    from typer.testing import CliRunner

    from microbat.cli import app
    from microbat.io import save_microstructure
    from microbat.synth import electrode

    ms = electrode((20, 20, 20), voxel_size=1e-6, mean_radius=3e-6, seed=2)
    path = tmp_path / "e.h5"
    save_microstructure(ms, path)
    runner = CliRunner()
    r = runner.invoke(app, ["age", str(path), "--cycles", "40", "--json", "--quiet"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert 0 < d["cell_capacity_fade"] < d["lithium_inventory_fade"]
    assert d["cell_balance"]["parameter_set"] == "okane2022"
    assert len(d["cell_capacity_retention"]) == len(d["cycle"])
    assert set(d["degradation_modes"]) == {"LLI", "LAM_ne", "LAM_pe"}
    r = runner.invoke(app, ["age", str(path), "--cycles", "10", "--json", "--cell", "none"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["cell_capacity_fade"] is None
    r = runner.invoke(app, ["age", str(path), "--cell", "nosuchset"])
    assert r.exit_code == 1 and "unknown parameter set" in r.output


# ------------------------------------------------------------------ PyBaMM (slow)
def _spm_capacity(pv, c_rate: str) -> float:
    exp = pybamm.Experiment([(f"Charge at {c_rate} until 4.2 V", "Hold at 4.2 V until C/5000",
                              f"Discharge at {c_rate} until 2.5 V")])  # fmt: skip
    sol = pybamm.Simulation(pybamm.lithium_ion.SPM(), parameter_values=pv, experiment=exp).solve()
    q = sol.cycles[0].steps[2]["Discharge capacity [A.h]"].entries
    return float(q[-1] - q[0])


def _remove_lithium(fraction: float, q_li_ah: float):
    """O'Kane 2022 with ``fraction`` of its cyclable lithium taken from the positive."""
    pv = pybamm.ParameterValues("OKane2022")
    eps = pv["Positive electrode active material volume fraction"]
    vol = (
        pv["Positive electrode thickness [m]"]
        * pv["Electrode width [m]"]
        * pv["Electrode height [m]"]
    )
    key = "Initial concentration in positive electrode [mol.m-3]"
    pv[key] = pv[key] - fraction * q_li_ah * 3600.0 / (FARADAY * eps * vol)
    return pv


@pytest.mark.slow
def test_balance_against_pybamm_slow_discharges() -> None:
    """eSOH capacity fade vs PyBaMM's SPM at C/500 (no side reaction, lithium removed)."""
    from microbat.degradation._aging_balance import cell_balance

    pv = pybamm.ParameterValues("OKane2022")
    q_n = float(pv.evaluate(pybamm.LithiumIonParameters().n.Q_init))
    bal = cell_balance("okane2022", electrode_capacity_Ah=q_n, electrode="negative")
    c0 = _spm_capacity(_remove_lithium(0.0, bal.q_li_Ah), "C/500")
    e0 = bal.solve(bal.q_n_Ah, bal.q_p_Ah, bal.q_li_Ah)["capacity_Ah"]
    assert e0 == pytest.approx(c0, rel=5e-4)
    for lli in (0.005, 0.02):
        c = _spm_capacity(_remove_lithium(lli, bal.q_li_Ah), "C/500")
        e = bal.solve(bal.q_n_Ah, bal.q_p_Ah, bal.q_li_Ah * (1 - lli))["capacity_Ah"]
        assert 1 - e / e0 == pytest.approx(1 - c / c0, rel=0.03)


@pytest.mark.slow
def test_cell_fade_against_pybamm_spm_okane2022() -> None:
    """100 O'Kane cycles: microbat's cell fade vs PyBaMM's equilibrium fade of its own LLI.

    PyBaMM's SPM 1C discharge capacity fades by much less (0.12 %): its particles lose
    only the original surface's SEI lithium — the SEI on cracks is not taken from
    them in the SPM (PyBaMM issue #5263; docs/validation/aging.md, section 5).
    """
    n = 100
    pv = pybamm.ParameterValues("OKane2022")
    step = ("Discharge at 1C until 2.5 V", "Charge at 1C until 4.2 V", "Hold at 4.2 V until C/50")
    sol = pybamm.Simulation(pybamm.lithium_ion.SPM(OKANE_OPTIONS), parameter_values=pv,
                            experiment=pybamm.Experiment([step] * n)).solve()  # fmt: skip
    dur = [c["Time [s]"].entries[-1] - c["Time [s]"].entries[0] for c in sol.cycles]

    def lost(c) -> float:
        sei = c["Loss of lithium to negative SEI [mol]"].entries[-1]
        return float(sei + c["Loss of lithium to negative SEI on cracks [mol]"].entries[-1])

    p = pybamm.LithiumIonParameters()
    q_n, q_p = float(pv.evaluate(p.n.Q_init)), float(pv.evaluate(p.p.Q_init))
    q_li = float(pv.evaluate(p.Q_Li_particles_init))
    solver = pybamm.lithium_ion.ElectrodeSOHSolver(pv, param=p)

    def cap(q):
        return float(solver.solve({"V_min": 2.5, "V_max": 4.2, "Q_n": q_n, "Q_p": q_p,
                                   "Q_Li": q})["Q"])  # fmt: skip

    li = FARADAY * lost(sol.cycles[-1]) / 3600.0  # from the fresh cell, as microbat's
    fade_pybamm_eq = 1 - cap(q_li - li) / cap(q_li)
    r = float(pv["Negative particle radius [m]"])
    mat = GRAPHITE.replace(
        young_modulus_Pa=pv["Negative electrode Young's modulus [Pa]"],
        poisson_ratio=pv["Negative electrode Poisson's ratio"],
        partial_molar_volume_m3_per_mol=pv["Negative electrode partial molar volume [m3.mol-1]"],
    )
    params = AgingParameters(material=mat, cycle_time_s=float(np.mean(dur)),
                             sei={"crack_initial_thickness_m": 5e-13 / 1.908})  # fmt: skip
    res = age(None, cycles=n, geometry=sphere_geometry(r), params=params, map_cycles=[],
              impedance=False, cell="okane2022")  # fmt: skip
    assert res.cell_capacity_fade == pytest.approx(fade_pybamm_eq, rel=0.1)


@pytest.mark.slow
def test_cell_fade_against_pybamm_dfn_okane2022() -> None:
    """50 O'Kane cycles: microbat's cell fade vs the DFN's 1C discharge capacity fade.

    The DFN takes all side-reaction lithium from its particles. Its first discharge
    starts from the set's initial state (not a CC-CV charge), so its fade is taken
    from cycle 2 and microbat's from cycle 1. About a minute and 3.7 GB.
    """
    n = 50
    pv = pybamm.ParameterValues("OKane2022")
    step = ("Discharge at 1C until 2.5 V", "Charge at 1C until 4.2 V", "Hold at 4.2 V until C/50")
    sol = pybamm.Simulation(pybamm.lithium_ion.DFN(OKANE_OPTIONS), parameter_values=pv,
                            experiment=pybamm.Experiment([step] * n)).solve()  # fmt: skip
    caps = []
    for c in sol.cycles:
        q = c.steps[0]["Discharge capacity [A.h]"].entries
        caps.append(float(q[-1] - q[0]))
    fade_dfn = 1 - caps[-1] / caps[1]
    dur = [c["Time [s]"].entries[-1] - c["Time [s]"].entries[0] for c in sol.cycles]
    mat = GRAPHITE.replace(
        young_modulus_Pa=pv["Negative electrode Young's modulus [Pa]"],
        poisson_ratio=pv["Negative electrode Poisson's ratio"],
        partial_molar_volume_m3_per_mol=pv["Negative electrode partial molar volume [m3.mol-1]"],
    )
    params = AgingParameters(material=mat, cycle_time_s=float(np.mean(dur)),
                             sei={"crack_initial_thickness_m": 5e-13 / 1.908})  # fmt: skip
    res = age(None, cycles=n, geometry=sphere_geometry(float(pv["Negative particle radius [m]"])),
              params=params, map_cycles=[], impedance=False, cell="okane2022")  # fmt: skip
    ret = res.cell_capacity_retention
    assert ret is not None
    fade = 1 - ret[-1] / ret[res.cycle == 1][0]
    assert fade == pytest.approx(fade_dfn, rel=0.1)


def test_twin_aging_section_shows_both_fades(tmp_path) -> None:
    from microbat.pipeline.twin import run_twin
    from microbat.synth import electrode

    off = ("transport", "cell", "eis", "gas", "heat", "representative", "mechanics", "plating")
    overrides = {f"{k}.enabled": False for k in off}
    overrides.update({"metrics.sizes": False, "aging.cycles": 30, "cell.parameter_set": "chen2020"})
    ms = electrode((20, 20, 20), voxel_size=1e-6, mean_radius=3e-6, seed=2)
    res = run_twin(ms, out_dir=tmp_path, overrides=overrides)
    assert res.stage("aging").status == "complete"
    results = json.loads((tmp_path / "results.json").read_text())
    s = results["stages"]["aging"]["result"]
    assert s["cell_balance"]["parameter_set"] == "chen2020"
    assert 0 < s["cell_capacity_fade"] < s["lithium_inventory_fade"]
    assert set(s["degradation_modes"]) == {"LLI", "LAM_ne", "LAM_pe"}
    html = (tmp_path / "report.html").read_text()
    assert "Cell capacity." in html and "LAM<sub>ne</sub>" in html
    assert any("cell capacity fade" in f for f in results["diagnosis"]["findings"])
