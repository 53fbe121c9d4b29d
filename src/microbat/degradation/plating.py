r"""Lithium-plating risk on the active/electrolyte interface of a resolved charge.

Lithium metal can deposit on a graphite surface wherever the local potential of the
solid against the electrolyte falls below that of lithium metal. With the lithium
counter electrode of the resolved half cell as the reference (:math:`U_{Li} = 0`),
the plating overpotential of an interface face is

.. math::

    η_{pl} = φ_s(\text{active voxel}) - φ_e(\text{electrolyte voxel}),

and a face is *at risk* while :math:`η_{pl} < 0` (the thermodynamic criterion of
Arora, Doyle and White [1]_ and of the plating submodels of PyBaMM [2]_; the local
electrolyte-concentration term of the Li/Li⁺ potential is neglected, as there).

Faces are those of the resolved model's Butler–Volmer reaction
(:mod:`microbat.cell.resolved._geometry`): voxel faces between an active voxel and a
pore or carbon-binder voxel (6-connectivity), each with the area of a voxel face;
faces of clusters the model drops (NaN potentials) are left out.

:class:`PlatingMonitor` is a streaming observer: its ``__call__(time_s, fields)``
is the resolved model's ``on_fields`` hook (called after every accepted step with
``phi_s``, ``phi_e``, ``stoichiometry`` on the image grid). Per call it costs two
gathers and a few reductions over the interface faces (O(faces)); it keeps the
onset time and state of charge of every face, the exposure
:math:`\int \max(0, -η_{pl})\,dt` and the time at risk, the at-risk area fraction
and the minimum overpotential over time, the at-risk fraction per layer along the
thickness, per-voxel overpotential maps at the requested times and, with labelled
particles, each particle's mean stoichiometry and exposure (for
:mod:`microbat.degradation.heterogeneity`). :func:`plating_map` runs a charge of the
resolved model with a monitor and returns a :class:`PlatingResult`.

References
----------
.. [1] P. Arora, M. Doyle and R. E. White, "Mathematical modeling of the lithium
   deposition overcharge reaction in lithium-ion batteries using carbon-based
   negative electrodes", J. Electrochem. Soc. 146, 3543 (1999),
   doi:10.1149/1.1392512.
.. [2] S. E. J. O'Kane et al., "Lithium-ion battery degradation: how to model it",
   Phys. Chem. Chem. Phys. 24, 7909 (2022), doi:10.1039/D2CP00417H.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from microbat.core.errors import InvalidInputError, PhaseError
from microbat.core.microstructure import Microstructure
from microbat.core.phases import PhaseRole
from microbat.core.results import Provenance, Result, to_jsonable

__all__ = [
    "DFNPlatingResult",
    "Hotspot",
    "PlatingFaces",
    "PlatingMonitor",
    "PlatingResult",
    "dfn_end_time",
    "dfn_plating",
    "draw_hotspot_slices",
    "hotspot_centre",
    "plating_faces",
    "plating_map",
]


# --------------------------------------------------------------------------- faces
@dataclass(frozen=True)
class PlatingFaces:
    """Reaction faces of the image (active voxel | pore or carbon-binder voxel).

    Attributes
    ----------
    active, electrolyte : ndarray of intp
        Flat (C-order) image indices of the two voxels of each face.
    area_m2 : ndarray
        Voxel-face area of each face.
    depth_m : ndarray
        Distance of the face centre from the separator (the end of the thickness axis).
    layer : ndarray of intp
        Layer of the active voxel along the thickness axis (0: collector).
    shape : tuple of int
        Image shape.
    thickness_axis : int
    voxel_size : tuple of float
    """

    active: np.ndarray
    electrolyte: np.ndarray
    area_m2: np.ndarray
    depth_m: np.ndarray
    layer: np.ndarray
    shape: tuple[int, ...]
    thickness_axis: int
    voxel_size: tuple[float, ...]

    @property
    def n_faces(self) -> int:
        """Number of faces."""
        return int(self.active.size)

    def subset(self, keep: np.ndarray) -> PlatingFaces:
        """The faces selected by a boolean mask."""
        return PlatingFaces(
            self.active[keep],
            self.electrolyte[keep],
            self.area_m2[keep],
            self.depth_m[keep],
            self.layer[keep],
            self.shape,
            self.thickness_axis,
            self.voxel_size,
        )


def plating_faces(ms: Microstructure) -> PlatingFaces:
    """The interface faces on which the plating overpotential is evaluated.

    Parameters
    ----------
    ms : Microstructure
        3D labelled electrode with a phase of role ``active`` and pores (role
        ``electrolyte``) or carbon-binder.

    Returns
    -------
    PlatingFaces

    Raises
    ------
    PhaseError
        No active voxel or no active/electrolyte face.
    InvalidInputError
        Not 3D.
    """
    from microbat.fv.grid import interface_faces

    if ms.ndim != 3:
        raise InvalidInputError(f"plating maps need a 3D microstructure, got {ms.ndim}D")
    lut = np.zeros(max(int(ms.labels.max(initial=0)), *ms.phases.labels) + 1, np.uint8)
    for p in ms.phases.values():
        if p.role == PhaseRole.ACTIVE:
            lut[p.label] = 1
        elif p.role in (PhaseRole.ELECTROLYTE, PhaseRole.CARBON_BINDER):
            lut[p.label] = 2
    codes = lut[ms.labels]
    if not np.any(codes == 1):
        raise PhaseError(
            f"the image has no active-material voxel (phases: {ms.phases.to_spec()}); plating "
            "maps need a phase with role 'active'"
        )
    h = tuple(float(v) for v in ms.voxel_size)
    f = interface_faces(codes, [1], [2], h)
    if f.n_faces == 0:
        raise PhaseError("the image has no face between active material and pore or carbon-binder")
    t = ms.thickness_axis
    n_t = ms.shape[t]
    ia = np.unravel_index(f.side_a, ms.shape)[t]
    ib = np.unravel_index(f.side_b, ms.shape)[t]
    centre = 0.5 * (ia + ib).astype(float) + 0.5  # in voxels from the collector face
    depth = (n_t - centre) * h[t]
    return PlatingFaces(
        f.side_a.astype(np.intp),
        f.side_b.astype(np.intp),
        np.asarray(f.area, float),
        depth,
        ia.astype(np.intp),
        tuple(ms.shape),
        t,
        h,
    )


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Hotspot:
    """A connected region of at-risk interface (active voxels with a face at risk).

    Attributes
    ----------
    id : int
        1 is the largest region.
    voxels : int
        Active voxels in the region.
    area_um2 : float
        Interface area at risk in the region (µm²).
    centroid_m : tuple of float
        Centre of the region's voxels (m, image axes; voxel centres at (i + ½) h).
    depth_m : float
        Distance of the centroid from the separator (m).
    onset_time_s : float
        Earliest onset in the region (s).
    min_overpotential_V : float
        Lowest η_pl in the region at the end of the run (V).
    """

    id: int
    voxels: int
    area_um2: float
    centroid_m: tuple[float, ...]
    depth_m: float
    onset_time_s: float
    min_overpotential_V: float


@dataclass(frozen=True)
class PlatingResult(Result):
    """Plating risk of a resolved charge.

    Attributes
    ----------
    time_s : ndarray
        Times of the monitored steps.
    soc : ndarray
        Electrode state of charge at those times: the volume-mean stoichiometry of
        the active voxels (lithiation fraction; for graphite, x in LiₓC₆).
    area_fraction_at_risk : ndarray
        Fraction of the interface area with η_pl < 0 at each time.
    min_overpotential_V : ndarray
        Lowest η_pl over all faces at each time (V).
    min_plating_overpotential_V : float
        Lowest η_pl of the whole run.
    onset_time_s, onset_soc : float
        First time (and SOC) at which any face goes below zero (NaN: never): the
        zero crossing of the minimum overpotential, interpolated linearly between the
        last monitored step without risk and the first with it (the onset map keeps
        the step times).
    onset_time_map_s, onset_soc_map : ndarray (image shape, float32)
        Per active voxel with interface faces: the first time / SOC one of its faces
        went below zero (NaN: never, or not an interface voxel).
    exposure_map_V_s : ndarray (image shape, float32)
        Per active interface voxel: the area-weighted mean over its faces of
        ∫ max(0, −η_pl) dt (V·s).
    map_times_s : ndarray
        Times of the stored overpotential maps.
    overpotential_maps_V : ndarray (k, *image shape, float32)
        Per active interface voxel, the minimum η_pl over its faces at each stored
        time (NaN elsewhere).
    depth_m : ndarray
        Distance of each layer's centre from the separator (m).
    depth_at_risk_fraction : ndarray (times, layers)
        Fraction of each layer's interface area at risk.
    depth_min_overpotential_V : ndarray (times, layers)
        Lowest η_pl in each layer.
    depth_mean_overpotential_V : ndarray (times, layers)
        Area-weighted mean η_pl of each layer (what a homogenised model sees at that
        depth; its gap to the minimum is the local spread).
    hotspots : tuple of Hotspot
        Connected at-risk regions (active voxels whose faces went at risk at any
        time, 26-connectivity), largest first.
    interface_area_m2 : float
        Total area of the monitored faces.
    faces : int
    charge : dict
        Summary of the resolved charge that produced the fields (when run by
        :func:`plating_map`): C-rate, current, cut-off, status.
    heterogeneity : dict
        :meth:`HeterogeneityResult.to_dict` of the same run (when particles were
        monitored).
    voxel_size : tuple of float
    thickness_axis : int
    notes : tuple of str
    provenance : Provenance
    """

    time_s: np.ndarray
    soc: np.ndarray
    area_fraction_at_risk: np.ndarray
    min_overpotential_V: np.ndarray
    min_plating_overpotential_V: float
    onset_time_s: float
    onset_soc: float
    onset_time_map_s: np.ndarray
    onset_soc_map: np.ndarray
    exposure_map_V_s: np.ndarray
    map_times_s: np.ndarray
    overpotential_maps_V: np.ndarray
    depth_m: np.ndarray
    depth_at_risk_fraction: np.ndarray
    depth_min_overpotential_V: np.ndarray
    depth_mean_overpotential_V: np.ndarray
    hotspots: tuple[Hotspot, ...]
    interface_area_m2: float
    faces: int
    voxel_size: tuple[float, ...]
    thickness_axis: int
    charge: dict[str, Any] = field(default_factory=dict)
    heterogeneity: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    provenance: Provenance = field(default_factory=lambda: Provenance("microbat"))

    _json_arrays = (
        "time_s",
        "soc",
        "area_fraction_at_risk",
        "min_overpotential_V",
        "map_times_s",
        "depth_m",
    )

    @property
    def plated(self) -> bool:
        """True when some face went below zero."""
        return bool(np.isfinite(self.onset_time_s))

    def worst_hotspot(self) -> Hotspot | None:
        """The largest at-risk region (None without one)."""
        return self.hotspots[0] if self.hotspots else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (maps summarised; the depth profile of the last time)."""
        out = super().to_dict()
        out["depth_at_risk_fraction_end"] = to_jsonable(self.depth_at_risk_fraction[-1])
        out["depth_min_overpotential_V_end"] = to_jsonable(self.depth_min_overpotential_V[-1])
        out["depth_mean_overpotential_V_end"] = to_jsonable(self.depth_mean_overpotential_V[-1])
        out["hotspots"] = [to_jsonable(h) for h in self.hotspots]
        return out

    def plot(self, ax: Any = None) -> Any:
        """Area fraction at risk and minimum overpotential against time.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Axes to draw into (a new figure otherwise).

        Returns
        -------
        matplotlib Axes
        """
        if ax is None:
            from matplotlib.figure import Figure

            ax = Figure(figsize=(6, 3.8)).add_subplot(111)
        t = self.time_s / 60.0
        ax.plot(t, 100.0 * self.area_fraction_at_risk, color="C3", label="area at risk")
        ax.set_xlabel("time [min]")
        ax.set_ylabel("interface area at risk [%]")
        ax2 = ax.twinx()
        ax2.plot(t, 1e3 * self.min_overpotential_V, color="C0", label="min η_pl")
        ax2.axhline(0.0, color="0.5", lw=0.8, ls=":")
        ax2.set_ylabel("min plating overpotential [mV]")
        if self.plated:
            ax.axvline(self.onset_time_s / 60.0, color="C3", ls="--", lw=0.8)
        return ax

    def save(self, folder: str | Path) -> list[Path]:
        """Write the result to a folder (every file atomic).

        Files: ``result.json``; ``plating_series.csv`` (time, SOC, area at risk, min
        η_pl); ``plating_depth.csv`` (per layer: depth, at-risk fraction and min η_pl
        at the end); ``hotspots.csv``; ``plating_fields.vti`` (onset time, onset SOC,
        exposure and the last overpotential map as cell data) and ``fields.npz``;
        ``hotspot_slices.png`` (three orthogonal slices through the worst hotspot, or
        the image centre) and ``plating_curves.png``.

        Returns
        -------
        list of Path
        """
        return _write(self, Path(folder))


# --------------------------------------------------------------------------- monitor
class PlatingMonitor:
    """Streaming observer of the plating overpotential (the ``on_fields`` hook).

    Parameters
    ----------
    ms : Microstructure
        The image the resolved model runs on.
    store_times : sequence of float, optional
        Times (s) at which per-voxel overpotential maps are kept (the first call at or
        after each). The last call's map is always kept.
    particles : Particles, optional
        Labelled particles (:func:`microbat.degradation.particles.label_particles`):
        each call then records every particle's mean stoichiometry and cumulative
        exposure, for :func:`microbat.degradation.heterogeneity.aging_heterogeneity`.
    threshold_V : float, default 0
        A face is at risk while η_pl < ``threshold_V`` (0: against Li/Li⁺).

    Notes
    -----
    Exposure and time at risk are integrated by the trapezoidal rule between calls
    (the positive part of −η_pl is linear between the endpoints when both have the
    same sign, otherwise the zero crossing is interpolated).
    """

    def __init__(
        self,
        ms: Microstructure,
        *,
        store_times: Sequence[float] = (),
        particles: Any = None,
        threshold_V: float = 0.0,
    ) -> None:
        if not math.isfinite(threshold_V):
            raise InvalidInputError(f"threshold_V must be finite, got {threshold_V!r}")
        self.ms = ms
        self.threshold_V = float(threshold_V)
        self.faces_all = plating_faces(ms)
        self.faces: PlatingFaces | None = None
        self._store = sorted(float(t) for t in store_times)
        self._next = 0
        self.particles = particles
        if particles is not None and tuple(particles.labels.shape) != tuple(ms.shape):
            raise InvalidInputError("particles were labelled on another image shape")
        self.times: list[float] = []
        self.soc: list[float] = []
        self.area_at_risk: list[float] = []
        self.min_eta: list[float] = []
        self.layer_risk: list[np.ndarray] = []
        self.layer_min: list[np.ndarray] = []
        self.layer_mean: list[np.ndarray] = []
        self.map_times: list[float] = []
        self.maps: list[np.ndarray] = []
        self.particle_theta: list[np.ndarray] = []
        self.particle_exposure: list[np.ndarray] = []
        self.particle_current: list[np.ndarray] = []
        self.calls = 0
        self.seconds = 0.0
        self._active_mask: np.ndarray | None = None

    # ------------------------------------------------------------------ setup
    def _setup(self, fields: Mapping[str, np.ndarray]) -> None:
        ps = np.asarray(fields["phi_s"]).reshape(-1)
        pe = np.asarray(fields["phi_e"]).reshape(-1)
        f = self.faces_all
        ok = np.isfinite(ps[f.active]) & np.isfinite(pe[f.electrolyte])
        if not np.any(ok):
            raise PhaseError(
                "no interface face has both potentials defined; the fields do not belong "
                "to this image or the run has no reaction faces"
            )
        f = f.subset(ok)
        # faces sorted by active voxel: the per-voxel minimum is one reduceat
        order = np.argsort(f.active, kind="stable")
        f = f.subset(order)
        self.faces = f
        self._vox, self._starts = np.unique(f.active, return_index=True)
        n = f.n_faces
        self._area_total = float(f.area_m2.sum())
        self._onset_t = np.full(n, np.nan)
        self._onset_soc = np.full(n, np.nan)
        self._exposure = np.zeros(n)
        self._at_risk_s = np.zeros(n)
        self._ever = np.zeros(n, bool)
        self._prev: np.ndarray | None = None
        n_t = self.ms.shape[f.thickness_axis]
        self._n_layers = n_t
        self._layer_area = np.bincount(f.layer, f.area_m2, n_t)
        # faces grouped by layer: the per-layer minimum is one reduceat
        self._by_layer = np.argsort(f.layer, kind="stable")
        self._layers, self._layer_starts = np.unique(f.layer[self._by_layer], return_index=True)
        stoich = np.asarray(fields["stoichiometry"])
        self._active_mask = np.isfinite(stoich)
        self._active_idx = np.flatnonzero(self._active_mask)
        self._n_active = int(self._active_idx.size)
        if self.particles is not None:
            lab = np.where(self._active_mask, self.particles.labels, 0).reshape(-1)
            self._plab = lab
            self._pidx = np.flatnonzero(lab)  # labelled, modelled active voxels
            self._plab_k = lab[self._pidx]
            self._pcount = np.bincount(lab, minlength=self.particles.n + 1)
            self._face_p = self.particles.labels.reshape(-1)[f.active]
            self._parea = np.bincount(self._face_p, f.area_m2, self.particles.n + 1)

    # ------------------------------------------------------------------ hook
    def __call__(self, time_s: float, fields: Mapping[str, np.ndarray]) -> None:
        """Record one accepted step (the resolved model's ``on_fields`` signature)."""
        t0 = time.perf_counter()
        if self.faces is None:
            self._setup(fields)
        f = self.faces
        assert f is not None
        t = float(time_s)
        if self.times and t < self.times[-1]:
            raise InvalidInputError(f"time went backwards ({t} s after {self.times[-1]} s)")
        ps = np.asarray(fields["phi_s"]).reshape(-1)
        pe = np.asarray(fields["phi_e"]).reshape(-1)
        eta = ps[f.active].astype(np.float64) - pe[f.electrolyte]
        stoich = np.asarray(fields["stoichiometry"]).reshape(-1)
        soc = float(np.sum(stoich[self._active_idx], dtype=np.float64) / max(self._n_active, 1))
        th = cur = None
        if self.particles is not None:
            n1 = self.particles.n + 1
            th = np.bincount(self._plab_k, stoich[self._pidx], n1)[1:] / np.maximum(
                self._pcount[1:], 1
            )
            rc = fields.get("reaction_current")
            if rc is not None:  # A/m³ of voxel, cathodic < 0 → insertion current (A)
                vol = float(np.prod(self.ms.voxel_size))
                rcv = np.asarray(rc).reshape(-1)[self._pidx]
                cur = np.bincount(self._plab_k, -np.nan_to_num(rcv) * vol, n1)[1:]
        self._record(t, eta, soc, th, cur)
        self.calls += 1
        self.seconds += time.perf_counter() - t0

    def _record(
        self,
        t: float,
        eta: np.ndarray,
        soc: float,
        theta: np.ndarray | None,
        current: np.ndarray | None,
    ) -> None:
        f = self.faces
        assert f is not None
        # what the last record changed, to take it back (end_at)
        self._undo = (
            self._onset_t.copy(),
            self._onset_soc.copy(),
            self._exposure.copy(),
            self._at_risk_s.copy(),
            self._ever.copy(),
            self._prev,
            getattr(self, "_eta_last", None),
            self._next,
            len(self.map_times),
        )
        x = eta - self.threshold_V
        risk = x < 0.0
        if self._prev is not None:
            self._integrate(self._prev, x, t - self.times[-1])
        new = risk & ~self._ever
        if np.any(new):
            self._onset_t[new] = t
            self._onset_soc[new] = soc
            self._ever |= new
        self._prev = x
        self.times.append(t)
        self.soc.append(soc)
        self.area_at_risk.append(float(f.area_m2[risk].sum()) / self._area_total)
        self.min_eta.append(float(eta.min()))
        lr = np.bincount(f.layer[risk], f.area_m2[risk], self._n_layers)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.layer_risk.append(np.where(self._layer_area > 0, lr / self._layer_area, np.nan))
        lm = np.full(self._n_layers, np.nan)
        lm[self._layers] = np.minimum.reduceat(eta[self._by_layer], self._layer_starts)
        self.layer_min.append(lm)
        la = np.bincount(f.layer, f.area_m2 * eta, self._n_layers)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.layer_mean.append(np.where(self._layer_area > 0, la / self._layer_area, np.nan))
        self._eta_last = eta
        while self._next < len(self._store) and t >= self._store[self._next]:
            self._next += 1
            if not self.map_times or self.map_times[-1] != t:
                self.map_times.append(t)
                self.maps.append(self._voxel_map(eta))
        if theta is not None:
            self.particle_theta.append(theta)
            ex = np.bincount(self._face_p, self._exposure * f.area_m2, self.particles.n + 1)
            self.particle_exposure.append(
                ex[1:] / np.where(self._parea[1:] > 0, self._parea[1:], 1)
            )
            if current is not None:
                self.particle_current.append(current)

    def end_at(self, time_s: float) -> None:
        """Cut the record at ``time_s`` inside the last monitored step.

        A run that ends on an event (cut-off, stoichiometry) interpolates the end inside
        its last step, while the hook saw the fields at the step's end. This takes the
        last record back and records the state at ``time_s`` instead, every face's η_pl
        (and the SOC, each particle's stoichiometry) linear in time within the step, as
        the exposure integration already assumes. Nothing happens when ``time_s`` is
        not inside the last step.
        """
        t = float(time_s)
        if len(self.times) < 2 or not (self.times[-2] < t < self.times[-1]):
            return
        assert self.faces is not None
        t0, t1 = self.times[-2], self.times[-1]
        w = (t - t0) / (t1 - t0)
        eta1 = self._eta_last
        (
            self._onset_t, self._onset_soc, self._exposure, self._at_risk_s, self._ever,
            self._prev, eta0, self._next, n_maps,
        ) = self._undo  # fmt: skip
        eta = eta0 + w * (eta1 - eta0)
        soc = self.soc[-2] + w * (self.soc[-1] - self.soc[-2])
        for lst in (self.times, self.soc, self.area_at_risk, self.min_eta):
            lst.pop()
        self.layer_risk.pop()
        self.layer_min.pop()
        self.layer_mean.pop()
        del self.map_times[n_maps:]
        del self.maps[n_maps:]
        theta = current = None
        if self.particle_theta:
            th1 = self.particle_theta.pop()
            th0 = self.particle_theta[-1] if self.particle_theta else th1
            theta = th0 + w * (th1 - th0)
            self.particle_exposure.pop()
            if self.particle_current:
                current = self.particle_current.pop()
        self._record(t, eta, soc, theta, current)

    def _integrate(self, a: np.ndarray, b: np.ndarray, dt: float) -> None:
        """∫ max(0, −x) dt and ∫ [x < 0] dt over one step, x linear from a to b."""
        if dt <= 0:
            return
        na, nb = np.maximum(-a, 0.0), np.maximum(-b, 0.0)
        same = (a < 0) == (b < 0)
        expo = np.where(same, 0.5 * (na + nb) * dt, 0.0)
        frac = np.where(same, (a < 0).astype(float), 0.0)
        cross = ~same
        if np.any(cross):
            ac, bc = a[cross], b[cross]
            s = ac / (ac - bc)  # fraction of the step before the zero crossing
            neg_first = ac < 0
            part = np.where(neg_first, s, 1.0 - s)
            depth = np.where(neg_first, -ac, -bc)
            expo[cross] = 0.5 * depth * part * dt
            frac[cross] = part
        self._exposure += expo
        self._at_risk_s += frac * dt

    def _voxel_map(self, per_face: np.ndarray) -> np.ndarray:
        out = np.full(int(np.prod(self.ms.shape)), np.nan, np.float32)
        vals = np.minimum.reduceat(np.where(np.isnan(per_face), np.inf, per_face), self._starts)
        out[self._vox] = np.where(np.isfinite(vals), vals, np.nan)
        return out.reshape(self.ms.shape)

    def _voxel_weighted(self, per_face: np.ndarray) -> np.ndarray:
        assert self.faces is not None
        a = self.faces.area_m2
        num = np.add.reduceat(per_face * a, self._starts)
        den = np.add.reduceat(a, self._starts)
        out = np.full(int(np.prod(self.ms.shape)), np.nan, np.float32)
        out[self._vox] = num / den
        return out.reshape(self.ms.shape)

    # ------------------------------------------------------------------ result
    @property
    def face_exposure_V_s(self) -> np.ndarray:
        """Cumulative ∫ max(0, −η_pl) dt of every monitored face (V·s)."""
        return self._exposure.copy()

    @property
    def face_time_at_risk_s(self) -> np.ndarray:
        """Cumulative time each monitored face spent at risk (s)."""
        return self._at_risk_s.copy()

    def result(
        self,
        *,
        charge: Mapping[str, Any] | None = None,
        heterogeneity: Mapping[str, Any] | None = None,
        notes: Sequence[str] = (),
        provenance: Provenance | None = None,
    ) -> PlatingResult:
        """The :class:`PlatingResult` of the calls so far.

        Raises
        ------
        InvalidInputError
            The monitor was never called.
        """
        if self.faces is None or not self.times:
            raise InvalidInputError("the plating monitor saw no step; nothing to report")
        f = self.faces
        maps_t = list(self.map_times)
        maps = list(self.maps)
        if not maps_t or maps_t[-1] != self.times[-1]:
            maps_t.append(self.times[-1])
            maps.append(self._voxel_map(self._eta_last))
        onset_t = self._voxel_map(self._onset_t)
        onset_soc = self._voxel_map(self._onset_soc)
        expo = self._voxel_weighted(self._exposure)
        hot = _hotspots(self, onset_t)
        n_t = self._n_layers
        h_t = self.ms.voxel_size[f.thickness_axis]
        depth = (n_t - (np.arange(n_t) + 0.5)) * h_t
        tt = np.asarray(self.times)
        first = _first_crossing(tt, np.asarray(self.min_eta), self.threshold_V)
        first_soc = math.nan
        if math.isfinite(first):
            first_soc = float(np.interp(first, tt, np.asarray(self.soc)))
        prov = provenance or Provenance(
            "microbat.degradation.PlatingMonitor",
            parameters={"threshold_V": self.threshold_V},
            inputs={"shape": list(self.ms.shape), "voxel_size": list(self.ms.voxel_size)},
        )
        return PlatingResult(
            time_s=np.asarray(self.times),
            soc=np.asarray(self.soc),
            area_fraction_at_risk=np.asarray(self.area_at_risk),
            min_overpotential_V=np.asarray(self.min_eta),
            min_plating_overpotential_V=float(np.min(self.min_eta)),
            onset_time_s=float(first),
            onset_soc=first_soc,
            onset_time_map_s=onset_t,
            onset_soc_map=onset_soc,
            exposure_map_V_s=expo,
            map_times_s=np.asarray(maps_t),
            overpotential_maps_V=np.stack(maps),
            depth_m=depth,
            depth_at_risk_fraction=np.stack(self.layer_risk),
            depth_min_overpotential_V=np.stack(self.layer_min),
            depth_mean_overpotential_V=np.stack(self.layer_mean),
            hotspots=hot,
            interface_area_m2=self._area_total,
            faces=f.n_faces,
            voxel_size=tuple(self.ms.voxel_size),
            thickness_axis=f.thickness_axis,
            charge=dict(charge or {}),
            heterogeneity=dict(heterogeneity or {}),
            notes=tuple(notes),
            provenance=prov,
        )


def _hotspots(mon: PlatingMonitor, onset_map: np.ndarray, limit: int = 50) -> tuple[Hotspot, ...]:
    """Connected regions of active voxels that went at risk (26-connectivity)."""
    from scipy import ndimage as ndi

    from microbat.core.clusters import label_clusters

    f = mon.faces
    assert f is not None
    risk = np.isfinite(onset_map)
    if not risk.any():
        return ()
    lab, n = label_clusters(risk, 26)
    flat = lab.reshape(-1)
    fl = flat[f.active]
    at = mon._ever  # faces that went at risk
    area = np.bincount(fl[at], f.area_m2[at], n + 1)[1:]
    vox = np.bincount(flat, minlength=n + 1)[1:]
    idx = np.arange(1, n + 1)
    h = np.asarray(mon.ms.voxel_size)
    cen = np.asarray(ndi.center_of_mass(risk, lab, idx)).reshape(n, -1)
    onset = ndi.minimum(np.nan_to_num(onset_map, nan=np.inf), lab, idx)
    last = mon._voxel_map(mon._eta_last)
    low = ndi.minimum(np.nan_to_num(last, nan=np.inf), lab, idx)
    t = f.thickness_axis
    n_t = mon.ms.shape[t]
    order = np.lexsort((-vox, -area))[:limit]
    out = []
    for rank, k in enumerate(order, start=1):
        c = (cen[k] + 0.5) * h
        out.append(
            Hotspot(
                id=rank,
                voxels=int(vox[k]),
                area_um2=float(area[k] * 1e12),
                centroid_m=tuple(float(v) for v in c),
                depth_m=float((n_t - cen[k][t] - 0.5) * h[t]),
                onset_time_s=float(onset[k]),
                min_overpotential_V=float(low[k]) if math.isfinite(low[k]) else math.nan,
            )
        )
    return tuple(out)


# --------------------------------------------------------------------------- driver
def plating_map(
    ms: Microstructure,
    params: Any = "chen2020",
    *,
    c_rate: float = 3.0,
    cv_voltage: float | None = None,
    electrode: str = "negative",
    options: Any = None,
    store_times: Sequence[float] | None = None,
    particles: Any = None,
    heterogeneity_times: Sequence[float] | None = None,
    threshold_V: float = 0.0,
    on_step: Callable[[Any], None] | None = None,
    **charge_kwargs: Any,
) -> PlatingResult:
    """Charge a resolved electrode and map where and when lithium could plate.

    Parameters
    ----------
    ms : Microstructure
        3D labelled electrode (the image is the negative electrode of ``params`` by
        default), current collector at index 0 of the thickness axis.
    params : str, CellParameters or ResolvedParameters, default "chen2020"
        Parameter set.
    c_rate : float, default 3
        Charge rate (positive).
    cv_voltage : float, optional
        Constant-voltage hold after the constant-current phase (V vs Li).
    electrode : {"negative", "positive"}, default "negative"
        Which electrode of the set the image is.
    options : ResolvedOptions, optional
        Model and solver options of the resolved model.
    store_times : sequence of float, optional
        Times (s) of the stored overpotential maps (default: 25, 50, 75 % of the
        nominal charge time ``3600 / c_rate``; the end is always stored).
    particles : Particles or bool, optional
        Labelled particles for the aging heterogeneity index (True: label them with
        :func:`~microbat.degradation.particles.label_particles`; default True).
    heterogeneity_times : sequence of float, optional
        Times (s) at which the index is evaluated (default: those of the maps).
    threshold_V : float, default 0
        At-risk threshold on η_pl.
    on_step : callable, optional
        Passed to the charge (progress).
    **charge_kwargs
        Further keywords of the resolved charge (checkpoint, snapshot_times, ...).

    Returns
    -------
    PlatingResult

    Raises
    ------
    InvalidInputError
        ``c_rate`` ≤ 0, a parameter set without that electrode, an image without
        active/electrolyte faces (:class:`PhaseError`); the charge's own refusals
        (a start at or past the charge end, a CV voltage already passed).

    Notes
    -----
    The monitor adds O(interface faces + active voxels) per accepted step (0.2 % of
    a charge in ``benchmarks/bench_plating.py``); the result holds one float32 map
    of the image per stored time and three more for the onset and exposure.

    Examples
    --------
    >>> from microbat.cell.resolved import sphere_lattice
    >>> res = plating_map(sphere_lattice(), c_rate=6)  # doctest: +SKIP
    >>> round(res.onset_time_s), round(res.onset_soc, 2)  # doctest: +SKIP
    (428, 0.66)
    """
    from microbat.cell.resolved import simulate_charge
    from microbat.degradation.heterogeneity import aging_heterogeneity
    from microbat.degradation.particles import label_particles

    t0 = time.perf_counter()
    if not (isinstance(c_rate, int | float) and math.isfinite(c_rate) and c_rate > 0):
        raise InvalidInputError(f"c_rate = {c_rate!r}; give a positive C-rate (e.g. 3)")
    t_nom = 3600.0 / float(c_rate)
    if store_times is None:
        store_times = [0.25 * t_nom, 0.5 * t_nom, 0.75 * t_nom]
    if particles is None or particles is True:
        particles = label_particles(ms)
    elif particles is False:
        particles = None
    mon = PlatingMonitor(ms, store_times=store_times, particles=particles, threshold_V=threshold_V)
    run = simulate_charge(
        ms,
        params,
        c_rate=float(c_rate),
        electrode=electrode,
        cv_voltage=cv_voltage,
        options=options,
        on_fields=mon,
        on_step=on_step,
        **charge_kwargs,
    )
    t_end = getattr(run, "time_s", None)
    if t_end is not None and len(t_end):
        mon.end_at(float(t_end[-1]))  # the end interpolated inside the last step
    charge = {
        "c_rate": float(c_rate),
        "current_A": float(getattr(run, "current_A", math.nan)),
        "cv_voltage_V": cv_voltage,
        "electrode": electrode,
        "complete": bool(getattr(run, "complete", True)),
        "status": str(getattr(run, "status", "")),
        "end_time_s": float(mon.times[-1]) if mon.times else math.nan,
        "steps": int(getattr(run, "steps", mon.calls)),
        "monitor_s": mon.seconds,
        "monitor_calls": mon.calls,
        "initial_stoichiometry": float(getattr(run, "initial_stoichiometry", math.nan)),
        "end_stoichiometry": getattr(run, "end_stoichiometry", None),
        "final_mean_stoichiometry": float(getattr(run, "final_mean_stoichiometry", math.nan)),
        "one_c_current_A": float(getattr(run, "one_c_current_A", math.nan)),
        "cv_start_s": getattr(run, "cv_start_s", None),
        "wall_s": float(getattr(run, "timing", {}).get("total_s", math.nan)),
    }
    notes = []
    if not charge["complete"]:
        notes.append(f"partial charge: {charge['status']}")
    het: dict[str, Any] = {}
    if particles is not None and mon.times:
        par = _c_max(params, electrode)
        times = list(heterogeneity_times) if heterogeneity_times is not None else None
        het = aging_heterogeneity(mon, c_max=par, times=times).to_dict()
    prov = Provenance(
        "microbat.degradation.plating_map",
        parameters={
            "params": params if isinstance(params, str) else getattr(params, "name", "custom"),
            "c_rate": float(c_rate),
            "cv_voltage": cv_voltage,
            "electrode": electrode,
            "threshold_V": threshold_V,
        },
        wall_time_s=time.perf_counter() - t0,
        inputs={"shape": list(ms.shape), "voxel_size": list(ms.voxel_size)},
    )
    return mon.result(charge=charge, heterogeneity=het, notes=notes, provenance=prov)


def _c_max(params: Any, electrode: str) -> float:
    from microbat.cell.parameters import CellParameters, load_parameters
    from microbat.cell.resolved import ResolvedParameters

    if isinstance(params, ResolvedParameters):
        return float(params.c_max)
    if not isinstance(params, CellParameters):
        params = load_parameters(params)
    return float(ResolvedParameters.from_cell_parameters(params, electrode).c_max)


# --------------------------------------------------------------------------- output
def _write(res: PlatingResult, out: Path) -> list[Path]:
    import csv
    import json

    from microbat.core.atomic import atomic_path, atomic_write_text
    from microbat.io.vtk import write_vti_fields

    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []

    def write_csv(name: str, head: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        p = out / name
        with atomic_path(p) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(head)
            for r in rows:
                w.writerow(
                    [
                        "" if (v is None or (isinstance(v, float) and not math.isfinite(v))) else v
                        for v in r
                    ]
                )
        files.append(p)

    write_csv(
        "plating_series.csv",
        ["time_s", "soc", "area_fraction_at_risk", "min_plating_overpotential_V"],
        list(
            zip(
                res.time_s.tolist(),
                res.soc.tolist(),
                res.area_fraction_at_risk.tolist(),
                res.min_overpotential_V.tolist(),
                strict=True,
            )
        ),
    )
    write_csv(
        "plating_depth.csv",
        [
            "depth_from_separator_m",
            "area_fraction_at_risk_end",
            "min_plating_overpotential_V_end",
            "mean_plating_overpotential_V_end",
        ],
        list(
            zip(
                res.depth_m.tolist(),
                res.depth_at_risk_fraction[-1].tolist(),
                res.depth_min_overpotential_V[-1].tolist(),
                res.depth_mean_overpotential_V[-1].tolist(),
                strict=True,
            )
        ),
    )
    write_csv(
        "hotspots.csv",
        ["id", "voxels", "area_um2", "centroid_0_m", "centroid_1_m", "centroid_2_m", "depth_m",
         "onset_time_s", "min_plating_overpotential_V"],
        [
            [h.id, h.voxels, h.area_um2, *h.centroid_m, h.depth_m, h.onset_time_s,
             h.min_overpotential_V]
            for h in res.hotspots
        ],
    )  # fmt: skip
    het = res.heterogeneity or {}
    table = het.get("particles") or []
    if table:
        head = list(table[0])
        write_csv("particles.csv", head, [[r.get(k) for k in head] for r in table])
    fields = {
        "onset_time_s": res.onset_time_map_s,
        "onset_soc": res.onset_soc_map,
        "plating_exposure_V_s": res.exposure_map_V_s,
        "plating_overpotential_V": res.overpotential_maps_V[-1],
    }
    p = out / "plating_fields.vti"
    write_vti_fields(
        fields,
        p,
        voxel_size=res.voxel_size,
        metadata={"end_time_s": float(res.time_s[-1]), "onset_time_s": res.onset_time_s},
    )
    files.append(p)
    p = out / "fields.npz"
    with atomic_path(p) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(
            fh,
            map_times_s=res.map_times_s,
            overpotential_maps_V=res.overpotential_maps_V,
            **fields,
        )
    files.append(p)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.0))
    fig.subplots_adjust(left=0.05, right=0.95, top=0.86, bottom=0.1, wspace=0.35)
    draw_hotspot_slices(fig, res)
    p = out / "hotspot_slices.png"
    with atomic_path(p) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    files.append(p)
    fig = Figure(figsize=(6.5, 4.0))
    fig.subplots_adjust(left=0.12, right=0.86, top=0.95, bottom=0.13)
    res.plot(fig.add_subplot(111))
    p = out / "plating_curves.png"
    with atomic_path(p) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    files.append(p)
    p = out / "result.json"
    atomic_write_text(p, json.dumps(res.to_dict(), indent=2, allow_nan=False) + "\n")
    files.append(p)
    return files


def hotspot_centre(res: PlatingResult) -> tuple[int, ...]:
    """Voxel index of the worst hotspot's centroid (the image centre without one)."""
    hs = res.worst_hotspot()
    shape = res.onset_time_map_s.shape
    if hs is None:
        return tuple(n // 2 for n in shape)
    return tuple(
        int(min(max(round(c / h - 0.5), 0), n - 1))
        for c, h, n in zip(hs.centroid_m, res.voxel_size, shape, strict=True)
    )


def draw_hotspot_slices(fig: Any, res: PlatingResult) -> None:
    """Onset-time map on three orthogonal slices through the worst hotspot."""
    import matplotlib as mpl

    centre = hotspot_centre(res)
    onset = res.onset_time_map_s
    finite = onset[np.isfinite(onset)]
    vmax = float(finite.max()) / 60.0 if finite.size else 1.0
    vmin = float(finite.min()) / 60.0 if finite.size else 0.0
    cmap = mpl.colormaps["viridis_r"].with_extremes(bad="0.85")
    im = None
    for k in range(3):
        ax = fig.add_subplot(1, 3, k + 1)
        sl = [slice(None)] * 3
        sl[k] = slice(centre[k], centre[k] + 1)
        img = np.squeeze(onset[tuple(sl)], axis=k) / 60.0
        im = ax.imshow(img, cmap=cmap, vmin=vmin, vmax=max(vmax, vmin + 1e-6), origin="upper")
        ax.set_title(f"axis {k} = {centre[k]}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if im is not None:
        cb = fig.colorbar(im, ax=fig.axes, shrink=0.85)
        cb.set_label("plating onset [min] (grey: never / not interface)")
    fig.suptitle(
        "onset of η_pl < 0 through the worst hotspot"
        if res.hotspots
        else "no plating risk (slices through the centre)",
        fontsize=10,
    )


# --------------------------------------------------------------------------- DFN
@dataclass(frozen=True)
class DFNPlatingResult(Result):
    """The same charge in PyBaMM's DFN (graphite vs lithium metal, homogenised).

    Attributes
    ----------
    onset_time_s : float
        First time at which ``φ_s − φ_e`` falls below zero anywhere in the electrode
        (linear interpolation between output times; NaN: never).
    onset_soc : float
        Volume-mean stoichiometry of the electrode at the onset.
    time_s, voltage_V, min_overpotential_V, soc : ndarray
        The run: time, cell voltage, lowest ``φ_s − φ_e`` over the electrode, mean
        stoichiometry.
    plated_lithium_mol : float or None
        Lithium plated by PyBaMM's plating side reaction (None when the model ran
        without it).
    current_A : float
        Applied charge current (through the image's cross-section).
    end_status : str
        How the DFN run ended (PyBaMM's termination).
    inputs : dict
        The homogenised inputs (thickness, porosity, active fraction, area per
        volume, radius, τ, σ_eff) and the options used.
    solve_time_s : float
    provenance : Provenance
    """

    onset_time_s: float
    onset_soc: float
    time_s: np.ndarray
    voltage_V: np.ndarray
    min_overpotential_V: np.ndarray
    soc: np.ndarray
    plated_lithium_mol: float | None
    current_A: float
    end_status: str
    inputs: dict[str, Any]
    solve_time_s: float
    provenance: Provenance = field(default_factory=lambda: Provenance("microbat"))


def dfn_end_time(res: PlatingResult) -> float:
    """End of the DFN comparison of a :func:`plating_map` run: the end of its CC phase.

    :func:`dfn_plating` charges at constant current; under a CC–CV protocol the two
    models are compared up to the start of the constant-voltage hold.
    """
    cv = (res.charge or {}).get("cv_start_s")
    end = float(res.time_s[-1])
    return min(end, float(cv)) if cv is not None else end


def _first_crossing(t: np.ndarray, y: np.ndarray, level: float = 0.0) -> float:
    """First time a sampled curve goes below ``level`` (linear interpolation)."""
    below = np.flatnonzero(y < level)
    if below.size == 0:
        return math.nan
    k = int(below[0])
    if k == 0:
        return float(t[0])
    y0, y1 = y[k - 1] - level, y[k] - level
    return float(t[k - 1] + (t[k] - t[k - 1]) * y0 / (y0 - y1))


def dfn_plating(
    ms: Microstructure,
    params: Any = "chen2020",
    *,
    current_A: float,
    initial_stoichiometry: float | None = None,
    cutoff_V: float = 0.0,
    end_time_s: float | None = None,
    electrode: str = "negative",
    options: Any = None,
    particle_radius_m: float | None = None,
    plating: str = "none",
    mesh_points: Mapping[str, int] | None = None,
) -> DFNPlatingResult:
    """Charge the homogenised electrode in PyBaMM's DFN and find the plating onset.

    PyBaMM's half cell has a *positive* working electrode only (its ``"negative"``
    working electrode was removed), so the image's electrode (graphite by default)
    is put in the working-electrode slot against lithium metal: every
    ``Negative electrode ...`` / ``negative particle`` parameter of the set moves to
    the positive keys, and charging the graphite is a positive ("discharge") current
    of that half cell. Both models then solve the same half cell at the same current
    through the same cross-section: the same current density at the electrode.

    The homogenised inputs come from the image through
    :func:`microbat.cell.resolved.homogenise` (porosity, active fraction, the
    resolved model's reaction area per volume, τ from the tortuosity tensor, σ_eff by
    a conduction solve); the measured area enters through the exchange-current
    scale (``a_meas / (3 ε_act / r)``) and τ through the Bruggeman exponent, as the
    micro-informed bridge (:mod:`microbat.cell.micro`) does.

    Parameters
    ----------
    ms : Microstructure
        The electrode image.
    params : str or CellParameters, default "chen2020"
    current_A : float
        Charge current through the image's cross-section (A, positive).
    initial_stoichiometry : float, optional
        Start stoichiometry (default: the set's initial one).
    cutoff_V : float, default 0
        End of the charge: the working electrode's potential against lithium.
    end_time_s : float, optional
        Stop at this time.
    electrode : {"negative", "positive"}
        Which electrode of the set the image is.
    options : ResolvedOptions, optional
        The resolved model's options (carbon-binder porosity, reaction-area mode,
        solid conductivity, lithium exchange current) so that both models see the
        same electrode.
    particle_radius_m : float, optional
        DFN particle radius (default: half the d50 of the active phase).
    plating : {"none", "irreversible", "reversible", "partially reversible"}
        PyBaMM's lithium-plating submodel on the working electrode.
    mesh_points : mapping, optional
        PyBaMM ``var_pts`` overrides (default ``x_s`` 10, ``x_p`` 30, ``r_p`` 30).

    Returns
    -------
    DFNPlatingResult

    Raises
    ------
    InvalidInputError
        A non-positive current, an unknown electrode or plating option.
    ConvergenceError
        The DFN failed without a partial solution.
    """
    from microbat.cell._pybamm import import_pybamm
    from microbat.cell.parameters import bruggeman_from_tau
    from microbat.cell.resolved import ResolvedOptions, homogenise
    from microbat.cell.resolved.compare import _cell_parameters
    from microbat.core.errors import ConvergenceError

    if not (current_A > 0 and math.isfinite(current_A)):
        raise InvalidInputError(f"current_A = {current_A!r}; give a positive charge current")
    if electrode not in ("negative", "positive"):
        raise InvalidInputError(f"electrode must be 'negative' or 'positive', got {electrode!r}")
    if plating not in ("none", "irreversible", "reversible", "partially reversible"):
        raise InvalidInputError(f"unknown plating option {plating!r}")
    pybamm = import_pybamm()
    t0 = time.perf_counter()
    p = _cell_parameters(params)
    el = p.electrode(electrode)
    opt = options or ResolvedOptions()
    opt_h = ResolvedOptions(
        cbd_porosity=opt.cbd_porosity,
        cbd_bruggeman=opt.cbd_bruggeman,
        cbd_conductivity_S_per_m=opt.cbd_conductivity_S_per_m,
        reaction_area=opt.reaction_area,
        separator_layers=opt.separator_layers,
        solid_conductivity_S_per_m=opt.solid_conductivity_S_per_m or el.conductivity_S_per_m,
    )
    h = homogenise(ms, p, options=opt_h, particle_radius_m=particle_radius_m)
    pv = p.to_pybamm()
    src = "Negative" if electrode == "negative" else "Positive"
    moved = {}
    for key in list(pv.keys()):
        if key.startswith(src + " electrode") or key.startswith(src + " particle"):
            moved["Positive" + key[len(src) :]] = pv[key]
        elif f"in {src.lower()} electrode" in key:
            moved[key.replace(f"in {src.lower()} electrode", "in positive electrode")] = pv[key]
    pv.update(moved, check_already_exists=False)
    c_max = float(pv["Maximum concentration in positive electrode [mol.m-3]"])
    th0 = (
        float(initial_stoichiometry)
        if initial_stoichiometry is not None
        else float(pv["Initial concentration in positive electrode [mol.m-3]"]) / c_max
    )
    if not (0.0 < th0 < 1.0):
        raise InvalidInputError(f"initial stoichiometry {th0!r} is outside (0, 1)")
    a_dfn = 3.0 * h.active_fraction / h.particle_radius_m
    j0_scale = h.specific_surface_area_per_m / a_dfn
    j0 = pv["Positive electrode exchange-current density [A.m-2]"]

    def j0_scaled(c_e: Any, c_s_surf: Any, c_s_max: Any, T: Any) -> Any:
        return j0_scale * j0(c_e, c_s_surf, c_s_max, T)

    side = math.sqrt(h.area_m2)
    pv.update(
        {
            "Positive electrode thickness [m]": h.thickness_m,
            "Positive electrode porosity": h.porosity,
            "Positive electrode active material volume fraction": h.active_fraction,
            "Positive particle radius [m]": h.particle_radius_m,
            "Positive electrode exchange-current density [A.m-2]": j0_scaled,
            "Positive electrode Bruggeman coefficient (electrolyte)": bruggeman_from_tau(
                h.porosity, max(h.tau_electrolyte_micro, 1.0)
            ),
            "Positive electrode Bruggeman coefficient (electrode)": 0.0,
            "Positive electrode conductivity [S.m-1]": h.solid_conductivity_micro_S_per_m,
            "Initial concentration in positive electrode [mol.m-3]": th0 * c_max,
            "Electrode height [m]": side,
            "Electrode width [m]": side,
            "Number of electrodes connected in parallel to make a cell": 1.0,
            "Current function [A]": float(current_A),
            "Lower voltage cut-off [V]": float(cutoff_V),
            "Upper voltage cut-off [V]": 5.0,
            "Exchange-current density for lithium metal electrode [A.m-2]": (
                opt.li_exchange_current_A_per_m2
            ),
            "Lithium metal partial molar volume [m3.mol-1]": 1.3e-5,
            "Negative electrode conductivity [S.m-1]": 1e8,
        },
        check_already_exists=False,
    )
    model_opts: dict[str, Any] = {"working electrode": "positive"}
    if plating != "none":
        model_opts["lithium plating"] = plating
        # plating kinetics of O'Kane et al. 2022 (PyBaMM's "OKane2022" set) where the
        # set has none
        ok = pybamm.ParameterValues("OKane2022")
        for key in (
            "Exchange-current density for plating [A.m-2]",
            "Exchange-current density for stripping [A.m-2]",
            "Initial plated lithium concentration [mol.m-3]",
            "Typical plated lithium concentration [mol.m-3]",
            "Lithium plating transfer coefficient",
            "Lithium plating kinetic rate constant [m.s-1]",
            "Dead lithium decay constant [s-1]",
            "Dead lithium decay rate [s-1]",
        ):
            if key not in pv.keys():
                pv.update({key: ok[key]}, check_already_exists=False)
        # PyBaMM plates on the DFN's area 3ε/R; the measured area enters the plating as
        # it enters the intercalation (through its rate constant), so both models plate
        # on the same area per volume whatever radius the DFN takes
        k_key = "Lithium plating kinetic rate constant [m.s-1]"
        pv.update({k_key: j0_scale * float(pv[k_key])}, check_already_exists=False)
    model = pybamm.lithium_ion.DFN(model_opts)
    var_pts = dict(model.default_var_pts)
    var_pts.update(
        {k: int(v) for k, v in {"x_s": 10, "x_p": 30, "r_p": 30, **(mesh_points or {})}.items()}
    )
    cap_s = (1.0 - th0) * h.active_fraction * h.thickness_m * h.area_m2 * c_max * 96485.33212
    t_end = float(end_time_s) if end_time_s is not None else 1.2 * cap_s / current_A
    solver = pybamm.IDAKLUSolver(rtol=1e-7, atol=1e-9, on_failure="ignore")
    sim = pybamm.Simulation(model, parameter_values=pv, solver=solver, var_pts=var_pts)
    t_eval = np.linspace(0.0, t_end, 801)
    try:
        sol = sim.solve([0.0, t_end], t_interp=t_eval)
    except pybamm.SolverError as exc:
        raise ConvergenceError(f"the DFN charge failed: {str(exc).splitlines()[0]}") from None
    tt = np.asarray(sol.t, float)
    ps = np.asarray(sol["Positive electrode potential [V]"].entries, float)
    pe = np.asarray(sol["Positive electrolyte potential [V]"].entries, float)
    m = np.min(ps - pe, axis=0)
    v = np.asarray(sol["Voltage [V]"].entries, float)
    soc = (
        np.asarray(sol["Average positive particle concentration [mol.m-3]"].entries, float) / c_max
    )
    onset = _first_crossing(tt, m)
    onset_soc = float(np.interp(onset, tt, soc)) if math.isfinite(onset) else math.nan
    plated = None
    if plating != "none":
        for name in (
            "Loss of lithium to positive lithium plating [mol]",
            "Loss of lithium to lithium plating [mol]",
        ):
            try:
                plated = float(sol[name].entries[-1])
                break
            except KeyError:
                continue
    return DFNPlatingResult(
        onset_time_s=onset,
        onset_soc=onset_soc,
        time_s=tt,
        voltage_V=v,
        min_overpotential_V=m,
        soc=soc,
        plated_lithium_mol=plated,
        current_A=float(current_A),
        end_status=str(sol.termination),
        inputs={**h.to_dict(), "initial_stoichiometry": th0, "j0_scale": j0_scale,
                "cutoff_V": cutoff_V, "plating": plating},
        solve_time_s=time.perf_counter() - t0,
        provenance=Provenance(
            "microbat.degradation.plating.dfn_plating",
            parameters={"params": p.name, "current_A": float(current_A), "electrode": electrode,
                        "plating": plating},
            wall_time_s=time.perf_counter() - t0,
            inputs={"shape": list(ms.shape), "voxel_size": list(ms.voxel_size)},
        ),
    )  # fmt: skip
