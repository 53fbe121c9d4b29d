"""Private helpers shared by :mod:`microbat.imaging.metrics` and ``connectivity``.

* Phase groups and their digital connectivity (26 for fluid roles, 6 for the rest).
* The face-touch classification of clusters along an axis (the labelling itself,
  ``structure``, ``label_clusters`` and ``face_touch``, is :mod:`microbat.core.clusters`,
  shared with :mod:`microbat.fv.connectivity`, and re-exported here).

Nothing here is public API; names and signatures may change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from microbat.core.clusters import face_touch as face_touch
from microbat.core.clusters import label_clusters as label_clusters
from microbat.core.clusters import structure as structure
from microbat.core.errors import PhaseError
from microbat.core.microstructure import Microstructure
from microbat.core.phases import PhaseRole

# --------------------------------------------------------------------------
# Connectivity rule
# --------------------------------------------------------------------------
#: Roles whose phases are labelled with full (26- in 3D, 8- in 2D) connectivity:
#: the fluid-filled or empty space. Every other role (active, carbon-binder,
#: current collector, separator, solid electrolyte, other) uses face (6-/4-)
#: connectivity, so that a fluid path and a solid path can never cross each other
#: (the (26, 6) pair of digital topology).
FLUID_ROLES: frozenset[PhaseRole] = frozenset({PhaseRole.ELECTROLYTE, PhaseRole.GAS})


def full_connectivity(ndim: int) -> int:
    """Number of neighbours of full connectivity (26 in 3D, 8 in 2D)."""
    return 3**ndim - 1


def face_connectivity(ndim: int) -> int:
    """Number of neighbours of face connectivity (6 in 3D, 4 in 2D)."""
    return 2 * ndim


def connectivity_for_roles(roles: Iterable[PhaseRole], ndim: int) -> int:
    """Connectivity of a group of phases: full when every role is a fluid role."""
    roles = list(roles)
    if roles and all(r in FLUID_ROLES for r in roles):
        return full_connectivity(ndim)
    return face_connectivity(ndim)


@dataclass(frozen=True)
class Group:
    """A set of phases analysed together (one phase, a role, or all solids)."""

    name: str
    labels: tuple[int, ...]
    roles: tuple[PhaseRole, ...]
    connectivity: int

    def mask(self, labels: np.ndarray) -> np.ndarray:
        """Boolean mask of the group in a label array."""
        if len(self.labels) == 1:
            return labels == self.labels[0]
        lut = np.zeros(int(labels.max()) + 1 if labels.size else 1, dtype=bool)
        lut[[lab for lab in self.labels if lab < lut.size]] = True
        return lut[labels]


def resolve_groups(
    ms: Microstructure,
    phases: str | Sequence[str] | None,
    *,
    connectivity: int | None = None,
) -> list[Group]:
    """Turn a ``phases`` argument into groups.

    ``None`` gives every phase of the table on its own. Otherwise each item (a
    comma-separated string or a sequence) is a phase name (one group), a role
    (``"electrolyte"``: the union of the phases with that role, one group), or
    ``"solid"``: the union of every phase whose role conducts electrons
    (:attr:`PhaseRole.is_solid`). A phase name wins over a role or the ``"solid"``
    selector: in a table with a phase named ``solid``, ``"solid"`` is that phase.
    """
    if phases is None:
        items: list[str] = list(ms.phases.names)
    elif isinstance(phases, str):
        items = [s.strip() for s in phases.split(",") if s.strip()]
    else:
        items = [str(s).strip() for s in phases]
    if not items:
        raise PhaseError("no phase selected; give phase names, roles or 'solid'")
    groups: list[Group] = []
    for item in items:
        if item.lower() == "solid" and item not in ms.phases:
            found = tuple(p for p in ms.phases.values() if p.role.is_solid)
            if not found:
                raise PhaseError(
                    "'solid' selects the phases with an electron-conducting role (active, "
                    "carbon_binder, current_collector) but this table has none: "
                    f"{ms.phases.to_spec()}; name the phases instead"
                )
            name = "solid"
        else:
            found = ms.phases.resolve(item)
            name = item
        roles = tuple(p.role for p in found)
        conn = connectivity if connectivity is not None else connectivity_for_roles(roles, ms.ndim)
        structure(ms.ndim, conn)  # validate
        g = Group(name, tuple(p.label for p in found), roles, conn)
        if any(x.name == g.name for x in groups):
            raise PhaseError(f"phase {item!r} is selected twice")
        groups.append(g)
    return groups


# --------------------------------------------------------------------------
# Cluster labelling and face classification
# --------------------------------------------------------------------------
NONE, PERCOLATING, DEAD_END, ISOLATED = 0, 1, 2, 3


def classify_clusters(lab: np.ndarray, n: int, axis: int) -> np.ndarray:
    """Class of each cluster label (``uint8`` lookup of n+1 entries, index 0 = NONE)."""
    first, last = face_touch(lab, n, axis)
    cls = np.full(n + 1, ISOLATED, dtype=np.uint8)
    cls[first ^ last] = DEAD_END
    cls[first & last] = PERCOLATING
    cls[0] = NONE
    return cls
