"""Scoring one video against another (`vcscodec.quality`): known answers, the mean of per-frame scores, and
one-line errors for videos that cannot be compared."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vcscodec.errors import VcsError
from vcscodec.io import Frame
from vcscodec.metrics import ssim
from vcscodec.quality import score_frames, score_videos
from vcscodec.samples import camera_pan, write_clip


def shifted(frame: Frame, dy: int = 0, du: int = 0, dv: int = 0) -> Frame:
    """The frame with constants added to its planes (the pictures stay well inside 0..255)."""
    return Frame(
        (frame.y.astype(np.int16) + dy).astype(np.uint8),
        (frame.u.astype(np.int16) + du).astype(np.uint8),
        (frame.v.astype(np.int16) + dv).astype(np.uint8),
    )


@pytest.fixture(scope="module")
def frames() -> list[Frame]:
    # Contrast squeezed into 40..215 so that ±10 never clips.
    clip = camera_pan(3, 64, 48, seed=2)
    return [Frame(*(40 + (p.astype(np.uint16) * 175 // 255).astype(np.uint8) for p in (f.y, f.u, f.v))) for f in clip]


def test_known_psnr_per_plane_and_ssim(frames):
    test = [shifted(f, dy=2, du=-4) for f in frames]
    scores = score_frames(frames, test)
    assert len(scores) == 3
    for ref, tst, q in zip(frames, test, scores, strict=True):
        assert q.psnr_y == pytest.approx(10 * math.log10(255**2 / 4))
        assert q.psnr_u == pytest.approx(10 * math.log10(255**2 / 16))
        assert q.psnr_v == math.inf
        assert q.psnr_uv == pytest.approx(10 * math.log10(255**2 / 8))  # U and V pooled: (16 + 0) / 2
        assert q.ssim_y == pytest.approx(ssim(ref.y, tst.y))
        assert q.ssim_y < 1


def test_a_video_scores_the_mean_of_its_frames_not_the_pooled_error(tmp_path, frames):
    """Frame errors of 1 and 10 grey levels: the mean of the two PSNRs (the paper's score), not the PSNR of
    the mean squared error, which the worse frame would dominate."""
    test = [shifted(frames[0], dy=1), shifted(frames[1], dy=10), frames[2]]
    ref_path, test_path = tmp_path / "ref.y4m", tmp_path / "test.y4m"
    write_clip(ref_path, frames[:2], fps=25)
    write_clip(test_path, test[:2], fps=25)
    report = score_videos(ref_path, test_path)
    expected = (10 * math.log10(255**2 / 1) + 10 * math.log10(255**2 / 100)) / 2
    assert report.mean("psnr_y") == pytest.approx(expected)
    assert report.mean("psnr_y") > 10 * math.log10(255**2 / ((1 + 100) / 2)) + 5
    assert (report.width, report.height, len(report.frames)) == (64, 48, 2)
    # identical pictures: inf, and a report that says so as JSON null (bench.write_json)
    assert score_videos(ref_path, ref_path).mean("psnr_y") == math.inf


def test_compare_says_what_a_mean_of_inf_hides(tmp_path, frames):
    """One frame of three identical: the mean PSNR Y is inf (the paper's mean of per-frame values), and `vcs
    compare` adds the mean over the frames that differ; U, identical in every frame, and V, in none, get no note."""
    import subprocess
    import sys

    test = [frames[0], shifted(frames[1], dy=1, dv=2), shifted(frames[2], dy=10, dv=2)]
    ref_path, test_path = tmp_path / "ref.y4m", tmp_path / "test.y4m"
    write_clip(ref_path, frames, fps=25)
    write_clip(test_path, test, fps=25)
    report = score_videos(ref_path, test_path)
    assert report.mean("psnr_y") == math.inf
    differing = (10 * math.log10(255**2 / 1) + 10 * math.log10(255**2 / 100)) / 2
    assert report.identical("psnr_y") == (1, pytest.approx(differing))
    assert report.identical("psnr_u") == (3, None) and report.identical("psnr_v")[0] == 1
    done = subprocess.run(
        [sys.executable, "-m", "vcscodec.cli", "compare", ref_path, test_path], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stdout.splitlines() if line.startswith("PSNR ")]
    others = report.identical("psnr_y")[1]
    assert notes[0] == f"PSNR Y: 1 of 3 frames identical (inf), so the mean is inf; the other 2: {others:.2f} dB"
    assert notes[1].startswith("PSNR V: 1 of 3") and len(notes) == 2


def test_frame_counts_must_match_unless_limited(tmp_path, frames):
    ref_path, short_path = tmp_path / "ref.y4m", tmp_path / "short.y4m"
    write_clip(ref_path, frames, fps=25)
    write_clip(short_path, frames[:2], fps=25)
    with pytest.raises(VcsError, match=r"test video ends after 2 frames .*--frames 2"):
        score_videos(ref_path, short_path)
    with pytest.raises(VcsError, match=r"reference ends after 2 frames"):
        score_videos(short_path, ref_path)
    # read from a later frame, it says from where: "ends after 1 frame" of a 2-frame reference would puzzle
    with pytest.raises(VcsError, match=r"^the reference \(read from its frame 1\) ends after 1 frame but the test"):
        score_videos(short_path, short_path, reference_start=1)
    assert len(score_videos(ref_path, short_path, frames=2).frames) == 2
    # --size is for raw .yuv: a file that says its own size otherwise is refused, not silently read at its own
    with pytest.raises(VcsError, match=r"--size 100x64 is for raw .yuv input; .*ref.y4m is"):
        score_videos(ref_path, short_path, size=(100, 64))
    # a part from frame 0 (compare --start 0) is a part like any other: the reference may go on after it
    assert len(score_videos(ref_path, short_path, reference_start=0).frames) == 2
    assert len(score_videos(ref_path, ref_path, frames=1).frames) == 1
    with pytest.raises(VcsError, match=r"test video has only 2 frames, fewer than the 3 asked for"):
        score_videos(ref_path, short_path, frames=3)
    with pytest.raises(VcsError, match=r"both videos have only 3 frames, fewer than the 5"):
        score_videos(ref_path, ref_path, frames=5)
    with pytest.raises(VcsError, match="at least 1"):
        score_videos(ref_path, ref_path, frames=0)


def test_sizes_must_match_and_raw_yuv_takes_a_size(tmp_path, frames):
    ref_path, other = tmp_path / "ref.y4m", tmp_path / "other.y4m"
    write_clip(ref_path, frames, fps=25)
    write_clip(other, camera_pan(3, 32, 48), fps=25)
    with pytest.raises(VcsError, match=r"other.y4m is 32x48 but .*ref.y4m is 64x48"):
        score_videos(ref_path, other)
    raw = tmp_path / "plain.yuv"
    write_clip(raw, frames, fps=25)
    with pytest.raises(VcsError, match="--size"):
        score_videos(ref_path, raw)
    report = score_videos(ref_path, raw, size=(64, 48))  # no rate needed: scores do not depend on it
    assert report.mean("psnr_y") == math.inf and report.mean("ssim_y") == pytest.approx(1.0)
