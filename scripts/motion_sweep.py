"""How the motion search of hitvcsnet-mh was set: non-keyframe PSNR on held-out *training* clips.

    python scripts/motion_sweep.py --ratio 0.1 [--model NAME] [--threads 2]

Never run on ../shared/data/cif: those are the test sequences. The clips are the validation clips of
configs/hitvcsnet-mh-n*.toml (held out of training): 3 moving chains of 17 frames from each, a 288×352 crop
(CIF-sized, so ±16-pixel search has room), plus one still chain per clip (the first frame repeated). Every setting
uses the same weights (``--model``, default: the ratio's default model); only the search changes (radius 0 =
hitvcsnet-tr's linear interpolation). docs/architecture.md's table used the KLT starts
(--model hitvcsnet-mh-k0.5-n0.1-ba52909d / hitvcsnet-mh-k0.5-n0.01-7bc1f2af).
Prints one line per setting: moving and still non-keyframe PSNR, then per clip.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import torch

from vcscodec.models import HITVCSNet, chain_targets
from vcscodec.registry import default_model, find_model
from vcscodec.train.config import load_config
from vcscodec.train.loop import load_data, rounded_psnr, split_validation

ROOT = Path(__file__).resolve().parent.parent


def chains(ratio: str, per_clip: int, size: tuple[int, int] = (288, 352)) -> list[tuple[str, str, torch.Tensor]]:
    cfg = load_config(ROOT / f"configs/hitvcsnet-mh-n{ratio}.toml")
    _, clips = split_validation(cfg, load_data(cfg))
    rng = np.random.default_rng(0)
    out = []
    for clip in clips:
        t, h, w = clip.frames.shape
        hh, ww = min(size[0], h // 32 * 32), min(size[1], w // 32 * 32)
        y0, x0 = (h - hh) // 2, (w - ww) // 2
        for i in range(per_clip + 1):
            start = int(rng.integers(0, t - 17))
            frames = np.asarray(clip.frames[start : start + 17, y0 : y0 + hh, x0 : x0 + ww], np.float32) / 255
            if i == per_clip:  # the still chain
                frames = np.repeat(frames[:1], 17, axis=0)
            out.append((clip.name, "still" if i == per_clip else "moving", torch.from_numpy(frames)[None]))
    return out


def non_keyframes(model: HITVCSNet, frames: torch.Tensor) -> torch.Tensor:
    """The rebuilt non-keyframes (N, G, K, 1, H, W). While both deep paths are still at their zero start they add
    nothing, so only the initial reconstructions are computed: 20× faster."""
    deep_outputs = (model.msfm_key.out, model.msfm_non.out)
    if any(conv.weight.any() or conv.bias.any() for conv in deep_outputs):
        return model(frames).non
    gop = model.config.gop
    n, t, h, w = frames.shape
    g, k = (t - 1) // gop, gop - 1
    y_key = model.measure_key(frames[:, ::gop])
    y_non = model.measure_non(frames[:, : g * gop].reshape(n, g, gop, h, w)[:, :, 1:])
    keys = model.initial_key(y_key.flatten(0, 1))[0]
    initial = model._temporal_prior(keys, y_non.flatten(0, 2), n, g, k, model.default_positions(k))[0]
    return initial.view(n, g, k, 1, h, w)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratio", choices=["0.1", "0.01"], default="0.1")
    parser.add_argument("--radius", type=int, action="append", help="default: 0 8 16")
    parser.add_argument("--candidates", type=int, action="append", help="default: 8")
    parser.add_argument("--temperature", type=float, action="append", help="default: 0.5 1 2")
    parser.add_argument("--model", default=None, help="weights to search with (default: the ratio's default)")
    parser.add_argument("--per-clip", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    card = find_model(args.model) if args.model else default_model(float(args.ratio))
    weights = card.load().state_dict()
    data = chains(args.ratio, args.per_clip)
    settings = [(0, 8, 1.0)] if 0 in (args.radius or [0, 8, 16]) else []
    settings += [
        s
        for s in itertools.product(args.radius or [8, 16], args.candidates or [8], args.temperature or [0.5, 1.0, 2.0])
        if s[0] > 0
    ]
    for radius, count, temperature in settings:
        cfg = card.model_config().replace(motion_radius=radius, motion_candidates=count, motion_temperature=temperature)
        model = HITVCSNet(cfg).eval()
        model.load_state_dict(weights)
        scores: dict[tuple[str, str], list[float]] = {}
        with torch.no_grad():
            for name, kind, frames in data:
                _, non = chain_targets(frames, 8)
                scores.setdefault((name, kind), []).append(rounded_psnr(non_keyframes(model, frames), non))
        kinds = {k: np.mean([np.mean(v) for (_, kk), v in scores.items() if kk == k]) for k in ("moving", "still")}
        clips = " ".join(f"{n.split('_')[0]}:{k[0]} {np.mean(v):.2f}" for (n, k), v in scores.items())
        print(
            f"radius {radius:2d} candidates {count} τ {temperature:g}: moving {kinds['moving']:.2f} "
            f"still {kinds['still']:.2f} | {clips}",
            flush=True,
        )


if __name__ == "__main__":
    main()
