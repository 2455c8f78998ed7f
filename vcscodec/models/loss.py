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
    key_term = F.mse_loss(rec.key_initial, keys) + F.mse_loss(rec.key, keys)
    non_term = F.mse_loss(rec.non_initial, non) + F.mse_loss(rec.non, non)  # mean over K = the 1/K average
    return key_term + non_term
