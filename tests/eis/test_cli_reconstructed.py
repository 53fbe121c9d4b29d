"""``microbat eis`` on an electrode reconstructed from a grayscale CT-like image.

Issue 7's "done when": the verb works on a synthetic electrode
(``test_decompose_cli.py``) and on a reconstructed one (here). A known labelled
electrode is rendered with blur and noise (``microbat.synth.phantom``), segmented by
the imaging front end, saved, and its spectrum computed by the CLI; the result is
compared with the spectrum of the true labels.
"""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from microbat import Microstructure
from microbat.cli import app


def _truth() -> Microstructure:
    """16x12x12 voxels of 1 µm: active columns on the collector and carbon-binder."""
    lab = np.zeros((16, 12, 12), np.uint8)
    lab[:, 1:6, 1:6] = 2
    lab[:, 7:11, 6:11] = 2
    lab[:, 1:5, 7:11] = 2
    lab[:10, 5:8, 2:9] = 1
    return Microstructure(lab, voxel_size=1e-6, phases="pore=0,cbd=1,active=2")


def _spectrum(ms: Microstructure, tmp_path, name: str) -> dict:
    from microbat.io import save_microstructure

    path = save_microstructure(ms, tmp_path / f"{name}.h5")
    args = ["eis", str(path), "--soc", "0.5", "--per-decade", "1", "--json"]
    r = CliRunner().invoke(app, [*args, "--out", str(tmp_path / name)])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_eis_on_reconstructed_electrode(tmp_path):
    from microbat.imaging import reconstruct
    from microbat.synth import phantom

    truth = _truth()
    image = phantom(truth, psf_sigma=0.5, snr=10.0, seed=1).image
    rec = reconstruct(
        image, voxel_size=1e-6, phases="pore,cbd,active", denoise=False, psf_sigma=None
    )
    ms = rec.microstructure
    assert np.mean(ms.labels == truth.labels) > 0.95
    d = _spectrum(ms, tmp_path, "reconstructed")
    ref = _spectrum(truth, tmp_path, "truth")
    n = len(d["frequency_Hz"])
    assert n == len(d["z_real_ohm"]) == len(d["z_imag_ohm"]) >= 8
    assert all(z < 0 for z in d["z_imag_ohm"])  # capacitive everywhere
    assert d["decomposition"]
    z = np.array(d["z_real_ohm"]) + 1j * np.array(d["z_imag_ohm"])
    z0 = np.array(ref["z_real_ohm"]) + 1j * np.array(ref["z_imag_ohm"])
    # a faithful segmentation gives a close (not identical) spectrum
    assert np.max(np.abs(z - z0) / np.abs(z0)) < 0.1  # measured 3.1 %
