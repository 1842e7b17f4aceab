#!/usr/bin/env bash
# `kiln lecun1989` end to end on the MNIST under $KILN_DATA: the table beside the paper's, and
# a test error in the range of the paper's 5.0% (exit 77 = skipped).
set -u
kiln=$1
if [ -z "${KILN_DATA:-}" ] || [ ! -d "$KILN_DATA/mnist" ]; then
  echo "SKIPPED: MNIST not found (set KILN_DATA to a directory holding mnist/)"; exit 77
fi
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
"$kiln" lecun1989 --data "$KILN_DATA" --out "$d" > "$d/out.md" 2> "$d/err" || { echo "FAIL: exit $?"; cat "$d/err"; exit 1; }
grep -q '| paper (1989) | 0.14% | 5.0% | 102 |' "$d/results.md" || { echo "FAIL: no paper row"; exit 1; }
[ "$(grep -c '^pass ' "$d/err")" = 23 ] || { echo "FAIL: expected 23 passes"; exit 1; }
err=$(grep -E '^pass +23 ' "$d/err" | sed -E 's/.*test error ([0-9.]+)%.*/\1/')
python3 -c "import sys; e=float('$err'); sys.exit(0 if 2.5 < e < 8.0 else 1)" || { echo "FAIL: test error $err% far from the paper's 5.0%"; exit 1; }
echo "PASS: 23 passes, test error $err%"; cat "$d/results.md"
