"""`vcs train`: config in, progress out; `vcs train --pack FILE.npz` writes the data as one file instead."""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

from ..errors import OptionConflict, VcsError
from .config import load_config

# Exit status of a run stopped by a signal (checkpoint written): the shell's 128 + signal number.
STOP_EXIT = {"SIGINT": 130, "SIGTERM": 143}


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class RateMeter:
    """Steps per second over the last ``window`` steps: the mean since the start would hide a slow-down, and a
    resumed run would count the steps of its earlier part."""

    def __init__(self, window: int = 50) -> None:
        self.points: deque[tuple[float, int]] = deque(maxlen=window)

    def add(self, step: int, now: float | None = None) -> float:
        self.points.append((time.perf_counter() if now is None else now, step))
        (t0, s0), (t1, s1) = self.points[0], self.points[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else 0.0


def pack_command(config_path: Path | None, overrides: list[str], target: Path, force: bool = False) -> dict[str, Any]:
    """Write every clip of the config's data (validation clips included) into one ``.npz`` luma pack; the target
    is checked before any decoding: a folder, a name training would not read as a pack, an existing file without
    ``force`` and one of the config's own input packs (even with ``force``) are refused."""
    from ..hardware import import_torch
    from ..output import check_folder_can_be_made, refuse_input_as_output
    from .data import find_provenance, is_pack, write_pack

    config = load_config(config_path, overrides)
    import_torch()
    from .loop import load_data

    d = config.data
    if target.is_dir():
        raise VcsError(f"--pack {target} is a folder: give the pack's file name, e.g. packs/luma.npz")
    if not is_pack(target):
        raise VcsError(f"--pack {target}: a luma pack's name must end in .npz (data.train reads only that as a pack)")
    check_folder_can_be_made(target.absolute().parent, "--pack")  # made by write_pack if missing
    inputs = [p for p in map(config.path, d.train) if is_pack(p)]
    refuse_input_as_output(target, *inputs, why="is one of the packs in data.train")
    if target.exists() and not force:
        raise VcsError(f"{target} already exists (use --force to overwrite)")
    clips = load_data(config)
    meta = write_pack(
        clips,
        target,
        d.pack_scale,
        d.pack_max_mb,
        min_frames=config.model.gop + 1,
        info={
            "train": d.train,
            "validation": d.validation,
            "photo_frames": d.photo_frames,
            "max_frames": d.max_frames,
            "provenance": find_provenance(d.train, config.path),
        },
        spread=d.pack_frames == "spread",
        contiguous=frozenset(d.validation),
    )
    kept = sum(c["frames"] for c in meta["clips"])
    total = sum(c["frames_total"] for c in meta["clips"])
    print(
        f"wrote {target}: {len(clips)} clips, {kept} of {total} frames (≤ {meta['frame_cap']} a clip, "
        f"{d.pack_frames}, scale 1/{d.pack_scale}), {meta['bytes'] / 1e6:.3g} MB"
    )
    return meta


def train_command(
    config_path: Path | None,
    overrides: list[str],
    resume: bool,
    quiet: bool,
    pack: Path | None = None,
    force: bool = False,
) -> None:
    if pack is not None:
        if resume:
            raise OptionConflict("--pack writes a pack and trains nothing: it does not go with --resume")
        pack_command(config_path, overrides, pack, force)
        return
    if force:  # a run is never overwritten: it is continued with --resume or given another run.dir
        raise OptionConflict("--force goes with --pack (to continue a run use --resume, or choose another run.dir)")
    config = load_config(config_path, overrides)  # every setting checked before torch is even imported
    from ..hardware import import_torch

    import_torch()
    from .loop import Trainer, run_training

    if quiet or int(os.environ.get("RANK", "0")) != 0:  # one progress bar per run, not one per process
        trainer = run_training(config, resume)
    else:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        columns = (
            TextColumn("[bold]train"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TextColumn("ETA {task.fields[eta]}"),
        )
        from ..cli import err, shown_until_error

        # As every other command's: on stderr, and only on a terminal (a log gets the records, not bar frames).
        with shown_until_error(Progress(*columns, console=err, disable=not err.is_terminal)) as progress:
            task = progress.add_task("train", total=config.optim.steps, status="loading data", eta="-")
            state: dict[str, Any] = {}
            meter = RateMeter()

            def on_step(trainer: Trainer, record: dict[str, Any]) -> None:
                state.update({k: v for k, v in record.items() if k.startswith("val_psnr")})
                rate = meter.add(trainer.step)
                val = f" val {state['val_psnr']:.2f} dB" if "val_psnr" in state else ""
                left = config.optim.steps - trainer.step
                eta = _duration(left / rate) if rate > 0 else "-"
                progress.update(
                    task, completed=trainer.step, eta=eta, status=f"loss {record['loss']:.2e}{val} {rate:.2f} steps/s"
                )

            trainer = run_training(config, resume, on_step)
    where = config.path(config.run.dir)
    if trainer.stopped:  # every rank exits with the status of the signal, so torchrun reports one cause
        if trainer.dist.main:
            print(
                f"stopped by {trainer.stopped} at step {trainer.step}; checkpoint in {where} (continue with --resume)",
                file=sys.stderr,
            )
        raise SystemExit(STOP_EXIT.get(trainer.stopped, 1))
    if trainer.dist.main:
        if trainer.exported is not None:
            print(f"exported {trainer.exported.name} to {trainer.exported.path.parent}")
        elif not quiet:
            print(f"done: step {trainer.step}, checkpoint in {where}")
