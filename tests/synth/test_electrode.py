import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from microbat.core.errors import InvalidInputError
from microbat.synth import electrode

H = 0.5e-6


@pytest.fixture(scope="module")
def cathode():
    return electrode(
        (72, 48, 48), voxel_size=H, mean_radius=3e-6, separator_thickness=4e-6, seed=12
    )


def test_phases_and_fractions(cathode):
    ms = cathode
    assert ms.phases.to_spec() == (
        "pore:electrolyte=0,cbd:carbon_binder=1,active:active=2,separator:separator=3"
    )
    assert ms.shape == (72, 48, 48)
    n_el = 72 - 8
    el = ms.labels[:n_el]
    n = el.size
    assert abs((el == 2).mean() - 0.55) <= 1 / n
    assert abs((el == 1).mean() - 0.10) <= 1 / n
    assert (el == 3).sum() == 0
    sep = ms.labels[n_el:]
    assert set(np.unique(sep)) == {0, 3}
    assert (sep == 0).mean() == pytest.approx(0.4, abs=1e-3)


def test_metadata(cathode):
    meta = cathode.metadata
    assert meta["generator"]["seed"] == 12
    assert meta["generator"]["active_fraction"] == 0.55
    assert meta["particles"]["n_particles"] > 50
    assert meta["provenance"]["function"] == "microbat.synth.electrode"
    assert meta["carbon_binder"]["model"] == "neck"
    assert meta["separator"]["n_voxels"] == 8
    json.dumps(meta, allow_nan=False)


def test_solid_percolates_and_pores_connect(cathode):
    ms = cathode
    active = ms.labels[:64] == 2
    lab, _ = ndi.label(active)  # 6-connectivity
    assert np.intersect1d(np.unique(lab[0]), np.unique(lab[-1])).max() > 0
    pore = ms.labels == 0
    lab, _ = ndi.label(pore, structure=np.ones((3, 3, 3)))  # pores: 26-connectivity
    assert np.intersect1d(np.unique(lab[0]), np.unique(lab[-1])).max() > 0


def test_seed_and_axis():
    a = electrode((40, 40, 40), voxel_size=H, mean_radius=3e-6, seed=1)
    b = electrode((40, 40, 40), voxel_size=H, mean_radius=3e-6, seed=1)
    c = electrode((40, 40, 40), voxel_size=H, mean_radius=3e-6, seed=2)
    assert a == b and a != c
    assert a.phases.names == ("pore", "cbd", "active")
    d = electrode(
        (32, 32, 48),
        voxel_size=H,
        mean_radius=3e-6,
        thickness_axis=2,
        separator_thickness=2e-6,
        seed=1,
    )
    assert d.thickness_axis == 2
    assert set(np.unique(d.labels[:, :, -4:])) == {0, 3}


def test_no_cbd_keeps_table():
    ms = electrode((40, 40, 40), voxel_size=H, mean_radius=3e-6, cbd_fraction=0.0, seed=1)
    assert ms.phases.names == ("pore", "cbd", "active")
    assert ms.counts()["cbd"] == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"active_fraction": 0.7, "cbd_fraction": 0.3}, "leaves no pore"),
        ({"cbd_fraction": -0.1}, "cbd_fraction"),
        ({"separator_thickness": -1e-6}, "separator_thickness"),
        ({"separator_thickness": 0.1e-6}, "half a voxel"),
        ({"separator_thickness": 40e-6}, "no room"),
        ({"cbd_model": "glue"}, "model"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        electrode((40, 40, 40), voxel_size=H, mean_radius=3e-6, **kwargs)
