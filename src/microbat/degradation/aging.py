r"""Cycle aging of an electrode image with the loop cracks → surface → SEI → current → stress.

Every labelled active particle carries an aging state: SEI thickness on its original
surface ``δ_o`` and on its crack faces ``δ_cr`` (area-mean), crack length ``a``, crack
area, lithium lost to each mechanism, and whether it has fractured. One cycle
(a full (de)lithiation and back at the C-rate ``C``, plus an optional rest) does:

1. **Current share** — the depth-resolved network of
   :mod:`microbat.degradation._aging_network` (electrolyte and solid along the
   thickness with the micro-informed ``κ_eff = κ ε/τ``; each particle a branch of
   kinetic + film resistance on its original and crack area) gives each particle's
   share ``f_k`` of the current, hence its own rate ``C_k = C f_k V/V_k``.
2. **Stress** — the mechanics stage's fast path: the particle's equivalent free
   sphere under the galvanostatic flux of ``C_k`` (Cheng & Verbrugge 2009;
   :mod:`microbat.degradation.sphere`), surface hoop stress at the end of the
   delithiation half (``Δσ_k = Ω E J_k R_k |s_θ(τ)| / (3 (1 − ν) D)``,
   ``τ = D t_half / R_k²``; or the quasi-steady ``|s_θ| = 1/5``). The surface goes
   from compression (lithiation) to tension (delithiation): the tensile part drives
   the cracks.
3. **Cracks** — Paris law ``da/dN = k (Y Δσ √(π a))^m`` (:mod:`microbat.degradation.paris`);
   the particle fractures when ``Y Δσ √(π a) ≥ K_IC`` (or the crack reaches its
   radius): its crack is set to the radius and it splits along a diametral plane
   (``2πR²`` of fresh faces); with ``isolate_fractured`` it also loses contact
   (its capacity is lost and it carries no more current). Crack faces
   ``2 a w ρ_cr A_o`` (Deshpande et al. 2012).
4. **SEI** on the original surface and on the crack faces by the chosen law
   (:mod:`microbat.degradation.sei`, exact closed forms over the cycle time); new
   crack faces start at ``δ_cr,0`` and, created at an even pace during a block,
   carry the mean film of their ages. Lithium lost ``z ΔV/V̄``.
5. **Plating** (``plating`` mechanism) — the lithium each particle loses to plating
   per charge, from one resolved charge of the image with the plating side reaction
   at the cycle's C-rate (:func:`~microbat.degradation._aging_plating.resolved_plating`:
   the plated lithium of the run per particle, ``irreversible`` or the dead part of
   ``partially_reversible``), or a given constant rate per interface area. Held
   constant over the cycles: the resolved model knows neither the films nor the
   cracks, so a second charge of the same image would give the same amounts.
6. **Feedback** — the films' resistances ``ρ_SEI δ`` and the new crack area change
   every ``G_k`` and so the next cycle's shares and stresses.

Capacity: ``Q = Q_0 − F n_Li,lost − Q_isolated``, ``Q_0 = F c_max Δθ V_active``: the
electrode's cyclable capacity over its stoichiometry window, lithium inventory lost
to SEI and plating (when on), and the capacity of particles cut off
after fracture (only with ``isolate_fractured``). Not included: the loss of
accessible capacity through the rising resistance at a voltage cut-off, loss of
active material by other routes, electrolyte dry-out. The resistance growth is the
network's resistance (electrolyte, solid, kinetics, films) over its value at cycle 0.

Cell capacity (``cell=`` a parameter set): the electrode balance of the set's full cell
scaled to the image (:mod:`microbat.degradation._aging_balance`; Mohtat et al. 2019):
the capacity between the set's cut-off voltages with the cyclable lithium less the
lithium lost and the imaged electrode less its isolated particles, and the
degradation modes LLI, LAM_ne, LAM_pe (Birkl et al. 2017). ``Q/Q_0`` above is then the
electrode's lithium-inventory retention, an upper bound of the cell's fade.

Cycle-jumping
-------------
Within a block of ``n`` cycles the drivers (each particle's stress amplitude ``Δσ_k``
and SEI-rate factor) are held; the states advance by the exact closed forms (√t or
linear SEI, Paris's integrated law), so the only error is holding the drivers.
A block is a predictor–corrector step (Heun): advance with the drivers at the
start, evaluate them at the end, and if no driver changed by more than the
``tolerance`` (relative), redo the block with the mean drivers and accept it;
otherwise halve the block. A block that changed the drivers by less than a quarter
of the tolerance doubles the next one (up to ``max_block``). With ``jump=False``
every cycle is its own block with the drivers of its start (cycle by cycle).
Cycle-jumping of this kind: Cojocaru & Karlsen (2006).

Heterogeneity index
-------------------
The local degradation rate of particle ``k`` is the lithium it consumes (SEI on both
surfaces, the film on the crack faces opened in the cycle, plating) per unit of its
interface area and per cycle at its current state, ``r_k = (dn_k/dN) / A_k`` with
``A_k = A_o + A_cr`` (the rate laws' derivatives, not a block average, so the index
does not depend on the block size); the index is its area-weighted
coefficient of variation across the interface,
``CoV = √(Σ A_k (r_k − r̄)² / Σ A_k) / r̄``, ``r̄ = Σ A_k r_k / Σ A_k``; the per-depth
profile is the area-weighted mean ``r`` of the particles of each plane over ``r̄``.

References
----------
.. [1] R. Deshpande, M. Verbrugge, Y.-T. Cheng, J. Wang, P. Liu, J. Electrochem. Soc.
   159, A1730 (2012), doi:10.1149/2.049210jes.
.. [2] S. E. J. O'Kane et al., Phys. Chem. Chem. Phys. 24, 7909 (2022),
   doi:10.1039/D2CP00417H.
.. [3] Y.-T. Cheng, M. W. Verbrugge, J. Power Sources 190, 453 (2009),
   doi:10.1016/j.jpowsour.2008.12.066.
.. [4] D. Cojocaru, A. M. Karlsen, "A simple numerical method of cycle jumps for
   cyclically loaded structures", Int. J. Fatigue 28, 1677–1689 (2006),
   doi:10.1016/j.ijfatigue.2006.01.009.
.. [5] C.-H. Chen et al., J. Electrochem. Soc. 167, 080534 (2020),
   doi:10.1149/1945-7111/ab9050.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from microbat.core.constants import FARADAY
from microbat.core.errors import FileFormatError, InvalidInputError
from microbat.core.microstructure import Microstructure
from microbat.core.results import Provenance, Result, to_jsonable
from microbat.degradation._aging_balance import balance_curve, cell_balance
from microbat.degradation._aging_network import (
    AgingGeometry,
    aging_geometry,
    distribute,
    sphere_geometry,
)
from microbat.degradation._aging_plating import (
    ResolvedPlating,
    check_plating_material,
    resolved_plating,
)
from microbat.degradation.parameters import GRAPHITE, MATERIALS, MechanicalMaterial
from microbat.degradation.paris import (
    CrackParameters,
    crack_area,
    critical_length,
    paris_length,
)
from microbat.degradation.particles import Particles
from microbat.degradation.sei import (
    GAS_CONSTANT,
    SEIParameters,
    grow,
    lithium_from_volume,
    rate_constants,
    reaction_factor,
)

__all__ = [
    "MECHANISMS",
    "AgingGeometry",
    "AgingParameters",
    "AgingResult",
    "ResolvedPlating",
    "age",
    "aging_geometry",
    "parse_mechanisms",
    "resolved_plating",
    "sphere_geometry",
]

#: Degradation mechanisms the loop knows.
MECHANISMS: tuple[str, ...] = ("sei", "cracks", "plating")

CHECKPOINT_VERSION = 1
_STATE_KEYS = ("d_o", "d_cr", "a", "li_o", "li_cr", "li_pl", "frac", "frac_area")
_HIST_KEYS = (
    "cycle", "retention", "resistance", "li_o", "li_cr", "li_pl", "cov",
    "fractured", "mean_crack", "mean_sei_o", "mean_sei_cr", "lam",
)  # fmt: skip


def parse_mechanisms(value: str | Iterable[str]) -> tuple[str, ...]:
    """Mechanism names from ``"sei,cracks"`` or a sequence (validated, ordered).

    Raises
    ------
    InvalidInputError
        An unknown name, or none.
    """
    items = value.split(",") if isinstance(value, str) else list(value)
    names = [str(s).strip().lower() for s in items if str(s).strip()]
    unknown = [s for s in names if s not in MECHANISMS]
    if unknown:
        raise InvalidInputError(
            f"unknown degradation mechanism {unknown[0]!r}; use any of {', '.join(MECHANISMS)}"
        )
    if not names:
        raise InvalidInputError(
            f"no degradation mechanism given; use any of {', '.join(MECHANISMS)}"
        )
    return tuple(m for m in MECHANISMS if m in names)


def _positive(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise InvalidInputError(f"{name} must be positive and finite, got {value!r}")
    return v


@dataclass(frozen=True)
class AgingParameters:
    """Constants of the aging loop (SI units).

    Attributes
    ----------
    material : MechanicalMaterial
        Active material (default :data:`~microbat.degradation.parameters.GRAPHITE`:
        the negative electrode, where the SEI of O'Kane et al. 2022 grows). Needs
        ``c_max`` and the stoichiometry window (capacity); ``D_s``, ``E``, ``ν``,
        ``Ω`` and ``K_IC`` for cracks.
    sei : SEIParameters
        SEI law and constants (O'Kane et al. 2022).
    cracks : CrackParameters
        Paris law and crack geometry (O'Kane et al. 2022).
    exchange_current_density_A_per_m2 : float
        ``i_0`` of the intercalation reaction; ``R_ct = RT/(F i_0)``. Default 0.34:
        Chen et al. (2020) graphite, ``6.48e-7 √(c_e c_s (c_max − c_s))`` at
        ``c_e`` = 1000 mol/m³ and half lithiation.
    electrolyte_conductivity_S_per_m : float
        Bulk ``κ``; default 0.95 (LiPF₆ in EC:EMC at 1 M, 25 °C, Nyman et al. 2008
        as used by Chen et al. 2020).
    solid_conductivity_S_per_m : float
        Bulk ``σ_s`` of the solid; default 215 (graphite, Chen et al. 2020).
    temperature_K : float
        Temperature of the kinetics (and of the SEI law).
    rest_s : float
        Rest per cycle (SEI keeps growing).
    cycle_time_s : float or None
        Duration of one cycle; default ``2 × 3600/C + rest_s`` (a full window each
        way). Give the measured one when a cut-off voltage ends the halves early.
    film_resistance : bool
        Whether the SEI films' resistance enters the current distribution.
    redistribute : bool
        Whether the current shares are recomputed as the state changes (False:
        the shares, stresses and SEI-rate factors of cycle 0 throughout, no
        feedback; the resistance is still followed).
    isolate_fractured : bool
        A fractured particle loses electronic contact (capacity and current).
    double_layer_F_per_m2 : float
        Double-layer capacitance per interface area of the impedance spectra
        (0.2 F/m², the EIS module's default after Bard & Faulkner).
    plating_rate_mol_per_m2_s : float or None
        A constant rate of lithium plated per unit interface area and second of
        charge for the ``plating`` mechanism; None (default): the plating per
        particle comes from one resolved charge with the plating reaction
        (:func:`~microbat.degradation._aging_plating.resolved_plating`).
    stress_profile : {"end", "steady"}
        Stress at the end of the delithiation half-cycle, or quasi-steady.
    """

    material: MechanicalMaterial = GRAPHITE
    sei: SEIParameters = field(default_factory=SEIParameters)
    cracks: CrackParameters = field(default_factory=CrackParameters)
    exchange_current_density_A_per_m2: float = 0.34
    electrolyte_conductivity_S_per_m: float = 0.95
    solid_conductivity_S_per_m: float = 215.0
    temperature_K: float = 298.15
    rest_s: float = 0.0
    cycle_time_s: float | None = None
    film_resistance: bool = True
    redistribute: bool = True
    isolate_fractured: bool = False
    double_layer_F_per_m2: float = 0.2
    plating_rate_mol_per_m2_s: float | None = None
    stress_profile: Literal["end", "steady"] = "end"

    def __post_init__(self) -> None:
        mat = self.material
        if isinstance(mat, str):
            key = mat.strip().lower()
            if key not in MATERIALS:
                raise InvalidInputError(
                    f"unknown material {mat!r}; use one of {', '.join(MATERIALS)}"
                )
            object.__setattr__(self, "material", MATERIALS[key])
        elif isinstance(mat, Mapping):
            data = dict(mat)
            base = MATERIALS[str(data.pop("base", "graphite")).lower()]
            object.__setattr__(self, "material", base.replace(**data))
        if isinstance(self.sei, Mapping):
            object.__setattr__(self, "sei", SEIParameters(**dict(self.sei)))
        if isinstance(self.cracks, Mapping):
            object.__setattr__(self, "cracks", CrackParameters(**dict(self.cracks)))
        for name in (
            "exchange_current_density_A_per_m2",
            "electrolyte_conductivity_S_per_m",
            "solid_conductivity_S_per_m",
            "temperature_K",
            "double_layer_F_per_m2",
        ):
            object.__setattr__(self, name, _positive(name, getattr(self, name)))
        r = float(self.rest_s)
        if not (math.isfinite(r) and r >= 0):
            raise InvalidInputError(f"rest_s must be >= 0, got {self.rest_s!r}")
        object.__setattr__(self, "rest_s", r)
        if self.cycle_time_s is not None:
            object.__setattr__(self, "cycle_time_s", _positive("cycle_time_s", self.cycle_time_s))
        if self.plating_rate_mol_per_m2_s is not None:
            v = float(self.plating_rate_mol_per_m2_s)
            if not (math.isfinite(v) and v >= 0):
                raise InvalidInputError(
                    "plating_rate_mol_per_m2_s must be >= 0, got "
                    f"{self.plating_rate_mol_per_m2_s!r}"
                )
            object.__setattr__(self, "plating_rate_mol_per_m2_s", v)
        if self.stress_profile not in ("end", "steady"):
            raise InvalidInputError(
                f"stress_profile must be 'end' or 'steady', got {self.stress_profile!r}"
            )

    def require(self, mechanisms: Sequence[str]) -> None:
        """Raise a one-line error naming a parameter a chosen mechanism needs."""
        self.material.require(
            "max_concentration_mol_per_m3",
            "stoichiometry_window",
            why="the capacity of the aging model",
        )
        if "sei" in mechanisms:
            self.sei.require()
        if "cracks" in mechanisms:
            self.material.require(
                "diffusivity_m2_per_s",
                "fracture_toughness_Pa_sqrt_m",
                why="the crack mechanism (stress and Paris law)",
            )
            if self.material.partial_molar_volume_m3_per_mol <= 0:
                raise InvalidInputError(
                    f"the crack mechanism needs the partial molar volume of material "
                    f"{self.material.name!r} (partial_molar_volume_m3_per_mol > 0)"
                )
        if "plating" in mechanisms:
            check_plating_material(self.material.name)

    def replace(self, **changes: Any) -> AgingParameters:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["material"] = self.material.to_dict()
        d["sei"] = self.sei.to_dict()
        d["cracks"] = self.cracks.to_dict()
        return to_jsonable(d)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> AgingParameters:
        """Parameters from a dictionary.

        ``sei`` and ``cracks`` are tables; ``material`` a name or a table with an
        optional ``base`` name.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InvalidInputError(
                f"unknown aging parameter(s) {sorted(unknown)}; known: {sorted(known)}"
            )
        d = dict(data)
        for key, kind in (("sei", SEIParameters), ("cracks", CrackParameters)):
            if isinstance(d.get(key), Mapping):
                fields_ = {f.name for f in dataclasses.fields(kind)}
                bad = set(d[key]) - fields_
                if bad:
                    raise InvalidInputError(
                        f"unknown {key} parameter(s) {sorted(bad)}; known: {sorted(fields_)}"
                    )
        try:
            return cls(**d)
        except TypeError as exc:
            raise InvalidInputError(f"bad aging parameters: {exc}") from None

    @classmethod
    def from_file(cls, path: str | Path) -> AgingParameters:
        """Read a TOML or JSON parameter file (see :meth:`from_mapping`)."""
        p = Path(path)
        if not p.is_file():
            raise FileFormatError(f"no parameter file at {p}")
        try:
            if p.suffix.lower() == ".json":
                data = json.loads(p.read_text("utf-8"))
            else:
                import tomllib

                data = tomllib.loads(p.read_text("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise FileFormatError(f"{p}: not a readable TOML/JSON parameter file ({exc})") from None
        if not isinstance(data, Mapping):
            raise FileFormatError(f"{p}: the parameter file must hold a table")
        return cls.from_mapping(data)


# ============================================================================ model
class _Loop:
    """The per-particle model: drivers from a state, states advanced over blocks."""

    def __init__(
        self,
        geom: AgingGeometry,
        params: AgingParameters,
        c_rate: float,
        mechanisms: tuple[str, ...],
        resolved: ResolvedPlating | None = None,
    ) -> None:
        self.g = geom
        self.p = params
        self.c = c_rate
        self.mech = mechanisms
        mat = params.material
        lo, hi = mat.stoichiometry_window  # type: ignore[misc]
        self.cap_density = FARADAY * float(mat.max_concentration_mol_per_m3) * (hi - lo)  # C/m3
        self.q0 = self.cap_density * float(geom.volume_m3.sum())  # C
        self.t_half = 3600.0 / c_rate
        self.t_cycle = params.cycle_time_s or 2.0 * self.t_half + params.rest_s
        self.r_ct = (
            GAS_CONSTANT
            * params.temperature_K
            / (FARADAY * params.exchange_current_density_A_per_m2)
        )
        r = geom.radius_m
        if "cracks" in mechanisms:
            from microbat.degradation.sphere import stress_shape

            d = float(mat.diffusivity_m2_per_s)  # type: ignore[arg-type]
            if params.stress_profile == "steady":
                shape = np.full(r.shape, 0.2)
            else:
                s_surf, _ = stress_shape(d * self.t_half / r**2)
                shape = np.abs(s_surf)
            m = params.cracks.paris_m
            if params.cracks.basis == "hour":
                # (t_half/3600 s) x time mean of |s(t)|^m over the tensile half, as a
                # factor on the end amplitude (trapezoid on 400 steps of the half)
                t = np.linspace(0.0, self.t_half, 401)
                if params.stress_profile == "steady":
                    hist = np.full((t.size, r.size), 0.2)
                else:
                    hist = np.abs(stress_shape(d * t[:, None] / r[None, :] ** 2)[0])
                mean = np.trapezoid(hist**m, t, axis=0) / self.t_half
                self.paris_factor = (self.t_half / 3600.0 * mean / shape**m) ** (1.0 / m)
            else:
                self.paris_factor = np.ones_like(r)
            # surface hoop tension per unit particle C-rate: J(1C) = R/3 c_max Δθ / 3600
            j1 = r / 3.0 * float(mat.max_concentration_mol_per_m3) * (hi - lo) / 3600.0
            pref = (
                mat.partial_molar_volume_m3_per_mol
                * mat.young_modulus_Pa
                / (3 * (1 - mat.poisson_ratio))
            )
            self.stress_per_c = pref * j1 * r / d * shape
            self.kic = float(mat.fracture_toughness_Pa_sqrt_m)  # type: ignore[arg-type]
        else:
            self.stress_per_c = np.zeros_like(r)
            self.paris_factor = np.ones_like(r)
            self.kic = math.inf
        self.plating = (
            float(params.plating_rate_mol_per_m2_s or 0.0) if "plating" in mechanisms else 0.0
        )
        # lithium lost to plating per particle per cycle (mol): one resolved charge
        self.plated = (
            np.asarray(resolved.lost_mol, float)
            if resolved is not None and "plating" in mechanisms
            else None
        )
        self.network_solves = 0
        self.network_time = 0.0
        self._fixed: dict[str, np.ndarray] | None = None

    # ---------------------------------------------------------------- state
    def initial_state(self) -> dict[str, np.ndarray]:
        n = self.g.n
        cr = "cracks" in self.mech
        return {
            "d_o": np.full(n, self.p.sei.initial_thickness_m),
            "d_cr": np.full(n, self.p.sei.crack_initial_thickness_m),
            "a": np.full(n, self.p.cracks.initial_length_m if cr else 0.0),
            "li_o": np.zeros(n),
            "li_cr": np.zeros(n),
            "li_pl": np.zeros(n),
            "frac": np.zeros(n),
            "frac_area": np.zeros(n),
        }

    def crack_area(self, s: Mapping[str, np.ndarray]) -> np.ndarray:
        if "cracks" not in self.mech:
            return np.zeros(self.g.n)
        return crack_area(s["a"], self.g.area_m2, self.p.cracks) + s["frac_area"]

    def alive(self, s: Mapping[str, np.ndarray]) -> np.ndarray:
        if self.p.isolate_fractured:
            return s["frac"] < 0.5
        return np.ones(self.g.n, bool)

    def drivers(self, s: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Current shares, stress amplitudes and SEI-rate factors at a state."""
        t0 = time.perf_counter()
        a_o = self.g.area_m2
        a_cr = self.crack_area(s)
        rf_o = self.p.sei.resistivity_ohm_m * s["d_o"] if self.p.film_resistance else 0.0
        rf_c = self.p.sei.resistivity_ohm_m * s["d_cr"] if self.p.film_resistance else 0.0
        alive = self.alive(s)
        g_o = a_o / (self.r_ct + rf_o)
        g_c = a_cr / (self.r_ct + rf_c)
        cond = np.where(alive, g_o + g_c, 0.0)
        dist = distribute(
            self.g, cond,
            electrolyte_conductivity=self.p.electrolyte_conductivity_S_per_m,
            solid_conductivity=self.p.solid_conductivity_S_per_m,
        )  # fmt: skip
        current = self.c * self.q0 / 3600.0  # A
        vol = np.where(alive, self.g.volume_m3, 0.0)
        v_alive = float(vol.sum())
        with np.errstate(divide="ignore", invalid="ignore"):
            c_k = np.where(alive, self.c * dist.share * v_alive / self.g.volume_m3, 0.0)
        dsig = self.stress_per_c * c_k
        # charge-transfer overpotential of the original surface (for the reaction law)
        dphi = dist.potential_V * current
        eta = dphi * self.r_ct / (self.r_ct + rf_o)
        rfac = np.asarray(reaction_factor(eta, self.p.sei), float) * np.ones(self.g.n)
        self.network_solves += 1
        self.network_time += time.perf_counter() - t0
        out = {
            "share": dist.share,
            "c_k": c_k,
            "dsig": dsig,
            "rfac": rfac,
            "resistance": np.asarray(dist.resistance_ohm),
        }
        if not self.p.redistribute:
            # no feedback: the shares, stresses and SEI factors of cycle 0 throughout
            # (the resistance is still that of the current state)
            if self._fixed is None:
                self._fixed = out
            return {**self._fixed, "resistance": out["resistance"]}
        return out

    def impedance(self, s: Mapping[str, np.ndarray], freqs: np.ndarray) -> np.ndarray:
        """Small-signal impedance (Ω) of the electrode in state ``s`` at ``freqs`` (Hz).

        Every particle branch: its original surface and its crack faces, each an SEI
        film (``R_f ∥ C_f``) in series with the interface (double layer ∥ charge
        transfer; solid diffusion left out), on the depth network's rails.
        """
        from microbat.cell.eis.parameters import EISParameters
        from microbat.degradation._aging_network import network_impedance
        from microbat.degradation.sei import film_impedance

        p = self.p
        eis = EISParameters(
            electrolyte_conductivity_S_per_m=p.electrolyte_conductivity_S_per_m,
            double_layer_F_per_m2=p.double_layer_F_per_m2,
            exchange_current_A_per_m2=p.exchange_current_density_A_per_m2,
            temperature_K=p.temperature_K,
            ocp_slope_V_m3_per_mol=0.0,
        )
        w = 2.0 * np.pi * np.asarray(freqs, float)[:, None]
        z_int = 1.0 / eis.admittance(w)  # (nf, 1) Ω m²
        on = 1.0 if p.film_resistance else 0.0
        z_o = z_int + on * film_impedance(s["d_o"][None, :], w, p.sei)
        z_c = z_int + on * film_impedance(s["d_cr"][None, :], w, p.sei)
        y = self.g.area_m2[None, :] / z_o + self.crack_area(s)[None, :] / z_c
        y = np.where(self.alive(s)[None, :], y, 0.0)
        return network_impedance(
            self.g, y,
            electrolyte_conductivity=p.electrolyte_conductivity_S_per_m,
            solid_conductivity=p.solid_conductivity_S_per_m,
        )  # fmt: skip

    # --------------------------------------------------------------- advance
    def advance(
        self, s: Mapping[str, np.ndarray], n: int, drv: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """State after ``n`` cycles with the drivers held (exact closed forms)."""
        p = self.p
        out = {k: np.array(v, copy=True) for k, v in s.items()}
        alive = self.alive(s)
        t = n * self.t_cycle
        a_cr0 = self.crack_area(s)
        if "cracks" in self.mech:
            grow_ok = alive & (s["frac"] < 0.5)
            amp = drv["dsig"] * self.paris_factor
            a1 = np.where(grow_ok, paris_length(s["a"], n, amp, p.cracks), s["a"])
            a_crit = critical_length(drv["dsig"], self.kic, p.cracks)
            broke = grow_ok & ((a1 >= a_crit) | (a1 >= self.g.radius_m) | ~np.isfinite(a1))
            r = self.g.radius_m
            out["a"] = np.where(broke, r, np.minimum(a1, r))
            out["frac"] = np.where(broke, 1.0, s["frac"])
            out["frac_area"] = s["frac_area"] + np.where(broke, 2.0 * math.pi * r * r, 0.0)
        a_cr1 = self.crack_area(out)
        if "sei" in self.mech:
            sp = p.sei
            scale = drv["rfac"]
            d_o1 = grow(s["d_o"], t, sp, reaction_scale=scale)
            out["d_o"] = np.where(alive, d_o1, s["d_o"])
            out["li_o"] = s["li_o"] + lithium_from_volume(
                self.g.area_m2 * (out["d_o"] - s["d_o"]), sp
            )
            d_c1 = grow(s["d_cr"], t, sp, reaction_scale=scale)
            new = np.maximum(a_cr1 - a_cr0, 0.0)
            fresh = self._fresh_mean(t, scale)
            vol_old = a_cr0 * (d_c1 - s["d_cr"])
            vol_new = new * fresh
            out["li_cr"] = s["li_cr"] + np.where(
                alive, lithium_from_volume(vol_old + vol_new, sp), 0.0
            )
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(a_cr1 > 0, (a_cr0 * d_c1 + vol_new) / a_cr1, s["d_cr"])
            out["d_cr"] = np.where(alive, mean, s["d_cr"])
        if self.plated is not None:
            out["li_pl"] = s["li_pl"] + np.where(alive, self.plated * n, 0.0)
        elif self.plating > 0:
            area = self.g.area_m2 + 0.5 * (a_cr0 + a_cr1)
            out["li_pl"] = s["li_pl"] + np.where(alive, self.plating * area * n * self.t_half, 0.0)
        return out

    def _fresh_mean(self, t: float, scale: np.ndarray) -> np.ndarray:
        """Mean film on faces created at an even pace over ``t`` seconds."""
        sp = self.p.sei
        d0 = sp.crack_initial_thickness_m
        if t <= 0:
            return np.full(self.g.n, d0)
        if sp.law == "solvent-diffusion":
            kd, _ = rate_constants(sp)
            return np.full(self.g.n, ((d0 * d0 + 2 * kd * t) ** 1.5 - d0**3) / (3 * kd * t))
        # linear law: exact; mixed: Simpson's rule on the smooth closed form
        g0 = np.full(self.g.n, d0)
        gm = grow(d0, 0.5 * t, sp, reaction_scale=scale)
        g1 = grow(d0, t, sp, reaction_scale=scale)
        return (g0 + 4 * gm + g1) / 6.0

    # --------------------------------------------------------------- outputs
    def lithium_loss_rate(
        self, s: Mapping[str, np.ndarray], drv: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Local degradation rate of each particle at a state, and its interface area.

        Lithium consumed per unit interface area per cycle (mol m⁻² per cycle), from
        the rate laws at the state (not a block average): SEI growth on the original
        surface and on the crack faces (``dδ/dt`` of the law at the film's thickness),
        the film formed during one cycle on the crack faces the Paris law opens in
        that cycle, and plating.
        """
        sp = self.p.sei
        alive = self.alive(s)
        a_cr = self.crack_area(s)
        area = self.g.area_m2 + a_cr
        dn = np.zeros(self.g.n)
        if "sei" in self.mech:
            kd, kr = rate_constants(sp)
            f = drv["rfac"]

            def speed(d: np.ndarray) -> np.ndarray:
                if sp.law == "solvent-diffusion":
                    return kd / d
                if sp.law == "reaction":
                    return kr * f
                return 1.0 / (1.0 / (kr * f) + d / kd)

            vol = (self.g.area_m2 * speed(s["d_o"]) + a_cr * speed(s["d_cr"])) * self.t_cycle
            if "cracks" in self.mech:
                grow_ok = alive & (s["frac"] < 0.5)
                b = self.p.cracks
                amp = np.maximum(drv["dsig"] * self.paris_factor, 0.0)
                dadn = b.paris_k * (b.geometry_factor * amp * np.sqrt(np.pi * s["a"])) ** b.paris_m
                new = np.where(grow_ok, crack_area(dadn, self.g.area_m2, b), 0.0)
                vol = vol + new * self._fresh_mean(self.t_cycle, f)
            dn = dn + lithium_from_volume(vol, sp)
        if self.plated is not None:
            dn = dn + self.plated
        elif self.plating > 0:
            dn = dn + self.plating * area * self.t_half
        dn = np.where(alive, dn, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where((area > 0) & alive, dn / area, np.nan)
        return rate, area

    def capacity(self, s: Mapping[str, np.ndarray]) -> tuple[float, float]:
        """(retention, capacity lost to isolated particles in C)."""
        li = float(s["li_o"].sum() + s["li_cr"].sum() + s["li_pl"].sum())
        lam = 0.0
        if self.p.isolate_fractured:
            lam = float(self.cap_density * np.sum(self.g.volume_m3[s["frac"] > 0.5]))
        # an exhausted inventory holds no capacity (heavy plating held constant per
        # cycle can take more lithium than the electrode has)
        return max(0.0, (self.q0 - FARADAY * li - lam) / self.q0), lam


def _cov(rate: np.ndarray, area: np.ndarray) -> float:
    w = np.where(np.isfinite(rate), area, 0.0)
    tot = float(w.sum())
    if tot <= 0:
        return math.nan
    r = np.where(np.isfinite(rate), rate, 0.0)
    mean = float(np.sum(w * r) / tot)
    if mean <= 0:
        return math.nan
    return math.sqrt(float(np.sum(w * (r - mean) ** 2) / tot)) / mean


def _depth_profile(rate: np.ndarray, area: np.ndarray, geom: AgingGeometry) -> np.ndarray:
    num = np.bincount(geom.layer, weights=area * rate, minlength=geom.n_layers)
    den = np.bincount(geom.layer, weights=area, minlength=geom.n_layers)
    mean = float(np.sum(area * rate) / np.sum(area)) if np.sum(area) > 0 else math.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        prof = num / den / mean
    return np.where(den > 0, prof, np.nan)


# ============================================================================ result
@dataclass(frozen=True)
class AgingResult(Result):
    """Fade curves, loss split, per-particle maps and the heterogeneity index.

    Attributes
    ----------
    cycles : int
        Cycles simulated.
    c_rate : float
        C-rate of the cycling (1/h).
    mechanisms : tuple of str
        Mechanisms switched on.
    cycle : ndarray (k,)
        Cycle numbers of the curve points (0 first).
    capacity_retention : ndarray (k,)
        ``Q/Q_0``.
    resistance_growth : ndarray (k,)
        Network resistance over its value at cycle 0.
    lithium_lost_curve_mol : dict of ndarray (k,)
        Cumulative lithium lost to ``sei_original``, ``sei_cracks``, ``plating``.
    heterogeneity_cov : ndarray (k,)
        Area-weighted CoV of the local degradation rate (lithium per unit interface
        area per cycle, from the rate laws at the state) at each point.
    fractured_fraction, mean_crack_length_m : ndarray (k,)
        Fractured share of the particles; mean crack length.
    mean_sei_thickness_m, mean_crack_sei_thickness_m : ndarray (k,)
        Particle statistics per point (thicknesses area-weighted).
    lithium_lost_mol : dict
        Final lithium lost per mechanism and ``total`` (``plating`` None when off).
    capacity_Ah : float
        ``Q_0`` of the imaged electrode.
    map_cycles : ndarray (m,)
        Cycles of the per-particle maps.
    maps : dict of ndarray (m, n)
        ``sei_thickness_m``, ``crack_sei_thickness_m``, ``crack_length_m``,
        ``lithium_lost_mol``, ``degradation_rate``, ``current_share``,
        ``interface_area_m2`` per map cycle and particle.
    depth_profile : ndarray (m, n_layers)
        Area-weighted mean degradation rate per plane over the mean, per map cycle.
    depth_m : ndarray (n_layers,)
        Depth of the planes from the collector.
    particles : dict of ndarray (n,)
        ``radius_m``, ``volume_m3``, ``area_m2``, ``depth_m`` of each particle.
    labels_mid : ndarray (2D)
        Particle labels on a mid-plane (thickness first), for the maps.
    impedance_frequency_Hz : ndarray (f,)
        Frequencies of the spectra (empty without ``impedance``).
    impedance_ohm : ndarray of complex (m, f)
        Small-signal impedance of the electrode at each map cycle: SEI films
        (``R_f ∥ C_f``) in series with double layer ∥ charge transfer on every
        particle's original and crack surface, on the depth network (no solid
        diffusion).
    solver : dict
        Blocks, rejected blocks, network solves and their mean cost, wall time.
    parameters : dict
        The parameters used.
    provenance : Provenance
    plating : dict or None
        Where the plating came from when it came from a resolved charge
        (:meth:`ResolvedPlating.to_dict`: mode, lithium lost per charge, the run's
        plated and dead lithium, crop, the charge); None otherwise.
    cell_capacity_retention : ndarray (k,) or None
        Capacity of the full cell (electrode balance of the ``cell`` set scaled to the
        image) over its value at cycle 0; None without ``cell``.
    degradation_modes : dict of ndarray (k,) or None
        ``LLI``, ``LAM_ne``, ``LAM_pe``: lithium inventory and active material lost,
        as fractions of the cell's initial cyclable lithium and electrode capacities
        (Birkl et al. 2017); None without ``cell``.
    cell_balance : dict or None
        The balance: set, electrode, scale, the inventories ``Q_n_Ah``, ``Q_p_Ah``,
        ``Q_Li_Ah``, cut-offs, the ``initial`` and ``final`` solution (capacity,
        stoichiometry limits ``x_0``, ``x_100``, ``y_0``, ``y_100``, modes),
        ``capacity_Ah_curve``, ``notes``, ``definition``; None without ``cell``.

    Notes
    -----
    ``capacity_retention`` is the imaged electrode's lithium-inventory capacity
    ``(Q_0 − F n_lost − Q_isolated)/Q_0``: every mole lost counts as capacity lost, an
    upper bound of a cell's fade. ``cell_capacity_retention`` is the cell's.
    """

    cycles: int
    c_rate: float
    mechanisms: tuple[str, ...]
    cycle: np.ndarray
    capacity_retention: np.ndarray
    resistance_growth: np.ndarray
    lithium_lost_curve_mol: dict[str, np.ndarray]
    heterogeneity_cov: np.ndarray
    fractured_fraction: np.ndarray
    mean_crack_length_m: np.ndarray
    mean_sei_thickness_m: np.ndarray
    mean_crack_sei_thickness_m: np.ndarray
    lithium_lost_mol: dict[str, float | None]
    capacity_Ah: float
    map_cycles: np.ndarray
    maps: dict[str, np.ndarray]
    depth_profile: np.ndarray
    depth_m: np.ndarray
    particles: dict[str, np.ndarray]
    labels_mid: np.ndarray
    impedance_frequency_Hz: np.ndarray
    impedance_ohm: np.ndarray
    solver: dict[str, Any]
    parameters: dict[str, Any]
    provenance: Provenance = field(default_factory=lambda: Provenance("age"))
    plating: dict[str, Any] | None = None
    cell_capacity_retention: np.ndarray | None = None
    degradation_modes: dict[str, np.ndarray] | None = None
    cell_balance: dict[str, Any] | None = None

    _json_arrays: ClassVar[tuple[str, ...]] = (
        "cycle",
        "capacity_retention",
        "resistance_growth",
        "heterogeneity_cov",
        "fractured_fraction",
        "mean_crack_length_m",
        "mean_sei_thickness_m",
        "mean_crack_sei_thickness_m",
        "map_cycles",
        "cell_capacity_retention",
    )

    @property
    def lithium_inventory_fade(self) -> float:
        """Lithium lost over the electrode's capacity, ``F n_lost / Q_0`` (final)."""
        total = float(self.lithium_lost_mol["total"] or 0.0)
        return FARADAY * total / (3600.0 * self.capacity_Ah)

    @property
    def cell_capacity_fade(self) -> float | None:
        """``1 − Q_cell(N)/Q_cell(0)`` of the electrode balance; None without a cell."""
        if self.cell_capacity_retention is None:
            return None
        return 1.0 - float(self.cell_capacity_retention[-1])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: the curves in full, the per-particle maps summarised."""
        out = super().to_dict()
        out["lithium_lost_curve_mol"] = {
            k: to_jsonable(v) for k, v in self.lithium_lost_curve_mol.items()
        }
        out["maps"] = {k: {"shape": list(v.shape)} for k, v in self.maps.items()}
        out["particles"] = {"count": len(self.particles["radius_m"])}
        out["depth_profile"] = (
            to_jsonable(self.depth_profile)
            if self.depth_profile.size <= 4096
            else {"shape": list(self.depth_profile.shape)}
        )
        out["depth_m"] = to_jsonable(self.depth_m)
        out["labels_mid"] = {"shape": list(self.labels_mid.shape)}
        out["impedance_frequency_Hz"] = to_jsonable(self.impedance_frequency_Hz)
        out["impedance_ohm"] = {
            "cycles": to_jsonable(self.map_cycles),
            "real": to_jsonable(self.impedance_ohm.real),
            "imag": to_jsonable(self.impedance_ohm.imag),
        }
        # kept for compatibility: the electrode's lithium-inventory fade (with isolated
        # particles' capacity when isolate_fractured), not the cell's
        out["capacity_fade"] = to_jsonable(1.0 - float(self.capacity_retention[-1]))
        out["lithium_inventory_fade"] = to_jsonable(self.lithium_inventory_fade)
        out["cell_capacity_fade"] = to_jsonable(self.cell_capacity_fade)
        return out

    def plot(self, what: str = "summary") -> Any:
        """Matplotlib figure: ``"summary"`` (curves, loss split, CoV) or ``"maps"``."""
        from microbat.degradation._aging_output import plot_maps, plot_summary

        return plot_summary(self) if what == "summary" else plot_maps(self)

    def save(self, out: str | Path) -> dict[str, Path]:
        """Write ``result.json``, ``curves.csv``, ``particles.csv`` and the plots to ``out``."""
        from microbat.degradation._aging_output import save_result

        return save_result(self, Path(out))


# ========================================================================= checkpoint
def _fingerprint(geom: AgingGeometry, params: AgingParameters, extra: Mapping[str, Any]) -> str:
    h = hashlib.sha256()
    for arr in (geom.volume_m3, geom.area_m2, geom.layer, geom.porosity):
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update(json.dumps({"params": params.to_dict(), "tau": geom.tortuosity, **extra},
                        sort_keys=True, default=str).encode())  # fmt: skip
    return h.hexdigest()[:32]


def _write_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    from microbat.core.atomic import atomic_path

    arrays = {f"state_{k}": v for k, v in payload["state"].items()}
    arrays.update({f"hist_{k}": np.asarray(v, float) for k, v in payload["hist"].items()})
    for i, (c, m) in enumerate(payload["maps"]):
        arrays[f"map_{i}"] = np.asarray(m, float)
        arrays[f"mapc_{i}"] = np.asarray([c], float)
    meta = {
        k: payload[k] for k in ("version", "fingerprint", "block", "n_maps", "rejected", "blocks")
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def _read_checkpoint(path: Path, fingerprint: str) -> dict[str, Any]:
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            state = {k: np.array(z[f"state_{k}"]) for k in _STATE_KEYS}
            hist = {k: list(np.array(z[f"hist_{k}"])) for k in _HIST_KEYS}
            maps = [
                (int(z[f"mapc_{i}"][0]), np.array(z[f"map_{i}"])) for i in range(meta["n_maps"])
            ]
    except (OSError, KeyError, ValueError) as exc:
        raise FileFormatError(f"{path}: not a readable aging checkpoint ({exc})") from None
    if meta.get("version") != CHECKPOINT_VERSION or meta.get("fingerprint") != fingerprint:
        raise InvalidInputError(
            f"{path} is the checkpoint of another aging problem (image, parameters, C-rate, "
            "mechanisms or cycle-jumping differ); remove it or run without --resume"
        )
    return {"state": state, "hist": hist, "maps": maps, **meta}


# ============================================================================== age
_MAP_FIELDS = (
    "sei_thickness_m", "crack_sei_thickness_m", "crack_length_m",
    "lithium_lost_mol", "degradation_rate", "current_share",
)  # fmt: skip


def age(
    ms: Microstructure | None,
    *,
    cycles: int,
    c_rate: float = 1.0,
    mechanisms: str | Sequence[str] = ("sei", "cracks"),
    params: AgingParameters | None = None,
    particles: Particles | None = None,
    geometry: AgingGeometry | None = None,
    jump: bool = True,
    tolerance: float = 0.01,
    max_block: int | None = None,
    map_cycles: Sequence[int] | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    checkpoint_interval_s: float = 30.0,
    impedance: bool = True,
    frequencies: Sequence[float] | None = None,
    plating: ResolvedPlating | None = None,
    cell: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> AgingResult:
    """Cycle an imaged electrode and follow every particle's SEI, cracks and lithium.

    Parameters
    ----------
    ms : Microstructure or None
        3D labelled electrode (active and electrolyte phases, voxel size); the
        thickness axis runs from the collector (index 0) to the separator. May be
        None when ``geometry`` is given (e.g. :func:`sphere_geometry`).
    cycles : int
        Number of full cycles (> 0).
    c_rate : float, default 1
        C-rate of charge and discharge (1/h) of the electrode's capacity ``Q_0``.
    mechanisms : str or sequence, default ("sei", "cracks")
        Any of ``sei``, ``cracks``, ``plating`` (a negative-electrode material:
        graphite).
    params : AgingParameters, optional
        Constants (default: graphite, O'Kane et al. 2022).
    particles : Particles, optional
        Labelled particles (default: :func:`~microbat.degradation.label_particles`).
    geometry : AgingGeometry, optional
        Precomputed geometry (skips labelling, areas and the tortuosity solve).
    jump : bool, default True
        Cycle-jumping (see the module notes); False: cycle by cycle.
    tolerance : float, default 0.01
        Largest relative change of any particle's drivers within a block.
    max_block : int, optional
        Largest block (default: ``cycles // 50``, at least 1, so curves keep ~50
        points).
    map_cycles : sequence of int, optional
        Cycles of the per-particle maps (default: 0, half-way, the last).
    checkpoint : path, optional
        ``.npz`` file holding the state (written atomically every
        ``checkpoint_interval_s`` and at the end or on interruption).
    resume : bool, default False
        Continue from ``checkpoint`` (same problem; ``cycles`` may be larger).
    checkpoint_interval_s : float, default 30
        Seconds between checkpoints.
    impedance : bool, default True
        Impedance spectrum of the electrode at each map cycle.
    frequencies : sequence of float, optional
        Hz of the spectra (default 100 kHz to 10 mHz, 8 per decade).
    plating : ResolvedPlating, optional
        Lithium lost to plating per particle per charge, from
        :func:`~microbat.degradation._aging_plating.resolved_plating` on this image
        and its particles (used instead of ``params.plating_rate_mol_per_m2_s`` when
        both are given; ignored without the mechanism). With the ``plating``
        mechanism and neither this nor ``params.plating_rate_mol_per_m2_s``, it is
        computed: one resolved charge of
        the whole image at ``c_rate`` (``chen2020`` negative electrode, irreversible
        plating). Held constant over the cycles (module notes).
    cell : str or CellParameters, optional
        A full-cell parameter set (``"okane2022"``, ``"chen2020"``, a BPX file): the
        cell capacity and the degradation modes at every curve point from the
        set's electrode balance scaled to the image
        (:mod:`~microbat.degradation._aging_balance`; PyBaMM's ``ElectrodeSOHSolver``,
        about 20 ms per point). The image is the set's negative electrode for a
        negative-electrode material (graphite), its positive one otherwise. None
        (default): no cell balance (``cell_capacity_retention`` is None).
    progress : callable, optional
        ``progress(cycle, cycles)`` after each accepted block.

    Returns
    -------
    AgingResult

    Raises
    ------
    InvalidInputError
        ``cycles`` ≤ 0, a bad C-rate or tolerance, an unknown mechanism, a parameter
        missing for a chosen mechanism, a checkpoint of another problem.

    Notes
    -----
    Cost: labelling, the interface areas and one tortuosity solve (seconds at 64³),
    then per block two (jumping) or one (cycle by cycle) solves of a banded
    network of ``2 × planes`` unknowns and O(particles) closed forms.

    Examples
    --------
    >>> from microbat.synth import electrode
    >>> ms = electrode((24, 24, 24), voxel_size=1e-6, mean_radius=4e-6, seed=1)
    >>> res = age(ms, cycles=20, c_rate=1.0)
    >>> bool(res.capacity_retention[-1] < 1.0)
    True
    """
    t_start = time.perf_counter()
    try:
        n_cycles = int(cycles)
    except (TypeError, ValueError):
        raise InvalidInputError(f"cycles must be a whole number > 0, got {cycles!r}") from None
    if n_cycles != cycles or n_cycles <= 0:
        raise InvalidInputError(f"cycles must be a whole number > 0, got {cycles!r}")
    c_rate = _positive("c_rate", c_rate)
    tol = _positive("tolerance", tolerance)
    mech = parse_mechanisms(mechanisms)
    params = params or AgingParameters()
    params.require(mech)
    # a given hand-over wins over a constant rate
    want_resolved = "plating" in mech and (
        plating is not None or params.plating_rate_mol_per_m2_s is None
    )
    if want_resolved and plating is None and ms is None:
        raise InvalidInputError(
            "the plating mechanism needs the image (for its resolved charge) or "
            "plating_rate_mol_per_m2_s"
        )
    if geometry is None or (want_resolved and plating is None):
        if ms is None:
            raise InvalidInputError("age needs an image (ms) or a precomputed geometry")
        if particles is None:
            from microbat.degradation.particles import label_particles

            particles = label_particles(ms)
    if geometry is None:
        assert ms is not None and particles is not None
        geometry = aging_geometry(ms, particles)
    geom = geometry
    if want_resolved and plating is None:
        assert ms is not None and particles is not None
        plating = resolved_plating(ms, particles, c_rate=c_rate)
    if not want_resolved:
        plating = None
    if plating is not None and plating.n != geom.n:
        raise InvalidInputError(
            f"the resolved plating has {plating.n} particles, the aging geometry {geom.n}: "
            "give both from the same labelling"
        )
    loop = _Loop(geom, params, c_rate, mech, plating)
    balance = None
    if cell is not None:
        # before the loop: a bad set fails in one line before any work
        lo, hi = params.material.stoichiometry_window  # type: ignore[misc]
        balance = cell_balance(
            cell,
            electrode_capacity_Ah=loop.q0 / (hi - lo) / 3600.0,
            electrode=_electrode_of(params.material.name),
        )
    mblock = max(1, int(max_block) if max_block is not None else n_cycles // 50)
    maps_at = sorted(
        {int(c) for c in (map_cycles if map_cycles is not None else (0, n_cycles // 2, n_cycles))}
    )
    maps_at = [c for c in maps_at if 0 <= c <= n_cycles]
    # max_block is left out: it only sizes blocks, so a run may be extended (more cycles)
    extra: dict[str, Any] = {"c_rate": c_rate, "mech": list(mech), "jump": jump, "tol": tol}
    if plating is not None:
        extra["plating"] = hashlib.sha256(plating.lost_mol.tobytes()).hexdigest()[:16]
    fp = _fingerprint(geom, params, extra)
    ck = Path(checkpoint) if checkpoint is not None else None

    state = loop.initial_state()
    drv0 = loop.drivers(state)
    r0 = float(drv0["resistance"])
    hist: dict[str, list[float]] = {k: [] for k in _HIST_KEYS}
    maps: list[tuple[int, np.ndarray]] = []
    block = 1
    rejected = 0
    blocks = 0

    def record(
        s: Mapping[str, np.ndarray], drv: Mapping[str, np.ndarray], cyc: int, cov: float
    ) -> None:
        ret, lam = loop.capacity(s)
        a_cr = loop.crack_area(s)
        hist["cycle"].append(cyc)
        hist["retention"].append(ret)
        hist["resistance"].append(float(drv["resistance"]) / r0)
        hist["li_o"].append(float(s["li_o"].sum()))
        hist["li_cr"].append(float(s["li_cr"].sum()))
        hist["li_pl"].append(float(s["li_pl"].sum()))
        hist["cov"].append(cov)
        hist["fractured"].append(float(np.mean(s["frac"])))
        hist["mean_crack"].append(float(np.mean(s["a"])))
        ao = geom.area_m2
        hist["mean_sei_o"].append(float(np.sum(ao * s["d_o"]) / np.sum(ao)))
        hist["mean_sei_cr"].append(
            float(np.sum(a_cr * s["d_cr"]) / np.sum(a_cr)) if a_cr.sum() > 0 else math.nan
        )
        hist["lam"].append(lam)

    def snapshot(
        s: Mapping[str, np.ndarray], drv: Mapping[str, np.ndarray], rate: np.ndarray, cyc: int
    ) -> None:
        li = s["li_o"] + s["li_cr"] + s["li_pl"]
        area = geom.area_m2 + loop.crack_area(s)
        m = np.stack(
            [s["d_o"], s["d_cr"], s["a"], li, rate, drv["share"], area, s["frac_area"], s["frac"]]
        )
        maps.append((cyc, m))

    if ck is not None and resume and ck.is_file():
        saved = _read_checkpoint(ck, fp)
        state, hist, maps = (
            saved["state"],
            {k: list(v) for k, v in saved["hist"].items()},
            saved["maps"],
        )
        block, rejected, blocks = int(saved["block"]), int(saved["rejected"]), int(saved["blocks"])
        hist["cycle"] = [int(c) for c in hist["cycle"]]
    else:
        rate0, area0 = loop.lithium_loss_rate(state, drv0)
        record(state, drv0, 0, _cov(rate0, area0))
        if 0 in maps_at:
            snapshot(state, drv0, rate0, 0)

    def save_ck() -> None:
        if ck is None:
            return
        _write_checkpoint(ck, {
            "version": CHECKPOINT_VERSION, "fingerprint": fp, "block": block,
            "n_maps": len(maps), "rejected": rejected, "blocks": blocks,
            "state": state, "hist": hist, "maps": maps,
        })  # fmt: skip

    last_ck = time.perf_counter()
    done = int(hist["cycle"][-1])
    try:
        drv = loop.drivers(state) if done < n_cycles else drv0
        while done < n_cycles:
            stops = [c for c in maps_at if c > done] + [n_cycles]
            limit = min(stops) - done
            if not jump:
                n = 1
                new = loop.advance(state, 1, drv)
            else:
                n = max(1, min(block, mblock, limit))
                while True:
                    trial = loop.advance(state, n, drv)
                    drv1 = loop.drivers(trial)
                    change = _driver_change(drv, drv1)
                    if change > tol and n > 1:
                        rejected += 1
                        n = max(1, n // 2)
                        continue
                    mean = {k: 0.5 * (drv[k] + drv1[k]) for k in ("dsig", "rfac")}
                    new = loop.advance(state, n, mean)
                    block = n * 2 if change < 0.25 * tol else n
                    break
            blocks += 1
            done += n
            state = new
            drv = loop.drivers(state)  # the drivers of the next block's start
            rate, area = loop.lithium_loss_rate(state, drv)
            record(state, drv, done, _cov(rate, area))
            if done in maps_at:
                snapshot(state, drv, rate, done)
            if progress is not None:
                progress(done, n_cycles)
            if ck is not None and time.perf_counter() - last_ck > checkpoint_interval_s:
                save_ck()
                last_ck = time.perf_counter()
    except KeyboardInterrupt:
        save_ck()
        raise
    save_ck()

    cyc = np.asarray(hist["cycle"], np.int64)
    li_o, li_cr, li_pl = (np.asarray(hist[k], float) for k in ("li_o", "li_cr", "li_pl"))
    plating_on = "plating" in mech
    lost = {
        "sei_original": float(li_o[-1]),
        "sei_cracks": float(li_cr[-1]),
        "plating": float(li_pl[-1]) if plating_on else None,
        "total": float(li_o[-1] + li_cr[-1] + li_pl[-1]),
    }
    m_cycles = np.asarray([c for c, _ in maps], np.int64)
    stack = np.stack([m for _, m in maps], axis=0) if maps else np.zeros((0, 9, geom.n))
    maps_out = {name: stack[:, i, :] for i, name in enumerate(_MAP_FIELDS)}
    maps_out["interface_area_m2"] = stack[:, 6, :]
    profiles = (
        np.stack([_depth_profile(np.nan_to_num(m[4]), m[6], geom) for _, m in maps])
        if maps
        else np.zeros((0, geom.n_layers))
    )
    freqs = np.zeros(0)
    z = np.zeros((0, 0), np.complex128)
    if impedance and maps:
        from microbat.cell.eis.result import default_frequencies

        freqs = default_frequencies() if frequencies is None else np.asarray(frequencies, float)
        z = np.stack(
            [
                loop.impedance(
                    {"d_o": m[0], "d_cr": m[1], "a": m[2], "frac_area": m[7], "frac": m[8]},
                    freqs,
                )
                for _, m in maps
            ]
        )
    cell_out: dict[str, Any] | None = None
    if balance is not None:
        bc = balance_curve(
            balance,
            FARADAY * (li_o + li_cr + li_pl) / 3600.0,
            np.asarray(hist["lam"], float) / loop.q0,
        )
        cell_out = {**balance.to_dict(), **bc}
    wall = time.perf_counter() - t_start
    solver = {
        "jump": bool(jump),
        "tolerance": tol,
        "max_block": mblock,
        "blocks": blocks,
        "rejected_blocks": rejected,
        "network_solves": loop.network_solves,
        "network_solve_s": loop.network_time / max(loop.network_solves, 1),
        "planes": geom.n_layers,
        "particles": geom.n,
        "tortuosity": geom.tortuosity,
        "cycle_time_s": loop.t_cycle,
        "wall_time_s": wall,
    }
    if plating is not None:
        solver["plating_charge_s"] = float(plating.charge.get("wall_s", math.nan))
    prov = Provenance(
        "microbat.degradation.age",
        {"cycles": n_cycles, "c_rate": c_rate, "mechanisms": list(mech), "jump": jump,
         "tolerance": tol, "max_block": mblock,
         "plating": ({k: v for k, v in plating.key().items() if k != "labels_sha256"}
                     if plating is not None else None)},
        wall_time_s=wall,
        inputs={"shape": list(ms.shape) if ms is not None else None, "fingerprint": fp},
    )  # fmt: skip
    return AgingResult(
        cycles=n_cycles,
        c_rate=c_rate,
        mechanisms=mech,
        cycle=cyc,
        capacity_retention=np.asarray(hist["retention"], float),
        resistance_growth=np.asarray(hist["resistance"], float),
        lithium_lost_curve_mol={"sei_original": li_o, "sei_cracks": li_cr, "plating": li_pl},
        heterogeneity_cov=np.asarray(hist["cov"], float),
        fractured_fraction=np.asarray(hist["fractured"], float),
        mean_crack_length_m=np.asarray(hist["mean_crack"], float),
        mean_sei_thickness_m=np.asarray(hist["mean_sei_o"], float),
        mean_crack_sei_thickness_m=np.asarray(hist["mean_sei_cr"], float),
        lithium_lost_mol=lost,
        capacity_Ah=loop.q0 / 3600.0,
        map_cycles=m_cycles,
        maps=maps_out,
        depth_profile=profiles,
        depth_m=(np.arange(geom.n_layers) + 0.5) * geom.layer_thickness_m,
        particles={
            "radius_m": geom.radius_m,
            "volume_m3": geom.volume_m3,
            "area_m2": geom.area_m2,
            "depth_m": geom.depth_m,
        },
        labels_mid=geom.labels_mid,
        impedance_frequency_Hz=freqs,
        impedance_ohm=z,
        solver=solver,
        parameters=params.to_dict(),
        provenance=prov,
        plating=plating.to_dict() if plating is not None else None,
        cell_capacity_retention=(
            np.asarray(cell_out["retention"], float) if cell_out is not None else None
        ),
        degradation_modes=(
            {k: np.asarray(cell_out[k], float) for k in ("LLI", "LAM_ne", "LAM_pe")}
            if cell_out is not None
            else None
        ),
        cell_balance=_balance_summary(cell_out) if cell_out is not None else None,
    )


def _electrode_of(material: str) -> str:
    """The electrode of the set a material plays: graphite the negative, others the positive."""
    return "negative" if str(material).lower() in ("graphite",) else "positive"


def _balance_summary(c: Mapping[str, Any]) -> dict[str, Any]:
    """The cell balance's scalars: set, inventories, the first and last solution."""
    out = {
        k: c[k]
        for k in ("parameter_set", "electrode", "scale", "Q_n_Ah", "Q_p_Ah", "Q_Li_Ah", "V_min",
                  "V_max", "notes")
    }  # fmt: skip
    for tag, i in (("initial", 0), ("final", -1)):
        out[tag] = {
            k: float(np.asarray(c[k])[i])
            for k in ("capacity_Ah", "x_0", "x_100", "y_0", "y_100", "LLI", "LAM_ne", "LAM_pe",
                      "isolated_lithium_Ah")
        }  # fmt: skip
    out["capacity_Ah_curve"] = np.asarray(c["capacity_Ah"], float)
    out["definition"] = (
        "equilibrium capacity between the set's cut-off voltages of the set's cell scaled "
        "to the imaged electrode (PyBaMM ElectrodeSOHSolver, Mohtat et al. 2019), with the "
        "cyclable lithium less the lithium lost and the imaged electrode less its isolated "
        "particles; LLI, LAM_ne, LAM_pe as fractions of the initial inventories (Birkl et "
        "al. 2017)"
    )
    return out


def _driver_change(d0: Mapping[str, np.ndarray], d1: Mapping[str, np.ndarray]) -> float:
    """Largest relative change of the stress amplitudes and SEI-rate factors."""
    worst = 0.0
    for k in ("dsig", "rfac"):
        a, b = np.asarray(d0[k], float), np.asarray(d1[k], float)
        scale = np.maximum(np.abs(a), 1e-300)
        sel = np.abs(a) > 0
        if np.any(sel):
            worst = max(worst, float(np.max(np.abs(b[sel] - a[sel]) / scale[sel])))
    return worst
