"""The end-to-end loss of paper section 2.3."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .hitvcsnet import Reconstruction, chain_targets


def reconstruction_terms(initial: torch.Tensor, deep: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """‖I − X‖² + ‖D − X‖² as means over pixels, in fp32: under bf16 autocast the reconstructions are bf16, and
    CUDA's mse_loss backward refuses a bf16 input with an fp32 target."""
    return F.mse_loss(initial.float(), target) + F.mse_loss(deep.float(), target)


def hitvcsnet_loss(rec: Reconstruction, frames: torch.Tensor, gop: int) -> torch.Tensor:
    """Σ over GOPs of ‖I_k − X_k‖² + ‖D_k − X_k‖² + (1/K) Σ_i (‖I_n^i − X_n^i‖² + ‖D_n^i − X_n^i‖²).

    Squared errors are taken as means over pixels (scale-free in frame size) and the sum over GOPs as a mean
    over the batch, so the learning rate does not depend on the crop or batch size. The keyframe terms cover
    every keyframe of the chain, the next GOP's included.
    """
    keys, non = chain_targets(frames, gop)
    # The mean over K is the 1/K average.
    return reconstruction_terms(rec.key_initial, rec.key, keys) + reconstruction_terms(rec.non_initial, rec.non, non)
