"""BPX documents to and from PyBaMM parameter values (private; see :mod:`microbat.cell.bpx`).

Below :mod:`microbat.cell.parameters`: it reads a BPX document into PyBaMM parameter
values and writes one from a :class:`~microbat.cell.parameters.CellParameters` it is
handed, without importing that module, so that ``CellParameters.from_bpx``/``to_bpx``
and :mod:`microbat.cell.bpx` all build on it and no import goes back up.
"""

from __future__ import annotations

import inspect
import json
import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from microbat.cell._pybamm import import_pybamm
from microbat.core.atomic import atomic_write_text
from microbat.core.constants import FARADAY
from microbat.core.errors import FileFormatError, InvalidInputError, MissingDependencyError

if TYPE_CHECKING:
    from microbat.cell.parameters import CellParameters

__all__ = ["read_bpx_values", "write_bpx"]

_STO_POINTS = 401
_CE_POINTS = 121


def _bpx_module() -> Any:
    # bpx 1.x builds its expression parser at import with pyparsing names that newer
    # pyparsing deprecates; that deprecation is bpx's to fix and says nothing to users.
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning, module="pyparsing")
            warnings.filterwarnings("ignore", category=DeprecationWarning, module="bpx")
            import bpx
            import pybamm.parameters.bpx  # noqa: F401  (imports bpx the same way)
    except ImportError:  # pragma: no cover - dependency declared in pyproject
        raise MissingDependencyError(
            "the 'bpx' package is needed for BPX files; install it with: pip install bpx"
        ) from None
    return bpx


def read_bpx_values(source: str | Path | dict[str, Any]) -> tuple[Any, str, str, tuple[str, ...]]:
    """Read a BPX parameter set into PyBaMM parameter values (no :class:`CellParameters`).

    The reading behind :meth:`CellParameters.from_bpx
    <microbat.cell.parameters.CellParameters.from_bpx>` and
    :func:`microbat.cell.bpx.read_bpx`.

    Parameters
    ----------
    source : path, JSON text or dict
        A ``.json`` BPX file, its text, or the parsed dictionary.

    Returns
    -------
    values : pybamm.ParameterValues
    name : str
        The BPX title (``"bpx"`` without one).
    citation : str
        The BPX references, else where the document came from.
    notes : tuple of str
        PyBaMM's import notes and the porosity fixes.

    Raises
    ------
    FileFormatError
        Missing file, invalid JSON, or a document that is not valid BPX.
    """
    pybamm = import_pybamm()
    _bpx_module()
    if isinstance(source, dict):
        data = source
        where = "BPX dictionary"
    else:
        text = str(source)
        if text.lstrip().startswith("{"):
            raw, where = text, "BPX text"
        else:
            path = Path(source)
            if not path.is_file():
                raise FileFormatError(f"BPX file {str(path)!r} does not exist")
            raw, where = path.read_text(encoding="utf-8"), str(path)
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise FileFormatError(f"{where} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise FileFormatError(f"{where} is not a BPX document (a JSON object is expected)")
    header = data.get("Header", {}) or {}
    data, fixes = _porosity_one(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            pv = pybamm.ParameterValues.create_from_bpx_obj(data)
        except (ValueError, KeyError, TypeError, ZeroDivisionError) as exc:
            msg = str(exc).strip().splitlines()
            raise FileFormatError(
                f"{where} is not a valid BPX parameter set: {' '.join(msg[:3])}"
            ) from None
    # keep what the reader says about the data (defaults it applied); drop deprecation
    # chatter between pybamm, bpx and pydantic, which says nothing about the file
    notes = fixes + tuple(
        f"BPX import: {w.message}" for w in caught if not issubclass(w.category, DeprecationWarning)
    )
    return pv, str(header.get("Title") or "bpx"), str(header.get("References") or where), notes


def _porosity_one(data: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Replace a porosity of exactly 1 by ``1 − 1e-9``.

    PyBaMM's BPX reader computes the Bruggeman exponent as ``ln(TE) / ln(ε)``, which
    is 0/0 for ε = 1 (a free electrolyte layer, e.g. Marquis2019's separator).
    """
    param = data.get("Parameterisation")
    if not isinstance(param, dict):
        return data, ()
    fixes = []
    new_param = dict(param)
    for part in ("Separator", "Negative electrode", "Positive electrode"):
        sec = param.get(part)
        if isinstance(sec, dict) and isinstance(sec.get("Porosity"), int | float):
            if sec["Porosity"] >= 1.0:
                new_param[part] = {**sec, "Porosity": 1.0 - 1e-9}
                fixes.append(f"{part} porosity 1 read as 1 − 1e-9 (PyBaMM divides by ln ε)")
    if not fixes:
        return data, ()
    return {**data, "Parameterisation": new_param}, tuple(fixes)


def _eval(fn: Any, *args: Any) -> np.ndarray:
    pybamm = import_pybamm()
    if not callable(fn):
        return np.asarray(float(fn))
    sym = [pybamm.Vector(a) if np.ndim(a) else pybamm.Scalar(float(a)) for a in args]
    try:
        n = len(inspect.signature(fn).parameters)
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        n = len(sym)
    return np.asarray(fn(*sym[: max(n, 1)]).evaluate(), dtype=float).ravel()


def _table(x: np.ndarray, y: np.ndarray) -> dict[str, list[float]] | float:
    y = np.broadcast_to(np.asarray(y, dtype=float).ravel(), x.shape)
    if np.allclose(y, y[0], rtol=1e-12, atol=0):
        return float(y[0])
    return {"x": [float(v) for v in x], "y": [float(v) for v in y]}


def write_bpx(params: CellParameters, path: str | Path | None = None) -> dict[str, Any]:
    """Export the parameters as a BPX (DFN) document.

    Parameters
    ----------
    params : CellParameters
    path : path, optional
        Where to write the JSON (atomically); nothing is written when omitted.

    Returns
    -------
    dict
        The BPX document (validated with the ``bpx`` package).

    Notes
    -----
    See the notes of :mod:`microbat.cell.bpx` for what is tabulated and approximated.
    """
    pybamm = import_pybamm()
    bpx = _bpx_module()
    pv = params.to_pybamm()
    t_ref = float(pv["Reference temperature [K]"])
    c_e0 = params.electrolyte.initial_concentration_mol_per_m3
    x0, x100, y100, y0 = (float(v) for v in pybamm.lithium_ion.get_min_max_stoichiometries(pv))
    sto_limits = {"negative": (x0, x100), "positive": (y100, y0)}

    def electrode(which: str) -> dict[str, Any]:
        el = params.electrode(which)
        D = which.capitalize()
        lo, hi = sto_limits[which]
        sto = np.unique(np.concatenate([np.linspace(0.0, 1.0, _STO_POINTS), [lo, hi]]))
        ocp = _eval(pv[f"{D} electrode OCP [V]"], sto)
        diff = _eval(pv[f"{D} particle diffusivity [m2.s-1]"], sto, t_ref)
        dudt = _eval(pv[f"{D} electrode OCP entropic change [V.K-1]"], sto, t_ref)
        c_max = el.max_concentration_mol_per_m3
        j0 = pv[f"{D} electrode exchange-current density [A.m-2]"]
        j_ref = float(_eval(j0, c_e0, 0.5 * c_max, c_max, t_ref)[0])
        k = j_ref / (0.5 * FARADAY)
        j_chk = float(_eval(j0, 0.5 * c_e0, 0.2 * c_max, c_max, t_ref)[0])
        expected = FARADAY * k * math.sqrt(0.5 * 0.2 * 0.8)
        if not math.isclose(j_chk, expected, rel_tol=1e-3):
            notes.append(
                f"{which} exchange-current density is not of the BPX form; exported at the "
                f"reference point (c_e0, half-lithiated): off by "
                f"{100 * (j_chk / expected - 1):.1f}% at c_e0/2, x=0.2"
            )
        return {
            "Thickness [m]": el.thickness_m,
            "Porosity": el.porosity,
            "Transport efficiency": el.transport_efficiency,
            "Conductivity [S.m-1]": el.effective_conductivity_S_per_m,
            "Minimum stoichiometry": lo,
            "Maximum stoichiometry": hi,
            "Maximum concentration [mol.m-3]": c_max,
            "Particle radius [m]": el.particle_radius_m,
            "Surface area per unit volume [m-1]": 3.0 * el.active_fraction / el.particle_radius_m,
            "Diffusivity [m2.s-1]": _table(sto, diff),
            "OCP [V]": _table(sto, ocp),
            "Entropic change coefficient [V.K-1]": _table(sto, dudt),
            "Reaction rate constant [mol.m-2.s-1]": k,
        }

    notes: list[str] = []
    if params.negative.particle_radius_std_m or params.positive.particle_radius_std_m:
        notes.append("particle-size distribution not exported (BPX has no field for it)")
    ce = np.linspace(0.0, 6.0 * c_e0, _CE_POINTS)
    t_plus = pv["Cation transference number"]
    if callable(t_plus):
        t_plus = float(_eval(t_plus, c_e0, t_ref)[0])
        notes.append("transference number exported at c_e0 (BPX holds a constant)")
    cell = params.cell
    doc: dict[str, Any] = {
        "Header": {
            "BPX": "1.0.0",
            "Title": params.name,
            "Description": "Exported by microbat (functions tabulated at the reference "
            "temperature, activation energies 0)",
            "References": params.citation or "",
            "Model": "DFN",
        },
        "Parameterisation": {
            "Cell": {
                "Electrode area [m2]": cell.electrode_height_m * cell.electrode_width_m,
                "Number of electrode pairs connected in parallel to make a cell": round(
                    cell.electrodes_in_parallel
                ),
                "Lower voltage cut-off [V]": cell.lower_cutoff_V,
                "Upper voltage cut-off [V]": cell.upper_cutoff_V,
                "Nominal cell capacity [A.h]": cell.nominal_capacity_Ah,
                "Reference temperature [K]": t_ref,
            },
            "Electrolyte": {
                "Cation transference number": float(t_plus),
                "Diffusivity [m2.s-1]": _table(
                    ce, _eval(pv["Electrolyte diffusivity [m2.s-1]"], ce, t_ref)
                ),
                "Conductivity [S.m-1]": _table(
                    ce, _eval(pv["Electrolyte conductivity [S.m-1]"], ce, t_ref)
                ),
            },
            "Negative electrode": electrode("negative"),
            "Positive electrode": electrode("positive"),
            "Separator": {
                "Thickness [m]": params.separator.thickness_m,
                "Porosity": params.separator.porosity,
                "Transport efficiency": params.separator.porosity
                ** params.separator.bruggeman_electrolyte,
            },
        },
        "State": {
            "Initial conditions": {
                "Initial state-of-charge": 1.0,
                "Initial temperature [K]": cell.initial_temperature_K,
                "Initial electrolyte concentration [mol.m-3]": c_e0,
            },
            "Thermal environment": {"Ambient temperature [K]": cell.ambient_temperature_K},
        },
    }
    for key, name in (
        ("Cell cooling surface area [m2]", "External surface area [m2]"),
        ("Cell volume [m3]", "Volume [m3]"),
    ):
        if key in pv.keys() and isinstance(pv[key], int | float):
            doc["Parameterisation"]["Cell"][name] = float(pv[key])
    if notes:
        doc["Header"]["Description"] += "; " + "; ".join(notes)
    try:
        bpx.parse_bpx_obj(json.loads(json.dumps(doc)))
    except ValueError as exc:  # pydantic ValidationError is a ValueError
        raise InvalidInputError(f"the exported BPX document does not validate: {exc}") from None
    if path is not None:
        atomic_write_text(path, json.dumps(doc, indent=2))
    return doc
