#!/usr/bin/env bash
# `kiln selftrain` end to end on real CIFAR-10, small enough for CI: 500 labels out of 3,000
# training images (2,500 unlabeled), a narrow ResNet-9, strengths S1 and S4, two rounds of
# students. Checks the table, that the pseudo-labels beat chance (10%) by far, that every
# student was taught by the run before it, and that rerunning the command continues instead of
# starting over. KILN_SELFTRAIN_EPOCHS (default 20) sets the epochs of each training: CI runs
# 10, `make test-full` 20 (tests/CMakeLists.txt). EMA is off here: over these runs' ~200 steps the average (0.99 a step) still
# lags far behind the weights (the teacher's test accuracy, 2026-11-30 on an Intel Xeon: 17.7%
# with EMA, 52.4% without), and EMA is not what this test is about. Exit 77 = skipped.
set -u
kiln=$1
if [ -z "${KILN_DATA:-}" ] || [ ! -d "$KILN_DATA/cifar10" ]; then
  echo "SKIPPED: CIFAR-10 not found (set KILN_DATA to a directory holding cifar10/)"; exit 77
fi
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
args=(selftrain --preset cifar10-selftrain --device cpu --labels 500 --aug S1,S4 --runs 1 --rounds 2 --quiet
      --out "$d/st" --set data.train_subset=3000 --set data.test_subset=1000 --set 'model.widths=[16,32,64,128]'
      --set data.batch_size=50 --set model.ghost_bn_splits=2 --set schedule.epochs=${KILN_SELFTRAIN_EPOCHS:-20} --set model.whiten_samples=500
      --set train.eval_every=1000 --set train.checkpoint_every=1000 --set ema.enabled=false)
"$kiln" "${args[@]}" > "$d/table.md" || { echo "FAIL: kiln selftrain exited $?"; exit 1; }
cat "$d/st/selftrain.md"
fail() { echo "FAIL: $*"; exit 1; }
grep -q '^| S1 | ' "$d/st/selftrain.md" && grep -q '^| S4 | ' "$d/st/selftrain.md" || fail "table rows missing"
[ "$(grep -c '^| S[14] | [12] | ' "$d/st/selftrain.md")" = 4 ] || fail "expected 4 per-round rows"
for s in S1 S4; do
  for r in 1 2; do
    f="$d/st/$s/round-$r/run-00/final.json"
    [ -f "$f" ] || fail "$f missing"
    prev="$d/st/$s/baseline/run-00/checkpoint.pt"; [ "$r" = 2 ] && prev="$d/st/$s/round-1/run-00/checkpoint.pt"
    grep -q "\"teacher\": \"$prev\"" "$f" || fail "$s round $r was not taught by $prev"
  done
  grep -q "^policy = '$([ $s = S1 ] && echo none || echo randaugment)'" "$d/st/$s/round-1/run-00/config.toml" || fail "$s: wrong aug.policy"
  grep -q "^dropout = 0.2" "$d/st/$s/round-1/run-00/config.toml" || fail "$s: the student has no dropout"
  grep -q "^dropout = 0.0" "$d/st/$s/baseline/run-00/config.toml" || fail "$s: the baseline has dropout"
done
python3 - "$d/st/selftrain.json" <<'PY' || exit 1
import json, sys
doc = json.load(open(sys.argv[1]))
assert [s["name"] for s in doc["strengths"]] == ["S1", "S4"], doc
for s in doc["strengths"]:
    assert len(s["baseline"]["test_acc"]) == 1 and len(s["rounds"]) == 2
    for r in s["rounds"]:
        assert r["pseudo_coverage"] == [1.0], r
        # chance is 10%: a teacher trained on 500 labels must label far better
        assert r["pseudo_accuracy"][0] > 0.2, ("pseudo-labels barely above chance", s["name"], r)
        assert r["test_acc"][0] > 0.2, ("student barely above chance", s["name"], r)
    assert s["baseline"]["test_acc"][0] > 0.2, s
print("selftrain.json: ok")
PY
[ -f "$d/st/report.html" ] || fail "report.html missing"
# Rerunning the same command continues: all six runs are found complete.
n=$("$kiln" "${args[@]}" 2>&1 >/dev/null | grep -c "already complete")
[ "$n" = 6 ] || fail "a rerun found $n of 6 finished runs"
echo "PASS: kiln selftrain table, pseudo-labels above chance, continuation"
