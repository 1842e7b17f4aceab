#!/usr/bin/env bash
# The Google Benchmark programs in bench/ build (CI configures with KILN_BUILD_BENCH=ON) and run:
# kiln_bench's two quarter-width training steps (the full-width one takes minutes on a CPU),
# every benchmark of kiln_bench_lecun, and kiln_bench_fused's smallest shapes (fused and not, bf16
# and fp32, with the residual and without, in training and in evaluation) and its cifar10-94-muon
# training step and evaluation forward, and every benchmark of kiln_bench_checkpoint (on the
# ResNet-9 checkpoint it writes itself and its .kiln export), each reporting a positive time and no error. No figure comes of it (a loaded test machine's timings mean nothing).
# On a CPU without bf16 arithmetic (no AVX512-BF16, no AMX: an AVX2 AMD EPYC of 2026-12-04) bf16 is
# emulated and the whole-network bf16 steps take minutes (the quarter-width bf16 step 14 s an
# iteration, cifar10-94-muon's step 28 s): there the quarter-width step runs in fp32 only and the
# whole-network step and evaluation are left out, said so; their small fused shapes still run in bf16.
# Which CPU this is, kiln says (`kiln env`'s "bf16:" line, the same test train.precision = auto makes).
#   tests/bench_programs.sh KILN KILN_BENCH KILN_BENCH_LECUN KILN_BENCH_FUSED KILN_BENCH_CHECKPOINT
set -u
kiln=$1; bench=$2; lecun=$3; fused=$4; checkpoint=$5
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
. "$(dirname "$0")/native_bf16.sh"
native_bf16=$(native_bf16 "$kiln") || exit 1
step_filter=quarter; fused_filter='H:3/|H:7/pool:1|(step|eval)/cifar10_94_muon'
if [ $native_bf16 = 0 ]; then
  step_filter=quarter_fp32; fused_filter='H:3/|H:7/pool:1'
  echo "no bf16 arithmetic on this CPU: the bf16 quarter-width step and the cifar10-94-muon step and evaluation are left out"
fi
"$bench" --benchmark_filter="$step_filter" --benchmark_out="$d/step.json" --benchmark_out_format=json > "$d/step.txt" 2>&1 \
  || { cat "$d/step.txt"; echo "FAIL: kiln_bench exited $?"; exit 1; }
"$lecun" --benchmark_min_time=0.01 --benchmark_out="$d/lecun.json" --benchmark_out_format=json > "$d/lecun.txt" 2>&1 \
  || { cat "$d/lecun.txt"; echo "FAIL: kiln_bench_lecun exited $?"; exit 1; }
"$fused" --benchmark_filter="$fused_filter" --benchmark_min_time=0.01 --benchmark_out="$d/fused.json" \
  --benchmark_out_format=json > "$d/fused.txt" 2>&1 || { cat "$d/fused.txt"; echo "FAIL: kiln_bench_fused exited $?"; exit 1; }
"$checkpoint" --benchmark_min_time=0.01 --benchmark_out="$d/checkpoint.json" --benchmark_out_format=json > "$d/checkpoint.txt" 2>&1 \
  || { cat "$d/checkpoint.txt"; echo "FAIL: kiln_bench_checkpoint exited $?"; exit 1; }
cat "$d/step.txt" "$d/lecun.txt" "$d/fused.txt" "$d/checkpoint.txt" | grep -E '^((train|eval)_step|pool_bn_gelu|airbench_(step|eval)|crc32|check_zip|libtorch_load|kiln_load|kiln_file)'
python3 - "$d/step.json" "$d/lecun.json" "$d/fused.json" "$native_bf16" "$d/checkpoint.json" <<'PY' || { echo "FAIL: the benchmarks' JSON"; exit 1; }
import json, sys
native_bf16 = sys.argv[4] == "1"
step = json.load(open(sys.argv[1]))["benchmarks"]
lecun = json.load(open(sys.argv[2]))["benchmarks"]
names = sorted(b["name"].split("/")[0] + "/" + b["name"].split("/")[1] for b in step)
assert names == (["train_step/resnet9_quarter_bf16"] if native_bf16 else []) + ["train_step/resnet9_quarter_fp32"], names
for b in step:
    assert not b.get("error_occurred") and b["iterations"] == 5 and b["real_time"] > 0, b
    assert b["items_per_second"] > 0 and "threads" in b.get("label", ""), b
got = sorted(b["name"] for b in lecun)
assert got == ["eval_step<double>", "eval_step<float>", "train_step<double>", "train_step<float>"], got
for b in lecun:
    assert not b.get("error_occurred") and b["iterations"] > 0 and b["real_time"] > 0, b
fused = json.load(open(sys.argv[3]))["benchmarks"]
got = sorted(b["name"].replace("/real_time", "") for b in fused)
want = sorted([f"pool_bn_gelu{m}/{t}/C:{c}/H:{h}/pool:{p}/residual:{r}/fused:{f}" for m in ("", "_eval")
               for t in ("bf16", "fp32") for c, h, p, r in ((256, 7, 1, 0), (256, 3, 0, 0), (512, 3, 0, 1)) for f in (0, 1)]
              + [f"airbench_{k}/cifar10_94_muon/fused:{f}" for k in ("step", "eval") for f in (0, 1) if native_bf16])
assert got == want, got
for b in fused:
    assert not b.get("error_occurred") and b["iterations"] > 0 and b["real_time"] > 0, b
    assert ("fused" in b["label"]) == b["name"].endswith("fused:1/real_time") and "threads" in b["label"], b
checkpoint = json.load(open(sys.argv[5]))["benchmarks"]
got = sorted(b["name"] for b in checkpoint)
assert got == ["check_zip_records", "crc32_16MiB_in_memory", "crc32_portable_16MiB_in_memory", "kiln_file_crc32", "kiln_file_parse_checked",
               "kiln_file_parse_unchecked", "kiln_load_checkpoint", "libtorch_load_from"], got
for b in checkpoint:
    assert not b.get("error_occurred") and b["iterations"] > 0 and b["real_time"] > 0, b
print("bench programs ok:", len(step), "+", len(lecun), "+", len(fused), "+", len(checkpoint), "benchmarks")
PY
