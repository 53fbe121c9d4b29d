import math

import numpy as np
import pytest

from microbat import Microstructure
from microbat.core.errors import InvalidInputError
from microbat.transport.bruggeman import (
    bruggeman_deff,
    bruggeman_error,
    bruggeman_tau,
    maxwell_conductivity,
)
from microbat.transport.diffusion import PercolationWarning, tortuosity
from microbat.transport.tensor import tortuosity_tensor


def test_bruggeman_formulas():
    assert bruggeman_tau(0.25) == pytest.approx(2.0)
    assert bruggeman_tau(0.25, alpha=2.0) == pytest.approx(4.0)
    assert bruggeman_deff(0.36) == pytest.approx(0.216)
    eps = np.array([0.2, 0.5, 1.0])
    # tau = eps / (Deff / D0) for any alpha
    assert np.allclose(bruggeman_tau(eps, 1.7), eps / bruggeman_deff(eps, 1.7))
    assert bruggeman_tau(1.0) == 1.0
    for bad in (0.0, -0.1, 1.5, math.nan):
        with pytest.raises(InvalidInputError, match="porosity"):
            bruggeman_tau(bad)


def test_maxwell_limits():
    assert maxwell_conductivity(0.0) == 1.0
    assert maxwell_conductivity(0.2) == pytest.approx(2 * 0.8 / 2.2)
    assert maxwell_conductivity(0.3, ratio=1.0) == pytest.approx(1.0)
    # conducting spheres raise the conductivity
    assert maxwell_conductivity(0.1, ratio=10.0) > 1.0
    with pytest.raises(InvalidInputError):
        maxwell_conductivity(1.0)


def test_error_against_a_computed_tortuosity(channels):
    with pytest.warns(PercolationWarning):
        r = tortuosity(channels, phase="pore", axis="all")
    cmp = bruggeman_error(r)
    eps = channels.fraction("pore")
    assert cmp.porosity == pytest.approx(eps)
    assert cmp.tau_bruggeman == pytest.approx(eps**-0.5)
    assert cmp.relative_error[0] == pytest.approx(eps**-0.5 - 1)  # truth: tau = 1
    assert cmp.relative_error[1:] == (-1.0, -1.0)
    assert cmp.alpha_fit[0] == pytest.approx(1.0)  # tau = 1 means alpha = 1
    assert "NaN" not in cmp.to_json()


def test_error_against_a_tensor_and_partial_axes():
    lab = np.zeros((10, 10, 10), np.uint8)
    lab[:, :, 5:] = 1
    ms = Microstructure(lab, voxel_size=1e-6, phases="pore=0,cbd=1")
    t = tortuosity_tensor(ms, phase="pore", relative_diffusivity={"cbd": 0.25})
    cmp = bruggeman_error(t, alpha=1.5)
    assert cmp.tau_computed == pytest.approx(tuple(np.diag(t.tau)))
    r = tortuosity(ms, phase="pore", axis=0, relative_diffusivity={"cbd": 0.25})
    part = bruggeman_error(r)
    assert part.relative_error[1] is None and part.alpha_fit[2] is None
    with pytest.raises(InvalidInputError, match="TortuosityResult"):
        bruggeman_error(object())
