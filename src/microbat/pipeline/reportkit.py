"""The pieces a twin stage builds its report section from.

A stage's ``report`` function receives a :class:`ReportView` (every stage's
summary and status, the arrays of any stage, a figure factory) and returns
:class:`ReportSection` objects; :mod:`microbat.pipeline.report` puts them on the
page in stage order. Figures are Matplotlib (Agg, no pyplot state) rendered to
base64 PNG, so the page embeds them and stays one self-contained file.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Figures",
    "ReportSection",
    "ReportView",
    "absent",
    "esc",
    "img",
    "notes_list",
    "num",
    "pct",
    "qc_figure",
    "split",
    "table",
    "um",
]

ROLE_COLORS = {
    "electrolyte": "#23395b",
    "gas": "#111111",
    "carbon_binder": "#3e9b5b",
    "active": "#d9a441",
    "separator": "#8e6bb8",
    "solid_electrolyte": "#c05c7e",
    "current_collector": "#9aa3ad",
    "other": "#e07b39",
}


@dataclass(frozen=True)
class ReportSection:
    """One section of the HTML report: an anchor, a title and its HTML body."""

    anchor: str
    title: str
    body: str


class Figures:
    """Matplotlib figures rendered to base64 PNG (Agg, no pyplot state)."""

    def __init__(self, dpi: int) -> None:
        from matplotlib.figure import Figure

        self.Figure = Figure
        self.dpi = dpi

    def new(self, w: float, h: float, **adjust: float) -> Any:
        """A figure of ``w`` × ``h`` inches with fixed margins (``adjust`` overrides them)."""
        # Fixed margins instead of a layout engine: constrained layout costs a
        # second draw of every figure.
        fig = self.Figure(figsize=(w, h))
        margins = {"left": 0.08, "right": 0.98, "top": 0.9, "bottom": 0.14, "wspace": 0.25}
        margins.update(adjust)
        fig.subplots_adjust(**margins)
        return fig

    def png(self, fig: Any) -> str:
        """The figure as base64 PNG."""
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=self.dpi)
        return base64.b64encode(buf.getvalue()).decode("ascii")


@dataclass(frozen=True)
class ReportView:
    """What a stage's report function sees.

    Attributes
    ----------
    summaries : mapping
        Stage name → its summary (``{}`` when it did not complete).
    status : mapping
        Stage name → status.
    records : mapping
        Stage name → the run's record of it (title, status, reason, times).
    figures : Figures
        The figure factory (dpi from the settings).
    arrays : callable
        ``arrays(stage) -> dict of str to ndarray``: a stage's small arrays.
    source : TwinInput
        The input.
    config : TwinConfig
        The settings.
    """

    summaries: Mapping[str, Mapping[str, Any]]
    status: Mapping[str, str]
    records: Mapping[str, Any]
    figures: Figures
    arrays: Callable[[str], dict[str, np.ndarray]]
    source: Any
    config: Any

    def summary(self, name: str) -> Mapping[str, Any]:
        """A stage's summary (``{}`` when it did not complete or does not exist)."""
        return self.summaries.get(name) or {}

    def status_line(self, name: str) -> str:
        """A grey box saying how the stage ended and why."""
        r = self.records[name]
        return absent(
            f"{esc(r.stage.title)}: <b>{esc(r.status.replace('_', ' '))}</b>"
            + (f" — {esc(r.reason)}" if r.reason else "")
        )

    def phases(self) -> list[Mapping[str, Any]]:
        """The phase table rows of the labelled microstructure, from whichever stage has it."""
        return (
            self.summary("segment").get("phases")
            or self.summary("connectivity").get("phases_table")
            or self.summary("input").get("phases")
            or []
        )


# ========================================================================= text
def esc(x: Any) -> str:
    """HTML-escaped text."""
    return html.escape(str(x))


def num(x: Any, fmt: str = ".4g", unit: str = "") -> str:
    """A number for a table (``–`` for missing, ``∞``, yes/no for booleans)."""
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    try:
        v = float(x)
    except (TypeError, ValueError):
        return esc(x)
    if math.isinf(v):
        return "∞"
    if math.isnan(v):
        return "–"
    return f"{v:{fmt}}" + (f" {unit}" if unit else "")


def um(x: Any) -> str:
    """A length in metres shown in µm."""
    return "–" if x is None else f"{1e6 * float(x):.3g} µm"


def pct(x: Any) -> str:
    """A fraction shown in percent."""
    return "–" if x is None or not math.isfinite(float(x)) else f"{100 * float(x):.1f} %"


def table(head: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 1) -> str:
    """An HTML table; the first ``left`` columns are left-aligned."""
    th = "".join(f'<th class="{"l" if i < left else ""}">{esc(h)}</th>' for i, h in enumerate(head))
    body = []
    for r in rows:
        tds = "".join(f'<td class="{"l" if i < left else ""}">{c}</td>' for i, c in enumerate(r))
        body.append(f"<tr>{tds}</tr>")
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def absent(what: str) -> str:
    """A grey box for what is not shown (``what`` is HTML)."""
    return f'<div class="absent">{what}</div>'


def img(b64: str, alt: str, caption: str = "") -> str:
    """An embedded PNG figure with an optional caption."""
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{esc(alt)}" src="data:image/png;base64,{b64}">{cap}</figure>'


def notes_list(notes: Sequence[str]) -> str:
    """A stage's notes as a list ("" when there are none)."""
    if not notes:
        return ""
    return '<ul class="notes">' + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>"


def split(arrays: Mapping[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The arrays whose key starts with ``prefix``, with the prefix removed."""
    return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}


# ====================================================================== figures
def phase_cmap(phases: Sequence[Mapping[str, Any]]) -> tuple[Any, float, float]:
    """A colour map of the phase labels by role, with its value range."""
    from matplotlib.colors import ListedColormap

    top = max((int(p["label"]) for p in phases), default=1)
    colors = ["#ffffff"] * (top + 1)
    for p in phases:
        colors[int(p["label"])] = ROLE_COLORS.get(str(p["role"]), "#e07b39")
    return ListedColormap(colors), -0.5, top + 0.5


def legend_handles(phases: Sequence[Mapping[str, Any]]) -> list[Any]:
    """Legend patches of the phases."""
    from matplotlib.patches import Patch

    return [
        Patch(color=ROLE_COLORS.get(str(p["role"]), "#e07b39"), label=f"{p['name']} ({p['label']})")
        for p in phases
    ]


def qc_figure(
    figs: Figures, rows: list[tuple[str, dict[str, np.ndarray], str]], phases: Any
) -> str:
    """Rows of mid slices (axis 0, 1, 2); each row ``(title, slices, kind)``.

    ``kind`` is ``"gray"`` (intensities), ``"labels"`` (phase colours) or
    ``"uncertainty"``.
    """
    n = len(rows)
    fig = figs.new(
        10.5, 3.2 * n, left=0.01, right=0.9, top=1 - 0.25 / n, bottom=0.01, wspace=0.05, hspace=0.12
    )
    axes = np.atleast_2d(fig.subplots(n, 3))
    for r, (title, slices, kind) in enumerate(rows):
        for k in range(3):
            ax = axes[r, k]
            sl = slices.get(f"mid{k}")
            ax.set_xticks([])
            ax.set_yticks([])
            if sl is None:
                ax.set_axis_off()
                continue
            if kind == "labels" and phases:
                cmap, lo, hi = phase_cmap(phases)
                ax.imshow(sl, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
            elif kind == "uncertainty":
                im = ax.imshow(sl, cmap="magma", vmin=0, vmax=max(float(np.max(sl)), 1e-6))
                if k == 2:
                    fig.colorbar(im, ax=ax, shrink=0.8, label="1 − max posterior")
            else:
                lo, hi = np.percentile(sl, [0.5, 99.5]) if sl.size else (0, 1)
                ax.imshow(sl, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1)
            ax.set_title(f"{title} — axis {k} mid-slice", fontsize=8.5)
        if kind == "labels" and phases:
            axes[r, 2].legend(handles=legend_handles(phases), fontsize=7, loc="lower right")
    return figs.png(fig)
