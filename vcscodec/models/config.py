"""The configuration of a HIT-VCSNet model: every choice the paper leaves open is a named value here."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..errors import VcsError


def measurement_count(alpha: float, block: int) -> int:
    """round(α·B²): 512 at 0.5, 102 at 0.1, 10 at 0.01 for B = 32 (round, not floor, as the authors' code)."""
    if not 0.0 < alpha <= 1.0:
        raise VcsError(f"sampling ratio {alpha} is outside (0, 1]")
    return max(1, int(round(alpha * (block * block))))  # one rounding, as the file format's expected_m


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of HIT-VCSNet (paper section 2) and of our named variants.

    Paper values: B = 32, S = 3, GOP 8, αk = 0.5, αn ∈ {0.01, 0.1}. The paper gives no channel count or depth;
    ``channels`` = 32 and ``levels`` = 4 are our defaults because the network must decode on a CPU at a few frames
    per second (a 64-channel, 6-level prototype was 4× slower for little gain in short training). ``key_channels``
    (0: the same as ``channels``) widens the keyframe branch alone: HFIM then narrows each keyframe feature to
    ``channels`` with a 1×1 conv before adding it into the non-keyframe stream.

    Choices the text leaves open, each a switch so the paper-faithful reading stays reachable:
    - ``hffm``: cross-scale fusion at every level (Fig. 2(b)); off = "w/o HFFM" of Table 5.
    - ``hfim``: keyframe features added into the non-keyframe stream at every level (eq. 6); off = "w/o HFIM",
      which we read as the keyframe features entering once, after feature extraction, instead of at every level
      (with no interaction at all the network could not reach Table 5's 33.96 dB at αn = 0.01).
    - ``global_residual``: the last conv predicts a correction added to the scale-1 initial reconstruction.
      The paper does not say; CSNet+ and OPINE-Net do it, and with a zero-initialised last conv the network starts
      exactly at its initial reconstruction's quality.
    - ``temporal_prior``: our variant "hitvcsnet-tr" (not in the paper). The non-keyframe initial reconstruction
      becomes the keyframes' linear interpolation corrected by the frame's own measurements,
      I = P(x̄) + U(y − S x̄), instead of U(y). All other modules are the paper's.
    - ``motion_radius`` > 0: our variant "hitvcsnet-mh" (not in the paper). The temporal prior x̄ becomes a
      multihypothesis motion-compensated prediction: per block, keyframe blocks shifted by up to ±R pixels,
      weighted by how well they explain the block's measurements (``models/motion.py``). ``motion_candidates``
      best shifts per keyframe enter the mix, weighted softmax(−d / (``motion_temperature``·d_min)).
    - ``consistency``: our variant "hitvcsnet-mhc" (not in the paper). Each reconstructed block is projected onto
      the blocks its measurements allow, x ← x + Φ⁺(y − Φx) with Φ⁺ = Φᵀ(ΦΦᵀ)⁻¹, after the network (keyframes
      before the motion search, so it sees the projected ones). No parameters: it fixes the part of the
      block the measurements pin down and leaves the rest to the network.
    - ``motion_passes`` = 2: our variant "hitvcsnet-mhc2" (not in the paper). After the first search every
      non-keyframe has an estimate (its prior corrected by its measurements, projected with ``consistency``);
      the search runs again with each frame's neighbours in time as references too. It adds no parameters: the
      weights of -mhc decode with it.
    - ``neighbour_blend`` off: our variant "hitvcsnet-mhc2s" (not in the paper). The second search keeps the
      neighbours' shifted blocks but drops their unshifted average as a hypothesis: on a rigid pan that average of
      two first-pass estimates is a blurred copy of the frame that still fits its few measurements, and -mhc2
      lost 0.3–1.2 dB there by choosing it (docs/architecture.md).
    - ``motion_overlap`` > 0: our variant "-obmc" (not in the paper). Overlapped block motion compensation: each
      block's mix of hypotheses also covers ``motion_overlap`` pixels around the block, and neighbouring blocks'
      mixes are blended across their common edge with linear ramps, weighted 1 / (r + ``motion_overlap_floor``·
      median r) by the residual r of each block's fit to its measurements. The prior loses its block seams.
      No parameters (docs/architecture.md).
    - ``keyframe_mirrors`` = 2 or 4: a self-ensemble of the keyframe network (not in the paper; EDSR's "+"
      models do it). The network also runs on the left-right (2) and up-down and both (4) mirror images of the
      keyframe's initial reconstructions; the outputs, mirrored back, are averaged before the projection. No
      parameters: the keyframe network costs 2 or 4 times as much, and the rest of the decoder is unchanged.
    - ``non_key_network`` off: our variants "hitvcsnet-mhc-lin" and "-mhc2-lin" (not in the paper), decoders, not
      models to train. The non-keyframes are their corrected prior, projected: MSEM, HFIM and MSFM of the non-keyframe
      branch do not run (the keyframe network does). With today's weights those add nothing on held-out clips
      (docs/architecture.md), and skipping them makes the decoder several times faster.
    - ``key_grid_shift`` > 0: our variant "-alt" (not in the paper), an encoder setting. The keyframes of odd GOPs
      are measured on the block grid shifted by that many pixels (cyclically, down and right), so that a still
      scene's consecutive keyframes measure different parts of it; the file's header says so (docs/format.md).
      Whatever the model, a decoder of such a file refines each keyframe with its neighbour's measurements where
      they agree (``key_refine_gate``: mean squared residual per measurement, in [0, 1] pixel units²) by
      ``key_refine_rounds`` rounds of alternating projections (docs/architecture.md). ``key_still_gate`` (on the
      non-keyframes between the two keyframes not changing) and ``key_noise_ratio`` (the keyframe's residual must
      exceed that many times their frame-to-frame variation) keep it from blocks where it would add error.
    """

    arch: str = "hitvcsnet"
    block: int = 32
    alpha_k: float = 0.5
    alpha_n: float = 0.1
    scales: int = 3
    channels: int = 32
    key_channels: int = 0
    levels: int = 4
    gop: int = 8
    hffm: bool = True
    hfim: bool = True
    global_residual: bool = True
    temporal_prior: bool = False
    motion_radius: int = 0
    motion_candidates: int = 8
    motion_temperature: float = 1.0
    consistency: bool = False
    motion_passes: int = 1
    neighbour_blend: bool = True
    motion_overlap: int = 0
    motion_overlap_floor: float = 4.0
    non_key_network: bool = True
    keyframe_mirrors: int = 1
    key_grid_shift: int = 0
    key_refine_gate: float = 1e-3
    key_refine_rounds: int = 10
    key_still_gate: float = 0.0
    key_noise_ratio: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.block % (1 << (self.scales - 1)):
            raise VcsError(f"block {self.block} is not divisible by 2^(scales-1) = {1 << (self.scales - 1)}")
        if self.scales < 1 or self.channels < 1 or self.levels < 1 or self.gop < 2 or self.key_channels < 0:
            raise VcsError("scales, channels and levels must be ≥ 1, key_channels ≥ 0 and gop ≥ 2")
        measurement_count(self.alpha_k, self.block)
        measurement_count(self.alpha_n, self.block)
        if self.motion_radius < 0 or self.motion_candidates < 1 or not self.motion_temperature > 0:
            raise VcsError("motion_radius must be ≥ 0, motion_candidates ≥ 1 and motion_temperature > 0")
        if self.motion_passes < 1 or (self.motion_passes > 1 and not self.motion_radius):
            raise VcsError("motion_passes must be ≥ 1, and more than 1 needs motion_radius > 0 (a motion search)")
        if not self.neighbour_blend and self.motion_passes < 2:
            raise VcsError("neighbour_blend off needs motion_passes ≥ 2 (only the second search has neighbours)")
        if not 0 <= self.motion_overlap <= self.block // 2 or not self.motion_overlap_floor > 0:
            raise VcsError(
                f"motion_overlap must be in [0, block/2 = {self.block // 2}] (a pixel is blended from at most two "
                f"blocks a direction), not {self.motion_overlap}, and motion_overlap_floor > 0"
            )
        if self.motion_overlap and not self.motion_radius:
            raise VcsError("motion_overlap needs motion_radius > 0 (it blends the motion search's predictions)")
        gates = (self.key_refine_gate, self.key_still_gate, self.key_noise_ratio)
        if not 0 <= self.key_grid_shift < self.block or not all(g >= 0 for g in gates) or self.key_refine_rounds < 0:
            raise VcsError(
                f"key_grid_shift must be in [0, block = {self.block}), key_refine_gate, key_still_gate, "
                "key_noise_ratio and key_refine_rounds ≥ 0"
            )
        if self.keyframe_mirrors not in (1, 2, 4):
            raise VcsError(f"keyframe_mirrors must be 1, 2 or 4, not {self.keyframe_mirrors}")
        if not self.non_key_network and not self.temporal_prior:
            raise VcsError("non_key_network off needs temporal_prior (without a prior there is nothing to output)")
        if self.motion_radius and not self.temporal_prior:
            raise VcsError("motion_radius needs temporal_prior (the motion search replaces its interpolation)")

    @property
    def key_width(self) -> int:
        """Channels of the keyframe branch's MSEM and MSFM."""
        return self.key_channels or self.channels

    @property
    def m_k(self) -> int:
        return measurement_count(self.alpha_k, self.block)

    @property
    def m_n(self) -> int:
        return measurement_count(self.alpha_n, self.block)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise VcsError(f"unknown model config key(s): {', '.join(unknown)}")
        return cls(**data)

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)


# The base of the shipped decoders: the motion search (±16 pixels, 8 candidates per keyframe, τ = 1, chosen on
# held-out training clips, docs/architecture.md) and the measurement projection.
_MHC = ModelConfig(arch="hitvcsnet-mhc", temporal_prior=True, motion_radius=16, consistency=True)
_MHC2S = _MHC.replace(arch="hitvcsnet-mhc2s", motion_passes=2, neighbour_blend=False)
_OBMC = _MHC2S.replace(arch="hitvcsnet-mhc2s-obmc", motion_overlap=8, motion_radius=24)

# Named architectures: the registry builds models from these (plus αn), weights are named after them.
ARCHITECTURES: dict[str, ModelConfig] = {
    "hitvcsnet": ModelConfig(),
    "hitvcsnet-tr": ModelConfig(arch="hitvcsnet-tr", temporal_prior=True),
    # ±16 pixels, 8 candidates per keyframe, τ = 1: chosen on held-out training clips (docs/architecture.md).
    "hitvcsnet-mh": ModelConfig(arch="hitvcsnet-mh", temporal_prior=True, motion_radius=16),
    # -mh plus the measurement-consistency projection: the same weights decode with either (docs/architecture.md).
    "hitvcsnet-mhc": _MHC,
    # -mhc plus a second search that also looks at the first pass's neighbouring frames (docs/architecture.md).
    "hitvcsnet-mhc2": _MHC.replace(arch="hitvcsnet-mhc2", motion_passes=2),
    # -mhc2 without the neighbours' unshifted average among the second search's hypotheses (docs/architecture.md).
    "hitvcsnet-mhc2s": _MHC2S,
    # -mhc, -mhc2 and -mhc2s without the non-keyframe network: decoders of the same weights, 3–6× faster on a CPU
    # (docs/architecture.md).
    "hitvcsnet-mhc-lin": _MHC.replace(arch="hitvcsnet-mhc-lin", non_key_network=False),
    "hitvcsnet-mhc2-lin": _MHC.replace(arch="hitvcsnet-mhc2-lin", motion_passes=2, non_key_network=False),
    "hitvcsnet-mhc2s-lin": _MHC2S.replace(arch="hitvcsnet-mhc2s-lin", non_key_network=False),
    # -mhc2s(-lin) with overlapped block motion compensation, 8 pixels past each edge, and a ±24-pixel search
    # (docs/architecture.md: the wider search paid once the candidate gather was cheap).
    "hitvcsnet-mhc2s-obmc": _OBMC,
    "hitvcsnet-mhc2s-obmc-lin": _OBMC.replace(arch="hitvcsnet-mhc2s-obmc-lin", non_key_network=False),
    # -mhc2s-obmc-lin whose encoder alternates the keyframe grid (docs/architecture.md): same weights, +0.6 dB
    # on held-out clips at αn 0.1.
    "hitvcsnet-mhc2s-obmc-lin-alt": _OBMC.replace(
        arch="hitvcsnet-mhc2s-obmc-lin-alt",
        non_key_network=False,
        key_grid_shift=16,
        key_still_gate=1e-4,
        key_noise_ratio=2.0,
    ),
    # -mhc-lin with the keyframe network averaged over 4 mirror images: slower, a little better (docs/architecture.md).
    "hitvcsnet-mhc-lin-flip4": _MHC.replace(arch="hitvcsnet-mhc-lin-flip4", non_key_network=False, keyframe_mirrors=4),
    "hitvcsnet-nohfim": ModelConfig(arch="hitvcsnet-nohfim", hfim=False),
    "hitvcsnet-nohffm": ModelConfig(arch="hitvcsnet-nohffm", hffm=False),
}


def architecture(name: str, **overrides: Any) -> ModelConfig:
    """The config of a named architecture, with overrides (alpha_n, channels, …)."""
    if name not in ARCHITECTURES:
        raise VcsError(f"unknown architecture {name!r}; known: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name].replace(**overrides)
