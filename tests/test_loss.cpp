// The losses against their definitions (kiln/train/loss.h): label smoothing, and the gradient
// against finite differences.
#include <cmath>

#include "helpers.h"
#include "kiln/train/loss.h"

using namespace kiln;

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
