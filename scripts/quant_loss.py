"""What quantization costs: PSNR of decoding float measurements vs the quantized ones a .vcs file carries.

    python scripts/quant_loss.py ../shared/data/cif --ratio 0.1 --step 1.3 [--step 2.0 ...]

Paper protocol (first 17 frames, mean Y PSNR over frames 1-16), default model of the ratio. A benchmark, not a
test: it prints numbers for docs/format.md.
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import numpy as np
import torch

from vcscodec.codec import pick_model
from vcscodec.io import open_video
from vcscodec.metrics import psnr
from vcscodec.quant import dequantize, quantize
from vcscodec.sampling import measure_plane


def decode(model, ys: list[np.ndarray]) -> np.ndarray:
    """Frames 0..16 from float measurements (2 GOPs + the final keyframe)."""
    keys = torch.from_numpy(np.stack([ys[0], ys[8], ys[16]]).astype(np.float32))[None]
    non = torch.from_numpy(np.stack([ys[1:8], ys[9:16]]).astype(np.float32))[None]
    with torch.no_grad():
        rec = model.reconstruct(keys, non, model.default_positions(7))
    frames = [rec.key[0, 0]] + [rec.non[0, 0, i] for i in range(7)] + [rec.key[0, 1]]
    frames += [rec.non[0, 1, i] for i in range(7)] + [rec.key[0, 2]]
    return np.stack([(f[0].clamp(0, 1) * 255).round().byte().numpy() for f in frames])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sequences", type=Path)
    parser.add_argument("--ratio", type=float, default=0.1)
    parser.add_argument("--step", type=float, action="append")
    args = parser.parse_args()
    card = pick_model(args.ratio, None)
    model = card.load("cpu").to(memory_format=torch.channels_last)
    phi_k, phi_n = card.sampling_matrices()
    steps = args.step or [1.3]
    print(f"model {card.name}, {platform.processor() or platform.machine()}, torch {torch.__version__}")
    losses = {s: [] for s in steps}
    for path in sorted(args.sequences.glob("*.y4m")):
        with open_video(path) as reader:
            frames = [f.y for _, f in zip(range(17), reader, strict=False)]
        ys = [measure_plane(f, phi_k if i % 8 == 0 else phi_n) for i, f in enumerate(frames)]
        reference = np.mean([psnr(a, b) for a, b in zip(frames[:16], decode(model, ys)[:16], strict=True)])
        row = f"{path.stem:24s} float {reference:6.3f} dB"
        for s in steps:
            yq = [dequantize(quantize(y, s), s) for y in ys]
            quantized = np.mean([psnr(a, b) for a, b in zip(frames[:16], decode(model, yq)[:16], strict=True)])
            losses[s].append(reference - quantized)
            row += f" | step {s:g}: {quantized:6.3f} dB (−{reference - quantized:.4f})"
        print(row)
    for s in steps:
        print(f"step {s:g}: mean loss {np.mean(losses[s]):.4f} dB, worst {np.max(losses[s]):.4f} dB")


if __name__ == "__main__":
    main()
