r"""Lithium plated per particle in one resolved charge: the plating input of the aging loop.

:func:`resolved_plating` charges the image (or a lateral crop of it with the whole
thickness) once with the microstructure-resolved model and its lithium-plating side
reaction (:func:`microbat.cell.resolved.simulate_charge` with
``ResolvedOptions(plating=...)``: Butler–Volmer deposition at ``η_pl = φ_s − φ_e``
against Li/Li⁺, O'Kane et al. 2020, 2022), reads the plated lithium of every active
voxel from the ``plated_Li`` field the model hands to ``on_fields`` after its last
step, and sums it over the aging loop's particles
(:func:`microbat.degradation.particles.label_particles` of the whole image).

What is lost per charge
-----------------------
* ``"irreversible"``: everything plated (plated + dead) is lost.
* ``"partially_reversible"``: only the dead lithium is lost; the live plated lithium
  left at the end of the charge is assumed to strip back in the following
  discharge (O'Kane et al. 2022: plated lithium strips first on discharge). The
  field carries plated + dead per voxel; the dead part is rebuilt per voxel from it
  with the model's own backward-Euler decay, ``pl_n = (tot_n − dead_{n−1})/(1 + γ Δt_n)``,
  ``dead_n = dead_{n−1} + γ Δt_n pl_n``, exact for the sequence of accepted steps
  (tested against the run's total dead lithium). Not counted: the decay of the
  live lithium into dead lithium during the discharge (``γ`` × the time until it
  strips; with O'Kane's ``γ`` = 1e-6/s and a stripping time of minutes, ≲ 0.1 %
  of the live amount).

Crop
----
Where a crop was charged, faces of the full image whose active voxel lies outside it
get the plated lithium per unit face area of their layer along the thickness in the
charged box (plating is set by the depth: the electrolyte potential drop towards
the collector); inside the box the measured amount is kept. Without a crop (or when
every particle lies inside it) the hand-over is exact: the per-particle amounts add
up to the run's plated lithium less what lies on active voxels outside any particle
(crumbs), reported as ``unlabelled_mol``.

References
----------
.. [1] S. E. J. O'Kane, I. D. Campbell, M. W. J. Marzook, G. J. Offer, M. Marinescu,
   "Physical origin of the differential voltage minimum associated with lithium
   plating in Li-ion batteries", J. Electrochem. Soc. 167, 090540 (2020),
   doi:10.1149/1945-7111/ab90ac.
.. [2] S. E. J. O'Kane et al., "Lithium-ion battery degradation: how to model it",
   Phys. Chem. Chem. Phys. 24, 7909 (2022), doi:10.1039/D2CP00417H.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from microbat.core.errors import FileFormatError, InvalidInputError
from microbat.core.microstructure import Microstructure
from microbat.core.results import to_jsonable
from microbat.degradation.particles import Particles

__all__ = [
    "PLATING_MODES",
    "ResolvedPlating",
    "check_plating_material",
    "labels_hash",
    "resolved_plating",
]

#: Plating modes of the resolved model that lose lithium per charge.
PLATING_MODES: tuple[str, ...] = ("irreversible", "partially_reversible")

#: Active materials of a negative electrode, on which lithium can plate.
_NEGATIVE_MATERIALS = ("graphite",)


def check_plating_material(material: str, electrode: str = "negative") -> None:
    """Refuse lithium plating on a positive electrode or a positive-electrode material.

    Raises
    ------
    InvalidInputError
        ``electrode`` is not ``"negative"`` or ``material`` is not a negative-electrode
        material (graphite).
    """
    if electrode != "negative":
        raise InvalidInputError(
            f"lithium plating needs the negative electrode, got electrode={electrode!r}: "
            "lithium plates on graphite near 0 V vs Li/Li+, never on a positive electrode"
        )
    if str(material).lower() not in _NEGATIVE_MATERIALS:
        raise InvalidInputError(
            f"lithium plating needs a negative-electrode material ({', '.join(_NEGATIVE_MATERIALS)}"
            f"), got {material!r}: a positive electrode does not plate lithium"
        )


@dataclass(frozen=True)
class ResolvedPlating:
    """Lithium lost to plating per particle in one resolved charge.

    Attributes
    ----------
    lost_mol : ndarray (n,)
        Lithium lost per charge by particle ``k`` at index ``k − 1`` (mol): plated +
        dead (``irreversible``) or dead (``partially_reversible``); extrapolated by
        layer outside a crop.
    measured_mol : ndarray (n,)
        The part of ``lost_mol`` on voxels of the charged box.
    mode : str
        ``"irreversible"`` or ``"partially_reversible"``.
    c_rate : float
        Charge rate of the run (1/h of the parameter set's electrode capacity).
    run_plated_mol, run_dead_mol : float
        The run's plated + dead and dead lithium at its end (whole charged box).
    run_lost_mol : float
        What the run lost by ``mode`` (``run_plated_mol`` or the rebuilt dead lithium).
    unlabelled_mol : float
        Lost lithium in the box on active voxels of no particle (dropped, as the aging
        geometry drops those crumbs).
    crop : list of [start, stop] or None
        The charged box per axis (None: the whole image).
    charge : dict
        The run: parameter set, electrode, status, completeness, steps, end time,
        current, wall time.
    labels_sha256 : str
        Hash of the particle labels the amounts belong to.
    """

    lost_mol: np.ndarray
    measured_mol: np.ndarray
    mode: str
    c_rate: float
    run_plated_mol: float
    run_dead_mol: float
    run_lost_mol: float
    unlabelled_mol: float
    crop: list[list[int]] | None
    charge: dict[str, Any] = field(default_factory=dict)
    labels_sha256: str = ""

    def key(self) -> dict[str, Any]:
        """What makes two hand-overs the same problem (for reuse on resume)."""
        return {
            "mode": self.mode,
            "c_rate": self.c_rate,
            "crop": self.crop,
            "parameter_set": self.charge.get("parameter_set"),
            "labels_sha256": self.labels_sha256,
        }

    def save(self, path: str | Path) -> Path:
        """Write the hand-over to an ``.npz`` file (atomically)."""
        from microbat.core.atomic import atomic_path

        p = Path(path)
        meta = {k: v for k, v in self.to_dict().items() if k != "particles"}
        meta["labels_sha256"] = self.labels_sha256
        with atomic_path(p) as tmp, open(tmp, "wb") as fh:
            np.savez(
                fh, lost_mol=self.lost_mol, measured_mol=self.measured_mol,
                meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
            )  # fmt: skip
        return p

    @classmethod
    def load(cls, path: str | Path) -> ResolvedPlating:
        """Read a hand-over written by :meth:`save`."""
        try:
            with np.load(Path(path), allow_pickle=False) as z:
                meta = json.loads(bytes(z["meta"]).decode())
                lost, measured = np.array(z["lost_mol"]), np.array(z["measured_mol"])
            return cls(
                lost_mol=lost, measured_mol=measured, mode=meta["mode"],
                c_rate=float(meta["c_rate"]), run_plated_mol=float(meta["run_plated_mol"]),
                run_dead_mol=float(meta["run_dead_mol"]),
                run_lost_mol=float(meta["run_lost_mol"]),
                unlabelled_mol=float(meta["unlabelled_mol"]), crop=meta["crop"],
                charge=dict(meta["charge"]), labels_sha256=str(meta["labels_sha256"]),
            )  # fmt: skip
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise FileFormatError(f"{path}: not a readable plating hand-over ({exc})") from None

    @property
    def n(self) -> int:
        """Number of particles."""
        return int(self.lost_mol.size)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (totals, not the per-particle arrays)."""
        return to_jsonable(
            {
                "mode": self.mode,
                "c_rate": self.c_rate,
                "lost_per_charge_mol": float(self.lost_mol.sum()),
                "measured_per_charge_mol": float(self.measured_mol.sum()),
                "run_plated_mol": self.run_plated_mol,
                "run_dead_mol": self.run_dead_mol,
                "run_lost_mol": self.run_lost_mol,
                "unlabelled_mol": self.unlabelled_mol,
                "crop": self.crop,
                "particles": self.n,
                "charge": self.charge,
            }
        )


class _Recorder:
    """``on_fields`` hook: the last plated field, and the dead lithium per voxel."""

    def __init__(self, decay_per_s: float | None) -> None:
        self.decay = decay_per_s
        self.t_prev = 0.0  # a fresh charge starts at t = 0
        self.total: np.ndarray | None = None
        self.dead: np.ndarray | None = None
        self.calls = 0

    def __call__(self, time_s: float, fields: Mapping[str, np.ndarray]) -> None:
        tot = np.nan_to_num(np.asarray(fields["plated_Li"], float))
        if self.decay is not None:
            g = self.decay * (float(time_s) - self.t_prev)
            dead0 = self.dead if self.dead is not None else np.zeros_like(tot)
            live = (tot - dead0) / (1.0 + g)
            self.dead = dead0 + g * live
        self.total = tot
        self.t_prev = float(time_s)
        self.calls += 1


def resolved_plating(
    ms: Microstructure,
    particles: Particles,
    *,
    c_rate: float,
    params: Any = "chen2020",
    electrode: str = "negative",
    mode: str = "irreversible",
    crop: Sequence[slice] | None = None,
    options: Any = None,
    on_step: Callable[[Any], None] | None = None,
) -> ResolvedPlating:
    """Lithium lost to plating per particle in one resolved charge at ``c_rate``.

    Parameters
    ----------
    ms : Microstructure
        The aging loop's image (the negative electrode of ``params``), collector at
        index 0 of the thickness axis.
    particles : Particles
        Its labelled particles (the aging loop's).
    c_rate : float
        Charge rate (positive), the aging cycle's.
    params : str, CellParameters or ResolvedParameters, default "chen2020"
        Parameter set of the resolved model.
    electrode : {"negative"}
        Which electrode of the set the image is (plating needs the negative one).
    mode : {"irreversible", "partially_reversible"}
        Plating reaction of the resolved model (see the module notes for what is lost).
    crop : sequence of slice or None, optional
        Box to charge (e.g. a lateral crop with the whole thickness from the twin's
        plating stage); default the whole image.
    options : ResolvedOptions, optional
        Further options of the resolved model (its ``plating`` is set to ``mode``).
    on_step : callable, optional
        Progress of the charge.

    Returns
    -------
    ResolvedPlating

    Raises
    ------
    InvalidInputError
        A positive electrode, an unknown mode, particles of another image, a crop
        that does not keep the whole thickness; the charge's own refusals.

    Notes
    -----
    Cost: one resolved charge of the box (``benchmarks/bench_aging.py --plating``)
    plus O(voxels) bookkeeping.
    """
    from microbat.cell.resolved import ResolvedOptions, simulate_charge
    from microbat.degradation.plating import plating_faces

    check_plating_material("graphite", electrode)
    if mode not in PLATING_MODES:
        raise InvalidInputError(
            f"plating mode {mode!r} loses no lithium per charge or is unknown; use "
            + " or ".join(PLATING_MODES)
        )
    if not (isinstance(c_rate, int | float) and math.isfinite(c_rate) and c_rate > 0):
        raise InvalidInputError(f"c_rate = {c_rate!r}; give a positive C-rate")
    if tuple(particles.labels.shape) != tuple(ms.shape):
        raise InvalidInputError("the particles were labelled on another image shape")
    t_ax = ms.thickness_axis
    box: tuple[slice, ...] | None = None
    if crop is not None:
        if len(crop) != ms.ndim:
            raise InvalidInputError(f"the plating crop needs {ms.ndim} slices, got {len(crop)}")
        box = tuple(
            slice(*(s if s is not None else slice(None)).indices(n)[:2])
            for s, n in zip(crop, ms.shape, strict=True)
        )
        if box[t_ax].stop - box[t_ax].start != ms.shape[t_ax]:
            raise InvalidInputError("the plating crop must keep the whole thickness")
        if all(b.stop - b.start == n for b, n in zip(box, ms.shape, strict=True)):
            box = None
    ms_c = ms.crop(*box) if box is not None else ms
    opt = options if options is not None else ResolvedOptions()
    opt = dataclasses.replace(opt, plating=mode)
    rec = _Recorder(opt.dead_lithium_decay_per_s if mode == "partially_reversible" else None)
    t0 = time.perf_counter()
    run = simulate_charge(
        ms_c, params, c_rate=float(c_rate), electrode=electrode, options=opt,
        snapshot_times=[], on_fields=rec, on_step=on_step,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    if rec.total is None:
        raise InvalidInputError("the resolved charge took no step: no plated lithium to hand over")
    vox = float(np.prod(ms.voxel_size))
    per_voxel = (rec.dead if rec.dead is not None else rec.total) * vox  # mol per voxel
    n1 = particles.n + 1
    lab_c = particles.labels[box] if box is not None else particles.labels
    measured = np.bincount(lab_c.reshape(-1), per_voxel.reshape(-1), n1)
    lost = measured[1:].copy()
    if box is not None:
        # the plated lithium per face area of each layer in the box, on the faces of
        # the full image whose active voxel lies outside it
        fc = plating_faces(ms_c)
        n_t = ms.shape[t_ax]
        area_l = np.bincount(fc.layer, fc.area_m2, n_t)
        flat = per_voxel.reshape(-1)
        # every voxel's amount over its faces, in proportion to their areas
        v_area = np.bincount(fc.active, fc.area_m2, flat.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            face_share = np.where(
                v_area[fc.active] > 0, flat[fc.active] * fc.area_m2 / v_area[fc.active], 0.0
            )
        lost_l = np.bincount(fc.layer, face_share, n_t)
        with np.errstate(invalid="ignore", divide="ignore"):
            q = np.where(area_l > 0, lost_l / area_l, 0.0)  # mol/m² per layer
        ff = plating_faces(ms)
        idx = np.unravel_index(ff.active, ms.shape)
        inside = np.ones(ff.active.size, bool)
        for ax, b in enumerate(box):
            inside &= (idx[ax] >= b.start) & (idx[ax] < b.stop)
        out = ~inside
        lab_f = particles.labels.reshape(-1)[ff.active[out]]
        lost += np.bincount(lab_f, q[ff.layer[out]] * ff.area_m2[out], n1)[1:]
    run_lost = float(per_voxel.sum())
    charge = {
        "parameter_set": params if isinstance(params, str) else getattr(params, "name", "custom"),
        "electrode": electrode,
        "status": str(getattr(run, "status", "")),
        "complete": bool(getattr(run, "complete", True)),
        "steps": int(getattr(run, "steps", rec.calls)),
        "end_time_s": float(run.time_s[-1]) if len(run.time_s) else math.nan,
        "current_A": float(getattr(run, "current_A", math.nan)),
        "initial_stoichiometry": float(getattr(run, "initial_stoichiometry", math.nan)),
        "shape": list(ms_c.shape),
        "wall_s": wall,
    }
    return ResolvedPlating(
        lost_mol=lost,
        measured_mol=measured[1:],
        mode=mode,
        c_rate=float(c_rate),
        run_plated_mol=float(run.plated_Li_mol[-1]),
        run_dead_mol=float(run.dead_Li_mol[-1]),
        run_lost_mol=run_lost,
        unlabelled_mol=float(measured[0]),
        crop=[[b.start, b.stop] for b in box] if box is not None else None,
        charge=charge,
        labels_sha256=labels_hash(particles),
    )


def labels_hash(particles: Particles) -> str:
    """SHA-256 of the particle labels (shape and values)."""
    lab = np.ascontiguousarray(particles.labels)
    h = hashlib.sha256(f"{lab.shape}|{lab.dtype.str}".encode())
    h.update(memoryview(lab.reshape(-1).view(np.uint8)))
    return h.hexdigest()
