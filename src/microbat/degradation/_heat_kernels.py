"""Numba kernel of the Joule-heat accounting (private; compiled on first use).

One pass over the grid gives, per voxel, its share of the heat of its six faces,
the squared magnitude of the centre current density, and the absolute current
through its upper face along each axis. Every voxel gathers from its own faces, so
the parallel loop (over planes of axis 0) writes each output once and needs no
atomics; each face is evaluated from both of its voxels.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_OPTS = {"cache": True, "nogil": True}


@nb.njit(parallel=True, **_OPTS)
def face_heat(
    u, g0, g1, g2, sig, extra, use_extra, inv_area, heat, jsq, a0, a1, a2
):  # pragma: no cover
    """Heat, |j|² and face currents of one network (non-periodic grid).

    Parameters (all C-ordered 3D arrays of one shape unless said)
    -----------------------------------------------------------------
    u : potential (V). g0, g1, g2 : face conductances to the ``+1`` neighbour (S, 0
    where no face conducts). sig : conductivity per voxel (S/m) for the half-cell
    split: voxel ``p`` takes ``σ_q / (σ_p + σ_q)`` of the face's ``I² / g``.
    extra : shape (3, n0, n1, n2), current density (A/m²) added to each centre
    component before squaring (charge-transfer and held faces), read when
    ``use_extra``. inv_area : the three ``1 / A_a``.

    Outputs: heat (W, added to), jsq (A²/m⁴, written), a0, a1, a2 (A, written:
    ``|I|`` through the face to the ``+1`` neighbour).
    """
    n0, n1, n2 = u.shape
    for i in nb.prange(n0):
        for j in range(n1):
            for k in range(n2):
                up = u[i, j, k]
                sp = sig[i, j, k]
                q = 0.0
                s2 = 0.0
                for a in range(3):
                    # upper face
                    cur_up = 0.0
                    if a == 0:
                        if i + 1 < n0:
                            g = g0[i, j, k]
                            if g != 0.0:
                                du = up - u[i + 1, j, k]
                                cur_up = g * du
                                ss = sp + sig[i + 1, j, k]
                                if ss > 0:
                                    q += cur_up * du * sig[i + 1, j, k] / ss
                    elif a == 1:
                        if j + 1 < n1:
                            g = g1[i, j, k]
                            if g != 0.0:
                                du = up - u[i, j + 1, k]
                                cur_up = g * du
                                ss = sp + sig[i, j + 1, k]
                                if ss > 0:
                                    q += cur_up * du * sig[i, j + 1, k] / ss
                    else:
                        if k + 1 < n2:
                            g = g2[i, j, k]
                            if g != 0.0:
                                du = up - u[i, j, k + 1]
                                cur_up = g * du
                                ss = sp + sig[i, j, k + 1]
                                if ss > 0:
                                    q += cur_up * du * sig[i, j, k + 1] / ss
                    # lower face
                    cur_lo = 0.0
                    if a == 0:
                        if i > 0:
                            g = g0[i - 1, j, k]
                            if g != 0.0:
                                du = u[i - 1, j, k] - up
                                cur_lo = g * du
                                ss = sp + sig[i - 1, j, k]
                                if ss > 0:
                                    q += cur_lo * du * sig[i - 1, j, k] / ss
                    elif a == 1:
                        if j > 0:
                            g = g1[i, j - 1, k]
                            if g != 0.0:
                                du = u[i, j - 1, k] - up
                                cur_lo = g * du
                                ss = sp + sig[i, j - 1, k]
                                if ss > 0:
                                    q += cur_lo * du * sig[i, j - 1, k] / ss
                    else:
                        if k > 0:
                            g = g2[i, j, k - 1]
                            if g != 0.0:
                                du = u[i, j, k - 1] - up
                                cur_lo = g * du
                                ss = sp + sig[i, j, k - 1]
                                if ss > 0:
                                    q += cur_lo * du * sig[i, j, k - 1] / ss
                    ja = 0.5 * (cur_up + cur_lo) * inv_area[a]
                    if use_extra:
                        ja += extra[a, i, j, k]
                    s2 += ja * ja
                    if a == 0:
                        a0[i, j, k] = abs(cur_up)
                    elif a == 1:
                        a1[i, j, k] = abs(cur_up)
                    else:
                        a2[i, j, k] = abs(cur_up)
                heat[i, j, k] += q
                jsq[i, j, k] = s2


def warm() -> None:
    """Compile the kernel on a tiny grid (tests, benchmarks)."""
    z = np.zeros((2, 2, 2))
    face_heat(z, z, z, z, z, np.zeros((3, 2, 2, 2)), False, np.ones(3), z.copy(), z.copy(),
              z.copy(), z.copy(), z.copy())  # fmt: skip
