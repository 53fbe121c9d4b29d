"""Time of the micro-informed P2D/DFN rate-capability table, per rate and whole command.

Usage::

    python benchmarks/bench_p2d.py [--repeat 3] [--model DFN] [--no-cli] [--synthetic]
    python benchmarks/bench_p2d.py --geometry 10     # only the geometry-input comparison

Measured, for the Chen2020 (LG M50) set and the default six rates (C/10, C/2, 1C,
2C, 3C, 5C):

* ``import pybamm`` (a fresh interpreter), the model build and the per-rate solve
  time of :func:`microbat.cell.rate_capability` (first call: cold, then warm), with
  the breakdown included;
* the whole command ``microbat discharge --rates 0.1,0.5,1,2,3,5 --json`` in a
  subprocess (interpreter start, imports, build, solves, breakdown, JSON, exit);
* serial against ``threads=2`` (IDAKLU solving the rates together with OpenMP);
* the named peer: plain PyBaMM used the usual way, one ``pybamm.Simulation`` per
  rate with ``solve(..., initial_soc=1)`` (which rebuilds for each rate); the ratio
  printed is peer time / microbat time (above 1: microbat faster).

With ``--synthetic``, three synthetic positive electrodes (``microbat.synth``:
spheres, a denser packing of smaller spheres, and oblate flakes lying in the plane —
anisotropic) are measured with :meth:`MicroProperties.from_microstructure`
(diffusion-solve τ through the thickness and, for reference, in-plane) and
:func:`microbat.cell.compare_transport` prints the Bruggeman vs micro-informed
table for each in the Chen2020 cell.

With ``--geometry N`` (alone): N random designs of the Chen2020 cell (positive
thickness, porosity, active fraction, radius, exchange-current scale, negative
thickness with the N/P ratio kept; seeded), each discharged at C/10 and 2C (the
design objectives' rates) by the peer, a DFN built per design (``get_simulator``
as before), and by one DFN with the geometry as PyBaMM inputs
(``geometry_inputs=True``, PyBaMM's symbolic mesh). Printed: the time per design
of each (build + solves), the warm solve time of each, the ratio, the largest
relative difference of capacity and energy, peak RSS and the load average.

The machine is shared: the best of ``--repeat`` runs is reported, and the load
average is printed next to the numbers.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

RATES = (0.1, 0.5, 1.0, 2.0, 3.0, 5.0)


def _load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover
        return "n/a"


def time_import_pybamm(repeat: int) -> float:
    best = float("inf")
    env = {**os.environ, "PYBAMM_DISABLE_TELEMETRY": "true"}
    code = "import time; t = time.perf_counter(); import pybamm; print(time.perf_counter() - t)"
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
        best = min(best, float(out.stdout.strip()))
    return best


def time_cli(repeat: int, model: str) -> float:
    best = float("inf")
    rates = ",".join(f"{c:g}" for c in RATES)
    code = "from microbat.cli import main; main()"
    cmd = [sys.executable, "-c", code, "discharge", "--rates", rates, "--json", "--model", model]
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        best = min(best, time.perf_counter() - t)
    return best


def time_peer(model: str) -> tuple[float, list[float]]:
    import pybamm

    per = []
    t0 = time.perf_counter()
    for c in RATES:
        t = time.perf_counter()
        pv = pybamm.ParameterValues("Chen2020")
        pv["Current function [A]"] = c * pv["Nominal cell capacity [A.h]"]
        sim = pybamm.Simulation(getattr(pybamm.lithium_ion, model)(), parameter_values=pv)
        sim.solve([0, 1.2 * 3600 / c], initial_soc=1.0)
        per.append(time.perf_counter() - t)
    return time.perf_counter() - t0, per


SYNTHETIC = {
    "spheres": {},
    "dense": {"active_fraction": 0.62, "cbd_fraction": 0.08, "mean_radius": 3e-6},
    "flakes (anisotropic)": {"aspect_ratio": 0.3, "orientation": 0},
}


def geometry(n: int, seed: int = 0) -> None:
    """Designs one after another: a DFN per design against one with geometry inputs."""
    import resource

    import numpy as np

    from microbat.cell import CellParameters, bridge

    p0 = CellParameters.from_name("chen2020")
    rng = np.random.default_rng(seed)
    designs = []
    for _ in range(n):
        eps = rng.uniform(0.25, 0.45)
        th = rng.uniform(40e-6, 120e-6)
        act = (1.0 - eps) * rng.uniform(0.85, 0.95)
        ratio = th * act / (p0.positive.thickness_m * p0.positive.active_fraction)
        designs.append(
            p0.with_values(
                {
                    "positive.porosity": eps,
                    "positive.active_fraction": act,
                    "positive.thickness_m": th,
                    "positive.particle_radius_m": float(
                        np.exp(rng.uniform(np.log(1.5e-6), np.log(4.5e-6)))
                    ),
                    "positive.exchange_current_scale": rng.uniform(0.7, 1.5),
                    "negative.thickness_m": p0.negative.thickness_m * ratio,
                    "cell.nominal_capacity_Ah": p0.cell.nominal_capacity_Ah * ratio,
                },
                source="bench",
            )
        )
    rates = (0.1, 2.0)
    out: dict[str, tuple[float, list[float], list[tuple[float, float]]]] = {}
    print(f"\n{n} designs x {rates} C, DFN, load {_load()}")
    for label, flag in (("rebuilt per design", False), ("geometry inputs", True)):
        bridge._CACHE.clear()
        t0 = time.perf_counter()
        solves: list[float] = []
        values: list[tuple[float, float]] = []
        for p in designs:
            sim = bridge.get_simulator(p, geometry_inputs=flag)
            for r in sim.run(rates, params=p, on_failure="record"):
                solves.append(r.curve.solve_time_s)
                values.append((r.curve.final_capacity_Ah, r.curve.energy_Wh))
        out[label] = (time.perf_counter() - t0, solves, values)
        total = out[label][0]
        warm = float(np.median(solves[len(rates) :: len(rates)]))  # the C/10 solves but the first
        print(
            f"  {label:20s}: {total:6.2f} s = {total / n:.3f} s per design; median C/10 "
            f"solve {warm:.3f} s; load {_load()}"
        )
    (ta, _, va), (tb, _, vb) = out.values()
    cap = max(abs(b[0] / a[0] - 1) for a, b in zip(va, vb, strict=True) if a[0] == a[0])
    energy = max(abs(b[1] / a[1] - 1) for a, b in zip(va, vb, strict=True) if a[1] == a[1])
    print(
        f"  ratio rebuilt / geometry inputs: {ta / tb:.2f}x; largest relative difference: "
        f"capacity {cap:.1e}, energy {energy:.1e}; peak RSS "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB"
    )


def synthetic(shape: int = 80, seed: int = 1) -> None:
    from microbat import synth
    from microbat.cell import CellParameters, MicroProperties, compare_transport

    params = CellParameters.from_name("chen2020")
    for name, kw in SYNTHETIC.items():
        t = time.perf_counter()
        ms = synth.electrode((shape,) * 3, voxel_size=0.5e-6, seed=seed, **kw)
        m = MicroProperties.from_microstructure(ms, axis=0)
        m_in = MicroProperties.from_microstructure(ms, axis=1, solid_tortuosity=False)
        t_micro = time.perf_counter() - t
        r = compare_transport(params, m)
        print(
            f"\n{name}: {shape}³ voxels of 0.5 µm, ε = {m.porosity:.3f}, "
            f"τ_e through-plane {m.tau_electrolyte:.2f} (in-plane {m_in.tau_electrolyte:.2f}; "
            f"Bruggeman {r.tau_electrolyte_bruggeman:.2f}), τ_s {m.tau_solid:.2f}, "
            f"a = {m.specific_surface_area_per_m:.3g} 1/m, R = {1e6 * m.particle_radius_m:.2f} µm "
            f"[{t_micro:.1f} s to measure, {r.provenance.wall_time_s:.1f} s to compare]"
        )
        print("  C-rate  Q Bruggeman  Q micro   ΔQ [%]   ΔV rms [mV]  ΔV max [mV]")
        for row in r.table():
            print(
                f"  {row['c_rate']:6g}  {row['capacity_bruggeman_Ah']:11.4f}  "
                f"{row['capacity_micro_Ah']:7.4f}  {row['capacity_difference_percent']:+7.1f}  "
                f"{1e3 * row['voltage_rms_V']:11.1f}  {1e3 * row['voltage_max_V']:11.1f}"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--model", default="DFN")
    ap.add_argument("--no-cli", action="store_true", help="skip the subprocess timings")
    ap.add_argument(
        "--synthetic", action="store_true", help="Bruggeman vs micro on 3 synthetic electrodes"
    )
    ap.add_argument(
        "--geometry", type=int, default=0, metavar="N", help="only: N designs, rebuilt vs inputs"
    )
    args = ap.parse_args()
    os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")
    if args.geometry:
        geometry(args.geometry)
        return

    print(f"load average before: {_load()} (2 shared cores; timings are noisy)")
    if not args.no_cli:
        print(
            f"import pybamm (fresh interpreter, best of {args.repeat}): "
            f"{time_import_pybamm(args.repeat):.2f} s"
        )

    from microbat.cell import CellParameters, bridge, rate_capability

    t = time.perf_counter()
    params = CellParameters.from_name("chen2020")
    print(f"load Chen2020 parameters: {time.perf_counter() - t:.2f} s")

    cold = rate_capability(params, c_rates=RATES, model=args.model)
    warm = min(
        (rate_capability(params, c_rates=RATES, model=args.model) for _ in range(args.repeat)),
        key=lambda r: r.total_time_s,
    )
    print(f"\n{args.model} rate capability, Chen2020, breakdown included")
    print(f"  build (once): {cold.build_time_s:.2f} s")
    print("  C-rate   capacity [A·h]  fraction  limit            cold [s]  warm [s]")
    for i, c in enumerate(RATES):
        print(
            f"  {c:6g}   {cold.capacity_Ah[i]:14.4f}  {cold.fraction[i]:8.3f}  "
            f"{cold.bottleneck_key[i]:15s}  {cold.solve_time_s[i]:8.3f}  "
            f"{warm.solve_time_s[i]:8.3f}"
        )
    print(
        f"  whole call: cold {cold.total_time_s:.2f} s, warm {warm.total_time_s:.2f} s "
        f"({warm.total_time_s / len(RATES):.3f} s per rate)"
    )

    bridge._CACHE.clear()
    rate_capability(params, c_rates=RATES, model=args.model, threads=2)  # build
    thr = min(
        (
            rate_capability(params, c_rates=RATES, model=args.model, threads=2)
            for _ in range(args.repeat)
        ),
        key=lambda r: r.total_time_s,
    )
    print(
        f"  threads=2 (IDAKLU OpenMP over rates), warm: {thr.total_time_s:.2f} s "
        f"(serial/threads = {warm.total_time_s / thr.total_time_s:.2f})"
    )

    peer_total, peer_per = time_peer(args.model)
    print(
        f"\npeer: plain PyBaMM, one Simulation per rate: {peer_total:.2f} s "
        f"({', '.join(f'{x:.2f}' for x in peer_per)})"
    )
    print(f"  ratio peer / microbat cold call: {peer_total / cold.total_time_s:.2f}")
    print(f"  ratio peer / microbat warm call: {peer_total / warm.total_time_s:.2f}")

    if not args.no_cli:
        cli = time_cli(args.repeat, args.model)
        print(
            f"\nwhole command `microbat discharge --rates 0.1,0.5,1,2,3,5 --json` "
            f"(best of {args.repeat}): {cli:.2f} s  [target < 5 s]"
        )
    if args.synthetic:
        synthetic()
    print(f"load average after: {_load()}")


if __name__ == "__main__":
    main()
