"""Mechanical and fracture constants of the solid phases (typed, SI units, cited).

A :class:`MechanicalMaterial` holds what the stress and fracture models need of one
solid phase: Young's modulus, Poisson's ratio, the partial molar volume Ω of lithium
(the chemical eigenstrain is ``ε* = Ω (c − c_ref) / 3 I``), the fracture toughness
``K_IC``, and for an active material the maximum concentration, the solid diffusivity
and the stoichiometry window of a full (dis)charge (the closed-form screening needs
them). :class:`MechanicsParameters` assigns a material to each solid role of a
microstructure (active, carbon-binder, solid electrolyte) and holds the Griffith
settings (flaw size, geometry factor).

Default materials (:data:`MATERIALS`)
-------------------------------------
========== ========= ===== ============ ========== ========= ============= ==================
name       E (GPa)   ν     Ω (m³/mol)   K_IC       c_max     D_s (m²/s)    window (θ)
                                        (MPa·√m)   (mol/m³)
========== ========= ===== ============ ========== ========= ============= ==================
nmc811     150       0.25  1.26e-6      1.0        63 104    4e-15         0.27 – 0.91
graphite   15        0.3   3.1e-6       1.0        33 133    3.3e-14       0.0279 – 0.9014
cbd        1         0.3   0            –          –         –             –
llzo       150       0.26  0            1.0        –         –             –
========== ========= ===== ============ ========== ========= ============= ==================

Sources (each also in the material's ``source``):

* **NMC811.** E: nanoindentation of NMC particles gives 140–200 GPa (de Vasconcelos
  et al. 2016/2017; Xu et al. 2019; the issue's range); 150 GPa is taken. (PyBaMM's
  Ai2020 and O'Kane2022 sets use 375 GPa, ν = 0.2, which are LiCoO₂ values from
  Ai et al. 2020.) Ω: the unit-cell volume of NCM811 changes by 5.1 % between 3.0 and
  4.3 V (Kondrakov et al. 2017) over Δθ ≈ 0.64 of c_max = 63 104 mol/m³, so
  Ω ≈ 0.051 / (0.64 × 63 104) = 1.26e-6 m³/mol (a linear average of a non-linear
  change that is largest below 50 % lithium); positive: the lattice expands on
  lithiation. c_max, D_s and the window: Chen et al. 2020 (PyBaMM "Chen2020",
  initial stoichiometry 17 038 / 63 104 = 0.27, fully discharged 0.91).
  K_IC: no measurement on NMC could be retrieved (searched again for issue 17;
  ``docs/mechanics.md``, "Fracture toughness and flaws"); 1.0 MPa·√m lies above the
  trusted measurement on cathode-oxide particles, 0.24 MPa·√m for LiMn₂O₄ by
  micro-pillar splitting (0.81 by crack-opening displacement; Mughal et al. 2017,
  doi:10.3390/ma10040403), and within the 0.44–1.51 MPa·√m of LLZTO (Hu et al. 2023):
  an optimistic placeholder (critical C-rates scale as K_IC) to replace by a
  measured value.
  PyBaMM's ``OKane2022`` set is not followed: its Ω = 1.25e-5 m³/mol with the same
  c_max gives ``Ω c_max Δθ`` = 50 % volume change over the window (5.1 % measured,
  Kondrakov 2017), and its 375 GPa, ν = 0.2 are ``Ai2020``'s LiCoO₂ values
  (``Ai2020`` has Ω = −7.28e-7 for LiCoO₂); see ``docs/mechanics.md`` [8]_.
* **Graphite.** E = 15 GPa, ν = 0.3, Ω = 3.1e-6 m³/mol: PyBaMM's Ai2020 set (Ai et
  al. 2020, from Rieger et al. 2016); c_max, D_s, window: Chen2020. K_IC: polycrystalline
  graphite ≈ 1 MPa·√m (placeholder as above).
* **Carbon-binder (PVDF + carbon black).** E = 1 GPa within the 0.5–3 GPa of
  dry PVDF/carbon composites (electrolyte-swollen binder is softer); ν = 0.3; no
  lithium uptake (Ω = 0). No fracture check.
* **LLZO (garnet solid electrolyte).** E = 149.8 GPa at 3 % porosity by resonant
  ultrasound (Ni et al. 2012), ν = 0.26 (same work, ≈ 0.257); K_IC 1.0 MPa·√m
  (0.44–1.51 measured for LLZTO, Hu et al. 2023). Ω = 0 (no lithium storage).

References
----------
.. [1] W. Ai, L. Kraft, J. Sturm, A. Jossen, B. Wu, "Electrochemical thermal-mechanical
   modelling of stress inhomogeneity in lithium-ion pouch cells", J. Electrochem.
   Soc. 167, 013512 (2020) (PyBaMM parameter set ``Ai2020``).
.. [2] C.-H. Chen et al., J. Electrochem. Soc. 167, 080534 (2020) (``Chen2020``).
.. [3] A. O. Kondrakov et al., "Anisotropic lattice strain and mechanical degradation
   of high- and low-nickel NCM cathode materials for Li-ion batteries", J. Phys.
   Chem. C 121, 3286–3294 (2017).
.. [4] L. S. de Vasconcelos, R. Xu, J. Li, K. Zhao, "Grid indentation analysis of
   mechanical properties of composite electrodes in Li-ion batteries", Extreme
   Mech. Lett. 9, 495–502 (2016); R. Xu et al., "Heterogeneous damage in Li-ion
   batteries: experimental analysis and theoretical modeling", J. Mech. Phys.
   Solids 129, 160–183 (2019).
.. [5] M. Z. Mughal, H.-Y. Amanieu, R. Moscatelli, M. Sebastiani, "A comparison of
   microscale techniques for determining fracture toughness of LiMn2O4 particles",
   Materials 10, 403 (2017).
.. [6] S. Hu, P. Xu, L. S. de Vasconcelos, L. Stanciu, H. Ni, K. Zhao, "Elastic
   modulus, hardness, and fracture toughness of Li6.4La3Zr1.4Ta0.6O12 solid
   electrolyte", Chin. Phys. Lett. (2023).
.. [7] J. E. Ni, E. D. Case, J. S. Sakamoto, E. Rangasamy, J. B. Wolfenstine, "Room
   temperature elastic moduli and Vickers hardness of hot-pressed LLZO cubic
   garnet", J. Mater. Sci. 47, 7978–7985 (2012).
.. [8] S. E. J. O'Kane et al., "Lithium-ion battery degradation: how to model it",
   Phys. Chem. Chem. Phys. 24, 7909 (2022), doi:10.1039/D2CP00417H.
.. [9] W. Weibull, "A statistical distribution function of wide applicability",
   J. Appl. Mech. 18, 293–297 (1951) (``flaw_weibull_modulus``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from microbat.core.errors import FileFormatError, InvalidInputError

__all__ = [
    "CBD",
    "GRAPHITE",
    "LLZO",
    "MATERIALS",
    "NMC811",
    "MechanicalMaterial",
    "MechanicsParameters",
]


def _positive(name: str, value: Any, what: str, unit: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"{name}: {what} must be a number in {unit}, got {value!r}"
        ) from None
    if not (math.isfinite(v) and v > 0):
        raise InvalidInputError(f"{name}: {what} must be positive and finite, got {value!r} {unit}")
    return v


@dataclass(frozen=True)
class MechanicalMaterial:
    """Elastic, swelling and fracture constants of one solid phase (SI units).

    Attributes
    ----------
    name : str
        Material name (``"nmc811"``).
    young_modulus_Pa : float
        Young's modulus E (> 0).
    poisson_ratio : float
        Poisson's ratio ν (−1 < ν < 0.5).
    partial_molar_volume_m3_per_mol : float
        Ω; the isotropic chemical strain is ``Ω (c − c_ref) / 3`` per axis. 0 for a
        phase that stores no lithium.
    fracture_toughness_Pa_sqrt_m : float or None
        Mode-I fracture toughness K_IC (None: no fracture check for this phase).
    max_concentration_mol_per_m3 : float or None
        c_max of an active material (stoichiometry = c / c_max).
    diffusivity_m2_per_s : float or None
        Solid diffusivity D_s (closed-form screening).
    stoichiometry_window : tuple of float or None
        ``(θ_min, θ_max)`` swept by a full (dis)charge: lithiation goes from θ_min to
        θ_max, delithiation back. 1C moves θ over the window in one hour.
    source : str
        Where the numbers come from.
    """

    name: str
    young_modulus_Pa: float
    poisson_ratio: float
    partial_molar_volume_m3_per_mol: float = 0.0
    fracture_toughness_Pa_sqrt_m: float | None = None
    max_concentration_mol_per_m3: float | None = None
    diffusivity_m2_per_s: float | None = None
    stoichiometry_window: tuple[float, float] | None = None
    source: str = ""

    def __post_init__(self) -> None:
        n = self.name or "material"
        object.__setattr__(
            self, "young_modulus_Pa", _positive(n, self.young_modulus_Pa, "Young's modulus", "Pa")
        )
        nu = self.poisson_ratio
        try:
            nu = float(nu)
        except (TypeError, ValueError):
            raise InvalidInputError(f"{n}: Poisson's ratio must be a number, got {nu!r}") from None
        if not (math.isfinite(nu) and -1.0 < nu < 0.5):
            raise InvalidInputError(
                f"{n}: Poisson's ratio must lie in (-1, 0.5), got {nu!r} (0.5 is incompressible, "
                "which the displacement formulation cannot represent)"
            )
        object.__setattr__(self, "poisson_ratio", nu)
        om = float(self.partial_molar_volume_m3_per_mol)
        if not math.isfinite(om) or abs(om) > 1e-3:
            raise InvalidInputError(
                f"{n}: partial molar volume {om!r} m3/mol is not plausible (|Ω| ≤ 1e-3)"
            )
        object.__setattr__(self, "partial_molar_volume_m3_per_mol", om)
        for attr, what, unit in (
            ("fracture_toughness_Pa_sqrt_m", "fracture toughness", "Pa m^0.5"),
            ("max_concentration_mol_per_m3", "maximum concentration", "mol/m3"),
            ("diffusivity_m2_per_s", "diffusivity", "m2/s"),
        ):
            v = getattr(self, attr)
            if v is not None:
                object.__setattr__(self, attr, _positive(n, v, what, unit))
        w = self.stoichiometry_window
        if w is not None:
            try:
                lo, hi = (float(x) for x in w)
            except (TypeError, ValueError):
                raise InvalidInputError(
                    f"{n}: stoichiometry window is (min, max), got {w!r}"
                ) from None
            if not (0.0 <= lo < hi <= 1.0):
                raise InvalidInputError(
                    f"{n}: stoichiometry window must satisfy 0 <= min < max <= 1, got {w!r}"
                )
            object.__setattr__(self, "stoichiometry_window", (lo, hi))

    # ------------------------------------------------------------ derived
    @property
    def lame(self) -> tuple[float, float]:
        """Lamé constants ``(λ, μ)`` in Pa."""
        e, nu = self.young_modulus_Pa, self.poisson_ratio
        return e * nu / ((1 + nu) * (1 - 2 * nu)), e / (2 * (1 + nu))

    @property
    def bulk_modulus_Pa(self) -> float:
        """``K = E / (3 (1 − 2ν))``."""
        return self.young_modulus_Pa / (3 * (1 - 2 * self.poisson_ratio))

    @property
    def critical_energy_release_rate_J_per_m2(self) -> float | None:
        """``G_c = K_IC² (1 − ν²) / E`` (plane strain), or None without K_IC."""
        k = self.fracture_toughness_Pa_sqrt_m
        if k is None:
            return None
        return k**2 * (1 - self.poisson_ratio**2) / self.young_modulus_Pa

    def replace(self, **changes: Any) -> MechanicalMaterial:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def require(self, *fields: str, why: str) -> None:
        """Raise a clear error when fields needed for ``why`` are missing."""
        missing = [f for f in fields if getattr(self, f) is None]
        if missing:
            raise InvalidInputError(
                f"material {self.name!r} lacks {', '.join(missing)}, needed for {why}; "
                "set it in the parameter file or choose a material that has it"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        d = dataclasses.asdict(self)
        if self.stoichiometry_window is not None:
            d["stoichiometry_window"] = list(self.stoichiometry_window)
        return d


NMC811 = MechanicalMaterial(
    "nmc811",
    young_modulus_Pa=150e9,
    poisson_ratio=0.25,
    partial_molar_volume_m3_per_mol=1.26e-6,
    fracture_toughness_Pa_sqrt_m=1.0e6,
    max_concentration_mol_per_m3=63104.0,
    diffusivity_m2_per_s=4e-15,
    stoichiometry_window=(0.27, 0.91),
    source=(
        "E: 140-200 GPa by nanoindentation (de Vasconcelos 2016, Xu 2019), 150 GPa taken; "
        "Omega from the 5.1 % cell-volume change of NCM811 over 3.0-4.3 V (Kondrakov 2017); "
        "c_max, D_s, window: Chen2020; K_IC: placeholder above the 0.24 MPa m^0.5 of LiMn2O4 "
        "particles by pillar splitting (Mughal 2017); no NMC measurement retrieved"
    ),
)
GRAPHITE = MechanicalMaterial(
    "graphite",
    young_modulus_Pa=15e9,
    poisson_ratio=0.3,
    partial_molar_volume_m3_per_mol=3.1e-6,
    fracture_toughness_Pa_sqrt_m=1.0e6,
    max_concentration_mol_per_m3=33133.0,
    diffusivity_m2_per_s=3.3e-14,
    stoichiometry_window=(0.0279, 0.9014),
    source=(
        "E, nu, Omega: PyBaMM Ai2020 (Ai et al. 2020); c_max, D_s, window: Chen2020; "
        "K_IC: polycrystalline graphite ~1 MPa m^0.5 (placeholder)"
    ),
)
CBD = MechanicalMaterial(
    "cbd",
    young_modulus_Pa=1e9,
    poisson_ratio=0.3,
    source="PVDF/carbon-black composite, 0.5-3 GPa dry; 1 GPa taken; no lithium uptake",
)
LLZO = MechanicalMaterial(
    "llzo",
    young_modulus_Pa=149.8e9,
    poisson_ratio=0.26,
    fracture_toughness_Pa_sqrt_m=1.0e6,
    source="E, nu: Ni et al. 2012 (hot-pressed cubic LLZO, 3 % porosity); K_IC: Hu et al. 2023",
)

#: Named materials.
MATERIALS: dict[str, MechanicalMaterial] = {m.name: m for m in (NMC811, GRAPHITE, CBD, LLZO)}

_ROLES = ("active", "carbon_binder", "solid_electrolyte")


def _material(value: Any, role: str) -> MechanicalMaterial:
    if isinstance(value, MechanicalMaterial):
        return value
    if isinstance(value, str):
        key = value.strip().lower()
        if key not in MATERIALS:
            raise InvalidInputError(
                f"unknown material {value!r} for {role}; use one of {', '.join(MATERIALS)} "
                "or give its constants"
            )
        return MATERIALS[key]
    if isinstance(value, Mapping):
        data = dict(value)
        base = data.pop("base", None)
        fields = {f.name for f in dataclasses.fields(MechanicalMaterial)}
        unknown = set(data) - fields
        if unknown:
            raise InvalidInputError(
                f"unknown key(s) {sorted(unknown)} for the {role} material; known: {sorted(fields)}"
            )
        if base is not None:
            return _material(base, role).replace(**data)
        missing = {"young_modulus_Pa", "poisson_ratio"} - set(data)
        if missing:
            raise InvalidInputError(
                f"the {role} material lacks {sorted(missing)} (or a 'base' material to start from)"
            )
        data.setdefault("name", role)
        return MechanicalMaterial(**data)
    raise InvalidInputError(f"cannot read {value!r} as the {role} material")


@dataclass(frozen=True)
class MechanicsParameters:
    """Materials per solid role and the Griffith settings.

    Attributes
    ----------
    active : MechanicalMaterial
        Active material (default :data:`NMC811`).
    carbon_binder : MechanicalMaterial
        Carbon-binder domain (default :data:`CBD`).
    solid_electrolyte : MechanicalMaterial
        Solid electrolyte (default :data:`LLZO`).
    flaw_fraction : float
        Surface-flaw depth as a fraction of the particle's equivalent radius
        (default 0.05: 0.26 µm for a 5.2 µm NMC particle, the order of its primary
        grains, where cracks start).
    flaw_size_m : float or None
        A fixed flaw depth in m for every particle (overrides ``flaw_fraction``).
    flaw_weibull_modulus : float or None
        A flaw-size distribution instead of one flaw per size (default None): each
        particle's flaw is ``a = a₀ E^(−2/m)`` with ``E`` a standard exponential
        draw and ``a₀`` the flaw above (``flaw_fraction R`` or ``flaw_size_m``), so
        that the particles' Griffith strength ``K_IC / (Y √(π a))`` follows a
        two-parameter Weibull distribution of modulus ``m`` whose characteristic
        strength is that of ``a₀`` (Weibull 1951; the weakest-link statistics of
        brittle strength). Smaller ``m``: a wider spread of flaws.
    flaw_seed : int
        Seed of the flaw draws (default 0); particle ``k`` (label order) always gets
        the ``k``-th draw.
    geometry_factor : float
        Y of ``K_I = Y σ √(π a)`` (default 1.12, an edge crack in a half-space).
    stress_statistic : {"p99", "max"}
        Which per-particle tensile stress enters ``K_I`` on the voxel field: the 99th
        percentile of the maximum principal stress (default; the single largest
        voxel value sits at a staircase corner of the voxelised surface and does not
        converge with refinement) or the maximum.
    """

    active: MechanicalMaterial = NMC811
    carbon_binder: MechanicalMaterial = CBD
    solid_electrolyte: MechanicalMaterial = LLZO
    flaw_fraction: float = 0.05
    flaw_size_m: float | None = None
    flaw_weibull_modulus: float | None = None
    flaw_seed: int = 0
    geometry_factor: float = 1.12
    stress_statistic: Literal["p99", "max"] = "p99"

    def __post_init__(self) -> None:
        for role in _ROLES:
            object.__setattr__(self, role, _material(getattr(self, role), role))
        f = float(self.flaw_fraction)
        if not (math.isfinite(f) and 0 < f < 1):
            raise InvalidInputError(f"flaw_fraction must lie in (0, 1), got {self.flaw_fraction!r}")
        object.__setattr__(self, "flaw_fraction", f)
        if self.flaw_size_m is not None:
            object.__setattr__(
                self, "flaw_size_m", _positive("flaw", self.flaw_size_m, "flaw size", "m")
            )
        if self.flaw_weibull_modulus is not None:
            object.__setattr__(
                self,
                "flaw_weibull_modulus",
                _positive("flaw", self.flaw_weibull_modulus, "Weibull modulus", ""),
            )
        if isinstance(self.flaw_seed, bool) or not isinstance(self.flaw_seed, int | np.integer):
            raise InvalidInputError(f"flaw_seed must be an integer, got {self.flaw_seed!r}")
        object.__setattr__(
            self, "geometry_factor", _positive("Griffith", self.geometry_factor, "Y", "")
        )
        if self.stress_statistic not in ("p99", "max"):
            raise InvalidInputError(
                f"stress_statistic must be 'p99' or 'max', got {self.stress_statistic!r}"
            )

    def for_role(self, role: str) -> MechanicalMaterial | None:
        """The material of a phase role (None for roles that carry no stress)."""
        return getattr(self, str(role), None) if str(role) in _ROLES else None

    def with_active(self, **changes: Any) -> MechanicsParameters:
        """A copy whose active material has some fields changed (None values ignored)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        if not changes:
            return self
        return dataclasses.replace(self, active=self.active.replace(**changes))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters."""
        return {
            "active": self.active.to_dict(),
            "carbon_binder": self.carbon_binder.to_dict(),
            "solid_electrolyte": self.solid_electrolyte.to_dict(),
            "flaw_fraction": self.flaw_fraction,
            "flaw_size_m": self.flaw_size_m,
            "flaw_weibull_modulus": self.flaw_weibull_modulus,
            "flaw_seed": self.flaw_seed,
            "geometry_factor": self.geometry_factor,
            "stress_statistic": self.stress_statistic,
        }

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> MechanicsParameters:
        """Parameters from a dictionary.

        A material is a name of :data:`MATERIALS`, or a table of fields with an
        optional ``base`` material name whose other fields it keeps.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InvalidInputError(
                f"unknown mechanics parameter(s) {sorted(unknown)}; known: {sorted(known)}"
            )
        return cls(**dict(data))

    @classmethod
    def from_file(cls, path: str | Path) -> MechanicsParameters:
        """Read a TOML or JSON parameter file (see :meth:`from_mapping`)."""
        p = Path(path)
        if not p.is_file():
            raise FileFormatError(f"no parameter file at {p}")
        try:
            if p.suffix.lower() == ".json":
                data = json.loads(p.read_text("utf-8"))
            else:
                import tomllib

                data = tomllib.loads(p.read_text("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise FileFormatError(f"{p}: not a readable TOML/JSON parameter file ({exc})") from None
        if not isinstance(data, Mapping):
            raise FileFormatError(f"{p}: the parameter file must hold a table")
        return cls.from_mapping(data)
