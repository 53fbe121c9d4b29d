r"""Gas in the pores: capillary drainage, in-situ bubbles, and what they cost.

A non-wetting gas entering an electrolyte-filled electrode (gas from side
reactions, or electrolyte that never wetted the coating) takes the pores it can
reach at its capillary pressure. This module places such gas by the physics of
capillarity, adds it to the :class:`~microbat.core.microstructure.Microstructure`
as a phase of role ``gas`` (so every other stage runs on the gassed electrode),
and measures what it costs: the ionic transport of the remaining electrolyte, the
wetted active surface, the electrolyte cut off from the separator and, through the
P2D bridge, the rate capability.

Capillarity
-----------
A meniscus of the wetting electrolyte (contact angle ``θ`` measured through the
liquid, surface tension ``γ``) lets gas into a pore throat of radius ``r`` when
the gas overpressure reaches the Young–Laplace pressure

.. math::

    P_c = \frac{2 \gamma \cos\theta}{r}.

Morphological drainage (Hilpert & Miller 2001) reads this on the voxels: with the
Euclidean distance ``d(c)`` of every pore voxel to the nearest solid voxel (the
``edt`` package), at pressure ``P`` the gas fills every sphere of radius ``d(c)``
centred on a voxel ``c`` with ``d(c) >= r(P) = 2γcosθ/P`` that is connected to the
gas inlet through voxels with ``d >= r(P)`` (face connectivity). Spheres have the
integer radius ``floor(d)`` and contain the voxels strictly inside it, as in
PoreSpy's ``drainage``; with this convention the two give the same invaded voxels
(``docs/validation/degradation.md``).

One pass for the whole curve
----------------------------
Instead of one erosion, labelling and dilation per pressure, the bottleneck level
of every voxel — the largest ``d`` threshold at which it is still connected to the
inlet — comes from one bucket-queue flood over the distinct distance values
(``O(N)``); painting every sphere with its centre's bottleneck level (spheres
inside a neighbour's sphere of no lower level skipped, the rest painted in
parallel slabs) gives each voxel the largest radius, hence the lowest pressure, at
which it is invaded. Any pressure — 20 or 2000 — is then a threshold of that map.

Trapping (optional): the electrolyte leaves through an outlet face (by default the
face opposite the inlet); electrolyte cut off from it by the gas stays. As in
PoreSpy, it is applied after the invasion, at the requested pressure steps: a
second flood over the step at which each voxel is invaded finds, for every voxel,
the last step at which it still connects to the outlet; a voxel disconnected before
its own invasion is trapped.

Placing gas at a saturation
---------------------------
``mode="drainage"`` fills spheres in the order of their invasion pressure from the
inlet face (the separator side by default), nearest the inlet first within one
pressure level; ``"bubbles"`` has no inlet: gas sitting in the electrode (in-situ
gassing) occupies the largest pores first, which is the capillary equilibrium of a
given gas volume (ties in random, seeded order); ``"nucleation"`` grows bubbles
from random electrolyte voxels touching the active material (reaction sites, one
per (10 µm)³ by default), each filling the largest pores it can reach. Spheres are
painted whole in that order; the one that would overshoot is filled from its centre
outwards (a smaller bubble), so the target is met to one voxel (the saturation
reached is reported; it is lower only when not enough pore space is accessible).
Saturation ``S`` is the gas volume over the pore volume before gassing.

Defaults (SI)
-------------
``γ = 0.035 N/m`` (:data:`SURFACE_TENSION`): carbonate electrolytes of LiPF6 in
EC/DMC-type solvents measure 30–40 mN/m at room temperature [2]_ [3]_.
``θ = 30°`` (:data:`CONTACT_ANGLE_DEG`): a representative contact angle of such
electrolytes on calendered electrodes, which wet well; reported values range
from near 0° to about 50° [2]_ [3]_. Both only scale the pressure axis
(``P ∝ γ cos θ``): the gas placed at a saturation, and every transport loss, do not
depend on them.

References
----------
.. [1] M. Hilpert, C. T. Miller, "Pore-morphology-based simulation of drainage in
   totally wetting porous media", Adv. Water Resour. 24 (2001) 243-255.
.. [2] M. Dahbi, F. Ghamouss, F. Tran-Van, D. Lemordant, M. Anouti, "Interfacial
   properties of LiTFSI and LiPF6-based electrolytes in binary and ternary mixtures
   of alkylcarbonates on graphite electrodes and Celgard separator", Ind. Eng.
   Chem. Res. 51 (2012) 5240-5245.
.. [3] M.-S. Wu, T.-L. Liao, Y.-Y. Wang, C.-C. Wan, "Assessment of the wettability
   of porous electrodes for lithium-ion batteries", J. Appl. Electrochem. 34 (2004)
   797-805.
.. [4] J. T. Gostick et al., "PoreSpy: A Python toolkit for quantitative analysis
   of porous media images", J. Open Source Softw. 4 (2019) 1296.
.. [5] W. Silversmith, "edt: multi-label anisotropic Euclidean distance transform"
   (PyPI package ``edt``).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from microbat.core.errors import InvalidInputError, MicrobatError, PhaseError, require
from microbat.core.microstructure import Microstructure
from microbat.core.phases import Phase, PhaseRole, PhaseTable
from microbat.core.results import Provenance, Result

__all__ = [
    "CONTACT_ANGLE_DEG",
    "SURFACE_TENSION",
    "DrainageResult",
    "GasPlacement",
    "GasResult",
    "add_gas",
    "capillary_pressure",
    "capillary_radius",
    "drainage",
    "gas_analysis",
    "place_gas",
]

#: Surface tension of the electrolyte (N/m): LiPF6 in EC/DMC-type carbonates measure
#: 30–40 mN/m at 25 °C (Dahbi et al. 2012; Wu et al. 2004).
SURFACE_TENSION = 0.035
#: Contact angle of the electrolyte on the electrode (degrees, through the liquid):
#: a representative value for carbonate electrolytes, which wet calendered
#: electrodes well (reported from near 0° to about 50°; Dahbi et al. 2012).
CONTACT_ANGLE_DEG = 30.0
#: Default density of nucleation sites (per m³): one per (10 µm)³.
NUCLEATION_DENSITY = 1e15

Mode = Literal["drainage", "bubbles", "nucleation"]
FaceSpec = str | tuple[int, int] | None


# ===================================================================== helpers
def _check_capillary(surface_tension: float, contact_angle_deg: float) -> float:
    """Validate γ and θ; return ``γ cos θ`` (N/m)."""
    try:
        g = float(surface_tension)
        th = float(contact_angle_deg)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"surface tension {surface_tension!r} N/m and contact angle "
            f"{contact_angle_deg!r}° must be numbers"
        ) from None
    if not (math.isfinite(g) and g > 0):
        raise InvalidInputError(
            f"surface tension {surface_tension!r} N/m must be positive and finite "
            "(carbonate electrolytes: about 0.035 N/m)"
        )
    if not (math.isfinite(th) and 0.0 <= th <= 180.0):
        raise InvalidInputError(
            f"contact angle {contact_angle_deg!r}° is outside [0°, 180°]; give the angle "
            "through the electrolyte in degrees (carbonate electrolytes: 0–50°)"
        )
    if th >= 90.0:
        raise InvalidInputError(
            f"contact angle {th:g}° ≥ 90°: the electrolyte does not wet the electrode, so "
            "gas is not the non-wetting phase and capillary drainage (largest pores first) "
            "does not apply; give an angle below 90°"
        )
    return g * math.cos(math.radians(th))


def capillary_pressure(
    radius_m: float | np.ndarray,
    *,
    surface_tension: float = SURFACE_TENSION,
    contact_angle_deg: float = CONTACT_ANGLE_DEG,
) -> float | np.ndarray:
    """Young–Laplace entry pressure ``P_c = 2 γ cos θ / r`` (Pa).

    Parameters
    ----------
    radius_m : float or ndarray
        Throat (sphere) radius in metres.
    surface_tension : float, default 0.035
        Electrolyte surface tension, N/m.
    contact_angle_deg : float, default 30
        Contact angle through the electrolyte, degrees, in [0, 90).

    Returns
    -------
    float or ndarray
        Capillary pressure in Pa.

    Examples
    --------
    >>> round(capillary_pressure(1e-6, surface_tension=0.035, contact_angle_deg=0.0))
    70000
    """
    gc = _check_capillary(surface_tension, contact_angle_deg)
    return 2.0 * gc / np.asarray(radius_m, float) if np.ndim(radius_m) else 2.0 * gc / radius_m


def capillary_radius(
    pressure_Pa: float | np.ndarray,
    *,
    surface_tension: float = SURFACE_TENSION,
    contact_angle_deg: float = CONTACT_ANGLE_DEG,
) -> float | np.ndarray:
    """The radius ``r = 2 γ cos θ / P`` invaded at capillary pressure ``P`` (m)."""
    gc = _check_capillary(surface_tension, contact_angle_deg)
    p = np.asarray(pressure_Pa, float)
    if np.any(~np.isfinite(p)) or np.any(p <= 0):
        raise InvalidInputError(f"capillary pressures must be positive and finite, got {p}")
    return 2.0 * gc / p if np.ndim(pressure_Pa) else float(2.0 * gc / p)


def _pore_phases(ms: Microstructure, phase: str | Sequence[str]) -> tuple[Phase, ...]:
    try:
        found = ms.phases.resolve(phase)
    except PhaseError:
        found = ()
    found = tuple(p for p in found if p.role != PhaseRole.GAS)
    if not found or not ms.mask([p.name for p in found]).any():
        raise PhaseError(
            f"this image has no pore phase to hold gas (asked for {phase!r}; phases: "
            f"{', '.join(f'{p.name} ({p.role.value})' for p in ms.phases.values())}); give "
            "the electrolyte-filled pore phase, e.g. --phases pore=0,cbd=1,active=2"
        )
    return found


def _face(ms: Microstructure, spec: FaceSpec, what: str) -> tuple[int, int] | None:
    """``"separator"``, ``"collector"``, ``(axis, side)`` or ``"axis:first|last"``."""
    if spec is None:
        return None
    ax = ms.thickness_axis
    if isinstance(spec, str):
        s = spec.strip().lower()
        if s in ("none", ""):
            return None
        if s in ("separator", "sep"):
            return (ax, -1)
        if s in ("collector", "current_collector", "current-collector", "cc"):
            return (ax, 0)
        a, _, side = s.partition(":")
        try:
            axis = int(a)
            sd = {"first": 0, "0": 0, "last": -1, "-1": -1}[side]
        except (ValueError, KeyError):
            raise InvalidInputError(
                f"{what} {spec!r}: use separator, collector, none, or axis:first|last "
                "(e.g. 2:first)"
            ) from None
        spec = (axis, sd)
    try:
        axis, side = (int(v) for v in spec)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{what} {spec!r}: give (axis, side)") from None
    if not (0 <= axis < ms.ndim) or side not in (0, -1):
        raise InvalidInputError(f"{what} {spec!r}: axis must be 0..{ms.ndim - 1} and side 0 or -1")
    return (axis, side)


def _face_mask(shape: tuple[int, ...], face: tuple[int, int]) -> np.ndarray:
    m = np.zeros(shape, bool)
    sl = [slice(None)] * len(shape)
    sl[face[0]] = face[1]
    m[tuple(sl)] = True
    return m


def _saturations(saturation: float | Sequence[float]) -> list[float]:
    vals = [saturation] if np.ndim(saturation) == 0 else list(saturation)  # type: ignore[arg-type]
    if not vals:
        raise InvalidInputError("give at least one gas saturation in [0, 1)")
    out = []
    for s in vals:
        try:
            v = float(s)
        except (TypeError, ValueError):
            raise InvalidInputError(f"gas saturation {s!r} is not a number") from None
        if not (math.isfinite(v) and 0.0 <= v < 1.0):
            raise InvalidInputError(
                f"gas saturation {s!r} is outside [0, 1): it is the fraction of the pore "
                "volume taken by gas (0.2 = a fifth of the pores), and a fully dry "
                "electrode (1) carries no ionic current"
            )
        out.append(v)
    return out


# ================================================================ the capillary core
class _Capillary:
    """Distance map, levels, bottleneck flood and sphere centres of one image (cached).

    Parameters
    ----------
    pore : ndarray of bool, 3D
        Voxels that may hold gas.
    voxel_size : tuple of 3 float
        Edges in metres (the third may be a dummy for 2D images).
    ndim : int
        Dimensions of the image (2 or 3).
    """

    def __init__(self, pore: np.ndarray, voxel_size: Sequence[float], ndim: int) -> None:
        edt = require("edt")
        h = np.asarray(voxel_size, float)
        self.pore = pore
        self.ndim = ndim
        hh = h[:ndim]
        self.unit = float(hh.min())  # distances in units of the smallest edge
        s = h / self.unit
        self.steps = tuple(float(v) for v in s)
        self.iso = bool(np.allclose(hh, hh[0], rtol=1e-12, atol=0))
        pore2 = pore if ndim == 3 else pore[..., 0]
        dt = edt.edt(
            np.ascontiguousarray(pore2, dtype=np.uint8),
            anisotropy=tuple(s[:ndim]),
            black_border=False,
            parallel=_threads(),
        ).astype(np.float32)
        self.dt = dt if ndim == 3 else dt[..., None]
        d = self.dt[pore]
        if self.iso:
            # squared distances are integers on an isotropic grid: exact levels
            k2 = np.rint(d.astype(np.float64) ** 2).astype(np.int64)
            present = np.bincount(k2)
            keys = np.flatnonzero(present)
            rank = np.cumsum(present > 0) - 1
            lev = rank[k2]
            self.level_radius_m = np.sqrt(keys.astype(np.float64)) * self.unit
        else:
            vals, lev = np.unique(d, return_inverse=True)
            self.level_radius_m = vals.astype(np.float64) * self.unit
        self.level = np.full(pore.shape, -1, np.int32)
        self.level[pore] = lev.astype(np.int32)
        self.rint = self.dt.astype(np.int32)  # floor of the radius, PoreSpy's convention
        self._floods: dict[Any, tuple[np.ndarray, np.ndarray]] = {}

    @property
    def n_levels(self) -> int:
        """Number of distinct distance values."""
        return int(self.level_radius_m.size)

    def accessibility(self, seeds: np.ndarray | None, key: Any) -> tuple[np.ndarray, np.ndarray]:
        """Bottleneck level of every pore voxel from ``seeds`` (all pores when None).

        Returns ``(acc, keep)``: the level map and the sphere centres that are not
        inside a neighbour's sphere of no lower level.
        """
        if key in self._floods:
            return self._floods[key]
        from microbat.degradation import _gas_kernels as K

        if seeds is None:
            acc = self.level
        else:
            idx = np.flatnonzero(seeds & self.pore).astype(np.int64)
            acc = K.flood_levels(self.level, idx, self.n_levels)
        s0, s1, s2 = (math.ceil(v - 1e-9) for v in self.steps)
        keep = K.prune_contained(acc, self.rint, s0, s1, s2)
        self._floods[key] = (acc, keep)
        return acc, keep

    def covering_centres(self, sites: np.ndarray) -> np.ndarray:
        """The centre of the largest sphere containing each site (a bubble's seed).

        A bubble nucleating on a pore wall grows into the pore it sits in: its gas
        is reachable from the largest inscribed sphere that contains the site, not
        only through the site's own (small) distance to the wall.
        """
        out = np.zeros(sites.shape, bool)
        rmax = int(self.rint.max(initial=1))
        shape = sites.shape
        st = np.asarray(self.steps)
        for v in zip(*np.nonzero(sites & self.pore), strict=True):
            lo = [max(0, int(v[a]) - math.ceil(rmax / st[a])) for a in range(3)]
            hi = [min(shape[a], int(v[a]) + math.ceil(rmax / st[a]) + 1) for a in range(3)]
            win = tuple(slice(lo[a], hi[a]) for a in range(3))
            grids = np.ogrid[win]
            d2 = sum(((g - int(v[a])) * st[a]) ** 2 for a, g in enumerate(grids))
            r = self.rint[win].astype(np.float64)
            cover = (d2 < r * r) & self.pore[win]
            if not cover.any():
                out[v] = True
                continue
            score = np.where(cover, self.dt[win] - 1e-6 * d2, -np.inf)
            c = np.unravel_index(int(np.argmax(score)), score.shape)
            out[tuple(lo[a] + int(c[a]) for a in range(3))] = True
        return out

    def invasion_levels(self, acc: np.ndarray, keep: np.ndarray) -> np.ndarray:
        """Highest level of a sphere covering each voxel (-1 where none): one pass."""
        from microbat.degradation import _gas_kernels as K

        big = keep & (self.rint > 1)
        idx = np.flatnonzero(big)
        out = acc.copy()  # every reachable voxel is a centre of its own sphere
        if idx.size:
            ci, cj, ck = np.unravel_index(idx, acc.shape)
            nthreads = _threads()
            K.paint_max(
                ci.astype(np.int64),
                cj.astype(np.int64),
                ck.astype(np.int64),
                self.rint.reshape(-1)[idx],
                acc.reshape(-1)[idx],
                out,
                *self.steps,
                max(4 * nthreads, 1),
            )
        return out

    def level_pressure(self, gc: float) -> np.ndarray:
        """Entry pressure of each level, ``2 γ cos θ / r`` (Pa)."""
        return 2.0 * gc / self.level_radius_m


def _threads() -> int:
    import numba

    return int(numba.get_num_threads())


def _flood_steps(
    step: np.ndarray, pore: np.ndarray, outlet: np.ndarray, n_steps: int
) -> np.ndarray:
    """Last step at which each voxel connects to the outlet (max-min over ``step``)."""
    from microbat.degradation import _gas_kernels as K

    lv = np.where(pore, step, -1).astype(np.int32)
    return K.flood_levels(lv, np.flatnonzero(outlet & pore).astype(np.int64), n_steps + 2)


# ================================================================ drainage curve
@dataclass(frozen=True)
class DrainageResult(Result):
    """Capillary pressure–saturation curve of a gas entering the pores.

    Attributes
    ----------
    pressure_Pa : ndarray
        Capillary pressures (ascending), Pa.
    radius_m : ndarray
        Young–Laplace radius ``2γcosθ/P`` of each pressure, m.
    saturation : ndarray
        Gas saturation (gas volume over pore volume) at each pressure.
    trapped_saturation : ndarray
        Electrolyte trapped (cut off from the outlet), as a fraction of the pore
        volume, at each pressure (zeros without trapping).
    entry_pressure_Pa : float
        Lowest pressure at which gas enters (``inf`` when it never can).
    breakthrough_pressure_Pa : float or None
        Lowest pressure at which the gas spans from the inlet to the opposite face
        (``None`` without an inlet face, ``inf`` when it never does).
    invasion_level : ndarray of int32
        Per voxel, the distance level at which it is invaded (its entry pressure is
        ``level_pressure_Pa[level]``; -1: never, or trapped electrolyte; -2: not
        pore). See :attr:`invasion_pressure_Pa`.
    level_pressure_Pa : ndarray
        Entry pressure of each distance level (descending: larger radii first
        invaded, at lower pressure).
    inlet : str
        Where the gas enters (``"axis a, first|last face"``, ``"reaction sites"``
        or ``"everywhere (in situ)"``).
    outlet : str or None
        Face the electrolyte leaves through (trapping only).
    trapping : bool
        Whether trapped electrolyte was kept.
    surface_tension_N_per_m, contact_angle_deg : float
        Capillary parameters.
    pore_fraction : float
        Volume fraction of the pore phase(s) that may hold gas.
    n_levels : int
        Distinct distance values of the image (the resolution of the curve).
    provenance : Provenance
    """

    pressure_Pa: np.ndarray
    radius_m: np.ndarray
    saturation: np.ndarray
    trapped_saturation: np.ndarray
    entry_pressure_Pa: float
    breakthrough_pressure_Pa: float | None
    invasion_level: np.ndarray = field(repr=False)
    level_pressure_Pa: np.ndarray = field(repr=False)
    inlet: str = ""
    outlet: str | None = None
    trapping: bool = False
    surface_tension_N_per_m: float = SURFACE_TENSION
    contact_angle_deg: float = CONTACT_ANGLE_DEG
    pore_fraction: float = 0.0
    n_levels: int = 0
    provenance: Provenance = field(repr=False, default_factory=lambda: Provenance("drainage"))

    @property
    def invasion_pressure_Pa(self) -> np.ndarray:
        """Per voxel, the lowest pressure at which it holds gas, Pa.

        ``inf``: never (or trapped electrolyte); NaN off the pore phase. With
        trapping, the invasion is resolved at the requested pressures only.
        """
        lv = self.invasion_level
        out = np.full(lv.shape, np.inf)
        ok = lv >= 0
        out[ok] = self.level_pressure_Pa[lv[ok]]
        out[lv == -2] = np.nan
        return out

    def gas_mask(self, pressure_Pa: float) -> np.ndarray:
        """Voxels holding gas at ``pressure_Pa`` (bool array of the image shape)."""
        p = float(pressure_Pa) * (1.0 + 1e-12)
        first = int(np.searchsorted(-self.level_pressure_Pa, -p, side="left"))
        return self.invasion_level >= first


def _face_name(face: tuple[int, int] | None) -> str:
    if face is None:
        return "everywhere (in situ)"
    return f"axis {face[0]}, {'first' if face[1] == 0 else 'last'} face"


def _as3(ms: Microstructure) -> tuple[np.ndarray, tuple[float, float, float]]:
    lab = np.asarray(ms.labels)
    if ms.ndim == 3:
        return lab, ms.voxel_size  # type: ignore[return-value]
    h = ms.voxel_size
    return lab[..., None], (h[0], h[1], max(h) * 1e6)


def drainage(
    ms: Microstructure,
    *,
    pressures: Sequence[float] | None = None,
    n_pressures: int = 20,
    inlet: FaceSpec | np.ndarray = "separator",
    outlet: FaceSpec = None,
    trapping: bool = False,
    surface_tension: float = SURFACE_TENSION,
    contact_angle_deg: float = CONTACT_ANGLE_DEG,
    phase: str | Sequence[str] = "electrolyte",
    _cache: _Capillary | None = None,
) -> DrainageResult:
    """Capillary pressure–saturation curve by morphological drainage (see module notes).

    Parameters
    ----------
    ms : Microstructure
        Labelled electrode.
    pressures : sequence of float, optional
        Capillary pressures in Pa. Default: ``n_pressures`` log-spaced from the
        entry pressure of the largest pore to 1.05 × that of the smallest (as
        PoreSpy's ``steps=n``).
    n_pressures : int, default 20
        Number of default pressures.
    inlet : str, (axis, side), bool array or None, default "separator"
        Where the gas enters: ``"separator"`` (last index of the thickness axis),
        ``"collector"``, ``(axis, side)``, a mask of inlet voxels (reaction sites),
        or ``None`` for gas anywhere (in-situ bubbles; largest pores first).
    outlet : str or (axis, side), optional
        Face the electrolyte leaves through (trapping); default the face opposite
        the inlet.
    trapping : bool, default False
        Keep electrolyte that the gas cuts off from the outlet.
    surface_tension : float, default 0.035
        N/m (see :data:`SURFACE_TENSION`).
    contact_angle_deg : float, default 30
        Degrees through the electrolyte, in [0, 90) for drainage.
    phase : str or sequence of str, default "electrolyte"
        Pore phase(s) the gas may take (names or roles).

    Returns
    -------
    DrainageResult

    Raises
    ------
    PhaseError
        No pore phase.
    InvalidInputError
        Bad pressures, faces, γ or θ (outside [0°, 180°], or ≥ 90° where the
        electrolyte does not wet).

    Notes
    -----
    One distance transform, one O(N) flood and one parallel painting of the
    non-redundant spheres, whatever the number of pressures; trapping adds one
    flood. Memory: about 20 bytes per voxel.

    Examples
    --------
    Two straight channels of radius 3 and 5 voxels: each fills at its own
    Young–Laplace pressure.

    >>> lab = np.zeros((20, 24, 12), np.uint8)
    >>> yy, zz = np.mgrid[:24, :12]
    >>> lab[:, (yy - 6) ** 2 + (zz - 6) ** 2 < 9] = 1
    >>> lab[:, (yy - 17) ** 2 + (zz - 6) ** 2 < 25] = 1
    >>> ms = Microstructure(lab, 1e-6, phases="active=0,pore=1")
    >>> r = drainage(ms, pressures=[1e4, 2e4, 3e4], contact_angle_deg=0)
    >>> [round(float(s), 3) for s in r.saturation]
    [0.0, 0.734, 1.0]
    """
    t0 = time.perf_counter()
    gc = _check_capillary(surface_tension, contact_angle_deg)
    found = _pore_phases(ms, phase)
    _, h3 = _as3(ms)
    pore = ms.mask([p.name for p in found])
    pore3 = pore if ms.ndim == 3 else pore[..., None]
    cap = _cache or _Capillary(pore3, h3, ms.ndim)
    seeds, inlet_name, inlet_face = _seeds(ms, inlet, pore3)
    if seeds is not None and inlet_face is None:  # interior sites: bubbles grow from them
        seeds = cap.covering_centres(seeds)
    acc, keep = cap.accessibility(seeds, key=_seed_key(inlet))
    lvl = cap.invasion_levels(acc, keep)
    pl = cap.level_pressure(gc)
    n_pore = int(pore3.sum())
    # ----- pressures
    if pressures is None:
        if not (isinstance(n_pressures, int | np.integer) and n_pressures >= 2):
            raise InvalidInputError(f"n_pressures={n_pressures!r}; give an integer >= 2")
        p_lo, p_hi = float(pl.min()), float(pl.max()) * 1.05
        pres = np.logspace(np.log10(p_lo), np.log10(p_hi), int(n_pressures))
    else:
        pres = np.asarray(list(pressures), float)
        if pres.size == 0 or np.any(~np.isfinite(pres)) or np.any(pres <= 0):
            raise InvalidInputError(
                f"capillary pressures must be positive and finite (Pa), got {pressures!r}"
            )
        pres = np.unique(pres)
    # ----- the step (1..K, K+1 = never) of each level, then of each voxel
    kk = pres.size
    n_lev = pl.size
    step_of_level = np.searchsorted(pres * (1.0 + 1e-12), pl, side="left").astype(np.int32) + 1
    trapped_sat = np.zeros(kk)
    outlet_face = None
    if trapping:
        outlet_face = _face(ms, outlet, "outlet") if outlet is not None else None
        if outlet_face is None:
            if inlet_face is None:
                raise InvalidInputError(
                    "trapping needs an outlet face for the electrolyte: give outlet= (the "
                    "inlet is not a face, so there is no opposite face to use)"
                )
            outlet_face = (inlet_face[0], 0 if inlet_face[1] == -1 else -1)
        lut = np.append(step_of_level, np.int32(kk + 1))  # level -1 (never) -> K+1
        step = lut[lvl]
        step[~pore3] = -1
        last = _flood_steps(step, pore3, _face_mask(pore3.shape, outlet_face), kk)
        trapped = pore3 & (last < step)
        # electrolyte cut off at step k: trapped voxels whose last connected step is
        # before k (a trapped voxel stays electrolyte), from one cumulative histogram
        c_last = np.cumsum(np.bincount(last[trapped] + 1, minlength=kk + 3))
        trapped_sat = c_last[np.arange(1, kk + 1) + 1] / max(n_pore, 1)
        del step, last
        lvl[trapped] = -1  # trapped electrolyte is never displaced
    lvl[~pore3] = -2
    hist = np.bincount(lvl[pore3] + 1, minlength=n_lev + 1)[1:]
    per_step = np.bincount(step_of_level, weights=hist, minlength=kk + 2)
    sat = np.cumsum(per_step[1 : kk + 1]) / max(n_pore, 1)
    hit = np.flatnonzero(hist)
    entry = float(pl[hit.max()]) if hit.size else math.inf
    brk = None
    if inlet_face is not None:
        brk = _breakthrough(lvl, pl, inlet_face)
    return DrainageResult(
        pressure_Pa=pres,
        radius_m=2.0 * gc / pres,
        saturation=sat,
        trapped_saturation=trapped_sat,
        entry_pressure_Pa=entry,
        breakthrough_pressure_Pa=brk,
        invasion_level=lvl if ms.ndim == 3 else lvl[..., 0],
        level_pressure_Pa=pl,
        inlet=inlet_name,
        outlet=_face_name(outlet_face) if trapping else None,
        trapping=bool(trapping),
        surface_tension_N_per_m=float(surface_tension),
        contact_angle_deg=float(contact_angle_deg),
        pore_fraction=n_pore / pore3.size,
        n_levels=cap.n_levels,
        provenance=Provenance(
            "microbat.degradation.drainage",
            parameters={
                "pressures": pres.tolist(),
                "inlet": inlet_name,
                "trapping": bool(trapping),
                "surface_tension": float(surface_tension),
                "contact_angle_deg": float(contact_angle_deg),
                "phase": [p.name for p in found],
            },
            wall_time_s=time.perf_counter() - t0,
            inputs={"shape": list(ms.shape), "voxel_size_m": list(ms.voxel_size)},
        ),
    )


def _seed_key(inlet: Any) -> Any:
    if isinstance(inlet, np.ndarray):
        return ("mask", hash(np.flatnonzero(inlet).tobytes()))
    if isinstance(inlet, list):
        return tuple(inlet)
    return inlet


def _seeds(
    ms: Microstructure, inlet: Any, pore3: np.ndarray
) -> tuple[np.ndarray | None, str, tuple[int, int] | None]:
    if isinstance(inlet, np.ndarray):
        m = np.asarray(inlet, bool)
        if m.shape != ms.shape:
            raise InvalidInputError(f"inlet mask shape {m.shape} != image shape {ms.shape}")
        m3 = m if ms.ndim == 3 else m[..., None]
        if not (m3 & pore3).any():
            raise InvalidInputError("the inlet mask holds no pore voxel")
        return m3, "reaction sites", None
    face = _face(ms, inlet, "inlet")
    if face is None:
        return None, _face_name(None), None
    m3 = _face_mask(pore3.shape, face)
    if not (m3 & pore3).any():
        raise InvalidInputError(
            f"the inlet ({_face_name(face)}) has no pore voxel: gas cannot enter there; "
            "choose another face or inlet=None (in-situ gas)"
        )
    return m3, _face_name(face), face


def _breakthrough(lvl: np.ndarray, pl: np.ndarray, face: tuple[int, int]) -> float:
    """Lowest pressure at which invaded voxels touch the face opposite the inlet."""
    ax, side = face
    opp = np.take(lvl, 0 if side == -1 else -1, axis=ax)
    top = int(opp.max(initial=-1))
    return float(pl[top]) if top >= 0 else math.inf


# ================================================================= placing gas
@dataclass(frozen=True)
class GasPlacement(Result):
    """A gassed electrode at a target saturation.

    Attributes
    ----------
    microstructure : Microstructure
        The electrode with the gas as a phase of role ``gas``.
    target_saturation, saturation : float
        Asked and reached gas saturation (gas over pore volume before gassing).
    capillary_pressure_Pa : float
        Entry pressure of the last sphere filled (``0`` for no gas).
    mode : str
        ``"drainage"``, ``"bubbles"`` or ``"nucleation"``.
    n_sites : int
        Nucleation sites used (``"nucleation"`` only).
    provenance : Provenance
    """

    microstructure: Microstructure = field(repr=False)
    target_saturation: float
    saturation: float
    capillary_pressure_Pa: float
    mode: str
    n_sites: int = 0
    provenance: Provenance = field(repr=False, default_factory=lambda: Provenance("place_gas"))


def add_gas(ms: Microstructure, gas: np.ndarray, *, name: str = "gas") -> Microstructure:
    """The microstructure with the voxels of ``gas`` turned into a gas phase.

    Parameters
    ----------
    ms : Microstructure
        Electrode.
    gas : ndarray of bool
        Voxels that hold gas (any phase; usually pore voxels).
    name : str, default "gas"
        Name of the new phase (role ``gas``). An existing gas-role phase is reused.

    Returns
    -------
    Microstructure
        A copy; the phase table gains the gas phase (label: the next free one).
    """
    g = np.asarray(gas, bool)
    if g.shape != ms.shape:
        raise InvalidInputError(f"gas mask shape {g.shape} != image shape {ms.shape}")
    existing = ms.phases.with_role(PhaseRole.GAS)
    if existing:
        table, label = ms.phases, existing[0].label
    else:
        if name in ms.phases:
            raise PhaseError(f"a phase is already called {name!r}; choose another gas name")
        label = max(ms.phases.labels) + 1
        table = PhaseTable([*ms.phases.values(), Phase(name, label, PhaseRole.GAS)])
    lab = np.asarray(ms.labels)
    dtype = np.uint8 if label <= 255 and lab.dtype == np.uint8 else np.uint16
    out = lab.astype(dtype, copy=True)
    out[g] = label
    meta = dict(ms.metadata)
    meta["gas_voxels"] = int(g.sum())
    return ms.with_labels(out, phases=table, metadata=meta)


def _order(
    cap: _Capillary,
    acc: np.ndarray,
    keep: np.ndarray,
    mode: str,
    inlet_face: tuple[int, int] | None,
    rng: np.random.Generator,
) -> np.ndarray:
    """Flat indices of the sphere centres in filling order."""
    idx = np.flatnonzero(keep)
    a = acc.reshape(-1)[idx]
    if mode == "drainage" and inlet_face is not None:
        ax, side = inlet_face
        pos = np.unravel_index(idx, acc.shape)[ax]
        dist = pos if side == 0 else (acc.shape[ax] - 1 - pos)
        tie = dist.astype(np.float64) + rng.random(idx.size) * 0.5
    else:
        tie = rng.random(idx.size)
    order = np.lexsort((tie, -a.astype(np.int64)))
    return idx[order]


def _reaction_sites(
    ms: Microstructure, pore3: np.ndarray, sites: int | None, rng: np.random.Generator
) -> np.ndarray:
    lab3, _ = _as3(ms)
    active = np.isin(lab3, [p.label for p in ms.phases.with_role(PhaseRole.ACTIVE)])
    if not active.any():
        raise PhaseError(
            "nucleation at reaction sites needs an active phase; this image has none "
            "(use mode='bubbles' for gas in the largest pores)"
        )
    touch = np.zeros_like(pore3)
    for a in range(3):
        if pore3.shape[a] < 2:
            continue
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[a] = slice(0, -1)
        hi[a] = slice(1, None)
        touch[tuple(lo)] |= active[tuple(hi)]
        touch[tuple(hi)] |= active[tuple(lo)]
    cand = np.flatnonzero(touch & pore3)
    if cand.size == 0:
        raise PhaseError("no pore voxel touches the active material: no reaction site")
    if sites is None:
        vol = float(np.prod(ms.extent))
        sites = max(1, round(vol * NUCLEATION_DENSITY))
    if not (isinstance(sites, int | np.integer) and sites >= 1):
        raise InvalidInputError(f"sites={sites!r}; give a positive number of nucleation sites")
    pick = rng.choice(cand, size=min(int(sites), cand.size), replace=False)
    m = np.zeros(pore3.shape, bool)
    m.reshape(-1)[pick] = True
    return m


def place_gas(
    ms: Microstructure,
    saturation: float | Sequence[float],
    *,
    mode: Mode = "drainage",
    inlet: FaceSpec = "separator",
    trapping: bool = False,
    outlet: FaceSpec = None,
    sites: int | None = None,
    seed: int | np.random.Generator | None = 0,
    surface_tension: float = SURFACE_TENSION,
    contact_angle_deg: float = CONTACT_ANGLE_DEG,
    phase: str | Sequence[str] = "electrolyte",
    name: str = "gas",
    _cache: _Capillary | None = None,
) -> GasPlacement | list[GasPlacement]:
    """Put gas into the pores at a saturation, by capillarity (see module notes).

    Parameters
    ----------
    ms : Microstructure
        Electrolyte-filled electrode.
    saturation : float or sequence of float
        Gas saturation(s) in [0, 1): gas volume over pore volume. A sequence gives
        one placement each; the gas of a lower saturation is inside that of a
        higher one.
    mode : {"drainage", "bubbles", "nucleation"}, default "drainage"
        Gas from the ``inlet`` face by drainage; in-situ bubbles in the largest
        pores; or bubbles growing from random reaction sites.
    inlet : str or (axis, side), default "separator"
        Inlet face of ``"drainage"``.
    trapping : bool, default False
        Keep electrolyte cut off from the outlet (``"drainage"`` only).
    outlet : str or (axis, side), optional
        Outlet face of the trapping; default opposite the inlet.
    sites : int, optional
        Number of nucleation sites (``"nucleation"``); default one per (10 µm)³.
    seed : int or Generator, default 0
        Seed of the tie order and of the sites.
    surface_tension, contact_angle_deg : float
        Capillary parameters (pressure scale only).
    phase : str or sequence of str, default "electrolyte"
        Pore phase(s) the gas may take.
    name : str, default "gas"
        Name of the gas phase.

    Returns
    -------
    GasPlacement or list of GasPlacement
        One per saturation (a list when a sequence was given).

    Raises
    ------
    InvalidInputError
        Saturation outside [0, 1), contact angle outside [0°, 180°) or ≥ 90°, bad
        mode, faces or sites.
    PhaseError
        No pore phase (or no active phase for ``"nucleation"``).

    Examples
    --------
    >>> lab = np.zeros((16, 16, 16), np.uint8); lab[:, 4:12, 4:12] = 1
    >>> ms = Microstructure(lab, 1e-6, phases="active=0,pore=1")
    >>> g = place_gas(ms, 0.25, mode="bubbles", seed=1)
    >>> g.microstructure.phases.names, round(g.saturation, 3)
    (('active', 'pore', 'gas'), 0.25)
    """
    t0 = time.perf_counter()
    sats = _saturations(saturation)
    gc = _check_capillary(surface_tension, contact_angle_deg)
    if mode not in ("drainage", "bubbles", "nucleation"):
        raise InvalidInputError(f"mode={mode!r}; use drainage, bubbles or nucleation")
    if trapping and mode != "drainage":
        raise InvalidInputError("trapping applies to mode='drainage' (gas entering from a face)")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    found = _pore_phases(ms, phase)
    pore = ms.mask([p.name for p in found])
    pore3 = pore if ms.ndim == 3 else pore[..., None]
    _, h3 = _as3(ms)
    cap = _cache or _Capillary(pore3, h3, ms.ndim)
    inlet_face = None
    n_sites = 0
    if mode == "drainage":
        seeds, _, inlet_face = _seeds(ms, inlet, pore3)
        key: Any = _seed_key(inlet)
    elif mode == "bubbles":
        seeds, key = None, None
    else:
        site_mask = _reaction_sites(ms, pore3, sites, rng)
        n_sites = int(site_mask.sum())
        key = _seed_key(site_mask if ms.ndim == 3 else site_mask[..., 0])
        seeds = cap.covering_centres(site_mask)
    acc, keep = cap.accessibility(seeds, key)
    allowed = pore3 & (acc >= 0)
    if trapping:
        dr = drainage(
            ms,
            pressures=cap.level_pressure(gc),
            inlet=inlet,
            outlet=outlet,
            trapping=True,
            surface_tension=surface_tension,
            contact_angle_deg=contact_angle_deg,
            phase=phase,
            _cache=cap,
        )
        inv = dr.invasion_level if ms.ndim == 3 else dr.invasion_level[..., None]
        allowed &= inv >= 0
    order = _order(cap, acc, keep, mode, inlet_face, rng)
    ci, cj, ck = (a.astype(np.int64) for a in np.unravel_index(order, acc.shape))
    rad = cap.rint.reshape(-1)[order]
    lev = acc.reshape(-1)[order]
    pl = cap.level_pressure(gc)
    n_pore = int(pore3.sum())
    from microbat.degradation import _gas_kernels as K

    gas = np.zeros(pore3.shape, bool)
    out: list[GasPlacement] = []
    done = 0
    last_p = 0.0
    for s in sorted(set(sats)):
        target = math.ceil(s * n_pore - 1e-9)
        if target > int(allowed.sum()):
            reach = allowed.sum() / max(n_pore, 1)
            raise InvalidInputError(
                f"gas saturation {s:g} cannot be reached in mode {mode!r}: at most "
                f"{reach:.3f} of the pore volume is accessible"
                + (" (the rest is trapped or cut off from the inlet)" if reach < 1 else "")
            )
        if target > done:
            # continue painting where the previous saturation stopped
            cnt, last = K.paint_in_order(ci, cj, ck, rad, allowed, gas, target - done, *cap.steps)
            done += int(cnt)
            if last >= 0:
                last_p = float(pl[lev[last]])
                ci, cj, ck, rad, lev = (x[last + 1 :] for x in (ci, cj, ck, rad, lev))
        g2 = gas if ms.ndim == 3 else gas[..., 0]
        out.append(
            GasPlacement(
                microstructure=add_gas(ms, g2, name=name),
                target_saturation=s,
                saturation=done / max(n_pore, 1),
                capillary_pressure_Pa=last_p if done else 0.0,
                mode=mode,
                n_sites=n_sites,
                provenance=Provenance(
                    "microbat.degradation.place_gas",
                    parameters={
                        "saturation": s,
                        "mode": mode,
                        "inlet": inlet if isinstance(inlet, str | type(None)) else list(inlet),
                        "trapping": bool(trapping),
                        "sites": n_sites,
                        "surface_tension": float(surface_tension),
                        "contact_angle_deg": float(contact_angle_deg),
                    },
                    seed=seed if isinstance(seed, int) else None,
                    wall_time_s=time.perf_counter() - t0,
                ),
            )
        )
    by_s = {p.target_saturation: p for p in out}
    result = [by_s[s] for s in sats]
    return result if np.ndim(saturation) else result[0]


# ================================================================= analysis
@dataclass(frozen=True)
class GasResult(Result):
    """Transport and capacity lost to gas, per requested saturation.

    Every list has one entry per requested saturation, in the order given.

    Attributes
    ----------
    saturation : list of float
        Requested gas saturations.
    achieved_saturation : list of float
        Saturations reached (the target to one voxel).
    capillary_pressure_Pa : list of float
        Entry pressure of the last sphere filled.
    electrolyte_fraction : list of float
        Volume fraction of the electrode still holding electrolyte.
    effective_conductivity_ratio : list of float
        Effective ionic conductivity (∝ D_eff) of the remaining electrolyte through
        the thickness over that without gas (0 where it no longer percolates).
    tau : list of float or None
        Tortuosity factor of the remaining electrolyte, ``ε(S) D0/D_eff(S)``
        (``None`` = inf: no ionic path).
    wetted_area_fraction : list of float
        Active/electrolyte interface area left wet, over that without gas.
    wetted_area_per_volume_per_m : list of float
        That area per electrode volume, m⁻¹.
    isolated_electrolyte_fraction : list of float
        Remaining electrolyte not face-connected to the separator face (cut off from
        the ionic current), over the remaining electrolyte.
    percolating : list of bool
        Whether the remaining electrolyte still connects the collector and
        separator faces.
    baseline : dict
        The electrode without gas: porosity, τ, D_eff/D0, wetted area, isolated
        electrolyte.
    rate : dict or None
        P2D consequence (``c_rates``, ``capacity_Ah`` per saturation and rate,
        ``capacity_ratio`` over the gas-free electrode, the baseline's capacities),
        when asked.
    curve : DrainageResult
        The capillary pressure–saturation curve of the same placement.
    mode, inlet : str
        How the gas was placed.
    trapping : bool
    seed : int or None
    n_sites : int
    gas_level : ndarray of int8
        Per voxel: 0 = pore without gas at every requested saturation, ``k`` = gas
        from the ``k``-th smallest requested saturation on, -1 = not pore.
    notes : list of str
        What was not computed and why.
    provenance : Provenance
    """

    saturation: list[float]
    achieved_saturation: list[float]
    capillary_pressure_Pa: list[float]
    electrolyte_fraction: list[float]
    effective_conductivity_ratio: list[float]
    tau: list[float | None]
    wetted_area_fraction: list[float]
    wetted_area_per_volume_per_m: list[float]
    isolated_electrolyte_fraction: list[float]
    percolating: list[bool]
    baseline: dict[str, Any]
    rate: dict[str, Any] | None
    curve: DrainageResult
    mode: str
    inlet: str
    trapping: bool
    seed: int | None
    n_sites: int
    gas_level: np.ndarray = field(repr=False)
    notes: list[str] = field(default_factory=list)
    provenance: Provenance = field(repr=False, default_factory=lambda: Provenance("gas_analysis"))


def _interface_area(a: np.ndarray, b: np.ndarray, voxel_size: Sequence[float]) -> float:
    """Area (m²) of the faces between voxels of ``a`` and of ``b``."""
    vol = float(np.prod(voxel_size))
    total = 0.0
    for ax in range(a.ndim):
        if a.shape[ax] < 2:
            continue
        lo = [slice(None)] * a.ndim
        hi = [slice(None)] * a.ndim
        lo[ax] = slice(0, -1)
        hi[ax] = slice(1, None)
        n = np.count_nonzero(a[tuple(lo)] & b[tuple(hi)]) + np.count_nonzero(
            b[tuple(lo)] & a[tuple(hi)]
        )
        total += n * vol / voxel_size[ax]
    return float(total)


def _electrolyte_state(ms: Microstructure, names: list[str], tol: float) -> dict[str, Any]:
    """τ, D_eff, wetted area and isolated fraction of the electrolyte phases ``names``."""
    from microbat.core.clusters import label_clusters, side_touch
    from microbat.transport._steady import PercolationWarning
    from microbat.transport.diffusion import tortuosity

    ax = ms.thickness_axis
    ele = ms.mask(names)
    active_names = [p.name for p in ms.phases.with_role(PhaseRole.ACTIVE)]
    act = ms.mask(active_names) if active_names else np.zeros(ms.shape, bool)
    area = _interface_area(act, ele, ms.voxel_size)
    n_ele = int(ele.sum())
    iso = 0.0
    if n_ele:
        lab, n = label_clusters(ele, 6)
        touch = side_touch(lab, n, ax, -1)
        touch[0] = False
        iso = float(np.count_nonzero(ele & ~touch[lab])) / n_ele
    tau: float = math.inf
    deff = 0.0
    perc = False
    if n_ele:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PercolationWarning)
            r = tortuosity(ms, phase=names, axis=ax, tol=tol, keep_field=False)
        tau = float(r.tau[ax])
        deff = float(r.deff_over_d0[ax])
        perc = bool(r.percolating[ax])
    return {
        "electrolyte_fraction": n_ele / ms.n_voxels,
        "tau": tau,
        "deff_over_d0": deff,
        "percolating": perc,
        "wetted_area_m2": float(area),
        "wetted_area_per_volume_per_m": float(area) / float(np.prod(ms.extent)),
        "isolated_fraction": iso,
        "active_fraction": float(act.mean()),
    }


def gas_analysis(
    ms: Microstructure,
    saturations: Sequence[float] = (0.1, 0.2, 0.3),
    *,
    mode: Mode = "drainage",
    inlet: FaceSpec = "separator",
    trapping: bool = False,
    outlet: FaceSpec = None,
    sites: int | None = None,
    seed: int = 0,
    surface_tension: float = SURFACE_TENSION,
    contact_angle_deg: float = CONTACT_ANGLE_DEG,
    n_pressures: int = 20,
    pressures: Sequence[float] | None = None,
    phase: str | Sequence[str] = "electrolyte",
    tol: float = 1e-3,
    c_rates: Sequence[float] | None = None,
    parameter_set: str = "chen2020",
    electrode: Literal["positive", "negative"] = "positive",
    model: str = "DFN",
) -> GasResult:
    """Gas at several saturations and what it costs (see module notes).

    For each saturation the gas is placed (:func:`place_gas`) and the remaining
    electrolyte is measured: effective ionic conductivity and tortuosity factor
    through the thickness (:func:`microbat.transport.tortuosity`), the wetted
    active interface, the electrolyte cut off from the separator face and,
    optionally, the rate capability through the P2D bridge
    (:func:`microbat.cell.rate_capability` with the measured porosity, τ and
    wetted specific area).

    Parameters
    ----------
    ms : Microstructure
        Electrolyte-filled electrode (index 0 of the thickness axis at the current
        collector, the last at the separator).
    saturations : sequence of float, default (0.1, 0.2, 0.3)
        Gas saturations in [0, 1).
    mode, inlet, trapping, outlet, sites, seed, surface_tension, contact_angle_deg
        See :func:`place_gas`.
    n_pressures : int, default 20
        Pressures of the saturation–pressure curve (or give ``pressures`` in Pa).
    pressures : sequence of float, optional
        Pressures of the curve, Pa.
    phase : str or sequence of str, default "electrolyte"
        Pore phase(s) holding the electrolyte.
    tol : float, default 1e-3
        Flux tolerance of the tortuosity solves.
    c_rates : sequence of float, optional
        Run the P2D rate capability at these C-rates for every saturation (needs
        PyBaMM; a DFN run is ~0.1 s per rate once built).
    parameter_set : str, default "chen2020"
        Cell parameter set of the P2D runs.
    electrode : {"positive", "negative"}
        Which electrode the image is.
    model : str, default "DFN"
        PyBaMM model of the P2D runs.

    Returns
    -------
    GasResult

    Raises
    ------
    InvalidInputError, PhaseError
        As :func:`place_gas`.
    """
    t0 = time.perf_counter()
    sats = _saturations(saturations)
    _check_capillary(surface_tension, contact_angle_deg)
    found = _pore_phases(ms, phase)
    names = [p.name for p in found]
    pore = ms.mask(names)
    pore3 = pore if ms.ndim == 3 else pore[..., None]
    _, h3 = _as3(ms)
    cap = _Capillary(pore3, h3, ms.ndim)
    places = place_gas(
        ms,
        sats,
        mode=mode,
        inlet=inlet,
        trapping=trapping,
        outlet=outlet,
        sites=sites,
        seed=seed,
        surface_tension=surface_tension,
        contact_angle_deg=contact_angle_deg,
        phase=names,
        _cache=cap,
    )
    assert isinstance(places, list)
    if mode == "drainage":
        curve_inlet: Any = inlet
    elif mode == "bubbles":
        curve_inlet = None
    else:
        # the sites of the placement: the same seed draws them first
        curve_inlet = _reaction_sites(ms, pore3, sites, np.random.default_rng(seed))
        curve_inlet = curve_inlet if ms.ndim == 3 else curve_inlet[..., 0]
    curve = drainage(
        ms,
        pressures=pressures,
        n_pressures=n_pressures,
        inlet=curve_inlet,
        outlet=outlet,
        trapping=trapping,
        surface_tension=surface_tension,
        contact_angle_deg=contact_angle_deg,
        phase=names,
        _cache=cap,
    )
    base = _electrolyte_state(ms, names, tol)
    states = [_electrolyte_state(p.microstructure, names, tol) for p in places]
    gas_level = np.where(pore, 0, -1).astype(np.int8)
    order = sorted(range(len(sats)), key=lambda i: sats[i])
    for rank, i in enumerate(reversed(order)):
        gmask = places[i].microstructure.mask(PhaseRole.GAS.value) if sats[i] > 0 else None
        if gmask is not None:
            gas_level[gmask] = len(order) - rank
    notes: list[str] = []
    rate = None
    if c_rates:
        rate = _rate(base, states, c_rates, parameter_set, electrode, model, ms, notes)
    d0 = base["deff_over_d0"]
    a0 = base["wetted_area_m2"]
    return GasResult(
        saturation=sats,
        achieved_saturation=[p.saturation for p in places],
        capillary_pressure_Pa=[p.capillary_pressure_Pa for p in places],
        electrolyte_fraction=[s["electrolyte_fraction"] for s in states],
        effective_conductivity_ratio=[s["deff_over_d0"] / d0 if d0 > 0 else 0.0 for s in states],
        tau=[s["tau"] if math.isfinite(s["tau"]) else None for s in states],
        wetted_area_fraction=[s["wetted_area_m2"] / a0 if a0 > 0 else 0.0 for s in states],
        wetted_area_per_volume_per_m=[s["wetted_area_per_volume_per_m"] for s in states],
        isolated_electrolyte_fraction=[s["isolated_fraction"] for s in states],
        percolating=[s["percolating"] for s in states],
        baseline=base,
        rate=rate,
        curve=curve,
        mode=mode,
        inlet=curve.inlet,
        trapping=bool(trapping),
        seed=int(seed),
        n_sites=places[0].n_sites,
        gas_level=gas_level,
        notes=notes,
        provenance=Provenance(
            "microbat.degradation.gas_analysis",
            parameters={
                "saturations": sats,
                "mode": mode,
                "inlet": curve.inlet,
                "trapping": bool(trapping),
                "surface_tension": float(surface_tension),
                "contact_angle_deg": float(contact_angle_deg),
                "c_rates": list(c_rates) if c_rates else None,
                "parameter_set": parameter_set,
            },
            seed=int(seed),
            wall_time_s=time.perf_counter() - t0,
            inputs={"shape": list(ms.shape), "voxel_size_m": list(ms.voxel_size)},
        ),
    )


def _rate(
    base: Mapping[str, Any],
    states: Sequence[Mapping[str, Any]],
    c_rates: Sequence[float],
    parameter_set: str,
    electrode: str,
    model: str,
    ms: Microstructure,
    notes: list[str],
) -> dict[str, Any] | None:
    """Capacity at each C-rate of the gas-free and gassed electrodes (P2D bridge)."""
    from microbat.cell.micro import MicroProperties
    from microbat.cell.parameters import load_parameters
    from microbat.cell.rate import rate_capability

    try:
        params = load_parameters(parameter_set)
    except MicrobatError as exc:
        notes.append(f"no P2D capacity: the parameter set could not be loaded ({exc})")
        return None

    def capacities(st: Mapping[str, Any], what: str) -> list[float | None]:
        if not st["percolating"] or st["electrolyte_fraction"] < 0.01:
            notes.append(f"{what}: no ionic path through the thickness, so no capacity (0)")
            return [0.0] * len(c_rates)
        kw: dict[str, Any] = {
            "electrode": electrode,
            "porosity": float(st["electrolyte_fraction"]),
            "tau_electrolyte": max(1.0, float(st["tau"])),
            "axis": ms.thickness_axis,
            "source": {"function": "microbat.degradation.gas_analysis", "what": what},
        }
        if 0.01 <= st["active_fraction"] <= 0.99:
            kw["active_fraction"] = float(st["active_fraction"])
        if st["wetted_area_per_volume_per_m"] >= 1e3:
            kw["specific_surface_area_per_m"] = float(st["wetted_area_per_volume_per_m"])
        try:
            r = rate_capability(
                params,
                c_rates=list(c_rates),
                model=model,
                transport="micro",
                micro=MicroProperties(**kw),
                breakdown=False,
                on_failure="record",
            )
        except MicrobatError as exc:
            notes.append(f"{what}: the P2D run failed ({exc})")
            return [None] * len(c_rates)
        by = dict(zip(r.c_rate, r.capacity_Ah, strict=True))
        return [float(by[float(c)]) if float(c) in by else None for c in c_rates]

    cap0 = capacities(base, "without gas")
    caps = [capacities(st, f"saturation {i + 1}") for i, st in enumerate(states)]
    ratio = [
        [
            (c / c0) if (c is not None and c0 not in (None, 0.0)) else None
            for c, c0 in zip(row, cap0, strict=True)
        ]
        for row in caps
    ]
    return {
        "c_rates": [float(c) for c in c_rates],
        "parameter_set": parameter_set,
        "model": model,
        "baseline_capacity_Ah": cap0,
        "capacity_Ah": caps,
        "capacity_ratio": ratio,
    }
