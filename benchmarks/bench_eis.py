"""Time per frequency of the resolved EIS model on synthetic electrodes.

Usage: python benchmarks/bench_eis.py [32 64 100] [--solver auto|direct|iterative]
Prints unknowns, assembly time, seconds per frequency and the projected time of a
50-frequency spectrum (the issue's bar: 100³ in under 5 minutes on 2 cores).
Timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from microbat.cell.eis.resolved import ResolvedModel
from microbat.synth import electrode


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("sizes", nargs="*", type=int, default=[32, 64])
    ap.add_argument("--solver", default="auto")
    ap.add_argument("--n-freq", type=int, default=4)
    a = ap.parse_args()
    f = np.logspace(5, -2, a.n_freq)
    for n in a.sizes:
        ms = electrode((n, n, n), voxel_size=0.5e-6, mean_radius=2e-6, seed=1)
        t = time.perf_counter()
        m = ResolvedModel(ms)
        ta = time.perf_counter() - t
        _z, info = m.impedance(f, solver=a.solver)
        per = info["time_per_frequency_s"]
        print(
            f"{n}^3: {m.n_unknowns} unknowns, assembly {ta:.2f} s, {info['solver']}: "
            f"{per:.2f} s/frequency, 50 frequencies ~{50 * per + ta:.0f} s, "
            f"max residual {info['max_residual']:.1e}, iterations {info['iterations']}"
        )


if __name__ == "__main__":
    main()
