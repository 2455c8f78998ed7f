"""Rate–distortion comparisons: conventional anchor codecs and Bjøntegaard deltas.

A CS codec is judged by its quality per bit as well as by the paper's fixed-ratio tables, and the honest yardstick
is a conventional encoder on the same frames. `vcs bench --anchor x264 --anchor x264-intra` codes each test
sequence with libx264 (through PyAV's FFmpeg, so no extra dependency) at a sweep of fixed QPs, scores its
reconstructions by the same protocol as ours (`bench.scored_frames`, `metrics`), and `bd_rate` / `bd_psnr` sum
the comparison up in the usual way (G. Bjøntegaard, VCEG-M33, 2001, with the piecewise cubic interpolation that
the JVET common test conditions use instead of its cubic polynomial, since a fit through four points can swing).

Anchors code what the bench codes: luma alone (x264's ``gray`` format) when the bench's chroma is ``gray``, as
the paper's protocol, else 4:2:0. Their rate is every byte of the raw H.264 stream (parameter sets included) per
luma pixel, like the bench's `.vcs` rate that counts every byte of the file.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import VcsError
from .metrics import psnr, ssim

if TYPE_CHECKING:
    import av

    from .io import Frame

__all__ = [
    "ANCHORS",
    "DEFAULT_ANCHOR_QPS",
    "AnchorCoding",
    "bd_psnr",
    "bd_rate",
    "check_anchor",
    "check_qp",
    "code_with_anchor",
    "summarize",
]

# x264 settings of each anchor. "medium" is x264's default preset; tune=psnr turns off the psychovisual
# optimisations that trade PSNR for looks, since PSNR is what is compared. "x264-intra" codes every frame alone
# (keyint 1), the fair peer of an encoder without motion search; "x264" is the full encoder with motion search.
ANCHORS: dict[str, dict[str, str]] = {
    "x264": {"preset": "medium", "tune": "psnr"},
    "x264-intra": {"preset": "medium", "tune": "psnr", "x264-params": "keyint=1"},
}
# The JCT-VC / JVET common test conditions' four QPs and one more, since our rates reach lower.
DEFAULT_ANCHOR_QPS = (22, 27, 32, 37, 42)


@dataclass
class AnchorCoding:
    """One sequence coded by an anchor at one QP: the stream's size, the reconstructions' scores, the time."""

    bytes: int
    psnr: list[float]  # per frame, Y
    ssim: list[float]  # per frame, Y
    encode_seconds: float
    decode_seconds: float
    psnr_u: list[float] = field(default_factory=list)  # per frame, when coded in colour
    psnr_v: list[float] = field(default_factory=list)


def check_anchor(name: str) -> None:
    """Refuse an unknown anchor, or one this FFmpeg build cannot encode, before any sequence is coded."""
    import av  # here, not at the top: the CLI reads DEFAULT_ANCHOR_QPS without loading FFmpeg

    if name not in ANCHORS:
        raise VcsError(f"unknown anchor {name!r}: choose from {', '.join(ANCHORS)}")
    if "libx264" not in av.codecs_available:
        raise VcsError(f"anchor {name} needs libx264, which this PyAV's FFmpeg does not have")


def check_qp(qp: int) -> None:
    """Refuse a QP that H.264 does not have (8-bit: 0–51)."""
    if not 0 <= qp <= 51:
        raise VcsError(f"anchor QP {qp} is outside 0–51")


def code_with_anchor(frames: Iterable[Frame], anchor: str, qp: int, gray: bool) -> AnchorCoding:
    """Code ``frames`` with ``anchor`` at a fixed ``qp`` (0–51) and score every reconstruction against its source.

    ``gray`` codes the Y plane alone; else Y, U and V (4:2:0, even sizes only, as x264 requires). Frames stream
    through: only those inside the encoder's and decoder's delay are held."""
    import av

    check_anchor(anchor)
    check_qp(qp)
    sources = iter(frames)
    first = next(sources, None)
    if first is None:
        raise VcsError("no frames to code with the anchor")
    width, height = first.width, first.height
    if not gray and (width % 2 or height % 2):
        raise VcsError(f"anchor {anchor} codes 4:2:0 only at even sizes, not {width}x{height}")
    pix_fmt = "gray" if gray else "yuv420p"

    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, pix_fmt
    encoder.time_base = Fraction(1, 25)
    encoder.options = {**ANCHORS[anchor], "qp": str(qp)}
    decoder = av.CodecContext.create("h264", "r")
    coding = AnchorCoding(0, [], [], 0.0, 0.0)
    waiting: deque[tuple[np.ndarray, ...]] = deque()  # source planes whose reconstruction has not come out yet

    def decode(packets: list[av.Packet | None]) -> None:
        for packet in packets:
            coding.bytes += packet.size if packet is not None else 0
            start = time.perf_counter()
            pictures = decoder.decode(packet)
            coding.decode_seconds += time.perf_counter() - start
            for picture in pictures:  # in display order, as the sources came
                source = waiting.popleft()
                planes = [
                    np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[: ref.shape[0], : ref.shape[1]]
                    for plane, ref in zip(picture.planes[: len(source)], source, strict=True)
                ]
                coding.psnr.append(psnr(source[0], planes[0]))
                coding.ssim.append(ssim(source[0], planes[0]))
                if not gray:
                    coding.psnr_u.append(psnr(source[1], planes[1]))
                    coding.psnr_v.append(psnr(source[2], planes[2]))

    def encode(planes: tuple[np.ndarray, ...] | None, index: int) -> list[av.Packet]:
        start = time.perf_counter()
        try:
            if planes is None:
                return encoder.encode(None)
            picture = av.VideoFrame(width, height, pix_fmt)
            for plane, data in zip(picture.planes, planes, strict=True):
                np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[: data.shape[0], : data.shape[1]] = data
            picture.pts = index
            return encoder.encode(picture)
        except av.FFmpegError as e:
            raise VcsError(f"anchor {anchor} failed to encode {width}x{height}: {e.strerror or e}") from None
        finally:
            coding.encode_seconds += time.perf_counter() - start

    count = 0
    for index, frame in enumerate(itertools.chain([first], sources)):
        if (frame.width, frame.height) != (width, height):
            raise VcsError(f"frame {index} is {frame.width}x{frame.height}, the first was {width}x{height}")
        planes = (frame.y,) if gray else (frame.y, frame.u, frame.v)
        waiting.append(planes)
        decode(encode(planes, index))
        count += 1
    decode([*encode(None, count), None])
    if waiting:
        raise VcsError(f"anchor {anchor} returned {count - len(waiting)} frames for {count}")
    return coding


# ---------------------------------------------------------------------------------------------- Bjøntegaard


def _curve(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray] | None:
    """Points (x, y) sorted by x, or None when fewer than two are finite or two share an x (then y is no
    function of x to interpolate)."""
    points = sorted((float(a), float(b)) for a, b in zip(x, y, strict=True) if np.isfinite(a) and np.isfinite(b))
    if len(points) < 2 or len({a for a, _ in points}) != len(points):
        return None
    return np.array([a for a, _ in points]), np.array([b for _, b in points])


def _mean_difference(a: tuple[np.ndarray, np.ndarray] | None, b: tuple[np.ndarray, np.ndarray] | None) -> float | None:
    """Mean of curve b minus curve a over the x range both cover, each a piecewise cubic through its points
    (monotone, PCHIP); None without two curves or an overlap."""
    from scipy.interpolate import PchipInterpolator

    if a is None or b is None:
        return None
    low, high = max(a[0][0], b[0][0]), min(a[0][-1], b[0][-1])
    if high <= low:
        return None
    area = PchipInterpolator(*b).integrate(low, high) - PchipInterpolator(*a).integrate(low, high)
    return float(area / (high - low))


def _log_rates(rates: Sequence[float]) -> list[float]:
    return [float(np.log10(r)) if r > 0 else float("nan") for r in rates]


def bd_rate(
    rates_a: Sequence[float], psnrs_a: Sequence[float], rates_b: Sequence[float], psnrs_b: Sequence[float]
) -> float | None:
    """Bjøntegaard delta rate of B against A, in percent: the mean rate difference at equal PSNR over the PSNR
    range both curves cover (negative: B needs fewer bits). None when either curve has fewer than two points
    or the ranges do not overlap."""
    diff = _mean_difference(_curve(psnrs_a, _log_rates(rates_a)), _curve(psnrs_b, _log_rates(rates_b)))
    return None if diff is None else float((10.0**diff - 1.0) * 100.0)


def bd_psnr(
    rates_a: Sequence[float], psnrs_a: Sequence[float], rates_b: Sequence[float], psnrs_b: Sequence[float]
) -> float | None:
    """Bjøntegaard delta PSNR of B against A, in dB: the mean PSNR difference at equal rate over the log-rate
    range both curves cover (positive: B is better). None as for `bd_rate`."""
    return _mean_difference(_curve(_log_rates(rates_a), psnrs_a), _curve(_log_rates(rates_b), psnrs_b))


def summarize(values: Iterable[float | None]) -> dict[str, Any]:
    """Mean of the defined per-sequence deltas and how many were defined."""
    defined = [v for v in values if v is not None]
    return {"mean": float(np.mean(defined)) if defined else None, "sequences": len(defined)}
