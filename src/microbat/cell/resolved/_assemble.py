"""Numba kernels of the fixed-pattern Jacobian assembly (:class:`._model._Pattern`).

Private module, imported lazily (compiled on first use, cached next to this file).

Why by hand: the Jacobian is the sum of a dozen terms (diffusion and conduction
Laplacians, reaction and storage diagonals, couplings), each with a fixed set of
slots in the union pattern. NumPy's ``bincount`` over all terms at once first
concatenates their values (at 64³ about ten million, 80 MB) and then sums them on
one core; with its scaling (two gathers) it was 10 % of a 64³ discharge. Here each
term is added into its slots in place, in parallel where the term's slots are all
different (every CSR term, and index terms without repeats), so the sum of each slot
runs in the same order whatever the number of threads.
"""

from __future__ import annotations

import numba as nb

from microbat.core.threads import prepare_numba

prepare_numba()  # pool threads sleep, not spin, while they wait (core.threads)

_OPTS = {"cache": True, "nogil": True}


@nb.njit(parallel=True, **_OPTS)
def add_unique(data, slot, vals):  # pragma: no cover - compiled
    """``data[slot[k]] += vals[k]`` for slots that are all different."""
    for k in nb.prange(slot.size):
        data[slot[k]] += vals[k]


@nb.njit(**_OPTS)
def add_repeated(data, slot, vals):  # pragma: no cover - compiled
    """``data[slot[k]] += vals[k]`` in order (slots may repeat)."""
    for k in range(slot.size):
        data[slot[k]] += vals[k]


@nb.njit(parallel=True, **_OPTS)
def scale(data, rows, cols, rs, cs, out):  # pragma: no cover - compiled
    """``out[k] = data[k] rs[rows[k]] cs[cols[k]]`` (``diag(rs) J diag(cs)``)."""
    for k in nb.prange(data.size):
        out[k] = data[k] * rs[rows[k]] * cs[cols[k]]
