"""Closed-form galvanostatic diffusion in a sphere (Crank, The Mathematics of Diffusion, §6.3)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq


def roots(n: int = 200) -> np.ndarray:
    """Positive roots of tan λ = λ."""
    out = []
    for k in range(1, n + 1):
        lo, hi = k * np.pi + 1e-9, k * np.pi + np.pi / 2 - 1e-9
        out.append(brentq(lambda x: np.tan(x) - x, lo, hi))
    return np.array(out)


def sphere_concentration(r, t, *, c0, flux, radius, diffusivity, lam=None):
    """c(r, t) for a constant flux ``flux`` (mol/m²/s) into a sphere from rest at ``c0``."""
    lam = roots() if lam is None else lam
    r = np.atleast_1d(np.asarray(r, float))
    x = np.maximum(r / radius, 1e-12)
    tau = diffusivity * t / radius**2
    terms = np.sin(np.outer(x, lam)) / (x[:, None] * lam**2 * np.sin(lam)) * np.exp(-(lam**2) * tau)
    bracket = 3 * tau + 0.5 * x**2 - 0.3 - 2 * terms.sum(axis=1)
    return c0 + flux * radius / diffusivity * bracket
