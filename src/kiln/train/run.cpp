#include "kiln/train/run.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "kiln/core/device.h"
#include "kiln/core/error.h"
#include "kiln/core/precision.h"
#include "kiln/report/memory.h"
#include "kiln/nn/tiny.h"
#include "kiln/train/loss.h"

namespace kiln {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}
// The job when data parallel; nullptr for one process (a world of 1 included).
const dist::Group* world(const RunOptions& opt) { return opt.dist && opt.dist->size() > 1 ? opt.dist.get() : nullptr; }
// The settings, refused up front when their combination cannot run here.
RunSettings checked(const Config& cfg, const RunOptions& opt) {
  auto s = RunSettings::from_config(cfg);
  const auto* w = world(opt);
  s.check_compatible(w ? w->size() : 1, w && w->backend() == "gloo" && opt.device.is_cuda());
  return s;
}
}  // namespace

Run::Run(const Config& cfg, const TrainTest& data, const RunOptions& opt)
    : cfg_(cfg),
      s_(checked(cfg, opt)),
      opt_(opt),
      dev_(opt.device),
      prec_((install_cpu_allocation_counter(), s_.step.resolve(dev_))),
      channels_last_(s_.step.channels_last),
      data_(s_.data, data, opt.labeled_index, dev_, prec_.compute, channels_last_, world(opt)),
      dp_(opt.dist, s_),
      log_(opt.run_dir, !dp_.active() || dp_.group()->rank() == 0, opt.verbose),
      models_(data_, dev_, prec_.weights, channels_last_, s_.step.fused_cpu, s_.step.fused_cuda),
      aug_(AugmentOptions::from_config(cfg)) {
  torch::manual_seed(seed());
  model_ = models_.build(cfg_);
  if (!s_.loop.init.empty() && !opt.resuming) log_.line(models_.init_from(*model_, s_.loop.init));
  optim_ = std::make_unique<RunOptimizers>(cfg_, s_.optim, *model_, models_, data_.steps, data_.total_steps);
  if (s_.step.qat) optim_->enable_qat(*model_, s_.step.qat_grid);
  policy_ = std::make_unique<StepPolicy>(s_, *model_, *optim_, data_, dev_, sync_check_);
  reset_epoch_sums();
  sync_check_.wanted = s_.step.sync_check;
  sync_check_.cuda = dev_.is_cuda();
  if (!s_.student.teacher.empty()) {
    student_ = std::make_unique<Student>(s_, data_, dev_, prec_.compute, channels_last_, aug_);
    log_.line(student_->summary_line());
  }
  if (s_.filter.keep > 0) setup_filter();
}

// filter.keep > 0 (airbench96_faster): the proxy network, its optimiser (the run's settings
// and schedule), fitted to the data as the main network is (its whitening time counts).
void Run::setup_filter() {
  Config pc = proxy_config(cfg_);
  torch::manual_seed(derive_seed(seed(), 91));  // the proxy's own init, independent of the main network's
  auto proxy = models_.build(pc, model_.get());  // the main network's whitening, not fitted twice
  proxy->train();
  FilterOptions fo;
  fo.keep = s_.filter.keep;
  fo.train_every = s_.filter.train_every;
  fo.label_smoothing = s_.optim.label_smoothing;
  fo.sum_loss = s_.optim.sum_loss();
  filter_ = std::make_unique<ProxyFilter>(proxy, make_sgd(pc, *proxy, optim_->sched.at_step(0)), fo);
}

void Run::write_run_files() {
  log_.start(cfg_, dev_, opt_.command_line, student_ ? student_->files() : std::vector<std::pair<std::string, std::string>>{});
}

RunResult Run::run() {
  RunResult r;
  r.parameters = count_parameters(*model_);
  r.run_dir = opt_.run_dir;
  describe_model(r.parameters);
  r.warnings = optim_->warnings();
  if (!dp_.active() || dp_.group()->rank() == 0)
    for (const auto& w : r.warnings) std::fprintf(stderr, "kiln: warning: %s\n", w.c_str());
  auto sync_bn = dp_.sync_bn_scope(*model_);
  if (dp_.active()) log_.line(dp_.start(*model_, optim_->ema.get(), data_.shard_n, data_.batch_size));
  if (log_.writes()) {  // the first 32 augmented training images of epoch 1, as the model sees them
    auto plan = data_.train->plan(seed(), 0, true, aug_);
    log_.open_tensorboard(data_.train->batch(plan, 0, std::min<int64_t>(32, data_.batch_size), aug_), data_.mean, data_.std,
                          data_.class_names);
  }
  LateLoss late(dev_);
  for (; epoch_ < data_.epochs; ++epoch_) {
    auto plan = data_.plan(seed(), epoch_, aug_, dp_.group());
    model_->train();
    optim_->start_epoch(global_step_);
    policy_->set_position(global_step_, step_);
    if (dev_.is_cuda()) sync_device(dev_);  // the clock starts when the device is idle
    const auto t0 = Clock::now();
    if (!train_steps(plan, t0, late)) {  // stopped: checkpoint at this step
      epoch_seconds_ += seconds_since(t0);
      save_checkpoint();
      log_.line("stopped at epoch " + std::to_string(epoch_ + 1) + " step " + std::to_string(step_) + "; checkpoint written" +
                (opt_.run_dir.empty() ? "" : ": resume with  kiln train --resume " + opt_.run_dir));
      r.interrupted = true;
      r.epochs = history_;
      log_.report_quietly();
      return r;
    }
    finish_epoch(t0);
    step_ = 0;
    if (opt_.stop_when && opt_.stop_when(history_.back())) {
      r.stopped_early = true;
      break;
    }
  }
  r.epochs = history_;
  if (!history_.empty()) {
    r.final_test_acc = history_.back().test_acc;
    r.final_test_loss = history_.back().test_loss;
    r.train_seconds = history_.back().train_seconds;
  }
  if (log_.writes()) write_final(r);
  return r;
}

void Run::describe_model(int64_t parameters) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "model %s: %lld parameters, %.1f KB of fp32 weights, %.2f MFLOP per %lldx%lld image",
                s_.model.name.c_str(), (long long)parameters, weight_bytes(*model_) / 1024.0, forward_flops() / 1e6,
                (long long)data_.image_height(), (long long)data_.image_width());
  log_.line(buf);
}

bool Run::train_steps(const EpochPlan& plan, Clock::time_point t0, LateLoss& late) {
  sync_check_.resume();
  try {
    for (; step_ < data_.steps && global_step_ < data_.total_steps; ++step_, ++global_step_) {
      if ((opt_.stop && opt_.stop->load()) || global_step_ == opt_.stop_after_steps) {
        sync_check_.pause();
        return false;
      }
      lr_ = optim_->lr(global_step_);
      if (optim_->freeze_whiten_bias(global_step_)) {
        policy_->drop_graph();  // the step's work changed: capture again
        dp_.drop_reducer();     // and the all-reduce's parameters (its hooks go with it)
      }
      auto b = data_.train->batch(plan, step_, data_.batch_size, aug_);
      if (filter_) b = filter_->filter(b, global_step_, lr_);  // the kept examples alone go on
      if (policy_->is_static()) {
        policy_->static_step(b, global_step_);
        after_step(b.y.size(0));
      } else {
        auto loss = eager_step(b);
        after_step(b.y.size(0));
        show_progress(loss, b.y.size(0), t0, late);
      }
      if (opt_.in_step) opt_.in_step();
      sync_check_.check(global_step_, epoch_);
    }
  } catch (const c10::Error& e) {
    sync_check_.pause();
    if (sync_check_.wanted && std::string(e.what()).find("synchroniz") != std::string::npos)
      throw Error("train.sync_check: a host-device synchronisation inside training step " + std::to_string(global_step_ + 1) +
                  " (epoch " + std::to_string(epoch_ + 1) + "): " + e.what_without_backtrace());
    throw;
  }
  sync_check_.pause();
  return true;
}

void Run::show_progress(const torch::Tensor& loss, int64_t n, Clock::time_point t0, LateLoss& late) {
  if (!log_.progress().live() || (step_ + 1) % std::max<int64_t>(1, s_.loop.progress_every) != 0) return;
  late.push(loss);
  const double el = epoch_seconds_ + seconds_since(t0);
  const double ips = seen_ / std::max(el, 1e-9);
  const double remaining = double(data_.total_steps - global_step_ - 1) * n / std::max(ips, 1e-9);
  const double shown = late.last();
  log_.progress().update(epoch_ + 1, data_.epochs, step_ + 1, data_.steps,
                         shown < 0 ? -1 : (s_.optim.sum_loss() ? shown / data_.batch_size : shown), ips, remaining);
}

torch::Tensor Run::eager_step(const Batch& b) {
  const bool sum_loss = s_.optim.sum_loss();
  optim_->set_lr(global_step_, lr_);
  auto masters = optim_->qat_round_trip();  // train.qat: the step sees the int8 round trip of the weights
  ComputeGuard bf16(*model_, b.x);           // bf16 data, fp32 master weights: autocast
  torch::Tensor logits, loss;
  if (student_) {
    std::tie(logits, loss) = student_->forward(*model_, b, global_step_, sum_loss);
  } else {
    logits = model_->forward(b.x);
    loss = classification_loss(logits, b.y, s_.optim.label_smoothing, sum_loss);
  }
  optim_->sgd.zero_grad();
  dp_.begin_backward(*model_);
  loss.backward();
  dp_.finish_backward();
  if (!masters.empty()) optim_->qat_restore(masters);  // the fp32 weights take the gradient
  optim_->sgd.step();
  {
    torch::NoGradGuard ng;
    auto l = loss.detach().to(torch::kFloat64);
    sums_.loss_sum += sum_loss ? l : l * static_cast<double>(b.y.size(0));
    sums_.correct += logits.argmax(1).eq(b.y).sum();
    sums_.step_losses[step_].copy_(sum_loss ? l / static_cast<double>(b.y.size(0)) : l);
  }
  return loss;
}

void Run::after_step(int64_t n) {
  seen_ += n;
  images_trained_ += n;
  optim_->after_step(*model_, global_step_);
}

void Run::reset_epoch_sums() {
  policy_->reset_sums(sums_, data_.steps);
  if (student_) student_->reset_epoch();
  seen_ = 0;
  epoch_seconds_ = 0;
}

void Run::write_final(RunResult& r) {
  nlohmann::ordered_json j;
  j["final_test_acc"] = r.final_test_acc;
  j["final_test_loss"] = r.final_test_loss;
  j["train_seconds"] = r.train_seconds;
  j["epochs"] = data_.epochs;
  j["parameters"] = r.parameters;
  j["weight_bytes"] = weight_bytes(*model_);  // fp32: every parameter and floating-point buffer
  j["flops_per_image"] = forward_flops();     // forward pass, 2 x multiply-adds of convs and linears (0: unknown)
  if (!r.warnings.empty()) j["warnings"] = r.warnings;
  if (student_) j["pseudo_labels"] = nlohmann::json::parse(student_->json());
  if (filter_)
    j["filter"] = {{"keep", filter_->options().keep},
                   {"batch", data_.batch_size},
                   {"train_every", filter_->options().train_every},
                   {"proxy_parameters", count_parameters(filter_->proxy())},
                   {"proxy_flops_per_image", filter_->proxy().forward_flops(data_.image_height(), data_.image_width())}};
  if (dp_.active())  // the ranks evaluated shares of the test set: rank 0 predicts all of it for the pictures
    last_eval_ = evaluate(optim_->ema ? *optim_->ema : *model_, *data_.test, s_.data.test_batch_size, s_.loop.tta,
                          s_.loop.tta_translate_weight);
  // Pictures and per_class.csv first, then final.json (the run's completion mark), then the
  // report that reads it: a run killed after final.json can only have lost report.html, and
  // `kiln train --resume` on it rewrites the end files and clears the killed write's temporary.
  log_.final_pictures(*data_.test, last_eval_.predictions, data_.mean, data_.std, data_.class_names, global_step_);
  log_.final_json(j.dump(2));
  log_.report_quietly();
}

double Run::forward_flops() const { return model_->forward_flops(data_.image_height(), data_.image_width()); }

double Run::filter_flops() const {
  if (!filter_) return 0;
  const double f = filter_->proxy().forward_flops(data_.image_height(), data_.image_width());
  return f * static_cast<double>(filter_->forward_images) + 2 * f * static_cast<double>(filter_->trained_images);
}

}  // namespace kiln
