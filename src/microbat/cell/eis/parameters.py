r"""Parameters of the small-signal (impedance) model and the interfacial admittance.

Interfacial admittance
----------------------
At an active/electrolyte interface the small-signal current density that flows
from the solid into the electrolyte for a potential jump
``Δφ = φ_s − φ_e`` is ``i = Y(ω) Δφ`` with the admittance per area (S/m²)

.. math::

    Y(\omega) = \frac{1}{R_{ct} + Z_d(\omega)} + j\omega C_{dl},

the Faradaic branch (charge transfer in series with solid diffusion) in parallel
with the double layer (the Randles interface). In *blocking* mode the Faradaic
branch is removed (``Y = jωC_dl``).

Charge transfer: Butler–Volmer linearised at rest,

.. math::  R_{ct} = \frac{R T}{F i_0} \quad (\Omega\,\mathrm{m}^2),

which holds for ``α_a + α_c = 1`` (PyBaMM's symmetric ``α = 1/2``).

Solid diffusion: a sphere of radius ``R_p`` and diffusivity ``D_s`` whose surface
takes the flux ``i/F``; with ``β = R_p \sqrt{jω/D_s}`` [1]_

.. math::

    Z_d(\omega) = -\frac{\partial U}{\partial c_s} \, \frac{R_p}{F D_s}
        \, \frac{1}{\beta \coth \beta - 1},

(``diffusion_geometry="sphere"``, the default) which tends to the Warburg element
``−U'/(F\sqrt{jωD_s})`` at high frequency and to the intercalation capacitance
``C_int = F R_p / (3 |U'|)`` per area at low frequency. ``U' = ∂U/∂c_s`` (V m³/mol) is
negative for both electrodes.

With ``diffusion_geometry="slab"`` the particle is a planar layer of thickness
``R_p`` fed through one face with the other sealed (the finite-space Warburg
element, e.g. a dense film on the current collector),

.. math::  Z_d(\omega) = -\frac{\partial U}{\partial c_s}\,\frac{R_p}{F D_s}\,
    \frac{\coth \beta}{\beta},

with the same Warburg limit and the intercalation capacitance ``F R_p / |U'|``.
Both also take a complex Laplace variable ``s`` in place of ``jω``
(:meth:`EISParameters.laplace_admittance`), for time-domain responses.

Defaults
--------
The defaults are round numbers of a typical NMC positive electrode in 1 M LiPF6
(κ = 1 S/m; C_dl = 0.2 F/m², the value of the Chen2020 and Marquis2019 sets in
PyBaMM and the usual order of magnitude 10-50 µF/cm² [2]_). :meth:`EISParameters.from_cell`
replaces them by the values of a published set at a state of charge.

References
----------
.. [1] J. P. Meyers, M. Doyle, R. M. Darling and J. Newman, "The impedance
   response of a porous electrode composed of intercalation particles",
   J. Electrochem. Soc. 147, 2930-2940 (2000).
.. [2] A. J. Bard and L. R. Faulkner, *Electrochemical Methods*, 2nd ed., Wiley
   (2001), ch. 13.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from microbat.core.errors import InvalidInputError

__all__ = ["FARADAY", "GAS_CONSTANT", "EISParameters"]

FARADAY = 96485.33212  #: C/mol (CODATA 2018)
GAS_CONSTANT = 8.314462618  #: J/(mol K) (CODATA 2018)

_POSITIVE = (
    "electrolyte_conductivity_S_per_m",
    "active_conductivity_S_per_m",
    "double_layer_F_per_m2",
    "exchange_current_A_per_m2",
    "temperature_K",
    "particle_radius_m",
    "solid_diffusivity_m2_per_s",
    "current_collector_conductivity_S_per_m",
    "solid_electrolyte_conductivity_S_per_m",
)
_FRACTIONS = ("cbd_ionic_fraction", "cbd_wetted_fraction", "separator_ionic_fraction")


@dataclass(frozen=True)
class EISParameters:
    """Material and interface parameters of the impedance model (SI units).

    Attributes
    ----------
    electrolyte_conductivity_S_per_m : float
        Bulk ionic conductivity κ of the liquid electrolyte (pores).
    cbd_ionic_fraction : float
        Ionic conductivity of the nanoporous carbon-binder domain relative to κ
        (``ε_cbd / τ_cbd``; default 0.5^1.5 ≈ 0.35, Bruggeman with ε_cbd = 0.5).
    cbd_wetted_fraction : float
        Fraction of an active/carbon-binder face that is wetted by electrolyte and
        carries the interfacial admittance (default 0.5, the CBD porosity).
    separator_ionic_fraction : float
        Ionic conductivity of separator-role voxels relative to κ (default
        0.4^1.5 ≈ 0.25).
    active_conductivity_S_per_m : float
        Electronic conductivity of the active material (bulk).
    cbd_conductivity_S_per_m : float
        Electronic conductivity of the carbon-binder domain.
    current_collector_conductivity_S_per_m : float
        Conductivity of current-collector-role voxels.
    double_layer_F_per_m2 : float
        Double-layer capacitance per interface area.
    exchange_current_A_per_m2 : float
        Exchange-current density ``i0`` at the rest state.
    temperature_K : float
        Temperature.
    particle_radius_m : float
        Radius of the spherical particle of the solid-diffusion impedance.
    solid_diffusivity_m2_per_s : float
        Lithium diffusivity in the active material.
    ocp_slope_V_m3_per_mol : float
        ``∂U/∂c_s`` at the rest state (≤ 0). 0 switches solid diffusion off.
    diffusion_geometry : {"sphere", "slab"}
        Shape of the solid-diffusion domain behind each interface: a sphere of
        radius ``particle_radius_m`` (default) or a planar layer of that thickness
        sealed on its far side.
    soc : float or None
        State of charge the values were taken at (informational).
    solid_electrolyte_conductivity_S_per_m : float
        Ionic conductivity σ_SE of a solid electrolyte (role ``solid_electrolyte``),
        used instead of the liquid's κ when the image is a composite cathode (a
        single-ion conductor, see :mod:`microbat.cell.eis.resolved`). Default 0.2 S/m
        = 2 mS/cm, the value of ``simulate --se-conductivity``: the order of the
        room-temperature total conductivities of the argyrodites Li₆PS₅Cl and
        Li₆PS₅Cl₀.₅Br₀.₅ (about 1 and 2 mS/cm, Kraft et al., J. Am. Chem. Soc. 139,
        10909 (2017), doi:10.1021/jacs.7b06327); about 0.05 S/m for garnet LLZO.
    source : str
        Where the values come from.
    """

    electrolyte_conductivity_S_per_m: float = 1.0
    cbd_ionic_fraction: float = 0.5**1.5
    cbd_wetted_fraction: float = 0.5
    separator_ionic_fraction: float = 0.4**1.5
    active_conductivity_S_per_m: float = 10.0
    cbd_conductivity_S_per_m: float = 100.0
    current_collector_conductivity_S_per_m: float = 3.7e7
    double_layer_F_per_m2: float = 0.2
    exchange_current_A_per_m2: float = 1.0
    temperature_K: float = 298.15
    particle_radius_m: float = 5e-6
    solid_diffusivity_m2_per_s: float = 4e-15
    ocp_slope_V_m3_per_mol: float = -2e-5
    diffusion_geometry: Literal["sphere", "slab"] = "sphere"
    solid_electrolyte_conductivity_S_per_m: float = 0.2
    soc: float | None = None
    source: str = "defaults (typical NMC positive electrode)"
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for name in _POSITIVE:
            v = getattr(self, name)
            if not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
                raise InvalidInputError(
                    f"EISParameters.{name} must be a positive number, got {v!r}"
                )
        for name in _FRACTIONS:
            v = getattr(self, name)
            if not isinstance(v, int | float) or not (0.0 <= v <= 1.0):
                raise InvalidInputError(f"EISParameters.{name} must lie in 0..1, got {v!r}")
        if not math.isfinite(self.cbd_conductivity_S_per_m) or self.cbd_conductivity_S_per_m < 0:
            raise InvalidInputError("EISParameters.cbd_conductivity_S_per_m must be >= 0")
        if self.diffusion_geometry not in ("sphere", "slab"):
            raise InvalidInputError(
                f"diffusion_geometry must be 'sphere' or 'slab', got {self.diffusion_geometry!r}"
            )
        s = self.ocp_slope_V_m3_per_mol
        if not math.isfinite(s) or s > 0:
            raise InvalidInputError(
                f"ocp_slope_V_m3_per_mol = {s!r}; dU/dc_s must be finite and <= 0 (the OCP "
                "falls as the particle fills); 0 switches solid diffusion off"
            )

    # ------------------------------------------------------------ derived
    @property
    def charge_transfer_ohm_m2(self) -> float:
        """Charge-transfer resistance ``R_ct = R T / (F i0)`` (Ω m²)."""
        return GAS_CONSTANT * self.temperature_K / (FARADAY * self.exchange_current_A_per_m2)

    @property
    def intercalation_capacitance_F_per_m2(self) -> float:
        """Low-frequency limit of solid diffusion (capacitance per area, F/m²).

        ``F R_p / (3 |U'|)`` for a sphere, ``F R_p / |U'|`` for a slab; inf when U' = 0.
        """
        s = abs(self.ocp_slope_V_m3_per_mol)
        k = 1.0 if self.diffusion_geometry == "slab" else 3.0
        return math.inf if s == 0 else FARADAY * self.particle_radius_m / (k * s)

    @property
    def diffusion_time_s(self) -> float:
        """Solid diffusion time ``R_p² / D_s``."""
        return self.particle_radius_m**2 / self.solid_diffusivity_m2_per_s

    def diffusion_impedance(self, omega: np.ndarray | float) -> np.ndarray:
        """Solid-diffusion impedance ``Z_d(ω)`` per area (Ω m², see module notes)."""
        return self.laplace_diffusion_impedance(1j * np.asarray(omega, dtype=np.float64))

    def laplace_diffusion_impedance(self, s: np.ndarray | complex) -> np.ndarray:
        """``Z_d`` at the complex Laplace variable ``s`` (``s = jω`` on the axis)."""
        s = np.asarray(s, dtype=np.complex128)
        if self.ocp_slope_V_m3_per_mol == 0:
            return np.zeros(s.shape, np.complex128)
        R, D = self.particle_radius_m, self.solid_diffusivity_m2_per_s
        beta = R * np.sqrt(s / D)
        small = np.abs(beta) < 1e-3
        b = np.where(small, 1.0, beta)
        scale = -self.ocp_slope_V_m3_per_mol * R / (FARADAY * D)
        if self.diffusion_geometry == "slab":
            # coth β / β, with the series 1/β² + 1/3 − β²/45 for small β
            bs = np.where(small, beta, 1.0)
            g = np.where(small, 1 / bs**2 + 1 / 3 - beta**2 / 45, 1 / (b * np.tanh(b)))
            return scale * g
        # β coth β − 1, with the series β²/3 − β⁴/45 for small β
        g = np.where(small, beta**2 / 3 - beta**4 / 45, b / np.tanh(b) - 1.0)
        return scale / g

    def admittance(self, omega: np.ndarray | float, *, blocking: bool = False) -> np.ndarray:
        """Interfacial admittance ``Y(ω)`` per area (S/m², see module notes)."""
        return self.laplace_admittance(1j * np.asarray(omega, dtype=np.float64), blocking=blocking)

    def laplace_admittance(self, s: np.ndarray | complex, *, blocking: bool = False) -> np.ndarray:
        """Interfacial admittance per area at the complex Laplace variable ``s``."""
        s = np.asarray(s, dtype=np.complex128)
        y = s * self.double_layer_F_per_m2
        if not blocking:
            y = y + 1.0 / (self.charge_transfer_ohm_m2 + self.laplace_diffusion_impedance(s))
        return np.asarray(y, np.complex128)

    def with_values(self, **changes: Any) -> EISParameters:
        """A copy with some fields changed (validated)."""
        bad = set(changes) - {f.name for f in dataclasses.fields(self)}
        if bad:
            raise InvalidInputError(
                f"unknown EISParameters field(s) {sorted(bad)}; the fields are "
                f"{', '.join(f.name for f in dataclasses.fields(self))}"
            )
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary, with the derived charge-transfer resistance."""
        from microbat.core.results import to_jsonable

        d = to_jsonable(dataclasses.asdict(self))
        d["charge_transfer_ohm_m2"] = self.charge_transfer_ohm_m2
        return d

    # ------------------------------------------------------------ creation
    @classmethod
    def from_cell(
        cls,
        params: Any,
        *,
        electrode: Literal["negative", "positive"] = "positive",
        soc: float = 0.5,
        **overrides: Any,
    ) -> EISParameters:
        """Values of a published cell parameter set at a state of charge.

        Parameters
        ----------
        params : microbat.cell.CellParameters or str
            A parameter set or its name (``"chen2020"``).
        electrode : {"negative", "positive"}, default "positive"
            Which electrode the microstructure is.
        soc : float, default 0.5
            Cell state of charge (0..1); the stoichiometry is interpolated linearly
            between PyBaMM's 0 % and 100 % limits
            (``pybamm.lithium_ion.get_min_max_stoichiometries``).
        **overrides
            Fields to set after reading (e.g. ``cbd_ionic_fraction=0.2``).

        Returns
        -------
        EISParameters

        Notes
        -----
        ``i0`` is the set's exchange-current function at the initial electrolyte
        concentration and the surface concentration of the rest state, times
        ``exchange_current_scale``; ``U'`` a central difference of its OCP; κ its
        conductivity function. Electrode conductivities of sets that give an
        effective value (Bruggeman exponent 0, as Chen2020) are converted to bulk by
        ``σ / (1 − ε)^1.5``. The double-layer capacitance is the set's
        ``"... double-layer capacity [F.m-2]"`` where present, else 0.2 F/m².
        Loads PyBaMM (about 2 s the first time).
        """
        from microbat.cell._pybamm import import_pybamm
        from microbat.cell.parameters import CellParameters

        if isinstance(params, str):
            params = CellParameters.from_name(params)
        if electrode not in ("negative", "positive"):
            raise InvalidInputError(
                f"electrode must be 'negative' or 'positive', got {electrode!r}"
            )
        soc = float(soc)
        if not (0.0 <= soc <= 1.0):
            raise InvalidInputError(f"soc must lie in 0..1, got {soc!r}")
        pybamm = import_pybamm()
        pv = params.to_pybamm()
        x0, x100, y100, y0 = (float(v) for v in pybamm.lithium_ion.get_min_max_stoichiometries(pv))
        sto = x0 + (x100 - x0) * soc if electrode == "negative" else y0 + (y100 - y0) * soc
        el = params.electrode(electrode)
        D = electrode.capitalize()
        T = float(params.cell.initial_temperature_K)
        c_e = float(params.electrolyte.initial_concentration_mol_per_m3)
        c_max = el.max_concentration_mol_per_m3

        def ev(value: Any, *args: float) -> float:
            if callable(value):
                out = value(*(pybamm.Scalar(a) for a in args))
                return float(out.evaluate()) if hasattr(out, "evaluate") else float(out)
            return float(value)

        i0 = el.exchange_current_scale * ev(
            pv[f"{D} electrode exchange-current density [A.m-2]"], c_e, sto * c_max, c_max, T
        )
        ocp = pv[f"{D} electrode OCP [V]"]
        ds = 1e-4
        lo, hi = max(sto - ds, 1e-4), min(sto + ds, 1 - 1e-4)
        slope = (ev(ocp, hi) - ev(ocp, lo)) / ((hi - lo) * c_max)
        dif = pv[f"{D} particle diffusivity [m2.s-1]"]
        try:
            d_s = ev(dif, sto, T)
        except TypeError:
            d_s = ev(dif, sto)
        kappa = ev(pv["Electrolyte conductivity [S.m-1]"], c_e, T)
        key = f"{D} electrode double-layer capacity [F.m-2]"
        notes = []
        if key in pv.keys():
            c_dl = float(pv[key])
        else:
            c_dl = 0.2
            notes.append("double-layer capacitance not in the set: 0.2 F/m² (Bard & Faulkner)")
        sigma = el.conductivity_S_per_m
        if el.bruggeman_electrode == 0:
            sigma = sigma / (1 - el.porosity) ** 1.5
            notes.append("set gives an effective solid conductivity; bulk = σ/(1−ε)^1.5")
        values: dict[str, Any] = {
            "electrolyte_conductivity_S_per_m": kappa,
            "active_conductivity_S_per_m": sigma,
            "double_layer_F_per_m2": c_dl,
            "exchange_current_A_per_m2": i0,
            "temperature_K": T,
            "particle_radius_m": el.particle_radius_m,
            "solid_diffusivity_m2_per_s": d_s,
            "ocp_slope_V_m3_per_mol": min(slope, 0.0),
            "soc": soc,
            "source": f"{params.name} ({electrode} electrode, stoichiometry {sto:.4f})",
            "notes": tuple(notes),
        }
        values.update(overrides)
        return cls(**values)
