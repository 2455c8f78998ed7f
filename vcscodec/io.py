"""Video in and out with PyAV: Y4M, raw .yuv and anything FFmpeg decodes, as 8-bit YUV 4:2:0 numpy planes."""

from __future__ import annotations

import os
import re
import shutil
import stat
import sys
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import av
import numpy as np

from vcscodec.errors import OutputClosed, StartPastEnd, VcsError, check_path, check_size, check_whole, frames_phrase
from vcscodec.numbered import has_counter, is_pattern, numbered_files, picture_path, printf_name
from vcscodec.orientation import UPRIGHT, Orientation, frame_orientation, quarter_turns, shown, swaps_axes
from vcscodec.output import (
    AllOrNothing,
    check_output_folder,
    check_output_path,
    raise_pending_stop,
    refuse_special_file,
)

__all__ = [
    "Frame",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "WRITE_EXTENSIONS",
    "conversion_loss",
    "frame_from_gray",
    "open_video",
    "open_writer",
    "parse_fps",
    "parse_raw_name",
    "input_name",
    "spooled_input",
    "STDIO",
]

STDIO = "-"
"""The path that means standard input (`vcs encode - out.vcs`) or standard output (`vcs decode in.vcs -`)."""
_STDOUT_NAME = "standard output"  # how messages name it

# Extensions open_writer knows, with their muxers; the codec is picked by _choose_codec.
WRITE_EXTENSIONS = (".y4m", ".yuv", ".mp4", ".mkv", ".avi")
_MUXERS = {".y4m": "yuv4mpegpipe", ".yuv": "rawvideo", ".mp4": "mp4", ".mkv": "matroska", ".avi": "avi"}
# CRF 18 for x264 and qscale 2 for MPEG-4 Part 2: near-transparent, since decoded CS output is what is judged.
# x264's macroblock tree is off: with it, two encodes of the same frames differed from run to run (PyAV 18's
# libx264, one thread or several), so a decode's .mp4 would not be reproducible; without it, about +20 % bytes.
_X264_OPTIONS = {"crf": "18", "x264-params": "mbtree=0"}
_MPEG4_OPTIONS = {"flags": "+qscale", "global_quality": str(2 * 118)}  # 118 = FF_QP2LAMBDA
DEFAULT_FPS = Fraction(25)
"""Frame rate of numbered pictures, and of raw .yuv where the rate does not matter (scores), when none is given."""
_JPEG_RANGE = 2  # AVCOL_RANGE_JPEG: full-range samples
_MPEG_RANGE = 1  # AVCOL_RANGE_MPEG: limited range, Y in 16..235


@dataclass(eq=False)  # arrays have no single truth value; compare planes with numpy
class Frame:
    """One 8-bit YUV 4:2:0 picture: `y` (H, W), `u` and `v` (ceil(H/2), ceil(W/2)), all uint8."""

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray

    @property
    def width(self) -> int:
        return int(self.y.shape[1])

    @property
    def height(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True)
class VideoInfo:
    """What a reader knows about its source before decoding; `pix_fmt` and `codec` are the source's own."""

    width: int
    height: int
    fps: Fraction
    frame_count: int | None  # None when the container does not say
    pix_fmt: str
    codec: str
    trailing_bytes: int = 0  # of a partial last frame that is not read (a truncated Y4M file)
    chroma_siting: str | None = None  # where its 4:2:0 chroma sits (`container.CHROMA_SITINGS`); None: not said

    def no_frames(self, path: str | os.PathLike[str]) -> VcsError:
        """The error for a source without a whole frame: naming the partial one it ends in, if any."""
        partial = f" but a partial one ({self.trailing_bytes} bytes; truncated?)" if self.trailing_bytes else ""
        return VcsError(f"{path} has no frames{partial}")

    def truncation_warning(self, path: str | os.PathLike[str]) -> str | None:
        """What to tell a user whose file ends in a partial frame; None when it does not."""
        if not self.trailing_bytes:
            return None
        return f"{path} ends in a partial frame ({self.trailing_bytes} bytes; truncated?): it is left out"


def chroma_shape(width: int, height: int) -> tuple[int, int]:
    """(rows, cols) of a 4:2:0 chroma plane for a width×height picture."""
    return (height + 1) // 2, (width + 1) // 2


def _raw_frame_bytes(width: int, height: int) -> int:
    ch, cw = chroma_shape(width, height)
    return width * height + 2 * ch * cw


def frame_from_gray(y: np.ndarray) -> Frame:
    """A `Frame` with luma `y` and neutral chroma (U = V = 128); float input is rounded and clipped."""
    y = np.asarray(y)
    if y.ndim != 2:
        raise VcsError(f"a grey picture must be 2-D, got shape {y.shape}")
    if y.dtype != np.uint8:
        y = np.clip(np.round(y), 0, 255).astype(np.uint8)
    shape = chroma_shape(y.shape[1], y.shape[0])
    return Frame(y, np.full(shape, 128, np.uint8), np.full(shape, 128, np.uint8))


# ---------------------------------------------------------------------------------------------- names

_NAMED_SIZES = {
    "sqcif": (128, 96),
    "qcif": (176, 144),
    "cif": (352, 288),
    "4cif": (704, 576),
    "720p": (1280, 720),
    "1080p": (1920, 1080),
}
_SIZE_RE = re.compile(r"^(\d+)x(\d+)$", re.IGNORECASE)
_FPS_RE = re.compile(r"^(\d+(?:\.\d+)?)(fps|hz|p)?$", re.IGNORECASE)


_C_INT_MAX = 2**31 - 1  # FFmpeg's rationals and picture sizes are C ints

MAX_FPS_TERM = _C_INT_MAX
"""FFmpeg's rationals are pairs of C ints: a rate's numerator and denominator must fit one (the .vcs header's u32
fields would take twice as much, which no writer could then use)."""


def parse_fps(value: Fraction | int | float | str) -> Fraction:
    """A frame rate from 25, "30", "29.97" (→ 30000/1001; also 23.976, 59.94), "30000/1001", "30000:1001"."""
    if isinstance(value, (Fraction, int)):
        rate = Fraction(value)
    else:
        text = str(value).strip().replace(":", "/")
        try:
            rate = Fraction(text)
        except (ValueError, ZeroDivisionError):
            raise VcsError(f"bad frame rate {value!r}; give e.g. 25, 29.97 or 30000/1001") from None
        # A decimal close to N·1000/1001 (N ≥ 1) names an NTSC rate.
        ntsc = rate * Fraction(1001, 1000)
        if "." in text and rate.denominator != 1 and round(ntsc) >= 1 and abs(ntsc - round(ntsc)) < Fraction(1, 200):
            rate = Fraction(round(ntsc) * 1000, 1001)
    if rate <= 0:
        raise VcsError(f"frame rate must be positive, got {value}")
    if max(rate.numerator, rate.denominator) > MAX_FPS_TERM:
        raise VcsError(
            f"frame rate {rate} is beyond what FFmpeg carries (numerator and denominator at most {MAX_FPS_TERM})"
        )
    return rate


def parse_raw_name(path: str | os.PathLike[str]) -> tuple[tuple[int, int] | None, Fraction | None]:
    """((width, height), fps) read from a raw-video file name, each None when the name does not say.

    Understands "foreman_352x288_30.yuv", "x_1920x1080_29.97fps.yuv" (→ 30000/1001), "y_640x480_30000-1001.yuv",
    CompressAI's "a_352x288_30Hz_8bit_P420.yuv" and the names cif, qcif, 4cif, 720p, 1080p. A name that says its
    samples are not 8-bit 4:2:0 ("_10bit", "_P444", "yuv420p10le") is refused: raw bytes carry no format
    of their own, and read as 8-bit I420 they would be coded as noise.
    """
    tokens = re.split(r"[_\-\s]+", Path(path).stem)
    size: tuple[int, int] | None = None
    size_at = -1
    for i, tok in enumerate(tokens):
        m = _SIZE_RE.match(tok)
        if m:
            size, size_at = (int(m.group(1)), int(m.group(2))), i
            break
        if tok.lower() in _NAMED_SIZES:
            size, size_at = _NAMED_SIZES[tok.lower()], i
            break
    _refuse_raw_format(path, tokens, size_at)
    fps: Fraction | None = None
    if size is not None:
        # A rate with a unit wins; else the first bare number after the size that is not a chroma format (420).
        after = tokens[size_at + 1 :]
        candidates = [(i, m) for i, tok in enumerate(after) if not _CHROMA_RE.match(tok) and (m := _FPS_RE.match(tok))]
        with_unit = [(i, m) for i, m in candidates if m.group(2) and m.group(2).lower() != "p"]
        bare = [(i, m) for i, m in candidates if not m.group(2)]
        chosen = (with_unit or bare or [None])[0]
        if chosen is not None:
            i, m = chosen
            rate = Fraction(m.group(1))
            if not m.group(2) and after[i + 1 : i + 2] == ["1001"] and rate.denominator == 1 and rate > 1001:
                fps = parse_fps(f"{rate}/1001")  # 30000-1001: NTSC's rate, its fraction bar written as a dash
            else:
                fps = parse_fps(m.group(1)) if rate > 0 else None
    if size is not None and (size[0] < 1 or size[1] < 1):
        size = None
    return size, fps


# How sequence names state their samples: CompressAI's "P420" and "8bit" and FFmpeg's pixel formats ("yuv420p10le",
# "yuv444") anywhere; JVET's bare "444" and "10b" after the size only, since before it such a word may be a take or
# a camera ("room_444_…", "take_2b_…"). A bare chroma number is not taken for the rate either.
_CHROMA_RE = re.compile(r"^p?(400|411|420|422|444)$", re.IGNORECASE)
_NAMED_CHROMA_RE = re.compile(r"^p(400|411|420|422|444)$", re.IGNORECASE)
_DEPTH_RE = re.compile(r"^(\d+)bits?$", re.IGNORECASE)
_SHORT_DEPTH_RE = re.compile(r"^(\d+)b$", re.IGNORECASE)
_PIX_FMT_RE = re.compile(r"^yuv(400|411|420|422|444)p?(\d+)?(?:le|be)?$", re.IGNORECASE)


def _refuse_raw_format(path: str | os.PathLike[str], tokens: list[str], size_at: int) -> None:
    """The one-line error for a raw .yuv whose name says it is not 8-bit 4:2:0 (the only raw layout read);
    ``size_at``: the index of the size's token (-1: none)."""
    said = []
    for i, tok in enumerate(tokens):
        after_size = 0 <= size_at < i
        depth = _DEPTH_RE.match(tok) or (_SHORT_DEPTH_RE.match(tok) if after_size else None)
        chroma = (_CHROMA_RE if after_size else _NAMED_CHROMA_RE).match(tok)
        if depth and int(depth.group(1)) != 8:
            said.append(f"{depth.group(1)}-bit")
        elif (m := chroma) and m.group(1) != "420":
            said.append(f"{m.group(1)[0]}:{m.group(1)[1]}:{m.group(1)[2]}")
        elif (m := _PIX_FMT_RE.match(tok)) and (m.group(1) != "420" or m.group(2) not in (None, "8")):
            said.append(tok)
    if said:
        raise VcsError(
            f"{path}: its name says {' '.join(said)}, but raw .yuv input is read as 8-bit YUV 4:2:0 (I420); "
            "convert it to a .y4m first (e.g. ffmpeg -f rawvideo -pix_fmt … -s WxH -i IN OUT.y4m), which vcs reads "
            "at any depth and subsampling"
        )


# ---------------------------------------------------------------------------------------------- planes


def _plane_view(plane: av.video.plane.VideoPlane) -> np.ndarray:
    """A writable (height, width) uint8 view of an FFmpeg plane that skips the row padding."""
    buf = np.frombuffer(plane, np.uint8)
    need = (plane.height - 1) * plane.line_size + plane.width
    if plane.line_size < plane.width or buf.size < need:
        raise VcsError(f"unexpected plane layout from FFmpeg ({plane.width}x{plane.height}, {buf.size} bytes)")
    return np.lib.stride_tricks.as_strided(buf, shape=(plane.height, plane.width), strides=(plane.line_size, 1))


def _rounded_plane(plane: av.video.plane.VideoPlane) -> np.ndarray:
    """A 16-bit FFmpeg plane (little-endian) rounded to 8 bits: (v + 128) >> 8, so a 10-bit sample x becomes
    x / 4 rounded half up, as `conversion_loss` says."""
    buf = np.frombuffer(plane, "<u2")
    row = plane.line_size // 2
    if plane.line_size % 2 or row < plane.width or buf.size < (plane.height - 1) * row + plane.width:
        raise VcsError(f"unexpected plane layout from FFmpeg ({plane.width}x{plane.height}, {buf.size} samples)")
    wide = np.lib.stride_tricks.as_strided(buf, shape=(plane.height, plane.width), strides=(plane.line_size, 2))
    return np.minimum((wide.astype(np.uint32) + 128) >> 8, 255).astype(np.uint8)


def _to_frame(av_frame: av.VideoFrame, width: int, height: int) -> Frame:
    if av_frame.width != width or av_frame.height != height:
        # A mid-stream size change is scaled back to the size announced in `info`.
        av_frame = av_frame.reformat(width=width, height=height)
    name = av_frame.format.name
    # Deeper than 8 bits: swscale would dither on the way down to 8 (a quarter of a 10-bit picture's samples of
    # x·4 + 1 came out one level up), so the planes are brought to 16 bits (an exact shift), then rounded here.
    deep = max((c.bits for c in av_frame.format.components), default=8) > 8
    if name.startswith("gray"):
        # A grey picture is plain luma, whatever range it is flagged with (Y4M "mono", grey PNGs as video CS data
        # sets ship frames): converting it would squeeze it into 16..235.
        if deep:
            return frame_from_gray(_rounded_plane(av_frame.reformat(format="gray16le").planes[0]))
        if name != "gray":
            av_frame = av_frame.reformat(format="gray")
        return frame_from_gray(_plane_view(av_frame.planes[0]).copy())
    target = "yuv420p16le" if deep else "yuv420p"
    if av_frame.color_range == _JPEG_RANGE:
        # Full-range colour (RGB and JPEG-range YUV as PNG, MJPEG and some phones give) → limited-range 4:2:0:
        # swscale keeps the source's range unless told, which would shift every level.
        av_frame = av_frame.reformat(format=target, dst_color_range=_MPEG_RANGE)
    elif name != target:
        # Any other pixel format or bit depth → 4:2:0 (8-bit, or 16-bit to be rounded).
        av_frame = av_frame.reformat(format=target)
    if deep:
        return Frame(*(_rounded_plane(p) for p in av_frame.planes[:3]))
    y, u, v = (_plane_view(p).copy() for p in av_frame.planes[:3])
    return Frame(y, u, v)


def conversion_loss(pix_fmt: str, chroma: str) -> str | None:
    """What coding a source of ``pix_fmt`` as 8-bit ``chroma`` ("yuv420" or "gray") loses, in words; None when
    nothing a user would miss (8-bit 4:2:0 or grey sources, RGB pictures, unknown formats).

    A .vcs file holds 8-bit samples and 4:2:0 chroma only, so deeper or finer sources are rounded on the way in,
    as FFmpeg does when a codec lacks the source's format, and said so, as FFmpeg does too."""
    try:
        fmt = av.VideoFormat(pix_fmt, 64, 64)
    except (ValueError, av.FFmpegError):
        return None
    lost = []
    bits = max((c.bits for c in fmt.components), default=8)
    if bits > 8:
        lost.append(f"{bits}-bit samples rounded to 8 bits")
    chroma_planes = [c for c in fmt.components if not c.is_luma and not c.is_alpha]
    if chroma == "yuv420" and not fmt.is_rgb and any(c.width > 32 or c.height > 32 for c in chroma_planes):
        lost.append("chroma subsampled to 4:2:0")
    return f"the source is {pix_fmt}: {' and '.join(lost)}" if lost else None


# ---------------------------------------------------------------------------------------------- reading


def _y4m_frame_count(path: Path, width: int, height: int, pix_fmt: str) -> tuple[int, int] | None:
    """Frames in a Y4M file from its size, when every frame header is a bare "FRAME\\n", and the bytes of a partial
    frame after them (a truncated file: FFmpeg drops it without a word); None when the size does not tell."""
    try:
        with open(path, "rb") as fh:
            header = fh.readline(4096)
            fmt = av.VideoFormat(pix_fmt, width, height)
            planes: dict[int, int] = {}
            for c in fmt.components:
                planes.setdefault(c.plane, c.width * c.height * ((c.bits + 7) // 8))
            per_frame = sum(planes.values()) + len(b"FRAME\n")
            body = path.stat().st_size - len(header)
            count, trailing = divmod(body, per_frame)
            if trailing:  # a truncated frame only if its header sits where a bare-header file puts it
                fh.seek(len(header) + count * per_frame)
                if not b"FRAME\n".startswith(fh.read(6)):  # the cut may fall inside that header
                    return None
    except (OSError, ValueError, av.FFmpegError):
        return None
    return (count, trailing) if body >= 0 else None


# FFmpeg's av_image_check_size: (W + 128)·(H + 128) under INT_MAX / 8; beyond it the demuxer fails with an errno that
# names nothing about the header ("Device or resource busy").
_FFMPEG_MAX_AREA = (2**31 - 1) // 8
# Frame spacing beyond which a video's rate is variable: the longest interval over 1.5× the shortest and more than
# 2 ms apart (container timestamps are rounded: 1/1000 s in MKV, so a steady 30 fps reads as 33 and 34 ms).
_VARIABLE_RATE = 1.5
_RATE_JITTER = 0.002


# Rates that containers' rounded timestamps stand for: the NTSC family and whole numbers.
_NTSC_RATES = tuple(Fraction(k * 1000, 1001) for k in (24, 30, 48, 60, 120, 240))
_RATE_TOLERANCE = 1e-4  # relative; MKV's and FLV's millisecond rounding is under 2e-5 at 60 fps


def _standard_rate(rate: Fraction) -> Fraction:
    """A container's frame rate snapped to the standard one its rounded timestamps stand for (MKV's 59.94 reads
    as 19001/317, FLV's 29.97 as 989/33: a .vcs header and a written video would carry those); else as it is."""
    for standard in (*_NTSC_RATES, Fraction(round(rate))):
        if standard and abs(rate - standard) <= _RATE_TOLERANCE * standard:
            return standard
    return rate


# A Y4M header's 8-bit 4:2:0 C tags, with where they put chroma (FFmpeg's yuv4mpegdec reads them so; a bare C420 is
# JPEG's); other layouts are converted to 4:2:0 here, by swscale, so their chroma sits where it puts it.
_Y4M_SITINGS = {b"420jpeg": "center", b"420": "center", b"420mpeg2": "left", b"420paldv": "topleft"}


def _check_y4m_header(path: Path, fps: Fraction | None) -> tuple[Fraction | None, str | None]:
    """Check the size and rate fields of a Y4M file's header line, which FFmpeg reports badly or not at all: a bad W
    or H as an unrelated errno, a bad F as 25 frames/s without a word. Returns the rate to use instead of F (``fps``)
    when F is bad and ``fps`` is given (raises when it is not; else None), and the chroma siting its C tag names, which
    PyAV does not show (None when it names none). Files that are not Y4M pass untouched: (None, None)."""
    try:
        with open(path, "rb") as fh:
            line = fh.readline(4096)
    except OSError:
        return None, None  # FFmpeg reports it
    if not line.startswith(b"YUV4MPEG2 "):
        return None, None
    if not line.endswith(b"\n"):  # FFmpeg: "Invalid argument"
        raise VcsError(f"{path}: bad Y4M header: no end of line in its first {len(line)} bytes")
    fields = {t[:1]: t[1:] for t in line.split() if t[:1] in (b"W", b"H", b"F", b"C")}
    siting = _Y4M_SITINGS.get(fields.get(b"C", b""))
    size = []
    for key, what in ((b"W", "width"), (b"H", "height")):
        if key not in fields:
            raise VcsError(f"{path}: bad Y4M header: no {key.decode()} (the picture {what})")
        value = fields[key].decode("ascii", "replace")
        if not (value.isdigit() and int(value) > 0):
            raise VcsError(f"{path}: bad Y4M header: {key.decode()}{value} is not a picture {what}")
        size.append(int(value))
    width, height = size
    if (width + 128) * (height + 128) >= _FFMPEG_MAX_AREA:
        raise VcsError(f"{path}: bad Y4M header: a {width}x{height} picture is larger than FFmpeg reads")
    if b"F" not in fields:
        return None, siting
    num, _, den = fields[b"F"].decode("ascii", "replace").partition(":")
    if num.isdigit() and den.isdigit() and int(num) > 0 and int(den) > 0:
        return None, siting
    if fps is None:
        raise VcsError(
            f"{path}: bad Y4M header: F{fields[b'F'].decode('ascii', 'replace')} is not a frame rate (--fps gives one)"
        )
    return fps, siting


class VideoReader:
    """Decoded frames of one video as 8-bit YUV 4:2:0 `Frame`s; `info` describes the source.

    Iterate once (frames stream from the file); use as a context manager or call `close()`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        size: tuple[int, int] | None = None,
        fps: Fraction | int | float | str | None = None,
        default_fps: Fraction | None = None,
        start: int = 0,
    ) -> None:
        self.path = check_path(path, "a video")
        size = check_size(size)
        self.start = check_whole(start, "--start", 0)  # the source frame read first
        exists = self.path.exists()
        sequence = None if exists else image_sequence(self.path)
        if not exists and sequence is None:
            if is_pattern(self.path.name):
                raise VcsError(f"{self.path}: no such file and no numbered picture matches it")
            if has_counter(self.path.name):  # a counter, but a lone % or a second counter beside it
                raise VcsError(f"{self.path}: no such file (numbered pictures: one %d or %0Nd, and %% for a %)")
            raise VcsError(f"{self.path}: no such file")
        if self.path.is_dir():
            raise VcsError(f"{self.path} is a folder, not a video file")
        if self.path.is_file() and self.path.stat().st_size == 0:
            raise VcsError(f"{self.path} is empty")  # FFmpeg would only say "Invalid argument"
        fps = parse_fps(fps) if fps is not None else None
        raw = self.path.suffix.lower() == ".yuv" and sequence is None
        frame_count: int | None = None
        trailing_bytes = 0
        siting = None
        self._left_out = 0  # numbered pictures after a gap in the numbers, which are not read
        if sequence is not None:
            first, frame_count = sequence
            self._left_out = sum(1 for number in numbered_files(self.path) if number > first + frame_count)
            self._gap = picture_path(self.path, first + frame_count)
            self._check_start(frame_count)
            first, frame_count = first + start, frame_count - start  # as ffmpeg's -start_number: FFmpeg skips
            fps = fps or DEFAULT_FPS
            options = {"start_number": str(first), "framerate": str(fps)}
            opener = {"format": "image2", "options": options}
        elif raw:
            name_size, name_fps = parse_raw_name(self.path)
            size = size or name_size
            fps = fps or name_fps or default_fps
            if size is None or fps is None:
                # An encode writes both into its header, so neither is guessed there; name only what is missing.
                missing = " and ".join(w for w, v in (("--size WxH", size), ("--fps", fps)) if v is None)
                raise VcsError(
                    f"{self.path}: {missing} {'are' if ' and ' in missing else 'is'} needed for raw .yuv "
                    "(or a file name that says so, e.g. clip_352x288_25.yuv)"
                )
            w, h = int(size[0]), int(size[1])
            if w < 1 or h < 1:
                raise VcsError(f"{self.path}: bad frame size {w}x{h}")
            nbytes, frame_bytes = self.path.stat().st_size, _raw_frame_bytes(w, h)
            if nbytes % frame_bytes:
                given = "--size" if size != name_size else "its name"  # a size in the name is read in training too
                raise VcsError(
                    f"{self.path}: size {nbytes} bytes is not a multiple of the {w}x{h} YUV 4:2:0 frame "
                    f"size ({frame_bytes} bytes); check the size {given} gives"
                )
            frame_count = nbytes // frame_bytes
            options = {"video_size": f"{w}x{h}", "pixel_format": "yuv420p", "framerate": str(fps)}
            opener = {"format": "rawvideo", "options": options}
        else:
            opener = {}
            header_fps, siting = _check_y4m_header(self.path, fps or default_fps)
            fps = header_fps or fps
        try:
            self._container = av.open(str(self.path), mode="r", **opener)
        except OSError as e:  # FFmpeg's own permission and I/O errors are OSErrors too
            raise VcsError(f"{self.path}: cannot read ({_why(e)})") from e
        except av.FFmpegError as e:
            if _is_vcs_file(self.path):  # `vcs encode x.vcs …` for `vcs decode x.vcs …`
                raise VcsError(f"{self.path}: a .vcs file, not a video: vcs decode rebuilds the video from it") from e
            raise VcsError(f"{self.path}: not a video FFmpeg can decode ({_why(e)}){self._raw_hint(size)}") from e
        if not self._container.streams.video:
            self._container.close()
            raise VcsError(f"{self.path} has no video stream")
        self._stream = self._container.streams.video[0]
        cc = self._stream.codec_context
        width, height = int(cc.width), int(cc.height)
        if width < 1 or height < 1:
            self._container.close()
            why = "its video stream has no picture size"
            raise VcsError(f"{self.path}: not a video FFmpeg can decode ({why}){self._raw_hint(size)}")
        pix_fmt = cc.pix_fmt or (self._stream.format.name if self._stream.format else "unknown")
        if not raw:
            # An explicit fps overrides the container's; FFmpeg leaves some rates unset.
            rate = self._stream.average_rate or self._stream.guessed_rate or self._stream.base_rate
            if rate and self._container.format.name != "yuv4mpegpipe":  # Y4M states its rate exactly
                rate = _standard_rate(Fraction(rate))
            fps = fps or (Fraction(rate) if rate else DEFAULT_FPS)
            if self._stream.frames:
                frame_count = int(self._stream.frames)
            elif self._container.format.name == "yuv4mpegpipe":
                counted = _y4m_frame_count(self.path, width, height, pix_fmt)
                if counted is not None:
                    frame_count, trailing_bytes = counted
        assert fps is not None
        self._decoded = self._container.decode(self._stream)
        self._first: av.VideoFrame | None = None
        self._closed = False
        self._errors = 0  # FFmpeg's error messages while decoding: a damaged file it decoded anyway
        self._intervals: list[float] = []  # [shortest, longest] time between frames read, in seconds
        self.pixel_formats: list[str] = []  # of the frames read, each once: pictures of a sequence may differ
        self._interlaced = 0  # frames read that FFmpeg flags as interlaced (two fields)
        self._first_error: tuple[int, str] = (0, "")  # (frame, message) of the first
        if sequence is None and start and frame_count is not None:
            self._check_start(frame_count)
            frame_count -= start
        # Photos ask to be turned or mirrored by their EXIF, one by one; videos by a display matrix (phone videos
        # set one), which comes with the decoded frames: PyAV shows none on the stream. As ffmpeg's command line
        # does by default, the pictures are read as shown, the first one's orientation setting the size.
        format_name = self._container.format.name
        photos = format_name == "image2" or format_name.endswith("_pipe")  # FFmpeg's picture demuxers
        self._picture: Callable[[int], Path] | None = None  # the photo file of frame n
        self._numbered = sequence is not None
        if sequence is not None:
            first_number = sequence[0] + start  # frame n read is picture first_number + n
            self._picture = lambda n: picture_path(self.path, first_number + n)
        elif photos:
            self._picture = lambda _: self.path
        self.rotation = 0  # degrees counter-clockwise (PyAV's reading of the first matrix); 0 without one
        self._orientation: Orientation = UPRIGHT  # the first picture's
        self._odd_turn = False  # whether the first asks for a turn vcs does not make (not a quarter turn)
        try:
            if sequence is None:  # FFmpeg skipped a sequence's first pictures; a video's are decoded and dropped
                for index in range(start):
                    if self._next_decoded(index) is None:
                        self._check_start(index)
            if not raw:
                self._first = self._next_decoded(start)
                if self._first is None and start:
                    self._check_start(start)
        except VcsError:
            self.close()
            raise
        if self._first is not None:
            width, height = self._first.width, self._first.height  # the stream's may be another frame's
            self.rotation = int(getattr(self._first, "rotation", 0) or 0)  # PyAV ≥ 14 reads it
            picture = self._picture(0) if self._picture else None
            asked = frame_orientation(self._first, picture)
            self._orientation, self._odd_turn = asked or UPRIGHT, asked is None
        if swaps_axes(self._orientation):
            width, height = height, width
        self._shown = (width, height)  # every frame's size as read: the first's, as shown
        self.info = VideoInfo(width, height, fps, frame_count, pix_fmt, cc.name, trailing_bytes, siting)
        # (index, width, height) of the frames read so far at another size than the first's, which were scaled to it
        self.rescaled: list[tuple[int, int, int]] = []
        self.audio_streams = len(self._container.streams.audio)

    def _check_start(self, frame_count: int) -> None:
        """Refuse a ``start`` at or past the end of a source of ``frame_count`` frames."""
        if self.start >= frame_count:
            raise StartPastEnd(
                f"--start {self.start} is outside {self.path}, which has {frames_phrase(frame_count)}", frame_count
            )

    def _next_decoded(self, index: int) -> av.VideoFrame | None:
        """The next decoded picture, None at the end; ``index`` (its number) names where a damaged file fails, and
        where FFmpeg's decoder reported an error it concealed (kept for `damage_warning`)."""
        errors: list[str] = []
        try:
            with _ffmpeg_errors(errors):
                return next(self._decoded, None)
        except av.FFmpegError as e:
            raise self._damaged(index, e) from e
        finally:
            if errors and not self._errors:
                self._first_error = (index, errors[0])
            self._errors += len(errors)

    def _raw_hint(self, size: tuple[int, int] | None) -> str:
        """For a file that FFmpeg cannot read although a size was given (`--size`, or a decode's own for its
        --reference): raw I420 is read from a .yuv name only (`clip.raw` would otherwise be refused with no word on
        why the size did not apply)."""
        return "; raw I420 is read from a file named .yuv only" if size is not None else ""

    def _damaged(self, index: int, e: av.FFmpegError) -> VcsError:
        """The one-line error for a file that fails to decode after ``index`` frames."""
        return VcsError(f"{self.path}: damaged video, decoding failed after {frames_phrase(index)} ({_why(e)})")

    def rescale_warning(self) -> str | None:
        """What to tell a user whose frames changed size: those read so far were scaled to the first's size (as
        FFmpeg does); None when none did."""
        if not self.rescaled:
            return None
        index, width, height = self.rescaled[0]
        return (
            f"{self.path}: {frames_phrase(len(self.rescaled))} of another size than the first (frame {index} is "
            f"{width}x{height}) scaled to {self._shown[0]}x{self._shown[1]}"
        )

    def audio_warning(self) -> str | None:
        """What to tell a user whose input has sound: vcs codes the pictures only; None when it has none."""
        if not self.audio_streams:
            return None
        streams = "an audio stream" if self.audio_streams == 1 else f"{self.audio_streams} audio streams"
        return f"{self.path} has {streams}: vcs codes video only, so the sound is not in the .vcs file"

    def gap_warning(self) -> str | None:
        """What to tell a user whose numbered pictures have a gap: those after it are not read (as FFmpeg reads
        them); None otherwise."""
        if not self._left_out:
            return None
        more = "1 more picture" if self._left_out == 1 else f"{self._left_out} more pictures"
        verb = "is" if self._left_out == 1 else "are"
        return f"{self.path}: {self._gap.name} is missing, so {more} after it {verb} left out (numbers must follow on)"

    def damage_warning(self) -> str | None:
        """What to tell a user whose file FFmpeg decoded with errors (a cut or corrupt stream: it conceals what it
        cannot decode, as ffmpeg's command line does, and says so on its log, which PyAV silences); None otherwise."""
        if not self._errors:
            return None
        index, message = self._first_error
        picture_of = self._picture if self._numbered else None
        # A picture is decoded as it is read; a video's decoder holds frames back (B-frames, threads), so an error
        # shows while a later frame is read than the one it damaged.
        where = f"frame {index} ({picture_of(index - self.start).name})" if picture_of else f"frame {index} or before"
        errors = "1 decoding error" if self._errors == 1 else f"{self._errors} decoding errors"
        return f"{self.path} is damaged: FFmpeg reported {errors}, the first at {where}: {message}; coded as decoded"

    def frame_rate_warning(self) -> str | None:
        """What to tell a user whose video's frames are not evenly spaced in time (a variable frame rate, a GIF's
        own delays): a .vcs file has one rate, so its timing changes; None for a constant rate."""
        if not self._intervals:
            return None
        shortest, longest = self._intervals
        if longest <= shortest * _VARIABLE_RATE or longest - shortest < _RATE_JITTER:
            return None
        spacing = f"{shortest * 1000:.3g} to {longest * 1000:.3g} ms apart"
        return f"{self.path} has a variable frame rate (frames {spacing}): coded at a constant {self.info.fps} fps"

    def interlace_warning(self) -> str | None:
        """What to tell a user whose frames are interlaced: they are coded whole, two fields of different instants
        together, so motion combs the blocks the decoder predicts; None for progressive frames."""
        if not self._interlaced:
            return None
        return (
            f"{self.path} is interlaced ({frames_phrase(self._interlaced)}): coded as whole frames, both fields "
            "together; deinterlace it first for moving scenes (e.g. ffmpeg -vf bwdif)"
        )

    def refuse_other_size(self, size: tuple[int, int] | None, why: str) -> None:
        """Refuse a ``--size`` that is not this video's own: it is for raw .yuv (read at it, so never refused
        here), and a video that states its size is not scaled to another (``why`` says by whom)."""
        info = self.info
        if size is not None and size != (info.width, info.height):
            raise VcsError(
                f"--size {size[0]}x{size[1]} is for raw .yuv input; {self.path} is {info.width}x{info.height} ({why})"
            )

    def reading_warnings(self, chroma: str, name: str | None = None) -> list[str]:
        """Everything to tell a user about what was read as 8-bit ``chroma`` ("yuv420" or "gray"): a partial last
        frame, the `notices`, and what the conversion lost (of the first picture's format, or a later one's:
        numbered pictures may mix them), each naming the file as ``name`` (default: its path)."""
        name = str(self.path) if name is None else name
        losses = (conversion_loss(f, chroma) for f in dict.fromkeys([self.info.pix_fmt, *self.pixel_formats]))
        loss = next((said for said in losses if said), None)
        said = [self.info.truncation_warning(name), *self.notices(), f"{name}: {loss}" if loss else None]
        return [w for w in said if w]

    def notices(self) -> list[str]:
        """Every warning about what was read: damage, an uneven rate, interlacing, scaled frames, a turn not made,
        sound or pictures left out."""
        said = (
            self.damage_warning(),
            self.frame_rate_warning(),
            self.interlace_warning(),
            self.rescale_warning(),
            self.rotation_warning(),
            self.audio_warning(),
            self.gap_warning(),
        )
        return [w for w in said if w]

    def rotation_warning(self) -> str | None:
        """What to tell a user whose video asks to be shown turned by other than quarter turns (quarter turns and
        mirrors are applied); None otherwise."""
        if not self._odd_turn:
            return None
        odd_angle = quarter_turns(self.rotation) is None
        asked = f"rotated by {self.rotation}°" if odd_angle else "transformed"  # else a shear or a stretch
        return (
            f"{self.path}: the file asks players to show it {asked} (a display matrix); vcs turns and mirrors "
            "pictures by quarter turns only and codes these as stored"
        )

    def __iter__(self) -> Iterator[Frame]:
        if self._closed:
            raise VcsError(f"{self.path}: reader is closed")
        n = 0  # frames read; the source's frame self.start + n is next
        av_frame = self._first if self._first is not None else self._next_decoded(self.start)
        self._first = None  # iterate once: the frames stream from the file
        shown_at = None  # the previous frame's time
        while av_frame is not None:
            if av_frame.format.name not in self.pixel_formats:
                self.pixel_formats.append(av_frame.format.name)
            self._interlaced += bool(getattr(av_frame, "interlaced_frame", False))
            if av_frame.time is not None:
                if shown_at is not None and av_frame.time > shown_at:
                    gap = av_frame.time - shown_at
                    low, high = self._intervals or (gap, gap)
                    self._intervals = [min(low, gap), max(high, gap)]
                shown_at = av_frame.time
            orientation = self._orientation
            if n and self._picture is not None:  # photos, each with its own EXIF
                orientation = frame_orientation(av_frame, self._picture(n)) or UPRIGHT
            size = self._shown[::-1] if swaps_axes(orientation) else self._shown  # what it must be stored at
            if (av_frame.width, av_frame.height) != size:
                stored = (av_frame.width, av_frame.height)
                shown_size = stored[::-1] if swaps_axes(orientation) else stored
                self.rescaled.append((self.start + n, *shown_size))
            try:
                frame = _to_frame(av_frame, *size)
            except av.FFmpegError as e:
                raise self._damaged(self.start + n, e) from e
            yield Frame(*(shown(p, orientation) for p in (frame.y, frame.u, frame.v)))
            n += 1
            av_frame = self._next_decoded(self.start + n)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def image_sequence(path: Path) -> tuple[int, int] | None:
    """(first number, count) of the numbered pictures a printf-style name like ``frames/f_%04d.png`` stands for, as
    FFmpeg's image2 demuxer reads them: from the lowest number present, while the numbers follow each other. None
    when the name is no pattern (`vcscodec.numbered`) or no file matches it."""
    numbers = numbered_files(path)
    if not numbers:
        return None
    first = count = min(numbers)
    while count in numbers:
        count += 1
    return first, count - first


def open_video(
    path: str | os.PathLike[str],
    size: tuple[int, int] | None = None,
    fps: Fraction | int | float | str | None = None,
    default_fps: Fraction | None = None,
    start: int = 0,
) -> VideoReader:
    """Open a video for reading. `size` is (width, height); `size` and `fps` are needed for raw .yuv
    unless its name carries them (see `parse_raw_name`) or, for the rate, `default_fps` is given (readers whose
    result does not depend on it); for other inputs `fps` overrides the container's rate and `size` is ignored.
    A name with ``%d`` or ``%0Nd`` reads numbered pictures (`image_sequence`) at `fps` (default 25).

    `start`: read from that frame on, as ffmpeg's ``-start_number`` for pictures (FFmpeg skips the others) or by
    decoding and dropping the frames before it; `info` then describes the frames from there (their size, as the
    first of them is shown, and their count), and a `start` past the end is a `VcsError`."""
    return VideoReader(path, size=size, fps=fps, default_fps=default_fps, start=start)


# One capture at a time: PyAV's log level, its repeat filter and its process-wide capture are global state, so two
# readers decoding at once in two threads would each take the other's messages and could leave the level changed.
_FFMPEG_LOG = threading.Lock()


@contextmanager
def _ffmpeg_errors(errors: list[str]) -> Iterator[None]:
    """The error messages FFmpeg logs meanwhile (from any thread: decoders run their own), one line each, added to
    ``errors`` (when the block ends without an exception: an exception says more). PyAV
    silences FFmpeg's log by default; it is opened at the error level for this call only and restored after, with
    PyAV's filter of repeated lines off (it compares with the last line of any earlier call: a file decoded twice
    would report its errors once)."""
    with _FFMPEG_LOG:
        previous, repeats = av.logging.get_level(), av.logging.get_skip_repeated()
        av.logging.set_level(av.logging.ERROR)
        av.logging.set_skip_repeated(False)
        try:
            with av.logging.Capture(local=False) as logs:
                yield
                errors.extend(" ".join(text.split()) for level, _, text in logs if level <= av.logging.ERROR)
        finally:
            av.logging.set_skip_repeated(repeats)
            av.logging.set_level(previous)


def _why(e: BaseException) -> str:
    """FFmpeg's reason without its errno prefix and file name, for one-line messages."""
    if isinstance(e, av.FFmpegError) and e.strerror:
        return str(e.strerror)
    if isinstance(e, OSError) and e.strerror:
        return str(e.strerror)
    return str(e).splitlines()[0] if str(e) else type(e).__name__


# ---------------------------------------------------------------------------------------------- writing


def _choose_codec(ext: str, width: int, height: int) -> tuple[str, dict[str, str]]:
    if ext in (".y4m", ".yuv"):
        return "rawvideo", {}
    # libx264 refuses odd sizes in 4:2:0; MPEG-4 Part 2 takes them.
    if ext in (".mp4", ".mkv") and "libx264" in av.codecs_available and width % 2 == 0 and height % 2 == 0:
        return "libx264", dict(_X264_OPTIONS)
    return "mpeg4", dict(_MPEG4_OPTIONS)


def _discard(container: av.container.OutputContainer | None, temp: Path | None) -> None:
    """Close a half-written container without caring about errors and delete its file (if it has one)."""
    if container is not None:
        try:
            container.close()
        except Exception:  # noqa: BLE001 - already failing or aborting; the file goes away anyway
            pass
    try:
        if temp is not None:
            temp.unlink(missing_ok=True)
    except OSError:
        pass


def _is_vcs_file(path: Path) -> bool:
    """Whether a file begins with the .vcs magic (docs/format.md §2.1)."""
    from .container import MAGIC

    try:
        with open(path, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def _renamed(error: VcsError, temporary: Path, name: str) -> VcsError:
    """The error with the spooled temporary file named as what the user gave ("standard input"), its class kept
    (an `OutputClosed` from an inner spooler must still exit as one)."""
    error.args = (str(error).replace(str(temporary), name),)
    return error


def input_name(source: Path) -> str:
    """How messages name an input: "standard input" for ``-``, else the path as given."""
    return "standard input" if str(source) == STDIO else str(source)


def _is_pipe(source: Path) -> bool:
    """Whether ``source`` is a named pipe (a FIFO, or bash's ``<(…)``, a /dev/fd path to one): it can be read once."""
    try:
        return stat.S_ISFIFO(source.stat().st_mode)
    except (OSError, ValueError):
        return False  # missing or unnamable: the reader's own checks say so


@contextmanager
def spooled_input(source: Path, raw: bool = False, vcs: bool = False) -> Iterator[Path]:
    """``source`` as a file that can be read more than once: standard input (``-``) or a named pipe is copied into
    a temporary file first, deleted afterwards, since the encoder reads a source twice (its header, then its
    frames; a count it does not state, three times) and must know the frame count before it writes; any other path
    is yielded as it is. ``raw``: the bytes are raw I420 (`--size` was given), named .yuv so that `open_video` reads
    them as such (a pipe keeps its own name when it ends in .yuv: it may give the rate); otherwise FFmpeg tells the
    format from the content. ``vcs``: a .vcs file is expected (`vcs decode -`, `vcs info -`), which messages say.
    Errors inside name the source as the user gave it, not the temporary file."""
    if str(source) != STDIO:
        if not _is_pipe(source):
            yield source
            return
        # raw: named .yuv as standard input is, unless its own name says so (and may give its size and rate)
        name = source.name if not raw or source.suffix.lower() == ".yuv" else f"{source.name}.yuv"
        with source.open("rb") as pipe, _spooled(pipe, name, str(source), vcs) as path:
            yield path
        return
    pipe_one = (
        "pipe a .vcs file into it (e.g. vcs encode clip.y4m - | vcs …)"
        if vcs
        else "pipe a video into it (e.g. ffmpeg … -f yuv4mpegpipe - | vcs …)"
    )
    if sys.stdin is None:  # Python's stand-in when the process was started with standard input closed (<&-)
        raise VcsError(f"standard input is closed: {pipe_one}")
    if sys.stdin.isatty():
        raise VcsError(f"standard input is a terminal: {pipe_one}")
    with _spooled(sys.stdin.buffer, "stdin.yuv" if raw else "stdin", input_name(source), vcs) as path:
        yield path


@contextmanager
def _spooled(stream: BinaryIO, name: str, shown: str, vcs: bool = False) -> Iterator[Path]:
    """All of ``stream`` in a temporary file called ``name``, deleted afterwards; ``shown`` is how messages name
    the stream. ``vcs``: its opening is checked first, so that what is no .vcs file is refused before it is kept
    (an endless stream would fill the disk)."""
    with tempfile.TemporaryDirectory(prefix="vcs-spool-") as folder:
        path = Path(folder) / name
        opening = b""
        if vcs:
            from vcscodec.container import PREAMBLE_SIZE, check_opening

            opening = stream.read(PREAMBLE_SIZE)
            if opening:  # empty: said below, as for any input
                try:
                    check_opening(opening)
                except VcsError as e:
                    raise VcsError(f"{shown}: {e}") from None
        try:
            with path.open("wb") as f:
                f.write(opening)
                shutil.copyfileobj(stream, f, 1 << 20)
        except OSError as e:
            raise VcsError(f"cannot keep {shown} in {folder}: {_why(e)}") from e
        if path.stat().st_size == 0:
            raise VcsError(f"{shown} is empty")
        try:
            yield path
        except VcsError as e:
            raise _renamed(e, path, shown) from None


@contextmanager
def spooled_stdout(suffix: str) -> Iterator[Path]:
    """A temporary file for the block to write, copied to standard output once the block has ended without an
    error: a .vcs header holds the frame count and the rate search of `--bpp` rewrites the file, so nothing reaches
    the pipe until the file is whole, and a failure sends nothing. A terminal is refused (binary data)."""
    if sys.stdout is None or sys.stdout.closed:
        raise VcsError("standard output is closed: redirect it to a file or a pipe")
    if sys.stdout.isatty():
        raise VcsError("standard output is a terminal: redirect it to a file or a pipe (… - > clip.vcs, … - | …)")
    with tempfile.TemporaryDirectory(prefix="vcs-stdout-") as folder:
        path = Path(folder) / f"stdout{suffix}"
        try:
            yield path
        except VcsError as e:
            raise _renamed(e, path, _STDOUT_NAME) from None
        size, sent = path.stat().st_size, 0
        # os.write on the descriptor, every count checked: a buffered write to a pipe whose reader leaves mid-file
        # can return a short count without raising, and the rest of the file would be lost in silence.
        try:
            sys.stdout.flush()
            with path.open("rb") as f:
                while chunk := f.read(1 << 20):
                    view = memoryview(chunk)
                    while view:
                        written = os.write(sys.stdout.fileno(), view)
                        view, sent = view[written:], sent + written
        except BrokenPipeError:
            raise OutputClosed(
                f"standard output closed by its reader after {sent:,} of the file's {size:,} bytes"
            ) from None
        except OSError as e:
            raise VcsError(f"{_STDOUT_NAME}: writing the file failed after {sent:,} bytes ({_why(e)})") from None


def _writable_size(path: Path, width: float, height: float) -> tuple[int, int]:
    """``width``, ``height`` as ints, if a writer can take frames of that size: FFmpeg refuses a frame whose
    padded area, (w + 128)·(h + 128), reaches INT_MAX / 8 (`av_image_check_size`: about 16 000 × 16 000). The
    .vcs format allows 65 535 × 65 535; better said before the decode than at its first frame."""
    if int(width) != width or int(height) != height or width < 1 or height < 1:
        raise VcsError(f"{path}: bad frame size {width}x{height}")
    if (int(width) + 128) * (int(height) + 128) >= _C_INT_MAX // 8:
        raise VcsError(f"{path}: frames of {int(width)}x{int(height)} are larger than FFmpeg's writers take")
    return int(width), int(height)


def _to_av_frame(frame: Frame) -> av.VideoFrame:
    """A yuv420p FFmpeg frame of a `Frame` (float planes rounded and clipped)."""
    av_frame = av.VideoFrame(frame.width, frame.height, "yuv420p")
    for plane, data in zip(av_frame.planes[:3], (frame.y, frame.u, frame.v), strict=True):
        _plane_view(plane)[...] = data if data.dtype == np.uint8 else np.clip(np.round(data), 0, 255)
    return av_frame


class _Output(AllOrNothing):
    """What the frame writers share besides the contract (`output.AllOrNothing`): refusing frames that do not
    fit, and aborting by their finalizer. Subclasses set `_name`, `width`, `height`, `_done`, `frames_written` and
    `_finalizer` (which deletes what was written) and define `close()`."""

    _name: str
    width: int
    height: int
    _done: bool
    _finalizer: weakref.finalize
    frames_written: int
    left_after: Path | None = None  # after close(): a picture an earlier, longer run left right after ours

    def _closing(self) -> bool:
        """Whether `close()` has work to do: not when already closed; an output that got no frame is dropped."""
        if self._done:
            return False
        if self.frames_written == 0:
            self.abort()
            raise VcsError(f"{self._name}: no frames to write")
        return True

    def _accept(self, frame: Frame) -> None:
        """Refuse a frame after closing, or one whose planes do not fit the writer's size (dropping the output); stop
        at it when a signal asked to and its exception was lost (`output.request_stop`)."""
        raise_pending_stop()
        if self._done:
            raise VcsError(f"{self._name}: writer is already closed")
        if not isinstance(frame, Frame):  # an array: `samples.as_frame` makes one from grey or RGB
            self.abort()
            raise VcsError(f"{self._name}: a frame must be a vcscodec.io.Frame, not {type(frame).__name__}")
        ch = chroma_shape(self.width, self.height)
        shapes = (np.shape(frame.y), np.shape(frame.u), np.shape(frame.v))
        if shapes != ((self.height, self.width), ch, ch):
            self.abort()
            raise VcsError(
                f"{self._name}: frame planes {shapes} do not fit the writer's {self.width}x{self.height} 4:2:0"
            )

    def abort(self) -> None:
        """Drop everything written so far: the temporary output is deleted and the target left untouched."""
        if not self._done:
            self._done = True
            self._finalizer()

    def _frame_failed(self, error: BaseException) -> VcsError:
        """Drop the output after FFmpeg or the file system failed on the next frame; the error to raise."""
        self.abort()
        if isinstance(error, BrokenPipeError) and self._name == _STDOUT_NAME:
            return OutputClosed(f"standard output closed by its reader after {frames_phrase(self.frames_written)}")
        return VcsError(f"{self._name}: writing frame {self.frames_written} failed ({_why(error)})")


class VideoWriter(_Output):
    """Writes `Frame`s to a temporary file beside `path`; `close()` renames it onto `path`, `abort()`
    (or an exception leaving the `with` block) deletes it. `codec` is the encoder chosen.

    `path` "-" streams Y4M to standard output instead, frame by frame (for a player or another tool on a pipe):
    there is no file to withhold, so an error stops the stream where it is."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        width: int,
        height: int,
        fps: Fraction | int | str,
        force: bool = False,
        chroma_siting: str | None = None,
    ) -> None:
        self.path = Path(path)
        to_stdout = str(path) == STDIO
        self._name = _STDOUT_NAME if to_stdout else str(self.path)  # in messages
        ext = ".y4m" if to_stdout else self.path.suffix.lower()
        if ext not in _MUXERS:
            raise VcsError(
                f"{self.path}: cannot write {ext or 'files without an extension'}; "
                f"supported: {', '.join(WRITE_EXTENSIONS)}, numbered .png pictures (f_%04d.png), one .png picture, "
                "or - for Y4M on standard output"
            )
        self.width, self.height = _writable_size(self.path, width, height)
        self.fps = parse_fps(fps)
        self.force = force
        if to_stdout and sys.stdout.isatty():
            raise VcsError("standard output is a terminal: pipe it into a player or a file (… - | ffplay -)")
        self.codec, options = _choose_codec(ext, self.width, self.height)
        if chroma_siting:  # FFmpeg's name: Y4M's C420 tag, H.264's chroma_loc, a Matroska or MP4 field
            options = {**options, "chroma_sample_location": chroma_siting}
        self.temp: Path | None = None if to_stdout else self._make_temp(ext)
        self.frames_written = 0
        self._done = False
        container = None
        target = sys.stdout.buffer if self.temp is None else str(self.temp)
        try:  # from here on, any failure drops the temporary file it has claimed
            container = av.open(target, mode="w", format=_MUXERS[ext])
            self._stream = container.add_stream(self.codec, rate=self.fps, options=options)
            self._stream.width, self._stream.height = self.width, self.height
            self._stream.pix_fmt = "yuv420p"
            self._stream.codec_context.time_base = 1 / self.fps
        except (av.FFmpegError, OSError, ValueError, OverflowError) as e:
            _discard(container, self.temp)
            raise VcsError(f"cannot write {self._name}: {_why(e)}") from e
        except BaseException:
            _discard(container, self.temp)
            raise
        self._container = container
        # Also on garbage collection or interpreter exit: never leave the temporary file behind.
        self._finalizer = weakref.finalize(self, _discard, container, self.temp)

    def _make_temp(self, ext: str) -> Path:
        """Check the output's folder and claim the temporary file the output is written under."""
        check_output_path(self.path, self.force)
        folder = self.path.parent
        # Keep the extension last so anything that guesses the format from the name still works.
        temp = folder / f"{self.path.name}.tmp-{os.getpid()}{ext}"
        try:
            # Create it now: some muxers open their file only at the first packet, too late to report.
            temp.open("wb").close()
        except OSError as e:
            raise VcsError(f"cannot write in output folder {folder}: {_why(e)}") from e
        return temp

    def write(self, frame: Frame) -> None:
        """Encode one frame (shapes must match the writer's size)."""
        self._accept(frame)
        av_frame = _to_av_frame(frame)
        av_frame.pts = self.frames_written
        av_frame.time_base = 1 / self.fps
        try:
            for packet in self._stream.encode(av_frame):
                self._container.mux(packet)
        except (av.FFmpegError, OSError) as e:
            raise self._frame_failed(e) from e
        self.frames_written += 1

    def close(self) -> None:
        """Finish the file and move it onto the target; a writer that got no frame writes nothing."""
        if not self._closing():
            return
        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            if self.temp is None:
                sys.stdout.buffer.flush()
            else:
                if self.path.exists() and not self.force:
                    raise VcsError(f"{self.path} appeared while writing; not overwritten (use --force)")
                os.replace(self.temp, self.path)
        except (av.FFmpegError, OSError) as e:
            if isinstance(e, BrokenPipeError):
                raise self._frame_failed(e) from e
            self.abort()
            raise VcsError(f"{self._name}: finishing the file failed ({_why(e)})") from e
        except VcsError:
            self.abort()
            raise
        self._done = True
        self._finalizer.detach()


class PictureWriter(_Output):
    """Writes each frame as a numbered PNG, named by a printf-style `path` (``frames/f_%04d.png``) from
    `first_number` on, with the same contract as `VideoWriter`: the pictures go to a temporary folder beside
    them and are moved into place by `close()`; `abort()` (or an exception in the `with` block) deletes them.
    A `path` without a counter (``still.png``) takes one frame, as FFmpeg's ``-frames:v 1 still.png``; `frames`,
    the number to come when known, is checked against that at once, before anything is decoded.

    A frame whose chroma is neutral (U = V = 128, as every frame of a grey .vcs file) is written as a grey PNG of
    its luma, bit-exact; a colour frame as 8-bit RGB (BT.601 limited range, as FFmpeg converts by default)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        width: int,
        height: int,
        force: bool = False,
        first_number: int = 0,
        frames: int | None = None,
    ) -> None:
        self.path = Path(path)
        self._name = str(self.path)
        self._single = not has_counter(self.path.name)
        if not self._single and not is_pattern(self.path.name):
            raise VcsError(
                f"{self.path}: numbered pictures need one %d or %0Nd in the name, e.g. f_%04d.png (%% for a %)"
            )
        if self._single and frames is not None and frames > 1:
            raise self._one_picture(frames)
        self.width, self.height = _writable_size(self.path, width, height)
        self.force, self.first_number = force, first_number
        self.codec = "png"
        self.frames_written = 0
        self._done = False
        folder = self.path.parent
        check_output_folder(folder)
        first = folder / self._picture_name(0)
        refuse_special_file(first)
        if first.exists() and not force:  # the usual clash, found before any frame is decoded
            raise VcsError(f"{first} already exists (use --force to overwrite)")
        try:
            self._temp = Path(tempfile.mkdtemp(prefix=f".{self.path.stem.replace('%', '')}.tmp-", dir=folder))
        except OSError as e:
            raise VcsError(f"cannot write in output folder {folder}: {_why(e)}") from e
        self._finalizer = weakref.finalize(self, shutil.rmtree, self._temp, True)
        self._encoders: dict[str, av.CodecContext] = {}

    def _picture_name(self, index: int) -> str:
        if self._single:
            return self.path.name
        return printf_name(self.path.name) % (self.first_number + index)

    def _one_picture(self, frames: int | None) -> VcsError:
        count = f"{frames} frames" if frames is not None else "more than one frame"
        return VcsError(
            f"{self.path} holds one picture, not {count}: name numbered pictures (e.g. f_%04d.png) or write "
            "one frame (--frames 1)"
        )

    def _png(self, picture: av.VideoFrame) -> bytes:
        encoder = self._encoders.get(picture.format.name)
        if encoder is None:
            encoder = av.CodecContext.create("png", "w")
            encoder.width, encoder.height, encoder.pix_fmt = self.width, self.height, picture.format.name
            encoder.time_base = Fraction(1, 25)
            self._encoders[picture.format.name] = encoder
        return b"".join(bytes(packet) for packet in encoder.encode(picture))

    def write(self, frame: Frame) -> None:
        """Write one frame as the next numbered picture (shapes must match the writer's size)."""
        self._accept(frame)
        if self._single and self.frames_written:
            self.abort()
            raise self._one_picture(None)
        name = self._picture_name(self.frames_written)
        if (self.path.parent / name).exists() and not self.force:
            self.abort()
            raise VcsError(f"{self.path.parent / name} already exists (use --force to overwrite)")
        if np.all(frame.u == 128) and np.all(frame.v == 128):
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame.y), format="gray")
        else:
            picture = _to_av_frame(frame).reformat(format="rgb24")
        try:
            (self._temp / name).write_bytes(self._png(picture))
        except (av.FFmpegError, OSError) as e:
            raise self._frame_failed(e) from e
        self.frames_written += 1

    def close(self) -> None:
        """Move every picture into place; a writer that got no frame writes nothing."""
        if not self._closing():
            return
        names = [self._picture_name(i) for i in range(self.frames_written)]
        clash = next((n for n in names if (self.path.parent / n).exists()), None) if not self.force else None
        if clash:
            self.abort()
            raise VcsError(f"{self.path.parent / clash} appeared while writing; not overwritten (use --force)")
        try:
            for name in names:
                refuse_special_file(self.path.parent / name)
        except VcsError:
            self.abort()
            raise
        try:
            for name in names:
                os.replace(self._temp / name, self.path.parent / name)
        except OSError as e:
            self.abort()
            raise VcsError(f"{self._name}: moving the pictures into place failed ({_why(e)})") from e
        self._done = True
        self._finalizer()  # the temporary folder, empty now
        after = self.path.parent / self._picture_name(self.frames_written)
        if not self._single and after.exists():  # an earlier, longer run's: a reader of the pattern would go on
            self.left_after = after


def open_writer(
    path: str | os.PathLike[str],
    width: int,
    height: int,
    fps: Fraction | int | str,
    force: bool = False,
    first_number: int = 0,
    frames: int | None = None,
    chroma_siting: str | None = None,
) -> VideoWriter | PictureWriter:
    """Open `path` for writing by extension: .y4m and .yuv (lossless, bit-exact), .mp4/.mkv (H.264 with
    libx264 when present and the size is even, else MPEG-4 Part 2), .avi (MPEG-4 Part 2); a .png name with
    ``%d`` or ``%0Nd`` writes numbered pictures from `first_number` on, one without a single picture
    (`PictureWriter`; `frames`, the number to come when known, is checked against it at once). A video says where
    its chroma sits when ``chroma_siting`` names it (`container.CHROMA_SITINGS`), as far as its format can."""
    if str(path) != STDIO and (str(path).endswith(("/", os.sep)) or Path(path).is_dir()):
        raise VcsError(f"{path} is a folder: name a file in it (clip.y4m) or numbered pictures (f_%04d.png)")
    if Path(path).suffix.lower() == ".png":
        return PictureWriter(path, width, height, force=force, first_number=first_number, frames=frames)
    return VideoWriter(path, width, height, fps, force=force, chroma_siting=chroma_siting)
