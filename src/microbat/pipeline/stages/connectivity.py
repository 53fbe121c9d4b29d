"""Twin stage ``connectivity``: percolating, dead-end and isolated clusters of each phase.

Labels the clusters of every phase with :func:`microbat.imaging.analyze_connectivity`
(26-connected fluids, 6-connected solids) and classes them by the faces of the
chosen axis they touch. Out of core: clusters labelled block by block and stitched
across block faces with a sparse graph. Report sections: "Phase fractions and
connectivity" and "Orthogonal slices". Diagnosis: a pore network that does not
cross the electrode is the dominant bottleneck whatever else holds (priority 0);
dead-end/isolated porosity and disconnected active material are findings.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import Field

from microbat.imaging.connectivity import analyze_connectivity
from microbat.pipeline.base import (
    Finding,
    Stage,
    StageContext,
    StageOutput,
    StageSettings,
    Verdict,
    labels_source,
    mid_slices,
    phase_rows,
)
from microbat.pipeline.chunked import block_bincount, to_zarr
from microbat.pipeline.reportkit import (
    Figures,
    ReportSection,
    ReportView,
    absent,
    esc,
    img,
    num,
    pct,
    qc_figure,
    split,
    table,
)

__all__ = ["STAGE", "ConnectivitySettings"]

_CLASS_COLORS = ("#ffffff", "#2a7a3b", "#e0a020", "#c0392b")  # none, perc, dead-end, isolated


class ConnectivitySettings(StageSettings):
    """Cluster classes (``microbat.imaging.analyze_connectivity``)."""

    axis: int | None = Field(
        None,
        ge=0,
        le=2,
        description="Axis whose two faces define percolating / dead-end / isolated. Default: "
        "the thickness axis.",
    )


# ============================================================================ run
def _run(ctx: StageContext) -> StageOutput:
    if ctx.out_of_core:
        return _run_chunked(ctx)
    ms = ctx.microstructure()
    ctx.step("labelling clusters (26-connected pores, 6-connected solids)")
    res = analyze_connectivity(ms, axis=ctx.config.connectivity.axis)
    summary = res.to_dict()
    summary["phases_table"] = phase_rows(ms)
    arrays = mid_slices(ms.labels, prefix="labels_")
    for name, cmap in res.class_maps.items():
        arrays.update(mid_slices(cmap, prefix=f"class_{name}_"))
    return StageOutput(summary=summary, arrays=arrays)


# ================================================================== out of core
def _run_chunked(ctx: StageContext) -> StageOutput:
    """Clusters labelled per block, stitched across block faces, classified per axis."""
    from scipy import ndimage
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    labels, table_ = labels_source(ctx)
    axis = ctx.config.connectivity.axis
    axis = ctx.config.input.thickness_axis if axis is None else axis
    n_total = labels.size
    summary: dict[str, Any] = {
        "axis": axis,
        "phases": [],
        "connectivity": {},
        "n_clusters": {},
        "cluster_counts": {},
        "volume_fractions": {},
        "phase_fractions": {},
        "out_of_core": True,
        "phases_table": table_.to_list(),
    }
    arrays = mid_slices(labels, prefix="labels_")
    work = ctx.stage_dir / "_clusters.zarr"
    for p in table_.values():
        fluid = p.role.value in ("electrolyte", "gas")
        conn = 26 if fluid else 6
        struct = ndimage.generate_binary_structure(3, 3 if fluid else 1)
        ctx.step(f"{p.name}: labelling clusters block by block ({conn}-connected)")
        lab = p.label

        def count(b: np.ndarray, _lab: int = lab, _s: Any = struct) -> np.ndarray:
            return np.array([[[ndimage.label(b == _lab, structure=_s)[1]]]], np.int64)

        per_block = np.asarray(labels.map_blocks(count, dtype=np.int64, chunks=(1, 1, 1)).compute())
        offsets = np.concatenate([[0], np.cumsum(per_block.ravel())[:-1]]).reshape(per_block.shape)
        n_clusters_local = int(per_block.sum())

        itype = np.int32 if n_clusters_local < 2**31 - 1 else np.int64

        def label_block(b, block_info=None, _lab=lab, _s=struct, _off=offsets, _t=itype):
            loc = block_info[0]["chunk-location"]
            out, _ = ndimage.label(b == _lab, structure=_s, output=_t)
            out[out > 0] += _t(_off[loc])
            return out

        glob = to_zarr(labels.map_blocks(label_block, dtype=itype), work)
        ctx.step(f"{p.name}: stitching clusters across block faces")
        pairs = [np.zeros((0, 2), np.int64)]
        for ax in range(3):
            edges = np.cumsum(labels.chunks[ax])[:-1]
            for e in edges:
                a = np.asarray(np.take(glob, e - 1, axis=ax).compute())
                b = np.asarray(np.take(glob, e, axis=ax).compute())
                pairs.append(_face_pairs(a, b, fluid))
        pr = np.concatenate(pairs)
        m = n_clusters_local + 1
        graph = coo_matrix(
            (np.ones(pr.shape[0], np.int8), (pr[:, 0], pr[:, 1])), shape=(m, m)
        ).tocsr()
        n_comp, comp = connected_components(graph, directed=False)
        first = np.asarray(np.take(glob, 0, axis=axis).compute())
        last = np.asarray(np.take(glob, glob.shape[axis] - 1, axis=axis).compute())
        touch0 = np.zeros(n_comp, bool)
        touch1 = np.zeros(n_comp, bool)
        touch0[comp[np.unique(first[first > 0])]] = True
        touch1[comp[np.unique(last[last > 0])]] = True
        cls = np.where(touch0 & touch1, 1, np.where(touch0 | touch1, 2, 3)).astype(np.uint8)
        has = np.zeros(n_comp, bool)
        has[comp[1:]] = True  # components holding at least one cluster of the phase
        has[comp[0]] = False
        lut = cls[comp]
        lut[0] = 0
        cmap = glob.map_blocks(lambda g, _l=lut: _l[g], dtype=np.uint8)
        vol = block_bincount(cmap, 4)
        phase_vox = int(vol[1:].sum())
        names = ("percolating", "dead_end", "isolated")
        summary["phases"].append(p.name)
        summary["connectivity"][p.name] = conn
        summary["n_clusters"][p.name] = int(has.sum())
        summary["cluster_counts"][p.name] = {
            nm: int(np.count_nonzero(has & (cls == k))) for k, nm in enumerate(names, start=1)
        }
        summary["volume_fractions"][p.name] = {
            nm: float(vol[k] / n_total) for k, nm in enumerate(names, start=1)
        }
        summary["phase_fractions"][p.name] = {
            nm: (float(vol[k] / phase_vox) if phase_vox else None)
            for k, nm in enumerate(names, start=1)
        }
        arrays.update(mid_slices(cmap, prefix=f"class_{p.name}_"))
        shutil.rmtree(work, ignore_errors=True)
    return StageOutput(summary=summary, arrays=arrays)


def _face_pairs(a: np.ndarray, b: np.ndarray, full: bool) -> np.ndarray:
    """Cluster-label pairs joined across a block face (planes ``a`` | ``b``).

    6-connectivity joins voxels facing each other; 26-connectivity also joins each
    voxel to the 8 in-plane neighbours of its opposite voxel.
    """
    out = []
    shifts = [(0, 0)] if not full else [(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)]
    n0, n1 = a.shape
    for di, dj in shifts:
        sa = a[max(0, -di) : n0 - max(0, di), max(0, -dj) : n1 - max(0, dj)]
        sb = b[max(0, di) : n0 - max(0, -di), max(0, dj) : n1 - max(0, -dj)]
        m = (sa > 0) & (sb > 0)
        if m.any():
            out.append(np.unique(np.stack([sa[m], sb[m]], axis=1), axis=0))
    return np.concatenate(out) if out else np.zeros((0, 2), np.int64)


# ========================================================================= report
def _fractions_figure(figs: Figures, conn: Mapping[str, Any]) -> str:
    vf = conn.get("volume_fractions") or {}
    names = list(vf)
    fig = figs.new(7.5, 0.55 * max(len(names), 2) + 1.2, left=0.14, bottom=0.25, top=0.85)
    ax = fig.subplots()
    left = np.zeros(len(names))
    labels = {"percolating": "percolating", "dead_end": "dead-end", "isolated": "isolated"}
    for j, cls in enumerate(("percolating", "dead_end", "isolated")):
        vals = np.array([float(vf[n].get(cls) or 0.0) for n in names])
        ax.barh(names, vals, left=left, color=_CLASS_COLORS[j + 1], label=labels[cls])
        left += vals
    ax.set_xlabel("volume fraction of the whole image")
    ax.set_title(f"phase fractions by connectivity class (along axis {conn.get('axis')})")
    ax.legend(fontsize=8, loc="lower right")
    ax.invert_yaxis()
    return figs.png(fig)


def _class_figure(figs: Figures, arr: Mapping[str, np.ndarray], phases: Sequence[str]) -> str:
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    n = len(phases)
    fig = figs.new(
        10.5, 3.0 * n, left=0.01, right=0.9, top=1 - 0.25 / n, bottom=0.01, wspace=0.05, hspace=0.12
    )
    axes = np.atleast_2d(fig.subplots(n, 3))
    cmap = ListedColormap(list(_CLASS_COLORS))
    for r, name in enumerate(phases):
        sl = split(arr, f"class_{name}_")
        for k in range(3):
            ax = axes[r, k]
            ax.set_xticks([])
            ax.set_yticks([])
            if f"mid{k}" in sl:
                ax.imshow(sl[f"mid{k}"], cmap=cmap, vmin=-0.5, vmax=3.5, interpolation="nearest")
            ax.set_title(f"{name} — axis {k} mid-slice", fontsize=8.5)
    axes[0, 2].legend(
        handles=[
            Patch(color=_CLASS_COLORS[1], label="percolating"),
            Patch(color=_CLASS_COLORS[2], label="dead-end"),
            Patch(color=_CLASS_COLORS[3], label="isolated"),
        ],
        fontsize=7,
        loc="lower right",
    )
    return figs.png(fig)


def _report(view: ReportView) -> list[ReportSection]:
    figs = view.figures
    conn = view.summary("connectivity")
    met = view.summary("metrics")
    if conn:
        vf = met.get("volume_fractions") or {}
        rows_c = []
        for n in conn.get("phases", []):
            pf = conn["phase_fractions"].get(n, {})
            cc = conn["cluster_counts"].get(n, {})
            rows_c.append(
                (
                    esc(n),
                    num(
                        vf.get(n, sum(v or 0 for v in conn["volume_fractions"][n].values())), ".4f"
                    ),
                    f"{pct(pf.get('percolating'))} ({cc.get('percolating', 0)})",
                    f"{pct(pf.get('dead_end'))} ({cc.get('dead_end', 0)})",
                    f"{pct(pf.get('isolated'))} ({cc.get('isolated', 0)})",
                    esc(conn["connectivity"].get(n, "")),
                )
            )
        body = table(
            [
                "phase",
                "volume fraction",
                "percolating (clusters)",
                "dead-end",
                "isolated",
                "connectivity",
            ],
            rows_c,
        )
        body += img(_fractions_figure(figs, conn), "phase fractions by connectivity class")
        body += img(
            _class_figure(figs, view.arrays("connectivity"), list(conn.get("phases", []))),
            "connectivity class maps",
            "Percolating clusters touch both faces along the axis, dead-end clusters one, "
            "isolated clusters none.",
        )
    else:
        body = view.status_line("connectivity")
    sections = [ReportSection("phases", "Phase fractions and connectivity", body)]

    lab = split(view.arrays("connectivity"), "labels_") if conn else {}
    if not lab and view.summary("input").get("labelled"):
        lab = split(view.arrays("input"), "labels_")
    if lab:
        body = img(
            qc_figure(figs, [("labels", lab, "labels")], view.phases()),
            "orthogonal slices of the labelled microstructure",
            "Middle slices across axes 0 (thickness), 1 and 2.",
        )
    else:
        body = absent("No labelled microstructure was produced.")
    sections.append(ReportSection("slices", "Orthogonal slices", body))
    return sections


# ====================================================================== diagnosis
def _roles(results: Mapping[str, Any]) -> dict[str, str]:
    met = results.get("metrics") or {}
    conn = results.get("connectivity") or {}
    rows = met.get("phases_table") or conn.get("phases_table") or []
    return {p["name"]: p["role"] for p in rows}


def _diagnose(results: Mapping[str, Any]) -> Iterator[Verdict | Finding]:
    status = results.get("_status", {})
    conn = results.get("connectivity") or {}
    tra = results.get("transport") or {}
    roles = _roles(results)
    pore = next((n for n, r in roles.items() if r == "electrolyte"), None)
    active = next((n for n, r in roles.items() if r == "active"), None)

    # A blocked pore network: the bottleneck whatever else holds.
    pore_perc = None
    if pore and conn.get("cluster_counts", {}).get(pore) is not None:
        pore_perc = conn["cluster_counts"][pore].get("percolating", 0) > 0
    transport_blocked = status.get("transport") == "complete" and tra.get("tau_thickness") is None
    if pore_perc is False or transport_blocked:
        details = []
        pf = (conn.get("phase_fractions") or {}).get(pore, {}) if pore else {}
        if pf:
            details.append(
                f"Of the pore volume, {pct(pf.get('dead_end'))} is dead-end and "
                f"{pct(pf.get('isolated'))} isolated; none crosses the electrode, so no "
                "electrolyte path exists and the cell model cannot be run on this image. "
                "Check the segmentation (a too dark threshold shrinks the pores) or the "
                "thickness axis."
            )
        yield Verdict(
            0,
            "pore_network_blocked",
            "Ionic transport is blocked: the pore network does not connect the current "
            "collector to the separator along the thickness axis",
            tuple(details),
        )

    pf_all = conn.get("phase_fractions") or {}
    if pore and pore in pf_all:
        p = pf_all[pore]
        lost = (p.get("dead_end") or 0) + (p.get("isolated") or 0)
        if lost > 0.02:
            yield Finding(
                30,
                f"{pct(lost)} of the pore volume does not cross the electrode "
                f"({pct(p.get('dead_end'))} dead-end, {pct(p.get('isolated'))} isolated): "
                "it holds electrolyte but carries no ionic current through the thickness.",
            )
    if active and active in pf_all:
        iso = pf_all[active].get("isolated") or 0
        if iso > 0.01:
            yield Finding(
                40,
                f"{pct(iso)} of the active material is in clusters touching neither face "
                "(6-connected): unless the carbon-binder links them, that capacity is "
                "electronically disconnected.",
            )


STAGE = Stage(
    "connectivity",
    "Connectivity classes",
    ("input", "segment"),
    ("connectivity",),
    _run,
    settings=(("connectivity", ConnectivitySettings),),
    report=_report,
    diagnose=_diagnose,
)
