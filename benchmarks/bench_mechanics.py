"""Voxel elasticity: microbat against scikit-fem on the same hexahedral mesh; screening speed.

Run::

    python benchmarks/bench_mechanics.py                 # 40³, 48³ against scikit-fem; 100³
    python benchmarks/bench_mechanics.py --sizes 100 --peer none
    python benchmarks/bench_mechanics.py --screening 200     # label + 10 C-rates on 200³

The problem: a synthetic NMC electrode (``microbat.synth.electrode``, 55 % active,
10 % carbon-binder, 0.4 µm voxels, particles of 4 µm mean radius), NMC811 (150 GPa,
ν = 0.25) and carbon-binder (1 GPa, ν = 0.3), the closed-form galvanostatic
concentration at 3C mapped on the particles as eigenstrain (relative to its mean),
the current-collector face clamped, every other face free.

Each measurement runs in a fresh interpreter (``--worker``) that builds the volume,
imports its library and warms it up on a small problem (Numba kernels load from the
cache, scikit-fem's forms are traced) so that imports are not timed, then times one
solve. Memory is the peak resident set size of the worker process (``ru_maxrss``,
imports included, about 0.25 GB for microbat and 0.2 GB for scikit-fem). CPU time
(user + system, all threads) is printed with the wall time, and the load average of
the machine before and after: the development machine is shared and both numbers
move with the load.

Peers (same mesh: every solid voxel one trilinear hexahedron, the same nodes):

* microbat — :class:`microbat.fv.elasticity.ElasticProblem`: fixed block pattern
  filled by a Numba kernel, smoothed-aggregation AMG with the six rigid-body modes,
  CG to ``‖f − K u‖ ≤ 1e-8 ‖f‖``;
* scikit-fem — ``ElementVector(ElementHex1())`` with the element-wise Lamé constants
  and the eigenstrain load as forms (2 × 2 × 2 Gauss points, exact on boxes),
  ``condense`` for the clamped face, and its conjugate-gradient solver
  (``solver_iter_pcg``) preconditioned by PyAMG smoothed aggregation with its
  defaults (the recipe of scikit-fem's examples for large systems: scalar
  aggregation, no near-null-space information), the same relative tolerance.

The stresses of both are compared voxel by voxel (microbat's stress recovery applied
to scikit-fem's displacement).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

H = 0.4e-6
RATE = 3.0


def problem(n: int, seed: int = 1, mean_radius: float = 4e-6):
    """Material index, Lamé constants and eigenstrain of the benchmark electrode."""
    from microbat.degradation import MechanicsParameters, galvanostatic_load, label_particles
    from microbat.fv.elasticity import lame
    from microbat.synth import electrode

    ms = electrode((n, n, n), voxel_size=H, mean_radius=mean_radius, seed=seed)
    params = MechanicsParameters()
    p = label_particles(ms)
    load = galvanostatic_load(p, params.active, RATE)
    act = ms.mask("active")
    phase = np.full(ms.shape, -1, np.int32)
    phase[act] = 0
    phase[ms.mask("cbd")] = 1
    c = load.concentration
    e = np.zeros(ms.shape)
    e[act] = params.active.partial_molar_volume_m3_per_mol * (c[act] - c[act].mean()) / 3
    mats = [lame(150e9, 0.25), lame(1e9, 0.3)]
    return phase, np.array([m[0] for m in mats]), np.array([m[1] for m in mats]), e


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_microbat(n: int) -> dict:
    from microbat.fv.elasticity import ElasticProblem

    ph, lam, mu, e = problem(16, mean_radius=1.2e-6)
    ElasticProblem(ph, lam, mu, H, faces={(0, 0): "clamped"}).solve(e)  # warm-up
    ph, lam, mu, e = problem(n)
    t0, c0 = time.perf_counter(), _cpu()
    prob = ElasticProblem(ph, lam, mu, H, faces={(0, 0): "clamped"}, theta=0.02)
    sol = prob.solve(e, rtol=1e-8)
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    np.save(f"/tmp/bench_mech_u_{n}.npy", sol.displacement)
    return {
        "peer": "microbat",
        "n": n,
        "solid_voxels": int((ph >= 0).sum()),
        "unknowns": sol.n_dofs,
        "wall_s": wall,
        "cpu_s": cpu,
        "iterations": sol.iterations,
        "residual": sol.residual,
        "timing": {k: round(v, 2) for k, v in sol.timing.items()},
        "levels": sol.details.get("levels"),
        "peak_rss_GB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
    }


def run_skfem(n: int) -> dict:
    import skfem
    from skfem.helpers import ddot, div, eye, sym_grad, trace

    from microbat.fv.elasticity import ElasticProblem

    @skfem.BilinearForm
    def a(u, v, w):
        eps = sym_grad(u)
        return ddot(eye(w.lam * trace(eps), 3) + 2 * w.mu * eps, sym_grad(v))

    @skfem.LinearForm
    def rhs(v, w):
        return w.k3e * div(v)

    def build(ph, lam, mu, e):
        # the same nodes and elements as microbat (its mesh only numbers them)
        prob = ElasticProblem(ph, lam, mu, H, spring=0.0)
        mesh = prob.mesh
        m = tuple(k + 1 for k in mesh.shape)
        coords = np.stack(np.unravel_index(mesh.nodes, m)).astype(float) * H
        vi = np.stack(np.unravel_index(mesh.voxels, mesh.shape))
        order = [(0, 0, 0), (0, 0, 1), (0, 1, 0), (1, 0, 0), (0, 1, 1), (1, 0, 1), (1, 1, 0),
                 (1, 1, 1)]  # fmt: skip
        t = np.stack(
            [mesh.node_map[np.ravel_multi_index((vi[0] + i, vi[1] + j, vi[2] + k), m)]
             for i, j, k in order]
        )  # fmt: skip
        pe = ph.reshape(-1)[mesh.voxels]
        k3e = (3 * lam + 2 * mu)[pe] * e.reshape(-1)[mesh.voxels]
        return coords, t, lam[pe], mu[pe], k3e, prob

    def solve(coords, t, le, me, k3e):
        basis = skfem.Basis(
            skfem.MeshHex(coords, t), skfem.ElementVector(skfem.ElementHex1()), intorder=2
        )
        nq = basis.X.shape[-1]
        rep = lambda v: np.repeat(v[:, None], nq, 1)  # noqa: E731
        A = skfem.asm(a, basis, lam=rep(le), mu=rep(me))
        b = skfem.asm(rhs, basis, k3e=rep(k3e))
        D = basis.get_dofs(lambda x: x[0] < 1e-12).all()
        t1 = time.perf_counter()
        import pyamg

        ac, bc, xc, idx = skfem.condense(A, b, D=D)
        pc = pyamg.smoothed_aggregation_solver(ac).aspreconditioner()
        u = skfem.solve(ac, bc, xc, idx, solver=skfem.utils.solver_iter_pcg(M=pc, rtol=1e-8))
        return u[basis.nodal_dofs].T, time.perf_counter() - t1

    solve(*build(*problem(16, mean_radius=1.2e-6))[:5])  # warm-up
    ph, lam, mu, e = problem(n)
    coords, t, le, me, k3e, prob = build(ph, lam, mu, e)
    t0, c0 = time.perf_counter(), _cpu()
    us, solve_s = solve(coords, t, le, me, k3e)
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    out = {
        "peer": "scikit-fem",
        "n": n,
        "unknowns": int(us.size),
        "wall_s": wall,
        "cpu_s": cpu,
        "timing": {"assembly_s": round(wall - solve_s, 2), "solve_s": round(solve_s, 2)},
        "peak_rss_GB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
    }
    path = f"/tmp/bench_mech_u_{n}.npy"
    if os.path.exists(path):
        um = np.load(path)
        sm, _, _ = prob._recover(um, e)
        ss, _, _ = prob._recover(us, e)
        out["stress_max_rel_diff"] = float(np.nanmax(np.abs(ss - sm)) / np.nanmax(np.abs(sm)))
        out["displacement_max_rel_diff"] = float(np.abs(us - um).max() / np.abs(um).max())
    return out


def run_screening(n: int, rates: int = 10) -> dict:
    from microbat.degradation import label_particles, screen_particles
    from microbat.synth import electrode

    small = electrode((32, 32, 32), voxel_size=H, mean_radius=2e-6, seed=2)
    screen_particles(label_particles(small), [1.0])  # warm-up
    ms = electrode((n, n, n), voxel_size=H, seed=1)
    t0, c0 = time.perf_counter(), _cpu()
    p = label_particles(ms)
    t1 = time.perf_counter()
    res = screen_particles(p, np.geomspace(0.5, 20, rates))
    t2 = time.perf_counter()
    return {
        "peer": "screening",
        "n": n,
        "particles": p.n,
        "rates": rates,
        "label_s": t1 - t0,
        "screen_s": t2 - t1,
        "wall_s": t2 - t0,
        "cpu_s": _cpu() - c0,
        "critical_c_rate_median": res.critical["median"],
        "peak_rss_GB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
    }


def worker(kind: str, n: int) -> None:
    fn = {"microbat": run_microbat, "scikit-fem": run_skfem, "screening": run_screening}[kind]
    print(json.dumps(fn(n)))


def spawn(kind: str, n: int, timeout: float) -> dict | None:
    try:
        r = subprocess.run(
            [sys.executable, __file__, "--worker", kind, str(n)],
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        print(f"  {kind} {n}³: no result within {timeout:.0f} s")
        return None
    if r.returncode != 0:
        tail = (r.stderr.strip().splitlines() or ["?"])[-1]
        print(f"  {kind} {n}³ failed: {tail}")
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="40,48,100", help="edges of the cubes (voxels)")
    ap.add_argument("--peer", default="scikit-fem", choices=["scikit-fem", "none"])
    ap.add_argument("--peer-max", type=int, default=48, help="largest size given to the peer")
    ap.add_argument(
        "--screening", type=int, default=200, help="edge of the screening cube (0: skip)"
    )
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]))
        return
    print("load average before:", " ".join(f"{v:.2f}" for v in os.getloadavg()))
    for n in (int(s) for s in args.sizes.split(",")):
        m = spawn("microbat", n, args.timeout)
        if m:
            print(
                f"{n}³ microbat: {m['unknowns']} unknowns ({m['solid_voxels']} solid voxels), "
                f"{m['wall_s']:.1f} s wall, {m['cpu_s']:.1f} s CPU, {m['iterations']} CG "
                f"iterations, {m['levels']} AMG levels, peak {m['peak_rss_GB']:.2f} GB, "
                f"{m['timing']}"
            )
        if args.peer == "none" or n > args.peer_max:
            continue
        s = spawn("scikit-fem", n, args.timeout)
        if s:
            print(
                f"{n}³ scikit-fem: {s['wall_s']:.1f} s wall, {s['cpu_s']:.1f} s CPU, peak "
                f"{s['peak_rss_GB']:.2f} GB, {s['timing']}; stresses differ by "
                f"{s.get('stress_max_rel_diff', float('nan')):.1e} of the largest"
            )
        if m and s:
            print(
                f"{n}³ ratio scikit-fem / microbat: wall {s['wall_s'] / m['wall_s']:.1f}×, "
                f"CPU {s['cpu_s'] / m['cpu_s']:.1f}×"
            )
        print("  load average:", " ".join(f"{v:.2f}" for v in os.getloadavg()))
    if args.screening:
        r = spawn("screening", args.screening, args.timeout)
        if r:
            print(
                f"screening {args.screening}³: {r['particles']} particles, labelling "
                f"{r['label_s']:.1f} s + {r['rates']} C-rates {r['screen_s']:.2f} s = "
                f"{r['wall_s']:.1f} s wall ({r['cpu_s']:.1f} s CPU), peak "
                f"{r['peak_rss_GB']:.2f} GB; median critical rate {r['critical_c_rate_median']}"
            )
    print("load average after:", " ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
