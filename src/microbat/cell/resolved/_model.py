r"""Microstructure-resolved half-cell discharge (solver).

See :func:`microbat.cell.resolved.simulate_discharge` and ``docs/resolved.md`` for
the equations. This module holds the discretised residual, its sparse Jacobian,
the Newton iteration and the diagnostics (conservation, dissipation breakdown); the
adaptive backward-Euler stepping is in :mod:`._stepping`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from microbat.cell.resolved._geometry import CBD, PORE, SEP, Domain
from microbat.cell.resolved._params import FARADAY, GAS_CONSTANT, ResolvedParameters
from microbat.core.errors import ConvergenceError, InvalidInputError

_TINY = 1e-300
_LOGIT_MAX = 30.0
_SATURATION = 1e-6


@dataclass(frozen=True)
class ResolvedOptions:
    """Model and solver options of the resolved discharge (SI units).

    Attributes
    ----------
    cbd_porosity : float, default 0.5
        Electrolyte volume fraction inside carbon-binder voxels (nanoporous domain).
    cbd_bruggeman : float, default 1.5
        Transport efficiency of electrolyte in carbon-binder, ``ε_cbd^b``.
    cbd_conductivity_S_per_m : float, default 10.0
        Electronic conductivity of carbon-binder voxels (an effective value of a
        carbon/PVdF composite; order of magnitude from Zielke et al. 2015).
    li_exchange_current_A_per_m2 : float, default 10.0
        Exchange-current density of the lithium-metal counter electrode (≈ 1 mA/cm²).
    separator_layers : int or None
        Layers of the separator slab (default: thickness / voxel, clipped to 2..6).
    reaction_area : {"metrics", "faces"}, default "metrics"
        ``"faces"``: reaction area = voxel faces between active and electrolyte;
        ``"metrics"``: the same faces, all scaled so their total equals the
        interface-area estimator of :mod:`microbat.imaging.metrics` (removes the
        ~1.5× staircase excess of voxel faces; lithium fluxes are unchanged).
    electrolyte_transport_scale : float, default 1.0
        Factor on κ and D_e (validation: a large value gives the single-particle limit).
    solid_conductivity_S_per_m : float or None
        Override of the active-material conductivity.
    cutoff_V : float or None
        Lower cut-off voltage (default: that of the parameter set).
    dt_initial_s, dt_max_s : float or None
        First and largest time step (default: 1/400 and ``max_step_fraction`` of the
        nominal discharge time ``3600 s / C``).
    max_step_fraction : float, default 0.1
        Largest step as a fraction of the nominal discharge time (when ``dt_max_s``
        is not given).
    dv_target_V : float, default 0.03
        Voltage change per step the step-size control aims at. Backward Euler's
        voltage error is far below it: on a 20³ electrode at 1C, 30 mV (33 steps)
        and 10 mV (92 steps) are within 1.0 and 0.6 mV of a 2 mV run (448 steps) at
        every step, and the capacity within 0.13 % and 0.07 %
        (``docs/validation/resolved.md``). Steps are further limited by an estimate
        of backward Euler's local error in the surface stoichiometry and the plated
        lithium (``_stepping._step_error``), and a run ends exactly at its end event
        (the step that reaches it is solved again to the event).
    newton_tol : float, default 1e-9
        Newton converges when the global balances of salt, electrolyte charge, solid
        charge and lithium (sums of residual blocks) are below ``newton_tol`` × the
        applied current (in A and A/F) and the state is settled: the last update is
        below 1e-6 (V, or relative to the concentration scale), or the error bound
        ``ρ/(1 − ρ) |δ_k|`` from the contraction ``ρ = |δ_k|/|δ_{k−1}| < ½`` of the
        last two updates is (Brenan, Campbell & Petzold 1996, §5.2.2), or the last
        update is below 1e-4 with every residual row below ``newton_tol`` × the
        current; or, at the round-off floor, when the balances hold to 1e-8 and stop
        improving. A settled state whose balances are not yet met gets one update
        restricted to a uniform shift of each field (the Galerkin projection of the
        Jacobian on those five vectors), which meets them without another Krylov
        solve. The default is 10× below the conservation the issue asks for (1e-8
        per step).
    max_newton : int, default 20
        Newton iterations before the step is retried with a quarter of the step.
    max_steps : int, default 5000
        Accepted steps before the run stops (reported as partial).
    surface_stoichiometry_limit : float, default 0.99
        End-of-discharge event besides the cut-off voltage: the reaction-area-weighted
        mean stoichiometry of the active voxels at the interface reaches this value
        (the analogue of PyBaMM's surface-stoichiometry event; near θ = 1 the
        exchange current vanishes and the surface concentration is no longer
        resolvable in double precision).
    electrolyte_depletion_limit : float, default 1e-3
        End event of a liquid electrolyte: the lowest salt concentration of any pore
        voxel falls to this fraction of ``c_e0`` (the pores' transport limit is
        reached; e.g. the collector side of a thick graphite electrode at 3C). Below
        it the conductivity, which vanishes with the concentration, leaves the
        depleted pores' potential undetermined and Newton fails; PyBaMM's DFN ends
        likewise, at its "Zero electrolyte concentration cut-off" (min c_e = 0.002
        mol/m³). ``0`` disables the event. Not used with a solid electrolyte.
    jacobian_reuse : bool, default True
        Modified Newton: keep the factorised Jacobian across iterations and steps
        while the updates shrink at least 3× per iteration (rebuilt otherwise). The
        converged state is the same; only the cost changes.
    end_time_s : float or None
        Stop at this simulated time (an ordinary end, e.g. for validation runs).
    linear_solver : {"auto", "amg", "pardiso", "direct", "gmres"}
        Solver of each Newton update: ``"amg"``, restarted GMRES with a
        block-triangular preconditioner whose blocks (salt, potentials with the
        surface lithium eliminated, lithium in the solid) are V-cycles of classical
        AMG kept across Newton iterations and steps (:mod:`._krylov`; memory and
        time grow linearly with the voxel count); Intel MKL PARDISO through the
        optional ``pypardiso`` package (multithreaded sparse LU with METIS ordering);
        SciPy's SuperLU (``"direct"``); or ILU-preconditioned GMRES. ``"auto"`` takes
        a direct solver for small systems (PARDISO when installed, else SuperLU) and
        ``"amg"`` above ``amg_threshold`` unknowns.
    krylov_rtol : float, default 1e-8
        Relative residual of the GMRES solves of ``"amg"`` (inexact Newton: the outer
        iteration still converges the balances to ``newton_tol``).
    inexact_newton : bool, default True
        With ``"amg"``: GMRES tolerance of each Newton update by the Eisenstat–Walker
        rule (loose far from the solution, ``krylov_rtol`` near it); the converged
        state is the same, with 38 % fewer GMRES iterations (24³, 12 steps, measured
        with SciPy's GMRES and a first tolerance of 1e-3).
    amg_threshold : int, default 20000
        Unknowns above which ``"auto"`` chooses ``"amg"`` when PARDISO is installed
        (without it, above 3000 or this value if lower: SuperLU is slower).
    plating : {"none", "irreversible", "reversible", "partially_reversible"}
        Lithium plating side reaction on the active/electrolyte faces (O'Kane et al.
        2020, 2022, as PyBaMM's ``"lithium plating"`` option): Butler–Volmer
        deposition at ``η_pl = φ_s − φ_e`` (U_Li = 0), ``i_pl = F k [c_Li e^{(1−α_pl)
        F η_pl/RT} − c_e e^{−α_pl F η_pl/RT}]`` per area (anodic positive; no stripping
        term when irreversible), the plated lithium kept per face (``c_Li`` its
        amount per face area × the electrode's mean reaction area per volume, the
        homogenised concentration PyBaMM uses); ``"partially_reversible"``: plated
        lithium turns dead at ``dead_lithium_decay_per_s``. See ``docs/resolved.md``.
    plating_rate_constant_m_per_s : float, default 1e-9
        ``k``: "Lithium plating kinetic rate constant" of PyBaMM's OKane2022 set
        (O'Kane et al., PCCP 24, 7909 (2022), doi:10.1039/D2CP00417H).
    plating_transfer_coefficient : float, default 0.65
        ``α_pl`` (stripping ``1 − α_pl``), same source.
    dead_lithium_decay_per_s : float, default 1e-6
        Rate at which plated lithium becomes dead ("Dead lithium decay constant",
        same source).
    se_conductivity_S_per_m : float, default 0.2
        Ionic conductivity of a solid electrolyte (composite cathodes, see ``._solid``):
        2 mS/cm, the order of the room-temperature values reported for cold-pressed
        argyrodite Li₆PS₅Cl, 1–3 mS/cm (e.g. Kraft et al., J. Am. Chem. Soc. 139,
        10909 (2017), doi:10.1021/jacs.7b06327).
    se_exchange_current_scale : float, default 1.0
        Factor on the set's exchange current at the active | solid-electrolyte faces.
    separator_thickness_m : float or None
        Override of the separator slab's thickness (default: the set's; with a solid
        electrolyte the slab is dense solid electrolyte).
    """

    cbd_porosity: float = 0.5
    cbd_bruggeman: float = 1.5
    cbd_conductivity_S_per_m: float = 10.0
    li_exchange_current_A_per_m2: float = 10.0
    separator_layers: int | None = None
    reaction_area: Literal["metrics", "faces"] = "metrics"
    electrolyte_transport_scale: float = 1.0
    solid_conductivity_S_per_m: float | None = None
    cutoff_V: float | None = None
    dt_initial_s: float | None = None
    dt_max_s: float | None = None
    max_step_fraction: float = 0.1
    dv_target_V: float = 0.03
    newton_tol: float = 1e-9
    max_newton: int = 20
    max_steps: int = 5000
    surface_stoichiometry_limit: float = 0.99
    electrolyte_depletion_limit: float = 1e-3
    jacobian_reuse: bool = True
    end_time_s: float | None = None
    linear_solver: Literal["auto", "amg", "pardiso", "direct", "gmres"] = "auto"
    krylov_rtol: float = 1e-8
    inexact_newton: bool = True
    amg_threshold: int = 20000
    plating: Literal["none", "irreversible", "reversible", "partially_reversible"] = "none"
    plating_rate_constant_m_per_s: float = 1e-9
    plating_transfer_coefficient: float = 0.65
    dead_lithium_decay_per_s: float = 1e-6
    se_conductivity_S_per_m: float = 0.2
    se_exchange_current_scale: float = 1.0
    separator_thickness_m: float | None = None

    def __post_init__(self) -> None:
        checks = {
            "cbd_porosity": (self.cbd_porosity, 0.0, 1.0),
            "cbd_bruggeman": (self.cbd_bruggeman, 0.0, 20.0),
            "cbd_conductivity_S_per_m": (self.cbd_conductivity_S_per_m, 1e-12, 1e8),
            "li_exchange_current_A_per_m2": (self.li_exchange_current_A_per_m2, 1e-6, 1e6),
            "electrolyte_transport_scale": (self.electrolyte_transport_scale, 1e-6, 1e9),
            "dv_target_V": (self.dv_target_V, 1e-5, 1.0),
            "max_step_fraction": (self.max_step_fraction, 1e-6, 1.0),
            "newton_tol": (self.newton_tol, 1e-15, 1e-3),
            "plating_rate_constant_m_per_s": (self.plating_rate_constant_m_per_s, 0.0, 1.0),
            "plating_transfer_coefficient": (self.plating_transfer_coefficient, 0.01, 0.99),
            "dead_lithium_decay_per_s": (self.dead_lithium_decay_per_s, 0.0, 1.0),
            "se_conductivity_S_per_m": (self.se_conductivity_S_per_m, 1e-9, 1e4),
            "se_exchange_current_scale": (self.se_exchange_current_scale, 1e-9, 1e9),
            "electrolyte_depletion_limit": (self.electrolyte_depletion_limit, 0.0, 0.5),
        }
        if self.separator_thickness_m is not None:
            checks["separator_thickness_m"] = (self.separator_thickness_m, 1e-9, 1e-2)
        for name, (v, lo, hi) in checks.items():
            if not (isinstance(v, int | float) and math.isfinite(v) and lo <= v <= hi):
                raise InvalidInputError(f"{name} = {v!r} is outside {lo:g}..{hi:g}")
        if self.reaction_area not in ("metrics", "faces"):
            raise InvalidInputError(
                f"reaction_area={self.reaction_area!r}; use 'metrics' or 'faces'"
            )
        if self.linear_solver not in ("auto", "amg", "pardiso", "direct", "gmres"):
            raise InvalidInputError(
                f"linear_solver={self.linear_solver!r}; use 'auto', 'amg', 'pardiso', "
                "'direct' or 'gmres'"
            )
        if not (1e-14 <= self.krylov_rtol <= 1e-2):
            raise InvalidInputError(f"krylov_rtol = {self.krylov_rtol!r} is outside 1e-14..1e-2")
        if self.plating not in ("none", "irreversible", "reversible", "partially_reversible"):
            raise InvalidInputError(
                f"plating={self.plating!r}; use 'none', 'irreversible', 'reversible' or "
                "'partially_reversible'"
            )
        if self.max_newton < 2 or self.max_steps < 1:
            raise InvalidInputError("max_newton must be at least 2 and max_steps at least 1")


@dataclass
class State:
    """Unknowns of the half cell (domain vectors) at one time."""

    t: float
    ce: np.ndarray
    pe: np.ndarray
    ps: np.ndarray
    cs: np.ndarray
    V: float
    pl: np.ndarray | None = None  # plated lithium per reaction face (mol), with plating
    dead: np.ndarray | None = None  # dead lithium per reaction face (mol)

    def pack(self) -> np.ndarray:
        return np.concatenate([self.ce, self.pe, self.ps, self.cs, [self.V]])

    def copy(self) -> State:
        return State(
            self.t,
            self.ce.copy(),
            self.pe.copy(),
            self.ps.copy(),
            self.cs.copy(),
            self.V,
            None if self.pl is None else self.pl.copy(),
            None if self.dead is None else self.dead.copy(),
        )


@dataclass
class StepInfo:
    """Diagnostics of one accepted step (internal)."""

    newton: int
    li_error: float
    charge_error: float
    losses: dict[str, float]
    reaction: np.ndarray  # per-face current (A), cathodic < 0


@dataclass
class Timing:
    """Wall time split of a run."""

    assembly_s: float = 0.0
    solve_s: float = 0.0
    newton_iterations: int = 0
    linear_solves: int = 0
    factorizations: int = 0
    gmres_iterations: int = 0
    amg_setups: int = 0
    amg_setup_s: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


class HalfCell:
    """The discretised resolved half cell (internal; use ``simulate_discharge``)."""

    def __init__(
        self, dom: Domain, par: ResolvedParameters, opt: ResolvedOptions, area_scale: float
    ):
        if dom.solid_electrolyte:  # composite cathode: single-ion conductor (._solid)
            from microbat.cell.resolved._solid import single_ion_parameters

            par = single_ion_parameters(par, opt)
        self.dom = dom
        self.par = par
        self.opt = opt
        self.T = par.temperature
        self.f = FARADAY / (GAS_CONSTANT * self.T)
        self.beta = 2.0 / self.f * (1.0 - par.transference_number) * par.thermodynamic_factor
        self.nE, self.nS, self.nA = dom.idx_e.size, dom.idx_s.size, dom.idx_a.size
        self.n = 2 * self.nE + self.nS + self.nA + 1
        self.face_area = dom.face_area * area_scale
        vol = dom.voxel_volume
        codes_e = dom.codes.reshape(-1)[dom.idx_e]
        eps_sep = par.separator_porosity
        self.eps_e = np.select(
            [codes_e == PORE, codes_e == CBD, codes_e == SEP],
            [1.0, opt.cbd_porosity, eps_sep * dom.stretch],
        )
        self.store_e = self.eps_e * vol  # m³ of electrolyte per unknown
        self.store_a = np.full(self.nA, vol)
        # transport factors (ε/τ) along axis 0 and laterally
        eff_cbd = opt.cbd_porosity**opt.cbd_bruggeman
        eff_sep = eps_sep**par.separator_bruggeman
        self.trans0 = (
            np.select(
                [codes_e == PORE, codes_e == CBD, codes_e == SEP],
                [1.0, eff_cbd, eff_sep / dom.stretch],
            )
            * opt.electrolyte_transport_scale
        )
        self.trans_lat = (
            np.select(
                [codes_e == PORE, codes_e == CBD, codes_e == SEP],
                [1.0, eff_cbd, eff_sep * dom.stretch],
            )
            * opt.electrolyte_transport_scale
        )
        # the kept patterns of _laplacian, by the unknowns' array
        self._kept_laplacians: dict[int, _KeptLaplacian] = {}
        codes_s = dom.codes.reshape(-1)[dom.idx_s]
        sigma_am = opt.solid_conductivity_S_per_m or par.solid_conductivity
        sigma = np.where(codes_s == CBD, opt.cbd_conductivity_S_per_m, sigma_am)
        self.L_sigma = self._laplacian(dom.idx_s, sigma, sigma)
        self.sigma_cc = sigma[dom.cc_s]
        self.G_cc = 2.0 * self.sigma_cc * dom.cc_area / dom.voxel_size[0]
        self.li_j0 = opt.li_exchange_current_A_per_m2
        self.plating = opt.plating != "none"
        # plated amount per face (mol) → PyBaMM's homogenised c_Li (mol/m³ of electrode):
        # × (reaction area per electrode volume) / face area
        vol_el = dom.n_electrode * dom.shape[1] * dom.shape[2] * dom.voxel_volume
        self.a_mean = float(self.face_area.sum()) / vol_el if vol_el > 0 else 0.0
        self.timing = Timing()
        self._pardiso: _Pardiso | None = None
        self._factors: Callable[[np.ndarray], np.ndarray] | None = None
        self._krylov: Any = None
        self._pattern: _Pattern | None = None
        self._lin_state: State | None = None
        self._lin_dt = 0.0
        self._lin: tuple[Any, Any, Any] = (None, None, None)
        self._ds_const: float | None = None
        self._hold_V: float | None = None
        ds_test = par.solid_diffusivity(np.array([0.3, 0.6]), self.T)
        if np.ptp(ds_test) == 0:
            self._ds_const = float(ds_test[0])
            ones = np.ones(self.nA)
            self.L_ds = self._laplacian(dom.idx_a, ones * self._ds_const, ones * self._ds_const)
        if dom.solid_electrolyte:
            from microbat.cell.resolved._solid import configure_single_ion

            configure_single_ion(self)

    # --------------------------------------------------------------- assembly
    def _laplacian(self, idx: np.ndarray, k0: np.ndarray, klat: np.ndarray):
        """Sparse ``Σ_q g_pq (u_p − u_q)`` on the unknowns ``idx`` through the FV core.

        The first operator on ``idx`` is assembled by the FV core; its face list and
        CSR slots are kept (:class:`_KeptLaplacian`), and later operators on the same
        unknowns only write their harmonic-mean face conductances into a new data
        array on the kept pattern (same arithmetic, bit for bit). A coefficient that
        is zero somewhere (the pattern would change) takes the FV core again.
        """
        kept = self._kept_laplacians
        pat = kept.get(id(idx))
        if pat is not None and pat.idx is idx:
            A = pat.matrix(k0, klat)
            if A is not None:
                return A
        A = self._fv_laplacian(idx, k0, klat)
        if pat is None or pat.idx is not idx:
            kept[id(idx)] = _KeptLaplacian(idx, self.dom.shape, self.dom.voxel_size, A)
        return A

    def _fv_laplacian(self, idx: np.ndarray, k0: np.ndarray, klat: np.ndarray):
        """:meth:`_laplacian` assembled by the FV core (face conductances, CSR)."""
        import scipy.sparse as sp

        from microbat.fv.grid import face_conductances
        from microbat.fv.system import structured_to_csr

        shape = self.dom.shape
        h = self.dom.voxel_size
        full0 = np.zeros(shape)
        full0.reshape(-1)[idx] = k0
        g0 = face_conductances(full0, h)[0]
        if klat is k0:
            g1, g2 = face_conductances(full0, h)[1:]
        else:
            fl = np.zeros(shape)
            fl.reshape(-1)[idx] = klat
            g1, g2 = face_conductances(fl, h)[1:]
        ground = np.zeros(shape)
        ground.reshape(-1)[idx] = _TINY
        A, index = structured_to_csr(ground, (g0, g1, g2))
        if index.size != idx.size or not np.array_equal(index, idx):
            raise ConvergenceError("internal error: the FV index does not match the domain")
        A = sp.csr_matrix(A)
        A.setdiag(A.diagonal() - _TINY)
        A.eliminate_zeros()
        return A

    def linear_blocks(self, state: State, dt: float):
        """Step-frozen linear operators: electrolyte κ and D at the start of the step.

        The last result is kept: Newton and the step's diagnostics ask for the same.
        """
        if self._lin_state is state and self._lin_dt == dt:
            return self._lin
        t0 = time.perf_counter()
        ce = np.maximum(state.ce, 1e-3)
        kap = self.par.electrolyte_conductivity(ce, self.T)
        de = self.par.electrolyte_diffusivity(ce, self.T)
        L_kappa = self._laplacian(self.dom.idx_e, kap * self.trans0, kap * self.trans_lat)
        L_de = self._laplacian(self.dom.idx_e, de * self.trans0, de * self.trans_lat)
        if self._ds_const is None:
            th = state.cs / self.par.c_max
            ds = self.par.solid_diffusivity(th, self.T)
            L_ds = self._laplacian(self.dom.idx_a, ds, ds)
        else:
            L_ds = self.L_ds
        self.timing.assembly_s += time.perf_counter() - t0
        # the state itself is kept (not its id): a freed state's id may be reused
        self._lin_state, self._lin_dt, self._lin = state, dt, (L_kappa, L_de, L_ds)
        return L_kappa, L_de, L_ds

    def split(self, x: np.ndarray):
        nE, nS, nA = self.nE, self.nS, self.nA
        return (
            x[:nE],
            x[nE : 2 * nE],
            x[2 * nE : 2 * nE + nS],
            x[2 * nE + nS : 2 * nE + nS + nA],
            float(x[-1]),
        )

    def reaction(self, ce, pe, ps, cs, *, derivatives: bool):
        """Butler–Volmer current of every interface face (A; anodic > 0) and derivatives."""
        d = self.dom
        p = self.par
        ce_f = ce[d.face_e]
        cs_f = cs[d.face_a]
        th = cs_f / p.c_max
        U = p.ocp(th)
        eta = ps[d.face_s] - pe[d.face_e] - U
        a = p.alpha
        xa = np.clip(a * self.f * eta, -80, 80)
        xc = np.clip((1 - a) * self.f * eta, -80, 80)
        ea, ec = np.exp(xa), np.exp(-xc)
        j0 = self.exchange_current(ce_f, cs_f)
        A = self.face_area
        cur = A * j0 * (ea - ec)
        if not derivatives:
            return cur, eta, U
        dI_deta = A * j0 * self.f * (a * ea + (1 - a) * ec)
        # central difference with a step of at most half the distance to the end
        # (1e-7 c_max away from it): the continuation near θ = 0 or 1 is a quadratic,
        # which a central difference differentiates exactly
        edge = np.minimum(cs_f, p.c_max - cs_f)
        hc = np.maximum(np.minimum(1e-7 * p.c_max, 0.5 * edge), 1e-16 * p.c_max)
        j0p = self.exchange_current(ce_f, np.minimum(cs_f + hc, p.c_max))
        j0m = self.exchange_current(ce_f, np.maximum(cs_f - hc, 0.0))
        dj0_dcs = (j0p - j0m) / (np.minimum(cs_f + hc, p.c_max) - np.maximum(cs_f - hc, 0.0))
        hth = 1e-7
        dU = (p.ocp(th + hth) - p.ocp(th - hth)) / (2 * hth) / p.c_max
        he = 1e-7 * np.maximum(ce_f, 1.0)
        j0e = self.exchange_current(ce_f + he, cs_f)
        dj0_dce = (j0e - j0) / he
        dI_dcs = A * dj0_dcs * (ea - ec) - dI_deta * dU
        dI_dce = A * dj0_dce * (ea - ec)
        return cur, eta, U, dI_deta, dI_dcs, dI_dce

    def plating_current(self, ce, pe, ps, pl_old, *, derivatives: bool):
        """Lithium plating/stripping current of every reaction face (A; anodic > 0).

        ``i = A F k [c_Li e^{(1−α) f η} − c_e e^{−α f η}]``, ``η = φ_s − φ_e`` (U_Li = 0),
        ``c_Li`` from the plated amount at the start of the step (lagged); no stripping
        term for irreversible plating. Returns ``(i, η)`` or with derivatives
        ``(i, η, di/dη, di/dc_e)``.
        """
        d = self.dom
        opt = self.opt
        a = opt.plating_transfer_coefficient
        kF = opt.plating_rate_constant_m_per_s * FARADAY * self.face_area
        eta = ps[d.face_s] - pe[d.face_e]
        ce_f = ce[d.face_e]
        e_pl = np.exp(np.clip(-a * self.f * eta, -80, 80))
        dep = kF * ce_f * e_pl
        cur = -dep
        strip = np.zeros_like(dep)
        if opt.plating != "irreversible" and pl_old is not None:
            c_li = pl_old * self.a_mean / self.face_area
            strip = kF * c_li * np.exp(np.clip((1 - a) * self.f * eta, -80, 80))
            cur = cur + strip
        if not derivatives:
            return cur, eta
        dI_deta = a * self.f * dep + (1 - a) * self.f * strip
        dI_dce = -kF * e_pl
        return cur, eta, dI_deta, dI_dce

    def plated_after(self, old: State, new: State, dt: float) -> tuple[np.ndarray, np.ndarray]:
        """Plated and dead lithium per face at the end of the step ``old → new`` (mol)."""
        cur, _ = self.plating_current(new.ce, new.pe, new.ps, old.pl, derivatives=False)
        gain = -cur * dt / FARADAY
        assert old.pl is not None and old.dead is not None
        if self.opt.plating == "partially_reversible":
            g = self.opt.dead_lithium_decay_per_s * dt
            pl = (old.pl + gain) / (1.0 + g)  # backward Euler of dn/dt = gain/dt − γ n
            return pl, old.dead + g * pl
        return old.pl + gain, old.dead.copy()

    def exchange_current(self, ce: np.ndarray, cs: np.ndarray) -> np.ndarray:
        """The set's exchange current, continued smoothly to 0 at an empty or full voxel.

        Within ``δ = 1e-6`` of θ = 0 or 1 (``u = distance / δ < 1``) the set's
        ``j0(c_e, c_s)`` is replaced by ``j0(δ) u (2 − q + (q − 1) u)``, ``q`` the
        logarithmic slope ``d ln j0 / d ln distance`` of the set's function at δ (½
        for the usual ``(c_max − c_s)^½``). The continuation matches the value and
        the slope at δ (a C¹ join: Newton converges quadratically across it) and
        vanishes linearly at the end: the ``(c_max − c_s)^½`` factor itself empties
        or fills a surface voxel in finite time, with a backward-Euler state closer
        to saturation than double precision holds (a 3C graphite charge crawled at
        0.01 s steps there); the linear end lets it saturate exponentially. A join
        with a kink (a linear continuation, the previous form) held ~800
        voxels at the join, where Newton cycled between the two slopes and the
        late steps of a 64³ 3C charge took 7–8 iterations instead of 4–5. It
        changes the lithium of a voxel by < 1e-6 of its capacity.
        """
        p = self.par
        d = _SATURATION * p.c_max
        j0 = p.exchange_current(ce, np.clip(cs, d, p.c_max - d), p.c_max, self.T)
        edge = np.minimum(cs, p.c_max - cs)
        near = edge < d
        if not np.any(near):
            return j0
        ce_n = np.broadcast_to(ce, cs.shape)[near]
        low = cs[near] < 0.5 * p.c_max
        # the slope at δ by a central difference (relative step 1e-4: truncation
        # ~1e-8, round-off ~1e-12 of q)
        h = 1e-4
        c_in = np.where(low, d * (1 + h), p.c_max - d * (1 + h))
        c_out = np.where(low, d * (1 - h), p.c_max - d * (1 - h))
        j_in = p.exchange_current(ce_n, c_in, p.c_max, self.T)
        j_out = p.exchange_current(ce_n, c_out, p.c_max, self.T)
        j_d = j0[near]
        q = (j_in - j_out) / (2 * h * np.maximum(j_d, 1e-300))
        # 0 ≤ q < 2 keeps the continuation positive and increasing on (0, δ)
        q = np.clip(q, 0.0, 1.99)
        u = np.maximum(edge[near], 0.0) / d
        j0 = np.array(j0, dtype=float, copy=True)
        j0[near] = j_d * u * (2 - q + (q - 1) * u)
        return j0

    def li_current(self, pe, *, derivatives: bool):
        """Current of the lithium-metal counter electrode into each boundary voxel (A)."""
        eta = -pe[self.dom.li_e]
        a = self.par.alpha
        xa = np.clip(a * self.f * eta, -80, 80)
        xc = np.clip((1 - a) * self.f * eta, -80, 80)
        k = self.li_j0 * self.dom.li_area
        cur = k * (np.exp(xa) - np.exp(-xc))
        if not derivatives:
            return cur, eta
        dI_dpe = -k * self.f * (a * np.exp(xa) + (1 - a) * np.exp(-xc))
        return cur, eta, dI_dpe

    def residual(self, x, old: State, dt, I_app, blocks, *, jacobian: bool, hold_V=None):
        """Residuals (charge rows in A, lithium rows in mol/s) and optionally the Jacobian.

        ``hold_V``: potentiostatic step (the constant-voltage phase of a charge): the
        last row becomes ``G_cc (V_hold − V)`` (in A, ``G_cc`` the collector's total
        conductance) instead of the galvanostatic condition, on the same sparsity
        pattern; ``I_app`` is then only the current scale of the run.
        """
        L_kappa, L_de, L_ds = blocks
        d = self.dom
        tp = self.par.transference_number
        ce, pe, ps, cs, V = self.split(x)
        lnc = np.log(np.maximum(ce, 1e-300))
        out = self.reaction(ce, pe, ps, cs, derivatives=jacobian)
        cur = out[0]
        li = self.li_current(pe, derivatives=jacobian)
        nE, nS, nA = self.nE, self.nS, self.nA
        cur_e = cur
        if self.plating:
            pl_out = self.plating_current(ce, pe, ps, old.pl, derivatives=jacobian)
            cur_e = cur + pl_out[0]  # charge and salt: both reactions; c_s: intercalation
        src_e = np.bincount(d.face_e, cur_e, nE)
        src_e[d.li_e] += li[0]
        R_ce = self.store_e * (ce - old.ce) / dt + L_de @ ce - (1 - tp) / FARADAY * src_e
        R_pe = L_kappa @ (pe - self.beta * lnc) - src_e
        # the Laplacian acts on φ_s − V (equal in exact arithmetic, as its rows sum to
        # zero): differences of millivolts instead of ~4 V absolute potentials keep the
        # round-off of the solid charge balance ~1000× lower
        R_ps = self.L_sigma @ (ps - V) + np.bincount(d.face_s, cur_e, nS)
        R_ps[d.cc_s] += self.G_cc * (ps[d.cc_s] - V)
        R_cs = (
            self.store_a * (cs - old.cs) / dt + L_ds @ cs + np.bincount(d.face_a, cur, nA) / FARADAY
        )
        G_tot = float(np.sum(self.G_cc))
        if hold_V is None:
            R_V = float(np.sum(self.G_cc * (ps[d.cc_s] - V))) - I_app
        else:
            R_V = G_tot * (float(hold_V) - V)
        R = np.concatenate([R_ce, R_pe, R_ps, R_cs, [R_V]])
        if not jacobian:
            return R, None
        _, _eta, _u, dI_deta, dI_dcs, dI_dce = out
        oE, oP, oS, oA, oV = 0, nE, 2 * nE, 2 * nE + nS, self.n - 1
        fe, fs, fa = d.face_e, d.face_s, d.face_a
        rows = [oE + fe, oP + fe, oS + fs, oA + fa]
        wts = [-(1 - tp) / FARADAY, -1.0, 1.0, 1.0 / FARADAY]
        cols = [oE + fe, oP + fe, oS + fs, oA + fa]
        ders = [dI_dce, -dI_deta, dI_deta, dI_dcs]
        # (rows, cols, values) of every term, in a fixed order: the pattern of their
        # sum is built once (:class:`_Pattern`); later iterations only scatter values
        parts: list[tuple[Any, Any, np.ndarray]] = []
        for r, w in zip(rows, wts, strict=True):
            for c, dv in zip(cols, ders, strict=True):
                parts.append((r, c, w * dv))
        if self.plating:  # the plating current in the salt, φ_e and φ_s rows
            _pc, _pe, dP_deta, dP_dce = pl_out
            for r, w in zip(rows[:3], wts[:3], strict=True):
                for c, dv in zip(cols[:3], (dP_dce, -dP_deta, dP_deta), strict=True):
                    parts.append((r, c, w * dv))
        li_e = oP + d.li_e
        parts.append((oE + d.li_e, li_e, -(1 - tp) / FARADAY * li[2]))
        parts.append((li_e, li_e, -li[2]))
        cc = oS + d.cc_s
        vcol = np.full(cc.size, oV)
        parts += [
            (cc, cc, self.G_cc),
            (cc, vcol, -self.G_cc),
            (vcol, cc, self.G_cc if hold_V is None else np.zeros_like(self.G_cc)),
            (np.array([oV]), np.array([oV]), np.array([-G_tot])),
        ]
        diag_e, diag_a = np.arange(nE), np.arange(nA)
        parts += [
            (oE + diag_e, oE + diag_e, self.store_e / dt),
            (L_de, (oE, oE), L_de.data),
            (L_kappa, (oP, oP), L_kappa.data),
            (self.L_sigma, (oS, oS), self.L_sigma.data),
            (oA + diag_a, oA + diag_a, self.store_a / dt),
            (L_ds, (oA, oA), L_ds.data),
            # φ_e rows depend on ln c_e: −β L_κ diag(1/c_e)
            (
                L_kappa,
                (oP, oE),
                -self.beta * L_kappa.data / np.maximum(ce, 1e-300)[L_kappa.indices],
            ),
        ]
        if self._pattern is None or not self._pattern.matches(parts):
            self._pattern = _Pattern(parts, self.n)
        return R, self._pattern.matrix(parts)

    # ----------------------------------------------------------------- Newton
    def newton(
        self,
        old: State,
        dt: float,
        I_app: float,
        guess: State,
        *,
        hold_V: float | None = None,
        I_scale: float | None = None,
    ) -> tuple[State, int]:
        """Backward-Euler step ``old → old.t + dt`` by Newton's method.

        ``hold_V``: hold the terminal voltage there instead of the current ``I_app``
        (which then only scales the residual rows). ``I_scale``: the current the rows
        are scaled by and the tolerance is relative to (default ``|I_app|``; needed
        for a step at zero current).

        Raises
        ------
        ConvergenceError
            No convergence within ``max_newton`` iterations (or a non-finite state).
        """
        blocks = self.linear_blocks(old, dt)
        if hold_V != self._hold_V:  # another last row: a kept factorisation is stale
            self._hold_V = hold_V
            self._factors = None
        x = guess.pack()
        nE, nS, nA = self.nE, self.nS, self.nA
        I_ref = I_scale or abs(I_app) or 1.0
        # row scaling: charge rows / I_ref, lithium rows / (I_ref / F)
        rs = np.concatenate(
            [
                np.full(nE, FARADAY / I_ref),
                np.full(nE + nS, 1.0 / I_ref),
                np.full(nA, FARADAY / I_ref),
                [1.0 / I_ref],
            ]
        )
        cmax = self.par.c_max
        ymax = np.inf
        prev_sum = np.inf
        # modified Newton: the factorised Jacobian of an earlier iteration (or step) is
        # reused while the updates shrink at least 3× per iteration; otherwise (and
        # after 3 iterations on a stale Jacobian) it is rebuilt and refactorised
        krylov = self._method() == "amg"
        fresh = krylov or not (self.opt.jacobian_reuse and self._factors is not None)
        stale_iters = 0
        fnorm_prev = eta_prev = None
        if krylov and self._krylov is not None:
            self._krylov.new_step()
        y_prev = np.inf  # size of the update before the last one
        Js: Any = None  # the last scaled Jacobian (for the global-balance correction)
        for k in range(self.opt.max_newton + 1):
            t_res = time.perf_counter()
            R, J = self.residual(x, old, dt, I_app, blocks, jacobian=fresh, hold_V=hold_V)
            self.timing.assembly_s += time.perf_counter() - t_res
            if not np.all(np.isfinite(R)):
                raise ConvergenceError("non-finite residual in the Newton iteration")
            # converged: a small last update (≤ 1e-6 V, 1e-6 relative concentration) with
            # the global salt, charge and lithium balances (the sums of the scaled
            # residual blocks) met to newton_tol of the applied current. The update alone
            # is not enough: a nearly saturated voxel moves c_s by θ(1−θ) × its logit step.
            sr = rs * R
            sums = self._balance_sums(sr)
            # at the round-off floor of the residual (extreme conductances, e.g.
            # carbon-binder at 10 S/m carrying fluxes far above the reaction currents):
            # accept a state whose balances hold to 1e-8 of the current once they stop
            # improving (less than 10× per iteration)
            tol = self.opt.newton_tol
            stalled = ymax < 1e-6 and max(sums) < 1e-8 and (k >= 8 or max(sums) > 0.1 * prev_sum)
            prev_sum = max(sums)
            # a residual at the floor in every row (not only in the sums) accepts the
            # state after an update that is already small (Newton converges
            # quadratically: the next update would be ~ymax² and only confirm it)
            finf = float(np.max(np.abs(sr)))
            at_floor = ymax < 1e-4 and max(sums) < tol and finf < tol
            # the state's own error, from the contraction of the last two updates
            # (ρ = |δ_k| / |δ_{k−1}|; the error after δ_k is ≤ ρ/(1 − ρ) |δ_k| while
            # Newton contracts; Brenan, Campbell & Petzold 1996, §5.2.2): below 1e-6,
            # the bound the last update is held to, one update earlier
            rho = ymax / y_prev if np.isfinite(y_prev) else np.inf
            settled = ymax < 1e-6 or (rho < 0.5 and rho / (1 - rho) * ymax < 1e-6)
            if settled and tol <= max(sums) < 1e-5 and Js is not None:
                # the state is settled but its global balances are not yet within
                # newton_tol (a Newton update solved to a relative residual of 1e-2
                # leaves them at ~1e-7): correct the balances alone, by the Galerkin
                # projection of the last Jacobian on the uniform shift of each field
                # (ln c_e, φ_e, φ_s, logit θ, V), then measure them again
                x_c, R_c = self._balance_correction(x, sr, Js, old, dt, I_app, blocks, hold_V)
                if x_c is not None:
                    sr_c = rs * R_c
                    sums_c = self._balance_sums(sr_c)
                    if max(sums_c) < max(sums):  # else: on with the full update
                        x, R, sr, sums = x_c, R_c, sr_c, sums_c
                        finf = float(np.max(np.abs(sr)))
            if stalled or at_floor or (settled and max(sums) < tol):
                ce, pe, ps, cs, V = self.split(x)
                new = State(old.t + dt, ce.copy(), pe.copy(), ps.copy(), cs.copy(), V)
                if self.plating:
                    new.pl, new.dead = self.plated_after(old, new, dt)
                    if np.any(new.pl < -1e-12 * max(float(np.max(old.pl)), 1e-300)):
                        raise ConvergenceError(
                            "stripping in this step exceeds the plated lithium of a face; "
                            "the step is retried with a smaller dt"
                        )
                    np.maximum(new.pl, 0.0, out=new.pl)
                return new, k
            if k == self.opt.max_newton:
                break
            # Newton in transformed variables: ln c_e and logit(c_s / c_max) (chain rule
            # as column scaling), so iterates stay inside 0 < c_e and 0 < c_s < c_max
            # without damping; potentials stay in volts.
            ce, _, _, cs, _ = self.split(x)
            th = cs / cmax
            cscale = np.concatenate([ce, np.ones(nE + nS), cmax * th * (1 - th), [1.0]])
            t0 = time.perf_counter()
            if fresh:
                assert self._pattern is not None  # set by residual(jacobian=True)
                Js = self._pattern.scaled(J, rs, cscale)
                if krylov:
                    fnorm = float(np.linalg.norm(sr))
                    eta = self._forcing(fnorm, fnorm_prev, eta_prev)
                    fnorm_prev, eta_prev = fnorm, eta
                    y = self._krylov_solve(Js, -rs * R, rs, cscale, rtol=eta, J=J)
                else:
                    y = self._linear_solve(Js.tocsc(), -rs * R)
                    self.timing.factorizations += 1
                stale_iters = 0
            else:
                y = self._resolve(-rs * R)
                stale_iters += 1
            self.timing.solve_s += time.perf_counter() - t0
            self.timing.linear_solves += 1
            y_prev = ymax
            if not np.all(np.isfinite(y)):
                raise ConvergenceError("the Newton update is not finite (singular Jacobian)")
            # size of the update in physical units (c_e / c_e0, V, c_s / c_max)
            ymax = max(
                float(np.max(np.abs(y[:nE] * ce))) / self.par.c_e0,
                float(np.max(np.abs(y[nE : 2 * nE + nS]))),
                float(np.max(np.abs(y[2 * nE + nS : -1] * th * (1 - th)))),
                abs(float(y[-1])),
            )
            if not krylov and self.opt.jacobian_reuse and self._factors is not None:
                fresh = (not fresh and ymax > 0.3 * y_prev) or stale_iters >= 3
            # bounded Newton: log/logit concentration updates are clipped entry by entry
            # (a nearly saturated voxel may ask for a large logit change without moving
            # c_s), potential updates are shortened together to at most 0.5 V
            y[:nE] = np.clip(y[:nE], -2.0, 2.0)
            y[2 * nE + nS : -1] = np.clip(y[2 * nE + nS : -1], -2.0, 2.0)
            big = max(float(np.max(np.abs(y[nE : 2 * nE + nS]))), abs(float(y[-1]))) / 0.5
            if big > 1.0:
                y[nE : 2 * nE + nS] /= big
                y[-1] /= big
            x = self._updated(x, *self.split(y))
            self.timing.newton_iterations += 1
        self._factors = None  # the retry starts from a fresh Jacobian
        if self._krylov is not None:
            self._krylov.invalidate()
        raise ConvergenceError(
            f"Newton did not converge in {self.opt.max_newton} iterations at t = "
            f"{old.t + dt:.6g} s (dt = {dt:.3g} s); the step is retried with a smaller dt"
        )

    def _updated(self, x: np.ndarray, dce, dpe, dps, dcs, dV) -> np.ndarray:
        """The state ``x`` after an update in the transformed unknowns.

        ``ln c_e``, ``φ_e``, ``φ_s``, ``logit θ`` and ``V`` move by the increments
        (arrays of the fields' sizes, or scalars: a uniform shift). ``|logit θ| ≤ 30``
        (θ within 1e-13 of 0 or 1): beyond, θ(1 − θ), the chain-rule scale of the
        column, rounds to 0 and the Jacobian turns singular (a voxel saturated to
        θ = 1.0 in double precision stopped a 3C graphite charge); the lithium such a
        clip could withhold is < 1e-13 of the voxel's capacity.
        """
        cmax = self.par.c_max
        ce, pe, ps, cs, V = self.split(x)
        th = cs / cmax
        z = np.clip(np.log(th / (1 - th)) + dcs, -_LOGIT_MAX, _LOGIT_MAX)
        return np.concatenate(
            [ce * np.exp(dce), pe + dpe, ps + dps, cmax / (1 + np.exp(-z)), [V + dV]]
        )

    def _balance_sums(self, sr: np.ndarray) -> tuple[float, float, float, float]:
        """|Global balances| of the scaled residual: salt, φ_e, φ_s (with V), lithium."""
        nE, nS = self.nE, self.nS
        return (
            abs(float(np.sum(sr[:nE]))),
            abs(float(np.sum(sr[nE : 2 * nE]))),
            abs(float(np.sum(sr[2 * nE : 2 * nE + nS]) + sr[-1])),
            abs(float(np.sum(sr[2 * nE + nS : -1]))),
        )

    def _balance_correction(self, x, sr, Js, old, dt, I_app, blocks, hold_V):
        """One Newton update restricted to a uniform shift of each field.

        The unknowns ``c`` of ``y = W c`` (``W``: the indicator of each block of the
        transformed unknowns — ln c_e, φ_e, φ_s, logit θ — and V) solve the Galerkin
        system ``(Wᵀ J W) c = −Wᵀ F``: the global balances of the linearised residual
        vanish. Returns the corrected state and its residual, or ``(None, None)`` when
        the projected system is singular or the shift is not small.
        """
        assert self._pattern is not None
        nE, nS, nA = self.nE, self.nS, self.nA
        bounds = np.array([0, nE, 2 * nE, 2 * nE + nS, 2 * nE + nS + nA, self.n])
        B = self._pattern.block_sums(Js.data, bounds)
        g = np.add.reduceat(sr, bounds[:-1])
        try:
            c = np.linalg.solve(B, -g)
        except np.linalg.LinAlgError:
            return None, None
        th = self.split(x)[3] / self.par.c_max
        # the same scale as the Newton update's size (c_e / c_e0, V, c_s / c_max)
        th_mid = float(np.max(th * (1 - th)))
        size = max(abs(c[0]), abs(c[1]), abs(c[2]), abs(c[3]) * th_mid, abs(c[4]))
        if not np.all(np.isfinite(c)) or size > 1e-6:
            return None, None
        x_c = self._updated(x, *c)
        t0 = time.perf_counter()
        R_c, _ = self.residual(x_c, old, dt, I_app, blocks, jacobian=False, hold_V=hold_V)
        self.timing.assembly_s += time.perf_counter() - t0
        if not np.all(np.isfinite(R_c)):
            return None, None
        return x_c, R_c

    def _method(self) -> str:
        method = self.opt.linear_solver
        if method == "auto":
            # measured crossover (benchmarks/bench_resolved.py): PARDISO wins below
            # ~20k unknowns, SciPy's SuperLU only below a few thousand
            pardiso = _has_pardiso()
            limit = self.opt.amg_threshold if pardiso else min(self.opt.amg_threshold, 3000)
            if self.n > limit:
                return "amg"
            method = "pardiso" if pardiso else "direct"
        return method

    def _forcing(self, fnorm: float, fnorm_prev: float | None, eta_prev: float | None) -> float:
        """Relative GMRES tolerance of this Newton update (Eisenstat–Walker, choice 2).

        Far from the solution the linear system need not be solved to round-off:
        ``η_k = 0.9 (‖F_k‖/‖F_{k−1}‖)²`` (safeguarded by ``0.9 η_{k−1}²``), at most
        ``1e-2`` (the first update) and at least ``krylov_rtol`` — and no tighter than
        the nonlinear tolerance needs (``newton_tol`` of the current relative to ‖F_k‖).
        """
        floor = self.opt.krylov_rtol
        if not self.opt.inexact_newton:
            return floor
        # the first update of a step is solved to 1e-2 (1e-3: 9 % more GMRES
        # iterations, 1e-1: 14 % more Newton iterations; 32³ discharge)
        first = 1e-2
        if fnorm_prev is None or eta_prev is None:
            eta = first
        else:
            eta = 0.9 * (fnorm / max(fnorm_prev, 1e-300)) ** 2
            if 0.9 * eta_prev**2 > 0.1:
                eta = max(eta, 0.9 * eta_prev**2)
            eta = min(eta, first)
        need = 0.01 * self.opt.newton_tol / max(fnorm, 1e-300)
        return float(max(eta, floor, min(need, first)))

    def _krylov_solve(
        self,
        Js,
        b: np.ndarray,
        rs: np.ndarray,
        cs: np.ndarray,
        *,
        rtol: float | None = None,
        J: Any = None,
    ) -> np.ndarray:
        """GMRES with the block AMG preconditioner (:mod:`._krylov`)."""
        if self._krylov is None:
            from microbat.cell.resolved._krylov import BlockAMGSolver

            self._krylov = BlockAMGSolver(self.nE, self.nS, self.nA, rtol=self.opt.krylov_rtol)
        try:
            return self._krylov.solve(Js, b, rs, cs, rtol=rtol, J=J)
        finally:
            self.timing.gmres_iterations = self._krylov.stats.iterations
            self.timing.amg_setups = self._krylov.stats.setups
            self.timing.amg_setup_s = self._krylov.stats.setup_s

    def _linear_solve(self, J, b: np.ndarray) -> np.ndarray:
        """Factorise ``J`` (kept for :meth:`_resolve`) and solve ``J x = b``."""
        import scipy.sparse.linalg as spla

        method = self._method()
        if method == "pardiso":
            if self._pardiso is None:
                self._pardiso = _Pardiso()
            x = self._pardiso.solve(J, b)
            self._factors = self._pardiso.resolve
            return x
        if method == "direct":
            lu = spla.splu(J.tocsc())
            self._factors = lu.solve
            return lu.solve(b)
        ilu = spla.spilu(J, drop_tol=1e-6, fill_factor=15)
        M = spla.LinearOperator(J.shape, ilu.solve)
        x, info = spla.gmres(J, b, M=M, rtol=1e-12, atol=0.0, restart=60, maxiter=20)
        if info != 0:
            raise ConvergenceError(f"GMRES did not converge (info={info})")
        self._factors = None
        return x

    def _resolve(self, b: np.ndarray) -> np.ndarray:
        """Solve with the kept factorisation."""
        if self._factors is None:  # pragma: no cover - guarded by the caller
            raise ConvergenceError("internal error: no factorisation to reuse")
        return self._factors(b)

    # ------------------------------------------------------------ diagnostics
    def diagnose(
        self,
        old: State,
        new: State,
        dt: float,
        I_app: float,
        k: int,
        *,
        I_scale: float | None = None,
    ) -> StepInfo:
        """Conservation errors and dissipation breakdown of an accepted step.

        ``I_app``: the step's current (lithiation of the working electrode positive);
        the losses are dissipation over ``|I_app|`` (positive for either sign) and the
        solid-diffusion term is signed so that ``sign(I)(U(θ̄) − V)`` = their sum.
        ``I_scale``: the current the conservation errors are relative to (default
        ``|I_app|``; the constant-voltage phase of a charge uses the CC current).
        """
        L_kappa, _, _ = self.linear_blocks(old, dt)
        d = self.dom
        cur, eta, U = self.reaction(new.ce, new.pe, new.ps, new.cs, derivatives=False)
        li, li_eta = self.li_current(new.pe, derivatives=False)
        I_ref = abs(I_app) or 1.0
        I_err = I_scale if I_scale is not None else I_ref
        sgn = -1.0 if I_app < 0 else 1.0
        dN_s = float(np.sum(self.store_a * (new.cs - old.cs)))
        dN_e = float(np.sum(self.store_e * (new.ce - old.ce)))
        I_li = float(np.sum(li))
        I_cc = float(np.sum(self.G_cc * (new.ps[d.cc_s] - new.V)))
        I_rxn = float(np.sum(cur))
        P_pl = 0.0
        if self.plating:  # plated and dead lithium are part of the inventory
            assert new.pl is not None and old.pl is not None
            assert new.dead is not None and old.dead is not None
            dN_s += float(np.sum(new.pl - old.pl) + np.sum(new.dead - old.dead))
            cur_pl, eta_pl = self.plating_current(new.ce, new.pe, new.ps, old.pl, derivatives=False)
            I_rxn += float(np.sum(cur_pl))
            P_pl = float(np.sum(cur_pl * eta_pl))
        li_error = abs(dN_s + dN_e - I_li * dt / FARADAY) / (I_err * dt / FARADAY)
        charge_error = max(abs(I_rxn + I_cc), abs(I_li - I_cc)) / I_err
        lnc = np.log(new.ce)
        w = new.pe - self.beta * lnc
        # on φ_s − V (the Laplacian's rows sum to zero): millivolt differences instead
        # of ~4 V potentials keep the round-off of this quadratic form ~1000× lower
        dps = new.ps - new.V
        P_el = float(dps @ (self.L_sigma @ dps)) + float(
            np.sum(self.G_cc * (new.ps[d.cc_s] - new.V) ** 2)
        )
        # likewise w and ln c_e shifted by their means (the forms are unchanged)
        w = w - np.mean(w)
        Lw = L_kappa @ w
        P_ohm = float(w @ Lw)
        P_conc = float(self.beta * ((lnc - np.mean(lnc)) @ Lw))
        P_kin = float(np.sum(cur * eta)) + P_pl
        P_li = float(np.sum(li * li_eta))
        I_w = -I_rxn if I_rxn != 0 else 1.0
        U_surf = float(np.sum(-cur * U)) / I_w
        ocv = float(self.par.ocp(np.array([np.mean(new.cs) / self.par.c_max]))[0])
        losses = {
            "ohmic_electrolyte": P_ohm / I_ref,
            "concentration_electrolyte": P_conc / I_ref,
            "ohmic_solid": P_el / I_ref,
            "reaction": (P_kin + P_li) / I_ref,
            "solid_diffusion": sgn * (ocv - U_surf),
            "reaction_positive": P_kin / I_ref,
            "reaction_counter": P_li / I_ref,
            "ocv": ocv,
        }
        main = ("ohmic_electrolyte", "concentration_electrolyte", "ohmic_solid", "reaction")
        losses["residual"] = (
            sgn * (ocv - new.V) - sum(losses[c] for c in main) - losses["solid_diffusion"]
        )
        return StepInfo(k, li_error, charge_error, losses, cur)

    def collector_current(self, state: State) -> float:
        """Current through the collector (A; lithiation of the working electrode > 0)."""
        d = self.dom
        return float(np.sum(self.G_cc * (state.ps[d.cc_s] - state.V)))

    def surface_stoichiometry(self, state: State) -> float:
        """Reaction-area-weighted mean stoichiometry of the interface active voxels."""
        th = state.cs[self.dom.face_a] / self.par.c_max
        return float(np.sum(th * self.face_area) / np.sum(self.face_area))

    # ---------------------------------------------------------------- fields
    def step_fields(self, state: State, reaction: np.ndarray) -> dict[str, np.ndarray]:
        """The fields handed to an ``on_fields`` hook after every accepted step.

        Float64 arrays of the image's shape, NaN outside each field's phase (as
        :meth:`fields`): ``phi_s``, ``phi_e``, ``c_e``, ``stoichiometry``, ``c_s`` and
        ``reaction_current`` (A/m³ of voxel, cathodic < 0). No loss map: a few
        scatters of the state vectors.
        """
        d = self.dom
        shape = d.shape

        def full(idx: np.ndarray, vals: np.ndarray) -> np.ndarray:
            out = np.full(shape, np.nan)
            out.reshape(-1)[idx] = vals
            return np.ascontiguousarray(d.image_view(out))

        rxn = np.bincount(d.face_a, reaction, self.nA) / d.voxel_volume
        out = {
            "phi_s": full(d.idx_s, state.ps),
            "phi_e": full(d.idx_e, state.pe),
            "c_e": full(d.idx_e, state.ce),
            "stoichiometry": full(d.idx_a, state.cs / self.par.c_max),
            "c_s": full(d.idx_a, state.cs),
            "reaction_current": full(d.idx_a, rxn),
        }
        if self.plating:
            out["plated_Li"] = full(d.idx_a, self.plated_per_voxel(state))
        return out

    def plated_per_voxel(self, state: State) -> np.ndarray:
        """Plated plus dead lithium on each active voxel's faces, mol/m³ of voxel."""
        assert state.pl is not None and state.dead is not None
        tot = state.pl + state.dead
        return np.bincount(self.dom.face_a, tot, self.nA) / self.dom.voxel_volume

    def fields(self, state: State, reaction: np.ndarray) -> dict[str, np.ndarray]:
        """Full-image fields (NaN outside each field's domain), float32."""
        d = self.dom
        shape = d.shape

        def full(idx: np.ndarray, vals: np.ndarray) -> np.ndarray:
            out = np.full(shape, np.nan, np.float32)
            out.reshape(-1)[idx] = vals
            return np.ascontiguousarray(d.image_view(out))

        vol = d.voxel_volume
        rxn = np.bincount(d.face_a, reaction, self.nA) / vol  # A/m³, cathodic < 0
        out = {
            "c_e": full(d.idx_e, state.ce),
            "phi_e": full(d.idx_e, state.pe),
            "phi_s": full(d.idx_s, state.ps),
            "c_s": full(d.idx_a, state.cs),
            "stoichiometry": full(d.idx_a, state.cs / self.par.c_max),
            "reaction_current": full(d.idx_a, rxn),
        }
        if self.plating:
            out["plated_Li"] = full(d.idx_a, self.plated_per_voxel(state))
        return out


class _KeptLaplacian:
    """The faces and CSR slots of :meth:`HalfCell._laplacian` on fixed unknowns.

    Built once from the unknowns ``idx`` (flat grid indices) and the operator ``A``
    the FV core assembled on them (:func:`microbat.fv.grid.face_conductances`,
    :func:`microbat.fv.system.structured_to_csr`). :meth:`matrix` then repeats that
    arithmetic on the face list alone: the core's harmonic mean
    (:func:`microbat.fv.grid.harmonic_mean`, ``2 k_p k_q / (k_p + k_q)``) times
    ``A_face / h`` of every face between two unknowns (finite volumes, Patankar 1980,
    *Numerical Heat Transfer and Fluid Flow*, §4.2-3), the diagonal
    summed in the core's order (``ground``, then per axis the face above and the one
    below), written into the kept CSR slots. The result equals the core's bit for
    bit and shares its ``indptr``/``indices`` with every other result (so
    :meth:`_Pattern.matches` compares identities).
    """

    def __init__(self, idx: np.ndarray, shape: tuple, voxel_size: Any, A: Any) -> None:
        from microbat.fv.grid import face_areas

        self.idx = idx
        self.ok = False
        n = idx.size
        if not A.has_sorted_indices:
            A.sort_indices()
        pos = np.full(int(np.prod(shape)), -1, np.int64)
        pos[idx] = np.arange(n)
        strides = (shape[1] * shape[2], shape[2], 1)
        areas = face_areas(voxel_size)
        self.scale = [areas[a] / voxel_size[a] for a in range(3)]
        ps, qs = [], []
        for a in range(3):
            lower = idx[(idx // strides[a]) % shape[a] < shape[a] - 1]
            q = pos[lower + strides[a]]
            ps.append(pos[lower][q >= 0])
            qs.append(q[q >= 0])
        nf = sum(p.size for p in ps)
        self.bounds = np.cumsum([0] + [p.size for p in ps])
        self.p, self.q = ps, qs
        # incident faces of every unknown in the order the core adds them (the face
        # to the +a neighbour, then to the −a one, per axis); nf is a zero face
        inc = np.full((6, n), nf, np.int64)
        for a in range(3):
            f = np.arange(self.bounds[a], self.bounds[a + 1])
            inc[2 * a, ps[a]] = f
            inc[2 * a + 1, qs[a]] = f
        self.inc = inc
        keys = np.repeat(np.arange(n, dtype=np.int64), np.diff(A.indptr)) * n + A.indices
        p_all, q_all = np.concatenate(ps), np.concatenate(qs)

        def slots(r: np.ndarray, c: np.ndarray) -> np.ndarray | None:
            s = np.searchsorted(keys, r * n + c)
            s = np.minimum(s, keys.size - 1)
            return s if keys.size and np.array_equal(keys[s], r * n + c) else None

        rows = np.arange(n, dtype=np.int64)
        d = A.diagonal()
        self.diag_rows = rows[d != 0]
        s_pq, s_qp = slots(p_all, q_all), slots(q_all, p_all)
        s_d = slots(self.diag_rows, self.diag_rows)
        if s_pq is None or s_qp is None or s_d is None:
            return
        if 2 * nf + self.diag_rows.size != A.nnz:
            return
        # intp: NumPy's fancy indexing converts other index types at every call
        self.s_pq, self.s_qp, self.s_d = (s.astype(np.intp) for s in (s_pq, s_qp, s_d))
        self.inc = inc.astype(np.intp)
        self.p, self.q = [p.astype(np.intp) for p in ps], [q.astype(np.intp) for q in qs]
        self.indptr, self.indices, self.n = A.indptr, A.indices, n
        self.ok = True

    def matrix(self, k0: np.ndarray, klat: np.ndarray) -> Any:
        """The operator of the per-unknown coefficients, or None (pattern would change)."""
        import scipy.sparse as sp

        from microbat.fv.grid import harmonic_mean

        if not self.ok or not (np.all(k0 != 0) and np.all(klat != 0)):
            return None
        k0 = np.asarray(k0, np.float64)
        klat = np.asarray(klat, np.float64)
        g = np.empty(self.bounds[-1] + 1)
        g[-1] = 0.0
        for a in range(3):
            k = k0 if a == 0 else klat
            kp, kq = k[self.p[a]], k[self.q[a]]
            g[self.bounds[a] : self.bounds[a + 1]] = harmonic_mean(kp, kq) * self.scale[a]
        if not np.all(g[:-1] != 0):  # underflow: the core drops such a face
            return None
        d = np.full(self.n, _TINY)
        for s in range(6):
            d += g[self.inc[s]]
        d -= _TINY
        if np.count_nonzero(d) != self.diag_rows.size or np.any(d[self.diag_rows] == 0):
            return None
        data = np.empty(self.indices.size)
        data[self.s_pq] = -g[:-1]
        data[self.s_qp] = -g[:-1]
        data[self.s_d] = d[self.diag_rows]
        A = sp.csr_matrix((data, self.indices, self.indptr), shape=(self.n, self.n))
        # the kept arrays themselves (the constructor keeps views), so that
        # :meth:`_Pattern.matches` finds the same pattern by identity
        A.indices, A.indptr = self.indices, self.indptr
        A.has_sorted_indices = True
        return A


class _Pattern:
    """Fixed sparsity pattern of a sum of sparse terms, assembled by scattering values.

    ``parts`` is a list of ``(rows, cols, values)`` with index arrays, or
    ``(L, (row_offset, col_offset), values)`` with a CSR matrix ``L`` whose entries
    are placed at the offsets. The union pattern (CSR, sorted) and the map from every
    term entry to its slot are computed once; :meth:`matrix` then adds each term's
    values into its slots in place (:mod:`._assemble`), instead of building and
    adding sparse matrices at every Newton iteration (3× faster at 64³; the kernels
    another 2.7× over one ``bincount`` of all terms).
    """

    def __init__(self, parts: list[tuple[Any, Any, np.ndarray]], n: int) -> None:
        import scipy.sparse as sp

        rows, cols = [], []
        self._keys: list[Any] = []
        for a, b, _ in parts:
            if sp.issparse(a):
                r = np.repeat(np.arange(a.shape[0]), np.diff(a.indptr)) + b[0]
                rows.append(r)
                cols.append(a.indices + b[1])
                self._keys.append((a.indptr, a.indices))
            else:
                rows.append(np.asarray(a, np.int64))
                cols.append(np.asarray(b, np.int64))
                self._keys.append(None)
        r = np.concatenate(rows).astype(np.int64)
        c = np.concatenate(cols).astype(np.int64)
        key = r * n + c
        uniq, slot = np.unique(key, return_inverse=True)
        self._nnz = uniq.size
        # each term's slots, and whether they are all different (parallel scatter)
        idx = np.int32 if uniq.size < 2**31 - 1 else np.int64
        bounds = np.cumsum([0] + [len(x) for x in rows])
        self._slots = []
        for k in range(len(rows)):
            sk = slot[bounds[k] : bounds[k + 1]].astype(idx)
            unique = sk.size == 0 or int(np.bincount(sk, minlength=uniq.size).max()) <= 1
            self._slots.append((sk, unique))
        ur, uc = np.divmod(uniq, n)
        self._indptr = np.searchsorted(ur, np.arange(n + 1)).astype(np.int32)
        self._indices = uc.astype(np.int32)
        self._rows = ur.astype(np.int32)
        self._n = n
        self._blk_key: tuple[int, ...] | None = None  # block_sums' bounds, and its map
        self._blk = np.empty(0, np.int16)

    def matches(self, parts: list[tuple[Any, Any, np.ndarray]]) -> bool:
        """Whether the sparse terms still have the pattern this was built for."""
        for i, ((a, _, _), k) in enumerate(zip(parts, self._keys, strict=True)):
            if k is None or (a.indptr is k[0] and a.indices is k[1]):
                continue
            if not (np.array_equal(a.indptr, k[0]) and np.array_equal(a.indices, k[1])):
                return False
            # same pattern in new arrays (operators rebuilt each step): remember
            # them, so the rest of the step compares identities, not the arrays
            self._keys[i] = (a.indptr, a.indices)
        return True

    def matrix(self, parts: list[tuple[Any, Any, np.ndarray]]) -> Any:
        """The CSR sum of the terms' current values."""
        import scipy.sparse as sp

        from microbat.cell.resolved import _assemble
        from microbat.core.threads import PARALLEL_MIN_WORK

        data = np.zeros(self._nnz)
        for (_, _, v), (slot, unique) in zip(parts, self._slots, strict=True):
            vals = np.ascontiguousarray(v, dtype=np.float64)
            if unique and slot.size >= PARALLEL_MIN_WORK:
                _assemble.add_unique(data, slot, vals)
            else:  # in order on one thread: a small term does not pay for a parallel launch
                _assemble.add_repeated(data, slot, vals)
        J = sp.csr_matrix((data, self._indices, self._indptr), shape=(self._n, self._n))
        J.has_sorted_indices = True
        return J

    def block_sums(self, data: np.ndarray, bounds: np.ndarray) -> np.ndarray:
        """``Wᵀ M W`` of a matrix with this pattern (values ``data``).

        ``W``: the indicators of the unknowns' blocks ``bounds[k]:bounds[k + 1]``
        (rows and columns alike).
        """
        nb = len(bounds) - 1
        key = tuple(int(b) for b in bounds)
        if self._blk_key != key:
            rb = np.searchsorted(bounds, self._rows, side="right") - 1
            cb = np.searchsorted(bounds, self._indices, side="right") - 1
            self._blk = (rb * nb + cb).astype(np.int16)
            self._blk_key = key
        return np.bincount(self._blk, weights=data, minlength=nb * nb).reshape(nb, nb)

    def scaled(self, J: Any, rs: np.ndarray, cs: np.ndarray) -> Any:
        """``diag(rs) J diag(cs)`` on the same pattern."""
        import scipy.sparse as sp

        from microbat.cell.resolved import _assemble
        from microbat.core.threads import serial_below

        data = np.empty_like(J.data)
        with serial_below(data.size):
            _assemble.scale(J.data, self._rows, self._indices, rs, cs, data)
        Js = sp.csr_matrix((data, self._indices, self._indptr), shape=J.shape)
        Js.has_sorted_indices = True
        return Js


class _Pardiso:
    """MKL PARDISO (via pypardiso) keeping the symbolic analysis between Newton updates.

    The Jacobian's sparsity pattern is the same at every iteration of a run, so the
    METIS ordering and symbolic factorisation (PARDISO phase 11) are done once;
    later matrices with the same pattern go straight to numerical factorisation and
    solve (phase 23). A changed pattern triggers a fresh analysis.
    """

    def __init__(self) -> None:
        from microbat.core.errors import require

        pypardiso = require("pypardiso")
        self.solver = pypardiso.PyPardisoSolver(mtype=11)
        self.indptr: np.ndarray | None = None
        self.indices: np.ndarray | None = None

    def solve(self, J: Any, b: np.ndarray) -> np.ndarray:
        A = J.tocsr()
        A.sort_indices()
        s = self.solver
        s._check_A(A)
        rhs = s._check_b(A, np.asarray(b, np.float64))
        same = (
            self.indptr is not None
            and np.array_equal(A.indptr, self.indptr)
            and np.array_equal(A.indices, self.indices)
        )
        s.set_phase(23 if same else 13)
        x = s._call_pardiso(A, rhs)
        self.indptr, self.indices = A.indptr.copy(), A.indices.copy()
        self.A = A
        return x

    def resolve(self, b: np.ndarray) -> np.ndarray:
        """Solve with the factorisation of the last matrix (PARDISO phase 33)."""
        s = self.solver
        s.set_phase(33)
        return s._call_pardiso(self.A, s._check_b(self.A, np.asarray(b, np.float64)))

    def __del__(self) -> None:  # release PARDISO's internal memory
        try:
            self.solver.free_memory(everything=True)
        except Exception:  # pragma: no cover - best effort at interpreter exit
            pass


def _has_pardiso() -> bool:
    import importlib.util

    return importlib.util.find_spec("pypardiso") is not None


def initial_state(cell: HalfCell) -> State:
    """Rest state: uniform concentrations, potentials at equilibrium."""
    p = cell.par
    U0 = float(p.ocp(np.array([p.c_s0 / p.c_max]))[0])
    nF = cell.dom.face_a.size
    return State(
        0.0,
        np.full(cell.nE, p.c_e0),
        np.zeros(cell.nE),
        np.full(cell.nS, U0),
        np.full(cell.nA, p.c_s0),
        U0,
        np.zeros(nF) if cell.plating else None,
        np.zeros(nF) if cell.plating else None,
    )


def rest_guess(cell: HalfCell, rest: State, I_app: float) -> State:
    """Newton's first guess for the first step from rest at current ``I_app``.

    The rest state has zero overpotential; at a low exchange current (e.g. graphite
    near the end of its window) the linearised Butler–Volmer step from there
    overshoots by tenths of a volt and Newton oscillates. This guess shifts the solid
    and the terminal voltage by the overpotential that carries ``I_app`` uniformly over
    the reaction area at the rest concentrations (Butler–Volmer inverted by bisection;
    transport losses are left to Newton).
    """
    p = cell.par
    d = cell.dom
    A = cell.face_area
    j0 = cell.exchange_current(rest.ce[d.face_e], rest.cs[d.face_a])
    a = p.alpha
    target = -I_app  # anodic positive: lithiation (I_app > 0) is cathodic

    def total(eta: float) -> float:
        return float(np.sum(A * j0 * (np.exp(a * cell.f * eta) - np.exp(-(1 - a) * cell.f * eta))))

    lo, hi = -2.0, 2.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if total(mid) < target:
            lo = mid
        else:
            hi = mid
    eta = 0.5 * (lo + hi)
    g = rest.copy()
    g.ps = g.ps + eta
    g.V = g.V + eta
    return g
