// Each trick of the bag against its definition.
#include "helpers.h"
#include "kiln/nn/layers.h"
#include "kiln/nn/model.h"
#include "kiln/train/optim.h"
#include "kiln/train/trainer.h"

#include <ATen/record_function.h>

using namespace kiln;

TEST(Tricks, MaxPoolCommutesWithMonotonicActivations) {
  // The first swap (pool before the activation) computes exactly the same thing.
  torch::manual_seed(0);
  auto y = torch::randn({4, 3, 8, 8});
  for (auto a : {Activation::ReLU, Activation::CELU}) {
    auto pool_then_act = activate(torch::max_pool2d(y, 2), a, 0.3);
    auto act_then_pool = torch::max_pool2d(activate(y, a, 0.3), 2);
    EXPECT_TRUE(torch::equal(pool_then_act, act_then_pool));
  }
}

TEST(Tricks, PoolBeforeBatchNormBlockOrder) {
  torch::manual_seed(1);
  BlockOptions o;
  o.pool_before_bn = true;
  ConvBN block(3, 4, true, o);
  auto x = torch::randn({6, 3, 8, 8});
  auto want = torch::relu(block->bn(torch::max_pool2d(block->conv(x), 2)));
  EXPECT_TRUE(torch::allclose(block(x), want));
  o.pool_before_bn = false;
  ConvBN base(3, 4, true, o);
  auto want_base = torch::max_pool2d(torch::relu(base->bn(base->conv(x))), 2);
  EXPECT_TRUE(torch::allclose(base(x), want_base));
}

TEST(Tricks, CeluDefinitionAndScaleFolding) {
  auto x = torch::linspace(-4, 4, 101, torch::kFloat64);
  const double a = 0.075;
  auto def = torch::clamp_min(x, 0) + torch::clamp_max(a * (torch::exp(x / a) - 1), 0);
  EXPECT_TRUE(torch::allclose(activate(x, Activation::CELU, a), def));
  // A frozen BN scale s folds into CELU: celu(s * y; alpha) = s * celu(y; alpha / s).
  // Myrtle: s = 1/4 with alpha 0.075 is the same as s = 1 with alpha 0.3, up to the overall
  // scale that the next BN removes.
  const double s = 0.25;
  EXPECT_TRUE(torch::allclose(activate(s * x, Activation::CELU, a), s * activate(x, Activation::CELU, a / s)));
  EXPECT_TRUE(torch::allclose(activate(x, Activation::GELU, 0), 0.5 * x * (1 + torch::erf(x / std::sqrt(2.0)))));
}

// Ghost BN as Myrtle.ai's notebook (input.view(-1, C * splits, H, W)): split j holds examples
// j, j + S, j + 2S, ...; each split is normalised as plain BN would normalise it alone.
TEST(Tricks, GhostBatchNormEqualsPlainBatchNormSplitBySplit) {
  torch::manual_seed(2);
  const int64_t S = 4, C = 3;
  BatchNormOptions o;
  o.ghost_splits = S;
  o.momentum = 0.2;
  BatchNorm ghost(C, o);
  {
    torch::NoGradGuard ng;
    ghost->weight.uniform_(0.5, 1.5);
    ghost->bias.uniform_(-0.5, 0.5);
  }
  auto x = torch::randn({16, C, 5, 5}) * 3 + 1;
  auto y = ghost(x);
  std::vector<torch::Tensor> means, vars;
  for (int64_t j = 0; j < S; ++j) {
    torch::nn::BatchNorm2d plain(torch::nn::BatchNorm2dOptions(C).momentum(0.2));
    {
      torch::NoGradGuard ng;
      plain->weight.copy_(ghost->weight);
      plain->bias.copy_(ghost->bias);
    }
    auto split = x.slice(0, j, 16, S);  // examples j, j + 4, j + 8, j + 12
    EXPECT_TRUE(torch::allclose(y.slice(0, j, 16, S), plain(split), 1e-5, 1e-5)) << "split " << j;
    // The notebook's own reshape, written out: the same split.
    EXPECT_TRUE(torch::equal(x.view({16 / S, S * C, 5, 5}).slice(1, j * C, (j + 1) * C), split)) << "split " << j;
    means.push_back(plain->running_mean);
    vars.push_back(plain->running_var);
  }
  EXPECT_TRUE(torch::allclose(ghost->running_mean, torch::stack(means).mean(0), 1e-6, 1e-6));
  EXPECT_TRUE(torch::allclose(ghost->running_var, torch::stack(vars).mean(0), 1e-6, 1e-6));
  // Evaluation normalises with the running statistics.
  ghost->eval();
  auto want = (x - ghost->running_mean.view({1, C, 1, 1})) / (ghost->running_var.view({1, C, 1, 1}) + 1e-5).sqrt() *
                  ghost->weight.view({1, C, 1, 1}) + ghost->bias.view({1, C, 1, 1});
  EXPECT_TRUE(torch::allclose(ghost(x), want, 1e-5, 1e-5));
  // channels_last input is normalised by the same splits (reshape keeps logical order).
  ghost->train();
  BatchNorm twin(C, o);
  {
    torch::NoGradGuard ng;
    twin->weight.copy_(ghost->weight);
    twin->bias.copy_(ghost->bias);
  }
  EXPECT_TRUE(torch::allclose(twin(x.contiguous(torch::MemoryFormat::ChannelsLast)), y, 1e-5, 1e-5));
}

TEST(Tricks, FrozenBatchNormScaleIsAConstantOutsideTheOptimiser) {
  Config c;
  c.set("model.widths", "[8, 8, 8, 8]");
  c.set("model.bn_weight_freeze", "true");
  c.set("model.bn_weight_init", "0.25");
  auto m = make_model(c, 3, 10);
  for (auto& item : m->named_parameters()) EXPECT_EQ(item.key().find("bn.weight"), std::string::npos) << item.key();
  int frozen = 0;
  for (auto& item : m->named_buffers())
    if (item.key().find("bn.weight") != std::string::npos) {
      ++frozen;
      EXPECT_TRUE(item.value().eq(0.25).all().item<bool>());
    }
  EXPECT_EQ(frozen, 8);  // ResNet-9 has 8 conv-BN blocks
  auto sgd = make_sgd(c, *m, 0.1);
  auto loss = m->forward(torch::randn({4, 3, 16, 16})).sum();
  loss.backward();
  sgd.optimizer->step();
  for (auto& item : m->named_buffers())
    if (item.key().find("bn.weight") != std::string::npos) EXPECT_TRUE(item.value().eq(0.25).all().item<bool>());
}

TEST(Tricks, BatchNormBiasesGetTheirOwnLrAndWeightDecay) {
  Config c;
  c.set("model.widths", "[8, 8, 8, 8]");
  c.set("optim.bn_bias_lr_mult", "64");
  c.set("optim.bn_bias_wd_div", "64");
  c.set("optim.weight_decay", "0.256");
  c.set("optim.momentum", "0");
  c.set("optim.nesterov", "false");
  auto m = make_model(c, 3, 10);
  auto sgd = make_sgd(c, *m, 0.01);
  auto& groups = sgd.optimizer->param_groups();
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[1].params().size(), batchnorm_biases(*m).size());
  EXPECT_EQ(groups[0].params().size() + groups[1].params().size(), m->parameters().size());
  auto& o1 = static_cast<torch::optim::SGDOptions&>(groups[1].options());
  EXPECT_DOUBLE_EQ(o1.lr(), 0.64);
  EXPECT_DOUBLE_EQ(o1.weight_decay(), 0.004);
  sgd.set_lr(0.002);
  EXPECT_DOUBLE_EQ(static_cast<torch::optim::SGDOptions&>(groups[0].options()).lr(), 0.002);
  EXPECT_DOUBLE_EQ(o1.lr(), 0.128);
  // One plain SGD step on a bias: b -= lr * mult * (g + wd / div * b); the product lr * wd is unchanged.
  auto b = batchnorm_biases(*m)[0];
  {
    torch::NoGradGuard ng;
    b.fill_(0.5);
  }
  m->forward(torch::randn({4, 3, 16, 16})).sum().backward();
  auto g = b.grad().clone();
  sgd.optimizer->step();
  EXPECT_TRUE(torch::allclose(b, 0.5 - 0.128 * (g + 0.004 * 0.5), 1e-6, 1e-7));
}

TEST(Tricks, PatchWhiteningDecorrelatesTheFittedPatches) {
  torch::manual_seed(3);
  // Correlated "images": smooth noise.
  auto x = torch::avg_pool2d(torch::randn({64, 3, 18, 18}), 3, 1);
  for (double eps : {1e-2, 1e-6}) {
    PatchWhitening w(3, 3, eps, false, 1);
    auto lambda = w->fit(x);
    EXPECT_TRUE((lambda.slice(0, 0, 26) >= lambda.slice(0, 1, 27)).all().item<bool>());  // descending
    // Whitened patches = W p for every 3x3 patch the fit saw.
    auto patches = torch::nn::functional::unfold(x.to(torch::kFloat64), torch::nn::functional::UnfoldFuncOptions({3, 3}))
                       .transpose(1, 2)
                       .reshape({-1, 27});
    auto W = w->weight.to(torch::kFloat64).reshape({27, 27});
    auto z = patches.mm(W.t());
    auto moment = z.t().mm(z) / static_cast<double>(z.size(0));
    auto want = torch::diag(lambda / (lambda + eps));
    EXPECT_TRUE(torch::allclose(moment, want, 1e-4, 1e-4)) << "eps " << eps;
    // The convolution computes the same thing at interior positions.
    auto conv = w(x);
    EXPECT_TRUE(torch::allclose(conv[0].select(1, 1).select(1, 1).to(torch::kFloat64), z[0], 1e-4, 1e-4));
  }
  // airbench's 2x2 variant: the eigen-filters and their negations, no padding.
  PatchWhitening w2(3, 2, 5e-4, true, 0);
  w2->fit(x);
  EXPECT_EQ(w2->out_channels(), 24);
  EXPECT_TRUE(torch::equal(w2->weight.slice(0, 12, 24), -w2->weight.slice(0, 0, 12)));
  EXPECT_EQ(w2(x).sizes(), (std::vector<int64_t>{64, 24, 15, 15}));
  // airbench's bias goes inside the convolution: the same output as adding it after, and the
  // same gradient (the upstream gradient summed over batch and positions).
  auto bias = torch::randn({24}, torch::requires_grad()), upstream = torch::randn({64, 24, 15, 15});
  auto inside = w2(x, bias);
  auto after = w2(x) + bias.view({1, -1, 1, 1});
  EXPECT_TRUE(torch::allclose(inside, after, 1e-5, 1e-5));
  auto g_inside = torch::autograd::grad({inside}, {bias}, {upstream})[0];
  auto g_after = torch::autograd::grad({after}, {bias}, {upstream})[0];
  EXPECT_TRUE(torch::allclose(g_inside, upstream.sum({0, 2, 3}), 1e-4, 1e-4));
  EXPECT_TRUE(torch::allclose(g_inside, g_after, 1e-4, 1e-4));
}

TEST(Tricks, WhitenedResNet9FitsFromData) {
  Config c;
  c.set("model.widths", "[8, 8, 8, 8]");
  c.set("model.whiten", "3x3");
  auto m = std::dynamic_pointer_cast<ResNet9>(make_model(c, 3, 10));
  ASSERT_TRUE(m->whiten);
  EXPECT_TRUE(m->whiten->weight.eq(0).all().item<bool>());
  m->fit_to_data(torch::randn({16, 3, 12, 12}));
  EXPECT_FALSE(m->whiten->weight.eq(0).all().item<bool>());
  // Fixed filters: buffers, not parameters.
  for (auto& item : m->named_parameters()) EXPECT_EQ(item.key().rfind("whiten", 0), std::string::npos);
  EXPECT_EQ(m->forward(torch::randn({2, 3, 16, 16})).sizes(), (std::vector<int64_t>{2, 10}));
}

TEST(Tricks, EmaUpdateIsTheExponentialAverageOfWeightsAndRunningStats) {
  torch::nn::BatchNorm2d avg(2), cur(2);
  {
    torch::NoGradGuard ng;
    avg->weight.fill_(1);
    cur->weight.fill_(3);
    avg->running_mean.fill_(0);
    cur->running_mean.fill_(10);
    cur->num_batches_tracked.fill_(7);
  }
  ema_update(*avg, *cur, 0.9);
  EXPECT_TRUE(torch::allclose(avg->weight, torch::full({2}, 0.9 * 1 + 0.1 * 3)));
  EXPECT_TRUE(torch::allclose(avg->running_mean, torch::full({2}, 1.0)));
  EXPECT_EQ(avg->num_batches_tracked.item<int64_t>(), 7);
}

TEST(Tricks, TestTimeAugmentationCombinesTheViews) {
  // A position-sensitive "model": the weighted sum of the pixels.
  auto weights = torch::arange(16, torch::kFloat32).view({1, 1, 4, 4});
  auto f = [&](const torch::Tensor& x) { return (x * weights).sum({1, 2, 3}).unsqueeze(1); };
  auto x = torch::rand({3, 1, 4, 4});
  EXPECT_TRUE(torch::equal(predict_with_tta(f, x, "none", 0.5), f(x)));
  auto mirror = [&](const torch::Tensor& v) { return 0.5 * (f(v) + f(v.flip({3}))); };
  EXPECT_TRUE(torch::allclose(predict_with_tta(f, x, "flip", 0.5), mirror(x)));
  auto p = torch::nn::functional::pad(x, torch::nn::functional::PadFuncOptions({1, 1, 1, 1}).mode(torch::kReflect));
  auto shifted = 0.5 * (mirror(p.slice(2, 0, 4).slice(3, 0, 4)) + mirror(p.slice(2, 2, 6).slice(3, 2, 6)));
  EXPECT_TRUE(torch::allclose(predict_with_tta(f, x, "flip+translate", 0.5), 0.5 * mirror(x) + 0.5 * shifted));
  EXPECT_TRUE(torch::allclose(predict_with_tta(f, x, "flip+translate", 0.0), mirror(x)));
}

// optim.sgd_form = "lr_in_momentum" is Myrtle.ai's notebook's Nesterov update, step for step
// through a changing LR: dw = -lr (g + wd w); v = m v + dw; w = w + dw + m v (written out here
// in double, as torch_backend.py's nesterov_update does it in place). With a constant LR it is
// LibTorch's SGD; with a moving one it is not.
TEST(Tricks, SgdLrInMomentumIsTheNotebooksNesterovUpdate) {
  torch::manual_seed(3);
  const double m = 0.9, wd = 5e-4 * 512;
  auto w0 = torch::randn({4, 3}, torch::kFloat64);
  std::vector<torch::Tensor> grads;
  for (int i = 0; i < 6; ++i) grads.push_back(torch::randn({4, 3}, torch::kFloat64));
  auto run = [&](const std::vector<double>& lrs, bool notebook_form) {
    auto w = w0.clone().requires_grad_();
    auto o = torch::optim::SGDOptions(lrs[0]).momentum(m).nesterov(true).weight_decay(wd);
    std::unique_ptr<torch::optim::Optimizer> opt;
    if (notebook_form) opt = std::make_unique<kiln::SgdLrInMomentum>(std::vector<torch::Tensor>{w}, o);
    else opt = std::make_unique<torch::optim::SGD>(std::vector<torch::Tensor>{w}, o);
    for (size_t i = 0; i < lrs.size(); ++i) {
      static_cast<torch::optim::SGDOptions&>(opt->param_groups()[0].options()).lr(lrs[i]);
      w.mutable_grad() = grads[i].clone();
      opt->step();
    }
    return w.detach();
  };
  auto notebook = [&](const std::vector<double>& lrs) {
    auto w = w0.clone(), v = torch::zeros_like(w0);
    for (size_t i = 0; i < lrs.size(); ++i) {
      auto dw = (grads[i] + wd * w) * -lrs[i];
      v = m * v + dw;
      w = w + dw + m * v;
    }
    return w;
  };
  const std::vector<double> moving{0.0004, 0.0012, 0.002, 0.0015, 0.0005, 0.0001}, constant(6, 0.001);
  EXPECT_TRUE(torch::allclose(run(moving, true), notebook(moving), 1e-12, 1e-12));
  EXPECT_TRUE(torch::allclose(run(constant, true), notebook(constant), 1e-12, 1e-12));
  EXPECT_TRUE(torch::allclose(run(constant, false), notebook(constant), 1e-12, 1e-12)) << "constant LR: LibTorch's form";
  EXPECT_GT((run(moving, false) - notebook(moving)).abs().max().item<double>(), 1e-4) << "moving LR: the forms differ";
  // Its state is LibTorch's SGD state: a checkpoint round trip continues the same run.
  auto w = w0.clone().requires_grad_();
  kiln::SgdLrInMomentum a({w}, torch::optim::SGDOptions(0.001).momentum(m).nesterov(true).weight_decay(wd));
  w.mutable_grad() = grads[0].clone();
  a.step();
  torch::serialize::OutputArchive out;
  a.save(out);
  std::ostringstream bytes;
  out.save_to(bytes);
  auto w2 = w.detach().clone().requires_grad_();
  kiln::SgdLrInMomentum b({w2}, torch::optim::SGDOptions(0.001).momentum(m).nesterov(true).weight_decay(wd));
  torch::serialize::InputArchive in;
  std::istringstream read(bytes.str());
  in.load_from(read);
  b.load(in);
  w.mutable_grad() = grads[1].clone();
  w2.mutable_grad() = grads[1].clone();
  a.step();
  b.step();
  EXPECT_TRUE(torch::equal(w, w2));
}

// With EMA on, the averaged copy takes the model's fitted whitening: the whitening is fitted once
// per run (an eigendecomposition, LibTorch's linalg_eigh, watched here), not twice (issue #20:
// the second fit was counted in kiln bench's whitening time).
TEST(Tricks, EmaCopyTakesTheFittedWhiteningWithoutFittingItAgain) {
  static int fits = 0;
  fits = 0;
  auto handle = at::addThreadLocalCallback(
      at::RecordFunctionCallback([](const at::RecordFunction& fn) -> std::unique_ptr<at::ObserverContext> {
        if (std::string(fn.name()) == "aten::linalg_eigh") ++fits;
        return nullptr;
      }).scopes({at::RecordScope::FUNCTION}));
  Config c = kiln::test::shrunk_preset("cifar10-myrtle-94", "32", "1");
  c.set("model.ghost_bn_splits", "2");
  ASSERT_TRUE(c.b("ema.enabled"));
  ASSERT_EQ(c.s("model.whiten"), "3x3");
  train(c, kiln::test::synthetic(64, 32), kiln::test::quiet_options());
  at::removeCallback(handle);
  EXPECT_EQ(fits, 1);
}

// An EMA evaluated before its updates have moved it off the initial weights: a run whose
// k = steps / ema.every updates leave momentum^k > 0.5 of them is warned of (here k = 0: the
// average, which load_checkpoint and kiln eval take, is the initial network; k = 4 at Myrtle's
// 0.99^5: 82% left); 14 updates (0.951^14 = 49%) are not.
TEST(Tricks, EmaTooShortToLeaveTheInitWarnsWithTheShareLeft) {
  Config c = kiln::test::shrunk_preset("cifar10-myrtle-94", "32", "2");  // 64 images: 2 steps an epoch, 4 in all
  ASSERT_TRUE(c.b("ema.enabled"));
  ASSERT_EQ(c.i("ema.every"), 5);
  auto tt = kiln::test::synthetic(64, 32);
  kiln::test::TempDir d;
  auto init = kiln::test::quiet_options(d / "init");
  init.stop_after_steps = 0;
  ASSERT_TRUE(train(c, tt, init).interrupted);
  auto r = train(c, tt, kiln::test::quiet_options(d / "none"));
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("ema.enabled is on and this run has 4 steps: 0 updates of the average every ema.every = 5 steps "
                               "at ema.momentum = 0.95099 leave all of the initial weights in it"),
            std::string::npos) << r.warnings[0];
  auto a = load_checkpoint(d / "init/checkpoint.pt", torch::kCPU), b = load_checkpoint(d / "none/checkpoint.pt", torch::kCPU);
  auto pb = b.model->named_parameters();
  for (const auto& p : a.model->named_parameters()) EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
  c.set("schedule.epochs", "10");  // 20 steps: 4 updates
  auto four = train(c, tt, kiln::test::quiet_options());
  ASSERT_EQ(four.warnings.size(), 1u);
  EXPECT_NE(four.warnings[0].find("20 steps: 4 updates of the average every ema.every = 5 steps at ema.momentum = 0.95099 "
                                  "leave 82% of the initial weights"),
            std::string::npos) << four.warnings[0];
  c.set("schedule.epochs", "7");  // 14 steps, an update each: 0.95099^14 = 0.494
  c.set("ema.every", "1");
  EXPECT_TRUE(train(c, tt, kiln::test::quiet_options()).warnings.empty());
}

// channels_last reaches the buffers too: the frozen whitening filters are a buffer, and left in
// NCHW their convolution would reorder every input (issue #19).
TEST(Tricks, ChannelsLastConvertsFourDimensionalBuffersToo) {
  for (auto preset : {"cifar10-94", "cifar10-myrtle-94"}) {
    Config c = kiln::test::shrunk_preset(preset, "32", "1");
    auto m = make_model(c, 3, 10);
    to_channels_last(*m);
    int four_d = 0;
    for (auto& b : m->named_buffers())
      if (b.value().dim() == 4) {
        ++four_d;
        EXPECT_TRUE(b.value().is_contiguous(torch::MemoryFormat::ChannelsLast)) << preset << " " << b.key();
      }
    for (auto& p : m->named_parameters())
      if (p.value().dim() == 4) EXPECT_TRUE(p.value().is_contiguous(torch::MemoryFormat::ChannelsLast)) << preset << " " << p.key();
    EXPECT_GT(four_d, 0) << preset << ": no whitening buffer to check";
  }
}
