"""The three-phase electrode generator that chains packing, carbon-binder, separator."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from microbat.core.errors import InvalidInputError
from microbat.core.microstructure import Microstructure
from microbat.core.results import Provenance
from microbat.synth._cbd import add_carbon_binder
from microbat.synth._common import (
    SeedLike,
    check_axis,
    check_fraction,
    check_positive,
    check_shape,
    check_voxel_size,
    make_rng,
)
from microbat.synth._packing import packing
from microbat.synth._separator import add_separator

__all__ = ["electrode"]


def electrode(
    shape: Sequence[int],
    *,
    voxel_size: float | Sequence[float],
    active_fraction: float = 0.55,
    cbd_fraction: float = 0.1,
    mean_radius: float = 4e-6,
    radius_cv: float = 0.3,
    aspect_ratio: float = 1.0,
    orientation: int | Sequence[float] | str | None = None,
    orientation_spread: float = 0.15,
    max_overlap: float = 0.2,
    cbd_model: str = "neck",
    separator_thickness: float = 0.0,
    separator_porosity: float = 0.4,
    thickness_axis: int = 0,
    periodic: bool = True,
    seed: SeedLike = None,
) -> Microstructure:
    """A synthetic three-phase electrode (active, carbon-binder, pore, separator).

    The defaults resemble a calendered NMC cathode imaged at 0.4-0.5 µm voxels:
    secondary particles of 4 µm mean radius (D50 ≈ 8 µm) with 30 % size spread,
    55 % active material, 10 % carbon-binder, 35 % porosity.

    Parameters
    ----------
    shape : sequence of three int
        Output shape in voxels, separator included.
    voxel_size : float or sequence of float
        Voxel edge in metres.
    active_fraction : float, default 0.55
        Active-material volume fraction of the electrode (separator excluded).
    cbd_fraction : float, default 0.1
        Carbon-binder volume fraction of the electrode, placed at contacts and
        necks (0 for none; the ``cbd`` phase is then empty but kept in the table).
    mean_radius : float, default 4e-6
        Number-mean particle radius in metres (log-normal).
    radius_cv : float, default 0.3
        Coefficient of variation of the radius.
    aspect_ratio : float, default 1
        Spheroid aspect ratio (see :func:`packing`).
    orientation : None, 'random', int or 3-vector, default None
        Orientation of spheroid symmetry axes (see :func:`packing`).
    orientation_spread : float, default 0.15
        Angular spread (radians) about ``orientation``.
    max_overlap : float, default 0.2
        Largest particle penetration as a fraction of the smaller radius.
    cbd_model : {"neck", "film"}, default "neck"
        Carbon-binder placement (see :func:`add_carbon_binder`).
    separator_thickness : float, default 0
        Thickness in metres of a separator layer occupying the last voxels along
        the thickness axis (0 for none).
    separator_porosity : float, default 0.4
        Porosity of that separator.
    thickness_axis : int, default 0
        Axis through the electrode thickness (current collector at index 0).
    periodic : bool, default True
        Periodic in-plane axes.
    seed : int, numpy.random.Generator or None
        Random seed; the same seed gives the same electrode.

    Returns
    -------
    Microstructure
        Phases ``pore=0, cbd=1, active=2`` (``separator=3`` with a separator).
        ``metadata`` holds ``generator`` (the parameters and seed), ``particles``
        (summary of the particle list), ``carbon_binder``, ``separator`` and
        ``provenance``.

    Raises
    ------
    InvalidInputError
        Invalid shape, fractions (``active_fraction + cbd_fraction`` must be
        below 1), radii, or a separator thicker than the volume.

    Notes
    -----
    Equivalent to ``add_separator(add_carbon_binder(packing(...), ...), ...)``
    with one random generator drawn in that order; call the three steps to keep
    the :class:`Packing` (particle list) for calendering. Cost is dominated by
    rasterisation and distance evaluation, O(N_vox), plus the relaxation,
    O(N_particles log N_particles) per sweep.

    Examples
    --------
    >>> ms = electrode((48, 48, 48), voxel_size=0.5e-6, mean_radius=3e-6, seed=1)
    >>> {k: round(v, 2) for k, v in ms.volume_fractions().items()}
    {'pore': 0.35, 'cbd': 0.1, 'active': 0.55}
    """
    t0 = time.perf_counter()
    dims = check_shape(shape)
    h = check_voxel_size(voxel_size)
    phi_a = check_fraction(active_fraction, "active_fraction")
    phi_c = check_fraction(cbd_fraction, "cbd_fraction", allow_zero=True)
    if phi_a + phi_c >= 1.0:
        raise InvalidInputError(
            f"active_fraction + cbd_fraction = {phi_a + phi_c:.3g} leaves no pore space; "
            "their sum must be below 1"
        )
    t_axis = check_axis(thickness_axis)
    sep_t = check_positive(separator_thickness, "separator_thickness", allow_zero=True)
    rng, seed_int = make_rng(seed)
    n_sep = round(sep_t / h[t_axis]) if sep_t > 0 else 0
    if sep_t > 0 and n_sep < 1:
        raise InvalidInputError(
            f"separator_thickness {sep_t:.3g} m is below half a voxel ({h[t_axis]:.3g} m)"
        )
    e_dims = list(dims)
    e_dims[t_axis] -= n_sep
    if e_dims[t_axis] < 1:
        raise InvalidInputError(
            f"the separator ({n_sep} voxels) leaves no room for the electrode in a "
            f"{dims[t_axis]}-voxel thickness"
        )
    pk = packing(
        e_dims,
        voxel_size=h,
        active_fraction=phi_a,
        mean_radius=mean_radius,
        radius_cv=radius_cv,
        aspect_ratio=aspect_ratio,
        orientation=orientation,
        orientation_spread=orientation_spread,
        max_overlap=max_overlap,
        thickness_axis=t_axis,
        periodic=periodic,
        seed=rng,
    )
    ms = add_carbon_binder(pk, fraction=phi_c, model=cbd_model, seed=rng)
    if n_sep:
        ms = add_separator(ms, thickness=n_sep * h[t_axis], porosity=separator_porosity, seed=rng)
    params: dict[str, Any] = {
        "shape": list(dims),
        "voxel_size": list(h),
        "active_fraction": phi_a,
        "cbd_fraction": phi_c,
        "mean_radius": float(mean_radius),
        "radius_cv": float(radius_cv),
        "aspect_ratio": float(aspect_ratio),
        "orientation": (
            list(np.asarray(orientation, float))
            if isinstance(orientation, Sequence | np.ndarray) and not isinstance(orientation, str)
            else orientation
        ),
        "orientation_spread": float(orientation_spread),
        "max_overlap": float(max_overlap),
        "cbd_model": cbd_model,
        "separator_thickness": sep_t,
        "separator_porosity": float(separator_porosity),
        "thickness_axis": t_axis,
        "periodic": bool(periodic),
        "seed": seed_int,
    }
    prov = Provenance(
        function="microbat.synth.electrode",
        parameters=params,
        seed=seed_int,
        wall_time_s=time.perf_counter() - t0,
        inputs={"packing": pk.provenance.to_dict()},
    )
    meta = dict(ms.metadata)
    meta["generator"] = params
    meta["particles"] = pk.summary()
    meta["provenance"] = prov.to_dict()
    ms.metadata.clear()
    ms.metadata.update(meta)
    return ms
