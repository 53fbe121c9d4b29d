import numpy as np
import pytest

from microbat.core.errors import InvalidInputError
from microbat.synth import packing
from microbat.transport.calendering import calender


@pytest.fixture(scope="module")
def loose():
    return packing(
        (48, 40, 40), voxel_size=0.5e-6, active_fraction=0.38, mean_radius=2.5e-6, seed=3
    )


@pytest.mark.parametrize("c", [0.0, 0.15, 0.3])
def test_volumes_conserved(loose, c):
    ms = calender(loose, c, cbd_fraction=0.05, seed=1)
    n0 = int(loose.labels.sum())
    counts = ms.counts()
    # thickness shrinks by (1 - c), rounded to whole voxels
    assert ms.shape[0] == round((1 - c) * 48)
    assert ms.shape[1:] == (40, 40)
    # active volume conserved to the bisection tolerance (a few voxels in 10^4)
    assert abs(counts["active"] - n0) <= 1e-3 * n0
    # carbon-binder volume conserved to one voxel
    assert abs(counts["cbd"] - round(0.05 * 48 * 40 * 40)) <= 1
    # porosity falls as the solid is squeezed into a smaller box
    solid = (n0 + 0.05 * 48 * 1600) / ms.n_voxels
    assert ms.volume_fractions()["pore"] == pytest.approx(1 - solid, abs=2e-3)


def test_flattening_orients_particles(loose):
    rigid = calender(loose, 0.3, flattening=0.0)
    flat = calender(loose, 0.3, flattening=1.0)
    # rigid particles must swell more to make up for their larger overlaps
    assert (
        rigid.metadata["calendering"]["swelling_scale"]
        > (flat.metadata["calendering"]["swelling_scale"])
    )

    # flattened particles: active/pore interfaces face the thickness axis more often
    def faces(ms, axis):
        a = np.asarray(ms.labels) == 2
        return np.count_nonzero(np.diff(a, axis=axis))

    ratio_rigid = faces(rigid, 0) / faces(rigid, 1)
    ratio_flat = faces(flat, 0) / faces(flat, 1)
    assert ratio_flat > 1.1 * ratio_rigid


def test_bad_compression(loose):
    with pytest.raises(InvalidInputError, match="compression"):
        calender(loose, 0.9)
    with pytest.raises(InvalidInputError, match="flattening"):
        calender(loose, 0.1, flattening=2)
    with pytest.raises(InvalidInputError, match="porosity"):
        calender(loose, 0.6, cbd_fraction=0.1)


def test_calender_a_labelled_image():
    from microbat.synth import electrode
    from microbat.transport.calendering import particles_from_image

    ms = electrode(
        (48, 40, 40),
        voxel_size=0.5e-6,
        active_fraction=0.4,
        cbd_fraction=0.05,
        mean_radius=2.5e-6,
        seed=2,
    )
    pk = particles_from_image(ms)
    # ellipsoid fit reproduces the active volume within a few percent
    assert pk.active_fraction == pytest.approx(0.4, rel=0.08)
    n_particles_generated = ms.metadata["particles"]["n_particles"]
    assert 0.5 * n_particles_generated <= pk.n_particles <= 2.0 * n_particles_generated
    out = calender(ms, 0.2, seed=0)
    counts, n_act = out.counts(), int(ms.mask("active").sum())
    assert abs(counts["active"] - n_act) <= 1e-3 * n_act
    assert abs(counts["cbd"] - ms.counts()["cbd"]) <= 1


def test_study_trade_off_and_cli(tmp_path):
    import json

    from typer.testing import CliRunner

    from microbat.cli import app
    from microbat.io import save_microstructure
    from microbat.synth import electrode
    from microbat.transport.calendering import NMC811_CAPACITY_C_PER_M3, calendering_study

    res = calendering_study((40, 32, 32), compressions=(0.0, 0.3), mean_radius=2.5e-6, seed=0)
    rows = res.rows()
    # compression trades ionic transport for energy density
    assert rows[1]["porosity"] < rows[0]["porosity"]
    assert rows[1]["tau_through"] > rows[0]["tau_through"]
    assert rows[1]["kappa_eff_S_per_m"] < rows[0]["kappa_eff_S_per_m"]
    assert rows[1]["Qv_mAh_per_cm3"] > rows[0]["Qv_mAh_per_cm3"]
    # volumetric capacity: active fraction x 950 mAh/cm3 for NMC811
    q = res.active_fraction[0] * NMC811_CAPACITY_C_PER_M3 / 3.6e6
    assert rows[0]["Qv_mAh_per_cm3"] == pytest.approx(q)
    assert 300 < rows[0]["Qv_mAh_per_cm3"] < 400
    # areal capacity is conserved: the same active material in a thinner coating
    assert res.areal_capacity_mAh_per_cm2[1] == pytest.approx(
        res.areal_capacity_mAh_per_cm2[0], rel=2e-3
    )

    ms = electrode(
        (40, 32, 32),
        voxel_size=0.5e-6,
        active_fraction=0.4,
        cbd_fraction=0.05,
        mean_radius=2.5e-6,
        seed=1,
    )
    path = save_microstructure(ms, tmp_path / "e.h5")
    out = CliRunner().invoke(
        app, ["calender", str(path), "--steps", "0,0.2", "--out", str(tmp_path / "c"), "--json"]
    )
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["compression"] == [0.0, 0.2]
    assert (tmp_path / "c" / "calendering.png").exists()
    bad = CliRunner().invoke(app, ["calender", str(path), "--steps", "0,x"])
    assert bad.exit_code == 1
    assert "steps" in bad.output
