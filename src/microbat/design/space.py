"""The design space of an electrode study: descriptors, objectives, constraints, settings.

A design space is a TOML file (see ``microbat design --example`` and
``docs/design.md``) validated by :class:`DesignSpace`:

* ``[descriptors]`` — the generator descriptors that vary (a range with a
  distribution, or a list of choices) or stay fixed (``value``). The known
  descriptors and their units are listed in :data:`DESCRIPTORS`; every one not
  named keeps its default.
* ``objectives`` — names from :data:`microbat.design.objectives.OBJECTIVES`, each
  with its own direction (maximise energy, minimise stress, ...).
* ``[constraints]`` — manufacturing limits checked on every trial.
* ``[resolution]``, ``[evaluation]``, ``[study]`` — how a trial is generated and
  evaluated, and how the optimiser runs.

Unknown keys, unknown descriptors or objectives, empty or inverted ranges and
constraints that no design of the space can meet are refused with one line
(:class:`~microbat.core.errors.InvalidInputError`), before any trial runs.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from microbat.core.errors import FileFormatError, InvalidInputError

__all__ = [
    "COMPOSITE_DEFAULTS",
    "DEFAULT_PERCOLATION",
    "DESCRIPTORS",
    "ConstraintSettings",
    "DescriptorInfo",
    "DescriptorSpec",
    "DesignSpace",
    "EvaluationSettings",
    "Resolution",
    "StudySettings",
    "design_reference",
    "example_space",
    "load_space",
]


@dataclass(frozen=True)
class DescriptorInfo:
    """What a generator descriptor means.

    Attributes
    ----------
    name : str
        Key in ``[descriptors]``.
    unit : str
        SI unit (``""`` for a fraction or a ratio, ``"choice"`` for a categorical).
    default : float or str
        Value used when the descriptor is not named.
    bounds : (float, float) or None
        Physically meaningful interval a range must stay inside.
    choices : tuple of str or None
        Allowed values of a categorical descriptor.
    description : str
        One line.
    generators : tuple of str
        The generators (``electrode``, ``composite``) the descriptor applies to.
    """

    name: str
    unit: str
    default: float | str
    bounds: tuple[float, float] | None
    choices: tuple[str, ...] | None
    description: str
    generators: tuple[str, ...] = ("electrode",)


#: The generator descriptors: the liquid-electrolyte electrode (``generator =
#: "electrode"``: :func:`microbat.synth.packing` + :func:`microbat.transport.calendering.calender`
#: + :func:`microbat.synth.add_carbon_binder`; fractions of the final, calendered
#: electrode) and the solid-state composite cathode (``generator = "composite"``:
#: :func:`microbat.synth.composite_cathode`; ``cbd_fraction`` is its binder, the rest
#: of the volume its voids).
DESCRIPTORS: dict[str, DescriptorInfo] = {
    d.name: d
    for d in (
        DescriptorInfo(
            "porosity",
            "",
            0.35,
            (0.1, 0.8),
            None,
            "Pore (electrolyte) volume fraction of the calendered electrode; the active "
            "fraction is 1 − porosity − cbd_fraction (name porosity or active_fraction, "
            "not both)",
        ),
        DescriptorInfo(
            "active_fraction",
            "",
            0.55,
            (0.1, 0.85),
            None,
            "Active-material volume fraction of the calendered electrode (alternative to porosity)",
            ("electrode", "composite"),
        ),
        DescriptorInfo(
            "cbd_fraction",
            "",
            0.08,
            (0.0, 0.3),
            None,
            "Carbon-binder volume fraction of the calendered electrode",
            ("electrode", "composite"),
        ),
        DescriptorInfo(
            "cbd_model",
            "choice",
            "neck",
            None,
            ("neck", "film"),
            "Carbon-binder placement in the calendered pore space: bridges at the necks "
            "and contacts, or an even film on the particles (add_carbon_binder)",
        ),
        DescriptorInfo(
            "mean_radius",
            "m",
            3e-6,
            (0.5e-6, 20e-6),
            None,
            "Number-mean particle radius (log-normal size distribution)",
            ("electrode", "composite"),
        ),
        DescriptorInfo(
            "radius_cv",
            "",
            0.3,
            (0.0, 1.0),
            None,
            "Coefficient of variation of the particle radius",
            ("electrode", "composite"),
        ),
        DescriptorInfo(
            "aspect_ratio",
            "",
            1.0,
            (0.25, 4.0),
            None,
            "Spheroid aspect ratio of the particles (1: spheres, > 1 prolate, < 1 oblate)",
        ),
        DescriptorInfo(
            "orientation",
            "choice",
            "random",
            None,
            ("random", "through-plane", "in-plane"),
            "Direction of the spheroids' symmetry axes (with aspect_ratio ≠ 1)",
        ),
        DescriptorInfo(
            "thickness",
            "m",
            70e-6,
            (10e-6, 400e-6),
            None,
            "Electrode (coating) thickness after calendering, used by the cell model; the "
            "generated volume is a representative sample of it",
            ("electrode", "composite"),
        ),
        DescriptorInfo(
            "calendering",
            "",
            0.0,
            (0.0, 0.6),
            None,
            "Calendering strain: relative thickness reduction of the coating (particles "
            "move and flatten, calender())",
        ),
        DescriptorInfo(
            "se_fraction",
            "",
            0.35,
            (0.1, 0.7),
            None,
            "Solid-electrolyte volume fraction of a composite cathode (generator "
            "composite; composite_cathode)",
            ("composite",),
        ),
        DescriptorInfo(
            "se_radius",
            "m",
            1e-6,
            (0.2e-6, 10e-6),
            None,
            "Mean radius of the solid-electrolyte particles (generator composite)",
            ("composite",),
        ),
    )
}

_DISTRIBUTIONS = ("uniform", "log_uniform", "categorical")

#: Defaults of the composite generator where they differ from the electrode's
#: (those of :func:`microbat.synth.composite_cathode`).
COMPOSITE_DEFAULTS: dict[str, float] = {
    "active_fraction": 0.5,
    "cbd_fraction": 0.0,
    "mean_radius": 2.5e-6,
    "radius_cv": 0.2,
}

#: Percolation constraints of each generator when ``constraints.percolation`` is not given.
DEFAULT_PERCOLATION = {
    "electrode": ("electrolyte", "solid"),
    "composite": ("solid_electrolyte", "active"),
}


class DescriptorSpec(BaseModel):
    """One entry of ``[descriptors]``: a range, a list of choices, or a fixed value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: float | None = Field(None, description="Lower end of the range (SI unit)")
    high: float | None = Field(None, description="Upper end of the range (SI unit)")
    distribution: Literal["uniform", "log_uniform", "categorical"] | None = Field(
        None,
        description="Prior of the sampler: uniform, log_uniform (ranges) or categorical "
        "(choices); default uniform for a range",
    )
    step: float | None = Field(None, description="Grid step of a uniform range (optional)")
    choices: tuple[str, ...] | None = Field(None, description="Values of a categorical")
    value: float | str | None = Field(None, description="A fixed value (not searched)")

    @property
    def fixed(self) -> bool:
        """True when the descriptor is held at :attr:`value`."""
        return self.value is not None

    @property
    def kind(self) -> str:
        """``"fixed"``, ``"categorical"`` or the distribution of the range."""
        if self.fixed:
            return "fixed"
        if self.choices is not None:
            return "categorical"
        return self.distribution or "uniform"


def _check_descriptor(name: str, spec: DescriptorSpec) -> None:
    info = DESCRIPTORS[name]
    where = f"descriptors.{name}"
    if spec.fixed:
        if spec.low is not None or spec.high is not None or spec.choices is not None:
            raise InvalidInputError(f"{where}: give either value or a range/choices, not both")
        if info.choices is not None:
            if spec.value not in info.choices:
                raise InvalidInputError(
                    f"{where}: {spec.value!r} is not one of {', '.join(info.choices)}"
                )
            return
        if not isinstance(spec.value, int | float) or not math.isfinite(float(spec.value)):
            raise InvalidInputError(f"{where}: value must be a finite number, got {spec.value!r}")
        lo, hi = info.bounds or (-math.inf, math.inf)
        if not lo <= float(spec.value) <= hi:
            raise InvalidInputError(
                f"{where}: value {spec.value:g} lies outside [{lo:g}, {hi:g}] {info.unit}".rstrip()
            )
        return
    if info.choices is not None:
        if spec.choices is None or spec.low is not None or spec.high is not None:
            raise InvalidInputError(
                f"{where} is categorical: give choices = [...] from {', '.join(info.choices)} "
                "(or value = ...)"
            )
        if not spec.choices:
            raise InvalidInputError(f"{where}: choices is empty")
        bad = [c for c in spec.choices if c not in info.choices]
        if bad:
            raise InvalidInputError(
                f"{where}: unknown choice(s) {', '.join(map(repr, bad))}; allowed: "
                f"{', '.join(info.choices)}"
            )
        if spec.distribution not in (None, "categorical"):
            raise InvalidInputError(f"{where}: choices take distribution = 'categorical'")
        return
    if spec.choices is not None or spec.distribution == "categorical":
        raise InvalidInputError(f"{where} is numeric: give low and high (or value), not choices")
    if spec.low is None or spec.high is None:
        raise InvalidInputError(f"{where}: give both low and high (or value = ...)")
    lo, hi = float(spec.low), float(spec.high)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise InvalidInputError(f"{where}: low and high must be finite numbers")
    if not lo < hi:
        raise InvalidInputError(
            f"{where}: the range [{lo:g}, {hi:g}] is "
            + ("empty" if lo == hi else "inverted")
            + "; low must be below high (or give value = ... to hold it fixed)"
        )
    blo, bhi = info.bounds or (-math.inf, math.inf)
    if lo < blo or hi > bhi:
        hint = (
            " (lengths are in metres: 3 µm is 3e-6)"
            if info.unit == "m"
            else " (fractions, not percentages)"
            if info.unit == ""
            else ""
        )
        raise InvalidInputError(
            f"{where}: the range [{lo:g}, {hi:g}] leaves the meaningful interval "
            f"[{blo:g}, {bhi:g}] {info.unit}".rstrip()
            + hint
        )
    if spec.distribution == "log_uniform" and lo <= 0:
        raise InvalidInputError(f"{where}: a log_uniform range needs low > 0, got {lo:g}")
    if spec.step is not None:
        if spec.distribution == "log_uniform":
            raise InvalidInputError(f"{where}: step applies to uniform ranges only")
        if not (spec.step > 0 and spec.step <= hi - lo):
            raise InvalidInputError(f"{where}: step must lie in (0, high − low], got {spec.step}")


def _field(default: Any, description: str, unit: str = "") -> Any:
    extra = {"unit": unit} if unit else None
    return Field(default, description=description, json_schema_extra=extra)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class Resolution(_Section):
    """``[resolution]``: the voxel grid every trial is generated on."""

    shape: tuple[int, int, int] = _field(
        (64, 64, 64), "Voxels of the calendered sample (thickness axis first)", "voxel"
    )
    voxel_size: float = _field(0.5e-6, "Voxel edge", "m")

    @field_validator("shape")
    @classmethod
    def _shape(cls, v: tuple[int, int, int]) -> tuple[int, int, int]:
        if any(int(n) < 8 for n in v):
            raise ValueError(f"every axis needs at least 8 voxels, got {list(v)}")
        if math.prod(v) > 512**3:
            raise ValueError(f"{list(v)} is more than 512³ voxels per trial")
        return v

    @field_validator("voxel_size")
    @classmethod
    def _voxel(cls, v: float) -> float:
        if not 1e-8 <= v <= 1e-4:
            raise ValueError(
                f"voxel_size {v:g} m is outside [1e-8, 1e-4] m (metres: 0.5 µm is 5e-7)"
            )
        return v


class EvaluationSettings(_Section):
    """``[evaluation]``: the model a trial is evaluated with."""

    fidelity: Literal["bruggeman", "micro", "resolved"] = _field(
        "micro",
        "bruggeman: P2D (PyBaMM DFN) with Bruggeman transport; micro: P2D with the "
        "measured tortuosity factors, surface area and particle radius; resolved: 3D "
        "resolved half-cell on the voxels (slow; for final candidates)",
    )
    cell: str = _field("chen2020", "Cell parameter set (name or BPX file) of the P2D model")
    low_c_rate: float = _field(0.1, "Discharge rate of the energy objectives", "1/h")
    high_c_rate: float = _field(2.0, "Discharge rate of the power objectives", "1/h")
    charge_c_rate: float = _field(1.0, "Charge rate of the particle-stress objectives", "1/h")
    balance_negative: bool = _field(
        True,
        "Scale the negative electrode's thickness and the nominal capacity with the "
        "positive electrode's capacity, keeping the set's N/P ratio and C-rate meaning",
    )
    active_density: float = _field(
        4780.0, "Density of the active material (NMC811 from its lattice)", "kg/m³"
    )
    cbd_density: float = _field(1900.0, "Density of the carbon-binder domain", "kg/m³")
    electrolyte_density: float = _field(1200.0, "Density of the liquid electrolyte", "kg/m³")
    confirm_fidelity: Literal["none", "bruggeman", "micro", "resolved"] = _field(
        "none",
        "Multi-fidelity: re-evaluate the best designs of the study with this model after "
        "the search (none: off)",
    )
    confirm_top: int = _field(3, "How many designs the confirmation re-evaluates")
    resolved_max_steps: int = _field(400, "Step limit of each resolved discharge")

    @field_validator("low_c_rate", "high_c_rate", "charge_c_rate")
    @classmethod
    def _rate(cls, v: float) -> float:
        if not (math.isfinite(v) and 0 < v <= 100):
            raise ValueError(f"C-rates lie in (0, 100], got {v!r}")
        return v

    @field_validator("active_density", "cbd_density", "electrolyte_density")
    @classmethod
    def _density(cls, v: float) -> float:
        if not 100 <= v <= 20000:
            raise ValueError(f"densities are in kg/m³ (100..20000), got {v!r}")
        return v

    @field_validator("confirm_top", "resolved_max_steps")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"must be at least 1, got {v}")
        return v


class ConstraintSettings(_Section):
    """``[constraints]``: manufacturing limits every trial is checked against."""

    porosity_min: float | None = _field(None, "Smallest porosity that can be coated (measured)")
    porosity_max: float | None = _field(None, "Largest porosity that holds together (measured)")
    cbd_min: float | None = _field(
        None, "Smallest carbon-binder fraction (electronic percolation, adhesion)"
    )
    thickness_max: float | None = _field(None, "Thickest coating that can be dried", "m")
    calendering_max: float | None = _field(None, "Largest calendering strain")
    percolation: tuple[str, ...] | None = _field(
        None,
        "Phases (names, roles or 'solid') that must connect the current collector to the "
        "separator; none: electrolyte and solid (electrode), solid_electrolyte and active "
        "(composite)",
    )

    @field_validator("porosity_min", "porosity_max", "cbd_min", "calendering_max")
    @classmethod
    def _fraction(cls, v: float | None) -> float | None:
        if v is not None and not 0 <= v <= 1:
            raise ValueError(f"a fraction in [0, 1] (not a percentage), got {v!r}")
        return v

    @field_validator("thickness_max")
    @classmethod
    def _thick(cls, v: float | None) -> float | None:
        if v is not None and not 1e-6 <= v <= 1e-2:
            raise ValueError(f"a thickness in metres (100 µm is 1e-4), got {v!r}")
        return v


class StudySettings(_Section):
    """``[study]``: the optimiser."""

    sampler: Literal["auto", "nsga2", "tpe", "random"] = _field(
        "auto",
        "auto: NSGA-II with several objectives, TPE with one; all honour the constraints",
    )
    population_size: int = _field(20, "NSGA-II population per generation")
    startup_trials: int = _field(10, "TPE: random trials before the model-based search")
    retries: int = _field(1, "Times a trial lost with its worker is resubmitted")
    best: int = _field(5, "Best (Pareto) designs written as microstructures")

    @field_validator("population_size")
    @classmethod
    def _pop(cls, v: int) -> int:
        if v < 2:
            raise ValueError(f"population_size must be at least 2, got {v}")
        return v

    @field_validator("startup_trials", "retries", "best")
    @classmethod
    def _nonneg(cls, v: int) -> int:
        if v < 0:
            raise ValueError(f"must not be negative, got {v}")
        return v


class DesignSpace(BaseModel):
    """A validated design space (see the module notes and ``docs/design.md``).

    Attributes
    ----------
    name : str
        Study name (also the name inside the SQLite storage).
    seed : int
        Seed of the sampler and of every trial's microstructure.
    generator : {"electrode", "composite"}
        Liquid-electrolyte electrode or solid-state composite cathode.
    descriptors : dict of str to DescriptorSpec
        The named descriptors; the others keep their defaults.
    objectives : tuple of str
        Objective names (their directions are fixed, see ``directions``).
    resolution, evaluation, constraints, study : settings sections
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "design"
    seed: int = 0
    generator: Literal["electrode", "composite"] = "electrode"
    descriptors: dict[str, DescriptorSpec] = Field(default_factory=dict)
    objectives: tuple[str, ...] = ("energy_density", "power_retention")
    resolution: Resolution = Field(default_factory=Resolution)
    evaluation: EvaluationSettings = Field(default_factory=EvaluationSettings)
    constraints: ConstraintSettings = Field(default_factory=ConstraintSettings)
    study: StudySettings = Field(default_factory=StudySettings)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise InvalidInputError(_one_line(exc)) from None
        self._check()

    # ------------------------------------------------------------------
    def _check(self) -> None:
        from microbat.design.objectives import OBJECTIVES, check_objective

        unknown = [n for n in self.descriptors if n not in DESCRIPTORS]
        if unknown:
            raise InvalidInputError(
                f"unknown descriptor(s) {', '.join(map(repr, unknown))}; known: "
                f"{', '.join(DESCRIPTORS)}"
            )
        for name, spec in self.descriptors.items():
            _check_descriptor(name, spec)
            if self.generator not in DESCRIPTORS[name].generators:
                known = [k for k, d in DESCRIPTORS.items() if self.generator in d.generators]
                raise InvalidInputError(
                    f"descriptor {name} does not apply to the {self.generator} generator; "
                    f"its descriptors: {', '.join(known)}"
                )
        if "porosity" in self.descriptors and "active_fraction" in self.descriptors:
            raise InvalidInputError(
                "name porosity or active_fraction in [descriptors], not both (the other "
                "follows from 1 = porosity + active_fraction + cbd_fraction)"
            )
        if not self.objectives:
            raise InvalidInputError(f"give at least one objective from {', '.join(OBJECTIVES)}")
        if len(set(self.objectives)) != len(self.objectives):
            raise InvalidInputError(f"objectives are repeated: {list(self.objectives)}")
        for name in self.objectives:
            check_objective(name)
            if self.generator == "composite" and OBJECTIVES[name].needs in ("cell", "resolved"):
                raise InvalidInputError(
                    f"objective {name} needs a cell model, and microbat has none for a "
                    "solid-state composite cathode yet; use ionic_transport, "
                    "active_volume_fraction, peak_stress or cracked_fraction"
                )
            if OBJECTIVES[name].needs == "resolved" and self.evaluation.fidelity != "resolved":
                raise InvalidInputError(
                    f"objective {name} needs evaluation.fidelity = 'resolved' (the "
                    f"particles' state of charge on the voxels), not "
                    f"{self.evaluation.fidelity!r}"
                )
        if not self.searched:
            raise InvalidInputError(
                "no descriptor varies: give at least one range or list of choices in [descriptors]"
            )
        lo, hi = self.range_of("porosity")
        cbd_lo, cbd_hi = self.range_of("cbd_fraction")
        act_lo = 1.0 - hi - cbd_hi
        if self.generator == "composite":
            if hi < 0:
                raise InvalidInputError(
                    "active_fraction + se_fraction + cbd_fraction exceeds 1 everywhere in the "
                    "space; lower their ranges"
                )
        elif act_lo <= 0.05 and 1.0 - lo - cbd_lo <= 0.05:
            raise InvalidInputError(
                "porosity + cbd_fraction leaves less than 5 % active material everywhere in "
                "the space; lower the porosity or carbon-binder ranges"
            )
        self._check_constraints()

    def _check_constraints(self) -> None:
        """Refuse constraints that no design of the space can meet, naming the binding one."""
        c = self.constraints
        lo, hi = self.range_of("porosity")
        if c.porosity_min is not None and c.porosity_max is not None:
            if c.porosity_min > c.porosity_max:
                raise InvalidInputError(
                    f"no feasible design exists: constraints.porosity_min {c.porosity_min:g} "
                    f"is above constraints.porosity_max {c.porosity_max:g}"
                )
        if c.porosity_min is not None and c.porosity_min > hi + 0.02:
            raise InvalidInputError(
                f"no feasible design exists: the binding constraint is constraints.porosity_min "
                f"= {c.porosity_min:g}, above the largest porosity of the space ({hi:g})"
            )
        if c.porosity_max is not None and c.porosity_max < lo - 0.02:
            raise InvalidInputError(
                f"no feasible design exists: the binding constraint is constraints.porosity_max "
                f"= {c.porosity_max:g}, below the smallest porosity of the space ({lo:g})"
            )
        for key, desc, word in (
            ("cbd_min", "cbd_fraction", "above the largest"),
            ("thickness_max", "thickness", "below the smallest"),
            ("calendering_max", "calendering", "below the smallest"),
        ):
            limit = getattr(c, key)
            if limit is None:
                continue
            dlo, dhi = self.range_of(desc)
            bad = limit > dhi * (1 + 1e-12) if key == "cbd_min" else limit < dlo * (1 - 1e-12)
            if bad:
                edge = dhi if key == "cbd_min" else dlo
                raise InvalidInputError(
                    f"no feasible design exists: the binding constraint is constraints.{key} "
                    f"= {limit:g}, {word} {desc} of the space ({edge:g})"
                )

    # ------------------------------------------------------------------
    @property
    def searched(self) -> dict[str, DescriptorSpec]:
        """The descriptors the optimiser varies."""
        return {k: v for k, v in self.descriptors.items() if not v.fixed}

    @property
    def directions(self) -> dict[str, str]:
        """Objective name → ``"minimize"`` or ``"maximize"``."""
        from microbat.design.objectives import OBJECTIVES

        return {n: OBJECTIVES[n].direction for n in self.objectives}

    @property
    def percolation(self) -> tuple[str, ...]:
        """The phases that must percolate (the generator's default when not given)."""
        given = self.constraints.percolation
        return DEFAULT_PERCOLATION[self.generator] if given is None else tuple(given)

    def range_of(self, name: str) -> tuple[float, float]:
        """Smallest and largest value a numeric descriptor can take in this space.

        ``porosity`` is derived from ``active_fraction`` and ``cbd_fraction`` when
        the active fraction is the descriptor (and from ``se_fraction`` too, as the
        void fraction, for the composite generator).
        """
        if name == "porosity" and self.generator == "composite":
            alo, ahi = self.range_of("active_fraction")
            clo, chi = self.range_of("cbd_fraction")
            slo, shi = self.range_of("se_fraction")
            return 1.0 - ahi - chi - shi, 1.0 - alo - clo - slo
        if name == "porosity" and "active_fraction" in self.descriptors:
            alo, ahi = self.range_of("active_fraction")
            clo, chi = self.range_of("cbd_fraction")
            return 1.0 - ahi - chi, 1.0 - alo - clo
        spec = self.descriptors.get(name)
        if spec is None:
            v = float(self._default(name))
            return v, v
        if spec.fixed:
            return float(spec.value), float(spec.value)  # type: ignore[arg-type]
        return float(spec.low), float(spec.high)  # type: ignore[arg-type]

    def fixed_values(self) -> dict[str, float | str]:
        """Every descriptor's value where it is not searched (defaults and ``value``)."""
        out: dict[str, float | str] = {}
        for name, info in DESCRIPTORS.items():
            if self.generator not in info.generators:
                continue
            spec = self.descriptors.get(name)
            if spec is None:
                if self.generator == "composite":
                    out[name] = self._default(name)
                    continue
                if name == "active_fraction":
                    continue  # porosity is the default descriptor of the fractions
                if name == "porosity" and "active_fraction" in self.descriptors:
                    continue
                out[name] = info.default
            elif spec.fixed:
                out[name] = spec.value  # type: ignore[assignment]
        return out

    def _default(self, name: str) -> float | str:
        if self.generator == "composite" and name in COMPOSITE_DEFAULTS:
            return COMPOSITE_DEFAULTS[name]
        return DESCRIPTORS[name].default

    def complete(self, params: Mapping[str, Any]) -> dict[str, float | str]:
        """The searched ``params`` with every other descriptor's fixed value."""
        out = self.fixed_values()
        for k, v in params.items():
            if k not in DESCRIPTORS:
                raise InvalidInputError(
                    f"unknown descriptor {k!r}; known: {', '.join(DESCRIPTORS)}"
                )
            out[k] = v
        return out

    def with_changes(self, **changes: Any) -> DesignSpace:
        """A copy with top-level fields replaced (validated again)."""
        data = self.model_dump()
        data.update(changes)
        return DesignSpace(**data)


def _one_line(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "design space"
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        parts.append(f"{loc}: {msg}")
    return "invalid design space: " + "; ".join(parts)


def load_space(source: str | Path | Mapping[str, Any]) -> DesignSpace:
    """Read and validate a design space.

    Parameters
    ----------
    source : path, TOML text or mapping
        A ``.toml`` file, the TOML text itself, or the parsed mapping.

    Returns
    -------
    DesignSpace

    Raises
    ------
    FileFormatError
        The file cannot be read or is not TOML.
    InvalidInputError
        Anything the space refuses (see the module notes).
    """
    if isinstance(source, Mapping):
        return DesignSpace(**dict(source))
    text: str
    where = "design space"
    if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source):
        path = Path(source)
        where = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FileFormatError(
                f"{path}: no such design-space file (microbat design --example > space.toml "
                "writes one)"
            ) from None
        except OSError as exc:
            raise FileFormatError(f"{path}: cannot read ({exc.strerror})") from None
    else:
        text = str(source)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FileFormatError(f"{where}: not valid TOML ({exc})") from None
    return DesignSpace(**data)


def example_space() -> str:
    """The documented example design space (TOML) printed by ``microbat design --example``."""
    return _EXAMPLE


_EXAMPLE = """\
# microbat design space: an NMC811 cathode, energy against power.
# Run it with:  microbat design space.toml --trials 40 --out study
# Every key is documented in docs/design.md; lengths are in metres.

name = "nmc811-energy-power"   # study name (kept in DIR/study.db)
seed = 0                       # sampler and microstructure seed

# What to optimise; each objective has its own direction
# (energy_density, specific_energy, power_retention, high_rate_energy_density:
#  maximised; peak_stress, cracked_fraction, active_cost and, with the resolved
#  fidelity, heterogeneity_index: minimised).
objectives = ["energy_density", "power_retention"]

[descriptors]   # ranges (uniform or log_uniform), choices, or a fixed value
porosity      = { low = 0.25, high = 0.45 }
cbd_fraction  = { low = 0.04, high = 0.12 }
mean_radius   = { low = 1.5e-6, high = 4.5e-6, distribution = "log_uniform" }
thickness     = { low = 40e-6, high = 120e-6 }
calendering   = { low = 0.0, high = 0.3 }
cbd_model     = { choices = ["neck", "film"] }   # carbon-binder placement

[resolution]    # each trial generates a calendered sample of this many voxels
shape = [48, 48, 48]
voxel_size = 0.5e-6

[evaluation]
fidelity = "micro"        # bruggeman | micro (measured tortuosity) | resolved
cell = "chen2020"         # parameter set of the P2D model (the rest of the cell)
low_c_rate = 0.1          # energy objectives
high_c_rate = 2.0         # power objectives
charge_c_rate = 1.0       # stress objectives

[constraints]   # manufacturing limits; infeasible trials are reported, not dropped
porosity_min = 0.22
porosity_max = 0.48
cbd_min = 0.03
thickness_max = 150e-6
calendering_max = 0.35
percolation = ["electrolyte", "solid"]

[study]
sampler = "auto"          # NSGA-II for several objectives, TPE for one
population_size = 12
best = 3                  # Pareto designs written as microstructures
"""


def design_reference() -> str:
    """Markdown tables of the design-space file: top-level keys, sections, descriptors."""
    lines = ["| key | type | default | unit | description |", "|---|---|---|---|---|"]
    lines.append('| `name` | str | `"design"` |  | Study name (the name inside `study.db`) |')
    lines.append(
        "| `seed` | int | `0` |  | Seed of the sampler and of every trial's microstructure |"
    )
    lines.append(
        '| `generator` | str | `"electrode"` |  | `electrode` (liquid electrolyte: packing, '
        "calendering, carbon-binder) or `composite` (solid-state composite cathode) |"
    )
    lines.append(
        '| `objectives` | list of str | `["energy_density", "power_retention"]` |  | '
        "Objective names (see the objectives table) |"
    )
    for sname, model in (
        ("resolution", Resolution),
        ("evaluation", EvaluationSettings),
        ("constraints", ConstraintSettings),
        ("study", StudySettings),
    ):
        for key, f in model.model_fields.items():
            extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
            unit = str(extra.get("unit", "")) if extra else ""
            lines.append(
                f"| `{sname}.{key}` | {_type_name(f.annotation)} | `{_toml(f.default)}` | "
                f"{unit} | {f.description or ''} |"
            )
    lines += ["", "| descriptor | generators | unit | default | allowed | description |"]
    lines.append("|---|---|---|---|---|---|")
    for d in DESCRIPTORS.values():
        allowed = (
            ", ".join(d.choices)
            if d.choices
            else f"[{d.bounds[0]:g}, {d.bounds[1]:g}]"
            if d.bounds
            else ""
        )
        default = _toml(d.default)
        if d.name in COMPOSITE_DEFAULTS:
            default += f"` (composite `{_toml(COMPOSITE_DEFAULTS[d.name])}`)"
        else:
            default += "`"
        lines.append(
            f"| `{d.name}` | {', '.join(d.generators)} | {d.unit} | `{default} | {allowed} "
            f"| {d.description} |"
        )
    return "\n".join(lines)


def _toml(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, tuple | list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _type_name(ann: Any) -> str:
    text = str(ann).replace("typing.", "")
    if isinstance(ann, type):
        return ann.__name__
    for a, b in (("NoneType", "none"), ("tuple[str, ...]", "list of str"), (" | ", " or ")):
        text = text.replace(a, b)
    return text
