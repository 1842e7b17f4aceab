#!/usr/bin/env bash
# `kiln show`: every picture from a short run (exit 77 = skipped). With KILN_SHOW_OUT set, the
# PNGs are kept there (docs/images/ holds the README's copies).
set -u
kiln=$1
if [ -z "${KILN_DATA:-}" ] || [ ! -d "$KILN_DATA/cifar10" ]; then echo "SKIPPED: no CIFAR-10 under KILN_DATA"; exit 77; fi
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
out=${KILN_SHOW_OUT:-$d/show}
"$kiln" train --preset cifar10-resnet9-baseline --device cpu --quiet --out "$d/run" --set 'model.widths=[8, 16, 16, 32]' \
  --set data.train_subset=1024 --set data.test_subset=300 --set data.batch_size=128 --set schedule.epochs=2 2>/dev/null || exit 1
fail=0
run() { "$kiln" show "$@" --data "$KILN_DATA" --out "$out" >/dev/null 2>"$d/err" || { echo "FAIL: kiln show $*"; cat "$d/err"; fail=1; }; }
run aug --preset cifar10-resnet9-baseline -n 32
run batch --preset cifar10-resnet9-baseline -n 16 --epoch 1
run whitening --preset cifar10-myrtle-94 --set data.train_subset=2000
run predictions --checkpoint "$d/run/checkpoint.pt" -n 32
run confusion --checkpoint "$d/run/checkpoint.pt"
run filters --checkpoint "$d/run/checkpoint.pt"
for f in "$d/run/augmented_batch" "$d/run/predictions" "$d/run/confusion"; do  # every run writes these
  [ "$(head -c 8 "$f.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || { echo "FAIL: run directory lacks $f.png"; fail=1; }
done
for f in aug batch whitening predictions confusion filters; do
  [ "$(head -c 8 "$out/$f.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || { echo "FAIL: $f.png is not a PNG"; fail=1; }
done
# The random-resized crop (issue #26) drawn at the network's input size: 48 x 48 from 32 x 32
# images, so the grid is wider than the plain one; `show batch` shows each original at that size too.
png_width() { od -An -tu1 -j16 -N4 "$1" | awk '{print $1*16777216 + $2*65536 + $3*256 + $4}'; }
for what in aug batch; do
  "$kiln" show "$what" --preset cifar10-resnet9-baseline -n 16 --data "$KILN_DATA" --out "$d/rrc" \
    --set aug.random_resized_crop=true --set 'data.input_size=[48, 48]' --set data.train_subset=500 >/dev/null 2>"$d/err" \
    || { echo "FAIL: kiln show $what with aug.random_resized_crop"; cat "$d/err"; fail=1; }
done
w_plain=$(png_width "$out/aug.png") w_rrc=$(png_width "$d/rrc/aug.png")
[ -n "$w_rrc" ] && [ "$w_rrc" -gt "$w_plain" ] || { echo "FAIL: the random-resized-crop grid is $w_rrc px wide, the 32x32 one $w_plain"; fail=1; }
total=$(python3 -c "import sys; print(sum(int(x) for l in open(sys.argv[1]) for x in l.split(',')))" "$out/confusion.csv")
[ "$total" = 300 ] || { echo "FAIL: the confusion matrix counts $total test images, not 300"; fail=1; }
# `kiln show confusion` shows the run's own predictions: evaluated as the run evaluated (precision,
# layout, fused operators). A narrow airbench in bf16, where an fp32 evaluation reads others:
# before, kiln show evaluated in fp32 NCHW and counted 68 of 300 right where the run had 65
# (2026-12-03, an Intel Xeon).
"$kiln" train --preset cifar10-94 --device cpu --quiet --out "$d/bf16" --set 'model.widths=[16, 32, 32]' \
  --set data.train_subset=1024 --set data.test_subset=300 --set data.batch_size=128 --set schedule.epochs=2 \
  --set train.precision=bf16 2>/dev/null || exit 1
"$kiln" show confusion --checkpoint "$d/bf16/checkpoint.pt" --data "$KILN_DATA" --out "$d/bf16-show" >/dev/null 2>"$d/err" ||
  { echo "FAIL: kiln show confusion of the bf16 run"; cat "$d/err"; fail=1; }
python3 - "$d/bf16-show/confusion.csv" "$d/bf16/final.json" <<'PY' || fail=1
import json, sys
m = [[int(x) for x in l.split(",")] for l in open(sys.argv[1])]
right, run = sum(m[i][i] for i in range(len(m))), json.load(open(sys.argv[2]))["final_test_acc"]
if right != round(run * 300):
    print(f"FAIL: kiln show confusion counts {right} of 300 right; the run's final evaluation {round(run * 300)}"); sys.exit(1)
PY
"$kiln" show whitening --preset cifar10-resnet9-baseline --data "$KILN_DATA" --out "$d" >/dev/null 2>&1 \
  && { echo "FAIL: whitening pictures without a whitening layer should be refused"; fail=1; }
[ $fail = 0 ] && echo "PASS: six pictures, the random-resized crop's two, and the run directory's three"
exit $fail
