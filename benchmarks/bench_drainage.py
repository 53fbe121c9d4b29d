"""Morphological drainage: microbat against PoreSpy on the same image and pressures.

Run::

    python benchmarks/bench_drainage.py                     # 200³ blobs, 20 pressures
    python benchmarks/bench_drainage.py --size 100 --trapping
    python benchmarks/bench_drainage.py --kind electrode --size 160

Both tools get the same 20 pressures, log-spaced from the lowest to 1.05 × the
highest capillary pressure of the image (``2/d`` in voxel units, with ``d`` the
``edt`` distance map): what PoreSpy's ``simulations.drainage(im, steps=20)`` picks
itself. microbat's :func:`microbat.degradation.drainage` runs with
``γ cos θ = h``, so that its ``2 γ cos θ / (d h)`` is PoreSpy's ``2/d``), the same
inlet (the last layer of axis 0) and, with ``--trapping``, the same outlet (the
first layer). Each tool runs in a fresh interpreter (``--worker``) that loads the
volume from a ``.npy``, imports its library and warms up on a 32³ crop (Numba
kernels compile or load from their caches there), then times one call.

Printed per tool: wall and CPU time (user + system of the process, all threads),
the increase of the peak resident set over the call (the peak is reset just
before it), and for microbat the ``tracemalloc`` peak. Then the agreement: the
largest saturation difference over the pressures (``max |ΔS|``) and the number
of voxels invaded by one and not the other, summed over the pressures; and the
ratios PoreSpy / microbat. The load average is printed before and after: the
machine may be shared, and the CPU-time ratio is the steadier one.
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
from _timing import cpu_s, load_average, peak_bytes, reset_peak


def make_volume(kind: str, n: int, seed: int = 1) -> np.ndarray:
    """A pore mask (True = pore) of the named kind."""
    if kind == "blobs":
        import porespy

        return np.asarray(
            porespy.generators.blobs(shape=[n, n, n], porosity=0.4, blobiness=1.5, seed=seed)
        )
    if kind == "electrode":
        from microbat import synth

        ms = synth.electrode((n, n, n), voxel_size=4e-7, seed=seed)
        return np.asarray(ms.labels) == 0
    if kind == "noise":
        from scipy import ndimage

        rng = np.random.default_rng(seed)
        f = ndimage.gaussian_filter(rng.standard_normal((n, n, n), dtype=np.float32), 3.0)
        return f > np.quantile(f, 0.6)
    raise SystemExit(f"unknown volume kind {kind!r}")


def _faces(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    inlets = np.zeros(shape, bool)
    inlets[-1] = True
    outlets = np.zeros(shape, bool)
    outlets[0] = True
    return inlets, outlets


def worker(name: str, path: str, out: str, trapping: bool, pressures: list[float]) -> dict:
    im = np.load(path)
    small = np.ascontiguousarray(im[:32, :32, :32])
    if name == "microbat":
        import tracemalloc
        import warnings

        from microbat import Microstructure
        from microbat.degradation.gas import drainage

        warnings.simplefilter("ignore")
        h = 1e-6

        def run(p: np.ndarray, pres):
            ms = Microstructure(p.astype(np.uint8), h, phases="solid=0,pore=1")
            return drainage(
                ms, pressures=pres, surface_tension=h, contact_angle_deg=0, trapping=trapping
            )

        run(small, None)
        base, cpu0 = reset_peak(), cpu_s()
        tracemalloc.start()
        t0 = time.perf_counter()
        r = run(im, pressures)
        wall = time.perf_counter() - t0
        traced = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        np.save(out, r.invasion_pressure_Pa.astype(np.float64))
        return {
            "wall_s": wall,
            "cpu_s": cpu_s() - cpu0,
            "mem_mb": (peak_bytes() - base) / 1e6,
            "traced_mb": traced / 1e6,
            "saturation": r.saturation.tolist(),
        }
    if name == "porespy":
        import logging
        import warnings

        warnings.simplefilter("ignore")
        import porespy

        porespy.settings.tqdm["disable"] = True
        logging.getLogger("porespy").setLevel(logging.ERROR)
        i_s, o_s = _faces(small.shape)
        porespy.simulations.drainage(
            im=small, inlets=i_s, outlets=o_s if trapping else None, steps=20
        )
        inlets, outlets = _faces(im.shape)
        base, cpu0 = reset_peak(), cpu_s()
        t0 = time.perf_counter()
        r = porespy.simulations.drainage(
            im=im, inlets=inlets, outlets=outlets if trapping else None, steps=np.array(pressures)
        )
        wall = time.perf_counter() - t0
        cpu = cpu_s() - cpu0
        mem = (peak_bytes() - base) / 1e6
        pc = np.asarray(r.im_pc, np.float64)
        np.save(out, np.where(im, pc, np.nan))
        return {"wall_s": wall, "cpu_s": cpu, "mem_mb": mem}
    raise SystemExit(f"unknown tool {name!r}")


def _spawn(name: str, path: Path, out: Path, trapping: bool, pressures: list[float] | None):
    args = [sys.executable, __file__, "--worker", name, str(path), str(out)]
    if trapping:
        args.append("--trapping")
    if pressures is not None:
        args += ["--pressures-json", json.dumps(pressures)]
    res = subprocess.run(args, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"{name} worker failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--kind", default="blobs", help="blobs (PoreSpy), electrode or noise")
    ap.add_argument("--trapping", action="store_true")
    ap.add_argument("--repeat", type=int, default=1, help="timed runs per tool (best kept)")
    ap.add_argument("--worker", nargs=3, metavar=("TOOL", "VOLUME", "OUT"))
    ap.add_argument("--pressures-json", default=None)
    args = ap.parse_args()
    if args.worker:
        name, path, out = args.worker
        pres = json.loads(args.pressures_json) if args.pressures_json else None
        print(json.dumps(worker(name, path, out, args.trapping, pres)))
        return

    print(f"load average before: {load_average()}")
    import numba

    print(f"numba threads: {numba.get_num_threads()}, cores: {os.cpu_count()}")
    im = make_volume(args.kind, args.size)
    print(
        f"{args.kind} {args.size}³, porosity {im.mean():.3f}, 20 pressures, inlet last layer "
        f"of axis 0{', trapping (outlet first layer)' if args.trapping else ''}"
    )
    import edt

    pc = 2.0 / edt.edt(im).astype(np.float64)[im]  # PoreSpy's own choice of pressures
    pressures = np.logspace(np.log10(pc.min()), np.log10(pc.max() * 1.05), 20).tolist()
    with tempfile.TemporaryDirectory() as tmp:
        vol = Path(tmp) / "im.npy"
        np.save(vol, im)
        ps_runs = [
            _spawn("porespy", vol, Path(tmp) / "ps.npy", args.trapping, pressures)
            for _ in range(args.repeat)
        ]
        ps = min(ps_runs, key=lambda r: r["wall_s"])
        mb_runs = [
            _spawn("microbat", vol, Path(tmp) / "mb.npy", args.trapping, pressures)
            for _ in range(args.repeat)
        ]
        mb = min(mb_runs, key=lambda r: r["wall_s"])
        a = np.load(Path(tmp) / "mb.npy")
        b = np.load(Path(tmp) / "ps.npy")
    pres = np.asarray(pressures)
    n_pore = int(im.sum())
    ds, mism = [], 0
    for p in pres:
        ours = im & (a <= p * (1 + 1e-12))
        theirs = im & (b <= p)
        ds.append(abs(int(ours.sum()) - int(theirs.sum())) / n_pore)
        mism += int((ours ^ theirs).sum())
    for name, r in (("microbat", mb), ("PoreSpy", ps)):
        extra = f", traced {r['traced_mb']:.0f} MB" if "traced_mb" in r else ""
        print(
            f"{name:>9}: wall {r['wall_s']:.2f} s, CPU {r['cpu_s']:.2f} s, "
            f"peak +{r['mem_mb']:.0f} MB{extra}"
        )
    print(f"pressures: {pres.size} ({pres.min():.4g} .. {pres.max():.4g}, 2/d in voxels)")
    print(f"agreement: max |ΔS| = {max(ds):.2e}, voxels differing over all pressures: {mism}")
    print(
        f"ratio PoreSpy / microbat: wall {ps['wall_s'] / mb['wall_s']:.1f}x, "
        f"CPU {ps['cpu_s'] / mb['cpu_s']:.1f}x, memory "
        f"{ps['mem_mb'] / max(mb['mem_mb'], 1e-9):.1f}x"
    )
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
