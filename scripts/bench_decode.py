"""Decode speed of the real decoder on synthetic frames, for docs/performance.md.

    .venv/bin/python scripts/bench_decode.py --sizes cif,720p --frames 9 --precisions fp32,bf16

Frames (a camera pan from `vcscodec.samples`, luma only, as the paper codes) are encoded into a real .vcs file
and decoded with `ContainerReader` + `decode_records`, exactly as `vcs decode` does minus writing the video.
The model is the shipped default for ``--ratio`` from the weights folder ($VCS_WEIGHTS or weights/) when there is
one, else a freshly built, untrained model of ``--arch`` (speed does not depend on the weights' values).
Each (size, precision) is decoded twice and the second decode is timed: the first pays one-off costs (thread
pools, oneDNN kernels chosen per tensor shape) that a long video pays once. The 1-minute load average is
recorded: on a shared machine other processes slow the figures down.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

SIZES = {"cif": (352, 288), "720p": (1280, 720), "1080p": (1920, 1080)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="cif,720p", help="comma-separated: cif, 720p, 1080p or WxH")
    parser.add_argument("--frames", type=int, default=9, help="frames per size (9 = one GOP and its closing key)")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--ratio", type=float, default=0.1, help="non-keyframe ratio αn of the model")
    parser.add_argument("--model", default=None, help="a shipped model by name (default: the ratio's default)")
    parser.add_argument("--arch", default="hitvcsnet-mh", help="architecture built when no weights are shipped")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument(
        "--batch-gops", type=int, default=0, help="GOPs rebuilt together; 0: by frame size, as vcs decode"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    import torch

    from vcscodec.bench import decode_timed, device_info
    from vcscodec.codec import FrameEncoder, encode_frames
    from vcscodec.errors import VcsError
    from vcscodec.hardware import pick_device
    from vcscodec.models import HITVCSNet, architecture, parameter_counts
    from vcscodec.registry import default_model, find_model, save_model, weights_dir
    from vcscodec.samples import gray_clip

    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    with tempfile.TemporaryDirectory(prefix="vcs-speed-") as tmp:
        folder = Path(tmp)
        source = f"shipped weights in {weights_dir()}"
        try:
            card = find_model(args.model) if args.model else default_model(args.ratio)
        except VcsError as e:
            # asked for by name, or models of the ratio there but none the default: no fallback to an untrained one
            if args.model or not str(e).startswith(("no model for ratio", "no models in")):
                raise SystemExit(f"bench_decode: {e}") from None
            config = architecture(args.arch, alpha_n=args.ratio)
            card = save_model(HITVCSNet(config), folder / "weights")
            source = f"freshly built {args.arch} (untrained; no shipped model for αn {args.ratio:g})"
        model = card.load(device)
        encoder = FrameEncoder(card)
        params = parameter_counts(model)["total"]
        info = device_info(device)
        print(f"model {card.name}: {source}; {params:,} parameters; config {card.config}")
        print(f"device {info}; python {platform.python_version()}")

        def encode(frames: list, width: int, height: int, name: str) -> Path:
            path = folder / name
            header = lambda chroma: encoder.header(width, height, Fraction(25), len(frames), chroma)  # noqa: E731
            encode_frames(iter(frames), path, header, encoder, "gray", force=True)
            return path

        results = []
        for size in args.sizes.split(","):
            width, height = SIZES.get(size) or tuple(int(v) for v in size.lower().split("x"))
            clip = encode(gray_clip(args.frames, width, height), width, height, f"{size}.vcs")
            for precision in args.precisions.split(","):
                decode_timed(clip, model, device, precision, args.batch_gops)  # untimed warm-up, same shapes
                load = os.getloadavg()[0]
                started = time.perf_counter()
                frames, seconds = decode_timed(clip, model, device, precision, args.batch_gops)
                wall = time.perf_counter() - started
                row = {
                    "size": f"{width}x{height}",
                    "precision": precision,
                    "frames": len(frames),
                    "seconds": seconds,
                    "fps": len(frames) / seconds,
                    "seconds_per_frame": seconds / len(frames),
                    "wall_seconds": wall,
                    "load_average_1min": load,
                }
                results.append(row)
                print(
                    f"{row['size']:>9} {precision}: {row['fps']:.2f} frames/s ({row['seconds_per_frame']:.2f} s "
                    f"a frame, {len(frames)} frames; load average {load:.1f})",
                    flush=True,
                )
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "model": {"name": card.name, "source": source, "parameters": params, "config": card.config},
        "device": info,
        "chroma": "gray (Y only)",
        "batch_gops": args.batch_gops,
        "results": results,
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
