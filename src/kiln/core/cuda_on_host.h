// CUDA's kernel language on the host: what a .cu file's kernels need (the qualifiers, dim3,
// threadIdx/blockIdx/blockDim/gridDim, __shared__, __syncthreads, the launch, fp16/bf16 and the
// runtime's error calls) so that the same file compiles as host C++ and its launches run on the CPU,
// block after block, each thread of a block a fiber of its own, switched at __syncthreads. Why: a
// kernel no GPU has run yet (kiln/cuda/fused_kernels.cu) then runs in the CPU's tests as written,
// its grid, its thread indices and its shared-memory exchange included, under the sanitizers in
// the sanitized build.
//
// What a launch checks as a GPU would: the grid's and block's sizes (CUDA's limits: at most 1,024
// threads a block, 1,024 x 1,024 x 64, a grid of 2^31 - 1 x 65,535 x 65,535; a zero size is an
// invalid configuration, reported by cudaGetLastError and the launch skipped). What it checks that a
// GPU would not report: a __syncthreads that some threads of the block reach and others have
// returned before (divergent barriers; undefined on a GPU) throws std::logic_error.
// What it cannot see: a data race. Between two barriers the threads run one after another, in
// index order, or in reverse (set_schedule): results that differ between the two orders depend on
// the schedule (the tests run both). Shared memory is one static array per OS thread, zeroed once
// and kept from block to block (a GPU's is undefined at a block's start). Blocks run one at a time,
// in order or in reverse. A kernel whose first block never reaches __syncthreads runs its other
// blocks without fibers (one call per thread, fast); a barrier there then throws.
//
// Include this instead of CUDA's headers, then the .cu file; launch with
// KILN_CUDA_LAUNCH(kernel, grid, block, stream)(args...) (kernel<<<grid, block, 0, stream>>>(args...)
// under nvcc). The names it defines are brought into the global namespace of that one translation
// unit (compile it alone: SKIP_UNITY_BUILD_INCLUSION).
#pragma once
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cmath>
#include <cstdint>
#include <tuple>
#include <utility>

#include "kiln/core/host_grid.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
// one array per OS thread, shared by the fibers of the block it runs
#define __shared__ static thread_local

namespace kiln::cuda_host {

// fp16 and bf16 as CUDA's headers define them for device code: 16 bits, converted with round to
// nearest even (c10's conversions, which are CUDA's for every finite value and infinity; a NaN may
// come out with other payload bits).
struct __half {
  uint16_t x;
};
struct __nv_bfloat16 {
  uint16_t x;
};
inline float __half2float(__half h) { return c10::detail::fp16_ieee_to_fp32_value(h.x); }
inline __half __float2half_rn(float f) { return {c10::detail::fp16_ieee_from_fp32_value(f)}; }
inline float __bfloat162float(__nv_bfloat16 b) { return c10::detail::f32_from_bits(b.x); }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return {c10::detail::round_to_nearest_even(f)}; }

// KILN_CUDA_LAUNCH's object: binds the kernel, then runs it with the arguments converted to its
// parameters' types once, as a launch copies them.
struct Launch {
  dim3 grid, block;
  const char* name;
  template <class... P>
  auto of(void (*kernel)(P...)) const {
    return [kernel, l = *this](auto&&... args) {
      const std::tuple<P...> params(std::forward<decltype(args)>(args)...);
      run_grid(l.grid, l.block, l.name, [&] { std::apply(kernel, params); });
    };
  }
};

}  // namespace kiln::cuda_host

#define KILN_CUDA_LAUNCH(kernel, grid, block, stream) \
  ((void)(stream), ::kiln::cuda_host::Launch{grid, block, #kernel}.of(kernel))

using namespace kiln::cuda_host;  // NOLINT: the .cu file names them unqualified, as CUDA's built-ins
