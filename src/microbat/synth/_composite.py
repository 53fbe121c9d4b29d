"""Composite cathodes of all-solid-state batteries: active + solid-electrolyte particles."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from microbat.core.errors import InvalidInputError
from microbat.core.microstructure import Microstructure
from microbat.core.phases import Phase, PhaseRole, PhaseTable
from microbat.core.results import Provenance
from microbat.synth._common import (
    SeedLike,
    check_axis,
    check_fraction,
    check_positive,
    check_shape,
    check_voxel_size,
    make_rng,
)
from microbat.synth._packing import (
    PackingWarning,
    _lognormal,
    _nearest,
    _Relaxer,
    _scale_for,
    _Shapes,
)

__all__ = ["COMPOSITE_PHASES", "composite_cathode"]

#: Phase table of :func:`composite_cathode` (voids are empty space: role ``gas``).
COMPOSITE_PHASES = PhaseTable(
    [
        Phase("void", 0, PhaseRole.GAS),
        Phase("cbd", 1, PhaseRole.CARBON_BINDER),
        Phase("active", 2, PhaseRole.ACTIVE),
        Phase("se", 3, PhaseRole.SOLID_ELECTROLYTE),
    ]
)

_RHO_ACTIVE = 1.25  # largest normalised radius rasterised for the active particles
_RHO_SE = 3.0  # the electrolyte may grow into the voids up to 3x its drawn radius
_MAX_ROUNDS = 6
_SCALE_TOL = 0.03
#: Jammed packing fraction the drawn (rigid) particles are packed to at most; more
#: electrolyte than that is reached by growing the electrolyte into the voids.
_RIGID_LIMIT = 0.7


def composite_cathode(
    shape: Sequence[int],
    *,
    voxel_size: float | Sequence[float],
    active_fraction: float = 0.5,
    electrolyte_fraction: float = 0.35,
    binder_fraction: float = 0.0,
    active_radius: float = 2.5e-6,
    electrolyte_radius: float = 1.0e-6,
    radius_cv: float = 0.2,
    electrolyte_radius_cv: float | None = None,
    max_overlap: float = 0.2,
    binder_model: str = "neck",
    separator_thickness: float = 0.0,
    thickness_axis: int = 0,
    periodic: bool = True,
    seed: SeedLike = None,
) -> Microstructure:
    """A synthetic composite cathode: active and solid-electrolyte particles, voids, binder.

    Parameters
    ----------
    shape : sequence of three int
        Output shape in voxels (separator layer included).
    voxel_size : float or sequence of float
        Voxel edge in metres.
    active_fraction : float, default 0.5
        Active-material volume fraction of the composite (separator excluded).
    electrolyte_fraction : float, default 0.35
        Solid-electrolyte volume fraction of the composite.
    binder_fraction : float, default 0
        Carbon/binder (electron-conducting additive) volume fraction, placed in the
        voids at the necks between particles (:func:`add_carbon_binder`, image
        route); 0 for none (the ``cbd`` phase is then empty but kept in the table).
    active_radius : float, default 2.5e-6
        Number-mean radius of the active particles in metres (log-normal).
    electrolyte_radius : float, default 1e-6
        Number-mean radius of the solid-electrolyte particles in metres.
    radius_cv : float, default 0.2
        Coefficient of variation of the active radii.
    electrolyte_radius_cv : float, optional
        Coefficient of variation of the electrolyte radii (default ``radius_cv``).
    max_overlap : float, default 0.2
        Largest penetration of two particles as a fraction of the smaller radius.
    binder_model : {"neck", "film"}, default "neck"
        Placement of the binder (see :func:`add_carbon_binder`).
    separator_thickness : float, default 0
        Thickness in metres of a dense solid-electrolyte separator layer occupying
        the last voxels along the thickness axis (0 for none).
    thickness_axis : int, default 0
        Axis through the electrode (current collector at index 0).
    periodic : bool, default True
        Periodic in-plane axes.
    seed : int, numpy.random.Generator or None
        Random seed; the same seed gives the same composite.

    Returns
    -------
    Microstructure
        Phases ``void=0`` (role ``gas``: empty space), ``cbd=1``
        (``carbon_binder``), ``active=2`` and ``se=3`` (``solid_electrolyte``).
        ``metadata["generator"]`` holds the parameters, particle counts, the
        achieved fractions and the growth factor of the electrolyte
        (``electrolyte_scale``), ``metadata["provenance"]`` the seed and time.

    Raises
    ------
    InvalidInputError
        Bad shape, fractions (``active + electrolyte + binder`` must not exceed 1),
        radii, or a separator thicker than the volume.

    Warns
    -----
    PackingWarning
        Overlaps that could not be relaxed below ``max_overlap``.

    Notes
    -----
    1. Active and electrolyte radii are drawn from two log-normal laws; enough
       particles of each kind are drawn for the active volume to hit its target
       and for the electrolyte to fill its share up to a rigid packing limit
       (``active + electrolyte ≤ 0.7`` of the volume as drawn).
    2. Both kinds are packed together by the overlap-limited collective
       rearrangement of :func:`microbat.synth.packing` (pairs penetrating more
       than ``max_overlap`` of the smaller radius are pushed apart); the particle
       kinds are randomly mixed: no clustering is imposed, so the connectivity
       of each phase is that of a random binary packing.
    3. The active particles are rasterised and scaled by one common factor
       (close to 1) so that their voxel fraction hits the target exactly. The
       electrolyte particles are rasterised outside the active ones; the
       ``electrolyte_fraction · N`` non-active voxels with the smallest normalised
       distance to an electrolyte particle become electrolyte. Beyond the rigid
       limit this grows the electrolyte particles into the voids by a common
       factor (``electrolyte_scale`` > 1), the way a soft (sulfide) electrolyte
       deforms into the pores when the composite is cold-pressed [1]_.
    4. Binder goes into the remaining voids at the necks; what is left is void.

    Fractions are exact to one voxel. Cost: as :func:`packing` for both kinds,
    O(N_vox) rasterisation.

    References
    ----------
    .. [1] A. Bielefeld, D. A. Weber, J. Janek, "Microstructural modeling of
       composite cathodes for all-solid-state batteries", J. Phys. Chem. C 123,
       1626-1634 (2019).

    Examples
    --------
    >>> ms = composite_cathode((40, 40, 40), voxel_size=0.25e-6, seed=0)
    >>> {k: round(v, 2) for k, v in ms.volume_fractions().items()}
    {'void': 0.15, 'cbd': 0.0, 'active': 0.5, 'se': 0.35}
    """
    t0 = time.perf_counter()
    dims = check_shape(shape)
    h = check_voxel_size(voxel_size)
    phi_a = check_fraction(active_fraction, "active_fraction")
    phi_e = check_fraction(electrolyte_fraction, "electrolyte_fraction")
    phi_b = check_fraction(binder_fraction, "binder_fraction", allow_zero=True)
    if phi_a + phi_e + phi_b > 1.0 + 1e-12:
        raise InvalidInputError(
            f"active_fraction + electrolyte_fraction + binder_fraction = "
            f"{phi_a + phi_e + phi_b:.4g} exceeds 1; the rest of the volume is void"
        )
    r_a = check_positive(active_radius, "active_radius")
    r_e = check_positive(electrolyte_radius, "electrolyte_radius")
    cv_a = check_positive(radius_cv, "radius_cv", unit="a ratio", allow_zero=True)
    cv_e = (
        cv_a
        if electrolyte_radius_cv is None
        else check_positive(electrolyte_radius_cv, "electrolyte_radius_cv", unit="a ratio",
                            allow_zero=True)
    )  # fmt: skip
    delta = float(max_overlap)
    if not (math.isfinite(delta) and 0.0 <= delta < 1.0):
        raise InvalidInputError(f"max_overlap must lie in [0, 1), got {max_overlap!r}")
    sep = check_positive(separator_thickness, "separator_thickness", allow_zero=True)
    t_axis = check_axis(thickness_axis)
    rng, seed_int = make_rng(seed)
    n_sep = round(sep / h[t_axis])
    if n_sep >= dims[t_axis]:
        raise InvalidInputError(
            f"the separator ({n_sep} voxels) leaves no room for the composite along axis "
            f"{t_axis} ({dims[t_axis]} voxels)"
        )
    cdims = list(dims)
    cdims[t_axis] -= n_sep
    cdims_t: tuple[int, int, int] = tuple(cdims)  # type: ignore[assignment]
    per = tuple(bool(periodic) and ax != t_axis for ax in range(3))
    extent = np.array([n * hh for n, hh in zip(cdims_t, h, strict=True)])
    hmin = min(h)
    for name, r in (("active_radius", r_a), ("electrolyte_radius", r_e)):
        if r < hmin:
            raise InvalidInputError(
                f"{name} {r:.3g} m is smaller than a voxel ({hmin:.3g} m); use a smaller voxel_size"
            )
    if 2 * r_a > extent.min():
        raise InvalidInputError(
            f"the composite ({', '.join(f'{e:.3g}' for e in extent)} m) is smaller than one "
            f"active particle diameter ({2 * r_a:.3g} m); enlarge shape or reduce active_radius"
        )

    vol_box = float(np.prod(extent))

    def count(phi: float, r: float, cv: float) -> int:
        mean_r3 = r**3 * (1 + cv * cv) ** 3
        loss = 0.375 * r / extent[t_axis]
        return max(1, round(phi * vol_box / (4 / 3 * math.pi * mean_r3) / (1 - loss)))

    phi_e_rigid = min(phi_e, max(_RIGID_LIMIT - phi_a, 0.05))
    n_a = count(phi_a, r_a, cv_a)
    n_e = count(phi_e_rigid, r_e, cv_e)
    if n_a + n_e > 2_000_000:
        raise InvalidInputError(
            f"about {n_a + n_e} particles would be needed; reduce shape or raise the radii"
        )
    pool_a = 2 * n_a + 32
    rad_a = np.maximum(_lognormal(rng, r_a, cv_a, pool_a), 0.5 * hmin)
    rad_e = np.maximum(_lognormal(rng, r_e, cv_e, n_e), 0.5 * hmin)
    pos_a = rng.random((pool_a, 3)) * extent
    pos_e = rng.random((n_e, 3)) * extent
    relaxer = _Relaxer(extent, per, delta, float(min(r_a, r_e)))  # type: ignore[arg-type]

    def shapes(radii: np.ndarray) -> _Shapes:
        amat = np.eye(3)[None] / (radii[:, None, None] ** 2)
        return _Shapes(amat, radii, radii**3, sphere=True)

    worst = 0.0
    history: list[tuple[int, float]] = []
    x_a = pos_a[:n_a]
    x_e = pos_e
    q_a = ids_a = None
    s_a = 1.0
    for _ in range(_MAX_ROUNDS):
        radii = np.concatenate([rad_a[:n_a], rad_e])
        x = np.concatenate([x_a, x_e])
        x, worst, _ = relaxer.relax(x, shapes(radii), 3000)
        x_a, x_e = x[:n_a], x[n_a:]
        amat_a = np.eye(3)[None] / (rad_a[:n_a, None, None] ** 2)
        q_a, ids_a = _nearest(cdims_t, h, per, x_a, amat_a, _RHO_ACTIVE)  # type: ignore[arg-type]
        s_a, _ = _scale_for(q_a, phi_a)
        history.append((n_a, float(s_a)))
        if abs(s_a - 1.0) <= _SCALE_TOL:
            break
        n_new = int(np.clip(round(n_a * s_a**3), 1, pool_a))
        if n_new == n_a or n_new in {m for m, _ in history}:
            break
        x_a = np.concatenate([x_a, pos_a[n_a:n_new]]) if n_new > n_a else x_a[:n_new]
        n_a = n_new
    assert q_a is not None and ids_a is not None
    n_vox = int(np.prod(cdims_t))
    k_a = round(phi_a * n_vox)
    active = _smallest(q_a, k_a)
    if not np.isfinite(s_a) or s_a > _RHO_ACTIVE:
        raise InvalidInputError(
            f"could not reach active_fraction={phi_a}: raise max_overlap or lower the fraction"
        )
    amat_e = np.eye(3)[None] / (rad_e[:, None, None] ** 2)
    q_e, _ = _nearest(cdims_t, h, per, x_e, amat_e, _RHO_SE)  # type: ignore[arg-type]
    q_e[active] = np.inf
    k_e = round(phi_e * n_vox)
    n_reach = int(np.count_nonzero(np.isfinite(q_e)))
    if n_reach < k_e:  # voids beyond reach of any electrolyte particle: fill by distance
        from scipy import ndimage as ndi

        far = ~np.isfinite(q_e) & ~active
        seeds = np.isfinite(q_e)
        dist = ndi.distance_transform_edt(~seeds, sampling=h).astype(np.float32)
        q_e[far] = np.float32(_RHO_SE) + dist[far] / np.float32(hmin)
    electrolyte = _smallest(q_e, k_e)
    finite = q_e[electrolyte]
    s_e = float(finite.max()) if finite.size else 0.0

    labels = np.zeros(cdims_t, np.uint8)
    labels[active] = 2
    labels[electrolyte] = 3
    binder_info: dict[str, Any] = {}
    if phi_b > 0:
        from microbat.synth._cbd import add_carbon_binder

        solid = labels != 0
        k_b = round(phi_b * n_vox)
        if k_b > int(np.count_nonzero(~solid)):
            raise InvalidInputError("binder_fraction exceeds the void fraction left")
        with_b = add_carbon_binder(
            solid.astype(np.uint8), fraction=phi_b, model=binder_model, voxel_size=h, seed=rng
        )
        labels[(with_b.labels == 1) & ~solid] = 1
        binder_info = {
            k: v for k, v in with_b.metadata.get("carbon_binder", {}).items() if k != "provenance"
        }
    if n_sep:
        pad = [(0, 0)] * 3
        pad[t_axis] = (0, n_sep)
        labels = np.pad(labels, pad, constant_values=3)
    if worst > 0.05 * min(r_a, r_e):
        warnings.warn(
            f"overlaps could not be relaxed to max_overlap={delta} (largest excess "
            f"{worst:.2e} m); raise max_overlap or lower the fractions",
            PackingWarning,
            stacklevel=2,
        )
    counts = np.bincount(labels[_composite_slice(t_axis, cdims_t[t_axis])].ravel(), minlength=4)
    params = {
        "shape": list(dims),
        "voxel_size": list(h),
        "active_fraction": phi_a,
        "electrolyte_fraction": phi_e,
        "binder_fraction": phi_b,
        "void_fraction": max(0.0, 1.0 - phi_a - phi_e - phi_b),
        "active_radius_m": r_a,
        "electrolyte_radius_m": r_e,
        "radius_cv": cv_a,
        "electrolyte_radius_cv": cv_e,
        "max_overlap": delta,
        "binder_model": binder_model,
        "separator_thickness_m": n_sep * h[t_axis],
        "thickness_axis": t_axis,
        "periodic": bool(periodic),
    }
    prov = Provenance(
        function="microbat.synth.composite_cathode",
        parameters={**params, "rounds": [[int(m), float(v)] for m, v in history]},
        seed=seed_int,
        wall_time_s=time.perf_counter() - t0,
    )
    gen = {
        **params,
        "n_active_particles": int(n_a),
        "n_electrolyte_particles": int(n_e),
        "active_scale": float(s_a),
        "electrolyte_scale": s_e,
        "achieved": {p.name: float(counts[p.label]) / n_vox for p in COMPOSITE_PHASES.values()},
        "carbon_binder": binder_info,
        "seed": seed_int,
    }
    return Microstructure(
        labels,
        h,
        COMPOSITE_PHASES,
        thickness_axis=t_axis,
        metadata={"generator": gen, "provenance": prov.to_dict()},
        allow_empty_phases=True,
    )


def _composite_slice(axis: int, n: int) -> tuple[slice, ...]:
    sl = [slice(None)] * 3
    sl[axis] = slice(0, n)
    return tuple(sl)


def _smallest(q: np.ndarray, k: int) -> np.ndarray:
    """Mask of exactly ``k`` voxels with the smallest finite ``q`` (ties in index order)."""
    flat = q.reshape(-1)
    out = np.zeros(flat.size, bool)
    if k <= 0:
        return out.reshape(q.shape)
    k = min(k, flat.size)
    s = np.partition(flat, k - 1)[k - 1]
    keep = flat < s
    need = k - int(np.count_nonzero(keep))
    keep[np.flatnonzero(flat == s)[:need]] = True
    return keep.reshape(q.shape)
