"""Quality of one video against another, frame by frame (`vcs compare`, `vcs decode --reference`, `vcs demo`).

Scored as the paper scores (`metrics`): per frame, PSNR of each plane after rounding to 8 bits, and SSIM of Y;
a video's score is the mean of its frames' scores, not the PSNR of the pooled error (which ffmpeg's psnr
filter reports, and which a few bad frames pull down less).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from fractions import Fraction
from itertools import zip_longest

import numpy as np

from .errors import VcsError, check_path, check_whole, frames_phrase
from .io import DEFAULT_FPS, Frame, VideoReader, open_video
from .metrics import check_ssim_size, psnr, ssim


@dataclass(frozen=True)
class FrameQuality:
    """One frame's scores: PSNR (dB) of Y, U, V and of U and V together (their pooled error), SSIM of Y."""

    psnr_y: float
    psnr_u: float
    psnr_v: float
    psnr_uv: float
    ssim_y: float


def score_frame(reference: Frame, test: Frame) -> FrameQuality:
    """Scores of ``test`` against ``reference`` (same size)."""
    if (reference.width, reference.height) != (test.width, test.height):
        raise VcsError(
            f"cannot compare a {test.width}x{test.height} frame with a {reference.width}x{reference.height} one"
        )
    return FrameQuality(
        psnr_y=psnr(reference.y, test.y),
        psnr_u=psnr(reference.u, test.u),
        psnr_v=psnr(reference.v, test.v),
        psnr_uv=psnr(np.stack([reference.u, reference.v]), np.stack([test.u, test.v])),
        ssim_y=ssim(reference.y, test.y),
    )


@dataclass(frozen=True)
class QualityReport:
    """Per-frame scores of a test video against its reference, and their means."""

    reference: str
    test: str
    width: int
    height: int
    frames: list[FrameQuality]
    reference_start: int = 0  # the reference frame the first test frame was scored against (compare --start)
    warnings: list[str] = field(default_factory=list)  # what reading either video said (`reading_warnings`)

    def mean(self, field: str) -> float:
        """Mean over frames of one ``FrameQuality`` field; for PSNR, inf as soon as one frame is identical (its own
        PSNR is inf): the paper's mean of per-frame values, which never meets such a frame in a CS decode."""
        return float(np.mean(self._values(field)))

    def _values(self, field: str) -> list[float]:
        """Every frame's ``field``, a name checked against `FrameQuality`'s."""
        names = [f.name for f in fields(FrameQuality)]
        if field not in names:
            raise VcsError(f"no score {field!r}: the scores are {', '.join(names)}")
        return [getattr(f, field) for f in self.frames]

    def identical(self, field: str) -> tuple[int, float | None]:
        """How many frames score inf on a PSNR ``field`` (identical pictures), and the mean over the others (None
        when there are none): what a mean of inf hides when only some frames are identical."""
        values = self._values(field)
        finite = [v for v in values if v != float("inf")]
        return len(values) - len(finite), float(np.mean(finite)) if finite else None

    def means(self) -> dict[str, float]:
        return {f.name: self.mean(f.name) for f in fields(FrameQuality)}

    def as_dict(self) -> dict[str, object]:
        """The report as plain data, as `vcs compare --json` writes it; a PSNR of identical pictures is Python's
        inf here, which strict JSON has not: `bench.write_json` writes it as null (``json.dumps`` would write
        Infinity, which most JSON readers refuse)."""
        return {
            "reference": self.reference,
            "test": self.test,
            "width": self.width,
            "height": self.height,
            "frame_count": len(self.frames),
            "reference_start": self.reference_start,
            "mean": self.means(),
            "warnings": self.warnings,
            # each frame with the reference frame it was scored against, so a part's scores say where they are
            "frames": [{"reference_frame": self.reference_start + i, **asdict(f)} for i, f in enumerate(self.frames)],
        }


def score_frames(
    reference: Iterable[Frame], test: Iterable[Frame], limit: int | None = None, reference_start: int | None = None
) -> list[FrameQuality]:
    """Scores of each pair of frames, in order. Both videos must have the same number of frames, or at least
    ``limit`` when it is given (then only the first ``limit`` are scored). ``reference_start`` given (0 too): the
    reference is read from that frame on, and the test video is a part of it, so the reference may go on after it."""
    test_is_part = reference_start is not None
    scores: list[FrameQuality] = []
    for ref, tst in zip_longest(reference, test):
        if tst is None and ref is not None and test_is_part and scores and limit is None:
            break
        if ref is None or tst is None:
            if not scores:  # nothing pairs up: a count would only suggest --frames 0
                if ref is None:
                    raise VcsError("the reference has no frames to compare from the start asked for (--start)")
                raise VcsError("the test video has no frames to compare")
            shorter, longer = ("reference", "test video") if ref is None else ("test video", "reference")
            if ref is None and reference_start:  # say where it was read from: "ends after 14" of 17 puzzles
                shorter = f"reference (read from its frame {reference_start})"
            if limit is not None:
                raise VcsError(f"the {shorter} has only {frames_phrase(len(scores))}, fewer than the {limit} asked for")
            raise VcsError(
                f"the {shorter} ends after {frames_phrase(len(scores))} but the {longer} goes on "
                f"(--frames {len(scores)} compares the first {len(scores)})"
            )
        scores.append(score_frame(ref, tst))
        if len(scores) == limit:
            break
    if limit is not None and len(scores) < limit:
        raise VcsError(f"both videos have only {frames_phrase(len(scores))}, fewer than the {limit} asked for")
    if not scores:
        raise VcsError("no frames to compare")
    return scores


def refuse_rescaled(reader: VideoReader) -> None:
    """The error for a video whose frames read so far changed size: a frame scaled to the first one's size is not
    what was made, so it cannot be scored."""
    if reader.rescaled:
        index, width, height = reader.rescaled[0]
        raise VcsError(
            f"{reader.path}: frame {index} is {width}x{height}, not {reader.info.width}x{reader.info.height} "
            "like the first: frames that change size cannot be scored"
        )


def score_videos(
    reference: str | os.PathLike[str],
    test: str | os.PathLike[str],
    size: tuple[int, int] | None = None,
    fps: Fraction | None = None,
    frames: int | None = None,
    reference_start: int | None = None,
) -> QualityReport:
    """Read both videos (any format ``io.open_video`` reads; ``size``/``fps`` for raw .yuv) and score them.

    ``frames``: compare only the first N; otherwise both must have the same number of frames, except with a
    ``reference_start`` (0 too): the test video begins at that frame of the reference (a partial decode) and every
    frame of it is scored, however long the reference goes on."""
    reference, test = check_path(reference, "the reference"), check_path(test, "the test video")
    if frames is not None:
        frames = check_whole(frames, "--frames", 1)
    if reference_start is not None:
        reference_start = check_whole(reference_start, "--start", 0)
    # Scores do not depend on the frame rate, so a raw .yuv needs none.
    with (
        open_video(reference, size, fps, default_fps=DEFAULT_FPS, start=reference_start or 0) as ref_reader,
        open_video(test, size, fps, default_fps=DEFAULT_FPS) as test_reader,
    ):
        a, b = ref_reader.info, test_reader.info
        for reader in (ref_reader, test_reader):
            reader.refuse_other_size(size, "scores are not taken on scaled pictures")
        if (a.width, a.height) != (b.width, b.height):
            raise VcsError(f"{test} is {b.width}x{b.height} but {reference} is {a.width}x{a.height}")
        try:
            check_ssim_size(a.width, a.height)  # before reading both videos through
        except VcsError as e:
            raise VcsError(f"{reference} and {test} cannot be scored: {e}") from None
        readers = (ref_reader, test_reader)
        try:
            scores = score_frames(ref_reader, test_reader, frames, reference_start)
        except VcsError as e:  # what reading said may be why (a gap in numbered pictures ends them early)
            said = [w for r in readers for w in r.notices()]
            raise VcsError("; ".join([str(e), *said])) from None
        for reader in readers:
            refuse_rescaled(reader)
        # Both are scored in colour: a subsampled chroma counts (a grey source's loss is its depth alone).
        warnings = [w for r in readers for w in r.reading_warnings("yuv420")]
    return QualityReport(str(reference), str(test), a.width, a.height, scores, reference_start or 0, warnings)
