"""Heat from a resolved run's loss maps: the breakdown's energy, file = memory, the CLI."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from typer.testing import CliRunner

from microbat import Microstructure
from microbat.core.errors import FileFormatError, InvalidInputError
from microbat.degradation.heating import resolved_heating

# the components of the resolved breakdown whose dissipation the loss maps hold
# (reaction_positive is the image's kinetics; reaction_counter is the lithium metal's)
IMAGE_COMPONENTS = (
    "ohmic_electrolyte", "concentration_electrolyte", "ohmic_solid", "reaction_positive",
    "solid_diffusion",
)  # fmt: skip


@pytest.fixture(scope="module")
def run():
    from microbat.cell.resolved import ResolvedOptions, simulate_discharge

    lab = np.zeros((8, 6, 6), np.uint8)
    lab[:, :3, :3] = 2
    lab[:, 3:, 3:] = 2
    lab[:5, :3, 3:5] = 1
    ms = Microstructure(lab, voxel_size=1e-6, phases="pore=0,cbd=1,active=2")
    res = simulate_discharge(
        ms, c_rate=2.0, options=ResolvedOptions(max_steps=10, dv_target_V=0.02),
        snapshot_times=[30.0],
    )  # fmt: skip
    return ms, res


def test_heat_is_the_breakdown_dissipation(run):
    ms, res = run
    r = resolved_heating(ms, res)  # the last snapshot: the run's last step
    snap = res.snapshots[-1]
    current = res.current_A
    assert r.mode == "resolved" and r.current_A == pytest.approx(current)
    # image heat + what lies outside the image = current × the breakdown's losses
    # (outside the image: the separator slab's transport; its "reaction" is the metal's)
    outside = sum(v for k, v in snap.outside_W.items() if not k.startswith("reaction"))
    expected = current * sum(res.final_breakdown_V[c] for c in IMAGE_COMPONENTS)
    assert r.total_heat_W + outside == pytest.approx(expected, rel=1e-5)
    kinds = r.heat_by_kind_W
    assert kinds["electronic"] == pytest.approx(
        current * res.final_breakdown_V["ohmic_solid"] - snap.outside_W["ohmic_solid"], rel=1e-5
    )
    assert kinds["reaction"] == pytest.approx(
        current * res.final_breakdown_V["reaction_positive"], rel=1e-5
    )
    assert kinds["solid_diffusion"] == pytest.approx(
        current * res.final_breakdown_V["solid_diffusion"], rel=1e-5
    )
    assert sum(kinds.values()) == pytest.approx(r.total_heat_W, rel=1e-12)
    assert r.energy_balance_error < 1e-5  # component maps against the run's loss_total
    # the depth profile holds all of it; the temperature rise is positive and tiny
    layer_volume = 6e-6 * 6e-6 * 1e-6
    assert float(np.sum(r.heat_depth_W_per_m3) * layer_volume) == pytest.approx(r.total_heat_W)
    assert 0 < r.max_delta_T_K < 1e-3
    assert np.isnan(r.necks[0]["current_A"]) and r.necks[0]["peak_heat_W_per_m3"] > 0
    assert np.array_equal(r.potential_V, snap.fields["phi_s"], equal_nan=True)


def test_saved_run_gives_the_same_heat(run, tmp_path):
    ms, res = run
    res.save_fields(tmp_path / "fields.h5")
    mem = resolved_heating(ms, res, snapshot=0)
    disk = resolved_heating(ms, tmp_path, time_s=30.0)
    assert disk.provenance.parameters["snapshot"] == 0
    assert disk.total_heat_W == pytest.approx(mem.total_heat_W, rel=1e-12)
    assert np.allclose(disk.delta_T_K, mem.delta_T_K, rtol=1e-9, atol=0)
    # an earlier snapshot of a discharge at constant current: less solid-diffusion loss
    last = resolved_heating(ms, tmp_path / "fields.h5")
    assert last.heat_by_kind_W["solid_diffusion"] > mem.heat_by_kind_W["solid_diffusion"]


def test_bad_sources_are_refused(run, tmp_path):
    ms, res = run
    with pytest.raises(InvalidInputError, match="snapshot 9 does not exist"):
        resolved_heating(ms, res, snapshot=9)
    with pytest.raises(FileFormatError, match="no resolved run"):
        resolved_heating(ms, tmp_path / "nothing")
    bare = SimpleNamespace(
        snapshots=[SimpleNamespace(time_s=1.0, fields={"c_s": np.zeros(ms.shape)})],
        c_rate=1.0, current_A=1e-9,
    )  # fmt: skip
    with pytest.raises(InvalidInputError, match="without loss maps"):
        resolved_heating(ms, bare)
    other = Microstructure(np.zeros((8, 6, 5), np.uint8) + 2, 1e-6, phases="pore=0,cbd=1,active=2",
                           allow_empty_phases=True)  # fmt: skip
    with pytest.raises(InvalidInputError, match="shape"):
        resolved_heating(other, res)


def _run(*args):
    from microbat.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_heat_from_resolved(run, tmp_path):
    from microbat.io import save_microstructure

    ms, res = run
    img = save_microstructure(ms, tmp_path / "e.h5")
    folder = tmp_path / "run"
    folder.mkdir()
    res.save_fields(folder / "fields.h5")
    out = tmp_path / "h"
    r = _run("heat", img, "--from-resolved", folder, "--json", "--out", out)
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    ref = resolved_heating(ms, res)
    assert d["mode"] == "resolved"
    assert d["total_heat_W"] == pytest.approx(ref.total_heat_W, rel=1e-12)
    assert d["necks"][0]["current_A"] is None
    with np.load(out / "fields.npz") as z:
        assert np.allclose(z["heat_W_per_m3"], ref.heat_W_per_m3, equal_nan=True)
    for args, msg in (
        (["--from-resolved", folder, "--current-density", "30"], "leave out"),
        (["--snapshot", "0"], "need --from-resolved"),
        (["--from-resolved", folder, "--snapshot", "7"], "snapshot 7"),
        (["--from-resolved", tmp_path / "none"], "no such file"),
    ):
        bad = tmp_path / "bad"
        r = _run("heat", img, *args, "--out", bad)
        assert r.exit_code == 1, r.output
        assert msg in r.stderr and len(r.stderr.strip().splitlines()) <= 3
        assert not bad.exists() or not any(bad.iterdir())
