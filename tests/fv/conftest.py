"""Helpers for the finite-volume tests: seeded random voxel structures."""

from __future__ import annotations

import numpy as np
import pytest


def overlapping_spheres(shape, porosity, radius, seed):
    """Pore mask (True = pore) of a Boolean model of overlapping solid spheres."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    vol = float(np.prod(shape))
    lam = -np.log(porosity) / (4 / 3 * np.pi * radius**3)
    n = rng.poisson(lam * vol)
    seeds = np.zeros(shape, bool)
    idx = tuple(rng.integers(0, s, n) for s in shape)
    seeds[idx] = True
    return ndimage.distance_transform_edt(~seeds) > radius


@pytest.fixture
def spheres():
    return overlapping_spheres
