"""The `vcs` program's entry point: a stop signal is answered from the first instant.

Importing the command line (Typer, rich, numpy) takes a moment; a Ctrl-C in it printed Python's traceback. Until
`cli.main` installs its own handlers, a signal ends the program at once, with its line and exit status: nothing has
been written yet. Standard library and `output` only, so that this module itself loads at once.
"""

from __future__ import annotations

import os

from .output import Stopped, handle_stop_signals


def _stopped_while_starting(signum: int, frame: object) -> None:
    stop = Stopped(signum)
    os.write(2, f"vcs: {stop.why}\n".encode())  # os.write: print() in a handler can re-enter a write it interrupted
    os._exit(stop.code)


def main() -> None:
    handle_stop_signals(_stopped_while_starting)
    from .cli import main as run

    run()
