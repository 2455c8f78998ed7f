"""Running the bench: sequences found and opened, every one through encode → .vcs → decode, timed and scored;
anchors and Bjøntegaard comparisons for rate sweeps."""

from __future__ import annotations

import itertools
import os
import tempfile
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import __version__
from ..codec import FrameEncoder, decode_records, encode_frames, model_for, pick_model
from ..container import ContainerReader, check_chroma_mode
from ..errors import OptionConflict, VcsError, frames_phrase
from ..hardware import check_precision, cpu_name, pick_device
from ..io import DEFAULT_FPS, Frame, frame_from_gray, open_video, open_writer
from ..output import held_signals, make_output_folder
from ..quality import score_frame
from ..quant import DEFAULT_QUANT_STEP, check_step
from ..rd import ANCHORS, DEFAULT_ANCHOR_QPS, bd_psnr, bd_rate, check_anchor, check_qp, code_with_anchor, summarize
from ..registry import ModelCard, check_ratio, find_model
from .paper import PAPER_FRAMES, linear_floor, paper_figures, paper_results, paper_sequence, ratio_key
from .sequences import Sequence, find_sequences, scored_frames

if TYPE_CHECKING:
    import torch

    from ..models import HITVCSNet

DEFAULT_RATIOS = (0.01, 0.1)


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
    """The first ``count`` frames, and not one more decoded; closes the source at once (its file) instead of at
    garbage collection."""
    try:
        yield from itertools.islice(frames, count)
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
    force: bool = False  # overwrite files already in ``keep``
    anchors: tuple[str, ...] = ()  # conventional codecs coded on the same frames (`rd.ANCHORS`)
    anchor_qps: tuple[int, ...] = DEFAULT_ANCHOR_QPS


def _cards(config: BenchConfig) -> list[ModelCard]:
    if config.models and config.ratios:
        raise OptionConflict("give --ratios or --model, not both (a model brings its own ratio)")
    if config.models:
        cards = [find_model(m) for m in config.models]
        names = [c.name for c in cards]
        if len(set(names)) != len(names):  # two prefixes of one model
            raise VcsError(f"--model names {next(n for i, n in enumerate(names) if n in names[:i])} twice")
        return cards
    return [pick_model(r, None) for r in (config.ratios or DEFAULT_RATIOS)]


def _check(config: BenchConfig) -> None:
    if config.frames is not None and config.frames < 1:
        raise VcsError("--frames must be at least 1 (or 'all')")
    check_precision(config.precision)
    check_chroma_mode(config.chroma)
    if config.batch_gops < 0:
        raise VcsError("--batch-gops must be 0 (auto) or more")
    if not config.quant_steps:
        raise VcsError("--quant-step needs at least one step")
    for step in config.quant_steps:
        check_step(step)
    # Each run or anchor once: a repeated one would be coded again and counted twice in every average.
    for option, values in (
        ("--quant-step", config.quant_steps),
        ("--ratios", config.ratios or ()),
        ("--model", config.models or ()),
        ("--anchor", config.anchors),
        ("--anchor-qp", config.anchor_qps),
    ):
        repeated = next((v for i, v in enumerate(values) if v in values[:i]), None)
        if repeated is not None:
            raise VcsError(
                f"{option} lists {repeated:g} twice"
                if isinstance(repeated, float)
                else f"{option} lists {repeated} twice"
            )
    for anchor in config.anchors:
        check_anchor(anchor)
    if config.anchors and not config.anchor_qps:
        raise VcsError("--anchor-qp needs at least one QP")
    for qp in config.anchor_qps:
        check_qp(qp)
    for r in config.ratios or ():
        check_ratio(r)


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _stem(seq: Sequence, card: ModelCard, quant_step: float, config: BenchConfig) -> str:
    """The name of the .vcs and decoded .y4m one coding leaves in the --keep folder."""
    stem = f"{seq.name}-{card.name}"  # the model's name carries its ratio
    return f"{stem}-q{quant_step:g}" if len(config.quant_steps) > 1 else stem


def _prepare_keep(config: BenchConfig, sequences: list[Sequence], cards: list[ModelCard]) -> None:
    """Create the --keep folder and refuse, before hours of coding, a place whose files would be lost or reread:
    a folder within the sequences (the next bench would take its videos for test sequences), or files already
    there without --force."""
    assert config.keep is not None
    if config.keep.resolve().is_relative_to(config.sequences.resolve()):
        raise VcsError(f"--keep {config.keep} is inside the sequence folder: its videos would be benchmarked next")
    make_output_folder(config.keep, "vcs bench --keep")
    if config.force:
        return
    for card, step, seq, suffix in itertools.product(cards, config.quant_steps, sequences, (".vcs", ".y4m")):
        path = config.keep / f"{_stem(seq, card, step, config)}{suffix}"
        if path.exists():
            raise VcsError(f"{path} already exists (use --force to overwrite)")


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
    stem = _stem(seq, card, encoder.quant_step, config)
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
    colour = header.chroma == "yuv420"
    per_frame: list[dict[str, Any]] = []
    decoded_path = folder / f"{stem}.y4m"
    writer = open_writer(decoded_path, seq.width, seq.height, seq.fps, force=True) if config.keep else None
    try:
        with ContainerReader(vcs) as reader:
            named = model_for(reader.header)
            if named.sha256 != card.sha256:
                raise VcsError(f"{vcs.name} names model {named.name}, not {card.name}")
            decoded = _Timed(decode_records(reader, model, device, config.batch_gops, config.precision))
            for i, (ref, out) in enumerate(zip(_take(seq.frames(), count), decoded, strict=True)):
                quality = score_frame(ref, out)
                per_frame.append(
                    {
                        "index": i,
                        "frame": i + 1,  # the paper counts frames from 1
                        "key": i in keys,
                        "scored": i in scored,
                        "psnr": quality.psnr_y,
                        "ssim": quality.ssim_y,
                        # U and V only when they were coded: a grey file's chroma is mid-grey, not a result.
                        **({"psnr_u": quality.psnr_u, "psnr_v": quality.psnr_v} if colour else {}),
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
    if config.keep:  # both made in the work folder, put in place together: an interrupted bench (-f) leaves
        # each coding's pair from this run or the last, never one of each
        kept = config.keep / vcs.name, config.keep / decoded_path.name
        with held_signals():  # both moved, or (stopped before) neither
            os.replace(vcs, kept[0])
            os.replace(decoded_path, kept[1])
        vcs, decoded_path = kept
    else:
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
        **_chroma_means(counted if colour else []),
        "bytes": size,
        "bpp": size * 8 / (seq.width * seq.height * count),  # file bits per luma pixel, headers included
        "encode_seconds": encode_seconds,
        "decode_seconds": decoded.seconds,
        "encode_fps": count / max(encode_seconds, 1e-9),
        "decode_fps": count / max(decoded.seconds, 1e-9),
        "vcs": str(vcs) if config.keep else None,
        "decoded": str(decoded_path) if config.keep else None,
        "per_frame": per_frame,
    }


def _chroma_means(frames: list[dict[str, Any]]) -> dict[str, float | None]:
    """Mean PSNR of U and of V over ``frames`` (None for both without frames: the file was coded grey)."""
    return {"psnr_u": _mean([f["psnr_u"] for f in frames]), "psnr_v": _mean([f["psnr_v"] for f in frames])}


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
    from ..models import parameter_counts

    results = []
    for seq in sequences:
        results.append(_bench_sequence(seq, card, encoder, model, device, config, folder))
        if progress:
            progress(f"{seq.name} n{ratio_key(card.alpha_n)} q{encoder.quant_step:g}")
    average = _average(
        results, ("psnr", "ssim", "psnr_nonkey", "ssim_nonkey", "psnr_key", "ssim_key", "psnr_u", "psnr_v")
    )
    average["paper"] = paper_figures(card, results, paper)
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
        # measured on the first 17 frames of the six: against another count it means nothing
        "floor": linear_floor(card.alpha_n, average["paper"]) if config.frames == PAPER_FRAMES else None,
    }


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
        chroma = [{"psnr_u": u, "psnr_v": v} for u, v in zip(coded.psnr_u, coded.psnr_v, strict=True)]
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
                **_chroma_means([chroma[i] for i in scored] if chroma else []),
                "bytes": coded.bytes,
                "bpp": coded.bytes * 8 / (seq.width * seq.height * count),
                "encode_seconds": coded.encode_seconds,
                "decode_seconds": coded.decode_seconds,
                "per_frame": [
                    {
                        "index": i,
                        "frame": i + 1,
                        "scored": i in scored,
                        "psnr": p,
                        "ssim": q,
                        **(chroma[i] if chroma else {}),
                    }
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
        "average": _average(results, ("psnr", "ssim", "psnr_u", "psnr_v")),
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


def rate_sweeps(
    runs: list[dict[str, Any]], anchors: list[dict[str, Any]]
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]]]:
    """The models' rate sweeps and the anchors' (runs grouped by model name, anchor runs by anchor), in order."""
    return _sweeps(runs, _model_name), _sweeps(anchors, _anchor_name)


def rd_comparisons(runs: list[dict[str, Any]], anchors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Bjøntegaard deltas of each model's rate sweep (its runs at several steps) against each anchor's QP sweep,
    and of every other model's against the first model's; per sequence, and averaged over the sequences where
    both curves overlap (the JVET practice)."""
    sweeps, references = rate_sweeps(runs, anchors)
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


def _count_sized(frames: Iterator[Frame], size: tuple[int, int]) -> int:
    """How many ``frames`` there are, each checked to be ``size`` (numbered pictures may differ), one at a time."""
    count = 0
    for count, frame in enumerate(frames, 1):
        if (frame.width, frame.height) != size:
            raise VcsError(f"frame {count - 1} is {frame.width}x{frame.height}, not {size[0]}x{size[1]}")
    return count


def _readable(sequences: list[Sequence], config: BenchConfig, warnings: list[str]) -> list[Sequence]:
    """The sequences whose frames (the first ``config.frames``, or all) read to the end; one damaged in the middle
    is skipped with a warning, as an unreadable one is, instead of failing the bench after the others were coded.
    What reading a video says (a partial last frame, interlacing, samples rounded to 8 bits) is added to
    ``warnings``, as `vcs encode` says it. Reading is milliseconds a frame where coding takes a second or more."""
    readable = []
    chroma = "yuv420" if config.chroma == "yuv420" else "gray"  # auto: the subsampling is said only when known
    for sequence in sequences:
        needed = config.frames or sequence.frame_count
        size = (sequence.width, sequence.height)
        said: list[str | None] = []
        try:
            if sequence.files is not None:  # numbered pictures, read one by one
                read = _count_sized(_take(sequence.frames(), needed), size)
            else:
                with open_video(sequence.path, default_fps=DEFAULT_FPS) as reader:
                    read = _count_sized(itertools.islice(reader, needed), size)
                    said += reader.reading_warnings(chroma, sequence.path.name)
            if read < needed:  # a container that promised more than decodes
                raise VcsError(f"{frames_phrase(read)} read of the {needed} it needs")
        except VcsError as e:
            warnings.append(f"skipped {sequence.path.name}: {e}")
            continue
        warnings.extend(w for w in said if w)
        readable.append(sequence)
    return readable


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
            said = f"{frames_phrase(s.frame_count)}, the protocol needs {config.frames}"
            warnings.append(f"skipped {s.path.name}: {said}")
        sequences = [s for s in sequences if s.frame_count >= config.frames]
        if not sequences:
            raise VcsError(f"no sequence in {config.sequences} has {config.frames} frames (try --frames all)")
    sequences = _readable(sequences, config, warnings)
    if not sequences:
        raise VcsError(f"no readable sequences in {config.sequences} ({'; '.join(warnings)})")
    device = pick_device(config.device)
    paper = paper_results()
    if on_start:
        codings = len(cards) * len(config.quant_steps) + len(config.anchors) * len(config.anchor_qps)
        on_start(codings * len(sequences))
    made_keep = config.keep is not None and not config.keep.exists()
    if config.keep:
        _prepare_keep(config, sequences, cards)
    try:
        return _run_all(config, command, sequences, warnings, cards, device, paper, progress)
    except BaseException:
        if made_keep and config.keep is not None and not any(config.keep.iterdir()):
            config.keep.rmdir()  # made by this bench, which stopped before it kept anything
        raise


def _run_all(
    config: BenchConfig,
    command: str,
    sequences: list[Sequence],
    warnings: list[str],
    cards: list[ModelCard],
    device: torch.device,
    paper: dict[str, Any],
    progress: Callable[[str], None] | None,
) -> dict[str, Any]:
    """`run_bench` once its inputs are checked: every model and step, then the anchors, then the report."""
    runs = []
    # Each coding's files are made here and moved into --keep when whole: inside --keep (hidden), so that the move
    # is a rename on one file system, not a copy that fails across two.
    with tempfile.TemporaryDirectory(prefix=".vcs-bench-", dir=config.keep) as tmp:
        folder = Path(tmp)
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
            "sigma 1.5); averages are means over sequences of per-sequence means; files coded in colour also "
            "report the PSNR of U and of V (psnr_u, psnr_v), scored the same way",
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
