"""The composite-cathode generator and the existing analyses on its output."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from microbat.core.errors import InvalidInputError
from microbat.core.phases import PhaseRole
from microbat.synth import COMPOSITE_PHASES, composite_cathode

H = 0.2e-6


@pytest.fixture(scope="module")
def comp():
    return composite_cathode(
        (48, 40, 40),
        voxel_size=H,
        active_fraction=0.45,
        electrolyte_fraction=0.38,
        binder_fraction=0.04,
        active_radius=1.4e-6,
        electrolyte_radius=0.5e-6,
        separator_thickness=1e-6,
        seed=3,
    )


def test_fractions_exact_and_table(comp):
    gen = comp.metadata["generator"]
    ach = gen["achieved"]
    n = 43 * 40 * 40  # composite voxels (5 separator layers excluded)
    for name, target in (("active", 0.45), ("se", 0.38), ("cbd", 0.04), ("void", 0.13)):
        assert abs(ach[name] - target) <= 1.5 / n
    assert comp.phases == COMPOSITE_PHASES
    assert comp.phases["se"].role == PhaseRole.SOLID_ELECTROLYTE
    assert comp.phases["void"].role == PhaseRole.GAS
    assert np.all(comp.labels[-5:] == 3)  # the dense separator layer
    assert gen["n_active_particles"] > 0 and gen["n_electrolyte_particles"] > 0


def test_seeded():
    a = composite_cathode((32, 32, 32), voxel_size=H, active_radius=1e-6, seed=5)
    b = composite_cathode((32, 32, 32), voxel_size=H, active_radius=1e-6, seed=5)
    c = composite_cathode((32, 32, 32), voxel_size=H, active_radius=1e-6, seed=6)
    assert np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.labels, c.labels)


def test_no_voids_fills_everything():
    ms = composite_cathode(
        (32, 32, 32), voxel_size=H, active_fraction=0.6, electrolyte_fraction=0.4,
        active_radius=1e-6, seed=1,
    )  # fmt: skip
    assert ms.volume_fractions()["void"] == 0.0
    assert abs(ms.volume_fractions()["se"] - 0.4) < 1e-4


@pytest.mark.parametrize(
    "kwargs",
    [
        {"active_fraction": 0.6, "electrolyte_fraction": 0.5},
        {"electrolyte_fraction": 0.0},
        {"active_radius": 0.1e-6},
        {"separator_thickness": 10e-6},
        {"max_overlap": 1.0},
    ],
)
def test_bad_input(kwargs):
    args = {"voxel_size": H, "active_radius": 1e-6, "seed": 0, **kwargs}
    with pytest.raises(InvalidInputError):
        composite_cathode((32, 32, 32), **args)


def test_metrics_connectivity_transport(comp):
    """Every existing analysis takes the composite, the electrolyte named by role."""
    from microbat.imaging.connectivity import analyze_connectivity
    from microbat.imaging.metrics import characterize
    from microbat.transport.conduction import conductivity
    from microbat.transport.diffusion import tortuosity

    m = characterize(comp)
    assert m.interface_areas[("active", "se")] > 0
    con = analyze_connectivity(comp, axis=0)
    counts = con.cluster_counts["se"]
    assert counts["percolating"] >= 1  # the electrolyte network reaches the separator
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tau = tortuosity(comp, phase="solid_electrolyte", axis=0)
        sig = conductivity(comp, conductivities={"solid_electrolyte": 0.05}, axis=0)
    assert tau.percolating[0] and 1.0 < tau.tau[0] < 20.0
    assert sig.kind == "ionic"
    # sigma_eff = sigma * eps / tau (same network, same boundary convention)
    assert sig.sigma_eff[0] == pytest.approx(0.05 * tau.porosity / tau.tau[0], rel=2e-3)
