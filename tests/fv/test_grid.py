import numpy as np
import pytest

from microbat.core.errors import InvalidInputError
from microbat.fv.connectivity import components, spanning_mask, touching_mask
from microbat.fv.grid import (
    as_3d,
    coefficient_classes,
    coefficient_field,
    face_areas,
    face_conductances,
    harmonic_mean,
    interface_faces,
)


def test_coefficient_field_and_classes_agree():
    lab = np.array([[[0, 1, 2, 3]]], np.uint8)
    values = {0: 1.0, 2: 0.1, 3: 1.0}
    field = coefficient_field(lab, values)
    assert field.tolist() == [[[1.0, 0.0, 0.1, 1.0]]]
    cls = coefficient_classes(lab, values)
    assert cls.values[0] == 0.0
    assert np.array_equal(cls.expand(), field)
    assert cls.classes[0, 0, 0] == cls.classes[0, 0, 3]  # equal values share a class


@pytest.mark.parametrize("bad", [-1.0, np.nan, np.inf])
def test_coefficients_refuse_bad_values(bad):
    lab = np.zeros((2, 2, 2), np.uint8)
    with pytest.raises(InvalidInputError, match="non-negative"):
        coefficient_field(lab, {0: bad})
    with pytest.raises(InvalidInputError, match="non-negative"):
        coefficient_classes(lab, {0: bad})


def test_too_many_classes():
    lab = np.arange(20, dtype=np.uint8).reshape(1, 1, 20)
    with pytest.raises(InvalidInputError, match="at most 15"):
        coefficient_classes(lab, {i: float(i + 1) for i in range(20)})


def test_harmonic_mean_zero_blocks():
    a = np.array([1.0, 2.0, 0.0, 3.0])
    b = np.array([1.0, 6.0, 5.0, 0.0])
    assert harmonic_mean(a, b).tolist() == [1.0, 3.0, 0.0, 0.0]


def test_face_conductances_anisotropic():
    h = (1e-6, 2e-6, 4e-6)
    k = np.full((3, 3, 3), 2.0)
    k[1, 1, 1] = 0.5
    g = face_conductances(k, h)
    areas = face_areas(h)
    assert areas == pytest.approx((8e-12, 4e-12, 2e-12))
    # interior face between two k=2 voxels along axis 0: k A/h
    assert g[0][0, 0, 0] == pytest.approx(2.0 * 8e-12 / 1e-6)
    # face between k=2 and k=0.5 along axis 2: harmonic mean 0.8
    assert g[2][1, 1, 0] == pytest.approx(0.8 * 2e-12 / 4e-6)
    # the last layer of a non-periodic axis carries no face
    assert np.all(g[1][:, -1, :] == 0)
    gp = face_conductances(k, h, periodic=(False, True, False))
    assert gp[1][0, -1, 0] == pytest.approx(2.0 * 4e-12 / 2e-6)


def test_interface_faces_of_a_cube():
    lab = np.zeros((5, 5, 5), np.uint8)
    lab[1:4, 1:4, 1:4] = 1
    f = interface_faces(lab, [1], [0], (1e-6, 1e-6, 1e-6))
    assert f.n_faces == 6 * 9
    assert f.total_area == pytest.approx(54e-12)
    flat = lab.reshape(-1)
    assert np.all(flat[f.side_a] == 1) and np.all(flat[f.side_b] == 0)
    # neighbours differ by one step along the reported axis
    a = np.array(np.unravel_index(f.side_a, lab.shape))
    b = np.array(np.unravel_index(f.side_b, lab.shape))
    d = np.abs(a - b)
    assert np.all(d.sum(axis=0) == 1)
    assert np.all(d[f.axis, np.arange(f.n_faces)] == 1)
    with pytest.raises(InvalidInputError, match="disjoint"):
        interface_faces(lab, [0, 1], [1], (1e-6,) * 3)


def test_interface_faces_across_periodic_seam():
    lab = np.zeros((4, 1, 1), np.uint8)
    lab[0] = 1
    h = (1.0, 1.0, 1.0)
    assert interface_faces(lab, [1], [0], h).n_faces == 1
    assert interface_faces(lab, [1], [0], h, periodic=(True, False, False)).n_faces == 2


def test_as_3d():
    a2 = np.zeros((3, 4))
    a3, h = as_3d(a2, (1e-6, 2e-6))
    assert a3.shape == (3, 4, 1) and h == (1e-6, 2e-6, 1.0)
    with pytest.raises(InvalidInputError):
        as_3d(a2, (1e-6,))


def test_components_merge_across_periodic_seams():
    m = np.zeros((6, 6, 1), bool)
    m[0, :3, 0] = True
    m[-1, :3, 0] = True
    m[2:4, 5, 0] = True
    lab, n = components(m)
    assert n == 3
    lab, n = components(m, periodic=(True, False, False))
    assert n == 2
    assert lab[0, 0, 0] == lab[-1, 0, 0] != lab[2, 5, 0]
    assert sorted(np.unique(lab).tolist()) == [0, 1, 2]


def test_spanning_and_touching():
    m = np.zeros((8, 5, 5), bool)
    m[:, 1, 1] = True  # spans axis 0
    m[:4, 3, 3] = True  # dead end from the first side
    m[2:5, 3, 1] = True  # floating
    span = spanning_mask(m, 0)
    assert span.sum() == 8 and span[:, 1, 1].all()
    assert not spanning_mask(m, 1).any()
    lab, _ = components(m)
    either = touching_mask(lab, [(0, 0), (0, -1)], require_all=False)
    assert either.sum() == 12
