#!/usr/bin/env bash
# While the shipped decoders skip the non-keyframe network (-lin), run scripts/device_keyframes.sh instead: it gives
# the whole GPU to the keyframe branch, the one part of what ships that training improves. This script is for whole
# chains, for when a decoder that runs the non-keyframe network ships again.
#
# One call on a lent GPU machine: continue the shipped models' training from a carried luma pack, both ratios at
# once on the one GPU (a process each; together they used 25 GB of an H100; whether two give more steps in all
# than one was not measured), for a fixed time, and leave logs, fp32 masters and exported weights under $OUT (they come back with the call).
#
# Prepare on the development machine (no GPU needed), once:
#   echo /packs/ >> .git/info/exclude
#   .venv/bin/vcs train --config configs/hitvcsnet-mh-n0.1.toml --pack packs/luma.npz \
#       --set data.pack_scale=2 --set data.pack_max_mb=33
# What travels is the tree plus the pack, under the device tool's 64 MiB: `git ls-files | xargs du -cb | tail -1`
# plus the pack. The runs start from the fp32 masters in weights/master, so the shipped .npz files are not needed
# there: take them out of the tree for the call and put them back after it (tree 34.5 MB + pack 31.3 MB = 62.8 MiB,
# 2026-11-28; 1.2 MiB to spare):
#   mkdir -p /tmp/held && git ls-files 'weights/*.npz' | xargs mv -t /tmp/held   # before the call
#   git checkout -- weights                                                       # after it
# Check it here with a tiny budget:  OUT=/tmp/devout PYTHON=.venv/bin/python \
#   DEVICE_TRAIN_SET="--set data.batch=2 --set data.crop=64 --set data.validation_chains=1" \
#   bash scripts/device_train.sh 120
# Then, with the device tool:  run(command="KEYFRAME_SECONDS=200 bash scripts/device_train.sh 500", carry=["packs"],
# timeout_s=590)  (checked here, 2026-11-28: KEYFRAME_SECONDS=60 … device_train.sh 150, both ratios, with the tiny
# settings above: 8 files under $OUT, 3 min 15 s on 2 busy CPU cores)
# (the exports took 22 s after 320 s of training; the machine's start and the transfers added 30–65 s a call to
# the device time, 2026-11-26: 500 s fit a 15-minute budget once, with no room for a second try).
# KEYFRAME_SECONDS=N spends the first N of those seconds on the keyframe branch alone (optim.parts = keyframes,
# single frames: about six times the keyframes a second of whole chains gives), then the rest on whole chains from
# there, so the non-keyframe network adapts to the new keyframe features (HFIM reads them). The keyframes are
# where the paper is furthest ahead (docs/training.md, sixth session): e.g. KEYFRAME_SECONDS=200 with 500.
# The device has torch but not PyAV: training from a pack needs neither PyAV nor an install.
# Files back: at most 8, so each ratio leaves exactly log.jsonl, master.pt and its exported .npz/.json.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-240}
shift || true
ratios=${*:-0.1 0.01}
out=${OUT:-$PWD/runs/device}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
py=${PYTHON:-python3}  # the device's python3 has torch, numpy, typer and rich
# Extra `--set key=value` words for both runs (a local check uses a tiny batch and crop).
read -ra extra <<<"${DEVICE_TRAIN_SET:-}"
keyframe_seconds=${KEYFRAME_SECONDS:-0}

train_ratio() {
  local ratio=$1 config=configs/gpu-pack-n$1.toml run=$out/run-n$1
  # fp32 master weights to continue from (docs/training.md); without them the config starts from the shipped
  # model of its ratio (model.resume_weights).
  local master=weights/master/hitvcsnet-mh-n$ratio.pt start=()
  [ -f "$master" ] && start=(--set "model.resume_weights=\"$PWD/$master\"")
  local whole=$seconds
  if [ "$keyframe_seconds" -gt 0 ]; then
    local keys=$out/keys-n$ratio
    # SIGTERM stops training cleanly after the current step, with a checkpoint (exit 143). The rate halves every
    # 1 500 steps here: single frames run many more steps a second than chains.
    timeout --signal=TERM "$keyframe_seconds" "$py" -m vcscodec.cli train --config "$config" --quiet "${start[@]}" \
      --set 'optim.parts="keyframes"' --set optim.epoch_steps=1500 --set "run.dir=\"$keys\"" "${extra[@]}" 2>&1 |
      tail -3
    [ -f "$keys/checkpoint.pt" ] || { echo "αn $ratio: no keyframe checkpoint"; return 1; }
    start=(--set "model.resume_weights=\"$keys/checkpoint.pt\"")
    whole=$((seconds - keyframe_seconds))
  fi
  timeout --signal=TERM "$whole" "$py" -m vcscodec.cli train --config "$config" --quiet "${start[@]}" \
    --set "run.dir=\"$run\"" --set "run.export=\"$out/weights\"" "${extra[@]}" 2>&1 | tail -5
  [ -f "$run/checkpoint.pt" ] || { echo "αn $ratio: no checkpoint"; return 1; }
  local step
  step=$("$py" -c "import sys, torch; print(torch.load(sys.argv[1], weights_only=False)['step'])" "$run/checkpoint.pt")
  echo "αn $ratio: stopped at step $step; exporting"
  "$py" -m vcscodec.cli train --config "$config" --quiet --resume --set "run.dir=\"$run\"" \
    --set "run.export=\"$out/weights\"" --set "optim.steps=$step" "${start[@]}" "${extra[@]}" 2>&1 | tail -3
  "$py" - "$run" <<'PY'
import sys, torch
state = torch.load(f"{sys.argv[1]}/checkpoint.pt", map_location="cpu", weights_only=False)
torch.save(state["model"], f"{sys.argv[1]}/master.pt")  # fp32 weights alone: what the next run resumes from
PY
  rm -f "$run/checkpoint.pt"  # over the device tool's 16 MiB per file; master.pt and the log are what matter
  if [ "$keyframe_seconds" -gt 0 ]; then  # at most 8 files come back: the keyframe phase's log goes first in the run's
    { sed 's/^{/{"phase": "keyframes", /' "$out/keys-n$ratio/log.jsonl"; cat "$run/log.jsonl"; } >"$run/log.both"
    mv "$run/log.both" "$run/log.jsonl"
    rm -rf "$out/keys-n$ratio"
  fi
  { grep val_psnr "$run/log.jsonl"; tail -1 "$run/log.jsonl"; } | sed "s/^/αn $ratio: /"
}

nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no GPU visible"
pids=()
for ratio in $ratios; do train_ratio "$ratio" & pids+=($!); done
# What the GPU does once both runs are under way (for docs/training.md); not waited for.
(sleep $((seconds / 2)); nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null) &
wait "${pids[@]}"
ls -la "$out/weights" 2>/dev/null
