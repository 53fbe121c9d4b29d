r"""Aging heterogeneity index: how unevenly the particles of an electrode are used.

From a resolved run monitored by :class:`~microbat.degradation.plating.PlatingMonitor`
with labelled particles (:func:`~microbat.degradation.particles.label_particles`),
every particle :math:`p` gets, at stated times,

* its state of charge :math:`x_p`: the mean stoichiometry of its voxels;
* its insertion current density :math:`j_p = I_p / A_p` (A/m², lithium into the
  particle positive): :math:`I_p` the model's interface current into the particle's
  voxels (the ``reaction_current`` field), or, when the fields do not carry it,
  :math:`F\,\dot n_p` from the change of its lithium :math:`n_p = c_{s,max} V_p x_p`
  over the last monitored step; :math:`A_p` its voxel faces towards pore or
  carbon-binder (the model's reaction area differs from it by the uniform
  ``"metrics"`` scale and the carbon-binder porosity);
* its plating exposure :math:`E_p`: the area-weighted mean over its faces of
  :math:`\int \max(0, -η_{pl})\,dt` (V·s), η_pl the plating overpotential.

The spread of each is its weighted coefficient of variation

.. math::

    \mathrm{CoV}_w(y) = \frac{\sqrt{\sum_p w_p (y_p - \bar y)^2 / \sum_p w_p}}{|\bar y|},
    \qquad \bar y = \frac{\sum_p w_p y_p}{\sum_p w_p},

weighted by volume for the state of charge (each particle counts with the capacity it
holds) and by interface area for the current density and the exposure (each counts
with the surface that carries them), so that a weighted CoV is the spread the
electrode's capacity or surface actually sees, independent of how the watershed cut
the solid. The **aging heterogeneity index** is
:math:`\mathrm{AHI}(t) = \mathrm{CoV}_V(x_p(t))`; the current-density and exposure
CoVs are reported beside it, with the CoV inside depth bins (distance of the particle
centroid from the separator) and the per-particle table.

The per-particle state of charge as the measure of utilisation heterogeneity
follows Harris and Lu [1]_ and the many-particle analysis of Kirk et al. [2]_ (a
spread of particle sizes alone spreads the particles' states of charge); the
electrode-scale dispersion statistic, the CoV of a local property, follows the
local-tortuosity analysis of Kehrwald et al. [3]_. A quantity that is the same in
every particle gives 0; a spread of zeros (no exposure anywhere) also gives 0.

References
----------
.. [1] S. J. Harris and P. Lu, "Effects of inhomogeneities — nanoscale to mesoscale
   — on the durability of Li-ion batteries", J. Phys. Chem. C 117, 6481 (2013),
   doi:10.1021/jp311431z.
.. [2] T. L. Kirk, J. Evans, C. P. Please and S. J. Chapman, "Modelling electrode
   heterogeneity in lithium-ion batteries: unimodal and bimodal particle-size
   distributions", SIAM J. Appl. Math. 82, 625 (2022), arXiv:2006.12208.
.. [3] D. Kehrwald, P. R. Shearing, N. P. Brandon, P. K. Sinha and S. J. Harris,
   "Local tortuosity inhomogeneities in a lithium battery composite electrode",
   J. Electrochem. Soc. 158, A1393 (2011), doi:10.1149/2.079112jes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from microbat.core.errors import InvalidInputError
from microbat.core.results import Provenance, Result, to_jsonable

__all__ = ["HeterogeneityResult", "aging_heterogeneity", "weighted_cov"]

FARADAY = 96485.33212  # C/mol (CODATA 2018)


def weighted_cov(values: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Weighted coefficient of variation ``sqrt(Σw(y−ȳ)²/Σw) / |ȳ|``.

    Parameters
    ----------
    values : ndarray
        One value per item (NaN items are left out).
    weights : ndarray, optional
        Non-negative weights (default equal).

    Returns
    -------
    float
        0 when all values are equal (including all zero); NaN without items or with
        a zero mean of values that differ.

    Examples
    --------
    >>> weighted_cov(np.array([1.0, 1.0, 1.0]))
    0.0
    >>> round(weighted_cov(np.array([1.0, 3.0])), 6)
    0.5
    """
    y = np.asarray(values, float).reshape(-1)
    w = np.ones_like(y) if weights is None else np.asarray(weights, float).reshape(-1)
    if w.shape != y.shape:
        raise InvalidInputError("weights and values must have the same length")
    ok = np.isfinite(y) & np.isfinite(w) & (w > 0)
    if not np.any(ok):
        return math.nan
    y, w = y[ok], w[ok]
    if np.all(y == y[0]):
        return 0.0
    mean = float(np.sum(w * y) / np.sum(w))
    var = float(np.sum(w * (y - mean) ** 2) / np.sum(w))
    if mean == 0.0:
        return math.nan
    return math.sqrt(var) / abs(mean)


@dataclass(frozen=True)
class HeterogeneityResult(Result):
    """Per-particle state of charge, current density and plating exposure, and their CoV.

    Attributes
    ----------
    times_s : ndarray (k,)
        Times at which the quantities are taken (the first monitored step at or after
        each requested time).
    particle_id : ndarray (n,)
        Particle numbers (labels of :class:`~microbat.degradation.particles.Particles`).
    volume_m3, interface_area_m2, depth_m : ndarray (n,)
        Particle volume (monitored voxels), interface area (voxel faces) and distance
        of its centroid from the separator.
    soc : ndarray (k, n)
        Mean stoichiometry of each particle.
    current_density_A_per_m2 : ndarray (k, n)
        Insertion current density over the last step before each time (NaN at the
        first monitored step).
    plating_exposure_V_s : ndarray (k, n)
        Cumulative exposure ∫ max(0, −η_pl) dt, area-weighted over the faces.
    index : ndarray (k,)
        The aging heterogeneity index AHI = volume-weighted CoV of ``soc``.
    cov_soc, cov_current_density, cov_plating_exposure : ndarray (k,)
    depth_bins_m : ndarray (b + 1,)
        Edges of the depth bins (distance from the separator).
    cov_soc_vs_depth, cov_current_density_vs_depth, cov_plating_exposure_vs_depth : ndarray (k, b)
    provenance : Provenance
    """

    times_s: np.ndarray
    particle_id: np.ndarray
    volume_m3: np.ndarray
    interface_area_m2: np.ndarray
    depth_m: np.ndarray
    soc: np.ndarray
    current_density_A_per_m2: np.ndarray
    plating_exposure_V_s: np.ndarray
    index: np.ndarray
    cov_soc: np.ndarray
    cov_current_density: np.ndarray
    cov_plating_exposure: np.ndarray
    depth_bins_m: np.ndarray
    cov_soc_vs_depth: np.ndarray
    cov_current_density_vs_depth: np.ndarray
    cov_plating_exposure_vs_depth: np.ndarray
    provenance: Provenance = field(default_factory=lambda: Provenance("microbat"))

    _json_arrays = (
        "times_s",
        "index",
        "cov_soc",
        "cov_current_density",
        "cov_plating_exposure",
        "depth_bins_m",
        "cov_soc_vs_depth",
        "cov_current_density_vs_depth",
        "cov_plating_exposure_vs_depth",
    )

    @property
    def n_particles(self) -> int:
        """Number of particles."""
        return int(self.particle_id.size)

    def table(self, k: int = -1) -> list[dict[str, float]]:
        """Per-particle rows at time index ``k`` (µm units for lengths)."""
        rows = []
        for i in range(self.n_particles):
            rows.append(
                {
                    "particle": int(self.particle_id[i]),
                    "volume_um3": float(self.volume_m3[i] * 1e18),
                    "equivalent_radius_um": float(
                        np.cbrt(3 * self.volume_m3[i] / (4 * np.pi)) * 1e6
                    ),
                    "interface_area_um2": float(self.interface_area_m2[i] * 1e12),
                    "depth_from_separator_um": float(self.depth_m[i] * 1e6),
                    "soc": float(self.soc[k, i]),
                    "current_density_A_per_m2": float(self.current_density_A_per_m2[k, i]),
                    "plating_exposure_V_s": float(self.plating_exposure_V_s[k, i]),
                }
            )
        return rows

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary with the per-particle table at the last time."""
        out = super().to_dict()
        out["name"] = "aging heterogeneity index (AHI = volume-weighted CoV of particle SOC)"
        out["n_particles"] = self.n_particles
        out["end"] = {
            "time_s": to_jsonable(float(self.times_s[-1])),
            "index": to_jsonable(float(self.index[-1])),
            "soc": to_jsonable(float(self.cov_soc[-1])),
            "current_density": to_jsonable(float(self.cov_current_density[-1])),
            "plating_exposure": to_jsonable(float(self.cov_plating_exposure[-1])),
        }
        out["particles"] = to_jsonable(self.table(-1))
        return out


def aging_heterogeneity(
    monitor: Any,
    *,
    c_max: float,
    times: Sequence[float] | None = None,
    depth_bins: int = 5,
) -> HeterogeneityResult:
    """The aging heterogeneity index of a monitored resolved run.

    Parameters
    ----------
    monitor : PlatingMonitor
        A monitor built with ``particles=`` that saw the run (its per-step particle
        records are used).
    c_max : float
        Maximum lithium concentration of the active material (mol/m³).
    times : sequence of float, optional
        Times (s) of the index (default: the monitor's stored map times, which always
        include the end).
    depth_bins : int, default 5
        Equal-width bins of the distance from the separator for the CoV profile.

    Returns
    -------
    HeterogeneityResult

    Raises
    ------
    InvalidInputError
        No particles were monitored, the monitor saw no step, a non-positive ``c_max``.

    Notes
    -----
    Cost O(steps × particles) after the run (the monitor recorded the per-particle
    sums step by step).

    Examples
    --------
    >>> from microbat.cell.resolved import simulate_charge, sphere_lattice
    >>> from microbat.degradation import PlatingMonitor, label_particles
    >>> ms = sphere_lattice()
    >>> mon = PlatingMonitor(ms, particles=label_particles(ms))
    >>> run = simulate_charge(ms, c_rate=3, on_fields=mon)  # doctest: +SKIP
    >>> het = aging_heterogeneity(mon, c_max=33133.0)  # doctest: +SKIP
    >>> het.index[-1] < 1e-2  # identical particles: only the depth gradient  # doctest: +SKIP
    True
    """
    if getattr(monitor, "particles", None) is None:
        raise InvalidInputError(
            "the heterogeneity index needs a PlatingMonitor built with particles= "
            "(microbat.degradation.label_particles(ms))"
        )
    if not monitor.times:
        raise InvalidInputError("the monitor saw no step; run the simulation first")
    if not (c_max > 0 and math.isfinite(c_max)):
        raise InvalidInputError(f"c_max must be a positive concentration, got {c_max!r}")
    if int(depth_bins) < 1:
        raise InvalidInputError(f"depth_bins must be at least 1, got {depth_bins!r}")
    part = monitor.particles
    faces = monitor.faces
    ms = monitor.ms
    t_all = np.asarray(monitor.times)
    theta = np.stack(monitor.particle_theta)  # (calls, n)
    expo = np.stack(monitor.particle_exposure)
    vol_vox = float(np.prod(ms.voxel_size))
    count = monitor._pcount[1:].astype(float)
    volume = count * vol_vox
    area = monitor._parea[1:].copy()
    keep = (count > 0) & (area > 0)
    if not np.any(keep):
        raise InvalidInputError("no labelled particle has an interface face in the run")
    ids = np.arange(1, part.n + 1)[keep]
    # particle centroid along the thickness axis → distance from the separator
    t_ax = faces.thickness_axis
    n_t = ms.shape[t_ax]
    h_t = ms.voxel_size[t_ax]
    coord = np.indices(ms.shape, sparse=True)[t_ax]
    lab = monitor._plab
    pos = np.broadcast_to(coord, ms.shape).reshape(-1).astype(float)
    csum = np.bincount(lab, pos, part.n + 1)[1:]
    centre = csum / np.maximum(monitor._pcount[1:], 1)
    depth = (n_t - centre - 0.5) * h_t
    req = list(monitor.map_times) if times is None else sorted(float(t) for t in times)
    if not req or req[-1] < t_all[-1]:
        req.append(float(t_all[-1]))
    sel = [int(min(np.searchsorted(t_all, t, side="left"), t_all.size - 1)) for t in req]
    sel = sorted(set(sel))
    n_li = theta * (count * vol_vox * c_max)  # mol per particle, (calls, n)
    soc = theta[sel][:, keep]
    cur = np.full((len(sel), int(keep.sum())), np.nan)
    if len(monitor.particle_current) == t_all.size:  # the model's interface current
        pc = np.stack(monitor.particle_current)
        cur = pc[sel][:, keep] / area[keep]
    for r, i in enumerate(sel):
        if i > 0 and not np.isfinite(cur[r]).all():
            dt = t_all[i] - t_all[i - 1]
            if dt > 0:
                cur[r] = FARADAY * (n_li[i] - n_li[i - 1])[keep] / dt / area[keep]
    ex = expo[sel][:, keep]
    vol_k, area_k, depth_k = volume[keep], area[keep], depth[keep]
    edges = np.linspace(0.0, n_t * h_t, int(depth_bins) + 1)
    b = np.clip(np.digitize(depth_k, edges) - 1, 0, int(depth_bins) - 1)

    def covs(y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        whole = np.array([weighted_cov(row, w) for row in y])
        prof = np.full((y.shape[0], int(depth_bins)), np.nan)
        for j in range(int(depth_bins)):
            m = b == j
            if np.any(m):
                prof[:, j] = [weighted_cov(row[m], w[m]) for row in y]
        return whole, prof

    cs, cs_d = covs(soc, vol_k)
    cj, cj_d = covs(cur, area_k)
    ce, ce_d = covs(ex, area_k)
    return HeterogeneityResult(
        times_s=t_all[sel],
        particle_id=ids,
        volume_m3=vol_k,
        interface_area_m2=area_k,
        depth_m=depth_k,
        soc=soc,
        current_density_A_per_m2=cur,
        plating_exposure_V_s=ex,
        index=cs.copy(),
        cov_soc=cs,
        cov_current_density=cj,
        cov_plating_exposure=ce,
        depth_bins_m=edges,
        cov_soc_vs_depth=cs_d,
        cov_current_density_vs_depth=cj_d,
        cov_plating_exposure_vs_depth=ce_d,
        provenance=Provenance(
            "microbat.degradation.aging_heterogeneity",
            parameters={"c_max": c_max, "times": req, "depth_bins": int(depth_bins)},
            inputs={"shape": list(ms.shape), "particles": int(part.n)},
        ),
    )
