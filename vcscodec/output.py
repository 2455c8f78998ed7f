"""The all-or-nothing contract every writer keeps (video files, numbered pictures, `.vcs` files).

What a writer writes goes under a temporary name; `close()` puts it in place, `abort()` drops it and leaves the
target untouched, and leaving a ``with`` block by an exception aborts. Standard library only, so that the
container (which never imports FFmpeg or torch) can share it.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self


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
        if exc_type is None:
            self.close()
        else:
            self.abort()
