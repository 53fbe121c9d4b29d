"""The settings of ``microbat twin``: a TOML file validated by pydantic.

Every key has a unit (SI inside: metres, seconds; voxels where it says so), a
default and a one-line description; :func:`config_reference` renders them as the
table in ``docs/twin.md`` and a test checks that the two agree. A file holds any
subset of the sections below; what it leaves out takes the default::

    [input]
    voxel_size = [4e-7]          # m; one value or one per axis
    [denoise]
    search_radius = 2            # voxels
    [cell]
    c_rates = [0.1, 1, 3]

Unknown keys are an error (a typo must not be ignored silently). Command-line
flags override the file (``--voxel-size``, ``--phases``, ``--set
section.key=value``).
"""

from __future__ import annotations

import math
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from microbat.core.errors import InvalidInputError

__all__ = [
    "CellSettings",
    "ConnectivitySettings",
    "DenoiseSettings",
    "EISSettings",
    "InputSettings",
    "MetricsSettings",
    "ReportSettings",
    "ScaleSettings",
    "SegmentSettings",
    "SyntheticSettings",
    "TransportSettings",
    "TwinConfig",
    "apply_overrides",
    "config_reference",
    "load_config",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class InputSettings(_Section):
    """How to read the input volume."""

    voxel_size: list[float] | None = Field(
        None,
        description=(
            "Voxel edge in m, one value or one per axis (axis order z, y, x). Default: what "
            "the file says; a file that does not say it is refused (never guessed)."
        ),
        json_schema_extra={"unit": "m"},
    )
    kind: Literal["auto", "grayscale", "labels"] = Field(
        "auto",
        description=(
            "Whether the input holds grayscale intensities (runs denoise, segment) or phase "
            "labels (skips imaging). auto: floats and integer images with more than 16 "
            "distinct values are grayscale."
        ),
    )
    phases: str | None = Field(
        None,
        description=(
            "Phase table of a labelled input without one, e.g. 'pore=0,cbd=1,active=2' "
            "(roles inferred from the names)."
        ),
    )
    thickness_axis: int = Field(
        0,
        ge=0,
        le=2,
        description="Array axis through the electrode thickness (current collector at index 0).",
    )
    dataset: str | None = Field(
        None, description="Dataset or array name inside an HDF5, Zarr or NPZ container."
    )

    @field_validator("voxel_size")
    @classmethod
    def _vs(cls, v: list[float] | None) -> list[float] | None:
        if v is None:
            return None
        if len(v) not in (1, 2, 3):
            raise ValueError(f"give one voxel size or one per axis, got {len(v)} values")
        for x in v:
            if not (math.isfinite(x) and 0 < x <= 1e-3):
                raise ValueError(
                    f"voxel size {x!r} m is not a positive length below 1 mm (voxel sizes "
                    "are in metres: 0.4 µm is 4e-7)"
                )
        return v


class SyntheticSettings(_Section):
    """The built-in phantom (used when the twin runs without an input file)."""

    shape: list[int] = Field(
        [96, 96, 96],
        description="Volume in voxels (axis 0 through the thickness).",
        json_schema_extra={"unit": "voxels"},
    )
    voxel_size: float = Field(
        4e-7, gt=0, le=1e-3, description="Voxel edge.", json_schema_extra={"unit": "m"}
    )
    seed: int = Field(0, description="Seed of the generator and the noise.")
    active_fraction: float = Field(0.55, gt=0, lt=1, description="Active-material volume fraction.")
    cbd_fraction: float = Field(0.10, ge=0, lt=1, description="Carbon-binder volume fraction.")
    mean_radius: float = Field(
        4e-6,
        gt=0,
        le=1e-4,
        description="Number-mean particle radius.",
        json_schema_extra={"unit": "m"},
    )
    psf_sigma: float = Field(
        1.0,
        ge=0,
        description="Gaussian blur of the rendering (point-spread function).",
        json_schema_extra={"unit": "voxels"},
    )
    snr: float = Field(
        4.0, gt=0, description="Signal-to-noise ratio (I_active - I_pore) / sigma_noise."
    )

    @field_validator("shape")
    @classmethod
    def _shape(cls, v: list[int]) -> list[int]:
        if len(v) != 3 or any(n < 16 for n in v):
            raise ValueError(f"shape must be three sizes of at least 16 voxels, got {v}")
        return v


class DenoiseSettings(_Section):
    """Non-local means (``microbat.imaging.denoise_nlm``)."""

    enabled: bool = Field(True, description="Denoise before segmenting.")
    patch_size: int = Field(
        3,
        ge=1,
        description="Edge of the compared patch (odd).",
        json_schema_extra={"unit": "voxels"},
    )
    search_radius: int = Field(
        3,
        ge=0,
        description="Half-width of the search window.",
        json_schema_extra={"unit": "voxels"},
    )
    strength: float = Field(0.8, gt=0, description="Filter strength h / sigma.")
    sigma: float | None = Field(
        None,
        ge=0,
        description="Noise standard deviation in image units. Default: estimated.",
        json_schema_extra={"unit": "image units"},
    )
    chunks: int | None = Field(
        None,
        ge=16,
        description="Filter in cubic blocks of this edge with a halo (Dask map_overlap) to "
        "bound the filter's memory; same result. Default: the whole volume at once.",
        json_schema_extra={"unit": "voxels"},
    )


class SegmentSettings(_Section):
    """Gaussian mixture + Bayes segmentation (``microbat.imaging.segment``)."""

    phases: str = Field(
        "pore,cbd,active",
        description="Output phases (name or name=label), from darkest to brightest by default.",
    )
    order: list[str] | None = Field(
        None, description="Phase names from the darkest to the brightest. Default: table order."
    )
    variance: Literal["tied", "free"] = Field(
        "tied", description="One noise variance for all phases, or one each."
    )
    partial_volume: bool = Field(
        True, description="Model interface voxels as mixtures of two phases."
    )
    spatial_prior: Literal["potts", "none"] = Field(
        "potts", description="Potts Markov random field (ICM) or per-voxel decision."
    )
    beta: float = Field(
        2.0,
        ge=0,
        description="Potts coupling per unlike 6-neighbour (microbat.imaging.reconstruct's "
        "default).",
        json_schema_extra={"unit": "nats"},
    )
    max_icm_iter: int = Field(20, ge=0, description="Largest number of ICM sweeps.")
    psf_sigma: float | Literal["auto"] | None = Field(
        1.0,
        description="Point-spread function of the scanner for the forward-model refinement of "
        "interface voxels; 'auto' estimates it; 0 skips the refinement.",
        json_schema_extra={"unit": "voxels"},
    )
    remove_isolated: bool = Field(
        False,
        description="Reassign isolated solid clusters (touching neither face) to the phase "
        "they share most faces with.",
    )


class ConnectivitySettings(_Section):
    """Cluster classes (``microbat.imaging.analyze_connectivity``)."""

    axis: int | None = Field(
        None,
        ge=0,
        le=2,
        description="Axis whose two faces define percolating / dead-end / isolated. Default: "
        "the thickness axis.",
    )


class MetricsSettings(_Section):
    """Morphology (``microbat.imaging.characterize``)."""

    sizes: bool = Field(
        True, description="Local-thickness size distributions (d10/d50/d90; the slowest part)."
    )


class TransportSettings(_Section):
    """Tortuosity, random walk and the Bruggeman comparison (``microbat.transport``)."""

    enabled: bool = Field(True, description="Run the transport stage.")
    phase: str = Field(
        "electrolyte", description="Phase (name or role) whose tortuosity is computed."
    )
    tensor: bool = Field(True, description="Also the off-diagonal terms of the tensor.")
    solid: bool = Field(
        True, description="Also the solid-phase tortuosity along the thickness (cell model)."
    )
    boundary: Literal["face", "layer"] = Field(
        "face",
        description="Where the concentrations are held: outer faces (L = n h, TauFactor) or "
        "first/last voxel layers (L = (n - 1) h, PoreSpy).",
    )
    random_walk: bool = Field(True, description="Random-walk cross-check of the diffusion solve.")
    random_walk_walkers: int = Field(2_000, ge=100, description="Number of random walkers.")
    random_walk_steps: int | None = Field(
        None,
        ge=100,
        description="Steps per walker (half a voxel each). Default: 48 L^2 for the largest "
        "extent L in voxels, so that the free-space displacement is twice the volume and "
        "the long-time plateau is reached.",
    )
    random_walk_seed: int = Field(0, description="Seed of the random walk.")
    bruggeman_exponent: float = Field(
        1.5, gt=0, description="Bruggeman alpha in tau = eps^(1 - alpha) for the comparison."
    )


class CellSettings(_Section):
    """Cell performance through the P2D/DFN bridge (``microbat.cell``)."""

    enabled: bool = Field(True, description="Run the cell stage.")
    parameter_set: str = Field(
        "chen2020", description="Published parameter set (PyBaMM name) or a BPX file path."
    )
    electrode: Literal["positive", "negative"] = Field(
        "positive", description="Which electrode of the cell the image shows."
    )
    c_rates: list[float] = Field(
        [0.1, 0.5, 1.0, 2.0, 3.0, 5.0],
        description="Discharge rates.",
        json_schema_extra={"unit": "1/h"},
    )
    model: Literal["DFN", "P2D", "SPMe"] = Field("DFN", description="PyBaMM model.")
    compare_bruggeman: bool = Field(
        True, description="Also run with Bruggeman transport from the measured porosity."
    )
    thickness: Literal["published", "image"] | float = Field(
        "published",
        description="Electrode thickness: keep the parameter set's, the image extent, or a "
        "length in m (a CT volume is usually a crop of the coating).",
        json_schema_extra={"unit": "m"},
    )
    solid_conductivity: float | None = Field(
        None,
        gt=0,
        description="Bulk conductivity of the solid, needed to apply the solid tortuosity "
        "when the set gives an effective one.",
        json_schema_extra={"unit": "S/m"},
    )

    @field_validator("c_rates")
    @classmethod
    def _rates(cls, v: list[float]) -> list[float]:
        if not v or any(not (math.isfinite(c) and c > 0) for c in v):
            raise ValueError(f"c_rates must be positive numbers, got {v}")
        return v

    @field_validator("thickness")
    @classmethod
    def _thickness(cls, v: Any) -> Any:
        if isinstance(v, float) and not (1e-6 <= v <= 2e-3):
            raise ValueError(
                f"thickness {v!r} m is outside 1 µm..2 mm (lengths are in metres: 70 µm is 7e-5)"
            )
        return v


class EISSettings(_Section):
    """Impedance (``microbat.cell.eis``): homogenised, and resolved on a subvolume."""

    enabled: bool = Field(True, description="Run the impedance stage (homogenised model).")
    resolved: bool = Field(
        False,
        description="Also the resolved small-signal model on the central subvolume "
        "(slower), with the homogenised model on the same subvolume for comparison.",
    )
    resolved_subvolume: list[int] = Field(
        [32, 32, 32],
        description="Edge per axis of the central subvolume of the resolved model (full "
        "thickness if smaller).",
        json_schema_extra={"unit": "voxels"},
    )
    blocking: bool = Field(False, description="Blocking electrode: double layer only.")

    @field_validator("resolved_subvolume")
    @classmethod
    def _sub(cls, v: list[int]) -> list[int]:
        if len(v) not in (1, 3) or any(n < 4 for n in v):
            raise ValueError(f"resolved_subvolume must be one or three sizes >= 4, got {v}")
        return v * 3 if len(v) == 1 else v


class ScaleSettings(_Section):
    """Out-of-core imaging on Dask for volumes larger than memory."""

    chunks: int | None = Field(
        None,
        ge=16,
        description="Run the imaging stages out of core: read the input lazily and denoise, "
        "segment and label clusters in cubic chunks of this edge, stored as Zarr in the stage "
        "folders. Default: in memory.",
        json_schema_extra={"unit": "voxels"},
    )
    workers: int | None = Field(
        None, ge=1, description="Threads of the local Dask scheduler. Default: one per core."
    )
    scheduler: str | None = Field(
        None,
        description="Address of a dask.distributed scheduler (tcp://host:8786) to run the "
        "chunked stages on; needs the dask extra (pip install 'microbat[dask]') and an output "
        "folder the workers can reach.",
    )
    analysis_crop: list[int] = Field(
        [256, 256, 256],
        description="Out of core only: edge per axis of the central subvolume (full volume if "
        "smaller) loaded for metrics, transport and the cell model.",
        json_schema_extra={"unit": "voxels"},
    )

    @field_validator("analysis_crop")
    @classmethod
    def _crop(cls, v: list[int]) -> list[int]:
        if len(v) not in (1, 3) or any(n < 8 for n in v):
            raise ValueError(f"analysis_crop must be one or three sizes of at least 8, got {v}")
        return v * 3 if len(v) == 1 else v

    @model_validator(mode="after")
    def _scheduler_needs_chunks(self) -> ScaleSettings:
        if self.scheduler and self.chunks is None:
            raise ValueError(
                "scale.scheduler runs the chunked (out-of-core) stages; set scale.chunks too "
                "(--chunks 256)"
            )
        return self


class ReportSettings(_Section):
    """The HTML report."""

    enabled: bool = Field(True, description="Write report.html.")
    title: str = Field("microbat digital twin", description="Title of the report.")
    dpi: int = Field(
        80,
        ge=30,
        le=300,
        description="Resolution of the embedded figures.",
        json_schema_extra={"unit": "dots/inch"},
    )


class TwinConfig(BaseModel):
    """All settings of a twin run, one section per stage.

    Examples
    --------
    >>> cfg = TwinConfig.model_validate({"denoise": {"search_radius": 2}})
    >>> cfg.denoise.search_radius, cfg.segment.phases
    (2, 'pore,cbd,active')
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: InputSettings = InputSettings()
    synthetic: SyntheticSettings = SyntheticSettings()
    denoise: DenoiseSettings = DenoiseSettings()
    segment: SegmentSettings = SegmentSettings()
    connectivity: ConnectivitySettings = ConnectivitySettings()
    metrics: MetricsSettings = MetricsSettings()
    transport: TransportSettings = TransportSettings()
    cell: CellSettings = CellSettings()
    eis: EISSettings = EISSettings()
    scale: ScaleSettings = ScaleSettings()
    report: ReportSettings = ReportSettings()

    def section(self, name: str) -> dict[str, Any]:
        """The settings of one section as plain JSON data (for hashing and records)."""
        return getattr(self, name).model_dump(mode="json")

    def to_toml(self) -> str:
        """The configuration as TOML text (keys left at ``None`` are omitted)."""
        lines: list[str] = []
        for name in type(self).model_fields:
            lines.append(f"[{name}]")
            for key, value in self.section(name).items():
                if value is not None:
                    lines.append(f"{key} = {_toml_value(value)}")
            lines.append("")
        return "\n".join(lines)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")  # pragma: no cover - closed set of types


def _validation_message(where: str, exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            msg = "unknown key (see docs/twin.md for the keys each section takes)"
        parts.append(f"{loc}: {msg}")
    return f"{where}: " + "; ".join(parts)


def _validate(data: dict[str, Any], where: str) -> TwinConfig:
    try:
        return TwinConfig.model_validate(data)
    except ValidationError as exc:
        raise InvalidInputError(_validation_message(where, exc)) from None


def load_config(path: str | os.PathLike[str] | None = None) -> TwinConfig:
    """Read and validate a TOML configuration file (``None``: all defaults).

    Parameters
    ----------
    path : path-like, optional
        A ``.toml`` file with any subset of the sections of :class:`TwinConfig`.

    Returns
    -------
    TwinConfig

    Raises
    ------
    InvalidInputError
        The file is not valid TOML, has an unknown key, or a value out of range
        (the message names the key).
    FileFormatError
        The file does not exist.
    """
    if path is None:
        return TwinConfig()
    from microbat.core.errors import FileFormatError

    p = Path(path)
    if not p.is_file():
        raise FileFormatError(f"{p}: no such configuration file")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{p}: not a valid TOML file ({exc})") from None
    return _validate(data, str(p))


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(config: TwinConfig, overrides: dict[str, Any] | list[str]) -> TwinConfig:
    """A copy of ``config`` with ``section.key`` values replaced and re-validated.

    Parameters
    ----------
    config : TwinConfig
        The configuration to start from.
    overrides : dict or list of str
        ``{"denoise.search_radius": 2}``, or ``["denoise.search_radius=2"]`` as given
        to ``--set`` (values parsed as TOML values, else taken as strings).

    Returns
    -------
    TwinConfig

    Raises
    ------
    InvalidInputError
        Malformed ``key=value``, unknown section or key, or an invalid value.
    """
    if isinstance(overrides, list):
        items: dict[str, Any] = {}
        for item in overrides:
            key, sep, value = item.partition("=")
            if not sep or "." not in key:
                raise InvalidInputError(
                    f"cannot read {item!r}; write section.key=value, e.g. denoise.search_radius=2"
                )
            items[key.strip()] = _parse_value(value.strip())
        overrides = items
    data = config.model_dump(mode="json")
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        if section not in data:
            raise InvalidInputError(
                f"unknown section {section!r} in {key!r}; sections are {', '.join(data)}"
            )
        data[section][name] = value
    return _validate(data, "settings")


def _type_name(ann: Any) -> str:
    import types
    import typing

    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin is typing.Literal:
        return " or ".join(f'"{a}"' for a in args)
    if origin in (typing.Union, types.UnionType):
        parts = [_type_name(a) for a in args if a is not type(None)]
        text = " or ".join(parts)
        return text + (" (optional)" if type(None) in args else "")
    if origin is list:
        return f"list of {_type_name(args[0])}" if args else "list"
    return getattr(ann, "__name__", str(ann))


def config_reference() -> str:
    """Markdown table of every key: key, type, default, unit, description."""
    lines = [
        "| key | type | default | unit | description |",
        "|---|---|---|---|---|",
    ]
    for sname, sfield in TwinConfig.model_fields.items():
        model = sfield.annotation
        for key, f in model.model_fields.items():  # type: ignore[union-attr]
            extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
            unit = str(extra.get("unit", "")) if extra else ""
            default = "none" if f.default is None else _toml_value(f.default)
            lines.append(
                f"| `{sname}.{key}` | {_type_name(f.annotation)} | `{default}` | {unit} "
                f"| {f.description or ''} |"
            )
    return "\n".join(lines)
