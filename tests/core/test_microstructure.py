import json

import numpy as np
import pytest

from microbat import Microstructure, PhaseTable
from microbat.core.errors import InvalidInputError, MicrobatError, PhaseError, VoxelSizeError
from microbat.core.phases import PhaseRole
from microbat.core.results import Provenance, to_jsonable
from microbat.core.units import parse_length, parse_voxel_size


def test_phase_table_parse_roles():
    t = PhaseTable.parse("pore=0,cbd=1,active=2")
    assert t.labels == (0, 1, 2)
    assert t["pore"].role is PhaseRole.ELECTROLYTE
    assert t["cbd"].role is PhaseRole.CARBON_BINDER
    assert t["active"].role is PhaseRole.ACTIVE
    assert PhaseTable.from_list(t.to_list()) == t
    assert PhaseTable.parse(t.to_spec()) == t
    assert (
        PhaseTable.parse("weird:solid_electrolyte=5")["weird"].role is PhaseRole.SOLID_ELECTROLYTE
    )


def test_phase_table_errors():
    with pytest.raises(PhaseError, match="appears twice"):
        PhaseTable.parse("pore=0,pore=1")
    with pytest.raises(PhaseError, match="used by both"):
        PhaseTable.parse("pore=0,active=0")
    t = PhaseTable.parse("pore=0,active=1")
    with pytest.raises(PhaseError, match="unknown phase 'cbd'"):
        t["cbd"]
    assert [p.name for p in t.resolve("electrolyte")] == ["pore"]
    assert [p.name for p in t.resolve("active,pore")] == ["active", "pore"]


def test_construct_and_fractions(three_phase):
    ms = three_phase
    assert ms.shape == (20, 16, 12)
    f = ms.volume_fractions()
    assert f == pytest.approx({"pore": 4 / 12, "cbd": 4 / 12, "active": 4 / 12})
    assert sum(f.values()) == pytest.approx(1.0)
    assert ms.fraction("cbd,active") == pytest.approx(8 / 12)
    assert ms.thickness == pytest.approx(20 * 0.5e-6)
    assert ms.labels.flags.writeable is False
    json.dumps(to_jsonable(ms.summary()))


@pytest.mark.parametrize(
    ("labels", "exc", "match"),
    [
        (np.zeros((4, 4, 4), float), InvalidInputError, "must hold integers"),
        (np.zeros((4,), np.uint8), InvalidInputError, "2D or 3D"),
        (np.zeros((2, 2, 2, 2), np.uint8), InvalidInputError, "2D or 3D"),
        (np.zeros((0, 4, 4), np.uint8), InvalidInputError, "empty"),
        (np.full((4, 4, 4), -1, np.int16), InvalidInputError, "0..65535"),
    ],
)
def test_bad_arrays(labels, exc, match):
    with pytest.raises(exc, match=match):
        Microstructure(labels, 1e-6, "pore=0,active=1")


def test_bad_labels_and_voxel_size():
    lab = np.zeros((4, 4, 4), np.uint8)
    lab[0] = 1
    lab[1] = 7
    with pytest.raises(PhaseError, match=r"labels \[7\]"):
        Microstructure(lab, 1e-6, "pore=0,active=1")
    with pytest.raises(PhaseError, match="no voxel"):
        Microstructure(lab, 1e-6, "pore=0,active=1,other=7,cbd=3")
    ok = Microstructure(lab, 1e-6, "pore=0,active=1,other=7,cbd=3", allow_empty_phases=True)
    assert ok.counts()["cbd"] == 0
    for vs in (None, float("nan"), -1.0, 0.0, (1e-6, 1e-6), 2.0):
        with pytest.raises(VoxelSizeError):
            Microstructure(lab, vs, "pore=0,active=1,other=7")
    with pytest.raises(MicrobatError):
        Microstructure(lab, 1e-6, "pore=0,active=1,other=7", thickness_axis=3)


def test_anisotropic_voxels_and_default_table():
    lab = np.zeros((4, 6, 8), np.uint8)
    lab[:, :, 4:] = 1
    ms = Microstructure(lab, (1e-6, 2e-6, 3e-6))
    assert ms.voxel_size == (1e-6, 2e-6, 3e-6)
    assert ms.extent == pytest.approx((4e-6, 12e-6, 24e-6))
    assert ms.phases.names == ("pore", "active")


def test_crop_is_view(three_phase):
    c = three_phase.crop((2, 10), None, slice(4, 12))
    assert c.shape == (8, 16, 8)
    assert np.shares_memory(c.labels, three_phase.labels)
    assert c.volume_fractions()["pore"] == 0
    with pytest.raises(InvalidInputError):
        three_phase.crop((5, 5))


def test_down_up_round_trip(three_phase, rng):
    up = three_phase.upsample(2)
    assert up.shape == (40, 32, 24)
    assert up.voxel_size == (0.25e-6,) * 3
    assert up.volume_fractions() == pytest.approx(three_phase.volume_fractions())
    back = up.downsample(2)
    assert back == three_phase
    lab = rng.integers(0, 3, (9, 9, 9)).astype(np.uint8)
    ms = Microstructure(lab, 1e-6)
    d = ms.downsample((3, 3, 3))
    # majority vote checked against a direct count on one block
    block = lab[:3, 3:6, 6:9].ravel()
    counts = np.bincount(block, minlength=3)
    assert d.labels[0, 1, 2] == int(np.argmax(counts))


def test_equality_and_copy(three_phase):
    c = three_phase.copy()
    assert c == three_phase
    lab = np.array(c.labels)
    lab[0, 0, 0] = 2
    assert c.with_labels(lab) != three_phase


def test_units():
    assert parse_length("0.4um") == pytest.approx(4e-7)
    assert parse_length("400 nm") == pytest.approx(4e-7)
    assert parse_length(4e-7) == 4e-7
    assert parse_voxel_size("0.4um,0.4um,0.8um") == pytest.approx((4e-7, 4e-7, 8e-7))
    for bad in ("abc", "1 furlong", "-1um", "0"):
        with pytest.raises(VoxelSizeError):
            parse_length(bad)


def test_provenance_json():
    p = Provenance("f", {"a": float("inf")}, seed=3)
    d = p.to_dict()
    assert d["parameters"]["a"] is None
    assert d["seed"] == 3
    json.dumps(d, allow_nan=False)


def test_phase_table_membership():
    t = PhaseTable.parse("pore=0,active=1")
    assert "pore" in t
    assert "cbd" not in t


def test_result_summarises_fields_per_axis():
    from dataclasses import dataclass

    import numpy as np

    from microbat.core.results import Result

    @dataclass(frozen=True)
    class R(Result):
        tau: tuple
        field: tuple

    d = R((1.0, float("inf"), None), (np.zeros((5, 5, 5)), None, np.zeros(3))).to_dict()
    assert d["tau"] == [1.0, None, None]
    assert d["field"] == [{"shape": [5, 5, 5], "dtype": "float64"}, None, [0.0, 0.0, 0.0]]


def test_microbat_warnings_share_one_base():
    # a user can silence or escalate all of microbat's deliberate warnings at once
    from microbat.core.errors import MicrobatWarning
    from microbat.synth import PackingWarning
    from microbat.transport._steady import PercolationWarning

    assert issubclass(PercolationWarning, MicrobatWarning)
    assert issubclass(PackingWarning, MicrobatWarning)
    assert issubclass(MicrobatWarning, UserWarning)
