// The launches of the fused pool -> BatchNorm -> GELU operator (kiln/nn/fused_gpu.h), one table of
// functions a backend: CUDA's kernels (kiln/cuda/fused_kernels.cu, where LibTorch has CUDA), the
// host's emulation of them (kiln/nn/fused_host.cpp: every work item of a launch in turn, the same
// bodies, kiln/nn/fused_body.h), and the kernels' own source run on the host
// (kiln/nn/fused_cuda_on_host.cpp). Plain pointers and sizes, no LibTorch: nvcc compiles the CUDA
// table without it. Pointers are the device's (the host's for the emulation); `stream` is the
// cudaStream_t to launch on (ignored by the emulation). Every launch is asynchronous: none waits for
// the device, none reads a value back. A launch that fails throws std::runtime_error.
#pragma once
#include <cstdint>

#include "kiln/nn/fused_body.h"

namespace kiln::fused {

enum class Dtype { kFloat32, kFloat16, kBFloat16 };

struct Launch {
  const char* name;  // "cuda", "host emulation" or "CUDA source on the host"
  // Every launch but the finishing ones runs chunks x C work items (kiln/nn/fused_body.h, Walk).
  // Forward in training: y = pool(x) and the chunks' partial sums (part1, part2: chunks x C floats).
  void (*stats)(Dtype, const Shape&, const Chunks&, const void* x, void* y, float* part1, float* part2, void* stream);
  // The batch statistics (mean, rstd, scale, shift: C floats) from the partials; the running
  // statistics updated in place.
  void (*finish_stats)(Dtype, const Shape&, const Chunks&, const void* x, const float* part1, const float* part2,
                       const float* weight, const float* bias, float* running_mean, float* running_var, float* mean,
                       float* rstd, float* scale, float* shift, double momentum, double eps, void* stream);
  // z = GELU(y scale + shift [+ res]); res may be null.
  void (*bn_gelu)(Dtype, const Shape&, const Chunks&, const void* y, const void* res, void* z, const float* scale,
                  const float* shift, void* stream);
  // Evaluation: scale and shift from the running statistics, then z = GELU(pool(x) scale + shift [+ res]).
  void (*eval_coeffs)(int64_t C, const float* weight, const float* bias, const float* running_mean,
                      const float* running_var, double eps, float* scale, float* shift, void* stream);
  void (*pool_bn_gelu)(Dtype, const Shape&, const Chunks&, const void* x, const void* res, void* z, const float* scale,
                       const float* shift, void* stream);
  // Backward: g = dz GELU'(.) and the chunks' partial sums of g and g (y - mean).
  void (*grad_sums)(Dtype, const Shape&, const Chunks&, const void* dz, const void* y, const void* res, void* g,
                    const float* scale, const float* shift, const float* mean, float* part1, float* part2,
                    void* stream);
  // B, D, dweight, dbias (C floats each) from the partials.
  void (*finish_grads)(const Shape&, const Chunks&, const float* part1, const float* part2, const float* scale,
                       const float* rstd, float* B, float* D, float* dweight, float* dbias, void* stream);
  // dx from g (dx zeroed first by the caller where H or W is odd and the pool drops a row or column).
  void (*input_grad)(Dtype, const Shape&, const Chunks&, const void* x, const void* y, const void* g, void* dx, const float* A,
                     const float* B, const float* D, const float* mean, void* stream);
};

// Bytes the operator's kernels load and store in global memory, counted from their code (every
// load and store once, caches ignored; the per-channel vectors, a few times C floats, left out), for
// elements of elem_bytes: in training one forward (stats, finish_stats, bn_gelu) and one backward
// (dx zeroed where H or W is odd, grad_sums, finish_grads, input_grad), in evaluation the forward
// (pool_bn_gelu). With E the pooled elements: the pool's windows read 4E, the chunks' partial sums
// 2 x chunks x C floats written and read again in each direction.
struct Traffic {
  int64_t forward = 0, backward = 0;
};
inline Traffic traffic(const Shape& s, const Chunks& ch, int64_t elem_bytes, bool residual, bool training) {
  const int64_t E = s.count() * s.C * elem_bytes;  // the pooled tensor (y, z, g, dz, a residual)
  const int64_t X = s.N * s.H * s.W * s.C * elem_bytes;  // the block's input
  const int64_t in = s.pool ? 4 * E : E;  // what reading every window of x takes
  const int64_t R = residual ? E : 0;
  Traffic t;
  if (!training) {
    t.forward = in + R + E;  // pool_bn_gelu: x [+ res] -> z
    return t;
  }
  const int64_t partials = 2 * ch.chunks * s.C * static_cast<int64_t>(sizeof(float));
  t.forward = (in + (s.pool ? E : 0) + partials)  // stats: x -> y (where pooling), partial sums
              + partials                           // finish_stats
              + (E + R + E);                       // bn_gelu: y [+ res] -> z
  const bool odd = s.pool && (s.H % 2 != 0 || s.W % 2 != 0);
  t.backward = (odd ? X : 0)                         // dx zeroed
               + (E + E + R + E + partials)          // grad_sums: dz, y [+ res] -> g, partial sums
               + partials                            // finish_grads
               + (E + E + (s.pool ? in : 0) + in);   // input_grad: g, y (and x where pooling) -> dx
  return t;
}

// The host's emulation (always built).
const Launch& host_launch();
// CUDA's kernels as their source is written (kiln/cuda/fused_kernels.cu), compiled for the host and
// run there thread by thread, with its grids, shared memory and barriers (kiln/core/cuda_on_host.h;
// always built; slow: for the tests).
const Launch& cuda_source_on_host();
#ifdef KILN_HAS_FUSED_CUDA
// CUDA's kernels (built where LibTorch has CUDA and the build is not sanitized: kiln/cuda/fused_kernels.cu).
const Launch& cuda_launch();
#endif

}  // namespace kiln::fused
