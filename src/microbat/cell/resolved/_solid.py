r"""Single-ion solid electrolyte in the resolved half cell (composite cathodes).

A composite cathode (roles ``active``, ``solid_electrolyte``, optional
``carbon_binder``, voids) is resolved with the same unknowns and residual as the
liquid cell; :func:`~microbat.cell.resolved._geometry.build_domain` gives it its own
sets (ion-conducting voxels = solid electrolyte + the separator slab; reaction faces
= active | solid electrolyte; carbon-binder electronic only; voids insulating) and
this module turns the liquid equations into those of a single-ion conductor:

* t₊ = 1 (only Li⁺ moves; the anions are the fixed lattice), so the salt source
  ``(1 − t₊) i / F`` and the diffusion-potential factor ``β ∝ (1 − t₊)`` vanish and
  the ionic current is ``−σ_SE ∇φ_e`` (Ohm's law of a single-ion conductor, e.g.
  J. Maier, *Physical Chemistry of Ionic Materials*, Wiley 2004; Bielefeld, Weber
  and Janek, J. Phys. Chem. C 123, 1626 (2019), doi:10.1021/acs.jpcc.8b11043, treat
  the SE network of a composite cathode as a pure ohmic ion conductor). Not Danilov,
  Niessen and Notten, J. Electrochem. Soc. 158, A215 (2011), doi:10.1149/1.3521414,
  cited here before: they model their Li₃PO₄ film as a *binary* electrolyte
  (dissociation into Li⁺ and a mobile negative charge, two-carrier Nernst–Planck),
  which builds a concentration gradient — the opposite assumption;
* the concentration unknown is *pinned*: with no source it stays ``c_e0`` to
  round-off (the rows are kept, with a nominal diffusivity, so the liquid solver
  and its conservation checks run unchanged; the lithium balance then reads
  ``ΔN_s = I_Li Δt / F``);
* the conductivity is the constant ``σ_SE`` of the options, with ε = 1 and no
  Bruggeman factor in every solid-electrolyte voxel (the separator slab is dense
  solid electrolyte, stretched as in the liquid case);
* exchange current of the active | solid-electrolyte faces: the set's
  ``j0(c_e0, c_s, c_s,max, T)`` at the pinned ``c_e0`` (× ``se_exchange_current_scale``)
  — an *assumption*: a solid|solid charge-transfer rate is rarely measured, and the
  continuum models of composite cathodes (Bielefeld et al. 2019, above) use
  Butler–Volmer kinetics with a liquid-like rate constant in the same way.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from microbat.cell.resolved._geometry import SEP
from microbat.core.errors import InvalidInputError

if TYPE_CHECKING:
    from microbat.cell.resolved._model import HalfCell, ResolvedOptions
    from microbat.cell.resolved._params import ResolvedParameters

# nominal diffusivity of the pinned concentration rows (m²/s): no source drives them,
# so any positive value leaves c_e = c_e0; it only keeps the block regular
_PIN_DIFFUSIVITY = 1e-10


def single_ion_parameters(par: ResolvedParameters, opt: ResolvedOptions) -> ResolvedParameters:
    """The parameter view of a single-ion solid electrolyte (t₊ = 1, constant σ_SE)."""
    if opt.plating != "none":
        raise InvalidInputError(
            f"plating={opt.plating!r} is modelled on liquid-electrolyte faces (O'Kane et "
            "al.); the image holds a solid electrolyte: use plating='none'"
        )
    sigma = float(opt.se_conductivity_S_per_m)
    c0 = float(par.c_e0)
    scale = float(opt.se_exchange_current_scale)
    j0_liquid = par.exchange_current

    def kappa(ce: Any, T: Any) -> np.ndarray:
        return np.full(np.shape(ce), sigma)

    def diffusivity(ce: Any, T: Any) -> np.ndarray:
        return np.full(np.shape(ce), _PIN_DIFFUSIVITY)

    def j0(ce: Any, cs: Any, cmax: Any, T: Any) -> np.ndarray:
        return scale * j0_liquid(np.full(np.shape(ce), c0), cs, cmax, T)

    return replace(
        par,
        electrolyte_conductivity=kappa,
        electrolyte_diffusivity=diffusivity,
        exchange_current=j0,
        transference_number=1.0,
        thermodynamic_factor=1.0,
    )


def configure_single_ion(cell: HalfCell) -> None:
    """Storage and transport factors of solid-electrolyte voxels: ε = 1, no Bruggeman."""
    dom = cell.dom
    sep = dom.codes.reshape(-1)[dom.idx_e] == SEP
    s = dom.stretch
    k = cell.opt.electrolyte_transport_scale
    cell.eps_e = np.where(sep, s, 1.0)
    cell.store_e = cell.eps_e * dom.voxel_volume
    cell.trans0 = np.where(sep, 1.0 / s, 1.0) * k
    cell.trans_lat = np.where(sep, s, 1.0) * k
