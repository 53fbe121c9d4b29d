"""``microbat discharge``, ``breakdown`` and ``compare-transport`` from the command line."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from microbat.cli import app

runner = CliRunner()


def _json(args):
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


@pytest.fixture(scope="module")
def micro_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("micro") / "props.json"
    path.write_text(json.dumps({"porosity": 0.335, "tau_electrolyte": 3.0}))
    return path


def test_discharge_published_set_json():
    d = _json(["discharge", "--params", "chen2020", "--rates", "0.1,1,3", "--json"])
    assert d["c_rate"] == [0.1, 1.0, 3.0]
    for key in ("capacity_Ah", "energy_Wh", "fraction", "bottleneck"):
        assert len(d[key]) == 3, key
    assert d["transport"] == "bruggeman" and d["micro"] is None
    assert d["bottleneck_key"][2] == "electrolyte"
    assert d["initial_state"]["definition"].startswith("PyBaMM set_initial_state")
    assert d["fraction"][0] == 1.0


def test_discharge_micro_from_json_and_files(micro_file, tmp_path):
    d = _json(["discharge", str(micro_file), "--rates", "1,2", "--out", str(tmp_path), "--json"])
    assert d["transport"] == "micro"
    assert d["micro"]["tau_electrolyte"] == 3.0
    assert (tmp_path / "discharge_curves.png").is_file()
    assert (tmp_path / "rate_capability.csv").is_file()
    b = _json(["discharge", str(micro_file), "--rates", "2", "--transport", "bruggeman", "--json"])
    # same geometry, Bruggeman transport: more capacity at 2C than with τ = 3
    assert b["capacity_Ah"][0] > d["capacity_Ah"][1]


def test_breakdown_json():
    d = _json(["breakdown", "--rates", "1,3", "--json"])
    assert d["bottleneck_key"] == ["solid_diffusion", "electrolyte"]
    assert d["max_residual_V"] < 1e-3


def test_breakdown_human():
    res = runner.invoke(app, ["breakdown", "--rates", "3"])
    assert res.exit_code == 0, res.output
    assert "electrolyte" in res.output and "depleted" in res.output


def test_compare_transport(micro_file):
    d = _json(["compare-transport", str(micro_file), "--rates", "1,3", "--json"])
    assert d["c_rate"] == [1.0, 3.0]
    assert d["capacity_difference_Ah"][1] < 0
    assert d["tau_electrolyte_micro"] == 3.0


@pytest.mark.parametrize(
    "args, match",
    [
        (["discharge", "--rates", "-1,2"], "not a positive number"),
        (["discharge", "--rates", "0.1,abc"], "cannot read C-rate"),
        (["discharge", "--params", "nosuch"], "unknown parameter set"),
        (["discharge", "--transport", "micro"], "needs microstructure-derived"),
        (["discharge", "--model", "P4D", "--rates", "1"], "unknown model"),
    ],
)
def test_bad_input_one_line_error(args, match):
    res = runner.invoke(app, args)
    assert res.exit_code == 1
    assert match in res.stderr
    assert "Traceback" not in res.output


def test_micrometres_in_micro_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"porosity": 0.3, "tau_electrolyte": 2, "particle_radius_m": 5}))
    res = runner.invoke(app, ["discharge", str(path), "--rates", "1"])
    assert res.exit_code == 1 and "micrometres" in res.stderr


def test_bpx_file_as_micro_is_refused(chen, tmp_path):
    path = tmp_path / "cell.json"
    chen.to_bpx(path)
    res = runner.invoke(app, ["discharge", str(path), "--rates", "1"])
    assert res.exit_code == 1 and "--params" in res.stderr
    d = _json(["discharge", "--params", str(path), "--rates", "1", "--json"])
    assert d["capacity_Ah"][0] == pytest.approx(4.99, abs=0.02)


def test_discharge_from_microstructure_file(tmp_path):
    """FILE → load_input → MicroProperties.from_microstructure → micro-informed DFN."""
    import numpy as np

    pytest.importorskip("microbat.transport.diffusion")
    from microbat import Microstructure
    from microbat.io import save_microstructure

    lab = np.full((24, 24, 24), 2, np.uint8)  # active
    for i in range(2, 24, 6):
        for j in range(2, 24, 6):
            lab[:, i : i + 3, j : j + 3] = 0  # straight pores through the thickness
    lab[:, 0, :] = 1  # a carbon-binder sheet
    ms = Microstructure(lab, voxel_size=1e-6, phases="pore=0,cbd=1,active=2")
    path = tmp_path / "ms.npy"
    save_microstructure(ms, path)
    d = _json(
        [
            "discharge",
            str(path),
            "--phases",
            "pore=0,cbd=1,active=2",
            "--voxel-size",
            "1um",
            "--rates",
            "1",
            "--json",
        ]
    )
    assert d["transport"] == "micro"
    assert d["micro"]["porosity"] == pytest.approx(ms.fraction("pore"))
    assert d["micro"]["tau_electrolyte"] == pytest.approx(1.0, abs=1e-6)
    assert d["micro"]["source"]["tortuosity_method"] == "diffusion"
    assert d["complete"] == [True]


def test_microstructure_without_electrolyte_via_cli(tmp_path):
    import numpy as np

    from microbat import Microstructure
    from microbat.io import save_microstructure

    lab = np.zeros((8, 8, 8), np.uint8)
    lab[:, :, 4:] = 1
    path = tmp_path / "solid.npy"
    save_microstructure(Microstructure(lab, voxel_size=1e-6, phases="active=0,cbd=1"), path)
    res = runner.invoke(
        app, ["discharge", str(path), "--phases", "active=0,cbd=1", "--voxel-size", "1um"]
    )
    assert res.exit_code == 1 and "no electrolyte" in res.stderr
