"""Cycle aging: 1000 cycles of a 64³ electrode (jumping and cycle by cycle) against PyBaMM.

Run::

    python benchmarks/bench_aging.py                       # 64³, 1000 cycles, PyBaMM SPM+DFN
    python benchmarks/bench_aging.py --size 48 --cycles 200 --peer-cycles 20
    python benchmarks/bench_aging.py --peer none
    python benchmarks/bench_aging.py --plating 48 --cycles 1000   # plating from a resolved charge
    python benchmarks/bench_aging.py --balance --peer SPM --peer-cycles 100  # cell capacity

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

``--balance``: the cell capacity fade of the electrode balance (``age(cell=...)``)
against PyBaMM on the O'Kane 2022 cell. microbat: one free sphere of the set's
negative particle (the section-5 set-up of ``docs/validation/aging.md``) over
``--peer-cycles`` at the peer's mean cycle time, with and without the balance (its
cost). Peer, per model of ``--peer``: (i) the O'Kane cycling above, its 1C discharge
capacity fade (cycle 1 and 2 to the last) and lithium lost, and PyBaMM's own
``ElectrodeSOHSolver`` on that lithium (equilibrium fade); (ii) the same model
without side reactions, the set's lithium less microbat's LLI, charged at the rate
to 4.2 V and held to C/5000, then discharged at 1C and at C/500: how much of the
cell fade a finite rate hides.
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


OKANE_OPTIONS = {
    "SEI": "solvent-diffusion limited",
    "SEI on cracks": "true",
    "particle mechanics": ("swelling and cracking", "swelling only"),
    "SEI porosity change": "false",
}
F = 96485.33212


def _worker_balance_pybamm(model_name: str, cycles: int) -> dict:
    """O'Kane cycling: 1C capacity fade, lithium lost, PyBaMM's eSOH on that lithium."""
    import pybamm

    pv = pybamm.ParameterValues("OKane2022")
    step = ("Discharge at 1C until 2.5 V", "Charge at 1C until 4.2 V", "Hold at 4.2 V until C/50")
    model = getattr(pybamm.lithium_ion, model_name)(OKANE_OPTIONS)
    t0 = time.perf_counter()
    sim = pybamm.Simulation(
        model, parameter_values=pv, experiment=pybamm.Experiment([step] * cycles)
    )
    sol = sim.solve()
    wall = time.perf_counter() - t0
    caps = []
    for c in sol.cycles:
        q = c.steps[0]["Discharge capacity [A.h]"].entries
        caps.append(float(q[-1] - q[0]))
    last = sol.cycles[-1]
    lost = float(
        last["Loss of lithium to negative SEI [mol]"].entries[-1]
        + last["Loss of lithium to negative SEI on cracks [mol]"].entries[-1]
    )
    p = pybamm.LithiumIonParameters()
    q_n, q_p = float(pv.evaluate(p.n.Q_init)), float(pv.evaluate(p.p.Q_init))
    q_li = float(pv.evaluate(p.Q_Li_particles_init))
    solver = pybamm.lithium_ion.ElectrodeSOHSolver(pv, param=p)
    inp = {"V_min": 2.5, "V_max": 4.2, "Q_n": q_n, "Q_p": q_p}
    eq0 = float(solver.solve({**inp, "Q_Li": q_li})["Q"])
    eq1 = float(solver.solve({**inp, "Q_Li": q_li - F * lost / 3600.0})["Q"])
    # what its particles really lost (SPM: the SEI on cracks is not taken from them, #5263)
    part = float(last["Total lithium lost from particles [mol]"].entries[-1])
    eq_part = float(solver.solve({**inp, "Q_Li": q_li - F * part / 3600.0})["Q"])
    dur = [float(c["Time [s]"].entries[-1] - c["Time [s]"].entries[0]) for c in sol.cycles]
    return {
        "model": model_name, "cycles": len(sol.cycles), "wall_s": wall,
        "per_cycle_s": wall / max(len(sol.cycles), 1), "mean_cycle_s": sum(dur) / len(dur),
        "fade_1C_from_cycle1": 1 - caps[-1] / caps[0],
        "fade_1C_from_cycle2": 1 - caps[-1] / caps[1],
        "lost_mol": lost, "lli": F * lost / 3600.0 / q_li,
        "eq_fade_of_its_lli": 1 - eq1 / eq0, "lost_from_particles_mol": part,
        "eq_fade_of_particle_loss": 1 - eq_part / eq0, "peak_gb": _peak_gb(),
    }  # fmt: skip


def _worker_balance_rate(model_name: str, lli: float) -> dict:
    """No side reactions: the set's lithium less ``lli``; capacity at 1C and at C/500."""
    import pybamm

    p = pybamm.LithiumIonParameters()
    out: dict = {"model": model_name, "lli": lli}
    for rate in ("1C", "C/500"):
        caps = []
        for f in (0.0, lli):
            pv = pybamm.ParameterValues("OKane2022")
            q_li = float(pv.evaluate(p.Q_Li_particles_init))
            eps = pv["Positive electrode active material volume fraction"]
            vol = (
                pv["Positive electrode thickness [m]"]
                * pv["Electrode width [m]"]
                * pv["Electrode height [m]"]
            )
            key = "Initial concentration in positive electrode [mol.m-3]"
            pv[key] = pv[key] - f * q_li * 3600.0 / (F * eps * vol)
            exp = pybamm.Experiment([(f"Charge at {rate} until 4.2 V",
                                      "Hold at 4.2 V until C/5000",
                                      f"Discharge at {rate} until 2.5 V")])  # fmt: skip
            model = getattr(pybamm.lithium_ion, model_name)()
            sol = pybamm.Simulation(model, parameter_values=pv, experiment=exp).solve()
            q = sol.cycles[0].steps[2]["Discharge capacity [A.h]"].entries
            caps.append(float(q[-1] - q[0]))
        out[rate] = {"capacity_Ah": caps[0], "fade": 1 - caps[1] / caps[0]}
    return out


def _worker_balance_microbat(cycles: int, cycle_s: float) -> dict:
    """The section-5 free sphere with and without the cell balance."""
    import numpy as np
    import pybamm

    from microbat.degradation._aging_network import sphere_geometry
    from microbat.degradation.aging import AgingParameters, age
    from microbat.degradation.parameters import GRAPHITE

    pv = pybamm.ParameterValues("OKane2022")
    mat = GRAPHITE.replace(
        young_modulus_Pa=pv["Negative electrode Young's modulus [Pa]"],
        poisson_ratio=pv["Negative electrode Poisson's ratio"],
        partial_molar_volume_m3_per_mol=pv["Negative electrode partial molar volume [m3.mol-1]"],
    )
    params = AgingParameters(material=mat, cycle_time_s=cycle_s,
                             sei={"crack_initial_thickness_m": 5e-13 / 1.908})  # fmt: skip
    geom = sphere_geometry(float(pv["Negative particle radius [m]"]))
    kw = {"cycles": cycles, "geometry": geom, "params": params, "map_cycles": [],
          "impedance": False}  # fmt: skip
    age(None, cycles=2, geometry=geom, params=params, cell="okane2022")  # warm-up
    t0 = time.perf_counter()
    plain = age(None, **kw)
    t_plain = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = age(None, **kw, cell="okane2022")
    t_bal = time.perf_counter() - t0
    assert res.degradation_modes is not None and res.cell_balance is not None
    # the cell fade were only the original surface's SEI lithium lost (what PyBaMM's SPM
    # takes from its particles: its SEI-on-cracks lithium is not, PyBaMM issue #5263)
    from microbat.degradation._aging_balance import balance_curve, cell_balance

    bal = cell_balance("okane2022", electrode_capacity_Ah=res.cell_balance["Q_n_Ah"],
                       electrode="negative")  # fmt: skip
    li_o = F * res.lithium_lost_mol["sei_original"] / 3600.0
    only_o = balance_curve(bal, np.array([0.0, li_o]), np.zeros(2))
    return {
        "cell_fade_original_surface_only": float(1 - only_o["retention"][-1]),
        "cell_fade_from_cycle1": float(
            1 - res.cell_capacity_retention[-1] / res.cell_capacity_retention[res.cycle == 1][0]
        ),
        "points": len(res.cycle), "loop_s": t_plain, "with_balance_s": t_bal,
        "inventory_fade": res.lithium_inventory_fade, "cell_fade": res.cell_capacity_fade,
        "lli": float(res.degradation_modes["LLI"][-1]),
        "same_inventory": plain.lithium_inventory_fade == res.lithium_inventory_fade,
        "x0": [res.cell_balance["initial"]["x_0"], res.cell_balance["final"]["x_0"]],
        "y0": [res.cell_balance["initial"]["y_0"], res.cell_balance["final"]["y_0"]],
        "peak_gb": _peak_gb(),
    }  # fmt: skip


def _balance(peers: list[str], cycles: int) -> None:
    for model in peers:
        t0 = time.perf_counter()
        p = _run(["balance_pybamm", model, str(cycles)])
        t_peer = time.perf_counter() - t0
        m = _run(["balance_microbat", str(cycles), str(p["mean_cycle_s"])])
        r = _run(["balance_rate", model, str(m["lli"])])
        print(
            f"PyBaMM {model} O'Kane 2022, {p['cycles']} cycles: {p['wall_s']:.1f} s "
            f"({p['per_cycle_s']:.3f} s/cycle; worker {t_peer:.1f} s with imports), peak "
            f"{p['peak_gb']:.2f} GB; 1C capacity fade {100 * p['fade_1C_from_cycle1']:.3f} % "
            f"(from cycle 1) / {100 * p['fade_1C_from_cycle2']:.3f} % (from cycle 2); LLI "
            f"{100 * p['lli']:.3f} % of its cyclable lithium; PyBaMM eSOH fade of that LLI "
            f"{100 * p['eq_fade_of_its_lli']:.3f} %; lithium lost from its particles "
            f"{p['lost_from_particles_mol']:.4g} of {p['lost_mol']:.4g} mol, eSOH fade of "
            f"that {100 * p['eq_fade_of_particle_loss']:.3f} %"
        )
        print(
            f"microbat (free sphere, {cycles} cycles of {p['mean_cycle_s']:.0f} s, "
            f"{m['points']} curve points): loop {1e3 * m['loop_s']:.1f} ms, with the balance "
            f"{1e3 * m['with_balance_s']:.0f} ms; inventory fade "
            f"{100 * m['inventory_fade']:.3f} %, LLI {100 * m['lli']:.3f} %, cell fade "
            f"{100 * m['cell_fade']:.3f} % ({100 * m['cell_fade_from_cycle1']:.3f} % from cycle "
            f"1: vs the peer's 1C fade from cycle 2 "
            f"x{m['cell_fade_from_cycle1'] / p['fade_1C_from_cycle2']:.3f}) (vs PyBaMM eSOH "
            f"{100 * (m['cell_fade'] / p['eq_fade_of_its_lli'] - 1):+.1f} %, vs its 1C fade "
            f"x{m['cell_fade'] / p['fade_1C_from_cycle2']:.2f} from cycle 2); with the "
            f"original surface's SEI lithium only "
            f"{100 * m['cell_fade_original_surface_only']:.3f} %; x_0 {m['x0']}, y_0 {m['y0']}; "
            f"peak {m['peak_gb']:.2f} GB"
        )
        print(
            f"PyBaMM {model} without side reactions, LLI {100 * r['lli']:.3f} % (microbat's): "
            f"fade at 1C {100 * r['1C']['fade']:.3f} % (capacity {r['1C']['capacity_Ah']:.4f} "
            f"A h), at C/500 {100 * r['C/500']['fade']:.3f} % ({r['C/500']['capacity_Ah']:.4f}"
            f" A h); microbat cell fade / C/500 fade "
            f"{m['cell_fade'] / r['C/500']['fade']:.3f}"
        )


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
    ap.add_argument("--balance", action="store_true", help="cell capacity vs PyBaMM")
    ap.add_argument("--worker", nargs="*")
    a = ap.parse_args()
    if a.worker is not None:
        kind, *rest = a.worker
        if kind == "plating":
            print(json.dumps(_worker_plating(int(rest[0]), int(rest[1]), float(rest[2]))))
        elif kind == "microbat":
            print(json.dumps(_worker_microbat(int(rest[0]), int(rest[1]))))
        elif kind == "balance_pybamm":
            print(json.dumps(_worker_balance_pybamm(rest[0], int(rest[1]))))
        elif kind == "balance_rate":
            print(json.dumps(_worker_balance_rate(rest[0], float(rest[1]))))
        elif kind == "balance_microbat":
            print(json.dumps(_worker_balance_microbat(int(rest[0]), float(rest[1]))))
        else:
            print(json.dumps(_worker_pybamm(rest[0], int(rest[1]))))
        return
    print(f"load average before: {os.getloadavg()}")
    if a.balance:
        peers = [m.strip() for m in a.peer.split(",") if m.strip().lower() != "none"]
        _balance(peers, a.peer_cycles)
        print(f"load average after: {os.getloadavg()}")
        return
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
