"""The thread policy: one budget for Numba, BLAS and worker processes.

One setting decides how many cores microbat uses: :func:`set_threads` (the CLI's
``--threads N`` on every verb), else the environment variable ``MICROBAT_THREADS``,
else the cores available to the process (``os.sched_getaffinity``). It governs

* **Numba**: the thread pool of the parallel kernels (``NUMBA_NUM_THREADS`` before
  the pool starts, :func:`numba.set_num_threads` after);
* **BLAS**: one thread. microbat's linear algebra is sparse (SuperLU, PyAMG, its own
  kernels); BLAS only sees short vectors and small dense blocks, where a pool of
  spinning threads costs far more than it gives. Measured on the shared 2-core
  machine: a 16³ impedance spectrum by SuperLU took 0.6 s with BLAS on one thread
  and 5–70 s with OpenBLAS's default two, depending on the other load;
* **worker processes and threads** (impedance bands, the twin's Dask workers):
  :func:`split` gives ``workers × threads_each ≤ budget``.

Waiting threads sleep instead of spinning (``OMP_WAIT_POLICY=passive`` unless the
user set it, before the OpenMP pool of Numba starts): a spinning thread keeps a
core that another process, or the thread it waits for, needs. On the shared 2-core
machine (load 6–9) the 96³ one-axis tortuosity took 3–8 s with spinning threads and
0.4–0.6 s with sleeping ones (0.4 s on one thread).

A parallel region costs a launch and a barrier (10–50 µs on an idle core, a whole
scheduler time slice, milliseconds, when a core is taken), so kernels whose work per
call is small run serially: :func:`serial_below` and :data:`PARALLEL_MIN_WORK`.

Nothing here runs at ``import microbat``; the kernel modules call
:func:`prepare_numba` when they load, and the CLI calls :func:`set_threads` before
a verb runs.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator
from typing import Any

from microbat.core.errors import InvalidInputError

__all__ = [
    "ENV_VAR",
    "PARALLEL_MIN_WORK",
    "available_cores",
    "prepare_numba",
    "serial_below",
    "set_threads",
    "single_threaded_blas",
    "split",
    "thread_budget",
    "worker_threads",
]

#: Environment variable holding the thread budget (inherited by worker processes).
ENV_VAR = "MICROBAT_THREADS"

#: Calls of a parallel kernel with fewer elements (voxels, entries) than this run on
#: one thread. A call of 2²⁰ elements costs 5–6 ms on one core (the multigrid's
#: operator, 1.1 ms for a scattered add at 2¹⁸), about one scheduler time slice:
#: what a parallel launch costs when another process holds a core. Measured on the
#: shared 2-core machine (never idle during the measurement): two threads were not
#: faster than one at any size from 16³ to 200³, and the 48³ resolved discharge took
#: 72 s with a threshold of 2¹⁸, 63 s with 2²⁰ and 64 s on one thread, back to back.
PARALLEL_MIN_WORK = 1 << 20

_STATE: dict[str, Any] = {"budget": None}


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


def _parse(value: Any, what: str) -> int:
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError):
        n = 0
    if n < 1:
        raise InvalidInputError(f"{what} must be a positive whole number of threads, got {value!r}")
    return n


def thread_budget() -> int:
    """The number of threads microbat may use in all (see the module notes)."""
    if _STATE["budget"] is not None:
        return int(_STATE["budget"])
    env = os.environ.get(ENV_VAR)
    if env is not None and env.strip():
        return _parse(env, ENV_VAR)
    return available_cores()


def prepare_numba() -> None:
    """Set the environment Numba's thread pool starts with (once, before it starts).

    ``OMP_WAIT_POLICY=passive`` unless set, and ``NUMBA_NUM_THREADS`` = the budget
    when one was given (``MICROBAT_THREADS`` or :func:`set_threads`) and Numba is
    not loaded yet. A no-op once Numba has been imported by then.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    if "numba" in sys.modules:
        return
    if _STATE["budget"] is not None or os.environ.get(ENV_VAR, "").strip():
        n = min(thread_budget(), available_cores())
        os.environ.setdefault("NUMBA_NUM_THREADS", str(n))


def set_threads(n: int | str | None = None) -> int:
    """Set the thread budget of this process and apply it to Numba and BLAS.

    Parameters
    ----------
    n : int, optional
        Threads in all. Default: ``MICROBAT_THREADS``, else the cores available to
        the process.

    Returns
    -------
    int
        The budget now in force.

    Notes
    -----
    Worker processes inherit the budget through ``MICROBAT_THREADS``. Numba's pool
    is sized before it starts; once started (after a parallel kernel ran), the
    calling thread's count is set with :func:`numba.set_num_threads` (threads a
    library starts later begin with the pool size). BLAS pools are limited to one
    thread for the whole process (threadpoolctl).

    Examples
    --------
    >>> import microbat.core.threads as th
    >>> th.set_threads(1), th.thread_budget()  # doctest: +SKIP
    (1, 1)
    """
    budget = thread_budget() if n is None else _parse(n, "threads")
    _STATE["budget"] = budget
    os.environ[ENV_VAR] = str(budget)
    prepare_numba()
    if "numba" in sys.modules:
        _numba_threads(budget)
    _limit_blas_globally()
    return budget


def _numba_threads(n: int) -> None:
    import numba

    numba.set_num_threads(max(1, min(int(n), int(numba.config.NUMBA_NUM_THREADS))))


def _limit_blas_globally() -> None:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return
    with warnings.catch_warnings():
        # threadpoolctl warns when two OpenMP runtimes are loaded (environment-dependent)
        warnings.simplefilter("ignore", RuntimeWarning)
        threadpool_limits(1, user_api="blas")


def split(workers: int | None, tasks: int | None = None) -> tuple[int, int]:
    """Worker processes (or threads) and threads each, within the budget.

    Parameters
    ----------
    workers : int or None
        Workers asked for; ``None`` for as many as the budget allows.
    tasks : int, optional
        Independent pieces of work (no more workers than pieces).

    Returns
    -------
    (workers, threads_each)
        ``workers × threads_each ≤ budget``.

    Examples
    --------
    >>> import os
    >>> os.environ["MICROBAT_THREADS"] = "4"
    >>> split(None), split(2), split(8), split(None, tasks=3)
    ((4, 1), (2, 2), (4, 1), (3, 1))
    >>> del os.environ["MICROBAT_THREADS"]
    """
    budget = thread_budget()
    w = budget if workers is None else max(1, int(workers))
    if tasks is not None:
        w = min(w, max(1, int(tasks)))
    w = min(w, budget)
    return w, max(1, budget // w)


def worker_threads(n: int) -> None:
    """Apply a budget of ``n`` threads inside a worker process or thread.

    In a spawned process (before its kernels load) this is :func:`set_threads`; in a
    thread of this process it sets the calling thread's Numba threads only
    (thread-local).
    """
    import threading

    if threading.current_thread() is threading.main_thread():
        set_threads(n)
    else:
        prepare_numba()
        _numba_threads(n)


@contextlib.contextmanager
def serial_below(work: int, min_work: int | None = None) -> Iterator[None]:
    """Run the parallel Numba kernels called inside on one thread when ``work`` is small.

    Parameters
    ----------
    work : int
        Elements each call handles (voxels, entries).
    min_work : int, optional
        Threshold below which the calls run serially (default
        :data:`PARALLEL_MIN_WORK`, read at the call).

    Notes
    -----
    Numba's thread count is thread-local, so this affects only the calling thread;
    a parallel kernel launched on one thread runs inline (a few µs), without waking
    or waiting for other threads.
    """
    if work >= (PARALLEL_MIN_WORK if min_work is None else min_work) or "numba" not in sys.modules:
        yield
        return
    import numba

    old = numba.get_num_threads()
    if old == 1:
        yield
        return
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(old)


class single_threaded_blas:
    """Context manager limiting BLAS (or all) thread pools to one thread.

    Sparse iterative solvers spend their time in single-threaded SciPy/PyAMG kernels
    and call BLAS only on short vectors (norms, Gram–Schmidt). A multithreaded
    OpenBLAS or MKL pool then costs more than it gives: its spinning threads compete
    with the solver's own thread and with other processes for the cores (measured on
    2 cores: a residual norm of 25 ms instead of 10 µs while MKL PARDISO ran beside it).

    Parameters
    ----------
    which : str, optional
        ``"blas"`` (or a BLAS name: ``"openblas"``, ``"mkl"``, ``"blis"``) for the
        BLAS pools, ``"openmp"`` for OpenMP pools; all pools when omitted. A no-op
        without ``threadpoolctl``.

    Notes
    -----
    threadpoolctl matches a dictionary key against a user API (``"blas"``,
    ``"openmp"``) or a library's file-name prefix; a BLAS name such as
    ``"openblas"`` matched the prefix ``libopenblas`` of older wheels but not
    ``libscipy_openblas`` of current ones, so BLAS names mean every BLAS pool here.
    """

    def __init__(self, which: str | None = None) -> None:
        if which is not None and which not in ("openmp",):
            which = "blas"
        self._which = which
        self._ctx: Any = None

    def __enter__(self) -> single_threaded_blas:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
            self._ctx = None
            return self
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # OpenMP runtime clash notes
            self._ctx = threadpool_limits(1, user_api=self._which)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._ctx is not None:
            self._ctx.restore_original_limits()
