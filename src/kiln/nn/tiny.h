// Small models that ship (issue #8): a depthwise-separable network (MobileNet's block) and a
// dense-block network (DenseNet's), each with width and depth knobs, for models from a few KB
// to a few MB of weights.
//
// separable (model.widths = [stem, w1, w2, ...], model.depth = d):
//   conv3x3(in -> stem) -> BN -> act, then per stage i: d blocks, the first with stride 2,
//   block(c -> w_i, stride) = depthwise conv3x3(c, stride, groups c) -> BN -> act
//                             -> pointwise conv1x1(c -> w_i) -> BN -> act
//   -> global average pool -> dropout -> linear(w_last -> classes) with bias.
// dense (model.widths = [stem, k1, k2, ...]: the stem's width, then each dense block's growth
//        rate; model.depth = L layers per block):
//   conv3x3(in -> stem), then per block b: L layers, each BN -> act -> conv3x3(c -> k_b)
//   concatenated to its input (c grows by k_b); between blocks a transition
//   BN -> act -> conv1x1(c -> c/2) -> avg-pool 2; then BN -> act -> global average pool ->
//   dropout -> linear(c -> classes) with bias.
// Convolutions have no bias (BN follows). model.activation (relu6 for int8-friendly nets),
// BN options and model.init apply as everywhere.
#pragma once
#include <torch/torch.h>

#include "kiln/nn/model.h"

namespace kiln {

struct SeparableBlockImpl : torch::nn::Module {
  SeparableBlockImpl(int64_t c_in, int64_t c_out, int64_t stride, const BlockOptions& o);
  torch::Tensor forward(torch::Tensor x);
  torch::nn::Conv2d depthwise{nullptr}, pointwise{nullptr};
  BatchNorm bn1{nullptr}, bn2{nullptr};
  BlockOptions opt;
};
TORCH_MODULE(SeparableBlock);

struct SeparableNet : Classifier {
  SeparableNet(int64_t in_channels, int64_t num_classes, const ModelOptions& m);
  SeparableNet(int64_t in_channels, int64_t num_classes, const Config& cfg)
      : SeparableNet(in_channels, num_classes, ModelOptions::from_config(cfg)) {}
  torch::Tensor forward(torch::Tensor x) override;
  double forward_flops(int64_t height, int64_t width) const override;
  torch::nn::Conv2d stem{nullptr};
  BatchNorm stem_bn{nullptr};
  std::vector<SeparableBlock> blocks;
  torch::nn::Linear fc{nullptr};
  BlockOptions opt;
  double dropout;
};

struct DenseNet : Classifier {
  DenseNet(int64_t in_channels, int64_t num_classes, const ModelOptions& m);
  DenseNet(int64_t in_channels, int64_t num_classes, const Config& cfg)
      : DenseNet(in_channels, num_classes, ModelOptions::from_config(cfg)) {}
  torch::Tensor forward(torch::Tensor x) override;
  double forward_flops(int64_t height, int64_t width) const override;
  torch::nn::Conv2d stem{nullptr};
  std::vector<std::vector<std::pair<BatchNorm, torch::nn::Conv2d>>> layers;  // per block
  std::vector<std::pair<BatchNorm, torch::nn::Conv2d>> transitions;
  BatchNorm final_bn{nullptr};
  torch::nn::Linear fc{nullptr};
  BlockOptions opt;
  double dropout;
  int64_t in_channels;
};

// Glorot-normal initialisation (Glorot & Bengio 2010): every conv and linear weight ~
// N(0, 2 / (fan_in + fan_out)) with fan = channels x kernel area (a depthwise filter's fan_in
// is its kernel area), biases 0. BN, whitening and other buffers are left alone.
void glorot_normal_init(torch::nn::Module& model);

// Bytes of the weights as kiln would store them in fp32: every parameter and floating-point buffer.
int64_t weight_bytes(const torch::nn::Module& model);

}  // namespace kiln
