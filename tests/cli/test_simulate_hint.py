"""`microbat simulate` warns up front when the solid's electronic drop is too large.

The hint is the uniform-reaction estimate i·L/(2σ_eff) of
``transport.conduction.uniform_reaction_drop`` against the voltage window
(``docs/validation/resolved.md`` §7: binder-free CT-like crops at 10 µm stall).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from typer.testing import CliRunner

from microbat import Microstructure
from microbat.cli import app
from microbat.io import save_microstructure


def _run(path, tmp_path, *extra):
    return CliRunner().invoke(
        app,
        ["simulate", str(path), "--c-rate", "1", "--end-time", "1", "--out", str(tmp_path / "o"),
         *extra],
    )  # fmt: skip


def _rough(n: int, voxel: float, cbd: bool):
    rng = np.random.default_rng(0)
    f = ndimage.gaussian_filter(rng.standard_normal((n, n, n)), 2, mode="wrap")
    lab = (f > np.quantile(f, 0.6)).astype(np.uint8) * 2  # 0 pore, 2 active
    if cbd:  # a binder film on the pore side of every particle surface
        lab[(lab == 0) & ndimage.binary_dilation(lab == 2)] = 1
        return Microstructure(lab, voxel, "pore=0,cbd=1,active=2")
    return Microstructure(lab // 2, voxel, "pore=0,active=1")


def test_binder_free_coarse_crop_gets_the_hint(tmp_path):
    save_microstructure(_rough(16, 10e-6, cbd=False), tmp_path / "rough.h5")
    res = _run(tmp_path / "rough.h5", tmp_path)
    assert res.exit_code == 0, res.output
    line = next(ln for ln in res.output.splitlines() if ln.startswith("warning: the electrons'"))
    assert "window" in line and "carbon-binder" in line
    assert "warning: the electrons'" not in _run(tmp_path / "rough.h5", tmp_path, "--quiet").output


def test_fine_electrode_with_binder_gets_none(tmp_path):
    save_microstructure(_rough(16, 0.5e-6, cbd=True), tmp_path / "fine.h5")
    res = _run(tmp_path / "fine.h5", tmp_path)
    assert res.exit_code == 0, res.output
    assert "warning: the electrons'" not in res.output
