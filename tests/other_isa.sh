#!/usr/bin/env bash
# The numerical tests once more on "another CPU" (issue #27): the same binary with the kernels
# of a lower instruction set, chosen by the switches LibTorch 2.11.0's libraries honour:
#   ATEN_CPU_CAPABILITY      ATen's vectorised kernels (default, avx2, avx512)
#   ONEDNN_MAX_CPU_ISA       oneDNN's convolutions and bf16 paths (SSE41, AVX2, AVX512_CORE, ...)
#   MKL_ENABLE_INSTRUCTIONS  MKL's fp32 matrix products (SSE4_2, AVX2, AVX512, ...)
# On an AVX-512 machine the tests run with AVX2 kernels; on an AVX2 machine with SSE4 ones. So a
# bound tuned to one instruction set fails here, on any CI machine, rather than on the next
# machine only. Before the tests it checks, from each library's own report (`kiln env`), that
# the kernels really changed. Exit 77 = skipped (no lower instruction set to choose).
# Usage: other_isa.sh KILN KILN_TESTS GTEST_FILTER
set -euo pipefail
kiln=$1; tests=$2; filter=$3
native=$("$kiln" env)
echo "native kernels:"; echo "$native"
aten=$(sed -n 's/^aten: //p' <<<"$native")
case "$aten" in
  AVX512) export ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2;;
  AVX2)   export ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 MKL_ENABLE_INSTRUCTIONS=SSE4_2;;
  *) echo "SKIPPED: ATen runs '$aten' kernels here; there is no lower instruction set to choose"; exit 77;;
esac
other=$("$kiln" env)
echo "kernels for this run:"; echo "$other"
for lib in aten onednn mkl; do
  a=$(sed -n "s/^$lib: //p" <<<"$native"); b=$(sed -n "s/^$lib: //p" <<<"$other")
  if [ "$lib" = mkl ] && [ "$a" = "Intel(R) Architecture processors" ]; then
    # MKL's report on a CPU it does not tune for (an AMD EPYC): no instruction set named, before
    # or after the switch, so there is nothing to check it by; ATen's and oneDNN's kernels did change.
    echo "note: MKL names no instruction set on this CPU ('$a'); its switch is not checked"; continue
  fi
  if [ "$a" = "$b" ]; then echo "FAIL: $lib's kernels did not change ($a): the switch was not honoured"; exit 1; fi
done
exec "$tests" --gtest_filter="$filter"
