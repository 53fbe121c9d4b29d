"""Degenerate geometry in every transport path: no exception, inf/null where no path.

Geometries (all 32³ unless stated, so that the matrix-free multigrid is used for the
larger systems): decoupled straight channels along axis 0, one straight channel,
pore layers (percolating along axes 0 and 1 only), one closed pore (percolates along
no axis), one pore voxel, and a staircase channel that connects the two held faces
of axis 0 but not itself across the periodic seam.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from microbat import Microstructure
from microbat.transport.conduction import conductivity
from microbat.transport.diffusion import PercolationWarning, tortuosity
from microbat.transport.randomwalk import random_walk
from microbat.transport.tensor import periodic_deff, tortuosity_tensor

N = 32


def _channels(n: int = N) -> np.ndarray:
    lab = np.ones((n, n, n), np.uint8)
    for i in range(2, n, 8):
        for j in range(2, n, 8):
            lab[:, i : i + 3, j : j + 3] = 0
    return lab


def _single(n: int = N) -> np.ndarray:
    lab = np.ones((n, n, n), np.uint8)
    lab[:, n // 2 - 2 : n // 2 + 2, n // 2 - 2 : n // 2 + 2] = 0
    return lab


def _layers(n: int = N) -> np.ndarray:
    lab = np.ones((n, n, n), np.uint8)
    lab[:, :, ::4] = 0
    return lab


def _closed(n: int = N) -> np.ndarray:
    lab = np.ones((n, n, n), np.uint8)
    lab[n // 2 - 3 : n // 2 + 3, n // 2 - 3 : n // 2 + 3, n // 2 - 3 : n // 2 + 3] = 0
    return lab


def _one_voxel(n: int = N) -> np.ndarray:
    lab = np.ones((n, n, n), np.uint8)
    lab[3, 4, 5] = 0
    return lab


# name: (labels, percolating per axis)
GEOMETRIES = {
    "channels": (_channels, (True, False, False)),
    "single": (_single, (True, False, False)),
    "layers": (_layers, (True, True, False)),
    "closed": (_closed, (False, False, False)),
    "one_voxel": (_one_voxel, (False, False, False)),
}


def _ms(name: str) -> Microstructure:
    return Microstructure(GEOMETRIES[name][0](), voxel_size=1e-6, phases="pore=0,active=1")


def _check_warnings(rec, perc, category=PercolationWarning) -> None:
    blocked = {a for a, p in enumerate(perc) if not p}
    msgs = [str(w.message) for w in rec if issubclass(w.category, category)]
    for a in blocked:
        assert any(f"axis {a}" in m or str(a) in m for m in msgs), msgs
    if not blocked:
        assert not msgs


@pytest.mark.parametrize("name", list(GEOMETRIES))
def test_tortuosity_all_axes(name):
    perc = GEOMETRIES[name][1]
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        r = tortuosity(_ms(name), phase="pore", axis="all")
    assert r.percolating == perc
    for a in range(3):
        if perc[a]:
            assert r.tau[a] == pytest.approx(1.0, abs=1e-9)  # straight paths
        else:
            assert r.tau[a] == math.inf and r.deff_over_d0[a] == 0.0
    _check_warnings(rec, perc)


@pytest.mark.parametrize("method", ["dirichlet", "periodic"])
@pytest.mark.parametrize("name", list(GEOMETRIES))
def test_tensor(name, method):
    perc = GEOMETRIES[name][1]
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        t = tortuosity_tensor(_ms(name), phase="pore", method=method)
    assert t.percolating == perc
    assert np.all(np.isfinite(t.deff_over_d0))
    assert not np.any(np.isnan(t.tau)) and not np.any(np.isnan(t.principal_tau))
    for a in range(3):
        if perc[a]:
            assert t.tau[a, a] == pytest.approx(1.0, abs=1e-6)
        else:
            assert t.tau[a, a] == math.inf
            assert np.all(t.deff_over_d0[a] == 0) and np.all(t.deff_over_d0[:, a] == 0)
    off = t.tau[~np.eye(3, dtype=bool)]
    assert np.all(np.abs(off) < 1e-6)
    assert np.all(t.principal_tau >= 1 - 1e-9)
    _check_warnings(rec, perc)


@pytest.mark.parametrize("name", ["channels", "layers", "closed"])
def test_periodic_deff_column_is_zero_without_winding(name):
    ms = _ms(name)
    deff, spread = periodic_deff(ms, {0: 1.0})
    perc = GEOMETRIES[name][1]
    frac = ms.fraction("pore")
    for j in range(3):
        if perc[j]:
            assert deff[j, j] == pytest.approx(frac, rel=1e-6)
        else:
            assert np.all(deff[:, j] == 0.0)
    assert math.isfinite(spread)


def _staircase(n: int = 24) -> Microstructure:
    """A channel along axis 0 that steps sideways half way: held faces connect, the
    periodic seam does not (the two ends are at different positions)."""
    lab = np.ones((n, 12, 12), np.uint8)
    lab[: n // 2 + 2, 2:5, 2:5] = 0
    lab[n // 2 - 1 : n // 2 + 2, 2:10, 2:5] = 0
    lab[n // 2 - 1 :, 7:10, 2:5] = 0
    return Microstructure(lab, voxel_size=1e-6, phases="pore=0,active=1")


def test_tensor_staircase_held_sides_connect_seam_does_not():
    ms = _staircase()
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        d = tortuosity_tensor(ms, phase="pore")
        p = tortuosity_tensor(ms, phase="pore", method="periodic")
    assert d.percolating == (True, False, False) == p.percolating
    assert math.isfinite(d.tau[0, 0]) and d.tau[0, 0] > 1
    assert p.tau[0, 0] == math.inf  # the periodic repetition has no path along 0
    assert p.deff_over_d0[0, 0] == 0.0
    assert any("periodic repetition" in str(w.message) for w in rec)
    for t in (d, p):
        assert not np.any(np.isnan(t.tau))


@pytest.mark.parametrize("name", list(GEOMETRIES))
def test_conductivity_all_axes(name):
    perc = GEOMETRIES[name][1]
    ms = _ms(name)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        r = conductivity(ms, conductivities={"pore": 2.0}, axis="all")
    assert r.percolating == perc
    for a in range(3):
        if perc[a]:
            assert r.sigma_eff[a] == pytest.approx(2.0 * ms.fraction("pore"))
        else:
            assert r.sigma_eff[a] == 0.0 and r.tau[a] == math.inf
    _check_warnings(rec, perc)


@pytest.mark.parametrize("release", ["phase", "percolating"])
@pytest.mark.parametrize("name", list(GEOMETRIES))
def test_random_walk(name, release):
    perc = GEOMETRIES[name][1]
    lab = GEOMETRIES[name][0](16)
    ms = Microstructure(lab, voxel_size=1e-6, phases="pore=0,active=1")
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        r = random_walk(ms, n_walkers=200, n_steps=400, release=release, seed=3)
    assert r.percolating == perc
    for a in range(3):
        if perc[a]:
            assert math.isfinite(r.tau[a]) and r.tau[a] > 0
        else:
            assert r.tau[a] == math.inf
    # microbat's own warning (not a RuntimeWarning), as in the steady solves
    blocked = [w for w in rec if "does not percolate" in str(w.message)]
    assert all(issubclass(w.category, PercolationWarning) for w in blocked)
    if not all(perc):
        assert blocked
    if not any(perc):
        if release == "percolating":
            assert r.released_fraction == 0.0 and r.n_walkers == 0
    data = r.to_dict()
    json.dumps(data, allow_nan=False)
    assert data["tau"] == [None if not p else data["tau"][a] for a, p in enumerate(perc)]


@pytest.mark.parametrize("name", list(GEOMETRIES))
def test_cli_json(tmp_path, name):
    from typer.testing import CliRunner

    from microbat.cli import app

    perc = GEOMETRIES[name][1]
    path = tmp_path / f"{name}.npy"
    np.save(path, GEOMETRIES[name][0]())
    base = [str(path), "--phases", "pore=0,active=1", "--voxel-size", "1um"]
    runner = CliRunner()
    res = runner.invoke(app, ["tortuosity", *base, "--phase", "pore", "--axis", "all", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["percolating"] == list(perc)
    for a in range(3):
        assert (data["tau"][a] is None) == (not perc[a])
        assert (data["tensor"][a][a] is None) == (not perc[a])
    assert len(data["warnings"]) == sum(not p for p in perc)
    res = runner.invoke(
        app, ["conductivity", *base, "--kind", "ionic", "--conductivities", "pore=1",
              "--axis", "all", "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["percolating"] == list(perc)
    assert [t is None for t in data["tau"]] == [not p for p in perc]
