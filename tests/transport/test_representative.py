"""The representative-volume check: closed-form spread, small and large samples, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from microbat import synth
from microbat.core.errors import InvalidInputError
from microbat.core.microstructure import Microstructure
from microbat.transport import representative_volume


def _bernoulli(n: int, p: float, seed: int) -> Microstructure:
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, n, n)) < p).astype(np.uint8)  # 1 = pore
    return Microstructure(labels, 1e-6, "active=0,pore=1")


def test_uncorrelated_voxels_follow_the_binomial_spread():
    """Independent voxels: D(V) = sqrt(p (1 - p) / V) exactly, so γ = 1."""
    p, n = 0.4, 64
    ms = _bernoulli(n, p, 0)
    r = representative_volume(ms, axes=(), fractions=(0.125, 0.2, 0.25), samples=64, seed=0)
    por = r.properties["porosity"]
    assert por.n == (64, 64, 64)  # sampling error of each std about 9 %
    for edge, std in zip(por.edges, por.std, strict=True):
        expected = math.sqrt(p * (1 - p) / np.prod(edge))
        assert std == pytest.approx(expected, rel=0.25)
    assert por.gamma == pytest.approx(1.0, abs=0.3)
    assert por.std_full == pytest.approx(math.sqrt(p * (1 - p) / n**3), rel=0.3)
    assert por.ci95 == pytest.approx(1.959964 * por.std_full)
    assert por.representative is True and r.representative


def test_a_few_particles_are_flagged_and_many_pass():
    coarse = synth.electrode((48, 48, 48), voxel_size=5e-7, mean_radius=4e-6, seed=2)
    small = representative_volume(coarse, axes=(0,), seed=0)
    assert not small.representative
    assert "deff_0" in small.not_representative
    lo, hi = small.tau_interval(0)
    assert lo < 1.0 / small.properties["deff_0"].value * small.properties["porosity"].value < hi

    fine = synth.electrode((96, 96, 96), voxel_size=5e-7, mean_radius=1.5e-6, radius_cv=0.2, seed=2)
    large = representative_volume(fine, axes=(0,), seed=0)
    assert large.representative, large.to_dict()
    assert large.properties["deff_0"].relative_ci95 < small.properties["deff_0"].relative_ci95


def test_blocks_without_a_path_count_as_zero_diffusivity():
    labels = np.zeros((32, 32, 32), np.uint8)
    labels[:, :16, :16] = 1  # pore column along axis 0 in one quadrant
    ms = Microstructure(labels, 1e-6, "active=0,pore=1")
    r = representative_volume(ms, axes=(0,), fractions=(0.5,), samples=8, seed=0)
    d = r.properties["deff_0"]
    assert d.n == (8,) and d.n_not_percolating == (6,)  # 2 of 8 octants hold the column
    assert d.mean[0] == pytest.approx(2 / 8)  # D_eff/D0 = 1 in a full pore block


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"fractions": (0.6,)}, "fractions"),
        ({"fractions": ()}, "fractions"),
        ({"samples": 1}, "samples"),
        ({"tolerance": 0.0}, "tolerance"),
        ({"fractions": (0.05,)}, "too small"),
    ],
)
def test_bad_settings_are_refused(kw, match):
    ms = _bernoulli(32, 0.5, 1)
    with pytest.raises(InvalidInputError, match=match):
        representative_volume(ms, axes=(), **kw)


def test_a_2d_image_is_refused():
    ms = Microstructure(np.zeros((16, 16), np.uint8), 1e-6, "pore=0")
    with pytest.raises(InvalidInputError, match="3D"):
        representative_volume(ms, axes=())
