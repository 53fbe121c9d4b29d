"""Shared fixtures: small hand-built microstructures with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from microbat import Microstructure


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture
def three_phase() -> Microstructure:
    """A 3-phase 20x16x12 block: active slab, cbd slab, pore slab along axis 2."""
    lab = np.zeros((20, 16, 12), np.uint8)
    lab[:, :, 4:8] = 1
    lab[:, :, 8:] = 2
    return Microstructure(lab, voxel_size=0.5e-6, phases="pore=0,cbd=1,active=2")


@pytest.fixture
def channels() -> Microstructure:
    """Straight square pore channels along axis 0 in an active-material matrix."""
    lab = np.full((24, 24, 24), 1, np.uint8)
    for i in range(2, 24, 6):
        for j in range(2, 24, 6):
            lab[:, i : i + 3, j : j + 3] = 0
    return Microstructure(lab, voxel_size=1e-6, phases="pore=0,active=1")


@pytest.fixture(scope="session")
def reconstructed_electrode() -> tuple[Microstructure, Microstructure]:
    """A known 16x12x12 electrode (1 µm voxels: active columns on the collector and a
    carbon-binder bridge) and its reconstruction from a blurred, noisy CT-like phantom
    by the imaging front end: ``(truth, reconstructed)``."""
    from microbat.imaging import reconstruct
    from microbat.synth import phantom

    lab = np.zeros((16, 12, 12), np.uint8)
    lab[:, 1:6, 1:6] = 2
    lab[:, 7:11, 6:11] = 2
    lab[:, 1:5, 7:11] = 2
    lab[:10, 5:8, 2:9] = 1
    truth = Microstructure(lab, voxel_size=1e-6, phases="pore=0,cbd=1,active=2")
    image = phantom(truth, psf_sigma=0.5, snr=10.0, seed=1).image
    rec = reconstruct(
        image, voxel_size=1e-6, phases="pore,cbd,active", denoise=False, psf_sigma=None
    )
    return truth, rec.microstructure
