"""The thread policy: one budget for Numba, BLAS and worker processes (no timings)."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

import microbat.core.threads as th
from microbat.core.errors import InvalidInputError


@pytest.fixture
def policy(monkeypatch):
    """Run a test with a clean policy and restore Numba's and BLAS's state after it."""
    import numba
    from threadpoolctl import threadpool_limits

    monkeypatch.setitem(th._STATE, "budget", None)
    monkeypatch.setenv(th.ENV_VAR, "1")  # recorded, so that teardown restores the original
    monkeypatch.delenv(th.ENV_VAR)
    old_threads = numba.get_num_threads()
    with threadpool_limits(limits=None):  # restores the BLAS limits on exit
        yield th
    numba.set_num_threads(old_threads)


def test_budget_default_env_and_explicit(policy, monkeypatch):
    assert policy.thread_budget() == policy.available_cores() == len(os.sched_getaffinity(0))
    monkeypatch.setenv(th.ENV_VAR, "3")
    assert policy.thread_budget() == 3
    monkeypatch.setenv(th.ENV_VAR, "zero")
    with pytest.raises(InvalidInputError, match="MICROBAT_THREADS"):
        policy.thread_budget()
    monkeypatch.delenv(th.ENV_VAR)
    with pytest.raises(InvalidInputError, match="positive whole number"):
        policy.set_threads(0)


def test_set_threads_governs_numba_blas_and_children(policy):
    import numba
    from threadpoolctl import threadpool_info

    assert policy.set_threads(1) == 1
    assert os.environ[th.ENV_VAR] == "1"  # spawned workers inherit it
    assert numba.get_num_threads() == 1
    blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
    assert blas and all(p["num_threads"] == 1 for p in blas)
    assert os.environ["OMP_WAIT_POLICY"]  # set (passive unless the user chose)


@pytest.mark.parametrize(
    ("budget", "workers", "tasks", "expected"),
    [
        (2, None, None, (2, 1)),
        (2, 4, None, (2, 1)),
        (2, 1, None, (1, 2)),
        (4, 2, None, (2, 2)),
        (4, None, 3, (3, 1)),
        (1, 2, 8, (1, 1)),
        (8, 3, None, (3, 2)),
    ],
)
def test_split_never_exceeds_the_budget(policy, budget, workers, tasks, expected):
    th._STATE["budget"] = budget
    w, each = policy.split(workers, tasks)
    assert (w, each) == expected
    assert w * each <= budget


def test_serial_below_is_thread_local_and_restores(policy):
    import numba

    policy.set_threads(policy.available_cores())
    before = numba.get_num_threads()
    with policy.serial_below(10):
        assert numba.get_num_threads() == 1
        seen = []
        t = threading.Thread(target=lambda: seen.append(numba.get_num_threads()))
        t.start()
        t.join()
        assert seen == [numba.config.NUMBA_NUM_THREADS]  # other threads untouched
    assert numba.get_num_threads() == before
    with policy.serial_below(policy.PARALLEL_MIN_WORK):
        assert numba.get_num_threads() == before


def test_single_threaded_blas_limits_every_blas_library(policy):
    from threadpoolctl import threadpool_info

    for which in (None, "blas", "openblas", "mkl"):
        with th.single_threaded_blas(which):
            blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
            assert blas and all(p["num_threads"] == 1 for p in blas), which


def test_worker_threads_in_a_thread_sets_only_that_thread(policy):
    import numba

    policy.set_threads(policy.available_cores())
    seen = []

    def work():
        th.worker_threads(1)
        seen.append(numba.get_num_threads())

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert seen == [1]
    assert numba.get_num_threads() == min(policy.available_cores(), numba.config.NUMBA_NUM_THREADS)


def test_twin_dask_threads_share_the_budget(policy):
    import dask
    import numba

    from microbat.pipeline.twin import _dask_context

    class Scale:
        scheduler = None
        chunks = 32
        workers = None

    th._STATE["budget"] = 2
    with _dask_context(Scale()):
        got = dask.compute(*[dask.delayed(numba.get_num_threads)() for _ in range(6)])
        pool = dask.config.get("pool")
        assert pool._max_workers == 2
    assert set(got) == {1}  # two Dask threads x one Numba thread each


def test_eis_processes_share_the_budget(policy, monkeypatch):
    from microbat.cell.eis import resolved as eis

    th._STATE["budget"] = 1
    assert eis._default_processes(10 * eis.PROCESS_LIMIT, 20) == 1
    th._STATE["budget"] = 4
    assert eis._default_processes(10 * eis.PROCESS_LIMIT, 20) == 2
    assert eis._default_processes(10, 20) == 1


def test_small_assembly_terms_give_the_same_matrix(monkeypatch):
    """The serial path for small terms sums exactly what the parallel kernel sums."""
    import scipy.sparse as sp

    from microbat.cell.resolved._model import _Pattern

    rng = np.random.default_rng(0)
    n = 300
    L = sp.random(n, n, density=0.05, random_state=1, format="csr")
    rows = rng.integers(0, n, 500)
    cols = rng.integers(0, n, 500)
    diag = np.arange(n)
    parts = [
        (L, (0, 0), L.data * 2.0),
        (rows, cols, rng.random(500)),
        (diag, diag, rng.random(n)),
    ]
    pat = _Pattern(parts, n)
    small = pat.matrix(parts)
    monkeypatch.setattr(th, "PARALLEL_MIN_WORK", 1)
    big = pat.matrix(parts)
    assert np.array_equal(small.data, big.data)
    assert np.array_equal(small.indices, big.indices)


def test_cli_threads_option_on_every_verb():
    from typer.main import get_command

    from microbat.cli import app

    cmd = get_command(app)
    verbs = cmd.commands  # type: ignore[attr-defined]
    assert len(verbs) >= 15
    missing = [name for name, c in verbs.items() if "--threads" not in _opts(c)]
    assert not missing, f"verbs without --threads: {missing}"
    helps = {
        next(p.help for p in c.params if "--threads" in getattr(p, "opts", ()))
        for c in verbs.values()
    }
    assert len(helps) == 1  # the same help everywhere


def _opts(command) -> set[str]:
    return {o for p in command.params for o in getattr(p, "opts", ())}


def test_cli_threads_reaches_the_policy(tmp_path, policy):
    import json

    import numba
    from typer.testing import CliRunner

    from microbat.cli import app

    lab = np.zeros((8, 8, 8), np.uint8)
    lab[:, 2:6, 2:6] = 1
    np.save(tmp_path / "c.npy", lab)
    res = CliRunner().invoke(
        app, ["tortuosity", str(tmp_path / "c.npy"), "--threads", "1", "--json"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["tau"][0] == pytest.approx(1.0)
    assert th.thread_budget() == 1 and numba.get_num_threads() == 1
    bad = CliRunner().invoke(app, ["tortuosity", str(tmp_path / "c.npy"), "--threads", "0"])
    assert bad.exit_code != 0
