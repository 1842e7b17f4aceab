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
    lines = [l.strip() for l in b.splitlines()]
    reason = None
    for i, s in enumerate(lines):
        if s.endswith(": Skipped") and i + 1 < len(lines) and lines[i + 1]:  # GoogleTest's GTEST_SKIP() << reason
            reason = lines[i + 1]
            break
        if s.startswith("SKIPPED:"):  # the CLI scripts' exit 77
            reason = s[len("SKIPPED:"):].strip()
            break
    if reason is not None or "[  SKIPPED ]" in b:
        skipped[m.group(1)] = reason or "skipped"
if not skipped:
    sys.exit(0)
data = [n for n, r in skipped.items() if re.search(r"KILN_DATA|CIFAR|cifar10|MNIST under", r)]
fashion = [n for n, r in skipped.items() if re.search(r"fashion", r, re.I) and n not in data]
other = [n for n in skipped if n not in data and n not in fashion]
print(f"\n{len(skipped)} test(s) skipped:")
if data:
    print(f"  {len(data)} for want of data under $KILN_DATA (CIFAR-10, MNIST): point it at a directory holding cifar10/\n"
          f"  (and mnist/) and run again:\n"
          f"      KILN_DATA=/path/to/data make test\n"
          f"  (where the network allows: build/kiln data fetch cifar10 --data /path/to/data, and the same for mnist)")
if fashion:
    print(f"  {len(fashion)} for want of Fashion-MNIST: apt-get install dataset-fashion-mnist (scripts/install-deps.sh does)")
for n in other:
    print(f"  {n}: {skipped[n]}")
PY
