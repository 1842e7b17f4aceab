#include "kiln/report/stats.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace kiln {

namespace {
// Continued fraction of the regularised incomplete beta function (modified Lentz).
double beta_cf(double a, double b, double x) {
  const double tiny = 1e-300, eps = 1e-15;
  double qab = a + b, qap = a + 1, qam = a - 1, c = 1, d = 1 - qab * x / qap;
  if (std::fabs(d) < tiny) d = tiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= 500; ++m) {
    int m2 = 2 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    double del = d * c;
    h *= del;
    if (std::fabs(del - 1) < eps) break;
  }
  return h;
}

double incomplete_beta(double a, double b, double x) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  double lbt = std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  if (x < (a + 1) / (a + b + 2)) return std::exp(lbt) * beta_cf(a, b, x) / a;
  return 1 - std::exp(lbt) * beta_cf(b, a, 1 - x) / b;
}
}  // namespace

double student_t_cdf(double t, double df) {
  double x = df / (df + t * t);
  double tail = 0.5 * incomplete_beta(df / 2, 0.5, x);
  return t >= 0 ? 1 - tail : tail;
}

double student_t_quantile(double p, double df) {
  double lo = -1e3, hi = 1e3;
  for (int i = 0; i < 200; ++i) {
    double mid = 0.5 * (lo + hi);
    (student_t_cdf(mid, df) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

Summary summarize(const std::vector<double>& xs) {
  Summary s;
  s.n = static_cast<int64_t>(xs.size());
  if (xs.empty()) return s;
  double sum = 0;
  for (double x : xs) sum += x;
  s.mean = sum / s.n;
  s.min = *std::min_element(xs.begin(), xs.end());
  s.max = *std::max_element(xs.begin(), xs.end());
  if (s.n > 1) {
    double ss = 0;
    for (double x : xs) ss += (x - s.mean) * (x - s.mean);
    s.std = std::sqrt(ss / (s.n - 1));
    double half = student_t_quantile(0.975, static_cast<double>(s.n - 1)) * s.std / std::sqrt(double(s.n));
    s.ci_low = s.mean - half;
    s.ci_high = s.mean + half;
  } else {
    s.ci_low = -std::numeric_limits<double>::infinity();
    s.ci_high = std::numeric_limits<double>::infinity();
  }
  return s;
}

double welch_p_value(const std::vector<double>& a, const std::vector<double>& b) {
  auto sa = summarize(a), sb = summarize(b);
  if (sa.n < 2 || sb.n < 2) return std::numeric_limits<double>::quiet_NaN();
  double va = sa.std * sa.std / sa.n, vb = sb.std * sb.std / sb.n;
  if (va + vb == 0) return sa.mean == sb.mean ? 1.0 : 0.0;
  double t = (sa.mean - sb.mean) / std::sqrt(va + vb);
  double df = (va + vb) * (va + vb) / (va * va / (sa.n - 1) + vb * vb / (sb.n - 1));
  return 2 * (1 - student_t_cdf(std::fabs(t), df));
}

double paired_p_value(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size() || a.size() < 2) return std::numeric_limits<double>::quiet_NaN();
  std::vector<double> d(a.size());
  for (size_t k = 0; k < a.size(); ++k) d[k] = a[k] - b[k];
  const auto s = summarize(d);
  if (s.std == 0) return s.mean == 0 ? 1.0 : 0.0;
  return 2 * (1 - student_t_cdf(std::fabs(s.mean / (s.std / std::sqrt(double(s.n)))), double(s.n - 1)));
}

std::string format_summary(const Summary& s, int d, double k) {
  char buf[256];
  if (s.n > 1)
    std::snprintf(buf, sizeof buf, "%.*f ± %.*f (n=%lld, 95%% CI %.*f–%.*f)", d, s.mean * k, d, s.std * k,
                  (long long)s.n, d, s.ci_low * k, d, s.ci_high * k);
  else
    std::snprintf(buf, sizeof buf, "%.*f (n=%lld, no interval)", d, s.mean * k, (long long)s.n);
  return buf;
}

}  // namespace kiln
