#include <ATen/CPUGeneratorImpl.h>

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

// ---- resized crops (issue #26) ----

TEST(Augment, ResizedCropIsTorchsAntialiasedBilinearOfTheBox) {
  // LibTorch's own interpolate(bilinear, align_corners = false, antialias = true) of each
  // example's box is the reference: shrinking (box larger than the output), enlarging, both at
  // once (one axis each way), and the whole image.
  torch::manual_seed(3);
  auto x = torch::rand({5, 3, 20, 24}) * 255;
  Boxes box{torch::tensor({0, 3, 5, 0, 2}, torch::kInt64), torch::tensor({0, 1, 7, 4, 0}, torch::kInt64),
            torch::tensor({20, 15, 6, 20, 9}, torch::kInt64), torch::tensor({24, 17, 5, 9, 24}, torch::kInt64)};
  namespace F = torch::nn::functional;
  for (auto out : std::vector<std::pair<int64_t, int64_t>>{{12, 16}, {30, 30}, {7, 40}}) {
    auto y = resized_crop(x, box, out.first, out.second);
    ASSERT_EQ(y.sizes(), torch::IntArrayRef({5, 3, out.first, out.second}));
    for (int64_t b = 0; b < 5; ++b) {
      const auto t = box.top[b].item<int64_t>(), l = box.left[b].item<int64_t>();
      auto crop = x.slice(0, b, b + 1).slice(2, t, t + box.h[b].item<int64_t>()).slice(3, l, l + box.w[b].item<int64_t>());
      auto want = F::interpolate(crop, F::InterpolateFuncOptions()
                                           .size(std::vector<int64_t>{out.first, out.second})
                                           .mode(torch::kBilinear)
                                           .align_corners(false)
                                           .antialias(true));
      // fp32 sums of up to ~24 terms of values up to 255: a few ulps of 255.
      EXPECT_LT((y[b] - want[0]).abs().max().item<double>(), 2e-3) << "example " << b << " to " << out.first << "x" << out.second;
    }
  }
  // The whole image at its own size is the image itself (weights are the identity).
  auto full = center_boxes(5, 20, 24, 1.0);
  EXPECT_LT((resized_crop(x, full, 20, 24) - x).abs().max().item<double>(), 1e-4);
  // Constant images stay constant (each row of weights sums to 1), in bf16 too.
  auto c = torch::full({2, 1, 9, 9}, 7.0).to(torch::kBFloat16);
  auto yc = resized_crop(c, center_boxes(2, 9, 9, 0.5), 13, 4);
  EXPECT_EQ(yc.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(yc.eq(7).all().item<bool>());
}

TEST(Augment, CenterBoxesAreTorchvisionsCenterCrop) {
  auto b = center_boxes(2, 32, 32, 0.875);  // 28 x 28 at (2, 2)
  EXPECT_EQ(b.h[1].item<int64_t>(), 28);
  EXPECT_EQ(b.w[0].item<int64_t>(), 28);
  EXPECT_EQ(b.top[0].item<int64_t>(), 2);
  EXPECT_EQ(b.left[1].item<int64_t>(), 2);
  auto o = center_boxes(1, 7, 10, 0.5);  // round(3.5) = 4 (half to even), round(5) = 5; top round(1.5) = 2, left round(2.5) = 2
  EXPECT_EQ(o.h[0].item<int64_t>(), 4);
  EXPECT_EQ(o.w[0].item<int64_t>(), 5);
  EXPECT_EQ(o.top[0].item<int64_t>(), 2);
  EXPECT_EQ(o.left[0].item<int64_t>(), 2);
}

TEST(Augment, RandomResizedCropBoxesFollowTorchvisionsDefinition) {
  const int64_t n = 4000, H = 40, W = 60;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
  auto b = draw_resized_crops(n, H, W, 0.08, 1.0, 3.0 / 4, 4.0 / 3, gen);
  auto h = b.h.to(torch::kFloat64), w = b.w.to(torch::kFloat64);
  // Inside the image, never empty.
  EXPECT_TRUE((b.top >= 0).all().item<bool>() && (b.top + b.h <= H).all().item<bool>());
  EXPECT_TRUE((b.left >= 0).all().item<bool>() && (b.left + b.w <= W).all().item<bool>());
  EXPECT_TRUE((b.h > 0).all().item<bool>() && (b.w > 0).all().item<bool>());
  // Area fraction and aspect ratio within their ranges, up to the rounding of h and w to whole
  // pixels (a half pixel on each side); the fallback (the whole 40 x 60 image: ratio 1.5 clamped
  // to 4/3, so 40 x 53) is the only other box.
  auto area = h * w / static_cast<double>(H * W), ratio = w / h;
  auto fallback = b.h.eq(40) & b.w.eq(53) & b.top.eq(0) & b.left.eq(3);
  auto lo_area = (h - 0.5).clamp_min(0) * (w - 0.5).clamp_min(0) / static_cast<double>(H * W);
  auto hi_area = (h + 0.5) * (w + 0.5) / static_cast<double>(H * W);
  EXPECT_TRUE((fallback | ((hi_area >= 0.08) & (lo_area <= 1.0))).all().item<bool>());
  EXPECT_TRUE((fallback | ((w + 0.5) / (h - 0.5) >= 0.75 & (w - 0.5) / (h + 0.5) <= 4.0 / 3)).all().item<bool>());
  // Placement uniform: the mean relative offset of boxes that could move is about 1/2.
  auto room = (H - b.h).to(torch::kFloat64);
  auto movable = room > 0;
  auto rel = (b.top.to(torch::kFloat64) / room).masked_select(movable);
  EXPECT_NEAR(rel.mean().item<double>(), 0.5, 0.03);
  // Mean area fraction: torchvision 0.26's own get_params on a 40 x 60 image gives 0.3981 (sd
  // 0.195, 200,000 draws; below the uniform draw's 0.54 because large boxes of extreme ratio do
  // not fit and are redrawn). 4000 draws: standard error 0.0031; the bound is 4 of them.
  EXPECT_NEAR(area.mean().item<double>(), 0.3981, 0.0124);
  // A function of the generator's state.
  auto g1 = at::make_generator<at::CPUGeneratorImpl>(11);
  auto again = draw_resized_crops(n, H, W, 0.08, 1.0, 3.0 / 4, 4.0 / 3, g1);
  EXPECT_TRUE(torch::equal(again.top, b.top) && torch::equal(again.w, b.w));
  // Scale 1 and ratio 1 on a square image: the whole image. No ratio that fits: the fallback,
  // the central crop with the ratio clamped (square image, ratios [2, 3]: 10 wide, 5 high).
  auto whole = draw_resized_crops(3, 10, 10, 1, 1, 1, 1, gen);
  EXPECT_TRUE(whole.h.eq(10).all().item<bool>() && whole.w.eq(10).all().item<bool>() && whole.top.eq(0).all().item<bool>());
  auto fb = draw_resized_crops(3, 10, 10, 1, 1, 2, 3, gen);
  EXPECT_TRUE(fb.h.eq(5).all().item<bool>() && fb.w.eq(10).all().item<bool>());
  EXPECT_TRUE(fb.top.eq(2).all().item<bool>() && fb.left.eq(0).all().item<bool>());
}

TEST(Loader, ViewIsTheCentralCropResizedForEvaluationAndTraining) {
  Dataset ds{torch::randint(0, 255, {12, 3, 20, 20}).to(torch::kUInt8), torch::arange(12) % 10, {}};
  std::vector<double> mean{100, 110, 120}, sd{50, 60, 70};
  View view;
  view.h = 12, view.w = 10, view.fraction = 0.8;
  DeviceLoader L(ds, torch::kCPU, torch::kFloat32, mean, sd, false, view);
  EXPECT_EQ(L.input_height(), 12);
  EXPECT_EQ(L.input_width(), 10);
  EXPECT_EQ(L.data().size(2), 20);  // stored as loaded
  auto m = torch::tensor(mean, torch::kFloat32).view({1, 3, 1, 1}), s = torch::tensor(sd, torch::kFloat32).view({1, 3, 1, 1});
  auto norm = (ds.images.to(torch::kFloat32) - m) / s;
  auto want = resized_crop(norm, center_boxes(12, 20, 20, 0.8), 12, 10);  // the central 16 x 16
  EXPECT_TRUE(torch::allclose(L.slice(2, 7).x, want.slice(0, 2, 7), 1e-5, 1e-5));
  auto idx = torch::tensor({5, 0}, torch::kInt64);
  EXPECT_TRUE(torch::allclose(L.take(idx).x, want.index_select(0, idx), 1e-5, 1e-5));
  // Training without the random-resized crop starts from the same view; flips then apply at its size.
  AugmentOptions aug;
  aug.flip = true;
  auto p = L.plan(3, 0, true, aug);
  auto b = L.batch(p, 0, 6, aug);
  auto order = p.order.slice(0, 0, 6);
  EXPECT_TRUE(torch::allclose(b.x, flip_where(want.index_select(0, order), p.flip.slice(0, 0, 6)), 1e-5, 1e-5));
  // With it: each example's drawn box, resized to the view's size, then the rest.
  aug.random_resized_crop = true;
  auto q = L.plan(3, 0, true, aug);
  EXPECT_TRUE(torch::equal(q.order, p.order));  // drawn after every earlier draw: the others unchanged
  EXPECT_TRUE(torch::equal(q.flip, p.flip));
  ASSERT_TRUE(q.box_h.defined());
  auto r = L.batch(q, 1, 6, aug);  // positions 6..11
  auto sl = [](const torch::Tensor& t) { return t.slice(0, 6, 12); };
  auto rows = norm.index_select(0, sl(q.order));
  auto expect = flip_where(resized_crop(rows, {sl(q.box_top), sl(q.box_left), sl(q.box_h), sl(q.box_w)}, 12, 10), sl(q.flip));
  EXPECT_TRUE(torch::allclose(r.x, expect, 1e-5, 1e-5));
  // A rank's shard takes its positions' boxes along.
  auto shard = shard_plan(q, 1, 2, 6);
  EXPECT_TRUE(torch::equal(shard.box_w, q.box_w.index_select(0, torch::arange(1, 12, 2))));
  // The identity view changes nothing.
  DeviceLoader P(ds, torch::kCPU, torch::kFloat32, mean, sd);
  EXPECT_TRUE(torch::equal(P.slice(0, 12).x, P.data()));
  // A fraction outside (0, 1] is refused naming its key.
  View bad;
  bad.fraction = 0;
  try {
    DeviceLoader Q(ds, torch::kCPU, torch::kFloat32, mean, sd, false, bad);
    ADD_FAILURE() << "fraction 0 was accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("data.eval_crop"), std::string::npos) << e.what();
  }
}
