// The dependency-free runtime (kiln/runtime/runtime.h) against LibTorch on the same weights:
// fp32 files give the same logits to 1e-4; int8 files the same logits as LibTorch running the
// int8 round trip of the weights (kiln/deploy/quantize.h), to 1e-4, on the int8 grid and on a
// coarser one (4 bits, one scale per tensor: ExportInfo::grid, written two values to a byte) alike;
// and the runtime's loops give the same logits to the bit in each of their builds (AVX2 where it
// runs, portable, plain: kiln::rt::use_kernels).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <tuple>

#include "helpers.h"
#include "kiln/deploy/export.h"
#include "kiln/deploy/quantize.h"
#include "kiln/nn/layers.h"
#include "kiln/runtime/runtime.h"

using namespace kiln;

namespace {
// Trains the network briefly (Adam, 8 epochs of 200 synthetic 16x16 images: logits well above
// the comparisons' noise) into the run directory `run`.
void train_small(const TrainTest& tt, const std::string& model_name, const std::string& widths,
                 const std::vector<std::pair<std::string, std::string>>& more, const std::string& run) {
  Config c;
  c.set("model.name", model_name);
  c.set("model.widths", widths);
  for (auto& [k, v] : more) c.set(k, v);
  kiln::test::plain_adam(c, "0.01");
  c.set("data.batch_size", "50");
  c.set("schedule.epochs", "8");
  c.set("train.eval_every", "100");
  train(c, tt, kiln::test::quiet_options(run));
}

void compare(const std::string& model_name, const std::string& widths, const std::string& activation,
             std::vector<std::pair<std::string, std::string>> more = {}) {
  auto tt = kiln::test::synthetic(200, 40);
  more.emplace_back("model.activation", activation);
  kiln::test::TempDir d;
  train_small(tt, model_name, widths, more, d / "run");
  auto lc = load_checkpoint(d / "run/checkpoint.pt", torch::kCPU);
  ExportInfo info{{3, 16, 16}, tt.train.classes};
  std::vector<torch::Tensor> quantised_logits;
  std::vector<int64_t> bytes;
  for (int kind = 0; kind < 3; ++kind) {  // fp32, int8 per channel, int4 per tensor
    const bool int8 = kind > 0;
    info.grid = kind == 2 ? IntGrid(Granularity::kTensor, 4) : IntGrid();
    const std::string path = d / ("m" + std::to_string(kind) + ".kiln");
    bytes.push_back(export_kiln(lc, info, path, int8));
    auto rt = kiln::rt::load(path);
    EXPECT_EQ(rt.int8, int8);
    EXPECT_EQ(rt.classes.size(), 10u);
    if (int8) EXPECT_EQ(rt.meta.at("int8_grid"), info.grid.name());
    auto ref = load_checkpoint(d / "run/checkpoint.pt", torch::kCPU);
    if (int8) quantize_weights_inplace(*ref.model, info.grid);
    ref.model->eval();
    DeviceLoader L(tt.test, torch::kCPU, torch::kFloat32, ref.mean, ref.std);
    auto want = ref.model->forward(L.slice(0, 40).x).detach();
    if (int8) quantised_logits.push_back(want);
    auto pixels = tt.test.images.to(torch::kFloat32).contiguous();
    double worst = 0;
    int64_t bitwise_different = 0;
    for (int64_t i = 0; i < 40; ++i) {
      auto z = rt.predict(pixels[i].data_ptr<float>());
      for (int64_t k = 0; k < 10; ++k) worst = std::max(worst, std::abs(z[static_cast<size_t>(k)] - want[i][k].item<double>()));
      for (auto k : {kiln::rt::Kernels::kPortable, kiln::rt::Kernels::kPlain}) {
        kiln::rt::use_kernels(k);
        auto other = rt.predict(pixels[i].data_ptr<float>());
        bitwise_different += std::memcmp(z.data(), other.data(), z.size() * sizeof(float)) != 0;
      }
      kiln::rt::use_kernels(kiln::rt::Kernels::kBest);
    }
    EXPECT_EQ(bitwise_different, 0) << model_name << ": the " << kiln::rt::kernels()
                                    << " loops' logits are not the portable and plain ones' to the bit";
    const double scale = want.abs().max().item<double>();
    const std::string what = int8 ? info.grid.name() : "fp32";
    std::printf("%s (%s) %s: largest |logit difference| against LibTorch %.2e (largest |logit| %.3f); %s loops: %lld of 80 comparisons with the portable and plain loops not equal to the bit\n",
                model_name.c_str(), activation.c_str(), what.c_str(), worst, scale, kiln::rt::kernels(), (long long)bitwise_different);
    EXPECT_GT(scale, 1.0) << "logits this small would make the comparison weak";
    EXPECT_LT(worst, 1e-4) << model_name << " " << what;
  }
  // 4 bits travel two to a byte: the file is smaller by half a byte per quantised weight (and by
  // the one character the grid's name is shorter), and a file cut short is refused.
  int64_t saved = 0;
  for (auto& w : quantizable_weights(*lc.model)) saved += w.numel() - (w.numel() + 1) / 2;
  EXPECT_EQ(bytes[1] - bytes[2], saved + int64_t(IntGrid().name().size() - IntGrid(Granularity::kTensor, 4).name().size()));
  auto file = kiln::rt::read_bytes(d / "m2.kiln");
  file.pop_back();
  kiln::test::expect_error_containing([&] { kiln::rt::parse(file, "m2.kiln"); }, "'m2.kiln' is damaged");  // its CRC-32
  kiln::rt::reseal(file);  // a file cut short with a CRC-32 to fit (or one from before the key)
  kiln::test::expect_error_containing([&] { kiln::rt::parse(file, "m2.kiln"); }, "truncated");
  // The two grids are two models: the 4-bit one's logits are far from the int8 one's.
  const double apart = (quantised_logits[0] - quantised_logits[1]).abs().max().item<double>();
  std::printf("int8 against int4 per-tensor logits: largest difference %.3f\n", apart);
  EXPECT_GT(apart, 1e-2);
}
}  // namespace

TEST(Runtime, SeparableNetMatchesLibTorch) { compare("separable", "[8, 16, 32]", "relu6"); }
TEST(Runtime, DenseNetMatchesLibTorch) { compare("dense", "[8, 6, 6]", "gelu"); }
// ResNet-9 (the demo's and Myrtle's network) with each switch that changes its evaluation: the
// pool's place, both whitenings, a frozen BN scale, the logits' scale, CELU's alpha.
TEST(Runtime, ResNet9MatchesLibTorch) {
  compare("resnet9", "[8, 16, 16, 32]", "relu");
  compare("resnet9", "[8, 16, 16, 32]", "celu",
          {{"model.pool_before_bn", "true"}, {"model.whiten", "3x3"}, {"model.celu_alpha", "0.3"},
           {"model.bn_weight_freeze", "true"}, {"model.bn_weight_init", "0.25"}, {"model.output_scale", "1"}});
  compare("resnet9", "[8, 16, 16, 32]", "gelu", {{"model.whiten", "2x2"}, {"model.output_scale", "0.3"}});
}
// The airbench net (the cifar10-94/95/96 presets' network): a trained whitening bias, two and three
// convs a group, the scaled head and airbench94_muon's width-divided one, and the whitening conv
// trained instead of fitted (model.whiten_trained: its weight a parameter, quantised with the rest).
TEST(Runtime, AirbenchNetMatchesLibTorch) {
  compare("airbench", "[8, 16, 16]", "gelu",
          {{"model.whiten", "2x2"}, {"model.whiten_bias_epochs", "4"}, {"model.output_scale", "0.5"}});
  compare("airbench", "[8, 16, 16]", "gelu",
          {{"model.whiten", "2x2"}, {"model.whiten_trained", "true"}, {"model.conv_init", "dirac"}, {"model.output_scale", "1"}});
  compare("airbench", "[8, 16, 16]", "celu",
          {{"model.whiten", "2x2"}, {"model.convs_per_group", "3"}, {"model.head_norm", "true"}, {"model.celu_alpha", "0.3"},
           {"model.bn_eps", "1e-12"}, {"model.bn_weight_freeze", "true"}});
}

// The runtime applies the run's test-time augmentation (the file's `tta`, eval.tta) as kiln's
// evaluation does: its logits equal kiln::predict_with_tta's over LibTorch's network for each
// mode, at the run's translate weight (0.3 here, not the default, so the weight must travel).
TEST(Runtime, TestTimeAugmentationMatchesKilnEvaluation) {
  auto tt = kiln::test::synthetic(200, 20);
  kiln::test::TempDir d;
  train_small(tt, "airbench", "[8, 16, 16]",
              {{"model.whiten", "2x2"}, {"model.output_scale", "1"}, {"eval.tta", "flip+translate"}, {"eval.tta_translate_weight", "0.3"}},
              d / "run");
  auto lc = load_checkpoint(d / "run/checkpoint.pt", torch::kCPU);
  export_kiln(lc, ExportInfo{{3, 16, 16}, tt.train.classes}, d / "m.kiln", false);
  auto rt = kiln::rt::load(d / "m.kiln");
  EXPECT_EQ(rt.tta, "flip+translate");
  EXPECT_EQ(rt.tta_translate_weight, 0.3);
  lc.model->eval();
  torch::NoGradGuard ng;
  DeviceLoader L(tt.test, torch::kCPU, torch::kFloat32, lc.mean, lc.std);
  const auto x = L.slice(0, 20).x;
  auto f = [&](const torch::Tensor& in) { return lc.model->forward(in); };
  auto pixels = tt.test.images.to(torch::kFloat32).contiguous();
  std::map<std::string, torch::Tensor> got;
  for (const std::string mode : {"flip+translate", "flip", "none"}) {  // the file's own first
    const auto want = predict_with_tta(f, x, mode, 0.3);
    got[mode] = torch::empty_like(want);
    for (int64_t i = 0; i < 20; ++i) {
      const auto z = rt.predict(pixels[i].data_ptr<float>());
      for (int64_t k = 0; k < 10; ++k) got[mode][i][k] = z[static_cast<size_t>(k)];
    }
    const double worst = (got[mode] - want).abs().max().item<double>();
    std::printf("tta %s (%lld network passes an image): largest |logit difference| against LibTorch %.2e (largest |logit| %.3f)\n", mode.c_str(),
                (long long)rt.views(), worst, want.abs().max().item<double>());
    EXPECT_GT(want.abs().max().item<double>(), 0.5) << "logits this small would make the comparison weak";
    EXPECT_LT(worst, 1e-4) << mode;
    rt.tta = mode == "flip+translate" ? "flip" : "none";  // the next mode
  }
  // The three modes are three different predictions (a mode ignored would pass the loop above
  // only if it changed nothing).
  EXPECT_GT((got["flip"] - got["none"]).abs().max().item<double>(), 1e-3);
  EXPECT_GT((got["flip+translate"] - got["flip"]).abs().max().item<double>(), 1e-3);
  EXPECT_EQ(rt.views(), 1);
  rt.tta = "flop";
  kiln::test::expect_error_containing([&] { rt.predict(pixels[0].data_ptr<float>()); }, "tta 'flop' is not none | flip | flip+translate");
  // A file whose tta is not a mode is refused naming the key; one written before the key
  // existed (no tta) runs the plain network.
  auto bytes = kiln::rt::read_bytes(d / "m.kiln");
  const std::string mode = std::string("\x0e\0\0\0", 4) + "flip+translate";  // the value, its length before it
  auto at = std::search(bytes.begin(), bytes.end(), mode.begin(), mode.end());
  ASSERT_NE(at, bytes.end());
  at[9] = 'X';
  kiln::rt::reseal(bytes);  // a change on purpose: the file's CRC-32 made to fit it
  kiln::test::expect_error_containing([&] { kiln::rt::parse(bytes, "t.kiln"); }, "'t.kiln': metadata 'tta' is 'flip+Xranslate'");
  at[9] = 't';
  const std::vector<uint8_t> key = {3, 0, 0, 0, 't', 't', 'a'};  // the key "tta", its length before it
  auto k = std::search(bytes.begin(), bytes.end(), key.begin(), key.end());
  ASSERT_NE(k, bytes.end());
  k[6] = 'x';  // now an unknown key "ttx", as if the file were older than "tta"
  kiln::rt::reseal(bytes);
  EXPECT_EQ(kiln::rt::parse(bytes, "old.kiln").tta, "none");
  LoadedCheckpoint plain = lc;
  plain.cfg.set("eval.tta", "none");
  export_kiln(plain, ExportInfo{{3, 16, 16}, tt.train.classes}, d / "p.kiln", false);
  EXPECT_EQ(kiln::rt::load(d / "p.kiln").tta, "none");
}

// A file that parses but whose tensors do not fit its network is refused when it runs, naming the
// tensor, before anything reads past a tensor's end (the web page runs whatever file is dropped).
// The runtime's erf (its GELU's) against the exact one (double's, rounded once), in units of the
// float spacing at the exact value: on 4 million points of [-6, 6], on the 2,000 floats each side
// of its two joins (0.875 and 3.92), and at the special values. The fit measured 1.64 ulp at most
// (bench/results/runtime-erf-2026-12-04-epyc.json); its arithmetic has no platform-dependent part.
TEST(Runtime, ErfWithinTwoUlpOfTheExactOne) {
  auto ulps = [](float x) {
    const double want = std::erf(static_cast<double>(x));
    const float w32 = static_cast<float>(want);
    const double spacing = std::nextafter(std::fabs(w32), 2.f) - std::fabs(w32);
    return std::fabs(static_cast<double>(kiln::rt::erf(x)) - want) / spacing;
  };
  double worst = 0;
  float at = 0;
  auto check = [&](float x) {
    const double u = ulps(x);
    if (!(u <= worst)) worst = u, at = x;
  };
  for (int64_t i = 0; i <= 4000000; ++i) check(static_cast<float>(-6.0 + 12.0 * static_cast<double>(i) / 4e6));
  for (float join : {0.875f, 3.92f})
    for (float sign : {1.f, -1.f}) {
      float lo = join, hi = join;
      for (int i = 0; i < 2000; ++i) check(sign * (lo = std::nextafter(lo, 0.f))), check(sign * (hi = std::nextafter(hi, 9.f)));
    }
  for (float tiny : {1e-40f, 1.17549435e-38f, 1e-30f, 1e-10f, 1e-5f}) check(tiny), check(-tiny);  // subnormal to small
  std::printf("runtime erf: largest error %.3f ulp, at x = %.9g\n", worst, static_cast<double>(at));
  EXPECT_LE(worst, 2.0) << "at x = " << at;
  EXPECT_GT(worst, 0.5) << "no point was checked where rounding shows";
  EXPECT_EQ(kiln::rt::erf(0.f), 0.f);
  EXPECT_TRUE(std::signbit(kiln::rt::erf(-0.f)));
  EXPECT_EQ(kiln::rt::erf(INFINITY), 1.f);
  EXPECT_EQ(kiln::rt::erf(-INFINITY), -1.f);
  EXPECT_EQ(kiln::rt::erf(4.f), 1.f);
  EXPECT_TRUE(std::isnan(kiln::rt::erf(NAN)));
  for (float x = -6; x <= 6; x += 0.01f) EXPECT_EQ(kiln::rt::erf(-x), -kiln::rt::erf(x)) << x;  // odd
}

// CELU's e^x (x <= 0) against the exact one, the same way: 4 million points of [-87.3, 0], the
// floats around 0 and around each multiple of ln 2 / 2 where the reduction changes k (the first
// 40), tiny arguments. The emulation measured 1.19 ulp (bench/results/runtime-erf-2026-12-04-epyc.json).
TEST(Runtime, ExpWithinTwoUlpOfTheExactOneBelowZero) {
  double worst = 0;
  float at = 0;
  auto check = [&](float x) {
    const double want = std::exp(static_cast<double>(x));
    const float w32 = static_cast<float>(want);
    const double u = std::fabs(static_cast<double>(kiln::rt::exp_nonpositive(x)) - want) / (std::nextafter(w32, 2 * w32 + 1) - w32);
    if (!(u <= worst)) worst = u, at = x;
  };
  for (int64_t i = 0; i <= 4000000; ++i) check(static_cast<float>(-87.3 * static_cast<double>(i) / 4e6));
  for (int j = 1; j <= 40; ++j) {
    float lo = static_cast<float>(-j * std::log(2.0) / 2), hi = lo;
    for (int i = 0; i < 200; ++i) check(lo = std::nextafter(lo, -100.f)), check(hi = std::nextafter(hi, 0.f));
  }
  for (float x : {0.f, -0.f, -1e-30f, -1e-10f, -1e-5f, -1e-40f}) check(x);
  std::printf("runtime e^x (x <= 0): largest error %.3f ulp, at x = %.9g\n", worst, static_cast<double>(at));
  EXPECT_LE(worst, 2.0) << "at x = " << at;
  EXPECT_GT(worst, 0.5) << "no point was checked where rounding shows";
  EXPECT_EQ(kiln::rt::exp_nonpositive(0.f), 1.f);
  EXPECT_EQ(kiln::rt::exp_nonpositive(-1000.f), kiln::rt::exp_nonpositive(-87.3f));  // held at e^-87.3 below
  EXPECT_EQ(kiln::rt::exp_nonpositive(-INFINITY), kiln::rt::exp_nonpositive(-87.3f));
  EXPECT_EQ(kiln::rt::exp_nonpositive(NAN), kiln::rt::exp_nonpositive(-87.3f));  // no NaN reaches the int conversion
}

TEST(Runtime, RefusesTensorsThatDoNotFitTheNetwork) {
  auto tt = kiln::test::synthetic(64, 8);
  Config c;
  c.set("model.name", "resnet9");
  c.set("model.widths", "[4, 8, 8, 8]");
  kiln::test::plain_adam(c, "0.01");
  c.set("data.batch_size", "32");
  c.set("schedule.epochs", "1");
  kiln::test::TempDir d;
  train(c, tt, kiln::test::quiet_options(d / "run"));
  auto lc = load_checkpoint(d / "run/checkpoint.pt", torch::kCPU);
  export_kiln(lc, ExportInfo{{3, 16, 16}, tt.train.classes}, d / "m.kiln", false);
  const auto good = kiln::rt::load(d / "m.kiln");
  std::vector<float> pixels(3 * 16 * 16, 100.f);
  EXPECT_EQ(good.predict(pixels.data()).size(), 10u);
  auto broken = [&](const std::function<void(kiln::rt::Model&)>& f, const std::string& message) {
    auto m = good;
    f(m);
    kiln::test::expect_error_containing([&] { m.predict(pixels.data()); }, message);
  };
  broken([](auto& m) { m.tensors.at("layer2.bn.running_var").data.pop_back(); },
         "tensor 'layer2.bn.running_var' (8) is not one value per channel of its input (8)");
  broken([](auto& m) { m.tensors.at("res1.a.conv.weight").shape = {8, 4, 3, 6}; }, "'res1.a.conv.weight' (8 x 4 x 3 x 6) is not a convolution's weight");
  broken([](auto& m) { m.tensors.at("layer3.conv.weight").shape = {8, 4, 3, 3}; }, "expects 4 input channels, gets 8");
  broken([](auto& m) { m.tensors.at("fc.weight").shape = {10, 4}; }, "'fc.weight' (10 x 4) expects 4 features, gets 8");
  broken([](auto& m) { m.tensors.erase("res3.b.bn.bias"); }, "model has no tensor 'res3.b.bn.bias'");
  broken([](auto& m) { m.height = m.width = 4; }, "too small for the network");
  broken([](auto& m) { m.tensors.at("layer1.conv.weight").shape = {8, 36}; }, "'layer1.conv.weight' (8 x 36) is not a convolution's weight");
  // The separable and dense heads have a bias: a file without it is refused, not run without it.
  LoadedCheckpoint sep;
  sep.cfg.set("model.name", "separable");
  sep.cfg.set("model.widths", "[4, 4]");
  sep.model = make_model(sep.cfg, 3, 10);
  sep.mean = {0, 0, 0}, sep.std = {1, 1, 1};
  export_kiln(sep, ExportInfo{{3, 16, 16}, tt.train.classes}, d / "s.kiln", false);
  auto s = kiln::rt::load(d / "s.kiln");
  EXPECT_EQ(s.predict(pixels.data()).size(), 10u);
  s.tensors.erase("fc.bias");
  kiln::test::expect_error_containing([&] { s.predict(pixels.data()); }, "model has no tensor 'fc.bias'");
}

TEST(Runtime, RefusesBrokenFiles) {
  kiln::test::TempDir d;
  std::vector<uint8_t> junk = {'K', 'I', 'L', 'N'};
  kiln::test::expect_error_containing([&] { kiln::rt::parse(junk, "x.kiln"); }, "x.kiln");
  std::vector<uint8_t> wrong(16, 0);
  kiln::test::expect_error_containing([&] { kiln::rt::parse(wrong, "y.kiln"); }, "not a .kiln model");
  std::vector<uint8_t> header = {'K', 'I', 'L', 'N', 'M', 'D', 'L', '1', 1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 'a'};
  kiln::test::expect_error_containing([&] { kiln::rt::parse(header, "z.kiln"); }, "truncated");
  kiln::test::expect_error_containing([&] { kiln::rt::load(d / "missing.kiln"); }, "missing.kiln");
}

namespace {
// A .kiln file's bytes with metadata `key` set to `value` (added when absent), or removed when
// value is nullopt (as a file written before the key existed).
std::vector<uint8_t> with_meta(const std::vector<uint8_t>& b, const std::string& key, const std::optional<std::string>& value) {
  auto u32 = [&](size_t at) { return uint32_t(b[at]) | uint32_t(b[at + 1]) << 8 | uint32_t(b[at + 2]) << 16 | uint32_t(b[at + 3]) << 24; };
  auto put = [](std::vector<uint8_t>& o, uint32_t v) {
    for (int i = 0; i < 4; ++i) o.push_back(static_cast<uint8_t>(v >> (8 * i)));
  };
  std::vector<std::pair<std::string, std::string>> meta;
  size_t at = 16;
  auto str = [&] {
    const uint32_t n = u32(at);
    std::string s(b.begin() + static_cast<long>(at) + 4, b.begin() + static_cast<long>(at + 4 + n));
    at += 4 + n;
    return s;
  };
  for (uint32_t i = 0, n = u32(8); i < n; ++i) {
    auto k = str();
    meta.emplace_back(k, str());
  }
  auto it = std::find_if(meta.begin(), meta.end(), [&](auto& kv) { return kv.first == key; });
  if (!value) {
    if (it != meta.end()) meta.erase(it);
  } else if (it != meta.end()) {
    it->second = *value;
  } else {
    meta.emplace_back(key, *value);
  }
  std::vector<uint8_t> out(b.begin(), b.begin() + 8);
  put(out, static_cast<uint32_t>(meta.size()));
  put(out, u32(12));
  for (auto& [k, v] : meta) {
    put(out, static_cast<uint32_t>(k.size()));
    out.insert(out.end(), k.begin(), k.end());
    put(out, static_cast<uint32_t>(v.size()));
    out.insert(out.end(), v.begin(), v.end());
  }
  out.insert(out.end(), b.begin() + static_cast<long>(at), b.end());
  kiln::rt::reseal(out);  // the file's CRC-32 (when it has one) made to fit the change
  return out;
}
}  // namespace

// The file's CRC-32 (metadata crc32, written first): as its definition gives it; every change of
// one bit anywhere in the file (an fp32 one; one bit a byte of an int8 one) is refused or changes
// nothing the model computes (the 5 bytes of the key "crc32" itself: the file then reads as one
// from before 2026-12-05, with the same weights); past the key, every one is refused as damage,
// naming the file. A file whose change is meant is resealed; one from before the key is read
// unchecked.
TEST(Runtime, ChecksTheFilesCrc32) {
  kiln::test::TempDir d;
  LoadedCheckpoint ck;
  ck.cfg.set("model.name", "separable");
  ck.cfg.set("model.widths", "[4, 4]");
  torch::manual_seed(3);
  ck.model = make_model(ck.cfg, 3, 4);
  ck.mean = {120, 110, 100}, ck.std = {60, 61, 62};
  for (bool int8 : {false, true}) {
    const std::string path = d / (int8 ? "q.kiln" : "m.kiln");
    export_kiln(ck, ExportInfo{{3, 8, 8}, {"a", "b", "c", "d"}}, path, int8);
    const auto bytes = kiln::rt::read_bytes(path);
    ASSERT_GT(bytes.size(), 37u);
    EXPECT_EQ(std::string(bytes.begin() + 20, bytes.begin() + 25), "crc32") << "crc32 is not the first metadata entry";
    const auto field = kiln::rt::crc32_field(bytes.data(), bytes.size());
    ASSERT_TRUE(field.has_value());
    EXPECT_EQ(*field, 29u);
    auto zeroed = bytes;
    std::fill(zeroed.begin() + 29, zeroed.begin() + 37, uint8_t('0'));
    char want[9];
    std::snprintf(want, sizeof want, "%08x", kiln::test::crc32_by_bits(zeroed));
    EXPECT_EQ(std::string(bytes.begin() + 29, bytes.begin() + 37), want);
    const auto model = kiln::rt::parse(bytes, "m.kiln");
    EXPECT_EQ(model.meta.at("crc32"), want);
    EXPECT_EQ(kiln::rt::integrity(model), std::string("CRC-32 ") + want + " checked");
    std::vector<float> pixels(3 * 8 * 8);
    for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = float((i * 37) % 256);
    const auto logits = model.predict(pixels.data());
    // Every bit of the fp32 file; of the int8 one (the same check on other tensor bytes), one bit
    // of every byte, the bit turning with the byte (the test runs under the sanitizers too).
    int64_t refused = 0, harmless = 0, damaged_named = 0, changed_silently = 0, refused_past_key_otherwise = 0, tried = 0;
    auto flipped = bytes;
    for (size_t i = 0; i < bytes.size(); ++i)
      for (int bit = int8 ? int(i % 8) : 0; bit < (int8 ? int(i % 8) + 1 : 8); ++bit) {
        ++tried;
        flipped[i] = uint8_t(bytes[i] ^ (1u << bit));
        try {
          const auto m = kiln::rt::parse(flipped, "flip.kiln");
          const auto z = m.predict(pixels.data());
          if (z.size() == logits.size() && std::memcmp(z.data(), logits.data(), z.size() * sizeof(float)) == 0) {
            ++harmless;
            EXPECT_TRUE(i >= 20 && i < 25) << "byte " << i << " bit " << bit << " loaded unchecked";
          } else {
            ++changed_silently;
            ADD_FAILURE() << "byte " << i << " bit " << bit << " changed the logits without a word";
          }
        } catch (const std::exception& e) {
          ++refused;
          const std::string what = e.what();
          const bool named = what.find("'flip.kiln' is damaged") != std::string::npos;
          damaged_named += named;
          if (i >= 29 && !named) {
            ++refused_past_key_otherwise;
            ADD_FAILURE() << "byte " << i << ": " << what;
          }
        }
        flipped[i] = bytes[i];
      }
    std::printf("%s: %zu bytes, %lld one-bit changes: %lld refused (%lld as damage), %lld harmless (the key's own bytes), %lld changed the logits silently\n",
                path.c_str(), bytes.size(), (long long)tried, (long long)refused, (long long)damaged_named, (long long)harmless,
                (long long)changed_silently);
    EXPECT_EQ(tried, int64_t(bytes.size()) * (int8 ? 1 : 8));
    EXPECT_EQ(changed_silently, 0);
    EXPECT_EQ(refused_past_key_otherwise, 0);
    EXPECT_EQ(harmless, int8 ? 5 : 5 * 8) << "each bit of the key's 5 bytes turns it into an unknown key";
    // The message names both CRC-32s.
    auto b = bytes;
    b.back() ^= 0x10;
    kiln::test::expect_error_containing([&] { kiln::rt::parse(b, "x.kiln"); },
                                        "'x.kiln' is damaged: its bytes give CRC-32 0x");
    kiln::test::expect_error_containing([&] { kiln::rt::parse(b, "x.kiln"); },
                                        std::string(", not the 0x") + want + " its metadata 'crc32' records: the file changed after it was written");
    // A change made on purpose (an exponent bit of the head's first weight or scale), resealed,
    // is read, and computes something else.
    const std::string head = "fc.weight";
    auto at = std::search(b.begin(), b.end(), head.begin(), head.end());
    ASSERT_NE(at, b.end());
    at[static_cast<long>(head.size()) + 1 + 1 + 4 * 2 + 3] ^= 0x40;
    EXPECT_TRUE(kiln::rt::reseal(b));
    EXPECT_NE(kiln::rt::parse(b, "x.kiln").predict(pixels.data()), logits);
    // The digits are lower-case hex, as "%08x" writes them: others are refused.
    for (char c : {'g', 'A', ' '}) {
      auto g = bytes;
      g[36] = uint8_t(c);
      kiln::test::expect_error_containing([&] { kiln::rt::parse(g, "g.kiln"); }, "'g.kiln' is damaged: its metadata 'crc32' is '");
    }
    kiln::test::expect_error_containing([&] { kiln::rt::parse(with_meta(bytes, "crc32", "1234567"), "s.kiln"); },
                                        "'s.kiln' is damaged: its metadata 'crc32' is 7 bytes long, not 8 hex digits");
    // A file from before the key: read unchecked, the same model.
    const auto old = with_meta(bytes, "crc32", std::nullopt);
    EXPECT_EQ(old.size(), bytes.size() - (4 + 5 + 4 + 8));
    EXPECT_FALSE(kiln::rt::crc32_field(old.data(), old.size()).has_value());
    auto old_copy = old;
    EXPECT_FALSE(kiln::rt::reseal(old_copy));
    const auto o = kiln::rt::parse(old, "old.kiln");
    EXPECT_EQ(o.meta.count("crc32"), 0u);
    EXPECT_EQ(kiln::rt::integrity(o), "no CRC-32 (exported before 2026-12-05): unchecked");
    EXPECT_EQ(o.predict(pixels.data()), logits);
  }
}

// How an image file becomes the input travels in the file (export.h's ExportImageFit): the stored
// size, data.resize, data.background and data.eval_crop, as the run set them; each refused
// naming its key when it is not a value the preparation can use; a file from before the keys
// prepares only images of the input's size (resize empty, stored = input).
TEST(Runtime, ImageFitTravelsInTheFileAndBadValuesAreRefused) {
  kiln::test::TempDir d;
  LoadedCheckpoint ck;
  ck.cfg.set("model.name", "separable");
  ck.cfg.set("model.widths", "[4, 4]");
  ck.cfg.set("data.resize", "pad");
  ck.cfg.set("data.background", "17");
  ck.cfg.set("data.input_size", "[12, 12]");
  ck.cfg.set("data.eval_crop", "0.875");
  ck.model = make_model(ck.cfg, 3, 4);
  ck.mean = {0, 0, 0}, ck.std = {1, 1, 1};
  ExportInfo info{{3, 12, 12}, {"a", "b", "c", "d"}};
  info.stored_shape = {3, 16, 20};
  export_kiln(ck, info, d / "m.kiln", false);
  const auto m = kiln::rt::load(d / "m.kiln");
  EXPECT_EQ(std::vector<int64_t>({m.stored_channels, m.stored_height, m.stored_width}), std::vector<int64_t>({3, 16, 20}));
  EXPECT_EQ(std::vector<int64_t>({m.channels, m.height, m.width}), std::vector<int64_t>({3, 12, 12}));
  EXPECT_EQ(m.resize, "pad");
  EXPECT_EQ(m.background, 17);
  EXPECT_EQ(m.eval_crop, 0.875);
  const auto bytes = kiln::rt::read_bytes(d / "m.kiln");
  EXPECT_EQ(kiln::rt::parse(with_meta(bytes, "resize", "stretch"), "s.kiln").resize, "stretch");  // the helper itself
  for (const auto& bad : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"stored", "3,16", "metadata 'stored' (3,16) is not C,H,W"},
           {"stored", "1,16,20", "metadata 'stored' (1,16,20) is not C,H,W of plausible images with the input's channels"},
           {"stored", "3,0,20", "metadata 'stored' (3,0,20)"},
           {"stored", "3,a,20", "metadata 'stored' (3,a,20)"},
           {"stored", "3,100000,100000", "metadata 'stored' (3,100000,100000)"},
           {"resize", "squash", "metadata 'resize' is 'squash', not stretch | center_crop | pad"},
           {"background", "256", "metadata 'background' is '256', not a grey level 0..255"},
           {"background", "-1", "metadata 'background' is '-1'"},
           {"background", "", "metadata 'background' is ''"},
           {"eval_crop", "0", "metadata 'eval_crop' is '0', not a fraction in (0, 1]"},
           {"eval_crop", "1.5", "metadata 'eval_crop' is '1.5'"},
           {"eval_crop", "nan", "metadata 'eval_crop' is 'nan'"},
           {"eval_crop", "0.5x", "metadata 'eval_crop' is '0.5x'"}})
    kiln::test::expect_error_containing([&] { kiln::rt::parse(with_meta(bytes, std::get<0>(bad), std::get<1>(bad)), "bad.kiln"); },
                                        "'bad.kiln': " + std::get<2>(bad));  // (clang's C++17: a lambda cannot capture a structured binding)
  auto old = bytes;
  for (const char* k : {"stored", "resize", "background", "eval_crop"}) old = with_meta(old, k, std::nullopt);
  const auto o = kiln::rt::parse(old, "old.kiln");
  EXPECT_EQ(o.resize, "");
  EXPECT_EQ(std::vector<int64_t>({o.stored_channels, o.stored_height, o.stored_width}), std::vector<int64_t>({3, 12, 12}));
  EXPECT_EQ(o.eval_crop, 1);
  // Without stored_shape the input's size is the stored one.
  export_kiln(ck, ExportInfo{{3, 12, 12}, {"a", "b", "c", "d"}}, d / "n.kiln", false);
  EXPECT_EQ(kiln::rt::load(d / "n.kiln").stored_height, 12);
}
