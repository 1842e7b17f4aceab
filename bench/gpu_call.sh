#!/usr/bin/env bash
# One of the GPU window's calls (issue #19; docs/gpu.md), on the GPU machine, in its copy
# of the tree, with what bench/gpu_stage.sh staged in .device/ carried beside it. Idempotent.
#   call 1: data part 1 into $HOME/kiln-data; the prebuilt binary's start is checked, and when it
#           does not start the device build runs (on-device.sh deps build) in its place;
#   call 2: data part 2;
#   call 3: data part 3, the MD5 check, the campaign (bench/gpu.sh, KILN_CAMPAIGN_SECONDS) with
#           the prebuilt binary (or the device build), its results and the call's notes in
#           $HOME/kiln-window-3/results, outside $OUT; every 15 s and at the end they are packed into $OUT:
#           results.tar.gz (every JSON, log and CSV, the notes), gpu.log and table.md
#           (bench/perf_table.py), each replaced whole (written beside, then renamed), so a call
#           the run tool cuts still brings back the last pack. The campaign is stopped hard
#           (its process group) KILN_HARD_STOP_GRACE s (25) after its budget, then packed;
#   call 4: (optional, right after call 3, with what is left of the window) the campaign's step f
#           alone on the data calls 1-3 left (KILN_CAMPAIGN_STEPS, default "f";
#           KILN_CAMPAIGN_SECONDS, default 170), in $HOME/kiln-window-4/results, packed alike.
#   bash bench/gpu_call.sh N
# Environment: OUT (the run tool's output folder), KILN_DEVICE_DIR (default .device),
# KILN_CAMPAIGN_STEPS (bench/gpu.sh's steps), KILN_CAMPAIGN_SECONDS (default 480), KILN_HARD_STOP_GRACE (default 25), KILN_PACK_EVERY
# (default 15), KILN_PYTHON (default python3), and for the CPU rehearsal KILN_GPU_DRY=1 and
# KILN_GPU_DEVICE=cpu (tests/gpu_rehearsal.sh).
# The window of 2026-12-04 (H200) ran calls 1-3 of the version before: its call 3 ran past the
# call's limit (a real script past its own) before packing, so only 8 loose files came back.
set -uo pipefail
n=${1:?usage: bench/gpu_call.sh 1|2|3|4}
here=$(cd "$(dirname "$0")/.." && pwd); cd "$here"
dev=${KILN_DEVICE_DIR:-.device}
out=${OUT:?set OUT to the output folder}
py=${KILN_PYTHON:-python3}
data=$HOME/kiln-data
mkdir -p "$out"
# The call's notes: in $OUT for calls 1 and 2; for call 3 beside the results, which are packed.
notes=$out
case $n in 3|4) notes=$HOME/kiln-window-$n/results; rm -rf "$notes"; mkdir -p "$notes";; esac
say() { echo "[gpu_call $n] $*" | tee -a "$notes/call-$n.txt"; }

# The device's torch and CUDA libraries, then the carried toml++, stb and libwebp, for the prebuilt binary.
torch_libs() {
  "$py" - <<'PY'
import glob, os, torch
site = os.path.dirname(os.path.dirname(torch.__file__))
print(":".join([os.path.join(os.path.dirname(torch.__file__), "lib")] + sorted(glob.glob(os.path.join(site, "nvidia", "*", "lib")))))
PY
}
# Which kiln to use: the prebuilt binary when it starts, else the device build ($HOME/kiln-build).
pick_kiln() {
  if [ -x "$dev/bin/kiln" ]; then
    local libs; libs="$(torch_libs):$here/$dev/bin/lib"
    if LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$dev/bin/kiln" --version > "$notes/kiln-start-$n.txt" 2>&1; then
      export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
      KILN_BIN=$here/$dev/bin/kiln; KILN_PATH_TAKEN="prebuilt binary ($(cat "$notes/kiln-start-$n.txt"))"; return 0
    fi
    say "the prebuilt binary does not start: $(tail -2 "$notes/kiln-start-$n.txt" | tr '\n' ' ')"
  fi
  if [ ! -x "$HOME/kiln-build/kiln" ]; then
    say "building on the device (.device/on-device.sh deps build): minutes of the window"
    KILN_CMAKE_ARGS="-DKILN_WITH_FETCH=OFF -DKILN_WITH_ONNX=OFF -DKILN_WITH_HEIF=OFF -DKILN_BUILD_TESTS=OFF -DKILN_WASM=OFF -DKILN_NATIVE_LECUN=OFF -DKILN_GIT_COMMIT_OVERRIDE=$(cat "$dev/COMMIT" 2>/dev/null || echo unknown)" \
      bash "$dev/on-device.sh" deps build > "$notes/device-build.log" 2>&1 || { say "the device build failed (device-build.log)"; return 1; }
  fi
  KILN_BIN=$HOME/kiln-build/kiln; KILN_PATH_TAKEN="device build ($("$KILN_BIN" --version 2>&1))"
}
data_part() {
  if [ -d "$dev/cifar-$1" ]; then
    bash "$dev/on-device.sh" data "$1" > "$notes/data-$1.txt" 2>&1 || { say "data part $1 failed: $(tail -2 "$notes/data-$1.txt")"; return 1; }
    say "data part $1 in $data/cifar10: $(ls "$data/cifar10" | tr '\n' ' ')"
  else
    say "no $dev/cifar-$1 carried in this call"
  fi
}

# The campaign (bench/gpu.sh) with the steps given, its results in $notes, packed into $OUT every
# KILN_PACK_EVERY s and at the end, stopped hard KILN_HARD_STOP_GRACE s after its budget.
run_campaign() {
  local steps=$1 budget=$2 results=$notes
  (cd "$data/cifar10" && md5sum -c MD5SUMS > "$notes/md5.txt" 2>&1) && say "CIFAR-10 checked (MD5SUMS)" ||
    say "MD5 check FAILED ($(grep -v ': OK' "$notes/md5.txt" | head -3 | tr '\n' ' ')): a part is missing or the calls were not back to back"
  pick_kiln || exit 1
  say "kiln: $KILN_PATH_TAKEN"
  local stop=$(( budget + ${KILN_HARD_STOP_GRACE:-25} ))
  # pack: the results folder into $OUT, each file written beside and renamed into place
  pack() {
    "$py" bench/perf_table.py "$results" > "$out/.table.md.part" 2> "$results/table-errors.txt" &&
      mv "$out/.table.md.part" "$out/table.md"
    [ -f "$results/gpu.log" ] && cp "$results/gpu.log" "$out/.gpu.log.part" && mv "$out/.gpu.log.part" "$out/gpu.log"
    tar czf "$out/.results.tar.gz.part" -C "$(dirname "$results")" "$(basename "$results")" &&
      mv "$out/.results.tar.gz.part" "$out/results.tar.gz"
  }
  say "campaign: steps $steps, budget $budget s, hard stop at $stop s"
  # timeout runs the campaign in its own process group and signals the whole group at the stop
  KILN_BIN=$KILN_BIN KILN_PEERS=$here/$dev/peers KILN_PYTHON=$py KILN_COMMIT=$(cat "$dev/COMMIT" 2>/dev/null || echo unknown) \
    KILN_CAMPAIGN_STEPS=$steps timeout -k 5 "$stop" bash bench/gpu.sh "$results" "$budget" "$data" > "$results/campaign.txt" 2>&1 &
  local campaign=$! packs=0 last; last=$(date +%s)
  while kill -0 "$campaign" 2>/dev/null; do
    sleep 1
    if [ $(( $(date +%s) - last )) -ge "${KILN_PACK_EVERY:-15}" ]; then pack; packs=$((packs + 1)); last=$(date +%s); fi
  done
  wait "$campaign"; local rc=$?
  if [ $rc = 124 ] || [ $rc = 137 ]; then say "campaign cut by the hard stop at $stop s (exit $rc); packed $packs times while it ran"
  else say "campaign exit $rc; packed $packs times while it ran"; fi
  pack
  ls -la "$out"
}

case $n in
  1)
    data_part 1
    pick_kiln && say "kiln: $KILN_PATH_TAKEN"
    ;;
  2)
    data_part 2
    ;;
  3)
    data_part 3
    run_campaign "${KILN_CAMPAIGN_STEPS:-a b c d e e2 f g}" "${KILN_CAMPAIGN_SECONDS:-480}"
    ;;
  4)  # what is left of the window after call 3, on the data still there: step f by default
    run_campaign "${KILN_CAMPAIGN_STEPS:-f}" "${KILN_CAMPAIGN_SECONDS:-170}"
    ;;
  *) echo "usage: bench/gpu_call.sh 1|2|3|4"; exit 2;;
esac
