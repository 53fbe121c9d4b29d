"""Unit handling at the edges.

Inside microbat every quantity is SI (m, s, A, V, mol/m³, K, Pa). Conversions from
user text (``"0.4um"``, ``"400 nm"``) happen here and nowhere else.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from microbat.core.errors import InvalidInputError, VoxelSizeError

__all__ = [
    "format_length",
    "parse_current_density",
    "parse_length",
    "parse_pressure",
    "parse_voxel_size",
]

_LENGTH_UNITS = {
    "m": 1.0,
    "mm": 1e-3,
    "um": 1e-6,
    "µm": 1e-6,
    "μm": 1e-6,
    "micron": 1e-6,
    "microns": 1e-6,
    "nm": 1e-9,
    "pm": 1e-12,
}
_PATTERN = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([a-zA-Zµμ]*)\s*$")


def parse_length(text: str | float) -> float:
    """Parse a length with an optional unit suffix into metres.

    Parameters
    ----------
    text : str or float
        ``"4e-7"``, ``"0.4um"``, ``"400 nm"``, ``"0.0004mm"`` or a number (metres).

    Returns
    -------
    float
        The length in metres.

    Raises
    ------
    VoxelSizeError
        If the text is not a positive finite length with a known unit.

    Examples
    --------
    >>> parse_length("0.4um")
    4e-07
    """
    if isinstance(text, int | float):
        value = float(text)
    else:
        m = _PATTERN.match(str(text))
        if not m:
            raise VoxelSizeError(
                f"cannot read {text!r} as a length; write metres (4e-7) or a number "
                f"with a unit suffix ({', '.join(sorted(set(_LENGTH_UNITS) - {'μm'}))}), e.g. 0.4um"
            )
        number, unit = m.groups()
        if unit and unit not in _LENGTH_UNITS:
            raise VoxelSizeError(
                f"unknown length unit {unit!r} in {text!r}; use one of "
                f"{', '.join(sorted(set(_LENGTH_UNITS) - {'μm'}))}"
            )
        value = float(number) * _LENGTH_UNITS.get(unit or "m")
    if not math.isfinite(value) or value <= 0:
        raise VoxelSizeError(f"a length must be positive and finite, got {text!r}")
    return value


def parse_voxel_size(text: str | float | Sequence[float | str]) -> tuple[float, ...]:
    """Parse a voxel size: one length, or one per axis separated by commas.

    Parameters
    ----------
    text : str, float or sequence
        ``"0.4um"``, ``"0.4um,0.4um,0.8um"`` or a sequence of lengths.

    Returns
    -------
    tuple of float
        One or three lengths in metres.
    """
    if isinstance(text, str):
        parts: list[str | float] = [p for p in text.replace(";", ",").split(",") if p.strip()]
    elif isinstance(text, int | float):
        parts = [text]
    else:
        parts = list(text)
    if len(parts) not in (1, 2, 3):
        raise VoxelSizeError(f"give one voxel size or one per axis, got {len(parts)} values")
    return tuple(parse_length(p) for p in parts)


def format_length(value: float) -> str:
    """Format a length in metres with a readable unit (``4e-07`` → ``'0.4 µm'``)."""
    for unit, scale in (("m", 1.0), ("mm", 1e-3), ("µm", 1e-6), ("nm", 1e-9)):
        if abs(value) >= scale:
            return f"{value / scale:.4g} {unit}"
    return f"{value:.4g} m"


_CURRENT_DENSITY_UNITS = {"a/m2": 1.0, "a/cm2": 1e4, "ma/cm2": 10.0, "ma/m2": 1e-3}
_CD_PATTERN = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([a-zA-Z/^²0-9]*)\s*$")


def parse_current_density(text: str | float) -> float:
    """Parse a current density with an optional unit into A/m².

    Parameters
    ----------
    text : str or float
        ``"30"`` or ``30`` (A/m²), ``"30A/m2"``, ``"3mA/cm2"`` (also ``m^2``, ``m²``).

    Returns
    -------
    float
        The current density in A/m² (sign and zero are the caller's to judge).

    Raises
    ------
    InvalidInputError
        Not a finite number with a known unit.

    Examples
    --------
    >>> parse_current_density("3mA/cm2")
    30.0
    """
    if isinstance(text, int | float):
        value = float(text)
    else:
        m = _CD_PATTERN.match(str(text))
        unit = m.group(2).lower().replace("^", "").replace("²", "2") if m else ""
        if not m or (unit and unit not in _CURRENT_DENSITY_UNITS):
            raise InvalidInputError(
                f"cannot read {text!r} as a current density; write A/m² (30), or a number "
                "with a unit: 30A/m2, 3mA/cm2"
            )
        value = float(m.group(1)) * _CURRENT_DENSITY_UNITS.get(unit or "a/m2", 1.0)
    if not math.isfinite(value):
        raise InvalidInputError(f"a current density must be finite, got {text!r}")
    return value


_PRESSURE_UNITS = {"pa": 1.0, "kpa": 1e3, "mpa": 1e6, "gpa": 1e9}


def parse_pressure(text: str | float, *, what: str = "a modulus") -> float:
    """Parse a pressure or modulus with an optional unit suffix into pascals.

    Parameters
    ----------
    text : str or float
        ``"1.5e11"``, ``"150GPa"``, ``"500 MPa"``, ``"3kPa"`` or a number (Pa).
    what : str
        What the value is, for the error message.

    Returns
    -------
    float
        The value in Pa (any sign; the caller checks the range).

    Raises
    ------
    InvalidInputError
        Not a finite number with a known unit (Pa, kPa, MPa, GPa).

    Examples
    --------
    >>> parse_pressure("15GPa")
    15000000000.0
    """
    if isinstance(text, int | float):
        value = float(text)
    else:
        m = _PATTERN.match(str(text))
        unit = m.group(2).lower() if m else ""
        if not m or (unit and unit not in _PRESSURE_UNITS):
            raise InvalidInputError(
                f"cannot read {text!r} as {what}; write pascals (1.5e11) or a number with "
                "a unit (Pa, kPa, MPa, GPa), e.g. 15GPa"
            )
        value = float(m.group(1)) * _PRESSURE_UNITS.get(unit or "pa", 1.0)
    if not math.isfinite(value):
        raise InvalidInputError(f"{what} must be finite, got {text!r}")
    return value
