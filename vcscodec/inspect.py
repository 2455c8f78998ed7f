"""What `vcs info` and `vcs export-sampler` show: a .vcs file's header and rate, a model's parts, Φ as files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .container import ContainerReader, LostGop, StreamHeader
from .errors import VcsError
from .output import make_output_folder
from .registry import ModelCard, find_model, steps_phrase


def describe_file(path: Path) -> dict[str, Any]:
    """Header fields, rate, and what is damaged, as `vcs info --json` prints them: the header's fields under
    their names in docs/format.md, then what was found (``records``, ``decodable``, ``decode_error``, ``bytes``,
    ``bits_per_pixel``, ``compression_vs_8bit_420``, ``damaged``). Every record is read
    (`ContainerReader.salvage`), so every CRC is checked, and a damaged record is listed under "damaged" instead
    of ending the description."""
    with ContainerReader(path) as reader:
        h = reader.header
        damaged = [r.reason for r in reader.salvage() if isinstance(r, LostGop)]
        if reader.tail_error:
            damaged.append(reader.tail_error)
        size = reader.file_size
    pixels = h.width * h.height * h.frame_count
    # 8-bit 4:2:0 as it is stored (a Y4M frame's bytes): chroma planes of ⌈W/2⌉×⌈H/2⌉ at odd sizes
    raw_bytes = (h.width * h.height + 2 * ((h.width + 1) // 2) * ((h.height + 1) // 2)) * h.frame_count
    decode_error = _decode_error(h)
    return {
        "file": str(path),
        "format_version": h.version,
        "width": h.width,
        "height": h.height,
        "fps_num": h.fps_num,
        "fps_den": h.fps_den,
        "frame_count": h.frame_count,
        "source_start": h.source_start,
        "gop": h.gop,
        "block": h.block,
        "alpha_k": h.alpha_k,
        "alpha_n": h.alpha_n,
        "m_k": h.m_k,
        "m_n": h.m_n,
        "key_grid_shift": h.key_grid_shift,
        "quant_step": h.quant_step,
        "chroma": h.chroma,
        "chroma_siting": h.chroma_siting,  # null: the source did not say
        "model_name": h.model_name,
        "weights_sha256": h.weights_sha256,
        "records": h.num_records,  # GOP records, one keyframe each; not len(key_frames()), as long as the header claims
        "decodable": decode_error is None,
        "decode_error": decode_error,
        "bytes": size,
        "bits_per_pixel": size * 8 / pixels,
        "compression_vs_8bit_420": raw_bytes / size,
        "damaged": damaged,
    }


def file_rows(d: dict[str, Any]) -> list[tuple[str, Any]]:
    """`vcs info`'s table of a ``describe_file`` description: (label, value) rows, in words."""
    shift = d["key_grid_shift"]
    rows = [
        ("file", d["file"]),
        ("format version", d["format_version"]),
        ("size", f"{d['width']}x{d['height']}"),
        ("frame rate", f"{d['fps_num']}/{d['fps_den']}"),
        ("frames", d["frame_count"]),
        ("first source frame", d["source_start"]),
        ("GOP", d["gop"]),
        ("block", d["block"]),
        ("alpha_k", d["alpha_k"]),
        ("alpha_n", d["alpha_n"]),
        ("measurements per block", {"key": d["m_k"], "non-key": d["m_n"]}),
        ("keyframes", d["records"]),
        ("keyframe grid shift", f"{shift} pixels in odd GOPs" if shift else "none (every keyframe on one grid)"),
        ("quantizer step", repr(d["quant_step"])),  # whole (f64): what --quant-step takes to write it again
        ("chroma", d["chroma"]),
        ("chroma siting", d["chroma_siting"] or "not said (the source did not say)"),
        ("model", d["model_name"]),
        ("weights sha256", d["weights_sha256"]),
        # the model it names is in the weights folder and fits its layout (damage is the row "damaged")
        ("model available", "yes" if d["decodable"] else f"no: {d['decode_error']}"),
        ("bytes", d["bytes"]),
        ("bits per pixel", d["bits_per_pixel"]),
        ("compression vs 8-bit 4:2:0", d["compression_vs_8bit_420"]),
        ("damaged", d["damaged"]),
    ]
    if d["damaged"]:  # the rate counts what is there, not what the whole file held
        rows.append(("rate", "bits per pixel and compression count the bytes present: the file is damaged"))
    return rows


def describe_model(name: str) -> dict[str, Any]:
    """A model as `vcs info --model NAME --json` prints it: its manifest's names (``name``, ``arch``, ``alpha_k``,
    ``alpha_n``, ``config``, ``file``, ``sha256``), the parameter count of each part of the network (``sampling``,
    ``initial_reconstruction``, ``msem``, ``hffm``, ``hfim``, ``msfm``, ``total``, ``run_in_decoding``), and its
    training (``training_steps``, ``keyframe_branch_steps``, ``training_hardware``; null where the manifest does not
    say)."""
    from .models import HITVCSNet, parameter_counts

    card = find_model(name)
    model = HITVCSNet(card.model_config())
    return {
        "name": card.name,
        "arch": card.arch,
        "alpha_k": card.alpha_k,
        "alpha_n": card.alpha_n,
        "config": {k: v for k, v in card.config.items() if k not in ("arch", "extra")},
        "parameters": parameter_counts(model),
        "file": str(card.path),
        "sha256": card.sha256,
        **dict(zip(("training_steps", "keyframe_branch_steps"), card.step_counts(), strict=True)),
        "training_hardware": card.manifest.get("training", {}).get("hardware"),
    }


def model_rows(d: dict[str, Any]) -> list[tuple[str, Any]]:
    """`vcs info --model`'s table of a ``describe_model`` description: (label, value) rows, in words."""
    from .models import PART_LABELS

    steps = steps_phrase(d["training_steps"], d["keyframe_branch_steps"])
    return [
        ("model", d["name"]),
        ("architecture", d["arch"]),
        ("alpha_k", d["alpha_k"]),
        ("alpha_n", d["alpha_n"]),
        ("config", d["config"]),
        ("parameters", {PART_LABELS[part]: count for part, count in d["parameters"].items()}),
        ("weights", d["file"]),
        ("sha256", d["sha256"]),
        ("training steps", steps or "unknown"),
        ("training hardware", d["training_hardware"] or "unknown"),
    ]


def _decode_error(header: StreamHeader) -> str | None:
    """Why this installation cannot decode the file (its model, by name and hash, is not in the weights folder; a
    frame rate no video FFmpeg writes can carry), or None when it can."""
    from .codec import model_for  # the decoder's own checks, so the answer is the one `vcs decode` would give
    from .io import parse_fps

    try:
        parse_fps(header.fps)
        model_for(header)
    except VcsError as e:
        return str(e)
    return None


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
