"""Every legend in microbat has an explicit ``loc``.

``loc="best"`` (matplotlib's default for an axes legend) searches for the emptiest
corner and warns "Creating legend with loc='best' can be slow with large amounts of
data" when that search takes long, i.e. on a busy machine; with warnings as errors
this failed the suite at random. A fixed location is also the same picture every
time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import microbat

SRC = Path(microbat.__file__).parent


def _legend_calls() -> list[tuple[str, int, ast.Call]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "legend"
            ):
                out.append((str(path.relative_to(SRC)), node.lineno, node))
    return out


def test_every_legend_has_an_explicit_loc():
    calls = _legend_calls()
    assert len(calls) >= 10  # the scan finds the report, QC and plot legends
    missing = []
    for where, line, call in calls:
        loc = next((k.value for k in call.keywords if k.arg == "loc"), None)
        if loc is None or (isinstance(loc, ast.Constant) and loc.value in ("best", 0)):
            missing.append(f"{where}:{line}")
    assert not missing, f"legend without a fixed loc= (never 'best'): {missing}"
