#!/usr/bin/env bash
# A short run's TensorBoard events, read back by TensorBoard's own reader (exit 77 = skipped).
set -u
kiln=$1; py=$2
if [ -z "${KILN_DATA:-}" ] || [ ! -d "$KILN_DATA/cifar10" ]; then echo "SKIPPED: no CIFAR-10 under KILN_DATA"; exit 77; fi
"$py" -c 'import tensorboard' 2>/dev/null || { echo "SKIPPED: tensorboard not installed in $py"; exit 77; }
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
"$kiln" train --preset cifar10-resnet9-baseline --device cpu --quiet --out "$d/run" --set 'model.widths=[8, 8, 8, 8]' \
  --set data.train_subset=512 --set data.test_subset=200 --set data.batch_size=128 --set schedule.epochs=3 || exit 1
"$py" "$(dirname "$0")/tensorboard_read.py" "$d/run" || exit 1
# A self-training student of that run (half the subset labeled, the rest pseudo-labeled): its
# curves include student/labeled_loss and student/pseudo_loss, equal to metrics.jsonl's.
"$kiln" train --preset cifar10-resnet9-baseline --device cpu --quiet --out "$d/student" --set 'model.widths=[8, 8, 8, 8]' \
  --set data.train_subset=512 --set data.test_subset=200 --set data.batch_size=128 --set schedule.epochs=2 \
  --set data.labeled=256 --set selftrain.teacher="$d/run/checkpoint.pt" || exit 1
"$py" "$(dirname "$0")/tensorboard_read.py" "$d/student"
