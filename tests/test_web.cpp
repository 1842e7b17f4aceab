// web/kiln_web.h, the C interface the page's WebAssembly exports, built natively: the digits
// file round trip and its refusals, and training in slices (as the page does, between frames)
// giving exactly the run Trainer1989 gives in one go. tests/cli_web.sh checks the WebAssembly
// build of the same code against this native one, under node and in headless Chromium.
#include <nlohmann/json.hpp>

#include "helpers.h"
#include "kiln/lecun/trainer1989.h"
#include "kiln_web.h"

using namespace kiln::lecun;

namespace {
// Learnable synthetic digits: class c lights up a 4x4 block at a class-specific place, on noise.
void synthetic_digits(int n, uint64_t seed, Digits& d) {
  Rng rng(seed);
  for (int i = 0; i < n; ++i) {
    const int c = static_cast<int>(rng.next() % 10);
    d.y.push_back(c);
    for (int p = 0; p < 256; ++p) {
      const int r = p / 16, q = p % 16, br = 2 + 3 * (c / 4), bq = 1 + 4 * (c % 4);
      const bool on = r >= br && r < br + 4 && q >= bq && q < bq + 4;
      d.x.push_back(static_cast<float>((on ? 0.6 : -0.8) + 0.4 * rng.uniform()));
    }
  }
}
}  // namespace

TEST(DigitsFile, RoundTripsToEightBitsAndRefusesBadFiles) {
  Digits train, test, train2, test2;
  synthetic_digits(30, 1, train);
  synthetic_digits(7, 2, test);
  auto bytes = encode_digits(train, test);
  ASSERT_EQ(bytes.size(), 16u + 37u * 257u);
  decode_digits(bytes, "digits.bin", train2, test2);
  EXPECT_EQ(train2.y, train.y);
  EXPECT_EQ(test2.y, test.y);
  ASSERT_EQ(train2.x.size(), train.x.size());
  double worst = 0;
  for (size_t i = 0; i < train.x.size(); ++i) worst = std::max(worst, std::abs(double(train2.x[i]) - train.x[i]));
  EXPECT_LE(worst, 0.5 / 127.5 + 1e-6) << "8-bit rounding: at most half a step";
  EXPECT_GT(worst, 0.0) << "the values were not all on the 8-bit grid; the round trip must have rounded";
  auto cut = bytes;
  cut.pop_back();
  kiln::test::expect_error_containing([&] { decode_digits(cut, "digits.bin", train2, test2); }, "digits.bin: 9524 bytes, but");
  auto wrong = bytes;
  wrong[0] = 'X';
  kiln::test::expect_error_containing([&] { decode_digits(wrong, "d.bin", train2, test2); }, "d.bin: not a kiln digits file");
  auto label = bytes;
  label[16 + 3] = 12;
  kiln::test::expect_error_containing([&] { decode_digits(label, "d.bin", train2, test2); }, "digit 3 has label 12");
}

TEST(WebApi, TrainingInSlicesIsTheSameRun) {
  Digits train, test;
  synthetic_digits(300, 3, train);
  synthetic_digits(100, 4, test);
  auto bytes = encode_digits(train, test);
  ASSERT_EQ(kw_zip_load(bytes.data(), static_cast<int>(bytes.size())), 0) << kw_error();
  Digits tr, te;
  decode_digits(bytes, "digits.bin", tr, te);
  ASSERT_GE(kw_zip_recipes(), 5);
  EXPECT_EQ(kw_zip_recipe_passes(0), 23);  // the paper's
  EXPECT_EQ(kw_zip_recipe_passes(4), 80);  // ReLU + dropout, the last modern row
  EXPECT_EQ(kw_zip_recipe_passes(99), 0);
  for (int recipe : {0, 2, 4}) {  // the 1989 recipe; AdamW with its per-pass decay; ReLU + dropout + shifts
    SCOPED_TRACE(kw_zip_recipe_name(recipe));
    ASSERT_EQ(kw_zip_start(recipe, 7, 3), 0) << kw_error();
    int calls = 0;
    for (int n; (n = kw_zip_train(37)) > 0; ++calls) ASSERT_LE(n, 37);
    EXPECT_GT(calls, 3 * 300 / 37);
    EXPECT_EQ(kw_zip_passes_done(), 3);
    auto m = nlohmann::json::parse(kw_zip_metrics());
    ASSERT_EQ(m.size(), 3u);
    // the same recipe in one go
    Recipe r = recipe == 0 ? classic_recipe() : modern_recipes()[static_cast<size_t>(recipe)];
    r.passes = 3;
    Trainer1989 t(r, 7);
    for (int pass = 0; pass < 3; ++pass) {
      double loss = 0;
      for (int i = 0; i < tr.size(); ++i) loss += t.step(tr, i, pass);
      int train_misses = 0, test_misses = 0;
      t.errors(tr, train_misses);
      t.errors(te, test_misses);
      EXPECT_EQ(m[pass]["train_misses"].get<int>(), train_misses);
      EXPECT_EQ(m[pass]["test_misses"].get<int>(), test_misses);
      EXPECT_NEAR(m[pass]["train_loss"].get<double>(), loss / tr.size(), 1e-8);
    }
    EXPECT_LT(m[2]["test_error"].get<double>(), 0.3) << "the synthetic digits are easy";
    // the trained net classifies a digit put in its input buffer
    std::copy(te.image(0), te.image(0) + 256, kw_zip_input());
    const int label = kw_zip_predict();
    EXPECT_EQ(label, t.net.predict(te.image(0)));
  }
  EXPECT_EQ(kw_zip_start(99, 0, 1), -1);
  EXPECT_NE(std::string(kw_error()).find("no recipe 99"), std::string::npos);
}

TEST(WebApi, RefusesBrokenModelsWithTheReason) {
  std::vector<uint8_t> junk = {'K', 'I', 'L', 'N', 'M', 'D', 'L', '1', 0, 0};
  EXPECT_EQ(kw_model_load(junk.data(), static_cast<int>(junk.size())), -1);
  EXPECT_NE(std::string(kw_error()).find("truncated"), std::string::npos) << kw_error();
  std::vector<uint8_t> notkiln(64, 7);
  EXPECT_EQ(kw_model_load(notkiln.data(), static_cast<int>(notkiln.size())), -1);
  EXPECT_NE(std::string(kw_error()).find("not a .kiln model"), std::string::npos) << kw_error();
  EXPECT_EQ(kw_zip_load(notkiln.data(), static_cast<int>(notkiln.size())), -1);
  EXPECT_NE(std::string(kw_error()).find("not a kiln digits file"), std::string::npos) << kw_error();
}
