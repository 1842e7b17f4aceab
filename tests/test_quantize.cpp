// int8 quantisation against its definition (kiln/deploy/quantize.h): per-channel symmetric
// weights, a trained model's accuracy with them, and quantisation-aware training's step.
#include "helpers.h"
#include "kiln/deploy/quantize.h"

using namespace kiln;
using kiln::test::separable_config;

TEST(Quantize, PerChannelSymmetricInt8) {
  auto w = torch::tensor({{0.5f, -1.0f, 0.25f}, {0.f, 0.f, 0.f}, {3.f, 1.f, -0.01f}});
  auto q = quantize_per_channel(w);
  EXPECT_EQ(q.q.scalar_type(), torch::kInt8);
  EXPECT_TRUE(torch::allclose(q.scale, torch::tensor({1.f / 127, 1.f, 3.f / 127})));
  // The channel's largest magnitude lands on +-127; the rest round to the nearest step.
  EXPECT_TRUE(torch::equal(q.q[0], torch::tensor({64, -127, 32}, torch::kInt8)));  // 63.5 -> 64, 31.75 -> 32
  EXPECT_TRUE(q.q[1].eq(0).all().item<bool>());
  EXPECT_EQ(q.q[2][0].item<int>(), 127);
  torch::manual_seed(0);
  auto big = torch::randn({16, 8, 3, 3});
  auto qb = quantize_per_channel(big);
  auto err = (qb.dequantize() - big).abs();
  auto half_step = (qb.scale / 2).view({16, 1, 1, 1}) + 1e-7;
  EXPECT_TRUE(err.le(half_step).all().item<bool>());
  EXPECT_GE(qb.q.min().item<int>(), -127);
}

TEST(Quantize, PerTensorSharesOneScale) {
  // --granularity tensor: one scale, max |w| / 127 over the whole weight, repeated per channel.
  auto w = torch::tensor({{0.5f, -1.0f, 0.25f}, {0.f, 0.f, 0.f}, {3.f, 1.f, -0.01f}});
  auto q = quantize_per_channel(w, Granularity::kTensor);
  EXPECT_TRUE(torch::allclose(q.scale, torch::full({3}, 3.f / 127)));
  EXPECT_TRUE(torch::equal(q.q[0], torch::tensor({21, -42, 11}, torch::kInt8)));  // 21.17, -42.33, 10.58
  EXPECT_TRUE(torch::equal(q.q[2], torch::tensor({127, 42, 0}, torch::kInt8)));
  torch::manual_seed(0);
  auto big = torch::randn({16, 8, 3, 3}) * torch::linspace(0.01, 1, 16).view({16, 1, 1, 1});  // channels of unequal range
  auto qt = quantize_per_channel(big, Granularity::kTensor), qc = quantize_per_channel(big);
  const double scale = big.abs().max().item<double>() / 127;
  EXPECT_TRUE((qt.dequantize() - big).abs().le(scale / 2 + 1e-7).all().item<bool>());
  // The coarser grid. A channel's mean rounding error is a quarter of its step: per channel the
  // steps follow the ranges (0.01 to 1, mean 0.505), per tensor all take the widest, so the total
  // error is about 1 / 0.505 = 1.98 times the per-channel one (1.94 measured: the narrowest
  // channels' values fall inside one step, and their error is the value itself). On the narrowest
  // channel it is up to 100 times larger.
  const auto et = (qt.dequantize() - big).abs(), ec = (qc.dequantize() - big).abs();
  EXPECT_GT(et.sum().item<double>(), 1.5 * ec.sum().item<double>());
  EXPECT_GT(et[0].sum().item<double>(), 20 * ec[0].sum().item<double>());
  EXPECT_EQ(parse_granularity("tensor", "k"), Granularity::kTensor);
  kiln::test::expect_error_containing([] { parse_granularity("layer", "train.qat_granularity"); }, "train.qat_granularity = 'layer'");
}

TEST(Quantize, FewerBitsAreTheSameGridWithFewerSteps) {
  // b bits: qmax = 2^(b-1) - 1 steps each side (7 at 4 bits, 1 at 2: ternary), scale = max |w| / qmax.
  auto w = torch::tensor({{0.6f, -1.0f, 0.2f}, {0.f, 0.f, 0.f}, {3.f, 1.f, -0.01f}});
  auto q4 = quantize_per_channel(w, IntGrid(Granularity::kChannel, 4));
  EXPECT_EQ(IntGrid(Granularity::kChannel, 4).name(), "int4 per-channel");
  EXPECT_TRUE(torch::allclose(q4.scale, torch::tensor({1.f / 7, 1.f, 3.f / 7})));
  EXPECT_TRUE(torch::equal(q4.q[0], torch::tensor({4, -7, 1}, torch::kInt8)));  // 4.2 -> 4, 1.4 -> 1
  EXPECT_TRUE(torch::equal(q4.q[2], torch::tensor({7, 2, 0}, torch::kInt8)));   // 2.33 -> 2, -0.023 -> 0
  auto q2 = quantize_per_channel(w, IntGrid(Granularity::kTensor, 2));
  EXPECT_TRUE(torch::allclose(q2.scale, torch::full({3}, 3.f)));
  EXPECT_TRUE(torch::equal(q2.q[0], torch::tensor({0, 0, 0}, torch::kInt8)));  // 0.2, -0.33, 0.07 of a step
  EXPECT_TRUE(torch::equal(q2.q[2], torch::tensor({1, 0, 0}, torch::kInt8)));
  // 8 bits is the int8 grid, to the bit.
  torch::manual_seed(0);
  auto big = torch::randn({16, 8, 3, 3});
  auto q8 = quantize_per_channel(big), q8b = quantize_per_channel(big, IntGrid(Granularity::kChannel, 8));
  EXPECT_TRUE(torch::equal(q8.q, q8b.q) && torch::equal(q8.scale, q8b.scale));
  for (int bits = 2; bits <= 8; ++bits) {
    SCOPED_TRACE(bits);
    const IntGrid grid(Granularity::kChannel, bits);
    auto qb = quantize_per_channel(big, grid);
    auto absmax = std::get<0>(big.abs().reshape({16, -1}).max(1));
    EXPECT_TRUE(torch::allclose(qb.scale, absmax / grid.qmax()));
    EXPECT_EQ(qb.q.abs().max().item<int>(), grid.qmax());  // each channel's largest magnitude lands on +-qmax
    EXPECT_TRUE((qb.dequantize() - big).abs().le((qb.scale / 2).view({16, 1, 1, 1}) + 1e-7).all().item<bool>());
  }
  // The mean rounding error is about a quarter of a step, and the step grows as 1 / qmax: at 4
  // bits about 127 / 7 = 18 times int8's (the error is not exactly uniform on Gaussian weights).
  const double e8 = (q8.dequantize() - big).abs().mean().item<double>();
  const double e4 = (q4 = quantize_per_channel(big, IntGrid(Granularity::kChannel, 4)), (q4.dequantize() - big).abs().mean().item<double>());
  std::printf("mean |error|: int8 %.3g, int4 %.3g (ratio %.1f)\n", e8, e4, e4 / e8);
  EXPECT_GT(e4 / e8, 12);
  EXPECT_LT(e4 / e8, 25);
  kiln::test::expect_error_containing([] { check_bits(9, "--bits"); }, "--bits = 9: the bits of the weights' grid, 2 to 8");
  kiln::test::expect_error_containing([&] { quantize_per_channel(big, IntGrid(Granularity::kChannel, 1)); }, "quantisation bits = 1");
}

TEST(Quantize, Int8WeightsKeepATrainedModelsAccuracy) {
  auto tt = kiln::test::synthetic(400, 200);
  Config c = separable_config();
  c.set("model.widths", "[8, 16, 32]");
  kiln::test::plain_adam(c, "0.003");
  kiln::test::no_augmentation(c);
  c.set("data.batch_size", "40");
  c.set("schedule.epochs", "10");
  c.set("train.eval_every", "100");
  kiln::test::TempDir d;
  auto r = train(c, tt, kiln::test::quiet_options(d / "run"));
  auto lc = load_checkpoint(d / "run/checkpoint.pt", torch::kCPU);
  DeviceLoader L(tt.test, torch::kCPU, torch::kFloat32, lc.mean, lc.std);
  auto before = evaluate(*lc.model, L, 100);
  auto rep = quantize_weights_inplace(*lc.model);
  auto after = evaluate(*lc.model, L, 100);
  std::printf("fp32 %.3f -> int8 %.3f; %lld -> %lld bytes; %lld tensors\n", before.acc, after.acc, (long long)rep.fp32_bytes,
              (long long)rep.int8_bytes, (long long)rep.tensors);
  EXPECT_GT(before.acc, 0.5) << "the model must have learned something for this to mean anything";
  // Measured (issue #27): fp32 0.985 -> int8 0.985 on an Intel Xeon with AMX, 0.980 -> 0.980 with
  // its AVX2 kernels (2026-11-30): int8 changed no prediction of the 200 on either; 0.02 is 4.
  EXPECT_NEAR(after.acc, before.acc, 0.02);
  EXPECT_EQ(rep.tensors, 1 + 4 * 2 + 1);  // stem, 4 blocks x (depthwise, pointwise), head
  EXPECT_LT(rep.int8_bytes, rep.fp32_bytes / 2);
  EXPECT_GT(rep.max_abs_error, 0);
}

TEST(Quantize, QatStepsAtTheQuantisedWeights) {
  // One plain SGD step with train.qat: w1 = w0 - lr * (gradient at the round trip of w0 through
  // the grid), at either train.qat_granularity and at 8 or 4 train.qat_bits; the grids give
  // different steps.
  std::vector<torch::Tensor> steps;
  for (const IntGrid g : {IntGrid(Granularity::kChannel), IntGrid(Granularity::kTensor), IntGrid(Granularity::kChannel, 4)}) {
    SCOPED_TRACE(g.name());
    auto tt = kiln::test::synthetic(40, 10);
    Config c = separable_config();
    c.set("optim.momentum", "0");
    c.set("optim.nesterov", "false");
    c.set("optim.weight_decay", "0");
    c.set("optim.loss_reduction", "mean");
    c.set("data.batch_size", "40");  // the whole set in one step: the loss does not depend on the order
    c.set("schedule.epochs", "1");
    c.set("schedule.knots", "[[0, 1.0], [1, 1.0]]");
    kiln::test::no_augmentation(c);
    c.set("train.precision", "fp32");
    // The recomputation below runs the checkpoint's model in NCHW: the trainer must too, or the two
    // gradients come from different convolution kernels (at one thread, or with AVX2's kernels, the
    // channels_last step landed 5e-5 from it, past the bound; 2026-12-01, AMD EPYC).
    c.set("train.channels_last", "false");
    c.set("train.qat", "true");
    c.set("train.qat_granularity", granularity_name(g.granularity));
    c.set("train.qat_bits", std::to_string(g.bits));
    c.set("optim.lr", "0.05");
    kiln::test::TempDir d;
    train(c, tt, kiln::test::quiet_options(d / "step"));
    Config still = c;
    still.set("optim.lr", "0");
    train(still, tt, kiln::test::quiet_options(d / "start"));
    auto start = load_checkpoint(d / "start/checkpoint.pt", torch::kCPU);
    auto after = load_checkpoint(d / "step/checkpoint.pt", torch::kCPU);
    DeviceLoader L(tt.train, torch::kCPU, torch::kFloat32, start.mean, start.std);
    auto& model = *start.model;
    model.train();
    std::vector<torch::Tensor> ws, w0;
    for (auto& m : model.modules(false)) {
      if (auto* cv = dynamic_cast<torch::nn::Conv2dImpl*>(m.get())) ws.push_back(cv->weight);
      if (auto* l = dynamic_cast<torch::nn::LinearImpl*>(m.get())) ws.push_back(l->weight);
    }
    {
      torch::NoGradGuard ng;
      for (auto& w : ws) {
        w0.push_back(w.detach().clone());
        w.copy_(quantize_per_channel(w, g).dequantize());
      }
    }
    auto b = L.slice(0, 40);
    torch::nn::functional::cross_entropy(model.forward(b.x), b.y).backward();
    std::vector<torch::Tensor> got;
    for (auto& m : after.model->modules(false)) {
      if (auto* cv = dynamic_cast<torch::nn::Conv2dImpl*>(m.get())) got.push_back(cv->weight);
      if (auto* l = dynamic_cast<torch::nn::LinearImpl*>(m.get())) got.push_back(l->weight);
    }
    ASSERT_EQ(got.size(), ws.size());
    double moved = 0;
    for (size_t i = 0; i < ws.size(); ++i) {
      auto want = w0[i] - 0.05 * ws[i].grad();
      EXPECT_TRUE(torch::allclose(got[i], want, 1e-4, 1e-6)) << "weight " << i << ": max diff "
                                                            << (got[i] - want).abs().max().item<double>();
      moved += (got[i] - w0[i]).abs().sum().item<double>();
    }
    EXPECT_GT(moved, 0);  // the step did something; the weights kept are fp32, not the int8 round trip
    EXPECT_FALSE(torch::equal(got.back(), quantize_per_channel(got.back(), g).dequantize()));
    std::vector<torch::Tensor> flat;
    for (auto& w : got) flat.push_back(w.detach().flatten());
    steps.push_back(torch::cat(flat));
  }
  EXPECT_FALSE(torch::allclose(steps[0], steps[1], 1e-4, 1e-6)) << "train.qat_granularity changed nothing";
  EXPECT_FALSE(torch::allclose(steps[0], steps[2], 1e-4, 1e-6)) << "train.qat_bits changed nothing";
}
