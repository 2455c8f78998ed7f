"""Non-keyframe PSNR after each stage of the decoder, on held-out *training* chains (never the test set).

    python scripts/decoder_stages.py MODEL [--threads 1]

Stages: the motion-compensated prior; + the initial reconstruction's correction; + the non-keyframe network
(MSEM, HFIM, MSFM); each also projected onto the frame's measurements. The chains and the quantizer are
scripts/compare_decoders.py's (moving and still chains reported apart). docs/architecture.md quotes it: with
today's weights the network adds nothing, which is why hitvcsnet-mhc-lin ships.
"""

from __future__ import annotations

import argparse

import torch
from compare_decoders import ROOT, frame_psnr, quantized

from vcscodec.models import chain_targets
from vcscodec.quant import DEFAULT_QUANT_STEP
from vcscodec.registry import find_model
from vcscodec.train.config import load_config
from vcscodec.train.loop import load_data, split_validation, validation_chains


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a model with the motion search (hitvcsnet-mh*)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    card = find_model(args.model)
    model = card.load()
    if not model.config.motion_radius:
        raise SystemExit(f"{card.name} has no motion search")
    cfg = load_config(ROOT / f"configs/hitvcsnet-mh-n{card.alpha_n:g}.toml")
    _, held_out = split_validation(cfg, load_data(cfg))
    chains = validation_chains(held_out, cfg, model.config.gop)
    moving = len(chains) * 4 // 5  # validation_chains: the moving chains, then a quarter as many still ones
    phi = model.sampling.non.weight
    scores: dict[str, list[torch.Tensor]] = {}
    with torch.no_grad():
        for batch in chains.split(8):
            keys, non = chain_targets(batch, model.config.gop)
            y_key = quantized(model.measure_key(keys[:, :, 0]), DEFAULT_QUANT_STEP)
            y_non = quantized(model.measure_non(non[:, :, :, 0]), DEFAULT_QUANT_STEP)
            n, g, k = y_non.shape[:3]
            flat_key, flat_non = y_key.flatten(0, 1), y_non.flatten(0, 2)
            levels: list[list[torch.Tensor]] = []
            key = model.keyframes_from_initial(model.initial_key(flat_key), flat_key, levels)
            prior = model._motion_prediction(key, flat_non, n, g, k, model.default_positions(k))
            initial = model._corrected_prior(prior, flat_non)
            deep = model._non_keyframe_network(initial, levels, n, g, k)
            truth = non[:, :, :, 0].flatten(0, 2)
            for stage, frames in (("prior", prior), ("+ correction", initial[0]), ("+ network", deep)):
                for label, x in ((stage, frames), (f"{stage}, projected", model.project(frames, flat_non, phi))):
                    psnr = frame_psnr(x[:, 0], truth).view(n, g, k)[:, 0].mean(1)  # the first GOP, as compare
                    scores.setdefault(label, []).append(psnr)
    for label, values in scores.items():
        v = torch.cat(values)
        print(f"{card.name} {label:26s} moving {v[:moving].mean():.3f} · still {v[moving:].mean():.3f}", flush=True)


if __name__ == "__main__":
    main()
