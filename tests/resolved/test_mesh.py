"""Mesh convergence: one geometry at voxel sizes h, h/2, h/4 (same shapes, upsampled)."""

from __future__ import annotations

import numpy as np
import pytest

from microbat import Microstructure
from microbat.cell.resolved import ResolvedOptions, simulate_discharge


def _voltages(factors):
    lab = np.zeros((6, 2, 2), np.uint8)
    lab[:, 0, :] = 2  # active slab through the thickness
    lab[:3, 1, 0] = 1  # carbon-binder
    base = Microstructure(lab, voxel_size=2e-6, phases="pore=0,cbd=1,active=2")
    out = []
    for f in factors:
        opt = ResolvedOptions(
            dt_initial_s=20.0,
            dt_max_s=20.0,
            dv_target_V=1.0,
            end_time_s=600.0,
            separator_layers=4 * f,
        )
        r = simulate_discharge(base.upsample(f), c_rate=1.0, options=opt, snapshot_times=[])
        assert r.complete and r.max_conservation_error < 1e-8
        out.append(r.voltage_V)
    return out


def test_two_resolutions_close():
    v1, v2 = _voltages((1, 2))
    assert v1.shape == v2.shape  # same fixed time steps
    # the coarse grid holds the 2 µm slab in one voxel: its surface concentration is
    # the slab mean, so the voltage is higher; the difference stays within 60 mV
    diff = v1[1:] - v2[1:]
    assert np.all(diff > 0)
    assert np.max(diff) < 0.06


@pytest.mark.slow
def test_three_resolutions_converge():
    v1, v2, v4 = _voltages((1, 2, 4))
    assert abs(v2[-1] - v4[-1]) < abs(v1[-1] - v2[-1])
