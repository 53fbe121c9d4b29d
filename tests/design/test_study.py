"""The design study: known optimum, Pareto set, resume, reproducibility, Dask.

The optimiser is validated on an analytic objective over the real design space
(the generator and the cell model are replaced by closed forms, so each trial
costs microseconds): in the fully electrolyte-limited regime the usable energy
per volume scales with the active fraction times the effective conductivity,
``f(ε) = (1 − ε − φ_cbd) ε^{3/2}`` with Bruggeman's exponent 3/2 (Bruggeman 1935),
whose maximum is at ``ε* = 3 (1 − φ_cbd) / 5`` (d f / d ε = 0). A second
descriptor, the particle radius, enters as ``exp(−ln²(R / 2.5 µm))`` (optimum at
2.5 µm), so the search is two-dimensional.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from microbat.core.errors import FileFormatError, InvalidInputError
from microbat.design.evaluate import TrialOutcome
from microbat.design.space import load_space
from microbat.design.study import pareto_front, run_study

R0 = 2.5e-6
CBD = 0.05
EPS_STAR = 0.6 * (1 - CBD)  # 0.57


def _space(objectives: list[str], **extra: Any) -> Any:
    data = {
        "name": "analytic",
        "seed": 7,
        "objectives": objectives,
        "descriptors": {
            "porosity": {"low": 0.2, "high": 0.8},
            "mean_radius": {"low": 1e-6, "high": 8e-6, "distribution": "log_uniform"},
            "cbd_fraction": {"value": CBD},
        },
        "constraints": {"percolation": []},
        "study": {"startup_trials": 8, "population_size": 8},
    }
    data.update(extra)
    return load_space(data)


class Analytic:
    """Closed-form stand-in for evaluate_design (picklable, module level)."""

    def __init__(self, fail_at: set[int] | None = None, calls: list[int] | None = None):
        self.fail_at = fail_at or set()

    def __call__(self, params: Mapping[str, Any], seed: int, fidelity: str) -> TrialOutcome:
        eps = float(params["porosity"])
        r = float(params["mean_radius"])
        size = math.exp(-(math.log(r / R0) ** 2))
        energy = (1 - eps - CBD) * eps**1.5 * size
        objs = {
            "energy_density": energy,
            "power_retention": eps**1.5 * size,
            "active_cost": 1.0 / max(1 - eps - CBD, 1e-9),
        }
        g = {"porosity_max": eps - 0.7} if "porosity_max" in params.get("_c", ()) else {}
        return TrialOutcome(
            params=dict(params),
            seed=seed,
            fidelity=fidelity,
            objectives=objs,
            constraints=g,
            feasible=True,
            violated=(),
            metrics={"porosity": eps},
            status="ok",
            error=None,
            wall_time_s=0.0,
        )


class AnalyticConstrained(Analytic):
    """The same, reporting the constraint porosity ≤ 0.5 (violation ε − 0.5)."""

    def __call__(self, params: Mapping[str, Any], seed: int, fidelity: str) -> TrialOutcome:
        out = super().__call__(params, seed, fidelity)
        g = {"porosity_max": float(params["porosity"]) - 0.5}
        viol = ("porosity_max",) if g["porosity_max"] > 0 else ()
        return TrialOutcome(
            params=out.params,
            seed=seed,
            fidelity=fidelity,
            objectives=out.objectives,
            constraints=g,
            feasible=not viol,
            violated=viol,
            metrics=out.metrics,
            status="infeasible" if viol else "ok",
            error=None,
            wall_time_s=0.0,
        )


def _best(res: Any, name: str = "energy_density") -> dict[str, Any]:
    return res.pareto[0]


def test_known_optimum_found_serial():
    # 60 TPE trials: ε within 0.03 of ε* = 0.57 and R within 15 % of 2.5 µm
    res = run_study(_space(["energy_density"]), n_trials=60, evaluator=Analytic())
    best = _best(res)
    assert res.trials == 60 and res.feasible == 60
    assert best["params"]["porosity"] == pytest.approx(EPS_STAR, abs=0.03)
    assert best["params"]["mean_radius"] == pytest.approx(R0, rel=0.15)
    f_star = (1 - EPS_STAR - CBD) * EPS_STAR**1.5
    assert best["objectives"]["energy_density"] == pytest.approx(f_star, rel=0.01)
    assert res.directions == {"energy_density": "maximize"}


def test_parallel_study_reaches_the_same_optimum():
    res = run_study(
        _space(["energy_density"]),
        n_trials=60,
        evaluator=Analytic(),
        workers=2,
        processes=False,
    )
    assert res.workers == 2 and res.trials == 60
    best = _best(res)
    assert best["params"]["porosity"] == pytest.approx(EPS_STAR, abs=0.03)
    assert best["params"]["mean_radius"] == pytest.approx(R0, rel=0.15)


def test_serial_study_is_reproducible_from_its_seed(tmp_path):
    a = run_study(_space(["energy_density"]), n_trials=15, evaluator=Analytic())
    b = run_study(_space(["energy_density"]), n_trials=15, evaluator=Analytic())
    c = run_study(_space(["energy_density"]), n_trials=15, evaluator=Analytic(), seed=8)
    pa = [r["params"] for r in a.trial_table]
    assert pa == [r["params"] for r in b.trial_table]
    assert pa != [r["params"] for r in c.trial_table]


def test_resumed_study_equals_uninterrupted(tmp_path):
    space = _space(["energy_density", "power_retention"])
    full = run_study(
        space, n_trials=12, storage=tmp_path / "a.db", evaluator=Analytic(), importances=False
    )
    part = run_study(
        space, n_trials=5, storage=tmp_path / "b.db", evaluator=Analytic(), importances=False
    )
    assert part.trials == 5
    import optuna

    study = optuna.load_study(study_name="analytic", storage=f"sqlite:///{tmp_path / 'b.db'}")
    assert len(study.trials) == 5
    rest = run_study(
        space, n_trials=12, storage=tmp_path / "b.db", evaluator=Analytic(), importances=False
    )
    assert rest.trials == 12
    assert [r["params"] for r in rest.trial_table] == [r["params"] for r in full.trial_table]
    assert [r["objectives"] for r in rest.trial_table] == [
        r["objectives"] for r in full.trial_table
    ]


class Interrupt(Analytic):
    """Raises KeyboardInterrupt at one trial (a Ctrl-C while it runs)."""

    def __init__(self, at: int):
        super().__init__()
        self.at = at
        self.n = 0

    def __call__(self, params: Mapping[str, Any], seed: int, fidelity: str) -> TrialOutcome:
        self.n += 1
        if self.n == self.at:
            raise KeyboardInterrupt
        return super().__call__(params, seed, fidelity)


def test_interrupted_running_trial_is_evaluated_again(tmp_path):
    space = _space(["energy_density", "power_retention"])
    full = run_study(
        space, n_trials=8, storage=tmp_path / "a.db", evaluator=Analytic(), importances=False
    )
    with pytest.raises(KeyboardInterrupt):
        run_study(space, n_trials=8, storage=tmp_path / "b.db", evaluator=Interrupt(6))
    con = sqlite3.connect(tmp_path / "b.db")
    states = [s for (s,) in con.execute("select state from trials order by number")]
    con.close()
    assert states == ["COMPLETE"] * 5 + ["RUNNING"]  # the file is intact
    rest = run_study(
        space, n_trials=8, storage=tmp_path / "b.db", evaluator=Analytic(), importances=False
    )
    assert rest.running == 0 and rest.complete == 8
    assert [r["params"] for r in rest.trial_table] == [r["params"] for r in full.trial_table]


def test_pareto_set_is_non_dominated_and_on_the_true_front():
    space = _space(["energy_density", "power_retention"])
    res = run_study(space, n_trials=48, evaluator=Analytic())
    assert res.directions == {"energy_density": "maximize", "power_retention": "maximize"}
    feas = [r for r in res.trial_table if r["feasible"]]
    vals = np.array(
        [[r["objectives"]["energy_density"], r["objectives"]["power_retention"]] for r in feas]
    )
    front = np.array(
        [
            [p["objectives"]["energy_density"], p["objectives"]["power_retention"]]
            for p in res.pareto
        ]
    )
    assert len(front) >= 3
    # no feasible trial dominates a Pareto design
    for f in front:
        dom = np.all(vals >= f, axis=1) & np.any(vals > f, axis=1)
        assert not dom.any()
    # and every design not on the front is dominated by one on it
    on = {p["number"] for p in res.pareto}
    for r, v in zip(feas, vals, strict=True):
        if r["number"] not in on:
            assert np.any(np.all(front >= v, axis=1) & np.any(front > v, axis=1))
    # the true Pareto set has R = R0; the front found lies near it
    radii = np.array([p["params"]["mean_radius"] for p in res.pareto])
    assert np.median(np.abs(np.log(radii / R0))) < 0.35
    # the porosity matters to both objectives; fANOVA ranks it first for the energy
    imp = res.importances["energy_density"]
    assert set(imp) == {"porosity", "mean_radius"}
    assert imp["porosity"] > 0.2


def test_pareto_front_helper():
    v = np.array([[1, 1], [2, 0], [0, 2], [0.5, 0.5], [1, 1]])
    assert sorted(pareto_front(v, ["maximize", "maximize"]).tolist()) == [0, 1, 2, 4]
    assert pareto_front(v, ["minimize", "minimize"]).tolist() == [1, 2, 3]


def test_infeasible_designs_are_kept_and_avoided():
    space = _space(["energy_density"], constraints={"percolation": [], "porosity_max": 0.5})
    res = run_study(space, n_trials=60, evaluator=AnalyticConstrained())
    assert res.trials == 60
    bad = [r for r in res.trial_table if not r["feasible"]]
    assert bad and all(r["violated"] == ["porosity_max"] for r in bad)
    assert all(r["state"] == "COMPLETE" for r in bad)  # reported, not dropped
    # constrained optimum: the bound ε = 0.5 (f increases up to ε* = 0.57)
    assert res.pareto[0]["params"]["porosity"] == pytest.approx(0.5, abs=0.04)
    assert res.pareto[0]["params"]["porosity"] <= 0.5


def test_no_feasible_design_names_the_binding_constraint():
    space = _space(
        ["energy_density"],
        descriptors={
            "porosity": {"low": 0.55, "high": 0.8},
            "mean_radius": {"low": 1e-6, "high": 8e-6},
            "cbd_fraction": {"value": CBD},
        },
        constraints={"percolation": [], "porosity_max": 0.54},
    )
    # stated before any trial: 0.54 < 0.55 - 0.02 is not refused (within the
    # voxel tolerance), so the study runs and reports the binding constraint
    res = run_study(space, n_trials=6, evaluator=AnalyticConstrained())
    assert res.feasible == 0 and not res.pareto
    assert "binding constraint: porosity_max" in res.binding


def test_storage_of_another_space_is_refused(tmp_path):
    run_study(
        _space(["energy_density"]), n_trials=2, storage=tmp_path / "s.db", evaluator=Analytic()
    )
    other = _space(["energy_density"], seed=3)
    with pytest.raises(InvalidInputError, match="another design space"):
        run_study(other, n_trials=4, storage=tmp_path / "s.db", evaluator=Analytic())
    (tmp_path / "junk.db").write_text("not a database")
    with pytest.raises(FileFormatError, match="cannot open the study storage"):
        run_study(_space(["energy_density"]), n_trials=2, storage=tmp_path / "junk.db")


def test_unreachable_scheduler():
    with pytest.raises(FileFormatError, match="cannot reach the Dask scheduler"):
        run_study(
            _space(["energy_density"]),
            n_trials=2,
            scheduler="tcp://127.0.0.1:9",
            evaluator=Analytic(),
        )


class DieOnce(Analytic):
    """Kills its worker process at trial ``at``: once (marker file) or every time."""

    def __init__(self, marker: str, at: int, always: bool = False):
        super().__init__()
        self.marker, self.at, self.always = marker, at, always

    def __call__(self, params: Mapping[str, Any], seed: int, fidelity: str) -> TrialOutcome:
        import os
        from pathlib import Path

        from microbat.design.study import trial_seed

        if seed == trial_seed(7, self.at) and (self.always or not Path(self.marker).exists()):
            Path(self.marker).write_text("died")
            os._exit(1)  # the worker process dies mid-trial
        return super().__call__(params, seed, fidelity)


@pytest.mark.parametrize("always", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_a_dying_worker_loses_at_most_its_trial(tmp_path, always):
    import sys

    import cloudpickle
    import dask
    import distributed  # noqa: F401  (its config defaults before dask.config.set)

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    space = _space(["energy_density"])
    ev = DieOnce(str(tmp_path / "marker"), at=3, always=always)
    # no retry on the cluster when the trial always kills its worker
    with dask.config.set({"distributed.scheduler.allowed-failures": 0 if always else 3}):
        res = run_study(space, n_trials=8, evaluator=ev, workers=2, importances=False)
    assert (tmp_path / "marker").exists()  # a worker did die
    assert res.trials == 8 and res.running == 0
    by = {r["number"]: r for r in res.trial_table}
    if always:
        # reported, with the reason; every other trial complete
        assert by[3]["state"] == "FAIL" and "lost on the cluster" in by[3]["error"]
        assert res.complete == 7
    else:
        assert res.complete == 8 and by[3]["state"] == "COMPLETE"


class FidelityTag(Analytic):
    """Analytic objectives, scaled by 0.9 at the 'resolved' fidelity."""

    def __call__(self, params: Mapping[str, Any], seed: int, fidelity: str) -> TrialOutcome:
        out = super().__call__(params, seed, fidelity)
        k = 0.9 if fidelity == "resolved" else 1.0
        objs = {n: k * v for n, v in out.objectives.items()}
        return TrialOutcome(**{**out.__dict__, "objectives": objs, "fidelity": fidelity})


def test_multi_fidelity_confirms_the_best_designs():
    space = _space(
        ["energy_density", "power_retention"],
        evaluation={"fidelity": "bruggeman", "confirm_fidelity": "resolved", "confirm_top": 3},
    )
    res = run_study(space, n_trials=12, evaluator=FidelityTag(), importances=False)
    assert len(res.confirmed) == 3
    assert [c["number"] for c in res.confirmed] == [p["number"] for p in res.pareto[:3]]
    for c in res.confirmed:
        assert c["screen_fidelity"] == "bruggeman" and c["confirm_fidelity"] == "resolved"
        assert c["confirm"]["energy_density"] == pytest.approx(0.9 * c["screen"]["energy_density"])


def test_study_on_an_existing_scheduler():
    import distributed

    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        res = run_study(
            _space(["energy_density"]),
            n_trials=10,
            evaluator=Analytic(),
            scheduler=cluster.scheduler_address,
            importances=False,
        )
    assert res.scheduler == cluster.scheduler_address and res.workers == 2
    assert res.trials == 10 and res.complete == 10
