// train.sync_check on the CPU (kiln/train/sync_audit.h): the operators that would make the host
// wait for a CUDA device are seen, and every training path kiln has is free of them.
#include "helpers.h"
#include "kiln/train/selftrain.h"
#include "kiln/train/sync_audit.h"
#include "kiln/train/trainer.h"

using namespace kiln;
using kiln::test::expect_error_containing;
using kiln::test::quiet_options;
using kiln::test::synthetic;
using kiln::test::TempDir;

TEST(SyncAudit, SeesTheOperatorsThatSynchroniseOnCuda) {
  auto x = torch::randn({64});
  SyncAudit a;
  a.start();
  EXPECT_TRUE(a.watching());
  auto y = (x * 2 + 1).relu().sum();  // device work only
  auto m = x.argmax();
  EXPECT_EQ(a.take(), "");
  (void)y.item<double>();
  EXPECT_EQ(a.take().rfind("aten::item (", 0), 0u);  // its _local_scalar_dense inside comes second
  EXPECT_EQ(a.take(), "") << "take() clears";
  (void)x.nonzero();
  EXPECT_EQ(a.take().rfind("aten::nonzero (", 0), 0u);
  (void)x.index({x > 0});  // boolean indexing: a nonzero inside
  EXPECT_EQ(a.take().rfind("aten::nonzero", 0), 0u);
  (void)x.masked_select(x > 0);
  EXPECT_EQ(a.take().rfind("aten::masked_select", 0), 0u);
  (void)std::get<0>(at::_unique2(x.round(), true, false, false));
  EXPECT_NE(a.take(), "");
  if (y.gt(0).item<bool>()) {  // a tensor as a condition
  }
  EXPECT_NE(a.take(), "");
  (void)torch::equal(x, x);
  EXPECT_EQ(a.take().rfind("aten::equal", 0), 0u);
  {
    SyncAudit::Allow allowed;  // this thread's reads are not watched while it lives
    (void)y.item<double>();
  }
  EXPECT_EQ(a.take(), "");
  (void)y.item<double>();  // the first one is kept
  (void)x.nonzero();
  EXPECT_EQ(a.take().rfind("aten::item", 0), 0u);
  (void)y.to(torch::kFloat64).data_ptr<double>()[0];  // a raw host read: nothing to see on the CPU (nor to wait for)
  EXPECT_EQ(a.take(), "");
  SyncAudit other;
  expect_error_containing([&] { other.start(); }, "already being watched");
  a.stop();
  (void)y.item<double>();
  EXPECT_EQ(a.take(), "");
  other.start();  // free again once the first stopped
  other.stop();
  EXPECT_EQ(SyncAudit::would_sync("aten::add"), nullptr);
  EXPECT_NE(SyncAudit::would_sync("aten::repeat_interleave"), nullptr);
}

namespace {

Config small(const std::string& preset) {
  Config c = kiln::test::shrunk_preset(preset, "32", "2");
  c.set("train.sync_check", "true");
  return c;
}

}  // namespace

TEST(SyncAudit, EveryTrainingPathIsFreeOfThemOnTheCpu) {
  // Under train.sync_check, each path kiln trains by runs to the end on the CPU: the ordinary
  // step (EMA, ghost BN, Lookahead, the whitening bias freezing, Muon, Adam, QAT), the static
  // step and the graph's CPU stand-in, the proxy filter and a self-training student. The same
  // runs with an item() slipped into the step stop there, naming it: the watch is on.
  auto tt = synthetic(256, 100);
  TempDir d;
  {
    Config t = small("cifar10-resnet9-baseline");
    t.set("train.sync_check", "false");
    train(t, tt, quiet_options(d / "teacher"));
  }
  struct Case {
    std::string name, preset;
    std::vector<std::pair<std::string, std::string>> set;
  };
  const std::vector<Case> cases = {
      {"resnet9 (ordinary step)", "cifar10-resnet9-baseline", {}},
      {"myrtle-94 (EMA, ghost BN)", "cifar10-myrtle-94", {{"model.ghost_bn_splits", "2"}}},
      {"airbench94 (Lookahead, bias freeze)", "cifar10-94", {}},
      {"airbench94 static step", "cifar10-94", {{"train.static_step", "true"}}},
      {"airbench94 graph stand-in", "cifar10-94", {{"train.cuda_graph", "true"}}},
      {"airbench94_muon", "cifar10-94-muon", {}},
      {"airbench94_muon static step", "cifar10-94-muon", {{"train.static_step", "true"}}},
      {"airbench96_faster (proxy filter)", "cifar10-96-faster", {{"filter.keep", "16"}, {"filter.widths", "[8, 8, 8]"}}},
      {"separable (Adam)", "cifar10-tiny", {}},
      {"resnet9 QAT", "cifar10-resnet9-baseline", {{"train.qat", "true"}}},
      {"self-training student", "cifar10-resnet9-baseline", {{"selftrain.teacher", d / "teacher/checkpoint.pt"}}},
  };
  for (const auto& k : cases) {
    Config c = small(k.preset);
    for (auto& [key, value] : k.set) c.set(key, value);
    if (!c.s("selftrain.teacher").empty()) {
      c = student_config(c, c.s("selftrain.teacher"));
      c.set("data.labeled", "64");
    }
    auto r = train(c, tt, quiet_options());
    EXPECT_EQ(r.epochs.size(), 2u) << k.name;
    auto o = quiet_options();
    o.in_step = [] { (void)torch::ones({1}).sum().item<double>(); };
    expect_error_containing([&] { train(c, tt, o); }, "training step 1 (epoch 1) calls aten::item");
  }
}
