#include "helpers.h"
#include "kiln/data/augment.h"
#include "kiln/data/loader.h"

using namespace kiln;

namespace {
torch::Tensor ramp(int64_t B, int64_t C, int64_t H, int64_t W) {
  return torch::arange(B * C * H * W, torch::kFloat32).view({B, C, H, W});
}
}  // namespace

TEST(Augment, CropOfPaddedBatchIsTheShiftedWindow) {
  auto x = ramp(3, 2, 6, 5);
  auto dy = torch::tensor({0, 2, 4}, torch::kInt64), dx = torch::tensor({4, 0, 3}, torch::kInt64);
  for (bool reflect : {true, false}) {
    auto out = random_crop(x, 2, reflect, dy, dx);
    namespace F = torch::nn::functional;
    auto opts = F::PadFuncOptions({2, 2, 2, 2});
    auto padded = reflect ? F::pad(x, opts.mode(torch::kReflect)) : F::pad(x, opts.mode(torch::kConstant));
    for (int b = 0; b < 3; ++b) {
      auto want = padded[b].slice(1, dy[b].item<int64_t>(), dy[b].item<int64_t>() + 6)
                      .slice(2, dx[b].item<int64_t>(), dx[b].item<int64_t>() + 5);
      EXPECT_TRUE(torch::equal(out[b], want)) << "example " << b << " reflect " << reflect;
    }
  }
  // Offset (pad, pad) is the identity; zero padding brings in zeros at the border.
  auto centre = random_crop(x, 2, false, torch::full({3}, 2, torch::kInt64), torch::full({3}, 2, torch::kInt64));
  EXPECT_TRUE(torch::equal(centre, x));
  auto corner = random_crop(x, 2, false, torch::zeros({3}, torch::kInt64), torch::zeros({3}, torch::kInt64));
  EXPECT_EQ(corner[0][0][0][0].item<float>(), 0.f);
  EXPECT_EQ(corner[0][0][2][2].item<float>(), x[0][0][0][0].item<float>());
}

TEST(Augment, ReflectPaddingMirrorsWithoutRepeatingTheEdge) {
  auto x = ramp(1, 1, 4, 4);
  auto out = random_crop(x, 1, true, torch::zeros({1}, torch::kInt64), torch::zeros({1}, torch::kInt64));
  // Top-left of the window is padded(0, 0) = x(1, 1) under reflection.
  EXPECT_EQ(out[0][0][0][0].item<float>(), x[0][0][1][1].item<float>());
}

TEST(Augment, FlipWhere) {
  auto x = ramp(2, 1, 2, 3);
  auto out = flip_where(x, torch::tensor({true, false}));
  EXPECT_TRUE(torch::equal(out[0], x[0].flip({2})));
  EXPECT_TRUE(torch::equal(out[1], x[1]));
}

TEST(Augment, CutoutZeroesExactlyTheBox) {
  auto x = torch::ones({2, 3, 8, 8});
  auto out = cutout(x, 3, torch::tensor({1, 5}, torch::kInt64), torch::tensor({2, 0}, torch::kInt64));
  EXPECT_EQ(out.eq(0).sum().item<int64_t>(), 2 * 3 * 9);
  EXPECT_EQ(out[0][2][1][2].item<float>(), 0.f);
  EXPECT_EQ(out[0][2][3][4].item<float>(), 0.f);
  EXPECT_EQ(out[0][2][4][4].item<float>(), 1.f);
  EXPECT_EQ(out[1][0][7][2].item<float>(), 0.f);
  EXPECT_EQ(out[1][0][7][3].item<float>(), 1.f);
}

TEST(Loader, EpochPlanIsAFunctionOfSeedAndEpoch) {
  Dataset ds{torch::randint(0, 255, {100, 3, 8, 8}).to(torch::kUInt8), torch::arange(100) % 10, {}};
  DeviceLoader L(ds, torch::kCPU, torch::kFloat32, {}, {});
  AugmentOptions aug{2, true, true, 3};
  auto a = L.plan(7, 3, true, aug), b = L.plan(7, 3, true, aug), c = L.plan(7, 4, true, aug), d = L.plan(8, 3, true, aug);
  EXPECT_TRUE(torch::equal(a.order, b.order));
  EXPECT_TRUE(torch::equal(a.dx, b.dx));
  EXPECT_TRUE(torch::equal(a.cut_y, b.cut_y));
  EXPECT_FALSE(torch::equal(a.order, c.order));
  EXPECT_FALSE(torch::equal(a.order, d.order));
  EXPECT_TRUE(torch::equal(std::get<0>(a.order.sort()), torch::arange(100)));  // a permutation
  EXPECT_TRUE((a.dy >= 0).all().item<bool>() && (a.dy <= 4).all().item<bool>());
  EXPECT_TRUE((a.cut_x >= 0).all().item<bool>() && (a.cut_x <= 5).all().item<bool>());
  double flips = a.flip.to(torch::kFloat64).mean().item<double>();
  EXPECT_GT(flips, 0.3);
  EXPECT_LT(flips, 0.7);
}

TEST(Loader, BatchIsTheComposedAugmentationOfTheShuffledExamples) {
  Dataset ds{torch::randint(0, 255, {20, 3, 8, 8}).to(torch::kUInt8), torch::arange(20) % 10, {}};
  std::vector<double> mean{100, 110, 120}, sd{50, 60, 70};
  DeviceLoader L(ds, torch::kCPU, torch::kFloat32, mean, sd);
  AugmentOptions aug{2, true, true, 3};
  auto p = L.plan(1, 0, true, aug);
  auto b = L.batch(p, 1, 8, aug);  // positions 8..15
  auto idx = p.order.slice(0, 8, 16);
  auto m = torch::tensor(mean, torch::kFloat32).view({1, 3, 1, 1}), s = torch::tensor(sd, torch::kFloat32).view({1, 3, 1, 1});
  auto x = (ds.images.index_select(0, idx).to(torch::kFloat32) - m) / s;
  x = random_crop(x, 2, true, p.dy.slice(0, 8, 16), p.dx.slice(0, 8, 16));
  x = flip_where(x, p.flip.slice(0, 8, 16));
  x = cutout(x, 3, p.cut_y.slice(0, 8, 16), p.cut_x.slice(0, 8, 16));
  EXPECT_TRUE(torch::allclose(b.x, x));
  EXPECT_TRUE(torch::equal(b.y, ds.labels.index_select(0, idx)));
  // The last partial batch, and the count of batches with and without drop_last.
  EXPECT_EQ(L.batch(p, 2, 8, aug).x.size(0), 4);
  EXPECT_EQ(L.num_batches(8, true), 2);
  EXPECT_EQ(L.num_batches(8, false), 3);
}

TEST(Loader, NormalisesOnceWithTheGivenStatistics) {
  Dataset ds{torch::full({4, 1, 2, 2}, 30, torch::kUInt8), torch::zeros({4}, torch::kInt64), {}};
  DeviceLoader L(ds, torch::kCPU, torch::kBFloat16, {10}, {4});
  EXPECT_EQ(L.data().scalar_type(), torch::kBFloat16);
  EXPECT_EQ(L.data()[0][0][0][0].item<float>(), 5.f);
  auto [m, s] = DeviceLoader::channel_stats(ds);
  EXPECT_DOUBLE_EQ(m[0], 30.0);
  EXPECT_DOUBLE_EQ(s[0], 0.0);
}
