"""Per-call cost of the resolved model's per-step operators: kept patterns vs SciPy.

Run ``python benchmarks/bench_kept_patterns.py [--n 64] [--steps 3]``. The first
steps of a 3C charge of :func:`bench_charge.electrode` (n³) run twice in one
process: with the kept-pattern constructions of the Schur complement
(``BlockAMGSolver._blocks``, :class:`microbat.cell.resolved._krylov._Schur`) and of
the electrolyte Laplacians (``HalfCell.linear_blocks``,
:class:`microbat.cell.resolved._model._KeptLaplacian`), and with the SciPy / FV-core
constructions they replace patched back in. Prints the time per call of both
methods in the run (the first call, which builds the kept patterns, separately)
and on the last call's input repeated ten times (median), the ratios,
whether the two runs' voltages are identical, peak memory and the load average.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import _timing
import numpy as np


def run(n: int, steps: int, kept: bool, repeat: int = 10) -> dict:
    from bench_charge import electrode

    from microbat.cell.resolved import ResolvedOptions, simulate_charge
    from microbat.cell.resolved._krylov import BlockAMGSolver, _Schur, schur_reference
    from microbat.cell.resolved._model import HalfCell

    times: dict[str, list[float]] = {"_blocks": [], "linear_blocks": []}
    orig_blocks, orig_lin = BlockAMGSolver._blocks, HalfCell.linear_blocks
    orig_call, orig_lap = _Schur.__call__, HalfCell._laplacian
    current: list[Any] = []

    last: dict[str, tuple] = {}

    def blocks(self, Js, rs, cs, J=None):
        current[:] = [self]
        last["_blocks"] = (self, Js, rs, cs, J)
        t0 = time.perf_counter()
        out = orig_blocks(self, Js, rs, cs, J)
        times["_blocks"].append(time.perf_counter() - t0)
        return out

    def lin(self, state, dt):
        cached = self._lin_state is state and self._lin_dt == dt
        last["linear_blocks"] = (self, state, dt)
        t0 = time.perf_counter()
        out = orig_lin(self, state, dt)
        if not cached:
            times["linear_blocks"].append(time.perf_counter() - t0)
        return out

    BlockAMGSolver._blocks, HalfCell.linear_blocks = blocks, lin
    if not kept:
        _Schur.__call__ = lambda self, J, nt: schur_reference(current[0], J)
        HalfCell._laplacian = HalfCell._fv_laplacian
    try:
        ms = electrode(n)
        _timing.reset_peak()
        t0 = time.perf_counter()
        res = simulate_charge(ms, "chen2020", c_rate=3.0, options=ResolvedOptions(max_steps=steps))
        wall = time.perf_counter() - t0
        # the last call's input again, `repeat` times (steadier than the few in-run calls)
        again = {}
        for name, f in (("_blocks", orig_blocks), ("linear_blocks", orig_lin)):
            ts = []
            for _ in range(repeat):
                if name == "linear_blocks":
                    last[name][0]._lin_state = None
                t1 = time.perf_counter()
                f(*last[name])
                ts.append(time.perf_counter() - t1)
            again[name] = float(np.median(ts))
    finally:
        BlockAMGSolver._blocks, HalfCell.linear_blocks = orig_blocks, orig_lin
        _Schur.__call__, HalfCell._laplacian = orig_call, orig_lap
    return {
        "times": times,
        "again": again,
        "wall": wall,
        "peak_MB": _timing.peak_bytes() / 2**20,
        "V": np.asarray(res.voltage_V),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--steps", type=int, default=3)
    a = ap.parse_args()
    run(12, 1, True)  # compile (or load) the Numba kernels outside the timed runs
    rows = {}
    for kept in (False, True):
        load = os.getloadavg()[0]
        rows[kept] = run(a.n, a.steps, kept)
        rows[kept]["load"] = (load, os.getloadavg()[0])
    for name in ("_blocks", "linear_blocks"):
        t_old, t_new = (np.asarray(rows[k]["times"][name]) for k in (False, True))
        later_old, later_new = t_old[1:].mean() * 1e3, t_new[1:].mean() * 1e3
        print(
            f"{a.n}^3 {name:14s} calls {t_new.size:3d}  SciPy {later_old:8.1f} ms/call  "
            f"kept {later_new:8.1f} ms/call  ratio {later_old / later_new:5.2f}x  "
            f"(first call {t_old[0] * 1e3:.0f} -> {t_new[0] * 1e3:.0f} ms)"
        )
        a_old, a_new = (rows[k]["again"][name] * 1e3 for k in (False, True))
        print(
            f"    last input x10, median: SciPy {a_old:8.1f} ms  kept {a_new:8.1f} ms  "
            f"ratio {a_old / a_new:5.2f}x"
        )
    same = np.array_equal(rows[False]["V"], rows[True]["V"])
    for k, label in ((False, "SciPy"), (True, "kept")):
        r = rows[k]
        print(
            f"    {label:5s} run wall {r['wall']:6.1f} s  peak {r['peak_MB']:6.0f} MB  "
            f"load {r['load'][0]:.2f}->{r['load'][1]:.2f}"
        )
    print(f"    voltages identical: {same}")


if __name__ == "__main__":
    main()
