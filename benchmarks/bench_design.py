"""Design study throughput: trials per minute at the default fidelity, 1 vs 2 workers.

Run::

    python benchmarks/bench_design.py                    # 64³, 20 trials, 1 and 2 workers
    python benchmarks/bench_design.py --trials 200 --workers 2
    python benchmarks/bench_design.py --size 48 --fidelity bruggeman
    python benchmarks/bench_design.py --size 48 --workers 1 --mode rebuild,inputs

The example design space of ``microbat design --example`` (an NMC811 cathode:
porosity, carbon-binder, radius, thickness, calendering, carbon-binder placement;
energy density and power retention; NSGA-II) at ``--size``³ voxels of 0.5 µm, the
``micro`` fidelity (packing + calendering + carbon-binder, the pore and solid
tortuosity solves, surface area and radius, PyBaMM DFN at 0.1C and 2C with the
measured properties). Each worker count runs in a fresh interpreter
(``--worker``), in memory (no SQLite), from the same seed; the time includes the
start of the Dask LocalCluster and the imports of its workers.

Printed per worker count: wall time, trials per minute, the extrapolated time of
200 trials, feasible trials, the mean trial time inside the workers, peak resident
memory (this process, and the sum over the workers' processes) and the load
average before and after. The ratio of the 1-worker to the 2-worker wall time is
the speed-up. There is no peer: the issue's goal is 200 trials of the default
fidelity on 64³ structures in under 15 minutes on 2 cores.

``--mode`` picks how the trials' DFN is built: ``inputs`` (default: one model, the
geometry as PyBaMM inputs on the symbolic mesh) or ``rebuild`` (a model per design,
as before); ``--mode rebuild,inputs`` runs both back to back from the same seed and
prints the ratio of their wall times and whether the objectives agree. The switch
reaches the in-process study only: compare with ``--workers 1``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time


def _worker(args: argparse.Namespace) -> None:
    import microbat.design.evaluate as evaluate
    from microbat.design.space import example_space, load_space
    from microbat.design.study import run_study

    evaluate._GEOMETRY_INPUTS = args.mode == "inputs"

    text = example_space().replace(
        "shape = [48, 48, 48]", f"shape = [{args.size}, {args.size}, {args.size}]"
    )
    space = load_space(text)
    space = space.with_changes(
        evaluation={**space.evaluation.model_dump(), "fidelity": args.fidelity}
    )
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    res = run_study(space, n_trials=args.trials, workers=args.workers, importances=False)
    wall = time.perf_counter() - t0
    load1 = os.getloadavg()
    times = [r["wall_time_s"] for r in res.trial_table if r.get("wall_time_s") is not None]
    objectives = [
        [v for _, v in sorted((r.get("objectives") or {}).items())] for r in res.trial_table
    ]
    self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    print(
        json.dumps(
            {
                "workers": res.workers,
                "trials": res.trials,
                "feasible": res.feasible,
                "failed": res.failed,
                "wall_s": wall,
                "trials_per_min": 60.0 * res.trials / wall,
                "extrapolated_200_s": 200.0 * wall / res.trials,
                "mean_trial_s": sum(times) / max(len(times), 1),
                "peak_self_bytes": self_peak,
                "peak_child_bytes": child_peak,
                "load_before": load0,
                "load_after": load1,
                "objectives": objectives,
            },
            default=str,
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--workers", type=str, default="1,2", help="worker counts, e.g. 1,2")
    ap.add_argument("--fidelity", default="micro", choices=("bruggeman", "micro", "resolved"))
    ap.add_argument(
        "--mode", default="inputs", help="DFN per trial: inputs, rebuild, or both (rebuild,inputs)"
    )
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        args.workers = int(args.workers)
        _worker(args)
        return
    print(
        f"design study, {args.size}³ voxels, fidelity {args.fidelity}, {args.trials} trials; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    walls = {}
    runs = [(m, int(w)) for m in args.mode.split(",") for w in args.workers.split(",")]
    for m, w in runs:
        cmd = [
            sys.executable,
            __file__,
            "--worker",
            "--size",
            str(args.size),
            "--trials",
            str(args.trials),
            "--workers",
            str(w),
            "--fidelity",
            args.fidelity,
            "--mode",
            m,
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        d = json.loads(out.stdout.strip().splitlines()[-1])
        walls[m, w] = d
        print(
            f"{m}, workers {d['workers']}: {d['trials']} trials ({d['feasible']} feasible, "
            f"{d['failed']} failed) in {d['wall_s']:.1f} s = {d['trials_per_min']:.1f} "
            f"trials/min -> 200 trials in {d['extrapolated_200_s'] / 60:.1f} min; "
            f"mean trial {d['mean_trial_s']:.2f} s; "
            f"peak RSS {d['peak_self_bytes'] / 2**30:.2f} GB (self), "
            f"{d['peak_child_bytes'] / 2**30:.2f} GB (largest child); "
            f"load {d['load_before'][0]:.2f} -> {d['load_after'][0]:.2f}"
        )
    for m in args.mode.split(","):
        one = walls.get((m, 1))
        for (m2, w), d in walls.items():
            if one is not None and m2 == m and w != 1:
                print(f"{m}: speed-up 1 -> {w} workers: {one['wall_s'] / d['wall_s']:.2f}x")
    if ("rebuild", 1) in walls and ("inputs", 1) in walls:
        a, b = walls["rebuild", 1], walls["inputs", 1]
        print(
            f"rebuild -> inputs (1 worker): wall {a['wall_s']:.1f} -> {b['wall_s']:.1f} s "
            f"({a['wall_s'] / b['wall_s']:.2f}x), mean trial {a['mean_trial_s']:.2f} -> "
            f"{b['mean_trial_s']:.2f} s; same objectives: {_same(a['objectives'], b['objectives'])}"
        )


def _same(a: list, b: list) -> str:
    """Largest relative difference of the objectives of two studies, trial by trial."""
    worst = 0.0
    for ra, rb in zip(a, b, strict=False):
        for x, y in zip(ra, rb, strict=False):
            try:
                x, y = float(x), float(y)
            except (TypeError, ValueError):
                continue
            if x == x and y == y and x != y:
                worst = max(worst, abs(x - y) / max(abs(x), abs(y)))
    return f"max relative difference {worst:.1e} over {min(len(a), len(b))} trials"


if __name__ == "__main__":
    main()
