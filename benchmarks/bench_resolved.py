"""Benchmark of the resolved half-cell discharge: time and peak memory vs voxel count.

Run ``python benchmarks/bench_resolved.py [--sizes 16,24,32] [--c-rate 1]``. Each
size is a fresh process (so peak RSS belongs to one run): a synthetic NMC electrode
(``microbat.synth`` phantom of spheres and carbon-binder, 0.5 µm voxels) discharged
at the given C-rate to the end of discharge. Prints wall time, the share spent in
assembly and in linear solves, steps, Newton iterations, peak memory, and the ratio
to the issue's speed bars (64³ in 90 s, 100³ in 600 s at 1C on 2 cores).

Timings on a shared machine are noisy; the numbers in docs/validation/resolved.md
say on what load they were taken.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

BARS = {64: 90.0, 100: 600.0}


def electrode(n: int):
    """A cube of n³ voxels: a random packing of active spheres, CBD coating, pore."""
    import numpy as np
    from scipy import ndimage

    from microbat import Microstructure

    rng = np.random.default_rng(7)
    lab = np.zeros((n, n, n), np.uint8)
    zz, yy, xx = np.ogrid[:n, :n, :n]
    r = max(2.0, n / 6.0)
    target = 0.55 * n**3
    while np.count_nonzero(lab == 2) < target:
        c = rng.uniform(0, n, 3)
        lab[((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2) <= r * r] = 2
    shell = ndimage.binary_dilation(lab == 2) & (lab == 0)
    lab[shell & (rng.random(lab.shape) < 0.3)] = 1
    return Microstructure(lab, voxel_size=0.5e-6, phases="pore=0,cbd=1,active=2")


def one(n: int, c_rate: float, max_steps: int, solver: str = "auto") -> dict:
    from microbat.cell.resolved import ResolvedOptions, simulate_discharge

    ms = electrode(n)
    t0 = time.perf_counter()
    res = simulate_discharge(
        ms, c_rate=c_rate, options=ResolvedOptions(max_steps=max_steps, linear_solver=solver)
    )
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {
        "n": n,
        "voxels": n**3,
        "unknowns": res.grid["unknowns"],
        "wall_s": wall,
        "assembly_s": res.timing["assembly_s"],
        "solve_s": res.timing["solve_s"],
        "amg_setup_s": res.timing.get("amg_setup_s", 0.0),
        "steps": res.steps,
        "newton": res.newton_iterations,
        "gmres": res.timing.get("gmres_iterations", 0),
        "sim_time_s": float(res.time_s[-1]),
        "peak_MB": peak,
        "capacity_fraction": res.capacity_Ah / res.theoretical_capacity_Ah,
        "complete": res.complete,
        "status": res.status,
        "max_conservation_error": res.max_conservation_error,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="16,24,32")
    ap.add_argument("--c-rate", type=float, default=1.0)
    ap.add_argument("--max-steps", type=int, default=5000)
    ap.add_argument("--solver", default="auto", help="auto, amg, pardiso or direct")
    ap.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one is not None:
        print(json.dumps(one(a.one, a.c_rate, a.max_steps, a.solver)))
        return
    rows = []
    for n in (int(s) for s in a.sizes.split(",")):
        cmd = [sys.executable, __file__, "--one", str(n), "--c-rate", str(a.c_rate)]
        cmd += ["--max-steps", str(a.max_steps), "--solver", a.solver]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        share_a = r["assembly_s"] / r["wall_s"]
        share_s = r["solve_s"] / r["wall_s"]
        bar = BARS.get(n)
        ratio = f"{r['wall_s'] / bar:.2f}x bar" if bar else "-"
        print(
            f"{n:>4}^3 {r['unknowns']:>9} unknowns  {r['wall_s']:8.1f} s  "
            f"assembly {100 * share_a:4.1f}%  solves {100 * share_s:4.1f}% "
            f"(AMG setup {100 * r.get('amg_setup_s', 0.0) / r['wall_s']:4.1f}%)  "
            f"steps {r['steps']:>4}  Newton {r['newton']:>5}  GMRES {r['gmres']:>6}  "
            f"peak {r['peak_MB']:7.0f} MB  "
            f"Q/Qth {r['capacity_fraction']:.3f}  cons {r['max_conservation_error']:.1e}  "
            f"{ratio}  {'' if r['complete'] else 'PARTIAL: '}{r['status'][:60]}",
            flush=True,
        )


if __name__ == "__main__":
    main()
