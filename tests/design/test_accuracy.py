"""The accuracy-gained table: Bruggeman and tensor P2D against the resolved model."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from microbat.cell.resolved import ResolvedOptions
from microbat.cell.resolved.compare import lattice_equivalent_radius, sphere_lattice
from microbat.core.errors import InvalidInputError
from microbat.design.accuracy import (
    ACCURACY_MODELS,
    P2D_MODELS,
    accuracy_gained,
    rank_agreement,
)

# two sphere lattices of different particle size (period 4 and 6 voxels of 0.5 µm), one
# lattice cell across (the insulating sides are mirror planes of the lattice)
LATTICES = {
    "small": (dict(shape=(12, 4, 4), period=4, radius=1.75), lattice_equivalent_radius(4, 1.75)),
    "large": (dict(shape=(12, 6, 6), period=6, radius=2.6), lattice_equivalent_radius(6, 2.6)),
}


# ----------------------------------------------------------------------------- ranking
def test_rank_agreement_against_scipy_spearman():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(7)
    for n in (2, 3, 5, 9):
        ref = rng.normal(size=n)
        mod = ref + rng.normal(scale=0.8, size=n)
        got = rank_agreement(ref, mod)
        assert got["spearman"] == pytest.approx(spearmanr(ref, mod).statistic, abs=1e-12)
        best, pick = int(np.argmax(ref)), int(np.argmax(mod))
        assert got["pick"] == pick and got["reference_pick"] == best
        assert got["same_pick"] == (pick == best)
        assert got["regret_percent"] == pytest.approx(100 * (ref[best] - ref[pick]) / ref[best])
        assert sorted(got["ranks"]) == list(range(1, n + 1))
        assert got["ranks"][pick] == 1.0


def test_rank_agreement_edges():
    r = rank_agreement([1.0, 2.0, 3.0], [3.0, 2.0, 1.0])  # reversed: the worst is picked
    assert r["spearman"] == pytest.approx(-1.0) and r["regret_percent"] == pytest.approx(200 / 3)
    r = rank_agreement([1.0, 2.0], [math.nan, 5.0])  # a failed run is never picked
    assert r["pick"] == 1 and r["same_pick"] and math.isnan(r["spearman"])
    r = rank_agreement([1.0, 2.0], [4.0, 4.0])  # a tie: no correlation, first of the tie
    assert math.isnan(r["spearman"]) and r["ranks"] == [1.5, 1.5]
    assert math.isnan(rank_agreement([2.0], [3.0])["spearman"])
    with pytest.raises(InvalidInputError, match="one value per design"):
        rank_agreement([1.0, 2.0], [1.0])
    with pytest.raises(InvalidInputError, match="finite"):
        rank_agreement([1.0, math.nan], [1.0, 2.0])


def test_bad_requests_fail_before_any_run():
    ms = sphere_lattice((8, 8, 8))
    with pytest.raises(InvalidInputError, match="unknown objective"):
        accuracy_gained([ms], objective="speed")
    with pytest.raises(InvalidInputError, match="low and a higher"):
        accuracy_gained([ms], c_rates=(2.0, 0.2))
    with pytest.raises(InvalidInputError, match="low and a higher"):
        accuracy_gained([ms], c_rates=(0.2, 1.0, 2.0))
    with pytest.raises(InvalidInputError, match="Microstructure or a mapping"):
        accuracy_gained([ms, 3])
    with pytest.raises(InvalidInputError, match="at least one design"):
        accuracy_gained([])
    with pytest.raises(InvalidInputError, match="list"):
        accuracy_gained("ms.h5")
    with pytest.raises(InvalidInputError, match="one per design"):
        accuracy_gained([ms, ms], seed=[1, 2, 3])


# ----------------------------------------------------------------------------- the table
@pytest.fixture(scope="module")
def lattice_table():
    designs = {k: sphere_lattice(**kw) for k, (kw, _) in LATTICES.items()}
    radii = {k: r for k, (_, r) in LATTICES.items()}
    lines: list[str] = []
    res = accuracy_gained(
        designs,
        c_rates=(0.5, 3.0),
        particle_radius_m=radii,
        options=ResolvedOptions(),  # the model's default steps: coarser than compare's
        progress=lines.append,
    )
    return res, designs, radii, lines


def test_table_rows_errors_and_ranking_are_consistent(lattice_table):
    res, designs, radii, lines = lattice_table
    assert res.designs == ("small", "large") and len(lines) == 2
    for row, name in zip(res.rows, res.designs, strict=True):
        ms = designs[name]
        assert row["resolved_complete"]
        # closed forms of the lattice: ε from the voxels, the sphere area 3 ε_act / R
        assert row["porosity"] == pytest.approx(ms.fraction("pore"), abs=1e-12)
        assert row["area_spheres_per_m"] == pytest.approx(
            3 * row["active_fraction"] / radii[name], rel=1e-12
        )
        assert row["tau_bruggeman"] == pytest.approx(row["porosity"] ** -0.5, rel=1e-9)
        vol = row["electrode_volume_m3"]
        assert vol == pytest.approx(np.prod(ms.extent), rel=1e-12)
        for m in ACCURACY_MODELS:
            e_hi = row[f"{m}.energy_high_Wh"]
            assert row[f"{m}.high_rate_energy_density"] == pytest.approx(e_hi / vol * 1e-3)
            ret = row[f"{m}.capacity_high_Ah"] / row[f"{m}.capacity_low_Ah"]
            assert row[f"{m}.power_retention"] == pytest.approx(ret)
            assert 0 < row[f"{m}.power_retention"] < 1  # 3C delivers less than 0.5C
        for m in P2D_MODELS:
            for q in ("capacity_low_Ah", "energy_high_Wh", "high_rate_energy_density"):
                want = 100 * (row[f"{m}.{q}"] / row[f"resolved.{q}"] - 1)
                assert row[f"{m}.error.{q}"] == pytest.approx(want, abs=1e-9)
            # homogeneous limit: every P2D agrees with the resolved lattice at 0.5C
            assert abs(row[f"{m}.error.capacity_low_Ah"]) < 1.0
            assert abs(row[f"{m}.error.capacity_high_Ah"]) < 5.0
    for m in ACCURACY_MODELS:
        objs = [r[f"{m}.high_rate_energy_density"] for r in res.rows]
        assert res.top(m) == res.designs[int(np.argmax(objs))]
    assert res.optimum_differs == (res.top("bruggeman") != res.top("resolved"))


def test_lattice_tortuosity_is_the_isotropic_closed_value(lattice_table):
    # the period-4 lattice: τ = 1.8 on every axis (docs/validation/resolved.md §4.1)
    res = lattice_table[0]
    assert res.rows[0]["tau_measured"] == pytest.approx(1.8, rel=0.02)


def test_table_markdown_and_json(lattice_table):
    res = lattice_table[0]
    tab = res.table()
    assert [t["design"] for t in tab] == ["small", "large"]
    for t in tab:
        assert {f"objective.{m}" for m in ACCURACY_MODELS} <= set(t)
        assert {f"error.{m}" for m in P2D_MODELS} <= set(t)
    md = res.markdown()
    assert "P2D Bruggeman" in md and "Spearman" in md and md.count("\n| small") == 1
    data = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert data["objective"] == "high_rate_energy_density"
    assert data["ranking"]["bruggeman"]["pick_design"] in ("small", "large")
    assert data["provenance"]["function"] == "microbat.design.accuracy_gained"
    with pytest.raises(InvalidInputError, match="unknown model"):
        res.top("pybamm")


@pytest.mark.slow
def test_generated_designs_use_the_designed_radius():
    from microbat.design import generate_design

    params = [
        {"porosity": 0.45, "mean_radius": 2.0e-6, "cbd_fraction": 0.05},
        {"porosity": 0.30, "mean_radius": 2.0e-6, "cbd_fraction": 0.05},
    ]
    res = accuracy_gained(
        params, c_rates=(0.5, 3.0), seed=[3, 5], resolution=((24, 24, 24), 0.5e-6)
    )
    ms0 = generate_design(params[0], 3, ((24, 24, 24), 0.5e-6))  # the same voxels
    row = res.rows[0]
    assert row["porosity"] == pytest.approx(ms0.fraction("pore") + 0.5 * ms0.fraction("cbd"))
    assert row["particle_radius_bruggeman_m"] == 2.0e-6
    assert row["params"]["mean_radius"] == 2.0e-6
    assert res.rows[1]["porosity"] < row["porosity"]
