// The augmentation policies' operations against their definitions, on known tensors
// (kiln/data/policy.h).
#include <ATen/CPUGeneratorImpl.h>

#include <map>
#include <set>

#include "helpers.h"
#include "kiln/data/loader.h"
#include "kiln/data/policy.h"
#include "kiln/train/selftrain.h"

using namespace kiln;

namespace {
torch::Tensor mags(std::vector<float> v) { return torch::tensor(v, torch::kFloat32); }
torch::Tensor pixels(int64_t B, int64_t C, int64_t H, int64_t W, uint64_t seed = 0) {
  torch::manual_seed(static_cast<int64_t>(seed));
  return torch::randint(0, 256, {B, C, H, W}).to(torch::kFloat32);
}
at::Generator gen(uint64_t s) { return at::make_generator<at::CPUGeneratorImpl>(s); }

// PIL's ImageOps.equalize on one channel, written out as a scalar loop (the reference).
std::vector<int> pil_equalize(const std::vector<int>& v) {
  std::vector<int64_t> h(256, 0);
  for (int x : v) ++h[x];
  std::vector<int64_t> nz;
  for (auto c : h)
    if (c) nz.push_back(c);
  if (nz.size() <= 1) return v;
  int64_t total = 0;
  for (auto c : nz) total += c;
  const int64_t step = (total - nz.back()) / 255;
  if (step == 0) return v;
  std::vector<int> lut(256);
  int64_t n = step / 2;
  for (int i = 0; i < 256; ++i) {
    lut[i] = static_cast<int>(std::min<int64_t>(255, n / step));
    n += h[i];
  }
  std::vector<int> out;
  for (int x : v) out.push_back(lut[x]);
  return out;
}
}  // namespace

TEST(Policy, GeometricOperationsMoveExactPixels) {
  auto x = torch::arange(2 * 1 * 4 * 4, torch::kFloat32).view({2, 1, 4, 4});
  // Zero magnitudes and the identity map are exact.
  for (auto op : {PixelOp::ShearX, PixelOp::ShearY, PixelOp::TranslateX, PixelOp::TranslateY, PixelOp::Rotate})
    EXPECT_TRUE(torch::equal(apply_op(x, op, mags({0, 0}), 128), x)) << op_name(op);
  // TranslateX by 1: the image moves one pixel right; column 0 is filled.
  auto t = apply_op(x, PixelOp::TranslateX, mags({1, -2}), 128);
  EXPECT_TRUE(torch::equal(t[0][0].slice(1, 1, 4), x[0][0].slice(1, 0, 3)));
  EXPECT_TRUE(t[0][0].select(1, 0).eq(128).all().item<bool>());
  EXPECT_TRUE(torch::equal(t[1][0].slice(1, 0, 2), x[1][0].slice(1, 2, 4)));  // -2: two pixels left
  EXPECT_TRUE(t[1][0].slice(1, 2, 4).eq(128).all().item<bool>());
  auto ty = apply_op(x, PixelOp::TranslateY, mags({1, 0}), 7);
  EXPECT_TRUE(torch::equal(ty[0][0].slice(0, 1, 4), x[0][0].slice(0, 0, 3)));
  EXPECT_TRUE(ty[0][0][0].eq(7).all().item<bool>());
  // Rotate by 90 degrees = LibTorch's rot90 (counter-clockwise on screen); -90 the other way.
  auto r = apply_op(x, PixelOp::Rotate, mags({90, -90}), 0);
  EXPECT_TRUE(torch::equal(r[0], torch::rot90(x[0], 1, {1, 2})));
  EXPECT_TRUE(torch::equal(r[1], torch::rot90(x[1], -1, {1, 2})));
  // ShearX(m): output (u, v) samples input column round(u + m (v + 0.5)) (no ties at m = 0.5).
  auto s = apply_op(x, PixelOp::ShearX, mags({0.5, 0}), -1);
  for (int v = 0; v < 4; ++v)
    for (int u = 0; u < 4; ++u) {
      int su = static_cast<int>(std::lround(u + 0.5 * (v + 0.5)));
      float want = su < 4 ? x[0][0][v][su].item<float>() : -1.f;
      EXPECT_EQ(s[0][0][v][u].item<float>(), want) << v << "," << u;
    }
  // ShearY is ShearX with rows and columns exchanged.
  EXPECT_TRUE(torch::equal(apply_op(x.transpose(2, 3).contiguous(), PixelOp::ShearY, mags({0.5, 0}), -1)[0][0].t(), s[0][0]));
}

TEST(Policy, ColourOperationsFollowTheirBlendDefinitions) {
  auto x = torch::zeros({1, 3, 2, 2});
  x.select(1, 0).fill_(100), x.select(1, 1).fill_(50), x.select(1, 2).fill_(200);
  x[0][0][0][0] = 10;
  const double g00 = 0.2989 * 10 + 0.587 * 50 + 0.114 * 200, g = 0.2989 * 100 + 0.587 * 50 + 0.114 * 200;
  auto gray = grayscale(x);
  EXPECT_NEAR(gray[0][0][0][0].item<double>(), g00, 1e-3);
  EXPECT_NEAR(gray[0][0][1][1].item<double>(), g, 1e-3);
  auto one = mags({1}), zero = mags({0}), two = mags({2});
  for (auto f : {adjust_brightness, adjust_color, adjust_contrast, adjust_sharpness})
    EXPECT_TRUE(torch::allclose(f(x, one), x));  // factor 1 is the identity
  EXPECT_TRUE(adjust_brightness(x, zero).eq(0).all().item<bool>());
  EXPECT_EQ(adjust_brightness(x, two)[0][2][1][1].item<float>(), 255.f);  // clamped
  EXPECT_EQ(adjust_brightness(x, two)[0][1][1][1].item<float>(), 100.f);
  auto c0 = adjust_color(x, zero);  // saturation 0: every channel the grayscale
  EXPECT_TRUE(torch::allclose(c0, gray.expand_as(x)));
  auto k0 = adjust_contrast(x, zero);  // contrast 0: the grayscale's mean everywhere
  EXPECT_TRUE(torch::allclose(k0, torch::full_like(x, (g00 + 3 * g) / 4), 1e-4, 1e-3));
  // Through the op ids, the magnitude m means factor 1 + m.
  EXPECT_TRUE(torch::allclose(apply_op(x, PixelOp::Color, mags({-1}), 0), c0));
}

TEST(Policy, SharpnessSmoothsTheInteriorAndKeepsTheBorder) {
  auto x = torch::zeros({1, 1, 5, 5});
  x[0][0][2][2] = 130;
  auto blurred = adjust_sharpness(x, mags({0}));  // factor 0: the degenerate image itself
  EXPECT_NEAR(blurred[0][0][2][2].item<double>(), 50.0, 1e-4);  // 130 x 5 / 13
  EXPECT_NEAR(blurred[0][0][1][2].item<double>(), 10.0, 1e-4);  // 130 x 1 / 13
  EXPECT_NEAR(blurred[0][0][1][1].item<double>(), 10.0, 1e-4);
  EXPECT_EQ(blurred[0][0][0][2].item<float>(), 0.f);  // the border is the image's own
  auto sharp = adjust_sharpness(x, mags({2}));  // 2 x image - degenerate, clamped
  EXPECT_NEAR(sharp[0][0][2][2].item<double>(), 210.0, 1e-3);
  EXPECT_EQ(sharp[0][0][1][2].item<float>(), 0.f);  // -10 clamped to 0
}

TEST(Policy, PosterizeSolarizeInvertAutoContrast) {
  auto x = torch::tensor({183.f, 0.f, 255.f, 128.f, 127.f, 100.f}).view({1, 1, 2, 3});
  auto p4 = posterize(x, mags({4}));
  EXPECT_EQ(p4[0][0][0][0].item<float>(), 176.f);  // 0b10110111 -> 0b10110000
  EXPECT_EQ(p4[0][0][0][2].item<float>(), 240.f);
  EXPECT_TRUE(torch::equal(posterize(x, mags({8})), x));
  auto s = solarize(x, mags({128}));
  EXPECT_EQ(s[0][0][0][0].item<float>(), 72.f);   // 255 - 183
  EXPECT_EQ(s[0][0][1][0].item<float>(), 127.f);  // 128 >= 128: inverted
  EXPECT_EQ(s[0][0][1][1].item<float>(), 127.f);  // 127 < 128: kept
  EXPECT_TRUE(torch::equal(solarize(x, mags({256})), x));
  EXPECT_TRUE(torch::equal(invert(x), 255 - x));
  auto y = torch::tensor({50.f, 100.f, 150.f, 7.f, 7.f, 7.f}).view({1, 2, 1, 3});
  auto a = autocontrast(y);
  EXPECT_NEAR(a[0][0][0][0].item<double>(), 0, 1e-4);
  EXPECT_NEAR(a[0][0][0][1].item<double>(), 127.5, 1e-3);
  EXPECT_NEAR(a[0][0][0][2].item<double>(), 255, 1e-3);
  EXPECT_TRUE(torch::equal(a[0][1], y[0][1]));  // a constant channel is left alone
}

TEST(Policy, EqualizeIsPILsLookupTable) {
  // Random channels, skewed channels, two-valued and constant channels, against the scalar reference.
  torch::manual_seed(3);
  std::vector<torch::Tensor> cases = {
      torch::randint(0, 256, {2, 3, 8, 8}).to(torch::kFloat32),
      torch::randint(0, 40, {1, 2, 16, 16}).to(torch::kFloat32) * torch::randint(1, 3, {1, 2, 16, 16}).to(torch::kFloat32),
      torch::where(torch::rand({1, 1, 6, 6}) < 0.3, torch::full({1, 1, 6, 6}, 200.f), torch::full({1, 1, 6, 6}, 10.f)),
      torch::full({1, 1, 4, 4}, 99.f)};
  for (size_t k = 0; k < cases.size(); ++k) {
    auto x = cases[k];
    auto out = equalize(x);
    for (int64_t b = 0; b < x.size(0); ++b)
      for (int64_t c = 0; c < x.size(1); ++c) {
        auto flat = x[b][c].flatten().to(torch::kInt32).contiguous();
        std::vector<int> v(flat.data_ptr<int>(), flat.data_ptr<int>() + flat.numel());
        auto want = pil_equalize(v);
        auto got = out[b][c].flatten().to(torch::kInt32).contiguous();
        for (size_t i = 0; i < want.size(); ++i)
          ASSERT_EQ(got.data_ptr<int>()[i], want[i]) << "case " << k << " example " << b << " channel " << c << " pixel " << i;
      }
  }
}

TEST(Policy, EachExampleGetsItsOwnOperationAndMagnitude) {
  auto x = pixels(6, 3, 8, 8);
  auto op = torch::tensor({{1, 6}, {5, 13}, {10, 0}, {11, 12}, {3, 9}, {0, 14}}, torch::kInt64);
  auto mag = torch::tensor({{0.2f, 0.5f}, {-20.f, 0.f}, {5.f, 0.f}, {100.f, 0.f}, {-3.f, -0.4f}, {0.f, 0.f}});
  auto out = apply_policy(x, op, mag, 128);
  for (int64_t b = 0; b < 6; ++b) {
    auto want = x.slice(0, b, b + 1);
    for (int64_t s = 0; s < 2; ++s)
      want = apply_op(want, static_cast<PixelOp>(op[b][s].item<int64_t>()), mag[b].slice(0, s, s + 1), 128);
    EXPECT_TRUE(torch::allclose(out[b], want[0], 1e-4, 1e-3)) << "example " << b;
  }
  // Naming the operations present gives the same result; Identity everywhere changes nothing.
  std::vector<bool> present(static_cast<size_t>(PixelOp::Count), false);
  for (int64_t v : {1, 6, 5, 13, 10, 0, 11, 12, 3, 9, 14}) present[static_cast<size_t>(v)] = true;
  EXPECT_TRUE(torch::equal(apply_policy(x, op, mag, 128, present), out));
  EXPECT_TRUE(torch::equal(apply_policy(x, torch::zeros({6, 3}, torch::kInt64), torch::ones({6, 3}), 128), x));
}

TEST(Policy, MagnitudeBinsAsTorchvision) {
  EXPECT_NEAR(op_magnitude(PixelOp::ShearX, 9, 10, 32, 32), 0.3, 1e-12);
  EXPECT_EQ(op_magnitude(PixelOp::TranslateX, 9, 10, 32, 32), 14.0);  // trunc(150/331 x 32)
  EXPECT_EQ(op_magnitude(PixelOp::TranslateY, 8, 10, 32, 32), 12.0);  // trunc(12.89)
  EXPECT_NEAR(op_magnitude(PixelOp::Rotate, 2, 10, 32, 32), 20.0 / 3.0, 1e-12);
  EXPECT_NEAR(op_magnitude(PixelOp::Contrast, 6, 10, 32, 32), 0.6, 1e-12);
  EXPECT_EQ(op_magnitude(PixelOp::Posterize, 7, 10, 32, 32), 5.0);  // 8 - round(7 / 2.25)
  EXPECT_EQ(op_magnitude(PixelOp::Posterize, 0, 10, 32, 32), 8.0);
  EXPECT_EQ(op_magnitude(PixelOp::Posterize, 9, 31, 32, 32), 7.0);  // 8 - round(9 / 7.5)
  EXPECT_NEAR(op_magnitude(PixelOp::Solarize, 2, 10, 32, 32), 255.0 * 7 / 9, 1e-9);
  EXPECT_EQ(op_magnitude(PixelOp::Equalize, 5, 10, 32, 32), 0.0);
  EXPECT_THROW(op_magnitude(PixelOp::Rotate, 10, 10, 32, 32), std::exception);
}

TEST(Policy, AutoAugmentDrawsFollowTheCifar10Table) {
  auto g = gen(5);
  const int64_t n = 20000;
  auto d = draw_autoaugment_cifar10(n, 32, 32, g);
  ASSERT_EQ(d.op.sizes(), (std::vector<int64_t>{n, 2}));
  // Each example picks one of the 25 sub-policies; an operation fires with its probability,
  // so the firing rate is the mean of the table's 50 probabilities.
  const double fire = 26.5 / 50;  // the 50 probabilities of the table sum to 26.5
  double fired = d.op.ne(0).to(torch::kFloat64).mean().item<double>();
  EXPECT_NEAR(fired, fire, 0.01);
  EXPECT_EQ(d.magnitude.abs().max().item<float>() <= 255.f, true);
  // Every operation appears only with the magnitudes of its bins.
  std::map<int64_t, std::set<float>> seen;
  auto op = d.op.accessor<int64_t, 2>();
  auto mg = d.magnitude.accessor<float, 2>();
  for (int64_t i = 0; i < n; ++i)
    for (int j = 0; j < 2; ++j) seen[op[i][j]].insert(std::abs(mg[i][j]));
  EXPECT_EQ(seen[static_cast<int64_t>(PixelOp::Rotate)], (std::set<float>{static_cast<float>(20.0 / 3.0)}));
  EXPECT_EQ(seen[static_cast<int64_t>(PixelOp::TranslateX)], (std::set<float>{12.f, 14.f}));
  EXPECT_EQ(seen[static_cast<int64_t>(PixelOp::Invert)], (std::set<float>{0.f}));
  EXPECT_EQ(seen.count(static_cast<int64_t>(PixelOp::ShearX)), 0u);  // not in the CIFAR-10 policy
  // Signed operations come with both signs, about half each.
  auto sh = d.op.eq(static_cast<int64_t>(PixelOp::ShearY));
  double neg = d.magnitude.lt(0).logical_and(sh).sum().item<double>() / sh.sum().item<double>();
  EXPECT_NEAR(neg, 0.5, 0.05);
  // Same seed, same draws.
  auto g2 = gen(5);
  auto d2 = draw_autoaugment_cifar10(n, 32, 32, g2);
  EXPECT_TRUE(torch::equal(d.op, d2.op) && torch::equal(d.magnitude, d2.magnitude));
}

TEST(Policy, RandAugmentDrawsAreUniformOverItsSpace) {
  auto g = gen(9);
  const int64_t n = 28000;
  auto d = draw_randaugment(n, 2, 15, 31, 32, 32, g);
  auto counts = torch::bincount(d.op.flatten(), {}, 15);
  EXPECT_EQ(counts[static_cast<int64_t>(PixelOp::Invert)].item<int64_t>(), 0);  // not in RandAugment's space
  for (int64_t k = 0; k < 14; ++k) EXPECT_NEAR(counts[k].item<double>() / (2.0 * n), 1.0 / 14, 0.01) << op_name(static_cast<PixelOp>(k));
  auto op = d.op.accessor<int64_t, 2>();
  auto mg = d.magnitude.accessor<float, 2>();
  for (int64_t i = 0; i < 500; ++i)
    for (int j = 0; j < 2; ++j) {
      auto o = static_cast<PixelOp>(op[i][j]);
      ASSERT_FLOAT_EQ(std::abs(mg[i][j]), static_cast<float>(op_magnitude(o, 15, 31, 32, 32)));
    }
  EXPECT_THROW(draw_randaugment(4, 2, 31, 31, 32, 32, g), std::exception);
}

TEST(Policy, ScaleJitterSamplesTheScaledImage) {
  auto x = pixels(2, 1, 8, 8, 4);
  // Scale 1 at offset 0 is the identity.
  auto id = scale_jitter(x, torch::ones({2}), torch::zeros({2}), torch::zeros({2}));
  EXPECT_TRUE(torch::allclose(id, x, 1e-4, 1e-3));
  // Scale 1/2 at offset 0: each output pixel of the top-left quarter is the mean of a 2x2
  // block; the rest is the zero canvas.
  auto half = scale_jitter(x, torch::full({2}, 0.5), torch::zeros({2}), torch::zeros({2}));
  for (int v = 0; v < 4; ++v)
    for (int u = 0; u < 4; ++u) {
      double want = (x[1][0][2 * v][2 * u].item<double>() + x[1][0][2 * v][2 * u + 1].item<double>() +
                     x[1][0][2 * v + 1][2 * u].item<double>() + x[1][0][2 * v + 1][2 * u + 1].item<double>()) / 4;
      EXPECT_NEAR(half[1][0][v][u].item<double>(), want, 1e-3);
    }
  EXPECT_TRUE(half[0][0].slice(1, 4, 8).eq(0).all().item<bool>());
  EXPECT_TRUE(half[0][0].slice(0, 4, 8).eq(0).all().item<bool>());
  // Scale 2 at offset (-8, -8): output pixel (v, u) samples input (v + 8.5) / 2 - 0.5 ... i.e. the
  // bottom-right quarter magnified: output (1, 1) lies between input pixels (4, 4) and (5, 5).
  auto zoom = scale_jitter(x, torch::full({2}, 2.0), torch::full({2}, -8.0), torch::full({2}, -8.0));
  // centre of output pixel 1 -> 1.5 + 8 = 9.5 -> / 2 = 4.75 -> pixel-index 4.25: 0.75 x[4] + 0.25 x[5] in each axis
  auto X = x[0][0];
  double want = 0.75 * 0.75 * X[4][4].item<double>() + 0.75 * 0.25 * (X[4][5].item<double>() + X[5][4].item<double>()) +
                0.25 * 0.25 * X[5][5].item<double>();
  EXPECT_NEAR(zoom[0][0][1][1].item<double>(), want, 1e-3);
}

TEST(Policy, LoaderAppliesPoliciesDeterministicallyAndLeavesOtherDrawsAlone) {
  auto tt = kiln::test::synthetic(64, 8, 16);
  DeviceLoader L(tt.train, torch::kCPU, torch::kFloat32, {120, 120, 120}, {60, 60, 60});
  AugmentOptions plain;
  plain.pad = 2;
  plain.flip = true;
  AugmentOptions aa = plain;
  aa.policy = "autoaugment";
  AugmentOptions ra = plain;
  ra.policy = "randaugment";
  ra.scale_min = 0.75, ra.scale_max = 1.33;
  auto p0 = L.plan(7, 3, true, plain), p1 = L.plan(7, 3, true, aa), p2 = L.plan(7, 3, true, ra);
  // Turning a policy on adds draws after the old ones: order, crops and flips are unchanged.
  EXPECT_TRUE(torch::equal(p0.order, p1.order) && torch::equal(p0.dy, p1.dy) && torch::equal(p0.flip, p2.flip));
  auto b0 = L.batch(p0, 0, 32, plain), b1 = L.batch(p1, 0, 32, aa), b1b = L.batch(L.plan(7, 3, true, aa), 0, 32, aa);
  EXPECT_TRUE(torch::equal(b1.x, b1b.x));  // a function of (seed, epoch)
  EXPECT_FALSE(torch::allclose(b0.x, b1.x));
  EXPECT_TRUE(torch::equal(b0.y, b1.y));
  // Examples whose both slots are Identity are exactly the plain augmentation.
  auto untouched = p1.pol_op.slice(0, 0, 32).eq(0).all(1);
  ASSERT_GT(untouched.sum().item<int64_t>(), 0);
  EXPECT_TRUE(torch::allclose(b0.x.index({untouched}), b1.x.index({untouched}), 1e-5, 1e-4));
  auto b2 = L.batch(p2, 1, 32, ra);
  EXPECT_TRUE(torch::isfinite(b2.x).all().item<bool>());
}

TEST(Policy, StrengthsSetTheirKeys) {
  Config c;
  apply_strength(c, "S1");
  EXPECT_EQ(c.s("aug.policy"), "none");
  EXPECT_EQ(c.i("aug.cutout"), 0);
  EXPECT_TRUE(c.b("aug.flip"));
  apply_strength(c, "S2");
  EXPECT_EQ(c.s("aug.policy"), "autoaugment");
  EXPECT_EQ(c.f("aug.scale_max"), 1.0);
  apply_strength(c, "S3+cutout");
  EXPECT_EQ(c.s("aug.policy"), "autoaugment");
  EXPECT_EQ(c.f("aug.scale_min"), 0.75);
  EXPECT_EQ(c.i("aug.cutout"), 16);
  apply_strength(c, "S4");
  EXPECT_EQ(c.s("aug.policy"), "randaugment");
  EXPECT_EQ(c.i("aug.randaugment_m"), 15);
  EXPECT_EQ(c.i("aug.cutout"), 0);
  kiln::test::expect_error_containing([&] { apply_strength(c, "S5"); }, "S1, S2, S3, S4");
}
