// The small models of issue #8 (kiln/nn/tiny.h), ReLU6, Glorot init and Adam/AdamW against
// their definitions.
#include "helpers.h"
#include "kiln/nn/tiny.h"
#include "kiln/train/optim.h"
#include "kiln/deploy/quantize.h"
#include "kiln/train/schedule.h"

using namespace kiln;

namespace {
Config separable_config() {
  Config c;
  c.set("model.name", "separable");
  c.set("model.widths", "[8, 16, 32]");
  c.set("model.depth", "2");
  return c;
}
}  // namespace

TEST(Tiny, SeparableNetCountsAsItsDefinition) {
  auto m = make_model(separable_config(), 3, 10);
  // stem 3x8x9 + BN 2x8; blocks (dw c x 9 + BN 2c + pw c x w + BN 2w):
  // 8->16 s2: 72+16+128+32; 16->16: 144+32+256+32; 16->32 s2: 144+32+512+64; 32->32: 288+64+1024+64; fc 32x10+10
  EXPECT_EQ(count_parameters(*m), 216 + 16 + 248 + 464 + 752 + 1440 + 330);
  auto y = m->forward(torch::randn({2, 3, 32, 32}));
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 10}));
  // FLOPs: stem at 32x32, two blocks at 16x16, two at 8x8 (depthwise: 1 input channel per filter), head.
  const double want = 2.0 * 3 * 8 * 9 * 1024 + 2.0 * 8 * 9 * 256 + 2.0 * 8 * 16 * 256 + 2.0 * 16 * 9 * 256 +
                      2.0 * 16 * 16 * 256 + 2.0 * 16 * 9 * 64 + 2.0 * 16 * 32 * 64 + 2.0 * 32 * 9 * 64 +
                      2.0 * 32 * 32 * 64 + 2.0 * 32 * 10;
  EXPECT_DOUBLE_EQ(m->forward_flops(32, 32), want);
  // weight bytes: every parameter and BN running statistic in fp32.
  int64_t bn_stats = 2 * (8 + 8 + 16 + 16 + 16 + 16 + 32 + 32 + 32);  // running mean and variance of every BN
  EXPECT_EQ(weight_bytes(*m), 4 * (count_parameters(*m) + bn_stats));
  // A depthwise conv is one 3x3 filter per channel.
  auto* net = dynamic_cast<SeparableNet*>(m.get());
  ASSERT_NE(net, nullptr);
  EXPECT_EQ(net->blocks[0]->depthwise->weight.sizes(), (std::vector<int64_t>{8, 1, 3, 3}));
}

TEST(Tiny, DenseNetGrowsByTheGrowthRate) {
  Config c;
  c.set("model.name", "dense");
  c.set("model.widths", "[16, 12, 12]");  // stem 16, two dense blocks of growth rate 12
  c.set("model.depth", "2");
  auto m = make_model(c, 1, 10);
  auto* net = dynamic_cast<DenseNet*>(m.get());
  ASSERT_NE(net, nullptr);
  // block 0: 16 -> 40; transition -> 20; block 1: 20 -> 44.
  EXPECT_EQ(net->layers[0][1].second->options.in_channels(), 28);
  EXPECT_EQ(net->transitions[0].second->options.in_channels(), 40);
  EXPECT_EQ(net->transitions[0].second->options.out_channels(), 20);
  EXPECT_EQ(net->fc->options.in_features(), 44);
  auto y = m->forward(torch::randn({3, 1, 28, 28}));
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{3, 10}));
  const double want = 2.0 * 1 * 16 * 9 * 784 + 2.0 * 16 * 12 * 9 * 784 + 2.0 * 28 * 12 * 9 * 784 + 2.0 * 40 * 20 * 784 +
                      2.0 * 20 * 12 * 9 * 196 + 2.0 * 32 * 12 * 9 * 196 + 2.0 * 44 * 10;
  EXPECT_DOUBLE_EQ(m->forward_flops(28, 28), want);
}

TEST(Tiny, ReLU6AndGlorotNormal) {
  auto x = torch::tensor({-1.f, 0.f, 3.f, 6.f, 7.5f});
  EXPECT_TRUE(torch::equal(activate(x, parse_activation("relu6"), 0), torch::tensor({0.f, 0.f, 3.f, 6.f, 6.f})));
  torch::manual_seed(0);
  struct Net : torch::nn::Module {  // (held by a shared_ptr: modules() includes itself)
    torch::nn::Linear fc{nullptr};
    torch::nn::Conv2d conv{nullptr}, dw{nullptr};
    Net() {
      fc = register_module("fc", torch::nn::Linear(400, 600));
      conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(64, 128, 3)));
      dw = register_module("dw", torch::nn::Conv2d(torch::nn::Conv2dOptions(256, 256, 3).groups(256)));
    }
  };
  auto holder = std::make_shared<Net>();
  auto& net = *holder;
  glorot_normal_init(net);
  EXPECT_NEAR(net.fc->weight.std().item<double>(), std::sqrt(2.0 / 1000), 0.02 * std::sqrt(2.0 / 1000));
  EXPECT_NEAR(net.fc->weight.mean().item<double>(), 0, 1e-3);
  EXPECT_TRUE(net.fc->bias.eq(0).all().item<bool>());
  EXPECT_NEAR(net.conv->weight.std().item<double>(), std::sqrt(2.0 / (64 * 9 + 128 * 9)), 0.03 * std::sqrt(2.0 / 1728));
  EXPECT_NEAR(net.dw->weight.std().item<double>(), std::sqrt(2.0 / (9 + 9)), 0.05 * std::sqrt(2.0 / 18));  // fans: 1 x 9 each
  // Through the config, for a whole model.
  Config c = separable_config();
  c.set("model.init", "glorot_normal");
  auto m = make_model(c, 3, 10);
  auto* s = dynamic_cast<SeparableNet*>(m.get());
  EXPECT_TRUE(s->fc->bias.eq(0).all().item<bool>());
}

TEST(Tiny, AdamAndAdamWStepsAsDefined) {
  // One step from the start: m = (1 - b1) g, v = (1 - b2) g^2, bias-corrected to g and g^2, so
  //   adam:  p1 = p0 - lr (g + wd p0) / (|g + wd p0| + eps)       (L2: decay in the gradient)
  //   adamw: p1 = p0 (1 - lr wd) - lr g / (|g| + eps)              (decoupled)
  for (std::string name : {"adam", "adamw"}) {
    Config c = separable_config();
    c.set("optim.name", name);
    c.set("optim.weight_decay", "0.1");
    c.set("optim.adam_eps", "1e-3");
    auto m = make_model(c, 3, 10);
    auto setup = make_sgd(c, *m, 0.01);
    EXPECT_FALSE(setup.is_sgd);
    auto& w = dynamic_cast<SeparableNet*>(m.get())->fc->weight;
    auto p0 = w.detach().clone();
    setup.zero_grad();
    m->forward(torch::randn({4, 3, 32, 32})).pow(2).sum().backward();
    auto g = w.grad().detach().clone();
    setup.step();
    torch::Tensor want;
    if (name == "adam") {
      auto gg = g + 0.1 * p0;
      want = p0 - 0.01 * gg / (gg.abs() + 1e-3);
    } else {
      want = p0 * (1 - 0.01 * 0.1) - 0.01 * g / (g.abs() + 1e-3);
    }
    EXPECT_TRUE(torch::allclose(w.detach(), want, 1e-5, 1e-6)) << name;
    setup.set_lr(0.5);
    EXPECT_DOUBLE_EQ(setup.optimizer->param_groups()[0].options().get_lr(), 0.5);
  }
}

TEST(Tiny, SmallModelsMemoriseTenExamples) {
  auto tt = kiln::test::synthetic(10, 10);
  for (std::string model : {"separable", "dense"}) {
    Config c = separable_config();
    c.set("model.name", model);
    if (model == "dense") c.set("model.widths", "[8, 8, 8]");
    c.set("model.activation", "relu6");
    c.set("model.init", "glorot_normal");
    kiln::test::plain_adam(c, "0.01");  // (overfit_config sets the LR it is given)
    auto oc = overfit_config(c, 10, 300, 1e-2);
    auto r = overfit(oc, tt, 0.05, kiln::test::quiet_options());
    EXPECT_TRUE(r.reached) << model << ": loss " << r.curve.back().train_loss << " after " << r.curve.size() << " steps";
  }
}

TEST(Tiny, StaticStepRefusesAdam) {
  auto tt = kiln::test::synthetic(20, 10);
  Config c = separable_config();
  c.set("optim.name", "adamw");
  c.set("train.static_step", "true");
  c.set("data.batch_size", "10");
  kiln::test::expect_error_containing([&] { train(c, tt, kiln::test::quiet_options()); }, "SGD and Muon only");
}

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

TEST(Plateau, ReducesAfterPatienceRunsOut) {
  Plateau p;
  p.factor = 0.5, p.patience = 1, p.threshold = 0.1, p.min_multiplier = 0.3;
  EXPECT_FALSE(p.observe(1.0));   // best 1.0
  EXPECT_FALSE(p.observe(0.95));  // not below 0.9: 1 bad epoch (tolerated)
  EXPECT_TRUE(p.observe(0.93));   // 2 in a row: x0.5
  EXPECT_DOUBLE_EQ(p.multiplier, 0.5);
  EXPECT_FALSE(p.observe(0.5));   // an improvement: best 0.5, count restarts
  EXPECT_EQ(p.bad_epochs, 0);
  EXPECT_FALSE(p.observe(0.6));
  EXPECT_TRUE(p.observe(0.6));    // x0.5 = 0.25, floored at 0.3
  EXPECT_DOUBLE_EQ(p.multiplier, 0.3);
  EXPECT_FALSE(p.observe(0.6));
  EXPECT_FALSE(p.observe(0.6));   // already at the floor: no change reported
  Plateau off;
  EXPECT_FALSE(off.observe(1.0));
  EXPECT_FALSE(off.enabled());
}

TEST(Plateau, TrainerFollowsItAndResumesExactly) {
  auto tt = kiln::test::synthetic(200, 50);
  Config c = separable_config();
  kiln::test::plain_adam(c, "0.002");
  c.set("data.batch_size", "50");
  c.set("schedule.epochs", "8");
  c.set("schedule.knot_unit", "fraction");
  c.set("schedule.knots", "[[0, 1.0], [1, 1.0]]");
  c.set("schedule.plateau_factor", "0.5");
  c.set("schedule.plateau_patience", "0");
  c.set("schedule.plateau_threshold", "0.3");  // demanding: most epochs count as a plateau
  kiln::test::TempDir d;
  train(c, tt, kiln::test::quiet_options(d / "whole"));
  auto ms = kiln::test::read_metrics(d / "whole");
  ASSERT_EQ(ms.size(), 8u);
  Plateau replay = Plateau::from_config(c);
  int reductions = 0;
  for (auto& m : ms) {
    EXPECT_NEAR(m["lr"].get<double>(), 0.002 * replay.multiplier, 1e-12) << "epoch " << m["epoch"];
    reductions += replay.observe(m["train_loss"].get<double>());
  }
  EXPECT_GE(reductions, 2);
  auto o = kiln::test::quiet_options(d / "cut");
  o.stop_after_steps = 13;  // 4 steps per epoch: mid epoch 4, after decisions were made
  ASSERT_TRUE(train(c, tt, o).interrupted);
  resume(tt, kiln::test::quiet_options(d / "cut"));
  EXPECT_EQ(kiln::test::without_times(ms), kiln::test::without_times(kiln::test::read_metrics(d / "cut")));
  Config bad = c;
  bad.set("train.static_step", "true");
  kiln::test::expect_error_containing([&] { train(bad, tt, kiln::test::quiet_options()); }, "plateau");
}

TEST(Quantize, QatStepsAtTheQuantisedWeights) {
  // One plain SGD step with train.qat: w1 = w0 - lr * (gradient at the int8 round trip of w0).
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
  c.set("train.qat", "true");
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
      w.copy_(quantize_per_channel(w).dequantize());
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
  EXPECT_FALSE(torch::equal(got.back(), quantize_per_channel(got.back()).dequantize()));
}
