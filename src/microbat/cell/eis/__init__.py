"""Electrochemical impedance spectroscopy: resolved, homogenised, decomposed.

* :mod:`~microbat.cell.eis.parameters` -- :class:`EISParameters` (conductivities,
  double layer, charge transfer, solid diffusion) and the interfacial admittance.
* :mod:`~microbat.cell.eis.analytic` -- closed forms: Randles, de Levie, spherical
  diffusion, the linearised transmission line.
* :mod:`~microbat.cell.eis.resolved` -- the small-signal model on the voxel grid
  (:func:`resolved_eis`, :class:`ResolvedModel`).
* :mod:`~microbat.cell.eis.homogenized` -- the transmission-line model fed the
  porosity, tortuosity and area of a microstructure (:func:`homogenized_eis`).
* :mod:`~microbat.cell.eis.decomposition` -- sensitivities, DRT, equivalent-circuit fit.
* :mod:`~microbat.cell.eis.plots` -- Nyquist and Bode figures.
* :mod:`~microbat.cell.eis.transient` -- the voltage after a current step from
  ``Z(s)`` (Talbot inverse Laplace transform).

See ``docs/eis.md`` for the equations and ``docs/validation/eis.md`` for the
measured deviations from the closed forms. Names load lazily.
"""

from microbat.core.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    (
        "parameters",
        "analytic",
        "result",
        "resolved",
        "homogenized",
        "decomposition",
        "plots",
        "transient",
    ),
)
