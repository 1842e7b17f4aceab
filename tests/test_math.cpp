#include <cmath>

#include "helpers.h"
#include "kiln/report/stats.h"
#include "kiln/train/loss.h"
#include "kiln/train/schedule.h"

using namespace kiln;

TEST(Schedule, PiecewiseLinear) {
  Knots k{{0, 0}, {5, 1}, {24, 0}};
  EXPECT_DOUBLE_EQ(piecewise_linear(k, -1), 0);
  EXPECT_DOUBLE_EQ(piecewise_linear(k, 2.5), 0.5);
  EXPECT_DOUBLE_EQ(piecewise_linear(k, 5), 1);
  EXPECT_DOUBLE_EQ(piecewise_linear(k, 14.5), 0.5);
  EXPECT_DOUBLE_EQ(piecewise_linear(k, 30), 0);
}

TEST(Schedule, LrPerStepInEpochsAndFractions) {
  Config c;
  c.set("optim.lr", "0.4");
  LrSchedule s = LrSchedule::from_config(c, 10);  // knots (0,0) (5,1) (24,0) in epochs
  EXPECT_NEAR(s.at_step(0), 0.4 * (0.1 / 5), 1e-12);  // after the first of 10 steps of epoch 1
  EXPECT_NEAR(s.at_step(49), 0.4, 1e-12);             // end of epoch 5
  EXPECT_NEAR(s.at_step(239), 0.0, 1e-12);            // the very last step
  c.set("schedule.knot_unit", "fraction");
  c.set("schedule.knots", "[[0, 0], [0.5, 1], [1, 0]]");
  c.set("schedule.epochs", "4");
  s = LrSchedule::from_config(c, 10);
  EXPECT_NEAR(s.at_step(19), 0.4, 1e-12);  // 2 of 4 epochs: the peak
  EXPECT_NEAR(s.at_step(29), 0.2, 1e-12);
}

TEST(Loss, CrossEntropyWithLabelSmoothingMatchesItsDefinition) {
  torch::manual_seed(0);
  auto logits = torch::randn({6, 5}, torch::kFloat64);
  auto y = torch::tensor({0, 4, 2, 2, 1, 3}, torch::kInt64);
  for (double eps : {0.0, 0.2}) {
    auto q = torch::full({6, 5}, eps / 5, torch::kFloat64);
    q.scatter_add_(1, y.view({6, 1}), torch::full({6, 1}, 1 - eps, torch::kFloat64));
    auto per_example = -(q * torch::log_softmax(logits, 1)).sum(1);
    auto sum = classification_loss(logits, y, eps, true), mean = classification_loss(logits, y, eps, false);
    EXPECT_NEAR(sum.item<double>(), per_example.sum().item<double>(), 1e-5);
    EXPECT_NEAR(mean.item<double>(), per_example.mean().item<double>(), 1e-6);
  }
}

TEST(Loss, GradientMatchesFiniteDifferences) {
  torch::manual_seed(1);
  auto logits = torch::randn({4, 3}, torch::kFloat64).requires_grad_();
  auto y = torch::tensor({0, 2, 1, 1}, torch::kInt64);
  // fp32 inside the loss: compare the analytic gradient (softmax - q) with central differences.
  auto loss = classification_loss(logits, y, 0.1, true);
  loss.backward();
  auto g = logits.grad();
  const double h = 1e-3;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 3; ++j) {
      auto lp = logits.detach().clone(), lm = logits.detach().clone();
      lp[i][j] += h;
      lm[i][j] -= h;
      double fd = (classification_loss(lp, y, 0.1, true).item<double>() -
                   classification_loss(lm, y, 0.1, true).item<double>()) / (2 * h);
      EXPECT_NEAR(g[i][j].item<double>(), fd, 2e-3) << i << "," << j;
    }
}

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
