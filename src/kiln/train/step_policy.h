// How the run takes its steps (one part of kiln/train/run.h): train.static_step and
// train.cuda_graph. With either, the step is the StaticStep (kiln/train/static_step.h): fixed
// addresses, the LR from a table on the device. With train.cuda_graph on CUDA it runs eagerly
// for three steps (on the capture's side stream), is captured once and replayed after; the
// capture's footprint (the address of every tensor the step uses) is compared before each
// replay, since a tensor that moved would leave the graph reading and writing memory it no
// longer owns, silently. On the CPU, where train.cuda_graph has no graph, the same contract is
// checked from the fourth step on. Without either, the run takes the ordinary (eager) step
// itself and this part only keeps the epoch's sums.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <vector>

#include "kiln/core/config.h"
#include "kiln/data/loader.h"
#include "kiln/nn/model.h"
#include "kiln/train/run_data.h"
#include "kiln/train/run_optimizers.h"
#include "kiln/train/run_settings.h"
#include "kiln/train/static_step.h"
#include "kiln/train/step_watch.h"
#ifdef KILN_HAS_CUDA
#include "kiln/cuda/graph_step.h"
#endif

namespace kiln {

// The epoch's running sums, on the device, read once at the end of the epoch.
struct EpochSums {
  torch::Tensor loss_sum, correct;  // fp64 sum of per-example losses; int64 hits
  torch::Tensor step_losses;        // fp64, the mean loss of each step of the epoch
};

class StepPolicy {
 public:
  StepPolicy(const RunSettings& s, Classifier& model, RunOptimizers& opt, const RunData& data, const torch::Device& device,
             SyncCheck& sync_check);

  bool is_static() const { return static_ != nullptr; }
  // One step through the static step (or its graph): batch in, update done.
  void static_step(const Batch& b, int64_t global_step);
  // Where the next step is (the static step keeps the counters on the device).
  void set_position(int64_t global_step, int64_t step_in_epoch);
  // The step's work changed (the whitening bias froze): capture again.
  void drop_graph();
  // Zeroes the epoch's sums (the static step's own tensors, in place; else new ones).
  void reset_sums(EpochSums& sums, int64_t steps_per_epoch);
  // Restores the sums (and the static step's optimiser state) from a checkpoint.
  void load_sums(EpochSums& sums, const torch::Tensor& accumulators, const torch::Tensor& step_losses);
  void save(torch::serialize::OutputArchive& ar) const;  // static_optim
  void load(torch::serialize::InputArchive& ar);

 private:
  torch::Device dev_;
  SyncCheck& sync_check_;
  std::unique_ptr<StaticStep> static_;  // train.static_step / train.cuda_graph
  bool use_graph_ = false;              // train.cuda_graph on a CUDA device: capture and replay
  bool graph_wanted_ = false;           // train.cuda_graph anywhere: the capture's address contract is checked
#ifdef KILN_HAS_CUDA
  std::unique_ptr<kiln::cuda::GraphStep> graph_;
#endif
  int eager_before_capture_ = 0;
  int64_t captured_at_ = -1;            // the global step of the capture; -1: none
  std::vector<const void*> footprint_;  // the step's tensors' addresses at the capture
};

}  // namespace kiln
