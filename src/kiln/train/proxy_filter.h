// Data filtering by a proxy network, as airbench96_faster does it (filter.* keys): a small
// airbench network sees every training batch, and the main network trains only on the
// filter.keep examples of it that the proxy finds hardest (highest label-smoothed loss). The
// proxy learns alongside, on the same batches, with the main network's optimiser settings and
// LR schedule: an SGD step on every filter.train_every-th batch, on its own kept examples; the
// other batches pass forward only (in train mode, so its BN statistics move, as the script's
// do). The selection stays on the device (top-k, index_select): no host synchronisation.
//
// airbench96_faster trains its proxy to the end first and keeps the masks; the proxy never
// sees the main network, so doing the two step by step, as here, selects the same examples
// and makes resume exact (the proxy and its optimiser are in the checkpoint).
#pragma once
#include <torch/torch.h>

#include "kiln/core/config.h"
#include "kiln/data/loader.h"
#include "kiln/nn/model.h"
#include "kiln/train/optim.h"

namespace kiln {

// The proxy's configuration: the run's, with model.widths = filter.widths,
// model.convs_per_group = filter.convs_per_group, no whitening bias (airbench96_faster freezes
// the proxy's at 0), and no student noise.
Config proxy_config(const Config& cfg);

struct FilterOptions {
  int64_t keep = 0;         // examples kept of each batch
  int64_t train_every = 4;  // the proxy steps on batches whose global step is a multiple of this
  double label_smoothing = 0;
  bool sum_loss = true;     // the proxy's loss on its kept examples: summed (else averaged)
};

class ProxyFilter {
 public:
  ProxyFilter(ClassifierPtr proxy, SgdSetup sgd, const FilterOptions& o);
  // The positions (ascending, int64, on the batch's device) of the `keep` examples of (x, y)
  // with the highest proxy loss; on a training step of the proxy (global_step % train_every
  // == 0) the proxy then takes its SGD step at learning rate `lr` (optim.lr's units).
  torch::Tensor select(const torch::Tensor& x, const torch::Tensor& y, int64_t global_step, double lr);
  // The batch restricted to select()'s examples.
  Batch filter(const Batch& b, int64_t global_step, double lr);

  Classifier& proxy() { return *proxy_; }
  const FilterOptions& options() const { return o_; }
  void save(torch::serialize::OutputArchive& ar) const;  // the proxy's weights and optimiser
  void load(torch::serialize::InputArchive& ar);

  int64_t forward_images = 0;  // examples through the proxy's forward pass (all steps)
  int64_t trained_images = 0;  // of those, the ones its backward pass saw

 private:
  ClassifierPtr proxy_;
  SgdSetup sgd_;
  FilterOptions o_;
};

}  // namespace kiln
