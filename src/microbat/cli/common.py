"""Shared machinery of the command line: the app, options, output, errors."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_type_hints

import typer

from microbat.core.errors import MicrobatError
from microbat.core.results import to_jsonable

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="microbat",
    help=(
        "microbat: from a 3D X-ray CT image of a battery electrode to a digital twin.\n\n"
        "Lengths are in metres or carry a unit (0.4um). Add --json to any verb for a "
        "machine-readable result; --debug shows tracebacks."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

_STATE: dict[str, bool] = {"debug": False}


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the full traceback when a verb fails.")
    ] = False,
) -> None:
    """Microbat command line."""
    _STATE["debug"] = debug


# ----------------------------------------------------------------- options
PhasesOpt = Annotated[
    str | None,
    typer.Option(
        "--phases",
        help=(
            "Phase table for a labelled file without one, name=label pairs in label order, "
            "e.g. pore=0,cbd=1,active=2 (roles inferred from names; name:role=label to set one)."
        ),
    ),
]
VoxelSizeOpt = Annotated[
    str | None,
    typer.Option(
        "--voxel-size",
        help="Voxel edge in metres or with a unit (0.4um); one value or one per axis (a,b,c).",
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print a machine-readable JSON result on stdout.")
]
ThicknessAxisOpt = Annotated[
    int | None,
    typer.Option("--thickness-axis", help="Axis through the electrode thickness (0, 1 or 2)."),
]
DatasetOpt = Annotated[
    str | None,
    typer.Option(
        "--dataset",
        help="Dataset path in HDF5 (/exchange/data), array in Zarr or key in .npz.",
    ),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the random generator.")]
InPath = Annotated[Path, typer.Argument(help="Input file or folder.", show_default=False)]
OutPath = Annotated[Path, typer.Argument(help="Output file.", show_default=False)]


# ----------------------------------------------------------- option groups
class OptionGroup:
    """Base of a set of options that several verbs take together, as one parameter.

    A subclass is a frozen dataclass whose fields are written like verb parameters
    (``name: SomeOpt = default``). In a verb decorated with :func:`with_option_groups`,
    a parameter annotated with the subclass stands for those options, in field order,
    at its place in the signature (so ``--help`` lists them there); the verb receives
    one instance of the group.
    """


@dataclasses.dataclass(frozen=True)
class InputOptions(OptionGroup):
    """``--phases``, ``--voxel-size``, ``--thickness-axis``: overrides for reading FILE."""

    phases: PhasesOpt = None
    voxel_size: VoxelSizeOpt = None
    thickness_axis: ThicknessAxisOpt = None

    def load(self, path: Path, dataset: str | None = None):
        """Read the microstructure at ``path`` with these overrides (see :func:`load_input`)."""
        return load_input(path, self.phases, self.voxel_size, self.thickness_axis, dataset)


def with_option_groups(func: F) -> F:
    """Show typer each :class:`OptionGroup` parameter of a verb as the group's options.

    The options take the place of the group parameter in the signature; on a call
    their values are gathered back into one instance of the group.
    """
    sig = inspect.signature(func, eval_str=True)
    params: list[inspect.Parameter] = []
    groups: dict[str, tuple[type, list[str]]] = {}
    for p in sig.parameters.values():
        group = p.annotation
        if not (isinstance(group, type) and issubclass(group, OptionGroup)):
            params.append(p)
            continue
        hints = get_type_hints(group, include_extras=True)
        fields = dataclasses.fields(group)  # type: ignore[arg-type]
        groups[p.name] = (group, [f.name for f in fields])
        params += [
            inspect.Parameter(f.name, p.kind, default=f.default, annotation=hints[f.name])
            for f in fields
        ]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for name, (group, names) in groups.items():
            kwargs[name] = group(**{n: kwargs.pop(n) for n in names if n in kwargs})
        return func(*args, **kwargs)

    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    wrapper.__annotations__["return"] = sig.return_annotation
    return wrapper  # type: ignore[return-value]


def guarded(func: F) -> F:
    """Turn microbat and OS errors into a one-line message and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except (MicrobatError, OSError, ValueError, KeyError, ImportError) as exc:
            if _STATE["debug"]:
                raise
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            typer.echo(f"error: {msg}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.echo("interrupted: completed outputs are intact", err=True)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def emit(result: Any, *, as_json: bool, human: Callable[[], None] | None = None) -> None:
    """Print a result: JSON on stdout with ``--json``, else the human rendering."""
    if as_json:
        data = result.to_dict() if hasattr(result, "to_dict") else result
        sys.stdout.write(json.dumps(to_jsonable(data), indent=2, allow_nan=False) + "\n")
    elif human is not None:
        human()
    else:
        from rich.pretty import pprint

        pprint(to_jsonable(result.to_dict() if hasattr(result, "to_dict") else result))


def load_input(
    path: Path,
    phases: str | None = None,
    voxel_size: str | None = None,
    thickness_axis: int | None = None,
    dataset: str | None = None,
):
    """Read a microstructure from any supported file, applying CLI overrides."""
    from microbat.core.units import parse_voxel_size
    from microbat.io import load_microstructure

    return load_microstructure(
        path,
        phases=phases,
        voxel_size=parse_voxel_size(voxel_size) if voxel_size else None,
        thickness_axis=thickness_axis,
        dataset=dataset,
    )


def main() -> None:
    """Entry point of the ``microbat`` script."""
    app()
