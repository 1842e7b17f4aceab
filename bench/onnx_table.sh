#!/usr/bin/env bash
# docs/onnx.md's table: each named run directory's checkpoint exported as ONNX (fp32 and int8),
# checked with PyPI's onnx and run by ONNX Runtime on the run's whole test set beside LibTorch
# (tests/onnx_check.py, tests/onnx_reference), one JSON row per run: the run's test-time
# augmentation in the graph and in LibTorch's reference (kiln's evaluation), or MODE
# (kiln export --tta MODE, onnx_reference --tta MODE) for NAME=RUN_DIR:MODE.
#   bench/onnx_table.sh BUILD_DIR DATA_ROOT OUT.json NAME=RUN_DIR[:MODE] ...
# The rows need the venv's onnx and onnxruntime (scripts/install-deps.sh installs them) and a
# kiln built with ONNX (BUILD_DIR/tests/onnx_reference exists only then).
set -euo pipefail
build=$1; data=$2; out=$3; shift 3
here=$(cd "$(dirname "$0")/.." && pwd)
python=${KILN_PYTHON:-$(sed -n 's/^KILN_PYTHON:FILEPATH=//p' "$build/CMakeCache.txt")}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
rows=()
for arg in "$@"; do
  name=${arg%%=*}; run=${arg#*=}; tta=()
  case $run in *:*) tta=(--tta "${run##*:}"); run=${run%:*} ;; esac
  "$build/kiln" export -c "$run/checkpoint.pt" --data "$data" --format onnx "${tta[@]}" --out "$tmp/$name.onnx" >/dev/null
  "$build/kiln" export -c "$run/checkpoint.pt" --data "$data" --format onnx --int8 "${tta[@]}" --out "$tmp/$name-int8.onnx" >/dev/null
  mkdir -p "$tmp/$name"
  "$build/tests/onnx_reference" "$run/checkpoint.pt" "$data" "$tmp/$name" "${tta[@]}"
  "$python" "$here/tests/onnx_check.py" "$tmp/$name" "$tmp/$name.onnx" "$tmp/$name-int8.onnx" --name "$name" --json "$tmp/$name.json"
  rows+=("$tmp/$name.json")
done
"$python" - "$out" "${rows[@]}" <<'PY'
import json, platform, subprocess, sys
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
rows = [json.load(open(p)) for p in sys.argv[2:]]
json.dump({"cpu": cpu, "rows": rows}, open(sys.argv[1], "w"), indent=1)
for r in rows:
    print(f"| {r['name']} | {r['tta']} | {r['fp32_bytes']:,} | {r['int8_bytes']:,} | {100*r['fp32_kiln_acc']:.2f}% / {100*r['fp32_ort_acc']:.2f}% "
          f"| {100*r['int8_kiln_acc']:.2f}% / {100*r['int8_ort_acc']:.2f}% | {r['n_test_images']:,} "
          f"| {max(r['fp32_max_abs_logit_diff_256'], r['int8_max_abs_logit_diff_256']):.1e} "
          f"| {r['fp32_ort_ms_per_image']:.2f} / {r['int8_ort_ms_per_image']:.2f} / {r['int8_folded_ort_ms_per_image']:.2f} |")
PY
