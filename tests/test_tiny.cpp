// The small models of issue #8 (kiln/nn/tiny.h), ReLU6 and Glorot init against their
// definitions; the small models memorise; the static step refuses Adam. (Adam/AdamW's steps:
// test_optimizers.cpp; int8: test_quantize.cpp; the plateau: test_schedule.cpp.)
#include "helpers.h"
#include "kiln/nn/tiny.h"
#include "kiln/train/optim.h"

using namespace kiln;
using kiln::test::separable_config;

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
