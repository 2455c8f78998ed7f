"""PSNR and SSIM against known answers and against a plain, independent implementation of Wang et al. 2004."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from scipy.signal import convolve2d

from vcscodec.errors import VcsError
from vcscodec.metrics import psnr, ssim, to_uint8
from vcscodec.samples import camera_pan


def reference_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al. 2004 written out: 11×11 Gaussian σ 1.5, K1 0.01, K2 0.03, L 255, 'valid' filtering."""
    x = np.arange(11) - 5.0
    g = np.exp(-(x**2) / (2 * 1.5**2))
    window = np.outer(g, g)
    window /= window.sum()

    def filt(img: np.ndarray) -> np.ndarray:
        return convolve2d(img, window, mode="valid")

    a = a.astype(np.float64)
    b = b.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = filt(a), filt(b)
    var_a = filt(a * a) - mu_a**2
    var_b = filt(b * b) - mu_b**2
    cov = filt(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())


def reference_psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


@pytest.fixture(scope="module")
def picture() -> np.ndarray:
    return camera_pan(1, 99, 61, image="coffee")[0].y


def test_identical_frames(picture):
    assert psnr(picture, picture) == float("inf")
    assert ssim(picture, picture) == pytest.approx(1.0, abs=1e-12)
    flat = np.full((20, 30), 77, np.uint8)
    assert psnr(flat, flat.astype(np.float32)) == float("inf")
    assert ssim(flat, flat) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("d", [1, 2, 5, 10, 37])
def test_constant_offset_gives_exact_psnr(d):
    rng = np.random.default_rng(d)
    ref = rng.integers(0, 256 - d, (61, 99), dtype=np.uint8)
    assert psnr(ref, ref + np.uint8(d)) == pytest.approx(20 * math.log10(255 / d), rel=0, abs=1e-12)
    assert psnr(ref + np.uint8(d), ref) == pytest.approx(20 * math.log10(255 / d), rel=0, abs=1e-12)


def test_peak_argument():
    ref = np.zeros((8, 8), np.uint8)
    assert psnr(ref, ref + 2, peak=1.0) == pytest.approx(20 * math.log10(1 / 2), abs=1e-12)


def test_float_inputs_are_rounded_and_clipped(picture):
    ref = picture.astype(np.float64)
    assert psnr(picture, ref + 0.49) == float("inf")
    assert psnr(picture, ref - 0.49) == float("inf")
    ones = np.full((16, 16), 100, np.uint8)
    assert psnr(ones, np.full((16, 16), 100.6)) == pytest.approx(20 * math.log10(255), abs=1e-12)
    # 300 and -7 are what the writer would store as 255 and 0.
    assert psnr(np.array([[255, 0]], np.uint8), np.array([[300.0, -7.0]])) == float("inf")
    assert to_uint8(np.array([2.5, 3.5, -1.0, 256.0])).tolist() == [2, 4, 0, 255]
    # what cannot be 8-bit grey levels is refused, not scored as if it were (it looked plausible and meant nothing)
    with pytest.raises(VcsError, match="int32 values from -5 to 300: not 8-bit"):
        to_uint8(np.array([-5, 300], np.int32))
    with pytest.raises(VcsError, match=r"values in \[0, 1\].*multiply by 255"):
        psnr(picture / 255.0, ref / 255.0)  # a network's pixels: 54.9 dB for what is 15 dB
    with pytest.raises(VcsError, match="NaN"):
        psnr(picture, np.full(picture.shape, np.nan))
    assert to_uint8(np.array([0.0, 1.0, 1.0])).tolist() == [0, 1, 1]  # whole numbers in [0, 1] are grey levels


@pytest.mark.parametrize("sigma, seed", [(2.0, 0), (10.0, 1), (40.0, 2)])
def test_noise_matches_independent_implementation(picture, sigma, seed):
    rng = np.random.default_rng(seed)
    noisy = np.clip(np.round(picture + rng.normal(0, sigma, picture.shape)), 0, 255).astype(np.uint8)
    assert psnr(picture, noisy) == pytest.approx(reference_psnr(picture, noisy), abs=1e-4)
    assert abs(ssim(picture, noisy) - reference_ssim(picture, noisy)) < 1e-6
    assert ssim(picture, noisy) == pytest.approx(ssim(noisy, picture), abs=1e-12)


def test_uniform_noise_pair_and_blur_match_independent_implementation(picture):
    rng = np.random.default_rng(9)
    a = rng.integers(0, 256, (40, 57), dtype=np.uint8)
    b = rng.integers(0, 256, (40, 57), dtype=np.uint8)
    assert abs(ssim(a, b) - reference_ssim(a, b)) < 1e-6
    assert abs(ssim(a, b)) < 0.1  # independent noise shares no structure
    blurred = gaussian_filter(picture.astype(np.float64), 1.2)  # float: scored after rounding
    rounded = np.round(blurred).astype(np.uint8)
    assert abs(ssim(picture, blurred) - reference_ssim(picture, rounded)) < 1e-6
    assert 0.3 < ssim(picture, blurred) < 0.99


@pytest.mark.parametrize("a, b", [(50, 60), (0, 255), (128, 128), (16, 235)])
def test_ssim_of_flat_frames_is_the_luminance_term(a, b):
    # No variance anywhere: SSIM reduces to (2ab + C1) / (a² + b² + C1) at every position.
    c1 = (0.01 * 255) ** 2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    x, y = np.full((24, 31), a, np.uint8), np.full((24, 31), b, np.uint8)
    assert ssim(x, y) == pytest.approx(expected, abs=1e-9)


def test_ssim_window_and_covariance_are_the_papers(picture):
    # The defaults of scikit-image (7×7 uniform window, sample covariance) give a different number.
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(3)
    noisy = np.clip(picture + rng.normal(0, 12, picture.shape), 0, 255).round().astype(np.uint8)
    default = structural_similarity(picture, noisy, data_range=255)
    assert abs(ssim(picture, noisy) - default) > 1e-3


def test_bad_inputs():
    with pytest.raises(VcsError, match="shapes"):
        psnr(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(VcsError, match="at least 11x11"):
        ssim(np.zeros((10, 40)), np.zeros((10, 40)))
    with pytest.raises(VcsError, match="2-D"):
        ssim(np.zeros((3, 20, 20)), np.zeros((3, 20, 20)))
