"""Building blocks of HIT-VCSNet's deep reconstruction (paper Fig. 2, as its text describes them)."""

from __future__ import annotations

import torch
from torch import nn


def conv3x3(channels_in: int, channels_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(channels_in, channels_out, 3, stride=stride, padding=1)


class ResidualBlock(nn.Module):
    """RB (Fig. 2(c)): x + conv(ReLU(conv(x))), convolutions of stride 1."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv3x3(channels, channels), nn.ReLU(inplace=True), conv3x3(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class DownBlock(nn.Module):
    """Down-sampling block of HFFM "arranged as an RB": a stride-2 conv, then a residual body."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.resample = conv3x3(channels, channels, stride=2)
        self.body = ResidualBlock(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.resample(x))


class UpBlock(nn.Module):
    """Up-sampling block of HFFM "arranged as an RB": a residual body, then a stride-2 deconvolution.

    The body runs before the deconvolution, at the coarse size: a quarter of the cost, and the fine scales are
    where a CPU decoder spends its time.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = ResidualBlock(channels)
        self.resample = nn.ConvTranspose2d(channels, channels, 2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resample(self.body(x))


def scale_path(channels: int, source: int, target: int) -> nn.Sequential:
    """Blocks that carry a feature from scale ``source`` to scale ``target`` (0 = full size), one per octave."""
    steps = abs(target - source)
    block = DownBlock if target > source else UpBlock
    return nn.Sequential(*[block(channels) for _ in range(steps)])


class FusionUpStep(nn.Module):
    """One MSFM step: a stride-2 deconvolution followed by two (ReLU, conv) pairs."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ConvTranspose2d(channels, channels, 2, stride=2),
            nn.ReLU(inplace=True),
            conv3x3(channels, channels),
            nn.ReLU(inplace=True),
            conv3x3(channels, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
