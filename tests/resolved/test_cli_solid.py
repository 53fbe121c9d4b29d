"""``microbat simulate`` on a composite cathode (solid electrolyte, issue 21)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from microbat.cli import app

runner = CliRunner()


def test_simulate_composite_cathode(tmp_path):
    from microbat.io import save_microstructure
    from microbat.synth import composite_cathode

    ms = composite_cathode(
        (12, 12, 12), voxel_size=1e-6, active_fraction=0.5, electrolyte_fraction=0.4,
        binder_fraction=0.03, active_radius=2.5e-6, electrolyte_radius=1.2e-6, seed=2,
    )  # fmt: skip
    path = tmp_path / "composite.h5"
    save_microstructure(ms, path)
    args = ["simulate", str(path), "--c-rate", "1", "--end-time", "600", "--json"]
    out = []
    for sigma in ("0.2", "0.01"):
        run = tmp_path / f"run{sigma}"
        r = runner.invoke(app, [*args, "--se-conductivity", sigma, "--out", str(run)])
        assert r.exit_code == 0, r.output
        d = json.loads(r.stdout)
        assert d["partial"] is False and d["max_conservation_error"] < 1e-8
        assert (run / "curve.csv").is_file()
        out.append(d)
    # a 20x less conducting electrolyte: a larger ohmic loss at the same current
    ohm = [d["breakdown"]["ohmic_electrolyte"] for d in out]
    assert ohm[1] > 10 * ohm[0] > 0
    assert abs(out[1]["breakdown"]["concentration_electrolyte"]) < 1e-12
    r = runner.invoke(app, [*args, "--se-conductivity", "-1", "--out", str(tmp_path / "bad")])
    assert r.exit_code != 0 and "se_conductivity_S_per_m" in r.output
    assert not (tmp_path / "bad" / "result.json").exists()
