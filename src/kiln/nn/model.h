// The model zoo's common interface and the ResNet-9 of Myrtle.ai's DAWNBench baseline.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>

#include "kiln/core/config.h"

namespace kiln {

// An image classifier: N x C x H x W in, N x classes logits out.
struct Classifier : torch::nn::Module {
  virtual torch::Tensor forward(torch::Tensor x) = 0;
};
using ClassifierPtr = std::shared_ptr<Classifier>;

// conv 3x3 (no bias) -> BatchNorm -> ReLU.
struct ConvBNImpl : torch::nn::Module {
  ConvBNImpl(int64_t c_in, int64_t c_out, double bn_momentum, double bn_eps);
  torch::Tensor forward(torch::Tensor x);
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(ConvBN);

// x + b(a(x)) with two ConvBN blocks of the same width.
struct ResidualImpl : torch::nn::Module {
  ResidualImpl(int64_t c, double bn_momentum, double bn_eps);
  torch::Tensor forward(torch::Tensor x);
  ConvBN a{nullptr}, b{nullptr};
};
TORCH_MODULE(Residual);

// Myrtle's ResNet-9: prep ConvBN(w0) -> ConvBN(w1), max-pool 2, Residual(w1) ->
// ConvBN(w2), max-pool 2 -> ConvBN(w3), max-pool 2, Residual(w3) -> global max-pool ->
// linear (no bias) -> x output_scale. Widths (64, 128, 256, 512) in the original.
struct ResNet9 : Classifier {
  ResNet9(int64_t in_channels, int64_t num_classes, std::vector<int64_t> widths, double output_scale,
          double bn_momentum, double bn_eps);
  torch::Tensor forward(torch::Tensor x) override;
  ConvBN prep{nullptr}, layer1{nullptr}, layer2{nullptr}, layer3{nullptr};
  Residual res1{nullptr}, res3{nullptr};
  torch::nn::Linear fc{nullptr};
  double output_scale;
};

// Builds the model the configuration names (model.*).
ClassifierPtr make_model(const Config& cfg, int64_t in_channels, int64_t num_classes);

// Casts weights to `dtype` (fp16/bf16/fp32) while every BatchNorm keeps fp32 parameters
// and running statistics (the peers' mixed precision: half activations, fp32 BN).
void set_precision(torch::nn::Module& model, torch::ScalarType dtype);

// Puts every 4-D parameter and buffer in channels_last memory format (fast convolutions on CUDA).
void to_channels_last(torch::nn::Module& model);

int64_t count_parameters(const torch::nn::Module& model);

}  // namespace kiln
