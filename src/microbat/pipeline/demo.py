"""The built-in example: generate a synthetic electrode, characterise it, write results.

This is what ``microbat demo`` runs (the README's "main job"). Each stage is the
public API a user would call; the demo only chains them and writes the outputs:

``electrode.h5``
    The synthetic microstructure in microbat's own format (phase table, voxel size).
``electrode.vti``
    The same labels for ParaView.
``results.json``
    Generator parameters, morphology metrics, connectivity classes, tortuosity
    (pore, each axis, with Bruggeman for comparison) and effective electronic
    conductivity of the solid network, with provenance.
``summary.png``
    Orthogonal slices and the headline numbers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from microbat.core.atomic import atomic_path, atomic_write_text
from microbat.core.results import Provenance, Result, to_jsonable

__all__ = ["DemoResult", "run_demo"]

#: Electronic conductivities used by the demo (S/m). NMC secondary particles are
#: poor electronic conductors (~1e-2..1 S/m, e.g. Amin & Chiang 2016); the
#: carbon-binder domain conducts ~10..100 S/m (Zielke et al. 2015 use 1e2-1e3 for
#: solid carbon black; nanoporous CBD much less).
DEMO_CONDUCTIVITIES_S_PER_M: dict[str, float] = {"active": 0.1, "cbd": 50.0}

#: Mean particle radius of the demo electrode (m). Smaller than the generator's
#: default (4 µm) so that the 96³ × 0.4 µm box spans about eight particle
#: diameters: with only four or five, tortuosity factors of one realisation
#: scatter by ±30 % between axes and seeds (a too-small volume element).
DEMO_MEAN_RADIUS_M = 2.5e-6


@dataclass(frozen=True)
class DemoResult(Result):
    """What the demo produced.

    Attributes
    ----------
    out_dir : Path
        Folder with the outputs.
    files : dict of str to Path
        Output files by role (``microstructure``, ``vtk``, ``results``, ``figure``).
    summary : dict
        Headline numbers (also in ``results.json``).
    stage_times_s : dict of str to float
        Wall time of each stage.
    provenance : Provenance
        How it was made.
    """

    out_dir: Path
    files: dict[str, Path]
    summary: dict[str, Any]
    stage_times_s: dict[str, float] = field(default_factory=dict)
    provenance: Provenance | None = None


def run_demo(
    out_dir: str | Path = "microbat-demo",
    *,
    shape: Sequence[int] = (96, 96, 96),
    voxel_size: float = 0.4e-6,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> DemoResult:
    """Generate a synthetic cathode, characterise it and write the results.

    Parameters
    ----------
    out_dir : path-like, default "microbat-demo"
        Output folder (created; existing demo files in it are replaced atomically).
    shape : sequence of int, default (96, 96, 96)
        Volume in voxels (axis 0 through the thickness).
    voxel_size : float, default 0.4e-6
        Voxel edge in metres.
    seed : int, default 0
        Seed of the generator (the whole demo is reproducible).
    progress : callable, optional
        Called with a short message when each stage starts.

    Returns
    -------
    DemoResult
        The files written and the headline numbers.
    """
    from microbat import imaging, io, synth, transport

    say = progress or (lambda _msg: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    t_all = time.perf_counter()

    def stage(name: str, msg: str, fn: Callable[[], Any]) -> Any:
        say(msg)
        t0 = time.perf_counter()
        value = fn()
        times[name] = time.perf_counter() - t0
        return value

    ms = stage(
        "generate",
        f"generating a {'x'.join(map(str, shape))} three-phase electrode",
        lambda: synth.electrode(
            tuple(shape), voxel_size=voxel_size, mean_radius=DEMO_MEAN_RADIUS_M, seed=seed
        ),
    )
    files = {
        "microstructure": out / "electrode.h5",
        "vtk": out / "electrode.vti",
        "results": out / "results.json",
        "figure": out / "summary.png",
    }
    stage(
        "write",
        "writing the microstructure",
        lambda: (
            io.save_microstructure(ms, files["microstructure"]),
            io.write_vti(ms, files["vtk"]),
        ),
    )
    metrics = stage("metrics", "measuring morphology", lambda: imaging.characterize(ms))
    conn = stage("connectivity", "classifying clusters", lambda: imaging.analyze_connectivity(ms))
    tau = stage(
        "tortuosity",
        "solving steady diffusion in the pores along each axis",
        lambda: transport.tortuosity(ms, phase="electrolyte", axis="all"),
    )
    sigma = stage(
        "conductivity",
        "solving electronic conduction in the solid network",
        lambda: transport.conductivity(
            ms, conductivities=DEMO_CONDUCTIVITIES_S_PER_M, axis=ms.thickness_axis
        ),
    )

    brug = transport.bruggeman_error(tau)
    summary = _summary(ms, metrics, tau, sigma, brug)
    report = {
        "summary": summary,
        "microstructure": ms.summary(),
        "generator": ms.metadata.get("generator", {}),
        "metrics": metrics.to_dict(),
        "connectivity": conn.to_dict(),
        "tortuosity": tau.to_dict(),
        "bruggeman": brug.to_dict(),
        "conductivity": sigma.to_dict(),
        "stage_times_s": times,
    }
    stage("figure", "drawing the summary figure", lambda: _figure(ms, summary, files["figure"]))
    atomic_write_text(files["results"], json.dumps(to_jsonable(report), indent=2))
    prov = Provenance(
        "microbat.pipeline.run_demo",
        {"shape": list(shape), "voxel_size": voxel_size},
        seed=seed,
        wall_time_s=time.perf_counter() - t_all,
    )
    return DemoResult(out, files, summary, times, prov)


def _summary(ms: Any, metrics: Any, tau: Any, sigma: Any, brug: Any) -> dict[str, Any]:
    from microbat import transport

    fr = ms.volume_fractions()
    a_s = {f"{a}/{b}": v for (a, b), v in metrics.interface_specific_areas.items()}
    return {
        "shape": list(ms.shape),
        "voxel_size_m": list(ms.voxel_size),
        "volume_fractions": fr,
        "specific_interface_area_per_m": a_s,
        "tau_pore": list(tau.tau),
        "bruggeman_tau_pore": float(transport.bruggeman_tau(tau.porosity)),
        "porosity": tau.porosity,
        "sigma_eff_solid_S_per_m": sigma.sigma_eff[ms.thickness_axis],
        "thickness_axis": ms.thickness_axis,
    }


def _figure(ms: Any, summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    lab = np.asarray(ms.labels)
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.6))
    mid = [n // 2 for n in lab.shape]
    names = ["axis 0 (thickness) = mid", "axis 1 = mid", "axis 2 = mid"]
    for k, ax in enumerate(axes[:3]):
        sl = np.take(lab, mid[k], axis=k)
        ax.imshow(
            sl,
            cmap="viridis",
            interpolation="nearest",
            vmin=min(ms.phases.labels),
            vmax=max(ms.phases.labels),
        )
        ax.set_title(names[k], fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    ax = axes[3]
    ax.axis("off")
    lines = [f"{k}: {v:.3f}" for k, v in summary["volume_fractions"].items()]
    taus = ", ".join(
        "∞" if t is None or not np.isfinite(t) else f"{t:.2f}" for t in summary["tau_pore"]
    )
    lines.append(f"τ pore (axes 0,1,2): {taus}")
    bt = summary["bruggeman_tau_pore"]
    lines.append(f"Bruggeman τ: {bt:.2f}" if isinstance(bt, float) else f"Bruggeman τ: {bt}")
    ax.text(0, 1, "\n".join(lines), va="top", family="monospace", fontsize=9)
    fig.suptitle("microbat demo: synthetic electrode (labels: pore/cbd/active)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
