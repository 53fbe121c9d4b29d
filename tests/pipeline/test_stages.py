"""The stage list is the only place the runner, the report and the diagnosis look.

A new analysis is one module defining a ``Stage``: these tests add one (without
touching the runner, the writer or the diagnosis) and check that it runs, resumes,
and appears in ``results.json``, the diagnosis and the HTML report.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import microbat.pipeline.stages as stages_pkg
from microbat.pipeline.base import Finding, Stage, StageOutput, StageSettings, Verdict
from microbat.pipeline.config import TwinConfig
from microbat.pipeline.report import diagnose
from microbat.pipeline.reportkit import ReportSection
from microbat.pipeline.stages import report as report_stage
from microbat.pipeline.twin import run_twin

FAST = {
    "cell.enabled": False,
    "eis.enabled": False,
    "transport.random_walk": False,
    "transport.tensor": False,
}


def _porosity_profile(ctx):
    ms = ctx.microstructure()
    pore = ms.mask("electrolyte")
    other = tuple(a for a in range(ms.ndim) if a != ms.thickness_axis)
    profile = pore.mean(axis=other)
    return StageOutput(
        summary={"porosity_min": float(profile.min()), "porosity_max": float(profile.max())},
        arrays={"profile": profile},
    )


def _report(view):
    s = view.summary("profile")
    body = f"<p>porosity from {s['porosity_min']:.3f} to {s['porosity_max']:.3f}</p>"
    return [ReportSection("profile", "Porosity profile", body)]


def _diagnose(results):
    s = results.get("profile") or {}
    if s:
        yield Finding(0, f"porosity varies by {s['porosity_max'] - s['porosity_min']:.3f}")


PROFILE = Stage(
    "profile",
    "Porosity profile",
    ("input", "segment"),
    (),
    _porosity_profile,
    report=_report,
    diagnose=_diagnose,
    headline=lambda r: {"porosity_min": (r.get("profile") or {}).get("porosity_min")},
)


@pytest.fixture
def with_profile(monkeypatch):
    analyses = [s for s in stages_pkg.STAGES if s.name != "report"]
    analyses.append(PROFILE)
    stages = (*analyses, report_stage.make_stage(tuple(s.name for s in analyses)))
    monkeypatch.setattr(stages_pkg, "STAGES", stages)
    return stages


def test_a_new_stage_module_is_run_reported_and_diagnosed(labelled_h5, tmp_path, with_profile):
    out = tmp_path / "t"
    res = run_twin(labelled_h5, out_dir=out, overrides=FAST)
    assert [s.name for s in res.stages] == [s.name for s in with_profile]
    assert res.stage("profile").status == "complete"
    data = json.loads((out / "results.json").read_text())
    got = data["stages"]["profile"]["result"]
    assert 0 < got["porosity_min"] <= got["porosity_max"] < 1
    assert data["summary"]["porosity_min"] == got["porosity_min"]
    assert data["diagnosis"]["findings"][0].startswith("porosity varies by")
    html = (out / "report.html").read_text()
    assert '<section id="profile"><h2>Porosity profile</h2>' in html
    assert '<a href="#profile">' in html
    with np.load(out / "stages/profile/arrays.npz") as z:
        assert z["profile"].shape == (32,)
    again = run_twin(labelled_h5, out_dir=out, overrides=FAST)
    assert again.stage("profile").reused


def test_every_stage_declares_its_parts():
    names = [s.name for s in stages_pkg.STAGES]
    assert names[0] == "input" and names[-1] == "report"
    assert len(set(names)) == len(names)
    owned = [sec for s in stages_pkg.STAGES for sec, _ in s.settings]
    assert owned == [f for f in TwinConfig.model_fields if f not in ("scale", "report")]
    for s in stages_pkg.STAGES:
        assert set(s.deps) <= set(names[: names.index(s.name)]), s.name
        for sec, cls in s.settings:
            assert issubclass(cls, StageSettings) and sec in s.sections, (s.name, sec)
    assert stages_pkg.STAGES[-1].deps == tuple(names[:-1])


def test_the_lowest_priority_verdict_wins_and_findings_are_ranked():
    def rules_a(results):
        yield Verdict(20, "a", "A")
        yield Finding(2, "second")

    def rules_b(results):
        yield Finding(1, "first")
        yield Verdict(5, "b", "B", ("why b",))

    stages = [
        Stage("a", "A", (), (), lambda c: StageOutput(), diagnose=rules_a),
        Stage("b", "B", (), (), lambda c: StageOutput(), diagnose=rules_b),
        Stage("c", "C", (), (), lambda c: StageOutput()),
    ]
    d = diagnose({"_status": {}}, stages)
    assert (d["key"], d["headline"], d["details"]) == ("b", "B", ["why b"])
    assert d["findings"] == ["first", "second"]
    assert diagnose({"_status": {}}, stages[2:])["key"] == "undetermined"
