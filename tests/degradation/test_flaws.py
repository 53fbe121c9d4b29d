"""Flaw-size distribution: Weibull strengths (closed form), seeds, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from microbat.core.errors import InvalidInputError
from microbat.degradation.fracture import flaw_sizes, stress_intensity
from microbat.degradation.parameters import MechanicsParameters


@pytest.mark.parametrize("m", [3.0, 10.0])
def test_cracked_fraction_under_uniform_stress_is_the_weibull_law(m):
    n = 40_000
    radius = np.full(n, 5e-6)
    p = MechanicsParameters(flaw_weibull_modulus=m, flaw_seed=7)
    a = flaw_sizes(radius, p)
    kic = p.active.fracture_toughness_Pa_sqrt_m
    a0 = p.flaw_fraction * 5e-6
    sigma0 = kic / (p.geometry_factor * math.sqrt(math.pi * a0))  # characteristic strength
    for ratio in (0.7, 1.0, 1.3):
        cracked = float(np.mean(stress_intensity(np.full(n, ratio * sigma0), a, 1.12) >= kic))
        expected = 1.0 - math.exp(-(ratio**m))
        tol = 4.0 * math.sqrt(expected * (1 - expected) / n) + 1e-12
        assert abs(cracked - expected) <= tol, (ratio, cracked, expected)


def test_flaw_draws_are_seeded_and_optional():
    r = np.linspace(1e-6, 8e-6, 50)
    fixed = flaw_sizes(r, MechanicsParameters())
    assert np.array_equal(fixed, 0.05 * r)  # no modulus: the fraction itself
    a = flaw_sizes(r, MechanicsParameters(flaw_weibull_modulus=5.0, flaw_seed=1))
    b = flaw_sizes(r, MechanicsParameters(flaw_weibull_modulus=5.0, flaw_seed=1))
    c = flaw_sizes(r, MechanicsParameters(flaw_weibull_modulus=5.0, flaw_seed=2))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    sized = flaw_sizes(r, MechanicsParameters(flaw_size_m=1e-7, flaw_weibull_modulus=5.0))
    assert np.all(sized > 0) and np.ptp(sized) > 0
    d = MechanicsParameters(flaw_weibull_modulus=4.0, flaw_seed=3).to_dict()
    assert d["flaw_weibull_modulus"] == 4.0 and d["flaw_seed"] == 3


@pytest.mark.parametrize(
    ("kw", "match"),
    [({"flaw_weibull_modulus": 0.0}, "Weibull"), ({"flaw_weibull_modulus": -2}, "Weibull"),
     ({"flaw_seed": 1.5}, "flaw_seed")],
)  # fmt: skip
def test_bad_flaw_options_are_refused(kw, match):
    with pytest.raises(InvalidInputError, match=match):
        MechanicsParameters(**kw)


def test_cli_reads_the_flaw_options():
    from microbat.cli._mechanics import _parameters

    p = _parameters(None, None, None, None, None, None, 0.1, 6.0, 4)
    assert (p.flaw_fraction, p.flaw_weibull_modulus, p.flaw_seed) == (0.1, 6.0, 4)
