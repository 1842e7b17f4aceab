#!/usr/bin/env bash
# `kiln train --deterministic` twice with one seed: identical metrics.jsonl (wall-clock fields
# aside), and provenance.json says so (exit 77 = skipped).
set -u
kiln=$1
if [ -z "${KILN_DATA:-}" ] || [ ! -d "$KILN_DATA/cifar10" ]; then echo "SKIPPED: no CIFAR-10 under KILN_DATA"; exit 77; fi
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
for r in a b; do
  "$kiln" train --preset cifar10-myrtle-94 --device cpu --deterministic --quiet --seed 7 --out "$d/$r" \
    --set 'model.widths=[8, 8, 8, 8]' --set data.train_subset=512 --set data.test_subset=200 \
    --set data.batch_size=128 --set model.ghost_bn_splits=4 --set schedule.epochs=2 || exit 1
done
strip() { python3 "$(dirname "$0")/strip_times.py" "$1"; }
[ "$(strip "$d/a/metrics.jsonl")" = "$(strip "$d/b/metrics.jsonl")" ] || { echo "FAIL: runs differ"; diff <(strip "$d/a/metrics.jsonl") <(strip "$d/b/metrics.jsonl"); exit 1; }
grep -q '"deterministic": true' "$d/a/provenance.json" || { echo "FAIL: provenance lacks deterministic: true"; exit 1; }
echo "PASS: two deterministic runs, identical metrics"; cat "$d/a/metrics.jsonl"
