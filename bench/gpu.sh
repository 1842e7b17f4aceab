#!/usr/bin/env bash
# One call on the GPU machine: build kiln (or reuse the build), then time the airbench-class
# presets in priority order within a time budget, writing bench JSON (and logs, and a kernel
# profile of one run when Nsight Systems is there) into a results folder.
#
#   bash bench/gpu.sh RESULTS_DIR BUDGET_SECONDS [DATA_ROOT]
#
# RESULTS_DIR     where the JSON, logs and profile go (on the device: $OUT/...)
# BUDGET_SECONDS  wall-clock budget for the whole call, build included; a preset starts only
#                 when its estimated time fits in what is left, and each one is cut off at the
#                 budget (kiln bench rewrites its JSON after every run, so a cut keeps the runs
#                 done, marked "complete": false)
# DATA_ROOT       holds cifar10/ (default $HOME/kiln-data, where .device/on-device.sh puts it)
#
# Order (docs/perf.md): cifar10-94 n=25, then its PyTorch-eager peer (bench/airbench_peer.py,
# the same recipe on the same GPU: the time kiln's goal is measured against) n=10,
# cifar10-94-muon n=25 and its peer n=10, cifar10-95 n=10 and its peer n=10, cifar10-96 n=10
# and its peer n=10, cifar10-96-faster n=10. Override with
# KILN_GPU_PRESETS="name:runs:seconds_per_run ..."; add keys to every run with
# KILN_GPU_SET="key=value ..." (e.g. train.cuda_graph=true).
# NOT YET RUN on a GPU: written and checked (bash -n, and a CPU dry run with KILN_GPU_DRY=1)
# on a CPU-only machine.
set -uo pipefail
results=${1:?usage: bench/gpu.sh RESULTS_DIR BUDGET_SECONDS [DATA_ROOT]}
budget=${2:?usage: bench/gpu.sh RESULTS_DIR BUDGET_SECONDS [DATA_ROOT]}
data=${3:-$HOME/kiln-data}
here=$(cd "$(dirname "$0")/.." && pwd)
build=${KILN_BUILD:-$HOME/kiln-build}
device=${KILN_GPU_DEVICE:-cuda}
start=$(date +%s)
mkdir -p "$results"
left() { echo $(( budget - ($(date +%s) - start) )); }
log() { echo "[gpu.sh $(( $(date +%s) - start ))s] $*" | tee -a "$results/gpu.log"; }

# 1. Build, or reuse the build. The GPU machine's copy of the tree has no .git: KILN_COMMIT (the
#    output of `git describe --always --dirty --abbrev=12` on the machine that sent it) is the
#    commit every binary and result records.
commit_arg=${KILN_COMMIT:+-DKILN_GIT_COMMIT_OVERRIDE=$KILN_COMMIT}
export KILN_COMMIT
if [ ! -x "$build/kiln" ]; then
  if [ -f "$here/.device/on-device.sh" ]; then
    log "building with .device/on-device.sh"
    (cd "$here" && KILN_CMAKE_ARGS="${KILN_CMAKE_ARGS:--DKILN_WITH_FETCH=OFF -DKILN_BUILD_TESTS=OFF} $commit_arg" \
      bash .device/on-device.sh build) >> "$results/build.log" 2>&1 || { log "build failed (build.log)"; exit 1; }
  else
    log "building in $build"
    torch=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
    cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$torch" \
      -DKILN_WITH_FETCH=OFF -DKILN_BUILD_TESTS=OFF $commit_arg >> "$results/build.log" 2>&1 &&
      cmake --build "$build" -j"$(nproc)" >> "$results/build.log" 2>&1 || { log "build failed (build.log)"; exit 1; }
  fi
fi
kiln=$build/kiln
log "kiln: $("$kiln" --version); $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')"

# 1b. The CUDA checks (#11's first row), a few seconds each: cifar10-94 for 2 epochs on the
#     ordinary step with train.sync_check (any host-device synchronisation inside a step is an
#     error), on the eager static step, and on the CUDA graph with train.sync_check; the static
#     step and its graph should agree (same ops; cuDNN's autotuned algorithms may differ between
#     runs, so the comparison prints the differences rather than demanding equality).
if [ "${KILN_GPU_CHECKS:-1}" = 1 ]; then
  check_dry=()
  [ "${KILN_GPU_DRY:-0}" = 1 ] && check_dry=(--set 'model.widths=[8, 16, 16]' --set data.train_subset=1000 --set data.test_subset=200 --set data.batch_size=250)
  for variant in "eager:train.sync_check=true" "static:train.static_step=true" "graph:train.cuda_graph=true train.sync_check=true"; do
    vname=${variant%%:*}; sets=()
    for kv in ${variant#*:}; do sets+=(--set "$kv"); done
    timeout 120 "$kiln" train --preset cifar10-94 --device "$device" --data "$data" --out "$results/check-$vname" --quiet \
      --set schedule.epochs=2 --set train.eval_every=1 "${sets[@]}" "${check_dry[@]}" > "$results/check-$vname.log" 2>&1
    rc=$?
    if [ $rc = 0 ]; then log "check $vname: ok ($(tail -1 "$results/check-$vname/metrics.jsonl" | head -c 160))"
    else log "check $vname: FAILED, exit $rc: $(tail -3 "$results/check-$vname.log" | tr '\n' ' ')"; fi
  done
  "${KILN_PYTHON:-python3}" - "$results" <<'PY' 2>&1 | tee -a "$results/gpu.log"
import json, os, sys
r = sys.argv[1]
def metrics(v):
    p = os.path.join(r, "check-" + v, "metrics.jsonl")
    return [json.loads(l) for l in open(p)] if os.path.exists(p) else None
s, g = metrics("static"), metrics("graph")
if s and g and len(s) == len(g):
    for a, b in zip(s, g):
        print(f"static vs graph, epoch {a['epoch']}: train loss {a['train_loss']:.5f} / {b['train_loss']:.5f}, "
              f"test acc {a.get('test_acc', float('nan')):.4f} / {b.get('test_acc', float('nan')):.4f}")
else:
    print("static vs graph: not comparable (a run failed)")
PY
fi

# 2. The presets, highest priority first: name:runs:estimated seconds per run (with evaluation
#    and overheads; the first warm-up run counts once more).
presets=${KILN_GPU_PRESETS:-"cifar10-94:25:8 peer-airbench94:10:8 cifar10-94-muon:25:6 peer-airbench94_muon:10:6 cifar10-95:10:25 peer-airbench95:10:25 cifar10-96:10:80 peer-airbench96:10:80 cifar10-96-faster:10:65"}
extra=()
for kv in ${KILN_GPU_SET:-}; do extra+=(--set "$kv"); done  # e.g. KILN_GPU_SET="train.cuda_graph=true"
[ "${KILN_GPU_DRY:-0}" = 1 ] && extra+=(--set 'model.widths=[8, 16, 16]' --set data.train_subset=1000
  --set data.test_subset=200 --set schedule.epochs=1 --set data.batch_size=250)
profiled=0
for item in $presets; do
  IFS=: read -r name runs per <<< "$item"
  need=$(( (runs + 1) * per + 30 ))
  if [ "$(left)" -lt "$need" ]; then
    fit=$(( ($(left) - 30) / per - 1 ))
    if [ "$fit" -lt 3 ]; then log "skip $name: $(left) s left, ~$need s needed"; continue; fi
    log "$name: only $fit runs fit in the $(left) s left (asked $runs)"; runs=$fit
  fi
  log "$name: $runs runs"
  case "$name" in peer-*)  # the recipe in PyTorch eager (bench/airbench_peer.py), on the device's own torch
    recipe=${name#peer-}
    peer_dry=()
    [ "${KILN_GPU_DRY:-0}" = 1 ] && peer_dry=(--widths 8,16,16 --train-subset 1000 --test-subset 200 --epochs 1 --batch 250)
    timeout --signal=INT "$(left)" "${KILN_PYTHON:-python3}" "$here/bench/airbench_peer.py" --recipe "$recipe" --data "$data" \
      --runs "$runs" --warmup 1 --device "$device" --out "$results/$name.json" "${peer_dry[@]}" > "$results/$name.log" 2>&1
    rc=$?
    tail -3 "$results/$name.log" | tee -a "$results/gpu.log"
    [ $rc = 0 ] || log "$name: exit $rc (a cut run keeps the runs done in its JSON, marked \"complete\": false)"
    continue;;
  esac
  dry_filter=()  # the dry run's batch of 250 needs a smaller proxy keep
  [ "${KILN_GPU_DRY:-0}" = 1 ] && [ "$name" = cifar10-96-faster ] && dry_filter=(--set filter.keep=125 --set 'filter.widths=[8, 8, 8]')
  timeout --signal=INT "$(left)" "$kiln" bench --preset "$name" --runs "$runs" --warmup 1 --device "$device" \
    --data "$data" --out "$results/bench-$name.json" "${extra[@]}" "${dry_filter[@]}" > "$results/bench-$name.log" 2>&1
  rc=$?
  tail -6 "$results/bench-$name.log" | tee -a "$results/gpu.log"
  [ $rc = 0 ] || log "$name: exit $rc (a cut run keeps the runs done in its JSON)"
  # 3. A kernel profile of one run of the first preset, when Nsight Systems is installed.
  if [ $profiled = 0 ] && command -v nsys >/dev/null && [ "$(left)" -gt 90 ]; then
    profiled=1
    log "profiling one $name run with nsys"
    timeout "$(left)" nsys profile -o "$results/profile-$name" --force-overwrite true --stats=false \
      "$kiln" bench --preset "$name" --runs 1 --warmup 1 --device "$device" --data "$data" \
      --out "$results/profile-run-$name.json" "${extra[@]}" > /dev/null 2>&1 &&
      nsys stats --report cuda_gpu_kern_sum --format csv "$results/profile-$name.nsys-rep" \
        > "$results/kernels-$name.csv" 2>/dev/null &&
      head -25 "$results/kernels-$name.csv" | tee -a "$results/gpu.log"
    rm -f "$results/profile-$name.nsys-rep" "$results/profile-$name.sqlite"  # large; the CSV is the profile
  elif [ $profiled = 0 ] && [ "$(left)" -gt 60 ]; then
    profiled=1  # no Nsight Systems: LibTorch's own profiler (kiln bench --profile)
    log "profiling one $name run with kiln bench --profile (no nsys here)"
    timeout "$(left)" "$kiln" bench --preset "$name" --runs 1 --warmup 1 --device "$device" --data "$data" \
      --out "$results/profile-run-$name.json" --profile "$results/kernels-$name.csv" "${extra[@]}" "${dry_filter[@]}" \
      > "$results/profile-$name.log" 2>&1 && grep -A17 "profiled run:" "$results/profile-$name.log" | tee -a "$results/gpu.log"
  fi
done
log "done; results in $results"
