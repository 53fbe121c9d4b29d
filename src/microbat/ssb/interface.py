r"""The lithium-metal / solid-electrolyte interface with contact loss: filament risk.

Voids at the lithium interface (left by stripping, or by poor wetting) squeeze the
current into the remaining contact spots. Where the local current density
exceeds a critical value, lithium filaments (dendrites) nucleate and grow into the
electrolyte (Porz et al. 2017 [4]_; Kasemchainan et al. 2019 [5]_). This module
solves the current distribution in the electrolyte next to such an interface.

Model
-----
The electrolyte (a single-ion conductor, conductivity ``σ``) fills the image; the
lithium metal is an equipotential (``V``) beyond the first layer of the thickness
axis (side 0 by default), touching the electrolyte only at the *contact spots*
(electrolyte voxels of that layer not covered by a void; or a given contact map).
At the far side the electrolyte is held at 0 V on its outer face (an ideal
counter contact). Steady conduction ``∇·(σ∇φ) = 0`` is solved on the
finite-volume core; at each contact face the current density ``j`` crosses the
half voxel (``r_h = h/(2σ)``) and the charge-transfer overpotential ``η`` in series,

.. math:: V - φ_p = η(j) + j\, r_h,

with symmetric Butler–Volmer kinetics ``j = 2 i₀ \sinh(η F / 2RT)`` (default),
its linearisation ``j = η / R_ct`` (``R_ct = RT/(F i₀)``), or no kinetic
resistance. The current enters the FV system as a Robin term (a ``diagonal`` and a
``source`` on the contact voxels); Butler–Volmer is solved by Newton's method
with the applied current density as a constraint (bordered Newton: two linear
solves per step, warm-started; 3-5 steps).

Outputs
-------
* the current density on the interface (A/m², 0 on voids) and the *focusing
  factor* ``j / J`` (local over applied, nominal, current density: a uniform
  contact of fraction ``f`` gives ``1/f``); its maximum and 99th percentile;
* hot spots: where the local current exceeds the critical current density
  ``j_crit`` at the applied current;
* the critical applied current ``J*`` at which the largest local current reaches
  ``j_crit`` (for linear kinetics ``j_crit / max focusing``; for Butler–Volmer the
  focusing grows with current, found by a secant search);
* resistances per nominal area (Ω·m², small-current limit): total ``V/J``, bulk
  ``L/σ``, kinetic ``R_ct/f``, and the *constriction* resistance, the rest: what
  the crowding of the current into the spots adds.

Constriction resistance (validation)
-------------------------------------
One circular equipotential spot of radius ``a`` on a half-space of resistivity
``ρ`` has the spreading resistance ``ρ/(4a)`` (Holm [1]_, whose constriction
resistance between two bodies joined by the spot is twice it, ``ρ/(2a)``); in a
circular flux tube of radius ``b`` it is ``ρ/(4a) ψ(a/b)`` with
``ψ(ε) = 1 − 1.40925ε + 0.29591ε³ + 0.05254ε⁵ + 0.02105ε⁷ + 0.01107ε⁹`` (Gibson's
series for the equipotential contact, as tabulated by Yovanovich [2]_). The
current density on the spot is Newman's primary distribution
``j(r)/j̄ = 1/(2√(1 − r²/a²))`` [3]_, rising without bound at the edge.
:func:`spot_spreading_resistance` gives the finite-size corrected value.

Monroe–Newman
-------------
Linear stability of electrodeposition against an elastic solid (Monroe & Newman
2005 [6]_): a lithium/electrolyte interface is stabilised mechanically when the
electrolyte's shear modulus is at least about twice that of lithium
(``G_SE ≥ 2 G_Li``; ``G_Li ≈ 4.25 GPa``). The criterion was derived for polymer
electrolytes (partial molar volume of Li⁺ in the electrolyte above that of Li
metal); for ceramics, where it is below, the pressure term reverses and the
criterion does not guarantee stability (Ahmad & Viswanathan 2017 [7]_) — stiff
garnets (``G ≈ 60 GPa``) satisfy it yet grow filaments through voids, cracks and
grain boundaries, which is why the current focusing above is the practical
measure. :func:`monroe_newman` reports the ratio with that caveat.

References
----------
.. [1] R. Holm, *Electric Contacts: Theory and Application*, 4th ed., Springer
   (1967), §4.
.. [2] M. M. Yovanovich, "Four decades of research on thermal contact, gap, and
   joint resistance in microelectronics", IEEE Trans. Compon. Packag. Technol.
   28, 182-206 (2005).
.. [3] J. Newman, "Resistance for flow of current to a disk", J. Electrochem. Soc.
   113, 501-502 (1966).
.. [4] L. Porz et al., "Mechanism of lithium metal penetration through inorganic
   solid electrolytes", Adv. Energy Mater. 7, 1701003 (2017).
.. [5] J. Kasemchainan et al., "Critical stripping current leads to dendrite
   formation on plating in lithium anode solid electrolyte cells", Nature
   Materials 18, 1105-1111 (2019).
.. [6] C. Monroe, J. Newman, "The impact of elastic deformation on deposition
   kinetics at lithium/polymer interfaces", J. Electrochem. Soc. 152, A396-A404
   (2005).
.. [7] Z. Ahmad, V. Viswanathan, "Stability of electrodeposition at solid-solid
   interfaces and implications for metal anodes", Phys. Rev. Lett. 119, 056003
   (2017).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from microbat.core.constants import FARADAY
from microbat.core.errors import ConvergenceError, InvalidInputError, PhaseError
from microbat.core.microstructure import Microstructure
from microbat.core.phases import Phase, PhaseRole, PhaseTable
from microbat.core.results import Provenance, Result

__all__ = [
    "GAS_CONSTANT",
    "SHEAR_MODULUS_LITHIUM",
    "InterfaceResult",
    "MonroeNewman",
    "contact_loss_slab",
    "interface_current",
    "monroe_newman",
    "spot_spreading_resistance",
]

#: Molar gas constant, J/(mol K) (CODATA 2018).
GAS_CONSTANT = 8.314462618
#: Shear modulus of polycrystalline lithium at room temperature (Pa), the value of
#: the Monroe–Newman literature (≈ 4.2-4.9 GPa reported).
SHEAR_MODULUS_LITHIUM = 4.25e9
#: Phase table of :func:`contact_loss_slab`.
SLAB_PHASES = PhaseTable(
    [Phase("void", 0, PhaseRole.GAS), Phase("se", 1, PhaseRole.SOLID_ELECTROLYTE)]
)

Kinetics = Literal["butler-volmer", "linear", "none"]


# ================================================================== geometry
def contact_loss_slab(
    shape: Sequence[int],
    *,
    voxel_size: float | Sequence[float],
    contact_fraction: float,
    void_size: float = 2e-6,
    void_depth: float | None = None,
    thickness_axis: int = 0,
    seed: int | np.random.Generator | None = None,
) -> Microstructure:
    """An electrolyte slab whose lithium interface has lost part of its contact.

    Parameters
    ----------
    shape : sequence of 3 int
        Voxels; the lithium interface is the first layer of ``thickness_axis``.
    voxel_size : float or sequence of float
        Voxel edge (m).
    contact_fraction : float
        Fraction of the interface area still in contact, in (0, 1]; exact to one
        voxel.
    void_size : float, default 2e-6
        Correlation length of the void pattern (m): voids and contact spots of
        about this size (a thresholded Gaussian random field, periodic in-plane).
    void_depth : float, optional
        Depth of the voids into the electrolyte (m); default a quarter of
        ``void_size``, at least one voxel.
    thickness_axis : int, default 0
        Axis through the slab.
    seed : int, Generator or None
        Random seed.

    Returns
    -------
    Microstructure
        Phases ``void=0`` (role gas) and ``se=1`` (solid_electrolyte);
        ``metadata["interface"]`` records the parameters and the achieved fraction.

    Raises
    ------
    InvalidInputError
        Contact fraction outside (0, 1], non-positive sizes, voids deeper than
        the slab.

    Examples
    --------
    >>> ms = contact_loss_slab((8, 32, 32), voxel_size=0.5e-6, contact_fraction=0.75, seed=0)
    >>> float((ms.labels[0] == 1).mean())
    0.75
    """
    from microbat.core.microstructure import normalize_voxel_size

    f = _check_fraction(contact_fraction)
    dims = tuple(int(n) for n in shape)
    if len(dims) != 3 or min(dims) < 1:
        raise InvalidInputError(f"shape must be three positive integers, got {shape!r}")
    h = normalize_voxel_size(voxel_size, 3)
    t = int(thickness_axis)
    if t not in (0, 1, 2):
        raise InvalidInputError(f"thickness_axis must be 0, 1 or 2, got {thickness_axis!r}")
    if not (math.isfinite(void_size) and void_size > 0):
        raise InvalidInputError(f"void_size must be a positive length (m), got {void_size!r}")
    depth_m = max(h[t], 0.25 * void_size) if void_depth is None else float(void_depth)
    depth = max(1, round(depth_m / h[t]))
    if depth >= dims[t]:
        raise InvalidInputError(
            f"voids {depth} voxels deep leave no electrolyte behind them ({dims[t]} voxels)"
        )
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    plane = tuple(n for a, n in enumerate(dims) if a != t)
    hp = tuple(v for a, v in enumerate(h) if a != t)
    field_ = _smooth_field(plane, hp, void_size, rng)
    n = field_.size
    k = round(f * n)
    contact = np.zeros(n, bool)
    if k > 0:
        order = np.argsort(field_.reshape(-1), kind="stable")
        contact[order[n - k :]] = True
    contact = contact.reshape(plane)
    lab = np.ones(dims, np.uint8)
    void3 = np.expand_dims(~contact, t)
    sl = [slice(None)] * 3
    sl[t] = slice(0, depth)
    sub = lab[tuple(sl)]
    sub[np.broadcast_to(void3, sub.shape)] = 0
    return Microstructure(
        lab,
        h,
        SLAB_PHASES,
        thickness_axis=t,
        allow_empty_phases=True,
        metadata={
            "interface": {
                "contact_fraction_target": f,
                "contact_fraction": float(contact.mean()),
                "void_size_m": float(void_size),
                "void_depth_m": depth * h[t],
                "lithium_side": [t, 0],
                "seed": seed if isinstance(seed, int) else None,
            }
        },
    )


def _smooth_field(
    shape: tuple[int, ...], h: tuple[float, ...], length: float, rng: np.random.Generator
) -> np.ndarray:
    """Periodic Gaussian random field with Gaussian correlation of length ``length``."""
    noise = rng.standard_normal(shape)
    k = [np.fft.fftfreq(n, d=hh) * 2 * np.pi for n, hh in zip(shape, h, strict=True)]
    kk = np.meshgrid(*k, indexing="ij")
    filt = np.exp(-0.25 * length**2 * sum(x * x for x in kk))
    return np.real(np.fft.ifftn(np.fft.fftn(noise) * filt))


def _check_fraction(value: Any) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"contact fraction must be a number in (0, 1], got {value!r}"
        ) from None
    if not (math.isfinite(f) and 0 < f <= 1):
        raise InvalidInputError(
            f"contact fraction must lie in (0, 1] (a fraction, not a percentage), got {value!r}"
        )
    return f


def spot_spreading_resistance(
    radius: float, resistivity: float, tube_radius: float | None = None
) -> float:
    """Spreading resistance (Ω) of one equipotential circular spot into a conductor.

    Parameters
    ----------
    radius : float
        Spot radius ``a`` (m).
    resistivity : float
        ``ρ`` (Ω·m).
    tube_radius : float, optional
        Radius ``b`` of a circular flux tube around the spot; None for a half-space.

    Returns
    -------
    float
        ``ρ/(4a) ψ(a/b)`` (module notes; Holm's two-sided constriction is twice it).

    Examples
    --------
    >>> round(spot_spreading_resistance(1e-6, 1.0), 3)
    250000.0
    """
    r = resistivity / (4.0 * radius)
    if tube_radius is None:
        return r
    e = radius / tube_radius
    if not 0 < e < 1:
        raise InvalidInputError("the spot must be smaller than the flux tube")
    psi = 1 - 1.40925 * e + 0.29591 * e**3 + 0.05254 * e**5 + 0.02105 * e**7 + 0.01107 * e**9
    return r * psi


# ================================================================== results
@dataclass(frozen=True)
class MonroeNewman(Result):
    """The Monroe–Newman mechanical criterion (see the module notes).

    Attributes
    ----------
    shear_modulus_electrolyte_Pa, shear_modulus_lithium_Pa : float
    ratio : float
        ``G_SE / G_Li``.
    threshold : float
        2.0.
    satisfied : bool
        ``ratio ≥ threshold``.
    note : str
        Its scope.
    """

    shear_modulus_electrolyte_Pa: float
    shear_modulus_lithium_Pa: float
    ratio: float
    threshold: float
    satisfied: bool
    note: str


def monroe_newman(
    shear_modulus_electrolyte: float, shear_modulus_lithium: float = SHEAR_MODULUS_LITHIUM
) -> MonroeNewman:
    """Monroe–Newman ratio ``G_SE / G_Li`` against its threshold of about 2.

    Parameters
    ----------
    shear_modulus_electrolyte : float
        Shear modulus of the electrolyte (Pa), e.g. 59.6e9 for cubic LLZO.
    shear_modulus_lithium : float, default 4.25e9
        Shear modulus of lithium (Pa).

    Returns
    -------
    MonroeNewman

    Examples
    --------
    >>> monroe_newman(59.6e9).satisfied
    True
    """
    gs, gl = float(shear_modulus_electrolyte), float(shear_modulus_lithium)
    if not (gs > 0 and gl > 0 and math.isfinite(gs) and math.isfinite(gl)):
        raise InvalidInputError("shear moduli must be positive (Pa)")
    ratio = gs / gl
    return MonroeNewman(
        shear_modulus_electrolyte_Pa=gs,
        shear_modulus_lithium_Pa=gl,
        ratio=ratio,
        threshold=2.0,
        satisfied=ratio >= 2.0,
        note=(
            "Monroe & Newman (2005), linear elastic stability for polymer electrolytes; for "
            "ceramics (Li+ partial molar volume below that of Li metal) stiffness alone does "
            "not prevent filaments (Ahmad & Viswanathan 2017): judge by the current focusing"
        ),
    )


@dataclass(frozen=True)
class InterfaceResult(Result):
    """Current distribution at a lithium / electrolyte interface with contact loss.

    Attributes
    ----------
    kinetics : str
    applied_current_A_per_m2 : float
        Applied current per nominal interface area ``J``.
    contact_fraction : float
        Contact area over nominal area.
    lithium_potential_V : float
        ``V`` at the applied current (lithium against the far face).
    current_density_A_per_m2 : ndarray
        Local current density on the interface plane (0 off contact).
    focusing : ndarray
        ``j / J`` on the interface plane.
    focusing_factor_max, focusing_factor_p99 : float
        Largest and 99th-percentile (over the contact area) focusing factor.
    focusing_factor_uniform : float
        ``1/f``: the focusing of a uniformly shared contact.
    critical_current_density_A_per_m2 : float
        ``j_crit``.
    critical_current_A_per_m2 : float
        Applied current at which ``max j`` reaches ``j_crit``.
    hot_spots : ndarray of bool
        Where ``j > j_crit`` at the applied current.
    hot_spot_fraction : float
        Their share of the nominal area.
    resistance_ohm_m2, bulk_resistance_ohm_m2, kinetic_resistance_ohm_m2,
    constriction_resistance_ohm_m2 : float
        Small-current resistances per nominal area (module notes).
    monroe_newman : MonroeNewman
    iterations : int
        Newton steps of the applied-current solve.
    provenance : Provenance
    """

    kinetics: str
    applied_current_A_per_m2: float
    contact_fraction: float
    lithium_potential_V: float
    current_density_A_per_m2: np.ndarray = field(repr=False)
    focusing: np.ndarray = field(repr=False)
    focusing_factor_max: float
    focusing_factor_p99: float
    focusing_factor_uniform: float
    critical_current_density_A_per_m2: float
    critical_current_A_per_m2: float
    hot_spots: np.ndarray = field(repr=False)
    hot_spot_fraction: float
    resistance_ohm_m2: float
    bulk_resistance_ohm_m2: float
    kinetic_resistance_ohm_m2: float
    constriction_resistance_ohm_m2: float
    monroe_newman: MonroeNewman
    iterations: int
    provenance: Provenance = field(repr=False, default_factory=lambda: Provenance("interface"))


# ================================================================== solver
class _Interface:
    """The FV system of the slab and the per-face kinetics."""

    def __init__(
        self,
        ms: Microstructure,
        phase: str,
        sigma: float,
        side: tuple[int, int],
        contact: np.ndarray | None,
        solver: str,
    ) -> None:
        from microbat.fv.grid import face_areas
        from microbat.fv.system import Dirichlet, build_system

        self.t, self.s = side
        lab = ms.labels
        se = ms.mask(phase)
        self.shape = lab.shape
        h = ms.voxel_size
        self.h = h
        self.area = face_areas(h)[self.t]
        self.nominal = float(np.prod([lab.shape[a] * h[a] for a in range(3) if a != self.t]))
        self.length = lab.shape[self.t] * h[self.t]
        first = np.take(se, self.s, axis=self.t)
        if contact is None:
            contact = first
        else:
            contact = np.asarray(contact, bool)
            if contact.shape != first.shape:
                raise InvalidInputError(
                    f"the contact map has shape {contact.shape}; the interface plane is "
                    f"{first.shape}"
                )
            contact = contact & first
        coef = np.where(se, sigma, 0.0)
        far = -1 if self.s == 0 else 0
        self.base = build_system(coef, h, dirichlet=[Dirichlet(self.t, far, 0.0)])
        act_plane = np.take(self.base.active, self.s, axis=self.t)
        self.contact = contact & act_plane  # spots connected to the far side
        if not self.contact.any():
            raise InvalidInputError(
                "no contact spot connects the lithium to the far side of the electrolyte"
            )
        self.sigma = sigma
        self.r_half = h[self.t] / (2 * sigma)
        self.solver = solver
        self._x: dict[str, np.ndarray] = {}

    def plane_slice(self) -> tuple[Any, ...]:
        sl: list[Any] = [slice(None)] * 3
        sl[self.t] = self.s
        return tuple(sl)

    def solve(self, g: np.ndarray, b: np.ndarray, key: str) -> np.ndarray:
        """Solve with ``A g`` on the diagonal and ``A b`` as source of the contact voxels."""
        from microbat.fv.solvers import solve

        ground = self.base.ground.copy()
        rhs = self.base.rhs.copy()
        ps = self.plane_slice()
        gp = ground[ps]
        rp = rhs[ps]
        gp[self.contact] += self.area * g
        rp[self.contact] += self.area * b
        system = replace(self.base, ground=ground, rhs=rhs)
        x0 = self._x.get(key)
        sol = solve(system, method=self.solver, x0=x0, rtol=1e-8)  # type: ignore[arg-type]
        self._x[key] = sol.x
        return np.take(sol.x, self.s, axis=self.t)[self.contact]


def _bv_current(delta: np.ndarray, i0: float, f: float, r: float) -> tuple[np.ndarray, np.ndarray]:
    """``j`` solving ``δ = (2/f) asinh(j/(2 i0)) + j r`` and ``dj/dδ`` (vectorised Newton)."""
    j = delta / (r + 1.0 / (f * i0))  # linear start
    for _ in range(60):
        eta = (2.0 / f) * np.arcsinh(j / (2 * i0))
        deta = (2.0 / f) / np.sqrt(4 * i0 * i0 + j * j)
        res = eta + j * r - delta
        step = res / (deta + r)
        j = j - step
        if np.all(np.abs(step) <= 1e-12 * (np.abs(j) + i0)):
            break
    deta = (2.0 / f) / np.sqrt(4 * i0 * i0 + j * j)
    return j, 1.0 / (deta + r)


def interface_current(
    ms: Microstructure,
    *,
    current_density: float = 5.0,
    conductivity: float = 0.05,
    exchange_current: float = 100.0,
    kinetics: Kinetics = "butler-volmer",
    critical_current_density: float = 10.0,
    temperature: float = 298.15,
    shear_modulus_electrolyte: float = 59.6e9,
    shear_modulus_lithium: float = SHEAR_MODULUS_LITHIUM,
    phase: str = "solid_electrolyte",
    lithium_side: tuple[int, int] | None = None,
    contact: np.ndarray | None = None,
    solver: str = "auto",
    max_newton: int = 12,
    critical: bool = True,
) -> InterfaceResult:
    """Current focusing, hot spots and critical current at a lithium interface.

    Parameters
    ----------
    ms : Microstructure
        3D image of the electrolyte (``phase``) with voids at the lithium side.
    current_density : float, default 5
        Applied current per nominal area ``J`` (A/m²; 10 A/m² = 1 mA/cm²).
    conductivity : float, default 0.05
        Ionic conductivity of the electrolyte (S/m; 0.5 mS/cm, garnet LLZO).
    exchange_current : float, default 100
        Exchange current density of the Li/electrolyte contact (A/m²;
        ``R_ct = RT/(F i₀)`` = 2.6 Ω·cm² at 298 K).
    kinetics : {"butler-volmer", "linear", "none"}, default "butler-volmer"
        Interfacial kinetics at the contact spots.
    critical_current_density : float, default 10
        Local current density above which filaments nucleate (A/m²; 1 mA/cm²,
        the order reported for garnets at room temperature).
    temperature : float, default 298.15
        K.
    shear_modulus_electrolyte, shear_modulus_lithium : float
        For the Monroe–Newman ratio (Pa); defaults cubic LLZO (59.6 GPa) and Li.
    phase : str, default "solid_electrolyte"
        The conducting phase (name or role).
    lithium_side : (axis, side), optional
        The face touching lithium; default the first layer of the thickness axis.
    contact : ndarray of bool, optional
        Contact map over the interface plane (default: electrolyte voxels of the
        first layer); spots must also be electrolyte.
    solver : str, default "auto"
        Linear solver of :func:`microbat.fv.solve`.
    max_newton : int, default 12
        Newton steps per Butler–Volmer solve.
    critical : bool, default True
        Search the critical applied current (Butler–Volmer: a few more solves;
        False leaves it NaN). With linear kinetics it is free.

    Returns
    -------
    InterfaceResult

    Raises
    ------
    InvalidInputError
        Non-positive parameters, an unknown kinetics, no contact connected to
        the far side.
    PhaseError
        No electrolyte phase.
    ConvergenceError
        Newton did not converge.

    Notes
    -----
    Linear and no kinetics: one FV solve (the distribution scales with ``J``).
    Butler–Volmer: a linear start and 3-5 bordered Newton steps of two warm-started
    solves each for the applied current; the critical current adds a secant
    search of a few such solves.
    """
    t0 = time.perf_counter()
    if ms.ndim != 3:
        raise InvalidInputError("the interface analysis needs a 3D image")
    try:
        phases = ms.phases.resolve(phase)
    except PhaseError as exc:
        raise PhaseError(f"no electrolyte to carry the current: {exc}") from None
    if not any(ms.counts()[p.name] for p in phases):
        raise PhaseError(f"phase {phase!r} is absent from the image")
    for name, v in (
        ("current_density", current_density),
        ("conductivity", conductivity),
        ("exchange_current", exchange_current),
        ("critical_current_density", critical_current_density),
        ("temperature", temperature),
    ):
        if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
            raise InvalidInputError(f"{name} must be a positive number, got {v!r}")
    if kinetics not in ("butler-volmer", "linear", "none"):
        raise InvalidInputError(f"kinetics={kinetics!r}; use butler-volmer, linear or none")
    side = (ms.thickness_axis, 0) if lithium_side is None else tuple(int(v) for v in lithium_side)
    if side[0] not in (0, 1, 2) or side[1] not in (0, -1):
        raise InvalidInputError(f"lithium_side must be (axis, 0 or -1), got {lithium_side!r}")
    mn = monroe_newman(shear_modulus_electrolyte, shear_modulus_lithium)
    ifc = _Interface(ms, phase, float(conductivity), side, contact, solver)  # type: ignore[arg-type]
    f_rt = FARADAY / (GAS_CONSTANT * temperature)
    r_ct = 1.0 / (f_rt * exchange_current) if kinetics != "none" else 0.0
    n_spots = int(ifc.contact.sum())
    contact_fraction = n_spots / ifc.contact.size

    # small-current (linear) solution: u = V * u1
    g_lin = 1.0 / (r_ct + ifc.r_half)
    ones = np.full(n_spots, g_lin)
    u1 = ifc.solve(ones, ones, "u1")  # V = 1
    i1 = float(ifc.area * (g_lin * (1.0 - u1)).sum())  # current per volt
    resistance = ifc.nominal / i1  # Ω·m²
    j_unit = g_lin * (1.0 - u1) / (i1 / ifc.nominal)  # j / J (linear focusing)

    def bv(target: float) -> tuple[np.ndarray, float, int]:
        """Local j at applied J = target (Butler–Volmer), V, Newton steps.

        Bordered Newton: the linearised system ``M(G) u = A (b0 + G V)`` is solved for
        ``u0`` (``V = 0``) and ``u1`` (``V = 1``); ``V`` then meets the applied current
        exactly. ``u1`` is re-solved only while ``G`` still changes by more than 1 %.
        """
        v = target * resistance
        delta = v * (1.0 - u1)  # linear start
        g_old = None
        u1k = u1
        for it in range(1, max_newton + 1):
            j, g = _bv_current(delta, exchange_current, f_rt, ifc.r_half)
            b0 = j - g * delta
            u0 = ifc.solve(g, b0, "u0")
            if g_old is None or float(np.max(np.abs(g / g_old - 1.0))) > 1e-2:
                u1k = ifc.solve(g, g, "u1k")
                g_old = g
            c0 = float(ifc.area * (b0 - g * u0).sum())
            c1 = float(ifc.area * (g * (1.0 - u1k)).sum())
            v_new = (target * ifc.nominal - c0) / c1
            d_new = v_new - (u0 + v_new * u1k)
            change = float(np.max(np.abs(d_new - delta)))
            delta, v = d_new, v_new
            if change <= 1e-6 * max(float(np.max(np.abs(delta))), 1e-12) + 1e-12:
                j, _ = _bv_current(delta, exchange_current, f_rt, ifc.r_half)
                # the applied current is met to the last linearisation; rescale the rest
                return j * (target * ifc.nominal / float(ifc.area * j.sum())), v, it
        raise ConvergenceError(
            f"Butler-Volmer Newton did not converge in {max_newton} steps at {target:g} A/m²; "
            "lower the current or raise max_newton"
        )

    jc = float(critical_current_density)
    if kinetics == "butler-volmer":
        j_loc, v_app, iters = bv(float(current_density))
        # critical current: secant on log(max j) against log(J), from the focusing at J
        j_try = jc * float(current_density) / float(j_loc.max())
        pts: list[tuple[float, float]] = []
        for _ in range(12 if critical else 0):
            jj, _, _ = bv(j_try)
            m = float(jj.max())
            pts.append((math.log(j_try), math.log(m)))
            if abs(m / jc - 1.0) < 1e-4:
                break
            if len(pts) >= 2 and pts[-1][1] != pts[-2][1]:
                (x0, y0), (x1, y1) = pts[-2], pts[-1]
                x_new = x1 + (math.log(jc) - y1) * (x1 - x0) / (y1 - y0)
            else:
                x_new = pts[-1][0] + (math.log(jc) - pts[-1][1])
            j_try = math.exp(x_new)
        j_crit_applied = j_try if critical else math.nan
    else:
        j_loc = float(current_density) * j_unit
        v_app = float(current_density) * resistance
        iters = 1
        j_crit_applied = jc / float(j_unit.max())
    plane_shape = ifc.contact.shape
    jmap = np.zeros(plane_shape, np.float64)
    jmap[ifc.contact] = j_loc
    foc = jmap / float(current_density)
    vals = foc[ifc.contact]
    hot = jmap > jc
    bulk = ifc.length / conductivity
    kin = r_ct / contact_fraction
    return InterfaceResult(
        kinetics=kinetics,
        applied_current_A_per_m2=float(current_density),
        contact_fraction=contact_fraction,
        lithium_potential_V=float(v_app),
        current_density_A_per_m2=jmap,
        focusing=foc,
        focusing_factor_max=float(vals.max()),
        focusing_factor_p99=float(np.percentile(vals, 99)),
        focusing_factor_uniform=1.0 / contact_fraction,
        critical_current_density_A_per_m2=jc,
        critical_current_A_per_m2=float(j_crit_applied),
        hot_spots=hot,
        hot_spot_fraction=float(hot.sum()) * ifc.area / ifc.nominal,
        resistance_ohm_m2=resistance,
        bulk_resistance_ohm_m2=bulk,
        kinetic_resistance_ohm_m2=kin,
        constriction_resistance_ohm_m2=resistance - bulk - kin,
        monroe_newman=mn,
        iterations=iters,
        provenance=Provenance(
            "microbat.ssb.interface_current",
            parameters={
                "current_density": float(current_density),
                "conductivity": float(conductivity),
                "exchange_current": float(exchange_current),
                "kinetics": kinetics,
                "critical_current_density": jc,
                "temperature": float(temperature),
                "lithium_side": list(side),
                "phase": phase,
            },
            wall_time_s=time.perf_counter() - t0,
        ),
    )
