"""Inverse design of electrode microstructures (issue 22).

* :mod:`microbat.design.space` — the design space (TOML, pydantic-validated):
  :class:`DesignSpace`, :func:`load_space`, the descriptors.
* :func:`generate_design` — descriptors → calendered electrode sample (seeded).
* :func:`evaluate_design` — one trial: sample, constraints, objectives at a fidelity
  (``bruggeman``, ``micro``, ``resolved``) → :class:`TrialOutcome`.
* :mod:`microbat.design.objectives`, :mod:`microbat.design.constraints` — what is
  optimised and what manufacturing allows.
* :func:`run_study` — the optuna study (NSGA-II / TPE, SQLite storage, resume) with
  trials on a Dask cluster → :class:`StudyResult`.
* :func:`accuracy_gained` — P2D with Bruggeman and with the micro-informed tensor
  against the resolved model on given designs (:mod:`microbat.design.accuracy`).

Names load lazily: ``import microbat.design`` does not import optuna, Dask or PyBaMM.
"""

from microbat.core.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    ("space", "evaluate", "objectives", "constraints", "study", "report", "accuracy"),
)

__all__ = [
    "DESCRIPTORS",
    "FIDELITIES",
    "OBJECTIVES",
    "AccuracyResult",
    "DesignSpace",
    "StudyResult",
    "TrialOutcome",
    "accuracy_gained",
    "evaluate_design",
    "example_space",
    "generate_design",
    "load_space",
    "run_study",
]
