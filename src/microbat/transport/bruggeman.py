r"""Bruggeman and Maxwell estimates, and their error against computed tortuosity.

Equations
---------
Bruggeman's effective-medium relation for a porous medium with porosity ``ε``:

.. math::

    \frac{D_\mathrm{eff}}{D_0} = \varepsilon^{\alpha}, \qquad
    \tau = \varepsilon \frac{D_0}{D_\mathrm{eff}} = \varepsilon^{1-\alpha},

with ``α = 1.5`` for spheres (the value most cell models assume). Fitting ``α`` to
a computed ``τ`` gives ``α = 1 - ln τ / ln ε``. The relative error of the
Bruggeman estimate per direction is ``(τ_B - τ) / τ``: negative when Bruggeman is
optimistic (real electrodes are usually more tortuous than ``ε^{-0.5}``).

Maxwell's result for a dilute suspension of spheres of conductivity ``σ_i`` (volume
fraction ``φ``) in a matrix of conductivity ``σ_m``:

.. math::

    \frac{\sigma_\mathrm{eff}}{\sigma_m} =
    \frac{\sigma_i + 2\sigma_m + 2\varphi(\sigma_i - \sigma_m)}
         {\sigma_i + 2\sigma_m - \varphi(\sigma_i - \sigma_m)},

``2(1 - φ)/(2 + φ)`` for insulating spheres; exact to first order in ``φ`` and, for
a simple cubic array, to ``O(φ^{10/3})`` (Rayleigh).

References
----------
.. [1] D. A. G. Bruggeman, "Berechnung verschiedener physikalischer Konstanten von
   heterogenen Substanzen", Ann. Phys. 416 (1935) 636-664.
.. [2] J. C. Maxwell, "A Treatise on Electricity and Magnetism", vol. 1, art. 314,
   Clarendon Press, Oxford (1873).
.. [3] Lord Rayleigh, "On the influence of obstacles arranged in rectangular order
   upon the properties of a medium", Phil. Mag. 34 (1892) 481-502.
.. [4] B. Tjaden, S. J. Cooper, D. J. L. Brett, D. Kramer, P. R. Shearing, "On the
   origin and application of the Bruggeman correlation for analysing transport
   phenomena in electrochemical systems", Curr. Opin. Chem. Eng. 12 (2016) 44-51.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from microbat.core.errors import InvalidInputError
from microbat.core.results import Provenance, Result

__all__ = [
    "BruggemanComparison",
    "bruggeman_deff",
    "bruggeman_error",
    "bruggeman_tau",
    "maxwell_conductivity",
]


def _check_porosity(porosity: Any) -> np.ndarray:
    eps = np.asarray(porosity, dtype=float)
    if not np.all(np.isfinite(eps)) or np.any(eps <= 0) or np.any(eps > 1):
        raise InvalidInputError(
            f"porosity must lie in (0, 1], got {porosity!r} (give a volume fraction, not %)"
        )
    return eps


def bruggeman_tau(porosity: float | np.ndarray, alpha: float = 1.5) -> float | np.ndarray:
    """Bruggeman tortuosity factor ``τ = ε^(1 - α)``.

    Parameters
    ----------
    porosity : float or array_like
        Volume fraction ``ε`` in (0, 1].
    alpha : float, default 1.5
        Bruggeman exponent.

    Returns
    -------
    float or ndarray
        ``ε^(1 - α)`` (a float for a scalar input).

    Examples
    --------
    >>> round(bruggeman_tau(0.25), 12)
    2.0
    """
    eps = _check_porosity(porosity)
    out = eps ** (1.0 - float(alpha))
    return float(out) if out.ndim == 0 else out


def bruggeman_deff(porosity: float | np.ndarray, alpha: float = 1.5) -> float | np.ndarray:
    """Bruggeman relative effective diffusivity ``D_eff / D0 = ε^α``.

    Examples
    --------
    >>> round(bruggeman_deff(0.25), 12)
    0.125
    """
    eps = _check_porosity(porosity)
    out = eps ** float(alpha)
    return float(out) if out.ndim == 0 else out


def maxwell_conductivity(volume_fraction: float, ratio: float = 0.0) -> float:
    """Maxwell's relative conductivity ``σ_eff / σ_m`` of a dilute sphere suspension.

    Parameters
    ----------
    volume_fraction : float
        Volume fraction ``φ`` of the spheres, in [0, 1).
    ratio : float, default 0.0
        ``σ_i / σ_m`` (0 for insulating spheres, e.g. particles blocking diffusion).

    Returns
    -------
    float

    Examples
    --------
    >>> round(maxwell_conductivity(0.1), 6)   # 2 (1 - φ) / (2 + φ)
    0.857143
    """
    phi = float(volume_fraction)
    if not 0 <= phi < 1 or ratio < 0 or not math.isfinite(ratio):
        raise InvalidInputError(
            f"volume_fraction must lie in [0, 1) and ratio be non-negative, got {phi}, {ratio}"
        )
    si, sm = float(ratio), 1.0
    return (si + 2 * sm + 2 * phi * (si - sm)) / (si + 2 * sm - phi * (si - sm))


@dataclass(frozen=True)
class BruggemanComparison(Result):
    """Bruggeman's estimate against computed tortuosity factors (array axis order).

    Attributes
    ----------
    alpha : float
        Bruggeman exponent used.
    porosity : float
        ``ε`` entering Bruggeman (the ``ε`` that divides in the computed τ).
    tau_bruggeman : float
        ``ε^(1 - α)``.
    tau_computed : tuple of float or None
        Computed τ per axis.
    relative_error : tuple of float or None
        ``(τ_B - τ) / τ`` per axis (``-1`` where τ is infinite).
    alpha_fit : tuple of float or None
        Exponent that reproduces each computed τ, ``1 - ln τ / ln ε``.
    provenance : Provenance
        How the comparison was made.
    """

    alpha: float
    porosity: float
    tau_bruggeman: float
    tau_computed: tuple[Any, ...]
    relative_error: tuple[Any, ...]
    alpha_fit: tuple[Any, ...]
    provenance: Provenance = field(repr=False, default_factory=lambda: Provenance("bruggeman"))


def bruggeman_error(result: Any, *, alpha: float = 1.5) -> BruggemanComparison:
    """Relative error of Bruggeman's τ against a computed tortuosity, per direction.

    Parameters
    ----------
    result : TortuosityResult or TensorResult
        Computed tortuosity (the diagonal of a tensor is used).
    alpha : float, default 1.5
        Bruggeman exponent.

    Returns
    -------
    BruggemanComparison

    Examples
    --------
    >>> import numpy as np
    >>> from microbat import Microstructure
    >>> from microbat.transport.diffusion import tortuosity
    >>> lab = np.ones((8, 8, 8), np.uint8); lab[:, :4, :4] = 0   # straight pore, ε = 1/4
    >>> ms = Microstructure(lab, voxel_size=1e-6, phases="pore=0,active=1")
    >>> cmp = bruggeman_error(tortuosity(ms, phase="pore", axis=0))
    >>> cmp.tau_bruggeman, round(cmp.relative_error[0], 9)   # Bruggeman: 2, truth: 1
    (2.0, 1.0)
    """
    t0 = time.perf_counter()
    if hasattr(result, "tau_diagonal"):
        taus: tuple[Any, ...] = tuple(result.tau_diagonal)
        eps = float(result.epsilon)
    elif hasattr(result, "tau") and hasattr(result, "epsilon"):
        taus = tuple(result.tau)
        eps = next((float(e) for e in result.epsilon if e is not None), float(result.porosity))
    else:
        raise InvalidInputError(
            f"bruggeman_error needs a TortuosityResult or TensorResult, got {type(result).__name__}"
        )
    tb = float(bruggeman_tau(eps, alpha)) if eps > 0 else math.inf
    err: list[Any] = []
    fit: list[Any] = []
    for t in taus:
        if t is None:
            err.append(None)
            fit.append(None)
        elif not math.isfinite(t):
            err.append(-1.0)
            fit.append(math.inf)
        else:
            err.append((tb - t) / t)
            fit.append(1.0 - math.log(t) / math.log(eps) if 0 < eps < 1 else None)
    return BruggemanComparison(
        alpha=float(alpha),
        porosity=eps,
        tau_bruggeman=tb,
        tau_computed=taus,
        relative_error=tuple(err),
        alpha_fit=tuple(fit),
        provenance=Provenance(
            "microbat.transport.bruggeman_error",
            parameters={"alpha": float(alpha)},
            wall_time_s=time.perf_counter() - t0,
        ),
    )
