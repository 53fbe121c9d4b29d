"""Transport: tortuosity (diffusion solve, tensor), random walks, conductivity, Bruggeman.

Names are loaded lazily from the submodules listed below.
"""

from microbat.core.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    (
        "diffusion",
        "tensor",
        "conduction",
        "bruggeman",
        "randomwalk",
        "calendering",
        "representative",
    ),
)
