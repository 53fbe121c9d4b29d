"""SEI growth laws against their ODEs and closed forms; lithium bookkeeping."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from microbat.core.errors import InvalidInputError
from microbat.degradation.sei import (
    SEIParameters,
    film_resistance,
    grow,
    lithium_from_volume,
    rate_constants,
    reaction_factor,
)


def _ode(params: SEIParameters, d0: float, t_end: float) -> float:
    kd, kr = rate_constants(params)

    def rhs(_t: float, y: np.ndarray) -> np.ndarray:
        d = y[0]
        if params.law == "solvent-diffusion":
            return np.array([kd / d])
        if params.law == "reaction":
            return np.array([kr])
        return np.array([1.0 / (1.0 / kr + d / kd)])

    sol = solve_ivp(rhs, (0.0, t_end), [d0], method="LSODA", rtol=1e-10, atol=1e-22)
    return float(sol.y[0, -1])


@pytest.mark.parametrize("law", ["solvent-diffusion", "reaction", "mixed"])
def test_closed_form_matches_the_ode(law: str) -> None:
    p = SEIParameters(law=law)  # type: ignore[arg-type]
    t = 1000 * 7200.0  # 1000 one-hour-each-way cycles
    exact = float(grow(p.initial_thickness_m, t, p))
    ode = _ode(p, p.initial_thickness_m, t)
    assert exact == pytest.approx(ode, rel=1e-6)


def test_sqrt_t_law_and_okane_rate() -> None:
    p = SEIParameters()
    kd, _ = rate_constants(p)
    # O'Kane 2022: V̄ D_sol c_sol / z
    assert kd == pytest.approx(9.585e-5 * 2.5e-22 * 2636.0, rel=1e-12)
    t = np.array([0.0, 3600.0, 3.6e6, 3.6e7])
    d = np.array([float(grow(5e-9, ti, p)) for ti in t])
    assert np.allclose(d, np.sqrt(25e-18 + 2 * kd * t), rtol=1e-12, atol=0)
    # at long times the film follows sqrt(t): doubling t100 -> x sqrt(2) within 1 %
    d1, d2 = float(grow(1e-15, 1e8, p)), float(grow(1e-15, 4e8, p))
    assert d2 / d1 == pytest.approx(2.0, rel=1e-2)


def test_growth_is_additive_over_steps() -> None:
    for law in ("solvent-diffusion", "reaction", "mixed"):
        p = SEIParameters(law=law)  # type: ignore[arg-type]
        one = float(grow(5e-9, 7.2e6, p))
        d = 5e-9
        for _ in range(1000):
            d = float(grow(d, 7200.0, p))
        assert d == pytest.approx(one, rel=1e-9)


def test_mixed_law_limits() -> None:
    p = SEIParameters(law="mixed")
    kd, kr = rate_constants(p)
    # thin film: reaction limited (linear); thick film: diffusion limited (sqrt)
    d_small = float(grow(1e-14, 1e-3, p))
    assert (d_small - 1e-14) == pytest.approx(kr * 1e-3, rel=1e-3)
    d_big = float(grow(1e-6, 1e6, p))
    assert d_big == pytest.approx(math.sqrt(1e-12 + 2 * kd * 1e6), rel=1e-4)


def test_lithium_and_resistance() -> None:
    p = SEIParameters(lithium_per_sei=2.0)
    assert float(lithium_from_volume(9.585e-5, p)) == pytest.approx(2.0, rel=1e-15)
    assert float(film_resistance(1e-8, p)) == pytest.approx(2e5 * 1e-8)
    assert float(reaction_factor(0.0, SEIParameters(law="reaction"))) == 1.0
    assert float(reaction_factor(0.05, SEIParameters(law="reaction"))) > 1.0
    assert float(reaction_factor(0.05, SEIParameters())) == 1.0


def test_bad_parameters_name_the_field() -> None:
    with pytest.raises(InvalidInputError, match="unknown SEI law"):
        SEIParameters(law="tunnelling")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="resistivity_ohm_m"):
        SEIParameters(resistivity_ohm_m=-1.0)
    p = SEIParameters(law="mixed", solvent_diffusivity_m2_per_s=None)
    with pytest.raises(InvalidInputError, match=r"sei\.solvent_diffusivity_m2_per_s"):
        p.require()
    with pytest.raises(InvalidInputError, match=">= 0"):
        grow(5e-9, -1.0, SEIParameters())
