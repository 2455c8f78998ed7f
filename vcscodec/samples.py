"""Test and demo clips that need no download: a smooth camera move over an image shipped by scikit-image."""

from __future__ import annotations

import os
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from vcscodec.errors import VcsError
from vcscodec.io import Frame, frame_from_gray, open_writer

# Images that scikit-image ships inside its wheel (no network fetch); grey ones are stacked to RGB.
IMAGES = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "camera", "moon")

# BT.601, limited range ("studio swing"): Y in [16, 235], Cb/Cr in [16, 240], for R'G'B' in [0, 1].
_RGB_TO_YCBCR = np.array(
    [
        [65.481, 128.553, 24.966],
        [-37.797, -74.203, 112.0],
        [112.0, -93.786, -18.214],
    ]
)
_YCBCR_OFFSET = np.array([16.0, 128.0, 128.0])


def _load_image(image: str) -> np.ndarray:
    """The named scikit-image picture as float RGB in [0, 1], shape (H, W, 3)."""
    if image not in IMAGES:
        raise VcsError(f"unknown sample image {image!r}; choose one of: {', '.join(IMAGES)}")
    from skimage import data

    img = np.asarray(getattr(data, image)())
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    img = img[..., :3]
    return img.astype(np.float64) / 255.0


def rgb_to_yuv420(rgb: np.ndarray) -> Frame:
    """Float RGB in [0, 1] (H, W, 3) → BT.601 limited-range YCbCr 4:2:0 `Frame` (chroma = 2×2 mean)."""
    h, w = rgb.shape[:2]
    ycc = rgb @ _RGB_TO_YCBCR.T + _YCBCR_OFFSET
    y = ycc[..., 0]
    # Odd sizes: replicate the last row/column so every chroma sample averages a full 2×2 block.
    pad = ((0, h % 2), (0, w % 2), (0, 0))
    c = np.pad(ycc[..., 1:], pad, mode="edge")
    c = 0.25 * (c[0::2, 0::2] + c[1::2, 0::2] + c[0::2, 1::2] + c[1::2, 1::2])

    def q(a: np.ndarray) -> np.ndarray:
        return np.clip(np.round(a), 0, 255).astype(np.uint8)

    return Frame(q(y), q(c[..., 0]), q(c[..., 1]))


def _pan_rgb(frames: int, width: int, height: int, image: str, seed: int) -> list[np.ndarray]:
    from skimage.transform import AffineTransform, warp

    if frames < 1 or width < 1 or height < 1:
        raise VcsError(f"a sample clip needs frames, width and height >= 1 (got {frames}, {width}x{height})")
    img = _load_image(image)
    ih, iw = img.shape[:2]
    rng = np.random.default_rng(seed)
    # k = output pixels per source pixel; at k0 the view covers 70 % of the picture's limiting side.
    k0 = max(width / (0.7 * iw), height / (0.7 * ih))
    zoom = rng.uniform(0.03, 0.10)
    k_start, k_end = (k0, k0 * (1 + zoom)) if rng.random() < 0.5 else (k0 * (1 + zoom), k0)
    # The view is largest at k0: keep its centre where even that view stays inside the picture.
    half_w, half_h = width / (2 * k0), height / (2 * k0)
    lo, hi = np.array([half_w, half_h]), np.array([iw - half_w, ih - half_h])
    # 0.5–2.5 output pixels a frame, so neighbouring frames overlap as in real video.
    angle = rng.uniform(0, 2 * np.pi)
    direction = np.array([np.cos(angle), np.sin(angle)])
    travel = rng.uniform(0.5, 2.5) * max(frames - 1, 0) / k0
    room = hi - lo
    with np.errstate(divide="ignore"):
        limit = np.min(np.where(np.abs(direction) > 1e-9, room / np.abs(direction), np.inf))
    travel = min(travel, 0.9 * limit)
    span = direction * travel
    start = lo + np.abs(span) * (span < 0) + rng.random(2) * (room - np.abs(span))
    out = []
    for t in range(frames):
        s = t / (frames - 1) if frames > 1 else 0.0
        s = s * s * (3 - 2 * s)  # smoothstep: the camera eases in and out
        k = k_start + (k_end - k_start) * s
        cx, cy = start + span * s
        # warp maps output (col, row) to input coordinates.
        tf = AffineTransform(scale=1 / k, translation=(cx - width / (2 * k), cy - height / (2 * k)))
        out.append(warp(img, tf, output_shape=(height, width), order=1, mode="edge"))
    return out


def camera_pan(frames: int, width: int, height: int, image: str = "astronaut", seed: int = 0) -> list[Frame]:
    """A smooth pan with a slight zoom across a scikit-image picture, as BT.601 limited-range YUV 4:2:0."""
    return [rgb_to_yuv420(rgb) for rgb in _pan_rgb(frames, width, height, image, seed)]


def gray_clip(frames: int, width: int, height: int, image: str = "astronaut", seed: int = 0) -> list[Frame]:
    """The same move as `camera_pan` with luma only (U = V = 128)."""
    clip = camera_pan(frames, width, height, image, seed)
    for f in clip:
        f.u.fill(128)
        f.v.fill(128)
    return clip


def as_frame(picture: Frame | np.ndarray) -> Frame:
    """A `Frame` as it is; a 2-D array as a grey picture (`io.frame_from_gray`); an (H, W, 3) array as 8-bit RGB
    (uint8, or floats in [0, 1]) converted as `camera_pan`'s pictures are."""
    if isinstance(picture, Frame):
        return picture
    if not isinstance(picture, np.ndarray):
        raise VcsError(f"a picture must be a vcscodec.io.Frame or a numpy array, not {type(picture).__name__}")
    if picture.ndim == 2:
        return frame_from_gray(picture)
    if picture.ndim == 3 and picture.shape[2] == 3 and min(picture.shape[:2]) >= 1:
        if picture.dtype == np.uint8:
            return rgb_to_yuv420(picture / 255.0)
        if np.issubdtype(picture.dtype, np.floating) and np.all((picture >= 0) & (picture <= 1)):
            return rgb_to_yuv420(picture.astype(np.float64))
        raise VcsError(f"an RGB picture must be uint8 or floats in [0, 1], not {picture.dtype} values outside them")
    raise VcsError(f"a picture array must be (H, W) grey or (H, W, 3) RGB, not shape {picture.shape}")


def write_clip(
    path: str | os.PathLike[str], frames: Sequence[Frame | np.ndarray], fps: Fraction | int = 30, force: bool = False
) -> str:
    """Write ``frames`` to ``path`` (format from the extension, see `io.open_writer`); returns the codec. Each is a
    `Frame`, or an array that `as_frame` takes (grey or RGB)."""
    pictures = [as_frame(f) for f in frames]
    if not pictures:
        raise VcsError("write_clip needs at least one frame")
    h, w = pictures[0].y.shape
    with open_writer(path, w, h, Fraction(fps), force=force) as writer:
        for f in pictures:
            writer.write(f)
    return writer.codec
