#!/usr/bin/env bash
# Score a keyframe-branch checkpoint as it would ship: graft it into a copy of a shipped model, decode with the
# shipped decoder, and compare on the held-out training chains (never the test set). Nothing in weights/ changes.
#
#   bash scripts/score_keyframe_branch.sh CHECKPOINT.pt [MORE.pt ...]   (several: their average, a model soup)
#
# Environment: BASE (the model grafted into) and ARCH (the decoder), by default the weights and the decoder of the
# shipped αn 0.1 default; THREADS (default 2); PART=non-keyframes scores the non-keyframe network of a run with
# optim.parts = "non-keyframes" instead (BASE of its ratio, ARCH a decoder that runs that network, not a -lin one). A branch ships when "all" gains +0.05 dB or more
# over the shipped model's score on the same chains and neither moving nor still chains are lower (docs/training.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 1 ] || { echo "usage: $0 CHECKPOINT.pt [MORE.pt ...]" >&2; exit 2; }
python=${PYTHON:-$root/.venv/bin/python}
# The default's weights file is named after the model that owns it (save_model); a derived decoder shares it.
read -r shipped_base shipped_arch < <("$python" -c "from vcscodec.registry import default_model as d
print(d(0.1).path.stem, d(0.1).manifest['arch'])")
base=${BASE:-$shipped_base}
arch=${ARCH:-$shipped_arch}
folder=$(mktemp -d)
trap 'rm -rf "$folder"' EXIT
cp "$root/weights/$base.json" "$root/weights/$base.npz" "$folder/"
export VCS_WEIGHTS=$folder
grafted=$("$python" "$root/scripts/graft_keyframes.py" --part "${PART:-keyframes}" --branch-from "$@" --into "$base" \
    --export "$folder" | awk '{print $2}')
derived=$("$python" "$root/scripts/derive_model.py" "$grafted" "$arch" --why "scoring $*" | awk '{print $2}')
"$python" "$root/scripts/compare_decoders.py" "$derived" --threads "${THREADS:-2}"
