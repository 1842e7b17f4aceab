#!/usr/bin/env bash
# A run's model in kiln's dependency-free runtime, against LibTorch: `kiln quantize` (LibTorch,
# fp32 arithmetic, the run's eval.tta) gives the fp32 and int8 accuracies; `kiln export --format
# kiln` (fp32 and --int8) then kiln-classify (native, one thread) classifies every test image
# with each file, and kiln.js under node (WebAssembly, bench/runtime_predict.js) the first
# NODE_IMAGES with the fp32 file. One JSON: counts right and milliseconds per image.
# Usage (from the repository root, after a build; kiln.js needs emscripten):
#   bench/runtime_predict.sh RUN_DIR DATA_ROOT IMAGES-idx3 LABELS-idx1 [NODE_IMAGES] [OUT.json]
# KILN_BIN, CLASSIFY, KILN_JS override build/kiln, build/kiln-classify, build/web/kiln.js.
set -euo pipefail
run=$1; data=$2; images=$3; labels=$4; node_n=${5:-1000}; out=${6:-bench/results/runtime-predict-$(date -u +%Y-%m-%d).json}
kiln=${KILN_BIN:-build/kiln}; classify=${CLASSIFY:-build/kiln-classify}; js=${KILN_JS:-build/web/kiln.js}
here=$(cd "$(dirname "$0")/.." && pwd)
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
"$kiln" quantize --checkpoint "$run/checkpoint.pt" --device cpu --data "$data" --out "$d/quantize.json" > "$d/quantize.txt"
"$kiln" export --checkpoint "$run/checkpoint.pt" --format kiln --data "$data" --out "$d/model.kiln" > /dev/null
"$kiln" export --checkpoint "$run/checkpoint.pt" --format kiln --int8 --data "$data" --out "$d/model-int8.kiln" > /dev/null
"$classify" "$d/model.kiln" "$images" "$labels" > "$d/native32.txt"
"$classify" "$d/model-int8.kiln" "$images" "$labels" > "$d/native8.txt"
if [ -s "$js" ]; then node "$here/bench/runtime_predict.js" "$js" "$d/model.kiln" "$images" "$labels" "$node_n" > "$d/node.json"; else echo '{}' > "$d/node.json"; fi
python3 - "$d" "$run" "$out" "$*" <<'PY'
import json, os, platform, re, subprocess, sys, tomllib
d, run, out, args = sys.argv[1:]
q = json.load(open(f"{d}/quantize.json"))
def native(f):
    m = re.search(r"accuracy [0-9.]+ \((\d+) of (\d+)\).*; ([0-9.]+) ms per image", open(f).read())
    return {"right": int(m.group(1)), "images": int(m.group(2)), "ms_per_image": float(m.group(3))}
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip()
j = {"what": "a run's model in kiln's runtime against LibTorch (bench/runtime_predict.sh)", "run": run,
     "run_final": {k: v for k, v in json.load(open(f"{run}/final.json")).items() if k in ("final_test_acc", "parameters", "flops_per_image")},
     "run_model": {k: tomllib.load(open(f"{run}/config.toml", "rb"))["model"][k] for k in ("name", "widths")},
     "libtorch": {"test_images": q["test_images"], "fp32_right": round(q["fp32_test_acc"] * q["test_images"]),
                  "int8_right": round(q["int8_test_acc"] * q["test_images"]), "note": "kiln quantize: fp32 arithmetic, the run's eval.tta"},
     "file_bytes": {"fp32": os.path.getsize(f"{d}/model.kiln"), "int8": os.path.getsize(f"{d}/model-int8.kiln")},
     "native_fp32": native(f"{d}/native32.txt"), "native_int8": native(f"{d}/native8.txt"),
     "node_fp32": json.load(open(f"{d}/node.json")),
     "clock": "kiln-classify: the predict calls over all images, one thread, model loading excluded; node: wall clock around the predict calls",
     "cpu": cpu, "commit": commit, "command": "bench/runtime_predict.sh " + args}
os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
json.dump(j, open(out, "w"), indent=1)
open(out, "a").write("\n")
print(json.dumps(j, indent=1))
PY
