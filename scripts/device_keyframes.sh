#!/usr/bin/env bash
# One call on a lent GPU machine: train the keyframe branch for a fixed time from a carried pack, and leave its log
# and a slim checkpoint (fp32 weights, step, config; no optimizer state) under $OUT, where they come back.
#
# Why not scripts/device_train.sh: the shipped decoders (-lin) skip the non-keyframe network, so whole-chain training
# improves nothing that ships, and the one keyframe branch serves both ratios (scripts/graft_keyframes.py), so a
# single process gets the whole GPU. Since the seventh session every gain in the weights came from this branch.
#
# Prepare on the development machine (no GPU needed):
#   .venv/bin/vcs train --config configs/hitvcsnet-mh-n0.1.toml --pack packs/keys.npz \
#       --set data.pack_frames=spread --set data.pack_max_mb=44          # 38.4 MB, 4 frames a clip (2026-12-06)
#   mkdir -p /tmp/held && git ls-files 'weights/*.npz' weights/master/hitvcsnet-mh-n0.01.pt | xargs mv -t /tmp/held
# (the tree is then 19.8 MB: with the pack under the device tool's 64 MiB). Check it here with a tiny budget:
#   OUT=/tmp/devkeys PYTHON=.venv/bin/python DEVICE_TRAIN_SET="--set data.batch=1 --set data.crop=64 \
#       --set data.validation_chains=1 --set data.on_device=false --set run.validate_every=5" \
#       bash scripts/device_keyframes.sh 60
# Then, with the device tool: run(command="bash scripts/device_keyframes.sh 420", carry=["packs"], timeout_s=560)
# and afterwards: git checkout -- weights; bash scripts/score_keyframe_branch.sh <files_at>/keys/branch.pt
# (docs/training.md, "Export", says when a branch ships and how).
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-420}
out=${OUT:-$PWD/runs/device}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
py=${PYTHON:-python3}  # the device's python3 has torch, numpy, typer and rich
read -ra extra <<<"${DEVICE_TRAIN_SET:-}"  # extra `--set key=value` words (a local check: tiny batch and crop)
run=$out/keys
master=weights/master/hitvcsnet-mh-n0.1.pt
start=()
[ -f "$master" ] && start=(--set "model.resume_weights=\"$PWD/$master\"")

nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no GPU visible"
# What the GPU does halfway (for docs/training.md); stopped at the end if training ended first.
(sleep $((seconds / 2)) >/dev/null 2>&1; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null) &
probe=$!
# SIGTERM stops training cleanly after the current step, with a checkpoint (exit 143).
timeout --signal=TERM "$seconds" "$py" -m vcscodec.cli train --config configs/gpu-pack-keyframes.toml --quiet \
  "${start[@]}" --set "run.dir=\"$run\"" "${extra[@]}" 2>&1 | tail -5
[ -f "$run/checkpoint.pt" ] || { echo "no checkpoint"; exit 1; }
"$py" - "$run" <<'PY'
import sys, torch
state = torch.load(f"{sys.argv[1]}/checkpoint.pt", map_location="cpu", weights_only=False)
# Adam's state would double the file past the device tool's 16 MiB a file; the weights are what gets scored.
keep = ("format", "model", "step", "wall", "samples_seen", "config", "model_config")
torch.save({k: state[k] for k in keep if k in state}, f"{sys.argv[1]}/branch.pt")
print(f"stopped at step {state['step']}: {state['samples_seen']} chains' keyframes, {state['wall']:.0f} s")
PY
rm -f "$run/checkpoint.pt"
kill "$probe" 2>/dev/null
{ grep val_psnr "$run/log.jsonl"; tail -1 "$run/log.jsonl"; } | uniq | tail -12
ls -la "$run"
