"""Closed forms of the galvanostatic sphere and the Griffith screening over C-rates."""

import math

import numpy as np
import pytest

from microbat.core.errors import InvalidInputError
from microbat.degradation.fracture import critical_c_rate_summary, screen_particles
from microbat.degradation.parameters import GRAPHITE, NMC811, MechanicsParameters
from microbat.degradation.sphere import (
    constant_flux_concentration,
    free_sphere_stress,
    sphere_roots,
    stress_shape,
)


def test_roots_and_sum_rule():
    lam = sphere_roots()
    assert np.allclose(np.tan(lam[:50]), lam[:50], rtol=1e-9)
    assert math.isclose(lam[0], 4.493409457909064, rel_tol=1e-12)
    # Σ 1/λ² = 1/10 (the tail beyond N terms is 1/(π² N))
    assert abs((1 / lam**2).sum() + 1 / (np.pi**2 * lam.size) - 0.1) < 1e-7


def test_concentration_mean_and_steady_state():
    x = np.linspace(0, 1, 2001)
    w = 3 * x**2 * (x[1] - x[0])  # volume weights of the ball
    for tau in (1e-3, 0.05, 0.4):
        u = constant_flux_concentration(x, tau)
        assert abs(np.sum(u * w) - 3 * tau) < 2e-3 * max(1.0, 3 * tau)
    late = constant_flux_concentration(x, 2.0) - 6.0
    assert np.allclose(late, x**2 / 2 - 0.3, atol=1e-6)


def test_stress_shape_limits_and_table():
    s, c = stress_shape(np.array([0.0, 1e-9, 1e3, np.inf]))
    assert s[0] == 0 and c[0] == 0
    assert math.isclose(s[1], -(2 * math.sqrt(1e-9 / math.pi) - 3e-9), rel_tol=1e-9)
    assert s[2] == -0.2 and c[2] == 0.2 and s[3] == -0.2
    # table against direct summation of the series
    for tau in (3e-5, 0.01, 0.2):
        sr, st = free_sphere_stress(
            np.array([0.0, 1.0]), tau, flux=1, radius=1, diffusivity=1,
            young_modulus=3.0, poisson_ratio=0.0, partial_molar_volume=1.0,
        )  # fmt: skip
        ss, cc = stress_shape(tau)
        assert math.isclose(st[1], ss, rel_tol=1e-4, abs_tol=1e-9)
        assert math.isclose(sr[0], cc, rel_tol=1e-4, abs_tol=1e-9)


def test_free_sphere_stress_steady_closed_form():
    x = np.linspace(0, 1, 11)
    sr, st = free_sphere_stress(
        x, np.inf, flux=2e-5, radius=5e-6, diffusivity=4e-15, young_modulus=150e9,
        poisson_ratio=0.25, partial_molar_volume=1.26e-6,
    )  # fmt: skip
    b = 2e-5 * 5e-6 / 4e-15 / 2  # c = c̄ + b x² − …
    s0 = 2 * 1.26e-6 * 150e9 * b / (15 * 0.75)
    assert np.allclose(sr, s0 * (1 - x**2), rtol=1e-12)
    assert np.allclose(st, s0 * (1 - 2 * x**2), rtol=1e-12)


@pytest.mark.parametrize("time", ["steady", "end"])
def test_critical_rate_is_where_k_reaches_kic(time):
    radii = np.array([1e-6, 3e-6, 5e-6, 8e-6])
    res = screen_particles(radii, [0.5, 1, 2, 5], time=time)
    kic = NMC811.fracture_toughness_Pa_sqrt_m
    crit = res.critical_c_rate
    fin = np.isfinite(crit)
    assert fin.any()
    # bigger particles crack at lower rates
    assert np.all(np.diff(np.where(fin, crit, 1e9)) <= 0)
    for i in np.flatnonzero(fin):
        r2 = screen_particles(radii[i : i + 1], [crit[i] * 0.999, crit[i] * 1.001], time=time)
        k = r2.stress_intensity_Pa_sqrt_m[:, 0]
        assert k[0] < kic <= k[1] * (1 + 1e-9)
    # cracked fraction grows with the rate
    assert np.all(np.diff(res.cracked_fraction) >= 0)


def test_steady_is_linear_in_rate():
    res = screen_particles(np.array([4e-6]), [1.0, 3.0], time="steady")
    t = res.tensile_stress_Pa[:, 0]
    assert math.isclose(t[1], 3 * t[0], rel_tol=1e-12)
    assert math.isclose(
        res.critical_c_rate[0],
        NMC811.fracture_toughness_Pa_sqrt_m / res.stress_intensity_Pa_sqrt_m[0, 0],
        rel_tol=1e-12,
    )


def test_centre_tension_saturates_small_particles_never_crack():
    # lithiation of NMC: the centre is in tension and saturates at high rates
    res = screen_particles(np.array([0.2e-6]), [1.0], time="end")
    assert not np.isfinite(res.critical_c_rate[0])
    assert res.critical["never_cracks_fraction"] == 1.0
    assert res.critical["median"] is None
    # delithiation puts the surface in tension, which grows without bound
    res2 = screen_particles(np.array([1e-6]), [1.0], time="end", direction="delithiation")
    assert np.isfinite(res2.critical_c_rate[0])
    assert res2.surface_hoop_stress_Pa[0, 0] > 0 > res2.centre_stress_Pa[0, 0]


def test_summary_handles_infinite_rates():
    s = critical_c_rate_summary(np.array([1.0, 2.0, np.inf, np.inf]), np.ones(4))
    assert s["median"] is None and s["p25"] == pytest.approx(1.75)
    assert s["never_cracks_fraction"] == 0.5 and s["min"] == 1.0
    s = critical_c_rate_summary(np.array([1.0, 2.0, 3.0]))
    assert s["median"] == 2.0 and sum(s["hist_counts"]) == 3


def test_screening_refuses_missing_constants():
    p = MechanicsParameters(active=GRAPHITE.replace(diffusivity_m2_per_s=None))
    with pytest.raises(InvalidInputError, match="diffusivity"):
        screen_particles(np.array([1e-6]), [1.0], params=p)
    with pytest.raises(InvalidInputError, match="C-rates"):
        screen_particles(np.array([1e-6]), [0.0])
