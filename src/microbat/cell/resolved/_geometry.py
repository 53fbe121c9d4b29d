"""Voxel domains of the resolved half cell: electrode image + separator slab.

The microstructure is turned so its thickness axis is array axis 0 (current
collector at index 0) and ``n_sep`` layers of homogeneous separator are appended
at the far end. Separator layers have the voxel size of the image but stand for a
slab of physical thickness ``L_sep``: each layer is stretched by ``s`` along axis 0,
which the finite-volume core represents exactly by dividing the axis-0 coefficient
by ``s`` and multiplying the lateral coefficients and the storage by ``s`` (the
Li-metal reaction acts at the centre of the last layer, so
``s = L_sep / ((n_sep − 1/2) h_0)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from microbat.core.errors import InvalidInputError, PhaseError
from microbat.core.microstructure import Microstructure
from microbat.core.phases import PhaseRole

# material codes of the extended grid
INERT, PORE, CBD, ACTIVE, SEP = 0, 1, 2, 3, 4
SE = 5  # solid electrolyte (single-ion conductor; see ._solid)


@dataclass(frozen=True)
class Domain:
    """The extended grid and the unknowns living on it (internal)."""

    codes: np.ndarray  # extended grid of material codes (thickness axis first)
    voxel_size: tuple[float, float, float]
    n_electrode: int  # layers of the image along axis 0
    n_sep: int
    stretch: float
    axes: tuple[int, int, int]  # array axis of the image for each grid axis
    idx_e: np.ndarray  # flat indices of electrolyte unknowns
    idx_s: np.ndarray  # flat indices of solid-potential unknowns
    idx_a: np.ndarray  # flat indices of active (c_s) unknowns
    face_a: np.ndarray  # interface faces: position in idx_a of the active voxel
    face_s: np.ndarray  # ... position in idx_s of the same voxel
    face_e: np.ndarray  # ... position in idx_e of the electrolyte voxel
    face_area: np.ndarray  # reaction area of each face (m²)
    face_area_geometric: float  # total voxel-face area of the reaction faces (m²)
    li_e: np.ndarray  # positions in idx_e of the last layer (Li-metal boundary)
    li_area: float  # area of one boundary face (m²)
    cc_s: np.ndarray  # positions in idx_s of solid voxels in layer 0
    cc_area: float
    solid_electrolyte: bool = False  # composite cathode: SE voxels + SE separator slab

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape of the extended grid."""
        return tuple(self.codes.shape)  # type: ignore[return-value]

    @property
    def voxel_volume(self) -> float:
        """Volume of an image voxel (m³)."""
        return float(np.prod(self.voxel_size))

    def image_view(self, full: np.ndarray) -> np.ndarray:
        """A full-grid field cut to the image and turned back to the image's axes."""
        sub = full[: self.n_electrode]
        return np.transpose(sub, np.argsort(self.axes))


def _codes(ms: Microstructure) -> np.ndarray:
    lut = np.zeros(max(int(ms.labels.max(initial=0)), *ms.phases.labels) + 1, np.uint8)
    for p in ms.phases.values():
        role = p.role
        if role == PhaseRole.ELECTROLYTE:
            lut[p.label] = PORE
        elif role == PhaseRole.ACTIVE:
            lut[p.label] = ACTIVE
        elif role == PhaseRole.CARBON_BINDER:
            lut[p.label] = CBD
        elif role == PhaseRole.SEPARATOR:
            lut[p.label] = SEP
        elif role == PhaseRole.SOLID_ELECTROLYTE:
            lut[p.label] = SE
    return lut[ms.labels]


def build_domain(
    ms: Microstructure,
    *,
    separator_thickness: float,
    separator_layers: int | None,
    cbd_porosity: float,
) -> Domain:
    """Build the extended grid, its unknowns and the reaction faces."""
    from microbat.fv.connectivity import components
    from microbat.fv.grid import interface_faces

    if ms.ndim != 3:
        raise InvalidInputError(
            f"the resolved model needs a 3D microstructure, got {ms.ndim}D; stack 2D "
            "slices into a volume first"
        )
    t = ms.thickness_axis
    axes = (t, *(a for a in range(3) if a != t))
    codes_img = np.transpose(_codes(ms), axes)
    h = tuple(float(ms.voxel_size[a]) for a in axes)
    if not np.any(codes_img == ACTIVE):
        raise PhaseError(
            "the microstructure has no active-material voxels; the resolved model needs a "
            f"phase with role 'active' (phases: {', '.join(ms.phases.names)})"
        )
    solid_el = bool(np.any(codes_img == SE))
    if solid_el:
        # composite cathode: pores are voids, carbon-binder conducts electrons only
        codes_img = np.where(codes_img == PORE, INERT, codes_img).astype(np.uint8)
        ion_codes, react_codes = [SE, SEP], [SE]
    else:
        ion_codes, react_codes = [PORE, CBD, SEP], [PORE, CBD]
    if not np.any(np.isin(codes_img, ion_codes)):
        raise PhaseError("the microstructure has no electrolyte, carbon-binder or separator voxels")
    n_sep = separator_layers
    if n_sep is None:
        n_sep = int(np.clip(round(separator_thickness / h[0]), 2, 6))
    if n_sep < 1:
        raise InvalidInputError(f"separator_layers must be at least 1, got {n_sep}")
    stretch = separator_thickness / ((n_sep - 0.5) * h[0])
    n0 = codes_img.shape[0]
    codes = np.concatenate(
        [codes_img, np.full((n_sep, *codes_img.shape[1:]), SEP, np.uint8)], axis=0
    )
    elyte = np.isin(codes, ion_codes)
    solid = (codes == ACTIVE) | (codes == CBD)

    # reaction faces between active and electrolyte-filled voxels
    faces = interface_faces(codes, [ACTIVE], react_codes, h)
    # keep electrolyte clusters that reach the separator end, solid clusters that reach
    # the collector; clusters cut off from both carry no net current and are dropped
    lab_e, _ = components(elyte)
    keep_e = np.unique(lab_e[-1][elyte[-1]])
    elyte_kept = np.isin(lab_e, keep_e[keep_e > 0])
    lab_s, _ = components(solid)
    keep_s = np.unique(lab_s[0][solid[0]])
    solid_kept = np.isin(lab_s, keep_s[keep_s > 0])
    if not np.any(solid_kept & (codes == ACTIVE)):
        raise PhaseError(
            "no active material is connected to the current collector (index 0 of the "
            "thickness axis) through the solid phases; check the thickness axis and the "
            "phase roles"
        )
    flat_e = elyte_kept.reshape(-1)
    flat_s = solid_kept.reshape(-1)
    ok = flat_e[faces.side_b] & flat_s[faces.side_a]
    if not np.any(ok) and solid_el:
        raise PhaseError(
            "no active/solid-electrolyte contact connects the collector to the separator: "
            "the solid-electrolyte network is cut from the separator slab or touches no "
            "connected active material, so the composite has no capacity"
        )
    if not np.any(ok):
        raise PhaseError(
            "no active/electrolyte interface connects the collector to the separator; the "
            "pore phase must reach the separator side and touch connected active material"
        )
    idx_e = np.flatnonzero(flat_e)
    idx_s = np.flatnonzero(flat_s)
    active_kept = solid_kept & (codes == ACTIVE)
    idx_a = np.flatnonzero(active_kept.reshape(-1))
    pos = np.full(codes.size, -1, np.int64)
    pos[idx_e] = np.arange(idx_e.size)
    face_e = pos[faces.side_b[ok]]
    pos[:] = -1
    pos[idx_s] = np.arange(idx_s.size)
    face_s = pos[faces.side_a[ok]]
    cc_s = pos[np.flatnonzero(solid_kept[0].reshape(-1))]  # layer 0 = first block of flats
    pos[:] = -1
    pos[idx_a] = np.arange(idx_a.size)
    face_a = pos[faces.side_a[ok]]
    area = faces.area[ok].copy()
    geo = float(area.sum())
    area[codes.reshape(-1)[faces.side_b[ok]] == CBD] *= cbd_porosity
    last = np.zeros(codes.shape, bool)
    last[-1] = True
    pos[:] = -1
    pos[idx_e] = np.arange(idx_e.size)
    li_e = pos[np.flatnonzero(last.reshape(-1) & flat_e)]
    return Domain(
        codes=codes,
        voxel_size=h,  # type: ignore[arg-type]
        n_electrode=n0,
        n_sep=n_sep,
        stretch=stretch,
        axes=axes,  # type: ignore[arg-type]
        idx_e=idx_e,
        idx_s=idx_s,
        idx_a=idx_a,
        face_a=face_a,
        face_s=face_s,
        face_e=face_e,
        face_area=area,
        face_area_geometric=geo,
        li_e=li_e,
        li_area=h[1] * h[2],
        cc_s=cc_s,
        cc_area=h[1] * h[2],
        solid_electrolyte=solid_el,
    )
