"""The ``microbat plating`` verb: one-line errors before any work, JSON and files."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from microbat.cell.resolved import sphere_lattice


def _run(*args):
    from microbat.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def lattice_file(tmp_path_factory):
    from microbat.io import save_microstructure

    ms = sphere_lattice((12, 8, 8), voxel_size=0.5e-6)
    return save_microstructure(ms, tmp_path_factory.mktemp("plating") / "lattice.h5")


@pytest.mark.parametrize(
    ("args", "msg"),
    [
        (["--c-rate", "0"], "positive C-rate"),
        (["--c-rate", "-3"], "positive C-rate"),
        (["--electrode", "anode"], "use negative or positive"),
        (["--maps", "a,b"], "--maps"),
        (["--max-dt", "0"], "positive time step"),
        (["--params", "no_such_set"], "no_such_set"),
    ],
)
def test_bad_input_one_line_nothing_written(tmp_path, lattice_file, args, msg):
    out = tmp_path / "p"
    r = _run("plating", lattice_file, *args, "--out", out)
    assert r.exit_code == 1, r.output
    assert msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not out.exists() or not any(out.iterdir())


def test_json_and_out(tmp_path, lattice_file):
    pytest.importorskip("microbat.cell.resolved", reason="resolved model")
    from microbat.cell import resolved

    if not hasattr(resolved, "simulate_charge"):
        pytest.fail("microbat.cell.resolved has no simulate_charge")
    out = tmp_path / "p"
    r = _run(
        "plating", lattice_file, "--c-rate", "3", "--end-time", "300", "--dfn", "--json",
        "--out", out,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    for key in (
        "onset_time_s",
        "onset_soc",
        "area_fraction_at_risk",
        "min_plating_overpotential_V",
        "heterogeneity_cov",
    ):
        assert key in d
    assert len(d["area_fraction_at_risk"]) == len(d["time_s"]) >= 2
    assert d["heterogeneity_cov"]["index"] is not None
    assert d["dfn"]["end_time_s"] == pytest.approx(d["time_s"][-1])
    assert d["charge"]["initial_stoichiometry"] < 0.1  # the set's discharged state
    names = {p.name for p in out.iterdir()}
    assert {
        "result.json", "plating_series.csv", "plating_depth.csv", "hotspots.csv",
        "particles.csv", "plating_fields.vti", "fields.npz", "hotspot_slices.png",
        "plating_curves.png",
    } <= names  # fmt: skip
