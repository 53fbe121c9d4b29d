"""Time and peak memory of the dual connectivity analysis (and, optionally, metrics).

Usage::

    python benchmarks/bench_connectivity.py [--size 256] [--repeat 3] [--metrics]

A seeded random two-phase volume (Gaussian-filtered noise, porosity 0.35) is
labelled for both phases (pore 26-connected, solid 6-connected) and classified
along axis 0 by :func:`microbat.imaging.analyze_connectivity`. The same labelling
is timed with the peers that do the core work: ``scipy.ndimage.label`` and
``skimage.measure.label``; ratios are printed (microbat / peer; above 1 is the
cost of classification and class maps on top of the labelling). Peak memory is
the largest traced NumPy allocation (``tracemalloc``) during one call, next to
the volume itself. Timings on a shared machine are noisy: the best of
``--repeat`` runs is reported.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np


def make_volume(n: int, seed: int = 0):
    from scipy import ndimage as ndi

    from microbat import Microstructure

    rng = np.random.default_rng(seed)
    field = ndi.gaussian_filter(rng.standard_normal((n, n, n), dtype=np.float32), 4)
    lab = (field > np.quantile(field, 0.35)).astype(np.uint8)
    return Microstructure(lab, voxel_size=4e-7, phases="pore=0,active=1")


def best_time(fn, repeat: int) -> float:
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def peak_mib(fn) -> float:
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--metrics", action="store_true", help="also time areas and thickness")
    args = ap.parse_args()

    from scipy import ndimage as ndi

    from microbat.imaging.connectivity import analyze_connectivity

    ms = make_volume(args.size)
    lab = np.asarray(ms.labels)
    pore, solid = lab == 0, lab == 1
    n = args.size
    print(f"volume {n}^3 = {lab.size / 1e6:.1f} M voxels, porosity {pore.mean():.3f}")

    t_mb = best_time(lambda: analyze_connectivity(ms), args.repeat)
    m_mb = peak_mib(lambda: analyze_connectivity(ms))
    res = analyze_connectivity(ms)
    print(
        f"microbat analyze_connectivity (pore 26 + solid 6): {t_mb:.3f} s, "
        f"peak {m_mb:.0f} MiB (labels {lab.nbytes / 2**20:.0f} MiB)"
    )
    for name in res.phases:
        print(f"  {name:<7} clusters {res.n_clusters[name]:>6}  {res.cluster_counts[name]}")

    s26 = ndi.generate_binary_structure(3, 3)

    def scipy_pair() -> None:
        ndi.label(pore, structure=s26)
        ndi.label(solid)

    t_sp = best_time(scipy_pair, args.repeat)
    print(f"scipy.ndimage.label (same two labellings): {t_sp:.3f} s  ratio {t_mb / t_sp:.2f}")
    try:
        from skimage.measure import label as sk_label

        def skimage_pair() -> None:
            sk_label(pore, connectivity=3)
            sk_label(solid, connectivity=1)

        t_sk = best_time(skimage_pair, args.repeat)
        print(f"skimage.measure.label (same two labellings): {t_sk:.3f} s  ratio {t_mb / t_sk:.2f}")
    except ImportError:  # pragma: no cover
        print("skimage not installed: no comparison")

    if args.metrics:
        from microbat.imaging.metrics import interface_areas, local_thickness

        t_a = best_time(lambda: interface_areas(ms), 1)
        print(f"interface_areas: {t_a:.2f} s")
        for phase in ("pore", "active"):
            t_lt = best_time(lambda p=phase: local_thickness(ms, p), 1)
            print(f"local_thickness({phase}): {t_lt:.2f} s")


if __name__ == "__main__":
    main()
