"""PSNR and SSIM as the paper's test protocol computes them (see docs and facts: "The paper's test protocol").

Both take one plane (normally luma) of a reference and a test frame, in 8-bit grey levels. Float arrays are
rounded to the nearest integer and clipped to [0, 255], so a decoder's float output is scored as the 8-bit video
it would be written as; what cannot be grey levels is refused (`to_uint8`).
"""

from __future__ import annotations

import numpy as np

from vcscodec.errors import VcsError

__all__ = ["psnr", "ssim", "to_uint8"]

SSIM_WINDOW = 11  # 11×11 Gaussian window: σ 1.5, truncated at 3.5σ → radius 5
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03  # Wang et al.'s stabilising constants, times the data range


def to_uint8(a: np.ndarray) -> np.ndarray:
    """`a` as uint8: floats rounded (half to even, as numpy does) and clipped, as a decoder's output is written.
    What cannot be 8-bit grey levels is refused rather than scored as if it were (a score of it would look
    plausible and mean nothing): integers beyond 0..255 (10-bit samples) and NaN. Two pictures both in [0, 1] with
    fractions (a network's pixels, 8-bit values / 255) are refused by `psnr` and `ssim`, which see both."""
    a = np.asarray(a)
    if a.dtype == np.uint8:
        return a
    if np.issubdtype(a.dtype, np.floating):
        if a.size and np.isnan(a).any():
            raise VcsError("cannot score an array with NaN values")
        a = np.round(a)
    elif np.issubdtype(a.dtype, np.integer):
        if a.size and (a.min() < 0 or a.max() > 255):
            raise VcsError(f"cannot score {a.dtype} values from {a.min()} to {a.max()}: not 8-bit grey levels")
    elif a.dtype != np.bool_:
        raise VcsError(f"cannot score an array of type {a.dtype}")
    return np.clip(a, 0, 255).astype(np.uint8)


def _unit_range(a: np.ndarray) -> bool:
    """Whether ``a`` holds floats in [0, 1] with a fraction: a network's pixels (8-bit values / 255)."""
    return bool(np.issubdtype(a.dtype, np.floating) and a.size and a.min() >= 0 and a.max() <= 1 and np.any(a % 1))


def _pair(ref: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref, test = np.asarray(ref), np.asarray(test)
    if _unit_range(ref) and _unit_range(test):  # both: one dark 8-bit picture alone can lie in [0, 1]
        raise VcsError("cannot score values in [0, 1]: scores are on 8-bit grey levels (multiply by 255)")
    r, t = to_uint8(ref), to_uint8(test)
    if r.shape != t.shape:
        raise VcsError(f"cannot compare frames of shapes {r.shape} and {t.shape}")
    if r.size == 0:
        raise VcsError("cannot score an empty frame")
    return r, t


def psnr(ref: np.ndarray, test: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB, 10·log10(peak² / MSE), over all pixels after rounding to 8 bits; no border is cropped.

    Identical inputs give float('inf'). Average per-frame values yourself (the paper's score is the mean
    of per-frame PSNRs, not the PSNR of the pooled MSE that ffmpeg's psnr filter reports).
    """
    r, t = _pair(ref, test)
    mse = float(np.mean((r.astype(np.float64) - t.astype(np.float64)) ** 2))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(peak * peak / mse))


def check_ssim_size(width: int, height: int) -> None:
    """Refuse a plane too small for SSIM's window: before decoding or reading a whole video, not after."""
    if min(width, height) < SSIM_WINDOW:
        raise VcsError(f"SSIM needs a plane of at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {width}x{height}")


def ssim(ref: np.ndarray, test: np.ndarray) -> float:
    """Mean SSIM of Wang, Bovik, Sheikh & Simoncelli (2004) on a 2-D plane after rounding to 8 bits.

    Reproduced exactly: an 11×11 Gaussian window with σ = 1.5 (normalised), K1 = 0.01, K2 = 0.03, L = 255,
    population (1/N) variances and covariance, statistics only where the window lies wholly inside the
    picture ('valid' filtering: a 5-pixel border of the map is dropped), and the plain mean of that map.
    Computed by scikit-image's `structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255)`, which is what the paper's evaluation code matches.
    Not applied: the automatic downsampling by round(min(H, W) / 256) in Wang's published ssim.m, which
    is a no-op at CIF (352×288) anyway. Planes smaller than 11×11 raise VcsError.
    """
    from skimage.metrics import structural_similarity

    r, t = _pair(ref, test)
    if r.ndim != 2:
        raise VcsError(f"SSIM takes one 2-D plane, got shape {r.shape}")
    check_ssim_size(r.shape[1], r.shape[0])
    return float(
        structural_similarity(
            r.astype(np.float64),
            t.astype(np.float64),
            gaussian_weights=True,
            sigma=SSIM_SIGMA,
            use_sample_covariance=False,
            data_range=255,
            K1=SSIM_K1,
            K2=SSIM_K2,
        )
    )
