#!/usr/bin/env bash
# `kiln quantize` end to end: a small depthwise-separable net (fashion-mnist-tiny) trained
# briefly on Fashion-MNIST (Debian's dataset-fashion-mnist), then its accuracy with int8
# weights against fp32. Exit 77 = skipped.
set -u
kiln=$1
data=/usr/share/datasets
[ -d "$data/fashion-mnist" ] || { echo "SKIPPED: $data/fashion-mnist missing (apt-get install dataset-fashion-mnist)"; exit 77; }
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
"$kiln" train --preset fashion-mnist-tiny --device cpu --data "$data" --out "$d/run" --quiet \
  --set data.train_subset=6000 --set data.test_subset=1000 --set schedule.epochs=4 > /dev/null 2>&1 \
  || { echo "FAIL: training exited $?"; exit 1; }
"$kiln" quantize --checkpoint "$d/run/checkpoint.pt" --device cpu --data "$data" | tee "$d/out.txt" \
  || { echo "FAIL: kiln quantize exited $?"; exit 1; }
grep -q '^| int8 (per-channel, symmetric; 14 tensors) |' "$d/out.txt" || { echo "FAIL: no int8 row for the 14 conv/linear weights"; exit 1; }
python3 - "$d/run/quantize.json" <<'PY' || exit 1
import json, sys
j = json.load(open(sys.argv[1]))
assert j["test_images"] == 1000, j
assert j["fp32_test_acc"] > 0.6, ("the model did not learn", j)
assert abs(j["int8_test_acc"] - j["fp32_test_acc"]) <= 0.02, ("int8 lost more than 2 points", j)
assert j["int8_bytes"] < 0.4 * j["fp32_bytes"], j  # BN parameters and statistics stay fp32
print("quantize.json: ok", j["fp32_test_acc"], "->", j["int8_test_acc"], j["fp32_bytes"], "->", j["int8_bytes"], "bytes")
PY
