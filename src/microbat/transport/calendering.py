"""Calendering: compress a synthetic electrode and tabulate energy against transport.

The model
---------
A calendering step reduces the electrode thickness ``L`` to ``(1 − c) L`` for a
compression ``c`` while the in-plane extent stays fixed (the coating is held by
the current collector and its neighbours). Starting from a :class:`~microbat.synth.Packing`
(the particle list, not the voxels):

1. **Particle centres move affinely** along the thickness axis:
   ``x_t ← (1 − c) x_t`` (current collector at ``x_t = 0`` stays put); in-plane
   coordinates are unchanged.
2. **Particles flatten** by a volume-preserving affine map
   ``F = diag(λ)`` with ``λ_t = (1 − c)^β`` along the thickness and
   ``λ_p = (1 − c)^(−β/2)`` in-plane, applied to each particle's shape matrix
   ``A ← F^{-T} A F^{-1}``. ``β = 0`` keeps particles rigid (they only
   interpenetrate more); ``β = 1`` deforms every particle like the coating
   itself. The default ``β = 0.5`` splits the strain between flattening and
   interpenetration, in the range seen in DEM calendering studies where
   secondary NMC particles both rearrange and deform plastically.
3. **Active-material volume is conserved.** Flattening alone conserves each
   particle's volume, but the union of overlapping particles loses the volume of
   new overlaps. A common scale factor ``s`` on all semi-axes is found by
   bisection so that the voxelized active volume equals the uncompressed one (to
   one voxel per bisection tolerance): overlap volume is redistributed as a
   uniform swelling, which mimics material squeezed out of contacts.
4. **Carbon-binder volume is conserved**: it is re-placed in the compressed pore
   space with :func:`~microbat.synth.add_carbon_binder` (neck model) at the
   fraction ``φ_cbd / (1 − c)`` of the new, smaller volume.

The voxel size is kept, so the compressed image has ``round((1 − c) n_t)``
voxels along the thickness.

What is tabulated
-----------------
For each compression: porosity, the pore tortuosity factor along each axis and
the effective ionic conductivity ``κ_eff = κ ε/τ`` (through-plane), the effective
electronic conductivity of the solid network (active + carbon-binder, steady
conduction solve), the active/electrolyte specific interface area (m⁻¹), and the
volumetric capacity ``Q_v = φ_active · q_active`` (mAh/cm³ of electrode) with
``q_active`` the volumetric capacity of the active material (default NMC811:
ρ = 4.75 g/cm³ × 200 mAh/g = 950 mAh/cm³ = 3.42e9 C/m³).

References
----------
.. [1] C. Sangrós Giménez et al., "Numerical simulation of the behavior of
   lithium-ion battery electrodes during the calendaring process via the discrete
   element method", Powder Technology 349, 1–11 (2019).
.. [2] H. Zheng et al., "Calendering effects on the physical and electrochemical
   properties of Li[Ni1/3Mn1/3Co1/3]O2 cathode", J. Power Sources 208, 52–57 (2012).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from microbat.core.errors import InvalidInputError
from microbat.core.microstructure import Microstructure
from microbat.core.results import Provenance, Result

__all__ = ["CalenderingResult", "calender", "calendering_study", "particles_from_image"]

#: Volumetric capacity of NMC811 active material, C/m³ (4.75 g/cm³ × 200 mAh/g).
NMC811_CAPACITY_C_PER_M3 = 4.75e6 * 0.200 * 3600.0  # g/m³ × Ah/g × C/Ah


def particles_from_image(
    ms: Microstructure,
    *,
    phase: str = "active",
    min_distance: float | None = None,
) -> Any:
    """Approximate the active phase of an image by a list of ellipsoidal particles.

    Lets :func:`calender` compress a segmented tomogram (which has no particle
    list): particles are separated by a marker-controlled watershed of the
    Euclidean distance map, and each region is replaced by the ellipsoid with the
    same centroid, volume and second-moment tensor (for a uniform ellipsoid the
    covariance along a principal axis of semi-axis ``a`` is ``a²/5``).

    Parameters
    ----------
    ms : Microstructure
        A 3D labelled image.
    phase : str, default "active"
        Phase names or roles that form the particles.
    min_distance : float, optional
        Smallest distance between two particle centres in metres (default: twice
        the median of the distance-map maxima, i.e. about one particle radius).

    Returns
    -------
    microbat.synth.Packing
        The particle list and its rendering; ``coordination_number`` and
        ``max_penetration`` are ``nan`` (not measured for extracted particles).

    Notes
    -----
    The rendered ellipsoids do not reproduce the image voxel for voxel (concave
    particles become convex, necks are smoothed); compare the ``active_fraction``
    of the result with the image's. Cost: one distance transform and one
    watershed, O(N log N).
    """
    from scipy import ndimage as ndi
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    from microbat.synth import Packing, render_particles

    if ms.ndim != 3:
        raise InvalidInputError("particles_from_image needs a 3D image")
    mask = ms.mask(phase)
    if not mask.any():
        raise InvalidInputError(f"phase {phase!r} has no voxel; nothing to extract")
    h = np.asarray(ms.voxel_size, float)
    dist = ndi.distance_transform_edt(mask, sampling=h)
    if min_distance is None:
        peaks = dist[(dist == ndi.maximum_filter(dist, size=3)) & mask]
        min_distance = float(np.median(peaks)) if peaks.size else float(h.min())
    md = max(1, round(min_distance / h.min()))
    coords = peak_local_max(
        dist, min_distance=md, labels=mask.astype(np.int32), exclude_border=False
    )
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(coords.T)] = np.arange(1, len(coords) + 1)
    regions = watershed(-dist, markers, mask=mask)
    n = int(regions.max())
    idx = np.arange(1, n + 1)
    grids = np.indices(mask.shape, dtype=float)
    vol = ndi.sum_labels(mask, regions, idx).astype(float)
    keep = vol > 0
    idx, vol = idx[keep], vol[keep]
    centres = np.stack([ndi.mean(grids[k] + 0.5, regions, idx) * h[k] for k in range(3)], axis=1)
    cov = np.empty((len(idx), 3, 3))
    for i in range(3):
        for j in range(i, 3):
            m = ndi.mean((grids[i] + 0.5) * h[i] * (grids[j] + 0.5) * h[j], regions, idx)
            cov[:, i, j] = cov[:, j, i] = m - centres[:, i] * centres[:, j]
    # a voxel is a cube: add its own variance h²/12 so one-voxel particles are not flat
    evals, evecs = np.linalg.eigh(cov + np.diag(h**2 / 12.0)[None])
    semi = np.sqrt(5.0 * np.maximum(evals, 1e-30))
    v_ell = 4.0 / 3.0 * np.pi * np.prod(semi, axis=1)
    semi *= np.cbrt(vol * np.prod(h) / v_ell)[:, None]
    periodic = (False, False, False)
    ids = render_particles(
        ms.shape, centres, semi, evecs, voxel_size=ms.voxel_size, periodic=periodic
    )
    active = ids > 0
    prov = Provenance(
        "microbat.transport.particles_from_image",
        {"phase": phase, "min_distance": min_distance},
    )
    return Packing(
        labels=active,
        particle_ids=ids,
        centres=centres,
        radii=np.cbrt(np.prod(semi, axis=1)),
        semi_axes=semi,
        rotations=evecs,
        voxel_size=tuple(float(v) for v in ms.voxel_size),
        periodic=periodic,
        thickness_axis=ms.thickness_axis,
        target_fraction=float(mask.mean()),
        active_fraction=float(active.mean()),
        scale=1.0,
        coordination_number=float("nan"),
        n_clusters=int(ndi.label(active)[1]),
        max_penetration=float("nan"),
        provenance=prov,
    )


def calender(
    packing: Any,
    compression: float,
    *,
    cbd_fraction: float | None = None,
    flattening: float = 0.5,
    seed: int | None = None,
) -> Microstructure:
    """Compress a packing along its thickness and return the new microstructure.

    Parameters
    ----------
    packing : microbat.synth.Packing or Microstructure
        The uncompressed particle packing (keep it from :func:`microbat.synth.packing`),
        or a labelled image whose active phase is first approximated by ellipsoids
        (:func:`particles_from_image`; its carbon-binder fraction is then used when
        ``cbd_fraction`` is None).
    compression : float
        Relative thickness reduction ``c`` in [0, 0.7]: the new thickness is
        ``(1 − c)`` times the old.
    cbd_fraction : float, optional
        Carbon-binder volume fraction of the *uncompressed* electrode; its volume is
        conserved and re-placed at necks in the compressed pore space (default 0
        for a packing, the image's carbon-binder fraction for a microstructure).
    flattening : float, default 0.5
        Share ``β`` of the thickness strain taken by particle flattening
        (0 rigid particles, 1 fully affine); see the module notes.
    seed : int, optional
        Seed of the carbon-binder placement roughness (the rest is deterministic).

    Returns
    -------
    Microstructure
        Phases ``pore=0, cbd=1, active=2``; ``metadata["calendering"]`` holds the
        compression, flattening, swelling scale and achieved fractions.

    Raises
    ------
    InvalidInputError
        Compression outside [0, 0.7], flattening outside [0, 1], or a compression
        that leaves less than 2 % porosity (the solid would no longer fit).

    Examples
    --------
    >>> from microbat.synth import packing
    >>> pk = packing((40, 32, 32), voxel_size=0.5e-6, active_fraction=0.4,
    ...              mean_radius=2.5e-6, seed=0)
    >>> ms = calender(pk, 0.2, cbd_fraction=0.05, seed=0)
    >>> ms.shape[0]
    32
    """
    from microbat.synth import add_carbon_binder, render_particles

    n_active0: int | None = None
    if isinstance(packing, Microstructure):
        if cbd_fraction is None:
            cbd = packing.phases.with_role("carbon_binder")
            cbd_fraction = packing.fraction(",".join(p.name for p in cbd)) if cbd else 0.0
        n_active0 = int(np.count_nonzero(packing.mask("active")))  # the image's, not the fit's
        packing = particles_from_image(packing)
    cbd_fraction = float(cbd_fraction or 0.0)
    c = float(compression)
    beta = float(flattening)
    if not 0.0 <= c <= 0.7:
        raise InvalidInputError(f"compression must lie in [0, 0.7], got {compression!r}")
    if not 0.0 <= beta <= 1.0:
        raise InvalidInputError(f"flattening must lie in [0, 1], got {flattening!r}")
    t = int(packing.thickness_axis)
    shape0 = tuple(int(n) for n in packing.shape)
    h = tuple(float(v) for v in packing.voxel_size)
    if n_active0 is None:
        n_active0 = int(np.count_nonzero(packing.labels))
    shape1 = list(shape0)
    shape1[t] = max(1, round((1.0 - c) * shape0[t]))
    vol_ratio = shape1[t] / shape0[t]
    solid_after = (n_active0 / np.prod(shape0) + cbd_fraction) / vol_ratio
    if solid_after > 0.98:
        raise InvalidInputError(
            f"a compression of {c:.0%} would leave {100 * (1 - solid_after):.1f} % porosity "
            "(solid volume is conserved); use a smaller compression or a looser electrode"
        )

    # 1. centres move affinely along the thickness
    centres = np.array(packing.centres, dtype=float)
    centres[:, t] *= vol_ratio
    # 2. volume-preserving flattening of each shape matrix: A' = F^-T A F^-1
    lam = np.full(3, vol_ratio ** (-beta / 2.0))
    lam[t] = vol_ratio**beta
    finv = np.diag(1.0 / lam)
    amat = packing.shape_matrices()
    amat_new = np.einsum("ij,njk,kl->nil", finv, amat, finv)
    evals, evecs = np.linalg.eigh(amat_new)
    semi = 1.0 / np.sqrt(evals)
    periodic = tuple(bool(p) for p in packing.periodic)

    # 3. bisection on a common swelling scale to conserve active volume
    def count(scale: float) -> tuple[int, np.ndarray]:
        ids = render_particles(
            shape1, centres, semi, evecs, voxel_size=h, periodic=periodic, scale=scale
        )
        return int(np.count_nonzero(ids)), ids

    lo, hi = 1.0, 1.0
    n_lo, ids_lo = count(lo)
    if n_lo >= n_active0:
        best_scale, ids = lo, ids_lo
    else:
        n_hi = n_lo
        while n_hi < n_active0:
            hi *= 1.05
            n_hi, ids = count(hi)
            if hi > 2.0:
                raise InvalidInputError(
                    "calendering could not conserve the active volume (particles would need "
                    "to swell by more than 2x); use a smaller compression"
                )
        for _ in range(30):
            mid = 0.5 * (lo + hi)
            n_mid, ids_mid = count(mid)
            if n_mid < n_active0:
                lo = mid
            else:
                hi, ids = mid, ids_mid
            if hi - lo < 1e-4:
                break
        best_scale = hi
    active = ids > 0

    # 4. carbon-binder volume conserved, re-placed at the necks
    pk1 = dataclasses.replace(
        packing,
        labels=active,
        particle_ids=ids,
        centres=centres,
        radii=np.cbrt(np.prod(semi * best_scale, axis=1)),
        semi_axes=semi * best_scale,
        rotations=evecs,
        active_fraction=float(active.mean()),
        scale=best_scale,
    )
    n_vox1 = int(np.prod(shape1))
    cbd1 = cbd_fraction * np.prod(shape0) / n_vox1
    if cbd1 > 0:
        ms = add_carbon_binder(pk1, fraction=min(cbd1, float(1 - active.mean()) - 1e-9), seed=seed)
    else:
        lab = np.where(active, 2, 0).astype(np.uint8)
        ms = Microstructure(
            lab, h, "pore=0,cbd=1,active=2", thickness_axis=t, allow_empty_phases=True
        )
    meta = dict(ms.metadata)
    meta["calendering"] = {
        "compression": c,
        "flattening": beta,
        "swelling_scale": best_scale,
        "thickness_voxels": [shape0[t], shape1[t]],
        "active_voxels": [n_active0, int(active.sum())],
    }
    return ms.with_labels(np.asarray(ms.labels), metadata=meta)


@dataclass(frozen=True)
class CalenderingResult(Result):
    """The calendering trade-off table (:func:`calendering_study`).

    Attributes
    ----------
    compression : ndarray
        Relative thickness reduction of each step.
    thickness_axis : int
        Axis through the thickness (the through-plane direction).
    thickness_m : ndarray
        Electrode thickness (m).
    porosity : ndarray
        Electrolyte volume fraction.
    active_fraction, cbd_fraction : ndarray
        Solid volume fractions.
    tau : ndarray, shape (n, 3)
        Pore tortuosity factor per axis (``inf`` where not percolating).
    kappa_eff_S_per_m : ndarray
        Through-plane effective ionic conductivity ``κ ε / τ`` (S/m).
    sigma_eff_S_per_m : ndarray
        Through-plane effective electronic conductivity of the solid network (S/m).
    specific_area_per_m : ndarray
        Active/electrolyte interface area per electrode volume (m⁻¹).
    volumetric_capacity_mAh_per_cm3 : ndarray
        ``φ_active q_active`` in mAh per cm³ of electrode.
    areal_capacity_mAh_per_cm2 : ndarray
        Volumetric capacity × thickness (constant when volume is conserved).
    bruggeman_tau : ndarray
        ``ε^(−0.5)`` for comparison with ``tau`` through-plane.
    provenance : Provenance
        How it was made.
    """

    compression: np.ndarray
    thickness_axis: int
    thickness_m: np.ndarray
    porosity: np.ndarray
    active_fraction: np.ndarray
    cbd_fraction: np.ndarray
    tau: np.ndarray
    kappa_eff_S_per_m: np.ndarray
    sigma_eff_S_per_m: np.ndarray
    specific_area_per_m: np.ndarray
    volumetric_capacity_mAh_per_cm3: np.ndarray
    areal_capacity_mAh_per_cm2: np.ndarray
    bruggeman_tau: np.ndarray
    provenance: Provenance
    _json_arrays = (
        "compression",
        "thickness_m",
        "porosity",
        "active_fraction",
        "cbd_fraction",
        "tau",
        "kappa_eff_S_per_m",
        "sigma_eff_S_per_m",
        "specific_area_per_m",
        "volumetric_capacity_mAh_per_cm3",
        "areal_capacity_mAh_per_cm2",
        "bruggeman_tau",
    )

    def rows(self) -> list[dict[str, float]]:
        """The table as one dictionary per compression step."""
        out = []
        for i, c in enumerate(self.compression):
            out.append(
                {
                    "compression": float(c),
                    "thickness_um": float(self.thickness_m[i] * 1e6),
                    "porosity": float(self.porosity[i]),
                    "tau_through": float(self.tau[i][self.thickness_axis]),
                    "bruggeman_tau": float(self.bruggeman_tau[i]),
                    "kappa_eff_S_per_m": float(self.kappa_eff_S_per_m[i]),
                    "sigma_eff_S_per_m": float(self.sigma_eff_S_per_m[i]),
                    "a_s_per_um": float(self.specific_area_per_m[i] * 1e-6),
                    "Qv_mAh_per_cm3": float(self.volumetric_capacity_mAh_per_cm3[i]),
                }
            )
        return out

    def plot(self, path: str | Path | None = None) -> Any:
        """Plot volumetric capacity against ionic and electronic transport.

        Parameters
        ----------
        path : path-like, optional
            Write the figure (PNG) atomically to this path.

        Returns
        -------
        matplotlib.figure.Figure
        """
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        from microbat.core.atomic import atomic_path

        fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
        c = 100 * self.compression
        ax = axes[0]
        ax.plot(c, self.porosity, "o-", label="porosity")
        ax.plot(c, self.active_fraction, "s-", label="active fraction")
        ax.set_xlabel("compression (%)")
        ax.set_ylabel("volume fraction")
        ax.legend(loc="upper right")
        ax = axes[1]
        ax.plot(c, self.tau[:, self.thickness_axis], "o-", label="τ through-plane (computed)")
        ax.plot(c, self.bruggeman_tau, "--", label="Bruggeman ε^-0.5")
        ax.set_xlabel("compression (%)")
        ax.set_ylabel("pore tortuosity factor")
        ax.legend(loc="upper left")
        ax = axes[2]
        ax.plot(
            self.volumetric_capacity_mAh_per_cm3, self.kappa_eff_S_per_m, "o-", label="ionic κ_eff"
        )
        ax2 = ax.twinx()
        ax2.plot(
            self.volumetric_capacity_mAh_per_cm3,
            self.sigma_eff_S_per_m,
            "s-",
            color="C3",
            label="electronic σ_eff",
        )
        ax.set_xlabel("volumetric capacity (mAh/cm³)")
        ax.set_ylabel("κ_eff (S/m)")
        ax2.set_ylabel("σ_eff (S/m)", color="C3")
        ax.set_title("energy vs transport")
        fig.tight_layout()
        if path is not None:
            with atomic_path(path) as tmp:
                fig.savefig(tmp, dpi=110, format="png")
        return fig


def calendering_study(
    source: Sequence[int] | Microstructure | Any = (80, 64, 64),
    *,
    voxel_size: float = 0.5e-6,
    compressions: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.4),
    active_fraction: float = 0.38,
    cbd_fraction: float = 0.06,
    mean_radius: float = 3e-6,
    radius_cv: float = 0.3,
    flattening: float = 0.5,
    electrolyte_conductivity: float = 1.0,
    conductivities: dict[str, float] | None = None,
    active_capacity: float = NMC811_CAPACITY_C_PER_M3,
    seed: int | None = 0,
) -> CalenderingResult:
    """Calender an electrode step by step and tabulate the trade-off.

    Parameters
    ----------
    source : sequence of int, Microstructure or Packing, default (80, 64, 64)
        A shape in voxels (axis 0 through the thickness) to generate a loose
        synthetic coating from the parameters below, a labelled image (its active
        phase is fitted with ellipsoids, see :func:`particles_from_image`, and its
        carbon-binder fraction is kept), or a :class:`~microbat.synth.Packing`.
    voxel_size : float, default 0.5e-6
        Voxel edge in metres (generated coatings only).
    compressions : sequence of float
        Relative thickness reductions to evaluate (0 = as coated).
    active_fraction, cbd_fraction : float
        Solid fractions of a generated uncompressed coating (defaults: a dried,
        uncalendered NMC coating with ~56 % porosity); ``cbd_fraction`` is also used
        for a packing.
    mean_radius, radius_cv : float
        Particle size distribution of a generated coating (m, log-normal).
    flattening : float, default 0.5
        Share of the strain taken by particle flattening (see :func:`calender`).
    electrolyte_conductivity : float, default 1.0
        Bulk electrolyte conductivity κ (S/m) for ``κ_eff = κ ε/τ``.
    conductivities : dict, optional
        Electronic conductivities of the solid phases (S/m); default
        ``{"active": 0.1, "cbd": 50.0}``.
    active_capacity : float
        Volumetric capacity of the active material in C/m³.
    seed : int, optional
        Seed of the packing and carbon-binder placement.

    Returns
    -------
    CalenderingResult
        One row per compression.
    """
    from microbat.imaging.metrics import specific_surface_area
    from microbat.synth import packing
    from microbat.transport.conduction import conductivity
    from microbat.transport.diffusion import tortuosity

    t0 = time.perf_counter()
    sig = dict(conductivities or {"active": 0.1, "cbd": 50.0})
    if len(compressions) == 0:
        raise InvalidInputError("give at least one compression (e.g. 0, 0.1, 0.2)")
    cbd_arg: float | None = cbd_fraction
    if isinstance(source, Microstructure):
        pk: Any = source
        cbd_arg = None  # keep the image's carbon-binder fraction
        shape = list(source.shape)
    elif hasattr(source, "particle_ids"):
        pk = source
        shape = list(source.shape)
    else:
        shape = [int(n) for n in source]
        pk = packing(
            shape,
            voxel_size=voxel_size,
            active_fraction=active_fraction,
            mean_radius=mean_radius,
            radius_cv=radius_cv,
            seed=seed,
        )
    rows: dict[str, list[Any]] = {
        k: []
        for k in ("c", "L", "eps", "act", "cbd", "tau", "kappa", "sigma", "a", "qv", "qa", "brug")
    }
    for c in compressions:
        ms = calender(pk, c, cbd_fraction=cbd_arg, flattening=flattening, seed=seed)
        t_axis = ms.thickness_axis
        tau = tortuosity(ms, phase="electrolyte", axis="all")
        taus = np.array([np.inf if t is None else float(t) for t in tau.tau], float)
        cond = conductivity(ms, conductivities=sig, axis=ms.thickness_axis)
        eps = ms.fraction("electrolyte")
        rows["c"].append(float(c))
        rows["L"].append(ms.thickness)
        rows["eps"].append(eps)
        rows["act"].append(ms.fraction("active"))
        has_cbd = bool(ms.phases.with_role("carbon_binder"))
        rows["cbd"].append(ms.fraction("carbon_binder") if has_cbd else 0.0)
        rows["tau"].append(taus)
        rows["kappa"].append(electrolyte_conductivity * eps / taus[t_axis])
        rows["sigma"].append(float(_scalar_sigma(cond, t_axis)))
        rows["a"].append(specific_surface_area(ms, "active", "electrolyte"))
        qv = rows["act"][-1] * active_capacity / 3.6 * 1e-6  # C/m³ → mAh/cm³
        rows["qv"].append(qv)
        rows["qa"].append(qv * ms.thickness * 100.0)  # mAh/cm³ × cm
        rows["brug"].append(eps**-0.5)
    prov = Provenance(
        "microbat.transport.calendering_study",
        {
            "shape": shape,
            "source": type(source).__name__,
            "compressions": list(compressions),
            "active_fraction": active_fraction,
            "cbd_fraction": cbd_fraction,
            "mean_radius": mean_radius,
            "radius_cv": radius_cv,
            "flattening": flattening,
            "electrolyte_conductivity": electrolyte_conductivity,
            "conductivities": sig,
            "active_capacity_C_per_m3": active_capacity,
        },
        seed=seed,
        wall_time_s=time.perf_counter() - t0,
    )
    a = {k: np.asarray(v, float) for k, v in rows.items()}
    return CalenderingResult(
        a["c"],
        int(t_axis),
        a["L"],
        a["eps"],
        a["act"],
        a["cbd"],
        a["tau"],
        a["kappa"],
        a["sigma"],
        a["a"],
        a["qv"],
        a["qa"],
        a["brug"],
        prov,
    )


def _scalar_sigma(cond: Any, axis: int) -> float:
    val = cond.sigma_eff
    arr = np.atleast_1d(np.asarray(val, dtype=float))
    return float(arr[axis] if arr.size == 3 else arr[0])
