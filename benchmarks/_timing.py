"""Measuring helpers shared by the benchmark scripts (Linux ``/proc``; not part of microbat).

A benchmark measures one piece of work in a fresh worker process: it resets the
peak resident size before the work (:func:`reset_peak`, Linux ``clear_refs``),
reads the CPU time around it (:func:`cpu_s`) and the peak after it
(:func:`peak_bytes`), so that imports and warm-up do not count. The scripts
import this module as ``_timing`` (their own folder is first on ``sys.path``
when run as ``python benchmarks/bench_x.py``).
"""

from __future__ import annotations

import os
import resource

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """Current resident set size of this process (bytes)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def reset_peak() -> int:
    """Reset the peak resident size (Linux ``clear_refs``) and return the current one."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:  # pragma: no cover - older kernels: the lifetime peak is used
        pass
    return rss_bytes()


def peak_bytes() -> int:
    """Peak resident size since the last :func:`reset_peak` (``VmHWM``; bytes)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def cpu_s() -> float:
    """User plus system CPU time of this process (s)."""
    t = os.times()
    return t.user + t.system


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as printed next to every timing."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())
