"""CLI verbs for transport: ``tortuosity`` and ``conductivity``.

JSON output (``--json``) lists per-axis values in array axis order; ``inf`` (no
percolating path) and values of axes that were not solved are written as
``null`` — ``percolating`` tells the two apart (``false`` versus ``null``).
"""

from __future__ import annotations

import math
import warnings
from typing import Annotated, Any

import typer

from microbat.cli.common import (
    InPath,
    InputOptions,
    JsonOpt,
    Progress,
    QuietOpt,
    emit,
    guarded,
    with_option_groups,
)
from microbat.core.errors import InvalidInputError

PhaseOpt = Annotated[
    str,
    typer.Option(
        "--phase", help="Diffusing phase(s), names or roles, comma separated (pore, electrolyte)."
    ),
]
AxisOpt = Annotated[
    str | None,
    typer.Option("--axis", help="0, 1, 2 or all (default: the thickness axis)."),
]
BoundaryOpt = Annotated[
    str,
    typer.Option(
        "--boundary",
        help=(
            "face: values held on the outer faces, L = n h (TauFactor); layer: on the first "
            "and last voxel layers, L = (n-1) h (PoreSpy, PuMA)."
        ),
    ),
]
RelDiffOpt = Annotated[
    str | None,
    typer.Option(
        "--relative-diffusivity",
        help="Further diffusing phases with their D/D0, e.g. cbd=0.1 (name=value pairs).",
    ),
]
PorosityDefOpt = Annotated[
    str,
    typer.Option(
        "--porosity-definition",
        help="Which porosity divides in tau = eps D0/Deff: total (whole image) or percolating.",
    ),
]
TensorOpt = Annotated[
    bool | None,
    typer.Option(
        "--tensor/--no-tensor",
        help="Off-diagonal terms by periodic homogenisation (default: on with --axis all).",
    ),
]
TolOpt = Annotated[
    float, typer.Option("--tol", help="Relative flux spread over all planes at convergence.")
]
SolverOpt = Annotated[str, typer.Option("--solver", help="auto, mg, amg or direct.")]
PrecisionOpt = Annotated[str, typer.Option("--precision", help="auto, single or double.")]
AlphaOpt = Annotated[float, typer.Option("--alpha", help="Bruggeman exponent for comparison.")]
KindOpt = Annotated[
    str,
    typer.Option(
        "--kind",
        help=(
            "electronic (solid phases conduct; default 1 S/m each, giving sigma_eff/sigma) or "
            "ionic (electrolyte conducts; default 1 S/m)."
        ),
    ),
]
CondOpt = Annotated[
    str | None,
    typer.Option(
        "--conductivities",
        help="Conductivity of each conducting phase in S/m, e.g. active=0.1,cbd=50.",
    ),
]


def _pairs(text: str | None, what: str) -> dict[str, float] | None:
    """Parse ``name=value,name=value`` into a dictionary."""
    if text is None or not text.strip():
        return None
    out: dict[str, float] = {}
    for token in text.split(","):
        name, sep, value = token.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise InvalidInputError(
                f"cannot read {token!r} in --{what}; write name=value pairs, e.g. cbd=0.1"
            ) from None
    return out


def _axis(text: str | None) -> int | str | None:
    if text is None:
        return None
    t = text.strip().lower()
    if t == "all":
        return "all"
    try:
        return int(t)
    except ValueError:
        raise InvalidInputError(f"--axis {text!r}: use 0, 1, 2 or all") from None


def _num(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _one_axis(res: Any, axis: int) -> Any:
    """``res`` of every axis reduced to one, as ``tortuosity(axis=axis)`` gives it."""
    import dataclasses

    per_axis = (
        "tau", "deff_over_d0", "macmullin", "percolating", "porosity_percolating", "epsilon",
        "length_m", "flux_spread", "flux_mismatch", "iterations", "concentration",
    )  # fmt: skip
    kept = {
        k: tuple(v if i == axis else None for i, v in enumerate(getattr(res, k))) for k in per_axis
    }
    return dataclasses.replace(res, **kept)


@with_option_groups
def tortuosity(
    file: InPath,
    phase: PhaseOpt = "electrolyte",
    axis: AxisOpt = None,
    boundary: BoundaryOpt = "face",
    relative_diffusivity: RelDiffOpt = None,
    porosity_definition: PorosityDefOpt = "total",
    tensor: TensorOpt = None,
    tol: TolOpt = 1e-3,
    solver: SolverOpt = "auto",
    precision: PrecisionOpt = "auto",
    alpha: AlphaOpt = 1.5,
    *,
    inputs: InputOptions,
    quiet: QuietOpt = False,
    json: JsonOpt = False,
) -> None:
    """Tortuosity factor by a steady diffusion solve (tau = eps D0/Deff), per axis."""
    import numpy as np

    from microbat.transport._steady import PercolationWarning
    from microbat.transport.bruggeman import bruggeman_error
    from microbat.transport.diffusion import tortuosity as _tortuosity
    from microbat.transport.tensor import tortuosity_tensor

    progress = Progress("tortuosity", quiet=quiet).start()
    progress.stage(f"reading {file}")
    ms = inputs.load(file, voxel_size_required=False)  # tau and sigma ratios need no size
    ax = _axis(axis)
    rel = _pairs(relative_diffusivity, "relative-diffusivity")
    want_tensor = (ax == "all") if tensor is None else tensor
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PercolationWarning)
        which = "every axis" if ax == "all" else f"axis {ms.thickness_axis if ax is None else ax}"
        progress.stage(
            f"solving steady diffusion in {phase} along {which} "
            f"({' x '.join(map(str, ms.shape))} voxels)"
        )
        # the tensor needs every direction: solve them once and reuse them (below)
        res = _tortuosity(
            ms, phase=phase, axis="all" if want_tensor else ax, boundary=boundary,  # type: ignore[arg-type]
            relative_diffusivity=rel, porosity_definition=porosity_definition, tol=tol,
            solver=solver, precision=precision, keep_field=False,  # type: ignore[arg-type]
        )  # fmt: skip
        ten = None
        if want_tensor:
            progress.stage("solving the periodic cell problems (tortuosity tensor)")
            ten = tortuosity_tensor(
                ms, phase=phase, boundary=boundary, relative_diffusivity=rel,  # type: ignore[arg-type]
                tol=tol, solver=solver, precision=precision, diagonal=res,  # type: ignore[arg-type]
            )  # fmt: skip
            if ax != "all":  # report the asked axis as before; the tensor holds the others
                res = _one_axis(res, ms.thickness_axis if ax is None else int(ax))
    for w in caught:
        if issubclass(w.category, PercolationWarning) and str(w.message) not in notes:
            notes.append(str(w.message))
    nd = ms.ndim
    if ten is not None:
        matrix = [[_num(float(ten.tau[i, j])) for j in range(nd)] for i in range(nd)]
        for i in range(nd):  # the diagonal is that of the directional solves
            matrix[i][i] = _num(res.tau[i]) if res.tau[i] is not None else matrix[i][i]
    else:
        matrix = [[_num(res.tau[i]) if i == j else None for j in range(nd)] for i in range(nd)]
    brug = bruggeman_error(res, alpha=alpha)
    data: dict[str, Any] = {
        "tau": [_num(t) for t in res.tau],
        "tensor": matrix,
        "deff_over_d0": [_num(v) for v in res.deff_over_d0],
        "macmullin": [_num(v) for v in res.macmullin],
        "porosity": res.porosity,
        "porosity_percolating": list(res.porosity_percolating),
        "epsilon": list(res.epsilon),
        "porosity_definition": res.porosity_definition,
        "percolating": list(res.percolating),
        "boundary": res.boundary,
        "length_m": list(res.length_m),
        "bruggeman_tau": brug.tau_bruggeman,
        "bruggeman_alpha": alpha,
        "bruggeman_relative_error": [_num(v) for v in brug.relative_error],
        "flux_spread": list(res.flux_spread),
        "flux_mismatch": list(res.flux_mismatch),
        "iterations": list(res.iterations),
        "solver": res.solver,
        "precision": res.precision,
        "relative_diffusivity": res.relative_diffusivity,
        "warnings": notes,
        "provenance": res.provenance.to_dict(),
    }
    if ten is not None:
        data["tensor_deff_over_d0"] = np.asarray(ten.deff_over_d0).tolist()
        data["principal_tau"] = [_num(float(v)) for v in ten.principal_tau]
        data["principal_directions"] = np.asarray(ten.principal_directions).tolist()
        data["tensor_asymmetry"] = ten.asymmetry
        data["tensor_numerical_error"] = ten.numerical_error

    def human() -> None:
        for n in notes:
            typer.echo(f"warning: {n}", err=True)
        typer.echo(
            f"phase {phase}: porosity {res.porosity:.4f}, boundary {res.boundary}, "
            f"eps divides: {res.porosity_definition}, Bruggeman tau {brug.tau_bruggeman:.4g}"
        )
        typer.echo(
            f"{'axis':>4}{'tau':>11}{'Deff/D0':>11}{'N_M':>11}{'percolates':>12}{'iters':>7}"
        )
        for a in res.axes:
            t = res.tau[a]
            typer.echo(
                f"{a:>4}{t:>11.5g}{res.deff_over_d0[a]:>11.5g}{res.macmullin[a]:>11.5g}"
                f"{'yes' if res.percolating[a] else 'no':>12}{res.iterations[a]:>7}"
            )
        if ten is not None:
            typer.echo("tortuosity tensor:")
            for row in matrix:
                typer.echo(
                    "  " + " ".join("       inf" if v is None else f"{v:>10.5g}" for v in row)
                )

    emit(data, as_json=json, human=human, quiet=quiet)


@with_option_groups
def conductivity(
    file: InPath,
    kind: KindOpt = "electronic",
    conductivities: CondOpt = None,
    axis: AxisOpt = None,
    boundary: BoundaryOpt = "face",
    tol: TolOpt = 1e-3,
    solver: SolverOpt = "auto",
    precision: PrecisionOpt = "auto",
    *,
    inputs: InputOptions,
    quiet: QuietOpt = False,
    json: JsonOpt = False,
) -> None:
    """Effective electronic or ionic conductivity (S/m) of the percolating network."""
    from microbat.transport._steady import PercolationWarning
    from microbat.transport.conduction import conductivity as _conductivity

    progress = Progress("conductivity", quiet=quiet).start()
    progress.stage(f"reading {file}")
    ms = inputs.load(file, voxel_size_required=False)  # tau and sigma ratios need no size
    cond = _pairs(conductivities, "conductivities")
    if kind not in ("electronic", "ionic"):
        raise InvalidInputError(f"--kind {kind!r}: use electronic or ionic")
    if cond is None and kind == "ionic":
        cond = {"electrolyte": 1.0}
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PercolationWarning)
        progress.stage(
            f"solving steady {kind} conduction ({' x '.join(map(str, ms.shape))} voxels)"
        )
        res = _conductivity(
            ms, conductivities=cond, axis=_axis(axis), boundary=boundary,  # type: ignore[arg-type]
            tol=tol, solver=solver, precision=precision, keep_field=False,  # type: ignore[arg-type]
        )  # fmt: skip
    notes = [str(w.message) for w in caught if issubclass(w.category, PercolationWarning)]
    data = res.to_dict()
    data.pop("potential", None)
    data["warnings"] = notes

    def human() -> None:
        for n in notes:
            typer.echo(f"warning: {n}", err=True)
        named = ", ".join(f"{k} {v:g} S/m" for k, v in res.conductivities.items())
        typer.echo(
            f"{res.kind} conductivity of {named}"
            f" (volume fraction {res.volume_fraction:.4f}, mean {res.sigma_mean:.4g} S/m)"
        )
        typer.echo(f"{'axis':>4}{'sigma_eff [S/m]':>17}{'tau':>11}{'percolates':>12}")
        for a, s in enumerate(res.sigma_eff):
            if s is None:
                continue
            typer.echo(
                f"{a:>4}{s:>17.5g}{res.tau[a]:>11.5g}{'yes' if res.percolating[a] else 'no':>12}"
            )

    emit(data, as_json=json, human=human, quiet=quiet)


def register(app: typer.Typer) -> None:
    """Register this module's verbs on app."""
    app.command("tortuosity")(guarded(tortuosity))
    app.command("conductivity")(guarded(conductivity))
