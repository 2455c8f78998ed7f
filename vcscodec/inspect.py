"""What `vcs info` and `vcs export-sampler` show: a .vcs file's header and rate, a model's parts, Φ as files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .container import ContainerReader, LostGop, StreamHeader
from .errors import VcsError
from .output import make_output_folder
from .registry import ModelCard, find_model


def describe_file(path: Path) -> dict[str, Any]:
    """Header fields, rate, and what is damaged: every record is read (`ContainerReader.salvage`), so every
    CRC is checked, and a damaged record is listed under "damaged" instead of ending the description."""
    with ContainerReader(path) as reader:
        h = reader.header
        damaged = [r.reason for r in reader.salvage() if isinstance(r, LostGop)]
        if reader.tail_error:
            damaged.append(reader.tail_error)
        size = reader.file_size
    pixels = h.width * h.height * h.frame_count
    # 8-bit 4:2:0 as it is stored (a Y4M frame's bytes): chroma planes of ⌈W/2⌉×⌈H/2⌉ at odd sizes
    raw_bytes = (h.width * h.height + 2 * ((h.width + 1) // 2) * ((h.height + 1) // 2)) * h.frame_count
    described = {
        "file": str(path),
        "format version": h.version,
        "size": f"{h.width}x{h.height}",
        "frame rate": f"{h.fps_num}/{h.fps_den}",
        "frames": h.frame_count,
        "first source frame": h.source_start,
        "GOP": h.gop,
        "block": h.block,
        "alpha_k": h.alpha_k,
        "alpha_n": h.alpha_n,
        "measurements per block": {"key": h.m_k, "non-key": h.m_n},
        "keyframes": h.num_records,  # one a record; not len(key_frames()), a list as long as the header claims
        "records": h.num_records,
        "keyframe grid shift": (
            f"{h.key_grid_shift} pixels in odd GOPs" if h.key_grid_shift else "none (every keyframe on one grid)"
        ),
        "quantizer step": h.quant_step,
        "chroma": h.chroma,
        "model": h.model_name,
        "weights sha256": h.weights_sha256,
        "decodable here": _decodable(h),
        "bytes": size,
        "bits per pixel": size * 8 / pixels,
        "compression vs 8-bit 4:2:0": raw_bytes / size,
        "damaged": damaged,
    }
    if damaged:  # the rate counts what is there, not what the whole file held
        described["rate"] = "bits per pixel and compression count the bytes present: the file is damaged"
    return described


def describe_model(name: str) -> dict[str, Any]:
    """Parameter count of each part of the network (sampling, initial reconstruction, MSEM, HFFM, HFIM, MSFM)."""
    from .models import HITVCSNet, parameter_counts

    card = find_model(name)
    model = HITVCSNet(card.model_config())
    training = card.manifest.get("training", {})
    return {
        "model": card.name,
        "architecture": card.arch,
        "alpha_k": card.alpha_k,
        "alpha_n": card.alpha_n,
        "config": {k: v for k, v in card.config.items() if k not in ("arch", "extra")},
        "parameters": parameter_counts(model),
        "weights": str(card.path),
        "sha256": card.sha256,
        "training steps": card.training_steps() or "unknown",
        "training hardware": training.get("hardware", "unknown"),
    }


def _decodable(header: StreamHeader) -> str:
    """Whether this installation can decode the file: its model, by name and hash, in the weights folder."""
    from .codec import model_for  # the decoder's own check, so the answer is the one `vcs decode` would give

    try:
        model_for(header)
    except VcsError as e:
        return f"no: {e}"
    return "yes"


SAMPLER_README = """Sampling matrices of model {name} (sha256 {sha})

phi_k.npy / phi_k.csv: Φk, {m_k} × {d} (keyframes, αk = {alpha_k:g})
phi_n.npy / phi_n.csv: Φn, {m_n} × {d} (non-keyframes, αn = {alpha_n:g})

A frame plane (8-bit) is padded to multiples of B = {block} by repeating its last row and column, scaled to
[0, 1] (value / 255) and cut into B×B blocks, row-major over the plane. Each block is flattened row-major
(pixel (r, c) of the block is element r·B + c) into x, and measured as y = Φ·x in float64 (not float32:
a value within rounding of a half quantizer step rounds the other way; every entry of Φ is a float16 value, so
Φ·(8-bit pixels) can also be summed exactly in integers and then divided by 255).
A plane's measurements form an (M, hb, wb) array, hb × wb the padded plane's blocks: y[i, row, col] is row i
of Φ applied to the block at (row, col) (a .vcs file stores them block-major: docs/format.md §2.4-2.5).
Quantization: q = round_half_even(y · 255 / step), with step in grey levels as the encoder chooses it and
writes it into the .vcs header: vcs encode uses 1.3 unless told (--quant-step, or --bpp, which searches).
Keyframes are frames 0, {gop}, 2·{gop}, … and the last frame of the stream (counted from its first coded frame,
also after vcs encode --start); the others are non-keyframes.
{grid}
In colour (yuv420) files the U and V planes (ceil(H/2) × ceil(W/2)) are measured exactly like Y.
The .npy and .csv files hold float64 values, the .csv to the last bit (17 significant digits).
"""


def export_sampler(card: ModelCard, folder: Path, force: bool = False) -> list[Path]:
    phi_k, phi_n = card.sampling_matrices()
    make_output_folder(folder, "export-sampler")
    files = {"phi_k": phi_k, "phi_n": phi_n}
    paths = [folder / f"{n}.{ext}" for n in files for ext in ("npy", "csv")] + [folder / "README.txt"]
    clash = [p for p in paths if p.exists()]
    if clash and not force:
        raise VcsError(f"{clash[0]} already exists (use --force)")
    for n, phi in files.items():
        _atomic(folder / f"{n}.npy", lambda p, phi=phi: np.save(p, phi))
        _atomic(folder / f"{n}.csv", lambda p, phi=phi: np.savetxt(p, phi, delimiter=",", fmt="%.17g"))
    text = SAMPLER_README.format(
        name=card.name,
        sha=card.sha256,
        m_k=phi_k.shape[0],
        m_n=phi_n.shape[0],
        d=phi_k.shape[1],
        alpha_k=card.alpha_k,
        alpha_n=card.alpha_n,
        block=card.config["block"],
        gop=card.config["gop"],
        grid=_grid_text(int(card.config.get("key_grid_shift", 0)), card.config["gop"]),
    )
    _atomic(folder / "README.txt", lambda p: p.write_text(text))
    return paths


def _grid_text(shift: int, gop: int) -> str:
    """How keyframe grids alternate (format version 2): an encoder that missed it would measure the wrong blocks."""
    if not shift:
        return "Every keyframe is measured on the same block grid (this model has no keyframe grid shift)."
    return (
        f"Count the keyframes 0, 1, 2, … in order (frames 0, {gop}, 2·{gop}, … and the last frame): every\n"
        f"odd-counted keyframe is measured on a grid shifted {shift} pixels down and right, cyclically: its padded\n"
        f"plane is rolled by ({shift}, {shift}) rows and columns (numpy.roll) before it is cut into blocks. Files\n"
        "say so in their header (key_grid_shift, docs/format.md)."
    )


def _atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    write(tmp)
    tmp.replace(path)
