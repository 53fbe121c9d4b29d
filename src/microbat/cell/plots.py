"""Plots and files of the cell results.

Discharge curves, capacity vs rate, Ragone, stacked voltage-loss breakdown, and
Bruggeman vs micro-informed comparison.

Figures are made with :class:`matplotlib.figure.Figure` (no pyplot, no global
backend change), so they work headless. Files are written atomically (a crash
never leaves a half-written file under the final name). Units at the edges:
capacity in A·h, energy in W·h, losses in mV on the plots.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from microbat.cell._components import COMPONENT_LABELS, COMPONENTS
from microbat.core.atomic import atomic_path, atomic_write_text
from microbat.core.results import to_jsonable

if TYPE_CHECKING:  # pragma: no cover
    from microbat.cell.breakdown import RateBreakdown, VoltageBreakdownResult
    from microbat.cell.compare import TransportComparisonResult
    from microbat.cell.rate import RateCapabilityResult

__all__ = [
    "plot_breakdown",
    "plot_capacity_vs_rate",
    "plot_comparison",
    "plot_discharge_curves",
    "plot_ragone",
    "write_breakdown",
    "write_comparison",
    "write_rate_capability",
]


def _axes(ax: Any) -> Any:
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    return fig.subplots()


def plot_discharge_curves(result: RateCapabilityResult, ax: Any = None) -> Any:
    """Voltage vs discharged capacity, one line per rate; returns the axes."""
    ax = _axes(ax)
    for c in result.curves:
        style = "-" if c.complete else ":"
        label = f"{c.c_rate:g}C" + ("" if c.complete else f" ({c.status})")
        ax.plot(c.capacity_Ah, c.voltage_V, style, label=label)
    ax.set_xlabel("discharged capacity [A·h]")
    ax.set_ylabel("voltage [V]")
    ax.set_title(f"{result.model}, {result.transport} transport")
    ax.legend(fontsize="small", loc="upper right")
    return ax


def plot_capacity_vs_rate(result: RateCapabilityResult, ax: Any = None) -> Any:
    """Delivered capacity and its fraction of the C/10 value vs C-rate."""
    ax = _axes(ax)
    ax.semilogx(result.c_rate, result.capacity_Ah, "o-")
    ax.set_xlabel("C-rate [1/h]")
    ax.set_ylabel("capacity [A·h]")
    for c, q, f in zip(result.c_rate, result.capacity_Ah, result.fraction, strict=True):
        if math.isfinite(q):
            ax.annotate(f"{100 * f:.0f}%", (c, q), textcoords="offset points", xytext=(4, 4))
    ax.set_title("rate capability")
    return ax


def plot_ragone(result: RateCapabilityResult, ax: Any = None) -> Any:
    """Ragone plot: delivered energy vs average power (log-log)."""
    ax = _axes(ax)
    ax.loglog(result.average_power_W, result.energy_Wh, "o-")
    for c, p, e in zip(result.c_rate, result.average_power_W, result.energy_Wh, strict=True):
        if math.isfinite(p) and math.isfinite(e):
            ax.annotate(f"{c:g}C", (p, e), textcoords="offset points", xytext=(4, 4))
    ax.set_xlabel("average power [W]")
    ax.set_ylabel("energy [W·h]")
    ax.set_title("Ragone")
    return ax


def plot_breakdown(part: RateBreakdown, ax: Any = None) -> Any:
    """Stacked areas of the voltage losses vs discharged capacity at one rate."""
    ax = _axes(ax)
    ys = [1e3 * part.losses_V[k] for k in COMPONENTS]
    ax.stackplot(part.capacity_Ah, *ys, labels=[COMPONENT_LABELS[k] for k in COMPONENTS])
    ax.plot(part.capacity_Ah, 1e3 * (part.ocv_V - part.voltage_V), "k--", lw=1, label="OCV − V")
    ax.set_xlabel("discharged capacity [A·h]")
    ax.set_ylabel("voltage loss [mV]")
    ax.set_title(f"{part.c_rate:g}C: {part.bottleneck_key}")
    ax.legend(fontsize="x-small", loc="upper left")
    return ax


def plot_comparison(result: TransportComparisonResult, ax: Any = None) -> Any:
    """Discharge curves with Bruggeman (dashed) and micro-informed (solid) transport."""
    ax = _axes(ax)
    for b, m in zip(result.curves_bruggeman, result.curves_micro, strict=True):
        (line,) = ax.plot(m.capacity_Ah, m.voltage_V, "-", label=f"{m.c_rate:g}C micro")
        ax.plot(b.capacity_Ah, b.voltage_V, "--", color=line.get_color())
    ax.set_xlabel("discharged capacity [A·h]")
    ax.set_ylabel("voltage [V]")
    ax.set_title("micro-informed (solid) vs Bruggeman (dashed)")
    ax.legend(fontsize="small", loc="upper right")
    return ax


# ------------------------------------------------------------------ files
def _write_csv(path: Path, columns: Mapping[str, Sequence[Any]]) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    names = list(columns)
    w.writerow(names)
    n = max(len(v) for v in columns.values())
    for i in range(n):
        w.writerow([_cell(columns[k][i]) if i < len(columns[k]) else "" for k in names])
    return atomic_write_text(path, buf.getvalue())


def _cell(v: Any) -> Any:
    if isinstance(v, float | np.floating):
        return "" if not math.isfinite(float(v)) else repr(float(v))
    return v


def _save_fig(ax: Any, path: Path) -> Path:
    fig = ax.get_figure()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    return path


def _json(path: Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(to_jsonable(data), indent=2, allow_nan=False))


def write_rate_capability(result: RateCapabilityResult, out_dir: str | Path) -> list[Path]:
    """Write the table (JSON, CSV), all curves (CSV) and three PNG plots."""
    out = Path(out_dir)
    files = [_json(out / "rate_capability.json", result.to_dict())]
    rows = result.table()
    files.append(
        _write_csv(out / "rate_capability.csv", {k: [r[k] for r in rows] for k in rows[0]})
    )
    cols: dict[str, Sequence[Any]] = {}
    for c in result.curves:
        cols[f"time_s@{c.c_rate:g}C"] = c.time_s
        cols[f"capacity_Ah@{c.c_rate:g}C"] = c.capacity_Ah
        cols[f"voltage_V@{c.c_rate:g}C"] = c.voltage_V
    files.append(_write_csv(out / "curves.csv", cols))
    files.append(_save_fig(plot_discharge_curves(result), out / "discharge_curves.png"))
    files.append(_save_fig(plot_capacity_vs_rate(result), out / "capacity_vs_rate.png"))
    files.append(_save_fig(plot_ragone(result), out / "ragone.png"))
    if result.breakdown is not None:
        files.extend(write_breakdown(result.breakdown, out))
    return files


def write_breakdown(result: VoltageBreakdownResult, out_dir: str | Path) -> list[Path]:
    """Write ``breakdown.json`` and, per rate, a CSV of the time series and a stacked PNG."""
    out = Path(out_dir)
    files = [_json(out / "breakdown.json", result.to_dict())]
    for part in result.rates:
        tag = f"{part.c_rate:g}C"
        files.append(_write_csv(out / f"breakdown_{tag}.csv", part.to_table()))
        files.append(_save_fig(plot_breakdown(part), out / f"breakdown_{tag}.png"))
    return files


def write_comparison(result: TransportComparisonResult, out_dir: str | Path) -> list[Path]:
    """Write ``comparison.json``, ``comparison.csv`` and ``comparison.png``."""
    out = Path(out_dir)
    rows = result.table()
    return [
        _json(out / "comparison.json", result.to_dict()),
        _write_csv(out / "comparison.csv", {k: [r[k] for r in rows] for k in rows[0]}),
        _save_fig(plot_comparison(result), out / "comparison.png"),
    ]
