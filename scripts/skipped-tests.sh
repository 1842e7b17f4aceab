#!/usr/bin/env bash
# After ctest: how many tests skipped, and for want of what (issue #21). A test skips, rather than
# fails, when the data it trains on is absent (CIFAR-10 under $KILN_DATA, Debian's Fashion-MNIST)
# or its tool is (Chromium, emscripten); this names the line that enables each.
#   scripts/skipped-tests.sh BUILD_DIR
set -uo pipefail
log=${1:?usage: skipped-tests.sh BUILD_DIR}/Testing/Temporary/LastTest.log
[ -f "$log" ] || exit 0
python3 - "$log" <<'PY'
import re, sys
text = open(sys.argv[1], errors="replace").read()
blocks = re.split(r"\n(?=\d+/\d+ Testing: )", text)
skipped = {}
for b in blocks:
    m = re.match(r"\d+/\d+ Testing: (\S+)", b)
    if not m:
        continue
    reason = None
    for line in b.splitlines():
        s = line.strip()
        if s.startswith("SKIPPED:") or (s.startswith("[  SKIPPED ]") is False and "Skipped" in s and s.startswith("/")):
            reason = s
        if reason is None and re.match(r".*\bSKIPPED\b.*(KILN_DATA|CIFAR|cifar|fashion|MNIST|chromium|emscripten|em\+\+|node)", s):
            reason = s
    if reason or "[  SKIPPED ]" in b:
        skipped[m.group(1)] = reason or "skipped"
if not skipped:
    sys.exit(0)
data = [n for n, r in skipped.items() if re.search(r"KILN_DATA|CIFAR|cifar10", r)]
fashion = [n for n, r in skipped.items() if re.search(r"fashion", r, re.I) and n not in data]
other = [n for n in skipped if n not in data and n not in fashion]
print(f"\n{len(skipped)} test(s) skipped:")
if data:
    print(f"  {len(data)} for want of CIFAR-10: point KILN_DATA at a directory holding cifar10/ and run again, e.g.\n"
          f"      KILN_DATA=/path/to/data make test     (or: build/kiln data fetch cifar10 --data /path/to/data, where the network allows)")
if fashion:
    print(f"  {len(fashion)} for want of Fashion-MNIST: apt-get install dataset-fashion-mnist (scripts/install-deps.sh does)")
for n in other:
    print(f"  {n}: {skipped[n]}")
PY
