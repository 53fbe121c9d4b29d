"""Single-particle limit: one voxelised sphere against galvanostatic spherical diffusion.

With a highly conducting electrolyte the reaction is spread over the particle
surface and the lithium inside follows Fick's law with a constant surface flux
``j = I / (F 4π R²)`` (R: radius of the sphere of the same volume). The closed form
(Crank, *The Mathematics of Diffusion*, 2nd ed., eq. 6.43 for a constant flux)

    c(r, t) = c0 + (j R / D) [3τ + r²/(2R²) − 3/10
              − 2 Σ_n sin(λ_n r/R) / ((r/R) λ_n² sin λ_n) exp(−λ_n² τ)],  τ = D t / R²,

with tan λ_n = λ_n, is compared with the mean concentration of the surface voxels,
evaluated at the same voxel centres.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq

from microbat.cell.resolved import ResolvedOptions, simulate_discharge
from microbat.synth.phantoms import sphere

F = 96485.33212


def _roots(n: int = 200) -> np.ndarray:
    return np.array(
        [
            brentq(lambda x: np.tan(x) - x, k * np.pi + 1e-9, k * np.pi + np.pi / 2 - 1e-9)
            for k in range(1, n + 1)
        ]
    )


def sphere_concentration(r, t, *, c0, flux, radius, diffusivity):
    """Closed form above (flux in mol/m²/s into the sphere)."""
    lam = _roots()
    x = np.maximum(np.atleast_1d(r) / radius, 1e-12)
    tau = diffusivity * t / radius**2
    terms = np.sin(np.outer(x, lam)) / (x[:, None] * lam**2 * np.sin(lam))
    series = (terms * np.exp(-(lam**2) * tau)).sum(axis=1)
    return c0 + flux * radius / diffusivity * (3 * tau + 0.5 * x**2 - 0.3 - 2 * series)


def test_closed_form_mean_concentration():
    # the volume average of the closed form grows as c0 + 3 j t / R (lithium balance)
    r = np.linspace(0, 1, 4001)[1:]
    c = sphere_concentration(r, 500.0, c0=1.0, flux=1e-6, radius=1.0, diffusivity=1e-3)
    mean = np.trapezoid(c * 3 * r**2, r)
    assert mean == pytest.approx(1.0 + 3 * 1e-6 * 500.0, rel=1e-5)


def test_single_particle_surface_concentration():
    n, R = 10, 4.0
    h = 5.22e-6 / R  # the Chen2020 NMC particle radius, four voxels
    ms = sphere((n, n, n), R, voxel_size=h, center=(R, n / 2, n / 2))
    opt = ResolvedOptions(
        electrolyte_transport_scale=100.0,
        reaction_area="faces",
        dv_target_V=0.03,
        end_time_s=1800.0,
    )
    res = simulate_discharge(ms, c_rate=1.0, options=opt, snapshot_times=[600.0, 1200.0])
    assert res.complete, res.status
    act = ms.labels == 1
    r_eq = (3 * act.sum() * ms.voxel_volume / (4 * np.pi)) ** (1 / 3)
    j = res.current_A / F / (4 * np.pi * r_eq**2)
    pore_nb = np.zeros_like(act)
    for ax in range(3):
        for sh in (1, -1):
            rolled = np.roll(~act, sh, axis=ax)
            edge = [slice(None)] * 3
            edge[ax] = 0 if sh == 1 else -1
            rolled[tuple(edge)] = False  # no wrap-around
            pore_nb |= rolled
    surf = act & pore_nb
    idx = np.array(np.nonzero(surf)).T + 0.5
    r = np.linalg.norm((idx - np.array([R, n / 2, n / 2])) * h, axis=1)
    for snap in res.snapshots:
        num = float(snap.fields["c_s"][surf].mean())
        exact = float(
            sphere_concentration(
                r, snap.time_s, c0=17038.0, flux=j, radius=r_eq, diffusivity=4e-15
            ).mean()
        )
        assert abs(num / exact - 1) < 0.01, (snap.time_s, num, exact)
