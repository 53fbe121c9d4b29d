"""Rate capability: the resolved half cell against the P2D bridge on one electrode.

Run ``python benchmarks/bench_resolved_vs_p2d.py [--shape 48,12,12] [--rates 0.5,1,2,4]
[--json out.json]``. One synthetic NMC electrode (random overlapping active spheres of
radius 3 voxels, 30 % of the pore shell as carbon-binder, 0.5 µm voxels; the recipe
of ``bench_resolved.electrode`` on a slab) is discharged by the resolved model
(:func:`microbat.cell.resolved.simulate_discharge`, the truth) and by PyBaMM's DFN
half cell with the homogenised properties of the same image, with (a) the Bruggeman
relation and (b) the micro-informed transport (thickness-axis component of the
tortuosity tensor, conduction solve for the solid); see
``microbat.cell.resolved.compare``. Prints the table (capacity, mean voltage, energy,
RMS voltage difference vs the resolved curve) and the measured inputs.

Timings on the shared machine are noisy; the record in
``docs/validation/resolved.md`` section 4 gives the load.
"""

from __future__ import annotations

import argparse
import json
import os
import time


def electrode(shape: tuple[int, int, int], radius: float = 3.0, seed: int = 7):
    """Random packing of active spheres (55 % of the volume), carbon-binder, pore."""
    import numpy as np
    from scipy import ndimage

    from microbat import Microstructure

    rng = np.random.default_rng(seed)
    lab = np.zeros(shape, np.uint8)
    zz, yy, xx = np.ogrid[: shape[0], : shape[1], : shape[2]]
    target = 0.55 * lab.size
    while np.count_nonzero(lab == 2) < target:
        c = rng.uniform(0, 1, 3) * np.array(shape)
        lab[((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2) <= radius * radius] = 2
    shell = ndimage.binary_dilation(lab == 2) & (lab == 0)
    lab[shell & (rng.random(lab.shape) < 0.3)] = 1
    return Microstructure(lab, voxel_size=0.5e-6, phases="pore=0,cbd=1,active=2")


def main() -> None:
    from microbat.cell.resolved.compare import compare_with_p2d

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shape", default="48,12,12")
    ap.add_argument("--rates", default="0.5,1,2,4")
    ap.add_argument("--radius", type=float, default=3.0, help="sphere radius (voxels)")
    ap.add_argument("--json", default=None, help="write the result summary here")
    a = ap.parse_args()
    shape = tuple(int(v) for v in a.shape.split(","))
    rates = tuple(float(v) for v in a.rates.split(","))
    ms = electrode(shape, a.radius)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    res = compare_with_p2d(
        ms,
        c_rates=rates,
        transports=("bruggeman", "micro"),
        particle_radius_m=a.radius * 0.5e-6,
    )
    wall = time.perf_counter() - t0
    h = res.homogenised
    print(f"electrode {shape}, 0.5 µm voxels; load average {os.getloadavg()}")
    print(
        f"ε (pore + ½ CBD) = {h.porosity:.4f} (pore {h.pore_fraction:.4f}, CBD "
        f"{h.cbd_fraction:.4f}), active {h.active_fraction:.4f}, L = {h.thickness_m * 1e6:.1f} µm"
    )
    print(
        f"ε/τ: micro {h.transport_efficiency_micro:.4f} (τ = {h.tau_electrolyte_micro:.3f}), "
        f"Bruggeman {h.transport_efficiency_bruggeman:.4f} (τ = "
        f"{h.tau_electrolyte_bruggeman:.3f}); σ_eff: micro "
        f"{h.solid_conductivity_micro_S_per_m:.4g} S/m, Bruggeman "
        f"{h.solid_conductivity_bruggeman_S_per_m:.4g} S/m; a = "
        f"{h.specific_surface_area_per_m:.4g} 1/m; R = {h.particle_radius_m * 1e6:.3f} µm"
    )
    print(res.markdown())
    for r in res.resolved:
        print(
            f"resolved {r.c_rate:g}C: {r.status}; {r.steps} steps, "
            f"{r.timing['total_s']:.1f} s, max conservation error "
            f"{r.max_conservation_error:.1e}"
        )
    print(f"total wall time {wall:.1f} s")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(res.to_dict(), fh, indent=2)


if __name__ == "__main__":
    main()
