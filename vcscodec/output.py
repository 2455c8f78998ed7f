"""The all-or-nothing contract every writer keeps (video files, numbered pictures, `.vcs` files).

What a writer writes goes under a temporary name; `close()` puts it in place, `abort()` drops it and leaves the
target untouched, and leaving a ``with`` block by an exception aborts; the checks every output path passes
before any work is done. Standard library only, so that the container (which never imports FFmpeg or torch) can
share it.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from types import TracebackType
from typing import Self

from .errors import VcsError
from .numbered import files_named


class Stopped(BaseException):
    """A stop a signal asked for: Ctrl-C, SIGTERM (a scheduler's kill, `timeout`) or SIGHUP (a closed terminal or a
    dropped ssh session, whose default action would leave temporary files). A BaseException, so that no ``except
    Exception`` catches it on its way out: every writer's ``with`` block aborts, and the command line says why it
    stopped, with the shell's exit status for the signal."""

    EXIT = {signal.SIGINT: (130, "interrupted"), signal.SIGTERM: (143, "terminated"), signal.SIGHUP: (129, "hung up")}

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.code, self.why = self.EXIT[signal.Signals(signum)]


_stop: Stopped | None = None


def request_stop(signum: int, frame: object = None) -> None:
    """The command line's signal handler: raise `Stopped`, once. The stop is remembered as well: raised where
    Python only prints "Exception ignored" (inside a weakref or an atexit callback), it would let the command run
    on to the end and keep its output, so a writer asked to keep one refuses while a stop is pending
    (`AllOrNothing`). Signals after the first are ignored while it unwinds: a second Ctrl-C broke the clean-up
    with tracebacks."""
    global _stop
    if _stop is not None:
        return
    _stop = Stopped(signum)
    raise _stop


def pending_stop() -> Stopped | None:
    """The stop a signal asked for, if one did (`request_stop`)."""
    return _stop


class AllOrNothing:
    """Base of every writer: subclasses define `close()` and `abort()`."""

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None and _stop is None:
            self.close()
            return
        self.abort()
        if exc_type is None and _stop is not None:  # asked to stop, but its exception was lost on the way
            raise _stop


def check_output_folder(folder: Path) -> None:
    """Refuse a folder an output cannot be written into: missing (a mistyped path is not created), a file, or
    not writable. Every writer says it in these words."""
    if not folder.exists():
        raise VcsError(f"output folder {folder} does not exist")
    if not folder.is_dir():
        raise VcsError(f"output folder {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise VcsError(f"output folder {folder} is not writable")


def check_folder_can_be_made(folder: Path, what: str) -> None:
    """Refuse, before any work, a folder that a command will create or fill later (``what`` names the setting): a
    file in its place, or a file or an unwritable folder where it would be made."""
    folder = folder.absolute()
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise VcsError(f"{what} {folder} cannot be a folder: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise VcsError(f"{what} {folder} cannot be written: {existing} is not writable")


def check_output_path(path: str | os.PathLike[str], force: bool, *inputs: Path) -> None:
    """Refuse an output before any work is done: a folder it cannot be written into, a folder as the file, an
    existing file without ``force``, or one of the command's own ``inputs`` (overwriting it would destroy what is
    being read or scored)."""
    path = Path(path)
    check_output_folder(path.parent)  # named as given: 'nodir', not the absolute path
    if path.is_dir():
        raise VcsError(f"{path} is a folder")
    if path.exists() and not path.is_file():
        # The finished output is renamed onto the name, which would replace a named pipe (its reader left waiting)
        # or a device node with a plain file: streaming goes through standard output instead.
        kind = (
            "a named pipe"
            if path.is_fifo()
            else "a device"
            if path.is_char_device() or path.is_block_device()
            else "not a file"
        )
        raise VcsError(f"{path} is {kind}: write to - and redirect it (… - > {path})")
    refuse_input_as_output(path, *inputs)
    if path.exists() and not force:
        raise VcsError(f"{path} already exists (use --force to overwrite)")


def refuse_input_as_output(path: Path, *inputs: Path, why: str = "is also an input of this command") -> None:
    """Writing ``path`` must never destroy one of ``inputs`` (the same file by any name, and for numbered pictures
    any picture either name stands for); ``--force`` included."""
    read = {_file_id(file) for source in inputs for file in files_named(Path(source))} - {None}
    if any(_file_id(file) in read for file in files_named(path)):
        raise VcsError(f"{path} {why}: choose another output name")


def _file_id(path: Path) -> tuple[int, int] | None:
    """What makes two names one file (hard links, symbolic links, ``..``): its device and inode; None for a name
    that is gone (a dangling link, a file deleted meanwhile), which no write can destroy."""
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_dev, status.st_ino


def make_output_folder(folder: Path, command: str) -> None:
    """Create ``folder`` for a command that writes several files into it (``command`` names it in errors); a file
    there is refused, and so is a missing parent (as for every output: a mistyped path is not created)."""
    if folder.exists() and not folder.is_dir():
        raise VcsError(f"{folder} is a file: {command} writes into a folder")
    check_output_folder(folder.absolute().parent)
    try:
        folder.mkdir(exist_ok=True)
    except OSError as e:
        raise VcsError(f"cannot create {folder}: {e.strerror or e}") from None
