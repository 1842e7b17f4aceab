#!/usr/bin/env bash
# `kiln export` end to end: a briefly trained fashion-mnist-tiny (EMA off) and a ResNet-9 with
# an EMA, exported as fp32 and int8 safetensors and read back by the `safetensors` package.
# Exit 77 = skipped.
set -u
kiln=$1; dump=$2; python=$3
data=/usr/share/datasets
[ -d "$data/fashion-mnist" ] || { echo "SKIPPED: $data/fashion-mnist missing"; exit 77; }
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
for preset in fashion-mnist-tiny fashion-mnist-demo; do
  "$kiln" train --preset $preset --device cpu --data "$data" --out "$d/$preset" --quiet --set data.train_subset=1024 \
    --set data.test_subset=256 --set schedule.epochs=1 --set ema.enabled=true > /dev/null 2>&1 || { echo "FAIL: training $preset"; exit 1; }
  "$kiln" export --checkpoint "$d/$preset/checkpoint.pt" --data "$data" || { echo "FAIL: export $preset"; exit 1; }
  "$kiln" export --checkpoint "$d/$preset/checkpoint.pt" --data "$data" --int8 || { echo "FAIL: export --int8 $preset"; exit 1; }
  "$dump" "$d/$preset/checkpoint.pt" "$d/$preset/ref.pt" || { echo "FAIL: tensors_dump"; exit 1; }
  "$python" "$(dirname "$0")/safetensors_read.py" "$d/$preset/ref.pt" "$d/$preset/model.safetensors" \
    "$d/$preset/model-int8.safetensors" || { echo "FAIL: $preset"; exit 1; }
done
echo "PASS: kiln export read back by safetensors"
