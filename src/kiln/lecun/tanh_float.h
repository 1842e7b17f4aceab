// tanh for float in a form compilers vectorise (no libm call): WebAssembly's libc has only a
// scalar tanhf, which cost the 1989 network's page more than a third of each training step.
// Computed in double and rounded once: tanh|x| = -m / (2 + m), m = expm1(-2|x|), with
// expm1(y) = 2^k (1 + expm1(r)) - 1, y = k ln2 + r, |r| <= ln2 / 2, expm1(r) by its Taylor
// series to r^10 (remainder < 1e-11 relative: far below float's 6e-8), 2^k built in the
// exponent bits. |x| is clamped at 9.5, where tanh rounds to 1 in float. Checked against
// std::tanh on every float in [0, 12]: 23 of 1.09e9 one ulp off (double rounding) without
// -ffast-math; with it, as the WebAssembly build compiles it, at most 2 ulp.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace kiln::lecun {

inline float tanh_float(float xf) {
  const double x = xf;
  double t = std::fabs(x);
  t = t <= 9.5 ? t : 9.5;  // a NaN computes with 9.5 (no undefined cast below) and is returned as it came
  const double y = -2.0 * t;                              // [-19, 0]
  const double k = std::nearbyint(y * 1.4426950408889634);  // [-27, 0]
  const double r = y - k * 0.6931471805599453;            // |r| <= 0.347
  const double p =
      r * (1.0 + r * (1.0 / 2 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (1.0 / 720 + r * (1.0 / 5040 +
      r * (1.0 / 40320 + r * (1.0 / 362880 + r * (1.0 / 3628800))))))))));
  const int64_t e = static_cast<int64_t>(k) + 1023;
  const uint64_t bits = static_cast<uint64_t>(e) << 52;
  double s;
  std::memcpy(&s, &bits, sizeof s);                       // 2^k
  // expm1(y): p itself when k = 0 (|y| <= 0.347, where 2^k (1 + p) - 1 would cancel), else
  // 2^k (1 + p) - 1 (|result| >= 0.29: no cancellation). Written so that -ffast-math's
  // reassociation cannot turn it into the cancelling form.
  const double m = k == 0 ? p : s * (1.0 + p) - 1.0;
  const double th = std::fabs(m / (2.0 + m));
  const float out = static_cast<float>(std::copysign(th, x));  // tanh(-0) = -0
  return x == x ? out : xf;
}

}  // namespace kiln::lecun
