"""The end-to-end loss of paper section 2.3."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .hitvcsnet import Reconstruction, chain_targets


def hitvcsnet_loss(rec: Reconstruction, frames: torch.Tensor, gop: int) -> torch.Tensor:
    """Σ over GOPs of ‖I_k − X_k‖² + ‖D_k − X_k‖² + (1/K) Σ_i (‖I_n^i − X_n^i‖² + ‖D_n^i − X_n^i‖²).

    Squared errors are taken as means over pixels (scale-free in frame size) and the sum over GOPs as a mean
    over the batch, so the learning rate does not depend on the crop or batch size. The keyframe terms cover
    every keyframe of the chain, the next GOP's included.
    """
    keys, non = chain_targets(frames, gop)
    # In fp32: under bf16 autocast the reconstructions are bf16, and CUDA's mse_loss backward refuses mixed dtypes.
    key_term = F.mse_loss(rec.key_initial.float(), keys) + F.mse_loss(rec.key.float(), keys)
    # The mean over K is the 1/K average.
    non_term = F.mse_loss(rec.non_initial.float(), non) + F.mse_loss(rec.non.float(), non)
    return key_term + non_term
