"""Numerical view of the shared cell parameters for the resolved model.

The resolved model reads the *same* :class:`~microbat.cell.parameters.CellParameters`
object as the P2D bridge: the typed scalars (maximum concentration, solid
conductivity, separator geometry, cut-off voltages, temperature) and the functional
relations of the published set (open-circuit potential, exchange-current density,
solid diffusivity, electrolyte conductivity and diffusivity) kept in its PyBaMM
mapping. This module wraps those functions so they take and return NumPy arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from microbat.core.errors import InvalidInputError

__all__ = ["FARADAY", "GAS_CONSTANT", "ResolvedParameters"]

FARADAY = 96485.33212  # C/mol (CODATA 2018), the value used by the parameter module
GAS_CONSTANT = 8.314462618  # J/(mol K)


def _numeric(func: Any, *args: Any) -> np.ndarray:
    """Call a PyBaMM-style parameter function on NumPy arrays and get an array back."""
    shape = np.broadcast_shapes(*(np.shape(a) for a in args))
    out = func(*args) if callable(func) else func
    if hasattr(out, "evaluate"):  # a pybamm.Symbol (e.g. pybamm.constants in the body)
        out = out.evaluate()
    arr = np.asarray(out, dtype=float)
    if arr.size == math.prod(shape) and arr.shape != shape:
        arr = arr.reshape(shape)
    return np.broadcast_to(arr, shape).astype(float, copy=False)


@dataclass(frozen=True)
class ResolvedParameters:
    """Parameters of one electrode against lithium metal, as arrays-in/arrays-out.

    Build with :meth:`from_cell_parameters`; the functions are those of the published
    set, so the P2D bridge and the resolved model share one definition.

    Attributes
    ----------
    name : str
        Name of the source set.
    electrode : str
        ``"positive"`` or ``"negative"``.
    ocp : callable
        Open-circuit potential ``U(θ)`` in V vs Li/Li⁺, θ = c_s / c_s,max.
    exchange_current : callable
        ``j0(c_e, c_s, c_s,max, T)`` in A/m².
    solid_diffusivity : callable
        ``D_s(θ, T)`` in m²/s.
    electrolyte_conductivity, electrolyte_diffusivity : callable
        ``κ(c_e, T)`` in S/m and ``D_e(c_e, T)`` in m²/s (bulk electrolyte).
    transference_number : float
        Cation transference number t₊.
    thermodynamic_factor : float
        ``1 + d ln f± / d ln c_e``.
    c_max : float
        Maximum lithium concentration in the active material, mol/m³.
    c_s0 : float
        Initial lithium concentration in the active material, mol/m³.
    c_e0 : float
        Initial electrolyte concentration, mol/m³.
    alpha : float
        Charge-transfer coefficient (anodic = cathodic = α for α = 0.5).
    solid_conductivity : float
        Electronic conductivity of the active-material voxels, S/m (the set's value,
        taken as the bulk conductivity of the particles).
    temperature : float
        Temperature, K.
    separator_thickness, separator_porosity, separator_bruggeman : float
        Homogeneous separator slab (m, -, -).
    lower_cutoff, upper_cutoff : float
        Voltage window, V.
    """

    name: str
    electrode: str
    ocp: Callable[[np.ndarray], np.ndarray]
    exchange_current: Callable[..., np.ndarray]
    solid_diffusivity: Callable[..., np.ndarray]
    electrolyte_conductivity: Callable[..., np.ndarray]
    electrolyte_diffusivity: Callable[..., np.ndarray]
    transference_number: float
    thermodynamic_factor: float
    c_max: float
    c_s0: float
    c_e0: float
    alpha: float
    solid_conductivity: float
    temperature: float
    separator_thickness: float
    separator_porosity: float
    separator_bruggeman: float
    lower_cutoff: float
    upper_cutoff: float

    @classmethod
    def from_cell_parameters(cls, params: Any, electrode: str = "positive") -> ResolvedParameters:
        """Read the resolved-model view of a :class:`~microbat.cell.CellParameters`.

        Parameters
        ----------
        params : CellParameters
            The shared parameter object (e.g. ``CellParameters.from_name("chen2020")``).
        electrode : {"positive", "negative"}
            Which electrode of the set is resolved (run against lithium metal).

        Raises
        ------
        InvalidInputError
            If the set lacks a function or number the resolved model needs.
        """
        el = params.electrode(electrode)
        store = params.pybamm_store
        D = electrode.capitalize()
        short = "Positive" if electrode == "positive" else "Negative"

        def need(key: str) -> Any:
            if key not in store:
                raise InvalidInputError(
                    f"parameter set {params.name!r} has no {key!r}, which the resolved model "
                    "needs; start from a complete PyBaMM set such as 'chen2020'"
                )
            return store[key]

        ocp_f = need(f"{D} electrode OCP [V]")
        j0_f = need(f"{D} electrode exchange-current density [A.m-2]")
        ds_f = need(f"{short} particle diffusivity [m2.s-1]")
        kap_f = need("Electrolyte conductivity [S.m-1]")
        de_f = need("Electrolyte diffusivity [m2.s-1]")
        scale = el.exchange_current_scale
        c_s0 = store.get(f"Initial concentration in {electrode} electrode [mol.m-3]")
        if not isinstance(c_s0, int | float):
            raise InvalidInputError(
                f"the initial concentration in the {electrode} electrode of {params.name!r} "
                "is not a number; give one with with_values or a complete set"
            )
        t_plus = params.electrolyte.transference_number
        if t_plus is None:
            t_plus = float(need("Cation transference number"))
        tdf = store.get("Thermodynamic factor", 1.0)
        tdf = float(tdf) if isinstance(tdf, int | float) else 1.0
        alpha = store.get(f"{D} electrode charge transfer coefficient", 0.5)
        alpha = float(alpha) if isinstance(alpha, int | float) else 0.5
        return cls(
            name=params.name,
            electrode=electrode,
            ocp=lambda th: _numeric(ocp_f, th),
            exchange_current=lambda ce, cs, cmax, T: scale * _numeric(j0_f, ce, cs, cmax, T),
            solid_diffusivity=lambda th, T: _numeric(ds_f, th, T),
            electrolyte_conductivity=lambda ce, T: _numeric(kap_f, ce, T),
            electrolyte_diffusivity=lambda ce, T: _numeric(de_f, ce, T),
            transference_number=float(t_plus),
            thermodynamic_factor=tdf,
            c_max=el.max_concentration_mol_per_m3,
            c_s0=float(c_s0),
            c_e0=params.electrolyte.initial_concentration_mol_per_m3,
            alpha=alpha,
            solid_conductivity=el.conductivity_S_per_m,
            temperature=params.cell.ambient_temperature_K,
            separator_thickness=params.separator.thickness_m,
            separator_porosity=params.separator.porosity,
            separator_bruggeman=params.separator.bruggeman_electrolyte,
            lower_cutoff=params.cell.lower_cutoff_V,
            upper_cutoff=params.cell.upper_cutoff_V,
        )

    def max_stoichiometry(self, cutoff_V: float) -> float:
        """Stoichiometry at which the OCP reaches ``cutoff_V`` (1 when it never does).

        For a positive electrode discharged (lithiated) from θ₀; used for the 1C current.
        """
        th = np.linspace(self.c_s0 / self.c_max, 1.0, 2001)
        u = self.ocp(th)
        below = np.flatnonzero(u <= cutoff_V)
        return float(th[below[0]]) if below.size else 1.0
