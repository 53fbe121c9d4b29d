"""Benchmark of the resolved model's Krylov solve on one and on two threads (issue 18).

Run ``python benchmarks/bench_krylov_threads.py [--n 48] [--c-rate 3] [--solve 60]
[--repeat 3] [--cache FILE]``.

Takes the Newton system of a resolved charge (``benchmarks/bench_charge.py``'s
synthetic graphite electrode, n³ voxels, charged at ``--c-rate``): the run is stopped
at its ``--solve``-th linear solve and that scaled Jacobian, right-hand side and
scalings are kept (``--cache`` saves them for the next run). One
:class:`~microbat.cell.resolved._krylov.BlockAMGSolver` is set up on it, then the
same solve (GMRES + block AMG V-cycles) is timed with 1 and 2 threads
(:func:`microbat.core.threads.set_threads`), alternating, ``--repeat`` times each.
The one-thread run is the serial solver (PyAMG's Gauss–Seidel, SciPy's products);
on two threads the V-cycle levels of at least ``CYCLE_MIN_NNZ`` entries and the
products with the Jacobian run in the Numba kernels (ℓ1 hybrid Gauss–Seidel).

Prints per thread count: wall and CPU time of a solve, GMRES iterations, wall time
per iteration, the best-of ratio 1 thread / 2 threads, the solutions' difference,
peak memory and the 1-minute load average before and after (on a shared machine the
second core may be busy: read the load).

``--fused-ab`` times instead, on the same hierarchies, each thread count with the
forward sweeps' residuals fused into the sweeps (``_krylov.FUSED_RESIDUAL``, on the
exactly symmetric levels) and in a second pass, alternating, and prints the ratios
(two-pass / fused), with the time of :func:`~microbat.cell.resolved._krylov.
_prepare_cycle` per block (first on a hierarchy, then on its kept pattern).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


class _Captured(Exception):
    pass


def capture(n: int, c_rate: float, solve: int) -> dict:
    """The ``solve``-th Newton system of the n³ charge (scaled Jacobian and more)."""
    from bench_charge import electrode

    from microbat.cell.resolved import simulate_charge
    from microbat.cell.resolved._krylov import BlockAMGSolver

    orig = BlockAMGSolver._solve
    count = {"k": 0}
    got: dict = {}

    def spy(self, Js, b, rs, cs, rtol, J):
        count["k"] += 1
        if count["k"] == solve:
            got.update(
                Js=Js.tocsr().copy(), b=b.copy(), rs=rs.copy(), cs=cs.copy(), rtol=rtol,
                J=None if J is None else J.tocsr().copy(), nE=self.nE, nS=self.nS, nA=self.nA,
            )  # fmt: skip
            raise _Captured
        return orig(self, Js, b, rs, cs, rtol, J)

    BlockAMGSolver._solve = spy  # type: ignore[method-assign]
    try:
        simulate_charge(electrode(n), "chen2020", c_rate=c_rate, electrode="negative")
    except _Captured:
        pass
    finally:
        BlockAMGSolver._solve = orig  # type: ignore[method-assign]
    if not got:
        raise SystemExit(f"the run ended before its solve {solve}")
    return got


def _save(path: Path, s: dict) -> None:
    arrays = {k: v for k, v in s.items() if isinstance(v, np.ndarray)}
    for name in ("Js", "J"):
        M = s[name]
        if M is not None:
            arrays[f"{name}_data"], arrays[f"{name}_indices"] = M.data, M.indices
            arrays[f"{name}_indptr"] = M.indptr
    meta = np.array([s["rtol"], s["nE"], s["nS"], s["nA"]], np.float64)
    np.savez(path, meta=meta, **arrays)


def _load(path: Path) -> dict:
    import scipy.sparse as sp

    z = np.load(path)
    rtol, nE, nS, nA = z["meta"]
    n = z["b"].size
    s = {"b": z["b"], "rs": z["rs"], "cs": z["cs"], "rtol": float(rtol)}
    s.update(nE=int(nE), nS=int(nS), nA=int(nA))
    for name in ("Js", "J"):
        if f"{name}_data" in z:
            s[name] = sp.csr_matrix(
                (z[f"{name}_data"], z[f"{name}_indices"], z[f"{name}_indptr"]), shape=(n, n)
            )
        else:
            s[name] = None
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--c-rate", type=float, default=3.0)
    ap.add_argument("--solve", type=int, default=60, help="which linear solve of the run")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cache", type=Path, default=None, help="npz file of the captured system")
    ap.add_argument("--fused-ab", action="store_true", help="fused vs two-pass residuals")
    a = ap.parse_args()

    from microbat.cell.resolved import _krylov as kry
    from microbat.core.threads import set_threads

    t0 = time.perf_counter()
    if a.cache is not None and a.cache.exists():
        s = _load(a.cache)
        how = f"loaded from {a.cache}"
    else:
        s = capture(a.n, a.c_rate, a.solve)
        if a.cache is not None:
            _save(a.cache, s)
        how = f"captured in {time.perf_counter() - t0:.1f} s"
    n = s["b"].size
    print(
        f"{a.n}^3 {a.c_rate:g}C charge, solve {a.solve}: {n} unknowns "
        f"(nE {s['nE']}, nS {s['nS']}, nA {s['nA']}), Jacobian nnz {s['Js'].nnz}, "
        f"rtol {s['rtol']:.1e}; {how}"
    )
    set_threads(2)
    kry._kernels().warm()
    solver = kry.BlockAMGSolver(s["nE"], s["nS"], s["nA"])
    t0 = time.perf_counter()
    solver.solve(s["Js"], s["b"], s["rs"], s["cs"], rtol=s["rtol"], J=s["J"])
    print(
        f"AMG setup + first solve {time.perf_counter() - t0:.2f} s; levels "
        + ", ".join(
            "/".join(f"{op.A.nnz}{'*' if op.parallel else ''}" for op in ml._mb_ops)
            for ml in solver._ml
        )
        + f" (nnz per level of E, P, C; * threaded, CYCLE_MIN_NNZ = {kry.CYCLE_MIN_NNZ})"
    )
    if a.fused_ab:
        prepare_times(kry, solver)
        if hasattr(kry, "FUSED_RESIDUAL"):
            print(
                "exactly symmetric levels: "
                + ", ".join("/".join("s" if op.symmetric else "-" for op in ml._mb_ops)
                            for ml in solver._ml)
            )  # fmt: skip
            fused_ab(kry, set_threads, solver, s, a.repeat)
        else:
            print("this tree has no FUSED_RESIDUAL switch: two-pass residuals only")
        return
    rows: dict[int, list[tuple[float, float, int]]] = {1: [], 2: []}
    sols: dict[int, np.ndarray] = {}
    load0 = os.getloadavg()[0]
    for _ in range(a.repeat):
        for nt in (1, 2):
            set_threads(nt)
            w0, c0 = time.perf_counter(), time.process_time()
            y = solver.solve(s["Js"], s["b"], s["rs"], s["cs"], rtol=s["rtol"], J=s["J"])
            rows[nt].append(
                (time.perf_counter() - w0, time.process_time() - c0, solver.stats.last_iterations)
            )
            sols[nt] = y
    load1 = os.getloadavg()[0]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    best = {nt: _report(f"{nt} thread{'s' if nt > 1 else ' '}", rr) for nt, rr in rows.items()}
    diff = np.linalg.norm(sols[2] - sols[1]) / np.linalg.norm(sols[1])
    print(
        f"ratio per iteration (1 thread / 2 threads): {best[1] / best[2]:.2f}; iterations "
        f"{rows[2][0][2]} vs {rows[1][0][2]}; solutions differ by {diff:.1e} (rtol "
        f"{s['rtol']:.0e}); peak {peak:.0f} MB; load {load0:.2f} -> {load1:.2f}"
    )


def _report(label: str, rr: list) -> float:
    """Print the repeats of one variant (wall, CPU, GMRES iterations); its best s/iteration."""
    w = min(r[0] for r in rr)
    its = rr[0][2]
    print(
        f"{label}: solve wall "
        + " ".join(f"{r[0]:.3f}" for r in rr)
        + " s, cpu "
        + " ".join(f"{r[1]:.3f}" for r in rr)
        + f" s, GMRES iterations {its}, best wall per iteration {1e3 * w / its:.1f} ms"
    )
    return w / its


def prepare_times(kry, solver) -> None:
    """Time ``_prepare_cycle`` per block: first on a hierarchy, then again."""
    for name, ml in zip("EPC", solver._ml, strict=True):
        for lv in ml.levels:  # the first prepare of a hierarchy finds the patterns
            lv.__dict__.pop("_mb_T", None)
        ts = []
        for _ in range(2):
            t0 = time.perf_counter()
            kry._prepare_cycle(ml, np.float32)
            ts.append(time.perf_counter() - t0)
        print(f"_prepare_cycle {name}: {1e3 * ts[0]:.1f} ms, again {1e3 * ts[1]:.1f} ms")


def fused_ab(kry, set_threads, solver, s: dict, repeat: int) -> None:
    """Time the solve with fused and with two-pass residuals, 1 and 2 threads."""
    rows: dict[tuple[int, bool], list[tuple[float, float, int]]] = {}
    sols = {}
    load0 = os.getloadavg()[0]
    for _ in range(repeat):
        for nt in (1, 2):
            set_threads(nt)
            for fused in (False, True):
                kry.FUSED_RESIDUAL = fused
                w0, c0 = time.perf_counter(), time.process_time()
                y = solver.solve(s["Js"], s["b"], s["rs"], s["cs"], rtol=s["rtol"], J=s["J"])
                rows.setdefault((nt, fused), []).append(
                    (time.perf_counter() - w0, time.process_time() - c0,
                     solver.stats.last_iterations)
                )  # fmt: skip
                sols[(nt, fused)] = y
    kry.FUSED_RESIDUAL = True
    load1 = os.getloadavg()[0]
    best = {
        (nt, fused): _report(
            f"{nt} thread{'s' if nt > 1 else ' '} {'fused   ' if fused else 'two-pass'}", rr
        )
        for (nt, fused), rr in rows.items()
    }
    for nt in (1, 2):
        d = np.linalg.norm(sols[(nt, True)] - sols[(nt, False)]) / np.linalg.norm(sols[(nt, False)])
        print(
            f"{nt} thread{'s' if nt > 1 else ''}: two-pass / fused per iteration "
            f"{best[(nt, False)] / best[(nt, True)]:.3f}; solutions differ by {d:.1e}"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"peak {peak:.0f} MB; load {load0:.2f} -> {load1:.2f}")


if __name__ == "__main__":
    main()
