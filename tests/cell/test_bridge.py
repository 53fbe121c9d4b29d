"""The bridge is PyBaMM's model: plumbing, effective transport, failures, inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from microbat.cell import (
    MicroProperties,
    apply_micro,
    check_c_rates,
    get_simulator,
    rate_capability,
)
from microbat.core.errors import ConvergenceError, InvalidInputError


def test_reproduces_plain_pybamm_dfn_within_1mV(chen, chen_rates):
    """Bruggeman + the published set unchanged is the same model as plain PyBaMM."""
    import pybamm

    for c_rate in (1.0, 3.0):
        pv = pybamm.ParameterValues("Chen2020")
        pv["Current function [A]"] = c_rate * 5.0
        ref = pybamm.Simulation(pybamm.lithium_ion.DFN(), parameter_values=pv).solve(
            [0, 3600 / c_rate * 1.1], initial_soc=1.0
        )
        t_ref = ref.t
        v_ref = ref["Voltage [V]"].entries
        curve = chen_rates.curves[chen_rates.c_rate.index(c_rate)]
        t_max = min(t_ref[-1], curve.time_s[-1])
        keep = t_ref <= t_max
        v = np.interp(t_ref[keep], curve.time_s, curve.voltage_V)
        assert np.max(np.abs(v - v_ref[keep])) < 1e-3
        # same end of discharge
        assert curve.time_s[-1] == pytest.approx(t_ref[-1], rel=2e-3)
        assert curve.status == "cut-off" and ref.termination == "event: Minimum voltage [V]"


def test_effective_diffusivity_is_eps_over_tau_times_d(chen):
    """The transport efficiency PyBaMM multiplies D_e and κ_e by equals ε/τ exactly."""
    m = MicroProperties(porosity=0.335, tau_electrolyte=3.0)
    p = apply_micro(chen, m, transport="micro")
    sim = get_simulator(p)
    (run,) = sim.run((1.0,), params=p)
    tor_p = run.solution["X-averaged positive electrolyte transport efficiency"].entries
    tor_n = run.solution["X-averaged negative electrolyte transport efficiency"].entries
    np.testing.assert_allclose(tor_p, 0.335 / 3.0, rtol=1e-12)
    np.testing.assert_allclose(tor_n, 0.25**1.5, rtol=1e-12)  # untouched electrode
    # and the same built model run with Bruggeman gives ε^1.5
    (run_b,) = sim.run((1.0,), params=apply_micro(chen, m, transport="bruggeman"))
    tor_b = run_b.solution["X-averaged positive electrolyte transport efficiency"].entries
    np.testing.assert_allclose(tor_b, 0.335**1.5, rtol=1e-12)


def test_transport_switch_reuses_the_built_model(chen):
    m = MicroProperties(porosity=0.335, tau_electrolyte=3.0)
    a = get_simulator(apply_micro(chen, m, transport="micro"))
    b = get_simulator(apply_micro(chen, m, transport="bruggeman"))
    assert a is b


@pytest.mark.parametrize(
    "rates, match",
    [
        ((), "at least one"),
        ((-1.0, 1.0), "positive"),
        ((0.0,), "positive"),
        ((math.nan,), "positive"),
        ((500.0,), "outside"),
        (("fast",), "not a number"),
    ],
)
def test_bad_c_rates(rates, match):
    with pytest.raises(InvalidInputError, match=match):
        check_c_rates(rates)


def test_c_rates_sorted_unique():
    assert check_c_rates((3, 1, 1, 0.1)) == (0.1, 1.0, 3.0)


def test_unknown_model(chen):
    with pytest.raises(InvalidInputError, match="DFN"):
        rate_capability(chen, c_rates=(1,), model="P4D")


def test_solver_failure_reports_time_and_state(chen):
    opts = {"max_error_test_failures": 1}  # makes IDA give up near the 3C cliff
    with pytest.raises(ConvergenceError, match=r"t = \d+\.\d s, after [\d.]+ A·h"):
        rate_capability(chen, c_rates=(3,), solver_options=opts, breakdown=False)
    r = rate_capability(
        chen, c_rates=(1, 3), solver_options=opts, on_failure="record", breakdown=True
    )
    i = r.c_rate.index(3.0)
    assert r.status[i] == "failure" and r.complete[i] is False
    assert math.isnan(r.capacity_Ah[i]) and math.isnan(r.fraction[i])
    assert r.bottleneck_key[i] == "incomplete"
    assert r.curves[i].time_s[-1] > 0  # the truncated curve is kept, marked incomplete
    assert r.complete[r.c_rate.index(1.0)] is True
    assert "null" in r.to_json()


def test_threads_give_the_serial_answer(chen, chen_rates):
    r = rate_capability(chen, c_rates=(0.5, 2.0), threads=2, breakdown=False)
    for c, cap in zip(r.c_rate, r.capacity_Ah, strict=True):
        assert cap == pytest.approx(chen_rates.capacity_Ah[chen_rates.c_rate.index(c)], rel=1e-4)


def test_spme_runs_and_is_faster_to_trust_at_low_rate(chen, chen_rates):
    r = rate_capability(chen, c_rates=(0.1, 1.0), model="SPMe")
    assert r.model == "SPMe"
    # at 1C the SPMe and DFN capacities agree within 1 %
    assert r.capacity_Ah[1] == pytest.approx(chen_rates.capacity_Ah[2], rel=1e-2)
    assert r.breakdown.max_residual_V < 1e-3


def test_particle_size_distribution(chen, chen_rates):
    m = MicroProperties(
        porosity=0.335,
        tau_electrolyte=0.335**-0.5,
        particle_radius_m=5.22e-6,
        particle_radius_std_m=1.5e-6,
    )
    r = rate_capability(chen, c_rates=(1.0,), transport="micro", micro=m, mesh_points={"R_p": 10})
    assert r.complete == (True,)
    # a spread of sizes changes the 1C capacity a little, not a lot
    ref = chen_rates.capacity_Ah[2]
    assert r.capacity_Ah[0] != pytest.approx(ref, rel=1e-6)
    assert r.capacity_Ah[0] == pytest.approx(ref, rel=0.05)
    assert r.breakdown.max_residual_V < 1e-3


def test_negative_electrode_micro(chen, chen_rates):
    m = MicroProperties(electrode="negative", porosity=0.25, tau_electrolyte=4.0)
    p = apply_micro(chen, m)
    assert p.positive == chen.positive
    (run,) = get_simulator(p).run((2.0,), params=p)
    tor_n = run.solution["X-averaged negative electrolyte transport efficiency"].entries
    np.testing.assert_allclose(tor_n, 0.25 / 4.0, rtol=1e-12)
    # a 2x more tortuous negative electrode than Bruggeman's (τ = 2) costs capacity at 2C
    assert run.curve.final_capacity_Ah < chen_rates.capacity_Ah[chen_rates.c_rate.index(2.0)]
