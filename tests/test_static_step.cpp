// The graph-safe static step (kiln/train/static_step.h) is the device-generic twin of the
// CUDA-graph path: here, on the CPU, its numbers must match the trainer's ordinary path
// (LibTorch's SGD; kiln's Muon) step for step, and it must resume exactly.
#include <cmath>
#include <cstdio>

#include "helpers.h"
#include "kiln/nn/model.h"
#include "kiln/train/optim.h"
#include "kiln/train/static_step.h"
#include "kiln/train/trainer.h"

using namespace kiln;
using kiln::test::expect_exact_resume;
using kiln::test::quiet_options;
using kiln::test::read_metrics;
using kiln::test::synthetic;
using kiln::test::TempDir;
using kiln::test::without_times;
using kiln::test::expect_close_runs;

namespace {

Config tiny(const std::string& preset) {
  Config c = kiln::test::shrunk_preset(preset, "64", "2.5");
  c.set("model.whiten_samples", "200");
  if (c.s("model.name") != "airbench") c.set("model.ghost_bn_splits", "2");
  return c;
}

// x one float ulp up, written so that Config reads it back exactly.
std::string one_ulp_up(double x) {
  const float f = std::nextafter(static_cast<float>(x), 2.0f * static_cast<float>(x) + 1.0f);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", static_cast<double>(f));
  return buf;
}

}  // namespace

TEST(StaticStep, MatchesTheEagerPathForEveryRecipe) {
  auto tt = synthetic(512, 200);
  for (auto preset : {"cifar10-myrtle-94", "cifar10-94", "cifar10-94-muon"}) {
    Config eager = tiny(preset), stat = eager;
    stat.set("train.static_step", "true");
    TempDir d;
    train(eager, tt, quiet_options(d / "eager"));
    train(stat, tt, quiet_options(d / "static"));
    // Two measures of the eager run's own noise: its sums in another order (the other thread
    // count), and its learning rates one float ulp up, the size of the difference between the
    // static step's fp32 LR table and the eager optimisers' double LR (and of fma against a
    // product then a subtraction). Muon's orthogonalised steps magnify either into visible
    // differences by the end of the tiny schedule; the bound is the larger of the two.
    const int threads = torch::get_num_threads();
    torch::set_num_threads(threads == 1 ? 2 : 1);
    train(eager, tt, quiet_options(d / "noise"));
    torch::set_num_threads(threads);
    Config ulp = eager;
    for (auto key : {"optim.lr", "optim.muon_lr"}) ulp.set(key, one_ulp_up(ulp.f(key)));
    train(ulp, tt, quiet_options(d / "ulp"));
    const std::vector<std::vector<nlohmann::json>> floors{read_metrics(d / "noise"), read_metrics(d / "ulp")};
    expect_close_runs(read_metrics(d / "eager"), read_metrics(d / "static"), floors, preset);
    auto a = load_checkpoint(d / "eager/checkpoint.pt", torch::kCPU), b = load_checkpoint(d / "static/checkpoint.pt", torch::kCPU),
         n = load_checkpoint(d / "noise/checkpoint.pt", torch::kCPU), u = load_checkpoint(d / "ulp/checkpoint.pt", torch::kCPU);
    auto pa = a.model->named_parameters(), pb = b.model->named_parameters(), pn = n.model->named_parameters(),
         pu = u.model->named_parameters();
    ASSERT_EQ(pa.size(), pb.size());
    for (size_t i = 0; i < pa.size(); ++i) {
      const auto& w = pa[i].value();
      const double diff = (w - pb[i].value()).abs().max().item<double>();
      const double floor = std::max((w - pn[i].value()).abs().max().item<double>(), (w - pu[i].value()).abs().max().item<double>());
      const double tol = std::max(1e-4 + 1e-3 * w.abs().max().item<double>(), 3 * floor);
      EXPECT_LE(diff, tol) << preset << " " << pa[i].key() << " (eager's own noise " << floor << ")";
    }
  }
}

TEST(StaticStep, ResumesExactly) {
  auto tt = synthetic(512, 100);
  for (auto preset : {"cifar10-94", "cifar10-94-muon"}) {
    Config c = tiny(preset);
    c.set("train.static_step", "true");
    TempDir d;
    expect_exact_resume(c, tt, d.path.string(), {11}, preset);
  }
}

TEST(StaticStep, CudaGraphOnTheCpuIsTheStaticStepUnderTheGraphsAddressContract) {
  // On the CPU train.cuda_graph runs the eager static step (same numbers) and checks, from the
  // fourth step on, that every tensor the step uses stays where a capture would have recorded
  // it: through Lookahead, the whitening bias freezing (a new capture), the proxy filter,
  // Muon, ghost BN, the epoch ends (evaluation, checkpoints, accumulators zeroed) and a resume.
  auto tt = synthetic(256, 100);
  for (auto preset : {"cifar10-94", "cifar10-94-muon", "cifar10-96-faster", "cifar10-myrtle-94"}) {
    Config a = tiny(preset);
    a.set("schedule.epochs", "5");  // 20 steps: a capture at step 4, a new one at 8 (the bias freezes), 12 checked
    if (std::string(preset) == "cifar10-96-faster") {
      a.set("filter.keep", "32");
      a.set("filter.widths", "[8, 8, 8]");
    }
    Config b = a;
    a.set("train.static_step", "true");
    b.set("train.cuda_graph", "true");
    TempDir d;
    train(a, tt, quiet_options(d / "a"));
    train(b, tt, quiet_options(d / "b"));
    EXPECT_EQ(without_times(read_metrics(d / "a")), without_times(read_metrics(d / "b"))) << preset;
    expect_exact_resume(b, tt, d.path.string(), {6}, preset, d / "b");
  }
}

TEST(StaticStep, FootprintNamesTheTensorThatMoved) {
  // The check the graph relies on: after a step, nothing moved; each kind of move is named.
  for (auto preset : {"cifar10-94", "cifar10-94-muon"}) {
    Config c = tiny(preset);
    torch::manual_seed(0);
    auto model = make_model(c, 3, 10);
    auto sgd = make_sgd(c, *model, 0.01);
    StaticStep ss(*model, sgd, StaticStepOptions{}, std::vector<double>(8, 0.01), {}, torch::kCPU);
    ss.reset_epoch(8);
    ss.load(torch::randn({16, 3, 16, 16}), torch::randint(10, {16}));
    ss.run();
    auto fp = ss.footprint();
    ss.load(torch::randn({16, 3, 16, 16}), torch::randint(10, {16}));
    ss.run();
    ss.reset_epoch(8);
    ss.set_position(1, 0);
    EXPECT_EQ(ss.moved_since(fp), "") << preset;

    auto named = model->named_parameters();
    // The last conv filter that trains (one of Muon's, in the muon recipe).
    std::string conv;
    for (auto& p : named)
      if (p.value().dim() == 4 && p.value().requires_grad()) conv = p.key();
    ASSERT_FALSE(conv.empty());
    auto w = named[conv];
    {
      torch::NoGradGuard ng;
      w.mutable_grad() = w.grad().clone();  // a new gradient tensor (not zero_())
    }
    EXPECT_EQ(ss.moved_since(fp), "the gradient of parameter '" + conv + "'") << preset;
    w.mutable_grad() = torch::Tensor();  // zero_grad(set_to_none)
    EXPECT_EQ(ss.moved_since(fp), "the gradient of parameter '" + conv + "' (set to none)") << preset;
    ss.run();  // backward makes a new one (it may land at the freed address: so be it, a graph would too)
    fp = ss.footprint();
    w.set_data(w.detach().clone());  // the weight re-pointed, as set_data / operator= would
    EXPECT_EQ(ss.moved_since(fp), "parameter '" + conv + "'") << preset;
    fp = ss.footprint();
    auto bufs = model->named_buffers();
    std::string bn;
    for (auto& b : bufs)
      if (b.key().find("running_mean") != std::string::npos) bn = b.key();
    ASSERT_FALSE(bn.empty());
    bufs[bn].set_data(bufs[bn].clone());
    EXPECT_EQ(ss.moved_since(fp), "buffer '" + bn + "'") << preset;
    fp = ss.footprint();
    // The host decisions a capture freezes.
    w.requires_grad_(false);
    EXPECT_EQ(ss.moved_since(fp), "whether parameter '" + conv + "' takes a gradient (requires_grad false now)") << preset;
    w.requires_grad_(true);
    model->eval();
    EXPECT_EQ(ss.moved_since(fp), "the train/eval mode of the model (eval now)") << preset;
    model->train();
    EXPECT_EQ(ss.moved_since(fp), "") << preset;
    ss.load(torch::randn({16, 3, 16, 16}), torch::randint(10, {16}));  // copies: stays
    ss.set_position(3, 2);
    ss.reset_epoch(8);
    EXPECT_EQ(ss.moved_since(fp), "") << preset;
  }
}

// In fp16 (the GPU's precision) the static step forms LR x update in fp32 and rounds once into
// the weight, as LibTorch's SGD does with its scalar LR: w = fp16(w - fp32(g x lr)). Rounding the
// LR and the product to fp16 first (the step before issue #19) loses low bits of small updates.
TEST(StaticStep, Fp16UpdateIsFormedInFp32AndRoundedOnce) {
  Config c = tiny("cifar10-94");
  c.set("optim.weight_decay", "0");
  torch::manual_seed(0);
  auto model = make_model(c, 3, 10);
  const auto x = torch::randn({16, 3, 16, 16});
  model->fit_to_data(x);  // the whitening, as the trainer fits it before the precision is set
  set_precision(*model, torch::kFloat16);
  auto sgd = make_sgd(c, *model, 0.001);
  StaticStepOptions o;
  o.momentum = 0;  // the buffer is then the gradient itself: the update is lr x g
  StaticStep ss(*model, sgd, o, std::vector<double>(4, 0.001), {}, torch::kCPU);
  ss.reset_epoch(4);
  ss.load(x.to(torch::kFloat16), torch::randint(10, {16}));
  std::vector<torch::Tensor> before;
  for (auto& p : model->parameters()) before.push_back(p.detach().clone());
  ss.run();
  auto& groups = sgd.optimizer->param_groups();
  int fp16_checked = 0;
  auto params = model->parameters();
  for (size_t g = 0; g < groups.size(); ++g) {
    const auto glr = torch::tensor({0.001}, torch::kFloat32) * sgd.lr_mult[g];
    for (auto& p : groups[g].params()) {
      if (!p.grad().defined()) continue;
      size_t i = 0;
      while (!params[i].is_same(p)) ++i;
      const auto want = (before[i].to(torch::kFloat32) - p.grad().to(torch::kFloat32) * glr).to(p.scalar_type());
      EXPECT_TRUE(torch::equal(p.detach(), want)) << "group " << g << " parameter " << i;
      EXPECT_TRUE(torch::isfinite(p.grad()).all().item<bool>()) << "group " << g << " parameter " << i;
      if (p.scalar_type() == torch::kFloat16) {
        ++fp16_checked;
        // What rounding the LR and the product to fp16 would have given: not the same weights.
        const auto lr16 = glr.to(torch::kFloat16);
        const auto old = before[i] - p.grad() * lr16;
        if (torch::equal(old, want)) continue;
        EXPECT_FALSE(torch::equal(p.detach(), old)) << "group " << g << " parameter " << i;
      }
    }
  }
  EXPECT_GT(fp16_checked, 0);
}
