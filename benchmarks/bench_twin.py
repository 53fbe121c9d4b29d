"""Wall time of the digital twin on the built-in synthetic phantom, stage by stage.

The bar (issue 8): the whole pipeline on the built-in phantom in under 5 minutes on
2 cores. The script runs the twin in a fresh folder (a cold run, including Numba
compilation unless cached and the PyBaMM model build), then reruns the same
command to time a resume (every stage reused), then changes one segmentation
setting to time a partial recomputation.

Usage::

    python benchmarks/bench_twin.py [--size 96] [--out DIR] [--json]
    python benchmarks/bench_twin.py --out-of-core 512 [--chunks 64] [--json]

Prints one line per stage (seconds) and the totals; ``--json`` prints them as JSON.

``--out-of-core N`` measures the chunked path instead: an N³ uint16 grayscale volume
is written to a Zarr store (a 128³ phantom tiled, so that writing it needs no N³
array in memory), and the twin runs on it with ``scale.chunks`` in a child process
whose peak resident memory is read from the OS. A second child runs the same twin
on a 96³ volume (the size of the analysis crop) for comparison (after a warm-up
run that fills the Numba caches).
A thread in the child samples its resident memory every 20 ms; the working memory
of a stage is its peak resident memory minus that at the stage's start, and the
largest of the chunked stages (denoise, segment, connectivity) is compared with
the size of the volume. The random-walk
cross-check is left out of these runs (it works on the analysis crop only and
would dominate the time). The result is then checked
against the in-memory functions on the central crop: NLM of the crop (with a halo)
against the chunked NLM, and the in-memory segmentation of the crop against the
chunked labels.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path


def _run(out: Path, size: int, extra: dict | None = None) -> tuple[float, object]:
    from microbat.pipeline.twin import run_twin

    t0 = time.perf_counter()
    res = run_twin(
        synthetic=True,
        out_dir=out,
        overrides={"synthetic.shape": [size, size, size], **(extra or {})},
    )
    return time.perf_counter() - t0, res


_CHILD = """
import json, resource, sys, threading, time
from microbat.pipeline.twin import run_twin

def current_rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20

state = {"stage": "", "peak": {}, "start": {}}
def sample():
    while True:
        st = state["stage"]
        if st:
            state["peak"][st] = max(state["peak"].get(st, 0.0), current_rss())
        time.sleep(0.02)
threading.Thread(target=sample, daemon=True).start()

def progress(e):
    if e.kind == "stage_start":
        state["start"][e.stage] = current_rss()
        state["stage"] = e.stage
    elif e.kind == "stage_end":
        state["peak"][e.stage] = max(state["peak"].get(e.stage, 0.0), current_rss())
        state["stage"] = ""

src, out, chunks, crop = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
t0 = time.perf_counter()
res = run_twin(src, voxel_size=4e-7, out_dir=out, progress=progress, overrides={
    "scale.chunks": chunks, "scale.analysis_crop": [crop],
    "denoise.search_radius": 2, "cell.c_rates": [0.1, 1.0, 3.0],
    "transport.random_walk": False})
print(json.dumps({
    "wall_s": time.perf_counter() - t0,
    "stages_s": {s.name: s.wall_time_s for s in res.stages},
    "status": {s.name: s.status for s in res.stages},
    "peak_rss_MiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "rss_at_stage_start_MiB": state["start"],
    "rss_peak_in_stage_MiB": state["peak"],
}))
"""


def _write_tiled(path: Path, n: int, tile: int = 128) -> tuple[int, int]:
    """An n³ uint16 Zarr volume tiled from a tile³ phantom; returns (bytes, float32 bytes)."""
    import numpy as np
    import zarr

    from microbat import synth

    ms = synth.electrode((tile, tile, tile), voxel_size=4e-7, seed=0)
    img = synth.phantom(ms, psf_sigma=1.0, snr=4.0, seed=1).image
    lo, hi = float(img.min()), float(img.max())
    t16 = np.round((img - lo) / (hi - lo) * 50000 + 5000).astype(np.uint16)
    z = zarr.open_array(str(path), mode="w", shape=(n, n, n), chunks=(64, 64, 64), dtype="u2")
    reps = -(-n // tile)
    for i0 in range(0, n, tile):  # one slab of `tile` planes at a time
        slab = np.tile(t16, (1, reps, reps))[: min(tile, n - i0), :n, :n]
        z[i0 : i0 + slab.shape[0]] = slab
    return n**3 * 2, n**3 * 4


def _child(src: Path, out: Path, chunks: int, crop: int) -> dict:
    import subprocess

    r = subprocess.run(
        [sys.executable, "-c", _CHILD, str(src), str(out), str(chunks), str(crop)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(r.stdout.strip().splitlines()[-1])


def _check_crop(src: Path, out: Path, n: int, edge: int = 96) -> dict:
    """Chunked results against the in-memory functions on the central crop."""
    import dask.array as da
    import numpy as np

    from microbat.imaging import denoise_nlm, segment

    den_res = json.loads((out / "stages/denoise/result.json").read_text())
    halo = 2 + 1  # search radius 2, patch 3
    a = (n - edge) // 2
    sl = slice(a - halo, a + edge + halo)
    raw = np.asarray(da.from_zarr(str(src))[sl, sl, sl].compute(), np.float32)
    mem = denoise_nlm(raw, patch_size=3, search_radius=2, strength=0.8, sigma=den_res["sigma_in"])
    core = (slice(halo, -halo),) * 3
    ooc = da.from_zarr(str(out / "stages/denoise/denoised.zarr"))[
        a : a + edge, a : a + edge, a : a + edge
    ].compute()
    lab_ooc = da.from_zarr(str(out / "stages/segment/labels.zarr"))[
        a : a + edge, a : a + edge, a : a + edge
    ].compute()
    lab_mem = segment(ooc, voxel_size=4e-7, spatial_prior="none", psf_sigma=None).labels
    span = float(raw.max() - raw.min())
    return {
        "crop": [a, a + edge],
        "denoise_max_relative_difference": float(np.abs(mem[core] - ooc).max()) / span,
        "labels_agreement_with_in_memory_segment_of_crop": float((lab_mem == lab_ooc).mean()),
    }


def out_of_core(n: int, chunks: int, as_json: bool) -> int:
    """The chunked path on an n³ volume: peak memory against the volume size."""
    tmp = Path(tempfile.mkdtemp(prefix="bench_twin_ooc_"))
    try:
        big = tmp / "big.zarr"
        nbytes, f32 = _write_tiled(big, n)
        small = tmp / "small.zarr"
        _write_tiled(small, 96, tile=96)
        _child(small, tmp / "t_warm", chunks=32, crop=96)  # fills the Numba caches
        base = _child(small, tmp / "t_small", chunks=32, crop=96)
        run = _child(big, tmp / "t_big", chunks=chunks, crop=96)
        check = _check_crop(big, tmp / "t_big", n)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    start, peak = run["rss_at_stage_start_MiB"], run["rss_peak_in_stage_MiB"]
    # working memory of a stage: its peak resident memory over that at its start
    work = {k: max(peak[k] - start[k], 0.0) for k in peak if k in start}
    b_start, b_peak = base["rss_at_stage_start_MiB"], base["rss_peak_in_stage_MiB"]
    work_small = {k: max(b_peak[k] - b_start[k], 0.0) for k in b_peak if k in b_start}
    # the same code on a 96^3 volume pays the same imports and kernel loading, so the
    # difference is what the chunked stages needed for the data of the large volume
    extra = {k: work[k] - work_small.get(k, 0.0) for k in ("denoise", "segment", "connectivity")}
    used = max(max(work[k] for k in extra), 1.0)
    record = {
        "size": n,
        "chunks": chunks,
        "volume_uint16_MiB": nbytes / 2**20,
        "volume_float32_MiB": f32 / 2**20,
        "peak_rss_MiB": run["peak_rss_MiB"],
        "fixed_cost_rss_MiB": base["peak_rss_MiB"],
        "rss_at_stage_start_MiB": start,
        "rss_peak_in_stage_MiB": peak,
        "stage_working_memory_MiB": work,
        "stage_working_memory_96_MiB": work_small,
        "chunked_stage_extra_over_96_MiB": extra,
        "chunked_stages_MiB": used,
        "volume_over_memory_uint16": nbytes / 2**20 / max(used, 1e-9),
        "volume_over_memory_float32": f32 / 2**20 / max(used, 1e-9),
        "wall_s": run["wall_s"],
        "stages_s": run["stages_s"],
        "status": run["status"],
        "check": check,
        "cpu_count": os.cpu_count(),
    }
    if as_json:
        print(json.dumps(record, indent=2))
        return 0
    print(
        f"microbat twin out of core: {n}^3 uint16 ({nbytes / 2**20:.0f} MiB; float32 "
        f"{f32 / 2**20:.0f} MiB), chunks {chunks}^3, {os.cpu_count()} CPUs"
    )
    for name, t in run["stages_s"].items():
        print(f"  {name:<14} {t:8.2f} s   {run['status'][name]}")
    print(f"  total          {run['wall_s']:8.2f} s")
    print(
        f"  peak RSS of the whole run {run['peak_rss_MiB']:.0f} MiB (same twin on 96^3: "
        f"{base['peak_rss_MiB']:.0f} MiB)"
    )
    print(
        "  working memory per stage (peak RSS in the stage minus RSS at its start): "
        + ", ".join(f"{k} {v:.0f} MiB" for k, v in work.items())
    )
    print(
        "  the same on the 96^3 volume: "
        + ", ".join(f"{k} {v:.0f} MiB" for k, v in work_small.items())
    )
    print(
        "  chunked stages, large minus 96^3: "
        + ", ".join(f"{k} {v:+.0f} MiB" for k, v in extra.items())
    )
    print(
        f"  volume / memory used: {record['volume_over_memory_uint16']:.1f}x (uint16 input), "
        f"{record['volume_over_memory_float32']:.1f}x (float32 denoised)"
    )
    print(
        f"  check on the central crop {check['crop']}: NLM max |diff| / range "
        f"{check['denoise_max_relative_difference']:.1e}, labels agree "
        f"{100 * check['labels_agreement_with_in_memory_segment_of_crop']:.2f} %"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=96, help="edge of the phantom in voxels")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: temporary)")
    ap.add_argument("--json", action="store_true", help="print JSON")
    ap.add_argument(
        "--out-of-core",
        type=int,
        default=None,
        metavar="N",
        help="measure the chunked path on an N^3 volume instead",
    )
    ap.add_argument("--chunks", type=int, default=64, help="chunk edge for --out-of-core")
    args = ap.parse_args(argv)
    if args.out_of_core:
        return out_of_core(args.out_of_core, args.chunks, args.json)

    tmp = None
    out = args.out
    if out is None:
        tmp = tempfile.mkdtemp(prefix="bench_twin_")
        out = Path(tmp) / "twin"
    elif out.exists():
        shutil.rmtree(out)
    try:
        cold, res = _run(out, args.size)
        warm, res2 = _run(out, args.size)
        part, res3 = _run(out, args.size, {"segment.beta": 1.0})
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        record = {
            "size": args.size,
            "cpu_count": os.cpu_count(),
            "cold_total_s": cold,
            "stages_s": {s.name: s.wall_time_s for s in res.stages},
            "status": {s.name: s.status for s in res.stages},
            "resume_total_s": warm,
            "resume_reused": [s.name for s in res2.stages if s.reused],
            "changed_segment_beta_total_s": part,
            "changed_segment_beta_recomputed": [s.name for s in res3.stages if not s.reused],
            "peak_rss_MB": rss_mb,
            "under_5_minutes": cold < 300.0,
            "report": str(res.report),
        }
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(record, indent=2))
        return 0
    print(f"microbat twin on the built-in phantom, {args.size}^3 voxels, {os.cpu_count()} CPUs")
    for name, t in record["stages_s"].items():
        print(f"  {name:<14} {t:8.2f} s   {record['status'][name]}")
    print(f"  {'total (cold)':<14} {cold:8.2f} s   bar 300 s: {'met' if cold < 300 else 'MISSED'}")
    print(f"  {'resume':<14} {warm:8.2f} s   (reused: {', '.join(record['resume_reused'])})")
    print(
        f"  {'segment.beta':<14} {part:8.2f} s   (recomputed: "
        f"{', '.join(record['changed_segment_beta_recomputed'])})"
    )
    print(f"  peak RSS {rss_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
