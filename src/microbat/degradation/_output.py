"""Writers of the gas and heating results to a folder (``--out``): every file atomic.

Files are written only after the computation succeeded, each through
:func:`microbat.core.atomic.atomic_path` (a temporary name, then a rename), so an
interrupted or failed write never leaves a half-written file under its final name.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from microbat.core.atomic import atomic_path, atomic_write_text
from microbat.core.results import to_jsonable

__all__ = ["write_gas", "write_heat"]


def _png(fig: Any, path: Path, dpi: int = 110) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path


def _figure(w: float, h: float, **adjust: float) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h))
    margins = {"left": 0.08, "right": 0.97, "top": 0.9, "bottom": 0.13, "wspace": 0.3}
    margins.update(adjust)
    fig.subplots_adjust(**margins)
    return fig


def _csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for r in rows:
            w.writerow(["" if v is None else v for v in r])
    return path


def _npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    return path


def _json(path: Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(to_jsonable(data), indent=2, allow_nan=False) + "\n")


def _vti(path: Path, array: np.ndarray, voxel_size: Sequence[float], name: str) -> Path:
    from microbat.io.vtk import write_vti

    return write_vti(np.ascontiguousarray(array), path, voxel_size=voxel_size, name=name)


def write_gas(
    result: Any, folder: str | Path, *, thickness_axis: int, voxel_size: Sequence[float]
) -> list[Path]:
    """Write a :class:`~microbat.degradation.gas.GasResult` to ``folder``.

    Files: ``result.json``, ``transport_loss.csv`` (one row per saturation),
    ``drainage.csv`` (the saturation–pressure curve), ``fields.npz`` (``gas_level``,
    ``invasion_pressure_Pa``: NaN off the pores, inf where never invaded),
    ``gas_level.vti`` and ``invasion_pressure.vti`` (ParaView), ``gas_slices.png``
    and ``gas_curves.png``.

    Returns
    -------
    list of Path
        The files written.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    data = result.to_dict()
    files = []
    rows = []
    rate = result.rate or {}
    for i, s in enumerate(result.saturation):
        row = [
            s,
            result.achieved_saturation[i],
            result.capillary_pressure_Pa[i],
            result.electrolyte_fraction[i],
            result.effective_conductivity_ratio[i],
            result.tau[i],
            result.wetted_area_fraction[i],
            result.wetted_area_per_volume_per_m[i],
            result.isolated_electrolyte_fraction[i],
            result.percolating[i],
        ]
        for k, _ in enumerate(rate.get("c_rates") or []):
            row.append(rate["capacity_ratio"][i][k])
        rows.append(row)
    head = [
        "saturation",
        "achieved_saturation",
        "capillary_pressure_Pa",
        "electrolyte_fraction",
        "effective_conductivity_ratio",
        "tau",
        "wetted_area_fraction",
        "wetted_area_per_volume_per_m",
        "isolated_electrolyte_fraction",
        "percolating",
        *[f"capacity_ratio_{c:g}C" for c in rate.get("c_rates") or []],
    ]
    files.append(_csv(out / "transport_loss.csv", head, rows))
    c = result.curve
    files.append(
        _csv(
            out / "drainage.csv",
            ["pressure_Pa", "radius_m", "saturation", "trapped_saturation"],
            list(
                zip(
                    c.pressure_Pa.tolist(),
                    c.radius_m.tolist(),
                    c.saturation.tolist(),
                    c.trapped_saturation.tolist(),
                    strict=True,
                )
            ),
        )
    )
    inv = np.asarray(c.invasion_pressure_Pa, np.float32)
    files.append(
        _npz(out / "fields.npz", {"gas_level": result.gas_level, "invasion_pressure_Pa": inv})
    )
    files.append(_vti(out / "gas_level.vti", result.gas_level, voxel_size, "gas_level"))
    files.append(
        _vti(
            out / "invasion_pressure.vti",
            np.where(np.isfinite(inv), inv, np.nan).astype(np.float32),
            voxel_size,
            "invasion_pressure_Pa",
        )
    )
    from microbat.degradation.plots import draw_gas_curves, draw_gas_slices

    fig = _figure(5.2, 5.0, left=0.12, right=0.97, bottom=0.1)
    draw_gas_slices(fig, result.gas_level, list(result.saturation), thickness_axis)
    files.append(_png(fig, out / "gas_slices.png"))
    fig = _figure(11, 4.0)
    draw_gas_curves(fig, data)
    files.append(_png(fig, out / "gas_curves.png"))
    files.append(_json(out / "result.json", data))
    return files


def write_heat(
    result: Any, folder: str | Path, *, thickness_axis: int, voxel_size: Sequence[float]
) -> list[Path]:
    """Write a :class:`~microbat.degradation.heating.HeatResult` to ``folder``.

    Files: ``result.json``, ``depth_profile.csv``, ``necks.csv``, ``fields.npz``
    (``heat_W_per_m3`` — NaN where no conductor carries current —,
    ``current_density_A_per_m2``, ``potential_V``, ``electrolyte_potential_V`` in
    the operating mode, ``delta_T_K``), ``heat.vti``, ``current_density.vti``,
    ``delta_T.vti``, ``heat_slices.png`` and ``heat_depth.png``.

    Returns
    -------
    list of Path
        The files written.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    files.append(
        _csv(
            out / "depth_profile.csv",
            ["depth_m", "heat_W_per_m3"],
            list(zip(result.depth_m.tolist(), result.heat_depth_W_per_m3.tolist(), strict=True)),
        )
    )
    keys = [
        "voxels",
        "phase",
        "heat_W",
        "heat_fraction",
        "peak_current_density_A_per_m2",
        "mean_current_density_A_per_m2",
        "current_A",
        "current_fraction",
        "depth_m",
    ]
    files.append(
        _csv(
            out / "necks.csv",
            ["rank", *keys, "centroid_m"],
            [
                [i + 1, *[n[k] for k in keys], " ".join(f"{v:.6g}" for v in n["centroid_m"])]
                for i, n in enumerate(result.necks)
            ],
        )
    )
    arrays = {
        "heat_W_per_m3": np.asarray(result.heat_W_per_m3, np.float32),
        "current_density_A_per_m2": np.asarray(result.current_density_A_per_m2_field, np.float32),
        "potential_V": np.asarray(result.potential_V, np.float32),
        "delta_T_K": np.asarray(result.delta_T_K, np.float32),
    }
    if result.electrolyte_potential_V is not None:
        arrays["electrolyte_potential_V"] = np.asarray(result.electrolyte_potential_V, np.float32)
    files.append(_npz(out / "fields.npz", arrays))
    files.append(_vti(out / "heat.vti", arrays["heat_W_per_m3"], voxel_size, "heat_W_per_m3"))
    files.append(
        _vti(
            out / "current_density.vti",
            arrays["current_density_A_per_m2"],
            voxel_size,
            "current_density_A_per_m2",
        )
    )
    files.append(_vti(out / "delta_T.vti", arrays["delta_T_K"], voxel_size, "delta_T_K"))
    from microbat.degradation.plots import draw_heat_profile, draw_heat_slices

    fig = _figure(13, 4.2, left=0.06, wspace=0.35)
    draw_heat_slices(
        fig,
        arrays["heat_W_per_m3"],
        arrays["current_density_A_per_m2"],
        arrays["delta_T_K"],
        thickness_axis,
    )
    files.append(_png(fig, out / "heat_slices.png"))
    fig = _figure(6, 4.0, left=0.12)
    draw_heat_profile(fig, result.depth_m, result.heat_depth_W_per_m3)
    files.append(_png(fig, out / "heat_depth.png"))
    files.append(_json(out / "result.json", result.to_dict()))
    return files
