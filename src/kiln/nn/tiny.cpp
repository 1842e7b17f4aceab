#include "kiln/nn/tiny.h"

#include <cmath>

#include "kiln/core/error.h"

namespace kiln {
namespace nn = torch::nn;

namespace {
double conv_flops(double cin_per_group, double cout, double k, double h, double w) { return 2 * cin_per_group * cout * k * k * h * w; }
int64_t out_size(int64_t n, int64_t stride) { return (n + 2 - 3) / stride + 1; }  // 3x3, padding 1
}  // namespace

SeparableBlockImpl::SeparableBlockImpl(int64_t c_in, int64_t c_out, int64_t stride, const BlockOptions& o) : opt(o) {
  depthwise = register_module("depthwise", nn::Conv2d(nn::Conv2dOptions(c_in, c_in, 3).stride(stride).padding(1).groups(c_in).bias(false)));
  bn1 = register_module("bn1", BatchNorm(c_in, o.bn));
  pointwise = register_module("pointwise", nn::Conv2d(nn::Conv2dOptions(c_in, c_out, 1).bias(false)));
  bn2 = register_module("bn2", BatchNorm(c_out, o.bn));
}

torch::Tensor SeparableBlockImpl::forward(torch::Tensor x) {
  x = activate(bn1(depthwise(x)), opt.activation, opt.celu_alpha);
  return activate(bn2(pointwise(x)), opt.activation, opt.celu_alpha);
}

SeparableNet::SeparableNet(int64_t in_ch, int64_t classes, const ModelOptions& m)
    : opt(m.block), dropout(m.dropout) {
  const auto& w = m.widths;
  const int64_t depth = m.depth;
  stem = register_module("stem", nn::Conv2d(nn::Conv2dOptions(in_ch, w[0], 3).padding(1).bias(false)));
  stem_bn = register_module("stem_bn", BatchNorm(w[0], opt.bn));
  int64_t c = w[0], k = 0;
  for (size_t s = 1; s < w.size(); ++s)
    for (int64_t d = 0; d < depth; ++d, ++k) {
      blocks.push_back(register_module("block" + std::to_string(k), SeparableBlock(c, w[s], d == 0 ? 2 : 1, opt)));
      c = w[s];
    }
  fc = register_module("fc", nn::Linear(c, classes));
}

torch::Tensor SeparableNet::forward(torch::Tensor x) {
  x = activate(stem_bn(stem(x)), opt.activation, opt.celu_alpha);
  for (auto& b : blocks) x = b->forward(x);
  x = x.mean({2, 3});
  return fc(head_dropout(x, dropout, is_training()));
}

double SeparableNet::forward_flops(int64_t H, int64_t W) const {
  double f = conv_flops(stem->options.in_channels(), stem->options.out_channels(), 3, H, W);
  for (auto& b : blocks) {
    const int64_t s = b->depthwise->options.stride()->at(0);
    H = out_size(H, s), W = out_size(W, s);
    const double c = b->depthwise->options.in_channels();
    f += conv_flops(1, c, 3, H, W);                                     // depthwise: one input channel per filter
    f += conv_flops(c, b->pointwise->options.out_channels(), 1, H, W);  // pointwise
  }
  return f + 2.0 * fc->options.in_features() * fc->options.out_features();
}

DenseNet::DenseNet(int64_t in_ch, int64_t classes, const ModelOptions& m)
    : opt(m.block), dropout(m.dropout), in_channels(in_ch) {
  const auto& w = m.widths;
  const int64_t L = m.depth, blocks = static_cast<int64_t>(w.size()) - 1;
  stem = register_module("stem", nn::Conv2d(nn::Conv2dOptions(in_ch, w[0], 3).padding(1).bias(false)));
  int64_t c = w[0];
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t k = w[static_cast<size_t>(b + 1)];
    layers.emplace_back();
    for (int64_t l = 0; l < L; ++l) {
      auto name = "block" + std::to_string(b) + "_layer" + std::to_string(l);
      layers.back().emplace_back(register_module(name + "_bn", BatchNorm(c, opt.bn)),
                                 register_module(name + "_conv", nn::Conv2d(nn::Conv2dOptions(c, k, 3).padding(1).bias(false))));
      c += k;
    }
    if (b + 1 < blocks) {
      auto name = "transition" + std::to_string(b);
      const int64_t half = std::max<int64_t>(1, c / 2);
      transitions.emplace_back(register_module(name + "_bn", BatchNorm(c, opt.bn)),
                               register_module(name + "_conv", nn::Conv2d(nn::Conv2dOptions(c, half, 1).bias(false))));
      c = half;
    }
  }
  final_bn = register_module("final_bn", BatchNorm(c, opt.bn));
  fc = register_module("fc", nn::Linear(c, classes));
}

torch::Tensor DenseNet::forward(torch::Tensor x) {
  auto act = [&](const torch::Tensor& t) { return activate(t, opt.activation, opt.celu_alpha); };
  x = stem(x);
  for (size_t b = 0; b < layers.size(); ++b) {
    for (auto& [bn, conv] : layers[b]) x = torch::cat({x, conv(act(bn(x)))}, 1);
    if (b < transitions.size()) x = torch::avg_pool2d(transitions[b].second(act(transitions[b].first(x))), 2);
  }
  x = act(final_bn(x)).mean({2, 3});
  return fc(head_dropout(x, dropout, is_training()));
}

double DenseNet::forward_flops(int64_t H, int64_t W) const {
  double f = conv_flops(stem->options.in_channels(), stem->options.out_channels(), 3, H, W);
  for (size_t b = 0; b < layers.size(); ++b) {
    for (auto& [bn, conv] : layers[b]) f += conv_flops(conv->options.in_channels(), conv->options.out_channels(), 3, H, W);
    if (b < transitions.size()) {
      auto& conv = transitions[b].second;
      f += conv_flops(conv->options.in_channels(), conv->options.out_channels(), 1, H, W);
      H /= 2, W /= 2;
    }
  }
  return f + 2.0 * fc->options.in_features() * fc->options.out_features();
}

void glorot_normal_init(nn::Module& model) {
  torch::NoGradGuard ng;
  for (auto& m : model.modules(/*include_self=*/true)) {
    torch::Tensor w, b;
    double fan_in = 0, fan_out = 0;
    if (auto* c = dynamic_cast<nn::Conv2dImpl*>(m.get())) {
      w = c->weight, b = c->bias;
      const double area = static_cast<double>(w.size(2) * w.size(3));
      fan_in = static_cast<double>(w.size(1)) * area;   // in_channels / groups
      fan_out = static_cast<double>(w.size(0)) * area / static_cast<double>(c->options.groups());
    } else if (auto* l = dynamic_cast<nn::LinearImpl*>(m.get())) {
      w = l->weight, b = l->bias;
      fan_in = static_cast<double>(w.size(1)), fan_out = static_cast<double>(w.size(0));
    } else {
      continue;
    }
    w.normal_(0.0, std::sqrt(2.0 / (fan_in + fan_out)));
    if (b.defined()) b.zero_();
  }
}

int64_t weight_bytes(const nn::Module& model) {
  int64_t n = 0;
  for (auto& p : model.parameters()) n += p.numel() * 4;
  for (auto& b : model.buffers())
    if (b.is_floating_point()) n += b.numel() * 4;
  return n;
}

}  // namespace kiln
