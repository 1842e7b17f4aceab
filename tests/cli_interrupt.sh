#!/usr/bin/env bash
# Ctrl-C during `kiln train` writes a checkpoint and exits 130; --resume finishes the run,
# and the finished run's numbers equal an uninterrupted run's (times aside).
# Usage: cli_interrupt.sh KILN_BINARY   (needs $KILN_DATA/cifar10; exit 77 = skipped)
set -u
kiln=$1
if [ -z "${KILN_DATA:-}" ] || [ ! -d "$KILN_DATA/cifar10" ]; then
  echo "SKIPPED: CIFAR-10 not found (set KILN_DATA to a directory holding cifar10/)"; exit 77
fi
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
args=(--preset cifar10-resnet9-baseline --device cpu --threads 1 --quiet
      --set 'model.widths=[8, 16, 16, 32]' --set data.train_subset=4096 --set data.test_subset=500
      --set data.batch_size=128 --set schedule.epochs=3 --set 'schedule.knots=[[0, 0], [1, 1], [3, 0]]')
"$kiln" train "${args[@]}" --out "$d/full" || { echo "FAIL: uninterrupted run"; exit 1; }
"$kiln" train "${args[@]}" --out "$d/cut" & pid=$!
# Interrupt once the first epoch is on disk, i.e. somewhere in epoch 2 or 3.
for _ in $(seq 1 600); do [ -s "$d/cut/metrics.jsonl" ] && break; sleep 0.1; done
kill -INT $pid; wait $pid; rc=$?
[ $rc = 130 ] || { echo "FAIL: interrupted run exited $rc, expected 130"; exit 1; }
[ -f "$d/cut/checkpoint.pt" ] || { echo "FAIL: no checkpoint after Ctrl-C"; exit 1; }
"$kiln" train --resume "$d/cut" --device cpu --threads 1 --quiet || { echo "FAIL: resume"; exit 1; }
strip() { python3 "$(dirname "$0")/strip_times.py" "$1"; }
if [ "$(strip "$d/full/metrics.jsonl")" != "$(strip "$d/cut/metrics.jsonl")" ]; then
  echo "FAIL: resumed metrics differ"; diff <(strip "$d/full/metrics.jsonl") <(strip "$d/cut/metrics.jsonl"); exit 1
fi
cmp -s "$d/full/steps.csv" "$d/cut/steps.csv" || { echo "FAIL: resumed steps.csv differs"; diff "$d/full/steps.csv" "$d/cut/steps.csv" | head; exit 1; }
[ -s "$d/cut/report.html" ] || { echo "FAIL: no report.html after the resumed run"; exit 1; }
"$kiln" eval --checkpoint "$d/cut/checkpoint.pt" --device cpu | grep -q "test accuracy" || { echo "FAIL: eval"; exit 1; }
echo "PASS: Ctrl-C wrote a checkpoint (exit 130); the resumed run matches the uninterrupted one"
