#!/usr/bin/env bash
# A run's model in kiln's dependency-free runtime, against LibTorch: `kiln quantize` (LibTorch,
# fp32 arithmetic, the run's eval.tta) gives the fp32 and int8 accuracies; `kiln export --format
# kiln` (fp32 and --int8) then kiln-classify (native, one thread) classifies every test image
# with each file, and kiln.js under node (WebAssembly, bench/runtime_predict.js) the first
# NODE_IMAGES with the fp32 file. One JSON: counts right and milliseconds per image. Every side
# applies the run's eval.tta (kiln-classify and kiln.js read it from the file).
# Usage (from the repository root, after a build; kiln.js needs emscripten):
#   bench/runtime_predict.sh RUN_DIR DATA_ROOT IMAGES-idx3 LABELS-idx1 [NODE_IMAGES] [OUT.json]
#   bench/runtime_predict.sh RUN_DIR DATA_ROOT cifar10/test_batch.bin - [NODE_IMAGES] [OUT.json]
# KILN_BIN, CLASSIFY, KILN_JS override build/kiln, build/kiln-classify, build/web/kiln.js.
# SIDE_BY_SIDE=1 runs the fp32 and int8 files' kiln-classify at once (one thread each, so one
# core each on a 2-core machine; each one's clock then has the other beside it). ALSO_PLAIN=1
# adds the fp32 file with --tta none (the plain network: what the run's TTA buys in the runtime).
set -euo pipefail
run=$1; data=$2; images=$3; labels=$4; node_n=${5:-1000}; out=${6:-bench/results/runtime-predict-$(date -u +%Y-%m-%d).json}
kiln=${KILN_BIN:-build/kiln}; classify=${CLASSIFY:-build/kiln-classify}; js=${KILN_JS:-build/web/kiln.js}
here=$(cd "$(dirname "$0")/.." && pwd)
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
"$kiln" quantize --checkpoint "$run/checkpoint.pt" --device cpu --data "$data" --out "$d/quantize.json" > "$d/quantize.txt"
"$kiln" export --checkpoint "$run/checkpoint.pt" --format kiln --data "$data" --out "$d/model.kiln" > /dev/null
"$kiln" export --checkpoint "$run/checkpoint.pt" --format kiln --int8 --data "$data" --out "$d/model-int8.kiln" > /dev/null
files=("$images"); [ "$labels" = - ] || files+=("$labels")
if [ "${SIDE_BY_SIDE:-0}" = 1 ]; then
  "$classify" "$d/model.kiln" "${files[@]}" > "$d/native32.txt" & p=$!
  "$classify" "$d/model-int8.kiln" "${files[@]}" > "$d/native8.txt"
  wait $p
else
  "$classify" "$d/model.kiln" "${files[@]}" > "$d/native32.txt"
  "$classify" "$d/model-int8.kiln" "${files[@]}" > "$d/native8.txt"
fi
if [ "${ALSO_PLAIN:-0}" = 1 ]; then "$classify" "$d/model.kiln" "${files[@]}" --tta none > "$d/native32plain.txt"; fi
if [ -s "$js" ]; then node "$here/bench/runtime_predict.js" "$js" "$d/model.kiln" "$images" "$labels" "$node_n" > "$d/node.json"; else echo '{}' > "$d/node.json"; fi
python3 - "$d" "$run" "$out" "$*" "${SIDE_BY_SIDE:-0}" <<'PY'
import json, os, platform, re, subprocess, sys, tomllib
d, run, out, args, side_by_side = sys.argv[1:]
q = json.load(open(f"{d}/quantize.json"))
def native(f):
    t = open(f).read()
    m = re.search(r"accuracy [0-9.]+ \((\d+) of (\d+)\).*; ([0-9.]+) ms per image", t)
    r = {"right": int(m.group(1)), "images": int(m.group(2)), "ms_per_image": float(m.group(3))}
    v = re.search(r"tta (\S+) \((\d+) network pass", t)  # kiln-classify since 2026-12-04
    if v: r.update(tta=v.group(1), network_passes_per_image=int(v.group(2)))
    return r
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip()
j = {"what": "a run's model in kiln's runtime against LibTorch (bench/runtime_predict.sh)", "run": run,
     "run_final": {k: v for k, v in json.load(open(f"{run}/final.json")).items() if k in ("final_test_acc", "parameters", "flops_per_image")},
     "run_model": {k: tomllib.load(open(f"{run}/config.toml", "rb"))["model"][k] for k in ("name", "widths")},
     "libtorch": {"test_images": q["test_images"], "fp32_right": round(q["fp32_test_acc"] * q["test_images"]),
                  "int8_right": round(q["int8_test_acc"] * q["test_images"]), "note": "kiln quantize: fp32 arithmetic, the run's eval.tta"},
     "file_bytes": {"fp32": os.path.getsize(f"{d}/model.kiln"), "int8": os.path.getsize(f"{d}/model-int8.kiln")},
     "native_fp32": native(f"{d}/native32.txt"), "native_int8": native(f"{d}/native8.txt"),
     **({"native_fp32_tta_none": native(f"{d}/native32plain.txt")} if os.path.exists(f"{d}/native32plain.txt") else {}),
     "node_fp32": json.load(open(f"{d}/node.json")),
     "clock": "kiln-classify: the predict calls over all images, one thread, model loading excluded" +
              ("; the fp32 and int8 files' runs side by side (SIDE_BY_SIDE=1)" if side_by_side == "1" else "") +
              "; node: wall clock around the predict calls",
     "cpu": cpu, "commit": commit, "command": "bench/runtime_predict.sh " + args}
os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
json.dump(j, open(out, "w"), indent=1)
open(out, "a").write("\n")
print(json.dumps(j, indent=1))
PY
