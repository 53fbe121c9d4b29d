"""Segmentation validation and speed: the table of docs/validation/imaging.md.

On synthetic electrodes (``microbat.synth.electrode``: 55 % active, 10 %
carbon-binder at necks, 35 % pore) rendered with a Gaussian PSF of sigma = 1 voxel
and Poisson + Gaussian noise at active/pore SNR 3, 4.5 and 5, it reports voxel
accuracy, per-phase Dice and volume-fraction error for multi-Otsu and the mixture
variants, raw and after NLM, then the time of a 256^3 segmentation.

    python benchmarks/bench_segment.py               # 128^3, SNR 3, 4.5, 5
    python benchmarks/bench_segment.py --snr 4.5 --n 96
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np


def make(n: int, snr: float, seed: int):
    import microbat.synth as synth

    ms = synth.electrode((n, n, n), voxel_size=0.5e-6, seed=seed)
    ph = synth.phantom(ms, psf_sigma=1.0, snr=snr, poisson_photons=200, seed=seed + 100)
    return np.asarray(ms.labels), ph.image


def scores(lab_pred: np.ndarray, truth: np.ndarray) -> tuple[float, list[float], list[float]]:
    acc = float((lab_pred == truth).mean())
    dice, dfrac = [], []
    for k in range(3):
        p, t = lab_pred == k, truth == k
        dice.append(2.0 * float((p & t).sum()) / max(float(p.sum() + t.sum()), 1.0))
        dfrac.append(100.0 * (float(p.mean()) - float(t.mean())))
    return acc, dice, dfrac


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--snr", type=float, nargs="*", default=[3.0, 4.5, 5.0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-speed", action="store_true")
    args = ap.parse_args()

    from microbat.imaging.denoise import denoise_nlm
    from microbat.imaging.segmentation import multi_otsu_segment, segment

    print(f"cores {os.cpu_count()}, load {os.getloadavg()[0]:.1f}")
    seg_kw = {"voxel_size": 0.5e-6}
    variants = [
        ("multi-Otsu", "raw", lambda im: multi_otsu_segment(im, **seg_kw)),
        (
            "GMM free var. (plain)",
            "raw",
            lambda im: segment(
                im, variance="free", partial_volume=False, spatial_prior="none", **seg_kw
            ),
        ),
        ("GMM tied + PV", "raw", lambda im: segment(im, spatial_prior="none", **seg_kw)),
        ("GMM tied + PV + Potts", "raw", lambda im: segment(im, beta=0.75, **seg_kw)),
        ("NLM + multi-Otsu", "nlm", lambda im: multi_otsu_segment(im, **seg_kw)),
        (
            "NLM + GMM free var. (plain)",
            "nlm",
            lambda im: segment(
                im, variance="free", partial_volume=False, spatial_prior="none", **seg_kw
            ),
        ),
        (
            "NLM + GMM tied",
            "nlm",
            lambda im: segment(im, partial_volume=False, spatial_prior="none", **seg_kw),
        ),
        ("NLM + GMM tied + PV", "nlm", lambda im: segment(im, spatial_prior="none", **seg_kw)),
        ("NLM + GMM + Potts", "nlm", lambda im: segment(im, beta=0.75, **seg_kw)),
        (
            "NLM + GMM + Potts + PSF (sigma=1) = reconstruct()",
            "nlm",
            lambda im: segment(im, beta=2.0, psf_sigma=1.0, **seg_kw),
        ),
        (
            "NLM + GMM + Potts + PSF (auto)",
            "nlm",
            lambda im: segment(im, beta=2.0, psf_sigma="auto", **seg_kw),
        ),
    ]
    for snr in args.snr:
        truth, img = make(args.n, snr, args.seed)
        t = time.perf_counter()
        den = denoise_nlm(img)
        t_nlm = time.perf_counter() - t
        tf = [100 * float((truth == k).mean()) for k in range(3)]
        print(
            f"\n### SNR {snr:g} ({args.n}^3, seed {args.seed}; true fractions pore "
            f"{tf[0]:.1f} %, cbd {tf[1]:.1f} %, active {tf[2]:.1f} %; NLM {t_nlm:.1f} s)\n"
        )
        print(
            "| method | accuracy | Dice pore | Dice cbd | Dice active | Δφ pore | Δφ cbd "
            "| Δφ active | time s |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for name, src, fn in variants:
            im = img if src == "raw" else den
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = fn(im)
            dt = time.perf_counter() - t
            acc, dice, dfrac = scores(np.asarray(res.labels), truth)
            print(
                f"| {name} | {100 * acc:.1f} % | {dice[0]:.3f} | {dice[1]:.3f} | "
                f"{dice[2]:.3f} | {dfrac[0]:+.1f} | {dfrac[1]:+.1f} | {dfrac[2]:+.1f} | "
                f"{dt:.1f} |",
                flush=True,
            )

    if args.no_speed:
        return
    truth, img = make(128, 4.5, args.seed)
    big = np.tile(img, (2, 2, 2))  # 256^3 with the statistics of the phantom
    segment(img[:32, :32, :32], **seg_kw)  # compile / load the cache
    print(f"\n256^3 segmentation (fit + classify), load {os.getloadavg()[0]:.1f}:")
    for name, fn in [
        ("multi-Otsu", lambda: multi_otsu_segment(big, **seg_kw)),
        ("GMM + Bayes (no prior)", lambda: segment(big, spatial_prior="none", **seg_kw)),
        ("GMM + Bayes + Potts ICM", lambda: segment(big, **seg_kw)),
        ("GMM + Potts + PSF refinement", lambda: segment(big, beta=2.0, psf_sigma=1.0, **seg_kw)),
    ]:
        t = time.perf_counter()
        fn()
        print(f"  {name:<32}{time.perf_counter() - t:6.2f} s", flush=True)


if __name__ == "__main__":
    main()
