"""Shared fixtures of the cell tests: parameter sets loaded once per session.

The PyBaMM models themselves are cached by ``microbat.cell.bridge.get_simulator``,
so every test that uses the Chen2020 DFN shares one built model.
"""

from __future__ import annotations

import pytest

pytest.importorskip("pybamm")


@pytest.fixture(scope="session")
def chen():
    from microbat.cell import CellParameters

    return CellParameters.from_name("chen2020")


@pytest.fixture(scope="session")
def marquis():
    from microbat.cell import CellParameters

    return CellParameters.from_name("marquis2019")


@pytest.fixture(scope="session")
def chen_rates(chen):
    """The six-rate Chen2020 DFN table with the breakdown (published set)."""
    from microbat.cell import rate_capability

    return rate_capability(chen)
