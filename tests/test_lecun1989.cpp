#include <cmath>
#include <cstring>
#include <filesystem>

#include "helpers.h"
#include "kiln/lecun/net1989.h"
#include "kiln/lecun/reference1989.h"
#include "kiln/lecun/tanh_float.h"
#include "kiln/lecun/zipcode.h"

using namespace kiln::lecun;

namespace {
// A deterministic "digit": smooth values in [-1, 1].
std::vector<double> fake_digit(int k) {
  std::vector<double> x(256);
  for (int i = 0; i < 256; ++i) x[i] = std::sin(0.37 * i + k) * 0.9;
  return x;
}
double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}
}  // namespace

// The WebAssembly build's tanh (kiln/lecun/tanh_float.h) against std::tanh in double, rounded
// once: on every 61st float bit pattern in [0, 12] (17.9 M values, from subnormals up), within
// 1 ulp, odd, and exact at the special values.
TEST(Lecun1989, WebAssemblyTanhIsWithinOneUlp) {
  auto ulps = [](float a, float b) {
    int32_t ia, ib;
    std::memcpy(&ia, &a, 4);
    std::memcpy(&ib, &b, 4);
    return std::abs(static_cast<int64_t>(ia) - static_cast<int64_t>(ib));
  };
  int64_t worst = 0, n = 0;
  float worst_x = 0;
  for (uint32_t b = 0;; b += 61) {
    float x;
    std::memcpy(&x, &b, 4);
    if (!(x <= 12.0f)) break;
    const float want = static_cast<float>(std::tanh(static_cast<double>(x))), got = lecun::tanh_float(x);
    const int64_t d = ulps(got, want);
    if (d > worst) worst = d, worst_x = x;
    ASSERT_EQ(lecun::tanh_float(-x), -got) << "not odd at " << x;
    ++n;
  }
  EXPECT_GT(n, 17000000);
  EXPECT_LE(worst, 1) << "at x = " << worst_x;
  EXPECT_EQ(lecun::tanh_float(0.0f), 0.0f);
  EXPECT_FALSE(std::signbit(lecun::tanh_float(0.0f)));
  EXPECT_TRUE(std::signbit(lecun::tanh_float(-0.0f)));
  EXPECT_EQ(lecun::tanh_float(1e-30f), 1e-30f);
  EXPECT_EQ(lecun::tanh_float(9.5f), 1.0f);
  EXPECT_EQ(lecun::tanh_float(1e30f), 1.0f);
  EXPECT_EQ(lecun::tanh_float(-INFINITY), -1.0f);
  EXPECT_TRUE(std::isnan(lecun::tanh_float(NAN)));
}

TEST(Lecun1989, ParameterCountAndLayout) {
  EXPECT_EQ(kParams, 9760);
  // H1w 12x1x5x5, H1b 12x8x8, H2w 12x8x5x5, H2b 12x4x4, H3w 192x30, H3b 30, outw 30x10, outb 10.
  EXPECT_EQ(kH1b - kH1w, 300);
  EXPECT_EQ(kH2w - kH1b, 768);
  EXPECT_EQ(kH2b - kH2w, 2400);
  EXPECT_EQ(kH3w - kH2b, 192);
  EXPECT_EQ(kH3b - kH3w, 5760);
  EXPECT_EQ(kOutw - kH3b, 30);
  EXPECT_EQ(kOutb - kOutw, 300);
  EXPECT_EQ(kParams - kOutb, 10);
}

TEST(Lecun1989, H2ConnectivityMask) {
  auto in = [](int m, int src) {
    for (int j = 0; j < 8; ++j)
      if (kH2Inputs[m][j] == src) return true;
    return false;
  };
  for (int m = 0; m < 12; ++m) {
    int n = 0;
    for (int s = 0; s < 12; ++s) n += in(m, s);
    EXPECT_EQ(n, 8) << "H2 map " << m << " must see 8 H1 maps";
    for (int s = 0; s < 12; ++s) {
      bool want = m < 4 ? s < 8 : m < 8 ? s >= 4 : (s < 4 || s >= 8);
      EXPECT_EQ(in(m, s), want) << "H2 map " << m << " <- H1 map " << s;
    }
  }
}

TEST(Lecun1989, InitRanges) {
  Net1989<double> net;
  Rng rng(7);
  net.init(rng);
  auto check = [&](int off, int n, int fan_in) {
    double a = 2.4 / std::sqrt(double(fan_in)), lo = 1e9, hi = -1e9;
    for (int i = off; i < off + n; ++i) lo = std::min(lo, net.params[i]), hi = std::max(hi, net.params[i]);
    EXPECT_GE(lo, -a);
    EXPECT_LE(hi, a);
    EXPECT_LT(lo, -0.9 * a);  // the range is used, not a narrower one
    EXPECT_GT(hi, 0.9 * a);
  };
  check(kH1w, 300, 25);
  check(kH2w, 2400, 200);
  check(kH3w, 5760, 192);
  check(kOutw, 300, 30);
  for (int i = kH1b; i < kH2w; ++i) EXPECT_EQ(net.params[i], 0.0);
  for (int i = kOutb; i < kParams; ++i) EXPECT_EQ(net.params[i], -1.0);
}

TEST(Lecun1989, PaddingIsMinusOne) {
  // H1 map 0 with every tap 0.1 and no bias: a corner unit's 5x5 window (stride 2, padding 2)
  // holds 9 image pixels and 16 padding pixels.
  Net1989<double> net;
  for (int i = 0; i < 25; ++i) net.params[kH1w + i] = 0.1;
  std::vector<double> ones(256, 1.0), minus(256, -1.0);
  net.predict(ones.data());
  EXPECT_NEAR(net.hidden1()[0], std::tanh(0.1 * (9 - 16)), 1e-12);           // corner (0, 0)
  EXPECT_NEAR(net.hidden1()[2 * 8 + 2], std::tanh(0.1 * 25), 1e-12);          // interior (2, 2)
  net.predict(minus.data());  // an all-background image looks like the padding everywhere
  for (int u = 0; u < 64; ++u) EXPECT_NEAR(net.hidden1()[u], std::tanh(-2.5), 1e-12) << u;
  // H2's padding too: the fast path and LibTorch's F.pad(value=-1) agree on the gradient.
  Rng rng(5);
  net.init(rng);
  net.step(ones.data(), 3, true, Draws{});
  std::vector<double> g;
  reference_step(net.params, ones.data(), 3, true, Variant{}, Draws{}, g);
  EXPECT_LT(max_abs_diff(net.grads, g), 1e-12);
}

TEST(Lecun1989, GradientsMatchLibTorchAutogradForEveryVariant) {
  std::vector<uint8_t> keep(192);
  for (int i = 0; i < 192; ++i) keep[i] = (i * 7) % 4 != 0;
  struct Case {
    Variant v;
    Draws d;
  };
  std::vector<Case> cases = {{Variant{}, Draws{}},
                             {Variant{true, false, 0}, Draws{}},
                             {Variant{true, false, 0}, Draws{1, -1, nullptr}},
                             {Variant{true, true, 0.25}, Draws{-1, 1, keep.data()}},
                             {Variant{false, true, 0.25}, Draws{0, 1, keep.data()}}};
  for (size_t c = 0; c < cases.size(); ++c) {
    Net1989<double> net(cases[c].v);
    Rng rng(11 + c);
    net.init(rng);
    auto x = fake_digit(static_cast<int>(c));
    double loss = net.step(x.data(), 4, true, cases[c].d);
    std::vector<double> g;
    double ref = reference_step(net.params, x.data(), 4, true, cases[c].v, cases[c].d, g);
    EXPECT_NEAR(loss, ref, 1e-12) << "case " << c;
    EXPECT_LT(max_abs_diff(net.grads, g), 1e-6) << "case " << c;
  }
}

TEST(Lecun1989, GradientMatchesFiniteDifferences) {
  Net1989<double> net;
  Rng rng(3);
  net.init(rng);
  auto x = fake_digit(1);
  net.step(x.data(), 2, true, Draws{});
  auto g = net.grads;
  for (int idx : {kH1w + 7, kH1b + 100, kH2w + 1234, kH2b + 50, kH3w + 4000, kH3b + 3, kOutw + 17, kOutb + 2}) {
    const double h = 1e-6, p0 = net.params[idx];
    net.params[idx] = p0 + h;
    double lp = net.step(x.data(), 2, true, Draws{}, false);
    net.params[idx] = p0 - h;
    double lm = net.step(x.data(), 2, true, Draws{}, false);
    net.params[idx] = p0;
    EXPECT_NEAR(g[idx], (lp - lm) / (2 * h), 1e-7) << "parameter " << idx;
  }
}

TEST(Lecun1989, ThousandSgdStepsTrackLibTorch) {
  // The loss trajectory of 1,000 batch-1 SGD steps (lr 0.03) agrees to 1e-5, and the
  // gradient at the last step to 1e-6.
  Net1989<double> net;
  Rng rng(1337);
  net.init(rng);
  auto ref_params = net.params;
  std::vector<double> g;
  double worst_loss = 0;
  for (int step = 0; step < 1000; ++step) {
    auto x = fake_digit(step % 37);
    int label = step % 10;
    double a = net.step(x.data(), label, true, Draws{});
    double b = reference_step(ref_params, x.data(), label, true, Variant{}, Draws{}, g);
    worst_loss = std::max(worst_loss, std::fabs(a - b));
    if (step == 999) EXPECT_LT(max_abs_diff(net.grads, g), 1e-6);
    sgd_update(net.params, net.grads, 0.03);
    for (int i = 0; i < kParams; ++i) ref_params[i] -= 0.03 * g[i];
  }
  EXPECT_LT(worst_loss, 1e-5);
}

TEST(Lecun1989, AdamWMatchesLibTorch) {
  std::vector<double> p = {0.5, -1.0, 2.0}, g1 = {0.1, -0.2, 0.3}, g2 = {-0.05, 0.4, 0.0};
  AdamW<double> a;
  a.update(p, g1, 1e-2);
  a.update(p, g2, 5e-3);
  auto t = torch::tensor({0.5, -1.0, 2.0}, torch::kFloat64).requires_grad_();
  torch::optim::AdamW opt({t}, torch::optim::AdamWOptions(1e-2));
  for (auto [g, lr] : {std::pair{g1, 1e-2}, std::pair{g2, 5e-3}}) {
    static_cast<torch::optim::AdamWOptions&>(opt.param_groups()[0].options()).lr(lr);
    t.mutable_grad() = torch::tensor(g, torch::kFloat64);
    opt.step();
  }
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(p[i], t[i].item<double>(), 1e-12);
}

TEST(RealData, Lecun1989LearnsFromMnistDigits) {
  auto root = kiln::test::real_data_root();
  if (root.empty() || !std::filesystem::exists(root + "/mnist"))
    GTEST_SKIP() << "MNIST not found: set KILN_DATA to a directory holding mnist/";
  auto mnist = kiln::load_dataset("mnist", root);
  auto z = make_zipcode_data(mnist);
  ASSERT_EQ(z.train.size(), 7291);
  ASSERT_EQ(z.test.size(), 2007);
  for (float v : z.train.x) ASSERT_TRUE(v >= -1.0001f && v <= 1.0001f);
  // Two passes of the 1989 recipe: already far below chance (90% error).
  auto r = classic_recipe();
  r.passes = 2;
  auto m = train_zipcode(z, r, 0);
  EXPECT_LT(m.back().test_error, 0.15);
  // Deterministic for a seed.
  auto again = train_zipcode(z, r, 0);
  EXPECT_EQ(again.back().test_misses, m.back().test_misses);
  EXPECT_EQ(again.back().train_loss, m.back().train_loss);
  // Each pass's evaluation overlapped with the next pass's training (the default) counts what
  // evaluating in turn counts, pass by pass.
  auto in_turn = train_zipcode(z, r, 0, {}, /*overlap_eval=*/false);
  ASSERT_EQ(in_turn.size(), m.size());
  for (size_t p = 0; p < m.size(); ++p) {
    EXPECT_EQ(in_turn[p].pass, m[p].pass);
    EXPECT_EQ(in_turn[p].train_loss, m[p].train_loss) << "pass " << p + 1;
    EXPECT_EQ(in_turn[p].train_misses, m[p].train_misses) << "pass " << p + 1;
    EXPECT_EQ(in_turn[p].test_misses, m[p].test_misses) << "pass " << p + 1;
    EXPECT_EQ(in_turn[p].test_error, m[p].test_error) << "pass " << p + 1;
  }
}
