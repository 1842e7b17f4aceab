#!/usr/bin/env bash
# Smoke test of `kiln ablate`: the whole myrtle-ablation sequence, tiny (narrow net, 1 epoch on
# 1,024 CIFAR-10 images, 2 runs per row), end to end, and its table. Exit 77 = skipped.
set -u
kiln=$1
if [ -z "${KILN_DATA:-}" ] || [ ! -d "$KILN_DATA/cifar10" ]; then
  echo "SKIPPED: CIFAR-10 not found (set KILN_DATA to a directory holding cifar10/)"; exit 77
fi
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
"$kiln" ablate --preset myrtle-ablation --device cpu --runs 2 --quiet --out "$d/abl" \
  --set 'model.widths=[8, 16, 16, 32]' --set data.train_subset=1024 --set data.test_subset=500 \
  --set schedule.epochs=1 --set data.batch_size=128 > "$d/table.md" 2> "$d/stderr.txt" || { cat "$d/stderr.txt"; echo "FAIL: kiln ablate exited $?"; exit 1; }
# the shorter schedule replaces the epochs the rows set themselves: said
grep -q "^kiln ablate: note: --set schedule.epochs=1 replaces what 10 rows set: 'baseline (0.4 x 24 ep)', 'pool before BN (25 ep)'," "$d/stderr.txt" ||
  { cat "$d/stderr.txt"; echo "FAIL: no note that --set schedule.epochs replaces the rows' own epochs"; exit 1; }
rows=$(grep -c '^| ' "$d/abl/ablation.md")
[ "$rows" = 19 ] || { echo "FAIL: expected a header and 18 rows, got $rows lines"; cat "$d/abl/ablation.md"; exit 1; }
grep -q '^| flip TTA, no cutout (10 ep) | 1 |' "$d/abl/ablation.md" || { echo "FAIL: last row missing"; exit 1; }
[ -f "$d/abl/row-17/run-01/final.json" ] || { echo "FAIL: run directories missing"; exit 1; }
grep -q "^tta = 'flip'" "$d/abl/row-17/run-01/config.toml" || { echo "FAIL: the last row's config lacks flip TTA"; exit 1; }
# The last 3 rows keep an EMA (every 5 steps); 8 steps are 1 update, which leaves 95% of the
# initial weights in it: each such row is warned of once, in ablation.json and under the table
python3 - "$d/abl" <<'PY' || exit 1
import json, sys
rows = json.load(open(sys.argv[1] + "/ablation.json"))
warned = [r["name"] for r in rows if any(w.startswith("ema.enabled is on and this run has 8 steps: 1 update") for w in r.get("warnings", []))]
assert warned == [r["name"] for r in rows[15:]] and all(len(r["warnings"]) == 1 for r in rows[15:]), warned
assert all("warnings" not in r for r in rows[:15]), [r["name"] for r in rows[:15] if "warnings" in r]
md = open(sys.argv[1] + "/ablation.md").read()
assert md.count("**Warning** (") == 3 and "**Warning** (EMA (13 ep)): ema.enabled is on" in md, md
PY
# Rerunning the same command continues: every run is found complete.
"$kiln" ablate --preset myrtle-ablation --device cpu --runs 2 --quiet --out "$d/abl" \
  --set 'model.widths=[8, 16, 16, 32]' --set data.train_subset=1024 --set data.test_subset=500 \
  --set schedule.epochs=1 --set data.batch_size=128 2>&1 >/dev/null | grep -c "already complete" | grep -qx 36 \
  || { echo "FAIL: a rerun did not find the 36 finished runs"; exit 1; }
echo "PASS: ablation table with 18 rows"
cat "$d/abl/ablation.md"
