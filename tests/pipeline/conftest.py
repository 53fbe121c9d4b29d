"""Fixtures of the twin tests: tiny grayscale and labelled volumes, one full run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

VOXEL = 0.5e-6


@pytest.fixture(scope="session")
def tiny_electrode():
    from microbat import synth

    return synth.electrode((32, 32, 32), voxel_size=VOXEL, mean_radius=2.0e-6, seed=3)


@pytest.fixture(scope="session")
def gray_npy(tmp_path_factory, tiny_electrode) -> Path:
    """A 32³ noisy grayscale phantom as .npy (the file carries no voxel size)."""
    from microbat import synth

    img = synth.phantom(tiny_electrode, psf_sigma=0.8, snr=5.0, seed=4).image
    path = tmp_path_factory.mktemp("gray") / "tomo.npy"
    np.save(path, img)
    return path


@pytest.fixture(scope="session")
def labelled_h5(tmp_path_factory, tiny_electrode) -> Path:
    """The same electrode as a labelled microbat HDF5 file (voxel size and phases inside)."""
    from microbat.io import save_microstructure

    path = tmp_path_factory.mktemp("lab") / "electrode.h5"
    save_microstructure(tiny_electrode, path)
    return path


@pytest.fixture(scope="session")
def full_run(tmp_path_factory):
    """One complete twin on the built-in phantom (40³), every stage that exists."""
    from microbat.pipeline.twin import run_twin

    out = tmp_path_factory.mktemp("full") / "twin"
    events = []
    res = run_twin(
        synthetic=True,
        out_dir=out,
        overrides={
            "synthetic.shape": [40, 40, 40],
            "synthetic.mean_radius": 2.5e-6,
            "cell.c_rates": [0.1, 1.0, 3.0],
            "transport.random_walk_walkers": 400,
            "transport.random_walk_steps": 20_000,
        },
        progress=events.append,
    )
    return res, events
