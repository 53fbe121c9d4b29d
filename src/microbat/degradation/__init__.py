"""Degradation: diffusion-induced stress on the voxels and Griffith fracture of particles.

* :func:`diffusion_stress` — voxel elasticity (:mod:`microbat.fv.elasticity`) loaded by
  the chemical eigenstrain of a concentration field; per-voxel stresses, per-particle
  peak / 99th-percentile tensile stress, strain energy, cracked particles.
* :func:`stress_at_c_rate` — the same with the closed-form galvanostatic load.
* :func:`screen_particles` — free-sphere stresses and the critical C-rate of every
  particle in closed form (no voxel solve).
* loads: :func:`load_from_resolved`, :func:`load_from_file`, :func:`galvanostatic_load`.
* :func:`age` — cycle aging: per-particle SEI on original and crack faces, Paris-law
  cracks, the current-share feedback, cycle-jumping (``docs/aging.md``).
* :func:`plating_map` — lithium-plating risk of a resolved charge (the streaming
  :class:`PlatingMonitor`, onset maps, hotspots, the DFN comparison :func:`dfn_plating`)
  and :func:`aging_heterogeneity`, the aging heterogeneity index (``docs/plating.md``).
* :func:`label_particles`, parameters :class:`MechanicsParameters`,
  :class:`MechanicalMaterial` and the cited defaults :data:`MATERIALS`.

Equations, assumptions and sources: ``docs/mechanics.md``. Names load lazily.
"""

from microbat.core.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    # mechanics (issue 17); gas and heating are listed for their own names
    (
        "parameters",
        "particles",
        "sphere",
        "loads",
        "fracture",
        "stress",
        "gas",
        "heating",
        "plating",  # issue 18 (plating maps, heterogeneity index)
        "heterogeneity",
        "sei",  # issue 19 (cycle aging)
        "paris",
        "aging",
    ),
)
