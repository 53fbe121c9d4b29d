"""Imaging: denoising, segmentation, connectivity and morphology metrics.

Names are loaded lazily from the submodules listed below.
"""

from microbat.core.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__, ("metrics", "connectivity", "denoise", "segmentation", "reconstruction")
)
