"""The one exception type of vcscodec, which the CLI turns into a one-line message and exit code 1, and the
wording its messages share."""


class VcsError(Exception):
    """A user-facing error: bad input, a damaged file, a missing model. The message is the whole story."""


def frames_phrase(count: int) -> str:
    """A frame count in words, as every message says it: 1 frame, 9 frames."""
    return f"{count} frame{'s' * (count != 1)}"
