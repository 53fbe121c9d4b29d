"""CLI verbs of the cell models: ``discharge``, ``breakdown``, ``compare-transport``.

Without FILE the published parameter set is simulated as is; with FILE (a labelled
microstructure, or a JSON file of :class:`~microbat.cell.MicroProperties`) one
electrode is replaced by the microstructure-derived properties. PyBaMM is imported
only when a verb runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from microbat.cli.common import (
    InputOptions,
    JsonOpt,
    OptionGroup,
    Progress,
    QuietOpt,
    check_writable,
    emit,
    guarded,
    with_option_groups,
)

_FileArg = Annotated[
    Path | None,
    typer.Argument(
        help=(
            "Microstructure (labelled image) or a MicroProperties .json file; without it "
            "the published parameter set is run unchanged."
        ),
        show_default=False,
    ),
]
_ParamsOpt = Annotated[
    str,
    typer.Option(
        "--params",
        help="Parameter set: chen2020, marquis2019, another PyBaMM set name, or a BPX .json file.",
    ),
]
_RatesOpt = Annotated[
    str, typer.Option("--c-rates", help="Discharge C-rates, comma separated (e.g. 0.1,1,3).")
]
# The former spelling, and simulate's singular, kept working but not listed.
_RatesAliasOpt = Annotated[
    str | None, typer.Option("--rates", "--c-rate", hidden=True, help="Same as --c-rates.")
]
_TransportOpt = Annotated[
    str | None,
    typer.Option(
        "--transport",
        help="Effective transport: micro (ε/τ from FILE; the default with FILE) or "
        "bruggeman (published exponents; the default without FILE).",
    ),
]
_ElectrodeOpt = Annotated[
    str | None,
    typer.Option("--electrode", help="Electrode FILE describes: positive (default) or negative."),
]
_AxisOpt = Annotated[
    int | None,
    typer.Option("--axis", help="Tortuosity direction (array axis); default the thickness axis."),
]
_ThicknessOpt = Annotated[
    str | None,
    typer.Option(
        "--thickness",
        help="Electrode thickness with FILE: a length (75um) or 'image'; default the set's.",
    ),
]
_ModelOpt = Annotated[str, typer.Option("--model", help="DFN (P2D) or SPMe.")]
_TauMethodOpt = Annotated[
    str,
    typer.Option(
        "--tortuosity-method",
        help="How τ is measured on FILE: diffusion (steady solve) or random-walk.",
    ),
]
_OutOpt = Annotated[
    Path | None,
    typer.Option("--out", help="Folder for CSV, JSON and PNG outputs.", show_default=False),
]


@dataclass(frozen=True)
class _CellOptions(OptionGroup):
    """Options every cell verb takes: how FILE describes an electrode, the model, --out."""

    electrode: _ElectrodeOpt = None
    axis: _AxisOpt = None
    thickness: _ThicknessOpt = None
    model: _ModelOpt = "DFN"
    tortuosity_method: _TauMethodOpt = "diffusion"
    out: _OutOpt = None


def _rates(text: str, alias: str | None = None) -> tuple[float, ...]:
    from microbat.cell.bridge import check_c_rates
    from microbat.core.errors import InvalidInputError

    text = alias if alias is not None else text
    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    values = []
    for p in parts:
        try:
            values.append(float(p.upper().removesuffix("C")))
        except ValueError:
            raise InvalidInputError(
                f"cannot read C-rate {p!r} in --c-rates {text!r}; write numbers separated by "
                "commas, e.g. --c-rates 0.1,1,3"
            ) from None
    return check_c_rates(values)


def _micro(
    file: Path | None, opts: _CellOptions, inputs: InputOptions, progress: Progress | None = None
):
    from microbat.cell.micro import MicroProperties
    from microbat.core.errors import FileFormatError, InvalidInputError
    from microbat.core.units import parse_length

    if file is None:
        return None
    electrode, thickness, method = opts.electrode, opts.thickness, opts.tortuosity_method
    if electrode is not None and electrode not in ("positive", "negative"):
        raise InvalidInputError(f"--electrode must be positive or negative, got {electrode!r}")
    if file.suffix.lower() == ".json":
        if not file.is_file():
            raise FileFormatError(f"{str(file)!r} does not exist")
        import json

        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise FileFormatError(f"{file} is not valid JSON: {exc}") from None
        if not isinstance(data, dict) or "tau_electrolyte" not in data:
            raise FileFormatError(
                f"{file} is not a MicroProperties file (it needs porosity and "
                "tau_electrolyte); a BPX parameter file goes with --params"
            )
        if electrode is not None:
            data["electrode"] = electrode
        if thickness not in (None, "image"):
            data["thickness_m"] = parse_length(thickness)
        return MicroProperties(**data)
    if progress is not None:
        progress.stage(f"reading {file}")
    try:
        ms = inputs.load(file)
    except ImportError as exc:
        from microbat.core.errors import MicrobatError

        raise MicrobatError(
            f"cannot read the microstructure {str(file)!r}: the file readers are not "
            f"available in this installation ({exc}); give a MicroProperties .json instead"
        ) from None
    th: Any = None
    if thickness == "image":
        th = "image"
    elif thickness is not None:
        th = parse_length(thickness)
    methods = {"diffusion": "diffusion", "random-walk": "random_walk", "random_walk": "random_walk"}
    if method not in methods:
        raise InvalidInputError(
            f"--tortuosity-method must be diffusion or random-walk, got {method!r}"
        )
    if progress is not None:
        progress.stage(f"measuring porosity and tortuosity of {file} ({method})")
    return MicroProperties.from_microstructure(
        ms,
        electrode=electrode or "positive",  # type: ignore[arg-type]
        axis=opts.axis,
        thickness=th,
        tortuosity_method=methods[method],  # type: ignore[arg-type]
    )


def _transport(transport: str | None, micro: Any) -> str:
    from microbat.core.errors import InvalidInputError

    t = transport or ("micro" if micro is not None else "bruggeman")
    if t not in ("micro", "bruggeman"):
        raise InvalidInputError(f"--transport must be micro or bruggeman, got {transport!r}")
    return t


def _fmt(v: float, spec: str) -> str:
    import math

    return "—" if not math.isfinite(v) else format(v, spec)


def register(app: typer.Typer) -> None:
    """Register ``discharge``, ``breakdown`` and ``compare-transport`` on ``app``."""

    @app.command("discharge")
    @guarded
    @with_option_groups
    def discharge(
        file: _FileArg = None,
        params: _ParamsOpt = "chen2020",
        rates: _RatesOpt = "0.1,0.5,1,2,3,5",
        rates_alias: _RatesAliasOpt = None,
        transport: _TransportOpt = None,
        *,
        opts: _CellOptions,
        inputs: InputOptions,
        quiet: QuietOpt = False,
        json_out: JsonOpt = False,
    ) -> None:
        """Rate capability: constant-current discharges from full charge.

        Prints capacity (A·h), energy (W·h), average voltage, the fraction of the C/10
        capacity and the limiting mechanism at each rate. Full charge is PyBaMM's
        set_initial_state(1.0).
        """
        from microbat.cell.parameters import load_parameters
        from microbat.cell.rate import rate_capability

        c_rates = _rates(rates, rates_alias)
        check_writable(opts.out)
        progress = Progress("discharge", quiet=quiet).start()
        micro = _micro(file, opts, inputs, progress)
        out = opts.out
        progress.stage(f"running {len(c_rates)} constant-current discharges ({opts.model})")
        result = rate_capability(
            load_parameters(params),
            c_rates=c_rates,
            model=opts.model,
            transport=_transport(transport, micro),  # type: ignore[arg-type]
            micro=micro,
        )
        data = result.to_dict()
        data["parameters"] = params
        data["micro"] = micro.to_dict() if micro is not None else None
        if out is not None:
            data["files"] = [str(p) for p in result.save(out)]

        def human() -> None:
            from rich.console import Console
            from rich.table import Table

            table = Table(
                title=f"{result.model} · {params} · {result.transport} transport",
                caption=f"full charge: {result.initial_state['definition']}; "
                f"{result.total_time_s:.2f} s",
            )
            for col in ("C-rate", "capacity [A·h]", "energy [W·h]", "avg V", "of C/10", "limit"):
                table.add_column(col, justify="right" if col != "limit" else "left")
            for i, c in enumerate(result.c_rate):
                table.add_row(
                    f"{c:g}",
                    _fmt(result.capacity_Ah[i], ".4f"),
                    _fmt(result.energy_Wh[i], ".3f"),
                    _fmt(result.average_voltage_V[i], ".3f"),
                    _fmt(100 * result.fraction[i], ".1f") + "%",
                    result.bottleneck_key[i] if result.complete[i] else result.status[i],
                )
            Console().print(table)
            if out is not None:
                typer.echo(f"wrote {len(data['files'])} files to {out}")

        emit(data, as_json=json_out, human=human, quiet=quiet)

    @app.command("breakdown")
    @guarded
    @with_option_groups
    def breakdown(
        file: _FileArg = None,
        params: _ParamsOpt = "chen2020",
        rates: _RatesOpt = "0.5,1,2,3",
        rates_alias: _RatesAliasOpt = None,
        transport: _TransportOpt = None,
        *,
        opts: _CellOptions,
        inputs: InputOptions,
        quiet: QuietOpt = False,
        json_out: JsonOpt = False,
    ) -> None:
        """Where the voltage goes, and the bottleneck at each rate.

        Splits OCV − V into electrolyte ohmic, electrolyte concentration, solid ohmic,
        reaction and solid-diffusion losses (closing to round-off).
        """
        from microbat.cell.breakdown import COMPONENTS, voltage_breakdown
        from microbat.cell.parameters import load_parameters

        check_writable(opts.out)
        progress = Progress("breakdown", quiet=quiet).start()
        micro = _micro(file, opts, inputs, progress)
        out = opts.out
        progress.stage(f"splitting the voltage losses ({opts.model}, one discharge per rate)")
        result = voltage_breakdown(
            load_parameters(params),
            c_rates=_rates(rates, rates_alias),
            model=opts.model,
            transport=_transport(transport, micro),  # type: ignore[arg-type]
            micro=micro,
        )
        data = result.to_dict()
        data["parameters"] = params
        if out is not None:
            data["files"] = [str(p) for p in result.save(out)]

        def human() -> None:
            from rich.console import Console
            from rich.table import Table

            table = Table(
                title=f"voltage loss at cut-off [mV] · {result.model} · {params}",
                caption=f"closure error ≤ {1e3 * result.max_residual_V:.2g} mV",
            )
            table.add_column("C-rate", justify="right")
            for k in COMPONENTS:
                table.add_column(k.replace("_", " "), justify="right")
            for part in result.rates:
                table.add_row(
                    f"{part.c_rate:g}", *(f"{1e3 * part.final_loss_V[k]:.0f}" for k in COMPONENTS)
                )
            con = Console()
            con.print(table)
            for part in result.rates:
                con.print(f"{part.c_rate:g}C: {part.bottleneck}")

        emit(data, as_json=json_out, human=human, quiet=quiet)

    @app.command("compare-transport")
    @guarded
    @with_option_groups
    def compare_transport_cmd(
        file: Annotated[
            Path,
            typer.Argument(
                help="Microstructure (labelled image) or a MicroProperties .json file.",
                show_default=False,
            ),
        ],
        params: _ParamsOpt = "chen2020",
        rates: _RatesOpt = "0.1,0.5,1,2,3,5",
        rates_alias: _RatesAliasOpt = None,
        *,
        opts: _CellOptions,
        inputs: InputOptions,
        quiet: QuietOpt = False,
        json_out: JsonOpt = False,
    ) -> None:
        """Bruggeman vs micro-informed transport: capacity and voltage differences."""
        from microbat.cell.compare import compare_transport
        from microbat.cell.parameters import load_parameters

        check_writable(opts.out)
        progress = Progress("compare-transport", quiet=quiet).start()
        micro = _micro(file, opts, inputs, progress)
        out = opts.out
        progress.stage(
            f"running the discharges with Bruggeman and with micro transport ({opts.model})"
        )
        result = compare_transport(
            load_parameters(params), micro, c_rates=_rates(rates, rates_alias), model=opts.model
        )
        data = result.to_dict()
        data["parameters"] = params
        if out is not None:
            data["files"] = [str(p) for p in result.save(out)]

        def human() -> None:
            from rich.console import Console
            from rich.table import Table

            table = Table(
                title=(
                    f"{result.electrode} electrode: τ_e {result.tau_electrolyte_micro:.3g} "
                    f"(micro) vs {result.tau_electrolyte_bruggeman:.3g} (Bruggeman)"
                )
            )
            for col in ("C-rate", "Q Brugg. [A·h]", "Q micro [A·h]", "ΔQ [%]", "ΔV rms", "ΔV max"):
                table.add_column(col, justify="right")
            for row in result.table():
                table.add_row(
                    f"{row['c_rate']:g}",
                    _fmt(row["capacity_bruggeman_Ah"], ".4f"),
                    _fmt(row["capacity_micro_Ah"], ".4f"),
                    _fmt(row["capacity_difference_percent"], "+.1f"),
                    _fmt(1e3 * row["voltage_rms_V"], ".0f") + " mV",
                    _fmt(1e3 * row["voltage_max_V"], ".0f") + " mV",
                )
            Console().print(table)

        emit(data, as_json=json_out, human=human, quiet=quiet)
