"""Benchmark: resolved 1C discharge of a composite cathode with a solid electrolyte.

Run ``python benchmarks/bench_resolved_ssb.py [--n 48] [--c-rate 1]``. A synthetic
composite cathode (``microbat.synth.composite_cathode``: active and solid-electrolyte
particles, carbon-binder, voids; 0.5 µm voxels, seed 11) of n³ voxels is discharged
to the end of discharge against lithium metal; the reference is the same geometry
with the solid electrolyte relabelled as a liquid-filled pore (the resolved liquid
model, the nearest thing to a peer: no other code resolves a composite cathode).
Each case runs in a fresh process so its peak RSS is its own. Prints wall time,
steps, Newton iterations, unknowns, peak memory, the ratio and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time


def composite(n: int, liquid: bool):
    from microbat import Microstructure
    from microbat.synth import composite_cathode

    ms = composite_cathode(
        (n, n, n), voxel_size=0.5e-6, active_fraction=0.5, electrolyte_fraction=0.38,
        binder_fraction=0.03, active_radius=2.0e-6, electrolyte_radius=0.8e-6, seed=11,
    )  # fmt: skip
    if not liquid:
        return ms
    # the same voxels, the solid electrolyte read as a pore filled with liquid and the
    # voids as inert solid (labels: void=0, cbd=1, active=2, se=3)
    return Microstructure(
        ms.labels, voxel_size=ms.voxel_size, phases="inert=0,cbd=1,active=2,pore=3",
        allow_empty_phases=True,
    )  # fmt: skip


def one(n: int, c_rate: float, liquid: bool) -> dict:
    from microbat.cell.resolved import simulate_discharge

    ms = composite(n, liquid)
    t0 = time.perf_counter()
    res = simulate_discharge(ms, c_rate=c_rate, snapshot_times=[])
    wall = time.perf_counter() - t0
    return {
        "case": "liquid" if liquid else "solid_electrolyte",
        "n": n,
        "unknowns": res.grid["unknowns"],
        "wall_s": wall,
        "steps": res.steps,
        "newton": res.newton_iterations,
        "capacity_Ah": res.capacity_Ah,
        "theoretical_Ah": res.theoretical_capacity_Ah,
        "status": res.status,
        "max_conservation_error": res.max_conservation_error,
        "peak_rss_MiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--c-rate", type=float, default=1.0)
    ap.add_argument("--one", choices=["solid", "liquid"], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one(a.n, a.c_rate, a.one == "liquid")))
        return
    rows = []
    for case in ("solid", "liquid"):
        cmd = [sys.executable, __file__, "--n", str(a.n), "--c-rate", str(a.c_rate)]
        out = subprocess.run([*cmd, "--one", case], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(
            f"{r['case']:>17}: {r['n']}^3, {r['unknowns']} unknowns, {r['wall_s']:.1f} s, "
            f"{r['steps']} steps, {r['newton']} Newton, capacity "
            f"{r['capacity_Ah'] / r['theoretical_Ah']:.3f} of theoretical, conservation "
            f"{r['max_conservation_error']:.1e}, peak {r['peak_rss_MiB']:.0f} MiB"
            f"\n{'':>19}{r['status']}"
        )
    print(f"ratio solid/liquid wall time: {rows[0]['wall_s'] / rows[1]['wall_s']:.2f}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
