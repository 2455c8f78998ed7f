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
# Networks", 2017), since small errors keep a gradient of full size.
LOSSES = ("mse", "frame-psnr", "charbonnier")
# Charbonnier's ε: a tenth of a grey level (pixels in [0, 1]), far below the errors at 40 dB (2.5 grey levels).
_CHARBONNIER_EPS = 0.1 / 255
# Keeps log10 finite for an exact frame: 100 dB, far above any frame a codec of this kind rebuilds.
_FRAME_MSE_FLOOR = 1e-10


def loss_term(rebuilt: torch.Tensor, target: torch.Tensor, loss: str = "mse") -> torch.Tensor:
    """One term of the loss, in fp32 (under bf16 autocast the reconstructions are bf16, and CUDA's mse_loss
    backward refuses a bf16 input with an fp32 target): the mean squared error over pixels for "mse", the mean
    over frames (…, H, W) of 10·log10 of each frame's mean squared error for "frame-psnr", the mean over pixels of
    √(d² + ε²) for "charbonnier"."""
    if loss == "mse":
        return F.mse_loss(rebuilt.float(), target)
    if loss == "frame-psnr":
        frame_mse = (rebuilt.float() - target).pow(2).mean((-2, -1))
        return 10 * torch.log10(frame_mse + _FRAME_MSE_FLOOR).mean()
    if loss == "charbonnier":
        return torch.sqrt((rebuilt.float() - target).pow(2) + _CHARBONNIER_EPS**2).mean()
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
