"""Outputs of a resolved discharge: per-voxel loss map, VTK, partial markers, progress."""

from __future__ import annotations

import functools
import io
import json

import numpy as np
import pytest

from microbat import Microstructure
from microbat.cell.resolved import ResolvedOptions, _stepping, simulate_discharge
from microbat.cell.resolved._lossmap import LOSS_FIELDS, loss_density
from microbat.cell.resolved.discharge import StepProgress

VOX = (1e-6, 1.5e-6, 2e-6)


def _electrode() -> Microstructure:
    """8x6x7 voxels, anisotropic: active columns, a carbon-binder bridge."""
    lab = np.zeros((8, 6, 7), np.uint8)
    lab[:, :3, :3] = 2
    lab[:, 3:, 4:] = 2
    lab[:5, :3, 3:5] = 1
    return Microstructure(lab, voxel_size=VOX, phases="pore=0,cbd=1,active=2")


@pytest.fixture(scope="module")
def run():
    # float64 maps (the default float32 storage rounds each voxel to 6e-8)
    mp = pytest.MonkeyPatch()
    mp.setattr(_stepping, "loss_density", functools.partial(loss_density, dtype=np.float64))
    try:
        return simulate_discharge(
            _electrode(),
            c_rate=2.0,
            options=ResolvedOptions(max_steps=8, dv_target_V=0.02),
            snapshot_times=[20.0],
        )
    finally:
        mp.undo()


def test_loss_map_sums_to_the_breakdown(run):
    # the end snapshot comes from the last step, whose breakdown is final_breakdown_V
    snap = run.snapshots[-1]
    vol = float(np.prod(VOX))
    current = run.current_A
    for name, comp in LOSS_FIELDS.items():
        m = snap.fields[name]
        assert m.dtype == np.float64 and m.shape == _electrode().shape
        total = np.nansum(m) * vol + snap.outside_W[comp]
        assert total == pytest.approx(run.final_breakdown_V[comp] * current, rel=1e-9)
    parts = sum(np.nan_to_num(snap.fields[n]) for n in LOSS_FIELDS)
    np.testing.assert_allclose(np.nan_to_num(snap.fields["loss_total"]), parts, rtol=1e-12)
    # the counter electrode lies outside the image; it is part of "reaction"
    assert snap.outside_W["reaction_counter"] == pytest.approx(
        run.final_breakdown_V["reaction_counter"] * current, rel=1e-8
    )


def test_loss_map_is_where_the_physics_is(run):
    lab = _electrode().labels
    f = run.snapshots[-1].fields
    # kinetic and solid-diffusion losses only in active voxels
    assert np.all(f["loss_reaction"][lab == 0] == 0)
    assert np.all(f["loss_solid_diffusion"][lab != 2] == 0)
    assert np.nansum(f["loss_reaction"][lab == 2]) > 0
    # ohmic dissipation is non-negative voxel by voxel; electrolyte losses not in
    # active voxels, electronic losses not in pores
    assert np.nanmin(f["loss_ohmic_electrolyte"]) >= 0
    assert np.nanmin(f["loss_ohmic_solid"]) >= 0
    assert np.all(f["loss_ohmic_electrolyte"][lab == 2] == 0)
    assert np.all(f["loss_ohmic_solid"][lab == 0] == 0)
    assert np.all(np.isfinite(f["loss_total"]))


def test_stored_maps_are_float32_and_close(tmp_path):
    res = simulate_discharge(
        _electrode(), c_rate=2.0, options=ResolvedOptions(max_steps=3), snapshot_times=[]
    )
    snap = res.snapshots[-1]
    vol = float(np.prod(VOX))
    for name, comp in LOSS_FIELDS.items():
        assert snap.fields[name].dtype == np.float32
        total = np.nansum(snap.fields[name].astype(float)) * vol + snap.outside_W[comp]
        assert total == pytest.approx(res.final_breakdown_V[comp] * res.current_A, rel=1e-5)


def test_vtk_export_reads_back(run, tmp_path):
    from microbat.io import read_vti

    files = run.save_vtk(tmp_path / "vtk")
    assert [f.suffix for f in files] == [".vti"] * len(run.snapshots) + [".pvd"]
    for f, snap in zip(files, run.snapshots, strict=False):
        for name in ("c_e", "phi_e", "phi_s", "c_s", "stoichiometry", "reaction_current"):
            v = read_vti(f, dataset=name)
            assert v.data.shape == _electrode().shape
            assert v.voxel_size == pytest.approx(VOX)
            np.testing.assert_array_equal(v.data, snap.fields[name])
        v = read_vti(f, dataset="loss_total")
        np.testing.assert_array_equal(v.data, snap.fields["loss_total"])
        meta = v.metadata["metadata"]
        assert meta["partial"] is True and meta["status"] == "max_steps"
        assert meta["time_s"] == pytest.approx(snap.time_s)
    pvd = files[-1].read_text()
    assert "partial result: max_steps" in pvd
    assert pvd.count("<DataSet") == len(run.snapshots)
    # a file name instead of a folder
    named = run.save_vtk(tmp_path / "one" / "discharge.vti", collection=False)
    assert named[0].name == "discharge_t000.vti" and len(named) == len(run.snapshots)


def test_vtk_export_opens_in_vtk(run, tmp_path):
    vtk = pytest.importorskip("vtk")
    from vtk.util.numpy_support import vtk_to_numpy

    f = run.save_vtk(tmp_path)[0]
    reader = vtk.vtkXMLImageDataReader()
    reader.SetFileName(str(f))
    reader.Update()
    img = reader.GetOutput()
    n0, n1, n2 = _electrode().shape
    assert img.GetDimensions() == (n2 + 1, n1 + 1, n0 + 1)  # points = cells + 1
    assert img.GetSpacing() == pytest.approx(VOX[::-1])
    cd = img.GetCellData()
    names = {cd.GetArrayName(i) for i in range(cd.GetNumberOfArrays())}
    assert {"c_s", "phi_e", "loss_total", "loss_reaction"} <= names
    c_s = vtk_to_numpy(cd.GetArray("c_s")).reshape(n0, n1, n2)
    np.testing.assert_array_equal(c_s, run.snapshots[0].fields["c_s"])


def test_partial_marked_in_every_file(run, tmp_path):
    h5py = pytest.importorskip("h5py")
    assert run.partial
    rows = run.save_curve(tmp_path / "c.csv").read_text().splitlines()
    assert rows[0].split(",")[-1] == "partial"
    assert all(r.endswith(",true") for r in rows[1:])
    with h5py.File(run.save_fields(tmp_path / "f.h5")) as f:
        assert bool(f.attrs["partial"]) is True
        assert "loss_total" in f["t000"]
        assert f["t000"].attrs["outside_W/reaction_counter"] > 0
    assert json.loads(run.to_json())["partial"] is True


def test_solver_failure_is_partial_and_says_where():
    # a tolerance no state can meet in two iterations: every step fails down to dt_min
    opt = ResolvedOptions(max_newton=2, newton_tol=1e-15, dt_initial_s=50.0)
    res = simulate_discharge(_electrode(), c_rate=2.0, options=opt)
    assert res.partial and res.steps == 0
    assert res.status.startswith("solver failed at t = 0 s, V = ")
    assert "Newton did not converge" in res.status
    assert res.snapshots == ()


def test_on_step_reports_progress():
    seen: list[StepProgress] = []
    res = simulate_discharge(
        _electrode(), c_rate=2.0, options=ResolvedOptions(max_steps=4), on_step=seen.append
    )
    assert [p.step for p in seen] == [1, 2, 3, 4]
    last = seen[-1]
    assert last.time_s == pytest.approx(res.time_s[-1])
    assert last.voltage_V == pytest.approx(res.voltage_V[-1])
    assert last.capacity_fraction == pytest.approx(res.capacity_Ah / res.one_c_current_A)


def test_progress_bar_renders():
    from rich.console import Console

    from microbat.cli._simulate import DischargeProgress

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=140)
    with DischargeProgress(console, enabled=True, c_rate=1.0) as bar:
        bar(StepProgress(1800.0, 3.8123, 1e-9, 0.5, 0.61, 7, 30.0))
    text = buf.getvalue()
    assert "discharge 1C" in text and "50.0 % of capacity" in text
    assert "V = 3.8123 V" in text and "30.0 min" in text and "step 7" in text
    quiet = io.StringIO()
    with DischargeProgress(Console(file=quiet), enabled=False, c_rate=1.0) as bar:
        bar(StepProgress(1.0, 4.0, 0.0, 0.0, 0.3, 1, 1.0))
    assert quiet.getvalue() == ""
