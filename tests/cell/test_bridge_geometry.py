"""Geometry as PyBaMM inputs: one built model equals a model rebuilt per geometry."""

from __future__ import annotations

import numpy as np
import pytest

from microbat.cell import MicroProperties, apply_micro, get_simulator
from microbat.cell.bridge import CellSimulator, geometry_inputs_supported
from microbat.core.errors import InvalidInputError

#: Designs a study visits: thicker and thinner electrodes, other radii, porosities,
#: surface areas (exchange-current scale) and separators, the N/P ratio rescaled.
GEOMETRIES = (
    {
        "positive.thickness_m": 60e-6,
        "positive.particle_radius_m": 3e-6,
        "positive.porosity": 0.30,
        "positive.active_fraction": 0.62,
        "positive.exchange_current_scale": 1.3,
        "negative.thickness_m": 70e-6,
        "cell.nominal_capacity_Ah": 4.0,
    },
    {
        "positive.thickness_m": 110e-6,
        "positive.particle_radius_m": 2e-6,
        "separator.thickness_m": 20e-6,
        "separator.porosity": 0.40,
        "negative.particle_radius_m": 8e-6,
        "negative.porosity": 0.20,
    },
)


@pytest.fixture(scope="module")
def built_once(chen):
    return CellSimulator(chen, geometry_inputs=True)


def test_built_once_equals_rebuilt(chen):
    """Voltage curves, capacities, energies and full-charge states to round-off.

    At the solver's default tolerances both models take the same steps: measured
    capacity and energy within 1e-11 relative, voltages within 1e-7 V (DFN).
    """
    once = CellSimulator(chen, geometry_inputs=True)
    for change in GEOMETRIES:
        p = chen.with_values(change, source="test")
        ref = CellSimulator(p)
        for c_rate in (0.1, 2.0):
            (a,) = ref.run((c_rate,))
            (b,) = once.run((c_rate,), params=p)
            a, b = a.curve, b.curve
            assert a.complete and b.complete
            assert b.final_capacity_Ah == pytest.approx(a.final_capacity_Ah, rel=1e-6)
            assert b.energy_Wh == pytest.approx(a.energy_Wh, rel=1e-6)
            v = np.interp(a.time_s, b.time_s, b.voltage_V)
            assert np.max(np.abs(v - a.voltage_V)) < 1e-5
        for k in ("negative_stoichiometry", "positive_stoichiometry"):
            assert once.initial_state[k] == pytest.approx(ref.initial_state[k], abs=1e-9)


def test_published_geometry_and_transport(chen, built_once):
    """The build geometry itself, with micro-informed transport on top."""
    m = MicroProperties(porosity=0.30, tau_electrolyte=3.0, particle_radius_m=4e-6)
    p = apply_micro(chen, m, transport="micro")
    (a,) = CellSimulator(p).run((1.0,))
    (b,) = built_once.run((1.0,), params=p)
    assert b.curve.final_capacity_Ah == pytest.approx(a.curve.final_capacity_Ah, rel=1e-6)
    assert a.curve.final_capacity_Ah != pytest.approx(
        built_once.run((1.0,))[0].curve.final_capacity_Ah, rel=1e-3
    )


def test_cache_shares_one_model_across_geometries(chen):
    p1 = chen.with_values(GEOMETRIES[0], source="test")
    p2 = chen.with_values(GEOMETRIES[1], source="test")
    s1 = get_simulator(p1, geometry_inputs=True)
    assert s1.geometry_inputs
    assert get_simulator(p2, geometry_inputs=True) is s1
    # without geometry inputs each geometry has its own model
    assert get_simulator(p1) is not get_simulator(p2)
    # anything but the geometry and the transport still needs another model
    p3 = p1.with_values({"cell.lower_cutoff_V": 3.0}, source="test")
    assert get_simulator(p3, geometry_inputs=True) is not s1
    with pytest.raises(InvalidInputError, match="geometry"):
        s1.run((1.0,), params=p3)


def test_unsupported_cells_are_refused_or_rebuilt(chen):
    spread = chen.with_values({"positive.particle_radius_std_m": 1.5e-6}, source="test")
    half = chen.as_half_cell(10.0)
    for p, model, why in (
        (spread, "DFN", "distribution"),
        (half, "DFN", "half cell"),
        (chen, "SPMe", "DFN only"),
    ):
        assert why in geometry_inputs_supported(p, model)
        with pytest.raises(InvalidInputError, match=why):
            CellSimulator(p, model=model, geometry_inputs=True, mesh_points={"R_p": 5})
    assert geometry_inputs_supported(chen) is None
    assert geometry_inputs_supported(chen, "P2D") is None
    # get_simulator builds such cells per geometry instead
    assert not get_simulator(half, geometry_inputs=True).geometry_inputs
