"""``twin --crop`` / ``input.crop``: a sub-volume, recorded in results, report and provenance."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from microbat.cli import app
from microbat.core.errors import InvalidInputError
from microbat.pipeline.stages.input import crop_slices

# everything after the connectivity and metrics stages off: the crop is the input stage's
OFF = {
    f"{s}.enabled": False
    for s in ("eis", "cell", "report", "transport", "gas", "heat", "mechanics", "representative",
              "aging")
}  # fmt: skip
OFF["metrics.sizes"] = False


def _run(*args):
    sets = [x for k, v in OFF.items() for x in ("--set", f"{k}={str(v).lower()}")]
    return CliRunner().invoke(app, ["twin", *[str(a) for a in args], *sets])


def _input(out) -> dict:
    return json.loads((out / "results.json").read_text())["stages"]["input"]["result"]


def test_crop_slices_checks_against_the_shape():
    assert crop_slices("2:5,,1:", (8, 8, 8)) == (slice(2, 5), slice(0, 8), slice(1, 8))
    assert crop_slices(None, (8, 8, 8)) is None
    with pytest.raises(InvalidInputError, match="empty"):
        crop_slices("5:5", (8, 8, 8))
    with pytest.raises(InvalidInputError, match=r"input\.crop"):
        crop_slices("a:b", (8, 8, 8))


def test_cli_crop_reads_the_subvolume_and_records_it(labelled_h5, tiny_electrode, tmp_path):
    out = tmp_path / "c"
    r = _run(labelled_h5, "--out", out, "--crop", "0:24,4:28,:", "--json")
    assert r.exit_code == 0, r.output
    inp = _input(out)
    assert inp["shape"] == [24, 24, 32]
    assert inp["crop"] == [[0, 24], [4, 28], [0, 32]] and inp["uncropped_shape"] == [32, 32, 32]
    part = tiny_electrode.labels[:24, 4:28, :]
    expect = {p.name: float(np.mean(part == p.label)) for p in tiny_electrode.phases.values()}
    for name, v in expect.items():
        assert inp["volume_fractions"][name] == pytest.approx(v, abs=1e-12)
    data = json.loads(r.stdout)
    assert data["summary"]["crop"] == inp["crop"]
    assert data["provenance"]["parameters"]["input"]["crop"] == "0:24,4:28,:"
    twin_doc = json.loads((out / "twin.json").read_text())
    assert twin_doc["config"]["input"]["crop"] == "0:24,4:28,:"
    # the same crop resumes; another crop recomputes from the input stage on
    r = _run(labelled_h5, "--out", out, "--crop", "0:24,4:28,:", "--json")
    stages = {s["name"]: s for s in json.loads(r.stdout)["stages"]}
    assert stages["input"]["reused"] and stages["metrics"]["reused"]
    r = _run(labelled_h5, "--out", out, "--crop", "8:32", "--json")
    stages = {s["name"]: s for s in json.loads(r.stdout)["stages"]}
    assert not stages["input"]["reused"] and not stages["metrics"]["reused"]
    assert _input(out)["shape"] == [24, 32, 32]


@pytest.mark.parametrize(("crop", "match"), [("0:24,x", "--crop"), ("0:8,40:50", "empty")])
def test_bad_crop_fails_before_any_output(labelled_h5, tmp_path, crop, match):
    r = _run(labelled_h5, "--out", tmp_path / "bad", "--crop", crop)
    assert r.exit_code == 1
    assert r.stderr.startswith("error: ") and match in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "bad").exists()


def test_python_inputs_are_cropped_too(tiny_electrode, tmp_path):
    from microbat.pipeline.twin import run_twin

    over = {**OFF, "input.crop": "4:20,:16,8:"}
    a = run_twin(tiny_electrode, out_dir=tmp_path / "ms", overrides=over)
    assert not a.failed
    b = run_twin(tiny_electrode.labels, voxel_size=tiny_electrode.voxel_size[0],
                 out_dir=tmp_path / "arr", overrides=over)  # fmt: skip
    assert not b.failed
    for res in (a, b):
        inp = _input(res.out_dir)
        assert inp["shape"] == [16, 16, 24] and inp["crop"] == [[4, 20], [0, 16], [8, 32]]
        assert res.provenance.parameters["input"]["crop"] == "4:20,:16,8:"
    por = _input(tmp_path / "ms")["volume_fractions"]["pore"]
    assert por == pytest.approx(float(np.mean(tiny_electrode.labels[4:20, :16, 8:] == 0)))


def test_out_of_core_crop_and_a_malformed_setting(labelled_h5, tmp_path):
    from microbat.pipeline.twin import run_twin

    res = run_twin(labelled_h5, out_dir=tmp_path / "ooc",
                   overrides={**OFF, "input.crop": ":24,:24,:24", "scale.chunks": 16})  # fmt: skip
    assert not res.failed, res.stages
    inp = _input(res.out_dir)
    assert inp["out_of_core"] and inp["shape"] == [24, 24, 24]
    with pytest.raises(InvalidInputError, match=r"input\.crop"):
        run_twin(synthetic=True, out_dir=tmp_path / "x", overrides={"input.crop": "1:2:3"})
