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

from microbat import Microstructure
from microbat.cli import app

runner = CliRunner()


def _truth() -> Microstructure:
    """16x12x12 voxels of 1 µm: three active columns and a carbon-binder bridge."""
    lab = np.zeros((16, 12, 12), np.uint8)
    lab[:, 1:6, 1:6] = 2
    lab[:, 7:11, 6:11] = 2
    lab[:, 1:5, 7:11] = 2
    lab[:10, 5:8, 2:9] = 1
    return Microstructure(lab, voxel_size=1e-6, phases="pore=0,cbd=1,active=2")


def test_simulate_reconstructed_electrode(tmp_path):
    from microbat.imaging import reconstruct
    from microbat.io import save_microstructure
    from microbat.synth import phantom

    truth = _truth()
    image = phantom(truth, psf_sigma=0.5, snr=10.0, seed=1).image
    rec = reconstruct(
        image, voxel_size=1e-6, phases="pore,cbd,active", denoise=False, psf_sigma=None
    )
    ms = rec.microstructure
    assert np.mean(ms.labels == truth.labels) > 0.95  # a faithful, not a perfect, copy
    path = save_microstructure(ms, tmp_path / "reconstructed.h5")

    out = tmp_path / "run"
    args = ["simulate", str(path), "--c-rate", "1", "--end-time", "60", "--out", str(out)]
    r = runner.invoke(app, [*args, "--vtk", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["complete"] is True and d["partial"] is False
    assert d["status"] == "end time 60 s reached"
    assert d["max_conservation_error"] < 1e-8
    n_active = int(np.count_nonzero(ms.labels == 2))
    assert d["grid"]["active_voxels"] <= n_active
    assert d["capacity_Ah"] > 0 and d["energy_Wh"] > 0
    assert set(d["breakdown"]) >= {"ohmic_electrolyte", "reaction", "solid_diffusion"}
    assert (out / "fields.h5").is_file() and (out / "vtk" / "fields.pvd").is_file()
    assert (out / "curve.csv").read_text().splitlines()[-1].endswith(",false")
