"""Import PyBaMM quietly and only when needed.

PyBaMM takes about 1.5 s to import and, on first use in an interactive terminal,
asks whether to enable telemetry (waiting up to 10 s for an answer). A library
must not prompt, so telemetry is switched off through PyBaMM's documented
environment variable unless the user has set that variable themselves.
"""

from __future__ import annotations

import os
from typing import Any

from microbat.core.errors import require

__all__ = ["PYBAMM_RANGE", "import_pybamm"]

#: PyBaMM versions this module is tested with (see ``pyproject.toml``).
PYBAMM_RANGE = ">=26.10,<27"


def import_pybamm() -> Any:
    """Return the ``pybamm`` module, importing it on first call.

    Returns
    -------
    module
        The imported ``pybamm`` package.

    Raises
    ------
    MissingDependencyError
        When PyBaMM is not installed (the message gives the install command).
    """
    os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")
    return require("pybamm", package=f"'pybamm{PYBAMM_RANGE}'")
