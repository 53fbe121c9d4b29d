"""Import time of microbat against its peers, each in a fresh interpreter.

Run: ``python benchmarks/bench_import.py``. Prints the median of several runs and
the ratio to microbat. Peers that are not installed are reported as such.
"""

from __future__ import annotations

import statistics
import subprocess
import sys


def import_time(module: str, repeats: int = 5) -> float | None:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    times = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if out.returncode != 0:
            return None
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def main() -> None:
    base = import_time("microbat")
    print(f"{'module':<12} {'import [s]':>10} {'ratio':>8}")
    print(f"{'microbat':<12} {base:>10.3f} {1.0:>8.1f}")
    for peer in ("porespy", "pybamm", "taufactor", "skimage", "numpy"):
        t = import_time(peer, repeats=3)
        if t is None:
            print(f"{peer:<12} {'not installed':>10}")
        else:
            print(f"{peer:<12} {t:>10.3f} {t / base:>8.1f}")


if __name__ == "__main__":
    main()
