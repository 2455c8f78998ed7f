"""The test sequences of `vcs bench --sequences DIR`: which files in the folder are videos, their size and length,
and which of their frames the paper's protocol scores."""

from __future__ import annotations

import re
from collections.abc import Generator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from ..errors import VcsError
from ..io import DEFAULT_FPS, Frame, open_video
from ..metrics import check_ssim_size

VIDEO_EXTENSIONS = (".y4m", ".yuv", ".mp4", ".mkv", ".avi", ".webm", ".mov", ".m4v")


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
        raise info.no_frames(path)
    return Sequence(path.stem, path, info.width, info.height, info.fps, count)


def find_sequences(folder: Path) -> tuple[list[Sequence], list[str]]:
    """Readable sequences in ``folder`` (sorted by name) and a warning for each candidate that is not."""
    if not folder.exists():
        raise VcsError(f"sequence folder {folder} does not exist")
    if not folder.is_dir():
        raise VcsError(f"{folder} is not a folder (give the folder that holds the test sequences)")
    entries = sorted(folder.iterdir())
    candidates = [
        p
        for p in entries
        if not p.name.startswith(".")
        and ((p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS) or (p.is_dir() and _png_frames(p)))
    ]
    sequences, warnings = [], []
    for path in entries:  # a link to a file that is gone is no candidate, but is said
        if path.is_symlink() and not path.exists() and path.suffix.lower() in VIDEO_EXTENSIONS:
            warnings.append(f"skipped {path.name}: a link to a missing file")
    for path in candidates:
        try:
            sequence = _open_sequence(path)
            check_ssim_size(sequence.width, sequence.height)  # one too small is skipped, not the whole bench
            sequences.append(sequence)
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
