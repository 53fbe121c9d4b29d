"""Package-level guarantees: a light import with no side effects, lazy subpackages."""

import json
import subprocess
import sys

HEAVY = (
    "numba",
    "dask",
    "matplotlib",
    "pybamm",
    "torch",
    "pyamg",
    "skimage",
    "sklearn",
    "h5py",
    "zarr",
    "tifffile",
    "scipy",
)


def test_import_is_light_and_side_effect_free():
    code = (
        "import sys, logging, json, numpy as np; before = np.geterr();"
        "import microbat;"
        "print(json.dumps({'mods': sorted(sys.modules), 'err': np.geterr() == before,"
        " 'root': len(logging.getLogger().handlers)}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    loaded = {m.split(".")[0] for m in data["mods"]}
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    assert data["err"] is True
    assert data["root"] == 0
    assert out.stderr == ""


def test_lazy_subpackages():
    import microbat

    assert microbat.core.Microstructure is microbat.Microstructure
    assert "imaging" in dir(microbat)
