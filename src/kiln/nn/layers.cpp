#include "kiln/nn/layers.h"

#include "kiln/core/error.h"
#include "kiln/dist/dist.h"

namespace kiln {

Activation parse_activation(const std::string& n) {
  if (n == "relu") return Activation::ReLU;
  if (n == "celu") return Activation::CELU;
  if (n == "gelu") return Activation::GELU;
  if (n == "relu6") return Activation::ReLU6;
  throw Error("model.activation = '" + n + "' (relu | celu | gelu | relu6)");
}

std::string activation_name(Activation a) {
  switch (a) {
    case Activation::ReLU: return "relu";
    case Activation::CELU: return "celu";
    case Activation::GELU: return "gelu";
    case Activation::ReLU6: return "relu6";
  }
  return "relu";
}

torch::Tensor activate(const torch::Tensor& x, Activation a, double alpha) {
  switch (a) {
    case Activation::ReLU: return torch::relu(x);
    case Activation::CELU: return torch::celu(x, alpha);
    case Activation::ReLU6: return torch::clamp(x, 0, 6);
    default: return torch::gelu(x);
  }
}

BatchNormImpl::BatchNormImpl(int64_t c, BatchNormOptions o) : options(o) {
  auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  if (o.freeze_weight) weight = register_buffer("weight", torch::full({c}, o.weight_init, f32));
  else weight = register_parameter("weight", torch::full({c}, o.weight_init, f32));
  bias = register_parameter("bias", torch::zeros({c}, f32));
  running_mean = register_buffer("running_mean", torch::zeros({c}, f32));
  running_var = register_buffer("running_var", torch::ones({c}, f32));
}

void set_sync_bn_group(torch::nn::Module& model, dist::Group* group) {
  for (auto& m : model.modules(/*include_self=*/true))
    if (auto* bn = m->as<BatchNormImpl>()) bn->sync_group = group;
}

torch::Tensor BatchNormImpl::forward(const torch::Tensor& x) {
  const int64_t S = options.ghost_splits, B = x.size(0), C = x.size(1);
  if (is_training()) {
    if (auto* g = sync_group) {  // dist.sync_bn: statistics over every rank's batch
      if (S > 1) throw Error("dist.sync_bn normalises over every rank's batch; ghost BN (model.ghost_bn_splits > 1) splits it: choose one");
      return dist::sync_batch_norm(x, weight, bias, running_mean, running_var, options.momentum, options.eps, *g);
    }
  }
  if (!is_training() || S <= 1 || B % S != 0 || B == S)
    return torch::batch_norm(x, weight, bias, running_mean, running_var, is_training(), options.momentum, options.eps,
                             at::globalContext().userEnabledCuDNN());
  // Ghost BN as Myrtle.ai's notebook writes it, x.view(-1, C * S, H, W): example k becomes
  // channel block k mod S of a batch of B / S, so split j holds examples j, j + S, j + 2S, ...
  // and one batch_norm call normalises every split with its own statistics.
  auto rest = x.sizes().slice(2).vec();
  std::vector<int64_t> wide_shape{B / S, S * C};
  wide_shape.insert(wide_shape.end(), rest.begin(), rest.end());
  auto rm = running_mean.repeat({S}), rv = running_var.repeat({S});
  auto y = torch::batch_norm(x.reshape(wide_shape), weight.repeat({S}), bias.repeat({S}), rm, rv, true, options.momentum,
                             options.eps, at::globalContext().userEnabledCuDNN());
  {
    torch::NoGradGuard ng;
    running_mean.copy_(rm.view({S, C}).mean(0));
    running_var.copy_(rv.view({S, C}).mean(0));
  }
  return y.reshape(x.sizes());
}

PatchWhiteningImpl::PatchWhiteningImpl(int64_t c, int64_t k, double e, bool neg, int64_t pad, bool train)
    : in_channels(c), kernel(k), padding(pad), eps(e), with_negated(neg), trained(train) {
  auto w = torch::zeros({out_channels(), c, k, k});
  weight = trained ? register_parameter("weight", w) : register_buffer("weight", w);
  eigenvalues = register_buffer("eigenvalues", torch::zeros({c * k * k}));
}

int64_t PatchWhiteningImpl::out_channels() const { return (with_negated ? 2 : 1) * in_channels * kernel * kernel; }

torch::Tensor PatchWhiteningImpl::fit(const torch::Tensor& x) {
  if (trained) throw Error("the whitening conv is trained here (model.whiten_trained = true), not fitted to the data's patches");
  torch::NoGradGuard ng;
  const int64_t d = in_channels * kernel * kernel;
  // Patches as columns, d x (N * H' * W'), rows in (c, i, j) order = the conv weight's order:
  // the k*k shifted views of each channel stacked (cheaper than unfold + transpose).
  const int64_t Ho = x.size(2) - kernel + 1, Wo = x.size(3) - kernel + 1;
  std::vector<torch::Tensor> rows;
  for (int64_t c = 0; c < in_channels; ++c)
    for (int64_t i = 0; i < kernel; ++i)
      for (int64_t j = 0; j < kernel; ++j) rows.push_back(x.select(1, c).slice(1, i, i + Ho).slice(2, j, j + Wo));
  auto patches = torch::stack(rows, 0).to(torch::kFloat64).reshape({d, -1});
  auto second_moment = patches.mm(patches.t()) / static_cast<double>(patches.size(1));  // uncentred
  auto [lambda, V] = torch::linalg_eigh(second_moment);                                 // ascending
  lambda = lambda.flip({0});
  V = V.flip({1});
  auto filters = (V.t() / (lambda + eps).sqrt().unsqueeze(1)).reshape({d, in_channels, kernel, kernel});
  if (with_negated) filters = torch::cat({filters, -filters});
  weight.copy_(filters.to(weight.dtype()));
  eigenvalues.copy_(lambda.to(eigenvalues.dtype()));
  return lambda;
}

torch::Tensor PatchWhiteningImpl::forward(const torch::Tensor& x, const torch::Tensor& bias) {
  return torch::conv2d(x, weight.to(x.dtype()), bias.defined() ? bias.to(x.dtype()) : bias, 1, padding);
}

torch::Tensor predict_with_tta(const std::function<torch::Tensor(const torch::Tensor&)>& f, const torch::Tensor& x,
                               const std::string& mode, double w) {
  tta_view_count(mode);  // refuses an unknown mode
  if (mode == "none") return f(x);
  auto mirror = [&](const torch::Tensor& in) { return 0.5 * (f(in) + f(in.flip({3}))); };
  if (mode == "flip") return mirror(x);
  namespace F = torch::nn::functional;
  const auto H = x.size(2), W = x.size(3);
  auto padded = F::pad(x, F::PadFuncOptions({1, 1, 1, 1}).mode(torch::kReflect));
  auto up_left = padded.slice(2, 0, H).slice(3, 0, W), down_right = padded.slice(2, 2, H + 2).slice(3, 2, W + 2);
  return (1 - w) * mirror(x) + w * 0.5 * (mirror(up_left.contiguous()) + mirror(down_right.contiguous()));
}

int64_t tta_view_count(const std::string& mode) {
  if (mode == "none") return 1;
  if (mode == "flip") return 2;
  if (mode == "flip+translate") return 6;
  throw Error("test-time augmentation '" + mode + "' is not one of none | flip | flip+translate");
}

}  // namespace kiln
