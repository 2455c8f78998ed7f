"""The uniform quantizer: exact rounding, round trips, errors, and the default step's PSNR budget."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vcscodec.errors import VcsError
from vcscodec.quant import (
    DEFAULT_QUANT_STEP,
    Q_MAX,
    dequantize,
    noise_variance,
    psnr_cost_db,
    quantize,
)


def test_rounds_half_to_even() -> None:
    # step 255 makes y * 255 / step == y exactly, so the halves are exact halves.
    y = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 0.49999999, 0.50000001, 3.0], np.float64)
    np.testing.assert_array_equal(quantize(y, 255.0), [0, 2, 2, 0, -2, 0, 1, 3])


def test_known_values_and_dtypes() -> None:
    y = np.array([[0.0, 1.0 / 255, 10.0 / 255], [-2.6 / 255, 31.9, -31.9]], np.float32)
    q = quantize(y, 1.3)
    assert q.dtype == np.int32 and q.shape == (2, 3)
    np.testing.assert_array_equal(q, [[0, 1, 8], [-2, 6257, -6257]])
    back = dequantize(q, 1.3)
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, np.array([[0, 1.3, 10.4], [-2.6, 8134.1, -8134.1]]) / 255, rtol=1e-6)


def test_matches_the_float64_formula_bit_for_bit() -> None:
    """The documented formula, evaluated independently, gives the same integers."""
    rng = np.random.default_rng(1)
    y = (rng.standard_normal((64, 9, 11)) * 3).astype(np.float32)
    for step in (DEFAULT_QUANT_STEP, 0.37, 4.0):
        expected = np.array([round(float(v) * 255.0 / step) for v in y.ravel()]).reshape(y.shape)
        np.testing.assert_array_equal(quantize(y, step), expected)  # Python round() is half-even


def test_round_trip_error_is_at_most_half_a_step() -> None:
    rng = np.random.default_rng(2)
    y = rng.uniform(-32, 32, 10000)
    for step in (0.5, DEFAULT_QUANT_STEP, 8.0):
        err = np.abs(dequantize(quantize(y, step), step).astype(np.float64) - y) * 255
        assert err.max() <= step / 2 * (1 + 1e-5)
        # Uniform error over [-step/2, step/2]: variance step²/12 (what the noise model assumes).
        assert math.isclose(np.mean(err**2), step**2 / 12, rel_tol=0.05)


@pytest.mark.parametrize("step", [0, -1.0, math.nan, math.inf, 65536.0, True, "1.3", None])
def test_bad_step(step: object) -> None:
    with pytest.raises(VcsError, match="quantizer step"):
        quantize(np.zeros(3), step)  # type: ignore[arg-type]
    with pytest.raises(VcsError, match="quantizer step"):
        dequantize(np.zeros(3, np.int32), step)  # type: ignore[arg-type]


def test_bad_inputs() -> None:
    with pytest.raises(VcsError, match="^measurements contain NaN or infinity$"):
        quantize(np.array([0.0, np.nan]), 1.0)
    with pytest.raises(VcsError, match=f"^quantized measurement .* exceeds ±{Q_MAX}"):
        quantize(np.array([1e6]), 0.1)
    with pytest.raises(VcsError, match="^quantized measurements must be integers"):
        dequantize(np.array([1.0]), 1.0)
    with pytest.raises(VcsError, match="^measurements must be a numeric array"):
        quantize(np.array(["a"]), 1.0)
    assert quantize(np.zeros((0, 2, 3)), 1.0).shape == (0, 2, 3)


def test_noise_model_numbers() -> None:
    assert noise_variance(1.3, 0.5) == pytest.approx(0.0704167, rel=1e-5)
    assert psnr_cost_db(1.3, 0.5, 40.0) == pytest.approx(0.04678, abs=1e-5)


def test_default_step_is_the_largest_under_budget_at_40_db() -> None:
    """The documented choice: the largest step on a 0.05 grid costing < 0.05 dB for keyframes at 40 dB."""
    assert DEFAULT_QUANT_STEP == 1.3
    assert psnr_cost_db(DEFAULT_QUANT_STEP, 0.5, 40.0) < 0.05
    assert psnr_cost_db(DEFAULT_QUANT_STEP + 0.05, 0.5, 40.0) > 0.05
    assert psnr_cost_db(DEFAULT_QUANT_STEP, 0.5, 35.0) < 0.02
    assert psnr_cost_db(DEFAULT_QUANT_STEP, 0.1, 40.0) < 0.01  # non-keyframes: far inside the budget


def _dct_phi(m: int, b: int = 32) -> np.ndarray:
    """The m lowest-frequency rows (by u+v) of the orthonormal 2-D DCT-II of a b×b block."""
    n = np.arange(b)
    c = np.sqrt(2.0 / b) * np.cos(np.pi * (2 * n[None, :] + 1) * n[:, None] / (2 * b))
    c[0] /= np.sqrt(2.0)
    order = sorted(((u, v) for u in range(b) for v in range(b)), key=lambda t: (t[0] + t[1], t[0]))[:m]
    return np.array([np.outer(c[u], c[v]).ravel() for u, v in order])


def test_default_step_cost_measured_with_a_linear_decoder() -> None:
    """Cameraman pan, keyframe ratio 0.5, x̂ = Φᵀy: ~37.8 dB, and the default step costs ~0.028 dB."""
    from skimage.data import camera

    phi = _dct_phi(512)
    assert np.allclose(phi @ phi.T, np.eye(512), atol=1e-10)
    img = camera().astype(np.float64) / 255
    mse_float = mse_quant = 0.0
    for t in range(4):
        x = img[40 + t : 296 + t, 60 + 2 * t : 380 + 2 * t]
        blocks = x.reshape(8, 32, 10, 32).transpose(0, 2, 1, 3).reshape(8, 10, 1024)
        y = np.einsum("mk,hwk->mhw", phi, blocks).astype(np.float32)
        for meas, acc in ((y, "f"), (dequantize(quantize(y, DEFAULT_QUANT_STEP), DEFAULT_QUANT_STEP), "q")):
            xh = np.einsum("mk,mhw->hwk", phi, meas.astype(np.float64))
            xh = xh.reshape(8, 10, 32, 32).transpose(0, 2, 1, 3).reshape(256, 320)
            mse = np.mean((xh - x) ** 2)
            if acc == "f":
                mse_float += mse
            else:
                mse_quant += mse
    psnr_float = 10 * math.log10(4 / mse_float)
    cost = psnr_float - 10 * math.log10(4 / mse_quant)
    assert 36.0 < psnr_float < 40.0
    assert 0.015 < cost < 0.05
    assert cost == pytest.approx(psnr_cost_db(DEFAULT_QUANT_STEP, 0.5, psnr_float), abs=0.008)
