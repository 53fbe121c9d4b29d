r"""Is the sample large enough? A representative-volume check on disjoint sub-volumes.

A property measured on one image (porosity, tortuosity factor, ...) is one sample
of a random variable whose spread shrinks as the volume grows. Following the
statistical definition of the representative volume element (Kanit et al. [1]_),
the image is tiled into disjoint cubic-ish blocks of a few sizes (a fraction ``f``
of the image edge along every axis, so up to ``⌊1/f⌋³`` disjoint blocks), the
property is computed on a random subset of the blocks of each size, and its
standard deviation ``D(V)`` is fitted by the power law of [1]_

.. math::

    D^2(V) = D^2(V_0) \left(\frac{V_0}{V}\right)^{\gamma},

(``γ = 1`` for a property that averages over a finite correlation length; the
fitted ``γ`` is clipped to ``[0.5, 1.5]`` and is 1 when fewer than two sizes have a
spread). Extrapolated to the volume ``V`` of the whole image, ``D(V)`` is the
spread of the whole-image value among images of the same material; the 95 %
interval of the measured value is ``± 1.96 D(V)``, and the image counts as
representative for that property when this half-width is within ``tolerance`` of
the value.

Properties: the volume fraction of the transporting phase (``porosity``), of the
active phase (``active_fraction``, when the table has one), and the relative
effective diffusivity ``D_eff/D0 = ε/τ`` along each requested axis (``deff_0``,
``deff_1``, ``deff_2``; steady diffusion with :func:`microbat.transport.tortuosity`).
``D_eff`` rather than τ carries the statistics because it is what averages: a block
in which the phase does not percolate along an axis has ``D_eff = 0`` (counted in
``n_not_percolating``) where its τ would be infinite, and near the percolation
threshold τ has a heavy tail that makes its standard deviation meaningless. The
interval of τ follows as ``ε / (D_eff ± half-width)``
(:meth:`RepresentativeVolumeResult.tau_interval`).

References
----------
.. [1] T. Kanit, S. Forest, I. Galliet, V. Mounoury, D. Jeulin, "Determination of
   the size of the representative volume element for random composites: statistical
   and numerical approach", Int. J. Solids Struct. 40 (2003) 3647-3679.
.. [2] S. J. Cooper, A. Bertei, D. P. Finegan, N. P. Brandon, "Simulated impedance
   of diffusion in porous media", Electrochim. Acta 251 (2017) 681-689 (the
   sub-volume analysis of TauFactor's RVE study).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from microbat.core.errors import InvalidInputError, MicrobatWarning
from microbat.core.microstructure import Microstructure
from microbat.core.results import Provenance, Result

__all__ = [
    "RepresentativeVolumeResult",
    "RepresentativeVolumeWarning",
    "representative_volume",
]

#: Two-sided 95 % quantile of the normal distribution.
Z95 = 1.959963984540054


class RepresentativeVolumeWarning(MicrobatWarning):
    """The image is too small for a number to be representative of the material."""


@dataclass(frozen=True)
class PropertySpread:
    """The spread of one property over sub-volumes, extrapolated to the whole image.

    Attributes
    ----------
    name : str
        ``porosity``, ``active_fraction`` or ``deff_<axis>``.
    value : float or None
        The whole image's value.
    edges : tuple of tuple of int
        Block shape of each size (voxels per axis).
    n : tuple of int
        Blocks evaluated, per size.
    n_not_percolating : tuple of int
        Blocks without a path (``deff`` only; their value is 0), per size.
    mean, std : tuple of float
        Mean and standard deviation (``ddof=1``) over the blocks of each size
        (NaN with fewer than two values).
    gamma : float
        Exponent of the variance law used for the extrapolation.
    std_full : float or None
        Extrapolated standard deviation at the volume of the whole image.
    ci95 : float or None
        Half-width of the 95 % interval of the whole image's value.
    relative_ci95 : float or None
        ``ci95 / |value|``.
    representative : bool or None
        ``relative_ci95 <= tolerance`` (None when it cannot be decided).
    """

    name: str
    value: float | None
    edges: tuple[tuple[int, ...], ...]
    n: tuple[int, ...]
    n_not_percolating: tuple[int, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    gamma: float
    std_full: float | None
    ci95: float | None
    relative_ci95: float | None
    representative: bool | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        from microbat.core.results import to_jsonable

        return to_jsonable(self.__dict__)


@dataclass(frozen=True)
class RepresentativeVolumeResult(Result):
    """Outcome of :func:`representative_volume`.

    Attributes
    ----------
    properties : dict of str to PropertySpread
        Per property (see the module notes).
    fractions : tuple of float
        Block edge as a fraction of the image edge, per size.
    tolerance : float
        Relative 95 % half-width below which a property counts as representative.
    representative : bool
        Every property with a decision is representative.
    not_representative : tuple of str
        The properties that are not.
    n_voxels : int
        Voxels of the whole image.
    provenance : Provenance
    """

    properties: dict[str, PropertySpread]
    fractions: tuple[float, ...]
    tolerance: float
    representative: bool
    not_representative: tuple[str, ...]
    n_voxels: int
    provenance: Provenance = field(default_factory=lambda: Provenance("unset"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        out = super().to_dict()
        out["properties"] = {k: v.to_dict() for k, v in self.properties.items()}
        return out

    def interval(self, name: str) -> tuple[float, float] | None:
        """The 95 % interval of a property's whole-image value (None if unknown)."""
        p = self.properties.get(name)
        if p is None or p.value is None or p.ci95 is None:
            return None
        return (p.value - p.ci95, p.value + p.ci95)

    def tau_interval(self, axis: int) -> tuple[float, float] | None:
        """The 95 % interval of τ along ``axis``: ``ε / (D_eff ± half-width)``.

        The upper end is ``inf`` when the interval of ``D_eff`` reaches 0 (the
        direction may not percolate in another sample of the material).
        """
        d = self.interval(f"deff_{axis}")
        eps = self.properties["porosity"].value
        if d is None or not eps:
            return None
        lo, hi = d
        return (eps / hi if hi > 0 else math.inf, eps / lo if lo > 0 else math.inf)


def _blocks(shape: Sequence[int], f: float) -> tuple[tuple[int, ...], list[tuple[slice, ...]]]:
    edge = tuple(max(1, math.floor(f * n)) for n in shape)
    counts = [n // e for n, e in zip(shape, edge, strict=True)]
    offsets = [
        # centre the tiling: leftover voxels split between both ends
        (n - c * e) // 2
        for n, c, e in zip(shape, counts, edge, strict=True)
    ]
    out = []
    for idx in np.ndindex(*counts):
        out.append(
            tuple(
                slice(o + i * e, o + (i + 1) * e)
                for o, i, e in zip(offsets, idx, edge, strict=True)
            )
        )
    return edge, out


def _fit_gamma(volumes: Sequence[float], stds: Sequence[float]) -> float:
    """Exponent of ``D² ∝ V^-γ`` fitted in log space (1 without two usable sizes)."""
    v = np.asarray(volumes, float)
    s = np.asarray(stds, float)
    ok = np.isfinite(s) & (s > 0)
    if ok.sum() < 2:
        return 1.0
    slope = np.polyfit(np.log(v[ok]), 2.0 * np.log(s[ok]), 1)[0]
    return float(np.clip(-slope, 0.5, 1.5))


def _spread(
    name: str,
    value: float | None,
    edges: list[tuple[int, ...]],
    per_size: list[list[float]],
    not_perc: list[int],
    n_full: int,
    tolerance: float,
) -> PropertySpread:
    volumes = [float(np.prod(e)) for e in edges]
    n = [len(v) for v in per_size]
    mean = [float(np.mean(v)) if len(v) >= 1 else math.nan for v in per_size]
    std = [float(np.std(v, ddof=1)) if len(v) >= 2 else math.nan for v in per_size]
    usable = [i for i in range(len(edges)) if n[i] >= 2]
    gamma = _fit_gamma([volumes[i] for i in usable], [std[i] for i in usable])
    std_full = ci = rel = None
    rep: bool | None = None
    if usable:
        i = max(usable, key=lambda k: volumes[k])
        std_full = std[i] * (volumes[i] / n_full) ** (gamma / 2.0)
        ci = Z95 * std_full
        if value is not None and value != 0:
            rel = ci / abs(value)
            rep = bool(rel <= tolerance)
    return PropertySpread(
        name=name,
        value=value,
        edges=tuple(edges),
        n=tuple(n),
        n_not_percolating=tuple(not_perc),
        mean=tuple(mean),
        std=tuple(std),
        gamma=gamma,
        std_full=std_full,
        ci95=ci,
        relative_ci95=rel,
        representative=rep,
    )


def representative_volume(
    ms: Microstructure,
    *,
    phase: str = "electrolyte",
    fractions: Sequence[float] = (0.25, 1 / 3, 0.5),
    samples: int = 8,
    axes: Sequence[int] | str = "all",
    boundary: str = "face",
    tolerance: float = 0.2,
    full_values: dict[str, float | None] | None = None,
    seed: int | np.random.Generator | None = 0,
) -> RepresentativeVolumeResult:
    """Spread of porosity, active fraction and τ over disjoint sub-volumes (see notes).

    Parameters
    ----------
    ms : Microstructure
        The labelled image (3D).
    phase : str, default "electrolyte"
        Transporting phase (names or roles) of the porosity and τ.
    fractions : sequence of float, default (1/4, 1/3, 1/2)
        Block edge as a fraction of the image edge (each in (0, 0.5] so that at
        least two disjoint blocks exist along every axis).
    samples : int, default 8
        Blocks drawn (without replacement) per size; all when fewer exist.
    axes : "all" or sequence of int, default "all"
        Axes of τ; ``()`` skips τ.
    boundary : {"face", "layer"}
        Boundary convention of τ (see :func:`microbat.transport.tortuosity`).
    tolerance : float, default 0.2
        Relative 95 % half-width below which a property counts as representative.
    full_values : dict, optional
        Whole-image values already known (``{"deff_0": 0.088, ...}``); the rest are
        computed.
    seed : int or Generator, optional
        Which blocks are drawn.

    Returns
    -------
    RepresentativeVolumeResult

    Raises
    ------
    InvalidInputError
        A 2D image, fractions outside (0, 0.5], fewer than 2 samples, blocks smaller
        than 4 voxels along an axis, a non-positive tolerance.

    Notes
    -----
    Cost: one τ solve per block and axis, on blocks of at most an eighth of the
    image: about the cost of one whole-image solve per size.

    Examples
    --------
    >>> from microbat import synth
    >>> ms = synth.electrode((48, 48, 48), voxel_size=5e-7, mean_radius=2e-6, seed=1)
    >>> r = representative_volume(ms, axes=(), seed=0)
    >>> 0 < r.properties["porosity"].relative_ci95 < 1
    True
    """
    from microbat.transport._steady import PercolationWarning
    from microbat.transport.diffusion import tortuosity

    t0 = time.perf_counter()
    if ms.ndim != 3:
        raise InvalidInputError(f"the representative-volume check needs a 3D image, got {ms.shape}")
    fr = tuple(float(f) for f in fractions)
    if not fr or any(not (0.0 < f <= 0.5) for f in fr):
        raise InvalidInputError(
            f"fractions must lie in (0, 0.5] (at least two disjoint blocks per axis), got {fr}"
        )
    if int(samples) < 2:
        raise InvalidInputError(f"samples must be at least 2 to measure a spread, got {samples}")
    if not (math.isfinite(tolerance) and tolerance > 0):
        raise InvalidInputError(f"tolerance must be a positive fraction, got {tolerance!r}")
    ax_list = list(range(3)) if axes == "all" else [int(a) for a in axes]  # type: ignore[union-attr]
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    mask_phase = ms.mask(phase)
    actives = ms.phases.with_role("active")
    mask_active = ms.mask(",".join(p.name for p in actives)) if actives else None

    full = dict(full_values or {})
    names = ["porosity"] + (["active_fraction"] if mask_active is not None else [])
    names += [f"deff_{a}" for a in ax_list]
    if "porosity" not in full:
        full["porosity"] = float(mask_phase.mean())
    if mask_active is not None and "active_fraction" not in full:
        full["active_fraction"] = float(mask_active.mean())
    missing = [a for a in ax_list if f"deff_{a}" not in full]
    if missing:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PercolationWarning)
            r = tortuosity(ms, phase=phase, axis=missing, boundary=boundary, keep_field=False)
        for a in missing:
            full[f"deff_{a}"] = float(r.deff_over_d0[a])

    edges: list[tuple[int, ...]] = []
    values: dict[str, list[list[float]]] = {k: [] for k in names}
    not_perc: dict[str, list[int]] = {k: [] for k in names}
    for f in fr:
        edge, blocks = _blocks(ms.shape, f)
        if min(edge) < 4:
            raise InvalidInputError(
                f"blocks of {f:g} of the image edge are {edge} voxels: too small; use larger "
                "fractions or a larger image"
            )
        pick = rng.choice(len(blocks), size=min(int(samples), len(blocks)), replace=False)
        edges.append(edge)
        for k in names:
            values[k].append([])
            not_perc[k].append(0)
        for b in sorted(int(i) for i in pick):
            sl = blocks[b]
            values["porosity"][-1].append(float(mask_phase[sl].mean()))
            if mask_active is not None:
                values["active_fraction"][-1].append(float(mask_active[sl].mean()))
            if not ax_list:
                continue
            if not mask_phase[sl].any():
                for a in ax_list:
                    values[f"deff_{a}"][-1].append(0.0)
                    not_perc[f"deff_{a}"][-1] += 1
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", PercolationWarning)
                rt = tortuosity(
                    ms.crop(*sl), phase=phase, axis=ax_list, boundary=boundary, keep_field=False
                )
            for a in ax_list:
                values[f"deff_{a}"][-1].append(float(rt.deff_over_d0[a]))
                not_perc[f"deff_{a}"][-1] += int(not rt.percolating[a])
    n_full = int(np.prod(ms.shape))
    props = {
        k: _spread(k, full.get(k), edges, values[k], not_perc[k], n_full, tolerance) for k in names
    }
    bad = tuple(k for k, p in props.items() if p.representative is False)
    prov = Provenance(
        "microbat.transport.representative_volume",
        parameters={
            "phase": phase,
            "fractions": list(fr),
            "samples": int(samples),
            "axes": ax_list,
            "boundary": boundary,
            "tolerance": tolerance,
        },
        seed=seed if isinstance(seed, int) else None,
        wall_time_s=time.perf_counter() - t0,
        inputs={"shape": list(ms.shape), "voxel_size": list(ms.voxel_size)},
    )
    return RepresentativeVolumeResult(
        properties=props,
        fractions=fr,
        tolerance=float(tolerance),
        representative=not bad,
        not_representative=bad,
        n_voxels=n_full,
        provenance=prov,
    )
