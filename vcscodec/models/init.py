"""How a network starts: at the best linear decoder (KLT), not from noise; or, widened, where a narrower one was."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

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


@torch.no_grad()
def load_widened(model: HITVCSNet, state: dict[str, torch.Tensor]) -> None:
    """Load the weights of a narrower keyframe branch (``key_channels``) into ``model`` so that it computes exactly
    what they did (Net2Net's aim, by zero blocks instead of copied units).

    Each conv keeps its old weights in its first channels; the new input channels' weights into old output channels
    are zero, so the old channels never see the new ones; the new output channels keep ``model``'s random start,
    so the new channels carry signal and the zero blocks get gradients from the first step. HFIM's 1×1 narrowing
    convs, absent from an equal-width model, start as the identity on the old channels.
    """
    own = model.state_dict()  # views of the parameters: writing into them loads the model
    unexpected = sorted(set(state) - set(own))
    if unexpected:
        raise ValueError(f"{len(unexpected)} tensors have no place in the model, e.g. {unexpected[0]}")
    out_dim = {
        f"{name}.weight": 1 if isinstance(module, nn.ConvTranspose2d) else 0
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d)
    }
    for name, target in own.items():
        old = state.get(name)
        if old is None:
            if not name.startswith("hfim.narrow."):
                raise ValueError(f"{name} is missing from the weights")
            target.zero_()
            width = target.shape[0]
            target[:, :width, 0, 0] = torch.eye(width)
            continue
        old = old.to(target.dtype)
        if old.shape == target.shape:
            target.copy_(old)
            continue
        if old.dim() != target.dim() or any(o > t for o, t in zip(old.shape, target.shape, strict=True)):
            raise ValueError(f"{name}: {tuple(old.shape)} does not fit into {tuple(target.shape)}")
        if old.dim() == 1:  # a bias: the new channels start at zero
            target.zero_()
            target[: old.shape[0]] = old
            continue
        o = out_dim[name]
        kept = [slice(None)] * target.dim()
        kept[o] = slice(0, old.shape[o])
        target[tuple(kept)] = 0.0  # the old outputs read nothing from new inputs...
        target[tuple(slice(0, n) for n in old.shape)] = old  # ...and what they read before
