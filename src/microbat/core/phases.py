"""Phases and their physical roles.

A :class:`PhaseTable` maps phase names to the integer labels stored in the voxel
array and to a :class:`PhaseRole` that tells every later stage what the phase *is*
(electrolyte-filled pore, active material, carbon-binder, ...).

Selecting phases (:meth:`PhaseTable.resolve`, ``Microstructure.mask``, the
``phase``/``phases`` arguments of the imaging and transport functions): an item is
looked up as a phase *name* first, so a phase may be called ``solid`` or
``electrolyte``; an item that names no phase is the selector ``solid`` (every phase
with an electron-conducting role), a role (``electrolyte``: every phase with that
role) or a common alias of a role (``pores``, ``binder``).

A two-label image without a phase table follows the convention of PoreSpy and
TauFactor: 1 (``True``) is pore, 0 (``False``) is solid (:func:`default_phase_table`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum

from microbat.core.errors import PhaseError

__all__ = ["Phase", "PhaseRole", "PhaseTable", "default_phase_table"]


class PhaseRole(StrEnum):
    """Physical role of a phase."""

    ELECTROLYTE = "electrolyte"  # liquid-filled pore
    ACTIVE = "active"  # active material (intercalation host)
    CARBON_BINDER = "carbon_binder"  # nanoporous carbon-binder domain
    SEPARATOR = "separator"
    SOLID_ELECTROLYTE = "solid_electrolyte"
    CURRENT_COLLECTOR = "current_collector"
    GAS = "gas"  # gas bubble blocking a pore
    OTHER = "other"

    @property
    def is_solid(self) -> bool:
        """True for phases that conduct electrons (6-connectivity in imaging)."""
        return self in (PhaseRole.ACTIVE, PhaseRole.CARBON_BINDER, PhaseRole.CURRENT_COLLECTOR)


# Names a user is likely to type, mapped to roles. Used to infer the role of a
# phase given as "pore=0,cbd=1,active=2".
_ROLE_ALIASES: dict[str, PhaseRole] = {
    "pore": PhaseRole.ELECTROLYTE,
    "pores": PhaseRole.ELECTROLYTE,
    "electrolyte": PhaseRole.ELECTROLYTE,
    "void": PhaseRole.ELECTROLYTE,
    "liquid": PhaseRole.ELECTROLYTE,
    "active": PhaseRole.ACTIVE,
    "am": PhaseRole.ACTIVE,
    "particle": PhaseRole.ACTIVE,
    "particles": PhaseRole.ACTIVE,
    "nmc": PhaseRole.ACTIVE,
    "graphite": PhaseRole.ACTIVE,
    "lfp": PhaseRole.ACTIVE,
    "cbd": PhaseRole.CARBON_BINDER,
    "carbon_binder": PhaseRole.CARBON_BINDER,
    "carbon-binder": PhaseRole.CARBON_BINDER,
    "binder": PhaseRole.CARBON_BINDER,
    "carbon": PhaseRole.CARBON_BINDER,
    "separator": PhaseRole.SEPARATOR,
    "sep": PhaseRole.SEPARATOR,
    "solid_electrolyte": PhaseRole.SOLID_ELECTROLYTE,
    "se": PhaseRole.SOLID_ELECTROLYTE,
    "sse": PhaseRole.SOLID_ELECTROLYTE,
    "current_collector": PhaseRole.CURRENT_COLLECTOR,
    "cc": PhaseRole.CURRENT_COLLECTOR,
    "collector": PhaseRole.CURRENT_COLLECTOR,
    "gas": PhaseRole.GAS,
    "bubble": PhaseRole.GAS,
}

# Names whose role is inferred (``solid=0,pore=1``) but which, as a selector, mean
# something else when no phase carries the name: ``"solid"`` selects every phase
# with an electron-conducting role, not only the active ones.
_NAME_ROLES: dict[str, PhaseRole] = {"solid": PhaseRole.ACTIVE}

#: The selector of every electron-conducting phase (when no phase is named so).
SOLID_SELECTOR = "solid"

#: How a two-label image without a phase table is read (see :func:`default_phase_table`).
BINARY_CONVENTION = "1 (True) = pore, 0 (False) = solid, as in PoreSpy and TauFactor"


@dataclass(frozen=True, slots=True)
class Phase:
    """One phase: its name, the label stored in the voxel array and its role.

    Attributes
    ----------
    name : str
        Unique name (``"pore"``, ``"cbd"``, ``"active"``).
    label : int
        Integer value of this phase in the labelled array (0-65535).
    role : PhaseRole
        Physical role.
    """

    name: str
    label: int
    role: PhaseRole

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise PhaseError(f"a phase name must be a non-empty string, got {self.name!r}")
        if isinstance(self.label, bool) or not isinstance(self.label, int):
            try:
                object.__setattr__(self, "label", int(self.label))  # numpy ints
            except (TypeError, ValueError) as exc:
                raise PhaseError(
                    f"phase {self.name!r}: label must be an integer, got {self.label!r}"
                ) from exc
        if not 0 <= self.label <= 65535:
            raise PhaseError(f"phase {self.name!r}: label {self.label} is outside 0..65535")
        try:
            object.__setattr__(self, "role", PhaseRole(self.role))
        except ValueError as exc:
            raise PhaseError(
                f"phase {self.name!r}: unknown role {self.role!r}; "
                f"use one of {', '.join(r.value for r in PhaseRole)}"
            ) from exc


class PhaseTable(Mapping[str, Phase]):
    """Ordered, immutable table of phases keyed by name.

    Parameters
    ----------
    phases : iterable of Phase
        Phases with unique names and unique labels.

    Examples
    --------
    >>> t = PhaseTable.parse("pore=0,cbd=1,active=2")
    >>> t["cbd"].role
    <PhaseRole.CARBON_BINDER: 'carbon_binder'>
    >>> t.label_of("active")
    2
    """

    __slots__ = ("_by_label", "_by_name")

    def __init__(self, phases: Iterable[Phase]):
        by_name: dict[str, Phase] = {}
        by_label: dict[int, Phase] = {}
        for p in phases:
            if not isinstance(p, Phase):
                raise PhaseError(f"expected Phase objects, got {type(p).__name__}")
            if p.name in by_name:
                raise PhaseError(f"phase name {p.name!r} appears twice in the phase table")
            if p.label in by_label:
                raise PhaseError(
                    f"label {p.label} is used by both {by_label[p.label].name!r} and {p.name!r}"
                )
            by_name[p.name] = p
            by_label[p.label] = p
        if not by_name:
            raise PhaseError("a phase table needs at least one phase")
        self._by_name = by_name
        self._by_label = by_label

    # Mapping protocol -------------------------------------------------------
    def __getitem__(self, name: str) -> Phase:
        try:
            return self._by_name[name]
        except KeyError:
            raise PhaseError(
                f"unknown phase {name!r}; this microstructure has: {', '.join(self._by_name)}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __len__(self) -> int:
        return len(self._by_name)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PhaseTable):
            return NotImplemented
        return list(self._by_name.values()) == list(other._by_name.values())

    def __hash__(self) -> int:
        return hash(tuple(self._by_name.values()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{p.name}={p.label}:{p.role.value}" for p in self._by_name.values())
        return f"PhaseTable({inner})"

    # Lookups ---------------------------------------------------------------
    @property
    def labels(self) -> tuple[int, ...]:
        """Labels in table order."""
        return tuple(p.label for p in self._by_name.values())

    @property
    def names(self) -> tuple[str, ...]:
        """Names in table order."""
        return tuple(self._by_name)

    def label_of(self, name: str) -> int:
        """Return the label stored for phase ``name``."""
        return self[name].label

    def by_label(self, label: int) -> Phase:
        """Return the phase stored with ``label``."""
        try:
            return self._by_label[int(label)]
        except KeyError:
            raise PhaseError(
                f"label {label} is not in the phase table (labels: {sorted(self._by_label)})"
            ) from None

    def with_role(self, role: PhaseRole | str) -> tuple[Phase, ...]:
        """Return all phases with the given role, in table order."""
        role = PhaseRole(role)
        return tuple(p for p in self._by_name.values() if p.role == role)

    def resolve(self, names_or_roles: str | Iterable[str]) -> tuple[Phase, ...]:
        """Resolve phase names *or* role names to phases.

        Each item is, in this order of precedence: the name of a phase (an explicit
        name always wins, so a phase may be called ``solid``); ``"solid"``, every
        phase with an electron-conducting role (active, carbon-binder, current
        collector); a role (``"electrolyte"`` matches every phase whose role is
        electrolyte); a common alias of a role (``"pores"``, ``"binder"``). Unknown
        names raise :class:`PhaseError`.
        """
        if isinstance(names_or_roles, str):
            names_or_roles = [s for s in names_or_roles.split(",") if s.strip()]
        out: list[Phase] = []
        for item in names_or_roles:
            item = item.strip()
            if item in self._by_name:
                found: tuple[Phase, ...] = (self._by_name[item],)
            elif item.lower() == SOLID_SELECTOR:
                found = tuple(p for p in self._by_name.values() if p.role.is_solid)
            else:
                try:
                    found = self.with_role(PhaseRole(item))
                except ValueError:
                    found = ()
                if not found and item.lower() in _ROLE_ALIASES:
                    found = self.with_role(_ROLE_ALIASES[item.lower()])
            if not found:
                raise PhaseError(
                    f"unknown phase {item!r}; this microstructure has phases "
                    f"{', '.join(f'{p.name} ({p.role.value})' for p in self._by_name.values())}"
                )
            out.extend(p for p in found if p not in out)
        return tuple(out)

    # Construction / serialisation ------------------------------------------
    @classmethod
    def parse(cls, spec: str | Mapping[str, int] | PhaseTable) -> PhaseTable:
        """Build a table from ``"pore=0,cbd=1,active=2"`` (or ``"pore,cbd,active"``).

        Roles are inferred from the names (``pore`` → electrolyte, ``cbd`` →
        carbon-binder, ``active`` → active, ``sep`` → separator, ...). A role can be
        given explicitly as ``name:role=label``. Without ``=label`` the labels are
        0, 1, 2, ... in the order given.
        """
        if isinstance(spec, PhaseTable):
            return spec
        if isinstance(spec, Mapping):
            items = [(str(k), int(v)) for k, v in spec.items()]
            return cls(Phase(n, lab, _infer_role(n)) for n, lab in items)
        phases = []
        for i, token in enumerate(t.strip() for t in str(spec).split(",") if t.strip()):
            name_part, _, label_part = token.partition("=")
            name, _, role_part = name_part.strip().partition(":")
            try:
                label = int(label_part) if label_part.strip() else i
            except ValueError:
                raise PhaseError(
                    f"cannot read the label in {token!r}; write name=label, e.g. pore=0"
                ) from None
            role = PhaseRole(role_part) if role_part else _infer_role(name)
            phases.append(Phase(name.strip(), label, role))
        return cls(phases)

    def to_list(self) -> list[dict[str, object]]:
        """Serialise as a list of ``{"name", "label", "role"}`` dictionaries."""
        return [{"name": p.name, "label": p.label, "role": p.role.value} for p in self.values()]

    @classmethod
    def from_list(cls, items: Iterable[Mapping[str, object]]) -> PhaseTable:
        """Inverse of :meth:`to_list`."""
        try:
            return cls(Phase(str(d["name"]), int(d["label"]), PhaseRole(d["role"])) for d in items)
        except (KeyError, TypeError, ValueError) as exc:
            raise PhaseError(f"malformed phase table {items!r}: {exc}") from exc

    def to_spec(self) -> str:
        """Inverse of :meth:`parse` (``"pore:electrolyte=0,..."``)."""
        return ",".join(f"{p.name}:{p.role.value}={p.label}" for p in self.values())


def _infer_role(name: str) -> PhaseRole:
    key = name.strip().lower()
    if key in _ROLE_ALIASES:
        return _ROLE_ALIASES[key]
    if key in _NAME_ROLES:
        return _NAME_ROLES[key]
    try:
        return PhaseRole(key)
    except ValueError:
        return PhaseRole.OTHER


def default_phase_table(n_phases: int = 3) -> PhaseTable:
    """The table of an image that comes without one.

    Parameters
    ----------
    n_phases : {2, 3, 4}, default 3
        Number of labels (0, 1, ...).

    Returns
    -------
    PhaseTable
        2 labels: ``pore=1, active=0``, the convention of PoreSpy and TauFactor
        (a boolean or 0/1 image is ``True``/1 where the pore is); the pore is listed
        first, so a two-phase segmentation still goes from dark (pore) to bright.
        3 labels: ``pore=0, cbd=1, active=2``; 4: ``pore=0, cbd=1, active=2,
        separator=3`` (microbat's synthetic electrodes).

    Examples
    --------
    >>> default_phase_table(2)
    PhaseTable(pore=1:electrolyte, active=0:active)
    """
    if n_phases == 2:
        return PhaseTable.parse("pore=1,active=0")
    if n_phases == 3:
        return PhaseTable.parse("pore=0,cbd=1,active=2")
    if n_phases == 4:
        return PhaseTable.parse("pore=0,cbd=1,active=2,separator=3")
    raise PhaseError(f"no default phase table for {n_phases} phases; give one explicitly")
