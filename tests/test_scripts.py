"""The maintenance scripts in scripts/ still fit the package: every name they import from vcscodec exists (a
refactor of the package would otherwise break them silently, as none runs in the suite), and each parses its
arguments (--help)."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = sorted((Path(__file__).resolve().parent.parent / "scripts").glob("*.py"))


def vcscodec_imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) for every `from vcscodec… import name` in the file, at any depth (lazy imports included)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "vcscodec":
            found += [(node.module, alias.name) for alias in node.names]
    return found


def test_there_are_scripts_to_check() -> None:
    assert len(SCRIPTS) >= 5 and all(vcscodec_imports(s) for s in SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_imports_exist(script: Path) -> None:
    for module, name in vcscodec_imports(script):
        exists = hasattr(importlib.import_module(module), name) or importlib.util.find_spec(f"{module}.{name}")
        assert exists, f"{script.name}: from {module} import {name}"  # a name, or a submodule


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_help(script: Path) -> None:
    done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, cwd=script.parent)
    assert done.returncode == 0 and "usage:" in done.stdout, done.stderr
