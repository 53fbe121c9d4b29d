"""The resumable record of a resolved discharge (internal).

:class:`RunRecord` (with its :class:`Cursor` and :class:`SnapshotData`) is what
:mod:`._stepping` advances and :mod:`._checkpoint` writes and reads back; it lives
below both so that neither imports the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from microbat.cell.resolved._model import HalfCell, State, initial_state, rest_guess

__all__ = ["Cursor", "RunRecord", "SnapshotData"]

_TIMING_KEYS = (
    "assembly_s",
    "solve_s",
    "newton_iterations",
    "linear_solves",
    "factorizations",
    "gmres_iterations",
    "amg_setups",
    "amg_setup_s",
)


@dataclass
class SnapshotData:
    """Fields at one time plus the losses outside the image (W)."""

    time_s: float
    fields: dict[str, np.ndarray]
    outside_W: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Cursor:
    """The current accepted step of a run (replaced as a whole, never mutated)."""

    state: State
    prev: State | None
    guess: State
    dt: float
    steps: int
    next_snapshot: int
    n_snapshots: int
    end: str | None = None  # why the run ended at this step (None: it goes on)
    phase: str = "cc"  # "cc" constant current, "cv" constant voltage (a charge's hold)


@dataclass
class RunRecord:
    """The resumable record of a discharge (see :mod:`._stepping`).

    ``history`` holds ``steps + 1`` entries per key (the rest state first), ``losses``
    one breakdown per step, ``snapshots`` the fields kept so far (not the end state).
    """

    cursor: Cursor
    history: dict[str, list[float]] = field(default_factory=dict)
    losses: list[dict[str, float]] = field(default_factory=list)
    snapshots: list[SnapshotData] = field(default_factory=list)
    status: str = "running"
    complete: bool = False
    finished: bool = False
    timing: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0
    checkpoints_written: int = 0
    resumed_at_step: int | None = None

    @classmethod
    def start(cls, cell: HalfCell, dt: float, *, I_guess: float | None = None) -> RunRecord:
        """The record of a run at rest.

        ``I_guess``: Newton's first guess for the first step carries this current
        (:func:`~._model.rest_guess`) instead of being the rest state.
        """
        s = initial_state(cell)
        guess = s if I_guess is None else rest_guess(cell, s, I_guess)
        rec = cls(Cursor(s, None, guess, dt, 0, 0, 0))
        rec.history = {
            "time_s": [s.t],
            "voltage_V": [s.V],
            "li_error": [0.0],
            "charge_error": [0.0],
            "newton": [0],
            "current_A": [0.0],
            "hold_V": [float("nan")],
            "plated_mol": [0.0],
            "dead_mol": [0.0],
        }
        rec.timing = dict.fromkeys(_TIMING_KEYS, 0.0)
        return rec

    @property
    def state(self) -> State:
        return self.cursor.state

    @property
    def steps(self) -> int:
        return self.cursor.steps

    def truncate(self) -> None:
        """Drop entries beyond the cursor (after an interrupted commit)."""
        n = self.cursor.steps
        for v in self.history.values():
            del v[n + 1 :]
        del self.losses[n:]
        del self.snapshots[self.cursor.n_snapshots :]
