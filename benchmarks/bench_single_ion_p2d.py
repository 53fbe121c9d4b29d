"""Solid-state composite cathode: the single-ion P2D against the resolved model.

Run ``python benchmarks/bench_single_ion_p2d.py [--case lattice|composite]
[--rates 1,3] [--sigma 0.2,0.01]``. The image is discharged by the resolved model
(:func:`microbat.cell.resolved.simulate_discharge` with the solid electrolyte as a
single-ion conductor, the truth) and by PyBaMM's DFN half cell built with
:func:`microbat.cell.solid_state_parameters` from the properties measured on the same
image (:meth:`microbat.cell.MicroProperties.from_microstructure`: SE fraction, ε/τ of
the SE network, active | SE contact area, thickness; the active fraction the resolved
model cycles (active voxels connected to the collector, as ``cell.resolved.compare``);
the solid's effective conductivity from a conduction solve over active material and
carbon-binder).
Both get the same current in amperes, the same cut-off (3.5 V) and start from the
set's initial concentration (``cell.resolved.compare.p2d_half_cell``).

Cases: ``lattice`` — simple-cubic lattice of 32-voxel active spheres in SE (24×8×8
voxels of 0.5 µm, ε_SE = 0.5, τ = 1.8), P2D radius = the volume-equivalent radius;
``fine`` — the same lattice at half the voxel (period 8, radius 3.9 voxels, 48×16×16);
``composite`` — ``synth.composite_cathode`` (40×20×20, active 0.5, SE 0.38, binder
0.03, seed 11), P2D radius = d50/2 of the active phase.

Prints per (σ_SE, C-rate): ΔQ and ΔE (P2D − resolved), RMS / max / mean ΔV, both wall
times and their ratio, the peak resident memory and the load average.
"""

from __future__ import annotations

import argparse
import os
import resource
import time


def lattice(period: int = 4, radius: float = 1.75, voxel: float = 0.5e-6, n: int = 24):
    from microbat.cell.resolved.compare import sphere_lattice
    from microbat.core.microstructure import Microstructure

    lat = sphere_lattice((n, 2 * period, 2 * period), period=period, radius=radius,
                         voxel_size=voxel)  # fmt: skip
    return Microstructure(
        lat.labels, voxel_size=lat.voxel_size, phases="se:solid_electrolyte=0,active:active=1"
    )


def composite():
    from microbat.synth import composite_cathode

    return composite_cathode(
        (40, 20, 20), voxel_size=0.5e-6, active_fraction=0.5, electrolyte_fraction=0.38,
        binder_fraction=0.03, active_radius=1.5e-6, electrolyte_radius=0.8e-6, seed=11,
    )  # fmt: skip


def run(ms, c_rate: float, sigma: float, radius_m: float | None) -> dict[str, float]:
    """One resolved run and the P2D on the same measured inputs."""
    from microbat.cell import CellParameters, MicroProperties, solid_state_parameters
    from microbat.cell.resolved import ResolvedOptions, simulate_discharge
    from microbat.cell.resolved.compare import curve_difference, p2d_half_cell
    from microbat.transport.conduction import conductivity

    p = CellParameters.from_name("chen2020")
    opt = ResolvedOptions(
        dv_target_V=0.01, max_step_fraction=1 / 30, cutoff_V=3.5, se_conductivity_S_per_m=sigma
    )
    t0 = time.perf_counter()
    r = simulate_discharge(ms, p, c_rate=c_rate, options=opt, snapshot_times=())
    t_res = time.perf_counter() - t0
    t0 = time.perf_counter()
    m = MicroProperties.from_microstructure(ms, thickness="image", solid_tortuosity=False)
    connected = r.grid["active_voxels"] / ms.n_voxels  # the cycled lithium inventory
    update = {"se_conductivity_S_per_m": sigma, "active_fraction": connected}
    if radius_m is not None:
        update["particle_radius_m"] = radius_m
    m = MicroProperties(**{**m.model_dump(), **update})
    cond = {ph.name: p.positive.conductivity_S_per_m for ph in ms.phases_with_role("active")}
    cond.update(
        {ph.name: opt.cbd_conductivity_S_per_m for ph in ms.phases_with_role("carbon_binder")}
    )
    sig_s = conductivity(ms, conductivities=cond, axis=ms.thickness_axis, keep_field=False)
    pp = solid_state_parameters(p, m).with_values(
        {
            "positive.conductivity_S_per_m": float(sig_s.sigma_eff[ms.thickness_axis]),
            "positive.bruggeman_electrode": 0.0,
        }
    )
    volume = ms.voxel_volume * ms.n_voxels
    cv = p2d_half_cell(
        pp, area_m2=volume / ms.thickness, currents_A=[r.current_A], cutoff_V=3.5,
        li_exchange_current_A_per_m2=opt.li_exchange_current_A_per_m2,
    )[0]  # fmt: skip
    t_p2d = time.perf_counter() - t0
    rms, vmax, vmean = curve_difference(
        r.time_s, r.voltage_V, cv.time_s, cv.voltage_V, float(r.time_s[1])
    )
    return {
        "dq_percent": 100 * (float(cv.capacity_Ah[-1]) - r.capacity_Ah) / r.capacity_Ah,
        "de_percent": 100 * (cv.energy_Wh - r.energy_Wh) / r.energy_Wh,
        "rms_mV": 1e3 * rms,
        "max_mV": 1e3 * vmax,
        "mean_mV": 1e3 * vmean,
        "ohmic_se_resolved_mV": 1e3 * r.final_breakdown_V["ohmic_electrolyte"],
        "area_contact_over_resolved": m.specific_surface_area_per_m
        / (r.grid["reaction_area_m2"] / volume),
        "connected_active_share": connected / ms.fraction("active"),
        "resolved_s": t_res,
        "p2d_s": t_p2d,
        "capacity_fraction_resolved": r.capacity_Ah / r.theoretical_capacity_Ah,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--case", choices=("lattice", "fine", "composite"), default="lattice")
    ap.add_argument("--rates", default="1,3")
    ap.add_argument("--sigma", default="0.2,0.01")
    a = ap.parse_args()
    if a.case == "lattice":
        from microbat.cell.resolved.compare import lattice_equivalent_radius

        ms, radius = lattice(), lattice_equivalent_radius()
    elif a.case == "fine":
        from microbat.cell.resolved.compare import lattice_equivalent_radius

        ms, radius = lattice(8, 3.9, 0.25e-6, 48), lattice_equivalent_radius(8, 3.9, 0.25e-6)
    else:
        ms, radius = composite(), None
    print(f"{a.case}: {ms.shape} voxels of {ms.voxel_size[0] * 1e6:g} µm, phases {ms.phases}")
    head = (
        "| σ_SE (S/m) | C | ΔQ | ΔE | RMS ΔV | max \\|ΔV\\| | mean ΔV | SE ohmic (res.) "
        "| resolved | P2D | ratio |"
    )
    print(head + "\n|" + "---|" * 11)
    for sigma in (float(s) for s in a.sigma.split(",")):
        for c in (float(v) for v in a.rates.split(",")):
            d = run(ms, c, sigma, radius)
            print(
                f"| {sigma:g} | {c:g} | {d['dq_percent']:+.2f} % | {d['de_percent']:+.2f} % | "
                f"{d['rms_mV']:.2f} mV | {d['max_mV']:.1f} mV | {d['mean_mV']:+.2f} mV | "
                f"{d['ohmic_se_resolved_mV']:.1f} mV | {d['resolved_s']:.1f} s | "
                f"{d['p2d_s']:.2f} s | {d['resolved_s'] / d['p2d_s']:.0f} |"
            )
    print(
        f"contact area / resolved reaction area {d['area_contact_over_resolved']:.4f}; "
        f"resolved capacity / theoretical {d['capacity_fraction_resolved']:.3f}; connected "
        f"share of the active voxels {d['connected_active_share']:.3f}"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MiB; load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
