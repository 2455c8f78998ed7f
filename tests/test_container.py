"""The .vcs container: layout, round trips, damage and truncation detection, the writer's file handling.

Several tests parse files with `struct` following docs/format.md alone, so they check the spec as well as
the implementation.
"""

from __future__ import annotations

import lzma
import math
import os
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from vcscodec.container import (
    FORMAT_VERSION,
    MAGIC,
    ContainerReader,
    ContainerWriter,
    FrameMeasurements,
    GopRecord,
    StreamHeader,
    _decode_plane,
    _encode_plane,
    read_header,
)
from vcscodec.errors import VcsError
from vcscodec.quant import Q_MAX

SHA = "0123456789abcdef" * 4
NAME = "hitvcsnet-tr-k0.5-n0.1-1a2b3c4d"


def make_header(**overrides: object) -> StreamHeader:
    fields: dict[str, object] = dict(
        width=100, height=60, fps_num=30000, fps_den=1001, frame_count=9, gop=8, block=32,
        alpha_k=0.5, alpha_n=0.1, m_k=512, m_n=102, quant_step=1.3, chroma="gray",
        model_name=NAME, weights_sha256=SHA,
    )  # fmt: skip
    fields.update(overrides)
    return StreamHeader(**fields)  # type: ignore[arg-type]


def make_records(h: StreamHeader, seed: int = 0) -> list[GopRecord]:
    """Measurement-like integers: a smooth field drifting over time plus noise, and a few extremes."""
    rng = np.random.default_rng(seed)
    fields = {}
    recs = []
    for g, (start, end) in enumerate(h.gop_ranges()):
        frames = []
        for t in range(start, end):
            key = t == start
            planes = []
            for p in range(h.num_planes):
                shape = h.measurement_shape(p, key)
                if (p, key) not in fields:
                    fields[(p, key)] = np.cumsum(rng.integers(-40, 41, shape), axis=2) + rng.integers(
                        -3000, 3000, (shape[0], 1, 1)
                    )
                q = fields[(p, key)] + 7 * t + rng.integers(-3, 4, shape)
                planes.append(q.astype(np.int32))
            frames.append(FrameMeasurements(t, key, planes))
        recs.append(GopRecord(g, frames))
    recs[0].frames[0].planes[0][0, 0, 0] = Q_MAX  # the widest values the format allows
    recs[-1].frames[0].planes[0][-1, -1, -1] = -Q_MAX
    return recs


def write(path: Path, h: StreamHeader, recs: list[GopRecord]) -> Path:
    with ContainerWriter(path, h) as w:
        for r in recs:
            w.write_record(r)
    return path


def without_file_name(path: Path, error: VcsError) -> VcsError:
    """Every reading error starts with the file's name; the tests below check the rest of the message."""
    prefix = f"{path}: "
    assert str(error).startswith(prefix), f"the error does not name the file: {error}"
    return VcsError(str(error)[len(prefix) :])


def read_all(path: Path) -> tuple[StreamHeader, list[GopRecord]]:
    try:
        with ContainerReader(path) as r:
            return r.header, list(r)
    except VcsError as e:
        raise without_file_name(path, e) from None


def assert_records_equal(a: list[GopRecord], b: list[GopRecord]) -> None:
    assert [r.index for r in a] == [r.index for r in b]
    for ra, rb in zip(a, b, strict=True):
        assert [(f.index, f.key) for f in ra.frames] == [(f.index, f.key) for f in rb.frames]
        for fa, fb in zip(ra.frames, rb.frames, strict=True):
            assert len(fa.planes) == len(fb.planes)
            for pa, pb in zip(fa.planes, fb.planes, strict=True):
                assert pb.dtype == np.int32
                np.testing.assert_array_equal(pa, pb)


# ------------------------------------------------------------------------------------------ spec walker


def header_span(data: bytes) -> int:
    """Offset of record 0: preamble (14 bytes) + header body + CRC (4 bytes)."""
    (length,) = struct.unpack_from("<I", data, 10)
    return 14 + length + 4


def record_spans(data: bytes) -> list[tuple[int, int, int]]:
    """(type, start, end) of every record, walking the length prefixes."""
    pos, spans = header_span(data), []
    while pos < len(data):
        rtype, _, length = struct.unpack_from("<BII", data, pos)
        end = pos + 13 + length + 4
        spans.append((rtype, pos, end))
        pos = end
    return spans


def reseal_header(data: bytes, body: bytes, version: int = 1) -> bytes:
    """Rebuild the header around a new body with a correct CRC (a well-formed but edited header)."""
    pre = struct.pack("<8sHI", MAGIC, version, len(body))
    crc = zlib.crc32(pre[8:] + body)
    return pre + body + struct.pack("<I", crc) + data[header_span(data) :]


def spec_decode(data: bytes) -> tuple[dict, list[list[tuple[int, int, list[np.ndarray]]]]]:
    """An independent decoder written from docs/format.md (no container internals)."""
    assert data[:8] == b"\x89VCS\r\n\x1a\n"
    version, length = struct.unpack_from("<HI", data, 8)
    body = data[14 : 14 + length]
    assert struct.unpack_from("<I", data, 14 + length)[0] == zlib.crc32(data[8 : 14 + length])
    names = "width height fps_num fps_den frame_count gop block alpha_k alpha_n m_k m_n quant_step chroma"
    vals = struct.unpack_from("<IIIIIHHddIIdB", body, 0)
    hdr = dict(zip(names.split(), vals, strict=True))
    hdr["sha"] = body[57:121].decode("ascii")
    (name_len,) = struct.unpack_from("<H", body, 121)
    hdr["name"] = body[123 : 123 + name_len].decode("utf-8")
    assert version in (1, 2, 3, 4)
    assert length == 123 + name_len + 2 * (version >= 2) + 4 * (version >= 3) + (version >= 4)
    hdr["key_grid_shift"] = struct.unpack_from("<H", body, 123 + name_len)[0] if version >= 2 else 0
    hdr["source_start"] = struct.unpack_from("<I", body, 125 + name_len)[0] if version >= 3 else 0
    sitings = (None, "left", "center", "topleft", "top", "bottomleft", "bottom")  # §2.2, by code
    hdr["chroma_siting"] = sitings[body[129 + name_len]] if version >= 4 else None
    b = hdr["block"]
    sizes = [(hdr["height"], hdr["width"])]
    if hdr["chroma"] == 1:
        sizes += [((hdr["height"] + 1) // 2, (hdr["width"] + 1) // 2)] * 2
    grids = [(math.ceil(h / b), math.ceil(w / b)) for h, w in sizes]
    records = []
    for number, (rtype, start, _end) in enumerate(record_spans(data)):
        _, index, plen = struct.unpack_from("<BII", data, start)
        assert index == number  # GOP records count from 0; the end record carries the count
        assert struct.unpack_from("<I", data, start + 9)[0] == zlib.crc32(data[start : start + 9])
        payload = data[start + 13 : start + 13 + plen]
        assert struct.unpack_from("<I", data, start + 13 + plen)[0] == zlib.crc32(payload)
        if rtype == 0x45:
            break
        (n_frames,) = struct.unpack_from("<I", payload, 0)
        pos, table = 4, []
        for _ in range(n_frames):
            fidx, key = struct.unpack_from("<IB", payload, pos)
            pos += 5
            specs = []
            for _p in grids:
                specs.append(struct.unpack_from("<BBIHH", payload, pos))
                pos += 10
            table.append((fidx, key, specs))
        raw = lzma.decompress(payload[pos:], format=lzma.FORMAT_XZ)
        off, frames, prev = 0, [], None
        for fidx, key, specs in table:
            planes = []
            for p, (pred, width, m, hb, wb) in enumerate(specs):
                n = m * hb * wb
                u = np.zeros(n, np.int64)
                for k in range(width):  # byte plane k holds bits 8k..8k+7 of every value
                    u |= np.frombuffer(raw, np.uint8, n, off + k * n).astype(np.int64) << (8 * k)
                off += width * n
                v = np.where(u & 1, -(u >> 1) - 1, u >> 1).reshape(hb, wb, m).transpose(2, 0, 1)
                if pred & 1:  # spatial: undo down the first column, then along each block row
                    v = v.copy()
                    v[:, :, 0] = np.cumsum(v[:, :, 0], axis=1)
                    v = np.cumsum(v, axis=2)
                if pred & 2:
                    v = v + prev[p]
                planes.append(v)
            frames.append((fidx, key, planes))
            prev = None if key else planes
        records.append(frames)
    return hdr, records


# ---------------------------------------------------------------------------------------------- header


@pytest.mark.parametrize(
    ("frame_count", "gop", "keys", "ranges"),
    [
        (1, 8, [0], [(0, 1)]),
        (2, 8, [0, 1], [(0, 1), (1, 2)]),
        (5, 8, [0, 4], [(0, 4), (4, 5)]),
        (9, 8, [0, 8], [(0, 8), (8, 9)]),
        (16, 8, [0, 8, 15], [(0, 8), (8, 15), (15, 16)]),
        (17, 8, [0, 8, 16], [(0, 8), (8, 16), (16, 17)]),
        (20, 8, [0, 8, 16, 19], [(0, 8), (8, 16), (16, 19), (19, 20)]),
        (3, 1, [0, 1, 2], [(0, 1), (1, 2), (2, 3)]),
    ],
)
def test_keyframe_layout(frame_count: int, gop: int, keys: list[int], ranges: list[tuple[int, int]]) -> None:
    h = make_header(frame_count=frame_count, gop=gop)
    assert h.key_frames() == keys
    assert h.gop_ranges() == ranges
    assert h.num_records == len(ranges)


def test_plane_shapes_odd_size() -> None:
    gray = make_header(width=100, height=60)
    assert gray.plane_sizes() == [(60, 100)]
    assert gray.padded_shapes() == [(64, 128)]
    assert gray.measurement_shape(0, True) == (512, 2, 4)
    assert gray.measurement_shape(0, False) == (102, 2, 4)
    yuv = make_header(width=101, height=61, chroma="yuv420")
    assert yuv.plane_names == ("Y", "U", "V")
    assert yuv.plane_sizes() == [(61, 101), (31, 51), (31, 51)]
    assert yuv.padded_shapes() == [(64, 128), (32, 64), (32, 64)]
    assert yuv.measurement_shape(2, False) == (102, 1, 2)
    assert make_header(alpha_n=0.01, m_n=10).m_n == 10


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("width", 0, "header field width is 0"),
        ("height", 65536, "header field height is 65536"),
        ("fps_den", 0, "header field fps_den"),
        ("frame_count", 0, "header field frame_count"),
        ("gop", 0, "header field gop"),
        ("block", 0, "header field block"),
        ("alpha_k", float("nan"), "header field alpha_k"),
        ("alpha_n", 1.5, "header field alpha_n"),
        ("alpha_n", 0.0001, "header field alpha_n"),  # m_n would be 0
        ("m_k", 511, "header field m_k is 511, must equal round(alpha_k·block²) = 512"),
        ("quant_step", -1.0, "header field quant_step"),
        ("quant_step", float("inf"), "header field quant_step"),
        ("chroma", "yuv444", "header field chroma"),
        ("model_name", "", "header field model_name"),
        ("model_name", "a\nb", "header field model_name"),
        ("model_name", "x" * 256, "header field model_name"),
        ("weights_sha256", SHA.upper(), "header field weights_sha256"),
        ("weights_sha256", SHA[:-1], "header field weights_sha256"),
        ("width", True, "header field width"),
    ],
)
def test_header_constructor_rejects(field: str, value: object, needle: str) -> None:
    with pytest.raises(VcsError, match="^" + re.escape(needle)):
        make_header(**{field: value})


# ------------------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize("chroma", ["gray", "yuv420"])
@pytest.mark.parametrize("frame_count", [1, 9, 20])
@pytest.mark.parametrize(("width", "height"), [(100, 60), (33, 1)])
def test_round_trip(tmp_path: Path, chroma: str, frame_count: int, width: int, height: int) -> None:
    h = make_header(width=width, height=height, frame_count=frame_count, chroma=chroma)
    recs = make_records(h)
    path = write(tmp_path / "a.vcs", h, recs)
    h2, recs2 = read_all(path)
    assert h2 == h
    assert read_header(path) == h
    assert_records_equal(recs, recs2)
    assert [r.index for r in recs2] == list(range(h.num_records))
    with ContainerReader(path) as r:
        assert r.file_size == path.stat().st_size
        assert_records_equal(recs, list(r))  # iterating again starts over


def test_round_trip_other_block_and_ratios(tmp_path: Path) -> None:
    h = make_header(block=16, alpha_k=0.25, m_k=64, alpha_n=0.01, m_n=3, gop=3, frame_count=7, quant_step=0.5)
    assert h.padded_shapes() == [(64, 112)]
    recs = make_records(h, seed=3)
    h2, recs2 = read_all(write(tmp_path / "b.vcs", h, recs))
    assert h2 == h and h2.quant_step == 0.5 and h2.alpha_n == 0.01
    assert_records_equal(recs, recs2)


def test_independent_spec_decoder(tmp_path: Path) -> None:
    """A decoder written from docs/format.md reads the header fields and every value back."""
    h = make_header(chroma="yuv420", frame_count=20, width=70, height=45)
    recs = make_records(h, seed=5)
    hdr, records = spec_decode(write(tmp_path / "s.vcs", h, recs).read_bytes())
    assert (hdr["width"], hdr["height"], hdr["fps_num"], hdr["fps_den"]) == (70, 45, 30000, 1001)
    assert (hdr["frame_count"], hdr["gop"], hdr["block"], hdr["m_k"], hdr["m_n"]) == (20, 8, 32, 512, 102)
    assert (hdr["alpha_k"], hdr["alpha_n"], hdr["quant_step"], hdr["chroma"]) == (0.5, 0.1, 1.3, 1)
    assert (hdr["sha"], hdr["name"]) == (SHA, NAME)
    assert len(records) == 4
    for rec, frames in zip(recs, records, strict=True):
        for fm, (fidx, key, planes) in zip(rec.frames, frames, strict=True):
            assert (fidx, bool(key)) == (fm.index, fm.key)
            for a, b in zip(fm.planes, planes, strict=True):
                np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("pred", [0, 1, 2, 3])
def test_every_predictor_inverts(pred: int) -> None:
    rng = np.random.default_rng(pred)
    prev = rng.integers(-Q_MAX, Q_MAX, (10, 3, 5))
    q = rng.integers(-Q_MAX, Q_MAX, (10, 3, 5))
    got_pred, width, data = _encode_plane(q, prev, force=pred)
    assert (got_pred, width) == (pred, 4)
    back = _decode_plane(memoryview(data), pred, width, (10, 3, 5), prev)
    np.testing.assert_array_equal(back, q)


def test_predictors_chosen_for_static_and_smooth_content(tmp_path: Path) -> None:
    """A static scene: non-keyframes after the first are coded as zero temporal residuals (1 byte each)."""
    h = make_header(frame_count=9)
    recs = make_records(h)
    for fm in recs[0].frames[2:]:
        fm.planes = [p.copy() for p in recs[0].frames[1].planes]
    data = write(tmp_path / "s.vcs", h, recs).read_bytes()
    assert_records_equal(recs, read_all(tmp_path / "s.vcs")[1])
    payload_start = record_spans(data)[0][1] + 13
    specs = [struct.unpack_from("<BBIHH", data, payload_start + 4 + 5 * (i + 1) + 10 * i) for i in range(8)]
    assert [s[0] & 2 for s in specs[2:]] == [2] * 6  # temporal prediction
    assert [s[1] for s in specs[2:]] == [1] * 6  # all-zero residuals need one byte
    assert specs[0][0] in (0, 1) and specs[1][0] in (0, 1)  # no temporal reference for these


def test_realistic_measurements_compress(tmp_path: Path) -> None:
    """Random orthonormal Φ on a panning natural image: the file is a fraction of the raw int16 size."""
    from skimage.data import camera

    rng = np.random.default_rng(0)
    # Orthonormal and random-like, without a 1024×1024 QR: rows of a Kronecker product of random
    # orthogonal 32×32 matrices, in random order.
    q1, q2 = (np.linalg.qr(rng.standard_normal((32, 32)))[0] for _ in range(2))
    phi = np.kron(q1, q2)[rng.permutation(1024)]
    img = camera().astype(np.float64) / 255
    h = make_header(width=160, height=128, frame_count=9)
    recs = []
    for g, (start, end) in enumerate(h.gop_ranges()):
        frames = []
        for t in range(start, end):
            x = img[100 + t : 228 + t, 150 + 2 * t : 310 + 2 * t]
            blocks = x.reshape(4, 32, 5, 32).transpose(0, 2, 1, 3).reshape(4, 5, 1024)
            m = h.m_k if t == start else h.m_n
            y = np.einsum("mk,hwk->mhw", phi[:m], blocks)
            frames.append(FrameMeasurements(t, t == start, [np.rint(y * 255 / 1.3).astype(np.int32)]))
        recs.append(GopRecord(g, frames))
    path = write(tmp_path / "cam.vcs", h, recs)
    bpp = path.stat().st_size * 8 / (160 * 128 * 9)
    raw_int16_bpp = sum(p.size for r in recs for f in r.frames for p in f.planes) * 16 / (160 * 128 * 9)
    assert 1.2 < bpp < 1.6  # 1.46 measured: 2 keyframes in 9 frames, 0.19 measurements per pixel
    assert bpp < raw_int16_bpp / 2
    assert_records_equal(recs, read_all(path)[1])


# ----------------------------------------------------------------------------------- damage detection


@pytest.fixture
def sample(tmp_path: Path) -> tuple[Path, bytes, StreamHeader, list[GopRecord]]:
    h = make_header(frame_count=20)
    recs = make_records(h)
    path = write(tmp_path / "s.vcs", h, recs)
    return path, path.read_bytes(), h, recs


def reread(path: Path, data: bytes) -> list[GopRecord]:
    """Write ``data`` and read it, returning the records yielded before any error (on the exception)."""
    path.write_bytes(data)
    got: list[GopRecord] = []
    try:
        with ContainerReader(path) as r:
            for rec in r:
                got.append(rec)
    except VcsError as e:
        error = without_file_name(path, e)
        error.records = got  # type: ignore[attr-defined]
        raise error from None
    return got


def flip(data: bytes, pos: int) -> bytes:
    return data[:pos] + bytes([data[pos] ^ 0xFF]) + data[pos + 1 :]


def test_every_header_byte_flip_is_a_header_error(sample) -> None:
    path, data, _, _ = sample
    end = header_span(data)
    for pos in range(8, end):
        with pytest.raises(VcsError) as e:
            reread(path, flip(data, pos))
        msg = str(e.value)
        if pos in (10, 11, 12, 13):  # the length: reads past the file or a wrong span
            assert "header" in msg, (pos, msg)
        else:
            assert msg == "header is damaged (CRC mismatch)", (pos, msg)


@pytest.mark.parametrize("g", [0, 2, 3])
def test_gop_byte_flip_names_the_gop(sample, g: int) -> None:
    path, data, _, _ = sample
    _, start, end = record_spans(data)[g]
    positions = sorted(set(range(start, start + 13)) | set(range(start + 13, end, 97)) | set(range(end - 4, end)))
    for pos in positions:
        with pytest.raises(VcsError, match=rf"^GOP {g} is damaged \(CRC mismatch\)$") as e:
            reread(path, flip(data, pos))
        assert [r.index for r in e.value.records] == list(range(g))  # earlier GOPs streamed out


def test_end_record_flip(sample) -> None:
    path, data, _, _ = sample
    rtype, start, end = record_spans(data)[-1]
    assert (rtype, end) == (0x45, len(data))
    for pos in range(start, end):  # prefix, prefix CRC and the (zero) CRC of the empty payload
        with pytest.raises(VcsError, match=r"^end record is damaged \(CRC mismatch\)$"):
            reread(path, flip(data, pos))


def test_truncation_at_every_record_boundary_and_inside(sample) -> None:
    path, data, h, _ = sample
    spans = record_spans(data)
    assert [t for t, _, _ in spans] == [0x47] * 4 + [0x45]
    hs = header_span(data)
    cases = {hs: "file is truncated after the header"}
    for cut in (1, 7, 8, 13, 30, hs - 1):
        cases[cut] = "file is truncated in the header"
    for g, (_, start, end) in enumerate(spans[:-1]):
        cases[end] = f"file is truncated after GOP {g}"
        for cut in (start + 1, start + 12, start + 13, (start + end) // 2, end - 4, end - 1):
            cases[cut] = f"file is truncated in GOP {g}"
    _, start, end = spans[-1]
    for cut in (start + 1, start + 13, end - 1):
        cases[cut] = "file is truncated in the end record"
    for cut, msg in sorted(cases.items()):
        with pytest.raises(VcsError) as e:
            reread(path, data[:cut])
        assert str(e.value) == msg, cut
    assert len(reread(path, data)) == h.num_records


def test_empty_file(sample) -> None:
    path, _, _, _ = sample
    with pytest.raises(VcsError, match=r"^not a \.vcs file \(empty file\)$"):
        reread(path, b"")


def test_trailing_garbage(sample) -> None:
    path, data, _, _ = sample
    with pytest.raises(VcsError, match="^3 bytes of unexpected data after the end record$"):
        reread(path, data + b"abc")


def test_end_record_with_wrong_count(sample) -> None:
    path, data, _, _ = sample
    spans = record_spans(data)

    def end_record(count: int) -> bytes:
        prefix = struct.pack("<BII", 0x45, count, 0)
        return prefix + struct.pack("<II", zlib.crc32(prefix), 0)

    with pytest.raises(VcsError, match="^end record has index 5, expected 4$"):
        reread(path, data[: spans[-1][1]] + end_record(5))
    with pytest.raises(VcsError, match="^end record after 2 GOP records, the header's layout needs 4$") as e:
        reread(path, data[: spans[1][2]] + end_record(2))
    assert len(e.value.records) == 2


def test_records_out_of_order(sample) -> None:
    path, data, _, _ = sample
    spans = record_spans(data)
    swapped = data[: spans[0][1]] + data[spans[1][1] : spans[1][2]] + data[spans[0][1] : spans[0][2]]
    with pytest.raises(VcsError, match="^GOP 0 has index 1, expected 0$"):
        reread(path, swapped + data[spans[2][1] :])


@pytest.mark.parametrize(
    ("position", "offset", "value", "said"),
    [
        (1, 0, 2, "GOP 0 frame 1 plane Y has temporal predictor 2 at position 1 of its record, which has no earlier"),
        (2, 0, 4, "GOP 0 frame 2 plane Y has invalid predictor 4, must be 0..3"),
        (0, 1, 5, "GOP 0 frame 0 plane Y has byte_width 5, must be 1..4"),
    ],
)
def test_a_bad_plane_entry_is_named(sample, position: int, offset: int, value: int, said: str) -> None:
    """A payload whose CRC holds (re-sealed) but whose frame table has a predictor or byte_width that §2.4 does not
    allow: the message says which entry and why."""
    path, data, _, _ = sample
    _, start, end = record_spans(data)[0]
    payload = bytearray(data[start + 13 : end - 4])
    # u32 F, then per frame: u32 index, u8 key, and per plane (grey: one) u8 predictor, u8 byte_width, u32 M, …
    payload[4 + position * (5 + 10) + 5 + offset] = value
    sealed = data[: start + 13] + bytes(payload) + struct.pack("<I", zlib.crc32(bytes(payload))) + data[end:]
    with pytest.raises(VcsError) as error:
        reread(path, sealed)
    assert str(error.value).startswith(said), str(error.value)


def test_newer_version_is_refused_by_name(sample) -> None:
    path, data, _, _ = sample
    body = data[14 : header_span(data) - 4]
    with pytest.raises(VcsError) as e:
        reread(path, reseal_header(data, body, version=FORMAT_VERSION + 1))
    newer, ours = FORMAT_VERSION + 1, FORMAT_VERSION
    assert str(e.value) == f"file format version {newer} is newer than this vcscodec reads ({ours}): upgrade vcscodec"
    with pytest.raises(VcsError, match="^file format version 0 is not valid"):
        reread(path, reseal_header(data, body, version=0))
    # A future version may change the header layout completely: the refusal comes before parsing it.
    with pytest.raises(VcsError, match="^file format version 7 is newer"):
        reread(path, reseal_header(data, b"\x00" * 5, version=7))


def test_version_2_carries_the_key_grid_shift(tmp_path: Path) -> None:
    # A stream whose keyframes all share one grid is written as version 1 (readable by every vcscodec); one with a
    # key_grid_shift needs version 2, whose header ends with it, and reads back with it.
    plain = write(tmp_path / "v1.vcs", make_header(), make_records(make_header()))
    assert struct.unpack_from("<H", plain.read_bytes(), 8)[0] == 1
    h = make_header(key_grid_shift=16, frame_count=20)
    recs = make_records(h)
    path = write(tmp_path / "v2.vcs", h, recs)
    data = path.read_bytes()
    version, length = struct.unpack_from("<HI", data, 8)
    assert (version, length) == (2, 123 + len(NAME) + 2)
    assert struct.unpack_from("<H", data, 14 + length - 2)[0] == 16
    header, records = spec_decode(data)
    assert header["key_grid_shift"] == 16 and len(records) == len(recs)
    with ContainerReader(path) as reader:
        assert reader.header == h and [r.index for r in reader] == list(range(h.num_records))
    assert [h.key_shift(g) for g in range(4)] == [0, 16, 0, 16]
    body = data[14 : header_span(data) - 4]
    for shift, rule in ((0, "must be in 1..31"), (32, "must be in 1..31")):
        edited = body[:-2] + struct.pack("<H", shift)
        with pytest.raises(VcsError, match=f"^header field key_grid_shift is {shift}, {rule}"):
            reread(path, reseal_header(data, edited, version=2))
    with pytest.raises(VcsError, match="does not match the header length"):  # a version-1 body labelled 2
        reread(path, reseal_header(data, body[:-2], version=2))
    with pytest.raises(VcsError, match="^header field key_grid_shift is 32, must be in 0..31"):
        make_header(key_grid_shift=32)


@pytest.mark.parametrize("shift", [0, 16])
def test_version_3_carries_the_source_start(tmp_path: Path, shift: int) -> None:
    # A stream cut from later in its source (vcs encode --start) says where it began: version 3, whose header ends
    # with source_start after key_grid_shift (which may be 0 there). Starting at frame 0 keeps version 1 or 2.
    assert make_header(key_grid_shift=shift).version == (2 if shift else 1)
    h = make_header(key_grid_shift=shift, frame_count=20, source_start=1234)
    recs = make_records(h)
    path = write(tmp_path / "v3.vcs", h, recs)
    data = path.read_bytes()
    version, length = struct.unpack_from("<HI", data, 8)
    assert (version, length) == (3, 123 + len(NAME) + 6)
    header, records = spec_decode(data)
    assert (header["key_grid_shift"], header["source_start"], len(records)) == (shift, 1234, len(recs))
    with ContainerReader(path) as reader:
        assert reader.header == h and [r.index for r in reader] == list(range(h.num_records))
    body = data[14 : header_span(data) - 4]
    for start, rule in ((0, "must be in 1..2147483647"), (2**31, "must be in 1..2147483647")):
        with pytest.raises(VcsError, match=f"^header field source_start is {start}, {rule}$"):
            reread(path, reseal_header(data, body[:-4] + struct.pack("<I", start), version=3))
    edited = body[:-6] + struct.pack("<HI", 32, 1234)
    with pytest.raises(VcsError, match="^header field key_grid_shift is 32, must be in 0..31$"):
        reread(path, reseal_header(data, edited, version=3))
    with pytest.raises(VcsError, match="does not match the header length"):  # a version-2 body labelled 3
        reread(path, reseal_header(data, body[:-4], version=3))
    # a block of 0 is named as such, not as a shift outside an empty range (0..-1)
    offset, fmt = BODY["block"]
    no_block = bytearray(body)
    struct.pack_into(fmt, no_block, offset, 0)
    with pytest.raises(VcsError, match="^header field block is 0, must be in 1..256$"):
        reread(path, reseal_header(data, bytes(no_block), version=3))
    with pytest.raises(VcsError, match="^header field source_start is -1, must be in 0..2147483647"):
        make_header(source_start=-1)


@pytest.mark.parametrize(
    ("damage", "detail"),
    [
        ("png", " but a PNG picture (vcs encode makes a .vcs file from a video)"),
        ("y4m", " but a Y4M video (vcs encode makes a .vcs file from a video)"),
        ("mp4", " but an MP4 or MOV video (vcs encode makes a .vcs file from a video)"),
        ("heic", " but a HEIF or AVIF picture (vcs encode makes a .vcs file from a video)"),
        ("text", " (bad magic)"),
        ("crlf_to_lf", " (bad magic: line endings changed, e.g. by a text-mode transfer)"),
        ("lf_to_crlf", " (bad magic: line endings changed, e.g. by a text-mode transfer)"),
        ("high_bit_stripped", " (bad magic)"),
    ],
)
def test_bad_magic(sample, damage: str, detail: str) -> None:
    path, data, _, _ = sample
    damaged = {
        "png": b"\x89PNG\r\n\x1a\n" + data[8:],
        "y4m": b"YUV4MPEG2 W64 H64 F25:1\n" + data[24:],  # the arguments swapped: the source given as the .vcs
        "mp4": b"\x00\x00\x00\x20ftypisom" + data[12:],
        "heic": b"\x00\x00\x00\x18ftypheic" + data[12:],
        "text": b"hello world, this is text\n" * 3,
        "crlf_to_lf": data.replace(b"\r\n", b"\n"),
        "lf_to_crlf": data.replace(b"\n", b"\r\n"),
        "high_bit_stripped": bytes(b & 0x7F for b in data),
    }[damage]
    with pytest.raises(VcsError) as e:
        reread(path, damaged)
    assert str(e.value) == f"not a .vcs file{detail}"


BODY = {  # offset, struct format of the version-1 header body fields (docs/format.md)
    "width": (0, "<I"), "height": (4, "<I"), "fps_num": (8, "<I"), "fps_den": (12, "<I"),
    "frame_count": (16, "<I"), "gop": (20, "<H"), "block": (22, "<H"), "alpha_k": (24, "<d"),
    "alpha_n": (32, "<d"), "m_k": (40, "<I"), "m_n": (44, "<I"), "quant_step": (48, "<d"),
    "chroma": (56, "<B"),
}  # fmt: skip


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("width", 0, "header field width is 0, must be in 1..65535"),
        ("height", 70000, "header field height is 70000, must be in 1..65535"),
        ("fps_num", 0, "header field fps_num is 0, must be in 1..4294967295"),
        ("frame_count", 0, "header field frame_count is 0, must be in 1..2147483647"),
        ("gop", 0, "header field gop is 0, must be in 1..65535"),
        ("block", 300, "header field block is 300, must be in 1..256"),
        ("alpha_k", -0.5, "header field alpha_k is -0.5, must be in (0, 1]"),
        ("alpha_n", math.nan, "header field alpha_n is nan, must be in (0, 1]"),
        ("m_n", 103, "header field m_n is 103, must equal round(alpha_n·block²) = 102"),
        ("quant_step", 0.0, "header field quant_step is 0.0, must be in (0, 65535]"),
        ("chroma", 2, "header field chroma is 2, must be 0 (gray) or 1 (yuv420)"),
    ],
)
def test_invalid_header_field_in_file(sample, field: str, value: float, expected: str) -> None:
    path, data, _, _ = sample
    body = bytearray(data[14 : header_span(data) - 4])
    offset, fmt = BODY[field]
    struct.pack_into(fmt, body, offset, value)
    with pytest.raises(VcsError) as e:
        reread(path, reseal_header(data, bytes(body)))
    assert str(e.value) == expected


@pytest.mark.parametrize(("shift", "start"), [(0, 0), (16, 1234)])
def test_version_4_carries_the_chroma_siting(tmp_path: Path, shift: int, start: int) -> None:
    # A source that says where its chroma sits gets version 4, whose header ends with chroma_siting (a u8, H.273's
    # code + 1) after source_start; there key_grid_shift and source_start may both be 0. Unsaid: an older version.
    assert make_header(key_grid_shift=shift, source_start=start).version == (3 if start else 2 if shift else 1)
    for code, siting in enumerate(("left", "center", "topleft", "top", "bottomleft", "bottom"), 1):
        h = make_header(key_grid_shift=shift, source_start=start, chroma_siting=siting)
        path = write(tmp_path / f"v4-{siting}.vcs", h, make_records(h))
        data = path.read_bytes()
        assert struct.unpack_from("<HI", data, 8) == (4, 123 + len(NAME) + 7)
        assert data[header_span(data) - 5] == code
        header, _ = spec_decode(data)
        assert (header["chroma_siting"], header["source_start"], header["key_grid_shift"]) == (siting, start, shift)
        with ContainerReader(path) as reader:
            assert reader.header == h
    body = data[14 : header_span(data) - 4]
    for code in (0, 7, 255):
        with pytest.raises(VcsError, match=f"^header field chroma_siting is {code}, must be in 1..6$"):
            reread(path, reseal_header(data, body[:-1] + bytes([code]), version=4))
    with pytest.raises(VcsError, match="does not match the header length"):  # a version-3 body labelled 4
        reread(path, reseal_header(data, body[:-1], version=4))
    with pytest.raises(VcsError, match="^header field chroma_siting is 'middle', must be None or one of left, "):
        make_header(chroma_siting="middle")


def test_invalid_names_in_file(sample) -> None:
    path, data, _, _ = sample
    body = data[14 : header_span(data) - 4]
    fixed = body[:121]

    def with_name(raw: bytes, declared: int | None = None) -> bytes:
        return fixed + struct.pack("<H", len(raw) if declared is None else declared) + raw

    with pytest.raises(VcsError, match="^header field model_name is not valid UTF-8$"):
        reread(path, reseal_header(data, with_name(b"caf\xc3")))
    with pytest.raises(VcsError, match=r"^header field model_name .* must not contain U\+0000–U\+001F, U\+007F or"):
        reread(path, reseal_header(data, with_name(b"a\x00b")))
    with pytest.raises(VcsError, match="^header field model_name length 9 does not match the header length"):
        reread(path, reseal_header(data, with_name(b"abc", declared=9)))
    sha_upper = body[:57] + SHA.upper().encode() + body[121:]
    with pytest.raises(VcsError, match="^header field weights_sha256 .* must be 64 lowercase hex digits$"):
        reread(path, reseal_header(data, sha_upper))
    sha_binary = body[:57] + b"\xff" * 64 + body[121:]
    said = "^header field weights_sha256 is not ASCII \\(bytes ff ff ff ff ff ff ff ff …\\), must be 64 lowercase hex"
    with pytest.raises(VcsError, match=said):
        reread(path, reseal_header(data, sha_binary))
    with pytest.raises(VcsError, match="^header length 50 is too short for format version 1$"):
        reread(path, reseal_header(data, body[:50]))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(VcsError, match="^.*nope.vcs: no such file$"):
        read_header(tmp_path / "nope.vcs")


# ---------------------------------------------------------------------------------------------- writer


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if ".tmp-" in p.name]


def test_writer_uses_temp_name_and_renames(tmp_path: Path) -> None:
    h = make_header(frame_count=1)
    out = tmp_path / "o.vcs"
    with ContainerWriter(out, h) as w:
        assert Path(w.tmp_path) == tmp_path / f"o.vcs.tmp-{os.getpid()}"
        assert Path(w.tmp_path).exists() and not out.exists()
        w.write_record(make_records(h)[0])
    assert out.exists() and no_temp_files(tmp_path)


def test_writer_abort_leaves_no_file(tmp_path: Path) -> None:
    h = make_header(frame_count=20)
    out = tmp_path / "o.vcs"
    with pytest.raises(RuntimeError, match="boom"), ContainerWriter(out, h) as w:
        w.write_record(make_records(h)[0])
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_writer_refuses_incomplete_file(tmp_path: Path) -> None:
    h = make_header(frame_count=20)
    out = tmp_path / "o.vcs"
    with pytest.raises(VcsError, match=r"^cannot finish .*o\.vcs: 2 of 4 GOP records written$"):
        with ContainerWriter(out, h) as w:
            for r in make_records(h)[:2]:
                w.write_record(r)
    assert list(tmp_path.iterdir()) == []


def test_existing_output(tmp_path: Path) -> None:
    h = make_header(frame_count=1)
    out = tmp_path / "o.vcs"
    out.write_bytes(b"keep me")
    with pytest.raises(VcsError, match=r"^.*o\.vcs already exists \(use --force to overwrite\)$"):
        ContainerWriter(out, h)
    assert out.read_bytes() == b"keep me" and no_temp_files(tmp_path)
    write_forced = ContainerWriter(out, h, force=True)
    write_forced.write_record(make_records(h)[0])
    assert out.read_bytes() == b"keep me"  # untouched until close()
    write_forced.close()
    assert read_header(out) == h


def test_missing_or_unwritable_folder(tmp_path: Path) -> None:
    h = make_header(frame_count=1)
    missing = tmp_path / "no" / "such"
    with pytest.raises(VcsError, match=f"^output folder {re.escape(str(missing))} does not exist$"):
        ContainerWriter(missing / "o.vcs", h)
    with pytest.raises(VcsError, match=f"^{re.escape(str(tmp_path))} is a folder$"):
        ContainerWriter(tmp_path, h)
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(VcsError, match=f"^output folder {re.escape(str(locked))} is not writable$"):
            ContainerWriter(locked / "o.vcs", h)


def test_writer_checks_records(tmp_path: Path) -> None:
    h = make_header(frame_count=9, chroma="yuv420")
    recs = make_records(h)
    w = ContainerWriter(tmp_path / "o.vcs", h)

    def bad(rec: GopRecord, pattern: str) -> None:
        with pytest.raises(VcsError, match=pattern):
            w.write_record(rec)

    r0 = recs[0]
    bad(recs[1], "^GOP record index 1, expected 0$")
    bad(GopRecord(0, r0.frames[:7]), r"^GOP 0 has 7 frames, the layout needs 8 \(0\.\.7\)$")
    frames = [FrameMeasurements(f.index, f.key, f.planes) for f in r0.frames]
    frames[3] = FrameMeasurements(3, True, r0.frames[3].planes)
    bad(GopRecord(0, frames), "^GOP 0 frame 3 has key=True, the layout says key=False$")
    frames[3] = FrameMeasurements(4, False, r0.frames[3].planes)
    bad(GopRecord(0, frames), "^GOP 0 frame index 4, expected 3$")
    frames[3] = FrameMeasurements(3, False, r0.frames[3].planes[:1])
    bad(GopRecord(0, frames), "^GOP 0 frame 3 has 1 planes, yuv420 needs 3$")
    frames[3] = FrameMeasurements(3, False, [p[:, :1] for p in r0.frames[3].planes])
    bad(
        GopRecord(0, frames),
        r"^GOP 0 frame 3 plane Y has shape \(102, 1, 4\), the header needs \(102, 2, 4\)$",
    )
    frames[3] = FrameMeasurements(3, False, [p.astype(np.float32) for p in r0.frames[3].planes])
    bad(GopRecord(0, frames), "^GOP 0 frame 3 plane Y has dtype float32, expected quantized integers$")
    big = [p.astype(np.int64) for p in r0.frames[3].planes]
    big[2][0, 0, 0] = Q_MAX + 1
    frames[3] = FrameMeasurements(3, False, big)
    bad(GopRecord(0, frames), f"^GOP 0 frame 3 plane V has a value beyond ±{Q_MAX}$")
    for r in recs:  # the failed attempts wrote nothing
        w.write_record(r)
    bad(recs[0], "^all 2 GOP records are already written$")
    w.close()
    assert_records_equal(recs, read_all(tmp_path / "o.vcs")[1])
