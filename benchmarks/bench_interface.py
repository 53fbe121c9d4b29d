"""Time of the lithium-interface current distribution on a 50 x 200 x 200 slab.

Usage::

    python benchmarks/bench_interface.py [--size 200] [--depth 50] [--threads 2]

A seeded electrolyte slab (0.25 µm voxels, 50 voxels thick, 200 x 200 in-plane)
whose lithium interface keeps 80 % contact (voids of 2 µm) is solved by
:func:`microbat.ssb.interface_current` with Butler–Volmer kinetics at 5 A/m²
(0.5 mA/cm²): the applied-current solve (bordered Newton on the FV core) and,
separately, the whole call including the critical-current search, and the
linear-kinetics call (one solve). The issue's
target is under 30 s for the distribution on 200² x 50 on 2 cores. The peer is one
plain conduction solve of the same slab by :func:`microbat.fv.solve` (multigrid),
timed in the same run: the ratio says how many solves' worth the kinetics cost.
The load average is printed; timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--depth", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import numba
    import numpy as np

    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    from microbat.fv import Dirichlet, build_system, solve
    from microbat.ssb.interface import contact_loss_slab, interface_current

    shape = (args.depth, args.size, args.size)
    ms = contact_loss_slab(shape, voxel_size=0.25e-6, contact_fraction=0.8, seed=0)
    small = contact_loss_slab((10, 24, 24), voxel_size=0.25e-6, contact_fraction=0.8, seed=0)
    interface_current(small)  # compile the kernels
    t = time.perf_counter()
    dist = interface_current(ms, kinetics="butler-volmer", critical=False)
    t_dist = time.perf_counter() - t
    t = time.perf_counter()
    r = interface_current(ms, kinetics="butler-volmer")
    total = time.perf_counter() - t
    t = time.perf_counter()
    interface_current(ms, kinetics="linear")
    linear = time.perf_counter() - t
    coef = np.where(ms.labels == 1, 0.05, 0.0)
    t = time.perf_counter()
    system = build_system(
        coef, ms.voxel_size, dirichlet=[Dirichlet(0, 0, 1.0), Dirichlet(0, -1, 0.0)]
    )
    solve(system, rtol=1e-9)
    peer = time.perf_counter() - t
    load = os.getloadavg()
    print(f"slab {shape}, {args.threads} threads, load average {load[0]:.2f} {load[1]:.2f}")
    print(
        f"focusing max {r.focusing_factor_max:.3f} (uniform {r.focusing_factor_uniform:.3f}), "
        f"critical current {r.critical_current_A_per_m2:.3g} A/m^2, constriction "
        f"{r.constriction_resistance_ohm_m2:.3g} Ohm m^2, Newton steps {r.iterations}"
    )
    print(
        f"Butler-Volmer current distribution ({dist.iterations} Newton steps): {t_dist:.2f} s "
        "(target < 30 s)"
    )
    print(f"the same with the critical-current search: {total:.2f} s")
    print(f"linear kinetics (one solve): {linear:.2f} s")
    print(f"peer: one FV conduction solve of the slab: {peer:.2f} s; ratio {t_dist / peer:.1f}")


if __name__ == "__main__":
    main()
