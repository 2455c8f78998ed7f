"""Motion-compensated temporal prior (variant ``hitvcsnet-mh``): multihypothesis prediction of a non-keyframe.

Each B×B block of a non-keyframe is predicted from blocks of its two decoded keyframes displaced by up to ±R
pixels. The candidates are ranked by how well they explain the block's own measurements, ‖y − Φ·shift‖², as
in multihypothesis video CS (Tramel & Fowler, DCC 2011); the prediction is a softmax-weighted mix of the best
candidates of each keyframe plus the keyframes' zero-motion linear blend (so still scenes keep the blend).

With ``motion_passes`` = 2 (variant ``hitvcsnet-mhc2``) the search runs again once every non-keyframe has a
first estimate (the first prior corrected by its measurements): then each frame's neighbours in time, one frame
away instead of up to four, are references too, and their average is a second unshifted hypothesis.

With ``overlap`` > 0 (variant ``-obmc``) each block's mix of hypotheses is also formed ``overlap`` pixels beyond
the block's edges, and neighbouring blocks' predictions are blended across their common edge with linear ramps
(overlapped block motion compensation), weighted by how well each block's prediction fits its own measurements.

The search costs no measurements: it runs in the decoder, on what the decoder already has. Nothing here is
learned; the distances are computed without forming Φ·shift for every shift:
‖y − Φs‖² = ‖y‖² − 2⟨Φᵀy, s⟩ + ‖Φs‖², the middle term a correlation of the keyframe with the block's
back-projection Φᵀy, the last a per-pixel map computed once per keyframe.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

# Elements of the inverse FFTs held at once when mapping ‖Φs‖² (16 MB in fp32): larger batches were slower on
# a 2-core CPU, the planes fall out of cache (docs/architecture.md, -mhc2s).
_ENERGY_BUDGET = 1 << 22


def _smooth_length(n: int) -> int:
    """The least n' ≥ n with no prime factor above 7: FFTs of such lengths are fast (752 = 16·47 is not)."""
    while True:
        rest = n
        for p in (2, 3, 5, 7):
            while rest % p == 0:
                rest //= p
        if rest == 1:
            return n
        n += 1


class MeasurementEnergy:
    """‖Φ·s‖² for the block s at every top-left position of frames of one size, padded by ``radius`` (edge values).

    Each row of Φ is correlated with the frame through the FFT: m·B² multiply-adds a position as a convolution,
    about 4× slower on a CPU at m = 102 (docs/architecture.md). The rows' spectra are computed once here and serve
    every frame of that size (the keyframes, then the first-pass estimates of a second search). The FFT is at least
    the padded frame's size, so its circular wrap never reaches the positions kept.
    """

    def __init__(self, phi: torch.Tensor, radius: int, height: int, width: int) -> None:
        self.radius, self.block = radius, phi.shape[-1]
        self.padded = (height + 2 * radius, width + 2 * radius)
        self.size = (_smooth_length(self.padded[0]), _smooth_length(self.padded[1]))
        # (m, h, w/2 + 1), conjugated: correlation, not convolution.
        self.filters = torch.fft.rfft2(phi[:, 0], s=self.size).conj()

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, 1, H, W) → (N, 1, H + 2R − B + 1, W + 2R − B + 1)."""
        padded = F.pad(frames, (self.radius,) * 4, mode="replicate")
        if padded.shape[-2:] != self.padded:
            raise ValueError(f"frames of {tuple(frames.shape[-2:])}, energy maps set up for another size")
        spectra = torch.fft.rfft2(padded, s=self.size)  # (N, 1, h, w/2 + 1)
        rows, cols = self.padded[0] - self.block + 1, self.padded[1] - self.block + 1
        chunk = max(1, _ENERGY_BUDGET // (len(frames) * self.size[0] * self.size[1]))
        energy = None
        for part in self.filters.split(chunk):
            responses = torch.fft.irfft2(spectra * part, s=self.size)[..., :rows, :cols]
            part_energy = responses.pow(2).sum(1, keepdim=True)
            energy = part_energy if energy is None else energy + part_energy
        return energy


def measurement_energy(key: torch.Tensor, phi: torch.Tensor, radius: int) -> torch.Tensor:
    """``MeasurementEnergy`` of one batch of frames: key (N, 1, H, W), phi (m, 1, B, B)."""
    return MeasurementEnergy(phi, radius, *key.shape[-2:])(key)


def block_grid(frame: torch.Tensor, block: int) -> torch.Tensor:
    """(N, 1, H, W) → (N, h, w, B, B), the frame's blocks."""
    n, _, height, width = frame.shape
    return frame.view(n, height // block, block, width // block, block).permute(0, 1, 3, 2, 4)


def from_block_grid(blocks: torch.Tensor) -> torch.Tensor:
    """(N, h, w, B, B) → (N, 1, H, W)."""
    n, h, w, b, _ = blocks.shape
    return blocks.permute(0, 1, 3, 2, 4).reshape(n, 1, h * b, w * b)


def extended_block_grid(frame: torch.Tensor, block: int, overlap: int) -> torch.Tensor:
    """(N, 1, H, W) → (N, h, w, B + 2·overlap, B + 2·overlap): each block with ``overlap`` pixels of its
    surroundings on every side (edge values beyond the frame). ``block_grid`` when overlap is 0."""
    if not overlap:
        return block_grid(frame, block)
    span = block + 2 * overlap
    return F.pad(frame, (overlap,) * 4, mode="replicate").unfold(2, span, block).unfold(3, span, block)[:, 0]


def overlap_window(block: int, overlap: int) -> torch.Tensor:
    """The 1-D weights of an extended block, (B + 2·overlap,): a linear ramp over the 2·overlap pixels centred on
    each edge, 1 inside. A block's falling ramp and its neighbour's rising one sum to 1 everywhere."""
    ramp = (torch.arange(block + 2 * overlap) + 0.5) / (2 * overlap)
    return torch.minimum(ramp, ramp.flip(0)).clamp(max=1)


def overlapped_blocks(blocks: torch.Tensor, confidence: torch.Tensor, block: int, overlap: int) -> torch.Tensor:
    """Blend extended blocks (N, h, w, E, E), E = B + 2·overlap, into frames (N, 1, h·B, w·B).

    Each pixel is the mean of the blocks that cover it, weighted by ``overlap_window`` times the block's
    confidence (N, h, w): inside a block, away from its edges, it is the block's own prediction."""
    n, h, w, span, _ = blocks.shape
    if span != block + 2 * overlap:
        raise ValueError(f"blocks of {span} pixels, expected {block} + 2·{overlap}")
    ramp = overlap_window(block, overlap).to(blocks)
    weights = (ramp[:, None] * ramp[None, :]).view(1, 1, span * span) * confidence.reshape(n, h * w, 1)
    size = (h * block, w * block)
    numerator = F.fold(
        (blocks.reshape(n, h * w, span * span) * weights).transpose(1, 2), size, span, stride=block, padding=overlap
    )
    denominator = F.fold(weights.transpose(1, 2).contiguous(), size, span, stride=block, padding=overlap)
    return numerator / denominator


def shifted_candidates(
    key: torch.Tensor,
    energy: torch.Tensor,
    back_projection: torch.Tensor,
    radius: int,
    block: int,
    count: int,
    overlap: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``count`` shifts of each block that best explain its measurements.

    key: (N, 1, H, W) keyframes, one per non-keyframe; energy: their ``measurement_energy``; back_projection:
    Φᵀy of each block, (N, 1, H, W). Returns the candidate blocks (N, h, w, count, E, E), each with ``overlap``
    pixels of its surroundings (E = B + 2·overlap), and their distances ‖y − Φs‖² minus ‖y‖² (N, h, w, count),
    measured on the B×B block alone.
    """
    n, _, height, width = key.shape
    h, w = height // block, width // block
    win, span = 2 * radius + 1, block + 2 * radius
    # Padded once, by R plus the overlap the candidates carry; the search regions read the R-padded frame inside.
    wide = F.pad(key, (radius + overlap,) * 4, mode="replicate")
    padded = wide[..., overlap : wide.shape[-2] - overlap, overlap : wide.shape[-1] - overlap]
    # Each block's search region, (N, h·w, span, span), correlated with its own back-projection (one group each).
    regions = padded.unfold(2, span, block).unfold(3, span, block).reshape(n * h * w, 1, span, span)
    templates = block_grid(back_projection, block).reshape(n * h * w, 1, block, block)
    cross = F.conv2d(regions.view(1, n * h * w, span, span), templates, groups=n * h * w)
    energy_windows = energy.unfold(2, win, block).unfold(3, win, block)  # (N, 1, h, w, win, win)
    distance = energy_windows.reshape(n, h, w, win * win) - 2 * cross.view(n, h, w, win * win)
    best = distance.topk(min(count, win * win), dim=-1, largest=False)
    dy, dx = best.indices // win, best.indices % win
    # Every E×E window of the wide frame as a view, picked by its top-left corner (where the block itself starts in
    # the R-padded frame): indexing with corners alone copies whole windows, 2–3× faster than indexing every pixel.
    extent = block + 2 * overlap
    windows = wide[:, 0].unfold(1, extent, 1).unfold(2, extent, 1)  # (N, rows, cols, E, E)
    top = (torch.arange(h, device=key.device) * block).view(1, h, 1, 1) + dy
    left = (torch.arange(w, device=key.device) * block).view(1, 1, w, 1) + dx
    blocks = windows[torch.arange(n, device=key.device).view(n, 1, 1, 1), top, left]
    return blocks, best.values


def multihypothesis_prediction(
    references: Sequence[tuple[torch.Tensor, torch.Tensor]],
    blends: Sequence[torch.Tensor],
    y: torch.Tensor,
    phi: torch.Tensor,
    radius: int,
    count: int,
    temperature: float,
    overlap: int = 0,
    overlap_floor: float = 4.0,
) -> torch.Tensor:
    """Predict frames from reference frames and their own measurements.

    references: (frame, its ``measurement_energy``) pairs, frames (N, 1, H, W), one per predicted frame: the
    ``count`` best shifts of each block of each reference are hypotheses; blends: (N, 1, H, W) frames whose
    blocks enter unshifted (the keyframes' linear blend, so still scenes keep it); y: (N, m, h, w) measurements;
    phi: (m, 1, B, B). Weights are softmax(−d / (τ·d_min)) over the hypotheses, d = ‖y − Φs‖²: relative to the
    best fit, so the rule does not depend on the scale of Φ or of the signal.

    overlap > 0: each block's mix also covers ``overlap`` pixels around it, and neighbouring mixes are blended
    (``overlapped_blocks``) with confidence 1 / (r + overlap_floor·median r), r the residual ‖y − Φx̄‖² of the
    block's own mix: a block whose motion fits badly spreads less into its neighbours. The floor keeps blocks
    that fit their measurements almost exactly from taking over their neighbours' edges.
    """
    block = phi.shape[-1]
    back_projection = F.conv_transpose2d(y, phi, stride=block)
    y_energy = y.pow(2).sum(1).unsqueeze(-1)  # (N, h, w, 1)
    candidates, distances = [], []
    for blend in blends:
        candidates.append(extended_block_grid(blend, block, overlap).unsqueeze(3))
        distances.append((y - F.conv2d(blend, phi, stride=block)).pow(2).sum(1).unsqueeze(-1))
    for frame, energy in references:
        blocks, distance = shifted_candidates(frame, energy, back_projection, radius, block, count, overlap)
        candidates.append(blocks)
        distances.append(distance + y_energy)
    distance = torch.cat(distances, 3).clamp_min(0)  # (N, h, w, blends + references·count)
    # Floor for exact fits (a still scene without quantization): a millionth of the frame's measurement energy per
    # block, per frame, so that how many frames are searched together cannot change the result.
    exact_fit = 1e-6 * y_energy.mean((1, 2, 3)) + 1e-12  # (N,)
    scale = torch.maximum(distance.min(-1, keepdim=True).values, exact_fit.view(-1, 1, 1, 1))
    weights = torch.softmax(-distance / (temperature * scale), -1)
    # Mixed group by group: concatenating the hypotheses first would copy all of them once more.
    group_weights = weights.split([c.shape[3] for c in candidates], -1)
    mixed = sum(torch.einsum("nhwkab,nhwk->nhwab", c, gw) for c, gw in zip(candidates, group_weights, strict=True))
    if not overlap:
        return from_block_grid(mixed)
    inner = mixed[..., overlap : overlap + block, overlap : overlap + block]
    residual = (y - F.conv2d(from_block_grid(inner), phi, stride=block)).pow(2).mean(1)  # (N, h, w), per measurement
    # Plus the exact-fit floor, per measurement: noiseless exact fits would leave rounding to decide.
    floor = overlap_floor * residual.flatten(1).median(1).values + exact_fit / y.shape[1]
    return overlapped_blocks(mixed, 1 / (residual + floor.view(-1, 1, 1)), block, overlap)
