#!/usr/bin/env bash
# report.html of a run, of a multi-run set and of an lr-find sweep: self-contained (no
# http(s) references), and headless Chromium draws every chart without a console error.
# A deliberately broken page must fail the same check. (exit 77 = skipped)
set -u
kiln=$1; here=$(dirname "$0")
if [ -z "${KILN_DATA:-}" ] || [ ! -d "$KILN_DATA/cifar10" ]; then echo "SKIPPED: no CIFAR-10 under KILN_DATA"; exit 77; fi
command -v chromium >/dev/null || { echo "SKIPPED: chromium not installed (scripts/install-deps.sh installs it)"; exit 77; }
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
small=(--preset cifar10-resnet9-baseline --device cpu --quiet --set 'model.widths=[8, 8, 8, 8]'
       --set data.train_subset=512 --set data.test_subset=200 --set data.batch_size=128 --set schedule.epochs=3)
"$kiln" train "${small[@]}" --out "$d/run" || exit 1
"$kiln" train "${small[@]}" --runs 2 --out "$d/set" || exit 1
"$kiln" lr-find --preset cifar10-resnet9-baseline --device cpu --steps 40 --out "$d/lr" \
  --set 'model.widths=[8, 8, 8, 8]' --set data.train_subset=1024 --set data.batch_size=32 >/dev/null 2>&1 || exit 1
for f in "$d/run/report.html" "$d/set/report.html" "$d/set/run-01/report.html" "$d/lr/report.html"; do
  [ -s "$f" ] || { echo "FAIL: no $f"; exit 1; }
  if grep -qE '(src|href)="(https?:)?//' "$f"; then echo "FAIL: $f references the network"; exit 1; fi
done
# 7 charts per run (loss/lr per step, loss/acc/lr/speed/leak per epoch); the set: accuracy of every run.
bash "$here/render_check.sh" "$d/run/report.html" 7 || { echo "FAIL: run report"; exit 1; }
bash "$here/render_check.sh" "$d/set/report.html" 1 || { echo "FAIL: set report"; exit 1; }
bash "$here/render_check.sh" "$d/lr/report.html" 1 || { echo "FAIL: lr-find report"; exit 1; }
grep -q 'data:image/png;base64,' "$d/run/report.html" || { echo "FAIL: pictures not embedded"; exit 1; }
grep -q 'Per-class test accuracy, weakest first' "$d/run/report.html" || { echo "FAIL: run report lacks the per-class accuracy"; exit 1; }
[ "$(head -1 "$d/run/per_class.csv")" = "class,images,correct,accuracy" ] && [ "$(wc -l < "$d/run/per_class.csv")" -eq 11 ] ||
  { cat "$d/run/per_class.csv"; echo "FAIL: per_class.csv is not a header and 10 classes"; exit 1; }
for s in 'Statistics over 2 runs' '95% CI' 'run-00/report.html'; do
  grep -q "$s" "$d/set/report.html" || { echo "FAIL: set report lacks '$s'"; exit 1; }
done
grep -q 'Suggested optim.lr' "$d/lr/report.html" || { echo "FAIL: lr-find report lacks the suggestion"; exit 1; }
# `kiln report` rewrites a page; the checker must catch a script error and an undrawn chart.
rm "$d/run/report.html"; "$kiln" report "$d/run" >/dev/null && [ -s "$d/run/report.html" ] || { echo "FAIL: kiln report"; exit 1; }
sed 's/JSON.parse(/JSON.parsex(/' "$d/run/report.html" > "$d/broken.html"
if bash "$here/render_check.sh" "$d/broken.html" 7 >/dev/null; then echo "FAIL: the checker passed a broken page"; exit 1; fi
echo "PASS: run, set and lr-find reports render in headless Chromium with every chart drawn"
