"""CLI verb ``eis``: impedance spectrum of a voxel electrode, decomposed."""

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


def register(app: typer.Typer) -> None:
    """Register this module's verbs on ``app``."""

    @app.command("eis")
    @guarded
    @with_option_groups
    def eis(
        file: InPath,
        soc: Annotated[float, typer.Option("--soc", help="State of charge (0..1).")] = 0.5,
        blocking: Annotated[
            bool, typer.Option("--blocking", help="Double layer only (no Faradaic branch).")
        ] = False,
        out: Annotated[
            Path | None,
            typer.Option("--out", help="Folder for spectrum.csv, nyquist_bode.png, eis.json."),
        ] = None,
        params: Annotated[
            str,
            typer.Option(
                "--params",
                help="Parameter set (chen2020, marquis2019, a PyBaMM set) or 'defaults' "
                "(microbat's round NMC values, no PyBaMM).",
            ),
        ] = "chen2020",
        electrode: Annotated[
            str, typer.Option("--electrode", help="Electrode FILE is: positive or negative.")
        ] = "positive",
        f_min: Annotated[float, typer.Option("--f-min", help="Lowest frequency (Hz).")] = 1e-2,
        f_max: Annotated[float, typer.Option("--f-max", help="Highest frequency (Hz).")] = 1e5,
        per_decade: Annotated[int, typer.Option("--per-decade", help="Points per decade.")] = 8,
        solver: Annotated[
            str, typer.Option("--solver", help="auto, direct or iterative.")
        ] = "auto",
        sensitivity_model: Annotated[
            str,
            typer.Option(
                "--sensitivity-model",
                help="Model for the parameter sensitivities: homogenized (fast), resolved "
                "(11 spectra of the resolved model) or none.",
            ),
        ] = "homogenized",
        model: Annotated[
            str,
            typer.Option(
                "--model",
                help="Spectrum to compute and decompose: resolved (the voxels; minutes on "
                "large images), homogenized (a transmission line from ε, τ and the interface "
                "area; seconds) or both (the resolved one decomposed, the homogenised one "
                "beside it).",
            ),
        ] = "both",
        se_conductivity: Annotated[
            float | None,
            typer.Option(
                "--se-conductivity",
                help="Ionic conductivity (S/m) of the solid electrolyte of a composite "
                "cathode (an image with a phase of role solid_electrolyte: single-ion "
                "conductor); default 0.2 = 2 mS/cm, as simulate.",
            ),
        ] = None,
        workers: Annotated[
            int | None,
            typer.Option(
                "--workers",
                help="Resolved model: processes (iterative solver) or threads (direct) "
                "solving frequencies in parallel (default: automatic).",
            ),
        ] = None,
        *,
        inputs: InputOptions,
        quiet: QuietOpt = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Impedance spectrum of an electrode image (resolved and homogenised), decomposed."""
        from microbat.cell.eis.decomposition import decompose, sensitivity
        from microbat.cell.eis.homogenized import homogenized_eis
        from microbat.cell.eis.parameters import EISParameters
        from microbat.cell.eis.resolved import resolved_eis
        from microbat.cell.eis.result import default_frequencies
        from microbat.core.errors import InvalidInputError

        if model not in ("both", "resolved", "homogenized"):
            raise InvalidInputError(f"--model {model!r}; use resolved, homogenized or both")
        if sensitivity_model == "resolved" and model == "homogenized":
            raise InvalidInputError(
                "--sensitivity-model resolved needs the resolved model: use --model resolved "
                "or both, or --sensitivity-model homogenized"
            )
        if sensitivity_model not in ("none", "homogenized", "resolved"):
            raise InvalidInputError(
                f"--sensitivity-model {sensitivity_model!r}; use homogenized, resolved or none"
            )
        check_writable(out)
        with Progress("eis", quiet=quiet) as progress:
            progress.stage(f"reading {file}")
            ms = inputs.load(file)
            over: dict[str, Any] = {}
            if se_conductivity is not None:
                over["solid_electrolyte_conductivity_S_per_m"] = se_conductivity
            if params == "defaults":
                p = EISParameters(soc=soc, **over)
            else:
                p = EISParameters.from_cell(params, electrode=electrode, soc=soc, **over)  # type: ignore[arg-type]
            freqs = default_frequencies(f_min, f_max, per_decade)
            res: Any = None
            what = f"resolved model, {' x '.join(map(str, ms.shape))} voxels"

            def tick(done: int, total: int, message: str, where: str = what) -> None:
                progress.step(f"{where}: {message}", done=done)

            if model != "homogenized":
                progress.stage(f"solving the {what}, {len(freqs)} frequencies", total=len(freqs))
                res = resolved_eis(
                    ms,
                    p,
                    frequencies=freqs,
                    blocking=blocking,
                    solver=solver,  # type: ignore[arg-type]
                    workers=workers,
                    progress=tick,
                )
            hom: Any = None
            progress.stage("solving the homogenised model")
            if model == "homogenized":
                hom = homogenized_eis(ms, p, frequencies=freqs, blocking=blocking)
            else:
                try:
                    hom = homogenized_eis(ms, p, frequencies=freqs, blocking=blocking)
                except InvalidInputError:
                    hom = None
            main = res if res is not None else hom
            beside = hom if model == "both" else None  # the homogenised spectrum shown beside
            sens = None
            if sensitivity_model != "none":
                progress.stage(f"computing parameter sensitivities ({sensitivity_model} model)")
            if sensitivity_model == "homogenized" and hom is not None:
                sens = sensitivity(
                    lambda q: (
                        homogenized_eis(ms, q, frequencies=freqs, blocking=blocking).impedance
                    ),
                    p,
                    freqs,
                    model="homogenized",
                )
            elif sensitivity_model == "resolved":
                spectra = [0]

                def perturbed(q: Any) -> Any:
                    spectra[0] += 1
                    return resolved_eis(
                        ms,
                        q,
                        frequencies=freqs,
                        blocking=blocking,
                        solver=solver,  # type: ignore[arg-type]
                        workers=workers,
                        progress=lambda d, t, m: tick(
                            d, t, m, f"sensitivity spectrum {spectra[0]}"
                        ),
                    ).impedance

                sens = sensitivity(perturbed, p, freqs, model="resolved")
            progress.stage("decomposing the spectrum (DRT, circuit fit)")
            table = decompose(freqs, main.impedance, blocking=blocking, sensitivity_result=sens)
            data: dict[str, Any] = {
                "model": main.model,
                "frequency_Hz": freqs.tolist(),
                "z_real_ohm": main.z_real_ohm.tolist(),
                "z_imag_ohm": main.z_imag_ohm.tolist(),
                "area_m2": main.area_m2,
                "soc": soc,
                "blocking": blocking,
                "parameters": main.parameters,
                "details": main.details,
                "decomposition": table,
            }
            if beside is not None:
                data["homogenized"] = {
                    "z_real_ohm": hom.z_real_ohm.tolist(),
                    "z_imag_ohm": hom.z_imag_ohm.tolist(),
                    "effective": hom.details,
                }
            if out is not None:
                progress.stage(f"writing {out}")
                import json

                from microbat.cell.eis.plots import plot_spectra
                from microbat.core.atomic import atomic_write_text
                from microbat.core.results import to_jsonable

                out.mkdir(parents=True, exist_ok=True)
                main.to_csv(out / "spectrum.csv")
                if beside is not None:
                    beside.to_csv(out / "spectrum_homogenized.csv")
                ann = dict(sens.characteristic_Hz) if sens is not None else None
                plot_spectra(
                    [r for r in (main, beside) if r is not None],
                    annotate=ann,
                    path=out / "nyquist_bode.png",
                )
                atomic_write_text(
                    out / "eis.json", json.dumps(to_jsonable(data), indent=2, allow_nan=False)
                )
                data["files"] = [
                    str(out / n) for n in ("spectrum.csv", "nyquist_bode.png", "eis.json")
                ]

        def human() -> None:
            if res is not None:
                typer.echo(
                    f"{ms.shape} voxels, {res.details['n_unknowns']} unknowns, "
                    f"{len(freqs)} frequencies in {res.details['time_s']:.1f} s "
                    f"({res.details['solver']})"
                )
            else:
                typer.echo(
                    f"{ms.shape} voxels, homogenised model (transmission line), "
                    f"{len(freqs)} frequencies"
                )
            z = main.impedance
            typer.echo(
                f"Z({freqs[0]:.3g} Hz) = {z[0]:.4g} Ω, Z({freqs[-1]:.3g} Hz) = {z[-1]:.4g} Ω"
            )
            d = table["drt"]
            typer.echo(
                f"DRT peaks (Hz): {[f'{v:.3g}' for v in d['peaks_Hz']]}, "
                f"λ = {d['lambda']:.1e} (GCV)"
            )
            if "sensitivity" in table:
                for k, v in table["sensitivity"]["share"].items():
                    fc = table["sensitivity"]["characteristic_Hz"][k]
                    typer.echo(f"  {k:22s} share {v:6.1%}  at {fc:.3g} Hz")

        emit(data, as_json=as_json, human=human, quiet=quiet)
