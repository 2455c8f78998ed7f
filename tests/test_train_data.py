"""The data side of `vcs train` on tiny files: the luma cache, photos of every kind, damaged packs, the test-set
guard, raw .yuv clips and the `--pack` target. Photos and raw clips only (no encoder), never the real data."""

from __future__ import annotations

import errno
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from skimage.io import imsave
from typer.testing import CliRunner

from vcscodec.errors import OptionConflict, VcsError
from vcscodec.train.data import (
    bt601_luma,
    check_not_test_set,
    find_sources,
    load_clips,
    photo_luma,
    read_pack,
    read_pack_meta,
    write_pack,
)

SIZE = (48, 64)  # height, width of the test pictures


def _rgb(seed: int = 0) -> np.ndarray:
    """A smooth 8-bit colour picture (every value of each channel used somewhere)."""
    y, x = np.mgrid[: SIZE[0], : SIZE[1]]
    rng = np.random.default_rng(seed)
    return np.stack([(x * 4 + y) % 256, (y * 5) % 256, rng.integers(0, 256, SIZE)], -1).astype(np.uint8)


def _photo(path: Path, image: np.ndarray) -> Path:
    imsave(path, image, check_contrast=False)
    return path


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """A folder of two 8-bit colour photos."""
    folder = tmp_path / "photos"
    folder.mkdir()
    _photo(folder / "one.png", _rgb(0))
    _photo(folder / "two.png", _rgb(1))
    return folder


# ---- 1. the luma cache --------------------------------------------------------------------------------------------
class _Interrupt(BaseException):
    """Stands for Ctrl-C: the CLI raises a BaseException of its own on SIGINT and SIGTERM."""


@pytest.mark.parametrize("failure", [_Interrupt(), OSError(errno.ENOSPC, "No space left on device")])
def test_interrupted_cache_write_leaves_nothing(
    tmp_path: Path, photos: Path, monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    """Stopped while the decoded luma is being written, the cache keeps no temporary file (each one is as large as
    the clip's luma), and the next run decodes the clip into place."""
    save = np.save

    def save_then_fail(file: Path, array: np.ndarray) -> None:
        save(file, array)  # the whole temporary file is there when the stop comes
        raise failure

    cache = tmp_path / "cache"
    monkeypatch.setattr(np, "save", save_then_fail)
    with pytest.raises(type(failure)):
        load_clips([photos / "one.png"], cache, 12, (32, 32))
    assert list(cache.iterdir()) == []
    monkeypatch.undo()
    (clip,) = load_clips([photos / "one.png"], cache, 12, (32, 32))
    assert [p.name for p in cache.iterdir()] == [f"{clip.sha256_prefix}.npy"] and clip.frames.shape == (12, 32, 32)


# ---- 2. photos ----------------------------------------------------------------------------------------------------
def _grey() -> np.ndarray:
    return _rgb(0)[..., 0]


def _alpha() -> np.ndarray:
    return np.random.default_rng(9).integers(0, 256, SIZE).astype(np.uint8)


# Every kind of picture, and the 8-bit colour picture whose luma it must give (grey is R = G = B).
KINDS = {
    "grey.png": (lambda: _grey(), lambda: np.repeat(_grey()[..., None], 3, -1)),
    "grey-alpha.png": (lambda: np.stack([_grey(), _alpha()], -1), lambda: np.repeat(_grey()[..., None], 3, -1)),
    "grey16.png": (lambda: _grey().astype(np.uint16) * 257, lambda: np.repeat(_grey()[..., None], 3, -1)),
    "grey-float.tif": (lambda: _grey().astype(np.float32) / 255, lambda: np.repeat(_grey()[..., None], 3, -1)),
    "rgb.png": (lambda: _rgb(), lambda: _rgb()),
    "rgba.png": (lambda: np.concatenate([_rgb(), _alpha()[..., None]], -1), lambda: _rgb()),
    "rgb16.tif": (lambda: _rgb().astype(np.uint16) * 257, lambda: _rgb()),
}


@pytest.mark.parametrize("name", KINDS)
def test_every_kind_of_photo_gives_its_luma(tmp_path: Path, name: str) -> None:
    """Grey, grey + alpha, RGB, RGBA, 16-bit and float pictures give the limited-range luma of the same picture in
    8-bit RGB: the alpha dropped, 16 bits and floats scaled (not clipped to white)."""
    image, reference = KINDS[name]
    luma = photo_luma(_photo(tmp_path / name, image()))
    assert luma.shape == SIZE
    np.testing.assert_array_equal(luma, bt601_luma(reference()))


def test_grey_photo_has_the_luma_range_of_video(tmp_path: Path) -> None:
    """Black and white of a grey photo are 16 and 235, as in a colour photo and a decoded video."""
    luma = photo_luma(_photo(tmp_path / "bw.png", np.array([[0, 255]] * 4, np.uint8)))
    np.testing.assert_allclose(luma, [[16, 235]] * 4)


def test_16_bit_photo_trains_on_its_picture(tmp_path: Path) -> None:
    """The clip made of a 16-bit photo shows the picture (before: every pixel 255)."""
    _photo(tmp_path / "deep.png", _grey().astype(np.uint16) * 257)
    (clip,) = load_clips([tmp_path / "deep.png"], tmp_path / "cache", 4, (32, 32))
    frames = np.asarray(clip.frames)
    assert 16 <= frames.min() and frames.max() <= 235 and frames.std() > 20


@pytest.mark.parametrize("content", [b"not a picture\n", b"", b"\x89PNG\r\n\x1a\n" + b"\0" * 40])
def test_unreadable_photo_is_one_line_error_naming_it(tmp_path: Path, content: bytes) -> None:
    """A file with a photo's suffix that is no picture (text, empty, a cut-off PNG) is refused by name."""
    bad = tmp_path / "holiday.png"
    bad.write_bytes(content)
    with pytest.raises(VcsError, match=f"^{bad} is not a picture that can be read$"):
        load_clips([bad], tmp_path / "cache", 4, (32, 32))
    assert not (tmp_path / "cache").exists() or list((tmp_path / "cache").iterdir()) == []


# ---- 3. damaged packs ---------------------------------------------------------------------------------------------
@pytest.fixture
def pack(tmp_path: Path, photos: Path) -> Path:
    target = tmp_path / "luma.npz"
    write_pack(load_clips(find_sources([photos]), tmp_path / "cache", 12, (32, 32)), target, max_mb=0)
    return target


def _flip_byte_in(pack: Path, member: str) -> Path:
    """A copy of the pack with one bit flipped in the middle of a member's compressed data."""
    data = bytearray(pack.read_bytes())
    with zipfile.ZipFile(pack) as z:
        info = z.getinfo(member)
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
    data[info.header_offset + 30 + name_length + extra_length + info.compress_size // 2] ^= 0x01
    damaged = pack.with_name(f"damaged-{member}.npz")
    damaged.write_bytes(bytes(data))
    return damaged


def test_damaged_clip_in_pack_names_pack_and_clip(pack: Path) -> None:
    damaged = _flip_byte_in(pack, "clip0001.npy")
    assert read_pack_meta(damaged)["clips"][1]["name"] == "two"  # the record is intact
    with pytest.raises(VcsError, match=f"^{damaged}: clip two is damaged \\(Bad CRC-32 for file 'clip0001.npy'\\)$"):
        read_pack(damaged)
    assert [c.name for c in read_pack(pack)] == ["one", "two"]  # the intact pack reads


def test_damaged_pack_record_names_pack(pack: Path) -> None:
    damaged = _flip_byte_in(pack, "meta.npy")
    for read in (read_pack_meta, read_pack):
        with pytest.raises(VcsError, match=f"^{damaged} is not a luma pack .* or is damaged \\(Bad CRC-32"):
            read(damaged)


@pytest.mark.parametrize("cut", [0, 100, -30])
def test_empty_or_cut_off_pack_names_pack(pack: Path, cut: int) -> None:
    """An empty pack, and one cut off at its start or end (a copy that stopped), is a one-line error."""
    short = pack.with_name("short.npz")
    short.write_bytes(pack.read_bytes()[:cut])
    for read in (read_pack_meta, read_pack):
        with pytest.raises(VcsError, match=f"^{short} is (empty|not a luma pack)"):
            read(short)


# ---- 4. the test set ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "foreman_352x288_30.yuv",
        "akiyo_qcif.y4m",
        "mother-daughter_cif.y4m",
        "mother_daughter_cif.y4m",
        "Coastguard-CIF.mp4",
        "paris.cif.y4m",
        "silent.y4m",
        "foreman_cif.y4m",
    ],
)
def test_test_sequences_are_refused_by_their_common_names(name: str) -> None:
    with pytest.raises(VcsError, match=f"^data/{name} looks like .*, a test sequence of the paper"):
        check_not_test_set([Path("data") / name])


@pytest.mark.parametrize("name", ["foremanship.y4m", "akiyos_garden.mp4", "parisian.png", "mother.y4m", "x_akiyo.y4m"])
def test_names_that_only_begin_like_a_test_sequence_pass(name: str) -> None:
    check_not_test_set([Path("data") / name])


# ---- 5. raw .yuv --------------------------------------------------------------------------------------------------
def test_raw_yuv_without_rate_in_its_name_trains(tmp_path: Path) -> None:
    """Training never uses the frame rate: a raw .yuv needs only its size in its name."""
    rng = np.random.default_rng(3)
    planes = rng.integers(0, 256, (3, 24 * 32 * 3 // 2), dtype=np.uint8)  # three I420 frames of 32×24
    folder = tmp_path / "raw"
    folder.mkdir()
    (folder / "street_32x24.yuv").write_bytes(planes.tobytes())
    (clip,) = load_clips(find_sources([folder]), tmp_path / "cache")
    np.testing.assert_array_equal(clip.frames, planes[:, : 24 * 32].reshape(3, 24, 32))


def test_truncated_clip_is_trained_on_with_the_warning_encode_gives(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A clip that ends in a partial frame loses that frame, and says so once, when it is decoded into the cache."""
    folder = tmp_path / "clips"
    folder.mkdir()
    frame = b"FRAME\n" + bytes(24 * 32 * 3 // 2)
    (folder / "cut.y4m").write_bytes(b"YUV4MPEG2 W32 H24 F25:1 C420jpeg\n" + 2 * frame + frame[:100])
    (clip,) = load_clips(find_sources([folder]), tmp_path / "cache")
    assert clip.frames.shape == (2, 24, 32)
    said = capsys.readouterr().err
    assert (
        said == f"vcs: warning: {folder / 'cut.y4m'} ends in a partial frame (100 bytes; truncated?): it is left out\n"
    )
    load_clips(find_sources([folder]), tmp_path / "cache")  # from the cache: nothing to say again
    assert capsys.readouterr().err == ""


def test_raw_yuv_without_size_in_its_name_is_refused_before_decoding(tmp_path: Path, photos: Path) -> None:
    (photos / "street.yuv").write_bytes(bytes(24 * 32 * 3 // 2))
    with pytest.raises(VcsError, match=f"^{photos / 'street.yuv'}: a raw .yuv must give its frame size in its name"):
        find_sources([photos])


# ---- 6. the --pack target -----------------------------------------------------------------------------------------
def _settings(*train: Path) -> list[str]:
    """--set overrides: the given data.train entries, small photo clips, no size limit."""
    entries = ", ".join(f'"{p}"' for p in train)
    return [f"data.train=[{entries}]", "data.photo_frames=12", "data.photo_width=32", "data.photo_height=32"] + [
        "data.pack_max_mb=0"
    ]


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails the test if the data is decoded: a refused target must be refused first."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("decoding started before the --pack target was checked")

    monkeypatch.setattr("vcscodec.train.loop.load_data", refuse)


def test_pack_target_that_is_a_folder_or_not_npz_is_refused(
    tmp_path: Path, photos: Path, monkeypatch: pytest.MonkeyPatch, no_decoding: None
) -> None:
    from vcscodec.train.cli import pack_command

    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "packs.npz"
    folder.mkdir()
    for target in (folder, tmp_path):
        with pytest.raises(VcsError, match=f"^--pack {target} is a folder"):
            pack_command(None, _settings(photos), target, force=True)
    for name in ("luma.txt", "luma", "luma.npz.part"):
        with pytest.raises(VcsError, match=f"^--pack {tmp_path / name}: a luma pack's name must end in .npz"):
            pack_command(None, _settings(photos), tmp_path / name, force=True)
        assert not (tmp_path / name).exists()
    (tmp_path / "plain").write_text("x")  # the pack's folder would have to be made inside a file
    with pytest.raises(VcsError, match=f"^--pack {tmp_path / 'plain' / 'sub'} cannot be a folder: .*plain is a file"):
        pack_command(None, _settings(photos), tmp_path / "plain" / "sub" / "luma.npz", force=True)


def test_existing_pack_is_kept_unless_forced(tmp_path: Path, photos: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vcscodec.train.cli import pack_command

    monkeypatch.chdir(tmp_path)
    target = tmp_path / "luma.npz"
    target.write_bytes(b"an older pack")
    with monkeypatch.context() as m:
        m.setattr("vcscodec.train.loop.load_data", lambda *a, **k: pytest.fail("decoded before the check"))
        with pytest.raises(VcsError, match=f"^{target} already exists \\(use --force to overwrite\\)$"):
            pack_command(None, _settings(photos), target)
    assert target.read_bytes() == b"an older pack"
    meta = pack_command(None, _settings(photos), target, force=True)
    assert [c["name"] for c in read_pack_meta(target)["clips"]] == ["one", "two"] == [c["name"] for c in meta["clips"]]


def test_input_pack_is_never_overwritten(
    tmp_path: Path, photos: Path, pack: Path, monkeypatch: pytest.MonkeyPatch, no_decoding: None
) -> None:
    """Not even with --force, and not by another spelling of its path: it is what the pack would be made of."""
    from vcscodec.train.cli import pack_command

    monkeypatch.chdir(tmp_path)
    before = pack.read_bytes()
    for target in (pack, Path("sub/../luma.npz")):
        (tmp_path / "sub").mkdir(exist_ok=True)
        with pytest.raises(VcsError, match=f"^{target} is one of the packs in data.train: choose another output name"):
            pack_command(None, _settings(pack, photos), target, force=True)
    assert pack.read_bytes() == before


def test_cli_force_goes_with_pack(tmp_path: Path, photos: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`vcs train --pack X -f` overwrites; `--force` without `--pack` is refused (a run is never overwritten)."""
    from vcscodec.cli import app

    monkeypatch.chdir(tmp_path)
    target = tmp_path / "luma.npz"
    target.write_bytes(b"old")
    settings = [a for s in _settings(photos) for a in ("--set", s)]
    refused = CliRunner().invoke(app, ["train", "--pack", str(target), *settings])
    assert refused.exit_code == 1 and "already exists" in str(refused.exception)
    result = CliRunner().invoke(app, ["train", "--pack", str(target), "-f", *settings])
    assert result.exit_code == 0, result.output
    assert len(read_pack(target)) == 2
    alone = CliRunner().invoke(app, ["train", "--force", *settings])
    assert isinstance(alone.exception, OptionConflict) and str(alone.exception).startswith("--force goes with --pack")


def test_pack_does_not_go_with_resume(tmp_path: Path) -> None:
    from vcscodec.train.cli import train_command

    with pytest.raises(VcsError, match="--pack writes a pack and trains nothing: it does not go with --resume"):
        train_command(None, [], resume=True, quiet=True, pack=tmp_path / "luma.npz")
    assert not (tmp_path / "luma.npz").exists()
