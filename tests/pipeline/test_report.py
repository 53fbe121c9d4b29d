"""The twin report: self-contained HTML that a browser renders with every image."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from microbat.pipeline.report import diagnose

_PROBE = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; });
  document.body.setAttribute('data-images-total', String(imgs.length));
  document.body.setAttribute('data-images-ok', String(ok.length));
});
</script>"""


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_report_is_self_contained(full_run):
    res, _ = full_run
    page = res.report.read_text("utf-8")
    srcs = re.findall(r'<img[^>]*\ssrc="([^"]*)"', page)
    assert len(srcs) >= 7  # QC, histogram, fractions, class maps, slices, curves, breakdown
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<script" not in page and "<link" not in page
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page)
    for section in ("diagnosis", "imaging", "phases", "slices", "transport", "cell", "eis"):
        assert f'id="{section}"' in page
    eis = res.stage("eis").status
    if eis == "complete":  # the Nyquist plot is there, or the section says why not
        assert "Nyquist plot" in page and 'id="eis-absent"' not in page
    else:
        assert 'id="eis-absent"' in page and eis.replace("_", " ") in page
    data = json.loads(res.results.read_text())
    assert data["diagnosis"]["headline"].split(".")[0] in page


def test_report_renders_in_headless_chromium(full_run, tmp_path):
    exe = _chromium()
    if exe is None:
        pytest.skip("no chromium binary found (install it with: apt-get install -y chromium)")
    res, _ = full_run
    page = res.report.read_text("utf-8")
    n_img = page.count("<img ")
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", _PROBE + "</body>"), "utf-8")
    artifacts = Path(os.environ.get("MICROBAT_TEST_ARTIFACTS", tmp_path))
    artifacts.mkdir(parents=True, exist_ok=True)
    flags = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=10000",
    ]
    dom = subprocess.run(
        [*flags, "--dump-dom", probe.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    total = re.search(r'data-images-total="(\d+)"', dom)
    ok = re.search(r'data-images-ok="(\d+)"', dom)
    assert total and ok, "the page did not finish loading in Chromium"
    assert int(total.group(1)) == n_img >= 7
    assert int(ok.group(1)) == n_img, f"{ok.group(1)} of {n_img} images decoded"
    shot = artifacts / "twin_report.png"
    subprocess.run(
        [*flags, "--window-size=1200,3000", f"--screenshot={shot}", res.report.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 20_000


# ------------------------------------------------------------------ the diagnosis
def _phases():
    return [
        {"name": "pore", "label": 0, "role": "electrolyte"},
        {"name": "cbd", "label": 1, "role": "carbon_binder"},
        {"name": "active", "label": 2, "role": "active"},
    ]


def _results(*, fractions, keys, pore_perc=1, tau=2.4, eps=0.33):
    rates = [0.1, 1.0, 3.0]
    return {
        "_status": {"transport": "complete", "cell": "complete", "connectivity": "complete"},
        "connectivity": {
            "cluster_counts": {"pore": {"percolating": pore_perc, "dead_end": 2, "isolated": 5}},
            "phase_fractions": {
                "pore": {"percolating": 0.9, "dead_end": 0.06, "isolated": 0.04},
                "active": {"percolating": 0.95, "dead_end": 0.03, "isolated": 0.02},
            },
            "phases_table": _phases(),
        },
        "metrics": {
            "phases_table": _phases(),
            "sizes_m": {"active": {"d50": 6e-6}},
            "active_electrolyte_specific_area_per_m": 4e5,
        },
        "transport": {
            "porosity": eps,
            "tau_thickness": tau,
            "tau_bruggeman": eps**-0.5,
            "bruggeman_exponent": 1.5,
            "thickness_axis": 0,
            "table": [
                {"axis": 0, "tau": tau},
                {"axis": 1, "tau": 1.6},
                {"axis": 2, "tau": 1.6},
            ],
        },
        "cell": {
            "transports": ["micro", "bruggeman"],
            "rate_micro": {
                "c_rate": rates,
                "fraction": fractions,
                "bottleneck_key": keys,
                "bottleneck": [f"{k} words" for k in keys],
            },
            "comparison": [
                {"c_rate": c, "difference_percent": d}
                for c, d in zip(rates, [0, -3.0, -21.0], strict=True)
            ],
        },
        "segment": {"expected_error": 0.021},
    }


def test_diagnosis_names_the_electrolyte_limit_with_the_numbers():
    d = diagnose(
        _results(fractions=[1.0, 0.93, 0.42], keys=["equilibrium", "reaction", "electrolyte"])
    )
    assert d["key"] == "electrolyte"
    assert "3C" in d["headline"] and "42.0 %" in d["headline"]
    text = " ".join(d["details"])
    assert "0.138" in text  # ε/τ = 0.33 / 2.4
    assert "21.0 % more capacity at 3C" in text  # Bruggeman optimistic
    finds = " ".join(d["findings"])
    assert "under" in finds or "over" in finds
    assert "anisotropic" in finds and "axis 0" in finds
    assert "10.0 % of the pore volume" in finds


def test_diagnosis_follows_the_first_limited_rate():
    d = diagnose(
        _results(fractions=[1.0, 0.7, 0.3], keys=["equilibrium", "solid_diffusion", "electrolyte"])
    )
    assert d["key"] == "solid_diffusion" and "1C" in d["headline"]
    assert "6 µm" in " ".join(d["details"])  # the particle size behind it


def test_diagnosis_without_a_limit():
    d = diagnose(
        _results(fractions=[1.0, 0.98, 0.95], keys=["equilibrium", "equilibrium", "reaction"])
    )
    assert d["key"] == "equilibrium" and "No rate limitation up to 3C" in d["headline"]
    assert "95.0 %" in d["headline"]


def test_diagnosis_blocked_pores_wins():
    r = _results(fractions=[1.0, 0.5, 0.1], keys=["equilibrium", "electrolyte", "electrolyte"])
    r["connectivity"]["cluster_counts"]["pore"]["percolating"] = 0
    d = diagnose(r)
    assert d["key"] == "pore_network_blocked" and "blocked" in d["headline"]


def test_diagnosis_transport_only_and_nothing():
    r = _results(fractions=[1.0], keys=["x"])
    r["_status"]["cell"] = "not_available"
    d = diagnose(r)
    assert d["key"] == "ionic_transport" and "0.138" in d["headline"]
    d = diagnose({"_status": {}})
    assert d["key"] == "undetermined"
