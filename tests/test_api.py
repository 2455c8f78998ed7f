"""The Python API as a library user calls it: str paths where paths are taken, VcsError (one line) for a wrong
argument rather than a TypeError or a torch error from deep inside, and the all-or-nothing contract."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

import vcscodec
from vcscodec.codec import decode_file, encode_file
from vcscodec.errors import VcsError
from vcscodec.quality import score_videos
from vcscodec.registry import default_model, find_model, list_models
from vcscodec.samples import camera_pan, write_clip


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "pan.y4m"
    write_clip(path, camera_pan(9, 64, 64))
    return path


def test_paths_may_be_strings(use_tiny_weights: Path, clip: Path, tmp_path: Path) -> None:
    vcs, out = str(tmp_path / "a.vcs"), str(tmp_path / "a.y4m")
    report = encode_file(str(clip), vcs, ratio=0.1)
    assert report.frames == 9 and Path(vcs).stat().st_size == report.bytes
    assert decode_file(vcs, out).frames == 9
    assert score_videos(str(clip), out).mean("psnr_y") > 10
    folder = str(use_tiny_weights)
    assert find_model(default_model(0.1, folder).name, folder).name in {c.name for c in list_models(folder)}


@pytest.mark.parametrize(
    ("call", "said"),
    [
        (lambda clip, out: encode_file(clip, out, ratio="0.1"), "ratio must be a number, got str '0.1'"),
        (lambda clip, out: default_model("0.1"), "ratio must be a number, got str '0.1'"),
        (lambda clip, out: encode_file(clip, out, max_frames="3"), "--frames must be at least 1, not '3'"),
        (lambda clip, out: encode_file(clip, out, start=True), "--start must be 0 or more, not True"),
        (lambda clip, out: encode_file(clip, out, target_bpp="1"), "--bpp must be a number, not '1'"),
        (lambda clip, out: score_videos(clip, clip, frames="2"), "--frames must be at least 1, not '2'"),
        (lambda clip, out: default_model(0.1).load("tpu"), "device 'tpu' is not auto, cpu, cuda"),
        (lambda clip, out: encode_file(123, out), "the input must be a path (a str or a Path), not int 123"),
        (lambda clip, out: encode_file(clip, None), "the output must be a path (a str or a Path), not NoneType"),
        (lambda clip, out: encode_file(bytes(clip), out), "the input must be a path (a str or a Path), not bytes"),
        (lambda clip, out: encode_file(clip, out, size="128x96"), "--size must be a (width, height) pair"),
        (lambda clip, out: encode_file(clip, out, model=5), "a model name must be a str, not int 5"),
        (lambda clip, out: decode_file(5, out), "the input must be a path (a str or a Path), not int 5"),
        (lambda clip, out: decode_file(clip, out, batch_gops="2"), "--batch-gops must be 0 or more, not '2'"),
        (lambda clip, out: score_videos(1, clip), "the reference must be a path (a str or a Path), not int 1"),
        (lambda clip, out: score_videos(clip, clip, frames=2).mean("psnr_x"), "no score 'psnr_x': the scores are"),
    ],
)
def test_a_wrong_argument_is_a_one_line_vcs_error(use_tiny_weights, clip, tmp_path, call, said) -> None:
    with pytest.raises(VcsError) as error:
        call(clip, tmp_path / "out.vcs")
    assert str(error.value).startswith(said) and "\n" not in str(error.value)
    assert not (tmp_path / "out.vcs").exists()


def test_encode_never_overwrites_its_own_input(use_tiny_weights, clip: Path) -> None:
    original = clip.read_bytes()
    with pytest.raises(VcsError, match="the encoder writes .vcs files"):  # a bitstream is never named as a video
        encode_file(clip, clip, force=True)
    with pytest.raises(VcsError, match="other.y4m: the encoder writes .vcs files"):  # as `vcs encode` refuses it
        encode_file(clip, clip.with_name("other.y4m"))
    assert not clip.with_name("other.y4m").exists()
    assert clip.read_bytes() == original
    named_vcs = clip.with_suffix(".vcs")  # a video under a .vcs name (it is read by its bytes, not its name)
    clip.rename(named_vcs)
    with pytest.raises(VcsError, match="is also an input of this command"):
        encode_file(named_vcs, named_vcs, force=True)
    assert named_vcs.read_bytes() == original


def test_a_rate_search_reports_every_pass(use_tiny_weights, clip: Path, tmp_path: Path) -> None:
    starts: list[int] = []
    frames: list[int] = []
    report = encode_file(clip, tmp_path / "r.vcs", target_bpp=1.0, progress=frames.append, on_start=starts.append)
    assert report.passes > 1 and starts == [9] * report.passes and sum(frames) == 9 * report.passes


def test_the_model_refuses_frames_it_would_take_wrongly(use_tiny_weights) -> None:
    model = default_model(0.1).load()
    for frames, said in [
        (torch.rand(1, 1, 100, 130), r"H and W multiples of 32, got \(1, 1, 100, 130\)"),  # rows would be dropped
        (torch.zeros(1, 64, 64, dtype=torch.uint8), "floating point in \\[0, 1\\], got torch.uint8"),
        (np.zeros((64, 64)), "must be a torch.Tensor, got ndarray"),
        (torch.rand(64), r"got \(64,\)"),
    ]:
        with pytest.raises(VcsError, match=said):
            model.measure_key(frames)
    frames = torch.rand(1, 64, 64, dtype=torch.float64)  # numpy's float64, say: measured as float32
    assert torch.allclose(model.measure_key(frames), model.measure_key(frames.float()))
    y_key = model.measure_key(torch.rand(1, 2, 64, 64))
    with pytest.raises(VcsError, match="are not a chain"):
        model.reconstruct(y_key, model.measure_non(torch.rand(1, 2, 7, 64, 64)))  # 2 GOPs need 3 keyframes
    with pytest.raises(VcsError, match="a chain has G·8\\+1 frames"):
        model(torch.rand(1, 5, 64, 64))


def test_the_type_hints_ship() -> None:
    assert (Path(vcscodec.__file__).parent / "py.typed").is_file()


def test_a_shared_prefix_is_settled_by_what_the_caller_can_use(tiny_weights: Path, tmp_path: Path) -> None:
    """`--model PREFIX` that several models share: when only one of them fits (the ratio asked for, the file's
    weights) it is that one; when several fit, the error lists those, not every model of the prefix."""
    import shutil

    from vcscodec.registry import derive_model

    folder = tmp_path / "weights"
    shutil.copytree(tiny_weights, folder)
    coarse, fine = default_model(0.1, folder), default_model(0.01, folder)
    derive_model(coarse, "hitvcsnet-mhc", why="test")
    prefix = "hitvcsnet-mh"  # all three
    with pytest.raises(VcsError, match="is ambiguous: hitvcsnet-mh"):
        find_model(prefix, folder)
    assert find_model(prefix, folder, fits=lambda c: c.alpha_n == 0.01, fitting="ratio 0.01").name == fine.name
    with pytest.raises(VcsError, match="ambiguous: 2 models for this file's weights start so") as said:
        find_model(prefix, folder, fits=lambda c: c.sha256 == coarse.sha256, fitting="this file's weights")
    assert fine.name not in str(said.value) and coarse.name in str(said.value)
    # several share the prefix and none fits: not "ambiguous" (picking one would not help) but what they are for
    with pytest.raises(VcsError, match="no model whose name starts with 'hitvcsnet-mh' is for ratio 0.5; those") as e:
        find_model(prefix, folder, fits=lambda c: c.alpha_n == 0.5, fitting="ratio 0.5")
    assert coarse.name in str(e.value) and fine.name in str(e.value)


def test_a_long_list_of_models_is_cut_in_an_error() -> None:
    # `-m hitvcsnet` matches every installed model: the one-line error names a few and counts the rest.
    from types import SimpleNamespace

    from vcscodec.registry import _some_names

    cards = [SimpleNamespace(name=f"m{i}") for i in range(9)]
    assert _some_names(cards[:6]) == "m0, m1, m2, m3, m4, m5"
    assert _some_names(cards) == "m0, m1, m2, m3, m4, m5 and 3 more (`vcs models` lists them)"


def test_numpy_integers_are_whole_numbers(use_tiny_weights, clip: Path, tmp_path: Path) -> None:
    # a count taken from an array's shape is an np.int64: a whole number, not "--frames must be at least 1"
    import numpy as np

    vcs = tmp_path / "n.vcs"
    assert encode_file(clip, vcs, max_frames=np.int64(3), start=np.int32(1)).frames == 3
    assert decode_file(vcs, tmp_path / "n.y4m", count=np.int64(2), batch_gops=np.int8(1)).frames == 2


def test_write_clip_takes_arrays_as_pictures(tmp_path: Path) -> None:
    from vcscodec.io import VideoReader, open_writer
    from vcscodec.samples import as_frame

    ramp = np.tile(np.arange(48, dtype=np.uint8) * 5, (32, 1))
    write_clip(tmp_path / "grey.y4m", [ramp, ramp])
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[..., 0] = 255  # pure red: BT.601 limited range Y 81, Cb 90, Cr 240
    write_clip(tmp_path / "red.y4m", [rgb, rgb / 255.0])
    with VideoReader(tmp_path / "grey.y4m") as grey, VideoReader(tmp_path / "red.y4m") as red:
        frames = list(grey)
        assert len(frames) == 2 and np.array_equal(frames[0].y, ramp) and np.all(frames[1].u == 128)
        reds = list(red)
        assert [(f.y[0, 0], f.u[0, 0], f.v[0, 0]) for f in reds] == [(81, 90, 240)] * 2
    assert as_frame(frames[0]) is frames[0]
    for bad, said in (
        (np.zeros((4, 4, 4)), "must be (H, W) grey or (H, W, 3) RGB"),
        (np.full((4, 4, 3), 2.0), "uint8 or floats in [0, 1]"),
        ("frame.png", "not str"),
    ):
        with pytest.raises(VcsError, match=re.escape(said)):
            write_clip(tmp_path / "bad.y4m", [bad])
    assert not (tmp_path / "bad.y4m").exists()
    # The writers themselves take Frames, and say so rather than fail on a missing attribute.
    with pytest.raises(VcsError, match="a frame must be a vcscodec.io.Frame, not ndarray"):
        with open_writer(tmp_path / "w.y4m", 48, 32, 25) as writer:
            writer.write(ramp)
    assert list(tmp_path.glob("w*")) == []
