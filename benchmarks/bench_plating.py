"""Plating maps: the cost of the monitor on a resolved charge, and the DFN beside it.

Run::

    python benchmarks/bench_plating.py                 # 32³ graphite electrode, 3C
    python benchmarks/bench_plating.py --size 64       # the issue's speed target
    python benchmarks/bench_plating.py --size 48 --c-rate 6

A seeded synthetic electrode (``microbat.synth.electrode``: 0.5 µm voxels, 55 %
active, 10 % carbon-binder, 3 µm mean radius) is taken as the graphite negative
electrode of Chen2020 and charged at constant current from the set's discharged
state to its 4.2 V-equivalent end (``simulate_charge``). After a warm-up charge of a
12³ crop (Numba compilation, solver imports), ``--repeat`` pairs of runs alternate
in one process:

* bare (no ``on_fields`` hook);
* with :class:`~microbat.degradation.plating.PlatingMonitor` and labelled particles
  (everything ``microbat plating`` computes per step: the model builds the image
  fields for the hook, the monitor reduces them).

Printed: wall time of every run, the fastest monitored run against the fastest bare
run (the least disturbed by other jobs on a shared machine; the issue's goal: plating
maps add under 10 %), the monitor's own time (its ``seconds``: the part that is
ours, free of the machine's noise), the plating result
(onset, min η_pl, heterogeneity index), the same charge in PyBaMM's DFN
(:func:`~microbat.degradation.plating.dfn_plating`, the peer: the homogenised
electrode) with its time and the ratio, the peak resident memory and the load
average before and after.
"""

from __future__ import annotations

import argparse
import os
import time


def _peak_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=32, help="edge of the cubic image (voxels)")
    ap.add_argument("--c-rate", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=2, help="bare/monitored pairs")
    args = ap.parse_args()

    from microbat.cell.resolved import simulate_charge
    from microbat.degradation.heterogeneity import aging_heterogeneity
    from microbat.degradation.particles import label_particles
    from microbat.degradation.plating import PlatingMonitor, dfn_plating
    from microbat.synth import electrode

    load0 = os.getloadavg()
    n = args.size
    ms = electrode(
        (n, n, n), voxel_size=0.5e-6, mean_radius=3e-6, active_fraction=0.55,
        cbd_fraction=0.10, seed=args.seed,
    )  # fmt: skip
    print(f"image {n}³ of 0.5 µm, phases {ms.phases.to_spec()}, {args.c_rate:g}C charge")

    simulate_charge(ms.crop((0, 12), (0, 12), (0, 12)), "chen2020", c_rate=args.c_rate)
    parts = label_particles(ms)
    bare_s, mon_s = [], []
    for _ in range(max(1, args.repeat)):
        t = time.perf_counter()
        run = simulate_charge(ms, "chen2020", c_rate=args.c_rate)
        bare_s.append(time.perf_counter() - t)
        mon = PlatingMonitor(ms, store_times=[0.5 * 3600 / args.c_rate], particles=parts)
        t = time.perf_counter()
        run_m = simulate_charge(ms, "chen2020", c_rate=args.c_rate, on_fields=mon)
        mon_s.append(time.perf_counter() - t)
    mon.end_at(float(run_m.time_s[-1]))  # the charge's end, inside its last step
    res = mon.result()
    het = aging_heterogeneity(mon, c_max=33133.0)
    tb, tm = min(bare_s), min(mon_s)
    print(
        "bare charge:      "
        + ", ".join(f"{v:.2f}" for v in bare_s)
        + f" s ({run.steps} steps, {run.status})"
    )
    print(
        "with the monitor: "
        + ", ".join(f"{v:.2f}" for v in mon_s)
        + f" s ({run_m.steps} steps): fastest {100 * (tm / tb - 1):+.1f} % against the "
        f"fastest bare run; the monitor itself {mon.seconds:.3f} s per run "
        f"({100 * mon.seconds / tb:.2f} %, {mon.calls} calls, {res.faces} faces, "
        f"{parts.n} particles)"
    )
    print(
        f"plating: onset {res.onset_time_s:.4g} s (SOC {res.onset_soc:.3f}), min eta_pl "
        f"{1e3 * res.min_plating_overpotential_V:.1f} mV, area at risk at the end "
        f"{100 * res.area_fraction_at_risk[-1]:.1f} %, {len(res.hotspots)} hotspots; "
        f"heterogeneity index {het.index[-1]:.4g}"
    )
    t = time.perf_counter()
    d = dfn_plating(
        ms, "chen2020", current_A=abs(run.current_A),
        initial_stoichiometry=run.initial_stoichiometry, end_time_s=float(res.time_s[-1]),
        cutoff_V=-1.0,
    )  # fmt: skip
    t_d = time.perf_counter() - t
    print(
        f"PyBaMM DFN (homogenised, incl. the tortuosity and conduction solves): {t_d:.2f} s "
        f"({d.solve_time_s:.2f} s inside dfn_plating); onset {d.onset_time_s:.4g} s, min "
        f"eta_pl {1e3 * d.min_overpotential_V.min():.1f} mV; resolved/DFN time "
        f"{tb / t_d:.1f}x"
    )
    print(f"peak resident memory {_peak_mb():.0f} MB")
    print(f"load average before {load0[0]:.2f}, after {os.getloadavg()[0]:.2f} (2 cores)")


if __name__ == "__main__":
    main()
