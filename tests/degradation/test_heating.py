"""Joule heating: energy balance, neck heat density, a hand-built ladder network for the
operating mode, the slab temperature against the parabola, bad input, the CLI."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

from microbat import Microstructure
from microbat.core.constants import FARADAY
from microbat.core.errors import InvalidInputError, NotPercolatingError, PhaseError
from microbat.degradation.heating import (
    GAS_CONSTANT,
    HeatProperties,
    NoCarbonBinderWarning,
    joule_heating,
    temperature_rise,
)


@pytest.fixture(scope="module")
def electrode() -> Microstructure:
    from microbat import synth

    return synth.electrode((24, 24, 24), voxel_size=4e-7, seed=4, mean_radius=2e-6)


@pytest.mark.parametrize("method", ["direct", "mg"])
def test_energy_balance_through_solid(electrode, method):
    r = joule_heating(electrode, through="solid", current_density=30.0, tol=1e-12, method=method)
    assert r.current_A == pytest.approx(30.0 * (24 * 4e-7) ** 2)
    # Σ I²/g over every face (held half-cells included) = I ΔV of the same solve
    assert r.energy_balance_error < 1e-9
    assert r.total_heat_W == pytest.approx(r.current_A * r.voltage_drop_V, rel=1e-9)
    assert r.heat_by_kind_W["ionic"] == 0 and r.heat_by_kind_W["reaction"] == 0
    assert 0 < r.heat_top1pct_fraction < 1
    q = r.heat_W_per_m3
    assert np.isnan(q[np.asarray(electrode.labels) == 0]).all()  # pores carry no electrons
    assert r.heat_per_area_W_per_m2 == pytest.approx(r.total_heat_W / (24 * 4e-7) ** 2)


def test_energy_balance_operating_mode(electrode):
    for method in ("direct", "mg"):
        r = joule_heating(electrode, current_density=30.0, method=method, tol=1e-12)
        assert r.energy_balance_error < 1e-8, method
        k = r.heat_by_kind_W
        assert min(k.values()) > 0
        assert sum(k.values()) == pytest.approx(r.total_heat_W, rel=1e-12)
        assert r.electrolyte_potential_V is not None


@pytest.mark.parametrize(("wide", "neck"), [(4, 2), (6, 2), (6, 3)])
def test_neck_heat_density_is_the_area_ratio_squared(wide, neck):
    n = 110  # long parts: the spreading at the neck's ends decays as exp(-π x / width)
    lab = np.ones((n, wide, wide), np.uint8)
    lab[40:70] = 0
    o = (wide - neck) // 2
    lab[40:70, o : o + neck, o : o + neck] = 1
    ms = Microstructure(lab, 1e-6, phases="pore=0,cbd=1")
    r = joule_heating(ms, through="solid", current_density=10.0, tol=1e-12, top_fraction=0.1)
    q = r.heat_W_per_m3
    ratio = q[55, o, o] / q[5, 0, 0]
    assert ratio == pytest.approx((wide**2 / neck**2) ** 2, rel=1e-6)
    # with the hottest 10 % the neck is one cluster across its section: it carries
    # the whole current
    (top,) = r.necks
    assert top["depth_m"] == pytest.approx(55e-6)
    assert top["current_fraction"] == pytest.approx(1.0, rel=1e-9)
    assert top["phase"] == "cbd"


def _ladder(n: int, h: float, props: HeatProperties) -> float:
    """Current at 1 V of a two-lamella electrode solved as a hand-built ladder network.

    Lamella 0 is active material, lamella 1 electrolyte (one voxel each, along
    axis 1); layer i of each couples along the thickness (axis 0), the two couple
    by charge transfer in series with their half-cells; the collector holds the
    solid through a half-cell, the separator face the electrolyte, and feeds the
    reaction of the last active voxel (area fraction ε_sep).
    """
    a = h * h
    sig, kap = props.active_conductivity, props.electrolyte_conductivity
    gct = props.exchange_current_density * FARADAY / (GAS_CONSTANT * props.temperature)
    gs, ge = sig * a / h, kap * a / h
    grx = 1.0 / (h / (2 * sig * a) + 1 / (gct * a) + h / (2 * kap * a))
    gb_s, gb_e = 2 * sig * a / h, 2 * kap * a / h
    gsep = 1.0 / (h / (2 * sig * a) + 1 / (gct * a * props.separator_porosity))
    m = np.zeros((2 * n, 2 * n))
    b = np.zeros(2 * n)
    for i in range(n):
        s, e = i, n + i
        for j, g in ((s, gs), (e, ge)):
            if i > 0:
                m[j, j] += g
                m[j, j - 1] -= g
            if i < n - 1:
                m[j, j] += g
                m[j, j + 1] -= g
        m[s, s] += grx
        m[e, e] += grx
        m[s, e] -= grx
        m[e, s] -= grx
    m[0, 0] += gb_s
    b[0] = gb_s * 1.0
    m[n - 1, n - 1] += gsep
    m[2 * n - 1, 2 * n - 1] += gb_e
    x = np.linalg.solve(m, b)
    return gb_s * (1.0 - x[0])


def test_operating_mode_equals_a_hand_built_ladder():
    n, h = 30, 1e-6
    lab = np.zeros((n, 2, 1), np.uint8)
    lab[:, 0] = 2  # active lamella; lamella 1 is electrolyte
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoCarbonBinderWarning)
        ms = Microstructure(lab, h, phases="pore=0,cbd=1,active=2", allow_empty_phases=True)
        r = joule_heating(ms, current_density=10.0, method="direct")
    props = HeatProperties()
    i_unit = _ladder(n, h, props)
    area = 2 * h * h
    assert r.voltage_drop_V == pytest.approx(10.0 * area / i_unit, rel=1e-9)
    assert r.energy_balance_error < 1e-9


def test_slab_temperature_is_the_parabola_with_second_order_error():
    k, q_vol, length = 0.5, 2e4, 40e-6
    errs = []
    for n in (10, 20, 40):
        h = length / n
        kk = np.full((n, 2, 2), k)
        dT, _ = temperature_rise(kk, np.full(kk.shape, q_vol * h**3), (h, h, h))
        x = (np.arange(n) + 0.5) * h
        exact = q_vol * x * (2 * length - x) / (2 * k)
        # the cell-centred scheme is the parabola plus q h² / (8 k) (first centre half
        # a voxel from the held face): an exact statement of the discrete solution
        assert np.allclose(dT[:, 0, 0], exact + q_vol * h * h / (8 * k), rtol=1e-8, atol=0)
        errs.append(np.abs(dT[:, 0, 0] - exact).max() / exact.max())
    rates = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all(rates >= 1.99)
    assert errs[-1] < 1e-3


def test_temperature_rise_of_an_electrode_is_tiny_and_stated(electrode):
    r = joule_heating(electrode, current_density=30.0)
    # the slab estimate Q'' L / (2 k) bounds the order of magnitude
    length = 24 * 4e-7
    slab = r.heat_per_area_W_per_m2 * length / (2 * 0.2)
    assert 0 < r.max_delta_T_K < 10 * slab < 1e-3
    assert r.local_delta_T_K < r.max_delta_T_K
    assert "current-collector face" in r.thermal_boundary
    assert r.depth_m.size == 24 and r.heat_depth_W_per_m3.shape == (24,)
    assert np.mean(r.heat_depth_W_per_m3) == pytest.approx(r.heat_per_volume_W_per_m3, rel=1e-9)


def test_no_carbon_binder_warns_and_uses_the_active_material():
    lab = np.full((12, 6, 6), 2, np.uint8)
    lab[:, :2] = 0
    ms = Microstructure(lab, 1e-6, phases="pore=0,cbd=1,active=2", allow_empty_phases=True)
    with pytest.warns(NoCarbonBinderWarning, match="no carbon-binder"):
        r = joule_heating(ms, through="solid")
    assert r.total_heat_W > 0 and r.warnings


@pytest.mark.parametrize("j", [0.0, -5.0, math.nan])
def test_bad_current_is_refused(electrode, j):
    with pytest.raises(InvalidInputError, match="current density"):
        joule_heating(electrode, current_density=j)


def test_no_ion_conductor_or_no_path_is_refused():
    solid = Microstructure(
        np.ones((8, 4, 4), np.uint8), 1e-6, phases="pore=0,active=1", allow_empty_phases=True
    )
    with pytest.raises(PhaseError, match="--through solid"), pytest.warns(NoCarbonBinderWarning):
        joule_heating(solid)
    broken = np.ones((8, 4, 4), np.uint8)
    broken[4] = 0
    ms = Microstructure(broken, 1e-6, phases="pore=0,cbd=1")
    with pytest.raises(NotPercolatingError):
        joule_heating(ms, through="solid")


def test_properties_are_validated():
    with pytest.raises(InvalidInputError, match="non-negative"):
        HeatProperties(active_conductivity=-1)
    with pytest.raises(InvalidInputError, match="conducts some heat"):
        HeatProperties(gas_thermal_conductivity=0)
    assert HeatProperties().charge_transfer_conductance == pytest.approx(
        3.41 * FARADAY / (GAS_CONSTANT * 298.15)
    )


# ------------------------------------------------------------------------- CLI
def _run(*args):
    from microbat.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def electrode_file(tmp_path_factory, electrode):
    from microbat.io import save_microstructure

    return save_microstructure(electrode, tmp_path_factory.mktemp("heat") / "e.h5")


@pytest.mark.parametrize("through", ["electrode", "solid"])
def test_cli_heat_json_and_out(tmp_path, electrode, electrode_file, through):
    out = tmp_path / "h"
    r = _run(
        "heat", electrode_file, "--current-density", "3mA/cm2", "--through", through, "--json",
        "--out", out,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    for key in (
        "total_heat_W", "voltage_drop_V", "heat_top1pct_fraction", "max_delta_T_K",
        "heat_per_area_W_per_m2",
    ):  # fmt: skip
        assert isinstance(d[key], float) and d[key] > 0, key
    assert d["current_density_A_per_m2"] == 30.0
    names = {p.name for p in out.iterdir()}
    assert {
        "result.json", "fields.npz", "depth_profile.csv", "necks.csv", "heat.vti",
        "current_density.vti", "delta_T.vti", "heat_slices.png", "heat_depth.png",
    } <= names  # fmt: skip
    with np.load(out / "fields.npz") as z:
        q = z["heat_W_per_m3"]
    assert q.shape == (24, 24, 24)
    assert json.loads((out / "result.json").read_text())["heat_W_per_m3"]["shape"] == [24] * 3
    if through == "solid":  # NaN where no conductor: the pores
        assert np.isnan(q[np.asarray(electrode.labels) == 0]).all()


@pytest.mark.parametrize(
    ("args", "msg"),
    [
        (["--current-density", "0"], "non-zero current"),
        (["--current-density", "30 W"], "cannot read"),
        (["--through", "liquid"], "--through"),
        (["--properties", "foo=1"], "--properties"),
    ],
)
def test_cli_heat_bad_input_writes_nothing(tmp_path, electrode_file, args, msg):
    out = tmp_path / "h"
    r = _run("heat", electrode_file, *args, "--out", out)
    assert r.exit_code == 1, r.output
    assert msg in r.stderr and len(r.stderr.strip().splitlines()) <= 3
    assert not out.exists() or not any(out.iterdir())
