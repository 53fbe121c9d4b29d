"""The shared cluster-labelling kernel, and the two connectivity modules agreeing on it."""

import itertools

import numpy as np
import pytest

from microbat import Microstructure
from microbat.core.clusters import face_touch, label_clusters, side_touch
from microbat.core.errors import InvalidInputError
from microbat.fv.connectivity import components, spanning_mask, touching_mask
from microbat.imaging import _morph
from microbat.imaging.connectivity import ClusterClass, analyze_connectivity, transport_mask


def _reference_components(mask, periodic):
    """Face components by breadth-first search, with wrap-around on periodic axes."""
    lab = np.zeros(mask.shape, np.int64)
    n = 0
    for start in zip(*np.nonzero(mask), strict=True):
        if lab[start]:
            continue
        n += 1
        lab[start] = n
        todo = [start]
        while todo:
            p = todo.pop()
            for a, d in itertools.product(range(mask.ndim), (-1, 1)):
                q = list(p)
                q[a] += d
                if not 0 <= q[a] < mask.shape[a]:
                    if not periodic[a]:
                        continue
                    q[a] %= mask.shape[a]
                q = tuple(q)
                if mask[q] and not lab[q]:
                    lab[q] = n
                    todo.append(q)
    return lab, n


def _same_partition(a, b):
    pairs = set(zip(a.ravel().tolist(), b.ravel().tolist(), strict=True))
    return len(pairs) == len({x for x, _ in pairs}) == len({y for _, y in pairs})


def _masks(seed, count, ndim=3):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        shape = tuple(int(s) for s in rng.integers(1, 8, ndim))
        yield rng.random(shape) < rng.uniform(0.25, 0.75), rng


def test_label_clusters_matches_a_breadth_first_search():
    for mask, rng in _masks(1, 60):
        periodic = tuple(bool(p) for p in rng.integers(0, 2, 3))
        lab, n = label_clusters(mask, 6, periodic=periodic)
        ref, n_ref = _reference_components(mask, periodic)
        assert lab.dtype == np.int32
        assert n == n_ref
        assert _same_partition(lab, ref)
        assert sorted(np.unique(lab[mask]).tolist()) == list(range(1, n + 1))


def test_periodic_needs_face_connectivity():
    mask = np.ones((3, 3, 3), bool)
    with pytest.raises(InvalidInputError, match="face connectivity"):
        label_clusters(mask, 26, periodic=(True, False, False))
    assert label_clusters(mask, 26, periodic=(False, False, False))[1] == 1


def test_side_touch_and_face_touch():
    lab = np.array([[[1, 0, 2]], [[0, 3, 2]]], np.int32)  # shape (2, 1, 3)
    first, last = face_touch(lab, 3, 0)
    assert first.tolist() == [False, True, True, False]
    assert last.tolist() == [False, False, True, True]
    assert side_touch(lab, 3, 2, -1).tolist() == [False, False, True, False]


def test_fv_and_imaging_label_the_same_clusters():
    for mask, _ in _masks(2, 40):
        lab_fv, n_fv = components(mask)
        lab_im, n_im = _morph.label_clusters(mask, 6)
        assert n_fv == n_im
        np.testing.assert_array_equal(lab_fv, lab_im)
        assert lab_fv.dtype == lab_im.dtype
        for axis in range(3):
            first, last = _morph.face_touch(lab_im, n_im, axis)
            np.testing.assert_array_equal(
                touching_mask(lab_fv, [(axis, 0), (axis, -1)]), (first & last)[lab_im]
            )
            np.testing.assert_array_equal(
                touching_mask(lab_fv, [(axis, 0), (axis, -1)], require_all=False),
                (first | last)[lab_im],
            )


def test_transport_mask_is_the_fv_spanning_mask():
    rng = np.random.default_rng(3)
    for _ in range(30):
        shape = tuple(int(s) for s in rng.integers(2, 9, 3))
        labels = (rng.random(shape) < rng.uniform(0.3, 0.7)).astype(np.uint8)
        labels.flat[:2] = (0, 1)  # both phases present
        ms = Microstructure(labels, voxel_size=1e-6, phases="pore=0,active=1")
        for axis in range(3):
            for phase, value in (("pore", 0), ("active", 1)):
                fv = spanning_mask(labels == value, axis)
                np.testing.assert_array_equal(transport_mask(ms, phase, axis=axis), fv)
                cmap = analyze_connectivity(ms, axis=axis, phases=phase, connectivity=6)
                np.testing.assert_array_equal(
                    cmap.class_maps[phase] == ClusterClass.PERCOLATING, fv
                )
