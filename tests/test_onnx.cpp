// The ONNX graph kiln builds for each network kind (kiln/deploy/onnx_export.h), checked here
// without Python: a valid topological order, every parameter and buffer the network computes
// with present under its name, int8 as DequantizeLinear of kiln quantize's own int8 values, and
// (where kiln is built with ONNX) ONNX's C++ checker accepting it and refusing a broken graph;
// the test-time augmentation as the views and weights of kiln's evaluation.
// ONNX Runtime's results against LibTorch's: cli.export_onnx (tests/onnx_check.py).
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "helpers.h"
#include "kiln/deploy/onnx_export.h"
#include "kiln/deploy/quantize.h"
#include "kiln/nn/layers.h"

namespace kiln {
namespace {

LoadedCheckpoint checkpoint_of(Config cfg, int64_t channels, int64_t size) {
  LoadedCheckpoint ck;
  ck.cfg = cfg;
  ck.model = make_model(cfg, channels, 10);
  torch::manual_seed(0);
  ck.model->fit_to_data(torch::randn({64, channels, size, size}));
  ck.model->eval();
  ck.mean.assign(static_cast<size_t>(channels), 120.0);
  ck.std.assign(static_cast<size_t>(channels), 60.0);
  return ck;
}

struct Case {
  std::string name;
  Config cfg;
  int64_t channels, size;
};

std::vector<Case> every_kind() {
  Config dense;
  dense.set("model.name", "dense");
  dense.set("model.widths", "[8, 6, 6]");
  dense.set("model.depth", "2");
  dense.set("model.activation", "gelu");
  Config myrtle = Config::from_file(find_preset("cifar10-myrtle-94"));
  myrtle.set("model.widths", "[8, 16, 16, 32]");
  return {{"separable", test::separable_config(), 1, 28}, {"dense", dense, 1, 28},
          {"myrtle resnet9", myrtle, 3, 32},             {"airbench94", test::tiny_airbench("cifar10-94"), 3, 32},
          {"airbench96", test::tiny_airbench("cifar10-96"), 3, 32},
          {"airbench94_muon", test::tiny_airbench("cifar10-94-muon"), 3, 32}};
}

TEST(Onnx, EveryNetworkKindIsAWellFormedGraphOfItsOwnTensors) {
  for (auto& c : every_kind()) {
    SCOPED_TRACE(c.name);
    auto ck = checkpoint_of(c.cfg, c.channels, c.size);
    ExportInfo info{{c.channels, c.size, c.size}, std::vector<std::string>(10, "class")};
    for (bool int8 : {false, true}) {
      SCOPED_TRACE(int8 ? "int8" : "fp32");
      auto m = onnx_model(ck, info, int8);
      std::map<std::string, const onnx::Initializer*> inits;
      for (auto& i : m.initializers) EXPECT_TRUE(inits.emplace(i.name, &i).second) << "initializer twice: " << i.name;
      // Topological order: every input exists before the node that reads it.
      std::set<std::string> known{"pixels"};
      for (auto& [n, i] : inits) known.insert(n);
      int dequantised = 0;
      for (auto& node : m.nodes) {
        for (auto& in : node.inputs) EXPECT_TRUE(known.count(in)) << node.op_type << " " << node.name << " reads '" << in << "' before it exists";
        for (auto& out : node.outputs) EXPECT_TRUE(known.insert(out).second) << "value produced twice: " << out;
        if (node.op_type == "DequantizeLinear") ++dequantised;
      }
      ASSERT_FALSE(m.nodes.empty());
      EXPECT_EQ(m.nodes.back().outputs, std::vector<std::string>{"logits"});
      // Every tensor the network holds (the eigenvalues aside, which forward never reads) is there by name.
      for (auto& p : ck.model->named_parameters()) EXPECT_TRUE(known.count(p.key())) << p.key();
      for (auto& b : ck.model->named_buffers())
        if (b.value().is_floating_point() && b.key().find("eigenvalues") == std::string::npos) EXPECT_TRUE(known.count(b.key())) << b.key();
      // int8: exactly kiln quantize's weights, with its own int8 values and scales.
      auto weights = quantizable_weights(*ck.model);
      EXPECT_EQ(dequantised, int8 ? static_cast<int>(weights.size()) : 0);
      if (int8) {
        for (auto& p : ck.model->named_parameters()) {
          if (!inits.count(p.key() + ".int8")) continue;
          auto q = quantize_per_channel(p.value());
          auto* qi = inits.at(p.key() + ".int8");
          auto* si = inits.at(p.key() + ".scale");
          ASSERT_EQ(qi->type, onnx::Initializer::Type::Int8);
          EXPECT_TRUE(torch::equal(torch::tensor(qi->i8, torch::kInt8).view(p.value().sizes()), q.q.cpu())) << p.key();
          EXPECT_TRUE(torch::equal(torch::tensor(si->f32), q.scale.to(torch::kFloat32).cpu())) << p.key();
        }
      }
      if (onnx::available()) EXPECT_NO_THROW(onnx::serialize_checked(m));
    }
  }
}

const onnx::Node* producer(const onnx::Model& m, const std::string& value) {
  for (auto& n : m.nodes)
    if (n.outputs == std::vector<std::string>{value}) return &n;
  return nullptr;
}
const onnx::Initializer* initializer(const onnx::Model& m, const std::string& name) {
  for (auto& i : m.initializers)
    if (i.name == name) return &i;
  return nullptr;
}
std::string metadata(const onnx::Model& m, const std::string& key) {
  for (auto& [k, v] : m.metadata)
    if (k == key) return v;
  return "(absent)";
}

// The graph's TTA is kiln::predict_with_tta's: its views of the normalised image, in its order,
// batched through the network, and the weights that make the weighted sum of their logits its
// arithmetic (flip: a half each; flip+translate: (1 - w) / 2 for the image and its mirror, w / 4
// for each reflect-shifted view and its mirror). ONNX Runtime's logits against predict_with_tta:
// cli.export_onnx.
TEST(Onnx, TestTimeAugmentationIsKilnsViewsAndWeights) {
  auto cfg = test::tiny_airbench("cifar10-94");
  cfg.set("eval.tta", "flip+translate");
  cfg.set("eval.tta_translate_weight", "0.3");  // not the default, so the weight must travel
  auto ck = checkpoint_of(cfg, 3, 32);
  for (std::string mode : {"", "flip", "none"}) {
    SCOPED_TRACE("--tta '" + mode + "'");
    ExportInfo info{{3, 32, 32}, std::vector<std::string>(10, "class")};
    info.tta = mode;
    const std::string applied = mode.empty() ? "flip+translate" : mode;  // empty: the run's eval.tta
    auto m = onnx_model(ck, info, false);
    EXPECT_EQ(metadata(m, "tta"), applied);
    EXPECT_EQ(metadata(m, "tta_views"), std::to_string(tta_view_count(applied)));
    EXPECT_EQ(metadata(m, "tta_translate_weight"), applied == "flip+translate" ? "0.3" : "(absent)");
    if (onnx::available()) EXPECT_NO_THROW(onnx::serialize_checked(m));
    const auto* views = producer(m, "tta.views");
    const auto* last = producer(m, "logits");
    ASSERT_NE(last, nullptr);
    if (applied == "none") {
      EXPECT_EQ(views, nullptr);
      EXPECT_EQ(last->op_type, "Mul");  // the network's output scale, straight out
      continue;
    }
    ASSERT_NE(views, nullptr);
    EXPECT_EQ(views->op_type, "Concat");
    const std::vector<std::string> expected =
        applied == "flip" ? std::vector<std::string>{"normalised", "tta.mirror"}
                          : std::vector<std::string>{"normalised", "tta.mirror", "tta.up_left", "tta.up_left.mirror", "tta.down_right", "tta.down_right.mirror"};
    EXPECT_EQ(views->inputs, expected);
    const auto* w = initializer(m, "tta.weights");
    ASSERT_NE(w, nullptr);
    const std::vector<float> weights = applied == "flip" ? std::vector<float>{0.5f, 0.5f}
                                                         : std::vector<float>{0.35f, 0.35f, 0.075f, 0.075f, 0.075f, 0.075f};
    ASSERT_EQ(w->f32.size(), weights.size());
    for (size_t i = 0; i < weights.size(); ++i) EXPECT_FLOAT_EQ(w->f32[i], weights[i]) << "view " << i;
    EXPECT_EQ(last->op_type, "ReduceSum");
    // The mirror reverses W; the shifts read a one-pixel reflect padding at offsets 0 and 2.
    const auto* mirror = producer(m, "tta.mirror");
    ASSERT_NE(mirror, nullptr);
    EXPECT_EQ(mirror->op_type, "Slice");
    EXPECT_EQ(initializer(m, mirror->inputs[3])->i64, std::vector<int64_t>{3});
    EXPECT_EQ(initializer(m, mirror->inputs[4])->i64, std::vector<int64_t>{-1});
    if (applied == "flip+translate") {
      const auto* pad = producer(m, "tta.padded");
      ASSERT_NE(pad, nullptr);
      EXPECT_EQ(pad->attributes.at(0).s, "reflect");
      EXPECT_EQ(initializer(m, pad->inputs[1])->i64, (std::vector<int64_t>{0, 0, 1, 1, 0, 0, 1, 1}));
      EXPECT_EQ(initializer(m, producer(m, "tta.up_left")->inputs[1])->i64, (std::vector<int64_t>{0, 0}));
      EXPECT_EQ(initializer(m, producer(m, "tta.down_right")->inputs[1])->i64, (std::vector<int64_t>{2, 2}));
      EXPECT_EQ(initializer(m, producer(m, "tta.down_right")->inputs[2])->i64, (std::vector<int64_t>{34, 34}));
    }
  }
  ExportInfo bad{{3, 32, 32}, std::vector<std::string>(10, "class")};
  bad.tta = "flop";
  test::expect_error_containing([&] { onnx_model(ck, bad, false); }, "test-time augmentation 'flop' is not one of none | flip | flip+translate");
}

TEST(Onnx, TheCheckerRefusesABrokenGraph) {
  if (!onnx::available()) GTEST_SKIP() << "this kiln is built without ONNX";
  auto c = every_kind()[0];
  auto ck = checkpoint_of(c.cfg, c.channels, c.size);
  auto m = onnx_model(ck, ExportInfo{{1, 28, 28}, std::vector<std::string>(10, "class")}, false);
  m.nodes[3].inputs[0] = "nowhere";
  test::expect_error_containing([&] { onnx::serialize_checked(m); }, "nowhere");
  // And the exporter names the network's mismatch with the data before building anything.
  test::expect_error_containing([&] { onnx_model(ck, ExportInfo{{1, 28, 28}, std::vector<std::string>(7, "c")}, false); },
                                "10 outputs but the data 7 classes");
}

}  // namespace
}  // namespace kiln
