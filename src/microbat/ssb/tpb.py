r"""Triple-phase boundaries and the active-material / electrolyte contact area.

In a composite cathode of an all-solid-state battery, the charge-transfer
reaction needs electrons and ions at the surface of the active material: it runs
on the active/solid-electrolyte contact area, and — where the active material is
a poor electronic conductor — along the triple-phase boundary (TPB) where active
material, solid electrolyte and the electronic conductor (carbon) meet. Both only
count when each phase is connected to where its charge carrier comes from.

Voxel-edge TPB
--------------
On the voxel grid, a TPB is a voxel edge whose four surrounding voxels hold all
three phases (Wilson et al. 2006 [1]_; Golbert et al. 2008 [2]_). Edges lying in
the outer faces of the image (fewer than four voxels around them) are not
counted. The raw TPB length is the number of such edges times their length
(``h_a`` for edges along axis ``a``).

Correction toward the true line length
--------------------------------------
A straight line with unit direction ``t`` is represented by a staircase of voxel
edges whose length per unit line length is ``‖t‖₁ = |t₀| + |t₁| + |t₂|``: edge
counting is exact along an axis, 41 % high along a face diagonal and 73 % high
along a body diagonal. Averaged over isotropic directions,
``⟨‖t‖₁⟩ = 3⟨|cos θ|⟩ = 3/2``, so for an isotropic TPB network the counted length
is 1.5 times the true one (the 3D analogue of the ``4/π`` of 2D chain codes,
Kulpa 1977 [3]_; the factor 1.5 is the one reported for edge counting of SOFC
TPBs by Iwai et al. 2010 [4]_). ``correction="isotropic"`` divides by 1.5.

The default, ``correction="local"``, corrects each edge by the direction of the
line it belongs to: the TPB edges within a cube of ``window`` corner positions
around the edge give, by the principal axis of their midpoints (largest
eigenvector of their covariance), the local direction ``t``; the edge gets the
weight ``1/‖t‖₁``. The staircase of a straight line has ``‖t‖₁`` edges per unit
length whatever its direction, so the weighted sum is the true length: exactly 1
along an axis, ``1/√2`` on a face diagonal, ``1/√3`` on a body diagonal; the
isotropic mean is ``2/3``. The midpoints of a staircase scatter by half a voxel
about the line; over the default window of 5 the principal axis follows it
closely enough for 1 % on straight lines (7 halves that error, at 2.7 times the
cost, and is less accurate on tight curves). A curved line is corrected as long as it is nearly
straight over the window (radius ≳ 2 windows); where two TPB lines of different
directions pass within one window the direction is a blend. Measured errors:
``docs/validation/ssb.md`` (straight lines at any angle within 1.2 %, circles of
radius 5 to 40 voxels within 1.2 %, random isotropic networks close to 2/3).

The *contact area* between two phases is counted as voxel faces (raw, the same
staircase bias for surfaces: ``‖n‖₁`` faces per unit area, isotropic mean 3/2)
and corrected by the normal-weighted voxel-face estimator of
:func:`microbat.imaging.interface_areas` (validated there: isotropic planes within
about 1 %, spheres within 1 %); the active, dead-end
and isolated parts get the corrected total in proportion to their faces. The
ratio of the two depends only on the orientation distribution of the contact, so
for images larger than 200 voxels per side it is measured on the central 200³
cube and applied to the face count of the whole image.

Active, dead-end and isolated
-----------------------------
Each of the three phases must be connected to its reservoir: by default the
electron conductors (roles active, carbon_binder, current_collector) to the
current-collector face (first layer of the thickness axis) and the ion
conductors (electrolyte, solid_electrolyte) to the separator face (last layer);
phases of other roles (voids) need no connection: they never make a TPB
inactive or isolated. With ``network="conductor"`` (default)
a voxel is connected when its face-connected cluster *within all phases of its
conduction class* (all electron conductors; all ion conductors) touches the
reservoir face — an active particle wired to the collector through carbon
counts; with ``network="phase"`` the cluster is taken within the phase alone.
A TPB edge is

* **active** when, for each of the three phases, at least one of its voxels
  around the edge is connected;
* **isolated** when, for some phase, all its voxels around the edge lie in
  clusters that touch no face of the image (enclosed, certainly dead);
* **dead-end** otherwise: some phase reaches the image boundary but not its
  reservoir (it may connect outside the field of view).

Contact faces are classed the same way from their two voxels. Connectivity is
face connectivity (6 neighbours): only faces carry current.

Densities
---------
``length / volume`` is biased low by the uncounted edges in the outer faces
(about ``4/n`` of them for ``n`` voxels per side). The densities divide the
length of the edges along each axis by the volume of the lattice they were
counted on, ``n_a h_a (n_b − 1) h_b (n_c − 1) h_c``, and add the three: an
unbiased estimate for a statistically homogeneous image.

References
----------
.. [1] J. R. Wilson et al., "Three-dimensional reconstruction of a solid-oxide
   fuel-cell anode", Nature Materials 5, 541-544 (2006).
.. [2] J. Golbert, C. S. Adjiman, N. P. Brandon, "Microstructural modeling of
   solid oxide fuel cell anodes", Ind. Eng. Chem. Res. 47, 7693-7699 (2008).
.. [3] Z. Kulpa, "Area and perimeter measurement of blobs in discrete binary
   pictures", Comput. Graph. Image Process. 6, 434-451 (1977).
.. [4] H. Iwai et al., "Quantification of SOFC anode microstructure based on
   dual beam FIB-SEM technique", J. Power Sources 195, 955-961 (2010).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from microbat.core.errors import InvalidInputError, PhaseError
from microbat.core.microstructure import Microstructure
from microbat.core.phases import Phase, PhaseRole
from microbat.core.results import Provenance, Result

__all__ = [
    "ISOTROPIC_FACTOR",
    "ContactResult",
    "TPBResult",
    "contact_area",
    "default_reservoirs",
    "triple_phase_boundary",
]

#: Mean staircase length per unit length of an isotropic line (or area of an
#: isotropic surface): ``⟨|t₀| + |t₁| + |t₂|⟩ = 3/2``.
ISOTROPIC_FACTOR = 1.5

#: Side (voxels) of the central cube on which the area-estimator correction of the
#: contact area is measured for larger images.
_MC_SAMPLE = 200

_ELECTRONIC = frozenset({PhaseRole.ACTIVE, PhaseRole.CARBON_BINDER, PhaseRole.CURRENT_COLLECTOR})
_IONIC = frozenset({PhaseRole.ELECTROLYTE, PhaseRole.SOLID_ELECTROLYTE})

Correction = Literal["local", "isotropic", "none"]
Network = Literal["conductor", "phase"]
Reservoir = tuple[int, int] | None


@dataclass(frozen=True)
class ContactResult(Result):
    """Two-phase contact area, split by connectivity (see the module notes).

    Attributes
    ----------
    phases : tuple of 2 str
        The two phases (as requested).
    face_area_m2 : float
        Raw area of the voxel faces between them (m²).
    area_m2, active_area_m2, dead_end_area_m2, isolated_area_m2 : float
        Corrected area (m²): all, both sides connected, neither isolated nor
        active, one side isolated.
    specific_area_per_m, active_specific_area_per_m : float
        Corrected areas per unit volume of the image (m²/m³ = 1/m).
    correction_factor : float
        ``area_m2 / face_area_m2``.
    active_fraction : float
        ``active_area_m2 / area_m2`` (0 when there is no contact).
    provenance : Provenance
    """

    phases: tuple[str, str]
    face_area_m2: float
    area_m2: float
    active_area_m2: float
    dead_end_area_m2: float
    isolated_area_m2: float
    specific_area_per_m: float
    active_specific_area_per_m: float
    correction_factor: float
    active_fraction: float
    provenance: Provenance = field(repr=False, default_factory=lambda: Provenance("contact"))


@dataclass(frozen=True)
class TPBResult(Result):
    """Triple-phase boundary of three phases (see the module notes).

    Attributes
    ----------
    phases : tuple of 3 str
        The three phases (names or roles, as requested).
    reservoirs : dict
        Per phase, ``[axis, side]`` of the face it must reach, or None.
    network : str
        ``"conductor"`` or ``"phase"``.
    correction : str
        ``"local"``, ``"isotropic"`` or ``"none"``.
    window : int
        Side of the window (corner positions) of the local correction.
    volume_m3 : float
        Volume of the image.
    edge_length_m, active_edge_length_m, dead_end_edge_length_m, isolated_edge_length_m : float
        Raw voxel-edge length (m), uncorrected.
    length_m, active_length_m, dead_end_length_m, isolated_length_m : float
        Corrected TPB length (m).
    edge_density_m_per_m3 : float
        Raw edge length per volume (m/m³).
    density_m_per_m3, active_density_m_per_m3 : float
        Corrected TPB length per volume (m/m³), per counting lattice (module notes).
    correction_factor : float
        ``length_m / edge_length_m``: the factor applied on average (1/1.5 for an
        isotropic network).
    active_fraction : float
        ``active_length_m / length_m`` (0 without TPB).
    n_edges : int
        Number of TPB edges.
    contact : ContactResult or None
        Active-material / electrolyte contact area, when requested.
    active_map : ndarray of float32 or None
        Corrected active TPB length per voxel (m; each edge shared by its four
        voxels), shape of the image.
    provenance : Provenance
    """

    phases: tuple[str, str, str]
    reservoirs: dict[str, list[int] | None]
    network: str
    correction: str
    window: int
    volume_m3: float
    edge_length_m: float
    active_edge_length_m: float
    dead_end_edge_length_m: float
    isolated_edge_length_m: float
    length_m: float
    active_length_m: float
    dead_end_length_m: float
    isolated_length_m: float
    edge_density_m_per_m3: float
    density_m_per_m3: float
    active_density_m_per_m3: float
    correction_factor: float
    active_fraction: float
    n_edges: int
    contact: ContactResult | None
    active_map: np.ndarray | None = field(repr=False, default=None)
    provenance: Provenance = field(repr=False, default_factory=lambda: Provenance("tpb"))

    _json_arrays: ClassVar[tuple[str, ...]] = ()


# ============================================================ phases and networks
def _resolve_items(ms: Microstructure, items: Sequence[str], n: int) -> list[tuple[Phase, ...]]:
    if isinstance(items, str):
        items = [s for s in items.split(",") if s.strip()]
    items = [str(s).strip() for s in items]
    if len(items) != n:
        raise InvalidInputError(
            f"give exactly {n} phases (names or roles), got {len(items)}: {', '.join(items)}"
        )
    groups = [ms.phases.resolve(item) for item in items]
    seen: dict[int, str] = {}
    for item, grp in zip(items, groups, strict=True):
        for p in grp:
            if p.label in seen:
                raise InvalidInputError(
                    f"phase {p.name!r} is named twice ({seen[p.label]!r} and {item!r}); "
                    f"the {n} phases must be distinct"
                )
            seen[p.label] = item
    return groups


def _check_present(ms: Microstructure, code: np.ndarray, items: Sequence[str]) -> None:
    """Refuse a phase without a voxel (bit ``k`` of ``code`` never set)."""
    seen = int(np.bitwise_or.reduce(code, axis=None)) if code.size else 0
    for k, item in enumerate(items):
        if not (seen >> k) & 1:
            counts = ms.counts()
            raise PhaseError(
                f"phase {item!r} is absent from the image (no voxel); present: "
                + ", ".join(name for name, v in counts.items() if v)
            )


def default_reservoirs(ms: Microstructure, phases: Sequence[str]) -> dict[str, Reservoir]:
    """The face each phase must reach (electron conductors: collector; ion conductors: separator).

    Parameters
    ----------
    ms : Microstructure
        Image (its phase table and thickness axis).
    phases : sequence of str
        Phase names or roles.

    Returns
    -------
    dict
        ``{phase: (thickness_axis, 0)}`` for electron-conducting roles,
        ``(thickness_axis, -1)`` for electrolyte roles, None for the rest.
    """
    out: dict[str, Reservoir] = {}
    for item in phases:
        roles = {p.role for p in ms.phases.resolve(item)}
        if roles & _ELECTRONIC:
            out[item] = (ms.thickness_axis, 0)
        elif roles & _IONIC:
            out[item] = (ms.thickness_axis, -1)
        else:
            out[item] = None
    return out


def _check_reservoir(item: str, r: Any, ndim: int) -> Reservoir:
    if r is None or (isinstance(r, str) and r.lower() in ("none", "any", "")):
        return None
    try:
        axis, side = (int(v) for v in r)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"reservoir of {item!r}: give (axis, side) with side 0 or -1, or None; got {r!r}"
        ) from None
    if not (0 <= axis < ndim) or side not in (0, -1):
        raise InvalidInputError(
            f"reservoir of {item!r}: axis must be 0..{ndim - 1} and side 0 (first layer) or "
            f"-1 (last layer), got {r!r}"
        )
    return (axis, side)


def _status_bits(
    ms: Microstructure,
    groups: list[tuple[Phase, ...]],
    reservoirs: list[Reservoir],
    network: str,
    periodic: Sequence[bool] | None,
) -> np.ndarray:
    """Per voxel, bit k: phase k present; bit 3+k: connected; bit 6+k: not isolated."""
    from microbat.core.clusters import label_clusters, side_touch
    from microbat.ssb import _kernels

    lab = np.ascontiguousarray(ms.labels)
    n_lab = int(max(lab.max(initial=0), *ms.phases.labels)) + 1
    code = np.zeros(lab.shape, np.uint16)
    nets: dict[tuple[int, ...], list[int]] = {}
    for k, grp in enumerate(groups):
        if network == "conductor":
            roles = {p.role for p in grp}
            cls = _ELECTRONIC if roles & _ELECTRONIC else _IONIC if roles & _IONIC else None
            members = [p for p in ms.phases.values() if cls is not None and p.role in cls]
            members = list(dict.fromkeys([*members, *grp]))
        else:
            members = list(grp)
        nets.setdefault(tuple(sorted(p.label for p in members)), []).append(k)
    sides = [(a, s) for a in range(lab.ndim) for s in (0, -1)]
    for key, ks in nets.items():
        mlut = np.zeros(n_lab, bool)
        mlut[list(key)] = True
        clusters, n = label_clusters(mlut[lab], 2 * lab.ndim, periodic=periodic)
        touch_side = {sd: side_touch(clusters, n, *sd) for sd in sides}
        touch = np.zeros(n + 1, bool)
        for t in touch_side.values():
            touch |= t
        for k in ks:
            present = np.zeros(n_lab, bool)
            present[[p.label for p in groups[k]]] = True
            res = reservoirs[k]
            if res is None:  # no requirement: never inactive, never isolated
                anywhere = np.ones(n + 1, bool)
                _kernels.status_codes(lab, clusters, present, k, anywhere, anywhere, code)
            else:
                _kernels.status_codes(lab, clusters, present, k, touch_side[res], touch, code)
        del clusters
    return code


def _sl(axis: int, s: slice) -> tuple[slice, ...]:
    out = [slice(None)] * 3
    out[axis] = s
    return tuple(out)


# ====================================================================== counting
def _line_weights(
    correction: str, bits: np.ndarray, pos: list[np.ndarray], window: int, h: Sequence[float]
) -> list[np.ndarray]:
    """Per-edge factor toward the true line length (module notes)."""
    if correction != "local":
        f = 1.0 / ISOTROPIC_FACTOR if correction == "isotropic" else 1.0
        return [np.full(p.shape[1], f) for p in pos]
    from microbat.ssb import _kernels

    out = []
    for p in pos:
        if p.shape[1] == 0:
            out.append(np.zeros(0))
            continue
        out.append(
            _kernels.line_factor(
                bits, p[0], p[1], p[2], int(window // 2), float(h[0]), float(h[1]), float(h[2])
            )
        )
    return out


def _check_common(ms: Microstructure, correction: str, window: int) -> None:
    if ms.ndim != 3:
        raise InvalidInputError(
            f"triple-phase boundaries and contact areas need a 3D image, got {ms.ndim}D"
        )
    if correction not in ("local", "isotropic", "none"):
        raise InvalidInputError(f"correction={correction!r}; use local, isotropic or none")
    if not (isinstance(window, int | np.integer) and window >= 3 and window % 2 == 1):
        raise InvalidInputError(f"window={window!r}; give an odd number of voxels >= 3")


def _classes(orr: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Active and isolated masks of OR-ed status codes over phases ``k`` (bit mask)."""
    active = ((orr >> 3) & k) == k
    isolated = ((orr >> 6) & k) != k
    return active, isolated


def contact_area(
    ms: Microstructure,
    phases: Sequence[str] = ("active", "solid_electrolyte"),
    *,
    reservoirs: Mapping[str, Any] | None = None,
    network: Network = "conductor",
    correction: Correction = "local",
    periodic: Sequence[bool] | None = None,
) -> ContactResult:
    """Area of the contact between two phases (e.g. active material and solid electrolyte).

    Parameters
    ----------
    ms : Microstructure
        3D labelled image.
    phases : sequence of 2 str, default ("active", "solid_electrolyte")
        The two phases (names or roles).
    reservoirs : mapping, optional
        Per phase, ``(axis, side)`` of the face it must reach or None; default
        :func:`default_reservoirs`.
    network : {"conductor", "phase"}, default "conductor"
        Connectivity within the conduction class or within the phase alone.
    correction : {"local", "isotropic", "none"}, default "local"
        Correction of the face count: the interface-area estimator, division by
        1.5, or none (module notes).
    periodic : sequence of bool, optional
        Periodic axes for the connectivity.

    Returns
    -------
    ContactResult

    Raises
    ------
    InvalidInputError
        Not two distinct phases, a bad reservoir or correction.
    PhaseError
        A phase unknown or absent from the image.

    Examples
    --------
    >>> lab = np.zeros((8, 8, 8), np.uint8); lab[:, :, 4:] = 1
    >>> ms = Microstructure(lab, 1e-6, "active=0,se=1")
    >>> round(contact_area(ms, ("active", "se")).area_m2 * 1e12, 6)
    64.0
    """
    t0 = time.perf_counter()
    _check_common(ms, correction, 7)
    items = [str(s).strip() for s in (phases.split(",") if isinstance(phases, str) else phases)]
    groups = _resolve_items(ms, items, 2)
    res_map = dict(default_reservoirs(ms, items))
    res_map.update(dict(reservoirs or {}))
    res = [_check_reservoir(i, res_map.get(i), 3) for i in items]
    code = _status_bits(ms, groups, res, network, periodic)
    _check_present(ms, code, items)
    out = _contact_from_codes(ms, code, 0, 1, correction)
    return ContactResult(
        phases=(items[0], items[1]),
        **out,
        provenance=Provenance(
            "microbat.ssb.contact_area",
            parameters={
                "phases": items,
                "reservoirs": {
                    i: (None if r is None else list(r)) for i, r in zip(items, res, strict=True)
                },
                "network": network,
                "correction": correction,
            },
            wall_time_s=time.perf_counter() - t0,
        ),
    )


def _contact_from_codes(
    ms: Microstructure, code: np.ndarray, ka: int, kb: int, correction: str
) -> dict[str, float]:
    from microbat.fv.grid import face_areas
    from microbat.ssb import _kernels

    h = ms.voxel_size
    areas = np.asarray(face_areas(h))
    counts = _kernels.contact_faces(code, ka, kb)  # [axis, (all, active, isolated)]
    raw, raw_act, raw_iso = (float(areas @ counts[:, c]) for c in range(3))
    if correction == "local":
        tot = _mc_factor(ms, code, ka, kb) * raw if raw else 0.0
    else:
        tot = raw / ISOTROPIC_FACTOR if correction == "isotropic" else raw
    f = tot / raw if raw else 1.0
    vol = float(np.prod(code.shape)) * float(np.prod(h))
    return {
        "face_area_m2": raw,
        "area_m2": float(tot),
        "active_area_m2": f * raw_act,
        "dead_end_area_m2": max(f * (raw - raw_act - raw_iso), 0.0),
        "isolated_area_m2": f * raw_iso,
        "specific_area_per_m": tot / vol,
        "active_specific_area_per_m": f * raw_act / vol,
        "correction_factor": f,
        "active_fraction": raw_act / raw if raw else 0.0,
    }


def _mc_factor(ms: Microstructure, code: np.ndarray, ka: int, kb: int) -> float:
    """Estimated area over face area of the contact, on a central sub-volume.

    The ratio depends only on the orientation distribution of the contact surface,
    so above :data:`_MC_SAMPLE` voxels per side it is measured on the central cube of
    that size (when it holds at least 2000 contact faces) and applied to the faces
    of the whole image.
    """
    from microbat.fv.grid import face_areas
    from microbat.imaging.metrics import interface_areas
    from microbat.ssb import _kernels

    sub = code
    if max(code.shape) > _MC_SAMPLE:
        sl = tuple(
            slice(max((n - _MC_SAMPLE) // 2, 0), max((n - _MC_SAMPLE) // 2, 0) + _MC_SAMPLE)
            for n in code.shape
        )
        sub = np.ascontiguousarray(code[sl])
        if _kernels.contact_faces(sub, ka, kb)[:, 0].sum() < 2000:
            sub = code
    faces = float(np.asarray(face_areas(ms.voxel_size)) @ _kernels.contact_faces(sub, ka, kb)[:, 0])
    if faces == 0:
        return 1.0
    lab = ((sub >> ka) & 1).astype(np.uint8)
    lab += (((sub >> kb) & 1) * 2).astype(np.uint8)
    two = Microstructure(
        lab, ms.voxel_size, "rest:other=0,a:other=1,b:other=2", allow_empty_phases=True
    )
    return float(interface_areas(two)[("a", "b")]) / faces


def triple_phase_boundary(
    ms: Microstructure,
    phases: Sequence[str] = ("active", "solid_electrolyte", "carbon_binder"),
    *,
    reservoirs: Mapping[str, Any] | None = None,
    network: Network = "conductor",
    correction: Correction = "local",
    window: int = 5,
    contact: Sequence[str] | Literal["auto"] | None = "auto",
    keep_map: bool = True,
    periodic: Sequence[bool] | None = None,
) -> TPBResult:
    """Triple-phase boundary length (and density) of three phases, active and inactive.

    Parameters
    ----------
    ms : Microstructure
        3D labelled image; voxels may be anisotropic.
    phases : sequence of 3 str, default ("active", "solid_electrolyte", "carbon_binder")
        The three phases, by name or role (a role may cover several phases);
        they must be distinct and present.
    reservoirs : mapping, optional
        Per phase (as named in ``phases``), ``(axis, side)`` of the face it must
        be connected to, or None for no requirement. Default
        (:func:`default_reservoirs`): electron conductors the current-collector
        face ``(thickness_axis, 0)``, ion conductors the separator face
        ``(thickness_axis, -1)``, other roles None. Given entries override.
    network : {"conductor", "phase"}, default "conductor"
        Connectivity through every phase of the same conduction class, or
        through the phase alone (module notes).
    correction : {"local", "isotropic", "none"}, default "local"
        Correction of the voxel-edge length toward the true line length.
    window : int, default 5
        Side (corner positions, odd) of the window of the local correction.
    contact : "auto", sequence of 2 str or None, default "auto"
        Also the two-phase contact area: ``"auto"`` takes the active-role phase
        and the electrolyte-role phase among the three (when both are there).
    keep_map : bool, default True
        Return the map of active TPB length per voxel.
    periodic : sequence of bool, optional
        Periodic axes for the connectivity (edges across seams are not counted).

    Returns
    -------
    TPBResult

    Raises
    ------
    InvalidInputError
        Fewer than three distinct phases, a bad reservoir, correction or window,
        a 2D image.
    PhaseError
        A phase unknown or absent from the image.

    Notes
    -----
    Cost: one cluster labelling per conduction network, a few passes of bit
    operations over the grid per axis, and for the local correction
    ``window³`` look-ups per TPB edge (Numba, parallel); the contact area one
    normal-weighted face count (:func:`microbat.imaging.interface_areas`).
    Memory: two bytes per voxel for the status codes, four for the cluster labels
    of one network at a time, four for the map.

    Examples
    --------
    A prism of phase ``cbd`` lying on the flat interface of ``active`` and ``se``
    meets both along two straight lines:

    >>> lab = np.zeros((10, 12, 12), np.uint8); lab[:, :, 6:] = 1
    >>> lab[:, 4:8, 6:8] = 2
    >>> ms = Microstructure(lab, 1e-6, "active=0,se=1,cbd=2")
    >>> r = triple_phase_boundary(ms, ("active", "se", "cbd"))
    >>> round(r.edge_length_m * 1e6, 6), round(r.length_m * 1e6, 6)
    (20.0, 20.0)
    """
    t0 = time.perf_counter()
    _check_common(ms, correction, window)
    items = [str(s).strip() for s in (phases.split(",") if isinstance(phases, str) else phases)]
    groups = _resolve_items(ms, items, 3)
    res_map = dict(default_reservoirs(ms, items))
    for k, v in dict(reservoirs or {}).items():
        if k not in res_map:
            raise InvalidInputError(
                f"reservoir given for {k!r}, which is not one of the phases {', '.join(items)}"
            )
        res_map[k] = v
    res = [_check_reservoir(i, res_map[i], 3) for i in items]
    if network not in ("conductor", "phase"):
        raise InvalidInputError(f"network={network!r}; use conductor or phase")
    pair = _contact_pair(groups, items, contact)
    from microbat.ssb import _kernels

    code = _status_bits(ms, groups, res, network, periodic)
    _check_present(ms, code, items)
    h = ms.voxel_size
    shape = code.shape
    bits = np.zeros(tuple(n + 1 for n in shape), np.uint8)
    pos: list[np.ndarray] = []
    cls: list[tuple[np.ndarray, np.ndarray]] = []
    for a in range(3):
        q, o = _kernels.tpb_edges(code, a)
        act, iso = _classes(o, 7)
        bits[q[0], q[1], q[2]] |= np.uint8(1 << a)
        pos.append(q)
        cls.append((act, iso))
    wts = _line_weights(correction, bits, pos, window, h)
    del bits
    n_edges = sum(p.shape[1] for p in pos)
    raw = [h[a] * pos[a].shape[1] for a in range(3)]
    tot = act_l = iso_l = dens = act_dens = 0.0
    raw_act = raw_iso = 0.0
    act_map = np.zeros(shape, np.float32) if keep_map else None
    for a in range(3):
        b, c = [x for x in range(3) if x != a]
        lat = h[a] * shape[a] * h[b] * (shape[b] - 1) * h[c] * (shape[c] - 1)
        w = wts[a] * h[a]
        act, iso = cls[a]
        la, lact = float(w.sum()), float(w[act].sum())
        tot += la
        act_l += lact
        iso_l += float(w[iso].sum())
        raw_act += h[a] * int(np.count_nonzero(act))
        raw_iso += h[a] * int(np.count_nonzero(iso))
        if lat > 0:
            dens += la / lat
            act_dens += lact / lat
        if act_map is not None and np.any(act):
            _kernels.map_add(act_map, pos[a], w, act, a)
    raw_tot = float(sum(raw))
    vol = float(np.prod(shape)) * float(np.prod(h))
    edge_dens = sum(
        raw[a] / (h[a] * shape[a] * np.prod([h[x] * (shape[x] - 1) for x in range(3) if x != a]))
        for a in range(3)
        if all(shape[x] > 1 for x in range(3) if x != a)
    )
    contact_res = None
    if pair is not None:
        ka, kb = pair
        cdict = _contact_from_codes(ms, code, ka, kb, correction)
        contact_res = ContactResult(
            phases=(items[ka], items[kb]),
            **cdict,
            provenance=Provenance("microbat.ssb.contact_area"),
        )
    del code
    params = {
        "phases": items,
        "reservoirs": {
            i: (None if r is None else list(r)) for i, r in zip(items, res, strict=True)
        },
        "network": network,
        "correction": correction,
        "window": int(window),
        "contact": None if pair is None else [items[pair[0]], items[pair[1]]],
    }
    return TPBResult(
        phases=(items[0], items[1], items[2]),
        reservoirs=params["reservoirs"],  # type: ignore[arg-type]
        network=network,
        correction=correction,
        window=int(window),
        volume_m3=vol,
        edge_length_m=raw_tot,
        active_edge_length_m=raw_act,
        dead_end_edge_length_m=max(raw_tot - raw_act - raw_iso, 0.0),
        isolated_edge_length_m=raw_iso,
        length_m=tot,
        active_length_m=act_l,
        dead_end_length_m=max(tot - act_l - iso_l, 0.0),
        isolated_length_m=iso_l,
        edge_density_m_per_m3=float(edge_dens),
        density_m_per_m3=dens,
        active_density_m_per_m3=act_dens,
        correction_factor=tot / raw_tot if raw_tot else 1.0,
        active_fraction=act_l / tot if tot else 0.0,
        n_edges=int(n_edges),
        contact=contact_res,
        active_map=act_map,
        provenance=Provenance(
            "microbat.ssb.triple_phase_boundary",
            parameters=params,
            wall_time_s=time.perf_counter() - t0,
        ),
    )


def _contact_pair(
    groups: list[tuple[Phase, ...]], items: list[str], contact: Any
) -> tuple[int, int] | None:
    if contact is None:
        return None
    if isinstance(contact, str) and contact == "auto":
        act = [k for k, g in enumerate(groups) if any(p.role == PhaseRole.ACTIVE for p in g)]
        ion = [k for k, g in enumerate(groups) if any(p.role in _IONIC for p in g)]
        if act and ion and act[0] != ion[0]:
            return act[0], ion[0]
        return None
    names = [str(s).strip() for s in (contact.split(",") if isinstance(contact, str) else contact)]
    if len(names) != 2 or names[0] == names[1] or any(n not in items for n in names):
        raise InvalidInputError(
            f"contact={contact!r}: name two different phases among {', '.join(items)}"
        )
    return items.index(names[0]), items.index(names[1])
