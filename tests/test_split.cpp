// The labeled/unlabeled split (data.labeled) and starting from another run's weights (train.init).
#include "helpers.h"
#include "kiln/data/split.h"
#include "kiln/train/trainer.h"

using namespace kiln;
using kiln::test::quiet_options;
using kiln::test::synthetic;
using kiln::test::TempDir;

TEST(Split, ClassBalancedSeededDisjointAndUnlabeledLabelsHidden) {
  auto tt = synthetic(1000, 10);  // 100 per class
  auto s = split_labeled(tt.train, 250, 3);
  ASSERT_EQ(s.labeled.size(), 250);
  ASSERT_EQ(s.unlabeled.size(), 750);
  auto counts = torch::bincount(s.labeled.labels, {}, 10);
  EXPECT_EQ(counts.min().item<int64_t>(), 25);
  EXPECT_EQ(counts.max().item<int64_t>(), 25);
  auto s7 = split_labeled(tt.train, 255, 3);  // 5 classes get a 26th example
  auto c7 = torch::bincount(s7.labeled.labels, {}, 10);
  EXPECT_EQ(c7.eq(26).sum().item<int64_t>(), 5);
  EXPECT_EQ(c7.eq(25).sum().item<int64_t>(), 5);
  // Disjoint and complete.
  auto all = torch::cat({s.labeled_index, s.unlabeled_index});
  EXPECT_TRUE(torch::equal(std::get<0>(all.sort()), torch::arange(1000)));
  // Nothing in the unlabeled part can be read as a label; the truth is kept aside.
  EXPECT_TRUE(s.unlabeled.labels.eq(-1).all().item<bool>());
  EXPECT_TRUE(torch::equal(s.hidden_labels, tt.train.labels.index_select(0, s.unlabeled_index)));
  EXPECT_TRUE(torch::equal(s.labeled.images, tt.train.images.index_select(0, s.labeled_index)));
  // Seeded: the same seed gives the same split, another seed another one.
  EXPECT_TRUE(torch::equal(split_labeled(tt.train, 250, 3).labeled_index, s.labeled_index));
  EXPECT_FALSE(torch::equal(split_labeled(tt.train, 250, 4).labeled_index, s.labeled_index));
  kiln::test::expect_error_containing([&] { split_labeled(tt.train, 1001, 0); }, "data.labeled");
  auto small = tt.train.head(30);  // 3 per class, then none of class 0
  small.labels = small.labels.masked_fill(small.labels.eq(0), 1);
  kiln::test::expect_error_containing([&] { split_labeled(small, 10, 0); }, "fewer than its share");
}

TEST(Split, TrainingUsesOnlyTheLabeledPart) {
  auto tt = synthetic(1000, 100);
  Config c;
  c.set("model.widths", "[4, 4, 4, 4]");
  c.set("data.batch_size", "50");
  c.set("data.labeled", "100");
  c.set("schedule.epochs", "1");
  c.set("train.precision", "fp32");
  auto r = train(c, tt, quiet_options());
  // 100 labeled examples at batch 50: two steps, not twenty.
  ASSERT_EQ(r.epochs.size(), 1u);
  EXPECT_NEAR(r.epochs[0].images_per_s * r.epochs[0].epoch_seconds, 100.0, 1e-6);
}

TEST(Init, StartsFromAnotherRunsWeightsAndSkipsWhatDoesNotFit) {
  auto tt = synthetic(256, 100);
  Config a;
  a.set("model.widths", "[4, 8, 8, 8]");
  a.set("data.batch_size", "64");
  a.set("schedule.epochs", "1");
  a.set("train.precision", "fp32");
  TempDir d;
  train(a, tt, quiet_options(d / "a"));
  auto src = load_checkpoint(d / "a/checkpoint.pt", torch::kCPU);
  // B starts from A's weights and trains at LR 0: its parameters stay A's.
  Config b = a;
  b.set("train.init", "\"" + d / "a/checkpoint.pt" + "\"");
  b.set("schedule.knots", "[[0, 0], [1, 0]]");
  b.set("train.seed", "5");
  train(b, tt, quiet_options(d / "b"));
  auto got = load_checkpoint(d / "b/checkpoint.pt", torch::kCPU);
  auto pa = src.model->named_parameters(), pb = got.model->named_parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i].value(), pb[i].value())) << pa[i].key();
  // A model with another head: everything but the head is copied.
  auto tt5 = tt;
  for (auto* ds : {&tt5.train, &tt5.test}) {
    ds->labels = ds->labels % 5;
    ds->classes.resize(5);
  }
  train(b, tt5, quiet_options(d / "c"));
  auto five = load_checkpoint(d / "c/checkpoint.pt", torch::kCPU);
  auto pc = five.model->named_parameters();
  for (size_t i = 0; i < pc.size(); ++i)
    if (pc[i].key() != "fc.weight") EXPECT_TRUE(torch::equal(pa[i].value(), pc[i].value())) << pc[i].key();
  // Nothing in common: refused.
  Config w = b;
  w.set("model.widths", "[6, 6, 6, 6]");
  kiln::test::expect_error_containing([&] { train(w, tt, quiet_options()); }, "no tensor");
}
