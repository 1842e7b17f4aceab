// The ONNX graph kiln builds for each network kind (kiln/deploy/onnx_export.h), checked here
// without Python: a valid topological order, every parameter and buffer the network computes
// with present under its name, int8 as DequantizeLinear of kiln quantize's own int8 values, and
// (where kiln is built with ONNX) ONNX's C++ checker accepting it and refusing a broken graph.
// ONNX Runtime's results against LibTorch's: cli.export_onnx (tests/onnx_check.py).
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "helpers.h"
#include "kiln/deploy/onnx_export.h"
#include "kiln/deploy/quantize.h"

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
          ASSERT_TRUE(qi->is_int8);
          EXPECT_TRUE(torch::equal(torch::tensor(qi->i8, torch::kInt8).view(p.value().sizes()), q.q.cpu())) << p.key();
          EXPECT_TRUE(torch::equal(torch::tensor(si->f32), q.scale.to(torch::kFloat32).cpu())) << p.key();
        }
      }
      if (onnx::available()) EXPECT_NO_THROW(onnx::serialize_checked(m));
    }
  }
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
