"""Training data: videos and photographs decoded once into a luma cache, sampled as GOP chains.

A sample is one GOP of ``gop`` frames plus the next keyframe (``gop + 1`` frames), randomly cropped, flipped
and played forwards or backwards. Photographs become clips through a simulated camera (pan, zoom, small
rotation). The test set (``../shared/data/cif``) must never be given as training data: ``check_not_test_set``
refuses the paper's six sequence names.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import VcsError

VIDEO_SUFFIXES = {".mp4", ".mkv", ".avi", ".webm", ".mov", ".y4m", ".yuv"}
PHOTO_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
TEST_SEQUENCES = ("akiyo", "coastguard", "foreman", "mother_daughter", "paris", "silent")
CACHE_VERSION = 1


def find_sources(folders: list[Path]) -> list[Path]:
    """Every video and photo below the given folders, sorted; refuses missing or empty folders."""
    sources: list[Path] = []
    for folder in folders:
        if not folder.is_dir():
            raise VcsError(f"data folder {folder} does not exist")
        found = sorted(
            p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES | PHOTO_SUFFIXES
        )
        if not found:
            raise VcsError(f"data folder {folder} holds no video or photo")
        sources += found
    check_not_test_set(sources)
    return sources


def check_not_test_set(sources: list[Path]) -> None:
    """The cheap check we can make: the paper's test sequences by name (`<name>_cif`)."""
    for p in sources:
        stem = p.stem.lower()
        if any(stem.startswith(f"{name}_cif") or stem == name for name in TEST_SEQUENCES):
            raise VcsError(f"{p} looks like a test sequence of the paper: never train on the test set")


def bt601_luma(rgb: np.ndarray) -> np.ndarray:
    """8-bit limited-range BT.601 luma of an RGB image, as video decoders deliver it."""
    rgb = rgb[..., :3].astype(np.float64) / 255.0
    return 16.0 + 65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]


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
    from ..io import open_video

    frames = []
    with open_video(path) as reader:
        for frame in reader:
            frames.append(frame.y)
            if max_frames and len(frames) >= max_frames:
                break
    if not frames:
        raise VcsError(f"{path} has no frames")
    return np.stack(frames)


def _cache_key(path: Path, settings: str) -> str:
    h = hashlib.sha256(f"{CACHE_VERSION}:{settings}:".encode())
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:20]


@dataclass
class Clip:
    name: str
    source: Path
    sha256_prefix: str
    frames: np.ndarray  # (T, H, W) uint8, memory-mapped from the cache


def load_clips(
    sources: list[Path], cache_dir: Path, photo_frames: int = 24, photo_size: tuple[int, int] = (288, 352),
    max_frames: int | None = None,
) -> list[Clip]:
    """Decode each source once into ``cache_dir/<key>.npy`` (keyed by content and settings) and map it."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    clips = []
    for path in sources:
        is_photo = path.suffix.lower() in PHOTO_SUFFIXES
        settings = f"photo:{photo_frames}:{photo_size}" if is_photo else f"video:{max_frames}"
        key = _cache_key(path, settings)
        target = cache_dir / f"{key}.npy"
        if not target.exists():
            if is_photo:
                from skimage.io import imread

                image = imread(path)
                luma = bt601_luma(image) if image.ndim == 3 else image.astype(np.float64)
                seed = int(key[:8], 16)
                frames = photo_clip(luma, photo_frames, photo_size, np.random.default_rng(seed))
            else:
                frames = decode_luma(path, max_frames)
            tmp = cache_dir / f"{key}.tmp.npy"
            np.save(tmp, frames)
            tmp.replace(target)
        frames = np.load(target, mmap_mode="r")
        if frames.shape[0] < 2:
            raise VcsError(f"{path} has fewer than 2 frames")
        clips.append(Clip(path.stem, path, key, frames))
    return clips


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

    def sample(self, batch: int) -> np.ndarray:
        length = self.gop + 1
        out = np.empty((batch, length, self.crop, self.crop), np.float32)
        for b in range(batch):
            clip = self.clips[self.rng.choice(len(self.clips), p=self.weights)].frames
            t, h, w = clip.shape
            r = self.rng.random()
            stride = 2 if r < self.stride2 and t > 2 * length else 1
            span = (length - 1) * stride + 1
            start = int(self.rng.integers(0, max(1, t - span + 1)))
            index = np.minimum(start + stride * np.arange(length), t - 1)
            if r > 1 - self.static:
                index[:] = start
            y = int(self.rng.integers(0, h - self.crop + 1))
            x = int(self.rng.integers(0, w - self.crop + 1))
            chain = clip[index, y : y + self.crop, x : x + self.crop]
            if self.rng.random() < 0.5:
                chain = chain[:, :, ::-1]
            if self.rng.random() < 0.5:
                chain = chain[::-1]
            out[b] = chain / 255.0
        return out

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def restore(self, state: dict) -> None:
        self.rng.bit_generator.state = state
