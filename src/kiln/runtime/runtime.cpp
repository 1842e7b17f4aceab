#include "kiln/runtime/runtime.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "kiln/core/crc32.h"

// The convolutions' loops come in up to three builds, all adding the same products in the same
// order: on x86-64 with GCC or Clang an AVX2 build, called when the CPU has AVX2 (checked once);
// the portable build (SSE2 on x86-64, SIMD128 in WebAssembly), whose dense tiles are held in
// GCC's vector extension where the compiler has it; and the plain build, the same loops on plain
// arrays (the portable build itself where the compiler has no vector extension). use_kernels()
// picks one. AVX2 only, not FMA: without FMA the compiler cannot fuse a * w + b, and these loops
// have no reductions it could reorder, so every build gives the same logits to the bit (every
// Runtime.*MatchesLibTorch case requires it); only the vector width differs.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__EMSCRIPTEN__)
#define KILN_RT_AVX2 1
#else
#define KILN_RT_AVX2 0
#endif
#if defined(__GNUC__)  // GCC and Clang (Emscripten's too): vector_size
#define KILN_RT_VECTORS 1
#else
#define KILN_RT_VECTORS 0
#endif

namespace kiln::rt {

namespace {

struct Reader {
  const std::vector<uint8_t>& b;
  const std::string& name;
  size_t pos = 0;
  void need(size_t n, const char* what) const {
    if (n > b.size() || pos > b.size() - n)
      throw std::runtime_error("'" + name + "': truncated .kiln file (reading " + what + " at byte " + std::to_string(pos) + ")");
  }
  uint32_t u32(const char* what) {
    need(4, what);
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(b[pos + static_cast<size_t>(i)]) << (8 * i);
    pos += 4;
    return v;
  }
  uint8_t u8(const char* what) {
    need(1, what);
    return b[pos++];
  }
  std::string str(const char* what) {
    const uint32_t n = u32(what);
    need(n, what);
    std::string s(reinterpret_cast<const char*>(b.data() + pos), n);
    pos += n;
    return s;
  }
  float f32(const char* what) {
    const uint32_t v = u32(what);
    float f;
    std::memcpy(&f, &v, 4);
    return f;
  }
};

std::vector<int64_t> ints(const std::string& s) {
  std::vector<int64_t> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) v.push_back(std::stoll(item));
  return v;
}
std::vector<float> floats(const std::string& s) {
  std::vector<float> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) v.push_back(std::stof(item));
  return v;
}

// A feature map: C x H x W.
struct Map {
  int64_t c = 0, h = 0, w = 0;
  std::vector<float> v;
  float& at(int64_t ci, int64_t y, int64_t x) { return v[static_cast<size_t>((ci * h + y) * w + x)]; }
  float at(int64_t ci, int64_t y, int64_t x) const { return v[static_cast<size_t>((ci * h + y) * w + x)]; }
};

std::runtime_error misfit(const Tensor& t, const std::string& what) {
  std::string dims;
  for (auto d : t.shape) dims += (dims.empty() ? "" : " x ") + std::to_string(d);
  return std::runtime_error("tensor '" + t.name + "' (" + (dims.empty() ? "a scalar" : dims) + ") " + what);
}

// A convolution's sizes, checked by conv2d.
struct ConvShape {
  int64_t H, W;            // input (its C is Cg x groups)
  int64_t O, Cg, K, Og;    // filters: out channels, in channels a group, kernel side, out channels a group
  int64_t OH, OW;          // output
  int64_t stride, pad, groups;
  const int64_t *x_lo, *x_hi;  // per kernel column: the output columns whose input column is inside
};

// One tile of a dense convolution: OB filters (their weights rows of J, J apart from `w`) x 2 VW
// pixels, summed over the J elements of the pixels' patches (`rows`: J x 2 VW, a strip). Each
// output is 0 + w[0] * r[0] + w[1] * r[1] + ... in that order, each product rounded then added
// (no FMA: see above), so every tile shape and vector width gives the same bits; `n` (<= 2 VW)
// pixels are stored in the OB planes of P pixels from `out`, the rest of the tile reads the
// strip's zero padding. The plain build's tile is an array the compiler may or may not keep in
// registers (GCC does not: ~6x slower); the vector build's is OB x 2 vectors of VW floats (GCC's
// vector extension, lowered to what the build's target has: AVX2, SSE2, WebAssembly's SIMD128).
template <int OB, int VW>
inline void dense_tile_plain(const float* rows, int64_t J, const float* w, float* out, int64_t P, int64_t n) {
  float acc[OB][2 * VW] = {};
  for (int64_t j = 0; j < J; ++j)
    for (int b = 0; b < OB; ++b)
      for (int q = 0; q < 2 * VW; ++q) acc[b][q] += w[b * J + j] * rows[j * 2 * VW + q];
  for (int b = 0; b < OB; ++b)
    for (int64_t q = 0; q < n; ++q) out[b * P + q] = acc[b][q];
}
#if KILN_RT_VECTORS
template <int VW>
struct Lanes {
  typedef float V __attribute__((vector_size(VW * 4)));
};
template <int OB, int VW>
__attribute__((always_inline)) inline void dense_tile_vectors(const float* rows, int64_t J, const float* w, float* out, int64_t P,
                                                              int64_t n) {
  using V = typename Lanes<VW>::V;
  V acc[OB][2] = {};
  for (int64_t j = 0; j < J; ++j, rows += 2 * VW, ++w) {
    V r0, r1;
    std::memcpy(&r0, rows, sizeof(V));
    std::memcpy(&r1, rows + VW, sizeof(V));
    for (int b = 0; b < OB; ++b) {
      acc[b][0] += w[b * J] * r0;  // the scalar times each lane
      acc[b][1] += w[b * J] * r1;
    }
  }
  float t[2 * VW];
  for (int b = 0; b < OB; ++b) {
    std::memcpy(t, &acc[b][0], sizeof(V));
    std::memcpy(t + VW, &acc[b][1], sizeof(V));
    for (int64_t q = 0; q < n; ++q) out[b * P + q] = t[q];
  }
}
#endif
template <int OB, int VW, bool kVectors>
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
inline void dense_tile(const float* rows, int64_t J, const float* w, float* out, int64_t P, int64_t n) {
#if KILN_RT_VECTORS
  if constexpr (kVectors) return dense_tile_vectors<OB, VW>(rows, J, w, out, P, n);
#endif
  dense_tile_plain<OB, VW>(rows, J, w, out, P, n);
}

// conv2d's arithmetic on the buffers it checked and allocated (`out` zeroed; for dense
// convolutions `rows`, zeroed, J floats for each output pixel rounded up to whole strips of 16);
// nothing in it throws or allocates. Inlined into each build below, VW (floats a vector: 8 for
// AVX2, 4 for SSE2 and WebAssembly) and kVectors (the tiles' kind) their only differences.
template <int VW, bool kVectors>
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
inline void conv2d_loops(const ConvShape& s, const float* in, const float* wt, float* rows, float* out) {
  if (s.groups == 1) {
    // Dense convolutions: the input's patches laid out once (patch element j = input channel ci,
    // kernel row ky, column kx, for each output pixel; zeros where the patch leaves the image and
    // past the last pixel), then each output is the sum over j of its filter's weight j times
    // element j of its pixel's patch, computed a tile of 6 (then 4, then 1) filters x TW pixels
    // at a time. The patches are stored a strip of TW pixels at a time, J x TW: a tile reads its
    // strip in one sweep, and the strip stays in cache across the filters. The same products in
    // the same order as a direct convolution, plus the padding's zero products, which change no
    // sum of finite weights.
    const int64_t P = s.OH * s.OW, J = s.Cg * s.K * s.K;
    constexpr int64_t TW = 2 * VW;  // pixels a tile
    for (int64_t ci = 0; ci < s.Cg; ++ci)
      for (int64_t ky = 0; ky < s.K; ++ky)
        for (int64_t kx = 0; kx < s.K; ++kx) {
          const int64_t j = (ci * s.K + ky) * s.K + kx;
          const int64_t lo = s.x_lo[kx], hi = s.x_hi[kx];
          for (int64_t y = 0; y < s.OH; ++y) {
            const int64_t iy = y * s.stride + ky - s.pad;
            if (iy < 0 || iy >= s.H) continue;
            const float* const irow = in + (ci * s.H + iy) * s.W + lo * s.stride + kx - s.pad;
            const int64_t p = y * s.OW + lo;  // the first pixel's place in its strip: q of TW
            int64_t q = p % TW;
            float* d = rows + (p / TW * J + j) * TW + q;
            for (int64_t x = 0; x < hi - lo; ++x) {
              *d++ = irow[x * s.stride];
              if (++q == TW) q = 0, d += (J - 1) * TW;  // on to the next strip's row j
            }
          }
        }
    for (int64_t p = 0; p < P; p += TW) {
      const float* const strip = rows + p * J;  // p / TW strips of J x TW before it
      const int64_t n = std::min<int64_t>(TW, P - p);
      int64_t o = 0;
      for (; o + 6 <= s.O; o += 6) dense_tile<6, VW, kVectors>(strip, J, wt + o * J, out + o * P + p, P, n);
      for (; o + 4 <= s.O; o += 4) dense_tile<4, VW, kVectors>(strip, J, wt + o * J, out + o * P + p, P, n);
      for (; o < s.O; ++o) dense_tile<1, VW, kVectors>(strip, J, wt + o * J, out + o * P + p, P, n);
    }
    return;
  }
  for (int64_t o = 0; o < s.O; ++o) {  // grouped (the separable net's depthwise) convolutions
    const int64_t g = o / s.Og;
    float* const out_plane = out + o * s.OH * s.OW;
    for (int64_t ci = 0; ci < s.Cg; ++ci) {
      const float* const in_plane = in + (g * s.Cg + ci) * s.H * s.W;
      for (int64_t ky = 0; ky < s.K; ++ky)
        for (int64_t kx = 0; kx < s.K; ++kx) {
          const float wv = wt[((o * s.Cg + ci) * s.K + ky) * s.K + kx];
          const int64_t lo = s.x_lo[kx], hi = s.x_hi[kx];
          for (int64_t y = 0; y < s.OH; ++y) {
            const int64_t iy = y * s.stride + ky - s.pad;
            if (iy < 0 || iy >= s.H) continue;
            float* const orow = out_plane + y * s.OW + lo;
            const float* const irow = in_plane + iy * s.W + lo * s.stride + kx - s.pad;
            if (s.stride == 1) {
              for (int64_t x = 0; x < hi - lo; ++x) orow[x] += wv * irow[x];
            } else {
              for (int64_t x = 0; x < hi - lo; ++x) orow[x] += wv * irow[x * s.stride];
            }
          }
        }
    }
  }
}

using ConvLoops = void (*)(const ConvShape&, const float*, const float*, float*, float*);
void conv2d_portable(const ConvShape& s, const float* in, const float* wt, float* rows, float* out) {
  conv2d_loops<4, true>(s, in, wt, rows, out);
}
void conv2d_plain(const ConvShape& s, const float* in, const float* wt, float* rows, float* out) {
  conv2d_loops<4, false>(s, in, wt, rows, out);
}
std::atomic<Kernels> asked{Kernels::kBest};

#if KILN_RT_AVX2
__attribute__((target("avx2"))) void conv2d_avx2(const ConvShape& s, const float* in, const float* wt, float* rows, float* out) {
  conv2d_loops<8, true>(s, in, wt, rows, out);
}
bool avx2_runs() {
  static const bool cpu_has_avx2 = __builtin_cpu_supports("avx2");
  return cpu_has_avx2 && asked.load(std::memory_order_relaxed) == Kernels::kBest;
}
#else
bool avx2_runs() { return false; }
#endif
bool plain_runs() { return !KILN_RT_VECTORS || asked.load(std::memory_order_relaxed) == Kernels::kPlain; }
ConvLoops conv_loops() {
#if KILN_RT_AVX2
  if (avx2_runs()) return conv2d_avx2;
#endif
  return plain_runs() ? conv2d_plain : conv2d_portable;
}

Map conv2d(const Map& in, const Tensor& wt, int64_t stride, int64_t pad, int64_t groups) {
  if (wt.shape.size() != 4 || wt.dim(2) != wt.dim(3) || wt.dim(2) < 1 || wt.dim(0) < 1 || wt.dim(0) % groups != 0)
    throw misfit(wt, "is not a convolution's weight (out x in x k x k)");
  const int64_t O = wt.dim(0), Cg = wt.dim(1), K = wt.dim(2);
  if (Cg * groups != in.c)
    throw misfit(wt, "expects " + std::to_string(Cg * groups) + " input channels, gets " + std::to_string(in.c));
  if (in.h + 2 * pad < K || in.w + 2 * pad < K)
    throw misfit(wt, "is larger than its input (" + std::to_string(in.h) + " x " + std::to_string(in.w) + "): the image is too small for the network");
  Map out;
  out.c = O, out.h = (in.h + 2 * pad - K) / stride + 1, out.w = (in.w + 2 * pad - K) / stride + 1;
  out.v.assign(static_cast<size_t>(out.c * out.h * out.w), 0.f);
  // The output columns x whose input column x * stride + k - pad lies inside the image, for
  // each kernel offset k: the inner loop then runs without a bounds test (and vectorises at
  // stride 1), adding the same products in the same order as a test per element would.
  std::vector<int64_t> x_lo(static_cast<size_t>(K)), x_hi(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) {
    int64_t lo = 0, hi = out.w;
    while (lo < hi && lo * stride + k - pad < 0) ++lo;
    while (hi > lo && (hi - 1) * stride + k - pad >= in.w) --hi;
    x_lo[static_cast<size_t>(k)] = lo, x_hi[static_cast<size_t>(k)] = hi;
  }
  const int64_t padded = (out.h * out.w + 15) / 16 * 16;  // pixels in whole strips of either build
  std::vector<float> rows(groups == 1 ? static_cast<size_t>(Cg * K * K * padded) : 0, 0.f);
  const ConvShape s{in.h, in.w, O, Cg, K, O / groups, out.h, out.w, stride, pad, groups, x_lo.data(), x_hi.data()};
  conv_loops()(s, in.v.data(), wt.data.data(), rows.data(), out.v.data());
  return out;
}

// 2 x 2 max-pooling, stride 2, odd edges dropped (LibTorch's max_pool2d(x, 2)).
Map max_pool2(const Map& x) {
  Map p;
  p.c = x.c, p.h = x.h / 2, p.w = x.w / 2;
  p.v.resize(static_cast<size_t>(p.c * p.h * p.w));
  for (int64_t c = 0; c < x.c; ++c)
    for (int64_t y = 0; y < p.h; ++y)
      for (int64_t xx = 0; xx < p.w; ++xx)
        p.at(c, y, xx) = std::max(std::max(x.at(c, 2 * y, 2 * xx), x.at(c, 2 * y, 2 * xx + 1)),
                                  std::max(x.at(c, 2 * y + 1, 2 * xx), x.at(c, 2 * y + 1, 2 * xx + 1)));
  return p;
}

void add_into(Map& x, const Map& y) {
  if (x.c != y.c || x.h != y.h || x.w != y.w) throw std::runtime_error("residual: the branch's shape is not the input's");
  for (size_t i = 0; i < x.v.size(); ++i) x.v[i] += y.v[i];
}

// The activation, named once per forward pass (a name compared per element cost ~8% of it).
enum class Act { kRelu, kRelu6, kCelu, kGelu };
Act act_named(const std::string& act) {
  if (act == "relu") return Act::kRelu;
  if (act == "relu6") return Act::kRelu6;
  if (act == "celu") return Act::kCelu;
  if (act == "gelu") return Act::kGelu;
  throw std::runtime_error("unknown activation '" + act + "'");
}

// c[0] + t (c[1] + t (c[2] + ...)), written out (a loop of 16 is not unrolled before GCC's
// vectoriser looks, and a loop inside stops it).
template <size_t N, size_t... I>
__attribute__((always_inline)) inline float horner(const float (&c)[N], float t, std::index_sequence<I...>) {
  float p = c[N - 1];
  ((p = p * t + c[N - 2 - I]), ...);
  return p;
}
template <size_t N>
__attribute__((always_inline)) inline float horner(const float (&c)[N], float t) {
  return horner(c, t, std::make_index_sequence<N - 1>());
}

// c ? a : b as bit masks: GCC does not turn a float comparison's ?: into a vector select (it
// may trap, under its default -ftrapping-math), and then vectorises no loop around it.
__attribute__((always_inline)) inline float select(bool c, float a, float b) {
  uint32_t ua, ub;
  std::memcpy(&ua, &a, 4);
  std::memcpy(&ub, &b, 4);
  const uint32_t m = 0u - static_cast<uint32_t>(c), u = (ua & m) | (ub & ~m);
  float r;
  std::memcpy(&r, &u, 4);
  return r;
}

// erf in single precision from two polynomials (coefficients fitted by least squares in double on
// Chebyshev nodes, then rounded to float, by bench/runtime_erf_fit.py): below 0.875, x + x P(x²)
// (P of degree 5, erf(x)/x - 1); up to 3.92, a polynomial of degree 16 in |x| - 2.3975; from 3.92
// on, 1 (erf rounds to 1 there in float). Within 1.7 ulp of the exact erf (measured on 2.4 million
// points; the test holds it to 2). Only +, - and x in a fixed order, no libm: the same bits on
// every platform, compiler and build (glibc's and musl's erff, in the native and the WebAssembly
// builds, differ by an ulp on 1% of inputs), and a loop the compiler vectorises.
__attribute__((always_inline)) inline float erf_poly(float x) {
  static constexpr float kInner[] = {0.12837917f, -0.3761257f, 0.11282608f, -0.026796306f, 0.005038738f, -0.0006235156f};
  static constexpr float kOuter[] = {0.99930257f,   0.0035985403f, -0.008627518f, 0.012590371f,   -0.012216689f, 0.007937295f,
                                     -0.0030861285f, 0.00022792132f, 0.0005260501f, -0.0003299418f, 6.3203246e-05f, 3.077805e-05f,
                                     -2.09108e-05f,  1.3689998e-06f, 1.9226254e-06f, -2.9283967e-07f, -6.14603e-08f};
  const float ax = std::fabs(x), z = ax * ax, t = ax - 2.3975f;
  const float p = horner(kInner, z), q = horner(kOuter, t);
  const float outer = select(ax > 3.92f, 1.f, q);  // NaN: q, NaN
  return std::copysign(select(ax < 0.875f, ax + ax * p, outer), x);
}

// e^x for x <= 0 (CELU's negative side), in the same way: x = k ln 2 + r with k = round(x log2 e)
// (by adding and subtracting 1.5 x 2^23) and r = x - k ln2_hi - k ln2_lo (ln 2 split so that
// k ln2_hi is exact), e^r from its Taylor polynomial of degree 7 (|r| <= ln 2 / 2: the next term
// is under 6e-9 of it), times 2^k built in the exponent bits. Below -87.3 (2^k no longer a
// normal float) it gives e^-87.3 = 1.2e-38 (CELU's e^x - 1 is -1 in float from x = -17 on).
// Within 1.2 ulp of the exact e^x (measured: bench/results/runtime-erf-2026-12-04-epyc.json).
__attribute__((always_inline)) inline float rt_exp_nonpositive(float x) {
  static constexpr float kTaylor[] = {1.f, 1.f, 0.5f, 0.16666667f, 0.041666668f, 0.008333334f, 0.0013888889f, 0.0001984127f};
  x = select(x > -87.3f, x, -87.3f);  // NaN too becomes -87.3: no NaN reaches the int conversion
  const float k = (x * 1.44269504f + 12582912.f) - 12582912.f;  // round to nearest
  const float r = (x - k * 0.693145751953125f) - k * 1.42860677e-06f;
  const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(k) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return horner(kTaylor, r) * scale;
}

template <Act A>
__attribute__((always_inline)) inline float activation_of(float x, float alpha) {
  switch (A) {
    case Act::kRelu: return x > 0 ? x : 0;
    case Act::kRelu6: return std::min(std::max(x, 0.f), 6.f);
    case Act::kCelu: {  // max(0, x) + min(0, alpha (e^(x / alpha) - 1)), its choices as masks (they vectorise)
      const float y = x / alpha, v = alpha * (rt_exp_nonpositive(select(y < 0.f, y, 0.f)) - 1);
      return select(x > 0.f, x, 0.f) + select(v < 0.f, v, 0.f);
    }
    case Act::kGelu: break;
  }
  return 0.5f * x * (1 + erf_poly(x * 0.70710678f));  // x / √2 as LibTorch's x * M_SQRT1_2
}
template <Act A>
__attribute__((always_inline)) inline void activate_each(float* v, int64_t n, float alpha) {  // one loop per activation: they vectorise
  for (int64_t i = 0; i < n; ++i) v[i] = activation_of<A>(v[i], alpha);
}
#if KILN_RT_AVX2
// GELU's and CELU's loops in 8 lanes where AVX2 runs (their erf and e^x are 23 and 8 multiply-
// adds an element, no FMA: the same bits as the SSE2 loop's 4 lanes and the plain build's one).
template <Act A>
__attribute__((target("avx2"))) void activate_avx2(float* v, int64_t n, float alpha) { activate_each<A>(v, n, alpha); }
#endif
void activate(float* v, int64_t n, Act act, float alpha) {
#if KILN_RT_AVX2
  if ((act == Act::kGelu || act == Act::kCelu) && avx2_runs())
    return act == Act::kGelu ? activate_avx2<Act::kGelu>(v, n, alpha) : activate_avx2<Act::kCelu>(v, n, alpha);
#endif
  switch (act) {
    case Act::kRelu: return activate_each<Act::kRelu>(v, n, alpha);
    case Act::kRelu6: return activate_each<Act::kRelu6>(v, n, alpha);
    case Act::kCelu: return activate_each<Act::kCelu>(v, n, alpha);
    case Act::kGelu: return activate_each<Act::kGelu>(v, n, alpha);
  }
}

// The network passes a test-time augmentation mode takes an image; 0 for a name that is no mode.
int64_t tta_passes(const std::string& tta) {
  return tta == "none" ? 1 : tta == "flip" ? 2 : tta == "flip+translate" ? 6 : 0;
}

}  // namespace

const Tensor& Model::tensor(const std::string& n) const {
  auto it = tensors.find(n);
  if (it == tensors.end()) throw std::runtime_error("model has no tensor '" + n + "'");
  return it->second;
}

std::optional<size_t> crc32_field(const uint8_t* b, size_t n) {
  if (n < 16 || std::memcmp(b, "KILNMDL1", 8) != 0) return std::nullopt;
  auto u32 = [&](size_t at) { return uint32_t(b[at]) | uint32_t(b[at + 1]) << 8 | uint32_t(b[at + 2]) << 16 | uint32_t(b[at + 3]) << 24; };
  size_t at = 16;
  for (uint32_t i = 0, n_meta = u32(8); i < n_meta; ++i) {
    if (n - at < 4 || n - at - 4 < u32(at)) return std::nullopt;
    const size_t key = at + 4, key_n = u32(at);
    at = key + key_n;
    if (n - at < 4 || n - at - 4 < u32(at)) return std::nullopt;
    const size_t value = at + 4, value_n = u32(at);
    at = value + value_n;
    if (key_n == 5 && std::memcmp(b + key, "crc32", 5) == 0) return value_n == 8 ? std::optional<size_t>(value) : std::nullopt;
  }
  return std::nullopt;
}

uint32_t file_crc32(const uint8_t* b, size_t n, size_t field) {
  static const uint8_t zeros[8] = {'0', '0', '0', '0', '0', '0', '0', '0'};
  uint32_t c = crc32_portable(b, field);
  c = crc32_portable(zeros, 8, c);
  return crc32_portable(b + field + 8, n - field - 8, c);
}

namespace {
std::string hex8(uint32_t v) {  // "%08x" (without printf, which would add ~17 KB to kiln.js)
  std::string s(8, '0');
  for (int i = 7; i >= 0; --i, v >>= 4) s[static_cast<size_t>(i)] = "0123456789abcdef"[v & 0xF];
  return s;
}
}  // namespace

bool reseal(std::vector<uint8_t>& bytes) {
  const auto field = crc32_field(bytes.data(), bytes.size());
  if (!field) return false;
  const std::string h = hex8(file_crc32(bytes.data(), bytes.size(), *field));
  std::memcpy(bytes.data() + *field, h.data(), 8);
  return true;
}

std::string integrity(const Model& m) {
  const auto it = m.meta.find("crc32");
  return it == m.meta.end() ? "no CRC-32 (exported before 2026-12-05): unchecked" : "CRC-32 " + it->second + " checked";
}

Model parse(const std::vector<uint8_t>& bytes, const std::string& name) {
  Reader r{bytes, name};
  r.need(8, "the magic number");
  if (std::memcmp(bytes.data(), "KILNMDL1", 8) != 0) throw std::runtime_error("'" + name + "' is not a .kiln model file (bad magic number)");
  // The file against its CRC-32 before anything else is judged: a damaged file is called damaged.
  if (const auto field = crc32_field(bytes.data(), bytes.size())) {
    const std::string stored(reinterpret_cast<const char*>(bytes.data() + *field), 8);
    if (stored.find_first_not_of("0123456789abcdef") != std::string::npos)
      throw std::runtime_error("'" + name + "' is damaged: its metadata 'crc32' is '" + stored + "', not 8 lower-case hex digits");
    const uint32_t want = static_cast<uint32_t>(std::stoul(stored, nullptr, 16)), got = file_crc32(bytes.data(), bytes.size(), *field);
    if (want != got)
      throw std::runtime_error("'" + name + "' is damaged: its bytes give CRC-32 0x" + hex8(got) + ", not the 0x" + hex8(want) +
                               " its metadata 'crc32' records: the file changed after it was written (a disk or copy error?)");
  }
  r.pos = 8;
  const uint32_t n_meta = r.u32("the metadata count"), n_tensors = r.u32("the tensor count");
  if (n_meta > 4096 || n_tensors > 1u << 20) throw std::runtime_error("'" + name + "': implausible counts in the header");
  Model m;
  for (uint32_t i = 0; i < n_meta; ++i) {
    auto k = r.str("a metadata key");
    m.meta[k] = r.str("a metadata value");
    if (k == "crc32" && m.meta[k].size() != 8)  // (one of 8 bytes was checked above)
      throw std::runtime_error("'" + name + "' is damaged: its metadata 'crc32' is " + std::to_string(m.meta[k].size()) + " bytes long, not 8 hex digits");
  }
  for (uint32_t i = 0; i < n_tensors; ++i) {
    auto tname = r.str("a tensor name");
    const uint8_t dtype = r.u8("a dtype"), ndim = r.u8("a rank");
    if (dtype > 2 || ndim > 8) throw std::runtime_error("'" + name + "': tensor '" + tname + "' has an unknown dtype or rank");
    Tensor t;
    int64_t numel = 1;
    for (uint8_t d = 0; d < ndim; ++d) {
      t.shape.push_back(r.u32("a dimension"));
      numel *= t.shape.back();
      if (numel > (int64_t{1} << 31)) throw std::runtime_error("'" + name + "': tensor '" + tname + "' is implausibly large");
    }
    // The bytes must be in the file before anything is allocated for them.
    const int64_t C = t.shape.empty() ? 0 : t.shape[0];
    const size_t data_bytes = dtype == 0 ? static_cast<size_t>(numel) * 4 : dtype == 1 ? static_cast<size_t>(numel) : static_cast<size_t>(numel + 1) / 2;
    r.need(data_bytes + (dtype == 0 ? 0 : static_cast<size_t>(C) * 4), dtype == 0 ? "fp32 data" : "int8 scales and data");
    t.data.resize(static_cast<size_t>(numel));
    if (dtype == 0) {
      for (int64_t j = 0; j < numel; ++j) t.data[static_cast<size_t>(j)] = r.f32("fp32 data");
    } else {
      if (ndim == 0) throw std::runtime_error("'" + name + "': int8 tensor '" + tname + "' has no channel dimension");
      const int64_t per = C ? numel / C : 0;
      std::vector<float> scale(static_cast<size_t>(C));
      for (auto& s : scale) s = r.f32("int8 scales");
      r.need(data_bytes, "int8 data");
      for (int64_t j = 0; j < numel; ++j) {
        int q;
        if (dtype == 1) {
          q = static_cast<int8_t>(bytes[r.pos + static_cast<size_t>(j)]);
        } else {  // dtype 2: two's-complement nibbles, element 2k low and 2k + 1 high in byte k
          const int nib = (bytes[r.pos + static_cast<size_t>(j / 2)] >> (j % 2 ? 4 : 0)) & 0xF;
          q = nib >= 8 ? nib - 16 : nib;
        }
        t.data[static_cast<size_t>(j)] = static_cast<float>(q) * scale[static_cast<size_t>(j / per)];
      }
      r.pos += data_bytes;
      m.int8 = true;
    }
    t.name = tname;
    m.tensors[tname] = std::move(t);
  }
  if (r.pos != bytes.size()) throw std::runtime_error("'" + name + "': " + std::to_string(bytes.size() - r.pos) + " bytes after the last tensor");
  for (const char* k : {"model", "activation", "input", "mean", "std", "classes", "widths", "depth", "bn_eps"})
    if (!m.meta.count(k)) throw std::runtime_error("'" + name + "': metadata '" + k + "' missing");
  auto in = ints(m.meta["input"]);
  if (in.size() != 3) throw std::runtime_error("'" + name + "': metadata 'input' must be C,H,W");
  m.channels = in[0], m.height = in[1], m.width = in[2];
  const int64_t most = int64_t{1} << 26;
  if (m.channels < 1 || m.height < 1 || m.width < 1 || m.channels > most || m.height > most || m.width > most ||
      m.channels * m.height * m.width > most)
    throw std::runtime_error("'" + name + "': metadata 'input' (" + m.meta["input"] + ") is not a plausible image size");
  m.kind = m.meta["model"];
  m.activation = m.meta["activation"];
  if (m.meta.count("celu_alpha")) m.celu_alpha = std::stof(m.meta["celu_alpha"]);
  m.bn_eps = std::stof(m.meta["bn_eps"]);
  m.mean = floats(m.meta["mean"]);
  m.stdev = floats(m.meta["std"]);
  if (!m.mean.empty() && (m.mean.size() != static_cast<size_t>(m.channels) || m.stdev.size() != m.mean.size()))
    throw std::runtime_error("'" + name + "': metadata 'mean'/'std' need one value per input channel");
  m.widths = ints(m.meta["widths"]);
  m.depth = std::stoll(m.meta["depth"]);
  auto need = [&](const char* k) -> const std::string& {
    if (!m.meta.count(k)) throw std::runtime_error("'" + name + "': metadata '" + k + "' missing (needed by model " + m.kind + ")");
    return m.meta[k];
  };
  if (m.kind == "resnet9" || m.kind == "airbench") m.output_scale = std::stof(need("output_scale"));
  if (m.kind == "resnet9") {
    m.pool_before_bn = need("pool_before_bn") == "true";
    m.whiten = need("whiten");
    if (m.whiten != "none" && m.whiten != "3x3" && m.whiten != "2x2")
      throw std::runtime_error("'" + name + "': metadata 'whiten' is '" + m.whiten + "', not none | 3x3 | 2x2");
    if (m.widths.size() != 4) throw std::runtime_error("'" + name + "': a resnet9 needs 4 widths");
  }
  if (m.kind == "airbench") {
    m.head_norm = need("head_norm") == "true";
    m.convs_per_group = std::stoll(need("convs_per_group"));
    if (m.convs_per_group != 2 && m.convs_per_group != 3)
      throw std::runtime_error("'" + name + "': metadata 'convs_per_group' must be 2 or 3");
    if (m.widths.empty()) throw std::runtime_error("'" + name + "': an airbench net needs its widths");
  }
  if (m.meta.count("tta")) m.tta = m.meta["tta"];
  if (m.meta.count("tta_translate_weight")) m.tta_translate_weight = std::stod(m.meta["tta_translate_weight"]);
  if (tta_passes(m.tta) == 0)
    throw std::runtime_error("'" + name + "': metadata 'tta' is '" + m.tta + "', not none | flip | flip+translate");
  if (!std::isfinite(m.tta_translate_weight))
    throw std::runtime_error("'" + name + "': metadata 'tta_translate_weight' is not a finite number");
  m.stored_channels = m.channels, m.stored_height = m.height, m.stored_width = m.width;
  if (m.meta.count("stored")) {
    std::vector<int64_t> st;
    try {
      st = ints(m.meta["stored"]);
    } catch (const std::exception&) {
    }
    if (st.size() != 3 || st[0] != m.channels || st[1] < 1 || st[2] < 1 || st[1] > most || st[2] > most || st[1] * st[2] > most)
      throw std::runtime_error("'" + name + "': metadata 'stored' (" + m.meta["stored"] + ") is not C,H,W of plausible images with the input's channels");
    m.stored_height = st[1], m.stored_width = st[2];
  }
  if (m.meta.count("resize")) {
    m.resize = m.meta["resize"];
    if (m.resize != "stretch" && m.resize != "center_crop" && m.resize != "pad")
      throw std::runtime_error("'" + name + "': metadata 'resize' is '" + m.resize + "', not stretch | center_crop | pad");
  }
  if (m.meta.count("background")) {
    const auto& b = m.meta["background"];
    if (b.empty() || b.size() > 3 || b.find_first_not_of("0123456789") != std::string::npos || std::stoi(b) > 255)
      throw std::runtime_error("'" + name + "': metadata 'background' is '" + b + "', not a grey level 0..255");
    m.background = std::stoi(b);
  }
  if (m.meta.count("eval_crop")) {
    const auto& e = m.meta["eval_crop"];
    char* end = nullptr;
    m.eval_crop = std::strtod(e.c_str(), &end);
    if (e.empty() || *end != '\0' || !(m.eval_crop > 0 && m.eval_crop <= 1))
      throw std::runtime_error("'" + name + "': metadata 'eval_crop' is '" + e + "', not a fraction in (0, 1]");
  }
  std::stringstream cs(m.meta["classes"]);
  std::string c;
  while (std::getline(cs, c, '\n')) m.classes.push_back(c);
  return m;
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open '" + path + "'");
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

uint32_t big_endian_u32(const std::vector<uint8_t>& b, size_t at, const std::string& name) {
  if (at + 4 > b.size()) throw std::runtime_error("'" + name + "': truncated (a 4-byte field at byte " + std::to_string(at) + ")");
  return (uint32_t(b[at]) << 24) | (uint32_t(b[at + 1]) << 16) | (uint32_t(b[at + 2]) << 8) | uint32_t(b[at + 3]);
}

Model load(const std::string& path) { return parse(read_bytes(path), path); }

int64_t Model::views() const {
  const int64_t n = tta_passes(tta);
  if (n == 0) throw std::runtime_error("tta '" + tta + "' is not none | flip | flip+translate");
  return n;
}

std::vector<float> Model::predict(const float* pixels) const {
  const int64_t n_views = views(), C = channels, H = height, W = width;
  if (n_views == 1) return forward(pixels);
  // The mean of the logits of the image and its left-right mirror.
  auto mirror = [&](const float* in) {
    std::vector<float> flipped(static_cast<size_t>(C * H * W));
    for (int64_t r = 0; r < C * H; ++r)
      for (int64_t x = 0; x < W; ++x) flipped[static_cast<size_t>(r * W + x)] = in[r * W + (W - 1 - x)];
    auto a = forward(in);
    const auto b = forward(flipped.data());
    for (size_t i = 0; i < a.size(); ++i) a[i] = 0.5f * (a[i] + b[i]);
    return a;
  };
  if (n_views == 2) return mirror(pixels);
  // flip+translate: the image reflect-padded by one pixel, then cut at the top-left (shift -1:
  // pixel (y, x) is the input's (y - 1, x - 1)) and at the bottom-right (shift +1), reflecting
  // at the borders without repeating the edge (-1 -> 1, n -> n - 2), as LibTorch's reflect pad.
  if (H < 2 || W < 2) throw std::runtime_error("tta flip+translate needs an image of at least 2x2 pixels (it reflects one pixel)");
  auto shifted = [&](int64_t d) {
    auto reflect = [](int64_t i, int64_t n) { return i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i; };
    std::vector<float> out(static_cast<size_t>(C * H * W));
    for (int64_t c = 0; c < C; ++c)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x)
          out[static_cast<size_t>((c * H + y) * W + x)] = pixels[(c * H + reflect(y + d, H)) * W + reflect(x + d, W)];
    return out;
  };
  const auto centre = mirror(pixels), up_left = mirror(shifted(-1).data()), down_right = mirror(shifted(1).data());
  // As LibTorch computes (1 - w) * centre + w * 0.5 * (up_left + down_right): the scalars in
  // double, then applied to the fp32 logits.
  const auto a = static_cast<float>(1 - tta_translate_weight), b = static_cast<float>(tta_translate_weight * 0.5);
  std::vector<float> out(centre.size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = a * centre[i] + b * (up_left[i] + down_right[i]);
  return out;
}

std::vector<float> Model::forward(const float* pixels) const {
  const Act act = act_named(activation);
  const float alpha = celu_alpha, eps = bn_eps;
  const auto& stdv = stdev;
  Map x;
  x.c = channels, x.h = height, x.w = width;
  x.v.assign(pixels, pixels + channels * height * width);
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t i = 0; i < height * width; ++i) {
      float& p = x.v[static_cast<size_t>(c * height * width + i)];
      p = mean.empty() ? p / 255.f : (p - mean[static_cast<size_t>(c)]) / stdv[static_cast<size_t>(c)];
    }
  auto bn = [&](Map& t, const std::string& n, bool then_act) {
    for (const char* part : {".weight", ".bias", ".running_mean", ".running_var"})
      if (tensor(n + part).data.size() != static_cast<size_t>(t.c))
        throw misfit(tensor(n + part), "is not one value per channel of its input (" + std::to_string(t.c) + ")");
    const auto &w = tensor(n + ".weight").data, &b = tensor(n + ".bias").data, &rm = tensor(n + ".running_mean").data,
               &rv = tensor(n + ".running_var").data;
    for (int64_t c = 0; c < t.c; ++c) {
      const float s = w[static_cast<size_t>(c)] / std::sqrt(rv[static_cast<size_t>(c)] + eps);
      const float sh = b[static_cast<size_t>(c)] - rm[static_cast<size_t>(c)] * s;
      float* const plane = t.v.data() + c * t.h * t.w;
      for (int64_t i = 0; i < t.h * t.w; ++i) plane[i] = plane[i] * s + sh;
      if (then_act) activate(plane, t.h * t.w, act, alpha);
    }
  };
  // conv -> BN -> act (-> 2x2 max-pool), or with pool_before_bn conv -> pool -> BN -> act: ConvBNImpl.
  auto conv_bn = [&](const Map& in, const std::string& n, bool pool) {
    const Tensor& w = tensor(n + ".conv.weight");
    Map y = conv2d(in, w, 1, w.shape.size() == 4 ? w.dim(2) / 2 : 0, 1);  // conv2d refuses another rank
    if (pool && pool_before_bn) y = max_pool2(y);
    bn(y, n + ".bn", true);
    return pool && !pool_before_bn ? max_pool2(y) : y;
  };
  // resnet9 and airbench: features pooled by their maximum, a bias-free head, the logits scaled;
  // separable and dense: pooled by their mean, a head with a bias, unscaled.
  const bool myrtle_head = kind == "resnet9" || kind == "airbench";
  if (kind == "resnet9") {  // kiln/nn/model.h's ResNet9::forward
    if (whiten != "none") x = conv2d(x, tensor("whiten.weight"), 1, whiten == "3x3" ? 1 : 0, 1);
    x = conv_bn(x, "prep", false);
    x = conv_bn(x, "layer1", true);
    add_into(x, conv_bn(conv_bn(x, "res1.a", false), "res1.b", false));
    x = conv_bn(x, "layer2", true);
    x = conv_bn(x, "layer3", true);
    add_into(x, conv_bn(conv_bn(x, "res3.a", false), "res3.b", false));
  } else if (kind == "airbench") {  // kiln/nn/airbench.h's AirbenchNet::forward
    x = conv2d(x, tensor("whiten.weight"), 1, 0, 1);
    const auto b = tensors.find("whiten_bias");  // present when the run trained one
    if (b != tensors.end() && b->second.data.size() != static_cast<size_t>(x.c))
      throw misfit(b->second, "is not one value per whitening filter (" + std::to_string(x.c) + ")");
    if (b != tensors.end())
      for (int64_t c = 0; c < x.c; ++c)
        for (int64_t i = 0; i < x.h * x.w; ++i) x.v[static_cast<size_t>(c * x.h * x.w + i)] += b->second.data[static_cast<size_t>(c)];
    activate(x.v.data(), x.c * x.h * x.w, act, alpha);
    for (size_t g = 1; g <= widths.size(); ++g) {
      const std::string n = "group" + std::to_string(g);
      x = max_pool2(conv2d(x, tensor(n + ".conv1.weight"), 1, 1, 1));
      bn(x, n + ".bn1", true);
      Map y = conv2d(x, tensor(n + ".conv2.weight"), 1, 1, 1);
      bn(y, n + ".bn2", true);
      if (convs_per_group == 3) {  // act(bn3(conv3(y)) + x)
        Map z = conv2d(y, tensor(n + ".conv3.weight"), 1, 1, 1);
        bn(z, n + ".bn3", false);
        add_into(z, x);
        activate(z.v.data(), z.c * z.h * z.w, act, alpha);
        y = std::move(z);
      }
      x = std::move(y);
    }
  } else if (kind == "separable") {
    x = conv2d(x, tensor("stem.weight"), 1, 1, 1);
    bn(x, "stem_bn", true);
    int64_t k = 0;
    for (size_t s = 1; s < widths.size(); ++s)
      for (int64_t d = 0; d < depth; ++d, ++k) {
        const std::string p = "block" + std::to_string(k);
        x = conv2d(x, tensor(p + ".depthwise.weight"), d == 0 ? 2 : 1, 1, x.c);
        bn(x, p + ".bn1", true);
        x = conv2d(x, tensor(p + ".pointwise.weight"), 1, 0, 1);
        bn(x, p + ".bn2", true);
      }
  } else if (kind == "dense") {
    x = conv2d(x, tensor("stem.weight"), 1, 1, 1);
    const size_t blocks = widths.size() - 1;
    for (size_t b = 0; b < blocks; ++b) {
      for (int64_t l = 0; l < depth; ++l) {
        const std::string p = "block" + std::to_string(b) + "_layer" + std::to_string(l);
        Map t = x;
        bn(t, p + "_bn", true);
        Map y = conv2d(t, tensor(p + "_conv.weight"), 1, 1, 1);
        if (y.h != x.h || y.w != x.w) throw misfit(tensor(p + "_conv.weight"), "changes the map's size: its output cannot join its input");
        x.v.insert(x.v.end(), y.v.begin(), y.v.end());  // channel concatenation (planar maps)
        x.c += y.c;
      }
      if (b + 1 < blocks) {
        const std::string p = "transition" + std::to_string(b);
        bn(x, p + "_bn", true);
        x = conv2d(x, tensor(p + "_conv.weight"), 1, 0, 1);
        Map pooled;
        pooled.c = x.c, pooled.h = x.h / 2, pooled.w = x.w / 2;
        pooled.v.assign(static_cast<size_t>(pooled.c * pooled.h * pooled.w), 0.f);
        for (int64_t c = 0; c < x.c; ++c)
          for (int64_t yy = 0; yy < pooled.h; ++yy)
            for (int64_t xx = 0; xx < pooled.w; ++xx)
              pooled.at(c, yy, xx) = 0.25f * (x.at(c, 2 * yy, 2 * xx) + x.at(c, 2 * yy, 2 * xx + 1) +
                                               x.at(c, 2 * yy + 1, 2 * xx) + x.at(c, 2 * yy + 1, 2 * xx + 1));
        x = std::move(pooled);
      }
    }
    bn(x, "final_bn", true);
  } else {
    throw std::runtime_error("model '" + kind + "' is not supported by the runtime (resnet9 | airbench | separable | dense)");
  }
  // Global pooling, then the linear head (resnet9 and airbench: no bias, the logits scaled).
  if (x.h < 1 || x.w < 1) throw std::runtime_error("the image is too small for the network: its pooling leaves no pixel");
  std::vector<float> feat(static_cast<size_t>(x.c), 0.f);
  for (int64_t c = 0; c < x.c; ++c) {
    const auto first = x.v.begin() + c * x.h * x.w, last = first + x.h * x.w;
    if (myrtle_head) {
      feat[static_cast<size_t>(c)] = *std::max_element(first, last);
    } else {
      double s = 0;
      for (auto it = first; it != last; ++it) s += *it;
      feat[static_cast<size_t>(c)] = static_cast<float>(s / static_cast<double>(x.h * x.w));
    }
  }
  const Tensor& W = tensor("fc.weight");
  const Tensor* B = myrtle_head ? nullptr : &tensor("fc.bias");
  if (W.shape.size() != 2 || W.dim(0) < 1) throw misfit(W, "is not a linear layer's weight (classes x features)");
  const int64_t O = W.dim(0), I = W.dim(1);
  if (I != x.c) throw misfit(W, "expects " + std::to_string(I) + " features, gets " + std::to_string(x.c));
  if (B && B->data.size() != static_cast<size_t>(O)) throw misfit(*B, "is not one value per class");
  const bool by_width = kind == "airbench" && head_norm;  // airbench94_muon's head: the logits over the width
  std::vector<float> out(static_cast<size_t>(O));
  for (int64_t o = 0; o < O; ++o) {
    double s = B ? B->data[static_cast<size_t>(o)] : 0;
    for (int64_t i = 0; i < I; ++i) s += static_cast<double>(W.data[static_cast<size_t>(o * I + i)]) * feat[static_cast<size_t>(i)];
    const float z = static_cast<float>(s);
    out[static_cast<size_t>(o)] = by_width ? z / static_cast<float>(widths.back()) : myrtle_head ? z * output_scale : z;
  }
  return out;
}

int64_t Model::classify(const float* pixels) const {
  auto z = predict(pixels);
  return std::max_element(z.begin(), z.end()) - z.begin();
}

void use_kernels(Kernels k) { asked.store(k, std::memory_order_relaxed); }

float erf(float x) { return erf_poly(x); }
float exp_nonpositive(float x) { return rt_exp_nonpositive(x); }

const char* kernels() { return avx2_runs() ? "AVX2" : plain_runs() ? "plain" : "portable"; }

}  // namespace kiln::rt
