"""Steady transport through a voxel microstructure (shared by tortuosity and conductivity).

A directional solve holds the field at 1 on the first side and 0 on the last side
of one axis, insulates the other sides, solves the finite-volume system on the
voxels that connect both held sides (:func:`microbat.fv.spanning_mask`) and
measures the flux. The convergence test is the spread of the flux through every
plane of faces between the two held sides, ``(max - min) / mean``; at the exact
discrete solution every plane carries the same flux.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from microbat.core.errors import (
    ConvergenceError,
    InvalidInputError,
    MicrobatWarning,
    PhaseError,
)
from microbat.core.microstructure import Microstructure

Boundary = Literal["face", "layer"]
Precision = Literal["auto", "single", "double"]
Solver = Literal["auto", "mg", "amg", "direct"]

#: Volumes with more voxels than this are solved in single precision by ``"auto"``.
SINGLE_PRECISION_ABOVE = 2**21


class PercolationWarning(MicrobatWarning):
    """A phase does not connect the two sides of a direction (τ = ∞ is reported)."""


@dataclass
class DirectionalSolve:
    """Outcome of one directional solve (internal)."""

    axis: int
    percolating: bool
    relative_flux: float  # F L / (A ΔU), in units of the coefficient
    spanning_fraction: float  # volume fraction of the spanning cluster
    spanning_weighted: float  # sum over spanning voxels of coefficient, / N
    flux_in: float
    flux_out: float
    flux_spread: float
    flux_mismatch: float
    iterations: int
    method: str
    precision: str
    length: float
    area: float
    field: np.ndarray | None
    time_s: float
    restarts: int = 0


def resolve_coefficients(
    ms: Microstructure,
    main: str | Sequence[str] | None,
    main_value: float,
    extra: Mapping[str, float] | None,
    what: str,
) -> dict[int, float]:
    """Map phase labels to coefficients.

    ``main`` phases get ``main_value``; ``extra`` phases (names or roles) their own
    value; others 0.
    """
    values: dict[int, float] = {}
    if main is not None:
        for p in ms.phases.resolve(main):
            values[p.label] = float(main_value)
    for key, v in (extra or {}).items():
        try:
            v = float(v)
        except (TypeError, ValueError):
            raise InvalidInputError(f"{what} of {key!r} must be a number, got {v!r}") from None
        if not math.isfinite(v) or v < 0:
            raise InvalidInputError(
                f"{what} of {key!r} is {v}; it must be finite and non-negative (0 to block)"
            )
        for p in ms.phases.resolve(key):
            values[p.label] = v
    if not any(v > 0 for v in values.values()):
        raise PhaseError(
            f"no phase conducts: give at least one phase with a positive {what} "
            f"(phases: {', '.join(ms.phases.names)})"
        )
    return values


def resolve_axes(ms: Microstructure, axis: int | str | Sequence[int] | None) -> tuple[int, ...]:
    """Axes to solve: the thickness axis by default, ``"all"`` for every axis."""
    if axis is None:
        return (ms.thickness_axis,)
    if isinstance(axis, str):
        if axis.strip().lower() == "all":
            return tuple(range(ms.ndim))
        try:
            axis = int(axis)
        except ValueError:
            raise InvalidInputError(f"axis={axis!r}; use 0, 1, 2 or 'all'") from None
    axes = (axis,) if isinstance(axis, int | np.integer) else tuple(axis)
    out = []
    for a in axes:
        if not isinstance(a, int | np.integer) or not -ms.ndim <= a < ms.ndim:
            raise InvalidInputError(
                f"axis {a!r} is not an axis of this {ms.ndim}D microstructure; use "
                f"{', '.join(str(i) for i in range(ms.ndim))} or 'all'"
            )
        if int(a) % ms.ndim not in out:
            out.append(int(a) % ms.ndim)
    return tuple(out)


def resolve_precision(precision: str, n_voxels: int) -> np.dtype:
    """float32 or float64 from a precision option."""
    if precision == "auto":
        return np.dtype(np.float32 if n_voxels > SINGLE_PRECISION_ABOVE else np.float64)
    if precision == "single":
        return np.dtype(np.float32)
    if precision == "double":
        return np.dtype(np.float64)
    raise InvalidInputError(f"precision={precision!r}; use 'auto', 'single' or 'double'")


def check_boundary(boundary: str) -> Boundary:
    """Validate the boundary convention name."""
    if boundary not in ("face", "layer"):
        raise InvalidInputError(
            f"boundary={boundary!r}; use 'face' (Dirichlet on the outer faces, length L, "
            "TauFactor's convention) or 'layer' (first/last voxel layers, length L-1, "
            "PoreSpy's and PuMA's)"
        )
    return boundary  # type: ignore[return-value]


def prepare(
    labels3: np.ndarray, values: Mapping[int, float], axes: Sequence[int], dtype: np.dtype
) -> dict[str, Any]:
    """Coefficient classes and the spanning cluster of every axis (labelled once)."""
    from microbat.fv.connectivity import components, touching_mask
    from microbat.fv.grid import coefficient_classes, coefficient_field

    if len({v for v in values.values() if v > 0}) <= 15:
        coef: Any = coefficient_classes(labels3, values)
        conducting = coef.classes != 0
    else:  # pragma: no cover - more than 15 distinct coefficients
        coef = coefficient_field(labels3, values, dtype=dtype)
        conducting = coef != 0
    lab = components(conducting)[0]
    del conducting
    spans = {a: touching_mask(lab, [(a, 0), (a, -1)]) for a in axes}
    return {"coef": coef, "spans": spans}


def directional_solve(
    ms: Microstructure,
    values: Mapping[int, float],
    axis: int,
    *,
    boundary: Boundary,
    tol: float,
    solver: Solver,
    dtype: np.dtype,
    keep_field: bool,
    maxiter: int = 400,
    what: str = "phase",
    compact: bool = False,
    cache: dict[str, Any] | None = None,
) -> DirectionalSolve:
    """Solve one direction; see the module notes.

    ``compact`` keeps the face conductances as one-byte codes (less memory, slower
    smoothing). ``cache`` (from :func:`prepare`, shared between the directions of
    one call) holds the coefficient classes and the spanning clusters.
    """
    from microbat.fv.grid import as_3d
    from microbat.fv.solvers import solve
    from microbat.fv.system import Dirichlet, build_system

    t0 = time.perf_counter()
    labels3, h = as_3d(np.asarray(ms.labels), ms.grid_spacing)
    n = labels3.shape[axis]
    if boundary == "layer" and n < 3:
        raise InvalidInputError(
            f"the layer convention needs at least 3 voxels along axis {axis}, the image has {n}"
        )
    n_distinct = len({v for v in values.values() if v > 0})
    cache = prepare(labels3, values, [axis], dtype) if cache is None else cache
    coef: Any = cache["coef"]
    span = cache["spans"].pop(axis)
    length = (n if boundary == "face" else n - 1) * h[axis]
    area = float(np.prod([labels3.shape[a] * h[a] for a in range(3) if a != axis]))
    n_vox = labels3.size
    frac = float(np.count_nonzero(span)) / n_vox
    if not frac:
        weighted = 0.0
    elif n_distinct <= 15:
        counts = np.bincount(coef.classes[span], minlength=coef.values.size)
        weighted = float(counts @ coef.values) / n_vox
    else:  # pragma: no cover
        weighted = float(np.sum(coef[span], dtype=np.float64)) / n_vox
    prec = "single" if dtype == np.float32 else "double"
    if frac == 0.0:
        return DirectionalSolve(
            axis, False, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, "none", prec, length, area,
            None, time.perf_counter() - t0,
        )  # fmt: skip
    bcs = [Dirichlet(axis, 0, 1.0, at=boundary), Dirichlet(axis, -1, 0.0, at=boundary)]
    system = build_system(coef, h, dirichlet=bcs, active=span, dtype=dtype, compact=compact)
    # initial guess: the straight-line profile between the held values
    pos = np.arange(n, dtype=np.float64)
    ramp = 1.0 - (pos + 0.5) / n if boundary == "face" else 1.0 - pos / (n - 1)
    shape = [1, 1, 1]
    shape[axis] = n
    x0 = np.where(system.active, ramp.reshape(shape).astype(dtype), dtype.type(0))

    def spread_of(fluxes: np.ndarray) -> float:
        mean = float(np.mean(fluxes))
        return float((fluxes.max() - fluxes.min()) / abs(mean)) if mean != 0 else math.inf

    def stop(it: int, x: np.ndarray, layers: np.ndarray, rnorm: float) -> bool:
        f_in = system.boundary_flux(x, 0)
        planes = f_in - np.concatenate(([0.0], np.cumsum(layers)))
        return spread_of(planes) <= tol

    restarts = 0
    method_used = solver
    total_it = 0
    x = x0
    while True:
        sol = solve(
            system,
            method=solver,
            x0=x,
            stop=stop,
            layer_axis=axis,
            maxiter=maxiter,
            raise_on_failure=False,
            rtol=min(1e-10, tol * 1e-4),
        )
        x = sol.x
        method_used = sol.method
        total_it += sol.iterations
        f_in = system.boundary_flux(x, 0)
        f_out = -system.boundary_flux(x, 1)
        inner = system.layer_fluxes(x, axis)[_interior(boundary, n)]
        planes = np.concatenate(([f_in], inner, [f_out]))
        spread = spread_of(planes)
        if spread <= tol or sol.method == "direct":
            break
        if restarts >= 3 or not sol.converged:
            raise ConvergenceError(
                f"the {what} solve along axis {axis} reached a flux spread of {spread:.2e} "
                f"(tolerance {tol:.1e}) after {total_it} iterations; loosen tol, use "
                "precision='double', or try solver='amg'"
            )
        restarts += 1
    mean_flux = float(np.mean(planes))
    return DirectionalSolve(
        axis=axis,
        percolating=True,
        relative_flux=mean_flux * length / area,
        spanning_fraction=frac,
        spanning_weighted=weighted,
        flux_in=float(f_in),
        flux_out=float(f_out),
        flux_spread=spread,
        flux_mismatch=abs(f_in - f_out) / abs(mean_flux) if mean_flux else math.inf,
        iterations=total_it,
        method=method_used,
        precision=prec,
        length=length,
        area=area,
        field=_field(system, x, ms.ndim) if keep_field else None,
        time_s=time.perf_counter() - t0,
        restarts=restarts,
    )


def _interior(boundary: Boundary, n: int) -> slice:
    """Planes of faces between unknowns (the layer convention's first/last are held)."""
    return slice(None) if boundary == "face" else slice(1, n - 2)


def _field(system: Any, x: np.ndarray, ndim: int) -> np.ndarray:
    out = system.field(x)
    return out[:, :, 0] if ndim == 2 else out


def warn_not_percolating(name: str, axis: int, what: str = "tortuosity") -> None:
    """Emit the :class:`PercolationWarning` of a non-percolating direction."""
    warnings.warn(
        f"{name} does not connect the two sides along axis {axis}: no transport path, "
        f"{what} reported as infinite (percolating=False). Check the phase selection or "
        "the segmentation.",
        PercolationWarning,
        stacklevel=3,
    )


def weighted_fraction(ms: Microstructure, values: Mapping[int, float]) -> tuple[float, float]:
    """(volume fraction of conducting phases, coefficient-weighted volume fraction)."""
    counts = ms.counts()
    n = ms.n_voxels
    frac = 0.0
    weighted = 0.0
    for p in ms.phases.values():
        v = values.get(p.label, 0.0)
        if v > 0:
            frac += counts[p.name] / n
            weighted += v * counts[p.name] / n
    return frac, weighted
