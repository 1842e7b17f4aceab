// The airbench family's pieces against their definitions: the network's shapes, parameters,
// FLOPs (against the peer's published 0.36 PFLOP per run), dirac init, the alternating flip,
// fractional epochs, the whitening bias's freeze, a run too short for Lookahead's first update,
// exact resume with Lookahead and with Muon,
// every recipe in fp16 and its first fp16 step against the fp32 step. (Muon's and Lookahead's
// updates: test_optimizers.cpp; the proxy filter: test_proxy_filter.cpp.)
#include <algorithm>
#include <map>

#include "helpers.h"
#include "kiln/core/error.h"
#include "kiln/data/loader.h"
#include "kiln/nn/airbench.h"
#include "kiln/report/stats.h"
#include "kiln/train/loss.h"
#include "kiln/train/optim.h"
#include "kiln/train/proxy_filter.h"
#include "kiln/train/trainer.h"

using namespace kiln;
using kiln::test::expect_exact_resume;
using kiln::test::quiet_options;
using kiln::test::read_metrics;
using kiln::test::synthetic;
using kiln::test::TempDir;
using kiln::test::without_times;
using kiln::test::expect_close_runs;
using kiln::test::tiny_airbench;

namespace {

Config preset(const std::string& name) { return Config::from_file(find_preset(name)); }

torch::Tensor param(torch::nn::Module& m, const std::string& name) {
  for (auto& p : m.named_parameters())
    if (p.key() == name) return p.value();
  return {};
}

// A recipe as the two fp16 tests train it: the tiny network on 16x16 images, 3 epochs (24
// steps); cifar10-96-faster's proxy keeping 32 of each batch of 64 through 8-wide filters.
Config fp16_recipe(const std::string& name) {
  Config c = tiny_airbench(name);
  c.set("schedule.epochs", "3");
  if (name == "cifar10-96-faster") {
    c.set("filter.keep", "32");
    c.set("filter.widths", "[8, 8, 8]");
  }
  return c;
}

}  // namespace

TEST(Airbench, ParametersShapesAndThePeersFlopCount) {
  Config c = preset("cifar10-94");
  AirbenchNet net(3, 10, c);
  // whitening bias 24; group 1: 24*64*9 + 64*64*9 + 2*64 BN biases; group 2: 64*256*9 +
  // 256*256*9 + 512; group 3: 2 * 256*256*9 + 512; head 256*10 (BN weights are frozen buffers).
  const int64_t want = 24 + (13824 + 36864 + 128) + (147456 + 589824 + 512) + (2 * 589824 + 512) + 2560;
  EXPECT_EQ(count_parameters(net), want);
  EXPECT_EQ(net.forward(torch::randn({2, 3, 32, 32})).sizes(), (std::vector<int64_t>{2, 10}));
  // airbench94's header: 0.36 PFLOP per run = 3 x forward x 476 steps x 1024 + 6 TTA views x 10,000.
  const double f = net.forward_flops(32, 32), run = 3 * f * 476 * 1024 + 6 * f * 10000;
  EXPECT_GT(run, 0.34e15);
  EXPECT_LT(run, 0.37e15);
  Config c96 = preset("cifar10-96");
  AirbenchNet net96(3, 10, c96);
  EXPECT_EQ(net96.groups[0]->conv.size(), 3u);
  // airbench96's header: 4.91 PFLOP per run (37 epochs x 48 steps x 1024, TTA on 10,000).
  const double f96 = net96.forward_flops(32, 32), run96 = 3 * f96 * 37 * 48 * 1024 + 6 * f96 * 10000;
  EXPECT_GT(run96, 4.7e15);
  EXPECT_LT(run96, 5.1e15);
}

TEST(Airbench, WhiteningBiasStartsAtZeroOrAsAPlainConvsBias) {
  Config c = preset("cifar10-94");
  AirbenchNet zero(3, 10, c);
  EXPECT_TRUE(torch::equal(zero.whiten_bias, torch::zeros({24})));
  Config m = preset("cifar10-94-muon");
  EXPECT_EQ(m.s("model.whiten_bias_init"), "uniform");
  torch::manual_seed(3);
  AirbenchNet uni(3, 10, m);
  const double bound = 1 / std::sqrt(12.0);  // fan_in = 3 channels x 2 x 2
  EXPECT_LE(uni.whiten_bias.abs().max().item<double>(), bound);
  EXPECT_GT(uni.whiten_bias.abs().max().item<double>(), 0.5 * bound);  // 24 draws: the largest is near the bound
  EXPECT_GT(uni.whiten_bias.std().item<double>(), 0.5 * bound / std::sqrt(3.0));  // U(-b, b) has std b / sqrt 3
}

TEST(Airbench, DiracInitMakesTheFirstFiltersIdentities) {
  Config c = preset("cifar10-94");
  AirbenchNet net(3, 10, c);
  auto& conv = net.groups[0]->conv[0];  // 24 -> 64
  auto x = torch::randn({2, 24, 9, 9});
  auto y = conv(x);
  EXPECT_TRUE(torch::allclose(y.slice(1, 0, 24), x, 1e-6, 1e-6));
  c.set("model.conv_init", "default");
  AirbenchNet plain(3, 10, c);
  EXPECT_FALSE(torch::allclose(plain.groups[0]->conv[0](x).slice(1, 0, 24), x, 1e-3, 1e-3));
}

// model.whiten_trained: legacy/airbench94.py without init_whitening_conv and without freezing
// net[0].weight, i.e. its Conv(3, 24, 2): PyTorch's conv init, the first 3 filters dirac, a
// parameter trained with the others; never fitted (the run would refuse it if the set-up fitted
// it); other networks refuse the key.
TEST(Airbench, TrainedWhiteningIsTheScriptsConvWithoutItsFit) {
  Config c = preset("cifar10-94");
  AirbenchNet fitted(3, 10, c);
  c.set("model.whiten_trained", "true");
  torch::manual_seed(5);
  AirbenchNet net(3, 10, c);
  auto names = [](const auto& items) {
    std::vector<std::string> out;
    for (auto& i : items) out.push_back(i.key());
    return out;
  };
  auto params = names(net.named_parameters()), buffers = names(net.named_buffers());
  EXPECT_NE(std::find(params.begin(), params.end(), "whiten.weight"), params.end());
  EXPECT_EQ(std::find(buffers.begin(), buffers.end(), "whiten.weight"), buffers.end());
  EXPECT_EQ(count_parameters(net), count_parameters(fitted) + 24 * 3 * 2 * 2);
  auto w = net.whiten->weight.detach();
  auto dirac = torch::zeros({3, 3, 2, 2});
  for (int i = 0; i < 3; ++i) dirac[i][i][1][1] = 1.0;  // torch.nn.init.dirac_: the kernel's centre, k // 2
  EXPECT_TRUE(torch::equal(w.slice(0, 0, 3), dirac));
  const double bound = 1 / std::sqrt(12.0);  // kaiming_uniform_(a = sqrt 5): U(+-1/sqrt(fan_in)), fan_in 12
  auto rest = w.slice(0, 3);
  EXPECT_LE(rest.abs().max().item<double>(), bound);
  EXPECT_GT(rest.abs().max().item<double>(), 0.9 * bound);  // 252 draws: the largest is near the bound
  EXPECT_NEAR(rest.std().item<double>(), bound / std::sqrt(3.0), 0.2 * bound / std::sqrt(3.0));
  net.train();
  net.forward(torch::randn({4, 3, 32, 32})).square().sum().backward();
  ASSERT_TRUE(net.whiten->weight.grad().defined());
  EXPECT_GT(net.whiten->weight.grad().abs().max().item<double>(), 0.0);
  kiln::test::expect_error_containing([&] { net.fit_to_data(torch::randn({4, 3, 8, 8})); },
                                      "the whitening conv is trained here (model.whiten_trained = true)");
  c.set("model.conv_init", "default");
  AirbenchNet plain(3, 10, c);
  EXPECT_FALSE(torch::equal(plain.whiten->weight.detach().slice(0, 0, 3), dirac));
  EXPECT_LE(plain.whiten->weight.abs().max().item<double>(), bound);
  // trained: the weight moves (its dirac filters no longer exact) and the checkpoint holds it
  auto tt = synthetic(256, 64);
  Config t = tiny_airbench();
  t.set("model.whiten_trained", "true");
  t.set("schedule.epochs", "1");
  t.set("optim.lookahead", "false");  // 4 steps, fewer than Lookahead's 5: its end would restore the init
  TempDir d;
  train(t, tt, quiet_options(d / "run"));
  auto ck = load_checkpoint(d / "run/checkpoint.pt", torch::kCPU);
  auto trained = param(*ck.model, "whiten.weight");
  ASSERT_TRUE(trained.defined());
  EXPECT_GT((trained.slice(0, 0, 3) - dirac).abs().max().item<double>(), 1e-4);
  Config r = Config::from_file(find_preset("cifar10-myrtle-94"));
  r.set("model.whiten_trained", "true");
  kiln::test::expect_error_containing([&] { make_model(r, 3, 10); }, "model.whiten = \"none\" is the network without it");
}

TEST(Airbench, ThreeConvGroupHasAResidualAroundTheLastTwo) {
  Config c = preset("cifar10-96");
  BlockOptions o = block_options(c);
  ConvGroup g(4, 6, 3, o, true);
  g->eval();
  auto x = torch::randn({2, 4, 8, 8});
  auto gelu = [](const torch::Tensor& t) { return torch::gelu(t); };
  auto x0 = gelu(g->bn[0](torch::max_pool2d(g->conv[0](x), 2)));
  auto want = gelu(g->bn[2](g->conv[2](gelu(g->bn[1](g->conv[1](x0))))) + x0);
  EXPECT_TRUE(torch::allclose(g(x), want, 1e-6, 1e-6));
}

TEST(Airbench, HeadNormStartsAtUnitStdAndDividesByTheWidth) {
  Config c = preset("cifar10-94-muon");
  AirbenchNet net(3, 10, c);
  EXPECT_NEAR(net.fc->weight.std().item<double>(), 1.0, 1e-5);
  net.eval();
  auto x = torch::randn({2, 3, 32, 32});
  auto logits = net.forward(x);
  net.head_norm = false;
  net.output_scale = 1.0 / 256;
  EXPECT_TRUE(torch::allclose(logits, net.forward(x), 1e-6, 1e-6));
}

TEST(Airbench, AlternatingFlipMirrorsEveryImageOnOddEpochs) {
  auto tt = synthetic(100, 10);
  DeviceLoader L(tt.train, torch::kCPU, torch::kFloat32, {}, {});
  AugmentOptions aug;
  aug.flip = true;
  aug.alternating = true;
  std::vector<torch::Tensor> by_example;
  for (int64_t e = 0; e < 3; ++e) {
    auto p = L.plan(7, e, true, aug);
    auto f = torch::zeros({100}, torch::kBool);
    f.index_put_({p.order}, p.flip);  // position -> example
    by_example.push_back(f);
  }
  EXPECT_TRUE(torch::equal(by_example[1], by_example[0].logical_not()));
  EXPECT_TRUE(torch::equal(by_example[2], by_example[0]));
  const double share = by_example[0].to(torch::kFloat32).mean().item<double>();
  EXPECT_GT(share, 0.3);
  EXPECT_LT(share, 0.7);
}

TEST(Airbench, FractionalEpochsTrainCeilOfTheSteps) {
  auto tt = synthetic(512, 100);
  Config c = tiny_airbench();
  c.set("schedule.epochs", "1.5");  // 8 steps per epoch -> 12 steps, the second epoch partial
  TempDir d;
  auto r = train(c, tt, quiet_options(d / "run"));
  ASSERT_EQ(r.epochs.size(), 2u);
  auto b = read_file(d / "run/steps.csv");
  std::string text(b.begin(), b.end());
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1 + 12);
  EXPECT_NE(text.find("\n12,2,"), std::string::npos);
}

TEST(Airbench, WhiteningBiasTrainsForItsEpochsThenStaysFrozen) {
  auto tt = synthetic(512, 100);
  Config c = tiny_airbench();
  c.set("model.whiten_bias_epochs", "1");
  c.set("optim.lookahead", "false");
  c.set("schedule.knot_unit", "epoch");
  c.set("schedule.knots", "[[0, 1], [10, 1]]");  // constant LR: epoch 1 is the same in both runs
  TempDir d;
  Config one = c, two = c;
  one.set("schedule.epochs", "1");
  two.set("schedule.epochs", "2");
  train(one, tt, quiet_options(d / "one"));
  train(two, tt, quiet_options(d / "two"));
  auto a = load_checkpoint(d / "one/checkpoint.pt", torch::kCPU), b = load_checkpoint(d / "two/checkpoint.pt", torch::kCPU);
  auto ba = param(*a.model, "whiten_bias"), bb = param(*b.model, "whiten_bias");
  ASSERT_TRUE(ba.defined() && bb.defined());
  EXPECT_GT(ba.abs().max().item<double>(), 0.0);  // it trained in epoch 1
  EXPECT_TRUE(torch::equal(ba, bb));                // and not in epoch 2
  EXPECT_FALSE(torch::equal(param(*a.model, "fc.weight"), param(*b.model, "fc.weight")));
}

// airbench's Lookahead first updates at step lookahead_every and ends by taking the slow
// weights: a run shorter than that ends at its initial weights (every parameter and buffer), and
// says so at the start, in final.json and in report.html; one update (lookahead_every = 4 of 4 steps) and the
// run trains, without a warning.
TEST(Airbench, LookaheadRunShorterThanItsFirstUpdateWarnsAndEndsAtTheInit) {
  auto tt = synthetic(256, 64);
  Config c = tiny_airbench();
  c.set("schedule.epochs", "1");  // 4 steps of 64
  ASSERT_TRUE(c.b("optim.lookahead"));
  ASSERT_EQ(c.i("optim.lookahead_every"), 5);
  TempDir d;
  auto init = quiet_options(d / "init");
  init.stop_after_steps = 0;  // the checkpoint before the first step: the initial weights
  ASSERT_TRUE(train(c, tt, init).interrupted);
  auto r = train(c, tt, quiet_options(d / "short"));
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("optim.lookahead is on and this run has 4 steps, fewer than optim.lookahead_every = 5"),
            std::string::npos) << r.warnings[0];
  EXPECT_NE(r.warnings[0].find("the run ends at its initial weights"), std::string::npos) << r.warnings[0];
  auto fin = nlohmann::json::parse(read_file(d / "short/final.json"));
  ASSERT_TRUE(fin.contains("warnings")) << fin.dump();
  EXPECT_EQ(fin["warnings"], nlohmann::json(r.warnings));
  auto html = read_file(d / "short/report.html");
  EXPECT_NE(std::string(html.begin(), html.end()).find("<p class=\"warning\">Warning: optim.lookahead is on and this run has 4 steps"),
            std::string::npos);
  auto a = load_checkpoint(d / "init/checkpoint.pt", torch::kCPU), b = load_checkpoint(d / "short/checkpoint.pt", torch::kCPU);
  auto sa = a.model->named_parameters(), sb = b.model->named_parameters();
  ASSERT_EQ(sa.size(), sb.size());
  for (const auto& p : sa) EXPECT_TRUE(torch::equal(p.value(), sb[p.key()])) << p.key() << " moved";
  auto ba = a.model->named_buffers(), bb = b.model->named_buffers();
  for (const auto& p : ba)
    if (p.value().is_floating_point()) EXPECT_TRUE(torch::equal(p.value(), bb[p.key()])) << p.key() << " moved";
  c.set("optim.lookahead_every", "4");
  auto once = train(c, tt, quiet_options(d / "once"));
  EXPECT_TRUE(once.warnings.empty());
  EXPECT_FALSE(nlohmann::json::parse(read_file(d / "once/final.json")).contains("warnings"));
  auto o = load_checkpoint(d / "once/checkpoint.pt", torch::kCPU);
  EXPECT_FALSE(torch::equal(param(*o.model, "fc.weight"), param(*a.model, "fc.weight")));
}

TEST(Airbench, ResumeIsExactWithLookaheadAndWithMuon) {
  auto tt = synthetic(512, 100);
  for (auto name : {"cifar10-94", "cifar10-94-muon"}) {
    Config c = tiny_airbench(name);
    c.set("schedule.epochs", "2.5");
    c.set("model.whiten_bias_epochs", "1");
    TempDir d;
    expect_exact_resume(c, tt, d.path.string(), {6, 13}, name);
  }
}

// The preset is airbench96_faster's recipe: 45 epochs of 48 steps, 512 of 1024 kept, and the
// script header's 3.1 PFLOP per run (main network 3 x forward on the kept examples, the proxy's
// forward on all of them and backward on its kept ones every 4th step, TTA on 10,000).
TEST(Airbench, FasterPresetIsThePeersRecipeAndFlopCount) {
  Config c = preset("cifar10-96-faster");
  EXPECT_EQ(c.i("filter.keep"), 512);
  EXPECT_EQ(c.i("data.batch_size"), 1024);
  EXPECT_EQ(c.f("schedule.epochs"), 45.0);
  EXPECT_EQ(c.i("model.whiten_bias_epochs"), 45);
  EXPECT_EQ(c.i("model.convs_per_group"), 3);
  EXPECT_EQ(c.i("aug.cutout"), 12);
  EXPECT_TRUE(c.b("optim.lookahead"));
  AirbenchNet net(3, 10, c), proxy(3, 10, proxy_config(c));
  const double steps = 45 * 48, f = net.forward_flops(32, 32), fp = proxy.forward_flops(32, 32);
  const double run = 3 * f * steps * 512 + 6 * f * 10000 + fp * steps * 1024 + 2 * fp * (steps / 4) * 512;
  EXPECT_GT(run, 2.95e15);
  EXPECT_LT(run, 3.25e15);
}

TEST(Airbench, EveryRecipeTrainsInFp16AsItWouldOnTheGpu) {
  // On CUDA the presets train in fp16 (train.precision = "auto") with BN in fp32, a path the
  // fp32 tests never take: the whitening layer, Lookahead, Muon's bf16 Newton-Schulz written
  // back into fp16 filters, the residual and cutout of cifar10-96, the proxy filter, the TTA
  // evaluation. Here, on the CPU, every recipe takes it, eagerly and as the static step under
  // the CUDA graph's address contract: the dtypes are as on the GPU, the losses stay finite and
  // the run learns as an fp32 run does.
  //
  // How close is close enough is measured here, not set: fp16 rounds every product, and a
  // recipe whose optimiser amplifies rounding (Muon's Newton-Schulz steps) leaves the fp32
  // trajectory as far as another seed would. So each recipe also trains in fp32 with seeds
  // 0-7, and the fp16 run must be a plausible member of that population: within the 99.9%
  // prediction interval of one more fp32 run, mean +- t(0.9995, n-1) s sqrt(1 + 1/n), for its
  // last loss and its accuracy (the accuracy's interval is wide: these 24-step runs' accuracies
  // spread by 2-13 points from seed to seed). A broken fp16 path shows as NaNs, a loss that does
  // not fall, or a loss off the fp32 population's. A fixed bound fails on the next CPU: oneDNN picks
  // other kernels on other CPUs (AMX, AVX-512, AVX2), and issue #27 saw cifar10-94-muon's fp16
  // loss 2.0% from fp32's on a Xeon with AMX where the bound was 1% (under 0.5% on an EPYC).
  //
  // The cost is the fp16 runs: oneDNN's fp16 convolution backward on the CPU takes ~0.5 s a call
  // even at these widths (97% of an fp16 run's time under `kiln bench --profile`), an fp32 run
  // of the same steps well under a second. So the runs are 3 epochs (24 steps), not 6, and the
  // fp32 population is 8 seeds, not 4: t(0.9995, 7) = 5.41 against t(0.9995, 3) = 12.9, which
  // narrows the loss interval 3-5 fold for cifar10-94 and cifar10-96 and halves the test's time
  // (bench/results/fp16-step-test-2026-12-03-model167.json; the old design's numbers:
  // fp16-recipe-test-bounds-2026-12-03-model167.json).
  auto tt = synthetic(512, 200);
  for (auto name : {"cifar10-94", "cifar10-94-muon", "cifar10-96", "cifar10-96-faster"}) {
    Config c = fp16_recipe(name);
    if (std::string(name).rfind("cifar10-96", 0) == 0) {  // the 32x32 recipe's cutout and translate, halved for 16x16
      c.set("aug.cutout", "6");
      c.set("aug.pad", "2");
    }
    torch::manual_seed(0);
    auto m = make_model(c, 3, 10);
    set_precision(*m, torch::kFloat16);
    for (auto& item : m->named_parameters())
      EXPECT_EQ(item.value().scalar_type(), item.key().find("bn") != std::string::npos ? torch::kFloat32 : torch::kFloat16)
          << name << " " << item.key();
    for (auto& item : m->named_buffers())  // BN's running statistics in fp32, the frozen whitening in fp16
      if (item.value().is_floating_point())
        EXPECT_EQ(item.value().scalar_type(), item.key().find("bn") != std::string::npos ? torch::kFloat32 : torch::kFloat16)
            << name << " " << item.key();

    // fp32 with seeds 0-7: the reference run and the seed-to-seed spread around it.
    constexpr int kSeeds = 8;
    std::vector<double> acc32, loss32;
    for (int seed = 0; seed < kSeeds; ++seed) {
      Config s = c;
      s.set("train.seed", std::to_string(seed));
      TempDir d32;
      acc32.push_back(train(s, tt, quiet_options(d32 / "run")).final_test_acc);
      const auto m32 = read_metrics(d32 / "run");
      loss32.push_back(m32.back()["train_loss"].get<double>());
      EXPECT_LT(loss32.back(), m32.front()["train_loss"].get<double>()) << name << " fp32 seed " << seed << ": the loss did not fall";
    }
    const auto loss_stats = summarize(loss32), acc_stats = summarize(acc32);
    ASSERT_GT(loss_stats.std, 0) << name << ": eight seeds gave the same loss: the seed does not reach the run";
    const double widen = student_t_quantile(0.9995, kSeeds - 1) * std::sqrt(1.0 + 1.0 / kSeeds);
    const double loss_bound = widen * loss_stats.std;
    // Accuracy is counted in whole test images (200): at least one image's worth of room.
    const double acc_bound = std::max(widen * acc_stats.std, 1.0 / 200);
    std::cout << name << " fp32 seeds 0-" << kSeeds - 1 << ": last train loss " << loss_stats.mean << " +- " << loss_stats.std
              << ", test accuracy " << acc_stats.mean << " +- " << acc_stats.std << ": fp16 allowed +-" << loss_bound
              << " in loss, +-" << acc_bound << " in accuracy around the means\n";
    for (bool graph : {false, true}) {
      Config h = c;
      h.set("train.precision", "fp16");
      h.set("train.cuda_graph", graph ? "true" : "false");
      TempDir d;
      auto r = train(h, tt, quiet_options(d / "run"));
      const std::string what = std::string(name) + (graph ? " fp16 static step under the graph contract" : " fp16 eager");
      auto metrics = read_metrics(d / "run");
      for (auto& e : metrics) EXPECT_TRUE(std::isfinite(e["train_loss"].get<double>())) << what;
      const double loss = metrics.back()["train_loss"].get<double>();
      EXPECT_NE(loss, loss32[0]) << what << ": the same loss as fp32 to the last bit: not an fp16 run";
      std::cout << what << ": test accuracy " << r.final_test_acc << ", last train loss " << loss << " (fp32 seed 0: "
                << acc32[0] << ", " << loss32[0] << ")\n";
      EXPECT_NEAR(loss, loss_stats.mean, loss_bound) << what;
      EXPECT_NEAR(r.final_test_acc, acc_stats.mean, acc_bound) << what;
      // And it learned: its loss fell from the first epoch to the last, as every fp32 seed's did
      // (checked above). A fixed floor on these tiny runs' accuracy would be another bound
      // tuned on one CPU: the fp32 seeds' accuracies spread by 2-13 points here.
      EXPECT_LT(loss, metrics.front()["train_loss"].get<double>()) << what;
    }
  }
}

namespace {

// A run's weights once it has taken its first `steps` training steps (the checkpoint it writes when
// stopped there: 0 is the initial weights, the whitening fitted), by name, in the run's dtypes.
std::map<std::string, torch::Tensor> weights_after(const Config& c, const TrainTest& tt, int64_t steps, const std::string& dir) {
  auto o = quiet_options(dir);
  o.stop_after_steps = steps;
  EXPECT_TRUE(train(c, tt, o).interrupted) << dir;
  std::map<std::string, torch::Tensor> w;
  for (auto& p : load_checkpoint(dir + "/checkpoint.pt", torch::kCPU).model->named_parameters()) w[p.key()] = p.value().detach();
  return w;
}

}  // namespace

// The recipe test above holds 24-step fp16 runs to a population of fp32 seeds: it sees NaNs, a
// loss that does not fall or one off the population, and nothing finer (a learning rate 30% low
// passes it). This test holds the fp16 step itself to the fp32 step: every recipe's first step,
// eager and static, from the same weights, parameter tensor by tensor.
//
// The same weights: an fp16 run fits its whitening on its fp16-stored images (as airbench does:
// legacy/airbench94.py stores the images in fp16, line 109, and takes patches .float() from them,
// line 244), and on the synthetic set's near-equal patch eigenvalues that rotates the filters far
// from an fp32 run's. So every run here starts from one fp16 run's initial checkpoint
// (train.init), whitening included.
//
// The bound is measured, not set: the fp32 step u, applied to the fp16 weights and rounded to
// their storage (fp16 for filters, fp32 for BN), is where the fp16 step should land. It may miss
// by twice the error a bf16 run's step makes against u (bf16 computes with 3 fewer mantissa bits,
// on fp32 weights), plus one fp16 ulp an element for the filters (a gradient differing in its last
// bits flips the rounding of an update itself an ulp or two). Where rounding is the source, fp16's
// error is ~1/10 of bf16's (the BN biases, the late filters); where a source both share dominates
// it is as large: the first filters, whose input is the whitening's amplified rounding of the
// images, and Muon's filters, whose bf16 Newton-Schulz rounds alike in every run. Two such draws
// come out in either order (with AVX2 kernels fp16's was 1.12 x bf16's on cifar10-94-muon's first
// filters; with AMX's at most 0.68 x): hence twice. Measured on an Intel Xeon with AMX with its own
// and with AVX2 kernels (bench/results/fp16-step-test-2026-12-03-model167.json); it holds on an
// AMD EPYC with AVX-512 (no AMX) too, the largest distance 0.53 of its bound.
// Only the first step: by the second, Muon's Newton-Schulz magnifies any difference, fp16's and
// bf16's alike, to ~15%.
// The draw matters, and the presets' own augmentation is what holds: with cifar10-96's cutout and
// translate halved (6 and 2, as the recipe test trains it) the fp16 step's first-group BN biases
// miss by 2.4-3.2 x bf16's error, the same to six digits with AVX-512 and with AVX2 kernels on an
// AMD EPYC, while the last groups' errors do not move; the first filters' error jumps 10-50 x from
// one draw to another (bench/results/fp16-step-draws-2026-12-03-epyc.json). The source is the
// groups' 2x2 max-pooling, a discrete choice: with average pooling in its place (a temporary
// hook) fp16's first-layer error is 0.03-0.26 x bf16's on every draw tried; a window whose largest
// values tie or swap in fp16 sends the gradient to another element. A change to the
// augmentation's random draws may need this bound rethought.
TEST(Airbench, Fp16StepIsTheFp32StepToFp16sPrecision) {
  auto tt = synthetic(512, 200);
  for (auto name : {"cifar10-94", "cifar10-94-muon", "cifar10-96", "cifar10-96-faster"}) {
    Config c = fp16_recipe(name);
    TempDir d;
    Config init = c;
    init.set("train.precision", "fp16");
    const auto w0 = weights_after(init, tt, 0, d / "init");
    c.set("train.init", d / "init/checkpoint.pt");
    const auto w32 = weights_after(c, tt, 1, d / "fp32");
    std::map<std::string, std::map<std::string, double>> err;  // by run, then by parameter
    std::map<std::string, double> ulps;                         // one fp16 ulp an element, over |u|
    for (std::string run : {"bf16", "fp16", "fp16 static"}) {
      Config h = c;
      h.set("train.precision", run == "bf16" ? "bf16" : "fp16");
      h.set("train.static_step", run == "fp16 static" ? "true" : "false");
      const auto w = weights_after(h, tt, 1, d / (run == "fp16 static" ? "fp16-static" : run));
      for (auto& [k, a0] : w0) {
        const auto u = (w32.at(k) - a0).to(torch::kFloat32);
        const double un = u.norm().item<double>();
        if (un == 0) continue;  // the frozen ones
        const auto want = (a0.to(torch::kFloat32) + u).to(w.at(k).scalar_type());
        err[run][k] = (w.at(k).to(torch::kFloat32) - want.to(torch::kFloat32)).norm().item<double>() / un;
        if (run == "fp16" && w.at(k).scalar_type() == torch::kFloat16) {
          const auto ulp = torch::nextafter(want.abs(), torch::full_like(want, 65504)) - want.abs();
          ulps[k] = ulp.to(torch::kFloat32).norm().item<double>() / un;
        }
      }
    }
    ASSERT_FALSE(err["fp16"].empty()) << name;
    std::vector<double> ratio;
    for (auto& [k, e] : err["fp16"]) {
      const double bound = 2 * err["bf16"][k] + ulps[k];
      EXPECT_LE(e, bound) << name << " " << k << ": the fp16 step is " << e << " of the fp32 step away from it (bf16's "
                          << err["bf16"][k] << ", one ulp " << ulps[k] << ")";
      EXPECT_LE(err["fp16 static"][k], bound) << name << " " << k << ": the fp16 static step is " << err["fp16 static"][k]
                                              << " of the fp32 step away from it (bf16's " << err["bf16"][k] << ", one ulp " << ulps[k] << ")";
      ratio.push_back(e / std::max(bound, 1e-30));
    }
    std::sort(ratio.begin(), ratio.end());
    std::cout << name << ": the fp16 step's distance from the fp32 step over its bound, " << ratio.size()
              << " parameter tensors: median " << ratio[ratio.size() / 2] << ", largest " << ratio.back() << "\n";
  }
}

// Short real trainings against floors: a half-width network, 5,000 CIFAR-10 training images,
// 3 epochs of batch 250 (60 steps), 1,000 test images with the presets' TTA. Measured: on an AMD
// EPYC (n = 2 seeds each) cifar10-94 57.3%, cifar10-94-muon 73.4%; on an Intel Xeon with AMX
// (2026-11-30, seed 0) 57.7% and 75.1% with its native kernels, 57.9% and 75.0% with its AVX2
// kernels. The floors sit 7-10 points below every one of these.
TEST(RealData, AirbenchRecipesBeatFloorsOnACifarSubset) {
  const auto root = kiln::test::real_data_root();
  if (root.empty() || !dir_exists(root + "/cifar10")) GTEST_SKIP() << "no CIFAR-10 under KILN_DATA";
  auto tt = load_dataset("cifar10", root);
  for (auto [name, floor] : {std::pair<const char*, double>{"cifar10-94", 0.50}, {"cifar10-94-muon", 0.65}}) {
    Config c = preset(name);
    c.set("model.widths", "[32, 128, 128]");
    c.set("data.train_subset", "5000");
    c.set("data.test_subset", "1000");
    c.set("data.batch_size", "250");
    c.set("schedule.epochs", "3");
    c.set("train.eval_every", "3");
    auto r = train(c, tt, quiet_options());
    std::cout << name << " on the CIFAR-10 subset: test accuracy " << r.final_test_acc << " (floor " << floor << ")\n";
    EXPECT_GT(r.final_test_acc, floor) << name;
  }
}

// cifar10-96-faster's filter on real data, shrunk the same way (main widths 32/96/128, proxy
// 16/32/32, 5,000 images, 3 epochs of batch 250 of which the proxy keeps 125, 1,000 test
// images with TTA): measured on the development machine (n = 2 seeds) 37.1% and 39.2%.
TEST(RealData, ProxyFilteredRecipeBeatsAFloorOnACifarSubset) {
  const auto root = kiln::test::real_data_root();
  if (root.empty() || !dir_exists(root + "/cifar10")) GTEST_SKIP() << "no CIFAR-10 under KILN_DATA";
  auto tt = load_dataset("cifar10", root);
  Config c = preset("cifar10-96-faster");
  c.set("model.widths", "[32, 96, 128]");
  c.set("filter.widths", "[16, 32, 32]");
  c.set("filter.keep", "125");
  c.set("data.train_subset", "5000");
  c.set("data.test_subset", "1000");
  c.set("data.batch_size", "250");
  c.set("schedule.epochs", "3");
  c.set("model.whiten_bias_epochs", "3");
  c.set("train.eval_every", "3");
  auto r = train(c, tt, quiet_options());
  std::cout << "cifar10-96-faster on the CIFAR-10 subset: test accuracy " << r.final_test_acc << " (floor 0.30)\n";
  EXPECT_GT(r.final_test_acc, 0.30);
}
