"""Thread-pool limits for code whose parallelism is not in BLAS.

Sparse iterative solvers spend their time in single-threaded SciPy/PyAMG kernels and
call BLAS only on short vectors (norms, Gram–Schmidt). A multithreaded OpenBLAS or
MKL pool then costs more than it gives: its spinning threads compete with the
solver's own thread and with other processes for the cores (measured on 2 cores: a
residual norm of 25 ms instead of 10 µs while MKL PARDISO ran beside it).
"""

from __future__ import annotations

from typing import Any


class single_threaded_blas:
    """Context manager limiting BLAS/OpenMP pools to one thread.

    Parameters
    ----------
    which : str, optional
        A threadpoolctl user API or library (``"blas"``, ``"openblas"``, ...); all
        pools when omitted. A no-op without ``threadpoolctl`` (it comes with
        scikit-learn, a core dependency).
    """

    def __init__(self, which: str | None = None) -> None:
        self._which = which
        self._ctx: Any = None

    def __enter__(self) -> single_threaded_blas:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
            self._ctx = None
            return self
        self._ctx = threadpool_limits(1 if self._which is None else {self._which: 1})
        return self

    def __exit__(self, *exc: object) -> None:
        if self._ctx is not None:
            self._ctx.restore_original_limits()
