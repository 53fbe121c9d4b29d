"""The design study: optuna's samplers over a design space, trials on Dask.

:func:`run_study` asks optuna for designs, evaluates them (in this process, or as
Dask tasks on a ``dask.distributed`` cluster: a :class:`~distributed.LocalCluster`
of ``workers`` processes, or an existing scheduler) and tells the results back.
The study lives in an SQLite file, so an interrupted study resumes where it
stopped: ``n_trials`` is the total the study should reach, trials that were still
running when the study stopped are evaluated again with their own parameters and
seed, and the next trials follow.

Reproducibility. The sampler is re-created before every ``ask`` with a seed drawn
from ``(seed, trial number)``, and each trial's microstructure seed is drawn the
same way; the sampler reads the history from the storage. A serial study
(``workers=1``) is therefore identical from its seed, whether it ran in one go or
was interrupted and resumed. A parallel study is not bit-reproducible: which
trials are complete when the next design is asked for depends on the workers'
timing (optuna's parallel samplers behave the same way); it reaches the same
optimum (see ``docs/validation/design.md``).

Constraints go to the sampler as optuna ``constraints_func`` (NSGA-II's
constrained domination, Deb et al. 2002; TPE's feasibility weighting), so
infeasible designs stay in the study and in the results with the constraint they
broke. A trial whose model failed is a FAIL trial with its reason.

References
----------
.. [1] K. Deb, A. Pratap, S. Agarwal, T. Meyarivan, "A fast and elitist
   multiobjective genetic algorithm: NSGA-II", IEEE Trans. Evol. Comput. 6,
   182–197 (2002), doi:10.1109/4235.996017.
.. [2] J. Bergstra, R. Bardenet, Y. Bengio, B. Kégl, "Algorithms for
   hyper-parameter optimization", NeurIPS 24 (2011) (TPE).
.. [3] T. Akiba, S. Sano, T. Yanase, T. Ohta, M. Koyama, "Optuna: a
   next-generation hyperparameter optimization framework", KDD 2019,
   doi:10.1145/3292500.3330701.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from microbat.core.errors import FileFormatError, InvalidInputError
from microbat.core.results import Provenance, Result, to_jsonable
from microbat.design.constraints import constraint_names
from microbat.design.evaluate import TrialOutcome, evaluate_design
from microbat.design.space import DesignSpace

__all__ = ["StudyResult", "pareto_front", "run_study", "trial_seed"]

log = logging.getLogger("microbat.design")

#: Callable evaluating one design: ``(params, seed, fidelity) -> TrialOutcome``.
Evaluator = Callable[[Mapping[str, Any], int, str], TrialOutcome]

Progress = Callable[[int, int, str, float], None]


def trial_seed(seed: int, number: int) -> int:
    """Seed of trial ``number`` of a study seeded ``seed`` (microstructure and sampler)."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(number)]).generate_state(1)[0])


def pareto_front(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Indices of the non-dominated rows of ``values``.

    Parameters
    ----------
    values : ndarray (n, k)
        Objective values of ``n`` designs.
    directions : sequence of {"minimize", "maximize"}
        One per column.

    Returns
    -------
    ndarray of int
        Rows no other row dominates (at least as good in every objective and
        better in one); duplicates are all kept. O(n² k).
    """
    v = np.asarray(values, float)
    if v.size == 0:
        return np.zeros(0, int)
    sign = np.array([1.0 if d == "minimize" else -1.0 for d in directions])
    w = v * sign
    keep = []
    for i in range(w.shape[0]):
        le = np.all(w <= w[i], axis=1)
        lt = np.any(w < w[i], axis=1)
        if not np.any(le & lt):
            keep.append(i)
    return np.array(keep, int)


@dataclass(frozen=True)
class StudyResult(Result):
    """What a design study found.

    Attributes
    ----------
    name : str
        Study name.
    storage : str or None
        The SQLite file holding the study (None: in memory).
    trials : int
        Trials in the study (every state).
    complete, feasible, failed, running : int
        Trials evaluated, evaluated and feasible, failed (model error or lost
        worker), still marked running (interrupted).
    directions : dict of str to str
        Objective → ``"minimize"`` / ``"maximize"``.
    pareto : list of dict
        The non-dominated feasible designs: ``number``, ``params``, ``objectives``,
        ``seed``, ``metrics``; sorted by the first objective.
    trial_table : list of dict
        Every trial: ``number``, ``state``, ``params``, ``objectives``,
        ``constraints``, ``feasible``, ``violated``, ``status``, ``error``, ``seed``.
    importances : dict of str to dict of str to float
        Per objective, the fANOVA importance of each searched descriptor (empty
        with fewer than 4 feasible trials).
    binding : str or None
        Without any feasible design: the constraint violated most often, in words.
    confirmed : list of dict
        Multi-fidelity: the best designs re-evaluated with ``confirm_fidelity``.
    sampler : str
    workers : int
        Dask workers used (1: serial, in this process).
    scheduler : str or None
        Address of the Dask scheduler (None: local cluster or serial).
    wall_time_s : float
        Wall time of this call.
    provenance : Provenance
    """

    name: str
    storage: str | None
    trials: int
    complete: int
    feasible: int
    failed: int
    running: int
    directions: dict[str, str]
    pareto: list[dict[str, Any]]
    trial_table: list[dict[str, Any]]
    importances: dict[str, dict[str, float]]
    binding: str | None
    confirmed: list[dict[str, Any]]
    sampler: str
    workers: int
    scheduler: str | None
    wall_time_s: float
    provenance: Provenance = field(default_factory=lambda: Provenance("run_study"))

    @property
    def feasible_fraction(self) -> float:
        """Feasible trials over evaluated trials (NaN before any)."""
        n = self.complete + self.failed
        return self.feasible / n if n else math.nan

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the keys of ``microbat design --json``."""
        return {
            "name": self.name,
            "storage": self.storage,
            "trials": self.trials,
            "complete": self.complete,
            "feasible": self.feasible,
            "failed": self.failed,
            "running": self.running,
            "feasible_fraction": to_jsonable(self.feasible_fraction),
            "directions": dict(self.directions),
            "pareto": to_jsonable(self.pareto),
            "importances": to_jsonable(self.importances),
            "binding": self.binding,
            "confirmed": to_jsonable(self.confirmed),
            "sampler": self.sampler,
            "workers": self.workers,
            "scheduler": self.scheduler,
            "wall_time_s": self.wall_time_s,
            "trial_table": to_jsonable(self.trial_table),
            "provenance": self.provenance.to_dict(),
        }


# ---------------------------------------------------------------------- optuna pieces
def _optuna() -> Any:
    from microbat.core.errors import require

    optuna = require("optuna", package="optuna")
    return optuna


def _distributions(optuna: Any, space: DesignSpace) -> dict[str, Any]:
    d = optuna.distributions
    out: dict[str, Any] = {}
    for name, spec in space.searched.items():
        if spec.kind == "categorical":
            out[name] = d.CategoricalDistribution(list(spec.choices or ()))
        elif spec.kind == "log_uniform":
            out[name] = d.FloatDistribution(float(spec.low), float(spec.high), log=True)  # type: ignore[arg-type]
        else:
            out[name] = d.FloatDistribution(float(spec.low), float(spec.high), step=spec.step)  # type: ignore[arg-type]
    return out


def _constraints_func(n: int) -> Callable[[Any], Sequence[float]]:
    def constraints(trial: Any) -> Sequence[float]:
        g = trial.user_attrs.get("constraint_values")
        if not g or len(g) != n:
            return [1.0] * n
        return [1.0 if (x is None or not math.isfinite(x)) else float(x) for x in g]

    return constraints


def _sampler_name(space: DesignSpace) -> str:
    s = space.study.sampler
    if s == "auto":
        return "nsga2" if len(space.objectives) > 1 else "tpe"
    return s


def _make_sampler(optuna: Any, space: DesignSpace, seed: int, n_constraints: int) -> Any:
    name = _sampler_name(space)
    cf = _constraints_func(n_constraints) if n_constraints else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna's ExperimentalWarning for constraints_func
        if name == "nsga2":
            return optuna.samplers.NSGAIISampler(
                population_size=space.study.population_size, seed=seed, constraints_func=cf
            )
        if name == "tpe":
            return optuna.samplers.TPESampler(
                n_startup_trials=space.study.startup_trials, seed=seed, constraints_func=cf
            )
        return optuna.samplers.RandomSampler(seed=seed)


@contextlib.contextmanager
def _quiet_optuna(optuna: Any) -> Iterator[None]:
    old = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module="optuna")
            yield
    finally:
        optuna.logging.set_verbosity(old)


def _space_key(space: DesignSpace) -> str:
    return json.dumps(space.model_dump(mode="json"), sort_keys=True)


def _fast_sqlite(engine: Any) -> None:
    """Write-ahead log, commits without a disk flush each (about 15 per trial).

    The file stays consistent whatever happens (WAL commits are atomic); after a
    power cut, the last trials committed may be lost and are then run again.
    """
    from sqlalchemy import event

    def pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    event.listen(engine, "connect", pragmas)
    engine.dispose()  # pooled connections made before the listener reconnect with it


def _open_study(optuna: Any, space: DesignSpace, storage: str | None) -> Any:
    directions = list(space.directions.values())
    rdb = None
    try:
        if storage is not None:
            url = storage if "://" in storage else f"sqlite:///{Path(storage).resolve()}"
            rdb = optuna.storages.RDBStorage(url)
            if url.startswith("sqlite"):
                _fast_sqlite(rdb.engine)
        study = optuna.create_study(
            study_name=space.name,
            storage=rdb,
            directions=directions,
            load_if_exists=True,
        )
    except ValueError as exc:  # directions differ from the stored study's
        raise InvalidInputError(
            f"{storage} holds a study {space.name!r} that does not match this design space "
            f"({exc}); use another --out folder or the same design space"
        ) from None
    except Exception as exc:  # sqlalchemy errors: not a database, locked, ...
        raise FileFormatError(
            f"cannot open the study storage {storage}: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0]}"
        ) from None
    key = _space_key(space)
    stored = study.user_attrs.get("design_space")
    if stored is None:
        study.set_user_attr("design_space", key)
    elif stored != key:
        raise InvalidInputError(
            f"{storage} holds the study {space.name!r} of another design space (or seed); "
            "resume it with the same file and seed, or use another --out folder"
        )
    return study


def _record(trial: Any, outcome: TrialOutcome, names: Sequence[str]) -> None:
    """Store the outcome on the trial (two writes: SQLite commits each)."""
    g = [outcome.constraints.get(k, math.nan) for k in names]
    trial.set_user_attr("constraint_values", [None if not math.isfinite(x) else x for x in g])
    trial.set_user_attr(
        "outcome",
        {
            "constraint_names": list(names),
            "status": outcome.status,
            "violated": list(outcome.violated),
            "error": outcome.error,
            "seed": outcome.seed,
            "fidelity": outcome.fidelity,
            "wall_time_s": outcome.wall_time_s,
            "metrics": {
                k: (float(v) if math.isfinite(float(v)) else None)
                for k, v in outcome.metrics.items()
                if isinstance(v, int | float)
            },
        },
    )


def _attrs(t: Any) -> dict[str, Any]:
    """The outcome recorded on a (frozen) trial."""
    out = dict(t.user_attrs.get("outcome", {}))
    out.setdefault("seed", t.user_attrs.get("seed"))
    if "lost" in t.user_attrs:
        out.update(status="failed", error=t.user_attrs["lost"])
    return out


# ----------------------------------------------------------------------- executors
class _Serial:
    """Evaluate in this process, one trial at a time."""

    workers = 1
    scheduler = None

    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator
        self.queue: list[tuple[Any, Any]] = []

    def submit(self, key: Any, params: dict[str, Any], seed: int, fidelity: str) -> None:
        self.queue.append((key, (params, seed, fidelity)))

    def capacity(self) -> int:
        return 1

    def next_done(self) -> tuple[Any, TrialOutcome | None, str | None]:
        key, (params, seed, fid) = self.queue.pop(0)
        return key, self.evaluator(params, seed, fid), None

    def pending(self) -> int:
        return len(self.queue)

    def cancel(self) -> None:
        self.queue.clear()


class _Dask:
    """Evaluate as Dask tasks; a lost worker's task is retried, then reported."""

    def __init__(self, client: Any, evaluator: Evaluator, workers: int, retries: int) -> None:
        self.client = client
        self.evaluator = evaluator
        self.workers = workers
        self.retries = retries
        self.scheduler: str | None = None
        self.futures: dict[Any, Any] = {}

    def submit(self, key: Any, params: dict[str, Any], seed: int, fidelity: str) -> None:
        fut = self.client.submit(
            self.evaluator, params, seed, fidelity, pure=False, retries=self.retries
        )
        self.futures[fut] = key

    def capacity(self) -> int:
        return max(1, self.workers)

    def next_done(self) -> tuple[Any, TrialOutcome | None, str | None]:
        from distributed import wait

        done = wait(list(self.futures), return_when="FIRST_COMPLETED").done
        fut = min(done, key=lambda f: self.futures[f])  # deterministic among the done ones
        key = self.futures.pop(fut)
        try:
            return key, fut.result(), None
        except Exception as exc:  # KilledWorker, a worker's own crash, ...
            msg = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            return key, None, f"lost on the cluster after {self.retries} retries ({msg})"

    def pending(self) -> int:
        return len(self.futures)

    def cancel(self) -> None:
        for f in self.futures:
            f.cancel()
        self.futures.clear()


def _probe(address: str) -> None:
    """Fail in one line, at once, when nothing listens at a tcp:// scheduler address."""
    import socket
    from urllib.parse import urlsplit

    if not address.startswith("tcp://"):
        return
    u = urlsplit(address)
    try:
        with socket.create_connection((u.hostname or "localhost", u.port or 8786), timeout=5):
            pass
    except OSError as exc:
        raise FileFormatError(
            f"cannot reach the Dask scheduler at {address} ({exc.strerror or exc}); start one "
            "with `dask scheduler` (and workers with `dask worker ADDRESS`) or leave "
            "--scheduler out to use a local cluster"
        ) from None


@contextlib.contextmanager
def _executor(
    evaluator: Evaluator,
    workers: int | None,
    scheduler: str | None,
    retries: int,
    processes: bool,
) -> Iterator[Any]:
    if scheduler is None and workers == 1:
        yield _Serial(evaluator)
        return
    from microbat.core.errors import require

    distributed = require("distributed", extra="dask", package="distributed")
    if scheduler:
        _probe(scheduler)
        try:
            client = distributed.Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise FileFormatError(
                f"cannot reach the Dask scheduler at {scheduler} ({exc}); start one with "
                "`dask scheduler` (and workers with `dask worker ADDRESS`) or leave "
                "--scheduler out to use a local cluster"
            ) from None
        with client:
            n = max(1, len(client.scheduler_info().get("workers", {})))
            ex = _Dask(client, evaluator, n, retries)
            ex.scheduler = scheduler
            yield ex
        return
    from microbat.core.threads import split

    nw, per = split(workers)
    # each worker process gets its share of the thread budget before its first import
    # (Numba, OpenMP, BLAS pools are sized when they load)
    env = {
        "MICROBAT_THREADS": str(per),
        "OMP_NUM_THREADS": str(per),
        "NUMBA_NUM_THREADS": str(per),
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OMP_WAIT_POLICY": "passive",
    }
    with (
        warnings.catch_warnings(),
        distributed.LocalCluster(
            n_workers=nw,
            threads_per_worker=1,
            processes=processes,
            dashboard_address=None,
            **({"env": env} if processes else {}),
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        warnings.simplefilter("ignore", ResourceWarning)
        yield _Dask(client, evaluator, nw, retries)


# ------------------------------------------------------------------------- the study
def _default_evaluator(space: DesignSpace) -> Evaluator:
    return _SpaceEvaluator(space.model_dump(mode="json"))


class _SpaceEvaluator:
    """Picklable evaluator of a design space (rebuilt from its JSON on the worker)."""

    def __init__(self, space_json: dict[str, Any]) -> None:
        self.space_json = space_json
        self._space: DesignSpace | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"space_json": self.space_json}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.space_json = state["space_json"]
        self._space = None

    def __call__(self, params: Mapping[str, Any], seed: int, fidelity: str) -> TrialOutcome:
        if self._space is None:
            self._space = DesignSpace(**self.space_json)
        return evaluate_design(params, fidelity=fidelity, seed=seed, space=self._space)


def run_study(
    space: DesignSpace,
    *,
    n_trials: int,
    storage: str | Path | None = None,
    seed: int | None = None,
    workers: int | None = 1,
    scheduler: str | None = None,
    evaluator: Evaluator | None = None,
    progress: Progress | None = None,
    processes: bool = True,
    importances: bool = True,
) -> StudyResult:
    """Run (or resume) a design study until it holds ``n_trials`` trials.

    Parameters
    ----------
    space : DesignSpace
        What to search, optimise and respect.
    n_trials : int
        Total trials the study should reach (a resumed study runs the rest).
    storage : path or URL, optional
        SQLite file (or an optuna storage URL) keeping the study; ``None`` keeps it
        in memory (no resume).
    seed : int, optional
        Overrides ``space.seed``.
    workers : int or None, default 1
        1: evaluate in this process (reproducible). More (or None: the thread
        budget, all cores by default): a Dask ``LocalCluster`` of that many worker
        processes.
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://host:8786``); ``workers`` is
        then ignored.
    evaluator : callable, optional
        ``(params, seed, fidelity) -> TrialOutcome``; default
        :func:`~microbat.design.evaluate_design` on ``space`` (replace it for
        analytic test problems). Must be picklable for a process cluster.
    progress : callable, optional
        Called after each trial with ``(done, total, best_so_far, feasible_fraction)``.
    processes : bool, default True
        Worker processes (True) or threads (False) of the local cluster.
    importances : bool, default True
        Compute the descriptors' fANOVA importances (a random forest per objective).

    Returns
    -------
    StudyResult

    Raises
    ------
    InvalidInputError
        ``n_trials`` < 1, or a storage that holds another design space.
    FileFormatError
        The storage cannot be opened; the scheduler cannot be reached.
    """
    t0 = time.perf_counter()
    if int(n_trials) < 1:
        raise InvalidInputError(f"--trials must be at least 1, got {n_trials}")
    if seed is not None and int(seed) != space.seed:
        space = space.with_changes(seed=int(seed))
    if scheduler:
        _probe(scheduler)  # before the storage is touched
    optuna = _optuna()
    cnames = constraint_names(space.constraints, space.percolation)
    names = list(space.objectives)
    dists = _distributions(optuna, space)
    ev = evaluator or _default_evaluator(space)
    fid = space.evaluation.fidelity
    store = None if storage is None else str(storage)
    with _quiet_optuna(optuna):
        study = _open_study(optuna, space, store)
        target = int(n_trials)
        TS = optuna.trial.TrialState

        def counts() -> tuple[int, int, int]:
            ts = study.get_trials(deepcopy=False)
            done = sum(t.state in (TS.COMPLETE, TS.FAIL) for t in ts)
            feas = sum(t.state == TS.COMPLETE and _attrs(t).get("status") == "ok" for t in ts)
            return done, feas, len(ts)

        ids: dict[int, int] = {}

        def tell(number: int, outcome: TrialOutcome | None, lost: str | None) -> None:
            trial = optuna.trial.Trial(study, ids[number])
            if outcome is None:
                trial.set_user_attr("lost", lost)
                study.tell(number, state=TS.FAIL)
                return
            _record(trial, outcome, cnames)
            vals = [outcome.objectives[n] for n in names]
            if outcome.status == "failed" or not all(math.isfinite(v) for v in vals):
                study.tell(number, state=TS.FAIL)
            else:
                study.tell(number, vals)

        with _executor(ev, workers, scheduler, space.study.retries, processes) as ex:
            # 1. trials left running by an interrupted session: evaluate them again
            stale = [t for t in study.get_trials(deepcopy=False) if t.state == TS.RUNNING]
            for t in stale:
                ids[t.number] = t._trial_id
                ex.submit(t.number, dict(t.params), trial_seed(space.seed, t.number), fid)
            asked = len(study.get_trials(deepcopy=False))
            try:
                while True:
                    while asked < target and ex.pending() < ex.capacity():
                        number = asked
                        study.sampler = _make_sampler(
                            optuna, space, trial_seed(space.seed, number), len(cnames)
                        )
                        trial = study.ask(dists)
                        ids[trial.number] = trial._trial_id
                        tseed = trial_seed(space.seed, trial.number)
                        trial.set_user_attr("seed", tseed)
                        ex.submit(trial.number, dict(trial.params), tseed, fid)
                        asked = max(asked + 1, trial.number + 1)
                    if ex.pending() == 0:
                        break
                    number, outcome, lost = ex.next_done()
                    tell(number, outcome, lost)
                    if progress is not None:
                        done, feas, _ = counts()
                        progress(done, target, _best_text(study, space), feas / max(done, 1))
            except BaseException:
                ex.cancel()
                raise
            confirmed = _confirm(study, space, ex, names)
        result = _collect(study, space, store, ex, confirmed, time.perf_counter() - t0, importances)
    return result


def _best_text(study: Any, space: DesignSpace) -> str:
    from microbat.design.objectives import OBJECTIVES

    rows = _feasible_rows(study, list(space.objectives))
    if not rows:
        return "no feasible design yet"
    names = list(space.objectives)
    if len(names) == 1:
        o = OBJECTIVES[names[0]]
        vals = [r["objectives"][names[0]] for r in rows]
        best = max(vals) if o.direction == "maximize" else min(vals)
        return f"best {names[0]} {best:.4g} {o.unit}".rstrip()
    front = pareto_front(
        np.array([[r["objectives"][n] for n in names] for r in rows]),
        [OBJECTIVES[n].direction for n in names],
    )
    return f"Pareto front of {len(front)}"


def _feasible_rows(study: Any, names: Sequence[str]) -> list[dict[str, Any]]:
    from optuna.trial import TrialState

    out = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        ua = _attrs(t)
        if ua.get("status") != "ok":
            continue
        out.append(
            {
                "number": t.number,
                "params": dict(t.params),
                "objectives": dict(zip(names, t.values, strict=True)),
                "seed": ua.get("seed"),
                "metrics": ua.get("metrics", {}),
            }
        )
    return out


def _pareto_rows(study: Any, space: DesignSpace) -> list[dict[str, Any]]:
    from microbat.design.objectives import OBJECTIVES

    rows = _feasible_rows(study, list(space.objectives))
    if not rows:
        return []
    names = list(space.objectives)
    vals = np.array([[r["objectives"][n] for n in names] for r in rows])
    idx = pareto_front(vals, [OBJECTIVES[n].direction for n in names])
    front = [rows[i] for i in idx]
    first = names[0]
    rev = OBJECTIVES[first].direction == "maximize"
    front.sort(key=lambda r: (r["objectives"][first], -r["number"]), reverse=rev)
    return front


def _confirm(study: Any, space: DesignSpace, ex: Any, names: list[str]) -> list[dict[str, Any]]:
    fid = space.evaluation.confirm_fidelity
    if fid == "none":
        return []
    front = _pareto_rows(study, space)[: space.evaluation.confirm_top]
    for r in front:
        ex.submit(r["number"], _searched(r["params"], space), r["seed"], fid)
    got: dict[int, Any] = {}
    while ex.pending():
        number, outcome, lost = ex.next_done()
        got[number] = (outcome, lost)
    out = []
    for r in front:
        outcome, lost = got[r["number"]]
        out.append(
            {
                "number": r["number"],
                "params": r["params"],
                "screen_fidelity": space.evaluation.fidelity,
                "confirm_fidelity": fid,
                "screen": r["objectives"],
                "confirm": None if outcome is None else outcome.objectives,
                "status": "failed" if outcome is None else outcome.status,
                "error": lost if outcome is None else outcome.error,
            }
        )
    return out


def _searched(params: Mapping[str, Any], space: DesignSpace) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k in space.searched}


def _binding(table: list[dict[str, Any]]) -> str | None:
    if any(r["feasible"] for r in table):
        return None
    counts: dict[str, int] = {}
    evaluated = [r for r in table if r["state"] in ("COMPLETE", "FAIL")]
    for r in evaluated:
        for k in r["violated"]:
            counts[k] = counts.get(k, 0) + 1
    if not counts:
        return None
    k = max(counts, key=lambda c: (counts[c], c))
    return (
        f"no feasible design found in {len(evaluated)} trials; binding constraint: {k} "
        f"(violated by {counts[k]} of {len(evaluated)})"
    )


def _importances(study: Any, space: DesignSpace) -> dict[str, dict[str, float]]:
    import optuna

    rows = _feasible_rows(study, list(space.objectives))
    if len(rows) < 4 or not space.searched:
        return {}
    out: dict[str, dict[str, float]] = {}
    for i, name in enumerate(space.objectives):
        try:
            imp = optuna.importance.get_param_importances(
                study,
                evaluator=optuna.importance.FanovaImportanceEvaluator(seed=space.seed),
                target=lambda t, i=i: t.values[i],
            )
        except (RuntimeError, ValueError) as exc:
            log.info("importances of %s not computed: %s", name, exc)
            continue
        out[name] = {k: float(v) for k, v in imp.items()}
    return out


def _collect(
    study: Any,
    space: DesignSpace,
    store: str | None,
    ex: Any,
    confirmed: list[dict[str, Any]],
    wall: float,
    importances: bool,
) -> StudyResult:
    from optuna.trial import TrialState

    names = list(space.objectives)
    table = []
    for t in study.get_trials(deepcopy=False):
        ua = _attrs(t)
        g = dict(
            zip(
                ua.get("constraint_names", []),
                t.user_attrs.get("constraint_values", []),
                strict=False,
            )
        )
        table.append(
            {
                "number": t.number,
                "state": t.state.name,
                "params": dict(t.params),
                "objectives": (
                    dict(zip(names, t.values, strict=True))
                    if t.state == TrialState.COMPLETE
                    else None
                ),
                "constraints": g,
                "feasible": t.state == TrialState.COMPLETE and ua.get("status") == "ok",
                "violated": ua.get("violated", []),
                "status": ua.get("status", "running" if t.state == TrialState.RUNNING else ""),
                "error": ua.get("error"),
                "seed": ua.get("seed"),
                "wall_time_s": ua.get("wall_time_s"),
                "metrics": ua.get("metrics", {}),
            }
        )
    n_c = sum(r["state"] == "COMPLETE" for r in table)
    return StudyResult(
        name=space.name,
        storage=store,
        trials=len(table),
        complete=n_c,
        feasible=sum(r["feasible"] for r in table),
        failed=sum(r["state"] == "FAIL" for r in table),
        running=sum(r["state"] == "RUNNING" for r in table),
        directions=space.directions,
        pareto=_pareto_rows(study, space),
        trial_table=table,
        importances=_importances(study, space) if importances else {},
        binding=_binding(table),
        confirmed=confirmed,
        sampler=_sampler_name(space),
        workers=ex.workers,
        scheduler=ex.scheduler,
        wall_time_s=wall,
        provenance=Provenance(
            "microbat.design.run_study",
            parameters={"space": space.model_dump(mode="json")},
            seed=space.seed,
            wall_time_s=wall,
        ),
    )
