"""What a design study leaves in its folder: JSON, best designs, the HTML report.

:func:`write_study_outputs` writes, next to the study's ``study.db``:

* ``design.json`` — :meth:`StudyResult.to_dict` plus ``outputs`` and ``accuracy``;
* ``best/trial_<n>.h5`` — the first ``study.best`` Pareto designs, regenerated from
  their descriptors and seed (:func:`microbat.design.generate_design`, bit-identical
  to the evaluated sample) and saved with :func:`microbat.io.save_microstructure`;
* ``report.html`` — one self-contained page (figures embedded): the summary, the
  Pareto front, the Pareto designs, the descriptor–objective trade-offs, the
  importances, mid-slices of the best designs, the accuracy-gained table
  (:mod:`microbat.design.accuracy`, when it ran) and the infeasible and failed
  trials with their reasons.

Every file is written atomically (:mod:`microbat.core.atomic`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from microbat.core.atomic import atomic_path, atomic_write_text
from microbat.core.microstructure import Microstructure
from microbat.core.results import to_jsonable
from microbat.design.objectives import OBJECTIVES
from microbat.design.space import DESCRIPTORS, DesignSpace
from microbat.design.study import StudyResult

__all__ = ["best_designs", "render_report", "run_accuracy", "write_study_outputs"]


def best_designs(
    result: StudyResult, space: DesignSpace, n: int
) -> list[tuple[int, Microstructure]]:
    """The first ``n`` Pareto designs regenerated as microstructures ``(trial, ms)``."""
    from microbat.design.evaluate import generate_design

    out = []
    for row in result.pareto[: max(0, n)]:
        params = space.complete(row["params"])
        ms = generate_design(params, int(row["seed"]), space.resolution, generator=space.generator)
        out.append((int(row["number"]), ms))
    return out


def run_accuracy(
    result: StudyResult,
    space: DesignSpace,
    designs: Sequence[tuple[int, Microstructure]],
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any] | None:
    """The accuracy-gained table over ``designs`` (None when the module is absent).

    Calls :func:`microbat.design.accuracy.accuracy_gained` with the study's cell set and
    C-rates, each design's sample (regenerated from its seed) and designed radius,
    ranking by the study's high-rate energy density, else its power retention, else
    its energy density (the high-rate energy density when it has none of them).
    """
    try:
        from microbat.design import accuracy
    except ImportError:
        return None
    if len(designs) < 1 or space.generator != "electrode":
        return None  # no cell model of a solid-state composite to compare
    # rank by a rate-sensitive objective of the study when it has one: that is where
    # the transport model matters (the low-rate energy hardly depends on it)
    prefer = ("high_rate_energy_density", "power_retention", "energy_density")
    objective = next((o for o in prefer if o in space.objectives), prefer[0])
    radius = {
        f"trial {n}": float(space.complete(_row(result, n)["params"])["mean_radius"])
        for n, _ in designs
    }
    res = accuracy.accuracy_gained(
        {f"trial {n}": ms for n, ms in designs},
        space.evaluation.cell,
        c_rates=(space.evaluation.low_c_rate, space.evaluation.high_c_rate),
        objective=objective,
        seed=space.seed,
        particle_radius_m=radius,
        progress=progress,
    )
    out = res.to_dict()
    out["markdown"] = res.markdown()
    return out


def _row(result: StudyResult, number: int) -> dict[str, Any]:
    return next(r for r in result.pareto if r["number"] == number)


def write_study_outputs(
    result: StudyResult,
    space: DesignSpace,
    out: str | Path,
    *,
    best: Sequence[tuple[int, Microstructure]] | None = None,
    accuracy: Mapping[str, Any] | None = None,
    dpi: int = 90,
) -> dict[str, str]:
    """Write ``design.json``, ``best/`` and ``report.html`` into ``out``.

    Parameters
    ----------
    result : StudyResult
    space : DesignSpace
    out : path
        The study folder (made if missing).
    best : sequence of (trial number, Microstructure), optional
        The designs to save (default: :func:`best_designs` with ``space.study.best``).
    accuracy : mapping, optional
        :func:`run_accuracy`'s table, shown in the report and the JSON.
    dpi : int, default 90
        Resolution of the report's figures.

    Returns
    -------
    dict of str to str
        What was written: ``json``, ``report``, ``best`` (folder) and each design.
    """
    from microbat.io import save_microstructure

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    if best is None:
        best = best_designs(result, space, space.study.best)
    outputs: dict[str, str] = {}
    if best:
        with atomic_path(folder / "best", directory=True) as tmp:
            tmp.mkdir(parents=True, exist_ok=True)
            for n, ms in best:
                save_microstructure(ms, tmp / f"trial_{n}.h5")
        outputs["best"] = str(folder / "best")
        for n, _ in best:
            outputs[f"trial_{n}"] = str(folder / "best" / f"trial_{n}.h5")
    outputs["report"] = str(folder / "report.html")
    outputs["json"] = str(folder / "design.json")
    data = result.to_dict()
    data["accuracy"] = None if accuracy is None else to_jsonable(dict(accuracy))
    data["outputs"] = dict(outputs)
    html = render_report(result, space, best=best, accuracy=accuracy, dpi=dpi)
    atomic_write_text(folder / "report.html", html)
    atomic_write_text(
        folder / "design.json", json.dumps(to_jsonable(data), indent=2, allow_nan=False) + "\n"
    )
    return outputs


# --------------------------------------------------------------------------- the page
def _fmt(v: Any, unit: str = "") -> str:
    from microbat.pipeline.reportkit import num

    if isinstance(v, str):
        return v
    return num(v, ".4g", unit)


def _param_text(name: str, v: Any) -> str:
    info = DESCRIPTORS.get(name)
    if isinstance(v, str) or info is None:
        return str(v)
    if info.unit == "m":
        return f"{float(v) * 1e6:.3g} µm"
    return f"{float(v):.3g}"


def render_report(
    result: StudyResult,
    space: DesignSpace,
    *,
    best: Sequence[tuple[int, Microstructure]] = (),
    accuracy: Mapping[str, Any] | None = None,
    dpi: int = 90,
) -> str:
    """The study's HTML page (self-contained; figures as embedded PNG)."""
    from microbat._version import __version__
    from microbat.pipeline._report_template import CSS, PAGE
    from microbat.pipeline.reportkit import Figures, absent, esc, img, table

    figs = Figures(dpi)
    names = list(space.objectives)
    units = {n: OBJECTIVES[n].unit for n in names}
    sections: list[tuple[str, str, str]] = []

    # summary
    rows = [
        ("trials", result.trials),
        (
            "evaluated / feasible / failed / running",
            f"{result.complete + result.failed} / "
            f"{result.feasible} / {result.failed} / {result.running}",
        ),
        ("feasible fraction", _fmt(result.feasible_fraction)),
        ("objectives", ", ".join(f"{n} ({d})" for n, d in result.directions.items())),
        ("sampler", result.sampler),
        ("fidelity", space.evaluation.fidelity),
        ("workers", result.scheduler or result.workers),
        ("wall time of this run", f"{result.wall_time_s:.1f} s"),
        (
            "resolution",
            f"{' × '.join(map(str, space.resolution.shape))} voxels of "
            f"{space.resolution.voxel_size * 1e6:.3g} µm",
        ),
    ]
    body = table(["", ""], [(esc(a), esc(b)) for a, b in rows], left=2)
    if result.binding:
        body += absent(esc(result.binding))
    sections.append(("summary", "Summary", body))

    feas = [r for r in result.trial_table if r["feasible"]]
    infeas = [r for r in result.trial_table if r["state"] == "COMPLETE" and not r["feasible"]]
    front = result.pareto

    # Pareto front
    if front:
        fig = figs.new(6.4, 4.2, left=0.13, bottom=0.13)
        ax = fig.add_subplot(1, 1, 1)
        x = names[0]
        y = names[1] if len(names) > 1 else None
        if y is None:
            xs = [r["number"] for r in feas]
            ax.plot(xs, [r["objectives"][x] for r in feas], ".", color="#999", label="feasible")
            ax.plot(
                [r["number"] for r in front],
                [r["objectives"][x] for r in front],
                "o",
                color="#c0392b",
                label="best",
            )
            ax.set_xlabel("trial")
            ax.set_ylabel(f"{x} [{units[x]}]" if units[x] else x)
        else:
            ax.plot(
                [r["objectives"][x] for r in infeas],
                [r["objectives"][y] for r in infeas],
                "x",
                color="#bbb",
                label="infeasible",
            )
            ax.plot(
                [r["objectives"][x] for r in feas],
                [r["objectives"][y] for r in feas],
                ".",
                color="#777",
                label="feasible",
            )
            fx = [r["objectives"][x] for r in front]
            fy = [r["objectives"][y] for r in front]
            ax.plot(fx, fy, "o-", color="#c0392b", label="Pareto front")
            for r in front[: space.study.best]:
                ax.annotate(str(r["number"]), (r["objectives"][x], r["objectives"][y]), fontsize=7)
            ax.set_xlabel(f"{x} [{units[x]}]" if units[x] else x)
            ax.set_ylabel(f"{y} [{units[y]}]" if units[y] else y)
        ax.legend(fontsize=7, loc="upper right")
        ax.set_title(f"{len(front)} non-dominated feasible designs", fontsize=9)
        body = img(
            figs.png(fig),
            "Pareto front",
            "Objectives of every evaluated trial; numbers are trial numbers of the best designs.",
        )
        searched = list(space.searched)
        head = ["trial"] + searched + [f"{n} [{units[n]}]" if units[n] else n for n in names]
        trs = [
            [str(r["number"])]
            + [esc(_param_text(k, r["params"].get(k))) for k in searched]
            + [_fmt(r["objectives"][n]) for n in names]
            for r in front
        ]
        body += table(head, trs, left=1)
    else:
        body = absent(
            "no feasible design yet" + (f": {esc(result.binding)}" if result.binding else "")
        )
    sections.append(("pareto", "Pareto front", body))

    # trade-offs
    numeric = [k for k, s in space.searched.items() if s.kind != "categorical"]
    if numeric and (feas or infeas):
        nr, nc = len(names), len(numeric)
        fig = figs.new(
            2.4 * nc + 0.6, 2.1 * nr + 0.5, left=0.1, bottom=0.12, hspace=0.45, wspace=0.35
        )
        pareto_ids = {r["number"] for r in front}
        for i, n in enumerate(names):
            for j, k in enumerate(numeric):
                ax = fig.add_subplot(nr, nc, i * nc + j + 1)
                scale = 1e6 if DESCRIPTORS[k].unit == "m" else 1.0
                for group, style, color in (
                    (infeas, "x", "#bbb"),
                    ([r for r in feas if r["number"] not in pareto_ids], ".", "#777"),
                    (front, "o", "#c0392b"),
                ):
                    ax.plot(
                        [float(r["params"][k]) * scale for r in group],
                        [r["objectives"][n] for r in group],
                        style,
                        color=color,
                        ms=4,
                    )
                if i == nr - 1:
                    ax.set_xlabel(k + (" [µm]" if scale != 1.0 else ""), fontsize=8)
                if j == 0:
                    ax.set_ylabel(n, fontsize=8)
                ax.tick_params(labelsize=7)
        body = img(
            figs.png(fig),
            "trade-offs",
            "Each objective against each searched "
            "descriptor: red the Pareto designs, grey the other feasible ones, crosses "
            "infeasible ones.",
        )
    else:
        body = absent("no numeric descriptor searched, or no evaluated trial")
    if result.importances:
        head = ["descriptor", *names]
        keys = sorted({k for v in result.importances.values() for k in v})
        trs = [[esc(k)] + [_fmt(result.importances.get(n, {}).get(k)) for n in names] for k in keys]
        body += "<h3>Importances (fANOVA)</h3>" + table(head, trs, left=1)
    sections.append(("tradeoffs", "Descriptor–objective trade-offs", body))

    # best designs' slices
    if best:
        from microbat.pipeline.reportkit import legend_handles, phase_cmap

        phases = [
            {"name": p.name, "label": p.label, "role": p.role.value}
            for p in best[0][1].phases.values()
        ]
        cmap, lo, hi = phase_cmap(phases)
        fig = figs.new(2.3 * len(best) + 0.4, 2.8, left=0.03, right=0.97, bottom=0.18, top=0.86)
        for i, (n, ms) in enumerate(best):
            ax = fig.add_subplot(1, len(best), i + 1)
            lab = np.asarray(ms.labels)
            ax.imshow(
                lab[:, lab.shape[1] // 2, :], cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest"
            )
            ax.set_title(f"trial {n}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.legend(handles=legend_handles(phases), loc="lower center", ncol=len(phases), fontsize=7)
        body = img(
            figs.png(fig),
            "best designs",
            "Mid-slices through the thickness (current "
            "collector at the top) of the best designs; saved in best/.",
        )
    else:
        body = absent("no design saved")
    sections.append(("designs", "Best designs", body))

    # accuracy gained
    if accuracy is not None:
        body = _markdown_table_html(str(accuracy.get("markdown", "")))
    else:
        body = absent(
            "the accuracy-gained table (P2D with Bruggeman and with the tensor against the "
            "resolved model on the Pareto designs) was not run: microbat design --accuracy N"
        )
    sections.append(("accuracy", "Accuracy gained", body))

    # confirmation
    if result.confirmed:
        head = (
            ["trial", "status"] + [f"{n} screen" for n in names] + [f"{n} confirm" for n in names]
        )
        trs = [
            [str(c["number"]), esc(c["status"])]
            + [_fmt(c["screen"].get(n)) for n in names]
            + [_fmt((c["confirm"] or {}).get(n)) for n in names]
            for c in result.confirmed
        ]
        sections.append(("confirm", "Multi-fidelity confirmation", table(head, trs, left=2)))

    # infeasible and failed
    bad = [r for r in result.trial_table if not r["feasible"]]
    if bad:
        trs = [
            [
                str(r["number"]),
                esc(r["state"]),
                esc(", ".join(r["violated"]) or "–"),
                esc(r["error"] or ""),
            ]
            for r in bad
        ]
        body = table(["trial", "state", "violated", "error"], trs, left=4)
    else:
        body = "<p>None.</p>"
    sections.append(("infeasible", "Infeasible and failed trials", body))
    sections.append(
        (
            "space",
            "Design space",
            "<details><summary>design space</summary><pre>"
            + esc(json.dumps(space.model_dump(mode="json"), indent=2))
            + "</pre></details>",
        )
    )
    return PAGE.substitute(
        title=esc(f"microbat design study: {space.name}"),
        subtitle=esc(f"{result.trials} trials, {result.feasible} feasible, seed {space.seed}"),
        nav=" ".join(f'<a href="#{a}">{esc(t)}</a>' for a, t, _ in sections),
        body="\n".join(f'<section id="{a}"><h2>{esc(t)}</h2>{b}</section>' for a, t, b in sections),
        css=CSS,
        version=esc(__version__),
        created=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    ).replace("<code>results.json</code>", "<code>design.json</code>")


def _markdown_table_html(md: str) -> str:
    """Markdown tables and paragraphs (as made by AccuracyResult.markdown) as HTML."""
    from microbat.pipeline.reportkit import esc, table

    out: list[str] = []
    block: list[str] = []

    def flush() -> None:
        if len(block) >= 2:
            cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in block]
            out.append(table(cells[0], [[esc(c) for c in r] for r in cells[2:]], left=1))
        block.clear()

    for line in md.splitlines():
        if line.strip().startswith("|"):
            block.append(line)
            continue
        flush()
        if line.strip():
            out.append(f"<p>{esc(line.replace('**', ''))}</p>")
    flush()
    return "\n".join(out)
