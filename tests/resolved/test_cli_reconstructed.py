"""``microbat simulate`` on an electrode reconstructed from a grayscale image.

The issue's "done when": a resolved discharge from the command line on a synthetic
electrode (``test_cli.py``) and on a reconstructed one (here): a known labelled
electrode is rendered as a noisy, blurred CT-like image (``microbat.synth.phantom``),
reconstructed by the imaging pipeline (``microbat.imaging.reconstruct``), saved with
its phase table, and discharged by the CLI.
"""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from microbat.cli import app

runner = CliRunner()


def test_simulate_reconstructed_electrode(tmp_path, reconstructed_electrode):
    from microbat.io import save_microstructure

    truth, ms = reconstructed_electrode
    assert np.mean(ms.labels == truth.labels) > 0.95  # a faithful, not a perfect, copy
    path = save_microstructure(ms, tmp_path / "reconstructed.h5")

    out = tmp_path / "run"
    args = ["simulate", str(path), "--c-rate", "1", "--end-time", "60", "--out", str(out)]
    r = runner.invoke(app, [*args, "--vtk", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["complete"] is True and d["partial"] is False
    assert d["status"] == "end time 60 s reached"
    assert d["max_conservation_error"] < 1e-8
    n_active = int(np.count_nonzero(ms.labels == 2))
    assert d["grid"]["active_voxels"] <= n_active
    assert d["capacity_Ah"] > 0 and d["energy_Wh"] > 0
    assert set(d["breakdown"]) >= {"ohmic_electrolyte", "reaction", "solid_diffusion"}
    assert (out / "fields.h5").is_file() and (out / "vtk" / "fields.pvd").is_file()
    assert (out / "curve.csv").read_text().splitlines()[-1].endswith(",false")
