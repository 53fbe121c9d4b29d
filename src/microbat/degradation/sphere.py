r"""Closed forms of a sphere under galvanostatic diffusion: concentration and stress.

Concentration
-------------
A sphere of radius ``R`` with diffusivity ``D``, initially uniform at ``c₀``, receives
the constant molar flux ``J`` (mol m⁻² s⁻¹, inward positive: lithiation) through its
surface. With ``x = r / R`` and ``τ = D t / R²`` (Carslaw & Jaeger 1959, §9.3;
Crank 1975, eq. 6.49):

.. math::

    c(x, τ) = c_0 + \frac{J R}{D}\Big[3τ + \frac{x^2}{2} - \frac{3}{10}
      - \frac{2}{x}\sum_{n\ge1} \frac{\sin(λ_n x)}{λ_n^2 \sin λ_n} e^{-λ_n^2 τ}\Big],

``λ_n`` the positive roots of ``tan λ = λ``. The mean is ``c̄ = c₀ + 3 J t / R``
exactly. For ``τ ≳ 0.3`` the sum has died out and the profile is the parabola
``c − c̄ = (J R / D)(x²/2 − 3/10)`` (the quasi-steady state, largest deviation).

Stress in a free sphere
-----------------------
For the eigenstrain ``ε* = Ω (c − c_ref) / 3 I`` in an isotropic elastic sphere with a
traction-free surface (Cheng & Verbrugge 2009, eqs. 6–7; Christensen & Newman 2006;
Zhang, Shyy & Sastry 2007), with ``c̄(r)`` the mean over the ball of radius ``r``:

.. math::

    σ_r = \frac{2ΩE}{9(1-ν)}\,[\bar c(R) - \bar c(r)], \qquad
    σ_θ = \frac{ΩE}{9(1-ν)}\,[2\bar c(R) + \bar c(r) - 3c(r)].

So at the surface ``σ_r = 0``, ``σ_θ = ΩE (c̄ − c(R)) / (3(1 − ν))`` and at the centre
``σ_r = σ_θ = 2ΩE (c̄ − c(0)) / (9(1 − ν))``. In dimensionless form,
``σ = ΩE J R / (3(1 − ν) D) · s(x, τ)`` with

* surface hoop ``s_θ(1, τ) = −[1/5 − 2 Σ e^{−λ_n² τ}/λ_n²]``,
* centre ``s(0, τ) = (2/3)[3/10 + 2 Σ e^{−λ_n² τ}/(λ_n sin λ_n)]``,

which tend to ``−1/5`` and ``+1/5`` in the quasi-steady state: lithiation (``J > 0``)
with ``Ω > 0`` puts the centre in tension and the surface in compression,
delithiation the reverse. ``Σ 1/λ_n² = 1/10`` makes both vanish at ``τ = 0``.
The stress is linear in ``J`` (hence in the C-rate) at a fixed ``τ``.

The series are evaluated with 4000 terms on a table of ``τ`` from 1e-7 to 10 and
interpolated in ``log τ`` (relative error < 1e-6 against direct summation); below
1e-7 the short-time limits ``s_θ → −(2√(τ/π) − 3τ)`` and ``s(0) → 2τ`` apply (the
centre has not yet felt the flux, ``c̄ − c(0) = 3τ J R / D``).

References
----------
.. [1] Y.-T. Cheng, M. W. Verbrugge, "Evolution of stress within a spherical
   insertion electrode particle under potentiostatic and galvanostatic operation",
   J. Power Sources 190, 453–460 (2009).
.. [2] J. Christensen, J. Newman, "Stress generation and fracture in lithium
   insertion materials", J. Solid State Electrochem. 10, 293–319 (2006).
.. [3] X. Zhang, W. Shyy, A. M. Sastry, "Numerical simulation of intercalation-induced
   stress in Li-ion battery electrode particles", J. Electrochem. Soc. 154, A910 (2007).
.. [4] H. S. Carslaw, J. C. Jaeger, *Conduction of Heat in Solids*, 2nd ed., Oxford
   (1959), §9.3.
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = [
    "constant_flux_concentration",
    "free_sphere_stress",
    "sphere_roots",
    "stress_shape",
]

_N_TERMS = 4000
_TAU_MIN = 1e-7
_TAU_MAX = 10.0


@functools.lru_cache(maxsize=4)
def sphere_roots(n: int = _N_TERMS) -> np.ndarray:
    """The first ``n`` positive roots of ``tan λ = λ`` (Newton from ``(k + ½)π``)."""
    k = np.arange(1, n + 1, dtype=np.float64)
    lam = (k + 0.5) * np.pi - 1.0 / ((k + 0.5) * np.pi)
    for _ in range(50):
        f = np.sin(lam) - lam * np.cos(lam)
        df = lam * np.sin(lam)
        step = f / df
        lam -= step
        if np.max(np.abs(step)) < 1e-15 * lam[-1]:
            break
    lam.setflags(write=False)
    return lam


def constant_flux_concentration(
    x: np.ndarray | float, tau: float, *, n_terms: int | None = None
) -> np.ndarray:
    """Dimensionless concentration ``(c − c₀) D / (J R)`` at ``x = r/R`` and ``τ = D t/R²``.

    ``tau = inf`` gives the quasi-steady parabola relative to the mean
    (``x²/2 − 3/10``, i.e. ``c − c̄``).

    Parameters
    ----------
    x : array-like
        Radial positions in [0, 1].
    tau : float
        Dimensionless time (≥ 0) or ``inf``.
    n_terms : int, optional
        Series terms (default: enough for ``e^{−λ² τ} < 1e-17``, at most 4000).

    Returns
    -------
    ndarray
    """
    x = np.asarray(x, dtype=np.float64)
    if math.isinf(tau):
        return x**2 / 2 - 0.3
    if tau < 0:
        raise ValueError("tau must be >= 0")
    lam = sphere_roots()
    if n_terms is None:
        n_terms = _N_TERMS if tau <= 0 else int(min(_N_TERMS, math.sqrt(40.0 / tau) / math.pi + 5))
    lam = lam[:n_terms]
    w = np.exp(-(lam**2) * tau) / (lam**2 * np.sin(lam))
    xs = np.where(x > 1e-12, x, 1e-12)
    s = np.sin(np.multiply.outer(xs, lam)) @ w / xs
    s0 = np.sum(lam * w)  # limit x -> 0: sin(λx)/x -> λ
    s = np.where(x > 1e-12, s, s0)
    return 3 * tau + x**2 / 2 - 0.3 - 2 * s


@functools.lru_cache(maxsize=1)
def _table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lam = sphere_roots()
    taus = np.logspace(math.log10(_TAU_MIN), math.log10(_TAU_MAX), 1201)
    e = np.exp(-np.multiply.outer(taus, lam**2))  # (T, N)
    surf = -(0.2 - 2 * e @ (1 / lam**2))
    centre = (2.0 / 3.0) * (0.3 + 2 * e @ (1 / (lam * np.sin(lam))))
    for a in (taus, surf, centre):
        a.setflags(write=False)
    return taus, surf, centre


def stress_shape(tau: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Dimensionless surface hoop and centre stresses ``s_θ(1, τ)``, ``s(0, τ)``.

    ``σ = Ω E J R / (3 (1 − ν) D) · s``; ``τ = inf`` gives the quasi-steady values
    ``(−1/5, +1/5)``.

    Parameters
    ----------
    tau : array-like
        Dimensionless times ``D t / R²``.

    Returns
    -------
    (ndarray, ndarray)
        Surface hoop and centre (radial = hoop) shape factors.
    """
    t = np.asarray(tau, dtype=np.float64)
    taus, surf, centre = _table()
    lt = np.log(np.clip(t, _TAU_MIN, _TAU_MAX))
    ls = np.log(taus)
    s = np.interp(lt, ls, surf)
    c = np.interp(lt, ls, centre)
    small = t < _TAU_MIN
    if np.any(small):
        ts = np.where(small, t, _TAU_MIN)
        s = np.where(small, -(2 * np.sqrt(ts / np.pi) - 3 * ts), s)
        c = np.where(small, 2 * ts, c)
    big = t > _TAU_MAX
    s = np.where(big, -0.2, s)
    c = np.where(big, 0.2, c)
    return s, c


def _ball_mean_sinc(z: np.ndarray) -> np.ndarray:
    """``3 (sin z − z cos z) / z³`` (the ball mean of ``sin(z r)/(z r)``), Taylor near 0."""
    small = np.abs(z) < 1e-2
    zs = np.where(small, 1.0, z)
    exact = 3 * (np.sin(zs) - zs * np.cos(zs)) / zs**3
    z2 = z * z
    return np.where(small, 1 - z2 / 10 + z2 * z2 / 280, exact)


def free_sphere_stress(
    x: np.ndarray | float,
    tau: float,
    *,
    flux: float,
    radius: float,
    diffusivity: float,
    young_modulus: float,
    poisson_ratio: float,
    partial_molar_volume: float,
    n_terms: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Radial and hoop stress (Pa) in a free sphere under constant flux.

    Parameters
    ----------
    x : array-like
        ``r / R`` in [0, 1].
    tau : float
        ``D t / R²`` (``inf``: quasi-steady state).
    flux : float
        ``J`` in mol m⁻² s⁻¹, inward positive.
    radius, diffusivity : float
        ``R`` (m), ``D`` (m² s⁻¹).
    young_modulus, poisson_ratio, partial_molar_volume : float
        ``E`` (Pa), ``ν``, ``Ω`` (m³ mol⁻¹).
    n_terms : int, optional
        Series terms.

    Returns
    -------
    (ndarray, ndarray)
        ``σ_r(x)``, ``σ_θ(x)``.

    Notes
    -----
    ``c̄(r)`` is integrated from the series term by term:
    ``(3/x³)∫₀ˣ sin(λy)/y · y² dy = 3 (sin λx − λx cos λx)/(λ² x³)``
    (a Taylor series for small ``λx``, where the difference cancels).
    """
    x = np.asarray(x, dtype=np.float64)
    scale = flux * radius / diffusivity
    pref = partial_molar_volume * young_modulus / (9 * (1 - poisson_ratio))
    if math.isinf(tau):
        u = x**2 / 2 - 0.3
        ubar_r = 3 * x**2 / 10 - 0.3  # mean of y²/2 over the ball of radius x
        ubar = 0.0
    else:
        lam = sphere_roots()
        if n_terms is None:
            n_terms = (
                _N_TERMS if tau <= 0 else int(min(_N_TERMS, math.sqrt(40.0 / tau) / math.pi + 5))
            )
        lam = lam[:n_terms]
        w = np.exp(-(lam**2) * tau) / (lam**2 * np.sin(lam))
        xs = np.where(x > 1e-6, x, 1e-6)
        lx = np.multiply.outer(xs, lam)
        ser = np.sin(lx) @ w / xs
        ser_bar = (lam * _ball_mean_sinc(lx)) @ w
        u = 3 * tau + x**2 / 2 - 0.3 - 2 * ser
        ubar_r = 3 * tau + 3 * x**2 / 10 - 0.3 - 2 * ser_bar
        ubar = 3 * tau
    sr = 2 * pref * scale * (ubar - ubar_r)
    st = pref * scale * (2 * ubar + ubar_r - 3 * u)
    return sr, st
