// CUDA's launches of the fused pool -> BatchNorm -> GELU operator (kiln/nn/fused_gpu.h): each kernel
// gives one work item of kiln/nn/fused_body.h to each thread, and the statistics' finishing kernels
// add the chunks' partials over kLanes lanes in shared memory, in the order the host's emulation
// (kiln/nn/fused_host.cpp) adds them. No LibTorch here: nvcc compiles this file alone.
//
// The same file also compiles as host C++ (kiln/nn/fused_cuda_on_host.cpp, with
// kiln/core/cuda_on_host.h in place of CUDA's headers): there its launches run on the CPU thread by
// thread, grid, indices, shared memory and barriers as written here, and the CPU's tests hold them
// to the emulation bit for bit and to LibTorch's operators.
//
// NOT YET RUN ON A GPU. Written 2026-12-05 without one: it compiles (nvcc, sm_75/80/90), and the CPU's
// tests run this very source on the host (above); what no test here has seen is a GPU's own
// execution: its concurrency, its memory model, CUDA's erf and exp. The GPU window's campaign checks
// it against LibTorch's operators on the device before timing it (docs/gpu.md).
#ifdef KILN_CUDA_ON_HOST
#include "kiln/core/cuda_on_host.h"
#define KILN_FUSED_TABLE cuda_source_on_host
#define KILN_FUSED_TABLE_NAME "CUDA source on the host"
#else
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#define KILN_CUDA_LAUNCH(kernel, grid, block, stream) kernel<<<grid, block, 0, stream>>>
#define KILN_FUSED_TABLE cuda_launch
#define KILN_FUSED_TABLE_NAME "cuda"
#endif

#include <stdexcept>
#include <string>

#include "kiln/nn/fused_launch.h"

namespace kiln::fused {

template <>
struct Elem<__half> {
  static __host__ __device__ __forceinline__ float load(__half v) { return __half2float(v); }
  static __host__ __device__ __forceinline__ __half store(float v) { return __float2half_rn(v); }
};
template <>
struct Elem<__nv_bfloat16> {
  static __host__ __device__ __forceinline__ float load(__nv_bfloat16 v) { return __bfloat162float(v); }
  static __host__ __device__ __forceinline__ __nv_bfloat16 store(float v) { return __float2bfloat16_rn(v); }
};

namespace {

constexpr int kThreads = 256;  // a block of the element and item kernels

void check_launch(const char* what) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess)
    throw std::runtime_error(std::string("kiln: the fused CUDA operator's ") + what + " kernel did not launch: " +
                             cudaGetErrorString(e));
}

// Blocks for n items, one thread an item in a grid-stride loop (the grid capped at 2^20 blocks).
unsigned blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < (int64_t{1} << 20) ? (b > 0 ? b : 1) : (int64_t{1} << 20));
}

template <class F>
__device__ __forceinline__ void each_item(int64_t n, const F& f) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    f(i);
}

template <class F>
void on_type(Dtype d, const F& f) {
  switch (d) {
    case Dtype::kFloat32: f(float{}); break;
    case Dtype::kFloat16: f(__half{}); break;
    case Dtype::kBFloat16: f(__nv_bfloat16{}); break;
  }
}

template <class T>
__global__ void stats_kernel(Shape s, Chunks ch, const T* KILN_RESTRICT x, T* KILN_RESTRICT y,
                             float* KILN_RESTRICT part1, float* KILN_RESTRICT part2) {
  each_item(ch.chunks * s.C, [&](int64_t i) { stats_item(s, ch, x, y, part1, part2, i); });
}

// The chunks' partials of kLaneChannels channels a block: thread (tx, ty) sums lane ty of channel
// kLaneChannels blockIdx.x + tx in double; thread row 0 then adds the lanes in order, as the
// emulation does. 8 channels a block (256 threads): C / 8 blocks, so that even the 64-channel
// blocks spread their partial sums' reads over 8 SMs (32 channels a block gave them 2).
constexpr int kLaneChannels = 8;
struct LaneSums {
  __device__ __forceinline__ bool run(const Shape& s, const Chunks& ch, const float* part1, const float* part2,
                                      int64_t* j, double* s1, double* s2) {
    __shared__ double sh1[kLanes][kLaneChannels + 1], sh2[kLanes][kLaneChannels + 1];
    const int tx = threadIdx.x, ty = threadIdx.y;
    *j = static_cast<int64_t>(blockIdx.x) * kLaneChannels + tx;
    double a1 = 0.0, a2 = 0.0;
    if (*j < s.C) lane_sums(s, ch, part1, part2, *j, ty, &a1, &a2);
    sh1[ty][tx] = a1;
    sh2[ty][tx] = a2;
    __syncthreads();
    if (ty != 0 || *j >= s.C) return false;
    double t1 = 0.0, t2 = 0.0;
    for (int lane = 0; lane < kLanes; ++lane) t1 += sh1[lane][tx], t2 += sh2[lane][tx];
    *s1 = t1;
    *s2 = t2;
    return true;
  }
};

template <class T>
__global__ void finish_stats_kernel(Shape s, Chunks ch, const T* x, const float* part1, const float* part2,
                                    const float* weight, const float* bias, float* running_mean, float* running_var,
                                    float* mean, float* rstd, float* scale, float* shift, double momentum, double eps) {
  int64_t j;
  double s1, s2;
  if (LaneSums{}.run(s, ch, part1, part2, &j, &s1, &s2))
    finish_stats(s, x, j, s1, s2, weight, bias, running_mean, running_var, mean, rstd, scale, shift, momentum, eps);
}

template <class T>
__global__ void bn_gelu_kernel(Shape s, Chunks ch, const T* KILN_RESTRICT y, const T* KILN_RESTRICT res,
                               T* KILN_RESTRICT z, const float* KILN_RESTRICT scale,
                               const float* KILN_RESTRICT shift) {
  each_item(ch.chunks * s.C, [&](int64_t i) { bn_gelu_item(s, ch, y, res, z, scale, shift, i); });
}

__global__ void eval_coeffs_kernel(int64_t C, const float* weight, const float* bias, const float* running_mean,
                                   const float* running_var, double eps, float* scale, float* shift) {
  each_item(C, [&](int64_t j) { eval_coeffs(weight, bias, running_mean, running_var, eps, scale, shift, j); });
}

template <class T>
__global__ void pool_bn_gelu_kernel(Shape s, Chunks ch, const T* KILN_RESTRICT x, const T* KILN_RESTRICT res,
                                    T* KILN_RESTRICT z, const float* KILN_RESTRICT scale,
                                    const float* KILN_RESTRICT shift) {
  each_item(ch.chunks * s.C, [&](int64_t i) { pool_bn_gelu_item(s, ch, x, res, z, scale, shift, i); });
}

template <class T>
__global__ void grad_sums_kernel(Shape s, Chunks ch, const T* KILN_RESTRICT dz, const T* KILN_RESTRICT y,
                                 const T* KILN_RESTRICT res, T* KILN_RESTRICT g, const float* KILN_RESTRICT scale,
                                 const float* KILN_RESTRICT shift, const float* KILN_RESTRICT mean,
                                 float* KILN_RESTRICT part1, float* KILN_RESTRICT part2) {
  each_item(ch.chunks * s.C,
            [&](int64_t i) { grad_sums_item(s, ch, dz, y, res, g, scale, shift, mean, part1, part2, i); });
}

__global__ void finish_grads_kernel(Shape s, Chunks ch, const float* part1, const float* part2, const float* scale,
                                    const float* rstd, float* B, float* D, float* dweight, float* dbias) {
  int64_t j;
  double sg, sgy;
  if (LaneSums{}.run(s, ch, part1, part2, &j, &sg, &sgy)) finish_grads(s, j, sg, sgy, scale, rstd, B, D, dweight, dbias);
}

template <class T>
__global__ void input_grad_kernel(Shape s, Chunks ch, const T* KILN_RESTRICT x, const T* KILN_RESTRICT y,
                                  const T* KILN_RESTRICT g, T* KILN_RESTRICT dx, const float* KILN_RESTRICT A,
                                  const float* KILN_RESTRICT B, const float* KILN_RESTRICT D,
                                  const float* KILN_RESTRICT mean) {
  each_item(ch.chunks * s.C, [&](int64_t i) { input_grad_item(s, ch, x, y, g, dx, A, B, D, mean, i); });
}

cudaStream_t as_stream(void* stream) { return static_cast<cudaStream_t>(stream); }
const dim3 kLaneBlock(kLaneChannels, kLanes);
unsigned lane_blocks(const Shape& s) { return static_cast<unsigned>((s.C + kLaneChannels - 1) / kLaneChannels); }

void stats(Dtype d, const Shape& s, const Chunks& ch, const void* x, void* y, float* part1, float* part2,
           void* stream) {
  on_type(d, [&](auto tag) {
    using T = decltype(tag);
    KILN_CUDA_LAUNCH(stats_kernel<T>, blocks_for(ch.chunks * s.C), kThreads, as_stream(stream))(
        s, ch, static_cast<const T*>(x), static_cast<T*>(y), part1, part2);
  });
  check_launch("statistics");
}

void finish_stats_all(Dtype d, const Shape& s, const Chunks& ch, const void* x, const float* part1,
                      const float* part2, const float* weight, const float* bias, float* running_mean,
                      float* running_var, float* mean, float* rstd, float* scale, float* shift, double momentum,
                      double eps, void* stream) {
  on_type(d, [&](auto tag) {
    using T = decltype(tag);
    KILN_CUDA_LAUNCH(finish_stats_kernel<T>, lane_blocks(s), kLaneBlock, as_stream(stream))(
        s, ch, static_cast<const T*>(x), part1, part2, weight, bias, running_mean, running_var, mean, rstd, scale,
        shift, momentum, eps);
  });
  check_launch("statistics' finishing");
}

void bn_gelu(Dtype d, const Shape& s, const Chunks& ch, const void* y, const void* res, void* z, const float* scale,
             const float* shift, void* stream) {
  on_type(d, [&](auto tag) {
    using T = decltype(tag);
    KILN_CUDA_LAUNCH(bn_gelu_kernel<T>, blocks_for(ch.chunks * s.C), kThreads, as_stream(stream))(
        s, ch, static_cast<const T*>(y), static_cast<const T*>(res), static_cast<T*>(z), scale, shift);
  });
  check_launch("BN + GELU");
}

void eval_coeffs_all(int64_t C, const float* weight, const float* bias, const float* running_mean,
                     const float* running_var, double eps, float* scale, float* shift, void* stream) {
  KILN_CUDA_LAUNCH(eval_coeffs_kernel, blocks_for(C), kThreads, as_stream(stream))(C, weight, bias, running_mean, running_var,
                                                                         eps, scale, shift);
  check_launch("evaluation coefficients'");
}

void pool_bn_gelu(Dtype d, const Shape& s, const Chunks& ch, const void* x, const void* res, void* z,
                  const float* scale, const float* shift, void* stream) {
  on_type(d, [&](auto tag) {
    using T = decltype(tag);
    KILN_CUDA_LAUNCH(pool_bn_gelu_kernel<T>, blocks_for(ch.chunks * s.C), kThreads, as_stream(stream))(
        s, ch, static_cast<const T*>(x), static_cast<const T*>(res), static_cast<T*>(z), scale, shift);
  });
  check_launch("evaluation");
}

void grad_sums(Dtype d, const Shape& s, const Chunks& ch, const void* dz, const void* y, const void* res, void* g,
               const float* scale, const float* shift, const float* mean, float* part1, float* part2, void* stream) {
  on_type(d, [&](auto tag) {
    using T = decltype(tag);
    KILN_CUDA_LAUNCH(grad_sums_kernel<T>, blocks_for(ch.chunks * s.C), kThreads, as_stream(stream))(
        s, ch, static_cast<const T*>(dz), static_cast<const T*>(y), static_cast<const T*>(res), static_cast<T*>(g),
        scale, shift, mean, part1, part2);
  });
  check_launch("GELU gradient");
}

void finish_grads_all(const Shape& s, const Chunks& ch, const float* part1, const float* part2, const float* scale,
                      const float* rstd, float* B, float* D, float* dweight, float* dbias, void* stream) {
  KILN_CUDA_LAUNCH(finish_grads_kernel, lane_blocks(s), kLaneBlock, as_stream(stream))(s, ch, part1, part2, scale, rstd, B, D,
                                                                            dweight, dbias);
  check_launch("gradients' finishing");
}

void input_grad(Dtype d, const Shape& s, const Chunks& ch, const void* x, const void* y, const void* g, void* dx,
                const float* A, const float* B, const float* D, const float* mean, void* stream) {
  on_type(d, [&](auto tag) {
    using T = decltype(tag);
    KILN_CUDA_LAUNCH(input_grad_kernel<T>, blocks_for(ch.chunks * s.C), kThreads, as_stream(stream))(
        s, ch, static_cast<const T*>(x), static_cast<const T*>(y), static_cast<const T*>(g), static_cast<T*>(dx), A, B, D,
        mean);
  });
  check_launch("input gradient");
}

}  // namespace

const Launch& KILN_FUSED_TABLE() {
  static const Launch table{KILN_FUSED_TABLE_NAME, &stats,     &finish_stats_all, &bn_gelu,   &eval_coeffs_all,
                            &pool_bn_gelu,         &grad_sums, &finish_grads_all, &input_grad};
  return table;
}

}  // namespace kiln::fused
