#!/usr/bin/env bash
# Runs every libFuzzer target for a bounded time from a fresh seed corpus and fails on any
# crash, sanitizer report, leak or hang (libFuzzer exits non-zero and writes the input as
# crash-*/leak-*/timeout-*: add it to tests/fuzz_regressions/<target>/ once fixed).
#   fuzz/run.sh BUILD_DIR SECONDS_PER_TARGET [OUT_DIR]
# Prints, per target: executions, seconds, corpus size; writes OUT_DIR/fuzz-summary.json.
set -uo pipefail
build=$(cd "${1:?usage: fuzz/run.sh BUILD_DIR SECONDS [OUT_DIR]}" && pwd)
secs=${2:?usage: fuzz/run.sh BUILD_DIR SECONDS [OUT_DIR]}
here=$(cd "$(dirname "$0")/.." && pwd)
out=${3:-$(mktemp -d)}
mkdir -p "$out"
out=$(cd "$out" && pwd)  # the targets run inside it
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
# LeakSanitizer stays on; fuzz/lsan.supp names the leaks that are LibTorch's, not kiln's.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$here/fuzz/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
"$build/fuzz/fuzz_make_seeds" "$out/seeds" "$here/configs" >/dev/null 2>&1 || { echo "fuzz: seed generation failed"; exit 1; }
fail=0
echo "[" > "$out/fuzz-summary.json"
first=1
for t in cifar10 idx image config checkpoint model digits; do
  corpus="$out/corpus-$t"
  mkdir -p "$corpus"
  cp "$out/seeds/$t"/* "$corpus/" 2>/dev/null
  # Regression inputs found earlier run first (as corpus entries).
  [ -d "$here/tests/fuzz_regressions/$t" ] && cp "$here/tests/fuzz_regressions/$t"/* "$corpus/" 2>/dev/null
  # WebP, HEIF and AVIF seeds: the small files Pillow and pillow-heif wrote for tests/test_webp.cpp
  # (still, alpha, lossy, animated, EXIF) and tests/test_heif.cpp (HEVC and AV1, lossless and lossy,
  # alpha, grey, 10 bits, rotated).
  if [ "$t" = image ]; then
    for f in "$here"/tests/webp/*.webp "$here"/tests/heif/*.heic "$here"/tests/heif/*.avif; do
      [ ! -f "$f" ] || [ "$(stat -c %s "$f")" -gt 4096 ] || cp "$f" "$corpus/"
    done
  fi
  extra=()
  [ "$t" = config ] && extra=(-dict="$here/fuzz/config.dict")
  # The seed checkpoint (a tiny run's) is ~86 KB: libFuzzer's default limit would cut every input
  # short of the zip directory at its end, and LibTorch would refuse them all unread.
  # And an allocation over 1 GiB fails (std::bad_alloc) as in a process with that much memory:
  # LibTorch's unpickler allocates what a pickle names (a memo index of 1.2 billion: 19.6 GB,
  # docs/reliability.md), which no CRC-32 catches in a crafted file.
  asan=$ASAN_OPTIONS
  [ "$t" = checkpoint ] && extra=(-max_len=262144) && asan="$ASAN_OPTIONS:max_allocation_size_mb=1024"
  (cd "$out" && ASAN_OPTIONS=$asan "$build/fuzz/fuzz_$t" "$corpus" -max_total_time="$secs" -timeout=20 -rss_limit_mb=4096 \
     -print_final_stats=1 "${extra[@]}" > "$out/fuzz-$t.log" 2>&1)
  rc=$?
  runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$out/fuzz-$t.log" | tail -1)
  n=$(ls "$corpus" | wc -l)
  status=ok
  if [ $rc != 0 ]; then status="FAILED (exit $rc)"; fail=1; grep -E "ERROR|SUMMARY|Test unit written" "$out/fuzz-$t.log" | head -5; fi
  printf 'fuzz_%-11s %10s executions in %s s, corpus %4d inputs: %s\n' "$t" "${runs:-?}" "$secs" "$n" "$status"
  [ $first = 1 ] || echo "," >> "$out/fuzz-summary.json"
  first=0
  printf '{"target": "%s", "executions": %s, "seconds": %s, "corpus": %d, "exit": %d}' "$t" "${runs:-0}" "$secs" "$n" "$rc" >> "$out/fuzz-summary.json"
done
echo "]" >> "$out/fuzz-summary.json"
exit $fail
