"""The ``microbat generate`` verb through typer's CliRunner."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from microbat.cli import app

runner = CliRunner()
ARGS = ["--shape", "40,40,40", "--voxel-size", "0.5um", "--mean-radius", "3um", "--seed", "3"]


def test_generate_npy(tmp_path):
    out = tmp_path / "el.npy"
    res = runner.invoke(app, ["generate", str(out), *ARGS, "--cbd-fraction", "0.08"])
    assert res.exit_code == 0, res.output
    lab = np.load(out)
    assert lab.shape == (40, 40, 40)
    assert abs((lab == 2).mean() - 0.55) < 1e-4
    assert abs((lab == 1).mean() - 0.08) < 1e-4
    assert "active" in res.output


def test_generate_h5_with_phantom_json(tmp_path):
    from microbat.io import load_microstructure, read_volume

    out = tmp_path / "el.h5"
    res = runner.invoke(
        app,
        [
            "generate",
            str(out),
            *ARGS,
            "--separator-thickness",
            "2um",
            "--phantom",
            "--psf-sigma",
            "1",
            "--snr",
            "4",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    ms = load_microstructure(out)
    assert ms.phases.names == ("pore", "cbd", "active", "separator")
    assert ms.voxel_size == pytest.approx((0.5e-6,) * 3)
    assert set(np.unique(ms.labels[-4:])) == {0, 3}
    gray_path = tmp_path / "el_gray.h5"
    assert data["phantom"]["path"] == str(gray_path)
    vol = read_volume(gray_path)
    assert np.asarray(vol.data).dtype == np.float32
    assert data["phantom"]["snr"] == 4.0
    assert data["particles"]["n_particles"] > 10
    assert data["summary"]["shape"] == [40, 40, 40]
    # the same seed reproduces the file
    again = tmp_path / "again.h5"
    res = runner.invoke(app, ["generate", str(again), *ARGS, "--separator-thickness", "2um"])
    assert res.exit_code == 0, res.output
    assert load_microstructure(again) == ms


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--shape", "40,40"], "three integers"),
        (["--active-fraction", "1.5"], "active_fraction"),
        (["--mean-radius", "-2um"], "length"),
        (["--orientation", "diagonal"], "orientation"),
        (["--snr", "4", "--noise-sigma", "0.1", "--phantom"], "not both"),
    ],
)
def test_generate_errors(tmp_path, extra, message):
    res = runner.invoke(app, ["generate", str(tmp_path / "x.npy"), *ARGS, *extra])
    assert res.exit_code == 1
    assert message in res.output
    assert "Traceback" not in res.output
