"""Round trips and failures of vcscodec.io (PyAV), plus the sample clips."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from vcscodec import io
from vcscodec.errors import VcsError
from vcscodec.io import Frame, conversion_loss, frame_from_gray, open_video, open_writer, parse_fps, parse_raw_name
from vcscodec.metrics import psnr
from vcscodec.samples import camera_pan, gray_clip, write_clip

NTSC = Fraction(30000, 1001)


def write(path: Path, frames: list[Frame], fps: Fraction = NTSC, force: bool = False) -> str:
    h, w = frames[0].y.shape
    with open_writer(path, w, h, fps, force=force) as writer:
        for f in frames:
            writer.write(f)
    return writer.codec


def read(path: Path, **kw) -> tuple[io.VideoInfo, list[Frame]]:
    with open_video(path, **kw) as reader:
        return reader.info, list(reader)


def assert_same(a: list[Frame], b: list[Frame]) -> None:
    assert len(a) == len(b)
    for fa, fb in zip(a, b, strict=True):
        for pa, pb in ((fa.y, fb.y), (fa.u, fb.u), (fa.v, fb.v)):
            assert pb.dtype == np.uint8 and pa.shape == pb.shape
            np.testing.assert_array_equal(pa, pb)


def no_files_left(folder: Path) -> bool:
    return not any(folder.iterdir())


# ------------------------------------------------------------------------------------ lossless round trips


@pytest.mark.parametrize("n, w, h", [(1, 100, 60), (9, 100, 60), (9, 99, 61), (1, 99, 61)])
def test_y4m_round_trip_is_bit_exact(tmp_path, noise_clip, n, w, h):
    frames = noise_clip(n, w, h, seed=n + w)
    path = tmp_path / "clip.y4m"
    assert write(path, frames) == "rawvideo"
    assert path.read_bytes().startswith(f"YUV4MPEG2 W{w} H{h} F30000:1001".encode())
    info, back = read(path)
    assert (info.width, info.height, info.fps, info.frame_count) == (w, h, NTSC, n)
    assert (info.pix_fmt, info.codec) == ("yuv420p", "rawvideo")
    assert_same(frames, back)
    assert [p.name for p in tmp_path.iterdir()] == ["clip.y4m"]


def test_yuv_round_trip_size_and_rate_from_name(tmp_path, noise_clip):
    frames = noise_clip(9, 99, 61, seed=3)
    path = tmp_path / "clip_99x61_29.97fps.yuv"
    assert write(path, frames) == "rawvideo"
    # Raw planar I420, nothing else: Y, then U, then V, frame after frame.
    expected = b"".join(f.y.tobytes() + f.u.tobytes() + f.v.tobytes() for f in frames)
    assert path.read_bytes() == expected
    info, back = read(path)
    assert (info.width, info.height, info.fps, info.frame_count) == (99, 61, NTSC, 9)
    assert_same(frames, back)


def test_yuv_round_trip_size_and_rate_from_arguments(tmp_path, noise_clip):
    frames = noise_clip(2, 100, 60, seed=4)
    path = tmp_path / "clip.yuv"
    write(path, frames, fps=Fraction(25))
    info, back = read(path, size=(100, 60), fps=Fraction(50))
    assert (info.width, info.height, info.fps, info.frame_count) == (100, 60, Fraction(50), 2)
    assert_same(frames, back)
    # Arguments win over the name.
    named = tmp_path / "clip_50x120_30.yuv"
    shutil.copy(path, named)
    info, back = read(named, size=(100, 60), fps=Fraction(25))
    assert (info.width, info.height, info.fps) == (100, 60, Fraction(25))
    assert_same(frames, back)


def test_y4m_from_disk_opens_in_ffprobe(tmp_path, noise_clip):
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        pytest.skip("ffprobe is not installed")
    path = tmp_path / "clip.y4m"
    write(path, noise_clip(3, 99, 61))
    out = subprocess.run(
        [
            ffprobe,
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=width,height,nb_read_frames",
            "-of",
            "csv=p=0",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == "99,61,3"


# ------------------------------------------------------------------------------------ lossy round trips


def test_mp4_output_is_the_same_to_the_bit_every_time(tmp_path):
    """A decode's .mp4 is reproducible: x264's macroblock tree, which made encodes of the same frames differ from run
    to run (3 of 6 CIF encodes differed in a row here), is off."""
    written = set()
    for run in range(8):
        for size in ((96, 64), (352, 288)):
            path = tmp_path / f"{run}-{size[0]}.mp4"
            write(path, camera_pan(17, *size, seed=4))
            written.add(path.read_bytes())
    assert len(written) == 2


def test_mp4_round_trip_keeps_size_count_and_rate(tmp_path, pan_clip):
    frames = pan_clip(9, 100, 60)
    path = tmp_path / "clip.mp4"
    codec = write(path, frames)
    assert codec == ("libx264" if "libx264" in av.codecs_available else "mpeg4")
    info, back = read(path)
    assert (info.width, info.height, info.fps, info.frame_count) == (100, 60, NTSC, 9)
    assert info.codec == ("h264" if codec == "libx264" else "mpeg4")
    assert len(back) == 9
    scores = [psnr(a.y, b.y) for a, b in zip(frames, back, strict=True)]
    assert min(scores) > 30, scores
    assert min(psnr(a.u, b.u) for a, b in zip(frames, back, strict=True)) > 30


def test_mp4_odd_size_falls_back_to_mpeg4(tmp_path, pan_clip):
    frames = pan_clip(3, 99, 61)
    path = tmp_path / "odd.mp4"
    assert write(path, frames, fps=Fraction(24)) == "mpeg4"  # libx264 refuses odd 4:2:0 sizes
    info, back = read(path)
    assert (info.width, info.height, info.fps, info.frame_count) == (99, 61, Fraction(24), 3)
    assert back[0].u.shape == (31, 50)
    assert min(psnr(a.y, b.y) for a, b in zip(frames, back, strict=True)) > 30


def _write_rotated(path: Path, frames: list, degrees: float) -> None:
    """An MPEG-4 file of ``frames`` whose display matrix asks players to turn it ``degrees`` counter-clockwise."""
    height, width = frames[0].y.shape
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=25, options={"qscale": "2"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if degrees:
            stream.set_display_rotation(degrees)
        for i, frame in enumerate(frames):
            planes = np.concatenate([frame.y.ravel(), frame.u.ravel(), frame.v.ravel()])
            picture = av.VideoFrame.from_ndarray(planes.reshape(height * 3 // 2, width), format="yuv420p")
            picture.pts = i
            out.mux(stream.encode(picture))
        out.mux(stream.encode())


@pytest.mark.parametrize("degrees, quarter_turns", [(90, 1), (-90, 3), (180, 2), (0, 0)])
def test_a_rotated_video_is_turned_as_it_asks(tmp_path, pan_clip, use_tiny_weights, degrees, quarter_turns):
    """A phone video asks players to turn it (a display matrix, here written as PyAV writes one: degrees
    counter-clockwise). As ffmpeg's command line does by default, the pictures are read turned, in quarter turns,
    and sizes follow; encode has nothing to warn about."""
    from vcscodec.codec import encode_file

    if not hasattr(av.video.stream.VideoStream, "set_display_rotation"):
        pytest.skip("PyAV < 14 cannot write a display matrix")
    frames = pan_clip(3, 64, 32)  # the astronaut: no turn of it looks like another
    path = tmp_path / f"rot{degrees}.mp4"
    _write_rotated(path, frames, degrees)
    info, back = read(path)
    turned = [np.rot90(f.y, quarter_turns) for f in frames]
    assert (info.width, info.height) == turned[0].shape[::-1] and back[0].y.shape == turned[0].shape
    assert back[0].u.shape == np.rot90(frames[0].u, quarter_turns).shape
    right = min(psnr(t, b.y) for t, b in zip(turned, back, strict=True))
    upside_down = psnr(np.rot90(frames[0].y, quarter_turns + 2), back[0].y)  # the same shape, the other way up
    assert right > 25 and upside_down < right - 8, (right, upside_down)
    report = encode_file(path, tmp_path / "rot.vcs")
    assert (report.width, report.height) == (info.width, info.height)
    assert not [w for w in report.warnings if "rotated" in w]


def test_a_turn_other_than_a_quarter_is_said_and_not_applied(tmp_path, pan_clip, use_tiny_weights):
    from vcscodec.codec import encode_file

    if not hasattr(av.video.stream.VideoStream, "set_display_rotation"):
        pytest.skip("PyAV < 14 cannot write a display matrix")
    path = tmp_path / "tilted.mp4"
    _write_rotated(path, pan_clip(3, 64, 32), 30)
    info, back = read(path)
    assert (info.width, info.height, back[0].y.shape) == (64, 32, (32, 64))
    warnings = encode_file(path, tmp_path / "tilted.vcs").warnings
    said = [w for w in warnings if re.search(r"rotated by (29|30)°", w) and "as stored" in w]  # PyAV truncates
    assert len(said) == 1, warnings


def test_sound_is_left_out_and_said(tmp_path, pan_clip, use_tiny_weights):
    """vcs codes pictures only: an input with sound is coded all the same, and `encode` says the sound is left out."""
    from vcscodec.codec import encode_file

    path = tmp_path / "talk.mkv"
    frames = pan_clip(3, 64, 32)
    with av.open(str(path), "w") as out:
        video = out.add_stream("mpeg4", rate=25)
        video.width, video.height, video.pix_fmt = 64, 32, "yuv420p"
        audio = out.add_stream("pcm_s16le", rate=8000)
        audio.layout = "mono"
        for i, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(np.concatenate([frame.y.ravel(), frame.u.ravel(), frame.v.ravel()])
                                                 .reshape(48, 64), format="yuv420p")  # fmt: skip
            picture.pts = i
            out.mux(video.encode(picture))
            sound = av.AudioFrame.from_ndarray(np.zeros((1, 320), np.int16), format="s16", layout="mono")
            sound.sample_rate, sound.pts = 8000, i * 320
            out.mux(audio.encode(sound))
        out.mux(video.encode())
        out.mux(audio.encode())
    info, back = read(path)
    assert (info.width, info.height, len(back)) == (64, 32, 3)
    warnings = encode_file(path, tmp_path / "talk.vcs").warnings
    assert [w for w in warnings if "sound" in w] == [f"{path} has an audio stream: vcs codes video only, so the sound "
                                                     "is not in the .vcs file"]  # fmt: skip
    silent = tmp_path / "silent.mkv"
    write(silent, frames, fps=Fraction(25))
    assert not [w for w in encode_file(silent, tmp_path / "silent.vcs").warnings if "sound" in w]


def test_mpeg4_when_libx264_is_missing(tmp_path, pan_clip, monkeypatch):
    monkeypatch.setattr(av, "codecs_available", set(av.codecs_available) - {"libx264"})
    path = tmp_path / "clip.mkv"
    assert write(path, pan_clip(2, 64, 48), fps=Fraction(25)) == "mpeg4"
    info, back = read(path)
    assert (info.codec, info.fps, len(back)) == ("mpeg4", Fraction(25), 2)


@pytest.mark.parametrize("ext", [".mkv", ".avi"])
def test_other_containers_round_trip(tmp_path, pan_clip, ext):
    frames = pan_clip(4, 64, 48, seed=2)
    path = tmp_path / f"clip{ext}"
    write(path, frames, fps=Fraction(25))
    info, back = read(path)
    assert (info.width, info.height, info.fps, len(back)) == (64, 48, Fraction(25), 4)
    assert min(psnr(a.y, b.y) for a, b in zip(frames, back, strict=True)) > 30


# ------------------------------------------------------------------------------------ other pixel formats


def test_10bit_y4m_is_converted_to_8bit(tmp_path, noise_clip, write_with_pyav):
    (f8,) = noise_clip(1, 99, 61, seed=5)
    exact = [p.astype(np.uint16) << 2 for p in (f8.y, f8.u, f8.v)]
    rng = np.random.default_rng(6)
    arbitrary_y = rng.integers(0, 1024, (61, 99)).astype(np.uint16)
    path = tmp_path / "ten.y4m"
    try:
        write_with_pyav(
            path,
            [exact, [arbitrary_y, exact[1], exact[2]]],
            "yuv420p10le",
            container_options={"strict": "-1"},
        )
    except av.FFmpegError as e:  # pragma: no cover - depends on the bundled FFmpeg
        pytest.skip(f"this FFmpeg cannot write 10-bit Y4M: {e}")
    info, back = read(path)
    assert (info.pix_fmt, info.width, info.height, info.frame_count) == ("yuv420p10le", 99, 61, 2)
    assert_same([f8], back[:1])  # v·4 in 10 bits is exactly v in 8 bits
    # Rounded, not dithered (swscale's way down to 8 bits put a quarter of the samples x·4 + 1 one level up)
    assert np.array_equal(back[1].y, np.minimum((arbitrary_y.astype(int) + 2) >> 2, 255))


@pytest.mark.parametrize(
    ("pix_fmt", "chroma", "lost"),
    [
        ("yuv420p", "yuv420", None),
        ("gray", "gray", None),
        ("rgb24", "yuv420", None),  # every video codec's path from pictures: not worth a warning
        ("yuvj420p", "yuv420", None),
        ("yuv420p10le", "yuv420", "10-bit samples rounded to 8 bits"),
        ("gray16le", "gray", "16-bit samples rounded to 8 bits"),
        ("yuv422p", "yuv420", "chroma subsampled to 4:2:0"),
        ("yuv444p", "gray", None),  # coded grey: its chroma is dropped anyway (a warning of its own)
        ("yuv444p12le", "yuv420", "12-bit samples rounded to 8 bits and chroma subsampled to 4:2:0"),
        ("not-a-format", "yuv420", None),
    ],
)
def test_conversion_loss_names_what_is_lost(pix_fmt, chroma, lost):
    assert conversion_loss(pix_fmt, chroma) == (f"the source is {pix_fmt}: {lost}" if lost else None)


def test_444_input_is_converted_to_420(tmp_path, noise_clip, write_with_pyav):
    (f,) = noise_clip(1, 99, 61, seed=7)
    u = np.full((61, 99), 90, np.uint8)
    v = np.tile(np.linspace(16, 240, 99).round().astype(np.uint8), (61, 1))
    path = tmp_path / "full.y4m"
    write_with_pyav(path, [[f.y, u, v]], "yuv444p")
    info, (back,) = read(path)
    assert info.pix_fmt == "yuv444p"
    np.testing.assert_array_equal(back.y, f.y)  # luma passes untouched
    assert back.u.shape == back.v.shape == (31, 50)
    assert np.all(back.u == 90)
    pair_mean = np.pad(v[0].astype(float), (0, 1), mode="edge").reshape(50, 2).mean(1)
    assert np.abs(back.v[10].astype(float) - pair_mean).max() <= 3


def test_gray_input_gets_neutral_chroma(tmp_path, noise_clip, write_with_pyav):
    (f,) = noise_clip(1, 64, 48, seed=8)
    path = tmp_path / "gray.y4m"
    write_with_pyav(path, [[f.y]], "gray")
    info, (back,) = read(path)
    assert info.pix_fmt == "gray"
    np.testing.assert_array_equal(back.y, f.y)
    assert np.all(back.u == 128) and np.all(back.v == 128)


def test_frame_from_gray_odd_size():
    f = frame_from_gray(np.full((61, 99), 300.7))
    assert f.y.dtype == np.uint8 and f.y.shape == (61, 99) and np.all(f.y == 255)
    assert f.u.shape == f.v.shape == (31, 50) and np.all(f.u == 128) and np.all(f.v == 128)
    assert (f.width, f.height) == (99, 61)


@pytest.mark.parametrize(
    "name, size, fps",
    [
        ("foreman_352x288_30.yuv", (352, 288), Fraction(30)),
        ("x_1920x1080_29.97fps.yuv", (1920, 1080), NTSC),
        ("a_352x288_30Hz_8bit_P420.yuv", (352, 288), Fraction(30)),
        ("BasketballDrive_1920x1080_50.yuv", (1920, 1080), Fraction(50)),
        ("b-1280x720-23.976.yuv", (1280, 720), Fraction(24000, 1001)),
        ("c_640x480_12.5fps.yuv", (640, 480), Fraction(25, 2)),
        ("akiyo_cif.yuv", (352, 288), None),
        ("clip.yuv", None, None),
        ("clip_30.yuv", None, None),
        ("x_64x48_420_30.yuv", (64, 48), Fraction(30)),  # 420 is the chroma format, not 420 fps
        ("y_640x480_30000-1001.yuv", (640, 480), NTSC),  # the fraction bar written as a dash
        ("z_352x288_25_8bit.yuv", (352, 288), Fraction(25)),
        # ordinary words that look like formats or fractions are neither refused nor misread
        ("take_2b_352x288_25.yuv", (352, 288), Fraction(25)),
        ("room_444_352x288_25.yuv", (352, 288), Fraction(25)),
        ("clip_400_352x288_25.yuv", (352, 288), Fraction(25)),
        ("seq_64x64_25_1001.yuv", (64, 64), Fraction(25)),
    ],
)
def test_parse_raw_name(name, size, fps):
    assert parse_raw_name(Path("/some/dir") / name) == (size, fps)


@pytest.mark.parametrize(
    "name, said",
    [
        ("a_64x64_25Hz_10bit_P420.yuv", "10-bit"),
        ("a_64x64_25Hz_8bit_P444.yuv", "4:4:4"),
        ("EBULupo_1920x1080_50_12bit_P422.yuv", "12-bit 4:2:2"),
        ("EBULupo_1920x1080_50_10b_444.yuv", "10-bit 4:4:4"),  # JVET's words, after the size
        ("seq_1920x1080_25fps_422.yuv", "4:2:2"),
        ("seq_1920x1080_25_yuv444.yuv", "yuv444"),
        ("c_64x64_yuv420p10le.yuv", "yuv420p10le"),
    ],
)
def test_a_raw_name_that_says_another_format_is_refused(tmp_path, name, said):
    # Raw bytes carry no format: read as 8-bit I420, a 10-bit or 4:4:4 file would be coded as noise, silently.
    path = tmp_path / name
    path.write_bytes(bytes(64 * 64 * 3 // 2 * 4))
    with pytest.raises(VcsError, match=f"its name says {said}, but raw .yuv input is read as 8-bit YUV 4:2:0"):
        open_video(path)


# ------------------------------------------------------------------------------------ reading errors


def expect(match: str):
    return pytest.raises(VcsError, match=match)


def test_missing_file(tmp_path):
    with expect("no such file"):
        open_video(tmp_path / "gone.mp4")


def test_not_a_video(tmp_path):
    path = tmp_path / "fake.mp4"
    path.write_bytes(b"hello, this is not a video\n" * 20)
    with expect("not a video"):
        open_video(path)


@pytest.mark.parametrize("name", ["clip.mp4", "clip.y4m", "clip_64x48_25.yuv", "clip.yuv"])
def test_empty_file_is_named_as_such(tmp_path, name):
    """An empty file says so (FFmpeg alone says "Invalid argument"), before a raw file's missing size."""
    path = tmp_path / name
    path.write_bytes(b"")
    with expect(f"^{path} is empty$"):
        open_video(path)


def test_no_video_stream(tmp_path):
    path = tmp_path / "sound.wav"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode()]:
            out.mux(packet)
    with expect("no video stream"):
        open_video(path)


def test_raw_yuv_without_size(tmp_path):
    path = tmp_path / "clip.yuv"
    path.write_bytes(bytes(99 * 61 * 3 // 2))
    with expect("--size WxH and --fps are needed for raw .yuv"):
        open_video(path)
    with expect("clip.yuv: --fps is needed for raw .yuv"):
        open_video(tmp_path / "clip.yuv", size=(99, 61))  # the rate is needed too
    with expect("clip.yuv: --size WxH is needed for raw .yuv"):
        open_video(tmp_path / "clip.yuv", fps=25)
    named = tmp_path / "clip_cif.yuv"
    named.write_bytes(bytes(352 * 288 * 3 // 2))
    with expect("clip_cif.yuv: --fps is needed"):
        open_video(named)


def test_raw_yuv_size_not_a_multiple(tmp_path):
    path = tmp_path / "clip_100x60_25.yuv"
    path.write_bytes(bytes(2 * 9000 + 17))
    with expect(r"not a multiple of the 100x60 .* \(9000 bytes\)"):
        open_video(path)


@pytest.mark.parametrize("cut", [1, 9000, 9004])
def test_truncated_y4m_reads_its_whole_frames_and_says_what_is_left_out(tmp_path, noise_clip, cut):
    """FFmpeg drops a partial last frame without a word; the reader counts it and `truncation_warning` names it."""
    frames = noise_clip(3, 100, 60, seed=cut)
    whole = tmp_path / "whole.y4m"
    write(whole, frames)
    info, _ = read(whole)
    assert (info.frame_count, info.trailing_bytes, info.truncation_warning(whole)) == (3, 0, None)
    cut_path = tmp_path / "cut.y4m"
    cut_path.write_bytes(whole.read_bytes()[:-cut])
    info, back = read(cut_path)
    trailing = 9006 - cut  # one frame is "FRAME\n" and 9000 bytes of YUV 4:2:0 at 100x60
    assert (info.frame_count, info.trailing_bytes) == (2, trailing)
    assert_same(frames[:2], back)
    assert (
        info.truncation_warning(cut_path)
        == f"{cut_path} ends in a partial frame ({trailing} bytes; truncated?): it is left out"
    )


@pytest.mark.parametrize(
    ("field", "said"),
    [
        ("W0", "W0 is not a picture width"),
        ("W-64", "W-64 is not a picture width"),
        ("W3000000", "a 3000000x60 picture is larger than FFmpeg reads"),
        ("", "no W (the picture width)"),
        ("F0:0", "F0:0 is not a frame rate (--fps gives one)"),
        ("F-30:1", "F-30:1 is not a frame rate"),
        ("Fabc", "Fabc is not a frame rate"),
    ],
)
def test_a_bad_y4m_header_field_is_named(tmp_path, noise_clip, field, said):
    """FFmpeg reports a bad W or H as an unrelated errno and reads a bad F as 25 frames/s without a word; the reader
    names the field. A bad F is read at --fps when one is given."""
    good = tmp_path / "good.y4m"
    write(good, noise_clip(2, 100, 60))
    header, body = good.read_bytes().split(b"\n", 1)
    tokens = [t for t in header.split() if t[:1] != field[:1].encode() or not field]
    if field:
        tokens.append(field.encode())
    else:
        tokens = [t for t in tokens if t[:1] != b"W"]
    bad = tmp_path / "bad.y4m"
    bad.write_bytes(b" ".join(tokens) + b"\n" + body)
    with expect(re.escape(f"{bad}: bad Y4M header: {said}")):
        open_video(bad)
    if field.startswith("F"):
        info, frames = read(bad, fps=30)
        assert info.fps == 30 and len(frames) == 2
    bad.write_bytes(header + b" X" * 3000 + b"\n" + body)  # FFmpeg: "Invalid argument"
    with expect(re.escape(f"{bad}: bad Y4M header: no end of line in its first 4096 bytes")):
        open_video(bad)


# ------------------------------------------------------------------------------------ writing safety


def test_a_folder_as_the_output_is_named_a_folder(tmp_path):
    """Not "cannot write files without an extension": a folder, existing or written with a trailing slash."""
    for path in (tmp_path, f"{tmp_path}/new/"):
        with expect(f"{re.escape(str(path))} is a folder: name a file in it"):
            open_writer(path, 64, 48, Fraction(25))
    assert [p.name for p in tmp_path.iterdir()] == []


def test_unknown_extension(tmp_path):
    with expect(r"supported: \.y4m, \.yuv, \.mp4, \.mkv, \.avi"):
        open_writer(tmp_path / "out.gif", 64, 48, Fraction(25))
    assert no_files_left(tmp_path)


def test_missing_output_folder(tmp_path):
    with expect(f"output folder {tmp_path / 'nope'} does not exist"):
        open_writer(tmp_path / "nope" / "out.y4m", 64, 48, Fraction(25))
    (tmp_path / "afile").write_text("x")
    with expect("is not a folder"):
        open_writer(tmp_path / "afile" / "out.y4m", 64, 48, Fraction(25))


def test_unwritable_output_folder(tmp_path, monkeypatch):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):  # root ignores permissions: make the check see what a user would
            monkeypatch.setattr(io.os, "access", lambda p, mode: Path(p) != folder)
        with expect(f"output folder {folder} is not writable"):
            open_writer(folder / "out.y4m", 64, 48, Fraction(25))
    finally:
        folder.chmod(0o700)


def test_existing_output_needs_force(tmp_path, noise_clip):
    path = tmp_path / "out.y4m"
    path.write_bytes(b"precious")
    with expect("already exists"):
        open_writer(path, 64, 48, Fraction(25))
    assert path.read_bytes() == b"precious"
    frames = noise_clip(2, 64, 48)
    write(path, frames, force=True)
    assert_same(frames, read(path)[1])


def test_output_appears_only_on_close(tmp_path, noise_clip):
    path = tmp_path / "out.mp4"
    writer = open_writer(path, 64, 48, Fraction(25))
    writer.write(noise_clip(1, 64, 48)[0])
    temps = list(tmp_path.iterdir())
    assert temps == [tmp_path / f"out.mp4.tmp-{os.getpid()}.mp4"] and not path.exists()
    writer.close()
    assert list(tmp_path.iterdir()) == [path]
    writer.close()  # a second close does nothing


def test_abort_leaves_no_file(tmp_path, noise_clip):
    writer = open_writer(tmp_path / "out.y4m", 64, 48, Fraction(25))
    for f in noise_clip(3, 64, 48):
        writer.write(f)
    writer.abort()
    assert no_files_left(tmp_path)
    writer.close()  # nothing to finish after abort
    assert no_files_left(tmp_path)


def test_exception_in_with_block_keeps_old_target(tmp_path, noise_clip):
    path = tmp_path / "out.mkv"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"):
        with open_writer(path, 64, 48, Fraction(25), force=True) as writer:
            writer.write(noise_clip(1, 64, 48)[0])
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == [path] and path.read_bytes() == b"old"


def test_dropped_writer_cleans_up(tmp_path, noise_clip):
    writer = open_writer(tmp_path / "out.y4m", 64, 48, Fraction(25))
    writer.write(noise_clip(1, 64, 48)[0])
    del writer  # refcounting runs the finalizer now
    assert no_files_left(tmp_path)


def test_bad_frames_and_empty_output_leave_nothing(tmp_path, noise_clip):
    writer = open_writer(tmp_path / "out.y4m", 64, 48, Fraction(25))
    with expect("do not fit"):
        writer.write(noise_clip(1, 64, 50)[0])
    assert no_files_left(tmp_path)
    with expect("no frames"):
        with open_writer(tmp_path / "empty.y4m", 64, 48, Fraction(25)):
            pass
    assert no_files_left(tmp_path)


# ------------------------------------------------------------------------------------ sample clips


def test_camera_pan_is_smooth_bt601_video():
    clip = camera_pan(6, 99, 61, seed=1)
    assert len(clip) == 6
    for f in clip:
        assert f.y.shape == (61, 99) and f.u.shape == f.v.shape == (31, 50)
        assert f.y.dtype == np.uint8 and 16 <= f.y.min() and f.y.max() <= 235
        assert 16 <= f.u.min() and f.v.max() <= 240
    steps = [psnr(a.y, b.y) for a, b in zip(clip[:-1], clip[1:], strict=True)]
    assert all(15 < s < 60 for s in steps), steps  # it moves, but a little at a time
    assert_same(clip, camera_pan(6, 99, 61, seed=1))
    assert not np.array_equal(clip[0].y, camera_pan(1, 99, 61, seed=2)[0].y)


def test_gray_clip_and_write_clip(tmp_path):
    clip = gray_clip(2, 64, 48, image="chelsea")
    assert all(np.all(f.u == 128) and np.all(f.v == 128) for f in clip)
    assert write_clip(tmp_path / "g.y4m", clip, 25) == "rawvideo"
    assert_same(clip, read(tmp_path / "g.y4m")[1])
    with expect("unknown sample image"):
        camera_pan(1, 8, 8, image="nope")


@pytest.mark.parametrize(
    "value, rate",
    [
        (25, Fraction(25)),
        ("30", Fraction(30)),
        ("29.97", NTSC),
        (29.97, NTSC),
        ("23.976", Fraction(24000, 1001)),
        ("59.94", Fraction(60000, 1001)),
        ("30000:1001", NTSC),
        ("12.5", Fraction(25, 2)),
        (Fraction(2997, 100), Fraction(2997, 100)),  # an exact Fraction is taken as given
        ("0.0000001", Fraction(1, 10_000_000)),  # near 0·1000/1001, which is no NTSC rate
        ("2147483647/2", Fraction(2147483647, 2)),  # FFmpeg's largest term
    ],
)
def test_parse_fps(value, rate):
    assert parse_fps(value) == rate


@pytest.mark.parametrize("value", ["0", "-3", "fast", "1/0", "2147483648", "1/4294967295", "1e12"])
def test_parse_fps_rejects(value):
    with expect("frame rate"):
        parse_fps(value)


def _write_png(path: Path, y: np.ndarray) -> None:
    """A grey PNG through PyAV directly (FFmpeg reads grey PNGs back as luma, unchanged)."""
    with av.open(str(path), "w", format="image2") as out:
        stream = out.add_stream("png")
        stream.width, stream.height, stream.pix_fmt = y.shape[1], y.shape[0], "gray"
        for packet in [*stream.encode(av.VideoFrame.from_ndarray(y, format="gray")), *stream.encode()]:
            out.mux(packet)


def test_numbered_pictures_read_as_a_video(tmp_path):
    frames = gray_clip(6, 40, 24, seed=3)
    for number, frame in zip((7, 8, 9, 10, 12, 13), frames, strict=True):  # 11 is missing: the run ends at 10
        _write_png(tmp_path / f"shot_{number:03d}.png", frame.y)
    (tmp_path / "shot_0011.png").write_bytes(b"")  # "%03d" prints 11 as 011: not the missing picture
    pattern = tmp_path / "shot_%03d.png"
    assert io.image_sequence(pattern) == (7, 4)
    with open_video(pattern) as reader:
        assert (reader.info.frame_count, reader.info.fps) == (4, Fraction(25))
        back = list(reader)
        said = "shot_011.png is missing, so 2 more pictures after it are left out"
        assert said in reader.gap_warning() and reader.notices() == [reader.gap_warning()]
    assert len(back) == 4 and all(np.array_equal(a.y, b.y) for a, b in zip(back, frames[:4], strict=True))
    with open_video(pattern, start=2) as reader:  # as ffmpeg's -start_number 9
        assert reader.info.frame_count == 2
        assert all(np.array_equal(a.y, b.y) for a, b in zip(reader, frames[2:4], strict=True))
    with pytest.raises(VcsError, match=r"--start 4 is outside .*shot_%03d.png, which has 4 frames"):
        open_video(pattern, start=4)
    with open_video(pattern, fps="30000/1001") as reader:
        assert reader.info.fps == Fraction(30000, 1001)
    assert io.image_sequence(tmp_path / "shot_%d.png") is None  # %d prints 7, not 007: no file matches
    with pytest.raises(VcsError, match="no numbered picture matches it"):
        open_video(tmp_path / "shot_%d.png")
    assert io.image_sequence(tmp_path / "shot_%03d_%03d.png") is None  # two counters: not a sequence
    with pytest.raises(VcsError, match=r"no such file \(numbered pictures: one %d or %0Nd, and %% for a %\)"):
        open_video(tmp_path / "50%_shot_%03d.png")  # a lone %
    with open_video(tmp_path / "shot_%3d.png") as reader:  # FFmpeg pads %3d with zeros
        assert reader.info.frame_count == 4


def test_reading_from_a_start_takes_the_size_of_the_first_frame_read(tmp_path, pan_clip):
    """`--start` reads from that frame, as ffmpeg's -start_number or -ss would: its size is the first frame read's
    (here a portrait photo among landscape ones), and a later frame of another size is named by its own number."""
    landscape = [f.y for f in gray_clip(4, 64, 32, seed=5)]
    portrait = gray_clip(1, 32, 64, seed=6)[0].y
    for number, y in enumerate([landscape[0], landscape[1], portrait, landscape[3]]):
        _write_png(tmp_path / f"p_{number}.png", y)
    with open_video(tmp_path / "p_%d.png", start=2) as reader:
        assert (reader.info.width, reader.info.height, reader.info.frame_count) == (32, 64, 2)
        first, second = list(reader)
        assert reader.rescaled == [(3, 64, 32)]
    assert np.array_equal(first.y, portrait) and second.y.shape == (64, 32)
    with open_video(tmp_path / "p_%d.png", start=3) as reader:
        assert (reader.info.width, reader.info.height) == (64, 32) and len(list(reader)) == 1 and not reader.rescaled
    # a video: the frames before the start are decoded and dropped
    clip = pan_clip(5, 64, 32)
    write(tmp_path / "c.y4m", clip)
    info, back = read(tmp_path / "c.y4m", start=3)
    assert info.frame_count == 2 and all(np.array_equal(a.y, b.y) for a, b in zip(back, clip[3:], strict=True))
    with pytest.raises(VcsError, match="--start 5 is outside .*c.y4m, which has 5 frames"):
        read(tmp_path / "c.y4m", start=5)
    with pytest.raises(VcsError, match="--start must be 0 or more"):
        read(tmp_path / "c.y4m", start=-1)


def test_a_damaged_picture_ffmpeg_decodes_anyway_is_said(tmp_path, pan_clip, use_tiny_weights):
    """FFmpeg conceals what it cannot decode (a cut JPEG is padded) and says so only on its log, which PyAV
    silences: encode names the file, the frame and FFmpeg's reason instead of coding it without a word."""
    from PIL import Image

    from vcscodec.codec import encode_file

    for number, frame in enumerate(pan_clip(3, 64, 48)):
        Image.fromarray(frame.y).save(tmp_path / f"j_{number}.jpg", quality=95)
    with open_video(tmp_path / "j_%d.jpg") as reader:
        list(reader)
        assert reader.damage_warning() is None
    whole = (tmp_path / "j_1.jpg").read_bytes()
    (tmp_path / "j_1.jpg").write_bytes(whole[: len(whole) // 2])
    for _ in range(2):  # the same errors again (PyAV's filter of repeated lines would have hidden them)
        report = encode_file(tmp_path / "j_%d.jpg", tmp_path / "j.vcs", force=True)
        said = [w for w in report.warnings if "is damaged" in w]
        assert len(said) == 1 and "the first at frame 1 (j_1.jpg)" in said[0] and said[0].endswith("coded as decoded")
        assert report.frames == 3
    with open_video(tmp_path / "j_%d.jpg", start=1) as reader:
        list(reader)
        assert "the first at frame 1 (j_1.jpg)" in reader.damage_warning()
    assert av.logging.get_level() is None and av.logging.get_skip_repeated()  # FFmpeg's log as PyAV had it


def test_a_rate_rounded_by_millisecond_timestamps_reads_as_the_standard_one(tmp_path, pan_clip):
    """MKV keeps times in milliseconds: 59.94 fps comes back from FFmpeg as 19001/317, and a .vcs header or a
    written video would carry that; it is read as 60000/1001. A rate far from any standard one stays as it is."""
    frames = pan_clip(3, 64, 32)
    for rate in (Fraction(60000, 1001), Fraction(24000, 1001), Fraction(25), Fraction(37, 3)):
        path = tmp_path / "clip.mkv"
        write(path, frames, fps=rate, force=True)
        with av.open(str(path)) as container:
            stored = container.streams.video[0].average_rate
        if rate == Fraction(60000, 1001):
            assert stored != rate  # what FFmpeg reads back is rounded: the case this is about
        info, _ = read(path)
        assert info.fps == rate, (rate, stored, info.fps)


def test_an_interlaced_source_is_said(tmp_path, pan_clip):
    """Interlaced frames (a Y4M header's "It") are coded whole, both fields together: said, since motion combs
    them; progressive ones ("Ip", or no flag) are not."""
    frames = pan_clip(3, 64, 32)
    path = tmp_path / "clip.y4m"
    write(path, frames)
    progressive = path.read_bytes()
    header, rest = progressive.split(b"\n", 1)
    for flag, said in ((b" Ip", False), (b" It", True)):
        fields = [f for f in header.split(b" ") if not f.startswith(b"I")]
        path.write_bytes(b" ".join(fields) + flag + b"\n" + rest)
        with open_video(path) as reader:
            assert len(list(reader)) == 3
            warning = reader.interlace_warning()
        assert (warning is not None) is said, (flag, warning)
    assert "is interlaced (3 frames): coded as whole frames" in warning


def test_a_variable_frame_rate_is_said(tmp_path, pan_clip):
    """A .vcs file has one rate: a video whose frames are unevenly spaced (a phone's variable rate, a GIF's own
    delays) is coded at a constant one, and the reader says so; an even rate, rounded to MKV's milliseconds, is not
    taken for a variable one."""
    frames = pan_clip(6, 64, 32)
    steady, uneven = tmp_path / "steady.mkv", tmp_path / "uneven.mkv"
    write(steady, frames)  # 30000/1001 fps: 33 and 34 ms apart
    with av.open(str(uneven), "w") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        for frame, ms in zip(frames, (0, 40, 80, 280, 320, 360), strict=True):
            planes = np.concatenate([frame.y.ravel(), frame.u.ravel(), frame.v.ravel()]).reshape(48, 64)
            picture = av.VideoFrame.from_ndarray(planes, format="yuv420p")
            picture.pts, picture.time_base = ms, Fraction(1, 1000)
            out.mux(stream.encode(picture))
        out.mux(stream.encode())
    with open_video(steady) as reader:
        assert len(list(reader)) == 6 and reader.frame_rate_warning() is None
    with open_video(uneven) as reader:
        assert len(list(reader)) == 6
        said = reader.frame_rate_warning()
    assert said and "variable frame rate (frames 40 to 200 ms apart)" in said and "constant" in said


def test_a_finer_picture_later_in_a_sequence_is_said(tmp_path, pan_clip, use_tiny_weights):
    """What 4:2:0 loses is said for any picture read, not the first alone: a 4:4:4 JPEG among 4:2:0 ones."""
    from PIL import Image

    from vcscodec.codec import encode_file

    for number, frame in enumerate(pan_clip(3, 64, 48)):
        rgb = np.stack([frame.y, frame.y[::-1], frame.y[:, ::-1]], axis=-1)
        Image.fromarray(rgb).save(tmp_path / f"m_{number}.jpg", quality=95, subsampling=0 if number == 1 else 2)
    warnings = encode_file(tmp_path / "m_%d.jpg", tmp_path / "m.vcs").warnings
    assert [w for w in warnings if "chroma subsampled to 4:2:0" in w] == [
        f"{tmp_path / 'm_%d.jpg'}: the source is yuvj444p: chroma subsampled to 4:2:0"
    ]
    assert not [w for w in encode_file(tmp_path / "m_0.jpg", tmp_path / "m0.vcs").warnings if "subsampled" in w]


def test_encode_numbered_pictures(tmp_path, use_tiny_weights):
    from typer.testing import CliRunner

    from vcscodec.cli import app
    from vcscodec.container import read_header

    for number, frame in enumerate(gray_clip(9, 64, 32, seed=4)):
        _write_png(tmp_path / f"f{number}.png", frame.y)
    result = CliRunner().invoke(app, ["encode", str(tmp_path / "f%d.png"), str(tmp_path / "s.vcs"), "--fps", "12"])
    assert result.exit_code == 0, result.output
    header = read_header(tmp_path / "s.vcs")
    assert (header.frame_count, header.width, header.height, header.fps_num, header.fps_den) == (9, 64, 32, 12, 1)


def test_pictures_that_change_size_are_scaled_and_said(tmp_path, use_tiny_weights):
    """A sequence whose pictures change size (64x48, then 32x32) reads at the first size, as FFmpeg scales it;
    the encoder says so in a warning and `vcs compare` refuses to score such frames."""
    from vcscodec.codec import encode_file
    from vcscodec.quality import score_videos

    sizes = [(64, 48), (32, 32), (64, 48), (32, 32)]
    for number, (w, h) in enumerate(sizes):
        _write_png(tmp_path / f"f{number}.png", gray_clip(1, w, h, seed=number)[0].y)
    pattern = tmp_path / "f%d.png"
    with open_video(pattern) as reader:
        back = list(reader)
        warning = reader.rescale_warning()
    assert [f.y.shape for f in back] == [(48, 64)] * 4
    assert warning == f"{pattern}: 2 frames of another size than the first (frame 1 is 32x32) scaled to 64x48"
    report = encode_file(pattern, tmp_path / "s.vcs", ratio=0.1)
    assert warning in report.warnings
    with expect(r"frame 1 is 32x32, not 64x48 like the first: frames that change size cannot be scored"):
        score_videos(pattern, pattern)
    with open_video(tmp_path / "f0.png") as reader:  # one size throughout: no warning
        list(reader)
        assert reader.rescale_warning() is None


def test_numbered_png_pictures_written_and_read_back(tmp_path, pan_clip):
    grey = gray_clip(4, 40, 24, seed=5)
    pattern = tmp_path / "g_%03d.png"
    with open_writer(pattern, 40, 24, 25, first_number=10) as writer:
        assert isinstance(writer, io.PictureWriter)
        for frame in grey:
            writer.write(frame)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g_010.png", "g_011.png", "g_012.png", "g_013.png"]
    with open_video(pattern) as reader:  # a grey frame is a grey PNG of its luma: bit-exact
        assert all(np.array_equal(a.y, b.y) for a, b in zip(reader, grey, strict=True))
    colour = pan_clip(2, 40, 24)
    with open_writer(tmp_path / "c_%d.png", 40, 24, 25) as writer:
        for frame in colour:
            writer.write(frame)
    with open_video(tmp_path / "c_%d.png") as reader:  # RGB PNGs: the colour survives, within conversion error
        back = list(reader)
    assert len(back) == 2
    assert all(psnr(a.y, b.y) > 35 and psnr(a.u, b.u) > 30 for a, b in zip(back, colour, strict=True))


def test_one_png_picture(tmp_path):
    """A .png name without a counter takes one frame (FFmpeg's ``-frames:v 1 x.png``), bit-exact for grey; more
    frames are refused, at once when their number is known, and nothing is left behind."""
    frames = gray_clip(2, 40, 24, seed=3)
    with open_writer(tmp_path / "still.png", 40, 24, 25, frames=1) as writer:
        writer.write(frames[0])
    with open_video(tmp_path / "still.png") as reader:
        (back,) = list(reader)
    assert np.array_equal(back.y, frames[0].y)
    with pytest.raises(VcsError, match=r"two.png holds one picture, not 2 frames: .*f_%04d.png.*--frames 1"):
        open_writer(tmp_path / "two.png", 40, 24, 25, frames=2)
    with pytest.raises(VcsError, match=r"two.png holds one picture, not more than one frame"):
        with open_writer(tmp_path / "two.png", 40, 24, 25) as writer:  # count not known: the second write stops
            writer.write(frames[0])
            writer.write(frames[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["still.png"]
    with pytest.raises(VcsError, match="still.png already exists"):
        open_writer(tmp_path / "still.png", 40, 24, 25)


def test_full_range_rgb_is_read_as_limited_range_yuv(tmp_path):
    """An RGB picture (full range) becomes limited-range YUV: black 16, white 235, grey 128 stays neutral."""
    rgb = np.zeros((16, 48, 3), np.uint8)
    rgb[:, 16:32] = 255
    rgb[:, 32:] = 128
    with av.open(str(tmp_path / "rgb.png"), "w", format="image2") as out:
        stream = out.add_stream("png")
        stream.width, stream.height, stream.pix_fmt = 48, 16, "rgb24"
        for packet in [*stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")), *stream.encode()]:
            out.mux(packet)
    with open_video(tmp_path / "rgb.png") as reader:
        (frame,) = list(reader)
    assert abs(int(frame.y[0, 0]) - 16) <= 1 and abs(int(frame.y[0, 20]) - 235) <= 1
    assert abs(int(frame.y[0, 40]) - 126) <= 2  # 16 + 128·219/255
    assert np.abs(frame.u.astype(int) - 128).max() <= 1 and np.abs(frame.v.astype(int) - 128).max() <= 1


def test_numbered_png_pictures_all_or_nothing(tmp_path):
    frames = gray_clip(3, 32, 16)
    pattern = tmp_path / "f_%02d.png"
    with pytest.raises(RuntimeError), open_writer(pattern, 32, 16, 25) as writer:
        writer.write(frames[0])
        raise RuntimeError("the decoder failed")
    assert list(tmp_path.iterdir()) == []  # no picture, no temporary folder
    (tmp_path / "f_00.png").write_bytes(b"old")
    with pytest.raises(VcsError, match="f_00.png already exists"):
        open_writer(pattern, 32, 16, 25)
    (tmp_path / "f_01.png").write_bytes(b"old")
    with pytest.raises(VcsError, match="f_01.png already exists"):
        with open_writer(tmp_path / "f_%02d.png", 32, 16, 25, first_number=1) as writer:
            writer.write(frames[0])
            writer.write(frames[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f_00.png", "f_01.png"]
    with open_writer(pattern, 32, 16, 25, force=True) as writer:
        for frame in frames:
            writer.write(frame)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f_00.png", "f_01.png", "f_02.png"]
    assert (tmp_path / "f_00.png").read_bytes() != b"old"
    with pytest.raises(VcsError, match="one %d or %0Nd"):
        open_writer(tmp_path / "f_%d_%d.png", 32, 16, 25)
    with pytest.raises(VcsError, match="no frames to write"):
        with open_writer(tmp_path / "e_%d.png", 32, 16, 25):
            pass
    assert not any(p.name.startswith(("e_", ".e_")) for p in tmp_path.iterdir())


def test_a_writer_refuses_what_ffmpeg_cannot_take_and_leaves_nothing(tmp_path: Path) -> None:
    """A rate whose terms pass a C int (a .vcs header holds u32) or a frame FFmpeg will not allocate: one line when
    the writer opens, and no temporary file beside the output (the rate's failure left one)."""
    out = tmp_path / "o.y4m"
    with expect("beyond what FFmpeg carries"):
        open_writer(out, 64, 48, Fraction(4294967295))
    for width, height in ((2064761, 2), (16256, 16256)):  # (w + 128)·(h + 128) reaching INT_MAX / 8
        for name in ("o.mp4", "f_%04d.png"):
            with expect("larger than FFmpeg's writers take"):
                open_writer(tmp_path / name, width, height, 25)
    assert list(tmp_path.iterdir()) == []
    with open_writer(out, 2064760, 2, 25) as writer:  # the largest FFmpeg takes at that height
        writer.write(Frame(np.zeros((2, 2064760), np.uint8), *[np.zeros((1, 1032380), np.uint8)] * 2))
    assert out.stat().st_size > 2064760 * 3 and [p.name for p in tmp_path.iterdir()] == ["o.y4m"]


def test_a_named_pipe_or_device_as_the_output_is_refused_even_with_force(tmp_path: Path) -> None:
    """The finished output is renamed onto its name: over a named pipe that would leave the pipe's reader waiting
    and a plain file in its place. Streams go through standard output (`-`)."""
    import os

    pipe = tmp_path / "p.y4m"
    os.mkfifo(pipe)
    for force in (False, True):
        with expect("p.y4m is a named pipe: write to - and redirect it"):
            open_writer(pipe, 64, 48, 25, force=force)
    assert pipe.is_fifo() and [p.name for p in tmp_path.iterdir()] == ["p.y4m"]
    os.mkfifo(tmp_path / "f_00.png")  # pictures too, a single one or the first of numbered ones
    for name in ("f_00.png", "f_%02d.png"):
        with expect("f_00.png is a named pipe"):
            open_writer(tmp_path / name, 64, 48, 25, force=True)
