"""Percolation of random composite cathodes against the share of the electrolyte."""

from __future__ import annotations

import numpy as np
import pytest

from microbat.core.errors import InvalidInputError
from microbat.ssb.percolation import percolation_probability


def test_spanning_rises_with_the_share():
    r = percolation_probability([0.1, 0.6], n_samples=2, shape=(40, 40, 40), radius=0.75e-6)
    assert r.probability.tolist() == [0.0, 1.0]
    assert r.threshold is not None and 0.1 < r.threshold < 0.6
    act = percolation_probability([0.9], phase="active", n_samples=1, shape=(40, 40, 40),
                                  radius=0.75e-6)  # fmt: skip
    assert act.probability.tolist() == [1.0]


@pytest.mark.slow
def test_threshold_in_the_literature_range():
    """Random equal-sphere packings: p_c ≈ 0.31 (jammed); digital contacts raise it a little."""
    shares = [0.25, 0.3, 0.325, 0.35, 0.375, 0.4, 0.45]
    r = percolation_probability(shares, n_samples=12, shape=(64, 64, 64), radius=1e-6)
    assert np.all(np.diff(r.probability) >= -0.2)  # monotonic within the sampling noise
    assert r.threshold is not None and 0.29 <= r.threshold <= 0.40


def test_bad_input():
    with pytest.raises(InvalidInputError):
        percolation_probability([0.0, 0.5])
    with pytest.raises(InvalidInputError):
        percolation_probability([0.5], phase="cbd")
