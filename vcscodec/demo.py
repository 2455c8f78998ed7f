"""`vcs demo`: the main job on a clip that needs no download — a camera pan across a picture that scikit-image
ships — encoded and decoded at each ratio with the shipped models, with quality, sizes and speed."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .codec import decode_file, encode_file
from .io import Frame
from .output import held_signals, make_output_folder
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
    made = not folder.exists()
    make_output_folder(folder, "the demo")
    # Everything is made in a hidden folder inside and moved into place at the end, so that a demo stopped midway
    # (Ctrl-C, a full disk) leaves the folder as it was (empty, and removed, when this demo made it), never a mix of
    # an earlier demo's files and this one's.
    work = Path(tempfile.mkdtemp(prefix=".vcs-demo-", dir=folder))
    try:
        results = _run_in(work, clip, ratios, width, height, image, device)
        with held_signals():  # all moved, or (stopped before) none
            for made_file in sorted(work.iterdir()):
                os.replace(made_file, folder / made_file.name)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        if made:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    work.rmdir()
    return [dataclasses.replace(r, decoded=folder / r.decoded.name) for r in results]


def _run_in(
    work: Path, clip: list[Frame], ratios: tuple[float, ...], width: int, height: int, image: str, device: str
) -> list[DemoResult]:
    source = work / f"{image}_pan_{width}x{height}.y4m"
    write_clip(source, clip, 30)
    results = []
    for ratio in ratios:
        tag = f"{ratio:g}".replace(".", "p")
        vcs, decoded = work / f"{source.stem}_r{tag}.vcs", work / f"{source.stem}_r{tag}_decoded.y4m"
        enc = encode_file(source, vcs, ratio=ratio)
        dec = decode_file(vcs, decoded, device=device)
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
