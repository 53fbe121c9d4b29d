from __future__ import annotations

import math

import pytest

from microbat.cell import CellParameters, bruggeman_from_tau, load_parameters
from microbat.core.errors import InvalidInputError


def test_named_sets_match_pybamm(chen, marquis):
    import pybamm

    for params, name in ((chen, "Chen2020"), (marquis, "Marquis2019")):
        ref = pybamm.ParameterValues(name)
        assert params.positive.thickness_m == ref["Positive electrode thickness [m]"]
        assert params.negative.porosity == ref["Negative electrode porosity"]
        assert params.positive.particle_radius_m == ref["Positive particle radius [m]"]
        assert params.cell.lower_cutoff_V == ref["Lower voltage cut-off [V]"]
        assert params.citation
        # unchanged parameters go back to PyBaMM unchanged
        out = params.to_pybamm()
        for key, value in ref.items():
            if isinstance(value, int | float) and key != "citations":
                assert out[key] == value, key


def test_chen2020_values_and_derived(chen):
    assert chen.positive.porosity == pytest.approx(0.335)
    assert chen.positive.bruggeman_electrolyte == 1.5
    assert chen.positive.transport_efficiency == pytest.approx(0.335**1.5)
    assert chen.positive.tau_electrolyte == pytest.approx(0.335**-0.5)
    # LG M50: 5 Ah nominal; the positive electrode holds more than that
    assert chen.cell.nominal_capacity_Ah == 5.0
    assert chen.theoretical_capacity_Ah("positive") > 5.0


def test_unknown_set_lists_the_known_ones():
    with pytest.raises(InvalidInputError, match="chen2020"):
        CellParameters.from_name("nosuchset")


def test_micrometres_given_as_metres_is_caught(chen):
    with pytest.raises(InvalidInputError, match="micrometres"):
        chen.with_values({"positive.thickness_m": 75.6})
    with pytest.raises(InvalidInputError, match="micrometres"):
        chen.with_values({"negative.particle_radius_m": 5.86})


def test_volume_fractions_must_fit(chen):
    with pytest.raises(InvalidInputError, match="exceeds 1"):
        chen.with_values({"positive.porosity": 0.5})  # 0.5 + 0.665 > 1


def test_percentage_porosity_is_caught(chen):
    with pytest.raises(InvalidInputError, match="volume fraction"):
        chen.with_values({"positive.porosity": 33.5})


def test_unknown_field(chen):
    with pytest.raises(InvalidInputError, match="unknown parameter"):
        chen.with_values({"positive.tortuosity": 2.0})


def test_with_values_records_overrides(chen):
    p = chen.with_values({"positive.thickness_m": 6e-5}, source="user", note="thinner")
    assert p.positive.thickness_m == 6e-5
    assert chen.positive.thickness_m == 7.56e-5  # original untouched
    (o,) = p.overrides
    assert (o.parameter, o.old, o.new, o.source) == ("positive.thickness_m", 7.56e-5, 6e-5, "user")
    assert p.to_pybamm()["Positive electrode thickness [m]"] == 6e-5
    assert p.to_dict()["overrides"][0]["note"] == "thinner"


def test_missing_parameter_is_named():
    import pybamm

    values = dict(pybamm.ParameterValues("Chen2020").items())
    del values["Positive electrode porosity"]
    with pytest.raises(InvalidInputError, match="Positive electrode porosity"):
        CellParameters.from_pybamm(values)


@pytest.mark.parametrize("eps", [0.05, 0.25, 0.335, 0.5, 0.9])
@pytest.mark.parametrize("tau", [1.0, 1.3, 2.7, 10.0])
def test_bruggeman_from_tau_is_exact(eps, tau):
    b = bruggeman_from_tau(eps, tau)
    assert eps**b == pytest.approx(eps / tau, rel=1e-13)


def test_bruggeman_from_tau_rejects_bad_input():
    with pytest.raises(InvalidInputError):
        bruggeman_from_tau(1.0, 2.0)
    with pytest.raises(InvalidInputError):
        bruggeman_from_tau(0.3, math.inf)


def test_load_parameters_dispatches_on_suffix(tmp_path, chen):
    path = tmp_path / "cell.json"
    chen.to_bpx(path)
    assert load_parameters(path).positive.thickness_m == pytest.approx(7.56e-5)
    assert load_parameters("Chen2020").name == "chen2020"
