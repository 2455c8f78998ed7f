"""`vcs bench`: the paper's tables reproduced through the whole codec, with speed and rate.

Every number comes from a real round trip: frames are encoded into a ``.vcs`` file (`codec.encode_frames`), the
file's bytes are read back (`container.ContainerReader`) and decoded (`codec.decode_records`). Nothing goes around
the container, so quantization and the bitstream count exactly as they do for a user.

Protocol (the paper's, as its authors' test code runs it; see notes/facts.md):
- the first 17 frames of each sequence: GOP 1 = frames 1–9, GOP 2 = frames 9–17 (keyframes 1, 9, 17, αk 0.5),
  which is the codec's own layout for a 17-frame file;
- score = mean over frames 1–16 (keyframes included; Table 1), and over the non-keyframes 2–8 and 10–16 only
  (Table 4); the final keyframe (frame 17) belongs to the third GOP and is not scored;
- PSNR on the Y plane rounded to 8 bits, peak 255, no border crop; SSIM of Wang et al. (`vcscodec.metrics`);
- the average row is the mean over sequences of each sequence's mean.
With ``frames=None`` ("--frames all") whole sequences are coded: the score is the mean over all frames but the
final keyframe when the count is gop·k + 1 (the same rule as the 17-frame protocol), else over all frames.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import __version__
from .codec import FrameEncoder, decode_records, encode_frames, model_for, pick_model
from .container import ContainerReader
from .errors import VcsError
from .hardware import cpu_name, pick_device, threads_phrase
from .io import DEFAULT_FPS, Frame, frame_from_gray, open_video, open_writer
from .metrics import psnr, ssim
from .quant import DEFAULT_QUANT_STEP, check_step
from .rd import ANCHORS, DEFAULT_ANCHOR_QPS, bd_psnr, bd_rate, check_anchor, check_qp, code_with_anchor, summarize
from .registry import ModelCard, find_model

if TYPE_CHECKING:
    import torch
    from rich.console import Console

    from .models import HITVCSNet

__all__ = [
    "BenchConfig",
    "DEFAULT_RATIOS",
    "LINEAR_FLOORS",
    "PAPER_FRAMES",
    "Sequence",
    "decode_timed",
    "device_info",
    "find_sequences",
    "paper_results",
    "paper_sequence",
    "render",
    "run_bench",
    "scored_frames",
    "write_json",
    "write_plots",
]

PAPER_FRAMES = 17
DEFAULT_RATIOS = (0.01, 0.1)
VIDEO_EXTENSIONS = (".y4m", ".yuv", ".mp4", ".mkv", ".avi", ".webm", ".mov", ".m4v")
CHROMA_CHOICES = ("gray", "yuv420", "auto")

# Not the paper's: the simplest linear decoder worth beating on the paper's test set (KLT sampling; keyframes
# interpolated and corrected by each frame's own measurements), measured in notes/facts.md. A network below it
# is not worth its FLOPs, so the bench prints it beside the table of a run over that whole test set.
LINEAR_FLOORS: dict[str, dict[str, float]] = {
    "0.01": {"psnr": 34.04, "psnr_nonkey": 33.17},
    "0.1": {"psnr": 35.52, "psnr_nonkey": 34.86},
}
FLOOR_SOURCE = "linear temporal-residual decoder, KLT sampling (notes/facts.md, 'Floors on the paper's test set')"

# Our architectures that the paper's Table 5 scores; the others are compared with HIT-VCSNet itself.
ABLATIONS = {"hitvcsnet-nohfim": "w/o HFIM", "hitvcsnet-nohffm": "w/o HFFM"}
PAPER_METHODS = ("HIT-VCSNet", "VCSNet2")


# ---------------------------------------------------------------------------------------------- the paper


def paper_results() -> dict[str, Any]:
    """The paper's figures (Tables 1, 4 and 5) as shipped in ``vcscodec/data/paper_results.json``."""
    text = resources.files("vcscodec").joinpath("data/paper_results.json").read_text(encoding="utf-8")
    return json.loads(text)


# Tokens of a file name that describe the format, not the scene: "foreman_cif", "akiyo_352x288_30fps_8bit".
_NAME_NOISE = re.compile(
    r"^(?:\d+x\d+|\d+(?:\.\d+)?(?:fps|hz|p)?|s?qcif|cif|4cif|720p|1080p|\d+bit|p420|i420|yuv420p?|y4m|yuv|png|frames?|and|the)$"
)


def _name_key(text: str) -> str:
    return "".join(t for t in re.split(r"[^0-9a-z]+", text.lower()) if t and not _NAME_NOISE.match(t))


def paper_sequence(name: str, paper: dict[str, Any] | None = None) -> str | None:
    """The paper's row for a file or folder name (``mother_daughter_cif.y4m`` → "Mother daughter"), or None."""
    paper = paper or paper_results()
    key = _name_key(Path(name).stem if Path(name).suffix.lower() in VIDEO_EXTENSIONS else name)
    return next((s for s in paper["sequences"] if _name_key(s) == key), None)


def ratio_key(ratio: float) -> str:
    """How the paper's tables (and the JSON) name a ratio: 0.01 → "0.01"."""
    return f"{ratio:g}"


# ---------------------------------------------------------------------------------------------- sequences


@dataclass
class Sequence:
    """One test sequence: a video file, or a folder of numbered PNG frames (``files``)."""

    name: str
    path: Path
    width: int
    height: int
    fps: Fraction
    frame_count: int
    files: list[Path] | None = None  # PNG frames in order; None for a video file

    def frames(self) -> Generator[Frame, None, None]:
        """The sequence's frames from the start, read lazily (each call reads the source again)."""
        if self.files is None:
            with open_video(self.path, default_fps=DEFAULT_FPS) as reader:
                yield from reader
            return
        for f in self.files:
            with open_video(f) as reader:  # FFmpeg's PNG decoder; grey PNGs are luma as is
                frame = next(iter(reader), None)
            if frame is None:
                raise VcsError(f"{f}: no picture in the file")
            yield frame


def _png_frames(folder: Path) -> list[Path]:
    """PNG files of a folder ordered by the last number in their names (frame_2 before frame_10)."""
    numbered = []
    for f in folder.iterdir():
        if f.suffix.lower() == ".png" and f.is_file():
            digits = re.findall(r"\d+", f.stem)
            if digits:
                numbered.append((int(digits[-1]), f.name, f))
    return [f for _, _, f in sorted(numbered)]


def _open_sequence(path: Path) -> Sequence:
    if path.is_dir():
        files = _png_frames(path)
        if not files:
            raise VcsError(f"{path}: folder has no numbered PNG frames")
        with open_video(files[0]) as reader:
            info = reader.info
        return Sequence(path.name, path, info.width, info.height, DEFAULT_FPS, len(files), files)
    # A raw .yuv needs only WxH in its name here: the rate goes into the bench's .vcs headers, not its scores.
    with open_video(path, default_fps=DEFAULT_FPS) as reader:
        info = reader.info
        # Formats that do not state their length are counted by decoding once.
        count = info.frame_count if info.frame_count is not None else sum(1 for _ in reader)
    if count < 1:
        raise VcsError(f"{path} has no frames")
    return Sequence(path.stem, path, info.width, info.height, info.fps, count)


def find_sequences(folder: Path) -> tuple[list[Sequence], list[str]]:
    """Readable sequences in ``folder`` (sorted by name) and a warning for each candidate that is not."""
    if not folder.exists():
        raise VcsError(f"sequence folder {folder} does not exist")
    if not folder.is_dir():
        raise VcsError(f"{folder} is not a folder (give the folder that holds the test sequences)")
    candidates = sorted(
        p
        for p in folder.iterdir()
        if not p.name.startswith(".")
        and ((p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS) or (p.is_dir() and _png_frames(p)))
    )
    sequences, warnings = [], []
    for path in candidates:
        try:
            sequences.append(_open_sequence(path))
        except VcsError as e:
            warnings.append(f"skipped {path.name}: {e}")
    if not sequences:
        why = f" ({warnings[0]})" if len(warnings) == 1 else f" ({len(warnings)} unreadable)" if warnings else ""
        raise VcsError(
            f"no readable sequences in {folder}{why}; expected .y4m, .yuv with WxH in the name, .mp4/.mkv/… "
            "or folders of numbered PNG frames"
        )
    return sequences, warnings


def scored_frames(count: int, gop: int) -> list[int]:
    """0-based frames that count in the score: all but the final keyframe when ``count`` = gop·k + 1 (for 17
    frames: frames 1–16 of the paper), else all of them."""
    if count > 1 and (count - 1) % gop == 0:
        return list(range(count - 1))
    return list(range(count))


# ---------------------------------------------------------------------------------------------- timing


class _Timed:
    """Wraps an iterator and adds up the time spent producing its items, so a pipeline stage can be timed
    apart from the stages around it (reading the source, scoring, writing the kept video)."""

    def __init__(self, items: Iterator[Any]) -> None:
        self.items, self.seconds, self.count = items, 0.0, 0

    def __iter__(self) -> _Timed:
        return self

    def __next__(self) -> Any:
        start = time.perf_counter()
        try:
            item = next(self.items)
        finally:
            self.seconds += time.perf_counter() - start
        self.count += 1
        return item


def _take(frames: Generator[Frame, None, None], count: int) -> Iterator[Frame]:
    """The first ``count`` frames; closes the source at once (its file) instead of at garbage collection."""
    try:
        for i, frame in enumerate(frames):
            if i >= count:
                return
            yield frame
    finally:
        frames.close()


def decode_timed(
    path: Path, model: HITVCSNet, device: torch.device, precision: str = "fp32", batch_gops: int = 0
) -> tuple[list[Frame], float]:
    """Decode a ``.vcs`` file with a loaded model; returns the frames and the seconds spent decoding them
    (reading and parsing the records, dequantizing, the network; not loading the model)."""
    with ContainerReader(path) as reader:
        decoded = _Timed(decode_records(reader, model, device, batch_gops, precision))
        frames = list(decoded)
    return frames, decoded.seconds


def device_info(device: torch.device) -> dict[str, Any]:
    """What the speeds were measured on: device type and name, threads, torch version."""
    import torch

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    return {
        "type": device.type,
        "name": name,
        "threads": torch.get_num_threads(),
        "logical_cores": os.cpu_count(),
        "torch": torch.__version__,
    }


def _warm_up(
    encoder: FrameEncoder, model: HITVCSNet, device: torch.device, precision: str, size: tuple[int, int], folder: Path
) -> None:
    """Decode one synthetic GOP of the first sequence's size, untimed, so lazy initialisation (CUDA context,
    kernel selection per shape, thread pools) does not land in the first sequence's decode time."""
    width, height = size
    ramp = np.add.outer(np.arange(height), np.arange(width)).astype(np.uint8)  # wraps at 256: edges too
    frames = [frame_from_gray(np.roll(ramp, i, axis=1)) for i in range(int(encoder.card.config["gop"]) + 1)]
    path = folder / "warm-up.vcs"
    encode_frames(
        iter(frames), path, lambda c: encoder.header(width, height, DEFAULT_FPS, len(frames), c), encoder, "gray", True
    )
    decode_timed(path, model, device, precision)
    path.unlink()


# ---------------------------------------------------------------------------------------------- the bench


@dataclass
class BenchConfig:
    """What `vcs bench` runs. ``ratios`` picks the default model per ratio; ``models`` names models instead
    (each brings its own ratio). ``frames`` None codes whole sequences."""

    sequences: Path
    ratios: list[float] | None = None
    models: list[str] | None = None
    frames: int | None = PAPER_FRAMES
    device: str = "auto"
    precision: str = "fp32"
    chroma: str = "gray"  # the paper codes and scores Y only
    quant_steps: tuple[float, ...] = (DEFAULT_QUANT_STEP,)  # several: a rate sweep, one run per model and step
    batch_gops: int = 0
    keep: Path | None = None  # keep each .vcs and decoded .y4m here
    anchors: tuple[str, ...] = ()  # conventional codecs coded on the same frames (`rd.ANCHORS`)
    anchor_qps: tuple[int, ...] = DEFAULT_ANCHOR_QPS


def _cards(config: BenchConfig) -> list[ModelCard]:
    if config.models and config.ratios:
        raise VcsError("give --ratios or --model, not both (a model brings its own ratio)")
    if config.models:
        return [find_model(m) for m in config.models]
    return [pick_model(r, None) for r in (config.ratios or DEFAULT_RATIOS)]


def _check(config: BenchConfig) -> None:
    if config.frames is not None and config.frames < 1:
        raise VcsError("--frames must be at least 1 (or 'all')")
    if config.precision not in ("fp32", "bf16"):
        raise VcsError(f"--precision must be fp32 or bf16, not {config.precision!r}")
    if config.chroma not in CHROMA_CHOICES:
        raise VcsError(f"--chroma must be one of {', '.join(CHROMA_CHOICES)}")
    if config.batch_gops < 0:
        raise VcsError("--batch-gops must be 0 (auto) or more")
    if not config.quant_steps:
        raise VcsError("--quant-step needs at least one step")
    for step in config.quant_steps:
        check_step(step)
    if len(set(config.quant_steps)) != len(config.quant_steps):
        raise VcsError("--quant-step lists a step twice")
    for anchor in config.anchors:
        check_anchor(anchor)
    if config.anchors and not config.anchor_qps:
        raise VcsError("--anchor-qp needs at least one QP")
    for qp in config.anchor_qps:
        check_qp(qp)
    if config.ratios is not None:
        for r in config.ratios:
            if not 0 < r <= 1:
                raise VcsError(f"ratio {r:g} is outside (0, 1]")


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _bench_sequence(
    seq: Sequence,
    card: ModelCard,
    encoder: FrameEncoder,
    model: HITVCSNet,
    device: torch.device,
    config: BenchConfig,
    folder: Path,
) -> dict[str, Any]:
    count = seq.frame_count if config.frames is None else config.frames
    stem = f"{seq.name}-{card.name}"  # the model's name carries its ratio
    if len(config.quant_steps) > 1:
        stem += f"-q{encoder.quant_step:g}"
    vcs = folder / f"{stem}.vcs"

    # Encode: measure, quantize and write the container; reading the source is timed apart and left out.
    source = _Timed(_take(seq.frames(), count))
    start = time.perf_counter()
    header, _ = encode_frames(
        source,
        vcs,
        lambda chroma: encoder.header(seq.width, seq.height, seq.fps, count, chroma),
        encoder,
        config.chroma,
        force=True,
    )
    encode_seconds = time.perf_counter() - start - source.seconds
    size = vcs.stat().st_size

    # Decode from the file's bytes, with the model the header names (checked by hash), and score each frame.
    keys = set(header.key_frames())
    scored = set(scored_frames(count, header.gop))
    per_frame: list[dict[str, Any]] = []
    writer = open_writer(folder / f"{stem}.y4m", seq.width, seq.height, seq.fps, force=True) if config.keep else None
    try:
        with ContainerReader(vcs) as reader:
            named = model_for(reader.header)
            if named.sha256 != card.sha256:
                raise VcsError(f"{vcs.name} names model {named.name}, not {card.name}")
            decoded = _Timed(decode_records(reader, model, device, config.batch_gops, config.precision))
            for i, (ref, out) in enumerate(zip(_take(seq.frames(), count), decoded, strict=True)):
                per_frame.append(
                    {
                        "index": i,
                        "frame": i + 1,  # the paper counts frames from 1
                        "key": i in keys,
                        "scored": i in scored,
                        "psnr": psnr(ref.y, out.y),
                        "ssim": ssim(ref.y, out.y),
                    }
                )
                if writer:
                    writer.write(out)
        if writer:
            writer.close()
    except BaseException:
        if writer:
            writer.abort()  # no half-written video left in the keep folder
        raise
    if not config.keep:
        vcs.unlink()

    counted = [f for f in per_frame if f["scored"]]
    nonkey = [f for f in counted if not f["key"]]
    key = [f for f in counted if f["key"]]
    return {
        "name": seq.name,
        "paper_name": paper_sequence(seq.name),
        "path": str(seq.path),
        "width": seq.width,
        "height": seq.height,
        "frames": count,
        "key_frames": sorted(keys),
        "scored_frames": sorted(scored),
        "psnr": _mean([f["psnr"] for f in counted]),
        "ssim": _mean([f["ssim"] for f in counted]),
        "psnr_nonkey": _mean([f["psnr"] for f in nonkey]),
        "ssim_nonkey": _mean([f["ssim"] for f in nonkey]),
        "psnr_key": _mean([f["psnr"] for f in key]),
        "ssim_key": _mean([f["ssim"] for f in key]),
        "bytes": size,
        "bpp": size * 8 / (seq.width * seq.height * count),  # file bits per luma pixel, headers included
        "encode_seconds": encode_seconds,
        "decode_seconds": decoded.seconds,
        "encode_fps": count / max(encode_seconds, 1e-9),
        "decode_fps": count / max(decoded.seconds, 1e-9),
        "vcs": str(vcs) if config.keep else None,
        "decoded": str(folder / f"{stem}.y4m") if config.keep else None,
        "per_frame": per_frame,
    }


def implied_keyframe_psnr(all_frames: float, non_keyframes: float) -> float:
    """The keyframes' mean PSNR that a paper's averages imply: Table 1 averages frames 1–16 (keyframes 1 and 9
    among them), Table 4 the 14 non-keyframes, so the two keyframes average (16·T1 − 14·T4) / 2. The paper gives
    no keyframe figure of its own; this is arithmetic on its tables, exact if both average the same frames."""
    scored, key = PAPER_FRAMES - 1, 2
    return (scored * all_frames - (scored - key) * non_keyframes) / key


def _paper_for_run(card: ModelCard, sequences: list[dict[str, Any]], paper: dict[str, Any]) -> dict[str, Any]:
    """The paper's figures for this run: per sequence (Table 1), averages (Tables 1, 4) and the ablation (5)."""
    rk = ratio_key(card.alpha_n)
    table1 = {m: paper["table1"]["methods"][m].get(rk) for m in PAPER_METHODS}
    present = [s["paper_name"] for s in sequences if s["paper_name"]]
    complete = sorted(set(present)) == sorted(paper["sequences"]) and len(present) == len(sequences)
    for s in sequences:
        s["paper"] = {m: rows[s["paper_name"]] for m, rows in table1.items() if rows and s["paper_name"]} or None
    average: dict[str, Any] = {"complete": complete, "table1": {}, "table4": {}, "table5": {}, "keyframes": {}}
    for m, rows in table1.items():
        if not rows or not present:
            continue
        if complete:
            average["table1"][m] = rows["Average"]
        else:  # a subset of the test set: the mean of the paper's rows for the sequences present
            average["table1"][m] = {
                "psnr": float(np.mean([rows[n]["psnr"] for n in present])),
                "ssim": float(np.mean([rows[n]["ssim"] for n in present])),
                "over": present,
            }
    if complete:  # Tables 4 and 5 give only averages over all six sequences
        for m in PAPER_METHODS:
            if rk in paper["table4"]["methods"][m]:
                average["table4"][m] = paper["table4"]["methods"][m][rk]
                if table1[m]:
                    implied = implied_keyframe_psnr(table1[m]["Average"]["psnr"], average["table4"][m]["psnr"])
                    average["keyframes"][m] = {"psnr": implied, "implied": "by Tables 1 and 4"}
        method = ABLATIONS.get(card.arch)  # the full model's Table 5 row repeats Table 1's average
        if method and rk in paper["table5"]["methods"][method]:
            average["table5"][method] = paper["table5"]["methods"][method][rk]
    return average


def _average(results: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, Any]:
    """Means over sequences of ``keys``; rate and speed pooled over all frames (equal to the mean when the
    sequences are the same size)."""
    frames = sum(r["frames"] for r in results)
    pixels = sum(r["width"] * r["height"] * r["frames"] for r in results)
    average: dict[str, Any] = {key: _mean([r[key] for r in results if r[key] is not None]) for key in keys}
    average["bpp"] = sum(r["bytes"] for r in results) * 8 / pixels
    average["encode_fps"] = frames / max(sum(r["encode_seconds"] for r in results), 1e-9)
    average["decode_fps"] = frames / max(sum(r["decode_seconds"] for r in results), 1e-9)
    return average


def _bench_run(
    card: ModelCard,
    encoder: FrameEncoder,
    model: HITVCSNet,
    device: torch.device,
    config: BenchConfig,
    sequences: list[Sequence],
    folder: Path,
    paper: dict[str, Any],
    progress: Callable[[str], None] | None,
) -> dict[str, Any]:
    """One model at one quantizer step over every sequence."""
    from .models import parameter_counts

    results = []
    for seq in sequences:
        results.append(_bench_sequence(seq, card, encoder, model, device, config, folder))
        if progress:
            progress(f"{seq.name} n{ratio_key(card.alpha_n)} q{encoder.quant_step:g}")
    average = _average(results, ("psnr", "ssim", "psnr_nonkey", "ssim_nonkey", "psnr_key", "ssim_key"))
    average["paper"] = _paper_for_run(card, results, paper)
    return {
        "ratio": card.alpha_n,
        "alpha_k": card.alpha_k,
        "quant_step": encoder.quant_step,
        "model": {
            "name": card.name,
            "arch": card.arch,
            "sha256": card.sha256,
            "parameters": parameter_counts(model)["total"],
            "config": card.config,
            "training": card.manifest.get("training"),
        },
        "sequences": results,
        "average": average,
        "floor": _linear_floor(card.alpha_n, average["paper"]),
    }


def _linear_floor(alpha_n: float, paper_average: dict[str, Any]) -> dict[str, Any] | None:
    """The linear decoder's scores on the paper's test set, for a run over that whole set at a ratio that has one
    (`LINEAR_FLOORS` are averages over all six sequences: against any other set they mean nothing)."""
    key = ratio_key(alpha_n)
    if not paper_average["complete"] or key not in LINEAR_FLOORS:
        return None
    return {**LINEAR_FLOORS[key], "source": FLOOR_SOURCE}


def _anchor_run(
    anchor: str,
    qp: int,
    sequences: list[Sequence],
    config: BenchConfig,
    gop: int,
    progress: Callable[[str], None] | None,
) -> dict[str, Any]:
    """One anchor codec at one QP over every sequence, scored like our runs (`rd.code_with_anchor`)."""
    results = []
    for seq in sequences:
        count = seq.frame_count if config.frames is None else config.frames
        coded = code_with_anchor(_take(seq.frames(), count), anchor, qp, gray=config.chroma == "gray")
        scored = scored_frames(count, gop)
        results.append(
            {
                "name": seq.name,
                "paper_name": paper_sequence(seq.name),
                "width": seq.width,
                "height": seq.height,
                "frames": count,
                "scored_frames": scored,
                "psnr": _mean([coded.psnr[i] for i in scored]),
                "ssim": _mean([coded.ssim[i] for i in scored]),
                "bytes": coded.bytes,
                "bpp": coded.bytes * 8 / (seq.width * seq.height * count),
                "encode_seconds": coded.encode_seconds,
                "decode_seconds": coded.decode_seconds,
                "per_frame": [
                    {"index": i, "frame": i + 1, "scored": i in scored, "psnr": p, "ssim": q}
                    for i, (p, q) in enumerate(zip(coded.psnr, coded.ssim, strict=True))
                ],
            }
        )
        if progress:
            progress(f"{seq.name} {anchor} QP {qp}")
    return {
        "anchor": anchor,
        "qp": qp,
        "options": ANCHORS[anchor],
        "sequences": results,
        "average": _average(results, ("psnr", "ssim")),
    }


def _sequence_curve(runs: list[dict[str, Any]], name: str) -> tuple[list[float], list[float]]:
    """One sequence's (bpp, PSNR) points across runs of one codec at several settings."""
    rows = [next(s for s in run["sequences"] if s["name"] == name) for run in runs]
    return [s["bpp"] for s in rows], [s["psnr"] for s in rows]


def _sweeps(runs: list[dict[str, Any]], key: Callable[[dict[str, Any]], str]) -> dict[str, list[dict[str, Any]]]:
    """Runs grouped by codec (a model's name, an anchor's), in order: each group is one rate sweep."""
    sweeps: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        sweeps.setdefault(key(run), []).append(run)
    return sweeps


def _model_name(run: dict[str, Any]) -> str:
    return run["model"]["name"]


def _anchor_name(run: dict[str, Any]) -> str:
    return run["anchor"]


def rd_comparisons(runs: list[dict[str, Any]], anchors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Bjøntegaard deltas of each model's rate sweep (its runs at several steps) against each anchor's QP sweep,
    and of every other model's against the first model's; per sequence, and averaged over the sequences where
    both curves overlap (the JVET practice)."""
    sweeps, references = _sweeps(runs, _model_name), _sweeps(anchors, _anchor_name)
    first_model = next(iter(sweeps), None)
    swept = first_model is not None and len(sweeps[first_model]) > 1  # one step: no curve to compare with
    comparisons = []
    for model, model_runs in sweeps.items():
        against = {**references, **({first_model: sweeps[first_model]} if swept and model != first_model else {})}
        for reference, reference_runs in against.items():
            per_sequence = {}
            for seq in model_runs[0]["sequences"]:
                rd_reference = _sequence_curve(reference_runs, seq["name"])
                rd_model = _sequence_curve(model_runs, seq["name"])
                per_sequence[seq["name"]] = {
                    "bd_rate": bd_rate(*rd_reference, *rd_model),
                    "bd_psnr": bd_psnr(*rd_reference, *rd_model),
                }
            comparisons.append(
                {
                    "model": model,
                    "reference": reference,
                    "bd_rate": summarize(v["bd_rate"] for v in per_sequence.values()),
                    "bd_psnr": summarize(v["bd_psnr"] for v in per_sequence.values()),
                    "per_sequence": per_sequence,
                }
            )
    return comparisons


def run_bench(
    config: BenchConfig,
    command: str = "",
    on_start: Callable[[int], None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run every model (or ratio) over every sequence; returns the whole report as plain JSON-able data.

    ``on_start`` gets the number of (model, sequence) items; ``progress`` is called after each with its label.
    """
    _check(config)
    cards = _cards(config)  # option and model errors first, before any sequence is read
    sequences, warnings = find_sequences(config.sequences)
    if config.frames is not None:
        short = [s for s in sequences if s.frame_count < config.frames]
        for s in short:
            warnings.append(f"skipped {s.path.name}: {s.frame_count} frames, the protocol needs {config.frames}")
        sequences = [s for s in sequences if s.frame_count >= config.frames]
        if not sequences:
            raise VcsError(f"no sequence in {config.sequences} has {config.frames} frames (try --frames all)")
    device = pick_device(config.device)
    paper = paper_results()
    if on_start:
        codings = len(cards) * len(config.quant_steps) + len(config.anchors) * len(config.anchor_qps)
        on_start(codings * len(sequences))
    if config.keep:
        config.keep.mkdir(parents=True, exist_ok=True)

    runs = []
    with tempfile.TemporaryDirectory(prefix="vcs-bench-") as tmp:
        folder = config.keep or Path(tmp)
        for card in cards:
            model = card.load(device)
            for step_index, step in enumerate(config.quant_steps):
                encoder = FrameEncoder(card, step)
                if step_index == 0:
                    size = (sequences[0].width, sequences[0].height)
                    _warm_up(encoder, model, device, config.precision, size, Path(tmp))
                runs.append(_bench_run(card, encoder, model, device, config, sequences, folder, paper, progress))
            del model
    gop = int(cards[0].config["gop"])  # anchors are scored on the frames our runs score
    anchors = [
        _anchor_run(anchor, qp, sequences, config, gop, progress)
        for anchor in config.anchors
        for qp in config.anchor_qps
    ]
    return {
        "vcscodec_version": __version__,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "sequences_dir": str(config.sequences),
        "protocol": {
            "frames": config.frames if config.frames is not None else "all",
            "scored": "frames 1-16 of 17 (keyframes 1 and 9 included, final keyframe 17 not scored); non-key: "
            "frames 2-8 and 10-16"
            if config.frames == PAPER_FRAMES
            else "all frames but the final keyframe when the count is gop*k+1, else all frames",
            "metrics": "Y plane, 8-bit, PSNR peak 255 without border crop; SSIM Wang et al. 2004 (Gaussian 11x11, "
            "sigma 1.5); averages are means over sequences of per-sequence means",
            "chroma": config.chroma,
            "quant_steps": list(config.quant_steps),
            "anchor_qps": list(config.anchor_qps) if config.anchors else [],
        },
        "device": device_info(device),
        "precision": config.precision,
        "batch_gops": config.batch_gops,
        "paper": paper["source"],
        "warnings": warnings,
        "runs": runs,
        "anchors": anchors,
        "rd": rd_comparisons(runs, anchors),
    }


# ---------------------------------------------------------------------------------------------- output


def _finite(value: Any) -> Any:
    """JSON has no infinity: an exact reconstruction's PSNR (inf) is written as null."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def write_json(report: dict[str, Any], path: Path) -> None:
    """Write the report as strict JSON, through a temporary file renamed on success."""
    if path.parent and not path.parent.is_dir():
        raise VcsError(f"output folder {path.parent} does not exist")
    temp = path.parent / f"{path.name}.tmp-{os.getpid()}"
    try:
        temp.write_text(json.dumps(_finite(report), indent=2, allow_nan=False) + "\n")
        temp.replace(path)
    except OSError as e:
        temp.unlink(missing_ok=True)
        raise VcsError(f"cannot write {path}: {e.strerror or e}") from None


def require_matplotlib() -> None:
    """Fail before the bench runs, not after, when ``--plot`` cannot be honoured."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise VcsError("--plot needs matplotlib: pip install 'vcscodec[plot]' (or pip install matplotlib)") from None


def write_plots(report: dict[str, Any], folder: Path) -> list[Path]:
    """One PNG per run: PSNR of every frame of every sequence, keyframes marked. Returns the files written."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for run in report["runs"]:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for seq in run["sequences"]:
            x = [f["frame"] for f in seq["per_frame"]]
            y = [f["psnr"] for f in seq["per_frame"]]
            (line,) = ax.plot(x, y, marker=".", label=seq["paper_name"] or seq["name"])
            keys = [(f["frame"], f["psnr"]) for f in seq["per_frame"] if f["key"]]
            ax.plot(*zip(*keys, strict=True), "s", color=line.get_color(), markersize=6)
        floor = run["floor"]
        if floor:
            ax.axhline(floor["psnr"], color="grey", linestyle="--", linewidth=1, label="linear floor (frames 1–16)")
        ax.set_xlabel("frame (squares: keyframes)")
        ax.set_ylabel("PSNR Y (dB)")
        ax.set_title(f"αn {run['ratio']:g} · {run['model']['name']}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        step = f"-q{run['quant_step']:g}" if len(report["protocol"]["quant_steps"]) > 1 else ""
        path = folder / f"psnr-n{ratio_key(run['ratio'])}-{run['model']['name']}{step}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    if len(report["runs"]) + len(report["anchors"]) > 1:
        written.append(_plot_rd(report, folder / "rd.png", plt))
    return written


def _plot_rd(report: dict[str, Any], path: Path, plt: Any) -> Path:
    """Average PSNR against average bpp: one curve per model (its steps) and per anchor (its QPs)."""
    sweeps = {**_sweeps(report["runs"], _model_name), **_sweeps(report["anchors"], _anchor_name)}
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, sweep in sweeps.items():
        points = sorted((run["average"]["bpp"], run["average"]["psnr"]) for run in sweep)
        ax.plot(*zip(*points, strict=True), marker="o", label=name)
    ax.set_xlabel("bits per luma pixel (whole file)")
    ax.set_ylabel("PSNR Y (dB), mean over sequences")
    ax.set_title(f"rate–distortion · {report['protocol']['frames']} frames · chroma {report['protocol']['chroma']}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _pair(p: float | None, s: float | None) -> str:
    if p is None:
        return "–"
    return f"{p:.2f}" if s is None else f"{p:.2f}/{s:.4f}"


def _delta(ours: dict[str, Any], ref: dict[str, Any] | None, field: str = "psnr") -> str:
    """ours[field] − ref's PSNR, and the SSIM difference too for the all-frames average."""
    if not ref:
        return ""
    p = ours[field]
    s = ours["ssim"] if field == "psnr" and "ssim" in ref else None
    if p is None:
        return ""
    text = f"{p - ref['psnr']:+.2f}"
    return text if s is None else f"{text}/{s - ref['ssim']:+.4f}"


def _subset_cells(
    avg: dict[str, Any], kind: str, refs: dict[str, Any], mark: str, methods: tuple[str, ...]
) -> list[str]:
    """Our PSNR/SSIM over one kind of frame (``nonkey`` or ``key``), then each paper method's PSNR and our Δ."""
    cells = [_pair(avg[f"psnr_{kind}"], avg[f"ssim_{kind}"])]
    for method in methods:
        ref = refs.get(method)
        cells += [_pair(ref["psnr"], None) + mark if ref else "", _delta(avg, ref, f"psnr_{kind}")]
    return cells


def _render_rd(report: dict[str, Any], console: Console) -> None:
    """The anchors' averages, then the Bjøntegaard deltas of each model against each anchor and the first model."""
    if report["anchors"]:
        _render_anchors(report["anchors"], console)
    if not report["rd"]:
        return
    for c in report["rd"]:
        rate, gain = c["bd_rate"], c["bd_psnr"]
        if rate["mean"] is None and gain["mean"] is None:
            console.print(
                f"  {c['model']} against {c['reference']}: no Bjøntegaard delta (it needs two or more points on "
                "each curve, overlapping in PSNR or rate: give several --quant-step values or widen --anchor-qp)",
                highlight=False,
            )
            continue
        total = len(c["per_sequence"])
        parts = []
        if rate["mean"] is not None:
            parts.append(f"BD-rate {rate['mean']:+.1f} % ({rate['sequences']} of {total} sequences)")
        if gain["mean"] is not None:
            parts.append(f"BD-PSNR {gain['mean']:+.2f} dB ({gain['sequences']} of {total})")
        console.print(f"  {c['model']} against {c['reference']}: {', '.join(parts)}", highlight=False)
    console.print(
        "  Bjøntegaard deltas, per sequence where the curves overlap, then averaged; a negative BD-rate means "
        "fewer bits than the reference for the same PSNR",
        highlight=False,
    )


def _render_anchors(anchors: list[dict[str, Any]], console: Console) -> None:
    from rich.table import Table

    table = Table(title="anchors (the same frames, scored the same way)", title_justify="left")
    for col in ("anchor", "QP", "PSNR/SSIM", "bpp", "enc fps", "dec fps"):
        table.add_column(col, justify="left" if col == "anchor" else "right")
    for run in anchors:
        avg = run["average"]
        table.add_row(
            run["anchor"],
            str(run["qp"]),
            _pair(avg["psnr"], avg["ssim"]),
            f"{avg['bpp']:.4f}",
            f"{avg['encode_fps']:.1f}",
            f"{avg['decode_fps']:.1f}",
        )
    console.print(table)


def render(report: dict[str, Any], console: Console) -> None:
    """The paper's Table 1 per run, with Table 4's non-keyframe row, the linear floor, rate and speed."""
    from rich.console import Console
    from rich.table import Table

    dev = report["device"]
    if not console.is_terminal:
        # Piped into a file, rich would assume 80 columns and cut the figures to "…"; a table is read whole.
        console = Console(file=console.file, width=max(console.width, 150))
    steps = report["protocol"]["quant_steps"]
    for run in report["runs"]:
        if run["quant_step"] != steps[0]:
            continue  # a rate sweep: the paper's tables at the first step, the others in the summaries below
        m, avg, paper = run["model"], run["average"], run["average"]["paper"]
        step = f" · step {run['quant_step']:g}" if len(steps) > 1 else ""
        table = Table(
            title=f"αn {run['ratio']:g} · {m['name']} ({m['arch']}, {m['parameters']:,} parameters) · "
            f"{report['protocol']['frames']} frames{step} · {dev['name']} · {report['precision']}",
            title_justify="left",
        )
        # The paper's columns only where it has figures for a sequence: beside the user's own clips they are blank.
        methods = PAPER_METHODS if any(s.get("paper") for s in run["sequences"]) else ()
        paper_columns = [c for method in methods for c in (method, "Δ")]
        for col in ("sequence", "PSNR/SSIM", *paper_columns, "bpp", "enc fps", "dec fps"):
            text = col == "sequence"  # a name: folded in a narrow terminal, never cut with "…"
            table.add_column(col, justify="left" if text else "right", overflow="fold" if text else "ellipsis")
        for s in run["sequences"]:
            refs = s.get("paper") or {}
            table.add_row(
                s["paper_name"] or s["name"],
                _pair(s["psnr"], s["ssim"]),
                *(
                    cell
                    for method in methods
                    for cell in (
                        _pair(refs[method]["psnr"], refs[method]["ssim"]) if method in refs else "",
                        _delta(s, refs.get(method)),
                    )
                ),
                f"{s['bpp']:.4f}",
                f"{s['encode_fps']:.1f}",
                f"{s['decode_fps']:.2f}",
            )
        t1 = paper["table1"]
        subset = "" if paper["complete"] else "*"
        table.add_row(
            "[bold]average",
            f"[bold]{_pair(avg['psnr'], avg['ssim'])}",
            *(
                cell
                for method in methods
                for cell in (
                    _pair(t1[method]["psnr"], t1[method]["ssim"]) + subset if method in t1 else "",
                    _delta(avg, t1.get(method)),
                )
            ),
            f"{avg['bpp']:.4f}",
            f"{avg['encode_fps']:.1f}",
            f"{avg['decode_fps']:.2f}",
            end_section=True,
        )
        implied = paper["keyframes"]
        for label, kind, refs, mark in (
            ("non-key average", "nonkey", paper["table4"], ""),
            ("keyframe average", "key", implied, "†"),
        ):
            table.add_row(label, *_subset_cells(avg, kind, refs, mark, methods), "", "", "")
        console.print(table)
        notes = []
        if implied:
            notes.append("† implied by the paper's Tables 1 and 4: (16·frames 1–16 − 14·non-key) / 2")
        if not paper["complete"] and t1:
            notes.append("* the paper's mean over the sequences present (its averages cover all six)")
        for method, ref in paper["table5"].items():
            notes.append(f"Table 5 ({method}): {_pair(ref['psnr'], ref['ssim'])}, ours Δ {_delta(avg, ref)}")
        floor = run["floor"]
        if floor and avg["psnr"] is not None:
            nonkey = f", ours Δ {avg['psnr_nonkey'] - floor['psnr_nonkey']:+.2f}" if avg["psnr_nonkey"] else ""
            notes.append(
                f"linear floor (temporal residual, KLT): {floor['psnr']:.2f} dB frames 1–16, ours Δ "
                f"{avg['psnr'] - floor['psnr']:+.2f}; {floor['psnr_nonkey']:.2f} dB non-key{nonkey}"
            )
        if methods and report["protocol"]["frames"] != PAPER_FRAMES:
            notes.append("the paper's figures are for the first 17 frames; these scores are not")
        for note in notes:
            console.print(f"  {note}", highlight=False)
    if len(report["runs"]) > 1:
        summary = Table(title="all runs", title_justify="left")
        columns = ("αn", "model", "q step", "parameters", "PSNR/SSIM", "non-key PSNR", "key PSNR", "bpp", "enc fps")
        for col in (*columns, "dec fps"):
            text = col == "model"  # what --model takes: folded in a narrow terminal, never cut with "…"
            summary.add_column(col, justify="left" if text else "right", overflow="fold" if text else "ellipsis")
        for run in report["runs"]:
            avg = run["average"]
            summary.add_row(
                f"{run['ratio']:g}",
                run["model"]["name"],
                f"{run['quant_step']:g}",
                f"{run['model']['parameters']:,}",
                _pair(avg["psnr"], avg["ssim"]),
                _pair(avg["psnr_nonkey"], None),
                _pair(avg["psnr_key"], None),
                f"{avg['bpp']:.4f}",
                f"{avg['encode_fps']:.1f}",
                f"{avg['decode_fps']:.2f}",
            )
        console.print(summary)
    _render_rd(report, console)
    console.print(
        f"device {dev['name']} ({dev['type']}, {threads_phrase(dev['threads'])}, {dev['logical_cores']} logical cores, "
        f"torch {dev['torch']}), "
        f"precision {report['precision']}, chroma {report['protocol']['chroma']}; speeds exclude reading the "
        "source and loading the model",
        highlight=False,
    )
