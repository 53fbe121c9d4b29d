"""The ``simulate`` verb: microstructure-resolved half-cell discharge or charge.

Exit codes: 0 when the discharge ended normally (cut-off voltage, surface-stoichiometry
event, ``--end-time``) or stopped at ``--max-steps`` (partial, resumable with
``--resume``); 3 when the solver failed (partial result written, ``status`` says where
and why); 130 on Ctrl-C and 143 on SIGTERM (e.g. a batch scheduler's time limit;
checkpoint and partial result written); 1 for an error before any result (unreadable
input, bad option, checkpoint of another problem).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from microbat.cli.common import (
    InputOptions,
    JsonOpt,
    Progress,
    check_writable,
    emit,
    guarded,
    with_option_groups,
)

#: Exit code of a run whose solver failed (a partial result is written).
EXIT_SOLVER_FAILED = 3
#: Exit code after Ctrl-C (checkpoint and partial result written).
EXIT_INTERRUPTED = 130
#: Exit code after SIGTERM (checkpoint and partial result written).
EXIT_TERMINATED = 143


class _Terminate:
    """While active, SIGTERM raises ``KeyboardInterrupt("SIGTERM")`` (main thread only).

    The discharge then stops like on Ctrl-C: checkpoint and partial result written.
    """

    def __init__(self) -> None:
        self.hit = False
        self.old: Any = None

    def _handler(self, signum: int, frame: Any) -> None:
        self.hit = True
        raise KeyboardInterrupt("SIGTERM")

    def __enter__(self) -> _Terminate:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self.old = signal.signal(signal.SIGTERM, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        if self.old is not None:
            signal.signal(signal.SIGTERM, self.old)


class DischargeProgress:
    """Rich progress bar of a discharge on stderr: time, voltage, capacity delivered.

    The bar runs over the fraction of the OCP-limited capacity delivered (a discharge
    at a high rate ends before 100 %). Used as the ``on_step`` callback of
    :func:`~microbat.cell.resolved.simulate_discharge`.
    """

    def __init__(
        self,
        console: Any,
        *,
        enabled: bool,
        c_rate: float,
        lines: Progress | None = None,
        what: str = "discharge",
    ) -> None:
        self.console = console
        self.enabled = enabled
        self.c_rate = c_rate
        self.what = what
        self.lines = lines  # plain lines instead of the bar (stderr is not a terminal)
        self.bar: Any = None
        self.task: Any = None

    def __enter__(self) -> DischargeProgress:
        if self.lines is not None:
            self.lines.__enter__()
            self.lines.stage(f"{self.what} {self.c_rate:g}C: starting")
        elif self.enabled:
            from rich.progress import (
                BarColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self.bar = Progress(
                SpinnerColumn(),
                TextColumn(f"{self.what} {self.c_rate:g}C"),
                BarColumn(bar_width=24),
                TextColumn("{task.percentage:>5.1f} % of capacity"),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=False,
            )
            self.bar.__enter__()
            self.task = self.bar.add_task(self.what, total=1000, info="starting")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.lines is not None:
            self.lines.__exit__(*exc)
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def __call__(self, p: Any) -> None:
        if self.bar is None and self.lines is None:
            return
        frac = p.capacity_fraction if p.capacity_fraction == p.capacity_fraction else 0.0
        info = (
            f"t = {_duration(p.time_s)}  V = {p.voltage_V:.4f} V  "
            f"θ̄ = {p.mean_stoichiometry:.3f}  step {p.step}"
        )
        if self.lines is not None:
            self.lines.step(
                f"{self.what} {self.c_rate:g}C: {100 * min(max(frac, 0.0), 1.0):.1f} % of "
                f"capacity, {info}"
            )
            return
        self.bar.update(self.task, completed=min(max(frac, 0.0), 1.0) * 1000, info=info)


def _one_rate(text: str) -> float:
    """The C-rate of ``--c-rates``/``--rates`` given to simulate (one value)."""
    from microbat.core.errors import InvalidInputError

    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    try:
        if len(parts) != 1:
            raise ValueError
        return float(parts[0].upper().removesuffix("C"))
    except ValueError:
        raise InvalidInputError(
            f"simulate runs one discharge: --c-rate takes one C-rate, got {text!r} (a table "
            "of rates through the P2D model: microbat discharge FILE --c-rates 0.1,1,3)"
        ) from None


def _duration(t: float) -> str:
    t = float(t)
    if t < 120:
        return f"{t:.1f} s"
    if t < 7200:
        return f"{t / 60:.1f} min"
    return f"{t / 3600:.2f} h"


def _solid_drop_warning(
    ms: Any, params: Any, electrode: str, c_rate: float, opt: Any
) -> str | None:
    """One line when the electrons' path through the solid is too resistive to run well.

    The uniform-reaction estimate ``Δφ = i L / (2 σ_eff)`` of the drop through the
    electron conductors (``transport.conduction.uniform_reaction_drop``; the current
    from the active material's theoretical capacity at the C-rate, an upper bound of
    the run's) against the voltage window: beyond a tenth of it the reaction crowds at
    the collector and the run may stall (measured on CT-like crops without carbon-binder,
    ``docs/validation/resolved.md`` §7). An advisory: if the estimate itself cannot be
    made (no voxel size, an unknown set), nothing is said.
    """
    import math

    from microbat.cell.resolved import theoretical_capacity_Ah
    from microbat.cell.resolved.discharge import cell_and_resolved
    from microbat.core.phases import PhaseRole
    from microbat.transport.conduction import uniform_reaction_drop

    try:
        par = cell_and_resolved(params, electrode)[1]
        sigma_am = opt.solid_conductivity_S_per_m or par.solid_conductivity
        cond = {p.name: sigma_am for p in ms.phases_with_role(PhaseRole.ACTIVE.value)}
        cond.update(
            {p.name: opt.cbd_conductivity_S_per_m
             for p in ms.phases_with_role(PhaseRole.CARBON_BINDER.value)}
        )  # fmt: skip
        ax = ms.thickness_axis
        h = [float(v) for v in ms.voxel_size]
        area = math.prod(h[a] * ms.shape[a] for a in range(3) if a != ax)
        current = c_rate * theoretical_capacity_Ah(ms, par.c_max)  # A (1 Ah over 1 h = 1 A)
        drop = uniform_reaction_drop(ms, current / area, conductivities=cond)
        window = float(par.upper_cutoff) - float(par.lower_cutoff)
    except Exception:  # advisory only: no estimate, no line
        return None
    if not (math.isfinite(drop) and window > 0) or drop <= 0.1 * window:
        return None
    return (
        f"warning: the electrons' drop through the solid at {c_rate:g}C is about {drop:.2g} V "
        f"(uniform-reaction estimate i·L/2σ_eff) against a {window:.2g} V window: the "
        "reaction will crowd at the collector and the run may stall; add a carbon-binder "
        "phase, lower --c-rate or crop a thinner electrode"
    )


def register(app: typer.Typer) -> None:
    """Register this module's verbs on ``app``."""

    @app.command("simulate")
    @guarded
    @with_option_groups
    def simulate(
        file: Annotated[
            Path, typer.Argument(help="Labelled electrode image (any readable format).")
        ],
        c_rate: Annotated[
            float, typer.Option("--c-rate", help="Discharge (or with --charge, charge) C-rate.")
        ] = 1.0,
        c_rate_alias: Annotated[
            str | None,
            typer.Option("--c-rates", "--rates", hidden=True, help="Same as --c-rate (one rate)."),
        ] = None,
        params: Annotated[
            str,
            typer.Option("--params", help="Parameter set name (chen2020 = NMC811) or BPX file."),
        ] = "chen2020",
        out: Annotated[
            Path | None,
            typer.Option(
                "--out",
                help="Folder for curve.csv, fields.h5, result.json and checkpoint.npz "
                "(default: FILE.resolved beside FILE).",
            ),
        ] = None,
        cutoff: Annotated[
            float | None,
            typer.Option(
                "--cutoff",
                help="Lower cut-off voltage (V); with --charge the potential limit of the CC "
                "phase (default: the set's upper cut-off for a positive electrode, none for "
                "a negative one).",
            ),
        ] = None,
        charge: Annotated[
            bool,
            typer.Option(
                "--charge",
                help="Charge instead of discharge (the full cell's sense: a negative "
                "electrode lithiates from the set's discharged state to its 4.2 V-equivalent "
                "stoichiometry x_100, a positive one delithiates to the upper cut-off).",
            ),
        ] = False,
        electrode: Annotated[
            str | None,
            typer.Option(
                "--electrode",
                help="Which electrode of the set the image is: positive or negative "
                "(default: positive for a discharge, negative with --charge).",
            ),
        ] = None,
        cv_voltage: Annotated[
            float | None,
            typer.Option(
                "--cv-voltage",
                help="With --charge: hold this electrode potential (V vs Li/Li+) once the "
                "constant-current phase reaches it (CC-CV).",
            ),
        ] = None,
        plating: Annotated[
            str,
            typer.Option(
                "--plating",
                help="Lithium plating side reaction: none, irreversible, reversible or "
                "partially_reversible (O'Kane et al.; PyBaMM's OKane2022 constants).",
            ),
        ] = "none",
        se_conductivity: Annotated[
            float,
            typer.Option(
                "--se-conductivity",
                help="Ionic conductivity (S/m) of a solid electrolyte (composite cathode "
                "with a phase of role solid_electrolyte; default 0.2 = 2 mS/cm, Li6PS5Cl).",
            ),
        ] = 0.2,
        separator_thickness: Annotated[
            float | None,
            typer.Option(
                "--separator-thickness",
                help="Separator slab thickness (m) added at the far end (default: the "
                "set's; dense solid electrolyte for a composite cathode).",
            ),
        ] = None,
        cv_end_c_rate: Annotated[
            float,
            typer.Option("--cv-end-c-rate", help="With --cv-voltage: end the hold at this C-rate."),
        ] = 0.05,
        max_steps: Annotated[
            int,
            typer.Option(
                "--max-steps",
                help="Time steps (over the whole run, resumes included) before stopping "
                "(partial; continue with --resume and a larger value).",
            ),
        ] = 5000,
        end_time: Annotated[
            float | None,
            typer.Option("--end-time", help="Stop at this simulated time (s), a normal end."),
        ] = None,
        snapshots: Annotated[
            str | None,
            typer.Option(
                "--snapshots",
                help="Times (s) of the field snapshots, comma-separated (default 25, 50 "
                "and 75 % of the nominal discharge time; the end is always kept).",
            ),
        ] = None,
        vtk: Annotated[
            bool,
            typer.Option("--vtk", help="Also write the snapshots as VTK (.vti + fields.pvd)."),
        ] = False,
        resume: Annotated[
            bool,
            typer.Option(
                "--resume", help="Continue from OUT/checkpoint.npz (same inputs and options)."
            ),
        ] = False,
        checkpoint_every: Annotated[
            int | None,
            typer.Option("--checkpoint-every", help="Checkpoint every N accepted steps."),
        ] = None,
        checkpoint_interval: Annotated[
            float,
            typer.Option(
                "--checkpoint-interval",
                help="Checkpoint every this many seconds of wall time (0: only at the end "
                "and on Ctrl-C).",
            ),
        ] = 60.0,
        *,
        inputs: InputOptions,
        quiet: Annotated[
            bool, typer.Option("--quiet", "-q", help="No progress bar or summary; errors only.")
        ] = False,
        json_out: JsonOpt = False,
    ) -> None:
        """Discharge (or charge) a resolved electrode against lithium metal.

        Every voxel of the image keeps its own electrolyte concentration and
        potential, solid potential and lithium concentration (no homogenisation).
        Writes the voltage curve (CSV), field snapshots with the per-voxel loss map
        (HDF5; VTK with --vtk), result.json and a checkpoint to --out. A progress bar
        (simulated time, voltage, capacity delivered) shows on a terminal. Ctrl-C
        keeps a checkpoint and a partial result; --resume continues the run.
        Exit code 0: complete or stopped at --max-steps (partial); 3: solver failure
        (partial result written); 130: Ctrl-C; 143: SIGTERM (both: checkpoint and
        partial result written). --charge charges instead (CC, or CC-CV with
        --cv-voltage), by default the graphite negative electrode of the set.
        """
        from rich.console import Console

        from microbat.cell.resolved import ResolvedOptions, simulate_charge, simulate_discharge
        from microbat.cell.resolved.discharge import DischargeInterrupted
        from microbat.core.errors import InvalidInputError

        t0 = time.perf_counter()
        if c_rate_alias is not None:
            c_rate = _one_rate(c_rate_alias)
        if electrode is None:
            electrode = "negative" if charge else "positive"
        if electrode not in ("positive", "negative"):
            raise InvalidInputError(f"--electrode {electrode!r}: use positive or negative")
        if not charge and cv_voltage is not None:
            raise InvalidInputError("--cv-voltage holds a charge: add --charge")
        if charge and not (c_rate > 0):
            raise InvalidInputError(
                f"--c-rate {c_rate:g}: give the charge rate as a positive C-rate"
            )
        folder = out if out is not None else file.with_name(file.name + ".resolved")
        check_writable(folder)
        ms = inputs.load(file)
        opt = ResolvedOptions(
            cutoff_V=None if charge else cutoff,
            max_steps=max_steps,
            end_time_s=end_time,
            plating=plating,  # type: ignore[arg-type]
            se_conductivity_S_per_m=se_conductivity,
            separator_thickness_m=separator_thickness,
        )
        times = None
        if snapshots:
            try:
                times = [float(v) for v in snapshots.split(",") if v.strip()]
            except ValueError:
                raise InvalidInputError(
                    f"--snapshots {snapshots!r}: give times in seconds separated by commas"
                ) from None
        err = Console(stderr=True, quiet=quiet)
        hint = None if quiet else _solid_drop_warning(ms, params, electrode, c_rate, opt)
        if hint:
            err.print(hint, markup=False, highlight=False, soft_wrap=True)
        lines = Progress("simulate", quiet=quiet)
        progress = DischargeProgress(
            err,
            enabled=not quiet and lines.terminal,
            c_rate=c_rate,
            lines=None if quiet or lines.terminal else lines,
            what="charge" if charge else "discharge",
        )
        interrupted = False
        run_kw: dict[str, Any] = dict(
            c_rate=c_rate,
            options=opt,
            snapshot_times=times,
            on_step=progress,
            checkpoint=folder,
            resume=resume,
            checkpoint_every=checkpoint_every,
            checkpoint_interval_s=checkpoint_interval if checkpoint_interval > 0 else None,
            electrode=electrode,
        )
        if charge:
            # every check of the charge request happens before the first file is written
            run_kw.update(cv_voltage=cv_voltage, cv_end_c_rate=cv_end_c_rate)
            run_kw["voltage_limit_V"] = cutoff
        with _Terminate() as term, progress:
            try:
                if charge:
                    res = simulate_charge(ms, params, **run_kw)
                else:
                    res = simulate_discharge(ms, params, **run_kw)
            except DischargeInterrupted as exc:
                res, interrupted = exc.result, True
        if interrupted:
            code = EXIT_TERMINATED if term.hit else EXIT_INTERRUPTED
        elif res.complete or res.status == "max_steps":
            code = 0
        else:
            code = EXIT_SOLVER_FAILED
        data = _write_outputs(res, folder, params, vtk, t0, code)

        def human() -> None:
            if quiet:
                return
            mark = "" if res.complete else "  [PARTIAL]"
            verb = "charged" if charge else "of"
            typer.echo(
                f"{res.capacity_Ah:.4g} A·h {verb} {res.theoretical_capacity_Ah:.4g} A·h "
                f"theoretical at {res.c_rate:g}C, {res.energy_Wh:.4g} W·h; {res.status}{mark}"
            )
            if charge:
                c = data["charge"]
                cv = (
                    f", CV from {_duration(c['cv_start_s'])}" if c["cv_start_s"] is not None else ""
                )
                typer.echo(
                    f"{c['protocol']} charge of the {c['electrode']} electrode: stoichiometry "
                    f"{c['initial_stoichiometry']:.4f} -> {c['final_mean_stoichiometry']:.4f}, "
                    f"lowest/highest potential {c['min_voltage_V']:.4f}/"
                    f"{c['max_voltage_V']:.4f} V{cv}"
                )
            if res.resumed_at_step is not None:
                typer.echo(f"resumed at step {res.resumed_at_step} from {res.checkpoint}")
            typer.echo(
                "losses at end (V): "
                + ", ".join(f"{k} {v:.4f}" for k, v in res.final_breakdown_V.items())
            )
            extra = f", {data['vtk']}" if data.get("vtk") else ""
            typer.echo(
                f"wrote {data['curve']}, {data['fields']}{extra} and the checkpoint "
                f"{res.checkpoint} ({data['wall_time_s']:.1f} s)"
            )
            if res.status == "max_steps":
                typer.echo("stopped at --max-steps: continue with --resume --max-steps N")
            elif interrupted:
                typer.echo("interrupted: continue with --resume", err=True)

        emit(data, as_json=json_out, human=human)
        if code:
            raise typer.Exit(code)


def _write_outputs(
    res: Any, folder: Path, params: str, vtk: bool, t0: float, code: int
) -> dict[str, Any]:
    """curve.csv, fields.h5 (and VTK), result.json; the JSON summary."""
    import json

    from microbat.core.atomic import atomic_write_text
    from microbat.core.results import to_jsonable

    curve = res.save_curve(folder / "curve.csv")
    fields = res.save_fields(folder / "fields.h5")
    pvd = None
    if vtk and res.snapshots:
        pvd = res.save_vtk(folder / "vtk")[-1]
    data = {
        "capacity_Ah": res.capacity_Ah,
        "theoretical_capacity_Ah": res.theoretical_capacity_Ah,
        "energy_Wh": res.energy_Wh,
        "max_conservation_error": res.max_conservation_error,
        "curve": str(curve),
        "fields": str(fields),
        "vtk": None if pvd is None else str(pvd),
        "checkpoint": res.checkpoint,
        "resumed_at_step": res.resumed_at_step,
        "breakdown": res.final_breakdown_V,
        "wall_time_s": time.perf_counter() - t0,
        "c_rate": res.c_rate,
        "current_A": res.current_A,
        "complete": res.complete,
        "partial": res.partial,
        "status": res.status,
        "exit_code": code,
        "steps": res.steps,
        "timing": res.timing,
        "grid": res.grid,
        "parameters": params,
    }
    if hasattr(res, "protocol"):  # a charge (ResolvedChargeResult)
        data["charge"] = {
            "protocol": res.protocol,
            "electrode": res.electrode,
            "cv_voltage_V": res.cv_voltage_V,
            "cv_start_s": res.cv_start_s,
            "cv_end_current_A": res.cv_end_current_A,
            "initial_stoichiometry": res.initial_stoichiometry,
            "end_stoichiometry": res.end_stoichiometry,
            "voltage_limit_V": res.voltage_limit_V,
            "final_mean_stoichiometry": res.final_mean_stoichiometry,
            "min_voltage_V": float(res.voltage_V.min()),
            "max_voltage_V": float(res.voltage_V.max()),
            "charged_Ah": res.capacity_Ah,
            "plating": res.plating,
            "plated_Ah": res.plated_Ah,
            "plated_Li_mol": float(res.plated_Li_mol[-1]),
            "dead_Li_mol": float(res.dead_Li_mol[-1]),
        }
    atomic_write_text(
        folder / "result.json", json.dumps(to_jsonable(data), indent=2, allow_nan=False)
    )
    return data
