"""Linear (KLT) initialisation: the network starts at the quality of the best linear decoder, not from noise."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .hitvcsnet import HITVCSNet, InitialReconstruction


def klt_basis(second_moment: np.ndarray) -> np.ndarray:
    """Eigenvectors of a B²×B² second-moment matrix, strongest first, as rows (an orthonormal Φ)."""
    values, vectors = np.linalg.eigh(second_moment)
    order = np.argsort(values)[::-1]
    basis = vectors[:, order].T
    # A fixed sign (largest entry positive) makes the basis reproducible across LAPACK builds.
    signs = np.sign(basis[np.arange(len(basis)), np.abs(basis).argmax(axis=1)])
    return basis * signs[:, None]


def dct_basis(block: int = 32) -> np.ndarray:
    """The orthonormal 2-D DCT-II of B×B blocks as rows, lowest frequencies (u + v) first: a data-free Φ."""
    n = np.arange(block)
    dct = np.sqrt(2 / block) * np.cos(np.pi * (2 * n[None, :] + 1) * n[:, None] / (2 * block))
    dct[0] /= np.sqrt(2)
    order = sorted(((u, v) for u in range(block) for v in range(block)), key=lambda uv: (uv[0] + uv[1], uv))
    return np.stack([np.outer(dct[u], dct[v]).reshape(-1) for u, v in order])


def _set_upsampling(initial: InitialReconstruction, phi: torch.Tensor, block: int) -> None:
    """Φ_B of every scale = (average pooling to Bs×Bs) ∘ Φᵀ, the least-squares inverse of an orthonormal Φ."""
    m = phi.shape[0]
    blocks = phi.view(m, 1, block, block)  # each row of Φ as a B×B block
    for conv, bs in zip(initial.upsample, initial.block_sizes, strict=True):
        pooled = F.avg_pool2d(blocks, block // bs) if bs != block else blocks  # (m, 1, bs, bs)
        conv.weight.data.copy_(pooled.reshape(m, bs * bs).T.reshape(bs * bs, m, 1, 1))


@torch.no_grad()
def init_linear(model: HITVCSNet, phi_k: np.ndarray, phi_n: np.ndarray) -> None:
    """Set Sk, Sn to the given rows (m, B²) and the initial reconstructions to their transposes."""
    b = model.config.block
    for conv, init, phi in (
        (model.sampling.key, model.initial_key, phi_k),
        (model.sampling.non, model.initial_non, phi_n),
    ):
        rows = torch.as_tensor(phi[: conv.out_channels], dtype=torch.float32)
        conv.weight.copy_(rows.view(-1, 1, b, b))
        _set_upsampling(init, rows, b)
