"""Contention benchmark: three workloads alone, beside two busy processes, and on one thread.

Usage::

    python benchmarks/bench_contention.py                       # the full table
    python benchmarks/bench_contention.py --quick               # small sizes, for a smoke run
    python benchmarks/bench_contention.py --workloads tortuosity --repeat 3
    python benchmarks/bench_contention.py --src /path/to/other/src   # another checkout

Workloads (each run in a fresh process; imports and a small warm-up that loads the
Numba cache are not timed):

``resolved``
    The 48³ resolved half-cell discharge at 1C to the end of discharge
    (``benchmarks/bench_resolved.py``'s electrode, 0.5 µm voxels).
``tortuosity``
    The one-axis tortuosity factor of a 200³ volume of overlapping spheres
    (porosity 0.41, ``benchmarks/bench_tortuosity.py``'s generator).
``eis``
    A 32³ resolved impedance spectrum (``microbat.synth.electrode``, 20 frequencies,
    100 kHz to 10 mHz).

Conditions, measured back to back for each workload and repetition:

``alone``
    Default threads (the microbat policy: the cores available to the process).
``load``
    The same, beside two busy background processes (pure-Python loops) spawned by
    this script on the same cores and ended, by their PIDs, when the run ends (each
    also stops by itself after ``--busy-limit`` seconds).
``1 thread``
    ``MICROBAT_THREADS=1`` (and ``NUMBA_NUM_THREADS``, ``OMP_NUM_THREADS``,
    ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS`` = 1, so that a checkout without the
    thread policy runs on one thread too), alone.
``load, 1 thread`` (with ``--load-one-thread``)
    One thread beside the two busy processes: whether threads help or hurt under load.

Where the busy processes run matters on Linux with ``sched_autogroup`` (one CPU
group per session, shared fairly between sessions first): ``--busy-session same``
(default) keeps them in this session, like two jobs started from the same shell, so
a one-thread workload gets a third of the session's share and a two-thread one half
of it; ``--busy-session own`` starts them in a session of their own, like another
user's jobs.

Prints, per workload: the times, ``load / alone`` (goal ≤ 2: two busy processes on
two cores leave a fair share of about half the machine), ``alone / 1 thread`` (goal ≤
1: threads never make an idle run slower) and ``load / 1 thread``, with the 1-minute
load average just before each run. On a machine shared with other people "alone" is
not idle: read the load averages. ``--json`` writes every run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ONE_THREAD = {
    "MICROBAT_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
SIZES = {"resolved": 48, "tortuosity": 200, "eis": 32}
QUICK = {"resolved": 16, "tortuosity": 96, "eis": 16}

_BUSY = """
import sys, time
end = time.monotonic() + float(sys.argv[1])
x = 0
while time.monotonic() < end:
    for i in range(100_000):
        x += i * i
"""


# ----------------------------------------------------------------- workloads
def _resolved(n: int, warm: bool) -> dict:
    sys.path.insert(0, str(HERE))
    from bench_resolved import electrode

    from microbat.cell.resolved import ResolvedOptions, simulate_discharge

    if warm:
        simulate_discharge(electrode(8), c_rate=1.0, options=ResolvedOptions(max_steps=3))
    ms = electrode(n)
    t0 = time.perf_counter()
    c0 = time.process_time()
    res = simulate_discharge(ms, c_rate=1.0)
    return {
        "wall_s": time.perf_counter() - t0,
        "cpu_s": time.process_time() - c0,
        "assembly_s": res.timing["assembly_s"],
        "steps": res.steps,
        "newton": res.newton_iterations,
        "capacity_Ah": res.capacity_Ah,
    }


def _tortuosity(n: int, warm: bool) -> dict:
    import numpy as np

    sys.path.insert(0, str(HERE))
    from bench_tortuosity import overlapping_spheres

    from microbat import Microstructure
    from microbat.transport import tortuosity

    def ms_of(m: int) -> Microstructure:
        pore = overlapping_spheres(m, 0.41, m / 20, 1)
        return Microstructure(pore.astype(np.uint8), 1e-6, phases="pore=1,active=0")

    if warm:  # the kernels of both precisions (200³ runs in single precision)
        tortuosity(ms_of(40), axis=0, solver="mg", precision="single")
        tortuosity(ms_of(40), axis=0, solver="mg", precision="double")
    ms = ms_of(n)
    t0 = time.perf_counter()
    c0 = time.process_time()
    r = tortuosity(ms, axis=0, keep_field=False)
    return {
        "wall_s": time.perf_counter() - t0,
        "cpu_s": time.process_time() - c0,
        "tau": r.tau[0],
        "iterations": r.iterations[0],
    }


def _eis(n: int, warm: bool) -> dict:
    import numpy as np

    from microbat.cell.eis.resolved import ResolvedModel
    from microbat.synth import electrode

    f = np.logspace(5, -2, 20)
    if warm:
        small = electrode((12, 12, 12), voxel_size=0.5e-6, mean_radius=2e-6, seed=1)
        ResolvedModel(small).impedance(f[:2])
    ms = electrode((n, n, n), voxel_size=0.5e-6, mean_radius=2e-6, seed=1)
    t0 = time.perf_counter()
    c0 = time.process_time()
    m = ResolvedModel(ms)
    z, info = m.impedance(f)
    return {
        "wall_s": time.perf_counter() - t0,
        "cpu_s": time.process_time() - c0,
        "solver": info["solver"],
        "unknowns": m.n_unknowns,
        "z_1Hz_ohm": abs(complex(z[int(np.argmin(np.abs(np.log(f))))])),
    }


WORKLOADS = {"resolved": _resolved, "tortuosity": _tortuosity, "eis": _eis}


# ------------------------------------------------------------------- driver
def _run(
    name: str,
    n: int,
    env: dict[str, str],
    src: str | None,
    busy: int,
    limit: float,
    own_session: bool = False,
) -> dict:
    """One timed run in a fresh process, optionally beside ``busy`` busy processes."""
    full = {**os.environ, **env}
    if src:
        full["PYTHONPATH"] = src + os.pathsep + full.get("PYTHONPATH", "")
    procs = [
        subprocess.Popen([sys.executable, "-c", _BUSY, str(limit)], start_new_session=own_session)
        for _ in range(busy)
    ]
    try:
        if procs:
            time.sleep(1.0)  # let the scheduler see them
        load = os.getloadavg()[0]
        out = subprocess.run(
            [sys.executable, __file__, "--one", name, "--size", str(n)],
            env=full, capture_output=True, text=True, check=True,
        )  # fmt: skip
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row["load1"] = load
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workloads", default="resolved,tortuosity,eis")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    ap.add_argument("--src", default=None, help="put this src folder first on PYTHONPATH")
    ap.add_argument("--busy-limit", type=float, default=900.0)
    ap.add_argument("--busy-session", choices=("same", "own"), default="same")
    ap.add_argument("--load-one-thread", action="store_true", help="also one thread under load")
    ap.add_argument("--json", default=None, help="write every run to this file")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one is not None:
        print(json.dumps(WORKLOADS[a.one](a.size, True)))
        return
    sizes = QUICK if a.quick else SIZES
    names = [w.strip() for w in a.workloads.split(",") if w.strip()]
    print(
        f"cores available: {len(os.sched_getaffinity(0))}; load average at start: "
        + " ".join(f"{v:.2f}" for v in os.getloadavg())
        + f"; busy processes in {'their own' if a.busy_session == 'own' else 'this'} session",
        flush=True,
    )
    runs: list[dict] = []
    table = []
    for name in names:
        n = sizes[name]
        conds = [("alone", {}, 0), ("load", {}, 2), ("1 thread", ONE_THREAD, 0)]
        if a.load_one_thread:
            conds.append(("load, 1 thread", ONE_THREAD, 2))
        times: dict[str, list[float]] = {c[0]: [] for c in conds}
        loads: dict[str, list[float]] = {k: [] for k in times}
        for rep in range(a.repeat):
            for cond, env, busy in conds:
                r = _run(name, n, env, a.src, busy, a.busy_limit, a.busy_session == "own")
                r.update(workload=name, size=n, condition=cond, repeat=rep)
                runs.append(r)
                times[cond].append(r["wall_s"])
                loads[cond].append(r["load1"])
                print(
                    f"  {name} {n}^3 {cond:<14} {r['wall_s']:8.2f} s wall, "
                    f"{r['cpu_s']:8.2f} s CPU, load {r['load1']:.2f}",
                    flush=True,
                )
        med = {k: statistics.median(v) for k, v in times.items()}
        table.append((name, n, med, {k: max(v) for k, v in loads.items()}))
    print()
    print(
        f"{'workload':<12}{'alone':>9}{'load':>9}{'1 thread':>10}"
        f"{'load/alone':>12}{'alone/1t':>10}{'load/1t':>9}   load avg (alone, load, 1t)"
    )
    for name, n, med, ld in table:
        print(
            f"{name + f' {n}^3':<12}{med['alone']:>8.1f}s{med['load']:>8.1f}s"
            f"{med['1 thread']:>9.1f}s{med['load'] / med['alone']:>12.2f}"
            f"{med['alone'] / med['1 thread']:>10.2f}{med['load'] / med['1 thread']:>9.2f}"
            f"   {ld['alone']:.1f}, {ld['load']:.1f}, {ld['1 thread']:.1f}"
        )
        if "load, 1 thread" in med:
            print(
                f"{'':<12}load, 1 thread {med['load, 1 thread']:.1f}s "
                f"(load avg {ld['load, 1 thread']:.1f}): 2 threads under load "
                f"{med['load'] / med['load, 1 thread']:.2f}x its time"
            )
    if a.json:
        Path(a.json).write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
