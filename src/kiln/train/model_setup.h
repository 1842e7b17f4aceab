// The run's model set-up (one part of kiln/train/run.h): a network as a config says, built,
// fitted to the training data (the whitening layer), on the device in the run's precision and
// layout; and train.init, which starts it from another run's weights.
#pragma once
#include <torch/torch.h>

#include <string>

#include "kiln/core/config.h"
#include "kiln/nn/model.h"
#include "kiln/train/run_data.h"

namespace kiln {

class ModelSetup {
 public:
  ModelSetup(const RunData& data, const torch::Device& device, torch::ScalarType dtype, bool channels_last,
             bool fused_cpu, bool fused_cuda)
      : data_(data),
        dev_(device),
        dtype_(dtype),
        channels_last_(channels_last),
        fused_cpu_(fused_cpu),
        fused_cuda_(fused_cuda) {}

  // whiten_from: a model of the same whitening settings, fitted already, whose whitening
  // tensors ("whiten.*") are copied instead of fitting again (the EMA copy; the proxy of
  // filter.keep: the same eigenvectors of the same patches).
  ClassifierPtr build(const Config& c, Classifier* whiten_from = nullptr);

  // train.init: copies every tensor of the checkpoint's model whose name and shape match into
  // `model`; returns the line that says what it took. Throws when nothing matches.
  std::string init_from(Classifier& model, const std::string& checkpoint) const;

  double whiten_seconds = 0;  // fitting the whitening layer(s), the device synchronised around it

 private:
  const RunData& data_;
  torch::Device dev_;
  torch::ScalarType dtype_;
  bool channels_last_;
  bool fused_cpu_;   // train.fused_cpu
  bool fused_cuda_;  // train.fused_cuda
};

// Waits until the device has done its queued work (a copy of one element to the host).
void sync_device(const torch::Device& device);

}  // namespace kiln
