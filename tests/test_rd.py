"""Rate–distortion tools: Bjøntegaard deltas against known shifts, and the x264 anchors through PyAV."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vcscodec.errors import VcsError
from vcscodec.metrics import psnr
from vcscodec.rd import bd_psnr, bd_rate, code_with_anchor
from vcscodec.samples import camera_pan, gray_clip

RATES = [0.1, 0.2, 0.4, 0.8]
PSNRS = [30.0, 33.5, 36.0, 39.0]


def test_bd_rate_of_a_curve_at_a_fraction_of_the_rate() -> None:
    # The same PSNRs at 70 % of the bits everywhere: −30 %, whatever the curve's shape.
    assert bd_rate(RATES, PSNRS, [0.7 * r for r in RATES], PSNRS) == pytest.approx(-30.0, abs=1e-9)
    assert bd_rate(RATES, PSNRS, RATES, PSNRS) == pytest.approx(0.0, abs=1e-12)
    # The anchor at twice the rate: +100 % for it, seen the other way.
    assert bd_rate([0.7 * r for r in RATES], PSNRS, RATES, PSNRS) == pytest.approx(100 / 0.7 - 100, abs=1e-9)


def test_bd_psnr_of_a_curve_shifted_up() -> None:
    assert bd_psnr(RATES, PSNRS, RATES, [p + 1.25 for p in PSNRS]) == pytest.approx(1.25, abs=1e-9)
    # Points given in any order give the same answer.
    assert bd_psnr(RATES[::-1], PSNRS[::-1], RATES, [p - 0.5 for p in PSNRS]) == pytest.approx(-0.5, abs=1e-9)


def test_bd_rate_of_a_linear_curve_matches_the_closed_form() -> None:
    # PSNR linear in log10(rate), 10 dB a decade: +1 dB everywhere is the rate times 10^(−0.1).
    rates = [0.05, 0.1, 0.3, 1.0]
    psnrs = [30 + 10 * math.log10(r / 0.05) for r in rates]
    shifted = [p + 1 for p in psnrs]
    assert bd_rate(rates, psnrs, rates, shifted) == pytest.approx((10**-0.1 - 1) * 100, abs=1e-6)


def test_bd_is_none_without_overlap_or_points() -> None:
    assert bd_rate(RATES, PSNRS, RATES, [p + 20 for p in PSNRS]) is None  # PSNR ranges apart
    assert bd_psnr(RATES, PSNRS, [r * 100 for r in RATES], PSNRS) is None  # rate ranges apart
    assert bd_rate(RATES[:1], PSNRS[:1], RATES, PSNRS) is None  # one point is no curve
    assert bd_rate([0.1, 0.2], [30.0, 30.0], RATES, PSNRS) is None  # two rates at one PSNR: no function of PSNR
    assert bd_rate([0.1, 0.2, 0.0], [30.0, 33.0, float("inf")], RATES, PSNRS) is not None  # unusable points dropped


@pytest.mark.parametrize(("gray", "width", "height"), [(True, 63, 47), (False, 80, 48)])
def test_anchor_qp0_is_lossless(gray: bool, width: int, height: int) -> None:
    """QP 0 of 8-bit x264 is lossless: an exact round trip shows the planes go in and come back in place (row
    padding included, at an odd size too)."""
    frames = camera_pan(5, width, height, seed=1)
    coded = code_with_anchor(frames, "x264-intra", 0, gray=gray)
    assert coded.psnr == [math.inf] * 5 and coded.ssim == pytest.approx([1.0] * 5)
    assert coded.bytes > 0
    # Chroma is scored when it is coded, each plane against its own (U and V differ here, so a swap would show).
    assert not np.array_equal(frames[0].u, frames[0].v)
    assert (coded.psnr_u, coded.psnr_v) == (([], []) if gray else ([math.inf] * 5, [math.inf] * 5))


def test_anchor_scores_chroma_by_plane() -> None:
    """Lossy colour coding: U and V scores are finite, fall with the QP, and are not the luma's."""
    frames = camera_pan(9, 96, 64, seed=2)
    fine, coarse = (code_with_anchor(frames, "x264-intra", qp, gray=False) for qp in (20, 40))
    assert len(fine.psnr_u) == len(fine.psnr_v) == 9 and all(np.isfinite(fine.psnr_u + fine.psnr_v))
    assert np.mean(coarse.psnr_u) < np.mean(fine.psnr_u) and np.mean(coarse.psnr_v) < np.mean(fine.psnr_v)
    assert fine.psnr_u != fine.psnr and fine.psnr_u != fine.psnr_v


def test_anchor_rate_and_quality_follow_the_qp() -> None:
    frames = gray_clip(9, 96, 64, seed=2)
    fine, coarse = (code_with_anchor(frames, "x264-intra", qp, gray=True) for qp in (20, 40))
    assert coarse.bytes < fine.bytes
    assert np.mean(coarse.psnr) < np.mean(fine.psnr)
    assert all(np.isfinite(fine.psnr)) and len(fine.psnr) == 9
    # The scores are of the reconstructions against the frames given: a different reference scores differently.
    assert fine.psnr[0] != pytest.approx(psnr(frames[1].y, frames[0].y))


def test_motion_search_anchor_spends_fewer_bits_on_a_pan() -> None:
    frames = gray_clip(9, 96, 64, seed=4)
    intra = code_with_anchor(frames, "x264-intra", 30, gray=True)
    inter = code_with_anchor(frames, "x264", 30, gray=True)
    assert inter.bytes < 0.8 * intra.bytes


def test_anchor_errors() -> None:
    frames = camera_pan(2, 64, 64)
    with pytest.raises(VcsError, match="unknown anchor 'x265'"):
        code_with_anchor(frames, "x265", 30, gray=True)
    with pytest.raises(VcsError, match="outside 0–51"):
        code_with_anchor(frames, "x264", 52, gray=True)
    with pytest.raises(VcsError, match="no frames"):
        code_with_anchor([], "x264", 30, gray=True)
    with pytest.raises(VcsError, match="frame 1 is 64x48, the first was 64x64"):
        code_with_anchor([*camera_pan(1, 64, 64), *camera_pan(1, 64, 48)], "x264", 30, gray=True)
    odd = camera_pan(2, 63, 64)
    with pytest.raises(VcsError, match="even sizes"):
        code_with_anchor(odd, "x264", 30, gray=False)


def test_a_missing_delta_says_both_reasons() -> None:
    # A curve whose two steps reach one PSNR is dropped as surely as curves apart: the line says both, not "no
    # overlap" alone.
    import io

    from rich.console import Console

    from vcscodec.bench.report import _render_rd

    rates_b, psnrs_b = [0.15, 0.3], [31.0, 31.0]
    delta = {"bd_rate": bd_rate(RATES, PSNRS, rates_b, psnrs_b), "bd_psnr": bd_psnr(RATES, PSNRS, rates_b, psnrs_b)}
    assert delta["bd_rate"] is None and delta["bd_psnr"] is not None
    report = {
        "anchors": [],
        "rd": [{"model": "b", "reference": "a", "per_sequence": {"s": delta},
                "bd_rate": {"mean": None, "sequences": 0}, "bd_psnr": {"mean": delta["bd_psnr"], "sequences": 1}}],
    }  # fmt: skip
    text = io.StringIO()
    _render_rd(report, Console(file=text, width=300))
    assert "no BD-rate (on no sequence do both curves have distinct PSNRs and overlap in PSNR)" in text.getvalue()
