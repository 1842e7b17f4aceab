#include "kiln/lecun/net1989.h"
#include "kiln/lecun/tanh_float.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace kiln::lecun {

const int kH2Inputs[12][8] = {
    {0, 1, 2, 3, 4, 5, 6, 7},    {0, 1, 2, 3, 4, 5, 6, 7},    {0, 1, 2, 3, 4, 5, 6, 7},    {0, 1, 2, 3, 4, 5, 6, 7},
    {4, 5, 6, 7, 8, 9, 10, 11},  {4, 5, 6, 7, 8, 9, 10, 11},  {4, 5, 6, 7, 8, 9, 10, 11},  {4, 5, 6, 7, 8, 9, 10, 11},
    {0, 1, 2, 3, 8, 9, 10, 11},  {0, 1, 2, 3, 8, 9, 10, 11},  {0, 1, 2, 3, 8, 9, 10, 11},  {0, 1, 2, 3, 8, 9, 10, 11}};

uint64_t Rng::next() {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

double Rng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

template <class T>
Net1989<T>::Net1989(Variant v) : params(kParams, T(0)), grads(kParams, T(0)), variant(v) {}

template <class T>
void Net1989<T>::init(Rng& rng) {
  std::fill(params.begin(), params.end(), T(0));
  auto fill = [&](int off, int n, int fan_in) {
    double a = 2.4 / std::sqrt(static_cast<double>(fan_in));
    for (int i = 0; i < n; ++i) params[off + i] = static_cast<T>((rng.uniform() - 0.5) * 2 * a);
  };
  fill(kH1w, 300, 25);
  fill(kH2w, 2400, 200);
  fill(kH3w, 5760, 192);
  fill(kOutw, 300, 30);
  for (int i = 0; i < 10; ++i) params[kOutb + i] = T(-1);
}

// tanh: std::tanh natively (glibc vectorises it), in WebAssembly kiln's own (its libc's is scalar).
static inline double tanh_of(double z) { return std::tanh(z); }
static inline float tanh_of(float z) {
#ifdef __wasm__
  return tanh_float(z);
#else
  return std::tanh(z);
#endif
}

template <class T>
void Net1989<T>::activate(T* z, int n) const {
  if (variant.relu) {
    for (int i = 0; i < n; ++i) z[i] = z[i] > T(0) ? z[i] : T(0);
  } else {
    for (int i = 0; i < n; ++i) z[i] = tanh_of(z[i]);
  }
}

// Derivative from the activation's output.
template <class T>
static inline T dact(T y, bool relu) {
  return relu ? (y > T(0) ? T(1) : T(0)) : T(1) - y * y;
}

// The layout makes every inner loop a contiguous multiply-add over output positions (or a
// short dot product), which the compiler vectorises: H1 and H2 are written as small matrix
// products of the weights with tap-major patch matrices (im2col).
template <class T>
T Net1989<T>::step(const T* x, int label, bool train, const Draws& d, bool backward) {
  const T* P = params.data();
  const bool relu = variant.relu;
  // Input: padded by 2 with -1, rolled by (shift_rows, shift_cols) like torch.roll.
  const int sr = train ? d.shift_rows : 0, sc = train ? d.shift_cols : 0;
  for (int r = 0; r < 20; ++r)
    for (int c = 0; c < 20; ++c) {
      int ir = r - 2, ic = c - 2;
      in_[r * 20 + c] = (ir < 0 || ir >= 16 || ic < 0 || ic >= 16)
                            ? T(-1)
                            : x[((ir - sr + 16) % 16) * 16 + ((ic - sc + 16) % 16)];
    }
  // H1 = W1 (12 x 25) * patches (25 x 64) + untied biases
  for (int ky = 0; ky < 5; ++ky)
    for (int kx = 0; kx < 5; ++kx) {
      T* row = p1_ + (ky * 5 + kx) * 64;
      for (int oy = 0; oy < 8; ++oy)
        for (int ox = 0; ox < 8; ++ox) row[oy * 8 + ox] = in_[(2 * oy + ky) * 20 + 2 * ox + kx];
    }
  // Sums go to local arrays: the compiler cannot prove that the member arrays and the
  // parameter vector do not alias, and would otherwise store after every multiply-add.
  for (int m = 0; m < 12; ++m) {
    T acc[64];
    const T* b = P + kH1b + m * 64;
    for (int u = 0; u < 64; ++u) acc[u] = b[u];
    for (int k = 0; k < 25; ++k) {
      const T w = P[kH1w + m * 25 + k];
      const T* row = p1_ + k * 64;
      for (int u = 0; u < 64; ++u) acc[u] += w * row[u];
    }
    std::copy(acc, acc + 64, h1_ + m * 64);
  }
  activate(h1_, 12 * 64);
  // H1 padded by 2 with -1
  for (int m = 0; m < 12; ++m)
    for (int r = 0; r < 12; ++r)
      for (int c = 0; c < 12; ++c) {
        int ir = r - 2, ic = c - 2;
        q_[m * 144 + r * 12 + c] = (ir < 0 || ir >= 8 || ic < 0 || ic >= 8) ? T(-1) : h1_[m * 64 + ir * 8 + ic];
      }
  // H2: three connection groups of 4 output maps sharing 8 input maps each. The patches are
  // position-major (each position's 200 inputs contiguous, as 8 x 5 rows of 5), so the four maps'
  // dot products share every load here, and the backward pass vectorises over the 200 inputs.
  for (int g = 0; g < 3; ++g) {
    T* pg = p2_[g];
    for (int oy = 0; oy < 4; ++oy)
      for (int ox = 0; ox < 4; ++ox) {
        T* col = pg + (oy * 4 + ox) * 200;
        for (int j = 0; j < 8; ++j) {
          const T* src = q_ + kH2Inputs[4 * g][j] * 144 + (2 * oy) * 12 + 2 * ox;
          for (int ky = 0; ky < 5; ++ky) std::memcpy(col + j * 25 + ky * 5, src + ky * 12, 5 * sizeof(T));
        }
      }
    const T* w = P + kH2w + 4 * g * 200;
    for (int u = 0; u < 16; ++u) {
      const T* col = pg + u * 200;
      T s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (int k = 0; k < 200; ++k) {
        s0 += w[k] * col[k];
        s1 += w[200 + k] * col[k];
        s2 += w[400 + k] * col[k];
        s3 += w[600 + k] * col[k];
      }
      const T* b = P + kH2b + 4 * g * 16 + u;
      h2_[4 * g * 16 + u] = b[0] + s0;
      h2_[(4 * g + 1) * 16 + u] = b[16] + s1;
      h2_[(4 * g + 2) * 16 + u] = b[32] + s2;
      h2_[(4 * g + 3) * 16 + u] = b[48] + s3;
    }
  }
  activate(h2_, 192);
  // Dropout before H3 (inverted: kept units scaled by 1 / (1 - p))
  const bool drop = train && variant.dropout > 0 && d.keep;
  const T keep_scale = drop ? T(1.0 / (1.0 - variant.dropout)) : T(1);
  for (int i = 0; i < 192; ++i) h2d_[i] = drop ? (d.keep[i] ? h2_[i] * keep_scale : T(0)) : h2_[i];
  // H3: x @ H3w + H3b
  {
    T acc[30];
    for (int k = 0; k < 30; ++k) acc[k] = P[kH3b + k];
    for (int i = 0; i < 192; ++i) {
      const T a = h2d_[i];
      const T* w = P + kH3w + i * 30;
      for (int k = 0; k < 30; ++k) acc[k] += a * w[k];
    }
    std::copy(acc, acc + 30, h3_);
  }
  activate(h3_, 30);
  // Output
  {
    T acc[10];
    for (int o = 0; o < 10; ++o) acc[o] = P[kOutb + o];
    for (int k = 0; k < 30; ++k) {
      const T a = h3_[k];
      const T* w = P + kOutw + k * 10;
      for (int o = 0; o < 10; ++o) acc[o] += a * w[o];
    }
    std::copy(acc, acc + 10, out_);
  }
  T loss = 0;
  if (variant.cross_entropy) {
    T mx = *std::max_element(out_, out_ + 10), z = 0;
    for (int o = 0; o < 10; ++o) z += std::exp(out_[o] - mx);
    loss = mx + std::log(z) - out_[label];
    if (backward)
      for (int o = 0; o < 10; ++o) dout_[o] = std::exp(out_[o] - mx) / z - (o == label ? T(1) : T(0));
  } else {
    // tanh outputs; MSE as the mean over the 10 outputs against +-1 targets.
    for (int o = 0; o < 10; ++o) {
      out_[o] = tanh_of(out_[o]);
      T e = out_[o] - (o == label ? T(1) : T(-1));
      loss += e * e;
      if (backward) dout_[o] = T(2) * e / T(10) * (T(1) - out_[o] * out_[o]);
    }
    loss /= T(10);
  }
  if (!backward) return loss;

  // ---- backward ----
  T* G = grads.data();
  for (int o = 0; o < 10; ++o) G[kOutb + o] = dout_[o];
  for (int k = 0; k < 30; ++k) {
    T s = 0;
    const T* w = P + kOutw + k * 10;
    T* gw = G + kOutw + k * 10;
    for (int o = 0; o < 10; ++o) {
      gw[o] = h3_[k] * dout_[o];
      s += w[o] * dout_[o];
    }
    dh3_[k] = s * dact(h3_[k], relu);
    G[kH3b + k] = dh3_[k];
  }
  for (int i = 0; i < 192; ++i) {
    const T* w = P + kH3w + i * 30;
    T* gw = G + kH3w + i * 30;
    T s = 0;
    const T a = h2d_[i];
    for (int k = 0; k < 30; ++k) {
      gw[k] = a * dh3_[k];
      s += w[k] * dh3_[k];
    }
    if (drop) s = d.keep[i] ? s * keep_scale : T(0);
    dh2_[i] = s * dact(h2_[i], relu);
    G[kH2b + i] = dh2_[i];
  }
  std::fill(dq_, dq_ + 12 * 144, T(0));
  for (int g = 0; g < 3; ++g) {
    const T* pg = p2_[g];
    const T* w = P + kH2w + 4 * g * 200;
    T* gw = G + kH2w + 4 * g * 200;
    // Weight gradient: gw[a][k] = sum over positions u of dz[a][u] * patch[u][k].
    for (int a = 0; a < 4; ++a) {
      const T* dz = dh2_ + (4 * g + a) * 16;
      T acc[200];
      for (int k = 0; k < 200; ++k) acc[k] = dz[0] * pg[k];
      for (int u = 1; u < 16; ++u) {
        const T du = dz[u];
        const T* col = pg + u * 200;
        for (int k = 0; k < 200; ++k) acc[k] += du * col[k];
      }
      std::copy(acc, acc + 200, gw + a * 200);
    }
    // Patch gradient: dp2[u][k] = sum over the group's maps a of dz[a][u] * w[a][k].
    for (int u = 0; u < 16; ++u) {
      const T d0 = dh2_[4 * g * 16 + u], d1 = dh2_[(4 * g + 1) * 16 + u], d2 = dh2_[(4 * g + 2) * 16 + u],
              d3 = dh2_[(4 * g + 3) * 16 + u];
      T* drow = dp2_ + u * 200;
      for (int k = 0; k < 200; ++k) drow[k] = d0 * w[k] + d1 * w[200 + k] + d2 * w[400 + k] + d3 * w[600 + k];
    }
    // col2im: add the patch gradients back onto the padded H1 maps, one output row at a time
    // (the four horizontal positions' windows overlap, so they are summed in registers first).
    for (int j = 0; j < 8; ++j) {
      T* dmap = dq_ + kH2Inputs[4 * g][j] * 144;
      for (int oy = 0; oy < 4; ++oy)
        for (int ky = 0; ky < 5; ++ky) {
          T row[12] = {};
          for (int ox = 0; ox < 4; ++ox) {
            const T* drow = dp2_ + (oy * 4 + ox) * 200 + j * 25 + ky * 5;
            for (int kx = 0; kx < 5; ++kx) row[2 * ox + kx] += drow[kx];
          }
          T* dst = dmap + (2 * oy + ky) * 12;
          for (int c = 0; c < 12; ++c) dst[c] += row[c];
        }
    }
  }
  T* d1 = G + kH1b;  // H1's untied-bias gradient is its pre-activation gradient
  for (int m = 0; m < 12; ++m)
    for (int oy = 0; oy < 8; ++oy)
      for (int ox = 0; ox < 8; ++ox) {
        const int u = m * 64 + oy * 8 + ox;
        d1[u] = dq_[m * 144 + (oy + 2) * 12 + (ox + 2)] * dact(h1_[u], relu);
      }
  for (int m = 0; m < 12; ++m) {
    T dz[64];
    std::copy(d1 + m * 64, d1 + m * 64 + 64, dz);
    for (int k = 0; k < 25; ++k) {
      const T* row = p1_ + k * 64;
      T s = 0;
      for (int u = 0; u < 64; ++u) s += dz[u] * row[u];
      G[kH1w + m * 25 + k] = s;
    }
  }
  return loss;
}

template <class T>
int Net1989<T>::predict(const T* x) {
  step(x, 0, false, Draws{}, false);
  return static_cast<int>(std::max_element(out_, out_ + 10) - out_);
}

template <class T>
void sgd_update(std::vector<T>& p, const std::vector<T>& g, double lr) {
  const T a = static_cast<T>(lr);
  const size_t n = p.size();
  for (size_t i = 0; i < n; ++i) p[i] -= a * g[i];
}

template <class T>
void AdamW<T>::update(std::vector<T>& p, const std::vector<T>& g, double lr) {
  if (m.empty()) m.assign(p.size(), T(0)), v.assign(p.size(), T(0));
  ++t;
  const T b1 = T(beta1), b2 = T(beta2);
  const T bc1 = T(1 - std::pow(beta1, double(t))), bc2 = T(1 - std::pow(beta2, double(t)));
  const T step = T(lr) / bc1, decay = T(1 - lr * weight_decay), e = T(eps), sbc2 = std::sqrt(bc2);
  const size_t n = p.size();
  for (size_t i = 0; i < n; ++i) {
    m[i] = b1 * m[i] + (T(1) - b1) * g[i];
    v[i] = b2 * v[i] + (T(1) - b2) * g[i] * g[i];
    p[i] = p[i] * decay - step * m[i] / (std::sqrt(v[i]) / sbc2 + e);
  }
}

template class Net1989<float>;
template class Net1989<double>;
template void sgd_update(std::vector<float>&, const std::vector<float>&, double);
template void sgd_update(std::vector<double>&, const std::vector<double>&, double);
template struct AdamW<float>;
template struct AdamW<double>;

}  // namespace kiln::lecun
