r"""Decomposing a spectrum into processes: sensitivities, DRT, equivalent circuit.

Sensitivity
-----------
Each process has one parameter; scaling it by ``s`` and differencing gives
``∂Z/∂ln p ≈ (Z(s p) − Z(p/s)) / (2 ln s)`` at every frequency (central
difference). The *share* of a process is ``Σ_f |∂Z/∂ln p| / Σ_processes``; its
characteristic frequency is where ``|∂(Im Z)/∂ln p|`` peaks. Processes:
ionic transport (κ), electronic transport (σ), charge transfer (i0), double layer
(C_dl), solid diffusion (D_s).

Distribution of relaxation times
--------------------------------
``Z(ω) ≈ R_∞ + 1/(jωC_s) + Σ_k g_k / (1 + jωτ_k)`` on a log grid of ``τ``
(5 per decade, one decade beyond the measured band), ``g ≥ 0``, ``R_∞ ≥ 0``,
``1/C_s ≥ 0`` (the capacitive tail of blocking or intercalating electrodes). Rows
are weighted by ``1/|Z|``; Tikhonov regularisation ``λ‖g‖²`` and non-negativity
are solved as one NNLS problem (Lawson–Hanson). ``λ`` is chosen by generalised
cross-validation on the active set [1]_ over 10⁻⁶..10¹ and reported.

Equivalent circuit
------------------
``Z = R_s + \sqrt{R_{ion} Z_i} \coth\sqrt{R_{ion}/Z_i}`` (a transmission line for
the pores) with the interface ``Z_i = [1/(R_{ct} + σ_W (jω)^{-1/2}) + Q (jω)^n]^{-1}``
(charge transfer in series with a Warburg element, parallel to a constant-phase
element); blocking spectra drop ``R_ct`` and the Warburg element. Fitted by
``scipy.optimize.least_squares`` on ``1/|Z|``-weighted residuals in log
parameters; standard errors from ``(JᵀJ)⁻¹ s²``.

References
----------
.. [1] M. Saccoccio, T. H. Wan, C. Chen and F. Ciucci, "Optimal regularization in
   distribution of relaxation times applied to electrochemical impedance
   spectroscopy", Electrochim. Acta 147, 470-482 (2014).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from microbat.cell.eis.parameters import EISParameters
from microbat.core.errors import ConvergenceError, InvalidInputError
from microbat.core.results import Result

__all__ = [
    "PROCESSES",
    "CircuitFit",
    "DRTResult",
    "SensitivityResult",
    "drt",
    "fit_circuit",
    "sensitivity",
]

#: Process name -> the EISParameters field scaled for its sensitivity.
PROCESSES: dict[str, str] = {
    "ionic transport": "electrolyte_conductivity_S_per_m",
    "electronic transport": "active_conductivity_S_per_m",
    "charge transfer": "exchange_current_A_per_m2",
    "double layer": "double_layer_F_per_m2",
    "solid diffusion": "solid_diffusivity_m2_per_s",
}

#: Fields scaled together with a process's field: the ionic transport of a composite
#: cathode is the solid electrolyte's (each model reads only the one that applies).
_SCALED_WITH: dict[str, tuple[str, ...]] = {
    "electrolyte_conductivity_S_per_m": ("solid_electrolyte_conductivity_S_per_m",),
}


@dataclass(frozen=True)
class SensitivityResult(Result):
    """Sensitivity of the spectrum to each process.

    Attributes
    ----------
    frequency_Hz : ndarray
    processes : tuple of str
    share : dict
        Process -> fraction of the summed ``|∂Z/∂ln p|`` (sums to 1).
    characteristic_Hz : dict
        Process -> frequency of the peak of ``|∂ Im Z / ∂ ln p|``.
    dz_real, dz_imag : dict
        Process -> ``∂Z/∂ln p`` real and imaginary parts (Ω) per frequency.
    factor : float
        Scale ``s`` of the central difference.
    model : str
        Model the spectra came from.
    """

    frequency_Hz: np.ndarray
    processes: tuple[str, ...]
    share: dict[str, float]
    characteristic_Hz: dict[str, float]
    dz_real: dict[str, list[float]]
    dz_imag: dict[str, list[float]]
    factor: float
    model: str


def sensitivity(
    spectrum: Callable[[EISParameters], np.ndarray],
    params: EISParameters,
    frequencies: np.ndarray,
    *,
    factor: float = 1.1,
    processes: Sequence[str] | None = None,
    model: str = "",
) -> SensitivityResult:
    """Central-difference sensitivity of ``Z`` to each process's parameter.

    Parameters
    ----------
    spectrum : callable
        ``spectrum(params) -> Z`` at ``frequencies`` (e.g. a closure over
        :func:`~microbat.cell.eis.resolved_eis` or
        :func:`~microbat.cell.eis.homogenized_eis`).
    params : EISParameters
        Reference parameters.
    frequencies : ndarray
        The frequencies ``spectrum`` uses (Hz).
    factor : float, default 1.1
        Scale ``s > 1``.
    processes : sequence of str, optional
        Names from :data:`PROCESSES` (default all).
    model : str
        Label recorded in the result.

    Returns
    -------
    SensitivityResult
    """
    if not factor > 1:
        raise InvalidInputError(f"factor must exceed 1, got {factor}")
    names = tuple(processes or PROCESSES)
    unknown = [n for n in names if n not in PROCESSES]
    if unknown:
        raise InvalidInputError(f"unknown process(es) {unknown}; use {list(PROCESSES)}")
    f = np.asarray(frequencies, float)
    dz: dict[str, np.ndarray] = {}
    for name in names:
        keys = (PROCESSES[name], *_SCALED_WITH.get(PROCESSES[name], ()))
        up = spectrum(params.with_values(**{k: getattr(params, k) * factor for k in keys}))
        dn = spectrum(params.with_values(**{k: getattr(params, k) / factor for k in keys}))
        dz[name] = (np.asarray(up) - np.asarray(dn)) / (2 * math.log(factor))
    mags = {n: float(np.sum(np.abs(d))) for n, d in dz.items()}
    tot = sum(mags.values()) or 1.0
    return SensitivityResult(
        frequency_Hz=f,
        processes=names,
        share={n: m / tot for n, m in mags.items()},
        characteristic_Hz={n: float(f[int(np.argmax(np.abs(d.imag)))]) for n, d in dz.items()},
        dz_real={n: d.real.tolist() for n, d in dz.items()},
        dz_imag={n: d.imag.tolist() for n, d in dz.items()},
        factor=float(factor),
        model=model,
    )


@dataclass(frozen=True)
class DRTResult(Result):
    """A distribution of relaxation times.

    Attributes
    ----------
    tau_s : ndarray
        Relaxation-time grid (s).
    gamma_ohm : ndarray
        Resistance of each ``τ`` (Ω; the distribution per grid point).
    r_inf_ohm : float
        Series resistance.
    c_series_F : float
        Series capacitance of the capacitive tail (inf when none).
    lambda_ : float
        Regularisation parameter chosen by GCV.
    method : str
        ``"GCV"`` (how ``lambda_`` was chosen).
    peaks_Hz : list of float
        Characteristic frequencies ``1/(2πτ)`` of the local maxima above 5 % of
        the largest.
    peak_resistance_ohm : list of float
        Resistance under each peak (sum of ``g`` between the neighbouring minima).
    residual : float
        Weighted relative residual of the fit.
    """

    tau_s: np.ndarray
    gamma_ohm: np.ndarray
    r_inf_ohm: float
    c_series_F: float
    lambda_: float
    method: str
    peaks_Hz: list[float]
    peak_resistance_ohm: list[float]
    residual: float

    def impedance(self, frequency_Hz: np.ndarray) -> np.ndarray:
        """The DRT model's impedance at ``frequency_Hz``."""
        w = 2 * np.pi * np.asarray(frequency_Hz, float)
        z = self.r_inf_ohm + (self.gamma_ohm / (1 + 1j * np.outer(w, self.tau_s))).sum(1)
        if math.isfinite(self.c_series_F):
            z = z + 1 / (1j * w * self.c_series_F)
        return z


def drt(
    frequency_Hz: np.ndarray,
    z: np.ndarray,
    *,
    lambdas: Sequence[float] | None = None,
    per_decade: int = 5,
    capacitive_tail: bool = True,
) -> DRTResult:
    """Tikhonov-regularised, non-negative DRT of a spectrum (see module notes).

    Parameters
    ----------
    frequency_Hz : ndarray
        Frequencies (Hz).
    z : ndarray of complex
        Impedance (Ω).
    lambdas : sequence of float, optional
        Candidates for ``λ`` (default 20 log-spaced in 10⁻⁶..10¹).
    per_decade : int, default 5
        Points of the ``τ`` grid per decade.
    capacitive_tail : bool, default True
        Include a series capacitance.

    Returns
    -------
    DRTResult

    Examples
    --------
    One RC element (R = 2 Ω, τ = 1 ms) in series with 1 Ω:

    >>> f = np.logspace(4, -2, 49); w = 2 * np.pi * f
    >>> res = drt(f, 1 + 2 / (1 + 1j * w * 1e-3), capacitive_tail=False)
    >>> round(res.peaks_Hz[0], -1), round(sum(res.peak_resistance_ohm), 1)
    (160.0, 2.0)
    """
    from scipy.optimize import nnls

    f = np.asarray(frequency_Hz, float)
    z = np.asarray(z, np.complex128)
    if f.shape != z.shape or f.size < 5:
        raise InvalidInputError("drt needs at least 5 frequencies and one Z per frequency")
    w = 2 * np.pi * f
    lo = math.floor(math.log10(1 / (2 * np.pi * f.max()))) - 1
    hi = math.ceil(math.log10(1 / (2 * np.pi * f.min()))) + 1
    tau = np.logspace(lo, hi, (hi - lo) * per_decade + 1)
    k = 1 / (1 + 1j * np.outer(w, tau))
    cols = [np.ones_like(w, dtype=complex), *([(1 / (1j * w))] if capacitive_tail else [])]
    basis = np.column_stack([*cols, k])
    wt = 1 / np.abs(z)
    A = np.vstack([(basis * wt[:, None]).real, (basis * wt[:, None]).imag])
    b = np.concatenate([(z * wt).real, (z * wt).imag])
    # scale columns so that λ acts on comparable unknowns
    scale = np.linalg.norm(A, axis=0)
    scale[scale == 0] = 1
    As = A / scale
    nx = As.shape[1]
    reg = np.zeros(nx)
    reg[len(cols) :] = 1.0
    cand = np.logspace(-6, 1, 20) if lambdas is None else np.asarray(lambdas, float)
    best = None
    m = b.size
    for lam in cand:
        Ab = np.vstack([As, math.sqrt(lam) * np.diag(reg)])
        bb = np.concatenate([b, np.zeros(nx)])
        x, _ = nnls(Ab, bb, maxiter=50 * nx)
        r = As @ x - b
        act = x > 0
        Aa = As[:, act]
        ra = reg[act]
        G = Aa.T @ Aa + lam * np.diag(ra)
        trace = float(np.trace(Aa @ np.linalg.solve(G, Aa.T))) if act.any() else 0.0
        gcv = m * float(r @ r) / max(m - trace, 1e-12) ** 2
        if best is None or gcv < best[0]:
            best = (gcv, lam, x, float(np.linalg.norm(r) / np.linalg.norm(b)))
    assert best is not None
    _, lam, x, resid = best
    x = x / scale
    r_inf = float(x[0])
    c_s = math.inf
    if capacitive_tail:
        c_s = 1 / x[1] if x[1] > 0 else math.inf
    g = x[len(cols) :]
    peaks, areas = _peaks(tau, g)
    return DRTResult(
        tau_s=tau,
        gamma_ohm=g,
        r_inf_ohm=r_inf,
        c_series_F=float(c_s),
        lambda_=float(lam),
        method="GCV",
        peaks_Hz=peaks,
        peak_resistance_ohm=areas,
        residual=resid,
    )


def _peaks(tau: np.ndarray, g: np.ndarray) -> tuple[list[float], list[float]]:
    if g.max(initial=0) <= 0:
        return [], []
    gp = np.concatenate([[0.0], g, [0.0]])
    idx = [i for i in range(1, gp.size - 1) if gp[i] > gp[i - 1] and gp[i] >= gp[i + 1]]
    idx = [i - 1 for i in idx if gp[i] >= 0.05 * g.max()]
    # split the mass between peaks at the minima
    bounds = [0]
    for a, b in itertools.pairwise(idx):
        bounds.append(a + int(np.argmin(g[a : b + 1])))
    bounds.append(g.size)
    areas = [float(g[bounds[i] : bounds[i + 1]].sum()) for i in range(len(idx))]
    freqs = [float(1 / (2 * np.pi * tau[i])) for i in idx]
    return freqs, areas


@dataclass(frozen=True)
class CircuitFit(Result):
    """Fitted equivalent circuit (see module notes).

    Attributes
    ----------
    values : dict
        Parameter -> fitted value (Ω, F s^(n−1), Ω s^-1/2, ...).
    std : dict
        Parameter -> standard error from the Jacobian.
    units : dict
        Parameter -> unit.
    blocking : bool
        Circuit without charge transfer and Warburg element.
    residual : float
        Root-mean-square of the ``1/|Z|``-weighted residual.
    """

    values: dict[str, float]
    std: dict[str, float]
    units: dict[str, str]
    blocking: bool
    residual: float
    notes: list[str] = field(default_factory=list)

    def impedance(self, frequency_Hz: np.ndarray) -> np.ndarray:
        """The circuit's impedance at ``frequency_Hz``."""
        names = list(self.values)
        return _circuit(np.log([self.values[n] for n in names]), names, frequency_Hz)


_UNITS = {
    "R_s": "ohm",
    "R_ion": "ohm",
    "Q": "F s^(n-1)",
    "n": "1",
    "R_ct": "ohm",
    "sigma_W": "ohm s^-1/2",
}


def _circuit(theta: np.ndarray, names: list[str], f: np.ndarray) -> np.ndarray:
    v = dict(zip(names, np.exp(theta), strict=True))
    jw = 2j * np.pi * np.asarray(f, float)
    y = v["Q"] * jw ** v["n"]
    if "R_ct" in v:
        y = y + 1 / (v["R_ct"] + v["sigma_W"] / np.sqrt(jw))
    zi = 1 / y
    u = np.sqrt(v["R_ion"] / zi)
    return v["R_s"] + np.sqrt(v["R_ion"] * zi) / np.tanh(u)


def fit_circuit(frequency_Hz: np.ndarray, z: np.ndarray, *, blocking: bool = False) -> CircuitFit:
    """Fit ``R_s + TLM(R_ion, (R_ct + W) ‖ CPE)`` to a spectrum (see module notes).

    Parameters
    ----------
    frequency_Hz : ndarray
        Frequencies (Hz).
    z : ndarray of complex
        Impedance (Ω).
    blocking : bool, default False
        Fit the blocking circuit (no ``R_ct``, no Warburg).

    Returns
    -------
    CircuitFit

    Raises
    ------
    ConvergenceError
        The optimiser failed.
    """
    from scipy.optimize import least_squares

    f = np.asarray(frequency_Hz, float)
    z = np.asarray(z, np.complex128)
    w = 2 * np.pi * f
    i_hi, i_lo = int(np.argmax(f)), int(np.argmin(f))
    rs0 = max(0.5 * z[i_hi].real, 1e-12 * abs(z[i_hi]))
    c0 = -1 / (w[i_lo] * z[i_lo].imag) if z[i_lo].imag < 0 else 1 / (w[i_lo] * abs(z[i_lo]))
    guess = {"R_s": rs0, "R_ion": max(abs(z[i_hi]), rs0), "Q": c0, "n": 0.95}
    if not blocking:
        guess["R_ct"] = max(abs(z[len(z) // 2]), rs0)
        guess["sigma_W"] = max(abs(z[i_lo]) * math.sqrt(w[i_lo]) * 0.1, 1e-12)
    names = list(guess)
    theta0 = np.log([guess[n] for n in names])
    lo = theta0 - 25.0  # within e^±25 of the guess: keeps exp() finite
    hi = theta0 + 25.0
    k = names.index("n")
    lo[k], hi[k] = math.log(0.3), 0.0
    theta0[k] = min(max(theta0[k], lo[k] + 1e-6), -1e-6)
    wt = 1 / np.abs(z)

    def resid(t: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            d = (_circuit(t, names, f) - z) * wt
        d = np.where(np.isfinite(d), d, 1e6)
        return np.concatenate([d.real, d.imag])

    starts = [theta0]
    if not blocking:  # a few starts for the Faradaic branch (the problem is multimodal)
        ict, iw = names.index("R_ct"), names.index("sigma_W")
        for a in (-2.0, 0.0, 2.0):
            for b in (-2.0, 0.0, 2.0):
                t = theta0.copy()
                t[ict] += a
                t[iw] += b
                starts.append(t)
    sol = None
    for t0 in starts:
        s_ = least_squares(resid, t0, bounds=(lo, hi), x_scale="jac", max_nfev=2000)
        if sol is None or s_.cost < sol.cost:
            sol = s_
    assert sol is not None
    if not np.all(np.isfinite(sol.x)):
        raise ConvergenceError("the equivalent-circuit fit diverged; check the spectrum")
    dof = max(sol.fun.size - len(names), 1)
    s2 = float(sol.fun @ sol.fun) / dof
    notes: list[str] = []
    try:
        cov = np.linalg.inv(sol.jac.T @ sol.jac) * s2
        sd_log = np.sqrt(np.clip(np.diag(cov), 0, None))
    except np.linalg.LinAlgError:
        sd_log = np.full(len(names), np.inf)
        notes.append("singular Jacobian: parameters not identifiable from this spectrum")
    vals = np.exp(sol.x)
    return CircuitFit(
        values={n: float(v) for n, v in zip(names, vals, strict=True)},
        std={n: float(v * s) for n, v, s in zip(names, vals, sd_log, strict=True)},
        units={n: _UNITS[n] for n in names},
        blocking=blocking,
        residual=math.sqrt(float(np.mean(sol.fun**2))),
        notes=notes,
    )


def decompose(
    frequency_Hz: np.ndarray,
    z: np.ndarray,
    *,
    blocking: bool = False,
    sensitivity_result: SensitivityResult | None = None,
) -> dict[str, Any]:
    """The decomposition table: DRT, circuit fit and (optionally) sensitivities."""
    out: dict[str, Any] = {}
    d = drt(frequency_Hz, z)
    out["drt"] = {
        "lambda": d.lambda_,
        "lambda_method": d.method,
        "r_inf_ohm": d.r_inf_ohm,
        "c_series_F": d.c_series_F,
        "peaks_Hz": d.peaks_Hz,
        "peak_resistance_ohm": d.peak_resistance_ohm,
        "residual": d.residual,
    }
    c = fit_circuit(frequency_Hz, z, blocking=blocking)
    out["circuit"] = {"values": c.values, "std": c.std, "units": c.units, "residual": c.residual}
    if sensitivity_result is not None:
        out["sensitivity"] = {
            "model": sensitivity_result.model,
            "share": sensitivity_result.share,
            "characteristic_Hz": sensitivity_result.characteristic_Hz,
        }
    return out


__all__ += ["decompose"]
