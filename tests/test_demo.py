"""`vcs demo`: the main job encodes and decodes its sample clip and reports what it measured."""

from __future__ import annotations

import numpy as np
import pytest

from vcscodec.demo import run_demo
from vcscodec.io import open_video
from vcscodec.metrics import psnr


def test_demo_reports_the_quality_and_size_of_what_it_wrote(tmp_path, use_tiny_weights):
    results = run_demo(tmp_path, frames=9, width=96, height=64, device="cpu")
    assert [r.ratio for r in results] == [0.1, 0.01]
    with open_video(next(tmp_path.glob("astronaut_pan_96x64.y4m"))) as reader:
        source = list(reader)
    for r in results:
        with open_video(r.decoded) as reader:
            decoded = list(reader)
        assert len(decoded) == 9
        assert r.psnr_y == np.mean([psnr(a.y, b.y) for a, b in zip(source, decoded, strict=True)])
        vcs = r.decoded.with_name(r.decoded.name.replace("_decoded.y4m", ".vcs"))
        assert r.vcs_bytes == vcs.stat().st_size
        assert r.bits_per_pixel == r.vcs_bytes * 8 / (96 * 64 * 9)
    assert results[0].vcs_bytes > results[1].vcs_bytes  # ten times the non-keyframe measurements


def test_demo_rewrites_its_clip_when_rerun_with_another_length(tmp_path, use_tiny_weights):
    """A second demo in the same folder scores its own clip, not the one an earlier run left there."""
    run_demo(tmp_path, ratios=(0.1,), frames=1, width=64, height=64, device="cpu")
    (result,) = run_demo(tmp_path, ratios=(0.1,), frames=2, width=64, height=64, device="cpu")
    for video in (tmp_path / "astronaut_pan_64x64.y4m", result.decoded):
        with open_video(video) as reader:
            assert len(list(reader)) == 2


def test_a_demo_stopped_midway_leaves_the_folder_as_it_was(tmp_path, use_tiny_weights, monkeypatch):
    """Stopped during its second decode (Ctrl-C, a full disk): an earlier demo's files stay as they were, all of
    them, with nothing of this one beside them; a folder this demo made is gone again."""
    import vcscodec.demo as demo

    folder = tmp_path / "d"
    run_demo(folder, frames=3, width=64, height=64, device="cpu")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    decode, calls = demo.decode_file, []

    def stopped_on_the_second(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return decode(*args, **kwargs)

    monkeypatch.setattr(demo, "decode_file", stopped_on_the_second)
    for target in (folder, tmp_path / "new"):
        calls.clear()
        with pytest.raises(KeyboardInterrupt):
            run_demo(target, frames=2, width=64, height=64, device="cpu")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before and len(before) == 5
    assert not (tmp_path / "new").exists()
