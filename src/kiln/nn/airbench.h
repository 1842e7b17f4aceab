// The airbench family's network (Keller Jordan's cifar10-airbench, legacy/airbench94.py,
// airbench94_muon.py, legacy/airbench95.py, legacy/airbench96.py), written for kiln:
//
//   2x2 patch whitening (eigenvectors of the patches' uncentred second moment and their
//   negations; frozen) + a bias trained for the first model.whiten_bias_epochs epochs -> GELU
//   -> three conv groups -> global max-pool -> linear (no bias) -> scaled.
//   group(c_in, c_out), 2 convs: conv3x3 -> max-pool 2 -> BN -> act -> conv3x3 -> BN -> act;
//   3 convs (airbench96): ... -> act = x0 -> conv -> BN -> act -> conv -> BN, + x0 -> act.
// Convs have no bias; with model.conv_init = "dirac" the first c_in filters of each conv start
// as identities. BN as configured (airbench: frozen weight 1, eps 1e-12). The head multiplies
// the logits by model.output_scale (airbench94: 1/9), or with model.head_norm (airbench94_muon)
// starts with unit-std weights and divides the logits by the feature width.
// On 32x32 inputs the spatial sizes are 31 -> 15 -> 7 -> 3, and the global max-pool is the
// peers' MaxPool2d(3).
#pragma once
#include <torch/torch.h>

#include "kiln/nn/model.h"

namespace kiln {

struct ConvGroupImpl : torch::nn::Module {
  ConvGroupImpl(int64_t c_in, int64_t c_out, int64_t convs, const BlockOptions& o, bool dirac, double stochastic_depth = 0);
  torch::Tensor forward(torch::Tensor x);
  std::vector<torch::nn::Conv2d> conv;
  std::vector<BatchNorm> bn;
  BlockOptions opt;
  double drop_path;  // stochastic depth of the 3-conv group's residual branch
};
TORCH_MODULE(ConvGroup);

struct AirbenchNet : Classifier {
  AirbenchNet(int64_t in_channels, int64_t num_classes, const ModelOptions& m);
  AirbenchNet(int64_t in_channels, int64_t num_classes, const Config& cfg)
      : AirbenchNet(in_channels, num_classes, ModelOptions::from_config(cfg)) {}
  torch::Tensor forward(torch::Tensor x) override;
  void fit_to_data(const torch::Tensor& x) override;
  double forward_flops(int64_t height, int64_t width) const override;
  PatchWhitening whiten{nullptr};
  torch::Tensor whiten_bias;  // undefined when model.whiten_bias_epochs = 0
  std::vector<ConvGroup> groups;
  torch::nn::Linear fc{nullptr};
  double output_scale;
  double dropout;  // model.dropout, on the pooled features
  bool head_norm;
  Activation activation;
  double celu_alpha;  // model.celu_alpha, for the activation after the whitening as in the groups
  std::vector<int64_t> widths;
  int64_t convs_per_group, in_channels, classes;
};

}  // namespace kiln
