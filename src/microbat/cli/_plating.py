"""CLI verb ``plating``: a resolved fast charge and where lithium could plate.

JSON output (``--json``): ``onset_time_s`` and ``onset_soc`` (null: no plating
risk), ``area_fraction_at_risk``, ``min_overpotential_V``, ``time_s`` and ``soc``
(lists over the monitored steps), ``min_plating_overpotential_V``,
``heterogeneity_cov`` (the aging heterogeneity index and the CoVs of particle SOC,
current density and plating exposure at the end), ``hotspots``, the depth profile at
the end, ``charge`` (how the run went), ``dfn`` with ``--dfn`` and ``outputs`` with
``--out``.
"""

from __future__ import annotations

import math
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


def _check_set(params: str, electrode: str) -> Any:
    """The parameter set, refused in one line when it lacks the electrode."""
    from microbat.cell.parameters import load_parameters
    from microbat.cell.resolved import ResolvedParameters
    from microbat.core.errors import InvalidInputError

    if electrode not in ("negative", "positive"):
        raise InvalidInputError(f"--electrode {electrode!r}: use negative or positive")
    p = load_parameters(params)
    try:
        ResolvedParameters.from_cell_parameters(p, electrode)
    except (KeyError, InvalidInputError) as exc:
        raise InvalidInputError(
            f"parameter set {params!r} has no usable {electrode} electrode ({exc}); "
            "plating maps need a graphite negative electrode, e.g. --params chen2020"
        ) from None
    return p


def heterogeneity_cov(het: dict[str, Any]) -> dict[str, Any]:
    """The end-of-charge CoVs of a heterogeneity dictionary (empty without particles)."""
    end = (het or {}).get("end") or {}
    return {
        "index": end.get("index"),
        "soc": end.get("soc"),
        "current_density": end.get("current_density"),
        "plating_exposure": end.get("plating_exposure"),
        "time_s": end.get("time_s"),
    }


def register(app: typer.Typer) -> None:
    """Register this module's verbs on ``app``."""

    @app.command("plating")
    @guarded
    @with_option_groups
    def plating(
        file: InPath,
        c_rate: Annotated[float, typer.Option("--c-rate", help="Charge C-rate (> 0).")] = 3.0,
        params: Annotated[
            str,
            typer.Option(
                "--params", help="Parameter set name (chen2020: graphite negative) or BPX file."
            ),
        ] = "chen2020",
        electrode: Annotated[
            str,
            typer.Option("--electrode", help="Electrode of the set FILE is (default negative)."),
        ] = "negative",
        cv_voltage: Annotated[
            float | None,
            typer.Option(
                "--cv-voltage",
                help="Hold this voltage (V vs Li) after the constant-current phase.",
            ),
        ] = None,
        max_steps: Annotated[
            int | None, typer.Option("--max-steps", help="Stop after N accepted steps.")
        ] = None,
        max_dt: Annotated[
            float | None,
            typer.Option(
                "--max-dt",
                help="Largest time step (s); the onset map holds step times, so a smaller "
                "step resolves the onset order finer (default: a tenth of 3600/C).",
            ),
        ] = None,
        end_time: Annotated[
            float | None,
            typer.Option("--end-time", help="Stop at this simulated time (s), a normal end."),
        ] = None,
        maps: Annotated[
            str | None,
            typer.Option(
                "--maps",
                help="Times (s) of the stored overpotential maps, comma separated (default: "
                "a quarter, half and three quarters of 3600/C; the end is always stored).",
            ),
        ] = None,
        dfn: Annotated[
            bool,
            typer.Option(
                "--dfn/--no-dfn",
                help="Also charge the homogenised electrode in PyBaMM's DFN at the same "
                "current density and report its plating onset.",
            ),
        ] = False,
        out: Annotated[
            Path | None,
            typer.Option(
                "--out",
                help="Folder for result.json, plating_series.csv, plating_depth.csv, "
                "hotspots.csv, particles.csv, plating_fields.vti, fields.npz, "
                "hotspot_slices.png and plating_curves.png.",
            ),
        ] = None,
        *,
        inputs: InputOptions,
        quiet: QuietOpt = False,
        json: JsonOpt = False,
    ) -> None:
        """Charge a resolved electrode: plating onset map, hotspots, heterogeneity index."""
        from microbat.cell.resolved import ResolvedOptions
        from microbat.core.errors import InvalidInputError
        from microbat.degradation.plating import dfn_end_time, dfn_plating, plating_map

        if not (math.isfinite(c_rate) and c_rate > 0):
            raise InvalidInputError(f"--c-rate {c_rate:g}: give a positive C-rate (e.g. 3)")
        times = None
        if maps:
            try:
                times = [float(v) for v in maps.split(",") if v.strip()]
            except ValueError:
                raise InvalidInputError(
                    f"--maps {maps!r}: give times in seconds separated by commas"
                ) from None
        p = _check_set(params, electrode)
        check_writable(out)
        if max_dt is not None and not (math.isfinite(max_dt) and max_dt > 0):
            raise InvalidInputError(f"--max-dt {max_dt:g}: give a positive time step in seconds")
        kw: dict[str, Any] = {"end_time_s": end_time, "dt_max_s": max_dt}
        if max_steps is not None:
            kw["max_steps"] = max_steps
        opt = ResolvedOptions(**kw)
        with Progress("plating", quiet=quiet or json) as progress:
            progress.stage(f"reading {file}")
            ms = inputs.load(file)
            progress.stage(f"resolved charge at {c_rate:g}C with the plating monitor")

            def on_step(info: Any) -> None:
                progress.step(f"t = {info.time_s:.4g} s, V = {info.voltage_V:.4f} V", done=None)

            res = plating_map(
                ms,
                p,
                c_rate=c_rate,
                cv_voltage=cv_voltage,
                electrode=electrode,
                options=opt,
                store_times=times,
                on_step=on_step,
            )
            dfn_data = None
            if dfn:
                progress.stage("DFN charge of the homogenised electrode (PyBaMM)")
                d = dfn_plating(
                    ms,
                    p,
                    current_A=abs(res.charge["current_A"]),
                    initial_stoichiometry=res.charge["initial_stoichiometry"],
                    end_time_s=dfn_end_time(res),
                    cutoff_V=-1.0,
                    electrode=electrode,
                    options=opt,
                )
                dfn_data = {
                    "end_time_s": dfn_end_time(res),
                    "onset_time_s": d.onset_time_s,
                    "onset_soc": d.onset_soc,
                    "min_plating_overpotential_V": float(min(d.min_overpotential_V)),
                    "end_status": d.end_status,
                    "solve_time_s": d.solve_time_s,
                }
            files: list[Path] = []
            if out is not None:
                progress.stage(f"writing {out}")
                files = res.save(out)
        data: dict[str, Any] = res.to_dict()
        data["heterogeneity_cov"] = heterogeneity_cov(res.heterogeneity)
        if dfn_data is not None:
            data["dfn"] = dfn_data
        data["outputs"] = [str(f) for f in files]

        def human() -> None:
            for n in res.notes:
                typer.echo(f"note: {n}", err=True)
            ch = res.charge
            typer.echo(
                f"charge at {c_rate:g}C ({ch.get('current_A', float('nan')):.4g} A) to "
                f"t = {res.time_s[-1]:.4g} s, SOC {res.soc[-1]:.3f}: {ch.get('status')}"
            )
            if res.plated:
                typer.echo(
                    f"plating risk from t = {res.onset_time_s:.4g} s (SOC {res.onset_soc:.3f}); "
                    f"{100 * res.area_fraction_at_risk[-1]:.1f} % of the interface at risk at "
                    f"the end; min eta_pl {1e3 * res.min_plating_overpotential_V:.1f} mV"
                )
                hs = res.worst_hotspot()
                if hs is not None:
                    typer.echo(
                        f"worst hotspot: {hs.area_um2:.4g} um^2 ({hs.voxels} voxels) at "
                        f"{1e6 * hs.depth_m:.3g} um from the separator, onset "
                        f"{hs.onset_time_s:.4g} s"
                    )
            else:
                typer.echo(
                    f"no plating risk: min eta_pl {1e3 * res.min_plating_overpotential_V:.1f} mV"
                )
            h = data["heterogeneity_cov"]
            if h.get("index") is not None:

                def g(v: Any) -> str:
                    return "-" if v is None else f"{v:.3g}"

                typer.echo(
                    f"aging heterogeneity index (CoV of particle SOC) {h['index']:.4g}; CoV of "
                    f"current density {g(h['current_density'])}, of plating exposure "
                    f"{g(h['plating_exposure'])}"
                )
            if dfn_data is not None:
                on = dfn_data["onset_time_s"]
                typer.echo(
                    "DFN (homogenised, CC"
                    + (f" up to the CV start, {dfn_data['end_time_s']:.4g} s" if cv_voltage else "")
                    + "): "
                    + ("no plating risk" if math.isnan(on) else f"onset {on:.4g} s")
                    + f", min eta_pl {1e3 * dfn_data['min_plating_overpotential_V']:.1f} mV"
                )
            if files:
                typer.echo(f"wrote {len(files)} files to {out}")

        emit(data, as_json=json, human=human, quiet=quiet)
