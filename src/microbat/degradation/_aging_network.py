r"""Geometry of the aging model and the current distribution across the particles.

Geometry (:func:`aging_geometry`)
---------------------------------
Every labelled particle (:func:`~microbat.degradation.particles.label_particles`) gets
its volume, equivalent radius, the depth of its centroid along the thickness axis
and its interface with the electrolyte: the faces between its voxels and
electrolyte voxels are counted per particle, and the counts are scaled so that they
add up to the active/electrolyte interface area measured by
:func:`microbat.imaging.metrics.interface_areas` (normal-weighted voxel faces,
within 0.5 % on digital spheres, positive wherever the phases share a face): a face
count alone over-estimates an isotropic surface by 3/2. The share of the measured
area that falls on crumbs (active voxels too small to be particles) is dropped with
them.

Current distribution (:func:`distribute`)
-----------------------------------------
A depth-resolved homogenised network (the porous-electrode transmission line of
Newman & Tobias 1962, discretised on the image's planes): along the thickness, one
node of the solid and one of the electrolyte per plane; between neighbouring
planes the conductances ``σ_eff A_x / Δz`` and ``κ_eff A_x / Δz`` (``A_x`` the
cross-section, harmonic means at the faces) with

* ``κ_eff(z) = κ ε(z) / τ`` — the plane's electrolyte fraction and the image's
  electrolyte tortuosity factor along the thickness (microbat's steady diffusion
  solve, :func:`microbat.transport.tortuosity`), the micro-informed value of the
  cell bridge;
* ``σ_eff(z) = σ_s φ_s(z)^{1.5}`` — Bruggeman on the plane's solid fraction (the
  solid barely limits a graphite electrode);

and in each plane, the particles whose centroid lies in it as parallel branches
between the two nodes: particle ``k`` conducts

.. math::

    G_k = \frac{A_{o,k}}{R_{ct} + ρ_{SEI} δ_{o,k}}
        + \frac{A_{cr,k}}{R_{ct} + ρ_{SEI} δ_{cr,k}},

its original surface and its crack faces each with its film, ``R_ct = RT/(F i_0)``
the linearised Butler–Volmer resistance. The current enters the solid at the
collector (index 0) and leaves through the electrolyte at the separator face, held
at 0 V through half a plane of electrolyte. The network is linear, so it is solved
once for 1 A and scaled: particle ``k`` carries the share ``f_k = G_k Δφ_k`` of the
current. The electrode's resistance is the collector potential per ampere.

Assumptions: linear kinetics (small overpotentials), no concentration polarisation
of the electrolyte or the solid (the shares are those of the ohmic and kinetic
resistances only), one potential per plane (lateral gradients neglected), each
particle's branch at its centroid's depth.

References
----------
.. [1] J. Newman, C. W. Tobias, "Theoretical analysis of current distribution in
   porous electrodes", J. Electrochem. Soc. 109, 1183 (1962), doi:10.1149/1.2425269.
.. [2] C.-H. Chen et al., "Development of experimental techniques for
   parameterization of multi-scale lithium-ion battery models", J. Electrochem.
   Soc. 167, 080534 (2020), doi:10.1149/1945-7111/ab9050.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from microbat.core.errors import InvalidInputError, PhaseError
from microbat.core.microstructure import Microstructure
from microbat.degradation.particles import Particles

__all__ = [
    "AgingGeometry",
    "Distribution",
    "aging_geometry",
    "distribute",
    "network_impedance",
    "sphere_geometry",
]


@dataclass(frozen=True)
class AgingGeometry:
    """Per-particle geometry and the depth discretisation of the network.

    Attributes
    ----------
    n : int
        Number of particles.
    volume_m3, radius_m, area_m2 : ndarray (n,)
        Volume, equivalent radius, active/electrolyte interface area.
    layer : ndarray of int (n,)
        Plane of each particle's centroid along the thickness axis.
    n_layers : int
        Planes of the network (from the collector to the last plane with active
        material).
    layer_thickness_m : float
        Plane spacing ``Δz``.
    cross_section_m2 : float
        Area of a plane ``A_x``.
    porosity : ndarray (n_layers,)
        Electrolyte fraction per plane.
    solid_fraction : ndarray (n_layers,)
        Electron-conducting fraction per plane.
    tortuosity : float
        Electrolyte tortuosity factor along the thickness.
    labels_mid : ndarray of int32 (2D)
        Particle labels on the mid-plane across the thickness (thickness first),
        for the per-particle maps.
    """

    n: int
    volume_m3: np.ndarray
    radius_m: np.ndarray
    area_m2: np.ndarray
    layer: np.ndarray
    n_layers: int
    layer_thickness_m: float
    cross_section_m2: float
    porosity: np.ndarray
    solid_fraction: np.ndarray
    tortuosity: float
    labels_mid: np.ndarray

    @property
    def depth_m(self) -> np.ndarray:
        """Depth of each particle's centroid plane from the collector (m)."""
        return (self.layer + 0.5) * self.layer_thickness_m


def _face_counts(labels: np.ndarray, fluid: np.ndarray, n: int) -> np.ndarray:
    """Faces between each particle's voxels and fluid voxels (per particle)."""
    counts = np.zeros(n + 1, np.int64)
    for ax in range(labels.ndim):
        lo = [slice(None)] * labels.ndim
        hi = [slice(None)] * labels.ndim
        lo[ax] = slice(None, -1)
        hi[ax] = slice(1, None)
        la, lb = labels[tuple(lo)], labels[tuple(hi)]
        fa, fb = fluid[tuple(lo)], fluid[tuple(hi)]
        counts += np.bincount(la[fb & (la > 0)], minlength=n + 1)
        counts += np.bincount(lb[fa & (lb > 0)], minlength=n + 1)
    return counts[1:]


def aging_geometry(
    ms: Microstructure, particles: Particles, *, tortuosity: float | None = None
) -> AgingGeometry:
    """Per-particle volumes, areas and depths, and the planes of the network.

    Parameters
    ----------
    ms : Microstructure
        3D labelled image with electrolyte and active phases and a voxel size.
    particles : Particles
        Its labelled particles.
    tortuosity : float, optional
        Electrolyte tortuosity factor along the thickness; default: computed by a
        steady diffusion solve on the image.

    Returns
    -------
    AgingGeometry

    Raises
    ------
    PhaseError
        No electrolyte phase, or no particle touches the electrolyte.
    NotPercolatingError
        The electrolyte does not cross the electrode (when τ is computed).
    """
    from scipy import ndimage as ndi

    from microbat.imaging.metrics import interface_areas

    if ms.ndim != 3:
        raise InvalidInputError("the aging model needs a 3D image")
    electrolyte = [p.name for p in ms.phases_with_role("electrolyte")]
    active = [p.name for p in ms.phases_with_role("active")]
    if not electrolyte:
        raise PhaseError(
            f"the image has no electrolyte phase (phases: {ms.phases.to_spec()}); SEI grows on "
            "the active/electrolyte interface (give the pore phase, e.g. --phases pore=0,...)"
        )
    fluid = ms.mask(",".join(electrolyte))
    n = particles.n
    faces = _face_counts(particles.labels, fluid, n)
    all_active = ms.mask(",".join(active))
    lab_all = np.where(all_active, 1, 0).astype(np.int32)
    total_faces = int(_face_counts(lab_all, fluid, 1)[0])
    if total_faces == 0 or faces.sum() == 0:
        raise PhaseError("no active particle touches the electrolyte: there is no SEI interface")
    areas = interface_areas(ms)
    measured = sum(
        v
        for (a, b), v in areas.items()
        if (a in active and b in electrolyte) or (b in active and a in electrolyte)
    )
    if not (math.isfinite(measured) and measured > 0.0):
        raise PhaseError(
            f"the measured active/electrolyte interface area is {measured:g} m² although "
            f"{total_faces} voxel faces join the phases: there is no SEI interface to age"
        )
    area = faces * (measured / total_faces)
    ax = ms.thickness_axis
    h = tuple(float(v) for v in ms.voxel_size)
    idx = np.arange(1, n + 1)
    centroid = np.asarray(ndi.center_of_mass(np.ones(ms.shape, np.uint8), particles.labels, idx))
    z = centroid[:, ax] if n else np.empty(0)
    on_axis = np.moveaxis(all_active, ax, 0).reshape(ms.shape[ax], -1).any(axis=1)
    n_layers = int(np.flatnonzero(on_axis).max()) + 1
    layer = np.clip(np.floor(z + 0.5).astype(np.int64), 0, n_layers - 1)
    fl = np.moveaxis(fluid, ax, 0)[:n_layers].reshape(n_layers, -1).mean(axis=1)
    solid = np.moveaxis(ms.mask("solid"), ax, 0)[:n_layers].reshape(n_layers, -1).mean(axis=1)
    if tortuosity is None:
        from microbat.transport import tortuosity as _tortuosity

        tr = _tortuosity(ms, phase=",".join(electrolyte), axis=ax, keep_field=False)
        t_ax = tr.tau[ax] if tr.tau else None
        tau = float(t_ax) if t_ax is not None else math.nan
        if not math.isfinite(tau) or tau <= 0:
            raise InvalidInputError(
                "the electrolyte tortuosity along the thickness could not be computed; give "
                "tortuosity explicitly"
            )
    else:
        tau = float(tortuosity)
        if not (math.isfinite(tau) and tau >= 1.0):
            raise InvalidInputError(f"tortuosity must be a number >= 1, got {tortuosity!r}")
    other = [a for a in range(3) if a != ax]
    cross = h[other[0]] * ms.shape[other[0]] * h[other[1]] * ms.shape[other[1]]
    mid = np.take(particles.labels, ms.shape[other[0]] // 2, axis=other[0])
    mid = np.moveaxis(mid, ax if ax < other[0] else ax - 1, 0)
    return AgingGeometry(
        n=n,
        volume_m3=np.asarray(particles.volume_m3, float),
        radius_m=np.asarray(particles.equivalent_radius_m, float),
        area_m2=area.astype(float),
        layer=layer,
        n_layers=n_layers,
        layer_thickness_m=h[ax],
        cross_section_m2=cross,
        porosity=fl,
        solid_fraction=solid,
        tortuosity=tau,
        labels_mid=np.ascontiguousarray(mid, dtype=np.int32),
    )


def sphere_geometry(
    radius_m: float | np.ndarray,
    *,
    thickness_m: float = 50e-6,
    porosity: float = 0.3,
    tortuosity: float = 1.0,
) -> AgingGeometry:
    """Free spheres in one plane: the homogeneous limit (every particle alike).

    Each particle is a sphere of the given radius with its whole surface ``4πR²``
    wetted; all sit in one plane of the network of the given thickness, so they
    share the current by their conductances alone. This is the geometry of a
    single-particle (SPM-like) model, for comparisons with PyBaMM.

    Parameters
    ----------
    radius_m : float or array
        Radii (one particle per entry).
    thickness_m, porosity, tortuosity : float
        Plane thickness, electrolyte fraction and tortuosity of the network.

    Returns
    -------
    AgingGeometry
    """
    r = np.atleast_1d(np.asarray(radius_m, float))
    if r.size == 0 or not np.all(np.isfinite(r) & (r > 0)):
        raise InvalidInputError(f"sphere radii must be positive, got {radius_m!r}")
    vol = 4.0 / 3.0 * math.pi * r**3
    cross = float(vol.sum()) / ((1.0 - porosity) * thickness_m)
    return AgingGeometry(
        n=r.size,
        volume_m3=vol,
        radius_m=r,
        area_m2=4.0 * math.pi * r**2,
        layer=np.zeros(r.size, np.int64),
        n_layers=1,
        layer_thickness_m=float(thickness_m),
        cross_section_m2=cross,
        porosity=np.array([porosity]),
        solid_fraction=np.array([1.0 - porosity]),
        tortuosity=float(tortuosity),
        labels_mid=np.arange(1, r.size + 1, dtype=np.int32)[None, :],
    )


@dataclass(frozen=True)
class Distribution:
    """Solution of the network for 1 A.

    Attributes
    ----------
    share : ndarray (n,)
        Fraction of the electrode current carried by each particle (sums to 1).
    potential_V : ndarray (n,)
        ``φ_s − φ_e`` at each particle's plane per ampere (V/A).
    resistance_ohm : float
        Collector potential per ampere (Ω).
    """

    share: np.ndarray
    potential_V: np.ndarray
    resistance_ohm: float


def _solve(
    geom: AgingGeometry, g_layer: np.ndarray, kap: np.ndarray, sig: np.ndarray
) -> np.ndarray:
    """Node potentials ``[s0, e0, s1, e1, ...]`` for 1 A into the solid at the collector.

    ``g_layer`` may be complex (small-signal admittances); the banded system is
    solved in its dtype.
    """
    from scipy.linalg import solve_banded

    nl = geom.n_layers
    dz, ax_area = geom.layer_thickness_m, geom.cross_section_m2
    ge = ax_area / dz * 2.0 / (1.0 / kap[:-1] + 1.0 / kap[1:])
    gs = ax_area / dz * 2.0 / (1.0 / sig[:-1] + 1.0 / sig[1:])
    g_sep = 2.0 * ax_area * kap[-1] / dz  # half a plane to the separator face (0 V)
    dtype = np.result_type(g_layer.dtype, np.float64)
    # unknowns interleaved [s0, e0, s1, e1, ...]: (l, u) = (2, 2) band, A[i, j] at ab[2+i-j, j]
    m = 2 * nl
    ab = np.zeros((5, m), dtype)
    ab[2, 0::2] += g_layer
    ab[2, 1::2] += g_layer
    ab[2, 0:-2:2] += gs
    ab[2, 2::2] += gs
    ab[2, 1:-2:2] += ge
    ab[2, 3::2] += ge
    ab[2, -1] += g_sep
    ab[1, 1::2] = -g_layer  # A[2i, 2i+1]
    ab[3, 0::2] = -g_layer  # A[2i+1, 2i]
    ab[0, 2::2] = -gs  # A[2i, 2i+2]
    ab[0, 3::2] = -ge  # A[2i+1, 2i+3]
    ab[4, 0:-2:2] = -gs  # A[2i+2, 2i]
    ab[4, 1:-2:2] = -ge  # A[2i+3, 2i+1]
    rhs = np.zeros(m, dtype)
    rhs[0] = 1.0
    return solve_banded((2, 2), ab, rhs)


def _rails(
    geom: AgingGeometry, electrolyte_conductivity: float, solid_conductivity: float
) -> tuple[np.ndarray, np.ndarray, float]:
    kap = electrolyte_conductivity * np.maximum(geom.porosity, 1e-6) / geom.tortuosity
    sig = solid_conductivity * np.maximum(geom.solid_fraction, 1e-6) ** 1.5
    # the collector is half a plane away from the first solid node
    r_half = 0.5 * geom.layer_thickness_m / (sig[0] * geom.cross_section_m2)
    return kap, sig, r_half


def distribute(
    geom: AgingGeometry,
    conductance_S: np.ndarray,
    *,
    electrolyte_conductivity: float,
    solid_conductivity: float,
) -> Distribution:
    """Solve the depth-resolved network for 1 A (see the module notes).

    Parameters
    ----------
    geom : AgingGeometry
    conductance_S : ndarray (n,)
        Branch conductance ``G_k`` of each particle (S); 0 for a particle cut off.
    electrolyte_conductivity, solid_conductivity : float
        Bulk ``κ`` and ``σ_s`` in S/m.

    Returns
    -------
    Distribution
    """
    kap, sig, r_half = _rails(geom, electrolyte_conductivity, solid_conductivity)
    g_layer = np.bincount(geom.layer, weights=conductance_S, minlength=geom.n_layers)
    x = _solve(geom, g_layer, kap, sig)
    dphi = x[0::2] - x[1::2]
    pk = dphi[geom.layer]
    share = conductance_S * pk
    return Distribution(share=share, potential_V=pk, resistance_ohm=float(x[0]) + r_half)


def network_impedance(
    geom: AgingGeometry,
    admittance_S: np.ndarray,
    *,
    electrolyte_conductivity: float,
    solid_conductivity: float,
) -> np.ndarray:
    """Small-signal impedance (Ω) of the network, one column of branch admittances each.

    Parameters
    ----------
    geom : AgingGeometry
    admittance_S : ndarray of complex (n_freq, n)
        Branch admittance of every particle at each frequency.
    electrolyte_conductivity, solid_conductivity : float
        Bulk ``κ`` and ``σ_s`` in S/m (purely resistive rails).

    Returns
    -------
    ndarray of complex (n_freq,)
        ``Z = V_collector / I``.

    Notes
    -----
    With uniform planes this is the cell-centred discretisation of the two-rail
    transmission line (de Levie 1963; ``microbat.cell.eis.analytic.transmission_line``),
    second-order accurate in the plane spacing.
    """
    kap, sig, r_half = _rails(geom, electrolyte_conductivity, solid_conductivity)
    y = np.atleast_2d(np.asarray(admittance_S, np.complex128))
    out = np.empty(y.shape[0], np.complex128)
    for i, row in enumerate(y):
        g_layer = np.bincount(geom.layer, weights=row.real, minlength=geom.n_layers) + 1j * (
            np.bincount(geom.layer, weights=row.imag, minlength=geom.n_layers)
        )
        out[i] = _solve(geom, g_layer, kap, sig)[0] + r_half
    return out
