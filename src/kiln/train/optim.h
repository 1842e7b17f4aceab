// Optimiser construction (parameter groups) and weight averaging.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <vector>

#include "kiln/core/config.h"

namespace kiln {

struct SgdSetup {
  std::unique_ptr<torch::optim::SGD> optimizer;
  // Per parameter group, the factor applied to the scheduled LR: group 0 holds every
  // parameter but the BN biases (x1); group 1, when the model has BN, the BN biases
  // (x optim.bn_bias_lr_mult, weight decay / optim.bn_bias_wd_div).
  std::vector<double> lr_mult;
  void set_lr(double lr);
};

SgdSetup make_sgd(const Config& cfg, torch::nn::Module& model, double initial_lr);

// avg = m * avg + (1 - m) * current for every parameter and floating-point buffer (BN
// running statistics included, so the averaged model's BN matches its weights); integer
// buffers are copied.
void ema_update(torch::nn::Module& avg, torch::nn::Module& current, double m);
// Copies every parameter and buffer.
void copy_weights(torch::nn::Module& dst, torch::nn::Module& src);

}  // namespace kiln
