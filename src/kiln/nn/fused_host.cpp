// The host's emulation of the fused operator's CUDA launches (kiln/nn/fused_launch.h): each launch
// runs its work items one after another, through the bodies the CUDA kernels run
// (kiln/nn/fused_body.h), and the statistics' lanes are added in the kernels' order. What it leaves
// out of the GPU's path is the launch itself: grid sizes, thread indices and the shared-memory
// exchange of kiln/cuda/fused_kernels.cu. It is slow (one thread, no vectorisation): it is there so
// that the CPU's tests hold the GPU's arithmetic and the operator around it to LibTorch's operators.
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include "kiln/nn/fused_launch.h"

namespace kiln::fused {

template <>
struct Elem<c10::Half> {
  static float load(c10::Half v) { return static_cast<float>(v); }
  static c10::Half store(float v) { return c10::Half(v); }  // round to nearest even
};
template <>
struct Elem<c10::BFloat16> {
  static float load(c10::BFloat16 v) { return static_cast<float>(v); }
  static c10::BFloat16 store(float v) { return c10::BFloat16(v); }  // round to nearest even
};

namespace {

template <class F>
void on_type(Dtype d, const F& f) {
  switch (d) {
    case Dtype::kFloat32: f(float{}); break;
    case Dtype::kFloat16: f(c10::Half{}); break;
    case Dtype::kBFloat16: f(c10::BFloat16{}); break;
  }
}

// The chunks' partials of channel j added as the CUDA block adds them: each lane's in double, then
// the lanes in order.
void add_lanes(const Shape& s, const Chunks& ch, const float* part1, const float* part2, int64_t j, double* s1,
               double* s2) {
  double t1 = 0.0, t2 = 0.0;
  for (int lane = 0; lane < kLanes; ++lane) {
    double a1, a2;
    lane_sums(s, ch, part1, part2, j, lane, &a1, &a2);
    t1 += a1;
    t2 += a2;
  }
  *s1 = t1;
  *s2 = t2;
}

void stats(Dtype d, const Shape& s, const Chunks& ch, const void* x, void* y, float* part1, float* part2, void*) {
  on_type(d, [&](auto tag) {
    using T = decltype(tag);
    for (int64_t i = 0; i < ch.chunks * s.C; ++i)
      stats_item(s, ch, static_cast<const T*>(x), static_cast<T*>(y), part1, part2, i);
  });
}

void finish_stats_all(Dtype d, const Shape& s, const Chunks& ch, const void* x, const float* part1,
                      const float* part2, const float* weight, const float* bias, float* running_mean,
                      float* running_var, float* mean, float* rstd, float* scale, float* shift, double momentum,
                      double eps, void*) {
  on_type(d, [&](auto tag) {
    using T = decltype(tag);
    for (int64_t j = 0; j < s.C; ++j) {
      double s1, s2;
      add_lanes(s, ch, part1, part2, j, &s1, &s2);
      finish_stats(s, static_cast<const T*>(x), j, s1, s2, weight, bias, running_mean, running_var, mean, rstd, scale,
                   shift, momentum, eps);
    }
  });
}

void bn_gelu(Dtype d, const Shape& s, const Chunks& ch, const void* y, const void* res, void* z, const float* scale,
             const float* shift, void*) {
  on_type(d, [&](auto tag) {
    using T = decltype(tag);
    for (int64_t i = 0; i < ch.chunks * s.C; ++i)
      bn_gelu_item(s, ch, static_cast<const T*>(y), static_cast<const T*>(res), static_cast<T*>(z), scale, shift, i);
  });
}

void eval_coeffs_all(int64_t C, const float* weight, const float* bias, const float* running_mean,
                     const float* running_var, double eps, float* scale, float* shift, void*) {
  for (int64_t j = 0; j < C; ++j) eval_coeffs(weight, bias, running_mean, running_var, eps, scale, shift, j);
}

void pool_bn_gelu(Dtype d, const Shape& s, const Chunks& ch, const void* x, const void* res, void* z,
                  const float* scale, const float* shift, void*) {
  on_type(d, [&](auto tag) {
    using T = decltype(tag);
    for (int64_t i = 0; i < ch.chunks * s.C; ++i)
      pool_bn_gelu_item(s, ch, static_cast<const T*>(x), static_cast<const T*>(res), static_cast<T*>(z), scale, shift,
                        i);
  });
}

void grad_sums(Dtype d, const Shape& s, const Chunks& ch, const void* dz, const void* y, const void* res, void* g,
               const float* scale, const float* shift, const float* mean, float* part1, float* part2, void*) {
  on_type(d, [&](auto tag) {
    using T = decltype(tag);
    for (int64_t i = 0; i < ch.chunks * s.C; ++i)
      grad_sums_item(s, ch, static_cast<const T*>(dz), static_cast<const T*>(y), static_cast<const T*>(res),
                     static_cast<T*>(g), scale, shift, mean, part1, part2, i);
  });
}

void finish_grads_all(const Shape& s, const Chunks& ch, const float* part1, const float* part2, const float* scale,
                      const float* rstd, float* B, float* D, float* dweight, float* dbias, void*) {
  for (int64_t j = 0; j < s.C; ++j) {
    double sg, sgy;
    add_lanes(s, ch, part1, part2, j, &sg, &sgy);
    finish_grads(s, j, sg, sgy, scale, rstd, B, D, dweight, dbias);
  }
}

void input_grad(Dtype d, const Shape& s, const Chunks& ch, const void* x, const void* y, const void* g, void* dx,
                const float* A, const float* B, const float* D, const float* mean, void*) {
  on_type(d, [&](auto tag) {
    using T = decltype(tag);
    for (int64_t i = 0; i < ch.chunks * s.C; ++i)
      input_grad_item(s, ch, static_cast<const T*>(x), static_cast<const T*>(y), static_cast<const T*>(g),
                      static_cast<T*>(dx), A, B, D, mean, i);
  });
}

}  // namespace

const Launch& host_launch() {
  static const Launch table{"host emulation", &stats,     &finish_stats_all, &bn_gelu,       &eval_coeffs_all,
                            &pool_bn_gelu,    &grad_sums, &finish_grads_all, &input_grad};
  return table;
}

}  // namespace kiln::fused
