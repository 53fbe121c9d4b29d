r"""Diffusion-induced stress on the real microstructure, and which particles crack.

:func:`diffusion_stress` solves small-strain linear elasticity on the solid voxels of
a :class:`~microbat.core.microstructure.Microstructure` (active material, carbon-binder
and solid electrolyte, each with its own E and ν; pores empty, their surfaces
traction-free) loaded by the chemical eigenstrain of the active phase,

.. math::

    ε^* = \frac{Ω}{3}\,(c - c_\mathrm{ref})\, I,

with the voxel solver of :mod:`microbat.fv.elasticity` (trilinear hexahedra,
smoothed-aggregation AMG with the rigid-body modes, CG). It returns the stress tensor
per voxel, von Mises, maximum principal and hydrostatic stress, the strain energy,
per particle (:func:`~microbat.degradation.particles.label_particles`) the peak and
99th-percentile tensile stress and the strain energy, and the Griffith check of
:mod:`microbat.degradation.fracture` with a per-voxel fracture map ``K_I / K_IC``.

Boundary conditions (thickness axis ``t`` of the microstructure):

* ``boundary`` — the current-collector face (index 0 of ``t``): ``"clamped"``
  (default: bonded to a rigid foil) or ``"free"``;
* ``separator`` — the last face of ``t``: ``"free"`` (default), ``"roller"`` (no
  normal displacement) or ``"clamped"``;
* ``lateral`` — the four other faces: ``"free"`` (default), ``"roller"`` (the
  periodic-like constraint of a volume cut from a larger electrode) or ``"clamped"``.

Reference concentration ``c_ref`` (the stress-free state): ``"mean"`` (default) —
the mean over the active voxels of the loaded field: the electrode is taken
stress-free at its current average lithiation, so only the heterogeneity of lithium
(within and between particles) is loaded; ``"initial"`` — the concentration at the
start of the discharge (resolved run or closed form), which adds the constrained
swelling of the average lithiation against the collector and the binder; or a
number in mol/m³.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from microbat.core.errors import InvalidInputError
from microbat.core.microstructure import Microstructure
from microbat.core.results import Provenance, Result, to_jsonable
from microbat.degradation.fracture import (
    ScreeningResult,
    critical_c_rate_summary,
    flaw_sizes,
    screen_particles,
    stress_intensity,
)
from microbat.degradation.loads import ConcentrationLoad, galvanostatic_load
from microbat.degradation.parameters import MechanicsParameters
from microbat.degradation.particles import Particles, label_particles, particle_percentile

__all__ = ["StressResult", "diffusion_stress", "stress_at_c_rate"]

FaceKind = Literal["free", "clamped", "roller"]

#: Roles that carry stress, in material-index order.
SOLID_ROLES = ("active", "carbon_binder", "solid_electrolyte")


@dataclass(frozen=True)
class StressResult(Result):
    """Stresses, energies and the fracture check of one load case.

    Fields are on the image grid (axis order of the microstructure), float32, NaN
    outside the solid (outside the active phase for ``concentration`` and
    ``fracture_ratio``).

    Attributes
    ----------
    stress : ndarray (6, n0, n1, n2)
        Cauchy stress in Pa, components ``00, 11, 22, 12, 02, 01`` in array-axis order
        (``sigma_zz, sigma_yy, sigma_xx, sigma_xy, sigma_xz, sigma_yz`` in the
        ``[z, y, x]`` convention of the files).
    von_mises, max_principal, hydrostatic : ndarray
        Pa.
    strain_energy_density : ndarray
        J/m³ (exact element integral / voxel volume).
    concentration : ndarray
        The load, mol/m³.
    fracture_ratio : ndarray
        ``Y max(σ₁, 0) √(π a) / K_IC`` with the flaw ``a`` of the voxel's particle.
    particle_labels : ndarray of int32
        Particle number per voxel (0 elsewhere).
    particles : dict of ndarray
        Per particle (index ``k − 1`` for particle ``k``): ``id``, ``volume_m3``,
        ``radius_m``, ``flaw_m``, ``peak_tensile_Pa``, ``p99_tensile_Pa``,
        ``strain_energy_J``, ``stress_intensity_Pa_sqrt_m``,
        ``energy_release_rate_J_per_m2``, ``cracked``, ``critical_c_rate`` (closed
        form) and, for the closed-form load, ``critical_c_rate_fe`` (the solved
        field scaled linearly in the rate).
    summary : dict
        ``max_principal_stress_Pa``, ``von_mises_p99_Pa``, ``particles``,
        ``cracked_fraction``, ``cracked_volume_fraction``, ``critical_c_rate``
        (summary), per-phase statistics, the energy check.
    solver : dict
        Iterations, residual, unknowns, timings, floating clusters.
    load : dict
        Source of the concentration, ``c_ref`` and how it was chosen.
    boundary : dict
        Condition per face.
    screening : ScreeningResult or None
        The closed-form screening of the same particles.
    voxel_size : tuple of float
    parameters : dict
    provenance : Provenance
    """

    stress: np.ndarray
    von_mises: np.ndarray
    max_principal: np.ndarray
    hydrostatic: np.ndarray
    strain_energy_density: np.ndarray
    concentration: np.ndarray
    fracture_ratio: np.ndarray
    particle_labels: np.ndarray
    particles: dict[str, np.ndarray]
    summary: dict[str, Any]
    solver: dict[str, Any]
    load: dict[str, Any]
    boundary: dict[str, str]
    screening: ScreeningResult | None
    voxel_size: tuple[float, ...]
    parameters: dict[str, Any] = field(default_factory=dict)
    provenance: Provenance = field(default_factory=lambda: Provenance("diffusion_stress"))

    _json_arrays: ClassVar[tuple[str, ...]] = ()

    # ------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        """The summary, solver and load records (fields summarised, per-particle table left out)."""
        out = dict(self.summary)
        out["solver"] = self.solver
        out["load"] = self.load
        out["boundary"] = self.boundary
        out["parameters"] = self.parameters
        out["provenance"] = self.provenance.to_dict()
        if self.screening is not None:
            out["screening"] = {
                "c_rates": self.screening.c_rates.tolist(),
                "cracked_fraction": self.screening.cracked_fraction.tolist(),
                "cracked_volume_fraction": self.screening.cracked_volume_fraction.tolist(),
                "time": self.screening.time,
                "direction": self.screening.direction,
            }
        return to_jsonable(out)

    # ------------------------------------------------------------ fields
    def field_arrays(self) -> dict[str, np.ndarray]:
        """Every per-voxel field by its file name (``sigma_xx`` … in Pa, NaN outside)."""
        s = self.stress
        return {
            "sigma_zz": s[0],
            "sigma_yy": s[1],
            "sigma_xx": s[2],
            "sigma_xy": s[3],
            "sigma_xz": s[4],
            "sigma_yz": s[5],
            "von_mises": self.von_mises,
            "max_principal": self.max_principal,
            "hydrostatic": self.hydrostatic,
            "strain_energy_density": self.strain_energy_density,
            "concentration": self.concentration,
            "fracture_ratio": self.fracture_ratio,
            "particle": self.particle_labels,
        }

    def save(
        self, out_dir: str | Path, *, vtk: bool = True, figures: bool = True
    ) -> dict[str, Path]:
        """Write the outputs into ``out_dir``, each file atomically.

        Files: ``fields.npz`` (every field of :meth:`field_arrays`, float32 in Pa,
        NaN outside the solid), ``stress.vti`` (the same as VTK cell data for
        ParaView), ``particles.csv`` (one row per particle), ``stress_slice.png`` (the
        maximum principal stress on the middle plane across the thickness axis),
        ``peak_stress_histogram.png`` and ``result.json`` (the summary).

        Returns
        -------
        dict of str to Path
        """
        import json

        from microbat.core.atomic import atomic_path, atomic_write_text

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {}
        arrays = self.field_arrays()
        p = out / "fields.npz"
        with atomic_path(p) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **arrays)
        paths["fields"] = p
        if vtk:
            from microbat.io.vtk import write_vti_fields

            paths["vtk"] = write_vti_fields(
                arrays,
                out / "stress.vti",
                voxel_size=self.voxel_size,
                metadata={"units": "Pa (stress), J/m3 (energy), mol/m3 (concentration)"},
            )
        paths["particles"] = self._write_csv(out / "particles.csv")
        if figures:
            paths["slice"] = self._slice_png(out / "stress_slice.png")
            paths["histogram"] = self._histogram_png(out / "peak_stress_histogram.png")
        rj = out / "result.json"
        atomic_write_text(rj, json.dumps(self.to_dict(), indent=2, allow_nan=False))
        paths["result"] = rj
        return paths

    def _write_csv(self, path: Path) -> Path:
        from microbat.core.atomic import atomic_path

        cols = list(self.particles)
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(cols)
            n = len(self.particles["id"])
            for i in range(n):
                row = []
                for c in cols:
                    v = self.particles[c][i]
                    if isinstance(v, np.bool_ | bool):
                        row.append("true" if v else "false")
                    elif isinstance(v, np.integer | int):
                        row.append(str(int(v)))
                    else:
                        fv = float(v)
                        row.append(f"{fv:.6g}" if math.isfinite(fv) else "")
                w.writerow(row)
        return path

    def _slice_png(self, path: Path) -> Path:
        from matplotlib.figure import Figure

        from microbat.core.atomic import atomic_path

        ax_t = int(self.load.get("thickness_axis", 0))
        field_ = self.max_principal
        across = next(a for a in range(3) if a != ax_t)
        sl = np.take(field_, field_.shape[across] // 2, axis=across)
        t = ax_t if ax_t < across else ax_t - 1
        sl = np.moveaxis(sl, t, 0) / 1e6
        fig = Figure(figsize=(5.6, 4.6))
        ax = fig.subplots()
        vals = sl[np.isfinite(sl)]
        lim = float(np.percentile(np.abs(vals), 99)) if vals.size else 1.0
        cmap = __import__("matplotlib").colormaps["RdBu_r"].with_extremes(bad="#d0d0d0")
        im = ax.imshow(np.ma.masked_invalid(sl), cmap=cmap, vmin=-lim, vmax=lim,
                       interpolation="nearest")  # fmt: skip
        ax.set_xlabel("in-plane position [voxels]")
        ax.set_ylabel("thickness axis [voxels] (collector at 0)")
        ax.set_title("maximum principal stress, mid-plane", fontsize=10)
        fig.colorbar(im, ax=ax, shrink=0.85, label="σ₁ [MPa] (grey: pore)")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
        return path

    def _histogram_png(self, path: Path) -> Path:
        from matplotlib.figure import Figure

        from microbat.core.atomic import atomic_path

        fig = Figure(figsize=(5.6, 3.8))
        ax = fig.subplots()
        key = "p99_tensile_Pa"
        v = np.asarray(self.particles[key], float) / 1e6
        v = v[np.isfinite(v)]
        if v.size:
            ax.hist(v, bins=min(40, max(5, v.size // 3)), color="#4c72b0")
        crit = self.summary.get("critical_stress_median_Pa")
        if crit:
            ax.axvline(crit / 1e6, color="#c44e52", ls="--",
                       label="K_IC / (Y √(π a)), median a")  # fmt: skip
            ax.legend(fontsize=8, loc="upper right")
        ax.set_xlabel("per-particle 99th-percentile tensile stress [MPa]")
        ax.set_ylabel("particles")
        fig.subplots_adjust(bottom=0.15, left=0.12, right=0.97, top=0.95)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
        return path


# =================================================================== solve
def _faces(
    thickness_axis: int, boundary: str, separator: str, lateral: str
) -> dict[tuple[int, int], str]:
    for name, v, allowed in (
        ("boundary", boundary, ("free", "clamped")),
        ("separator", separator, ("free", "roller", "clamped")),
        ("lateral", lateral, ("free", "roller", "clamped")),
    ):
        if v not in allowed:
            raise InvalidInputError(f"{name} must be one of {', '.join(allowed)}, got {v!r}")
    faces = {(thickness_axis, 0): boundary, (thickness_axis, 1): separator}
    for a in range(3):
        if a != thickness_axis:
            faces[(a, 0)] = lateral
            faces[(a, 1)] = lateral
    return faces


def _material_index(ms: Microstructure, params: MechanicsParameters) -> tuple[np.ndarray, list]:
    """Material index per voxel (0 active, 1 carbon-binder, 2 solid electrolyte; -1 void)."""
    phase = np.full(ms.shape, -1, np.int32)
    mats = []
    for k, role in enumerate(SOLID_ROLES):
        mats.append(params.for_role(role))
        for p in ms.phases.values():
            if str(p.role) == role:
                phase[ms.labels == p.label] = k
    return phase, mats


def diffusion_stress(
    ms: Microstructure,
    load: ConcentrationLoad | np.ndarray,
    *,
    params: MechanicsParameters | None = None,
    particles: Particles | None = None,
    boundary: Literal["clamped", "free"] = "clamped",
    separator: FaceKind = "free",
    lateral: FaceKind = "free",
    reference: Literal["mean", "initial"] | float = "mean",
    screening: ScreeningResult | None = None,
    rtol: float = 1e-8,
    maxiter: int = 1000,
) -> StressResult:
    """Stress from a lithium concentration field on the solid voxels, and the fracture check.

    Parameters
    ----------
    ms : Microstructure
        3D image with an active phase (carbon-binder and solid electrolyte are solid
        too; every other role is void).
    load : ConcentrationLoad or ndarray
        The concentration (mol/m³ per voxel; values outside the active phase are
        ignored), e.g. from :func:`~microbat.degradation.loads.load_from_resolved`,
        :func:`~microbat.degradation.loads.load_from_file` or
        :func:`~microbat.degradation.loads.galvanostatic_load`.
    params : MechanicsParameters, optional
        Materials and Griffith settings (default: NMC811, CBD, LLZO).
    particles : Particles, optional
        Labelled particles (default: :func:`label_particles` of ``ms``).
    boundary, separator, lateral : str
        Face conditions (module notes).
    reference : {"mean", "initial"} or float
        ``c_ref`` (module notes).
    screening : ScreeningResult, optional
        Closed-form screening of the same particles, whose critical C-rates enter
        the per-particle table.
    rtol, maxiter
        CG stopping test.

    Returns
    -------
    StressResult

    Raises
    ------
    InvalidInputError
        No active phase; a field of the wrong shape or with NaN in the active phase;
        bad face conditions; ``reference="initial"`` for a load that does not know
        its initial state.
    """
    from microbat.fv.elasticity import ElasticProblem, stress_invariants

    t0 = time.perf_counter()
    params = params or MechanicsParameters()
    if ms.ndim != 3:
        raise InvalidInputError("the mechanics solver needs a 3D image")
    if not _active_mask(ms).any():
        raise InvalidInputError(
            "the image has no active-material voxel; the chemical strain lives in the active "
            "phase (check the phase table, e.g. --phases pore=0,cbd=1,active=2)"
        )
    if not isinstance(load, ConcentrationLoad):
        from microbat.degradation.loads import _check_field

        load = ConcentrationLoad(_check_field(np.asarray(load), ms, "the concentration"), None,
                                 "array")  # fmt: skip
    c = np.asarray(load.concentration, np.float64)
    active = _active_mask(ms)
    if c.shape != ms.shape:
        raise InvalidInputError(f"the concentration has shape {c.shape}, the image {ms.shape}")
    if not np.all(np.isfinite(c[active])):
        raise InvalidInputError("the concentration has NaN or infinite values in the active phase")
    if isinstance(reference, str):
        if reference == "mean":
            c_ref = float(c[active].mean())
        elif reference == "initial":
            if load.initial is None:
                raise InvalidInputError(
                    f"the {load.source} load does not know its initial concentration; give "
                    "reference='mean' or a number in mol/m3"
                )
            c_ref = float(load.initial)
        else:
            raise InvalidInputError(
                f"reference must be 'mean', 'initial' or a number, got {reference!r}"
            )
    else:
        c_ref = float(reference)
        if not math.isfinite(c_ref):
            raise InvalidInputError(
                f"the reference concentration must be finite, got {reference!r}"
            )
    ax_t = ms.thickness_axis
    faces = _faces(ax_t, boundary, separator, lateral)
    phase, mats = _material_index(ms, params)
    lam = [m.lame[0] for m in mats]
    mu = [m.lame[1] for m in mats]
    omega = params.active.partial_molar_volume_m3_per_mol
    eig = np.zeros(ms.shape)
    eig[active] = omega * (c[active] - c_ref) / 3.0
    h = tuple(float(v) for v in ms.voxel_size)
    if particles is None:
        particles = label_particles(ms)
    t1 = time.perf_counter()
    prob = ElasticProblem(phase, lam, mu, h, faces=faces, theta=0.02)
    sol = prob.solve(eig, rtol=rtol, maxiter=maxiter)
    del prob
    t2 = time.perf_counter()
    inv = stress_invariants(sol.stress)
    vvox = float(np.prod(h))
    sed = (sol.strain_energy / vvox).astype(np.float32)
    solid = phase >= 0
    sed[~solid] = np.nan
    conc = np.where(active, c, np.nan).astype(np.float32)
    # ----------------------------------------------------------- per particle
    lab = particles.labels
    n = particles.n
    s1 = inv["max_principal"]
    peak = _particle_max(lab, s1, n)
    p99 = particle_percentile(lab, s1, n, 99.0)
    energy = np.bincount(lab.reshape(-1), weights=sol.strain_energy.reshape(-1),
                         minlength=n + 1)[1:]  # fmt: skip
    mat = params.active
    flaw = flaw_sizes(particles.equivalent_radius_m, params)
    stat = p99 if params.stress_statistic == "p99" else peak
    kI = stress_intensity(np.nan_to_num(stat, nan=0.0), flaw, params.geometry_factor)
    kic = mat.fracture_toughness_Pa_sqrt_m
    g = kI**2 * (1 - mat.poisson_ratio**2) / mat.young_modulus_Pa
    cracked = kI >= kic if kic is not None else np.zeros(n, bool)
    ratio = np.full(ms.shape, np.nan, np.float32)
    if kic is not None:
        sel = lab > 0
        a_vox = flaw[lab[sel] - 1]
        ratio[sel] = (
            stress_intensity(np.nan_to_num(s1[sel], nan=0.0), a_vox, params.geometry_factor) / kic
        )
    table: dict[str, np.ndarray] = {
        "id": particles.ids,
        "volume_m3": particles.volume_m3,
        "radius_m": particles.equivalent_radius_m,
        "flaw_m": flaw,
        "peak_tensile_Pa": peak,
        "p99_tensile_Pa": p99,
        "strain_energy_J": energy,
        "stress_intensity_Pa_sqrt_m": kI,
        "energy_release_rate_J_per_m2": g,
        "cracked": cracked,
    }
    if screening is not None and screening.critical_c_rate.size == n:
        table["critical_c_rate"] = screening.critical_c_rate
    if load.source == "galvanostatic" and kic is not None:
        rate = float(load.info["c_rate"])
        with np.errstate(divide="ignore", invalid="ignore"):
            crit_fe = np.where(kI > 0, rate * kic / kI, np.inf)
        # the same search range as the closed-form screening (above 1e4 C: never)
        table["critical_c_rate_fe"] = np.where(crit_fe <= 1e4, crit_fe, np.inf)
    # ----------------------------------------------------------- summary
    vm = inv["von_mises"][solid]
    s1s = s1[solid]
    summary: dict[str, Any] = {
        "max_principal_stress_Pa": float(np.nanmax(s1s)) if s1s.size else None,
        "min_principal_stress_Pa": float(np.nanmin(inv["min_principal"][solid])),
        "von_mises_p99_Pa": float(np.nanpercentile(vm, 99)) if vm.size else None,
        "von_mises_max_Pa": float(np.nanmax(vm)) if vm.size else None,
        "particles": int(n),
        "cracked_particles": int(np.count_nonzero(cracked)),
        "cracked_fraction": float(np.mean(cracked)) if n else None,
        "cracked_volume_fraction": (
            float(particles.volume_m3[cracked].sum() / particles.volume_m3.sum()) if n else None
        ),
        "strain_energy_J": sol.total_strain_energy,
        "eigenstrain_work_J": sol.eigenstrain_work,
        "energy_balance_error": (
            abs(sol.eigenstrain_work - 2 * sol.total_strain_energy)
            / max(abs(sol.eigenstrain_work), 1e-300)
            if sol.eigenstrain_work
            else 0.0
        ),
        "tensile_statistic": params.stress_statistic,
        "phases": _phase_stats(ms, phase, inv),
    }
    if kic is not None and n:
        summary["critical_stress_median_Pa"] = float(
            kic / (params.geometry_factor * math.sqrt(math.pi * float(np.median(flaw))))
        )
    if screening is not None:
        summary["critical_c_rate"] = screening.critical
    else:
        summary["critical_c_rate"] = None
    if "critical_c_rate_fe" in table:
        summary["critical_c_rate_fe"] = critical_c_rate_summary(
            table["critical_c_rate_fe"], particles.volume_m3
        )
    solver = {
        "method": "Q1 hexahedra, smoothed-aggregation AMG (rigid-body modes) + CG",
        "iterations": sol.iterations,
        "residual": sol.residual,
        "converged": sol.converged,
        "unknowns": sol.n_dofs,
        "floating": sol.floating,
        "timing_s": {**sol.timing, "labels_s": t1 - t0, "post_s": time.perf_counter() - t2},
        "amg_levels": sol.details.get("levels"),
        "operator_complexity": sol.details.get("operator_complexity"),
    }
    load_info = {
        "source": load.source,
        **{k: v for k, v in load.info.items()},
        "reference": reference if isinstance(reference, str) else "value",
        "c_ref_mol_m3": c_ref,
        "partial_molar_volume_m3_per_mol": omega,
        "thickness_axis": ax_t,
    }
    prov = Provenance(
        "microbat.degradation.diffusion_stress",
        {
            "boundary": boundary,
            "separator": separator,
            "lateral": lateral,
            "reference": reference,
            "rtol": rtol,
        },
        wall_time_s=time.perf_counter() - t0,
        inputs={"shape": list(ms.shape), "voxel_size_m": list(h)},
    )
    return StressResult(
        stress=sol.stress,
        von_mises=inv["von_mises"],
        max_principal=s1,
        hydrostatic=inv["hydrostatic"],
        strain_energy_density=sed,
        concentration=conc,
        fracture_ratio=ratio,
        particle_labels=lab,
        particles=table,
        summary=summary,
        solver=solver,
        load=load_info,
        boundary={"collector": boundary, "separator": separator, "lateral": lateral},
        screening=screening,
        voxel_size=h,
        parameters=params.to_dict(),
        provenance=prov,
    )


def _active_mask(ms: Microstructure) -> np.ndarray:
    """Voxels of the active-role phases (all False when the table has none)."""
    if not ms.phases.with_role("active"):
        return np.zeros(ms.shape, bool)
    return ms.mask("active")


def _particle_max(labels: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    out = np.full(n, -np.inf)
    sel = labels > 0
    v = np.asarray(values, np.float64)[sel]
    ok = np.isfinite(v)
    np.maximum.at(out, labels[sel][ok] - 1, v[ok])
    out[~np.isfinite(out)] = np.nan
    return out


def _phase_stats(ms: Microstructure, phase: np.ndarray, inv: dict[str, np.ndarray]) -> dict:
    out = {}
    for k, role in enumerate(SOLID_ROLES):
        m = phase == k
        if not m.any():
            continue
        s1 = inv["max_principal"][m]
        vm = inv["von_mises"][m]
        out[role] = {
            "voxels": int(m.sum()),
            "max_principal_max_Pa": float(np.nanmax(s1)),
            "max_principal_p99_Pa": float(np.nanpercentile(s1, 99)),
            "von_mises_p99_Pa": float(np.nanpercentile(vm, 99)),
            "hydrostatic_mean_Pa": float(np.nanmean(inv["hydrostatic"][m])),
        }
    return out


def stress_at_c_rate(
    ms: Microstructure,
    c_rate: float,
    *,
    params: MechanicsParameters | None = None,
    particles: Particles | None = None,
    direction: Literal["lithiation", "delithiation"] = "lithiation",
    time: Literal["end", "steady"] = "end",
    screen_rates: list[float] | None = None,
    **kwargs: Any,
) -> StressResult:
    """The closed-form (galvanostatic) load at one C-rate, solved on the voxels.

    Labels the particles, maps each one's equivalent-sphere concentration at the end
    of the (dis)charge (or in the quasi-steady state) onto its voxels
    (:func:`~microbat.degradation.loads.galvanostatic_load`), screens every particle
    in closed form (critical C-rates), and solves the voxel elasticity
    (:func:`diffusion_stress`; ``kwargs`` go there).

    Parameters
    ----------
    ms : Microstructure
        3D image with an active phase.
    c_rate : float
        Rate in 1/h.
    params : MechanicsParameters, optional
    particles : Particles, optional
    direction : {"lithiation", "delithiation"}
    time : {"end", "steady"}
    screen_rates : list of float, optional
        Rates of the screening table (default: ``c_rate`` and 0.5, 1, 2, 3, 5, 10).

    Returns
    -------
    StressResult
    """
    params = params or MechanicsParameters()
    if particles is None:
        particles = label_particles(ms)
    load = galvanostatic_load(particles, params.active, c_rate, direction=direction, time=time)
    rates = sorted(set([float(c_rate), *(screen_rates or [0.5, 1, 2, 3, 5, 10])]))
    scr = screen_particles(particles, rates, params=params, direction=direction, time=time)
    return diffusion_stress(ms, load, params=params, particles=particles, screening=scr, **kwargs)
