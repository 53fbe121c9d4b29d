r"""Fatigue crack growth in particles: Paris law, its closed forms, fracture, crack surface.

Law
---
A surface crack of length ``a`` in a particle whose surface hoop stress swings
between 0 and ``Δσ`` each cycle (the tensile half of the cycle; compression does not
open the crack) grows by the Paris law (Paris & Erdogan 1963), as in the cycling
models of Deshpande et al. (2012), Ai et al. (2020) and O'Kane et al. (2022):

.. math::

    \frac{da}{dN} = k\,(ΔK)^m, \qquad ΔK = Y Δσ \sqrt{π a}.

Closed forms for a constant stress amplitude (``B = k (Y Δσ \sqrt{π})^m``, so
``da/dN = B a^{m/2}``; separate and integrate ``a^{-m/2} da = B dN``):

* ``m ≠ 2``: ``a(N)^{1 − m/2} = a_0^{1 − m/2} + (1 − m/2) B N``; for ``m > 2`` the
  crack runs away at ``N_∞ = a_0^{1 − m/2} / ((m/2 − 1) B)``;
* ``m = 2``: ``a(N) = a_0 \exp(B N)``;
* a constant ``ΔK`` (no dependence on ``a``): ``a(N) = a_0 + k ΔK^m N``.

Fracture: the crack becomes unstable when the peak stress intensity reaches the
toughness, ``Y σ_max \sqrt{π a} ≥ K_IC`` (Griffith/Irwin), i.e. at the critical length
``a_c = (K_IC / (Y σ_max))² / π`` (:func:`critical_length`).

Crack surface
-------------
Cracks are slots of depth ``a`` and opening ``w``, ``ρ_cr`` of them per m² of
particle surface (Deshpande et al. 2012; Ai et al. 2020; PyBaMM's "roughness ratio"):
each exposes its two faces, ``2 a w`` per crack, so the crack area of a particle of
surface ``A`` is ``A_cr = 2 a w ρ_cr A`` (:func:`crack_area`).

Default constants (:class:`CrackParameters`)
-------------------------------------------
The O'Kane et al. (2022) set for graphite (PyBaMM ``OKane2022``, from Deshpande
et al. 2012 and Ai et al. 2020): ``k = 3.9e-20`` m/(Pa √m)^m per cycle, ``m = 2.2``,
``Y = 1.12``, initial crack length 20 nm, crack width 15 nm, ``ρ_cr = 3.18e15``
m⁻². PyBaMM integrates ``da/dt = k ΔK^m / 3600 s`` over time, i.e. one Paris cycle per
hour of tensile stress (a 1C cycle); here the law is applied per cycle with the
cycle's peak tensile stress by default (``basis="cycle"``), or in PyBaMM's way
(``basis="hour"``: the aging loop then uses the amplitude whose ``m``-th power is the
time integral of the stress history's, see :mod:`microbat.degradation.aging`). The
fracture toughness comes from the material
(:class:`~microbat.degradation.parameters.MechanicalMaterial`).

References
----------
.. [1] P. Paris, F. Erdogan, "A critical analysis of crack propagation laws",
   J. Basic Eng. 85, 528–533 (1963), doi:10.1115/1.3656900.
.. [2] R. Deshpande, M. Verbrugge, Y.-T. Cheng, J. Wang, P. Liu, "Battery cycle life
   prediction with coupled chemical degradation and fatigue mechanics",
   J. Electrochem. Soc. 159, A1730 (2012), doi:10.1149/2.049210jes.
.. [3] W. Ai, L. Kraft, J. Sturm, A. Jossen, B. Wu, "Electrochemical thermal-mechanical
   modelling of stress inhomogeneity in lithium-ion pouch cells", J. Electrochem.
   Soc. 167, 013512 (2020), doi:10.1149/2.0122001JES.
.. [4] S. E. J. O'Kane et al., "Lithium-ion battery degradation: how to model it",
   Phys. Chem. Chem. Phys. 24, 7909–7922 (2022), doi:10.1039/D2CP00417H.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from microbat.core.errors import InvalidInputError

__all__ = [
    "CrackParameters",
    "crack_area",
    "critical_length",
    "cycles_to_length",
    "paris_constant_dk",
    "paris_length",
]


@dataclass(frozen=True)
class CrackParameters:
    """Paris-law and crack-geometry constants (defaults: O'Kane et al. 2022).

    Attributes
    ----------
    paris_k : float
        ``k`` in m per cycle per (Pa √m)^m.
    paris_m : float
        Exponent ``m``.
    geometry_factor : float
        ``Y`` of ``ΔK = Y Δσ √(π a)``.
    initial_length_m : float
        Crack length at cycle 0.
    width_m : float
        Crack opening ``w``.
    density_per_m2 : float
        Cracks per m² of particle surface.
    basis : {"cycle", "hour"}
        ``"cycle"``: one Paris step per cycle with the cycle's peak tensile stress;
        ``"hour"``: PyBaMM's convention, ``da/dt = k ΔK(t)^m / 3600 s`` integrated
        over the time the surface is in tension (one Paris step per hour of tension,
        with the stress of every instant).
    """

    paris_k: float = 3.9e-20
    paris_m: float = 2.2
    geometry_factor: float = 1.12
    initial_length_m: float = 2e-8
    width_m: float = 1.5e-8
    density_per_m2: float = 3.18e15
    basis: Literal["cycle", "hour"] = "cycle"

    def __post_init__(self) -> None:
        if self.basis not in ("cycle", "hour"):
            raise InvalidInputError(f"cracks.basis must be 'cycle' or 'hour', got {self.basis!r}")
        for f in dataclasses.fields(self):
            if f.name == "basis":
                continue
            v = getattr(self, f.name)
            try:
                x = float(v)
            except (TypeError, ValueError):
                raise InvalidInputError(f"cracks.{f.name} must be a number, got {v!r}") from None
            if not (math.isfinite(x) and x > 0):
                raise InvalidInputError(f"cracks.{f.name} must be positive and finite, got {v!r}")
            object.__setattr__(self, f.name, x)

    def replace(self, **changes: Any) -> CrackParameters:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return dataclasses.asdict(self)


def _b(delta_sigma: np.ndarray, params: CrackParameters) -> np.ndarray:
    ds = np.maximum(np.asarray(delta_sigma, float), 0.0)
    return params.paris_k * (params.geometry_factor * ds * math.sqrt(math.pi)) ** params.paris_m


def paris_length(
    initial_m: np.ndarray | float,
    cycles: np.ndarray | float,
    delta_sigma_Pa: np.ndarray | float,
    params: CrackParameters,
) -> np.ndarray:
    """Crack length after ``cycles`` at a constant stress amplitude (closed form).

    Parameters
    ----------
    initial_m : array-like
        Crack length at the start (m, > 0).
    cycles : array-like
        Number of cycles (≥ 0, may be fractional).
    delta_sigma_Pa : array-like
        Tensile stress amplitude (Pa); ≤ 0 gives no growth.
    params : CrackParameters

    Returns
    -------
    ndarray
        Crack length in m; ``inf`` past the run-away cycle of ``m > 2``.

    Examples
    --------
    >>> p = CrackParameters(paris_m=2.0)
    >>> a = paris_length(1e-8, 100, 1e7, p)
    >>> b = 1e-8 * np.exp(p.paris_k * (1.12 * 1e7) ** 2 * np.pi * 100)
    >>> bool(abs(a - b) < 1e-20)
    True
    """
    a0 = np.asarray(initial_m, float)
    n = np.asarray(cycles, float)
    b = _b(delta_sigma_Pa, params)
    m = params.paris_m
    if abs(m - 2.0) < 1e-12:
        return a0 * np.exp(b * n)
    e = 1.0 - m / 2.0
    base = a0**e + e * b * n
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(base > 0, np.abs(base) ** (1.0 / e), np.inf)
    return out


def paris_constant_dk(
    initial_m: np.ndarray | float,
    cycles: np.ndarray | float,
    delta_k: np.ndarray | float,
    params: CrackParameters,
) -> np.ndarray:
    """Crack length after ``cycles`` at a constant ``ΔK`` (Pa √m): ``a_0 + k ΔK^m N``."""
    dk = np.maximum(np.asarray(delta_k, float), 0.0)
    return np.asarray(initial_m, float) + params.paris_k * dk**params.paris_m * np.asarray(
        cycles, float
    )


def cycles_to_length(
    initial_m: np.ndarray | float,
    final_m: np.ndarray | float,
    delta_sigma_Pa: np.ndarray | float,
    params: CrackParameters,
) -> np.ndarray:
    """Cycles for a crack to grow from ``initial_m`` to ``final_m`` at constant ``Δσ``.

    ``inf`` where ``Δσ ≤ 0``; 0 where ``final ≤ initial``.
    """
    a0 = np.asarray(initial_m, float)
    a1 = np.maximum(np.asarray(final_m, float), a0)
    b = _b(delta_sigma_Pa, params)
    m = params.paris_m
    with np.errstate(divide="ignore", invalid="ignore"):
        if abs(m - 2.0) < 1e-12:
            n = np.log(a1 / a0) / b
        else:
            e = 1.0 - m / 2.0
            n = (a1**e - a0**e) / (e * b)
    return np.where(b > 0, n, np.where(a1 > a0, np.inf, 0.0))


def critical_length(
    peak_stress_Pa: np.ndarray | float, toughness_Pa_sqrt_m: float, params: CrackParameters
) -> np.ndarray:
    """``a_c = (K_IC / (Y σ))² / π``: the crack length at which the particle fractures."""
    s = np.asarray(peak_stress_Pa, float)
    with np.errstate(divide="ignore", over="ignore"):
        return np.where(
            s > 0,
            (toughness_Pa_sqrt_m / (params.geometry_factor * np.where(s > 0, s, 1.0))) ** 2
            / math.pi,
            np.inf,
        )


def crack_area(
    length_m: np.ndarray | float, surface_m2: np.ndarray | float, params: CrackParameters
) -> np.ndarray:
    """Crack-face area ``2 a w ρ_cr A`` (m²) of particles of surface ``A``."""
    return (
        2.0
        * np.asarray(length_m, float)
        * params.width_m
        * params.density_per_m2
        * np.asarray(surface_m2, float)
    )
