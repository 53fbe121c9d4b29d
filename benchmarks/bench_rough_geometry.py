"""Resolved discharge on CT-like 24³ crops at 10 µm voxels (issue 16, item 4).

A real CT crop of the same size as a synthetic one was reported never to finish in
``microbat simulate`` at 1C. No real scan is at hand, so this builds stand-ins: a
Gaussian-smoothed white-noise field thresholded at a porosity (two phases, the solid
taken as the active material as in a segmentation without carbon-binder). A short
correlation length (``--sigma 0.8``) gives many tiny disconnected solid clusters and
one-voxel necks; ``--sigma 3`` is a smooth field of the same size and porosity. Each
case runs :func:`microbat.cell.resolved.simulate_discharge` (chen2020 positive,
1C) in a fresh process with a time limit, once with the set's solid conductivity and
once with it multiplied by ``--sigma-factor``, and prints the cluster statistics,
the solid's σ_eff/σ along the thickness, the estimated solid ohmic drop
``i L / (2 σ_s σ_eff/σ)``, the outcome, the steps, the wall time and the load average.
Results: ``docs/validation/resolved.md`` section 7.

Run: ``python benchmarks/bench_rough_geometry.py [--sigma 0.8 3] [--timeout 600]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
import warnings

import numpy as np
from _timing import load_average
from scipy import ndimage


def rough_field(n: int, sigma: float, porosity: float, seed: int) -> np.ndarray:
    """Labels (0 = pore, 1 = active) of a thresholded smoothed random field."""
    rng = np.random.default_rng(seed)
    f = ndimage.gaussian_filter(rng.standard_normal((n, n, n)), sigma, mode="wrap")
    return (f > np.quantile(f, porosity)).astype(np.uint8)


def cluster_stats(labels: np.ndarray) -> dict[str, float]:
    """Clusters of each phase (6-connected solid, 26-connected pore) and one-voxel necks."""
    out: dict[str, float] = {}
    for name, mask, conn in (("solid", labels == 1, 1), ("pore", labels == 0, 3)):
        lab, k = ndimage.label(mask, ndimage.generate_binary_structure(3, conn))
        sizes = np.bincount(lab.ravel())[1:]
        out[f"{name}_clusters"] = int(k)
        out[f"{name}_clusters_le_8_voxels"] = int(np.sum(sizes <= 8))
        ends = np.union1d(np.unique(lab[0]), np.unique(lab[-1]))  # touching z = 0 or n - 1
        out[f"{name}_cut_off_fraction"] = float(np.isin(lab, ends, invert=True)[mask].mean())
    solid = labels == 1
    nb = [np.roll(solid, s, a) for a in range(3) for s in (1, -1)]
    count = sum(x.astype(int) for x in nb)
    straight = (nb[0] & nb[1]) | (nb[2] & nb[3]) | (nb[4] & nb[5])
    out["solid_neck_voxels"] = int(np.sum(solid & (count == 2) & straight))
    return out


def _microstructure(args: argparse.Namespace, sigma: float):
    from microbat import Microstructure

    labels = rough_field(args.n, sigma, args.porosity, args.seed)
    return Microstructure(labels, args.voxel_size, "pore=0,active=1")


def worker(args: argparse.Namespace, sigma: float, factor: float) -> dict:
    """One discharge (in this process); what stopped it."""
    from microbat.cell.parameters import load_parameters
    from microbat.cell.resolved import ResolvedParameters, simulate_discharge

    ms = _microstructure(args, sigma)
    base = ResolvedParameters.from_cell_parameters(load_parameters("chen2020"), "positive")
    par = dataclasses.replace(base, solid_conductivity=base.solid_conductivity * factor)
    t0 = time.perf_counter()
    try:
        r = simulate_discharge(ms, par, c_rate=args.c_rate)
        out = {"status": r.status, "complete": r.complete, "steps": r.steps}
        out["current_A"] = r.current_A
    except Exception as exc:  # the outcome is what is measured
        out = {"status": f"{type(exc).__name__}: {exc}"[:300]}
    out["wall_s"] = time.perf_counter() - t0
    out["solid_conductivity_S_per_m"] = par.solid_conductivity
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--sigma", type=float, nargs="+", default=[0.8, 3.0])
    ap.add_argument("--porosity", type=float, default=0.65)
    ap.add_argument("--voxel-size", type=float, default=10e-6)
    ap.add_argument("--c-rate", type=float, default=1.0)
    ap.add_argument("--sigma-factor", type=float, default=100.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--worker", type=float, nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args, *args.worker), default=str))
        return
    from microbat.transport import conductivity

    for sigma in args.sigma:
        ms = _microstructure(args, sigma)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ratio = conductivity(ms, axis=0).sigma_eff[0]
        row: dict[str, object] = {"sigma_voxels": sigma, **cluster_stats(ms.labels)}
        row["solid_sigma_eff_ratio"] = ratio
        for factor in (1.0, args.sigma_factor):
            cmd = [sys.executable, __file__, "--worker", str(sigma), str(factor)]
            cmd += [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()
                    if k in ("n", "porosity", "voxel_size", "c_rate", "seed")]  # fmt: skip
            load0 = load_average()
            try:
                run = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
                res = json.loads(run.stdout) if run.returncode == 0 else {"stderr": run.stderr}
            except subprocess.TimeoutExpired:
                res = {"status": f"not finished after {args.timeout:g} s"}
            res["load"] = f"{load0} -> {load_average()}"
            if "current_A" in res:  # i L / (2 sigma_s sigma_eff/sigma)
                area = (args.n * args.voxel_size) ** 2
                thick = args.n * args.voxel_size
                sig = float(res["solid_conductivity_S_per_m"]) * ratio
                res["est_solid_ohmic_drop_V"] = float(res["current_A"]) / area * thick / (2 * sig)
            print(json.dumps({**row, "sigma_factor": factor, **res}, default=str), flush=True)
    print(f"pid {os.getpid()} done; load average {load_average()}")


if __name__ == "__main__":
    main()
