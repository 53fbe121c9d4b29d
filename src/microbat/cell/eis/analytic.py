r"""Closed-form impedances: Randles interface, de Levie pore, two-rail transmission line.

All functions take angular frequencies ``ω`` (rad/s) and return complex
impedances with the engineering sign convention (``Im Z < 0`` for capacitive
behaviour, ``Z = R + 1/(jωC)``).

Equations
---------
Randles circuit (flat electrode of area ``A``, series resistance ``R_s``)

.. math::  Z = R_s + \frac{1}{A \, Y(\omega)}.

Two-rail transmission line of length ``L`` (Paasch, Micka and Gersdorf [1]_,
Bisquert [2]_): electrolyte resistance ``r_1`` and solid resistance ``r_2`` per
length (Ω/m), interfacial impedance ``ζ`` times length (Ω m), current entering the
solid at ``x = 0`` (current collector) and leaving the electrolyte at ``x = L``
(separator); with ``λ = \sqrt{ζ / (r_1 + r_2)}``

.. math::

    Z = \frac{r_1 r_2}{r_1 + r_2}\Big(L + \frac{2\lambda}{\sinh(L/\lambda)}\Big)
      + \lambda \frac{r_1^2 + r_2^2}{r_1 + r_2} \coth(L/\lambda).

With ``r_2 = 0`` it is de Levie's pore [3]_, ``Z = \sqrt{r_1 ζ} \coth(L \sqrt{r_1/ζ})``:
a 45° line ``\sqrt{r_1 ζ}`` at high frequency and, for a blocking pore
(``ζ = 1/(jωC')``), ``R_{ion}/3 + 1/(jω C' L)`` at low frequency with
``R_ion = r_1 L``.

References
----------
.. [1] G. Paasch, K. Micka and P. Gersdorf, "Theory of the electrochemical
   impedance of macrohomogeneous porous electrodes", Electrochim. Acta 38,
   2653-2662 (1993).
.. [2] J. Bisquert, "Influence of the boundaries in the impedance of porous film
   electrodes", Phys. Chem. Chem. Phys. 2, 4185-4192 (2000).
.. [3] R. de Levie, "On porous electrodes in electrolyte solutions",
   Electrochim. Acta 8, 751-780 (1963).
"""

from __future__ import annotations

import numpy as np

__all__ = ["de_levie", "randles", "transmission_line"]


def randles(admittance: np.ndarray, area_m2: float, series_ohm: float = 0.0) -> np.ndarray:
    """Randles impedance ``R_s + 1 / (A Y)`` of a flat interface.

    Parameters
    ----------
    admittance : ndarray of complex
        Interfacial admittance per area ``Y(ω)`` (S/m²), e.g.
        :meth:`~microbat.cell.eis.EISParameters.admittance`.
    area_m2 : float
        Interface area.
    series_ohm : float, default 0
        Series (ohmic) resistance.

    Returns
    -------
    ndarray of complex
        Impedance (Ω).

    Examples
    --------
    >>> float(randles(np.array([2.0 + 0j]), 0.5, 1.0)[0].real)
    2.0
    """
    return series_ohm + 1.0 / (area_m2 * np.asarray(admittance, np.complex128))


def transmission_line(
    r_electrolyte: float,
    r_solid: float,
    zeta: np.ndarray,
    length_m: float,
) -> np.ndarray:
    """Two-rail transmission-line impedance (see module notes).

    Parameters
    ----------
    r_electrolyte, r_solid : float
        Resistance per length of the ionic and electronic rails (Ω/m); ``r_solid``
        may be 0.
    zeta : ndarray of complex
        Interfacial impedance times length (Ω m): ``1 / (Y a_s A)`` for an
        electrode of cross-section ``A`` and specific area ``a_s``.
    length_m : float
        Electrode thickness.

    Returns
    -------
    ndarray of complex
        Impedance (Ω).
    """
    z = np.asarray(zeta, np.complex128)
    r1, r2, L = float(r_electrolyte), float(r_solid), float(length_m)
    lam = np.sqrt(z / (r1 + r2))
    u = L / lam
    big = np.abs(u.real) > 300
    us = np.where(big, 1.0, u)
    coth = np.where(big, 1.0, 1.0 / np.tanh(us))
    csch = np.where(big, 0.0, 1.0 / np.sinh(us))
    return (r1 * r2 / (r1 + r2)) * (L + 2 * lam * csch) + lam * (r1**2 + r2**2) / (r1 + r2) * coth


def de_levie(r_electrolyte: float, zeta: np.ndarray, length_m: float) -> np.ndarray:
    """De Levie's pore impedance ``√(r ζ) coth(L √(r/ζ))`` (see module notes).

    Parameters
    ----------
    r_electrolyte : float
        Ionic resistance per pore length (Ω/m), ``1 / (κ A_pore)``.
    zeta : ndarray of complex
        Wall impedance times length (Ω m), ``1 / (Y P)`` with the pore perimeter ``P``.
    length_m : float
        Pore length.

    Returns
    -------
    ndarray of complex
        Impedance (Ω).

    Examples
    --------
    Low-frequency limit of a blocking pore, ``R_ion / 3 + 1/(jωC)``:

    >>> w = 1e-6; z = de_levie(2.0, 1 / (1j * w * 1.0), 1.0)
    >>> round(float(z[()].real), 6)
    0.666667
    """
    return transmission_line(r_electrolyte, 0.0, zeta, length_m)
