"""The one exception type of vcscodec, which the CLI turns into a one-line message and exit code 1, and the
wording its messages share."""


class VcsError(Exception):
    """A user-facing error: bad input, a damaged file, a missing model. The message is the whole story."""


class OutputClosed(VcsError):
    """The reader of standard output closed it (`vcs decode in.vcs - | head -c …`, a player quit): not a fault of
    the input, so the CLI says it without "error" and exits 141, as a process killed by SIGPIPE would."""


def check_whole(value: object, option: str, minimum: int) -> int:
    """``value`` if it is a whole number of at least ``minimum`` (a frame count, a start), else the one-line error
    that names the option; a bool or a string is refused too, from Python as from the command line."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        least = "0 or more" if minimum == 0 else f"at least {minimum}"
        raise VcsError(f"{option} must be {least}, not {value!r}")
    return value


def frames_phrase(count: int) -> str:
    """A frame count in words, as every message says it: 1 frame, 9 frames."""
    return f"{count} frame{'s' * (count != 1)}"
