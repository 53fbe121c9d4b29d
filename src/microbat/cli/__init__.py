"""The ``microbat`` command line.

Each group of verbs lives in its own module and registers itself on :data:`app`.
Conventions every verb shares (so scripts can rely on them):

* ``--phases pore=0,cbd=1,active=2`` gives the phase table of a labelled file that
  carries none (plain TIFF, ``.npy``); verbs that produce labels use the same option
  to name and order their output labels.
* ``--voxel-size`` is in metres or carries a unit suffix (``0.4um``).
* ``--json`` prints one machine-readable JSON object on stdout; per-axis results are
  lists in array axis order (axis 0 first); ``inf`` is written as ``null``.
* A failed verb exits non-zero with a one-line message on stderr and no traceback
  (``--debug`` shows the traceback).
"""

from __future__ import annotations

import importlib

from microbat.cli.common import app, main

# Verb modules; each defines ``register(app)``. Order = order in ``--help``.
_VERB_MODULES = (
    "_io",
    "_synth",
    "_metrics",
    "_imaging",
    "_transport",
    "_randomwalk",
    "_calender",
    "_cell",
    "_simulate",
    "_eis",
    "_mechanics",
    "_age",
    "_gas",
    "_heat",
    "_plating",
    "_ssb",
    "_twin",
    "_design",
    "_demo",
)

for _name in _VERB_MODULES:
    importlib.import_module(f"microbat.cli.{_name}").register(app)

__all__ = ["app", "main"]
