"""File input and output: TIFF stacks and slice folders, HDF5, Zarr, raw, NumPy, VTK.

Arrays are always in microbat axis order ``[z, y, x]`` (slice, row, column);
voxel sizes are in metres. The formats and microbat's own file layout are
documented in ``docs/file-format.md``.

Main entry points (loaded lazily, so ``import microbat.io`` is cheap):

* :func:`read_volume` → :class:`Volume` (data, voxel size, source, metadata)
* :func:`load_microstructure` → :class:`~microbat.core.microstructure.Microstructure`
* :func:`save_microstructure`, :func:`save_volume`, :func:`write_vti`
* :func:`describe` (the ``microbat info`` verb), :func:`convert` (``microbat convert``)
"""

from microbat.core.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, ("volume", "readers", "writers", "vtk", "info"))
