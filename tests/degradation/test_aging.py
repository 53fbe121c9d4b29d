"""Cycle aging: Paris law, SEI in the loop, cycle-jumping, the feedback loop, bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from microbat.core.errors import InvalidInputError
from microbat.degradation._aging_network import aging_geometry, sphere_geometry
from microbat.degradation.aging import AgingParameters, age, parse_mechanisms
from microbat.degradation.parameters import GRAPHITE
from microbat.degradation.paris import (
    CrackParameters,
    crack_area,
    critical_length,
    cycles_to_length,
    paris_constant_dk,
    paris_length,
)
from microbat.degradation.particles import label_particles
from microbat.degradation.sei import rate_constants
from microbat.degradation.sphere import free_sphere_stress


@pytest.fixture(scope="module")
def electrode():
    from microbat.synth import electrode as make

    ms = make((32, 32, 32), voxel_size=0.5e-6, mean_radius=2.5e-6, seed=3)
    return ms, aging_geometry(ms, label_particles(ms))


# ------------------------------------------------------------------ Paris law
def test_paris_constant_dk_against_cycle_sum() -> None:
    p = CrackParameters()
    dk = 5e4
    a = 2e-8
    for _ in range(1000):
        a += p.paris_k * dk**p.paris_m
    assert float(paris_constant_dk(2e-8, 1000, dk, p)) == pytest.approx(a, rel=1e-10)


@pytest.mark.parametrize("m", [2.0, 2.2, 4.0])
def test_paris_closed_form_against_ode(m: float) -> None:
    p = CrackParameters(paris_m=m, paris_k={2.0: 1e-19, 2.2: 3.9e-20, 4.0: 2e-27}[m])
    ds = 2e7

    def rhs(_n: float, y: np.ndarray) -> np.ndarray:
        return np.array([p.paris_k * (p.geometry_factor * ds * math.sqrt(math.pi * y[0])) ** m])

    n_end = 5000.0
    ode = solve_ivp(rhs, (0, n_end), [2e-8], rtol=1e-11, atol=1e-20).y[0, -1]
    closed = float(paris_length(2e-8, n_end, ds, p))
    assert closed == pytest.approx(ode, rel=1e-6)
    assert closed > 2e-8
    assert float(cycles_to_length(2e-8, closed, ds, p)) == pytest.approx(n_end, rel=1e-8)


def test_paris_runaway_and_fracture_length() -> None:
    p = CrackParameters(paris_m=4.0, paris_k=1e-25)
    n_inf = (2e-8) ** (1 - 2) / ((2 - 1) * p.paris_k * (1.12 * 1e8 * math.sqrt(math.pi)) ** 4)
    assert math.isinf(float(paris_length(2e-8, 1.01 * n_inf, 1e8, p)))
    ac = float(critical_length(1e8, 1e6, p))
    assert 1.12 * 1e8 * math.sqrt(math.pi * ac) == pytest.approx(1e6, rel=1e-12)
    assert math.isinf(float(critical_length(0.0, 1e6, p)))
    assert float(crack_area(2e-8, 1.0, CrackParameters())) == pytest.approx(1.908, rel=1e-12)


def test_sphere_crack_growth_in_the_loop_matches_closed_form() -> None:
    """One free sphere: the loop's crack against Paris integrated with the series stress."""
    r = 5.86e-6
    geom = sphere_geometry(r)
    params = AgingParameters()
    res = age(None, cycles=400, geometry=geom, params=params, mechanisms="cracks", jump=False,
              map_cycles=[])  # fmt: skip
    mat = GRAPHITE
    lo, hi = mat.stoichiometry_window
    flux = -r / 3 * mat.max_concentration_mol_per_m3 * (hi - lo) / 3600.0  # delithiation at 1C
    tau = mat.diffusivity_m2_per_s * 3600.0 / r**2
    _, hoop = free_sphere_stress(
        1.0, tau, flux=flux, radius=r, diffusivity=mat.diffusivity_m2_per_s,
        young_modulus=mat.young_modulus_Pa, poisson_ratio=mat.poisson_ratio,
        partial_molar_volume=mat.partial_molar_volume_m3_per_mol,
    )  # fmt: skip
    ds = float(hoop)
    assert ds > 0
    expected = float(paris_length(2e-8, 400, ds, CrackParameters()))
    got = float(res.mean_crack_length_m[-1])
    assert (got - 2e-8) == pytest.approx(expected - 2e-8, rel=1e-2)
    assert res.lithium_lost_mol["total"] == 0.0  # no SEI mechanism


# ------------------------------------------------------------------ SEI in the loop
def test_sei_alone_fixed_area_sqrt_t_and_lithium(electrode) -> None:
    ms, geom = electrode
    p = AgingParameters()
    res = age(ms, cycles=300, geometry=geom, params=p, mechanisms="sei", map_cycles=[300])
    kd, _ = rate_constants(p.sei)
    t = res.cycle * 7200.0
    closed = np.sqrt(5e-9**2 + 2 * kd * t)
    assert np.allclose(res.mean_sei_thickness_m, closed, rtol=1e-2)
    # lithium lost = SEI volume x molar density, exactly (z = 1)
    d = res.maps["sei_thickness_m"][-1]
    vol = float(np.sum(geom.area_m2 * (d - 5e-9)))
    assert res.lithium_lost_mol["sei_original"] == pytest.approx(vol / 9.585e-5, rel=1e-12)
    assert res.lithium_lost_mol["sei_cracks"] == 0.0
    assert res.lithium_lost_mol["plating"] is None
    q_lost = 96485.33212 * res.lithium_lost_mol["total"] / 3600.0
    assert 1 - res.capacity_retention[-1] == pytest.approx(q_lost / res.capacity_Ah, rel=1e-12)


# ------------------------------------------------------------------ cycle-jumping
def test_cycle_jumping_matches_cycle_by_cycle(electrode) -> None:
    ms, geom = electrode
    p = AgingParameters(sei={"law": "reaction"})  # the current-dependent law: drivers move
    jumped = age(ms, cycles=200, geometry=geom, params=p)
    single = age(ms, cycles=200, geometry=geom, params=p, jump=False)
    assert single.solver["blocks"] == 200
    assert jumped.solver["blocks"] < 200 / 3
    fade_j = 1 - jumped.capacity_retention[-1]
    fade_s = 1 - single.capacity_retention[-1]
    assert fade_s > 0
    assert abs(jumped.capacity_retention[-1] - single.capacity_retention[-1]) < 2e-3
    assert fade_j == pytest.approx(fade_s, rel=2e-3)


# ------------------------------------------------------------------ the loop is a loop
def test_cracks_feed_sei(electrode) -> None:
    ms, geom = electrode
    both = age(ms, cycles=100, geometry=geom, mechanisms="sei,cracks")
    sei = age(ms, cycles=100, geometry=geom, mechanisms="sei")
    assert sei.lithium_lost_mol["total"] < both.lithium_lost_mol["total"]
    assert both.lithium_lost_mol["sei_cracks"] > 0


def test_sei_resistance_feeds_cracks(electrode) -> None:
    """Kinetics-limited electrode: films push current onto fresh crack faces."""
    ms, geom = electrode
    p = AgingParameters(sei={"resistivity_ohm_m": 2e7})
    on = age(ms, cycles=100, geometry=geom, params=p, jump=False)
    off = age(ms, cycles=100, geometry=geom, params=p.replace(film_resistance=False), jump=False)
    grow_on = on.mean_crack_length_m[-1] - on.mean_crack_length_m[0]
    grow_off = off.mean_crack_length_m[-1] - off.mean_crack_length_m[0]
    assert grow_off < grow_on
    assert on.resistance_growth[-1] > 1.0 > off.resistance_growth[-1]  # films vs new area
    frozen = age(ms, cycles=100, geometry=geom, params=p.replace(redistribute=False), jump=False)
    assert frozen.mean_crack_length_m[-1] < on.mean_crack_length_m[-1]


# ------------------------------------------------------------------ outputs
def test_result_json_maps_and_save(electrode, tmp_path) -> None:
    ms, geom = electrode
    res = age(ms, cycles=60, geometry=geom, map_cycles=[0, 30, 60])
    d = json.loads(res.to_json())
    for key in ("cycles", "capacity_retention", "resistance_growth", "lithium_lost_mol",
                "heterogeneity_cov"):  # fmt: skip
        assert key in d
    assert d["cycles"] == 60
    assert set(d["lithium_lost_mol"]) == {"sei_original", "sei_cracks", "plating", "total"}
    assert len(d["capacity_retention"]) == len(d["cycle"])
    assert list(res.map_cycles) == [0, 30, 60]
    assert res.maps["crack_length_m"].shape == (3, geom.n)
    cov = res.heterogeneity_cov[1:]
    assert np.all(np.isfinite(cov)) and np.all(cov > 0)
    assert res.depth_profile.shape == (3, geom.n_layers)
    files = res.save(tmp_path / "out")
    for f in files.values():
        assert f.is_file()
    assert not list((tmp_path / "out").glob(".*tmp*"))
    header = (tmp_path / "out" / "curves.csv").read_text().splitlines()[0]
    assert header.startswith("cycle,capacity_retention,resistance_growth")


def test_checkpoint_resume_continues_exactly(electrode, tmp_path) -> None:
    ms, geom = electrode
    ck = tmp_path / "aging.npz"
    straight = age(ms, cycles=50, geometry=geom, jump=False, map_cycles=[50])

    def stop(cycle: int, _total: int) -> None:
        if cycle == 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        age(ms, cycles=50, geometry=geom, jump=False, map_cycles=[50], checkpoint=ck,
            progress=stop)  # fmt: skip
    assert ck.is_file()
    resumed = age(ms, cycles=50, geometry=geom, jump=False, map_cycles=[50], checkpoint=ck,
                  resume=True)  # fmt: skip
    assert list(resumed.cycle) == list(straight.cycle)
    np.testing.assert_allclose(resumed.capacity_retention, straight.capacity_retention, rtol=1e-13)
    np.testing.assert_allclose(resumed.maps["sei_thickness_m"], straight.maps["sei_thickness_m"])
    with pytest.raises(InvalidInputError, match="another aging problem"):
        age(ms, cycles=50, geometry=geom, c_rate=2.0, jump=False, checkpoint=ck, resume=True)


# ------------------------------------------------------------------ bad input
def test_bad_input_one_line_errors(electrode) -> None:
    ms, geom = electrode
    for bad in (0, -5, 2.5):
        with pytest.raises(InvalidInputError, match="cycles"):
            age(ms, cycles=bad, geometry=geom)
    with pytest.raises(InvalidInputError, match="unknown degradation mechanism 'cracking'"):
        age(ms, cycles=10, geometry=geom, mechanisms="sei,cracking")
    with pytest.raises(InvalidInputError, match="negative-electrode material"):
        age(ms, cycles=10, geometry=geom, mechanisms="sei,plating",
            params=AgingParameters(material="nmc811"))  # fmt: skip
    with pytest.raises(InvalidInputError, match="needs the image"):
        age(None, cycles=10, geometry=geom, mechanisms="sei,plating")
    no_kic = AgingParameters(material=GRAPHITE.replace(fracture_toughness_Pa_sqrt_m=None))
    with pytest.raises(InvalidInputError, match="fracture_toughness_Pa_sqrt_m"):
        age(ms, cycles=10, geometry=geom, params=no_kic)
    age(ms, cycles=2, geometry=geom, params=no_kic, mechanisms="sei")  # not needed for SEI
    with pytest.raises(InvalidInputError, match="c_rate"):
        age(ms, cycles=10, geometry=geom, c_rate=0)
    with pytest.raises(InvalidInputError, match="unknown aging parameter"):
        AgingParameters.from_mapping({"sei_law": "mixed"})
    assert parse_mechanisms(" cracks , SEI ") == ("sei", "cracks")


def test_plating_hook(electrode) -> None:
    ms, geom = electrode
    p = AgingParameters(plating_rate_mol_per_m2_s=1e-12)
    res = age(ms, cycles=20, geometry=geom, params=p, mechanisms="sei,plating")
    area = float(geom.area_m2.sum())
    assert res.lithium_lost_mol["plating"] == pytest.approx(1e-12 * area * 20 * 3600.0, rel=1e-12)


# ------------------------------------------------------------------ PyBaMM
@pytest.mark.slow
def test_homogeneous_limit_against_pybamm_okane2022() -> None:
    """Free spheres of the O'Kane 2022 graphite vs PyBaMM's SPM with SEI on cracks."""
    pybamm = pytest.importorskip("pybamm")
    n = 100
    opts = {
        "SEI": "solvent-diffusion limited",
        "SEI on cracks": "true",
        "particle mechanics": ("swelling and cracking", "swelling only"),
        "SEI porosity change": "false",
    }
    pv = pybamm.ParameterValues("OKane2022")
    exp = pybamm.Experiment(
        [("Discharge at 1C until 2.5 V", "Charge at 1C until 4.2 V", "Hold at 4.2 V until C/50")]
        * n
    )
    sol = pybamm.Simulation(pybamm.lithium_ion.SPM(opts), parameter_values=pv,
                            experiment=exp).solve()  # fmt: skip
    dur = [c["Time [s]"].entries[-1] - c["Time [s]"].entries[0] for c in sol.cycles]
    li_sei = sol.cycles[-1]["Loss of lithium to negative SEI [mol]"].entries[-1]
    li_cr = sol.cycles[-1]["Loss of lithium to negative SEI on cracks [mol]"].entries[-1]
    q1 = sol.cycles[1].steps[0]["Discharge capacity [A.h]"].entries
    r = pv["Negative particle radius [m]"]
    area = (3 * pv["Negative electrode active material volume fraction"] / r
            * pv["Negative electrode thickness [m]"] * pv["Electrode width [m]"]
            * pv["Electrode height [m]"])  # fmt: skip
    mat = GRAPHITE.replace(
        young_modulus_Pa=pv["Negative electrode Young's modulus [Pa]"],
        poisson_ratio=pv["Negative electrode Poisson's ratio"],
        partial_molar_volume_m3_per_mol=pv["Negative electrode partial molar volume [m3.mol-1]"],
    )
    p = AgingParameters(material=mat, cycle_time_s=float(np.mean(dur)),
                        sei={"crack_initial_thickness_m": 5e-13 / 1.908})  # fmt: skip
    geom = sphere_geometry(r)
    res = age(None, cycles=n, geometry=geom, params=p, map_cycles=[])
    a = float(geom.area_m2.sum())
    lost = res.lithium_lost_mol
    assert lost["sei_original"] / a == pytest.approx(li_sei / area, rel=0.01)
    assert lost["sei_cracks"] / a == pytest.approx(li_cr / area, rel=0.02)
    # lithium-inventory fade (capacity lost = F x lithium lost) within 10 %
    fade_pybamm = 96485.33212 * (li_sei + li_cr) / 3600.0 / (q1[-1] - q1[0])
    assert 1 - res.capacity_retention[-1] == pytest.approx(fade_pybamm, rel=0.1)


# ------------------------------------------------------------------ impedance
def _planes(n: int, length: float = 40e-6, area_per_plane: float = 1e-9):
    from microbat.degradation._aging_network import AgingGeometry

    return AgingGeometry(
        n=n,
        volume_m3=np.full(n, 1e-16),
        radius_m=np.full(n, 3e-6),
        area_m2=np.full(n, area_per_plane),
        layer=np.arange(n),
        n_layers=n,
        layer_thickness_m=length / n,
        cross_section_m2=1e-8,
        porosity=np.full(n, 0.3),
        solid_fraction=np.full(n, 0.7),
        tortuosity=2.0,
        labels_mid=np.zeros((n, 1), np.int32),
    )


def test_network_impedance_single_branch_closed_form() -> None:
    from microbat.degradation._aging_network import network_impedance

    g = _planes(1)
    w = 2 * np.pi * np.logspace(-2, 5, 15)
    rct, cdl, rf, cf, area = 0.07, 0.2, 1e-3, 9e-3, 1e-9
    z_branch = (1 / (1 / rct + 1j * w * cdl) + rf / (1 + 1j * w * rf * cf)) / area
    kap, sig = 0.95 * 0.3 / 2.0, 215.0 * 0.7**1.5
    dz, ax = 40e-6, 1e-8
    # solid: collector to the node (half plane); electrolyte: node to the separator (half plane)
    expected = z_branch + 0.5 * dz / (sig * ax) + 0.5 * dz / (kap * ax)
    z = network_impedance(g, (1 / z_branch)[:, None], electrolyte_conductivity=0.95,
                          solid_conductivity=215.0)  # fmt: skip
    np.testing.assert_allclose(z, expected, rtol=1e-12)


def test_network_impedance_converges_to_the_transmission_line() -> None:
    """Uniform planes: second-order convergence to de Levie's two-rail line."""
    from microbat.cell.eis.analytic import transmission_line
    from microbat.degradation._aging_network import network_impedance

    length, ax, a_total = 40e-6, 1e-8, 4e-7  # interface area of the whole electrode
    w = 2 * np.pi * np.logspace(-1, 3, 9)  # 0.1 Hz .. 1 kHz (resolved penetration)
    y_area = 1 / 0.07 + 1j * w * 0.2
    kap, sig = 0.95 * 0.3 / 2.0, 215.0 * 0.7**1.5
    zeta = 1 / (y_area * a_total / length)  # Ω m: 1/(Y a_s A)
    exact = transmission_line(1 / (kap * ax), 1 / (sig * ax), zeta, length)
    errs = []
    for n in (16, 32, 64):
        g = _planes(n, length, a_total / n)
        y = np.repeat((y_area * a_total / n)[:, None], n, axis=1)
        z = network_impedance(g, y, electrolyte_conductivity=0.95, solid_conductivity=215.0)
        errs.append(np.max(np.abs(z - exact) / np.abs(exact)))
    rates = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert errs[-1] < 1e-3
    assert np.all(rates > 1.9)


def test_sei_arc_grows_with_cycling(electrode) -> None:
    ms, geom = electrode
    res = age(ms, cycles=300, geometry=geom, map_cycles=[0, 300])
    z = res.impedance_ohm
    assert z.shape == (2, res.impedance_frequency_Hz.size)
    # high-frequency intercept (electrolyte + film) grows with the film; arcs capacitive
    assert z[1, 0].real > z[0, 0].real
    assert np.all(z.imag <= 0)
    off = age(ms, cycles=300, geometry=geom, map_cycles=[0, 300],
              params=AgingParameters(film_resistance=False))  # fmt: skip
    assert off.impedance_ohm[1, 0].real < z[1, 0].real


def test_paris_hour_basis_counts_hours_of_tension() -> None:
    """PyBaMM's convention: at C/2 a cycle holds two hours of tension."""
    geom = sphere_geometry(5e-6)
    kw = {"geometry": geom, "mechanisms": "cracks", "jump": False, "map_cycles": [],
          "impedance": False}  # fmt: skip
    hour = AgingParameters(stress_profile="steady", cracks={"basis": "hour"})
    cycle = AgingParameters(stress_profile="steady")
    a_hour = age(None, cycles=50, c_rate=0.5, params=hour, **kw).mean_crack_length_m[-1]
    a_cycle = age(None, cycles=100, c_rate=0.5, params=cycle, **kw).mean_crack_length_m[-1]
    assert a_hour == pytest.approx(a_cycle, rel=1e-9)
    with pytest.raises(InvalidInputError, match="basis"):
        CrackParameters(basis="second")  # type: ignore[arg-type]


def test_fracture_at_the_closed_form_cycle_and_isolation() -> None:
    """Two free spheres with the same flux: the larger one fractures when Paris reaches a_c."""
    r = np.array([5e-6, 2e-6])
    geom = sphere_geometry(r)
    cracks = CrackParameters(paris_k=1e-17, density_per_m2=1e3)  # crack area negligible
    mat = GRAPHITE
    lo, hi = mat.stoichiometry_window
    vol, area = 4 / 3 * np.pi * r**3, 4 * np.pi * r**2
    flux = vol.sum() / area.sum() * mat.max_concentration_mol_per_m3 * (hi - lo) / 3600.0  # 1C
    pref = (
        mat.partial_molar_volume_m3_per_mol * mat.young_modulus_Pa / (3 * (1 - mat.poisson_ratio))
    )
    ds = pref * flux * r / mat.diffusivity_m2_per_s * 0.2  # quasi-steady surface hoop
    n_c = 37.4
    a_c = float(paris_length(2e-8, n_c, ds[0], cracks))
    kic = 1.12 * ds[0] * math.sqrt(math.pi * a_c)
    assert float(critical_length(ds[1], kic, cracks)) > 5 * a_c  # the small one is safe
    params = AgingParameters(
        material=mat.replace(fracture_toughness_Pa_sqrt_m=kic), cracks=cracks,
        stress_profile="steady", isolate_fractured=True,
    )  # fmt: skip
    kw = {"geometry": geom, "params": params, "mechanisms": "cracks", "jump": False,
          "map_cycles": [], "impedance": False}  # fmt: skip
    before = age(None, cycles=37, **kw)
    assert before.fractured_fraction[-1] == 0.0 and before.capacity_retention[-1] == 1.0
    after = age(None, cycles=38, **kw)
    assert list(after.fractured_fraction[-2:]) == [0.0, 0.5]
    assert after.capacity_retention[-1] == pytest.approx(vol[1] / vol.sum(), rel=1e-12)


def test_local_rate_is_the_lithium_of_the_next_cycle(electrode) -> None:
    ms, geom = electrode
    res = age(ms, cycles=101, geometry=geom, jump=False, map_cycles=[100], impedance=False)
    rate = res.maps["degradation_rate"][0]
    area = res.maps["interface_area_m2"][0]
    per_cycle = float(np.nansum(rate * area))
    lost = res.lithium_lost_curve_mol
    step = sum(float(v[101] - v[100]) for v in lost.values())
    assert per_cycle == pytest.approx(step, rel=1e-2)
    assert np.isfinite(res.heterogeneity_cov[0])


def test_vanishing_interface_area_is_an_error(monkeypatch) -> None:
    """A measured active/electrolyte area of 0 next to touching faces is refused."""
    import microbat.imaging.metrics as metrics
    from microbat.core.errors import PhaseError
    from microbat.core.microstructure import Microstructure

    n, r = 24, 8.0
    z, y, x = np.indices((n, n, n)) - (n - 1) / 2
    lab = (z**2 + y**2 + x**2 <= r**2).astype(np.uint8)
    ms = Microstructure(lab, 1e-6, "pore=0,active=1")
    parts = label_particles(ms)
    monkeypatch.setattr(metrics, "interface_areas", lambda _ms: {})
    with pytest.raises(PhaseError, match="no SEI interface"):
        aging_geometry(ms, parts, tortuosity=1.5)


def test_pinhole_contact_gets_its_measured_area() -> None:
    """A particle coated by one voxel of binder, touching the pore at pinholes (a
    binder-coated segmentation): the SEI area is the measured pore/active area, between
    half and all of its voxel faces, and the particle's two interfaces add up to 4πR²."""
    from microbat.core.microstructure import Microstructure
    from microbat.imaging.metrics import interface_areas

    n, r = 32, 10.0
    z, y, x = np.indices((n, n, n)) - (n - 1) / 2 - 0.3
    rr = np.sqrt(z**2 + y**2 + x**2)
    lab = np.zeros((n, n, n), np.uint8)
    lab[rr <= r + 1] = 1
    lab[rr <= r] = 2
    rng = np.random.default_rng(3)
    shell = np.argwhere(lab == 1)
    rng.shuffle(shell)
    steps = np.vstack([np.eye(3, dtype=int), -np.eye(3, dtype=int)])
    opened = 0
    for v in shell:
        near = {int(lab[tuple(v + d)]) for d in steps}
        if 0 in near and 2 in near and opened < 40:
            lab[tuple(v)] = 0
            opened += 1
    ms = Microstructure(lab, 1e-6, "pore=0,cbd=1,active=2")
    geom = aging_geometry(ms, label_particles(ms), tortuosity=1.5)
    areas = interface_areas(ms)
    sei = float(geom.area_m2.sum())
    assert sei == pytest.approx(areas[("pore", "active")], rel=1e-12)
    faces = sum(
        int(np.count_nonzero(((lo == 0) & (hi == 2)) | ((lo == 2) & (hi == 0))))
        for lo, hi in ((np.delete(lab, -1, k), np.delete(lab, 0, k)) for k in range(3))
    )
    assert 0.5 * faces * 1e-12 < sei < faces * 1e-12
    both = areas[("pore", "active")] + areas[("cbd", "active")]
    assert both == pytest.approx(4 * math.pi * (r * 1e-6) ** 2, rel=0.015)
