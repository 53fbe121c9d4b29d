"""Dual connectivity: percolating, dead-end and isolated clusters of each phase.

Clusters of fluid phases (roles ``electrolyte`` and ``gas``) are 26-connected (8
in 2D); clusters of every other role (active, carbon-binder, current collector,
separator, solid electrolyte, other) are 6-connected (4 in 2D). The pair (26, 6)
is complementary in digital topology: a pore path and a solid path can never
cross, so the pore space and the solid skeleton are classified consistently.

Along the chosen axis (the thickness axis by default: index 0 at the current
collector, the last index at the separator) each cluster is

* **percolating** (:attr:`ClusterClass.PERCOLATING`): it touches both faces
  normal to the axis;
* **dead-end** (:attr:`ClusterClass.DEAD_END`): it touches exactly one of them;
* **isolated** (:attr:`ClusterClass.ISOLATED`): it touches neither (it may
  still touch the side faces; what lies beyond the image is unknown).

:func:`transport_mask` gives the voxels that can carry a flux between the two
faces in a finite-volume model, where flux passes through shared voxel faces
only; that is why it uses 6-connectivity for every phase by default.

Clusters are labelled, and their contact with the two faces tested, by
:mod:`microbat.core.clusters`, the kernel :mod:`microbat.fv.connectivity` uses as
well: in 3D with face connectivity, :func:`transport_mask` is
:func:`microbat.fv.spanning_mask` of the same voxels (no periodic axes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np

from microbat.core.errors import InvalidInputError, NotPercolatingError, PhaseError
from microbat.core.microstructure import Microstructure
from microbat.core.results import Provenance, Result, Timer, to_jsonable
from microbat.imaging import _morph

__all__ = [
    "ClusterClass",
    "ConnectivityResult",
    "RemovalReport",
    "analyze_connectivity",
    "remove_isolated",
    "transport_mask",
]

_CLASS_NAMES = ("percolating", "dead_end", "isolated")


class ClusterClass(IntEnum):
    """Values of a class map (``uint8``)."""

    NONE = _morph.NONE  # not a voxel of the phase
    PERCOLATING = _morph.PERCOLATING
    DEAD_END = _morph.DEAD_END
    ISOLATED = _morph.ISOLATED


def _axis(ms: Microstructure, axis: int | None) -> int:
    if axis is None:
        return ms.thickness_axis
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
        raise InvalidInputError(f"axis must be an integer, got {axis!r}")
    if not -ms.ndim <= axis < ms.ndim:
        raise InvalidInputError(
            f"axis {axis} is not an axis of this {ms.ndim}D image of shape {ms.shape}; "
            f"use 0..{ms.ndim - 1}"
        )
    return int(axis) % ms.ndim


@dataclass(frozen=True)
class ConnectivityResult(Result):
    """Cluster classification of each phase along one axis.

    Attributes
    ----------
    axis : int
        Axis whose two faces define the classes.
    phases : tuple of str
        Phases (or groups) analysed, in order.
    connectivity : dict of str to int
        Neighbourhood used for each phase (26/6 in 3D, 8/4 in 2D).
    n_clusters : dict of str to int
        Number of clusters of each phase.
    cluster_counts : dict of str to dict of str to int
        Per phase, the number of ``percolating``, ``dead_end`` and ``isolated``
        clusters.
    volume_fractions : dict of str to dict of str to float
        Per phase and class, the volume of that class over the total volume (the
        three classes add up to the phase's volume fraction: effective, dead-end
        and isolated porosity for the pore phase).
    phase_fractions : dict of str to dict of str to float
        The same over the phase volume (add up to 1; ``nan`` for an empty phase).
    class_maps : dict of str to ndarray of uint8
        Per phase, the class of every voxel (:class:`ClusterClass` values; 0 off
        the phase). Summarised (shape, dtype) by :meth:`to_dict`.
    provenance : Provenance
        How it was made.
    """

    axis: int
    phases: tuple[str, ...]
    connectivity: dict[str, int]
    n_clusters: dict[str, int]
    cluster_counts: dict[str, dict[str, int]]
    volume_fractions: dict[str, dict[str, float]]
    phase_fractions: dict[str, dict[str, float]]
    class_maps: dict[str, np.ndarray]
    provenance: Provenance

    def percolates(self, phase: str) -> bool:
        """True when ``phase`` has at least one percolating cluster."""
        self._check(phase)
        return self.cluster_counts[phase]["percolating"] > 0

    def _check(self, phase: str) -> None:
        if phase not in self.phases:
            raise PhaseError(
                f"phase {phase!r} was not analysed; analysed: {', '.join(self.phases)}"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (class maps summarised by shape and dtype)."""
        return {
            "axis": self.axis,
            "phases": list(self.phases),
            "connectivity": dict(self.connectivity),
            "n_clusters": dict(self.n_clusters),
            "cluster_counts": to_jsonable(self.cluster_counts),
            "volume_fractions": to_jsonable(self.volume_fractions),
            "phase_fractions": to_jsonable(self.phase_fractions),
            "class_maps": {
                k: {"shape": list(v.shape), "dtype": str(v.dtype)}
                for k, v in self.class_maps.items()
            },
            "provenance": self.provenance.to_dict(),
        }


def _classify_group(
    ms: Microstructure, group: _morph.Group, axis: int
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray, np.ndarray]:
    """Labels, per-label class lookup, count, per-label sizes, and the class map."""
    mask = group.mask(ms.labels)
    lab, n = _morph.label_clusters(mask, group.connectivity)
    lut = _morph.classify_clusters(lab, n, axis)
    sizes = np.bincount(lab.reshape(-1), minlength=n + 1)
    return lab, lut, n, sizes, lut[lab]


def analyze_connectivity(
    ms: Microstructure,
    *,
    axis: int | None = None,
    phases: str | Sequence[str] | None = None,
    connectivity: int | None = None,
) -> ConnectivityResult:
    """Label the clusters of each phase and classify them along an axis.

    Parameters
    ----------
    ms : Microstructure
        A 2D or 3D labelled image.
    axis : int, optional
        Axis whose two faces define percolating / dead-end / isolated; default
        the thickness axis of ``ms``.
    phases : str or sequence of str, optional
        Phase names; roles (the union of the phases with that role, one group);
        or ``"solid"`` (the union of the electron-conducting phases: active,
        carbon-binder, current collector). Default: every phase on its own.
    connectivity : int, optional
        Force one neighbourhood (6, 18, 26; 4, 8 in 2D) for every phase instead
        of the role rule (26 for electrolyte and gas, 6 otherwise).

    Returns
    -------
    ConnectivityResult
        Cluster counts, class volume fractions and a ``uint8`` class map per phase.

    Raises
    ------
    PhaseError
        Unknown phase or role.
    InvalidInputError
        Bad axis or connectivity.

    Notes
    -----
    Clusters are labelled with :func:`scipy.ndimage.label` (two-pass union-find):
    ``O(N)`` time and 4 bytes per voxel per phase for the labels, plus one byte
    per voxel per phase for the class map kept in the result. A cluster touches a
    face when one of its voxels lies in the first or last layer along ``axis``.

    References
    ----------
    .. [1] T. Y. Kong, A. Rosenfeld, "Digital topology: introduction and
       survey", Comput. Vis. Graph. Image Process. 48 (1989) 357-393.
    .. [2] M. Ebner et al., "X-ray tomography of porous, transition metal oxide
       based lithium ion battery electrodes", Adv. Energy Mater. 3 (2013)
       845-850.

    Examples
    --------
    >>> import numpy as np
    >>> from microbat import Microstructure
    >>> lab = np.ones((8, 8, 8), np.uint8)
    >>> lab[:, 1, 1] = 0          # percolating channel along axis 0
    >>> lab[:4, 5, 5] = 0         # dead-end channel from the first face
    >>> lab[3:5, 3, 6] = 0        # isolated pore
    >>> ms = Microstructure(lab, voxel_size=1e-6, phases="pore=0,active=1")
    >>> analyze_connectivity(ms, phases="pore").cluster_counts["pore"]
    {'percolating': 1, 'dead_end': 1, 'isolated': 1}
    """
    with Timer() as timer:
        ax = _axis(ms, axis)
        groups = _morph.resolve_groups(ms, phases, connectivity=connectivity)
        n_total = ms.n_voxels
        conn: dict[str, int] = {}
        nclu: dict[str, int] = {}
        counts: dict[str, dict[str, int]] = {}
        vf: dict[str, dict[str, float]] = {}
        pf: dict[str, dict[str, float]] = {}
        maps: dict[str, np.ndarray] = {}
        for g in groups:
            lab, lut, n, sizes, cmap = _classify_group(ms, g, ax)
            del lab
            phase_vox = int(sizes[1:].sum())
            conn[g.name] = g.connectivity
            nclu[g.name] = n
            counts[g.name] = {}
            vf[g.name] = {}
            pf[g.name] = {}
            for code, cname in enumerate(_CLASS_NAMES, start=1):
                sel = lut == code
                sel[0] = False
                vox = int(sizes[sel].sum())
                counts[g.name][cname] = int(np.count_nonzero(sel))
                vf[g.name][cname] = vox / n_total
                pf[g.name][cname] = vox / phase_vox if phase_vox else math.nan
            maps[g.name] = cmap
    prov = Provenance(
        function="microbat.imaging.connectivity.analyze_connectivity",
        parameters={"axis": ax, "phases": phases, "connectivity": connectivity},
        wall_time_s=timer.elapsed,
        inputs={
            "shape": list(ms.shape),
            "voxel_size_m": (list(ms.voxel_size) if ms.voxel_size_known else None),
        },
    )
    return ConnectivityResult(
        axis=ax,
        phases=tuple(g.name for g in groups),
        connectivity=conn,
        n_clusters=nclu,
        cluster_counts=counts,
        volume_fractions=vf,
        phase_fractions=pf,
        class_maps=maps,
        provenance=prov,
    )


def transport_mask(
    ms: Microstructure,
    phase: str | Sequence[str],
    axis: int | None = None,
    *,
    connectivity: int | None = None,
    require: bool = False,
) -> np.ndarray:
    """Voxels of a phase that can carry a flux between the two faces normal to ``axis``.

    Parameters
    ----------
    ms : Microstructure
        A 2D or 3D labelled image.
    phase : str or sequence of str
        Phase names or roles (taken together as one conducting medium), or
        ``"solid"``.
    axis : int, optional
        Transport direction; default the thickness axis.
    connectivity : int, optional
        Neighbourhood of the clusters. Default: face connectivity (6 in 3D, 4 in
        2D) for every phase, because a finite-volume flux crosses shared faces
        only; a cluster joined through an edge or a corner would be a floating,
        singular block of the linear system.
    require : bool, default False
        Raise :class:`NotPercolatingError` when no cluster connects the faces
        (otherwise an all-false mask is returned).

    Returns
    -------
    ndarray of bool
        True on the voxels of the clusters touching both faces. Dead-end and
        isolated clusters add porosity (volume) but carry no steady flux.

    Raises
    ------
    NotPercolatingError
        With ``require=True``, when the phase does not percolate along ``axis``.

    Notes
    -----
    One :func:`scipy.ndimage.label`: ``O(N)`` time, 4 bytes per voxel.

    Examples
    --------
    >>> import numpy as np
    >>> from microbat import Microstructure
    >>> lab = np.ones((6, 6, 6), np.uint8); lab[:, 2, 2] = 0; lab[:3, 4, 4] = 0
    >>> ms = Microstructure(lab, voxel_size=1e-6, phases="pore=0,active=1")
    >>> int(transport_mask(ms, "pore", axis=0).sum())  # the dead end is dropped
    6
    """
    ax = _axis(ms, axis)
    conn = connectivity if connectivity is not None else _morph.face_connectivity(ms.ndim)
    groups = _morph.resolve_groups(ms, phase, connectivity=conn)
    labels = sorted({lab for g in groups for lab in g.labels})
    mask = np.isin(ms.labels, labels)
    lab, n = _morph.label_clusters(mask, conn)
    first, last = _morph.face_touch(lab, n, ax)
    keep = first & last
    out = keep[lab]
    if require and not keep.any():
        names = ", ".join(g.name for g in groups)
        raise NotPercolatingError(
            f"phase {names} does not connect the two faces normal to axis {ax} "
            f"({conn}-connectivity, volume fraction {mask.mean():.3g}); transport along "
            "this axis is zero: check the segmentation or choose another axis"
        )
    return out


@dataclass(frozen=True)
class RemovalReport(Result):
    """What :func:`remove_isolated` changed.

    Attributes
    ----------
    axis : int
        Axis used to classify the clusters.
    phases : tuple of str
        Phases (or groups) cleaned.
    rule : str
        Reassignment rule (``"neighbour"`` or ``"to:<phase>"``).
    n_clusters_removed : int
        Number of isolated clusters reassigned.
    n_voxels_reassigned : int
        Number of voxels whose label changed.
    volume_fraction_reassigned : float
        ``n_voxels_reassigned`` over the total number of voxels.
    transfers : dict of str to dict of str to int
        ``transfers[old][new]`` voxels moved from phase ``old`` to phase ``new``.
    volume_fractions_before, volume_fractions_after : dict of str to float
        Phase volume fractions before and after.
    provenance : Provenance
        How it was made.
    """

    axis: int
    phases: tuple[str, ...]
    rule: str
    n_clusters_removed: int
    n_voxels_reassigned: int
    volume_fraction_reassigned: float
    transfers: dict[str, dict[str, int]]
    volume_fractions_before: dict[str, float]
    volume_fractions_after: dict[str, float]
    provenance: Provenance


def _shared_faces(
    cluster_lab: np.ndarray, phase_idx: np.ndarray, n_clusters: int, n_phases: int
) -> np.ndarray:
    """Count shared voxel faces between each cluster and each phase index.

    ``cluster_lab`` labels the clusters to reassign (0 elsewhere); ``phase_idx``
    is the table index of every voxel. Faces between two voxels of the same
    cluster are not counted. Returns an array ``(n_clusters + 1, n_phases)``.
    """
    counts = np.zeros((n_clusters + 1) * n_phases, dtype=np.int64)
    nd = cluster_lab.ndim
    for ax in range(nd):
        lo = [slice(None)] * nd
        hi = [slice(None)] * nd
        lo[ax] = slice(0, -1)
        hi[ax] = slice(1, None)
        for a, b in ((tuple(lo), tuple(hi)), (tuple(hi), tuple(lo))):
            ca = cluster_lab[a]
            sel = (ca > 0) & (ca != cluster_lab[b])
            key = ca[sel].astype(np.int64) * n_phases + phase_idx[b][sel].astype(np.int64)
            counts += np.bincount(key, minlength=counts.size)
    return counts.reshape(n_clusters + 1, n_phases)


def remove_isolated(
    ms: Microstructure,
    *,
    axis: int | None = None,
    phases: str | Sequence[str] = "solid",
    rule: str = "neighbour",
) -> tuple[Microstructure, RemovalReport]:
    """Reassign the isolated clusters of the given phases to another phase.

    Parameters
    ----------
    ms : Microstructure
        A 2D or 3D labelled image.
    axis : int, optional
        Axis defining isolated (touches neither face normal to it); default the
        thickness axis.
    phases : str or sequence of str, default "solid"
        ``"solid"``: the electron-conducting phases taken together (a particle
        touching carbon-binder that reaches a face is not isolated); phase names
        or roles: each cleaned on its own with its role connectivity.
    rule : str, default "neighbour"
        ``"neighbour"`` (or ``"most_faces"``): each isolated cluster becomes the
        phase with which it shares the most voxel faces (ties go to the phase
        listed first in the table); typically the electrolyte around a floating
        particle. A phase name (or ``"to:<name>"``): every isolated cluster
        becomes that phase.

    Returns
    -------
    Microstructure
        A new microstructure (same voxel size, table and thickness axis; the
        report summary is added to its metadata under ``"remove_isolated"``).
    RemovalReport
        Clusters and voxels reassigned, transfers between phases, fractions.

    Raises
    ------
    PhaseError
        Unknown phase, or a target phase that is itself being cleaned.

    Notes
    -----
    Isolated clusters are those of :func:`analyze_connectivity`. Faces shared
    with voxels of the same group are not counted (there are none for a
    6-connected group: such a voxel would belong to the cluster). ``O(N)`` time;
    a label image (4 bytes per voxel) per group.

    Examples
    --------
    >>> import numpy as np
    >>> from microbat import Microstructure
    >>> lab = np.zeros((8, 8, 8), np.uint8); lab[:, :, :2] = 1  # a solid wall
    >>> lab[3:5, 3:5, 4:6] = 1                                     # a floating particle
    >>> ms = Microstructure(lab, voxel_size=1e-6, phases="pore=0,active=1")
    >>> clean, rep = remove_isolated(ms, axis=0)
    >>> rep.n_clusters_removed, rep.transfers
    (1, {'active': {'pore': 8}})
    """
    with Timer() as timer:
        ax = _axis(ms, axis)
        groups = _morph.resolve_groups(ms, phases)
        table = ms.phases
        names = list(table.names)
        rule_key = rule.strip()
        target: str | None = None
        if rule_key.lower() in ("neighbour", "neighbor", "most_faces"):
            rule_key = "neighbour"
        else:
            tname = rule_key[3:] if rule_key.lower().startswith("to:") else rule_key
            found = table.resolve(tname)
            if len(found) != 1:
                raise PhaseError(
                    f"rule {rule!r} names {len(found)} phases; give one target phase name"
                )
            target = found[0].name
            rule_key = f"to:{target}"
        labels = np.array(ms.labels)  # writable copy
        lut_idx = np.zeros(max(table.labels) + 1, dtype=np.int16)
        for i, p in enumerate(table.values()):
            lut_idx[p.label] = i
        transfers: dict[str, dict[str, int]] = {}
        n_removed = 0
        n_changed = 0
        before = ms.volume_fractions()
        for g in groups:
            if target is not None and table.label_of(target) in g.labels:
                raise PhaseError(
                    f"the target phase {target!r} is one of the phases being cleaned "
                    f"({g.name}); choose another target or rule='neighbour'"
                )
            current = ms.with_labels(labels)
            lab, lut, n, _, _ = _classify_group(current, g, ax)
            iso_ids = np.flatnonzero(lut == _morph.ISOLATED)
            if iso_ids.size == 0:
                continue
            remap = np.zeros(n + 1, dtype=np.int64)
            remap[iso_ids] = np.arange(1, iso_ids.size + 1)
            iso_lab = remap[lab]
            del lab
            phase_idx = lut_idx[labels]
            if target is not None:
                dest = np.full(iso_ids.size + 1, names.index(target), dtype=np.int64)
            else:
                faces = _shared_faces(iso_lab, phase_idx, iso_ids.size, len(names))
                for lab_value in g.labels:  # never hand a cluster back to its own group
                    faces[:, names.index(table.by_label(lab_value).name)] = -1
                dest = np.argmax(faces, axis=1)  # first maximum = table order
            sel = iso_lab > 0
            old_idx = phase_idx[sel].astype(np.int64)
            new_idx = dest[iso_lab[sel]]
            pair_counts = np.bincount(
                old_idx * len(names) + new_idx, minlength=len(names) ** 2
            ).reshape(len(names), len(names))
            for i, j in zip(*np.nonzero(pair_counts), strict=True):
                row = transfers.setdefault(names[i], {})
                row[names[j]] = row.get(names[j], 0) + int(pair_counts[i, j])
            new_labels = np.array([table[names[k]].label for k in range(len(names))])
            labels[sel] = new_labels[new_idx].astype(labels.dtype)
            n_removed += int(iso_ids.size)
            n_changed += int(sel.sum())
        meta = dict(ms.metadata)
        out = ms.with_labels(labels, metadata=meta)
        after = out.volume_fractions()
    prov = Provenance(
        function="microbat.imaging.connectivity.remove_isolated",
        parameters={"axis": ax, "phases": phases, "rule": rule_key},
        wall_time_s=timer.elapsed,
        inputs={
            "shape": list(ms.shape),
            "voxel_size_m": (list(ms.voxel_size) if ms.voxel_size_known else None),
        },
    )
    report = RemovalReport(
        axis=ax,
        phases=tuple(g.name for g in groups),
        rule=rule_key,
        n_clusters_removed=n_removed,
        n_voxels_reassigned=n_changed,
        volume_fraction_reassigned=n_changed / ms.n_voxels,
        transfers=transfers,
        volume_fractions_before=before,
        volume_fractions_after=after,
        provenance=prov,
    )
    out.metadata["remove_isolated"] = {
        "axis": ax,
        "phases": list(report.phases),
        "rule": rule_key,
        "n_clusters_removed": n_removed,
        "n_voxels_reassigned": n_changed,
    }
    return out, report
