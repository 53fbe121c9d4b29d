"""Voxel size only where it matters: dimensionless results without one, lengths never."""

from __future__ import annotations

import json
import math
import pickle
import warnings

import numpy as np
import pytest

from microbat import Microstructure
from microbat.core.errors import VoxelSizeError
from microbat.core.microstructure import UNKNOWN_VOXEL_SIZE
from microbat.imaging.connectivity import analyze_connectivity
from microbat.imaging.metrics import interface_areas, percolation
from microbat.io import load_microstructure, save_microstructure
from microbat.transport import conductivity, random_walk, tortuosity, tortuosity_tensor


def _labels(n=24, seed=2):
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    seeds = np.zeros((n, n, n), bool)
    seeds[tuple(rng.integers(0, n, (3, 25)))] = True
    return (ndimage.distance_transform_edt(~seeds) > 2.5).astype(np.uint8)  # 1 = pore


@pytest.fixture
def pair():
    lab = _labels()
    unknown = Microstructure(lab, UNKNOWN_VOXEL_SIZE, phases="pore=1,active=0")
    known = Microstructure(lab, 1e-6, phases="pore=1,active=0")
    return unknown, known


def test_unknown_voxel_size_is_explicit_and_lengths_raise(pair):
    u, k = pair
    assert not u.voxel_size_known and k.voxel_size_known
    assert u.grid_spacing == (1.0, 1.0, 1.0) and k.grid_spacing == k.voxel_size
    for length in ("voxel_size", "voxel_volume", "extent", "thickness"):
        with pytest.raises(VoxelSizeError, match=r"voxel size is missing.*--voxel-size"):
            getattr(u, length)
    with pytest.raises(VoxelSizeError):  # None stays an error: unknown is said, not assumed
        Microstructure(np.asarray(u.labels), None, phases="pore=1,active=0")
    assert "unknown" in repr(u)
    s = u.summary()
    assert s["voxel_size_m"] is None and s["extent_m"] is None
    assert s["volume_fractions"] == k.summary()["volume_fractions"]
    assert u == pickle.loads(pickle.dumps(u)) and u != k
    c = u.crop((0, 12), None, None)
    assert not c.voxel_size_known
    d = u.downsample((2, 2, 1))
    assert not d.voxel_size_known and d.grid_spacing == (2.0, 2.0, 1.0)
    assert u.upsample(2).grid_spacing == (0.5, 0.5, 0.5)


def test_dimensionless_transport_without_voxel_size(pair):
    u, k = pair
    ru = tortuosity(u, axis="all")
    rk = tortuosity(k, axis="all")
    for a in range(3):
        assert ru.tau[a] == pytest.approx(rk.tau[a], rel=1e-12)
        assert ru.deff_over_d0[a] == pytest.approx(rk.deff_over_d0[a], rel=1e-12)
        assert ru.macmullin[a] == pytest.approx(rk.macmullin[a], rel=1e-12)
    assert ru.porosity == rk.porosity and ru.percolating == rk.percolating
    assert ru.length_m == (None, None, None) and all(v > 0 for v in rk.length_m)
    assert ru.provenance.inputs["voxel_size_m"] is None
    json.dumps(ru.to_dict(), allow_nan=False)
    tu = tortuosity_tensor(u)
    tk = tortuosity_tensor(k)
    np.testing.assert_allclose(tu.tau, tk.tau, rtol=1e-9, atol=1e-9)
    cu = conductivity(u, conductivities={"pore": 2.0}, axis="all")
    ck = conductivity(k, conductivities={"pore": 2.0}, axis="all")
    np.testing.assert_allclose(cu.sigma_eff, ck.sigma_eff, rtol=1e-12)
    assert cu.length_m == (None, None, None)
    assert analyze_connectivity(u).volume_fractions == analyze_connectivity(k).volume_fractions
    assert percolation(u).phases["pore"].percolates == percolation(k).phases["pore"].percolates


def test_anisotropic_blocks_keep_their_shape(pair):
    u, k = pair
    a = tortuosity(u.downsample((2, 2, 1)), axis="all").tau
    b = tortuosity(k.downsample((2, 2, 1)), axis="all").tau
    np.testing.assert_allclose(a, b, rtol=1e-12)


def test_lengths_areas_and_times_still_need_the_voxel_size(pair, tmp_path):
    u, _ = pair
    with pytest.raises(VoxelSizeError, match="missing"):
        random_walk(u, n_walkers=100, n_steps=1000, seed=1)
    with pytest.raises(VoxelSizeError, match="missing"):
        interface_areas(u)
    with pytest.raises(VoxelSizeError, match="missing"):
        save_microstructure(u, tmp_path / "u.h5")
    assert not (tmp_path / "u.h5").exists()


def test_loader_gives_unknown_only_when_asked(tmp_path):
    path = tmp_path / "lab.npy"
    np.save(path, _labels())
    with pytest.raises(VoxelSizeError, match="does not say its voxel size"):
        load_microstructure(path)
    ms = load_microstructure(path, require_voxel_size=False)
    assert not ms.voxel_size_known
    ms = load_microstructure(path, voxel_size=5e-7, require_voxel_size=False)
    assert ms.voxel_size == (5e-7,) * 3


def test_cli_tortuosity_and_conductivity_without_voxel_size(tmp_path):
    from typer.testing import CliRunner

    from microbat.cli import app

    path = tmp_path / "lab.npy"
    np.save(path, _labels())
    runner = CliRunner()
    res = runner.invoke(app, ["tortuosity", str(path), "--axis", "all", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["voxel_size_known"] is False
    assert data["length_m"] == [None, None, None]
    assert data["provenance"]["inputs"]["voxel_size_m"] is None
    assert all(t is not None and t >= 1 for t in data["tau"])
    assert data["tensor"][0][1] is not None
    with_size = runner.invoke(
        app, ["tortuosity", str(path), "--axis", "all", "--json", "--voxel-size", "1um"]
    )
    ref = json.loads(with_size.stdout)
    assert "voxel_size_known" not in ref
    assert np.allclose(data["tau"], ref["tau"], rtol=1e-12)
    text = runner.invoke(app, ["tortuosity", str(path)])
    assert text.exit_code == 0 and "voxel size: not given" in text.output
    res = runner.invoke(app, ["conductivity", str(path), "--kind", "ionic", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["length_m"][0] is None and data["sigma_eff"][0] > 0
    # verbs that report lengths, areas or times still refuse, with the usual message
    for verb in (["metrics"], ["randomwalk", "--steps", "1000", "--walkers", "100"]):
        res = runner.invoke(app, [verb[0], str(path), *verb[1:]])
        assert res.exit_code == 1
        assert "does not say its voxel size" in res.output and "--voxel-size" in res.output


def test_random_walk_release_percolating_unknown_is_still_an_error(pair):
    # the check for the voxel size comes before any walking, whatever the geometry
    u, _ = pair
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(VoxelSizeError):
            random_walk(u, n_walkers=100, n_steps=1000, release="percolating")
    assert math.isfinite(tortuosity(u).tau[0])
