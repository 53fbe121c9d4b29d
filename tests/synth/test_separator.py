import numpy as np
import pytest
from scipy import ndimage as ndi

from microbat import Microstructure
from microbat.core.errors import InvalidInputError, PhaseError
from microbat.core.phases import PhaseRole
from microbat.synth import add_separator
from microbat.synth.phantoms import layers

H = 0.5e-6


@pytest.fixture
def base():
    return layers((40, 32, 32), voxel_size=H, sequence=(2, 1, 0, 2))


@pytest.mark.parametrize("porosity", [0.3, 0.45])
def test_appended_at_separator_side(base, porosity):
    out = add_separator(base, thickness=6e-6, porosity=porosity, seed=1)
    n = 12
    assert out.shape == (40 + n, 32, 32)
    sep = out.phases.with_role(PhaseRole.SEPARATOR)[0]
    assert sep.name == "separator" and sep.label == 3
    # the electrode is untouched, the separator occupies exactly the last n slices
    assert np.array_equal(out.labels[:40], base.labels)
    layer = out.labels[40:]
    assert set(np.unique(layer)) == {0, 3}
    assert not (out.labels[:40] == 3).any()
    assert abs((layer == 0).mean() - porosity) <= 1 / layer.size
    meta = out.metadata["separator"]
    assert meta["n_voxels"] == n and meta["start_index"] == 40
    assert meta["porosity"] == pytest.approx(porosity, abs=1e-4)
    # the separator's pores connect the electrode to the far side
    lab, _ = ndi.label(layer == 0)
    assert np.intersect1d(np.unique(lab[0]), np.unique(lab[-1])).max() > 0


def test_replace_and_other_axis():
    ms = layers((16, 30, 16), voxel_size=H, sequence=(2, 0), axis=1, thickness_axis=1)
    out = add_separator(ms, thickness=2.5e-6, porosity=0.4, replace=True, seed=0)
    assert out.shape == ms.shape
    assert np.array_equal(out.labels[:, :25], ms.labels[:, :25])
    assert set(np.unique(out.labels[:, 25:])) == {0, 3}


def test_seeded(base):
    a = add_separator(base, thickness=4e-6, seed=3)
    b = add_separator(base, thickness=4e-6, seed=3)
    c = add_separator(base, thickness=4e-6, seed=4)
    assert a == b and a != c


def test_feature_size_coarsens_pores(base):
    fine = add_separator(base, thickness=8e-6, porosity=0.4, seed=0)
    coarse = add_separator(base, thickness=8e-6, porosity=0.4, feature_size=2e-6, seed=0)

    def interface(ms):
        layer = ms.labels[40:] == 0
        return sum(np.count_nonzero(np.diff(layer, axis=a)) for a in range(3))

    assert interface(coarse) < 0.6 * interface(fine)


def test_bad_input(base):
    with pytest.raises(InvalidInputError, match="porosity"):
        add_separator(base, thickness=4e-6, porosity=1.0)
    with pytest.raises(InvalidInputError, match="thickness"):
        add_separator(base, thickness=-1e-6)
    with pytest.raises(InvalidInputError, match="half a voxel"):
        add_separator(base, thickness=0.1e-6)
    with pytest.raises(InvalidInputError, match="replace the whole"):
        add_separator(base, thickness=40 * H, replace=True)
    with pytest.raises(InvalidInputError, match="Microstructure"):
        add_separator(base.labels, thickness=4e-6)
    solid = Microstructure(np.ones((8, 8, 8), np.uint8), H, "active=1")
    with pytest.raises(PhaseError, match="electrolyte"):
        add_separator(solid, thickness=2e-6)
