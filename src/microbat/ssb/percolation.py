"""Percolation of the phases of random composite cathodes against their volume fraction.

A composite cathode works only if the solid electrolyte connects the separator to
the depth of the electrode and the active material (with the carbon) connects the
current collector. For random packings of two kinds of equal spheres the share of
one kind at which it starts to span the sample is the site-percolation threshold
of a random close packing, ``p_c ≈ 0.31`` (Powell 1979 [1]_, 0.310; Ziff &
Torquato 2017 [2]_, 0.3116 on jammed packings); binary-powder experiments and
simulations put the onset of connectivity of the minor phase at 0.2-0.3 of the
solid volume depending on the size ratio (Bouvard & Lange 1991 [3]_; for
composite cathodes Bielefeld et al. 2019 [4]_).

:func:`percolation_probability` generates seeded composites with
:func:`microbat.synth.composite_cathode` (equal radii by default, a fixed total
solid fraction, no growth of the electrolyte below the rigid-packing limit) and
counts how often a phase spans the thickness axis (face connectivity).

References
----------
.. [1] M. J. Powell, "Site percolation in randomly packed spheres", Phys. Rev. B
   20, 4194-4198 (1979).
.. [2] R. M. Ziff, S. Torquato, "Percolation of disordered jammed sphere packings",
   J. Phys. A 50, 085001 (2017).
.. [3] D. Bouvard, F. F. Lange, "Relation between percolation and particle
   coordination in binary powder mixtures", Acta Metall. Mater. 39, 3083-3090
   (1991).
.. [4] A. Bielefeld, D. A. Weber, J. Janek, "Microstructural modeling of composite
   cathodes for all-solid-state batteries", J. Phys. Chem. C 123, 1626-1634 (2019).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from microbat.core.errors import InvalidInputError
from microbat.core.results import Provenance, Result

__all__ = ["PercolationCurve", "percolation_probability"]


@dataclass(frozen=True)
class PercolationCurve(Result):
    """Spanning probability of a phase against its share of the solid.

    Attributes
    ----------
    phase : str
        ``"se"`` or ``"active"``.
    shares : ndarray
        Volume share of the phase in the solid (electrolyte + active).
    probability : ndarray
        Fraction of the samples in which the phase spans the thickness axis.
    n_samples : int
    threshold : float or None
        Share at which the probability crosses 1/2 (linear interpolation), None
        when it does not cross within the range.
    solid_fraction : float
        Total solid (active + electrolyte) volume fraction of every sample.
    provenance : Provenance
    """

    phase: str
    shares: np.ndarray
    probability: np.ndarray
    n_samples: int
    threshold: float | None
    solid_fraction: float
    provenance: Provenance = field(repr=False, default_factory=lambda: Provenance("perc"))

    _json_arrays = ("shares", "probability")


def percolation_probability(
    shares: Sequence[float],
    *,
    phase: str = "se",
    n_samples: int = 8,
    shape: Sequence[int] = (64, 64, 64),
    voxel_size: float = 0.25e-6,
    radius: float = 1.0e-6,
    solid_fraction: float = 0.62,
    seed: int = 0,
) -> PercolationCurve:
    """Probability that a phase of random composites spans the thickness, by its share.

    Parameters
    ----------
    shares : sequence of float
        Volume shares of ``phase`` in the solid, in (0, 1).
    phase : {"se", "active"}, default "se"
        The phase whose spanning is counted.
    n_samples : int, default 8
        Composites per share (seeds ``seed, seed + 1, ...``).
    shape : sequence of 3 int, default (64, 64, 64)
        Voxels of each sample.
    voxel_size : float, default 0.25e-6
        Metres.
    radius : float, default 1e-6
        Mean radius of both kinds of particles (m), monodisperse.
    solid_fraction : float, default 0.62
        Active + electrolyte volume fraction (the rest is void), below the rigid
        limit of the generator so that no particle grows.
    seed : int, default 0
        First seed.

    Returns
    -------
    PercolationCurve

    Raises
    ------
    InvalidInputError
        Shares outside (0, 1), a bad phase or sample count.
    """
    from microbat.core.clusters import label_clusters, side_touch
    from microbat.synth import composite_cathode

    t0 = time.perf_counter()
    x = np.asarray(shares, float).ravel()
    if x.size == 0 or np.any(~np.isfinite(x)) or np.any((x <= 0) | (x >= 1)):
        raise InvalidInputError("shares must lie in (0, 1)")
    if phase not in ("se", "active"):
        raise InvalidInputError(f"phase={phase!r}; use se or active")
    if n_samples < 1:
        raise InvalidInputError("n_samples must be at least 1")
    prob = np.zeros(x.size)
    for i, share in enumerate(x):
        hits = 0
        for k in range(n_samples):
            se = share if phase == "se" else 1.0 - share
            ms = composite_cathode(
                shape, voxel_size=voxel_size, active_fraction=solid_fraction * (1 - se),
                electrolyte_fraction=solid_fraction * se, active_radius=radius,
                electrolyte_radius=radius, radius_cv=0.0, seed=seed + k,
            )  # fmt: skip
            mask = ms.labels == ms.phases.label_of(phase)
            lab, n = label_clusters(mask, 6)
            ax = ms.thickness_axis
            spans = side_touch(lab, n, ax, 0) & side_touch(lab, n, ax, -1)
            hits += bool(spans.any())
        prob[i] = hits / n_samples
    thr = None
    for i in range(1, x.size):
        lo, hi = prob[i - 1], prob[i]
        if lo < 0.5 <= hi and hi > lo:
            thr = float(x[i - 1] + (0.5 - lo) * (x[i] - x[i - 1]) / (hi - lo))
            break
    if thr is None and x.size and prob[0] >= 0.5:
        thr = math.nan
    return PercolationCurve(
        phase=phase,
        shares=x,
        probability=prob,
        n_samples=int(n_samples),
        threshold=thr if thr is None or math.isfinite(thr) else None,
        solid_fraction=float(solid_fraction),
        provenance=Provenance(
            "microbat.ssb.percolation_probability",
            parameters={
                "phase": phase,
                "shape": list(shape),
                "voxel_size": voxel_size,
                "radius": radius,
                "solid_fraction": solid_fraction,
                "n_samples": n_samples,
            },
            seed=seed,
            wall_time_s=time.perf_counter() - t0,
        ),
    )
