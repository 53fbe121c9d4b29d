"""NLM denoising: microbat vs scikit-image on a 128^3 electrode phantom, one process.

Prints PSNR, SSIM, wall time, speed ratio and peak memory growth for
``skimage.restoration.denoise_nl_means(fast_mode=True)`` over a small grid of its
settings (its best is the reference) and for ``microbat.imaging.denoise_nlm`` at
its defaults and at the same settings, all on the same cores.

    python benchmarks/bench_nlm.py            # full grid (a few minutes)
    python benchmarks/bench_nlm.py --quick    # the two settings that matter
    python benchmarks/bench_nlm.py --n 96     # smaller volume

The machine may be shared: the ratio is measured back to back in one run, and the
load average is printed with the numbers.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np


def _hwm_mib() -> float:
    """Peak resident set of this process image (VmHWM; not inherited through fork)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024.0
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024.0


def _child(method: str, path: str, ps: int, pd: int, h: float, sigma: float) -> None:
    """Run one filter in this (fresh) process and print its peak memory growth."""
    noisy = np.load(path)
    if method == "skimage":
        from skimage.restoration import denoise_nl_means

        x = noisy.astype(np.float64)  # what skimage works on anyway
        base = _hwm_mib()
        denoise_nl_means(x, patch_size=ps, patch_distance=pd, h=h, sigma=sigma, fast_mode=True)
    else:
        from microbat.imaging import denoise_nlm

        denoise_nlm(noisy[:16, :16, :16], sigma=sigma)  # load the compiled kernels
        base = _hwm_mib()
        denoise_nlm(noisy, patch_size=ps, search_radius=pd, h=h, sigma=sigma)
    peak = _hwm_mib()
    print(peak - base)


def _child_chunked(src: str, dst: str, chunk: int) -> None:
    """Denoise a Zarr volume chunk by chunk into another Zarr; print peak growth."""
    import zarr

    from microbat.imaging import denoise_nlm

    warm = np.random.default_rng(0).normal(size=(16, 16, 16)).astype(np.float32)
    denoise_nlm(warm, chunks=(8, 8, 8))  # load the serial kernel and Dask machinery
    x = zarr.open_array(src, mode="r")
    y = zarr.open_array(dst, mode="w", shape=x.shape, chunks=(chunk,) * 3, dtype="float32")
    base = _hwm_mib()
    denoise_nlm(x, sigma=0.18, chunks=(chunk,) * 3, out=y)
    peak = _hwm_mib()
    print(peak - base)


def chunked_memory(n: int = 320, chunk: int = 32) -> tuple[float, float]:
    """(volume MiB, peak growth MiB) of a chunked out-of-core run in a fresh process."""
    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "in.zarr"), os.path.join(d, "out.zarr")
        import zarr

        z = zarr.open_array(src, mode="w", shape=(n, n, n), chunks=(chunk,) * 3, dtype="float32")
        rng = np.random.default_rng(0)
        for a in range(0, n, chunk):  # written slab by slab: the volume is never whole here
            z[a : a + chunk] = rng.normal(0.5, 0.18, (min(chunk, n - a), n, n)).astype(np.float32)
        out = subprocess.run(
            [sys.executable, __file__, "--chunked-child", src, dst, str(chunk)],
            capture_output=True,
            text=True,
            check=True,
        )
    return n**3 * 4 / 2**20, float(out.stdout.strip().splitlines()[-1])


def peak_mib(method: str, noisy: np.ndarray, ps: int, pd: int, h: float, sigma: float) -> float:
    """Peak memory growth (MiB) of one call, measured in a fresh process."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "noisy.npy")
        np.save(path, noisy)
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                method,
                path,
                str(ps),
                str(pd),
                str(h),
                str(sigma),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    return float(out.stdout.strip().splitlines()[-1])


def make_phantom(n: int, seed: int = 1):
    import microbat.synth as synth

    ms = synth.electrode((n, n, n), voxel_size=0.5e-6, seed=seed)
    clean = synth.phantom(ms, psf_sigma=1.0, seed=seed).image
    ph = synth.phantom(ms, psf_sigma=1.0, snr=4.5, poisson_photons=200, seed=seed + 1)
    return ph.image.astype(np.float32), clean.astype(np.float32), ph.expected_noise_std


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    ap.add_argument("--chunked-child", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--no-chunked", action="store_true", help="skip the out-of-core check")
    args = ap.parse_args()
    if args.chunked_child:
        src, dst, chunk = args.chunked_child
        _child_chunked(src, dst, int(chunk))
        return
    if args.child:
        m, path, ps, pd, h, sigma = args.child
        _child(m, path, int(ps), int(pd), float(h), float(sigma))
        return

    from numba import get_num_threads
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity
    from skimage.restoration import denoise_nl_means

    from microbat.imaging import denoise_nlm, estimate_sigma

    noisy, clean, true_sigma = make_phantom(args.n)
    rng = float(clean.max() - clean.min())
    sigma = estimate_sigma(noisy)
    print(
        f"phantom {args.n}^3, PSF sigma 1, SNR 4.5 (Poisson + Gaussian), noise std "
        f"{true_sigma:.4f}, estimated {sigma:.4f}; numba threads {get_num_threads()}, "
        f"cores {os.cpu_count()}, load {os.getloadavg()[0]:.1f}"
    )

    def score(out):
        return (
            peak_signal_noise_ratio(clean, out.astype(np.float32), data_range=rng),
            structural_similarity(clean, out.astype(np.float32), data_range=rng),
        )

    print(f"noisy input: PSNR {score(noisy)[0]:.2f} dB, SSIM {score(noisy)[1]:.4f}")
    denoise_nlm(noisy[:24, :24, :24], sigma=sigma)  # compile / load the cache

    if args.quick:
        grid = [(5, 3, 0.6), (3, 3, 0.8)]
    else:
        grid = [(ps, pd, hf) for ps in (3, 5) for pd in (2, 3) for hf in (0.6, 0.8, 1.0)]
    rows = []
    header = f"{'method':<10}{'patch':>6}{'dist':>5}{'h/sig':>6}{'PSNR':>8}{'SSIM':>8}"
    header += f"{'time s':>9}{'speed-up':>10}"
    print(header)
    for ps, pd, hf in grid:
        t = time.perf_counter()
        mb = denoise_nlm(noisy, patch_size=ps, search_radius=pd, h=hf * sigma, sigma=sigma)
        t_mb = time.perf_counter() - t
        t = time.perf_counter()
        sk = denoise_nl_means(
            noisy.astype(np.float64),
            patch_size=ps,
            patch_distance=pd,
            h=hf * sigma,
            sigma=sigma,
            fast_mode=True,
        )
        t_sk = time.perf_counter() - t
        p_sk, s_sk = score(sk)
        p_mb, s_mb = score(mb)
        rows.append((ps, pd, hf, p_sk, s_sk, t_sk, p_mb, s_mb, t_mb))
        print(f"{'skimage':<10}{ps:>6}{pd:>5}{hf:>6.1f}{p_sk:>8.2f}{s_sk:>8.4f}{t_sk:>9.2f}")
        print(
            f"{'microbat':<10}{ps:>6}{pd:>5}{hf:>6.1f}{p_mb:>8.2f}{s_mb:>8.4f}{t_mb:>9.2f}"
            f"{t_sk / t_mb:>9.1f}x",
            flush=True,
        )

    best = max(rows, key=lambda r: r[3])
    best_ssim = max(rows, key=lambda r: r[4])
    t = time.perf_counter()
    dflt = denoise_nlm(noisy)
    t_d = time.perf_counter() - t
    p_d, s_d = score(dflt)
    for tag, b in (("PSNR", best), ("SSIM", best_ssim)):
        print(
            f"\nscikit-image best by {tag}: patch {b[0]}, distance {b[1]}, h {b[2]} sigma: "
            f"PSNR {b[3]:.2f} dB, SSIM {b[4]:.4f}, {b[5]:.2f} s"
        )
        print(
            f"microbat, same settings: PSNR {b[6]:.2f} dB, SSIM {b[7]:.4f}, {b[8]:.2f} s "
            f"-> {b[5] / b[8]:.1f}x faster"
        )
    print(
        f"\nmicrobat defaults (patch 5, radius 3, h 0.6 sigma, sigma estimated): PSNR {p_d:.2f} "
        f"dB, SSIM {s_d:.4f}, {t_d:.2f} s"
    )
    ps, pd, hf = best_ssim[0], best_ssim[1], best_ssim[2]
    mem_sk = peak_mib("skimage", noisy, ps, pd, hf * sigma, sigma)
    mem_mb = peak_mib("microbat", noisy, ps, pd, hf * sigma, sigma)
    print(
        f"peak memory growth of one call at patch {ps}, distance {pd} (fresh processes, input "
        f"{noisy.nbytes / 2**20:.0f} MiB float32): scikit-image {mem_sk:.0f} MiB, "
        f"microbat {mem_mb:.0f} MiB"
    )
    if not args.no_chunked:
        vol_mib, grow = chunked_memory()
        print(
            f"out of core: a {vol_mib:.0f} MiB float32 Zarr volume (320^3) denoised in 32^3 "
            f"chunks (Dask threads) Zarr to Zarr grew the process by {grow:.0f} MiB "
            f"({vol_mib / max(grow, 1e-9):.1f}x less than the volume)"
        )


if __name__ == "__main__":
    main()
