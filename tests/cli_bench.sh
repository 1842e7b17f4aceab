#!/usr/bin/env bash
# `kiln bench` on the CPU, on a subset: two timed runs, the JSON holds what the peers report
# (accuracy and time with n, std and 95% CI, FLOPs, TFLOP/s, the matmul peak, what the clock
# covered, provenance), --profile's table, and --peaks-from. (exit 77 = skipped)
set -u
kiln=$1
if [ -z "${KILN_DATA:-}" ] || [ ! -d "$KILN_DATA/cifar10" ]; then echo "SKIPPED: no CIFAR-10 under KILN_DATA"; exit 77; fi
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
"$kiln" bench --preset cifar10-94-muon --runs 2 --warmup 1 --device cpu --out "$d/b.json" \
  --set 'model.widths=[16, 32, 32]' --set data.train_subset=2000 --set data.test_subset=300 \
  --set schedule.epochs=2 --set data.batch_size=250 --profile "$d/prof.csv" > "$d/out.txt" 2>&1 || { cat "$d/out.txt"; echo "FAIL: exit"; exit 1; }
cat "$d/out.txt" | grep -v '^note'
python3 - "$d/b.json" <<'PY' || { echo "FAIL: bench JSON"; exit 1; }
import json, sys
j = json.load(open(sys.argv[1]))
assert j["runs"] == 2 and j["complete"] and j["warmup_runs"] == 1 and j["device"] == "cpu", j
for k in ("test_acc", "seconds", "tflops"):
    s = j[k]
    assert s["n"] == 2 and s["ci95_low"] <= s["mean"] <= s["ci95_high"], (k, s)
assert 0 < j["test_acc"]["mean"] <= 1
for k in ("test_acc", "seconds", "whiten_seconds", "train_seconds", "eval_seconds", "cpu_seconds"):
    assert len(j["per_run"][k]) == 2, k
assert all(c > 0 for c in j["per_run"]["cpu_seconds"]) and "CPU time" in j["cpu_seconds_includes"], j["per_run"]
for a, b, c, t in zip(j["per_run"]["whiten_seconds"], j["per_run"]["train_seconds"], j["per_run"]["eval_seconds"], j["per_run"]["seconds"]):
    assert abs(a + b + c - t) < 1e-9 and b > 0 and c > 0
assert j["flops_per_run"] > 1e9 and j["matmul_peak_tflops"] > 0 and 0 < j["fraction_of_peak"] < 1
assert j["conv_peak_tflops"] > 0 and 0 < j["fraction_of_conv_peak"] < 1
assert j["peaks_from"] == "measured", j["peaks_from"]
assert j["peak_yardstick"] == ("convolution" if j["matmul_peak_tflops"] < j["conv_peak_tflops"] / 4 else "matrix product"), j
import re  # what each peak timed: the full sizes, or where a slow path stopped the growth (kiln/core/peak.h)
assert re.fullmatch(r"(\d+) x \1 x \1", j["matmul_peak_shape"]) and re.fullmatch(r"\d+ x 256 x 16 x 16 -> 256, 3x3", j["conv_peak_shape"]), j
assert "whitening" in j["clock_includes"] and "data loading" in j["clock_excludes"]
assert j["provenance"]["libtorch_version"].startswith("2.11") and j["config"]["optim.name"] == "muon"
print("bench JSON ok:", j["test_acc"]["mean"], j["seconds"]["mean"], j["tflops"]["mean"])
PY
# --profile: one more run under LibTorch's profiler; on the CPU, host operators by self time
python3 - "$d/prof.csv" <<'PY' || { cat "$d/prof.csv" | head; echo "FAIL: profile CSV"; exit 1; }
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
host = [r for r in rows if r["kind"] == "host"]
assert len(host) >= 10 and not [r for r in rows if r["kind"] == "device"], len(rows)
assert abs(sum(float(r["share"]) for r in host) - 1) < 1e-3
ms = [float(r["ms"]) for r in host]
assert ms == sorted(ms, reverse=True) and ms[0] > 0
names = " ".join(r["name"] for r in host)
assert "conv" in names and "aten::" in names, names[:300]
print("profile ok:", len(host), "host operators; top:", host[0]["name"], host[0]["share"])
PY
grep -q "profiled run:" "$d/out.txt" || { echo "FAIL: no profiled-run line"; exit 1; }
# --peaks-from: a second bench on the same device, precision, layout and threads takes the first
# one's peaks instead of measuring them; another layout, a file without them or a broken file is
# refused, naming the file and the key.
tiny=(--device cpu --runs 1 --warmup 0 --set 'model.widths=[8, 8, 8]' --set data.train_subset=500 --set data.test_subset=100
      --set schedule.epochs=1 --set data.batch_size=250)
"$kiln" bench --preset cifar10-94-muon "${tiny[@]}" --peaks-from "$d/b.json" --out "$d/again.json" > "$d/again.txt" 2>&1 ||
  { cat "$d/again.txt"; echo "FAIL: --peaks-from exit"; exit 1; }
grep -q "measuring the device" "$d/again.txt" && { echo "FAIL: --peaks-from measured the peaks again"; exit 1; }
grep -q "of the measured in $d/b.json" "$d/again.txt" || { cat "$d/again.txt"; echo "FAIL: the summary does not say where the peak came from"; exit 1; }
python3 - "$d/b.json" "$d/again.json" <<'PY' || { echo "FAIL: --peaks-from JSON"; exit 1; }
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
assert b["peaks_from"] == sys.argv[1], b["peaks_from"]
for k in ("matmul_peak_tflops", "matmul_peak_shape", "conv_peak_tflops", "conv_peak_shape"):
    assert a[k] == b[k], (k, a[k], b[k])
assert abs(b["fraction_of_peak"] - b["tflops"]["mean"] / a["matmul_peak_tflops"]) < 1e-12
PY
refused() {  # refused WHAT MESSAGE ARGS...
  local what=$1 msg=$2; shift 2
  "$kiln" bench --preset cifar10-94-muon "${tiny[@]}" --out "$d/no.json" "$@" > "$d/no.txt" 2>&1 && { echo "FAIL: $what was taken"; exit 1; }
  grep -qF -- "$msg" "$d/no.txt" || { cat "$d/no.txt"; echo "FAIL: no message naming the file and key for $what"; exit 1; }
  [ ! -e "$d/no.json" ] || { echo "FAIL: $what wrote a JSON"; exit 1; }
}
refused "another layout's peaks" "--peaks-from $d/b.json: its peaks were measured with layout = \"channels_last\", this run has \"NCHW\"" \
  --peaks-from "$d/b.json" --set train.channels_last=false
python3 -c "import json, sys; j = json.load(open(sys.argv[1])); del j['conv_peak_tflops']; json.dump(j, open(sys.argv[2], 'w'))" "$d/b.json" "$d/nopeak.json"
refused "a JSON without a peak" "--peaks-from $d/nopeak.json: no 'conv_peak_tflops'" --peaks-from "$d/nopeak.json"
head -c 100 "$d/b.json" > "$d/cut.json"
refused "a truncated JSON" "--peaks-from $d/cut.json: not a kiln bench JSON" --peaks-from "$d/cut.json"
echo "PASS: kiln bench"
