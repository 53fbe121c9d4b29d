"""Time per frequency and peak memory of the resolved EIS model on synthetic electrodes.

Usage::

    python benchmarks/bench_eis.py                 # 32³ and 64³
    python benchmarks/bench_eis.py --with-100      # adds 100³ (~1.1e6 unknowns)
    python benchmarks/bench_eis.py 24 --solver direct --n-freq 8
    python benchmarks/bench_eis.py --check 24      # iterative vs direct Z on 24³
    python benchmarks/bench_eis.py --composite 32  # single-ion (solid electrolyte) model

``--composite n``: a synthetic composite cathode (active, solid electrolyte,
carbon-binder, voids; the geometry of ``bench_resolved_ssb.py``) through the
single-ion model, against the same voxels with the solid electrolyte read as a
liquid-filled pore (the liquid model: no other code resolves the impedance of a
composite cathode); prints both, their ratio and the load average.

Each size runs in a fresh process (so peak RSS is that size's). Prints unknowns,
assembly time, seconds per frequency, the projected 50-frequency spectrum and its
ratio to the issue's bar (100³ in under 300 s on 2 cores), GMRES iterations and the
peak resident memory. Default band: 100 kHz .. 10 mHz, ``--n-freq`` log-spaced points
(50 = the bar's spectrum). Timings on a shared machine are noisy: note ``uptime``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
from bench_resolved_ssb import composite as _composite  # the same 32³ composite

BAR_S = 300.0


def run_one(
    n: int, solver: str, n_freq: int, workers: int | None, composite: str | None = None
) -> dict:
    from microbat.cell.eis.resolved import ResolvedModel
    from microbat.synth import electrode

    if composite is None:
        ms = electrode((n, n, n), voxel_size=0.5e-6, mean_radius=2e-6, seed=1)
    else:
        ms = _composite(n, liquid=composite == "liquid")
    t = time.perf_counter()
    m = ResolvedModel(ms)
    ta = time.perf_counter() - t
    f = np.logspace(5, -2, n_freq)
    _z, info = m.impedance(f, solver=solver, workers=workers)
    per = info["time_per_frequency_s"]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    return {
        "n": n,
        "unknowns": m.n_unknowns,
        "assembly_s": ta,
        "solver": info["solver"],
        "s_per_frequency": per,
        "spectrum_50_s": 50 * per + ta,
        "iterations": info["iterations"],
        "max_residual": info["max_residual"],
        "peak_rss_GiB": rss,
        "peak_rss_worker_GiB": kids,
    }


def check(n: int) -> None:
    from microbat.cell.eis.resolved import ResolvedModel
    from microbat.synth import electrode

    ms = electrode((n, n, n), voxel_size=0.5e-6, mean_radius=2e-6, seed=1)
    m = ResolvedModel(ms)
    f = np.logspace(5, -2, 15)
    zd, _ = m.impedance(f, solver="direct")
    zi, info = m.impedance(f, solver="iterative", workers=1)
    err = np.abs(zi - zd) / np.abs(zd)
    print(
        f"{n}^3 ({m.n_unknowns} unknowns): iterative vs direct max |dZ|/|Z| = {err.max():.1e} "
        f"(median {np.median(err):.1e}); iterations {info['iterations']}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("sizes", nargs="*", type=int)
    ap.add_argument("--with-100", action="store_true", help="add 100³")
    ap.add_argument("--solver", default="auto")
    ap.add_argument("--n-freq", type=int, default=8)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--check", type=int, default=None, help="iterative vs direct at this size")
    ap.add_argument("--composite", type=int, default=None, help="composite cathode of n³")
    ap.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--kind", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one is not None:
        print(json.dumps(run_one(a.one, a.solver, a.n_freq, a.workers, a.kind)))
        return
    if a.composite is not None:
        print(f"uptime: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1, 5 min load)")
        res = {}
        for kind in ("solid", "liquid"):
            cmd = [sys.executable, __file__, "--one", str(a.composite), "--kind", kind]
            cmd += ["--solver", a.solver, "--n-freq", str(a.n_freq)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            r = res[kind] = json.loads(out.strip().splitlines()[-1])
            print(
                f"{a.composite}^3 composite, {kind} model: {r['unknowns']} unknowns, assembly "
                f"{r['assembly_s']:.2f} s, {r['solver']}: {r['s_per_frequency']:.3f} s/frequency, "
                f"iterations {min(r['iterations'])}-{max(r['iterations'])}, peak RSS "
                f"{r['peak_rss_GiB']:.2f} GiB",
                flush=True,
            )
        ratio = res["solid"]["s_per_frequency"] / res["liquid"]["s_per_frequency"]
        print(f"ratio solid/liquid (s per frequency): {ratio:.2f}")
        print(f"uptime: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1, 5 min load)")
        return
    if a.check is not None:
        check(a.check)
        return
    sizes = a.sizes or ([32, 64, 100] if a.with_100 else [32, 64])
    print(f"uptime: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1, 5 min load)")
    for n in sizes:
        cmd = [sys.executable, __file__, "--one", str(n), "--solver", a.solver]
        cmd += ["--n-freq", str(a.n_freq)]
        if a.workers:
            cmd += ["--workers", str(a.workers)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(
            f"{n}^3: {r['unknowns']} unknowns, assembly {r['assembly_s']:.1f} s, {r['solver']}: "
            f"{r['s_per_frequency']:.2f} s/frequency, 50 frequencies ~{r['spectrum_50_s']:.0f} s "
            f"({r['spectrum_50_s'] / BAR_S:.2f} of the 300 s bar), iterations "
            f"{min(r['iterations'])}-{max(r['iterations'])}, max residual "
            f"{r['max_residual']:.1e}, peak RSS {r['peak_rss_GiB']:.2f} GiB "
            f"(workers {r['peak_rss_worker_GiB']:.2f} GiB)",
            flush=True,
        )


if __name__ == "__main__":
    main()
