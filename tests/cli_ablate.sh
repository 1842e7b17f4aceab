#!/usr/bin/env bash
# Smoke test of `kiln ablate`: the whole myrtle-ablation sequence, tiny (narrow net, 1 epoch on
# 1,024 CIFAR-10 images, 2 runs per row), end to end, and its table; then --rows (two of its rows
# again, reusing their runs; a leave_one_out ablation's row with its base) and --list; and the
# evaluation-only rows (TTA), which evaluate their base's networks again, against the same rows
# trained (--train-every-row). Exit 77 = skipped.
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
# Row 17, flip TTA, differs from row 16 (EMA) only in eval.tta: it trained nothing and evaluated
# row 16's two networks again (row-16/evaluated.json), compared with them by the paired t-test.
python3 - "$d/abl" <<'PY' || exit 1
import json, os, sys
d = sys.argv[1]
rows = json.load(open(d + "/ablation.json"))
tta = rows[16]
assert tta["name"] == "flip TTA (13 ep)" and tta["networks_of"] == "EMA (13 ep)" and tta["eval_change"] == 'eval.tta = "flip"', tta
assert tta["p_test"] == "paired t" and tta["train_seconds"] == rows[15]["train_seconds"], tta
assert all("networks_of" not in r for i, r in enumerate(rows) if i != 16), [r["name"] for r in rows if "networks_of" in r]
ev = json.load(open(d + "/row-16/evaluated.json"))
assert [r["checkpoint"] for r in ev["runs"]] == [f"{d}/row-15/run-{k:02d}/checkpoint.pt" for k in range(2)], ev
assert [r["test_acc"] for r in ev["runs"]] == tta["test_acc"], (ev, tta)
assert not os.path.exists(d + "/row-16/run-00"), "the evaluation-only row trained"
md = open(d + "/ablation.md").read()
assert "(paired) |\n" in md.split("| flip TTA (13 ep) |")[1].split("\n")[0] + "\n", md
assert "Row 'flip TTA (13 ep)' trained nothing: it is the networks of row 'EMA (13 ep)' evaluated again, run by run, with eval.tta = \"flip\"" in md, md
PY
# Rerunning the same command continues: every run is found complete (17 rows trained, 2 runs each).
"$kiln" ablate --preset myrtle-ablation --device cpu --runs 2 --quiet --out "$d/abl" \
  --set 'model.widths=[8, 16, 16, 32]' --set data.train_subset=1024 --set data.test_subset=500 \
  --set schedule.epochs=1 --set data.batch_size=128 2>&1 >/dev/null | grep -c "already complete" | grep -qx 34 \
  || { echo "FAIL: a rerun did not find the 34 finished runs"; exit 1; }
# --rows: rows 16 and 17 again into the same directory: row 16's runs are the ones above, found
# complete, and row 17 evaluates them again; the table is theirs, the first compared with none.
"$kiln" ablate --preset myrtle-ablation --device cpu --runs 2 --quiet --out "$d/abl" --rows 16-17 \
  --set 'model.widths=[8, 16, 16, 32]' --set data.train_subset=1024 --set data.test_subset=500 \
  --set schedule.epochs=1 --set data.batch_size=128 > /dev/null 2> "$d/rows.txt" || { cat "$d/rows.txt"; echo "FAIL: --rows 16-17"; exit 1; }
[ "$(grep -c "already complete" "$d/rows.txt")" = 2 ] && grep -q "^=== row 17/18 (2 of the 2 run here): flip TTA (13 ep)$" "$d/rows.txt" &&
  [ "$(grep -c "row-15/run-0[01]/checkpoint.pt evaluated with eval.tta = \"flip\": test accuracy" "$d/rows.txt")" = 2 ] ||
  { cat "$d/rows.txt"; echo "FAIL: --rows 16-17 did not find row 16's runs complete and evaluate them again"; exit 1; }
grep -q "^Rows 16, 17 of the 18 in the ablation's file (kiln ablate --rows)." "$d/abl/ablation.md" &&
  [ "$(grep -c '^| ' "$d/abl/ablation.md")" = 3 ] && grep -q '^| EMA (13 ep) | 1 | .* | — | — |$' "$d/abl/ablation.md" ||
  { cat "$d/abl/ablation.md"; echo "FAIL: the --rows table"; exit 1; }
# airbench94's two TTA rows, evaluated again from the base row's networks and, with
# --train-every-row, trained themselves (the base row's runs copied, so found complete): the same
# accuracies and test losses to the bit, as training does not read eval.* (32 steps: above chance,
# about 25%, so that the networks differ in what they get right).
small_a94=(--device cpu --runs 2 --quiet --set 'model.widths=[16, 32, 32]' --set data.train_subset=2048 --set data.test_subset=500
           --set schedule.epochs=2 --set data.batch_size=128)
"$kiln" ablate --preset airbench94-ablation --rows 3,4 "${small_a94[@]}" --out "$d/tta" > /dev/null 2> "$d/tta.txt" || { cat "$d/tta.txt"; echo "FAIL: --rows 3,4"; exit 1; }
mkdir "$d/tta-trained" && cp -r "$d/tta/row-00" "$d/tta-trained/"
"$kiln" ablate --preset airbench94-ablation --rows 3,4 "${small_a94[@]}" --train-every-row --out "$d/tta-trained" > /dev/null 2> "$d/tta-trained.txt" ||
  { cat "$d/tta-trained.txt"; echo "FAIL: --rows 3,4 --train-every-row"; exit 1; }
[ "$(grep -c "already complete" "$d/tta-trained.txt")" = 2 ] || { cat "$d/tta-trained.txt"; echo "FAIL: the copied base runs were not reused"; exit 1; }
python3 - "$d/tta" "$d/tta-trained" <<'PY' || exit 1
import json, os, sys
again, trained = (json.load(open(p + "/ablation.json")) for p in sys.argv[1:3])
assert [r.get("networks_of") for r in again] == [None, "airbench94 as its script runs it", "airbench94 as its script runs it"], again
assert all("networks_of" not in r for r in trained) and os.path.exists(sys.argv[2] + "/row-03/run-01/final.json"), trained
for a, t in zip(again, trained):
    assert a["name"] == t["name"] and a["test_acc"] == t["test_acc"], (a, t)
for row in ("row-02", "row-03"):
    ev = json.load(open(f"{sys.argv[1]}/{row}/evaluated.json"))["runs"]
    own = [json.load(open(f"{sys.argv[2]}/{row}/run-{k:02d}/final.json"))["final_test_loss"] for k in range(2)]
    assert [r["test_loss"] for r in ev] == own, (row, ev, own)
    assert [r["its_own_test_acc"] for r in ev] == again[0]["test_acc"], (row, ev)
assert min(again[0]["test_acc"]) > 0.15, again[0]
print("airbench94's TTA rows: evaluated again", [r["test_acc"] for r in again[1:]], "= trained", [r["test_acc"] for r in trained[1:]],
      "(the same test losses)")
PY
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
"$kiln" ablate --preset airbench94-ablation --list | grep -q "^  3  TTA: mirror only (tta_level 1)  (eval.tta = \"flip\"); trains nothing: evaluates row 1's networks again$" ||
  { echo "FAIL: kiln ablate --list does not mark the evaluation-only rows"; exit 1; }
echo "PASS: ablation table with 18 rows"
cat "$d/abl/ablation.md"
