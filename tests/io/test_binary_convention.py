"""Binary images follow PoreSpy/TauFactor (1 = pore); a phase may be called ``solid``.

Also: which label was taken as which phase is said in text output and recorded in
JSON output, and ``--crop`` reads a sub-volume.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from microbat.cli import app
from microbat.core.microstructure import Microstructure
from microbat.core.phases import PhaseRole, PhaseTable, default_phase_table
from microbat.io import load_microstructure, save_microstructure
from microbat.transport.diffusion import tortuosity


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def porespy_like(tmp_path_factory):
    """A boolean volume saved as PoreSpy users save it: True = pore (40 % of it)."""
    rng = np.random.default_rng(7)
    im = rng.random((16, 16, 16)) < 0.55
    im[:, 6:10, 6:10] = True  # a straight pore channel: the pore percolates
    path = tmp_path_factory.mktemp("ps") / "im.npy"
    np.save(path, im)
    return path, im


def test_default_two_phase_table_is_one_is_pore():
    t = default_phase_table(2)
    assert t.label_of("pore") == 1 and t.label_of("active") == 0
    assert t["pore"].role is PhaseRole.ELECTROLYTE
    assert t.names == ("pore", "active")  # the pore first: dark to bright
    ms = Microstructure(np.array([[[True, False]]]), 1e-6)
    assert ms.volume_fractions() == {"pore": 0.5, "active": 0.5}
    assert ms.mask("pore").tolist() == [[[True, False]]]


def test_porespy_file_gives_the_pore_porosity_and_tau(porespy_like):
    path, im = porespy_like
    pore_tau = tortuosity(
        Microstructure(im.astype(np.uint8), 1e-6, "pore=1,active=0"), phase="pore", axis=0
    ).tau[0]
    solid_tau = tortuosity(
        Microstructure(im.astype(np.uint8), 1e-6, "pore=0,active=1"), phase="pore", axis=0
    ).tau[0]
    assert abs(pore_tau - solid_tau) > 0.05  # the test tells the two apart

    r = _run("metrics", path, "--voxel-size", "1um", "--no-sizes", "--json")
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout)
    assert m["volume_fractions"]["pore"] == pytest.approx(im.mean())
    assert m["phase_table"] == [
        {"name": "pore", "label": 1, "role": "electrolyte"},
        {"name": "active", "label": 0, "role": "active"},
    ]
    assert "PoreSpy" in m["phase_table_source"]

    r = _run("tortuosity", path, "--voxel-size", "1um", "--axis", "0", "--json")
    assert r.exit_code == 0, r.output
    t = json.loads(r.stdout)
    assert t["porosity"] == pytest.approx(im.mean())
    assert t["tau"][0] == pytest.approx(pore_tau, rel=1e-6)

    r = _run("info", path, "--json")
    assert r.exit_code == 0, r.output
    assert any("PoreSpy" in n for n in json.loads(r.stdout)["notes"])

    r = _run("tortuosity", path, "--voxel-size", "1um", "--axis", "0")
    assert r.exit_code == 0, r.output
    first = r.stdout.splitlines()[0]
    assert first.startswith("phases: pore=1 (electrolyte), active=0 (active)")


def test_binary_tiff_and_the_opposite_convention(tmp_path, porespy_like):
    _, im = porespy_like
    f = tmp_path / "im.tif"
    tifffile.imwrite(f, im.astype(np.uint8), photometric="minisblack")
    ms = load_microstructure(f, voxel_size=1e-6)
    assert ms.fraction("pore") == pytest.approx(im.mean())
    flipped = load_microstructure(f, voxel_size=1e-6, phases="pore=0,active=1")
    assert flipped.fraction("pore") == pytest.approx(1 - im.mean())
    r = _run("metrics", f, "--voxel-size", "1um", "--no-sizes", "--phases", "pore=0,active=1")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0] == (
        "phases: pore=0 (electrolyte), active=1 (active) [from --phases]"
    )


def test_microbat_files_keep_their_table(tmp_path, porespy_like):
    _, im = porespy_like
    ms = Microstructure(im.astype(np.uint8), 1e-6, "pore=0,active=1")  # the old default
    f = save_microstructure(ms, tmp_path / "own.h5")
    back = load_microstructure(f)
    assert back.phases == ms.phases
    r = _run("metrics", f, "--no-sizes", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["volume_fractions"]["pore"] == pytest.approx(1 - im.mean())
    assert d["phase_table_source"] == "the file's phase table"


def test_a_phase_named_solid(porespy_like):
    path, im = porespy_like
    t = PhaseTable.parse("solid=0,pore=1")
    assert t["solid"].role is PhaseRole.ACTIVE  # inferred: the electrode's solid
    assert [p.name for p in t.resolve("solid")] == ["solid"]
    ms = Microstructure(im.astype(np.uint8), 1e-6, t)
    assert ms.fraction("solid") == pytest.approx(1 - im.mean())
    # the name wins over the selector, also where the imaging functions select groups
    from microbat.imaging._morph import resolve_groups

    assert [g.name for g in resolve_groups(ms, "solid")] == ["solid"]
    # without a phase of that name, "solid" is every electron-conducting phase
    three = PhaseTable.parse("pore=0,cbd=1,active=2")
    assert [p.name for p in three.resolve("solid")] == ["cbd", "active"]
    renamed = PhaseTable.parse("solid:other=0,pore=1")
    assert [p.name for p in renamed.resolve("solid")] == ["solid"]

    base = [path, "--voxel-size", "1um", "--phases", "solid=0,pore=1"]
    for verb in ("metrics", "connectivity"):
        extra = ["--no-sizes"] if verb == "metrics" else []
        dst = [path.with_name("c.h5")] if verb == "connectivity" else []
        r = _run(verb, base[0], *dst, *base[1:], *extra, "--json")
        assert r.exit_code == 0, (verb, r.output)
    r = _run("metrics", *base, "--no-sizes", "--json")
    assert json.loads(r.stdout)["volume_fractions"]["solid"] == pytest.approx(1 - im.mean())
    r = _run("tortuosity", *base, "--phase", "pore", "--axis", "0", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["porosity"] == pytest.approx(im.mean())
    r = _run("conductivity", *base, "--axis", "0", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["conductivities"] == {"solid": 1.0}
    r = _run("metrics", *base, "--no-sizes")
    assert r.stdout.splitlines()[0].startswith("phases: solid=0 (active), pore=1 (electrolyte)")


def test_add_carbon_binder_to_either_two_phase_convention():
    from microbat.synth import add_carbon_binder

    lab = np.zeros((12, 12, 12), np.uint8)
    lab[:, :6] = 1
    for table in ("pore=1,active=0", "pore=0,active=1"):
        ms = Microstructure(lab, 1e-6, table)
        out = add_carbon_binder(ms, fraction=0.05, seed=0)
        assert out.phases == default_phase_table(3)
        assert out.fraction("active") == pytest.approx(ms.fraction("active"))


def test_crop_reads_a_sub_volume(tmp_path, porespy_like):
    path, im = porespy_like
    r = _run("metrics", path, "--voxel-size", "1um", "--no-sizes", "--crop", "2:10,:,4:", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["shape"] == [8, 16, 12]
    assert d["crop"] == [[2, 10], [0, 16], [4, 16]]
    assert d["volume_fractions"]["pore"] == pytest.approx(im[2:10, :, 4:].mean())
    r = _run("metrics", path, "--voxel-size", "1um", "--no-sizes", "--crop", "2:10,:,4:")
    assert r.stdout.splitlines()[0].endswith("cropped to 2:10,0:16,4:16 of 16 x 16 x 16")
    out = tmp_path / "c.h5"
    r = _run("convert", path, out, "--voxel-size", "1um", "--crop", ":4", "--json")
    assert r.exit_code == 0, r.output
    assert load_microstructure(out).shape == (4, 16, 16)
    for bad, why in (("1:2:3", "start:stop"), ("5", "start:stop"), ("9:3", "empty")):
        r = _run("metrics", path, "--voxel-size", "1um", "--crop", bad)
        assert r.exit_code == 1 and why in r.stderr, (bad, r.output)
