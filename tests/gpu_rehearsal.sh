#!/usr/bin/env bash
# The GPU window, rehearsed on the CPU (issue #19): the three calls of docs/gpu.md, back to back,
# with CI's own build standing in for the prebuilt device binary (no second build), a stand-in
# .device/ of tiny CIFAR-10 parts laid out and compressed as ../shared/device/stage.sh lays out
# the real ones (600 images a file, not all of CIFAR-10), the real airbench scripts copied from
# ../shared/peers, and the campaign (bench/gpu.sh) in its dry mode. Checks: each call's notes,
# the prebuilt path taken, the MD5 check, what comes back ($OUT: results.tar.gz, gpu.log and
# table.md, at most 8 files), the archive's JSON, the real scripts' run-count edit on a scratch
# copy and their printed table parsed (made by their own print functions), the table, the packs
# made while the campaign runs, and a hung campaign stopped hard and packed.
# (exit 77 = skipped)
#   gpu_rehearsal.sh KILN PYTHON
set -u
kiln=$1; py=$2; here=$(cd "$(dirname "$0")/.." && pwd)
shared=$(cd "$here/.." && pwd)/shared
[ -n "${KILN_DATA:-}" ] && [ -d "$KILN_DATA/cifar10" ] || { echo "SKIPPED: no CIFAR-10 under KILN_DATA"; exit 77; }
[ -f "$shared/device/on-device.sh" ] && [ -d "$shared/peers/airbench" ] || { echo "SKIPPED: no ../shared/device or ../shared/peers"; exit 77; }
"$py" -c 'import torch' 2>/dev/null || { echo "SKIPPED: no torch in $py"; exit 77; }
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# A tree as the GPU machine receives it: the scripts it runs, and the stand-in .device/.
tree=$d/tree; mkdir -p "$tree/.device/bin/lib" "$tree/.device/cifar-1" "$tree/.device/cifar-2" "$tree/.device/cifar-3"
cp -r "$here/bench" "$tree/bench"
cp "$kiln" "$tree/.device/bin/kiln"
# (CI's binary also links libheif, found here where it is installed; bench/gpu_stage.sh builds the
# device binary without it, -DKILN_WITH_HEIF=OFF, so these four are all it carries.)
for lib in libtomlplusplus.so.3 libstb.so.0 libwebp.so.7 libwebpdemux.so.2; do
  cp -L "$(ldd "$kiln" | awk -v l="$lib" '$1 == l { print $3 }')" "$tree/.device/bin/lib/" || fail "no $lib beside the binary"
done
cp "$shared/device/on-device.sh" "$tree/.device/"
cp -r "$shared/peers" "$tree/.device/peers"
echo rehearsal-commit > "$tree/.device/COMMIT"
src=$KILN_DATA/cifar10; small=$d/small; mkdir -p "$small"
for f in data_batch_1.bin data_batch_2.bin data_batch_3.bin data_batch_4.bin data_batch_5.bin test_batch.bin; do
  head -c $((600 * 3073)) "$src/$f" > "$small/$f"
done
cp "$src/batches.meta.txt" "$small/"
part() { local n=$1; shift; for f in "$@"; do xz -T1 -c --delta=dist=1 --lzma2=preset=6 "$small/$f" > "$tree/.device/cifar-$n/$f.xz"; done; }
part 1 data_batch_1.bin data_batch_2.bin
part 2 data_batch_3.bin data_batch_4.bin
part 3 data_batch_5.bin test_batch.bin
cp "$small/batches.meta.txt" "$tree/.device/cifar-3/"
(cd "$small" && md5sum data_batch_*.bin test_batch.bin) > "$tree/.device/cifar-3/MD5SUMS"

# The three calls, back to back, each with its own $OUT (as the run tool gives), the machine's
# $HOME shared between them (what survives between back-to-back calls).
export HOME=$d/home KILN_PYTHON=$py KILN_GPU_DRY=1 KILN_GPU_DEVICE=cpu KILN_GPU_RUNS=2 KILN_CAMPAIGN_SECONDS=300 KILN_PACK_EVERY=5
mkdir -p "$HOME"
for n in 1 2 3; do
  OUT=$d/out-$n bash "$tree/bench/gpu_call.sh" "$n" > "$d/call-$n.log" 2>&1 || { cat "$d/call-$n.log"; fail "call $n exit"; }
done
grep -q "kiln: prebuilt binary" "$d/out-1/call-1.txt" || { cat "$d/call-1.log"; fail "call 1 did not start the prebuilt binary"; }
grep -q "data part 2 in" "$d/out-2/call-2.txt" || { cat "$d/call-2.log"; fail "call 2 did not unpack part 2"; }
out=$d/out-3
[ "$(ls -A "$out" | sort | tr '\n' ' ')" = "gpu.log results.tar.gz table.md " ] || fail "call 3's \$OUT holds $(ls -A "$out"), not the three packed files"
for f in results.tar.gz gpu.log table.md; do [ -s "$out/$f" ] || { cat "$d/call-3.log"; fail "no $f in \$OUT"; }; done
[ "$(find "$out" -mindepth 1 -type d | wc -l)" = 0 ] || fail "folders in \$OUT: $(find "$out" -mindepth 1 -type d)"
mkdir "$d/unpacked" && tar xzf "$out/results.tar.gz" -C "$d/unpacked" || fail "results.tar.gz does not unpack"
r=$d/unpacked/results
grep -q "CIFAR-10 checked" "$r/call-3.txt" || fail "the MD5 check did not pass: $(cat "$r/call-3.txt")"
grep -q "kiln: prebuilt binary" "$r/call-3.txt" || fail "call 3 did not use the prebuilt binary"
grep -qE "campaign exit 0; packed [1-9][0-9]* times while it ran" "$r/call-3.txt" || fail "no pack while the campaign ran: $(cat "$r/call-3.txt")"
for f in campaign.txt md5.txt kiln-start-3.txt data-3.txt; do [ -s "$r/$f" ] || fail "no $f in the archive"; done
for f in bench-cifar10-94 bench-cifar10-94-muon bench-cifar10-96-faster bench-cifar10-myrtle-94 bench-cifar10-resnet9-baseline real-airbench94 real-airbench94_muon real-airbench96_faster; do
  [ -s "$r/$f.json" ] || { cat "$out/gpu.log"; fail "no $f.json in the archive"; }
done
ls "$r"/bench-cifar10-94*-fusedcuda.json > /dev/null 2>&1 || fail "no train.fused_cuda rerun of the faster preset"
grep -q '"passed": true' "$r/fused-check.json" || fail "kiln fused-check (emulated) did not pass: $(cat "$r/fused-check.log")"
grep -q "The fused GPU operator (.train.fused_cuda., .kiln fused-check., host emulation, batch 8): 23 of 23" "$out/table.md" \
  || fail "table.md lacks the fused check's verdict: $(cat "$out/table.md")"
# the peaks measured once, by the first bench, and read from its JSON by the later ones (--peaks-from)
"$py" - "$r" <<'PY' || fail "the benches' peaks"
import glob, json, os, sys
r = sys.argv[1]
first = json.load(open(f"{r}/bench-cifar10-94.json"))
assert first["peaks_from"] == "measured", first["peaks_from"]
later = {os.path.basename(p): json.load(open(p))["peaks_from"] for p in sorted(glob.glob(f"{r}/bench-*.json")) if not p.endswith("/bench-cifar10-94.json")}
reused = [n for n, f in later.items() if f.endswith("/bench-cifar10-94.json")]
assert len(reused) >= 4, later
# the rehearsal's NCHW baseline: refused the channels_last peaks, ran again measuring its own
assert later["bench-cifar10-resnet9-baseline.json"] == "measured", later
print("peaks measured by bench-cifar10-94.json, read by", ", ".join(reused), "; measured again by", [n for n in later if n not in reused])
PY
[ -s "$r/pool-bench.json" ] || { cat "$r/pool-bench.log"; fail "no pool-bench.json (bench/pool_bench.py)"; }
[ -s "$r/kernels-cifar10-94.csv" ] || [ -s "$r/kernels-cifar10-94-muon.csv" ] || fail "no profile"
for c in "kiln cifar10-resnet9-baseline: kiln: error: --peaks-from" "again, measuring them" "check eager: ok" "check static: ok" "check graph: ok" "check fused: ok" "static vs graph, epoch 2" "run count 25 -> 2" "run count 200 -> 2"; do
  grep -q "$c" "$out/gpu.log" || { cat "$out/gpu.log"; fail "no '$c' in gpu.log"; }
done
grep -q "for run in range(2)" "$r/scratch-airbench94_muon.py" || fail "the scratch copy's run count was not edited"
cmp -s "$shared/peers/airbench/airbench94_muon.py" "$tree/.device/peers/airbench/airbench94_muon.py" || fail "the carried script changed"
"$py" - "$r/real-airbench94_muon.json" <<'PY' || fail "the parsed table"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["real"] and j["runs"] == 2 and j["per_run"]["run"] == [0, 1], j
# the stand-ins: the published 94.01% and 2.59 s, then +0.1 point and +0.01 s for run 1
assert abs(j["test_acc"]["mean"] - 0.9406) < 1e-9 and abs(j["seconds"]["mean"] - 2.595) < 1e-9, j
assert "rehearsal" in j
assert j["mean_check"] == "the parsed runs' mean is the script's printed Mean", j["mean_check"]
PY
cat "$out/table.md"
for row in '| kiln `cifar10-94` |' '| kiln `cifar10-94-muon` |' '| kiln `cifar10-96-faster` |' '| real airbench94_muon.py (REHEARSAL' \
           '| real airbench96_faster.py (REHEARSAL' 'yardstick real airbench94_muon.py' 'rehearsal-commit'; do
  grep -qF -- "$row" "$out/table.md" || fail "the table lacks '$row'"
done

# Call 4, right after: step f alone on the data the first three left, packed alike.
OUT=$d/out-4f KILN_CAMPAIGN_SECONDS=120 bash "$tree/bench/gpu_call.sh" 4 > "$d/call-4f.log" 2>&1 || { cat "$d/call-4f.log"; fail "call 4 exit"; }
[ "$(ls -A "$d/out-4f" | sort | tr '\n' ' ')" = "gpu.log results.tar.gz table.md " ] || fail "call 4's \$OUT holds $(ls -A "$d/out-4f")"
mkdir "$d/unpacked-4f" && tar xzf "$d/out-4f/results.tar.gz" -C "$d/unpacked-4f" || fail "call 4's archive does not unpack"
grep -q "campaign: steps f, budget 120 s" "$d/unpacked-4f/results/call-4.txt" || fail "call 4 did not run step f alone: $(cat "$d/unpacked-4f/results/call-4.txt")"
grep -q "CIFAR-10 checked" "$d/unpacked-4f/results/call-4.txt" || fail "call 4 did not find the data calls 1-3 left"
[ "$(ls "$d/unpacked-4f/results" | grep -c '^bench-.*\.json$')" = 1 ] && [ -s "$d/unpacked-4f/results/bench-cifar10-96-faster.json" ] &&
  [ -s "$d/unpacked-4f/results/real-airbench96_faster.json" ] || fail "call 4 ran other steps than f: $(ls "$d/unpacked-4f/results")"

# Step h, named alone in a call 4 (a window's spare minutes): the airbench94 ablation, one tiny
# run a row; its table and JSON come back, its run folders (checkpoints) stay out of the pack.
OUT=$d/out-4h KILN_CAMPAIGN_STEPS=h KILN_CAMPAIGN_SECONDS=120 bash "$tree/bench/gpu_call.sh" 4 > "$d/call-4h.log" 2>&1 || { cat "$d/call-4h.log"; fail "call 4 (step h) exit"; }
mkdir "$d/unpacked-4h" && tar xzf "$d/out-4h/results.tar.gz" -C "$d/unpacked-4h" || fail "call 4 (step h)'s archive does not unpack"
rh=$d/unpacked-4h/results
[ "$(grep -c "^| " "$rh/ablation-airbench94.md" 2>/dev/null)" = 13 ] || { cat "$rh/ablation-airbench94.log" "$d/out-4h/gpu.log"; fail "the ablation's table has not a header and 12 rows"; }
grep -q '| Δ vs first row | p (Welch) |' "$rh/ablation-airbench94.md" || fail "the ablation's rows are not compared with the first"
grep -q '^| no dirac init | 1 |' "$d/out-4h/gpu.log" || fail "the ablation's last row is not in gpu.log"
! grep -q 'replaces what' "$rh/ablation-airbench94.log" || fail "the rehearsal's settings replaced a row's own: $(grep 'replaces what' "$rh/ablation-airbench94.log")"
"$py" - "$rh/ablation-airbench94.json" <<'PY' || fail "the ablation's JSON"
import json, sys
rows = json.load(open(sys.argv[1]))
assert len(rows) == 12 and all(len(r["test_acc"]) == 1 for r in rows), rows
assert rows[0]["compared_with"] is None and {r["compared_with"] for r in rows[1:]} == {rows[0]["name"]}, rows
# the two TTA rows trained nothing: the whole recipe's network, evaluated again
assert [r["name"] for r in rows if "networks_of" in r] == ["TTA: mirror only (tta_level 1)", "no TTA (tta_level 0)"], rows
assert all(r["networks_of"] == rows[0]["name"] and r["train_seconds"] == rows[0]["train_seconds"] for r in rows[2:4]), rows
PY
[ -z "$(tar tzf "$d/out-4h/results.tar.gz" | grep -E '\.pt$|row-[0-9]')" ] || fail "the ablation's runs were packed"
[ -s "$HOME/kiln-window/ablation/row-11/run-00/config.toml" ] || fail "the ablation's runs are not in \$HOME/kiln-window/ablation"

# The hard stop: a campaign that hangs (here a kiln whose every command but --version hangs) is
# stopped, with what it started, its budget plus the grace after the start, and packed.
printf '#!/bin/sh\n[ "$1" = --version ] && { echo "kiln (a stand-in that hangs)"; exit 0; }\nexec sleep 600\n' > "$tree/.device/bin/kiln"
t0=$(date +%s)
OUT=$d/out-hang KILN_CAMPAIGN_SECONDS=6 KILN_HARD_STOP_GRACE=4 KILN_PACK_EVERY=3 bash "$tree/bench/gpu_call.sh" 3 > "$d/call-hang.log" 2>&1
took=$(( $(date +%s) - t0 ))
[ "$took" -lt 25 ] || { cat "$d/call-hang.log"; fail "the hung campaign held call 3 for $took s (stop at 10 s)"; }
mkdir "$d/unpacked-hang" && tar xzf "$d/out-hang/results.tar.gz" -C "$d/unpacked-hang" || fail "no archive after the hard stop"
grep -q "campaign cut by the hard stop at 10 s" "$d/unpacked-hang/results/call-3.txt" || fail "the hard stop is not noted: $(cat "$d/unpacked-hang/results/call-3.txt")"
grep -q "a stand-in that hangs" "$d/out-hang/gpu.log" || fail "the hung campaign's gpu.log did not come back"
! pgrep -fx "sleep 613" > /dev/null || fail "the hung kiln outlived the hard stop"
echo "PASS: the three calls, the dry campaign and the packing; a hung campaign stopped in $took s and packed"
