"""Fixtures for the io tests: a small anisotropic microstructure with metadata."""

from __future__ import annotations

import numpy as np
import pytest

from microbat import Microstructure


@pytest.fixture
def ms_rich() -> Microstructure:
    """Three phases, anisotropic voxels, thickness axis 2, non-ASCII metadata."""
    rng = np.random.default_rng(7)
    lab = rng.integers(0, 3, size=(9, 7, 5), dtype=np.uint8)
    return Microstructure(
        lab,
        voxel_size=(0.5e-6, 0.4e-6, 0.37e-6),
        phases="pore=0,cbd=1,nmc:active=2",
        thickness_axis=2,
        metadata={"sample": "NMC622 -- cathode", "unit": "µm", "n": [1, 2.5, None]},
    )
