import json
import math

import numpy as np
import pytest
from scipy import ndimage as ndi
from scipy import stats

from microbat.core.errors import InvalidInputError, MicrobatError
from microbat.synth import Packing, PackingWarning, packing, render_particles

H = 0.5e-6


@pytest.fixture(scope="module")
def dense() -> Packing:
    return packing((80, 64, 64), voxel_size=H, active_fraction=0.55, mean_radius=3e-6, seed=7)


def spans(mask: np.ndarray, axis: int) -> bool:
    """A 6-connected component of mask touches both faces along axis."""
    lab, _ = ndi.label(mask)  # default structure: 6-connectivity
    first = np.unique(np.take(lab, 0, axis=axis))
    last = np.unique(np.take(lab, -1, axis=axis))
    return bool(np.intersect1d(first[first > 0], last[last > 0]).size)


@pytest.mark.parametrize("phi", [0.3, 0.45, 0.6])
def test_fraction_hits_target(phi):
    p = packing((56, 48, 48), voxel_size=H, active_fraction=phi, mean_radius=3e-6, seed=1)
    n = p.labels.size
    # the scale quantile makes the voxel fraction exact to one voxel
    assert abs(p.active_fraction - phi) <= 1.0 / n
    assert p.labels.mean() == pytest.approx(p.active_fraction)
    assert abs(p.scale - 1.0) <= 0.02
    assert p.n_clusters == 1


def test_ids_consistent_with_labels(dense):
    p = dense
    assert p.particle_ids.dtype == np.int32
    assert np.array_equal(p.labels, p.particle_ids > 0)
    assert p.particle_ids.max() <= p.n_particles
    assert p.centres.shape == (p.n_particles, 3)
    assert p.semi_axes.shape == (p.n_particles, 3)
    assert np.allclose(np.cbrt(np.prod(p.semi_axes, axis=1)), p.radii)
    # every particle's centre voxel (inside the box) belongs to some particle
    idx = np.floor(p.centres / H).astype(int)
    idx = np.minimum(idx, np.array(p.shape) - 1)
    assert p.labels[tuple(idx.T)].all()


def test_radius_distribution_lognormal():
    r_mean, cv = 3e-6, 0.3
    p = packing(
        (96, 96, 96), voxel_size=H, active_fraction=0.5, mean_radius=r_mean, radius_cv=cv, seed=11
    )
    drawn = p.radii / p.scale
    n = drawn.size
    assert n > 300
    se = cv * r_mean / math.sqrt(n)
    assert abs(drawn.mean() - r_mean) < 4 * se
    # the reported radii include the common scale, so they stay within 2 % more
    assert abs(p.radii.mean() - r_mean) < 4 * se + 0.02 * r_mean
    sample_cv = drawn.std(ddof=1) / drawn.mean()
    assert abs(sample_cv - cv) < 0.05
    s2 = math.log1p(cv * cv)
    ks = stats.kstest(np.log(drawn), "norm", args=(math.log(r_mean) - s2 / 2, math.sqrt(s2)))
    assert ks.pvalue > 1e-3
    # and the wrong law is rejected
    ks_bad = stats.kstest(np.log(drawn), "norm", args=(math.log(r_mean), 0.1))
    assert ks_bad.pvalue < 1e-3


def test_monodisperse():
    p = packing(
        (48, 48, 48), voxel_size=H, active_fraction=0.4, mean_radius=3e-6, radius_cv=0.0, seed=2
    )
    assert np.allclose(p.radii, p.radii[0])


def test_same_seed_same_packing_different_seed_differs():
    kw = dict(voxel_size=H, active_fraction=0.5, mean_radius=3e-6)
    a = packing((40, 40, 40), seed=5, **kw)
    b = packing((40, 40, 40), seed=5, **kw)
    c = packing((40, 40, 40), seed=6, **kw)
    assert np.array_equal(a.particle_ids, b.particle_ids)
    assert np.array_equal(a.centres, b.centres)
    assert not np.array_equal(a.labels, c.labels)
    d = packing((40, 40, 40), seed=np.random.default_rng(5), **kw)
    assert d.provenance.seed is None and a.provenance.seed == 5


def test_serial_equals_parallel():
    import numba

    kw = dict(voxel_size=H, active_fraction=0.5, mean_radius=3e-6, seed=3)
    par = packing((40, 40, 40), **kw)
    old = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        ser = packing((40, 40, 40), **kw)
    finally:
        numba.set_num_threads(old)
    assert np.array_equal(par.particle_ids, ser.particle_ids)


@pytest.mark.parametrize("axis", [0, 2])
def test_spheroids_aligned_with_axis(axis):
    p = packing(
        (64, 64, 64),
        voxel_size=H,
        active_fraction=0.4,
        mean_radius=3e-6,
        aspect_ratio=2.5,
        orientation=axis,
        orientation_spread=0.1,
        seed=4,
    )
    # requested direction in the particle list
    assert np.median(np.abs(p.orientations[:, axis])) > 0.98
    # and in the voxels: the long principal axis of each particle's second-moment tensor
    ids = p.particle_ids
    idx = np.arange(1, p.n_particles + 1)
    counts = ndi.sum_labels(np.ones_like(ids), ids, idx)
    grids = np.indices(ids.shape, dtype=float)
    mean = [ndi.mean(grids[k], ids, idx) for k in range(3)]
    cov = np.empty((len(idx), 3, 3))
    for a in range(3):
        for b in range(a, 3):
            c = ndi.mean(grids[a] * grids[b], ids, idx) - mean[a] * mean[b]
            cov[:, a, b] = cov[:, b, a] = c
    keep = counts > 200  # whole, well-resolved particles (periodic wrap cut excluded below)
    for k in range(3):
        span = ndi.maximum(grids[k], ids, idx) - ndi.minimum(grids[k], ids, idx)
        keep &= span < ids.shape[k] - 1
    assert keep.sum() >= 10
    _, vecs = np.linalg.eigh(cov[keep])
    long_axis = vecs[:, :, -1]
    assert np.median(np.abs(long_axis[:, axis])) > 0.95


def test_random_orientation_isotropic():
    p = packing(
        (48, 48, 48),
        voxel_size=H,
        active_fraction=0.4,
        mean_radius=2.5e-6,
        aspect_ratio=0.5,
        orientation=None,
        seed=8,
    )
    m = (p.orientations**2).mean(axis=0)
    assert np.allclose(m, 1 / 3, atol=0.1)
    assert np.allclose(np.linalg.norm(p.orientations, axis=1), 1.0)


@pytest.mark.parametrize("phi", [0.45, 0.55, 0.65])
def test_active_percolates_through_thickness(phi):
    p = packing((72, 48, 48), voxel_size=H, active_fraction=phi, mean_radius=3e-6, seed=21)
    assert spans(p.labels, 0)


def test_contacts_and_overlap_limit(dense):
    p = dense
    assert p.coordination_number > 2.0
    # the relaxation bound plus the small common rescaling
    assert p.max_penetration <= 0.2 + 3 * abs(p.scale - 1) + 0.02


def test_periodic_in_plane(dense):
    p = dense
    assert p.periodic == (False, True, True)
    ids = p.particle_ids
    # particles crossing the periodic faces continue on the other side
    for ax in (1, 2):
        lo = np.unique(np.take(ids, 0, axis=ax))
        hi = np.unique(np.take(ids, -1, axis=ax))
        assert np.intersect1d(lo[lo > 0], hi[hi > 0]).size > 0
    lo = np.unique(ids[0])
    hi = np.unique(ids[-1])
    assert np.intersect1d(lo[lo > 0], hi[hi > 0]).size == 0


def test_thickness_axis_option():
    p = packing(
        (40, 40, 56), voxel_size=H, active_fraction=0.5, mean_radius=3e-6, thickness_axis=2, seed=1
    )
    assert p.periodic == (True, True, False)
    assert p.thickness_axis == 2
    assert (p.centres[:, 2] >= 0).all() and (p.centres[:, 2] <= 56 * H).all()
    ms = p.to_microstructure()
    assert ms.thickness_axis == 2
    assert ms.fraction("active") == pytest.approx(0.5, abs=1e-4)


def test_result_serialises(dense):
    d = json.loads(dense.to_json())
    assert d["labels"] == {"shape": [80, 64, 64], "dtype": "bool"}
    assert d["provenance"]["function"] == "microbat.synth.packing"
    assert d["provenance"]["seed"] == 7
    s = dense.summary()
    assert s["n_particles"] == dense.n_particles
    json.dumps(s)


def test_render_particles_single_sphere():
    ids = render_particles(
        (20, 20, 20),
        np.array([[10e-6, 10e-6, 10e-6]]),
        np.array([6e-6]),
        voxel_size=1e-6,
        periodic=(False, False, False),
    )
    vol = (ids == 1).sum()
    assert abs(vol - 4 / 3 * math.pi * 6**3) < 0.05 * 4 / 3 * math.pi * 6**3
    # centred on a voxel corner: the ball is symmetric under every axis flip
    for ax in range(3):
        assert np.array_equal(ids, np.flip(ids, axis=ax))


def test_render_particles_wraps_and_rotates():
    # a prolate spheroid along axis 1 centred on the periodic face wraps around
    rot = np.array([[[1.0, 0, 0], [0, 0, 1], [0, 1, 0]]])  # semi-axis 2 along array axis 1
    ids = render_particles(
        (16, 16, 16),
        np.array([[8e-6, 0.0, 8e-6]]),
        np.array([[2e-6, 2e-6, 5e-6]]),
        rot,
        voxel_size=1e-6,
        periodic=(False, True, False),
    )
    inside = np.argwhere(ids == 1)
    assert set(np.unique(inside[:, 1])) == {0, 1, 2, 3, 4, 11, 12, 13, 14, 15}
    assert np.ptp(inside[:, 0]) <= 4 and np.ptp(inside[:, 2]) <= 4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"active_fraction": 0.0}, "active_fraction"),
        ({"active_fraction": 1.2}, "active_fraction"),
        ({"active_fraction": -0.1}, "active_fraction"),
        ({"mean_radius": -3e-6}, "mean_radius"),
        ({"mean_radius": 0.2e-6}, "smaller than a voxel"),
        ({"mean_radius": 20e-6}, "smaller than one mean"),
        ({"radius_cv": -0.1}, "radius_cv"),
        ({"aspect_ratio": 0.0}, "aspect_ratio"),
        ({"max_overlap": 1.0}, "max_overlap"),
        ({"orientation": 3}, "orientation"),
        ({"orientation": [0, 0, 0]}, "orientation"),
        ({"thickness_axis": 4}, "thickness_axis"),
        ({"seed": "abc"}, "seed"),
    ],
)
def test_bad_input(kwargs, match):
    kw = dict(voxel_size=H, active_fraction=0.5, mean_radius=3e-6, seed=0)
    kw.update(kwargs)
    with pytest.raises(InvalidInputError, match=match):
        packing((32, 32, 32), **kw)


def test_bad_shape_and_voxel_size():
    with pytest.raises(InvalidInputError, match="3D"):
        packing((32, 32), voxel_size=H)
    with pytest.raises(InvalidInputError, match="shape"):
        packing("big", voxel_size=H)
    with pytest.raises(MicrobatError, match="voxel size"):
        packing((32, 32, 32), voxel_size=None)  # type: ignore[arg-type]
    with pytest.raises(MicrobatError, match="micrometres"):
        packing((32, 32, 32), voxel_size=0.5)


def test_poorly_resolved_particles_warn():
    with pytest.warns(PackingWarning, match="voxels"):
        p = packing((24, 24, 24), voxel_size=H, active_fraction=0.4, mean_radius=1.2e-6, seed=0)
    assert abs(p.active_fraction - 0.4) <= 1 / p.labels.size
