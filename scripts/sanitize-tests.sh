#!/usr/bin/env bash
# Runs kiln's tests under ASan + UBSan (the build of `make fuzz`/`make sanitize`, -DKILN_FUZZ=ON
# or -DKILN_SANITIZE=ON). The subset: every unit test except the real-data trainings and the
# fp16 recipe test's 40 trainings (minutes each under the sanitizers; the paths they take, the
# static step, Lookahead, Muon and the proxy filter, run here in their own tests), and the CLI
# tests that time or train at length; plus the bad-input corpus and the crash tests'
# lock/full-disk paths through the sanitized kiln binary.
#   scripts/sanitize-tests.sh BUILD_DIR
set -uo pipefail
build=${1:?usage: scripts/sanitize-tests.sh BUILD_DIR}
here=$(cd "$(dirname "$0")/.." && pwd)
# LibTorch's own (uninstrumented) allocations at exit are not kiln's leaks: leak checking stays
# on for the fuzzers (fuzz/run.sh), off here.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
t0=$(date +%s)
# Left out besides: three tests whose code paths other tests here cover (measured under ASan on
# an Intel Xeon, 2026-11-30: 25 s, 25 s and 22 s): the static step against the eager path
# (StaticStep.CudaGraphOnTheCpu... and .ResumesExactly run the static step), the sync audit of
# every training path (SyncAudit.SeesTheOperatorsThatSynchroniseOnCuda runs its observers), and
# the student's learning curve (the other SelfTrain tests run the student).
filter='-RealData.*:Precision.Bf16TrainingLearnsOnCpu:Airbench.EveryRecipeTrainsInFp16AsItWouldOnTheGpu:StaticStep.MatchesTheEagerPathForEveryRecipe:SyncAudit.EveryTrainingPathIsFreeOfThemOnTheCpu:SelfTrain.StudentLearnsFromThePseudoLabelsItIsGiven'
# Shards (googletest's GTEST_TOTAL_SHARDS/GTEST_SHARD_INDEX: test i goes to shard i mod the count),
# each on one LibTorch thread, as many at once as there are cores: these tests' tensors are small,
# so processes side by side finish sooner than threads in one (a 2-core Intel Xeon, 2026-12-03,
# bench/results/ci-sanitize-shards-2026-12-03-model167.json: one process on 2 threads 212 s, two
# shards 134 s and 140 s). Four shards a core, taken in turn as cores free up: with one a core, the
# split by index put 115 s on one shard and 181 s on the other once a few tests were added
# (2026-12-05, bench/results/ci-sanitize-pool-2026-12-05-model167.json). SANITIZE_SHARDS and
# SANITIZE_JOBS override.
jobs=${SANITIZE_JOBS:-$(nproc)}
shards=${SANITIZE_SHARDS:-$((4 * jobs))}
logs=$(mktemp -d); trap 'rm -rf "$logs"' EXIT
# The bad-input corpus (one sanitized kiln process a case, ~50 s alone) beside them: the stage
# took 190 s with it after the shards, 181 s with it beside them (same machine, same hour).
(python3 "$here/tests/bad_inputs.py" "$build/kiln" > "$logs/bad-inputs.log" 2>&1; echo $? > "$logs/bad-inputs.rc") &
bad=$!
shard() {  # shard $1: its log, and its exit status in shard-$1.rc
  GTEST_TOTAL_SHARDS=$shards GTEST_SHARD_INDEX=$1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} \
    "$build/tests/kiln_tests" --gtest_filter="$filter" --gtest_brief=1 > "$logs/shard-$1.log" 2>&1
  echo $? > "$logs/shard-$1.rc"
}
shards_running() { jobs -pr | grep -vxc "$bad"; }
for ((i = 0; i < shards; i++)); do
  while [ "$(shards_running)" -ge "$jobs" ]; do wait -n || true; done
  shard "$i" &
done
while [ "$(shards_running)" -gt 0 ]; do wait -n || true; done
failed=0
for ((i = 0; i < shards; i++)); do
  if [ "$(cat "$logs/shard-$i.rc" 2>/dev/null)" = 0 ]; then
    grep -E '^\[(==========|  PASSED  |  SKIPPED )\]' "$logs/shard-$i.log" | sed "s/^/shard $i: /"
  else
    echo "shard $i of $shards FAILED:"; cat "$logs/shard-$i.log"; failed=1
  fi
done
wait
if [ "$(cat "$logs/bad-inputs.rc" 2>/dev/null)" = 0 ]; then tail -n 1 "$logs/bad-inputs.log"
else echo "bad-input corpus FAILED:"; cat "$logs/bad-inputs.log"; failed=1; fi
[ "$failed" = 0 ] || exit 1
echo "sanitized tests: $(( $(date +%s) - t0 )) s"
