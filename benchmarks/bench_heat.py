"""Joule heating: time and memory of the heat map of a synthetic electrode.

Run::

    python benchmarks/bench_heat.py                        # 200³, both modes
    python benchmarks/bench_heat.py --size 100 --modes solid
    python benchmarks/bench_heat.py --precision double

:func:`microbat.degradation.joule_heating` on a seeded synthetic NMC electrode
(``microbat.synth.electrode``, 0.4 µm voxels, 55 % active, 10 % carbon-binder) at
30 A/m²: the potential solve, the heat of every voxel, the necks, the depth profile
and the steady temperature rise — everything the heat map needs. ``--through
solid`` (``--modes solid``) solves one electronic system; the operating mode
(``electrode``) the coupled solid/electrolyte system with charge transfer. Each
mode runs in a fresh interpreter (``--worker``) that generates the electrode,
warms the kernels up on a 48³ crop in the same precision, then times one call.

Printed per mode: wall and CPU time (user + system, all threads), the increase of
the peak resident set over the call, the ``tracemalloc`` peak, the iterations, the
energy balance ``|Q − I ΔV| / (I ΔV)``, the Numba thread count and the load
average before and after (the machine may be shared: the CPU time is the steadier
number). There is no peer: no open tool computes per-voxel Joule heat of an
electrode image; the goal is a 200³ heat map in under 15 s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _timing import cpu_s, peak_bytes, reset_peak


def worker(mode: str, n: int, precision: str, seed: int) -> dict:
    import tracemalloc
    import warnings

    import numba
    import numpy as np

    from microbat import synth
    from microbat.degradation.heating import joule_heating

    warnings.simplefilter("ignore")
    ms = synth.electrode((n, n, n), voxel_size=4e-7, seed=seed)
    prec = precision if precision != "auto" else ("single" if ms.n_voxels > 2**21 else "double")
    warm = ms.crop((0, 48), (0, 48), (0, 48))
    joule_heating(warm, through=mode, precision=prec, method="mg")
    base, cpu0 = reset_peak(), cpu_s()
    tracemalloc.start()
    t0 = time.perf_counter()
    r = joule_heating(ms, through=mode, precision=precision)
    wall = time.perf_counter() - t0
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {
        "wall_s": wall,
        "cpu_s": cpu_s() - cpu0,
        "mem_mb": (peak_bytes() - base) / 1e6,
        "traced_mb": traced / 1e6,
        "iterations": r.iterations,
        "energy_balance_error": r.energy_balance_error,
        "precision": r.provenance.parameters["precision"],
        "heat_per_area_W_per_m2": r.heat_per_area_W_per_m2,
        "max_delta_T_K": r.max_delta_T_K,
        "top1": r.heat_top1pct_fraction,
        "finite_voxels": int(np.isfinite(r.heat_W_per_m3).sum()),
        "threads": numba.get_num_threads(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--modes", default="solid,electrode")
    ap.add_argument("--precision", default="auto", help="auto, single or double")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--worker", nargs=1, metavar="MODE")
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.size, args.precision, args.seed)))
        return
    n = args.size
    print(f"synthetic electrode {n}³ ({n**3 / 1e6:.1f} M voxels), 30 A/m², seed {args.seed}")
    for mode in args.modes.split(","):
        load0 = os.getloadavg()
        res = subprocess.run(
            [sys.executable, __file__, "--worker", mode, "--size", str(n), "--precision",
             args.precision, "--seed", str(args.seed)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if res.returncode != 0:
            raise SystemExit(f"{mode} worker failed:\n{res.stderr[-3000:]}")
        r = json.loads(res.stdout.strip().splitlines()[-1])
        load1 = os.getloadavg()
        label = "through solid" if mode == "solid" else "operating (electrode)"
        print(
            f"{label:>22}: wall {r['wall_s']:.2f} s, CPU {r['cpu_s']:.2f} s, peak "
            f"+{r['mem_mb']:.0f} MB (traced {r['traced_mb']:.0f} MB), {r['iterations']} "
            f"iterations, {r['precision']} precision, {r['threads']} threads, energy "
            f"balance {r['energy_balance_error']:.1e}; heat {r['heat_per_area_W_per_m2']:.3g} "
            f"W/m², top 1 % {100 * r['top1']:.1f} %, max ΔT {r['max_delta_T_K']:.2g} K; "
            f"load {load0[0]:.2f} -> {load1[0]:.2f}"
        )


if __name__ == "__main__":
    main()
