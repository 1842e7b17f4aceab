#!/usr/bin/env bash
# CTest reference.outputs_within_tolerance: the behaviour lock's runs (scripts/reference-outputs.sh)
# against the committed values (tests/reference/values.json) to the tolerance tests/reference_check.py
# states. Exit 77 = skipped (no CIFAR-10 or MNIST under KILN_DATA).
set -u
kiln=$1
here=$(cd "$(dirname "$0")" && pwd)
for d in cifar10 mnist; do
  [ -n "${KILN_DATA:-}" ] && [ -d "$KILN_DATA/$d" ] || { echo "SKIPPED: no $d under KILN_DATA"; exit 77; }
done
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
bash "$here/../scripts/reference-outputs.sh" run "$out/ref" "$kiln" || { echo "FAIL: the reference runs did not complete"; exit 1; }
python3 "$here/reference_check.py" check "$out/ref" "$here/reference/values.json"
