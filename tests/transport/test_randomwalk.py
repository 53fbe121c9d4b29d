"""Random-walk tortuosity: closed-form geometries, the reflection rule, reproducibility."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from microbat import Microstructure
from microbat.core.errors import InvalidInputError, PhaseError
from microbat.transport import RandomWalkResult, random_walk
from microbat.transport.diffusion import PercolationWarning
from microbat.transport.randomwalk import _build_grid, _spanning_clusters

H = 1e-6  # voxel edge [m]


def _walk(ms, **kw):
    """random_walk, silencing the expected non-percolation warning."""
    with pytest.warns(PercolationWarning, match="does not percolate"):
        return random_walk(ms, **kw)


def _image_index(x: np.ndarray, n: int, boundary: str) -> np.ndarray:
    """Stored voxel index of unwrapped voxel coordinates (floor of the position)."""
    c = np.floor(x).astype(np.int64)
    if boundary == "periodic":
        return c % n
    m = c % (2 * n)
    return np.where(m < n, m, 2 * n - 1 - m)


def _assert_in_phase(r: RandomWalkResult, walk: np.ndarray, h, boundary: str) -> None:
    """Every recorded position of every tracked walker lies in a phase voxel."""
    x = r.trajectories / np.asarray(h)  # back to voxel units
    idx = tuple(_image_index(x[..., a], walk.shape[a], boundary) for a in range(walk.ndim))
    assert walk[idx].all()


def _u64(values):
    """Numba hands uint64 back as Python ints: keep them uint64 for the next call."""
    return tuple(np.uint64(v) for v in values)


def _blobs(shape, sigma, porosity, seed):
    from scipy import ndimage

    g = ndimage.gaussian_filter(np.random.default_rng(seed).random(shape), sigma, mode="wrap")
    return np.where(g < np.quantile(g, porosity), 0, 1).astype(np.uint8)


# ----------------------------------------------------------- closed form
def test_direction_is_uniform_on_the_sphere():
    from microbat.transport import _rw_kernels as kern

    s0, s1 = np.uint64(0x9E3779B97F4A7C15), np.uint64(12345)
    d = np.empty((40_000, 3))
    for i in range(d.shape[0]):
        u, s0, s1 = _u64(kern.next_u64(s0, s1))
        d[i] = kern.direction(u)
    assert np.abs(np.linalg.norm(d, axis=1) - 1).max() < 1e-13
    n = d.shape[0]
    # second moments 1/3 (sd of d_i^2 is sqrt(4/45)), cross moments 0 (sd 1/sqrt(15))
    m2 = d.T @ d / n
    assert np.abs(np.diag(m2) - 1 / 3).max() < 5 * math.sqrt(4 / 45 / n)
    assert np.abs(m2 - np.diag(np.diag(m2))).max() < 5 / math.sqrt(15 * n)
    assert np.abs(d.mean(axis=0)).max() < 5 / math.sqrt(3 * n)
    # Archimedes: each component is uniform on (-1, 1)
    hist = np.histogram(d[:, 0], bins=10, range=(-1, 1))[0]
    assert np.abs(hist / n - 0.1).max() < 5 * math.sqrt(0.09 / n)


@pytest.mark.parametrize("boundary", ["mirror", "periodic"])
def test_free_space_diffuses_at_d0(boundary):
    ms = Microstructure(np.zeros((12, 12, 12), np.uint8), H, phases="pore=0")
    n_w, n_s = 40_000, 600
    r = random_walk(ms, n_walkers=n_w, n_steps=n_s, n_records=60, boundary=boundary, seed=7)
    assert r.percolating == (True, True, True)
    for a in range(3):
        lo, hi = r.ci95[a]
        assert lo <= 1.0 <= hi
        assert hi - lo < 0.08
    # closed form of the step rule: MSD_i(t) = 2 D0 t, per-walker sd sqrt(2) x mean
    ratio = r.msd[-1] / (2 * r.d0 * r.time[-1])
    assert np.abs(ratio - 1).max() < 4 * math.sqrt(2 / n_w)
    assert r.time_step == pytest.approx((0.5 * H) ** 2 / (6 * r.d0))
    assert r.step_length == pytest.approx(0.5 * H)
    assert r.deff_over_d0 == pytest.approx(r.d_over_d0)  # porosity 1
    assert max(abs(x) for x in r.plateau_drift) < 0.15  # D(t) flat (sd of the drift ~2.5 %)


def test_free_space_anisotropic_voxels_is_isotropic_in_metres():
    ms = Microstructure(np.zeros((10, 10, 5), np.uint8), (H, H, 2 * H), phases="pore=0")
    n_w = 40_000
    r = random_walk(ms, n_walkers=n_w, n_steps=400, n_records=40, seed=3)
    ratio = r.msd[-1] / (2 * r.d0 * r.time[-1])
    assert np.abs(ratio - 1).max() < 4 * math.sqrt(2 / n_w)
    assert r.step_length == pytest.approx(0.5 * H)


def test_straight_channels(channels):
    """tau = 1 along channels; across, the MSD saturates at w^2/6 (w = 3 voxels)."""
    r = _walk(channels, n_walkers=20_000, n_steps=1500, n_records=50, seed=11)
    assert r.percolating == (True, False, False)
    lo, hi = r.ci95[0]
    assert lo <= 1.0 <= hi and hi - lo < 0.1
    assert r.tau[1:] == (math.inf, math.inf) and r.d_over_d0[1:] == (0.0, 0.0)
    # uniform start and end in a slot of width w: E[(x - x0)^2] = w^2 / 6
    w = 3 * H
    assert r.msd[-1, 1:] == pytest.approx([w * w / 6] * 2, rel=0.03)
    assert r.porosity == pytest.approx(16 * 9 / 24**2)
    assert r.deff_over_d0[0] == pytest.approx(r.porosity * r.d_over_d0[0])
    js = json.loads(r.to_json())
    assert js["tau"][1] is None and js["ci95"][1] == [None, None]


def test_parallel_plates_periodic():
    """Pore slabs of width 3 normal to axis 2 (period 5): free along 0 and 1."""
    lab = np.ones((10, 10, 20), np.uint8)
    for k in range(0, 20, 5):
        lab[:, :, k : k + 3] = 0
    ms = Microstructure(lab, H, phases="pore=0,active=1")
    r = _walk(ms, n_walkers=20_000, n_steps=1500, n_records=50, boundary="periodic", seed=5)
    assert r.percolating == (True, True, False)
    for a in (0, 1):
        lo, hi = r.ci95[a]
        assert lo <= 1.0 <= hi
    assert r.msd[-1, 2] == pytest.approx(9 * H * H / 6, rel=0.03)
    assert r.released_fraction == pytest.approx(0.6)


def test_isolated_pores_divide_by_the_whole_porosity():
    """Channels plus closed cavities: tau_rw = eps / eps_channel, D_eff/D0 = eps_channel.

    The exact diffusion-solve answer for this volume (flux only in the straight
    channels) is D_eff/D0 = eps_channel, tau = eps D0 / D_eff = eps / eps_channel.
    """
    lab = np.ones((16, 16, 16), np.uint8)
    lab[:, 2:5, 2:5] = 0  # through channel along axis 0, 9 voxels per slice
    lab[3:7, 8:12, 8:12] = 0  # closed cavities, 2 x 64 voxels
    lab[9:13, 8:12, 8:12] = 0
    ms = Microstructure(lab, H, phases="pore=0,active=1")
    eps_ch = 9 * 16 / 16**3
    eps = eps_ch + 128 / 16**3
    r = _walk(ms, n_walkers=40_000, n_steps=800, n_records=40, seed=9)
    lo, hi = r.ci95[0]
    assert lo <= eps / eps_ch <= hi
    assert r.deff_over_d0[0] == pytest.approx(eps_ch, rel=0.08)
    assert r.porosity == pytest.approx(eps)
    rp = _walk(ms, n_walkers=10_000, n_steps=800, n_records=40, release="percolating", seed=9)
    assert rp.released_fraction == pytest.approx(eps_ch)
    lo, hi = rp.ci95[0]
    assert lo <= 1.0 <= hi


# ------------------------------------------------------- reflection rule
@pytest.mark.filterwarnings("ignore:phase pore does not percolate")
@pytest.mark.parametrize(
    ("boundary", "step", "h"),
    [("mirror", 0.5, (H, H, H)), ("periodic", 0.9, (H, 2 * H, H)), ("mirror", 2.5, (H, H, H))],
)
def test_no_walker_ever_in_a_wall(boundary, step, h):
    lab = _blobs((14, 12, 10), 1.5, 0.45, seed=4)
    ms = Microstructure(lab, h, phases="pore=0,active=1")
    n = 300
    r = random_walk(
        ms, n_walkers=n, n_steps=400, n_records=400, n_tracked=n, step_length=step,
        boundary=boundary, n_batches=4, seed=1,
    )  # fmt: skip
    assert r.trajectories.shape == (n, 401, 3)
    _assert_in_phase(r, lab == 0, h, boundary)


def test_no_tunnelling_through_a_thin_wall():
    """A 1-voxel wall; steps of 2.5 voxels never carry a walker across it."""
    lab = np.zeros((12, 6, 6), np.uint8)
    lab[5] = 1
    ms = Microstructure(lab, H, phases="pore=0,active=1")
    r = _walk(
        ms, n_walkers=400, n_steps=1000, n_records=1000, n_tracked=400, step_length=2.5,
        n_batches=4, seed=2,
    )  # fmt: skip
    x = r.trajectories[..., 0] / H
    left = x[:, 0] < 5
    # mirror images: the left slab [0, 5) unfolds to [-5, 5), the right one to [6, 18)
    assert np.all((x[left] >= -5) & (x[left] < 5))
    assert np.all((x[~left] >= 6) & (x[~left] < 18))
    assert left.any() and (~left).any()
    assert r.percolating == (False, True, True)


def _reference_walk(walk, step, n_steps, states, boundary):
    """Plain-Python version of the documented rule (same random numbers as the kernel)."""
    from microbat.transport import _rw_kernels as kern

    shape = walk.shape

    def ok(cell):
        idx = [
            _image_index(np.array([c + 0.5]), n, boundary)[0]
            for c, n in zip(cell, shape, strict=True)
        ]
        return bool(walk[tuple(idx)])

    out = []
    for s0, s1 in states:
        s0, s1 = np.uint64(s0), np.uint64(s1)
        while True:  # place: 3 uniforms per try, until a phase voxel
            x = []
            for a in range(3):
                u, s0, s1 = _u64(kern.next_u64(s0, s1))
                x.append(float(u >> np.uint64(11)) * 2.0**-53 * shape[a])
            cell = [min(int(v), n - 1) for v, n in zip(x, shape, strict=True)]
            if ok(cell):
                break
        frac = [v - c for v, c in zip(x, cell, strict=True)]
        for _ in range(n_steps):
            u, s0, s1 = _u64(kern.next_u64(s0, s1))
            r = [step * d for d in kern.direction(u)]
            while True:
                ts = [
                    (1 - f) / q if q > 0 else (-f / q if q < 0 else math.inf)
                    for f, q in zip(frac, r, strict=True)
                ]
                k = int(np.argmin(ts))
                t = ts[k]
                if t >= 1:
                    frac = [f + q for f, q in zip(frac, r, strict=True)]
                    break
                frac = [f + t * q for f, q in zip(frac, r, strict=True)]
                r = [q * (1 - t) for q in r]
                d = 1 if r[k] > 0 else -1
                nxt = list(cell)
                nxt[k] += d
                if ok(nxt):  # cross into the neighbour
                    cell = nxt
                    frac[k] = 0.0 if d > 0 else 1.0
                else:  # cut, reverse the normal component, go on
                    frac[k] = 1.0 if d > 0 else 0.0
                    r[k] = -r[k]
        out.append([c + f for c, f in zip(cell, frac, strict=True)])
    return np.array(out)


@pytest.mark.parametrize("boundary", ["mirror", "periodic"])
def test_kernel_follows_the_documented_rule(boundary):
    """Kernel (free flight, box check, exact path) == a plain implementation of the rule."""
    lab = _blobs((9, 8, 7), 1.2, 0.5, seed=8)
    ms = Microstructure(lab, H, phases="pore=0,active=1")
    n, n_steps = 12, 256  # a multiple of the kernel's 64-step direction buffer
    r = random_walk(
        ms, n_walkers=n, n_steps=n_steps, n_records=8, n_tracked=n, n_batches=2,
        boundary=boundary, seed=21,
    )  # fmt: skip
    states = np.random.SeedSequence(21).generate_state(2 * n, np.uint64).reshape(n, 2)
    ref = _reference_walk(lab == 0, 0.5, n_steps, states, boundary)
    np.testing.assert_allclose(r.trajectories[:, -1] / H, ref, atol=1e-9)


def test_free_flight_changes_nothing():
    """The clearance shortcut gives the same trajectories as checking every step."""
    from microbat.transport import _rw_kernels as kern
    from microbat.transport.randomwalk import _walker_states

    lab = _blobs((20, 20, 20), 2.5, 0.6, seed=3)
    walk = lab == 0
    n, n_steps, stride = 64, 512, 64
    out = []
    for keep_clearance in (True, False):
        grid, shape, strides = _build_grid(walk, walk, "mirror")
        assert (grid >> 2).max() >= 2
        if not keep_clearance:
            grid &= 3
        _, st = _walker_states(5, n)
        cell = np.zeros((n, 3), np.int64)
        frac = np.zeros((n, 3))
        wrap = np.zeros((n, 3), np.int64)
        sign = np.ones((n, 3), np.int64)
        start = np.zeros((n, 3))
        kern.place(grid, shape, strides, st, cell, frac, wrap, sign, start, 10_000)
        sums = np.zeros((1, n_steps // stride, 3))
        tracks = np.zeros((n, n_steps // stride, 3))
        kern.advance(
            grid, shape, strides, kern.MIRROR, np.full(3, 0.5), n_steps, stride,
            np.array([0, n], np.int64), st, cell, frac, wrap, sign, start, sums, tracks,
        )  # fmt: skip
        out.append(tracks)
    np.testing.assert_allclose(out[0], out[1], atol=1e-9)


# ------------------------------------------------------ plateau, images
def test_plateau_detected_only_after_the_transient():
    """Cavities joined by 1-voxel throats: D(t) falls for ~10^3 steps, then is flat."""
    lab = np.ones((16, 16, 16), np.uint8)
    for i in (1, 9):
        for j in (1, 9):
            for k in (1, 9):
                lab[i : i + 6, j : j + 6, k : k + 6] = 0
    lab[:, 4::8, 4::8] = 0
    lab[4::8, :, 4::8] = 0
    lab[4::8, 4::8, :] = 0
    ms = Microstructure(lab, H, phases="pore=0,active=1")
    short = random_walk(ms, n_walkers=20_000, n_steps=200, n_records=50, seed=4)
    assert not short.plateau_reached
    assert min(short.plateau_drift) < -0.1  # D(t) still falling
    long = random_walk(ms, n_walkers=2000, n_steps=400, max_steps=40_000, n_records=40, seed=4)
    assert long.plateau_reached
    assert long.n_steps > 400
    # the short walk's fit through the origin reads tau far too low
    assert max(1 / short.d_over_d0_t[-1]) < 0.7 * min(long.tau)


def test_periodic_images_need_a_wrapping_path():
    """A channel that jogs sideways spans the box but does not join its periodic image."""
    lab = np.ones((10, 10, 4), np.uint8)
    lab[0:6, 2, :] = 0
    lab[5, 2:7, :] = 0
    lab[5:10, 6, :] = 0
    walk = lab == 0
    spans_m, _ = _spanning_clusters(walk, "mirror")
    spans_p, _ = _spanning_clusters(walk, "periodic")
    assert spans_m[1].tolist() == [True, False, True]
    assert spans_p[1].tolist() == [False, False, True]
    ms = Microstructure(lab, H, phases="pore=0,active=1")
    r = _walk(ms, n_walkers=200, n_steps=200, n_records=20, boundary="periodic", seed=1)
    assert r.percolating == (False, False, True) and r.tau[0] == math.inf


def test_periodic_wrap_through_a_loop_of_clusters():
    """Three clusters joined only through periodic images wrap along axis 0 together."""
    lab = np.ones((8, 6, 3), np.uint8)
    lab[0:5, 0, 1] = 0  # A: joins C and B across the axis-1 faces
    lab[4:8, 5, 1] = 0  # B: joins C across the axis-0 faces
    lab[0, 5, 1] = 0  # C
    spans, labels = _spanning_clusters(lab == 0, "periodic")
    assert labels.max() == 3
    assert spans[1:].tolist() == [[True, False, False]] * 3  # loop A -y B +x C +y A
    spans, _ = _spanning_clusters(lab == 0, "mirror")
    assert not spans.any()


def test_agrees_with_the_diffusion_solve_in_the_continuum_limit():
    """Random walk (mirror images) vs the finite-volume solve (fixed concentrations on
    the outer faces, the "face" convention, whole-volume porosity).

    Both see the same voxel geometry, but the finite-volume solve with one unknown per
    voxel carries a discretisation error of order h at the staircase walls (here
    ~15 % at the native resolution), while the walk moves in continuous space. The
    solve on the same geometry refined 2x and 4x (``upsample``) converges to the
    walk: with monotone convergence of order >= 1 the continuum value lies between
    the 4x value and its first-order Richardson extrapolation ``2 tau_4 - tau_2``,
    and the walk's 95 % interval must overlap that bracket on every axis.
    """
    tortuosity = pytest.importorskip("microbat.transport.diffusion").tortuosity
    lab = _blobs((12, 12, 12), 1.2, 0.55, seed=3)
    ms = Microstructure(lab, H, phases="pore=0,active=1")
    fv = [
        np.array(tortuosity(m, phase="pore", axis="all").tau)
        for m in (ms, ms.upsample(2), ms.upsample(4))
    ]
    assert np.all(np.diff(fv, axis=0) < 0)  # monotone convergence from above
    low, high = 2 * fv[2] - fv[1], fv[2]
    r = random_walk(ms, n_walkers=20_000, n_steps=2000, n_records=50, seed=1)
    for a in range(3):
        lo, hi = r.ci95[a]
        assert lo <= high[a] and hi >= low[a], (a, r.ci95[a], low[a], high[a])
        assert hi - lo < 0.2 * r.tau[a]
    assert r.tau[0] < 0.9 * fv[0][0]  # the native-resolution solve reads high


# -------------------------------------------------- 2D, units, anisotropy
def test_2d_image_is_walked_as_an_extrusion():
    lab = np.ones((20, 12), np.uint8)
    lab[:, 3:6] = 0
    ms = Microstructure(lab, H, phases="pore=0,active=1")
    r = _walk(ms, n_walkers=10_000, n_steps=1000, n_records=40, seed=6)
    assert len(r.tau) == 2 and r.msd.shape[1] == 2 and r.percolating == (True, False)
    lo, hi = r.ci95[0]
    assert lo <= 1.0 <= hi
    assert r.msd[-1, 1] == pytest.approx(9 * H * H / 6, rel=0.05)


def test_anisotropic_voxels_equal_the_upsampled_image():
    lab = _blobs((16, 16, 8), 1.5, 0.55, seed=12)
    coarse = Microstructure(lab, (H, H, 2 * H), phases="pore=0,active=1")
    fine = coarse.upsample((1, 1, 2))
    kw = {"n_walkers": 20_000, "n_steps": 3000, "n_records": 40}
    a = random_walk(coarse, seed=1, **kw)
    b = random_walk(fine, seed=2, **kw)
    for i in range(3):
        da, db = a.d_over_d0[i], b.d_over_d0[i]
        half = math.hypot(a.d_over_d0_ci95[i], b.d_over_d0_ci95[i])
        assert abs(da - db) <= half
    assert a.step_length == b.step_length


# ------------------------------------------------------ reproducibility
def test_seeded_runs_repeat_and_do_not_depend_on_threads():
    import numba

    lab = _blobs((12, 12, 12), 1.5, 0.5, seed=2)
    ms = Microstructure(lab, H, phases="pore=0,active=1")
    kw = {"n_walkers": 1000, "n_steps": 500, "n_records": 20, "n_tracked": 5}
    a = random_walk(ms, seed=123, **kw)
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        b = random_walk(ms, seed=123, **kw)
    finally:
        numba.set_num_threads(old)
    assert np.array_equal(a.msd_batches, b.msd_batches)
    assert np.array_equal(a.trajectories, b.trajectories)
    c = random_walk(ms, seed=124, **kw)
    assert not np.array_equal(a.msd, c.msd)
    d = random_walk(ms, seed=None, **kw)
    e = random_walk(ms, seed=d.seed, **kw)
    assert np.array_equal(d.msd, e.msd) and d.provenance.seed == d.seed


def test_walker_streams_do_not_depend_on_the_walker_count():
    lab = _blobs((12, 12, 12), 1.5, 0.5, seed=2)
    ms = Microstructure(lab, H, phases="pore=0,active=1")
    kw = {"n_steps": 128, "n_records": 8, "n_tracked": 4, "n_batches": 2, "seed": 9}
    a = random_walk(ms, n_walkers=4, **kw)
    b = random_walk(ms, n_walkers=400, **kw)
    assert np.array_equal(a.trajectories, b.trajectories)


def test_result_json_keys_and_throughput():
    ms = Microstructure(np.zeros((8, 8, 8), np.uint8), H, phases="pore=0")
    r = random_walk(ms, n_walkers=2000, n_steps=256, n_records=16, seed=0)
    js = json.loads(r.to_json())
    for key in ("tau", "ci95", "d_over_d0", "plateau_reached", "walker_steps_per_s_per_core",
                "seed", "msd", "time", "provenance"):  # fmt: skip
        assert key in js
    assert js["seed"] == 0 and len(js["msd"]) == 17
    assert r.walker_steps_per_s_per_core > 0 and r.threads >= 1
    assert r.provenance.parameters["n_steps"] == 256


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kw", "exc", "match"),
    [
        ({"phase": "cbd"}, PhaseError, "unknown phase 'cbd'"),
        ({"n_batches": 1}, InvalidInputError, "n_batches"),
        ({"step_length": 0.0}, InvalidInputError, "step_length"),
        ({"step_length": 9.0}, InvalidInputError, "step_length"),
        ({"boundary": "closed"}, InvalidInputError, "boundary='closed'"),
        ({"release": "all"}, InvalidInputError, "release='all'"),
        ({"n_steps": 10, "n_records": 50}, InvalidInputError, "n_steps=10"),
        ({"d0": -1.0}, InvalidInputError, "d0"),
        ({"seed": -3}, InvalidInputError, "seed"),
        ({"n_walkers": 2.5}, InvalidInputError, "n_walkers"),
    ],
)
def test_bad_options(kw, exc, match):
    ms = Microstructure(np.zeros((4, 4, 4), np.uint8), H, phases="pore=0")
    with pytest.raises(exc, match=match):
        random_walk(ms, **kw)


def test_phase_errors():
    lab = np.ones((6, 6, 6), np.uint8)
    ms = Microstructure(lab, H, phases="pore=0,active=1", allow_empty_phases=True)
    with pytest.raises(PhaseError, match="has no voxel"):
        random_walk(ms)
    lab[2:4, 2:4, 2:4] = 0  # an isolated pore
    ms = Microstructure(lab, H, phases="pore=0,active=1")
    with pytest.warns(PercolationWarning, match="release='phase'"):  # nothing to release
        r = random_walk(ms, release="percolating")
    assert r.tau == (math.inf,) * 3 and r.percolating == (False,) * 3 and r.n_walkers == 0
    with pytest.raises(InvalidInputError, match="Microstructure"):
        random_walk(lab)


# ------------------------------------------------------------------- CLI
def test_cli_randomwalk_npy(tmp_path):
    from typer.testing import CliRunner

    from microbat.cli import app

    lab = np.ones((16, 16, 16), np.uint8)
    lab[:, 4:8, 4:8] = 0
    path = tmp_path / "channel.npy"
    np.save(path, lab)
    args = ["randomwalk", str(path), "--phases", "pore=0,active=1", "--voxel-size", "1um"]
    run = ["--walkers", "4000", "--steps", "600", "--seed", "3", "--json"]
    res = CliRunner().invoke(app, args + run)
    assert res.exit_code == 0, res.output
    js = json.loads(res.stdout)
    assert js["tau"][1:] == [None, None] and js["seed"] == 3
    lo, hi = js["ci95"][0]
    assert lo <= 1.0 <= hi
    assert js["d_over_d0"][1:] == [0.0, 0.0] and isinstance(js["plateau_reached"], bool)
    assert js["walker_steps_per_s_per_core"] > 0
    assert "does not percolate" in res.stderr
    human = CliRunner().invoke(app, args + run[:-1])
    assert human.exit_code == 0 and "tau" in human.stdout and "inf" in human.stdout
    bad = CliRunner().invoke(app, [*args, "--boundary", "closed"])
    assert bad.exit_code == 1 and "boundary='closed'" in bad.stderr
