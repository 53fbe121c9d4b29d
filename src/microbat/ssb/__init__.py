"""Solid-state batteries: triple-phase boundaries, grain boundaries, lithium filaments.

* :mod:`microbat.ssb.tpb` — triple-phase boundary length (voxel edges, corrected
  toward the true line length), active / dead-end / isolated, the active-material /
  electrolyte contact area, a map of the active TPB.
* :mod:`microbat.ssb.grains` — Voronoi polycrystals inside the electrolyte, grain
  boundaries as resistive (and capacitive) interfaces on the finite-volume core,
  effective conductivity against the brick-layer model, bulk and GB impedance arcs.
* :mod:`microbat.ssb.interface` — the lithium-metal / electrolyte interface with
  contact loss: current focusing, hot spots, critical current, constriction
  resistance, the Monroe–Newman criterion.

The composite-cathode generator is :func:`microbat.synth.composite_cathode`.
Names load lazily from the submodules. See ``docs/ssb.md``.
"""

from microbat.core.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, ("tpb", "grains", "interface", "percolation"))
