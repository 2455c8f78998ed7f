"""The one exception type of vcscodec, which the CLI turns into a one-line message and exit code 1, and the
wording its messages share."""


class VcsError(Exception):
    """A user-facing error: bad input, a damaged file, a missing model. The message is the whole story."""


class OutputClosed(VcsError):
    """The reader of standard output closed it (`vcs decode in.vcs - | head -c …`, a player quit): not a fault of
    the input, so the CLI says it without "error" and exits 141, as a process killed by SIGPIPE would."""


def frames_phrase(count: int) -> str:
    """A frame count in words, as every message says it: 1 frame, 9 frames."""
    return f"{count} frame{'s' * (count != 1)}"
