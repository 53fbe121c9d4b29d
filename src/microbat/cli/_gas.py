"""CLI verb ``gas``: gas in the pores by capillarity, and the transport it costs.

JSON output (``--json``): ``saturation``, ``achieved_saturation``,
``effective_conductivity_ratio``, ``wetted_area_fraction``, ``tau``,
``isolated_electrolyte_fraction``, ``electrolyte_fraction``, ``percolating`` and
``capillary_pressure_Pa`` are lists with one entry per requested saturation (in the
order given); ``curve`` holds the saturation–pressure curve; ``rate`` the P2D
capacities with ``--c-rates``; ``outputs`` the files written with ``--out``.
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
    SeedOpt,
    check_writable,
    emit,
    guarded,
    with_option_groups,
)


def _floats(text: str | None, what: str) -> list[float] | None:
    from microbat.core.errors import InvalidInputError

    if text is None or not text.strip():
        return None
    try:
        return [float(t) for t in text.replace(";", ",").split(",") if t.strip()]
    except ValueError:
        raise InvalidInputError(
            f"cannot read {text!r} in {what}; give numbers separated by commas, e.g. 0.1,0.2"
        ) from None


def register(app: typer.Typer) -> None:
    """Register this module's verbs on ``app``."""

    @app.command("gas")
    @guarded
    @with_option_groups
    def gas(
        file: InPath,
        saturation: Annotated[
            str,
            typer.Option(
                "--saturation",
                help="Gas saturations in [0, 1), comma separated: the fraction of the pore "
                "volume taken by gas.",
            ),
        ] = "0.1,0.2,0.3",
        mode: Annotated[
            str,
            typer.Option(
                "--mode",
                help="drainage: gas enters from --inlet by capillary drainage; bubbles: gas "
                "in situ, in the largest pores first; nucleation: bubbles growing from "
                "random reaction sites (active/electrolyte faces).",
            ),
        ] = "drainage",
        inlet: Annotated[
            str,
            typer.Option(
                "--inlet",
                help="Face the gas enters through (drainage): separator (last index of the "
                "thickness axis), collector, or axis:first|last.",
            ),
        ] = "separator",
        trapping: Annotated[
            bool,
            typer.Option(
                "--trapping/--no-trapping",
                help="Keep electrolyte that the gas cuts off from the outlet face.",
            ),
        ] = False,
        outlet: Annotated[
            str | None,
            typer.Option(
                "--outlet",
                help="Face the electrolyte leaves through (default: opposite the inlet).",
            ),
        ] = None,
        sites: Annotated[
            int | None,
            typer.Option("--sites", help="Nucleation sites (default one per (10 µm)³)."),
        ] = None,
        surface_tension: Annotated[
            float,
            typer.Option(
                "--surface-tension", help="Electrolyte surface tension in N/m (carbonates: 0.035)."
            ),
        ] = 0.035,
        contact_angle: Annotated[
            float,
            typer.Option(
                "--contact-angle",
                help="Contact angle through the electrolyte in degrees, in [0, 90) (default 30).",
            ),
        ] = 30.0,
        n_pressures: Annotated[
            int, typer.Option("--pressures", help="Pressures of the drainage curve.")
        ] = 20,
        c_rates: Annotated[
            str | None,
            typer.Option(
                "--c-rates",
                help="Also run the P2D rate capability at these C-rates for every "
                "saturation (e.g. 1,3; needs PyBaMM, a few seconds).",
            ),
        ] = None,
        parameter_set: Annotated[
            str, typer.Option("--parameter-set", help="Cell parameters of the P2D runs.")
        ] = "chen2020",
        electrode: Annotated[
            str, typer.Option("--electrode", help="Electrode FILE is: positive or negative.")
        ] = "positive",
        out: Annotated[
            Path | None,
            typer.Option(
                "--out",
                help="Folder for transport_loss.csv, drainage.csv, fields.npz, VTK fields, "
                "gas_slices.png, gas_curves.png and result.json.",
            ),
        ] = None,
        seed: SeedOpt = 0,
        *,
        inputs: InputOptions,
        quiet: QuietOpt = False,
        json: JsonOpt = False,
    ) -> None:
        """Gas in the pores by capillarity: conductivity, wetted area and capacity lost."""
        from microbat.degradation._output import write_gas
        from microbat.degradation.gas import _check_capillary, _saturations, gas_analysis

        sats = _saturations(_floats(saturation, "--saturation") or [])
        _check_capillary(surface_tension, contact_angle)
        rates = _floats(c_rates, "--c-rates")
        check_writable(out)
        with Progress("gas", quiet=quiet or json) as progress:
            progress.stage(f"reading {file}")
            ms = inputs.load(file)
            progress.stage(
                f"placing gas ({mode}) at {len(sats)} saturations and solving the "
                "remaining electrolyte" + (" (with P2D runs)" if rates else "")
            )
            res = gas_analysis(
                ms,
                sats,
                mode=mode,  # type: ignore[arg-type]
                inlet=inlet,
                trapping=trapping,
                outlet=outlet,
                sites=sites,
                seed=seed,
                surface_tension=surface_tension,
                contact_angle_deg=contact_angle,
                n_pressures=n_pressures,
                c_rates=rates,
                parameter_set=parameter_set,
                electrode=electrode,  # type: ignore[arg-type]
            )
            files: list[Path] = []
            if out is not None:
                progress.stage(f"writing {out}")
                files = write_gas(
                    res, out, thickness_axis=ms.thickness_axis, voxel_size=ms.voxel_size
                )
        data: dict[str, Any] = res.to_dict()
        data["outputs"] = [str(f) for f in files]

        def human() -> None:
            for n in res.notes:
                typer.echo(f"note: {n}", err=True)
            c = res.curve
            typer.echo(
                f"gas ({res.mode}, inlet {res.inlet}{', trapping' if res.trapping else ''}); "
                f"entry pressure {c.entry_pressure_Pa / 1e3:.4g} kPa"
                + (
                    f", breakthrough {c.breakthrough_pressure_Pa / 1e3:.4g} kPa"
                    if c.breakthrough_pressure_Pa not in (None, float("inf"))
                    else ""
                )
            )
            b = res.baseline
            typer.echo(
                f"without gas: electrolyte {b['electrolyte_fraction']:.4f}, tau "
                f"{b['tau']:.4g}, wetted active area {b['wetted_area_per_volume_per_m']:.4g} 1/m"
            )
            typer.echo(
                f"{'S':>6}{'P_c [kPa]':>11}{'kappa/k0':>10}{'tau':>9}{'wet area':>10}"
                f"{'isolated':>10}"
                + "".join(f"{f'Q({c:g}C)':>10}" for c in (res.rate or {}).get("c_rates", []))
            )
            for i, s in enumerate(res.achieved_saturation):
                tau = res.tau[i]
                row = (
                    f"{s:>6.3f}{res.capillary_pressure_Pa[i] / 1e3:>11.4g}"
                    f"{res.effective_conductivity_ratio[i]:>10.4f}"
                    f"{'inf' if tau is None else f'{tau:.4g}':>9}"
                    f"{res.wetted_area_fraction[i]:>10.4f}"
                    f"{res.isolated_electrolyte_fraction[i]:>10.4f}"
                )
                for v in ((res.rate or {}).get("capacity_ratio") or [[]] * len(sats))[i]:
                    row += f"{'-' if v is None else f'{v:.3f}':>10}"
                typer.echo(row)
            if files:
                typer.echo(f"wrote {len(files)} files to {out}")

        emit(data, as_json=json, human=human, quiet=quiet)
