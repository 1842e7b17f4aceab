#include "kiln/nn/fused_cpu.h"

#include "kiln/nn/fused_autograd.h"
#include "kiln/nn/fused_body.h"
#include "kiln/nn/fused_gpu.h"

#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <c10/util/BFloat16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace kiln {
namespace {

// Everything a kernel calls is inlined into it, so that the loops vectorise for the kernel's target.
#define KILN_BODY inline __attribute__((always_inline))

// ---- elements: float, or bf16 as its 16 bits (c10::BFloat16's own conversions: exact widening;
// rounding to nearest even, a NaN to the quiet NaN) -----------------------------------------------
KILN_BODY float load(const float* p, int64_t i) { return p[i]; }
KILN_BODY float load(const uint16_t* p, int64_t i) { return c10::detail::f32_from_bits(p[i]); }
KILN_BODY void store(float* p, int64_t i, float v) { p[i] = v; }
KILN_BODY void store(uint16_t* p, int64_t i, float v) { p[i] = c10::detail::round_to_nearest_even(v); }

// ---- maths in plain float operations, so that the loops vectorise --------------------------------
// e^v for v <= 0: v = n ln 2 + r (|r| <= ln 2 / 2, ln 2 split in two for an exact n ln 2), e^r by
// its Taylor polynomial to degree 6 (truncation < 1.3e-7 relative), 2^n from the exponent bits.
// v is clamped at -87.3 (e^v >= 1.2e-38, a normal float); a NaN stays a NaN.
KILN_BODY float exp_poly(float v) {
  v = v < -87.3f ? -87.3f : v;
  const float vn = v == v ? v : 0.0f;                            // n from a number, never from a NaN
  const float n = (vn * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest (|.| < 2^22)
  const float r = (v - n * 0.693145751953125f) - n * 1.428606765330187e-6f;
  float p = 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return p * scale;
}

// Phi(t) and GELU's pieces from one exponential: with a = |t| / sqrt 2, erfc(a) ~ q(s) e^(-a^2),
// s = 1 / (1 + p a), q of degree 5 (Abramowitz & Stegun 7.1.26, absolute error < 1.5e-7; the fit
// ATen's own vectorised erf uses); e^(-a^2) = e^(-t^2 / 2) is also the density's. Phi(t) =
// 1 - erfc(a) / 2 for t >= 0, erfc(a) / 2 below.
struct Normal {
  float cdf, pdf;  // Phi(t), phi(t)
};
KILN_BODY Normal normal(float t) {
  const float a = std::fabs(t) * 0.707106781186547524f;
  const float s = 1.0f / (1.0f + 0.3275911f * a);
  float q = 1.061405429f;
  q = q * s - 1.453152027f;
  q = q * s + 1.421413741f;
  q = q * s - 0.284496736f;
  q = q * s + 0.254829592f;
  q = q * s;
  const float e = exp_poly(-a * a);
  const float half_erfc = 0.5f * q * e;
  return {t >= 0.0f ? 1.0f - half_erfc : half_erfc, 0.398942280401432678f * e};
}

// GELU(t) = t Phi(t); GELU'(t) = Phi(t) + t phi(t).
KILN_BODY float gelu(float t) { return t * normal(t).cdf; }
KILN_BODY float gelu_grad(float t) {
  const Normal n = normal(t);
  return n.cdf + t * n.pdf;
}

// max_pool2d's choice among a window's four values in row-major order (a, b / c, d): a later value
// replaces the maximum when greater or NaN.
// (The quiet comparison builtins: with `v > m || v != v` GCC 12 leaves a branch and the loop scalar.)
KILN_BODY bool takes(float v, float m) { return __builtin_isgreater(v, m) | __builtin_isunordered(v, v); }

// Channel j's maximum over a 2x2 window whose top row starts at `top` and bottom row at `bottom`
// (channels_last: the next column C elements on), as max_pool2d picks it.
template <class T>
KILN_BODY float window_max(const T* top, const T* bottom, int64_t C, int64_t j) {
  float m = load(top, j), v = load(top + C, j);
  m = takes(v, m) ? v : m;
  v = load(bottom, j);
  m = takes(v, m) ? v : m;
  v = load(bottom + C, j);
  return takes(v, m) ? v : m;
}

// ---- the kernels: rows r0..r1 of the pooled tensor (one row = one image's output row, Wo x C) ---
struct Shape {
  int64_t N, H, W, C, Ho, Wo;
  bool pool;
  int64_t rows() const { return N * Ho; }
  int64_t count() const { return N * Ho * Wo; }  // values per channel
};

// Two per-channel sums over one row of the pooled tensor in float (at most W values a channel),
// then added into double.
struct RowSums {
  explicit RowSums(int64_t C) : first(C), second(C) {}
  void start() {
    std::fill(first.begin(), first.end(), 0.0f);
    std::fill(second.begin(), second.end(), 0.0f);
  }
  void add_to(double* __restrict s1, double* __restrict s2) const {
    for (size_t j = 0; j < first.size(); ++j) s1[j] += first[j], s2[j] += second[j];
  }
  std::vector<float> first, second;
};

// y = pool(x) (or x itself); s1 += sum(y - k), s2 += sum((y - k)^2) per channel, k a per-channel
// shift (the first value) that keeps the sums from cancelling.
template <class T>
KILN_BODY void pool_stats(const Shape& s, const T* __restrict x, T* __restrict y, const float* __restrict k,
                          int64_t r0, int64_t r1, double* __restrict s1, double* __restrict s2) {
  const int64_t C = s.C;
  RowSums row(C);
  float* __restrict a1 = row.first.data();
  float* __restrict a2 = row.second.data();
  for (int64_t r = r0; r < r1; ++r) {
    row.start();
    if (s.pool) {
      const int64_t n = r / s.Ho, ho = r % s.Ho;
      const T* top = x + (n * s.H + 2 * ho) * s.W * C;
      const T* bottom = top + s.W * C;
      T* out = y + r * s.Wo * C;
      for (int64_t wo = 0; wo < s.Wo; ++wo) {
        const T* a = top + 2 * wo * C;
        const T* c = bottom + 2 * wo * C;
        T* o = out + wo * C;
        for (int64_t j = 0; j < C; ++j) {
          const float m = window_max(a, c, C, j);
          store(o, j, m);  // exact: one of the inputs
          const float d = m - k[j];
          a1[j] += d;
          a2[j] += d * d;
        }
      }
    } else {
      const T* in = x + r * s.Wo * C;
      for (int64_t wo = 0; wo < s.Wo; ++wo)
        for (int64_t j = 0; j < C; ++j) {
          const float d = load(in + wo * C, j) - k[j];
          a1[j] += d;
          a2[j] += d * d;
        }
    }
    row.add_to(s1, s2);
  }
}

// z = GELU(y * scale + shift [+ res]).
template <class T, bool kRes>
KILN_BODY void bn_gelu_rows(const Shape& s, const T* __restrict y, const T* __restrict res, T* __restrict z,
                            const float* __restrict scale, const float* __restrict shift, int64_t r0, int64_t r1) {
  const int64_t C = s.C;
  for (int64_t i = r0 * s.Wo; i < r1 * s.Wo; ++i)
    for (int64_t j = 0; j < C; ++j) {
      float t = load(y + i * C, j) * scale[j] + shift[j];
      if (kRes) t += load(res + i * C, j);
      store(z + i * C, j, gelu(t));
    }
}
template <class T>
KILN_BODY void bn_gelu(const Shape& s, const T* y, const T* res, T* z, const float* scale, const float* shift,
                       int64_t r0, int64_t r1) {
  if (res) bn_gelu_rows<T, true>(s, y, res, z, scale, shift, r0, r1);
  else bn_gelu_rows<T, false>(s, y, res, z, scale, shift, r0, r1);
}

// Evaluation: z = GELU(pool(x) * scale + shift [+ res]) in one pass, the pooled value never stored
// (scale and shift from the running statistics); without the pool, bn_gelu on x.
template <class T, bool kRes>
KILN_BODY void pool_bn_gelu_rows(const Shape& s, const T* __restrict x, const T* __restrict res, T* __restrict z,
                                 const float* __restrict scale, const float* __restrict shift, int64_t r0, int64_t r1) {
  const int64_t C = s.C;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = r / s.Ho, ho = r % s.Ho;
    const T* top = x + (n * s.H + 2 * ho) * s.W * C;
    const T* bottom = top + s.W * C;
    for (int64_t wo = 0; wo < s.Wo; ++wo) {
      const T* a = top + 2 * wo * C;
      const T* c = bottom + 2 * wo * C;
      const int64_t at = (r * s.Wo + wo) * C;
      for (int64_t j = 0; j < C; ++j) {
        float t = window_max(a, c, C, j) * scale[j] + shift[j];
        if (kRes) t += load(res + at, j);
        store(z + at, j, gelu(t));
      }
    }
  }
}
template <class T>
KILN_BODY void pool_bn_gelu(const Shape& s, const T* x, const T* res, T* z, const float* scale, const float* shift,
                            int64_t r0, int64_t r1) {
  if (!s.pool) bn_gelu<T>(s, x, res, z, scale, shift, r0, r1);
  else if (res) pool_bn_gelu_rows<T, true>(s, x, res, z, scale, shift, r0, r1);
  else pool_bn_gelu_rows<T, false>(s, x, res, z, scale, shift, r0, r1);
}

// g = dz * GELU'(y * scale + shift [+ res]), rounded to T (as the plain path's gelu_backward output;
// with the residual it is also the residual's gradient); sg += sum(g), sgy += sum(g * (y - mean)) per
// channel, of the rounded g.
template <class T, bool kRes>
KILN_BODY void gelu_grad_sums_rows(const Shape& s, const T* __restrict dz, const T* __restrict y,
                                   const T* __restrict res, T* __restrict g, const float* __restrict scale,
                                   const float* __restrict shift, const float* __restrict mean, int64_t r0,
                                   int64_t r1, double* __restrict sg, double* __restrict sgy) {
  const int64_t C = s.C;
  RowSums row(C);
  float* __restrict a1 = row.first.data();
  float* __restrict a2 = row.second.data();
  for (int64_t r = r0; r < r1; ++r) {
    row.start();
    for (int64_t wo = 0; wo < s.Wo; ++wo) {
      const int64_t at = (r * s.Wo + wo) * C;
      for (int64_t j = 0; j < C; ++j) {
        const float yv = load(y + at, j);
        float t = yv * scale[j] + shift[j];
        if (kRes) t += load(res + at, j);
        store(g + at, j, load(dz + at, j) * gelu_grad(t));
        const float gv = load(g + at, j);
        a1[j] += gv;
        a2[j] += gv * (yv - mean[j]);
      }
    }
    row.add_to(sg, sgy);
  }
}
template <class T>
KILN_BODY void gelu_grad_sums(const Shape& s, const T* dz, const T* y, const T* res, T* g, const float* scale,
                              const float* shift, const float* mean, int64_t r0, int64_t r1, double* sg,
                              double* sgy) {
  if (res) gelu_grad_sums_rows<T, true>(s, dz, y, res, g, scale, shift, mean, r0, r1, sg, sgy);
  else gelu_grad_sums_rows<T, false>(s, dz, y, res, g, scale, shift, mean, r0, r1, sg, sgy);
}

// dy = A g + B (y - mean) + D (BN's backward with its sums folded into A, B, D), rounded to T; with the pool,
// dx is dy at each window's chosen element and 0 elsewhere (also the odd last row and column).
template <class T>
KILN_BODY void bn_pool_grad(const Shape& s, const T* __restrict x, const T* __restrict y, const T* __restrict g,
                            T* __restrict dx, const float* __restrict A, const float* __restrict B,
                            const float* __restrict D, const float* __restrict mean, int64_t r0, int64_t r1) {
  const int64_t C = s.C;
  for (int64_t r = r0; r < r1; ++r) {
    if (!s.pool) {
      for (int64_t i = r * s.Wo; i < (r + 1) * s.Wo; ++i)
        for (int64_t j = 0; j < C; ++j)
          store(dx + i * C, j, A[j] * load(g + i * C, j) + B[j] * (load(y + i * C, j) - mean[j]) + D[j]);
      continue;
    }
    const int64_t n = r / s.Ho, ho = r % s.Ho;
    const int64_t off = (n * s.H + 2 * ho) * s.W * C;
    const T* top = x + off;
    const T* bottom = top + s.W * C;
    T* dtop = dx + off;
    T* dbottom = dtop + s.W * C;
    for (int64_t wo = 0; wo < s.Wo; ++wo) {
      const int64_t at = (r * s.Wo + wo) * C, w = 2 * wo * C;
      for (int64_t j = 0; j < C; ++j) {
        const float d = A[j] * load(g + at, j) + B[j] * (load(y + at, j) - mean[j]) + D[j];
        float m = load(top + w, j), v = load(top + w + C, j);
        const bool t1 = takes(v, m);
        m = t1 ? v : m;
        v = load(bottom + w, j);
        const bool t2 = takes(v, m);
        m = t2 ? v : m;
        const bool t3 = takes(load(bottom + w + C, j), m);
        // d to the last value that took the maximum, 0 to the others (selects, not branches)
        const float d3 = t3 ? d : 0.0f, left3 = t3 ? 0.0f : d;
        const float d2 = t2 ? left3 : 0.0f, left2 = t2 ? 0.0f : left3;
        store(dtop + w, j, t1 ? 0.0f : left2);
        store(dtop + w + C, j, t1 ? left2 : 0.0f);
        store(dbottom + w, j, d2);
        store(dbottom + w + C, j, d3);
      }
    }
    for (int64_t w = 2 * s.Wo; w < s.W; ++w)  // odd W: the last column, outside every window
      for (int64_t j = 0; j < C; ++j) store(dtop + w * C, j, 0.0f), store(dbottom + w * C, j, 0.0f);
    if (ho == s.Ho - 1)  // odd H: the image's last row, outside every window
      for (int64_t h = 2 * s.Ho; h < s.H; ++h)
        for (int64_t i = 0; i < s.W * C; ++i) store(dx + (n * s.H + h) * s.W * C, i, 0.0f);
  }
}

// The kernels compiled for one instruction set each: the bodies inline into functions with that
// target, where the compiler vectorises them for it.
template <class T>
struct Kernels {
  void (*pool_stats)(const Shape&, const T*, T*, const float*, int64_t, int64_t, double*, double*);
  void (*bn_gelu)(const Shape&, const T*, const T*, T*, const float*, const float*, int64_t, int64_t);
  void (*pool_bn_gelu)(const Shape&, const T*, const T*, T*, const float*, const float*, int64_t, int64_t);
  void (*gelu_grad_sums)(const Shape&, const T*, const T*, const T*, T*, const float*, const float*, const float*,
                         int64_t, int64_t, double*, double*);
  void (*bn_pool_grad)(const Shape&, const T*, const T*, const T*, T*, const float*, const float*, const float*,
                       const float*, int64_t, int64_t);
};

#define KILN_FUSED_KERNELS(ISA, TARGET)                                                                          \
  template <class T>                                                                                             \
  TARGET void pool_stats_##ISA(const Shape& s, const T* x, T* y, const float* k, int64_t r0, int64_t r1,         \
                               double* s1, double* s2) {                                                         \
    pool_stats<T>(s, x, y, k, r0, r1, s1, s2);                                                                   \
  }                                                                                                              \
  template <class T>                                                                                             \
  TARGET void bn_gelu_##ISA(const Shape& s, const T* y, const T* res, T* z, const float* a, const float* b,     \
                            int64_t r0, int64_t r1) {                                                            \
    bn_gelu<T>(s, y, res, z, a, b, r0, r1);                                                                      \
  }                                                                                                              \
  template <class T>                                                                                             \
  TARGET void pool_bn_gelu_##ISA(const Shape& s, const T* x, const T* res, T* z, const float* a, const float* b, \
                                 int64_t r0, int64_t r1) {                                                       \
    pool_bn_gelu<T>(s, x, res, z, a, b, r0, r1);                                                                 \
  }                                                                                                              \
  template <class T>                                                                                             \
  TARGET void gelu_grad_sums_##ISA(const Shape& s, const T* dz, const T* y, const T* res, T* g, const float* a,  \
                                   const float* b, const float* m, int64_t r0, int64_t r1, double* s1,           \
                                   double* s2) {                                                                 \
    gelu_grad_sums<T>(s, dz, y, res, g, a, b, m, r0, r1, s1, s2);                                                \
  }                                                                                                              \
  template <class T>                                                                                             \
  TARGET void bn_pool_grad_##ISA(const Shape& s, const T* x, const T* y, const T* g, T* dx, const float* a,       \
                                 const float* b, const float* d, const float* m, int64_t r0, int64_t r1) {       \
    bn_pool_grad<T>(s, x, y, g, dx, a, b, d, m, r0, r1);                                                         \
  }                                                                                                              \
  template <class T>                                                                                             \
  Kernels<T> kernels_##ISA() {                                                                                   \
    return {&pool_stats_##ISA<T>, &bn_gelu_##ISA<T>, &pool_bn_gelu_##ISA<T>, &gelu_grad_sums_##ISA<T>,            \
            &bn_pool_grad_##ISA<T>};                                                                             \
  }

KILN_FUSED_KERNELS(baseline, )
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define KILN_FUSED_X86 1
KILN_FUSED_KERNELS(avx2, __attribute__((target("avx2,fma"))))
KILN_FUSED_KERNELS(avx512, __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma"))))
#endif

enum class Isa { kBaseline, kAvx2, kAvx512 };

// ATen's CPU capability (lowered by ATEN_CPU_CAPABILITY), where this CPU has the instructions.
Isa isa() {
  static const Isa chosen = [] {
#ifdef KILN_FUSED_X86
    const std::string cap = at::get_cpu_capability();
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (cap == "AVX512" && avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
      return Isa::kAvx512;
    if ((cap == "AVX512" || cap == "AVX2") && avx2) return Isa::kAvx2;
#endif
    return Isa::kBaseline;
  }();
  return chosen;
}

template <class T>
Kernels<T> kernels() {
  switch (isa()) {
#ifdef KILN_FUSED_X86
    case Isa::kAvx512: return kernels_avx512<T>();
    case Isa::kAvx2: return kernels_avx2<T>();
#endif
    default: return kernels_baseline<T>();
  }
}

// Elements of a float or bf16 tensor as the kernels read them.
template <class T>
T* elements(const torch::Tensor& t);
template <>
float* elements<float>(const torch::Tensor& t) {
  return t.data_ptr<float>();
}
template <>
uint16_t* elements<uint16_t>(const torch::Tensor& t) {
  return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>());
}

// Runs f(chunk, r0, r1) over `chunks` contiguous ranges of `rows`, in parallel: each chunk sums into
// its own slot, so the sums do not depend on which thread ran it.
template <class F>
void for_chunks(int64_t rows, int64_t chunks, const F& f) {
  at::parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) f(k, rows * k / chunks, rows * (k + 1) / chunks);
  });
}
template <class F>
void for_rows(int64_t rows, const F& f) {
  at::parallel_for(0, rows, 1, [&](int64_t b, int64_t e) { f(b, e); });
}

// Adds the chunks' slots: out[j] = sum over k of slots[k * C + j].
std::vector<double> add_chunks(const std::vector<double>& slots, int64_t C) {
  std::vector<double> out(C, 0.0);
  for (size_t k = 0; k < slots.size() / C; ++k)
    for (int64_t j = 0; j < C; ++j) out[j] += slots[k * C + j];
  return out;
}

Shape shape_of(const torch::Tensor& x, bool pool) {
  Shape s{x.size(0), x.size(2), x.size(3), x.size(1), x.size(2), x.size(3), pool};
  if (pool) s.Ho = s.H / 2, s.Wo = s.W / 2;
  return s;
}

torch::Tensor like_channels_last(const torch::Tensor& x, int64_t H, int64_t W) {
  return torch::empty({x.size(0), x.size(1), H, W}, x.options().memory_format(torch::MemoryFormat::ChannelsLast));
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Chunks of rows for the summing kernels: one a thread.
int64_t chunks_of(const Shape& s) { return std::max<int64_t>(1, std::min<int64_t>(s.rows(), at::get_num_threads())); }

// Each channel's first pooled value (the sums' shift).
template <class T>
std::vector<float> first_values(const Shape& s, const T* x) {
  std::vector<float> k(s.C);
  for (int64_t j = 0; j < s.C; ++j) {
    k[j] = s.pool ? window_max(x, x + s.W * s.C, s.C, j) : load(x, j);
  }
  return k;
}

// The operator's two directions, for the two autograd functions below (an autograd function's
// inputs must be defined tensors, so "no residual" is a function of its own). residual: undefined,
// or added before the GELU.
struct Fused {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& residual,
                               const torch::Tensor& weight, const torch::Tensor& bias,
                               const torch::Tensor& running_mean, const torch::Tensor& running_var, bool pool,
                               double momentum, double eps) {
    const Shape s = shape_of(x, pool);
    auto y = pool ? like_channels_last(x, s.Ho, s.Wo) : x;
    auto z = like_channels_last(x, s.Ho, s.Wo);
    const int64_t C = s.C, M = s.count(), chunks = chunks_of(s);
    auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
    auto mean = torch::empty({C}, f32), rstd = torch::empty({C}, f32), scale = torch::empty({C}, f32),
         shift = torch::empty({C}, f32);
    auto run = [&](auto tag) {
      using T = decltype(tag);
      const auto kern = kernels<T>();
      const T* xp = elements<T>(x);
      T* yp = elements<T>(y);
      const auto k = first_values(s, xp);
      std::vector<double> s1(chunks * C, 0.0), s2(chunks * C, 0.0);
      for_chunks(s.rows(), chunks, [&](int64_t c, int64_t r0, int64_t r1) {
        kern.pool_stats(s, xp, yp, k.data(), r0, r1, &s1[c * C], &s2[c * C]);
      });
      const auto sum1 = add_chunks(s1, C), sum2 = add_chunks(s2, C);
      const float *w = weight.data_ptr<float>(), *b = bias.data_ptr<float>();
      float *rm = running_mean.data_ptr<float>(), *rv = running_var.data_ptr<float>();
      float *mp = mean.data_ptr<float>(), *rp = rstd.data_ptr<float>(), *sp = scale.data_ptr<float>(),
            *hp = shift.data_ptr<float>();
      for (int64_t j = 0; j < C; ++j)
        fused::bn_batch_stats(M, k[j], sum1[j], sum2[j], j, w, b, rm, rv, mp, rp, sp, hp, momentum, eps);
      const T* res = residual.defined() ? elements<T>(residual) : nullptr;
      T* zp = elements<T>(z);
      for_rows(s.rows(), [&](int64_t r0, int64_t r1) { kern.bn_gelu(s, yp, res, zp, sp, hp, r0, r1); });
    };
    if (x.scalar_type() == torch::kBFloat16) run(uint16_t{}); else run(float{});
    ctx->save_for_backward({x, y, mean, rstd, scale, shift, residual});
    ctx->saved_data["pool"] = pool;
    return z;
  }

  static FusedGrads backward(AutogradContext* ctx, const variable_list& grads, bool weight_needs_grad) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &y = saved[1], &mean = saved[2], &rstd = saved[3], &scale = saved[4], &shift = saved[5],
               &residual = saved[6];
    const bool pool = ctx->saved_data["pool"].toBool();
    const Shape s = shape_of(x, pool);
    const int64_t C = s.C, M = s.count(), chunks = chunks_of(s);
    auto dz = grads[0].to(y.scalar_type()).contiguous(torch::MemoryFormat::ChannelsLast);
    auto g = like_channels_last(x, s.Ho, s.Wo);
    auto dx = like_channels_last(x, s.H, s.W);
    auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
    auto B = torch::empty({C}, f32), D = torch::empty({C}, f32), dweight = torch::empty({C}, f32),
         dbias = torch::empty({C}, f32);
    auto run = [&](auto tag) {
      using T = decltype(tag);
      const auto kern = kernels<T>();
      const T* dzp = elements<T>(dz);
      const T* yp = elements<T>(y);
      const T* res = residual.defined() ? elements<T>(residual) : nullptr;
      T* gp = elements<T>(g);
      const float *sc = scale.data_ptr<float>(), *sh = shift.data_ptr<float>(), *m = mean.data_ptr<float>();
      std::vector<double> s1(chunks * C, 0.0), s2(chunks * C, 0.0);
      for_chunks(s.rows(), chunks, [&](int64_t c, int64_t r0, int64_t r1) {
        kern.gelu_grad_sums(s, dzp, yp, res, gp, sc, sh, m, r0, r1, &s1[c * C], &s2[c * C]);
      });
      const auto sg = add_chunks(s1, C), sgy = add_chunks(s2, C);
      const float* rs = rstd.data_ptr<float>();
      float *Bp = B.data_ptr<float>(), *Dp = D.data_ptr<float>();
      float *dwp = dweight.data_ptr<float>(), *dbp = dbias.data_ptr<float>();
      for (int64_t j = 0; j < C; ++j) fused::bn_grad_coefficients(M, j, sg[j], sgy[j], sc, rs, Bp, Dp, dwp, dbp);
      const T* xp = elements<T>(x);
      T* dxp = elements<T>(dx);
      for_rows(s.rows(), [&](int64_t r0, int64_t r1) { kern.bn_pool_grad(s, xp, yp, gp, dxp, sc, Bp, Dp, m, r0, r1); });
    };
    if (y.scalar_type() == torch::kBFloat16) run(uint16_t{}); else run(float{});
    // the residual's gradient is GELU's, g (the plain path's add passes it on as it is)
    return {dx, residual.defined() ? g : torch::Tensor(), weight_needs_grad ? dweight : torch::Tensor(), dbias};
  }
};

// Evaluation (BN with its running statistics; nothing to differentiate): one pass, no autograd
// function. scale = weight / sqrt(running_var + eps), shift = bias - running_mean * scale, as
// LibTorch's batch_norm computes them (here in double, then rounded to float).
torch::Tensor fused_eval(const torch::Tensor& x, const BatchNormImpl& bn, bool pool, const torch::Tensor& residual) {
  const Shape s = shape_of(x, pool);
  auto z = like_channels_last(x, s.Ho, s.Wo);
  std::vector<float> scale(s.C), shift(s.C);
  const float *w = bn.weight.data_ptr<float>(), *b = bn.bias.data_ptr<float>(), *rm = bn.running_mean.data_ptr<float>(),
              *rv = bn.running_var.data_ptr<float>();
  for (int64_t j = 0; j < s.C; ++j) {
    const double a = w[j] / std::sqrt(static_cast<double>(rv[j]) + bn.options.eps);
    scale[j] = static_cast<float>(a);
    shift[j] = static_cast<float>(b[j] - rm[j] * a);
  }
  auto run = [&](auto tag) {
    using T = decltype(tag);
    const auto kern = kernels<T>();
    const T* xp = elements<T>(x);
    const T* res = residual.defined() ? elements<T>(residual) : nullptr;
    T* zp = elements<T>(z);
    for_rows(s.rows(), [&](int64_t r0, int64_t r1) { kern.pool_bn_gelu(s, xp, res, zp, scale.data(), shift.data(), r0, r1); });
  };
  if (x.scalar_type() == torch::kBFloat16) run(uint16_t{}); else run(float{});
  return z;
}

// Whether anything of the block would need a gradient (then evaluation keeps LibTorch's operators).
bool needs_grad(const torch::Tensor& x, const BatchNormImpl& bn, const torch::Tensor& residual) {
  return torch::GradMode::is_enabled() && (x.requires_grad() || bn.weight.requires_grad() || bn.bias.requires_grad() ||
                                           (residual.defined() && residual.requires_grad()));
}

bool channels_last_strides(const torch::Tensor& x) {
  const int64_t C = x.size(1), H = x.size(2), W = x.size(3);
  return x.stride(1) == 1 && x.stride(3) == C && x.stride(2) == W * C && x.stride(0) == H * W * C;
}

bool fp32_vector(const torch::Tensor& t, int64_t C, const torch::Device& device) {
  return t.defined() && t.scalar_type() == torch::kFloat32 && t.dim() == 1 && t.size(0) == C && t.is_contiguous() &&
         t.device() == device;
}

}  // namespace

bool fusable_block(const torch::Tensor& x, const BatchNormImpl& bn, Activation act, bool pool,
                   const torch::Tensor& residual) {
  if (act != Activation::GELU) return false;
  if (bn.is_training() ? bn.options.ghost_splits > 1 || bn.sync_group != nullptr : needs_grad(x, bn, residual))
    return false;  // ghost splits and sync groups act in training only
  if (!x.defined() || x.dim() != 4 || x.numel() == 0) return false;
  const int64_t C = x.size(1);
  if (!channels_last_strides(x)) return false;
  const auto dev = x.device();
  if (!fp32_vector(bn.weight, C, dev) || !fp32_vector(bn.bias, C, dev) || !fp32_vector(bn.running_mean, C, dev) ||
      !fp32_vector(bn.running_var, C, dev))
    return false;
  const int64_t H = pool ? x.size(2) / 2 : x.size(2), W = pool ? x.size(3) / 2 : x.size(3);
  if (residual.defined() &&
      (residual.dim() != 4 || residual.sizes() != torch::IntArrayRef({x.size(0), C, H, W}) ||
       residual.scalar_type() != x.scalar_type() || residual.device() != dev || !channels_last_strides(residual)))
    return false;  // LibTorch's add: broadcasting, type promotion, its own errors
  return !bn.is_training() || x.size(0) * H * W > 1;  // else LibTorch's own error (one value per channel)
}

bool fused_cpu_applies(const torch::Tensor& x, const BatchNormImpl& bn, Activation act, bool pool,
                       const torch::Tensor& residual) {
  if (!bn.fused_cpu || !x.defined() || !x.device().is_cpu()) return false;
  if (x.scalar_type() != torch::kFloat32 && x.scalar_type() != torch::kBFloat16) return false;
  return fusable_block(x, bn, act, pool, residual);
}

torch::Tensor pool_bn_act(const torch::Tensor& x, BatchNormImpl& bn, Activation act, double celu_alpha, bool pool,
                          const torch::Tensor& residual) {
  if (fused_gpu_applies(x, bn, act, pool, residual)) return fused_gpu(x, bn, pool, residual);
  if (fused_cpu_applies(x, bn, act, pool, residual)) {
    if (!bn.is_training()) return fused_eval(x, bn, pool, residual);
    return apply_fused_block<Fused>(x, bn, pool, residual);
  }
  auto t = bn.forward(pool ? torch::max_pool2d(x, 2) : x);
  return activate(residual.defined() ? t + residual : t, act, celu_alpha);
}

void set_fused_cpu(torch::nn::Module& model, bool on) {
  for (auto& m : model.modules(/*include_self=*/true))
    if (auto* bn = m->as<BatchNormImpl>()) bn->fused_cpu = on;
}

std::string fused_cpu_isa() {
  const char* name = isa() == Isa::kAvx512 ? "avx512" : isa() == Isa::kAvx2 ? "avx2" : "baseline";
#ifdef _OPENMP
  return name;
#else
  return std::string(name) + " (one thread: built without OpenMP)";
#endif
}

}  // namespace kiln
