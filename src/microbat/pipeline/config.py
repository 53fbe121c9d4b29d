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

The sections are declared by the stages that own them (each stage module's
``settings``, see :mod:`microbat.pipeline.stages`) and by the runner
(:data:`RUNNER_SECTIONS`); :class:`TwinConfig` is assembled from them in run order.
Unknown keys are an error (a typo must not be ignored silently). Command-line
flags override the file (``--voxel-size``, ``--phases``, ``--set
section.key=value``).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from microbat.core.errors import InvalidInputError
from microbat.pipeline.base import StageSettings
from microbat.pipeline.stages import STAGES

__all__ = [
    "RUNNER_SECTIONS",
    "ReportSettings",
    "ScaleSettings",
    "TwinConfig",
    "apply_overrides",
    "config_reference",
    "load_config",
]


class ScaleSettings(StageSettings):
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
        "chunked stages on (dask.distributed is installed with microbat); the workers must "
        "reach the output folder.",
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


class ReportSettings(StageSettings):
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


#: Sections of the runner and the report writer (not of one stage), after the stages' own.
RUNNER_SECTIONS: tuple[tuple[str, type[StageSettings]], ...] = (
    ("scale", ScaleSettings),
    ("report", ReportSettings),
)


class _TwinConfigBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

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


def _sections() -> list[tuple[str, type[StageSettings]]]:
    out: list[tuple[str, type[StageSettings]]] = []
    for stage in STAGES:
        out.extend(stage.settings)
    out.extend(RUNNER_SECTIONS)
    names = [n for n, _ in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:  # pragma: no cover - a programming error in a stage module
        raise RuntimeError(f"settings sections declared twice: {', '.join(dup)}")
    return out


TwinConfig = create_model(
    "TwinConfig",
    __base__=_TwinConfigBase,
    __module__=__name__,
    __doc__="""All settings of a twin run, one attribute per section.

    The sections each stage owns, in run order, then the runner's: built from
    :data:`microbat.pipeline.stages.STAGES` (each stage's ``settings``) and
    :data:`RUNNER_SECTIONS`.

    Examples
    --------
    >>> cfg = TwinConfig.model_validate({"denoise": {"search_radius": 2}})
    >>> cfg.denoise.search_radius, cfg.segment.phases
    (2, 'pore,cbd,active')
    """,
    **{name: (cls, cls()) for name, cls in _sections()},  # type: ignore[call-overload]
)


def __getattr__(name: str) -> Any:
    """The stages' settings classes by name (``config.CellSettings``), for compatibility."""
    for _section, cls in _sections():
        if cls.__name__ == name:
            return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
