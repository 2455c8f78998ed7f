"""Compare models (or decoder variants of the same weights) as the codec runs them: on held-out *training* chains.

    python scripts/compare_decoders.py MODEL [MODEL ...] [--threads 2] [--quant-step 1.3]

Never run on ../shared/data/cif: those are the test sequences. The chains are the train loop's validation chains
of configs/hitvcsnet-mh-n<ratio>.toml (4 clips held out of ../shared/data/train, 32 moving + 8 still chains of 17
frames, 128×128). Unlike the trainer's validation, the measurements go through the codec's quantizer, and PSNR and
SSIM are means over frames of 8-bit rounded frames (the bench's protocol; SSIM as `vcscodec.metrics.ssim`).
Scored: the first GOP's keyframe and its seven non-keyframes of each chain. docs/architecture.md quotes its output
for hitvcsnet-mh against -mhc.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from vcscodec.metrics import ssim
from vcscodec.models import chain_targets, keyframes_on_grids
from vcscodec.quant import DEFAULT_QUANT_STEP, dequantize, quantize
from vcscodec.registry import find_model
from vcscodec.train.config import load_config
from vcscodec.train.loop import load_data, rounded_psnr, split_validation, validation_chains

ROOT = Path(__file__).resolve().parent.parent


def quantized(y: torch.Tensor, step: float) -> torch.Tensor:
    return torch.from_numpy(dequantize(quantize(y.numpy(), step), step))


def frame_psnr(rebuilt: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """``rounded_psnr`` (the bench's 8-bit rounding) of each frame of (…, H, W), shaped (…)."""
    pairs = zip(rebuilt.flatten(0, -3), truth.flatten(0, -3), strict=True)
    return torch.tensor([rounded_psnr(a, b) for a, b in pairs]).view(rebuilt.shape[:-2])


def frame_ssim(rebuilt: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """SSIM of each frame of (…, H, W) in [0, 1], scored as the bench scores it, shaped (…)."""
    pairs = zip(rebuilt.flatten(0, -3), truth.flatten(0, -3), strict=True)
    scores = [ssim(b.numpy() * 255, a.clamp(0, 1).numpy() * 255) for a, b in pairs]
    return torch.tensor(scores).view(rebuilt.shape[:-2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quant-step", type=float, default=DEFAULT_QUANT_STEP)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    chains_by_ratio: dict[str, torch.Tensor] = {}
    for name in args.models:
        card = find_model(name)
        ratio = f"{card.alpha_n:g}"
        if ratio not in chains_by_ratio:
            cfg = load_config(ROOT / f"configs/hitvcsnet-mh-n{ratio}.toml")
            _, held_out = split_validation(cfg, load_data(cfg))
            chains_by_ratio[ratio] = validation_chains(held_out, cfg, card.model_config().gop)
        chains = chains_by_ratio[ratio]
        moving = len(chains) * 4 // 5  # validation_chains: the moving chains, then a quarter as many still ones
        model = card.load()
        start = time.perf_counter()
        key_psnr, non_psnr, all_ssim = [], [], []
        with torch.no_grad():
            for batch in chains.split(8):
                keys, non = chain_targets(batch, model.config.gop)
                # as the codec measures them: the keyframes of odd GOPs on the shifted grid of an -alt model
                shifts = [model.config.key_grid_shift * (p % 2) for p in range(keys.shape[1])]
                y_key = quantized(model.measure_key(keyframes_on_grids(keys[:, :, 0], shifts)), args.quant_step)
                y_non = quantized(model.measure_non(non[:, :, :, 0]), args.quant_step)
                rec = model.reconstruct(y_key, y_non, key_shifts=shifts)
                key_psnr.append(frame_psnr(rec.key[:, 0, 0], keys[:, 0, 0]))
                non_psnr.append(frame_psnr(rec.non[:, 0, :, 0], non[:, 0, :, 0]).mean(1))
                key_ssim = frame_ssim(rec.key[:, 0, 0], keys[:, 0, 0])
                non_ssim = frame_ssim(rec.non[:, 0, :, 0], non[:, 0, :, 0])
                all_ssim.append((key_ssim + non_ssim.sum(1)) / (1 + non_ssim.shape[1]))
        key, non_key = torch.cat(key_psnr), torch.cat(non_psnr)
        gop = model.config.gop
        both = (key + (gop - 1) * non_key) / gop
        structure = torch.cat(all_ssim)
        print(
            f"{card.name}: all {both.mean():.3f} / SSIM {structure.mean():.4f} "
            f"(key {key.mean():.3f}, non-key {non_key.mean():.3f}) · "
            f"moving {both[:moving].mean():.3f} (non-key {non_key[:moving].mean():.3f}) · "
            f"still {both[moving:].mean():.3f} (non-key {non_key[moving:].mean():.3f}) · "
            f"{time.perf_counter() - start:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
