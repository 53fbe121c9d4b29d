"""A package attribute named like a function is that function, in every import order.

``microbat.imaging.segment`` / ``.reconstruct``, ``microbat.transport.tortuosity`` /
``.conductivity`` / ``.calender`` and ``microbat.cell.eis.decompose`` are functions
exported lazily from the modules ``segmentation``, ``reconstruction``, ``diffusion``,
``conduction``, ``calendering`` and ``decomposition``; no submodule shares their
names, so importing a module can never shadow the function on the package. The last
test checks every module of the package for such a clash.
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
    ("microbat.transport", "calender", "calendering"),
    ("microbat.cell.eis", "decompose", "decomposition"),
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
        "microbat.transport.diffusion, microbat.transport.conduction, "
        "microbat.transport.calendering, microbat.cell.eis.decomposition"
    ),
    "from-imports first": (
        "from microbat.imaging.segmentation import segment\n"
        "from microbat.imaging.reconstruction import reconstruct\n"
        "from microbat.transport.diffusion import tortuosity\n"
        "from microbat.transport.conduction import conductivity\n"
        "from microbat.transport.calendering import calender\n"
        "from microbat.cell.eis.decomposition import decompose"
    ),
    "names from packages first": (
        "from microbat.imaging import segment, reconstruct\n"
        "from microbat.transport import tortuosity, conductivity, calender\n"
        "from microbat.cell.eis import decompose"
    ),
    "sibling modules first": (
        "import microbat.imaging.metrics, microbat.imaging.connectivity, "
        "microbat.transport.tensor, microbat.transport.bruggeman, microbat.cell.eis.resolved"
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


def test_no_module_exports_its_own_name():
    """A module ``pkg.x`` whose ``__all__`` holds ``x`` would shadow the function ``pkg.x``."""
    import pkgutil

    import microbat

    clashes = []
    for info in pkgutil.walk_packages(microbat.__path__, "microbat."):
        mod = importlib.import_module(info.name)
        short = info.name.rpartition(".")[2]
        if short in getattr(mod, "__all__", ()):
            clashes.append(info.name)
    assert clashes == []
