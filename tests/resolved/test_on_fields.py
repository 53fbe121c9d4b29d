"""The per-step field hook ``on_fields`` of the resolved model."""

from __future__ import annotations

import numpy as np

from microbat import Microstructure
from microbat.cell.resolved import ResolvedOptions, simulate_discharge


def _electrode() -> Microstructure:
    lab = np.zeros((8, 6, 6), np.uint8)
    lab[:, :3, :3] = 2
    lab[:, 3:, 3:] = 2
    lab[:5, :3, 3:5] = 1
    return Microstructure(lab, voxel_size=1e-6, phases="pore=0,cbd=1,active=2")


def test_on_fields_every_step_matches_snapshot():
    seen: list[tuple[float, dict[str, np.ndarray]]] = []

    def hook(t, fields):
        seen.append((t, dict(fields)))

    ms = _electrode()
    opt = ResolvedOptions(max_steps=6, dv_target_V=0.02)
    res = simulate_discharge(ms, c_rate=2.0, options=opt, snapshot_times=[], on_fields=hook)
    assert len(seen) == res.steps == 6
    times = [t for t, _ in seen]
    assert np.all(np.diff(times) > 0)
    assert times[-1] == res.time_s[-1]
    for _, f in seen:
        for k in ("phi_s", "phi_e", "c_e", "stoichiometry", "c_s", "reaction_current"):
            assert f[k].shape == ms.shape and f[k].dtype == np.float64
        # NaN outside each field's phase
        assert np.all(np.isnan(f["phi_e"][ms.labels == 2]))
        assert np.all(np.isfinite(f["phi_e"][ms.labels == 0]))
        assert np.all(np.isnan(f["stoichiometry"][ms.labels != 2]))
        assert np.all(np.isfinite(f["phi_s"][ms.labels != 0]))
    # the last hook call is the end state kept as the last snapshot (float32 there)
    end = res.snapshots[-1].fields
    for k in ("phi_s", "phi_e", "c_e", "stoichiometry", "reaction_current"):
        np.testing.assert_allclose(seen[-1][1][k], end[k], rtol=1e-6, equal_nan=True)
    # lithiation: the stoichiometry rises from step to step
    th = [np.nanmean(f["stoichiometry"]) for _, f in seen]
    assert np.all(np.diff(th) > 0)
