"""Microstructure-derived properties and how they enter the cell parameters.

:class:`MicroProperties` is the small, typed hand-over between the image stages
(transport, metrics) and the cell model: porosity, tortuosity factors, specific
surface area, particle radius (or a radius distribution), active fraction and
thickness of *one* electrode. A user can fill it by hand (skipping imaging) or
with :meth:`MicroProperties.from_microstructure`.

:func:`apply_micro` writes those values into :class:`~microbat.cell.CellParameters`,
recording each change. Two effective-transport models are offered:

``transport="micro"``
    Electrolyte: ``ε_eff = ε / τ_e`` exactly, through the Bruggeman exponent
    ``b = 1 − ln τ_e / ln ε`` that PyBaMM raises the porosity to. Solid: ``σ_eff =
    σ_bulk (1 − ε) / τ_s`` when a solid tortuosity factor is known and the bulk
    conductivity is known (either because the set's exponent is non-zero, meaning its
    conductivity is a bulk value, or because ``solid_conductivity_bulk_S_per_m`` is
    given); otherwise the published solid transport is kept and a note says so.
``transport="bruggeman"``
    The published Bruggeman exponents applied to the micro porosity (the usual
    assumption the micro-informed model is compared against). With a bulk solid
    conductivity given, the solid uses the classic exponent 1.5 unless the set has one.

Geometry (porosity, active fraction, thickness, particle radius, surface area) is
applied in both cases, so a comparison isolates the transport assumption.

Solid-state composite cathodes (``ion_conductor="solid_electrolyte"``): the ion
conductor is a solid electrolyte (SE), a single-ion conductor (t₊ = 1). PyBaMM's
DFN then has no salt gradient: the salt source ``(1 − t₊) a j / F`` cancels the
divergence of the migration flux ``t₊ i_e / F``, the separator's boundary flux
``(1 − t₊) i / F`` vanishes and so does the diffusion potential ``2 (1 − t₊) χ RT/F
∇ln c_e`` (checked in PyBaMM 26.10's ``electrolyte_diffusion/full_diffusion.py`` and
``LithiumIonParameters.chi``), leaving Ohm's law ``i_e = −σ_SE ε^b ∇φ_e`` in the SE
network. :func:`solid_state_parameters` sets ε = the SE volume fraction, ``ε^b =
ε / τ_SE`` (the SE network's tortuosity factor measured on the image), the reaction
area = the active | SE contact area per volume, a constant ``σ_SE``, a dense SE
separator (ε = 1, b = 0) and a lithium-metal counter electrode, as the resolved
composite model (:mod:`microbat.cell.resolved`) does. t₊ = 1 is the transference
number of a solid electrolyte whose anion sublattice is immobile (J. Maier, *Physical
Chemistry of Ionic Materials*, Wiley 2004); the reduction itself is read off
PyBaMM's equations above (no paper is cited for it: Danilov et al. 2011, cited for
it elsewhere before, model a binary electrolyte, see ``docs/ssb.md``, "Citations
checked").

Surface area and radius: PyBaMM's reaction area is ``a = 3 ε_act / R``. With only a
measured area, ``R = 3 ε_act / a`` (the Sauter-equivalent radius). With both a
measured radius and a measured area, the radius sets the diffusion length and the
exchange-current density is scaled by ``a_measured / (3 ε_act / R)``, which gives the
kinetic overpotential of the measured area while conserving lithium in the spheres.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from microbat.cell.parameters import (
    CellParameters,
    _check,
    _validation_message,
    bruggeman_from_tau,
)
from microbat.core.errors import (
    InvalidInputError,
    NotPercolatingError,
    PhaseError,
)

__all__ = [
    "CLASSIC_BRUGGEMAN",
    "SE_CUTOFF_STOICHIOMETRY",
    "MicroProperties",
    "apply_micro",
    "resolve_parameters",
    "single_ion_half_cell",
    "solid_state_parameters",
]

#: Bruggeman's exponent for spheres, b = 1.5 (Bruggeman 1935).
CLASSIC_BRUGGEMAN = 1.5

_LENGTH_HINT = "; lengths are in metres (5 µm is 5e-6): were micrometres given as metres?"

#: Stoichiometry of the positive electrode whose OCP is the default lower cut-off of
#: the half cell (the larger of it and the set's cut-off): near θ = 1 the exchange
#: current ∝ (1 − θ)^½ vanishes and a half cell ends only when the surface saturates,
#: a singular event; for Chen2020's NMC811 U(0.99) = 3.495 V, the 3.5 V of the
#: resolved-vs-P2D comparison (``cell.resolved.compare.DEFAULT_CUTOFF_V``).
SE_CUTOFF_STOICHIOMETRY = 0.99


class MicroProperties(BaseModel):
    """Effective properties of one electrode, measured on its microstructure.

    Attributes
    ----------
    electrode : {"positive", "negative"}
        Which electrode of the cell the microstructure is.
    porosity : float
        Electrolyte (pore) volume fraction ε.
    tau_electrolyte : float
        Tortuosity factor of the pore phase along the chosen direction (through-plane
        by default), TauFactor convention ``D_eff = ε D / τ`` (τ ≥ 1).
    tau_solid : float or None
        Tortuosity factor of the solid phase (active + carbon-binder) for electronic
        conduction, ``σ_eff = σ (1 − ε) / τ_s``.
    solid_conductivity_bulk_S_per_m : float or None
        Intrinsic conductivity of the solid; needed to apply ``tau_solid`` when the
        parameter set holds an effective conductivity (Bruggeman exponent 0).
    specific_surface_area_per_m : float or None
        Active/pore interface area per electrode volume, m⁻¹.
    particle_radius_m : float or None
        Particle radius, m; from an image, half the volume-weighted median local
        thickness (d50) of the active phase.
    particle_radius_std_m : float or None
        Standard deviation of the radius distribution, m (enables PyBaMM's
        particle-size distribution model).
    active_fraction : float or None
        Active-material volume fraction. When omitted but ``porosity`` changes, the
        published active share of the solid is kept.
    thickness_m : float or None
        Electrode thickness, m (``None`` keeps the published thickness: a CT volume
        is often a crop of the coating).
    axis : int or None
        Array axis the transport values were computed along (provenance only).
    source : dict
        Free provenance (file, functions, voxel size).
    ion_conductor : {"liquid", "solid_electrolyte"}
        The ion conductor. With ``"solid_electrolyte"`` (a composite cathode)
        ``porosity`` is the SE volume fraction, ``tau_electrolyte`` the SE network's
        tortuosity factor, ``specific_surface_area_per_m`` the active | SE contact
        area per volume, and :func:`apply_micro` builds the single-ion half cell
        (:func:`solid_state_parameters`).
    se_conductivity_S_per_m : float or None
        Bulk ionic conductivity of the solid electrolyte (None: the resolved model's
        default, ``ResolvedOptions.se_conductivity_S_per_m`` = 0.2 S/m, Li₆PS₅Cl).
    separator_thickness_m : float or None
        Thickness of the dense SE separator (None: the set's separator thickness).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    electrode: Literal["positive", "negative"] = "positive"
    porosity: float
    tau_electrolyte: float
    tau_solid: float | None = None
    solid_conductivity_bulk_S_per_m: float | None = None
    specific_surface_area_per_m: float | None = None
    particle_radius_m: float | None = None
    particle_radius_std_m: float | None = None
    active_fraction: float | None = None
    thickness_m: float | None = None
    axis: int | None = None
    source: dict[str, Any] = {}
    ion_conductor: Literal["liquid", "solid_electrolyte"] = "liquid"
    se_conductivity_S_per_m: float | None = None
    separator_thickness_m: float | None = None

    def __init__(self, **values: Any) -> None:
        tau_e = values.get("tau_electrolyte")
        if isinstance(tau_e, int | float) and not math.isfinite(float(tau_e)):
            what = (
                "solid-electrolyte network"
                if values.get("ion_conductor") == "solid_electrolyte"
                else "pore phase"
            )
            raise NotPercolatingError(
                f"the electrolyte tortuosity factor is {tau_e}: the {what} does not "
                "connect the current collector to the separator along this direction, so "
                "no ionic current can flow; choose another axis or check the segmentation"
            )
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise InvalidInputError(
                _validation_message("MicroProperties", exc, type(self).model_fields)
            ) from None

    @classmethod
    def build(cls, **values: Any) -> MicroProperties:
        """Validate and raise :class:`InvalidInputError` (or its subclasses) when wrong."""
        return cls(**values)

    @field_validator("porosity")
    @classmethod
    def _porosity(cls, v: float) -> float:
        return _check("porosity", v, 0.01, 0.98, "", " (a volume fraction, not a percentage)")

    @field_validator("tau_electrolyte", "tau_solid")
    @classmethod
    def _tau(cls, v: float | None) -> float | None:
        if v is None:
            return None
        if not math.isfinite(v):
            raise ValueError(
                f"tortuosity factor {v} is not finite: the phase does not percolate along "
                "this direction"
            )
        if v < 1.0 - 1e-6:
            raise ValueError(
                f"tortuosity factor {v:g} < 1 is unphysical (τ = ε D / D_eff ≥ 1); check "
                "the convention (τ, not τ² or ε/τ) and dead-end pores"
            )
        return _check("tortuosity factor", max(v, 1.0), 1.0, 1e4, "")

    @field_validator("solid_conductivity_bulk_S_per_m")
    @classmethod
    def _sigma(cls, v: float | None) -> float | None:
        return None if v is None else _check("bulk solid conductivity", v, 1e-8, 1e8, "S/m")

    @field_validator("specific_surface_area_per_m")
    @classmethod
    def _ssa(cls, v: float | None) -> float | None:
        if v is None:
            return None
        return _check(
            "specific surface area",
            v,
            1e3,
            1e8,
            "m⁻¹",
            " (per metre: 0.4 µm⁻¹ is 4e5 m⁻¹)",
        )

    @field_validator("particle_radius_m")
    @classmethod
    def _radius(cls, v: float | None) -> float | None:
        return None if v is None else _check("particle radius", v, 1e-8, 1e-4, "m", _LENGTH_HINT)

    @field_validator("particle_radius_std_m")
    @classmethod
    def _radius_std(cls, v: float | None) -> float | None:
        if v is None:
            return None
        return _check("particle-radius standard deviation", v, 1e-10, 1e-4, "m", _LENGTH_HINT)

    @field_validator("active_fraction")
    @classmethod
    def _active(cls, v: float | None) -> float | None:
        return None if v is None else _check("active fraction", v, 0.01, 0.99, "")

    @field_validator("thickness_m")
    @classmethod
    def _thickness(cls, v: float | None) -> float | None:
        return None if v is None else _check("thickness", v, 1e-6, 2e-3, "m", _LENGTH_HINT)

    @field_validator("se_conductivity_S_per_m")
    @classmethod
    def _se_sigma(cls, v: float | None) -> float | None:
        return None if v is None else _check("SE conductivity", v, 1e-9, 1e4, "S/m")

    @field_validator("separator_thickness_m")
    @classmethod
    def _sep(cls, v: float | None) -> float | None:
        return (
            None if v is None else _check("separator thickness", v, 1e-7, 1e-3, "m", _LENGTH_HINT)
        )

    @model_validator(mode="after")
    def _fractions(self) -> MicroProperties:
        if self.active_fraction is not None and self.porosity + self.active_fraction > 1 + 1e-9:
            raise ValueError(
                f"porosity {self.porosity:g} + active fraction {self.active_fraction:g} > 1"
            )
        solid = self.ion_conductor == "solid_electrolyte"
        if not solid and (
            self.se_conductivity_S_per_m is not None or self.separator_thickness_m is not None
        ):
            raise ValueError(
                "se_conductivity_S_per_m and separator_thickness_m describe a solid "
                "electrolyte: set ion_conductor='solid_electrolyte'"
            )
        if solid and self.electrode != "positive":
            raise ValueError(
                "a solid-state composite is modelled as the positive electrode of a half "
                "cell against lithium metal: use electrode='positive'"
            )
        return self

    # ------------------------------------------------------------------
    @property
    def transport_efficiency(self) -> float:
        """Electrolyte transport efficiency ``ε / τ_e``."""
        return self.porosity / self.tau_electrolyte

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (the solid-electrolyte fields only for a solid one)."""
        from microbat.core.results import to_jsonable

        skip = set() if self.ion_conductor == "solid_electrolyte" else set(_SE_FIELDS)
        return to_jsonable(self.model_dump(exclude=skip))

    @classmethod
    def from_microstructure(
        cls,
        ms: Any,
        *,
        electrode: Literal["positive", "negative"] = "positive",
        axis: int | None = None,
        solid_tortuosity: bool = True,
        size_spread: bool = False,
        tortuosity_method: Literal["diffusion", "random_walk"] = "diffusion",
        tortuosity_options: Mapping[str, Any] | None = None,
        seed: int | None = 0,
        thickness: float | Literal["image"] | None = None,
        electrolyte_phase: str = "electrolyte",
        active_phase: str = "active",
        solid_phases: str | None = None,
    ) -> MicroProperties:
        """Measure the properties on a :class:`~microbat.core.Microstructure`.

        Calls ``microbat.transport.tortuosity`` (the steady diffusion solve; or
        ``microbat.transport.random_walk`` with ``tortuosity_method="random_walk"``) on
        the pore phase, and on the solid phase when ``solid_tortuosity``, then
        ``microbat.imaging.metrics.specific_surface_area`` and
        ``microbat.imaging.metrics.size_distribution``. Both tortuosity methods use
        the convention ``D_eff / D = ε / τ``.

        Parameters
        ----------
        ms : Microstructure
            Labelled electrode image with an electrolyte (pore) phase.
        electrode : {"positive", "negative"}
            Which electrode of the cell the image is.
        axis : int, optional
            Direction of the tortuosity factor; default the through-plane
            ``ms.thickness_axis``.
        solid_tortuosity : bool, default True
            Also compute the solid-phase tortuosity factor.
        size_spread : bool, default False
            Also pass the spread of the active phase's local thickness as the radius
            standard deviation (turns on PyBaMM's particle-size distribution model,
            several times slower to build and solve).
        tortuosity_method : {"diffusion", "random_walk"}
            Steady diffusion solve (deterministic) or random walk (statistical).
        tortuosity_options : mapping, optional
            Extra keyword arguments of the tortuosity function (e.g. ``n_walkers``).
        seed : int or None, default 0
            Seed of the random walk (ignored by the diffusion solve).
        thickness : float, "image" or None
            Electrode thickness in metres; ``"image"`` uses the image extent along the
            thickness axis; ``None`` keeps the parameter set's thickness.
        electrolyte_phase, active_phase : str
            Phase names or roles of the pore and active phases.
        solid_phases : str, optional
            Phases conducting electrons (default: every non-electrolyte phase).

        Returns
        -------
        MicroProperties
            On a composite cathode (a ``solid_electrolyte`` phase and no liquid
            electrolyte) with ``ion_conductor="solid_electrolyte"``: porosity and τ of
            the SE network, the electronic network without the voids, and the area of
            the *active* active | SE contact (:func:`microbat.ssb.contact_area`).

        Raises
        ------
        PhaseError
            The microstructure has no electrolyte or no active phase.
        NotPercolatingError
            The pore phase does not connect the two faces along ``axis``.
        """
        has_se = bool(ms.phases_with_role("solid_electrolyte"))
        if has_se and electrolyte_phase == "electrolyte" and not ms.phases_with_role("electrolyte"):
            electrolyte_phase = "solid_electrolyte"  # a composite cathode: the SE conducts ions
        solid_state = has_se and all(
            p.role.value == "solid_electrolyte" for p in ms.phases.resolve(electrolyte_phase)
        )
        if not ms.phases_with_role("electrolyte") and electrolyte_phase == "electrolyte":
            raise PhaseError(
                "this microstructure has no electrolyte (pore) phase, so there is no ionic "
                f"path to model; its phases are {ms.phases.to_spec()}; mark the pore phase "
                "with the electrolyte role (e.g. --phases pore=0,cbd=1,active=2)"
            )
        ax = ms.thickness_axis if axis is None else int(axis)
        opts = dict(tortuosity_options or {})
        if tortuosity_method == "diffusion":
            from microbat.transport.diffusion import tortuosity as solve

            opts.setdefault("keep_field", False)  # only τ is needed here

            def tortuosity(ms: Any, *, phase: str, axis: int) -> Any:
                # a blocked direction gives τ = inf, refused below with
                # NotPercolatingError; the solver's warning would only repeat it
                with warnings.catch_warnings():
                    warnings.filterwarnings(
                        "ignore", message=".*(percolat|connect)", category=UserWarning
                    )
                    return solve(ms, phase=phase, axis=axis, **opts)
        elif tortuosity_method == "random_walk":
            from microbat.transport.randomwalk import random_walk as walk

            def tortuosity(ms: Any, *, phase: str, axis: int) -> Any:
                # the walk measures every axis; percolation along the chosen one is
                # checked below (τ = inf → NotPercolatingError), the others do not matter
                with warnings.catch_warnings():
                    warnings.filterwarnings(
                        "ignore", message=".*does not percolate along axis", category=UserWarning
                    )
                    return walk(ms, phase=phase, seed=seed, **opts)
        else:
            raise InvalidInputError(
                f"tortuosity_method must be 'diffusion' or 'random_walk', got {tortuosity_method!r}"
            )
        from microbat.imaging.metrics import size_distribution, specific_surface_area

        notes: dict[str, Any] = {}
        tau_res = tortuosity(ms, phase=electrolyte_phase, axis=ax)
        tau_e = _at_least_one(tau_res, ax, "tau_electrolyte", notes)
        porosity = float(getattr(tau_res, "porosity", ms.fraction(electrolyte_phase)))
        tau_s = None
        if solid_tortuosity:
            # a composite's voids (role gas) conduct nothing
            solid = solid_phases or ",".join(
                p.name
                for p in ms.phases.values()
                if p not in ms.phases.resolve(electrolyte_phase)
                and not (solid_state and p.role.value == "gas")
            )
            tau_s = _at_least_one(tortuosity(ms, phase=solid, axis=ax), ax, "tau_solid", notes)
        if solid_state:
            # the ionic gateway: active | SE contact whose two sides reach their faces
            from microbat.ssb.tpb import contact_area

            ssa = float(
                contact_area(ms, (active_phase, electrolyte_phase)).active_specific_area_per_m
            )
        else:
            ssa_res = specific_surface_area(ms, active_phase, electrolyte_phase)
            ssa = float(_scalar(ssa_res, "specific_surface_area"))
        sizes = size_distribution(ms, active_phase)
        d50 = float(_scalar(sizes, "d50"))
        std = getattr(sizes, "std", None) if size_spread else None
        if thickness == "image":
            th: float | None = float(ms.thickness)
        elif thickness is None:
            th = None
        else:
            th = float(thickness)
        return cls.build(
            electrode=electrode,
            porosity=porosity,
            tau_electrolyte=tau_e,
            tau_solid=tau_s,
            specific_surface_area_per_m=ssa,
            particle_radius_m=d50 / 2.0,
            particle_radius_std_m=None if std is None else float(std) / 2.0,
            active_fraction=float(ms.fraction(active_phase)),
            thickness_m=th,
            axis=ax,
            ion_conductor="solid_electrolyte" if solid_state else "liquid",
            source={
                "microstructure": {
                    "shape": list(ms.shape),
                    "voxel_size_m": list(ms.voxel_size),
                    "thickness_axis": ms.thickness_axis,
                    "phases": ms.phases.to_spec(),
                },
                "tortuosity_axis": ax,
                "tortuosity_method": tortuosity_method,
                **notes,
                "functions": [
                    "microbat.transport."
                    + ("tortuosity" if tortuosity_method == "diffusion" else "random_walk"),
                    "microbat.ssb.contact_area (active)"
                    if solid_state
                    else "microbat.imaging.metrics.specific_surface_area",
                    "microbat.imaging.metrics.size_distribution",
                ],
            },
        )


_SE_FIELDS = ("ion_conductor", "se_conductivity_S_per_m", "separator_thickness_m")


def _pick_axis(tau: Any, axis: int) -> float:
    if isinstance(tau, int | float):
        return float(tau)
    values = list(tau)
    return float(values[axis]) if len(values) > axis else float(values[0])


def _at_least_one(result: Any, axis: int, name: str, notes: dict[str, Any]) -> float:
    """τ along ``axis``; a statistical estimate below 1 whose 95 % CI reaches 1 is 1.

    A random-walk τ carries sampling noise: straight channels (τ = 1) can come out
    at 0.95. Such a value is set to 1 and the estimate recorded; a τ below 1 outside
    its confidence interval is passed on and refused by validation.
    """
    tau = _pick_axis(result.tau, axis)
    ci = getattr(result, "ci95", None)
    if math.isfinite(tau) and tau < 1.0 and ci is not None:
        lo, hi = ci[axis] if len(ci) > axis else ci[0]
        if hi >= 1.0:
            notes[f"{name}_estimate"] = {"tau": tau, "ci95": [lo, hi], "used": 1.0}
            return 1.0
    return tau


def _scalar(value: Any, attr: str) -> float:
    if isinstance(value, int | float):
        return float(value)
    for name in (attr, "value"):
        if hasattr(value, name):
            return float(getattr(value, name))
    raise InvalidInputError(f"cannot read {attr!r} from {type(value).__name__}")


def apply_micro(
    params: CellParameters,
    micro: MicroProperties,
    *,
    transport: Literal["micro", "bruggeman"] = "micro",
) -> CellParameters:
    """Cell parameters with one electrode replaced by microstructure-derived values.

    Parameters
    ----------
    params : CellParameters
        The published set to start from.
    micro : MicroProperties
        Properties of ``micro.electrode``.
    transport : {"micro", "bruggeman"}
        Effective-transport model (see the module notes).

    Returns
    -------
    CellParameters
        With every change recorded in ``overrides`` (source ``"microstructure"``).

    Examples
    --------
    >>> p = CellParameters.from_name("chen2020")  # doctest: +SKIP
    >>> m = MicroProperties(porosity=0.35, tau_electrolyte=3.5)  # doctest: +SKIP
    >>> round(apply_micro(p, m).positive.transport_efficiency, 6)  # doctest: +SKIP
    0.1
    """
    if transport not in ("micro", "bruggeman"):
        raise InvalidInputError(f"transport must be 'micro' or 'bruggeman', got {transport!r}")
    which = micro.electrode
    el = params.electrode(which)
    src = "microstructure"
    if micro.axis is not None:
        src += f" (axis {micro.axis})"
    geo: dict[str, Any] = {}
    notes: list[str] = []

    # --- geometry: porosity, active fraction, thickness --------------------------
    eps = micro.porosity
    geo[f"{which}.porosity"] = eps
    if micro.active_fraction is not None:
        act = micro.active_fraction
    else:
        act = el.active_fraction * (1.0 - eps) / el.solid_fraction
        notes.append(
            f"{which} active fraction rescaled to {act:.4g} to keep the published active "
            f"share of the solid ({el.active_fraction / el.solid_fraction:.3g})"
        )
    geo[f"{which}.active_fraction"] = act
    if micro.thickness_m is not None:
        geo[f"{which}.thickness_m"] = micro.thickness_m

    # --- particle radius and surface area ----------------------------------------
    radius = micro.particle_radius_m
    scale = 1.0
    ssa = micro.specific_surface_area_per_m
    if ssa is not None and radius is None:
        radius = 3.0 * act / ssa
        notes.append(
            f"{which} particle radius {radius:.4g} m from the surface area (R = 3 ε_act / a)"
        )
    elif ssa is not None and radius is not None:
        scale = ssa / (3.0 * act / radius)
        notes.append(
            f"{which} exchange-current density scaled by {scale:.4g} = a_measured / "
            "(3 ε_act / R) to impose the measured surface area with the measured radius"
        )
    if radius is not None:
        geo[f"{which}.particle_radius_m"] = radius
    if micro.particle_radius_std_m is not None:
        geo[f"{which}.particle_radius_std_m"] = micro.particle_radius_std_m
    geo[f"{which}.exchange_current_scale"] = scale * el.exchange_current_scale

    out = params.with_values(geo, source=src, note="geometry", notes=tuple(notes))

    # --- effective transport -----------------------------------------------------
    trans: dict[str, Any] = {}
    tnotes: list[str] = []
    b_s_set = el.bruggeman_electrode
    bulk = micro.solid_conductivity_bulk_S_per_m
    if transport == "micro":
        trans[f"{which}.bruggeman_electrolyte"] = bruggeman_from_tau(eps, micro.tau_electrolyte)
        if micro.tau_solid is not None and (b_s_set > 0 or bulk is not None):
            if bulk is not None:
                trans[f"{which}.conductivity_S_per_m"] = bulk
            trans[f"{which}.bruggeman_electrode"] = bruggeman_from_tau(1.0 - eps, micro.tau_solid)
        elif micro.tau_solid is not None:
            tnotes.append(
                f"{which} solid transport kept as published: the set gives an effective "
                "conductivity (Bruggeman exponent 0); give solid_conductivity_bulk_S_per_m "
                "to apply tau_solid"
            )
        else:
            tnotes.append(f"{which} solid transport kept as published (no tau_solid given)")
        note = "micro-informed effective transport: ε^b = ε/τ"
    else:
        if bulk is not None:
            trans[f"{which}.conductivity_S_per_m"] = bulk
            trans[f"{which}.bruggeman_electrode"] = b_s_set if b_s_set > 0 else CLASSIC_BRUGGEMAN
        note = "Bruggeman effective transport from the micro porosity"
    if trans:
        out = out.with_values(trans, source=src, note=note, notes=tuple(tnotes))
    elif tnotes:
        out = out.with_values({}, source=src, notes=tuple(tnotes))
    if micro.ion_conductor == "solid_electrolyte":
        out = single_ion_half_cell(
            out,
            conductivity_S_per_m=micro.se_conductivity_S_per_m,
            separator_thickness_m=micro.separator_thickness_m,
        )
    return out


def _resolved_default(name: str) -> float:
    """A default of :class:`~microbat.cell.resolved.ResolvedOptions` (one source of truth)."""
    import dataclasses

    from microbat.cell.resolved._model import ResolvedOptions

    return float(next(f.default for f in dataclasses.fields(ResolvedOptions) if f.name == name))


def single_ion_half_cell(
    params: CellParameters,
    *,
    conductivity_S_per_m: float | None = None,
    separator_thickness_m: float | None = None,
    li_exchange_current_A_per_m2: float | None = None,
    cutoff_V: float | None = None,
) -> CellParameters:
    """The half cell of a solid-electrolyte positive electrode against lithium metal.

    Turns the electrolyte into a single-ion conductor and the cell into the half
    cell the resolved composite model simulates; the positive electrode's geometry
    and transport are left as they are (set them with :func:`apply_micro`).

    * electrolyte: t₊ = 1 and the constant conductivity σ_SE (see the module notes:
      no salt gradient, no diffusion potential; c_e stays at c_e0);
    * separator: dense solid electrolyte, ε = 1, Bruggeman exponent 0;
    * counter electrode: lithium metal with a constant exchange current
      (:meth:`CellParameters.as_half_cell`);
    * lower cut-off: the larger of the set's and the positive OCP at
      :data:`SE_CUTOFF_STOICHIOMETRY`;
    * nominal capacity (the 1C current): the positive electrode's OCP-limited
      capacity, from the stoichiometry at the upper cut-off to the one at the lower
      cut-off, ``F c_max ε_act L A Δθ`` (the resolved model's C-rate definition
      measured from full charge).

    Parameters
    ----------
    params : CellParameters
        Parameters whose positive electrode is the composite.
    conductivity_S_per_m : float, optional
        σ_SE (default: ``ResolvedOptions.se_conductivity_S_per_m``, 0.2 S/m, as
        ``microbat simulate --se-conductivity``: the order of the room-temperature
        total conductivity of the argyrodites, ~1.3 mS/cm Li₆PS₅Cl and ~2 mS/cm
        Li₆PS₅Cl₀.₅Br₀.₅, Kraft et al., J. Am. Chem. Soc. 139, 10909 (2017),
        doi:10.1021/jacs.7b06327).
    separator_thickness_m : float, optional
        Thickness of the SE separator (default: the set's).
    li_exchange_current_A_per_m2 : float, optional
        Lithium-metal exchange current (default: the resolved model's
        ``li_exchange_current_A_per_m2``, 10 A/m²).
    cutoff_V : float, optional
        Lower cut-off voltage (default: see above).

    Returns
    -------
    CellParameters
        With every change recorded (source ``"solid electrolyte"``).

    Raises
    ------
    InvalidInputError
        A value outside its plausible range, or a cut-off at or above the upper one.
    """
    import numpy as np

    from microbat.cell.resolved._params import ResolvedParameters
    from microbat.core.constants import FARADAY

    sigma = (
        _resolved_default("se_conductivity_S_per_m")
        if conductivity_S_per_m is None
        else (float(conductivity_S_per_m))
    )
    j0_li = (
        _resolved_default("li_exchange_current_A_per_m2")
        if li_exchange_current_A_per_m2 is None
        else float(li_exchange_current_A_per_m2)
    )
    src = "solid electrolyte"
    changes: dict[str, Any] = {
        "electrolyte.transference_number": 1.0,
        "electrolyte.conductivity_S_per_m": sigma,
        "separator.porosity": 1.0,
        "separator.bruggeman_electrolyte": 0.0,
    }
    if separator_thickness_m is not None:
        changes["separator.thickness_m"] = float(separator_thickness_m)
    out = params.with_values(
        changes,
        source=src,
        note="single-ion conductor (t+ = 1, constant sigma_SE), dense SE separator",
    ).as_half_cell(j0_li, source=src)
    # --- the voltage window and the 1C current of the positive half cell -------------
    ocp = ResolvedParameters.from_cell_parameters(out, "positive").ocp
    theta = np.linspace(1e-3, 1.0, 4000)
    u = np.asarray(ocp(theta), dtype=float)
    cut = (
        max(out.cell.lower_cutoff_V, float(ocp(np.array([SE_CUTOFF_STOICHIOMETRY]))[0]))
        if cutoff_V is None
        else float(cutoff_V)
    )
    upper = out.cell.upper_cutoff_V
    if cut >= upper:
        raise InvalidInputError(
            f"the half cell's lower cut-off {cut:.4g} V is not below its upper cut-off "
            f"{upper:.4g} V; give cutoff_V below it"
        )

    def theta_at(v: float) -> float:  # the positive OCP falls as θ grows (lithiation)
        below = np.flatnonzero(u <= v)
        return float(theta[below[0]]) if below.size else 1.0

    el = out.positive
    dtheta = max(theta_at(cut) - theta_at(upper), 1e-3)
    q_nom = (
        FARADAY
        * el.max_concentration_mol_per_m3
        * el.active_fraction
        * el.thickness_m
        * out.cell.electrode_area_m2
        * dtheta
        / 3600.0
    )
    return out.with_values(
        {"cell.lower_cutoff_V": cut, "cell.nominal_capacity_Ah": q_nom},
        source=src,
        note="half cell: lower cut-off and OCP-limited capacity of the positive electrode",
        notes=(
            f"half cell vs lithium metal: cut-off {cut:.4g} V, 1C = {q_nom:.4g} A "
            f"(stoichiometry window {dtheta:.4g})",
        ),
    )


def solid_state_parameters(
    params: CellParameters,
    micro: MicroProperties,
    *,
    transport: Literal["micro", "bruggeman"] = "micro",
) -> CellParameters:
    """Cell parameters of the single-ion P2D of a solid-state composite cathode.

    :func:`apply_micro` with ``micro`` read as a composite (``ion_conductor =
    "solid_electrolyte"``): the positive electrode gets the SE fraction as ε, the SE
    network's ``ε/τ`` (``transport="micro"``) or the set's Bruggeman exponent, the
    active | SE contact area, the radius, active fraction and thickness; then
    :func:`single_ion_half_cell` with ``micro.se_conductivity_S_per_m`` and
    ``micro.separator_thickness_m``. Run it with :func:`microbat.cell.rate_capability`
    (``micro=`` the same properties) or :class:`~microbat.cell.bridge.CellSimulator`.

    Parameters
    ----------
    params : CellParameters
        Published set (its positive electrode's OCP, kinetics, diffusivity).
    micro : MicroProperties
        Measured on the composite (:meth:`MicroProperties.from_microstructure`), or
        by hand with ``ion_conductor="solid_electrolyte"`` (set here if omitted).
    transport : {"micro", "bruggeman"}
        Effective transport of the SE network.

    Returns
    -------
    CellParameters

    Examples
    --------
    >>> p = CellParameters.from_name("chen2020")  # doctest: +SKIP
    >>> m = MicroProperties(porosity=0.35, tau_electrolyte=2.0, active_fraction=0.55,
    ...                     ion_conductor="solid_electrolyte")  # doctest: +SKIP
    >>> s = solid_state_parameters(p, m)  # doctest: +SKIP
    >>> s.electrolyte.transference_number, s.half_cell  # doctest: +SKIP
    (1.0, True)
    """
    if not isinstance(micro, MicroProperties):
        raise InvalidInputError(f"micro must be MicroProperties, got {type(micro).__name__}")
    if micro.ion_conductor != "solid_electrolyte":
        micro = MicroProperties(**{**micro.model_dump(), "ion_conductor": "solid_electrolyte"})
    return resolve_parameters(params, transport=transport, micro=micro)


def resolve_parameters(
    params: CellParameters,
    *,
    transport: str = "bruggeman",
    micro: MicroProperties | None = None,
) -> CellParameters:
    """The parameters a simulation runs with, given the transport choice.

    Parameters
    ----------
    params : CellParameters
        Published (or already modified) parameters.
    transport : {"bruggeman", "micro"}
        Effective-transport model.
    micro : MicroProperties, optional
        Required for ``transport="micro"``; with ``"bruggeman"`` its geometry is
        applied and the published Bruggeman exponents kept.

    Raises
    ------
    InvalidInputError
        ``transport="micro"`` without ``micro``, or an unknown transport name.
    """
    if not isinstance(params, CellParameters):
        raise InvalidInputError(
            f"params must be CellParameters (e.g. CellParameters.from_name('chen2020')), "
            f"got {type(params).__name__}"
        )
    if transport not in ("micro", "bruggeman"):
        raise InvalidInputError(f"transport must be 'bruggeman' or 'micro', got {transport!r}")
    if micro is None:
        if transport == "micro":
            raise InvalidInputError(
                "transport='micro' needs microstructure-derived properties: pass "
                "micro=MicroProperties(...) or MicroProperties.from_microstructure(ms)"
            )
        return params
    if not isinstance(micro, MicroProperties):
        raise InvalidInputError(f"micro must be MicroProperties, got {type(micro).__name__}")
    return apply_micro(params, micro, transport=transport)  # type: ignore[arg-type]
