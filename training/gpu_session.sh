#!/usr/bin/env bash
# Train at the native 200x150 on a lent GPU machine in one device call, and bring the model back.
#
# The device tool sends the working tree (at most 64 MiB) and nothing beside it, and returns at
# most 8 files of 16 MiB. The shipped model alone is 61 MiB, so for the call the data travels
# in shared/ and models/ stays behind; the exported model comes back in four parts.
#
#   bash training/gpu_session.sh prepare [HAM10000_DIR]   # here: stage data, leave models/ out
#   device run: bash training/gpu_session.sh run           # there (timeout_s 600)
#   bash training/gpu_session.sh collect FILES_AT RUN_DIR  # here: join, verify, put models/ back
#
# Knobs for `run` (environment): TRAIN_SECONDS (training time, default 300; the trainer fits
# its epochs to it), MAX_EPOCHS (default 60), BATCH (32), LR (2e-3), VERSION (1.4.0), WIDTH x
# HEIGHT (200 x 150), DATA (shared/data/ham10000), WORK (scratch, /tmp/skinscan-gpu), DEADLINE
# (seconds the whole command may take, 570), TRAIN_FLAGS (more `skinscan train` flags; default
# "--colour-constancy --binary-weight 1 --balance-power 0", the recipe of 1.3.0, run bp128n in
# docs/model/experiments.md, which the shipped 1.4.0 continues at 129x97; TRAIN_FLAGS= for none).
# WIDTH=257 HEIGHT=193 (sides of 32k + 1) trains a network whose heatmaps do not lean: every
# stride-2 layer then sees an odd input and pads both borders alike (runs s129, s129f).
# A rehearsal here on the CPU: DEVICE=cpu LIMIT=300 (first 300 images) BENCH_SIZES=32x24
# BENCH_STEPS=1 OUT=/tmp/out, then `unpack OUT RUN_DIR` (collect without touching git).
set -euo pipefail
cd "$(git rev-parse --show-toplevel 2>/dev/null || pwd)"

PART_BYTES=16500000  # under the 16 MiB a returned file may have
LOG_BYTES=1000000    # the end of the training log that comes back

prepare() {
  local src=${1:-../shared/data/ham10000}
  mkdir -p shared/data
  rm -rf shared/data/ham10000
  cp -r "$src" shared/data/ham10000
  # Untracked and ignored, models/ does not travel; `collect` (or `restore`) tracks it again.
  grep -qx '/models/' .git/info/exclude 2>/dev/null || echo '/models/' >>.git/info/exclude
  git rm -r -q --cached --ignore-unmatch models
  local bytes
  bytes=$({ git ls-files -z -co --exclude-standard; find shared -type f -print0; } |
    du -cb --files0-from=- | tail -1 | cut -f1)
  echo "working tree that travels: $((bytes / 1048576)) MiB (limit 64)"
  echo "models/ is untracked (do not commit) until: bash training/gpu_session.sh collect ... (or restore)"
}

restore() {
  sed -i '\#^/models/$#d' .git/info/exclude
  git reset -q -- models
  git status --short models
}

run() {
  local out=${OUT:?run on the device machine, where OUT is set}
  local work=${WORK:-/tmp/skinscan-gpu} width=${WIDTH:-200} height=${HEIGHT:-150}
  local run_dir=$work/run
  local seconds=${TRAIN_SECONDS:-300} version=${VERSION:-1.4.0} device=${DEVICE:-cuda}
  local limit=${LIMIT:-0} data=${DATA:-shared/data/ham10000}
  # The device tool stops a command at 600 s and then returns only what is already in $OUT:
  # every step gets a timeout within this deadline, and the model is packed before the extras.
  local deadline=$((SECONDS + ${DEADLINE:-570}))
  rm -rf "$run_dir" "$work/train.log"
  mkdir -p "$work"
  trap "salvage '$work' '$out'" EXIT
  export PYTHONPATH=$PWD:$PWD/inference_container:$PWD/training PYTHONUNBUFFERED=1
  export TQDM_MININTERVAL=20  # a progress line every 20 s, not a screenful per second
  if [[ $device != cpu ]]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  fi
  python3 -c 'import torch, torchvision; print("torch", torch.__version__, torchvision.__version__)'

  # GPU figures for docs/performance.md: bare training steps, fp32 and bf16, two sizes.
  timeout 90 python3 bench/train_throughput.py --device "$device" \
    --sizes "${BENCH_SIZES:-128x96,200x150}" --steps "${BENCH_STEPS:-30}" 2>&1 |
    tee "$out/bench.txt" || echo "throughput benchmark failed (status $?)"

  # The trainer fits its epochs to the budget after the first two; the timeout is a guard that
  # leaves two minutes for calibration, export and packing. A run cut short still leaves
  # best.pt, which is calibrated and returned all the same.
  local guard=$((deadline - SECONDS - 120))
  ((guard < seconds + 120)) || guard=$((seconds + 120))
  timeout "$guard" python3 -m skinscan train --data "$data" --out "$run_dir" \
    --cache-dir "$work/cache" --device "$device" --width "$width" --height "$height" \
    --epochs "${MAX_EPOCHS:-60}" --batch-size "${BATCH:-32}" --lr "${LR:-2e-3}" \
    --time-budget "$seconds" --limit "$limit" --no-export ${TRAIN_FLAGS---colour-constancy --binary-weight 1 --balance-power 0} 2>&1 |
    tee "$work/train.log" | grep --line-buffered -E '^\{|^time budget' ||
    { echo "training stopped early:"; tail -c 3000 "$work/train.log"; }
  local finalize=$((deadline - SECONDS - 30))
  ((finalize > 0)) || finalize=1  # `timeout 0` would mean no limit at all
  timeout "$finalize" python3 - "$run_dir" "$version" <<'EOF'
import sys
from pathlib import Path

from skinscan_training.export import finalize_run

finalize_run(Path(sys.argv[1]), version=sys.argv[2])
EOF
  (cd "$run_dir/export" && sha256sum skinscan-resnet50.safetensors >SHA256SUMS)
  split -b "$PART_BYTES" -d "$run_dir/export/skinscan-resnet50.safetensors" "$out/weights.part-"
  tail -c "$LOG_BYTES" "$work/train.log" >"$run_dir/train.log"
  tar -czf "$out/run.tar.gz" -C "$run_dir" config.json split.json log.jsonl calibration.json \
    train.log training_curves.png export/skinscan-resnet50.json export/SHA256SUMS

  # With the model safe in $OUT: inference on the GPU with it, one photo and a batch of 16.
  local left
  for batch in 1 16; do
    left=$((deadline - SECONDS - 5))
    ((left > 20)) || break
    ((left < 90)) || left=90
    SKINSCAN_SHARED_DATA=$(dirname "$data") timeout "$left" python3 bench/explain_cost.py \
      --device "$device" --model "$run_dir/export" --batch "$batch" 2>&1 |
      tee -a "$out/bench.txt" || echo "inference benchmark failed (status $?)"
  done
  ls -l "$out"
}

salvage() {
  # On any exit: if the model never reached $OUT, return the logs that explain why.
  local work=$1 out=$2
  [[ -f $out/run.tar.gz ]] && return
  echo "no model packed; returning the logs in $out/partial.tar.gz"
  [[ -f $work/train.log ]] && tail -c "$LOG_BYTES" "$work/train.log" >"$work/train.tail.log"
  (cd "$work" && tar -czf "$out/partial.tar.gz" --ignore-failed-read train.tail.log \
    run/config.json run/log.jsonl run/split.json 2>/dev/null) || true
}

unpack() {
  local files=${1:?folder of the returned files} run_dir=${2:?run folder, e.g. runs/gpu200}
  mkdir -p "$run_dir"
  tar -xzf "$files/run.tar.gz" -C "$run_dir"
  [[ ! -f $files/bench.txt ]] || cp "$files/bench.txt" "$run_dir/bench.txt"
  cat "$files"/weights.part-* >"$run_dir/export/skinscan-resnet50.safetensors"
  (cd "$run_dir/export" && sha256sum -c SHA256SUMS)
  echo "exported model: $run_dir/export/skinscan-resnet50.{safetensors,json}"
}

collect() {
  unpack "$@"
  restore
}

case ${1:-} in
  prepare | run | unpack | collect | restore) "$@" ;;
  *) sed -n '2,/^[^#]/{/^#/p}' "$0" >&2; exit 2 ;;  # the header comment, however long
esac
