"""CLI verbs for morphology: ``metrics`` and ``connectivity``."""

from __future__ import annotations

import math
from typing import Annotated, Any

import typer

from microbat.cli.common import (
    InPath,
    InputOptions,
    JsonOpt,
    OutPath,
    Progress,
    QuietOpt,
    check_writable,
    emit,
    guarded,
    with_option_groups,
)

SizesOpt = Annotated[
    bool,
    typer.Option(
        "--sizes/--no-sizes",
        help="Compute the local-thickness size summary of each phase (the slow part).",
    ),
]
AxisOpt = Annotated[
    int | None,
    typer.Option(
        "--axis", help="Axis whose two faces define percolating clusters (default: thickness axis)."
    ),
]
RemoveOpt = Annotated[
    bool,
    typer.Option(
        "--remove-isolated",
        help="Reassign isolated solid clusters before writing OUT (see --rule).",
    ),
]
RuleOpt = Annotated[
    str,
    typer.Option(
        "--rule",
        help=(
            "Where isolated clusters go: 'neighbour' (the phase sharing most faces with the "
            "cluster) or a phase name."
        ),
    ),
]
CleanOpt = Annotated[
    str,
    typer.Option(
        "--clean",
        help="Phases cleaned by --remove-isolated: 'solid' (all solids together) or names.",
    ),
]


def _um(x: float) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x * 1e6:.4g} µm"


@with_option_groups
def metrics(
    file: InPath,
    inputs: InputOptions,
    sizes: SizesOpt = True,
    quiet: QuietOpt = False,
    json: JsonOpt = False,
) -> None:
    """Morphology of a labelled image: fractions, interface areas, sizes, percolation."""
    from microbat.imaging.metrics import characterize

    progress = Progress("metrics", quiet=quiet).start()
    progress.stage(f"reading {file}")
    ms = inputs.load(file)
    progress.stage("measuring fractions, interfaces, percolation" + (" and sizes" if sizes else ""))
    res = characterize(ms, sizes=sizes)

    def human() -> None:
        typer.echo(f"shape {' x '.join(map(str, res.shape))}, thickness axis {res.thickness_axis}")
        typer.echo(
            f"{'phase':<14}{'fraction':>10}{'S/V [1/m]':>13}{'d50':>13}  percolates (axes 0,1,..)"
        )
        for name, frac in res.volume_fractions.items():
            ssa = res.specific_surface_areas.get(name, math.nan)
            d50 = res.sizes.get(name, {}).get("d50", math.nan)
            perc = res.percolation[name].percolates
            typer.echo(
                f"{name:<14}{frac:>10.4f}{ssa:>13.4g}{_um(d50):>13}  "
                + " ".join("yes" if p else "no" for p in perc)
            )
        if res.interface_areas:
            typer.echo("interfaces (area per total volume):")
            for (a, b), v in res.interface_specific_areas.items():
                typer.echo(f"  {a + '/' + b:<26}{v:>13.4g} 1/m")

    emit(res, as_json=json, human=human, quiet=quiet)


@with_option_groups
def connectivity(
    src: InPath,
    dst: OutPath,
    axis: AxisOpt = None,
    remove_isolated: RemoveOpt = False,
    rule: RuleOpt = "neighbour",
    clean: CleanOpt = "solid",
    *,
    inputs: InputOptions,
    quiet: QuietOpt = False,
    json: JsonOpt = False,
) -> None:
    """Classify clusters (percolating / dead-end / isolated) and write the (cleaned) image."""
    from microbat.imaging.connectivity import analyze_connectivity
    from microbat.imaging.connectivity import remove_isolated as _remove
    from microbat.io import save_microstructure

    check_writable(dst, what="DST", folder=False)
    progress = Progress("connectivity", quiet=quiet).start()
    progress.stage(f"reading {src}")
    ms = inputs.load(src)
    progress.stage("labelling clusters")
    before = analyze_connectivity(ms, axis=axis)
    report = None
    out = ms
    if remove_isolated:
        out, report = _remove(ms, axis=axis, phases=clean, rule=rule)
    after = analyze_connectivity(out, axis=axis) if report is not None else before
    meta = dict(out.metadata)
    meta["connectivity"] = {
        "axis": after.axis,
        "cluster_counts": after.cluster_counts,
        "volume_fractions": after.volume_fractions,
    }
    out = out.with_labels(out.labels, metadata=meta)
    written = save_microstructure(out, dst)
    data: dict[str, Any] = {
        "output": str(written),
        "connectivity": before.to_dict(),
        "removal": report.to_dict() if report is not None else None,
        "connectivity_after": after.to_dict() if report is not None else None,
    }

    def human() -> None:
        typer.echo(f"axis {before.axis}; volume fraction of each class (of the whole volume):")
        typer.echo(
            f"{'phase':<14}{'conn':>5}{'clusters':>10}{'percol.':>10}{'dead-end':>10}"
            f"{'isolated':>10}"
        )
        for name in before.phases:
            vf = before.volume_fractions[name]
            typer.echo(
                f"{name:<14}{before.connectivity[name]:>5}{before.n_clusters[name]:>10}"
                f"{vf['percolating']:>10.4f}{vf['dead_end']:>10.4f}{vf['isolated']:>10.4f}"
            )
        if report is not None:
            typer.echo(
                f"removed {report.n_clusters_removed} isolated cluster(s) "
                f"({report.n_voxels_reassigned} voxels) of {', '.join(report.phases)}; "
                f"transfers {report.transfers}"
            )
        typer.echo(f"wrote {written}")

    emit(data, as_json=json, human=human, quiet=quiet)


def register(app: typer.Typer) -> None:
    """Register this module's verbs on app."""
    app.command("metrics")(guarded(metrics))
    app.command("connectivity")(guarded(connectivity))
