"""CLI verbs for solid-state batteries: ``tpb``, ``grains`` and ``interface``.

JSON output (``--json``), all SI:

``tpb``
    ``tpb_edge_length_m`` and ``active_tpb_edge_length_m`` (raw voxel-edge length,
    uncorrected), ``tpb_density_m_per_m3`` and ``active_tpb_density_m_per_m3``
    (corrected toward the true line length; ``correction`` and
    ``correction_factor`` state it), ``active_fraction``, the dead-end and isolated
    parts, ``reservoirs``, and ``contact`` (active-material / electrolyte contact
    area, active and isolated).
``grains``
    ``effective_conductivity_S_per_m``, ``brick_layer_S_per_m``, the no-boundary
    and stereological values, the grain statistics and, with ``--impedance``, the
    two arcs.
``interface``
    ``focusing_factor_max``, ``critical_current_A_per_m2``,
    ``constriction_resistance_ohm_m2``, the other resistances, the hot-spot
    fraction and ``monroe_newman``.

Bad input (fewer than three distinct phases, a phase absent, a contact fraction
outside (0, 1], a grain size below two voxels) stops before any work with one
line and exit code 1; maps go to ``--out`` only when the work is done (atomic).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer

from microbat.cli.common import (
    CropOpt,
    JsonOpt,
    OptionGroup,
    SeedOpt,
    ThicknessAxisOpt,
    VoxelSizeOpt,
    check_writable,
    emit,
    guarded,
    load_input,
    with_option_groups,
)

PhaseTableOpt = Annotated[
    str | None,
    typer.Option(
        "--phase-table",
        help="Phase table of a labelled file without one, name=label pairs (e.g. "
        "void:gas=0,cbd=1,active=2,se=3); roles inferred from names.",
    ),
]
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", help="Folder for the maps (.npy), written when the work is done."),
]
OptFile = Annotated[
    Path | None,
    typer.Argument(help="Input file or folder (optional).", show_default=False),
]
InFile = Annotated[Path, typer.Argument(help="Input file or folder.", show_default=False)]


@dataclasses.dataclass(frozen=True)
class SSBInput(OptionGroup):
    """``--phase-table``, ``--voxel-size``, ``--thickness-axis``, ``--crop``: how to read FILE.

    As :class:`microbat.cli.common.InputOptions`, with the phase table under
    ``--phase-table`` (``--phases`` names the phases a verb works on here).
    """

    phase_table: PhaseTableOpt = None
    voxel_size: VoxelSizeOpt = None
    thickness_axis: ThicknessAxisOpt = None
    crop: CropOpt = None

    def load(self, path: Path) -> Any:
        """Read the microstructure at ``path`` with these overrides."""
        return load_input(path, self.phase_table, self.voxel_size, self.thickness_axis,
                          crop=self.crop)  # fmt: skip


def _reservoirs(text: str | None) -> dict[str, Any] | None:
    """``name=axis:first|last|none,...`` → ``{name: (axis, side) or None}``."""
    from microbat.core.errors import InvalidInputError

    if text is None or not text.strip():
        return None
    out: dict[str, Any] = {}
    for token in text.split(","):
        name, sep, spec = token.partition("=")
        spec = spec.strip().lower()
        if not sep or not name.strip():
            raise InvalidInputError(
                f"--reservoir {token!r}: write name=axis:first|last or name=none, e.g. se=0:last"
            )
        if spec in ("none", "any"):
            out[name.strip()] = None
            continue
        axis, _, side = spec.partition(":")
        sides = {"first": 0, "0": 0, "last": -1, "-1": -1}
        try:
            out[name.strip()] = (int(axis), sides[side])
        except (ValueError, KeyError):
            raise InvalidInputError(
                f"--reservoir {token!r}: write name=axis:first|last or name=none, e.g. se=0:last"
            ) from None
    return out


def _write_maps(out: Path, maps: dict[str, Any]) -> dict[str, str]:
    import numpy as np

    from microbat.core.atomic import atomic_path

    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, arr in maps.items():
        path = out / f"{name}.npy"
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(arr))
        written[name] = str(path)
    return written


@guarded
@with_option_groups
def tpb(
    file: InFile,
    phases: Annotated[
        str,
        typer.Option(
            "--phases",
            help="The three phases (names or roles), comma separated: the active material, "
            "the electrolyte and the electronic conductor, e.g. active,se,cbd.",
        ),
    ] = "active,solid_electrolyte,carbon_binder",
    reservoir: Annotated[
        str | None,
        typer.Option(
            "--reservoir",
            help="Override the face a phase must reach: name=axis:first|last or name=none "
            "(default: electron conductors the collector = first layer of the thickness "
            "axis, ion conductors the separator = last layer).",
        ),
    ] = None,
    network: Annotated[
        str,
        typer.Option(
            "--network",
            help="conductor: connected through all phases of the same conduction class "
            "(active via carbon); phase: through the phase alone.",
        ),
    ] = "conductor",
    correction: Annotated[
        str,
        typer.Option(
            "--correction",
            help="local: per-edge line direction (default); isotropic: divide by 1.5; none.",
        ),
    ] = "local",
    window: Annotated[
        int, typer.Option("--window", help="Window (voxels, odd) of the local correction.")
    ] = 5,
    *,
    inputs: SSBInput,
    out: OutOpt = None,
    json: JsonOpt = False,
) -> None:
    """Triple-phase boundary length (active, dead-end, isolated) and contact area."""
    from microbat.ssb.tpb import triple_phase_boundary

    check_writable(out)
    ms = inputs.load(file)
    items = [s.strip() for s in phases.split(",") if s.strip()]
    r = triple_phase_boundary(
        ms, items, reservoirs=_reservoirs(reservoir), network=network,  # type: ignore[arg-type]
        correction=correction, window=window, keep_map=out is not None,  # type: ignore[arg-type]
    )  # fmt: skip
    factor = {
        "local": "per-edge 1/|t|_1 of the local line direction (principal axis of the TPB "
        f"edges in a {r.window}^3 window); mean factor {r.correction_factor:.4f}",
        "isotropic": "1/1.5 (isotropic lines)",
        "none": "none (raw voxel-edge length)",
    }[r.correction]
    data: dict[str, Any] = {
        "phases": list(r.phases),
        "reservoirs": r.reservoirs,
        "network": r.network,
        "tpb_edge_length_m": r.edge_length_m,
        "active_tpb_edge_length_m": r.active_edge_length_m,
        "dead_end_tpb_edge_length_m": r.dead_end_edge_length_m,
        "isolated_tpb_edge_length_m": r.isolated_edge_length_m,
        "tpb_edge_density_m_per_m3": r.edge_density_m_per_m3,
        "tpb_length_m": r.length_m,
        "active_tpb_length_m": r.active_length_m,
        "tpb_density_m_per_m3": r.density_m_per_m3,
        "active_tpb_density_m_per_m3": r.active_density_m_per_m3,
        "active_fraction": r.active_fraction,
        "dead_end_fraction": r.dead_end_length_m / r.length_m if r.length_m else 0.0,
        "isolated_fraction": r.isolated_length_m / r.length_m if r.length_m else 0.0,
        "correction": r.correction,
        "correction_factor": r.correction_factor,
        "correction_note": factor,
        "n_edges": r.n_edges,
        "volume_m3": r.volume_m3,
        "contact": None if r.contact is None else r.contact.to_dict(),
        "provenance": r.provenance.to_dict(),
    }
    if out is not None:
        assert r.active_map is not None
        data["outputs"] = _write_maps(out, {"active_tpb_map_m": r.active_map})

    def human() -> None:
        typer.echo(
            f"TPB of {', '.join(r.phases)} ({r.network} networks; reservoirs "
            + ", ".join(f"{k}: {v if v is not None else 'none'}" for k, v in r.reservoirs.items())
            + ")"
        )
        typer.echo(
            f"  voxel-edge length {r.edge_length_m:.4g} m (active {r.active_edge_length_m:.4g} m), "
            f"density {r.edge_density_m_per_m3:.4g} m/m^3 raw"
        )
        typer.echo(
            f"  corrected density {r.density_m_per_m3:.4g} m/m^3, active "
            f"{r.active_density_m_per_m3:.4g} m/m^3 (factor {r.correction_factor:.4f}: {factor})"
        )
        dead, iso = data["dead_end_fraction"], data["isolated_fraction"]
        typer.echo(
            f"  active {100 * r.active_fraction:.1f} %, dead-end {100 * dead:.1f} %, "
            f"isolated {100 * iso:.1f} %"
        )
        if r.contact is not None:
            c = r.contact
            typer.echo(
                f"contact {c.phases[0]}/{c.phases[1]}: {c.specific_area_per_m:.4g} 1/m "
                f"(active {c.active_specific_area_per_m:.4g} 1/m, {100 * c.active_fraction:.1f} %)"
            )
        if out is not None:
            typer.echo(f"map: {data['outputs']['active_tpb_map_m']}")

    emit(data, as_json=json, human=human)


@guarded
@with_option_groups
def grains(
    file: InFile,
    grain_size: Annotated[
        str | None,
        typer.Option(
            "--grain-size",
            help="Mean grain size of a Voronoi polycrystal in the electrolyte (2um, 2e-6); "
            "at least two voxels.",
        ),
    ] = None,
    labels: Annotated[
        bool,
        typer.Option(
            "--labels",
            help="FILE holds grain labels (0 = no electrolyte) instead of phases.",
        ),
    ] = False,
    phase: Annotated[
        str, typer.Option("--phase", help="The electrolyte phase (name or role).")
    ] = "solid_electrolyte",
    sigma_bulk: Annotated[
        float, typer.Option("--sigma-bulk", help="Grain (bulk) conductivity, S/m.")
    ] = 0.05,
    gb_resistance: Annotated[
        float | None,
        typer.Option("--gb-resistance", help="Specific GB resistance, Ohm m^2 (default 1e-5)."),
    ] = None,
    gb_conductivity: Annotated[
        float | None,
        typer.Option("--gb-conductivity", help="GB conductivity, S/m (with --gb-thickness)."),
    ] = None,
    gb_thickness: Annotated[
        str | None, typer.Option("--gb-thickness", help="GB thickness (2nm).")
    ] = None,
    axis: Annotated[
        int | None, typer.Option("--axis", help="Transport axis (default: thickness axis).")
    ] = None,
    impedance: Annotated[
        bool, typer.Option("--impedance", help="Also the bulk and GB impedance arcs.")
    ] = False,
    permittivity: Annotated[
        float, typer.Option("--permittivity", help="Relative permittivity of the grains.")
    ] = 60.0,
    gb_capacitance: Annotated[
        float, typer.Option("--gb-capacitance", help="Specific GB capacitance, F/m^2.")
    ] = 0.25,
    seed: SeedOpt = 0,
    *,
    inputs: SSBInput,
    out: OutOpt = None,
    json: JsonOpt = False,
) -> None:
    """Grain boundaries: conductivity of the polycrystal against the brick layer (and EIS)."""
    from microbat.core.errors import InvalidInputError
    from microbat.core.units import parse_length
    from microbat.ssb.grains import (
        polycrystal_conductivity,
        polycrystal_impedance,
        voronoi_grains,
    )

    check_writable(out)
    if labels == (grain_size is not None):
        raise InvalidInputError(
            "give --grain-size for a Voronoi polycrystal in the electrolyte, or --labels for a "
            "file of grain labels (not both)"
        )
    d = parse_length(grain_size) if grain_size is not None else None
    if gb_resistance is None and gb_conductivity is None:
        gb_resistance = 1e-5
    thick = parse_length(gb_thickness) if gb_thickness is not None else None
    if labels:
        gs = _grain_labels(file, inputs.voxel_size, inputs.crop)
        ax = 0 if axis is None else axis
    else:
        ms = inputs.load(file)
        assert d is not None
        if d < 2 * max(ms.voxel_size):
            raise InvalidInputError(
                f"--grain-size {grain_size}: below two voxels ({2 * max(ms.voxel_size):.3g} m); "
                "grains cannot be resolved"
            )
        ax = ms.thickness_axis if axis is None else axis
        gs = voronoi_grains(ms, mean_grain_size=d, phase=phase, seed=seed)  # type: ignore[arg-type]
    r = polycrystal_conductivity(
        gs, sigma_bulk=sigma_bulk, gb_resistance=gb_resistance,
        gb_conductivity=gb_conductivity, gb_thickness=thick, axis=ax,
    )  # fmt: skip
    data: dict[str, Any] = r.to_dict()
    data["grains"] = {k: v for k, v in gs.to_dict().items() if k not in ("grains", "seeds")}
    eis = None
    if impedance:
        eis = polycrystal_impedance(
            gs, sigma_bulk=sigma_bulk, permittivity=permittivity,
            gb_resistance=r.gb_resistance_ohm_m2, gb_capacitance=gb_capacitance, axis=ax,
        )  # fmt: skip
        data["impedance"] = eis.to_dict()
    if out is not None:
        data["outputs"] = _write_maps(out, {"grains": gs.grains})

    def human() -> None:
        typer.echo(
            f"{gs.n_grains} grains, mean size {gs.mean_grain_size_m:.4g} m, boundary area "
            f"{gs.gb_area_per_volume:.4g} 1/m per electrolyte volume"
        )
        typer.echo(
            f"sigma_eff {r.effective_conductivity_S_per_m:.4g} S/m along axis {r.axis} "
            f"(without boundaries {r.no_gb_conductivity_S_per_m:.4g}; brick layer "
            f"{r.brick_layer_S_per_m:.4g}, on the network {r.brick_layer_network_S_per_m:.4g}; "
            f"boundaries {100 * r.gb_resistance_fraction:.1f} % of the resistance)"
        )
        if eis is not None:
            typer.echo(
                f"arcs: bulk {eis.resistance_bulk_ohm:.4g} Ohm at {eis.f_bulk_peak_Hz or 0:.4g} Hz "
                f"(1/2piRC {eis.f_bulk_expected_Hz:.4g}), GB {eis.resistance_gb_ohm:.4g} Ohm at "
                f"{eis.f_gb_peak_Hz or 0:.4g} Hz (1/2piRC {eis.f_gb_expected_Hz:.4g})"
            )

    emit(data, as_json=json, human=human)


def _grain_labels(file: Path, voxel_size: str | None, crop: str | None) -> Any:
    """A grain-label image (any integer file; 0 = no electrolyte) as a GrainStructure."""
    import numpy as np

    from microbat.cli.common import parse_crop
    from microbat.core.errors import InvalidInputError
    from microbat.core.units import parse_voxel_size
    from microbat.io.readers import read_volume
    from microbat.ssb.grains import grain_structure

    vol = read_volume(file)
    try:
        data = np.asarray(vol.data)
        if crop:
            data = data[parse_crop(crop)]
        h = parse_voxel_size(voxel_size) if voxel_size else vol.voxel_size
    finally:
        vol.close()
    if h is None:
        raise InvalidInputError(f"{file}: the file gives no voxel size; pass --voxel-size")
    if data.dtype.kind not in "iu":
        raise InvalidInputError(f"{file}: grain labels must be integers, got {data.dtype}")
    return grain_structure(data.astype(np.int32), voxel_size=h if len(h) == 3 else h * 3)


@guarded
@with_option_groups
def interface(
    file: OptFile = None,
    contact_fraction: Annotated[
        float | None,
        typer.Option(
            "--contact-fraction",
            help="Without FILE: the contact left at the lithium interface, in (0, 1] "
            "(default 0.8).",
        ),
    ] = None,
    shape: Annotated[
        str, typer.Option("--shape", help="Without FILE: slab voxels, thickness first.")
    ] = "30,96,96",
    void_size: Annotated[
        str, typer.Option("--void-size", help="Without FILE: size of the voids (2um).")
    ] = "2um",
    current_density: Annotated[
        str, typer.Option("--current-density", help="Applied current (A/m^2, or 0.5mA/cm2).")
    ] = "0.5mA/cm2",
    critical_current_density: Annotated[
        str,
        typer.Option("--critical-current-density", help="Local filament threshold (1mA/cm2)."),
    ] = "1mA/cm2",
    conductivity: Annotated[
        float, typer.Option("--conductivity", help="Electrolyte conductivity, S/m.")
    ] = 0.05,
    exchange_current: Annotated[
        str, typer.Option("--exchange-current", help="Exchange current density (A/m^2).")
    ] = "100",
    kinetics: Annotated[
        str, typer.Option("--kinetics", help="butler-volmer, linear or none.")
    ] = "butler-volmer",
    shear_modulus: Annotated[
        str, typer.Option("--shear-modulus", help="Electrolyte shear modulus (59.6GPa).")
    ] = "59.6GPa",
    lithium_shear_modulus: Annotated[
        str, typer.Option("--lithium-shear-modulus", help="Lithium shear modulus.")
    ] = "4.25GPa",
    phase: Annotated[
        str, typer.Option("--phase", help="The electrolyte phase (name or role).")
    ] = "solid_electrolyte",
    seed: SeedOpt = 0,
    *,
    inputs: SSBInput,
    out: OutOpt = None,
    json: JsonOpt = False,
) -> None:
    """Current focusing, hot spots and critical current at a lithium interface with voids."""
    from microbat.core.errors import InvalidInputError
    from microbat.core.units import parse_current_density, parse_length, parse_pressure
    from microbat.ssb.interface import _check_fraction, contact_loss_slab, interface_current

    check_writable(out)
    j = parse_current_density(current_density)
    jc = parse_current_density(critical_current_density)
    i0 = parse_current_density(exchange_current)
    g_se = parse_pressure(shear_modulus)
    g_li = parse_pressure(lithium_shear_modulus)
    if file is None:
        f = _check_fraction(0.8 if contact_fraction is None else contact_fraction)
        try:
            dims = tuple(int(v) for v in shape.split(","))
        except ValueError:
            raise InvalidInputError(f"--shape {shape!r}: three integers, e.g. 30,96,96") from None
        h = parse_length(inputs.voxel_size) if inputs.voxel_size else 0.25e-6
        ms = contact_loss_slab(
            dims, voxel_size=h, contact_fraction=f, void_size=parse_length(void_size),
            thickness_axis=inputs.thickness_axis or 0, seed=seed,
        )  # fmt: skip
        source = {"generated": ms.metadata["interface"]}
    else:
        if contact_fraction is not None:
            raise InvalidInputError(
                "--contact-fraction generates a slab; with FILE the image sets the contact"
            )
        ms = inputs.load(file)
        source = {"file": str(file)}
    r = interface_current(
        ms, current_density=j, conductivity=conductivity, exchange_current=i0,
        kinetics=kinetics, critical_current_density=jc,  # type: ignore[arg-type]
        shear_modulus_electrolyte=g_se, shear_modulus_lithium=g_li, phase=phase,
    )  # fmt: skip
    data: dict[str, Any] = r.to_dict()
    data["input"] = source
    if out is not None:
        data["outputs"] = _write_maps(
            out,
            {
                "current_density_A_per_m2": r.current_density_A_per_m2,
                "focusing": r.focusing,
                "hot_spots": r.hot_spots,
            },
        )

    def human() -> None:
        mn = r.monroe_newman
        typer.echo(
            f"contact {100 * r.contact_fraction:.1f} % at {r.applied_current_A_per_m2:.4g} A/m^2 "
            f"({r.kinetics} kinetics): focusing max {r.focusing_factor_max:.3f}, 99th percentile "
            f"{r.focusing_factor_p99:.3f} (uniform contact {r.focusing_factor_uniform:.3f})"
        )
        typer.echo(
            f"critical applied current {r.critical_current_A_per_m2:.4g} A/m^2 (local threshold "
            f"{r.critical_current_density_A_per_m2:.4g} A/m^2); hot spots "
            f"{100 * r.hot_spot_fraction:.2f} % of the area"
        )
        typer.echo(
            f"resistance {r.resistance_ohm_m2:.4g} Ohm m^2 = bulk {r.bulk_resistance_ohm_m2:.4g} + "
            f"kinetic {r.kinetic_resistance_ohm_m2:.4g} + constriction "
            f"{r.constriction_resistance_ohm_m2:.4g}"
        )
        typer.echo(
            f"Monroe-Newman G_SE/G_Li = {mn.ratio:.3g} "
            f"({'meets' if mn.satisfied else 'below'} the threshold {mn.threshold:g}; {mn.note})"
        )

    emit(data, as_json=json, human=human)


def register(app: typer.Typer) -> None:
    """Register this module's verbs on app."""
    app.command("tpb")(tpb)
    app.command("grains")(grains)
    app.command("interface")(interface)
