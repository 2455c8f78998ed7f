"""Pictures are read as shown: display matrices (turns and mirrors) and photos' EXIF orientation."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from skimage import data

from vcscodec.io import Frame, open_video
from vcscodec.metrics import psnr
from vcscodec.orientation import matrix_orientation, shown

# Every linear part (a, b, c, d) with entries in {-1, 0, 1} that keeps the picture whole: the eight ways a matrix
# can turn or mirror it.
EIGHT = [
    (1, 0, 0, 1),
    (-1, 0, 0, 1),
    (1, 0, 0, -1),
    (-1, 0, 0, -1),
    (0, -1, 1, 0),
    (0, 1, -1, 0),
    (0, 1, 1, 0),
    (0, -1, -1, 0),
]


def moved_by_matrix(stored: np.ndarray, a: int, b: int, c: int, d: int) -> np.ndarray:
    """The picture a display matrix shows, pixel by pixel from its definition: stored (x, y), y downwards, goes to
    (a·x + c·y, b·x + d·y), shifted back into view."""
    h, w = stored.shape
    ys, xs = np.mgrid[0:h, 0:w]
    to_x, to_y = a * xs + c * ys, b * xs + d * ys
    to_x, to_y = to_x - to_x.min(), to_y - to_y.min()
    out = np.zeros((to_y.max() + 1, to_x.max() + 1), stored.dtype)
    out[to_y, to_x] = stored
    return out


def matrix(a: int, b: int, c: int, d: int, scale: float = 1.0) -> np.ndarray:
    """FFmpeg's nine int32: 16.16 fixed point for the linear part, 2.30 for the last column."""
    one = round(65536 * scale)
    return np.array([a * one, b * one, 0, c * one, d * one, 0, 0, 0, 1 << 30], dtype=np.int32)


@pytest.mark.parametrize("linear", EIGHT)
def test_each_matrix_moves_pixels_as_its_definition_says(linear):
    stored = np.arange(5 * 8).reshape(5, 8)  # no two pixels alike, not square
    expected = moved_by_matrix(stored, *linear)
    for scale in (1.0, 2.0):  # a matrix that also scales (some muxers write one) turns the same way
        orientation = matrix_orientation(matrix(*linear, scale))
        assert orientation is not None
        np.testing.assert_array_equal(shown(stored, orientation), expected)
    stretched = matrix(*linear).astype(np.int64)
    stretched[[0, 3]] *= 2  # x twice as wide (a pixel aspect ratio): the same turn
    np.testing.assert_array_equal(shown(stored, matrix_orientation(stretched.astype(np.int32))), expected)


def test_a_matrix_that_is_not_a_quarter_turn_or_a_mirror_has_no_orientation():
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    tilted = np.array([c * 65536, -s * 65536, 0, s * 65536, c * 65536, 0, 0, 0, 1 << 30]).astype(np.int32)
    assert matrix_orientation(tilted) is None
    assert matrix_orientation(np.zeros(9, np.int32)) == (0, False)  # undefined: ignored, as ffmpeg ignores it
    sheared = matrix(1, 0, 0, 1)
    sheared[3] = 65536  # x' = x + y
    assert matrix_orientation(sheared) is None
    c, s = round(np.cos(np.radians(0.5)) * 65536), round(np.sin(np.radians(0.5)) * 65536)
    assert matrix_orientation(np.array([c, s, 0, -s, c, 0, 0, 0, 1 << 30])) == (0, False)  # within 1°: upright


def upright_picture() -> np.ndarray:
    """A grey 64×32 picture that looks like none of its turns or mirrors (the astronaut's face)."""
    return data.astronaut()[40:104:2, 160:288:2].mean(axis=2).astype(np.uint8)


# EXIF orientation → how a camera stores the upright picture U, from the tag's definition (where the stored
# picture's first row and column are shown): 6 = shown after a clockwise quarter turn, so stored a
# counter-clockwise one; 5 and 7 are the two transposes.
STORED_FOR_EXIF = {
    1: lambda u: u,
    2: lambda u: u[:, ::-1],
    3: lambda u: u[::-1, ::-1],
    4: lambda u: u[::-1],
    5: lambda u: u.T,
    6: lambda u: np.rot90(u, 1),
    7: lambda u: np.rot90(u, 2).T,
    8: lambda u: np.rot90(u, -1),
}


def write_photo(path: Path, stored: np.ndarray, orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(np.ascontiguousarray(stored)).convert("RGB").save(path, exif=exif)


def luma(path: Path) -> tuple[tuple[int, int], list[Frame]]:
    with open_video(path) as reader:
        return (reader.info.width, reader.info.height), list(reader)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_photo_is_read_as_its_exif_orientation_shows_it(tmp_path, orientation):
    """Phones store a photo as the sensor saw it and say in EXIF how to show it; all eight values, mirrors
    included, are read upright (PNG: lossless, so the luma must be exactly the upright photo's)."""
    upright = upright_picture()
    write_photo(tmp_path / "upright.png", upright, 1)
    _, (reference,) = luma(tmp_path / "upright.png")
    write_photo(tmp_path / "photo.png", STORED_FOR_EXIF[orientation](upright), orientation)
    size, (frame,) = luma(tmp_path / "photo.png")
    assert size == (64, 32)
    np.testing.assert_array_equal(frame.y, reference.y)
    assert frame.u.shape == reference.u.shape == (16, 32)


def test_a_photo_with_corrupt_exif_is_read_as_stored_without_a_word_from_pillow(tmp_path):
    """Pillow warns of corrupt EXIF (two lines on stderr, outside vcs's one-line messages): silenced."""
    upright = upright_picture()
    Image.fromarray(upright).save(tmp_path / "odd.jpg", exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff")
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        size, (frame,) = luma(tmp_path / "odd.jpg")
    assert size == (64, 32) and frame.y.shape == (32, 64)
    assert not said, [str(w.message) for w in said]


def test_numbered_photos_each_follow_their_own_exif(tmp_path):
    """A folder of phone photos mixes orientations: each is read upright, at the first one's size."""
    upright = upright_picture()
    write_photo(tmp_path / "upright.png", upright, 1)
    _, (reference,) = luma(tmp_path / "upright.png")
    for number, orientation in enumerate((6, 1, 8, 3), start=1):
        write_photo(tmp_path / f"p_{number:03d}.png", STORED_FOR_EXIF[orientation](upright), orientation)
    with open_video(tmp_path / "p_%03d.png") as reader:
        frames = list(reader)
        assert (reader.info.width, reader.info.height) == (64, 32) and not reader.rescaled
    assert len(frames) == 4
    for frame in frames:
        np.testing.assert_array_equal(frame.y, reference.y)
    with open_video(tmp_path / "p_%03d.png", start=2) as reader:  # from p_003.png: each still by its own EXIF
        frames = list(reader)
        assert (reader.info.width, reader.info.height) == (64, 32) and not reader.rescaled
    assert len(frames) == 2 and all(np.array_equal(f.y, reference.y) for f in frames)


def test_a_photo_of_another_shape_as_shown_is_scaled_and_said(tmp_path):
    upright = upright_picture()
    write_photo(tmp_path / "p_1.png", upright, 1)
    write_photo(tmp_path / "p_2.png", upright, 6)  # shown 32×64
    with open_video(tmp_path / "p_%d.png") as reader:
        frames = list(reader)
        assert reader.rescaled == [(1, 32, 64)]
        assert "frame 1 is 32x64) scaled to 64x32" in reader.rescale_warning()
    assert frames[1].y.shape == (32, 64)


def _write_mp4_with_matrix(path: Path, stored: np.ndarray, linear: tuple[int, int, int, int]) -> None:
    """An MPEG-4 file of three copies of ``stored`` whose track matrix (tkhd) is ``linear``: PyAV writes only
    rotations, so the box is patched, as a muxer that mirrors would write it."""
    height, width = stored.shape
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=25, options={"qscale": "2"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        chroma = np.full((height // 2, width), 128, np.uint8)
        for i in range(3):
            picture = av.VideoFrame.from_ndarray(np.concatenate([stored, chroma]), format="yuv420p")
            picture.pts = i
            out.mux(stream.encode(picture))
        out.mux(stream.encode())
    raw = bytearray(path.read_bytes())
    box = raw.index(b"tkhd") - 4  # its size field
    version = raw[box + 8]
    at = box + (48 if version == 0 else 60)  # the matrix, after the times, ids, layer, group and volume
    assert struct.unpack(">9i", raw[at : at + 36]) == (65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30)  # identity: found
    a, b, c, d = (v * 65536 for v in linear)
    raw[at : at + 36] = struct.pack(">9i", a, b, 0, c, d, 0, 0, 0, 1 << 30)
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("linear", [(-1, 0, 0, 1), (1, 0, 0, -1), (0, 1, 1, 0), (0, -1, -1, 0), (0, 1, -1, 0)])
def test_a_video_whose_display_matrix_mirrors_is_read_mirrored(tmp_path, linear):
    """A display matrix that mirrors (some front cameras' videos) is applied as ffmpeg applies it: before, a
    mirror was read as a half turn (PyAV's angle of a mirror is 180°) or not at all."""
    upright = upright_picture()
    path = tmp_path / "mirrored.mp4"
    _write_mp4_with_matrix(path, upright, linear)
    size, frames = luma(path)
    expected = moved_by_matrix(upright, *linear)
    assert size == expected.shape[::-1] and len(frames) == 3
    right = psnr(expected, frames[0].y)
    for wrong in (np.rot90(expected, 2), expected[:, ::-1]):  # the other way up, the other mirror
        assert psnr(wrong, frames[0].y) < right - 8
    assert right > 25
