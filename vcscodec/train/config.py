"""`vcs train` settings: one TOML file, sections [model], [data], [optim], [run]; every key documented here.

Any key can be overridden on the command line as ``--set section.key=value`` (the value is parsed as TOML).
Unknown keys, wrong types and missing data folders are refused before any work starts.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from ..errors import VcsError


@dataclass
class ModelSection:
    arch: str = "hitvcsnet"  # a name from vcscodec.models.ARCHITECTURES
    alpha_k: float = 0.5  # keyframe ratio (paper: 0.5)
    alpha_n: float = 0.1  # non-keyframe ratio (paper: 0.01 or 0.1; one model per ratio)
    channels: int = 32
    levels: int = 4
    scales: int = 3  # paper: S = 3
    init: str = "klt"  # "klt": sampling and initial reconstruction start at the KLT; "random": PyTorch default
    resume_weights: str = ""  # a .pt checkpoint or weights name to start from (fine-tuning); "" = none


@dataclass
class DataSection:
    train: list[str] = field(default_factory=lambda: ["../shared/data/train/clips", "../shared/data/train/photos"])
    validation: list[str] = field(default_factory=list)  # clip names (file stems) held out of training
    cache: str = "cache/luma"  # decoded luma cache; decoded once, reused by every run
    crop: int = 96  # square crop, a multiple of the block size
    batch: int = 8  # GOP chains per step (paper: 32)
    static: float = 0.1  # share of samples that repeat one frame
    stride2: float = 0.15  # share of samples that skip every other frame
    max_frames: int = 0  # frames decoded per video, 0 = all
    photo_frames: int = 24  # frames of the simulated camera move over each photo
    validation_chains: int = 8  # fixed chains per validation clip
    validation_crop: int = 128


@dataclass
class OptimSection:
    lr: float = 1e-4  # paper: Adam, 1e-4
    halve_every_epochs: int = 30  # paper: halved every 30 epochs
    epoch_steps: int = 1000  # steps that make an "epoch" for the schedule
    steps: int = 10000  # total optimizer steps of the run
    grad_clip: float = 0.0  # max gradient norm, 0 = off
    warmup_steps: int = 0  # linear learning-rate warm-up: Adam's first steps would otherwise jolt a KLT start
    sampling_lr_scale: float = 1.0  # learning-rate factor for the sampling matrices and initial reconstruction


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
        return {s: dataclasses.asdict(getattr(self, s)) for s in ("model", "data", "optim", "run")}


def _check_type(where: str, value: Any, hint: Any) -> Any:
    origin = getattr(hint, "__origin__", None)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if origin is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise VcsError(f"config {where}: expected a list of strings, got {value!r}")
        return value
    if hint in (int, str, bool, float) and (type(value) is not hint):
        raise VcsError(f"config {where}: expected {hint.__name__}, got {type(value).__name__} {value!r}")
    return value


def _apply(config: TrainConfig, data: dict[str, Any], origin: str) -> None:
    for section, values in data.items():
        if section not in ("model", "data", "optim", "run"):
            raise VcsError(f"{origin}: unknown section [{section}]")
        if not isinstance(values, dict):
            raise VcsError(f"{origin}: [{section}] must be a table")
        target = getattr(config, section)
        hints = get_type_hints(type(target))
        for key, value in values.items():
            if key not in hints:
                raise VcsError(f"{origin}: unknown key {section}.{key}")
            setattr(target, key, _check_type(f"{section}.{key}", value, hints[key]))


def parse_override(text: str) -> dict[str, Any]:
    """``section.key=value`` (value in TOML syntax; bare words are taken as strings)."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise VcsError(f"override {text!r} is not section.key=value")
    name, raw = text.split("=", 1)
    section, key = name.strip().split(".", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return {section: {key: value}}


def load_config(path: Path | None, overrides: list[str] | None = None) -> TrainConfig:
    config = TrainConfig()
    if path is not None:
        if not path.is_file():
            raise VcsError(f"config file {path} does not exist")
        try:
            data = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise VcsError(f"config file {path} is not valid TOML: {e}") from None
        config.base_dir = path.resolve().parent
        _apply(config, data, str(path))
    for text in overrides or []:
        _apply(config, parse_override(text), "--set")
    validate(config)
    return config


def validate(config: TrainConfig) -> None:
    from ..models.config import ARCHITECTURES

    m, d, o, r = config.model, config.data, config.optim, config.run
    if m.arch not in ARCHITECTURES:
        raise VcsError(f"config model.arch: unknown architecture {m.arch!r} (known: {', '.join(ARCHITECTURES)})")
    for name, a in (("alpha_k", m.alpha_k), ("alpha_n", m.alpha_n)):
        if not 0 < a <= 1:
            raise VcsError(f"config model.{name}: {a} is outside (0, 1]")
    if m.init not in ("klt", "random"):
        raise VcsError(f"config model.init: {m.init!r} is not 'klt' or 'random'")
    if d.crop % 32 or d.crop <= 0 or d.validation_crop % 32:
        raise VcsError("config data.crop and data.validation_crop must be positive multiples of 32")
    if d.batch < 1 or o.steps < 0 or o.epoch_steps < 1 or r.checkpoint_every < 1 or r.log_every < 1:
        raise VcsError("config: batch, epoch_steps, checkpoint_every and log_every must be ≥ 1, steps ≥ 0")
    if r.device not in ("auto", "cpu", "cuda") or r.bf16 not in ("auto", "on", "off"):
        raise VcsError("config run.device must be auto|cpu|cuda and run.bf16 auto|on|off")
    if not d.train:
        raise VcsError("config data.train lists no folder")
    for folder in d.train:
        p = config.path(folder)
        if not p.is_dir():
            raise VcsError(f"config data.train: folder {p} does not exist")

