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

TEST(Stats, PairedPValue) {
  // Four made-up pairs, as an ablation's TTA row against its base might give: each pair moves by
  // about the same amount, so the paired test resolves what Welch's cannot. References from
  // scipy.stats.ttest_rel and ttest_ind(equal_var=False) (SciPy 1.16): t = 10.694, df = 3,
  // p = 0.0017482107; Welch p = 0.0336456.
  std::vector<double> a{0.9412, 0.9398, 0.9421, 0.9405}, b{0.9390, 0.9381, 0.9402, 0.9391};
  EXPECT_NEAR(paired_p_value(a, b), 0.001748210718355142, 1e-8);
  EXPECT_NEAR(paired_p_value(b, a), 0.001748210718355142, 1e-8);
  EXPECT_NEAR(welch_p_value(a, b), 0.033645638903906205, 1e-6);
  // ttest_rel([1..5], [1.1, 2.3, 2.9, 4.4, 5.2]): t = -2.0925, df = 4, p = 0.10454
  EXPECT_NEAR(paired_p_value({1, 2, 3, 4, 5}, {1.1, 2.3, 2.9, 4.4, 5.2}), 0.10453999977837544, 1e-8);
  // every difference the same: certain when it is not zero, no evidence when it is
  EXPECT_EQ(paired_p_value({1.5, 2.5, 3.5}, {1, 2, 3}), 0.0);
  EXPECT_EQ(paired_p_value(a, a), 1.0);
  EXPECT_TRUE(std::isnan(paired_p_value({0.9}, {0.8})));
  EXPECT_TRUE(std::isnan(paired_p_value(a, {0.9, 0.8})));
}
