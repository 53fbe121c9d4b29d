"""Nyquist and Bode figures of impedance spectra (matplotlib, Agg backend)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["plot_spectra"]


def plot_spectra(
    results: Sequence[Any],
    *,
    annotate: Mapping[str, float] | None = None,
    path: str | os.PathLike[str] | None = None,
    area_specific: bool = False,
) -> Any:
    """Nyquist (left) and Bode (right) plots of one or more spectra.

    Parameters
    ----------
    results : sequence of EISResult
        Spectra to overlay (labelled by their ``model``).
    annotate : mapping of str to float, optional
        Process name -> characteristic frequency (Hz), marked on both plots.
    path : path-like, optional
        Write the figure there (PNG/SVG/PDF by suffix, atomically).
    area_specific : bool, default False
        Plot ``Z · A`` in Ω cm² instead of Ω.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.2), layout="constrained")
    ax_n, ax_b = fig.subplots(1, 2)
    ax_p = ax_b.twinx()
    unit = "Ω cm²" if area_specific else "Ω"
    for r in results:
        z = r.impedance * (r.area_m2 * 1e4 if area_specific else 1.0)
        label = f"{r.model}{' (blocking)' if r.blocking else ''}"
        (line,) = ax_n.plot(z.real, -z.imag, "o-", ms=3, label=label)
        ax_b.loglog(r.frequency_Hz, np.abs(z), "-", color=line.get_color(), label=label)
        ax_p.semilogx(r.frequency_Hz, np.degrees(np.angle(z)), "--", color=line.get_color())
        for name, fc in (annotate or {}).items():
            k = int(np.argmin(np.abs(np.log(r.frequency_Hz / fc))))
            ax_n.annotate(
                name, (z[k].real, -z[k].imag), fontsize=7, xytext=(4, 4), textcoords="offset points"
            )
            ax_b.axvline(fc, color="0.7", lw=0.8)
            ax_b.text(fc, ax_b.get_ylim()[0], name, rotation=90, fontsize=7, va="bottom")
    ax_n.set_xlabel(f"Re Z ({unit})")
    ax_n.set_ylabel(f"−Im Z ({unit})")
    ax_n.set_aspect("equal", adjustable="datalim")
    ax_n.legend(fontsize=8, loc="upper left")
    ax_n.set_title("Nyquist")
    ax_b.set_xlabel("frequency (Hz)")
    ax_b.set_ylabel(f"|Z| ({unit}), solid")
    ax_p.set_ylabel("phase (°), dashed")
    ax_b.set_title("Bode")
    if path is not None:
        from microbat.core.atomic import atomic_path

        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=os.path.splitext(str(path))[1].lstrip(".") or "png", dpi=120)
    return fig
