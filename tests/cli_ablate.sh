#!/usr/bin/env bash
# Smoke test of `kiln ablate`: the whole myrtle-ablation sequence, tiny (narrow net, 1 epoch on
# 1,024 CIFAR-10 images, 2 runs per row), end to end, and its table; then --rows (two of its rows
# again, reusing their runs; a leave_one_out ablation's row with its base) and --list. Exit 77 =
# skipped.
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
# --rows: the last two rows again into the same directory: their runs are the ones above (row-16,
# row-17), found complete; the table is theirs, the first of them compared with none.
"$kiln" ablate --preset myrtle-ablation --device cpu --runs 2 --quiet --out "$d/abl" --rows 17-18 \
  --set 'model.widths=[8, 16, 16, 32]' --set data.train_subset=1024 --set data.test_subset=500 \
  --set schedule.epochs=1 --set data.batch_size=128 > /dev/null 2> "$d/rows.txt" || { cat "$d/rows.txt"; echo "FAIL: --rows 17-18"; exit 1; }
[ "$(grep -c "already complete" "$d/rows.txt")" = 4 ] && grep -q "^=== row 17/18 (1 of the 2 run here): flip TTA (13 ep)$" "$d/rows.txt" ||
  { cat "$d/rows.txt"; echo "FAIL: --rows 17-18 did not find rows 17 and 18's four runs complete"; exit 1; }
grep -q "^Rows 17, 18 of the 18 in the ablation's file (kiln ablate --rows)." "$d/abl/ablation.md" &&
  [ "$(grep -c '^| ' "$d/abl/ablation.md")" = 3 ] && grep -q '^| flip TTA (13 ep) | 1 | .* | — | — |$' "$d/abl/ablation.md" ||
  { cat "$d/abl/ablation.md"; echo "FAIL: the --rows table"; exit 1; }
"$kiln" ablate --preset myrtle-ablation --rows 5,7 --device cpu --out "$d/no" > /dev/null 2> "$d/gap.txt" && { echo "FAIL: --rows 5,7 of a cumulative ablation was taken"; exit 1; }
grep -q "a cumulative ablation's rows must follow one another" "$d/gap.txt" || { cat "$d/gap.txt"; echo "FAIL: no message for --rows 5,7"; exit 1; }
# a leave_one_out ablation's row 11 alone: its base row runs too (said), in row-00 and row-10
"$kiln" ablate --preset airbench94-ablation --device cpu --runs 1 --quiet --out "$d/a94" --rows 11 \
  --set 'model.widths=[8, 16, 16]' --set data.train_subset=1024 --set data.test_subset=500 \
  --set schedule.epochs=1 --set data.batch_size=128 > /dev/null 2> "$d/a94.txt" || { cat "$d/a94.txt"; echo "FAIL: --rows 11"; exit 1; }
grep -q "^kiln ablate: note: --rows '11': row 1, 'airbench94 as its script runs it', is run too" "$d/a94.txt" ||
  { cat "$d/a94.txt"; echo "FAIL: no note that the base row runs too"; exit 1; }
python3 - "$d/a94" <<'PY' || exit 1
import json, os, sys
rows = json.load(open(sys.argv[1] + "/ablation.json"))
assert [(r["row"], r["name"], r["compared_with"]) for r in rows] == [
    (1, "airbench94 as its script runs it", None), (11, "no Lookahead", "airbench94 as its script runs it")], rows
assert sorted(x for x in os.listdir(sys.argv[1]) if x.startswith("row-")) == ["row-00", "row-10"]
PY
"$kiln" ablate --preset airbench94-ablation --list | grep -q "^ 11  no Lookahead  (optim.lookahead = false)$" ||
  { echo "FAIL: kiln ablate --list"; exit 1; }
echo "PASS: ablation table with 18 rows"
cat "$d/abl/ablation.md"
