"""Checkpoints of a resolved discharge: write atomically, read back, refuse a mismatch.

A checkpoint is one ``.npz`` file (NumPy's zip of arrays, read without pickle) written
through :func:`microbat.core.atomic.atomic_path`, so a crash or Ctrl-C while writing
leaves the previous checkpoint intact. The field snapshots are written once each, to
their own files in a folder beside it (``<name>_snapshots/``), and the checkpoint
lists them: a checkpoint costs the state and the history, not every snapshot again
(at 128³ a snapshot is ~300 MB). Each snapshot file carries the run's fingerprint,
its index and time, checked on reading. It holds everything the time stepping needs to
continue exactly where it stopped (see :class:`~._record.RunRecord`): the accepted
state, the state before it, Newton's first guess for the next step, the step size, the
curve and loss breakdown so far, the conservation history, the snapshots taken, the
timing, and a fingerprint of the problem (image labels, parameters, options, C-rate,
cut-off, snapshot times). :func:`read_checkpoint` refuses a checkpoint of a different
problem and says which part differs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from microbat._version import __version__
from microbat.cell.resolved._model import State
from microbat.cell.resolved._record import Cursor, RunRecord, SnapshotData
from microbat.core.errors import FileFormatError, InvalidInputError

if TYPE_CHECKING:
    from microbat.cell.resolved._model import ResolvedOptions
    from microbat.cell.resolved._params import ResolvedParameters
    from microbat.core.microstructure import Microstructure

CHECKPOINT_VERSION = 2  # 2: snapshots in their own files (1: inside)
CHECKPOINT_NAME = "checkpoint.npz"
#: Options that steer the run but not the discretised problem: a checkpoint may be
#: resumed with other values (e.g. a larger ``max_steps`` to continue a long run).
#: The solver choices converge to the same states (to the Newton tolerance); the
#: depletion floor, like ``end_time_s``, only decides where the run stops.
RUN_CONTROL_OPTIONS = (
    "max_steps",
    "end_time_s",
    "electrolyte_depletion_limit",
    "linear_solver",
    "krylov_rtol",
    "amg_threshold",
    "jacobian_reuse",
)
_STATE_KEYS = ("ce", "pe", "ps", "cs")
_HISTORY_KEYS = ("time_s", "voltage_V", "li_error", "charge_error", "newton")
_OPTIONAL_HISTORY = ("current_A", "hold_V", "plated_mol", "dead_mol")
_OPTIONAL_STATE = ("pl", "dead")  # plated and dead lithium per face (plating runs)


def checkpoint_file(path: str | Path) -> Path:
    """The checkpoint file for ``path``: itself if it ends in ``.npz``, else a file in it.

    Parameters
    ----------
    path : path-like
        A ``.npz`` file, or a folder (created when written) that holds
        ``checkpoint.npz``.

    Returns
    -------
    Path
    """
    p = Path(path)
    return p if p.suffix == ".npz" else p / CHECKPOINT_NAME


def _digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()[:32]


def problem_fingerprint(
    ms: Microstructure,
    par: ResolvedParameters,
    opt: ResolvedOptions,
    *,
    c_rate: float,
    cutoff: float,
    electrode: str,
    snapshot_times: list[float],
    protocol: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Hashes of everything that defines a discharge, one per part.

    Parameters
    ----------
    ms, par, opt
        Microstructure, resolved parameters and options of the run.
    c_rate, cutoff, electrode, snapshot_times
        The remaining inputs of :func:`~microbat.cell.resolved.simulate_discharge`.
    protocol : dict, optional
        A charge's protocol (direction, CV hold, end stoichiometry), part of ``run``.

    Returns
    -------
    dict of str to str
        ``image``, ``parameters``, ``options``, ``run`` (C-rate, cut-off, electrode,
        snapshot times) and ``all`` (of the four). The parameter functions are
        fingerprinted by their values on fixed sample points, so two sets with the
        same name but different data differ.
    """
    labels = np.ascontiguousarray(ms.labels)
    image = _digest(
        labels.tobytes(),
        str(labels.dtype),
        repr(tuple(ms.shape)),
        repr(tuple(float(v) for v in ms.voxel_size)),
        repr(int(ms.thickness_axis)),
        json.dumps(ms.phases.to_list(), sort_keys=True, default=str),
    )
    th = np.linspace(0.02, 0.98, 25)
    ce = np.linspace(200.0, 2500.0, 12)
    T = par.temperature
    samples = [
        par.ocp(th),
        par.solid_diffusivity(th, T),
        par.exchange_current(np.full_like(th, par.c_e0), th * par.c_max, par.c_max, T),
        par.electrolyte_conductivity(ce, T),
        par.electrolyte_diffusivity(ce, T),
    ]
    scalars = {
        f.name: getattr(par, f.name)
        for f in dataclasses.fields(par)
        if isinstance(getattr(par, f.name), int | float | str)
    }
    parameters = _digest(
        json.dumps(scalars, sort_keys=True),
        *(np.ascontiguousarray(s, dtype=float).tobytes() for s in samples),
    )
    opts = {k: v for k, v in dataclasses.asdict(opt).items() if k not in RUN_CONTROL_OPTIONS}
    options = _digest(json.dumps(opts, sort_keys=True, default=repr))
    run_inputs: dict[str, Any] = {
        "c_rate": float(c_rate),
        "cutoff_V": float(cutoff),
        "electrode": electrode,
        "snapshot_times": [float(t) for t in snapshot_times],
    }
    if protocol is not None:
        run_inputs["protocol"] = protocol
    run = _digest(json.dumps(run_inputs, sort_keys=True))
    out = {"image": image, "parameters": parameters, "options": options, "run": run}
    out["all"] = _digest(*(out[k] for k in ("image", "parameters", "options", "run")))
    return out


_PART_TEXT = {
    "image": "the image (labels, voxel size, phases or thickness axis)",
    "parameters": "the parameter set",
    "options": "the model/solver options",
    "run": "the C-rate, cut-off voltage, electrode, snapshot times or charge protocol",
}


def snapshot_folder(path: Path) -> Path:
    """The folder of the snapshot files of the checkpoint ``path``."""
    return path.parent / f"{path.stem}_snapshots"


def write_snapshot(path: Path, snap: Any, fingerprint: dict[str, str], index: int) -> None:
    """Write one snapshot to its own file atomically (its fields and a meta record)."""
    from microbat.core.atomic import atomic_path

    arrays = {f"field_{n}": np.asarray(v) for n, v in snap.fields.items()}
    meta = {
        "fingerprint": fingerprint["all"],
        "index": index,
        "time_s": snap.time_s,
        "fields": list(snap.fields),
        "outside_W": snap.outside_W,
    }
    arrays["meta"] = np.array(json.dumps(meta, allow_nan=True))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def _read_snapshot(path: Path, fingerprint: dict[str, str], index: int, time_s: float) -> Any:
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        meta = json.loads(str(data.pop("meta")))
        fields = {n: data[f"field_{n}"] for n in meta["fields"]}
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise FileFormatError(
            f"{path}: snapshot {index} of the checkpoint is missing or unreadable ({exc})"
        ) from None
    if (
        meta.get("fingerprint") != fingerprint["all"]
        or meta.get("index") != index
        or float(meta.get("time_s", np.nan)) != time_s
    ):
        raise FileFormatError(
            f"{path} is not snapshot {index} (t = {time_s:g} s) of this checkpoint's run"
        )
    return SnapshotData(time_s, fields, {k: float(v) for k, v in meta["outside_W"].items()})


def write_checkpoint(
    path: Path,
    rec: RunRecord,
    fingerprint: dict[str, str],
    snapshot_files: list[str] | None = None,
) -> Path:
    """Write ``rec`` to ``path`` atomically (see the module docstring).

    ``snapshot_files``: the names, in :func:`snapshot_folder`, of the files holding
    ``rec.snapshots`` (written by :func:`write_snapshot`); without it the snapshots
    are stored inside the checkpoint.
    """
    from microbat.core.atomic import atomic_path

    arrays: dict[str, np.ndarray] = {}
    states: dict[str, Any] = {}
    cur = rec.cursor
    for name in ("state", "prev", "guess"):
        st = getattr(cur, name)
        if st is None:
            states[name] = None
            continue
        states[name] = {"t": st.t, "V": st.V}
        for k in _STATE_KEYS:
            arrays[f"{name}_{k}"] = getattr(st, k)
        for k in _OPTIONAL_STATE:
            if getattr(st, k) is not None:
                arrays[f"{name}_{k}"] = getattr(st, k)
    hist = rec.history
    for k in (*_HISTORY_KEYS, *_OPTIONAL_HISTORY):
        if k in hist:
            arrays[f"history_{k}"] = np.asarray(hist[k], dtype=float)
    loss_keys = list(rec.losses[0]) if rec.losses else []
    arrays["history_losses"] = np.array(
        [[s[k] for k in loss_keys] for s in rec.losses], dtype=float
    ).reshape(len(rec.losses), len(loss_keys))
    snaps = []
    if snapshot_files is not None and len(snapshot_files) != len(rec.snapshots):
        raise ValueError("one snapshot file per snapshot")
    for i, snap in enumerate(rec.snapshots):
        names = list(snap.fields)
        entry = {"time_s": snap.time_s, "fields": names, "outside_W": snap.outside_W}
        if snapshot_files is not None:
            entry["file"] = snapshot_files[i]
        else:
            for n in names:
                arrays[f"snapshot{i}_{n}"] = snap.fields[n]
        snaps.append(entry)
    meta = {
        "checkpoint_version": CHECKPOINT_VERSION,
        "microbat_version": __version__,
        "written_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "fingerprint": fingerprint,
        "states": states,
        "dt": cur.dt,
        "steps": cur.steps,
        "next_snapshot": cur.next_snapshot,
        "phase": cur.phase,
        "loss_keys": loss_keys,
        "snapshots": snaps,
        "status": rec.status,
        "complete": rec.complete,
        "finished": rec.finished,
        "timing": rec.timing,
        "wall_s": rec.wall_s,
        "checkpoints_written": rec.checkpoints_written,
    }
    arrays["meta"] = np.array(json.dumps(meta, allow_nan=True))
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    return path


def read_checkpoint(path: Path, fingerprint: dict[str, str]) -> RunRecord:
    """Read a checkpoint written by :func:`write_checkpoint` for the same problem.

    Raises
    ------
    FileFormatError
        Missing, unreadable or truncated file (or snapshot file), or a newer
        checkpoint version.
    InvalidInputError
        The checkpoint belongs to a different problem (the message says which part).
    """
    return _read(path, fingerprint)[0]


def _read(path: Path, fingerprint: dict[str, str]) -> tuple[RunRecord, list[str] | None]:
    """The record and the names of its snapshot files (None: stored inside)."""
    if not path.is_file():
        raise FileFormatError(
            f"no checkpoint at {path}; run without resume (--resume) to start from rest"
        )
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        meta = json.loads(str(data.pop("meta")))
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise FileFormatError(f"{path}: not a readable microbat checkpoint ({exc})") from None
    version = meta.get("checkpoint_version")
    if not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise FileFormatError(
            f"{path}: checkpoint version {version!r}; this microbat reads up to "
            f"{CHECKPOINT_VERSION} (written by microbat {meta.get('microbat_version')})"
        )
    theirs = meta.get("fingerprint", {})
    if theirs.get("all") != fingerprint["all"]:
        parts = [_PART_TEXT[k] for k in _PART_TEXT if theirs.get(k) != fingerprint[k]]
        raise InvalidInputError(
            f"{path} was written for a different problem: {', '.join(parts) or 'unknown'} "
            "differ(s) from this run; resume with the same inputs, or start a new run "
            "(without --resume, or with another --out folder)"
        )
    try:
        states: dict[str, State | None] = {}
        for name, s in meta["states"].items():
            states[name] = (
                None
                if s is None
                else State(
                    float(s["t"]),
                    *(np.array(data[f"{name}_{k}"], dtype=float) for k in _STATE_KEYS[:4]),
                    float(s["V"]),
                    *(
                        np.array(data[f"{name}_{k}"], dtype=float)
                        if f"{name}_{k}" in data
                        else None
                        for k in _OPTIONAL_STATE
                    ),
                )
            )
        history = {k: [float(v) for v in data[f"history_{k}"]] for k in _HISTORY_KEYS}
        for k in _OPTIONAL_HISTORY:  # written since the charge (CV) protocol
            if f"history_{k}" in data:
                history[k] = [float(v) for v in data[f"history_{k}"]]
        history["newton"] = [int(v) for v in history["newton"]]
        keys = meta["loss_keys"]
        losses = [
            {k: float(v) for k, v in zip(keys, row, strict=True)} for row in data["history_losses"]
        ]
        snaps = []
        files: list[str] | None = []
        for i, s in enumerate(meta["snapshots"]):
            if "file" in s:
                where = snapshot_folder(path) / s["file"]
                snaps.append(_read_snapshot(where, fingerprint, i, float(s["time_s"])))
                assert files is not None
                files.append(s["file"])
            else:
                files = None
                snaps.append(
                    SnapshotData(
                        float(s["time_s"]),
                        {n: data[f"snapshot{i}_{n}"] for n in s["fields"]},
                        {k: float(v) for k, v in s["outside_W"].items()},
                    )
                )
    except (KeyError, TypeError, ValueError) as exc:
        raise FileFormatError(f"{path}: the checkpoint is incomplete ({exc})") from None
    state = states["state"]
    guess = states["guess"]
    if state is None or guess is None:
        raise FileFormatError(f"{path}: the checkpoint holds no state")
    steps = int(meta["steps"])
    if len(losses) != steps or any(len(v) != steps + 1 for v in history.values()):
        raise FileFormatError(f"{path}: the checkpoint's history does not match its step count")
    rec = RunRecord(
        Cursor(
            state,
            states["prev"],
            guess,
            float(meta["dt"]),
            steps,
            int(meta["next_snapshot"]),
            len(snaps),
            str(meta["status"]) if meta["finished"] else None,
            str(meta.get("phase", "cc")),
        ),
        history=history,
        losses=losses,
        snapshots=snaps,
        status=str(meta["status"]),
        complete=bool(meta["complete"]),
        finished=bool(meta["finished"]),
        timing={k: float(v) for k, v in meta["timing"].items()},
        wall_s=float(meta["wall_s"]),
        checkpoints_written=int(meta["checkpoints_written"]),
        resumed_at_step=steps,
    )
    return rec, files


class Checkpointer:
    """Decides when to checkpoint and writes (internal).

    Parameters
    ----------
    path : Path
        The checkpoint file.
    fingerprint : dict
        From :func:`problem_fingerprint`.
    every_steps : int or None
        Write after every ``every_steps`` accepted steps (counted over the whole run).
    interval_s : float or None
        Write when this much wall time has passed since the last write.
    """

    def __init__(
        self,
        path: Path,
        fingerprint: dict[str, str],
        every_steps: int | None = None,
        interval_s: float | None = None,
    ) -> None:
        if every_steps is not None and every_steps < 1:
            raise InvalidInputError(f"checkpoint_every = {every_steps!r}; give at least 1 step")
        if interval_s is not None and not interval_s > 0:
            raise InvalidInputError(
                f"checkpoint_interval_s = {interval_s!r}; give a positive number of seconds"
            )
        self.path = path
        self.fingerprint = fingerprint
        self.every_steps = every_steps
        self.interval_s = interval_s
        self.last = time.perf_counter()
        self.seconds = 0.0
        self.snapshot_files: list[str] = []  # written so far, one per snapshot

    def read(self) -> RunRecord:
        """Read the checkpoint back (see :func:`read_checkpoint`) to resume from it."""
        rec, files = _read(self.path, self.fingerprint)
        # snapshots stored inside an older checkpoint are written out at the next write
        self.snapshot_files = list(files) if files is not None else []
        return rec

    def due(self, steps: int) -> bool:
        """Whether a checkpoint is due after ``steps`` accepted steps."""
        if self.every_steps is not None and steps % self.every_steps == 0:
            return True
        return self.interval_s is not None and time.perf_counter() - self.last >= self.interval_s

    def write(self, rec: RunRecord) -> None:
        """Write ``rec`` (its wall time and count updated first)."""
        t0 = time.perf_counter()
        rec.checkpoints_written += 1
        # snapshots are written once each; a record cut back after an interrupt
        # rewrites the ones past its cursor when they are taken again
        del self.snapshot_files[len(rec.snapshots) :]
        folder = snapshot_folder(self.path)
        for i in range(len(self.snapshot_files), len(rec.snapshots)):
            name = f"snapshot{i:04d}.npz"
            write_snapshot(folder / name, rec.snapshots[i], self.fingerprint, i)
            self.snapshot_files.append(name)
        write_checkpoint(self.path, rec, self.fingerprint, self.snapshot_files)
        self.last = time.perf_counter()
        self.seconds += self.last - t0
