"""CLI verbs for files: ``info`` and ``convert``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from microbat.cli.common import (
    DatasetOpt,
    InPath,
    InputOptions,
    JsonOpt,
    OptionGroup,
    OutPath,
    PhasesOpt,
    VoxelSizeOpt,
    check_writable,
    emit,
    guarded,
    parse_crop,
    with_option_groups,
)

ShapeOpt = Annotated[
    str | None,
    typer.Option(
        "--shape",
        help="Raw files: shape in array order, slices,rows,columns (e.g. 100,512,512).",
    ),
]
DtypeOpt = Annotated[
    str | None,
    typer.Option("--dtype", help="Raw files: voxel type (uint8, uint16, int16, float32, ...)."),
]
ByteOrderOpt = Annotated[
    str, typer.Option("--byte-order", help="Raw files: little, big or native.")
]
OffsetOpt = Annotated[int, typer.Option("--offset", help="Raw files: header bytes to skip.")]
NoCompressOpt = Annotated[
    bool,
    typer.Option("--no-compression", help="Write without compression (faster, larger files)."),
]


@dataclass(frozen=True)
class _RawOptions(OptionGroup):
    """``--shape``, ``--dtype``, ``--byte-order``, ``--offset``: how to read a raw file."""

    shape: ShapeOpt = None
    dtype: DtypeOpt = None
    byte_order: ByteOrderOpt = "little"
    offset: OffsetOpt = 0

    def kwargs(self) -> dict[str, Any]:
        """The reader keywords these options set."""
        out: dict[str, Any] = {}
        if self.shape is not None:
            out["shape"] = self.shape
        if self.dtype is not None:
            out["dtype"] = self.dtype
        if self.shape is not None or self.dtype is not None:
            out["byte_order"] = self.byte_order
            out["offset"] = self.offset
        elif self.offset:
            out["offset"] = self.offset
        return out


def _fmt_vs(vs: Any) -> str:
    from microbat.core.units import format_length

    if vs is None:
        return "unknown"
    return " x ".join(format_length(v) for v in vs)


@with_option_groups
def info(
    file: InPath,
    phases: PhasesOpt = None,
    voxel_size: VoxelSizeOpt = None,
    dataset: DatasetOpt = None,
    *,
    raw: _RawOptions,
    json: JsonOpt = False,
) -> None:
    """Show what a file holds: shape, dtype, voxel size, phases or intensity statistics."""
    from microbat.io.info import describe

    res = describe(
        file,
        phases=phases,
        voxel_size=voxel_size,
        dataset=dataset,
        **raw.kwargs(),
    )

    def human() -> None:
        axes = "zyx"[-len(res.shape) :] if len(res.shape) <= 3 else ""
        typer.echo(f"file        {res.source} ({res.format})")
        typer.echo(f"shape       {' x '.join(map(str, res.shape))}" + (f"  ({', '.join(axes)})"))
        typer.echo(f"dtype       {res.dtype}")
        typer.echo(f"voxel size  {_fmt_vs(res.voxel_size)}")
        if res.extent is not None:
            typer.echo(f"extent      {_fmt_vs(res.extent)}")
        typer.echo(f"content     {res.kind}")
        if res.volume_fractions is not None and res.phases is not None:
            for p in res.phases:
                frac = res.volume_fractions[p["name"]]
                typer.echo(
                    f"  {p['name']:<12} label {p['label']:<5} {p['role']:<18} {100 * frac:7.3f} %"
                )
        if res.label_fractions is not None:
            for lab, frac in res.label_fractions.items():
                typer.echo(f"  label {lab:<6} {100 * frac:7.3f} %")
        if res.thickness_axis is not None:
            typer.echo(f"thickness   axis {res.thickness_axis}")
        if res.intensity is not None:
            s = res.intensity
            typer.echo(
                f"intensity   min {s['min']:.6g}  max {s['max']:.6g}  mean {s['mean']:.6g}  "
                f"std {s['std']:.6g}"
                + (f"  non-finite {int(s['n_nonfinite'])}" if s["n_nonfinite"] else "")
            )
        for note in res.notes:
            typer.echo(f"note        {note}")

    emit(res, as_json=json, human=human)


@with_option_groups
def convert(
    src: InPath,
    dst: OutPath,
    inputs: InputOptions,
    dataset: DatasetOpt = None,
    *,
    raw: _RawOptions,
    no_compression: NoCompressOpt = False,
    json: JsonOpt = False,
) -> None:
    """Convert between formats (.tif, folders of slices, .h5, .zarr, .raw, .npy, .npz, .vti).

    Labelled data are written as a microstructure (phase table and voxel size kept);
    grayscale data as a volume. The output suffix picks the format.
    """
    from microbat.io.info import convert as _convert

    check_writable(dst, what="DST", folder=False)
    res = _convert(
        src,
        Path(dst),
        phases=inputs.phases,
        voxel_size=inputs.voxel_size,
        thickness_axis=inputs.thickness_axis,
        dataset=dataset,
        compression=not no_compression,
        crop=parse_crop(inputs.crop) if inputs.crop else None,
        **raw.kwargs(),
    )

    def human() -> None:
        typer.echo(
            f"wrote {res.destination} ({res.format_out}, {res.kind}, "
            f"{' x '.join(map(str, res.shape))} {res.dtype}, voxel {_fmt_vs(res.voxel_size)})"
        )

    emit(res, as_json=json, human=human)


def register(app: typer.Typer) -> None:
    """Register this module's verbs on app."""
    app.command("info")(guarded(info))
    app.command("convert")(guarded(convert))
