"""The one exception type of vcscodec: the CLI turns it into a one-line message and exit code 1."""


class VcsError(Exception):
    """A user-facing error: bad input, a damaged file, a missing model. The message is the whole story."""
