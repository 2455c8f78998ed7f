"""The README's Python examples run as written (with the tiny test models: the shapes and the calls are what is
checked, not the quality)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    section = README.read_text(encoding="utf-8").split("\n## Python\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_readme_has_the_python_examples() -> None:
    assert len(python_blocks()) == 2


@pytest.mark.parametrize("index", [0, 1])
def test_readme_python_example_runs(index: int, tiny_weights: Path, tmp_path: Path) -> None:
    env = {**os.environ, "VCS_WEIGHTS": str(tiny_weights), "OMP_NUM_THREADS": "1"}
    for _ in range(2 if index == 0 else 1):  # the first one twice: a reader tries it again
        done = subprocess.run(
            [sys.executable, "-c", python_blocks()[index]], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
    if index == 0:
        assert re.fullmatch(r"\d+\.\d{3} bpp, 9 frames, PSNR Y \d+\.\d\d dB\n", done.stdout), done.stdout
        assert sorted(p.name for p in tmp_path.iterdir()) == ["pan.vcs", "pan.y4m", "rebuilt.y4m"]
    else:
        assert done.stdout == "(1, 3, 512, 3, 4) (1, 2, 7, 102, 3, 4) (1, 3, 1, 96, 128) (1, 2, 7, 1, 96, 128)\n"
