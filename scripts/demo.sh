#!/usr/bin/env bash
# Install vcscodec into .venv and run the main job: encode and decode a sample clip (no download needed).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
# torch==2.13.0 is the local CPU build on our machines; pyproject accepts a range so GPU users keep theirs.
.venv/bin/pip install -q --disable-pip-version-check torch==2.13.0
.venv/bin/pip install -q --disable-pip-version-check -e .
.venv/bin/vcs demo demo-output
