#include "kiln/train/selftrain.h"

#include <limits>

#include "kiln/core/error.h"
#include "kiln/train/loss.h"
#include "kiln/train/run_settings.h"
#include "kiln/train/trainer.h"

namespace kiln {

PseudoLabels make_pseudo_labels(Classifier& teacher, const DeviceLoader& unlabeled, int64_t bs, const std::string& mode,
                                double threshold, double temperature, const std::string& tta) {
  if (mode != "hard" && mode != "soft") throw Error("pseudo-label mode '" + mode + "' (hard | soft)");
  if (!(temperature > 0)) throw Error("pseudo-label temperature must be positive");
  torch::NoGradGuard ng;
  auto z = logits_of(teacher, unlabeled, bs, tta, 0.5);
  PseudoLabels p;
  auto prob = torch::softmax(z, 1);
  auto [conf, arg] = prob.max(1);
  p.confidence = conf.cpu();
  p.predicted = arg.cpu();
  p.keep = (conf >= threshold).cpu();
  p.targets = (mode == "hard" ? torch::one_hot(arg, z.size(1)).to(torch::kFloat32) : torch::softmax(z / temperature, 1)).cpu();
  return p;
}

PseudoLabelQuality pseudo_label_quality(const PseudoLabels& p, const torch::Tensor& hidden) {
  PseudoLabelQuality q;
  const int64_t n = p.keep.size(0);
  q.kept = p.keep.sum().item<int64_t>();
  q.coverage = n ? static_cast<double>(q.kept) / n : 0;
  if (!hidden.defined()) q.accuracy = std::numeric_limits<double>::quiet_NaN();
  else q.accuracy = q.kept ? p.predicted.eq(hidden.cpu()).logical_and(p.keep).sum().item<double>() / q.kept : 0;
  return q;
}

torch::Tensor soft_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets) {
  return -(targets.to(torch::kFloat32) * torch::log_softmax(logits.to(torch::kFloat32), 1)).sum(1);
}

StudentLoss::StudentLoss(std::string pseudo_weight, double weight, bool loss_normalization, double label_smoothing)
    : mode_(std::move(pseudo_weight)), weight_(weight), smoothing_(label_smoothing), normalize_(loss_normalization) {
  if (mode_ != "fixed" && mode_ != "ratio") throw Error("pseudo_weight mode '" + mode_ + "' (fixed | ratio)");
}

StudentLoss::Parts StudentLoss::operator()(const torch::Tensor& ll, const torch::Tensor& y, const torch::Tensor& lp,
                                           const torch::Tensor& targets) {
  Parts r;
  r.labeled = classification_loss(ll, y, smoothing_, /*sum=*/false);
  r.pseudo = soft_cross_entropy(lp, targets).mean();
  double w = weight_;
  if (mode_ == "ratio") w *= static_cast<double>(lp.size(0)) / static_cast<double>(std::max<int64_t>(ll.size(0), 1));
  auto scale = torch::full({}, w, torch::TensorOptions().dtype(torch::kFloat32).device(ll.device()));
  if (normalize_) {
    auto l = r.labeled.detach().to(torch::kFloat64), p = r.pseudo.detach().to(torch::kFloat64);
    sum_l_ = sum_l_.defined() ? sum_l_ + l : l;
    sum_p_ = sum_p_.defined() ? sum_p_ + p : p;
    scale = scale * (sum_l_ / sum_p_.clamp_min(1e-12)).to(torch::kFloat32);  // the counts cancel
  }
  r.scale = scale;
  r.total = r.labeled + scale * r.pseudo;
  return r;
}

torch::Tensor StudentLoss::state() const {
  if (!sum_l_.defined()) return torch::zeros({0}, torch::kFloat64);
  return torch::stack({sum_l_, sum_p_}).cpu();
}

void StudentLoss::set_state(const torch::Tensor& sums, const torch::Device& device) {
  if (sums.numel() == 0) {
    sum_l_ = sum_p_ = torch::Tensor();
    return;
  }
  if (sums.numel() != 2) throw Error("student loss state: expected 2 running sums, got " + std::to_string(sums.numel()));
  sum_l_ = sums[0].to(device, torch::kFloat64).clone();
  sum_p_ = sums[1].to(device, torch::kFloat64).clone();
}

void apply_strength(Config& cfg, const std::string& strength) {
  std::string level = strength;
  bool cut = false;
  const std::string suffix = "+cutout";
  if (level.size() > suffix.size() && level.compare(level.size() - suffix.size(), suffix.size(), suffix) == 0) {
    cut = true;
    level.resize(level.size() - suffix.size());
  }
  if (level != "S1" && level != "S2" && level != "S3" && level != "S4")
    throw Error("augmentation strength '" + strength + "' is not one of S1, S2, S3, S4 (each optionally +cutout)");
  cfg.set_value("aug.flip", true);
  if (AugmentOptions::from_config(cfg).pad == 0) cfg.set_value("aug.pad", int64_t{4});
  cfg.set_value("aug.cutout", cut ? int64_t{16} : int64_t{0});
  cfg.set_value("aug.policy", std::string(level == "S1" ? "none" : level == "S4" ? "randaugment" : "autoaugment"));
  const bool jitter = level == "S3" || level == "S4";
  cfg.set_value("aug.scale_min", jitter ? 0.75 : 1.0);
  cfg.set_value("aug.scale_max", jitter ? 1.33 : 1.0);
  if (level == "S4") {
    cfg.set_value("aug.randaugment_n", int64_t{2});
    cfg.set_value("aug.randaugment_m", int64_t{15});
    cfg.set_value("aug.randaugment_bins", int64_t{31});
  }
}

Config student_config(const Config& base, const std::string& teacher) {
  const auto s = RunSettings::from_config(base);
  Config c = base;
  c.set_value("selftrain.teacher", teacher);
  c.set_value("model.dropout", s.student.student_dropout);
  c.set_value("model.stochastic_depth", s.student.student_stochastic_depth);
  const double mult = s.student.student_width_mult;
  if (mult != 1.0) {
    auto w = s.model.widths;
    for (auto& x : w) x = std::max<int64_t>(1, std::llround(static_cast<double>(x) * mult));
    c.set_value("model.widths", w);
  }
  if (s.student.student_epochs > 0) c.set_value("schedule.epochs", s.student.student_epochs);
  if (s.student.student_weight_decay >= 0) c.set_value("optim.weight_decay", s.student.student_weight_decay);
  return c;
}

}  // namespace kiln
