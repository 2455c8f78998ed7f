"""`vcs train` settings: one TOML file, sections [model], [data], [optim], [run]; every key documented here
and in docs/training.md.

Any key can be overridden on the command line as ``--set section.key=value`` (the value is parsed as TOML, a bare
word is taken as a string). Relative paths in the file are relative to the file's folder; relative paths given
with ``--set`` are relative to the current directory (where the user typed them).
Unknown keys, wrong types, missing or empty data folders are refused before any work starts.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from ..errors import CommandLineError, VcsError
from ..metrics import SSIM_WINDOW

SECTIONS = ("model", "data", "optim", "run")
# Keys that hold paths: a --set value is made absolute against the current directory.
PATH_KEYS = {("model", "resume_weights"), ("data", "train"), ("data", "cache"), ("run", "dir"), ("run", "export")}
PACK_SUFFIX = ".npz"


@dataclass
class ModelSection:
    arch: str = "hitvcsnet"  # a name from vcscodec.models.ARCHITECTURES
    alpha_k: float = 0.5  # keyframe ratio (paper: 0.5)
    alpha_n: float = 0.1  # non-keyframe ratio (paper: 0.01 or 0.1; one model per ratio)
    block: int = 32  # B (paper: 32)
    gop: int = 8  # frames per GOP, the keyframe included (paper: 8)
    channels: int = 32
    key_channels: int = 0  # the keyframe branch's width (0 = channels); a narrower start is widened
    levels: int = 4
    scales: int = 3  # paper: S = 3
    init: str = "klt"  # "klt": sampling and initial reconstruction start at the KLT; "random": PyTorch default
    init_samples: int = 20000  # blocks drawn to estimate the KLT
    resume_weights: str = ""  # a .pt checkpoint or weights name to start from (fine-tuning); "" = none


@dataclass
class DataSection:
    # Folders of videos and photos, or luma packs (.npz written by `vcs train --pack`). Never ../shared/data/cif.
    train: list[str] = field(default_factory=lambda: ["../shared/data/train/clips", "../shared/data/train/photos"])
    validation: list[str] = field(default_factory=list)  # clip names (file stems) held out of training
    cache: str = "cache/luma"  # decoded luma cache; decoded once, reused by every run
    crop: int = 96  # square crop, a multiple of the block size
    batch: int = 32  # GOP chains per step, all processes together (paper: 32)
    static: float = 0.1  # share of samples that repeat one frame
    stride2: float = 0.15  # share of samples that skip every other frame
    max_frames: int = 0  # frames decoded per video, 0 = all
    photo_frames: int = 24  # frames of the simulated camera move over each photo
    photo_width: int = 352  # size of the simulated camera's view
    photo_height: int = 288
    validation_chains: int = 8  # fixed chains per validation clip
    validation_crop: int = 128
    on_device: bool = False  # keep the luma frames on the GPU as uint8 and crop there (no host work per step)
    pack_scale: int = 1  # `--pack`: downsample frames by this factor (area average)
    pack_max_mb: float = 48.0  # `--pack`: frames per clip are cut until the file fits (0 = no limit)
    # `--pack`: which frames a clip keeps: "first" (consecutive, for chains) or "spread" evenly over the clip (more
    # scenes in the same bytes, for optim.parts = "keyframes"; validation clips keep their first frames)
    pack_frames: str = "first"


# optim.parts trained on whole chains with the paper's loss, and those trained on single frames with its keyframe
# terms alone (vcscodec/train/loop.py, TRAINED_PARTS).
CHAIN_PARTS = ("all", "non-keyframes")
SINGLE_FRAME_PARTS = ("keyframes", "keyframe-head")


@dataclass
class OptimSection:
    lr: float = 1e-4  # paper: Adam, 1e-4
    # Adam's ε. The loss is a mean squared error of pixels in [0, 1] (about 1e-4 at 40 dB), so many weights' gradients
    # are 1e-11 to 1e-8 (docs/training.md, "Adam's ε"): at torch's 1e-8 the ε, not the gradient, sets their step.
    adam_eps: float = 1e-8
    halve_every_epochs: int = 30  # paper: halved every 30 epochs
    epoch_steps: int = 1000  # steps that make an "epoch" for the schedule
    steps: int = 10000  # total optimizer steps of the run
    grad_clip: float = 0.0  # max gradient norm, 0 = off
    warmup_steps: int = 0  # linear learning-rate warm-up: Adam's first steps would otherwise jolt a KLT start
    sampling_lr_scale: float = 1.0  # learning-rate factor for the sampling matrices and initial reconstruction
    # all | keyframes (the keyframe branch alone, on single frames: no non-keyframe work) | keyframe-head (its MSFM)
    # | non-keyframes (what rebuilds a non-keyframe from its measurements and decoded keyframes, on whole chains)
    parts: str = "all"
    # Train on measurements with a quantizer's error: uniform noise one step wide, in grey levels (the codec's
    # step is 1.3; 0 = off, clean measurements as before). Validation stays clean, as logged runs always were.
    quant_noise: float = 0.0
    # mse (the paper's) | frame-psnr: the mean over frames of 10·log10 of each frame's MSE (models/loss.py), the
    # bench's mean per-frame PSNR, so still frames are not spent to buy the worst moving ones | charbonnier: a smooth
    # L1 per pixel, √(d² + ε²) | ssim-l1: 0.84·(1 − SSIM) + 0.16·L1, the SSIM the bench scores
    loss: str = "mse"
    # Project every trained Φ back onto orthonormal rows after each step (its polar factor), so a learned Φ keeps
    # the KLT's measurement energy: larger rows would buy a lower quantizer error with more bits, not a better Φ.
    orthonormal_sampling: bool = False


@dataclass
class RunSection:
    dir: str = "runs/default"  # checkpoint.pt and log.jsonl live here
    checkpoint_every: int = 200  # steps
    log_every: int = 10
    validate_every: int = 200
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    bf16: str = "auto"  # auto (on CUDA) | on | off
    channels_last: str = "auto"  # auto (on CUDA) | on | off
    threads: int = 0  # CPU threads, 0 = torch's default
    export: str = ""  # folder to export the trained model to at the end ("" = no export)
    default: bool = False  # mark the exported model as the default for its ratio


@dataclass
class TrainConfig:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    run: RunSection = field(default_factory=RunSection)
    base_dir: Path = Path(".")  # relative paths in the file are relative to the file's folder

    def path(self, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else (self.base_dir / p)

    def to_dict(self) -> dict[str, Any]:
        return {s: dataclasses.asdict(getattr(self, s)) for s in SECTIONS}


def _check_type(where: str, value: Any, hint: Any) -> Any:
    origin = getattr(hint, "__origin__", None)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, float) and not math.isfinite(value):
        # TOML has nan and inf; no setting means either, and a NaN slips through every range check below
        raise VcsError(f"config {where}: expected a finite number, got {value!r}")
    if origin is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise VcsError(f"config {where}: expected a list of strings, got {value!r}")
        return value
    if hint in (int, str, bool, float) and (type(value) is not hint):
        raise VcsError(f"config {where}: expected {hint.__name__}, got {type(value).__name__} {value!r}")
    return value


def _unknown(kind: str, name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f"unknown {kind} {name}" + (f" (did you mean {close[0]}?)" if close else "")


def looks_like_path(value: str) -> bool:
    """A weights value with a folder or a checkpoint's suffix is a file; anything else may be a model's name."""
    return "/" in value or "\\" in value or Path(value).suffix in (".pt", ".pth")


def names_a_model(value: str, cwd: Path) -> bool:
    """A model.resume_weights given on the command line that is a model's name (no file of that name here): kept
    as it is, so that the weights folder is searched for it rather than the current directory."""
    return bool(value) and not looks_like_path(value) and not (cwd / value).exists()


def _apply(config: TrainConfig, data: dict[str, Any], origin: str, cwd: Path | None = None) -> None:
    for section, values in data.items():
        if not isinstance(values, dict):  # `steps = 3` above every [section]
            raise VcsError(f"{origin}: {section} = {values!r} stands outside a section ({', '.join(SECTIONS)})")
        if section not in SECTIONS:
            raise VcsError(f"{origin}: {_unknown('section', f'[{section}]', [f'[{s}]' for s in SECTIONS])}")
        target = getattr(config, section)
        hints = get_type_hints(type(target))
        for key, value in values.items():
            if key not in hints:
                raise VcsError(f"{origin}: {_unknown('key', f'{section}.{key}', [f'{section}.{k}' for k in hints])}")
            value = _check_type(f"{section}.{key}", value, hints[key])
            if (
                cwd is not None
                and (section, key) in PATH_KEYS
                and not ((section, key) == ("model", "resume_weights") and names_a_model(value, cwd))
            ):
                value = [str(cwd / v) for v in value] if isinstance(value, list) else str(cwd / value) if value else ""
            setattr(target, key, value)


def parse_override(text: str) -> dict[str, Any]:
    """``section.key=value`` (value in TOML syntax; bare words are taken as strings)."""
    name, equals, raw = text.partition("=")
    section, dot, key = name.strip().partition(".")
    if not (equals and dot and section and key):  # a mistyped command line: exit status 2, as any other
        raise CommandLineError(f"--set {text!r} is not section.key=value (e.g. --set optim.lr=1e-4)")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    if isinstance(value, datetime.date | datetime.time):  # run.dir=2026-12-07 names a folder, not a day
        value = raw
    return {section: {key: value}}


def load_config(path: Path | None, overrides: list[str] | None = None, check_data: bool = True) -> TrainConfig:
    """The defaults, updated by the file, then by each ``--set``; validated (see ``validate``)."""
    config = TrainConfig()
    if path is not None:
        if path.is_dir():
            raise VcsError(f"config file {path} is a folder: name a .toml file (e.g. configs/hitvcsnet-mh-n0.1.toml)")
        if not path.is_file():
            raise VcsError(f"config file {path} does not exist")
        try:
            data = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise VcsError(f"config file {path} is not valid TOML: {e}") from None
        config.base_dir = path.resolve().parent
        _apply(config, data, f"config file {path}")
    for text in overrides or []:
        _apply(config, parse_override(text), "--set", cwd=Path.cwd())
    validate(config, check_data)
    return config


def validate(config: TrainConfig, check_data: bool = True) -> None:
    """Every check that needs no decoding: a bad setting fails in a second, not after an hour of caching."""
    from ..models.config import ARCHITECTURES
    from ..models.loss import LOSSES

    m, d, o, r = config.model, config.data, config.optim, config.run
    if m.arch not in ARCHITECTURES:
        raise VcsError(f"config model.arch: unknown architecture {m.arch!r} (known: {', '.join(ARCHITECTURES)})")
    if not ARCHITECTURES[m.arch].non_key_network and o.parts in CHAIN_PARTS:
        raise VcsError(
            f"config model.arch: {m.arch} is a decoder that skips the non-keyframe network; train the architecture "
            "it is derived from (e.g. hitvcsnet-mhc) and decode with it"
        )
    for name, a in (("alpha_k", m.alpha_k), ("alpha_n", m.alpha_n)):
        if not 0 < a <= 1:
            raise VcsError(f"config model.{name}: {a} is outside (0, 1]")
    if m.init not in ("klt", "random"):
        raise VcsError(f"config model.init: {m.init!r} is not 'klt' or 'random'")
    if m.block < 1 or m.scales < 1 or m.block % (1 << (m.scales - 1)):
        raise VcsError(f"config model.block {m.block} must be positive and divisible by 2^(scales-1)")
    # Each lower bound by itself, so that the message names the key at fault and its value.
    floors = {
        "model.gop": 2, "model.channels": 1, "model.levels": 1, "model.init_samples": 1, "model.key_channels": 0,
        "data.batch": 1, "data.validation_chains": 1, "data.max_frames": 0, "data.photo_frames": 2,
        "data.photo_width": m.block, "data.photo_height": m.block, "data.pack_scale": 1, "data.pack_max_mb": 0,
        "optim.steps": 0, "optim.epoch_steps": 1, "optim.halve_every_epochs": 1, "optim.warmup_steps": 0,
        "optim.sampling_lr_scale": 0, "optim.grad_clip": 0,
        "run.checkpoint_every": 1, "run.log_every": 1, "run.validate_every": 1, "run.threads": 0,
    }  # fmt: skip
    for dotted, floor in floors.items():
        section, key = dotted.split(".")
        value = getattr(getattr(config, section), key)
        if value < floor:
            raise VcsError(f"config {dotted}: {value!r} is below its minimum, {floor}")
    if o.loss == "ssim-l1" and d.crop < SSIM_WINDOW:
        raise VcsError(
            f"config optim.loss: ssim-l1 needs crops of at least {SSIM_WINDOW} pixels, data.crop is {d.crop}"
        )
    if o.lr <= 0:
        raise VcsError(f"config optim.lr: {o.lr!r} must be > 0")
    if d.crop <= 0 or d.crop % m.block or d.validation_crop <= 0 or d.validation_crop % m.block:
        raise VcsError(f"config data.crop and data.validation_crop must be positive multiples of the block {m.block}")
    if not (0 <= d.static <= 1 and 0 <= d.stride2 <= 1 and d.static + d.stride2 <= 1):
        raise VcsError("config data.static and data.stride2 must be shares in [0, 1] that add up to at most 1")
    if not 0 < o.adam_eps < 1:
        raise VcsError(f"config optim.adam_eps: {o.adam_eps!r} is not in (0, 1)")
    if not 0 <= o.quant_noise <= 255:
        raise VcsError(f"config optim.quant_noise: {o.quant_noise!r} is not a step in grey levels, 0 (off) to 255")
    if d.pack_frames not in ("first", "spread"):
        raise VcsError(f"config data.pack_frames: {d.pack_frames!r} is not first or spread")
    if o.parts not in CHAIN_PARTS + SINGLE_FRAME_PARTS:
        raise VcsError(f"config optim.parts: {o.parts!r} is not {', '.join(CHAIN_PARTS + SINGLE_FRAME_PARTS)}")
    if o.loss not in LOSSES:
        raise VcsError(f"config optim.loss: {o.loss!r} is not {', '.join(LOSSES[:-1])} or {LOSSES[-1]}")
    if o.orthonormal_sampling and (o.sampling_lr_scale == 0 or o.parts in ("keyframe-head", "non-keyframes")):
        raise VcsError(f"config optim.orthonormal_sampling: no Φ is trained (sampling_lr_scale = 0 or {o.parts})")
    if r.device not in ("auto", "cpu", "cuda"):
        raise VcsError(f"config run.device: {r.device!r} is not auto, cpu or cuda")
    for key in ("bf16", "channels_last"):
        if getattr(r, key) not in ("auto", "on", "off"):
            raise VcsError(f"config run.{key}: {getattr(r, key)!r} is not auto, on or off")
    if not 0 <= r.seed < 2**32:  # numpy's and torch's seeds
        raise VcsError(f"config run.seed: {r.seed} is not in 0 to 2^32 - 1")
    if not d.train:
        raise VcsError("config data.train lists no folder")
    if 0 < d.max_frames < m.gop + 1:  # validation runs whole chains, whatever optim.parts trains
        raise VcsError(f"config data.max_frames {d.max_frames} is shorter than a chain (model.gop + 1 = {m.gop + 1})")
    # Folders are read with their subfolders: one listed twice, or inside another listed, would have its clips
    # sampled twice as often and listed twice in the manifest.
    listed = [config.path(entry).resolve() for entry in d.train]
    for i, here in enumerate(listed):
        for other in listed[i + 1 :]:
            if here == other:
                raise VcsError(f"config data.train lists {here} more than once")
            if here in other.parents or other in here.parents:
                inner, outer = (other, here) if here in other.parents else (here, other)
                raise VcsError(f"config data.train lists {inner}, which is inside {outer}, also listed")
    if not r.dir:
        raise VcsError("config run.dir is empty: name the run's folder")
    if r.default and not r.export:  # it marks the exported model: with no export it would do nothing, silently
        raise VcsError("config run.default: true marks the exported model, but run.export names no folder to export to")
    if check_data:
        names: set[str] = set()
        for entry in d.train:
            meta, found = check_data_entry(config.path(entry))
            names.update(found)
            if meta and o.parts in CHAIN_PARTS and any(c.get("spread") for c in meta["clips"]):
                raise VcsError(
                    f"config data.train: pack {entry} keeps frames spread over each clip (data.pack_frames): "
                    f"they are not consecutive, so only optim.parts = {' or '.join(SINGLE_FRAME_PARTS)} can train on it"
                )
        check_validation_names(set(d.validation), names)  # before hours of decoding, not after


def check_validation_names(held: set[str], names: set[str]) -> None:
    """Every data.validation name is a clip of the data (a file's stem, or a name a pack gives)."""
    unknown = sorted(held - names)
    if unknown:
        raise VcsError(f"config data.validation names clips that are not in the data: {', '.join(unknown)}")


def check_data_entry(p: Path) -> tuple[dict[str, Any] | None, list[str]]:
    """A data.train entry is a folder holding at least one video or photo, or a luma pack: its meta (None for a
    folder) and the names of its clips."""
    from .data import MEDIA_SUFFIXES, check_not_test_set, read_pack_meta

    if p.suffix.lower() == PACK_SUFFIX and not p.is_dir():
        if not p.is_file():
            raise VcsError(f"config data.train: pack {p} does not exist")
        meta = read_pack_meta(p)
        check_not_test_set([Path(c["source"]) for c in meta["clips"]])
        return meta, [c["name"] for c in meta["clips"]]
    if p.is_file():
        raise VcsError(f"config data.train: {p} is a file; list the folder that holds it (or a .npz pack)")
    if not p.is_dir():
        raise VcsError(f"config data.train: folder {p} does not exist")
    found = [f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in MEDIA_SUFFIXES]
    if not found:
        raise VcsError(f"config data.train: folder {p} holds no video or photo")
    check_not_test_set(found)
    return None, [f.stem for f in found]
