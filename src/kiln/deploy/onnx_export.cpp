#include "kiln/deploy/onnx_export.h"

#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "kiln/build_info.h"
#include "kiln/core/error.h"
#include "kiln/core/fs.h"
#include "kiln/deploy/quantize.h"
#include "kiln/nn/airbench.h"
#include "kiln/nn/tiny.h"

namespace kiln {
namespace {
namespace nn = torch::nn;
using onnx::Attribute;

std::vector<float> floats(const torch::Tensor& t) {
  auto f = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  return {f.data_ptr<float>(), f.data_ptr<float>() + f.numel()};
}

// Builds the graph node by node; each method returns the name of the value it produced.
class GraphBuilder {
 public:
  GraphBuilder(nn::Module& model, bool int8, const IntGrid& grid) : int8_(int8), grid_(grid), quantizable_(quantizable_set(model)) {
    for (auto& p : model.named_parameters()) names_[p.value().unsafeGetTensorImpl()] = p.key();
    for (auto& b : model.named_buffers()) names_[b.value().unsafeGetTensorImpl()] = b.key();
  }

  onnx::Model model;

  // A parameter or buffer of the network as an initializer under its LibTorch name; with int8,
  // a quantisable weight becomes INT8 + scale + zero point feeding DequantizeLinear.
  std::string tensor(const torch::Tensor& t) {
    auto it = names_.find(t.unsafeGetTensorImpl());
    if (it == names_.end()) throw Error("ONNX export: a tensor the network uses is neither one of its parameters nor buffers");
    const std::string& name = it->second;
    if (!added_.insert(name).second) return name;
    if (int8_ && quantizable_.count(t.unsafeGetTensorImpl())) {
      auto q = quantize_per_channel(t, grid_);
      auto qq = q.q.contiguous().cpu();
      model.initializers.push_back(onnx::Initializer::make_int8(name + ".int8", t.sizes().vec(),
                                                                {qq.data_ptr<int8_t>(), qq.data_ptr<int8_t>() + qq.numel()}));
      model.initializers.push_back(onnx::Initializer::make_float(name + ".scale", {t.size(0)}, floats(q.scale)));
      model.initializers.push_back(
          onnx::Initializer::make_int8(name + ".zero_point", {t.size(0)}, std::vector<int8_t>(static_cast<size_t>(t.size(0)), 0)));
      return node("DequantizeLinear", {name + ".int8", name + ".scale", name + ".zero_point"}, name, {Attribute::make_int("axis", 0)});
    }
    model.initializers.push_back(onnx::Initializer::make_float(name, t.sizes().vec(), floats(t)));
    return name;
  }

  std::string constant(const std::string& name, std::vector<float> values, std::vector<int64_t> dims) {
    model.initializers.push_back(onnx::Initializer::make_float(name, std::move(dims), std::move(values)));
    return name;
  }
  // A 1-D int64 constant (the indices and shapes Slice, Pad, Reshape and ReduceSum take as
  // inputs), added once under its name however many nodes read it.
  std::string ints(const std::string& name, std::vector<int64_t> values) {
    auto [it, added] = ints_.emplace(name, values);
    if (!added && it->second != values) throw Error("ONNX export: the constant '" + name + "' is defined twice");
    if (added) {
      const auto n = static_cast<int64_t>(values.size());
      model.initializers.push_back(onnx::Initializer::make_int64(name, {n}, std::move(values)));
    }
    return name;
  }

  std::string node(const std::string& op, std::vector<std::string> inputs, const std::string& output,
                   std::vector<Attribute> attributes = {}) {
    if (!outputs_.insert(output).second) throw Error("ONNX export: the value '" + output + "' is produced twice");
    model.nodes.push_back({op, output, std::move(inputs), {output}, std::move(attributes)});
    return output;
  }

  std::string conv(const std::string& x, const torch::Tensor& w, const torch::Tensor& b, std::vector<int64_t> stride,
                   std::vector<int64_t> pad, int64_t groups, const std::string& out) {
    std::vector<std::string> in{x, tensor(w)};
    if (b.defined()) in.push_back(tensor(b));
    return node("Conv", in, out,
                {Attribute::make_ints("kernel_shape", {w.size(2), w.size(3)}), Attribute::make_ints("strides", stride),
                 Attribute::make_ints("pads", {pad[0], pad[1], pad[0], pad[1]}), Attribute::make_int("group", groups)});
  }
  std::string conv(const std::string& x, nn::Conv2dImpl& c, const std::string& out) {
    const auto& o = c.options;
    const auto* pad = std::get_if<torch::ExpandingArray<2>>(&o.padding());
    if (!pad) throw Error("ONNX export: " + out + " uses 'same' or 'valid' padding, which the exporter does not write");
    if ((*o.dilation())[0] != 1 || (*o.dilation())[1] != 1) throw Error("ONNX export: " + out + " is dilated");
    return conv(x, c.weight, c.bias, {(*o.stride())[0], (*o.stride())[1]}, {(**pad)[0], (**pad)[1]}, o.groups(), out);
  }
  std::string batch_norm(const std::string& x, BatchNormImpl& bn, const std::string& out) {
    return node("BatchNormalization", {x, tensor(bn.weight), tensor(bn.bias), tensor(bn.running_mean), tensor(bn.running_var)},
                out, {Attribute::make_float("epsilon", static_cast<float>(bn.options.eps))});
  }
  std::string activation(const std::string& x, Activation a, double celu_alpha, const std::string& out) {
    switch (a) {
      case Activation::ReLU: return node("Relu", {x}, out);
      case Activation::CELU: return node("Celu", {x}, out, {Attribute::make_float("alpha", static_cast<float>(celu_alpha))});
      case Activation::ReLU6: return node("Clip", {x, scalar(0), scalar(6)}, out);
      case Activation::GELU: {  // exact GELU (torch::gelu's default): 0.5 x (1 + erf(x / sqrt 2))
        auto e = node("Erf", {node("Div", {x, scalar(1.4142135623730951)}, out + ".scaled")}, out + ".erf");
        auto h = node("Mul", {node("Add", {e, scalar(1)}, out + ".1p"), scalar(0.5)}, out + ".half");
        return node("Mul", {x, h}, out);
      }
    }
    throw Error("ONNX export: an activation it does not know");
  }
  std::string pool2(const std::string& op, const std::string& x, const std::string& out) {
    return node(op, {x}, out, {Attribute::make_ints("kernel_shape", {2, 2}), Attribute::make_ints("strides", {2, 2})});
  }
  // Global max / mean over H and W (opset 17: axes is an attribute).
  std::string reduce_hw(const std::string& op, const std::string& x, const std::string& out) {
    return node(op, {x}, out, {Attribute::make_ints("axes", {2, 3}), Attribute::make_int("keepdims", 0)});
  }
  std::string linear(const std::string& x, nn::LinearImpl& l, const std::string& out) {
    std::vector<std::string> in{x, tensor(l.weight)};
    if (l.bias.defined()) in.push_back(tensor(l.bias));
    return node("Gemm", in, out, {Attribute::make_int("transB", 1)});
  }
  // A float32 scalar constant (shared by value).
  std::string scalar(double v) {
    const float f = static_cast<float>(v);
    auto it = scalars_.find(f);
    if (it != scalars_.end()) return it->second;
    auto name = "const." + std::to_string(scalars_.size());
    scalars_[f] = constant(name, {f}, {});
    return name;
  }

 private:
  bool int8_;
  IntGrid grid_;
  std::map<const void*, std::string> names_;
  std::set<const void*> quantizable_;
  std::set<std::string> added_, outputs_;
  std::map<float, std::string> scalars_;
  std::map<std::string, std::vector<int64_t>> ints_;
};

// conv -> (pool ->) BN -> act (-> pool), as ConvBNImpl::forward.
std::string conv_bn(GraphBuilder& g, const std::string& x, ConvBNImpl& b, const std::string& name) {
  auto c = g.conv(x, *b.conv, name + ".conv");
  const auto& o = b.opt;
  if (b.pool && o.pool_before_bn)
    return g.activation(g.batch_norm(g.pool2("MaxPool", c, name + ".pool"), *b.bn, name + ".bn"), o.activation, o.celu_alpha, name + ".act");
  auto y = g.activation(g.batch_norm(c, *b.bn, name + ".bn"), o.activation, o.celu_alpha, name + ".act");
  return b.pool ? g.pool2("MaxPool", y, name + ".pool") : y;
}

std::string resnet9(GraphBuilder& g, std::string x, ResNet9& m, const std::string& out) {
  if (m.whiten) x = g.conv(x, m.whiten->weight, {}, {1, 1}, {m.whiten->padding, m.whiten->padding}, 1, "whiten");
  x = conv_bn(g, x, *m.prep, "prep");
  x = conv_bn(g, x, *m.layer1, "layer1");
  x = g.node("Add", {x, conv_bn(g, conv_bn(g, x, *m.res1->a, "res1.a"), *m.res1->b, "res1.b")}, "res1");
  x = conv_bn(g, x, *m.layer2, "layer2");
  x = conv_bn(g, x, *m.layer3, "layer3");
  x = g.node("Add", {x, conv_bn(g, conv_bn(g, x, *m.res3->a, "res3.a"), *m.res3->b, "res3.b")}, "res3");
  x = g.linear(g.reduce_hw("ReduceMax", x, "pool"), *m.fc, "fc");
  return g.node("Mul", {x, g.scalar(m.output_scale)}, out);
}

std::string airbench(GraphBuilder& g, std::string x, AirbenchNet& m, const std::string& out) {
  x = g.conv(x, m.whiten->weight, m.whiten_bias, {1, 1}, {0, 0}, 1, "whiten");
  x = g.activation(x, m.activation, m.celu_alpha, "whiten.act");  // as AirbenchNet::forward
  for (size_t k = 0; k < m.groups.size(); ++k) {
    auto& grp = *m.groups[k];
    const auto n = "group" + std::to_string(k + 1);
    auto act = [&](const std::string& t, const std::string& out) { return g.activation(t, grp.opt.activation, grp.opt.celu_alpha, out); };
    x = act(g.batch_norm(g.pool2("MaxPool", g.conv(x, *grp.conv[0], n + ".conv1"), n + ".pool"), *grp.bn[0], n + ".bn1"), n + ".act1");
    auto y = act(g.batch_norm(g.conv(x, *grp.conv[1], n + ".conv2"), *grp.bn[1], n + ".bn2"), n + ".act2");
    if (grp.conv.size() == 3) {
      auto z = g.batch_norm(g.conv(y, *grp.conv[2], n + ".conv3"), *grp.bn[2], n + ".bn3");
      y = act(g.node("Add", {z, x}, n + ".add"), n + ".act3");
    }
    x = y;
  }
  x = g.linear(g.reduce_hw("ReduceMax", x, "pool"), *m.fc, "fc");
  if (m.head_norm) return g.node("Div", {x, g.scalar(static_cast<double>(m.widths.back()))}, out);
  return g.node("Mul", {x, g.scalar(m.output_scale)}, out);
}

std::string separable(GraphBuilder& g, std::string x, SeparableNet& m, const std::string& out) {
  const auto& o = m.opt;
  x = g.activation(g.batch_norm(g.conv(x, *m.stem, "stem"), *m.stem_bn, "stem_bn"), o.activation, o.celu_alpha, "stem.act");
  for (size_t k = 0; k < m.blocks.size(); ++k) {
    auto& b = *m.blocks[k];
    const auto n = "block" + std::to_string(k);
    x = g.activation(g.batch_norm(g.conv(x, *b.depthwise, n + ".depthwise"), *b.bn1, n + ".bn1"), o.activation, o.celu_alpha, n + ".act1");
    x = g.activation(g.batch_norm(g.conv(x, *b.pointwise, n + ".pointwise"), *b.bn2, n + ".bn2"), o.activation, o.celu_alpha, n + ".act2");
  }
  return g.linear(g.reduce_hw("ReduceMean", x, "pool"), *m.fc, out);
}

std::string dense(GraphBuilder& g, std::string x, DenseNet& m, const std::string& out) {
  const auto& o = m.opt;
  auto act = [&](const std::string& t, const std::string& out) { return g.activation(t, o.activation, o.celu_alpha, out); };
  x = g.conv(x, *m.stem, "stem");
  for (size_t b = 0; b < m.layers.size(); ++b) {
    for (size_t l = 0; l < m.layers[b].size(); ++l) {
      auto& [bn, conv] = m.layers[b][l];
      const auto n = "block" + std::to_string(b) + "_layer" + std::to_string(l);
      x = g.node("Concat", {x, g.conv(act(g.batch_norm(x, *bn, n + ".bn"), n + ".act"), *conv, n + ".conv")}, n,
                 {Attribute::make_int("axis", 1)});
    }
    if (b < m.transitions.size()) {
      auto& [bn, conv] = m.transitions[b];
      const auto n = "transition" + std::to_string(b);
      x = g.pool2("AveragePool", g.conv(act(g.batch_norm(x, *bn, n + ".bn"), n + ".act"), *conv, n + ".conv"), n);
    }
  }
  return g.linear(g.reduce_hw("ReduceMean", act(g.batch_norm(x, *m.final_bn, "final_bn"), "final.act"), "pool"), *m.fc, out);
}

// Test-time augmentation in the graph: the views kiln's evaluation runs the network on
// (kiln/nn/layers.cpp predict_with_tta), made from the normalised image `x`, in its order, and
// each view's weight in the weighted sum of their logits that equals predict_with_tta's
// arithmetic: flip = 0.5 x + 0.5 mirror; flip+translate = (1 - w) / 2 for the image and its
// mirror, w / 4 for each of the image shifted one pixel up-left and one down-right (reflect
// padding) and their mirrors.
struct TtaViews {
  std::vector<std::string> views;
  std::vector<float> weights;
};

TtaViews tta_view_nodes(GraphBuilder& g, const std::string& x, const ExportTta& tta, int64_t H, int64_t W) {
  // The mirror image: W reversed, a Slice from the last column (-1) backwards past the first
  // (INT64_MIN: ONNX's "to the beginning" for a negative step).
  auto mirror = [&](const std::string& v, const std::string& out) {
    return g.node("Slice", {v, g.ints("tta.mirror.starts", {-1}), g.ints("tta.mirror.ends", {std::numeric_limits<int64_t>::min()}),
                            g.ints("tta.axis_w", {3}), g.ints("tta.mirror.steps", {-1})}, out);
  };
  if (tta.mode == "flip") return {{x, mirror(x, "tta.mirror")}, {0.5f, 0.5f}};
  if (tta.mode != "flip+translate") throw Error("ONNX export: test-time augmentation '" + tta.mode + "' has no ONNX writer");
  // One pixel of reflection on every side of H and W, as F::pad(x, {1, 1, 1, 1}, kReflect).
  auto padded = g.node("Pad", {x, g.ints("tta.pads", {0, 0, 1, 1, 0, 0, 1, 1})}, "tta.padded", {Attribute::make_string("mode", "reflect")});
  auto up_left = g.node("Slice", {padded, g.ints("tta.up_left.starts", {0, 0}), g.ints("tta.up_left.ends", {H, W}), g.ints("tta.axes_hw", {2, 3})},
                        "tta.up_left");
  auto down_right = g.node("Slice", {padded, g.ints("tta.down_right.starts", {2, 2}), g.ints("tta.down_right.ends", {H + 2, W + 2}),
                                     g.ints("tta.axes_hw", {2, 3})}, "tta.down_right");
  const float a = static_cast<float>((1 - tta.translate_weight) * 0.5), b = static_cast<float>(tta.translate_weight * 0.25);
  return {{x, mirror(x, "tta.mirror"), up_left, mirror(up_left, "tta.up_left.mirror"), down_right, mirror(down_right, "tta.down_right.mirror")},
          {a, a, b, b, b, b}};
}

int64_t output_features(Classifier& model) {
  int64_t n = -1;
  for (auto& m : model.modules(/*include_self=*/false))
    if (auto* l = dynamic_cast<nn::LinearImpl*>(m.get())) n = l->options.out_features();
  return n;
}

}  // namespace

onnx::Model onnx_model(const LoadedCheckpoint& ck, const ExportInfo& info, bool int8) {
  torch::NoGradGuard ng;
  auto& net = *ck.model;
  const auto opts = ModelOptions::from_config(ck.cfg);
  if (info.input_shape.size() != 3) throw Error("ONNX export: the input shape must be [C, H, W]");
  const int64_t C = info.input_shape[0], K = static_cast<int64_t>(info.classes.size());
  if (output_features(net) != K)
    throw Error("ONNX export: the network has " + std::to_string(output_features(net)) + " outputs but the data " +
                std::to_string(K) + " classes");
  const auto tta = export_tta(ck, info);
  GraphBuilder g(net, int8, info.grid);
  g.model.graph_name = "kiln_" + opts.name;
  g.model.producer_version = KILN_VERSION;
  g.model.doc = "kiln " + opts.name + (int8 ? " (int8 weights)" : "") +
                ": float32 pixels N x C x H x W in 0..255 in, logits out; normalisation in the graph, test-time augmentation " + tta.mode;
  g.model.input = {"pixels", {-1, info.input_shape[0], info.input_shape[1], info.input_shape[2]}};
  g.model.output = {"logits", {-1, K}};
  // The normalisation DeviceLoader applies: (x - mean) / std in float32, or x / 255 without stats.
  std::string x = "pixels";
  if (!ck.mean.empty()) {
    if (static_cast<int64_t>(ck.mean.size()) != C || static_cast<int64_t>(ck.std.size()) != C)
      throw Error("ONNX export: the checkpoint's normalisation has " + std::to_string(ck.mean.size()) + " channels, the input " + std::to_string(C));
    std::vector<float> mean(ck.mean.begin(), ck.mean.end()), stdev(ck.std.begin(), ck.std.end());
    x = g.node("Sub", {x, g.constant("normalise.mean", mean, {1, C, 1, 1})}, "normalise.centred");
    x = g.node("Div", {x, g.constant("normalise.std", stdev, {1, C, 1, 1})}, "normalised");
  } else {
    x = g.node("Div", {x, g.scalar(255.0)}, "normalised");
  }
  // With test-time augmentation the views go through the network as one batch (view-major:
  // V x N images), and their logits, V x N x K, are summed with the views' weights.
  TtaViews views;
  if (tta.mode != "none") {
    views = tta_view_nodes(g, x, tta, info.input_shape[1], info.input_shape[2]);
    x = g.node("Concat", views.views, "tta.views", {Attribute::make_int("axis", 0)});
  }
  const std::string logits = tta.mode == "none" ? "logits" : "tta.view_logits";
  std::string out;
  if (auto* r = dynamic_cast<ResNet9*>(&net)) out = resnet9(g, x, *r, logits);
  else if (auto* a = dynamic_cast<AirbenchNet*>(&net)) out = airbench(g, x, *a, logits);
  else if (auto* s = dynamic_cast<SeparableNet*>(&net)) out = separable(g, x, *s, logits);
  else if (auto* d = dynamic_cast<DenseNet*>(&net)) out = dense(g, x, *d, logits);
  else throw Error("ONNX export: model.name = '" + opts.name + "' has no ONNX writer");
  if (tta.mode != "none") {
    const auto V = static_cast<int64_t>(views.views.size());
    auto per_view = g.node("Reshape", {out, g.ints("tta.view_shape", {V, -1, K})}, "tta.per_view");
    auto weighted = g.node("Mul", {per_view, g.constant("tta.weights", views.weights, {V, 1, 1})}, "tta.weighted");
    out = g.node("ReduceSum", {weighted, g.ints("tta.axis_views", {0})}, "logits", {Attribute::make_int("keepdims", 0)});
  }
  if (out != "logits") throw Error("ONNX export: the graph's last value is '" + out + "', not 'logits'");

  nlohmann::json mean(ck.mean), stdev(ck.std);
  g.model.metadata = {{"kiln_version", KILN_VERSION},
                      {"model", opts.name},
                      {"classes", nlohmann::json(info.classes).dump()},
                      {"input_shape", nlohmann::json(info.input_shape).dump()},
                      {"input", "pixels: float32 N x C x H x W, 0..255 (raw pixel values, planar RGB or grey)"},
                      {"normalisation", "in graph"},
                      {"mean", mean.dump()},
                      {"std", stdev.dump()},
                      {"tta", tta.mode},
                      {"tta_views", std::to_string(tta_view_count(tta.mode))},
                      {"int8", int8 ? "true" : "false"},
                      {"config", ck.cfg.to_toml()}};
  const auto fit = export_image_fit(ck, info);
  for (auto& kv : std::vector<std::pair<std::string, std::string>>{{"stored_shape", nlohmann::json(fit.stored).dump()},
                                                                  {"resize", fit.resize},
                                                                  {"background", std::to_string(fit.background)},
                                                                  {"eval_crop", nlohmann::json(fit.eval_crop).dump()}})
    g.model.metadata.push_back(kv);
  if (tta.mode == "flip+translate") g.model.metadata.emplace_back("tta_translate_weight", nlohmann::json(tta.translate_weight).dump());
  if (int8) g.model.metadata.emplace_back("int8_grid", info.grid.name());
  return std::move(g.model);
}

int64_t export_onnx(const LoadedCheckpoint& ck, const ExportInfo& info, const std::string& path, bool int8) {
  auto model = onnx_model(ck, info, int8);
  std::string bytes;
  try {
    bytes = onnx::serialize_checked(model);
  } catch (const std::runtime_error& e) {
    throw Error("ONNX export of " + path + ": " + e.what());
  }
  atomic_write(path, bytes);
  return static_cast<int64_t>(bytes.size());
}

}  // namespace kiln
