#include "helpers.h"
#include "kiln/core/config.h"
#include "kiln/core/error.h"

using namespace kiln;
using kiln::test::expect_error_containing;

TEST(Config, DefaultsCoverEverySchemaKey) {
  Config c;
  for (auto& k : Config::schema()) EXPECT_NO_THROW(c.value(k.key)) << k.key;
  EXPECT_EQ(c.i("data.batch_size"), 512);
  EXPECT_DOUBLE_EQ(c.f("optim.lr"), 0.4 / 512);
}

TEST(Config, SetParsesEachType) {
  Config c;
  c.set("optim.lr", "0.01");
  EXPECT_DOUBLE_EQ(c.f("optim.lr"), 0.01);
  c.set("optim.lr", "2");  // an integer is accepted for a float key
  EXPECT_DOUBLE_EQ(c.f("optim.lr"), 2.0);
  c.set("data.batch_size", "128");
  EXPECT_EQ(c.i("data.batch_size"), 128);
  c.set("aug.flip", "false");
  EXPECT_FALSE(c.b("aug.flip"));
  c.set("data.dataset", "mnist");  // bare word for a string key
  EXPECT_EQ(c.s("data.dataset"), "mnist");
  c.set("model.widths", "[8, 16, 32, 64]");
  EXPECT_EQ(c.ints("model.widths"), (std::vector<int64_t>{8, 16, 32, 64}));
  c.set_assignment("schedule.knots=[[0, 0], [0.5, 1], [1, 0.1]]");
  ASSERT_EQ(c.knots("schedule.knots").size(), 3u);
  EXPECT_DOUBLE_EQ(c.knots("schedule.knots")[2].second, 0.1);
}

TEST(Config, TypeAndValueErrorsNameTheKey) {
  Config c;
  expect_error_containing([&] { c.set("data.batch_size", "0.5"); }, "data.batch_size");
  expect_error_containing([&] { c.set("data.batch_size", "0"); }, "must be positive");
  expect_error_containing([&] { c.set("aug.flip", "maybe"); }, "aug.flip");
  expect_error_containing([&] { c.set("data.dataset", "imagenet"); }, "not one of");
  expect_error_containing([&] { c.set("schedule.knots", "[[0, 0], [0, 1]]"); }, "must increase");
  expect_error_containing([&] { c.set_assignment("optim.lr"); }, "key=value");
}

TEST(Config, UnknownKeySuggestsNearest) {
  Config c;
  expect_error_containing([&] { c.set("optim.lrr", "1"); }, "did you mean 'optim.lr'");
  expect_error_containing([&] { c.set("optim.label_smoothin", "1"); }, "optim.label_smoothing");
  EXPECT_EQ(Config::nearest_key("batch_size"), "data.batch_size");
  EXPECT_EQ(Config::nearest_key("completely.unrelated.thing"), "");
}

TEST(Config, PresetFileErrorsGiveFileAndLine) {
  expect_error_containing([] { Config::from_toml_string("[optim]\nlr = 0.1\nmomentun = 0.9\n", "p.toml"); },
                          "p.toml:3: unknown configuration key 'optim.momentun'; did you mean 'optim.momentum'");
  expect_error_containing([] { Config::from_toml_string("[data]\nbatch_size = \"x\"\n", "p.toml"); },
                          "p.toml:2: 'data.batch_size' takes an integer");
  expect_error_containing([] { Config::from_toml_string("[data\n", "p.toml"); }, "p.toml:");
}

TEST(Config, TomlRoundTripAndBaseChaining) {
  Config c = Config::from_file(find_preset("cifar10-resnet9-baseline"));
  c.set("optim.label_smoothing", "0.2");
  Config back = Config::from_toml_string(c.to_toml(), "round-trip");
  for (auto& k : Config::schema()) EXPECT_TRUE(back.value(k.key) == c.value(k.key)) << k.key;
  // The demo preset builds on the baseline and overrides a few keys.
  Config demo = Config::from_file(find_preset("fashion-mnist-demo"));
  EXPECT_EQ(demo.s("data.dataset"), "fashion-mnist");
  EXPECT_EQ(demo.s("optim.loss_reduction"), "sum");  // inherited
  EXPECT_EQ(demo.ints("model.widths"), (std::vector<int64_t>{16, 32, 64, 128}));
}

TEST(Config, BaselinePresetIsMyrtlesRecipe) {
  Config c = Config::from_file(find_preset("cifar10-resnet9-baseline"));
  EXPECT_EQ(c.f("schedule.epochs"), 24.0);
  EXPECT_EQ(c.i("data.batch_size"), 512);
  // Myrtle: per-example LR 0.4 and weight decay 5e-4 with a summed loss over 512 examples.
  EXPECT_DOUBLE_EQ(c.f("optim.lr") * 512, 0.4);
  EXPECT_DOUBLE_EQ(c.f("optim.weight_decay") / 512, 5e-4);
  EXPECT_EQ(c.s("optim.loss_reduction"), "sum");
  EXPECT_TRUE(c.b("optim.nesterov"));
  EXPECT_EQ(c.i("aug.cutout"), 8);
  EXPECT_EQ(c.i("aug.pad"), 4);
}
