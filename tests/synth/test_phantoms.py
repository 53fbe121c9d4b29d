import math

import numpy as np
import pytest

from microbat.core.errors import InvalidInputError
from microbat.synth.phantoms import channels, layers, sphere


def test_sphere_volume_and_symmetry():
    ms = sphere((40, 40, 40), 12.0, voxel_size=1e-6)
    n = ms.counts()["active"]
    assert n == pytest.approx(4 / 3 * math.pi * 12**3, rel=0.02)
    lab = ms.labels
    for ax in range(3):
        assert np.array_equal(lab, np.flip(lab, axis=ax))
    off = sphere((40, 40, 40), 5.0, voxel_size=1e-6, center=(10, 10, 10))
    idx = np.argwhere(off.labels == 1)
    assert np.allclose(idx.mean(axis=0) + 0.5, 10.0)


def test_channels_porosity_and_straightness():
    ms = channels((20, 24, 24), width=3, spacing=8, voxel_size=1e-6, axis=0, offset=1)
    assert ms.fraction("pore") == pytest.approx(9 * 9 / 24**2)
    # every slice along the channel axis is identical: tortuosity factor 1
    assert all(np.array_equal(ms.labels[0], ms.labels[i]) for i in range(20))
    side = channels((20, 24, 24), width=3, spacing=8, voxel_size=1e-6, axis=2)
    assert side.thickness_axis == 2
    assert np.array_equal(side.labels[:, :, 0], side.labels[:, :, -1])


def test_layers():
    ms = layers((10, 4, 4), voxel_size=1e-6, sequence=(0, 2, 1), widths=(5, 3, 2))
    assert ms.volume_fractions() == pytest.approx({"pore": 0.5, "cbd": 0.2, "active": 0.3})
    assert (ms.labels[5:8] == 2).all()
    eq = layers((10, 6, 4), voxel_size=1e-6, sequence=(0, 2, 1), axis=1)
    assert eq.counts() == {"pore": 80, "cbd": 80, "active": 80}


def test_bad_input():
    with pytest.raises(InvalidInputError, match="radius"):
        sphere((8, 8, 8), -1, voxel_size=1e-6)
    with pytest.raises(InvalidInputError, match="spacing"):
        channels((8, 8, 8), width=3, spacing=3, voxel_size=1e-6)
    with pytest.raises(InvalidInputError, match="sum"):
        layers((10, 4, 4), voxel_size=1e-6, sequence=(0, 1), widths=(3, 3))
    with pytest.raises(InvalidInputError, match="3D"):
        layers((10, 4), voxel_size=1e-6)
