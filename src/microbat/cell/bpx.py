"""BPX (Battery Parameter eXchange) import and export.

Import goes through PyBaMM's reader (``ParameterValues.create_from_bpx_obj``), so a
BPX file means in microbat what it means in PyBaMM. Warnings the reader emits
(defaults it applied) are kept as notes of the returned parameters.

Export writes a DFN BPX 1.0 document from :class:`~microbat.cell.CellParameters`:

* scalars map one to one; the electrode conductivity is exported as the effective
  value ``(1 − ε)^b_s σ`` and the transport efficiency as ``ε^b`` (BPX stores
  effective quantities);
* the surface area per volume is ``3 ε_act / R`` (so a reader recovers the
  active-material fraction) and any exchange-current scale goes into the reaction
  rate constant;
* functions (OCPs, diffusivities, electrolyte conductivity) are tabulated at the
  reference temperature (stoichiometry grid of 401 points plus the stoichiometry
  limits; electrolyte concentration 0 .. 6 c_e0 in 121 points), with activation
  energies 0: the export is exact at the reference temperature only;
* the exchange-current constant is ``k = j0(c_e0, c_max/2) / (F/2)`` for BPX's
  ``j0 = F k √(c_e/c_e0 · x (1 − x))``; when the set's function does not have that
  form (checked at a second point) a note says so.

References
----------
.. [1] The BPX standard, https://bpxstandard.com (schema implemented by the ``bpx``
   Python package, About:Energy and the Faraday Institution).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from microbat.cell._bpx_io import write_bpx
from microbat.cell.parameters import CellParameters

__all__ = ["read_bpx", "write_bpx"]


def read_bpx(source: str | Path | dict[str, Any]) -> CellParameters:
    """Read a BPX parameter set.

    Parameters
    ----------
    source : path, JSON text or dict
        A ``.json`` BPX file, its text, or the parsed dictionary.

    Returns
    -------
    CellParameters
        Named after the BPX title; PyBaMM's import notes kept in ``notes``.

    Raises
    ------
    FileFormatError
        Missing file, invalid JSON, or a document that is not valid BPX.
    """
    return CellParameters.from_bpx(source)
