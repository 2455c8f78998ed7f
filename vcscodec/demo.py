"""`vcs demo`: the main job on a clip that needs no download — a camera pan across a picture that scikit-image
ships — encoded and decoded at each ratio with the shipped models, with quality, sizes and speed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .codec import decode_file, encode_file
from .output import make_output_folder
from .quality import score_videos
from .samples import camera_pan, write_clip


@dataclass
class DemoResult:
    ratio: float
    model: str
    source_bytes: int
    vcs_bytes: int
    bits_per_pixel: float
    psnr_y: float
    ssim_y: float
    psnr_uv: float
    encode_fps: float
    decode_fps: float
    decoded: Path


def run_demo(
    folder: Path,
    ratios: tuple[float, ...] = (0.1, 0.01),
    frames: int = 17,
    width: int = 352,
    height: int = 288,
    image: str = "astronaut",
    device: str = "auto",
) -> list[DemoResult]:
    clip = camera_pan(frames, width, height, image=image)  # before the folder: a bad --frames creates nothing
    make_output_folder(folder, "the demo")
    source = folder / f"{image}_pan_{width}x{height}.y4m"
    # Written every time: a clip left by an earlier demo may have another frame count.
    write_clip(source, clip, 30, force=True)
    results = []
    for ratio in ratios:
        tag = f"{ratio:g}".replace(".", "p")
        vcs, decoded = folder / f"{source.stem}_r{tag}.vcs", folder / f"{source.stem}_r{tag}_decoded.y4m"
        enc = encode_file(source, vcs, ratio=ratio, force=True)
        dec = decode_file(vcs, decoded, device=device, force=True)
        scores = score_videos(source, decoded)  # against the file itself: what a user would compare with
        results.append(
            DemoResult(
                ratio=ratio,
                model=enc.model,
                source_bytes=source.stat().st_size,
                vcs_bytes=enc.bytes,
                bits_per_pixel=enc.bits_per_pixel,
                psnr_y=scores.mean("psnr_y"),
                ssim_y=scores.mean("ssim_y"),
                psnr_uv=scores.mean("psnr_uv"),
                encode_fps=enc.frames / enc.seconds,
                decode_fps=dec.frames / dec.seconds,
                decoded=decoded,
            )
        )
    return results
