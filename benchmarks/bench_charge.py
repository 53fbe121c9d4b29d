"""Benchmark of the resolved charge: a fast CC charge of a graphite electrode.

Run ``python benchmarks/bench_charge.py [--n 64] [--c-rate 3] [--cv-voltage V]
[--plating irreversible]``. A
synthetic graphite electrode (``microbat.synth.electrode``: n³ voxels of 1 µm, 70 %
active spheres of Chen2020's 5.86 µm mean radius, 5 % carbon-binder, seed 18) is
charged with Chen2020's negative-electrode properties against lithium metal from the
set's discharged state ``x_0`` to its "4.2 V-equivalent" end ``x_100`` (or the CV
end). Each variant runs in a fresh process (its own peak RSS): without a field hook,
and with an ``on_fields`` hook that does what a plating map needs each step (the
plating overpotential φ_s − φ_e on every active/electrolyte face, its minimum and the
area at risk). Prints wall time, steps, Newton/GMRES iterations, peak memory, the
hook's overhead and the load average (issue 18's bar: under 2 minutes on 2 cores, the
maps adding under 10 %).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time


def electrode(n: int):
    """The n³ graphite electrode of the benchmark (seeded)."""
    from microbat.synth import electrode as synth_electrode

    return synth_electrode(
        (n, n, n),
        voxel_size=1e-6,
        active_fraction=0.70,
        cbd_fraction=0.05,
        mean_radius=5.86e-6,  # Chen2020 negative particle radius
        radius_cv=0.3,
        seed=18,
    )


def plating_hook():
    """An ``on_fields`` consumer: η_pl on the active/electrolyte faces, every step."""
    import numpy as np

    state: dict[str, object] = {"calls": 0, "min_eta": np.inf, "seconds": 0.0}

    def hook(t: float, f) -> None:
        t0 = time.perf_counter()
        ps, pe = f["phi_s"], f["phi_e"]
        act = ~np.isnan(f["stoichiometry"])
        ele = ~np.isnan(pe)
        lo = np.inf
        risk = 0
        for ax in range(3):
            a = [slice(None)] * 3
            b = [slice(None)] * 3
            a[ax], b[ax] = slice(0, -1), slice(1, None)
            for s, e in ((tuple(a), tuple(b)), (tuple(b), tuple(a))):
                m = act[s] & ele[e]
                eta = ps[s][m] - pe[e][m]
                if eta.size:
                    lo = min(lo, float(eta.min()))
                    risk += int(np.count_nonzero(eta < 0))
        state["calls"] = int(state["calls"]) + 1  # type: ignore[call-overload]
        state["min_eta"] = min(float(state["min_eta"]), lo)  # type: ignore[arg-type]
        state["risk_faces"] = risk
        state["seconds"] = float(state["seconds"]) + time.perf_counter() - t0  # type: ignore[arg-type]

    return hook, state


def one(
    n: int, c_rate: float, cv_voltage: float | None, with_hook: bool, plating: str = "none"
) -> dict:
    from microbat.cell.resolved import ResolvedOptions, simulate_charge

    ms = electrode(n)
    hook, st = plating_hook() if with_hook else (None, {})
    t0 = time.perf_counter()
    res = simulate_charge(
        ms,
        "chen2020",
        c_rate=c_rate,
        electrode="negative",
        cv_voltage=cv_voltage,
        on_fields=hook,
        options=ResolvedOptions(plating=plating),  # type: ignore[arg-type]
    )
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {
        "n": n,
        "hook": with_hook,
        "wall_s": wall,
        "cpu_s": time.process_time(),
        "steps": res.steps,
        "newton": res.newton_iterations,
        "gmres": res.timing.get("gmres_iterations", 0),
        "amg_setups": res.timing.get("amg_setups", 0),
        "unknowns": res.grid["unknowns"],
        "peak_MB": peak,
        "status": res.status,
        "complete": res.complete,
        "charged_fraction_of_1C": res.capacity_Ah / res.one_c_current_A,
        "final_V": float(res.voltage_V[-1]),
        "min_V": float(res.voltage_V.min()),
        "max_conservation_error": res.max_conservation_error,
        "hook_s": st.get("seconds", 0.0),
        "hook_min_eta_V": st.get("min_eta"),
        "plated_fraction": res.plated_Ah / res.capacity_Ah if res.capacity_Ah else 0.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--c-rate", type=float, default=3.0)
    ap.add_argument("--cv-voltage", type=float, default=None)
    ap.add_argument(
        "--plating", default="none", help="none, irreversible, reversible, partially_reversible"
    )
    ap.add_argument("--one", choices=["plain", "hook"], default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one(a.n, a.c_rate, a.cv_voltage, a.one == "hook", a.plating)))
        return
    rows = []
    for variant in ("plain", "hook"):
        load = os.getloadavg()[0]
        cmd = [sys.executable, __file__, "--n", str(a.n), "--c-rate", str(a.c_rate)]
        if a.cv_voltage is not None:
            cmd += ["--cv-voltage", str(a.cv_voltage)]
        cmd += ["--plating", a.plating]
        out = subprocess.run([*cmd, "--one", variant], capture_output=True, text=True, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        row["load_before"] = load
        row["load_after"] = os.getloadavg()[0]
        rows.append(row)
        print(
            f"{a.n}^3 {a.c_rate:g}C {'with on_fields hook' if row['hook'] else 'no hook':20s} "
            f"wall {row['wall_s']:7.1f} s  cpu {row['cpu_s']:7.1f} s  steps {row['steps']:4d}  "
            f"newton {row['newton']:5d}  gmres {row['gmres']:6d}  setups {row['amg_setups']:3d} "
            f"peak {row['peak_MB']:7.0f} MB  "
            f"hook {row['hook_s']:5.2f} s  load {row['load_before']:.2f}->{row['load_after']:.2f}"
        )
        print(
            f"    {row['status']}; charged {row['charged_fraction_of_1C']:.4f} of 1C h; "
            f"V end {row['final_V']:.4f} V (min {row['min_V']:.4f}); "
            f"max conservation error {row['max_conservation_error']:.2e}; "
            f"plated {100 * row['plated_fraction']:.1f} % of the charge"
        )
    plain, hooked = rows
    print(
        f"ratio (with hook / without): wall {hooked['wall_s'] / plain['wall_s']:.3f}; "
        f"time inside the hook {hooked['hook_s']:.2f} s = "
        f"{100 * hooked['hook_s'] / hooked['wall_s']:.1f} % of the run; "
        f"bar 120 s: {plain['wall_s'] / 120.0:.2f} x"
    )


if __name__ == "__main__":
    main()
