"""vcs decode --conceal: a damaged or truncated file decodes anyway, with every lost GOP named and concealed.

41 frames: GOP records 0-4 hold frames 0-7, 8-15, …, 32-39, and record 5 the final keyframe 40."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vcscodec.cli import app
from vcscodec.codec import Concealed, decode_records, encode_file, pick_device
from vcscodec.container import ContainerReader, LostGop
from vcscodec.errors import VcsError
from vcscodec.io import Frame, open_video
from vcscodec.registry import default_model
from vcscodec.samples import write_clip

FRAMES = 41
runner = CliRunner()


@pytest.fixture(scope="module")
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def coded(tmp_path: Path, use_tiny_weights: Path, pan_clip, one_thread) -> tuple[Path, bytes, list[Frame]]:
    """A clean .vcs file, its bytes and its whole decode."""
    src, vcs = tmp_path / "a.y4m", tmp_path / "a.vcs"
    write_clip(src, pan_clip(FRAMES, 72, 40, seed=3), fps=25)
    encode_file(src, vcs)
    return vcs, vcs.read_bytes(), decode(vcs)


def decode(path: Path, lost: list[Concealed] | None = None, batch_gops: int = 1, **kw) -> list[Frame]:
    """All frames (or a range), one GOP per network call unless told otherwise: batching GOPs differently can move
    a pixel by one grey level (floating-point rounding), and these tests compare frames bit for bit."""
    model, device = default_model(0.1).load("cpu"), pick_device("cpu")
    with ContainerReader(path) as reader:
        on_lost = None if lost is None else lost.append
        return list(decode_records(reader, model, device, batch_gops, on_lost=on_lost, **kw))


def records(data: bytes) -> list[tuple[int, int]]:
    """(start, payload length) of every record, walking the length prefixes after the header."""
    (length,) = struct.unpack_from("<I", data, 10)
    pos, spans = 14 + length + 4, []
    while pos < len(data):
        _, _, size = struct.unpack_from("<BII", data, pos)
        spans.append((pos, size))
        pos += 13 + size + 4
    return spans


def flipped(data: bytes, pos: int) -> bytes:
    return data[:pos] + bytes([data[pos] ^ 0xFF]) + data[pos + 1 :]


def same(a: list[Frame], b: list[Frame], tolerance: int = 0) -> bool:
    """Frame for frame equal, every plane, to within ``tolerance`` grey levels."""

    def close(x: np.ndarray, y: np.ndarray) -> bool:
        return bool(np.abs(x.astype(int) - y.astype(int)).max() <= tolerance)

    return len(a) == len(b) and all(
        close(x.y, y.y) and close(x.u, y.u) and close(x.v, y.v) for x, y in zip(a, b, strict=True)
    )


def test_a_damaged_payload_loses_one_gop(coded, tmp_path: Path) -> None:
    vcs, data, clean = coded
    start, size = records(data)[2]
    bad = tmp_path / "bad.vcs"
    bad.write_bytes(flipped(data, start + 13 + size // 2))
    with pytest.raises(VcsError, match="GOP 2 is damaged"):
        decode(bad)  # without concealment: the error, as before
    lost: list[Concealed] = []
    out = decode(bad, lost)
    assert len(out) == FRAMES
    assert [(c.gop, c.first, c.end, c.repeats) for c in lost] == [(2, 16, 24, 15)]
    assert "GOP 2 is damaged (CRC mismatch)" in lost[0].reason
    assert lost[0].describe().endswith("frames 16–23 repeat frame 15")
    assert same(out[:9], clean[:9])  # GOP 0 and GOP 1's keyframe do not need GOP 2
    assert all(np.array_equal(f.y, out[15].y) for f in out[16:24])
    assert same(out[24:], clean[24:])  # the GOPs after the lost one are rebuilt as if nothing happened
    # GOP 1 lost its closing keyframe and was rebuilt on its opening one at both ends: still a picture, not noise
    assert not same(out[9:16], clean[9:16])
    pairs = zip(out[9:16], clean[9:16], strict=True)
    assert all(np.mean(np.abs(a.y.astype(int) - b.y.astype(int))) < 40 for a, b in pairs)
    # automatic batches of GOPs conceal the same GOP, with the same frames up to floating-point rounding
    lost = []
    assert same(decode(bad, lost, batch_gops=0), out, tolerance=1) and [c.gop for c in lost] == [2]


def test_a_damaged_prefix_is_passed_by_resynchronising(coded, tmp_path: Path) -> None:
    vcs, data, clean = coded
    start, _ = records(data)[1]
    bad = tmp_path / "bad.vcs"
    bad.write_bytes(flipped(data, start + 6))  # the payload length: the record's end is unknown
    lost: list[Concealed] = []
    out = decode(bad, lost)
    assert [(c.gop, c.first, c.end) for c in lost] == [(1, 8, 16)]
    assert same(out[16:], clean[16:]) and same(out[:1], clean[:1])
    with ContainerReader(bad) as reader:
        salvaged = list(reader.salvage())
    assert [isinstance(r, LostGop) for r in salvaged] == [False, True, False, False, False, False]
    assert [r.index for r in salvaged] == list(range(6))


def test_a_truncated_file_repeats_the_last_frame_rebuilt(coded, tmp_path: Path) -> None:
    vcs, data, clean = coded
    start, _ = records(data)[3]
    cut = tmp_path / "cut.vcs"
    cut.write_bytes(data[: start + 20])
    lost: list[Concealed] = []
    out = decode(cut, lost)
    # the records after the cut come as one run, whatever their number
    assert [(c.gop, c.gops, c.first, c.end, c.repeats) for c in lost] == [(3, 1, 24, 32, 23), (4, 2, 32, 41, 23)]
    assert "truncated in GOP 3" in lost[0].reason and lost[1].reason == "GOPs 4–5 are missing (lost with GOP 3)"
    assert lost[1].describe().endswith("frames 32–40 repeat frame 23")
    assert same(out[:17], clean[:17])
    assert all(np.array_equal(f.y, out[23].y) for f in out[24:])


def test_the_first_gop_lost_is_grey_and_the_last_keyframe_repeats(coded, tmp_path: Path) -> None:
    vcs, data, clean = coded
    spans = records(data)
    first = tmp_path / "first.vcs"
    first.write_bytes(flipped(data, spans[0][0] + 13 + 3))
    lost: list[Concealed] = []
    out = decode(first, lost)
    assert [(c.gop, c.repeats) for c in lost] == [(0, None)]
    assert lost[0].describe().endswith("frames 0–7 are mid-grey")
    assert all((f.y == 128).all() and (f.u == 128).all() for f in out[:8])
    assert same(out[8:], clean[8:])
    last = tmp_path / "last.vcs"
    last.write_bytes(flipped(data, spans[5][0] + 13))
    lost = []
    out = decode(last, lost)
    assert [(c.gop, c.first, c.end, c.repeats) for c in lost] == [(5, 40, 41, 39)]
    assert same(out[:33], clean[:33]) and np.array_equal(out[40].y, out[39].y)


def test_a_range_around_a_lost_gop(coded, tmp_path: Path) -> None:
    vcs, data, _ = coded
    start, size = records(data)[2]
    bad = tmp_path / "bad.vcs"
    bad.write_bytes(flipped(data, start + 13 + size // 2))
    whole = decode(bad, [])
    for first, count in ((10, 20), (20, 2), (16, 1), (24, 3), (30, 11)):
        lost: list[Concealed] = []
        part = decode(bad, lost, start=first, count=count)
        assert same(part, whole[first : first + count]), (first, count)
        assert [c.gop for c in lost] == ([2] if first < 24 else [])
        # the warning names the frames written in GOP 2's place, those of the range only
        assert [(c.first, c.end) for c in lost] == ([(max(16, first), min(24, first + count))] if first < 24 else [])
    # GOPs 2 and 3 lost, the range starting in GOP 3: GOP 1, before the range, is rebuilt to give frame 15
    start3, size3 = records(data)[3]
    worse = tmp_path / "worse.vcs"
    worse.write_bytes(flipped(flipped(data, start + 13 + size // 2), start3 + 13 + size3 // 2))
    whole = decode(worse, [])
    lost = []
    assert same(decode(worse, lost, start=26, count=10), whole[26:36])
    assert [(c.gop, c.repeats) for c in lost] == [(3, 15)] and np.array_equal(whole[26].y, whole[15].y)


def test_salvage_of_an_intact_file_is_plain_reading(coded) -> None:
    vcs, _, _ = coded
    with ContainerReader(vcs) as reader:
        plain = list(reader)
        salvaged = list(reader.salvage())
    assert not any(isinstance(r, LostGop) for r in salvaged)
    assert [r.index for r in salvaged] == [r.index for r in plain]


def test_cli_conceal(coded, tmp_path: Path) -> None:
    vcs, data, _ = coded
    start, size = records(data)[2]
    bad = tmp_path / "bad.vcs"
    bad.write_bytes(flipped(data, start + 13 + size // 2))
    out = tmp_path / "out.y4m"
    failed = runner.invoke(app, ["decode", str(bad), str(out)])
    assert failed.exit_code == 1 and not out.exists()
    result = runner.invoke(app, ["decode", str(bad), str(out), "--conceal"])
    assert result.exit_code == 0, result.output
    assert f"vcs: warning: {bad}: GOP 2 is damaged (CRC mismatch): frames 16–23 repeat frame 15" in result.output
    assert "lost GOPs concealed: 1" in result.output
    with open_video(out) as reader:
        assert sum(1 for _ in reader) == FRAMES


def test_info_lists_what_is_damaged(coded, tmp_path: Path) -> None:
    vcs, data, _ = coded
    intact = runner.invoke(app, ["info", str(vcs), "--json"])
    assert intact.exit_code == 0 and json.loads(intact.output)["damaged"] == []
    start, size = records(data)[2]
    bad = tmp_path / "bad.vcs"
    bad.write_bytes(flipped(data, start + 13 + size // 2) + b"xyz")
    result = runner.invoke(app, ["info", str(bad)])
    assert result.exit_code == 1
    assert "frames" in result.output and "GOP 2 is damaged (CRC mismatch)" in result.output  # described all the same
    message = str(result.exception)
    assert message == (
        f"{bad} is damaged: GOP 2 is damaged (CRC mismatch); 1 more problem listed (vcs decode --conceal decodes what "
        "is left)"
    )
    described = json.loads(runner.invoke(app, ["info", str(bad), "--json"]).stdout)
    assert described["damaged"] == [
        "GOP 2 is damaged (CRC mismatch)",
        "3 bytes of unexpected data after the end record",
    ]


def test_a_header_that_announces_frames_that_are_not_there(coded, tmp_path: Path) -> None:
    """A crafted header (valid CRC) announcing 2³¹ − 1 frames over the file's 41: `vcs info` says so in one line
    and at once, the records it lacks being one run, not 268 million items; --conceal decodes a range past them."""
    import dataclasses

    from vcscodec.container import _pack_header

    vcs, data, clean = coded
    with ContainerReader(vcs) as reader:
        header, offset = reader.header, reader._records_offset
    huge = tmp_path / "huge.vcs"
    huge.write_bytes(_pack_header(dataclasses.replace(header, frame_count=2**31 - 1)) + data[offset:])
    described = runner.invoke(app, ["info", str(huge), "--json"])
    assert described.exit_code == 1 and "\n" not in str(described.exception)
    damaged = json.loads(described.stdout)["damaged"]
    assert damaged == [
        "GOP 5 has 1 frame, the layout needs 8 (40..47)",
        "GOPs 6–268435456 are missing (lost with GOP 5)",
    ]
    assert json.loads(described.stdout)["records"] == 268435457
    lost: list[Concealed] = []
    out = decode(huge, lost, start=30, count=20)
    assert [(c.gop, c.gops, c.first, c.end) for c in lost] == [(5, 1, 40, 48), (6, 268435451, 48, 50)]  # in the range
    # frames 30-39 as in the file (GOP 4 closed on its own keyframe), then frame 39 stands in for the rest
    assert same(out[:2], clean[30:32]) and len(out) == 20 and all(np.array_equal(f.y, out[9].y) for f in out[10:])


def test_trailing_bytes_are_ignored_with_a_warning(coded, tmp_path: Path) -> None:
    vcs, data, clean = coded
    bad = tmp_path / "tail.vcs"
    bad.write_bytes(data + b"\x00" * 5)
    out = tmp_path / "out.y4m"
    result = runner.invoke(app, ["decode", str(bad), str(out), "--conceal", "--batch-gops", "1"])
    assert result.exit_code == 0, result.output
    assert "5 bytes of unexpected data after the end record (ignored)" in result.output
    assert "concealed" not in result.output
    with open_video(out) as reader:
        assert same(list(reader), clean)


def test_a_range_after_damage_decodes_without_conceal(coded, tmp_path: Path) -> None:
    """A decode from a later GOP passes the records before it by their prefixes (docs/format.md §2.3): damage inside
    their payloads does not stop it, and needs no --conceal. The prefixes themselves are still checked."""
    vcs, data, clean = coded
    start, size = records(data)[1]
    bad = tmp_path / "bad.vcs"
    bad.write_bytes(flipped(data, start + 13 + size // 2))  # GOP 1's payload: frames 8–15
    assert same(decode(bad, start=24, count=9), clean[24:33])  # GOPs 3 and 4
    assert same(decode(bad, start=16, count=2), clean[16:18])  # GOP 2, right after the damage
    with pytest.raises(VcsError, match="GOP 1 is damaged"):
        decode(bad, start=0, count=2)  # GOP 0, closed by GOP 1's keyframe: read whole
    cut_prefix = tmp_path / "prefix.vcs"
    cut_prefix.write_bytes(flipped(data, start + 5))  # GOP 1's length: where GOP 2 starts is unknown
    with pytest.raises(VcsError, match="GOP 1 is damaged"):
        decode(cut_prefix, start=24, count=2)


def test_a_damaged_payload_is_passed_by_its_length(coded, tmp_path: Path) -> None:
    """A record whose prefix holds but whose payload does not is passed by its length (docs/format.md §2.3), not
    scanned through: a prefix that happens to hold inside the damaged payload (made here on purpose) is not taken
    for the next record, which would lose GOP 2 as well."""
    import zlib

    vcs, data, _ = coded
    (start1, size1), (start2, size2) = records(data)[1:3]
    head = struct.pack("<BII", 0x47, 2, 16)
    fake = head + struct.pack("<I", zlib.crc32(head))  # GOP 2's prefix, 16 bytes long, inside GOP 1's payload
    inside = start1 + 13 + 40
    bad = tmp_path / "bad.vcs"
    bad.write_bytes(data[:inside] + fake + data[inside + len(fake) :])
    with ContainerReader(bad) as reader:
        out = [(r.index, isinstance(r, LostGop)) for r in reader.salvage()]
    assert out == [(0, False), (1, True), (2, False), (3, False), (4, False), (5, False)]


def test_a_record_missing_altogether_loses_itself_only(coded, tmp_path: Path) -> None:
    """GOP 1's record cut out of the file: the prefix found in its place is GOP 2's, intact, which is read as GOP 2
    (it was scanned past and lost as well)."""
    vcs, data, _ = coded
    (start1, size1), (start2, _) = records(data)[1:3]
    spliced = tmp_path / "spliced.vcs"
    spliced.write_bytes(data[:start1] + data[start2:])
    with ContainerReader(spliced) as reader:
        out = [(r.index, isinstance(r, LostGop)) for r in reader.salvage()]
    assert out == [(0, False), (1, True), (2, False), (3, False), (4, False), (5, False)]
