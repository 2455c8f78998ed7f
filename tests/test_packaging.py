"""What a wheel (a non-editable install: `pip install .`, `pip install git+…`) carries: every module, and the models."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def setuptools_table() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_folder_is_listed_and_the_weights_are_mapped():
    """pyproject.toml lists the packages (so that weights/ can be mapped into the wheel): a new subpackage left out
    of the list would be missing from every wheel while the editable install of the tests still found it."""
    table = setuptools_table()
    folders = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "vcscodec").rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert set(table["packages"]) == folders | {"vcscodec._weights"}
    assert table["package-dir"] == {"vcscodec._weights": "weights"}
    shipped = {p.suffix for p in (ROOT / "weights").iterdir() if p.is_file()}
    patterns = table["package-data"]["vcscodec._weights"]
    assert {f"*{suffix}" for suffix in shipped - {".md"}} <= set(patterns)


@pytest.mark.slow
def test_a_wheel_installs_the_models_with_the_package(tmp_path, tiny_weights):
    """Build a wheel from a copy of the project whose weights/ holds the tiny models, install it into a bare folder
    and load the models from there, with no $VCS_WEIGHTS and no source tree in reach."""
    pytest.importorskip("setuptools")  # built without isolation: no network needed
    stage = tmp_path / "stage"
    stage.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, stage / name)
    shutil.copytree(ROOT / "vcscodec", stage / "vcscodec", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(tiny_weights, stage / "weights")
    (stage / "weights" / "master").mkdir()
    (stage / "weights" / "master" / "training-master.pt").write_bytes(b"not for the wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist", stage], check=True)
    (wheel,) = (tmp_path / "dist").glob("vcscodec-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    models = sorted(p.name for p in tiny_weights.iterdir())
    assert {f"vcscodec/_weights/{m}" for m in models} <= names
    assert not any("master" in n for n in names)
    assert "vcscodec/train/loop.py" in names and "vcscodec/data/paper_results.json" in names

    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", site, wheel], check=True)
    env = {k: v for k, v in os.environ.items() if k != "VCS_WEIGHTS"} | {"PYTHONPATH": str(site)}
    probe = (
        "import vcscodec; from vcscodec.registry import default_model, weights_dir\n"
        "print(vcscodec.__file__); print(weights_dir())\n"
        "for ratio in (0.1, 0.01): card = default_model(ratio); card.load(); print(card.name)"
    )
    out = subprocess.run([sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    package, folder, *loaded = out.stdout.split()
    assert Path(package).is_relative_to(site) and Path(folder) == site / "vcscodec" / "_weights"
    assert sorted(f"{name}.json" for name in loaded) == sorted(m for m in models if m.endswith(".json"))
