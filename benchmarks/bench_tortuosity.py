"""Tortuosity: microbat against TauFactor and PoreSpy on identical volumes.

Run::

    python benchmarks/bench_tortuosity.py                 # 200³, all peers
    python benchmarks/bench_tortuosity.py --size 100 --peers taufactor
    python benchmarks/bench_tortuosity.py --scaling 100,200,300 --peers none

Every measurement runs in a fresh interpreter (``--worker``) that loads the volume
from a ``.npy`` file, imports its library and warms it up on a small volume (24³;
48³ in the precision of the timed call for microbat, whose Numba kernels load from
the JIT cache on first use), so that imports and cache loading are not timed, then
times one call. Memory is the
increase of the peak resident set size over the resident size just before the
call (the peak is reset just before the call through ``/proc/self/clear_refs``, so
imports and warm-up do not count; ``VmHWM`` after it), comparable across NumPy,
PyTorch and SciPy; for microbat the ``tracemalloc`` peak (NumPy allocations) is printed too.
CPU time (user + system of the process, all threads) is printed with the wall
time: the machine may be shared, and the ratio of CPU times is the steadier one.

Convergence settings, all "flux spread 0.1 %":

* microbat: ``tol=1e-3``, the spread of the flux over every plane between the held
  sides (τ itself converges to ~1e-4);
* TauFactor (``Solver(..., device="cpu").solve(conv_crit=1e-3)``): the spread of
  the layer fluxes over their maximum, plus its own τ-change check;
* PoreSpy (``tortuosity_fd(ftol=1e-3)``): the inlet/outlet flux mismatch.

Conventions: TauFactor holds the faces (``boundary="face"``) and divides by the
whole porosity; PoreSpy holds the first/last layers (``boundary="layer"``) and
divides by the porosity left after trimming non-percolating pores
(``porosity_definition="percolating"``). Each peer is compared with microbat run in
its own convention.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _timing import cpu_s, peak_bytes, reset_peak


# ------------------------------------------------------------------ volumes
def overlapping_spheres(n: int, porosity: float, radius: float, seed: int, stretch=(1, 1, 1)):
    """Pore mask of a Boolean model of (optionally stretched) solid spheres."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    vol_sphere = 4 / 3 * np.pi * radius**3 * float(np.prod(stretch))
    lam = -np.log(porosity) / vol_sphere
    k = rng.poisson(lam * n**3)
    seeds = np.zeros((n, n, n), bool)
    seeds[tuple(rng.integers(0, n, k) for _ in range(3))] = True
    sampling = [1.0 / s for s in stretch]
    return ndimage.distance_transform_edt(~seeds, sampling=sampling) > radius


def make_volume(kind: str, n: int, seed: int = 1) -> np.ndarray:
    """A pore mask (True = pore) of the named kind."""
    if kind == "spheres":
        return overlapping_spheres(n, 0.4, max(2.0, n / 30), seed)
    if kind == "aniso":  # solid ellipsoids 3x longer along axis 2
        return overlapping_spheres(n, 0.4, max(2.0, n / 40), seed, stretch=(1, 1, 3))
    if kind == "blobs":
        import porespy

        return np.asarray(
            porespy.generators.blobs(shape=[n, n, n], porosity=0.4, blobiness=1.5, seed=seed)
        )
    raise SystemExit(f"unknown volume kind {kind!r}")


# ------------------------------------------------------------------ workers
def worker(name: str, path: str, axis: str, opts: dict) -> dict:
    pore = np.load(path)
    small = pore[:24, :24, :24].copy()
    if name.startswith("microbat"):
        import tracemalloc

        from microbat import Microstructure
        from microbat.transport.diffusion import tortuosity

        def ms_of(p):
            return Microstructure((~p).astype(np.uint8), voxel_size=1e-6, phases="pore=0,active=1")

        kw = dict(
            phase="pore",
            boundary=opts.get("boundary", "face"),
            porosity_definition=opts.get("porosity", "total"),
            tol=opts.get("tol", 1e-3),
            solver=opts.get("solver", "auto"),
            precision=opts.get("precision", "auto"),
            keep_field=False,
        )
        ax = "all" if axis == "all" else int(axis)
        import warnings

        warnings.simplefilter("ignore")
        ms = ms_of(pore)
        # load every kernel the timed call uses from the JIT cache (same precision, a
        # volume deep enough for several multigrid levels)
        warm = np.ascontiguousarray(pore[:48, :48, :48])
        prec = "single" if ms.n_voxels > 2**21 else "double"
        tortuosity(ms_of(warm), axis=0, **{**kw, "solver": "mg", "precision": prec})
        base, cpu0 = reset_peak(), cpu_s()
        tracemalloc.start()
        t0 = time.perf_counter()
        r = tortuosity(ms, axis=ax, **kw)
        wall = time.perf_counter() - t0
        traced = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        axes = r.axes
        return {
            "tau": [r.tau[a] for a in axes],
            "wall_s": wall,
            "cpu_s": cpu_s() - cpu0,
            "mem_mb": (peak_bytes() - base) / 1e6,
            "traced_mb": traced / 1e6,
            "iterations": [r.iterations[a] for a in axes],
            "flux_spread": [r.flux_spread[a] for a in axes],
            "epsilon": [r.epsilon[a] for a in axes],
            "precision": r.precision,
            "solver": r.solver,
        }
    if name == "taufactor":
        import contextlib
        import io

        import taufactor

        with contextlib.redirect_stdout(io.StringIO()):
            taufactor.Solver(small.astype(np.uint8), device="cpu").solve(verbose=False)
        img = np.moveaxis(pore, int(axis), 0).astype(np.uint8)  # TauFactor solves along axis 0
        base, cpu0 = reset_peak(), cpu_s()
        t0 = time.perf_counter()
        s = taufactor.Solver(img, device="cpu")
        with contextlib.redirect_stdout(io.StringIO()):
            tau = s.solve(verbose=False, conv_crit=opts.get("tol", 1e-3), iter_limit=100000)
        wall = time.perf_counter() - t0
        return {
            "tau": [float(np.ravel(tau)[0])],
            "wall_s": wall,
            "cpu_s": cpu_s() - cpu0,
            "mem_mb": (peak_bytes() - base) / 1e6,
            "iterations": [int(s.iter)],
            "converged": bool(s.converged),
        }
    if name == "porespy":
        import logging
        import warnings

        warnings.simplefilter("ignore")
        import porespy

        logging.getLogger("porespy").setLevel(logging.ERROR)
        porespy.simulations.tortuosity_fd(small, axis=0)
        base, cpu0 = reset_peak(), cpu_s()
        t0 = time.perf_counter()
        r = porespy.simulations.tortuosity_fd(pore, axis=int(axis), ftol=opts.get("tol", 1e-3))
        wall = time.perf_counter() - t0
        return {
            "tau": [float(r.tortuosity)],
            "wall_s": wall,
            "cpu_s": cpu_s() - cpu0,
            "mem_mb": (peak_bytes() - base) / 1e6,
            "epsilon": [float(r.effective_porosity)],
            "converged": bool(getattr(r, "converged", True)),
        }
    raise SystemExit(f"unknown worker {name!r}")


def run(name: str, path: Path, axis: str = "0", timeout: float = 3600, **opts) -> dict | None:
    """Run one worker in a fresh interpreter; None when it fails or is missing."""
    cmd = [sys.executable, __file__, "--worker", name, "--volume", str(path), "--axis", axis,
           "--opts", json.dumps(opts)]  # fmt: skip
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"  {name}: timed out after {timeout:.0f} s", flush=True)
        return None
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["?"])[-1]
        print(f"  {name}: failed ({last})", flush=True)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ report
def _fmt(r: dict | None) -> str:
    if r is None:
        return "      -"
    taus = ", ".join(f"{t:.5f}" for t in r["tau"])
    return (
        f"tau [{taus}]  wall {r['wall_s']:7.2f} s  cpu {r['cpu_s']:7.2f} s  "
        f"mem {r['mem_mb']:7.0f} MB"
        + (f" (traced {r['traced_mb']:.0f} MB)" if "traced_mb" in r else "")
    )


def compare(kind: str, n: int, peers: list[str], tmp: Path, results: dict) -> None:
    pore = make_volume(kind, n)
    path = tmp / f"{kind}_{n}.npy"
    np.save(path, pore)
    print(f"\n== {kind} {n}^3, porosity {pore.mean():.4f} ==", flush=True)
    res: dict[str, dict | None] = {}
    res["microbat_face"] = run("microbat_face", path, boundary="face")
    print(f"  microbat face       {_fmt(res['microbat_face'])}", flush=True)
    if "taufactor" in peers:
        res["taufactor"] = run("taufactor", path)
        print(f"  TauFactor           {_fmt(res['taufactor'])}", flush=True)
    res["microbat_layer"] = run("microbat_layer", path, boundary="layer", porosity="percolating")
    print(f"  microbat layer/perc {_fmt(res['microbat_layer'])}", flush=True)
    if "porespy" in peers:
        res["porespy"] = run("porespy", path)
        print(f"  PoreSpy             {_fmt(res['porespy'])}", flush=True)
    for peer, ours in (("taufactor", "microbat_face"), ("porespy", "microbat_layer")):
        p, m = res.get(peer), res.get(ours)
        if p is None or m is None:
            continue
        dtau = m["tau"][0] / p["tau"][0] - 1
        print(
            f"  {peer:<10} vs {ours:<15} tau diff {dtau:+.3%}   time ratio wall "
            f"{p['wall_s'] / m['wall_s']:6.1f}x  cpu {p['cpu_s'] / m['cpu_s']:6.1f}x   "
            f"memory ratio {p['mem_mb'] / max(m['mem_mb'], 1e-9):5.1f}x",
            flush=True,
        )
    results[f"{kind}_{n}"] = res


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--kinds", default="spheres,aniso")
    ap.add_argument("--peers", default="taufactor,porespy")
    ap.add_argument(
        "--scaling", default="100,200,300", help="sizes for the growth table ('' to skip)"
    )
    ap.add_argument("--json", type=Path, default=None, help="write all numbers to this file")
    ap.add_argument("--worker")
    ap.add_argument("--volume")
    ap.add_argument("--axis", default="0")
    ap.add_argument("--opts", default="{}")
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.volume, args.axis, json.loads(args.opts))))
        return
    peers = [p for p in args.peers.split(",") if p and p != "none"]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    results: dict = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for kind in [k for k in args.kinds.split(",") if k]:
            compare(kind, args.size, peers, tmp, results)
        pore = make_volume("spheres", args.size)
        path = tmp / "all.npy"
        np.save(path, pore)
        r = run("microbat_all", path, axis="all")
        print(f"\n== three diagonal terms, spheres {args.size}^3 ==\n  microbat  {_fmt(r)}")
        results["three_axes"] = r
        sizes = [int(s) for s in args.scaling.split(",") if s.strip()]
        if sizes:
            print("\n== growth, spheres, one axis (face) ==")
            print(f"  {'n':>4} {'voxels':>10} {'wall [s]':>9} {'cpu [s]':>8} {'mem [MB]':>9} "
                  f"{'traced [MB]':>11} {'iters':>6} {'B/voxel':>8}")  # fmt: skip
            growth = {}
            for n in sizes:
                pore = make_volume("spheres", n)
                path = tmp / f"grow_{n}.npy"
                np.save(path, pore)
                g = run("microbat_face", path)
                growth[n] = g
                if g is not None:
                    print(
                        f"  {n:>4} {n**3:>10} {g['wall_s']:>9.2f} {g['cpu_s']:>8.2f} "
                        f"{g['mem_mb']:>9.0f} {g['traced_mb']:>11.0f} {g['iterations'][0]:>6} "
                        f"{g['traced_mb'] * 1e6 / n**3:>8.1f}",
                        flush=True,
                    )
            results["growth"] = growth
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
