// The end of an epoch: the epoch's one read of the device, the divergence checks, the
// evaluation, the logs, the plateau's decision and the checkpoint.
#include <cmath>

#include "kiln/core/error.h"
#include "kiln/report/memory.h"
#include "kiln/report/show.h"
#include "kiln/train/run.h"

namespace kiln {

void Run::finish_epoch(Clock::time_point t0) {
  // The epoch's single read of the device: loss sum (NaN/Inf flags itself) and hits.
  // (A student's two loss parts ride along at the end; students run in one process.)
  auto both = torch::cat({torch::stack({sums_.loss_sum, sums_.correct.to(torch::kFloat64)}), sums_.step_losses});
  if (student_) both = torch::cat({both, student_->epoch_parts()});
  dp_.reduce_epoch(both);  // one all-reduce an epoch: sums over the ranks; the per-step mean losses averaged
  both = both.cpu();
  epoch_seconds_ += std::chrono::duration<double>(Clock::now() - t0).count();
  const int64_t seen = seen_ * dp_.size();  // every rank trains on as many
  const int64_t classes = data_.classes;
  const std::string kept =
      opt_.run_dir.empty() ? std::string("") : "The last good checkpoint is " + log_.path("checkpoint.pt") + " (not overwritten).";
  double loss_sum = both[0].item<double>();
  if (!std::isfinite(loss_sum))
    throw Error("training loss became " + std::string(std::isnan(loss_sum) ? "NaN" : "Inf") + " in epoch " +
                std::to_string(epoch_ + 1) + " (lr " + std::to_string(lr_) + "); try a lower optim.lr. " + kept);
  {
    // Divergence short of NaN (a learning rate x1000 sends the loss to 1e6 and beyond): the
    // epoch's mean loss against a bound far above chance (ln C), from the same single read.
    const double bound = s_.loop.divergence_loss == 0 ? 25 * std::log(static_cast<double>(std::max<int64_t>(classes, 2)))
                                                        : s_.loop.divergence_loss;
    const double mean = loss_sum / std::max<int64_t>(seen, 1);
    if (bound > 0 && mean > bound)
      throw Error("training diverged in epoch " + std::to_string(epoch_ + 1) + ": mean loss " + std::to_string(mean) +
                  " exceeds train.divergence_loss = " + std::to_string(bound) + " (chance is ln " + std::to_string(classes) +
                  " = " + std::to_string(std::log(static_cast<double>(classes))) + "); try a lower optim.lr (now " +
                  std::to_string(lr_) + "). " + kept);
  }
  train_seconds_ += epoch_seconds_;
  EpochMetrics m;
  m.epoch = epoch_ + 1;
  m.train_loss = loss_sum / std::max<int64_t>(seen, 1);
  m.train_acc = both[1].item<double>() / std::max<int64_t>(seen, 1);
  const int64_t g0 = epoch_ * data_.steps, steps = std::min(data_.steps, data_.total_steps - g0);
  if (student_) {
    const double* parts = both.data_ptr<double>() + 2 + data_.steps;
    m.student_labeled_loss = parts[0] / static_cast<double>(steps);
    m.student_pseudo_loss = parts[1] / static_cast<double>(steps);
  }
  m.lr = lr_;
  m.epoch_seconds = epoch_seconds_;
  m.images_per_s = seen / std::max(epoch_seconds_, 1e-9);
  m.train_seconds = train_seconds_;
  const bool last = epoch_ + 1 == data_.epochs;
  if (last) optim_->end_of_training(*model_);  // Lookahead: the slow weights are the result
  dp_.average_buffers(*model_, optim_->ema.get());  // every rank holds the same model before it is evaluated or saved
  if (last || (epoch_ + 1) % std::max<int64_t>(1, s_.loop.eval_every) == 0) {
    auto te = Clock::now();
    auto ev = evaluate(optim_->ema ? *optim_->ema : *model_, dp_.active() ? *data_.test_shard : *data_.test,
                       s_.data.test_batch_size, s_.loop.tta, s_.loop.tta_translate_weight);
    dp_.reduce_eval(ev, dev_);  // each rank evaluated its share of the test set: add the sums
    m.eval_seconds = std::chrono::duration<double>(Clock::now() - te).count();
    m.evaluated = true;
    m.test_loss = ev.loss;
    m.test_acc = ev.acc;
    if (ev.predictions.defined()) {  // one process: every test image's prediction is here (data parallel: a share)
      auto matrix = confusion_matrix(ev.predictions, data_.test->labels().cpu(), classes).to(torch::kFloat64);
      auto acc = (matrix.diagonal() / matrix.sum(1)).contiguous();  // 0 / 0 = NaN for a class without test images
      m.test_class_acc.assign(acc.data_ptr<double>(), acc.data_ptr<double>() + classes);
    }
    last_eval_ = ev;
  }
  reset_epoch_sums();
  auto mem = memory_stats(dev_);
  m.live_allocations = mem.live_allocations;
  m.live_bytes = mem.live_bytes;
  history_.push_back(m);
  log_.epoch(m, data_.epochs, g0, steps, both.data_ptr<double>() + 2,
             [this](int64_t g) { return optim_->lr(g); }, global_step_);
  // Reduce-LR-on-plateau decides the next epoch's multiplier from this epoch's loss.
  const auto plateau = optim_->observe_epoch(m.train_loss, m.evaluated, m.test_loss);
  if (!plateau.empty()) log_.line(plateau);
  // The checkpoint records the epochs completed and the start of the next one: (epoch + 1,
  // step 0). (Recording step = steps here made a resume from this checkpoint replay an empty
  // epoch; the SIGKILL test of tests/cli_crash.sh found it.)
  ++epoch_;
  const int64_t step = step_;
  step_ = 0;
  if (last || epoch_ % std::max<int64_t>(1, s_.loop.checkpoint_every) == 0) save_checkpoint();
  step_ = step;
  --epoch_;
}

}  // namespace kiln
