// RunSettings (kiln/train/run_settings.h): the run's keys parsed once into typed settings, and
// the combinations no run can take refused in one place, naming the keys to change.
#include "helpers.h"

#include <functional>
#include "kiln/core/config.h"
#include "kiln/train/run_settings.h"

using namespace kiln;
using kiln::test::expect_error_containing;

TEST(Settings, DescribeUseNamesTheSubsetsAndTheLabeledSplit) {
  DataSettings d;
  EXPECT_EQ(d.describe_use(50000, 10000), "50000 train / 10000 test");
  d.train_subset = 2000;
  d.test_subset = 500;
  EXPECT_EQ(d.describe_use(50000, 10000), "the first 2000 of 50000 train / the first 500 of 10000 test");
  d.labeled = 400;
  EXPECT_EQ(d.describe_use(50000, 10000), "the first 2000 of 50000 train, 400 of them labeled / the first 500 of 10000 test");
  // Dataset::head's rule: a subset of at least the whole set is the whole set.
  d.train_subset = 50000;
  d.test_subset = 20000;
  d.labeled = 0;
  EXPECT_EQ(d.describe_use(50000, 10000), "50000 train / 10000 test");
}

TEST(Settings, FromConfigTypesWhatTheRunReads) {
  Config c = Config::from_file(find_preset("cifar10-94-muon"));
  c.set("schedule.plateau_factor", "0.5");
  c.set("schedule.plateau_metric", "test_loss");
  auto s = RunSettings::from_config(c);
  EXPECT_EQ(s.data.batch_size, c.i("data.batch_size"));
  EXPECT_DOUBLE_EQ(s.data.epochs, c.f("schedule.epochs"));
  EXPECT_EQ(s.optim.name, "muon");
  EXPECT_TRUE(s.optim.is_sgd());
  EXPECT_EQ(s.optim.sum_loss(), c.s("optim.loss_reduction") == "sum");
  EXPECT_DOUBLE_EQ(s.optim.label_smoothing, c.f("optim.label_smoothing"));
  EXPECT_DOUBLE_EQ(s.optim.muon_lr, c.f("optim.muon_lr"));
  EXPECT_EQ(s.optim.whiten_bias_linear, c.s("optim.whiten_bias_schedule") == "linear_to_zero");
  EXPECT_TRUE(s.optim.plateau);
  EXPECT_EQ(s.optim.plateau_metric, PlateauMetric::kTestLoss);
  EXPECT_EQ(s.model.whiten_fitted(), c.s("model.whiten") != "none");
  EXPECT_EQ(s.model.whiten_trained, c.b("model.whiten_trained"));
  EXPECT_EQ(s.model.whiten_samples, c.i("model.whiten_samples"));
  EXPECT_EQ(s.loop.tta, c.s("eval.tta"));
  EXPECT_EQ(s.step.qat_grid.bits, 8);
  c.set("train.qat_granularity", "tensor");
  c.set("train.qat_bits", "4");
  s = RunSettings::from_config(c);
  EXPECT_EQ(s.step.qat_grid.granularity, Granularity::kTensor);
  EXPECT_EQ(s.step.qat_grid.qmax(), 7);
  c.set("train.qat_bits", "9");
  expect_error_containing([&] { RunSettings::from_config(c); }, "train.qat_bits = 9: the bits of the weights' grid, 2 to 8");
  c.set("train.qat_bits", "1");
  expect_error_containing([&] { RunSettings::from_config(c); }, "train.qat_bits = 1");
}

TEST(Settings, EveryPresetIsACompatibleCombination) {
  for (auto& p : list_presets()) {
    auto s = RunSettings::from_config(Config::from_file(find_preset(p)));
    EXPECT_NO_THROW(s.check_compatible(1, false)) << p;
  }
}

TEST(Settings, IncompatibleCombinationsAreRefusedNamingTheKeys) {
  auto refused = [](std::function<void(Config&)> set, int64_t world, const std::string& msg) {
    Config c = Config::from_file(find_preset("cifar10-94"));
    set(c);
    expect_error_containing([&] { RunSettings::from_config(c).check_compatible(world, false); }, msg);
  };
  refused([](Config& c) { c.set("train.static_step", "true"), c.set("train.qat", "true"); }, 1, "train.qat runs on the ordinary step");
  refused([](Config& c) { c.set("train.cuda_graph", "true"), c.set("schedule.plateau_factor", "0.5"); }, 1,
          "schedule.plateau_factor < 1 changes the LR");
  refused([](Config& c) { c.set("schedule.plateau_factor", "0.5"), c.set("schedule.plateau_metric", "test_loss"), c.set("train.eval_every", "2"); },
          1, "set train.eval_every = 1");
  refused([](Config& c) { c.set("train.static_step", "true"), c.set("optim.name", "adamw"); }, 1, "implement SGD and Muon only");
  refused([](Config& c) { c.set("selftrain.teacher", "t.pt"); }, 1, "selftrain.teacher needs unlabeled images: set data.labeled > 0");
  refused([](Config& c) { c.set("filter.keep", "2000"); }, 1, "must be smaller than data.batch_size");
  refused([](Config& c) { c.set("filter.keep", "10"), c.set("data.drop_last", "false"); }, 1, "filter.keep needs data.drop_last = true");
  refused([](Config& c) { c.set("train.static_step", "true"); }, 2, "data-parallel runs take the ordinary step");
  refused([](Config& c) { c.set("filter.keep", "10"); }, 2, "proxy filtering is not data parallel yet");
  Config c = Config::from_file(find_preset("cifar10-94"));
  expect_error_containing([&] { RunSettings::from_config(c).check_compatible(2, true); }, "the gloo backend runs on the CPU");
  EXPECT_NO_THROW(RunSettings::from_config(c).check_compatible(2, false));
}
