"""Consistent, guessable flags: --version, --c-rates (old --rates), eis --model,
randomwalk --axis, --crop on the verbs that read a volume."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from microbat.cli import app


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def channel_file(tmp_path_factory):
    from microbat.io.writers import save_microstructure
    from microbat.synth.phantoms import channels

    ms = channels((12, 6, 6), width=2, spacing=3, voxel_size=1e-6, offset=1)
    return save_microstructure(ms, tmp_path_factory.mktemp("ch") / "ms.npz")


def test_version():
    from microbat._version import __version__

    r = _run("--version")
    assert r.exit_code == 0
    assert r.stdout.strip() == f"microbat {__version__}"


@pytest.mark.parametrize("verb", ["discharge", "breakdown", "compare-transport"])
def test_c_rates_with_the_old_spelling_as_a_hidden_alias(verb, channel_file):
    helptext = _run(verb, "--help").stdout
    assert "--c-rates" in helptext and "--rates" not in helptext
    for flag in ("--c-rates", "--rates", "--c-rate"):
        # an unreadable rate is refused before any model runs: the flag reached the parser
        r = _run(verb, channel_file, flag, "1,fast")
        assert r.exit_code == 1, (flag, r.output)
        assert "cannot read C-rate 'fast' in --c-rates" in r.stderr


def test_simulate_takes_one_c_rate_under_every_spelling(tmp_path, channel_file):
    r = _run("simulate", channel_file, "--c-rates", "1,2")
    assert r.exit_code == 1 and "one C-rate" in r.stderr and "discharge" in r.stderr
    base = ["simulate", channel_file, "--max-steps", "2", "--out", tmp_path / "s", "--json"]
    r = _run(*base, "--rates", "2")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["c_rate"] == 2.0


def test_eis_model_choice(tmp_path, channel_file):
    base = ["eis", channel_file, "--params", "defaults", "--per-decade", "1", "--json"]
    r = _run(*base)
    both = json.loads(r.stdout)
    assert both["model"] == "resolved" and "homogenized" in both
    r = _run(*base, "--model", "homogenized", "--out", tmp_path / "h")
    assert r.exit_code == 0, r.output
    hom = json.loads(r.stdout)
    assert hom["model"] == "homogenized" and "homogenized" not in hom
    assert hom["z_real_ohm"] == both["homogenized"]["z_real_ohm"]
    assert not (tmp_path / "h" / "spectrum_homogenized.csv").exists()
    r = _run(*base, "--model", "resolved", "--sensitivity-model", "none")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["model"] == "resolved" and "homogenized" not in res
    assert res["z_real_ohm"] == both["z_real_ohm"]
    r = _run(*base, "--model", "homogenized", "--sensitivity-model", "resolved")
    assert r.exit_code == 1 and "--model resolved" in r.stderr
    r = _run(*base, "--model", "p2d")
    assert r.exit_code == 1 and "resolved, homogenized or both" in r.stderr


def test_randomwalk_axis(channel_file):
    base = ["randomwalk", channel_file, "--walkers", "500", "--steps", "400", "--seed", "2"]
    r = _run(*base, "--axis", "0", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["axes"] == [0] and d["plateau_reached"] == d["plateau_reached_axes"][0]
    r = _run(*base, "--axis", "0")
    rows = [ln.split()[0] for ln in r.stdout.splitlines() if ln[:1].isdigit()]
    assert [a for a in rows if a in ("0", "1", "2")] == ["0"]
    r = _run(*base, "--json")
    assert json.loads(r.stdout)["axes"] == [0, 1, 2]
    r = _run(*base, "--axis", "3")
    assert r.exit_code == 1 and "--axis '3'" in r.stderr


def test_crop_on_transport_and_imaging_verbs(tmp_path, channel_file):
    r = _run("tortuosity", channel_file, "--crop", "0:6", "--axis", "0", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["crop"] == [[0, 6], [0, 6], [0, 6]] and d["length_m"][0] == pytest.approx(6e-6)
    gray = tmp_path / "g.npy"
    rng = np.random.default_rng(0)
    np.save(gray, (rng.random((10, 12, 12)) > 0.5) * 100.0 + rng.normal(0, 5, (10, 12, 12)))
    out = tmp_path / "seg.h5"
    r = _run(
        "segment", gray, out, "--phases", "pore,active", "--voxel-size", "1um",
        "--crop", "2:8,:,:6", "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    from microbat.io import load_microstructure

    assert load_microstructure(out).shape == (6, 12, 6)
    assert "--crop" in _run("calender", "--help").stdout
