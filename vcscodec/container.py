"""The ``.vcs`` bitstream: a checked header, one CRC-protected record per GOP, and an end record.

The byte-level specification is docs/format.md; this module is its reference implementation. Layout:

    magic(8) version(u16) header_length(u32) header_body header_crc(u32)
    GOP record 0 ... GOP record n-1   end record

Each record is ``type(u8) index(u32) payload_length(u32) prefix_crc(u32) payload payload_crc(u32)``.
All integers are little-endian; floats are IEEE 754 binary64 little-endian. A GOP record's payload is a
frame table followed by one xz stream holding every plane's quantized measurements, predicted
(temporal and/or spatial differences), zig-zagged and split into byte planes.
"""

from __future__ import annotations

import lzma
import math
import numbers
import os
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Literal, get_args

import numpy as np

from vcscodec.errors import VcsError, frames_phrase
from vcscodec.output import AllOrNothing, check_output_path, raise_pending_stop
from vcscodec.quant import MAX_STEP, Q_MAX

FORMAT_VERSION = 4
"""The newest version this module reads. A writer uses the oldest version that can hold its stream: version 1 when
every keyframe is measured on the same grid (``key_grid_shift`` 0) and the stream starts at its source's first
frame, version 2 for a shifted grid, version 3 for a stream cut from later in its source (``source_start`` > 0),
version 4 for a source that says where its chroma samples sit (``chroma_siting``; docs/format.md)."""

# PNG-style: 0x89 catches 7-bit transports, CR LF and the lone LF catch line-ending conversion in either
# direction, 0x1A stops `type` on DOS/Windows from dumping binary to the console.
MAGIC = b"\x89VCS\r\n\x1a\n"

CHROMA_CODES = {"gray": 0, "yuv420": 1}
CHROMA_NAMES = {code: name for name, code in CHROMA_CODES.items()}
# Where a 4:2:0 source's chroma samples sit relative to luma, by FFmpeg's chroma_sample_location names; coded in
# version 4 as 1 + the name's position, H.273's ChromaSampleLocType + 1 (0, unspecified, is an older version).
CHROMA_SITINGS = ("left", "center", "topleft", "top", "bottomleft", "bottom")
# What --chroma takes: a coded mode, or auto (gray when every frame has U = V = 128; vcscodec.codec.auto_chroma).
ChromaMode = Literal["auto", "gray", "yuv420"]
CHROMA_MODES: tuple[str, ...] = get_args(ChromaMode)


def check_chroma_mode(chroma: object) -> None:
    """Refuse a ``--chroma`` other than auto, gray or yuv420 (from Python; the command line refuses it first)."""
    if chroma not in CHROMA_MODES:
        raise VcsError(f"--chroma must be one of {', '.join(CHROMA_MODES)}, not {chroma!r}")


# Frozen in every format version, so any reader can check the header CRC before judging the version.
_PREAMBLE = struct.Struct("<8sHI")  # magic, format_version, header_length
MAX_HEADER_LENGTH = 1 << 20

# Version 1 header body: the fixed fields, then the model name (its length is the last fixed field).
_HEADER_FIXED = struct.Struct("<IIIIIHHddIIdB64sH")
MAX_NAME_BYTES = 255
MAX_SIZE = 65535
MAX_BLOCK = 256
MAX_GOP = 65535
MAX_FRAMES = 2**31 - 1

# Records.
_PREFIX = struct.Struct("<BII")  # type, index, payload_length (followed by its own CRC32)
_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")
_U8 = struct.Struct("<B")
_FRAME = struct.Struct("<IB")  # frame index, key flag
_PLANE = struct.Struct("<BBIHH")  # predictor, byte width, M, hb, wb
TYPE_GOP = 0x47  # 'G'
TYPE_END = 0x45  # 'E'
_RECORD_TYPE = re.compile(b"[GE]")  # the first byte of a record prefix, for resynchronising
PRED_SPATIAL = 1
PRED_TEMPORAL = 2
XZ_PRESET = 6  # 9|extreme saved 0.1-0.5 % at 2-3x the time; 1 cost 4-9 % (docs/format.md §6).

_HEX64 = re.compile(r"[0-9a-f]{64}")


def _crc(*parts: bytes) -> int:
    """CRC-32 as zlib computes it (ISO-HDLC: poly 0x04C11DB7 reflected, init and xorout 0xFFFFFFFF)."""
    crc = 0
    for part in parts:
        crc = zlib.crc32(part, crc)
    return crc


def expected_m(alpha: float, block: int) -> int:
    """Measurement count for a ratio: round half to even of ``alpha * block**2`` in float64, one multiplication by
    the exact integer B² (docs/format.md §2.2): ``(alpha * B) * B`` rounds twice and differs when B is no power of
    two (α 0.235, B 10: 23.499999999999996, not 23.5)."""
    return int(round(float(alpha) * (block * block)))


# --------------------------------------------------------------------------------------------- header


def _field_error(name: str, value: object, rule: str) -> VcsError:
    return VcsError(f"header field {name} is {value!r}, {rule}")


def _check_int(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _field_error(name, value, "must be an integer")
    value = int(value)
    if not lo <= value <= hi:
        raise _field_error(name, value, f"must be in {lo}..{hi}")
    return value


def _check_alpha(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _field_error(name, value, "must be a number")
    value = float(value)
    if not (math.isfinite(value) and 0.0 < value <= 1.0):
        raise _field_error(name, value, "must be in (0, 1]")
    return value


@dataclass(frozen=True)
class StreamHeader:
    """Everything a decoder needs before the first record. Every field is checked on construction."""

    width: int
    height: int
    fps_num: int
    fps_den: int
    frame_count: int
    gop: int
    block: int
    alpha_k: float
    alpha_n: float
    m_k: int
    m_n: int
    quant_step: float
    chroma: str
    model_name: str
    weights_sha256: str
    key_grid_shift: int = 0  # keyframes of odd GOPs are measured on the block grid shifted by this many pixels
    source_start: int = 0  # the source frame that is frame 0 here (`vcs encode --start`)
    chroma_siting: str | None = None  # where the source's chroma samples sit (CHROMA_SITINGS); None: it did not say

    def __post_init__(self) -> None:
        def put(name: str, value: object) -> None:
            object.__setattr__(self, name, value)  # frozen: normalise numpy scalars to Python types

        put("width", _check_int("width", self.width, 1, MAX_SIZE))
        put("height", _check_int("height", self.height, 1, MAX_SIZE))
        put("fps_num", _check_int("fps_num", self.fps_num, 1, 2**32 - 1))
        put("fps_den", _check_int("fps_den", self.fps_den, 1, 2**32 - 1))
        put("frame_count", _check_int("frame_count", self.frame_count, 1, MAX_FRAMES))
        put("gop", _check_int("gop", self.gop, 1, MAX_GOP))
        put("block", _check_int("block", self.block, 1, MAX_BLOCK))
        put("alpha_k", _check_alpha("alpha_k", self.alpha_k))
        put("alpha_n", _check_alpha("alpha_n", self.alpha_n))
        for m_name, a_name in (("m_k", "alpha_k"), ("m_n", "alpha_n")):
            value = _check_int(m_name, getattr(self, m_name), 0, 2**32 - 1)
            want = expected_m(getattr(self, a_name), self.block)
            if want < 1:
                raise _field_error(a_name, getattr(self, a_name), f"gives {m_name} = 0 for block {self.block}")
            if value != want:
                raise _field_error(m_name, value, f"must equal round({a_name}·block²) = {want}")
            put(m_name, value)
        step = self.quant_step
        if isinstance(step, bool) or not isinstance(step, numbers.Real):
            raise _field_error("quant_step", step, "must be a number")
        step = float(step)
        if not (math.isfinite(step) and 0.0 < step <= MAX_STEP):
            raise _field_error("quant_step", step, f"must be in (0, {MAX_STEP:g}]")
        put("quant_step", step)
        if not isinstance(self.chroma, str) or self.chroma not in CHROMA_CODES:
            raise _field_error("chroma", self.chroma, "must be 'gray' or 'yuv420'")
        name = self.model_name
        if not isinstance(name, str) or not name:
            raise _field_error("model_name", name, "must be a non-empty string")
        if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
            raise _field_error("model_name", name, f"must be at most {MAX_NAME_BYTES} UTF-8 bytes")
        if any(ord(c) < 0x20 or ord(c) == 0x7F or 0xD800 <= ord(c) <= 0xDFFF for c in name):
            raise _field_error("model_name", name, "must not contain U+0000–U+001F, U+007F or surrogates")
        sha = self.weights_sha256
        if not isinstance(sha, str) or not _HEX64.fullmatch(sha):
            raise _field_error("weights_sha256", sha, "must be 64 lowercase hex digits")
        put("key_grid_shift", _check_int("key_grid_shift", self.key_grid_shift, 0, self.block - 1))
        put("source_start", _check_int("source_start", self.source_start, 0, MAX_FRAMES))
        if self.chroma_siting is not None and self.chroma_siting not in CHROMA_SITINGS:
            raise _field_error(
                "chroma_siting", self.chroma_siting, f"must be None or one of {', '.join(CHROMA_SITINGS)}"
            )

    @property
    def version(self) -> int:
        """The format version this header is written in: the oldest with every field it needs (4 for chroma_siting,
        3 for source_start, 2 for key_grid_shift, otherwise 1)."""
        return 4 if self.chroma_siting else 3 if self.source_start else 2 if self.key_grid_shift else 1

    def key_shift(self, g: int) -> int:
        """How far (down and right, cyclically, in every plane) GOP ``g``'s keyframe grid is shifted."""
        return self.key_grid_shift if g % 2 else 0

    # -- derived layout --------------------------------------------------------------------------

    @property
    def fps(self) -> Fraction:
        """Frame rate as an exact fraction."""
        return Fraction(self.fps_num, self.fps_den)

    @property
    def num_planes(self) -> int:
        """Coded planes per frame: 1 (Y) for gray, 3 (Y, U, V) for yuv420."""
        return 1 if self.chroma == "gray" else 3

    @property
    def plane_names(self) -> tuple[str, ...]:
        return ("Y",) if self.chroma == "gray" else ("Y", "U", "V")

    def plane_sizes(self) -> list[tuple[int, int]]:
        """Source (height, width) of each coded plane: chroma planes are ceil(H/2) × ceil(W/2)."""
        sizes = [(self.height, self.width)]
        if self.chroma == "yuv420":
            sizes += [((self.height + 1) // 2, (self.width + 1) // 2)] * 2
        return sizes

    def padded_shapes(self) -> list[tuple[int, int]]:
        """(height, width) of each coded plane after padding up to a multiple of the block size."""
        b = self.block
        return [(-(-h // b) * b, -(-w // b) * b) for h, w in self.plane_sizes()]

    def measurement_shape(self, plane: int, key: bool) -> tuple[int, int, int]:
        """(M, hb, wb) of one plane's measurements; M is m_k for keyframes, m_n otherwise."""
        hp, wp = self.padded_shapes()[plane]
        return (self.m_k if key else self.m_n, hp // self.block, wp // self.block)

    @property
    def num_records(self) -> int:
        """GOP records in the file: one per keyframe."""
        fc, gop = self.frame_count, self.gop
        multiples = -(-fc // gop)
        return multiples if (multiples - 1) * gop == fc - 1 else multiples + 1

    def record_range(self, g: int) -> tuple[int, int]:
        """(first_frame, end_frame_exclusive) of GOP record ``g``; its first frame is its keyframe."""
        n = self.num_records
        if not 0 <= g < n:
            raise IndexError(f"GOP {g} out of range 0..{n - 1}")
        last = self.frame_count - 1
        if g == n - 1:
            return (last, last + 1)  # the final keyframe is a record of its own
        return (g * self.gop, min((g + 1) * self.gop, last))

    def key_frames(self) -> list[int]:
        """Keyframe indices: every ``gop``-th frame and the last frame."""
        return [self.record_range(g)[0] for g in range(self.num_records)]

    def gop_ranges(self) -> list[tuple[int, int]]:
        """(first_frame, end_frame_exclusive) of every GOP record, in order."""
        return [self.record_range(g) for g in range(self.num_records)]


def _pack_header(h: StreamHeader) -> bytes:
    """Preamble, body and CRC of a validated header, in the oldest version that holds it (``h.version``)."""
    name = h.model_name.encode("utf-8")
    body = _HEADER_FIXED.pack(
        h.width, h.height, h.fps_num, h.fps_den, h.frame_count, h.gop, h.block, h.alpha_k, h.alpha_n,
        h.m_k, h.m_n, h.quant_step, CHROMA_CODES[h.chroma], h.weights_sha256.encode("ascii"), len(name),
    ) + name  # fmt: skip
    if h.version >= 2:
        body += _U16.pack(h.key_grid_shift)
    if h.version >= 3:
        body += _U32.pack(h.source_start)
    if h.version >= 4:
        body += _U8.pack(1 + CHROMA_SITINGS.index(h.chroma_siting))
    head = _PREAMBLE.pack(MAGIC, h.version, len(body))
    return head + body + _U32.pack(_crc(head[8:], body))


def _parse_header_body(body: bytes, version: int) -> StreamHeader:
    """Decode a version-1 to 4 header body whose CRC has been checked."""
    # After the model name: version 2 appends key_grid_shift (u16), version 3 source_start (u32), version 4
    # chroma_siting (u8). A field a version adds must be set (not 0) in that version, which exists only to carry it.
    tail = (_U16.size if version >= 2 else 0) + (_U32.size if version >= 3 else 0) + (_U8.size if version >= 4 else 0)
    if len(body) < _HEADER_FIXED.size + tail:
        raise VcsError(f"header length {len(body)} is too short for format version {version}")
    (width, height, fps_num, fps_den, frame_count, gop, block, alpha_k, alpha_n, m_k, m_n, quant_step,
     chroma, sha, name_len) = _HEADER_FIXED.unpack_from(body)  # fmt: skip
    if len(body) != _HEADER_FIXED.size + name_len + tail:
        raise VcsError(f"header field model_name length {name_len} does not match the header length {len(body)}")
    at = len(body) - tail
    key_grid_shift = source_start = 0
    chroma_siting = None
    if version >= 2:
        (key_grid_shift,) = _U16.unpack_from(body, at)
        at += _U16.size
        lowest = 0 if version >= 3 else 1  # 0 is a version-1 stream: a version-2 header exists only to carry a shift
        _check_int("block", block, 1, MAX_BLOCK)  # first: the shift's range is counted in blocks
        if not lowest <= key_grid_shift < block:
            raise _field_error("key_grid_shift", key_grid_shift, f"must be in {lowest}..{block - 1}")
    if version >= 3:
        (source_start,) = _U32.unpack_from(body, at)
        at += _U32.size
        lowest = 0 if version >= 4 else 1  # 0 is a version-1 or version-2 stream
        if not lowest <= source_start <= MAX_FRAMES:
            raise _field_error("source_start", source_start, f"must be in {lowest}..{MAX_FRAMES}")
    if version >= 4:
        (siting,) = _U8.unpack_from(body, at)
        if not 1 <= siting <= len(CHROMA_SITINGS):  # 0, unspecified, is an older version's stream
            raise _field_error("chroma_siting", siting, f"must be in 1..{len(CHROMA_SITINGS)}")
        chroma_siting = CHROMA_SITINGS[siting - 1]
    if chroma not in CHROMA_NAMES:
        raise _field_error("chroma", chroma, "must be 0 (gray) or 1 (yuv420)")
    try:
        name = body[_HEADER_FIXED.size : _HEADER_FIXED.size + name_len].decode("utf-8")
    except UnicodeDecodeError:
        raise VcsError("header field model_name is not valid UTF-8") from None
    try:
        sha_text = sha.decode("ascii")
    except UnicodeDecodeError:  # its bytes in hex, the first 8: a repr of 64 such bytes ran to 260 characters
        shown = f"not ASCII (bytes {sha[:8].hex(' ')} …)"
        raise VcsError(f"header field weights_sha256 is {shown}, must be 64 lowercase hex digits") from None
    return StreamHeader(
        width=width, height=height, fps_num=fps_num, fps_den=fps_den, frame_count=frame_count, gop=gop,
        block=block, alpha_k=alpha_k, alpha_n=alpha_n, m_k=m_k, m_n=m_n, quant_step=quant_step,
        chroma=CHROMA_NAMES[chroma], model_name=name, weights_sha256=sha_text, key_grid_shift=key_grid_shift,
        source_start=source_start, chroma_siting=chroma_siting,
    )  # fmt: skip


# The opening bytes of what is most often given in a .vcs file's place: the video it was made from. First match
# wins: HEIF and AVIF photos are ISO media files too, told apart by their brand after "ftyp".
_OTHER_FORMATS = (
    (0, b"YUV4MPEG2", "a Y4M video"),
    *((4, b"ftyp" + brand, "a HEIF or AVIF picture") for brand in (b"heic", b"heix", b"mif1", b"avif")),
    (4, b"ftyp", "an MP4 or MOV video"),
    (0, b"\x1a\x45\xdf\xa3", "a Matroska or WebM video"),
    (0, b"RIFF", "an AVI or WAV file"),
    (0, b"\x89PNG", "a PNG picture"),
    (0, b"\xff\xd8\xff", "a JPEG picture"),
)


def _other_format(opening: bytes) -> str | None:
    """What a file that is not a .vcs file is, by its opening bytes, when it is a video or picture; else None."""
    return next((what for at, magic, what in _OTHER_FORMATS if opening[at : at + len(magic)] == magic), None)


PREAMBLE_SIZE = _PREAMBLE.size


def check_opening(pre: bytes) -> None:
    """Refuse what does not open as a .vcs file, from its first `PREAMBLE_SIZE` bytes (fewer: all it has), in the
    words of docs/format.md §7 step 1; also before a stream is kept whole (`vcs info -`: not a gigabyte of zeros)."""
    if len(pre) < len(MAGIC):
        if not pre:
            raise VcsError("not a .vcs file (empty file)")
        if MAGIC.startswith(pre):
            raise VcsError("file is truncated in the header")
        raise VcsError("not a .vcs file (bad magic)")
    if pre[: len(MAGIC)] != MAGIC:
        if pre[:4] == MAGIC[:4]:
            # The start survived but the CR/LF/0x1A bytes did not: a text-mode transfer.
            raise VcsError("not a .vcs file (bad magic: line endings changed, e.g. by a text-mode transfer)")
        other = _other_format(pre)
        if other:  # the arguments swapped (`vcs decode clip.y4m clip.vcs`): say what the file is
            raise VcsError(f"not a .vcs file but {other} (vcs encode makes a .vcs file from a video)")
        raise VcsError("not a .vcs file (bad magic)")
    if len(pre) < _PREAMBLE.size:
        raise VcsError("file is truncated in the header")


def _read_header(f: BinaryIO, file_size: int) -> tuple[StreamHeader, int]:
    """Read and check the header from an open binary file; return it and the offset of record 0."""
    pre = f.read(_PREAMBLE.size)
    check_opening(pre)
    _, version, length = _PREAMBLE.unpack(pre)
    if length > MAX_HEADER_LENGTH:
        raise VcsError(f"header is damaged (length {length} is over {MAX_HEADER_LENGTH})")
    if _PREAMBLE.size + length + 4 > file_size:
        raise VcsError("file is truncated in the header")
    body = f.read(length)
    (crc,) = _U32.unpack(f.read(4))
    if crc != _crc(pre[8:], body):
        raise VcsError("header is damaged (CRC mismatch)")
    # Only now is the version trustworthy: a damaged version number reads as damage, not as "newer".
    if version > FORMAT_VERSION:
        raise VcsError(
            f"file format version {version} is newer than this vcscodec reads ({FORMAT_VERSION}): upgrade vcscodec"
        )
    if version < 1:
        raise VcsError(f"file format version {version} is not valid (versions start at 1)")
    return _parse_header_body(body, version), _PREAMBLE.size + length + 4


# -------------------------------------------------------------------------------------------- records


@dataclass
class FrameMeasurements:
    """Quantized measurements of one frame: one int32 (M, hb, wb) array per coded plane."""

    index: int
    key: bool
    planes: list[np.ndarray] = field(default_factory=list)


@dataclass
class LostGop:
    """GOP records that `ContainerReader.salvage` could not read: ``count`` of them from ``index`` on (a damaged
    one alone, or a run lost with it); their frames have to be concealed."""

    index: int
    reason: str  # one line: what was wrong with it
    count: int = 1  # one item for a run: a crafted header can announce 2³¹ frames that are not there


@dataclass
class GopRecord:
    """One keyframe and the non-keyframes up to the next keyframe."""

    index: int
    frames: list[FrameMeasurements] = field(default_factory=list)


def _spatial_forward(r: np.ndarray) -> np.ndarray:
    """Left neighbour difference along each block row; the first column takes the difference down."""
    d = r.copy()
    d[:, :, 1:] = r[:, :, 1:] - r[:, :, :-1]
    d[:, 1:, 0] = r[:, 1:, 0] - r[:, :-1, 0]
    return d


def _spatial_inverse(d: np.ndarray) -> np.ndarray:
    r = d.copy()
    r[:, :, 0] = np.cumsum(d[:, :, 0], axis=1)
    return np.cumsum(r, axis=2)


def _cost(r: np.ndarray) -> float:
    """Rough size estimate of a residual (the encoder's choice only; decoders never compute it)."""
    return float(np.log2(1.0 + np.abs(r)).sum())


def _encode_plane(q: np.ndarray, prev: np.ndarray | None, force: int | None = None) -> tuple[int, int, bytes]:
    """Pick the predictor with the cheapest residual (or ``force`` it); return (predictor, width, bytes)."""
    q = q.astype(np.int64)
    best: tuple[float, int, np.ndarray] | None = None
    for pred in (0, PRED_SPATIAL, PRED_TEMPORAL, PRED_TEMPORAL | PRED_SPATIAL):
        if (pred & PRED_TEMPORAL and prev is None) or (force is not None and pred != force):
            continue
        r = q - prev if pred & PRED_TEMPORAL else q
        if pred & PRED_SPATIAL:
            r = _spatial_forward(r)
        cost = _cost(r)
        if best is None or cost < best[0]:
            best = (cost, pred, r)
    assert best is not None
    _, pred, r = best
    # Block-major order (all M values of a block together) compressed 6 % better than row-major.
    v = np.ascontiguousarray(r.transpose(1, 2, 0)).ravel()
    u = ((v << 1) ^ (v >> 63)).astype(np.uint32)  # zig-zag; |v| <= 4*Q_MAX keeps it in 32 bits
    width = max(1, (int(u.max(initial=0)).bit_length() + 7) // 8)
    planes = u.astype("<u4").view(np.uint8).reshape(-1, 4)[:, :width]
    return pred, width, planes.T.tobytes()


def _decode_plane(
    data: memoryview, pred: int, width: int, shape: tuple[int, int, int], prev: np.ndarray | None
) -> np.ndarray:
    m, hb, wb = shape
    b = np.frombuffer(data, np.uint8).reshape(width, m * hb * wb)
    u = np.zeros(m * hb * wb, np.uint64)
    for k in range(width):
        u |= b[k].astype(np.uint64) << np.uint64(8 * k)
    v = (u >> np.uint64(1)).astype(np.int64) ^ -(u & np.uint64(1)).astype(np.int64)
    r = v.reshape(hb, wb, m).transpose(2, 0, 1)
    if pred & PRED_SPATIAL:
        r = _spatial_inverse(r)
    if pred & PRED_TEMPORAL:
        assert prev is not None
        r = r + prev
    return r


def _check_frame_table(h: StreamHeader, g: int, frames: list[tuple[int, bool]]) -> None:
    """Frame indices and key flags of record ``g`` must follow the header's keyframe layout."""
    start, end = h.record_range(g)
    if len(frames) != end - start:
        raise VcsError(f"GOP {g} has {frames_phrase(len(frames))}, the layout needs {end - start} ({start}..{end - 1})")
    for i, (index, key) in enumerate(frames):
        if index != start + i:
            raise VcsError(f"GOP {g} frame index {index}, expected {start + i}")
        if bool(key) != (i == 0):
            raise VcsError(f"GOP {g} frame {index} has key={bool(key)}, the layout says key={i == 0}")


def _encode_record(h: StreamHeader, rec: GopRecord, expected_index: int) -> bytes:
    """Check a GopRecord against the header and return its payload."""
    if not isinstance(rec, GopRecord):
        raise VcsError(f"expected a GopRecord, got {type(rec).__name__}")
    if rec.index != expected_index:
        raise VcsError(f"GOP record index {rec.index}, expected {expected_index}")
    g = rec.index
    _check_frame_table(h, g, [(fm.index, fm.key) for fm in rec.frames])
    table = [_U32.pack(len(rec.frames))]
    chunks: list[bytes] = []
    prev: list[np.ndarray] | None = None
    for fm in rec.frames:
        if len(fm.planes) != h.num_planes:
            raise VcsError(f"GOP {g} frame {fm.index} has {len(fm.planes)} planes, {h.chroma} needs {h.num_planes}")
        table.append(_FRAME.pack(fm.index, 1 if fm.key else 0))
        cur = []
        for p, (name, q) in enumerate(zip(h.plane_names, fm.planes, strict=True)):
            q = np.asarray(q)
            where = f"GOP {g} frame {fm.index} plane {name}"
            want = h.measurement_shape(p, fm.key)
            if q.shape != want:
                raise VcsError(f"{where} has shape {q.shape}, the header needs {want}")
            if not np.issubdtype(q.dtype, np.integer):
                raise VcsError(f"{where} has dtype {q.dtype}, expected quantized integers")
            q = q.astype(np.int64)
            if q.size and int(np.abs(q).max()) > Q_MAX:
                raise VcsError(f"{where} has a value beyond ±{Q_MAX}")
            # Temporal prediction only between non-keyframes: they share Φn and so the shape.
            pred, width, data = _encode_plane(q, None if fm.key or prev is None else prev[p])
            table.append(_PLANE.pack(pred, width, *want))
            chunks.append(data)
            cur.append(q)
        prev = None if fm.key else cur
    packed = lzma.compress(b"".join(chunks), format=lzma.FORMAT_XZ, check=lzma.CHECK_NONE, preset=XZ_PRESET)
    return b"".join(table) + packed


def _decode_payload(h: StreamHeader, g: int, payload: bytes) -> GopRecord:
    """Parse and check a GOP record payload whose CRC has been checked."""
    view = memoryview(payload)
    pos = 0

    def take(s: struct.Struct) -> tuple:
        nonlocal pos
        if pos + s.size > len(view):
            raise VcsError(f"GOP {g} is invalid (frame table runs past the record)")
        out = s.unpack_from(view, pos)
        pos += s.size
        return out

    (n_frames,) = take(_U32)
    start, end = h.record_range(g)
    if n_frames != end - start:
        raise VcsError(f"GOP {g} has {frames_phrase(n_frames)}, the layout needs {end - start} ({start}..{end - 1})")
    frames: list[tuple[int, bool]] = []
    planes: list[list[tuple[int, int, tuple[int, int, int]]]] = []
    total = 0
    for i in range(n_frames):
        index, key = take(_FRAME)
        if index != start + i:
            raise VcsError(f"GOP {g} frame index {index}, expected {start + i}")
        if key != (1 if i == 0 else 0):
            raise VcsError(f"GOP {g} frame {index} has key flag {key}, the layout says {1 if i == 0 else 0}")
        frames.append((index, bool(key)))
        specs = []
        for p, name in enumerate(h.plane_names):
            pred, width, m, hb, wb = take(_PLANE)
            where = f"GOP {g} frame {index} plane {name}"
            want = h.measurement_shape(p, bool(key))
            if (m, hb, wb) != want:
                raise VcsError(f"{where} has shape {(m, hb, wb)}, the header needs {want}")
            if pred > 3:
                raise VcsError(f"{where} has invalid predictor {pred}, must be 0..3")
            if pred & PRED_TEMPORAL and i < 2:  # the keyframe, and the first non-keyframe: no earlier non-keyframe
                raise VcsError(
                    f"{where} has temporal predictor {pred} at position {i} of its record, which has no "
                    "earlier non-keyframe to predict from"
                )
            if not 1 <= width <= 4:
                raise VcsError(f"{where} has byte_width {width}, must be 1..4")
            specs.append((pred, width, want))
            total += width * m * hb * wb
        planes.append(specs)
    dec = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    try:
        raw = dec.decompress(view[pos:], max_length=total + 1)
    except lzma.LZMAError as e:
        raise VcsError(f"GOP {g} is invalid (compressed data: {e})") from None
    if len(raw) != total or not dec.eof or dec.unused_data:
        raise VcsError(f"GOP {g} is invalid (compressed data holds the wrong number of bytes)")
    rv = memoryview(raw)
    off = 0
    out: list[FrameMeasurements] = []
    prev: list[np.ndarray] | None = None
    for (index, key), specs in zip(frames, planes, strict=True):
        cur = []
        for p, (pred, width, shape) in enumerate(specs):
            n = width * shape[0] * shape[1] * shape[2]
            q = _decode_plane(rv[off : off + n], pred, width, shape, None if prev is None else prev[p])
            off += n
            if q.size and int(np.abs(q).max()) > Q_MAX:
                raise VcsError(f"GOP {g} frame {index} plane {h.plane_names[p]} has a value beyond ±{Q_MAX}")
            cur.append(q)
        out.append(FrameMeasurements(index, key, [c.astype(np.int32) for c in cur]))
        prev = None if key else cur
    return GopRecord(g, out)


def _record_bytes(rtype: int, index: int, payload: bytes) -> bytes:
    if len(payload) > 0xFFFFFFFF:
        raise VcsError(f"GOP {index} is {len(payload)} bytes, over the format's 4 GiB record limit")
    prefix = _PREFIX.pack(rtype, index, len(payload))
    return prefix + _U32.pack(_crc(prefix)) + payload + _U32.pack(_crc(payload))


# --------------------------------------------------------------------------------------------- writer


class ContainerWriter(AllOrNothing):
    """Write a ``.vcs`` file record by record; the file appears under its name only on ``close()``.

    Use as a context manager: leaving the block by an exception deletes the temporary file.
    """

    def __init__(self, path: str | os.PathLike[str], header: StreamHeader, force: bool = False) -> None:
        if not isinstance(header, StreamHeader):
            raise VcsError(f"expected a StreamHeader, got {type(header).__name__}")
        self.path = os.fspath(path)
        self.header = header
        self.force = force
        self.records_written = 0
        check_output_path(self.path, force)
        folder = os.path.dirname(os.path.abspath(self.path))
        self.tmp_path = f"{self.path}.tmp-{os.getpid()}"
        try:
            self._f = open(self.tmp_path, "wb")  # closed by close() or abort()
        except OSError as e:
            raise VcsError(f"cannot write in folder {folder}: {e.strerror}") from None
        self._write(_pack_header(header))

    def _write(self, data: bytes) -> None:
        try:
            self._f.write(data)
        except OSError as e:
            self.abort()
            raise VcsError(f"cannot write {self.path}: {e.strerror}") from None

    @property
    def closed(self) -> bool:
        return self._f.closed

    def write_record(self, rec: GopRecord) -> None:
        """Check ``rec`` against the header and the layout, encode it and append it."""
        raise_pending_stop()  # a stop whose exception was lost: no more work towards an output that is not kept
        if self.closed:
            raise VcsError(f"{self.path} is already closed")
        if self.records_written >= self.header.num_records:
            raise VcsError(f"all {self.header.num_records} GOP records are already written")
        payload = _encode_record(self.header, rec, self.records_written)
        self._write(_record_bytes(TYPE_GOP, rec.index, payload))
        self.records_written += 1

    def close(self) -> None:
        """Write the end record and move the file to its name. Refuses an incomplete file."""
        if self.closed:
            return
        n = self.header.num_records
        if self.records_written != n:
            self.abort()
            raise VcsError(f"cannot finish {self.path}: {self.records_written} of {n} GOP records written")
        self._write(_record_bytes(TYPE_END, n, b""))
        try:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
            os.replace(self.tmp_path, self.path)
        except OSError as e:
            self.abort()
            raise VcsError(f"cannot write {self.path}: {e.strerror}") from None

    def abort(self) -> None:
        """Close and delete the temporary file; the output name is left untouched."""
        if not self._f.closed:
            self._f.close()
        try:
            os.remove(self.tmp_path)
        except FileNotFoundError:
            pass


# --------------------------------------------------------------------------------------------- reader


def _open_for_reading(path: str) -> tuple:
    try:
        f = open(path, "rb")  # closed by the caller
    except FileNotFoundError:
        raise VcsError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise VcsError(f"{path} is a folder, not a .vcs file") from None
    except OSError as e:
        raise VcsError(f"cannot read {path}: {e.strerror}") from None
    return f, os.fstat(f.fileno()).st_size


class ContainerReader:
    """Read a ``.vcs`` file: ``.header`` at once, GOP records one at a time by iterating.

    Iterating starts again at GOP 0 each time; only one iteration at a time per reader.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.tail_error: str | None = None  # what `salvage` found wrong after the last GOP record
        self._f, self.file_size = _open_for_reading(self.path)
        try:
            self.header, self._records_offset = _read_header(self._f, self.file_size)
        except VcsError as e:
            self._f.close()
            raise self._named(e) from None
        except BaseException:
            self._f.close()
            raise

    def _named(self, error: VcsError) -> VcsError:
        """The error with the file's name in front: one who decodes many files must learn which is damaged."""
        return VcsError(f"{self.path}: {error}")

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> ContainerReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _after(self, g: int) -> str:
        return "after the header" if g == 0 else f"after GOP {g - 1}"

    def __iter__(self) -> Iterator[GopRecord]:
        return self.records()

    def records(self, first: int = 0) -> Iterator[GopRecord]:
        """The GOP records from number ``first`` on, as iterating gives them all. The records before it are passed
        by their prefix alone, checked as ever (its CRC makes the length trustworthy, docs/format.md §2.3); their
        payloads are neither read nor checked, so a decode from a later GOP (`vcs decode --start`) costs nothing
        for them, and damage inside them does not stop it."""
        try:
            pos = self._records_offset
            for g in range(self.header.num_records + 1):
                if g < first:
                    pos = self._record_end(pos, g)
                    continue
                record, pos = self._read_record(pos, g)
                if record is None:
                    return
                yield record
        except VcsError as e:
            raise self._named(e) from None

    def salvage(self) -> Iterator[GopRecord | LostGop]:
        """The GOP records in order, like iterating, but a record that cannot be read comes out as a `LostGop`
        and reading goes on at the next record whose prefix CRC holds (docs/format.md §2.3: that CRC makes a
        record's length trustworthy, so the records after a damaged one can be found again). Records that a
        resynchronisation jumps over are lost too, and so is every record after a truncation: they come out as one
        more `LostGop`, a run (``count``). What follows the
        last GOP record holds no frames: a problem there (a damaged end record, trailing bytes) is kept in
        ``tail_error`` rather than raised. The header must be intact (the reader checked it on opening)."""
        n = self.header.num_records
        pos, g = self._records_offset, 0
        self.tail_error = None
        while g < n:
            try:
                record, after = self._read_record(pos, g)
            except VcsError as e:
                try:  # its prefix holds (the payload is damaged): its length says where the next record starts
                    scan_from = self._record_end(pos, g)
                except VcsError:  # a damaged prefix, a record missing, a file cut short: look for the next prefix
                    scan_from = pos  # that holds, from here (a record whose index is later than expected is it)
                found = self._next_record(scan_from, g + 1)
                resume = found[1] if found else n
                yield LostGop(g, str(e))
                if resume > g + 1:
                    run = f"GOP {g + 1} is" if resume == g + 2 else f"GOPs {g + 1}–{resume - 1} are"
                    yield LostGop(g + 1, f"{run} missing (lost with GOP {g})", resume - g - 1)
                if found is None:
                    return
                pos, g = found
                continue
            assert record is not None  # g < n: a GOP record, never the end record
            yield record
            pos, g = after, g + 1
        try:
            self._read_record(pos, n)
        except VcsError as e:
            self.tail_error = str(e)

    def _next_record(self, start: int, first_index: int) -> tuple[int, int] | None:
        """(position, index) of the first record prefix at or after ``start`` whose CRC holds, whose index is
        ``first_index`` or later and whose length fits the file; None when there is none."""
        import mmap

        n, size, prefix_size = self.header.num_records, self.file_size, _PREFIX.size + 4
        with mmap.mmap(self._f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            for match in _RECORD_TYPE.finditer(data, start):
                pos = match.start()
                if pos + prefix_size > size:
                    return None
                head = data[pos : pos + prefix_size]
                if _U32.unpack_from(head, _PREFIX.size)[0] != _crc(head[: _PREFIX.size]):
                    continue
                rtype, index, length = _PREFIX.unpack_from(head)
                if rtype == TYPE_GOP and first_index <= index < n and pos + prefix_size + length + 4 <= size:
                    return pos, index
                if rtype == TYPE_END and index == n and first_index <= n:
                    return pos, index
        return None

    def _record_end(self, pos: int, g: int) -> int:
        """The position after record ``g`` at ``pos``, from its checked prefix (`_read_prefix`)."""
        return pos + _PREFIX.size + 4 + self._read_prefix(pos, g) + 4

    def _read_prefix(self, pos: int, g: int) -> int:
        """Record ``g``'s prefix at ``pos``, checked (CRC, type, index, and that the record fits the file): its
        payload length."""
        f, size, h = self._f, self.file_size, self.header
        n = h.num_records
        what = f"GOP {g}" if g < n else "end record"
        prefix_size = _PREFIX.size + 4
        if pos == size:
            raise VcsError(f"file is truncated {self._after(g)}")
        if pos + prefix_size > size:
            raise VcsError(f"file is truncated in {'the ' if g == n else ''}{what}")
        f.seek(pos)
        head = f.read(prefix_size)
        if _U32.unpack_from(head, _PREFIX.size)[0] != _crc(head[: _PREFIX.size]):
            raise VcsError(f"{what} is damaged (CRC mismatch)")
        rtype, index, length = _PREFIX.unpack_from(head)
        if rtype == TYPE_END and g < n:
            raise VcsError(f"end record after {g} GOP records, the header's layout needs {n}")
        if rtype == TYPE_GOP and g == n:
            raise VcsError(f"GOP record {index} after the last one (the header's layout has {n})")
        if rtype not in (TYPE_GOP, TYPE_END):
            raise VcsError(f"record {g} has unknown type 0x{rtype:02x}")
        if index != g:
            raise VcsError(f"{what} has index {index}, expected {g}")
        if pos + prefix_size + length + 4 > size:
            raise VcsError(f"file is truncated in {'the ' if g == n else ''}{what}")
        return length

    def _read_record(self, pos: int, g: int) -> tuple[GopRecord | None, int]:
        """Record ``g`` read and checked at ``pos``: GOP record g, or None for the end record when g is the
        number of GOP records; and the position after it."""
        f, size, n = self._f, self.file_size, self.header.num_records
        what = f"GOP {g}" if g < n else "end record"
        prefix_size = _PREFIX.size + 4
        length = self._read_prefix(pos, g)  # leaves the file at the payload
        payload = f.read(length)
        (crc,) = _U32.unpack(f.read(4))
        if crc != _crc(payload):
            raise VcsError(f"{what} is damaged (CRC mismatch)")
        pos += prefix_size + length + 4
        if g == n:
            if length:
                raise VcsError(f"end record has a {length}-byte payload, must be empty")
            if pos != size:
                extra = size - pos
                raise VcsError(f"{extra} byte{'s' * (extra != 1)} of unexpected data after the end record")
            return None, pos
        return _decode_payload(self.header, g, payload), pos


def check_vcs_name(path: str | os.PathLike[str]) -> None:
    """Refuse to write a .vcs file under another name (swapped arguments, `encode clip.y4m out.y4m`): a bitstream
    named as a video would be taken for one."""
    if Path(path).suffix.lower() != ".vcs":
        raise VcsError(f"{path}: the encoder writes .vcs files; give an output name ending in .vcs, or -")


def read_header(path: str | os.PathLike[str]) -> StreamHeader:
    """Read and check just the header of a ``.vcs`` file."""
    with ContainerReader(path) as reader:
        return reader.header
