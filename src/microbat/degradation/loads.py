r"""Lithium concentration fields that load the mechanics: resolved run, file, closed form.

Three sources, each returning a :class:`ConcentrationLoad` (mol/m³ on the image grid,
NaN outside the active phase):

* :func:`load_from_resolved` — a snapshot of the resolved discharge
  (:mod:`microbat.cell.resolved`): an in-memory ``ResolvedDischargeResult`` or a saved
  run (its folder, or its ``fields.h5``), at a snapshot index or the snapshot nearest
  a time. The stress-free state of a discharge is its initial concentration ``c₀``,
  which the snapshots do not store; it is recovered from lithium conservation,
  ``c₀ = c̄_s(t) − Q(t) / (F V_active)`` with ``Q(t)`` the discharged charge of the
  curve at the snapshot's time (exact up to the salt held by the electrolyte, whose
  total the half cell conserves).
* :func:`load_from_file` — a per-voxel ``.npy`` (or ``.npz``) array in mol/m³ or as
  stoichiometry ``c / c_max``.
* :func:`galvanostatic_load` — the closed form: every particle is its equivalent
  sphere (radius ``R`` of equal volume) lithiated (or delithiated) by the constant
  flux that moves the electrode's mean stoichiometry across the material's window in
  ``1/C`` hours, ``J = (R/3) c_max Δθ C / 3600 s`` (every particle at the
  electrode-average rate: the through-thickness gradient of the reaction is not
  modelled), evaluated at the end of the (dis)charge (``τ = D t_end / R²``, the
  largest diffusion-induced stress of a constant-current step, which grows
  monotonically in time) or in the quasi-steady state. The sphere's radial profile
  is mapped onto the particle's voxels by depth: a voxel at distance ``d`` below the
  active surface sits at ``x = 1 − (d − h/2) / R`` (clipped to [0, 1]); each
  particle's voxel mean is then set to the sphere's mean, so the lithium content is
  right for any shape. Active voxels in no particle (crumbs below the labelling's
  minimum size) take the mean concentration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from microbat.core.constants import FARADAY
from microbat.core.errors import FileFormatError, InvalidInputError
from microbat.core.microstructure import Microstructure
from microbat.degradation.parameters import MechanicalMaterial
from microbat.degradation.particles import Particles

__all__ = [
    "ConcentrationLoad",
    "galvanostatic_load",
    "load_from_file",
    "load_from_resolved",
    "particle_flux",
]

Direction = Literal["lithiation", "delithiation"]


@dataclass(frozen=True)
class ConcentrationLoad:
    """A lithium concentration field with its stress-free reference.

    Attributes
    ----------
    concentration : ndarray of float64
        mol/m³ on the image grid, NaN outside the active phase.
    initial : float or None
        The concentration of the stress-free initial state (mol/m³) when the source
        knows it (start of the discharge), else None.
    source : str
        ``"resolved"``, ``"file"`` or ``"galvanostatic"``.
    info : dict
        Source details (snapshot time and index, file, C-rate, τ, flux per particle
        summary, ...).
    """

    concentration: np.ndarray
    initial: float | None
    source: str
    info: dict[str, Any] = field(default_factory=dict)


def _check_field(c: np.ndarray, ms: Microstructure, what: str) -> np.ndarray:
    c = np.asarray(c)
    if c.shape != ms.shape:
        raise InvalidInputError(
            f"{what} has shape {c.shape} but the image is {ms.shape}; give one value per voxel "
            "in the image's axis order"
        )
    if not np.issubdtype(c.dtype, np.number) or np.iscomplexobj(c):
        raise InvalidInputError(f"{what} must hold real numbers, not {c.dtype}")
    active = ms.mask("active")
    vals = c[active]
    bad = ~np.isfinite(vals)
    if bad.any():
        raise InvalidInputError(
            f"{what} has {int(bad.sum())} NaN or infinite value(s) in the active phase "
            "(values outside the active phase are ignored)"
        )
    out = np.full(ms.shape, np.nan)
    out[active] = vals
    return out


def load_from_file(
    path: str | Path,
    ms: Microstructure,
    *,
    units: Literal["mol/m3", "stoichiometry"] = "mol/m3",
    max_concentration: float | None = None,
    dataset: str | None = None,
) -> ConcentrationLoad:
    """A per-voxel concentration from a ``.npy`` (or ``.npz``) file.

    Parameters
    ----------
    path : path-like
        The array file, shape = the image's shape.
    ms : Microstructure
        The image it belongs to.
    units : {"mol/m3", "stoichiometry"}
        What the values are: mol/m³, or ``c / c_max`` (then ``max_concentration`` is
        needed).
    max_concentration : float, optional
        ``c_max`` in mol/m³ for stoichiometry.
    dataset : str, optional
        Key inside an ``.npz`` (default: its only array).

    Returns
    -------
    ConcentrationLoad

    Raises
    ------
    FileFormatError
        Missing or unreadable file.
    InvalidInputError
        Wrong shape, NaN in the active phase, stoichiometry outside [0, 1] or without
        ``c_max``, negative concentrations, unknown units.
    """
    p = Path(path)
    if not p.is_file():
        raise FileFormatError(f"no concentration file at {p}")
    try:
        if p.suffix.lower() == ".npz":
            with np.load(p, allow_pickle=False) as z:
                keys = list(z.files)
                if dataset is None:
                    if len(keys) != 1:
                        raise InvalidInputError(f"{p} holds {keys}; name the array with dataset=")
                    dataset = keys[0]
                if dataset not in keys:
                    raise InvalidInputError(f"{p} has no array {dataset!r} (it has {keys})")
                arr = np.asarray(z[dataset])
        else:
            arr = np.load(p, allow_pickle=False, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise FileFormatError(f"{p}: not a readable NumPy array file ({exc})") from None
    c = _check_field(arr, ms, f"the concentration in {p.name}")
    vals = c[np.isfinite(c)]
    if units == "stoichiometry":
        if max_concentration is None:
            raise InvalidInputError(
                "a stoichiometry field needs the maximum concentration c_max of the active "
                "material (parameter file or a material that has it)"
            )
        if vals.min() < -1e-9 or vals.max() > 1 + 1e-9:
            raise InvalidInputError(
                f"stoichiometry must lie in [0, 1], the file has {vals.min():.4g} … "
                f"{vals.max():.4g}"
                " (use units mol/m3 for concentrations)"
            )
        c = c * float(max_concentration)
    elif units == "mol/m3":
        if vals.min() < 0:
            raise InvalidInputError(
                f"a concentration cannot be negative; the file has {vals.min():.4g} mol/m3"
            )
    else:
        raise InvalidInputError(f"units {units!r}: use 'mol/m3' or 'stoichiometry'")
    return ConcentrationLoad(c, None, "file", {"file": str(p), "units": units})


def _snapshot_of(snaps: list[tuple[float, Any]], snapshot: int | None, time_s: float | None):
    if not snaps:
        raise InvalidInputError("the resolved run holds no snapshot of the fields")
    if time_s is not None:
        k = int(np.argmin([abs(t - time_s) for t, _ in snaps]))
    else:
        k = -1 if snapshot is None else int(snapshot)
        if not -len(snaps) <= k < len(snaps):
            raise InvalidInputError(
                f"snapshot {snapshot} does not exist; the run has {len(snaps)} "
                f"(0 … {len(snaps) - 1})"
            )
        k %= len(snaps)
    return k, snaps[k]


def load_from_resolved(
    source: Any,
    ms: Microstructure,
    *,
    snapshot: int | None = None,
    time_s: float | None = None,
) -> ConcentrationLoad:
    """The solid concentration of a resolved discharge at one stored time.

    Parameters
    ----------
    source : ResolvedDischargeResult or path-like
        An in-memory result of :func:`microbat.cell.resolved.simulate_discharge`, or
        a saved run: the folder ``microbat simulate --out`` wrote, or its ``fields.h5``.
    ms : Microstructure
        The image the run was computed on.
    snapshot : int, optional
        Snapshot index (default: the last, the end of the discharge).
    time_s : float, optional
        Take the snapshot nearest this time instead.

    Returns
    -------
    ConcentrationLoad
        ``initial`` is the recovered initial concentration (see the module notes).

    Raises
    ------
    FileFormatError
        A path that is not a resolved run.
    InvalidInputError
        No snapshot, a bad index, or fields of another shape than the image.
    """
    if isinstance(source, str | Path):
        snaps, t_curve, q_curve, meta = _read_run(Path(source))
    else:
        if not hasattr(source, "snapshots"):
            raise InvalidInputError(
                f"cannot read a resolved discharge from {type(source).__name__}; pass the "
                "result of simulate_discharge or the folder of a saved run"
            )
        snaps = [(float(s.time_s), s.fields) for s in source.snapshots]
        t_curve = np.asarray(source.time_s, float)
        q_curve = np.asarray(source.discharged_Ah, float)
        meta = {"c_rate": float(source.c_rate), "partial": bool(source.partial)}
    k, (t, fields) = _snapshot_of(snaps, snapshot, time_s)
    if "c_s" not in fields:
        raise InvalidInputError(f"snapshot {k} has no solid concentration c_s")
    c_s = np.asarray(fields["c_s"], dtype=np.float64)
    c = _check_field(c_s, ms, f"c_s of snapshot {k}")
    n_act = int(np.isfinite(c).sum())
    initial = None
    if t_curve.size and n_act:
        q = float(np.interp(t, t_curve, q_curve)) * 3600.0
        initial = float(np.nanmean(c) - q / (FARADAY * n_act * ms.voxel_volume))
    info = {"snapshot": k, "time_s": t, "n_snapshots": len(snaps), **meta}
    return ConcentrationLoad(c, initial, "resolved", info)


def _read_run(path: Path) -> tuple[list[tuple[float, Any]], np.ndarray, np.ndarray, dict]:
    from microbat.core.errors import require

    f = path / "fields.h5" if path.is_dir() else path
    if not f.is_file():
        raise FileFormatError(
            f"no resolved run at {path}: expected the folder of 'microbat simulate --out' "
            "(with fields.h5) or the fields.h5 file"
        )
    h5py = require("h5py")
    try:
        with h5py.File(f, "r") as h:
            groups = sorted(k for k in h if k.startswith("t") and k[1:].isdigit())
            snaps = []
            for g in groups:
                grp = h[g]
                snaps.append(
                    (
                        float(grp.attrs["time_s"]),
                        {"c_s": np.asarray(grp["c_s"])} if "c_s" in grp else {},
                    )
                )
            t = np.asarray(h["curve/time_s"]) if "curve/time_s" in h else np.empty(0)
            q = np.asarray(h["curve/capacity_Ah"]) if "curve/capacity_Ah" in h else np.empty(0)
            meta = {
                "c_rate": float(h.attrs.get("c_rate", float("nan"))),
                "partial": bool(h.attrs.get("partial", False)),
                "file": str(f),
            }
    except (OSError, KeyError) as exc:
        raise FileFormatError(f"{f}: not a readable resolved-run field file ({exc})") from None
    return snaps, t, q, meta


def particle_flux(
    radius: np.ndarray, material: MechanicalMaterial, c_rate: float, direction: Direction
) -> np.ndarray:
    """Surface flux ``J`` (mol m⁻² s⁻¹, inward positive) of each equivalent sphere.

    ``J = ± (R / 3) c_max Δθ C / 3600``: the mean stoichiometry crosses the window
    ``Δθ`` in ``1/C`` hours; positive for lithiation.
    """
    material.require(
        "max_concentration_mol_per_m3",
        "stoichiometry_window",
        why="the closed-form (galvanostatic) load",
    )
    lo, hi = material.stoichiometry_window  # type: ignore[misc]
    rate = material.max_concentration_mol_per_m3 * (hi - lo) * float(c_rate) / 3600.0  # type: ignore[operator]
    sign = 1.0 if direction == "lithiation" else -1.0
    return sign * np.asarray(radius, float) / 3.0 * rate


def _deviation(x: np.ndarray, tau: np.ndarray, step: float = 0.02) -> np.ndarray:
    """``(c − c̄) D / (J R)`` at ``(x, τ)`` per voxel: bilinear in ``(x, ln τ)`` on a table.

    The table has 257 points in ``x`` and a node every ``step`` in ``ln τ`` over the
    range asked for (interpolation error ~``step²/8`` relative in ``τ``).
    """
    from microbat.degradation.sphere import constant_flux_concentration

    lt = np.log(np.maximum(tau, 1e-12))
    lo, hi = float(lt.min()), float(lt.max())
    nodes = lo + step * np.arange(math.ceil((hi - lo) / step) + 2)
    xg = np.linspace(0.0, 1.0, 257)
    table = np.stack(
        [constant_flux_concentration(xg, math.exp(g)) - 3 * math.exp(g) for g in nodes]
    )
    fg = (lt - lo) / step
    gi = np.clip(np.floor(fg).astype(np.int64), 0, nodes.size - 2)
    wg = np.clip(fg - gi, 0.0, 1.0)
    fx = x * 256.0
    xi = np.clip(np.floor(fx).astype(np.int64), 0, 255)
    wx = np.clip(fx - xi, 0.0, 1.0)
    return (1 - wg) * ((1 - wx) * table[gi, xi] + wx * table[gi, xi + 1]) + wg * (
        (1 - wx) * table[gi + 1, xi] + wx * table[gi + 1, xi + 1]
    )


def _check_rate(c_rate: float) -> float:
    c = float(c_rate)
    if not (math.isfinite(c) and c > 0):
        raise InvalidInputError(f"the C-rate must be positive, got {c_rate!r}")
    return c


def galvanostatic_load(
    particles: Particles,
    material: MechanicalMaterial,
    c_rate: float,
    *,
    direction: Direction = "lithiation",
    time: Literal["end", "steady"] | float = "end",
) -> ConcentrationLoad:
    """Closed-form concentration of each particle's equivalent sphere, mapped on its voxels.

    Parameters
    ----------
    particles : Particles
        From :func:`~microbat.degradation.particles.label_particles`.
    material : MechanicalMaterial
        The active material (needs ``c_max``, ``D_s`` and the stoichiometry window).
    c_rate : float
        Rate in 1/h (1C crosses the window in one hour).
    direction : {"lithiation", "delithiation"}
        Lithiation: discharge of a positive electrode (charge of a negative one).
    time : {"end", "steady"} or float
        When: the end of the full (dis)charge, the quasi-steady state, or a time in s.

    Returns
    -------
    ConcentrationLoad
        ``initial`` = the concentration at the start of the (dis)charge; ``info``
        holds the time, ``τ`` per particle (summary) and the flux.
    """
    c_rate = _check_rate(c_rate)
    material.require(
        "max_concentration_mol_per_m3",
        "diffusivity_m2_per_s",
        "stoichiometry_window",
        why="the closed-form (galvanostatic) load",
    )
    from microbat.degradation.sphere import constant_flux_concentration

    cmax = float(material.max_concentration_mol_per_m3)  # type: ignore[arg-type]
    d = float(material.diffusivity_m2_per_s)  # type: ignore[arg-type]
    lo, hi = material.stoichiometry_window  # type: ignore[misc]
    c0 = cmax * (lo if direction == "lithiation" else hi)
    t_end = 3600.0 / c_rate
    if time == "end":
        t = t_end
    elif time == "steady":
        t = math.inf
    else:
        t = float(time)
        if not (math.isfinite(t) and 0 <= t <= t_end * (1 + 1e-12)):
            raise InvalidInputError(
                f"time {time!r} s is outside the (dis)charge of {t_end:g} s at {c_rate:g}C"
            )
    radius = particles.equivalent_radius_m
    flux = particle_flux(radius, material, c_rate, direction)
    lab = particles.labels
    sel = lab > 0
    pid = lab[sel] - 1
    hmin = min(particles.voxel_size)
    depth = particles.depth_m[sel].astype(np.float64)
    x = np.clip(1.0 - (depth - 0.5 * hmin) / radius[pid], 0.0, 1.0)
    # the profile on a grid of x per particle τ: interpolate the dimensionless series
    xg = np.linspace(0.0, 1.0, 257)
    mean_shift = 3.0 * flux * (t if math.isfinite(t) else t_end) / radius  # c̄ − c0
    if math.isinf(t):
        u = np.interp(x, xg, constant_flux_concentration(xg, math.inf))  # c − c̄
        tau = np.full(particles.n, math.inf)
        dev = (flux * radius / d)[pid] * u
    else:
        tau = d * t / radius**2
        dev = (flux * radius / d)[pid] * _deviation(x, tau[pid])
    # each particle's voxel mean = the sphere's mean
    n = particles.n
    cnt = np.bincount(pid, minlength=n)
    mdev = np.bincount(pid, weights=dev, minlength=n) / np.maximum(cnt, 1)
    c = np.full(lab.shape, np.nan)
    # crumbs (active voxels in no particle) equilibrate at once: the mean concentration
    t_mean = t if math.isfinite(t) else t_end
    sign = 1.0 if direction == "lithiation" else -1.0
    c[(particles.depth_m > 0) & ~sel] = c0 + sign * cmax * (hi - lo) * c_rate * t_mean / 3600.0
    c[sel] = c0 + mean_shift[pid] + dev - mdev[pid]
    tau_f = tau[np.isfinite(tau)]
    info = {
        "c_rate": c_rate,
        "direction": direction,
        "time": "steady" if math.isinf(t) else float(t),
        "discharge_time_s": t_end,
        "tau_median": float(np.median(tau_f)) if tau_f.size else None,
        "tau_range": [float(tau_f.min()), float(tau_f.max())] if tau_f.size else None,
        "flux_median_mol_m2_s": float(np.median(flux)) if flux.size else None,
        "initial_concentration_mol_m3": c0,
    }
    return ConcentrationLoad(c, c0, "galvanostatic", info)
