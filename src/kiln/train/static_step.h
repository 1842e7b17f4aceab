// A training step that a CUDA graph can capture, and its device-generic twin.
//
// Every value the step reads lives in a device tensor at a fixed address: the batch (copied
// into static input tensors before each step), the learning rate (a table of the whole
// schedule on the device, indexed by a device step counter the step itself advances), the
// optimiser state (momentum buffers allocated up front; the SGD update written with tensor
// ops so the LR can be a tensor), the loss and accuracy sums. Nothing in it reads the host or
// allocates host-dependent shapes, so kiln/cuda/graph_step can record it once and replay it;
// on the CPU (or with train.cuda_graph = false) the same object runs eagerly, and its numbers
// are checked against the trainer's ordinary path (LibTorch's SGD, Muon) in
// tests/test_static_step.cpp.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "kiln/nn/model.h"
#include "kiln/train/optim.h"

namespace kiln {

struct StaticStepOptions {
  double label_smoothing = 0;
  bool sum_loss = true;
  double momentum = 0.9;
  bool nesterov = true;
  bool lr_in_momentum = false;  // optim.sgd_form = "lr_in_momentum" (kiln::SgdLrInMomentum's update)
  // Muon (optim.name = muon): filters take muon_lr_ratio x the scheduled LR.
  double muon_lr_ratio = 0, muon_momentum = 0.6;
  bool muon_nesterov = true, muon_normalize = true;
  int64_t muon_ns_steps = 3;
};

// train.cuda_graph keeps the step's footprint from the capture and compares it before every
// replay (on the CPU, where there is no graph, at every step after the fourth: the same
// contract, checked without a GPU).
class StaticStep {
 public:
  // `setup` gives the parameter groups (and their multipliers and weight decays) exactly as the
  // eager path builds them; `lr_table[s]` is the main LR of global step s, `whiten_lr_table[s]`
  // the whitening-bias group's (empty: it follows the main LR).
  StaticStep(Classifier& model, const SgdSetup& setup, const StaticStepOptions& o, const std::vector<double>& lr_table,
             const std::vector<double>& whiten_lr_table, const torch::Device& device);

  // Copies a batch into the static inputs (shapes fixed by the first batch; a batch of another
  // size is refused: drop_last keeps them equal).
  void load(const torch::Tensor& x, const torch::Tensor& y);
  // One step on the loaded batch: forward, loss, backward, optimiser, accumulators, counters.
  void run();
  // Sets the device step counters (global step, step within the epoch) without a sync.
  void set_position(int64_t global_step, int64_t step_in_epoch);

  // Device accumulators the trainer reads once per epoch.
  torch::Tensor loss_sum, correct, step_losses;  // step_losses: per example, indexed by step in epoch
  void reset_epoch(int64_t steps_per_epoch);

  void save(torch::serialize::OutputArchive& ar) const;
  void load_state(torch::serialize::InputArchive& ar);
  bool has_batch() const { return x_.defined(); }

  // The addresses a captured graph holds: the data of every tensor the step reads or writes
  // (the model's parameters, their gradients and its buffers, the momentum buffers, the static
  // batch, the LR tables, the counters and the accumulators), in a fixed order, then the host
  // decisions a capture freezes (which parameters take a gradient, each module's train/eval
  // mode). Host reads only: no device work, no synchronisation.
  std::vector<const void*> footprint() const;
  // "" when the step's tensors are where `captured` (an earlier footprint()) found them, else
  // the first that moved or changed, named ("the gradient of parameter 'conv1.weight'", ...).
  // A CUDA graph replayed after such a move reads and writes memory its tensor no longer owns;
  // after such a change it does what the host decided at the capture.
  std::string moved_since(const std::vector<const void*>& captured) const;

 private:
  Classifier& model_;
  StaticStepOptions o_;
  struct Group {
    std::vector<torch::Tensor> params, bufs;
    double lr_mult, weight_decay;
    bool whiten, muon;
  };
  std::vector<Group> groups_;
  torch::Tensor lr_table_, whiten_lr_table_, global_step_, epoch_step_;
  torch::Tensor x_, y_;
};

}  // namespace kiln
