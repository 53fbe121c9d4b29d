"""Synthetic electrodes and phantoms.

* :func:`packing` — polydisperse spheres/spheroids with limited overlap, at a
  target voxel volume fraction (:class:`Packing` keeps the particle list).
* :func:`add_carbon_binder` — carbon-binder at contacts and necks.
* :func:`add_separator` — a porous separator at the separator side.
* :func:`electrode` — the three chained: a pore/cbd/active(/separator) volume.
* :func:`phantom` — grayscale CT-like rendering with blur and noise
  (:class:`Phantom` keeps the true labels).
* :mod:`microbat.synth.phantoms` — sphere, channels, layers of known geometry.
* :func:`render_particles` — rasterise a (moved) particle list.
* :func:`composite_cathode` — an all-solid-state composite cathode: active and
  solid-electrolyte particles, voids, optional binder (phases ``void``, ``cbd``,
  ``active``, ``se``; see ``docs/ssb.md``).

Names load lazily, so ``import microbat.synth`` is cheap; Numba kernels compile
(and are cached) on first use.
"""

from microbat.core.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    ("_packing", "_cbd", "_separator", "_electrode", "_phantom", "phantoms", "_composite"),
)

__all__ = [
    "COMPOSITE_PHASES",
    "DEFAULT_INTENSITIES",
    "Packing",
    "PackingWarning",
    "Phantom",
    "add_carbon_binder",
    "add_separator",
    "composite_cathode",
    "electrode",
    "packing",
    "phantom",
    "phantoms",
    "render_particles",
]
