// The learning-rate schedules against their definitions (kiln/train/schedule.h): piecewise
// linear knots in epochs and fractions, and the plateau reduction, alone and in a run that
// resumes exactly.
#include "helpers.h"
#include "kiln/train/schedule.h"

using namespace kiln;
using kiln::test::separable_config;

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

TEST(Plateau, ReducesAfterPatienceRunsOut) {
  Plateau p;
  p.factor = 0.5, p.patience = 1, p.threshold = 0.1, p.min_multiplier = 0.3;
  EXPECT_FALSE(p.observe(1.0));   // best 1.0
  EXPECT_FALSE(p.observe(0.95));  // not below 0.9: 1 bad epoch (tolerated)
  EXPECT_TRUE(p.observe(0.93));   // 2 in a row: x0.5
  EXPECT_DOUBLE_EQ(p.multiplier, 0.5);
  EXPECT_FALSE(p.observe(0.5));   // an improvement: best 0.5, count restarts
  EXPECT_EQ(p.bad_epochs, 0);
  EXPECT_FALSE(p.observe(0.6));
  EXPECT_TRUE(p.observe(0.6));    // x0.5 = 0.25, floored at 0.3
  EXPECT_DOUBLE_EQ(p.multiplier, 0.3);
  EXPECT_FALSE(p.observe(0.6));
  EXPECT_FALSE(p.observe(0.6));   // already at the floor: no change reported
  Plateau off;
  EXPECT_FALSE(off.observe(1.0));
  EXPECT_FALSE(off.enabled());
}

TEST(Plateau, TrainerFollowsItAndResumesExactly) {
  auto tt = kiln::test::synthetic(200, 50);
  Config c = separable_config();
  kiln::test::plain_adam(c, "0.002");
  c.set("data.batch_size", "50");
  c.set("schedule.epochs", "8");
  c.set("schedule.knot_unit", "fraction");
  c.set("schedule.knots", "[[0, 1.0], [1, 1.0]]");
  c.set("schedule.plateau_factor", "0.5");
  c.set("schedule.plateau_patience", "0");
  c.set("schedule.plateau_threshold", "0.3");  // demanding: most epochs count as a plateau
  kiln::test::TempDir d;
  train(c, tt, kiln::test::quiet_options(d / "whole"));
  auto ms = kiln::test::read_metrics(d / "whole");
  ASSERT_EQ(ms.size(), 8u);
  Plateau replay = Plateau::from_config(c);
  int reductions = 0;
  for (auto& m : ms) {
    EXPECT_NEAR(m["lr"].get<double>(), 0.002 * replay.multiplier, 1e-12) << "epoch " << m["epoch"];
    reductions += replay.observe(m["train_loss"].get<double>());
  }
  EXPECT_GE(reductions, 2);
  // 4 steps per epoch: stopped mid epoch 4, after plateau decisions were made.
  kiln::test::expect_exact_resume(c, tt, d.path.string(), {13}, "plateau", d / "whole");
  Config bad = c;
  bad.set("train.static_step", "true");
  kiln::test::expect_error_containing([&] { train(bad, tt, kiln::test::quiet_options()); }, "plateau");
}
