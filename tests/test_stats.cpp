// The statistics every figure is reported with (kiln/report/stats.h): Student's t quantiles
// against tables, the summary's sample std and interval, Welch's test.
#include <cmath>

#include "helpers.h"
#include "kiln/report/stats.h"

using namespace kiln;

TEST(Stats, StudentTQuantilesMatchTables) {
  EXPECT_NEAR(student_t_quantile(0.975, 1), 12.706, 1e-3);
  EXPECT_NEAR(student_t_quantile(0.975, 2), 4.303, 1e-3);
  EXPECT_NEAR(student_t_quantile(0.975, 9), 2.262, 1e-3);
  EXPECT_NEAR(student_t_quantile(0.975, 29), 2.045, 1e-3);
  EXPECT_NEAR(student_t_quantile(0.975, 1e6), 1.960, 1e-3);
  EXPECT_NEAR(student_t_cdf(0, 5), 0.5, 1e-12);
}

TEST(Stats, SummaryUsesSampleStdAndTInterval) {
  auto s = summarize({94.0, 94.2, 93.9, 94.1});
  EXPECT_EQ(s.n, 4);
  EXPECT_NEAR(s.mean, 94.05, 1e-12);
  EXPECT_NEAR(s.std, std::sqrt(0.05 / 3), 1e-12);
  double half = 3.182446 * s.std / 2;  // t(0.975, 3) = 3.182446
  EXPECT_NEAR(s.ci_high - s.mean, half, 1e-5);
  EXPECT_NEAR(s.mean - s.ci_low, half, 1e-5);
  EXPECT_EQ(s.min, 93.9);
  EXPECT_EQ(s.max, 94.2);
  auto one = summarize({1.0});
  EXPECT_TRUE(std::isinf(one.ci_high));
}

TEST(Stats, WelchPValue) {
  // Equal variances 2.5, n = 5 each: t = -2, df = 8, two-sided p = 0.08052.
  std::vector<double> a{1, 2, 3, 4, 5}, b{3, 4, 5, 6, 7};
  EXPECT_NEAR(welch_p_value(a, b), 0.08052, 1e-4);
  EXPECT_NEAR(welch_p_value(a, a), 1.0, 1e-12);
}
