"""Cycle aging: 1000 cycles of a 64³ electrode (jumping and cycle by cycle) against PyBaMM.

Run::

    python benchmarks/bench_aging.py                       # 64³, 1000 cycles, PyBaMM SPM+DFN
    python benchmarks/bench_aging.py --size 48 --cycles 200 --peer-cycles 20
    python benchmarks/bench_aging.py --peer none
    python benchmarks/bench_aging.py --plating 48 --cycles 1000   # plating from a resolved charge

The problem: a synthetic electrode (``microbat.synth.electrode``, 55 % active, 10 %
carbon-binder, 0.5 µm voxels, particles of 4 µm mean radius) with the graphite and
SEI/crack constants of O'Kane et al. (2022), 1C cycles, mechanisms ``sei,cracks``.
microbat's cost is split into the set-up (labelling, interface areas, tortuosity
solve: once per image) and the loop (network solves and closed forms), with and
without cycle-jumping; the fade of the two runs is compared.

Peer: PyBaMM's SPM and DFN with the O'Kane 2022 parameter set and the options
solvent-diffusion-limited SEI, SEI on cracks, swelling and cracking in the negative
electrode, cycling 1C CC discharge to 2.5 V, 1C CC charge to 4.2 V, CV to C/50
(a homogenised cell, not the image: the cost per cycle is what is compared). Each
measurement runs in a fresh interpreter (``--worker``) so that peak memory
(``ru_maxrss``, imports included) belongs to it alone; imports are not timed.
The machine is shared: the load average is printed before and after.

``--plating EDGE``: the plating mechanism's resolved charge instead. An electrode of
EDGE planes and a lateral extent of 64 voxels (same synthetic recipe) is charged on
its centred EDGE × EDGE lateral crop (the whole thickness: an EDGE³ box) at ``--c-rate``
(default 3) with irreversible plating (``resolved_plating``, chen2020's graphite),
then aged over ``--cycles`` with sei, cracks and plating. Peer: PyBaMM's DFN with its
irreversible plating submodel on the homogenised box (``dfn_plating``, same current,
start and end time): time ratio and plated lithium side by side. CPU time, wall
time and the peak resident size (reset before the charge) are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def _worker_microbat(size: int, cycles: int) -> dict:
    from microbat.degradation._aging_network import aging_geometry
    from microbat.degradation.aging import age
    from microbat.degradation.particles import label_particles
    from microbat.synth import electrode

    ms = electrode((size, size, size), voxel_size=0.5e-6, mean_radius=4e-6, seed=1)
    age(ms, cycles=2, geometry=None)  # warm-up (imports, tables)
    t0 = time.perf_counter()
    geom = aging_geometry(ms, label_particles(ms))
    t_setup = time.perf_counter() - t0
    out = {"particles": geom.n, "planes": geom.n_layers, "setup_s": t_setup}
    for jump in (True, False):
        t0 = time.perf_counter()
        res = age(ms, cycles=cycles, geometry=geom, jump=jump)
        key = "jump" if jump else "single"
        out[key] = {
            "loop_s": time.perf_counter() - t0,
            "retention": float(res.capacity_retention[-1]),
            "network_solves": res.solver["network_solves"],
            "network_solve_s": res.solver["network_solve_s"],
            "blocks": res.solver["blocks"],
            "rejected": res.solver["rejected_blocks"],
            "cov": float(res.heterogeneity_cov[-1]),
            "li_sei": res.lithium_lost_mol["sei_original"],
            "li_cracks": res.lithium_lost_mol["sei_cracks"],
        }
    out["peak_gb"] = _peak_gb()
    return out


def _worker_plating(edge: int, cycles: int, c_rate: float) -> dict:
    from _timing import cpu_s, load_average, peak_bytes, reset_peak

    from microbat.degradation.aging import age, resolved_plating
    from microbat.degradation.particles import label_particles
    from microbat.degradation.plating import dfn_plating
    from microbat.pipeline.stages.plating import _box
    from microbat.synth import electrode

    ms = electrode((edge, 64, 64), voxel_size=0.5e-6, mean_radius=4e-6, seed=1)
    particles = label_particles(ms)
    box = _box(ms.shape, edge, ms.thickness_axis)
    load0 = load_average()
    reset_peak()
    c0, t0 = cpu_s(), time.perf_counter()
    rp = resolved_plating(ms, particles, c_rate=c_rate, crop=box)
    wall, cpu = time.perf_counter() - t0, cpu_s() - c0
    peak = peak_bytes() / 1e9
    load1 = load_average()
    t0 = time.perf_counter()
    res = age(ms, cycles=cycles, c_rate=c_rate, mechanisms="sei,cracks,plating",
              particles=particles, plating=rp)  # fmt: skip
    loop = time.perf_counter() - t0
    ch = rp.charge
    t0 = time.perf_counter()
    d = dfn_plating(
        ms.crop(*box), current_A=abs(ch["current_A"]),
        initial_stoichiometry=ch["initial_stoichiometry"], end_time_s=ch["end_time_s"],
        cutoff_V=-1.0, plating="irreversible",
    )  # fmt: skip
    dfn_s = time.perf_counter() - t0
    return {
        "shape": ch["shape"], "particles": rp.n, "steps": ch["steps"],
        "complete": ch["complete"], "status": ch["status"], "end_time_s": ch["end_time_s"],
        "charge_wall_s": wall, "charge_cpu_s": cpu, "charge_peak_gb": peak,
        "load_before": load0, "load_after": load1,
        "plated_box_mol": rp.run_plated_mol, "lost_per_charge_mol": float(rp.lost_mol.sum()),
        "aging_s": loop, "retention": float(res.capacity_retention[-1]),
        "lost": res.lithium_lost_mol, "cov": float(res.heterogeneity_cov[-1]),
        "dfn_s": dfn_s, "dfn_plated_mol": d.plated_lithium_mol,
    }  # fmt: skip


def _worker_pybamm(model_name: str, cycles: int) -> dict:
    import pybamm

    opts = {
        "SEI": "solvent-diffusion limited",
        "SEI on cracks": "true",
        "particle mechanics": ("swelling and cracking", "swelling only"),
        "SEI porosity change": "false",
    }
    pv = pybamm.ParameterValues("OKane2022")
    step = ("Discharge at 1C until 2.5 V", "Charge at 1C until 4.2 V", "Hold at 4.2 V until C/50")
    model = getattr(pybamm.lithium_ion, model_name)(opts)
    pybamm.Simulation(model, parameter_values=pv, experiment=pybamm.Experiment([step])).solve()
    model = getattr(pybamm.lithium_ion, model_name)(opts)
    t0 = time.perf_counter()
    sim = pybamm.Simulation(
        model, parameter_values=pv, experiment=pybamm.Experiment([step] * cycles)
    )
    sol = sim.solve()
    wall = time.perf_counter() - t0
    q = [c.steps[0]["Discharge capacity [A.h]"].entries for c in sol.cycles]
    caps = [float(x[-1] - x[0]) for x in q]
    li = sol.cycles[-1]["Loss of lithium to negative SEI [mol]"].entries[-1]
    li_cr = sol.cycles[-1]["Loss of lithium to negative SEI on cracks [mol]"].entries[-1]
    dur = [float(c["Time [s]"].entries[-1] - c["Time [s]"].entries[0]) for c in sol.cycles]
    return {
        "mean_cycle_s": sum(dur) / len(dur),
        "radius_m": float(pv["Negative particle radius [m]"]),
        "young": float(pv["Negative electrode Young's modulus [Pa]"]),
        "poisson": float(pv["Negative electrode Poisson's ratio"]),
        "omega": float(pv["Negative electrode partial molar volume [m3.mol-1]"]),
        "model": model_name,
        "cycles": len(sol.cycles),
        "wall_s": wall,
        "per_cycle_s": wall / max(len(sol.cycles), 1),
        "capacity_fade_from_cycle2": 1 - caps[-1] / caps[1] if len(caps) > 1 else None,
        "lli_fraction_of_capacity": 96485.33212 * (li + li_cr) / 3600.0 / caps[1]
        if len(caps) > 1
        else None,
        "peak_gb": _peak_gb(),
    }


def _homogeneous(p: dict, cycles: int) -> float:
    """microbat's fade for free spheres of the PyBaMM set, at the peer's cycle time."""
    from microbat.degradation._aging_network import sphere_geometry
    from microbat.degradation.aging import AgingParameters, age
    from microbat.degradation.parameters import GRAPHITE

    mat = GRAPHITE.replace(
        young_modulus_Pa=p["young"],
        poisson_ratio=p["poisson"],
        partial_molar_volume_m3_per_mol=p["omega"],
    )
    params = AgingParameters(
        material=mat,
        cycle_time_s=p["mean_cycle_s"],
        sei={"crack_initial_thickness_m": 5e-13 / 1.908},
    )
    res = age(None, cycles=cycles, geometry=sphere_geometry(p["radius_m"]), params=params)
    return 1.0 - float(res.capacity_retention[-1])


def _run(args: list[str]) -> dict:
    env = dict(os.environ)
    r = subprocess.run(
        [sys.executable, __file__, "--worker", *args], capture_output=True, text=True, env=env
    )
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--cycles", type=int, default=1000)
    ap.add_argument("--peer", default="SPM,DFN", help="PyBaMM models (comma separated) or none")
    ap.add_argument("--peer-cycles", type=int, default=50)
    ap.add_argument("--plating", type=int, default=None, help="edge of the charged box")
    ap.add_argument("--c-rate", type=float, default=3.0, help="with --plating")
    ap.add_argument("--worker", nargs="*")
    a = ap.parse_args()
    if a.worker is not None:
        kind, *rest = a.worker
        if kind == "plating":
            print(json.dumps(_worker_plating(int(rest[0]), int(rest[1]), float(rest[2]))))
        elif kind == "microbat":
            print(json.dumps(_worker_microbat(int(rest[0]), int(rest[1]))))
        else:
            print(json.dumps(_worker_pybamm(rest[0], int(rest[1]))))
        return
    print(f"load average before: {os.getloadavg()}")
    if a.plating is not None:
        p = _run(["plating", str(a.plating), str(a.cycles), str(a.c_rate)])
        print(
            f"resolved {a.c_rate:g}C charge with irreversible plating, box {p['shape']} "
            f"({p['particles']} particles of the image): {p['steps']} steps, "
            f"{'complete' if p['complete'] else 'partial'} ({p['status']}); wall "
            f"{p['charge_wall_s']:.1f} s, CPU {p['charge_cpu_s']:.1f} s, peak "
            f"{p['charge_peak_gb']:.2f} GB; load {p['load_before']} -> {p['load_after']}"
        )
        print(
            f"  plated in the box {p['plated_box_mol']:.4g} mol; lost per cycle on the image "
            f"{p['lost_per_charge_mol']:.4g} mol; {a.cycles} cycles of aging "
            f"{p['aging_s']:.2f} s: retention {100 * p['retention']:.3f} %, loss "
            f"{p['lost']}, CoV {p['cov']:.4g}"
        )
        dp = p["dfn_plated_mol"]
        print(
            f"PyBaMM DFN (irreversible plating, homogenised box): {p['dfn_s']:.1f} s, plated "
            + (
                "n/a"
                if dp is None
                else f"{dp:.4g} mol (resolved/DFN {p['plated_box_mol'] / dp:.3g})"
            )
            + f"; time ratio resolved/DFN {p['charge_wall_s'] / p['dfn_s']:.0f}"
        )
        print(f"load average after: {os.getloadavg()}")
        return
    m = _run(["microbat", str(a.size), str(a.cycles)])
    j, s = m["jump"], m["single"]
    print(
        f"microbat {a.size}³: {m['particles']} particles, {m['planes']} planes; set-up "
        f"{m['setup_s']:.2f} s; peak {m['peak_gb']:.2f} GB"
    )
    for name, r in (("cycle-jumping", j), ("cycle by cycle", s)):
        print(
            f"  {name:15s} {a.cycles} cycles: loop {r['loop_s']:.3f} s "
            f"({r['blocks']} blocks, {r['rejected']} rejected, {r['network_solves']} network "
            f"solves at {1e3 * r['network_solve_s']:.3f} ms), total "
            f"{m['setup_s'] + r['loop_s']:.2f} s; retention {100 * r['retention']:.4f} %, "
            f"CoV {r['cov']:.4g}"
        )
    print(
        f"  jumping vs cycle by cycle: fade differs by "
        f"{100 * abs(j['retention'] - s['retention']) / max(1 - s['retention'], 1e-300):.3f} % "
        f"of the fade; loop speed-up {s['loop_s'] / j['loop_s']:.1f}x"
    )
    per_cycle_mb = (m["setup_s"] + j["loop_s"]) / a.cycles
    if a.peer.lower() != "none":
        for model in a.peer.split(","):
            p = _run(["pybamm", model.strip(), str(a.peer_cycles)])
            fade_mb = _homogeneous(p, a.peer_cycles)
            print(
                f"PyBaMM {p['model']} (O'Kane 2022, homogenised cell): {p['cycles']} cycles in "
                f"{p['wall_s']:.2f} s = {p['per_cycle_s']:.3f} s/cycle; "
                f"peak {p['peak_gb']:.2f} GB; "
                f"capacity fade {100 * (p['capacity_fade_from_cycle2'] or 0):.3f} %, LLI "
                f"{100 * (p['lli_fraction_of_capacity'] or 0):.3f} % of capacity; "
                f"ratio PyBaMM/microbat per cycle (microbat incl. set-up, jumping): "
                f"{p['per_cycle_s'] / per_cycle_mb:.1f}; microbat homogeneous limit (free "
                f"spheres, same cycle time) fade {100 * fade_mb:.3f} %"
            )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
