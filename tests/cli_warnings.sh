#!/usr/bin/env bash
# A run too short for its averages says so (RunOptimizers::warnings): Lookahead with fewer steps
# than optim.lookahead_every ends at the initial weights. Each run of a set warns on stderr at its
# start and in its final.json and report.html, and the set says it again under its result; the
# set's summary.json, summary.md and report.html hold each warning once, and keep it when
# `kiln train --resume` finds the runs complete (the warnings then come from final.json); kiln
# bench's JSON holds them once. A run long enough warns of nothing. (exit 77 = skipped)
set -u
kiln=$1
if [ -z "${KILN_DATA:-}" ] || [ ! -d "$KILN_DATA/cifar10" ]; then echo "SKIPPED: no CIFAR-10 under KILN_DATA"; exit 77; fi
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
small=(--preset cifar10-94 --device cpu --set 'model.widths=[8, 16, 16]' --set data.train_subset=2048
       --set data.test_subset=200 --set data.test_batch_size=200 --set schedule.epochs=1)
want='optim.lookahead is on and this run has 2 steps, fewer than optim.lookahead_every = 5'
"$kiln" train "${small[@]}" --quiet --runs 2 --out "$d/set" 2> "$d/err" || { cat "$d/err"; echo "FAIL: the short set"; exit 1; }
[ "$(grep -c "^kiln: warning: $want" "$d/err")" -eq 2 ] || { cat "$d/err"; echo "FAIL: not one warning a run on stderr"; exit 1; }
# and once more under the set's result
[ "$(grep -c "^kiln: the result above comes with a warning: $want" "$d/err")" -eq 1 ] &&
  tail -1 "$d/err" | grep -q "^kiln: the result above comes with a warning: " ||
  { cat "$d/err"; echo "FAIL: the warning is not said once under the set's result"; exit 1; }
check_set() {
  python3 - "$d/set" "$want" "$1" <<'PY' || exit 1
import json, sys
d, want, when = sys.argv[1:4]
s = json.load(open(f"{d}/summary.json"))
assert len(s.get("warnings", [])) == 1 and s["warnings"][0].startswith(want), (when, s.get("warnings"))
for r in ("run-00", "run-01"):
    f = json.load(open(f"{d}/{r}/final.json"))
    assert f.get("warnings") == s["warnings"], (when, r, f.get("warnings"))
    assert "Warning: " + want in open(f"{d}/{r}/report.html").read(), (when, r)
assert open(f"{d}/summary.md").read().count("**Warning:** " + want) == 1, when
assert open(f"{d}/report.html").read().count("Warning: " + want) == 1, when
print(f"{when}: the warning once in the set's summary.json, summary.md and report.html, and in each run's final.json and report.html")
PY
}
check_set "after the runs"
"$kiln" train --resume "$d/set" > /dev/null 2> "$d/err-resume" || { cat "$d/err-resume"; echo "FAIL: --resume on the complete set"; exit 1; }
grep -q "^kiln: the result above comes with a warning: $want" "$d/err-resume" ||
  { cat "$d/err-resume"; echo "FAIL: --resume on the complete set does not repeat the warning under its result"; exit 1; }
check_set "after --resume found them complete"
"$kiln" train "${small[@]}" --quiet --set optim.lookahead_every=2 --out "$d/long" 2> "$d/err2" || { cat "$d/err2"; echo "FAIL: the longer run"; exit 1; }
if grep -q "warning" "$d/err2"; then cat "$d/err2"; echo "FAIL: a warning for a run with Lookahead updates"; exit 1; fi
python3 -c "import json, sys; sys.exit('warnings' in json.load(open(sys.argv[1])))" "$d/long/final.json" ||
  { echo "FAIL: final.json has warnings for a run with Lookahead updates"; exit 1; }
# kiln bench: each run warns on stderr, and its JSON holds the warning once
"$kiln" bench "${small[@]}" --runs 2 --warmup 0 --out "$d/bench.json" > /dev/null 2> "$d/err3" || { cat "$d/err3"; echo "FAIL: kiln bench"; exit 1; }
[ "$(grep -c "^kiln: warning: $want" "$d/err3")" -eq 2 ] || { cat "$d/err3"; echo "FAIL: not one warning a bench run on stderr"; exit 1; }
python3 - "$d/bench.json" "$want" <<'PY' || { echo "FAIL: the bench JSON's warnings"; exit 1; }
import json, sys
w = json.load(open(sys.argv[1])).get("warnings", [])
assert len(w) == 1 and w[0].startswith(sys.argv[2]), w
PY
echo "PASS"
