"""`vcs train`: config in, progress out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .config import load_config
from .loop import Trainer, run_training


def train_command(config_path: Path | None, overrides: list[str], resume: bool, quiet: bool) -> None:
    config = load_config(config_path, overrides)
    if quiet:
        run_training(config, resume)
        return
    columns = (TextColumn("[bold]train"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns) as progress:
        task = progress.add_task("train", total=config.optim.steps, status="starting")
        state: dict[str, Any] = {}

        def on_step(trainer: Trainer, record: dict[str, Any]) -> None:
            state.update({k: v for k, v in record.items() if k.startswith("val_psnr")})
            rate = trainer.step / trainer.wall if trainer.wall else 0.0
            val = f" val {state['val_psnr']:.2f} dB" if "val_psnr" in state else ""
            progress.update(task, completed=trainer.step,
                            status=f"loss {record['loss']:.2e}{val} {rate:.2f} steps/s")

        run_training(config, resume, on_step)
