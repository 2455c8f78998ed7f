"""The end-to-end loss of paper section 2.3."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .hitvcsnet import Reconstruction, chain_targets

# optim.loss: "mse" is the paper's. "frame-psnr" is the mean over frames of 10·log10 of each frame's MSE: minus
# the mean per-frame PSNR the bench reports (pixels in [0, 1]). Under the MSE the frames with the largest errors
# set the gradient, and a network learns to spend nearly exact frames (still scenes) to buy them. "charbonnier" is
# a smooth L1, √(d² + ε²) per pixel: restoration networks trained under L1 have been found to reach a higher PSNR
# than under the MSE they are scored by (Zhao et al., "Loss Functions for Image Restoration with Neural
# Networks", 2017), since small errors keep a gradient of full size. "ssim-l1" is that paper's mix, 0.84·(1 − SSIM)
# + 0.16·L1, with the SSIM the bench scores (models/loss.py's ``frame_ssim``, metrics.ssim's window): the codec's
# SSIM trails the paper's by more than its PSNR does, and neither MSE nor L1 sees structure.
LOSSES = ("mse", "frame-psnr", "charbonnier", "ssim-l1")
# Charbonnier's ε: a tenth of a grey level (pixels in [0, 1]), far below the errors at 40 dB (2.5 grey levels).
_CHARBONNIER_EPS = 0.1 / 255
# Zhao et al.'s weight of the SSIM term in their mix (the rest is L1).
_SSIM_SHARE = 0.84
# Keeps log10 finite for an exact frame: 100 dB, far above any frame a codec of this kind rebuilds.
_FRAME_MSE_FLOOR = 1e-10


def frame_ssim(rebuilt: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The mean SSIM of each frame (…, H, W) of pixels in [0, 1], as ``metrics.ssim`` defines it (an 11×11 Gaussian
    window of σ 1.5, K1 0.01, K2 0.03, population statistics, 'valid' filtering, the mean of the map) but without
    rounding to 8 bits, so that it has a gradient. Returns a tensor of shape (…)."""
    from ..metrics import SSIM_K1, SSIM_K2, SSIM_SIGMA, SSIM_WINDOW

    height, width = rebuilt.shape[-2:]
    if min(height, width) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs frames of at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {width}x{height}")
    taps = torch.arange(SSIM_WINDOW, dtype=torch.float32, device=rebuilt.device) - SSIM_WINDOW // 2
    gauss = torch.exp(-(taps**2) / (2 * SSIM_SIGMA**2))
    gauss = gauss / gauss.sum()
    lead = rebuilt.shape[:-2]
    x = rebuilt.float().reshape(-1, 1, height, width)
    y = target.float().reshape(-1, 1, height, width)
    rows, cols = gauss.view(1, 1, -1, 1), gauss.view(1, 1, 1, -1)

    def window_mean(a: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(a, rows), cols)  # separable, 'valid'

    mu_x, mu_y = window_mean(x), window_mean(y)
    var_x = window_mean(x * x) - mu_x**2
    var_y = window_mean(y * y) - mu_y**2
    cov = window_mean(x * y) - mu_x * mu_y
    c1, c2 = SSIM_K1**2, SSIM_K2**2  # (K·L)² with L = 1
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.mean((-3, -2, -1)).reshape(lead)


def loss_term(rebuilt: torch.Tensor, target: torch.Tensor, loss: str = "mse") -> torch.Tensor:
    """One term of the loss, in fp32 (under bf16 autocast the reconstructions are bf16, and CUDA's mse_loss
    backward refuses a bf16 input with an fp32 target): the mean squared error over pixels for "mse", the mean
    over frames (…, H, W) of 10·log10 of each frame's mean squared error for "frame-psnr", the mean over pixels of
    √(d² + ε²) for "charbonnier", 0.84·(1 − mean SSIM) + 0.16·mean |d| for "ssim-l1"."""
    if loss == "mse":
        return F.mse_loss(rebuilt.float(), target)
    if loss == "frame-psnr":
        frame_mse = (rebuilt.float() - target).pow(2).mean((-2, -1))
        return 10 * torch.log10(frame_mse + _FRAME_MSE_FLOOR).mean()
    if loss == "charbonnier":
        return torch.sqrt((rebuilt.float() - target).pow(2) + _CHARBONNIER_EPS**2).mean()
    if loss == "ssim-l1":
        l1 = (rebuilt.float() - target).abs().mean()
        return _SSIM_SHARE * (1 - frame_ssim(rebuilt, target).mean()) + (1 - _SSIM_SHARE) * l1
    raise ValueError(f"loss {loss!r} is not one of {', '.join(LOSSES)}")


def reconstruction_terms(
    initial: torch.Tensor, deep: torch.Tensor, target: torch.Tensor, loss: str = "mse"
) -> torch.Tensor:
    """‖I − X‖² + ‖D − X‖², each a ``loss_term``."""
    return loss_term(initial, target, loss) + loss_term(deep, target, loss)


def hitvcsnet_loss(rec: Reconstruction, frames: torch.Tensor, gop: int, loss: str = "mse") -> torch.Tensor:
    """Σ over GOPs of ‖I_k − X_k‖² + ‖D_k − X_k‖² + (1/K) Σ_i (‖I_n^i − X_n^i‖² + ‖D_n^i − X_n^i‖²).

    Squared errors are taken as means over pixels (scale-free in frame size) and the sum over GOPs as a mean
    over the batch, so the learning rate does not depend on the crop or batch size. The keyframe terms cover
    every keyframe of the chain, the next GOP's included. ``loss`` = "frame-psnr" takes each term per frame, in dB.
    """
    keys, non = chain_targets(frames, gop)
    # The mean over K is the 1/K average.
    return reconstruction_terms(rec.key_initial, rec.key, keys, loss) + reconstruction_terms(
        rec.non_initial, rec.non, non, loss
    )
