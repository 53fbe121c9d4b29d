from __future__ import annotations

import math

import numpy as np
import pytest

from microbat import Microstructure
from microbat.cell import MicroProperties, apply_micro, resolve_parameters
from microbat.core.errors import InvalidInputError, NotPercolatingError, PhaseError


def test_validation_teaches():
    with pytest.raises(InvalidInputError, match="unphysical"):
        MicroProperties(porosity=0.3, tau_electrolyte=0.7)
    with pytest.raises(NotPercolatingError, match="does not connect"):
        MicroProperties(porosity=0.3, tau_electrolyte=math.inf)
    with pytest.raises(InvalidInputError, match="micrometres"):
        MicroProperties(porosity=0.3, tau_electrolyte=2.0, particle_radius_m=5.0)
    with pytest.raises(InvalidInputError, match="percentage"):
        MicroProperties(porosity=30.0, tau_electrolyte=2.0)
    with pytest.raises(InvalidInputError, match="surface area"):
        MicroProperties(porosity=0.3, tau_electrolyte=2.0, specific_surface_area_per_m=0.4)
    with pytest.raises(InvalidInputError, match="unknown field; the fields are electrode"):
        MicroProperties(porosity=0.3, tau_electrolyte=2.0, tortuosity=3)


def test_micro_transport_is_eps_over_tau(chen):
    m = MicroProperties(porosity=0.35, tau_electrolyte=3.5)
    p = apply_micro(chen, m, transport="micro")
    assert p.positive.porosity == 0.35
    assert p.positive.transport_efficiency == pytest.approx(0.35 / 3.5, rel=1e-13)
    assert p.positive.tau_electrolyte == pytest.approx(3.5, rel=1e-12)
    # the negative electrode and separator are untouched
    assert p.negative == chen.negative and p.separator == chen.separator
    # the active share of the solid is kept, so the fractions still fit
    assert p.positive.active_fraction == pytest.approx(0.65)
    sources = {o.parameter: o.source for o in p.overrides}
    assert sources["positive.bruggeman_electrolyte"] == "microstructure"
    assert "positive.porosity" in sources


def test_bruggeman_transport_keeps_published_exponent(chen):
    m = MicroProperties(porosity=0.35, tau_electrolyte=3.5)
    p = apply_micro(chen, m, transport="bruggeman")
    assert p.positive.bruggeman_electrolyte == 1.5
    assert p.positive.porosity == 0.35


def test_surface_area_only_sets_sauter_radius(chen):
    m = MicroProperties(porosity=0.335, tau_electrolyte=2.0, specific_surface_area_per_m=4e5)
    p = apply_micro(chen, m)
    assert p.positive.particle_radius_m == pytest.approx(3 * 0.665 / 4e5)
    assert p.positive.surface_area_per_m == pytest.approx(4e5)
    assert p.positive.exchange_current_scale == 1.0


def test_surface_area_and_radius_scale_exchange_current(chen):
    m = MicroProperties(
        porosity=0.335,
        tau_electrolyte=2.0,
        specific_surface_area_per_m=2e5,
        particle_radius_m=5e-6,
    )
    p = apply_micro(chen, m)
    assert p.positive.particle_radius_m == 5e-6
    assert p.positive.surface_area_per_m == pytest.approx(2e5)
    scale = 2e5 / (3 * 0.665 / 5e-6)
    assert p.positive.exchange_current_scale == pytest.approx(scale)
    j0 = p.to_pybamm()["Positive electrode exchange-current density [A.m-2]"]
    j0_ref = chen.to_pybamm()["Positive electrode exchange-current density [A.m-2]"]
    args = (1000.0, 30000.0, 63104.0, 298.15)
    assert float(j0(*args).evaluate()) == pytest.approx(scale * float(j0_ref(*args).evaluate()))


def test_solid_tortuosity_needs_bulk_conductivity_for_effective_sets(chen, marquis):
    m = MicroProperties(porosity=0.335, tau_electrolyte=2.0, tau_solid=4.0)
    p = apply_micro(chen, m)  # Chen2020 conductivity is effective (b_s = 0)
    assert p.positive.bruggeman_electrode == 0.0
    assert any("solid transport kept" in n for n in p.notes)
    m2 = m.model_copy(update={"solid_conductivity_bulk_S_per_m": 10.0})
    p2 = apply_micro(chen, m2)
    assert p2.positive.effective_conductivity_S_per_m == pytest.approx(10.0 * 0.665 / 4.0)
    # Marquis2019 gives a bulk conductivity (b_s = 1.5): tau_solid applies directly
    m3 = MicroProperties(porosity=0.3, tau_electrolyte=2.0, tau_solid=4.0)
    p3 = apply_micro(marquis, m3)
    assert p3.positive.effective_conductivity_S_per_m == pytest.approx(10.0 * 0.7 / 4.0)


def test_resolve_parameters_needs_micro_for_micro_transport(chen):
    with pytest.raises(InvalidInputError, match="micro=MicroProperties"):
        resolve_parameters(chen, transport="micro")
    with pytest.raises(InvalidInputError, match="bruggeman"):
        resolve_parameters(chen, transport="kozeny")
    assert resolve_parameters(chen) is chen


def test_microstructure_without_electrolyte_is_refused():
    lab = np.zeros((8, 8, 8), np.uint8)
    lab[:, :, 4:] = 1
    ms = Microstructure(lab, voxel_size=1e-6, phases="active=0,cbd=1")
    with pytest.raises(PhaseError, match="no electrolyte"):
        MicroProperties.from_microstructure(ms)


def test_from_microstructure_straight_channels(channels):
    """Straight pore channels along axis 0: τ ≈ 1 along them; metrics passed through."""
    pytest.importorskip("microbat.transport.randomwalk")
    from microbat.imaging.metrics import size_distribution, specific_surface_area

    opts = {"n_walkers": 2000, "n_steps": 4000}
    m = MicroProperties.from_microstructure(
        channels,
        tortuosity_method="random_walk",
        tortuosity_options=opts,
        solid_tortuosity=False,
    )
    assert m.axis == 0 and m.electrode == "positive"
    assert m.porosity == pytest.approx(channels.fraction("pore"))
    assert m.tau_electrolyte == pytest.approx(1.0, abs=0.1)
    assert m.specific_surface_area_per_m == pytest.approx(
        specific_surface_area(channels, "active", "electrolyte")
    )
    assert m.particle_radius_m == pytest.approx(size_distribution(channels, "active").d50 / 2)
    assert m.active_fraction == pytest.approx(1 - m.porosity)
    assert m.thickness_m is None
    assert m.source["tortuosity_method"] == "random_walk"


def test_from_microstructure_diffusion_solve(channels):
    """The default path: the steady diffusion solve gives τ = 1 in straight channels."""
    pytest.importorskip("microbat.transport.diffusion")
    m = MicroProperties.from_microstructure(channels)
    assert m.tau_electrolyte == pytest.approx(1.0, abs=1e-6)
    assert m.tau_solid is not None and m.tau_solid >= 1.0
    assert m.source["tortuosity_method"] == "diffusion"
    with pytest.raises(NotPercolatingError):
        MicroProperties.from_microstructure(channels, axis=1, solid_tortuosity=False)
