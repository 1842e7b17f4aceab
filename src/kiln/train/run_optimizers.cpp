#include "kiln/train/run_optimizers.h"

#include <cmath>
#include <cstdio>

#include "kiln/core/error.h"
#include "kiln/deploy/quantize.h"

namespace kiln {

RunOptimizers::RunOptimizers(const Config& cfg, const OptimizerSettings& s, Classifier& model, ModelSetup& models,
                             int64_t steps, int64_t total_steps)
    : sched(LrSchedule::from_config(cfg, steps)), plateau(Plateau::from_config(cfg)), s_(s), total_steps_(total_steps) {
  if (s.ema) {
    ema = models.build(cfg, &model);  // the model's whitening copied, not fitted a second time
    copy_weights(*ema, model);
  }
  sgd = make_sgd(s, model, sched.at_step(0));
  if (s.lookahead) lookahead_ = std::make_unique<Lookahead>(model);
  for (auto& item : model.named_parameters())
    if (item.key() == "whiten_bias") whiten_bias_ = item.value();
  whiten_bias_steps_ = s.whiten_bias_epochs * steps;
}

void RunOptimizers::enable_qat(Classifier& model, const IntGrid& grid) {
  qat_weights_ = quantizable_weights(model);
  qat_grid_ = grid;
}

double RunOptimizers::whiten_lr(int64_t step) const {
  if (whiten_bias_steps_ <= 0) return 0;
  return sched.peak_lr * std::max(0.0, 1.0 - static_cast<double>(step) / whiten_bias_steps_);
}

void RunOptimizers::start_epoch(int64_t global_step) {
  if (whiten_bias_.defined()) whiten_bias_.requires_grad_(global_step < whiten_bias_steps_);
}

bool RunOptimizers::freeze_whiten_bias(int64_t global_step) {
  if (!whiten_bias_.defined() || global_step != whiten_bias_steps_) return false;
  whiten_bias_.requires_grad_(false);
  return true;
}

std::vector<torch::Tensor> RunOptimizers::qat_round_trip() {
  std::vector<torch::Tensor> masters;
  torch::NoGradGuard ng;
  for (auto& w : qat_weights_) {
    masters.push_back(w.detach().clone());
    w.copy_(quantize_per_channel(w, qat_grid_).dequantize().to(w.scalar_type()));
  }
  return masters;
}

void RunOptimizers::qat_restore(const std::vector<torch::Tensor>& masters) {
  torch::NoGradGuard ng;
  for (size_t i = 0; i < masters.size(); ++i) qat_weights_[i].copy_(masters[i]);
}

void RunOptimizers::after_step(Classifier& model, int64_t g) {
  if (ema && (g + 1) % s_.ema_every == 0) ema_update(*ema, model, s_.ema_momentum);
  if (lookahead_ && (g + 1) % s_.lookahead_every == 0)
    lookahead_->update(model, s_.lookahead_decay * std::pow(static_cast<double>(g + 1) / total_steps_, s_.lookahead_power));
}

void RunOptimizers::end_of_training(Classifier& model) {
  if (lookahead_) lookahead_->update(model, 1.0);
}

std::vector<std::string> RunOptimizers::warnings() const {
  std::vector<std::string> w;
  const auto steps = [](int64_t n) { return std::to_string(n) + (n == 1 ? " step" : " steps"); };
  if (lookahead_ && total_steps_ < s_.lookahead_every)
    w.push_back("optim.lookahead is on and this run has " + steps(total_steps_) + ", fewer than optim.lookahead_every = " +
                std::to_string(s_.lookahead_every) +
                ": the slow weights never update, so the run ends at its initial weights (Lookahead takes the slow "
                "weights at the end); train longer, or --set optim.lookahead=false");
  if (ema) {
    const int64_t k = total_steps_ / s_.ema_every;
    const double init_share = std::pow(s_.ema_momentum, static_cast<double>(k));
    if (init_share > 0.5) {
      char share[32], m[32];
      std::snprintf(share, sizeof share, "%.0f%%", 100 * init_share);
      std::snprintf(m, sizeof m, "%g", s_.ema_momentum);
      w.push_back("ema.enabled is on and this run has " + steps(total_steps_) + ": " + std::to_string(k) +
                  " update" + (k == 1 ? "" : "s") + " of the average every ema.every = " + std::to_string(s_.ema_every) +
                  " steps at ema.momentum = " + m + " leave " +
                  (k == 0 ? std::string("all") : share) +
                  " of the initial weights in it, and the average is what is evaluated and exported; train longer, or "
                  "--set ema.enabled=false");
    }
  }
  return w;
}

std::string RunOptimizers::observe_epoch(double train_loss, bool evaluated, double test_loss) {
  if (plateau.enabled() && plateau.observe(s_.plateau_metric == PlateauMetric::kTestLoss && evaluated ? test_loss : train_loss))
    return "reduce-LR-on-plateau: no improvement for " + std::to_string(plateau.patience + 1) + " epochs; LR multiplier now " +
           std::to_string(plateau.multiplier);
  return "";
}

void RunOptimizers::save(torch::serialize::OutputArchive& ar) const {
  torch::serialize::OutputArchive o;
  sgd.save(o);
  ar.write("optim", o);
  if (lookahead_) {
    torch::serialize::OutputArchive la;
    lookahead_->save(la);
    ar.write("lookahead", la);
  }
  if (ema) {
    torch::serialize::OutputArchive e;
    ema->save(e);
    ar.write("ema", e);
  }
  if (plateau.enabled())
    ar.write("plateau", torch::tensor({plateau.multiplier, plateau.best, static_cast<double>(plateau.bad_epochs)}, torch::kFloat64));
}

void RunOptimizers::load(torch::serialize::InputArchive& ar) {
  torch::serialize::InputArchive o;
  ar.read("optim", o);
  sgd.load(o);
  if (lookahead_) {
    torch::serialize::InputArchive la;
    ar.read("lookahead", la);
    lookahead_->load(la);
  }
  if (ema) {
    torch::serialize::InputArchive e;
    ar.read("ema", e);
    ema->load(e);
  }
  if (plateau.enabled()) {
    torch::Tensor pl;
    ar.read("plateau", pl);
    plateau.multiplier = pl[0].item<double>();
    plateau.best = pl[1].item<double>();
    plateau.bad_epochs = static_cast<int64_t>(pl[2].item<double>());
  }
}

}  // namespace kiln
