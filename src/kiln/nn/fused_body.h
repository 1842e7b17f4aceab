// The fused pool -> BatchNorm -> GELU operator of kiln/nn/fused_gpu.h, one work item at a time:
// what one CUDA thread computes (kiln/cuda/fused_kernels.cu), written once for the device and the
// host, so that the host's emulation (kiln/nn/fused_host.cpp: every thread of a launch in turn, in
// the same order) runs the very arithmetic the GPU runs and the CPU's tests hold it to LibTorch's
// operators. No LibTorch and no CUDA header here: nvcc and the host compiler both read it.
//
// Layout: channels_last (NHWC), x of N x H x W x C, the pooled y of N x Ho x Wo x C (Ho = H / 2,
// Wo = W / 2; the odd last row and column dropped, as max_pool2d's floor); without the pool y is x.
// A "pixel" is one of the M = N Ho Wo positions of y, C values apart.
//
// Definitions (those of kiln/nn/fused_cpu.h; CUDA's GELU formulas, ATen's own):
//   pool:  the first maximum of each window in row-major order, a NaN wins (max_pool2d's rule);
//   BN:    t = (y - mean) rstd weight + bias over the batch (biased var), running statistics moved
//          by momentum (unbiased var);
//   GELU:  z = t Phi(t), Phi(t) = (1 + erf(t / sqrt 2)) / 2; GELU'(t) = Phi(t) + t phi(t).
// Statistics: each (chunk of pixels, channel) item sums in float, shifted by the channel's first
// pooled value k so that the sums do not cancel; the chunks' partial sums are added in double over
// kLanes interleaved lanes (lane L takes chunks L, L + kLanes, ...), the lanes then in order: a
// fixed order, so the result does not depend on the GPU's scheduling.
#pragma once
#include <cstdint>

#ifdef __CUDACC__
#define KILN_HD __host__ __device__ __forceinline__
#define KILN_UNROLL_4 _Pragma("unroll 4")
#else
#include <cmath>
#define KILN_HD inline
#define KILN_UNROLL_4
#endif
// The bodies' arrays never overlap one they write (without the pool y is x, and then never
// written): the compiler may keep loads in flight across stores, and nvcc read x through the
// read-only cache.
#define KILN_RESTRICT __restrict__

namespace kiln::fused {

// The element types' conversions, specialised by each includer (float, fp16, bf16): load widens
// exactly; store rounds to nearest even.
template <class T>
struct Elem;
template <>
struct Elem<float> {
  static KILN_HD float load(float v) { return v; }
  static KILN_HD float store(float v) { return v; }
};

struct Shape {
  int64_t N, H, W, C, Ho, Wo;
  bool pool;
  KILN_HD int64_t count() const { return N * Ho * Wo; }  // pixels: values per channel
};

// How the statistics' items split the pixels: `chunks` chunks of `per` pixels (the last shorter).
struct Chunks {
  int64_t chunks, per;
};
// About kItems (chunk, channel) items in all, at least 1 pixel a chunk: 2^18 threads fill an
// H100's or H200's 132 SMs (2,048 threads each) about once, each walking its chunk's pixels with its
// loads in flight (chosen, not measured: no GPU has run this yet). The airbench blocks at batch
// 1024: 64 pixels a chunk for 64 channels at 16x16, 16 for 256 channels at 8x8, 4 at 4x4.
constexpr int64_t kItems = int64_t{1} << 18;
constexpr int kLanes = 32;  // lanes of the chunks' sum: a CUDA block of 8 channels x kLanes
inline Chunks chunks_of(const Shape& s) {
  const int64_t M = s.count();
  int64_t want = (kItems + s.C - 1) / s.C;
  if (want > M) want = M;
  if (want < 1) want = 1;
  const int64_t per = (M + want - 1) / want;
  return {(M + per - 1) / per, per};
}

// An item's pixels: chunk k's, channel j (item = k C + j: a warp's threads take neighbouring
// channels of one pixel, so their loads are adjacent). The walk goes pixel by pixel, its position
// (n, ho, wo) advanced by increments: one division per item, none per pixel.
struct Walk {
  int64_t j, p, end, n, ho, wo;
  KILN_HD Walk(const Shape& s, const Chunks& ch, int64_t item) {
    const int64_t k = item / s.C;
    j = item - k * s.C;
    p = k * ch.per;
    end = p + ch.per < s.count() ? p + ch.per : s.count();
    wo = p % s.Wo;
    const int64_t r = p / s.Wo;
    ho = r % s.Ho;
    n = r / s.Ho;
  }
  KILN_HD bool more() const { return p < end; }
  KILN_HD void next(const Shape& s) {
    ++p;
    if (++wo == s.Wo) {
      wo = 0;
      if (++ho == s.Ho) ho = 0, ++n;
    }
  }
  KILN_HD int64_t at(const Shape& s) const { return p * s.C + j; }  // channel j of pixel p in y (and z, g)
  // channel j of the window's top-left value in x (with the pool), or of pixel p itself
  KILN_HD int64_t in_x(const Shape& s) const { return s.pool ? ((n * s.H + 2 * ho) * s.W + 2 * wo) * s.C + j : at(s); }
};

// max_pool2d's choice: a later value replaces the maximum when greater or NaN.
KILN_HD bool takes(float v, float m) { return v > m || v != v; }

// The pooled value whose window's top-left value is x[a] (x[a] itself without the pool).
template <class T>
KILN_HD float pooled(const Shape& s, const T* x, int64_t a) {
  float m = Elem<T>::load(x[a]);
  if (!s.pool) return m;
  const int64_t row = s.W * s.C;
  float v = Elem<T>::load(x[a + s.C]);
  m = takes(v, m) ? v : m;
  v = Elem<T>::load(x[a + row]);
  m = takes(v, m) ? v : m;
  v = Elem<T>::load(x[a + row + s.C]);
  return takes(v, m) ? v : m;
}

KILN_HD float gelu(float t) { return t * 0.5f * (1.0f + erff(t * 0.70710678118654752f)); }
KILN_HD float gelu_grad(float t) {
  const float cdf = 0.5f * (1.0f + erff(t * 0.70710678118654752f));
  const float pdf = expf(-0.5f * t * t) * 0.39894228040143268f;
  return cdf + t * pdf;
}

// ---- training, forward ------------------------------------------------------------------------
// Item (k, j): y = pool(x) over chunk k's pixels (stored where pooling), channel j; the chunk's
// sums of (y - k_j) and (y - k_j)^2 in float into part1, part2 at [k C + j] (= item).
template <class T>
KILN_HD void stats_item(const Shape& s, const Chunks& ch, const T* KILN_RESTRICT x, T* KILN_RESTRICT y,
                        float* KILN_RESTRICT part1, float* KILN_RESTRICT part2, int64_t item) {
  Walk w(s, ch, item);
  const float shift = pooled(s, x, w.j);  // pixel 0's window starts at x[0]
  float a1 = 0.0f, a2 = 0.0f;
  for (; w.more(); w.next(s)) {
    const float m = pooled(s, x, w.in_x(s));
    if (s.pool) y[w.at(s)] = Elem<T>::store(m);  // exact: one of the inputs
    const float d = m - shift;
    a1 += d;
    a2 += d * d;
  }
  part1[item] = a1;
  part2[item] = a2;
}

// Lane L's double sums of channel j's chunk partials (chunks L, L + kLanes, ...).
KILN_HD void lane_sums(const Shape& s, const Chunks& ch, const float* KILN_RESTRICT part1,
                       const float* KILN_RESTRICT part2, int64_t j, int lane, double* s1, double* s2) {
  double a1 = 0.0, a2 = 0.0;
  KILN_UNROLL_4
  for (int64_t k = lane; k < ch.chunks; k += kLanes) {
    a1 += part1[k * s.C + j];
    a2 += part2[k * s.C + j];
  }
  *s1 = a1;
  *s2 = a2;
}

// ---- BN's per-channel formulas, shared with the CPU's fused operator (kiln/nn/fused_cpu.cpp) ----
// Channel j's batch statistics from the sums of (y - k) and (y - k)^2 over its M values, k a shift
// (the first pooled value): mean, rstd, the normalisation folded into scale = weight rstd and
// shift = bias - mean weight rstd, and the running statistics moved by momentum (the unbiased
// variance).
KILN_HD void bn_batch_stats(double M, double k, double sum1, double sum2, int64_t j, const float* weight,
                            const float* bias, float* running_mean, float* running_var, float* mean, float* rstd,
                            float* scale, float* shift, double momentum, double eps) {
  const double d = sum1 / M, v = sum2 / M - d * d, var = v > 0.0 ? v : 0.0;
  const double mu = k + d;
  const double r = 1.0 / sqrt(var + eps);
  mean[j] = static_cast<float>(mu);
  rstd[j] = static_cast<float>(r);
  scale[j] = static_cast<float>(weight[j] * r);
  shift[j] = static_cast<float>(bias[j] - mu * weight[j] * r);
  running_mean[j] = static_cast<float>(momentum * mu + (1 - momentum) * running_mean[j]);
  running_var[j] = static_cast<float>(momentum * var * M / (M - 1) + (1 - momentum) * running_var[j]);
}

// Channel j's BN backward folded, from sg = sum(g) and sgy = sum(g (y - mean)) over its M values:
// dy = scale (g - sg / M - (y - mean) rstd^2 sgy / M) = A g + B (y - mean) + D with A = scale,
// B = -scale rstd^2 sgy / M, D = -scale sg / M; dweight = rstd sgy, dbias = sg.
KILN_HD void bn_grad_coefficients(double M, int64_t j, double sg, double sgy, const float* scale, const float* rstd,
                                  float* B, float* D, float* dweight, float* dbias) {
  const double r2 = static_cast<double>(rstd[j]) * rstd[j];
  B[j] = static_cast<float>(-scale[j] * r2 * sgy / M);
  D[j] = static_cast<float>(-scale[j] * sg / M);
  dweight[j] = static_cast<float>(sgy * rstd[j]);
  dbias[j] = static_cast<float>(sg);
}

// Channel j's batch statistics from the chunks' added sums, the shift its first pooled value.
template <class T>
KILN_HD void finish_stats(const Shape& s, const T* x, int64_t j, double sum1, double sum2, const float* weight,
                          const float* bias, float* running_mean, float* running_var, float* mean, float* rstd,
                          float* scale, float* shift, double momentum, double eps) {
  bn_batch_stats(static_cast<double>(s.count()), pooled(s, x, j), sum1, sum2, j, weight, bias, running_mean,
                 running_var, mean, rstd, scale, shift, momentum, eps);
}

// Item (k, j) of z = GELU(y scale + shift [+ res]).
template <class T>
KILN_HD void bn_gelu_item(const Shape& s, const Chunks& ch, const T* KILN_RESTRICT y, const T* KILN_RESTRICT res,
                          T* KILN_RESTRICT z, const float* KILN_RESTRICT scale, const float* KILN_RESTRICT shift,
                          int64_t item) {
  for (Walk w(s, ch, item); w.more(); w.next(s)) {
    const int64_t i = w.at(s);
    float t = Elem<T>::load(y[i]) * scale[w.j] + shift[w.j];
    if (res) t += Elem<T>::load(res[i]);
    z[i] = Elem<T>::store(gelu(t));
  }
}

// ---- evaluation: BN with its running statistics ------------------------------------------------
// scale = weight / sqrt(running_var + eps), shift = bias - running_mean scale (in double, as
// kiln/nn/fused_cpu.cpp computes them).
KILN_HD void eval_coeffs(const float* weight, const float* bias, const float* running_mean, const float* running_var,
                         double eps, float* scale, float* shift, int64_t j) {
  const double a = weight[j] / sqrt(static_cast<double>(running_var[j]) + eps);
  scale[j] = static_cast<float>(a);
  shift[j] = static_cast<float>(bias[j] - running_mean[j] * a);
}

// Item (k, j) of z = GELU(pool(x) scale + shift [+ res]), the pooled value never stored.
template <class T>
KILN_HD void pool_bn_gelu_item(const Shape& s, const Chunks& ch, const T* KILN_RESTRICT x, const T* KILN_RESTRICT res,
                               T* KILN_RESTRICT z, const float* KILN_RESTRICT scale, const float* KILN_RESTRICT shift,
                               int64_t item) {
  for (Walk w(s, ch, item); w.more(); w.next(s)) {
    const int64_t i = w.at(s);
    float t = pooled(s, x, w.in_x(s)) * scale[w.j] + shift[w.j];
    if (res) t += Elem<T>::load(res[i]);
    z[i] = Elem<T>::store(gelu(t));
  }
}

// ---- training, backward -----------------------------------------------------------------------
// Item (k, j): g = dz GELU'(y scale + shift [+ res]) rounded to T (the plain path's gelu_backward
// output; with the residual also its gradient) over chunk k's pixels; the chunk's sums of g and of
// g (y - mean), of the rounded g, into part1, part2.
template <class T>
KILN_HD void grad_sums_item(const Shape& s, const Chunks& ch, const T* KILN_RESTRICT dz, const T* KILN_RESTRICT y,
                            const T* KILN_RESTRICT res, T* KILN_RESTRICT g, const float* KILN_RESTRICT scale,
                            const float* KILN_RESTRICT shift, const float* KILN_RESTRICT mean,
                            float* KILN_RESTRICT part1, float* KILN_RESTRICT part2, int64_t item) {
  Walk w(s, ch, item);
  const int64_t j = w.j;
  float a1 = 0.0f, a2 = 0.0f;
  for (; w.more(); w.next(s)) {
    const int64_t i = w.at(s);
    const float yv = Elem<T>::load(y[i]);
    float t = yv * scale[j] + shift[j];
    if (res) t += Elem<T>::load(res[i]);
    const T gr = Elem<T>::store(Elem<T>::load(dz[i]) * gelu_grad(t));
    g[i] = gr;
    const float gv = Elem<T>::load(gr);
    a1 += gv;
    a2 += gv * (yv - mean[j]);
  }
  part1[item] = a1;
  part2[item] = a2;
}

// Channel j's BN backward coefficients from the chunks' added sums.
KILN_HD void finish_grads(const Shape& s, int64_t j, double sg, double sgy, const float* scale, const float* rstd,
                          float* B, float* D, float* dweight, float* dbias) {
  bn_grad_coefficients(static_cast<double>(s.count()), j, sg, sgy, scale, rstd, B, D, dweight, dbias);
}

// Item (k, j) of the pooled gradient: d = A g + B (y - mean) + D rounded to T, written to the
// window element the pool chose and 0 to the other three (without the pool, to x's element).
// Elements outside every window (an odd last row or column) are not written: the caller zeroes dx.
template <class T>
KILN_HD void input_grad_item(const Shape& s, const Chunks& ch, const T* KILN_RESTRICT x, const T* KILN_RESTRICT y,
                             const T* KILN_RESTRICT g, T* KILN_RESTRICT dx, const float* KILN_RESTRICT A,
                             const float* KILN_RESTRICT B, const float* KILN_RESTRICT D,
                             const float* KILN_RESTRICT mean, int64_t item) {
  const T zero = Elem<T>::store(0.0f);
  for (Walk w(s, ch, item); w.more(); w.next(s)) {
    const int64_t i = w.at(s), j = w.j;
    const T d = Elem<T>::store(A[j] * Elem<T>::load(g[i]) + B[j] * (Elem<T>::load(y[i]) - mean[j]) + D[j]);
    if (!s.pool) {
      dx[i] = d;
      continue;
    }
    const int64_t a = w.in_x(s), row = s.W * s.C;
    const int64_t at[4] = {a, a + s.C, a + row, a + row + s.C};
    int chosen = 0;
    float m = Elem<T>::load(x[a]);
    for (int q = 1; q < 4; ++q) {
      const float v = Elem<T>::load(x[at[q]]);
      if (takes(v, m)) m = v, chosen = q;
    }
    for (int q = 0; q < 4; ++q) dx[at[q]] = q == chosen ? d : zero;
  }
}

}  // namespace kiln::fused
