r"""Resolved small-signal impedance of a voxel electrode on the finite-volume core.

Equations
---------
Two complex potential fields live on the voxel grid: the electronic potential
``φ_s`` on electron-conducting voxels (active material σ_am, carbon-binder σ_cbd,
current collector) and the ionic potential ``φ_e`` on ion-conducting voxels (pore
κ, nanoporous carbon-binder ``f_cbd κ``, separator ``f_sep κ``). A carbon-binder
voxel carries both. Away from interfaces each obeys charge conservation,

.. math::  \nabla\cdot(\sigma \nabla \phi_s) = 0, \qquad \nabla\cdot(\kappa\nabla\phi_e) = 0,

discretised by :func:`microbat.fv.build_system` (harmonic face conductances).
Every voxel face between an active voxel ``p`` and an ion-conducting voxel ``q``
(:func:`microbat.fv.interface_faces`) carries the small-signal current
``w_f (φ_s,p − φ_e,q)`` from solid to electrolyte, with

.. math::

    w_f = \frac{a_f A_f}{1/Y(\omega) + h_f/(2\sigma_p) + h_f/(2\kappa_q)},

the interfacial admittance ``Y`` (:meth:`EISParameters.admittance`) in series with
the two half-cell resistances between the voxel centres and the face (so that a
flat interface is reproduced exactly), ``A_f`` the face area and ``a_f`` 1 for a
pore face and ``cbd_wetted_fraction`` for a face to carbon-binder. The coupled
system for ``(φ_s, φ_e)`` is

.. math::  \big(L + B^\top W(\omega) B\big)\, \phi = b,

``L`` the two FV Laplacians side by side, ``B`` the face incidence
(``+1`` on ``p``, ``−1`` on ``q``) and ``W = diag(w_f)``; complex symmetric
(not Hermitian). The current collector holds ``φ_s = 1 V`` on the outer face at
index 0 of the thickness axis; the electrolyte is held at ``φ_e = 0`` on the
outer face at the last index (the separator side, or the far side of a separator
slab in the image). The impedance is ``Z = 1 V / I`` with ``I`` the current
leaving through the separator face (equal, by conservation, to the current
entering at the current collector). Other outer faces are insulating.

Single-ion solid electrolyte (composite cathodes)
-------------------------------------------------
When the image holds a phase of role ``solid_electrolyte`` the ionic conductor is
that solid (and the separator slab, read as dense solid electrolyte), with the
constant conductivity ``σ_SE`` (:attr:`EISParameters.solid_electrolyte_conductivity_S_per_m`).
A solid electrolyte is a single-ion conductor: the anions are the immobile
lattice, so t₊ = 1, no concentration gradient builds up and the ionic current
is Ohm's law ``−σ_SE ∇φ_e`` (J. Maier, *Physical Chemistry of Ionic Materials*,
Wiley 2004, ch. 6) — the model above has no concentration unknowns, so only the
sets change: interface faces are active | solid-electrolyte faces only (the
charge transfer, double layer and solid diffusion of :class:`EISParameters`,
``a_f = 1``); carbon-binder conducts electrons only; liquid-role pores and voids
are insulating. Validation: a planar active | SE bilayer against ``R_SE`` in
series with the Randles interface and the finite-length Warburg of the active
layer, and an SE channel through the active phase against de Levie's line
(``docs/validation/eis.md``).

Assumptions: small signal around an equilibrium rest state (uniform SOC, zero
current); one particle radius for the solid diffusion of every interface face
(the mean radius of :class:`EISParameters`); no electrolyte concentration
impedance; no double layer on carbon-binder/electrolyte faces.

Solvers
-------
``"direct"``: a sparse LU per frequency, PARDISO (``pypardiso``, METIS ordering,
multithreaded; on the equivalent real system of twice the size) when installed,
else SuperLU (symmetric mode, no pivoting: the Hermitian part of the matrix is
positive definite; much slower in 3D for lack of a nested-dissection
ordering); the sparsity pattern and the scatter of the face terms into it are
built once. ``"iterative"``: GMRES (restart 100, relative residual ``rtol``,
warm-started from the previous frequency) preconditioned by one V-cycle of a
complex AMG hierarchy: the aggregates and prolongators are those of
smoothed-aggregation AMG (PyAMG, *evolution* strength of connection) of the real
surrogate ``L + Bᵀ|W(ω₀)|B`` at the frequency of weakest coupling ``ω₀``, built
once per band; at each frequency the coarse operators are recomputed as complex
Galerkin products ``Pᵀ K(ω) P`` and smoothed by complex Gauss-Seidel. One
hierarchy serves the whole band (8-13 iterations from 100 kHz to 10 mHz,
measured up to 100³); it is rebuilt at a frequency where the iterations exceed
``reuse_factor`` times those of the first one. BLAS/OpenMP pools are held to one
thread while it runs (no oversubscription), and the band is split over
``workers`` processes (default 2 above :data:`PROCESS_LIMIT` unknowns with 8 or
more frequencies). ``"auto"``: direct up to :data:`DIRECT_LIMIT` unknowns, else
iterative. Measured times: ``docs/validation/eis.md``.

Progress: a ``progress(done, total, message)`` callable (:data:`EISProgress`) is
called in the calling process as frequencies finish: after each frequency when
they are solved here (direct, serial or threads; iterative in one process), after
each worker's part of the band when they are solved in processes.

Why: the former preconditioner (symmetric strength, two real V-cycles per
iteration) needed 40-80 iterations: particles and pore clusters reached only
through the interface are weakly coupled, and the symmetric strength measure
aggregates them badly; the evolution measure and the complex coarse operators cut
that to ~10 and each iteration costs one complex cycle instead of two real ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from microbat.cell.eis.parameters import EISParameters
from microbat.cell.eis.result import EISResult, default_frequencies
from microbat.core.errors import (
    ConvergenceError,
    InvalidInputError,
    NotPercolatingError,
    PhaseError,
)
from microbat.core.microstructure import Microstructure
from microbat.core.phases import PhaseRole
from microbat.core.results import Provenance
from microbat.core.threads import (
    single_threaded_blas,
    split,
    thread_budget,
    worker_threads,
)

__all__ = ["ResolvedModel", "resolved_eis"]

Solver = Literal["auto", "direct", "iterative"]

#: V-cycle smoothing: one forward Gauss-Seidel sweep down, one backward sweep up
#: (a symmetric cycle; half the work of PyAMG's default symmetric sweeps).
_SMOOTH = (("gauss_seidel", {"sweep": "forward"}), ("gauss_seidel", {"sweep": "backward"}))

#: ``solver="auto"`` factorises directly up to this many unknowns (SuperLU, the
#: fall-back without PARDISO, is slow in 3D beyond; AMG-GMRES is faster from ~10⁴).
DIRECT_LIMIT = 5_000


@dataclass(frozen=True)
class _Interface:
    rows: np.ndarray  # solid unknown of each face
    cols: np.ndarray  # electrolyte unknown (global index) of each face
    area: np.ndarray  # a_f A_f
    r_half: np.ndarray  # h/(2σ_p) + h/(2κ_q), Ω m²


class ResolvedModel:
    """The assembled small-signal model of one microstructure.

    Parameters
    ----------
    ms : Microstructure
        3D labelled electrode; the current collector side is index 0 of
        ``ms.thickness_axis``.
    params : EISParameters, optional
        Material and interface parameters (defaults if omitted).
    blocking : bool, default False
        Switch off the Faradaic branch (double layer only).

    Attributes
    ----------
    n_solid, n_electrolyte : int
        Unknowns of each field.
    single_ion : bool
        The ionic conductor is a solid electrolyte (see the module notes).
    interface_area_m2 : float
        Total ``Σ a_f A_f`` of the coupling faces.
    area_m2 : float
        Cross-section normal to the thickness axis.

    Raises
    ------
    PhaseError
        No active phase or no ion-conducting phase.
    NotPercolatingError
        No solid touches the current collector side, or no electrolyte the
        separator side.

    Notes
    -----
    Assembly is vectorised, O(N) time and memory; each frequency then costs one
    sparse factorisation (or one preconditioned GMRES solve).
    """

    def __init__(
        self,
        ms: Microstructure,
        params: EISParameters | None = None,
        *,
        blocking: bool = False,
    ) -> None:
        if not isinstance(ms, Microstructure):
            raise InvalidInputError(f"expected a Microstructure, got {type(ms).__name__}")
        if ms.ndim != 3:
            raise InvalidInputError("the resolved impedance model needs a 3D microstructure")
        self.ms = ms
        self.params = params or EISParameters()
        self.blocking = bool(blocking)
        t0 = time.perf_counter()
        self._assemble()
        self.assembly_s = time.perf_counter() - t0

    # ----------------------------------------------------------- assembly
    def _assemble(self) -> None:
        from microbat.fv.connectivity import components
        from microbat.fv.grid import coefficient_field, interface_faces
        from microbat.fv.system import Dirichlet, build_system, structured_to_csr

        ms, p = self.ms, self.params
        ax = ms.thickness_axis
        h = tuple(float(v) for v in ms.voxel_size)
        labels = np.asarray(ms.labels)
        kappa = p.electrolyte_conductivity_S_per_m
        ion: dict[int, float] = {}
        ele: dict[int, float] = {}
        active_labels, cbd_labels = [], []
        # a solid electrolyte makes the image a composite cathode: single-ion conductor
        self.single_ion = any(ph.role == PhaseRole.SOLID_ELECTROLYTE for ph in ms.phases.values())
        sigma_se = p.solid_electrolyte_conductivity_S_per_m
        for ph in ms.phases.values():
            r = ph.role
            if self.single_ion:
                # SE and the separator slab (dense SE) conduct ions; carbon-binder only
                # electrons; liquid-role pores and voids of a composite are insulating
                if r in (PhaseRole.SOLID_ELECTROLYTE, PhaseRole.SEPARATOR):
                    ion[ph.label] = sigma_se
                elif r == PhaseRole.CARBON_BINDER:
                    ele[ph.label] = p.cbd_conductivity_S_per_m
                elif r == PhaseRole.ACTIVE:
                    ele[ph.label] = p.active_conductivity_S_per_m
                    active_labels.append(ph.label)
                elif r == PhaseRole.CURRENT_COLLECTOR:
                    ele[ph.label] = p.current_collector_conductivity_S_per_m
                continue
            if r == PhaseRole.ELECTROLYTE:
                ion[ph.label] = kappa
            elif r == PhaseRole.SEPARATOR:
                ion[ph.label] = kappa * p.separator_ionic_fraction
            elif r == PhaseRole.CARBON_BINDER:
                ion[ph.label] = kappa * p.cbd_ionic_fraction
                ele[ph.label] = p.cbd_conductivity_S_per_m
                cbd_labels.append(ph.label)
            elif r == PhaseRole.ACTIVE:
                ele[ph.label] = p.active_conductivity_S_per_m
                active_labels.append(ph.label)
            elif r == PhaseRole.CURRENT_COLLECTOR:
                ele[ph.label] = p.current_collector_conductivity_S_per_m
        ion = {k: v for k, v in ion.items() if v > 0}
        ele = {k: v for k, v in ele.items() if v > 0}
        if not active_labels:
            raise PhaseError(
                f"no phase with role 'active' in {ms.phases.to_spec()}; the impedance model "
                "needs an active/electrolyte interface (name a phase active, e.g. active=2)"
            )
        if not ion:
            raise PhaseError(
                f"no ion-conducting phase (electrolyte, carbon_binder, separator, "
                f"solid_electrolyte) in {ms.phases.to_spec()}"
            )
        k_ion = coefficient_field(labels, ion)
        k_ele = coefficient_field(labels, ele)
        faces = interface_faces(labels, active_labels, sorted(ion), h)
        if faces.n_faces == 0:
            raise PhaseError(
                "the active phase has no face in contact with "
                + ("the solid electrolyte" if self.single_ion else "an ion conductor")
            )

        def keep(cond: np.ndarray, side: int, marks: np.ndarray) -> np.ndarray:
            lab, n = components(cond)
            k = np.zeros(n + 1, bool)
            k[np.unique(np.take(lab, side, axis=ax))] = True
            k[np.unique(lab.reshape(-1)[marks])] = True
            k[0] = False
            return k[lab]

        act_s = keep(k_ele > 0, 0, faces.side_a)
        act_e = keep(k_ion > 0, -1, faces.side_b)
        if not np.take(act_s, 0, axis=ax).any():
            raise NotPercolatingError(
                f"no electron-conducting voxel touches the current-collector side (index 0 of "
                f"axis {ax}); check the thickness axis (--thickness-axis) or the phase roles"
            )
        if not np.take(act_e, -1, axis=ax).any():
            raise NotPercolatingError(
                f"no ion-conducting voxel touches the separator side (last index of axis {ax}); "
                "the electrolyte reference cannot be reached"
            )
        sys_s = build_system(k_ele, h, dirichlet=[Dirichlet(ax, 0, 1.0)], active=act_s)
        sys_e = build_system(k_ion, h, dirichlet=[Dirichlet(ax, -1, 0.0)], active=act_e)
        blocks, rhs, pos = [], [], []
        for s, act in ((sys_s, act_s), (sys_e, act_e)):
            ground = s.ground + act  # marks every unknown (faces may be its only coupling)
            A, index = structured_to_csr(ground, [s.conductance(a) for a in range(3)])
            A = A - _diag(np.ones(index.size))
            blocks.append(A.tocoo())
            rhs.append(s.rhs.reshape(-1)[index])
            m = np.full(labels.size, -1, np.int64)
            m[index] = np.arange(index.size)
            pos.append(m)
        ns, ne = blocks[0].shape[0], blocks[1].shape[0]
        n = ns + ne
        self.n_solid, self.n_electrolyte, self.n_unknowns = ns, ne, n
        self._b = np.concatenate(rhs).astype(np.complex128)
        # interface faces
        hf = np.asarray(h)[faces.axis]
        sig = k_ele.reshape(-1)[faces.side_a]
        kap = k_ion.reshape(-1)[faces.side_b]
        wet = np.ones(faces.n_faces)
        if cbd_labels:
            is_cbd = np.isin(labels.reshape(-1)[faces.side_b], cbd_labels)
            wet[is_cbd] = p.cbd_wetted_fraction
        self._iface = _Interface(
            rows=pos[0][faces.side_a],
            cols=ns + pos[1][faces.side_b],
            area=faces.area * wet,
            r_half=hf / (2 * sig) + hf / (2 * kap),
        )
        self.interface_area_m2 = float(self._iface.area.sum())
        self.n_faces = faces.n_faces
        # one pattern for every frequency: K.data = L_data + S @ w
        f = self._iface
        nf = f.rows.size
        fi = np.arange(nf)
        r_all = np.concatenate([blocks[0].row, blocks[1].row + ns, f.rows, f.cols, f.rows, f.cols])
        c_all = np.concatenate([blocks[0].col, blocks[1].col + ns, f.rows, f.cols, f.cols, f.rows])
        keys = r_all.astype(np.int64) * n + c_all
        uniq, inv = np.unique(keys, return_inverse=True)
        nl = blocks[0].nnz + blocks[1].nnz
        ldata = np.concatenate([blocks[0].data, blocks[1].data])
        self._ldata = np.bincount(inv[:nl], weights=ldata, minlength=uniq.size)
        import scipy.sparse as sp

        sgn = np.concatenate([np.ones(2 * nf), -np.ones(2 * nf)])
        self._scatter = sp.csr_matrix((sgn, (inv[nl:], np.tile(fi, 4))), shape=(uniq.size, nf))
        self._indices = (uniq % n).astype(np.int32)
        counts = np.bincount(uniq // n, minlength=n)
        self._indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
        # separator face: I = Σ g φ_e (equal to the current-collector current by
        # conservation, and free of the cancellation in Σ g (1 − φ_s) when σ is large)
        sep = sys_e.boundaries[0]
        plane_idx = np.take(
            np.arange(labels.size).reshape(labels.shape), sep.layer, axis=ax
        ).reshape(-1)
        g = np.asarray(sep.conductance, np.float64).reshape(-1)
        sel = g != 0
        self._out_rows = ns + pos[1][plane_idx[sel]]
        self._out_g = g[sel]
        self.area_m2 = float(np.prod([ms.extent[a] for a in range(3) if a != ax]))

    # ----------------------------------------------------------- per frequency
    def face_weights(self, omega: float) -> np.ndarray:
        """Face admittances ``w_f`` (S) at angular frequency ``omega``."""
        y = complex(self.params.admittance(omega, blocking=self.blocking))
        f = self._iface
        return f.area * y / (1.0 + f.r_half * y)

    def laplace_impedance(self, s: Sequence[complex] | np.ndarray) -> np.ndarray:
        """Impedance ``Z(s)`` (Ω) at complex Laplace variables ``s`` (direct solves).

        ``Z(jω)`` is the spectrum; off the imaginary axis this is what a numerical
        inverse Laplace transform needs (:func:`microbat.cell.eis.transient.step_response`).
        Meant for small models (one sparse LU per value of ``s``).
        """
        import scipy.sparse as sp
        import scipy.sparse.linalg as spla

        out = []
        n = self.n_unknowns
        f = self._iface
        for sv in np.asarray(s, np.complex128).reshape(-1):
            y = complex(self.params.laplace_admittance(sv, blocking=self.blocking))
            w = f.area * y / (1.0 + f.r_half * y)
            data = self._ldata + self._scatter @ w
            K = sp.csr_matrix((data, self._indices, self._indptr), shape=(n, n))
            x = spla.spsolve(K.tocsc(), self._b)
            out.append(1.0 / self.current(x))
        return np.array(out)

    def matrix(self, omega: float) -> Any:
        """The complex system matrix ``L + Bᵀ W(ω) B`` (CSR) at ``omega`` (rad/s)."""
        import scipy.sparse as sp

        data = self._ldata + self._scatter @ self.face_weights(omega)
        n = self.n_unknowns
        return sp.csr_matrix((data, self._indices, self._indptr), shape=(n, n))

    def current(self, x: np.ndarray) -> complex:
        """Current (A) of solution ``x``, measured where it leaves at the separator face."""
        return complex(np.sum(self._out_g * x[self._out_rows]))

    def solve_direct(self, omega: float) -> tuple[complex, float]:
        """Impedance (Ω) and relative residual at one angular frequency by sparse LU.

        Uses PARDISO (``pypardiso``, METIS ordering, multithreaded) on the
        equivalent real system ``[[Re K, −Im K], [Im K, Re K]]`` when installed,
        else SuperLU on the complex matrix.
        """
        K = self.matrix(omega)
        if _has_pardiso():
            import scipy.sparse as sp

            from microbat.core.errors import require

            pypardiso = require("pypardiso")
            n = self.n_unknowns
            Kb = sp.bmat([[K.real, -K.imag], [K.imag, K.real]], format="csr")
            xb = pypardiso.spsolve(Kb, np.concatenate([self._b.real, self._b.imag]))
            x = xb[:n] + 1j * xb[n:]
        else:
            import scipy.sparse.linalg as spla

            lu = spla.splu(
                K.tocsc(),
                permc_spec="MMD_AT_PLUS_A",
                diag_pivot_thresh=0.0,
                options={"SymmetricMode": True},
            )
            x = lu.solve(self._b)
        res = float(np.linalg.norm(self._b - K @ x) / np.linalg.norm(self._b))
        return 1.0 / self.current(x), res

    def impedance(
        self,
        frequencies: Sequence[float] | np.ndarray,
        *,
        solver: Solver = "auto",
        workers: int | None = None,
        rtol: float = 1e-9,
        reuse_factor: float = 4.0,
        progress: EISProgress | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Impedance at each frequency.

        Parameters
        ----------
        frequencies : sequence of float
            Frequencies (Hz, > 0).
        solver : {"auto", "direct", "iterative"}, default "auto"
            See module notes; ``"auto"`` is direct up to :data:`DIRECT_LIMIT` unknowns,
            else iterative.
        workers : int, optional
            Direct solver: threads solving frequencies in parallel with SuperLU
            (default 2; PARDISO runs one frequency at a time and parallelises
            inside). Iterative solver: processes, each solving a contiguous part of
            the band with its own hierarchy (default 2 above
            :data:`PROCESS_LIMIT` unknowns and 8 frequencies, else 1). Either is
            capped by the thread budget (:mod:`microbat.core.threads`), and worker
            processes share it: processes × threads each ≤ budget.
        rtol : float, default 1e-9
            Relative residual of the iterative solver (gives Z to ~2e-6 relative
            on a 24³ electrode; 1e-8 gave 4e-5).
        reuse_factor : float, default 4
            The iterative solver rebuilds its AMG hierarchy at a frequency that
            needs more than this factor times the iterations of the first one (and
            more than 30).
        progress : callable, optional
            ``progress(done, total, message)`` as frequencies finish (see the
            module notes; :data:`EISProgress`).

        Returns
        -------
        z : ndarray of complex
            Impedance (Ω) in the order of ``frequencies``.
        info : dict
            ``solver``, ``time_per_frequency_s``, ``max_residual``, ``iterations``.
        """
        f = np.asarray(frequencies, np.float64).reshape(-1)
        if f.size == 0 or not np.all(np.isfinite(f)) or np.any(f <= 0):
            raise InvalidInputError("frequencies must be positive and finite")
        if solver == "auto":
            solver = "direct" if self.n_unknowns <= DIRECT_LIMIT else "iterative"
        if solver not in ("direct", "iterative"):
            raise InvalidInputError(f"unknown solver {solver!r}; use auto, direct or iterative")
        omega = 2 * np.pi * f
        t0 = time.perf_counter()

        def tick(k: int) -> None:  # frequency k (in the order given) is solved
            if progress is not None:
                progress(k + 1, f.size, f"frequency {k + 1}/{f.size} ({f[k]:.3g} Hz)")

        if solver == "direct":
            # threads within the budget (core.threads); PARDISO parallelises inside
            nw, _ = split(workers or (1 if _has_pardiso() else 2), f.size)
            # BLAS held to one thread: its spinning pool and MKL's (PARDISO) fought
            # over the two cores and made the residual norms cost 25 ms instead of 10 µs
            out = []
            with single_threaded_blas("blas"):
                if nw > 1 and f.size > 1:
                    with ThreadPoolExecutor(nw) as pool:
                        for k, o in enumerate(pool.map(self.solve_direct, omega)):
                            out.append(o)
                            tick(k)
                else:
                    for k, w in enumerate(omega):
                        out.append(self.solve_direct(w))
                        tick(k)
            z = np.array([o[0] for o in out])
            res = np.array([o[1] for o in out])
            its = [0] * f.size
        else:
            nw = int(workers) if workers else _default_processes(self.n_unknowns, f.size)
            nw, per = split(nw, f.size)  # processes × threads each ≤ the budget
            parts = (
                self._solve_in_processes(omega, rtol, reuse_factor, nw, per, progress)
                if nw > 1
                else None
            )
            if parts is None:
                z, res, its = self._solve_iterative(omega, rtol, reuse_factor, tick)
            else:
                z = np.concatenate([p[0] for p in parts])
                res = np.concatenate([p[1] for p in parts])
                its = [i for p in parts for i in p[2]]
        dt = time.perf_counter() - t0
        info = {
            "solver": solver,
            "time_s": dt,
            "time_per_frequency_s": dt / f.size,
            "max_residual": float(np.max(res)),
            "iterations": [int(i) for i in its],
        }
        return z, info

    def _solve_in_processes(
        self,
        omega: np.ndarray,
        rtol: float,
        reuse_factor: float,
        nw: int,
        per: int = 1,
        progress: EISProgress | None = None,
    ) -> list[tuple[np.ndarray, np.ndarray, list[int]]] | None:
        """Contiguous parts of the band in ``nw`` spawned processes (None: cannot spawn).

        The workers end with the call: on Ctrl-C (or a SIGTERM the CLI turns into
        one) they are terminated at once, and a worker whose parent is gone exits
        by itself (:func:`microbat.core.processes.worker_pool`). ``progress`` hears
        of each part as it finishes.
        """
        from concurrent.futures import as_completed
        from concurrent.futures.process import BrokenProcessPool

        from microbat.core.processes import worker_pool

        chunks = np.array_split(np.arange(omega.size), nw)
        try:
            with worker_pool(nw) as pool:
                futures = {
                    pool.submit(_band_worker, self, omega[c], rtol, reuse_factor, per): i
                    for i, c in enumerate(chunks)
                }
                done = 0
                for n_batch, fut in enumerate(as_completed(futures), 1):
                    fut.result()  # raise a worker's error as soon as it is known
                    done += chunks[futures[fut]].size
                    if progress is not None:
                        progress(
                            done,
                            omega.size,
                            f"{done}/{omega.size} frequencies ({n_batch}/{nw} worker batches)",
                        )
                by_part = {i: fut.result() for fut, i in futures.items()}
                return [by_part[i] for i in range(nw)]
        except (BrokenProcessPool, OSError, RuntimeError) as exc:
            if isinstance(exc, ConvergenceError):
                raise
            import warnings

            warnings.warn(
                f"could not solve frequencies in processes ({exc}); solving them serially",
                RuntimeWarning,
                stacklevel=3,
            )
            return None

    def surrogate_hierarchy(self, omega: float) -> Any:
        """Smoothed-aggregation AMG hierarchy of the real matrix ``L + Bᵀ|W(ω)|B``.

        Evolution strength of connection (Olson, Schroder and Tuminaro 2010): the
        classical symmetric measure links the weakly coupled floating clusters
        (particles reached only through the interface) badly and GMRES then needs
        50-80 iterations; with the evolution measure it needs about 10.
        """
        import scipy.sparse as sp

        from microbat.core.errors import require

        pyamg = require("pyamg")
        n = self.n_unknowns
        data = self._ldata + self._scatter @ np.abs(self.face_weights(omega))
        Kr = sp.csr_matrix((data, self._indices, self._indptr), shape=(n, n))
        ml = pyamg.smoothed_aggregation_solver(
            Kr,
            strength="evolution",
            max_coarse=500,
            presmoother=_SMOOTH[0],
            postsmoother=_SMOOTH[1],
        )
        for lv in ml.levels[:-1]:  # 1x1 BSR products are slower than CSR ones
            lv.P, lv.R = lv.P.tocsr(), lv.R.tocsr()
        return ml

    def _solve_iterative(
        self,
        omega: np.ndarray,
        rtol: float,
        reuse_factor: float,
        solved: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, list[int]]:
        import scipy.sparse.linalg as spla

        # BLAS/OpenMP pools held to one thread while the band is solved (no oversubscription)
        with single_threaded_blas():
            z = np.empty(omega.size, np.complex128)
            res = np.empty(omega.size)
            its: list[int] = []
            ml = None
            x0 = None
            bnorm = float(np.linalg.norm(self._b))
            base = 0
            # one real hierarchy for the band, built where the coupling is weakest
            # (lowest |W|); its coarse operators are recomputed per frequency from the
            # complex matrix, so it serves the whole band (8-12 iterations measured)
            order = np.argsort([np.mean(np.abs(self.face_weights(w))) for w in omega])
            for k, w in enumerate(omega):
                if ml is None:
                    ml = self.surrogate_hierarchy(float(omega[order[0]]))
                K = self.matrix(w)
                M = _complex_galerkin(ml, K).aspreconditioner(cycle="V")
                count = [0]

                def cb(_: Any, count: list[int] = count) -> None:
                    count[0] += 1

                x, info = spla.gmres(
                    K,
                    self._b,
                    x0=x0,
                    rtol=rtol,
                    atol=0.0,
                    restart=100,
                    maxiter=5,
                    M=M,
                    callback=cb,
                    callback_type="pr_norm",
                )
                r = float(np.linalg.norm(self._b - K @ x)) / bnorm
                if info != 0 and r > 10 * rtol:
                    raise ConvergenceError(
                        f"GMRES stopped at relative residual {r:.2e} at {w / 2 / np.pi:.3g} Hz; "
                        "use solver='direct' for this size or raise rtol"
                    )
                if base == 0:
                    base = max(count[0], 1)
                elif count[0] > reuse_factor * base and count[0] > 30:
                    # the hierarchy no longer fits: rebuild it at this frequency
                    ml = self.surrogate_hierarchy(float(w))
                    base = 0
                x0 = x
                z[k] = 1.0 / self.current(x)
                res[k] = r
                its.append(count[0])
                if solved is not None:
                    solved(k)
            return z, res, its


#: ``progress(done, total, message)``: frequencies solved so far, of how many, and
#: what finished (a frequency, or a worker's part of the band).
EISProgress = Callable[[int, int, str], None]

#: above this many unknowns (and with 8+ frequencies) the iterative solver splits the
#: band over processes by default; below, the start-up of a process (~3 s) dominates.
PROCESS_LIMIT = 150_000


def _default_processes(n_unknowns: int, n_freq: int) -> int:

    if n_unknowns < PROCESS_LIMIT or n_freq < 8:
        return 1
    return max(1, min(2, thread_budget()))


def _band_worker(
    model: ResolvedModel, omega: np.ndarray, rtol: float, reuse_factor: float, threads: int = 1
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    worker_threads(threads)  # this process's share of the budget (core.threads)
    return model._solve_iterative(omega, rtol, reuse_factor)


def _complex_galerkin(ml: Any, K: Any) -> Any:
    """Copy of a real AMG hierarchy with the complex ``K`` and its Galerkin products."""
    import pyamg

    from microbat.fv.solvers import galerkin_copy

    mc = galerkin_copy(ml, K)
    mc.coarse_solver = pyamg.multilevel.coarse_grid_solver("pinv")
    return mc


def _has_pardiso() -> bool:
    import importlib.util

    return importlib.util.find_spec("pypardiso") is not None


def _diag(v: np.ndarray) -> Any:
    import scipy.sparse as sp

    return sp.diags(v, format="csr")


def resolved_eis(
    ms: Microstructure,
    params: EISParameters | None = None,
    *,
    frequencies: Sequence[float] | np.ndarray | None = None,
    blocking: bool = False,
    solver: Solver = "auto",
    workers: int | None = None,
    rtol: float = 1e-9,
    progress: EISProgress | None = None,
) -> EISResult:
    """Impedance spectrum of a voxel electrode from the resolved small-signal model.

    Parameters
    ----------
    ms : Microstructure
        3D labelled electrode (current collector at index 0 of the thickness axis,
        separator side at the last index).
    params : EISParameters, optional
        Material and interface parameters (defaults if omitted); see
        :meth:`EISParameters.from_cell` for a published set at a state of charge.
    frequencies : sequence of float, optional
        Frequencies in Hz; default 100 kHz down to 10 mHz, 8 per decade.
    blocking : bool, default False
        Blocking electrode: double layer only, no Faradaic current.
    solver : {"auto", "direct", "iterative"}, default "auto"
        Linear solver (see :mod:`microbat.cell.eis.resolved`).
    workers : int, optional
        Parallel threads (direct solver) or processes (iterative solver) across
        frequencies; see :meth:`ResolvedModel.impedance`.
    rtol : float, default 1e-9
        Relative residual of the iterative solver.
    progress : callable, optional
        ``progress(done, total, message)``, called as frequencies (or, with
        worker processes, parts of the band) finish.

    Returns
    -------
    EISResult
        ``z_real_ohm``, ``z_imag_ohm`` of the imaged cross-section; ``details``
        holds unknowns, solver, residuals and time per frequency.

    Raises
    ------
    PhaseError, NotPercolatingError, InvalidInputError, ConvergenceError

    Notes
    -----
    Cost per frequency: one sparse LU of ``n_solid + n_electrolyte`` unknowns
    (about N^2 for N voxels in 3D with nested-dissection-like orderings), or
    8-15 AMG-preconditioned GMRES iterations plus the complex Galerkin products
    (linear in N: ~1.3 s at 64³, ~5-7 s at 100³ on two shared cores).

    Examples
    --------
    >>> from microbat.synth.phantoms import channels
    >>> ms = channels((16, 6, 6), width=2, spacing=6, voxel_size=1e-6)
    >>> r = resolved_eis(ms, frequencies=[1e3, 1.0], blocking=True)
    >>> bool(r.z_imag_ohm[-1] < 0)
    True
    """
    t0 = time.perf_counter()
    freqs = default_frequencies() if frequencies is None else np.asarray(frequencies, float)
    model = ResolvedModel(ms, params, blocking=blocking)
    z, info = model.impedance(freqs, solver=solver, workers=workers, rtol=rtol, progress=progress)
    details = {
        "n_unknowns": model.n_unknowns,
        "n_solid": model.n_solid,
        "n_electrolyte": model.n_electrolyte,
        "n_interface_faces": model.n_faces,
        "ionic_conductor": "solid_electrolyte" if model.single_ion else "liquid",
        "assembly_s": model.assembly_s,
        **info,
    }
    prov = Provenance(
        function="microbat.cell.eis.resolved_eis",
        parameters={"blocking": blocking, "solver": solver, "n_frequencies": int(freqs.size)},
        wall_time_s=time.perf_counter() - t0,
        inputs={"shape": list(ms.shape), "voxel_size": list(ms.voxel_size)},
    )
    return EISResult(
        frequency_Hz=freqs,
        z_real_ohm=z.real.copy(),
        z_imag_ohm=z.imag.copy(),
        area_m2=model.area_m2,
        model="resolved",
        blocking=blocking,
        interface_area_m2=model.interface_area_m2,
        parameters=model.params.to_dict(),
        details=details,
        provenance=prov,
    )
