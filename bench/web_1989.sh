#!/usr/bin/env bash
# The 1989 network's 23 passes three ways, as docs/web.md's table gives them: natively
# (kiln-web-check, web/kiln_web.cpp built with -march=native), under node (kiln.js, the
# WebAssembly build) and in headless Chromium (the page itself, tests/web_page.py). N runs each,
# interleaved native, node, Chromium, native, ...; seconds = the time inside the training calls
# after the last pass (steps plus the per-pass error measurements), as each runner reports it.
# Usage (from the repository root, after a build with emscripten; MNIST under DATA_ROOT/mnist):
#   bench/web_1989.sh DATA_ROOT [N] [PASSES] [OUT.json]
# KILN_BIN, WEB_CHECK, KILN_JS override build/kiln, build/kiln-web-check, build/web/kiln.js.
set -euo pipefail
data=$1; n=${2:-3}; passes=${3:-23}; out=${4:-bench/results/web-1989-$(date -u +%Y-%m-%d).json}
kiln=${KILN_BIN:-build/kiln}; check=${WEB_CHECK:-build/kiln-web-check}; js=${KILN_JS:-build/web/kiln.js}
fm=/usr/share/datasets
[ -d "$fm/fashion-mnist" ] || { echo "needs $fm/fashion-mnist (apt-get install dataset-fashion-mnist) for the page's model"; exit 2; }
for f in "$kiln" "$check" "$js"; do [ -s "$f" ] || { echo "missing $f (build with emscripten installed)"; exit 2; }; done
here=$(cd "$(dirname "$0")/.." && pwd)
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
# The page needs a model to open; the one of tests/cli_web.sh (its accuracy does not matter here).
"$kiln" train --preset fashion-mnist-tiny --device cpu --data "$fm" --out "$d/run" --quiet \
  --set data.train_subset=6000 --set data.test_subset=1000 --set schedule.epochs=3 > /dev/null 2>&1
"$kiln" export --checkpoint "$d/run/checkpoint.pt" --format kiln --int8 --data "$fm" > /dev/null 2>&1
"$kiln" web --model "$d/run/model-int8.kiln" --data "$data" --out "$d/site" > /dev/null
[ -s "$d/site/digits.bin" ] || { echo "no digits.bin: $data has no mnist/"; exit 2; }
cp "$js" "$d/site/kiln.js"
gunzip -c "$fm/fashion-mnist/t10k-images-idx3-ubyte.gz" > "$d/images"
python3 "$here/tests/idx_image_png.py" "$d/images" 0 "$d/known.png"
for i in $(seq 1 "$n"); do
  "$check" "$d/site/model.kiln" "$d/images" 0 "$d/site/digits.bin" 0 "$passes" 0 > "$d/native-$i.json"
  node "$here/web/node_check.js" "$d/site/kiln.js" "$d/site/model.kiln" "$d/images" 0 "$d/site/digits.bin" 0 "$passes" 0 > "$d/node-$i.json"
  python3 "$here/tests/web_page.py" "$d/site" "$d/known.png" "$d/native-$i.json" --passes "$passes" \
    --timeout 600 --report "$d/chromium-$i.json" > "$d/chromium-$i.txt" || { cat "$d/chromium-$i.txt"; exit 1; }
  echo "run $i done"
done
python3 - "$d" "$n" "$passes" "$out" "$kiln" "$js" <<'PY'
import json, os, platform, statistics, subprocess, sys
d, n, passes, out, kiln, js = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
rows = []
for i in range(1, n + 1):
    for runner in ("native", "node", "chromium"):
        r = json.load(open(os.path.join(d, f"{runner}-{i}.json")))
        last = r["metrics"][-1]
        rows.append({"runner": runner, "run": i, "passes": last["pass"], "seconds": last["seconds"],
                     "test_misses": last["test_misses"], "train_misses": last["train_misses"],
                     "misses_per_pass": [m["test_misses"] for m in r["metrics"]],
                     "wall_seconds": r.get("wall_seconds"), "agent": r.get("userAgent", r.get("runner"))})
res = {"what": f"the 1989 network, {passes} passes (recipe 0, seed 0), native / node / Chromium, interleaved; seconds inside "
               "the training calls after the last pass", "command": "bench/web_1989.sh " + " ".join(sys.argv[2:4]),
       "cpu": subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True).stdout.strip(),
       "kiln.js bytes": os.path.getsize(js), "runs": rows}
for runner in ("native", "node", "chromium"):
    s = [r["seconds"] for r in rows if r["runner"] == runner]
    res[runner] = {"n": len(s), "median_s": statistics.median(s), "min_s": min(s), "max_s": max(s)}
json.dump(res, open(out, "w"), indent=1)
print(json.dumps({k: res[k] for k in ("native", "node", "chromium")}))
print("wrote", out)
PY
