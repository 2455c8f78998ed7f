#!/usr/bin/env bash
# One call on a lent GPU machine: continue the shipped models' training from a carried luma pack, for a fixed
# time per ratio, and leave checkpoints, logs and exported weights under $OUT (they come back with the call).
#
# Prepare on the development machine (no GPU needed), once:
#   echo /packs/ >> .git/info/exclude
#   .venv/bin/vcs train --config configs/hitvcsnet-mh-n0.1.toml --pack packs/luma.npz \
#       --set data.pack_scale=3 --set data.pack_max_mb=14
# (the whole tree travels too, ≈ 47 MB with weights/ and its one fp32 master, 2026-11-26: keep the tree
# plus the pack under the device tool's 64 MiB; `du -sh --exclude=.git --exclude=.venv .` tells what travels)
# Check it here with a tiny budget:  OUT=/tmp/devout bash scripts/device_train.sh 20 0.1
# Then, with the device tool:  run(command="bash scripts/device_train.sh 240 0.1 0.01", carry=["packs"],
#                                   timeout_s=590)
# The device has torch but not PyAV: training from a pack needs neither PyAV nor an install.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-240}
shift || true
ratios=${*:-0.1 0.01}
out=${OUT:-$PWD/runs/device}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
py=${PYTHON:-python3}  # the device's python3 has torch, numpy, typer and rich
vcs() { "$py" -m vcscodec.cli "$@"; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no GPU visible"
for ratio in $ratios; do
  config=configs/gpu-pack-n$ratio.toml
  # fp32 master weights to continue from, once a run has produced a model worth continuing (docs/training.md);
  # without them the config starts from the shipped model of its ratio (model.resume_weights).
  master=weights/master/hitvcsnet-mh-n$ratio.pt
  start=()
  [ -f "$master" ] && start=(--set "model.resume_weights=\"$PWD/$master\"")
  run=$out/run-n$ratio
  # SIGTERM stops training cleanly after the current step, with a checkpoint (exit 143).
  timeout --signal=TERM "$seconds" "$py" -m vcscodec.cli train --config "$config" --quiet "${start[@]}" \
    --set "run.dir=\"$run\"" --set "run.export=\"$out/weights\"" 2>&1 | tail -5
  step=$("$py" -c "import sys, torch; print(torch.load(sys.argv[1], weights_only=False)['step'])" "$run/checkpoint.pt")
  echo "αn $ratio: stopped at step $step; exporting"
  vcs train --config "$config" --quiet --resume --set "run.dir=\"$run\"" --set "run.export=\"$out/weights\"" \
    --set "optim.steps=$step" "${start[@]}" 2>&1 | tail -3
  "$py" - "$run" <<'PY'
import sys, torch
state = torch.load(f"{sys.argv[1]}/checkpoint.pt", map_location="cpu", weights_only=False)
torch.save(state["model"], f"{sys.argv[1]}/master.pt")  # fp32 weights alone: what the next run resumes from
PY
  rm -f "$run/checkpoint.pt"  # over the device tool's 16 MiB per file; master.pt and the log are what matter
  grep val_psnr "$run/log.jsonl" | tail -2
done
ls -la "$out/weights" 2>/dev/null
