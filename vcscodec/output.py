"""The all-or-nothing contract every writer keeps (video files, numbered pictures, `.vcs` files).

What a writer writes goes under a temporary name; `close()` puts it in place, `abort()` drops it and leaves the
target untouched, and leaving a ``with`` block by an exception aborts; the checks every output path passes
before any work is done. Standard library only, so that the container (which never imports FFmpeg or torch) can
share it.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from .errors import VcsError
from .numbered import files_named


class Stopped(BaseException):
    """A stop a signal asked for: Ctrl-C, SIGTERM (a scheduler's kill, `timeout`) or SIGHUP (a closed terminal or a
    dropped ssh session, whose default action would leave temporary files). A BaseException, so that no ``except
    Exception`` catches it on its way out: every writer's ``with`` block aborts, and the command line says why it
    stopped, with the shell's exit status for the signal."""

    # the signals this system has (Windows has no SIGHUP), with the exit status and the word for each
    _NAMES = (("SIGINT", 130, "interrupted"), ("SIGTERM", 143, "terminated"), ("SIGHUP", 129, "hung up"))
    EXIT = {getattr(signal, name): (code, why) for name, code, why in _NAMES if hasattr(signal, name)}

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.code, self.why = self.EXIT[signal.Signals(signum)]


_stop: Stopped | None = None
_signals_since = 0  # stop signals after the one that asked for `_stop`
_holding = 0  # `held_signals` blocks entered and not left


def handle_stop_signals(handler: Callable[[int, Any], None]) -> None:
    """Install ``handler`` for every stop signal but one the program was started with ignored (``nohup`` ignores
    SIGHUP, a shell script's background job SIGINT): that choice is the caller's, not ours to undo."""
    for sig in Stopped.EXIT:
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, handler)


def request_stop(signum: int, frame: object = None) -> None:
    """The command line's signal handler: raise `Stopped`, once. The stop is remembered as well: raised where
    Python only prints "Exception ignored" (inside a weakref or an atexit callback), it would let the command run
    on, so every writer refuses the next frame and refuses to keep its output while a stop is pending
    (`raise_pending_stop`, `AllOrNothing`). The second signal is ignored while the first unwinds (a second Ctrl-C
    broke the clean-up with tracebacks); a third ends the program at once, as the signal's default action does,
    for a clean-up that is stuck (a write to a pipe nobody reads)."""
    global _stop, _signals_since
    if _stop is None:
        _stop = Stopped(signum)
        if _holding:
            return  # raised when the held block ends (`held_signals`)
        raise _stop
    _signals_since += 1
    if _signals_since >= 2:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def pending_stop() -> Stopped | None:
    """The stop a signal asked for, if one did (`request_stop`)."""
    return _stop


def raise_pending_stop() -> None:
    """Raise the stop a signal asked for, if its exception was lost on the way (called by writers for each frame)."""
    if _stop is not None:
        raise _stop


def clear_stop() -> None:
    """Forget a stop (`cli.main` starts each command with none, also when called again in one process)."""
    global _stop, _signals_since
    _stop, _signals_since = None, 0


@contextmanager
def held_signals() -> Iterator[None]:
    """Hold a stop back while files are put in place or dropped (renames, deletions): it comes after them, never
    halfway, which would leave a mix of old and new files or a temporary file behind. A count, not the signal mask:
    a mask holds signals back from the calling thread only, and the kernel then hands them to another one (torch's,
    x264's), whose handler runs in the main thread all the same. A third signal still ends the program at once."""
    global _holding
    _holding += 1
    try:
        yield
    finally:
        _holding -= 1
    if not _holding:
        raise_pending_stop()


@contextmanager
def replaced_whole(path: Path, suffix: str = "") -> Iterator[Path]:
    """A temporary name beside ``path`` for a file written whole in the block: renamed onto ``path`` when the block
    ends, deleted when it ends by an exception (a full disk, Ctrl-C), so that ``path`` is the old file or the new one,
    never half of one. The pid keeps two processes that write one file apart; ``suffix`` ends the name for a writer
    that would append its own (``np.save``: ".npy")."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{suffix}")
    try:
        yield tmp
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
        with held_signals():
            if exc_type is None and _stop is None:
                self.close()
                return
            self.abort()
        if exc_type is None:  # asked to stop, but its exception was lost on the way
            raise_pending_stop()


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
    refuse_special_file(path)
    refuse_input_as_output(path, *inputs)
    if path.exists() and not force:
        raise VcsError(f"{path} already exists (use --force to overwrite)")


def refuse_special_file(path: Path) -> None:
    """Refuse an output name that holds something other than a file or nothing: the finished output is renamed onto
    it, which would replace a named pipe (its reader left waiting) or a device with a plain file. Streaming goes
    through standard output instead."""
    if path.exists() and not path.is_file() and not path.is_dir():  # a folder has its own message
        kind = (
            "a named pipe"
            if path.is_fifo()
            else "a device"
            if path.is_char_device() or path.is_block_device()
            else "not a file"
        )
        raise VcsError(f"{path} is {kind}: write to - and redirect it (… - > {path})")


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
    if folder.is_dir():  # there already: it is written into, its parent need not be writable (`vcs demo .`)
        check_output_folder(folder)
        return
    check_output_folder(folder.absolute().parent)
    try:
        folder.mkdir(exist_ok=True)
    except OSError as e:
        raise VcsError(f"cannot create {folder}: {e.strerror or e}") from None
