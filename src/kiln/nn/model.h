// The model zoo's common interface and the ResNet-9 of Myrtle.ai's DAWNBench baseline.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>

#include "kiln/core/config.h"
#include "kiln/nn/layers.h"

namespace kiln {

// An image classifier: N x C x H x W in, N x classes logits out.
struct Classifier : torch::nn::Module {
  virtual torch::Tensor forward(torch::Tensor x) = 0;
  // Fits whatever the model derives from the training data before training (the patch
  // whitening's filters); x is normalised training images. A no-op for most models.
  virtual void fit_to_data(const torch::Tensor& x) {}
  // FLOPs (2 x multiply-adds of the convolutions and linear layers) of one forward pass of
  // one image of the given size; 0 when the model does not know.
  virtual double forward_flops(int64_t height, int64_t width) const { return 0; }
};
using ClassifierPtr = std::shared_ptr<Classifier>;

// How a conv block is built (the tricks that live inside it).
struct BlockOptions {
  Activation activation = Activation::ReLU;
  double celu_alpha = 0.075;
  bool pool_before_bn = false;  // conv -> pool -> BN -> act (else conv -> BN -> act -> pool)
  BatchNormOptions bn;
};

// A network as its model.* keys describe it, parsed once (ModelOptions::from_config).
struct ModelOptions {
  std::string name = "resnet9";         // resnet9 | airbench | separable | dense
  std::vector<int64_t> widths;          // model.widths
  int64_t depth = 2;                    // separable: blocks per stage; dense: layers per block
  int64_t convs_per_group = 2;          // airbench
  BlockOptions block;                   // activation, CELU alpha, pool-before-BN, BatchNorm
  double output_scale = 0.125, dropout = 0, stochastic_depth = 0;
  std::string whiten = "none";          // none | 3x3 | 2x2
  double whiten_eps = 1e-2;
  int64_t whiten_samples = 10000;       // training images (the first N) the whitening is fitted on
  bool whiten_trained = false;          // airbench: the whitening conv trained from a conv's init, not fitted
  bool whiten_fitted() const { return whiten != "none" && !whiten_trained; }
  bool head_norm = false;               // airbench94_muon's head
  int64_t whiten_bias_epochs = 0;       // airbench: > 0 gives the whitening conv a bias
  bool whiten_bias_uniform = false;     // model.whiten_bias_init = uniform (else zeros)
  bool dirac = false;                   // model.conv_init = dirac
  bool glorot_normal = false;           // model.init = glorot_normal
  static ModelOptions from_config(const Config& cfg);
};
BlockOptions block_options(const Config& cfg);  // ModelOptions::from_config(cfg).block

// conv k x k (no bias) -> BatchNorm -> activation, with an optional 2x2 max-pool either
// after the activation (baseline) or straight after the conv (pool_before_bn).
struct ConvBNImpl : torch::nn::Module {
  ConvBNImpl(int64_t c_in, int64_t c_out, bool pool, const BlockOptions& o, int64_t kernel = 3);
  torch::Tensor forward(torch::Tensor x);
  torch::nn::Conv2d conv{nullptr};
  BatchNorm bn{nullptr};
  bool pool;
  BlockOptions opt;
};
TORCH_MODULE(ConvBN);

// x + b(a(x)) with two ConvBN blocks of the same width. With stochastic depth p > 0, in
// training each example's branch is dropped with probability p and kept ones are scaled by
// 1 / (1 - p), so evaluation (which keeps every branch) sees the same expectation.
struct ResidualImpl : torch::nn::Module {
  ResidualImpl(int64_t c, const BlockOptions& o, double stochastic_depth = 0);
  torch::Tensor forward(torch::Tensor x);
  ConvBN a{nullptr}, b{nullptr};
  double drop_path;
};
TORCH_MODULE(Residual);

// Stochastic depth's per-example mask, applied to a residual branch (training only; p = 0 or
// eval: the branch itself). The draws come from the device's default generator (seeded by
// train.seed, saved in checkpoints).
torch::Tensor drop_branch(const torch::Tensor& branch, double p, bool training);
// Whether drop_branch draws a mask (else it returns the branch itself): training with p > 0.
inline bool drops_branch(double p, bool training) { return training && p > 0; }
// Dropout on features (training only).
torch::Tensor head_dropout(const torch::Tensor& x, double p, bool training);

// Myrtle's ResNet-9: prep ConvBN(w0) -> ConvBN(w1) + pool, Residual(w1) -> ConvBN(w2) + pool
// -> ConvBN(w3) + pool, Residual(w3) -> global max-pool -> linear (no bias) -> x output_scale.
// Widths (64, 128, 256, 512) in the original. With model.whiten, the prep block is a fixed
// patch-whitening convolution followed by a 1x1 ConvBN.
struct ResNet9 : Classifier {
  ResNet9(int64_t in_channels, int64_t num_classes, const ModelOptions& m);
  ResNet9(int64_t in_channels, int64_t num_classes, const Config& cfg)
      : ResNet9(in_channels, num_classes, ModelOptions::from_config(cfg)) {}
  torch::Tensor forward(torch::Tensor x) override;
  void fit_to_data(const torch::Tensor& x) override;
  double forward_flops(int64_t height, int64_t width) const override;
  PatchWhitening whiten{nullptr};
  ConvBN prep{nullptr}, layer1{nullptr}, layer2{nullptr}, layer3{nullptr};
  Residual res1{nullptr}, res3{nullptr};
  torch::nn::Linear fc{nullptr};
  double output_scale;
  double dropout;  // model.dropout, on the pooled features
};

// Builds the model the options (the configuration's model.* keys) name.
ClassifierPtr make_model(const ModelOptions& m, int64_t in_channels, int64_t num_classes);
ClassifierPtr make_model(const Config& cfg, int64_t in_channels, int64_t num_classes);

// Casts weights to `dtype` (fp16/bf16/fp32) while every BatchNorm keeps fp32 parameters
// and running statistics (the peers' mixed precision: half activations, fp32 BN).
void set_precision(torch::nn::Module& model, torch::ScalarType dtype);

// The BatchNorm biases of a model (they may get their own LR multiplier and weight decay).
std::vector<torch::Tensor> batchnorm_biases(torch::nn::Module& model);

// Puts every 4-D parameter and buffer in channels_last memory format (fast convolutions on CUDA).
void to_channels_last(torch::nn::Module& model);

int64_t count_parameters(const torch::nn::Module& model);

}  // namespace kiln
