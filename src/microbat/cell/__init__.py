"""Cell models: the micro-informed P2D/DFN bridge through PyBaMM.

Names are loaded lazily from the submodules listed below (PyBaMM itself is only
imported when a simulation runs).

Examples
--------
>>> from microbat.cell import CellParameters, MicroProperties, rate_capability
>>> p = CellParameters.from_name("chen2020")  # doctest: +SKIP
>>> rate_capability(p, c_rates=(0.1, 1, 3)).fraction  # doctest: +SKIP
"""

from microbat.core.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    ("parameters", "micro", "bridge", "rate", "breakdown", "compare", "plots", "bpx"),
)
