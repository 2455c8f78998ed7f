"""Training data: videos and photographs decoded once into a luma cache, sampled as GOP chains.

A sample is one GOP of ``gop`` frames plus the next keyframe (``gop + 1`` frames), randomly cropped, flipped
and played forwards or backwards. Photographs become clips through a simulated camera (pan, zoom, small
rotation). The test set (``../shared/data/cif``) must never be given as training data: ``check_not_test_set``
refuses the paper's six sequence names.

A *luma pack* (``write_pack``) is the whole decoded collection in one compressed ``.npz`` (no pickles): what a
machine without PyAV (a rented GPU) trains from. ``DeviceChainSampler`` keeps the frames on the GPU and crops
there, drawing exactly the same chains as the CPU ``ChainSampler`` for the same random state.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import VcsError
from ..output import replaced_whole

if TYPE_CHECKING:
    import torch

VIDEO_SUFFIXES = {".mp4", ".mkv", ".avi", ".webm", ".mov", ".y4m", ".yuv"}
PHOTO_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
TEST_SEQUENCES = ("akiyo", "coastguard", "foreman", "mother_daughter", "paris", "silent")
MEDIA_SUFFIXES = VIDEO_SUFFIXES | PHOTO_SUFFIXES
CACHE_VERSION = 1  # part of every cache key: bump it when decoding changes, never otherwise
# Part of a photo's cache key only: version 2 scales 16-bit photos (version 1 clipped them to white) and gives grey
# photos the luma range of colour ones. Videos keep their keys, so their (long) decoding is not redone.
PHOTO_VERSION = 2
PACK_FORMAT = "vcscodec-luma-pack"
PACK_VERSION = 1


def find_sources(folders: list[Path]) -> list[Path]:
    """Every video and photo below the given folders, sorted; refuses missing or empty folders, test sequences and
    raw .yuv files whose name does not give their frame size."""
    sources: list[Path] = []
    for folder in folders:
        if not folder.is_dir():
            raise VcsError(f"data folder {folder} does not exist")
        found = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES)
        if not found:
            raise VcsError(f"data folder {folder} holds no video or photo")
        sources += found
    check_not_test_set(sources)
    for p in sources:
        check_raw_size(p)
    return sources


def check_raw_size(path: Path) -> None:
    """A raw .yuv must say its frame size in its name: training has no --size (nor needs its rate: see
    `decode_luma`)."""
    if path.suffix.lower() == ".yuv":
        from ..io import parse_raw_name  # imports PyAV: only for a raw video, which needs it anyway

        if parse_raw_name(path)[0] is None:
            raise VcsError(f"{path}: a raw .yuv must give its frame size in its name (e.g. clip_352x288.yuv)")


def check_not_test_set(sources: list[Path]) -> None:
    """The cheap check we can make: the paper's test sequences by name. A stem that is a name or starts with one
    followed by ``_``, ``-`` or ``.`` (``foreman_352x288_30``, ``akiyo_qcif``, ``mother-daughter_cif``) is
    refused; ``-`` and ``_`` count as one. A name running on (``foremanship``) is not one of them."""
    for p in sources:
        stem = p.stem.lower().replace("-", "_")
        for name in TEST_SEQUENCES:
            if stem == name or stem.startswith((f"{name}_", f"{name}.")):
                raise VcsError(f"{p} looks like {name}, a test sequence of the paper: never train on the test set")


def bt601_luma(rgb: np.ndarray) -> np.ndarray:
    """8-bit limited-range BT.601 luma of an 8-bit RGB image, as video decoders deliver it."""
    rgb = rgb[..., :3].astype(np.float64) / 255.0
    return 16.0 + 65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]


def photo_luma(path: Path) -> np.ndarray:
    """The luma of a photo, (H, W) float64 as `bt601_luma` gives it: grey or colour, with or without alpha
    (dropped), at any bit depth (scaled to 8 bits, not clipped). A file that is no picture is a VcsError."""
    from skimage.io import imread
    from skimage.util import img_as_ubyte

    try:
        image = np.asarray(imread(path))
    except Exception as e:  # noqa: BLE001 - Pillow and imageio's fallbacks fail in many ways on a foreign file
        why = f" ({e.strerror})" if isinstance(e, OSError) and e.strerror else ""
        raise VcsError(f"{path} is not a picture that can be read{why}") from None
    if image.ndim == 3 and image.shape[-1] in (2, 4):
        image = image[..., :-1]  # grey + alpha, RGB + alpha
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)  # grey is R = G = B: the range of a colour photo's luma
    if image.ndim != 3 or image.shape[-1] != 3 or image.size == 0:
        raise VcsError(f"{path} is not a single grey or colour picture (its pixels are {image.shape})")
    try:
        return bt601_luma(img_as_ubyte(image))
    except ValueError as e:  # a float picture outside [-1, 1]
        raise VcsError(f"{path}: cannot convert its pixels to 8 bits ({e})") from None


def photo_clip(image: np.ndarray, frames: int, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A simulated camera move over a luma image: (frames, H, W) uint8 with pan, zoom and a small rotation."""
    from skimage.transform import AffineTransform, warp

    h, w = size
    ih, iw = image.shape
    scale0 = max(h / ih, w / iw) * rng.uniform(1.1, 1.6)  # start zoomed in so the window never leaves the image
    speed = rng.uniform(0.0, 2.5, size=2) * rng.choice([-1, 1], size=2)  # pixels per frame
    zoom = rng.uniform(-0.004, 0.004)
    turn = np.deg2rad(rng.uniform(-0.15, 0.15))
    out = np.empty((frames, h, w), np.uint8)
    for i in range(frames):
        s = scale0 * (1 + zoom * i)
        centre = np.array([iw / 2, ih / 2]) + speed * i / s
        tf = AffineTransform(scale=1 / s, rotation=turn * i)
        shift = centre - tf.params[:2, :2] @ np.array([w / 2, h / 2])
        tf = AffineTransform(matrix=np.vstack([np.hstack([tf.params[:2, :2], shift[:, None]]), [0, 0, 1]]))
        out[i] = np.clip(np.round(warp(image, tf, output_shape=(h, w), mode="reflect", preserve_range=True)), 0, 255)
    return out


def decode_luma(path: Path, max_frames: int | None = None) -> np.ndarray:
    """All (or the first ``max_frames``) luma planes of a video, (T, H, W) uint8."""
    from ..io import DEFAULT_FPS, open_video

    frames = []  # find_sources has refused a raw .yuv without its size
    # Training never uses the frame rate, so a raw .yuv need not give one in its name.
    with open_video(path, default_fps=DEFAULT_FPS) as reader:
        for frame in reader:
            frames.append(frame.y)
            if max_frames and len(frames) >= max_frames:
                break
        # what bears on training: a cut, damage FFmpeg concealed, combed fields, frames scaled
        said = (reader.info.truncation_warning(path), reader.damage_warning(), reader.interlace_warning())
        warnings = [w for w in (*said, reader.rescale_warning()) if w]
        if not frames:
            raise reader.info.no_frames(path)  # the error alone: one line
    for warning in warnings:  # as vcs encode says them; once, when the clip is decoded into the cache
        print(f"vcs: warning: {warning}", file=sys.stderr)
    return np.stack(frames)


def _cache_key(path: Path, settings: str) -> tuple[str, str]:
    """The cache key (content and decoding settings) and the file's own sha256, from one read of the file."""
    key, content = hashlib.sha256(f"{CACHE_VERSION}:{settings}:".encode()), hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            key.update(chunk)
            content.update(chunk)
    return key.hexdigest()[:20], content.hexdigest()


@dataclass
class Clip:
    name: str
    source: Path  # the original file (for a pack's clips: its name only, the file is elsewhere)
    sha256_prefix: str  # the cache key (content and decoding settings)
    frames: np.ndarray  # (T, H, W) uint8, memory-mapped from the cache or held in memory from a pack
    sha256: str  # of the source file (read with the cache key; packs carry it, the file being absent)


def load_clips(
    sources: list[Path],
    cache_dir: Path,
    photo_frames: int = 24,
    photo_size: tuple[int, int] = (288, 352),
    max_frames: int | None = None,
) -> list[Clip]:
    """Decode each source once into ``cache_dir/<key>.npy`` (keyed by content and settings) and map it."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    clips = []
    for path in sources:
        is_photo = path.suffix.lower() in PHOTO_SUFFIXES
        settings = f"photo{PHOTO_VERSION}:{photo_frames}:{photo_size}" if is_photo else f"video:{max_frames}"
        key, sha256 = _cache_key(path, settings)
        target = cache_dir / f"{key}.npy"
        frames = _read_cached(target)
        if frames is None:
            if is_photo:
                seed = int(key[:8], 16)
                frames = photo_clip(photo_luma(path), photo_frames, photo_size, np.random.default_rng(seed))
            else:
                frames = decode_luma(path, max_frames)
            # Two processes (ranks of one run, two runs) that decode the same file write apart; the rename is
            # atomic, so the last one simply wins. Ctrl-C and a full disk leave nothing: a clip's luma is 100 MB.
            with replaced_whole(target, ".npy") as tmp:
                np.save(tmp, frames)
            frames = np.load(target, mmap_mode="r")
        if frames.shape[0] < 2:
            raise VcsError(f"{path} has fewer than 2 frames")
        clips.append(Clip(path.stem, path, key, frames, sha256))
    return clips


def _read_cached(target: Path) -> np.ndarray | None:
    """A clip's cached luma, memory-mapped; None when there is none, or when it cannot be read (a file cut short or
    emptied, by a full disk or by hand), which is then decoded again and replaced, with a note."""
    if not target.exists():
        return None
    try:
        frames = np.load(target, mmap_mode="r")
        if frames.dtype == np.uint8 and frames.ndim == 3:
            return frames
        why = f"a {frames.dtype} array of shape {frames.shape}"
    except (OSError, ValueError, EOFError) as e:  # mmap: "length is greater than file size"; empty: EOFError
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
    print(f"vcs: note: the cached frames {target} are damaged ({why}): decoding the clip again", file=sys.stderr)
    return None


def is_pack(path: Path) -> bool:
    return path.suffix.lower() == ".npz" and not path.is_dir()


def load_collection(
    entries: list[Path],
    cache_dir: Path,
    photo_frames: int = 24,
    photo_size: tuple[int, int] = (288, 352),
    max_frames: int | None = None,
) -> list[Clip]:
    """The clips of every data.train entry, in order: folders through the cache, packs straight from the file."""
    # Every folder's files are found (and checked) first: a bad name in the last folder is refused before the
    # first one is decoded.
    sources = {entry: find_sources([entry]) for entry in entries if not is_pack(entry)}
    clips: list[Clip] = []
    for entry in entries:
        if is_pack(entry):
            clips += read_pack(entry)
        else:
            clips += load_clips(sources[entry], cache_dir, photo_frames, photo_size, max_frames)
    return clips


# ---- luma packs ------------------------------------------------------------------------------------------------
def downsample(frames: np.ndarray, scale: int) -> np.ndarray:
    """Area-average (T, H, W) uint8 frames by an integer factor (edges that do not fill a cell are dropped)."""
    if scale == 1:
        return np.ascontiguousarray(frames)
    t, h, w = frames.shape
    h2, w2 = h // scale, w // scale
    if h2 < 1 or w2 < 1:
        raise VcsError(f"a {w}×{h} clip cannot be downsampled by {scale}")
    out = np.empty((t, h2, w2), np.uint8)
    for i in range(0, t, 16):  # a few frames at a time: the float copy of a whole clip would be 8× its size
        cells = np.asarray(frames[i : i + 16, : h2 * scale, : w2 * scale], np.float32)
        out[i : i + 16] = np.round(cells.reshape(-1, h2, scale, w2, scale).mean(axis=(2, 4)))
    return out


def _frame_cap(lengths: list[int], areas: list[int], budget: float) -> int:
    """The largest cap c with Σ min(T_i, c)·A_i ≤ budget (bisection on c)."""
    lo, hi = 0, max(lengths)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if sum(min(t, mid) * a for t, a in zip(lengths, areas, strict=True)) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


PROVENANCE_FILE = "PROVENANCE.md"


def find_provenance(entries: list[str], base: Callable[[str], Path]) -> str:
    """Where the training data says it came from: each PROVENANCE.md found in a data.train folder or up to two
    folders above it, by path (as the config names the folder, so not by the working directory) and sha256; a
    pack carries what was found when it was made. ``base`` resolves an entry as the config does. '' when none."""
    found: dict[Path, str] = {}
    for entry in entries:
        folder = base(entry)
        if is_pack(folder):
            try:
                cited = read_pack_meta(folder).get("provenance", "")
            except VcsError:
                cited = ""
            if cited:
                found.setdefault(folder.resolve(), cited)
            continue
        for up in range(3):
            candidate = folder.joinpath(*[".."] * up, PROVENANCE_FILE)
            if candidate.is_file():
                digest = hashlib.sha256(candidate.read_bytes()).hexdigest()
                named = os.path.normpath(os.path.join(entry, *[".."] * up, PROVENANCE_FILE))
                found.setdefault(candidate.resolve(), f"{named} (sha256 {digest})")
                break
    return "; ".join(dict.fromkeys(found.values()))


def write_pack(
    clips: list[Clip],
    target: Path,
    scale: int = 1,
    max_mb: float = 48.0,
    min_frames: int = 9,
    info: dict[str, Any] | None = None,
    spread: bool = False,
    contiguous: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Write every clip into one compressed ``.npz`` of at most ``max_mb`` MB (0 = no limit); returns its meta.

    To fit, each clip keeps only its first frames, the same count for all (a short clip keeps what it has):
    contiguous frames, because a training sample is a run of ``gop + 1`` consecutive frames. The compressed
    size is only known after writing, so the count is re-estimated from the size reached and written again.

    With ``spread`` the clips keep that many frames evenly spread over their whole length instead, down to one
    a clip: more of each clip's scenes in the same bytes, for keyframe training, which draws single frames. The
    clips named in ``contiguous`` (validation, whose chains must be real ones) still keep their first frames, at
    least ``min_frames`` of them. Whole-chain training refuses such a pack (each clip's meta says ``spread``).
    """

    if not clips:
        raise VcsError("no clips to pack")
    frames = [downsample(c.frames, scale) for c in clips]
    lengths = [f.shape[0] for f in frames]
    areas = [f.shape[1] * f.shape[2] for f in frames]
    hashes = [c.sha256 for c in clips]
    spreads = [spread and c.name not in contiguous for c in clips]
    floor = 1 if spread else min_frames  # the fewest frames a clip may keep

    def chosen(t: int, cap: int, spread_clip: bool) -> np.ndarray:
        if spread_clip:
            return np.unique(np.linspace(0, t - 1, min(t, cap)).round().astype(np.int64))
        return np.arange(min(t, max(cap, min_frames)))

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}.npz")
    cap = max(lengths)
    try:
        for _ in range(6):
            index = [chosen(t, cap, s) for t, s in zip(lengths, spreads, strict=True)]
            kept = [len(i) for i in index]
            meta = {
                "format": PACK_FORMAT,
                "version": PACK_VERSION,
                "scale": scale,
                "frame_cap": cap,
                "spread": spread,
                **(info or {}),
                "clips": [
                    {
                        "name": c.name,
                        "source": c.source.name,
                        "sha256": h,
                        "frames": k,
                        "frames_total": t,
                        "spread": sc and k < t,  # frames missing between the kept ones
                        "height": f.shape[1],
                        "width": f.shape[2],
                    }
                    for c, f, h, k, t, sc in zip(clips, frames, hashes, kept, lengths, spreads, strict=True)
                ],
            }
            arrays = {f"clip{n:04d}": f[i] for n, (f, i) in enumerate(zip(frames, index, strict=True))}
            np.savez_compressed(tmp, meta=np.array(json.dumps(meta)), **arrays)
            size = tmp.stat().st_size
            if not max_mb or size <= max_mb * 1e6:
                tmp.replace(target)
                meta["bytes"] = size
                return meta
            raw = sum(k * a for k, a in zip(kept, areas, strict=True))
            new_cap = min(_frame_cap(lengths, areas, raw * max_mb * 1e6 / size * 0.97), cap - 1)
            if new_cap < floor:
                # The size at the floor's frames a clip, and the scale that would bring it under the limit.
                least = size * sum(min(t, floor) * a for t, a in zip(lengths, areas, strict=True)) / raw
                hint = scale * max(2, math.ceil(math.sqrt(least / (max_mb * 1e6))))
                raise VcsError(
                    f"the pack does not fit in {max_mb:g} MB even with {floor} frames per clip: "
                    f"try data.pack_scale={hint} (now {scale}), raise data.pack_max_mb, or pack fewer folders"
                )
            cap = new_cap
        raise VcsError(f"could not fit the pack into {max_mb:g} MB")
    finally:
        tmp.unlink(missing_ok=True)


# How a damaged or foreign file fails inside np.load: zipfile (a bad CRC, a cut-off archive), zlib (a damaged
# member), numpy's .npy header parser, an empty file (EOFError), a lone .npy (an array, not an archive).
_DAMAGED = (
    OSError,
    EOFError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
    zipfile.BadZipFile,
    zlib.error,
)


def _reason(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def read_pack_meta(path: Path) -> dict[str, Any]:
    """The meta record of a luma pack, without decompressing the frames."""
    if path.is_file() and path.stat().st_size == 0:
        raise VcsError(f"{path} is empty, not a luma pack written by `vcs train --pack`")
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
    except _DAMAGED as e:
        raise VcsError(
            f"{path} is not a luma pack written by `vcs train --pack`, or is damaged ({_reason(e)})"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != PACK_FORMAT or meta.get("version") != PACK_VERSION:
        raise VcsError(f"{path} is not a version-{PACK_VERSION} luma pack")
    if not isinstance(meta.get("clips"), list) or not all(
        isinstance(c, dict) and all(isinstance(c.get(k), str) for k in ("name", "source", "sha256"))
        for c in meta["clips"]
    ):
        raise VcsError(f"{path}: the pack's record of its clips is damaged")
    return meta


def read_pack(path: Path) -> list[Clip]:
    """The clips of a luma pack, held in memory (a compressed archive cannot be memory-mapped)."""
    meta = read_pack_meta(path)
    check_not_test_set([Path(c["source"]) for c in meta["clips"]])
    clips = []
    try:
        z = np.load(path, allow_pickle=False)
    except _DAMAGED as e:
        raise VcsError(f"{path}: cannot read the pack ({_reason(e)})") from None
    with z:
        for i, c in enumerate(meta["clips"]):
            try:
                frames = z[f"clip{i:04d}"]
            except _DAMAGED as e:  # named: the pack's other clips may be intact
                raise VcsError(f"{path}: clip {c['name']} is damaged ({_reason(e)})") from None
            if frames.dtype != np.uint8 or frames.ndim != 3 or frames.shape[0] < 1:
                raise VcsError(f"{path}: clip {c['name']} is not a (T ≥ 1, H, W) uint8 array")
            clips.append(Clip(c["name"], Path(c["source"]), f"pack:{c['sha256'][:12]}", frames, c["sha256"]))
    return clips


# ---- sampling ---------------------------------------------------------------------------------------------------
@dataclass
class ChainPlan:
    """Where the chains of one batch come from: clip, frame indices (time reversal applied), corner, flip."""

    clip: np.ndarray  # (N,) index into the sampler's clips
    index: np.ndarray  # (N, gop+1) frame indices
    y: np.ndarray  # (N,) top row of the crop
    x: np.ndarray  # (N,) left column
    flip: np.ndarray  # (N,) bool: mirrored left-right


class ChainSampler:
    """Random GOP chains (N, gop+1, crop, crop) in [0, 1] from a list of clips.

    ``static`` of the samples repeat one frame (the test sequences are nearly still, and a network trained only
    on motion learns to distrust its keyframes); ``stride2`` of them skip every other frame (faster motion).
    """

    def __init__(
        self, clips: list[Clip], gop: int, crop: int, seed: int, static: float = 0.1, stride2: float = 0.15
    ) -> None:
        if not clips:
            raise VcsError("no training clips")
        self.clips = [c for c in clips if min(c.frames.shape[1:]) >= crop]
        if not self.clips:
            raise VcsError(f"no clip is at least {crop}×{crop} pixels")
        self.gop, self.crop, self.static, self.stride2 = gop, crop, static, stride2
        weights = np.array([c.frames.shape[0] * c.frames.shape[1] * c.frames.shape[2] for c in self.clips], float)
        self.weights = weights / weights.sum()
        self.rng = np.random.default_rng(seed)

    def plan(self, batch: int) -> ChainPlan:
        """Draw a batch. The order of the random draws is part of the checkpoint format: a resumed run must draw
        what the uninterrupted one would have, so keep it as it is."""
        length = self.gop + 1
        plan = ChainPlan(
            np.empty(batch, np.int64),
            np.empty((batch, length), np.int64),
            np.empty(batch, np.int64),
            np.empty(batch, np.int64),
            np.empty(batch, bool),
        )
        for b in range(batch):
            c = self.rng.choice(len(self.clips), p=self.weights)
            t, h, w = self.clips[c].frames.shape
            r = self.rng.random()
            stride = 2 if r < self.stride2 and t > 2 * length else 1
            span = (length - 1) * stride + 1
            start = int(self.rng.integers(0, max(1, t - span + 1)))
            index = np.minimum(start + stride * np.arange(length), t - 1)
            if r > 1 - self.static:
                index[:] = start
            plan.y[b] = int(self.rng.integers(0, h - self.crop + 1))
            plan.x[b] = int(self.rng.integers(0, w - self.crop + 1))
            plan.flip[b] = self.rng.random() < 0.5
            plan.index[b] = index[::-1] if self.rng.random() < 0.5 else index
            plan.clip[b] = c
        return plan

    def sample(self, batch: int) -> np.ndarray:
        """A batch as float32 (N, gop+1, crop, crop) in [0, 1], cut on the host."""
        plan = self.plan(batch)
        out = np.empty((batch, self.gop + 1, self.crop, self.crop), np.float32)
        for b in range(batch):
            y, x = plan.y[b], plan.x[b]
            chain = self.clips[plan.clip[b]].frames[plan.index[b], y : y + self.crop, x : x + self.crop]
            if plan.flip[b]:
                chain = chain[:, :, ::-1]
            out[b] = chain / 255.0
        return out

    def batch(self, batch: int, device: torch.device) -> torch.Tensor:
        """A batch as a tensor on ``device``."""
        import torch

        return torch.from_numpy(self.sample(batch)).to(device)

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def restore(self, state: dict) -> None:
        self.rng.bit_generator.state = state


class DeviceChainSampler(ChainSampler):
    """``ChainSampler`` with the frames on the accelerator: the luma of every clip is uploaded once as uint8, and
    a batch is one gather there, so the host only draws a few hundred integers per step.

    Same random draws, same pixels: for a given random state it returns exactly the batch ``sample`` would.
    """

    def __init__(
        self,
        clips: list[Clip],
        gop: int,
        crop: int,
        seed: int,
        static: float = 0.1,
        stride2: float = 0.15,
        device: torch.device | str = "cuda",
    ) -> None:
        import torch

        super().__init__(clips, gop, crop, seed, static, stride2)
        self.device = torch.device(device)
        sizes = [c.frames.size for c in self.clips]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.shapes = np.array([c.frames.shape for c in self.clips], np.int64)  # (clips, 3): T, H, W
        # Clip by clip into one preallocated buffer: the host never holds a second copy of the whole collection.
        self.frames = torch.empty(int(sum(sizes)), dtype=torch.uint8, device=self.device)
        for c, offset, size in zip(self.clips, self.offsets, sizes, strict=True):
            flat = torch.from_numpy(np.array(c.frames, copy=True).reshape(-1))  # a cache map is read-only
            self.frames[offset : offset + size].copy_(flat)
        # x / 255 as numpy computes it (in float64, then rounded to float32), so both samplers agree bit for bit.
        self.lut = torch.from_numpy((np.arange(256) / 255.0).astype(np.float32)).to(self.device)
        self.rows = torch.arange(crop, device=self.device)

    def batch(self, batch: int, device: torch.device | None = None) -> torch.Tensor:
        import torch

        plan = self.plan(batch)
        t_h_w = self.shapes[plan.clip]
        h_w = t_h_w[:, 1] * t_h_w[:, 2]
        width = t_h_w[:, 2]
        base = self.offsets[plan.clip, None] + plan.index * h_w[:, None] + (plan.y * width + plan.x)[:, None]
        # One small upload per step: frame starts, row pitch and flip of every chain.
        params = torch.from_numpy(np.concatenate([base, width[:, None], plan.flip[:, None]], axis=1))
        params = params.to(self.device)
        base, width, flip = params[:, :-2], params[:, -2], params[:, -1].bool()
        cols = torch.where(flip[:, None], self.crop - 1 - self.rows, self.rows)  # (N, crop)
        index = (
            base[:, :, None, None] + (self.rows[None, :] * width[:, None])[:, None, :, None] + cols[:, None, None, :]
        )
        return self.lut[self.frames[index].long()]
