"""Random-walk (Brownian, Einstein) tortuosity of a phase.

Walkers diffuse through the chosen phase of the voxel image in continuous space and
bounce off the other phases; the long-time growth of their mean squared displacement
(MSD) gives the self-diffusivity in the labyrinth, and its ratio to free space is the
tortuosity factor, one per axis.

Conventions
-----------
* ``D_walk`` is the long-time self-diffusivity of the walkers,
  ``MSD_i(t) ≈ 2 D_walk,i t`` along array axis ``i``; ``D0`` is the free-space value
  of the same step rule.
* ``tau_i = D0 / D_walk,i``. The walkers only sample the phase, so no porosity factor
  appears: with walkers released uniformly in the whole phase (volume fraction ``ε``)
  the Einstein relation gives ``D_eff,i / D0 = ε / tau_i``, the same as the diffusion
  solve's ``tau = ε D0 / D_eff`` (:func:`microbat.transport.tortuosity`) when that
  divides by the whole-phase porosity. Walkers in isolated pores never get far and
  pull ``D_walk`` down by exactly their share of the phase, which is the same as
  dividing the flux by ``ε``. :attr:`RandomWalkResult.deff_over_d0`
  (``released fraction × D_walk / D0``) is the number to compare with a diffusion
  solve whatever the porosity convention.
* Per-axis results are listed in array axis order. All lengths are in metres, times
  in seconds, ``D0`` in m²/s (it only sets the time scale: ``tau`` does not depend
  on it).

See :func:`random_walk` for the walk rule, the reflection rule and the plateau
criterion.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from microbat.core.errors import InvalidInputError, PhaseError
from microbat.core.microstructure import Microstructure
from microbat.core.results import Provenance, Result
from microbat.transport._steady import PercolationWarning

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = ["RandomWalkResult", "random_walk"]

_CLEARANCE_CAP = 15  # layers of free voxels stored per voxel (bits 2..5 of the grid)
_CHUNK = 128  # walkers per task of the parallel loop
_BOUNDARIES = ("mirror", "periodic")
_RELEASES = ("phase", "percolating")


@dataclass(frozen=True)
class RandomWalkResult(Result):
    """Outcome of :func:`random_walk`. Per-axis tuples are in array axis order.

    Attributes
    ----------
    tau : tuple of float
        Tortuosity factor ``D0 / D_walk`` per axis; ``inf`` along an axis in which
        no released walker can get arbitrarily far (``percolating`` false).
    ci95 : tuple of (float, float)
        95 % confidence interval of ``tau`` per axis, from independent batches of
        walkers (upper bound ``inf`` when the interval of ``D_walk`` reaches 0).
    d_over_d0 : tuple of float
        Long-time ``D_walk / D0`` per axis (0 along non-percolating axes).
    d_over_d0_ci95 : tuple of float
        Half-width of the 95 % confidence interval of ``d_over_d0``.
    deff_over_d0 : tuple of float
        ``released_fraction × d_over_d0``: the effective diffusivity of the volume
        relative to ``D0``, comparable with a diffusion solve.
    plateau_reached : bool
        True when the plateau was reached along every axis (see ``plateau_drift``).
    plateau_reached_axes : tuple of bool
        The plateau test per axis.
    plateau_drift : tuple of float
        ``(D_late - D_early) / D_walk`` per axis, with ``D_early`` and ``D_late`` the
        diffusivities fitted on the two halves of the fit window.
    percolating : tuple of bool
        Whether some released walker can travel arbitrarily far along the axis
        (a cluster of the phase that spans the axis, through the images).
    porosity : float
        Volume fraction of the walked phase (the whole phase).
    released_fraction : float
        Volume fraction of the voxels walkers were released in.
    phase : tuple of str
        Names of the walked phases.
    boundary : str
        ``"mirror"`` or ``"periodic"`` images.
    release : str
        ``"phase"`` or ``"percolating"``.
    n_walkers, n_steps, n_batches : int
        Walkers (all batches), steps per walker, independent batches.
    step_length : float
        Step length [m].
    time_step : float
        Duration of a step [s], ``step_length² / (6 d0)``.
    d0 : float
        Free-space diffusivity [m²/s] of the step rule.
    fit_window : tuple of float
        Start and end [s] of the window in which ``D_walk`` is fitted.
    time : ndarray, shape (n_records + 1,)
        Record times [s], from 0.
    msd : ndarray, shape (n_records + 1, ndim)
        Mean squared displacement per axis [m²] over all walkers.
    msd_batches : ndarray, shape (n_batches, n_records + 1, ndim)
        The same per batch.
    trajectories : ndarray, shape (n_tracked, n_records + 1, ndim)
        Unwrapped positions [m] of the first ``n_tracked`` walkers at the records.
    walker_steps_per_s : float
        Walker-steps per second of wall time (kernel only, compilation excluded).
    walker_steps_per_s_per_core : float
        Walker-steps per CPU-second of the process during the kernel (all threads
        added up), i.e. the speed of one core.
    threads : int
        Numba threads used.
    seed : int
        Seed of the run (the entropy drawn when none was given): rerunning with it
        repeats the result exactly.
    provenance : Provenance
        How the result was made.
    """

    tau: tuple[float, ...]
    ci95: tuple[tuple[float, float], ...]
    d_over_d0: tuple[float, ...]
    d_over_d0_ci95: tuple[float, ...]
    deff_over_d0: tuple[float, ...]
    plateau_reached: bool
    plateau_reached_axes: tuple[bool, ...]
    plateau_drift: tuple[float, ...]
    percolating: tuple[bool, ...]
    porosity: float
    released_fraction: float
    phase: tuple[str, ...]
    boundary: str
    release: str
    n_walkers: int
    n_steps: int
    n_batches: int
    step_length: float
    time_step: float
    d0: float
    fit_window: tuple[float, float]
    time: np.ndarray = field(repr=False)
    msd: np.ndarray = field(repr=False)
    msd_batches: np.ndarray = field(repr=False)
    trajectories: np.ndarray = field(repr=False)
    walker_steps_per_s: float
    walker_steps_per_s_per_core: float
    threads: int
    seed: int
    provenance: Provenance = field(repr=False)

    _json_arrays: ClassVar[tuple[str, ...]] = ("time", "msd")

    @property
    def d_over_d0_t(self) -> np.ndarray:
        """Apparent ``D(t) / D0 = MSD / (2 D0 t)`` per axis, shape ``(n_records, ndim)``.

        The first record (``t = 0``) is left out.
        """
        return self.msd[1:] / (2.0 * self.d0 * self.time[1:, None])

    def plot(self, ax: Axes | None = None) -> Axes:
        """Plot ``D(t)/D0`` per axis with the fitted plateau and the fit window.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Where to draw; a new figure when omitted.

        Returns
        -------
        matplotlib Axes
        """
        from microbat.core.errors import require

        plt = require("matplotlib.pyplot", package="matplotlib")
        if ax is None:
            _, ax = plt.subplots()
        t = self.time[1:]
        for i, curve in enumerate(self.d_over_d0_t.T):
            (line,) = ax.plot(t, curve, label=f"axis {i}")
            if self.percolating[i]:
                ax.axhline(self.d_over_d0[i], color=line.get_color(), ls="--", lw=0.8)
        ax.axvspan(*self.fit_window, color="0.9", zorder=0, label="fit window")
        ax.set_xlabel("time [s]")
        ax.set_ylabel("D(t) / D0")
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper right")
        return ax


def random_walk(
    ms: Microstructure,
    *,
    phase: str | Sequence[str] = "pore",
    n_walkers: int = 10_000,
    n_steps: int = 10_000,
    step_length: float = 0.5,
    boundary: Literal["mirror", "periodic"] = "mirror",
    release: Literal["phase", "percolating"] = "phase",
    seed: int | np.random.Generator | np.random.SeedSequence | None = None,
    n_batches: int = 10,
    n_records: int = 200,
    fit_from: float = 0.5,
    plateau_rtol: float = 0.02,
    max_steps: int | None = None,
    d0: float = 1.0e-9,
    n_tracked: int = 0,
) -> RandomWalkResult:
    """Tortuosity factor per axis from the mean squared displacement of random walkers.

    Parameters
    ----------
    ms : Microstructure
        The labelled volume (2D images are walked as 3D extrusions).
    phase : str or sequence of str, default "pore"
        Phase(s) the walkers move in: names or roles (``"pore"``, ``"electrolyte"``,
        ``"pore,cbd"``). Every other voxel is a wall.
    n_walkers : int, default 10000
        Number of walkers; rounded up to a multiple of ``n_batches``.
    n_steps : int, default 10000
        Steps per walker; rounded down to a multiple of the record interval.
    step_length : float, default 0.5
        Step length in units of the smallest voxel edge. Steps of a voxel or more
        jump over features thinner than a step; 0.5 or less is recommended.
    boundary : {"mirror", "periodic"}, default "mirror"
        Images of the volume beyond its faces, so the box does not confine the
        walkers. ``"mirror"``: the volume reflected at every face, the random-walk
        twin of a diffusion solve with fixed concentrations on the two outer faces
        and no flux through the sides (TauFactor's and
        :func:`microbat.transport.tortuosity`'s ``"face"`` convention; see Notes).
        ``"periodic"``: the volume repeated, for periodic structures.
    release : {"phase", "percolating"}, default "phase"
        Release walkers uniformly in the whole phase, or only in its clusters that
        extend without bound along at least one axis (``τ`` then refers to the
        percolating porosity).
    seed : int, Generator, SeedSequence or None
        Seed of the walk. ``None`` draws fresh entropy, reported as
        :attr:`RandomWalkResult.seed` so the run can be repeated exactly.
    n_batches : int, default 10
        Independent batches of walkers (each walker has its own random stream); the
        spread of the batch estimates gives the confidence intervals.
    n_records : int, default 200
        Number of MSD records along the walk.
    fit_from : float, default 0.5
        The long-time diffusivity is fitted on the records with
        ``t >= fit_from * t_end``.
    plateau_rtol : float, default 0.02
        Drift of ``D(t)`` across the fit window tolerated as "flat" besides its
        statistical error (see Notes).
    max_steps : int, optional
        When given (larger than ``n_steps``), the walk is continued, doubling its
        length, until the plateau is reached along every percolating axis or
        ``max_steps`` steps are done.
    d0 : float, default 1e-9
        Free-space diffusivity [m²/s]; sets the time step only.
    n_tracked : int, default 0
        Keep the trajectories (at the records) of this many walkers.

    Returns
    -------
    RandomWalkResult
        ``tau``, ``ci95``, ``d_over_d0``, ``plateau_reached`` and the MSD curves.

    Raises
    ------
    PhaseError
        The phase is unknown or has no voxel.
    InvalidInputError
        An option is out of range.

    Warns
    -----
    PercolationWarning
        Along an axis in which the phase does not percolate (``tau = inf``), as
        :func:`~microbat.transport.diffusion.tortuosity` does. With
        ``release="percolating"`` and no percolating cluster nothing is walked:
        ``tau = inf`` and ``percolating = False`` along every axis,
        ``released_fraction = 0``.

    Notes
    -----
    **Walk rule.** Space is continuous; voxel ``(i, j, k)`` is the box
    ``[i, i+1) × [j, j+1) × [k, k+1)`` scaled by the voxel size. Walkers start at
    uniformly random points of uniformly random voxels of the release set. Every
    step has the same length ``ℓ = step_length × min(voxel_size)`` and a direction
    uniform on the sphere, independent of all others (the axial component uniform
    in (-1, 1), the azimuth uniform: Archimedes' theorem). A step lasts
    ``Δt = ℓ² / (6 D0)``, so in free space ``MSD_i = 2 D0 t`` exactly along each
    axis.

    **Reflection rule** (specular, at voxel faces). The step is followed as a
    straight segment through the voxel faces it crosses, in the order it crosses
    them. At each crossing into a voxel of the phase the segment goes on. At the
    first face crossing into a voxel that is not of the phase the segment is cut
    there, the component of the remaining displacement normal to that face is
    reversed, and the remaining length is continued from the face; this repeats
    until the full length ``ℓ`` is used. A walker therefore never ends a step in, and
    never passes through, a voxel outside the phase, and two phase voxels touching
    only along an edge or a corner are not connected (6-connectivity, like the
    diffusion solve). Speed-ups that leave the rule unchanged: a walker whose voxel
    has ``m`` free layers around it moves without checks while it stays in that
    cube; elsewhere a move whose bounding box holds only phase voxels is accepted
    at once.

    **Images.** Walkers keep unwrapped coordinates: when one leaves the volume it
    enters the mirror (or periodic) image of the voxel across the face and its
    displacement keeps growing. For the mirror-extended medium the long-time
    diffusivity equals that of a steady diffusion solve with fixed concentrations
    on the outer faces of the volume and no flux through the sides: the mirror
    planes are planes of (anti)symmetry of the extended problem, on which the
    concentration is constant and the normal flux vanishes. Periodic images match a
    periodic diffusion solve instead; both differ from each other by an amount
    that shrinks with the volume size.

    **Plateau criterion.** ``D_walk,i`` of each batch is half the least-squares
    slope of ``MSD_i(t)`` over the fit window ``[fit_from t_end, t_end]`` (the slope,
    not ``MSD / 2t``, so the offset left by the early ballistic and transient
    regime does not bias it; fits through the origin of short walks overestimate
    ``D`` and underestimate ``τ``). The plateau is reached along an axis when the
    slopes fitted on the two halves of the window agree: their mean difference
    over the batches is within its own 95 % confidence interval or below
    ``plateau_rtol × D``, with ``D`` the larger of ``D_walk`` and the apparent
    ``MSD / 2t`` at the end of the walk. The test can only see a drift larger than
    the statistical error, so a walk with few walkers may pass it early: read it
    together with ``ci95`` (and, at a true plateau, expect it to fail by chance
    along about one axis in twenty). With images the box does not confine the
    walkers, so there is no finite-size regime along a percolating axis; along a
    non-percolating axis the MSD saturates and the test checks that it has.

    **Confidence intervals.** Batches are independent (separate random streams), so
    ``D_walk`` is their mean and its 95 % interval is ``t(0.975, B-1) s / √B`` with
    ``s`` the spread of the batch values. ``τ``'s interval is the image of that of
    ``D_walk`` under ``τ = D0 / D``.

    **Cost.** ``O(n_walkers × n_steps)`` time, ``O(n_voxels)`` memory (a padded
    ``uint8`` copy of the phase) plus ``O(n_walkers)``. The Numba kernel runs
    walkers in parallel; every walker has its own xoroshiro128++ stream seeded from
    :class:`numpy.random.SeedSequence`, so the result is the same for any number
    of threads.

    References
    ----------
    .. [1] A. Einstein, "Über die von der molekularkinetischen Theorie der Wärme
       geforderte Bewegung von in ruhenden Flüssigkeiten suspendierten Teilchen",
       Ann. Phys. 17 (1905) 549-560.
    .. [2] Y. Nakashima, S. Kamiya, "Mathematica programs for the analysis of
       three-dimensional pore connectivity and anisotropic tortuosity of porous
       rocks using X-ray computed tomography image data", J. Nucl. Sci. Technol. 44
       (2007) 1233-1247.
    .. [3] T. G. Tranter, M. D. R. Kok, M. Lam, J. T. Gostick, "pytrax: a simple and
       efficient random walk implementation for calculating the directional
       tortuosity of images", SoftwareX 10 (2019) 100277.
    .. [4] J. C. Ferguson, F. Panerai, A. Borner, N. N. Mansour, "PuMA: the Porous
       Microstructure Analysis software", SoftwareX 7 (2018) 81-87.
    .. [5] D. Blackman, S. Vigna, "Scrambled linear pseudorandom number
       generators", ACM Trans. Math. Softw. 47 (2021) 36.

    Examples
    --------
    >>> import numpy as np
    >>> from microbat import Microstructure
    >>> lab = np.ones((16, 16, 16), np.uint8)
    >>> lab[:, 4:8, 4:8] = 0  # a straight square pore channel along axis 0
    >>> ms = Microstructure(lab, voxel_size=1e-6, phases="pore=0,active=1")
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")  # axes 1 and 2 do not percolate
    ...     r = random_walk(ms, n_walkers=2000, n_steps=2000, seed=1)
    >>> lo, hi = r.ci95[0]  # 95 % interval of tau along the channel
    >>> bool(lo <= 1.0 <= hi), r.tau[1], r.percolating
    (True, inf, (True, False, False))
    """
    t_start = time.perf_counter()
    opts = _check_options(
        n_walkers=n_walkers,
        n_steps=n_steps,
        step_length=step_length,
        boundary=boundary,
        release=release,
        n_batches=n_batches,
        n_records=n_records,
        fit_from=fit_from,
        plateau_rtol=plateau_rtol,
        max_steps=max_steps,
        d0=d0,
        n_tracked=n_tracked,
    )
    if not isinstance(ms, Microstructure):
        raise InvalidInputError(
            f"random_walk needs a Microstructure, got {type(ms).__name__}; wrap a labelled "
            "array with microbat.Microstructure(labels, voxel_size=...)"
        )
    names = tuple(p.name for p in ms.phases.resolve(phase))
    ndim = ms.ndim
    walk = np.ascontiguousarray(ms.mask(list(names)))
    if not walk.any():
        raise PhaseError(
            f"phase {', '.join(names)} has no voxel in this {ms.shape} image; choose a "
            f"phase that is present ({', '.join(k for k, v in ms.counts().items() if v)})"
        )
    h = np.asarray(ms.voxel_size, dtype=float)
    if ndim == 2:  # a 2D image is walked as its extrusion along a third, free axis
        walk = walk[:, :, None]
        h = np.append(h, h.min())
    mode_name = opts["boundary"]

    spans, cluster = _spanning_clusters(walk, mode_name)
    spans = spans[:, :ndim]
    if opts["release"] == "percolating":
        keep = spans.any(axis=1)
        keep[0] = False
        rel = keep[cluster]
        if not rel.any():
            warnings.warn(
                f"phase {', '.join(names)} does not percolate along axis "
                f"{list(range(ndim))} with {mode_name} images: no cluster to release "
                "walkers in, tau = inf along every axis (release='phase' walks the "
                "isolated pores anyway)",
                PercolationWarning,
                stacklevel=2,
            )
            return _no_walk(ms, names, walk, opts, seed, mode_name, t_start)
    else:
        rel = walk
    released = np.unique(cluster[rel])
    percolating = tuple(bool(spans[released, a].any()) for a in range(ndim))

    n_walkers = opts["n_walkers"]
    n_batches = opts["n_batches"]
    seed_used, states = _walker_states(seed, n_walkers)
    grid, shape, strides = _build_grid(walk, rel, mode_name)
    ell = opts["step_length"] * float(h.min())  # physical step length [m]
    step = opts["step_length"] * float(h.min()) / h  # per axis, in voxels of that axis
    dt = ell * ell / (6.0 * opts["d0"])

    from microbat.transport import _rw_kernels as kern

    mode = kern.MIRROR if mode_name == "mirror" else kern.PERIODIC
    cell = np.zeros((n_walkers, 3), np.int64)
    frac = np.zeros((n_walkers, 3), np.float64)
    wrap = np.zeros((n_walkers, 3), np.int64)
    sign = np.ones((n_walkers, 3), np.int64)
    start = np.zeros((n_walkers, 3), np.float64)
    p_rel = float(rel.mean())
    max_tries = int(min(2**62, math.ceil(60.0 / p_rel) + 100))
    failed = kern.place(grid, shape, strides, states, cell, frac, wrap, sign, start, max_tries)
    if failed:  # pragma: no cover - probability below 1e-26 per walker
        raise InvalidInputError(f"{failed} walkers could not be placed in the phase")

    per_batch = n_walkers // n_batches
    q = max(1, math.ceil(per_batch / _CHUNK))
    chunk_lo = np.concatenate(
        [[0]]
        + [
            b * per_batch + np.linspace(0, per_batch, q + 1).astype(np.int64)[1:]
            for b in range(n_batches)
        ]
    ).astype(np.int64)
    batch_of_chunk = np.repeat(np.arange(n_batches), q)

    n_rec = opts["n_records"]
    stride = max(1, opts["n_steps"] // n_rec)
    n_rec = opts["n_steps"] // stride
    n_tracked = min(opts["n_tracked"], n_walkers)

    import numba

    threads = int(numba.get_num_threads())
    _warm_up(kern, grid, shape, strides, mode, step, states, cell, frac, wrap, sign, start)

    sums_parts: list[np.ndarray] = []
    track_parts: list[np.ndarray] = []
    wall = cpu = 0.0
    done_steps = 0
    todo = n_rec * stride
    limit = max(opts["max_steps"] or 0, todo)
    analysis: dict[str, Any] = {}
    while True:
        k_new = todo // stride
        sums = np.zeros((chunk_lo.size - 1, k_new, 3))
        tracks = np.zeros((n_tracked, k_new, 3))
        w0, c0 = time.perf_counter(), time.process_time()
        kern.advance(
            grid, shape, strides, mode, step, todo, stride, chunk_lo,
            states, cell, frac, wrap, sign, start, sums, tracks,
        )  # fmt: skip
        wall += time.perf_counter() - w0
        cpu += time.process_time() - c0
        done_steps += todo
        sums_parts.append(sums)
        track_parts.append(tracks)
        all_sums = np.concatenate(sums_parts, axis=1)
        batch_sums = np.zeros((n_batches, all_sums.shape[1], 3))
        np.add.at(batch_sums, batch_of_chunk, all_sums)
        msd_b = np.concatenate([np.zeros((n_batches, 1, 3)), batch_sums / per_batch], axis=1)
        msd_b = msd_b[:, :, :ndim] * (h[:ndim] ** 2)
        t = np.arange(msd_b.shape[1]) * stride * dt
        analysis = _analyse(t, msd_b, opts["d0"], opts["fit_from"], opts["plateau_rtol"])
        reached = all(analysis["reached"][a] for a in range(ndim) if percolating[a])
        if reached or done_steps >= limit:
            break
        todo = min(done_steps, limit - done_steps)  # double the walk
        todo = max(stride, (todo // stride) * stride)

    msd_all = msd_b.mean(axis=0)
    d_rel = analysis["d"]
    d_ci = analysis["d_ci"]
    tau: list[float] = []
    ci95: list[tuple[float, float]] = []
    d_out: list[float] = []
    d_ci_out: list[float] = []
    for a in range(ndim):
        if not percolating[a]:
            tau.append(math.inf)
            ci95.append((math.inf, math.inf))
            d_out.append(0.0)
            d_ci_out.append(0.0)
            continue
        d, hw = float(d_rel[a]), float(d_ci[a])
        d_out.append(d)
        d_ci_out.append(hw)
        tau.append(1.0 / d if d > 0 else math.inf)
        ci95.append(
            (1.0 / (d + hw) if d + hw > 0 else math.inf, 1.0 / (d - hw) if d > hw else math.inf)
        )
    blocked = [a for a in range(ndim) if not percolating[a]]
    if blocked:
        warnings.warn(
            f"phase {', '.join(names)} does not percolate along axis {blocked} with "
            f"{mode_name} images: no walker can get arbitrarily far, tau = inf there",
            PercolationWarning,
            stacklevel=2,
        )
    traj = np.concatenate(track_parts, axis=1) if n_tracked else np.zeros((0, n_rec, 3))
    if n_tracked:
        first = start[:n_tracked, None, :]
        traj = np.concatenate([first, traj], axis=1)
    else:
        traj = np.zeros((0, msd_all.shape[0], 3))
    traj = traj[:, :, :ndim] * h[:ndim]
    work = float(n_walkers) * done_steps
    wall_total = time.perf_counter() - t_start
    params = {
        "phase": list(names),
        "n_walkers": n_walkers,
        "n_steps": done_steps,
        "step_length_voxels": opts["step_length"],
        "boundary": mode_name,
        "release": opts["release"],
        "n_batches": n_batches,
        "n_records": int(msd_all.shape[0] - 1),
        "fit_from": opts["fit_from"],
        "plateau_rtol": opts["plateau_rtol"],
        "max_steps": opts["max_steps"],
        "d0": opts["d0"],
    }
    return RandomWalkResult(
        tau=tuple(tau),
        ci95=tuple(ci95),
        d_over_d0=tuple(d_out),
        d_over_d0_ci95=tuple(d_ci_out),
        deff_over_d0=tuple(p_rel * d for d in d_out),
        plateau_reached=bool(all(analysis["reached"][:ndim])),
        plateau_reached_axes=tuple(bool(x) for x in analysis["reached"][:ndim]),
        plateau_drift=tuple(float(x) for x in analysis["drift"][:ndim]),
        percolating=percolating,
        porosity=float(walk.mean()),
        released_fraction=p_rel,
        phase=names,
        boundary=mode_name,
        release=opts["release"],
        n_walkers=n_walkers,
        n_steps=done_steps,
        n_batches=n_batches,
        step_length=ell,
        time_step=dt,
        d0=opts["d0"],
        fit_window=(float(analysis["window"][0]), float(analysis["window"][1])),
        time=t,
        msd=msd_all,
        msd_batches=msd_b,
        trajectories=traj,
        walker_steps_per_s=work / wall if wall > 0 else math.inf,
        walker_steps_per_s_per_core=work / cpu if cpu > 0 else math.inf,
        threads=threads,
        seed=seed_used,
        provenance=Provenance(
            function="microbat.transport.random_walk",
            parameters=params,
            seed=seed_used,
            wall_time_s=wall_total,
            inputs={
                "shape": list(ms.shape),
                "voxel_size_m": list(ms.voxel_size),
                "phases": ms.phases.to_list(),
            },
        ),
    )


# ----------------------------------------------------------------- helpers
def _no_walk(
    ms: Microstructure,
    names: tuple[str, ...],
    walk: np.ndarray,
    opts: dict[str, Any],
    seed: Any,
    mode_name: str,
    t_start: float,
) -> RandomWalkResult:
    """The result of a walk with no walker to release: ``tau = inf`` along every axis."""
    nd = ms.ndim
    seed_used, _ = _walker_states(seed, 0)
    ell = opts["step_length"] * float(min(ms.voxel_size))
    params = {
        "phase": list(names),
        "n_walkers": 0,
        "n_steps": 0,
        "step_length_voxels": opts["step_length"],
        "boundary": mode_name,
        "release": opts["release"],
        "n_batches": opts["n_batches"],
        "n_records": 0,
        "fit_from": opts["fit_from"],
        "plateau_rtol": opts["plateau_rtol"],
        "max_steps": opts["max_steps"],
        "d0": opts["d0"],
    }
    return RandomWalkResult(
        tau=(math.inf,) * nd,
        ci95=((math.inf, math.inf),) * nd,
        d_over_d0=(0.0,) * nd,
        d_over_d0_ci95=(0.0,) * nd,
        deff_over_d0=(0.0,) * nd,
        plateau_reached=True,
        plateau_reached_axes=(True,) * nd,
        plateau_drift=(0.0,) * nd,
        percolating=(False,) * nd,
        porosity=float(walk.mean()),
        released_fraction=0.0,
        phase=names,
        boundary=mode_name,
        release=opts["release"],
        n_walkers=0,
        n_steps=0,
        n_batches=opts["n_batches"],
        step_length=ell,
        time_step=ell * ell / (6.0 * opts["d0"]),
        d0=opts["d0"],
        fit_window=(0.0, 0.0),
        time=np.zeros(1),
        msd=np.zeros((1, nd)),
        msd_batches=np.zeros((opts["n_batches"], 1, nd)),
        trajectories=np.zeros((0, 1, nd)),
        walker_steps_per_s=0.0,
        walker_steps_per_s_per_core=0.0,
        threads=1,
        seed=seed_used,
        provenance=Provenance(
            function="microbat.transport.random_walk",
            parameters=params,
            seed=seed_used,
            wall_time_s=time.perf_counter() - t_start,
            inputs={
                "shape": list(ms.shape),
                "voxel_size_m": list(ms.voxel_size),
                "phases": ms.phases.to_list(),
            },
        ),
    )


def _check_options(**o: Any) -> dict[str, Any]:
    """Validate and normalise the options of :func:`random_walk`."""

    def _int(name: str, lo: int) -> int:
        v = o[name]
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < lo:
            raise InvalidInputError(f"{name} must be an integer >= {lo}, got {v!r}")
        return int(v)

    out: dict[str, Any] = {}
    out["n_batches"] = _int("n_batches", 2)
    n_w = _int("n_walkers", 1)
    out["n_walkers"] = -(-max(n_w, 2 * out["n_batches"]) // out["n_batches"]) * out["n_batches"]
    out["n_records"] = _int("n_records", 8)
    out["n_steps"] = _int("n_steps", 1)
    if out["n_steps"] < out["n_records"]:
        raise InvalidInputError(
            f"n_steps={out['n_steps']} is smaller than n_records={out['n_records']}; "
            "walk longer (the plateau needs thousands of steps) or record less often"
        )
    out["n_tracked"] = _int("n_tracked", 0)
    out["max_steps"] = None if o["max_steps"] is None else _int("max_steps", 1)
    for name, lo, hi in (("step_length", 0.0, 5.0), ("fit_from", 0.0, 0.9)):
        v = o[name]
        if not isinstance(v, int | float | np.floating) or not (lo < float(v) <= hi):
            raise InvalidInputError(f"{name} must lie in ({lo}, {hi}], got {v!r}")
        out[name] = float(v)
    for name in ("plateau_rtol", "d0"):
        v = o[name]
        if not isinstance(v, int | float | np.floating) or not (math.isfinite(v) and float(v) > 0):
            raise InvalidInputError(f"{name} must be a positive finite number, got {v!r}")
        out[name] = float(v)
    if o["boundary"] not in _BOUNDARIES:
        raise InvalidInputError(
            f"boundary={o['boundary']!r} is not one of {', '.join(_BOUNDARIES)}; 'mirror' "
            "matches a diffusion solve with fixed concentrations on the outer faces"
        )
    out["boundary"] = o["boundary"]
    if o["release"] not in _RELEASES:
        raise InvalidInputError(f"release={o['release']!r} is not one of {', '.join(_RELEASES)}")
    out["release"] = o["release"]
    return out


def _walker_states(
    seed: int | np.random.Generator | np.random.SeedSequence | None, n: int
) -> tuple[int, np.ndarray]:
    """The seed actually used and one xoroshiro128++ state (2 × uint64) per walker.

    Walker ``w`` gets words ``2w, 2w+1`` of the seed sequence's output, which do not
    depend on the number of walkers.
    """
    if isinstance(seed, np.random.SeedSequence):
        ss = seed
    elif isinstance(seed, np.random.Generator):
        ss = np.random.SeedSequence(int(seed.integers(2**63)))
    elif seed is None:
        ss = np.random.SeedSequence()
    elif isinstance(seed, int | np.integer) and not isinstance(seed, bool) and seed >= 0:
        ss = np.random.SeedSequence(int(seed))
    else:
        raise InvalidInputError(
            f"seed must be a non-negative integer, a numpy Generator or None, got {seed!r}"
        )
    entropy = ss.entropy
    seed_used = int(entropy) if isinstance(entropy, int | np.integer) else int(entropy[0])
    states = ss.generate_state(2 * n, np.uint64).reshape(n, 2)
    zero = (states[:, 0] == 0) & (states[:, 1] == 0)
    states[zero, 1] = 1  # the all-zero state is the one state xoroshiro cannot leave
    return seed_used, np.ascontiguousarray(states)


def _spanning_clusters(walk: np.ndarray, boundary: str) -> tuple[np.ndarray, np.ndarray]:
    """Face-connected clusters of ``walk`` and the axes along which each is unbounded.

    Returns ``(spans, labels)``: ``spans[k, a]`` is true when cluster ``k`` (row 0 is
    the walls) extends without bound along axis ``a`` in the image-extended medium.
    Mirror images: a cluster is unbounded along ``a`` iff it touches both faces
    normal to ``a`` (it only ever joins its own images). Periodic images: clusters
    are joined across opposite faces with the shift of the image they join; a
    component is unbounded along ``a`` when some closed loop of joins has a net
    shift along ``a``.
    """
    from scipy import ndimage

    labels, n = ndimage.label(walk, structure=ndimage.generate_binary_structure(3, 1))
    spans = np.zeros((n + 1, 3), dtype=bool)
    if boundary == "mirror":
        for a in range(3):
            lo = np.unique(np.take(labels, 0, axis=a))
            hi = np.unique(np.take(labels, -1, axis=a))
            both = np.intersect1d(lo, hi)
            spans[both[both > 0], a] = True
        return spans, labels
    # periodic: graph of clusters joined across faces, with image shifts
    adj: dict[int, list[tuple[int, tuple[int, int, int]]]] = {}
    for a in range(3):
        lo = np.take(labels, 0, axis=a)
        hi = np.take(labels, -1, axis=a)
        m = (lo > 0) & (hi > 0)
        pairs = np.unique(np.stack([hi[m], lo[m]], axis=1), axis=0) if m.any() else []
        shift = tuple(int(i == a) for i in range(3))
        neg = tuple(-s for s in shift)
        for u, v in pairs:
            adj.setdefault(int(u), []).append((int(v), shift))  # type: ignore[arg-type]
            adj.setdefault(int(v), []).append((int(u), neg))  # type: ignore[arg-type]
    pos: dict[int, tuple[int, int, int]] = {}
    for root in adj:
        if root in pos:
            continue
        pos[root] = (0, 0, 0)
        members = [root]
        unbounded = [False, False, False]
        stack = [root]
        while stack:
            u = stack.pop()
            pu = pos[u]
            for v, s in adj[u]:
                pv = (pu[0] + s[0], pu[1] + s[1], pu[2] + s[2])
                if v not in pos:
                    pos[v] = pv
                    members.append(v)
                    stack.append(v)
                elif pos[v] != pv:
                    for a in range(3):
                        unbounded[a] |= pos[v][a] != pv[a]
        spans[members] = unbounded
    return spans, labels


def _build_grid(
    walk: np.ndarray, release: np.ndarray, boundary: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The padded, flattened ``uint8`` grid of the kernel, its shape and strides.

    Bit 0: walkable; bit 1: release voxel; bits 2-5: number of free layers around the
    voxel (chessboard clearance, through the images, capped at 15).
    """
    from scipy import ndimage

    pad_mode = "symmetric" if boundary == "mirror" else "wrap"
    cap = _CLEARANCE_CAP
    if walk.all():
        clear = np.full(walk.shape, cap, np.uint8)
    else:
        axes = [a for a in range(3) if walk.shape[a] > 1]  # flat axes change nothing
        sub = walk.reshape([walk.shape[a] for a in axes])
        big = np.pad(sub, cap + 1, mode=pad_mode)
        dist = ndimage.distance_transform_cdt(big, metric="chessboard")
        core = dist[tuple(slice(cap + 1, -(cap + 1)) for _ in axes)]
        clear = (np.clip(core, 1, cap + 1) - 1).astype(np.uint8).reshape(walk.shape)
        clear[~walk] = 0
    grid = np.pad(walk.astype(np.uint8), 1, mode=pad_mode)
    grid[1:-1, 1:-1, 1:-1] |= (release.astype(np.uint8) << 1) | (clear << 2)
    p = grid.shape
    strides = np.array([p[1] * p[2], p[2], 1], np.int64)
    return grid.ravel(), np.array(walk.shape, np.int64), strides


def _warm_up(kern: Any, grid, shape, strides, mode, step, states, cell, frac, wrap, sign, start):
    """Compile (or load from cache) the kernel on copies of one walker, untimed."""
    one = slice(0, 1)
    kern.advance(
        grid, shape, strides, mode, step, 1, 1, np.array([0, 1], np.int64),
        states[one].copy(), cell[one].copy(), frac[one].copy(), wrap[one].copy(),
        sign[one].copy(), start[one].copy(), np.zeros((1, 1, 3)), np.zeros((0, 1, 3)),
    )  # fmt: skip


def _quantile_t(df: int, p: float) -> float:
    """Quantile ``p`` of Student's t distribution with ``df`` degrees of freedom."""
    from scipy.special import stdtrit

    return float(stdtrit(df, p))


def _slopes(t: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares slopes of ``y`` (batches, records, axes) against ``t`` (records)."""
    tc = t - t.mean()
    return np.einsum("r,bra->ba", tc, y - y.mean(axis=1, keepdims=True)) / float(tc @ tc)


def _analyse(
    t: np.ndarray, msd_b: np.ndarray, d0: float, fit_from: float, rtol: float
) -> dict[str, Any]:
    """Long-time D/D0 per axis with its CI, and the plateau test (see random_walk)."""
    n_b = msd_b.shape[0]
    t_end = t[-1]
    idx = np.flatnonzero(t >= fit_from * t_end)
    idx = idx[idx > 0]
    if idx.size < 4:
        idx = np.arange(max(1, t.size - 4), t.size)
    half = idx.size // 2
    d_b = _slopes(t[idx], msd_b[:, idx]) / (2.0 * d0)
    d1 = _slopes(t[idx[: half + 1]], msd_b[:, idx[: half + 1]]) / (2.0 * d0)
    d2 = _slopes(t[idx[half:]], msd_b[:, idx[half:]]) / (2.0 * d0)
    tq = _quantile_t(n_b - 1, 0.975)
    d = d_b.mean(axis=0)
    d_ci = tq * d_b.std(axis=0, ddof=1) / math.sqrt(n_b)
    diff = d2 - d1
    drift = diff.mean(axis=0)
    drift_ci = tq * diff.std(axis=0, ddof=1) / math.sqrt(n_b)
    # scale of D along each axis; along a non-percolating axis D -> 0 and the apparent
    # D at the end of the walk (MSD / 2t) sets the scale instead
    scale = np.maximum(np.abs(d), msd_b[:, -1].mean(axis=0) / (2.0 * d0 * t_end))
    reached = np.abs(drift) <= np.maximum(drift_ci, rtol * scale)
    rel_drift = np.divide(drift, scale, out=np.zeros_like(drift), where=scale > 0)
    return {
        "d": d,
        "d_ci": d_ci,
        "drift": rel_drift,
        "reached": reached,
        "window": (t[idx[0]], t[idx[-1]]),
    }
