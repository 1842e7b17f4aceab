// Self-training's pieces against their definitions (kiln/train/selftrain.h).
#include "helpers.h"
#include "kiln/data/split.h"
#include "kiln/train/loss.h"
#include "kiln/train/selftrain.h"
#include "kiln/train/trainer.h"

using namespace kiln;

TEST(SelfTrain, StudentLossFixedAndRatioWeights) {
  torch::manual_seed(0);
  auto ll = torch::randn({4, 10}), lp = torch::randn({12, 10});
  auto y = torch::tensor({1, 2, 3, 4}, torch::kInt64);
  auto q = torch::softmax(torch::randn({12, 10}), 1);
  auto Ll = classification_loss(ll, y, 0.1, false);
  auto Lp = -(q * torch::log_softmax(lp, 1)).sum(1).mean();
  StudentLoss fixed("fixed", 0.5, false, 0.1);
  auto f = fixed(ll, y, lp, q);
  EXPECT_NEAR(f.total.item<double>(), (Ll + 0.5 * Lp).item<double>(), 1e-6);
  StudentLoss ratio("ratio", 1.0, false, 0.1);
  auto r = ratio(ll, y, lp, q);
  EXPECT_NEAR(r.total.item<double>(), (Ll + 3.0 * Lp).item<double>(), 1e-6);  // 12 pseudo / 4 labeled
  EXPECT_NEAR(r.scale.item<double>(), 3.0, 1e-6);
}

TEST(SelfTrain, LossNormalizationUsesRunningMeansOfBothParts) {
  torch::manual_seed(1);
  StudentLoss norm("fixed", 1.0, true, 0.0);
  double sum_l = 0, sum_p = 0;
  for (int step = 0; step < 3; ++step) {
    auto ll = torch::randn({8, 10}) * (step + 1), lp = torch::randn({8, 10});
    auto y = torch::randint(0, 10, {8}, torch::kInt64);
    auto q = torch::one_hot(torch::randint(0, 10, {8}, torch::kInt64), 10).to(torch::kFloat32);
    auto parts = norm(ll, y, lp, q);
    sum_l += parts.labeled.item<double>();
    sum_p += parts.pseudo.item<double>();
    const double s = (sum_l / (step + 1)) / (sum_p / (step + 1));
    EXPECT_NEAR(parts.scale.item<double>(), s, 1e-5) << "step " << step;
    EXPECT_NEAR(parts.total.item<double>(), parts.labeled.item<double>() + s * parts.pseudo.item<double>(), 1e-4);
  }
  // Gradients flow through both parts, not through the scale.
  auto ll = torch::randn({4, 10}, torch::requires_grad()), lp = torch::randn({4, 10}, torch::requires_grad());
  auto parts = norm(ll, torch::zeros({4}, torch::kInt64), lp, torch::full({4, 10}, 0.1));
  parts.total.backward();
  EXPECT_GT(ll.grad().abs().sum().item<double>(), 0);
  EXPECT_GT(lp.grad().abs().sum().item<double>(), 0);
}

TEST(SelfTrain, PseudoLabelsHardSoftThresholdAndTheirQuality) {
  // A teacher trained on 200 labeled synthetic examples labels 500 unlabeled ones far above
  // chance, without reading their labels (they are -1 in the loader).
  auto tt = kiln::test::synthetic(700, 100);
  Config c;
  c.set("model.widths", "[8, 16, 16, 32]");
  c.set("data.batch_size", "50");
  c.set("data.labeled", "200");
  c.set("schedule.epochs", "20");
  c.set("optim.lr", "0.004");
  c.set("aug.cutout", "0");
  c.set("aug.pad", "0");   // the class is where the square is: no translation
  c.set("aug.flip", "false");
  c.set("train.precision", "fp32");
  kiln::test::TempDir d;
  auto tr = train(c, tt, kiln::test::quiet_options(d / "teacher"));
  std::printf("teacher test accuracy %.3f\n", tr.final_test_acc);
  auto lc = load_checkpoint(d / "teacher/checkpoint.pt", torch::kCPU);
  auto split = split_labeled(tt.train, 200, 0);
  DeviceLoader U(split.unlabeled, torch::kCPU, torch::kFloat32, lc.mean, lc.std);
  auto hard = make_pseudo_labels(*lc.model, U, 100, "hard", 0.0, 1.0, "none");
  auto q = pseudo_label_quality(hard, split.hidden_labels);
  EXPECT_EQ(q.coverage, 1.0);
  EXPECT_GT(q.accuracy, 0.5) << "chance is 0.1";
  EXPECT_TRUE(hard.targets.sum(1).eq(1).all().item<bool>());
  EXPECT_TRUE(torch::equal(hard.targets.argmax(1), hard.predicted));
  auto soft = make_pseudo_labels(*lc.model, U, 100, "soft", 0.0, 2.0, "flip");
  EXPECT_TRUE(torch::allclose(soft.targets.sum(1), torch::ones({500}), 1e-5, 1e-5));
  EXPECT_LT(std::get<0>(soft.targets.max(1)).mean().item<double>(), soft.confidence.mean().item<double>() + 1e-6);  // T = 2 flattens
  auto sure = make_pseudo_labels(*lc.model, U, 100, "hard", 0.5, 1.0, "none");
  auto qs = pseudo_label_quality(sure, split.hidden_labels);
  EXPECT_LE(qs.coverage, 1.0);
  EXPECT_TRUE(sure.keep.eq(sure.confidence >= 0.5).all().item<bool>());
  std::printf("pseudo-labels: all %.3f (coverage %.3f); confidence >= 0.5: %.3f (coverage %.3f)\n", q.accuracy, q.coverage,
              qs.accuracy, qs.coverage);
  if (qs.kept > 20) EXPECT_GE(qs.accuracy, q.accuracy - 0.05);  // confident labels are not worse
}
