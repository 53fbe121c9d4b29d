r"""The full cell around an aged electrode: electrode balance (eSOH) and degradation modes.

The aging loop follows one imaged electrode and the lithium it consumes. A cell's
capacity is not that electrode's capacity less the lithium lost: it is the charge
moved between the cell's voltage limits, set by three inventories (Mohtat et al.
2019, the "electrode state of health"):

* ``Q_n``, ``Q_p``: the capacities of the negative and positive electrode over their
  whole stoichiometry range (``F c_max ε_s L A``);
* ``Q_Li``: the cyclable lithium, ``Q_Li = Q_n x + Q_p y`` at any state.

At the upper cut-off ``U_p(y_100) − U_n(x_100) = V_max`` and at the lower one
``U_p(y_0) − U_n(x_0) = V_min``, both with the same ``Q_Li``; the capacity is
``Q = Q_n (x_100 − x_0) = Q_p (y_0 − y_100)``. Whichever electrode reaches the steep
end of its open-circuit potential first ends the discharge: lithium lost from a cell
whose negative electrode still holds lithium at the end of discharge (``x_0`` on the
flat part of its OCP) is first taken from that slack and costs little capacity.

Here the set's cell is scaled to the imaged electrode: its electrode's capacity is
that of the image (``F c_max V_active``, the whole stoichiometry range), the other
electrode's and the cyclable lithium keep the set's ratios to it (the set's N/P
ratio and initial lithium, PyBaMM's ``Q_Li_particles_init``). Along the aging curve

* ``Q_Li(N) = Q_Li,0 − F n_lost(N) − (lithium left in isolated particles)``;
* ``Q_e(N) = Q_e,0 (1 − V_isolated/V_active)`` for the imaged electrode ``e``;

and each point is solved by PyBaMM's ``ElectrodeSOHSolver`` with the set's OCPs and
cut-off voltages. A particle isolated after fracture (``isolate_fractured``) takes
with it the lithium it holds at the end of its delithiation half — the tensile half
in which its crack opened: ``x_0`` of the negative electrode (end of discharge),
``y_100`` of the positive (end of charge) — from the previous curve point.

Degradation modes in the sense of Birkl et al. (2017): ``LLI = 1 − Q_Li/Q_Li,0``,
``LAM_ne = 1 − Q_n/Q_n,0``, ``LAM_pe = 1 − Q_p/Q_p,0``.

The capacity is the equilibrium (C/∞) capacity between the cut-off voltages: the
loss of accessible capacity at a finite rate (overpotentials, solid diffusion,
the resistance growth) is not in it.

References
----------
.. [1] P. Mohtat, S. Lee, J. B. Siegel, A. G. Stefanopoulou, "Towards better
   estimability of electrode-specific state of health: decoding the cell expansion",
   J. Power Sources 427, 101 (2019), doi:10.1016/j.jpowsour.2019.03.104 (the eSOH
   equations of PyBaMM's ``ElectrodeSOHSolver``, which cites it).
.. [2] C. R. Birkl, M. R. Roberts, E. McTurk, P. G. Bruce, D. A. Howey, "Degradation
   diagnostics for lithium ion cells", J. Power Sources 341, 373 (2017),
   doi:10.1016/j.jpowsour.2016.12.011.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from microbat.core.errors import InvalidInputError

__all__ = ["CellBalance", "balance_curve", "cell_balance"]

_SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class CellBalance:
    """The set's full cell scaled to the imaged electrode, with its eSOH solver.

    Attributes
    ----------
    parameter_set : str
        Name of the cell parameter set.
    electrode : {"negative", "positive"}
        The electrode the image is.
    scale : float
        Image electrode capacity over the set's (the cell is the set times this).
    q_n_Ah, q_p_Ah, q_li_Ah : float
        Initial negative, positive electrode and cyclable lithium capacity (A h),
        at the image's scale.
    v_min, v_max : float
        The set's cut-off voltages (V).
    solver : Any
        PyBaMM's ``ElectrodeSOHSolver`` of the set.
    """

    parameter_set: str
    electrode: str
    scale: float
    q_n_Ah: float
    q_p_Ah: float
    q_li_Ah: float
    v_min: float
    v_max: float
    solver: Any

    def solve(self, q_n_Ah: float, q_p_Ah: float, q_li_Ah: float) -> dict[str, float]:
        """Capacity and stoichiometry limits of the cell with these inventories.

        Returns
        -------
        dict
            ``capacity_Ah``, ``x_0``, ``x_100``, ``y_0``, ``y_100``.

        Raises
        ------
        InvalidInputError
            The cut-off voltages cannot both be reached (e.g. too little lithium).
        """
        # PyBaMM works in the set's own units: solve the unscaled cell and scale back
        s = self.scale
        inputs = {
            "V_min": self.v_min,
            "V_max": self.v_max,
            "Q_n": q_n_Ah / s,
            "Q_p": q_p_Ah / s,
            "Q_Li": q_li_Ah / s,
        }
        try:
            sol = self.solver.solve(inputs)
        except Exception as exc:  # PyBaMM raises ValueError/SolverError alike
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InvalidInputError(
                f"no electrode balance of {self.parameter_set!r} with Q_n {q_n_Ah:.4g} A h, "
                f"Q_p {q_p_Ah:.4g} A h, cyclable lithium {q_li_Ah:.4g} A h between "
                f"{self.v_min:g} and {self.v_max:g} V ({first})"
            ) from None
        out = {k: float(np.asarray(sol[k]).item()) for k in ("x_0", "x_100", "y_0", "y_100")}
        out["capacity_Ah"] = float(np.asarray(sol["Q"]).item()) * s
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (without the solver)."""
        return {
            "parameter_set": self.parameter_set,
            "electrode": self.electrode,
            "scale": self.scale,
            "Q_n_Ah": self.q_n_Ah,
            "Q_p_Ah": self.q_p_Ah,
            "Q_Li_Ah": self.q_li_Ah,
            "V_min": self.v_min,
            "V_max": self.v_max,
        }


def cell_balance(cell: Any, *, electrode_capacity_Ah: float, electrode: str) -> CellBalance:
    """The set's cell scaled so that ``electrode`` has ``electrode_capacity_Ah``.

    Parameters
    ----------
    cell : str or CellParameters
        Parameter set (``"okane2022"``, ``"chen2020"``, a BPX file, ...).
    electrode_capacity_Ah : float
        Capacity of the imaged electrode over its whole stoichiometry range,
        ``F c_max V_active`` (A h).
    electrode : {"negative", "positive"}
        Which electrode of the set the image is.

    Returns
    -------
    CellBalance

    Raises
    ------
    InvalidInputError
        An unknown set, a half-cell set, or a set PyBaMM cannot balance.
    """
    from microbat.cell._pybamm import import_pybamm
    from microbat.cell.parameters import CellParameters, load_parameters

    if electrode not in ("negative", "positive"):
        raise InvalidInputError(f"electrode must be 'negative' or 'positive', got {electrode!r}")
    q_img = float(electrode_capacity_Ah)
    if not (math.isfinite(q_img) and q_img > 0):
        raise InvalidInputError(f"the electrode capacity must be positive, got {q_img!r}")
    params = load_parameters(cell) if not isinstance(cell, CellParameters) else cell
    if params.half_cell:
        raise InvalidInputError(
            f"the cell balance needs a full-cell parameter set, {params.name!r} is a half cell"
        )
    pybamm = import_pybamm()
    pv = params.to_pybamm()
    p = pybamm.LithiumIonParameters()
    try:
        q_n = float(pv.evaluate(p.n.Q_init))
        q_p = float(pv.evaluate(p.p.Q_init))
        q_li = float(pv.evaluate(p.Q_Li_particles_init))
        v_min = float(pv["Lower voltage cut-off [V]"])
        v_max = float(pv["Upper voltage cut-off [V]"])
        solver = pybamm.lithium_ion.ElectrodeSOHSolver(pv, param=p)
    except Exception as exc:  # missing keys, bad functions: PyBaMM's own exceptions
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidInputError(
            f"parameter set {params.name!r} cannot be balanced ({type(exc).__name__}: {first})"
        ) from None
    scale = q_img / (q_n if electrode == "negative" else q_p)
    return CellBalance(
        parameter_set=params.name,
        electrode=electrode,
        scale=scale,
        q_n_Ah=q_n * scale,
        q_p_Ah=q_p * scale,
        q_li_Ah=q_li * scale,
        v_min=v_min,
        v_max=v_max,
        solver=solver,
    )


def balance_curve(
    bal: CellBalance, lost_Ah: np.ndarray, isolated_fraction: np.ndarray
) -> dict[str, Any]:
    """Cell capacity and degradation modes along an aging curve.

    Parameters
    ----------
    bal : CellBalance
        The cell (:func:`cell_balance`).
    lost_Ah : ndarray (k,)
        Cumulative lithium lost to side reactions, as charge (``F n_lost / 3600``).
    isolated_fraction : ndarray (k,)
        Cumulative share of the imaged electrode's active volume cut off.

    Returns
    -------
    dict
        ``capacity_Ah`` (k,), ``retention`` (k,) over the first point, ``LLI``,
        ``LAM_ne``, ``LAM_pe`` (k,) fractions, ``x_0``, ``x_100``, ``y_0``, ``y_100``
        (k,), ``isolated_lithium_Ah`` (k,), ``notes``. A point with no balance (the
        inventory too low to reach both cut-offs) has capacity 0 and NaN
        stoichiometries, with a note.
    """
    lost = np.asarray(lost_Ah, float)
    iso = np.asarray(isolated_fraction, float)
    k = lost.size
    q_e0 = bal.q_n_Ah if bal.electrode == "negative" else bal.q_p_Ah
    keys = ("capacity_Ah", "x_0", "x_100", "y_0", "y_100")
    res = {key: np.full(k, np.nan) for key in keys}
    q_li = np.zeros(k)
    q_n = np.full(k, bal.q_n_Ah)
    q_p = np.full(k, bal.q_p_Ah)
    iso_li = np.zeros(k)
    notes: list[str] = []
    held = 0.0  # lithium carried off by isolated particles so far (A h)
    last: dict[str, float] | None = None
    prev_iso = 0.0
    for i in range(k):
        d_iso = max(0.0, float(iso[i]) - prev_iso)
        if d_iso > 0:
            # stoichiometry of the imaged electrode at the end of its delithiation half
            if last is None:
                last = bal.solve(bal.q_n_Ah, bal.q_p_Ah, bal.q_li_Ah)
            sto = last["x_0"] if bal.electrode == "negative" else last["y_100"]
            held += d_iso * q_e0 * sto
        prev_iso = max(prev_iso, float(iso[i]))
        iso_li[i] = held
        q_e = q_e0 * (1.0 - prev_iso)
        if bal.electrode == "negative":
            q_n[i] = q_e
        else:
            q_p[i] = q_e
        q_li[i] = bal.q_li_Ah - float(lost[i]) - held
        try:
            sol = bal.solve(q_n[i], q_p[i], q_li[i])
        except InvalidInputError as exc:
            res["capacity_Ah"][i] = 0.0
            if not notes:
                notes.append(f"from cycle point {i} on: {exc}; capacity set to 0")
            continue
        last = sol
        for key in keys:
            res[key][i] = sol[key]
    q0 = res["capacity_Ah"][0] if k else math.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        retention = res["capacity_Ah"] / q0
    return {
        **res,
        "retention": retention,
        "LLI": 1.0 - q_li / bal.q_li_Ah,
        "LAM_ne": 1.0 - q_n / bal.q_n_Ah,
        "LAM_pe": 1.0 - q_p / bal.q_p_Ah,
        "isolated_lithium_Ah": iso_li,
        "notes": notes,
    }
