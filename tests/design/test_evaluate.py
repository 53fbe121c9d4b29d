"""The trial interface: generate_design and evaluate_design."""

from __future__ import annotations

import math

import numpy as np
import pytest

from microbat.core.errors import InvalidInputError
from microbat.design import evaluate_design, generate_design
from microbat.design.space import ConstraintSettings

RES = ((32, 32, 32), 0.5e-6)


def test_generate_is_seeded_and_hits_the_fractions():
    p = {"porosity": 0.38, "cbd_fraction": 0.07, "mean_radius": 2e-6, "calendering": 0.2}
    a = generate_design(p, 3, RES)
    b = generate_design(p, 3, RES)
    c = generate_design(p, 4, RES)
    assert a.shape == (32, 32, 32)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.labels, c.labels)
    fr = a.volume_fractions()
    # the carbon-binder fill is exact to a voxel; the active fraction to the
    # calendering bisection (one voxel per step) and the packing's own tolerance
    assert fr["cbd"] == pytest.approx(0.07, abs=2e-4)
    assert fr["pore"] == pytest.approx(0.38, abs=0.01)
    assert a.metadata["design"]["seed"] == 3
    assert a.metadata["design"]["calendering_applied"] == pytest.approx(0.2, abs=0.01)


def test_generate_refuses_bad_descriptors():
    with pytest.raises(InvalidInputError, match="unknown descriptor"):
        generate_design({"porosty": 0.3}, 0, RES)
    with pytest.raises(InvalidInputError, match="active material"):
        generate_design({"porosity": 0.7, "cbd_fraction": 0.28}, 0, RES)
    with pytest.raises(InvalidInputError, match="not both"):
        generate_design({"porosity": 0.3, "active_fraction": 0.3}, 0, RES)


def test_evaluate_bruggeman_and_micro_share_the_sample():
    p = {"porosity": 0.35, "mean_radius": 2e-6, "thickness": 60e-6}
    ms = generate_design(p, 1, RES)
    names = ("energy_density", "power_retention", "peak_stress", "specific_energy")
    out = {
        f: evaluate_design(p, fidelity=f, seed=1, microstructure=ms, objectives=names)
        for f in ("bruggeman", "micro")
    }
    for o in out.values():
        assert o.status == "ok", o.error
        assert o.feasible and not o.violated
        assert all(math.isfinite(v) for v in o.objectives.values())
        # energy per coating volume of an NMC811 coating with 55-60 % active:
        # ~ φ_a × 4.78 g/cm³ × 200 mAh/g × 3.7 V ≈ 2000 Wh/L (order of magnitude)
        assert 500 < o.objectives["energy_density"] < 4000
        assert 0 < o.objectives["power_retention"] <= 1.0 + 1e-9
    # same geometry, so the low-rate energy agrees; the micro τ (> Bruggeman's
    # ε^-0.5 on these packings) loses more at the high rate
    b, m = out["bruggeman"], out["micro"]
    assert m.metrics["tau_electrolyte"] > b.metrics["porosity"] ** -0.5
    assert m.objectives["energy_density"] == pytest.approx(b.objectives["energy_density"], rel=0.02)
    assert m.objectives["power_retention"] < b.objectives["power_retention"]
    d = m.to_dict()
    assert d["params"]["porosity"] == pytest.approx(0.35)
    assert "microstructure" not in d


def test_infeasible_design_is_reported_with_its_constraint():
    cons = ConstraintSettings(porosity_max=0.3, cbd_min=0.1)
    o = evaluate_design(
        {"porosity": 0.35, "cbd_fraction": 0.05},
        fidelity="bruggeman",
        seed=0,
        resolution=RES,
        constraints=cons,
        objectives=["energy_density"],
    )
    assert o.status == "infeasible"
    assert set(o.violated) == {"porosity_max", "cbd_min"}
    assert o.constraints["porosity_max"] == pytest.approx(0.05, abs=0.01)
    assert math.isfinite(o.objectives["energy_density"])  # still evaluated


def test_unknown_objective_and_fidelity():
    with pytest.raises(InvalidInputError, match="unknown objective"):
        evaluate_design({}, objectives=["energy"], resolution=RES)
    with pytest.raises(InvalidInputError, match="not available: lithium plates"):
        evaluate_design({}, objectives=["plating_margin"], resolution=RES)
    with pytest.raises(InvalidInputError, match="needs the resolved fidelity"):
        evaluate_design({}, objectives=["heterogeneity_index"], fidelity="micro", resolution=RES)
    with pytest.raises(InvalidInputError, match="unknown fidelity"):
        evaluate_design({}, fidelity="dfn", resolution=RES)


def test_low_rate_energy_density_scales_with_the_active_fraction():
    # at a low rate every particle is used to the same stoichiometry window, so the
    # energy per coating volume is φ_a × (charge per active volume) × (mean voltage):
    # E/V divided by φ_a does not depend on the porosity (N/P kept by balance_negative)
    per = []
    for eps in (0.3, 0.45):
        o = evaluate_design(
            {"porosity": eps, "cbd_fraction": 0.05, "mean_radius": 2e-6, "thickness": 40e-6},
            fidelity="bruggeman",
            seed=2,
            resolution=RES,
            objectives=["energy_density", "specific_energy"],
        )
        assert o.status == "ok", o.error
        per.append(o.objectives["energy_density"] / o.metrics["active_fraction"])
        # Wh/kg = Wh/L × 1000 / ρ̄ with ρ̄ the electrolyte-filled coating density
        assert o.objectives["specific_energy"] == pytest.approx(
            o.objectives["energy_density"] * 1e3 / o.metrics["coating_density_kg_per_m3"]
        )
    assert per[0] == pytest.approx(per[1], rel=0.02)


@pytest.mark.slow
def test_resolved_fidelity_with_the_heterogeneity_index():
    # two resolved half-cell discharges on a 20³ sample (~15-30 s on 2 shared cores)
    p = {"porosity": 0.4, "mean_radius": 2e-6}
    o = evaluate_design(
        p,
        fidelity="resolved",
        seed=1,
        resolution=((20, 20, 20), 0.5e-6),
        objectives=["energy_density", "power_retention", "heterogeneity_index"],
    )
    assert o.status == "ok", o.error
    assert 0 < o.objectives["power_retention"] <= 1.0
    # a per-particle state-of-charge spread: positive, well below 1 at 2C on 10 µm
    assert 0 < o.objectives["heterogeneity_index"] < 0.5
    # the electrode volume is the sample's own (the thickness descriptor is not used)
    assert o.metrics["electrode_volume_m3"] == pytest.approx((20 * 0.5e-6) ** 3)


def test_particle_shape_and_orientation_descriptors():
    # prolate spheroids (aspect 3) aligned through the plane leave pore channels along
    # the thickness (τ along < τ across); aligned in-plane (axis 1) they block it
    from microbat.transport.diffusion import tortuosity

    def tau(ms, axis):
        return tortuosity(ms, phase="pore", axis=axis, keep_field=False).tau[axis]

    base = {"porosity": 0.45, "aspect_ratio": 3.0, "mean_radius": 2e-6}
    up = generate_design({**base, "orientation": "through-plane"}, 5, RES)
    flat = generate_design({**base, "orientation": "in-plane"}, 5, RES)
    assert tau(up, 0) < tau(up, 1)
    assert tau(flat, 0) > tau(flat, 1)
    assert tau(up, 0) < tau(flat, 0)


def test_composite_generator_and_its_objectives():
    p = {"active_fraction": 0.5, "se_fraction": 0.35, "se_radius": 1e-6, "mean_radius": 2e-6}
    ms = generate_design(p, 4, ((24, 24, 24), 0.5e-6))  # inferred: composite
    assert ms.metadata["design"]["generator"] == "composite"
    fr = ms.volume_fractions()
    assert fr["active"] == pytest.approx(0.5, abs=0.01)
    assert fr["se"] == pytest.approx(0.35, abs=0.01)
    o = evaluate_design(
        p,
        seed=4,
        microstructure=ms,
        objectives=["ionic_transport", "active_volume_fraction"],
    )
    assert o.status == "ok", o.error
    # ε/τ of the solid electrolyte: below its fraction (τ ≥ 1), above 0 (it percolates)
    assert 0 < o.objectives["ionic_transport"] < fr["se"]
    assert o.objectives["ionic_transport"] == pytest.approx(fr["se"] / o.metrics["tau_ion"])
    assert set(o.constraints) == {"percolation:solid_electrolyte", "percolation:active"}
    assert o.params["porosity"] == pytest.approx(0.15)  # the voids
    with pytest.raises(InvalidInputError, match=r"needs a cell model"):
        evaluate_design(p, seed=4, microstructure=ms, objectives=["energy_density"])
    with pytest.raises(InvalidInputError, match="do not apply to the composite"):
        generate_design({**p, "calendering": 0.2}, 4, RES)
