"""Per-voxel map of the dissipation behind the voltage-loss breakdown.

:meth:`HalfCell.diagnose` sums the dissipation of a step over faces and voxels; this
module keeps the same terms voxel by voxel. Every term is computed with the same
discrete operators as the global breakdown (κ, D_e frozen at the start of the step),
so summing a map over all voxels of the extended grid gives the global loss × current
to round-off:

* a face term ``g (Δu)(Δv)`` of a Laplacian (electrolyte ohmic and concentration
  terms, solid ohmic term) is split half and half between the two voxels of the face;
* the collector term ``G (φ_s − V)²`` goes to the first-layer solid voxel;
* the kinetic term ``A_f i_f η_f`` of an interface face goes to its active voxel;
* the solid-diffusion term ``−A_f i_f (U(θ̄) − U_f)`` (lithiation current × the OCP
  drop from the electrode-mean stoichiometry to the face's surface) goes to the
  active voxel of the face;
* the lithium-metal kinetics act on the last separator layer.

Maps are returned on the image grid (W/m³ of image voxel); what lies outside the image
(the separator slab and the counter electrode) is returned as totals in W.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from microbat.cell.resolved._model import HalfCell, State

#: Names of the per-voxel loss fields (W/m³) and the breakdown component of each.
LOSS_FIELDS: dict[str, str] = {
    "loss_ohmic_electrolyte": "ohmic_electrolyte",
    "loss_concentration_electrolyte": "concentration_electrolyte",
    "loss_ohmic_solid": "ohmic_solid",
    "loss_reaction": "reaction",
    "loss_solid_diffusion": "solid_diffusion",
}


def _face_split(L, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``½ Σ_q g_pq (u_p − u_q)(v_p − v_q)`` for every unknown ``p`` of Laplacian ``L``."""
    coo = L.tocoo()
    off = coo.row != coo.col
    r, c, g = coo.row[off], coo.col[off], -coo.data[off]
    val = g * (u[r] - u[c]) * (v[r] - v[c])
    return 0.5 * np.bincount(r, val, u.size)


def loss_density(
    cell: HalfCell, old: State, new: State, dtype: type = np.float32
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Per-voxel dissipation of the step ``old → new``.

    Parameters
    ----------
    cell : HalfCell
        The discretised half cell.
    old, new : State
        The states at the start and the end of the accepted step.
    dtype : numpy dtype, default float32
        Of the returned maps (float64 keeps the sums exact to round-off).

    Returns
    -------
    maps : dict of str to ndarray
        :data:`LOSS_FIELDS` and ``loss_total`` on the image grid, W/m³ (NaN where a
        voxel carries no unknown at all).
    outside_W : dict of str to float
        The part of each breakdown component outside the image (separator slab,
        counter electrode), in W; ``reaction_counter`` is the lithium-metal kinetics.
    """
    d = cell.dom
    n_full = int(np.prod(d.shape))
    n_img = d.n_electrode * d.shape[1] * d.shape[2]
    L_kappa, _, _ = cell.linear_blocks(old, new.t - old.t)
    par = cell.par

    lnc = np.log(new.ce)
    w = new.pe - cell.beta * lnc
    per_e_ohm = _face_split(L_kappa, w, w)
    per_e_conc = _face_split(L_kappa, w, cell.beta * lnc)
    per_s = _face_split(cell.L_sigma, new.ps, new.ps)
    per_s[d.cc_s] += cell.G_cc * (new.ps[d.cc_s] - new.V) ** 2
    cur, eta, U = cell.reaction(new.ce, new.pe, new.ps, new.cs, derivatives=False)
    per_kin = np.bincount(d.face_a, cur * eta, cell.nA)
    ocv = float(par.ocp(np.array([np.mean(new.cs) / par.c_max]))[0])
    per_sd = np.bincount(d.face_a, -cur * (ocv - U), cell.nA)
    if cell.plating:  # plating: kinetic loss at η_pl, and its share at U_Li = 0
        cur_pl, eta_pl = cell.plating_current(new.ce, new.pe, new.ps, old.pl, derivatives=False)
        per_kin += np.bincount(d.face_a, cur_pl * eta_pl, cell.nA)
        per_sd += np.bincount(d.face_a, -cur_pl * ocv, cell.nA)
    li, li_eta = cell.li_current(new.pe, derivatives=False)

    def full(idx: np.ndarray, vals: np.ndarray) -> np.ndarray:
        out = np.zeros(n_full)
        np.add.at(out, idx, vals)
        return out

    grids = {
        "loss_ohmic_electrolyte": full(d.idx_e, per_e_ohm),
        "loss_concentration_electrolyte": full(d.idx_e, per_e_conc),
        "loss_ohmic_solid": full(d.idx_s, per_s),
        "loss_reaction": full(d.idx_a, per_kin),
        "loss_solid_diffusion": full(d.idx_a, per_sd),
    }
    has_unknown = np.zeros(n_full, bool)
    for idx in (d.idx_e, d.idx_s):
        has_unknown[idx] = True
    outside = {LOSS_FIELDS[k]: float(np.sum(g[n_img:])) for k, g in grids.items()}
    outside["reaction_counter"] = float(np.sum(li * li_eta))
    outside["reaction"] += outside["reaction_counter"]
    vol = d.voxel_volume
    maps: dict[str, np.ndarray] = {}
    total = np.zeros(n_full)
    for name, g in grids.items():
        total += g
        maps[name] = _image(d, g, has_unknown, vol, dtype)
    maps["loss_total"] = _image(d, total, has_unknown, vol, dtype)
    return maps, outside


def _image(d, g: np.ndarray, mask: np.ndarray, vol: float, dtype: type) -> np.ndarray:
    """Extended-grid power per voxel → image-grid density (W/m³), NaN without unknowns."""
    out = np.where(mask, g / vol, np.nan).astype(dtype).reshape(d.shape)
    return np.ascontiguousarray(d.image_view(out))
