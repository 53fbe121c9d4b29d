"""A package attribute named like a function is that function, in every import order.

``microbat.imaging.segment`` / ``.reconstruct`` and ``microbat.transport.tortuosity`` /
``.conductivity`` are functions exported lazily from the modules ``segmentation``,
``reconstruction``, ``diffusion`` and ``conduction``; no submodule shares their names,
so importing a module can never shadow the function on the package.
"""

import importlib
import json
import subprocess
import sys
import types

import pytest

# (package, function name, module defining it)
NAMES = [
    ("microbat.imaging", "segment", "segmentation"),
    ("microbat.imaging", "reconstruct", "reconstruction"),
    ("microbat.transport", "tortuosity", "diffusion"),
    ("microbat.transport", "conductivity", "conduction"),
]

_CHECK = """
import importlib, json, types
out = []
for pkg, name, mod in {names!r}:
    p = importlib.import_module(pkg)
    f = getattr(p, name)
    m = importlib.import_module(pkg + "." + mod)
    out.append([
        callable(f) and not isinstance(f, types.ModuleType),
        f is getattr(m, name),
        getattr(f, "__module__", None) == m.__name__,
    ])
print(json.dumps(out))
"""

# import statements run before the check, each in a fresh interpreter
ORDERS = {
    "package only": "import microbat",
    "modules first": (
        "import microbat.imaging.segmentation, microbat.imaging.reconstruction, "
        "microbat.transport.diffusion, microbat.transport.conduction"
    ),
    "from-imports first": (
        "from microbat.imaging.segmentation import segment\n"
        "from microbat.imaging.reconstruction import reconstruct\n"
        "from microbat.transport.diffusion import tortuosity\n"
        "from microbat.transport.conduction import conductivity"
    ),
    "names from packages first": (
        "from microbat.imaging import segment, reconstruct\n"
        "from microbat.transport import tortuosity, conductivity"
    ),
    "sibling modules first": (
        "import microbat.imaging.metrics, microbat.imaging.connectivity, "
        "microbat.transport.tensor, microbat.transport.calender, microbat.transport.bruggeman"
    ),
}


@pytest.mark.parametrize("order", sorted(ORDERS))
def test_function_not_module_in_any_import_order(order):
    code = ORDERS[order] + "\n" + _CHECK.format(names=NAMES)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [[True, True, True]] * len(NAMES)


@pytest.mark.parametrize(("pkg", "name", "mod"), NAMES)
def test_function_in_this_process(pkg, name, mod):
    m = importlib.import_module(f"{pkg}.{mod}")  # the module imported: still the function
    p = importlib.import_module(pkg)
    f = getattr(p, name)
    assert callable(f) and not isinstance(f, types.ModuleType)
    assert f is getattr(m, name)
    assert name in dir(p) and mod in dir(p)


@pytest.mark.parametrize(("pkg", "name", "mod"), NAMES)
def test_old_module_paths_are_gone(pkg, name, mod):
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(f"{pkg}.{name}")
