// The run's optimiser set (one part of kiln/train/run.h): the SGD / Muon / Adam groups and
// the schedule, the EMA copy, Lookahead, quantisation-aware training (train.qat), the
// reduce-LR-on-plateau multiplier and airbench's whitening-bias freeze; with each its part of
// the checkpoint.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "kiln/core/config.h"
#include "kiln/nn/model.h"
#include "kiln/train/model_setup.h"
#include "kiln/train/optim.h"
#include "kiln/train/run_settings.h"
#include "kiln/train/schedule.h"

namespace kiln {

class RunOptimizers {
 public:
  // Builds the EMA copy (ema.enabled; the model's whitening copied, not fitted again) and the
  // optimisers for `model` (make_sgd's groups and the schedule read from `cfg`); steps and
  // total_steps: of the run (RunData).
  RunOptimizers(const Config& cfg, const OptimizerSettings& s, Classifier& model, ModelSetup& models, int64_t steps,
                int64_t total_steps);

  LrSchedule sched;
  Plateau plateau;  // schedule.plateau_*: a multiplier on sched, decided after each epoch
  SgdSetup sgd;
  ClassifierPtr ema;  // ema.enabled: the averaged copy (evaluated and saved in the model's place)

  // The LR of global step g: the schedule times the plateau multiplier.
  double lr(int64_t g) const { return sched.at_step(g) * plateau.multiplier; }
  // The whitening bias's own LR (optim.whiten_bias_schedule = linear_to_zero): the peak LR
  // falling linearly to 0 over model.whiten_bias_epochs.
  double whiten_lr(int64_t g) const;
  bool whiten_linear() const { return s_.whiten_bias_linear; }
  // The eager step's LRs for global step g (lr as lr(g) returned it).
  void set_lr(int64_t g, double lr) { sgd.set_lr(lr, s_.whiten_bias_linear ? whiten_lr(g) : -1.0); }

  // airbench's whitening bias trains for its first whiten_bias_steps steps: set at the start of
  // an epoch; freeze_whiten_bias(g) is true at the step that freezes it (the step's work
  // changes: a captured graph and the gradient all-reduce must be rebuilt).
  void start_epoch(int64_t global_step);
  bool freeze_whiten_bias(int64_t global_step);

  // train.qat: the weights' int8 round trip before the forward; the fp32 masters are put back
  // before the optimiser applies the gradient (straight-through estimator).
  void enable_qat(Classifier& model, const IntGrid& grid);  // train.qat: the conv and linear weights, at train.qat_granularity and _bits
  bool qat() const { return !qat_weights_.empty(); }
  std::vector<torch::Tensor> qat_round_trip();
  void qat_restore(const std::vector<torch::Tensor>& masters);

  // After every step, both step paths: the EMA and Lookahead updates (outside any captured
  // graph: they work on the weights in place). End of training: the slow weights are the result.
  void after_step(Classifier& model, int64_t global_step);
  void end_of_training(Classifier& model);
  // What to warn of at the start, for a run too short for its averages:
  // - Lookahead with fewer steps than optim.lookahead_every: the slow weights never move and
  //   end_of_training puts back the initial weights (airbench's rule: its first update is at
  //   step lookahead_every, its last sets the weights to the slow ones);
  // - an EMA whose k = total_steps / ema.every updates leave more than half of the initial
  //   weights in it (ema.momentum^k > 0.5; k = 0: all of them): evaluation and the saved model
  //   are the average.
  std::vector<std::string> warnings() const;

  // The plateau's decision from an epoch's loss; a line to print when the multiplier changed.
  std::string observe_epoch(double train_loss, bool evaluated, double test_loss);

  void save(torch::serialize::OutputArchive& ar) const;  // optim, lookahead, ema, plateau
  void load(torch::serialize::InputArchive& ar);

 private:
  OptimizerSettings s_;
  int64_t total_steps_;
  std::unique_ptr<Lookahead> lookahead_;
  torch::Tensor whiten_bias_;  // the airbench whitening bias, trained for whiten_bias_steps_ steps
  int64_t whiten_bias_steps_ = 0;
  std::vector<torch::Tensor> qat_weights_;  // train.qat: the conv and linear weights
  IntGrid qat_grid_;
};

}  // namespace kiln
