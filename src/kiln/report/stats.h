// Statistics, one convention everywhere: mean, sample standard deviation (n - 1), n, and
// the 95% interval mean +- t(0.975, n-1) * s / sqrt(n); comparisons use Welch's t-test, or the
// paired t-test where both sides are measured on the same networks.
#pragma once
#include <string>
#include <vector>

namespace kiln {

struct Summary {
  int64_t n = 0;
  double mean = 0, std = 0, min = 0, max = 0, ci_low = 0, ci_high = 0;
};

Summary summarize(const std::vector<double>& xs);
// Student's t distribution: CDF and quantile for `df` degrees of freedom (df may be fractional).
double student_t_cdf(double t, double df);
double student_t_quantile(double p, double df);
// Welch's unequal-variance t-test: the two-sided p-value for mean(a) != mean(b).
double welch_p_value(const std::vector<double>& a, const std::vector<double>& b);
// The paired t-test: the two-sided p-value for mean(a - b) != 0, a[k] and b[k] measured on the same
// thing (an ablation row that evaluates another row's networks again, run k by run k). NaN when
// the lengths differ or n < 2; 1 or 0 when every difference is the same (equal to 0 or not).
double paired_p_value(const std::vector<double>& a, const std::vector<double>& b);
// "94.12 ± 0.15 (n=10, 95% CI 94.01–94.23)" with values scaled by `scale`.
std::string format_summary(const Summary& s, int decimals = 2, double scale = 1.0);

}  // namespace kiln
