r"""Growth of the solid-electrolyte interphase (SEI): closed forms, lithium lost, film resistance.

Laws
----
The SEI is a film of thickness ``δ`` on the active/electrolyte interface. Lithium is
consumed at the molar rate ``N`` per unit area (mol m⁻² s⁻¹); ``1/z`` mole of SEI forms
per mole of lithium (``z`` = :attr:`SEIParameters.lithium_per_sei`), so the film
thickens at ``dδ/dt = V̄ N / z`` (``V̄`` the partial molar volume of the SEI). Three
rate laws, the ones of PyBaMM's SEI submodels and of O'Kane et al. (2022):

* **solvent-diffusion limited** (Ploehn, Ramadass & White 2004; Single, Latz &
  Horstmann 2018): the solvent diffuses through the film to the reaction site,
  ``N = D_sol c_sol / δ``, so ``dδ/dt = k_D / δ`` with ``k_D = V̄ D_sol c_sol / z`` and

  .. math:: δ(t) = \sqrt{δ_0^2 + 2 k_D t}   \qquad (\sqrt t \text{ law}).

* **reaction limited** (Safari et al. 2009; Yang et al. 2017): a Tafel reaction at
  the film surface, ``N = (j_{0,SEI}/F) \exp(α F η_{SEI} / R T)``, independent of
  ``δ``: ``dδ/dt = k_R`` and ``δ(t) = δ_0 + k_R t`` (linear growth).
  ``η_SEI = U_SEI − (φ_s − φ_e)`` is the driving overpotential; its mean over a cycle
  is the parameter :attr:`SEIParameters.driving_overpotential_V`. A particle whose
  charge-transfer overpotential is ``±η`` during the two halves of a symmetric
  cycle sees the mean factor ``cosh(α F η / R T)`` on top (the hook through which
  the current distribution drives SEI growth; :func:`reaction_factor`).

* **mixed** (Single et al. 2018; PyBaMM's "ec reaction limited"): diffusion and
  reaction in series, ``1/N = 1/N_R + δ/(D_sol c_sol)``, so
  ``dδ/dt = 1/(1/k_R + δ/k_D)``; integrating ``(1/k_R + δ/k_D) dδ = dt``:

  .. math:: \frac{δ}{k_R} + \frac{δ^2}{2 k_D} = \frac{δ_0}{k_R} + \frac{δ_0^2}{2 k_D} + t,

  the positive root of a quadratic; tends to the linear law while ``δ ≪ k_D/k_R``
  and to the √t law beyond.

Every law is integrated exactly over a time span with constant rate parameters, so
:func:`grow` is free of time-step error.

Lithium lost and film resistance
--------------------------------
A film that grows from ``δ_a`` to ``δ_b`` on the area ``A`` holds
``ΔV = A (δ_b − δ_a)`` more SEI, i.e. ``ΔV / V̄`` moles of SEI and
``z ΔV / V̄`` moles of lithium (:func:`lithium_from_volume`; PyBaMM's "Loss of
lithium to SEI"). The film adds the area-specific resistance
``R_f = ρ_SEI δ`` (Ω m², ``ρ_SEI`` the ionic resistivity; :func:`film_resistance`).

Default constants (:class:`SEIParameters`)
------------------------------------------
O'Kane et al. (2022), the PyBaMM parameter set ``OKane2022`` (graphite negative
electrode of an LG M50 cell at 25 °C): ``D_sol = 2.5e-22`` m² s⁻¹,
``c_sol = 2636`` mol m⁻³, ``V̄ = 9.585e-5`` m³ mol⁻¹, ``z = 1``, ``δ_0 = 5`` nm,
``ρ_SEI = 2e5`` Ω m, ``j_0,SEI = 1.5e-7`` A m⁻² (from Safari et al. 2009),
``α = 0.5``, initial SEI thickness on fresh crack faces ``5e-13`` m (the set's
"Initial SEI on cracks thickness"). The mean driving overpotential of the
reaction-limited law, 0.2 V, is ``U_SEI = 0.4`` V (the set's SEI open-circuit
potential) minus a graphite potential of ≈ 0.2 V vs Li averaged over a full cycle
(Chen et al. 2020's graphite OCP is 0.09–0.25 V over most of its window): an
estimate, to be fitted to calendar data. The film's relative permittivity, 5, is the
order Peled and co-workers use to turn measured SEI capacitances into thicknesses; it
gives 0.9 µF/cm² at 5 nm, inside their measured 0.1–2 µF/cm² (Peled et al. 2011); it
enters the impedance only (the film's arc sits at ``1/(2π ρ_SEI ε_0 ε_r)`` ≈ 18 kHz
whatever its thickness).

References
----------
.. [1] H. J. Ploehn, P. Ramadass, R. E. White, "Solvent diffusion model for aging of
   lithium-ion battery cells", J. Electrochem. Soc. 151, A456 (2004),
   doi:10.1149/1.1644601.
.. [2] F. Single, A. Latz, B. Horstmann, "Identifying the mechanism of continued
   growth of the solid–electrolyte interphase", ChemSusChem 11, 1950–1955 (2018),
   doi:10.1002/cssc.201800077.
.. [3] M. Safari, M. Morcrette, A. Teyssot, C. Delacourt, "Multimodal physics-based
   aging model for life prediction of Li-ion batteries", J. Electrochem. Soc. 156,
   A145 (2009), doi:10.1149/1.3043429.
.. [4] X.-G. Yang, Y. Leng, G. Zhang, S. Ge, C.-Y. Wang, "Modeling of lithium plating
   induced aging of lithium-ion batteries: transition from linear to nonlinear
   aging", J. Power Sources 360, 28–40 (2017), doi:10.1016/j.jpowsour.2017.05.110.
.. [5] S. E. J. O'Kane et al., "Lithium-ion battery degradation: how to model it",
   Phys. Chem. Chem. Phys. 24, 7909–7922 (2022), doi:10.1039/D2CP00417H.
.. [6] E. Peled, D. Golodnitsky, J. Penciner, "The anode/electrolyte interface", in
   *Handbook of Battery Materials*, 2nd ed., C. Daniel, J. O. Besenhard (eds.),
   Wiley-VCH (2011), ch. 16, doi:10.1002/9783527637188.ch16.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from microbat.core.constants import FARADAY
from microbat.core.errors import InvalidInputError

__all__ = [
    "SEI_LAWS",
    "SEIParameters",
    "film_impedance",
    "film_resistance",
    "grow",
    "lithium_from_volume",
    "rate_constants",
    "reaction_factor",
]

#: Molar gas constant, J/(mol K) (CODATA 2018).
GAS_CONSTANT = 8.314462618

#: Vacuum permittivity, F/m (CODATA 2018).
VACUUM_PERMITTIVITY = 8.8541878128e-12

SEILaw = Literal["solvent-diffusion", "reaction", "mixed"]
#: Names of the growth laws.
SEI_LAWS: tuple[str, ...] = ("solvent-diffusion", "reaction", "mixed")

_FIELDS_OF_LAW: dict[str, tuple[str, ...]] = {
    "solvent-diffusion": ("solvent_diffusivity_m2_per_s", "solvent_concentration_mol_per_m3"),
    "reaction": ("exchange_current_density_A_per_m2", "transfer_coefficient"),
    "mixed": (
        "solvent_diffusivity_m2_per_s",
        "solvent_concentration_mol_per_m3",
        "exchange_current_density_A_per_m2",
        "transfer_coefficient",
    ),
}


@dataclass(frozen=True)
class SEIParameters:
    """SEI growth constants (SI units; defaults: O'Kane et al. 2022, see module notes).

    Attributes
    ----------
    law : {"solvent-diffusion", "reaction", "mixed"}
        Growth law.
    solvent_diffusivity_m2_per_s : float or None
        ``D_sol``, solvent diffusivity through the film.
    solvent_concentration_mol_per_m3 : float or None
        ``c_sol``, bulk solvent (EC) concentration.
    exchange_current_density_A_per_m2 : float or None
        ``j_0,SEI`` of the reaction-limited law.
    transfer_coefficient : float or None
        ``α`` of the SEI reaction.
    driving_overpotential_V : float
        Cycle-mean ``U_SEI − (φ_s − φ_e)`` of the reaction-limited law.
    partial_molar_volume_m3_per_mol : float
        ``V̄`` of the SEI.
    lithium_per_sei : float
        ``z``, moles of lithium per mole of SEI.
    resistivity_ohm_m : float
        ``ρ_SEI``; the film's area resistance is ``ρ_SEI δ``.
    initial_thickness_m : float
        ``δ_0`` on the original particle surface.
    crack_initial_thickness_m : float
        SEI thickness given to freshly exposed crack faces.
    temperature_K : float
        Temperature of the reaction-limited law's ``F/RT``.
    relative_permittivity : float
        ``ε_r`` of the film; its capacitance per area is ``ε_0 ε_r / δ`` (impedance only).
    """

    law: SEILaw = "solvent-diffusion"
    solvent_diffusivity_m2_per_s: float | None = 2.5e-22
    solvent_concentration_mol_per_m3: float | None = 2636.0
    exchange_current_density_A_per_m2: float | None = 1.5e-7
    transfer_coefficient: float | None = 0.5
    driving_overpotential_V: float = 0.2
    partial_molar_volume_m3_per_mol: float = 9.585e-5
    lithium_per_sei: float = 1.0
    resistivity_ohm_m: float = 2.0e5
    initial_thickness_m: float = 5e-9
    crack_initial_thickness_m: float = 5e-13
    temperature_K: float = 298.15
    relative_permittivity: float = 5.0

    def __post_init__(self) -> None:
        if self.law not in SEI_LAWS:
            raise InvalidInputError(
                f"unknown SEI law {self.law!r}; use one of {', '.join(SEI_LAWS)}"
            )
        for f in dataclasses.fields(self):
            if f.name in ("law", "driving_overpotential_V"):
                continue
            v = getattr(self, f.name)
            if v is None:
                continue
            try:
                x = float(v)
            except (TypeError, ValueError):
                raise InvalidInputError(f"sei.{f.name} must be a number, got {v!r}") from None
            if not (math.isfinite(x) and x > 0):
                raise InvalidInputError(f"sei.{f.name} must be positive and finite, got {v!r}")
            object.__setattr__(self, f.name, x)
        eta = float(self.driving_overpotential_V)
        if not math.isfinite(eta):
            raise InvalidInputError("sei.driving_overpotential_V must be finite")
        object.__setattr__(self, "driving_overpotential_V", eta)

    def require(self) -> None:
        """Raise a one-line error naming a constant the chosen law needs but lacks."""
        for name in _FIELDS_OF_LAW[self.law]:
            if getattr(self, name) is None:
                raise InvalidInputError(
                    f"the {self.law} SEI law needs sei.{name}, which is not set; give it in "
                    "the parameter file or choose another law"
                )

    def replace(self, **changes: Any) -> SEIParameters:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return dataclasses.asdict(self)


def rate_constants(params: SEIParameters) -> tuple[float, float]:
    """``(k_D, k_R)``: ``dδ/dt = k_D/δ`` (diffusion) and ``k_R`` (reaction), in SI units.

    A constant the law does not use is returned as ``nan``.
    """
    params.require()
    vz = params.partial_molar_volume_m3_per_mol / params.lithium_per_sei
    kd = kr = math.nan
    if params.law in ("solvent-diffusion", "mixed"):
        kd = vz * params.solvent_diffusivity_m2_per_s * params.solvent_concentration_mol_per_m3  # type: ignore[operator]
    if params.law in ("reaction", "mixed"):
        f_rt = FARADAY / (GAS_CONSTANT * params.temperature_K)
        n_r = (
            params.exchange_current_density_A_per_m2  # type: ignore[operator]
            / FARADAY
            * math.exp(params.transfer_coefficient * f_rt * params.driving_overpotential_V)  # type: ignore[operator]
        )
        kr = vz * n_r
    return kd, kr


def reaction_factor(
    overpotential_V: np.ndarray | float, params: SEIParameters
) -> np.ndarray | float:
    """Cycle-mean enhancement ``cosh(α F η / R T)`` of the reaction-limited rate.

    ``η`` is the particle's charge-transfer overpotential magnitude, ``+η`` on the
    SEI's driving force in one half of the cycle and ``−η`` in the other.
    Returns 1 for the solvent-diffusion law.
    """
    if params.law == "solvent-diffusion":
        return np.ones_like(np.asarray(overpotential_V, float))
    f_rt = FARADAY / (GAS_CONSTANT * params.temperature_K)
    return np.cosh(params.transfer_coefficient * f_rt * np.asarray(overpotential_V, float))  # type: ignore[operator]


def grow(
    thickness_m: np.ndarray | float,
    time_s: float,
    params: SEIParameters,
    *,
    reaction_scale: np.ndarray | float = 1.0,
) -> np.ndarray:
    """Film thickness after ``time_s`` seconds of growth (exact for constant rates).

    Parameters
    ----------
    thickness_m : array-like
        Thickness at the start (m, > 0).
    time_s : float
        Duration (s, ≥ 0).
    params : SEIParameters
        Law and constants.
    reaction_scale : array-like, default 1
        Factor on the reaction rate ``k_R`` (per element; e.g. :func:`reaction_factor`).

    Returns
    -------
    ndarray
        Thickness in m.

    Examples
    --------
    >>> p = SEIParameters()
    >>> kd, _ = rate_constants(p)
    >>> d = grow(5e-9, 3600.0, p)
    >>> bool(abs(d - (25e-18 + 2 * kd * 3600) ** 0.5) < 1e-20)
    True
    """
    d0 = np.asarray(thickness_m, float)
    t = float(time_s)
    if t < 0 or not math.isfinite(t):
        raise InvalidInputError(f"SEI growth time must be >= 0, got {time_s!r}")
    kd, kr = rate_constants(params)
    if params.law == "solvent-diffusion":
        return np.sqrt(d0 * d0 + 2.0 * kd * t)
    kr_eff = kr * np.asarray(reaction_scale, float)
    if params.law == "reaction":
        return d0 + kr_eff * t
    # mixed: δ²/(2 k_D) + δ/k_R = C, C = δ0²/(2 k_D) + δ0/k_R + t
    b = 1.0 / kr_eff
    c = d0 * d0 / (2.0 * kd) + d0 * b + t
    # positive root of δ²/(2kd) + b δ − c = 0, written without cancellation
    return 2.0 * c / (b + np.sqrt(b * b + 2.0 * c / kd))


def lithium_from_volume(volume_m3: np.ndarray | float, params: SEIParameters) -> np.ndarray:
    """Moles of lithium bound in ``volume_m3`` of SEI: ``z V / V̄``."""
    return (
        params.lithium_per_sei
        * np.asarray(volume_m3, float)
        / params.partial_molar_volume_m3_per_mol
    )


def film_impedance(
    thickness_m: np.ndarray | float, omega: np.ndarray | float, params: SEIParameters
) -> np.ndarray:
    """Area-specific film impedance ``ρδ / (1 + jω ρ ε_0 ε_r)`` (Ω m²): ``R_f ∥ C_f``.

    ``thickness_m`` and ``omega`` broadcast (e.g. ``(n_freq, 1)`` against ``(n,)``).
    """
    r = params.resistivity_ohm_m * np.asarray(thickness_m, float)
    tau = params.resistivity_ohm_m * VACUUM_PERMITTIVITY * params.relative_permittivity
    return r / (1.0 + 1j * np.asarray(omega, float) * tau)


def film_resistance(thickness_m: np.ndarray | float, params: SEIParameters) -> np.ndarray:
    """Area-specific film resistance ``ρ_SEI δ`` in Ω m²."""
    return params.resistivity_ohm_m * np.asarray(thickness_m, float)
