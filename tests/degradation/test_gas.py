"""Gas and wetting: Young–Laplace entry pressures, conductance of what is left,
agreement with PoreSpy (or a brute-force reference), placements, the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import ndimage as ndi
from typer.testing import CliRunner

from microbat import Microstructure
from microbat.core.errors import InvalidInputError, PhaseError
from microbat.degradation.gas import (
    add_gas,
    capillary_pressure,
    drainage,
    gas_analysis,
    place_gas,
)

H = 1e-6  # voxel edge (m)
GAMMA = 0.035
RADII = (2, 3, 5)


def _channels() -> tuple[Microstructure, list[np.ndarray]]:
    """Three straight cylinders of radius 2, 3 and 5 voxels along axis 0."""
    lab = np.zeros((16, 12, 40), np.uint8)
    yy, zz = np.mgrid[:12, :40]
    masks = []
    for r, cz in zip(RADII, (4, 13, 28), strict=True):
        disc = (yy - 6) ** 2 + (zz - cz) ** 2 < r * r
        lab[:, disc] = 1
        m = np.zeros(lab.shape, bool)
        m[:, disc] = True
        masks.append(m)
    return Microstructure(lab, H, phases="active=0,pore=1"), masks


def _entry(r: float, theta: float = 0.0) -> float:
    return 2 * GAMMA * math.cos(math.radians(theta)) / (r * H)


@pytest.mark.parametrize("theta", [0.0, 40.0])
def test_each_channel_is_invaded_at_its_young_laplace_pressure(theta):
    ms, masks = _channels()
    pressures = sorted(
        p for r in RADII for p in (_entry(r, theta) * (1 - 1e-6), _entry(r, theta) * (1 + 1e-6))
    )
    res = drainage(ms, pressures=pressures, surface_tension=GAMMA, contact_angle_deg=theta)
    inv = res.invasion_pressure_Pa
    for r, m in zip(RADII, masks, strict=True):
        # every voxel of the channel enters exactly at 2 γ cos θ / r, and not before
        assert np.allclose(inv[m], _entry(r, theta), rtol=1e-12, atol=0)
        assert not res.gas_mask(_entry(r, theta) * (1 - 1e-6))[m].any()
        assert res.gas_mask(_entry(r, theta) * (1 + 1e-6))[m].all()
    assert res.entry_pressure_Pa == pytest.approx(_entry(5, theta), rel=1e-12)
    assert res.breakthrough_pressure_Pa == pytest.approx(_entry(5, theta), rel=1e-12)
    assert np.isnan(inv[np.asarray(ms.labels) == 0]).all()
    # the curve steps by the channels' volume fractions
    vol = np.array([m.sum() for m in masks], float) / sum(m.sum() for m in masks)
    expect = [vol[2], vol[2], vol[2] + vol[1], vol[2] + vol[1], 1.0]
    got = [float(s) for s in res.saturation[1:]]
    assert got == pytest.approx(expect, abs=1e-12)


def test_conductance_of_the_remaining_electrolyte_is_the_sum_over_open_channels():
    from microbat.transport.conduction import conductivity

    ms, masks = _channels()
    kappa = 1.0
    # between the entry pressures of radius 5 and 3: the widest channel is gas
    p = 0.5 * (_entry(5) + _entry(3))
    res = drainage(ms, pressures=[p], surface_tension=GAMMA, contact_angle_deg=0)
    gassed = add_gas(ms, res.gas_mask(p))
    assert gassed.phases["gas"].role.value == "gas"
    sig = conductivity(gassed, conductivities={"pore": kappa}, axis=0, tol=1e-9).sigma_eff[0]
    area = ms.shape[1] * ms.shape[2]
    open_area = sum(int(m[0].sum()) for m in masks[:2])
    assert sig == pytest.approx(kappa * open_area / area, rel=1e-9)
    # the analysis reports the same ratio (gas = the widest channel exactly)
    frac = masks[2].sum() / sum(m.sum() for m in masks)
    r = gas_analysis(ms, [frac], surface_tension=GAMMA, contact_angle_deg=0, tol=1e-6)
    assert r.achieved_saturation[0] == pytest.approx(frac, abs=1 / ms.n_voxels)
    assert r.effective_conductivity_ratio[0] == pytest.approx(
        open_area / sum(int(m[0].sum()) for m in masks), rel=1e-5
    )
    assert r.capillary_pressure_Pa[0] == pytest.approx(_entry(5), rel=1e-12)


def _random_pores(n: int, seed: int = 3, porosity: float = 0.45) -> np.ndarray:
    rng = np.random.default_rng(seed)
    f = ndi.gaussian_filter(rng.standard_normal((n, n, n)), 2.0)
    return f > np.quantile(f, 1 - porosity)


def _brute_force(im: np.ndarray, pressures: np.ndarray, inlet_last: bool = True) -> list[int]:
    """Morphological drainage by definition, one pressure at a time (slow, obvious).

    Seeds: pore voxels with d >= 2/P connected (faces) to the inlet through such
    voxels; gas: every sphere of radius floor(d) (strictly inside) around a seed.
    """
    import edt

    dt = edt.edt(im.astype(np.uint8), black_border=False)
    rint = dt.astype(int)
    out = []
    grid = np.indices(im.shape)
    for p in pressures:
        seeds = im & (dt >= 2.0 / p * (1 - 1e-12))
        lab, _ = ndi.label(seeds)
        face = lab[-1] if inlet_last else lab[0]
        keep = np.isin(lab, np.unique(face[face > 0]))
        gas = np.zeros(im.shape, bool)
        for c in zip(*np.nonzero(keep), strict=True):
            r = rint[c]
            d2 = sum((grid[a] - c[a]) ** 2 for a in range(3))
            gas |= d2 < r * r
        out.append(int((gas & im).sum()))
    return out


def test_drainage_equals_the_brute_force_definition():
    im = _random_pores(18)
    ms = Microstructure(im.astype(np.uint8), H, phases="solid=0,pore=1")
    import edt

    dt_max = float(edt.edt(im.astype(np.uint8), black_border=False).max())
    pressures = np.linspace(2.0 / dt_max, 2.2, 9)
    # γ cos θ = h makes the pressure 2/d with d in voxels
    res = drainage(ms, pressures=pressures, surface_tension=H, contact_angle_deg=0)
    ref = _brute_force(im, pressures)
    got = [round(float(s) * im.sum()) for s in res.saturation]
    assert got == ref


def test_drainage_matches_porespy_voxel_for_voxel():
    ps = pytest.importorskip("porespy")
    ps.settings.tqdm["disable"] = True
    im = _random_pores(40, seed=7)
    ms = Microstructure(im.astype(np.uint8), H, phases="solid=0,pore=1")
    inlets = np.zeros_like(im)
    inlets[-1] = True
    outlets = np.zeros_like(im)
    outlets[0] = True
    for trap in (False, True):
        ref = ps.simulations.drainage(
            im=im, inlets=inlets, outlets=outlets if trap else None, steps=12
        )
        pres = np.unique(ref.im_pc[im & np.isfinite(ref.im_pc)])
        # PoreSpy's pressures are 2/d in voxel units: γ cos θ = h/1 makes ours the same
        res = drainage(ms, pressures=pres, surface_tension=H, contact_angle_deg=0, trapping=trap)
        for p in pres:
            ours = res.gas_mask(p)
            theirs = (ref.im_pc <= p) & im
            assert int((ours ^ theirs).sum()) == 0, (trap, p)


def test_trapping_keeps_a_dead_end_pocket():
    # a wide channel (inlet to outlet) with a narrow dead-end side branch
    lab = np.zeros((20, 20, 9), np.uint8)
    yy, zz = np.mgrid[:20, :9]
    lab[:, (yy - 5) ** 2 + (zz - 4) ** 2 < 16] = 1  # radius 4 along axis 0
    lab[8:12, 5:18, 3:6] = 1  # side branch, 3x4 cross-section, closed at y = 17
    ms = Microstructure(lab, H, phases="active=0,pore=1")
    branch = np.zeros(lab.shape, bool)
    branch[8:12, 10:18, 3:6] = True
    pres = [_entry(4) * 1.01, _entry(1) * 1.01]
    free = drainage(ms, pressures=pres, surface_tension=GAMMA, contact_angle_deg=0)
    trap = drainage(ms, pressures=pres, surface_tension=GAMMA, contact_angle_deg=0, trapping=True)
    assert free.gas_mask(pres[1])[branch].all()
    assert not trap.gas_mask(pres[1])[branch].any()
    assert trap.trapped_saturation[0] > 0
    assert trap.saturation[1] < free.saturation[1]


@pytest.fixture(scope="module")
def electrode() -> Microstructure:
    from microbat import synth

    return synth.electrode((28, 28, 28), voxel_size=4e-7, seed=2, mean_radius=2e-6)


@pytest.mark.parametrize("mode", ["drainage", "bubbles", "nucleation"])
def test_placement_hits_the_saturation_and_is_nested_and_seeded(electrode, mode):
    sats = [0.3, 0.1]
    a = place_gas(electrode, sats, mode=mode, seed=5)
    b = place_gas(electrode, sats, mode=mode, seed=5)
    n_pore = int(electrode.mask("pore").sum())
    for g, s in zip(a, sats, strict=True):
        assert g.saturation == pytest.approx(s, abs=1.0 / n_pore)
        gas = g.microstructure.mask("gas")
        assert int(gas.sum()) == math.ceil(s * n_pore - 1e-9)
        assert not (gas & (np.asarray(electrode.labels) != 0)).any()  # only in pores
    assert (a[0].microstructure.mask("gas") >= a[1].microstructure.mask("gas")).all()
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.microstructure.labels, y.microstructure.labels)
    if mode == "nucleation":
        assert a[0].n_sites >= 1


def test_bubbles_take_the_largest_pores_first(electrode):
    dt = ndi.distance_transform_edt(electrode.mask("pore"))
    g = place_gas(electrode, 0.1, mode="bubbles", seed=0).microstructure.mask("gas")
    assert dt[g].mean() > 1.5 * dt[electrode.mask("pore")].mean()


def test_gas_analysis_on_an_electrode(electrode):
    r = gas_analysis(electrode, (0.1, 0.25), mode="drainage")
    d = json.loads(r.to_json())
    for key in ("saturation", "effective_conductivity_ratio", "wetted_area_fraction"):
        assert len(d[key]) == 2
    assert 1 > r.effective_conductivity_ratio[0] > r.effective_conductivity_ratio[1] >= 0
    assert 1 >= r.wetted_area_fraction[0] >= r.wetted_area_fraction[1] > 0
    assert all(0 <= f < 1 for f in r.isolated_electrolyte_fraction)
    assert r.electrolyte_fraction[1] == pytest.approx(
        r.baseline["electrolyte_fraction"] * 0.75, abs=2 / electrode.n_voxels
    )
    assert set(np.unique(r.gas_level)) <= {-1, 0, 1, 2}
    assert r.curve.saturation[-1] > 0.9 and np.all(np.diff(r.curve.saturation) >= 0)


def test_a_2d_image_works():
    lab = np.zeros((30, 20), np.uint8)
    lab[:, 3:8] = 1
    lab[:, 11:18] = 1
    ms = Microstructure(lab, H, phases="active=0,pore=1")
    res = drainage(ms, pressures=[_entry(2.5) * 1.01], surface_tension=GAMMA, contact_angle_deg=0)
    assert res.invasion_pressure_Pa.shape == ms.shape
    g = place_gas(ms, 0.5, mode="bubbles")
    assert g.microstructure.mask("gas")[:, 11:18].sum() > g.microstructure.mask("gas")[:, 3:8].sum()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"saturation": 1.0}, r"outside \[0, 1\)"),
        ({"saturation": -0.1}, r"outside \[0, 1\)"),
        ({"saturation": 0.2, "contact_angle_deg": 200}, r"outside \[0°, 180°\]"),
        ({"saturation": 0.2, "contact_angle_deg": -5}, r"outside \[0°, 180°\]"),
        ({"saturation": 0.2, "contact_angle_deg": 120}, "does not wet"),
        ({"saturation": 0.2, "surface_tension": 0}, "surface tension"),
        ({"saturation": 0.2, "mode": "foam"}, "mode="),
    ],
)
def test_bad_input_is_refused(kwargs, match):
    ms, _ = _channels()
    with pytest.raises(InvalidInputError, match=match):
        place_gas(ms, **kwargs)


def test_no_pore_phase_is_refused():
    ms = Microstructure(np.zeros((6, 6, 6), np.uint8), H, phases="active=0")
    with pytest.raises(PhaseError, match="no pore phase"):
        gas_analysis(ms, [0.1])


def test_capillary_pressure_closed_form():
    assert capillary_pressure(2e-6, surface_tension=0.04, contact_angle_deg=60) == pytest.approx(
        2 * 0.04 * 0.5 / 2e-6
    )


# ------------------------------------------------------------------------- CLI
def _run(*args):
    from microbat.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def electrode_file(tmp_path_factory, electrode):
    from microbat.io import save_microstructure

    return save_microstructure(electrode, tmp_path_factory.mktemp("gas") / "e.h5")


def test_cli_gas_json_and_out(tmp_path, electrode_file):
    out = tmp_path / "g"
    r = _run("gas", electrode_file, "--saturation", "0.1,0.2", "--json", "--out", out)
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["saturation"] == [0.1, 0.2]
    assert len(d["effective_conductivity_ratio"]) == 2 and len(d["wetted_area_fraction"]) == 2
    names = {p.name for p in out.iterdir()}
    assert {
        "result.json", "fields.npz", "transport_loss.csv", "drainage.csv", "gas_level.vti",
        "invasion_pressure.vti", "gas_slices.png", "gas_curves.png",
    } <= names  # fmt: skip
    with np.load(out / "fields.npz") as z:
        assert z["gas_level"].shape == (28, 28, 28)


@pytest.mark.parametrize(
    ("args", "msg"),
    [
        (["--saturation", "0.2,1.5"], "outside [0, 1)"),
        (["--contact-angle", "190"], "outside [0°, 180°]"),
        (["--saturation", "a"], "cannot read"),
    ],
)
def test_cli_gas_bad_input_writes_nothing(tmp_path, electrode_file, args, msg):
    out = tmp_path / "g"
    r = _run("gas", electrode_file, *args, "--out", out)
    assert r.exit_code == 1
    assert msg in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not out.exists() or not any(out.iterdir())
