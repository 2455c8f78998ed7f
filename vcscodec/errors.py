"""The one exception type of vcscodec, which the CLI turns into a one-line message and exit code 1, and the
wording its messages share."""

from __future__ import annotations

import numbers
import os
from pathlib import Path


class VcsError(Exception):
    """A user-facing error: bad input, a damaged file, a missing model. The message is the whole story."""


class CommandLineError(VcsError):
    """A mistyped command line that Click cannot see: an option's value that does not parse (`--size 64`,
    `--fps abc`), or options that do not go together (`OptionConflict`). The command line reports it as Click does
    its own usage errors, with exit code 2."""


class OptionConflict(CommandLineError):
    """Options or arguments that do not go together (`--bpp` with `--quant-step`)."""


class StartPastEnd(VcsError):
    """A first frame to read (``--start``) at or past the end of a source; ``frame_count`` is how many it has, so
    that a caller that chose the start itself (`decode --reference`) can say it in its own words."""

    def __init__(self, message: str, frame_count: int) -> None:
        super().__init__(message)
        self.frame_count = frame_count


class OutputClosed(VcsError):
    """The reader of standard output closed it (`vcs decode in.vcs - | head -c …`, a player quit): not a fault of
    the input, so the CLI says it without "error" and exits 141, as a process killed by SIGPIPE would."""


def check_whole(value: object, option: str, minimum: int) -> int:
    """``value`` if it is a whole number of at least ``minimum`` (a frame count, a start), else the one-line error
    that names the option; a bool or a string is refused too, from Python as from the command line. A numpy
    integer is a whole number (a count from an array's shape): it comes back as an int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        least = "0 or more" if minimum == 0 else f"at least {minimum}"
        raise VcsError(f"{option} must be {least}, not {value!r}")
    return int(value)


def check_path(value: object, what: str) -> Path:
    """``value`` as a Path if it can name a file (a str or an os.PathLike), else the one-line error that names
    ``what``: from Python, a number or None would otherwise fail deep inside pathlib."""
    if isinstance(value, str) or (isinstance(value, os.PathLike) and isinstance(os.fspath(value), str)):
        return Path(value)
    raise VcsError(f"{what} must be a path (a str or a Path), not {type(value).__name__} {value!r}")


def check_size(value: object) -> tuple[int, int] | None:
    """``value`` if it is None or a (width, height) pair of whole numbers of at least 1 (``--size``), else the
    one-line error: a "WxH" string from Python would otherwise be read one character per field."""
    if value is None:
        return None
    if isinstance(value, tuple | list) and len(value) == 2:
        width, height = value
        if all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (width, height)):
            return int(width), int(height)
    raise VcsError(f"--size must be a (width, height) pair of whole numbers, not {value!r}")


def frames_phrase(count: int) -> str:
    """A frame count in words, as every message says it: 1 frame, 9 frames."""
    return f"{count} frame{'s' * (count != 1)}"
