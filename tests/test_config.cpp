#include "helpers.h"
#include "kiln/core/config.h"
#include "kiln/core/error.h"
#include "kiln/train/ablation.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

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

// Myrtle.ai's bag of tricks as the post's notebook ran it (davidcpage/cifar10-fast,
// bag_of_tricks.ipynb): each row of configs/ablations/myrtle-ablation.toml against the
// notebook's per-example peak LR (divided by the batch of 512 for kiln's summed loss), epochs,
// warm-up and the tricks on at that row; the last row is configs/cifar10-myrtle-94.toml.
TEST(Config, MyrtleAblationRowsAreTheNotebooksCells) {
  struct Row {
    const char* name;
    double lr_per_example;
    double epochs;
    bool pool_before_bn;
    double label_smoothing;
    const char* activation;
    double celu_alpha;
    int64_t ghost_splits;
    bool frozen_bn;
    double output_scale;
    double bias_mult;
    const char* whiten;
    int64_t cutout;
    bool ema;
    const char* tta;
  };
  const std::vector<Row> want = {
      {"baseline (0.4 x 24 ep)", 0.4, 24, false, 0.0, "relu", 0, 1, false, 0.125, 1, "none", 8, false, "none"},
      {"pool before BN (24 ep)", 0.4, 24, true, 0.0, "relu", 0, 1, false, 0.125, 1, "none", 8, false, "none"},
      {"pool before BN (25 ep)", 0.4, 25, true, 0.0, "relu", 0, 1, false, 0.125, 1, "none", 8, false, "none"},
      {"label smoothing 0.2 (25 ep)", 0.4, 25, true, 0.2, "relu", 0, 1, false, 0.125, 1, "none", 8, false, "none"},
      {"label smoothing 0.2 (23 ep)", 0.4, 23, true, 0.2, "relu", 0, 1, false, 0.125, 1, "none", 8, false, "none"},
      {"CELU α 0.075 (23 ep)", 0.4, 23, true, 0.2, "celu", 0.075, 1, false, 0.125, 1, "none", 8, false, "none"},
      {"CELU α 0.075 (20 ep)", 0.4, 20, true, 0.2, "celu", 0.075, 1, false, 0.125, 1, "none", 8, false, "none"},
      {"ghost BN, 16 splits (20 ep)", 0.4, 20, true, 0.2, "celu", 0.075, 16, false, 0.125, 1, "none", 8, false, "none"},
      {"ghost BN, LR 0.6 (18 ep)", 0.6, 18, true, 0.2, "celu", 0.075, 16, false, 0.125, 1, "none", 8, false, "none"},
      {"frozen BN scale, bias LR ×16 (18 ep)", 0.6, 18, true, 0.2, "celu", 0.3, 16, true, 1.0 / 16, 16, "none", 8, false, "none"},
      {"frozen BN scale, bias LR ×64 (18 ep)", 0.6, 18, true, 0.2, "celu", 0.3, 16, true, 1.0 / 16, 64, "none", 8, false, "none"},
      {"frozen BN scale, bias LR ×64 (17 ep)", 0.6, 17, true, 0.2, "celu", 0.3, 16, true, 1.0 / 16, 64, "none", 8, false, "none"},
      {"3×3 patch whitening (17 ep)", 0.6, 17, true, 0.2, "celu", 0.3, 16, true, 1.0 / 16, 64, "3x3", 8, false, "none"},
      {"3×3 patch whitening (15 ep)", 0.6, 15, true, 0.2, "celu", 0.3, 16, true, 1.0 / 16, 64, "3x3", 8, false, "none"},
      {"5×5 cutout, LR 1.0 (14 ep)", 1.0, 14, true, 0.2, "celu", 0.3, 16, true, 1.0 / 16, 64, "3x3", 5, false, "none"},
      {"EMA (13 ep)", 1.0, 13, true, 0.2, "celu", 0.3, 16, true, 1.0 / 16, 64, "3x3", 5, true, "none"},
      {"flip TTA (13 ep)", 1.0, 13, true, 0.2, "celu", 0.3, 16, true, 1.0 / 16, 64, "3x3", 5, true, "flip"},
      {"flip TTA, no cutout (10 ep)", 1.0, 10, true, 0.2, "celu", 0.3, 16, true, 1.0 / 16, 64, "3x3", 0, true, "flip"},
  };
  auto a = Ablation::from_file(std::string(KILN_SOURCE_DIR) + "/configs/ablations/myrtle-ablation.toml");
  auto configs = a.configs({});
  ASSERT_EQ(configs.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const auto& w = want[i];
    const auto& c = configs[i];
    SCOPED_TRACE(w.name);
    EXPECT_EQ(a.rows[i].name, w.name);
    EXPECT_DOUBLE_EQ(c.f("optim.lr") * 512, w.lr_per_example);
    EXPECT_DOUBLE_EQ(c.f("optim.weight_decay") / 512, 5e-4);
    EXPECT_EQ(c.s("optim.sgd_form"), "lr_in_momentum");  // the notebook's nesterov_update
    EXPECT_TRUE(c.b("data.drop_last"));
    EXPECT_EQ(c.i("data.batch_size"), 512);
    EXPECT_EQ(c.f("schedule.epochs"), w.epochs);
    EXPECT_EQ(c.b("model.pool_before_bn"), w.pool_before_bn);
    EXPECT_EQ(c.f("optim.label_smoothing"), w.label_smoothing);
    EXPECT_EQ(c.s("model.activation"), w.activation);
    if (std::string(w.activation) == "celu") EXPECT_EQ(c.f("model.celu_alpha"), w.celu_alpha);
    EXPECT_EQ(c.i("model.ghost_bn_splits"), w.ghost_splits);
    EXPECT_EQ(c.b("model.bn_weight_freeze"), w.frozen_bn);
    EXPECT_EQ(c.f("model.bn_weight_init"), 1.0);
    EXPECT_EQ(c.f("model.output_scale"), w.output_scale);
    EXPECT_EQ(c.f("optim.bn_bias_lr_mult"), w.bias_mult);
    EXPECT_EQ(c.f("optim.bn_bias_wd_div"), w.bias_mult);
    EXPECT_EQ(c.s("model.whiten"), w.whiten);
    if (std::string(w.whiten) == "3x3") {
      EXPECT_EQ(c.f("model.whiten_eps"), 1e-2);
      EXPECT_EQ(c.i("model.whiten_samples"), 10000);
    }
    EXPECT_EQ(c.i("aug.cutout"), w.cutout);
    EXPECT_EQ(c.b("ema.enabled"), w.ema);
    if (w.ema) {
      EXPECT_EQ(c.i("ema.every"), 5);
      EXPECT_NEAR(c.f("ema.momentum"), std::pow(0.99, 5), 1e-10);  // 0.99 a step, every 5 steps
    }
    EXPECT_EQ(c.s("eval.tta"), w.tta);
    // The schedule as positions in epochs: warm-up to the peak over 5 epochs for the first rows,
    // epochs / 5 from "label smoothing (23 ep)" on; down to 0 at the end, or with EMA to 0.1 at
    // epochs - 2 and flat.
    auto knots = c.knots("schedule.knots");
    const bool fraction = c.s("schedule.knot_unit") == "fraction";
    auto at = [&](size_t k) { return fraction ? knots[k].first * w.epochs : knots[k].first; };
    EXPECT_EQ(knots.front(), (std::pair<double, double>{0, 0}));
    EXPECT_DOUBLE_EQ(at(1), i < 4 ? 5.0 : w.epochs / 5);
    EXPECT_EQ(knots[1].second, 1.0);
    if (w.ema) {
      ASSERT_EQ(knots.size(), 4u);
      EXPECT_DOUBLE_EQ(at(2), w.epochs - 2);
      EXPECT_EQ(knots[2].second, 0.1);
      EXPECT_DOUBLE_EQ(at(3), w.epochs);
      EXPECT_EQ(knots[3].second, 0.1);
    } else {
      ASSERT_EQ(knots.size(), 3u);
      EXPECT_DOUBLE_EQ(at(2), w.epochs);
      EXPECT_EQ(knots[2].second, 0.0);
    }
  }
  // The last row is the cifar10-myrtle-94 preset, key for key.
  Config last = configs.back(), preset = Config::from_file(find_preset("cifar10-myrtle-94"));
  last.set_value("meta.description", preset.s("meta.description"));
  EXPECT_EQ(last.to_json(), preset.to_json());
}

// The keys (but meta.description) whose values differ between two configurations.
static std::map<std::string, std::string> differing_keys(const Config& a, const Config& b) {
  std::map<std::string, std::string> out;
  for (auto& k : Config::schema()) {
    if (k.key == "meta.description" || a.value(k.key) == b.value(k.key)) continue;
    out[k.key] = nlohmann::json::parse(b.to_json())[k.key].dump();
  }
  return out;
}

// configs/ablations/airbench94-ablation.toml: the first row is cifar10-94 key for key, and every
// other row is cifar10-94 with exactly the keys of the script's switch changed (the file's header
// gives each switch in legacy/airbench94.py), nothing carried over from the rows before it.
TEST(Config, Airbench94AblationRowsAreTheScriptsSwitchesEachAgainstTheWholeRecipe) {
  const std::vector<std::pair<std::string, std::map<std::string, std::string>>> want = {
      {"airbench94 as its script runs it", {}},
      {"no whitening: its conv trained from its init", {{"model.whiten_trained", "true"}}},
      {"TTA: mirror only (tta_level 1)", {{"eval.tta", "\"flip\""}}},
      {"no TTA (tta_level 0)", {{"eval.tta", "\"none\""}}},
      {"no translation (translate 0)", {{"aug.pad", "0"}}},
      {"random flip each epoch, not alternating", {{"aug.flip_mode", "\"random\""}}},
      {"no flip", {{"aug.flip", "false"}}},
      {"no label smoothing", {{"optim.label_smoothing", "0.0"}}},
      {"BN biases at the base LR (bias_scaler 1)", {{"optim.bn_bias_lr_mult", "1.0"}, {"optim.bn_bias_wd_div", "1.0"}}},
      {"whitening bias never trained", {{"model.whiten_bias_epochs", "0"}}},
      {"no Lookahead", {{"optim.lookahead", "false"}}},
      {"no dirac init", {{"model.conv_init", "\"default\""}}},
  };
  auto a = Ablation::from_file(std::string(KILN_SOURCE_DIR) + "/configs/ablations/airbench94-ablation.toml");
  EXPECT_TRUE(a.leave_one_out);
  EXPECT_EQ(a.base, "cifar10-94");
  const auto configs = a.configs({"data.train_subset=2048"});
  ASSERT_EQ(configs.size(), want.size());
  Config base = Config::from_file(find_preset("cifar10-94"));
  // what the script's hyp says the recipe is, so that the rows' changes are changes from it
  EXPECT_EQ(base.s("eval.tta"), "flip+translate");
  EXPECT_EQ(base.i("aug.pad"), 2);
  EXPECT_TRUE(base.b("aug.flip"));
  EXPECT_EQ(base.s("aug.flip_mode"), "alternating");
  EXPECT_EQ(base.f("optim.label_smoothing"), 0.2);
  EXPECT_EQ(base.f("optim.bn_bias_lr_mult"), 64.0);
  EXPECT_EQ(base.i("model.whiten_bias_epochs"), 3);
  EXPECT_TRUE(base.b("optim.lookahead"));
  EXPECT_EQ(base.s("model.conv_init"), "dirac");
  EXPECT_FALSE(base.b("model.whiten_trained"));
  base.set_assignment("data.train_subset=2048");  // --set reaches every row, last
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(want[i].first);
    EXPECT_EQ(a.rows[i].name, want[i].first);
    EXPECT_EQ(configs[i].s("meta.description"), want[i].first);
    EXPECT_EQ(differing_keys(base, configs[i]), want[i].second);
  }
}

// The two modes on one file: cumulative rows carry the rows before them, leave-one-out rows
// only their own; a row that changes nothing, a set on a leave-one-out base row, an unknown mode
// or field are refused, naming the file or the row.
TEST(Config, AblationModesCumulativeAndLeaveOneOut) {
  kiln::test::TempDir dir;
  auto file = [&](const std::string& name, const std::string& mode, const std::string& rows) {
    std::ofstream(dir / name) << "description = \"d\"\nbase = \"cifar10-94\"\n" << mode << rows;
    return dir / name;
  };
  const std::string rows =
      "[[row]]\nname = \"whole\"\n"
      "[[row]]\nname = \"no TTA\"\nset = { \"eval.tta\" = \"none\" }\n"
      "[[row]]\nname = \"no flip\"\nset = { \"aug.flip\" = false }\n";
  auto cumulative = Ablation::from_file(file("c.toml", "", rows)).configs();
  auto leave = Ablation::from_file(file("l.toml", "mode = \"leave_one_out\"\n", rows)).configs();
  ASSERT_EQ(cumulative.size(), 3u);
  ASSERT_EQ(leave.size(), 3u);
  EXPECT_EQ(cumulative[2].s("eval.tta"), "none");  // carried from the row before
  EXPECT_EQ(leave[2].s("eval.tta"), "flip+translate");  // the base's
  EXPECT_FALSE(cumulative[2].b("aug.flip"));
  EXPECT_FALSE(leave[2].b("aug.flip"));
  EXPECT_EQ(leave[0].to_toml(), cumulative[0].to_toml());
  expect_error_containing([&] { Ablation::from_file(file("e1.toml", "mode = \"leave_one_out\"\n",
                                                         "[[row]]\nname = \"base\"\nset = { \"eval.tta\" = \"none\" }\n" + rows)); },
                          "row 'base': with mode = \"leave_one_out\" the first row is the base preset as it is");
  expect_error_containing([&] { Ablation::from_file(file("e2.toml", "mode = \"one_by_one\"\n", rows)); },
                          "e2.toml: mode = \"one_by_one\": an ablation's mode is cumulative or leave_one_out");
  expect_error_containing([&] { Ablation::from_file(file("e3.toml", "mod = \"leave_one_out\"\n", rows)); },
                          "e3.toml: unknown field 'mod'");
  expect_error_containing([&] { Ablation::from_file(file("e4.toml", "mode = \"leave_one_out\"\n", "[[row]]\nname = \"only\"\n")); },
                          "needs the base row and at least one other");
  // a row that sets the base's own value changes nothing in either mode; in cumulative mode also
  // a row that repeats the row before it
  const std::string same = "[[row]]\nname = \"tta again\"\nset = { \"eval.tta\" = \"flip+translate\" }\n";
  expect_error_containing([&] { Ablation::from_file(file("e5.toml", "mode = \"leave_one_out\"\n", rows + same)).configs(); },
                          "ablation row 'tta again' changes nothing: its settings are already those of the base preset 'cifar10-94'");
  const std::string again = "[[row]]\nname = \"no flip again\"\nset = { \"aug.flip\" = false }\n";
  expect_error_containing([&] { Ablation::from_file(file("e6.toml", "", rows + again)).configs(); },
                          "ablation row 'no flip again' changes nothing: its settings are already those of the row before it");
  EXPECT_NO_THROW(Ablation::from_file(file("ok.toml", "mode = \"leave_one_out\"\n", rows + again)).configs());
  // an override of a key that rows set replaces their values: said, row by row
  const auto ab = Ablation::from_file(file("ok.toml", "mode = \"leave_one_out\"\n", rows + again));
  EXPECT_EQ(ab.overridden_rows({"aug.flip=true", "optim.lr=0.001", "eval.tta=flip"}),
            (std::vector<std::string>{"--set aug.flip=true replaces what 2 rows set: 'no flip', 'no flip again'",
                                      "--set eval.tta=flip replaces what 1 row sets: 'no TTA'"}));
}

// kiln ablate --rows: rows by their numbers from 1; a leave_one_out ablation's base row always;
// a cumulative one's rows one after another; only() keeps the rows' places (their directories).
TEST(Config, AblationRowsPickedByNumber) {
  const auto leave = Ablation::from_file(find_ablation("airbench94-ablation"));
  const auto cumulative = Ablation::from_file(find_ablation("myrtle-ablation"));
  ASSERT_EQ(leave.rows.size(), 12u);
  ASSERT_EQ(cumulative.rows.size(), 18u);
  std::string note;
  EXPECT_EQ(leave.pick_rows("11,8", &note), (std::vector<size_t>{0, 7, 10}));
  EXPECT_EQ(note, "--rows '11,8': row 1, 'airbench94 as its script runs it', is run too: every row is compared with it");
  note.clear();
  EXPECT_EQ(leave.pick_rows("1,3-5", &note), (std::vector<size_t>{0, 2, 3, 4}));
  EXPECT_EQ(note, "");
  EXPECT_EQ(cumulative.pick_rows("17-18"), (std::vector<size_t>{16, 17}));
  EXPECT_EQ(cumulative.pick_rows("6,4-5"), (std::vector<size_t>{3, 4, 5}));
  expect_error_containing([&] { cumulative.pick_rows("5,7"); },
                          "--rows '5,7': a cumulative ablation's rows must follow one another");
  for (const auto& bad : std::vector<std::pair<std::string, std::string>>{{"0", "there is no row 0"},
                                                                          {"13", "there is no row 13"},
                                                                          {"3-2", "'3-2' runs backwards"},
                                                                          {"2,1-3", "row 2 is named twice"},
                                                                          {"x", "'x' is not a row number"},
                                                                          {"2,,3", "'' is not a row number"},
                                                                          {"+2", "'+2' is not a row number"},
                                                                          {"", "no row named"}})
    expect_error_containing([&] { leave.pick_rows(bad.first); },
                            "--rows '" + bad.first + "': " + bad.second + " (rows are numbered 1 to 12");
  const auto some = leave.only(leave.pick_rows("11,8"));
  ASSERT_EQ(some.rows.size(), 3u);
  EXPECT_TRUE(some.subset());
  EXPECT_FALSE(leave.subset());
  EXPECT_EQ(some.rows_in_file, 12u);
  EXPECT_EQ(some.rows[1].name, "no label smoothing");
  EXPECT_EQ(some.rows[1].number, 7u);
  EXPECT_EQ(some.rows[2].number, 10u);
  const auto listing = leave.listing();
  EXPECT_NE(listing.find("  1  airbench94 as its script runs it  (the base as it is)\n"), std::string::npos) << listing;
  EXPECT_NE(listing.find(" 11  no Lookahead  (optim.lookahead = false)\n"), std::string::npos) << listing;
  const auto with_configs = leave.listing(leave.configs());  // which rows train nothing
  EXPECT_NE(with_configs.find("  4  no TTA (tta_level 0)  (eval.tta = \"none\"); trains nothing: evaluates row 1's networks again\n"),
            std::string::npos) << with_configs;
  EXPECT_NE(with_configs.find(" 11  no Lookahead  (optim.lookahead = false)\n"), std::string::npos) << with_configs;
  const auto myrtle = cumulative.listing(cumulative.configs());
  EXPECT_NE(myrtle.find(" 17  flip TTA (13 ep)  (eval.tta = \"flip\"); trains nothing: evaluates row 16's networks again\n"),
            std::string::npos) << myrtle;
  EXPECT_EQ(myrtle.find("trains nothing"), myrtle.rfind("trains nothing")) << myrtle;
}

// The table compares each row with the one before it, or with the first row.
TEST(Config, AblationTableComparesWithThePreviousOrTheFirstRow) {
  const std::vector<AblationResult> rows = {{"whole", 10, {0.90, 0.91, 0.92}, {1, 1, 1}},
                                            {"less", 10, {0.92, 0.93, 0.94}, {1, 1, 1}},
                                            {"other", 10, {0.91, 0.92, 0.93}, {1, 1, 1}}};
  const auto previous = ablation_markdown(rows, "cpu"), first = ablation_markdown(rows, "cpu", true);
  EXPECT_NE(previous.find("| Δ vs previous | p (Welch) |"), std::string::npos) << previous;
  EXPECT_NE(first.find("| Δ vs first row | p (Welch) |"), std::string::npos) << first;
  EXPECT_NE(previous.find("| other | 10 | 1.0 | 92.00 ± 1.00 | 3 | 89.52–94.48 | -1.00 |"), std::string::npos) << previous;
  EXPECT_NE(first.find("| other | 10 | 1.0 | 92.00 ± 1.00 | 3 | 89.52–94.48 | +1.00 |"), std::string::npos) << first;
  EXPECT_NE(first.find("| less | 10 | 1.0 | 93.00 ± 1.00 | 3 | 90.52–95.48 | +2.00 |"), std::string::npos) << first;
  EXPECT_NE(first.find("| whole | 10 | 1.0 | 91.00 ± 1.00 | 3 | 88.52–93.48 | — | — |"), std::string::npos) << first;
}

// A row that evaluates the first row's networks again (test-time augmentation) is compared with
// them run by run (made-up accuracies, Stats.PairedPValue's): the paired t-test's p (scipy.stats.ttest_rel: 0.0017482), not Welch's (0.0336),
// and a line under the table says it trained nothing.
TEST(Config, AblationTablePairsAnEvaluationOnlyRowWithItsNetworks) {
  std::vector<AblationResult> rows(2);
  rows[0].name = "whole", rows[0].epochs = 10, rows[0].acc = {0.9390, 0.9381, 0.9402, 0.9391}, rows[0].seconds = {5, 5, 5, 5};
  rows[1] = rows[0];
  rows[1].name = "flip TTA", rows[1].acc = {0.9412, 0.9398, 0.9421, 0.9405};
  rows[1].networks_of = "whole", rows[1].eval_change = "eval.tta = \"flip\"";
  const auto md = ablation_markdown(rows, "cpu", true);
  EXPECT_NE(md.find("| flip TTA | 10 | 5.0 | 94.09 ± 0.10 | 4 | "), std::string::npos) << md;
  EXPECT_NE(md.find(" | +0.18 | 0.00175 (paired) |\n"), std::string::npos) << md;
  EXPECT_NE(md.find("\nRow 'flip TTA' trained nothing: it is the networks of row 'whole' evaluated again, run by run, with "
                    "eval.tta = \"flip\", so its time is theirs and its p-value the paired t-test's"), std::string::npos) << md;
  rows[1].networks_of.clear();  // the same numbers from networks of their own: Welch's test
  const auto welch = ablation_markdown(rows, "cpu", true);
  EXPECT_NE(welch.find(" | +0.18 | 0.0336 |\n"), std::string::npos) << welch;
  EXPECT_EQ(welch.find("trained nothing"), std::string::npos) << welch;
}

// Which rows are evaluation-only: in airbench94's ablation the two TTA rows (against the whole
// recipe), in Myrtle's the flip TTA row (against the EMA row before it) and no other; a row
// that changes its TTA and anything else that a run reads trains.
TEST(Config, EvaluationOnlyRowsDifferInEvalKeysAlone) {
  const auto a94 = Ablation::from_file(find_ablation("airbench94-ablation")).configs();
  std::vector<std::string> eval_only;
  std::string change;
  for (size_t i = 1; i < a94.size(); ++i)
    if (differs_only_in_evaluation(a94[i], a94[0], &change)) eval_only.push_back(a94[i].s("meta.description") + ": " + change);
  EXPECT_EQ(eval_only, (std::vector<std::string>{"TTA: mirror only (tta_level 1): eval.tta = \"flip\"",
                                                 "no TTA (tta_level 0): eval.tta = \"none\""}));
  const auto myrtle = Ablation::from_file(find_ablation("myrtle-ablation")).configs();
  eval_only.clear();
  for (size_t i = 1; i < myrtle.size(); ++i)
    if (differs_only_in_evaluation(myrtle[i], myrtle[i - 1])) eval_only.push_back(myrtle[i].s("meta.description"));
  EXPECT_EQ(eval_only, (std::vector<std::string>{"flip TTA (13 ep)"}));
  Config c = a94[0], d = a94[0];
  EXPECT_FALSE(differs_only_in_evaluation(c, d));  // no difference at all
  d.set("eval.tta_translate_weight", "0.25");
  EXPECT_TRUE(differs_only_in_evaluation(d, c, &change));
  EXPECT_EQ(change, "eval.tta_translate_weight = 0.25");
  d.set("meta.description", "\"renamed\"");
  EXPECT_TRUE(differs_only_in_evaluation(d, c));  // the name is not the network
  d.set("train.seed", "7");
  EXPECT_FALSE(differs_only_in_evaluation(d, c));
}

// cifar10-myrtle-96 is the post's convergence run: the final network for 80 epochs, 12x12
// cutout, 0 -> 0.4 per example at epochs / 5 -> 0.04 at epochs - 2 -> flat.
TEST(Config, MyrtleConvergencePresetIsThePostsLastRun) {
  Config c = Config::from_file(find_preset("cifar10-myrtle-96"));
  EXPECT_EQ(c.f("schedule.epochs"), 80.0);
  EXPECT_EQ(c.i("aug.cutout"), 12);
  EXPECT_DOUBLE_EQ(c.f("optim.lr") * 512, 0.4);
  EXPECT_EQ(c.s("schedule.knot_unit"), "epoch");
  auto k = c.knots("schedule.knots");
  ASSERT_EQ(k.size(), 4u);
  EXPECT_EQ(k[1], (std::pair<double, double>{16, 1.0}));
  EXPECT_EQ(k[2], (std::pair<double, double>{78, 0.1}));
  EXPECT_EQ(k[3], (std::pair<double, double>{80, 0.1}));
  EXPECT_EQ(c.f("optim.bn_bias_lr_mult"), 64);
  EXPECT_EQ(c.f("model.output_scale"), 1.0 / 16);
  EXPECT_TRUE(c.b("ema.enabled"));
  EXPECT_EQ(c.s("eval.tta"), "flip");
  EXPECT_EQ(c.s("optim.sgd_form"), "lr_in_momentum");
}

// A float key refuses NaN and infinities by name, from --set and from a preset file alike.
TEST(Config, NonFiniteFloatsAreRefusedByName) {
  Config c;
  expect_error_containing([&] { c.set("optim.lr", "nan"); }, "optim.lr = nan is not a finite number");
  expect_error_containing([&] { c.set("optim.weight_decay", "inf"); }, "optim.weight_decay = inf is not a finite number");
  expect_error_containing([&] { c.set("schedule.knots", "[[0, 0.0], [1, nan]]"); }, "schedule.knots: every [x, value] must be finite");
  kiln::test::TempDir d;
  const std::string path = d / "p.toml";
  std::ofstream(path) << "[optim]\nlr = nan\n";
  expect_error_containing([&] { Config::from_file(path); }, "optim.lr");
}

// Every key's range is in its one schema row (KeyRule) and holds for every source: the
// defaults, every preset, --set.
TEST(Config, EachRangeLivesInItsSchemaRowAndHoldsForDefaultsAndPresets) {
  for (auto& k : Config::schema()) EXPECT_NO_THROW(k.rule.check(k.key, k.default_value)) << k.key << " " << k.rule.describe();
  for (auto& p : list_presets()) EXPECT_NO_THROW(Config::from_file(find_preset(p))) << p;
  Config c;
  expect_error_containing([&] { c.set("optim.label_smoothing", "1.0"); }, "optim.label_smoothing must be in [0, 1)");
  expect_error_containing([&] { c.set("optim.label_smoothing", "-0.1"); }, "optim.label_smoothing must be in [0, 1)");
  expect_error_containing([&] { c.set("dist.backend", "mpi"); }, "dist.backend = 'mpi' is not one of: auto | gloo | nccl");
  expect_error_containing([&] { c.set("filter.keep", "-1"); }, "filter.keep must be >= 0");
  expect_error_containing([&] { c.set("schedule.plateau_factor", "0"); }, "schedule.plateau_factor must be in (0, 1]");
  expect_error_containing([&] { c.set("schedule.epochs", "0"); }, "schedule.epochs must be positive");
  expect_error_containing([&] { c.set("filter.widths", "[8, 8]"); }, "filter.widths needs 3 integers");
  expect_error_containing([&] { c.set("schedule.knots", "[[1, 0], [0, 1]]"); }, "schedule.knots: x values must increase");
  EXPECT_NO_THROW(c.set("optim.label_smoothing", "0.2"));
  // The listing says each rule.
  const ConfigKey* ls = nullptr;
  for (auto& k : Config::schema())
    if (k.key == "optim.label_smoothing") ls = &k;
  ASSERT_NE(ls, nullptr);
  EXPECT_EQ(ls->rule.describe(), "in [0, 1)");
}

// A string key's choices are written twice: in its meaning (for `kiln presets --keys`, with what
// each choice does) and in its rule (what is accepted). They must not drift apart: every
// accepted choice is documented, and the default is one of them.
TEST(Config, EveryChoiceKeyDocumentsWhatItAccepts) {
  int keys = 0;
  const Config defaults;
  for (auto& k : Config::schema()) {
    if (k.rule.kind != KeyRule::Kind::kOneOf) continue;
    ++keys;
    for (auto& choice : k.rule.choices)
      EXPECT_NE(k.doc.find(choice), std::string::npos) << k.key << ": the choice '" << choice << "' is accepted but not documented";
    const auto& def = defaults.s(k.key);
    EXPECT_NE(std::find(k.rule.choices.begin(), k.rule.choices.end(), def), k.rule.choices.end())
        << k.key << ": the default '" << def << "' is not one of its choices";
  }
  EXPECT_GE(keys, 20);  // the schema has 24 such keys
}
