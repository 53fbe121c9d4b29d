import numpy as np
import pytest
from scipy.spatial import cKDTree

from microbat import Microstructure
from microbat.core.errors import InvalidInputError, PhaseError
from microbat.synth import add_carbon_binder, packing

H = 0.5e-6


@pytest.fixture(scope="module")
def pk():
    return packing((64, 56, 56), voxel_size=H, active_fraction=0.5, mean_radius=3e-6, seed=3)


def contact_points(p) -> np.ndarray:
    """Points on the line of centres of touching particles (spheres), periodic in-plane."""
    L = np.array(p.shape) * H
    tree = cKDTree(p.centres, boxsize=np.where(p.periodic, L, 10 * L))
    pairs = tree.query_pairs(2 * p.radii.max(), output_type="ndarray")
    i, j = pairs[:, 0], pairs[:, 1]
    d = p.centres[j] - p.centres[i]
    for ax in range(3):
        if p.periodic[ax]:
            d[:, ax] -= L[ax] * np.round(d[:, ax] / L[ax])
    dist = np.linalg.norm(d, axis=1)
    touch = dist < p.radii[i] + p.radii[j]
    i, d, dist = i[touch], d[touch], dist[touch]
    # the contact sits between the two surfaces along the line of centres
    t = (p.radii[i] + (dist - p.radii[i] - p.radii[j][touch]) / 2) / dist
    pts = p.centres[i] + d * t[:, None]
    return np.mod(pts, np.where(p.periodic, L, np.inf))


@pytest.mark.parametrize("fraction", [0.05, 0.12])
def test_cbd_only_in_pore_at_target_fraction(pk, fraction):
    ms = add_carbon_binder(pk, fraction=fraction)
    assert ms.phases.to_spec() == "pore:electrolyte=0,cbd:carbon_binder=1,active:active=2"
    lab = ms.labels
    # active voxels unchanged, carbon-binder only where the packing had pore
    assert np.array_equal(lab == 2, pk.labels)
    assert not (lab == 1)[pk.labels].any()
    assert abs(ms.fraction("cbd") - fraction) <= 1 / lab.size
    assert ms.metadata["carbon_binder"]["fraction"] == ms.fraction("cbd")


def test_cbd_near_contacts(pk):
    ms = add_carbon_binder(pk, fraction=0.08)
    pts = contact_points(pk)
    assert len(pts) > 50
    L = np.array(pk.shape) * H
    tree = cKDTree(pts, boxsize=np.where(pk.periodic, L, 10 * L))
    cbd = np.argwhere(ms.labels == 1)
    pore = np.argwhere(ms.labels == 0)
    rng = np.random.default_rng(0)
    cbd = cbd[rng.choice(len(cbd), 3000, replace=False)]
    pore = pore[rng.choice(len(pore), 3000, replace=False)]
    d_cbd, _ = tree.query((cbd + 0.5) * H)
    d_pore, _ = tree.query((pore + 0.5) * H)
    # carbon-binder sits much closer to contacts than the remaining pore space
    assert np.median(d_cbd) < 0.6 * np.median(d_pore)
    from scipy.stats import mannwhitneyu

    assert mannwhitneyu(d_cbd, d_pore, alternative="less").pvalue < 1e-10


def test_cbd_is_thin_and_touches_active(pk):
    from scipy import ndimage as ndi

    ms = add_carbon_binder(pk, fraction=0.08)
    cbd = ms.labels == 1
    # thin: the inscribed-ball radius of carbon-binder voxels is a few voxels at most
    d = ndi.distance_transform_edt(cbd)
    assert np.percentile(d[cbd], 95) <= 3.0
    # attached: almost every carbon-binder voxel is within 2 voxels of active material
    near = ndi.binary_dilation(ms.labels == 2, iterations=2)
    assert near[cbd].mean() > 0.95
    # and no carbon-binder floats free: every cluster wets a particle (periodic in-plane)
    wrap = np.pad(ms.labels, ((0, 0), (4, 4), (4, 4)), mode="wrap")
    comp, n = ndi.label(wrap == 1, structure=np.ones((3, 3, 3)))
    hit = np.unique(comp[ndi.binary_dilation(wrap == 2) & (wrap == 1)])
    assert set(hit[hit > 0]) == set(range(1, n + 1))


def test_film_model_coats_surfaces(pk):
    from scipy import ndimage as ndi

    film = add_carbon_binder(pk, fraction=0.08, model="film")
    neck = add_carbon_binder(pk, fraction=0.08, model="neck")
    pad = ((0, 0), (8, 8), (8, 8))  # in-plane axes are periodic
    dist = ndi.distance_transform_edt(np.pad(~pk.labels, pad, mode="wrap"))[:, 8:-8, 8:-8]
    # a film hugs the surface: the first voxel layer on the solid
    assert dist[film.labels == 1].max() <= 1.5
    # necks fill gaps, so they reach further from the surface than the film
    assert dist[neck.labels == 1].max() > dist[film.labels == 1].max()
    # and the film covers more of the particle surface than the same volume of necks
    surface = (dist > 0) & (dist <= 1.0)
    cover_film = (film.labels == 1)[surface].mean()
    cover_neck = (neck.labels == 1)[surface].mean()
    assert cover_film > 0.5
    assert cover_film > cover_neck + 0.05


def test_roughness_seeded(pk):
    a = add_carbon_binder(pk, fraction=0.08, roughness=0.3, seed=1)
    b = add_carbon_binder(pk, fraction=0.08, roughness=0.3, seed=1)
    c = add_carbon_binder(pk, fraction=0.08, roughness=0.3, seed=2)
    d = add_carbon_binder(pk, fraction=0.08)
    assert a == b
    assert a != c and a != d
    assert a.fraction("cbd") == pytest.approx(0.08, abs=1e-5)


def test_from_microstructure_closing_model(pk):
    two = pk.to_microstructure()
    ms = add_carbon_binder(two, fraction=0.06)
    assert ms.phases.names == ("pore", "cbd", "active")
    assert np.array_equal(ms.labels == 2, pk.labels)
    assert ms.fraction("cbd") == pytest.approx(0.06, abs=1e-5)
    # the closing model also fills necks first: most of it lies next to two particles
    ids = pk.particle_ids
    from scipy import ndimage as ndi

    fp = np.ones((5, 5, 5), bool)
    hi = ndi.maximum_filter(ids, footprint=fp)
    lo = ndi.minimum_filter(np.where(ids > 0, ids, np.iinfo(np.int32).max), footprint=fp)
    two_particles = hi != lo
    cbd = ms.labels == 1
    pore = ms.labels == 0
    assert two_particles[cbd].mean() > two_particles[pore].mean() + 0.2


def test_from_array_and_other_tables(pk):
    ms = add_carbon_binder(pk.labels, fraction=0.05, voxel_size=H)
    assert ms.fraction("cbd") == pytest.approx(0.05, abs=1e-5)
    custom = Microstructure(np.where(pk.labels, 5, 3).astype(np.uint8), H, "electrolyte=3,nmc=5")
    out = add_carbon_binder(custom, fraction=0.05, model="film")
    assert out.phases.names == ("electrolyte", "nmc", "cbd")
    assert out.phases["cbd"].label == 6
    assert out.fraction("cbd") == pytest.approx(0.05, abs=1e-5)


def test_zero_fraction(pk):
    ms = add_carbon_binder(pk, fraction=0.0)
    assert ms.counts()["cbd"] == 0
    assert np.array_equal(ms.labels == 2, pk.labels)


def test_bad_input(pk):
    with pytest.raises(InvalidInputError, match="exceeds the pore fraction"):
        add_carbon_binder(pk, fraction=0.6)
    with pytest.raises(InvalidInputError, match="fraction"):
        add_carbon_binder(pk, fraction=-0.1)
    with pytest.raises(InvalidInputError, match="model"):
        add_carbon_binder(pk, fraction=0.1, model="glue")
    with pytest.raises(InvalidInputError, match="voxel_size"):
        add_carbon_binder(pk.labels, fraction=0.1)
    with pytest.raises(InvalidInputError, match="3D"):
        add_carbon_binder(pk.labels[0], fraction=0.1, voxel_size=H)
    solid = Microstructure(np.ones((8, 8, 8), np.uint8), H, "active=1")
    with pytest.raises(PhaseError, match="electrolyte"):
        add_carbon_binder(solid, fraction=0.1)
