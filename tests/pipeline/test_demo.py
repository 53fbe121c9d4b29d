import json

import numpy as np
from typer.testing import CliRunner

from microbat.cli import app
from microbat.io import load_microstructure


def test_demo_cli_writes_consistent_results(tmp_path):
    out = tmp_path / "demo"
    res = CliRunner().invoke(
        app, ["demo", "--out", str(out), "--size", "48", "--voxel-size", "0.5um", "--json"]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    files = {k: v for k, v in data["files"].items()}
    for path in files.values():
        assert (tmp_path / path).exists() or __import__("pathlib").Path(path).exists()
    report = json.loads((out / "results.json").read_text())
    ms = load_microstructure(out / "electrode.h5")
    # the written microstructure is the one that was characterised
    assert ms.shape == (48, 48, 48)
    assert report["microstructure"]["volume_fractions"] == ms.volume_fractions()
    tau = report["summary"]["tau_pore"]
    assert len(tau) == 3
    # a porous electrode is tortuous: 1 < tau, and Bruggeman is reported beside it
    assert all(t is None or t > 1.0 for t in tau)
    eps = ms.volume_fractions()["pore"]
    assert np.isclose(report["summary"]["bruggeman_tau_pore"], eps**-0.5)
    assert (out / "summary.png").stat().st_size > 1000
