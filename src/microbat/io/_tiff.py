"""TIFF: multi-page stacks, folders of 2D slices, ImageJ-compatible writing."""

from __future__ import annotations

import contextlib
import logging
import re
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

import microbat.io._header as _header
from microbat.core.errors import FileFormatError, require
from microbat.io._common import TIFF_SUFFIXES, file_size, native, natural_key
from microbat.io.volume import Volume

# Lengths of the units ImageJ writes in its description (``unit=micron``).
_IMAGEJ_UNITS = {
    "m": 1.0,
    "meter": 1.0,
    "metre": 1.0,
    "cm": 1e-2,
    "mm": 1e-3,
    "micron": 1e-6,
    "microns": 1e-6,
    "um": 1e-6,
    "µm": 1e-6,
    "μm": 1e-6,
    "\\u00b5m": 1e-6,
    "nm": 1e-9,
    "nanometer": 1e-9,
    "å": 1e-10,
    "angstrom": 1e-10,
    "inch": 0.0254,
}
# TIFF ResolutionUnit tag values (4 and 5 are common extensions).
_RESUNIT_M = {2: 0.0254, 3: 1e-2, 4: 1e-3, 5: 1e-6}
_BAD_LOG = ("invalid page offset", "corrupt", "truncat", "failed to read")
_IMAGEJ_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32))


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _tifffile_log() -> Iterator[_Recorder]:
    """Collect tifffile's log warnings (it logs, rather than raises, on broken IFDs)."""
    logger = logging.getLogger("tifffile")
    rec = _Recorder()
    logger.addHandler(rec)
    try:
        yield rec
    finally:
        logger.removeHandler(rec)


def _raise_if_broken(rec: _Recorder, path: Path) -> None:
    bad = [m for m in rec.messages if any(k in m.lower() for k in _BAD_LOG)]
    if bad:
        what = re.sub(r"<[^>]*>\s*", "", bad[0]).strip()
        raise FileFormatError(
            f"{path}: the TIFF file is truncated or corrupt ({what}); copy or export it again"
        )


def _errors() -> tuple[type[BaseException], ...]:
    import struct

    tifffile = require("tifffile")
    return (tifffile.TiffFileError, ValueError, KeyError, IndexError, struct.error, OSError)


def _open(path: Path) -> Any:
    tifffile = require("tifffile")
    with _tifffile_log() as rec:
        try:
            tif = tifffile.TiffFile(path)
        except _errors() as exc:
            raise FileFormatError(
                f"{path}: not a readable TIFF file ({exc}); it is truncated, corrupt or not a TIFF"
            ) from None
        try:
            if not tif.series:
                raise FileFormatError(f"{path}: the TIFF file holds no image")
            _ = tif.series[0].shape
            _raise_if_broken(rec, path)
        except BaseException:
            tif.close()
            raise
    return tif


def _check_complete(tif: Any, path: Path) -> None:
    """Every page's image data must lie inside the file."""
    size = file_size(path)
    series = tif.series[0]
    end = 0
    for page in series.pages:
        if page is None:
            continue
        offsets = getattr(page, "dataoffsets", ()) or ()
        counts = getattr(page, "databytecounts", ()) or ()
        for o, c in zip(offsets, counts, strict=False):
            end = max(end, int(o) + int(c))
    if series.dataoffset is not None:
        end = max(end, int(series.dataoffset) + int(series.nbytes))
    if end > size:
        raise FileFormatError(
            f"{path}: the TIFF file is truncated: its image data end at byte {end} but the "
            f"file has {size} bytes; copy or export it again"
        )


def _ratio(value: Any) -> float:
    """TIFF RATIONAL ``(num, den)`` (or a float) as a float; 0 when undefined."""
    if isinstance(value, tuple) and len(value) == 2:
        num, den = value
        return float(num) / float(den) if den else 0.0
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _pixel_size(page: Any, unit_m: float | None) -> tuple[float, float] | None:
    """In-plane pixel size (y, x) in metres from the resolution tags."""
    tags = page.tags
    xres = _ratio(tags["XResolution"].value) if "XResolution" in tags else 0.0
    yres = _ratio(tags["YResolution"].value) if "YResolution" in tags else xres
    if unit_m is None:
        ru = tags["ResolutionUnit"].value if "ResolutionUnit" in tags else 2
        unit_m = _RESUNIT_M.get(int(ru))
    if unit_m is None or xres <= 0 or yres <= 0:
        return None
    return (unit_m / yres, unit_m / xres)


def _spacing(tif: Any, ndim: int, axes: str) -> tuple[tuple[float, ...] | None, dict[str, Any]]:
    """Voxel size (metres, array order) and notes from ImageJ or resolution tags."""
    meta: dict[str, Any] = {"axes": axes}
    page = tif.series[0].pages[0] or tif.pages[0]
    ij = tif.imagej_metadata if tif.is_imagej else None
    unit_m: float | None = None
    if ij:
        meta["imagej"] = {k: v for k, v in ij.items() if k != "Info"}
        unit = str(ij.get("unit", "")).strip().lower()
        unit_m = _IMAGEJ_UNITS.get(unit)
        if unit_m is None:  # "pixel" or absent: ImageJ did not calibrate the image
            return None, meta
    yx = _pixel_size(page, unit_m)
    if yx is None:
        return None, meta
    if ndim == 2:
        return yx, meta
    if ndim == 3 and axes[-2:] == "YX":
        if ij is not None and unit_m is not None:
            # ImageJ leaves spacing out when the voxel depth is 1 unit.
            z = float(ij.get("spacing", 1.0)) * unit_m
            if z > 0:
                return (z, *yx), meta
        meta["pixel_size_m"] = list(yx)
    return None, meta


def _header_of(tif: Any, path: Path) -> dict[str, Any] | None:
    if tif.is_imagej and tif.imagej_metadata and "Info" in tif.imagej_metadata:
        h = _header.loads(str(tif.imagej_metadata["Info"]), path)
        if h is not None:
            return h
    shaped = getattr(tif, "shaped_metadata", None) or ()
    for md in shaped:
        if isinstance(md, dict) and isinstance(md.get("microbat"), dict):
            return _header.from_attrs(md["microbat"], path)
    return None


def read_tiff(path: Path, *, lazy: bool) -> Volume:
    """Read a (multi-page) TIFF file as ``[z, y, x]``."""
    tifffile = require("tifffile")
    tif = _open(path)
    keep_open = False
    try:
        series = tif.series[0]
        _check_complete(tif, path)
        shape, axes = tuple(series.shape), str(series.axes)
        voxel, meta = _spacing(tif, len(shape), axes)
        header = _header_of(tif, path)
        if header is not None:
            voxel = header.pop("voxel_size_m", None) or voxel
            meta.update(header)
        closer = None
        if lazy:
            try:
                data = tifffile.memmap(path, series=0, mode="r")
            except (ValueError, tifffile.TiffFileError):
                zarr = require("zarr")
                store = series.aszarr()
                data = zarr.open(store, mode="r")
                keep_open = True
                weakref.finalize(data, tif.close)
                closer = tif.close
        else:
            with _tifffile_log() as rec:
                data = native(series.asarray())
            _raise_if_broken(rec, path)
    except _errors() as exc:
        if isinstance(exc, FileFormatError):
            raise
        raise FileFormatError(
            f"{path}: cannot read the TIFF image data ({exc}); the file is truncated or corrupt"
        ) from None
    finally:
        if not keep_open:
            tif.close()
    return Volume(data, _tuple(voxel), str(path), meta, "tiff", closer)


def read_tiff_folder(path: Path, *, lazy: bool) -> Volume:
    """Read a folder of 2D TIFF slices (natural order: slice2 before slice10)."""
    tifffile = require("tifffile")
    files = sorted(
        (
            p
            for p in path.iterdir()
            if p.is_file() and p.suffix.lower() in TIFF_SUFFIXES and not p.name.startswith(".")
        ),
        key=lambda p: natural_key(p.name),
    )
    if not files:
        raise FileFormatError(
            f"{path}: the folder holds no .tif/.tiff slices and is not a Zarr store"
        )
    shape = dtype = None
    voxel: tuple[float, ...] | None = None
    meta: dict[str, Any] = {"files": len(files), "first": files[0].name, "last": files[-1].name}
    for i, f in enumerate(files):
        tif = _open(f)
        try:
            _check_complete(tif, f)
            s = tif.series[0]
            if i == 0:
                shape, dtype = tuple(s.shape), s.dtype
                if len(shape) != 2:
                    raise FileFormatError(
                        f"{f}: a slice folder must hold 2D images, but this file has shape "
                        f"{shape}; read the stack file directly instead of the folder"
                    )
                yx, info = _spacing(tif, 2, str(s.axes))
                ij = info.get("imagej") or {}
                if yx is not None:
                    unit = _IMAGEJ_UNITS.get(str(ij.get("unit", "")).lower())
                    if unit is not None and "spacing" in ij:
                        voxel = (float(ij["spacing"]) * unit, *yx)
                    else:
                        meta["pixel_size_m"] = list(yx)
            elif tuple(s.shape) != shape or s.dtype != dtype:
                raise FileFormatError(
                    f"{f}: slice has shape {tuple(s.shape)} and dtype {s.dtype} but "
                    f"{files[0].name} has {shape} and {dtype}; all slices must match"
                )
        finally:
            tif.close()
    assert shape is not None and dtype is not None
    try:
        if lazy:
            zarr = require("zarr")
            seq = tifffile.TiffSequence([str(f) for f in files])
            data = zarr.open(seq.aszarr(), mode="r")
        else:
            data = np.empty((len(files), *shape), dtype=dtype)
            with _tifffile_log() as rec:
                for i, f in enumerate(files):
                    data[i] = tifffile.imread(f)
            _raise_if_broken(rec, path)
            data = native(data)
    except _errors() as exc:
        if isinstance(exc, FileFormatError):
            raise
        raise FileFormatError(f"{path}: cannot read the slices ({exc})") from None
    return Volume(data, voxel, str(path), meta, "tiff-folder")


def write_tiff(
    tmp: Path,
    array: np.ndarray,
    *,
    header: dict[str, Any],
    voxel_size: tuple[float, ...] | None,
    compression: bool,
) -> None:
    """Write ``array`` to ``tmp``: ImageJ hyperstack when the dtype allows, else plain."""
    tifffile = require("tifffile")
    kw: dict[str, Any] = {
        "photometric": "minisblack",
        "compression": "zlib" if compression else None,
    }
    arr = native(np.asarray(array))
    if arr.dtype in _IMAGEJ_DTYPES and arr.ndim in (2, 3):
        md: dict[str, Any] = {"axes": "ZYX" if arr.ndim == 3 else "YX"}
        if voxel_size is not None:
            um = [v / 1e-6 for v in voxel_size]
            md["unit"] = "micron"
            if arr.ndim == 3:
                md["spacing"] = um[0]
            kw["resolution"] = (1.0 / um[-1], 1.0 / um[-2])
        md["Info"] = _header.dumps(header)
        tifffile.imwrite(tmp, arr, imagej=True, metadata=md, **kw)
    else:
        if voxel_size is not None:
            kw["resolution"] = (1e-2 / voxel_size[-1], 1e-2 / voxel_size[-2])
            kw["resolutionunit"] = "CENTIMETER"
        tifffile.imwrite(tmp, arr, metadata={"microbat": header}, **kw)


def _tuple(v: Any) -> tuple[float, ...] | None:
    return None if v is None else tuple(float(x) for x in v)
