"""CLI verb ``calender``: compress an electrode and tabulate energy against transport."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from microbat.cli.common import (
    CropOpt,
    InPath,
    JsonOpt,
    PhasesOpt,
    Progress,
    QuietOpt,
    SeedOpt,
    VoxelSizeOpt,
    check_writable,
    emit,
    guarded,
    load_input,
)


def register(app: typer.Typer) -> None:
    """Register this module's verbs on ``app``."""

    @app.command("calender")
    @guarded
    def calender_cmd(
        path: InPath,
        steps: Annotated[
            str,
            typer.Option(
                "--steps", help="Compressions (relative thickness reductions), comma separated."
            ),
        ] = "0,0.1,0.2,0.3",
        flattening: Annotated[
            float,
            typer.Option(
                "--flattening", help="Share of the strain taken by particle flattening (0..1)."
            ),
        ] = 0.5,
        kappa: Annotated[
            float,
            typer.Option("--electrolyte-conductivity", help="Bulk electrolyte κ in S/m."),
        ] = 1.0,
        out: Annotated[
            Path | None,
            typer.Option("--out", help="Folder for the compressed images, table and plot."),
        ] = None,
        phases: PhasesOpt = None,
        voxel_size: VoxelSizeOpt = None,
        crop: CropOpt = None,
        seed: SeedOpt = 0,
        quiet: QuietOpt = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Calender a labelled electrode step by step and tabulate the trade-off.

        The active phase is approximated by ellipsoids (watershed + moments), the
        particles are moved and flattened with conserved active and carbon-binder
        volume (see ``microbat.transport.calender``), and each compressed image is
        characterised: porosity, pore τ per axis against Bruggeman, effective ionic
        and electronic conductivity, specific area and volumetric capacity.
        """
        import json

        from microbat.core.atomic import atomic_write_text
        from microbat.core.errors import InvalidInputError
        from microbat.core.results import to_jsonable
        from microbat.transport.calendering import calendering_study

        try:
            comps = tuple(float(s) for s in steps.split(",") if s.strip())
        except ValueError:
            raise InvalidInputError(
                f"--steps must be numbers like 0,0.1,0.2; got {steps!r}"
            ) from None
        check_writable(out)
        progress = Progress("calender", quiet=quiet).start()
        progress.stage(f"reading {path}")
        ms = load_input(path, phases, voxel_size, crop=crop)
        progress.stage(
            f"calendering in {len(comps)} steps and characterising each image "
            "(particles, τ, conductivities)"
        )
        res = calendering_study(
            ms,
            compressions=comps,
            flattening=flattening,
            electrolyte_conductivity=kappa,
            seed=seed,
        )
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(
                out / "calendering.json", json.dumps(to_jsonable(res.to_dict()), indent=2)
            )
            res.plot(out / "calendering.png")

        def human() -> None:
            from rich.console import Console
            from rich.table import Table

            t = Table(title="calendering trade-off (through-plane = thickness axis)")
            for col in (
                "compression",
                "porosity",
                "τ",
                "Bruggeman τ",
                "κ_eff S/m",
                "σ_eff S/m",
                "a_s 1/µm",
                "Q_v mAh/cm³",
            ):
                t.add_column(col, justify="right")
            for r in res.rows():
                t.add_row(
                    *(
                        f"{v:.3g}"
                        for v in (
                            r["compression"],
                            r["porosity"],
                            r["tau_through"],
                            r["bruggeman_tau"],
                            r["kappa_eff_S_per_m"],
                            r["sigma_eff_S_per_m"],
                            r["a_s_per_um"],
                            r["Qv_mAh_per_cm3"],
                        )
                    )
                )
            Console().print(t)

        emit(res, as_json=as_json, human=human, quiet=quiet)
