#include "kiln/nn/model.h"

#include "kiln/core/error.h"

namespace kiln {
namespace nn = torch::nn;

ConvBNImpl::ConvBNImpl(int64_t c_in, int64_t c_out, double bn_momentum, double bn_eps) {
  conv = register_module("conv", nn::Conv2d(nn::Conv2dOptions(c_in, c_out, 3).padding(1).bias(false)));
  bn = register_module("bn", nn::BatchNorm2d(nn::BatchNorm2dOptions(c_out).momentum(bn_momentum).eps(bn_eps)));
}

torch::Tensor ConvBNImpl::forward(torch::Tensor x) { return torch::relu(bn(conv(x))); }

ResidualImpl::ResidualImpl(int64_t c, double m, double e) {
  a = register_module("a", ConvBN(c, c, m, e));
  b = register_module("b", ConvBN(c, c, m, e));
}

torch::Tensor ResidualImpl::forward(torch::Tensor x) { return x + b(a(x)); }

ResNet9::ResNet9(int64_t in_ch, int64_t classes, std::vector<int64_t> w, double scale, double m, double e)
    : output_scale(scale) {
  if (w.size() != 4) throw Error("ResNet-9 needs 4 widths");
  prep = register_module("prep", ConvBN(in_ch, w[0], m, e));
  layer1 = register_module("layer1", ConvBN(w[0], w[1], m, e));
  res1 = register_module("res1", Residual(w[1], m, e));
  layer2 = register_module("layer2", ConvBN(w[1], w[2], m, e));
  layer3 = register_module("layer3", ConvBN(w[2], w[3], m, e));
  res3 = register_module("res3", Residual(w[3], m, e));
  fc = register_module("fc", nn::Linear(nn::LinearOptions(w[3], classes).bias(false)));
}

torch::Tensor ResNet9::forward(torch::Tensor x) {
  x = prep(x);
  x = res1(torch::max_pool2d(layer1(x), 2));
  x = torch::max_pool2d(layer2(x), 2);
  x = res3(torch::max_pool2d(layer3(x), 2));
  x = torch::amax(x, {2, 3});  // global max-pool
  return fc(x) * output_scale;
}

ClassifierPtr make_model(const Config& cfg, int64_t in_channels, int64_t num_classes) {
  const auto& name = cfg.s("model.name");
  if (name == "resnet9")
    return std::make_shared<ResNet9>(in_channels, num_classes, cfg.ints("model.widths"), cfg.f("model.output_scale"),
                                     cfg.f("model.bn_momentum"), cfg.f("model.bn_eps"));
  throw Error("model.name = '" + name + "' is not in the zoo (resnet9)");
}

void set_precision(nn::Module& model, torch::ScalarType dtype) {
  model.to(dtype);
  for (auto& m : model.modules(/*include_self=*/true))
    if (dynamic_cast<nn::BatchNorm2dImpl*>(m.get()) || dynamic_cast<nn::BatchNorm1dImpl*>(m.get()))
      m->to(torch::kFloat32);
}

void to_channels_last(nn::Module& model) {
  torch::NoGradGuard ng;
  for (auto& p : model.parameters())
    if (p.dim() == 4) p.set_data(p.data().contiguous(torch::MemoryFormat::ChannelsLast));
}

int64_t count_parameters(const nn::Module& model) {
  int64_t n = 0;
  for (auto& p : model.parameters()) n += p.numel();
  return n;
}

}  // namespace kiln
