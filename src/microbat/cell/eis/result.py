"""The impedance-spectrum result shared by the resolved and homogenised models."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from microbat.core.errors import InvalidInputError
from microbat.core.results import Provenance, Result

__all__ = ["EISResult", "default_frequencies"]


def default_frequencies(f_min: float = 1e-2, f_max: float = 1e5, per_decade: int = 8) -> np.ndarray:
    """Log-spaced frequencies from ``f_max`` down to ``f_min`` (Hz), both included.

    Examples
    --------
    >>> default_frequencies(1.0, 100.0, 2)
    array([100.        ,  31.6227766 ,  10.        ,   3.16227766,   1.        ])
    """
    if not (0 < f_min < f_max) or per_decade < 1:
        raise InvalidInputError(
            f"need 0 < f_min < f_max and per_decade >= 1, got {f_min}, {f_max}, {per_decade}"
        )
    n = round(np.log10(f_max / f_min) * per_decade) + 1
    return np.logspace(np.log10(f_max), np.log10(f_min), int(n))


@dataclass(frozen=True)
class EISResult(Result):
    """An impedance spectrum.

    Attributes
    ----------
    frequency_Hz : ndarray
        Frequencies (Hz), in the order solved (high to low by default).
    z_real_ohm, z_imag_ohm : ndarray
        Real and imaginary part of ``Z = ΔV/ΔI`` (Ω) of the modelled cross-section;
        ``Im Z < 0`` for capacitive behaviour.
    area_m2 : float
        Cross-section the current flows through (multiply Z by it for Ω m²).
    model : str
        ``"resolved"`` or ``"homogenized"``.
    blocking : bool
        Whether the Faradaic branch was switched off.
    interface_area_m2 : float
        Active/electrolyte interface area carrying the admittance.
    parameters : dict
        The :class:`~microbat.cell.eis.EISParameters` used (JSON-ready).
    details : dict
        Model-specific numbers (unknowns, solver, time per frequency, residuals,
        homogenised inputs).
    provenance : Provenance
    """

    frequency_Hz: np.ndarray
    z_real_ohm: np.ndarray
    z_imag_ohm: np.ndarray
    area_m2: float
    model: str
    blocking: bool
    interface_area_m2: float
    parameters: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    provenance: Provenance | None = None

    _json_arrays = ("frequency_Hz", "z_real_ohm", "z_imag_ohm")

    @property
    def impedance(self) -> np.ndarray:
        """Complex impedance (Ω)."""
        return self.z_real_ohm + 1j * self.z_imag_ohm

    @property
    def area_specific_ohm_m2(self) -> np.ndarray:
        """Complex area-specific impedance ``Z · A`` (Ω m²)."""
        return self.impedance * self.area_m2

    @property
    def omega(self) -> np.ndarray:
        """Angular frequencies (rad/s)."""
        return 2 * np.pi * self.frequency_Hz

    def table(self) -> np.ndarray:
        """Columns f (Hz), Re Z, Im Z, |Z| (Ω), phase (degrees)."""
        z = self.impedance
        return np.column_stack(
            [self.frequency_Hz, z.real, z.imag, np.abs(z), np.degrees(np.angle(z))]
        )

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write ``f_Hz, z_real_ohm, z_imag_ohm, z_abs_ohm, phase_deg`` atomically."""
        from microbat.core.atomic import atomic_path

        with atomic_path(path) as tmp:
            np.savetxt(
                tmp,
                self.table(),
                delimiter=",",
                header="f_Hz,z_real_ohm,z_imag_ohm,z_abs_ohm,phase_deg",
                comments="",
                fmt="%.10g",
            )
        return Path(path)

    def plot(self, **kwargs: Any) -> Any:
        """Nyquist and Bode figure (see :func:`microbat.cell.eis.plots.plot_spectra`)."""
        from microbat.cell.eis.plots import plot_spectra

        return plot_spectra([self], **kwargs)
