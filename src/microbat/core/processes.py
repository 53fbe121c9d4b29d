"""Worker processes that end with the work, and with their parent.

:func:`worker_pool` is a :class:`~concurrent.futures.ProcessPoolExecutor` (spawned
processes) that a caller can leave at any moment: on an exception, Ctrl-C
(``KeyboardInterrupt``) or a SIGTERM turned into one, its workers are terminated
at once instead of being waited for. Each worker also

* ignores SIGINT, so that Ctrl-C in a terminal (sent to the whole process group)
  is handled by the parent alone, which then ends the workers (no traceback from
  every worker), and
* runs a watchdog thread that ends the worker when its parent process is gone (its
  parent PID changes, e.g. the parent was killed with SIGKILL), so no worker is
  left running under PID 1. ``prctl(PR_SET_PDEATHSIG)`` would do this on Linux
  only; the watchdog is portable.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

__all__ = ["WATCHDOG_INTERVAL_S", "terminate_workers", "worker_pool"]

#: How often (s) a worker checks that its parent is still alive.
WATCHDOG_INTERVAL_S = 1.0


def _watch_parent(parent: int, interval: float) -> None:
    """Initializer of a worker: ignore SIGINT, exit when ``parent`` is gone."""
    import signal
    import threading
    import time

    with contextlib.suppress(ValueError, OSError):  # not the main thread / no signals
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="microbat-parent-watchdog", daemon=True).start()


def terminate_workers(pool: Any) -> None:
    """Cancel what is queued and terminate the processes of ``pool`` now (no waiting)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        with contextlib.suppress(Exception):
            p.terminate()
    for p in procs:
        with contextlib.suppress(Exception):
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join(timeout=5)


@contextlib.contextmanager
def worker_pool(n_workers: int) -> Iterator[Any]:
    """A pool of ``n_workers`` spawned processes, terminated if the block is left early.

    Parameters
    ----------
    n_workers : int
        Number of worker processes.

    Yields
    ------
    concurrent.futures.ProcessPoolExecutor
        Submit work with ``map``/``submit``. On a normal exit the pool is shut
        down after its work; on any exception (``KeyboardInterrupt`` included) the
        workers are terminated first and the exception goes on.

    Examples
    --------
    >>> with worker_pool(1) as pool:  # doctest: +SKIP
    ...     list(pool.map(abs, [-1, 2]))
    [1, 2]
    """
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(
        n_workers,
        mp_context=mp.get_context("spawn"),
        initializer=_watch_parent,
        initargs=(os.getpid(), WATCHDOG_INTERVAL_S),
    )
    try:
        yield pool
    except BaseException:
        terminate_workers(pool)
        raise
    pool.shutdown(wait=True)
