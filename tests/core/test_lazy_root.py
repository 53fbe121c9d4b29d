"""`import microbat` loads no NumPy; the names it re-exports load on first access."""

from __future__ import annotations

import json
import subprocess
import sys


def test_import_microbat_loads_no_numpy_until_a_core_object_is_used():
    code = (
        "import sys, json; import microbat; a = 'numpy' in sys.modules;"
        "from microbat import MicrobatError, PhaseError;"
        "b = 'numpy' in sys.modules; ms = microbat.Microstructure;"
        "from microbat.core import Microstructure, PhaseTable, parse_length;"
        "print(json.dumps([a, b, 'numpy' in sys.modules, ms is Microstructure,"
        " PhaseTable is microbat.PhaseTable, parse_length('2um')]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [False, False, True, True, True, 2e-6]


def test_the_command_line_loads_no_numpy_for_help():
    code = "import sys; import microbat.cli; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
