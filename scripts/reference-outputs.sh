#!/usr/bin/env bash
# Behaviour lock for refactoring (issue #22): runs a fixed set of short trainings and tables
# and writes what they produced, wall-clock fields removed, into one directory; a second
# invocation with `compare` reruns them and diffs against that directory byte for byte.
#
#   scripts/reference-outputs.sh record  DIR  [KILN]   # before a change (e.g. on the old commit)
#   scripts/reference-outputs.sh compare DIR  [KILN]   # after it: exit 0 only when bitwise equal
#   scripts/reference-outputs.sh run     DIR  [KILN]   # just write the outputs (used by the CI check)
#
# Bitwise equality holds on ONE machine: fp32, --threads 1, fixed seeds; a different CPU
# model picks other kernels (tests/reference_check.py compares against the committed values
# to a tolerance instead). Needs CIFAR-10 and MNIST under $KILN_DATA; each run takes seconds.
# KILN defaults to build/kiln. KILN_REFERENCE_ONLY=name1,name2 runs a subset.
set -euo pipefail
mode=${1:?record|compare|run}; dir=${2:?output directory}
here=$(cd "$(dirname "$0")/.." && pwd)
kiln=${3:-$here/build/kiln}
[ -x "$kiln" ] || { echo "no kiln binary at $kiln (make build)" >&2; exit 2; }
: "${KILN_DATA:?set KILN_DATA to a directory holding cifar10/ and mnist/}"
for d in cifar10 mnist; do [ -d "$KILN_DATA/$d" ] || { echo "no $KILN_DATA/$d" >&2; exit 2; }; done

case $mode in
  record|run) out=$dir ;;
  compare) out=$(mktemp -d) ;;
  *) echo "mode must be record, compare or run" >&2; exit 2 ;;
esac
[ "$mode" = record ] && rm -rf "$dir"
mkdir -p "$out"
work=$(mktemp -d); trap 'rm -rf "$work"; [ "$mode" = compare ] && rm -rf "$out"; true' EXIT

# Shrunk sizes shared by the CIFAR-10 runs: 512 training and 200 test images, 2 epochs.
# fp32 throughout: train.precision = auto picks bf16 on CPUs with native bf16 (AMX, AVX512-BF16),
# and the committed numbers must not depend on the machine.
fp32=(--set train.precision=fp32)
small=(--device cpu --threads 1 --quiet --seed 3 --data "$KILN_DATA" --set data.train_subset=512
       --set data.test_subset=200 --set schedule.epochs=2 "${fp32[@]}")
wanted() { [ -z "${KILN_REFERENCE_ONLY:-}" ] || [[ ",$KILN_REFERENCE_ONLY," == *",$1,"* ]]; }

# What a run directory contributes: steps.csv as written; metrics.jsonl and final.json
# without their wall-clock and memory fields.
keep_run() {  # keep_run NAME RUN_DIR
  mkdir -p "$out/$1"
  cp "$2/steps.csv" "$out/$1/steps.csv"
  python3 - "$2" "$out/$1" "$work" <<'PY'
import json, sys, os
src, dst, work = sys.argv[1:]
timing = {"epoch_seconds", "eval_seconds", "images_per_s", "train_seconds", "live_allocations", "live_bytes"}
with open(os.path.join(dst, "metrics.jsonl"), "w") as f:
    for line in open(os.path.join(src, "metrics.jsonl")):
        m = {k: v for k, v in json.loads(line).items() if k not in timing}
        f.write(json.dumps(m, sort_keys=True) + "\n")
fin = json.load(open(os.path.join(src, "final.json")))
fin.pop("train_seconds", None)
fin = json.loads(json.dumps(fin).replace(work, "<work>"))  # paths inside the scratch directory
json.dump(fin, open(os.path.join(dst, "final.json"), "w"), sort_keys=True, indent=1)
PY
}
# A markdown table without the columns that hold wall-clock time.
keep_table() {  # keep_table NAME FILE
  mkdir -p "$out/$1"
  python3 - "$2" "$out/$1/$(basename "$2")" <<'PY'
import re, sys
src, dst = sys.argv[1:]
drop = None
with open(dst, "w") as f:
    for line in open(src):
        if line.startswith("|"):
            cells = line.rstrip("\n").split("|")
            if drop is None:
                drop = {i for i, c in enumerate(cells) if re.search(r"\bs/run\b|seconds|\btime\b|wall", c)}
            line = "|".join(c for i, c in enumerate(cells) if i not in drop) + "\n"
        elif re.search(r"wall|took|time", line, re.I):
            line = re.sub(r"\d+(\.\d+)? ?(s|min)\b", "<time>", line)  # a prose line's wall time
        f.write(line)
PY
}
train() {  # train NAME [args...]: one kiln train run kept as NAME
  local name=$1; shift
  wanted "$name" || return 0
  echo "reference: $name" >&2
  "$kiln" train "$@" --out "$work/$name" > "$work/$name.log" 2>&1 || { cat "$work/$name.log" >&2; exit 1; }
  keep_run "$name" "$work/$name"
}

w8=(--set 'model.widths=[16, 32, 32]')  # airbench networks, narrowed
train cifar10-94 --preset cifar10-94 "${small[@]}" "${w8[@]}" --set data.batch_size=128
train cifar10-94-muon-static --preset cifar10-94-muon "${small[@]}" "${w8[@]}" --set data.batch_size=128 \
  --set train.static_step=true
train cifar10-96-faster --preset cifar10-96-faster "${small[@]}" --set 'model.widths=[16, 32, 32]' \
  --set 'filter.widths=[8, 16, 16]' --set data.batch_size=128 --set filter.keep=64
train cifar10-myrtle-94 --preset cifar10-myrtle-94 "${small[@]}" --set 'model.widths=[8, 16, 16, 32]' \
  --set data.batch_size=128 --set model.ghost_bn_splits=4
train cifar10-tiny-qat-plateau --preset cifar10-tiny "${small[@]}" --set 'model.widths=[8, 16, 16, 32, 32]' \
  --set schedule.epochs=3 --set train.qat=true --set schedule.plateau_factor=0.5 --set schedule.plateau_patience=0 \
  --set train.eval_every=1

# A resumed run: killed inside its second checkpoint write (the first epoch's is whole), resumed.
if wanted resumed; then
  echo "reference: resumed" >&2
  args=(--preset cifar10-94 "${small[@]}" "${w8[@]}" --set data.batch_size=128 --set schedule.epochs=3 --out "$work/resumed")
  # writes: config, provenance, metrics, steps, the first checkpoint, ... (the 8th is epoch 2's checkpoint)
  { KILN_FAULT_KILL_AT_WRITE=8 "$kiln" train "${args[@]}" > "$work/resumed.log" 2>&1; rc=$?; } 2>/dev/null || true
  [ "$rc" = 137 ] || { echo "the fault was not injected (exit $rc)" >&2; exit 1; }
  "$kiln" train --resume "$work/resumed" --device cpu --threads 1 --quiet --data "$KILN_DATA" >> "$work/resumed.log" 2>&1 \
    || { cat "$work/resumed.log" >&2; exit 1; }
  keep_run resumed "$work/resumed"
fi

# Two ranks on loopback (Gloo), each one thread.
if wanted dist-2-ranks; then
  echo "reference: dist-2-ranks" >&2
  "$kiln" launch --nproc 2 -- "$kiln" train --preset cifar10-tiny "${small[@]}" --set 'model.widths=[8, 16, 16, 32, 32]' \
    --set data.batch_size=64 --set dist.sync_bn=true --out "$work/dist" > "$work/dist.log" 2>&1 || { cat "$work/dist.log" >&2; exit 1; }
  keep_run dist-2-ranks "$work/dist"
fi

# Self-training: a teacher on 200 labels, pseudo-labels on the other 800, one noisy student.
if wanted selftrain; then
  echo "reference: selftrain" >&2
  "$kiln" selftrain --preset cifar10-selftrain --device cpu --threads 1 --quiet --data "$KILN_DATA" --labels 200 --aug S1 \
    --runs 1 --rounds 1 --out "$work/st" --set data.train_subset=1000 --set data.test_subset=200 \
    --set 'model.widths=[8, 16, 16, 32]' --set data.batch_size=50 --set model.ghost_bn_splits=2 --set schedule.epochs=2 \
    --set model.whiten_samples=500 "${fp32[@]}" > "$work/st.log" 2>&1 || { cat "$work/st.log" >&2; exit 1; }
  keep_run selftrain-teacher "$work/st/S1/baseline/run-00"
  keep_run selftrain-student "$work/st/S1/round-1/run-00"
  keep_table selftrain "$work/st/selftrain.md"
fi

# The Myrtle ablation's 18 rows, one run each, tiny.
if wanted ablation; then
  echo "reference: ablation" >&2
  "$kiln" ablate --preset myrtle-ablation --device cpu --threads 1 --quiet --data "$KILN_DATA" --runs 1 --out "$work/abl" \
    --set 'model.widths=[8, 8, 16, 16]' --set data.train_subset=256 --set data.test_subset=100 --set schedule.epochs=1 \
    --set data.batch_size=64 --set train.seed=3 "${fp32[@]}" > "$work/abl.log" 2>&1 || { cat "$work/abl.log" >&2; exit 1; }
  keep_table ablation "$work/abl/ablation.md"
fi

# LeCun 1989 as Karpathy's reproduction ran it (23 passes, one seed).
if wanted lecun1989; then
  echo "reference: lecun1989" >&2
  "$kiln" lecun1989 --data "$KILN_DATA" --out "$work/lecun" > "$work/lecun.log" 2>&1 || { cat "$work/lecun.log" >&2; exit 1; }
  keep_table lecun1989 "$work/lecun/results.md"
fi

case $mode in
  record) echo "recorded $(find "$dir" -type f | wc -l) files in $dir ($(git -C "$here" describe --always --dirty 2>/dev/null), $(lscpu | sed -n 's/^Model name: *//p' | head -1))" ;;
  run) echo "wrote $(find "$dir" -type f | wc -l) files in $dir" ;;
  compare)
    if diff -r "$dir" "$out" > "$work/diff.txt"; then
      echo "bitwise equal: $(find "$out" -type f | wc -l) files, $(cat "$out"/*/* | wc -c) bytes, against $dir"
    else
      echo "DIFFERENT from $dir:"; head -40 "$work/diff.txt"; exit 1
    fi ;;
esac
