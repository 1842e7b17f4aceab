#!/usr/bin/env bash
# Runs kiln's tests under ASan + UBSan (the build of `make fuzz`/`make sanitize`, -DKILN_FUZZ=ON
# or -DKILN_SANITIZE=ON). The subset: every unit test except the real-data trainings and the
# fp16 recipe test's 24 trainings (minutes each under the sanitizers; the paths they take, the
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
"$build/tests/kiln_tests" --gtest_filter='-RealData.*:Precision.Bf16TrainingLearnsOnCpu:Airbench.EveryRecipeTrainsInFp16AsItWouldOnTheGpu:StaticStep.MatchesTheEagerPathForEveryRecipe:SyncAudit.EveryTrainingPathIsFreeOfThemOnTheCpu:SelfTrain.StudentLearnsFromThePseudoLabelsItIsGiven' --gtest_brief=1 || exit 1
python3 "$here/tests/bad_inputs.py" "$build/kiln" | tail -1 || exit 1
echo "sanitized tests: $(( $(date +%s) - t0 )) s"
