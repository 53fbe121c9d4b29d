"""Typed, validated parameters of a lithium-ion cell for the homogenised P2D model.

A :class:`CellParameters` holds the scalar quantities microbat reads or changes
(thicknesses, porosities, volume fractions, particle radii, effective-transport
coefficients, conductivities, cut-off voltages, temperature) as typed fields with
their SI unit in the name, and keeps the functional relations of the published set
(open-circuit potentials, diffusivities, electrolyte conductivity, exchange-current
densities) untouched. Every change made after loading is recorded as a
:class:`ParameterOverride` (old value, new value, where it came from).

Named sets come from PyBaMM (``"chen2020"``, ``"marquis2019"``, or any PyBaMM set
name); BPX files are read and written through :mod:`microbat.cell.bpx`.

Effective transport
-------------------
PyBaMM writes the effective electrolyte diffusivity and conductivity of a porous
electrode as ``ε^b · D`` (Bruggeman exponent ``b``, "Bruggeman coefficient
(electrolyte)") and the effective solid conductivity as ``(1 − ε)^b_s · σ``. A
tortuosity factor τ (the TauFactor convention, ``D_eff = ε D / τ``) is therefore
represented exactly by ``b = 1 − ln τ / ln ε`` (see :func:`bruggeman_from_tau`).

References
----------
.. [1] C.-H. Chen, F. Brosa Planella, K. O'Regan, D. Gastol, W. D. Widanage and
   E. Kendrick, "Development of experimental techniques for parameterization of
   multi-scale lithium-ion battery models", J. Electrochem. Soc. 167, 080534 (2020).
.. [2] S. G. Marquis, V. Sulzer, R. Timms, C. P. Please and S. J. Chapman, "An
   asymptotic derivation of a single particle model with electrolyte",
   J. Electrochem. Soc. 166, A3693 (2019).
.. [3] D. A. G. Bruggeman, Ann. Phys. 416, 636-664 (1935).
.. [4] S. J. Cooper, A. Bertei, P. R. Shearing, J. A. Kilner and N. P. Brandon,
   "TauFactor: an open-source application for calculating tortuosity factors from
   tomographic data", SoftwareX 5, 203-210 (2016).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from microbat.core.constants import FARADAY
from microbat.core.errors import InvalidInputError
from microbat.core.results import to_jsonable

__all__ = [
    "PARAMETER_SETS",
    "CellLevelParameters",
    "CellParameters",
    "ElectrodeParameters",
    "ElectrolyteParameters",
    "LithiumMetalParameters",
    "ParameterOverride",
    "SeparatorParameters",
    "bruggeman_from_tau",
    "load_parameters",
]

ElectrodeName = Literal["negative", "positive"]

#: Named parameter sets: microbat name -> (PyBaMM name, citation).
PARAMETER_SETS: dict[str, tuple[str, str]] = {
    "chen2020": (
        "Chen2020",
        "C.-H. Chen et al., J. Electrochem. Soc. 167, 080534 (2020), LG M50 21700 cell",
    ),
    "marquis2019": (
        "Marquis2019",
        "S. G. Marquis et al., J. Electrochem. Soc. 166, A3693 (2019), Kokam SLPB 75106100",
    ),
}


def _check(name: str, value: float, lo: float, hi: float, unit: str, hint: str = "") -> float:
    value = float(value)
    if not math.isfinite(value) or not (lo <= value <= hi):
        u = f" {unit}" if unit else ""
        raise ValueError(
            f"{name} = {value:g}{u} is outside the plausible range {lo:g}..{hi:g}{u}{hint}"
        )
    return value


_LENGTH_HINT = "; lengths are in metres (75 µm is 7.5e-5): were micrometres given as metres?"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise InvalidInputError(
                _validation_message(type(self).__name__, exc, type(self).model_fields)
            ) from None

    @classmethod
    def build(cls, **values: Any) -> Any:
        """Validate ``values`` and raise :class:`InvalidInputError` on a bad one."""
        return cls(**values)


def _validation_message(
    where: str, exc: ValidationError, fields: Mapping[str, Any] | None = None
) -> str:
    parts = []
    for err in exc.errors():
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        loc = ".".join(str(p) for p in err.get("loc", ()))
        if err.get("type") == "extra_forbidden" and fields:
            msg = f"unknown field; the fields are {', '.join(fields)}"
        parts.append(f"{loc}: {msg}" if loc and loc not in msg else msg)
    return f"{where}: " + "; ".join(parts)


class ElectrodeParameters(_Frozen):
    """Scalar parameters of one porous electrode (SI units).

    Attributes
    ----------
    thickness_m : float
        Electrode thickness (1 µm .. 2 mm).
    porosity : float
        Electrolyte volume fraction ε (0 < ε < 1).
    active_fraction : float
        Active-material volume fraction (ε + active ≤ 1; the rest is carbon-binder).
    particle_radius_m : float
        Particle radius R (10 nm .. 100 µm); the reaction area is ``3 active / R``.
    particle_radius_std_m : float or None
        Standard deviation of the area-weighted lognormal radius distribution; when
        given, PyBaMM's particle-size distribution option is used.
    bruggeman_electrolyte : float
        Exponent b of the electrolyte transport efficiency ``ε^b``.
    bruggeman_electrode : float
        Exponent b_s of the solid transport efficiency ``(1 − ε)^b_s`` (0 when
        ``conductivity_S_per_m`` is already an effective value, as in Chen2020 and BPX).
    conductivity_S_per_m : float
        Electronic conductivity σ of the solid in S/m (bulk when ``b_s > 0``).
    max_concentration_mol_per_m3 : float
        Maximum lithium concentration in the active material.
    exchange_current_scale : float
        Factor on the exchange-current density; used to impose a measured specific
        surface area while keeping the particle radius (1 = as published).
    """

    thickness_m: float
    porosity: float
    active_fraction: float
    particle_radius_m: float
    particle_radius_std_m: float | None = None
    bruggeman_electrolyte: float
    bruggeman_electrode: float
    conductivity_S_per_m: float
    max_concentration_mol_per_m3: float
    exchange_current_scale: float = 1.0

    @field_validator("thickness_m")
    @classmethod
    def _thickness(cls, v: float) -> float:
        return _check("electrode thickness", v, 1e-6, 2e-3, "m", _LENGTH_HINT)

    @field_validator("porosity")
    @classmethod
    def _porosity(cls, v: float) -> float:
        return _check("porosity", v, 1e-3, 0.999, "", " (a volume fraction, not a percentage)")

    @field_validator("active_fraction")
    @classmethod
    def _active(cls, v: float) -> float:
        return _check("active-material volume fraction", v, 1e-3, 0.999, "")

    @field_validator("particle_radius_m")
    @classmethod
    def _radius(cls, v: float) -> float:
        return _check("particle radius", v, 1e-8, 1e-4, "m", _LENGTH_HINT)

    @field_validator("particle_radius_std_m")
    @classmethod
    def _radius_std(cls, v: float | None) -> float | None:
        if v is None:
            return None
        return _check("particle-radius standard deviation", v, 1e-10, 1e-4, "m", _LENGTH_HINT)

    @field_validator("bruggeman_electrolyte", "bruggeman_electrode")
    @classmethod
    def _bruggeman(cls, v: float) -> float:
        return _check("Bruggeman exponent", v, 0.0, 20.0, "")

    @field_validator("conductivity_S_per_m")
    @classmethod
    def _sigma(cls, v: float) -> float:
        return _check("solid conductivity", v, 1e-8, 1e8, "S/m")

    @field_validator("max_concentration_mol_per_m3")
    @classmethod
    def _cmax(cls, v: float) -> float:
        return _check("maximum concentration", v, 1e2, 1e6, "mol/m³")

    @field_validator("exchange_current_scale")
    @classmethod
    def _scale(cls, v: float) -> float:
        return _check("exchange-current scale", v, 1e-3, 1e3, "")

    @model_validator(mode="after")
    def _fractions(self) -> ElectrodeParameters:
        if self.porosity + self.active_fraction > 1.0 + 1e-9:
            raise ValueError(
                f"porosity {self.porosity:g} + active fraction {self.active_fraction:g} "
                "exceeds 1; the volume fractions of one electrode must sum to at most 1"
            )
        return self

    # ------------------------------------------------------------ derived
    @property
    def solid_fraction(self) -> float:
        """Solid volume fraction ``1 − ε`` (active material and carbon-binder)."""
        return 1.0 - self.porosity

    @property
    def surface_area_per_m(self) -> float:
        """Reaction area per electrode volume in m⁻¹ (``scale · 3 active / R``)."""
        return self.exchange_current_scale * 3.0 * self.active_fraction / self.particle_radius_m

    @property
    def transport_efficiency(self) -> float:
        """Electrolyte transport efficiency ``ε^b = ε / τ`` (inverse MacMullin number)."""
        return self.porosity**self.bruggeman_electrolyte

    @property
    def tau_electrolyte(self) -> float:
        """Electrolyte tortuosity factor implied by the Bruggeman exponent, ``ε^(1−b)``."""
        return self.porosity ** (1.0 - self.bruggeman_electrolyte)

    @property
    def effective_conductivity_S_per_m(self) -> float:
        """Effective solid conductivity ``(1 − ε)^b_s · σ`` in S/m."""
        return self.solid_fraction**self.bruggeman_electrode * self.conductivity_S_per_m

    def loading_C_per_m2(self) -> float:
        """Theoretical areal capacity ``active · L · c_max · F`` in C/m²."""
        return self.active_fraction * self.thickness_m * self.max_concentration_mol_per_m3 * FARADAY


class SeparatorParameters(_Frozen):
    """Scalar parameters of the separator (SI units)."""

    thickness_m: float
    porosity: float
    bruggeman_electrolyte: float

    @field_validator("thickness_m")
    @classmethod
    def _thickness(cls, v: float) -> float:
        return _check("separator thickness", v, 1e-7, 1e-3, "m", _LENGTH_HINT)

    @field_validator("porosity")
    @classmethod
    def _porosity(cls, v: float) -> float:
        return _check("separator porosity", v, 1e-3, 1.0, "")

    @field_validator("bruggeman_electrolyte")
    @classmethod
    def _b(cls, v: float) -> float:
        return _check("Bruggeman exponent", v, 0.0, 20.0, "")


class ElectrolyteParameters(_Frozen):
    """Scalar electrolyte parameters; conductivity and diffusivity stay functions.

    Attributes
    ----------
    initial_concentration_mol_per_m3 : float
        Initial (salt) concentration c_e0.
    transference_number : float or None
        Cation transference number t₊ (None: the set's function of c_e). A
        single-ion conductor (a solid electrolyte) has t₊ = 1.
    conductivity_S_per_m : float or None
        A constant ionic conductivity replacing the set's κ(c_e) (None: the set's
        function); a solid electrolyte's σ_SE, see :func:`microbat.cell.solid_state_parameters`.
    """

    initial_concentration_mol_per_m3: float
    transference_number: float | None = None
    conductivity_S_per_m: float | None = None

    @field_validator("initial_concentration_mol_per_m3")
    @classmethod
    def _c0(cls, v: float) -> float:
        return _check("initial electrolyte concentration", v, 1.0, 1e4, "mol/m³")

    @field_validator("transference_number")
    @classmethod
    def _t(cls, v: float | None) -> float | None:
        return None if v is None else _check("cation transference number", v, 0.0, 1.0, "")

    @field_validator("conductivity_S_per_m")
    @classmethod
    def _kappa(cls, v: float | None) -> float | None:
        return None if v is None else _check("ionic conductivity", v, 1e-9, 1e4, "S/m")


class LithiumMetalParameters(_Frozen):
    """A lithium-metal counter electrode (half cell): PyBaMM's ``"working electrode"``.

    Attributes
    ----------
    exchange_current_A_per_m2 : float
        Constant exchange-current density of the lithium | electrolyte interface
        (Butler–Volmer, symmetric); PyBaMM's "Exchange-current density for lithium
        metal electrode [A.m-2]".
    """

    exchange_current_A_per_m2: float

    @field_validator("exchange_current_A_per_m2")
    @classmethod
    def _j0(cls, v: float) -> float:
        return _check("lithium exchange-current density", v, 1e-6, 1e6, "A/m²")


class CellLevelParameters(_Frozen):
    """Cell-level parameters: capacity, voltage window, temperature, geometry."""

    nominal_capacity_Ah: float
    lower_cutoff_V: float
    upper_cutoff_V: float
    ambient_temperature_K: float
    initial_temperature_K: float
    electrode_height_m: float
    electrode_width_m: float
    electrodes_in_parallel: float = 1.0

    @field_validator("nominal_capacity_Ah")
    @classmethod
    def _q(cls, v: float) -> float:
        return _check("nominal capacity", v, 1e-9, 1e5, "A·h")

    @field_validator("lower_cutoff_V", "upper_cutoff_V")
    @classmethod
    def _v(cls, v: float) -> float:
        return _check("cut-off voltage", v, 0.0, 6.0, "V")

    @field_validator("ambient_temperature_K", "initial_temperature_K")
    @classmethod
    def _temp(cls, v: float) -> float:
        return _check("temperature", v, 200.0, 400.0, "K", " (kelvin: 25 °C is 298.15 K)")

    @field_validator("electrode_height_m", "electrode_width_m")
    @classmethod
    def _len(cls, v: float) -> float:
        return _check("electrode height/width", v, 1e-4, 100.0, "m")

    @field_validator("electrodes_in_parallel")
    @classmethod
    def _n(cls, v: float) -> float:
        return _check("electrodes in parallel", v, 1.0, 1e4, "")

    @model_validator(mode="after")
    def _window(self) -> CellLevelParameters:
        if self.lower_cutoff_V >= self.upper_cutoff_V:
            raise ValueError(
                f"lower cut-off {self.lower_cutoff_V:g} V is not below the upper cut-off "
                f"{self.upper_cutoff_V:g} V"
            )
        return self

    @property
    def electrode_area_m2(self) -> float:
        """Total electrode (current-collector) area in m²."""
        return self.electrode_height_m * self.electrode_width_m * self.electrodes_in_parallel


@dataclass(frozen=True)
class ParameterOverride:
    """One change to a parameter after loading the published set.

    Attributes
    ----------
    parameter : str
        Dotted field name, e.g. ``"positive.bruggeman_electrolyte"``.
    old, new : float or None
        Value before and after.
    source : str
        Where the new value comes from (``"microstructure: tortuosity axis 0"``, ``"user"``).
    note : str
        Why or how it was derived.
    """

    parameter: str
    old: float | None
    new: float | None
    source: str
    note: str = ""


# PyBaMM keys of the typed fields ------------------------------------------------
def _electrode_keys(which: str) -> dict[str, str]:
    D = which.capitalize()
    return {
        "thickness_m": f"{D} electrode thickness [m]",
        "porosity": f"{D} electrode porosity",
        "active_fraction": f"{D} electrode active material volume fraction",
        "particle_radius_m": f"{D} particle radius [m]",
        "bruggeman_electrolyte": f"{D} electrode Bruggeman coefficient (electrolyte)",
        "bruggeman_electrode": f"{D} electrode Bruggeman coefficient (electrode)",
        "conductivity_S_per_m": f"{D} electrode conductivity [S.m-1]",
        "max_concentration_mol_per_m3": f"Maximum concentration in {which} electrode [mol.m-3]",
    }


_SEPARATOR_KEYS = {
    "thickness_m": "Separator thickness [m]",
    "porosity": "Separator porosity",
    "bruggeman_electrolyte": "Separator Bruggeman coefficient (electrolyte)",
}
_ELECTROLYTE_KEYS = {
    "initial_concentration_mol_per_m3": "Initial concentration in electrolyte [mol.m-3]",
    "transference_number": "Cation transference number",
    "conductivity_S_per_m": "Electrolyte conductivity [S.m-1]",
}
_CELL_KEYS = {
    "nominal_capacity_Ah": "Nominal cell capacity [A.h]",
    "lower_cutoff_V": "Lower voltage cut-off [V]",
    "upper_cutoff_V": "Upper voltage cut-off [V]",
    "ambient_temperature_K": "Ambient temperature [K]",
    "initial_temperature_K": "Initial temperature [K]",
    "electrode_height_m": "Electrode height [m]",
    "electrode_width_m": "Electrode width [m]",
    "electrodes_in_parallel": "Number of electrodes connected in parallel to make a cell",
}
_OPTIONAL = {
    ("electrolyte", "transference_number"),
    ("electrolyte", "conductivity_S_per_m"),
    ("cell", "electrodes_in_parallel"),
}
#: PyBaMM's lithium-metal keys of a half cell; the molar volume of lithium,
#: M/ρ = 6.94e-3 kg/mol / 534 kg/m³ = 1.30e-5 m³/mol (CRC Handbook of Chemistry and
#: Physics), the value microbat's resolved comparison also uses.
_LITHIUM_EXCHANGE_KEY = "Exchange-current density for lithium metal electrode [A.m-2]"
_LITHIUM_MOLAR_VOLUME = ("Lithium metal partial molar volume [m3.mol-1]", 1.3e-5)
_SECTIONS = ("negative", "positive", "separator", "electrolyte", "cell")
#: Fields a simulator built with geometry inputs takes per solve
#: (:class:`microbat.cell.bridge.CellSimulator` with ``geometry_inputs=True``).
GEOMETRY_FIELDS: dict[str, tuple[str, ...]] = {
    "negative": (
        "thickness_m",
        "porosity",
        "active_fraction",
        "particle_radius_m",
        "exchange_current_scale",
    ),
    "positive": (
        "thickness_m",
        "porosity",
        "active_fraction",
        "particle_radius_m",
        "exchange_current_scale",
    ),
    "separator": ("thickness_m", "porosity"),
    "cell": ("nominal_capacity_Ah",),
}


def _section_keys(section: str) -> dict[str, str]:
    if section in ("negative", "positive"):
        return _electrode_keys(section)
    return {"separator": _SEPARATOR_KEYS, "electrolyte": _ELECTROLYTE_KEYS, "cell": _CELL_KEYS}[
        section
    ]


def _section_type(section: str) -> type[_Frozen]:
    return {
        "negative": ElectrodeParameters,
        "positive": ElectrodeParameters,
        "separator": SeparatorParameters,
        "electrolyte": ElectrolyteParameters,
        "cell": CellLevelParameters,
    }[section]


def bruggeman_from_tau(porosity: float, tau: float) -> float:
    """Bruggeman exponent b with ``porosity**b == porosity / tau`` exactly.

    Parameters
    ----------
    porosity : float
        Volume fraction of the conducting phase (0 < ε < 1).
    tau : float
        Tortuosity factor of that phase (τ ≥ 1, TauFactor convention ``D_eff = ε D / τ``).

    Returns
    -------
    float
        ``1 − ln τ / ln ε``.

    Examples
    --------
    >>> round(bruggeman_from_tau(0.25, 2.0), 6)
    1.5
    """
    if not (0.0 < porosity < 1.0):
        raise InvalidInputError(f"porosity must lie strictly between 0 and 1, got {porosity!r}")
    if not math.isfinite(tau) or tau <= 0:
        raise InvalidInputError(f"tortuosity factor must be positive and finite, got {tau!r}")
    return 1.0 - math.log(tau) / math.log(porosity)


@dataclass(frozen=True)
class CellParameters:
    """Parameters of a lithium-ion cell for the P2D/DFN bridge.

    Build one with :meth:`from_name` (``"chen2020"``, ``"marquis2019"``),
    :meth:`from_bpx` or :meth:`from_pybamm`; change it with :meth:`with_values` (every
    change is recorded in :attr:`overrides`) or with microstructure-derived values
    through :func:`microbat.cell.apply_micro`.

    Attributes
    ----------
    name : str
        Name of the set (``"chen2020"``, a BPX title, ...).
    negative, positive : ElectrodeParameters
        The two porous electrodes.
    separator : SeparatorParameters
    electrolyte : ElectrolyteParameters
    cell : CellLevelParameters
    citation : str
        Reference of the published set.
    overrides : tuple of ParameterOverride
        Changes made after loading, in order.
    notes : tuple of str
        Remarks on how the parameters were derived (approximations, kept values).
    counter : LithiumMetalParameters or None
        A lithium-metal counter electrode in place of the negative electrode (a half
        cell of the positive electrode, PyBaMM's ``"working electrode": "positive"``);
        None for the full cell. Set with :meth:`as_half_cell`.
    """

    name: str
    negative: ElectrodeParameters
    positive: ElectrodeParameters
    separator: SeparatorParameters
    electrolyte: ElectrolyteParameters
    cell: CellLevelParameters
    citation: str = ""
    overrides: tuple[ParameterOverride, ...] = ()
    notes: tuple[str, ...] = ()
    counter: LithiumMetalParameters | None = None
    _store: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    # ------------------------------------------------------------ creation
    @classmethod
    def from_name(cls, name: str) -> CellParameters:
        """Load a published parameter set by name.

        Parameters
        ----------
        name : str
            ``"chen2020"`` (LG M50, [1]_), ``"marquis2019"`` (Kokam, [2]_), or the name of
            any other PyBaMM lithium-ion parameter set (case-insensitive).

        Returns
        -------
        CellParameters

        Raises
        ------
        InvalidInputError
            If no set of that name exists.
        """
        from microbat.cell._pybamm import import_pybamm

        key = str(name).strip().lower()
        if key in _LOADED:  # immutable, so one object per set: simulators are reused
            return _LOADED[key]
        if key in PARAMETER_SETS:
            pybamm_name, citation = PARAMETER_SETS[key]
        else:
            pybamm = import_pybamm()
            known = {n.lower(): n for n in pybamm.parameter_sets}
            if key not in known:
                raise InvalidInputError(
                    f"unknown parameter set {name!r}; use one of "
                    f"{', '.join(sorted(PARAMETER_SETS))} or a PyBaMM set name "
                    f"({', '.join(sorted(known.values()))}), or a BPX file (.json)"
                )
            pybamm_name, citation = known[key], f"PyBaMM parameter set {known[key]}"
        pybamm = import_pybamm()
        values = pybamm.ParameterValues(pybamm_name)
        _LOADED[key] = cls.from_pybamm(values, name=key, citation=citation)
        return _LOADED[key]

    @classmethod
    def from_pybamm(
        cls, values: Mapping[str, Any] | Any, *, name: str = "custom", citation: str = ""
    ) -> CellParameters:
        """Build from a PyBaMM ``ParameterValues`` (or a mapping of PyBaMM names).

        Parameters
        ----------
        values : pybamm.ParameterValues or mapping
            A complete lithium-ion parameter set.
        name, citation : str
            Label and reference recorded with the parameters.

        Raises
        ------
        InvalidInputError
            If a parameter microbat needs is missing, is not a number, or is outside
            its plausible range.
        """
        store = {k: v for k, v in values.items() if k != "citations"}
        sections: dict[str, Any] = {}
        for section in _SECTIONS:
            read: dict[str, Any] = {}
            for fname, key in _section_keys(section).items():
                if key not in store:
                    if (section, fname) in _OPTIONAL:
                        continue
                    raise InvalidInputError(
                        f"parameter set {name!r} has no {key!r}; add it (a number in SI "
                        "units) or start from a complete set such as 'chen2020'"
                    )
                v = store[key]
                if isinstance(v, bool) or not isinstance(v, int | float):
                    if (section, fname) in _OPTIONAL:
                        continue
                    raise InvalidInputError(
                        f"parameter set {name!r} gives {key!r} as {type(v).__name__}; "
                        "microbat needs a constant number here"
                    )
                read[fname] = float(v)
            sections[section] = _section_type(section).build(**read)
        return cls(name=name, citation=citation, _store=MappingProxyType(store), **sections)

    @classmethod
    def from_bpx(cls, source: Any) -> CellParameters:
        """Read a BPX parameter file (path, JSON text or dict); see :mod:`microbat.cell.bpx`."""
        from microbat.cell._bpx_io import read_bpx_values

        values, name, citation, notes = read_bpx_values(source)
        params = CellParameters.from_pybamm(values, name=name, citation=citation)
        if notes:
            params = params.with_values({}, source="bpx", notes=notes)
        return params

    def to_bpx(self, path: Any = None) -> dict[str, Any]:
        """Write the parameters as a BPX document; see :func:`microbat.cell.bpx.write_bpx`."""
        from microbat.cell._bpx_io import write_bpx

        return write_bpx(self, path)

    # ------------------------------------------------------------ access
    def electrode(self, which: str) -> ElectrodeParameters:
        """The ``"negative"`` or ``"positive"`` electrode parameters."""
        if which not in ("negative", "positive"):
            raise InvalidInputError(f"electrode must be 'negative' or 'positive', got {which!r}")
        return getattr(self, which)

    def get(self, path: str) -> Any:
        """Value of a dotted field name, e.g. ``params.get("positive.porosity")``."""
        section, _, fname = path.partition(".")
        if section not in _SECTIONS or not fname:
            raise InvalidInputError(
                f"unknown parameter {path!r}; write section.field with section one of "
                f"{', '.join(_SECTIONS)}"
            )
        obj = getattr(self, section)
        if fname not in type(obj).model_fields:
            raise InvalidInputError(
                f"unknown parameter {path!r}; {section} has {', '.join(type(obj).model_fields)}"
            )
        return getattr(obj, fname)

    @property
    def pybamm_store(self) -> Mapping[str, Any]:
        """The published set's full PyBaMM mapping (read-only; typed fields not applied)."""
        return self._store

    def theoretical_capacity_Ah(self, which: str) -> float:
        """Capacity of one electrode if fully (de)lithiated, in A·h."""
        return self.electrode(which).loading_C_per_m2() * self.cell.electrode_area_m2 / 3600.0

    # ------------------------------------------------------------ changes
    def with_values(
        self,
        changes: Mapping[str, Any],
        *,
        source: str = "user",
        note: str = "",
        notes: tuple[str, ...] = (),
    ) -> CellParameters:
        """A copy with some typed fields changed, each change recorded.

        Parameters
        ----------
        changes : mapping
            Dotted field name → new value (SI), e.g. ``{"positive.thickness_m": 6e-5}``.
        source : str
            Where the values come from (recorded in :attr:`overrides`).
        note : str
            Remark recorded with every change.
        notes : tuple of str
            Extra remarks appended to :attr:`notes`.

        Raises
        ------
        InvalidInputError
            Unknown field, or a new value outside its plausible range.
        """
        updates: dict[str, dict[str, Any]] = {}
        records = []
        for path, value in changes.items():
            old = self.get(path)
            section, _, fname = path.partition(".")
            updates.setdefault(section, {})[fname] = value
            records.append(
                ParameterOverride(
                    parameter=path,
                    old=None if old is None else float(old),
                    new=None if value is None else float(value),
                    source=source,
                    note=note,
                )
            )
        new_sections = {}
        for section, upd in updates.items():
            obj = getattr(self, section)
            new_sections[section] = type(obj).build(**{**obj.model_dump(), **upd})
        return dataclasses.replace(
            self,
            overrides=self.overrides + tuple(records),
            notes=self.notes + tuple(notes),
            **new_sections,
        )

    def as_half_cell(
        self, exchange_current_A_per_m2: float, *, source: str = "user", note: str = ""
    ) -> CellParameters:
        """A copy whose negative electrode is replaced by lithium metal (a half cell).

        The positive electrode is the working electrode; the negative section is
        kept but unused (PyBaMM's ``"working electrode": "positive"`` option models
        the lithium foil as an interface with Butler–Volmer kinetics).

        Parameters
        ----------
        exchange_current_A_per_m2 : float
            Exchange-current density of the lithium-metal interface.
        source, note : str
            Recorded in :attr:`overrides` (``counter.exchange_current_A_per_m2``).

        Returns
        -------
        CellParameters
        """
        counter = LithiumMetalParameters.build(exchange_current_A_per_m2=exchange_current_A_per_m2)
        old = None if self.counter is None else self.counter.exchange_current_A_per_m2
        record = ParameterOverride(
            parameter="counter.exchange_current_A_per_m2",
            old=old,
            new=counter.exchange_current_A_per_m2,
            source=source,
            note=note or "lithium-metal counter electrode (half cell)",
        )
        return dataclasses.replace(self, counter=counter, overrides=(*self.overrides, record))

    @property
    def half_cell(self) -> bool:
        """Whether the counter electrode is lithium metal (see :meth:`as_half_cell`)."""
        return self.counter is not None

    # ------------------------------------------------------------ export
    def to_pybamm(self) -> Any:
        """A fresh ``pybamm.ParameterValues`` with the typed fields applied."""
        from microbat.cell._pybamm import import_pybamm

        pybamm = import_pybamm()
        values = dict(self._store)
        for section in _SECTIONS:
            obj = getattr(self, section)
            for fname, key in _section_keys(section).items():
                v = getattr(obj, fname)
                if v is not None:
                    values[key] = v
        for which in ("negative", "positive"):
            el = self.electrode(which)
            if el.exchange_current_scale != 1.0:
                key = f"{which.capitalize()} electrode exchange-current density [A.m-2]"
                values[key] = _scaled(values[key], el.exchange_current_scale)
        if self.counter is not None:
            values[_LITHIUM_EXCHANGE_KEY] = self.counter.exchange_current_A_per_m2
            values.setdefault(*_LITHIUM_MOLAR_VOLUME)
        pv = pybamm.ParameterValues(values)
        if self.negative.particle_radius_std_m or self.positive.particle_radius_std_m:
            kw: dict[str, float] = {}
            if self.negative.particle_radius_std_m:
                kw["sd_n"] = self.negative.particle_radius_std_m / self.negative.particle_radius_m
            if self.positive.particle_radius_std_m:
                kw["sd_p"] = self.positive.particle_radius_std_m / self.positive.particle_radius_m
            pv = pybamm.get_size_distribution_parameters(pv, **kw)
        return pv

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary: typed sections, overrides and notes."""
        return to_jsonable(
            {
                "name": self.name,
                "citation": self.citation,
                **{s: getattr(self, s).model_dump() for s in _SECTIONS},
                "overrides": [dataclasses.asdict(o) for o in self.overrides],
                "notes": list(self.notes),
                **({} if self.counter is None else {"counter": self.counter.model_dump()}),
            }
        )

    def _engine_key(self, *, geometry: bool = True) -> tuple[Any, ...]:
        """Identity of everything except the effective-transport inputs (for caching).

        With ``geometry=False`` the fields a geometry-input simulator takes per solve
        (:data:`GEOMETRY_FIELDS`) are left out too.
        """
        out: list[Any] = [id(self._store)]
        for section in _SECTIONS:
            d = getattr(self, section).model_dump()
            if section in ("negative", "positive"):
                for k in ("bruggeman_electrolyte", "bruggeman_electrode", "conductivity_S_per_m"):
                    d.pop(k)
            if not geometry:
                for k in GEOMETRY_FIELDS.get(section, ()):
                    d.pop(k)
            out.append(tuple(sorted(d.items())))
        if self.counter is not None:
            out.append(("counter", self.counter.exchange_current_A_per_m2))
        return tuple(out)


_LOADED: dict[str, CellParameters] = {}


def _scaled(func: Any, scale: float) -> Callable[..., Any]:
    """Exchange-current function multiplied by ``scale`` (numbers stay numbers)."""
    if not callable(func):
        return func * scale

    def scaled(*args: Any) -> Any:
        return scale * func(*args)

    scaled.__name__ = f"{getattr(func, '__name__', 'j0')}_x{scale:.4g}"
    return scaled


def load_parameters(name_or_path: str | Any) -> CellParameters:
    """Load a named set (``"chen2020"``) or a BPX file (a path ending in ``.json``).

    Parameters
    ----------
    name_or_path : str or path-like
        Set name, or path of a BPX JSON file.

    Returns
    -------
    CellParameters
    """
    text = str(name_or_path)
    if text.lower().endswith(".json"):
        return CellParameters.from_bpx(name_or_path)
    return CellParameters.from_name(text)
