"""HIT-VCSNet (paper section 2) in PyTorch.

Tensor conventions: frames are in [0, 1]. A *chain* is G consecutive GOPs plus the keyframe that follows them:
G + 1 keyframes and G·K non-keyframes (K = gop − 1, or fewer in a video's last, short GOP). Every non-keyframe is
rebuilt from its own measurements and from the keyframes on both sides of it (eq. 6), which is why the decoder
takes the next GOP's keyframe with each GOP.

The two halves of the codec are separate methods: ``measure_key`` / ``measure_non`` are the encoder (the sampling
subnet, eqs. 3-4), ``reconstruct`` is the decoder (never sees the ground truth). ``forward`` chains both for
training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import VcsError
from . import motion
from .config import ModelConfig
from .layers import FusionUpStep, ResidualBlock, conv3x3, scale_path

# Pixels of non-keyframes predicted at once by the motion search: bounds its memory, which holds about
# 2·motion_candidates + 1 frame-sized tensors per frame (≈ 70 MB per 2^20 pixels at 8 candidates).
_MOTION_CHUNK_PIXELS = 1 << 20


@dataclass
class Reconstruction:
    """Initial (scale-1) and deep reconstructions of a batch of chains, each (N, ·, 1, H, W)."""

    key_initial: torch.Tensor  # (N, G+1, 1, H, W)
    key: torch.Tensor  # (N, G+1, 1, H, W)
    non_initial: torch.Tensor  # (N, G, K, 1, H, W)
    non: torch.Tensor  # (N, G, K, 1, H, W)


class Sampling(nn.Module):
    """Sampling subnet (eqs. 3-4): y = Φx per B×B block as a stride-B convolution, no bias, no padding."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        b = config.block
        self.key = nn.Conv2d(1, config.m_k, b, stride=b, bias=False)
        self.non = nn.Conv2d(1, config.m_n, b, stride=b, bias=False)


class InitialReconstruction(nn.Module):
    """Eq. 5 at S scales: a 1×1 conv with Bs² filters (the learned Φ_B), reshape to Bs×Bs, concatenate.

    Reshape + concatenate of the block vectors is exactly ``pixel_shuffle(Bs)`` (row-major within a block).
    """

    def __init__(self, measurements: int, config: ModelConfig) -> None:
        super().__init__()
        self.block_sizes = [config.block >> s for s in range(config.scales)]
        self.upsample = nn.ModuleList(nn.Conv2d(measurements, bs * bs, 1, bias=False) for bs in self.block_sizes)

    def forward(self, y: torch.Tensor) -> list[torch.Tensor]:
        return [F.pixel_shuffle(up(y), bs) for up, bs in zip(self.upsample, self.block_sizes, strict=True)]


class MultiScaleExtraction(nn.Module):
    """MSEM: a feature-extraction conv per scale, then ``levels`` levels of residual blocks per scale.

    With HFFM (Fig. 2(b)) the input of level j at scale s is the merge (sum) of that scale's level j−1 feature and
    the level j−1 features of every other scale, carried there by down/up-sampling blocks shaped like RBs.
    """

    def __init__(self, config: ModelConfig, channels: int) -> None:
        super().__init__()
        c, n = channels, config.scales
        self.scales = n
        self.fem = nn.ModuleList(conv3x3(1, c) for _ in range(n))
        self.blocks = nn.ModuleList(nn.ModuleList(ResidualBlock(c) for _ in range(n)) for _ in range(config.levels))
        # hffm[level][f"{src}to{dst}"]: the paths between scales; absent in the "w/o HFFM" ablation.
        self.hffm = nn.ModuleList(
            nn.ModuleDict(
                {f"{a}to{b}": scale_path(c, a, b) for a in range(n) for b in range(n) if a != b} if config.hffm else {}
            )
            for _ in range(config.levels)
        )

    def extract(self, initial: list[torch.Tensor]) -> list[torch.Tensor]:
        return [fem(x) for fem, x in zip(self.fem, initial, strict=True)]

    def merge(self, level: int, features: list[torch.Tensor]) -> list[torch.Tensor]:
        """HFFM's M^j: each scale's feature plus the others' features resampled to its size."""
        paths = self.hffm[level]
        if len(paths) == 0:
            return features
        merged = []
        for s in range(self.scales):
            m = features[s]
            for o in range(self.scales):
                if o != s:
                    m = m + paths[f"{o}to{s}"](features[o])
            merged.append(m)
        return merged

    def level(self, level: int, features: list[torch.Tensor]) -> list[torch.Tensor]:
        return [rb(m) for rb, m in zip(self.blocks[level], self.merge(level, features), strict=True)]


class HierarchicalInteraction(nn.Module):
    """HFIM (eq. 6): F_n^(i,j) = F_k^(1,j) + F_k^(2,j) + RB(F_n^(i,j−1)) at every level j and scale.

    The keyframe feature passes through a block of its own per level and scale before it is added (the paper's
    "M^j will be passed to an up-sampling block" to obtain F_(k,s)^j). Without HFIM (Table 5) one such block per
    scale adds the keyframe features once, after feature extraction. A keyframe branch wider than the non-keyframe
    stream (``key_channels``) is narrowed to its width by a 1×1 conv after each block.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        points = config.levels + 1 if config.hfim else 1
        width = config.key_width
        self.levels = list(range(points)) if config.hfim else [0]
        self.blocks = nn.ModuleList(
            nn.ModuleList(ResidualBlock(width) for _ in range(config.scales)) for _ in range(points)
        )
        # Only when the widths differ, so that the weights of equal-width models keep their names.
        self.narrow = (
            nn.ModuleList(
                nn.ModuleList(nn.Conv2d(width, config.channels, 1, bias=False) for _ in range(config.scales))
                for _ in range(points)
            )
            if width != config.channels
            else None
        )

    def keyframe_features(self, level: int, features: list[torch.Tensor]) -> list[torch.Tensor] | None:
        if level not in self.levels:
            return None
        point = self.levels.index(level)
        out = [block(f) for block, f in zip(self.blocks[point], features, strict=True)]
        if self.narrow is not None:
            out = [narrow(f) for narrow, f in zip(self.narrow[point], out, strict=True)]
        return out


class MultiScaleFusion(nn.Module):
    """MSFM: from the coarsest scale up, a stride-2 deconvolution and two (ReLU, conv) per step, summed with the
    next finer scale's feature; a last conv turns the fused feature into one channel."""

    def __init__(self, config: ModelConfig, channels: int) -> None:
        super().__init__()
        self.steps = nn.ModuleList(FusionUpStep(channels) for _ in range(config.scales - 1))
        self.out = conv3x3(channels, 1)
        # Zero start: with the global residual the untrained network returns its initial reconstruction.
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        fused = features[-1]
        for s in range(len(features) - 2, -1, -1):
            fused = features[s] + self.steps[s](fused)
        return self.out(fused)


class HITVCSNet(nn.Module):
    """The whole network: sampling, initial reconstruction, MSEM+HFFM, HFIM, MSFM, for keyframes and non-keyframes.

    Keyframes and non-keyframes have their own branches (the paper trains the non-keyframe model separately per
    αn, so the two cannot share weights).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.sampling = Sampling(config)
        self.initial_key = InitialReconstruction(config.m_k, config)
        self.initial_non = InitialReconstruction(config.m_n, config)
        self.msem_key = MultiScaleExtraction(config, config.key_width)
        self.msem_non = MultiScaleExtraction(config, config.channels)
        self.hfim = HierarchicalInteraction(config)
        self.msfm_key = MultiScaleFusion(config, config.key_width)
        self.msfm_non = MultiScaleFusion(config, config.channels)
        # Training only (`quantizer_noise`): a quantizer step in [0, 1] units, set by the trainer from
        # optim.quant_noise; not part of the weights or the config, so a shipped model never sees it.
        self.measurement_noise = 0.0

    # ---- encoder half --------------------------------------------------------------------------------------
    def measure_key(self, frames: torch.Tensor) -> torch.Tensor:
        """(..., H, W) frames, floating point in [0, 1], H and W multiples of B → (..., m_k, H/B, W/B)."""
        return _apply_2d(self.sampling.key, self._check_frames(frames))

    def measure_non(self, frames: torch.Tensor) -> torch.Tensor:
        """(..., H, W) frames, floating point in [0, 1], H and W multiples of B → (..., m_n, H/B, W/B)."""
        return _apply_2d(self.sampling.non, self._check_frames(frames))

    def _check_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """Refuse what the stride-B convolution would take wrongly or fail on deep inside: rows and columns past
        the last whole block would be dropped without a word (the codec pads; `sampling.pad_plane`)."""
        block = self.config.block
        if not isinstance(frames, torch.Tensor):
            raise VcsError(f"frames must be a torch.Tensor, got {type(frames).__name__}")
        if not frames.is_floating_point():
            raise VcsError(f"frames must be floating point in [0, 1], got {frames.dtype}")
        if frames.dim() < 2 or frames.shape[-1] % block or frames.shape[-2] % block or 0 in frames.shape[-2:]:
            raise VcsError(f"frames must be (..., H, W) with H and W multiples of {block}, got {tuple(frames.shape)}")
        weight = self.sampling.key.weight
        return frames if frames.dtype == weight.dtype else frames.to(weight.dtype)  # float64 from numpy, say

    # ---- decoder half --------------------------------------------------------------------------------------
    @property
    def shares_keyframes(self) -> bool:
        """What the rest of the decoder reads of a keyframe is its rebuilt picture alone (no non-keyframe network,
        whose HFIM reads the keyframe network's features), so chains that share a keyframe can be given it rebuilt
        once (`reconstruct(keyframes=…)`), on a stream without alternating grids."""
        return not self.config.non_key_network

    def default_positions(self, count: int) -> torch.Tensor:
        """Temporal positions t ∈ (0, 1) of ``count`` non-keyframes evenly between two keyframes."""
        return torch.arange(1, count + 1, dtype=torch.float32) / (count + 1)

    def reconstruct(
        self,
        y_key: torch.Tensor,
        y_non: torch.Tensor,
        positions: torch.Tensor | None = None,
        key_shifts: Sequence[int] | None = None,
        before: KeyMeasurements | None = None,
        keyframes: torch.Tensor | None = None,
    ) -> Reconstruction:
        """Rebuild chains of GOPs from measurements alone.

        y_key: (N, G+1, m_k, h, w); y_non: (N, G, K, m_n, h, w); positions: (K,) temporal positions of the
        non-keyframes between their keyframes (only the temporal-prior variant uses them). key_shifts: per keyframe
        of the chain, the shift of the grid it was measured on (`keyframes_on_grids`); before: the measurements of
        the keyframe before the chain, if any (it refines the chain's first keyframe). keyframes: the chain's
        keyframes as `reconstruct_keyframes` rebuilt them from y_key, (N·(G+1), 1, H, W), so that a decoder whose
        chains share a keyframe rebuilds it once; only where they are all the rest reads of them (no
        non-keyframe network, which reads the keyframe network's features; no alternating grids).
        """
        cfg = self.config
        chain = (
            y_key.dim() == 5
            and y_non.dim() == 6
            and y_key.shape[2] == cfg.m_k
            and y_non.shape[3] == cfg.m_n
            and y_non.shape[:2] == (y_key.shape[0], y_key.shape[1] - 1)
            and y_non.shape[-2:] == y_key.shape[-2:]
            and y_non.shape[2] > 0
        )
        if not chain:
            raise VcsError(
                f"y_key {tuple(y_key.shape)} and y_non {tuple(y_non.shape)} are not a chain: (N, G+1, {cfg.m_k}, h, w) "
                f"and (N, G, K ≥ 1, {cfg.m_n}, h, w)"
            )
        n, g1, _, h, w = y_key.shape
        g, k = y_non.shape[1], y_non.shape[2]

        flat_key = y_key.flatten(0, 1)
        init_key = self.initial_key(flat_key)  # per scale: (N(G+1), 1, Hs, Ws)
        # MSEM's features at every level, for HFIM (not kept when the non-keyframe network does not run)
        key_levels: list[list[torch.Tensor]] | None = [] if cfg.non_key_network else None
        if keyframes is None:
            key_deep = self.keyframes_from_initial(init_key, flat_key, key_levels)
        elif not self.shares_keyframes or _alternating(key_shifts, before):
            raise VcsError("rebuilt keyframes can be passed only to a decoder that reads nothing else of them")
        elif keyframes.shape != (n * g1, 1, h * cfg.block, w * cfg.block):
            raise VcsError(f"keyframes {tuple(keyframes.shape)} do not fit y_key {tuple(y_key.shape)}")
        else:
            key_deep = keyframes
        if key_shifts is not None and _alternating(key_shifts, before):
            # Everything below works on each keyframe's own picture: move the odd ones back from their grid.
            shifts, width = list(key_shifts) * n, w * cfg.block  # (N·(G+1)) order
            init_key = [_roll_grid(x, shifts, -1, width) for x in init_key]
            key_deep = self.refine_keyframes(_roll_grid(key_deep, shifts, -1), y_key, key_shifts, before, y_non)
            if key_levels is not None:
                key_levels = [[_roll_grid(f, shifts, -1, width) for f in level] for level in key_levels]

        flat_non = y_non.flatten(0, 2)  # (N·G·K, m_n, h, w)
        if cfg.temporal_prior:
            if positions is None:
                positions = self.default_positions(k)
            # -mh searches the keyframes as the decoder outputs them (so a trained keyframe branch helps the
            # non-keyframes too); -tr interpolates the initial reconstructions. Untrained, the two are equal.
            references = key_deep if cfg.motion_radius else init_key[0]
            init_non = self._temporal_prior(references, flat_non, n, g, k, positions.to(y_non))
        else:
            init_non = self.initial_non(flat_non)

        if cfg.non_key_network:
            assert key_levels is not None
            non_deep = self._non_keyframe_network(init_non, key_levels, n, g, k)
        else:  # variant -lin: the corrected prior is the output
            non_deep = init_non[0]
        if cfg.consistency:
            non_deep = self.project(non_deep, flat_non, self.sampling.non.weight)

        size = (1, h * cfg.block, w * cfg.block)
        return Reconstruction(
            key_initial=init_key[0].view(n, g1, *size),
            key=key_deep.view(n, g1, *size),
            non_initial=init_non[0].view(n, g, k, *size),
            non=non_deep.view(n, g, k, *size),
        )

    def _non_keyframe_network(
        self, init_non: list[torch.Tensor], key_levels: list[list[torch.Tensor]], n: int, g: int, k: int
    ) -> torch.Tensor:
        """MSEM with HFIM (eq. 6: both keyframes' features enter at every level) and MSFM for the non-keyframes."""
        cfg = self.config

        def interaction(level: int) -> list[torch.Tensor] | None:
            feats = self.hfim.keyframe_features(level, key_levels[level])
            if feats is None:
                return None
            return [_pair_keyframes(f, n, g, k) for f in feats]

        non_feats = self.msem_non.extract(init_non)
        extra = interaction(0)
        if extra is not None:
            non_feats = [f + e for f, e in zip(non_feats, extra, strict=True)]
        for j in range(cfg.levels):
            non_feats = self.msem_non.level(j, non_feats)
            extra = interaction(j + 1)
            if extra is not None:
                non_feats = [f + e for f, e in zip(non_feats, extra, strict=True)]
        non_deep = self.msfm_non(non_feats)
        return non_deep + init_non[0] if cfg.global_residual else non_deep

    def reconstruct_keyframes(
        self, y_key: torch.Tensor, key_shifts: Sequence[int] | None = None, before: KeyMeasurements | None = None
    ) -> torch.Tensor:
        """Keyframes alone (a one-frame video): (N, m_k, h, w) → (N, 1, H, W), as consecutive keyframes of one
        stream when ``key_shifts`` (N) gives their grids (``reconstruct``)."""
        deep = self.keyframes_from_initial(self.initial_key(y_key), y_key)
        if not _alternating(key_shifts, before):
            return deep
        assert key_shifts is not None
        return self.refine_keyframes(_roll_grid(deep, key_shifts, -1), y_key[None], key_shifts, before)

    def refine_keyframes(
        self,
        keys: torch.Tensor,
        y_key: torch.Tensor,
        key_shifts: Sequence[int],
        before: KeyMeasurements | None = None,
        y_non: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Keyframes measured on alternating grids, each refined with its neighbour's measurements where these agree.

        keys: (N·(G+1), 1, H, W) the keyframe network's output, on the frame's own grid; y_key: (N, G+1, m_k, h, w)
        measured on the grids ``key_shifts`` (G+1); before: the keyframe before the chain. Each keyframe's neighbour
        is the keyframe before it (``before`` for the first), else the one after it: a rule that does not depend on
        how a decode batches its GOPs. Where a block of the neighbour's grid is still (the keyframe fits its
        measurements: mean squared residual under ``key_refine_gate``), the two measurement sets constrain one
        picture, and ``key_refine_rounds`` rounds of alternating projections onto both move the keyframe towards it.
        """
        cfg = self.config
        n, g1 = y_key.shape[:2]
        out = keys.view(n, g1, *keys.shape[1:]).clone()
        with torch.autocast(keys.device.type, enabled=False):
            phi = self.sampling.key.weight.float()
            inverse = self.gram_inverse(phi)  # once, not at every projection below
            for p in range(g1):
                # the neighbour, and the non-keyframes between the two (None: not known)
                if p > 0:
                    y_q, shift_q = y_key[:, p - 1], key_shifts[p - 1]
                    between = None if y_non is None else y_non[:, p - 1]
                elif before is not None:
                    y_q, shift_q, between = before.y, before.shift, before.between
                elif g1 > 1:
                    y_q, shift_q = y_key[:, 1], key_shifts[1]
                    between = None if y_non is None else y_non[:, 0]
                else:
                    continue
                shift_p = key_shifts[p]
                if shift_q == shift_p:  # the same grid: its measurements hold nothing new
                    continue
                x = out[:, p].float()
                y_p, y_q = y_key[:, p].float(), y_q.float()
                miss = (y_q - F.conv2d(_roll(x, shift_q), phi, stride=cfg.block)).square().mean(1, keepdim=True)
                still = (miss < cfg.key_refine_gate).float()
                if cfg.key_still_gate and between is not None and between.shape[1]:
                    variation = _variation_between(between.float(), shift_q)
                    still = still * (variation < cfg.key_still_gate)
                    if cfg.key_noise_ratio:
                        # Only where the keyframe misses the neighbour by more than the frames differ anyway
                        # (noise, grain, the quantizer: the non-keyframes' measurements carry all three); elsewhere
                        # the neighbour's measurements would bring in more error than they remove.
                        still = still * (miss > cfg.key_noise_ratio * variation)
                still = F.interpolate(still, scale_factor=cfg.block, mode="nearest")
                for _ in range(cfg.key_refine_rounds):
                    moved = _roll(x, shift_q)
                    moved = moved + still * (self.project(moved, y_q, phi, inverse) - moved)
                    x = _roll(self.project(_roll(moved, shift_p - shift_q), y_p, phi, inverse), -shift_p)
                out[:, p] = x.to(out.dtype)
        return out.flatten(0, 1)

    def keyframes_from_initial(
        self, init_key: list[torch.Tensor], y_key: torch.Tensor, levels: list[list[torch.Tensor]] | None = None
    ) -> torch.Tensor:
        """The keyframe network (MSEM, MSFM, then the projection if configured) on the multi-scale initial
        reconstructions ``initial_key(y_key)``. ``levels``, when given, receives MSEM's features at every level
        (HFIM reads them); otherwise each level's features are freed as the next is computed."""
        deep = self._keyframe_network(init_key, levels)
        # With keyframe_mirrors > 1 the network also runs on mirror images of its input; the outputs, mirrored
        # back, are averaged (a self-ensemble). HFIM reads the features of the unmirrored view only.
        mirrors = self.config.keyframe_mirrors
        for dims in _MIRRORS[1:mirrors]:
            deep = deep + self._keyframe_network([x.flip(dims) for x in init_key]).flip(dims)
        if mirrors > 1:
            deep = deep / mirrors
        return self.project(deep, y_key, self.sampling.key.weight) if self.config.consistency else deep

    def _keyframe_network(
        self, init_key: list[torch.Tensor], levels: list[list[torch.Tensor]] | None = None
    ) -> torch.Tensor:
        """MSEM and MSFM of the keyframe branch (plus the global residual), before any projection."""
        feats = self.msem_key.extract(init_key)
        if levels is not None:
            levels.append(feats)
        for j in range(self.config.levels):
            feats = self.msem_key.level(j, feats)
            if levels is not None:
                levels.append(feats)
        deep = self.msfm_key(feats)
        return deep + init_key[0] if self.config.global_residual else deep

    @staticmethod
    def project(
        frames: torch.Tensor, y: torch.Tensor, phi: torch.Tensor, gram_inverse: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Each block's nearest block consistent with its measurements: x + Φᵀ(ΦΦᵀ)⁻¹(y − Φx), per B×B block.

        frames: (N, 1, H, W); y: (N, m, h, w); phi: (m, 1, B, B); gram_inverse: (ΦΦᵀ)⁻¹ if already computed
        (`gram_inverse`). fp32 even under bf16 autocast, the Gram inverse in fp64: the learned Φ is far from
        orthogonal, and ΦΦᵀ of 512 rows loses digits in fp32.
        """
        block = phi.shape[-1]
        with torch.autocast(frames.device.type, enabled=False):
            phi, frames = phi.float(), frames.float()
            if gram_inverse is None:
                gram_inverse = HITVCSNet.gram_inverse(phi)
            residual = y.float() - F.conv2d(frames, phi, stride=block)
            # (ΦΦᵀ)⁻¹ r per block as one 1×1 conv, then Φᵀ as the transposed stride-B conv.
            solved = F.conv2d(residual.double(), gram_inverse[:, :, None, None]).float()
            return frames + F.conv_transpose2d(solved, phi, stride=block)

    @staticmethod
    def gram_inverse(phi: torch.Tensor) -> torch.Tensor:
        """(ΦΦᵀ)⁻¹ in fp64 for ``project``, Φ given as its (m, 1, B, B) convolution weight."""
        rows = phi.double().flatten(1)
        return torch.linalg.inv(rows @ rows.T)

    def _temporal_prior(
        self, key1: torch.Tensor, y_non: torch.Tensor, n: int, g: int, k: int, positions: torch.Tensor
    ) -> list[torch.Tensor]:
        """Variant hitvcsnet-tr: I_s = pool_s(x̄) + Φ_B,s(y − S_n x̄), x̄ the keyframes' linear interpolation."""
        if self.config.motion_radius:
            prior = self._motion_prediction(key1, y_non, n, g, k, positions)
        else:
            t = positions.view(1, 1, k, 1, 1, 1)
            keys = key1.view(n, g + 1, 1, *key1.shape[-3:])
            prior = ((1 - t) * keys[:, :-1] + t * keys[:, 1:]).flatten(0, 2)  # (N·G·K, 1, H, W)
        return self._corrected_prior(prior, y_non)

    def _corrected_prior(self, prior: torch.Tensor, y_non: torch.Tensor) -> list[torch.Tensor]:
        """The prior at every scale plus the initial reconstruction of what its measurements miss."""
        corrections = self.initial_non(y_non - self.sampling.non(prior))
        return [(F.avg_pool2d(prior, 1 << s) if s else prior) + corr for s, corr in enumerate(corrections)]

    def _motion_prediction(
        self, key1: torch.Tensor, y_non: torch.Tensor, n: int, g: int, k: int, positions: torch.Tensor
    ) -> torch.Tensor:
        """Variant hitvcsnet-mh: each non-keyframe block predicted from shifted keyframe blocks (models/motion.py).

        With ``motion_passes`` > 1 each later pass also searches the previous pass's estimates of the frame's
        neighbours in time (its keyframe at either end of the GOP)."""
        cfg = self.config
        phi = self.sampling.non.weight
        # The search is a fit to measurements: fp32 even under bf16 autocast (differences of large sums).
        with torch.autocast(key1.device.type, enabled=False):
            key1, y_non, phi = key1.float(), y_non.float(), phi.float()
            device = key1.device
            # Index of each non-keyframe's keyframes and neighbours in [keyframes, non-keyframes], (N, G, K) order.
            chain = torch.arange(n, device=device).view(n, 1, 1)
            gop = torch.arange(g, device=device).view(1, g, 1)
            slot = torch.arange(k, device=device).view(1, 1, k)
            key_before = (chain * (g + 1) + gop).expand(n, g, k).reshape(-1)
            key_after = key_before + 1
            t = positions.to(key1).view(1, 1, k).expand(n, g, k).reshape(-1, 1, 1, 1)
            own = n * (g + 1) + torch.arange(n * g * k, device=device)
            first, last = (slot == 0).expand(n, g, k).reshape(-1), (slot == k - 1).expand(n, g, k).reshape(-1)
            neighbour_before = torch.where(first, key_before, own - 1)
            neighbour_after = torch.where(last, key_after, own + 1)

            frames = key1
            energy_of = motion.MeasurementEnergy(phi, cfg.motion_radius, *key1.shape[-2:])
            energy = energy_of(key1)
            references, blends = [key_before, key_after], [(key_before, key_after, t)]
            prior = self._search(frames, energy, references, blends, y_non, phi)
            for _ in range(cfg.motion_passes - 1):
                estimate = self._corrected_prior(prior, y_non)[0]
                if cfg.consistency:
                    estimate = self.project(estimate, y_non, phi)
                frames = torch.cat([key1, estimate])
                energy = torch.cat([energy[: len(key1)], energy_of(estimate)])
                references = [neighbour_before, neighbour_after, key_before, key_after]
                blends = [(key_before, key_after, t)]
                if cfg.neighbour_blend:
                    blends.append((neighbour_before, neighbour_after, torch.full_like(t, 0.5)))
                prior = self._search(frames, energy, references, blends, y_non, phi)
            return prior

    def _search(
        self,
        frames: torch.Tensor,
        energy: torch.Tensor,
        references: list[torch.Tensor],
        blends: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
        y_non: torch.Tensor,
        phi: torch.Tensor,
    ) -> torch.Tensor:
        """One multihypothesis search for every non-keyframe, a chunk of frames at a time.

        frames, energy: the reference pool and its measurement energies; references: per reference, the pool
        index for each non-keyframe; blends: (index before, index after, t) of each unshifted linear blend."""
        cfg = self.config
        pixels = frames.shape[-1] * frames.shape[-2]
        # The chunk budget is set for two references of B×B blocks; more references, or blocks extended by an
        # overlap, hold more hypothesis pixels per frame.
        extension = ((cfg.block + 2 * cfg.motion_overlap) / cfg.block) ** 2
        chunk = max(1, int(_MOTION_CHUNK_PIXELS * 2 / (len(references) * pixels * extension)))
        parts = []
        for start in range(0, len(y_non), chunk):
            sl = slice(start, start + chunk)
            parts.append(
                motion.multihypothesis_prediction(
                    [(frames[index[sl]], energy[index[sl]]) for index in references],
                    [(1 - t[sl]) * frames[a[sl]] + t[sl] * frames[b[sl]] for a, b, t in blends],
                    y_non[sl],
                    phi,
                    cfg.motion_radius,
                    cfg.motion_candidates,
                    cfg.motion_temperature,
                    cfg.motion_overlap,
                    cfg.motion_overlap_floor,
                )
            )
        return torch.cat(parts)

    # ---- training --------------------------------------------------------------------------------------------
    def forward(self, frames: torch.Tensor) -> Reconstruction:
        """Measure and rebuild chains of ground-truth frames (N, G·gop + 1, H, W), keyframes every ``gop``."""
        gop = self.config.gop
        n, t, h, w = frames.shape
        g = (t - 1) // gop
        if g < 1 or g * gop + 1 != t:
            raise VcsError(f"a chain has G·{gop}+1 frames (G ≥ 1), got {t}")
        keys = frames[:, ::gop]
        non = frames[:, : g * gop].reshape(n, g, gop, h, w)[:, :, 1:]
        return self.reconstruct(
            self.quantizer_noise(self.measure_key(keys)), self.quantizer_noise(self.measure_non(non))
        )

    def quantizer_noise(self, y: torch.Tensor) -> torch.Tensor:
        """While training with ``measurement_noise`` > 0: y plus uniform noise that wide, the error of a uniform
        quantizer of that step (CompressAI's proxy for rounding), so the network learns from what the codec's
        quantized measurements give it. Otherwise y unchanged."""
        if not (self.training and self.measurement_noise):
            return y
        return y + (torch.rand_like(y) - 0.5) * self.measurement_noise


@dataclass
class KeyMeasurements:
    """One keyframe's measurements (N, m_k, h, w), the shift of the grid they were taken on, and the measurements of
    the non-keyframes after it (N, K, m_n, h, w), if any."""

    y: torch.Tensor
    shift: int
    between: torch.Tensor | None = None


def _alternating(key_shifts: Sequence[int] | None, before: KeyMeasurements | None) -> bool:
    """Whether any of these keyframes, or the one before them, was measured on a shifted grid."""
    return bool(key_shifts is not None and any(key_shifts)) or bool(before is not None and before.shift)


def _variation_between(y_non: torch.Tensor, shift: int) -> torch.Tensor:
    """(N, 1, h, w) how much the non-keyframes (N, K, m_n, h, w) vary from frame to frame, per measurement (the
    largest mean squared deviation from their mean), per block of the grid shifted by ``shift``: the largest over
    the four unshifted blocks it overlaps (the block and those above and left), as the non-keyframes are measured
    on the unshifted grid."""
    spread = (y_non - y_non.mean(1, keepdim=True)).square().mean(2).amax(1, keepdim=True)
    if shift:
        spread = torch.maximum(spread, torch.roll(spread, 1, -2))
        spread = torch.maximum(spread, torch.roll(spread, 1, -1))
    return spread


def _roll(x: torch.Tensor, shift: int) -> torch.Tensor:
    """Move a picture (…, H, W) ``shift`` pixels down and right, cyclically (negative: back)."""
    return torch.roll(x, (shift, shift), (-2, -1)) if shift else x


def _roll_grid(x: torch.Tensor, shifts: Sequence[int], sign: int, width: int | None = None) -> torch.Tensor:
    """Roll each of the (K, C, Hs, Ws) pictures by sign·its shift; pictures ``width``/Ws times smaller than the
    frame (features at 1/2, 1/4 scale) by the shift scaled alike."""
    if not any(shifts):
        return x
    scale = (width or x.shape[-1]) // x.shape[-1]
    return torch.stack([_roll(t, sign * s // scale) for t, s in zip(x, shifts, strict=True)])


def keyframes_on_grids(frames: torch.Tensor, shifts: Sequence[int]) -> torch.Tensor:
    """(N, G+1, H, W) keyframes moved onto their grids (``shifts`` per position), for ``measure_key``."""
    return torch.stack([_roll(frames[:, p], s) for p, s in enumerate(shifts)], 1)


def chain_targets(frames: torch.Tensor, gop: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split chains (N, G·gop+1, H, W) into keyframes (N, G+1, 1, H, W) and non-keyframes (N, G, K, 1, H, W)."""
    n, t, h, w = frames.shape
    g = (t - 1) // gop
    keys = frames[:, ::gop].unsqueeze(2)
    non = frames[:, : g * gop].reshape(n, g, gop, h, w)[:, :, 1:].unsqueeze(3)
    return keys, non


# The mirror images of ModelConfig.keyframe_mirrors, as the dims flipped, in order: as is, left-right, upside down,
# both. Transposes are left out: Φ's rows are not symmetric under them, and the network rebuilds transposed frames
# 0.13 dB worse (held-out keyframes, docs/architecture.md), where the mirrors lose at most 0.02.
_MIRRORS: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-1, -2))


def _apply_2d(conv: nn.Module, frames: torch.Tensor) -> torch.Tensor:
    lead = frames.shape[:-2]
    out = conv(frames.reshape(-1, 1, *frames.shape[-2:]))
    return out.view(*lead, *out.shape[1:])


def _pair_keyframes(feature: torch.Tensor, n: int, g: int, k: int) -> torch.Tensor:
    """Keyframe features (N(G+1), C, h, w) → F_k^1 + F_k^2 for each of the N·G·K non-keyframes."""
    f = feature.view(n, g + 1, *feature.shape[1:])
    pair = f[:, :-1] + f[:, 1:]  # (N, G, C, h, w)
    return pair.unsqueeze(2).expand(n, g, k, *feature.shape[1:]).reshape(n * g * k, *feature.shape[1:])
