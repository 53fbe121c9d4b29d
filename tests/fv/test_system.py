import numpy as np
import pytest
import scipy.sparse.linalg as spla
from hypothesis import given, settings
from hypothesis import strategies as st

from microbat.core.errors import InvalidInputError
from microbat.fv.grid import coefficient_classes
from microbat.fv.solvers import solve
from microbat.fv.system import Dirichlet, Neumann, build_system, structured_to_csr

H = (1e-6, 1e-6, 1e-6)


def _bar(n, at):
    k = np.ones((n, 1, 1))
    return build_system(k, H, dirichlet=[Dirichlet(0, 0, 1.0, at=at), Dirichlet(0, -1, 0.0, at=at)])


@pytest.mark.parametrize(("at", "length"), [("face", 10), ("layer", 9)])
def test_uniform_bar_flux(at, length):
    s = _bar(10, at)
    x = solve(s, method="direct").x
    flux = s.boundary_flux(x, 0)
    # k A / L with A = 1e-12 m², L in voxels of 1e-6 m
    assert flux == pytest.approx(1e-12 / (length * 1e-6), rel=1e-12)
    assert -s.boundary_flux(x, 1) == pytest.approx(flux, rel=1e-12)
    assert np.allclose(s.layer_fluxes(x, 0)[1:-1], flux, rtol=1e-12)
    field = s.field(x)
    expected = 1 - (np.arange(10) + 0.5) / 10 if at == "face" else 1 - np.arange(10) / 9
    assert np.allclose(field[:, 0, 0], expected, atol=1e-12)


def test_neumann_flux_and_source_balance():
    n = 8
    k = np.ones((n, 2, 2))
    inflow = 3.0  # per unit area
    source = np.zeros((n, 2, 2))
    source[4, 1, 1] = 5e-12
    s = build_system(
        k,
        H,
        dirichlet=[Dirichlet(0, -1, 0.0)],
        neumann=[Neumann(0, 0, inflow)],
        source=source,
    )
    x = solve(s, method="direct").x
    # everything that enters (Neumann + source) leaves through the Dirichlet face
    out = -s.boundary_flux(x, 0)
    assert out == pytest.approx(inflow * 4e-12 + 5e-12, rel=1e-10)


def test_periodic_jump_gives_uniform_gradient():
    shape = (5, 4, 3)  # odd axis 0 exercises the seam colouring
    k = np.full(shape, 2.0)
    L = shape[0] * 1e-6
    s = build_system(k, H, periodic=(True, True, True), jump=(-L, 0.0, 0.0))
    for method in ("direct", "mg"):
        x = solve(s, method=method, rtol=1e-12).x
        planes = s.layer_fluxes(x, 0)
        # D |∇u| A = 2 * 1 * 12e-12
        assert np.allclose(planes, 2.0 * 12e-12, rtol=1e-9)
        assert np.allclose(s.layer_fluxes(x, 1), 0.0, atol=1e-20)


def test_matrix_free_equals_sparse(spheres):
    pore = spheres((12, 10, 9), 0.5, 2.0, seed=3)
    lab = pore.astype(np.uint8)
    lab[:, :, :3][lab[:, :, :3] == 0] = 2  # a third phase
    coded = coefficient_classes(lab, {1: 1.0, 2: 0.1})
    h = (1e-6, 2e-6, 1.5e-6)
    bcs = [Dirichlet(2, 0, 1.0, at="layer"), Dirichlet(2, -1, 0.0, at="layer")]
    s_coded = build_system(coded, h, dirichlet=bcs, periodic=(True, False, False))
    s_float = build_system(coded.expand(), h, dirichlet=bcs, periodic=(True, False, False))
    rng = np.random.default_rng(0)
    x = rng.standard_normal(s_coded.shape) * s_coded.active
    y1 = s_coded.matvec(x)
    y2 = s_float.matvec(x)
    A, b, index = s_coded.to_sparse()
    y3 = s_coded.scatter(A @ x.reshape(-1)[index], index)
    assert np.allclose(y1, y2, rtol=1e-12, atol=1e-20)
    assert np.allclose(y1, y3, rtol=1e-12, atol=1e-20)
    assert abs(A - A.T).max() == 0
    assert np.allclose(b, s_float.rhs.reshape(-1)[index])
    # symmetric positive definite: the smallest eigenvalue is positive
    lam = spla.eigsh(A, k=1, which="SA", return_eigenvectors=False)[0]
    assert lam > 0


def test_complex_system_for_frequency_domain():
    # a bar of resistors with a capacitance to ground in every voxel: the
    # transmission-line input admittance Y = sqrt(z y) coth-like; compare the sparse
    # complex solve with a dense one
    n = 6
    k = np.ones((n, 1, 1), complex)
    diag = np.full((n, 1, 1), 1j * 0.3e-6)
    s = build_system(k, H, dirichlet=[Dirichlet(0, 0, 1.0)], diagonal=diag)
    x = solve(s).x
    A, b, index = s.to_sparse()
    dense = np.linalg.solve(A.toarray(), b)
    assert np.allclose(x.reshape(-1)[index], dense)
    assert isinstance(s.boundary_flux(x, 0), complex)
    with pytest.raises(InvalidInputError, match="real symmetric"):
        s.multigrid()


def test_active_defaults_drop_floating_clusters():
    k = np.zeros((6, 3, 3))
    k[:, 1, 1] = 1.0  # spans
    k[2:4, 0, 0] = 1.0  # floating, not reachable from any Dirichlet face
    s = build_system(k, H, dirichlet=[Dirichlet(0, 0, 1.0), Dirichlet(0, -1, 0.0)])
    assert s.n_unknowns == 6
    assert not s.active[2, 0, 0]


def test_pure_neumann_components_are_grounded():
    k = np.ones((4, 4, 1))
    s = build_system(k, H, periodic=(True, True, False))
    assert s.n_unknowns == 16
    x = solve(s, method="direct").x  # non-singular: the component is grounded
    assert np.allclose(x, 0.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dirichlet": [Dirichlet(3, 0, 1.0)]}, "axis must be 0, 1 or 2"),
        ({"dirichlet": [Dirichlet(0, 1, 1.0)]}, "side 0"),
        ({"dirichlet": [Dirichlet(0, 0, 1.0), Dirichlet(0, 0, 2.0)]}, "two boundary"),
        ({"dirichlet": [Dirichlet(0, 0, 1.0)], "periodic": (True, False, False)}, "periodic"),
        ({"dirichlet": [Dirichlet(0, 0, 1.0, at="edge")]}, "use 'face' or 'layer'"),
        (
            {"dirichlet": [Dirichlet(0, 0, 1.0, at="layer"), Dirichlet(1, 0, 0.0, at="layer")]},
            "one axis",
        ),
    ],
)
def test_bad_boundary_conditions(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        build_system(np.ones((4, 4, 4)), H, **kwargs)


def test_structured_to_csr_periodic_pairs_of_two():
    # with two cells on a periodic axis both faces join the same pair
    g0 = np.ones((2, 1, 1))
    z = np.zeros((2, 1, 1))
    A, index = structured_to_csr(np.zeros((2, 1, 1)), (g0, z, z))
    assert A.toarray().tolist() == [[2.0, -2.0], [-2.0, 2.0]]
    assert index.tolist() == [0, 1]


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    shape=st.tuples(st.integers(2, 5), st.integers(1, 4), st.integers(1, 4)),
    seed=st.integers(0, 2**16),
    periodic=st.tuples(st.booleans(), st.booleans()),
)
def test_assembly_invariants(shape, seed, periodic):
    """Symmetric operator, matrix-free == sparse, flux form: A·1 = ground."""
    rng = np.random.default_rng(seed)
    k = rng.choice([0.0, 0.1, 1.0, 3.0], size=shape)
    per = (False, periodic[0], periodic[1])
    s = build_system(
        k, (1e-6, 2e-6, 0.5e-6), periodic=per,
        dirichlet=[Dirichlet(0, 0, 1.0), Dirichlet(0, -1, 0.0)],
    )  # fmt: skip
    if s.n_unknowns == 0:
        return
    A, _, index = s.to_sparse()
    assert abs(A - A.T).max() == 0
    x = rng.standard_normal(shape) * s.active
    assert np.allclose(s.matvec(x).reshape(-1)[index], A @ x.reshape(-1)[index], atol=1e-18)
    ones = s.active.astype(float)
    assert np.allclose(s.matvec(ones)[s.active], s.ground[s.active], rtol=1e-12, atol=1e-20)
