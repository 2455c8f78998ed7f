"""The `vcs` command line. Every VcsError becomes one line on stderr and exit code 1, never a traceback."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from .errors import VcsError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="vcscodec: video compressive sensing with HIT-VCSNet.")
err = Console(stderr=True)


@app.callback()
def _root() -> None:
    """vcscodec: encode videos into compressive measurements (.vcs) and rebuild them with HIT-VCSNet."""


@app.command()
def train(
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="TOML file (see configs/ and docs/training.md)")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a setting: section.key=value (repeatable)")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in run.dir from its checkpoint")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar")] = False,
) -> None:
    """Train HIT-VCSNet on folders of videos and photos (never on the test set)."""
    from .train.cli import train_command

    train_command(config, set_ or [], resume, quiet)


def main() -> None:
    try:
        app()
    except VcsError as e:
        err.print(f"vcs: error: {e}", highlight=False, markup=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("vcs: interrupted", highlight=False)
        sys.exit(130)


if __name__ == "__main__":
    main()
