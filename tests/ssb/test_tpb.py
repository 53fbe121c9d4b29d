"""Triple-phase boundaries and contact areas on geometries with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from microbat import Microstructure
from microbat.core.errors import InvalidInputError, PhaseError
from microbat.ssb.tpb import contact_area, triple_phase_boundary

H = 1e-6
NONE = {"a": None, "b": None, "c": None}


def _tpb(lab, **kw):
    ms = Microstructure(lab, H, "a=0,b=1,c=2", allow_empty_phases=True)
    kw.setdefault("reservoirs", NONE)
    kw.setdefault("contact", None)
    return triple_phase_boundary(ms, ("a", "b", "c"), **kw)


def test_straight_prism_exact():
    """A prism of a on the b/c interface: two straight lines, no correction needed."""
    lab = np.ones((40, 20, 20), np.uint8)
    lab[:, :, 10:] = 2
    lab[:, 6:10, 10:13] = 0
    r = _tpb(lab)
    assert r.edge_length_m == pytest.approx(2 * 40 * H, rel=1e-12)
    assert r.length_m == pytest.approx(2 * 40 * H, rel=1e-12)
    assert r.correction_factor == pytest.approx(1.0)


def test_anisotropic_voxels_prism():
    lab = np.ones((12, 10, 10), np.uint8)
    lab[:, :, 5:] = 2
    lab[:, 3:6, 5:7] = 0
    ms = Microstructure(lab, (2e-6, 1e-6, 0.5e-6), "a=0,b=1,c=2")
    r = triple_phase_boundary(ms, ("a", "b", "c"), reservoirs=NONE, contact=None)
    assert r.edge_length_m == pytest.approx(2 * 12 * 2e-6)
    assert r.length_m == pytest.approx(2 * 12 * 2e-6)


@pytest.mark.parametrize("radius", [10, 20])
def test_cylinder_circumference(radius):
    """A cylinder of a through the b/c interface meets it on a circle."""
    n = 2 * radius + 12
    lab = np.ones((8, n, n), np.uint8)
    lab[4:] = 2
    j, k = np.ogrid[:n, :n]
    disk = (j - n / 2 + 0.3) ** 2 + (k - n / 2 + 0.1) ** 2 <= radius**2
    lab[:, disk] = 0
    r = _tpb(lab)
    true = 2 * math.pi * radius * H
    assert r.edge_length_m / true == pytest.approx(4 / math.pi, rel=0.01)  # staircase: L1
    assert r.length_m == pytest.approx(true, rel=0.02)


@pytest.mark.parametrize(
    ("theta", "tilt"), [(0.2, 0.0), (math.pi / 6, 0.3), (math.pi / 4, math.atan(2**-0.5))]
)
def test_oblique_lines(theta, tilt):
    """The line where a tilted b/c interface meets the boundary plane of a."""
    n = 128
    x = np.arange(n) + 0.5 - n / 2
    i, j, k = np.meshgrid(x, x, x, indexing="ij", sparse=True)
    m = np.array([math.cos(tilt), 0.0, math.sin(tilt)])
    lab = np.where(i * m[0] + j * m[1] + k * m[2] < 0.1, 1, 2).astype(np.uint8)
    p = np.array([0.0, math.cos(theta), math.sin(theta)])
    p -= p.dot(m) * m
    p /= np.linalg.norm(p)
    lab[np.broadcast_to(i * p[0] + j * p[1] + k * p[2] > 0.3, lab.shape)] = 0
    t = np.cross(m, p)
    t /= np.linalg.norm(t)
    true = 2 * min((n / 2) / abs(c) for c in t if abs(c) > 1e-12) * H  # chord of the box
    r = _tpb(lab)
    assert r.edge_length_m == pytest.approx(true * np.abs(t).sum(), rel=0.015)
    assert r.length_m == pytest.approx(true, rel=0.02)


def test_isotropic_network_factor():
    """On a random three-phase structure the local correction is close to 2/3."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(0)
    f1 = ndi.gaussian_filter(rng.standard_normal((64, 64, 64)), 4)
    f2 = ndi.gaussian_filter(rng.standard_normal((64, 64, 64)), 4)
    lab = np.zeros(f1.shape, np.uint8)
    lab[f1 > 0.2 * f1.std()] = 1
    lab[(lab == 0) & (f2 > 0)] = 2
    r = _tpb(lab)
    assert r.correction_factor == pytest.approx(2 / 3, abs=0.025)
    iso = _tpb(lab, correction="isotropic")
    assert iso.length_m == pytest.approx(iso.edge_length_m / 1.5)
    assert _tpb(lab, correction="none").length_m == pytest.approx(r.edge_length_m)


def _split_geometry():
    """Active slab (a) below se (b) along axis 2; three carbon prisms along axis 0."""
    lab = np.zeros((30, 24, 24), np.uint8)  # active
    lab[:, :, 12:] = 1  # se
    lab[0:10, 8:10, 12:14] = 2  # touches the collector face (axis 0, first layer)
    lab[12:20, 8:10, 12:14] = 2  # touches no face of the image
    lab[22:30, 8:10, 12:14] = 2  # touches the separator face only
    return Microstructure(lab, H, "active=0,se=1,cbd=2")


def test_active_dead_end_isolated_split():
    ms = _split_geometry()
    # the carbon alone must reach the collector: prism 1 active, 2 isolated, 3 dead end
    r = triple_phase_boundary(ms, ("active", "se", "cbd"), network="phase")
    assert r.active_edge_length_m == pytest.approx((2 * 10 + 2) * H)
    assert r.isolated_edge_length_m == pytest.approx((2 * 8 + 2 * 2) * H)
    assert r.dead_end_edge_length_m == pytest.approx((2 * 8 + 2) * H)
    assert r.reservoirs == {"active": [0, 0], "se": [0, -1], "cbd": [0, 0]}
    assert 0.3 < r.active_fraction < 0.42
    # through the electronic network (carbon touching the wired active slab): all active
    r2 = triple_phase_boundary(ms, ("active", "se", "cbd"))
    assert r2.active_fraction == pytest.approx(1.0)
    assert r2.edge_length_m == r.edge_length_m
    # the map holds the active length, four voxels per edge
    assert float(r.active_map.sum()) == pytest.approx(r.active_length_m, rel=1e-5)
    assert np.all(r.active_map[12:] == 0)
    # reservoirs can be overridden: the carbon must reach the separator face instead
    r3 = triple_phase_boundary(
        ms, ("active", "se", "cbd"), network="phase", reservoirs={"cbd": (0, -1)}
    )
    assert r3.active_edge_length_m == pytest.approx((2 * 8 + 2) * H)


def test_isolated_particle_under_both_networks():
    """An active particle with its carbon, enclosed in the electrolyte: dead either way."""
    lab = np.ones((24, 24, 24), np.uint8)  # se everywhere
    lab[:4] = 0  # active layer on the collector, wired
    lab[:4, 10:14, 10:14] = 2  # carbon in it, reaching the se above
    lab[10:16, 8:14, 8:14] = 0  # an enclosed active particle
    lab[10:16, 14:16, 10:12] = 2  # with a carbon bridge on its side
    ms = Microstructure(lab, H, "active=0,se=1,cbd=2")
    for net in ("conductor", "phase"):
        r = triple_phase_boundary(ms, ("active", "se", "cbd"), network=net)
        assert r.isolated_length_m > 0
        assert r.active_length_m > 0
        c = r.contact
        assert c is not None and c.phases == ("active", "se")
        assert c.isolated_area_m2 > 0 and c.active_area_m2 > 0
        assert c.area_m2 == pytest.approx(
            c.active_area_m2 + c.dead_end_area_m2 + c.isolated_area_m2
        )


def test_contact_area_flat_and_sphere():
    lab = np.zeros((16, 16, 16), np.uint8)
    lab[:, :, 8:] = 1
    ms = Microstructure(lab, H, "active=0,se=1")
    flat = contact_area(ms)
    assert flat.area_m2 == pytest.approx(16 * 16 * H * H)
    assert flat.active_fraction == 1.0
    n, rad = 48, 15
    x = np.arange(n) + 0.5 - n / 2
    i, j, k = np.meshgrid(x, x, x, indexing="ij", sparse=True)
    lab = np.where(i * i + j * j + k * k <= rad * rad, 0, 1).astype(np.uint8)
    ms = Microstructure(lab, H, "active=0,se=1")
    sph = contact_area(ms, ("active", "se"))
    assert sph.face_area_m2 / (4 * math.pi * rad**2 * H * H) == pytest.approx(1.5, rel=0.03)
    assert sph.area_m2 == pytest.approx(4 * math.pi * rad**2 * H * H, rel=0.015)
    assert sph.isolated_area_m2 == pytest.approx(sph.area_m2)  # the sphere touches no face


@pytest.mark.parametrize(
    ("phases", "exc"),
    [
        (("a", "b"), InvalidInputError),
        (("a", "b", "a"), InvalidInputError),
        (("a", "b", "d"), PhaseError),
        (("a", "b", "nope"), PhaseError),
    ],
)
def test_bad_phases(phases, exc):
    lab = np.zeros((6, 6, 6), np.uint8)
    lab[:, :, 3:] = 1
    lab[:, :2, 2:4] = 2
    ms = Microstructure(lab, H, "a=0,b=1,c=2,d=3", allow_empty_phases=True)
    with pytest.raises(exc):
        triple_phase_boundary(ms, phases)


def test_bad_options():
    lab = np.zeros((6, 6, 6), np.uint8)
    lab[:, :, 3:] = 1
    lab[:, :2, 2:4] = 2
    ms = Microstructure(lab, H, "a=0,b=1,c=2")
    abc = ("a", "b", "c")
    for kw in (
        {"window": 4},
        {"correction": "magic"},
        {"network": "any"},
        {"reservoirs": {"a": (3, 0)}},
        {"reservoirs": {"z": (0, 0)}},
        {"contact": ("a", "a")},
    ):
        with pytest.raises(InvalidInputError):
            triple_phase_boundary(ms, abc, **kw)
    with pytest.raises(InvalidInputError):
        triple_phase_boundary(Microstructure(lab[:, :, 0], H, "a=0,b=1,c=2"), abc)
