#!/usr/bin/env bash
# One call on a lent GPU machine: train the keyframe branch for a fixed time from a carried pack, and leave its log
# and a slim checkpoint (the keyframe branch's fp32 weights, step, config; no optimizer state) under $OUT, where they
# come back.
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
# SHARD_MB (default 15) caps each file of the slim checkpoint (the device tool brings back 16 MiB a file at most).
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
"$py" - "$run" "${SHARD_MB:-15}" <<'PY'
import sys, torch
from vcscodec.train.loop import TRAINED_PARTS
run, shard_bytes = sys.argv[1], float(sys.argv[2]) * 2**20
state = torch.load(f"{run}/checkpoint.pt", map_location="cpu", weights_only=False)
# The device tool brings back files of 16 MiB at most: Adam's state stays behind, and so does the rest of the model,
# which scripts/graft_keyframes.py does not read. A wider branch (model.key_channels = 64: 21 MiB in fp32) is
# split over branch.pt and branch-1.pt, … (named in branch.pt's "shards"), the weights kept in fp32 for scoring.
branch = {k: v for k, v in state["model"].items() if k.startswith(TRAINED_PARTS["keyframes"])}
parts, size = [{}], 0
for k, v in branch.items():
    bytes_ = v.numel() * v.element_size()
    if parts[-1] and size + bytes_ > shard_bytes:
        parts.append({})
        size = 0
    parts[-1][k] = v
    size += bytes_
keep = ("format", "step", "wall", "samples_seen", "config", "model_config")
shards = [f"branch-{i}.pt" for i in range(1, len(parts))]
for name, part in zip(shards, parts[1:]):
    torch.save({"model": part}, f"{run}/{name}")
torch.save({**{k: state[k] for k in keep if k in state}, "model": parts[0], "shards": shards}, f"{run}/branch.pt")
print(f"stopped at step {state['step']}: {state['samples_seen']} chains' keyframes, {state['wall']:.0f} s")
PY
rm -f "$run/checkpoint.pt"
kill "$probe" 2>/dev/null
{ grep val_psnr "$run/log.jsonl"; tail -1 "$run/log.jsonl"; } | uniq | tail -12
ls -la "$run"
