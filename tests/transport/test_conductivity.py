import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from microbat import Microstructure, transport
from microbat.core.errors import InvalidInputError, PhaseError
from microbat.transport.conduction import conductivity
from microbat.transport.diffusion import PercolationWarning


def _slabs(axis):
    lab = np.zeros((10, 12, 8), np.uint8)  # active
    sl = [slice(None)] * 3
    sl[axis] = slice(0, 4)
    lab[tuple(sl)] = 1  # cbd
    sl[axis] = slice(4, 6)
    lab[tuple(sl)] = 2  # pore
    return Microstructure(lab, voxel_size=(1e-6, 2e-6, 1e-6), phases="active=0,cbd=1,pore=2")


def test_parallel_and_series_conduction_exactly():
    cond = {"active": 0.5, "cbd": 40.0}
    par = conductivity(_slabs(1), conductivities=cond, axis=0)  # slabs along axis 0
    assert par.sigma_eff[0] == pytest.approx((4 * 40 + 6 * 0.5) / 12, rel=1e-12)
    assert par.sigma_mean == pytest.approx(par.sigma_eff[0], rel=1e-12)
    assert par.tau[0] == pytest.approx(1.0, rel=1e-12)
    assert par.kind == "electronic"
    assert par.volume_fraction == pytest.approx(10 / 12)
    with pytest.warns(PercolationWarning):
        ser = conductivity(_slabs(0), conductivities=cond, axis=0)  # the pore slab blocks
    assert ser.sigma_eff[0] == 0.0 and ser.tau[0] == math.inf and not ser.percolating[0]
    # all three in series (electrons and ions alike: a "mixed" medium)
    mixed = conductivity(_slabs(0), conductivities={**cond, "pore": 2.0}, axis=0)
    assert mixed.kind == "mixed"
    assert mixed.sigma_eff[0] == pytest.approx(10 / (4 / 40 + 2 / 2.0 + 4 / 0.5), rel=1e-12)
    assert mixed.sigma_eff[0] <= mixed.sigma_mean
    # ions through electrolyte and binder side by side; the active material blocks
    ionic = conductivity(_slabs(1), conductivities={"pore": 1.2, "cbd": 0.12}, axis=0)
    assert ionic.kind == "ionic"
    assert ionic.sigma_eff[0] == pytest.approx((2 * 1.2 + 4 * 0.12) / 12, rel=1e-12)


def test_default_is_relative_electronic_conductivity(channels):
    r = transport.conductivity(channels, axis="all")  # the lazily exported function
    assert r.conductivities == {"active": 1.0}
    solid = channels.fraction("active")
    assert r.sigma_eff[0] == pytest.approx(solid, rel=1e-12)  # straight along the channels
    assert all(0 < s < solid for s in r.sigma_eff[1:])
    assert all(t >= 1.0 for t in r.tau)
    assert r.potential[0].shape == channels.shape
    data = json.loads(r.to_json())
    assert data["potential"][0]["shape"] == list(channels.shape)


def test_conductivity_errors(channels):
    with pytest.raises(InvalidInputError, match="non-negative"):
        conductivity(channels, conductivities={"active": -2.0})
    with pytest.raises(PhaseError, match="unknown phase"):
        conductivity(channels, conductivities={"binder": 1.0})
    with pytest.raises(PhaseError, match="no phase conducts"):
        conductivity(channels, conductivities={"active": 0.0})
    lab = np.zeros((4, 4, 4), np.uint8)
    ms = Microstructure(lab, voxel_size=1e-6, phases="pore=0", allow_empty_phases=True)
    with pytest.raises(InvalidInputError, match="no electron-conducting"):
        conductivity(ms)


def test_cli_conductivity(tmp_path, channels):
    from microbat.cli import app

    path = tmp_path / "chan.npy"
    np.save(path, np.asarray(channels.labels))
    runner = CliRunner()
    base = [str(path), "--phases", "pore=0,active=1", "--voxel-size", "1um"]
    res = runner.invoke(app, ["conductivity", *base, "--axis", "all", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["kind"] == "electronic"
    assert data["sigma_eff"][0] == pytest.approx(channels.fraction("active"))
    res = runner.invoke(
        app, ["conductivity", *base, "--kind", "ionic", "--conductivities", "pore=2", "--json"]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["kind"] == "ionic"
    assert data["sigma_eff"][0] == pytest.approx(2 * channels.fraction("pore"))
    res = runner.invoke(app, ["conductivity", *base, "--conductivities", "pore:2"])
    assert res.exit_code == 1 and "name=value" in res.output


def test_uniform_reaction_drop_is_the_1d_closed_form_and_scales_with_sigma_eff():
    from microbat.transport.conduction import uniform_reaction_drop

    # 1D finite-volume solve of σ u'' = -i/L, u(0) = 0 (collector face), u'(L) = 0:
    # u(L) = i L / (2σ), the drop the estimate takes for a uniform reaction
    n, L, sigma, i = 200, 1e-4, 0.18, 100.0
    h = L / n
    A = np.zeros((n, n))
    for k in range(n):
        if k > 0:
            A[k, k - 1] -= sigma / h
            A[k, k] += sigma / h
        if k < n - 1:
            A[k, k + 1] -= sigma / h
            A[k, k] += sigma / h
    A[0, 0] += 2 * sigma / h  # half a cell to the held face
    u = np.linalg.solve(A, np.full(n, i / L * h))
    assert u[-1] == pytest.approx(i * L / (2 * sigma), rel=h / L)  # the far end
    # a solid block: σ_eff = σ
    ms = Microstructure(np.zeros((10, 4, 4), np.uint8), voxel_size=L / 10, phases="active=0")
    d = uniform_reaction_drop(ms, i, conductivities={"active": sigma})
    assert d == pytest.approx(i * L / (2 * sigma), rel=1e-9)
    # straight rods of a quarter of the section: σ_eff = σ / 4, four times the drop
    lab = np.ones((10, 4, 4), np.uint8)
    lab[:, :2, :2] = 0
    rods = Microstructure(lab, voxel_size=L / 10, phases="active=0,pore=1")
    assert uniform_reaction_drop(rods, i, conductivities={"active": sigma}) == pytest.approx(4 * d)
    # no path: infinite; a non-finite current: refused
    lab = np.ones((10, 4, 4), np.uint8)
    lab[:4] = 0
    cut = Microstructure(lab, voxel_size=L / 10, phases="active=0,pore=1")
    assert uniform_reaction_drop(cut, i, conductivities={"active": sigma}) == float("inf")
    with pytest.raises(InvalidInputError, match="current_density"):
        uniform_reaction_drop(ms, float("nan"))
