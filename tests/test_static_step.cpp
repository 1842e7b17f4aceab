// The graph-safe static step (kiln/train/static_step.h) is the device-generic twin of the
// CUDA-graph path: here, on the CPU, its numbers must match the trainer's ordinary path
// (LibTorch's SGD; kiln's Muon) step for step, and it must resume exactly.
#include "helpers.h"
#include "kiln/train/trainer.h"

using namespace kiln;
using kiln::test::quiet_options;
using kiln::test::read_metrics;
using kiln::test::synthetic;
using kiln::test::TempDir;
using kiln::test::without_times;

namespace {

Config tiny(const std::string& preset) {
  Config c = Config::from_file(find_preset(preset));
  c.set("data.batch_size", "64");
  c.set("data.test_batch_size", "100");
  c.set("train.precision", "fp32");
  c.set("schedule.epochs", "2.5");
  c.set("model.whiten_samples", "200");
  if (c.s("model.name") == "airbench") {
    c.set("model.widths", "[8, 16, 16]");
    c.set("model.whiten_bias_epochs", "1");
  } else {
    c.set("model.widths", "[8, 16, 16, 32]");
    c.set("model.ghost_bn_splits", "2");
  }
  return c;
}

void expect_close_runs(const std::vector<nlohmann::json>& a, const std::vector<nlohmann::json>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i)
    for (auto k : {"train_loss", "test_loss", "train_acc", "test_acc", "lr"})
      EXPECT_NEAR(a[i][k].get<double>(), b[i][k].get<double>(), 2e-4 * std::max(1.0, std::abs(a[i][k].get<double>())))
          << what << " epoch " << i + 1 << " " << k;
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
    expect_close_runs(read_metrics(d / "eager"), read_metrics(d / "static"), preset);
    auto a = load_checkpoint(d / "eager/checkpoint.pt", torch::kCPU), b = load_checkpoint(d / "static/checkpoint.pt", torch::kCPU);
    auto pa = a.model->named_parameters(), pb = b.model->named_parameters();
    ASSERT_EQ(pa.size(), pb.size());
    for (size_t i = 0; i < pa.size(); ++i)
      EXPECT_TRUE(torch::allclose(pa[i].value(), pb[i].value(), 1e-3, 1e-4)) << preset << " " << pa[i].key();
  }
}

TEST(StaticStep, ResumesExactly) {
  auto tt = synthetic(512, 100);
  for (auto preset : {"cifar10-94", "cifar10-94-muon"}) {
    Config c = tiny(preset);
    c.set("train.static_step", "true");
    TempDir d;
    auto full = train(c, tt, quiet_options(d / "full"));
    auto o = quiet_options(d / "cut");
    o.stop_after_steps = 11;
    ASSERT_TRUE(train(c, tt, o).interrupted);
    auto rest = resume(tt, quiet_options(d / "cut"));
    EXPECT_EQ(without_times(read_metrics(d / "cut")), without_times(read_metrics(d / "full"))) << preset;
    EXPECT_EQ(rest.final_test_acc, full.final_test_acc) << preset;
  }
}

TEST(StaticStep, CudaGraphNeedsCudaSourcesOrIsIgnoredOnTheCpu) {
  // On the CPU train.cuda_graph falls back to the eager static step (same numbers).
  auto tt = synthetic(256, 100);
  Config a = tiny("cifar10-94"), b = a;
  a.set("train.static_step", "true");
  b.set("train.cuda_graph", "true");
  TempDir d;
  train(a, tt, quiet_options(d / "a"));
  train(b, tt, quiet_options(d / "b"));
  EXPECT_EQ(without_times(read_metrics(d / "a")), without_times(read_metrics(d / "b")));
}
