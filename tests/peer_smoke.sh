#!/usr/bin/env bash
# bench/airbench_peer.py (the PyTorch-eager peer of cifar10-94, default recipe) on the CPU, on a subset: it
# trains (above chance), and its JSON holds what docs/perf.md quotes. (exit 77 = skipped)
#   tests/peer_smoke.sh PYTHON KILN   (kiln says whether the CPU does bf16 arithmetic: `kiln env`)
set -u
python=$1; kiln=$2; here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${KILN_DATA:-}" ] || [ ! -d "$KILN_DATA/cifar10" ]; then echo "SKIPPED: no CIFAR-10 under KILN_DATA"; exit 77; fi
"$python" -c 'import torch' 2>/dev/null || { echo "SKIPPED: no torch in $python"; exit 77; }
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
"$python" "$here/bench/airbench_peer.py" --data "$KILN_DATA" --runs 2 --warmup 1 --device cpu --widths 16,32,32 \
  --train-subset 4000 --test-subset 500 --epochs 3 --batch 250 --out "$d/p.json" || { echo "FAIL: exit"; exit 1; }
"$python" - "$d/p.json" <<'PY' || { echo "FAIL: peer JSON"; exit 1; }
import json, sys
j = json.load(open(sys.argv[1]))
assert j["runs"] == 2 and j["complete"] and j["warmup_runs"] == 1 and j["device_type"] == "cpu", j
for k in ("test_acc", "seconds", "tflops"):
    s = j[k]
    assert s["n"] == 2 and s["ci95_low"] <= s["mean"] <= s["ci95_high"], (k, s)
assert j["test_acc"]["mean"] > 0.25, j["test_acc"]          # 10 classes: chance is 0.1
assert all(t > 0 for t in j["per_run"]["seconds"]) and j["flops_per_run"] > 1e9
assert "whitening" in j["clock_includes"] and "data loading" in j["clock_excludes"]
print("peer JSON ok:", j["test_acc"]["mean"], j["seconds"]["mean"])
PY
# airbench96's own pieces (three convs a group with the residual, cutout, translate 4, its schedule
# and FLOP count) on a smaller subset: it runs, learns, and counts the 10 convs; run as a careful
# PyTorch user would on a CPU: channels_last, and bf16 autocast with fp32 weights where the CPU
# does bf16 arithmetic (AMX, AVX512-BF16), fp32 where it would emulate it (an AVX2 AMD EPYC,
# 2026-12-04: this run took 94 s in emulated bf16, four times the airbench94 runs above).
. "$(dirname "$0")/native_bf16.sh"
native=$(native_bf16 "$kiln") || exit 1
precision=bf16; want="bf16 autocast, fp32 weights, channels_last"
if [ "$native" = 0 ]; then
  precision=fp32; want="fp32, channels_last"; echo "no bf16 arithmetic on this CPU: the airbench96 peer runs in fp32"
fi
"$python" "$here/bench/airbench_peer.py" --data "$KILN_DATA" --recipe airbench96 --runs 1 --warmup 0 --device cpu \
  --precision $precision --channels-last \
  --widths 16,32,32 --train-subset 2000 --test-subset 500 --epochs 3 --batch 250 --out "$d/p96.json" || { echo "FAIL: airbench96 exit"; exit 1; }
"$python" - "$d/p96.json" "$want" <<'PY' || { echo "FAIL: airbench96 peer JSON"; exit 1; }
import json, sys
j = json.load(open(sys.argv[1]))
assert j["recipe"] == "airbench96" and j["runs"] == 1 and j["complete"], j
assert j["precision"] == sys.argv[2], (j["precision"], sys.argv[2])
assert j["test_acc"]["mean"] > 0.15, j["test_acc"]          # 24 steps of a tiny net; chance is 0.1
# 2 x multiply-adds a 32x32 image (whitening 2x2 to 31x31, then per group conv, pool, two convs;
# head), x3 for forward + backward over 24 steps of 250, plus 6 views of the 500 test images
h = w = 31; f = 2 * 24 * 3 * 4 * h * w; c = 24
for width in (16, 32, 32):
    f += 2 * c * 9 * width * h * w; h, w = h // 2, w // 2; f += 2 * 2 * width * 9 * width * h * w; c = width
f += 2 * c * 10
assert abs(j["flops_per_run"] - (3 * f * 24 * 250 + 6 * f * 500)) < 1, (j["flops_per_run"], f)
print("airbench96 peer JSON ok:", j["test_acc"]["mean"], j["seconds"]["mean"])
PY
echo "PASS: airbench94 and airbench96 peers"
