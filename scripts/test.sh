#!/usr/bin/env bash
# Install vcscodec with its test extras into .venv, check style, and run the whole test suite (CPU only).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check torch==2.13.0
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
.venv/bin/ruff check vcscodec tests scripts
# One worker a core (pytest-xdist): 535 s on a 2-core AVX2 machine alone, 315 s with two.
.venv/bin/python -m pytest -q -p no:cacheprovider -n auto
