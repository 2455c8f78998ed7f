"""The training loop of `vcs train`: resumable bit for bit, logged, exportable, on one process or many.

Started by torchrun (``WORLD_SIZE`` > 1) the loop joins a process group (nccl on GPUs, gloo on CPUs) and trains
through DistributedDataParallel: every rank draws its own chains (seed + rank) for its share of ``data.batch``,
every rank loads the checkpoint on resume, and only rank 0 writes the checkpoint, the log and the export.
Every collective operation is reached by all ranks at the same step, so no path works on one process only.

Stops: the first SIGINT (Ctrl-C) or SIGTERM finishes the step in flight, writes a checkpoint and returns with
``Trainer.stopped`` set; the same signal a second time stops at once, keeping the last checkpoint. A checkpoint
is only ever written between two steps, so a resumed run continues exactly where the saved one was.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import sys
import threading
import time
import zipfile
import zlib

try:
    import fcntl
except ImportError:  # not POSIX: run.dir is not locked
    fcntl = None  # type: ignore[assignment]
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import VcsError
from ..hardware import device_name, pick_device, use_threads
from ..models import HITVCSNet, architecture, hitvcsnet_loss
from ..models.init import init_linear, load_widened
from ..models.loss import reconstruction_terms
from ..output import Stopped, check_folder_can_be_made, replaced_whole
from .config import SINGLE_FRAME_PARTS, TrainConfig, check_validation_names, looks_like_path
from .data import ChainSampler, Clip, DeviceChainSampler, find_provenance, is_pack, load_collection

CHECKPOINT = "checkpoint.pt"
LOG = "log.jsonl"
# 1: the first loop (rank 0's sampler and RNG only); 2: adds every rank's sampler and RNG and the world size.
CHECKPOINT_FORMAT = 2


# ---- processes ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dist:
    """Where this process stands among the ranks of a run (one process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str = ""
    owns_group: bool = False  # we created the process group, so we destroy it

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            if self.backend == "nccl":  # nccl wants the device named, else it guesses one per rank and warns
                dist.barrier(device_ids=[self.local_rank])
            else:
                dist.barrier()

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order (a list of one on a single process)."""
        if self.world == 1:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out


def init_distributed(device: str) -> Dist:
    """Join the process group torchrun describes in the environment; a single process when WORLD_SIZE ≤ 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = pick_device(device, option="run.device").type == "cuda"
    if cuda:
        torch.cuda.set_device(local)
    owns = not dist.is_initialized()
    if owns:
        # Long timeout: the other ranks wait at a barrier while local rank 0 decodes the data the first time.
        dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(minutes=60))
    return Dist(dist.get_rank(), dist.get_world_size(), local, dist.get_backend(), owns)


# ---- model -------------------------------------------------------------------------------------------------------
def block_second_moments(clips: list[Clip], block: int, gop: int, samples: int, seed: int) -> tuple[np.ndarray, ...]:
    """E[x xᵀ] of B×B blocks and E[r rᵀ] of their residual from the keyframes' linear interpolation."""
    rng = np.random.default_rng(seed)
    d = block * block
    blocks = np.zeros((d, d))
    residuals = np.zeros((d, d))
    per_clip = max(1, samples // len(clips))
    count = 0
    for clip in clips:
        t, h, w = clip.frames.shape
        if h < block or w < block or t < 2:
            continue
        span = min(gop, t - 1)
        starts = rng.integers(0, t - span, per_clip)
        ys = rng.integers(0, h - block + 1, per_clip)
        xs = rng.integers(0, w - block + 1, per_clip)
        pos = rng.integers(1, span, per_clip) if span > 1 else np.zeros(per_clip, int)
        # Rows collected a chunk at a time, one matrix product each: 40× faster than outer products one by one.
        for lo in range(0, per_clip, 1024):
            rows = np.empty((min(1024, per_clip - lo), d))
            res = np.empty_like(rows)
            for i, (s, y, x, p) in enumerate(zip(*(a[lo : lo + 1024] for a in (starts, ys, xs, pos)), strict=True)):
                cube = clip.frames[s : s + span + 1, y : y + block, x : x + block].astype(np.float64) / 255.0
                rows[i] = cube[p].reshape(-1)
                res[i] = rows[i] - ((span - p) * cube[0] + p * cube[span]).reshape(-1) / span
            blocks += rows.T @ rows
            residuals += res.T @ res
            count += len(rows)
    if not count:
        raise VcsError(f"no training clip is at least {block}×{block} pixels with 2 frames")
    return blocks / count, residuals / count


def stable_klt_basis(second_moment: np.ndarray) -> np.ndarray:
    """``models.init.klt_basis`` computed the same way in every process: LAPACK's eigenvectors move in their last
    bits with its thread count (numpy's OpenBLAS follows OPENBLAS_NUM_THREADS, which `vcs` sets and a script
    may not), so the eigen-decomposition runs in torch on one thread and a config always starts from the same
    weights."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        values, vectors = (t.numpy() for t in torch.linalg.eigh(torch.from_numpy(second_moment)))
    finally:
        torch.set_num_threads(threads)
    basis = vectors[:, np.argsort(values)[::-1]].T  # strongest first, as rows
    signs = np.sign(basis[np.arange(len(basis)), np.abs(basis).argmax(axis=1)])  # as klt_basis: largest entry > 0
    return basis * signs[:, None]


def read_torch_file(path: Path, prefix: str = "") -> Any:
    """What ``torch.load`` reads from ``path``; an empty, cut-off, damaged or foreign file is a one-line error.
    torch's reader skips the zip archive's CRCs, so a flipped byte inside a tensor would load as a wrong weight."""
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                damaged = archive.testzip()
        except (OSError, zipfile.BadZipFile, zlib.error, ValueError) as e:
            damaged = f"unreadable: {e}"
        if damaged is not None:
            raise VcsError(f"{prefix}{path} is damaged (CRC mismatch in {damaged}): not used")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch and pickle fail in many ways on a file that is not theirs
        raise VcsError(f"{prefix}{path} is not a readable checkpoint ({type(e).__name__}: {e})") from None


def _load_start_weights(config: TrainConfig) -> dict[str, torch.Tensor]:
    """model.resume_weights: a checkpoint.pt, a state dict file, or the name of a model in the weights folder."""
    name = config.model.resume_weights
    path = config.path(name)
    if path.is_file():
        state = read_torch_file(path, "model.resume_weights: ")
        state = state.get("model", state) if isinstance(state, dict) else state
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise VcsError(f"model.resume_weights: {path} holds no weights (a checkpoint.pt or a state dict)")
        return state
    if path.is_dir():
        raise VcsError(f"model.resume_weights: {path} is a folder; name its checkpoint.pt")
    if looks_like_path(name):
        raise VcsError(f"model.resume_weights: no such file {path}")
    from ..registry import find_model

    return find_model(name).load().state_dict()


def build_model(config: TrainConfig, train_clips: list[Clip], initialise: bool = True) -> HITVCSNet:
    """The network of [model]; with ``initialise`` its start (KLT or given weights), else PyTorch's default (for a
    resume, whose weights come from the checkpoint, or a rank that receives rank 0's through DDP)."""
    m = config.model
    model = HITVCSNet(
        architecture(
            m.arch,
            alpha_k=m.alpha_k,
            alpha_n=m.alpha_n,
            block=m.block,
            gop=m.gop,
            channels=m.channels,
            key_channels=m.key_channels,
            levels=m.levels,
            scales=m.scales,
        )
    )
    if not initialise:
        return model
    if m.resume_weights:
        try:
            start = _load_start_weights(config)
            if m.key_channels:  # a narrower keyframe branch starts the wider one where it was
                load_widened(model, start)
            else:
                model.load_state_dict(start)
        except (RuntimeError, ValueError) as e:
            raise VcsError(f"model.resume_weights {m.resume_weights} do not fit [model]: {_misfit(e)}") from None
    elif m.init == "klt":
        cfg = model.config
        blocks, residuals = block_second_moments(train_clips, cfg.block, cfg.gop, m.init_samples, config.run.seed)
        phi_k = stable_klt_basis(blocks)
        # The temporal-prior variant measures what interpolation misses: the KLT of the residual.
        phi_n = stable_klt_basis(residuals) if cfg.temporal_prior else phi_k
        init_linear(model, phi_k, phi_n)
    return model


# optim.parts = "keyframes": the parameters that rebuild a keyframe from its own measurements (nothing else
# reads a keyframe's measurements, so the keyframe branch can be trained alone on single frames).
# "keyframe-head": only the keyframe MSFM, which nothing but the keyframe output reads: HFIM takes the keyframe
# MSEM's features into the non-keyframe network, so training MSEM alone moves what that network was trained on.
# "non-keyframes": what rebuilds a non-keyframe once its keyframes are decoded (its initial reconstruction, which
# the -lin decoders' correction is, MSEM, HFIM and MSFM), on whole chains; both Φ and the keyframe branch stay as
# loaded, so the encoder and the keyframes do not change and the motion search runs without a graph.
TRAINED_PARTS = {
    "keyframes": ("sampling.key.", "initial_key.", "msem_key.", "msfm_key."),
    "keyframe-head": ("msfm_key.",),
    "non-keyframes": ("initial_non.", "msem_non.", "hfim.", "msfm_non."),
}


def parameter_groups(model: HITVCSNet, config: TrainConfig) -> list[dict[str, Any]]:
    linear = ("sampling.", "initial_key.", "initial_non.")
    named = list(model.named_parameters())
    o = config.optim
    if o.parts in TRAINED_PARTS:
        named = [(n, p) for n, p in named if n.startswith(TRAINED_PARTS[o.parts])]
    return [
        {"params": [p for n, p in named if n.startswith(linear)], "lr": o.lr * o.sampling_lr_scale},
        {"params": [p for n, p in named if not n.startswith(linear)], "lr": o.lr},
    ]


def freeze_untrained(model: HITVCSNet, parts: str) -> None:
    """Turn off the gradients of what ``parts`` does not train, not merely leave it out of the optimizer: autograd
    then skips it (on whole chains, the keyframe branch and the motion search)."""
    if parts in TRAINED_PARTS:
        for name, p in model.named_parameters():
            p.requires_grad_(name.startswith(TRAINED_PARTS[parts]))


def lr_factor(config: TrainConfig) -> Callable[[int], float]:
    """The paper's schedule (halved every ``halve_every_epochs`` epochs) after an optional linear warm-up."""
    period = max(1, config.optim.halve_every_epochs * config.optim.epoch_steps)
    warmup = config.optim.warmup_steps

    def factor(step: int) -> float:
        ramp = min(1.0, (step + 1) / warmup) if warmup else 1.0
        return ramp * 0.5 ** (step // period)

    return factor


# ---- the trainer -------------------------------------------------------------------------------------------------
@dataclass
class Trainer:
    config: TrainConfig
    model: HITVCSNet  # the bare network (what is saved, validated and exported)
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    sampler: ChainSampler
    validation: torch.Tensor | None  # fixed held-out chains (rank 0 only)
    device: torch.device
    bf16: bool
    dist: Dist = field(default_factory=Dist)
    ddp: nn.Module | None = None  # the DistributedDataParallel wrapper, when several ranks train
    step: int = 0
    wall: float = 0.0
    samples_seen: int = 0
    last_validation: dict[str, Any] = field(default_factory=dict)  # with the step it was measured at
    stopped: str = ""  # the signal that stopped the run early ("" = it ran to optim.steps)
    run_lock: int = -1  # the descriptor that holds run.dir's lock (hold_run_dir), -1 = none
    exported: Any = None  # the registry card of the export
    saved_step: int | None = None  # the step of the checkpoint in run.dir; None: there is none

    @property
    def rank_batch(self) -> int:
        return self.config.data.batch // self.dist.world


def validation_chains(clips: list[Clip], config: TrainConfig, gop: int) -> torch.Tensor | None:
    if not clips:
        return None
    crop = config.data.validation_crop
    if not any(min(c.frames.shape[1:]) >= crop for c in clips):
        raise VcsError(f"no validation clip is at least {crop}×{crop} pixels: lower data.validation_crop")
    count = config.data.validation_chains * len(clips)
    moving = ChainSampler(clips, gop, crop, seed=12345, static=0.0, stride2=0.0).sample(count)
    # Still scenes too, a quarter as many: a non-keyframe path that only ever saw motion in validation once
    # passed while losing 3-6 dB on still chains (docs/training.md, 2026-11-26), and the test set is nearly still.
    still = ChainSampler(clips, gop, crop, seed=54321, static=1.0, stride2=0.0).sample(max(1, count // 4))
    return torch.from_numpy(np.concatenate([moving, still]))


def build_trainer(
    config: TrainConfig,
    train_clips: list[Clip],
    val_clips: list[Clip],
    device: torch.device,
    dist: Dist | None = None,
    initialise: bool = True,
) -> Trainer:
    """Model, optimizer, schedule and sampler for clips already loaded (the benchmark calls this directly)."""
    dist = dist or Dist()
    run = config.run
    if config.optim.parts in SINGLE_FRAME_PARTS and dist.world > 1:
        raise VcsError(f"optim.parts = {config.optim.parts} trains in one process (it is cheap); run without torchrun")
    if config.data.batch % dist.world:
        raise VcsError(f"data.batch {config.data.batch} does not split evenly over {dist.world} processes")
    torch.manual_seed(run.seed)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True  # fixed crop sizes: let cuDNN pick its fastest kernels once
        torch.set_float32_matmul_precision("high")
    # Rank 0 alone computes the start; DDP copies rank 0's weights to the others when it wraps the model.
    model = build_model(config, train_clips, initialise and dist.main).to(device)
    model.measurement_noise = config.optim.quant_noise / 255  # grey levels → the measurements' [0, 1] units
    bf16 = run.bf16 == "on" or (run.bf16 == "auto" and cuda)
    if run.channels_last == "on" or (run.channels_last == "auto" and cuda):
        model = model.to(memory_format=torch.channels_last)
    freeze_untrained(model, config.optim.parts)
    optimizer = torch.optim.Adam(parameter_groups(model, config), lr=config.optim.lr, eps=config.optim.adam_eps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(config))
    d, gop = config.data, model.config.gop
    seed = run.seed + dist.rank  # each rank its own chains
    # The keyframe branch learns from single frames (chains of gop 0, one frame): each its own clip and corner.
    chain_gop = 0 if config.optim.parts in SINGLE_FRAME_PARTS else gop
    if d.on_device:
        sampler: ChainSampler = DeviceChainSampler(train_clips, chain_gop, d.crop, seed, d.static, d.stride2, device)
    else:
        sampler = ChainSampler(train_clips, chain_gop, d.crop, seed, d.static, d.stride2)
    ddp = None
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        ddp = DistributedDataParallel(model, device_ids=[device.index] if cuda else None)
    val = validation_chains(val_clips, config, gop) if dist.main else None
    return Trainer(config, model, optimizer, scheduler, sampler, val, device, bf16, dist, ddp)


def split_validation(config: TrainConfig, clips: list[Clip]) -> tuple[list[Clip], list[Clip]]:
    """The clips to train on and those held out (data.validation, by name). A held-out clip whose content is also
    among the training clips under another name (a copy, a second folder) is refused: validation would measure
    what the network was trained on."""
    held = set(config.data.validation)
    check_validation_names(held, {c.name for c in clips})
    train = [c for c in clips if c.name not in held]
    if not train:
        raise VcsError("every clip is held out for validation: nothing left to train on")
    val = [c for c in clips if c.name in held]
    trained = {c.sha256: c for c in train}  # of each source file, a pack's clips included
    for clip in val:
        if clip.sha256 in trained:
            raise VcsError(
                f"config data.validation: {clip.source} is held out, but {trained[clip.sha256].source} "
                "in data.train has the same content: remove the copy or hold it out too"
            )
    return train, val


def load_data(config: TrainConfig, dist: Dist | None = None) -> list[Clip]:
    """Every clip of data.train; on several ranks, local rank 0 decodes into the cache first, the others then
    map what it wrote (one decode per machine, not one per GPU)."""
    dist = dist or Dist()
    d = config.data
    if dist.local_rank != 0:
        dist.barrier()
    try:
        clips = load_collection(
            [config.path(e) for e in d.train],
            config.path(d.cache),
            d.photo_frames,
            (d.photo_height, d.photo_width),
            d.max_frames or None,
        )
    finally:
        if dist.local_rank == 0:
            dist.barrier()
    return clips


def _note_clips(names: list[str], said: str) -> None:
    """One note naming the clips a sampler skips or pads: "N clip(s) <said>: a, b"."""
    if names:
        print(f"vcs: note: {len(names)} clip(s) {said}: {', '.join(names)}", file=sys.stderr)


def _note_small_clips(clips: list[Clip], crop: int, key: str) -> None:
    """The samplers skip clips smaller than their crop (a downsampled pack can make many so)."""
    _note_clips([c.name for c in clips if min(c.frames.shape[1:]) < crop], f"smaller than {key} = {crop} are not used")


def _note_short_clips(clips: list[Clip], gop: int) -> None:
    """A chain needs gop + 1 frames; a shorter clip's chains end in its last frame repeated."""
    said = f"shorter than a chain (gop + 1 = {gop + 1} frames) end their chains in their last frame repeated"
    _note_clips([c.name for c in clips if c.frames.shape[0] < gop + 1], said)


def hold_run_dir(run_dir: Path) -> int:
    """Create run.dir and lock it for this process (a descriptor to close when done; -1 where there is no
    ``flock``): two runs in one folder would interleave their logs and overwrite each other's checkpoints."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        if fcntl is None:
            return -1
        fd = os.open(run_dir, os.O_RDONLY)
    except OSError as e:
        raise VcsError(f"run.dir {run_dir} cannot be made a folder ({e.strerror or e})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise VcsError(f"run.dir {run_dir} is in use by another vcs train") from None
    return fd


def release_run_dir(trainer: Trainer) -> None:
    if trainer.run_lock >= 0:
        os.close(trainer.run_lock)
        trainer.run_lock = -1


def check_checkpoint_presence(run_dir: Path, resume: bool) -> None:
    """A new run needs a folder without a checkpoint, a resume one with it."""
    if (run_dir / CHECKPOINT).exists() and not resume:
        raise VcsError(f"{run_dir} already holds a run: pass --resume to continue it, or choose another run.dir")
    if resume and not (run_dir / CHECKPOINT).exists():
        raise VcsError(f"--resume: no checkpoint in {run_dir}")


def prepare(config: TrainConfig, resume: bool) -> tuple[Trainer, list[Clip], list[Clip]]:
    """Everything before the first step: processes, data, model, and the checkpoint on resume. Every folder the
    run will write is checked first, so that a bad one fails in a second, not after the data is decoded."""
    run = config.run
    run_dir = config.path(run.dir)
    check_checkpoint_presence(run_dir, resume)
    if run.export:
        check_folder_can_be_made(config.path(run.export), "run.export")
    if not all(is_pack(config.path(entry)) for entry in config.data.train):
        check_folder_can_be_made(config.path(config.data.cache), "data.cache")
    use_threads(run.threads, "run.threads")
    dist = init_distributed(run.device)
    device = pick_device(run.device, dist.local_rank, "run.device")
    made = not run_dir.exists()
    lock = hold_run_dir(run_dir) if dist.main else -1
    try:
        if dist.main:  # again under the lock: a run that held it until now may have written a checkpoint
            check_checkpoint_presence(run_dir, resume)
        # What is resumed from, or started from, is read before the data: a wrong one fails in seconds.
        checkpoint = read_checkpoint(config) if resume else None
        if not resume and config.model.resume_weights and dist.main:
            build_model(config, [])
        train_clips, val_clips = split_validation(config, load_data(config, dist))
        if dist.main:
            _note_small_clips(train_clips, config.data.crop, "data.crop")
            _note_small_clips(val_clips, config.data.validation_crop, "data.validation_crop")
            if config.optim.parts not in SINGLE_FRAME_PARTS:  # validation always runs chains
                _note_short_clips(train_clips, config.model.gop)
            _note_short_clips(val_clips, config.model.gop)
        trainer = build_trainer(config, train_clips, val_clips, device, dist, initialise=not resume)
        trainer.run_lock = lock
        if checkpoint is not None:
            load_checkpoint(trainer, checkpoint)
    except BaseException:
        if lock >= 0:
            os.close(lock)
        if made and dist.main and run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()  # nothing half-made is left behind by a run that never started
        raise
    return trainer, train_clips, val_clips


# ---- checkpoints -------------------------------------------------------------------------------------------------
def _state_digest(model: nn.Module) -> str:
    h = hashlib.sha256()
    for name, value in model.state_dict().items():
        h.update(name.encode())
        h.update(value.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def checkpoint_state(trainer: Trainer) -> dict[str, Any] | None:
    """The full state (rank 0's dict; ``None`` on the other ranks, which only contribute their samplers and RNG).

    Called by every rank at the same step: the gathers are collective.
    """
    samplers = trainer.dist.gather(trainer.sampler.state())
    rngs = trainer.dist.gather(torch.get_rng_state())
    if trainer.dist.world > 1:
        digests = trainer.dist.gather(_state_digest(trainer.model))
        if len(set(digests)) > 1:  # DDP keeps replicas identical; anything else is a bug worth stopping for
            raise VcsError(f"the ranks' weights differ at step {trainer.step}: not saving a checkpoint of them")
    if not trainer.dist.main:
        return None
    return {
        "format": CHECKPOINT_FORMAT,
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
        "step": trainer.step,
        "wall": trainer.wall,
        "samples_seen": trainer.samples_seen,
        "sampler": samplers[0],  # rank 0's, where format 1 kept it
        "torch_rng": rngs[0],
        "sampler_ranks": samplers,
        "torch_rng_ranks": rngs,
        "world_size": trainer.dist.world,
        "config": trainer.config.to_dict(),
        "model_config": trainer.model.config.to_dict(),
    }


def save_checkpoint(trainer: Trainer, run_dir: Path) -> None:
    """Every rank calls this; rank 0 writes. Atomic: a kill mid-save keeps the previous checkpoint."""
    state = checkpoint_state(trainer)
    if state is not None:
        path = run_dir / CHECKPOINT
        try:
            with replaced_whole(path) as tmp:
                torch.save(state, tmp)
        except (OSError, RuntimeError) as e:  # a full disk is a RuntimeError from torch's zip writer
            kept = f"the one of step {trainer.saved_step} is kept" if trainer.saved_step is not None else "none kept"
            why = e.strerror if isinstance(e, OSError) and e.strerror else str(e).splitlines()[0]
            raise VcsError(f"cannot write the checkpoint {path} ({why}; a full disk?): {kept}") from None
    trainer.saved_step = trainer.step  # on every rank: each decides alike whether a final save is due (collective)
    trainer.dist.barrier()  # no rank runs ahead (or exits) before the checkpoint exists


def read_checkpoint(config: TrainConfig) -> dict[str, Any]:
    """run.dir's checkpoint, checked against [model] and optim.parts on a bare network of [model]: before the data
    is read, so that a resume that cannot work fails in seconds, not after the luma cache is built."""
    path = config.path(config.run.dir) / CHECKPOINT
    state = read_torch_file(path)
    if not isinstance(state, dict) or not {"model", "optimizer", "scheduler", "step"} <= state.keys():
        raise VcsError(f"{path} is not a vcs train checkpoint (a state dict? start from it with model.resume_weights)")
    model = build_model(config, [], initialise=False)
    saved, now = state.get("model_config") or {}, model.config.to_dict()
    # Fields a newer version added are absent from older checkpoints, which then load as before.
    differ = [f"{k} {saved[k]!r} ≠ {now[k]!r}" for k in saved if k in now and saved[k] != now[k]]
    if differ:
        raise VcsError(f"{path} holds another network than [model] describes: {', '.join(differ)}")
    parts = state.get("config", {}).get("optim", {}).get("parts", "all")
    if parts != config.optim.parts:  # another set of parameters: Adam's state no longer fits
        raise VcsError(
            f"{path} trained optim.parts = {parts}, not {config.optim.parts}: a resume keeps what is "
            f"trained; start a new run from it with model.resume_weights"
        )
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise VcsError(f"{path} holds another network than [model] describes: {_misfit(e)}") from None
    return state


def load_checkpoint(trainer: Trainer, state: dict[str, Any]) -> None:
    """Restore a checkpoint of format 1 or 2 (`read_checkpoint`'s) on every rank. With the same number of ranks each
    rank gets its own sampler and RNG back; with another number, rank 0 gets rank 0's and the others a fresh,
    step-derived seed."""
    trainer.model.load_state_dict(state["model"])  # it fits: read_checkpoint loaded it into the same network
    try:
        _restore_state(trainer, state)
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as e:  # a checkpoint edited or cut by hand
        what = f"missing {e}" if isinstance(e, KeyError) else _misfit(e)
        path = trainer.config.path(trainer.config.run.dir) / CHECKPOINT
        raise VcsError(f"{path} is damaged or not vcs train's ({what}): start a new run") from None
    trainer.saved_step = trainer.step


def _misfit(error: Exception) -> str:
    """The line of torch's load_state_dict error that names a tensor (its first line only says that there are
    errors), with how many more there are."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if len(lines) < 2 or not lines[0].startswith("Error(s) in loading state_dict"):
        return lines[0] if lines else type(error).__name__
    more = len(lines) - 2
    return lines[1].rstrip(".") + (f" (and {more} more)" if more else "")


def _restore_state(trainer: Trainer, state: dict[str, Any]) -> None:
    """The optimizer, schedule, counters, samplers and random states of a checkpoint (the model is loaded)."""
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.scheduler.load_state_dict(state["scheduler"])
    # The learning rates and Adam's ε follow the config as it is now (an --set optim.lr=… on resume applies);
    # with an unchanged config this reproduces the saved values exactly.
    factor = lr_factor(trainer.config)
    base = [g["lr"] for g in parameter_groups(trainer.model, trainer.config)]
    trainer.scheduler.base_lrs = base
    for group, lr in zip(trainer.optimizer.param_groups, base, strict=True):
        group["initial_lr"] = lr
        group["lr"] = lr * factor(trainer.scheduler.last_epoch)
        group["eps"] = trainer.config.optim.adam_eps
    trainer.step, trainer.wall, trainer.samples_seen = state["step"], state["wall"], state["samples_seen"]
    rank, world = trainer.dist.rank, trainer.dist.world
    samplers, rngs = state.get("sampler_ranks"), state.get("torch_rng_ranks")
    if samplers and len(samplers) == world:
        trainer.sampler.restore(samplers[rank])
        torch.set_rng_state(rngs[rank])
    elif rank == 0:
        trainer.sampler.restore(state["sampler"])
        torch.set_rng_state(state["torch_rng"])
    else:
        trainer.sampler.rng = np.random.default_rng([trainer.config.run.seed, rank, trainer.step])


def trim_log(path: Path, step: int) -> None:
    """Drop the log lines of steps after the checkpoint (and a line cut by a kill): those steps are redone."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("step", 0) <= step:
            keep.append(line)
    with replaced_whole(path) as tmp:
        tmp.write_text("".join(f"{line}\n" for line in keep))


# ---- steps -------------------------------------------------------------------------------------------------------
def rounded_psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR of a reconstruction in [0, 1] rounded to 8 bits, as the bench scores it, against frames in [0, 1]."""
    mse = ((a.clamp(0, 1) * 255).round() - b * 255).pow(2).mean().item()
    return 10 * math.log10(255**2 / max(mse, 1e-10))


@torch.no_grad()
def validate(trainer: Trainer) -> dict[str, float]:
    """PSNR of keyframes and non-keyframes on the held-out chains (8-bit rounded, as the bench scores)."""
    if trainer.validation is None:
        return {}
    model = trainer.model.eval()
    keys, nons = [], []
    gop = model.config.gop
    for chunk in trainer.validation.split(8):
        chunk = chunk.to(trainer.device)
        with torch.autocast(trainer.device.type, torch.bfloat16, enabled=trainer.bf16):
            rec = model(chunk)
        keys.append(rounded_psnr(rec.key.float().squeeze(2), chunk[:, ::gop]))
        non = chunk[:, :gop][:, 1:]
        nons.append(rounded_psnr(rec.non.float()[:, 0].squeeze(2), non))
    model.train()
    k, n = float(np.mean(keys)), float(np.mean(nons))
    result = {"val_psnr_key": k, "val_psnr_non": n, "val_psnr": (k + (gop - 1) * n) / gop}
    trainer.last_validation = {"step": trainer.step, **result}
    return result


# optim.parts = "keyframes" draws this many single frames per chain of data.batch: the keyframes a chain of gop + 1
# frames holds, so a step costs and weighs what it did when the branch was trained on chains' keyframes.
KEYFRAMES_PER_CHAIN = 2


def keyframe_loss(model: HITVCSNet, batch: torch.Tensor, bf16: bool = False, loss: str = "mse") -> torch.Tensor:
    """The keyframe terms of the paper's loss, ‖I_k − X‖² + ‖D_k − X‖², on the keyframes of ``batch`` (N, T, H, W):
    frames 0, gop, … of each sample; T = 1 in training, whose samples are single frames."""
    frames = batch[:, :: model.config.gop]
    y = model.quantizer_noise(model.measure_key(frames.flatten(0, 1)))
    with torch.autocast(batch.device.type, torch.bfloat16, enabled=bf16):
        initial = model.initial_key(y)
        deep = model.keyframes_from_initial(initial, y)
    return reconstruction_terms(initial[0], deep, frames.flatten(0, 1).unsqueeze(1), loss)


def orthonormal_rows(phi: torch.Tensor) -> torch.Tensor:
    """The nearest matrix to Φ (m, 1, B, B) with orthonormal rows, U Vᵀ of its SVD, in Φ's shape and dtype."""
    u, _, vh = torch.linalg.svd(phi.detach().double().flatten(1), full_matrices=False)
    return (u @ vh).reshape(phi.shape).to(phi.dtype)


@torch.no_grad()
def orthonormalize_sampling(model: HITVCSNet, parts: str) -> None:
    """optim.orthonormal_sampling: put each trained Φ back onto orthonormal rows after a step.

    Only the Φ that ``parts`` trains: a fixed Φ is the encoder of the weights it came with and must not move.
    """
    prefixes = TRAINED_PARTS.get(parts, ("",))
    for name in ("key", "non"):
        if f"sampling.{name}.weight".startswith(prefixes):
            weight = getattr(model.sampling, name).weight
            weight.copy_(orthonormal_rows(weight))


def train_step(trainer: Trainer) -> torch.Tensor:
    """One optimizer step on a fresh batch; returns this rank's loss (detached, not synchronised)."""
    net = trainer.ddp or trainer.model
    if trainer.config.optim.parts in SINGLE_FRAME_PARTS:
        batch = trainer.sampler.batch(trainer.rank_batch * KEYFRAMES_PER_CHAIN, trainer.device)
        loss = keyframe_loss(trainer.model, batch, trainer.bf16, trainer.config.optim.loss)
    else:
        batch = trainer.sampler.batch(trainer.rank_batch, trainer.device)
        with torch.autocast(trainer.device.type, torch.bfloat16, enabled=trainer.bf16):
            rec = net(batch)
        loss = hitvcsnet_loss(rec, batch, trainer.model.config.gop, trainer.config.optim.loss)  # in fp32
    trainer.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if trainer.config.optim.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(trainer.model.parameters(), trainer.config.optim.grad_clip)
    trainer.optimizer.step()
    if trainer.config.optim.orthonormal_sampling:
        orthonormalize_sampling(trainer.model, trainer.config.optim.parts)
    trainer.scheduler.step()
    trainer.step += 1
    trainer.samples_seen += trainer.config.data.batch
    return loss.detach()


STOP_SIGNALS = ("SIGINT", "SIGTERM")


def _agree(trainer: Trainer, loss: torch.Tensor, stop: str) -> tuple[float, str]:
    """The mean loss over the ranks, and the stop asked of any rank ("" = none): all ranks stop at the same step,
    for the same reason (and so exit with the same status)."""
    if trainer.dist.world == 1:
        return loss.item(), stop
    import torch.distributed as dist

    flags = [float(stop == name) for name in STOP_SIGNALS]
    summed = torch.cat([loss.float().view(1), torch.tensor(flags, device=loss.device)])
    dist.all_reduce(summed)
    values = summed.tolist()
    asked = next((name for name, count in zip(STOP_SIGNALS, values[1:], strict=True) if count > 0), "")
    return values[0] / trainer.dist.world, asked


class StopRequest:
    """The first SIGINT or SIGTERM asks for a clean stop at the end of the step; the same signal again stops at
    once. A different second signal (torchrun passes a terminal's Ctrl-C on as SIGTERM) keeps the clean stop."""

    def __init__(self) -> None:
        self.reason = ""
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers belong to the main thread; a caller in another one handles its own stops
        for sig in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(sig) is not signal.SIG_IGN:  # started ignoring it (nohup, a background job): kept
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.reason == name:
            previous = self._previous.get(signum)
            if callable(previous):  # the command's own handler, which exits with the signal's status and says so
                previous(signum, frame)
            raise KeyboardInterrupt
        if not self.reason:  # os.write: print() in a handler can re-enter a stderr write it interrupted
            os.write(2, f"vcs: {name} received: stopping after this step (again: stop now)\n".encode())
        self.reason = self.reason or name

    def restore(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()


def run_training(
    config: TrainConfig, resume: bool = False, on_step: Callable[[Trainer, dict[str, Any]], None] | None = None
) -> Trainer:
    """Train until ``optim.steps``; checkpoint every ``run.checkpoint_every`` steps, at the end and on a stop
    (SIGINT/SIGTERM); then export (rank 0) if ``run.export`` is set and the run was not stopped early.

    ``on_step`` is called on rank 0 after every step with the step's record.
    """
    trainer, train_clips, val_clips = prepare(config, resume)
    main = trainer.dist.main
    run_dir = config.path(config.run.dir)
    log = None
    if main:
        if resume:
            trim_log(run_dir / LOG, trainer.step)
        log = open(run_dir / LOG, "a" if resume else "w")  # a fresh run never inherits an old log

    def write(record: dict[str, Any]) -> None:
        if log is not None:
            log.write(json.dumps(record) + "\n")
            log.flush()

    stop = StopRequest()
    stop.install()
    try:
        started = time.perf_counter() - trainer.wall
        if not resume and main and trainer.validation is not None:  # the starting point, for comparison
            write({"step": 0, **validate(trainer)})
        while trainer.step < config.optim.steps:
            loss, stopping = _agree(trainer, train_step(trainer), stop.reason)
            if not math.isfinite(loss):  # the weights are no longer numbers: nothing after this step is saved
                kept = f"step {trainer.saved_step}'s" if trainer.saved_step is not None else "no"
                raise VcsError(
                    f"the loss is {loss} at step {trainer.step}: training diverged (a lower optim.lr?); {kept} "
                    f"checkpoint is kept in {run_dir}"
                )
            trainer.wall = time.perf_counter() - started
            record: dict[str, Any] = {
                "step": trainer.step,
                "loss": loss,
                "lr": trainer.scheduler.get_last_lr()[-1],  # the network's rate (group 0 is the sampling group)
                "samples": trainer.samples_seen,
                "wall": round(trainer.wall, 2),
            }
            due = trainer.step % config.run.validate_every == 0 or trainer.step == config.optim.steps
            if main and due:
                record.update(validate(trainer))
            if trainer.step % config.run.log_every == 0 or "val_psnr" in record:
                write(record)
            if on_step and main:
                on_step(trainer, record)
            if stopping:
                trainer.stopped = stopping
                break
            if trainer.step % config.run.checkpoint_every == 0:
                save_checkpoint(trainer, run_dir)
        if trainer.saved_step != trainer.step:
            save_checkpoint(trainer, run_dir)
    except (KeyboardInterrupt, Stopped):  # the same signal twice: stopped at once, without the step's checkpoint
        if main:
            kept = f"step {trainer.saved_step}'s checkpoint is" if trainer.saved_step is not None else "no checkpoint"
            os.write(2, f"vcs: stopped at once at step {trainer.step}; {kept} in {run_dir} (--resume)\n".encode())
        raise
    finally:
        stop.restore()
        release_run_dir(trainer)
        if log is not None:
            log.close()
    if config.run.export and not trainer.stopped:
        if main:
            folder = config.path(config.run.export)
            try:
                trainer.exported = export(trainer, train_clips, folder, val_clips)
            except OSError as e:
                raise VcsError(
                    f"export to {folder} failed ({e.strerror or e}); the checkpoint is in {run_dir}: "
                    "--resume --set run.export=… exports it"
                ) from None
        trainer.dist.barrier()
    if trainer.dist.owns_group:
        import torch.distributed as dist

        dist.destroy_process_group()
    return trainer


# ---- export ------------------------------------------------------------------------------------------------------
def hardware(device: torch.device | None = None, world: int = 1) -> str:
    """What trained (or benchmarked): e.g. '2× NVIDIA H100 80GB HBM3' or 'CPU Intel Xeon …, 2 cores'."""
    device = device or pick_device("auto")
    name = device_name(device)
    return f"{world}× {name}" if world > 1 else name


def _file_record(clip: Clip) -> dict[str, str]:
    return {"name": clip.source.name, "sha256": clip.sha256}


def _pack_settings(path: Path) -> dict[str, Any]:
    from .data import read_pack_meta

    meta = read_pack_meta(path)
    return {"scale": meta["scale"], "frame_cap": meta["frame_cap"], "spread": meta.get("spread", False)}


def export(trainer: Trainer, train_clips: list[Clip], folder: Path, val_clips: list[Clip] | None = None) -> Any:
    """The trained model into the registry: half precision, and a manifest with the config, the data (every file
    with its sha256), steps, samples, hardware, wall time and the validation PSNR at the last step."""
    from ..registry import save_model, sha256_file

    cfg = trainer.config
    val = trainer.last_validation
    if val.get("step") != trainer.step:
        validate(trainer)
        val = trainer.last_validation
    # A fresh CPU copy: the trainer's model stays as it is (and a deep copy would drag DDP's hooks along).
    model = HITVCSNet(trainer.model.config)
    model.load_state_dict({k: v.detach().float().cpu() for k, v in trainer.model.state_dict().items()})
    packs = [cfg.path(e) for e in cfg.data.train if cfg.path(e).suffix.lower() == ".npz"]
    info = {
        "training": {
            "steps": trainer.step,
            "epochs": round(trainer.step / cfg.optim.epoch_steps, 3),
            "samples_seen": trainer.samples_seen,
            "wall_seconds": round(trainer.wall, 1),
            "hardware": hardware(trainer.device, trainer.dist.world),
            "world_size": trainer.dist.world,
            "bf16": trainer.bf16,
            "torch": torch.__version__,
            "config": cfg.to_dict(),
            **{k: v for k, v in val.items() if k != "step"},
        },
        "data": {
            "provenance": find_provenance(cfg.data.train, cfg.path) or "no PROVENANCE.md beside the data",
            "files": [_file_record(c) for c in train_clips],
            "held_out_for_validation": cfg.data.validation,
            "validation_files": [_file_record(c) for c in val_clips or []],
            "packs": [{"name": p.name, "sha256": sha256_file(p), **_pack_settings(p)} for p in packs],
        },
    }
    return save_model(model, folder, info, default=cfg.run.default)
