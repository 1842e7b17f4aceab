#!/usr/bin/env bash
# `kiln lr-find`: a short sweep writes its CSV and PNG and suggests an LR inside the sweep
# (exit 77 = skipped).
set -u
kiln=$1
if [ -z "${KILN_DATA:-}" ] || [ ! -d "$KILN_DATA/cifar10" ]; then echo "SKIPPED: no CIFAR-10 under KILN_DATA"; exit 77; fi
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
out=$("$kiln" lr-find --preset cifar10-resnet9-baseline --device cpu --steps 60 --min 1e-5 --max 1 --out "$d" \
      --set 'model.widths=[8, 8, 8, 8]' --set data.train_subset=2048 --set data.batch_size=32 2>/dev/null) || { echo "FAIL: exit $?"; exit 1; }
echo "$out"
[ "$(head -c 8 "$d/lr_find.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || { echo "FAIL: no PNG"; exit 1; }
rows=$(($(wc -l < "$d/lr_find.csv") - 1))
[ "$rows" -ge 10 ] || { echo "FAIL: only $rows sweep rows"; exit 1; }
lr=$(echo "$out" | sed -nE 's/^suggested optim.lr = ([0-9.e+-]+).*/\1/p')
python3 -c "import sys; v=float('$lr'); sys.exit(0 if 1e-5 <= v <= 1 else 1)" || { echo "FAIL: suggestion $lr outside the sweep"; exit 1; }
python3 - "$d/lr_find.csv" <<'PY' || { echo "FAIL: LRs not increasing geometrically"; exit 1; }
import csv, math, sys
lr = [float(r["lr"]) for r in csv.DictReader(open(sys.argv[1]))]
ratios = [b / a for a, b in zip(lr, lr[1:])]
sys.exit(0 if all(math.isclose(r, ratios[0], rel_tol=1e-3) for r in ratios) and ratios[0] > 1 else 1)
PY
echo "PASS: suggested $lr from $rows steps"
