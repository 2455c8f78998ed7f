"""vcscodec.codec end to end with the tiny models: every input and output format, frame counts, sizes, rates,
picture quality, grey and colour, streaming decode and repeatability."""

from __future__ import annotations

import math
import shutil
import weakref
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from vcscodec.codec import decode_file, decode_records, encode_file, pick_device
from vcscodec.container import ContainerReader, GopRecord, read_header
from vcscodec.errors import VcsError
from vcscodec.io import Frame, open_video
from vcscodec.metrics import psnr
from vcscodec.registry import default_model, derive_model, find_model
from vcscodec.samples import gray_clip, write_clip

NTSC = Fraction(30000, 1001)

# Mean luma / worst chroma PSNR (dB) of the tiny DCT models (αn = 0.1, untrained) on the astronaut pans of
# ROUND_TRIPS, measured: 1 frame (a keyframe, 50 % of the samples) 28.9-29.2 / 41.2-42.5; 9 frames (7
# non-keyframes at 10 %, rebuilt across a fast pan) 21.9-22.0 / 32.4-33.6; 20 frames 24.2-24.3 / 40.1-41.4.
# An MP4/MKV/AVI at either end costs up to 1.2 dB of chroma. The thresholds sit about 3 dB below the lowest.
MIN_LUMA = {1: 26.0, 9: 19.0, 20: 21.0}
MIN_CHROMA = {1: 38.0, 9: 29.5, 20: 37.0}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The CPUs are shared: one torch thread decodes these small clips fastest and keeps timings stable."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def read(path: Path, **kw) -> tuple:
    with open_video(path, **kw) as reader:
        return reader.info, list(reader)


def mean_psnr(a: list[Frame], b: list[Frame], plane: str) -> float:
    return float(np.mean([psnr(getattr(x, plane), getattr(y, plane)) for x, y in zip(a, b, strict=True)]))


def only_files(folder: Path, *names: str) -> bool:
    """The folder holds exactly these files (no temporary file left over)."""
    return sorted(p.name for p in folder.iterdir()) == sorted(names)


# (input kind, output extension, frames, width, height)
ROUND_TRIPS = [
    ("y4m", ".y4m", 1, 100, 60),
    ("y4m", ".y4m", 9, 99, 61),
    ("y4m", ".yuv", 20, 100, 60),
    ("yuv-name", ".y4m", 9, 100, 60),
    ("yuv-args", ".yuv", 20, 99, 61),
    ("yuv-name", ".mp4", 1, 99, 61),
    ("mp4", ".mp4", 9, 100, 60),
    ("mp4", ".y4m", 20, 99, 61),
    ("mkv", ".mkv", 9, 100, 60),
    ("avi", ".avi", 9, 99, 61),
]


@pytest.mark.parametrize(
    "kind, out_ext, n, w, h", ROUND_TRIPS, ids=[f"{k}{e}-{n}f-{w}x{h}" for k, e, n, w, h in ROUND_TRIPS]
)
def test_round_trip(tmp_path, use_tiny_weights, pan_clip, kind, out_ext, n, w, h):
    frames = pan_clip(n, w, h, seed=n)
    fps = NTSC if kind in ("y4m", "yuv-name") else Fraction(25)
    size = fps_arg = None
    if kind == "yuv-name":
        src = tmp_path / f"clip_{w}x{h}_29.97fps.yuv"
    elif kind == "yuv-args":
        src, size, fps_arg = tmp_path / "clip.yuv", (w, h), fps
    else:
        src = tmp_path / f"clip.{kind}"
    write_clip(src, frames, fps=fps)
    vcs = tmp_path / "clip.vcs"
    report = encode_file(src, vcs, size=size, fps=fps_arg)
    assert (report.frames, report.width, report.height, report.chroma) == (n, w, h, "yuv420")
    header = read_header(vcs)
    assert (header.width, header.height, header.frame_count, header.fps) == (w, h, n, fps)
    assert report.bits_per_pixel == pytest.approx(vcs.stat().st_size * 8 / (w * h * n))

    out = tmp_path / f"out_{w}x{h}{out_ext}"
    decoded = decode_file(vcs, out, device="cpu")
    assert decoded.frames == n
    info, back = read(out, fps=fps if out_ext == ".yuv" else None)
    assert (info.width, info.height, len(back)) == (w, h, n)
    if out_ext != ".yuv":  # raw video has no header: its rate is whatever the reader is told
        assert info.fps == fps
    if info.frame_count is not None:
        assert info.frame_count == n
    luma, chroma = mean_psnr(frames, back, "y"), min(mean_psnr(frames, back, "u"), mean_psnr(frames, back, "v"))
    assert luma > MIN_LUMA[n], (luma, chroma)
    assert chroma > MIN_CHROMA[n], (luma, chroma)
    assert only_files(tmp_path, src.name, vcs.name, out.name)


def test_frames_come_back_in_order(tmp_path, use_tiny_weights, pan_clip):
    """Each decoded keyframe is closest to its own source frame; every frame resembles its source."""
    frames = pan_clip(20, 100, 60, seed=5)
    src, vcs, out = tmp_path / "a.y4m", tmp_path / "a.vcs", tmp_path / "b.y4m"
    write_clip(src, frames, fps=25)
    encode_file(src, vcs)
    assert read_header(vcs).key_frames() == [0, 8, 16, 19]
    decode_file(vcs, out, device="cpu")
    back = read(out)[1]
    for i, f in enumerate(back):
        scores = [psnr(g.y, f.y) for g in frames]
        assert scores[i] > 17, (i, scores)
        if i in (0, 8, 16, 19):
            assert int(np.argmax(scores)) == i, (i, scores)


def test_a_part_reads_no_frame_past_its_end(tmp_path, use_tiny_weights):
    """`encode -n 2` decodes two frames, not three: what the reader says (here, interlaced frames) counts the frames
    coded, and a damaged frame after them cannot fail the encode."""
    src, vcs = tmp_path / "i.y4m", tmp_path / "i.vcs"
    write_clip(src, gray_clip(5, 64, 32), fps=25)
    header, rest = src.read_bytes().split(b"\n", 1)
    fields = [f for f in header.split(b" ") if not f.startswith(b"I")]
    src.write_bytes(b" ".join([*fields, b"It"]) + b"\n" + rest)
    for frames in (2, 4):
        report = encode_file(src, vcs, max_frames=frames, force=True)
        assert report.frames == frames
        assert any(f"is interlaced ({frames} frames)" in w for w in report.warnings), report.warnings
    frame_bytes = len(b"FRAME\n") + 64 * 32 * 3 // 2
    src.write_bytes(src.read_bytes()[: -2 * frame_bytes] + b"FRAMX\n")  # frame 3 damaged, frame 4 gone
    assert encode_file(src, vcs, max_frames=3, force=True).frames == 3


def test_grey_input_stays_exactly_grey(tmp_path, use_tiny_weights):
    frames = gray_clip(9, 99, 61)
    src, vcs = tmp_path / "grey.y4m", tmp_path / "grey.vcs"
    write_clip(src, frames, fps=25)
    report = encode_file(src, vcs)
    assert report.chroma == "gray" and report.warnings == []
    assert read_header(vcs).num_planes == 1
    for ext in (".y4m", ".mp4"):
        out = tmp_path / f"grey_out{ext}"
        decode_file(vcs, out, device="cpu")
        back = read(out)[1]
        assert len(back) == 9
        for f in back:
            assert f.u.shape == f.v.shape == (31, 50)
            assert np.all(f.u == 128) and np.all(f.v == 128)
        assert mean_psnr(frames, back, "y") > MIN_LUMA[9]


def test_colour_input_keeps_colour(tmp_path, use_tiny_weights, pan_clip):
    frames = pan_clip(9, 100, 60, seed=2)
    assert np.std(frames[0].u.astype(float)) > 5  # the astronaut picture has real colour
    src, vcs, out = tmp_path / "c.y4m", tmp_path / "c.vcs", tmp_path / "c_out.y4m"
    write_clip(src, frames, fps=25)
    assert encode_file(src, vcs).chroma == "yuv420"
    decode_file(vcs, out, device="cpu")
    back = read(out)[1]
    for plane in "uv":
        assert mean_psnr(frames, back, plane) > MIN_CHROMA[9]
        # the colour varies like the source's, not a flat grey
        src_std = np.std([getattr(f, plane).astype(float) for f in frames])
        out_std = np.std([getattr(f, plane).astype(float) for f in back])
        assert out_std > 0.7 * src_std
    # --chroma gray on purpose drops it, with a warning
    grey = tmp_path / "g.vcs"
    report = encode_file(src, grey, chroma="gray")
    assert report.chroma == "gray" and report.warnings and "colour" in report.warnings[0]


def test_colour_after_black_frames_stays_colour(tmp_path, use_tiny_weights, pan_clip, monkeypatch):
    """A fade-in: grey (black) frames first, colour after. `--chroma auto` reads ahead through the grey frames and
    codes colour; only when the grey frames fill its read-ahead does it code grey, and then it warns."""
    import vcscodec.codec as codec

    colour = pan_clip(9, 100, 60, seed=2)
    black = Frame(np.full((60, 100), 16, np.uint8), np.full((30, 50), 128, np.uint8), np.full((30, 50), 128, np.uint8))
    frames = [black] * 4 + colour[4:]
    src, vcs, out = tmp_path / "fade.y4m", tmp_path / "fade.vcs", tmp_path / "fade_out.y4m"
    write_clip(src, frames, fps=25)
    report = encode_file(src, vcs)
    assert report.chroma == "yuv420" and report.warnings == []
    decode_file(vcs, out, device="cpu")
    back = read(out)[1]
    assert np.std(back[8].u.astype(float)) > 0.7 * np.std(colour[8].u.astype(float))
    frame_bytes = 100 * 60 + 2 * 50 * 30
    monkeypatch.setattr(codec, "AUTO_CHROMA_LOOKAHEAD_BYTES", 3 * frame_bytes)  # room for three frames only
    report = encode_file(src, vcs, force=True)
    assert report.chroma == "gray" and "frame 4 has colour" in report.warnings[0]
    monkeypatch.setattr(codec, "AUTO_CHROMA_LOOKAHEAD_BYTES", 5 * frame_bytes)
    assert encode_file(src, vcs, force=True).chroma == "yuv420"


def test_ratio_001_model(tmp_path, use_tiny_weights, pan_clip):
    frames = pan_clip(9, 100, 60, seed=3)
    src, vcs, out = tmp_path / "a.y4m", tmp_path / "a.vcs", tmp_path / "b.y4m"
    write_clip(src, frames, fps=25)
    report = encode_file(src, vcs, ratio=0.01)
    assert read_header(vcs).m_n == 10 and report.model == default_model(0.01).name
    decode_file(vcs, out, device="cpu")
    back = read(out)[1]
    assert len(back) == 9
    assert psnr(frames[0].y, back[0].y) > MIN_LUMA[1]  # the keyframe is unaffected by αn
    assert mean_psnr(frames, back, "y") > 15


def test_frames_option_and_mkv_without_frame_count(tmp_path, use_tiny_weights, pan_clip):
    frames = pan_clip(12, 100, 60, seed=4)
    src = tmp_path / "a.mkv"  # Matroska does not state its frame count: the encoder counts first
    write_clip(src, frames, fps=25)
    assert open_video(src).info.frame_count is None
    vcs = tmp_path / "a.vcs"
    assert encode_file(src, vcs).frames == 12
    assert read_header(vcs).key_frames() == [0, 8, 11]
    assert encode_file(src, vcs, max_frames=5, force=True).frames == 5
    assert read_header(vcs).key_frames() == [0, 4]


class CountingReader:
    """A ContainerReader stand-in that records how many GopRecords are alive whenever a new one is read."""

    def __init__(self, reader: ContainerReader) -> None:
        self.reader, self.header = reader, reader.header
        self.alive: list[weakref.ref] = []
        self.peak = self.read = 0

    def records(self, first: int = 0):
        for record in self.reader.records(first):
            assert isinstance(record, GopRecord)
            self.alive = [r for r in self.alive if r() is not None] + [weakref.ref(record)]
            self.peak = max(self.peak, len(self.alive))
            self.read += 1
            yield record
            del record


@pytest.mark.parametrize("batch_gops", [1, 3])
def test_decode_holds_a_bounded_number_of_records(tmp_path, use_tiny_weights, noise_clip, batch_gops):
    n = 8 * 12 + 1  # 13 records of 64×32 pixels
    src, vcs = tmp_path / "long.y4m", tmp_path / "long.vcs"
    write_clip(src, noise_clip(n, 64, 32), fps=25)
    encode_file(src, vcs, chroma="gray")
    with ContainerReader(vcs) as reader:
        counting = CountingReader(reader)
        model = default_model(0.1).load("cpu")
        count = 0
        for frame in decode_records(counting, model, pick_device("cpu"), batch_gops=batch_gops):
            assert frame.y.shape == (32, 64)
            count += 1
            del frame
    assert count == n and counting.read == 13
    # at most ``batch_gops`` GOPs waiting plus the record that closes them (a decoder reading ahead would
    # hold all 13)
    assert counting.peak == batch_gops + 1, counting.peak


@pytest.fixture
def lin_decoder(tiny_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A copy of the tiny models plus the αn 0.1 one's decoder without the non-keyframe network (the shipped
    defaults' kind: the codec rebuilds each keyframe once), $VCS_WEIGHTS pointed at it; returns its name."""
    folder = tmp_path / "weights"
    shutil.copytree(tiny_weights, folder)
    monkeypatch.setenv("VCS_WEIGHTS", str(folder))
    return derive_model(default_model(0.1), "hitvcsnet-mhc2s-obmc-lin", "test").name


@pytest.mark.parametrize("decoder", ["whole network", "-lin"])
def test_a_range_of_frames_decodes_as_in_a_whole_decode(tmp_path, use_tiny_weights, pan_clip, request, decoder):
    """--start/--frames rebuild only the GOPs that hold the range, and their frames are the whole decode's: a GOP
    depends on its own measurements and its two keyframes alone. Bit for bit when both rebuild one GOP per network
    call; batched differently, floating-point rounding may move a pixel by a grey level or so
    (docs/performance.md), never a frame. 20 frames: GOPs 0-7, 8-15, 16-18 (a short one), then the final
    keyframe 19. A -lin decoder shares each keyframe between the chains on either side of it."""
    name = request.getfixturevalue("lin_decoder") if decoder == "-lin" else default_model(0.1).name
    src, vcs = tmp_path / "a.y4m", tmp_path / "a.vcs"
    write_clip(src, pan_clip(20, 70, 40), fps=25)
    encode_file(src, vcs, model=name)
    model, device = find_model(name).load("cpu"), pick_device("cpu")
    with ContainerReader(vcs) as reader:
        whole = list(decode_records(reader, model, device, batch_gops=1))
    assert len(whole) == 20
    for start, count, batch in ((5, 7, 1), (5, 7, 2), (8, 1, 2), (19, 1, 1), (17, None, 2), (0, 3, 2), (15, 2, 1)):
        with ContainerReader(vcs) as reader:
            counting = CountingReader(reader)
            part = list(decode_records(counting, model, device, batch, start=start, count=count))
        expected = whole[start : None if count is None else start + count]
        assert len(part) == len(expected), (start, count)
        for a, b in zip(part, expected, strict=True):
            for x, y in ((a.y, b.y), (a.u, b.u), (a.v, b.v)):
                diff = np.abs(x.astype(int) - y.astype(int))
                if batch == 1:
                    assert not diff.any(), (start, count)
                else:  # rounding at most, on few pixels: a wrong frame or GOP would differ everywhere
                    assert diff.max() <= 4 and diff.mean() < 0.05, (start, count, diff.max(), diff.mean())
        # records after the one that closes the range's last GOP are not read, and those before the range's first
        # GOP are passed by their prefixes
        last = (start + len(expected) - 1) // 8
        first = 3 if start == 19 else start // 8  # frame 19, the final keyframe, is record 3's alone
        assert counting.read == min(last + 2, 4) - first, (start, count, counting.read)
    with ContainerReader(vcs) as reader:
        wrong = ((20, None, "--start 20 is outside"), (-1, None, "--start must be 0 or more"))
        for start, count, message in wrong:
            with pytest.raises(VcsError, match=message):
                list(decode_records(reader, model, device, start=start, count=count))
    with ContainerReader(vcs) as reader:  # a count is a bound: past the end, the frames there are
        assert len(list(decode_records(reader, model, device, start=15, count=6))) == 5
    with ContainerReader(vcs) as reader:
        with pytest.raises(VcsError, match="--frames must be at least 1"):
            list(decode_records(reader, model, device, start=0, count=0))
    out = tmp_path / "part.y4m"
    assert decode_file(vcs, out, device="cpu", batch_gops=1, start=5, count=7).frames == 7
    _, back = read(out)
    assert all(np.array_equal(a.y, b.y) for a, b in zip(back, whole[5:12], strict=True))


def test_each_keyframe_is_rebuilt_once(tmp_path, lin_decoder, pan_clip, monkeypatch):
    """Without the non-keyframe network the rebuilt picture is all the GOPs on either side of a keyframe read of it,
    so a decode rebuilds each keyframe once, on its own: alike whatever the batch, and not again for the next chain
    or the final frame (chains of one GOP each rebuilt both of theirs: 7 here). A range rebuilds only its own."""
    from vcscodec.models import HITVCSNet

    src, vcs = tmp_path / "a.y4m", tmp_path / "a.vcs"
    write_clip(src, pan_clip(25, 64, 32), fps=25)  # keyframes 0, 8, 16, 24
    encode_file(src, vcs, model=lin_decoder, chroma="gray")
    rebuilt: list[int] = []
    network = HITVCSNet.keyframes_from_initial

    def counted(self, init_key, y_key, levels=None):
        rebuilt.append(len(y_key))
        return network(self, init_key, y_key, levels)

    monkeypatch.setattr(HITVCSNet, "keyframes_from_initial", counted)
    model, device = find_model(lin_decoder).load("cpu"), pick_device("cpu")
    runs = {}
    for label, batch, start, count in (("one", 1, 0, None), ("three", 3, 0, None), ("range", 1, 17, 8)):
        rebuilt.clear()
        with ContainerReader(vcs) as reader:
            runs[label] = list(decode_records(reader, model, device, batch, start=start, count=count))
        runs[label + " rebuilt"] = sum(rebuilt)
    assert runs["one rebuilt"] == runs["three rebuilt"] == 4 and runs["range rebuilt"] == 2  # GOP 16-23, keyframe 24
    assert all(np.array_equal(runs["one"][i].y, runs["three"][i].y) for i in (0, 8, 16, 24))
    assert all(np.array_equal(a.y, b.y) for a, b in zip(runs["range"], runs["one"][17:], strict=True))


def test_rebuilt_keyframes_are_taken_only_where_nothing_else_is_read(use_tiny_weights, lin_decoder):
    """`reconstruct(keyframes=…)` gives what rebuilding them inside gives, and is refused where the rest reads more
    of a keyframe than its picture (the non-keyframe network reads the keyframe network's features) or where the
    pictures do not fit the measurements."""
    import torch

    torch.manual_seed(0)
    lin, whole = find_model(lin_decoder).load("cpu"), default_model(0.1).load("cpu")
    frames = torch.rand(1, 9, 64, 96)
    keys, non = frames[:, [0, 8]], frames[:, 1:8]
    y_key, y_non = lin.measure_key(keys), lin.measure_non(non).unsqueeze(1)
    with torch.no_grad():
        alone = torch.cat([lin.reconstruct_keyframes(y_key[:, i]) for i in range(2)])
        given = lin.reconstruct(y_key, y_non, keyframes=alone)
        inside = lin.reconstruct(y_key, y_non)
        torch.testing.assert_close(given.key, inside.key, atol=1e-5, rtol=0)
        torch.testing.assert_close(given.non, inside.non, atol=1e-5, rtol=0)
        with pytest.raises(VcsError, match="only to a decoder"):
            whole.reconstruct(y_key, y_non, keyframes=alone)
        with pytest.raises(VcsError, match="do not fit"):
            lin.reconstruct(y_key, y_non, keyframes=alone[:1])


def test_two_decodes_give_identical_bytes(tmp_path, use_tiny_weights, pan_clip):
    src, vcs = tmp_path / "a.y4m", tmp_path / "a.vcs"
    write_clip(src, pan_clip(10, 99, 61), fps=25)
    encode_file(src, vcs)
    one, two = tmp_path / "one.y4m", tmp_path / "two.y4m"
    decode_file(vcs, one, device="cpu")
    decode_file(vcs, two, device="cpu", batch_gops=1)  # 10 frames: one GOP and the final keyframe, batched alike
    assert one.read_bytes() == two.read_bytes()
    two.write_bytes(b"old")
    decode_file(vcs, two, device="cpu", force=True)  # --force replaces an existing output
    assert one.read_bytes() == two.read_bytes()
    assert only_files(tmp_path, "a.y4m", "a.vcs", "one.y4m", "two.y4m")


def test_decode_with_another_decoder_of_the_same_weights(tmp_path, tiny_weights, pan_clip, monkeypatch):
    """--model on decode: a derived decoder of the file's weights decodes it exactly as a file made with that
    decoder; a model with other weights is refused."""
    weights = tmp_path / "weights"
    shutil.copytree(tiny_weights, weights)  # derive_model writes beside the weights: keep the session's folder
    monkeypatch.setenv("VCS_WEIGHTS", str(weights))
    derived = derive_model(default_model(0.1), "hitvcsnet-mhc2", "test")
    src, plain, direct = tmp_path / "a.y4m", tmp_path / "plain.vcs", tmp_path / "direct.vcs"
    write_clip(src, pan_clip(9, 96, 64), fps=25)
    encode_file(src, plain)
    encode_file(src, direct, model=derived.name)
    outputs = {}
    for name, vcs, decoder in (("plain", plain, None), ("override", plain, derived.name), ("direct", direct, None)):
        outputs[name] = tmp_path / f"{name}.y4m"
        decode_file(vcs, outputs[name], device="cpu", decoder=decoder)
    assert outputs["override"].read_bytes() == outputs["direct"].read_bytes()
    assert outputs["override"].read_bytes() != outputs["plain"].read_bytes()
    with pytest.raises(VcsError, match="other weights"):
        decode_file(plain, tmp_path / "x.y4m", device="cpu", decoder=default_model(0.01).name)
    assert not (tmp_path / "x.y4m").exists()


def test_encoding_is_repeatable(tmp_path, use_tiny_weights, noise_clip):
    src = tmp_path / "a.y4m"
    write_clip(src, noise_clip(9, 99, 61), fps=25)
    encode_file(src, tmp_path / "one.vcs")
    shutil.copy(src, tmp_path / "b.y4m")
    encode_file(tmp_path / "b.y4m", tmp_path / "two.vcs")
    assert (tmp_path / "one.vcs").read_bytes() == (tmp_path / "two.vcs").read_bytes()


@pytest.mark.parametrize(("width", "height", "gops"), [(352, 288, 2), (96, 64, 8), (1280, 720, 1), (3840, 2160, 1)])
def test_automatic_batch_bounds_pixels_per_call(width, height, gops):
    from vcscodec.codec import PIXELS_PER_CALL, auto_batch_gops
    from vcscodec.container import StreamHeader

    header = StreamHeader(width, height, 25, 1, 100, 8, 32, 0.5, 0.1, 512, 102, 1.3, "gray", "m", "0" * 64)
    assert auto_batch_gops(header) == gops
    hp, wp = header.padded_shapes()[0]
    assert gops == 1 or gops * 8 * hp * wp <= PIXELS_PER_CALL


def test_fit_quant_step_finds_the_finest_step_within_the_rate() -> None:
    from vcscodec.codec import FIT_STEPS, fit_quant_step

    calls: list[float] = []

    def rate(step: float) -> float:  # one bit per measurement per doubling, a floor at coarse steps
        calls.append(step)
        return max(10.0 - math.log2(step), 0.5)

    step, count = fit_quant_step(rate, 6.0)
    assert count == len(calls) and count <= 12
    assert rate(step) <= 6.0 and 16.0 <= step <= 16.0 * 1.01  # 10 − log2(16) = 6
    assert fit_quant_step(rate, 50.0) == (FIT_STEPS[0], 1)  # every step fits: the finest searched
    with pytest.raises(VcsError, match="below what this model reaches"):
        fit_quant_step(rate, 0.4)
    with pytest.raises(VcsError, match="positive"):
        fit_quant_step(rate, 0.0)


def test_encode_to_a_target_rate(tmp_path, use_tiny_weights, pan_clip):
    src, vcs = tmp_path / "a.y4m", tmp_path / "a.vcs"
    write_clip(src, pan_clip(9, 64, 64), fps=25)
    report = encode_file(src, vcs, target_bpp=0.8)
    assert report.bits_per_pixel <= 0.8 and report.passes > 2
    assert read_header(vcs).quant_step == report.quant_step
    assert vcs.stat().st_size * 8 / (64 * 64 * 9) == pytest.approx(report.bits_per_pixel)
    # the finest such step: a step 2 % finer no longer fits
    finer = encode_file(src, tmp_path / "finer.vcs", quant_step=report.quant_step / 1.02)
    assert finer.bits_per_pixel > 0.8
    assert only_files(tmp_path, "a.y4m", "a.vcs", "finer.vcs")  # no trial file left behind
    with pytest.raises(VcsError, match="exists"):
        encode_file(src, vcs, target_bpp=0.8)
    later = encode_file(src, tmp_path / "later.vcs", target_bpp=0.8, start=1)  # every trial from frame 1
    assert later.frames == read_header(tmp_path / "later.vcs").frame_count == 8 and later.bits_per_pixel <= 0.8
    (tmp_path / "later.vcs").unlink()
    for step in (0.0, -1.0, float("nan")):  # refused in the quantizer's words, before anything is written
        with pytest.raises(VcsError, match=r"^quantizer step .* is out of range \(0, 65535\]$"):
            encode_file(src, tmp_path / "bad.vcs", quant_step=step)
    assert only_files(tmp_path, "a.y4m", "a.vcs", "finer.vcs")


# ------------------------------------------------------------------------------- alternating keyframe grids


def test_alternating_grids_measure_odd_keyframes_shifted(tmp_path, alternating_weights, pan_clip):
    from vcscodec.quant import quantize
    from vcscodec.sampling import measure_plane

    frames = pan_clip(17, 70, 40)
    src, vcs = tmp_path / "a.y4m", tmp_path / "a.vcs"
    write_clip(src, frames, fps=25)
    encode_file(src, vcs, model=alternating_weights, chroma="gray")
    phi_k = default_model(0.1).sampling_matrices()[0]
    with ContainerReader(vcs) as reader:
        # version 2 carries the shift; the Y4M source's chroma siting makes it 4
        assert (reader.header.version, reader.header.key_grid_shift, reader.header.chroma_siting) == (4, 16, "center")
        keys = [record.frames[0].planes[0] for record in reader]
    for g, shift in enumerate((0, 16, 0)):  # keyframes 0, 8 and the final 16
        assert np.array_equal(keys[g], quantize(measure_plane(frames[8 * g].y, phi_k, shift), 1.3))
    assert not np.array_equal(keys[1], quantize(measure_plane(frames[8].y, phi_k), 1.3))


def test_alternating_grids_sharpen_a_still_scene(tmp_path, alternating_weights):
    """On a still scene two keyframes on different grids measure different parts of one picture: the refined
    keyframes beat those of the same model on one grid (the tiny model's own keyframes are poor, so by a lot)."""
    still = gray_clip(1, 96, 64)
    src = tmp_path / "still.y4m"
    write_clip(src, still * 17, fps=25)
    one_grid = derive_model(default_model(0.1), "hitvcsnet-mhc2s-obmc-lin", "test").name  # the same decoder
    scores = {}
    for name in (one_grid, alternating_weights):
        vcs, out = tmp_path / f"{name}.vcs", tmp_path / f"{name}.y4m"
        encode_file(src, vcs, model=name, chroma="gray")
        decode_file(vcs, out, device="cpu")
        _, back = read(out)
        scores[name] = [psnr(still[0].y, frame.y) for frame in back]
    plain, alternating = scores[one_grid], scores[alternating_weights]
    assert min(a - p for a, p in zip(alternating, plain, strict=True)) > 0.5, (plain, alternating)
    # The whole network (HFIM reads the keyframes' features, rolled back with them) decodes the same file.
    whole = tmp_path / "whole.y4m"
    decode_file(tmp_path / f"{alternating_weights}.vcs", whole, device="cpu", decoder=default_model(0.1).name)
    _, back = read(whole)
    assert np.mean([psnr(still[0].y, f.y) for f in back]) > np.mean(plain) + 0.5


def test_alternating_grids_decode_a_range_as_a_whole_decode(tmp_path, alternating_weights, pan_clip):
    """Each keyframe is refined with the record before it whatever the batch, so a range decodes bit for bit as in
    a whole decode at one GOP per call, and a whole decode batched otherwise only by float rounding. Two still
    shots, frames 0-7 and 8-19: keyframe 8 must not be refined with keyframe 0 (another picture) but a decoder that
    took the keyframe after it whenever it starts a chain would refine it with keyframe 16 (the same one)."""
    src, vcs = tmp_path / "a.y4m", tmp_path / "a.vcs"
    first, second = pan_clip(20, 70, 40)[0], pan_clip(20, 70, 40)[19]
    write_clip(src, [first] * 8 + [second] * 12, fps=25)  # GOPs 0-7, 8-15, 16-18, then the final keyframe 19
    encode_file(src, vcs, model=alternating_weights)
    model, device = find_model(alternating_weights).load("cpu"), pick_device("cpu")
    with ContainerReader(vcs) as reader:
        whole = list(decode_records(reader, model, device, batch_gops=1))
    with ContainerReader(vcs) as reader:
        batched = list(decode_records(reader, model, device, batch_gops=3))
    for start, count in ((8, 8), (17, 3), (19, 1)):
        with ContainerReader(vcs) as reader:
            part = list(decode_records(reader, model, device, batch_gops=1, start=start, count=count))
        for a, b in zip(part, whole[start : start + count], strict=True):
            assert np.array_equal(a.y, b.y) and np.array_equal(a.u, b.u)
    assert all(np.abs(a.y.astype(int) - b.y).max() <= 3 for a, b in zip(batched, whole, strict=True))


def test_keyframes_are_not_refined_where_the_frames_differ_more_than_the_keyframe_misses(alternating_weights):
    """key_noise_ratio: a neighbour whose non-keyframes vary more than the keyframe misses it brings in more error
    than it removes, so the keyframe is left as it is; with still non-keyframes, or without the gate, it is refined.
    (The still-scene gate is opened here: the tiny model's keyframes miss by more than it lets through.)"""
    import dataclasses

    import torch

    from vcscodec.models import KeyMeasurements

    model = find_model(alternating_weights).load("cpu")
    assert model.config.key_noise_ratio > 0
    gated = dataclasses.replace(model.config, key_still_gate=1.0)
    picture = torch.from_numpy(gray_clip(1, 64, 64)[0].y.astype(np.float32) / 255)[None, None]
    y_p = model.measure_key(torch.roll(picture[:, 0], (16, 16), (-2, -1)))  # shifted grid, as an odd keyframe
    y_q = model.measure_key(picture[:, 0])
    still = model.measure_non(picture[:, 0]).detach().expand(7, -1, -1, -1)[None]  # (1, 7, m_n, h, w)
    noise = torch.randn(still.shape, generator=torch.Generator().manual_seed(0)) * 0.05  # variance 2.5e-3
    with torch.no_grad():
        key = torch.roll(model.reconstruct_keyframes(y_p), (-16, -16), (-2, -1))
        for between, ratio, refined in ((still, 2.0, True), (still + noise, 2.0, False), (still + noise, 0.0, True)):
            model.config = dataclasses.replace(gated, key_noise_ratio=ratio)
            out = model.refine_keyframes(key, y_p[None], [16], KeyMeasurements(y_q, 0, between))
            moved = (out - key).abs().max().item()
            assert (moved > 1e-3) == refined, (ratio, refined, moved)


def test_a_model_decodes_only_its_own_layout(tmp_path, use_tiny_weights):
    """A header whose model name and hash were set to another model's (of another ratio), or another writer's GOP
    length, is refused by `model_for` naming the fields, so that `vcs info` does not call it decodable and the
    decode does not fail inside the network."""
    from dataclasses import replace

    from vcscodec.codec import model_for

    src, vcs = tmp_path / "c.y4m", tmp_path / "c.vcs"
    write_clip(src, gray_clip(9, 64, 32), fps=25)
    encode_file(src, vcs)
    header = read_header(vcs)
    assert model_for(header).name == header.model_name
    fine = default_model(0.01)
    other = replace(header, model_name=fine.name, weights_sha256=fine.sha256)
    assert header.m_n == 102  # round(0.1·32²), where the αn 0.01 model measures round(0.01·32²) = 10
    with pytest.raises(VcsError, match=f"header has m_n 102, but its model {fine.name} has m_n 10: it cannot"):
        model_for(other)
    with pytest.raises(VcsError, match=f"header has gop 4, but its model {header.model_name} has gop 8: it cannot"):
        model_for(replace(header, gop=4))
    with pytest.raises(VcsError, match="header has block 16, m_k 128, m_n 26, but its model .* has block 32, m_k 512"):
        model_for(replace(header, block=16, m_k=128, m_n=26))
    # such a file, written whole: vcs info calls it not decodable, in the words decode would use
    from vcscodec.container import ContainerWriter
    from vcscodec.inspect import describe_file

    forged = tmp_path / "forged.vcs"
    with ContainerReader(vcs) as reader, ContainerWriter(forged, other) as writer:
        for record in reader:
            writer.write_record(record)
    described = describe_file(forged)
    assert described["decodable"] is False and "has m_n 102, but its model" in described["decode_error"]
    with pytest.raises(VcsError, match="has m_n 102, but its model"):
        decode_file(forged, tmp_path / "f.y4m", device="cpu")
    assert not (tmp_path / "f.y4m").exists()


@pytest.mark.parametrize(
    ("tag", "siting", "version"),
    [(b"C420mpeg2", "left", 4), (b"C420paldv", "topleft", 4), (b"C420jpeg", "center", 4), (b"", None, 1)],
)
def test_the_chroma_siting_of_a_y4m_source_reaches_the_decoded_y4m(
    use_tiny_weights, tmp_path: Path, tag: bytes, siting: str | None, version: int
) -> None:
    """The codec never resamples chroma, so the decoded video's chroma sits where the source's did: a Y4M source's C
    tag is carried in the header (format version 4) and written back; a source that says nothing gets no field, and
    its decoded Y4M says C420jpeg, as FFmpeg writes an unsaid siting."""
    plain = tmp_path / "plain.y4m"
    write_clip(plain, gray_clip(3, 64, 32))
    first, rest = plain.read_bytes().split(b"\n", 1)
    fields = [f for f in first.split(b" ") if not f.startswith((b"C", b"XYSCSS"))]
    source = tmp_path / "tagged.y4m"
    source.write_bytes(b" ".join(fields + ([tag] if tag else [])) + b"\n" + rest)
    with open_video(source) as reader:
        assert reader.info.chroma_siting == siting
    encode_file(source, tmp_path / "a.vcs")
    header = read_header(tmp_path / "a.vcs")
    assert (header.chroma_siting, header.version) == (siting, version)
    decode_file(tmp_path / "a.vcs", tmp_path / "a.y4m")
    written = (tmp_path / "a.y4m").read_bytes().split(b"\n", 1)[0].split(b" ")
    assert [f for f in written if f.startswith(b"C")] == [tag or b"C420jpeg"]
