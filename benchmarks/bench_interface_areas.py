"""Time, peak memory and agreement of the interface-area estimator against a mesh peer.

Usage::

    python benchmarks/bench_interface_areas.py [--size 200] [--repeat 2]

A seeded three-phase volume (Gaussian-filtered noise cut at the 35 % and 45 %
quantiles: pore, a thin carbon-binder class between them, active) is measured by
:func:`microbat.imaging.interface_areas` (normal-weighted voxel faces). The peer
is scikit-image: ``marching_cubes`` (Lewiner) on the binary indicator of each
phase at level 1/2 and ``mesh_surface_area``; it gives each phase's surface (a
pair area needs the three surfaces and inclusion-exclusion, the cancellation
microbat's estimator avoids), so the comparison is per phase: the microbat surface
of a phase is the sum of its pairs. Plain marching cubes on a binary image reads an
isotropic surface about 9 % high (``docs/validation/metrics.md``), so a ratio near
0.92 is agreement for smooth surfaces; thin phases (the binder here) read lower
with marching cubes, whose facets cut across one-voxel features. The ratios (microbat / peer)
of time and of the surfaces are printed, with the peak resident memory of each
call (``_timing``) and the load average (the machine is shared: best of
``--repeat``).
"""

from __future__ import annotations

import argparse
import os
import time

import _timing
import numpy as np


def make_volume(n: int, seed: int = 0):
    from scipy import ndimage as ndi

    from microbat import Microstructure

    rng = np.random.default_rng(seed)
    field = ndi.gaussian_filter(rng.standard_normal((n, n, n), dtype=np.float32), 3)
    cuts = np.quantile(field[::4, ::4, ::4], (0.35, 0.45))
    lab = np.digitize(field, cuts).astype(np.uint8)
    return Microstructure(lab, voxel_size=4e-7, phases="pore=0,cbd=1,active=2")


def timed(fn, repeat: int):
    best, peak, out = np.inf, 0, None
    for _ in range(repeat):
        base = _timing.reset_peak()
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
        peak = max(peak, _timing.peak_bytes() - base)
    return out, best, peak / 2**20


def peer_surfaces(ms) -> dict[str, float]:
    from skimage.measure import marching_cubes, mesh_surface_area

    h = ms.voxel_size
    out = {}
    for p in ms.phases.values():
        m = (ms.labels == p.label).astype(np.float32)
        verts, faces, _, _ = marching_cubes(m, 0.5, spacing=h)
        out[p.name] = float(mesh_surface_area(verts, faces))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()

    from microbat.imaging.metrics import interface_areas

    ms = make_volume(args.size)
    interface_areas(make_volume(16))  # compile / load the Numba kernel outside the timing
    print(
        f"volume {args.size}^3 = {ms.n_voxels / 1e6:.1f} M voxels, fractions "
        + ", ".join(f"{k} {v:.3f}" for k, v in ms.volume_fractions().items())
    )
    pairs, t_mb, m_mb = timed(lambda: interface_areas(ms), args.repeat)
    print(f"microbat interface_areas: {t_mb:.2f} s, peak +{m_mb:.0f} MiB")
    for (a, b), v in pairs.items():
        print(f"  {a}/{b}: {v * 1e12:.0f} µm²")
    try:
        peer, t_sk, m_sk = timed(lambda: peer_surfaces(ms), args.repeat)
    except ImportError:  # pragma: no cover
        print("scikit-image not installed: no comparison")
        return
    print(
        f"scikit-image marching_cubes + mesh_surface_area, 3 phases: {t_sk:.2f} s, "
        f"peak +{m_sk:.0f} MiB; time ratio {t_mb / t_sk:.2f}"
    )
    for name, v in peer.items():
        mine = sum(x for k, x in pairs.items() if name in k)
        line = f"  surface {name}: microbat {mine * 1e12:.0f} µm², peer {v * 1e12:.0f} µm²"
        print(f"{line}, ratio {mine / v:.3f}")
    print("load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
