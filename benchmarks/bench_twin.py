"""Wall time of the digital twin on the built-in synthetic phantom, stage by stage.

The bar (issue 8): the whole pipeline on the built-in phantom in under 5 minutes on
2 cores. The script runs the twin in a fresh folder (a cold run, including Numba
compilation unless cached and the PyBaMM model build), then reruns the same
command to time a resume (every stage reused), then changes one segmentation
setting to time a partial recomputation.

Usage::

    python benchmarks/bench_twin.py [--size 96] [--out DIR] [--json]

Prints one line per stage (seconds) and the totals; ``--json`` prints them as JSON.
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=96, help="edge of the phantom in voxels")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: temporary)")
    ap.add_argument("--json", action="store_true", help="print JSON")
    args = ap.parse_args(argv)

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
