"""The training loop of `vcs train`: resumable, logged, exportable."""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import VcsError
from ..models import HITVCSNet, architecture, hitvcsnet_loss
from ..models.init import init_linear, klt_basis
from .config import TrainConfig
from .data import ChainSampler, Clip, find_sources, load_clips

CHECKPOINT = "checkpoint.pt"
LOG = "log.jsonl"


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise VcsError("--device cuda asked for, but no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def block_second_moments(clips: list[Clip], block: int, gop: int, samples: int, seed: int) -> tuple[np.ndarray, ...]:
    """E[x xᵀ] of B×B blocks and E[r rᵀ] of their residual from the keyframes' linear interpolation."""
    rng = np.random.default_rng(seed)
    d = block * block
    blocks = np.zeros((d, d))
    residuals = np.zeros((d, d))
    per_clip = max(1, samples // len(clips))
    for clip in clips:
        t, h, w = clip.frames.shape
        if h < block or w < block or t < 2:
            continue
        span = min(gop, t - 1)
        starts = rng.integers(0, t - span, per_clip)
        ys = rng.integers(0, h - block + 1, per_clip)
        xs = rng.integers(0, w - block + 1, per_clip)
        pos = rng.integers(1, span, per_clip) if span > 1 else np.zeros(per_clip, int)
        for s, y, x, p in zip(starts, ys, xs, pos):
            cube = clip.frames[s : s + span + 1, y : y + block, x : x + block].astype(np.float64) / 255.0
            b = cube[p].reshape(-1)
            blend = ((span - p) * cube[0] + p * cube[span]).reshape(-1) / span
            blocks += np.outer(b, b)
            residuals += np.outer(b - blend, b - blend)
    n = per_clip * len(clips)
    return blocks / n, residuals / n


@dataclass
class Trainer:
    config: TrainConfig
    model: HITVCSNet
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    sampler: ChainSampler
    validation: torch.Tensor | None
    device: torch.device
    bf16: bool
    step: int = 0
    wall: float = 0.0
    samples_seen: int = 0


def build_model(config: TrainConfig, train_clips: list[Clip]) -> HITVCSNet:
    m = config.model
    model = HITVCSNet(architecture(m.arch, alpha_k=m.alpha_k, alpha_n=m.alpha_n, channels=m.channels,
                                   levels=m.levels, scales=m.scales))
    if m.resume_weights:
        state = torch.load(config.path(m.resume_weights), map_location="cpu", weights_only=True)
        model.load_state_dict(state.get("model", state))
    elif m.init == "klt":
        cfg = model.config
        blocks, residuals = block_second_moments(train_clips, cfg.block, cfg.gop, 20000, config.run.seed)
        phi_k = klt_basis(blocks)
        # The temporal-prior variant measures what interpolation misses: the KLT of the residual.
        phi_n = klt_basis(residuals) if cfg.temporal_prior else phi_k
        init_linear(model, phi_k, phi_n)
    return model


def validation_chains(clips: list[Clip], config: TrainConfig) -> torch.Tensor | None:
    if not clips:
        return None
    sampler = ChainSampler(clips, 8, config.data.validation_crop, seed=12345, static=0.0, stride2=0.0)
    return torch.from_numpy(sampler.sample(config.data.validation_chains * len(clips)))


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a.clamp(0, 1) * 255).round() - b * 255).pow(2).mean().item()
    return 10 * math.log10(255**2 / max(mse, 1e-10))


@torch.no_grad()
def validate(trainer: Trainer) -> dict[str, float]:
    """PSNR of keyframes and non-keyframes on the held-out chains (8-bit rounded, as the bench scores)."""
    if trainer.validation is None:
        return {}
    model = trainer.model.eval()
    keys, nons = [], []
    for chunk in trainer.validation.split(8):
        chunk = chunk.to(trainer.device)
        with torch.autocast(trainer.device.type, torch.bfloat16, enabled=trainer.bf16):
            rec = model(chunk)
        gop = model.config.gop
        keys.append(_psnr(rec.key.float().squeeze(2), chunk[:, ::gop]))
        non = chunk[:, :gop][:, 1:]
        nons.append(_psnr(rec.non.float()[:, 0].squeeze(2), non))
    model.train()
    gop = model.config.gop
    k, n = float(np.mean(keys)), float(np.mean(nons))
    return {"val_psnr_key": k, "val_psnr_non": n, "val_psnr": (k + (gop - 1) * n) / gop}


def parameter_groups(model: HITVCSNet, config: TrainConfig) -> list[dict[str, Any]]:
    linear = ("sampling.", "initial_key.", "initial_non.")
    named = list(model.named_parameters())
    return [
        {"params": [p for n, p in named if n.startswith(linear)], "lr": config.optim.lr * config.optim.sampling_lr_scale},
        {"params": [p for n, p in named if not n.startswith(linear)], "lr": config.optim.lr},
    ]


def lr_factor(config: TrainConfig) -> Callable[[int], float]:
    """The paper's schedule (halved every ``halve_every_epochs`` epochs) after an optional linear warm-up."""
    period = max(1, config.optim.halve_every_epochs * config.optim.epoch_steps)
    warmup = config.optim.warmup_steps

    def factor(step: int) -> float:
        ramp = min(1.0, (step + 1) / warmup) if warmup else 1.0
        return ramp * 0.5 ** (step // period)

    return factor


def checkpoint_state(trainer: Trainer) -> dict[str, Any]:
    return {
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
        "step": trainer.step,
        "wall": trainer.wall,
        "samples_seen": trainer.samples_seen,
        "sampler": trainer.sampler.state(),
        "torch_rng": torch.get_rng_state(),
        "config": trainer.config.to_dict(),
        "model_config": trainer.model.config.to_dict(),
    }


def save_checkpoint(trainer: Trainer, run_dir: Path) -> None:
    tmp = run_dir / f".{CHECKPOINT}.tmp"
    torch.save(checkpoint_state(trainer), tmp)
    tmp.replace(run_dir / CHECKPOINT)  # atomic: a kill mid-save keeps the previous checkpoint


def load_checkpoint(trainer: Trainer, run_dir: Path) -> None:
    state = torch.load(run_dir / CHECKPOINT, map_location="cpu", weights_only=False)
    trainer.model.load_state_dict(state["model"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.scheduler.load_state_dict(state["scheduler"])
    trainer.step, trainer.wall, trainer.samples_seen = state["step"], state["wall"], state["samples_seen"]
    trainer.sampler.restore(state["sampler"])
    torch.set_rng_state(state["torch_rng"])


def prepare(config: TrainConfig, resume: bool) -> tuple[Trainer, list[Clip]]:
    run = config.run
    run_dir = config.path(run.dir)
    if (run_dir / CHECKPOINT).exists() and not resume:
        raise VcsError(f"{run_dir} already holds a run: pass --resume to continue it, or choose another run.dir")
    if resume and not (run_dir / CHECKPOINT).exists():
        raise VcsError(f"--resume: no checkpoint in {run_dir}")
    torch.manual_seed(run.seed)
    if run.threads:
        torch.set_num_threads(run.threads)
    device = pick_device(run.device)
    sources = find_sources([config.path(f) for f in config.data.train])
    clips = load_clips(sources, config.path(config.data.cache), config.data.photo_frames,
                       max_frames=config.data.max_frames or None)
    held = set(config.data.validation)
    unknown = held - {c.name for c in clips}
    if unknown:
        raise VcsError(f"config data.validation names clips that are not in the data: {', '.join(sorted(unknown))}")
    train_clips = [c for c in clips if c.name not in held]
    val_clips = [c for c in clips if c.name in held]
    if not train_clips:
        raise VcsError("every clip is held out for validation: nothing left to train on")
    model = build_model(config, train_clips).to(device)
    cuda = device.type == "cuda"
    bf16 = run.bf16 == "on" or (run.bf16 == "auto" and cuda)
    if run.channels_last == "on" or (run.channels_last == "auto" and cuda):
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(parameter_groups(model, config), lr=config.optim.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(config))
    sampler = ChainSampler(train_clips, model.config.gop, config.data.crop, run.seed,
                           config.data.static, config.data.stride2)
    trainer = Trainer(config, model, optimizer, scheduler, sampler, validation_chains(val_clips, config),
                      device, bf16)
    run_dir.mkdir(parents=True, exist_ok=True)
    if resume:
        load_checkpoint(trainer, run_dir)
    return trainer, train_clips


def train_step(trainer: Trainer) -> float:
    batch = torch.from_numpy(trainer.sampler.sample(trainer.config.data.batch)).to(trainer.device)
    with torch.autocast(trainer.device.type, torch.bfloat16, enabled=trainer.bf16):
        rec = trainer.model(batch)
    loss = hitvcsnet_loss(rec, batch, trainer.model.config.gop)  # the loss in fp32
    trainer.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if trainer.config.optim.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(trainer.model.parameters(), trainer.config.optim.grad_clip)
    trainer.optimizer.step()
    trainer.scheduler.step()
    trainer.step += 1
    trainer.samples_seen += batch.shape[0]
    return loss.item()


def run_training(
    config: TrainConfig, resume: bool = False, on_step: Callable[[Trainer, dict[str, Any]], None] | None = None
) -> Trainer:
    """Train until ``optim.steps``; checkpoint every ``run.checkpoint_every`` steps and on exit (Ctrl-C too)."""
    trainer, train_clips = prepare(config, resume)
    run_dir = config.path(config.run.dir)
    log = open(run_dir / LOG, "a")
    started = time.perf_counter() - trainer.wall
    if trainer.step == 0 and trainer.validation is not None:  # the starting point, for comparison
        log.write(json.dumps({"step": 0, **validate(trainer)}) + "\n")
        log.flush()
    try:
        while trainer.step < config.optim.steps:
            loss = train_step(trainer)
            trainer.wall = time.perf_counter() - started
            record: dict[str, Any] = {"step": trainer.step, "loss": loss, "lr": trainer.scheduler.get_last_lr()[0],
                                      "wall": round(trainer.wall, 2)}
            if trainer.step % config.run.validate_every == 0 or trainer.step == config.optim.steps:
                record.update(validate(trainer))
            if trainer.step % config.run.log_every == 0 or len(record) > 4:
                log.write(json.dumps(record) + "\n")
                log.flush()
            if on_step:
                on_step(trainer, record)
            if trainer.step % config.run.checkpoint_every == 0:
                save_checkpoint(trainer, run_dir)
    finally:
        save_checkpoint(trainer, run_dir)
        log.close()
    if config.run.export:
        export(trainer, train_clips, config.path(config.run.export))
    return trainer


def hardware() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"


def export(trainer: Trainer, train_clips: list[Clip], folder: Path) -> Any:
    """The trained model into the registry: half precision, manifest with config, data, steps, hardware."""
    from ..registry import save_model, sha256_file

    model = trainer.model.to("cpu", memory_format=torch.contiguous_format)
    info = {
        "training": {
            "steps": trainer.step,
            "samples_seen": trainer.samples_seen,
            "wall_seconds": round(trainer.wall, 1),
            "hardware": hardware(),
            "config": trainer.config.to_dict(),
            **validate(trainer),
        },
        "data": {
            "provenance": "../shared/data/PROVENANCE.md (video clips and photos; several research-only sources)",
            "files": [{"name": c.source.name, "sha256": sha256_file(c.source)} for c in train_clips],
            "held_out_for_validation": trainer.config.data.validation,
        },
    }
    return save_model(model, folder, info, default=trainer.config.run.default)
