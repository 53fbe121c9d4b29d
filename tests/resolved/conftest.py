"""Shared test images of the resolved model's tests."""

from __future__ import annotations

import numpy as np
import pytest

from microbat import Microstructure


def _packed(n: int = 12, seed: int = 3) -> Microstructure:
    """Random active spheres with a carbon-binder shell fraction in pore (0.5 µm voxels)."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    lab = np.zeros((n, n, n), np.uint8)
    zz, yy, xx = np.ogrid[:n, :n, :n]
    while np.count_nonzero(lab == 2) < 0.5 * n**3:
        c = rng.uniform(0, n, 3)
        lab[((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2) <= 2.5**2] = 2
    shell = ndimage.binary_dilation(lab == 2) & (lab == 0)
    lab[shell & (rng.random(lab.shape) < 0.3)] = 1
    return Microstructure(lab, voxel_size=0.5e-6, phases="pore=0,cbd=1,active=2")


@pytest.fixture(scope="session")
def packed_electrode():
    """Factory ``(n=12, seed=3) -> Microstructure``: half active spheres, binder flecks."""
    return _packed
