"""Speed of the random walk and the work it needs to reach the plateau.

Usage::

    python benchmarks/bench_randomwalk.py [--size 100] [--walkers 20000]
        [--max-steps 64000] [--peer-python /path/to/venv/bin/python]

1. Throughput in walker-steps per second per core (CPU time of the process during
   the kernel, all threads added up; compilation excluded) in free space and in a
   seeded random structure of ``size³`` voxels (Gaussian-filtered noise, porosity
   0.5, features of ~8 voxels), with 1 thread and with all threads (wall-clock
   speed-up printed too). Target: 5e7 per core.
2. Work to the plateau on the random structure: walks of doubling length with a
   fixed number of walkers; per length the tortuosity per axis, the half-width of
   its 95 % interval, the drift of D(t) across the fit window, the plateau flag
   and, for contrast, the tortuosity read from a fit through the origin (MSD/2t at
   the end of the walk), which short walks get badly wrong.
3. Peer (optional): pytrax (lattice random walk, NumPy-vectorised; Tranter et al.
   2019) on the same volume, run with ``--peer-python`` (a Python that has pytrax,
   installed in its own environment: ``pip install pytrax pyevtk``); prints the
   ratio of walker-steps per second per core. PuMA's random walk is not on PyPI
   (the PyPI name ``pumapy`` is another package), so it is not measured.

Timings on a shared machine are noisy (other jobs take cores and caches): CPU time
is used rather than wall time, and the best of ``--repeat`` runs is kept.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np


def random_structure(n: int, seed: int = 1) -> np.ndarray:
    """Labels (0 pore, 1 solid) of a periodic Gaussian-filtered noise, porosity 0.5."""
    from scipy import ndimage

    g = ndimage.gaussian_filter(np.random.default_rng(seed).random((n, n, n)), 3, mode="wrap")
    return np.where(g < np.quantile(g, 0.5), 0, 1).astype(np.uint8)


def throughput(ms, walkers: int, steps: int, repeat: int) -> tuple[float, float]:
    """Best walker-steps/s per core and per wall second."""
    from microbat.transport import random_walk

    best_core = best_wall = 0.0
    for i in range(repeat):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            r = random_walk(ms, n_walkers=walkers, n_steps=steps, n_records=20, seed=i)
        best_core = max(best_core, r.walker_steps_per_s_per_core)
        best_wall = max(best_wall, r.walker_steps_per_s)
    return best_core, best_wall


def peer_pytrax(python: str, labels: np.ndarray, walkers: int, steps: int) -> float | None:
    """Walker-steps per CPU second of pytrax on the same pore space (or None)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pore.npy"
        np.save(path, (labels == 0).astype(np.int64))
        code = textwrap.dedent(
            f"""
            import json, time, numpy as np, pytrax
            im = np.load({str(path)!r})
            rw = pytrax.RandomWalk(im)
            c = time.process_time()
            rw.run(nt={steps}, nw={walkers}, same_start=False, stride=20, num_proc=1)
            print(json.dumps({walkers * steps} / (time.process_time() - c)))
            """
        )
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        print(f"pytrax failed: {out.stderr.strip().splitlines()[-1:]}")
        return None
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--walkers", type=int, default=20_000)
    ap.add_argument("--max-steps", type=int, default=64_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--peer-python", default=None)
    args = ap.parse_args()

    import numba

    from microbat import Microstructure
    from microbat.transport import random_walk

    n = args.size
    free = Microstructure(np.zeros((n, n, n), np.uint8), 1e-6, phases="pore=0")
    labels = random_structure(n)
    ms = Microstructure(labels, 1e-6, phases="pore=0,active=1")
    random_walk(free, n_walkers=16, n_steps=64, n_records=8, seed=0)  # compile / load cache

    print(f"# random walk, {n}^3, step 0.5 voxel, machine threads {numba.config.NUMBA_NUM_THREADS}")
    print("\n## throughput (walker-steps/s per core; CPU time, best of repeats)")
    n_all = numba.config.NUMBA_NUM_THREADS
    for name, m in (("free space", free), ("random, porosity 0.5", ms)):
        rows = []
        for th in sorted({1, n_all}):
            numba.set_num_threads(th)
            core, wall = throughput(m, args.walkers, 2000, args.repeat)
            rows.append((th, core, wall))
        numba.set_num_threads(n_all)
        for th, core, wall in rows:
            print(
                f"{name:<22} threads {th:>2}: {core:9.3g} /s/core  {wall:9.3g} /s wall  "
                f"(target 5e7/core: {'met' if core >= 5e7 else 'NOT met'})"
            )
        if len(rows) > 1:
            print(f"{'':<22} parallel speed-up (wall): {rows[-1][2] / rows[0][2]:.2f}x")

    print(f"\n## work to the plateau ({args.walkers} walkers, random structure)")
    print(
        f"{'steps':>7} {'walker-steps':>13} {'tau (axis 0, 1, 2)':>26} {'ci95 %':>16} "
        f"{'drift %':>18} {'plateau':>8} {'tau thru origin':>22} {'s':>6}"
    )
    steps = 1000
    results = []
    while steps <= args.max_steps:
        t = time.perf_counter()
        r = random_walk(ms, n_walkers=args.walkers, n_steps=steps, seed=7)
        dt = time.perf_counter() - t
        origin = 1.0 / r.d_over_d0_t[-1]
        ci = [100 * (hi - lo) / 2 / tau for (lo, hi), tau in zip(r.ci95, r.tau, strict=True)]
        print(
            f"{steps:>7} {r.n_walkers * steps:>13.3g} "
            f"{' '.join(f'{x:8.3f}' for x in r.tau):>26} "
            f"{' '.join(f'{x:5.1f}' for x in ci):>16} "
            f"{' '.join(f'{100 * x:+5.1f}' for x in r.plateau_drift):>18} "
            f"{'yes' if r.plateau_reached else 'no':>8} "
            f"{' '.join(f'{x:7.3f}' for x in origin):>22} {dt:6.1f}"
        )
        results.append((steps, r))
        steps *= 2
    final = results[-1][1]
    for steps, r in results:
        inside = all(lo <= t <= hi for (lo, hi), t in zip(final.ci95, r.tau, strict=True)) and all(
            lo <= t <= hi for (lo, hi), t in zip(r.ci95, final.tau, strict=True)
        )
        if r.plateau_reached and inside:
            print(
                f"plateau (flag set and tau within the longest walk's interval, and back) from "
                f"{steps} steps: {args.walkers * steps:.3g} walker-steps, "
                f"{args.walkers * steps / final.walker_steps_per_s_per_core:.1f} core-seconds"
            )
            break
    else:
        print("plateau not reached within --max-steps")
    short = results[0][1]
    bias = [1 - (1 / d) / t for d, t in zip(short.d_over_d0_t[-1], final.tau, strict=True)]
    print(
        f"fit through the origin at {results[0][0]} steps reads tau low by "
        f"{', '.join(f'{100 * b:.0f} %' for b in bias)}"
    )

    if args.peer_python:
        print("\n## peer: pytrax (lattice walk) on the same pore space, 1 process")
        numba.set_num_threads(1)
        ours, _ = throughput(ms, 10_000, 2000, args.repeat)
        numba.set_num_threads(n_all)
        theirs = peer_pytrax(args.peer_python, labels, 10_000, 2000)
        if theirs:
            print(
                f"microbat {ours:.3g} /s/core, pytrax {theirs:.3g} /s/core: "
                f"ratio {ours / theirs:.1f}x"
            )


if __name__ == "__main__":
    sys.exit(main())
