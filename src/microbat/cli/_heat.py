"""CLI verb ``heat``: Joule heating, carbon-binder bottlenecks and temperature rise.

JSON output (``--json``): ``total_heat_W``, ``voltage_drop_V``,
``heat_top1pct_fraction``, ``max_delta_T_K``, ``heat_per_area_W_per_m2``,
``heat_per_volume_W_per_m3``, ``energy_balance_error``, ``necks`` (the hottest
clusters with the current each carries), ``heat_depth_W_per_m3`` over ``depth_m``,
``warnings`` and ``outputs`` (files written with ``--out``).

With ``--from-resolved RUN`` the heat is the loss maps of a saved resolved run
(:func:`microbat.degradation.heating.resolved_heating`): ``mode`` is ``resolved``,
``heat_by_kind_W`` adds ``solid_diffusion``, and the necks' currents are ``null``
(the snapshot holds no face currents; ``peak_heat_W_per_m3`` ranks them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from microbat.cli.common import (
    InPath,
    InputOptions,
    JsonOpt,
    Progress,
    QuietOpt,
    check_writable,
    emit,
    guarded,
    with_option_groups,
)


def _properties(text: str | None) -> Any:
    import dataclasses

    from microbat.core.errors import InvalidInputError
    from microbat.degradation.heating import HeatProperties

    if text is None or not text.strip():
        return HeatProperties()
    names = {f.name for f in dataclasses.fields(HeatProperties)}
    kw: dict[str, float] = {}
    for token in text.split(","):
        name, sep, value = token.partition("=")
        name = name.strip()
        if not sep or name not in names:
            raise InvalidInputError(
                f"--properties {token!r}: write name=value with a name of "
                f"{', '.join(sorted(names))}"
            )
        try:
            kw[name] = float(value)
        except ValueError:
            raise InvalidInputError(f"--properties {token!r}: {value!r} is not a number") from None
    return HeatProperties(**kw)


def register(app: typer.Typer) -> None:
    """Register this module's verbs on ``app``."""

    @app.command("heat")
    @guarded
    @with_option_groups
    def heat(
        file: InPath,
        current_density: Annotated[
            str | None,
            typer.Option(
                "--current-density",
                help="Applied current over the electrode area: A/m² or with a unit "
                "(30A/m2, 3mA/cm2; default 30A/m2).",
            ),
        ] = None,
        through: Annotated[
            str,
            typer.Option(
                "--through",
                help="electrode: operating current (electrons, ions, charge transfer); "
                "solid: electronic conduction only, collector face to separator face "
                "(isolates the carbon-binder bottlenecks).",
            ),
        ] = "electrode",
        cooled: Annotated[
            str,
            typer.Option(
                "--cooled",
                help="Face held at the reference temperature: collector, separator or both "
                "(other sides adiabatic).",
            ),
        ] = "collector",
        from_resolved: Annotated[
            Path | None,
            typer.Option(
                "--from-resolved",
                help="A saved resolved run (the --out folder of 'microbat simulate', or its "
                "fields.h5): its loss maps at --snapshot are the heat (its current; "
                "no --current-density, no --through solid).",
            ),
        ] = None,
        snapshot: Annotated[
            int | None,
            typer.Option("--snapshot", help="Snapshot index of --from-resolved (default: last)."),
        ] = None,
        snapshot_time: Annotated[
            float | None,
            typer.Option("--snapshot-time", help="Or the snapshot nearest this time (s)."),
        ] = None,
        necks: Annotated[int, typer.Option("--necks", help="Hottest clusters listed.")] = 10,
        properties: Annotated[
            str | None,
            typer.Option(
                "--properties",
                help="Override properties (SI), e.g. carbon_binder_conductivity=50,"
                "electrolyte_conductivity=1.1 (names of microbat.degradation.HeatProperties).",
            ),
        ] = None,
        tol: Annotated[
            float, typer.Option("--tol", help="Relative residual of the solves.")
        ] = 1e-10,
        out: Annotated[
            Path | None,
            typer.Option(
                "--out",
                help="Folder for fields.npz, VTK fields, depth_profile.csv, necks.csv, "
                "heat_slices.png, heat_depth.png and result.json.",
            ),
        ] = None,
        *,
        inputs: InputOptions,
        quiet: QuietOpt = False,
        json: JsonOpt = False,
    ) -> None:
        """Joule heat per voxel, carbon-binder bottlenecks and the temperature rise."""
        import warnings

        from microbat.core.errors import InvalidInputError
        from microbat.core.units import parse_current_density
        from microbat.degradation._output import write_heat
        from microbat.degradation.heating import _check_current, joule_heating, resolved_heating

        if from_resolved is not None:
            if current_density is not None or through != "electrode":
                raise InvalidInputError(
                    "--from-resolved takes the heat and the current of the run: leave out "
                    "--current-density and --through"
                )
            if not from_resolved.exists():
                raise InvalidInputError(f"--from-resolved {from_resolved}: no such file or folder")
        elif snapshot is not None or snapshot_time is not None:
            raise InvalidInputError("--snapshot and --snapshot-time need --from-resolved")
        j = _check_current(parse_current_density(current_density or "30A/m2"))
        props = _properties(properties)
        if through not in ("electrode", "solid"):
            raise InvalidInputError(f"--through {through!r}: use electrode or solid")
        if cooled not in ("collector", "separator", "both"):
            raise InvalidInputError(f"--cooled {cooled!r}: use collector, separator or both")
        check_writable(out)
        with Progress("heat", quiet=quiet or json) as progress:
            progress.stage(f"reading {file}")
            ms = inputs.load(file)
            progress.stage(
                f"reading the loss maps of {from_resolved} and solving the heat conduction"
                if from_resolved is not None
                else f"solving the {'electronic' if through == 'solid' else 'coupled'} "
                "potential and the heat conduction"
            )
            with warnings.catch_warnings():
                # said on stderr and in the JSON (res.warnings)
                warnings.simplefilter("ignore")
                if from_resolved is not None:
                    res = resolved_heating(
                        ms, from_resolved, snapshot=snapshot, time_s=snapshot_time,
                        properties=props, cooled=cooled, n_necks=necks,
                    )  # fmt: skip
                else:
                    res = joule_heating(
                        ms,
                        current_density=j,
                        through=through,  # type: ignore[arg-type]
                        properties=props,
                        cooled=cooled,
                        n_necks=necks,
                        tol=tol,
                    )
            files: list[Path] = []
            if out is not None:
                progress.stage(f"writing {out}")
                files = write_heat(
                    res, out, thickness_axis=ms.thickness_axis, voxel_size=ms.voxel_size
                )
        data: dict[str, Any] = res.to_dict()
        data["outputs"] = [str(f) for f in files]
        if json and not quiet:  # the text output says them itself
            for w in res.warnings:
                typer.echo(f"warning: {w}", err=True)

        def human() -> None:
            for w in res.warnings:
                typer.echo(f"warning: {w}", err=True)
            typer.echo(
                f"{res.mode} mode at {res.current_density_A_per_m2:g} A/m²: current "
                f"{res.current_A:.4g} A, voltage drop {res.voltage_drop_V:.4g} V "
                f"({res.resistance_ohm_m2 * 1e4:.4g} Ω cm²)"
            )
            k = res.heat_by_kind_W
            extra = (
                f", solid diffusion {k['solid_diffusion']:.3g}" if "solid_diffusion" in k else ""
            )
            typer.echo(
                f"heat {res.total_heat_W:.4g} W = {res.heat_per_area_W_per_m2:.4g} W/m² = "
                f"{res.heat_per_volume_W_per_m3:.4g} W/m³ (electronic {k['electronic']:.3g}, "
                f"ionic {k['ionic']:.3g}, reaction {k['reaction']:.3g}{extra} W); energy "
                f"balance error {res.energy_balance_error:.1e}"
            )
            typer.echo(
                f"hottest 1 % of the voxels: {100 * res.heat_top1pct_fraction:.1f} % of the "
                f"heat in {res.n_necks} clusters"
            )
            typer.echo(
                f"temperature rise: max {res.max_delta_T_K:.3g} K, above its layer "
                f"{res.local_delta_T_K:.3g} K; hottest neck as a point source at 1 µm "
                f"{res.point_source_delta_T_K:.3g} K ({res.thermal_boundary})"
            )
            if res.necks and res.mode == "resolved":  # heat densities, no face currents
                typer.echo(f"{'#':>3}{'phase':>10}{'voxels':>8}{'q peak [W/m³]':>15}"
                           f"{'heat [W]':>11}{'depth [µm]':>12}")  # fmt: skip
                for i, n in enumerate(res.necks, 1):
                    typer.echo(
                        f"{i:>3}{n['phase']:>10}{n['voxels']:>8}{n['peak_heat_W_per_m3']:>15.4g}"
                        f"{n['heat_W']:>11.3g}{1e6 * n['depth_m']:>12.3g}"
                    )
            elif res.necks:
                typer.echo(
                    f"{'#':>3}{'phase':>10}{'voxels':>8}{'|j| peak [A/m²]':>17}"
                    f"{'current [A]':>13}{'of I':>7}{'heat [W]':>11}{'depth [µm]':>12}"
                )
                for i, n in enumerate(res.necks, 1):
                    typer.echo(
                        f"{i:>3}{n['phase']:>10}{n['voxels']:>8}"
                        f"{n['peak_current_density_A_per_m2']:>17.4g}{n['current_A']:>13.3g}"
                        f"{100 * n['current_fraction']:>6.1f}%{n['heat_W']:>11.3g}"
                        f"{1e6 * n['depth_m']:>12.3g}"
                    )
            if files:
                typer.echo(f"wrote {len(files)} files to {out}")

        emit(data, as_json=json, human=human, quiet=quiet)
