"""Training speed: steps per second of `vcs train`'s own step on a fixed config, on the CPU and, when there is one,
on the GPU (fp32/bf16, channels_last off/on, host or on-device sampler); bf16 on the CPU too where it has the
arithmetic.

    .venv/bin/python scripts/bench_train.py                  # the small preset, CPU (+ GPU)
    .venv/bin/python scripts/bench_train.py --preset shipped # the shipped configs' network, crop and batch

The clips are synthetic (smooth noise panned across the frame, made in numpy), so the script needs neither
PyAV nor any data folder: it runs as it is on a rented GPU machine. Startup (model build, KLT, first steps
with cuDNN's autotuning) is excluded by the warm-up steps.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from vcscodec.hardware import cpu_has_bf16
from vcscodec.train.config import TrainConfig
from vcscodec.train.data import Clip
from vcscodec.train.loop import build_trainer, hardware, train_step

PRESETS = {
    # A CPU-sized network: what the tests and this figure in docs/training.md use.
    "small": {"channels": 16, "levels": 2, "crop": 64, "batch": 4},
    # configs/hitvcsnet-tr-*.toml.
    "shipped": {"channels": 32, "levels": 4, "crop": 96, "batch": 8},
    # The shipped network with the paper's batch of 32.
    "paper": {"channels": 32, "levels": 4, "crop": 96, "batch": 32},
}


def synthetic_clips(count: int = 4, frames: int = 40, size: int = 160, seed: int = 0) -> list[Clip]:
    """Low-pass noise textures panned by a pixel or two a frame: video-like statistics, no files."""
    rng = np.random.default_rng(seed)
    clips = []
    for i in range(count):
        spectrum = np.fft.rfft2(rng.standard_normal((2 * size, 2 * size)))
        fy = np.fft.fftfreq(2 * size)[:, None]
        fx = np.fft.rfftfreq(2 * size)[None, :]
        texture = np.fft.irfft2(spectrum / (1 + (np.hypot(fy, fx) * 40) ** 2), s=(2 * size, 2 * size))
        texture = (texture - texture.min()) / np.ptp(texture) * 219 + 16
        vy, vx = rng.uniform(-2, 2, 2)
        video = np.stack(
            [texture[int(size / 2 + vy * t) :][:size, int(size / 2 + vx * t) :][:, :size] for t in range(frames)]
        )
        clips.append(Clip(f"synthetic{i}", Path(f"synthetic{i}"), f"synthetic{i}", np.round(video).astype(np.uint8)))
    return clips


def steps_per_second(config: TrainConfig, clips: list[Clip], device: torch.device, steps: int, warmup: int) -> float:
    trainer = build_trainer(config, clips, [], device)
    for _ in range(warmup):
        train_step(trainer).item()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        train_step(trainer).item()  # the loop reads every step's loss: the same synchronisation
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=PRESETS, default="small")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch's default)")
    parser.add_argument("--cpu-only", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    p = PRESETS[args.preset]
    clips = synthetic_clips()

    def config(device: str, bf16: str, channels_last: str, on_device: bool) -> TrainConfig:
        c = TrainConfig()
        c.model.arch, c.model.init = "hitvcsnet-tr", "random"  # the start does not change a step's cost
        c.model.channels, c.model.levels = p["channels"], p["levels"]
        c.data.crop, c.data.batch, c.data.on_device = p["crop"], p["batch"], on_device
        c.run.device, c.run.bf16, c.run.channels_last = device, bf16, channels_last
        return c

    variants = [("cpu", "off", cl, False) for cl in ("off", "on")]
    if cpu_has_bf16():  # autocast to bf16 on the CPU only pays where oneDNN has the arithmetic (AVX-512 BF16, AMX)
        variants += [("cpu", "on", cl, False) for cl in ("off", "on")]
    if torch.cuda.is_available() and not args.cpu_only:
        variants += [("cuda", bf, cl, od) for bf in ("off", "on") for cl in ("off", "on") for od in (False, True)]
    print(
        f"preset {args.preset}: hitvcsnet-tr, {p['channels']} channels, {p['levels']} levels, "
        f"crop {p['crop']}, batch {p['batch']}, {args.steps} timed steps after {args.warmup}"
    )
    for device_name, bf16, channels_last, on_device in variants:
        device = torch.device(device_name)
        rate = steps_per_second(
            config(device_name, bf16, channels_last, on_device), clips, device, args.steps, args.warmup
        )
        sampler = "on-device sampler" if on_device else "host sampler"
        print(
            f"{hardware(device)} | bf16 {bf16:3} | channels_last {channels_last:3} | {sampler:17} | "
            f"{rate:8.2f} steps/s | {rate * p['batch']:8.1f} chains/s"
        )


if __name__ == "__main__":
    main()
