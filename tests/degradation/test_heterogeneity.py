"""Aging heterogeneity index: zero on a uniform lattice, rising with a spread of sizes."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest

from microbat import Microstructure
from microbat.cell.resolved import ResolvedOptions, simulate_discharge
from microbat.core.errors import InvalidInputError
from microbat.degradation.heterogeneity import aging_heterogeneity, weighted_cov
from microbat.degradation.particles import label_particles
from microbat.degradation.plating import PlatingMonitor

C_MAX_NMC811 = 51765.0  # Chen2020 positive electrode (mol/m³)


def _lattice(r2: list[float], *, cells: int = 2, period: int = 6, layers: int = 1):
    """Simple-cubic lattice of voxel spheres, squared radius ``r2[cell % len(r2)]``.

    With period 6, r² in [6.75, 12.75) keeps neighbours joined by one face of voxels
    (the solid percolates) and three voxel shapes exist: 88 (r² < 8.75), 136
    (r² < 10.75) and 160 voxels.
    """
    shp = (period * layers, period * cells, period * cells)
    off = [(np.arange(n) % period) - (period - 1) / 2 for n in shp]
    d2 = off[0][:, None, None] ** 2 + off[1][None, :, None] ** 2 + off[2][None, None, :] ** 2
    cell = [np.arange(n) // period for n in shp]
    cid = (cell[0][:, None, None] * cells + cell[1][None, :, None]) * cells + cell[2][None, None, :]
    radii = np.asarray(r2)[cid % len(r2)]
    return Microstructure(
        (d2 <= radii).astype(np.uint8), voxel_size=0.5e-6, phases="pore=0,active=1"
    )


@functools.cache
def _run(r2: tuple[float, ...]):
    ms = _lattice(list(r2))
    parts = label_particles(ms)
    mon = PlatingMonitor(ms, particles=parts)
    opt = ResolvedOptions(electrolyte_transport_scale=100.0, end_time_s=600.0)
    simulate_discharge(ms, "chen2020", c_rate=2.0, options=opt, on_fields=mon)
    return parts, aging_heterogeneity(mon, c_max=C_MAX_NMC811, times=[300.0, 600.0])


def test_weighted_cov():
    assert weighted_cov(np.array([2.0, 2.0, 2.0])) == 0.0
    assert weighted_cov(np.zeros(4)) == 0.0
    assert weighted_cov(np.array([1.0, 3.0])) == pytest.approx(0.5)
    # weights: 3 of value 1 and 1 of value 3 → mean 1.5, sd √0.75
    assert weighted_cov(np.array([1.0, 3.0]), np.array([3.0, 1.0])) == pytest.approx(
        np.sqrt(0.75) / 1.5
    )
    assert np.isnan(weighted_cov(np.array([np.nan])))
    with pytest.raises(InvalidInputError):
        weighted_cov(np.ones(3), np.ones(2))


def test_uniform_lattice_gives_zero_to_round_off():
    # one layer of identical particles: every particle sees the same fields by symmetry
    parts, het = _run((9.0,))
    assert parts.n == 4 and np.unique(parts.volume_m3).size == 1
    assert het.n_particles == 4
    assert np.all(het.index < 1e-12)
    assert np.all(het.cov_current_density < 1e-10)
    assert np.all(het.cov_plating_exposure == 0.0)  # no exposure anywhere (cathode)
    d = json.loads(het.to_json())
    assert len(d["particles"]) == 4 and d["end"]["index"] < 1e-12


def test_index_rises_with_the_spread_of_particle_sizes():
    # size CoV 0 < 0.08 (136/160 voxels) < 0.21 (88/136) < 0.29 (88/160)
    index = []
    for r2 in ((9.0,), (9.0, 11.0), (7.0, 9.0), (7.0, 11.0)):
        _, het = _run(r2)
        index.append(het.index)
    index = np.array(index)  # (spread, time)
    assert np.all(np.diff(index, axis=0) > 0), index
    assert index[-1].min() > 1e-3


def test_needs_particles():
    ms = _lattice([9.0])
    mon = PlatingMonitor(ms)
    with pytest.raises(InvalidInputError, match="particles"):
        aging_heterogeneity(mon, c_max=1.0)
