"""Dual connectivity: cluster classes, transport mask, removal of isolated clusters, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from microbat import InvalidInputError, Microstructure, NotPercolatingError, PhaseError
from microbat.imaging.connectivity import (
    ClusterClass,
    ConnectivityResult,
    analyze_connectivity,
    remove_isolated,
    transport_mask,
)

UM = 1e-6


@pytest.fixture
def three_pores() -> Microstructure:
    """Active matrix with one percolating, one dead-end and one isolated pore (axis 0)."""
    lab = np.ones((10, 9, 9), np.uint8)
    lab[:, 1, 1] = 0  # percolating: 10 voxels
    lab[:4, 5, 5] = 0  # dead end from the first face: 4 voxels
    lab[4:7, 4:6, 7] = 0  # isolated: 6 voxels
    return Microstructure(lab, voxel_size=UM, phases="pore=0,active=1")


def test_three_pore_classes(three_pores):
    res = analyze_connectivity(three_pores, phases="pore")
    assert isinstance(res, ConnectivityResult)
    assert res.axis == 0
    assert res.connectivity == {"pore": 26}
    assert res.n_clusters["pore"] == 3
    assert res.cluster_counts["pore"] == {"percolating": 1, "dead_end": 1, "isolated": 1}
    n = three_pores.n_voxels
    assert res.volume_fractions["pore"] == pytest.approx(
        {"percolating": 10 / n, "dead_end": 4 / n, "isolated": 6 / n}
    )
    assert res.phase_fractions["pore"] == pytest.approx(
        {"percolating": 0.5, "dead_end": 0.2, "isolated": 0.3}
    )
    cmap = res.class_maps["pore"]
    assert cmap.dtype == np.uint8 and cmap.shape == three_pores.shape
    assert np.all(cmap[:, 1, 1] == ClusterClass.PERCOLATING)
    assert np.all(cmap[:4, 5, 5] == ClusterClass.DEAD_END)
    assert np.all(cmap[4:7, 4:6, 7] == ClusterClass.ISOLATED)
    assert np.all(cmap[three_pores.labels == 1] == ClusterClass.NONE)
    assert res.percolates("pore")
    with pytest.raises(PhaseError, match="not analysed"):
        res.percolates("active")


def test_default_axis_is_thickness_axis(three_pores):
    ms = three_pores.with_labels(three_pores.labels, thickness_axis=1)
    res = analyze_connectivity(ms, phases="pore")
    assert res.axis == 1
    # along axis 1 (y = 1, 5, 4..5) no pore touches the faces y = 0 or y = 8
    assert res.cluster_counts["pore"]["percolating"] == 0
    assert analyze_connectivity(ms, axis=0, phases="pore").cluster_counts["pore"] == {
        "percolating": 1,
        "dead_end": 1,
        "isolated": 1,
    }


def test_all_phases_and_role_connectivity(three_pores):
    res = analyze_connectivity(three_pores)
    assert res.phases == ("pore", "active")
    assert res.connectivity == {"pore": 26, "active": 6}
    assert res.cluster_counts["active"] == {"percolating": 1, "dead_end": 0, "isolated": 0}
    total = sum(sum(v.values()) for v in res.volume_fractions.values())
    assert total == pytest.approx(1.0)


def test_dual_connectivity_on_a_corner_chain():
    n = 6
    chain = np.zeros((n, n, n), np.uint8)
    for i in range(n):
        chain[i, i, i] = 1
    # pore chain (26): one percolating cluster; solid chain (6): n isolated/dead-end voxels
    pore = Microstructure(1 - chain, voxel_size=UM, phases="pore=0,active=1")
    assert analyze_connectivity(pore, phases="pore").cluster_counts["pore"]["percolating"] == 1
    solid = Microstructure(chain, voxel_size=UM, phases="pore=0,active=1")
    counts = analyze_connectivity(solid, phases="active").cluster_counts["active"]
    assert counts == {"percolating": 0, "dead_end": 2, "isolated": n - 2}
    # the pore percolates under 26 but carries no face-to-face flux
    assert not transport_mask(pore, "pore", axis=0).any()
    assert transport_mask(pore, "pore", axis=0, connectivity=26).sum() == n


def test_transport_mask(three_pores):
    tm = transport_mask(three_pores, "pore")
    assert tm.dtype == bool
    assert tm.sum() == 10 and np.all(tm[:, 1, 1])
    with pytest.raises(NotPercolatingError, match="axis 1"):
        transport_mask(three_pores, "pore", axis=1, require=True)
    assert not transport_mask(three_pores, "pore", axis=1).any()
    with pytest.raises(InvalidInputError, match="not an axis"):
        transport_mask(three_pores, "pore", axis=3)


def test_remove_isolated_to_neighbour(three_pores):
    # clean the pore phase: the isolated pore becomes active (its only neighbour)
    clean, rep = remove_isolated(three_pores, phases="pore")
    assert rep.n_clusters_removed == 1
    assert rep.n_voxels_reassigned == 6
    assert rep.transfers == {"pore": {"active": 6}}
    assert np.all(clean.labels[4:7, 4:6, 7] == 1)
    assert np.array_equal(clean.labels[:, 1, 1], np.zeros(10))
    assert clean.metadata["remove_isolated"]["n_clusters_removed"] == 1
    assert rep.volume_fractions_after["pore"] == pytest.approx(
        rep.volume_fractions_before["pore"] - 6 / three_pores.n_voxels
    )
    again = analyze_connectivity(clean, phases="pore")
    assert again.cluster_counts["pore"]["isolated"] == 0
    json.dumps(rep.to_dict(), allow_nan=False)


def test_remove_isolated_solids_most_shared_faces():
    lab = np.zeros((12, 10, 10), np.uint8)  # pore
    lab[:, :, :2] = 2  # active wall touching both faces of axis 0
    lab[:, :, 2] = 1  # cbd layer on it
    # floating active particle: 2x2x2, in contact with a cbd pad on one side only
    lab[5:7, 4:6, 6:8] = 2
    lab[5:7, 4:6, 8] = 1  # cbd pad touching 4 faces of the particle
    ms = Microstructure(lab, voxel_size=UM, phases="pore=0,cbd=1,active=2")
    # as a group, the solid particle+pad is isolated -> goes to the pore around it
    clean, rep = remove_isolated(ms)
    assert rep.phases == ("solid",)
    assert rep.n_clusters_removed == 1
    assert rep.transfers == {"active": {"pore": 8}, "cbd": {"pore": 4}}
    assert np.all(clean.labels[5:7, 4:6, 6:9] == 0)
    # cleaning the active phase alone: shares 20 faces with pore, 4 with cbd -> pore
    _, rep2 = remove_isolated(ms, phases="active")
    assert rep2.transfers == {"active": {"pore": 8}}
    # a fixed target
    clean3, rep3 = remove_isolated(ms, phases="active", rule="cbd")
    assert rep3.rule == "to:cbd" and rep3.transfers == {"active": {"cbd": 8}}
    assert np.all(clean3.labels[5:7, 4:6, 6:8] == 1)


def test_remove_isolated_keeps_particles_connected_through_cbd():
    lab = np.zeros((12, 10, 10), np.uint8)
    lab[:, :, :2] = 1  # cbd wall through the thickness
    lab[4:6, 4:6, 2:4] = 2  # active particle glued to the wall
    ms = Microstructure(lab, voxel_size=UM, phases="pore=0,cbd=1,active=2")
    clean, rep = remove_isolated(ms)  # solid group: the particle is not isolated
    assert rep.n_clusters_removed == 0 and clean == ms
    _, rep2 = remove_isolated(ms, phases="active")  # on its own it is
    assert rep2.n_clusters_removed == 1
    assert rep2.transfers == {"active": {"pore": 8}}  # 4 faces with cbd, 20 with pore


def test_remove_isolated_errors(three_pores):
    with pytest.raises(PhaseError, match="target phase"):
        remove_isolated(three_pores, phases="pore", rule="pore")
    with pytest.raises(PhaseError, match="unknown phase"):
        remove_isolated(three_pores, rule="to:graphite_xl")
    pore_only = Microstructure(np.zeros((4, 4, 4), np.uint8), voxel_size=UM, phases="pore=0")
    with pytest.raises(PhaseError, match="solid"):
        remove_isolated(pore_only)


def test_two_dimensional_image():
    lab = np.ones((8, 8), np.uint8)
    lab[:, 2] = 0
    lab[3:5, 6] = 0
    ms = Microstructure(lab, voxel_size=UM, phases="pore=0,active=1")
    res = analyze_connectivity(ms, phases="pore")
    assert res.connectivity == {"pore": 8}
    assert res.cluster_counts["pore"] == {"percolating": 1, "dead_end": 0, "isolated": 1}


def test_to_dict_summarises_maps(three_pores):
    data = json.loads(json.dumps(analyze_connectivity(three_pores).to_dict(), allow_nan=False))
    assert data["class_maps"]["pore"] == {"shape": [10, 9, 9], "dtype": "uint8"}
    assert data["cluster_counts"]["pore"]["dead_end"] == 1
    assert data["provenance"]["function"].endswith("analyze_connectivity")


def test_labelling_speed_smoke(rng):
    """A 96³ random volume is labelled for both phases (timing is the benchmark's job)."""
    from scipy import ndimage as ndi

    field = ndi.gaussian_filter(rng.standard_normal((96, 96, 96)), 3)
    ms = Microstructure(
        (field > np.quantile(field, 0.35)).astype(np.uint8),
        voxel_size=UM,
        phases="pore=0,active=1",
    )
    res = analyze_connectivity(ms)
    for name in ("pore", "active"):
        assert sum(res.phase_fractions[name].values()) == pytest.approx(1.0)
    assert res.cluster_counts["active"]["percolating"] == 1


# ---------------------------------------------------------------- CLI
runner = CliRunner()


def _run(*args):
    from microbat.cli import app

    return runner.invoke(app, [str(a) for a in args])


def test_cli_metrics_json(tmp_path, three_phase):
    f = tmp_path / "ms.npy"
    np.save(f, np.asarray(three_phase.labels))
    r = _run("metrics", f, "--voxel-size", "0.5um", "--phases", "pore=0,cbd=1,active=2", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    face = 20 * 16 * (0.5 * UM) ** 2
    areas = {tuple(d["phases"]): d["area_m2"] for d in data["interfaces"]}
    assert areas[("pore", "cbd")] == pytest.approx(face)
    assert data["percolation"]["pore"]["percolates"] == [True, True, False]
    r = _run("metrics", f, "--voxel-size", "0.5um", "--no-sizes")
    assert r.exit_code == 0 and "pore/cbd" in r.stdout


def test_cli_metrics_errors(tmp_path):
    r = _run("metrics", tmp_path / "missing.npy", "--voxel-size", "0.5um")
    assert r.exit_code == 1
    assert "error:" in r.output


def test_cli_connectivity_remove_isolated(tmp_path):
    from microbat.io import load_microstructure

    lab = np.zeros((8, 8, 8), np.uint8)
    lab[:, :, :2] = 1
    lab[3:5, 3:5, 4:6] = 1  # floating particle
    src = tmp_path / "in.npy"
    np.save(src, lab)
    dst = tmp_path / "out.h5"
    # 1 = particle here: the opposite of the binary default (1 = pore), so say so
    r = _run(
        "connectivity", src, dst, "--voxel-size", "1um", "--phases", "pore=0,active=1",
        "--remove-isolated", "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["connectivity"]["cluster_counts"]["active"]["isolated"] == 1
    assert data["removal"]["transfers"] == {"active": {"pore": 8}}
    assert data["connectivity_after"]["cluster_counts"]["active"]["isolated"] == 0
    out = load_microstructure(dst)
    assert int(out.labels.sum()) == 8 * 8 * 2
    assert out.metadata["connectivity"]["axis"] == 0
    r = _run("connectivity", src, tmp_path / "same.npy", "--voxel-size", "1um", "--axis", "2")
    assert r.exit_code == 0, r.output
    assert np.array_equal(np.load(tmp_path / "same.npy"), lab)
    r = _run("connectivity", src, tmp_path / "x.npy", "--voxel-size", "1um", "--axis", "5")
    assert r.exit_code == 1 and "not an axis" in r.output
