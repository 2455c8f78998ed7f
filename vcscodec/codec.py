"""Encode a video into a ``.vcs`` file and decode it back, streaming GOP by GOP.

Encoding is numpy only (never torch): read frames, measure each plane's blocks with Φk or Φn, quantize, write
one record per GOP. Decoding reads two records at a time (a GOP and the next keyframe), batches GOPs for the
network and writes frames as soon as they are rebuilt, so memory depends on ``batch_gops``, not on the length
of the video.
"""

from __future__ import annotations

import itertools
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .container import (
    ContainerReader,
    ContainerWriter,
    FrameMeasurements,
    GopRecord,
    LostGop,
    StreamHeader,
    check_chroma_mode,
    check_vcs_name,
    expected_m,
)
from .errors import VcsError, check_path, check_size, check_whole, frames_phrase
from .hardware import check_precision, import_torch, pick_device
from .io import Frame, frame_from_gray, open_video, open_writer
from .output import check_output_path, refuse_input_as_output
from .quant import DEFAULT_QUANT_STEP, check_step, dequantize, quantize
from .registry import (
    DEFAULT_RATIO,
    ModelCard,
    check_ratio,
    default_model,
    find_model,
    installed_models,
    skipped_note,
    weights_dir,
)
from .sampling import measure_plane

if TYPE_CHECKING:
    import torch

    from .models import HITVCSNet, KeyMeasurements

Progress = Callable[[int], None]  # called with the number of frames just done
NEUTRAL = 128


@dataclass
class EncodeReport:
    frames: int
    width: int
    height: int
    bytes: int
    bits_per_pixel: float  # file bits per luma pixel of the source
    seconds: float
    model: str
    chroma: str
    warnings: list[str]
    quant_step: float = DEFAULT_QUANT_STEP
    passes: int = 1  # encodes of the whole input: more than one when the step was fitted to a rate (--bpp)


@dataclass
class DecodeReport:
    frames: int
    seconds: float
    device: str
    precision: str
    codec: str  # the video encoder used for the output
    threads: int = 1  # torch's CPU threads during the decode
    concealed: list[Concealed] = field(default_factory=list)  # lost GOPs (``conceal``), in order
    ignored: str | None = None  # ``conceal``: what was wrong after the last GOP record (no frames lost)
    warnings: list[str] = field(default_factory=list)  # for the user, one line each (a --frames past the end)


def is_neutral(frame: Frame) -> bool:
    return bool(np.all(frame.u == NEUTRAL) and np.all(frame.v == NEUTRAL))


AUTO_CHROMA_LOOKAHEAD_BYTES = 256 << 20
"""How much of the input ``--chroma auto`` holds while it reads ahead through grey frames: a colour video that opens
on black frames (a fade-in) is coded in colour when its colour shows within this much (82 frames of 1080p)."""


def auto_chroma(first: Frame, rest: Iterator[Frame]) -> tuple[str, Iterator[Frame]]:
    """``gray`` if the frames are neutral up to the end or to ``AUTO_CHROMA_LOOKAHEAD_BYTES`` of them, else
    ``yuv420``; and every frame, ``first`` included, for the encoder."""
    ahead = [first]
    frame_bytes = first.y.nbytes + first.u.nbytes + first.v.nbytes
    while is_neutral(ahead[-1]) and (len(ahead) + 1) * frame_bytes <= AUTO_CHROMA_LOOKAHEAD_BYTES:
        following = next(rest, None)
        if following is None:
            break
        ahead.append(following)
    return ("gray" if is_neutral(ahead[-1]) else "yuv420"), itertools.chain(ahead, rest)


def pick_model(ratio: float | None, model: str | None) -> ModelCard:
    """``--model NAME`` if given, else the shipped default for ``--ratio`` (`default_model` checks its type)."""
    if model:
        if ratio is None:
            return find_model(model)
        alpha_n = check_ratio(ratio)

        def fits(card: ModelCard) -> bool:
            return abs(card.alpha_n - alpha_n) < 1e-9

        card = find_model(model, fits=fits, fitting=f"ratio {alpha_n:g}")
        if not fits(card):
            raise VcsError(f"model {card.name} is for ratio {card.alpha_n:g}, not {alpha_n:g}")
        return card
    return default_model(DEFAULT_RATIO if ratio is None else ratio)


class FrameEncoder:
    """Measures and quantizes frames with a model's Φk and Φn (numpy arrays read from its weights file)."""

    def __init__(self, card: ModelCard, quant_step: float = DEFAULT_QUANT_STEP) -> None:
        self.card = card
        self.phi_k, self.phi_n = card.sampling_matrices()
        self.block = int(card.config["block"])
        self.quant_step = check_step(quant_step)  # before any frame is read, in its own words

    def header(
        self,
        width: int,
        height: int,
        fps: Fraction,
        frame_count: int,
        chroma: str,
        source_start: int = 0,
        chroma_siting: str | None = None,
    ) -> StreamHeader:
        """The stream's header; ``source_start`` is the source frame the stream begins at (`--start`),
        ``chroma_siting`` where its chroma samples sit when it says (`io.VideoInfo.chroma_siting`)."""
        cfg = self.card.config
        return StreamHeader(
            width=width,
            height=height,
            fps_num=fps.numerator,
            fps_den=fps.denominator,
            frame_count=frame_count,
            gop=int(cfg["gop"]),
            block=self.block,
            alpha_k=self.card.alpha_k,
            alpha_n=self.card.alpha_n,
            m_k=self.phi_k.shape[0],
            m_n=self.phi_n.shape[0],
            quant_step=self.quant_step,
            chroma=chroma,
            model_name=self.card.name,
            weights_sha256=self.card.sha256,
            key_grid_shift=int(cfg.get("key_grid_shift", 0)),
            source_start=source_start,
            chroma_siting=chroma_siting,
        )

    def measure(self, frame: Frame, index: int, key: bool, chroma: str, shift: int = 0) -> FrameMeasurements:
        """Quantized measurements of every coded plane; ``shift`` moves a keyframe's grid (``key_shift``)."""
        phi = self.phi_k if key else self.phi_n
        planes = [frame.y] if chroma == "gray" else [frame.y, frame.u, frame.v]
        return FrameMeasurements(index, key, [quantize(measure_plane(p, phi, shift), self.quant_step) for p in planes])


def encode_frames(
    frames: Iterator[Frame],
    output: Path,
    header_for: Callable[[str], StreamHeader],
    encoder: FrameEncoder,
    chroma: str = "auto",
    force: bool = False,
    progress: Progress | None = None,
) -> tuple[StreamHeader, list[str]]:
    """Write ``frames`` (exactly ``header.frame_count`` of them) to ``output``; returns the header and warnings."""
    first = next(frames, None)
    if first is None:
        raise VcsError("the input has no frames")
    if chroma == "auto":
        chroma, stream = auto_chroma(first, frames)
    else:
        stream = itertools.chain([first], frames)
    header = header_for(chroma)
    warnings: list[str] = []
    records = header.gop_ranges()
    with ContainerWriter(output, header, force=force) as writer:
        g, record = 0, GopRecord(0)
        index = -1
        for index, frame in enumerate(stream):
            if index >= header.frame_count:
                raise VcsError(f"the input has more frames than the {header.frame_count} announced")
            if (frame.y.shape[1], frame.y.shape[0]) != (header.width, header.height):
                raise VcsError(f"frame {index} is {frame.width}×{frame.height}, not {header.width}×{header.height}")
            if chroma == "gray" and not warnings and not is_neutral(frame):
                warnings.append(f"frame {index} has colour but the file is coded grey (--chroma yuv420 keeps it)")
            start, end = records[g]
            key = index == start
            record.frames.append(encoder.measure(frame, index, key, chroma, header.key_shift(g) if key else 0))
            if index == end - 1:
                writer.write_record(record)
                g += 1
                record = GopRecord(g)
            if progress:
                progress(1)
        if index + 1 != header.frame_count:
            raise VcsError(f"the input ended after {index + 1} of {frames_phrase(header.frame_count)}")
    return header, warnings


def encode_file(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    ratio: float | None = None,
    model: str | None = None,
    size: tuple[int, int] | None = None,
    fps: Fraction | None = None,
    quant_step: float = DEFAULT_QUANT_STEP,
    chroma: str = "auto",
    max_frames: int | None = None,
    force: bool = False,
    progress: Progress | None = None,
    on_start: Callable[[int], None] | None = None,
    target_bpp: float | None = None,
    start: int = 0,
) -> EncodeReport:
    """Encode a video file (anything ``vcscodec.io`` reads) into a ``.vcs`` file: its frames from ``start``
    (0-based), at most ``max_frames`` of them.

    ``target_bpp``: instead of ``quant_step``, the finest step whose file stays within that many bits per luma
    pixel (`fit_quant_step`: the input is encoded several times; ``on_start`` and ``progress`` report each pass)."""
    input, output = check_path(input, "the input"), check_path(output, "the output")
    check_vcs_name(output)
    size = check_size(size)
    check_chroma_mode(chroma)
    if max_frames is not None:
        max_frames = check_whole(max_frames, "--frames", 1)
    start = check_whole(start, "--start", 0)
    if target_bpp is not None and (isinstance(target_bpp, bool) or not isinstance(target_bpp, int | float)):
        raise VcsError(f"--bpp must be a number, not {target_bpp!r}")
    refuse_input_as_output(output, input)  # --force included: the source would be lost
    started = time.perf_counter()
    card = pick_model(ratio, model)
    if target_bpp is not None:
        return _encode_to_rate(
            input, output, card, size, fps, chroma, max_frames, force, target_bpp, start, progress, on_start
        )
    encoder = FrameEncoder(card, quant_step)
    with open_video(input, size=size, fps=fps, start=start) as reader:
        info = reader.info
        reader.refuse_other_size(size, "vcs encode does not scale")
        # from --start on (the reader refused one past the end)
        if info.frame_count is not None:
            total = info.frame_count
        else:
            total = _count_frames(input, size, fps, start, max_frames)
        if total < 1:
            raise info.no_frames(input)
        count = total if not max_frames else min(total, max_frames)
        if on_start:
            on_start(count)
        # islice, not a loop that stops on frame count + 1: that frame would be decoded, counted in the reader's
        # notices (interlaced frames, sizes) and could fail, though it is not coded.
        frames = itertools.islice(reader, count)
        header, warnings = encode_frames(
            frames,
            output,
            lambda c: encoder.header(info.width, info.height, info.fps, count, c, start, info.chroma_siting),
            encoder,
            chroma,
            force,
            progress,
        )
        warnings[:0] = reader.reading_warnings(header.chroma, str(input))
    past_end = frames_past_end(max_frames, count, start, str(input), "coded")
    if past_end:
        warnings.append(past_end)
    size_bytes = output.stat().st_size
    return EncodeReport(
        frames=count,
        width=info.width,
        height=info.height,
        bytes=size_bytes,
        bits_per_pixel=size_bytes * 8 / (info.width * info.height * count),
        seconds=time.perf_counter() - started,
        model=card.name,
        chroma=header.chroma,
        warnings=warnings,
        quant_step=quant_step,
    )


def _encode_to_rate(
    input: Path,
    output: Path,
    card: ModelCard,
    size: tuple[int, int] | None,
    fps: Fraction | None,
    chroma: str,
    max_frames: int | None,
    force: bool,
    target_bpp: float,
    start: int,
    progress: Progress | None,
    on_start: Callable[[int], None] | None,
) -> EncodeReport:
    """`encode_file` with the finest quantizer step within ``target_bpp`` (`fit_quant_step`). The trials are
    written beside the output; the one that fits with the finest step is kept and moved into place, so the answer
    is never encoded twice."""
    started = time.perf_counter()
    check_output_path(output, force)  # before the trial encodes, not after them
    folder = output.parent
    with tempfile.TemporaryDirectory(prefix=f".{output.name}.rate-", dir=folder) as trials:
        fitting: list[EncodeReport] = []  # the finest step that fits so far (its file is kept)

        def trial_path(step: float) -> Path:
            return Path(trials) / f"{step:g}.vcs"

        def bpp_at(step: float) -> float:
            report = encode_file(  # each pass reports its frames as a whole encode does
                input, trial_path(step), None, card.name, size, fps, step, chroma, max_frames,
                progress=progress, on_start=on_start, start=start,
            )  # fmt: skip
            if report.bits_per_pixel <= target_bpp:  # every step that fits is finer than the one before
                for kept in fitting:
                    trial_path(kept.quant_step).unlink()
                fitting[:] = [report]
            else:
                trial_path(step).unlink()
            return report.bits_per_pixel

        step, passes = fit_quant_step(bpp_at, target_bpp)
        (report,) = fitting
        assert report.quant_step == step
        if output.exists() and not force:
            raise VcsError(f"{output} appeared while encoding; not overwritten (use --force)")
        os.replace(trial_path(step), output)
    return replace(report, passes=passes, seconds=time.perf_counter() - started)


FIT_STEPS = (0.25, 4096.0)
"""The quantizer steps `fit_quant_step` searches between: below 0.25 grey levels the measurements' own rounding
noise dominates (the step only adds bits); above 4096 nearly every measurement quantizes to 0."""


def check_target_bpp(target_bpp: float) -> float:
    """``target_bpp`` if it is a rate `fit_quant_step` can look for: a positive number (NaN is not)."""
    if not target_bpp > 0:
        raise VcsError(f"target rate {target_bpp:g} bits per pixel is not a positive number")
    return target_bpp


def fit_quant_step(bpp_at: Callable[[float], float], target_bpp: float, tolerance: float = 0.01) -> tuple[float, int]:
    """The finest quantizer step whose rate ``bpp_at(step)`` is at most ``target_bpp``, to within ``tolerance``
    (relative, on the step), and how many times ``bpp_at`` ran. The rate falls as the step grows, by about one bit
    per measurement for each doubling, so the search interpolates in log(step) (regula falsi, Illinois variant:
    a few calls), never nearer an end than the tolerance; steps are kept to 4 significant digits."""
    check_target_bpp(target_bpp)
    fine, coarse = FIT_STEPS
    calls = 1
    excess_fine = bpp_at(fine) - target_bpp
    if excess_fine <= 0:
        return fine, calls  # every step fits: the finest searched
    calls += 1
    excess_coarse = bpp_at(coarse) - target_bpp
    if excess_coarse > 0:
        raise VcsError(
            f"--bpp {target_bpp:g} is below what this model reaches ({excess_coarse + target_bpp:.4g} bpp at "
            f"quantizer step {coarse:g}); a smaller ratio (--ratio 0.01) measures fewer values"
        )
    kept = None  # which end stayed put last time (Illinois: halve its weight if it stays again)
    while coarse / fine > 1 + tolerance:
        a, b = math.log(fine), math.log(coarse)
        guess = b - excess_coarse * (b - a) / (excess_coarse - excess_fine)  # where the line through both ends hits 0
        # A guess at an end moves only that end by a hair; step a tolerance in from it instead, which either
        # moves it usefully or ends the search there.
        middle = min(max(math.exp(guess), fine * (1 + tolerance)), coarse / (1 + tolerance))
        middle = float(f"{middle:.4g}")
        if not fine < middle < coarse:
            break  # 4 significant digits cannot split the interval further
        calls += 1
        excess = bpp_at(middle) - target_bpp
        if excess <= 0:
            coarse, excess_coarse = middle, excess
            if kept == "fine":
                excess_fine /= 2
            kept = "fine"
        else:
            fine, excess_fine = middle, excess
            if kept == "coarse":
                excess_coarse /= 2
            kept = "coarse"
    return coarse, calls


def _count_frames(
    path: Path, size: tuple[int, int] | None, fps: Fraction | None, start: int = 0, most: int | None = None
) -> int:
    """Formats that do not state their frame count are counted by decoding once (the encoder must know the
    last frame in advance: it is a keyframe); from frame ``start`` on, ``most`` of them at most (`--frames`: those
    after are neither needed nor decoded)."""
    with open_video(path, size=size, fps=fps, start=start) as reader:
        return sum(1 for _ in itertools.islice(reader, most))


# ---------------------------------------------------------------------------------------------- decoding


def _two_hashes(ours: str, theirs: str) -> tuple[str, str]:
    """Two different sha256 digests for a message: 16 hex digits each, or as many more as tell them apart."""
    n = 16
    while n < len(ours) and ours[:n] == theirs[:n]:
        n += 16
    return (ours if n >= len(ours) else ours[:n] + "…"), (theirs if n >= len(theirs) else theirs[:n] + "…")


def model_for(header: StreamHeader, decoder: str | None = None) -> ModelCard:
    """The model a file was made with, found by name and checked by hash; or ``decoder``, another model of the
    same weights file, checked by the same hash (``hitvcsnet-mhc`` runs the whole network ``-mhc-lin`` skips part of).
    """
    if decoder is not None:
        card = find_model(decoder, fits=lambda c: c.sha256 == header.weights_sha256, fitting="this file's weights")
        if card.sha256 != header.weights_sha256:
            ours, theirs = _two_hashes(card.sha256, header.weights_sha256)
            raise VcsError(
                f"model {card.name} has other weights than this file's {header.model_name} "
                f"(sha256 {ours} ≠ {theirs}): only a decoder of the same weights can decode it"
            )
        _check_layout(card, header)
        card.verify()
        return card
    # The header holds the full name: an exact match, from one read of the folder (no models at all is
    # `installed_models`' own error, not "this model is missing"; a skipped manifest may be this model's).
    card = next((c for c in installed_models() if c.name == header.model_name), None)
    if card is None:
        raise VcsError(
            f"this file needs model {header.model_name} (sha256 {header.weights_sha256[:16]}…), "
            f"which is not in the weights folder {weights_dir()}{skipped_note()}"
        )
    if card.sha256 != header.weights_sha256:
        theirs, ours = _two_hashes(header.weights_sha256, card.sha256)
        raise VcsError(
            f"this file was made with model {header.model_name} (sha256 {theirs}); "
            f"the weights folder has {card.name} (sha256 {ours})"
        )
    _check_layout(card, header)
    card.verify()
    return card


def _check_layout(card: ModelCard, header: StreamHeader) -> None:
    """Refuse a file whose blocks, GOPs or measurement counts are not the model's: a header given another model's
    name and hash, or another writer's GOP length, would otherwise fail deep in the network, and `vcs info` would
    call the file decodable."""
    config = card.model_config()  # with ModelConfig's defaults for what an older manifest leaves out
    ours = {
        "block": config.block,
        "gop": config.gop,
        "m_k": expected_m(config.alpha_k, config.block),
        "m_n": expected_m(config.alpha_n, config.block),
    }
    wrong = [field for field, value in ours.items() if getattr(header, field) != value]
    if wrong:
        theirs = ", ".join(f"{field} {getattr(header, field)}" for field in wrong)
        model = ", ".join(f"{field} {ours[field]}" for field in wrong)
        raise VcsError(f"this file's header has {theirs}, but its model {card.name} has {model}: it cannot decode it")


class GopDecoder:
    """Rebuilds frames from dequantized records with the network, a batch of GOPs at a time."""

    def __init__(self, model: HITVCSNet, header: StreamHeader, device: torch.device, precision: str = "fp32") -> None:
        check_precision(precision)
        import torch

        # channels_last: 3× faster on CPUs (measured, docs/performance.md) and the layout GPUs prefer.
        self.model = model.to(memory_format=torch.channels_last)
        self.header, self.device, self.precision = header, device, precision
        if header.block != model.config.block or header.gop != model.config.gop:
            raise VcsError(f"model {header.model_name} does not match the file's block/GOP size")
        # Each keyframe rebuilt once, on its own (so alike in every decode, whole or of a range, however batched),
        # and the one closing a chain kept for the next chain or the last frame; alternating grids refine keyframes
        # per chain, so not with them.
        self.shares_keyframes = model.shares_keyframes and not header.key_grid_shift
        self._closing: dict[tuple[int, int], torch.Tensor] = {}  # (record index, plane) → its rebuilt keyframe

    def _tensor(self, arrays: list[np.ndarray]) -> torch.Tensor:
        import torch

        stacked = np.stack([dequantize(a, self.header.quant_step) for a in arrays])
        return torch.from_numpy(stacked).to(self.device)

    def _before(self, record: GopRecord | None, plane: int) -> KeyMeasurements | None:
        """The keyframe of ``record`` (the one before a chain) as the network's refinement takes it."""
        if record is None or not self.header.key_grid_shift:
            return None
        from .models import KeyMeasurements

        between = [f.planes[plane] for f in record.frames[1:]]
        return KeyMeasurements(
            self._tensor([record.frames[0].planes[plane]]),
            self.header.key_shift(record.index),
            self._tensor(between).unsqueeze(0) if between else None,
        )

    def decode_chain(
        self, records: list[GopRecord], next_key: GopRecord, before: GopRecord | None = None
    ) -> list[Frame]:
        """Frames of ``records`` (consecutive GOPs with the same number of non-keyframes), closed by ``next_key``'s
        keyframe; ``before``: the intact record before them, if any (it refines the first keyframe when the
        stream alternates keyframe grids)."""
        import torch

        h = self.header
        k = len(records[0].frames) - 1
        key_records = [*records, next_key]
        shifts = [h.key_shift(r.index) for r in key_records]
        planes: list[list[np.ndarray]] = []  # per plane: frames in order
        closing: dict[int, torch.Tensor] = {}  # plane → next_key's keyframe, when shared
        for p in range(h.num_planes):
            keys = self._tensor([r.frames[0].planes[p] for r in key_records])
            with torch.no_grad(), torch.autocast(self.device.type, torch.bfloat16, enabled=self.precision == "bf16"):
                if k == 0:
                    key_rec = self.model.reconstruct_keyframes(keys[:-1], shifts[:-1], self._before(before, p))
                    out = [key_rec[i, 0] for i in range(len(records))]
                else:
                    non = self._tensor([f.planes[p] for r in records for f in r.frames[1:]])
                    non = non.view(1, len(records), k, *non.shape[1:])
                    rebuilt = None
                    if self.shares_keyframes:
                        alone = {r.index: self._keyframe(r, p) for r in key_records}  # next_key may be records[-1]
                        rebuilt = torch.cat([alone[r.index] for r in key_records])
                        closing[p] = alone[next_key.index]
                    rec = self.model.reconstruct(
                        keys.unsqueeze(0),
                        non,
                        self.model.default_positions(k),
                        shifts,
                        self._before(before, p),
                        keyframes=rebuilt,
                    )
                    out = []
                    for g in range(len(records)):
                        out.append(rec.key[0, g, 0])
                        out.extend(rec.non[0, g, i, 0] for i in range(k))
            planes.append([_to_uint8(t) for t in out])
        self._closing = {(next_key.index, p): key for p, key in closing.items()}
        return [self._frame([plane[i] for plane in planes]) for i in range(len(planes[0]))]

    def _keyframe(self, record: GopRecord, plane: int) -> torch.Tensor:
        """``record``'s keyframe rebuilt on its own, (1, 1, H, W): the one kept from the last chain if it is that."""
        kept = self._closing.get((record.index, plane))
        if kept is not None:
            return kept
        return self.model.reconstruct_keyframes(self._tensor([record.frames[0].planes[plane]]))

    def decode_last_key(self, record: GopRecord, before: GopRecord | None = None) -> Frame:
        """The final keyframe, a record of its own; ``before`` as in ``decode_chain``."""
        import torch

        planes = []
        shifts = [self.header.key_shift(record.index)]
        for p in range(self.header.num_planes):
            with torch.no_grad(), torch.autocast(self.device.type, torch.bfloat16, enabled=self.precision == "bf16"):
                if self.shares_keyframes:  # usually the keyframe that closed the last chain, rebuilt already
                    key = self._keyframe(record, p)
                else:
                    keys = self._tensor([record.frames[0].planes[p]])
                    key = self.model.reconstruct_keyframes(keys, shifts, self._before(before, p))
                planes.append(_to_uint8(key[0, 0]))
        return self._frame(planes)

    def grey_frame(self) -> Frame:
        """A mid-grey frame of the file's size: what stands in for lost frames with nothing before them."""
        y = np.full((self.header.height, self.header.width), NEUTRAL, np.uint8)
        return frame_from_gray(y)

    def _frame(self, planes: list[np.ndarray]) -> Frame:
        sizes = self.header.plane_sizes()
        cropped = [p[: s[0], : s[1]] for p, s in zip(planes, sizes, strict=True)]
        if self.header.chroma == "gray":
            ch, cw = (self.header.height + 1) // 2, (self.header.width + 1) // 2
            neutral = np.full((ch, cw), NEUTRAL, np.uint8)
            return Frame(cropped[0], neutral, neutral.copy())
        return Frame(*cropped)


def _to_uint8(t: torch.Tensor) -> np.ndarray:
    return (t.float().clamp(0, 1) * 255).round().byte().cpu().numpy()


PIXELS_PER_CALL = 2_000_000
"""Luma pixels the network rebuilds in one call when the batch is automatic: speed from batching without
letting activations (32 channels × several levels × every pixel) outgrow a modest machine's memory."""


def auto_batch_gops(header: StreamHeader) -> int:
    """GOPs per network call: as many as fit ``PIXELS_PER_CALL`` (at least 1, at most 8)."""
    hp, wp = header.padded_shapes()[0]
    return max(1, min(8, PIXELS_PER_CALL // (header.gop * hp * wp)))


def decode_records(
    reader: ContainerReader,
    model: HITVCSNet,
    device: torch.device,
    batch_gops: int = 0,
    precision: str = "fp32",
    start: int = 0,
    count: int | None = None,
    on_lost: Callable[[Concealed], None] | None = None,
) -> Iterator[Frame]:
    """Frames ``start`` … ``start + count − 1`` (all by default) in order, holding at most ``batch_gops`` + 1
    records in memory (0: ``auto_batch_gops``).

    Only the GOPs that hold those frames are rebuilt, each with the keyframe that closes it, and the records
    after the last of them are not read: a GOP's frames depend on its own measurements and its two keyframes
    alone, so they come out as in a whole decode (bit for bit when the GOPs are batched alike, e.g.
    ``batch_gops`` = 1; other batches can move a few pixels by a few grey levels through floating-point rounding).

    With ``on_lost`` the file is read with `ContainerReader.salvage` and damaged or missing GOP records are
    concealed instead of stopping the decode: the lost GOP's frames repeat the last frame rebuilt before them
    (mid-grey when there is none), and the GOP before a lost one, whose closing keyframe is gone, is rebuilt
    with its own opening keyframe at both ends. ``on_lost`` hears of each lost GOP, in order."""
    if batch_gops < 0:
        raise VcsError("--batch-gops must be 0 (auto) or more")
    header = reader.header
    end = check_frame_range(header, start, count)
    batch_gops = batch_gops or auto_batch_gops(header)
    decoder = GopDecoder(model, header, device, precision)
    last_rebuilt: tuple[int, Frame] | None = None  # the latest frame rebuilt, in range or not: what a lost GOP repeats

    def emit(frames: Iterable[Frame], first: int) -> Iterator[Frame]:
        nonlocal last_rebuilt
        for index, frame in enumerate(frames, first):
            last_rebuilt = index, frame
            if start <= index < end:
                yield frame

    # With alternating keyframe grids a keyframe is refined with the intact record before it (none after a lost
    # one), so every decode, whole or of a range, however batched, rebuilds it alike: ``previous`` is the record read
    # before the current one, ``chain_before`` the one before pending[0]. Without, nothing extra is held.
    alternating = bool(header.key_grid_shift)
    previous: GopRecord | None = None
    chain_before: GopRecord | None = None

    def rebuild(chain: list[GopRecord], closing: GopRecord) -> Iterator[Frame]:
        """The frames of the GOPs in ``chain``, the last closed by ``closing``'s keyframe."""
        return emit(decoder.decode_chain(chain, closing, chain_before), header.record_range(chain[0].index)[0])

    pending: list[GopRecord] = []
    skipped: GopRecord | None = None  # concealing: the last intact GOP before the range, not rebuilt (yet)
    skipped_before: GopRecord | None = None
    # The records before the range's first GOP are passed by their prefixes, but for the one before it with
    # alternating grids (its keyframe refines the range's first); concealing reads them all, to know what it repeats.
    first_gop = next(g for g in itertools.count(start // header.gop) if header.record_range(g)[1] > start)
    first_read = max(0, first_gop - (1 if alternating else 0))
    records = reader.salvage() if on_lost else reader.records(first_read)
    for record in records:
        first, position = header.record_range(record.index)
        if isinstance(record, LostGop) and record.count > 1:
            position = header.record_range(record.index + record.count - 1)[1]
        record_before, previous = previous, record if alternating and isinstance(record, GopRecord) else None
        if position <= start:  # wholly before the range
            if on_lost and isinstance(record, GopRecord):
                skipped, skipped_before = record, record_before
            continue
        if isinstance(record, LostGop):
            if pending:  # its closing keyframe is lost: close the chain on the last GOP's opening keyframe
                yield from rebuild(pending, pending[-1])
                pending = []
            if first >= end:
                return
            if last_rebuilt is None and skipped is not None:
                # The range starts in (or just after) lost GOPs: rebuild the intact GOP before them, as a whole
                # decode did, to repeat its last frame. Every record between it and this one is lost, so it too
                # is closed on its own opening keyframe.
                rebuilt = decoder.decode_chain([skipped], skipped, skipped_before)
                last_rebuilt = header.record_range(skipped.index)[1] - 1, rebuilt[-1]
            source, held = last_rebuilt if last_rebuilt else (None, decoder.grey_frame())
            if on_lost:  # the frames of the range it stands in for, not every frame the lost GOPs held
                shown = max(first, start), min(position, end)
                on_lost(Concealed(record.index, *shown, record.reason, source, record.count))
            yield from (held for _ in range(max(first, start), min(position, end)))
            continue
        if pending and (first >= end or len(pending) == batch_gops or len(record.frames) != len(pending[0].frames)):
            # ``record`` opens the next GOP, so its keyframe closes the chain held in ``pending``
            yield from rebuild(pending, record)
            pending = []
        if first >= end:
            return
        if not pending:
            chain_before = record_before
        pending.append(record)
    if not pending:  # the final keyframe's record was lost (and concealed)
        return
    # the last record is the final keyframe; any GOPs before it end on it
    last = pending.pop()
    if pending:  # flushed on every change of GOP length, so these all have the same length
        yield from rebuild(pending, last)
    last_before = pending[-1] if pending else chain_before
    yield from emit([decoder.decode_last_key(last, last_before)], header.record_range(last.index)[0])


@dataclass
class Concealed:
    """A GOP record lost in a damaged file, or a run of them, and the frames that stand in (`decode_records`)."""

    gop: int
    first: int  # the frames written in its place, first … end − 1 (within a decoded range, only those)
    end: int
    reason: str
    repeats: int | None  # the rebuilt frame that stands in for them; None: mid-grey (none was rebuilt before)
    gops: int = 1  # GOPs gop … gop + gops − 1 (a run lost with the record before it)

    def describe(self) -> str:
        one = self.end - self.first == 1
        frames = f"frame {self.first}" if one else f"frames {self.first}–{self.end - 1}"
        if self.repeats is None:
            return f"{self.reason}: {frames} {'is' if one else 'are'} mid-grey"
        return f"{self.reason}: {frames} {'repeats' if one else 'repeat'} frame {self.repeats}"


def check_frame_range(header: StreamHeader, start: int, count: int | None) -> int:
    """The end (exclusive) of frames ``start`` … ``start + count − 1`` of a file: a start must be in it, a count is a
    bound (as encode's and FFmpeg's -frames), so more than the file holds is all of them (`frames_past_end`)."""
    total = header.frame_count
    start = check_whole(start, "--start", 0)
    if count is not None:
        count = check_whole(count, "--frames", 1)
    if start >= total:  # check_whole refused a negative one
        raise VcsError(f"--start {start} is outside the file's {frames_phrase(total)} (0 … {total - 1})")
    return total if count is None else min(start + count, total)


def frames_past_end(asked: int | None, available: int, start: int, source: str, done: str) -> str | None:
    """The warning for a ``--frames`` beyond the end of ``source``, which was ``done`` (coded, decoded) as far as it
    goes, as FFmpeg's -frames is a bound; but a user who asked for more is told. None when it did not ask for more."""
    if not asked or asked <= available:
        return None
    return f"--frames {asked}: {source} has {frames_phrase(available)} from frame {start}; all {done}"


def _torch_threads() -> int:
    import torch  # loaded by then: the model ran

    return torch.get_num_threads()


def decode_file(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    device: str = "auto",
    batch_gops: int = 0,
    precision: str = "fp32",
    force: bool = False,
    progress: Progress | None = None,
    on_start: Callable[[int], None] | None = None,
    decoder: str | None = None,
    start: int = 0,
    count: int | None = None,
    conceal: bool = False,
) -> DecodeReport:
    """Decode a ``.vcs`` file into a video file (by extension: .y4m, .yuv, .mp4, …), with the model the file
    names or with ``decoder``, another model of the same weights (``model_for``): all its frames, or ``count``
    from ``start`` (``decode_records``). ``on_start`` receives the number of frames to come. ``conceal``: damaged or
    missing GOP records are concealed (``decode_records``) and listed in the report instead of stopping."""
    input, output = check_path(input, "the input"), check_path(output, "the output")
    batch_gops = check_whole(batch_gops, "--batch-gops", 0)
    refuse_input_as_output(output, input)  # --force included: the .vcs file would be lost
    started = time.perf_counter()
    with ContainerReader(input) as reader:
        header = reader.header
        end = check_frame_range(header, start, count)
        fps = Fraction(header.fps_num, header.fps_den)
        # The output is checked (and its temporary file made) before torch and the model are loaded, so that a
        # bad output path fails at once; leaving the block by an error deletes the temporary file.
        with open_writer(
            output,
            header.width,
            header.height,
            fps,
            force=force,
            first_number=start,
            frames=end - start,
            chroma_siting=header.chroma_siting,
        ) as writer:
            import_torch()  # a stop signal during torch's import is held until it is done
            card = model_for(header, decoder)
            dev = pick_device(device)
            model = card.load(dev)
            if on_start:
                on_start(end - start)
            written = 0
            concealed: list[Concealed] = []
            frames = decode_records(
                reader, model, dev, batch_gops, precision, start, count, concealed.append if conceal else None
            )
            for frame in frames:
                writer.write(frame)
                written += 1
                if progress:
                    progress(1)
            codec = writer.codec
        ignored = reader.tail_error
    warnings = [frames_past_end(count, header.frame_count - start, start, "the file", "decoded")]
    if writer.left_after is not None:  # never deleted (they are not ours), but said: the pattern reads on into them
        warnings.append(f"{writer.left_after} and any pictures after it are an earlier run's, left as they were")
    return DecodeReport(
        frames=written,
        seconds=time.perf_counter() - started,
        device=str(dev),
        precision=precision,
        codec=codec,
        threads=_torch_threads(),
        concealed=concealed,
        ignored=ignored,
        warnings=[w for w in warnings if w],
    )
