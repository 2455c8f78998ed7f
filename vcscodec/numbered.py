"""Names of numbered pictures, printf-style as FFmpeg's image2 reads and writes them: ``frames/f_%04d.png``.

A name is a pattern when it holds exactly one counter (``%d``, ``%0Nd``, or ``%Nd``, which FFmpeg pads with zeros
too) and any other ``%`` doubled (``%%``, a literal ``%``, as FFmpeg reads it); picture n is then
``printf_name(name) % n``. Standard library only: the output checks (`vcscodec.output`) use it too.
"""

from __future__ import annotations

import re
from pathlib import Path

_TOKENS = re.compile(r"%%|%(\d+)?d")


def has_counter(name: str) -> bool:
    """Whether ``name`` holds a counter at all (a pattern, or a malformed one with two)."""
    return any(token.group(0) != "%%" for token in _TOKENS.finditer(name))


def _regex(name: str) -> re.Pattern[str] | None:
    """What the files of pattern ``name`` look like, the counter's digits as group 1; None if not a pattern."""
    parts, counters, start = [], 0, 0
    for token in _TOKENS.finditer(name):
        literal = name[start : token.start()]
        if "%" in literal:  # a lone %: FFmpeg refuses such a name
            return None
        parts.append(re.escape(literal))
        if token.group(0) == "%%":
            parts.append("%")
        else:
            counters += 1
            parts.append(r"(\d+)")
        start = token.end()
    tail = name[start:]
    if counters != 1 or "%" in tail:
        return None
    return re.compile("".join(parts) + re.escape(tail))


def printf_name(name: str) -> str:
    """``name`` as Python's % operator prints it as FFmpeg does: ``%3d`` zero-padded, as ``%03d``."""
    return _TOKENS.sub(lambda t: f"%0{int(t.group(1))}d" if t.group(1) else t.group(0), name)


def is_pattern(name: str) -> bool:
    """Whether ``name`` names numbered pictures (one counter, other % doubled)."""
    return _regex(name) is not None


def numbered_files(pattern: Path) -> dict[int, Path]:
    """Every existing file that ``pattern`` names, by number; empty when it is not a pattern or its folder is
    missing. A number counts only if the pattern prints it that way (%03d: 007 and 1000, not 7; %d: 7, not 007)."""
    regex = _regex(pattern.name)
    if regex is None or not pattern.parent.is_dir():
        return {}
    found, printf = {}, printf_name(pattern.name)
    for file in pattern.parent.iterdir():
        match = regex.fullmatch(file.name)
        # a dangling link names no picture: FFmpeg cannot read it, and nothing is there to overwrite
        if match and printf % int(match.group(1)) == file.name and file.exists():
            found[int(match.group(1))] = file
    return found


def picture_path(pattern: Path, number: int) -> Path:
    """The file of picture ``number`` of ``pattern``."""
    return pattern.parent / (printf_name(pattern.name) % number)


def files_named(path: Path) -> list[Path]:
    """The existing files ``path`` stands for: itself, or, for a pattern that is no file, every picture it names."""
    if path.exists():
        return [path]
    return list(numbered_files(path).values())
