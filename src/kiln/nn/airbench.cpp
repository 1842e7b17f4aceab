#include "kiln/nn/airbench.h"

#include <cmath>

#include "kiln/core/error.h"
#include "kiln/nn/fused_cpu.h"

namespace kiln {
namespace nn = torch::nn;

namespace {
// The first c_in output filters of a conv's weight as identities (torch.nn.init.dirac_ on w[:c_in]).
void dirac_init(torch::Tensor w) {
  torch::NoGradGuard ng;
  const int64_t n = std::min(w.size(0), w.size(1));
  auto head = w.slice(0, 0, n);
  head.zero_();
  const int64_t ky = w.size(2) / 2, kx = w.size(3) / 2;
  for (int64_t i = 0; i < n; ++i) head[i][i][ky][kx] = 1.0;
}
}  // namespace

ConvGroupImpl::ConvGroupImpl(int64_t c_in, int64_t c_out, int64_t convs, const BlockOptions& o, bool dirac, double sd)
    : opt(o), drop_path(sd) {
  if (convs < 2 || convs > 3) throw Error("model.convs_per_group must be 2 or 3 for airbench");
  for (int64_t k = 0; k < convs; ++k) {
    auto c = register_module("conv" + std::to_string(k + 1),
                             nn::Conv2d(nn::Conv2dOptions(k == 0 ? c_in : c_out, c_out, 3).padding(1).bias(false)));
    if (dirac) dirac_init(c->weight);
    conv.push_back(c);
    bn.push_back(register_module("bn" + std::to_string(k + 1), BatchNorm(c_out, o.bn)));
  }
}

torch::Tensor ConvGroupImpl::forward(torch::Tensor x) {
  // act(bn(pool(conv(x)))), act(bn(conv(x))) and act(bn(conv(x)) + x0): one fused operator each
  // where it applies (train.fused_cpu)
  x = pool_bn_act(conv[0](x), *bn[0], opt.activation, opt.celu_alpha, true);
  if (conv.size() == 2) return pool_bn_act(conv[1](x), *bn[1], opt.activation, opt.celu_alpha, false);
  auto x0 = x;
  x = pool_bn_act(conv[1](x), *bn[1], opt.activation, opt.celu_alpha, false);
  if (drops_branch(drop_path, is_training()))  // stochastic depth drops the branch before the add
    return activate(drop_branch(bn[2](conv[2](x)), drop_path, true) + x0, opt.activation, opt.celu_alpha);
  return pool_bn_act(conv[2](x), *bn[2], opt.activation, opt.celu_alpha, false, x0);
}

AirbenchNet::AirbenchNet(int64_t in_ch, int64_t n_classes, const ModelOptions& m)
    : output_scale(m.output_scale),
      dropout(m.dropout),
      head_norm(m.head_norm),
      activation(m.block.activation),
      celu_alpha(m.block.celu_alpha),
      widths(m.widths),
      convs_per_group(m.convs_per_group),
      in_channels(in_ch),
      classes(n_classes) {
  if (widths.size() != 3) throw Error("model.name = \"airbench\" needs 3 widths in model.widths (e.g. [64, 256, 256])");
  if (m.whiten != "2x2") throw Error("model.name = \"airbench\" needs model.whiten = \"2x2\"");
  whiten = register_module("whiten", PatchWhitening(in_ch, 2, m.whiten_eps, true, 0, m.whiten_trained));
  if (m.whiten_trained) {  // the script's Conv(3, 24, 2) without init_whitening_conv: its own init, trained
    torch::NoGradGuard ng;
    nn::init::kaiming_uniform_(whiten->weight, std::sqrt(5.0));  // LibTorch's and PyTorch's conv default
    if (m.dirac) dirac_init(whiten->weight);
  }
  if (m.whiten_bias_epochs > 0) {
    whiten_bias = register_parameter("whiten_bias", torch::zeros({whiten->out_channels()}));
    if (m.whiten_bias_uniform) {  // a plain conv's bias init: U(+-1/sqrt(fan_in)), fan_in = C x 2 x 2
      torch::NoGradGuard ng;
      const double bound = 1.0 / std::sqrt(static_cast<double>(in_ch * 4));
      whiten_bias.uniform_(-bound, bound);
    }
  }
  const auto& o = m.block;
  const bool dirac = m.dirac;
  int64_t c = whiten->out_channels();
  for (size_t g = 0; g < 3; ++g) {
    groups.push_back(register_module("group" + std::to_string(g + 1), ConvGroup(c, widths[g], convs_per_group, o, dirac, m.stochastic_depth)));
    c = widths[g];
  }
  fc = register_module("fc", nn::Linear(nn::LinearOptions(c, n_classes).bias(false)));
  if (head_norm) {
    torch::NoGradGuard ng;
    fc->weight.div_(fc->weight.std());
  }
}

void AirbenchNet::fit_to_data(const torch::Tensor& x) { whiten->fit(x); }

torch::Tensor AirbenchNet::forward(torch::Tensor x) {
  // The bias inside the convolution, as the peers' conv(bias = true); as a separate broadcast
  // add it had kiln at 1.046x the peer's time on an AMX CPU, 0.990x without (docs/perf.md).
  x = whiten(x, whiten_bias);  // undefined when model.whiten_bias_epochs = 0: no bias
  x = activate(x, activation, celu_alpha);
  for (auto& g : groups) x = g(x);
  x = torch::amax(x, {2, 3});
  x = fc(head_dropout(x, dropout, is_training()));
  return head_norm ? x / static_cast<double>(widths.back()) : x * output_scale;
}

double AirbenchNet::forward_flops(int64_t H, int64_t W) const {
  // Multiply-adds x 2 of the convolutions and the head (activations, BN and pooling omitted,
  // as in the peers' FLOP counts).
  H -= 1, W -= 1;  // the 2x2 whitening conv without padding
  double f = 2.0 * whiten->out_channels() * in_channels * 4 * H * W;
  int64_t c = whiten->out_channels();
  for (size_t g = 0; g < 3; ++g) {
    const double c_out = static_cast<double>(widths[g]);
    f += 2.0 * c * 9 * c_out * H * W;  // first conv at full size, then pooled
    H /= 2, W /= 2;
    f += (convs_per_group - 1) * 2.0 * c_out * 9 * c_out * H * W;
    c = widths[g];
  }
  return f + 2.0 * c * classes;
}

}  // namespace kiln
