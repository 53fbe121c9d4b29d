"""Plating maps: the monitor against closed-form fields and an independent face count."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from microbat import Microstructure
from microbat.cell.resolved import sphere_lattice
from microbat.core.errors import InvalidInputError, PhaseError
from microbat.degradation.plating import PlatingMonitor, plating_faces, plating_map

H = 0.5e-6


def _faces_by_loops(labels: np.ndarray, active: int, elyte: set[int]) -> list[tuple[int, int]]:
    """(active flat index, electrolyte flat index) of every face, by plain loops."""
    out = []
    shape = labels.shape
    for idx in itertools.product(*(range(n) for n in shape)):
        if labels[idx] != active:
            continue
        for ax in range(3):
            for d in (-1, 1):
                nb = list(idx)
                nb[ax] += d
                if 0 <= nb[ax] < shape[ax] and labels[tuple(nb)] in elyte:
                    out.append(
                        (np.ravel_multi_index(idx, shape), np.ravel_multi_index(tuple(nb), shape))
                    )
    return out


def _ramp_fields(ms: Microstructure, t: float, a: float, b: float, g: float) -> dict:
    """φ_s = a − b t everywhere in the solid, φ_e = g z (z from the collector, m)."""
    z = (np.arange(ms.shape[0]) + 0.5) * H
    act = ms.labels == 1
    ps = np.where(act, a - b * t, np.nan)
    pe = np.where(~act, np.broadcast_to(g * z[:, None, None], ms.shape), np.nan)
    st = np.where(act, 0.5 + 1e-4 * t, np.nan)
    return {"phi_s": ps, "phi_e": pe, "stoichiometry": st, "c_e": np.where(~act, 1000.0, np.nan)}


def test_faces_are_the_active_electrolyte_faces():
    ms = sphere_lattice((8, 8, 8), voxel_size=H)
    f = plating_faces(ms)
    ref = _faces_by_loops(ms.labels, 1, {0})
    assert sorted(zip(f.active.tolist(), f.electrolyte.tolist(), strict=True)) == sorted(ref)
    assert np.allclose(f.area_m2, H * H)
    # the face between layers i and i+1 sits at (i + 1) h from the collector
    z = np.unravel_index(f.active, ms.shape)[0]
    ze = np.unravel_index(f.electrolyte, ms.shape)[0]
    assert np.allclose(f.depth_m, (8 - 0.5 * (z + ze) - 0.5) * H)


def test_onset_area_and_exposure_match_the_closed_form():
    ms = sphere_lattice((12, 8, 8), voxel_size=H)
    a, b, g = 0.05013, 1e-4, 2e3  # V, V/s, V/m (crossings off the sampled times)
    times = np.linspace(0.0, 600.0, 121)
    mon = PlatingMonitor(ms, store_times=[300.0])
    for t in times:
        mon(t, _ramp_fields(ms, t, a, b, g))
    res = mon.result()
    f = mon.faces
    ze = (np.unravel_index(f.electrolyte, ms.shape)[0] + 0.5) * H
    t_star = (a - g * ze) / b  # η = a − b t − g z_e crosses zero
    # the crossing of the minimum is interpolated: exact for a linear ramp
    assert res.onset_time_s == pytest.approx(t_star.min(), rel=1e-12)
    # onset of every face: the first monitored time at or after its crossing
    expect = times[np.minimum(np.searchsorted(times, t_star), times.size - 1)]
    expect[t_star > times[-1]] = np.nan
    np.testing.assert_array_equal(mon._onset_t, expect)
    # area at risk at every time: brute force from the closed form
    for k, t in enumerate(times):
        frac = np.sum(f.area_m2[(a - b * t - g * ze) < 0]) / np.sum(f.area_m2)
        assert res.area_fraction_at_risk[k] == pytest.approx(frac, abs=1e-15)
    # exposure = ∫ max(0, −η) dt = b/2 (t_end − t*)² for a linear ramp (exact by the
    # trapezoid with the crossing interpolated)
    te = times[-1]
    expo = np.where(t_star < te, 0.5 * b * (te - np.maximum(t_star, 0.0)) ** 2, 0.0)
    np.testing.assert_allclose(mon.face_exposure_V_s, expo, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(
        mon.face_time_at_risk_s, np.clip(te - t_star, 0, te), rtol=1e-9, atol=1e-9
    )
    assert res.min_plating_overpotential_V == pytest.approx(a - b * te - g * ze.max())
    # per-layer mean and minimum of η at the end, by brute force
    eta_end = a - b * te - g * ze
    for layer in range(ms.shape[0]):
        m = f.layer == layer
        mean = np.sum(f.area_m2[m] * eta_end[m]) / np.sum(f.area_m2[m])
        assert res.depth_mean_overpotential_V[-1, layer] == pytest.approx(mean, abs=1e-12)
        assert res.depth_min_overpotential_V[-1, layer] == pytest.approx(eta_end[m].min())
    # the separator end goes first: the depth profile is at risk at the smallest depth
    risk_end = res.depth_at_risk_fraction[-1]
    assert res.depth_m[-1] < res.depth_m[0]
    assert np.nanargmax(risk_end) == ms.shape[0] - 1 or risk_end[-1] == np.nanmax(risk_end)
    assert np.array_equal(res.map_times_s, [300.0, 600.0])
    first = res.onset_time_map_s[np.isfinite(res.onset_time_map_s)]
    assert first.min() == times[np.searchsorted(times, t_star.min())]
    assert res.onset_soc == pytest.approx(0.5 + 1e-4 * res.onset_time_s, rel=1e-9)


def test_end_inside_the_last_step_equals_a_call_there():
    # a run ending on an event interpolates its end inside the last step: end_at must
    # give what a call at that time would (η linear in time here, so exactly)
    ms = sphere_lattice((12, 8, 8), voxel_size=H)
    a, b, g = 0.05013, 1e-4, 2e3
    coarse = [0.0, 200.0, 400.0, 480.0, 600.0]
    t_end = 530.0
    cut = PlatingMonitor(ms, store_times=[590.0])
    for t in coarse:
        cut(t, _ramp_fields(ms, t, a, b, g))
    cut.end_at(t_end)
    ref = PlatingMonitor(ms, store_times=[590.0])
    for t in [*coarse[:-1], t_end]:
        ref(t, _ramp_fields(ms, t, a, b, g))
    rc, rr = cut.result(), ref.result()
    np.testing.assert_allclose(rc.time_s, rr.time_s)
    np.testing.assert_allclose(rc.soc, rr.soc, rtol=1e-12)
    np.testing.assert_allclose(rc.area_fraction_at_risk, rr.area_fraction_at_risk)
    np.testing.assert_allclose(cut.face_exposure_V_s, ref.face_exposure_V_s, rtol=1e-9, atol=1e-15)
    np.testing.assert_array_equal(cut._onset_t, ref._onset_t)
    assert rc.onset_time_s == pytest.approx(rr.onset_time_s)
    assert np.array_equal(rc.map_times_s, [t_end])  # the map at 600 s is gone
    np.testing.assert_allclose(rc.overpotential_maps_V, rr.overpotential_maps_V, atol=1e-7)
    cut.end_at(700.0)  # outside the last step: nothing changes
    assert cut.times[-1] == t_end


def test_hotspots_two_regions():
    ms = sphere_lattice((8, 16, 8), voxel_size=H)
    act = ms.labels == 1
    mon = PlatingMonitor(ms)
    y = np.arange(16)[None, :, None]
    for t in (0.0, 10.0):
        ps = np.where(act, 0.1, np.nan)
        # two lateral bands of electrolyte above φ_s after t = 0: y in 0..3 and 12..15;
        # the lower band only in the first 4 layers (smaller region)
        pe = np.zeros(ms.shape)
        if t > 0:
            zz = np.arange(8)[:, None, None]
            pe = np.where((y < 4) & (zz < 8), 0.2, pe)
            pe = np.where((y >= 12) & (zz < 4), 0.2, pe)
        pe = np.where(act, np.nan, pe)
        mon(t, {"phi_s": ps, "phi_e": pe, "stoichiometry": np.where(act, 0.5, np.nan)})
    res = mon.result()
    assert len(res.hotspots) >= 2
    h1, h2 = res.hotspots[:2]
    assert h1.area_um2 > h2.area_um2
    assert h1.onset_time_s == 10.0
    assert h1.min_overpotential_V == pytest.approx(-0.1)
    # the larger band spans the whole thickness: its centroid sits mid-depth
    assert h1.depth_m == pytest.approx(4 * H, rel=0.2)
    assert h2.depth_m > h1.depth_m  # the smaller one sits at the collector half


def test_json_and_files(tmp_path):
    ms = sphere_lattice((8, 8, 8), voxel_size=H)
    mon = PlatingMonitor(ms, store_times=[50.0])
    for t in np.linspace(0, 100, 11):
        mon(t, _ramp_fields(ms, t, 0.005, 1e-4, 1e3))
    res = mon.result(charge={"c_rate": 3.0})
    d = json.loads(res.to_json())
    for key in (
        "onset_time_s",
        "onset_soc",
        "area_fraction_at_risk",
        "min_plating_overpotential_V",
    ):
        assert key in d
    assert len(d["area_fraction_at_risk"]) == 11
    files = res.save(tmp_path / "out")
    names = {p.name for p in files}
    assert {
        "result.json",
        "plating_series.csv",
        "plating_fields.vti",
        "hotspot_slices.png",
    } <= names
    assert not list((tmp_path / "out").glob("*.tmp*"))
    from microbat.io.vtk import read_vti

    vol = read_vti(tmp_path / "out" / "plating_fields.vti", dataset="onset_time_s")
    assert np.array_equal(np.isnan(np.asarray(vol.data)), np.isnan(res.onset_time_map_s))


def test_bad_input():
    ms = sphere_lattice((8, 8, 8), voxel_size=H)
    with pytest.raises(InvalidInputError, match="positive C-rate"):
        plating_map(ms, c_rate=0)
    with pytest.raises(InvalidInputError, match="positive C-rate"):
        plating_map(ms, c_rate=-3)
    pore = Microstructure(np.zeros((4, 4, 4), np.uint8), voxel_size=H, phases="pore=0")
    with pytest.raises(PhaseError, match="no active"):
        PlatingMonitor(pore)
    mon = PlatingMonitor(ms)
    with pytest.raises(InvalidInputError, match="saw no step"):
        mon.result()
    mon(1.0, _ramp_fields(ms, 1.0, 0.1, 0, 0))
    with pytest.raises(InvalidInputError, match="backwards"):
        mon(0.5, _ramp_fields(ms, 0.5, 0.1, 0, 0))
    assert math.isnan(mon.result().onset_time_s)


# ------------------------------------------------------------ homogeneous limit vs DFN
def _onsets(c_rate: float):
    from microbat.cell.resolved import lattice_equivalent_radius
    from microbat.degradation.plating import dfn_plating

    ms = sphere_lattice()  # 24 × 12 × 12 voxels of 0.5 µm: ε = 0.5, τ = 1.8
    # charged past the set's x_100 = 0.91 (to 0.97) so that 3C reaches the onset too
    res = plating_map(ms, c_rate=c_rate, particles=False, end_stoichiometry=0.97)
    ch = res.charge
    dfn = dfn_plating(
        ms,
        current_A=abs(ch["current_A"]),
        initial_stoichiometry=ch["initial_stoichiometry"],
        end_time_s=float(res.time_s[-1]),
        cutoff_V=-1.0,
        particle_radius_m=lattice_equivalent_radius(),
    )
    return res, dfn


@pytest.mark.parametrize("c_rate", [pytest.param(3.0, marks=pytest.mark.slow), 6.0])
def test_sphere_lattice_onset_matches_the_dfn(c_rate):
    # issue 18: onset time within 5 % of the homogenised DFN in the homogeneous limit
    res, dfn = _onsets(c_rate)
    assert res.plated and math.isfinite(dfn.onset_time_s)
    assert abs(res.onset_time_s / dfn.onset_time_s - 1.0) < 0.05
    # the lowest η_pl of the electrode over the charge, away from the start (graphite's
    # steep OCP at x_0 turns the first seconds' offsets into tens of mV) and the last
    # step (surface saturation)
    t = res.time_s
    k = (t > 0.2 * t[-1]) & (t < 0.95 * t[-1])
    m_dfn = np.interp(t[k], dfn.time_s, dfn.min_overpotential_V)
    assert np.max(np.abs(res.min_overpotential_V[k] - m_dfn)) < 5e-3


@pytest.mark.slow
def test_sphere_lattice_1c_has_no_risk_in_either_model():
    res, dfn = _onsets(1.0)
    assert not res.plated and math.isnan(dfn.onset_time_s)
    assert res.min_plating_overpotential_V == pytest.approx(dfn.min_overpotential_V.min(), abs=3e-3)


def test_dfn_plating_submodel_plates_part_of_the_charge():
    from microbat.cell.resolved import lattice_equivalent_radius, theoretical_capacity_Ah
    from microbat.degradation.plating import dfn_plating

    ms = sphere_lattice()
    current = 6.0 * theoretical_capacity_Ah(ms, 33133.0) * 0.884  # 6C of the set's window
    passed = current * 600.0 / 96485.33212  # mol of lithium moved in 600 s
    res = dfn_plating(
        ms, current_A=current, initial_stoichiometry=0.0263, end_time_s=600.0, cutoff_V=-1.0,
        plating="irreversible", particle_radius_m=lattice_equivalent_radius(),
    )  # fmt: skip
    assert res.plated_lithium_mol is not None
    assert 0.0 < res.plated_lithium_mol < 0.2 * passed
    with pytest.raises(InvalidInputError, match="plating option"):
        dfn_plating(ms, current_A=current, plating="always")
    with pytest.raises(InvalidInputError, match="positive charge current"):
        dfn_plating(ms, current_A=-1.0)
