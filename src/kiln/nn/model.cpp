#include "kiln/nn/model.h"

#include "kiln/core/error.h"
#include "kiln/nn/airbench.h"
#include "kiln/nn/fused_cpu.h"
#include "kiln/nn/tiny.h"

namespace kiln {
namespace nn = torch::nn;

ModelOptions ModelOptions::from_config(const Config& cfg) {
  ModelOptions m;
  m.name = cfg.s("model.name");
  m.widths = cfg.ints("model.widths");
  m.depth = cfg.i("model.depth");
  m.convs_per_group = cfg.i("model.convs_per_group");
  auto& o = m.block;
  o.activation = parse_activation(cfg.s("model.activation"));
  o.celu_alpha = cfg.f("model.celu_alpha");
  o.pool_before_bn = cfg.b("model.pool_before_bn");
  o.bn.momentum = cfg.f("model.bn_momentum");
  o.bn.eps = cfg.f("model.bn_eps");
  o.bn.ghost_splits = cfg.i("model.ghost_bn_splits");
  o.bn.freeze_weight = cfg.b("model.bn_weight_freeze");
  o.bn.weight_init = cfg.f("model.bn_weight_init");
  m.output_scale = cfg.f("model.output_scale");
  m.dropout = cfg.f("model.dropout");
  m.stochastic_depth = cfg.f("model.stochastic_depth");
  m.whiten = cfg.s("model.whiten");
  m.whiten_eps = cfg.f("model.whiten_eps");
  m.whiten_samples = cfg.i("model.whiten_samples");
  m.whiten_trained = cfg.b("model.whiten_trained");
  m.head_norm = cfg.b("model.head_norm");
  m.whiten_bias_epochs = cfg.i("model.whiten_bias_epochs");
  m.whiten_bias_uniform = cfg.s("model.whiten_bias_init") == "uniform";
  m.dirac = cfg.s("model.conv_init") == "dirac";
  m.glorot_normal = cfg.s("model.init") == "glorot_normal";
  return m;
}

BlockOptions block_options(const Config& cfg) { return ModelOptions::from_config(cfg).block; }

ConvBNImpl::ConvBNImpl(int64_t c_in, int64_t c_out, bool pool_, const BlockOptions& o, int64_t k)
    : pool(pool_), opt(o) {
  conv = register_module("conv", nn::Conv2d(nn::Conv2dOptions(c_in, c_out, k).padding(k / 2).bias(false)));
  bn = register_module("bn", BatchNorm(c_out, o.bn));
}

torch::Tensor ConvBNImpl::forward(torch::Tensor x) {
  x = conv(x);
  if (pool && opt.pool_before_bn) return pool_bn_act(x, *bn, opt.activation, opt.celu_alpha, true);
  x = pool_bn_act(x, *bn, opt.activation, opt.celu_alpha, false);
  return pool ? torch::max_pool2d(x, 2) : x;
}

ResidualImpl::ResidualImpl(int64_t c, const BlockOptions& o, double sd) : drop_path(sd) {
  a = register_module("a", ConvBN(c, c, false, o));
  b = register_module("b", ConvBN(c, c, false, o));
}

torch::Tensor ResidualImpl::forward(torch::Tensor x) { return x + drop_branch(b(a(x)), drop_path, is_training()); }

torch::Tensor drop_branch(const torch::Tensor& branch, double p, bool training) {
  if (!drops_branch(p, training)) return branch;
  auto keep = torch::empty({branch.size(0), 1, 1, 1}, branch.options()).bernoulli_(1.0 - p);
  return branch * keep / (1.0 - p);
}

torch::Tensor head_dropout(const torch::Tensor& x, double p, bool training) {
  if (!training || p <= 0) return x;
  return torch::dropout(x, p, true);
}

ResNet9::ResNet9(int64_t in_ch, int64_t classes, const ModelOptions& m)
    : output_scale(m.output_scale), dropout(m.dropout) {
  const double sd = m.stochastic_depth;
  const auto& w = m.widths;
  if (w.size() != 4) throw Error("ResNet-9 needs 4 widths");
  const auto& o = m.block;
  const auto& wh = m.whiten;
  if (wh == "none") {
    prep = register_module("prep", ConvBN(in_ch, w[0], false, o));
  } else {
    bool two = wh == "2x2";
    whiten = register_module("whiten", PatchWhitening(in_ch, two ? 2 : 3, m.whiten_eps, two, two ? 0 : 1));
    prep = register_module("prep", ConvBN(whiten->out_channels(), w[0], false, o, 1));
  }
  layer1 = register_module("layer1", ConvBN(w[0], w[1], true, o));
  res1 = register_module("res1", Residual(w[1], o, sd));
  layer2 = register_module("layer2", ConvBN(w[1], w[2], true, o));
  layer3 = register_module("layer3", ConvBN(w[2], w[3], true, o));
  res3 = register_module("res3", Residual(w[3], o, sd));
  fc = register_module("fc", nn::Linear(nn::LinearOptions(w[3], classes).bias(false)));
}

void ResNet9::fit_to_data(const torch::Tensor& x) {
  if (whiten) whiten->fit(x);
}

torch::Tensor ResNet9::forward(torch::Tensor x) {
  if (whiten) x = whiten(x);
  x = prep(x);
  x = res1(layer1(x));
  x = layer2(x);
  x = res3(layer3(x));
  x = torch::amax(x, {2, 3});  // global max-pool
  return fc(head_dropout(x, dropout, is_training())) * output_scale;
}

double ResNet9::forward_flops(int64_t H, int64_t W) const {
  auto conv = [](double cin, double cout, double k, double h, double w) { return 2 * cin * cout * k * k * h * w; };
  const double w0 = prep->conv->options.out_channels(), w1 = layer1->conv->options.out_channels(),
               w2 = layer2->conv->options.out_channels(), w3 = layer3->conv->options.out_channels();
  double f = 0;
  if (whiten) {
    const double k = static_cast<double>(whiten->kernel), oh = H + 2 * whiten->padding - k + 1, ow = W + 2 * whiten->padding - k + 1;
    f += conv(whiten->in_channels, whiten->out_channels(), k, oh, ow);
    f += conv(whiten->out_channels(), w0, 1, oh, ow);
    H = static_cast<int64_t>(oh), W = static_cast<int64_t>(ow);
  } else {
    f += conv(prep->conv->options.in_channels(), w0, 3, H, W);
  }
  f += conv(w0, w1, 3, H, W);
  H /= 2, W /= 2;
  f += 2 * conv(w1, w1, 3, H, W);
  f += conv(w1, w2, 3, H, W);
  H /= 2, W /= 2;
  f += conv(w2, w3, 3, H, W);
  H /= 2, W /= 2;
  f += 2 * conv(w3, w3, 3, H, W);
  return f + 2 * w3 * fc->options.out_features();
}

ClassifierPtr make_model(const Config& cfg, int64_t in_channels, int64_t num_classes) {
  return make_model(ModelOptions::from_config(cfg), in_channels, num_classes);
}

ClassifierPtr make_model(const ModelOptions& o, int64_t in_channels, int64_t num_classes) {
  const auto& name = o.name;
  if (o.whiten_trained && name != "airbench")
    throw Error("model.whiten_trained = true takes the whitening out of model.name = \"airbench\"; for '" + name +
                "', model.whiten = \"none\" is the network without it");
  ClassifierPtr m;
  if (name == "resnet9") m = std::make_shared<ResNet9>(in_channels, num_classes, o);
  else if (name == "airbench") m = std::make_shared<AirbenchNet>(in_channels, num_classes, o);
  else if (name == "separable") m = std::make_shared<SeparableNet>(in_channels, num_classes, o);
  else if (name == "dense") m = std::make_shared<DenseNet>(in_channels, num_classes, o);
  else throw Error("model.name = '" + name + "' is not in the zoo (resnet9 | airbench | separable | dense)");
  if (o.glorot_normal) glorot_normal_init(*m);
  return m;
}

std::vector<torch::Tensor> batchnorm_biases(nn::Module& model) {
  std::vector<torch::Tensor> out;
  for (auto& m : model.modules(true))
    if (auto* bn = dynamic_cast<BatchNormImpl*>(m.get())) out.push_back(bn->bias);
  return out;
}

void set_precision(nn::Module& model, torch::ScalarType dtype) {
  model.to(dtype);
  for (auto& m : model.modules(/*include_self=*/true))
    if (dynamic_cast<BatchNormImpl*>(m.get()) || dynamic_cast<nn::BatchNorm2dImpl*>(m.get()) ||
        dynamic_cast<nn::BatchNorm1dImpl*>(m.get()))
      m->to(torch::kFloat32);
}

void to_channels_last(nn::Module& model) {
  torch::NoGradGuard ng;
  for (auto& p : model.parameters())
    if (p.dim() == 4) p.set_data(p.data().contiguous(torch::MemoryFormat::ChannelsLast));
  // 4-D buffers too: the frozen whitening filters (a buffer, not a parameter) would otherwise
  // stay NCHW and make their convolution reorder the input on every call.
  for (auto& b : model.buffers())
    if (b.dim() == 4) b.set_data(b.data().contiguous(torch::MemoryFormat::ChannelsLast));
}

int64_t count_parameters(const nn::Module& model) {
  int64_t n = 0;
  for (auto& p : model.parameters()) n += p.numel();
  return n;
}

}  // namespace kiln
