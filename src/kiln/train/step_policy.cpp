#include "kiln/train/step_policy.h"

#include "kiln/core/error.h"

namespace kiln {

StepPolicy::StepPolicy(const RunSettings& s, Classifier& model, RunOptimizers& opt, const RunData& data,
                       const torch::Device& device, SyncCheck& sync_check)
    : dev_(device), sync_check_(sync_check) {
  if (!s.step.uses_static()) return;
  std::vector<double> lrs, wlrs;
  for (int64_t g = 0; g < data.total_steps; ++g) {
    lrs.push_back(opt.sched.at_step(g));
    if (opt.whiten_linear()) wlrs.push_back(opt.whiten_lr(g));
  }
  const auto& o = s.optim;
  StaticStepOptions so;
  so.label_smoothing = o.label_smoothing;
  so.sum_loss = o.sum_loss();
  so.momentum = o.momentum;
  so.nesterov = o.nesterov;
  so.lr_in_momentum = o.lr_in_momentum;
  so.muon_lr_ratio = o.muon_lr / o.lr;
  so.muon_momentum = o.muon_momentum;
  so.muon_nesterov = o.muon_nesterov;
  so.muon_normalize = o.muon_normalize;
  so.muon_ns_steps = o.muon_ns_steps;
  static_ = std::make_unique<StaticStep>(model, opt.sgd, so, lrs, wlrs, dev_);
  graph_wanted_ = s.step.cuda_graph;
  use_graph_ = graph_wanted_ && dev_.is_cuda();
#ifndef KILN_HAS_CUDA
  if (use_graph_) throw Error("train.cuda_graph: this kiln was built without CUDA sources");
#endif
}

void StepPolicy::static_step(const Batch& b, int64_t global_step) {
  static_->load(b.x, b.y);
  if (graph_wanted_) {
    if (captured_at_ < 0 && ++eager_before_capture_ > 3) {
#ifdef KILN_HAS_CUDA
      if (use_graph_) {
        if (!graph_) graph_ = std::make_unique<kiln::cuda::GraphStep>();
        sync_check_.pause();  // capturing is once, not a step's work
        graph_->capture([this] { static_->run(); });  // on the warm-ups' side stream; records, does not run
        sync_check_.resume();
      }
#endif
      footprint_ = static_->footprint();
      captured_at_ = global_step;
    } else if (captured_at_ >= 0) {
      const auto what = static_->moved_since(footprint_);
      if (!what.empty())
        throw Error("train.cuda_graph: " + what + " changed after the step was captured (at step " + std::to_string(captured_at_ + 1) +
                    "; now step " + std::to_string(global_step + 1) +
                    "): a replay repeats the recorded addresses and host decisions, so it would use memory the tensor no "
                    "longer owns or a decision no longer true. What changes it between steps must write in place "
                    "(copy_, zero_), or drop the graph so that the step is captured again");
    }
#ifdef KILN_HAS_CUDA
    if (use_graph_) {
      if (!graph_) graph_ = std::make_unique<kiln::cuda::GraphStep>();
      if (graph_->captured()) graph_->replay();
      else graph_->warm_up([this] { static_->run(); });  // the three steps before a capture, on its side stream
      return;
    }
#endif
  }
  static_->run();
}

void StepPolicy::set_position(int64_t global_step, int64_t step_in_epoch) {
  if (static_) static_->set_position(global_step, step_in_epoch);
}

void StepPolicy::drop_graph() {
#ifdef KILN_HAS_CUDA
  graph_.reset();
#endif
  eager_before_capture_ = 0;
  captured_at_ = -1;
  footprint_.clear();
}

void StepPolicy::reset_sums(EpochSums& s, int64_t steps) {
  if (static_) {  // the static step's own tensors, zeroed in place
    static_->reset_epoch(steps);
    s.loss_sum = static_->loss_sum;
    s.correct = static_->correct;
    s.step_losses = static_->step_losses;
    return;
  }
  auto o = torch::TensorOptions().device(dev_);
  s.loss_sum = torch::zeros({}, o.dtype(torch::kFloat64));
  s.correct = torch::zeros({}, o.dtype(torch::kInt64));
  s.step_losses = torch::zeros({steps}, o.dtype(torch::kFloat64));
}

void StepPolicy::load_sums(EpochSums& s, const torch::Tensor& acc, const torch::Tensor& sl) {
  if (static_) {
    s.loss_sum.copy_(acc[0]);
    s.correct.copy_(acc[1].to(torch::kInt64));
    if (sl.defined()) s.step_losses.copy_(sl);
  } else {
    s.loss_sum = acc[0].to(dev_).clone();
    s.correct = acc[1].to(torch::kInt64).to(dev_).clone();
    if (sl.defined()) s.step_losses = sl.to(dev_).clone();
  }
}

void StepPolicy::save(torch::serialize::OutputArchive& ar) const {
  if (!static_) return;
  torch::serialize::OutputArchive so;
  static_->save(so);
  ar.write("static_optim", so);
}

void StepPolicy::load(torch::serialize::InputArchive& ar) {
  if (!static_) return;
  torch::serialize::InputArchive so;
  ar.read("static_optim", so);
  static_->load_state(so);
}

}  // namespace kiln
