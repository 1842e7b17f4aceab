// One training run, as parts that own their state (kiln/train/trainer.h is the public face):
//
//   RunData        the data: subsets, the labelled split, loaders, each rank's shard, step counts
//   ModelSetup     the network: built, whitened, train.init
//   RunOptimizers  SGD / Muon / Adam groups and the schedule, EMA, Lookahead, QAT, plateau
//   StepPolicy     the static step and the CUDA graph (else the eager step below), the epoch's sums
//   Student        self-training's pseudo-labelled half of each batch (selftrain.teacher)
//   ProxyFilter    airbench96_faster's proxy that picks each batch's kept examples (filter.keep)
//   DataParallel   broadcast, gradient all-reduce, reduced sums and BN statistics
//   RunLog         the run directory, TensorBoard, the terminal
//
// Run::run() is the loop over epochs and steps (run.cpp); the end of an epoch is
// run_epoch.cpp, the checkpoint run_checkpoint.cpp; the drivers (lr-find, bench, overfit,
// evaluate) live beside it in drivers.cpp.
#pragma once
#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "kiln/core/config.h"
#include "kiln/train/data_parallel.h"
#include "kiln/train/model_setup.h"
#include "kiln/train/proxy_filter.h"
#include "kiln/train/run_data.h"
#include "kiln/train/run_log.h"
#include "kiln/train/run_optimizers.h"
#include "kiln/train/run_settings.h"
#include "kiln/train/step_policy.h"
#include "kiln/train/step_watch.h"
#include "kiln/train/student.h"
#include "kiln/train/trainer.h"

namespace kiln {

class Run {
 public:
  Run(const Config& cfg, const TrainTest& data, const RunOptions& opt);
  void write_run_files();
  RunResult run();
  // Resuming: every part's state from the checkpoint archive; the run directory's logs
  // rewound to the epochs it holds.
  void load_checkpoint_state(torch::serialize::InputArchive& ar);
  // lr-find's sweep over the run's own training (drivers.cpp).
  LrFindResult sweep(double lr_min, double lr_max, int64_t steps);

  double whiten_seconds() const { return models_.whiten_seconds; }
  int64_t images_trained() const { return images_trained_; }  // examples through the training steps (all epochs)
  double forward_flops() const;
  // The proxy's training FLOPs (forward over every drawn example, backward, at 2x forward, over
  // the ones it trained on); 0 without a proxy.
  double filter_flops() const;

 private:
  using Clock = std::chrono::steady_clock;
  void setup_filter();
  uint64_t seed() const { return s_.loop.seed; }
  void describe_model(int64_t parameters);  // the line that opens the run
  // The epoch's steps from step_ on; false when a stop was asked for (before that step).
  bool train_steps(const EpochPlan& plan, Clock::time_point t0, LateLoss& late);
  void show_progress(const torch::Tensor& loss, int64_t n, Clock::time_point t0, LateLoss& late);
  torch::Tensor eager_step(const Batch& b);  // forward, loss, backward (all-reduced), update; sums on the device
  void after_step(int64_t n);
  void reset_epoch_sums();
  void finish_epoch(Clock::time_point t0);  // run_epoch.cpp
  void save_checkpoint();                   // run_checkpoint.cpp
  void write_final(RunResult& r);  // final.json, the pictures, report.html

  Config cfg_;          // as given (written to config.toml and the checkpoint)
  RunSettings s_;       // the same, typed: what the run's parts read
  RunOptions opt_;
  torch::Device dev_;
  Precision prec_;  // train.precision resolved: the data and arithmetic (compute), the weights
  bool channels_last_;
  RunData data_;
  DataParallel dp_;
  RunLog log_;
  ModelSetup models_;
  AugmentOptions aug_;
  ClassifierPtr model_;
  std::unique_ptr<RunOptimizers> optim_;
  SyncCheck sync_check_;  // train.sync_check: on while the steps run (paused around a graph capture)
  std::unique_ptr<StepPolicy> policy_;
  std::unique_ptr<Student> student_;
  std::unique_ptr<ProxyFilter> filter_;

  // position and the epoch's running sums
  int64_t epoch_ = 0, step_ = 0, global_step_ = 0, seen_ = 0, images_trained_ = 0;
  double lr_ = 0, epoch_seconds_ = 0, train_seconds_ = 0;
  EpochSums sums_;
  EvalResult last_eval_;
  std::vector<EpochMetrics> history_;
};

}  // namespace kiln
